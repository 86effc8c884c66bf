"""Receipts as print jobs: a printer off, hanging or cut off never blocks nor loses a sale."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, select

from core.db import db, utcnow
from core.timeutil import local_tz
from pos import services
from pos.models import Sale
from printing import services as printing
from printing import worker as print_worker
from printing.models import PrintJob
from tests.conftest import assert_problem
from tests.factories import Factory
from tests.pos.conftest import Counter, balance, on_hand, sale_body
from tests.printing.fake_printer import (
    OFFLINE,
    PAPER_NEAR_END,
    PAPER_OUT,
    FakePrinter,
)
from tests.printing.fixtures import set_printer

TIMEOUT = 0.3


@pytest.fixture
def networked(counter: Counter, factory: Factory, fake: FakePrinter) -> FakePrinter:
    """Shop GJY's printer is the fake one, reached by the server itself."""
    set_printer(factory, connection={**fake.connection, "timeout": TIMEOUT})
    return fake


def sell(client: Any, counter: Counter, key: str = "k-1", qty: int = 1) -> dict[str, Any]:
    response = client.post(
        "/api/v1/shops/GJY/sales",
        json=sale_body(counter, {"sku": "RICE-10", "qty": qty}, key=key),
        headers=counter.clerk_headers,
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def jobs_of(sale_id: int) -> list[PrintJob]:
    db.session.rollback()
    try:
        jobs = db.session.scalars(
            select(PrintJob).where(PrintJob.sale_id == sale_id).order_by(PrintJob.id)
        ).all()
        for job in jobs:
            db.session.expunge(job)
        return list(jobs)
    finally:
        db.session.rollback()


def receipt_bytes(sale_id: int, *, copy: bool = False, paper_mm: int = 58) -> bytes:
    return services.sale_receipt_escpos(
        db.session,
        actor=None,
        sale_id=sale_id,
        tz=local_tz(),
        copy=copy,
        paper_mm=paper_mm,
        mode="text",
    )


def test_a_sale_queues_its_receipt_and_the_printer_gets_it_whole(
    client: Any, counter: Counter, networked: FakePrinter
) -> None:
    sale = sell(client, counter)
    [job] = jobs_of(sale["sale_id"])
    assert (job.kind, job.status, job.attempts) == ("receipt", "queued", 0)

    assert print_worker.send_job(job.id) == "printed"

    [printed] = networked.wait_for_jobs(1)
    assert printed == receipt_bytes(sale["sale_id"])
    assert printed.startswith(b"\x1b@")
    [job] = jobs_of(sale["sale_id"])
    assert (job.status, job.attempts, job.last_error) == ("printed", 1, None)
    assert job.printed_at is not None
    # Sending again is a no-op: a printed job is never claimed twice.
    assert print_worker.send_job(job.id) == "taken"
    time.sleep(0.1)
    assert len(networked.jobs()) == 1


def test_a_replayed_sale_queues_no_second_receipt(
    client: Any, counter: Counter, networked: FakePrinter
) -> None:
    first = sell(client, counter, key="same")
    again = sell(client, counter, key="same")
    assert again["sale_id"] == first["sale_id"]
    assert len(jobs_of(first["sale_id"])) == 1


def test_a_shop_without_a_printer_queues_nothing_and_costs_no_statement(
    client: Any, counter: Counter
) -> None:
    sale = sell(client, counter, key="warm-up")  # fills the shop's printer cache
    assert jobs_of(sale["sale_id"]) == []

    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    db.session.rollback()
    row = db.session.get(Sale, sale["sale_id"])
    event.listen(db.engine, "before_cursor_execute", count)
    try:
        printers = print_worker.state().printers
        assert printing.queue_receipt(db.session, row, defaults=None, printers=printers) is None
        db.session.flush()
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
        db.session.rollback()
    assert statements == []


@pytest.mark.parametrize("fault", ["refuse", "hang", "close"])
def test_a_printer_fault_fails_the_job_leaves_the_sale_and_a_retry_prints_it_once(
    client: Any, counter: Counter, networked: FakePrinter, fault: str
) -> None:
    networked.close_after = 5
    networked.set(fault)
    started = time.monotonic()
    sale = sell(client, counter)
    # The sale never waits on the printer: the job is only queued.
    assert time.monotonic() - started < 2
    [job] = jobs_of(sale["sale_id"])

    assert print_worker.send_job(job.id) == "failed"
    assert time.monotonic() - started < 5

    [job] = jobs_of(sale["sale_id"])
    assert job.status == "failed" and job.last_error, job.last_error
    assert balance(counter.household) == 300 - 70
    assert on_hand(counter.shop, counter.rice) == 19
    detail = client.get(f"/api/v1/sales/{sale['sale_id']}", headers=counter.clerk_headers)
    assert detail.status_code == 200 and detail.get_json()["status"] == "completed"

    # The clerk sees the failed job on the counter's printer line.
    printer = client.get("/api/v1/shops/GJY/printer", headers=counter.clerk_headers).get_json()
    assert printer["last_failed_job"]["id"] == job.id
    assert printer["last_failed_job"]["last_error"] == job.last_error

    networked.set("ok")
    retried = client.post(f"/api/v1/print-jobs/{job.id}/retry", headers=counter.clerk_headers)
    assert retried.status_code == 200 and retried.get_json()["status"] == "queued"
    # Retrying again while it waits changes nothing.
    again = client.post(f"/api/v1/print-jobs/{job.id}/retry", headers=counter.clerk_headers)
    assert again.status_code == 200 and again.get_json()["status"] == "queued"
    assert print_worker.send_job(job.id) == "printed"

    jobs = networked.wait_for_jobs(1)
    time.sleep(0.1)
    assert networked.jobs() == [receipt_bytes(sale["sale_id"])], jobs
    [job] = jobs_of(sale["sale_id"])
    assert (job.status, job.attempts) == ("printed", 2)
    refused = client.post(f"/api/v1/print-jobs/{job.id}/retry", headers=counter.clerk_headers)
    assert_problem(refused, 409, "conflict")


def test_out_of_paper_is_found_before_the_job_is_sent(
    client: Any, counter: Counter, networked: FakePrinter
) -> None:
    networked.paper_status = PAPER_OUT
    sale = sell(client, counter)
    [job] = jobs_of(sale["sale_id"])
    assert print_worker.send_job(job.id) == "failed"
    [job] = jobs_of(sale["sale_id"])
    assert "paper" in (job.last_error or "")
    time.sleep(0.1)
    assert networked.jobs() == []


@pytest.mark.parametrize(
    ("printer_status", "paper_status", "state"),
    [
        (0x12, 0x12, "online"),
        (0x12, PAPER_NEAR_END, "paper_near_end"),
        (0x12, PAPER_OUT, "paper_out"),
        (OFFLINE, 0x12, "offline"),
    ],
)
def test_the_counter_sees_the_printers_dle_eot_status(
    client: Any,
    counter: Counter,
    networked: FakePrinter,
    printer_status: int,
    paper_status: int,
    state: str,
) -> None:
    networked.printer_status, networked.paper_status = printer_status, paper_status
    body = client.get("/api/v1/shops/GJY/printer", headers=counter.clerk_headers).get_json()
    assert body["configured"] is True
    assert body["printer"]["kind"] == "network"
    assert body["status"]["state"] == state
    assert body["last_failed_job"] is None


def test_an_unreachable_printer_is_reported_quickly(
    client: Any, counter: Counter, networked: FakePrinter
) -> None:
    networked.set("refuse")
    started = time.monotonic()
    body = client.get("/api/v1/shops/GJY/printer", headers=counter.clerk_headers).get_json()
    assert body["status"]["state"] == "unreachable"
    assert time.monotonic() - started < 2


def test_a_file_printer_gets_the_job(
    client: Any, counter: Counter, factory: Factory, tmp_path: Any
) -> None:
    device = tmp_path / "lp0"
    device.write_bytes(b"")
    set_printer(factory, kind="file", connection={"devfile": str(device)}, paper_mm=80)
    sale = sell(client, counter)
    [job] = jobs_of(sale["sale_id"])
    assert print_worker.send_job(job.id) == "printed"
    assert device.read_bytes() == receipt_bytes(sale["sale_id"], paper_mm=80)


def test_an_unplugged_file_printer_fails_the_job(
    client: Any, counter: Counter, factory: Factory, tmp_path: Any
) -> None:
    set_printer(factory, kind="file", connection={"devfile": str(tmp_path / "gone" / "lp0")})
    sale = sell(client, counter)
    [job] = jobs_of(sale["sale_id"])
    assert print_worker.send_job(job.id) == "failed"
    [job] = jobs_of(sale["sale_id"])
    assert "cannot open" in (job.last_error or "")


def test_a_reprint_is_a_copy_and_its_key_answers_the_first_job_again(
    client: Any, counter: Counter, networked: FakePrinter
) -> None:
    sale = sell(client, counter)
    url = f"/api/v1/sales/{sale['sale_id']}/print"
    first = client.post(url, json={"idempotency_key": "r-1"}, headers=counter.clerk_headers)
    assert first.status_code == 201, first.get_json()
    assert first.get_json()["kind"] == "copy"
    again = client.post(url, json={"idempotency_key": "r-1"}, headers=counter.clerk_headers)
    assert again.status_code == 201 and again.get_json()["id"] == first.get_json()["id"]
    listed = client.get(
        f"/api/v1/sales/{sale['sale_id']}/print-jobs", headers=counter.clerk_headers
    ).get_json()
    assert [job["kind"] for job in listed["jobs"]] == ["copy", "receipt"]

    assert print_worker.send_job(first.get_json()["id"]) == "printed"
    [printed] = networked.wait_for_jobs(1)
    assert printed == receipt_bytes(sale["sale_id"], copy=True)
    assert printed != receipt_bytes(sale["sale_id"])

    missing = client.post(
        "/api/v1/sales/999999/print", json={"idempotency_key": "r-2"}, headers=counter.clerk_headers
    )
    assert_problem(missing, 404, "not_found")
    bad = client.post(url, json={}, headers=counter.clerk_headers)
    assert_problem(bad, 422, "validation_error")


def test_a_reprint_without_a_printer_is_refused(client: Any, counter: Counter) -> None:
    sale = sell(client, counter)
    response = client.post(
        f"/api/v1/sales/{sale['sale_id']}/print",
        json={"idempotency_key": "r-1"},
        headers=counter.clerk_headers,
    )
    assert_problem(response, 409, "conflict")


def test_the_daily_report_prints_on_the_shop_printer(
    client: Any, counter: Counter, networked: FakePrinter
) -> None:
    sell(client, counter)
    day = utcnow().astimezone(local_tz()).date().isoformat()
    url = f"/api/v1/shops/GJY/reports/daily/print?date={day}"
    refused = client.post(url, json={"idempotency_key": "p-1"}, headers=counter.clerk_headers)
    assert_problem(refused, 403, "forbidden")
    response = client.post(url, json={"idempotency_key": "p-1"}, headers=counter.manager_headers)
    assert response.status_code == 201, response.get_json()
    job = response.get_json()
    assert (job["kind"], job["report_day"]) == ("report", day)
    listed = client.get(
        f"/api/v1/shops/GJY/print-jobs?report_date={day}", headers=counter.manager_headers
    ).get_json()
    assert [j["id"] for j in listed["jobs"]] == [job["id"]]
    assert print_worker.send_job(job["id"]) == "printed"
    [printed] = networked.wait_for_jobs(1)
    assert b"\x1dV" in printed  # ends in a cut


def test_another_shops_staff_see_no_jobs(
    client: Any, counter: Counter, factory: Factory, networked: FakePrinter
) -> None:
    from accounts.auth import Role

    sale = sell(client, counter)
    [job] = jobs_of(sale["sale_id"])
    factory.shop("XYZ", name="另一家超市")
    other = factory.headers(factory.user(Role.CLERK, shop="XYZ"))
    assert_problem(
        client.get(f"/api/v1/sales/{sale['sale_id']}/print-jobs", headers=other), 404, "not_found"
    )
    assert_problem(client.post(f"/api/v1/print-jobs/{job.id}/retry", headers=other), 404)
    assert_problem(client.get("/api/v1/shops/GJY/printer", headers=other), 403, "forbidden")
    # Clerks are no print agents.
    assert_problem(
        client.get("/api/v1/shops/GJY/print-jobs/next", headers=counter.clerk_headers), 403
    )
    assert_problem(client.get("/api/v1/shops/GJY/printer"), 401, "unauthenticated")


def test_a_send_cut_off_by_a_crash_is_failed_not_resent(
    client: Any, counter: Counter, networked: FakePrinter
) -> None:
    sale = sell(client, counter)
    [job] = jobs_of(sale["sale_id"])
    lease = printing.claim_job(
        db.session, job.id, now=utcnow() - timedelta(hours=1), lease_seconds=5
    )
    db.session.commit()
    assert lease
    assert printing.fail_interrupted(db.session, now=utcnow()) == 1
    db.session.commit()
    [job] = jobs_of(sale["sale_id"])
    assert job.status == "failed" and "interrupted" in (job.last_error or "")


def test_the_admin_sets_up_printers_over_the_api(
    client: Any, counter: Counter, factory: Factory
) -> None:
    admin = factory.headers(factory.admin)
    body = {
        "kind": "usb",
        "connection": {"vendor_id": "0x0416", "product_id": "0x5011"},
        "paper_mm": 80,
        "mode": "image",
        "profile": "NT-80-V-UL",
    }
    response = client.put("/api/v1/shops/GJY/printer", json=body, headers=admin)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["connection"] == {"vendor_id": 0x0416, "product_id": 0x5011}
    refused = client.put("/api/v1/shops/GJY/printer", json=body, headers=counter.manager_headers)
    assert_problem(refused, 403, "forbidden")
    bad = client.put(
        "/api/v1/shops/GJY/printer", json={"kind": "network", "connection": {}}, headers=admin
    )
    assert_problem(bad, 422, "validation_error")
    assert "host" in bad.get_json()["errors"]
    narrow = client.put(
        "/api/v1/shops/GJY/printer", json={**body, "profile": "POS-5890"}, headers=admin
    )
    assert "profile" in assert_problem(narrow, 422, "validation_error")["errors"]
    state = client.get("/api/v1/shops/GJY/printer", headers=counter.clerk_headers).get_json()
    assert state["printer"]["paper_mm"] == 80 and state["status"]["state"] == "unknown"


def test_config_toml_printers_are_defaults(
    client: Any, counter: Counter, fake: FakePrinter, app: Any
) -> None:
    app.config["PRINTERS"] = {
        "GJY": {"kind": "network", "host": "127.0.0.1", "port": fake.port, "timeout": TIMEOUT}
    }
    sale = sell(client, counter)
    [job] = jobs_of(sale["sale_id"])
    assert job.printer_id is None
    assert print_worker.send_job(job.id) == "printed"
    assert fake.wait_for_jobs(1) == [receipt_bytes(sale["sale_id"])]
    state = client.get("/api/v1/shops/GJY/printer", headers=counter.clerk_headers).get_json()
    assert state["printer"]["source"] == "config"


def test_the_worker_thread_prints_after_the_sale_commits(
    client: Any, counter: Counter, networked: FakePrinter, app: Any
) -> None:
    app.config.update(PRINT_WORKER=True, PRINT_POLL_SECONDS=0.2)
    try:
        sale = sell(client, counter)
        db.session.rollback()
        [printed] = networked.wait_for_jobs(1, timeout=10)
        assert printed == receipt_bytes(sale["sale_id"])
        db.session.rollback()
        deadline = time.monotonic() + 5
        while jobs_of(sale["sale_id"])[0].status != "printed" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert jobs_of(sale["sale_id"])[0].status == "printed"
    finally:
        worker = print_worker.state(app).worker
        if worker is not None:
            worker.stop()
