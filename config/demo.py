"""A believable demo county: villages, households, rules, months of deeds, shops and goods."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from flask_babel import gettext
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from accounts.auth import Role, create_user
from inventory import services as inventory
from ledger import services as ledger
from ledger.models import PointRule, Village
from member_cards import services as cards
from member_cards.signing import Keyring

DEMO_PASSWORD = "demo-pass-2026"


class AlreadySeeded(Exception):
    pass


VILLAGES = [
    ("ZJB", "郑家榜村", 0),
    ("JYK", "津洋口村", 0),
    ("GJY", "高家堰村", 100),
]

SURNAMES = list("覃向田李王张刘陈杨黄周吴邓谭胡龚孙冉秦邹")
GIVEN = (
    "德华 秀英 桂兰 建国 国强 春梅 玉兰 长江 家富 明清 光荣 翠花 正文 友谊 红霞 "
    "志强 凤英 树林 新民 金莲 远山 小红 雪梅 永福 爱华 云峰 海燕 立新 淑芬 大勇"
).split()

# Rules as the county's integrity-points scheme words them; (code, title, points, per).
COUNTY_RULES = [
    ("VOLUNTEER", "参加志愿服务", 2, "person"),
    ("ROAD_LAND", "支持乡村建设让地修路", 20, "household"),
    ("CLEAN_YARD", "庭院整洁评比获评", 3, "household"),
    ("FILIAL", "孝老爱亲获评好媳妇好婆婆", 10, "household"),
    ("HELP_NEIGHBOUR", "邻里互助", 2, "person"),
    ("STRAW_BURN", "焚烧秸秆", -5, "household"),
    ("LITTER", "乱倒垃圾", -3, "household"),
    ("GAMBLING", "聚众赌博", -10, "person"),
    ("STAR_FAMILY", "年度诚信星级家庭评定", 50, "household"),
]
VILLAGE_RULES = [("GJY", "CLEAN_YARD", "庭院整洁评比获评（高家堰村）", 5, "household")]

SHOPS = [("GJY", "高家堰诚信超市"), ("ZJB", "郑家榜诚信超市")]
# The demo's sales are spread over this many last days.
SALES_DAYS = 30

# The county's star categories, the demo rules in each, and the points a star needs per
# month, quarter and year: (code, name, rule codes, (month, quarter, year)).
CATEGORIES = [
    ("ECOLOGY", "生态环保", ("CLEAN_YARD", "STRAW_BURN", "LITTER"), (3, 6, 20)),
    ("WELFARE", "公益事业", ("VOLUNTEER", "ROAD_LAND"), (2, 6, 20)),
    ("CUSTOMS", "文明乡风", ("FILIAL", "GAMBLING"), (10, 10, 20)),
    ("NEIGHBOUR", "邻里互助", ("HELP_NEIGHBOUR",), (2, 4, 12)),
]

# (sku, name, name_en, unit, points, category, barcode). The codes are what the clerk keys
# in, as shops here write them: the pinyin initials of the name, the size where a good
# comes in two (DM10 is 大米 10斤). ASCII only, so every scanner and keyboard layout types them.
GOODS = [
    ("DM10", "大米 10斤", "Rice 5 kg", "袋", 70, "粮油", "6901234567892"),
    ("DM25", "大米 25斤", "Rice 12.5 kg", "袋", 160, "粮油", None),
    ("CZY5", "菜籽油 5升", "Rapeseed oil 5 L", "桶", 120, "粮油", "6902345678903"),
    ("CZY1", "菜籽油 1升", "Rapeseed oil 1 L", "瓶", 28, "粮油", None),
    ("MF5", "面粉 5斤", "Wheat flour 2.5 kg", "袋", 25, "粮油", None),
    ("SY", "食盐 400克", "Salt 400 g", "袋", 3, "调味", "6903456789014"),
    ("JY", "酱油 500毫升", "Soy sauce 500 ml", "瓶", 8, "调味", None),
    ("XC", "香醋 500毫升", "Vinegar 500 ml", "瓶", 7, "调味", None),
    ("XYZ", "洗衣皂", "Laundry soap", "块", 4, "日化", "6904567890125"),
    ("XYF", "洗衣粉 1千克", "Washing powder 1 kg", "袋", 15, "日化", None),
    ("YG", "牙膏", "Toothpaste", "支", 10, "日化", None),
    ("MJ", "毛巾", "Towel", "条", 9, "日化", None),
    ("WSZ", "卫生纸 10卷", "Toilet paper, 10 rolls", "提", 18, "日化", None),
    ("JD30", "鸡蛋 30枚", "Eggs, 30", "盒", 30, "副食", None),
    ("GM", "挂面 1千克", "Dried noodles 1 kg", "把", 9, "副食", None),
]


def seed_demo(
    session: Session, *, now: datetime, keyring: Keyring | None = None, seed: int = 20261127
) -> str:
    if session.scalar(select(func.count()).select_from(Village)):
        raise AlreadySeeded()
    rng = random.Random(seed)
    ledger.ensure_system_accounts(session)
    admin = create_user(session, username="admin", password=DEMO_PASSWORD, role=Role.ADMIN)

    for code, name, floor in VILLAGES:
        ledger.create_village(
            session, actor=admin, now=now, code=code, name=name, redemption_floor=floor
        )
        create_user(
            session,
            username=f"cadre-{code.lower()}",
            password=DEMO_PASSWORD,
            role=Role.CADRE,
            village_code=code,
        )
        create_user(
            session,
            username=f"reporter-{code.lower()}",
            password=DEMO_PASSWORD,
            role=Role.REPORTER,
            village_code=code,
        )
    for code, title, points, per in COUNTY_RULES:
        ledger.create_rule(
            session, actor=admin, now=now, code=code, title=title, points=points, per=per
        )
    for village, code, title, points, per in VILLAGE_RULES:
        ledger.create_rule(
            session,
            actor=admin,
            now=now,
            code=code,
            title=title,
            points=points,
            per=per,
            village_code=village,
        )

    _seed_categories(session, admin, now)

    households = []
    names = iter(rng.sample([s + g for s in SURNAMES for g in GIVEN], 200))
    for i in range(30):
        village_code = VILLAGES[i % len(VILLAGES)][0]
        head = next(names)
        members = [head] + [next(names) for _ in range(rng.randint(1, 4))]
        households.append(
            ledger.create_household(
                session,
                actor=admin,
                now=now,
                village_code=village_code,
                head_name=head,
                members=members,
                address=f"{VILLAGES[i % 3][1]}{rng.randint(1, 9)}组{rng.randint(1, 60)}号",
            )
        )

    # Four months of deeds, oldest first, so the statements read like a real file.
    start = now - timedelta(days=120)
    events = []
    for household in households:
        for _ in range(rng.randint(4, 12)):
            events.append((start + timedelta(minutes=rng.randint(0, 120 * 24 * 60)), household))
    events.sort(key=lambda e: e[0])
    # Last year's star-family assessment opens most files, so there is rice to be had.
    stars = 0
    for household in households:
        for n in range(rng.choice((0, 1, 1, 2, 3))):
            stars += 1
            ledger.post_award(
                session,
                actor=admin,
                now=start,
                household_id=household.id,
                idempotency_key=f"demo-star-{household.id}-{n}",
                rule_code="STAR_FAMILY",
            )
    rule_weights = [5, 1, 3, 1, 4, 1, 1, 1, 0]

    def post_deed(n: int, at: datetime, household: Any) -> None:
        code, _title, _points, per = rng.choices(COUNTY_RULES, weights=rule_weights)[0]
        persons = rng.randint(1, ledger.people_count(household)) if per == "person" else None
        ledger.post_award(
            session,
            actor=admin,
            now=at,
            household_id=household.id,
            idempotency_key=f"demo-award-{n}",
            rule_code=code,
            persons=persons,
        )

    # Everything is posted in time order, as it happens at a real counter: the last
    # month's deeds go in among its sales (below), so the files and journals read by time
    # have balances and stock that run without jumps.
    sales_from = now - timedelta(days=SALES_DAYS)
    late_deeds = [(n, at, h) for n, (at, h) in enumerate(events) if at >= sales_from]
    for n, (at, household) in enumerate(events):
        if at < sales_from:
            post_deed(n, at, household)

    for code, name in SHOPS:
        inventory.create_shop(session, actor=admin, now=now, code=code, name=name)
        create_user(
            session,
            username=f"manager-{code.lower()}",
            password=DEMO_PASSWORD,
            role=Role.MANAGER,
            shop_code=code,
        )
        create_user(
            session,
            username=f"clerk-{code.lower()}",
            password=DEMO_PASSWORD,
            role=Role.CLERK,
            shop_code=code,
        )
    for sku, name, name_en, unit, points, category, barcode in GOODS:
        inventory.create_product(
            session,
            actor=admin,
            now=now,
            sku=sku,
            name=name,
            name_en=name_en,
            unit=unit,
            points_price=points,
            category=category,
            barcode=barcode,
        )
    for code, _name in SHOPS:
        inventory.receive_stock(
            session,
            actor=admin,
            now=start,
            shop_code=code,
            lines=[(g[0], rng.randint(10, 60)) for g in GOODS],
            reference=f"首批配送-{code}",
            idempotency_key=f"demo-receipt-{code}",
        )
        # Staples run low first; a few start below their level so the list is not empty.
        inventory.set_reorder_levels(
            session, actor=admin, shop_code=code, lines=[(g[0], 15) for g in GOODS[:6]]
        )

    sales = _seed_sales(
        session,
        rng,
        now=now,
        keyring=keyring,
        households=households,
        deeds=late_deeds,
        post_deed=post_deed,
    )

    issued = []
    for code, _name, _floor in VILLAGES:
        issued += cards.issue_missing_cards(session, actor=admin, now=now, village_code=code)
    summary = gettext(
        "Seeded %(villages)d villages, %(households)d households, %(awards)d awards and "
        "penalties, %(shops)d shops, %(goods)d goods, %(sales)d sales.",
        villages=len(VILLAGES),
        households=len(households),
        awards=len(events) + stars,
        shops=len(SHOPS),
        goods=len(GOODS),
        sales=sales,
    )
    lines = [
        summary,
        gettext(
            "Sign in as admin (or %(others)s, ...) with password %(password)s",
            others="cadre-zjb, reporter-zjb, manager-gjy, clerk-gjy",
            password=DEMO_PASSWORD,
        ),
    ]
    if keyring:
        card = cards.card_payload(issued[0], keyring)
        lines.append(gettext("A card to try on the balance page (/balance): %(card)s", card=card))
    return "\n".join(lines)


def _seed_categories(session: Session, admin: Any, now: datetime) -> None:
    """The categories of the county's star scheme, their thresholds and their rules."""
    from county import services as county

    for position, (code, name, rule_codes, thresholds) in enumerate(CATEGORIES, start=1):
        county.create_category(
            session, actor=admin, now=now, code=code, name=name, position=position
        )
        for kind, points in zip(("month", "quarter", "year"), thresholds, strict=True):
            county.set_threshold(
                session, actor=admin, now=now, category_code=code, period_kind=kind, points=points
            )
        for rule in session.scalars(select(PointRule).where(PointRule.code.in_(rule_codes))):
            rule.category_id = county.get_category(session, code).id
    session.flush()


def _seed_sales(
    session: Session,
    rng: random.Random,
    *,
    now: datetime,
    keyring: Keyring | None,
    households: list[Any],
    deeds: list[tuple[int, datetime, Any]],
    post_deed: Callable[[int, datetime, Any], None],
) -> int:
    """A month of redemptions at both shops, so the dashboard has days, shops and goods.

    The month's deeds are posted among them in time order.
    """
    from zoneinfo import ZoneInfo

    from accounts.auth import User
    from core.errors import DomainError
    from member_cards.signing import Keyring as KeyringClass
    from pos import services as pos

    keyring = keyring or KeyringClass("1", {"1": b"demo"})
    tz = ZoneInfo("Asia/Shanghai")
    cheap = [g for g in GOODS if g[4] <= 30]
    planned = []
    for n in range(60):
        at = now - timedelta(minutes=rng.randint(0, SALES_DAYS * 24 * 60))
        shop_code = SHOPS[n % len(SHOPS)][0]
        household = rng.choice(households)
        lines = [pos.LineRequest(qty=rng.randint(1, 2), sku=g[0]) for g in rng.sample(cheap, 2)]
        planned.append((at, n, shop_code, household, lines))
    timeline = [(at, "deed", (n, at, h)) for n, at, h in deeds]
    timeline += [(sale[0], "sale", sale) for sale in planned]
    timeline.sort(key=lambda item: item[0])
    made = 0
    for _at, what, args in timeline:
        if what == "deed":
            post_deed(*args)
            continue
        at, n, shop_code, household, lines = args
        clerk = session.scalar(select(User).where(User.username == f"clerk-{shop_code.lower()}"))
        try:
            # A household short of points is simply skipped, as at a real counter.
            with session.begin_nested():
                pos.record_sale(
                    session,
                    actor=clerk,
                    now=at,
                    tz=tz,
                    keyring=keyring,
                    shop_code=shop_code,
                    lines=lines,
                    idempotency_key=f"demo-sale-{n}",
                    household_id=household.id,
                )
        except DomainError:
            continue
        made += 1
    return made
