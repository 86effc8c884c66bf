"""Ids and numbers typed full-width in spreadsheet cells and page fields are read as numbers."""

from __future__ import annotations

import io
from typing import Any

import pytest

from accounts.auth import Role
from ledger import services as ledger
from ledger.models import Transfer
from tests.conftest import count_rows
from tests.helpers.pages import hidden_fields, login
from tests.helpers.text import full_width
from tests.ledger.test_views import balance_of, submit, text

HEADER = "household_id,rule_code,persons,reason,idempotency_key\n"


@pytest.fixture
def setup(factory: Any) -> dict[str, Any]:
    """A household of three people in ZJB, a per-person award and a per-household penalty."""
    village = factory.village("ZJB", name="郑家榜村")
    home = factory.household(village, balance=10)
    factory.rule("VOLUNTEER", 2, "person", title="参加志愿服务")
    factory.rule("STRAW_BURN", -5, "household", title="焚烧秸秆")
    factory.user(Role.CADRE, village="ZJB", username="cadre-zjb")
    return {"home": home.id, "headers": factory.headers(factory.admin)}


def _import(client: Any, setup: dict[str, Any], csv: str, encoding: str = "utf-8") -> Any:
    return client.post(
        "/api/v1/awards/import",
        data=csv.encode(encoding),
        content_type="text/csv",
        headers=setup["headers"],
    )


def test_full_width_cells_post_as_their_numbers(client, setup):
    home = setup["home"]
    csv = (
        HEADER
        + f"{full_width(str(home))},VOLUNTEER,２,打扫村道,k1\n"  # "不是整数：１３" before
        + f"\u3000{home}\u3000,\u3000VOLUNTEER\u3000,\u3000３\u3000,,k2\n"
        + f"{home},{full_width('STRAW_BURN')},,,k3\n"
        + f"{home},VOLUNTEER,＋１,,k4\n"
    )
    response = _import(client, setup, csv)
    assert response.status_code == 200, response.json
    assert response.json == {"created": 4, "replayed": 0, "errors": []}
    assert balance_of(home) == 10 + 4 + 6 - 5 + 2
    # As Chinese Excel and WPS save it, too.
    again = _import(client, setup, csv.replace("\n", "\r\n"), encoding="gb18030")
    assert again.json == {"created": 0, "replayed": 4, "errors": []}
    assert count_rows(Transfer) == 5


@pytest.mark.parametrize("cell", ["²", "①", "１ ３", "１３.０", "十三", "－－５"])
def test_what_only_looks_like_a_number_is_refused_by_line(client, setup, cell):
    csv = HEADER + f"{setup['home']},VOLUNTEER,{cell},,k1\n"
    response = _import(client, setup, csv)
    assert response.json["created"] == 0
    assert [(e["line"], e["code"]) for e in response.json["errors"]] == [(2, "validation_error")]
    assert "persons" in response.json["errors"][0]["detail"]
    assert balance_of(setup["home"]) == 10


def test_the_key_is_kept_as_written(client, setup):
    """Two keys that read alike are two rows: an old file must replay, never post anew."""
    home = setup["home"]
    csv = HEADER + f"{home},VOLUNTEER,1,,k1\n" + f"{home},VOLUNTEER,1,,{full_width('k1')}\n"
    assert _import(client, setup, csv).json == {"created": 2, "replayed": 0, "errors": []}


def test_the_import_page_reads_full_width_cells(client, setup):
    assert login(client, "cadre-zjb").status_code == 302
    token = hidden_fields(text(client.get("/awards/import")))["csrf_token"]
    body = (HEADER + f"{full_width(str(setup['home']))},VOLUNTEER,３,,k1\n").encode("gb18030")
    response = client.post(
        "/awards/import",
        data={"csrf_token": token, "file": (io.BytesIO(body), "awards.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200
    assert 'id="created">1<' in text(response)
    assert balance_of(setup["home"]) == 16


def test_a_household_is_found_by_its_full_width_id(client, setup, session, factory):
    home = setup["home"]
    rows, _total = ledger.search_households(session, actor=factory.admin, q=full_width(str(home)))
    assert [r.id for r in rows] == [home]
    assert ledger.search_households(session, actor=factory.admin, q="²")[1] == 0
    assert login(client, "cadre-zjb").status_code == 302
    page = text(client.get("/households", query_string={"q": f"\u3000{full_width(str(home))}"}))
    assert "覃德华" in page


def test_the_award_form_reads_full_width_numbers(client, setup):
    assert login(client, "cadre-zjb").status_code == 302
    url = f"/households/{setup['home']}"
    response = submit(client, url, {"rule_code": "VOLUNTEER", "persons": "\u3000３\u3000"})
    assert response.status_code == 302, text(response)
    assert balance_of(setup["home"]) == 16
    response = submit(client, url, {"rule_code": "", "points": "－１２", "reason": "乱倒垃圾"})
    assert response.status_code == 302, text(response)
    assert balance_of(setup["home"]) == 4
    refused = submit(client, url, {"rule_code": "VOLUNTEER", "persons": "²"})
    assert refused.status_code == 422
    assert balance_of(setup["home"]) == 4
