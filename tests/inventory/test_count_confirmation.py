"""A stock take that differs from the books is shown and confirmed before it is saved."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest

from tests.helpers.pages import form_value, sign_in
from tests.inventory.helpers import movement_count, on_hand


@pytest.fixture
def signed_in(client: Any, manager: Any) -> Any:
    sign_in(client, manager.username)
    return client


@pytest.fixture
def stocked(factory: Any, shop: Any, rice: Any, oil: Any) -> None:
    factory.receive(shop, (rice, 10), (oil, 5))


def count_url(shop: Any) -> str:
    return f"/shops/{shop.code}/stock/count"


def sheet(client: Any, shop: Any, **counted: str) -> dict[str, Any]:
    """The count sheet as a browser would send it, with the counts given (OIL-5L, RICE-10)."""
    page = client.get(count_url(shop)).get_data(as_text=True)
    return {
        "csrf_token": form_value(page, "csrf_token"),
        "idempotency_key": form_value(page, "idempotency_key"),
        "confirm": form_value(page, "confirm"),
        "reference": "月底盘点",
        "sku": ["OIL-5L", "RICE-10"],
        "counted": [counted.get("oil", ""), counted.get("rice", "")],
    }


def review_shown(page: str) -> bool:
    tag = re.search(r"<section[^>]*data-count-review[^>]*>", page)
    assert tag is not None
    return re.search(r"\shidden[\s>]", tag[0]) is None


def review_rows(page: str) -> list[list[str]]:
    """The differences shown for confirming, as the cells' text."""
    body = page.split("data-review-lines>", 1)[1].split("</tbody>", 1)[0]
    return [
        [html.unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in row.split("</td>")[:-1]]
        for row in body.split("</tr>")[:-1]
    ]


def test_differences_are_shown_not_saved(
    signed_in: Any, shop: Any, rice: Any, oil: Any, stocked: None
) -> None:
    moves = movement_count()
    data = sheet(signed_in, shop, rice="7", oil="5")
    assert data["confirm"] == ""
    response = signed_in.post(count_url(shop), data=data)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "保存前请核对差异" in page and review_shown(page)
    # Only what differs, with the books, the count and the difference.
    assert review_rows(page) == [["RICE-10", "大米 10斤", "10", "7", "-3"]]
    # What was typed is still on the sheet, and nothing moved.
    assert 'value="7"' in page
    assert (on_hand(shop, rice), on_hand(shop, oil)) == (10, 5)
    assert movement_count() == moves
    assert form_value(page, "confirm") == "5:5,10:7"


def test_the_same_submission_again_without_confirming_still_saves_nothing(
    signed_in: Any, shop: Any, rice: Any, stocked: None
) -> None:
    # A double Enter, or a page without its script: each post carries no confirmation.
    data = sheet(signed_in, shop, rice="7")
    for _ in range(3):
        assert signed_in.post(count_url(shop), data=data).status_code == 200
    assert on_hand(shop, rice) == 10


def test_confirmed_as_shown_it_saves(
    signed_in: Any, shop: Any, rice: Any, oil: Any, stocked: None
) -> None:
    data = sheet(signed_in, shop, rice="7", oil="4")
    shown = signed_in.post(count_url(shop), data=data).get_data(as_text=True)
    assert [row[0] for row in review_rows(shown)] == ["OIL-5L", "RICE-10"]
    data["confirm"] = form_value(shown, "confirm")
    data["idempotency_key"] = form_value(shown, "idempotency_key")
    saved = signed_in.post(count_url(shop), data=data)
    assert saved.status_code == 302
    assert (on_hand(shop, rice), on_hand(shop, oil)) == (7, 4)
    page = signed_in.get(saved.headers["Location"]).get_data(as_text=True)
    assert "已保存。库存已改为实点数。" in page and 'id="variances"' in page


def test_a_count_that_matches_the_books_saves_at_once_and_says_so(
    signed_in: Any, shop: Any, rice: Any, stocked: None
) -> None:
    moves = movement_count()
    saved = signed_in.post(count_url(shop), data=sheet(signed_in, shop, rice="10", oil="5"))
    assert saved.status_code == 302
    page = signed_in.get(saved.headers["Location"]).get_data(as_text=True)
    assert "所有实点数与账面一致，库存没有变化" in page
    assert on_hand(shop, rice) == 10 and movement_count() == moves


def test_a_count_changed_after_it_was_shown_is_shown_again(
    signed_in: Any, shop: Any, rice: Any, stocked: None
) -> None:
    data = sheet(signed_in, shop, rice="7")
    shown = signed_in.post(count_url(shop), data=data).get_data(as_text=True)
    data["confirm"] = form_value(shown, "confirm")
    data["counted"] = ["", "2"]  # corrected after seeing the differences, not yet seen
    again = signed_in.post(count_url(shop), data=data)
    assert again.status_code == 200
    assert review_rows(again.get_data(as_text=True)) == [["RICE-10", "大米 10斤", "10", "2", "-8"]]
    assert on_hand(shop, rice) == 10


def test_books_that_moved_since_the_differences_were_shown_ask_again(
    signed_in: Any, factory: Any, shop: Any, rice: Any, stocked: None
) -> None:
    data = sheet(signed_in, shop, rice="7")
    shown = signed_in.post(count_url(shop), data=data).get_data(as_text=True)
    data["confirm"] = form_value(shown, "confirm")
    factory.receive(shop, (rice, 2))  # a delivery booked meanwhile: the books say 12 now
    again = signed_in.post(count_url(shop), data=data)
    assert again.status_code == 200
    assert review_rows(again.get_data(as_text=True)) == [["RICE-10", "大米 10斤", "12", "7", "-5"]]
    assert on_hand(shop, rice) == 12


@pytest.mark.parametrize("typed", ["-1", "abc", "1e3"])
def test_a_count_that_is_no_count_is_refused_not_shown_for_confirming(
    signed_in: Any, shop: Any, rice: Any, stocked: None, typed: str
) -> None:
    response = signed_in.post(count_url(shop), data=sheet(signed_in, shop, rice=typed))
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'role="alert"' in page and not review_shown(page)
    assert on_hand(shop, rice) == 10


def test_an_unknown_product_is_refused_before_any_confirming(
    signed_in: Any, shop: Any, rice: Any, stocked: None
) -> None:
    data = sheet(signed_in, shop, rice="7")
    data["sku"] = ["NO-SUCH", "RICE-10"]
    data["counted"] = ["1", "7"]
    response = signed_in.post(count_url(shop), data=data)
    assert response.status_code == 404
    assert not review_shown(response.get_data(as_text=True))
    assert on_hand(shop, rice) == 10
