"""Receipts: GBK column layout, ESC/POS in text and image mode (golden bytes), QR for returns."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import pytest
from flask import Flask
from flask_babel import Babel, force_locale
from PIL import Image

from core.fonts import FontMissing, find_cjk_font
from pos.receipts.escpos import render_escpos, render_png
from pos.receipts.layout import (
    PAPER,
    PrintLine,
    ReceiptData,
    ReceiptLine,
    ReceiptReturn,
    fit,
    gbk_columns,
    layout_daily_report,
    layout_receipt,
    render_text,
    wrap,
)
from pos.services import DailyReport, ProductDay, report_print_data
from tests.conftest import assert_problem
from tests.pos.conftest import Counter, sale_body
from tests.pos.escpos_decoder import DecodeError, decode, read_qr

GOLDEN = Path(__file__).parent / "golden"
# Image golden bytes depend on the font's outlines: pinned to the font these were made with.
GOLDEN_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"

SALE = ReceiptData(
    shop_name="高家堰诚信超市",
    at=datetime(2026, 11, 27, 14, 5),
    receipt_no="GJY-20261127-0042",
    clerk="clerk-gjy",
    head_name="覃德华",
    card_last4="3-02",
    lines=(
        ReceiptLine("大米 10斤", 2, 70, 140),
        ReceiptLine("菜籽油 5升", 1, 120, 120),
        ReceiptLine("特级压榨花生油五升装礼盒加量不加价版本", 1, 300, 300),
        ReceiptLine("Laundry soap bar, extra large family pack", 3, 5, 15),
        ReceiptLine("毛巾·纯棉…", 4, 12, 48),
    ),
    total=623,
    balance_before=1000,
    balance_after=377,
)
TEN_LINES = ReceiptData(
    **{
        **SALE.__dict__,
        "lines": tuple(
            ReceiptLine(f"商品{i} 五斤装", i, 10 + i, i * (10 + i)) for i in range(1, 11)
        ),
    }
)


@pytest.fixture
def english() -> Iterator[None]:
    """Labels as their English message ids: golden bytes must not move with translations."""
    app = Flask(__name__)
    Babel(app)
    with app.app_context(), force_locale("en"):
        yield


def cjk_font() -> Path:
    try:
        return find_cjk_font(None)
    except FontMissing:
        pytest.skip("no CJK font (apt-get install fonts-wqy-microhei)")


def texts(lines: list[PrintLine]) -> list[str]:
    return [line.text for line in lines if line.qr is None]


# --- Measuring as the printer does


def test_columns_are_gbk_bytes():
    assert gbk_columns("大米 10斤") == 9
    # Double-byte in GBK though narrow to wcwidth: the printer gives them two columns.
    assert [gbk_columns(ch) for ch in "×·…é"] == [2, 2, 2, 2]
    assert gbk_columns("abc 123") == 7
    # Outside GBK: the character's own width (a GB18030 printer's or an image's cell).
    assert gbk_columns("¥") == 1
    assert gbk_columns("𠀀") == 2 and gbk_columns("䶮") == 2
    assert gbk_columns("张𠀀三") == 6


@pytest.mark.parametrize("width", [10, 11, 32])
def test_wrap_and_fit_never_pass_the_width_nor_split_a_character(width):
    name = "特级压榨花生油 Extra virgin peanut oil 五升装礼盒×2"
    parts = wrap(name, width)
    assert all(gbk_columns(part) <= width for part in parts)
    assert "".join(parts).replace(" ", "") == name.replace(" ", "")
    limited = wrap(name, width, max_lines=2)
    assert limited == parts if len(parts) <= 2 else limited[-1].endswith("…")
    assert len(limited) <= 2
    assert all(gbk_columns(part) <= width for part in limited)
    assert gbk_columns(fit(name, width)) <= width and fit(name, width).endswith("…")
    assert fit("大米", width) == "大米"


# --- Layout


@pytest.mark.parametrize("paper_mm", sorted(PAPER))
def test_every_line_fills_the_paper_and_totals_line_up_right(english, paper_mm):
    columns, _dots = PAPER[paper_mm]
    lines = layout_receipt(SALE, columns=columns)
    assert all(line.cells == columns for line in lines if line.qr is None)
    assert [line.qr for line in lines if line.qr] == [SALE.receipt_no]
    body = texts(lines)
    title = [line for line in lines if line.double]
    assert title and "高家堰诚信超市" in title[0].text and title[0].bold
    for label, figure in (
        ("Total points", "623"),
        ("Points before", "1000"),
        ("Points left", "377"),
    ):
        (found,) = [text for text in body if text.startswith(label)]
        assert found.endswith(" " + figure)
    joined = "\n".join(body)
    for expected in (SALE.receipt_no, "2026-11-27 14:05", "clerk-gjy", "覃德华", "…3-02"):
        assert expected in joined
    assert "2 × 70" in joined and "COPY" not in joined and "VOIDED" not in joined
    # Points are points: no currency sign, and nothing a GBK-only printer cannot print.
    assert "¥" not in joined and "￥" not in joined and "$" not in joined
    joined.encode("gbk")


def test_a_reprint_is_marked_and_returns_and_voids_are_shown(english):
    data = ReceiptData(
        **{
            **SALE.__dict__,
            "copy": True,
            "voided": True,
            "returns": (
                ReceiptReturn("return", "坏了", 70),
                ReceiptReturn("void", "", 553),
            ),
        }
    )
    body = "\n".join(texts(layout_receipt(data, columns=32)))
    assert "*** COPY ***" in body and "*** VOIDED ***" in body
    assert "Returned 坏了" in body and body.count("+70") == 1 and "+553" in body


def test_chinese_labels_by_default(app):
    body = render_text(layout_receipt(SALE, columns=32))
    assert "合计积分" in body and "收银员" in body and "户主" in body
    copy = render_text(layout_receipt(ReceiptData(**{**SALE.__dict__, "copy": True}), columns=32))
    assert "副本" in copy


def test_control_characters_never_reach_the_printer(english):
    data = ReceiptData(
        **{**SALE.__dict__, "lines": (ReceiptLine("肥皂\x1b@\x1dV\x00\n坏", 1, 5, 5),)}
    )
    lines = layout_receipt(data, columns=32)
    assert all(line.cells == 32 for line in lines if line.qr is None)
    decoded = decode(render_escpos(lines, paper_mm=58, mode="text"))
    assert decoded.commands == ["init"] and len(decoded.cuts) == 1
    assert any(line.text.startswith("肥皂 @ V  坏") for line in decoded.lines)


def test_render_text_is_the_paper_without_the_qr(english):
    lines = layout_receipt(SALE, columns=32)
    text = render_text(lines)
    assert text.endswith("\n") and SALE.receipt_no in text
    assert max(gbk_columns(line) for line in text.splitlines()) == 32
    assert "高家堰诚信超市" in text.splitlines()[0]


# --- ESC/POS through the decoder


@pytest.mark.parametrize("paper_mm", sorted(PAPER))
def test_text_mode_decodes_to_the_layout_line_for_line(english, paper_mm):
    columns, dots = PAPER[paper_mm]
    lines = layout_receipt(SALE, columns=columns)
    decoded = decode(render_escpos(lines, paper_mm=paper_mm, mode="text"))
    printed = [item for item in decoded.items]
    expected = [line for line in lines]
    assert len(printed) == len(expected)
    for got, want in zip(printed, expected, strict=True):
        if want.qr is not None:
            assert got.width <= dots and read_qr(got.image) == [want.qr]
        else:
            assert got.columns == columns, got
            assert (got.text, got.bold, got.double_width) == (want.text, want.bold, want.double)
    assert decoded.feeds >= 1 and decoded.cuts == [b"\x1dV\x00"]


@pytest.mark.parametrize("paper_mm", sorted(PAPER))
def test_image_mode_is_one_image_of_the_papers_width_with_a_qr(english, paper_mm):
    font = cjk_font()
    columns, dots = PAPER[paper_mm]
    lines = layout_receipt(SALE, columns=columns)
    data = render_escpos(lines, paper_mm=paper_mm, mode="image", font_path=font)
    decoded = decode(data)
    assert decoded.lines == []
    (raster,) = decoded.images
    assert raster.width == dots
    assert read_qr(raster.image) == [SALE.receipt_no]
    assert decoded.feeds >= 1 and len(decoded.cuts) == 1
    preview = Image.open(io.BytesIO(render_png(lines, paper_mm=paper_mm, font_path=font)))
    assert preview.size == raster.image.size
    assert preview.convert("1").tobytes() == raster.image.tobytes()


def test_rare_characters_never_print_as_question_marks_in_text_mode(english):
    data = ReceiptData(**{**SALE.__dict__, "head_name": "王𠀀明"})
    lines = layout_receipt(data, columns=32)
    decoded = decode(render_escpos(lines, paper_mm=58, mode="text"))
    assert all(line.columns == 32 for line in decoded.lines)
    assert not any("？" in line.text or "?" in line.text for line in decoded.lines)
    # The head's line went as an image of itself: one more raster than the QR code.
    assert len(decoded.images) == 2


def test_printer_profiles(english):
    lines = layout_receipt(SALE, columns=32)
    # The POS-5890 has no cutter: feed, no cut.
    decoded = decode(render_escpos(lines, paper_mm=58, mode="text", profile="POS-5890"))
    assert decoded.feeds >= 1 and decoded.cuts == []
    with pytest.raises(ValueError, match="512 dots"):
        render_escpos(layout_receipt(SALE, columns=48), paper_mm=80, mode="text", profile="TM-T88V")
    with pytest.raises(ValueError, match="unknown printer profile"):
        render_escpos(lines, paper_mm=58, mode="text", profile="nope")
    with pytest.raises(ValueError, match="mode"):
        render_escpos(lines, paper_mm=58, mode="html")
    with pytest.raises(ValueError, match="paper"):
        render_escpos(lines, paper_mm=110, mode="text")


def test_the_decoder_refuses_stray_bytes():
    with pytest.raises(DecodeError):
        decode(b"\x1b@\x07")
    with pytest.raises(DecodeError):
        decode(b"\x1b@\xb4\xf3")  # a GBK pair outside Chinese mode


# --- Golden bytes: any change to what reaches the printer shows up here


def _golden(name: str, data: bytes) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
    assert path.exists(), f"{path} missing; run with UPDATE_GOLDEN=1"
    assert data == path.read_bytes(), f"{name} changed; if on purpose, run with UPDATE_GOLDEN=1"


@pytest.mark.parametrize("paper_mm", sorted(PAPER))
def test_golden_text_mode(english, paper_mm):
    lines = layout_receipt(SALE, columns=PAPER[paper_mm][0])
    _golden(f"receipt-{paper_mm}-text.bin", render_escpos(lines, paper_mm=paper_mm, mode="text"))


@pytest.mark.skipif(not GOLDEN_FONT.is_file(), reason="golden images were drawn with WQY Micro Hei")
@pytest.mark.parametrize("paper_mm", sorted(PAPER))
def test_golden_image_mode(english, paper_mm):
    lines = layout_receipt(SALE, columns=PAPER[paper_mm][0])
    data = render_escpos(lines, paper_mm=paper_mm, mode="image", font_path=GOLDEN_FONT)
    _golden(f"receipt-{paper_mm}-image.bin", data)


# --- The day's report prints the same way


def test_daily_report_prints_through_the_same_path(english):
    report = DailyReport(
        shop_code="GJY",
        shop_name="高家堰诚信超市",
        day=date(2026, 11, 27),
        sales=3,
        voided=1,
        points_redeemed=400,
        points_refunded=70,
        net_points=330,
        ledger_redeemed=400,
        ledger_refunded=60,
        ledger_points=340,
        matches_ledger=False,
        by_product=[
            ProductDay("RICE-10", "大米 10斤", qty_sold=4, qty_returned=1, points=210),
            ProductDay("OIL", "特级压榨花生油五升装礼盒加量不加价版本", qty_sold=1, points=120),
        ],
        by_clerk=[{"clerk_id": 1, "username": "clerk-gjy", "sales": 3, "points": 400}],
        differences=[
            {
                "kind": "refund",
                "sale_id": 7,
                "receipt_no": "GJY-20261127-0002",
                "shop_points": 70,
                "ledger_points": 60,
            }
        ],
    )
    for paper_mm, (columns, _dots) in PAPER.items():
        lines = layout_daily_report(report_print_data(report), columns=columns)
        assert all(line.cells == columns for line in lines)
        body = render_text(lines)
        assert "2026-11-27" in body and "GJY-20261127-0002" in body and "4-1 / 210" in body
        decoded = decode(render_escpos(lines, paper_mm=paper_mm, mode="text"))
        assert [line.columns for line in decoded.lines] == [columns] * len(lines)


# --- The API


def _sale(client, counter: Counter) -> dict:
    body = sale_body(counter, {"sku": "RICE-10", "qty": 2}, {"sku": "SOAP", "qty": 1})
    response = client.post("/api/v1/shops/GJY/sales", json=body, headers=counter.clerk_headers)
    assert response.status_code == 201
    return response.get_json()


def test_api_escpos_text_and_image(client, counter):
    sale = _sale(client, counter)
    url = f"/api/v1/sales/{sale['sale_id']}/receipt"
    response = client.get(url, query_string={"format": "escpos"}, headers=counter.clerk_headers)
    assert response.status_code == 200 and response.mimetype == "application/octet-stream"
    decoded = decode(response.data)
    assert all(line.columns == 32 for line in decoded.lines)
    printed = "\n".join(line.text for line in decoded.lines)
    assert "大米 10斤" in printed and "覃德华" in printed and sale["receipt_no"] in printed
    assert "副本" not in printed
    (qr,) = decoded.images
    assert read_qr(qr.image) == [sale["receipt_no"]]

    cjk_font()
    image = client.get(
        url,
        query_string={"format": "escpos", "paper": 80, "mode": "image", "copy": "true"},
        headers=counter.clerk_headers,
    )
    assert image.status_code == 200
    (raster,) = decode(image.data).images
    assert raster.width == 576 and read_qr(raster.image) == [sale["receipt_no"]]
    png = client.get(url, query_string={"format": "png"}, headers=counter.clerk_headers)
    assert png.mimetype == "image/png" and Image.open(io.BytesIO(png.data)).width == 384


@pytest.mark.parametrize(
    "query",
    [{"format": "pdf"}, {"format": "escpos", "paper": 57}, {"format": "escpos", "mode": "x"}],
)
def test_api_refuses_bad_receipt_options(client, counter, query):
    sale = _sale(client, counter)
    url = f"/api/v1/sales/{sale['sale_id']}/receipt"
    assert_problem(client.get(url, query_string=query, headers=counter.clerk_headers), 422)


def test_api_image_without_a_font_is_503(app, client, counter):
    sale = _sale(client, counter)
    app.config["CJK_FONT_PATH"] = "/nowhere/wqy.ttc"
    url = f"/api/v1/sales/{sale['sale_id']}/receipt"
    query = {"format": "escpos", "mode": "image"}
    refused = client.get(url, query_string=query, headers=counter.clerk_headers)
    assert refused.status_code == 503 and refused.mimetype == "application/problem+json"
    assert "CJK_FONT_PATH" in refused.get_json()["detail"]
    # Text mode needs no font of ours: the printer has its own.
    text = client.get(url, query_string={"format": "escpos"}, headers=counter.clerk_headers)
    assert text.status_code == 200


def test_ten_line_receipt_fits_both_papers(english):
    for columns in (32, 48):
        lines = layout_receipt(TEN_LINES, columns=columns)
        assert all(line.cells == columns for line in lines if line.qr is None)


@pytest.mark.parametrize("columns", [32, 48])
def test_long_values_wrap_and_are_never_cut(english, columns):
    receipt_no = "VILLAGE-SHOP-OF-THE-LONG-NAME-20261127-0042"
    head = "欧阳" * 20
    data = ReceiptData(**{**SALE.__dict__, "receipt_no": receipt_no, "head_name": head})
    lines = layout_receipt(data, columns=columns)
    assert all(line.cells == columns for line in lines if line.qr is None)
    body = "".join(line.text.strip() for line in lines)
    assert receipt_no in body and head in body
