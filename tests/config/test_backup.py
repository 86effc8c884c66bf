"""Backup under load and restore into a fresh home: every committed sale back, ledger clean."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.engine import make_url

from config.app import create_app
from config.cli import main
from config.settings import normalize_database_url
from core.db import db
from core.timeutil import local_tz
from declarations.storage import THUMBNAIL, photo_store_from_config
from ledger.services import verify_ledger
from member_cards import services as cards
from member_cards.signing import keyring_from_config
from pos.models import Sale
from pos.services import daily_report
from tests.conftest import BACKENDS, PG_URL
from tests.factories import Factory


def _admin_url() -> str:
    assert PG_URL
    return make_url(PG_URL).set(database="postgres").render_as_string(hide_password=False)


@pytest.fixture(params=BACKENDS)
def urls(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Database URLs of the source instance and of the fresh one restored into."""
    if request.param == "sqlite":
        yield (f"sqlite:///{tmp_path / 'a' / 'integrity.db'}", f"sqlite:///{tmp_path / 'b.db'}")
        return
    base = make_url(PG_URL).database
    names = [f"{base}_bk_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    with psycopg.connect(_admin_url(), autocommit=True) as conn:
        for name in names:
            conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield tuple(  # type: ignore[misc]
            normalize_database_url(make_url(PG_URL).set(database=name).render_as_string(False))
            for name in names
        )
    finally:
        with psycopg.connect(_admin_url(), autocommit=True) as conn:
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _instance(home: Path, url: str) -> Flask:
    # No secrets in the config: they come from the home's files, as in production.
    return create_app({"TESTING": True, "HOME": str(home), "SQLALCHEMY_DATABASE_URI": url})


def _invoke(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(main, list(args), catch_exceptions=False)


def _sell_until(app: Flask, stop: threading.Event, headers: dict, hh: int, done: list) -> None:
    client = app.test_client()
    while not stop.is_set():
        key = uuid.uuid4().hex
        response = client.post(
            "/api/v1/shops/GJY/sales",
            json={"household_id": hh, "lines": [{"sku": "SOAP", "qty": 1}], "idempotency_key": key},
            headers=headers,
        )
        if response.status_code == 201:
            done.append((time.monotonic(), response.get_json()["receipt_no"]))
        elif response.status_code != 503:
            raise AssertionError(response.get_json())


def _wait_for(done: list, count: int, sellers: list[threading.Thread]) -> None:
    deadline = time.monotonic() + 60
    while len(done) < count:
        assert all(t.is_alive() for t in sellers), "a seller stopped: see its traceback"
        assert time.monotonic() < deadline, f"only {len(done)} sales in a minute"
        time.sleep(0.01)


def test_backup_under_load_restores_every_committed_sale(urls, tmp_path):
    source_url, target_url = urls
    home_a, home_b = tmp_path / "a", tmp_path / "b"
    source = _instance(home_a, source_url)
    assert _invoke(source, "init-db").exit_code == 0
    with source.app_context():
        factory = Factory(db.session)
        shop = factory.shop("GJY")
        soap = factory.product("SOAP", name="肥皂", points_price=1)
        factory.receive(shop, (soap, 10_000))
        households = [factory.household(factory.village("ZJB"), balance=5_000)]
        households.append(factory.household(households[0].village, balance=5_000))
        _card, payload = factory.card(households[0])
        clerk = factory.user("clerk", shop="GJY")
        headers = [factory.headers(clerk) for _ in households]
        ids = [h.id for h in households]
        db.session.remove()

    stop, done = threading.Event(), []
    sellers = [
        threading.Thread(target=_sell_until, args=(source, stop, headers[i], ids[i], done))
        for i in range(2)
    ]
    for thread in sellers:
        thread.start()
    try:
        _wait_for(done, 20, sellers)
        started = time.monotonic()
        archive = tmp_path / "backups" / "nightly.tar.gz"
        with source.app_context():
            result = _invoke(source, "backup", str(archive))
        assert result.exit_code == 0, result.output
        _wait_for(done, 60, sellers)  # selling went on during and after the backup
    finally:
        stop.set()
        for thread in sellers:
            thread.join()
    committed_before = {receipt for at, receipt in done if at < started}
    assert len(committed_before) >= 20

    with tarfile.open(archive) as tar:
        assert {"manifest.json", "card_signing_key", "secret_key"} <= set(tar.getnames())

    target = _instance(home_b, target_url)
    with target.app_context():
        result = _invoke(target, "restore", str(archive))
        assert result.exit_code == 0, result.output
        assert "verified" in result.output
    # A new process reads the restored secrets: the old cards work on the new machine.
    restored = _instance(home_b, target_url)
    with restored.app_context():
        receipts = set(db.session.scalars(select(Sale.receipt_no)))
        assert committed_before <= receipts
        assert verify_ledger(db.session).ok
        card = cards.resolve_card(
            db.session, payload=payload, keyring=keyring_from_config(restored.config)
        )
        assert card.household_id == ids[0]
        admin = Factory(db.session).admin
        day = db.session.scalar(select(Sale.business_day).limit(1))
        report = daily_report(db.session, actor=admin, shop_code="GJY", day=day, tz=local_tz())
        assert report.matches_ledger and report.sales == len(receipts)
        db.session.remove()

        # A second restore over a live ledger is refused, and changes nothing.
        refused = _invoke(restored, "restore", str(archive))
        assert refused.exit_code == 1 and "--force" in refused.output
        assert set(db.session.scalars(select(Sale.receipt_no))) == receipts
        db.session.remove()


def test_damaged_or_foreign_archives_are_refused_before_anything_changes(app, tmp_path, runner):
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not a backup at all")
    result = runner.invoke(main, ["restore", str(junk)])
    assert result.exit_code == 1 and "not an integrity-pos backup" in result.output
    missing = runner.invoke(main, ["restore", str(tmp_path / "nowhere.tar.gz")])
    assert missing.exit_code == 1 and "no file" in missing.output

    archive = tmp_path / "good.tar.gz"
    assert runner.invoke(main, ["backup", str(archive)]).exit_code == 0
    # Flip bytes of the database member but keep the manifest: the checksum must catch it.
    damaged = tmp_path / "damaged.tar.gz"
    with tarfile.open(archive) as src, tarfile.open(damaged, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read()  # type: ignore[union-attr]
            if member.name.startswith("database"):
                data = data[:100] + bytes(b ^ 0xFF for b in data[100:200]) + data[200:]
            dst.addfile(member, io.BytesIO(data))
    result = runner.invoke(main, ["restore", "--force", str(damaged)])
    assert result.exit_code == 1 and "damaged" in result.output


def test_declaration_photos_travel_with_the_backup(tmp_path):
    # A village's evidence for its points: a restore without the photos would show their
    # declarations with "the photo's file is missing".
    source = _instance(tmp_path / "a", f"sqlite:///{tmp_path / 'a' / 'integrity.db'}")
    assert _invoke(source, "init-db").exit_code == 0
    store = photo_store_from_config(source.config)
    digest = hashlib.sha256(b"photo").hexdigest()
    store.put(digest, b"photo")
    store.put(digest, b"thumbnail", THUMBNAIL)
    (store.root / "notes.txt").write_text("not a photo")

    archive = tmp_path / "nightly.tar.gz"
    with source.app_context():
        assert _invoke(source, "backup", str(archive)).exit_code == 0
    with tarfile.open(archive) as tar:
        photos = sorted(n for n in tar.getnames() if n.startswith("photos/"))
    assert photos == [
        f"photos/{digest[:2]}/{digest[2:4]}/{digest}.jpg",
        f"photos/{digest[:2]}/{digest[2:4]}/{digest}.thumb.jpg",
    ]

    target = _instance(tmp_path / "b", f"sqlite:///{tmp_path / 'b.db'}")
    with target.app_context():
        result = _invoke(target, "restore", str(archive))
        assert result.exit_code == 0, result.output
    restored = photo_store_from_config(target.config)
    assert restored.root != store.root
    assert restored.read(digest) == b"photo"
    assert restored.read(digest, THUMBNAIL) == b"thumbnail"
    assert not (restored.root / "notes.txt").exists()


def test_a_photo_member_outside_the_photo_names_is_refused(app, tmp_path, runner):
    archive = tmp_path / "good.tar.gz"
    assert runner.invoke(main, ["backup", str(archive)]).exit_code == 0
    forged = tmp_path / "forged.tar.gz"
    body = b"#!/bin/sh\n"
    with tarfile.open(archive) as src, tarfile.open(forged, "w:gz") as dst:
        manifest = json.loads(src.extractfile("manifest.json").read())  # type: ignore[union-attr]
        manifest["members"]["photos/../../evil.sh"] = hashlib.sha256(body).hexdigest()
        for member in src.getmembers():
            data = src.extractfile(member).read()  # type: ignore[union-attr]
            if member.name == "manifest.json":
                data = json.dumps(manifest).encode()
                member.size = len(data)
            dst.addfile(member, io.BytesIO(data))
        info = tarfile.TarInfo("photos/../../evil.sh")
        info.size = len(body)
        dst.addfile(info, io.BytesIO(body))
    result = runner.invoke(main, ["restore", "--force", str(forged)])
    assert result.exit_code == 1 and "unexpected member" in result.output
    assert not (tmp_path / "evil.sh").exists()
