"""Photos on arrival: decoded to prove they are pictures, read for EXIF, re-encoded without it.

These need no database: declarations.photos is pure. The duplicate threshold's evidence
is here too: how far copies and different pictures lie from each other.
"""

from __future__ import annotations

import io
import itertools
import random
import struct
import zlib
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from PIL import ExifTags, Image

from core.errors import ValidationFailed
from declarations.photos import (
    MAX_BYTES,
    MAX_PIXELS,
    PhotoTooLarge,
    perceptual_hash,
    prepare_photo,
    prepare_photos,
)
from declarations.services.duplicates import THRESHOLD, bands
from tests.declarations.conftest import jpeg_bytes, png_bytes, synthetic_photo

TZ = ZoneInfo("Asia/Shanghai")


def _exif(taken: str | None = None, offset: str | None = None, gps: bool = False) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "TestCam"
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    if taken:
        sub[ExifTags.Base.DateTimeOriginal] = taken
    if offset:
        sub[ExifTags.Base.OffsetTimeOriginal] = offset
    if gps:
        where = exif.get_ifd(ExifTags.IFD.GPSInfo)
        where[ExifTags.GPS.GPSLatitudeRef] = "N"
        where[ExifTags.GPS.GPSLatitude] = (30.0, 27.0, 36.0)
        where[ExifTags.GPS.GPSLongitudeRef] = "E"
        where[ExifTags.GPS.GPSLongitude] = (111.0, 11.0, 24.0)
    return exif


def test_a_jpeg_is_re_encoded_without_exif_after_its_time_and_place_are_read():
    upload = jpeg_bytes(
        synthetic_photo(1, (400, 300)), exif=_exif("2026:11:20 09:30:00", "+08:00", gps=True)
    )
    assert b"TestCam" in upload
    prepared = prepare_photo(upload, tz=TZ)
    assert prepared.taken_at == datetime(2026, 11, 20, 1, 30, tzinfo=UTC)
    assert (prepared.latitude, prepared.longitude) == (30.46, 111.19)
    stored = Image.open(io.BytesIO(prepared.jpeg))
    assert stored.format == "JPEG" and stored.size == (400, 300)
    assert not stored.getexif() and b"TestCam" not in prepared.jpeg and b"Exif" not in prepared.jpeg
    thumb = Image.open(io.BytesIO(prepared.thumbnail))
    assert max(thumb.size) <= 400 and not thumb.getexif()
    assert prepared.sha256 != prepared.upload_sha256 and len(prepared.sha256) == 64


def test_a_time_without_an_offset_is_the_county_s_and_missing_exif_is_no_problem():
    taken = prepare_photo(jpeg_bytes(synthetic_photo(2), exif=_exif("2026:11:20 09:30:00")), tz=TZ)
    assert taken.taken_at == datetime(2026, 11, 20, 1, 30, tzinfo=UTC)
    assert taken.latitude is None
    plain = prepare_photo(jpeg_bytes(synthetic_photo(2)), tz=TZ)
    assert plain.taken_at is None and plain.latitude is None


def test_the_camera_s_orientation_is_applied_before_it_is_dropped():
    exif = _exif()
    exif[ExifTags.Base.Orientation] = 6  # the phone was held upright
    prepared = prepare_photo(jpeg_bytes(synthetic_photo(3, (400, 300)), exif=exif), tz=TZ)
    assert (prepared.width, prepared.height) == (300, 400)


@pytest.mark.parametrize(
    "content",
    [
        b"hello, this is not a picture",
        b"%PDF-1.7\n" + b"0" * 2000,
        b"GIF89a" + b"\x00" * 2000,
        b"\xff\xd8\xff\xe0" + b"\x00" * 50,  # a JPEG's first bytes and nothing after
    ],
    ids=["text", "pdf", "gif", "jpeg-magic-only"],
)
def test_what_does_not_decode_as_jpeg_or_png_is_refused(content):
    with pytest.raises(ValidationFailed) as refused:
        prepare_photo(content, tz=TZ)
    assert refused.value.status == 422 and "photo" in refused.value.extra["errors"]


def test_a_gif_or_bmp_picture_is_refused_whatever_its_name():
    picture = synthetic_photo(4)
    for kind in ("GIF", "BMP", "TIFF"):
        out = io.BytesIO()
        picture.save(out, kind)
        with pytest.raises(ValidationFailed):
            prepare_photo(out.getvalue(), tz=TZ)


@pytest.mark.parametrize("make", [jpeg_bytes, png_bytes], ids=["jpeg", "png"])
def test_a_truncated_photo_is_refused(make):
    whole = make(synthetic_photo(5, (640, 480)))
    with pytest.raises(ValidationFailed) as refused:
        prepare_photo(whole[: len(whole) * 2 // 3], tz=TZ)
    assert "photo" in refused.value.extra["errors"]


def test_a_file_over_10_mb_is_refused_before_decoding():
    with pytest.raises(PhotoTooLarge) as refused:
        prepare_photo(b"\xff\xd8" + b"\x00" * MAX_BYTES, tz=TZ)
    assert refused.value.status == 413


def test_a_png_with_alpha_is_laid_on_white():
    picture = Image.new("RGBA", (200, 200), (0, 0, 0, 0))  # fully transparent black
    picture.paste((200, 30, 30, 255), (50, 50, 150, 150))
    prepared = prepare_photo(png_bytes(picture), tz=TZ)
    stored = Image.open(io.BytesIO(prepared.jpeg)).convert("RGB")
    assert stored.mode == "RGB"
    corner = stored.getpixel((5, 5))
    assert min(corner) > 240, corner  # white, not black
    centre = stored.getpixel((100, 100))
    assert centre[0] > 170 and centre[1] < 70


@pytest.mark.parametrize("mode", ["P", "LA", "L", "I;16", "CMYK"])
def test_other_picture_modes_become_plain_rgb(mode):
    base = synthetic_photo(6)
    if mode == "P":
        picture = base.convert("P", palette=Image.Palette.ADAPTIVE)
        picture.info["transparency"] = 0
        content = png_bytes(picture, transparency=0)
    elif mode == "CMYK":
        content = jpeg_bytes(base.convert("CMYK").convert("RGB"))
        out = io.BytesIO()
        base.convert("CMYK").save(out, "JPEG")
        content = out.getvalue()
    elif mode == "I;16":
        content = png_bytes(base.convert("L").convert("I;16"))
    else:
        content = png_bytes(base.convert(mode))
    prepared = prepare_photo(content, tz=TZ)
    assert Image.open(io.BytesIO(prepared.jpeg)).mode == "RGB"


def _png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG file that claims a huge picture: what a decompression bomb looks like."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 1000))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("width", "height"),
    [(40_000, 40_000), (9_000, 8_000)],
    ids=["beyond-pillow-s-own-limit", "beyond-ours"],
)
def test_a_decompression_bomb_is_refused_without_decoding(width, height):
    content = _png_header_only(width, height)
    assert len(content) < 2000 and width * height > MAX_PIXELS
    with pytest.raises(ValidationFailed) as refused:
        prepare_photo(content, tz=TZ)
    assert "pixels" in str(refused.value.extra["errors"]["photo"][0])


def test_a_tiny_picture_is_refused():
    with pytest.raises(ValidationFailed):
        prepare_photo(png_bytes(Image.new("RGB", (20, 20), "white")), tz=TZ)


def test_a_big_photo_is_kept_at_a_reviewable_size():
    picture = synthetic_photo(7).resize((2600, 1950))
    prepared = prepare_photo(jpeg_bytes(picture, quality=80), tz=TZ)
    # Decoded at half scale by the JPEG decoder itself: 1300 on the long side.
    assert (prepared.width, prepared.height) == (1300, 975)
    png = prepare_photo(png_bytes(picture.resize((2700, 300))), tz=TZ)
    assert png.width == 1350


def test_the_photos_of_a_declaration_name_which_one_was_refused():
    good = jpeg_bytes(synthetic_photo(8))
    with pytest.raises(ValidationFailed) as refused:
        prepare_photos([good, b"not a picture"], tz=TZ)
    assert "2" in str(refused.value.detail)
    with pytest.raises(ValidationFailed):
        prepare_photos([], tz=TZ)
    with pytest.raises(ValidationFailed):
        prepare_photos([good] * 4, tz=TZ)


# --- the evidence behind the duplicate threshold ----------------------------------------------


def _hash_of(content: bytes) -> int:
    return prepare_photo(content, tz=TZ).phash


def test_copies_stay_within_the_threshold_and_different_pictures_far_outside():
    """Resized (down to a fifth, up by a third) and re-encoded (quality 20 to 90) copies
    stay within THRESHOLD bits; twenty different pictures stay twice as far apart."""
    originals = [synthetic_photo(seed, (480, 360)) for seed in range(100, 120)]
    hashes = [_hash_of(jpeg_bytes(p, quality=90)) for p in originals]
    worst_copy = 0
    for picture, original in zip(originals[:8], hashes[:8], strict=True):
        for scale, quality in ((0.5, 70), (0.2, 60), (1.33, 85), (0.75, 20), (1.0, 40)):
            size = (round(picture.width * scale), round(picture.height * scale))
            copy = jpeg_bytes(picture.resize(size, Image.Resampling.BILINEAR), quality=quality)
            worst_copy = max(worst_copy, (_hash_of(copy) ^ original).bit_count())
    nearest_other = min((a ^ b).bit_count() for a, b in itertools.combinations(hashes, 2))
    assert worst_copy <= THRESHOLD - 2, worst_copy
    assert nearest_other >= 2 * THRESHOLD, nearest_other


def test_any_hash_within_the_threshold_shares_a_band():
    rng = random.Random(7)
    for _ in range(2000):
        value = rng.getrandbits(64)
        flipped = value
        for bit in rng.sample(range(64), rng.randint(0, THRESHOLD)):
            flipped ^= 1 << bit
        assert any(a == b for a, b in zip(bands(value), bands(flipped), strict=True))


def test_the_perceptual_hash_is_imagehash_s_phash():
    import imagehash

    picture = synthetic_photo(9)
    assert perceptual_hash(picture) == int(str(imagehash.phash(picture)), 16)
