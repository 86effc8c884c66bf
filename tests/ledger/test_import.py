"""CSV award import: good rows post, bad rows come back by line, nothing is half-posted."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from core.db import db
from core.errors import Conflict
from ledger import services as ledger
from ledger.models import Transfer
from tests.conftest import assert_problem, count_rows

HEADER = "household_id,rule_code,persons,reason,idempotency_key\n"


@pytest.fixture
def setup(factory):
    """Two households (3 people each), a per-person award rule and a per-household penalty."""
    village = factory.village("GJY")
    h1, h2 = factory.household(village), factory.household(village, head="向国强")
    factory.rule("VOLUNTEER", 2, "person")
    factory.rule("STRAW_BURN", -5, "household", title="焚烧秸秆")
    return {"h1": h1.id, "h2": h2.id, "headers": factory.headers(factory.admin)}


def _import(client, setup, data: bytes | str, content_type: str = "text/csv"):
    if isinstance(data, str):
        data = data.encode()
    return client.post(
        "/api/v1/awards/import", data=data, content_type=content_type, headers=setup["headers"]
    )


def _balances(client, setup) -> tuple[int, int]:
    return tuple(
        client.get(f"/api/v1/households/{setup[h]}", headers=setup["headers"]).json["balance"]
        for h in ("h1", "h2")
    )


def test_good_rows_post_and_bad_rows_come_back_by_line(client, setup):
    h1, h2 = setup["h1"], setup["h2"]
    csv = (
        HEADER
        + f"{h1},VOLUNTEER,3,扫雪除冰,k1\n"  # line 2: +6
        + f"{h2},STRAW_BURN,,,k2\n"  # line 3: -5
        + "abc,VOLUNTEER,1,,k3\n"  # line 4: not a number
        + "999999,VOLUNTEER,1,,k4\n"  # line 5: no such household
        + f"{h1},NOPE,1,,k5\n"  # line 6: no such rule
        + f"{h1},VOLUNTEER,9,,k6\n"  # line 7: more persons than the household has
        + f"{h1},VOLUNTEER,1,,\n"  # line 8: no key, so one derived from the file: +2
        + f"{h1},,1,,k8\n"  # line 9: no rule
        + f"{h1},VOLUNTEER,--5,,k9\n"  # line 10: garbled number
        + f"{h1},VOLUNTEER,²,,k10\n"  # line 11: a digit int() refuses
        + f"{h1},STRAW_BURN,2,,k11\n"  # line 12: persons on a per-household rule
        + f"{h2},VOLUNTEER,,,{'x' * 101}\n"  # line 13: key too long
        + f"{h2},VOLUNTEER,,,k13\n"  # line 14: +2 (persons defaults to 1)
    )
    r = _import(client, setup, csv)
    assert r.status_code == 200, r.json
    assert (r.json["created"], r.json["replayed"]) == (4, 0)
    assert [(e["line"], e["code"]) for e in r.json["errors"]] == [
        (4, "validation_error"),
        (5, "not_found"),
        (6, "not_found"),
        (7, "validation_error"),
        (9, "validation_error"),
        (10, "validation_error"),
        (11, "validation_error"),
        (12, "validation_error"),
        (13, "validation_error"),
    ]
    assert all(e["detail"] for e in r.json["errors"])
    assert "household_id" in r.json["errors"][0]["detail"]
    assert _balances(client, setup) == (8, -3)
    assert count_rows(Transfer) == 4


def test_second_upload_replays_instead_of_posting_twice(client, setup):
    csv = HEADER + f"{setup['h1']},VOLUNTEER,2,,k1\n{setup['h2']},VOLUNTEER,1,,k2\n"
    assert _import(client, setup, csv).json == {"created": 2, "replayed": 0, "errors": []}
    r = _import(client, setup, csv + f"{setup['h2']},VOLUNTEER,1,,k3\n")
    assert r.json == {"created": 1, "replayed": 2, "errors": []}
    assert _balances(client, setup) == (4, 4)
    assert count_rows(Transfer) == 3


def test_duplicate_key_with_other_content_in_one_file_conflicts_on_its_line(client, setup):
    h1 = setup["h1"]
    csv = (
        HEADER
        + f"{h1},VOLUNTEER,1,,same\n"
        + f"{h1},VOLUNTEER,1,,same\n"  # identical: a replay
        + f"{h1},VOLUNTEER,2,,same\n"  # other content: a conflict
    )
    r = _import(client, setup, csv)
    assert (r.json["created"], r.json["replayed"]) == (1, 1)
    assert [(e["line"], e["code"]) for e in r.json["errors"]] == [(4, "idempotency_conflict")]
    assert _balances(client, setup) == (2, 0)


def test_gb18030_file_as_chinese_excel_saves_it(client, setup):
    csv = HEADER + f"{setup['h1']},VOLUNTEER,2,打扫村道,k1\r\n"
    data = csv.replace("\n", "\r\n").encode("gb18030")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    r = _import(client, setup, data)
    assert r.json == {"created": 1, "replayed": 0, "errors": []}
    statement = client.get(
        f"/api/v1/households/{setup['h1']}/statement", headers=setup["headers"]
    ).json
    assert statement["entries"][0]["reason"] == "打扫村道"


def test_utf8_with_bom(client, setup):
    data = "\ufeff".encode() + (HEADER + f"{setup['h2']},VOLUNTEER,1,志愿者,k1\n").encode()
    assert _import(client, setup, data).json == {"created": 1, "replayed": 0, "errors": []}


def test_blank_lines_skipped_and_lines_numbered_as_rows(client, setup):
    h1 = setup["h1"]
    csv = (
        HEADER
        + "\n"  # line 2: blank
        + ",,,,\n"  # line 3: an empty spreadsheet row
        + f'{h1},VOLUNTEER,1,"两行\n的理由",k1\n'  # line 4, one row over two lines
        + f"{h1},NOPE,1,,k2\n"  # line 5
        + "\n"
    )
    r = _import(client, setup, csv)
    assert r.json["created"] == 1
    assert [(e["line"], e["code"]) for e in r.json["errors"]] == [(5, "not_found")]


def test_unreadable_files_are_422(client, setup):
    for label, data in (
        ("empty", b""),
        ("bom only", "\ufeff".encode()),
        ("missing column", b"household_id,persons,reason\n1,1,x\n"),
        ("not text", b"household_id\xff\xfe\n"),
        ("nul", HEADER.encode() + b"1,\x00,1,,k\n"),
        ("utf-16", (HEADER + f"{setup['h1']},VOLUNTEER,1,,k\n").encode("utf-16")),
    ):
        r = _import(client, setup, data)
        assert r.status_code == 422, label
        assert_problem(r, 422, "validation_error")
    assert count_rows(Transfer) == 0


def test_wrong_content_type_is_422(client, setup):
    csv = HEADER + f"{setup['h1']},VOLUNTEER,1,,k1\n"
    for content_type in ("application/json", "multipart/form-data", "application/octet-stream"):
        r = _import(client, setup, csv, content_type)
        assert r.status_code == 422, content_type
        assert_problem(r, 422, "validation_error")
    assert count_rows(Transfer) == 0


def test_too_many_rows_is_422_and_posts_nothing(app, client, setup):
    app.config["IMPORT_MAX_ROWS"] = 2
    rows = "".join(f"{setup['h1']},VOLUNTEER,1,,k{i}\n" for i in range(3))
    assert_problem(_import(client, setup, HEADER + rows), 422, "validation_error")
    assert count_rows(Transfer) == 0


def test_header_only_imports_nothing(client, setup):
    assert _import(client, setup, HEADER).json == {"created": 0, "replayed": 0, "errors": []}


def test_row_failing_midway_in_the_service_leaves_nothing(client, session, setup):
    """A row whose posting fails after its balance update is rolled back alone."""
    seen: list[str] = []

    def fail_the_boom_insert(conn, cursor, statement, parameters, context, executemany):
        # On PostgreSQL both travel in one statement (a data-modifying CTE).
        sql = statement.upper()
        if "UPDATE ACCOUNTS" in sql:
            seen.append("update")
        if "INSERT INTO TRANSFERS" in sql and "award:boom" in str(parameters):
            seen.append("insert")
            raise Conflict("simulated failure in the middle of a posting")

    engine = db.engine
    event.listen(engine, "before_cursor_execute", fail_the_boom_insert)
    try:
        h1 = setup["h1"]
        csv = HEADER + f"{h1},VOLUNTEER,1,,a\n{h1},VOLUNTEER,3,,boom\n{h1},VOLUNTEER,2,,b\n"
        r = _import(client, setup, csv)
    finally:
        event.remove(engine, "before_cursor_execute", fail_the_boom_insert)
    # The failing row had already moved the balance when its insert failed.
    assert seen[seen.index("insert") - 1] == "update"
    assert (r.json["created"], r.json["errors"][0]["line"]) == (2, 3)
    assert r.json["errors"][0]["code"] == "conflict"
    assert _balances(client, setup) == (6, 0)
    assert count_rows(Transfer) == 2
    report = ledger.verify_ledger(session)
    assert report.ok, report.problems
