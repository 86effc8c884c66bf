"""Which installed font draws each character of a text, for PDFs and printed images alike.

A chain of fonts: the configured CJK font first, then the fallbacks found on the machine
(Noto Sans CJK, WenQuanYi, the HanaMin pair for CJK Extensions A and B, Windows' YaHei,
SimSun and SimSun-ExtB). Text is cut into runs by the first font of the chain that has
each character; a character no font has is drawn as its code, "[U+4DAE]", which a clerk
can read out and complete by hand, never as an empty box.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from flask_babel import lazy_gettext as _l

from core.errors import DomainError

log = logging.getLogger(__name__)

# ASCII only, so every font and every printer can show it; the standard way to name a code point.
PLACEHOLDER = "[U+{:04X}]"
# Joiners and variation selectors have no glyph of their own: they travel with the character
# before them (harfbuzz hides them), and are never "missing".
_JOINERS = frozenset("\u200c\u200d")


def placeholder(char: str) -> str:
    """What a character no installed font has is printed as: its code point, e.g. [U+4DAE]."""
    return PLACEHOLDER.format(ord(char))


def _is_attached(char: str) -> bool:
    code = ord(char)
    return char in _JOINERS or 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF


def sanitize(text: object) -> str:
    """Text a layout engine can take: no line, paragraph or control characters, no bidi tricks.

    Paragraph separators (CR, U+001C-U+001E, NEL U+0085, U+2029) make raqm's bidi step fail
    ("raqm_layout() failed"), and a line feed makes Pillow refuse to measure; all of these and
    the other control characters become a space. Format characters (bidi overrides, zero-width
    spaces) are dropped, except the joiners emoji sequences need; a lone surrogate, which no
    font or encoder can take, becomes its placeholder.
    """
    value = str(text)
    if value.isprintable():
        return value
    out = []
    for char in value:
        if char.isprintable():
            out.append(char)
            continue
        category = unicodedata.category(char)
        if category in ("Cc", "Zl", "Zp"):
            out.append(" ")
        elif category == "Cf":
            if char in _JOINERS:
                out.append(char)
        elif category == "Cs":
            out.append(placeholder(char))
        else:
            # Other spaces (U+3000), private use and unassigned: the chain decides.
            out.append(char)
    return "".join(out)


class FontMissing(DomainError):
    """Card sheets, labels and receipt images need a Chinese font; never print boxes instead."""

    # A server without the font is misconfigured, not broken: the request can succeed
    # once the operator installs one, so it answers 503 like other unavailability.
    status = 503
    code = "unavailable"
    title = _l("The Chinese font is missing")


# --- where fonts are --------------------------------------------------------------------


def _windows_dirs() -> tuple[Path, ...]:
    system = Path(os.environ.get("WINDIR", r"C:\Windows")) / "Fonts"
    local = os.environ.get("LOCALAPPDATA")
    # Fonts installed "for me only" (HanaMin, say) go to the user's own folder.
    user = (Path(local) / "Microsoft" / "Windows" / "Fonts",) if local else ()
    return (system, *user)


def font_candidates() -> tuple[Path, ...]:
    """Where the primary Chinese font is looked for when CJK_FONT_PATH is not set, in order."""
    windows = _windows_dirs()[0]
    return (
        Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
        windows / "msyh.ttc",
        windows / "simhei.ttf",
    )


def fallback_candidates() -> tuple[Path, ...]:
    """Every font the chain may use after the primary one, in the order it is asked."""
    debian = Path("/usr/share/fonts")
    windows = _windows_dirs()
    return (
        debian / "truetype/wqy/wqy-microhei.ttc",
        debian / "opentype/noto/NotoSansCJK-Regular.ttc",
        *(d / name for d in windows[:1] for name in ("msyh.ttc", "simhei.ttf", "simsun.ttc")),
        # CJK Extension A is in HanaMinA (and SimSun), Extension B in HanaMinB and SimSun-ExtB.
        debian / "truetype/hanazono/HanaMinA.ttf",
        debian / "truetype/hanazono/HanaMinB.ttf",
        *(d / name for d in windows for name in ("HanaMinA.ttf", "HanaMinB.ttf")),
        *(d / name for d in windows[:1] for name in ("simsunb.ttf", "SimsunExtG.ttf")),
        # Symbols and emoji outlines, last.
        debian / "truetype/dejavu/DejaVuSans.ttf",
        windows[0] / "seguisym.ttf",
    )


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
            "and fonts-hanazono, or set CJK_FONT_PATH to a TrueType font with Chinese "
            "characters.",
            paths=", ".join(str(p) for p in candidates),
        )
    )


# --- one font's characters --------------------------------------------------------------


class Coverage:
    """The code points a font maps, kept as sorted ranges: a CJK font is a few big blocks."""

    __slots__ = ("_ends", "_starts")

    def __init__(self, codes: Iterable[int]) -> None:
        starts: list[int] = []
        ends: list[int] = []
        for code in sorted(set(codes)):
            if ends and code == ends[-1] + 1:
                ends[-1] = code
            else:
                starts.append(code)
                ends.append(code)
        self._starts, self._ends = tuple(starts), tuple(ends)

    def __contains__(self, code: object) -> bool:
        if not isinstance(code, int):
            return False
        from bisect import bisect_right

        i = bisect_right(self._starts, code) - 1
        return i >= 0 and code <= self._ends[i]


@dataclass(frozen=True, eq=False)
class Face:
    """One font of the chain: a file, the face inside it, and the characters it has."""

    path: Path
    index: int
    family: str
    coverage: Coverage
    # TrueType outlines: ReportLab can embed it in a PDF (it cannot embed CFF, as in Noto CJK).
    truetype: bool

    def has(self, char: str) -> bool:
        return ord(char) in self.coverage

    @property
    def key(self) -> str:
        return f"{self.path}#{self.index}"


def _read_face(path: Path) -> Face:
    """Read a font file's character map (fontTools: ReportLab cannot read CFF fonts' maps).

    In a collection the Simplified Chinese face is taken when there is one (Noto Sans CJK
    puts Japanese first), else the first.
    """
    from fontTools.ttLib import TTCollection, TTFont

    with path.open("rb") as fh:
        collection = fh.read(4) == b"ttcf"
    if collection:
        fonts = TTCollection(str(path), lazy=True).fonts
        names = [font["name"].getDebugName(1) or "" for font in fonts]
        index = next((i for i, n in enumerate(names) if n.endswith(" SC")), 0)
        font = fonts[index]
    else:
        index, font = 0, TTFont(str(path), lazy=True)
    cmap = font.getBestCmap() or {}
    family = font["name"].getDebugName(1) or path.stem
    return Face(path, index, family, Coverage(cmap), "glyf" in font)


_faces: dict[tuple[str, int, int], Face] = {}
_faces_lock = threading.Lock()


def load_face(path: Path) -> Face:
    """The font at `path`, read once per process (and again when the file changes)."""
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    with _faces_lock:
        face = _faces.get(key)
        if face is None:
            face = _faces[key] = _read_face(path)
        return face


# --- the chain ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """Consecutive characters one face draws; `missing` runs are a placeholder's text."""

    face: Face
    text: str
    missing: bool = False


class FontChain:
    """The faces asked in order for each character."""

    def __init__(self, faces: Iterable[Face]) -> None:
        self.faces = tuple(faces)
        self._found: dict[str, Face | None] = {}
        self._lock = threading.Lock()
        label = set(PLACEHOLDER.format(0x1ABCDEF) + "0123456789")
        self.placeholder_face = next((f for f in self.faces if all(f.has(c) for c in label)), None)

    @property
    def primary(self) -> Face:
        return self.faces[0]

    def face_for(self, char: str) -> Face | None:
        """The first face that has the character, None when none has it."""
        try:
            return self._found[char]
        except KeyError:
            pass
        face = next((f for f in self.faces if f.has(char)), None)
        with self._lock:
            if len(self._found) > 50_000:
                self._found.clear()
            self._found[char] = face
        return face

    def missing(self, text: str) -> list[str]:
        """The characters of `text` that no face of the chain has, each once, in order."""
        seen: dict[str, None] = {}
        for char in sanitize(text):
            if not char.isspace() and not _is_attached(char) and self.face_for(char) is None:
                seen.setdefault(char)
        return list(seen)

    def shown(self, text: str) -> str:
        """`text` as it prints: what no face has replaced by its placeholder."""
        return "".join(run.text for run in self.runs(text))

    def runs(self, text: str) -> list[Run]:
        """`text` (sanitized) cut into runs, each drawn by one face."""
        runs: list[Run] = []
        face: Face | None = None
        buffer: list[str] = []

        def flush() -> None:
            if buffer and face is not None:
                runs.append(Run(face, "".join(buffer)))
            buffer.clear()

        for char in sanitize(text):
            # Joiners and spaces stay in the run they are in; anything else is drawn by the
            # first face that has it, so a name keeps the primary font's look where it can.
            if face is not None and (_is_attached(char) or (char.isspace() and face.has(char))):
                buffer.append(char)
                continue
            if _is_attached(char):
                continue  # nothing before it to attach to
            found = self.face_for(char)
            if found is not None and found is face:
                buffer.append(char)
                continue
            if found is None and char.isspace():
                continue  # a space no font has: leave it out rather than draw a box
            if found is None:
                flush()
                face = None
                if self.placeholder_face is None:
                    raise FontMissing(
                        _l("No installed font can even draw the placeholder [U+...].")
                    )
                runs.append(Run(self.placeholder_face, placeholder(char), missing=True))
                continue
            flush()
            face = found
            buffer.append(char)
        flush()
        return runs

    def require(self, texts: Iterable[str]) -> None:
        """Refuse, naming the character, text the program itself prints and no font has.

        For the fixed words of a card or a notice: a font that lacks them is the wrong font.
        """
        for text in texts:
            missing = self.missing(text)
            if missing:
                raise FontMissing(
                    _l(
                        "No installed font has the character %(char)s (in %(text)s); "
                        "set CJK_FONT_PATH to a font that has it.",
                        char=missing[0],
                        text=text,
                    ),
                    font_path=str(self.primary.path),
                )

    def for_pdf(self) -> FontChain:
        """The faces ReportLab can embed (TrueType outlines), in the same order."""
        usable = [face for face in self.faces if face.truetype]
        if not usable:
            raise FontMissing(
                _l(
                    "None of the fonts found (%(paths)s) can be embedded in a PDF: a TrueType "
                    "font is needed. Install fonts-wqy-microhei and fonts-hanazono, or set "
                    "CJK_FONT_PATH to one.",
                    paths=", ".join(str(face.path) for face in self.faces),
                )
            )
        return _chain(tuple(usable))


@lru_cache(maxsize=16)
def _chain(faces: tuple[Face, ...]) -> FontChain:
    return FontChain(faces)


def _usable(path: Path) -> Iterator[Face]:
    try:
        if path.is_file():
            yield load_face(path)
    except Exception as exc:  # any damaged fallback is skipped, never fatal
        log.warning("font %s cannot be read, skipped: %s", path, exc)


def font_chain(primary: str | os.PathLike[str] | None) -> FontChain:
    """The chain that starts with `primary` (CJK_FONT_PATH) and goes on with what is installed.

    `primary` None: the fallbacks alone (text-mode receipts, which need a font only for a
    line the printer cannot print). A `primary` that is missing or no font is refused.
    """
    faces: list[Face] = []
    if primary:
        path = find_cjk_font(primary)
        try:
            faces.append(load_face(path))
        except Exception as exc:
            raise FontMissing(
                _l("The font %(path)s cannot be used: %(error)s", path=str(path), error=exc),
                font_path=str(path),
            ) from exc
    seen = {face.key for face in faces}
    for candidate in fallback_candidates():
        for face in _usable(candidate):
            if face.key not in seen:
                seen.add(face.key)
                faces.append(face)
    if not faces:
        find_cjk_font(None)  # raises, naming where it looked
    return _chain(tuple(faces))


# --- PDFs (ReportLab) ---------------------------------------------------------------------

_registered: dict[str, str] = {}
_registered_lock = threading.Lock()


def pdf_font(face: Face) -> str:
    """The face registered with ReportLab once per process; its ReportLab font name."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFError, TTFont

    with _registered_lock:
        name = _registered.get(face.key)
        if name is None:
            name = "CJK-" + hashlib.sha256(face.key.encode()).hexdigest()[:12]
            try:
                font = TTFont(name, str(face.path), subfontIndex=face.index)
            except (TTFError, OSError) as exc:
                raise FontMissing(
                    _l(
                        "The font %(path)s cannot be used: %(error)s",
                        path=str(face.path),
                        error=exc,
                    )
                ) from exc
            pdfmetrics.registerFont(font)
            _registered[face.key] = name
        return name


def pdf_runs(chain: FontChain, text: str) -> list[tuple[str, str]]:
    """(ReportLab font name, text) runs of `text` for a chain of PDF faces."""
    return [(pdf_font(run.face), run.text) for run in chain.runs(text)]


def pdf_width(chain: FontChain, text: str, size: float) -> float:
    from reportlab.pdfbase import pdfmetrics

    return sum(pdfmetrics.stringWidth(part, name, size) for name, part in pdf_runs(chain, text))


def draw_pdf_text(
    pdf: Any, x: float, y: float, text: str, chain: FontChain, size: float, align: str = "left"
) -> float:
    """Draw `text` on a ReportLab canvas run by run from (x, baseline y); its width."""
    runs = pdf_runs(chain, text)
    from reportlab.pdfbase import pdfmetrics

    widths = [pdfmetrics.stringWidth(part, name, size) for name, part in runs]
    total = sum(widths)
    if align == "center":
        x -= total / 2
    elif align == "right":
        x -= total
    for (name, part), width in zip(runs, widths, strict=True):
        pdf.setFont(name, size)
        pdf.drawString(x, y, part)
        x += width
    return total


def pdf_markup(chain: FontChain, text: str) -> str:
    """`text` as ReportLab Paragraph markup, escaped, each run in its own <font>."""
    parts = []
    for name, part in pdf_runs(chain, text):
        escaped = part.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        parts.append(f'<font name="{name}">{escaped}</font>')
    return "".join(parts)


# --- images (Pillow) ----------------------------------------------------------------------

# raqm failing on some text is a bug of ours, not the user's: draw it without shaping instead.
_LAYOUT_ERRORS = (RuntimeError, OSError, ValueError)


@lru_cache(maxsize=128)
def image_font(face: Face, size: int, basic: bool = False) -> Any:
    """The face at `size` pixels for Pillow; `basic` without raqm's shaping."""
    from PIL import ImageFont

    engine = ImageFont.Layout.BASIC if basic else None
    try:
        return ImageFont.truetype(str(face.path), size, index=face.index, layout_engine=engine)
    except OSError as exc:
        raise FontMissing(
            _l("The font %(path)s cannot be used: %(error)s", path=str(face.path), error=exc)
        ) from exc


def _length(face: Face, size: int, text: str) -> float:
    try:
        return float(image_font(face, size).getlength(text))
    except _LAYOUT_ERRORS:
        return float(image_font(face, size, basic=True).getlength(text))


def text_width(chain: FontChain, text: str, size: int) -> float:
    """How wide Pillow draws `text` at `size` pixels, run by run."""
    return sum(_length(run.face, size, run.text) for run in chain.runs(text))


def ascent(chain: FontChain, size: int) -> int:
    """The primary face's ascent at `size`: where the baseline falls below a line's top."""
    return int(image_font(chain.primary, size).getmetrics()[0])


def draw_text(
    draw: Any,
    xy: tuple[float, float],
    text: str,
    chain: FontChain,
    size: int,
    *,
    fill: Any = 0,
    baseline: bool = False,
) -> float:
    """Draw `text` run by run on a common baseline; its width.

    `xy` is the line's top-left corner (as Pillow's default anchor), or its left end on
    the baseline when `baseline`.
    """
    x, y = xy
    if not baseline:
        y += ascent(chain, size)
    start = x
    for run in chain.runs(text):
        try:
            font = image_font(run.face, size)
            draw.text((x, y), run.text, font=font, fill=fill, anchor="ls")
        except _LAYOUT_ERRORS:
            font = image_font(run.face, size, basic=True)
            draw.text((x, y), run.text, font=font, fill=fill, anchor="ls")
        x += font.getlength(run.text)
    return x - start
