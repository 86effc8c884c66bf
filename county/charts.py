"""Small server-rendered SVG charts: grouped columns and horizontal bars, numbers on them.

Our own few dozen lines rather than a charting library: the labels stay real text, so
Chinese renders in the page's own font (no font set-up on the server, no glyph boxes),
the numbers can be selected and read by screen readers, the output is a few kilobytes
inlined in the page, and nothing new (matplotlib and its dependencies) has to be
installed on the county's Windows or Debian servers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

FONT = (
    "'Microsoft YaHei','PingFang SC','Noto Sans CJK SC','WenQuanYi Micro Hei',system-ui,sans-serif"
)
PALETTE = ("#0a6630", "#a11212", "#0b4a91", "#b8860b", "#6a3d9a")


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[int]
    colour: str


def nice_max(value: int) -> int:
    """A round top for the value axis: 1, 2, 2.5 or 5 times a power of ten, at least value."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return math.ceil(step * power)
    return value  # pragma: no cover


def _text(
    x: float,
    y: float,
    text: object,
    *,
    size: int = 12,
    anchor: str = "middle",
    fill: str = "#111",
    extra: str = "",
) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
        f'fill="{fill}"{extra}>{escape(str(text))}</text>'
    )


def column_chart(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    width: int = 760,
    height: int = 300,
    label_every: int = 1,
) -> Markup:
    """Grouped columns per label, each column with its number above it."""
    top, bottom, left, right = 46, 42, 56, 12
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = nice_max(max((v for s in series for v in s.values), default=0))
    low = min((v for s in series for v in s.values), default=0)
    floor = -nice_max(-low) if low < 0 else 0
    span = peak - floor or 1

    def y_of(value: float) -> float:
        return top + plot_h * (peak - value) / span

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}" '
        f'font-family="{FONT}">',
        f"<title>{escape(title)}</title>",
        _text(left, 18, title, size=15, anchor="start", extra=' font-weight="bold"'),
    ]
    # Legend, right-aligned on the title line.
    x = width - right
    for s in reversed(series):
        w = 22 + 13 * len(s.name)
        x -= w
        parts.append(f'<rect x="{x:.1f}" y="8" width="12" height="12" fill="{s.colour}"/>')
        parts.append(_text(x + 16, 19, s.name, size=12, anchor="start"))
    for i in range(5):
        value = floor + span * i / 4
        y = y_of(value)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{"#888" if value == 0 else "#ddd"}" stroke-width="1"/>'
        )
        parts.append(_text(left - 6, y + 4, f"{value:g}", size=11, anchor="end", fill="#444"))
    groups = max(len(labels), 1)
    group_w = plot_w / groups
    bar_w = max(min(group_w * 0.8 / max(len(series), 1), 48), 2)
    value_size = 11 if bar_w >= 18 else 9
    for g, label in enumerate(labels):
        gx = left + g * group_w + (group_w - bar_w * len(series)) / 2
        for k, s in enumerate(series):
            value = s.values[g]
            y0, y1 = y_of(max(value, 0)), y_of(min(value, 0))
            bx = gx + k * bar_w
            parts.append(
                f'<rect class="bar" x="{bx:.1f}" y="{y0:.1f}" width="{bar_w - 1:.1f}" '
                f'height="{max(y1 - y0, 0.5):.1f}" fill="{s.colour}" data-value="{value}">'
                f"<title>{escape(label)} {escape(s.name)}: {value}</title></rect>"
            )
            if value:
                parts.append(
                    _text(
                        bx + bar_w / 2,
                        y0 - 3,
                        value,
                        size=value_size,
                        fill="#222",
                        extra=' class="value"',
                    )
                )
        if g % label_every == 0:
            parts.append(_text(left + (g + 0.5) * group_w, height - bottom + 16, label, size=11))
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_chart(
    labels: Sequence[str],
    values: Sequence[int],
    *,
    title: str,
    colour: str = PALETTE[2],
    width: int = 760,
    label_width: int = 170,
) -> Markup:
    """Horizontal bars, one per label, with the number at the end of each bar."""
    row_h, top = 26, 34
    height = top + row_h * max(len(labels), 1) + 8
    plot_w = width - label_width - 70
    peak = max(max(values, default=0), 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}" '
        f'font-family="{FONT}">',
        f"<title>{escape(title)}</title>",
        _text(8, 18, title, size=15, anchor="start", extra=' font-weight="bold"'),
    ]
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = top + i * row_h
        w = plot_w * max(value, 0) / peak
        parts.append(_text(label_width - 8, y + 17, label, size=13, anchor="end"))
        parts.append(
            f'<rect class="bar" x="{label_width}" y="{y + 4}" width="{max(w, 1):.1f}" '
            f'height="{row_h - 8}" fill="{colour}" data-value="{value}">'
            f"<title>{escape(label)}: {value}</title></rect>"
        )
        parts.append(
            _text(
                label_width + w + 6, y + 17, value, size=12, anchor="start", extra=' class="value"'
            )
        )
    if not labels:
        parts.append(_text(label_width, top + 17, "—", size=13, anchor="start", fill="#666"))
    parts.append("</svg>")
    return Markup("".join(parts))
