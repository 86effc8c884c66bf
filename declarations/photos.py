"""Declaration photos on arrival: decoded to prove they are pictures, read, and re-encoded.

A photo is accepted only if Pillow decodes all of it as a JPEG or PNG (the name and the
content type the client claims count for nothing), within a size in bytes and in pixels.
Its EXIF time and GPS position are read, the picture is turned upright, flattened on
white if it has transparency, brought to at most MAX_SIDE pixels, and encoded again as
a JPEG that carries no EXIF at all. The stored file, its thumbnail and its perceptual
hash all come from that one decoded picture.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import imagehash
from flask_babel import lazy_gettext as _l
from PIL import ExifTags, Image, ImageOps

from core.errors import DomainError, ValidationFailed

log = logging.getLogger(__name__)

MAX_BYTES = 10 * 1024 * 1024
MAX_PHOTOS = 3
# A phone's full-resolution photo is 12 to 50 megapixels. A bigger picture in a file of
# a few megabytes is a decompression bomb: decoding it would take gigabytes of memory.
MAX_PIXELS = 64_000_000
MIN_SIDE = 64
# Stored photos keep about MIN_KEPT to MAX_SIDE pixels on their long side: enough to judge
# a deed on a phone or beside the review queue, and small enough to take 20 photos a
# second on two cores. A JPEG is decoded straight at 1/2, 1/4 or 1/8 scale (libjpeg's DCT
# scaling): a phone's 4032 x 3024 photo comes out 1008 x 756 in some 40 ms, where a full
# decode and resize would take three times as long (bench/declarations.py).
MAX_SIDE = 2048
MIN_KEPT = 1000
THUMB_SIDE = 320
JPEG_QUALITY = 85
THUMB_QUALITY = 80
# Pillow opens a multi-picture JPEG (MPO, some phones write it) through the JPEG plugin.
FORMATS = ("JPEG", "PNG")


class PhotoTooLarge(DomainError):
    """A file over MAX_BYTES: refused before it is decoded."""

    status = 413
    code = "validation_error"
    title = _l("The upload is too large")


@dataclass(frozen=True)
class PreparedPhoto:
    """A photo ready to store: the re-encoded JPEG and thumbnail, and what was read."""

    jpeg: bytes
    thumbnail: bytes
    sha256: str
    upload_sha256: str
    width: int
    height: int
    phash: int  # unsigned 64 bits
    taken_at: datetime | None
    latitude: float | None
    longitude: float | None


def upload_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def prepare_photos(
    uploads: Sequence[bytes], *, tz: ZoneInfo, digests: Sequence[str] | None = None
) -> list[PreparedPhoto]:
    """Each upload as a PreparedPhoto, or the first refusal naming which photo it was.

    `digests` are the uploads' SHA-256 when the caller has them already.
    """
    if not uploads:
        raise ValidationFailed(errors={"photo": [_l("at least one photo is required")]})
    if len(uploads) > MAX_PHOTOS:
        raise ValidationFailed(errors={"photo": [_l("at most %(most)s photos", most=MAX_PHOTOS)]})
    prepared = []
    for number, data in enumerate(uploads, 1):
        try:
            digest = digests[number - 1] if digests else None
            prepared.append(prepare_photo(data, tz=tz, digest=digest))
        except PhotoTooLarge as exc:
            raise PhotoTooLarge(
                _l("photo %(number)s: %(problem)s", number=number, problem=exc.detail)
            ) from exc
        except ValidationFailed as exc:
            problem = "; ".join(str(m) for m in exc.extra.get("errors", {}).get("photo", []))
            raise ValidationFailed(
                _l("photo %(number)s: %(problem)s", number=number, problem=problem),
                errors={
                    "photo": [_l("photo %(number)s: %(problem)s", number=number, problem=problem)]
                },
            ) from exc
    return prepared


def _refuse(message: Any) -> ValidationFailed:
    return ValidationFailed(message, errors={"photo": [message]})


def prepare_photo(data: bytes, *, tz: ZoneInfo, digest: str | None = None) -> PreparedPhoto:
    if len(data) > MAX_BYTES:
        raise PhotoTooLarge(_l("a photo may be at most %(mb)s MB", mb=MAX_BYTES // (1024 * 1024)))
    if not data:
        raise _refuse(_l("the file is empty"))
    picture, taken_at, position = _decode(data, tz)
    picture = _flatten(picture)
    picture = _bounded(picture)
    jpeg = _encode(picture, JPEG_QUALITY)
    thumb = _thumbnail(picture)
    return PreparedPhoto(
        jpeg=jpeg,
        thumbnail=_encode(thumb, THUMB_QUALITY),
        sha256=hashlib.sha256(jpeg).hexdigest(),
        upload_sha256=digest or upload_digest(data),
        width=picture.width,
        height=picture.height,
        phash=perceptual_hash(thumb),
        taken_at=taken_at,
        latitude=position[0] if position else None,
        longitude=position[1] if position else None,
    )


def perceptual_hash(picture: Image.Image) -> int:
    """imagehash's pHash (DCT of a 32x32 grey picture, 8x8 low frequencies) as an int."""
    return int(str(imagehash.phash(picture)), 16)


def _decode(
    data: bytes, tz: ZoneInfo
) -> tuple[Image.Image, datetime | None, tuple[float, float] | None]:
    """The whole picture decoded (upright), or a refusal that says why in plain words."""
    try:
        picture = Image.open(io.BytesIO(data), formats=FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _refuse(_too_many_pixels()) from exc
    except Exception as exc:  # any parser failure means "not a picture"
        log.info("declaration photo refused: %s", exc)
        raise _refuse(_l("the file is not a JPEG or PNG picture")) from exc
    try:
        width, height = picture.size
        if width * height > MAX_PIXELS:
            raise _refuse(_too_many_pixels())
        if min(width, height) < MIN_SIDE:
            raise _refuse(
                _l("the picture is too small (at least %(side)s pixels a side)", side=MIN_SIDE)
            )
        exif = picture.getexif()
        taken_at, position = _exif_time(exif, tz), _exif_position(exif)
        if picture.format in ("JPEG", "MPO"):
            scale = _jpeg_scale(max(width, height))
            picture.draft("RGB", (width // scale, height // scale))
        # load() decodes all of it: a truncated or corrupt file fails here.
        picture.load()
        # In place: a copy of a 3-megapixel picture costs more than turning it.
        ImageOps.exif_transpose(picture, in_place=True)
    except ValidationFailed:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning, MemoryError) as exc:
        raise _refuse(_too_many_pixels()) from exc
    except Exception as exc:  # truncated, corrupt, or an odd variant
        log.info("declaration photo refused while decoding: %s", exc)
        raise _refuse(
            _l("the picture is damaged or incomplete; please take or send it again")
        ) from exc
    return picture, taken_at, position


def _too_many_pixels() -> Any:
    return _l(
        "the picture has too many pixels (at most %(mp)s megapixels)",
        mp=MAX_PIXELS // 1_000_000,
    )


def _jpeg_scale(long_side: int) -> int:
    """The largest of 8, 4, 2 that still leaves MIN_KEPT pixels on the long side, else 1."""
    for scale in (8, 4, 2):
        if long_side // scale >= MIN_KEPT:
            return scale
    return 1


def _flatten(picture: Image.Image) -> Image.Image:
    """RGB for a JPEG: transparency laid on white (not black), 16-bit grey scaled to 8."""
    if picture.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        picture = picture.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    if picture.mode == "P":
        picture = picture.convert("RGBA" if "transparency" in picture.info else "RGB")
    if picture.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = picture.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return picture if picture.mode == "RGB" else picture.convert("RGB")


def _bounded(picture: Image.Image) -> Image.Image:
    """At most MAX_SIDE on the long side, by a whole-number box reduction (fast, sharp)."""
    factor = math.ceil(max(picture.size) / MAX_SIDE)
    return picture.reduce(factor) if factor > 1 else picture


def _thumbnail(picture: Image.Image) -> Image.Image:
    factor = max(1, max(picture.size) // THUMB_SIDE)
    return picture.reduce(factor) if factor > 1 else picture.copy()


def _encode(picture: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    # No exif= argument: nothing of the camera's metadata (GPS included) is written.
    picture.save(out, "JPEG", quality=quality)
    return out.getvalue()


# --- EXIF ------------------------------------------------------------------------------

_DATETIME_ORIGINAL = 0x9003
_OFFSET_TIME_ORIGINAL = 0x9011
_DATETIME = 0x0132


def _exif_time(exif: Image.Exif, tz: ZoneInfo) -> datetime | None:
    """When the camera says the photo was taken, in its offset or else the county's."""
    try:
        sub = exif.get_ifd(ExifTags.IFD.Exif)
        text = sub.get(_DATETIME_ORIGINAL) or exif.get(_DATETIME)
        if not isinstance(text, str):
            return None
        taken = datetime.strptime(text.strip("\x00 ")[:19], "%Y:%m:%d %H:%M:%S")
        offset = sub.get(_OFFSET_TIME_ORIGINAL)
        if isinstance(offset, str) and len(offset.strip("\x00 ")) == 6:
            sign = -1 if offset[0] == "-" else 1
            hours, minutes = int(offset[1:3]), int(offset[4:6])
            zone = timezone(sign * timedelta(hours=hours, minutes=minutes))
            return taken.replace(tzinfo=zone)
        return taken.replace(tzinfo=tz)
    except Exception:  # a camera's odd metadata never refuses a photo
        return None


def _exif_position(exif: Image.Exif) -> tuple[float, float] | None:
    """Latitude and longitude in degrees (south and west negative), when sane."""
    try:
        gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
        if not gps:
            return None
        lat = _degrees(gps.get(ExifTags.GPS.GPSLatitude), gps.get(ExifTags.GPS.GPSLatitudeRef))
        lon = _degrees(gps.get(ExifTags.GPS.GPSLongitude), gps.get(ExifTags.GPS.GPSLongitudeRef))
        if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
            return None
        return round(lat, 6), round(lon, 6)
    except Exception:
        return None


def _degrees(value: Any, ref: Any) -> float | None:
    if not isinstance(value, tuple | list) or len(value) != 3:
        return None
    degrees, minutes, seconds = (float(part) for part in value)
    total = degrees + minutes / 60 + seconds / 3600
    if not math.isfinite(total):
        return None
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", "replace")
    return -total if isinstance(ref, str) and ref.strip("\x00 ").upper() in ("S", "W") else total
