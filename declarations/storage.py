"""Where declaration photos live: files named by their SHA-256, outside the database.

The instance folder holds them by default (`PHOTO_DIR`, default `$HOME/photos`), two
levels deep by the name's first characters so no folder grows huge. A file is written
whole or not at all (a temporary file renamed into place), and a name already there is
the same content, so writing twice, or from two processes at once, is harmless. A
transaction that rolls back after writing leaves an unreferenced file, never a row
without its file. S3-compatible storage is not implemented; this class is the one place
it would plug in.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask_babel import lazy_gettext as _l

from core.errors import NotFound

log = logging.getLogger(__name__)

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
PHOTO = "jpg"
THUMBNAIL = "thumb.jpg"


class PhotoStore:
    """Photos and their thumbnails in a folder, by content hash."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str, kind: str = PHOTO) -> Path:
        if not _SHA256.match(sha256) or kind not in (PHOTO, THUMBNAIL):
            raise ValueError(f"not a stored photo name: {sha256!r} {kind!r}")
        return self.root / sha256[:2] / sha256[2:4] / f"{sha256}.{kind}"

    def put(self, sha256: str, data: bytes, kind: str = PHOTO) -> None:
        target = self.path(sha256, kind)
        if target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def read(self, sha256: str, kind: str = PHOTO) -> bytes:
        try:
            return self.path(sha256, kind).read_bytes()
        except FileNotFoundError as exc:
            # The row is there but not its file: the folder was moved or not restored.
            log.error("photo file missing: %s", self.path(sha256, kind))
            raise NotFound(
                _l(
                    "the photo's file is missing from the photo folder; "
                    "please tell the county office"
                )
            ) from exc


def photo_store_from_config(config: Mapping[str, Any]) -> PhotoStore:
    """The store the settings name: PHOTO_DIR, else the instance folder's photos/."""
    configured = config.get("PHOTO_DIR")
    root = Path(configured) if configured else Path(config["HOME"]) / "photos"
    return PhotoStore(root)
