"""Finding a declaration and who may read or decide it: the same answer for pages and API."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from accounts.auth import User
from core.errors import Forbidden, NotFound
from core.ids import is_id
from declarations.models import Declaration, Status


def get_declaration(session: Session, declaration_id: int, *, lock: bool = False) -> Declaration:
    """The declaration; with `lock`, its row locked for a decision (PostgreSQL: FOR UPDATE,
    so a second cadre deciding at once waits, then reads the first one's decision)."""
    if not is_id(declaration_id):
        raise NotFound(_l("no declaration %(id)s", id=declaration_id))
    if lock:
        session.execute(
            select(Declaration.id).where(Declaration.id == declaration_id).with_for_update()
        )
    found = session.get(Declaration, declaration_id, populate_existing=lock)
    if found is None:
        raise NotFound(_l("no declaration %(id)s", id=declaration_id))
    return found


def readable_declaration(session: Session, *, actor: User, declaration_id: int) -> Declaration:
    """A declaration the actor may see: the county office, or its village's people."""
    declaration = get_declaration(session, declaration_id)
    actor.require_declarer(declaration.village.code)
    return declaration


def require_decider(actor: User, declaration: Declaration) -> None:
    """A cadre of the declaration's village or the county office, never its submitter."""
    if not actor.may_manage_village(declaration.village.code):
        raise Forbidden(_l("only a cadre of the village or the county office decides declarations"))
    if declaration.submitted_by_id == actor.id:
        raise Forbidden(
            _l("you submitted this declaration; another cadre or the county office decides it")
        )


def may_decide(actor: User, declaration: Declaration) -> bool:
    """Whether the page should offer the actor the decision buttons now."""
    return (
        declaration.status == Status.PENDING
        and actor.may_manage_village(declaration.village.code)
        and declaration.submitted_by_id != actor.id
    )
