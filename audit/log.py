"""The audit log: every change made through the app, by whom, when and from where; append-only.

Every state-changing request that commits leaves one row, written in the same transaction
just before its commit, so a change and its audit row exist together or not at all. The
row records the actor, their address, the operation (method, path, endpoint) and the
request's content with secrets removed. Command-line changes record themselves through
`record_event`. Triggers in the database refuse UPDATE and DELETE on the table.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import g, has_request_context, request
from flask_login import current_user
from flask_sqlalchemy.session import Session as FlaskSession
from sqlalchemy import DDL, BigInteger, Index, Integer, String, Text, event, insert, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.db import UTCDateTime, db, utcnow

MAX_DETAIL = 4000
_SECRET_WORDS = ("password", "token", "csrf", "secret", "payload")
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class AuditEvent(db.Model):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(64))
    role: Mapped[str | None] = mapped_column(String(16))
    address: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(120))
    method: Mapped[str | None] = mapped_column(String(8))
    path: Mapped[str | None] = mapped_column(String(300))
    detail: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_audit_events_actor_at", "actor", "at"),)


# Append-only in the database itself, not just in this code: the same statements are in
# the migration that creates the table.
APPEND_ONLY_SQL = {
    "postgresql": [
        """CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'the audit log is append-only';
END;
$$ LANGUAGE plpgsql""",
        """CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()""",
    ],
    "sqlite": [
        """CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
        """CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
    ],
}
for _dialect, _statements in APPEND_ONLY_SQL.items():
    for _statement in _statements:
        event.listen(
            AuditEvent.__table__, "after_create", DDL(_statement).execute_if(dialect=_dialect)
        )


def _redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: "***" if any(word in str(key).lower() for word in _SECRET_WORDS) else _redact(v)
            for key, v in value.items()
        }
    if isinstance(value, list):
        return [_redact(v) for v in value]
    return value


def _request_detail() -> str | None:
    """What was asked, without secrets: JSON or form fields, or a digest of anything else."""
    if request.is_json:
        body = request.get_json(silent=True)
        content = _redact(body) if body is not None else None
    elif request.form or request.files:
        content = _redact(
            {key: values if len(values) > 1 else values[0] for key, values in request.form.lists()}
        )
        if request.files:
            content["files"] = [f.filename for f in request.files.values()]
    else:
        raw = request.get_data(cache=True)
        if not raw:
            return None
        content = {
            "content_type": request.mimetype,
            "bytes": len(raw),
            "sha256": hashlib.sha256(raw).hexdigest(),
        }
    text = json.dumps(content, ensure_ascii=False, sort_keys=True, default=str)
    return text[:MAX_DETAIL]


def _actor() -> tuple[int | None, str, str | None]:
    user = g.get("actor")
    if user is None and current_user and current_user.is_authenticated:
        user = current_user
    if user is None:
        return None, "anonymous", None
    return user.id, user.username, user.role


def _record_request(session: Session) -> None:
    if not has_request_context() or request.method not in _WRITES or g.get("_audited"):
        return
    g._audited = True
    actor_id, actor, role = _actor()
    session.connection().execute(
        insert(AuditEvent.__table__).values(
            at=utcnow(),
            actor_id=actor_id,
            actor=actor[:64],
            role=role,
            address=(request.remote_addr or "")[:64] or None,
            action=(request.endpoint or "unknown")[:120],
            method=request.method,
            path=request.path[:300],
            detail=_request_detail(),
        )
    )


def record_event(
    session: Session, *, actor: str, action: str, detail: dict[str, Any] | None = None
) -> None:
    """A change made outside a request (the command line): recorded the same way."""
    session.add(
        AuditEvent(
            at=utcnow(),
            actor=actor[:64],
            action=action[:120],
            address="localhost",
            detail=json.dumps(_redact(detail or {}), ensure_ascii=False, sort_keys=True)[
                :MAX_DETAIL
            ],
        )
    )


@dataclass(frozen=True)
class AuditQuery:
    actor: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 200
    # Endpoints `action` names in words (audit.actions.matching_actions), matched as well.
    actions: tuple[str, ...] = ()


def find_events(session: Session, query: AuditQuery) -> Sequence[AuditEvent]:
    """Newest first; `action` matches the endpoint name or the path (or one of `actions`)."""
    stmt = select(AuditEvent)
    if query.actor:
        stmt = stmt.where(AuditEvent.actor == query.actor)
    if query.action:
        pattern = f"%{query.action}%"
        matches = AuditEvent.action.like(pattern) | AuditEvent.path.like(pattern)
        if query.actions:
            matches = matches | AuditEvent.action.in_(query.actions)
        stmt = stmt.where(matches)
    if query.since:
        stmt = stmt.where(AuditEvent.at >= query.since)
    if query.until:
        stmt = stmt.where(AuditEvent.at < query.until)
    return session.scalars(stmt.order_by(AuditEvent.id.desc()).limit(query.limit)).all()


# Registered once, on the session class every request's session is made from.
@event.listens_for(FlaskSession, "before_commit")
def _before_commit(session: Session) -> None:
    _record_request(session)


@event.listens_for(FlaskSession, "after_rollback")
def _after_rollback(session: Session) -> None:
    # A retried unit of work rolled its audit row back with it: write it again next time.
    if has_request_context():
        g.pop("_audited", None)
