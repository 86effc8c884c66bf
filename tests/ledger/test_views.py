"""The ledger's HTML pages through the test client: sign-in, forms, refusals, languages."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import pytest
from babel.messages.pofile import read_po
from sqlalchemy import func, select

from accounts.auth import Role
from core.db import db
from core.spreadsheets import XLSX_MIMETYPE
from ledger.models import Household, PointRule, Transfer, Village
from tests.factories import PASSWORD
from tests.helpers.pages import hidden_fields, login

ROOT = Path(__file__).resolve().parents[2]


# --- helpers -------------------------------------------------------------------------


def text(response: Any) -> str:
    return response.get_data(as_text=True)


def submit(client: Any, url: str, data: dict[str, Any], **kwargs: Any) -> Any:
    """GET the page, then POST its form with the page's hidden fields plus `data`."""
    form = hidden_fields(text(client.get(url)))
    return client.post(url, data={**form, **data}, **kwargs)


def count(model: Any) -> int:
    db.session.rollback()
    return int(db.session.scalar(select(func.count()).select_from(model)) or 0)


def balance_of(household_id: int) -> int:
    db.session.rollback()
    return db.session.get(Household, household_id).account.balance


@pytest.fixture
def county(factory: Any) -> dict[str, Any]:
    """Two villages, a county rule, a household in each, and who works where."""
    zjb = factory.village("ZJB", name="郑家榜村")
    gjy = factory.village("GJY", name="高家堰村", floor=100)
    factory.rule("VOLUNTEER", 2, "person", title="参加志愿服务")
    factory.rule("STRAW_BURN", -5, "household", title="焚烧秸秆")
    home = factory.household(zjb, head="覃德华", members=("覃德华", "向秀英", "覃小红"), balance=10)
    away = factory.household(gjy, head="田建国", members=("田建国", "李春梅"), balance=50)
    admin = factory.user(Role.ADMIN, username="office")
    cadre = factory.user(Role.CADRE, village="ZJB", username="cadre-zjb")
    clerk_shop = factory.shop("GJY")
    clerk = factory.user(Role.CLERK, shop=clerk_shop.code, username="clerk-gjy")
    return {
        "zjb": zjb,
        "gjy": gjy,
        "home": home.id,
        "away": away.id,
        "admin": admin,
        "cadre": cadre,
        "clerk": clerk,
    }


@pytest.fixture
def as_admin(client: Any, county: dict[str, Any]) -> Any:
    assert login(client, "office").status_code == 302
    return client


@pytest.fixture
def as_cadre(client: Any, county: dict[str, Any]) -> Any:
    assert login(client, "cadre-zjb").status_code == 302
    return client


# --- signing in and out --------------------------------------------------------------


def test_login_and_logout(client, county):
    response = client.get("/households")
    assert response.status_code == 302 and "/login" in response.location

    page = text(client.get(response.location))
    assert "登录" in page and "请先登录" in page

    wrong = login(client, "cadre-zjb", "wrong password")
    assert wrong.status_code == 401
    assert "用户名或密码错误" in text(wrong)

    right = login(client, "cadre-zjb")
    assert right.status_code == 302
    page = text(client.get("/households"))
    assert "cadre-zjb" in page and "村干部" in page

    token = hidden_fields(page)["csrf_token"]
    out = client.post("/logout", data={"csrf_token": token})
    assert out.status_code == 302 and out.location.endswith("/login")
    assert "已退出登录" in text(client.get("/login"))
    assert client.get("/households").status_code == 302


def test_login_goes_back_to_the_page_asked_for(client, county):
    client.get("/rules")
    token = hidden_fields(text(client.get("/login?next=/rules")))["csrf_token"]
    response = client.post(
        "/login?next=/rules",
        data={"csrf_token": token, "username": "office", "password": PASSWORD},
    )
    assert response.status_code == 302 and response.location.endswith("/rules")


# --- every page in both languages ----------------------------------------------------

PAGES = {
    "/households": ("农户", "诚信分", "未发卡"),
    "/households/{home}": ("家庭诚信档案", "奖励或扣分", "余额"),
    "/villages": ("村", "兑换保留积分"),
    "/villages/ZJB/edit": ("修改村信息", "保存"),
    "/rules": ("积分规则", "新建规则"),
    "/awards/import": ("批量导入", "下载模板"),
}
PAGES_EN = {
    "/households": ("Households", "Integrity score", "No card"),
    "/households/{home}": ("Family integrity file", "Award or penalty", "Balance"),
    "/villages": ("Villages", "Redemption floor"),
    "/villages/ZJB/edit": ("Edit village", "Save"),
    "/rules": ("Point rules", "New rule"),
    "/awards/import": ("Import awards", "Download the template"),
}


@pytest.mark.parametrize("path", list(PAGES))
def test_pages_are_chinese_by_default(as_admin, county, path):
    response = as_admin.get(path.format(**county))
    page = text(response)
    assert response.status_code == 200
    assert '<html lang="zh-CN">' in page
    for phrase in PAGES[path]:
        assert phrase in page, phrase
    assert "退出" in page and "English" in page and "县文明办" in page


@pytest.mark.parametrize("path", list(PAGES_EN))
def test_pages_are_english_when_chosen(as_admin, county, path):
    url = path.format(**county)
    response = as_admin.get(url + "?lang=en")
    page = text(response)
    assert response.status_code == 200
    assert '<html lang="en">' in page
    for phrase in PAGES_EN[path]:
        assert phrase in page, phrase
    assert "Sign out" in page and "County office" in page
    # The choice sticks for the session, and the switch leads back to Chinese.
    assert "Sign out" in text(as_admin.get(url))
    assert f'href="{url}?lang=zh_CN"' in page
    assert "退出" in text(as_admin.get(url + "?lang=zh_CN"))


def test_language_switch_keeps_the_search(as_admin, county):
    page = text(as_admin.get("/households?q=覃&page=1"))
    assert 'href="/households?q=%E8%A6%83&amp;page=1&amp;lang=en"' in page


def test_the_pages_own_api_calls_speak_the_pages_language(client, factory, as_admin):
    # A shop PC's browser set to English still gets the counter's messages in Chinese; a
    # person who chose English gets English; a token client follows Accept-Language.
    english_browser = {"Accept-Language": "en-US,en;q=0.9"}
    missing = as_admin.get("/api/v1/households/999999", headers=english_browser)
    assert missing.status_code == 404 and missing.get_json()["title"] == "未找到"
    as_admin.get("/households?lang=en")
    chosen = as_admin.get("/api/v1/households/999999", headers=english_browser)
    assert chosen.get_json()["title"] == "Not found"
    token = factory.headers(factory.admin)
    api = client.application.test_client().get(
        "/api/v1/households/999999", headers={**token, **english_browser}
    )
    assert api.get_json()["title"] == "Not found"


def test_login_and_error_pages_share_the_layout(client, county):
    login_page = text(client.get("/login"))
    assert 'class="topbar"' in login_page and "诚信超市积分管理" in login_page
    assert "English" in login_page
    login(client, "office")
    missing = client.get("/households/999999")
    assert missing.status_code == 404
    assert 'class="topbar"' in text(missing) and "未找到" in text(missing)
    nowhere = client.get("/no/such/page")
    assert nowhere.status_code == 404 and "此地址没有页面" in text(nowhere)


# --- households ----------------------------------------------------------------------


def test_household_list_search_and_filter(as_admin, county):
    page = text(as_admin.get("/households"))
    assert "覃德华" in page and "田建国" in page and "未发卡" in page
    assert "覃德华、向秀英、覃小红" in page

    by_member = text(as_admin.get("/households?q=向秀英"))
    assert "覃德华" in by_member and "田建国" not in by_member

    by_id = text(as_admin.get(f"/households?q={county['away']}"))
    assert "田建国" in by_id

    by_village = text(as_admin.get("/households?village=GJY"))
    assert "田建国" in by_village and "覃德华" not in by_village


def test_household_list_pages(as_admin, county, factory):
    for i in range(25):
        factory.household(county["zjb"], head=f"测试户{i:02d}", members=())
    first = text(as_admin.get("/households"))
    assert "第 1/2 页" in first and "page=2" in first
    second = text(as_admin.get("/households?page=2"))
    assert "第 2/2 页" in second and "测试户24" in second
    assert as_admin.get("/households?page=999999999999").status_code == 200


def test_cadre_sees_only_their_village(as_cadre, county):
    page = text(as_cadre.get("/households"))
    assert "覃德华" in page and "田建国" not in page


def test_create_household(as_admin, county):
    response = submit(
        as_admin,
        "/households",
        {
            "village_code": "ZJB",
            "head_name": " 王光荣 ",
            "members": "王光荣\n张翠花、王小明\n\n",
            "address": "郑家榜村3组9号",
        },
    )
    assert response.status_code == 302
    created = db.session.scalar(select(Household).where(Household.head_name == "王光荣"))
    assert [m.name for m in created.members] == ["王光荣", "张翠花", "王小明"]
    page = text(as_admin.get(response.location))
    assert "已建立" in page and "郑家榜村3组9号" in page


@pytest.mark.parametrize(
    "data",
    [
        {"village_code": "", "head_name": "王光荣"},
        {"village_code": "ZJB", "head_name": "   "},
        {"village_code": "NOPE", "head_name": "王光荣"},
        {"village_code": "ZJB", "head_name": "王" * 101},
        {"village_code": "ZJB", "head_name": "王\x00光荣"},
        {"village_code": "ZJB", "head_name": "王光荣", "members": "\n".join("甲" * 30 + "乙")},
    ],
)
def test_create_household_refusals(as_admin, county, data):
    before = count(Household)
    response = submit(as_admin, "/households", data)
    assert 400 <= response.status_code < 500
    assert 'class="problem"' in text(response)
    assert count(Household) == before


def test_cadre_may_not_create_in_another_village(as_cadre, county):
    response = submit(as_cadre, "/households", {"village_code": "GJY", "head_name": "王光荣"})
    assert response.status_code == 403
    assert "超出您所在村的范围" in text(response)


# --- the household page and its award form --------------------------------------------


def test_household_page_shows_totals_and_statement(as_admin, county):
    page = text(as_admin.get(f"/households/{county['home']}"))
    assert "覃德华" in page and "郑家榜村" in page
    assert "开户积分" in page and "+10" in page and "奖励" in page
    # Times are local (UTC+8): the statement shows a date and minutes, nothing more.
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", page)
    assert "参加志愿服务" in page and "每人" in page and "焚烧秸秆" in page


def test_post_award_by_rule_and_double_submit_posts_once(as_admin, county):
    url = f"/households/{county['home']}"
    fields = hidden_fields(text(as_admin.get(url)))
    assert len(fields["idempotency_key"]) >= 16
    data = {**fields, "rule_code": "VOLUNTEER", "persons": "2", "points": "", "reason": ""}

    first = as_admin.post(url, data=data)
    assert first.status_code == 302 and first.location.endswith(url)
    page = text(as_admin.get(url))
    assert "+4" in page and "当前余额 14" in page
    assert balance_of(county["home"]) == 14

    again = as_admin.post(url, data=data)
    assert again.status_code == 302
    assert "已经记录过" in text(as_admin.get(url))
    assert balance_of(county["home"]) == 14
    assert count(Transfer) == 3  # the two opening balances and one award

    # Every drawing of the form carries a new key.
    assert hidden_fields(text(as_admin.get(url)))["idempotency_key"] != fields["idempotency_key"]


def test_post_penalty_by_points_and_by_rule(as_cadre, county):
    url = f"/households/{county['home']}"
    response = submit(as_cadre, url, {"rule_code": "", "points": "－3", "reason": "乱倒垃圾"})
    assert response.status_code == 302
    page = text(as_cadre.get(url))
    assert "-3" in page and "扣分" in page and "乱倒垃圾" in page and "当前余额 7" in page

    response = submit(as_cadre, url, {"rule_code": "STRAW_BURN"})
    assert response.status_code == 302
    assert balance_of(county["home"]) == 2
    assert "焚烧秸秆" in text(as_cadre.get(url))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"points": "abc", "reason": "x"}, "请输入整数"),
        ({"points": "99999999999999999999999", "reason": "x"}, "数字太大"),
        ({"points": "20000", "reason": "x"}, "不超过 10000"),
        ({"points": "0", "reason": "x"}, "不超过 10000"),
        ({"points": "5", "reason": ""}, "不按规则记分时必须填写事由"),
        ({}, "规则和积分只能二选一"),
        ({"rule_code": "NO_SUCH_RULE"}, "没有正在执行的规则"),
        ({"rule_code": "VOLUNTEER", "persons": "9"}, "必须为 1 到 3"),
        ({"rule_code": "VOLUNTEER", "persons": "x"}, "请输入整数"),
        ({"rule_code": "STRAW_BURN", "persons": "2"}, "此规则按户计分"),
        ({"rule_code": "VOLUNTEER", "points": "5", "reason": "x"}, "规则和积分只能二选一"),
        ({"points": "5", "reason": "x" * 201}, "200"),
        ({"points": "5", "reason": "a\x00b"}, "无法保存"),
        ({"idempotency_key": "", "points": "5", "reason": "x"}, "表单已过期"),
        ({"idempotency_key": "k" * 101, "points": "5", "reason": "x"}, "100"),
    ],
)
def test_award_form_refusals_are_readable(as_admin, county, data, message):
    url = f"/households/{county['home']}"
    before = count(Transfer)
    response = submit(as_admin, url, data)
    page = text(response)
    assert 400 <= response.status_code < 500, page
    assert message in page
    assert 'name="rule_code"' in page  # the form is still there to correct
    assert count(Transfer) == before


def test_reusing_a_key_for_another_award_is_refused(as_admin, county):
    url = f"/households/{county['home']}"
    fields = hidden_fields(text(as_admin.get(url)))
    base = {**fields, "rule_code": "", "reason": "修路"}
    assert as_admin.post(url, data={**base, "points": "5"}).status_code == 302
    clash = as_admin.post(url, data={**base, "points": "6"})
    assert clash.status_code == 409
    assert "幂等键" in text(clash) or "已用于" in text(clash)
    assert balance_of(county["home"]) == 15


def test_statement_pages_back_in_time(as_admin, county, factory):
    from core.db import utcnow
    from ledger import services

    for i in range(35):
        services.post_award(
            db.session,
            actor=factory.admin,
            now=utcnow(),
            household_id=county["home"],
            idempotency_key=f"many-{i}",
            points=1,
            reason=f"第{i}次",
        )
    db.session.commit()
    url = f"/households/{county['home']}"
    newest = text(as_admin.get(url))
    assert "第34次" in newest and "开户积分" not in newest
    older = re.search(r'href="(/households/\d+\?before=\d+)"', newest)
    assert older
    page = text(as_admin.get(html.unescape(older.group(1))))
    assert "开户积分" in page and "第34次" not in page and "最新" in page
    assert as_admin.get(url + "?before=abc").status_code == 200
    assert as_admin.get(url + "?before=99999999999999999999999").status_code == 200


def test_household_ids_beyond_range_are_not_found(as_admin, county):
    assert as_admin.get("/households/99999999999999").status_code == 404
    assert as_admin.get("/households/0").status_code == 404


# --- who may see what ----------------------------------------------------------------


def test_cadre_refused_on_another_villages_household(as_cadre, county):
    url = f"/households/{county['away']}"
    response = as_cadre.get(url)
    page = text(response)
    assert response.status_code == 403
    assert "您无权进行此操作" in page and "只能查看本村农户" in page
    assert "田建国" not in page and "50" not in re.sub(r"<[^>]+>", " ", page).split()

    token = hidden_fields(text(as_cadre.get("/households")))["csrf_token"]
    post = as_cadre.post(
        url,
        data={"csrf_token": token, "idempotency_key": "x1", "points": "100", "reason": "x"},
    )
    assert post.status_code == 403
    assert balance_of(county["away"]) == 50


def test_clerk_gets_a_readable_403(client, county):
    login(client, "clerk-gjy")
    for path in ("/households", "/villages", "/rules", "/awards/import", "/households/1"):
        response = client.get(path)
        assert response.status_code == 403, path
        page = text(response)
        assert "您无权进行此操作" in page and "县文明办" in page
        assert "退出" in page  # still able to sign out
        assert 'href="/villages"' not in page  # no menu of pages they cannot use


def test_post_without_csrf_token_is_a_400_page(as_admin, county):
    response = as_admin.post(
        f"/households/{county['home']}",
        data={"idempotency_key": "no-csrf", "points": "5", "reason": "x"},
    )
    assert response.status_code == 400
    page = text(response)
    assert "表单已过期" in page and "CSRF" not in page
    assert balance_of(county["home"]) == 10
    bad = as_admin.post("/villages", data={"csrf_token": "forged", "code": "X", "name": "X"})
    assert bad.status_code == 400


# --- villages ------------------------------------------------------------------------


def test_create_and_edit_village(as_admin, county):
    response = submit(
        as_admin, "/villages", {"code": "JYK", "name": "津洋口村", "redemption_floor": "20"}
    )
    assert response.status_code == 302
    page = text(as_admin.get("/villages"))
    assert "津洋口村" in page and "已建立" in page

    response = submit(
        as_admin, "/villages/JYK/edit", {"name": "津洋口新村", "redemption_floor": "30"}
    )
    assert response.status_code == 302
    village = db.session.scalar(select(Village).where(Village.code == "JYK"))
    db.session.refresh(village)
    assert (village.name, village.redemption_floor) == ("津洋口新村", 30)


def test_village_page_counts_households(as_admin, county):
    page = text(as_admin.get("/villages"))
    assert 'href="/households?village=ZJB">1</a>' in page


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        ({"code": "ZJB", "name": "重复", "redemption_floor": "0"}, 409, "已存在"),
        ({"code": "含中文", "name": "村", "redemption_floor": "0"}, 422, "字母"),
        ({"code": "", "name": "", "redemption_floor": ""}, 422, "请填写"),
        ({"code": "NEW", "name": "新村", "redemption_floor": "-1"}, 422, "不小于 0"),
        ({"code": "NEW", "name": "新村", "redemption_floor": "1e9"}, 422, "请输入整数"),
        ({"code": "NEW", "name": "新村", "redemption_floor": "9" * 30}, 422, "不小于 0"),
    ],
)
def test_village_refusals(as_admin, county, data, status, message):
    response = submit(as_admin, "/villages", data)
    assert response.status_code == status
    assert message in text(response)


def test_cadre_may_edit_own_village_only(as_cadre, county):
    assert as_cadre.get("/villages/ZJB/edit").status_code == 200
    response = submit(as_cadre, "/villages/ZJB/edit", {"name": "郑家榜村", "redemption_floor": "5"})
    assert response.status_code == 302
    refused = as_cadre.get("/villages/GJY/edit")
    assert refused.status_code == 403 and "只能修改本村" in text(refused)
    page = text(as_cadre.get("/villages"))
    assert "新建村" not in page  # creating villages is for the county office
    create = submit(as_cadre, "/villages", {"code": "NEW", "name": "新村", "redemption_floor": "0"})
    assert create.status_code == 403 and "只有县文明办可以" in text(create)
    assert as_cadre.get("/villages/NOPE/edit").status_code == 404


# --- rules ---------------------------------------------------------------------------


def test_rules_in_force_per_village(as_admin, county, factory):
    factory.rule("VOLUNTEER", 3, "person", village=county["gjy"], title="高家堰志愿服务")
    county_wide = text(as_admin.get("/rules"))
    assert "参加志愿服务" in county_wide and "高家堰志愿服务" not in county_wide
    gjy = text(as_admin.get("/rules?village=GJY"))
    assert "高家堰志愿服务" in gjy and "参加志愿服务" not in gjy and "焚烧秸秆" in gjy
    assert as_admin.get("/rules?village=NOPE").status_code == 404


def test_create_rule(as_admin, county):
    response = submit(
        as_admin,
        "/rules",
        {"code": "CLEAN_YARD", "title": "庭院整洁", "points": "3", "per": "household"},
    )
    assert response.status_code == 302
    assert "庭院整洁" in text(as_admin.get("/rules"))
    response = submit(
        as_admin,
        "/rules",
        {
            "code": "CLEAN_YARD",
            "title": "庭院整洁（郑家榜）",
            "points": "5",
            "per": "household",
            "village_code": "ZJB",
        },
    )
    assert response.status_code == 302 and response.location.endswith("/rules?village=ZJB")
    assert count(PointRule) == 4


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"code": "VOLUNTEER", "title": "重复", "points": "2", "per": "person"}, "已存在"),
        ({"code": "ZERO", "title": "零分", "points": "0", "per": "person"}, "不能为 0"),
        ({"code": "BIG", "title": "大", "points": "10001", "per": "person"}, "不能为 0"),
        ({"code": "BIG", "title": "大", "points": "1" * 40, "per": "person"}, "数字太大"),
        ({"code": "ODD", "title": "怪", "points": "2", "per": "village"}, "按户或按人"),
        ({"code": "NOV", "title": "怪", "points": "2", "village_code": "NOPE"}, "没有编号为"),
        ({"code": "", "title": "", "points": "", "per": ""}, "请填写"),
    ],
)
def test_rule_refusals(as_admin, county, data, message):
    before = count(PointRule)
    response = submit(as_admin, "/rules", data)
    assert 400 <= response.status_code < 500
    assert message in text(response)
    assert count(PointRule) == before


def test_cadre_rules_default_to_their_village_and_no_county_rules(as_cadre, county):
    page = text(as_cadre.get("/rules"))
    assert '<option value="ZJB" selected>' in page
    assert "全县通用" not in page.split("新建规则")[1]
    response = submit(
        as_cadre, "/rules", {"code": "X1", "title": "全县", "points": "2", "village_code": ""}
    )
    assert response.status_code == 403 and "只有县文明办可以" in text(response)


# --- award import --------------------------------------------------------------------


def upload(client: Any, body: bytes, name: str = "awards.csv") -> Any:
    import io

    token = hidden_fields(text(client.get("/awards/import")))["csrf_token"]
    return client.post(
        "/awards/import",
        data={"csrf_token": token, "file": (io.BytesIO(body), name)},
        content_type="multipart/form-data",
    )


def test_csv_upload_shows_each_line(as_admin, county):
    body = (
        "household_id,rule_code,persons,reason,idempotency_key\r\n"
        f"{county['home']},VOLUNTEER,2,打扫村道,k-1\r\n"
        "999999,VOLUNTEER,1,,k-2\r\n"
        f"{county['away']},STRAW_BURN,,,k-3\r\n"
    ).encode("gb18030")
    response = upload(as_admin, body)
    page = text(response)
    assert response.status_code == 200
    assert re.search(r'id="created">2<', page) and re.search(r'id="failed">1<', page)
    # The line and what is wrong in plain words, not a machine code.
    assert re.search(r'<td class="num">3</td><td>没有编号为 999999 的农户</td>', page)
    assert "not_found" not in page
    assert balance_of(county["home"]) == 14 and balance_of(county["away"]) == 45

    again = text(upload(as_admin, body))
    assert re.search(r'id="created">0<', again) and re.search(r'id="replayed">2<', again)
    assert balance_of(county["home"]) == 14


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "文件是空的"),
        (b"\x00\x01\x02binary", "这个文件不是表格"),
        (b"a,b,c\r\n1,2,3\r\n", "缺少列"),
        (b"\xff\xfe\xfa\xfb\xfc", "既不是 UTF-8"),
    ],
)
def test_csv_upload_refusals(as_admin, county, body, message):
    response = upload(as_admin, body)
    assert response.status_code == 422
    assert message in text(response)


def test_csv_upload_needs_a_file(as_admin, county):
    token = hidden_fields(text(as_admin.get("/awards/import")))["csrf_token"]
    response = as_admin.post("/awards/import", data={"csrf_token": token})
    assert response.status_code == 422 and "请选择要上传的 Excel 或 CSV 文件" in text(response)


def test_csv_upload_row_limit(app, as_admin, county):
    app.config["IMPORT_MAX_ROWS"] = 2
    rows = "".join(f"{county['home']},VOLUNTEER,1,,r{i}\n" for i in range(3))
    response = upload(
        as_admin, ("household_id,rule_code,persons,reason,idempotency_key\n" + rows).encode()
    )
    assert response.status_code == 422 and "每个文件最多 2 行" in text(response)
    assert balance_of(county["home"]) == 10


def test_csv_upload_too_large_is_a_readable_413(app, as_admin, county):
    app.config["MAX_CONTENT_LENGTH"] = 2_000
    response = upload(as_admin, b"household_id,rule_code\n" + b"1,VOLUNTEER\n" * 500)
    assert response.status_code == 413
    assert "文件太大" in text(response)


def test_template_download_is_a_workbook(as_cadre, county):
    import io

    from openpyxl import load_workbook

    response = as_cadre.get("/awards/import/template.xlsx")
    assert response.status_code == 200
    assert response.mimetype == XLSX_MIMETYPE
    assert "attachment" in response.headers["Content-Disposition"]
    sheet = load_workbook(io.BytesIO(response.data)).worksheets[0]
    assert [c.value for c in sheet[1]] == ["户号", "规则", "人数", "事由"]


# --- garbage never answers 500 -------------------------------------------------------

GARBAGE = ["", " ", "-", "１２", "½", "1" * 50, "<script>", "\x00", "名", "-0", "+-1", "NaN"]


@pytest.mark.parametrize("junk", GARBAGE)
def test_no_page_ever_500_on_garbage(as_admin, county, junk):
    home = f"/households/{county['home']}"
    posts = [
        (home, {"rule_code": junk, "persons": junk, "points": junk, "reason": junk}),
        (home, {"idempotency_key": junk, "points": junk}),
        ("/households", {"village_code": junk, "head_name": junk, "members": junk}),
        ("/villages", {"code": junk, "name": junk, "redemption_floor": junk}),
        ("/villages/ZJB/edit", {"name": junk, "redemption_floor": junk}),
        (
            "/rules",
            {"code": junk, "title": junk, "points": junk, "per": junk, "village_code": junk},
        ),
    ]
    for url, data in posts:
        response = submit(as_admin, url, data)
        assert response.status_code < 500, (url, data, text(response)[:500])
    for url in (
        f"/households?q={junk}&village={junk}&page={junk}",
        f"{home}?before={junk}",
        f"/rules?village={junk}",
    ):
        assert as_admin.get(url).status_code < 500, url


# --- catalogues ----------------------------------------------------------------------


def _catalog(lang: str) -> Any:
    with (ROOT / "translations" / lang / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        return read_po(fh, locale=lang)


def test_every_message_is_translated_into_chinese():
    # Babel reads the locale zh_CN as zh_Hans_CN and looks for the catalogue under that
    # name; a zh_CN folder would be silently ignored and every page would be English.
    catalog = _catalog("zh_Hans_CN")
    # A catalogue without its header entry reads as fuzzy, and `pybabel compile` skips it.
    assert not catalog.fuzzy
    messages = [m for m in catalog if m.id]
    assert len(messages) > 100
    untranslated = [m.id for m in messages if not m.string]
    fuzzy = [m.id for m in messages if m.fuzzy]
    assert untranslated == []
    assert fuzzy == []
    # Placeholders survive translation: %(name)s for gettext, {name} for the pages' scripts.
    placeholder = re.compile(r"%\(\w+\)s|\{\w+\}")
    for m in messages:
        assert set(placeholder.findall(m.string)) == set(placeholder.findall(m.id)), m.id


def test_english_catalogue_has_no_fuzzy_entries():
    assert not _catalog("en").fuzzy
    assert [m.id for m in _catalog("en") if m.id and m.fuzzy] == []


def test_the_office_sets_and_clears_a_villages_home_shop(as_admin, county):
    page = text(as_admin.get("/villages/ZJB/edit"))
    assert "本村超市" in page and '<option value="GJY">' in page
    data = {"name": "郑家榜村", "redemption_floor": "0"}
    response = submit(as_admin, "/villages/ZJB/edit", {**data, "shop_code": "NOPE"})
    assert response.status_code == 422
    response = submit(as_admin, "/villages/ZJB/edit", {**data, "shop_code": "GJY"})
    assert response.status_code == 302
    village = db.session.scalar(select(Village).where(Village.code == "ZJB"))
    db.session.refresh(village)
    assert village.shop_code == "GJY"
    assert "GJY" in text(as_admin.get("/villages"))
    # A form without the field leaves it; an empty choice clears it.
    assert submit(as_admin, "/villages/ZJB/edit", data).status_code == 302
    db.session.refresh(village)
    assert village.shop_code == "GJY"
    assert submit(as_admin, "/villages/ZJB/edit", {**data, "shop_code": ""}).status_code == 302
    db.session.refresh(village)
    assert village.shop_code is None


def test_a_cadre_does_not_see_the_home_shop(as_cadre, county):
    assert "本村超市" not in text(as_cadre.get("/villages/ZJB/edit"))
