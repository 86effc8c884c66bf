"""Secrets stay secret: hashed at rest, never in logs, never on error pages."""

from __future__ import annotations

import hashlib
import logging

from sqlalchemy import select

from accounts.auth import ApiToken, User
from core.db import db
from tests.factories import PASSWORD


def test_passwords_and_tokens_are_stored_hashed(client, factory):
    user = factory.user("clerk", shop="GJY", username="clerk-secret")
    token = factory.token(user)
    row = db.session.scalar(select(User).where(User.username == "clerk-secret"))
    assert PASSWORD not in row.password_hash and row.password_hash.startswith(
        ("scrypt:", "pbkdf2:")
    )
    hashes = set(db.session.scalars(select(ApiToken.token_hash)))
    assert token not in hashes and hashlib.sha256(token.encode()).hexdigest() in hashes


def test_a_crash_shows_and_logs_no_token_or_password(client, factory, monkeypatch, caplog):
    admin = factory.admin
    token = factory.token(admin)
    from ledger import api as ledger_api

    def explode(*_args, **_kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(ledger_api.services, "post_award", explode)
    caplog.set_level(logging.DEBUG)
    secret_reason = "password=hunter2-" + PASSWORD
    response = client.post(
        "/api/v1/awards",
        json={"household_id": 1, "points": 1, "reason": secret_reason, "idempotency_key": "s1"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 500
    body = response.get_data(as_text=True)
    assert token not in body and "boom" not in body and "Traceback" not in body
    assert token not in caplog.text and PASSWORD not in caplog.text
    page = client.post("/login", data={"username": admin.username, "password": "wrong-" + PASSWORD})
    assert PASSWORD not in page.get_data(as_text=True) and PASSWORD not in caplog.text
