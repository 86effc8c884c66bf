"""Posting points: awards, penalties, redemptions, refunds and corrections, as chained transfers.

Every movement of points passes here: one household account locked, one transfer
inserted, its cached balance moved with it, in the caller's transaction.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import BigInteger, bindparam, insert, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from accounts.auth import User
from core import dialects
from core.errors import Conflict, InsufficientPoints, NotFound, ValidationFailed
from core.idempotency import replay_or_conflict, request_fingerprint
from core.ids import is_id
from ledger.chain import transfer_digest
from ledger.models import (
    SHOP_NODES,
    SHOPS,
    Account,
    AccountKind,
    Household,
    Transfer,
    TransferKind,
    Village,
)
from ledger.services.registry import get_household, people_count, require_active
from ledger.services.rules import MAX_AWARD_POINTS, find_rule

# A single sale or refund; far above any basket, far below integer overflow.
MAX_TRANSFER_POINTS = 1_000_000
ISSUANCE_CODE = "issuance"
PENALTY_CODE = "penalty"
# What a household's home shop node may spend offline, and so what the county keeps back
# for it (the setting OFFLINE_ALLOWANCE_POINTS; the edges pass theirs).
DEFAULT_OFFLINE_ALLOWANCE = 200


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


# --- system accounts ------------------------------------------------------------------


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


# --- one locked account, one chained transfer -----------------------------------------


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
    # The village's home shop, when that shop has a registered node: the escrow's holder.
    escrow_shop_code: str | None
    escrow_shop_name: str | None


# The hot path (every sale posts through here) runs on prebuilt Core statements: building
# ORM expressions and flushing a unit of work per redemption cost more CPU than the
# database work itself (bench/ledger.py).
_accounts = Account.__table__
_transfers = Transfer.__table__
_households = Household.__table__
_villages = Village.__table__
_existing = _transfers.alias("existing")
_counter = _accounts.alias("counter")


def _escrow_shop(column: str) -> object:
    """The home shop's code or name, if it has a node (tables by name: see ledger.models)."""
    return (
        select(SHOPS.c[column])
        .select_from(SHOPS.join(SHOP_NODES, SHOP_NODES.c.shop_id == SHOPS.c.id))
        .where(SHOPS.c.id == _villages.c.home_shop_id)
        .scalar_subquery()
        .label(f"escrow_shop_{column}")
    )


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
        _escrow_shop("code"),
        _escrow_shop("name"),
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
    existing_id = replay_or_conflict(
        target.existing_id,
        recorded=target.existing_fingerprint,
        fingerprint=fingerprint,
        key=key.partition(":")[2],
    )
    if existing_id is None:
        return None
    existing = session.get(Transfer, existing_id)
    assert existing is not None
    return Posting(existing, replayed=True)


def _require_active(target: _Target) -> None:
    require_active(target.household_id, target.status)


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
    if dialects.is_postgresql(conn):
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


# --- awards, penalties, redemptions, refunds, corrections -----------------------------


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
    actor.require_village(household.village.code)
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


class SpendMode(enum.StrEnum):
    """Which points of a household a redemption may take (the shop node's escrow).

    When the village's home shop has a node, the county keeps back the offline allowance,
    `min(cap, balance - floor)`, for that node. ONLINE (straight to the county, at any
    shop, the home shop included): only what lies beyond it, since the node may be
    selling that reserve offline at this very moment. VIA_NODE (a sale the home shop's
    node passed through while online): down to the floor, reserve included; the node
    learns the new allowance from the sale's answer and the next sync. OFFLINE (a sale the
    node made while its line was down, posted as it syncs): down to the floor, but no more
    than the allowance. SETTLE (an offline sale the allowance no longer covers, taken
    anyway because the goods have left): down to zero, never below. Households without
    such a node spend down to the floor everywhere.
    """

    ONLINE = "online"
    VIA_NODE = "via_node"
    OFFLINE = "offline"
    SETTLE = "settle"


@dataclass(frozen=True)
class RedemptionHold:
    """A household's account locked for a redemption at a shop, not yet posted.

    The counter locks first and posts last: between the two it learns the balance the
    sale will leave (the sale row records it) without a second look at the account.
    """

    target: _Target
    key: str
    shop_code: str
    mode: SpendMode = SpendMode.ONLINE
    allowance_cap: int = DEFAULT_OFFLINE_ALLOWANCE

    @property
    def escrowed(self) -> bool:
        return self.target.escrow_shop_code is not None and self.allowance_cap > 0

    @property
    def held_back(self) -> bool:
        """Whether this sale must leave the home shop's reserve alone."""
        if not self.escrowed:
            return False
        if self.mode is SpendMode.ONLINE:
            return True
        return self.mode is SpendMode.VIA_NODE and self.shop_code != self.target.escrow_shop_code

    @property
    def reserved(self) -> int:
        """The points kept back for the home shop's node: `min(cap, balance - floor)`."""
        if not self.escrowed:
            return 0
        return min(self.allowance_cap, max(0, self.target.balance - self.target.floor))

    @property
    def guard_floor(self) -> int:
        """The lowest balance this redemption may leave; the UPDATE's WHERE repeats it.

        ONLINE at another shop: `balance - points >= floor + cap` is exactly `points <=
        (balance - floor) - min(cap, balance - floor)` for any points > 0, and, unlike the
        reservation, it does not move with the balance, so the guard needs no re-read.
        """
        if self.mode is SpendMode.SETTLE:
            return 0
        if self.held_back:
            return self.target.floor + self.allowance_cap
        return self.target.floor

    def balance_after(self, points: int) -> int:
        """What `points` would leave; refuses an inactive household or a breached floor."""
        target = self.target
        if self.mode is SpendMode.SETTLE:
            # Goods that left a shop while its line was down: whatever the household's
            # state now, it pays what it can, down to zero and no further.
            if points > 0 and target.balance - points < 0:
                raise InsufficientPoints(needed=points, available=target.balance, floor=0)
            return target.balance - points
        _require_active(self.target)
        if self.mode is SpendMode.OFFLINE:
            # Only the home shop's node spends offline, and only its allowance.
            if target.escrow_shop_code != self.shop_code or points > self.reserved:
                raise InsufficientPoints(
                    needed=points,
                    available=target.balance,
                    floor=target.floor,
                    allowance=self.reserved if target.escrow_shop_code == self.shop_code else 0,
                    offline=True,
                )
        elif target.balance - points < self.guard_floor:
            raise InsufficientPoints(
                needed=points,
                available=target.balance,
                floor=target.floor,
                reserved=self.reserved if self.held_back else 0,
                reserved_for=target.escrow_shop_name if self.held_back else None,
            )
        return target.balance - points


def hold_for_redemption(
    session: Session,
    *,
    actor: User,
    household_id: int,
    shop_code: str,
    idempotency_key: str,
    mode: SpendMode = SpendMode.ONLINE,
    allowance_cap: int = DEFAULT_OFFLINE_ALLOWANCE,
) -> RedemptionHold:
    """Lock the household's account for a redemption at the shop (one round trip)."""
    if mode in (SpendMode.OFFLINE, SpendMode.SETTLE):
        actor.require_shop_node(shop_code)
    else:
        actor.require_shop_staff(shop_code)
    key = f"redemption:{idempotency_key}"
    target = _lock_target(
        session, household_id=household_id, key=key, counter_code=shop_account_code(shop_code)
    )
    return RedemptionHold(target, key, shop_code, mode, max(0, allowance_cap))


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
    # The escrow's own refusals, in words; the UPDATE's WHERE holds the guard floor anyway.
    hold.balance_after(points)
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
        floor=hold.guard_floor,
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
    mode: SpendMode = SpendMode.ONLINE,
    allowance_cap: int = DEFAULT_OFFLINE_ALLOWANCE,
) -> Posting:
    """Spend points at a shop. Never overdraws, and leaves the village's floor untouched."""
    hold = hold_for_redemption(
        session,
        actor=actor,
        household_id=household_id,
        shop_code=shop_code,
        idempotency_key=idempotency_key,
        mode=mode,
        allowance_cap=allowance_cap,
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
    actor.require_shop_staff(shop_code)
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
    actor.require_village(household.village.code)
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
