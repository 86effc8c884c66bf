"""Photos made for the tests (varied, seeded pictures), a village with its people, and a helper
that declares through the API as the county app does."""

from __future__ import annotations

import io
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw

from accounts.auth import Role
from core.db import db, utcnow
from core.timeutil import business_day, local_tz


def synthetic_photo(seed: int, size: tuple[int, int] = (320, 240)) -> Image.Image:
    """A picture of its own for each seed: a gradient in random colours and direction,
    4 to 14 random filled shapes and lines, and sensor-like noise."""
    rng = random.Random(seed)
    width, height = size
    first = np.array([rng.randrange(256) for _ in range(3)], dtype=float)
    second = np.array([rng.randrange(256) for _ in range(3)], dtype=float)
    angle = rng.random() * 2 * np.pi
    yy, xx = np.mgrid[0:height, 0:width]
    t = np.cos(angle) * xx / width + np.sin(angle) * yy / height
    t = (t - t.min()) / (np.ptp(t) or 1)
    pixels = first + (second - first) * t[..., None]
    picture = Image.fromarray(pixels.astype("uint8"), "RGB")
    draw = ImageDraw.Draw(picture)
    for _ in range(rng.randint(4, 14)):
        colour = tuple(rng.randrange(256) for _ in range(3))
        x0, y0 = rng.randrange(width), rng.randrange(height)
        box = [x0, y0, x0 + rng.randint(10, width // 2), y0 + rng.randint(10, height // 2)]
        kind = rng.choice(("ellipse", "rectangle", "polygon", "line"))
        if kind == "ellipse":
            draw.ellipse(box, fill=colour)
        elif kind == "rectangle":
            draw.rectangle(box, fill=colour)
        elif kind == "polygon":
            points = [
                (rng.randrange(width), rng.randrange(height)) for _ in range(rng.randint(3, 6))
            ]
            draw.polygon(points, fill=colour)
        else:
            points = [(rng.randrange(width), rng.randrange(height)) for _ in range(4)]
            draw.line(points, fill=colour, width=rng.randint(2, 12))
    noise = np.random.default_rng(seed).normal(0, 6, (height, width, 3))
    noisy = np.clip(np.asarray(picture, dtype=float) + noise, 0, 255).astype("uint8")
    return Image.fromarray(noisy, "RGB")


def jpeg_bytes(picture: Image.Image, quality: int = 88, **options: Any) -> bytes:
    out = io.BytesIO()
    picture.convert("RGB").save(out, "JPEG", quality=quality, **options)
    return out.getvalue()


def png_bytes(picture: Image.Image, **options: Any) -> bytes:
    out = io.BytesIO()
    picture.save(out, "PNG", **options)
    return out.getvalue()


def photo(seed: int = 1, size: tuple[int, int] = (320, 240)) -> bytes:
    return jpeg_bytes(synthetic_photo(seed, size))


# Who is who in the tests: (role, village, shop, username). Made when first asked for.
PEOPLE = {
    "reporter": (Role.REPORTER, "ZJB", None, "leader-zjb"),
    "cadre": (Role.CADRE, "ZJB", None, "cadre-zjb"),
    "cadre2": (Role.CADRE, "ZJB", None, "cadre2-zjb"),
    "cadre_qtp": (Role.CADRE, "QTP", None, "cadre-qtp"),
    "reporter_qtp": (Role.REPORTER, "QTP", None, "leader-qtp"),
    "manager": (Role.MANAGER, None, "GJY", "manager-gjy"),
    "clerk": (Role.CLERK, None, "GJY", "clerk-gjy"),
}


class _Lazy(dict[str, Any]):
    def __init__(self, make: Callable[[str], Any]) -> None:
        super().__init__()
        self.make = make

    def __missing__(self, key: str) -> Any:
        value = self[key] = self.make(key)
        return value


@dataclass
class Village:
    """Two villages; ZJB's people and rules, and a few outsiders to be refused."""

    home_id: int
    other_home_id: int
    qtp_home_id: int
    users: dict[str, Any]
    headers: dict[str, dict[str, str]]


@pytest.fixture
def village(factory: Any) -> Village:
    zjb = factory.village("ZJB", name="郑家榜村")
    qtp = factory.village("QTP", name="青树坪村")
    home = factory.household(zjb, head="覃德华", members=("覃德华", "向秀英", "覃小红"))
    other = factory.household(zjb, head="田建国", members=("田建国", "李春梅"))
    qtp_home = factory.household(qtp, head="向明", members=("向明",))
    factory.rule("VOLUNTEER", 2, "person", title="参加志愿服务")
    factory.rule("ROAD", 20, "household", title="配合乡村建设", village=zjb)
    factory.rule("STRAW_BURN", -5, "household", title="焚烧秸秆")

    def make_user(name: str) -> Any:
        if name == "admin":
            return factory.admin
        role, village_code, shop, username = PEOPLE[name]
        return factory.user(role, village=village_code, shop=shop, username=username)

    users = _Lazy(make_user)
    headers = _Lazy(lambda name: factory.headers(users[name]))
    db.session.commit()
    return Village(home.id, other.id, qtp_home.id, users, headers)


def today() -> Any:
    return business_day(utcnow(), local_tz())


def declare(
    client: Any,
    headers: dict[str, str],
    *,
    household_id: int,
    rule_code: str = "VOLUNTEER",
    photos: list[bytes] | None = None,
    key: str | None = None,
    days_ago: int = 0,
    **fields: Any,
) -> Any:
    """POST /api/v1/declarations as multipart, as the county app sends it."""
    data: dict[str, Any] = {
        "household_id": str(household_id),
        "rule_code": rule_code,
        "happened_on": (today() - timedelta(days=days_ago)).isoformat(),
        "idempotency_key": key or uuid.uuid4().hex,
        **{name: str(value) for name, value in fields.items() if value is not None},
    }
    data["photo"] = [
        (io.BytesIO(content), f"photo{i}.jpg", "image/jpeg")
        for i, content in enumerate(photos if photos is not None else [photo()])
    ]
    return client.post(
        "/api/v1/declarations", data=data, headers=headers, content_type="multipart/form-data"
    )
