"""The county commands: refreshing the dashboard caches, writing a notice from the shell."""

from __future__ import annotations

from click.testing import CliRunner

from county.cli import county_group
from county.models import DayTotal
from tests.county.conftest import County


def test_notice_and_refresh(app, built: County, tmp_path):
    runner = CliRunner()
    out = tmp_path / "notice.pdf"
    with app.app_context():
        result = runner.invoke(
            county_group,
            ["notice", "--village", "VA", "--period", "2026-11", "-o", str(out)],
        )
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"%PDF-")
    bad = runner.invoke(county_group, ["notice", "--village", "NOPE", "-o", str(out)])
    assert bad.exit_code == 1 and "NOPE" in bad.output
    bad = runner.invoke(county_group, ["notice", "--village", "VA", "--period", "x", "-o", "o"])
    assert bad.exit_code == 1 and "YYYY-MM" in bad.output
    result = runner.invoke(county_group, ["refresh", "--months", "2"])
    assert result.exit_code == 0, result.output
    assert built.factory.session.query(DayTotal).count() > 0
