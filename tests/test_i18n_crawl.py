"""No English for a Chinese reader: every page the navigation reaches, for every role.

Signs in as each role of the demo county with a Chinese browser, follows the main menu
and the links inside those pages two levels down (GET only, a few pages of each kind),
and reads what a person sees: text, the attributes a browser shows or speaks (title,
placeholder, aria-label, alt, a button's value) and the messages a page hands its script
(data-msg-*, data-label-*, data-confirm, a JSON block of labels). Any English word there
that is neither on the short allow-list below nor the demo's own data fails the test,
named with its page. The page scripts in static/ are read too: what they show must come
from the page, so no string literal in them holds an English phrase.

The demo county is seeded as `make run` seeds it, then worked a little through the real
endpoints (a sale whose receipt fails to print, an award, a revoked card, printers of
several kinds, a command-line user), so the pages that show such things have them.
"""

from __future__ import annotations

import html
import json
import re
import socket
from collections import defaultdict
from collections.abc import Iterator
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urljoin, urlsplit

import pytest
from sqlalchemy import select

from accounts.auth import Role, User, issue_token
from audit.log import AuditEvent
from config.cli import main
from config.demo import DEMO_PASSWORD, seed_demo
from core.db import db, utcnow
from inventory.models import Product, Shop, StockLevel
from ledger.models import Account, Household, PointRule, Village
from member_cards.models import MemberCard as Card
from member_cards.signing import keyring_from_config
from printing import worker as print_worker
from printing.models import PrintJob
from tests.helpers.pages import csrf_token, sign_in

# Words a Chinese page may show as they are: file formats, standards and names printed on
# the hardware or the box, units, and the one keycap Chinese has no other name for.
ALLOWED = {
    # formats and standards, as the buttons and files name them
    "PDF",
    "CSV",
    "XLSX",
    "JSON",
    "Excel",
    "WPS",
    "QR",
    "ESC",
    "POS",
    "GBK",
    "GB18030",
    "CUPS",
    # devices, systems and their numbers
    "USB",
    "ID",
    "IP",
    "Linux",
    "Windows",
    # units
    "mm",
    "kg",
    # the keycap "Esc" (回车键 and 删除键 have Chinese names; Esc has none in use)
    "Esc",
}
# Names of files and programs, spelled as the system needs them, and file name endings.
ALLOWED_TERMS = ("config.toml",)
_EXTENSION = re.compile(r"(?<![\w.])\.(?:xlsx|xls|et|csv|pdf|png)\b", re.IGNORECASE)
# In <code> (a code shown beside its title) the demo's rule and category codes may appear;
# a <code class="command"> holds a command of our own program, to be typed as it is.
COMMAND = "integrity-pos "

_MESSAGE_ATTRS = re.compile(r"^data-(msg|label)-|^data-confirm$")
_JSON_ATTRS = {"data-printer-states"}
_SHOWN_ATTRS = {"title", "placeholder", "aria-label", "alt"}
# A word with a digit in it is a code (A4, RICE-10, COM3, TM-T88V, 0x0416), not English.
_TOKEN = re.compile(r"[A-Za-z0-9_'’-]*[A-Za-z][A-Za-z0-9_'’-]*")
_LETTERS = re.compile(r"[A-Za-z]{2,}")
# {name} and %(name)s are filled in by the script or the server, never shown as such.
_PLACEHOLDER = re.compile(r"\{\w+\}|%\(\w+\)[sd]")
# An address or a device path (/api/v1/awards, /dev/usb/lp0): a place, not a word.
_PATH = re.compile(r"(?<![\w/])/[\w./<>:-]+")
_SKIPPED_PATHS = ("/logout", "/api/", "/static/")
_SKIPPED_SUFFIXES = (".pdf", ".csv", ".xlsx", ".png", ".svg", ".zip", ".txt", ".json")
# A kind of page (its endpoint and query keys) is read this many times at most: the
# thirty households share one template.
_PER_PATTERN = 2
_DEPTH = 2


class _Visible(HTMLParser):
    """The text of a page a person reads or hears, each piece marked as prose or code."""

    _SILENT: ClassVar = {"script", "style"}
    _VOID: ClassVar = {
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "wbr",
    }

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[tuple[str, str]] = []  # (context, text): "prose", "code", "command"
        self.links: list[str] = []
        self._open: list[tuple[str, str]] = []  # (tag, what it makes of its content)

    def _context(self) -> str:
        for _tag, kind in reversed(self._open):
            if kind in ("silent", "foreign", "command", "code"):
                return kind
        return "prose"

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "a" and "href" in values and "download" not in values:
            self.links.append(values["href"])
        lang = values.get("lang", "")
        if tag in self._SILENT:
            kind = "silent"
        elif lang and not lang.lower().startswith("zh") and tag != "html":
            # Marked as another language: the language switch's "English".
            kind = "foreign"
        elif tag == "code" and "command" in values.get("class", "").split():
            kind = "command"
        elif tag in ("code", "kbd"):
            kind = "code"
        else:
            kind = ""
        outer = self._context()
        if outer in ("silent", "foreign"):
            kind = kind or outer
        elif kind not in ("silent", "foreign"):
            for name, value in values.items():
                if name in _SHOWN_ATTRS or _MESSAGE_ATTRS.match(name):
                    self.chunks.append(("prose", value))
                elif name in _JSON_ATTRS:
                    self.chunks.extend(("prose", text) for text in _json_strings(value))
            if tag == "input" and values.get("type") in {"submit", "button", "reset"}:
                self.chunks.append(("prose", values.get("value", "")))
        if tag not in self._VOID:
            self._open.append((tag, kind))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in self._VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self._open) - 1, -1, -1):
            if self._open[index][0] == tag:
                del self._open[index:]
                return

    def handle_data(self, data: str) -> None:
        context = self._context()
        if context not in ("silent", "foreign") and data.strip():
            self.chunks.append((context, data))


def _json_strings(value: str) -> list[str]:
    try:
        found = json.loads(value)
    except ValueError:
        return [value]
    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, dict):
            for item in node.values():
                walk(item)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(found)
    return out


class Data:
    """What the database holds in Latin letters, shown as data: names and codes, not words."""

    def __init__(self) -> None:
        session = db.session
        # Typed, scanned and signed in with everywhere: usernames, goods, villages, shops.
        everyday: set[str] = set(session.scalars(select(User.username)))
        everyday.update(session.scalars(select(Product.sku)))
        everyday.update(v for v in session.scalars(select(Product.barcode)) if v)
        everyday.update(session.scalars(select(Village.code)))
        everyday.update(session.scalars(select(Shop.code)))
        # Who did what, as the audit log names them (cli:root: the server's own account).
        actors = session.scalars(select(AuditEvent.actor).where(AuditEvent.actor_id.is_(None)))
        everyday.update(a.partition(":")[2] for a in actors if a.startswith("cli:"))
        # Shown beside their titles, as code: rules and categories have Chinese names.
        from county.models import RuleCategory

        codes = set(session.scalars(select(PointRule.code)))
        codes.update(session.scalars(select(RuleCategory.code)))
        # Longest first: "clerk-gjy" goes before "GJY" could split it.
        self.everyday = sorted(everyday, key=len, reverse=True)
        self.codes = sorted(everyday | codes, key=len, reverse=True)

    def english(self, context: str, text: str) -> set[str]:
        """The English words of one piece of a page."""
        if context == "command":
            return set() if text.strip().startswith(COMMAND) else {text.strip()}
        text = _PLACEHOLDER.sub(" ", html.unescape(text))
        for term in ALLOWED_TERMS:
            text = text.replace(term, " ")
        text = _EXTENSION.sub(" ", _PATH.sub(" ", text))
        for value in self.codes if context == "code" else self.everyday:
            text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(value)}(?![A-Za-z0-9])", " ", text)
        words = set()
        for token in _TOKEN.findall(text):
            if any(char.isdigit() for char in token):
                continue
            words.update(word for word in _LETTERS.findall(token) if word not in ALLOWED)
        return words


def _is_page_link(href: str) -> bool:
    parts = urlsplit(href)
    if parts.scheme or parts.netloc or not parts.path.startswith("/"):
        return False
    if "lang=" in parts.query:
        return False
    return not (
        parts.path.startswith(_SKIPPED_PATHS) or parts.path.lower().endswith(_SKIPPED_SUFFIXES)
    )


def crawl(app: Any, client: Any, data: Data) -> tuple[dict[str, set[str]], list[str]]:
    """The menu's pages and the pages they link to; the English words found, per page."""
    adapter = app.url_map.bind("localhost")
    seen_patterns: dict[tuple[str, tuple[str, ...]], int] = defaultdict(int)
    visited: list[str] = []
    found: dict[str, set[str]] = {}

    def pattern(url: str) -> tuple[str, tuple[str, ...]]:
        parts = urlsplit(url)
        try:
            endpoint, _args = adapter.match(parts.path, method="GET")
        except Exception:  # a link to nowhere is read as a kind of its own
            endpoint = parts.path
        keys = tuple(sorted(q.split("=")[0] for q in parts.query.split("&") if q))
        return str(endpoint), keys

    def visit(url: str) -> list[str]:
        visited.append(url)
        response = client.get(url, headers={"Accept-Language": "zh-CN,zh;q=0.9"})
        if response.status_code in (301, 302, 303):
            target = urlsplit(urljoin(url, response.headers["Location"]))
            location = target.path + (f"?{target.query}" if target.query else "")
            if location in visited or not _is_page_link(location):
                return []
            return visit(location)
        assert response.status_code < 500, f"{url}: {response.status_code}"
        if response.mimetype != "text/html":
            return []
        parser = _Visible()
        parser.feed(response.get_data(as_text=True))
        words: set[str] = set()
        for context, text in parser.chunks:
            words |= data.english(context, text)
        if words:
            found[url] = words
        return [link for link in parser.links if _is_page_link(link)]

    def follow(links: list[str]) -> list[str]:
        out = []
        for link in links:
            parts = urlsplit(link)
            url = parts.path + (f"?{parts.query}" if parts.query else "")
            key = pattern(url)
            if url in visited or url in out or seen_patterns[key] >= _PER_PATTERN:
                continue
            seen_patterns[key] += 1
            out.append(url)
        return out

    level = follow(visit("/"))  # the main menu, as the home page shows it
    for _depth in range(_DEPTH + 1):
        links: list[str] = []
        for url in level:
            if url not in visited:
                links += visit(url)
        level = follow(links)
    return found, visited


# Every role that signs in to pages; a role the demo has no user for (yet) is skipped.
ROLES = ("admin", "cadre", "manager", "clerk", "reporter")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _bearer(username: str) -> dict[str, str]:
    user = db.session.scalar(select(User).where(User.username == username))
    token, _row = issue_token(db.session, user, now=utcnow(), ttl=timedelta(hours=1))
    db.session.commit()
    return {"Authorization": f"Bearer {token}", "Accept-Language": "zh-CN"}


def _work_the_county(app: Any) -> None:
    """A morning's work through the real endpoints, so the audit log and printers have some."""
    admin = app.test_client()
    sign_in(admin, "admin", DEMO_PASSWORD)
    token = csrf_token(admin, "/printers/GJY")
    saved = admin.post(
        "/printers/GJY",
        data={
            "csrf_token": token,
            "kind": "network",
            "host": "127.0.0.1",
            "port": str(_closed_port()),
            "timeout": "0.3",
            "paper_mm": "58",
            "mode": "text",
            "enabled": "on",
        },
    )
    assert saved.status_code == 302, saved.get_data(as_text=True)[:800]
    saved = admin.post(
        "/printers/ZJB",
        data={
            "csrf_token": token,
            "kind": "usb",
            "vendor_id": "0x0416",
            "product_id": "0x5011",
            "paper_mm": "80",
            "mode": "image",
            "via_agent": "on",
            "enabled": "on",
        },
    )
    assert saved.status_code == 302, saved.get_data(as_text=True)[:800]

    as_admin = _bearer("admin")
    rule = db.session.scalar(
        select(PointRule).where(PointRule.village_id.is_(None), PointRule.per == "household")
    )
    household = db.session.scalar(
        select(Household).join(Account).order_by(Account.balance.desc(), Household.id).limit(1)
    )
    rule_code, household_id = rule.code, household.id
    award = admin.post(
        "/api/v1/awards",
        json={
            "household_id": household_id,
            "rule_code": rule_code,
            "reason": "村民代表大会评定",
            "idempotency_key": "crawl-award-1",
        },
        headers=as_admin,
    )
    assert award.status_code == 201, award.get_json()

    # A sale at GJY today, whose receipt the unplugged printer refuses.
    shop_id = db.session.scalar(select(Shop.id).where(Shop.code == "GJY"))
    sku = db.session.scalar(
        select(Product.sku)
        .join(StockLevel, StockLevel.product_id == Product.id)
        .where(StockLevel.shop_id == shop_id, StockLevel.on_hand > 0)
        .order_by(Product.points_price, Product.id)
        .limit(1)
    )
    sale = admin.post(
        "/api/v1/shops/GJY/sales",
        json={
            "household_id": household_id,
            "lines": [{"sku": sku, "qty": 1}],
            "idempotency_key": "crawl-sale-1",
        },
        headers=_bearer("clerk-gjy"),
    )
    assert sale.status_code == 201, sale.get_json()
    db.session.rollback()
    job_id = db.session.scalar(
        select(PrintJob.id).where(PrintJob.sale_id == sale.get_json()["sale_id"])
    )
    db.session.rollback()
    assert print_worker.send_job(job_id) == "failed"

    card_id = db.session.scalar(
        select(Card.id).where(Card.household_id != household_id).order_by(Card.id).limit(1)
    )
    revoked = admin.post(
        f"/api/v1/cards/{card_id}/revoke", json={"reason": "卡丢了"}, headers=as_admin
    )
    assert revoked.status_code == 200, revoked.get_json()

    made = app.test_cli_runner().invoke(
        main,
        [
            "create-user",
            "agent-gjy",
            "--role",
            "print_agent",
            "--shop",
            "GJY",
            "--password",
            "x" * 12,
        ],
    )
    assert made.exit_code == 0, made.output
    db.session.rollback()


@pytest.fixture
def county(app: Any) -> Iterator[Data]:
    keyring = keyring_from_config(app.config)
    seed_demo(db.session, now=utcnow() - timedelta(minutes=5), keyring=keyring)
    db.session.commit()
    _work_the_county(app)
    yield Data()


def test_no_english_on_any_page(app, county, capsys):
    roles = {str(role) for role in Role}
    pages_of: dict[str, list[str]] = defaultdict(list)  # English word -> "role /page"
    visited_per_role: dict[str, int] = {}
    for role in ROLES:
        if role not in roles:
            continue
        username = db.session.scalar(
            select(User.username).where(User.role == role).order_by(User.username).limit(1)
        )
        if username is None:
            continue
        client = app.test_client()
        sign_in(client, username, DEMO_PASSWORD)
        found, visited = crawl(app, client, county)
        visited_per_role[role] = len(visited)
        for url, words in found.items():
            for word in words:
                pages_of[word].append(f"{role} {url}")
    with capsys.disabled():
        print(f"\npages read per role: {visited_per_role}")
    assert set(visited_per_role) >= {"admin", "cadre", "manager", "clerk"}
    assert min(visited_per_role[role] for role in ROLES[:4]) >= 10, visited_per_role
    report = [
        f"{word!r} on {len(pages)} page(s): {', '.join(pages[:6])}"
        + (f", and {len(pages) - 6} more" if len(pages) > 6 else "")
        for word, pages in sorted(pages_of.items(), key=lambda item: (-len(item[1]), item[0]))
    ]
    assert not report, f"{len(report)} English words on Chinese pages:\n" + "\n".join(report)


# --- the page scripts ------------------------------------------------------------------

STATIC = Path(__file__).resolve().parent.parent / "static"
_JS_STRING = re.compile(r"""(["'])((?:\\.|(?!\1).)*)\1""")
# Lines where a string is a selector or a class name, never something people read.
_JS_NOT_SHOWN = re.compile(r"querySelector(All)?\(|closest\(|matches\(|className|classList")
_JS_WORDS = re.compile(r"[A-Za-z]+(?:'[a-z]+)?")


def _english_phrase(literal: str) -> bool:
    """A sentence or a label: three words, or a capitalised two ("Printer ready")."""
    if literal == "use strict" or re.search(r"[\[\]#>{}()=]", literal):
        return False
    words = _JS_WORDS.findall(literal)
    if len(words) >= 3 and sum(len(w) > 1 for w in words) >= 3 and " " in literal:
        return True
    return len(words) >= 2 and words[0][:1].isupper() and words[0][1:].islower() and " " in literal


@pytest.mark.parametrize("script", sorted(p.name for p in STATIC.glob("*.js")))
def test_page_scripts_take_their_words_from_the_page(script):
    source = (STATIC / script).read_text(encoding="utf-8")
    offending = []
    for number, line in enumerate(source.splitlines(), start=1):
        stripped = line.lstrip()
        if stripped.startswith(("//", "*", "/*")) or _JS_NOT_SHOWN.search(line):
            continue
        for _quote, literal in _JS_STRING.findall(line):
            if _english_phrase(literal):
                offending.append(f"{script}:{number}: {literal!r}")
    assert not offending, "English shown by page scripts:\n" + "\n".join(offending)


def test_the_crawler_finds_english_where_there_is_some():
    data = Data.__new__(Data)
    data.everyday, data.codes = ["clerk-gjy", "RICE-10", "GJY"], ["VOLUNTEER", "GJY"]
    parser = _Visible()
    parser.feed(
        '<p title="Print it">售出 RICE-10 · clerk-gjy · GJY</p><p>VOLUNTEER 参加志愿服务</p>'
        "<p><code>VOLUNTEER</code> <code>Missing data</code> <kbd>Esc</kbd> 键</p>"
        '<a lang="en" href="?lang=en">English</a><script>var x = "Not shown";</script>'
        '<pre><code class="command">integrity-pos create-user agent-gjy</code></pre>'
        '<div data-msg-x="Sale recorded: {name}"></div><p>见 /dev/usb/lp0 与 config.toml</p>'
        "<p>Excel 工作簿（.xlsx）或 CSV 文件，不是 xlsx 表</p>"
    )
    words = set()
    for context, text in parser.chunks:
        words |= data.english(context, text)
    assert words == {"Print", "it", "VOLUNTEER", "Missing", "data", "Sale", "recorded", "xlsx"}


def test_the_script_check_tells_phrases_from_selectors():
    assert _english_phrase("Printer ready")
    assert _english_phrase("No answer from the server; try again.")
    for literal in ("use strict", "num strong", ".count-sheet tr[data-sku]", "{name}: {qty}"):
        assert not _english_phrase(literal), literal
