"""Villages and households: who holds points, where, and how many people a household is."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from accounts.auth import User
from core.errors import Conflict, NotFound, ValidationFailed
from core.ids import is_id
from core.scanned import parse_scanned_int
from ledger.chain import GENESIS
from ledger.models import (
    SHOP_NODES,
    SHOPS,
    Account,
    AccountKind,
    Household,
    HouseholdMember,
    Village,
)

# --- villages -------------------------------------------------------------------------

# `update_village(shop_code=KEEP)`: the home shop stays as it is (None clears it).
KEEP = object()


def _home_shop_id(session: Session, shop_code: str | None) -> int | None:
    """The id of the shop a village names as its home shop; an unknown code is refused."""
    if shop_code is None:
        return None
    shop_id = session.scalar(select(SHOPS.c.id).where(SHOPS.c.code == shop_code))
    if shop_id is None:
        raise ValidationFailed(errors={"shop_code": [_l("no shop %(code)s", code=shop_code)]})
    return int(shop_id)


def create_village(
    session: Session,
    *,
    actor: User,
    now: datetime,
    code: str,
    name: str,
    redemption_floor: int = 0,
    shop_code: str | None = None,
) -> Village:
    actor.require_admin()
    if session.scalar(select(Village.id).where(Village.code == code)):
        raise Conflict(_l("village %(code)s exists", code=code))
    village = Village(
        code=code,
        name=name,
        redemption_floor=redemption_floor,
        home_shop_id=_home_shop_id(session, shop_code),
        created_at=now,
    )
    session.add(village)
    session.flush()
    session.refresh(village)
    return village


def update_village(
    session: Session,
    *,
    actor: User,
    code: str,
    name: str | None = None,
    redemption_floor: int | None = None,
    shop_code: object = KEEP,
) -> Village:
    village = get_village(session, code)
    actor.require_village(code)
    if name is not None:
        village.name = name
    if redemption_floor is not None:
        village.redemption_floor = redemption_floor
    if shop_code is not KEEP:
        # The home shop decides whose points a shop node holds in reserve: the office's call.
        actor.require_admin(_l("only the county office may change a village's home shop"))
        assert shop_code is None or isinstance(shop_code, str)
        village.home_shop_id = _home_shop_id(session, shop_code)
    session.flush()
    session.refresh(village)
    return village


def shop_names(session: Session) -> list[tuple[str, str]]:
    """Every shop as (code, name), for choosing a village's home shop."""
    rows = session.execute(select(SHOPS.c.code, SHOPS.c.name).order_by(SHOPS.c.code)).all()
    return [(code, name) for code, name in rows]


def offline_escrow(
    session: Session, village: Village, allowance_cap: int, *, at_shop: str, via_node: bool = False
) -> tuple[int, str | None]:
    """What online sales at `at_shop` must leave above the floor for the village's home
    shop node, and that shop's name: (allowance_cap, name) when the home shop runs a node,
    else (0, None). Only the home shop's own node (`via_node`, selling at its shop) may
    spend the reserve: a sale straight to the county, even at the home shop, could meet
    the node selling the same reserve offline.

    The same rule the ledger's guard applies (posting.RedemptionHold.guard_floor), for
    pages that show what a household may spend.
    """
    if village.home_shop_id is None or allowance_cap <= 0:
        return 0, None
    home = session.execute(
        select(SHOPS.c.code, SHOPS.c.name)
        .select_from(SHOPS.join(SHOP_NODES, SHOP_NODES.c.shop_id == SHOPS.c.id))
        .where(SHOPS.c.id == village.home_shop_id)
    ).first()
    if home is None or (via_node and home.code == at_shop):
        return 0, None
    return allowance_cap, home.name


def get_village(session: Session, code: str) -> Village:
    village = session.scalar(select(Village).where(Village.code == code))
    if village is None:
        raise NotFound(_l("no village %(code)s", code=code))
    return village


def list_villages(session: Session) -> Sequence[Village]:
    return session.scalars(select(Village).order_by(Village.code)).all()


# --- households -----------------------------------------------------------------------


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
    actor.require_village(village_code)
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


def require_active(household_id: int, status: str) -> None:
    """Refuse to award, spend, declare or issue cards for a household that is not active."""
    if status != "active":
        raise Conflict(
            _l("household %(household_id)s is %(status)s", household_id=household_id, status=status)
        )


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
