"""The manager's stock pages: scoped to their shop, Chinese by default, forms with CSRF."""

from __future__ import annotations

import pytest

from accounts.auth import Role
from core.db import db
from inventory import services
from tests.helpers.pages import form_value, sign_in
from tests.inventory.helpers import on_hand


@pytest.fixture
def signed_in(client, manager):
    sign_in(client, manager.username)
    return client


def test_the_stock_list_highlights_low_stock_and_searches(signed_in, factory, shop, rice, oil):
    factory.receive(shop, (rice, 2), (oil, 10))
    services.set_reorder_levels(
        db.session, actor=factory.admin, shop_code=shop.code, lines=[("RICE-10", 5)]
    )
    db.session.commit()
    page = signed_in.get("/stock", follow_redirects=True).get_data(as_text=True)
    assert "库存" in page  # Chinese by default
    assert 'class="low" data-sku="RICE-10"' in page
    assert 'class="" data-sku="OIL-5L"' in page
    assert f'id="stock-value">{2 * 70 + 10 * 120}<' in page
    found = signed_in.get(f"/shops/{shop.code}/stock?q=菜籽油").get_data(as_text=True)
    assert 'data-sku="OIL-5L"' in found and 'data-sku="RICE-10"' not in found
    low = signed_in.get(f"/shops/{shop.code}/stock?low=1").get_data(as_text=True)
    assert 'data-sku="RICE-10"' in low and 'data-sku="OIL-5L"' not in low


def test_receiving_by_form_keeps_lines_on_refusal_and_saves_once(signed_in, shop, rice, oil):
    url = f"/shops/{shop.code}/stock/receive"
    page = signed_in.get(url)
    assert page.headers["Cache-Control"] == "no-store"
    html = page.get_data(as_text=True)
    data = {
        "csrf_token": form_value(html, "csrf_token"),
        "idempotency_key": form_value(html, "idempotency_key"),
        "reference": "送货单 7",
        "supplier": "长阳粮油",
        "sku": ["RICE-10", "NOPE"],
        "qty": ["3", "1"],
    }
    refused = signed_in.post(url, data=data)
    assert refused.status_code == 404
    text = refused.get_data(as_text=True)
    assert "NOPE" in text and 'value="RICE-10"' in text  # the scanned lines are still there
    assert on_hand(shop, rice) == 0

    data |= {"sku": ["RICE-10", "OIL-5L"], "qty": ["3", "２"]}
    saved = signed_in.post(url, data=data)
    assert saved.status_code == 302
    result = signed_in.get(saved.headers["Location"]).get_data(as_text=True)
    assert "送货单 7" in result and "大米 10斤" in result
    assert (on_hand(shop, rice), on_hand(shop, oil)) == (3, 2)
    # The same form sent again (a double click that got through) replays, not repeats.
    assert signed_in.post(url, data=data).status_code == 302
    assert on_hand(shop, rice) == 3


def test_a_count_sheet_covers_only_what_was_counted(signed_in, factory, shop, rice, oil):
    factory.receive(shop, (rice, 10), (oil, 5))
    url = f"/shops/{shop.code}/stock/count"
    html = signed_in.get(url).get_data(as_text=True)
    assert html.count('name="counted"') == 2
    data = {
        "csrf_token": form_value(html, "csrf_token"),
        "idempotency_key": form_value(html, "idempotency_key"),
        "reference": "月底盘点",
        "sku": ["OIL-5L", "RICE-10"],
        "counted": ["", "7"],
    }
    # The difference is shown to be confirmed first (tests/inventory/test_count_confirmation.py).
    shown = signed_in.post(url, data=data).get_data(as_text=True)
    data["confirm"] = form_value(shown, "confirm")
    data["idempotency_key"] = form_value(shown, "idempotency_key")
    response = signed_in.post(url, data=data, follow_redirects=True)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'id="variances"' in page and "-3" in page
    assert (on_hand(shop, rice), on_hand(shop, oil)) == (7, 5)


def test_transfer_and_adjust_forms(signed_in, factory, shop, other_shop, rice):
    factory.receive(shop, (rice, 10))
    url = f"/shops/{shop.code}/stock/transfer"
    html = signed_in.get(url).get_data(as_text=True)
    assert f'value="{other_shop.code}"' in html and f'value="{shop.code}"' not in html
    too_many = {
        "csrf_token": form_value(html, "csrf_token"),
        "idempotency_key": form_value(html, "idempotency_key"),
        "to_shop": other_shop.code,
        "sku": ["RICE-10"],
        "qty": ["11"],
    }
    refused = signed_in.post(url, data=too_many)
    assert refused.status_code == 409
    assert "库存不足" in refused.get_data(as_text=True)
    assert signed_in.post(url, data=too_many | {"qty": ["4"]}).status_code == 302
    assert (on_hand(shop, rice), on_hand(other_shop, rice)) == (6, 4)

    url = f"/shops/{shop.code}/stock/adjust"
    html = signed_in.get(url).get_data(as_text=True)
    response = signed_in.post(
        url,
        data={
            "csrf_token": form_value(html, "csrf_token"),
            "idempotency_key": form_value(html, "idempotency_key"),
            "sku": ["RICE-10"],
            "delta": ["-1"],
            "reason": ["expired"],
        },
    )
    assert response.status_code == 302
    assert on_hand(shop, rice) == 5


def test_forms_need_their_csrf_token(signed_in, shop, rice):
    response = signed_in.post(
        f"/shops/{shop.code}/stock/receive",
        data={"idempotency_key": "k", "reference": "R", "sku": ["RICE-10"], "qty": ["1"]},
    )
    assert response.status_code == 400
    assert on_hand(shop, rice) == 0


def test_movement_history_of_a_product(signed_in, factory, shop, rice, oil):
    factory.receive(shop, (rice, 10), (oil, 1), reference="第一批")
    page = signed_in.get(f"/shops/{shop.code}/stock/movements?sku=RICE-10").get_data(as_text=True)
    assert "第一批" in page and "+10" in page and "菜籽油" not in page
    reconcile = signed_in.get(f"/shops/{shop.code}/stock/reconcile").get_data(as_text=True)
    assert 'class="flash flash-success" id="reconcile-result"' in reconcile


def test_staff_see_only_their_own_shop(client, factory, shop, other_shop, rice):
    clerk = factory.user(Role.CLERK, shop=shop.code)
    sign_in(client, clerk.username)
    assert client.get(f"/shops/{shop.code}/stock").status_code == 200
    assert client.get(f"/shops/{other_shop.code}/stock").status_code == 403
    # A clerk sells; receiving and counting are the manager's.
    assert client.get(f"/shops/{shop.code}/stock/receive").status_code == 403
    assert client.get(f"/shops/{shop.code}/stock/count").status_code == 403


def test_the_office_sees_every_shop(client, factory, shop, other_shop):
    sign_in(client, factory.admin.username)
    page = client.get("/stock").get_data(as_text=True)
    assert shop.name in page and other_shop.name in page
    assert client.get(f"/shops/{other_shop.code}/stock/receive").status_code == 200


def test_pages_send_strangers_to_sign_in(client, shop):
    response = client.get(f"/shops/{shop.code}/stock")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_reorder_levels_page_and_labels_page(signed_in, factory, shop, rice, oil):
    factory.receive(shop, (rice, 3))
    url = f"/shops/{shop.code}/stock/reorder-levels"
    html = signed_in.get(url).get_data(as_text=True)
    saved = signed_in.post(
        url,
        data={
            "csrf_token": form_value(html, "csrf_token"),
            "sku": ["OIL-5L", "RICE-10"],
            "reorder_level": ["", "4"],
        },
    )
    assert saved.status_code == 302
    levels = {
        i.product.sku: i.reorder_level
        for i in services.list_stock(db.session, actor=factory.admin, shop_code=shop.code)
    }
    assert levels == {"OIL-5L": 0, "RICE-10": 4}
    bad = signed_in.post(
        url,
        data={
            "csrf_token": form_value(html, "csrf_token"),
            "sku": ["RICE-10"],
            "reorder_level": ["x"],
        },
    )
    assert bad.status_code == 422

    labels = signed_in.get("/labels?q=大米").get_data(as_text=True)
    assert 'value="RICE-10"' in labels and 'value="OIL-5L"' not in labels
    assert "/labels/sheet.pdf" in labels
