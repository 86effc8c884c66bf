"""Where the Chinese font for PDFs and printed images comes from, for every package."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterable
from pathlib import Path

from flask_babel import lazy_gettext as _l

from core.errors import DomainError


def font_candidates() -> tuple[Path, ...]:
    windows_fonts = Path(os.environ.get("WINDIR", r"C:\Windows")) / "Fonts"
    return (
        Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
        windows_fonts / "msyh.ttc",
        windows_fonts / "simhei.ttf",
    )


class FontMissing(DomainError):
    """Card sheets, labels and receipt images need a Chinese font; never print boxes instead."""

    # A server without the font is misconfigured, not broken: the request can succeed
    # once the operator installs one, so it answers 503 like other unavailability.
    status = 503
    code = "unavailable"
    title = _l("The Chinese font is missing")


def find_cjk_font(configured: str | os.PathLike[str] | None) -> Path:
    """The configured CJK_FONT_PATH, or the first Chinese font found where systems keep one."""
    if configured:
        path = Path(configured)
        if not path.is_file():
            raise FontMissing(
                _l("CJK_FONT_PATH names %(path)s, which does not exist.", path=str(path)),
                font_path=str(path),
            )
        return path
    candidates = font_candidates()
    for path in candidates:
        if path.is_file():
            return path
    raise FontMissing(
        _l(
            "No Chinese font found (looked for %(paths)s). Install fonts-wqy-microhei "
            "or set CJK_FONT_PATH to a TrueType font with Chinese characters.",
            paths=", ".join(str(p) for p in candidates),
        )
    )


_registered: dict[Path, tuple[str, frozenset[int]]] = {}
_registered_lock = threading.Lock()


def register_pdf_font(path: Path) -> tuple[str, frozenset[int]]:
    """Register the font with ReportLab once per process; its name and the code points it has.

    The code points let a PDF refuse a name the font cannot draw instead of printing boxes.
    """
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFError, TTFont

    with _registered_lock:
        if path not in _registered:
            name = "CJK-" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
            try:
                font = TTFont(name, str(path), subfontIndex=0)
            except (TTFError, OSError) as exc:
                raise FontMissing(
                    _l("The font %(path)s cannot be used: %(error)s", path=str(path), error=exc)
                ) from exc
            pdfmetrics.registerFont(font)
            _registered[path] = (name, frozenset(font.face.charToGlyph))
        return _registered[path]


def require_glyphs(texts: Iterable[str], path: Path, covered: frozenset[int]) -> None:
    """Refuse, naming the character, any text the font cannot draw: never print a box."""
    for text in texts:
        for char in text:
            if not char.isspace() and ord(char) not in covered:
                raise FontMissing(
                    _l(
                        "The font %(path)s has no character %(char)s (in %(text)s); "
                        "set CJK_FONT_PATH to a font that has it.",
                        path=str(path),
                        char=char,
                        text=text,
                    )
                )
