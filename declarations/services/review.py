"""Deciding declarations: approval posts the award through the rule once; decisions are final.

Approval and rejection both change the row only while it is still pending (a
conditional UPDATE), so of two cadres deciding at once one wins and the other is told it
was decided. The award's ledger key is the declaration's own, so nothing can post it twice,
and the approval's idempotency key, kept on the row, answers a retry with the same result.
A wrong approval is undone by a ledger correction of its transfer (correct_approval).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from accounts.auth import User
from core.errors import Conflict, Forbidden, IdempotencyConflict, ValidationFailed
from declarations.models import Declaration, Status
from declarations.services.access import get_declaration, require_decider
from ledger import services as ledger
from ledger.models import Transfer

REASON_MAX = 500
_declarations = Declaration.__table__


@dataclass(frozen=True)
class Approval:
    declaration: Declaration
    transfer_id: int
    replayed: bool


def approve_declaration(
    session: Session, *, actor: User, now: datetime, declaration_id: int, idempotency_key: str
) -> Approval:
    declaration = get_declaration(session, declaration_id, lock=True)
    require_decider(actor, declaration)
    earlier = session.scalar(select(Declaration).where(Declaration.decision_key == idempotency_key))
    if earlier is not None:
        if earlier.id != declaration.id:
            raise IdempotencyConflict(
                _l("idempotency key %(key)s was used for another request", key=idempotency_key)
            )
        assert earlier.transfer_id is not None
        return Approval(earlier, earlier.transfer_id, replayed=True)
    _require_pending(declaration)
    posting = ledger.post_award(
        session,
        actor=actor,
        now=now,
        household_id=declaration.household_id,
        idempotency_key=f"declaration-{declaration.id}",
        rule_code=declaration.rule_code,
        persons=declaration.persons,
    )
    _decide(
        session,
        declaration,
        status=Status.APPROVED,
        decided_by_id=actor.id,
        decided_at=now,
        decision_key=idempotency_key,
        transfer_id=posting.transfer.id,
    )
    return Approval(declaration, posting.transfer.id, replayed=False)


def reject_declaration(
    session: Session, *, actor: User, now: datetime, declaration_id: int, reason: str
) -> Declaration:
    declaration = get_declaration(session, declaration_id, lock=True)
    require_decider(actor, declaration)
    reason = (reason or "").strip()
    _require_pending(declaration)
    if not reason:
        raise ValidationFailed(errors={"reason": [_l("a rejection needs a reason")]})
    if len(reason) > REASON_MAX:
        raise ValidationFailed(
            errors={"reason": [_l("at most %(most)s characters", most=REASON_MAX)]}
        )
    _decide(
        session,
        declaration,
        status=Status.REJECTED,
        decided_by_id=actor.id,
        decided_at=now,
        reject_reason=reason,
    )
    return declaration


def correct_approval(
    session: Session, *, actor: User, now: datetime, declaration_id: int, reason: str
) -> ledger.Posting:
    """Take back a wrong approval's points by a ledger correction of its transfer.

    The declaration stays approved (decisions are final); its transfer is reversed, and
    the correction is found from it (`correction_of`). Keyed by the declaration, so a
    second correction is a replay, never a second reversal.
    """
    declaration = get_declaration(session, declaration_id)
    if not actor.may_manage_village(declaration.village.code):
        raise Forbidden(_l("only a cadre of the village or the county office corrects points"))
    if declaration.status != Status.APPROVED or declaration.transfer_id is None:
        raise Conflict(_l("only an approved declaration's points can be taken back"))
    return ledger.post_correction(
        session,
        actor=actor,
        now=now,
        transfer_id=declaration.transfer_id,
        reason=reason,
        idempotency_key=f"declaration-{declaration.id}",
    )


def correction_of(session: Session, declaration: Declaration) -> Transfer | None:
    """The correction that reversed this declaration's award, if one did."""
    if declaration.transfer_id is None:
        return None
    return session.scalar(select(Transfer).where(Transfer.reverses_id == declaration.transfer_id))


def _require_pending(declaration: Declaration) -> None:
    if declaration.status != Status.PENDING:
        raise Conflict(
            _l(
                "declaration %(id)s was already decided (%(status)s); decisions are final",
                id=declaration.id,
                status=declaration.status,
            ),
            status_now=declaration.status,
        )


def _decide(session: Session, declaration: Declaration, **values: object) -> None:
    changed = session.execute(
        update(_declarations)
        .where(_declarations.c.id == declaration.id, _declarations.c.status == Status.PENDING)
        .values(**values)
    ).rowcount
    if not changed:
        # Another decision committed between our read and this write.
        session.expire(declaration)
        _require_pending(declaration)
        raise Conflict(_l("declaration %(id)s was already decided", id=declaration.id))
    session.expire(declaration)
