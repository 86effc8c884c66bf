"""The package as a county installs it: a wheel built from this tree speaks Chinese.

The compiled catalogues are not in git; the build compiles them into the wheel (setup.py).
The wheel is built as `python -m build` builds it (an sdist first, the wheel from that),
with this venv's own setuptools and Babel so no network is needed, then installed into a
fresh venv that borrows only its dependencies from this one. From a directory outside the
checkout, the installed `integrity-pos` migrates and seeds a demo county, and the installed
app's sign-in page and a sale's receipt must be in Chinese.
"""

from __future__ import annotations

import gettext
import io
import json
import os
import re
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
IN_CI = bool(os.environ.get("CI"))
DATA = "integrity_pos"
CATALOGUE = "translations/{locale}/LC_MESSAGES/messages.mo"
# Building, installing and seeding take some 15 s; a hung step must not hang the suite.
STEP_TIMEOUT = 180
SEEDED = (
    "Seeded %(villages)d villages, %(households)d households, %(awards)d awards and "
    "penalties, %(shops)d shops, %(goods)d goods, %(sales)d sales."
)

# Run by the installed package's Python: the app it finds, its sign-in page and the
# text receipt of the demo's first sale at the clerk's shop, as a print agent fetches it.
PROBE = """
import json, sys
import config
from sqlalchemy import select
from config.app import ROOT, create_app
from core.db import db
from pos.models import Sale

app = create_app()
client = app.test_client()
with app.app_context():
    sale_id = db.session.scalar(
        select(Sale.id).where(Sale.shop_code == "GJY").order_by(Sale.id)
    )
login = client.get("/login")
css = client.get("/static/app.css")
receipt = client.get(
    f"/api/v1/sales/{sale_id}/receipt?format=text",
    headers={"Authorization": "Bearer " + sys.argv[1]},
)
print(json.dumps({
    "config": config.__file__,
    "root": str(ROOT),
    "login": [login.status_code, login.get_data(as_text=True)],
    "css": css.status_code,
    "receipt": [receipt.status_code, receipt.get_data(as_text=True)],
}))
"""


def _chinese(msgid: str) -> str:
    """What the checkout's Chinese catalogue says for msgid: the words the wheel must carry."""
    path = ROOT / "translations" / "zh_Hans_CN" / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as fh:
        message = read_po(fh).get(msgid)
    assert message is not None and message.string and not message.fuzzy, msgid
    assert re.search(r"[\u4e00-\u9fff]", message.string), (msgid, message.string)
    return message.string


def _unavailable(reason: str) -> None:
    # In CI the wheel is the point: a missing tool there is a broken setup, not a skip.
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    result = subprocess.run(
        args, capture_output=True, text=True, timeout=STEP_TIMEOUT, check=False, **kwargs
    )
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from importlib.metadata import PackageNotFoundError, version

    try:
        import build  # noqa: F401

        setuptools = tuple(int(part) for part in version("setuptools").split(".")[:2])
    except (ImportError, PackageNotFoundError):
        setuptools = None
    if setuptools is None or setuptools < (70, 1):
        _unavailable(
            "building the wheel offline needs the packages `build` and setuptools>=70.1 "
            "in this venv (the test extras): run `make install`"
        )
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)])
    (found,) = out.glob("integrity_pos-*.whl")
    return found


def test_the_wheel_carries_the_compiled_catalogues_and_the_app_files(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for locale in ("zh_Hans_CN", "en"):
            assert f"{DATA}/{CATALOGUE.format(locale=locale)}" in names
        compiled = archive.read(f"{DATA}/{CATALOGUE.format(locale='zh_Hans_CN')}")
    catalogue = gettext.GNUTranslations(io.BytesIO(compiled))
    for msgid in ("Receipt No.", "Head of household", "Sign in"):
        assert catalogue.gettext(msgid) == _chinese(msgid)
    # What the app reads at run time, from the same place relative to the packages.
    expected = {"templates/base.html", "static/app.css", "migrations/env.py"}
    expected |= {
        path.relative_to(ROOT).as_posix() for path in (ROOT / "migrations/versions").glob("*.py")
    }
    assert {f"{DATA}/{name}" for name in expected} <= names
    # Every package of the checkout, a new one included.
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "bench"}
    assert packages <= {name.split("/")[0] for name in names}
    # Neither sources of catalogues nor bytecode of this machine.
    assert not [n for n in names if n.endswith((".po", ".pot", ".pyc")) or "__pycache__" in n]


def test_the_installed_wheel_serves_pages_and_receipts_in_chinese(wheel, tmp_path):
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    command = venv / ("Scripts/integrity-pos.exe" if os.name == "nt" else "bin/integrity-pos")
    where = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site = Path(_run([str(python), "-c", where]).stdout.strip()).resolve()
    # The dependencies come from this venv (a path line: its .pth files, among them the
    # editable install pointing at the checkout, are not read); the app from the wheel.
    ours = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (site / "dependencies.pth").write_text("\n".join(sorted(ours)) + "\n", encoding="utf-8")
    pip = [sys.executable, "-m", "pip", "--python", str(python), "--disable-pip-version-check"]
    _run([*pip, "install", "--quiet", "--no-deps", "--no-index", str(wheel)])

    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("INTEGRITY_POS_", "PYTHON")) and key != "DATABASE_URL"
    }
    env["INTEGRITY_POS_HOME"] = str(tmp_path / "home")

    def cli(*args: str) -> str:
        return _run([str(command), *args], cwd=work, env=env).stdout

    cli("init-db")
    seeded = cli("seed-demo")
    # The CLI speaks Chinese too: the summary's words before its first number.
    assert seeded.startswith(_chinese(SEEDED).split("%")[0]), seeded
    token = cli("create-token", "clerk-gjy").strip()
    (work / "probe.py").write_text(PROBE, encoding="utf-8")
    found = json.loads(_run([str(python), "probe.py", token], cwd=work, env=env).stdout)

    assert Path(found["config"]).is_relative_to(site), found["config"]
    assert Path(found["root"]) == site / DATA
    status, page = found["login"]
    assert status == 200 and _chinese("Sign in") in page
    assert found["css"] == 200
    status, receipt = found["receipt"]
    assert status == 200, receipt
    for msgid in ("Receipt No.", "Head of household", "Total points"):
        assert _chinese(msgid) in receipt, receipt
    # Latin letters on the receipt are data only: the shop's code in the receipt number
    # and the clerk's username.
    assert set(re.findall(r"[A-Za-z]{2,}", receipt)) <= {"GJY", "ZJB", "clerk", "gjy", "zjb"}
