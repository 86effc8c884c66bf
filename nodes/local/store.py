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
