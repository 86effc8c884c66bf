"""Finding an earlier photo that is the same picture: perceptual hashes within a distance.

Two photos are the same picture when their 64-bit pHashes differ in at most THRESHOLD
bits. Measured on varied generated photos: copies resized down to a fifth, up by a third
or re-encoded at JPEG quality 15 to 90 stay within 4 bits of the original, while the
nearest two of 200 different pictures were 12 bits apart (tests/declarations checks both:
test_photos.py the margins, test_services.py no false duplicate among 200). THRESHOLD = 6
leaves room for a messaging app's harsher re-compression and stays at half the nearest
distance seen between different pictures; two unrelated hashes (63 free bits: pHash's
first bit is almost always set) fall within 6 bits by chance about once in 10^11 pairs.
A copy cropped by a few percent or made brighter moved up to 8 bits and is not caught:
pHash's known limit, left to the reviewer's eye.

Comparing against every stored hash would read the whole table per photo. Instead the
hash is cut into BANDS (7) bands stored as indexed columns: if two hashes differ in at
most 6 bits, at most 6 of the 7 bands differ, so at least one band is equal (the
pigeonhole principle). One indexed query fetches the photos sharing any band, some 1,400
among 100,000 (each 9- or 10-bit band matches about 1 in 512), and Python counts their
differing bits: 4 to 7 ms on SQLite and PostgreSQL alike (bench/declarations.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from declarations.models import BAND_WIDTHS, BANDS, DeclarationPhoto

THRESHOLD = BANDS - 1
_photos = DeclarationPhoto.__table__
_BAND_COLUMNS = [_photos.c[f"band{i}"] for i in range(BANDS)]


@dataclass(frozen=True)
class Match:
    photo_id: int
    declaration_id: int
    distance: int


def to_signed(value: int) -> int:
    """An unsigned 64-bit hash as the signed integer a BIGINT column holds."""
    return value - (1 << 64) if value >= 1 << 63 else value


def to_unsigned(value: int) -> int:
    return value + (1 << 64) if value < 0 else value


def bands(value: int) -> tuple[int, ...]:
    """The hash's bands, most significant first (unsigned input)."""
    out = []
    shift = 64
    for width in BAND_WIDTHS:
        shift -= width
        out.append((value >> shift) & ((1 << width) - 1))
    return tuple(out)


def band_columns(value: int) -> dict[str, int]:
    return {f"band{i}": band for i, band in enumerate(bands(value))}


def find_duplicate(
    session: Session, phash: int, *, exclude_declaration_id: int | None = None
) -> Match | None:
    """The nearest earlier photo within THRESHOLD bits (earliest on a tie), or None."""
    wanted = bands(phash)
    stmt = select(_photos.c.id, _photos.c.declaration_id, _photos.c.phash).where(
        or_(*(column == band for column, band in zip(_BAND_COLUMNS, wanted, strict=True)))
    )
    if exclude_declaration_id is not None:
        stmt = stmt.where(_photos.c.declaration_id != exclude_declaration_id)
    best: Match | None = None
    for photo_id, declaration_id, stored in session.execute(stmt):
        distance = (to_unsigned(stored) ^ phash).bit_count()
        if distance > THRESHOLD:
            continue
        if best is None or (distance, photo_id) < (best.distance, best.photo_id):
            best = Match(photo_id, declaration_id, distance)
    return best
