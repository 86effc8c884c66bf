"""Sign-ins and tokens the county accepted, kept so that they still work while it is away.

The node never receives anyone's password hash from the county. It learns a password
only when a person signs in through it and the county says yes; it then keeps its own
salted hash (werkzeug's, as the county does) in the local `users` row, so the county's
own sign-in view, run by the local app, accepts that person offline. A sign-in learned
this way is good for SIGN_IN_VALID_FOR; a token, until the county said it expires.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from accounts.auth import ApiToken, User, hash_token
from nodes.local.models import AcceptedSignIn

# As long as the node may sell offline at all (OFFLINE_MAX_HOURS' default): a clerk who
# signed in before the line dropped can sign in again at any time it is still down.
SIGN_IN_VALID_FOR = timedelta(hours=72)


def accept_sign_in(session: Session, *, username: str, password: str, now: datetime) -> User | None:
    """Remember that the county let `username` in with `password`; the local user, if known."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        # Not synced yet (a brand-new node): the next feed brings it; nothing to remember.
        return None
    if not user.check_password(password):
        user.set_password(password)
    row = session.get(AcceptedSignIn, username)
    until = now + SIGN_IN_VALID_FOR
    if row is None:
        session.add(AcceptedSignIn(username=username, valid_until=until))
    else:
        row.valid_until = until
    session.flush()
    return user


def sign_in_allowed(session: Session, *, username: str, now: datetime) -> bool:
    """Whether `username` may sign in at the node without the county (it did, lately)."""
    row = session.get(AcceptedSignIn, username.strip())
    return row is not None and row.valid_until > now


def accept_token(
    session: Session, *, username: str, token: str, expires_at: datetime, now: datetime
) -> bool:
    """Remember a bearer token the county issued, until it expires; False if the user is unknown."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None or expires_at <= now:
        return False
    digest = hash_token(token)
    if session.scalar(select(ApiToken.id).where(ApiToken.token_hash == digest)) is None:
        session.add(ApiToken(user=user, token_hash=digest, created_at=now, expires_at=expires_at))
        session.flush()
    return True
