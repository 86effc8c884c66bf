"""Spreadsheets: XLSX round trip through openpyxl, CSV with a BOM, Chinese headers, scope."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest

from accounts.auth import Role
from core.db import utcnow
from county import exports
from county import services as county
from tests.county.conftest import TZ, County, login
from tests.county.test_dashboard import shops  # noqa: F401  (fixture)


def xlsx_rows(data: bytes) -> list[list]:
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    sheet = book.worksheets[0]
    return [list(row) for row in sheet.iter_rows(values_only=True)]


def csv_rows(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf"), "Excel and WPS need the BOM to read UTF-8"
    assert b"\r\n" in data
    return list(csv.reader(io.StringIO(data[3:].decode("utf-8"), newline="")))


def test_rankings_xlsx_round_trip(client, built: County):
    login(client, built.factory.user(Role.CADRE, village="VA"))
    response = client.get("/county/exports/rankings.xlsx?period=2026-11")
    assert response.status_code == 200
    assert response.mimetype.endswith("spreadsheetml.sheet")
    assert "filename*=UTF-8''" in response.headers["Content-Disposition"]
    rows = xlsx_rows(response.get_data())
    assert rows[0] == ["榜单", "名次", "户号", "户主", "村", "得分", "扣分", "诚信积分", "扣分事由"]
    red = county.red_list(
        built.factory.session, period=county.parse_period("2026-11"), tz=TZ, village=built.va
    )
    assert [(r[0], r[1], r[3], r[7]) for r in rows[1:5]] == [
        ("红榜", r.rank, r.head_name, r.score) for r in red.rows
    ]
    assert rows[5][:4] == ["黑榜", 1, built.h["丙"].id, "丙户主"]
    assert "焚烧秸秆" in rows[5][8]


def test_households_csv_has_a_bom_and_every_balance(client, built: County):
    login(client, built.admin)
    rows = csv_rows(client.get("/county/exports/households.csv").get_data())
    assert rows[0][:5] == ["户号", "村", "户主", "地址", "可用积分"]
    balances = {r[2]: int(r[4]) for r in rows[1:]}
    assert balances == {h.head_name: h.account.balance for h in built.h.values()}
    cadre_rows = csv_rows(
        _as(client, built, Role.CADRE, "VB").get("/county/exports/households.csv").get_data()
    )
    assert [r[2] for r in cadre_rows[1:]] == ["己户主"]


def _as(client, built, role, scope):
    client.post("/logout")
    kwargs = {"village": scope} if role == Role.CADRE else {"shop": scope}
    login(client, built.factory.user(role, **kwargs))
    return client


def test_statement_export_follows_the_household(client, built: County):
    login(client, built.factory.user(Role.CADRE, village="VA"))
    h = built.h["戊"]
    rows = xlsx_rows(client.get(f"/county/exports/households/{h.id}/statement.xlsx").get_data())
    assert rows[0][:4] == ["时间", "类型", "积分", "结余"]
    assert [r[1] for r in rows[1:]] == ["奖励", "奖励", "扣分", "更正", "更正"]
    assert [r[2] for r in rows[1:]] == [4, 5, -3, -5, 3]
    assert rows[-1][3] == 4
    other = built.h["己"]
    assert client.get(f"/county/exports/households/{other.id}/statement.csv").status_code == 403
    assert client.get("/county/exports/households/999999/statement.csv").status_code == 404


def test_shop_exports_for_the_manager(client, built: County, shops):  # noqa: F811
    login(client, built.factory.user(Role.MANAGER, shop="GJY"))
    month = county.current_month(utcnow(), TZ).key
    days = xlsx_rows(client.get(f"/county/exports/shops/GJY/daily.xlsx?month={month}").get_data())
    assert days[0][:4] == ["日期", "销售笔数", "作废笔数", "兑换积分"]
    (today,) = days[1:]
    assert today[1:] == [1, 0, 11, 2, 9, 9, "是"]
    stock = csv_rows(client.get("/county/exports/shops/GJY/stock.csv").get_data())
    assert stock[1][0] == "RICE" and stock[1][-1] == "是"
    moves = xlsx_rows(
        client.get(f"/county/exports/shops/GJY/movements.xlsx?month={month}").get_data()
    )
    assert moves[0][3] == "类型" and {r[3] for r in moves[1:]} == {"入库", "销售", "退货"}
    assert client.get("/county/exports/shops/ZJB/stock.csv").status_code == 403
    assert client.get("/county/exports/shops/GJY/stock.pdf").status_code == 422
    assert client.get("/county/exports/shops/GJY/daily.csv?month=13").status_code == 422


@pytest.mark.parametrize("value", ["=1+1", "+33", "-5x", "@SUM(A1)"])
def test_formula_like_text_stays_text(value):
    table = exports.Table("t", ["名"], [[value], [-5]])
    rows = csv_rows(exports.to_csv(table))
    assert rows[1] == ["'" + value] and rows[2] == ["-5"]
    assert xlsx_rows(exports.to_xlsx(table))[1:] == [["'" + value], [-5]]
