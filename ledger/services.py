"""Ledger operations. Each takes the session, the acting user and the time; none commits."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import BigInteger, bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session, aliased
from sqlalchemy.orm.util import identity_key

from core.errors import (
    Conflict,
    DomainError,
    Forbidden,
    IdempotencyConflict,
    InsufficientPoints,
    NotFound,
    ValidationFailed,
)
from core.idempotency import request_fingerprint
from core.ids import is_id
from core.scanned import normalize_scanned, parse_scanned_int
from ledger.chain import GENESIS, transfer_digest
from ledger.models import (
    Account,
    AccountKind,
    Household,
    HouseholdMember,
    PointRule,
    Transfer,
    TransferKind,
    Village,
)

if TYPE_CHECKING:
    from accounts.auth import User

# One award or penalty larger than this is a typing mistake, not a deed.
MAX_AWARD_POINTS = 10_000
# A single sale or refund; far above any basket, far below integer overflow.
MAX_TRANSFER_POINTS = 1_000_000
ISSUANCE_CODE = "issuance"
PENALTY_CODE = "penalty"
IMPORT_COLUMNS = ("household_id", "rule_code", "persons", "reason", "idempotency_key")
# households.id is a 32-bit integer on PostgreSQL; a larger id cannot exist, and binding
# one fails in the database (PostgreSQL: out of range, SQLite: OverflowError) instead of 404.


@dataclass(frozen=True)
class Posting:
    """A transfer as the caller sees it; `replayed` when the key had already been used."""

    transfer: Transfer
    replayed: bool

    @property
    def signed_points(self) -> int:
        return signed_points(self.transfer, self.transfer.chain_account_id)

    @property
    def balance(self) -> int:
        return self.transfer.balance_after


def signed_points(transfer: Transfer, account_id: int) -> int:
    return transfer.amount if transfer.credit_account_id == account_id else -transfer.amount


# --- villages -----------------------------------------------------------------------


def _require_admin(actor: User) -> None:
    if not actor.is_admin:
        raise Forbidden(_l("only the county office may do this"))


def _require_village(actor: User, village_code: str) -> None:
    if not actor.may_manage_village(village_code):
        raise Forbidden(_l("outside your village"))


def create_village(
    session: Session,
    *,
    actor: User,
    now: datetime,
    code: str,
    name: str,
    redemption_floor: int = 0,
) -> Village:
    _require_admin(actor)
    if session.scalar(select(Village.id).where(Village.code == code)):
        raise Conflict(_l("village %(code)s exists", code=code))
    village = Village(code=code, name=name, redemption_floor=redemption_floor, created_at=now)
    session.add(village)
    session.flush()
    return village


def update_village(
    session: Session,
    *,
    actor: User,
    code: str,
    name: str | None = None,
    redemption_floor: int | None = None,
) -> Village:
    village = get_village(session, code)
    _require_village(actor, code)
    if name is not None:
        village.name = name
    if redemption_floor is not None:
        village.redemption_floor = redemption_floor
    session.flush()
    return village


def get_village(session: Session, code: str) -> Village:
    village = session.scalar(select(Village).where(Village.code == code))
    if village is None:
        raise NotFound(_l("no village %(code)s", code=code))
    return village


def list_villages(session: Session) -> Sequence[Village]:
    return session.scalars(select(Village).order_by(Village.code)).all()


# --- households ---------------------------------------------------------------------


def create_household(
    session: Session,
    *,
    actor: User,
    now: datetime,
    village_code: str,
    head_name: str,
    members: Iterable[str] = (),
    address: str | None = None,
) -> Household:
    village = get_village(session, village_code)
    _require_village(actor, village_code)
    if not head_name.strip():
        raise ValidationFailed(errors={"head_name": [_l("required")]})
    household = Household(
        village=village,
        head_name=head_name.strip(),
        address=address,
        created_at=now,
        members=[
            HouseholdMember(name=name.strip(), position=i)
            for i, name in enumerate(members)
            if name.strip()
        ],
    )
    session.add(household)
    session.flush()
    session.add(
        Account(
            kind=AccountKind.HOUSEHOLD,
            code=f"household:{household.id}",
            household=household,
            created_at=now,
            head_hash=GENESIS,
        )
    )
    session.flush()
    return household


def get_household(session: Session, household_id: int) -> Household:
    household = session.get(Household, household_id) if is_id(household_id) else None
    if household is None:
        raise NotFound(_l("no household %(household_id)s", household_id=household_id))
    return household


def search_households(
    session: Session,
    *,
    actor: User,
    q: str = "",
    village_code: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[Sequence[Household], int]:
    """Households a person may see, by head's or member's name, or by id."""
    stmt = select(Household).join(Household.village)
    if not actor.is_admin:
        # Cadres see their own village; shop staff look households up by card, not lists.
        stmt = stmt.where(Village.code == (actor.village_code or ""))
    if village_code:
        stmt = stmt.where(Village.code == village_code)
    q = q.strip()
    if q:
        member_match = select(HouseholdMember.household_id).where(
            HouseholdMember.name.contains(q, autoescape=True)
        )
        clauses = [Household.head_name.contains(q, autoescape=True), Household.id.in_(member_match)]
        # An id may be typed full-width; names are matched as typed.
        household_id = parse_scanned_int(q, max_digits=10)
        if household_id is not None and is_id(household_id):
            clauses.append(Household.id == household_id)
        stmt = stmt.where(or_(*clauses))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(Household.id).limit(limit).offset(offset)).all()
    return rows, total


def people_count(household: Household) -> int:
    """Members, plus the head unless listed among them (per-person awards count on this).

    Two members of one name are two people (a father and son may share a name).
    """
    names = [m.name for m in household.members]
    return len(names) + (0 if household.head_name in names else 1)


# --- rules --------------------------------------------------------------------------


def create_rule(
    session: Session,
    *,
    actor: User,
    now: datetime,
    code: str,
    title: str,
    points: int,
    per: str = "household",
    village_code: str | None = None,
) -> PointRule:
    village = None
    if village_code:
        village = get_village(session, village_code)
        _require_village(actor, village_code)
    else:
        _require_admin(actor)
    if points == 0 or abs(points) > MAX_AWARD_POINTS:
        raise ValidationFailed(
            errors={"points": [_l("must be non-zero, at most %(most)s", most=MAX_AWARD_POINTS)]}
        )
    if per not in ("household", "person"):
        raise ValidationFailed(errors={"per": [_l("must be household or person")]})
    clash = select(PointRule.id).where(PointRule.code == code)
    clash = clash.where(
        PointRule.village_id == village.id if village else PointRule.village_id.is_(None)
    )
    if session.scalar(clash):
        raise Conflict(_l("rule %(code)s exists here", code=code))
    rule = PointRule(
        code=code, title=title, points=points, per=per, village=village, created_at=now
    )
    session.add(rule)
    session.flush()
    return rule


def rules_in_force(session: Session, village_code: str | None = None) -> list[PointRule]:
    """County-wide rules, each replaced by the village's own rule of the same code."""
    rules = {
        r.code: r
        for r in session.scalars(
            select(PointRule).where(PointRule.village_id.is_(None), PointRule.active)
        )
    }
    if village_code:
        village = get_village(session, village_code)
        for r in session.scalars(
            select(PointRule).where(PointRule.village_id == village.id, PointRule.active)
        ):
            rules[r.code] = r
    return sorted(rules.values(), key=lambda r: r.code)


def find_rule(session: Session, code: str, village: Village) -> PointRule:
    candidates = session.scalars(
        select(PointRule).where(
            PointRule.code == code,
            PointRule.active,
            or_(PointRule.village_id == village.id, PointRule.village_id.is_(None)),
        )
    ).all()
    if not candidates:
        raise NotFound(
            _l("no rule %(code)s in force for village %(village)s", code=code, village=village.code)
        )
    return max(candidates, key=lambda r: r.village_id is not None)


# --- posting ------------------------------------------------------------------------


def ensure_system_accounts(session: Session) -> None:
    for kind, code in ((AccountKind.ISSUANCE, ISSUANCE_CODE), (AccountKind.PENALTY, PENALTY_CODE)):
        if not session.scalar(select(Account.id).where(Account.code == code)):
            session.add(Account(kind=kind, code=code))
    session.flush()


def _system_account(session: Session, code: str, kind: AccountKind) -> int:
    account_id = session.scalar(select(Account.id).where(Account.code == code))
    if account_id is None:
        # A concurrent first use of a new shop may insert it too; the unique code makes
        # the loser's transaction fail and the edge retries it, finding this row.
        account = Account(kind=kind, code=code)
        session.add(account)
        session.flush()
        account_id = account.id
    return account_id


def shop_account_code(shop_code: str) -> str:
    return f"shop:{shop_code}"


@dataclass(frozen=True)
class _Target:
    """A household's account row, locked for this transaction, and what a posting needs."""

    household_id: int
    account_id: int
    balance: int
    entry_count: int
    head_hash: str
    redeemed_total: int
    floor: int
    status: str
    counter_account_id: int | None
    existing_id: int | None
    existing_fingerprint: str | None


# The hot path (every sale posts through here) runs on prebuilt Core statements: building
# ORM expressions and flushing a unit of work per redemption cost more CPU than the
# database work itself (bench/ledger.py).
_accounts = Account.__table__
_transfers = Transfer.__table__
_households = Household.__table__
_villages = Village.__table__
_existing = _transfers.alias("existing")
_counter = _accounts.alias("counter")

_LOCK_TARGET = (
    select(
        _accounts.c.id,
        _accounts.c.balance,
        _accounts.c.entry_count,
        _accounts.c.head_hash,
        _accounts.c.redeemed_total,
        _villages.c.redemption_floor,
        _households.c.status,
        select(_counter.c.id)
        .where(_counter.c.code == bindparam("counter_code"))
        .scalar_subquery()
        .label("counter_id"),
        _existing.c.id.label("existing_id"),
        _existing.c.request_hash,
    )
    .select_from(
        _households.join(_accounts, _accounts.c.household_id == _households.c.id)
        .join(_villages, _villages.c.id == _households.c.village_id)
        .outerjoin(_existing, _existing.c.idempotency_key == bindparam("key"))
    )
    .where(_households.c.id == bindparam("household_id"))
    # PostgreSQL: this row lock is what serializes one household's transfers, and only
    # that household's: system accounts are never locked, so unrelated households never
    # queue behind each other. SQLite's IMMEDIATE transaction already holds the database.
    .with_for_update(of=_accounts)
)

_APPLY = (
    update(_accounts)
    .where(
        _accounts.c.id == bindparam("account_id"),
        # The row must still be the one read under the lock; the chain depends on it.
        _accounts.c.entry_count == bindparam("seen_count"),
        or_(
            bindparam("floor", type_=BigInteger).is_(None),
            _accounts.c.balance + bindparam("delta", type_=BigInteger)
            >= bindparam("floor", type_=BigInteger),
        ),
    )
    .values(
        balance=_accounts.c.balance + bindparam("delta", type_=BigInteger),
        entry_count=_accounts.c.entry_count + 1,
        head_hash=bindparam("digest"),
        earned_total=_accounts.c.earned_total + bindparam("d_earned", type_=BigInteger),
        penalty_total=_accounts.c.penalty_total + bindparam("d_penalty", type_=BigInteger),
        redeemed_total=_accounts.c.redeemed_total + bindparam("d_redeemed", type_=BigInteger),
    )
)

_INSERT = insert(_transfers).returning(_transfers.c.id)

_TRANSFER_COLUMNS = [c.name for c in _transfers.c if c.name != "id"]
# PostgreSQL takes the account update and the transfer insert as one statement (a data-
# modifying CTE), so a redemption costs the same round trips as the raw-SQL ceiling. If
# the update matches no row, the insert inserts nothing and no id comes back.
_applied = _APPLY.returning(_accounts.c.id).cte("applied")
_APPLY_AND_INSERT = (
    insert(_transfers)
    .from_select(
        _TRANSFER_COLUMNS,
        select(
            *[bindparam(f"t_{name}", type_=_transfers.c[name].type) for name in _TRANSFER_COLUMNS]
        ).select_from(_applied),
    )
    .returning(_transfers.c.id)
)


def _lock_target(
    session: Session, *, household_id: int, key: str, counter_code: str | None = None
) -> _Target:
    """One round trip: lock the household's account, read its state, the counterparty
    system account and any earlier transfer with this idempotency key."""
    if not is_id(household_id):
        raise NotFound(_l("no household %(household_id)s", household_id=household_id))
    # Core on the session's own connection: same transaction, none of the ORM's overhead.
    row = (
        session.connection()
        .execute(
            _LOCK_TARGET,
            {"household_id": household_id, "key": key, "counter_code": counter_code},
        )
        .one_or_none()
    )
    if row is None:
        raise NotFound(_l("no household %(household_id)s", household_id=household_id))
    return _Target(household_id, *row)


def _replay(session: Session, target: _Target, key: str, fingerprint: str) -> Posting | None:
    if target.existing_id is None:
        return None
    if target.existing_fingerprint != fingerprint:
        raise IdempotencyConflict(
            _l(
                "idempotency key %(key)s was used for another request",
                key=key.partition(":")[2],
            )
        )
    existing = session.get(Transfer, target.existing_id)
    assert existing is not None
    return Posting(existing, replayed=True)


def _require_active(target: _Target) -> None:
    if target.status != "active":
        raise Conflict(
            _l(
                "household %(household_id)s is %(status)s",
                household_id=target.household_id,
                status=target.status,
            )
        )


def _post(
    session: Session,
    target: _Target,
    *,
    kind: TransferKind,
    other_account_id: int,
    amount: int,
    inbound: bool,
    key: str,
    fingerprint: str,
    floor: int | None,
    totals: dict[str, int],
    actor: User,
    now: datetime,
    reason: str | None = None,
    rule_id: int | None = None,
    persons: int | None = None,
    sale_id: int | None = None,
    reverses_id: int | None = None,
) -> Posting:
    """Move `amount` into or out of one locked household account, as one chained transfer.

    The UPDATE repeats the overdraft check in its WHERE (`balance - amount >= floor`), so
    even a caller that forgot the lock could never overdraw.
    """
    if not 0 < amount <= MAX_TRANSFER_POINTS:
        raise ValidationFailed(errors={"points": [_l("out of range")]})
    signed = amount if inbound else -amount
    if floor is not None and target.balance + signed < floor:
        raise InsufficientPoints(needed=amount, available=target.balance, floor=floor)
    balance_after, entry_seq = target.balance + signed, target.entry_count + 1
    debit, credit = (
        (other_account_id, target.account_id) if inbound else (target.account_id, other_account_id)
    )
    digest = transfer_digest(
        target.head_hash,
        idempotency_key=key,
        kind=kind,
        debit_account_id=debit,
        credit_account_id=credit,
        amount=amount,
        chain_account_id=target.account_id,
        entry_seq=entry_seq,
        balance_after=balance_after,
        created_at=now,
        reason=reason,
        sale_id=sale_id,
        reverses_id=reverses_id,
    )
    account_change = {
        "account_id": target.account_id,
        "seen_count": target.entry_count,
        "floor": floor,
        "delta": signed,
        "digest": digest,
        "d_earned": totals.get("earned_total", 0),
        "d_penalty": totals.get("penalty_total", 0),
        "d_redeemed": totals.get("redeemed_total", 0),
    }
    fields = {
        "idempotency_key": key,
        "request_hash": fingerprint,
        "kind": str(kind),
        "debit_account_id": debit,
        "credit_account_id": credit,
        "amount": amount,
        "chain_account_id": target.account_id,
        "entry_seq": entry_seq,
        "balance_after": balance_after,
        "reason": reason,
        "rule_id": rule_id,
        "persons": persons,
        "sale_id": sale_id,
        "reverses_id": reverses_id,
        "actor_id": actor.id,
        "created_at": now,
        "prev_hash": target.head_hash,
        "hash": digest,
    }
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        params = account_change | {f"t_{name}": value for name, value in fields.items()}
        transfer_id = conn.execute(_APPLY_AND_INSERT, params).scalar_one_or_none()
    else:
        applied = conn.execute(_APPLY, account_change)
        transfer_id = conn.execute(_INSERT, fields).scalar_one() if applied.rowcount else None
    if transfer_id is None:
        raise Conflict(_l("the account changed while posting; please try again"))
    cached = session.identity_map.get(identity_key(Account, target.account_id))
    if cached is not None:
        session.expire(cached)
    # A plain (transient) Transfer carrying the inserted row's values, for the caller.
    return Posting(Transfer(id=transfer_id, **fields), replayed=False)


def post_award(
    session: Session,
    *,
    actor: User,
    now: datetime,
    household_id: int,
    idempotency_key: str,
    rule_code: str | None = None,
    persons: int | None = None,
    points: int | None = None,
    reason: str | None = None,
) -> Posting:
    """An award (positive) or penalty (negative), by rule or by an explicit amount."""
    key = f"award:{idempotency_key}"
    fingerprint = request_fingerprint(
        household_id=household_id,
        rule_code=rule_code,
        persons=persons,
        points=points,
        reason=reason,
    )
    # Authorize before replaying: a replay must not show another village's transfer.
    household = get_household(session, household_id)
    _require_village(actor, household.village.code)
    target = _lock_target(session, household_id=household_id, key=key)
    replay = _replay(session, target, key, fingerprint)
    if replay:
        return replay
    _require_active(target)

    rule = None
    if (rule_code is None) == (points is None):
        raise ValidationFailed(_l("give either rule_code or points, not both"))
    if rule_code is not None:
        rule = find_rule(session, rule_code, household.village)
        if rule.per == "person":
            persons = 1 if persons is None else persons
            if not 1 <= persons <= people_count(household):
                raise ValidationFailed(
                    errors={"persons": [_l("must be 1 to %(most)s", most=people_count(household))]}
                )
            total = rule.points * persons
        else:
            if persons not in (None, 1):
                raise ValidationFailed(errors={"persons": [_l("this rule is per household")]})
            persons = None
            total = rule.points
        reason = reason or rule.title
    else:
        assert points is not None
        if persons is not None:
            raise ValidationFailed(errors={"persons": [_l("only with a per-person rule")]})
        if not reason or not reason.strip():
            raise ValidationFailed(errors={"reason": [_l("a reason is required without a rule")]})
        total = points
    if total == 0 or abs(total) > MAX_AWARD_POINTS:
        raise ValidationFailed(
            errors={
                "points": [
                    _l("must be non-zero and at most %(most)s either way", most=MAX_AWARD_POINTS)
                ]
            }
        )

    if total > 0:
        other, kind, totals = ISSUANCE_CODE, TransferKind.AWARD, {"earned_total": total}
        other_kind = AccountKind.ISSUANCE
    else:
        other, kind, totals = PENALTY_CODE, TransferKind.PENALTY, {"penalty_total": -total}
        other_kind = AccountKind.PENALTY
    return _post(
        session,
        target,
        kind=kind,
        other_account_id=_system_account(session, other, other_kind),
        amount=abs(total),
        inbound=total > 0,
        key=key,
        fingerprint=fingerprint,
        floor=None,
        totals=totals,
        actor=actor,
        now=now,
        reason=reason,
        rule_id=rule.id if rule else None,
        persons=persons,
    )


@dataclass(frozen=True)
class RedemptionHold:
    """A household's account locked for a redemption at a shop, not yet posted.

    The counter locks first and posts last: between the two it learns the balance the
    sale will leave (the sale row records it) without a second look at the account.
    """

    target: _Target
    key: str
    shop_code: str

    def balance_after(self, points: int) -> int:
        """What `points` would leave; refuses an inactive household or a breached floor."""
        _require_active(self.target)
        if self.target.balance - points < self.target.floor:
            raise InsufficientPoints(
                needed=points, available=self.target.balance, floor=self.target.floor
            )
        return self.target.balance - points


def hold_for_redemption(
    session: Session, *, actor: User, household_id: int, shop_code: str, idempotency_key: str
) -> RedemptionHold:
    """Lock the household's account for a redemption at the shop (one round trip)."""
    if not actor.may_sell_at(shop_code):
        raise Forbidden(_l("you may not sell at shop %(shop_code)s", shop_code=shop_code))
    key = f"redemption:{idempotency_key}"
    target = _lock_target(
        session, household_id=household_id, key=key, counter_code=shop_account_code(shop_code)
    )
    return RedemptionHold(target, key, shop_code)


def post_redemption(
    session: Session,
    hold: RedemptionHold,
    *,
    actor: User,
    now: datetime,
    points: int,
    sale_id: int | None = None,
    reason: str | None = None,
) -> Posting:
    """Post a held redemption. Never overdraws, and leaves the village's floor untouched."""
    target = hold.target
    fingerprint = request_fingerprint(
        household_id=target.household_id, shop_code=hold.shop_code, points=points, sale_id=sale_id
    )
    replay = _replay(session, target, hold.key, fingerprint)
    if replay:
        return replay
    _require_active(target)
    return _post(
        session,
        target,
        kind=TransferKind.REDEMPTION,
        other_account_id=target.counter_account_id
        or _system_account(session, shop_account_code(hold.shop_code), AccountKind.SHOP),
        amount=points,
        inbound=False,
        key=hold.key,
        fingerprint=fingerprint,
        floor=target.floor,
        totals={"redeemed_total": points},
        actor=actor,
        now=now,
        reason=reason,
        sale_id=sale_id,
    )


def redeem_points(
    session: Session,
    *,
    actor: User,
    now: datetime,
    household_id: int,
    shop_code: str,
    points: int,
    idempotency_key: str,
    sale_id: int | None = None,
    reason: str | None = None,
) -> Posting:
    """Spend points at a shop. Never overdraws, and leaves the village's floor untouched."""
    hold = hold_for_redemption(
        session,
        actor=actor,
        household_id=household_id,
        shop_code=shop_code,
        idempotency_key=idempotency_key,
    )
    return post_redemption(
        session, hold, actor=actor, now=now, points=points, sale_id=sale_id, reason=reason
    )


def refund_points(
    session: Session,
    *,
    actor: User,
    now: datetime,
    household_id: int,
    shop_code: str,
    points: int,
    idempotency_key: str,
    sale_id: int | None = None,
    reason: str | None = None,
) -> Posting:
    """Give points back for returned goods: the shop's redemptions account pays them.

    The counter bounds a refund by its sale; the ledger adds its own bound, so that no
    household is ever refunded more than it has spent in all.
    """
    if not actor.may_sell_at(shop_code):
        raise Forbidden(_l("you may not act for shop %(shop_code)s", shop_code=shop_code))
    key = f"refund:{idempotency_key}"
    fingerprint = request_fingerprint(
        household_id=household_id, shop_code=shop_code, points=points, sale_id=sale_id
    )
    counter_code = shop_account_code(shop_code)
    target = _lock_target(session, household_id=household_id, key=key, counter_code=counter_code)
    replay = _replay(session, target, key, fingerprint)
    if replay:
        return replay
    if points > target.redeemed_total:
        raise Conflict(
            _l(
                "a refund of %(points)s points is more than the %(redeemed)s points spent",
                points=points,
                redeemed=target.redeemed_total,
            )
        )
    return _post(
        session,
        target,
        kind=TransferKind.REFUND,
        other_account_id=target.counter_account_id
        or _system_account(session, counter_code, AccountKind.SHOP),
        amount=points,
        inbound=True,
        key=key,
        fingerprint=fingerprint,
        floor=None,
        totals={"redeemed_total": -points},
        actor=actor,
        now=now,
        reason=reason,
        sale_id=sale_id,
    )


def post_correction(
    session: Session,
    *,
    actor: User,
    now: datetime,
    transfer_id: int,
    reason: str,
    idempotency_key: str,
) -> Posting:
    """Undo a mistaken award or penalty by the opposite transfer; the original stays."""
    key = f"correction:{idempotency_key}"
    fingerprint = request_fingerprint(transfer_id=transfer_id, reason=reason)
    original = session.get(Transfer, transfer_id) if 0 < transfer_id < 2**62 else None
    if original is None:
        raise NotFound(_l("no transfer %(transfer_id)s", transfer_id=transfer_id))
    household = session.scalar(
        select(Household).join(Account).where(Account.id == original.chain_account_id)
    )
    assert household is not None
    # Authorize before replaying: a replay must not show another village's transfer.
    _require_village(actor, household.village.code)
    target = _lock_target(session, household_id=household.id, key=key)
    replay = _replay(session, target, key, fingerprint)
    if replay:
        return replay
    if original.kind not in (TransferKind.AWARD, TransferKind.PENALTY):
        raise Conflict(_l("only awards and penalties are corrected; sales are returned"))
    if session.scalar(select(Transfer.id).where(Transfer.reverses_id == transfer_id)):
        raise Conflict(
            _l("transfer %(transfer_id)s was already corrected", transfer_id=transfer_id)
        )
    if not reason.strip():
        raise ValidationFailed(errors={"reason": [_l("a correction needs a reason")]})
    was_award = original.kind == TransferKind.AWARD
    totals = (
        {"earned_total": -original.amount} if was_award else {"penalty_total": -original.amount}
    )
    return _post(
        session,
        target,
        kind=TransferKind.CORRECTION,
        other_account_id=original.debit_account_id if was_award else original.credit_account_id,
        amount=original.amount,
        inbound=not was_award,
        key=key,
        fingerprint=fingerprint,
        # Taking back a wrong award may overdraw: the points were never owed.
        floor=None,
        totals=totals,
        actor=actor,
        now=now,
        reason=reason,
        reverses_id=original.id,
    )


# --- CSV import ---------------------------------------------------------------------


@dataclass
class ImportResult:
    created: int = 0
    replayed: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)


def decode_spreadsheet_text(data: bytes) -> str:
    """UTF-8 (with or without Excel's BOM), else GB18030: what WPS and Chinese Excel save."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return data.decode("gb18030")
        except UnicodeDecodeError as exc:
            raise ValidationFailed(_l("the file is neither UTF-8 nor GB18030 text")) from exc


def parse_award_csv(data: bytes, *, max_rows: int) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) pairs; the header is line 1, as a spreadsheet numbers it."""
    text = decode_spreadsheet_text(data)
    if "\x00" in text:
        raise ValidationFailed(_l("the file is not CSV text"))
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise ValidationFailed(_l("the file is empty")) from None
    except csv.Error as exc:
        raise ValidationFailed(_l("not CSV: %(exc)s", exc=exc)) from exc
    missing = [c for c in IMPORT_COLUMNS if c not in header]
    if missing:
        raise ValidationFailed(_l("missing columns: %(columns)s", columns=", ".join(missing)))
    rows = []
    # Count records, not physical lines: a cell with a line break (Alt+Enter in Excel) is
    # still one spreadsheet row, and a blank row still has its number.
    line = 1
    try:
        for line, values in enumerate(reader, start=2):
            if not any(v.strip() for v in values):
                continue
            if len(rows) >= max_rows:
                raise ValidationFailed(_l("at most %(max_rows)s rows per file", max_rows=max_rows))
            row = {
                name: (values[i].strip() if i < len(values) else "")
                for i, name in enumerate(header)
            }
            rows.append((line, row))
    except csv.Error as exc:
        raise ValidationFailed(
            _l("line %(line)s: not CSV: %(exc)s", line=line + 1, exc=exc)
        ) from exc
    return rows


def _int_field(row: dict[str, str], name: str, *, required: bool) -> int | None:
    raw = row.get(name, "")
    if normalize_scanned(raw) == "":
        if required:
            raise ValidationFailed(errors={name: [_l("required")]})
        return None
    # A cadre's Chinese input method types full-width digits (１３); read as API.md says.
    value = parse_scanned_int(raw, max_digits=9)
    if value is None:
        raise ValidationFailed(errors={name: [_l("not a whole number: %(value)s", value=raw[:20])]})
    return value


def import_awards(
    session: Session, *, actor: User, now: datetime, rows: list[tuple[int, dict[str, str]]]
) -> ImportResult:
    """Post each good row (each under its own savepoint); report the bad ones by line."""
    result = ImportResult()
    for line, row in rows:
        try:
            household_id = _int_field(row, "household_id", required=True)
            persons = _int_field(row, "persons", required=False)
            key = row.get("idempotency_key", "")
            if not 1 <= len(key) <= 100:
                raise ValidationFailed(errors={"idempotency_key": [_l("1 to 100 characters")]})
            # A code, typed like the ids beside it. The key stays as it was written: a
            # file posted before must replay, not post again under a new spelling.
            rule_code = normalize_scanned(row.get("rule_code", ""))
            if not rule_code:
                raise ValidationFailed(errors={"rule_code": [_l("required")]})
            assert household_id is not None
            with session.begin_nested():
                posting = post_award(
                    session,
                    actor=actor,
                    now=now,
                    household_id=household_id,
                    idempotency_key=key,
                    rule_code=rule_code,
                    persons=persons,
                    reason=row.get("reason") or None,
                )
        except DomainError as exc:
            detail = exc.detail
            if isinstance(exc, ValidationFailed) and exc.extra.get("errors"):
                detail = "; ".join(
                    f"{k}: {', '.join(str(m) for m in v)}" for k, v in exc.extra["errors"].items()
                )
            result.errors.append({"line": line, "code": exc.code, "detail": str(detail)})
            continue
        if posting.replayed:
            result.replayed += 1
        else:
            result.created += 1
    return result


# --- reading ------------------------------------------------------------------------


@dataclass(frozen=True)
class StatementEntry:
    id: int
    at: datetime
    kind: str
    points: int
    balance_after: int
    reason: str | None
    shop_code: str | None
    sale_id: int | None


def household_statement(
    session: Session, household_id: int, *, limit: int = 50, before: int | None = None
) -> list[StatementEntry]:
    """The family integrity file, newest first, by keyset on transfer id."""
    household = get_household(session, household_id)
    account_id = household.account.id
    other = aliased(Account)
    stmt = (
        select(Transfer, other.kind, other.code)
        .join(
            other,
            other.id
            == func.coalesce(
                func.nullif(Transfer.debit_account_id, account_id), Transfer.credit_account_id
            ),
        )
        .where(Transfer.chain_account_id == account_id)
        .order_by(Transfer.id.desc())
        .limit(limit)
    )
    if before is not None:
        stmt = stmt.where(Transfer.id < before)
    entries = []
    for transfer, other_kind, other_code in session.execute(stmt):
        entries.append(
            StatementEntry(
                id=transfer.id,
                at=transfer.created_at,
                kind=transfer.kind,
                points=signed_points(transfer, account_id),
                balance_after=transfer.balance_after,
                reason=transfer.reason,
                shop_code=other_code.partition(":")[2] if other_kind == AccountKind.SHOP else None,
                sale_id=transfer.sale_id,
            )
        )
    return entries


def system_balance(session: Session, account_code: str) -> int:
    """Credits minus debits of a system account: an indexed sum, for reports only."""
    account_id = session.scalar(select(Account.id).where(Account.code == account_code))
    if account_id is None:
        return 0
    credits = session.scalar(
        select(func.coalesce(func.sum(Transfer.amount), 0)).where(
            Transfer.credit_account_id == account_id
        )
    )
    debits = session.scalar(
        select(func.coalesce(func.sum(Transfer.amount), 0)).where(
            Transfer.debit_account_id == account_id
        )
    )
    return int(credits or 0) - int(debits or 0)


@dataclass
class VerifyReport:
    ok: bool
    transfers_checked: int
    first_bad_id: int | None = None
    problems: list[str] = field(default_factory=list)


@dataclass
class _ChainState:
    head: str = GENESIS
    seq: int = 0
    balance: int = 0
    earned: int = 0
    penalty: int = 0
    redeemed: int = 0
    last_id: int | None = None


_TOTAL_FOR_KIND = {
    TransferKind.AWARD: ("earned", 1),
    TransferKind.PENALTY: ("penalty", 1),
    TransferKind.REDEMPTION: ("redeemed", 1),
    TransferKind.REFUND: ("redeemed", -1),
}


def verify_ledger(session: Session, *, batch: int = 10_000) -> VerifyReport:
    """Recompute every hash, chain link and cached balance; name the first bad transfer."""
    chains: dict[int, _ChainState] = {}
    kinds_of_reversed: dict[int, str] = {}
    report = VerifyReport(ok=True, transfers_checked=0)
    bad_ids: list[int] = []

    def flag(transfer_id: int | None, problem: str) -> None:
        report.ok = False
        report.problems.append(problem)
        if transfer_id is not None:
            bad_ids.append(transfer_id)

    for t in session.scalars(
        select(Transfer).order_by(Transfer.id).execution_options(yield_per=batch)
    ):
        report.transfers_checked += 1
        state = chains.setdefault(t.chain_account_id, _ChainState())
        if t.chain_account_id not in (t.debit_account_id, t.credit_account_id) or t.amount <= 0:
            flag(t.id, f"transfer {t.id}: malformed sides or amount")
        signed = t.amount if t.credit_account_id == t.chain_account_id else -t.amount
        expected_seq, expected_balance = state.seq + 1, state.balance + signed
        recomputed = transfer_digest(
            t.prev_hash,
            idempotency_key=t.idempotency_key,
            kind=t.kind,
            debit_account_id=t.debit_account_id,
            credit_account_id=t.credit_account_id,
            amount=t.amount,
            chain_account_id=t.chain_account_id,
            entry_seq=t.entry_seq,
            balance_after=t.balance_after,
            created_at=t.created_at,
            reason=t.reason,
            sale_id=t.sale_id,
            reverses_id=t.reverses_id,
        )
        if recomputed != t.hash:
            flag(t.id, f"transfer {t.id}: its hash does not match its contents")
        elif t.prev_hash != state.head:
            flag(t.id, f"transfer {t.id}: does not follow the previous transfer of its account")
        elif t.entry_seq != expected_seq or t.balance_after != expected_balance:
            flag(t.id, f"transfer {t.id}: position or balance_after out of step with history")
        state.head, state.seq, state.balance, state.last_id = (
            t.hash,
            expected_seq,
            expected_balance,
            t.id,
        )
        if t.kind == TransferKind.CORRECTION and t.reverses_id is not None:
            bucket = (
                "earned"
                if kinds_of_reversed.get(t.reverses_id) == TransferKind.AWARD
                else "penalty"
            )
            setattr(state, bucket, getattr(state, bucket) - t.amount)
        elif t.kind in _TOTAL_FOR_KIND:
            bucket, sign = _TOTAL_FOR_KIND[TransferKind(t.kind)]
            setattr(state, bucket, getattr(state, bucket) + sign * t.amount)
        if t.kind in (TransferKind.AWARD, TransferKind.PENALTY):
            kinds_of_reversed[t.id] = t.kind
        session.expunge(t)

    for account in session.scalars(
        select(Account).where(Account.kind == AccountKind.HOUSEHOLD).order_by(Account.id)
    ):
        state = chains.get(account.id, _ChainState())
        cached = (
            account.balance,
            account.earned_total,
            account.penalty_total,
            account.redeemed_total,
            account.entry_count,
            account.head_hash,
        )
        derived = (
            state.balance,
            state.earned,
            state.penalty,
            state.redeemed,
            state.seq,
            state.head,
        )
        if cached != derived:
            flag(
                state.last_id,
                f"account {account.code}: cached balance or totals disagree with its history",
            )
    if bad_ids:
        report.first_bad_id = min(bad_ids)
    return report
