"""The node's local state: one SQLite file (WAL) in the state directory.

OWNER: helper B. Contract (the gateway and local app rely on it):

- `open_store(state_dir: Path) -> Store`: creates the directory, the SQLite file
  `node.db` in WAL mode (busy_timeout, synchronous=FULL: an offline sale that answered
  201 must survive a power cut), and every table: the county's metadata (`db.metadata`
  after importing the app's models: the local app signs people in against `users`,
  `api_tokens`, `sign_in_failures` and shows `shops` through the county's own views) and
  the node's own metadata (nodes.local.models.NodeBase).
- `Store.url` -> the SQLAlchemy URL of that file (the local app's SQLALCHEMY_DATABASE_URI).
- `Store.session()` -> a context manager yielding a Session that commits on success.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.orm import Session, sessionmaker

from core.db import configure_engine, db
from nodes.local.models import NodeBase, NodeState

DB_NAME = "node.db"


def _import_county_models() -> None:
    # As config.app does: every county table on db.metadata before create_all.
    import accounts.auth  # noqa: F401
    import audit.log  # noqa: F401
    import county.models  # noqa: F401
    import declarations.models  # noqa: F401
    import inventory.models  # noqa: F401
    import ledger.models  # noqa: F401
    import member_cards.models  # noqa: F401
    import nodes.models  # noqa: F401
    import pos.models  # noqa: F401
    import printing.models  # noqa: F401


class Store:
    """The node's SQLite file, its engine, and sessions on it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = f"sqlite:///{path}"
        self.engine: Engine = create_engine(self.url)
        # Every transaction BEGIN IMMEDIATE (core.db): one writer at a time, so two tabs
        # selling at once queue for the chain's next seq and receipt number.
        configure_engine(self.engine)
        event.listen(self.engine, "connect", _durable)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits when the block ends without an error, else rolls back."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def create_all(self) -> None:
        _import_county_models()
        db.metadata.create_all(self.engine)
        NodeBase.metadata.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()


def _durable(dbapi_connection: Any, _record: Any) -> None:
    # After configure_engine's listener (NORMAL): a 201 answered must survive a power cut.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def open_store(state_dir: Path) -> Store:
    """The node's store in `state_dir`, created (tables and all) on first use."""
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    store = Store(state_dir / DB_NAME)
    store.create_all()
    return store


# --- node_state ----------------------------------------------------------------------


def get_state(session: Session, key: str, default: Any = None) -> Any:
    value = session.scalar(select(NodeState.value).where(NodeState.key == key))
    return default if value is None else value


def set_state(session: Session, key: str, value: Any) -> None:
    row = session.get(NodeState, key)
    if row is None:
        session.add(NodeState(key=key, value=value))
    else:
        row.value = value
    session.flush()
