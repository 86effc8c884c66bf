"""Declaration services on both backends: no false duplicate among many photos, races settled
by the database, corrections linked, limits by period."""

from __future__ import annotations

import functools
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert
from sqlalchemy.orm import Session

from accounts.auth import User
from core.db import db, utcnow
from core.errors import Conflict, DomainError
from declarations import services
from declarations.models import Declaration, DeclarationPhoto
from declarations.photos import PreparedPhoto, prepare_photo
from declarations.services.duplicates import band_columns, to_signed
from declarations.storage import PhotoStore
from ledger import services as ledger
from ledger.models import Transfer
from tests.conftest import count_rows
from tests.declarations.conftest import jpeg_bytes, synthetic_photo, today
from tests.helpers.threads import run_threads

DIFFERENT = 200


class MemoryStore(PhotoStore):
    """The photo folder in memory: these tests are about rows, not files."""

    def __init__(self) -> None:
        super().__init__(Path("/nonexistent"))
        self.files: dict[tuple[str, str], bytes] = {}

    def put(self, sha256: str, data: bytes, kind: str = "jpg") -> None:
        self.files[(sha256, kind)] = data


@functools.cache
def _different_photos() -> tuple[PreparedPhoto, ...]:
    """Two hundred different pictures, prepared once for both backends."""
    tz = ZoneInfo("Asia/Shanghai")
    return tuple(
        prepare_photo(jpeg_bytes(synthetic_photo(1000 + seed, (256, 192))), tz=tz)
        for seed in range(DIFFERENT)
    )


def _submit(actor: User, household_id: int, photos: Any, store: PhotoStore, key: str) -> Any:
    submission = services.Submission(
        household_id=household_id,
        rule_code="VOLUNTEER",
        happened_on=today(),
        idempotency_key=key,
        uploads=tuple(p.upload_sha256.encode() for p in photos),
    )
    return services.submit_declaration(
        db.session,
        actor=actor,
        now=utcnow(),
        today=today(),
        submission=submission,
        photos=photos,
        store=store,
    ).declaration


def _stored(village: Any, photos: tuple[PreparedPhoto, ...]) -> list[int]:
    """Each photo recorded as its own declaration's, in two statements; their ids."""
    household = ledger.get_household(db.session, village.home_id)
    rule = ledger.find_rule(db.session, "VOLUNTEER", household.village)
    now = utcnow()
    declaration_ids = db.session.scalars(
        insert(Declaration).returning(Declaration.id, sort_by_parameter_order=True),
        [
            {
                "household_id": household.id,
                "village_id": household.village_id,
                "rule_id": rule.id,
                "rule_code": rule.code,
                "happened_on": today(),
                "status": "pending",
                "idempotency_key": f"declaration:many-{i}",
                "request_hash": "0" * 64,
                "submitted_by_id": village.users["reporter"].id,
                "submitted_at": now,
            }
            for i in range(len(photos))
        ],
    ).all()
    db.session.execute(
        insert(DeclarationPhoto),
        [
            {
                "declaration_id": declaration_id,
                "position": 1,
                "sha256": photo.sha256,
                "upload_sha256": photo.upload_sha256,
                "width": photo.width,
                "height": photo.height,
                "size_bytes": len(photo.jpeg),
                "phash": to_signed(photo.phash),
                **band_columns(photo.phash),
                "created_at": now,
            }
            for declaration_id, photo in zip(declaration_ids, photos, strict=True)
        ],
    )
    return list(declaration_ids)


def test_two_hundred_different_photos_are_no_duplicates_of_each_other(village):
    photos = _different_photos()
    assert len({p.phash for p in photos}) == DIFFERENT
    ids = _stored(village, photos)
    for photo, declaration_id in zip(photos, ids, strict=True):
        found = services.find_duplicate(
            db.session, photo.phash, exclude_declaration_id=declaration_id
        )
        assert found is None, (declaration_id, found)
    # A copy of any one of them is still found among the two hundred, and nothing else.
    tz = ZoneInfo("Asia/Shanghai")
    picture = synthetic_photo(1000 + 137, (256, 192)).resize((128, 96))
    copy = prepare_photo(jpeg_bytes(picture, quality=50), tz=tz)
    match = services.find_duplicate(db.session, copy.phash)
    assert match is not None and match.declaration_id == ids[137] and match.distance <= 4
    db.session.rollback()


def test_a_submitted_copy_is_flagged_against_the_nearest_earlier_photo(village):
    store = MemoryStore()
    photos = _different_photos()[:5]
    made = [
        _submit(village.users["reporter"], village.home_id, [p], store, f"few-{i}")
        for i, p in enumerate(photos)
    ]
    assert all(d.duplicate_of_id is None for d in made)
    again = _submit(
        village.users["reporter"], village.home_id, [photos[3], photos[0]], store, "two"
    )
    assert again.duplicate_of_id == made[3].id
    assert [p.duplicate_of.declaration_id for p in again.photos] == [made[3].id, made[0].id]
    assert [p.duplicate_distance for p in again.photos] == [0, 0]
    assert store.files  # the photo and thumbnail went to the store
    db.session.rollback()


def test_two_cadres_approving_at_once_post_once(village, thread_engine):
    store = MemoryStore()
    photo = _different_photos()[0]
    declaration_id = _submit(village.users["reporter"], village.home_id, [photo], store, "race").id
    cadres = [village.users["cadre"].id, village.users["cadre2"].id, village.users["admin"].id]
    db.session.commit()

    def approve(i: int) -> str:
        with Session(thread_engine, expire_on_commit=False) as session:
            actor = session.get(User, cadres[i % len(cadres)])
            try:
                services.approve_declaration(
                    session,
                    actor=actor,
                    now=utcnow(),
                    declaration_id=declaration_id,
                    idempotency_key=f"approve-{i}",
                )
                session.commit()
            except Conflict:
                session.rollback()
                return "conflict"
            except DomainError as exc:
                session.rollback()
                return exc.code
            return "approved"

    results = run_threads(6, approve)
    assert Counter(results) == {"approved": 1, "conflict": 5}, results
    assert count_rows(Transfer) == 1
    db.session.rollback()
    assert ledger.get_household(db.session, village.home_id).account.balance == 2
    db.session.rollback()


def test_a_wrong_approval_is_taken_back_by_a_linked_correction(village):
    store = MemoryStore()
    declaration = _submit(
        village.users["reporter"], village.home_id, [_different_photos()[1]], store, "c1"
    )
    approval = services.approve_declaration(
        db.session,
        actor=village.users["cadre"],
        now=utcnow(),
        declaration_id=declaration.id,
        idempotency_key="c1-approve",
    )
    first = services.correct_approval(
        db.session,
        actor=village.users["cadre2"],
        now=utcnow(),
        declaration_id=declaration.id,
        reason="两张照片是同一件事",
    )
    again = services.correct_approval(
        db.session,
        actor=village.users["cadre2"],
        now=utcnow(),
        declaration_id=declaration.id,
        reason="两张照片是同一件事",
    )
    db.session.commit()
    assert first.transfer.reverses_id == approval.transfer_id
    assert again.replayed and again.transfer.id == first.transfer.id
    correction = services.correction_of(db.session, db.session.get(Declaration, declaration.id))
    assert correction is not None and correction.id == first.transfer.id
    assert ledger.get_household(db.session, village.home_id).account.balance == 0
    # Decisions stay final: the declaration is still approved, its award now reversed.
    assert db.session.get(Declaration, declaration.id).status == "approved"
    with pytest.raises(DomainError) as refused:
        services.correct_approval(
            db.session,
            actor=village.users["reporter"],
            now=utcnow(),
            declaration_id=declaration.id,
            reason="x",
        )
    assert refused.value.status == 403
    db.session.rollback()


@pytest.mark.parametrize(
    ("period", "day", "bounds"),
    [
        ("day", date(2026, 11, 20), (date(2026, 11, 20), date(2026, 11, 21))),
        ("week", date(2026, 11, 20), (date(2026, 11, 16), date(2026, 11, 23))),
        ("week", date(2026, 11, 16), (date(2026, 11, 16), date(2026, 11, 23))),
        ("month", date(2026, 2, 14), (date(2026, 2, 1), date(2026, 3, 1))),
        ("month", date(2026, 12, 31), (date(2026, 12, 1), date(2027, 1, 1))),
    ],
)
def test_limit_periods_are_the_day_the_iso_week_and_the_calendar_month(period, day, bounds):
    assert services.period_bounds(period, day) == bounds


def test_two_copies_arriving_at_once_see_each_other(app, village, thread_engine):
    # Two villages' reporters send the same picture in the same instant: whichever commits
    # second is flagged, on PostgreSQL too (without the look-up lock, often neither was).
    photo = _different_photos()[7]
    people = [
        (village.users["reporter"].id, village.home_id),
        (village.users["reporter_qtp"].id, village.qtp_home_id),
    ]
    db.session.commit()

    def submit(i: int) -> int | None:
        actor_id, household_id = people[i % 2]
        with app.app_context(), Session(thread_engine, expire_on_commit=False) as session:
            made = services.submit_declaration(
                session,
                actor=session.get(User, actor_id),
                now=utcnow(),
                today=today(),
                submission=services.Submission(
                    household_id=household_id,
                    rule_code="VOLUNTEER",
                    happened_on=today(),
                    idempotency_key=f"same-picture-{i}",
                    uploads=(photo.upload_sha256.encode(),),
                ),
                photos=[photo],
                store=MemoryStore(),
            ).declaration
            session.commit()
            return made.duplicate_of_id

    flagged = run_threads(2, submit)
    assert not any(isinstance(r, BaseException) for r in flagged), flagged
    assert sorted(d is None for d in flagged) == [False, True], flagged
