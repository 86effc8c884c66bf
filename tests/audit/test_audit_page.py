"""The audit page in words: each operation described in Chinese, its request field by field."""

from __future__ import annotations

import json
import re

import marshmallow

from audit.actions import ACTIONS, FIELDS, describe_detail
from config.cli import main
from tests.helpers.pages import csrf_token, login, sign_in

WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def _write_rules(app):
    return [rule for rule in app.url_map.iter_rules() if rule.methods & WRITES]


def _fields(schema: marshmallow.Schema, found: set[str]) -> set[str]:
    for name, field in schema.fields.items():
        found.add(field.data_key or name)
        inner = getattr(field, "inner", None)
        nested = getattr(field, "nested", None) or getattr(inner, "nested", None)
        if nested is not None:
            _fields(nested() if isinstance(nested, type) else nested, found)
    return found


def test_every_operation_that_changes_something_is_described(app):
    missing = sorted(rule.endpoint for rule in _write_rules(app) if rule.endpoint not in ACTIONS)
    assert not missing, f"add these endpoints to audit.actions.ACTIONS: {missing}"


def test_every_field_an_api_call_sends_has_a_label(app):
    sent: set[str] = set()
    for rule in _write_rules(app):
        doc = getattr(app.view_functions[rule.endpoint], "_apidoc", {})
        for argument in doc.get("arguments", {}).get("parameters", []):
            schema = argument["schema"]
            _fields(schema() if isinstance(schema, type) else schema, sent)
    assert sent, "no API request schemas found"
    missing = sorted(sent - set(FIELDS))
    assert not missing, f"add these fields to audit.actions.FIELDS: {missing}"


def test_the_page_says_what_was_done_and_with_what(client, factory):
    village = factory.village("ZJB")
    household = factory.household(village)
    rule = factory.rule("ZYFW", title="参加志愿服务", points=2, per="household")
    award = client.post(
        "/api/v1/awards",
        json={
            "household_id": household.id,
            "rule_code": rule.code,
            "reason": "扫雪",
            "idempotency_key": "audit-words-1",
        },
        headers=factory.headers(factory.admin),
    )
    assert award.status_code == 201, award.get_json()
    assert login(client, factory.admin.username, "wrong password").status_code == 401
    sign_in(client, factory.admin.username)

    page = client.get("/audit").get_data(as_text=True)
    row = page[page.index("给农户加分或扣分") :]
    row = row[: row.index("</tr>")]
    assert "/api/v1/awards" in row  # the address, as a small secondary line
    assert f"规则编号：<code>{rule.code}</code>" in row
    assert f"农户编号：{household.id}" in row and "事由：扫雪" in row
    assert "POST" not in page and '{"' not in page and "&#34;" not in page
    # A sign-in attempt: nobody was signed in, the password is named but never shown.
    assert "未登录" in page and "登录" in page
    assert "密码：（已隐藏）" in page
    assert "csrf" not in page.lower().replace('name="csrf_token"', "")


def test_people_search_in_their_own_words(client, factory):
    village = factory.village("ZJB")
    household = factory.household(village)
    client.post(
        "/api/v1/awards",
        json={"household_id": household.id, "points": 3, "reason": "修路", "idempotency_key": "s1"},
        headers=factory.headers(factory.admin),
    )
    sign_in(client, factory.admin.username)
    found = client.get("/audit?action=加分").get_data(as_text=True)
    assert "给农户加分或扣分" in found and "事由：修路" in found
    assert "登录</td>" not in found
    by_path = client.get("/audit?action=/api/v1/awards").get_data(as_text=True)
    assert "给农户加分或扣分" in by_path


def test_the_export_names_the_operation_and_keeps_the_request(client, factory):
    village = factory.village("ZJB")
    household = factory.household(village)
    client.post(
        "/api/v1/awards",
        json={"household_id": household.id, "points": 3, "reason": "修路", "idempotency_key": "e1"},
        headers=factory.headers(factory.admin),
    )
    sign_in(client, factory.admin.username)
    body = client.get("/audit.csv?action=awards").get_data(as_text=True)
    line = next(row for row in body.splitlines() if "/api/v1/awards" in row)
    assert "给农户加分或扣分" in line and "县文明办" in line and "修路" in line


def test_command_line_changes_say_where_they_came_from(app, client, factory, runner):
    factory.shop("GJY")
    made = runner.invoke(
        main,
        [
            "create-user",
            "agent-gjy",
            "--role",
            "print_agent",
            "--shop",
            "GJY",
            "--password",
            "p" * 12,
        ],
    )
    assert made.exit_code == 0, made.output
    sign_in(client, factory.admin.username)
    page = client.get("/audit?action=新建用户").get_data(as_text=True)
    row = page[page.index("新建用户（在服务器上）") - 600 :]
    assert "服务器命令行" in row and "服务器本机" in row
    assert "角色：打印代理" in row and "<code>agent-gjy</code>" in row


def test_details_read_field_by_field(app):
    printer = json.dumps(
        {
            "csrf_token": "***",
            "kind": "network",
            "host": "192.168.1.50",
            "enabled": "on",
            "mode": "image",
            "unheard_of": "x",
        }
    )
    shown = {d.label: (d.value, d.code, d.known) for d in describe_detail(printer)}
    assert shown == {
        "连接方式": ("网络", False, True),
        "主机地址": ("192.168.1.50", True, True),
        "打印小票": ("是", False, True),
        "中文打印方式": ("图片", False, True),
        "unheard_of": ("x", False, False),
    }
    lines = json.dumps({"lines": [{"sku": "DM10", "qty": 2}, {"sku": "CZY5", "qty": 1}]})
    [detail] = describe_detail(lines)
    assert detail.value == "数量：2，货号：DM10、数量：1，货号：CZY5"
    [raw] = describe_detail("not json at all")
    assert raw.code and raw.value == "not json at all"
    upload = describe_detail(json.dumps({"content_type": "text/csv", "bytes": 120}))
    assert [(d.label, d.value) for d in upload] == [("大小（字节）", "120"), ("内容", "CSV")]
    assert describe_detail(None) == [] and describe_detail("") == []


def test_the_page_keeps_refusing_bad_dates(client, factory):
    sign_in(client, factory.admin.username)
    refused = client.get("/audit?since=2026-13-01")
    assert refused.status_code == 422
    assert re.search(r"<html", refused.get_data(as_text=True))
    assert csrf_token(client, "/audit")
