"""Benchmark of receipt printing: a 10-line receipt to ESC/POS bytes, in text and image mode.

It measures what the receipts issue asks: the time from a resolved receipt (`ReceiptData`)
to the exact bytes for the printer, layout included, as the median of many runs, and the
bytes per receipt, on 58 mm and 80 mm paper. The goals are under 5 ms in text mode and
under 50 ms in image mode. Image mode draws with the CJK font `core.fonts.find_cjk_font`
finds (or `--font`); its glyphs are cached per process, so the steady state is measured
after one warm-up receipt, and the "cold" column clears that cache before every run (the
first receipt after a restart, or one full of characters not seen before).

No database is needed:

    .venv/bin/python bench/receipts.py             # 200 runs of each
    .venv/bin/python bench/receipts.py --runs 20   # quicker

Figures are printed as a table and written as JSON to bench/out/receipts.json.
"""

# ruff: noqa: E402

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, bench/ is first on sys.path; the repository's packages must win.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from datetime import datetime

from flask import Flask
from flask_babel import Babel, force_locale

from core.fonts import find_cjk_font
from pos.receipts import escpos
from pos.receipts.escpos import render_escpos
from pos.receipts.layout import PAPER, ReceiptData, ReceiptLine, layout_receipt

OUT = ROOT / "bench" / "out" / "receipts.json"
GOALS_MS = {"text": 5.0, "image": 50.0}
NAMES = ["大米 10斤", "菜籽油 5升", "肥皂", "洗衣粉 2公斤", "酱油 500毫升", "挂面 1公斤",
         "毛巾（纯棉）", "牙膏 120克", "食盐 400克", "特级压榨花生油五升装礼盒"]  # fmt: skip

RECEIPT = ReceiptData(
    shop_name="高家堰诚信超市",
    at=datetime(2026, 11, 27, 14, 5),
    receipt_no="GJY-20261127-0042",
    clerk="clerk-gjy",
    head_name="覃德华",
    card_last4="3-02",
    lines=tuple(ReceiptLine(name, i, 5 * i, 5 * i * i) for i, name in enumerate(NAMES, 1)),
    total=sum(5 * i * i for i in range(1, 11)),
    balance_before=2000,
    balance_after=2000 - sum(5 * i * i for i in range(1, 11)),
)


def timed(fn: Callable[[], bytes], runs: int, before: Callable[[], None] | None = None) -> float:
    """Median milliseconds of `fn` over `runs` runs."""
    times = []
    for _ in range(runs):
        if before is not None:
            before()
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--font", default=None, help="the CJK font for image mode")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    font = str(args.font or find_cjk_font(None))

    app = Flask(__name__)
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(ROOT / "translations")
    Babel(app)
    rows = []
    with app.app_context(), force_locale("zh_CN"):
        for paper_mm, (columns, _dots) in sorted(PAPER.items()):
            for mode in ("text", "image"):

                def render(
                    paper_mm: int = paper_mm, mode: str = mode, cols: int = columns
                ) -> bytes:
                    lines = layout_receipt(RECEIPT, columns=cols)
                    return render_escpos(lines, paper_mm=paper_mm, mode=mode, font_path=font)

                size = len(render())  # warm-up: imports, profile, font, glyphs
                median = timed(render, args.runs)
                cold = None
                if mode == "image":
                    cold = timed(render, max(args.runs // 10, 5), escpos._glyph.cache_clear)
                rows.append(
                    {
                        "paper_mm": paper_mm,
                        "mode": mode,
                        "median_ms": round(median, 3),
                        "cold_glyphs_median_ms": None if cold is None else round(cold, 3),
                        "bytes": size,
                        "goal_ms": GOALS_MS[mode],
                        "meets_goal": median < GOALS_MS[mode],
                    }
                )

    print(f"10-line receipt to ESC/POS bytes, median of {args.runs} runs (font {font})")
    print(f"{'paper':>6} {'mode':>6} {'ms':>8} {'cold ms':>8} {'bytes':>8} {'goal':>8}")
    for row in rows:
        cold = "" if row["cold_glyphs_median_ms"] is None else f"{row['cold_glyphs_median_ms']:.2f}"
        verdict = "ok" if row["meets_goal"] else "MISSED"
        print(
            f"{row['paper_mm']:>4}mm {row['mode']:>6} {row['median_ms']:>8.2f} {cold:>8} "
            f"{row['bytes']:>8} <{row['goal_ms']:>4.0f} {verdict}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "runs": args.runs,
        "font": font,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "results": rows,
    }
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return 0 if all(row["meets_goal"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
