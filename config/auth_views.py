"""Signing in: the token endpoint for API clients, and the login page for people."""

from __future__ import annotations

from datetime import timedelta
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

from config.api import BaseSchema, LocalDateTime
from config.api import Blueprint as ApiBlueprint
from config.auth import authenticate_password, issue_token
from config.db import db, transactional, utcnow
from config.errors import Unauthenticated

api_blp = ApiBlueprint("auth_api", __name__, url_prefix="/api/v1/auth", description="Sign in")


class TokenIn(BaseSchema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=64))
    password = fields.String(required=True, validate=validate.Length(min=1, max=256))


class TokenOut(BaseSchema):
    token = fields.String()
    expires_at = LocalDateTime()
    role = fields.String()


@api_blp.route("/token", methods=["POST"])
@api_blp.arguments(TokenIn)
@api_blp.response(201, TokenOut)
@api_blp.doc(security=[])
@transactional()
def create_token(data: dict[str, Any]) -> Any:
    user = authenticate_password(db.session, data["username"], data["password"])
    if user is None:
        raise Unauthenticated(_l("wrong username or password"))
    ttl = timedelta(hours=current_app.config["TOKEN_TTL_HOURS"])
    token, row = issue_token(db.session, user, now=utcnow(), ttl=ttl)
    return {"token": token, "expires_at": row.expires_at, "role": user.role}


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
def login() -> Any:
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        user = authenticate_password(db.session, form.username.data, form.password.data)
        if user is not None:
            login_user(user)
            db.session.commit()
            return redirect(_safe_next(request.args.get("next")))
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
