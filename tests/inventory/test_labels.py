"""Labels: an A4 PDF with the CJK font embedded, a PNG for label printers, a clear font error."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import text

from config.cli import main
from core.db import db
from inventory.labels import (
    DEFAULT_CJK_FONT,
    Label,
    MissingFont,
    render_label_image,
    render_label_sheet,
)

needs_font = pytest.mark.skipif(
    not Path(DEFAULT_CJK_FONT).exists(), reason="apt-get install fonts-wqy-microhei"
)
RICE = Label(name="大米 10斤", price_text="70 积分/袋", barcode="6901234567892", sku="RICE-10")


@needs_font
def test_a_sheet_embeds_the_cjk_font_and_flows_onto_more_pages():
    pdf = render_label_sheet([RICE] * 30, font_path=DEFAULT_CJK_FONT)
    assert pdf.startswith(b"%PDF")
    assert b"/FontFile2" in pdf and b"WenQuanYi" in pdf
    assert b"/Count 2" in pdf  # 24 labels a page


@needs_font
def test_a_thermal_label_is_black_and_white_at_the_printers_resolution():
    png = render_label_image(RICE, font_path=DEFAULT_CJK_FONT, width_mm=50, height_mm=30, dpi=203)
    image = Image.open(io.BytesIO(png))
    assert image.size == (400, 240)
    assert image.mode == "1"
    assert round(image.info["dpi"][0]) == 203


def test_a_missing_font_is_named():
    with pytest.raises(MissingFont, match=r"/nowhere/wqy\.ttc.*CJK_FONT_PATH"):
        render_label_sheet([RICE], font_path="/nowhere/wqy.ttc")
    with pytest.raises(MissingFont, match=r"/nowhere/wqy\.ttc"):
        render_label_image(RICE, font_path="/nowhere/wqy.ttc")


@needs_font
def test_labels_over_the_api(app, client, rice, oil, as_manager):
    sheet = client.get("/api/v1/labels.pdf?sku=RICE-10&sku=OIL-5L&copies=2", headers=as_manager)
    assert sheet.status_code == 200
    assert sheet.mimetype == "application/pdf"
    image = client.get("/api/v1/products/RICE-10/label.png?dpi=300", headers=as_manager)
    assert (image.status_code, image.mimetype) == (200, "image/png")
    unknown = client.get("/api/v1/labels.pdf?sku=RICE-10&sku=NOPE", headers=as_manager)
    assert (unknown.status_code, unknown.json["code"]) == (404, "unknown_product")
    assert client.get("/api/v1/labels.pdf", headers=as_manager).status_code == 422

    app.config["CJK_FONT_PATH"] = "/nowhere/wqy.ttc"
    broken = client.get("/api/v1/labels.pdf?sku=RICE-10", headers=as_manager)
    assert broken.status_code == 503
    assert "/nowhere/wqy.ttc" in broken.json["detail"]
    assert broken.json["font_path"] == "/nowhere/wqy.ttc"


def test_the_reconcile_command(runner, factory, shop, rice):
    factory.receive(shop, (rice, 4))
    result = runner.invoke(main, ["inventory", "reconcile"])
    assert result.exit_code == 0, result.output
    assert "ok" in result.output
    db.session.execute(text("UPDATE stock_levels SET on_hand = 99"))
    db.session.commit()
    result = runner.invoke(main, ["inventory", "reconcile", shop.code])
    assert result.exit_code == 1
    assert "RICE-10" in result.output and "cached 99, journal 4" in result.output


@needs_font
def test_the_labels_command(runner, rice, tmp_path):
    out = tmp_path / "labels.pdf"
    result = runner.invoke(main, ["inventory", "labels", "RICE-10", "--copies", "3", "--out", out])
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"%PDF")
