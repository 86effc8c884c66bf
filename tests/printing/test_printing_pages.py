"""The county office sets up printers on a page; config.toml tables are the defaults."""

from __future__ import annotations

from pathlib import Path

from flask import Flask, render_template_string
from sqlalchemy import select

from config.settings import load_settings
from core.db import db
from printing.models import Printer
from tests.factories import Factory
from tests.helpers.pages import csrf_token, sign_in
from tests.pos.conftest import Counter


def printer_row() -> Printer | None:
    db.session.rollback()
    try:
        return db.session.scalar(select(Printer))
    finally:
        db.session.rollback()


def test_the_admin_sets_up_and_removes_a_shops_printer(
    app: Flask, counter: Counter, factory: Factory
) -> None:
    client = app.test_client()
    admin = factory.admin
    sign_in(client, admin.username)
    listing = client.get("/printers")
    assert listing.status_code == 200
    assert "GJY" in listing.get_data(as_text=True)

    token = csrf_token(client, "/printers/GJY")
    form = {
        "csrf_token": token,
        "kind": "network",
        "host": "192.168.1.50",
        "port": "9100",
        "paper_mm": "80",
        "mode": "image",
        "profile": "NT-80-V-UL",
        "enabled": "on",
    }
    bad = client.post("/printers/GJY", data={**form, "host": "", "port": "70000"})
    assert bad.status_code == 422
    text = bad.get_data(as_text=True)
    assert "host" in text and "port" in text
    assert printer_row() is None

    saved = client.post("/printers/GJY", data=form)
    assert saved.status_code == 302
    row = printer_row()
    assert row is not None
    assert (row.kind, row.connection, row.paper_mm, row.mode, row.profile, row.via_agent) == (
        "network",
        {"host": "192.168.1.50", "port": 9100},
        80,
        "image",
        "NT-80-V-UL",
        False,
    )
    page = client.get("/printers/GJY").get_data(as_text=True)
    assert 'value="192.168.1.50"' in page

    usb = client.post(
        "/printers/GJY",
        data={
            **form,
            "kind": "usb",
            "vendor_id": "0x0416",
            "product_id": "0x5011",
            "via_agent": "on",
        },
    )
    assert usb.status_code == 302
    row = printer_row()
    assert row is not None and row.via_agent
    assert row.connection == {"vendor_id": 0x0416, "product_id": 0x5011}
    assert 'value="0x0416"' in client.get("/printers/GJY").get_data(as_text=True)

    removed = client.post("/printers/GJY", data={"csrf_token": token, "action": "remove"})
    assert removed.status_code == 302 and printer_row() is None


def test_only_the_admin_sees_the_printer_pages(
    app: Flask, counter: Counter, factory: Factory
) -> None:
    client = app.test_client()
    assert client.get("/printers").status_code == 302  # to the login page
    sign_in(client, counter.manager.username)
    assert client.get("/printers").status_code == 403
    assert client.get("/printers/GJY").status_code == 403


def test_config_toml_printer_tables_reach_the_app(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        '[printers.GJY]\nkind = "network"\nhost = "192.168.1.50"\npaper_mm = 80\n'
        '[printers.ZJB]\nkind = "usb"\nvendor_id = 0x0416\nproduct_id = 0x5011\n'
        "via_agent = true\n",
        encoding="utf-8",
    )
    settings = load_settings(home=tmp_path, environ={})
    assert settings["PRINTERS"]["GJY"] == {
        "kind": "network",
        "host": "192.168.1.50",
        "paper_mm": 80,
    }
    assert settings["PRINTERS"]["ZJB"]["via_agent"] is True


def test_a_broken_config_toml_printer_is_named_on_the_admin_page(
    app: Flask, counter: Counter, factory: Factory
) -> None:
    app.config["PRINTERS"] = {"GJY": {"kind": "network"}}
    client = app.test_client()
    sign_in(client, factory.admin.username)
    page = client.get("/printers").get_data(as_text=True)
    assert "config.toml" in page
    state = client.get("/api/v1/shops/GJY/printer", headers=counter.clerk_headers)
    assert state.status_code == 422


def test_the_print_panel_renders_for_a_report_day(app: Flask, counter: Counter) -> None:
    with app.test_request_context("/"):
        from flask_login import login_user

        login_user(counter.manager)
        html = render_template_string(
            '{% from "printing/_panel.html" import print_panel %}'
            "{{ print_panel(shop_code='GJY', report_day='2026-11-27') }}"
        )
    assert "data-print-panel" in html
    assert "/api/v1/shops/GJY/print-jobs?report_date=2026-11-27" in html
    assert "/api/v1/shops/GJY/reports/daily/print?date=2026-11-27" in html


def test_the_printer_pages_speak_chinese(app: Flask, counter: Counter, factory: Factory) -> None:
    client = app.test_client()
    sign_in(client, factory.admin.username)
    token = csrf_token(client, "/printers/GJY")
    form = {"csrf_token": token, "kind": "serial", "devfile": "COM3", "paper_mm": "58"}
    assert client.post("/printers/GJY", data={**form, "mode": "text"}).status_code == 302

    listing = client.get("/printers").get_data(as_text=True)
    assert "串口 COM3" in listing and "serial" not in listing
    page = client.get("/printers/GJY").get_data(as_text=True)
    assert '<option value="serial" selected>串口</option>' in page
    assert '<option value="win32">Windows 打印机</option>' in page
    assert "打印机型号" in page and "python-escpos" not in page
    # The print agent's commands are shown whole, to be typed as they are.
    assert (
        '<code class="command">integrity-pos create-user agent-gjy --role print_agent --shop GJY'
        in page
    )


def test_a_refused_printer_form_names_the_fields_as_the_form_does(
    app: Flask, counter: Counter, factory: Factory
) -> None:
    client = app.test_client()
    sign_in(client, factory.admin.username)
    token = csrf_token(client, "/printers/GJY")
    form = {"csrf_token": token, "kind": "network", "paper_mm": "58", "mode": "text"}
    bad = client.post("/printers/GJY", data={**form, "host": "", "port": "70000"})
    assert bad.status_code == 422
    problem = bad.get_data(as_text=True).split('class="problem"')[1].split("</div>")[0]
    assert "主机地址" in problem and "端口" in problem
    assert "host:" not in problem and "port:" not in problem

    unknown = client.post("/printers/GJY", data={**form, "host": "10.0.0.9", "profile": "XP-58Z"})
    assert unknown.status_code == 422
    problem = unknown.get_data(as_text=True).split('class="problem"')[1].split("</div>")[0]
    assert "打印机型号" in problem and "XP-58Z" in problem and "说明书" in problem
    assert "unknown printer profile" not in problem and printer_row() is None
