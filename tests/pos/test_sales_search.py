"""The sales page's one search box: receipts, households, names and cards, never an error page."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest

from accounts.auth import Role
from core.db import db, utcnow
from core.scanned import normalize_scanned
from member_cards import services as cards
from member_cards.signing import keyring_from_config
from tests.helpers.text import full_width
from tests.member_cards.conftest import login
from tests.pos.conftest import Counter, sale_body

PAGE = "/shops/GJY/sales"


def sell(client: Any, counter: Counter, household_id: int, sku: str = "SOAP") -> dict[str, Any]:
    body = sale_body(counter, {"sku": sku, "qty": 1}, key=f"k-{household_id}-{sku}")
    body["household_id"] = household_id
    response = client.post("/api/v1/shops/GJY/sales", json=body, headers=counter.clerk_headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


@pytest.fixture
def two_sales(client: Any, counter: Counter, factory: Any) -> dict[str, Any]:
    """A sale to 覃德华's household (with a card) and one to 田建国's, both at GJY."""
    other = factory.household(
        counter.household.village, head="田建国", members=("田建国", "李秀兰"), balance=300
    )
    qin = sell(client, counter, counter.household.id)
    tian = sell(client, counter, other.id, sku="RICE-10")
    login(client, counter.clerk.username)
    return {"qin": qin, "tian": tian, "tian_id": other.id}


def search(client: Any, q: str, **args: str) -> tuple[int, str]:
    response = client.get(PAGE, query_string={"q": q, **args})
    return response.status_code, response.get_data(as_text=True)


def shown_receipts(page: str) -> set[str]:
    return set(re.findall(r">(GJY-\d{8}-\d{4})</a>", page))


@pytest.mark.parametrize("typed", ["覃德华", "德华", "覃", " 覃德华\u3000", "向秀英"])
def test_a_head_or_member_name_or_part_of_it_finds_the_households_sales(
    client: Any, two_sales: dict[str, Any], typed: str
) -> None:
    status, page = search(client, typed)
    assert status == 200
    assert shown_receipts(page) == {two_sales["qin"]["receipt_no"]}
    assert "姓名中含" in page and 'data-search-kind="name"' in page


def test_a_name_finds_sales_of_every_matching_household(client: Any, two_sales: Any) -> None:
    # 秀 is in 向秀英 (覃德华's household) and 李秀兰 (田建国's).
    status, page = search(client, "秀")
    assert status == 200
    assert shown_receipts(page) == {two_sales["qin"]["receipt_no"], two_sales["tian"]["receipt_no"]}


@pytest.mark.parametrize(
    "spell",
    [str, str.lower, full_width, lambda p: full_width(p.lower()) + "\r\n"],
    ids=["as_printed", "lower", "full_width", "full_width_lower_enter"],
)
def test_a_scanned_card_finds_its_households_sales(
    client: Any, counter: Counter, two_sales: Any, spell: Any
) -> None:
    status, page = search(client, spell(counter.payload))
    assert status == 200
    assert shown_receipts(page) == {two_sales["qin"]["receipt_no"]}
    serial = f"{counter.household.id:06d}-01"
    assert f"覃德华 户的交易，积分卡 {serial}（有效）" in page
    # The long payload is not written back into the box.
    assert 'name="q" value=""' in page


def test_a_revoked_card_still_finds_its_households_sales(
    client: Any, counter: Counter, two_sales: Any, factory: Any
) -> None:
    keyring = keyring_from_config(client.application.config)
    card = cards.resolve_card(db.session, payload=counter.payload, keyring=keyring)
    cards.revoke_card(db.session, actor=factory.admin, now=utcnow(), card_id=card.id, reason="丢失")
    db.session.commit()
    status, page = search(client, counter.payload.lower())
    assert status == 200
    assert shown_receipts(page) == {two_sales["qin"]["receipt_no"]}
    assert "（已作废）" in page


def test_a_household_number_however_typed(client: Any, two_sales: Any) -> None:
    for typed in (str(two_sales["tian_id"]), full_width(str(two_sales["tian_id"])) + "\u3000"):
        status, page = search(client, typed)
        assert status == 200
        assert shown_receipts(page) == {two_sales["tian"]["receipt_no"]}, typed
        assert f"田建国 户（{two_sales['tian_id']} 号）的交易" in page


def test_a_receipt_number_however_typed_opens_the_sale(client: Any, two_sales: Any) -> None:
    receipt_no = two_sales["tian"]["receipt_no"]
    for typed in (receipt_no, receipt_no.lower(), full_width(receipt_no.lower())):
        response = client.get(PAGE, query_string={"q": typed})
        assert response.status_code == 302, typed
        assert response.headers["Location"].endswith(f"/sales/{two_sales['tian']['sale_id']}")


GARBAGE = [
    "王五",
    "%",
    "_",
    "覃%",
    "'; DROP TABLE sales; --",
    "<script>alert(1)</script>",
    "1\x002",
    "\x00",
    "\x1b[2J",
    "²",
    "十三",
    "-5",
    "0",
    "99999999999999999999",
    "9999999999",
    "２１４７４８３６４８",
    "9" * 5000,
    "IC1.",
    "IC1.1.1.1.AAAAAAAAAAAAAAAAAAAA",
    "ic1.1.99999999999.1.x",
    "GJY-20000101-0001",
    "𠮷" * 300,
    "🙂",
    "\u200b",
]


@pytest.mark.parametrize("typed", GARBAGE, ids=range(len(GARBAGE)))
def test_anything_typed_shows_the_page_never_an_error(
    client: Any, two_sales: Any, typed: str
) -> None:
    status, page = search(client, typed)
    assert status == 200, page[:2000]
    assert 'name="q"' in page and "error-page" not in page
    if normalize_scanned(typed):
        # Wildcards are characters here: "%" is not "every sale".
        assert shown_receipts(page) == set(), typed
        assert "没有找到" in page
    assert "<script>alert" not in page


def test_a_card_that_does_not_verify_says_so(client: Any, two_sales: Any) -> None:
    status, page = search(client, "IC1.1.1.1.AAAAAAAAAAAAAAAAAAAA")
    assert status == 200
    assert "这不是有效的积分卡，没有找到相应的交易。" in html.unescape(page)


def test_nothing_found_says_so_in_chinese(client: Any, two_sales: Any) -> None:
    status, page = search(client, "王五")
    assert status == 200
    assert "没有找到与“王五”相符的交易。" in html.unescape(page)


def test_a_date_narrows_any_search_and_a_bad_date_is_said_on_the_page(
    client: Any, two_sales: Any
) -> None:
    day = two_sales["qin"]["receipt_no"].split("-")[1]
    iso = f"{day[:4]}-{day[4:6]}-{day[6:]}"
    status, page = search(client, "覃", date=iso)
    assert status == 200 and shown_receipts(page) == {two_sales["qin"]["receipt_no"]}
    status, page = search(client, "覃", date="2000-01-01")
    assert status == 200 and shown_receipts(page) == set()
    status, page = search(client, "覃", date="not-a-date")
    assert status == 422
    assert 'name="q"' in page and "这不是日期" in page and "error-page" not in page
    assert 'value="not-a-date"' in page
    # With nothing typed, a bad date still shows today's sales under the message.
    status, page = search(client, "", date="2026-13-45")
    assert status == 422 and "这不是日期" in page
    assert len(shown_receipts(page)) == 2


def test_the_default_is_todays_sales_in_the_one_box(client: Any, two_sales: Any) -> None:
    page = client.get(PAGE).get_data(as_text=True)
    assert shown_receipts(page) == {two_sales["qin"]["receipt_no"], two_sales["tian"]["receipt_no"]}
    assert 'id="q"' in page and "autofocus" in page


def test_a_name_finds_only_this_shops_sales(
    client: Any, counter: Counter, two_sales: Any, factory: Any
) -> None:
    shop = factory.shop("ZJB", name="郑家榜诚信超市")
    factory.receive(shop, (counter.soap, 5))
    other_clerk = factory.headers(factory.user(Role.CLERK, shop="ZJB"))
    body = sale_body(counter, {"sku": "SOAP", "qty": 1}, key="elsewhere")
    elsewhere = client.post("/api/v1/shops/ZJB/sales", json=body, headers=other_clerk)
    assert elsewhere.status_code == 201
    _status, page = search(client, "覃德华")
    assert shown_receipts(page) == {two_sales["qin"]["receipt_no"]}
    assert elsewhere.get_json()["receipt_no"] not in page
