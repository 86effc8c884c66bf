"""Users, roles and bearer tokens: who is acting, and for which shop or village."""

from __future__ import annotations

import enum
import functools
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ParamSpec, TypeVar

from flask import current_app, g, request
from flask_babel import lazy_gettext as _l
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy import ForeignKey, String, bindparam, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from core.db import UTCDateTime, db, utcnow
from core.errors import Conflict, Forbidden, Unauthenticated, ValidationFailed


class Role(enum.StrEnum):
    ADMIN = "admin"
    CADRE = "cadre"
    MANAGER = "manager"
    CLERK = "clerk"
    # A shop's print agent: fetches and acknowledges that shop's print jobs, nothing else.
    PRINT_AGENT = "print_agent"
    # A shop's node on its counter PC: posts the sales it made while the county's line was
    # down (nodes package), for its own shop only; sells nothing online.
    SHOP_NODE = "shop_node"
    # A village group leader (or the county app's account): submits declarations of deeds
    # for the households of one village; sells nothing and sees no shop.
    REPORTER = "reporter"


TOKEN_PREFIX = "ipos_"
USERNAME_MAX = 64


class User(db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(USERNAME_MAX), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    # Scopes are codes, not foreign keys: config must not depend on ledger or inventory.
    shop_code: Mapped[str | None] = mapped_column(String(32))
    village_code: Mapped[str | None] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user")

    # Flask-Login protocol.
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.id)

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    # Scope rules in one place, so every service asks the same question the same way.
    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    def may_manage_village(self, village_code: str) -> bool:
        return self.is_admin or (self.role == Role.CADRE and self.village_code == village_code)

    def may_declare_for_village(self, village_code: str) -> bool:
        """Submit (and read) declarations of deeds for the village's households."""
        return self.is_admin or (self.role in _VILLAGE_ROLES and self.village_code == village_code)

    def may_sell_at(self, shop_code: str) -> bool:
        return self.is_admin or (
            self.role in (Role.MANAGER, Role.CLERK) and self.shop_code == shop_code
        )

    def may_manage_shop(self, shop_code: str) -> bool:
        return self.is_admin or (self.role == Role.MANAGER and self.shop_code == shop_code)

    def may_fetch_print_jobs(self, shop_code: str) -> bool:
        # A shop's node does its print agent's work (API.md, "Shop node").
        return self.is_admin or (
            self.role in (Role.PRINT_AGENT, Role.SHOP_NODE) and self.shop_code == shop_code
        )

    def may_post_offline_sales(self, shop_code: str) -> bool:
        """Only the shop's own node posts what it sold offline; not even the office."""
        return self.role == Role.SHOP_NODE and self.shop_code == shop_code

    # The guards every service calls: the same refusal, in the same words, everywhere.
    def require_admin(self, message: Any = None) -> None:
        if not self.is_admin:
            raise Forbidden(message or _l("only the county office may do this"))

    def require_village(self, village_code: str) -> None:
        if not self.may_manage_village(village_code):
            raise Forbidden(_l("outside your village"))

    def require_declarer(self, village_code: str) -> None:
        if not self.may_declare_for_village(village_code):
            raise Forbidden(_l("outside your village"))

    def require_shop_staff(self, shop_code: str) -> None:
        if not self.may_sell_at(shop_code):
            raise Forbidden(_l("you may not act for shop %(shop_code)s", shop_code=shop_code))

    def require_shop_node(self, shop_code: str) -> None:
        if not self.may_post_offline_sales(shop_code):
            raise Forbidden(
                _l("only the shop node of %(shop_code)s may do this", shop_code=shop_code)
            )

    def require_shop_manager(self, shop_code: str) -> None:
        if not self.may_manage_shop(shop_code):
            raise Forbidden(
                _l("only a manager of shop %(shop_code)s may do this", shop_code=shop_code)
            )


class ApiToken(db.Model):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # Only the SHA-256 of the token is kept: a copy of the database lets nobody in.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(back_populates="tokens")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


_SHOP_ROLES = (Role.MANAGER, Role.CLERK, Role.PRINT_AGENT, Role.SHOP_NODE)
# Roles that belong to one village: a cadre, and a group leader who reports its deeds.
_VILLAGE_ROLES = (Role.CADRE, Role.REPORTER)


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    role: str,
    shop_code: str | None = None,
    village_code: str | None = None,
) -> User:
    username = username.strip()
    if not username or len(username) > 64:
        raise ValidationFailed(_l("username must be 1 to 64 characters"))
    if role not in set(Role):
        raise ValidationFailed(_l("role must be one of %(roles)s", roles=", ".join(Role)))
    if role in _SHOP_ROLES and not shop_code:
        raise ValidationFailed(_l("a manager or clerk needs a shop"))
    if role == Role.CADRE and not village_code:
        raise ValidationFailed(_l("a cadre needs a village"))
    if role == Role.REPORTER and not village_code:
        raise ValidationFailed(_l("a group leader needs a village"))
    if len(password) < 8:
        raise ValidationFailed(_l("the password must be at least 8 characters"))
    if session.scalar(select(User.id).where(User.username == username)):
        raise Conflict(_l("user %(username)s exists", username=username))
    user = User(
        username=username,
        role=str(role),
        shop_code=shop_code if role in _SHOP_ROLES else None,
        village_code=village_code if role in _VILLAGE_ROLES else None,
    )
    user.set_password(password)
    session.add(user)
    session.flush()
    return user


def issue_token(
    session: Session, user: User, *, now: datetime, ttl: timedelta
) -> tuple[str, ApiToken]:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(user=user, token_hash=hash_token(token), created_at=now, expires_at=now + ttl)
    session.add(row)
    session.flush()
    return token, row


LOCK_AFTER_FAILURES = 5
LOCK_FOR = timedelta(minutes=15)
# A failure this old no longer counts towards a lock; its row is swept away.
FAILURES_FORGOTTEN_AFTER = timedelta(days=1)


class SignInFailure(db.Model):
    """Wrong passwords in a row for a username, kept whether or not such a user exists.

    Keyed by the name as typed, not by the user: if only real accounts locked, five tries
    would tell anyone which usernames exist.
    """

    __tablename__ = "sign_in_failures"

    username: Mapped[str] = mapped_column(String(USERNAME_MAX), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_failed_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


_failures = SignInFailure.__table__


@dataclass(frozen=True)
class SignIn:
    """The outcome of a password check: the user, or why not (locked until when)."""

    user: User | None
    locked_until: datetime | None = None


def sign_in(session: Session, username: str, password: str, *, now: datetime) -> SignIn:
    """Check a password and count failures: five wrong in a row lock the name a while.

    The caller commits whatever the outcome, so a failure is counted even though the
    request fails. A locked name is refused even with the right password. Unknown and
    inactive names count and lock exactly like real ones, at the same cost in time, so
    neither the answers nor their timing tell which usernames exist.
    """
    username = username[:USERNAME_MAX]
    locked_until = session.scalar(
        select(_failures.c.locked_until).where(_failures.c.username == username)
    )
    if locked_until is not None and locked_until > now:
        check_password_hash(_DUMMY_HASH, password)
        return SignIn(None, locked_until=locked_until)
    user = session.scalar(select(User).where(User.username == username))
    if user is not None and user.active:
        if user.check_password(password):
            session.execute(delete(_failures).where(_failures.c.username == username))
            return SignIn(user)
    else:
        check_password_hash(_DUMMY_HASH, password)
    return SignIn(None, locked_until=_count_failure(session, username, now))


def _count_failure(session: Session, username: str, now: datetime) -> datetime | None:
    """One more wrong password for the name; the lock's end if this one sets it."""
    session.execute(
        delete(_failures).where(
            _failures.c.last_failed_at < now - FAILURES_FORGOTTEN_AFTER,
            or_(_failures.c.locked_until.is_(None), _failures.c.locked_until < now),
        )
    )
    # An upsert: two wrong passwords at once for a new name must not collide on the key.
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    failures = session.execute(
        dialect.insert(_failures)
        .values(username=username, failures=1, last_failed_at=now)
        .on_conflict_do_update(
            index_elements=[_failures.c.username],
            set_={"failures": _failures.c.failures + 1, "last_failed_at": now},
        )
        .returning(_failures.c.failures)
    ).scalar_one()
    if failures < LOCK_AFTER_FAILURES:
        return None
    until = now + LOCK_FOR
    session.execute(
        update(_failures)
        .where(_failures.c.username == username)
        .values(failures=0, locked_until=until)
    )
    return until


def unlock_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise ValidationFailed(_l("no user %(username)s", username=username))
    session.execute(delete(_failures).where(_failures.c.username == username))
    return user


def authenticate_token(session: Session, token: str, *, now: datetime) -> User | None:
    # Every API request asks this: one query for the user, not the token then its user.
    return session.scalar(_USER_BY_TOKEN, {"token_hash": hash_token(token), "now": now})


_USER_BY_TOKEN = (
    select(User)
    .join(ApiToken, ApiToken.user_id == User.id)
    .where(
        ApiToken.token_hash == bindparam("token_hash"),
        ApiToken.expires_at > bindparam("now", type_=UTCDateTime()),
        User.active.is_(True),
    )
)


_DUMMY_HASH = generate_password_hash("not a real password")

login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = _l("Please sign in to open that page.")
login_manager.login_message_category = "info"
csrf = CSRFProtect()


@login_manager.user_loader
def _load_user(user_id: str) -> User | None:
    if not user_id.isdigit():
        return None
    user = db.session.get(User, int(user_id))
    return user if user is not None and user.active else None


def api_actor() -> User:
    """The user behind an API request: a bearer token, or the browser's session plus CSRF.

    A present Authorization header always decides, so a bad token is never rescued by a
    cookie; a cookie alone must carry the CSRF header, as the counter page's fetch does.
    """
    if "actor" in g:
        return g.actor
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        user = None
        if scheme.lower() == "bearer" and token.strip():
            user = authenticate_token(db.session, token.strip(), now=utcnow())
        if user is None:
            raise Unauthenticated(_l("missing, expired or unknown bearer token"))
    elif current_user.is_authenticated:
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            if current_app.config.get("NODE_MODE"):
                # A shop node's counter page may have been rendered by the county, whose
                # token the node cannot check: the header itself, which no other site's
                # page can send, is the node's defence.
                if not request.headers.get("X-CSRFToken"):
                    raise Forbidden(_l("CSRF token missing or invalid"))
            else:
                try:
                    csrf.protect()
                except CSRFError as exc:
                    raise Forbidden(_l("CSRF token missing or invalid")) from exc
        user = current_user._get_current_object()
    else:
        raise Unauthenticated(_l("Authorization: Bearer <token> is required"))
    g.actor = user
    return user


def current_actor() -> User:
    """The signed-in person as a plain User, to hand to services (pages only)."""
    return current_user._get_current_object()


P = ParamSpec("P")
R = TypeVar("R")


# Every role of a person. A print agent's token sits on an unattended counter PC for a
# year: it may fetch its shop's print jobs and nothing else, so "any role" leaves it out.
PEOPLE = (Role.ADMIN, Role.CADRE, Role.MANAGER, Role.CLERK)


def roles_required(*roles: Role) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """API views: authenticate, then refuse roles outside the list (403); none: any person."""
    allowed = {str(r) for r in roles or PEOPLE}

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            actor = api_actor()
            if actor.role not in allowed:
                raise Forbidden(_l("your role may not do this"))
            return fn(*args, **kwargs)

        return wrapper

    return decorate


def page_roles_required(*roles: Role) -> Callable[[Callable[P, Any]], Callable[P, Any]]:
    """HTML views: send strangers to the login page, refuse other roles with a 403 page."""
    allowed = {str(r) for r in roles or PEOPLE}

    def decorate(fn: Callable[P, Any]) -> Callable[P, Any]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if current_user.role not in allowed:
                raise Forbidden()
            return fn(*args, **kwargs)

        return wrapper

    return decorate
