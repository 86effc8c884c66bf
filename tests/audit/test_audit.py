"""The audit log: every committed change leaves a row with who, when, where and what."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError

from audit.log import AuditEvent
from config.cli import main
from core.db import db
from tests.factories import PASSWORD
from tests.helpers.pages import csrf_token, login, sign_in


def _events() -> list[AuditEvent]:
    db.session.rollback()
    try:
        return list(db.session.scalars(select(AuditEvent).order_by(AuditEvent.id)))
    finally:
        db.session.rollback()


def test_an_award_is_recorded_with_actor_address_and_request(client, factory):
    village = factory.village("ZJB")
    household = factory.household(village)
    headers = factory.headers(factory.admin)
    before = len(_events())
    response = client.post(
        "/api/v1/awards",
        json={"household_id": household.id, "points": 5, "reason": "扫雪", "idempotency_key": "a1"},
        headers=headers,
        environ_base={"REMOTE_ADDR": "10.1.2.3"},
    )
    assert response.status_code == 201
    [event] = _events()[before:]
    assert event.actor == factory.admin.username and event.role == "admin"
    assert event.address == "10.1.2.3" and event.method == "POST"
    assert event.path == "/api/v1/awards" and "扫雪" in event.detail


def test_a_refused_request_leaves_no_row(client, factory):
    headers = factory.headers(factory.admin)
    before = len(_events())
    refused = client.post(
        "/api/v1/awards",
        json={"household_id": 999999, "points": 5, "reason": "x", "idempotency_key": "a2"},
        headers=headers,
    )
    assert refused.status_code == 404
    assert len(_events()) == before


def test_sign_in_attempts_are_recorded_without_the_password(client, factory):
    factory.user("clerk", shop="GJY", username="clerk-audit")
    assert login(client, "clerk-audit", "wrong-" + PASSWORD).status_code == 401
    [event] = [e for e in _events() if e.path == "/login"]
    assert "clerk-audit" in event.detail and PASSWORD not in event.detail
    assert '"password": "***"' in event.detail and '"csrf_token": "***"' in event.detail


def test_the_log_refuses_updates_and_deletes(app, runner):
    created = runner.invoke(
        main, ["create-user", "x-audit", "--role", "admin", "--password", "p" * 10]
    )
    assert created.exit_code == 0, created.output
    [event] = [e for e in _events() if e.action == "cli.create-user"]
    assert event.actor.startswith("cli") and "x-audit" in event.detail
    for statement in (
        update(AuditEvent).where(AuditEvent.id == event.id).values(actor="someone else"),
        delete(AuditEvent).where(AuditEvent.id == event.id),
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            db.session.execute(statement)
        db.session.rollback()
    assert db.session.scalar(
        text("SELECT actor FROM audit_events WHERE id = :id"), {"id": event.id}
    )
    db.session.rollback()


def test_the_page_and_export_are_for_the_admin_only(client, factory):
    factory.shop("GJY")
    manager = factory.user("manager", shop="GJY", username="manager-audit")
    client.post(
        "/api/v1/products",
        json={"sku": "X1", "name": "=1+1", "points_price": 2, "unit": "个"},
        headers=factory.headers(factory.admin),
    )
    sign_in(client, manager.username)
    assert client.get("/audit").status_code == 403
    client.post("/logout", data={"csrf_token": csrf_token(client, "/counter")})
    sign_in(client, factory.admin.username)
    shown = client.get("/audit?action=products")
    assert shown.status_code == 200 and "/api/v1/products" in shown.get_data(as_text=True)
    export = client.get("/audit.csv?action=products")
    body = export.get_data(as_text=True)
    assert export.mimetype == "text/csv" and body.startswith("\ufeff")
    assert "/api/v1/products" in body
    assert client.get("/audit?since=not-a-date").status_code == 422
    assert client.get("/audit?until=9999-12-31").status_code == 422
