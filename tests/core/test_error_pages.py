"""403 and 404 pages say, by who is asking, what they can do instead, and link there."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest

from accounts.auth import Role
from tests.member_cards.conftest import County, login


@pytest.fixture
def county(factory: Any) -> County:
    """Two villages with a household each, shop GJY, and a user of every role."""
    zjb = factory.village("ZJB", name="郑家榜村")
    gjy = factory.village("GJY", name="高家堰村")
    shop = factory.shop("GJY")
    return County(
        zjb=zjb,
        gjy=gjy,
        home=factory.household(zjb, head="覃德华", members=("覃德华",)),
        away=factory.household(gjy, head="田建国", members=("田建国",)),
        admin=factory.admin,
        cadre=factory.user(Role.CADRE, village="ZJB"),
        other_cadre=factory.user(Role.CADRE, village="GJY"),
        manager=factory.user(Role.MANAGER, shop=shop.code),
        clerk=factory.user(Role.CLERK, shop=shop.code),
    )


def links(page: str) -> set[str]:
    """The links the page offers in its next steps (the menu aside)."""
    steps = page.split('class="next-steps"', 1)[1].split("</div>", 1)[0]
    return {html.unescape(href) for href in re.findall(r'href="([^"]+)"', steps)}


def text(response: Any) -> str:
    return html.unescape(response.get_data(as_text=True))


def test_a_clerk_refused_is_sent_to_their_counter_and_sales(client: Any, county: County) -> None:
    login(client, county.clerk.username)
    for path in ("/households", "/villages", f"/households/{county.home.id}", "/county/"):
        response = client.get(path)
        assert response.status_code == 403, path
        page = text(response)
        assert "您是 GJY 超市的收银员，可以使用：" in page
        assert links(page) == {"/counter", "/shops/GJY/sales"}
        # Not the words for county staff and cadres that this page used to say to everyone.
        assert "村干部只能" not in page and "县文明办和村干部" not in page


def test_a_manager_refused_is_sent_to_counter_stock_and_reports(
    client: Any, county: County
) -> None:
    login(client, county.manager.username)
    response = client.get("/households")
    assert response.status_code == 403
    page = text(response)
    assert "您是 GJY 超市的店长，可以使用：" in page
    assert {
        "/counter",
        "/shops/GJY/stock",
        "/shops/GJY/reports/daily",
        "/county/shops/GJY",
        "/shops/GJY/sales",
    } == links(page)


def test_a_cadre_refused_is_sent_to_their_village(client: Any, county: County) -> None:
    login(client, county.cadre.username)
    response = client.get(f"/households/{county.away.id}")
    assert response.status_code == 403
    page = text(response)
    assert "只能查看本村农户" in page or "本村" in page
    assert "您是 ZJB 村的村干部，可以使用：" in page
    assert "/households?village=ZJB" in links(page)
    refused_at_counter = text(client.get("/counter"))
    assert "/households?village=ZJB" in links(refused_at_counter)


@pytest.mark.parametrize("path", ["/no/such/page", "/households/999999", "/sales/999999"])
def test_not_found_offers_the_admin_the_dashboard_and_no_url_editing(
    client: Any, county: County, path: str
) -> None:
    login(client, county.admin.username)
    response = client.get(path)
    assert response.status_code == 404
    page = text(response)
    assert "/county/dashboard" in links(page)
    assert "/counter" in links(page)
    for url_editing in ("?shop=", "检查链接", "地址栏", "URL", "网址"):
        assert url_editing not in page.split("<main>", 1)[1], url_editing


def test_not_found_for_a_clerk_leads_back_to_work(client: Any, county: County) -> None:
    login(client, county.clerk.username)
    response = client.get("/no/such/page")
    assert response.status_code == 404
    page = text(response)
    assert "此地址没有页面" in page
    assert links(page) == {"/counter", "/shops/GJY/sales"}
    # A 404 is no refusal: no word of asking for access.
    assert "工作范围" not in page


def test_not_found_for_someone_signed_out_offers_to_sign_in(client: Any, county: County) -> None:
    response = client.get("/no/such/page")
    assert response.status_code == 404
    page = text(response)
    assert links(page) == {"/login"} and "请先登录再继续" in page


def test_the_api_still_answers_problem_json(client: Any, county: County) -> None:
    response = client.get("/api/v1/no/such/thing")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
