"""Award lists as cadres keep them: Excel workbooks and CSV, Chinese headers, rule titles."""

from __future__ import annotations

import io
import zipfile
from datetime import datetime
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook

from accounts.auth import Role
from core.db import db
from core.spreadsheets import XLSX_MIMETYPE
from ledger import services as ledger
from ledger.models import Transfer
from tests.conftest import assert_problem, count_rows
from tests.helpers.pages import hidden_fields, login
from tests.helpers.text import full_width
from tests.ledger.test_scanned_text import balance_of


@pytest.fixture
def setup(factory: Any) -> dict[str, Any]:
    """Two households of three in ZJB, a per-person award, a penalty, a cadre of ZJB."""
    village = factory.village("ZJB", name="郑家榜村")
    other = factory.village("GJY", name="高家堰村")
    h1 = factory.household(village, balance=10)
    h2 = factory.household(village, head="向国强", balance=10)
    far = factory.household(other, head="田建国", balance=10)
    factory.rule("VOLUNTEER", 2, "person", title="参加志愿服务")
    factory.rule("STRAW_BURN", -5, "household", title="焚烧秸秆")
    factory.user(Role.CADRE, village="ZJB", username="cadre-zjb")
    return {
        "h1": h1.id,
        "h2": h2.id,
        "far": far.id,
        "headers": factory.headers(factory.admin),
        "cadre": factory.headers(factory.user(Role.CADRE, village="ZJB")),
    }


def workbook(*rows: list[Any], title: str = "Sheet1", before: int = 0) -> bytes:
    """An .xlsx as Excel saves it: numbers typed in cells are stored as floats."""
    book = Workbook()
    sheet = book.active
    sheet.title = title
    for _ in range(before):
        sheet.append([])
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def post(client: Any, setup: dict[str, Any], data: bytes, content_type: str = XLSX_MIMETYPE):
    return client.post(
        "/api/v1/awards/import", data=data, content_type=content_type, headers=setup["headers"]
    )


def chinese_rows(setup: dict[str, Any]) -> list[list[Any]]:
    h1, h2 = setup["h1"], setup["h2"]
    return [
        ["户号", "规则", "人数", "事由"],
        [float(h1), "参加志愿服务", 3.0, "扫雪除冰"],  # +6
        [float(h2), "焚烧秸秆", None, None],  # -5
        [h1, "VOLUNTEER", 1, None],  # +2, by code
    ]


# --- both formats, Chinese headers, rule titles, twice ---------------------------------


def test_xlsx_with_chinese_headers_and_titles_posts_once_when_uploaded_twice(client, setup):
    data = workbook(*chinese_rows(setup))
    first = post(client, setup, data)
    assert first.status_code == 200, first.get_data(as_text=True)
    assert first.json == {"created": 3, "replayed": 0, "errors": []}
    assert (balance_of(setup["h1"]), balance_of(setup["h2"])) == (18, 5)
    # Saved again: a new zip (openpyxl, like Excel, stamps the time in it), the same list.
    second = post(client, setup, resaved(data))
    assert second.json == {"created": 0, "replayed": 3, "errors": []}
    assert count_rows(Transfer) == 3 + 3
    assert "焚烧秸秆" in {e.reason for e in ledger.household_statement(db.session, setup["h2"])}


def resaved(data: bytes) -> bytes:
    """The workbook opened and saved again, with its parts in another order."""
    parts = _parts(data)
    again = _zip(dict(reversed(parts.items())))
    assert again != data
    return again


def test_csv_with_chinese_headers_gb18030_and_the_same_list_as_xlsx_replays(client, setup):
    h1, h2 = setup["h1"], setup["h2"]
    csv = (
        "户号,规则,人数,事由\r\n"
        f"{h1},参加志愿服务,3,扫雪除冰\r\n{h2},焚烧秸秆,,\r\n{h1},VOLUNTEER,1,\r\n"
    )
    first = post(client, setup, csv.encode("gb18030"), "text/csv")
    assert first.json == {"created": 3, "replayed": 0, "errors": []}
    assert post(client, setup, csv.encode("gb18030"), "text/csv").json["replayed"] == 3
    # The keys come from what the cells say, so the same list as a workbook is no news.
    assert post(client, setup, workbook(*chinese_rows(setup))).json == {
        "created": 0,
        "replayed": 3,
        "errors": [],
    }
    assert (balance_of(h1), balance_of(h2)) == (18, 5)


def test_a_changed_list_is_a_new_list_but_a_blank_row_is_not_a_change(client, setup):
    rows = chinese_rows(setup)
    assert post(client, setup, workbook(*rows)).json["created"] == 3
    with_blank = [rows[0], rows[1], [], rows[2], rows[3]]
    assert post(client, setup, workbook(*with_blank)).json["replayed"] == 3
    changed = [*rows, [setup["h2"], "参加志愿服务", 1, None]]
    assert post(client, setup, workbook(*changed)).json["created"] == 4


def test_headers_with_spaces_full_width_and_a_key_column_in_another_order(client, setup):
    h1 = setup["h1"]
    data = workbook(
        [" Idempotency_Key ", "reason", full_width("household_id"), "RULE_CODE ", "人数\u3000"],
        ["k-1", "打扫村道", h1, "参加志愿服务", 2],
        ["k-2", None, h1, "volunteer", 1],
    )
    assert post(client, setup, data).json == {"created": 2, "replayed": 0, "errors": []}
    assert post(client, setup, data).json == {"created": 0, "replayed": 2, "errors": []}
    assert balance_of(h1) == 10 + 4 + 2


def test_a_title_line_above_the_header_and_notes_in_own_columns(client, setup):
    h1, h2 = setup["h1"], setup["h2"]
    data = workbook(
        ["2026年11月郑家榜村积分奖励名单"],
        ["序号", "户号（必填）", "户主", "规则*", "人数", "事由", "日期"],
        [1, h1, "覃德华", "参加志愿服务", 2, "修路", datetime(2026, 11, 3)],
        [2, h2, "向国强", "焚烧秸秆", None, None, datetime(2026, 11, 9)],
        [None, None, "制表：张三"],
    )
    r = post(client, setup, data)
    assert (r.json["created"], r.json["replayed"]) == (2, 0)
    # The header is line 2, so the rows are lines 3 to 5 as Excel shows them.
    assert [(e["line"], e["code"]) for e in r.json["errors"]] == [(5, "validation_error")]
    assert "户号（必填）" in r.json["errors"][0]["detail"]


def test_cells_are_read_as_the_cadre_typed_them(client, setup):
    h1 = setup["h1"]
    data = workbook(
        ["户号", "规则", "人数", "事由", "流水号"],
        [float(h1), "参加志愿服务", 13.0 / 13, datetime(2026, 11, 1), datetime(2026, 11, 1)],
        [full_width(str(h1)), " 参加志愿服务 ", "２", None, "甲-2"],
        [f"\u3000{h1}\u3000", full_width("VOLUNTEER"), "1", None, None],
    )
    r = post(client, setup, data)
    assert r.json == {"created": 3, "replayed": 0, "errors": []}, r.json
    assert balance_of(h1) == 10 + 2 + 4 + 2
    entry = ledger.household_statement(db.session, h1, limit=3)[-1]
    assert entry.reason == "2026-11-01"


def test_bad_rows_come_back_in_chinese_by_line(client, setup):
    h1 = setup["h1"]
    data = workbook(
        ["户号", "规则", "人数", "事由", "流水号"],
        ["abc", "参加志愿服务", 1, None, "k1"],  # 2
        [999999, "参加志愿服务", 1, None, "k2"],  # 3
        [h1, "扫地", 1, None, "k3"],  # 4
        [h1, "参加志愿服务", 2.5, None, "k4"],  # 5
        [h1, None, 1, None, "k5"],  # 6
        [setup["far"], "参加志愿服务", 1, None, "k6"],  # 7 (a cadre of ZJB may not)
        [h1, "参加志愿服务", 9, None, "k7"],  # 8
        [h1, "焚烧秸秆", 2, None, "k8"],  # 9
        [h1, "参加志愿服务", 1, None, "k9"],  # 10, good
        [h1, "参加志愿服务", 2, None, "k9"],  # 11, the key again with other content
    )
    r = client.post(
        "/api/v1/awards/import", data=data, content_type=XLSX_MIMETYPE, headers=setup["cadre"]
    )
    assert r.status_code == 200
    assert r.json["created"] == 1
    errors = {e["line"]: (e["code"], e["detail"]) for e in r.json["errors"]}
    assert {line: code for line, (code, _d) in errors.items()} == {
        2: "validation_error",
        3: "not_found",
        4: "not_found",
        5: "validation_error",
        6: "validation_error",
        7: "forbidden",
        8: "validation_error",
        9: "validation_error",
        11: "idempotency_conflict",
    }
    details = {line: detail for line, (_c, detail) in errors.items()}
    assert details[2] == "户号：不是整数：abc"
    assert details[3] == "没有编号为 999999 的农户"
    assert "规则：郑家榜村没有“扫地”这条规则" in details[4]
    assert details[5] == "人数：不是整数：2.5"
    assert details[6] == "规则：这一格是空的"
    assert "高家堰村" in details[7]
    assert details[8].startswith("人数：")
    assert details[11].startswith("流水号：k9")
    # Plain Chinese: no English beyond what the cells themselves say.
    for detail in details.values():
        words = detail.replace("abc", "").replace("k9", "")
        assert not any("a" <= ch.lower() <= "z" for ch in words), detail
    assert balance_of(h1) == 12


def test_ambiguous_title_asks_for_the_code(client, setup, factory):
    factory.rule("HELP", 3, "household", title="参加志愿服务", village=_village("ZJB"))
    data = workbook(["户号", "规则"], [setup["h1"], "参加志愿服务"], [setup["h1"], "HELP"])
    r = post(client, setup, data)
    assert r.json["created"] == 1
    [error] = r.json["errors"]
    assert error["line"] == 2 and "HELP" in error["detail"] and "VOLUNTEER" in error["detail"]


def _village(code: str) -> Any:
    return ledger.get_village(db.session, code)


def test_the_example_row_of_the_template_is_never_posted(client, setup):
    data = workbook(["户号", "规则", "人数", "事由"], ["示例12", "参加志愿服务", 2, "打扫村道"])
    assert post(client, setup, data).json == {"created": 0, "replayed": 0, "errors": []}


# --- refusals: 4xx, in words, nothing posted ---------------------------------------------


def _zip(parts: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, body in parts.items():
            archive.writestr(name, body)
    return out.getvalue()


def corrupt_workbooks(setup: dict[str, Any]) -> dict[str, bytes]:
    good = workbook(*chinese_rows(setup))
    broken_sheet = _zip(
        {
            name: (b"<worksheet><sheetData><row r=" if name.endswith("sheet1.xml") else body)
            for name, body in _parts(good).items()
        }
    )
    return {
        "truncated": good[: len(good) // 2],
        "zip of nothing": _zip({"hello.txt": b"hi"}),
        "word document": _zip({"word/document.xml": b"<w/>", "[Content_Types].xml": b"<T/>"}),
        "broken sheet": broken_sheet,
        "no sheet part": _zip({"xl/workbook.xml": b"<workbook/>"}),
        "zip magic only": b"PK\x03\x04" + b"\x00" * 40,
    }


def _parts(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_corrupt_workbooks_are_422_never_500(client, setup):
    for label, data in corrupt_workbooks(setup).items():
        r = post(client, setup, data)
        assert r.status_code == 422, (label, r.get_data(as_text=True))
        body = assert_problem(r, 422, "validation_error")
        assert "Traceback" not in body["detail"]
    assert count_rows(Transfer) == 3


def test_a_zip_bomb_is_refused_before_it_is_unpacked(client, setup):
    parts = _parts(workbook(*chinese_rows(setup)))
    parts["xl/media/padding.bin"] = b"\x00" * (20 * 1024 * 1024)
    bomb = _zip(parts)
    assert len(bomb) < 200_000
    r = post(client, setup, bomb)
    body = assert_problem(r, 422, "validation_error")
    assert "太大" in body["detail"]
    assert count_rows(Transfer) == 3


def test_a_sheet_reaching_excels_last_row_reads_quickly(client, setup):
    rows = chinese_rows(setup)
    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    sheet.cell(row=1_048_576, column=16_384, value="尾")
    out = io.BytesIO()
    book.save(out)
    r = post(client, setup, out.getvalue())
    assert r.json["created"] == 3
    # Its one far cell is beyond the columns read, so line 1048576 is blank and skipped.
    assert r.json["errors"] == []


def test_too_many_rows_in_a_workbook_is_422(app, client, setup):
    app.config["IMPORT_MAX_ROWS"] = 2
    assert_problem(post(client, setup, workbook(*chinese_rows(setup))), 422, "validation_error")
    assert count_rows(Transfer) == 3


@pytest.mark.parametrize(
    ("label", "data", "words"),
    [
        ("xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, ".xlsx"),
        ("pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj", "不是表格"),
        ("png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "不是表格"),
        ("no header", "姓名,电话\r\n张三,123\r\n".encode(), "缺少列"),
    ],
)
def test_files_that_are_not_award_lists_are_refused_in_words(client, setup, label, data, words):
    r = post(client, setup, data, "text/csv")
    body = assert_problem(r, 422, "validation_error")
    assert words in body["detail"], (label, body)


# --- the page ----------------------------------------------------------------------------


def upload(client: Any, body: bytes, name: str) -> Any:
    token = hidden_fields(client.get("/awards/import").get_data(as_text=True))["csrf_token"]
    return client.post(
        "/awards/import",
        data={"csrf_token": token, "file": (io.BytesIO(body), name)},
        content_type="multipart/form-data",
    )


def test_the_page_takes_a_workbook_by_its_content_whatever_its_name(client, setup):
    assert login(client, "cadre-zjb").status_code == 302
    page = client.get("/awards/import").get_data(as_text=True)
    assert 'accept=".xlsx,.csv' in page
    data = workbook(*chinese_rows(setup))
    first = upload(client, data, "名单.csv").get_data(as_text=True)
    assert 'id="created">3<' in first
    second = upload(client, data, "名单 (1).xlsx").get_data(as_text=True)
    assert 'id="created">0<' in second and 'id="replayed">3<' in second
    assert balance_of(setup["h1"]) == 18


def test_the_page_reports_bad_lines_in_chinese_without_codes(client, setup):
    assert login(client, "cadre-zjb").status_code == 302
    h1 = setup["h1"]
    data = workbook(
        ["户号", "规则", "人数"],
        [h1, "参加志愿服务", 1],
        [999999, "参加志愿服务", 1],
        [h1, "扫地", 1],
    )
    response = upload(client, data, "名单.xlsx")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'id="created">1<' in page and 'id="failed">2<' in page
    assert "not_found" not in page and "validation_error" not in page
    assert "没有编号为 999999 的农户" in page
    assert "郑家榜村没有“扫地”这条规则" in page
    # Keys came from the file: the page says how to correct without posting twice.
    assert "data-keys-derived" in page


def test_the_page_refuses_a_picture_and_a_broken_workbook_in_chinese(client, setup):
    assert login(client, "cadre-zjb").status_code == 302
    for name, data, words in (
        ("photo.xlsx", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "这个文件不是表格"),
        ("名单.xlsx", workbook(*chinese_rows(setup))[:500], "可能已经损坏"),
    ):
        response = upload(client, data, name)
        assert response.status_code == 422, name
        assert words in response.get_data(as_text=True)
    assert count_rows(Transfer) == 3


def test_the_template_workbook_lists_the_villages_rules_and_reads_back(client, setup):
    assert login(client, "cadre-zjb").status_code == 302
    response = client.get("/awards/import/template.xlsx")
    assert response.status_code == 200
    assert response.mimetype == XLSX_MIMETYPE
    assert "attachment" in response.headers["Content-Disposition"]
    book = load_workbook(io.BytesIO(response.data))
    sheet, rules = book.worksheets
    assert [c.value for c in sheet[1]] == ["户号", "规则", "人数", "事由"]
    assert str(sheet["A2"].value).startswith("示例")
    assert sheet.column_dimensions["B"].width >= 20
    titles = [row[0] for row in rules.iter_rows(min_row=2, values_only=True)]
    assert set(titles) == {"参加志愿服务", "焚烧秸秆"}
    [validation] = sheet.data_validations.dataValidation
    assert validation.type == "list" and "$A$2:$A$3" in validation.formula1

    # Filled in below the example and uploaded as it is, it posts.
    sheet.append([setup["h2"], "参加志愿服务", 2, None])
    out = io.BytesIO()
    book.save(out)
    page = upload(client, out.getvalue(), "模板.xlsx").get_data(as_text=True)
    assert 'id="created">1<' in page and 'id="failed">0<' in page
    assert balance_of(setup["h2"]) == 14


def test_an_admin_picks_the_village_of_the_template(client, setup, factory):
    factory.rule("ROAD", 4, "household", title="修村道", village=_village("GJY"))
    admin = factory.admin.username
    assert login(client, admin).status_code == 302
    page = client.get("/awards/import").get_data(as_text=True)
    assert 'id="template-form"' in page and 'value="GJY"' in page
    data = client.get("/awards/import/template.xlsx?village=GJY").data
    titles = {
        row[0]
        for row in load_workbook(io.BytesIO(data))
        .worksheets[1]
        .iter_rows(min_row=2, values_only=True)
    }
    assert "修村道" in titles


def test_the_page_takes_a_chinese_csv_twice(client, setup):
    assert login(client, "cadre-zjb").status_code == 302
    h1, h2 = setup["h1"], setup["h2"]
    body = (f"户号,规则,人数,事由\r\n{h1},参加志愿服务,2,扫雪\r\n{h2},焚烧秸秆,,\r\n").encode(
        "gb18030"
    )
    first = upload(client, body, "名单.csv").get_data(as_text=True)
    assert 'id="created">2<' in first and 'id="failed">0<' in first
    second = upload(client, body, "名单.csv").get_data(as_text=True)
    assert 'id="created">0<' in second and 'id="replayed">2<' in second
    assert (balance_of(h1), balance_of(h2)) == (14, 5)
