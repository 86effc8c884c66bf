"""The counter's services called directly, as pages and the CLI call them."""

from __future__ import annotations

from datetime import date

import pytest

from core.errors import Forbidden
from core.timeutil import local_tz
from pos import services as pos
from tests.factories import sell
from tests.pos.conftest import Counter, balance


def test_find_sales_by_household_and_day(session, counter: Counter):
    sale = sell(
        session,
        actor=counter.clerk,
        shop_code="GJY",
        household=counter.household,
        lines=[("SOAP", 2), ("SOAP", 1)],
    )
    assert [(line.sku, line.qty) for line in sale.lines] == [("SOAP", 3)]
    assert balance(counter.household) == 285
    by_household = pos.find_sales(
        session, actor=counter.clerk, shop_code="GJY", household_id=counter.household.id
    )
    by_day = pos.find_sales(session, actor=counter.clerk, shop_code="GJY", day=sale.business_day)
    assert [s.id for s in by_household] == [s.id for s in by_day] == [sale.id]


def test_clerks_see_no_daily_report(session, counter: Counter):
    with pytest.raises(Forbidden):
        pos.daily_report(
            session, actor=counter.clerk, shop_code="GJY", day=date(2026, 11, 27), tz=local_tz()
        )
