"""Signing in: the token endpoint for API clients, and the login page for people."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_user, logout_user
from flask_wtf import FlaskForm
from marshmallow import fields, validate
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from accounts.auth import SignIn, issue_token, sign_in
from core.api import BaseSchema, LocalDateTime
from core.api import Blueprint as ApiBlueprint
from core.db import db, run_unit_of_work, utcnow
from core.errors import Unauthenticated
from core.limits import limiter
from core.timeutil import to_local

api_blp = ApiBlueprint("auth_api", __name__, url_prefix="/api/v1/auth", description="Sign in")


class TokenIn(BaseSchema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=64))
    password = fields.String(required=True, validate=validate.Length(min=1, max=256))


class TokenOut(BaseSchema):
    token = fields.String()
    expires_at = LocalDateTime()
    role = fields.String()


def _login_limit() -> str:
    # One budget per address for the page and the token endpoint together.
    return current_app.config.get("LOGIN_RATE_LIMIT", "20 per minute")


def _locked_message(until: datetime) -> str:
    return _(
        "Too many wrong passwords: this account is locked until %(time)s. "
        "Ask the county office to unlock it sooner.",
        time=to_local(until).strftime("%H:%M"),
    )


@api_blp.route("/token", methods=["POST"])
@limiter.shared_limit(_login_limit, scope="sign-in", methods=["POST"])
@api_blp.arguments(TokenIn)
@api_blp.response(201, TokenOut)
@api_blp.doc(security=[])
def create_token(data: dict[str, Any]) -> Any:
    now = utcnow()

    def attempt() -> tuple[SignIn, Any]:
        outcome = sign_in(db.session, data["username"], data["password"], now=now)
        if outcome.user is None:
            return outcome, None
        ttl = timedelta(hours=current_app.config["TOKEN_TTL_HOURS"])
        return outcome, issue_token(db.session, outcome.user, now=now, ttl=ttl)

    # Committed whatever the outcome: a wrong password must count towards the lockout.
    outcome, issued = run_unit_of_work(attempt)
    if issued is None:
        if outcome.locked_until is not None and outcome.locked_until > now:
            raise Unauthenticated(_locked_message(outcome.locked_until))
        raise Unauthenticated(_l("wrong username or password"))
    token, row = issued
    return {"token": token, "expires_at": row.expires_at, "role": outcome.user.role}


bp = Blueprint("auth", __name__)


class LoginForm(FlaskForm):
    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=64)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=256)])


def _safe_next(target: str | None) -> str:
    # Only local paths: a login link must not bounce a clerk to another site.
    # Browsers read "/\\host" as "//host", another site; refuse backslashes outright.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return url_for("home")


@bp.route("/login", methods=["GET", "POST"])
@limiter.shared_limit(_login_limit, scope="sign-in", methods=["POST"])
def login() -> Any:
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        now = utcnow()
        username, password = form.username.data, form.password.data
        # Committed whatever the outcome: a wrong password must count towards the lockout.
        outcome = run_unit_of_work(lambda: sign_in(db.session, username, password, now=now))
        if outcome.user is not None:
            login_user(outcome.user)
            db.session.commit()
            return redirect(_safe_next(request.args.get("next")))
        if outcome.locked_until is not None and outcome.locked_until > now:
            flash(_locked_message(outcome.locked_until), "error")
        else:
            flash(_("Wrong username or password."), "error")
        status = 401
    elif request.method == "POST":
        status = 400
    return render_template("auth/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    logout_user()
    flash(_("You have signed out."), "info")
    return redirect(url_for("auth.login"))
