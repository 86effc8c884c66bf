"""Signing in: wrong passwords lock the account a while, and one address cannot hammer it."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from accounts.auth import LOCK_AFTER_FAILURES, SignInFailure
from config.cli import main
from core.db import db, utcnow
from core.limits import limiter
from tests.conftest import make_test_app
from tests.factories import PASSWORD
from tests.helpers.pages import login


def test_five_wrong_passwords_lock_the_account_with_a_clear_message(client, factory):
    clerk = factory.user("clerk", shop="GJY", username="clerk-lock")
    for _ in range(LOCK_AFTER_FAILURES - 1):
        refused = login(client, "clerk-lock", "wrong")
        assert refused.status_code == 401
        assert "锁定" not in refused.get_data(as_text=True)
    locked = login(client, "clerk-lock", "wrong")
    assert locked.status_code == 401 and "锁定" in locked.get_data(as_text=True)
    # Even the right password is refused while the lock lasts.
    still = login(client, "clerk-lock", PASSWORD)
    assert still.status_code == 401 and "锁定" in still.get_data(as_text=True)
    api = client.post("/api/v1/auth/token", json={"username": "clerk-lock", "password": PASSWORD})
    assert api.status_code == 401 and api.mimetype == "application/problem+json"
    assert api.get_json()["code"] == "unauthenticated" and "锁定" in api.get_json()["detail"]

    # When the lock has run out, the right password works and the count starts again.
    db.session.execute(
        update(SignInFailure)
        .where(SignInFailure.username == clerk.username)
        .values(locked_until=utcnow() - timedelta(seconds=1))
    )
    db.session.commit()
    assert login(client, "clerk-lock", PASSWORD).status_code == 302
    assert db.session.get(SignInFailure, "clerk-lock") is None
    db.session.rollback()


def test_an_unknown_name_locks_like_a_real_one_so_locks_list_no_usernames(client, factory):
    factory.user("clerk", shop="GJY", username="clerk-real")

    def answers(username: str) -> list[tuple[int, bool]]:
        seen = []
        for _ in range(LOCK_AFTER_FAILURES + 1):
            page = login(client, username, "wrong")
            seen.append((page.status_code, "锁定" in page.get_data(as_text=True)))
        return seen

    real, made_up = answers("clerk-real"), answers("clerk-made-up")
    assert real == made_up
    assert real[-1] == (401, True)
    api = client.post("/api/v1/auth/token", json={"username": "clerk-made-up", "password": "x"})
    assert api.status_code == 401 and "锁定" in api.get_json()["detail"]


def test_old_failures_are_forgotten_and_swept(session, factory):
    from accounts.auth import FAILURES_FORGOTTEN_AFTER, sign_in

    now = utcnow()
    for _ in range(LOCK_AFTER_FAILURES - 1):
        sign_in(session, "ghost", "wrong", now=now)
    assert session.get(SignInFailure, "ghost").failures == LOCK_AFTER_FAILURES - 1
    # A day later the old count is gone: one more wrong password is the first, not the fifth.
    later = now + FAILURES_FORGOTTEN_AFTER + timedelta(minutes=1)
    assert sign_in(session, "someone-else", "wrong", now=later).locked_until is None
    session.expire_all()
    assert session.get(SignInFailure, "ghost") is None
    assert sign_in(session, "ghost", "wrong", now=later).locked_until is None


def test_a_right_password_resets_the_count(client, factory):
    factory.user("clerk", shop="GJY", username="clerk-count")
    for _ in range(LOCK_AFTER_FAILURES - 1):
        login(client, "clerk-count", "wrong")
    assert login(client, "clerk-count", PASSWORD).status_code == 302
    client.post("/logout", data={})
    for _ in range(LOCK_AFTER_FAILURES - 1):
        assert login(client, "clerk-count", "wrong").status_code == 401
    assert login(client, "clerk-count", PASSWORD).status_code == 302


def test_the_office_unlocks_an_account_from_the_command_line(app, factory):
    factory.user("clerk", shop="GJY", username="clerk-unlock")
    client = app.test_client()
    for _ in range(LOCK_AFTER_FAILURES):
        login(client, "clerk-unlock", "wrong")
    assert login(client, "clerk-unlock", PASSWORD).status_code == 401
    result = app.test_cli_runner().invoke(main, ["unlock-user", "clerk-unlock"])
    assert result.exit_code == 0, result.output
    assert login(client, "clerk-unlock", PASSWORD).status_code == 302
    missing = app.test_cli_runner().invoke(main, ["unlock-user", "nobody"])
    assert missing.exit_code == 1


def test_one_address_is_slowed_down_whatever_the_username(backend, tmp_path):
    app = make_test_app(backend, tmp_path, LOGIN_RATE_LIMIT="3 per minute")
    limiter.reset()
    client = app.test_client()
    with app.app_context():
        answers = [
            client.post("/api/v1/auth/token", json={"username": f"u{n}", "password": "x"})
            for n in range(4)
        ]
        assert [a.status_code for a in answers] == [401, 401, 401, 429]
        assert answers[-1].mimetype == "application/problem+json"
        assert answers[-1].get_json()["code"] == "unauthenticated"
        assert login(client, "u9", "x").status_code == 429
        db.session.remove()
        db.engine.dispose()
    limiter.reset()
