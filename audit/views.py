"""The county office's audit page: who changed what, when and from where, and its export."""

from __future__ import annotations

import io
from datetime import date, datetime, time, timedelta
from typing import Any

from flask import Blueprint, Response, render_template, request
from flask_babel import lazy_gettext as _l

from accounts.auth import Role, page_roles_required
from audit.actions import describe_action, describe_actor, describe_detail, matching_actions
from audit.log import AuditQuery, find_events
from core.db import db
from core.errors import ValidationFailed
from core.spreadsheets import SafeCsvWriter
from core.templating import ROLE_LABELS
from core.timeutil import local_tz, to_local

bp = Blueprint("audit", __name__)


def _query() -> tuple[AuditQuery, dict[str, str]]:
    args = {key: (request.args.get(key) or "").strip()[:100] for key in ("actor", "action")}
    days = {key: (request.args.get(key) or "").strip() for key in ("since", "until")}
    tz = local_tz()

    def start_of(day: date) -> datetime:
        return datetime.combine(day, time.min, tzinfo=tz)

    try:
        since = date.fromisoformat(days["since"]) if days["since"] else None
        until = date.fromisoformat(days["until"]) if days["until"] else None
        # A day's events run to the local midnight that ends it (none after 9999-12-31).
        end = start_of(until + timedelta(days=1)) if until else None
    except (ValueError, OverflowError) as exc:
        raise ValidationFailed(errors={"since": ["YYYY-MM-DD"], "until": ["YYYY-MM-DD"]}) from exc
    query = AuditQuery(
        actor=args["actor"] or None,
        action=args["action"] or None,
        actions=tuple(matching_actions(args["action"])),
        since=start_of(since) if since else None,
        until=end,
        limit=5000 if request.path.endswith(".csv") else 200,
    )
    return query, {**args, **days}


@bp.route("/audit")
@page_roles_required(Role.ADMIN)
def events() -> Any:
    query, form = _query()
    rows = find_events(db.session, query)
    return render_template(
        "audit/events.html",
        rows=rows,
        form=form,
        limit=query.limit,
        describe_action=describe_action,
        describe_actor=describe_actor,
        describe_detail=describe_detail,
    )


@bp.route("/audit.csv")
@page_roles_required(Role.ADMIN)
def export() -> Any:
    query, _form = _query()
    out = io.StringIO()
    writer = SafeCsvWriter(out, lineterminator="\r\n")
    headers = (
        _l("Time"),
        _l("User"),
        _l("Role"),
        _l("Network address"),
        _l("Operation"),
        _l("Method"),
        _l("Path"),
        _l("Details"),
    )
    writer.writerow([str(header) for header in headers])
    for row in find_events(db.session, query):
        writer.writerow(
            [
                to_local(row.at).strftime("%Y-%m-%d %H:%M:%S"),
                row.actor,
                str(ROLE_LABELS.get(row.role, row.role)) if row.role else "",
                row.address or "",
                describe_action(row.action),
                row.method or "",
                row.path or "",
                row.detail or "",
            ]
        )
    # A byte-order mark, so Excel and WPS read the Chinese as UTF-8.
    body = "\ufeff" + out.getvalue()
    return Response(
        body,
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
    )
