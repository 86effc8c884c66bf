"""Who may call what: every endpoint and page, against every role and scope, from one table.

The table is the spec (API.md's roles, DESIGN.md's scopes). The test fails when an
endpoint is missing from it, so a new endpoint must say who may use it. "Shop A" and
"village A" hold the objects in the paths; the B users are the same roles elsewhere.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask

from core.db import db, utcnow
from core.timeutil import business_day, local_tz
from member_cards.signing import keyring_from_config
from tests.factories import PASSWORD, Factory
from tests.helpers.pages import csrf_token, login

A, C, M, K, P = "admin", "cadre", "manager", "clerk", "agent"
# A village group leader: declares deeds for its village, sees no shop.
R = "reporter"
# A shop's node: syncs and posts its own shop's offline sales, and prints its jobs.
N = "node"
PEOPLE = {A, C, M, K}
PUBLIC = "public"


@dataclass(frozen=True)
class Rule:
    roles: frozenset[str] | str
    shop: bool = False  # the object belongs to shop A: staff of shop B are refused
    village: bool = False  # the object belongs to village A: cadres of village B are refused


def r(*roles: str, shop: bool = False, village: bool = False) -> Rule:
    return Rule(frozenset(roles), shop=shop, village=village)


OPEN = Rule(PUBLIC)

ACCESS: dict[str, Rule] = {
    # Signing in, the public balance page, documents and files.
    "POST auth_api.create_token": OPEN,
    "GET api-docs.openapi_json": OPEN,
    "GET auth.login": OPEN,
    "POST auth.login": OPEN,
    "POST auth.logout": OPEN,
    "GET home": OPEN,
    "GET static": OPEN,
    "GET member_cards.balance": OPEN,
    "POST member_cards.balance": OPEN,
    # Villages, households and the ledger.
    "POST ledger_api.create_village": r(A),
    "GET ledger_api.list_villages": r(*PEOPLE),
    "PATCH ledger_api.update_village": r(A, C, village=True),
    "POST ledger_api.create_household": r(A, C),
    "GET ledger_api.search_households": r(A, C),
    # Shop staff read any household: the counter shows who is buying.
    "GET ledger_api.get_household": r(*PEOPLE, village=True),
    "GET ledger_api.household_statement": r(*PEOPLE, village=True),
    "GET ledger_api.verify_ledger": r(A),
    "POST ledger_api.create_rule": r(A, C),
    "GET ledger_api.list_rules": r(*PEOPLE, R),
    "POST ledger_api.post_award": r(A, C),
    "POST ledger_api.import_awards": r(A, C),
    "POST ledger_api.post_correction": r(A, C),
    # Member cards.
    "POST cards_api.issue_card": r(A, C, village=True),
    "GET cards_api.list_cards": r(A, C, village=True),
    "POST cards_api.revoke_card": r(A, C, village=True),
    "POST cards_api.reprint_card": r(A, C, village=True),
    "GET cards_api.card_qr": r(A, C, village=True),
    "POST cards_api.resolve_card": r(*PEOPLE),
    # Shops, goods, stock.
    "POST inventory_api.create_shop": r(A),
    "GET inventory_api.list_shops": r(*PEOPLE),
    "PATCH inventory_api.update_shop": r(A),
    "POST inventory_api.create_product": r(A),
    "GET inventory_api.search_products": r(*PEOPLE),
    "GET inventory_api.get_product": r(*PEOPLE),
    "PATCH inventory_api.update_product": r(A),
    "GET inventory_api.product_by_barcode": r(*PEOPLE),
    "GET inventory_api.label_sheet": r(A, M, K),
    "GET inventory_api.label_image": r(A, M, K),
    "GET inventory_api.list_stock": r(A, M, K, shop=True),
    "PUT inventory_api.set_reorder_levels": r(A, M, shop=True),
    "POST inventory_api.receive_stock": r(A, M, shop=True),
    "POST inventory_api.adjust_stock": r(A, M, shop=True),
    "POST inventory_api.count_stock": r(A, M, shop=True),
    "POST inventory_api.transfer_stock": r(A, M, shop=True),
    "GET inventory_api.get_operation": r(A, M, K, shop=True),
    "GET inventory_api.list_movements": r(A, M, K, shop=True),
    "GET inventory_api.reconcile_stock": r(A, M, K, shop=True),
    # Selling.
    "POST pos_api.record_sale": r(A, M, K, shop=True),
    "GET pos_api.find_sales": r(A, M, K, shop=True),
    "POST pos_api.find_customer": r(A, M, K, shop=True),
    "GET pos_api.find_goods": r(A, M, K, shop=True),
    "GET pos_api.get_sale": r(A, M, K, shop=True),
    "GET pos_api.sale_receipt": r(A, M, K, shop=True),
    "POST pos_api.record_return": r(A, M, shop=True),
    "POST pos_api.void_sale": r(A, M, shop=True),
    "GET pos_api.daily_report": r(A, M, shop=True),
    # Printers and print jobs; the agent fetches its own shop's jobs and nothing else.
    "GET pos_printing_api.get_printer": r(A, M, K, shop=True),
    "PUT pos_printing_api.put_printer": r(A),
    "GET pos_printing_api.shop_jobs": r(A, M, K, shop=True),
    "GET pos_printing_api.sale_jobs": r(A, M, K, shop=True),
    "GET pos_printing_api.sale_print": r(A, M, K, shop=True),
    "POST pos_printing_api.reprint": r(A, M, K, shop=True),
    "POST pos_printing_api.retry": r(A, M, K, shop=True),
    "POST pos_printing_api.print_report": r(A, M, shop=True),
    # The shop's node does its print agent's work.
    "GET pos_printing_api.agent_identity": r(P, N),
    "GET pos_printing_api.next_job": r(P, N),
    "POST pos_printing_api.ack": r(A, P, N),
    "POST pos_printing_api.fail": r(A, P, N),
    # Shop nodes: only the shop's own registered node, not even the office.
    "GET nodes_api.node_state": r(N),
    "POST nodes_api.post_offline_sale": r(N),
    "POST nodes_api.post_offline_sales": r(N),
    "GET nodes_api.node_feed": r(N),
    "PUT nodes_api.node_report": r(N),
    # The county office's view.
    "GET county_api.list_categories": r(A, C),
    "POST county_api.create_category": r(A),
    "PATCH county_api.update_category": r(A),
    "PUT county_api.set_threshold": r(A),
    "PUT county_api.set_rule_category": r(A, C),
    "GET county_api.red_list": r(A, C),
    "GET county_api.black_list": r(A, C),
    "GET county_api.ten_star": r(A, C),
    "GET county_api.stars": r(A, C),
    "GET county_api.dashboard": r(A, M),
    # Declarations: group leaders declare; the village's cadres and the office decide.
    "POST declarations_api.submit_declaration": r(A, C, R),
    "GET declarations_api.list_declarations": r(A, C, R),
    "GET declarations_api.get_declaration": r(A, C, R, village=True),
    "GET declarations_api.declaration_photo": r(A, C, R, village=True),
    "POST declarations_api.approve_declaration": r(A, C, village=True),
    "POST declarations_api.reject_declaration": r(A, C, village=True),
    # Pages.
    "GET audit.events": r(A),
    "GET audit.export": r(A),
    "GET ledger.villages": r(A, C),
    "POST ledger.villages": r(A, C),
    "GET ledger.village_edit": r(A, C, village=True),
    "POST ledger.village_edit": r(A, C, village=True),
    "GET ledger.households": r(A, C),
    "POST ledger.households": r(A, C),
    "GET ledger.household": r(A, C, village=True),
    "POST ledger.household": r(A, C, village=True),
    "GET ledger.rules": r(A, C),
    "POST ledger.rules": r(A, C),
    "GET ledger.award_import": r(A, C),
    "POST ledger.award_import": r(A, C),
    "GET ledger.award_import_template": r(A, C),
    "POST member_cards.issue": r(A, C, village=True),
    "POST member_cards.reprint": r(A, C, village=True),
    "POST member_cards.revoke": r(A, C, village=True),
    "GET member_cards.household_sheet": r(A, C, village=True),
    "POST member_cards.issue_missing": r(A, C, village=True),
    "GET member_cards.village_sheet": r(A, C, village=True),
    "GET inventory.index": r(A, M, K),
    "GET inventory.stock": r(A, M, K, shop=True),
    "GET inventory.movements": r(A, M, K, shop=True),
    "GET inventory.operation": r(A, M, K, shop=True),
    "GET inventory.reconcile": r(A, M, K, shop=True),
    "GET inventory.receive": r(A, M, shop=True),
    "POST inventory.receive": r(A, M, shop=True),
    "GET inventory.adjust": r(A, M, shop=True),
    "POST inventory.adjust": r(A, M, shop=True),
    "GET inventory.transfer": r(A, M, shop=True),
    "POST inventory.transfer": r(A, M, shop=True),
    "GET inventory.count": r(A, M, shop=True),
    "POST inventory.count": r(A, M, shop=True),
    "GET inventory.reorder_levels": r(A, M, shop=True),
    "POST inventory.reorder_levels": r(A, M, shop=True),
    "GET inventory.labels": r(A, M, K),
    "GET inventory.label_sheet": r(A, M, K),
    "GET inventory.label_image": r(A, M, K),
    "GET pos.counter": r(A, M, K),
    "GET pos.counter_display": r(A, M, K),
    "GET pos.sales": r(A, M, K, shop=True),
    "GET pos.sale": r(A, M, K, shop=True),
    "POST pos.return_goods": r(A, M, shop=True),
    "POST pos.void": r(A, M, shop=True),
    "GET pos.daily_report": r(A, M, shop=True),
    "GET pos_printers.printers": r(A),
    "GET pos_printers.printer_edit": r(A),
    "POST pos_printers.printer_edit": r(A),
    "GET county.index": r(A, C, M),
    "GET county.categories": r(A, C),
    "POST county.categories": r(A),
    "POST county.category_edit": r(A),
    "POST county.rule_category": r(A, C),
    "GET county.dashboard": r(A),
    "GET county.shop_dashboard": r(A, M, shop=True),
    "GET county.rankings": r(A, C),
    "GET county.notice": r(A, C),
    "GET county.export_households": r(A, C),
    "GET county.export_statement": r(A, C, village=True),
    "GET county.export_rankings": r(A, C),
    "GET county.export_shop_days": r(A, M, shop=True),
    "GET county.export_movements": r(A, M, shop=True),
    "GET county.export_stock": r(A, M, shop=True),
    "GET declarations.index": r(A, C, R),
    "GET declarations.new": r(A, C, R),
    "POST declarations.new": r(A, C, R),
    "POST declarations.card": r(A, C, R),
    "GET declarations.review": r(A, C),
    "POST declarations.approve": r(A, C, village=True),
    "POST declarations.reject": r(A, C, village=True),
    "POST declarations.correct": r(A, C, village=True),
    "GET declarations.detail": r(A, C, R, village=True),
    "GET declarations.photo": r(A, C, R, village=True),
    "GET declarations.public": r(A, C, R, village=True),
}


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    # Who may do what is decided above the database; one backend says it.
    return request.param


@dataclass
class World:
    values: dict[str, Any]
    users: dict[str, Any]


@pytest.fixture
def world(app: Flask, factory: Factory) -> World:
    from county import services as county
    from nodes import services as nodes
    from pos import services as pos
    from printing import services as printing

    now = utcnow()
    village_a = factory.village("ZJB", name="郑家榜村")
    village_b = factory.village("QTP", name="青树坪村")
    home = factory.household(village_a, balance=500)
    factory.household(village_b, balance=500)
    card, payload = factory.card(home)
    shop_a = factory.shop("GJY", name="高家堰诚信超市")
    shop_b = factory.shop("BSP", name="白沙坪诚信超市")
    rice = factory.product("RICE-10", name="大米", points_price=70, barcode="6901234567892")
    operation = factory.receive(shop_a, (rice, 50))
    factory.receive(shop_b, (rice, 50))
    rule = factory.rule("CLEAN", points=3, per="household", village=village_a)
    users = {
        A: factory.admin,
        C: factory.user("cadre", village="ZJB"),
        M: factory.user("manager", shop="GJY"),
        K: factory.user("clerk", shop="GJY"),
        P: factory.user("print_agent", shop="GJY"),
        R: factory.user("reporter", village="ZJB"),
        "reporter_b": factory.user("reporter", village="QTP"),
        "cadre_b": factory.user("cadre", village="QTP"),
        "manager_b": factory.user("manager", shop="BSP"),
        "clerk_b": factory.user("clerk", shop="BSP"),
    }
    node, _token = nodes.register_node(
        db.session, now=now, shop_code="GJY", username="node-gjy", token_ttl=timedelta(hours=1)
    )
    node.user.set_password(PASSWORD)
    users[N] = node.user
    county.create_category(db.session, actor=factory.admin, now=now, code="ECO", name="生态")
    sale = pos.record_sale(
        db.session,
        actor=users[K],
        now=now,
        tz=local_tz(),
        keyring=keyring_from_config(app.config),
        shop_code="GJY",
        lines=[pos.LineRequest(sku="RICE-10", barcode=None, qty=1)],
        idempotency_key="access-sale",
        household_id=home.id,
    ).sale
    printing.save_printer(
        db.session,
        actor=factory.admin,
        shop_code="GJY",
        now=now,
        kind="network",
        connection={"host": "127.0.0.1", "port": 9},
    )
    job = printing.reprint_sale(
        db.session,
        actor=users[K],
        sale_id=sale.id,
        idempotency_key="access-print",
        defaults=None,
        now=now,
    )
    declaration = _declaration(app, users[R], home.id)
    db.session.commit()
    values = {
        "household_id": home.id,
        "card_id": card.id,
        "sale_id": sale.id,
        "operation_id": getattr(operation, "id", 1),
        "job_id": job.id,
        "rule_id": rule.id,
        "sku": "RICE-10",
        "barcode": "6901234567892",
        "scanned": "6901234567892",
        "period_kind": "month",
        "fmt": "csv",
        "filename": "app.css",
        "payload": payload,
        "today": business_day(now, local_tz()).isoformat(),
        "declaration_id": declaration.id,
        "position": 1,
        "village_code": "ZJB",
    }
    return World(values=values, users=users)


def _declaration(app: Flask, reporter: Any, household_id: int) -> Any:
    """A pending declaration with a photo, declared by the group leader (so no office user
    is its submitter, who may not decide it)."""
    import io

    from PIL import Image

    from declarations import services as declarations
    from declarations.photos import prepare_photos
    from declarations.storage import photo_store_from_config

    picture = io.BytesIO()
    Image.new("RGB", (200, 150), (30, 120, 60)).save(picture, "JPEG")
    today = business_day(utcnow(), local_tz())
    return declarations.submit_declaration(
        db.session,
        actor=reporter,
        now=utcnow(),
        today=today,
        submission=declarations.Submission(
            household_id=household_id,
            rule_code="CLEAN",
            happened_on=today,
            idempotency_key="access-declaration",
            uploads=(picture.getvalue(),),
        ),
        photos=prepare_photos([picture.getvalue()], tz=local_tz()),
        store=photo_store_from_config(app.config),
    ).declaration


def _bodies(values: dict[str, Any]) -> dict[str, Any]:
    """Valid bodies where a scope check needs one: a malformed body is refused as such."""
    line = {"sku": "RICE-10", "qty": 1}
    key = {"idempotency_key": ""}  # filled with a fresh key on each call
    return {
        "POST pos_api.record_sale": {
            "household_id": values["household_id"],
            "lines": [line],
            **key,
        },
        "POST pos_api.find_customer": {"card_payload": values["payload"]},
        "POST nodes_api.post_offline_sale": {
            "seq": 1,
            "prev_hash": "0" * 64,
            "receipt_no": "GJY-20261203-L0001",
            "made_at": "2026-12-03T09:30:00+08:00",
            "household_id": values["household_id"],
            "lines": [line],
            **key,
        },
        "POST nodes_api.post_offline_sales": {
            "sales": [
                {
                    "seq": 1,
                    "prev_hash": "0" * 64,
                    "receipt_no": "GJY-20261203-L0001",
                    "made_at": "2026-12-03T09:30:00+08:00",
                    "household_id": values["household_id"],
                    "lines": [line],
                    "idempotency_key": "access-batch-1",
                }
            ]
        },
        "PUT nodes_api.node_report": {"pending_sales": 0},
        "PUT inventory_api.set_reorder_levels": {"lines": [{"sku": "RICE-10", "reorder_level": 3}]},
        "POST inventory_api.receive_stock": {"reference": "单-1", "lines": [line], **key},
        "POST inventory_api.adjust_stock": {
            "lines": [{"sku": "RICE-10", "delta": 1, "reason": "found"}],
            **key,
        },
        "POST inventory_api.count_stock": {
            "lines": [{"sku": "RICE-10", "counted": 50}],
            **key,
        },
        "POST inventory_api.transfer_stock": {"to_shop": "BSP", "lines": [line], **key},
        "POST pos_api.record_return": {"lines": [line], "reason": "破损", **key},
        "POST pos_api.void_sale": {"reason": "扫错了", **key},
        "POST pos_printing_api.reprint": {**key},
        "POST pos_printing_api.print_report": {**key},
        "POST cards_api.revoke_card": {"reason": "丢失"},
        # Pages: the form's own fields (the CSRF token is added to every page POST).
        "POST member_cards.revoke": {"reason": "丢失", "next": "/"},
        "POST member_cards.issue": {"next": "/"},
        "POST member_cards.reprint": {"next": "/"},
        "POST member_cards.issue_missing": {"next": "/"},
        "POST declarations_api.approve_declaration": {**key},
        "POST declarations_api.reject_declaration": {"reason": "照片看不清"},
        "POST declarations.reject": {"reason": "照片看不清"},
        "POST declarations.correct": {"reason": "批准有误"},
    }


QUERIES = {
    "GET pos_api.daily_report": "date={today}",
    "POST pos_printing_api.print_report": "date={today}",
}


def _path(rule: Any, values: dict[str, Any]) -> str:
    def fill(match: re.Match[str]) -> str:
        name = match.group(2)
        if name != "code":
            return str(values[name])
        # "code" names a village, a shop or a category, by where it stands.
        if rule.rule.startswith("/villages") or rule.rule.startswith("/api/v1/villages"):
            return "ZJB"
        if "rule-categories" in rule.rule or "/county/categories" in rule.rule:
            return "ECO"
        return "GJY"

    return re.sub(r"<(?:[^:<>]+:)?([^<>(]+(?:\([^)]*\))?:)?([a-z_]+)>", fill, rule.rule)


def _clients(app: Flask, world: World) -> dict[str, Any]:
    """For each role: a bearer token for the API and a signed-in browser session for pages."""
    clients: dict[str, Any] = {}
    factory = Factory(db.session)
    for name, user in world.users.items():
        client = app.test_client()
        login(client, user.username)
        clients[name] = (client, factory.headers(user), csrf_token(client, "/login"))
    anonymous = app.test_client()
    clients["anonymous"] = (anonymous, {}, csrf_token(anonymous, "/login"))
    return clients


def _call(client: Any, headers: dict, csrf: str, method: str, path: str, body: Any) -> Any:
    if path.startswith("/api/"):
        if method != "GET":
            body = dict(body or {})
            if body.get("idempotency_key") == "":
                # A fresh key each time: a replay would answer the first caller's result.
                body["idempotency_key"] = uuid.uuid4().hex
        return client.open(path, method=method, json=body, headers=headers)
    data = None if method == "GET" else {**(body or {}), "csrf_token": csrf}
    return client.open(path, method=method, data=data)


def _denied(response: Any, *, scope: bool) -> bool:
    allowed = {403, 404} if scope else {403}
    return response.status_code in allowed


def _anonymous_refused(path: str, response: Any) -> bool:
    if path.startswith("/api/"):
        return response.status_code == 401
    return response.status_code == 302 and "/login" in response.headers.get("Location", "")


def test_every_endpoint_and_page_answers_each_role_as_the_table_says(app, world):
    clients = _clients(app, world)
    bodies = _bodies(world.values)
    calls = []
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            key = f"{method} {rule.endpoint}"
            assert key in ACCESS, f"{key} ({rule.rule}) is not in the access table"
            path = _path(rule, world.values)
            if key in QUERIES:
                path += "?" + QUERIES[key].format(today=world.values["today"])
            calls.append((key, method, path, bodies.get(key)))
    problems: list[str] = []
    # Refusals first, while every object is still there; then who may, reads before writes.
    for key, method, path, body in calls:
        spec = ACCESS[key]
        response = _call(*clients["anonymous"], method, path, body)
        if spec.roles != PUBLIC and not _anonymous_refused(path, response):
            problems.append(f"{key}: anonymous got {response.status_code}")
        if spec.roles == PUBLIC:
            continue
        for role in (A, C, M, K, P, R, N):
            if role in spec.roles:
                continue
            response = _call(*clients[role], method, path, body)
            if not _denied(response, scope=False):
                problems.append(f"{key}: {role} got {response.status_code}, not 403")
        for other, role, scoped in (
            ("cadre_b", C, spec.village),
            ("manager_b", M, spec.shop),
            ("clerk_b", K, spec.shop),
            ("reporter_b", R, spec.village),
        ):
            if role in spec.roles and scoped:
                response = _call(*clients[other], method, path, body)
                if not _denied(response, scope=True):
                    problems.append(f"{key}: {other} got {response.status_code}, not 403/404")
    # Signing out goes last: it would end the sessions the other calls use.
    order = sorted(calls, key=lambda call: (call[1] != "GET", call[0] == "POST auth.logout"))
    for key, method, path, body in order:
        spec = ACCESS[key]
        roles = [A, C, M, K, P, R, N] if spec.roles == PUBLIC else sorted(spec.roles)
        for role in roles:
            response = _call(*clients[role], method, path, body)
            if response.status_code in (401, 403) or response.status_code >= 500:
                problems.append(f"{key}: {role} may, but got {response.status_code}")
            signs_in = "/login" in response.headers.get("Location", "")
            if signs_in and key not in ("POST auth.logout", "GET home", "GET auth.login"):
                problems.append(f"{key}: {role} may, but was sent to sign in")
    assert not problems, "\n".join(problems)


def test_every_page_form_needs_its_csrf_token(app, world):
    """A forged cross-site POST (no token, or another session's) changes nothing: 400."""
    clients = _clients(app, world)
    forged = clients[K][2]  # a valid token, but of the clerk's session
    checked = 0
    for rule in app.url_map.iter_rules():
        if "POST" not in rule.methods or rule.rule.startswith("/api/"):
            continue
        key = f"POST {rule.endpoint}"
        spec = ACCESS[key]
        role = A if spec.roles == PUBLIC or A in spec.roles else sorted(spec.roles)[0]
        client = clients[role][0]
        path = _path(rule, world.values)
        for token in (None, forged):
            data = {} if token is None else {"csrf_token": token}
            response = client.post(path, data=data)
            assert response.status_code == 400, f"{key} without its token: {response.status_code}"
        checked += 1
    assert checked >= 20  # every page form there is (24 when this was written)
