"""The print agent against a live server and a fake printer: every job printed exactly once."""

from __future__ import annotations

import base64
import collections
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, update

from accounts.auth import Role
from core.db import db, utcnow
from core.timeutil import local_tz
from pos import services
from printing.agent import Agent, Backoff, Journal
from printing.models import PrintAgentSeen, PrintJob
from tests.conftest import assert_problem
from tests.factories import Factory
from tests.pos.conftest import Counter, sale_body
from tests.printing.fake_printer import OFFLINE, PAPER_OK, PAPER_OUT, FakePrinter
from tests.printing.fixtures import set_printer


class Crash(BaseException):
    """The agent's process dies here (BaseException: nothing in the agent may catch it)."""


class Server:
    """The app behind waitress on a fixed loopback port, to stop and start again."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: Any = None

    def start(self) -> None:
        from waitress.server import create_server

        server = create_server(self.app, host="127.0.0.1", port=self.port, threads=8)
        stop = threading.Event()

        def serve() -> None:
            while not stop.is_set():
                server.asyncore.loop(timeout=0.05, map=server._map, count=1)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        self._server = (server, stop, thread)

    def stop(self) -> None:
        server, stop, thread = self._server
        stop.set()
        thread.join(timeout=5)
        # Cut every open connection, as a dying server process does.
        for channel in list(server._map.values()):
            channel.close()
        server.close()
        server.task_dispatcher.shutdown(timeout=5)
        self._server = None


@pytest.fixture
def agent_token(app: Flask, counter: Counter, factory: Factory, fake: FakePrinter) -> str:
    """Shop GJY prints through its agent; the agent's token; fast long polls."""
    app.config.update(
        PRINT_LONG_POLL_MAX_SECONDS=1,
        PRINT_DB_POLL_SECONDS=0.05,
        PRINT_LEASE_SECONDS=30,
    )
    set_printer(factory, connection=fake.connection, via_agent=True)
    agent = factory.user(Role.PRINT_AGENT, shop="GJY", username="agent-gjy")
    return factory.token(agent)


@pytest.fixture
def server(app: Flask, agent_token: str) -> Iterator[Server]:
    db.session.rollback()
    running = Server(app)
    running.start()
    yield running
    if running._server is not None:
        running.stop()


class AgentThread:
    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.agent.run(self.stop)
        except BaseException as exc:  # a simulated crash ends the thread like a dead process
            self.error = exc

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()


def start_agent(
    server: Server,
    token: str,
    fake: FakePrinter,
    state: Path,
    hook: Callable[[str, int], None] | None = None,
) -> AgentThread:
    agent = Agent(
        server=server.url,
        token=token,
        printer=fake.spec,
        state_dir=state,
        wait=1,
        printer_timeout=0.5,
        backoff=Backoff(first=0.05, cap=0.3),
        hook=hook,
        http_slack=3,
        status_every=0.1,
    )
    return AgentThread(agent)


def sell(client: Any, counter: Counter, key: str) -> int:
    response = client.post(
        "/api/v1/shops/GJY/sales",
        json=sale_body(counter, {"sku": "SOAP", "qty": 1}, key=key),
        headers=counter.clerk_headers,
    )
    assert response.status_code == 201, response.get_json()
    db.session.rollback()
    return int(response.get_json()["sale_id"])


def receipt(sale_id: int) -> bytes:
    try:
        return services.sale_receipt_escpos(
            db.session,
            actor=None,
            sale_id=sale_id,
            tz=local_tz(),
            copy=False,
            paper_mm=58,
            mode="text",
        )
    finally:
        db.session.rollback()


def statuses() -> dict[int, str]:
    db.session.rollback()
    try:
        return dict(db.session.execute(select(PrintJob.sale_id, PrintJob.status)).all())
    finally:
        db.session.rollback()


def wait_until(check: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_each_job_prints_exactly_once_across_server_and_agent_restarts(
    client: Any,
    counter: Counter,
    fake: FakePrinter,
    server: Server,
    agent_token: str,
    tmp_path: Path,
) -> None:
    state = tmp_path / "agent"
    sales = [sell(client, counter, "a-1"), sell(client, counter, "a-2")]
    first = start_agent(server, agent_token, fake, state)
    wait_until(lambda: len(fake.jobs()) == 2)

    # The server goes away mid-queue and comes back: the agent backs off and reconnects.
    server.stop()
    sales += [sell(client, counter, "a-3"), sell(client, counter, "a-4")]
    time.sleep(0.5)
    assert len(fake.jobs()) == 2
    server.start()
    wait_until(lambda: len(fake.jobs()) == 4)
    wait_until(lambda: set(statuses().values()) == {"printed"})
    first.finish()
    assert first.error is None

    # The agent dies after printing a job, before its ack: the next one acks, never reprints.
    crash_printed = sell(client, counter, "a-5")

    def die_after_print(event: str, _job_id: int) -> None:
        if event == "printed":
            raise Crash()

    second = start_agent(server, agent_token, fake, state, hook=die_after_print)
    wait_until(lambda: not second.thread.is_alive())
    assert isinstance(second.error, Crash)
    assert len(fake.jobs()) == 5
    assert statuses()[crash_printed] == "sending"

    # ... and one dies holding a lease it never printed: the restart gets that job back.
    crash_leased = sell(client, counter, "a-6")

    def die_after_lease(event: str, _job_id: int) -> None:
        if event == "leased":
            raise Crash()

    third = start_agent(server, agent_token, fake, state, hook=die_after_lease)
    wait_until(lambda: not third.thread.is_alive())
    assert isinstance(third.error, Crash)
    wait_until(lambda: statuses()[crash_printed] == "printed")
    assert statuses()[crash_leased] == "sending"

    sales += [crash_printed, crash_leased]
    fourth = start_agent(server, agent_token, fake, state)
    wait_until(lambda: len(fake.jobs()) == 6)
    wait_until(lambda: set(statuses().values()) == {"printed"})
    time.sleep(0.3)
    fourth.finish()

    printed = collections.Counter(fake.jobs())
    assert printed == collections.Counter(receipt(sale_id) for sale_id in sales)
    assert set(printed.values()) == {1}


def test_a_printer_fault_at_the_shop_fails_the_job_and_a_retry_prints_it(
    client: Any,
    counter: Counter,
    fake: FakePrinter,
    server: Server,
    agent_token: str,
    tmp_path: Path,
) -> None:
    fake.set("refuse")
    sale_id = sell(client, counter, "f-1")
    agent = start_agent(server, agent_token, fake, tmp_path / "agent")
    try:
        wait_until(lambda: statuses().get(sale_id) == "failed")
        # The agent tells the server what it found: the counter sees why, not just "connected".
        wait_until(lambda: printer_status(client, counter)["state"] == "unreachable")
        body = client.get("/api/v1/shops/GJY/printer", headers=counter.clerk_headers).get_json()
        db.session.rollback()
        assert body["status"]["agent_seen_at"] is not None
        job_id = body["last_failed_job"]["id"]
        assert "reach" in body["last_failed_job"]["last_error"]

        fake.set("ok")
        retried = client.post(f"/api/v1/print-jobs/{job_id}/retry", headers=counter.clerk_headers)
        db.session.rollback()
        assert retried.status_code == 200
        wait_until(lambda: statuses().get(sale_id) == "printed")
        assert fake.jobs() == [receipt(sale_id)]
    finally:
        agent.finish()


def printer_status(client: Any, counter: Counter) -> dict[str, Any]:
    try:
        response = client.get("/api/v1/shops/GJY/printer", headers=counter.clerk_headers)
        assert response.status_code == 200, response.get_json()
        return dict(response.get_json()["status"])
    finally:
        db.session.rollback()


def test_the_counter_sees_paper_and_power_of_a_printer_only_the_agent_reaches(
    client: Any,
    counter: Counter,
    fake: FakePrinter,
    server: Server,
    agent_token: str,
    tmp_path: Path,
) -> None:
    fake.paper_status = PAPER_OUT
    agent = start_agent(server, agent_token, fake, tmp_path / "agent")
    try:
        wait_until(lambda: printer_status(client, counter)["state"] == "paper_out")
        assert printer_status(client, counter)["paper"] == "out"

        # Paper loaded: the very next poll says so (a change is written at once).
        fake.paper_status = PAPER_OK
        wait_until(lambda: printer_status(client, counter)["state"] == "agent_connected")
        found = printer_status(client, counter)
        assert (found["online"], found["paper"]) == (True, "ok")

        fake.printer_status = OFFLINE
        wait_until(lambda: printer_status(client, counter)["state"] == "offline")
    finally:
        agent.finish()
    # The agent gone quiet for longer than the counter trusts it: its last word is stale.
    db.session.execute(update(PrintAgentSeen).values(seen_at=utcnow() - timedelta(minutes=10)))
    db.session.commit()
    assert printer_status(client, counter)["state"] == "agent_offline"


def test_the_agent_api_leases_acks_and_refuses_strangers(
    client: Any, counter: Counter, factory: Factory, agent_token: str
) -> None:
    agent = {"Authorization": f"Bearer {agent_token}"}
    who = client.get("/api/v1/print-agent", headers=agent).get_json()
    assert who["shop_code"] == "GJY" and who["printer"]["via_agent"] is True
    assert client.get("/api/v1/shops/GJY/print-jobs/next", headers=agent).status_code == 204
    assert_problem(
        client.get("/api/v1/shops/GJY/print-jobs/next?printer=on-fire", headers=agent), 422
    )

    sale_id = sell(client, counter, "l-1")
    leased = client.get("/api/v1/shops/GJY/print-jobs/next?wait=1", headers=agent)
    assert leased.status_code == 200, leased.get_json()
    job = leased.get_json()
    assert base64.b64decode(job["data"]) == receipt(sale_id)
    # Clerks, other shops' agents and a made-up lease get nowhere.
    assert_problem(
        client.post(
            f"/api/v1/print-jobs/{job['id']}/ack",
            json={"lease": "x"},
            headers=counter.clerk_headers,
        ),
        403,
    )
    factory.shop("XYZ", name="另一家超市")
    other = factory.headers(factory.user(Role.PRINT_AGENT, shop="XYZ"))
    assert_problem(client.get("/api/v1/shops/GJY/print-jobs/next", headers=other), 403)
    assert_problem(
        client.post(f"/api/v1/print-jobs/{job['id']}/ack", json={"lease": "x"}, headers=other), 404
    )
    assert_problem(
        client.post(f"/api/v1/print-jobs/{job['id']}/ack", json={"lease": "x"}, headers=agent),
        409,
        "conflict",
    )
    # A sale by the agent's token is refused: it prints, nothing else.
    assert_problem(
        client.post(
            "/api/v1/shops/GJY/sales",
            json=sale_body(counter, {"sku": "SOAP", "qty": 1}, key="nope"),
            headers=agent,
        ),
        403,
    )

    ack = client.post(
        f"/api/v1/print-jobs/{job['id']}/ack", json={"lease": job["lease"]}, headers=agent
    )
    assert ack.status_code == 200 and ack.get_json()["status"] == "printed"
    again = client.post(
        f"/api/v1/print-jobs/{job['id']}/ack", json={"lease": job["lease"]}, headers=agent
    )
    assert again.status_code == 200 and again.get_json()["status"] == "printed"
    assert client.get("/api/v1/shops/GJY/print-jobs/next", headers=agent).status_code == 204


def test_an_expired_lease_returns_the_job_to_the_queue(
    client: Any, counter: Counter, factory: Factory, agent_token: str, app: Flask
) -> None:
    agent = {"Authorization": f"Bearer {agent_token}"}
    sale_id = sell(client, counter, "e-1")
    first = client.get("/api/v1/shops/GJY/print-jobs/next", headers=agent).get_json()
    db.session.rollback()
    job = db.session.get(PrintJob, first["id"])
    job.leased_until = utcnow() - timedelta(seconds=1)
    job.lease_holder_id = None  # another (dead) holder
    db.session.commit()
    second = client.get("/api/v1/shops/GJY/print-jobs/next", headers=agent).get_json()
    assert second["id"] == first["id"] and second["lease"] != first["lease"]
    assert statuses()[sale_id] == "sending"
    # The stale lease's failure report is ignored; the live one's ack counts.
    stale = client.post(
        f"/api/v1/print-jobs/{first['id']}/fail",
        json={"lease": first["lease"], "error": "jam"},
        headers=agent,
    )
    assert stale.status_code == 200 and stale.get_json()["status"] == "sending"
    ack = client.post(
        f"/api/v1/print-jobs/{first['id']}/ack", json={"lease": second["lease"]}, headers=agent
    )
    assert ack.get_json()["status"] == "printed"


def test_the_journal_survives_a_torn_line_and_compacts(tmp_path: Path, monkeypatch: Any) -> None:
    import printing.agent as module

    journal = Journal(tmp_path)
    journal.record_printed(1, "l1")
    journal.record_acked(1)
    journal.record_printed(2, "l2")
    journal.close()
    with (tmp_path / "printed-jobs.log").open("a") as fh:
        fh.write("printed 3")  # the crash came mid-write
    again = Journal(tmp_path)
    assert again.was_printed(1) and again.was_printed(2) and not again.was_printed(3)
    assert again.unacked() == [(2, "l2")]

    monkeypatch.setattr(module, "JOURNAL_KEEP", 3)
    for job_id in range(10, 20):
        again.record_printed(job_id, f"l{job_id}")
        again.record_acked(job_id)
    again.close()
    compacted = Journal(tmp_path)
    assert compacted.was_printed(19) and not compacted.was_printed(1)
    assert compacted.unacked() == []
    compacted.close()


def test_print_agent_command_checks_its_printer_spec(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from config.cli import main

    result = CliRunner().invoke(
        main,
        ["print-agent", "--server", "http://x", "--token", "t", "--printer", "bogus:1"],
    )
    assert result.exit_code == 2 and "--printer" in result.output


@pytest.mark.parametrize(
    ("spec", "kind", "connection"),
    [
        ("network:192.168.1.50", "network", {"host": "192.168.1.50", "port": 9100}),
        ("network:192.168.1.50:9101", "network", {"host": "192.168.1.50", "port": 9101}),
        ("file:/dev/usb/lp0", "file", {"devfile": "/dev/usb/lp0"}),
        ("usb:0x0416:0x5011", "usb", {"vendor_id": 0x0416, "product_id": 0x5011}),
        (
            "usb:0x0416:0x5011:0x81:0x03",
            "usb",
            {"vendor_id": 0x0416, "product_id": 0x5011, "in_ep": 0x81, "out_ep": 0x03},
        ),
        ("serial:COM3", "serial", {"devfile": "COM3"}),
        ("serial:/dev/ttyS0:19200", "serial", {"devfile": "/dev/ttyS0", "baudrate": 19200}),
        ("win32:POS-58 Printer", "win32", {"printer_name": "POS-58 Printer"}),
        ("cups:Receipt", "cups", {"printer_name": "Receipt"}),
    ],
)
def test_printer_specs(spec: str, kind: str, connection: dict[str, Any]) -> None:
    from printing.devices import parse_spec

    assert parse_spec(spec) == (kind, connection)


def test_a_print_agent_user_and_token_come_from_the_cli(runner: Any, counter: Counter) -> None:
    from config.cli import main

    made = runner.invoke(
        main,
        [
            "create-user",
            "agent-x",
            "--role",
            "print_agent",
            "--shop",
            "GJY",
            "--password",
            "agent-pass-1",
        ],
    )
    assert made.exit_code == 0, made.output
    token = runner.invoke(main, ["create-token", "agent-x", "--hours", "8760"])
    assert token.exit_code == 0 and token.output.strip().startswith("ipos_")
    unscoped = runner.invoke(
        main, ["create-user", "agent-y", "--role", "print_agent", "--password", "agent-pass-1"]
    )
    assert unscoped.exit_code == 1
