"""Taking a declaration in: who may declare, for which household and rule, within its limit.

The edge reads the request into a Submission and calls check_submission first: it
judges everything that needs no decoding (who, the household, the rule, the day, the
rule's limit) and finds a replay by idempotency key, all in a moment. Only then are the
photos decoded (declarations.photos, outside any transaction, since that is the slow
part), and submit_declaration judges it all again under the household's lock, stores
the photos and records the declaration with any duplicate it found.
"""

from __future__ import annotations

import calendar
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from accounts.auth import User
from core.errors import Conflict, ValidationFailed
from core.idempotency import replay_or_conflict, request_fingerprint
from declarations.models import Declaration, DeclarationPhoto, Status
from declarations.photos import MAX_PHOTOS, PreparedPhoto, upload_digest
from declarations.services.duplicates import band_columns, find_duplicate, to_signed
from declarations.storage import THUMBNAIL, PhotoStore
from ledger import services as ledger
from ledger.models import Household, PointRule

# A deed is declared soon after it is done; older claims go to the cadre in person.
MAX_AGE_DAYS = 90
NOTE_MAX = 500
PERIODS = ("day", "week", "month")
PERIOD_LABELS = {"day": _l("day"), "week": _l("week"), "month": _l("month")}
# Two copies of one picture arriving at once must see each other. On PostgreSQL each would
# look for earlier photos before the other commits, so the look-up and insert of photos take
# one county-wide lock for the rest of the transaction (a few milliseconds; the photo work
# is done before). SQLite transactions begin IMMEDIATE and are one at a time already.
PHOTO_LOOKUP_LOCK = 0x1D5C0016


@dataclass(frozen=True)
class Submission:
    """A declaration as the client asked for it, read and bounded by the edge."""

    household_id: int
    rule_code: str
    happened_on: date
    idempotency_key: str
    uploads: tuple[bytes, ...] = field(repr=False)
    persons: int | None = None
    note: str | None = None

    @property
    def key(self) -> str:
        return f"declaration:{self.idempotency_key}"

    @functools.cached_property
    def upload_digests(self) -> tuple[str, ...]:
        # Hashed once: the replay check, the record and the photos all use them.
        return tuple(upload_digest(data) for data in self.uploads)

    def fingerprint(self) -> str:
        # The photos by their bytes' digests: a retry sends the very same files.
        return request_fingerprint(
            household_id=self.household_id,
            rule_code=self.rule_code,
            persons=self.persons,
            happened_on=self.happened_on.isoformat(),
            note=self.note,
            photos=list(self.upload_digests),
        )


@dataclass(frozen=True)
class Submitted:
    declaration: Declaration
    replayed: bool


def check_submission(
    session: Session, *, actor: User, today: date, submission: Submission
) -> Declaration | None:
    """The earlier declaration under this key (a replay), or None once all else is judged."""
    household = ledger.get_household(session, submission.household_id)
    actor.require_declarer(household.village.code)
    replay = _replay(session, submission)
    if replay is not None:
        return replay
    _judge(session, household, submission, today)
    return None


def submit_declaration(
    session: Session,
    *,
    actor: User,
    now: datetime,
    today: date,
    submission: Submission,
    photos: Sequence[PreparedPhoto],
    store: PhotoStore,
) -> Submitted:
    """Record a pending declaration with its photos; a replay answers the first one."""
    household = ledger.get_household(session, submission.household_id)
    actor.require_declarer(household.village.code)
    # One household's declarations queue here, so two at once cannot both pass a limit.
    session.execute(select(Household.id).where(Household.id == household.id).with_for_update())
    replay = _replay(session, submission)
    if replay is not None:
        return Submitted(replay, replayed=True)
    rule, persons = _judge(session, household, submission, today)
    if not 1 <= len(photos) <= MAX_PHOTOS:
        raise ValidationFailed(errors={"photo": [_l("one to %(most)s photos", most=MAX_PHOTOS)]})
    declaration = Declaration(
        household_id=household.id,
        village_id=household.village_id,
        rule_id=rule.id,
        rule_code=rule.code,
        persons=persons,
        happened_on=submission.happened_on,
        note=submission.note,
        status=Status.PENDING,
        idempotency_key=submission.key,
        request_hash=submission.fingerprint(),
        submitted_by_id=actor.id,
        submitted_at=now,
    )
    session.add(declaration)
    session.flush()
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(PHOTO_LOOKUP_LOCK)))
    for position, photo in enumerate(photos, 1):
        store.put(photo.sha256, photo.jpeg)
        store.put(photo.sha256, photo.thumbnail, THUMBNAIL)
        match = find_duplicate(session, photo.phash, exclude_declaration_id=declaration.id)
        session.add(
            DeclarationPhoto(
                declaration_id=declaration.id,
                position=position,
                sha256=photo.sha256,
                upload_sha256=photo.upload_sha256,
                width=photo.width,
                height=photo.height,
                size_bytes=len(photo.jpeg),
                phash=to_signed(photo.phash),
                **band_columns(photo.phash),
                taken_at=photo.taken_at,
                latitude=photo.latitude,
                longitude=photo.longitude,
                duplicate_of_id=match.photo_id if match else None,
                duplicate_distance=match.distance if match else None,
                created_at=now,
            )
        )
        if match and declaration.duplicate_of_id is None:
            declaration.duplicate_of_id = match.declaration_id
    session.flush()
    return Submitted(declaration, replayed=False)


def _replay(session: Session, submission: Submission) -> Declaration | None:
    existing = session.scalar(
        select(Declaration).where(Declaration.idempotency_key == submission.key)
    )
    return replay_or_conflict(
        existing,
        recorded=existing.request_hash if existing else None,
        fingerprint=submission.fingerprint(),
        key=submission.idempotency_key,
    )


def _judge(
    session: Session, household: Household, submission: Submission, today: date
) -> tuple[PointRule, int | None]:
    """The rule in force and the persons it counts, or the first reason to refuse."""
    ledger.require_active(household.id, household.status)
    rule = ledger.find_rule(session, submission.rule_code, household.village)
    if rule.points <= 0:
        raise ValidationFailed(
            errors={"rule_code": [_l("a penalty is not declared; only deeds that earn points")]}
        )
    persons = submission.persons
    if rule.per == "person":
        persons = 1 if persons is None else persons
        most = ledger.people_count(household)
        if not 1 <= persons <= most:
            raise ValidationFailed(errors={"persons": [_l("must be 1 to %(most)s", most=most)]})
    elif persons not in (None, 1):
        raise ValidationFailed(errors={"persons": [_l("this rule is per household")]})
    else:
        persons = None
    if submission.happened_on > today:
        raise ValidationFailed(errors={"happened_on": [_l("the day is in the future")]})
    if submission.happened_on < today - timedelta(days=MAX_AGE_DAYS):
        raise ValidationFailed(
            errors={
                "happened_on": [
                    _l(
                        "deeds older than %(days)s days are not declared here; "
                        "please see the village cadre",
                        days=MAX_AGE_DAYS,
                    )
                ]
            }
        )
    if submission.note is not None and len(submission.note) > NOTE_MAX:
        raise ValidationFailed(errors={"note": [_l("at most %(most)s characters", most=NOTE_MAX)]})
    _check_limit(session, rule, household, submission.happened_on)
    return rule, persons


def period_bounds(period: str, day: date) -> tuple[date, date]:
    """The day, ISO week (Monday first) or calendar month holding `day`: [start, end)."""
    if period == "day":
        return day, day + timedelta(days=1)
    if period == "week":
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=7)
    start = day.replace(day=1)
    return start, start + timedelta(days=calendar.monthrange(day.year, day.month)[1])


def _check_limit(session: Session, rule: PointRule, household: Household, day: date) -> None:
    """At most rule.limit_count declarations of the rule per household per period.

    Pending and approved ones count; a rejected one does not, so a deed refused for a
    poor photo can be declared again.
    """
    if not rule.limit_count or rule.limit_period not in PERIODS:
        return
    start, end = period_bounds(rule.limit_period, day)
    have = session.scalar(
        select(func.count())
        .select_from(Declaration)
        .where(
            Declaration.household_id == household.id,
            Declaration.rule_code == rule.code,
            Declaration.status != Status.REJECTED,
            Declaration.happened_on >= start,
            Declaration.happened_on < end,
        )
    )
    if (have or 0) >= rule.limit_count:
        raise Conflict(
            _l(
                "rule “%(title)s” allows at most %(count)s declarations per household per "
                "%(period)s, and this household already has %(have)s for %(start)s to %(end)s",
                title=rule.title,
                count=rule.limit_count,
                period=PERIOD_LABELS[rule.limit_period],
                have=have,
                start=start.isoformat(),
                end=(end - timedelta(days=1)).isoformat(),
            ),
            limit=rule.limit_count,
            period=rule.limit_period,
        )
