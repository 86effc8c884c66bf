"""Shops: opening them, their settings, and who may act for which one."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from accounts.auth import User
from core.errors import Conflict, NotFound
from inventory.models import Shop


def create_shop(
    session: Session,
    *,
    actor: User,
    now: datetime,
    code: str,
    name: str,
    allow_negative_stock: bool = False,
) -> Shop:
    actor.require_admin(_l("only the county office opens shops"))
    if session.scalar(select(Shop.id).where(Shop.code == code)):
        raise Conflict(_l("shop %(code)s exists", code=code))
    shop = Shop(code=code, name=name, allow_negative_stock=allow_negative_stock, created_at=now)
    session.add(shop)
    session.flush()
    return shop


def update_shop(
    session: Session,
    *,
    actor: User,
    code: str,
    name: str | None = None,
    allow_negative_stock: bool | None = None,
) -> Shop:
    actor.require_admin(_l("only the county office changes a shop's settings"))
    shop = get_shop(session, code)
    if name is not None:
        shop.name = name
    if allow_negative_stock is not None:
        shop.allow_negative_stock = allow_negative_stock
    session.flush()
    return shop


def get_shop(session: Session, code: str) -> Shop:
    shop = session.scalar(select(Shop).where(Shop.code == code))
    if shop is None:
        raise NotFound(_l("no shop %(code)s", code=code))
    return shop


def list_shops(session: Session) -> Sequence[Shop]:
    return session.scalars(select(Shop).order_by(Shop.code)).all()


def shop_for_staff(session: Session, *, actor: User, code: str) -> Shop:
    """The shop, if the actor works there (or is the county office)."""
    actor.require_shop_staff(code)
    return get_shop(session, code)


def shop_for_manager(session: Session, *, actor: User, code: str) -> Shop:
    """The shop, if the actor manages it (or is the county office)."""
    actor.require_shop_manager(code)
    return get_shop(session, code)
