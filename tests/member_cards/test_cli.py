"""`integrity-pos cards ...`: sheets from the command line, and the signing key ids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core import fonts
from member_cards.cli import cards
from tests.member_cards.conftest import County


@pytest.mark.skipif(
    not Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc").is_file(),
    reason="fonts-wqy-microhei not installed",
)
def test_sheet_for_a_village_and_a_household(
    runner: Any, factory: Any, county: County, tmp_path: Path
) -> None:
    factory.card(county.home)
    out = tmp_path / "zjb.pdf"
    result = runner.invoke(cards, ["sheet", "--village", "ZJB", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"%PDF")
    result = runner.invoke(
        cards, ["sheet", "--household", str(county.home.id), "-o", str(tmp_path / "h.pdf")]
    )
    assert result.exit_code == 0, result.output


def test_sheet_refusals_are_plain(
    app: Any, runner: Any, factory: Any, county: County, tmp_path: Path
) -> None:
    out = str(tmp_path / "x.pdf")
    assert runner.invoke(cards, ["sheet", "-o", out]).exit_code == 1
    result = runner.invoke(cards, ["sheet", "--village", "ZJB", "-o", out])
    assert result.exit_code == 1 and "ZJB" in result.output
    result = runner.invoke(cards, ["sheet", "--household", str(county.away.id), "-o", out])
    assert result.exit_code == 1 and "no working card" in result.output
    factory.card(county.home)
    app.config["CJK_FONT_PATH"] = "/nowhere/font.ttc"
    result = runner.invoke(cards, ["sheet", "--village", "ZJB", "-o", out])
    assert result.exit_code == 1 and "/nowhere/font.ttc" in result.output
    assert isinstance(fonts.FontMissing(), Exception)


def test_keys_lists_ids_without_secrets(app: Any, runner: Any) -> None:
    app.config.update(CARD_SIGNING_KEYS={"2": "second-secret"}, CARD_SIGNING_KEY_ID="2")
    result = runner.invoke(cards, ["keys"])
    assert result.exit_code == 0
    assert result.output.splitlines() == ["1\taccepted", "2\tsigns new cards"]
    assert "secret" not in result.output and "test-card-key" not in result.output
    app.config["CARD_SIGNING_KEY_ID"] = "7"
    assert runner.invoke(cards, ["keys"]).exit_code == 1


def test_new_key_prints_a_fresh_secret(runner: Any) -> None:
    first = runner.invoke(cards, ["new-key"]).output.strip()
    second = runner.invoke(cards, ["new-key"]).output.strip()
    assert len(first) == 64 and first != second
