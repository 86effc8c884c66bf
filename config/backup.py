"""Backups: one archive holding a consistent copy of the database, the secrets and the photos."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from config.settings import SECRET_FILES

FORMAT = "integrity-pos-backup/1"
MANIFEST = "manifest.json"
SQLITE_MEMBER = "database.sqlite3"
PG_MEMBER = "database.pgdump"
PHOTOS = "photos"
# Declaration photos as the photo store names them; nothing else under photos/ is restored.
_PHOTO_MEMBER = re.compile(r"^photos/[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}\.(jpg|thumb\.jpg)$")


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says why and nothing was changed."""


@dataclass(frozen=True)
class Manifest:
    format: str
    created_at: str
    backend: str
    alembic_revision: str | None
    members: dict[str, str]  # name -> sha256

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2, sort_keys=True).encode()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _backend(database_url: str) -> str:
    name = make_url(database_url).get_backend_name()
    if name not in ("sqlite", "postgresql"):
        raise BackupError(f"cannot back up a {name} database")
    return name


def _libpq_url(database_url: str) -> str:
    # pg_dump and pg_restore speak libpq, which knows no SQLAlchemy driver suffix.
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def _sqlite_path(database_url: str) -> Path:
    database = make_url(database_url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database has nothing to back up")
    return Path(database)


def _alembic_revision(database_url: str) -> str | None:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            return conn.scalar(text("SELECT version_num FROM alembic_version"))
    finally:
        engine.dispose()


def _has_data(database_url: str) -> bool:
    """True when the target already holds a ledger: restoring over it would lose it."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("transfers"):
                return False
            return conn.scalar(text("SELECT count(*) FROM transfers")) > 0
    finally:
        engine.dispose()


def _run(argv: list[str]) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=3600)
    except FileNotFoundError as exc:
        raise BackupError(f"{argv[0]} is not installed (PostgreSQL client tools)") from exc
    if done.returncode != 0:
        raise BackupError(f"{argv[0]} failed: {done.stderr.strip()[-2000:]}")


def _photo_files(photo_dir: Path | None) -> dict[str, Path]:
    if photo_dir is None or not photo_dir.is_dir():
        return {}
    found = {}
    for path in sorted(photo_dir.rglob("*")):
        name = f"{PHOTOS}/{path.relative_to(photo_dir).as_posix()}"
        if path.is_file() and _PHOTO_MEMBER.match(name):
            found[name] = path
    return found


def backup_instance(
    *,
    database_url: str,
    home: Path,
    target: Path,
    now: datetime,
    photo_dir: Path | None = None,
) -> Manifest:
    """Write the archive to `target` (atomically: a half-written file never has the name).

    The database copy is a consistent snapshot taken while sales go on: SQLite's online
    backup API, or pg_dump's single-transaction snapshot on PostgreSQL. The photos are
    listed after the snapshot: a photo's file is written before its declaration commits,
    so every photo the snapshot refers to is there (and a later one is harmless).
    """
    backend = _backend(database_url)
    target = target.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".backup-") as scratch:
        work = Path(scratch)
        files: dict[str, Path] = {}
        if backend == "sqlite":
            source_path = _sqlite_path(database_url)
            if not source_path.exists():
                raise BackupError(f"no database at {source_path}")
            copy = work / SQLITE_MEMBER
            source = sqlite3.connect(source_path, timeout=30)
            dest = sqlite3.connect(copy)
            try:
                source.backup(dest)
                if dest.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                    raise BackupError("the copy failed SQLite's integrity check")
            finally:
                dest.close()
                source.close()
            files[SQLITE_MEMBER] = copy
        else:
            dump = work / PG_MEMBER
            _run(
                [
                    "pg_dump",
                    "--format=custom",
                    "--no-owner",
                    "--no-privileges",
                    f"--file={dump}",
                    _libpq_url(database_url),
                ]
            )
            files[PG_MEMBER] = dump
        # Without the card signing key every printed card would stop working after a restore.
        for filename in SECRET_FILES.values():
            secret = home / filename
            if secret.exists():
                files[filename] = secret
        files.update(_photo_files(photo_dir))
        manifest = Manifest(
            format=FORMAT,
            created_at=now.isoformat(),
            backend=backend,
            alembic_revision=_alembic_revision(database_url),
            members={name: _sha256(path) for name, path in files.items()},
        )
        partial = work / "archive.tar.gz"
        with tarfile.open(partial, "w:gz") as tar:
            info = tarfile.TarInfo(MANIFEST)
            body = manifest.to_json()
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
            for name, path in files.items():
                tar.add(path, arcname=name)
        with partial.open("rb") as fh:
            os.fsync(fh.fileno())
        os.replace(partial, target)
    return manifest


def read_manifest(archive: Path) -> Manifest:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            member = tar.extractfile(MANIFEST)
            if member is None:
                raise KeyError(MANIFEST)
            raw = json.loads(member.read())
    except FileNotFoundError as exc:
        raise BackupError(f"no file {archive}") from exc
    except (tarfile.TarError, KeyError, ValueError, OSError, EOFError) as exc:
        raise BackupError(f"{archive} is not an integrity-pos backup ({exc})") from exc
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise BackupError(f"{archive} is not an integrity-pos backup of format {FORMAT}")
    try:
        return Manifest(**raw)
    except TypeError as exc:
        raise BackupError(f"{archive} has a damaged manifest") from exc


def _extract(archive: Path, manifest: Manifest, into: Path) -> dict[str, Path]:
    """Unpack the listed members only, each checked against its recorded digest."""
    out: dict[str, Path] = {}
    with tarfile.open(archive, "r:gz") as tar:
        for name, digest in manifest.members.items():
            photo = _PHOTO_MEMBER.match(name)
            if not photo and ("/" in name or name.startswith(".")):
                raise BackupError(f"unexpected member {name!r} in the backup")
            member = tar.extractfile(name)
            if member is None:
                raise BackupError(f"the backup lacks {name}")
            path = into / name
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("wb") as fh:
                shutil.copyfileobj(member, fh)
            if _sha256(path) != digest:
                raise BackupError(f"{name} in the backup is damaged (checksum differs)")
            out[name] = path
    return out


def restore_instance(
    *,
    archive: Path,
    database_url: str,
    home: Path,
    known_revisions: set[str],
    force: bool,
    photo_dir: Path | None = None,
) -> Manifest:
    """Put the archive's database, secrets and photos in place of the current (empty) ones.

    Everything is checked before anything is written: the format, every checksum, that the
    backup's backend matches, that its schema is one this code knows, and that the target
    holds no ledger yet (unless forced).
    """
    manifest = read_manifest(archive)
    backend = _backend(database_url)
    if manifest.backend != backend:
        raise BackupError(
            f"the backup is of a {manifest.backend} database; this instance uses {backend}"
        )
    if manifest.alembic_revision and manifest.alembic_revision not in known_revisions:
        raise BackupError(
            f"the backup's schema {manifest.alembic_revision} is newer than this program"
        )
    if not force and _has_data(database_url):
        raise BackupError("the target database already holds a ledger; use --force to replace it")
    home.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=home, prefix=".restore-") as scratch:
        files = _extract(archive, manifest, Path(scratch))
        if backend == "sqlite":
            if SQLITE_MEMBER not in files:
                raise BackupError("the backup holds no SQLite database")
            target = _sqlite_path(database_url)
            target.parent.mkdir(parents=True, exist_ok=True)
            # The backup API writes the whole file under one lock: no half-restored database.
            source = sqlite3.connect(files[SQLITE_MEMBER])
            dest = sqlite3.connect(target, timeout=30)
            try:
                source.backup(dest)
            finally:
                dest.close()
                source.close()
        else:
            if PG_MEMBER not in files:
                raise BackupError("the backup holds no PostgreSQL dump")
            _run(
                [
                    "pg_restore",
                    "--clean",
                    "--if-exists",
                    "--no-owner",
                    "--no-privileges",
                    "--single-transaction",
                    f"--dbname={_libpq_url(database_url)}",
                    str(files[PG_MEMBER]),
                ]
            )
        for filename in SECRET_FILES.values():
            if filename in files:
                dest_path = home / filename
                shutil.copyfile(files[filename], dest_path)
                dest_path.chmod(0o600)
        if photo_dir is not None:
            # Named by content: a file already there is the same photo and stays.
            for name, path in files.items():
                if _PHOTO_MEMBER.match(name):
                    dest_path = photo_dir / name.removeprefix(f"{PHOTOS}/")
                    if not dest_path.exists():
                        dest_path.parent.mkdir(parents=True, exist_ok=True)
                        shutil.move(path, dest_path)
    return manifest
