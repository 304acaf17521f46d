"""Server-side SVG charts for the leaderboard (pure Python, no Django).

Three small pictures: ratings with 95% intervals, the pairwise win-rate heatmap and ratings over
time. Written as SVG strings rather than through a plotting library so a page renders in a few
milliseconds, works without JavaScript and every mark carries a text label (no colour-only cue).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from html import escape

PALETTE = (
    "#2754c5",
    "#c2410c",
    "#15803d",
    "#7e22ce",
    "#b91c1c",
    "#0e7490",
    "#a16207",
    "#be185d",
    "#4d7c0f",
    "#1e3a8a",
)


def _fmt(x: float) -> str:
    return f"{x:.1f}"


def _text_width(text: str, size: float = 12.0) -> float:
    """A generous estimate of the rendered width (px) of `text` in a sans-serif font of `size`
    px: charts size their margins by their longest label, so no label is cut at the edge."""
    wide = sum(1 for ch in text if ch.isupper() or ch in "mwMW%@")
    return size * (0.58 * len(text) + 0.16 * wide) + 4


def _labels_width(labels, size: float = 12.0) -> float:
    return max((_text_width(str(label), size) for label in labels), default=0.0)


def _nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    if not math.isfinite(lo) or not math.isfinite(hi) or hi <= lo:
        return [lo]
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = min((m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw), default=raw)
    first = math.ceil(lo / step) * step
    return [first + k * step for k in range(int((hi - first) / step) + 1)]


def ci_plot(rows: Sequence[dict], *, title: str = "Rating with 95% confidence interval") -> str:
    """Horizontal interval plot. rows: [{display_name, rating, lower, upper}] in display order."""
    if not rows:
        return ""
    plot_w, row_h, top, bottom = 520, 26, 34, 36
    label_w = round(max(80.0, _labels_width(r["display_name"] for r in rows) + 14))
    height = top + row_h * len(rows) + bottom
    lo = min(float(r["lower"]) for r in rows)
    hi = max(float(r["upper"]) for r in rows)
    pad = max((hi - lo) * 0.05, 1.0)
    lo, hi = lo - pad, hi + pad

    def x(v: float) -> float:
        return label_w + (v - lo) / (hi - lo) * plot_w

    parts = [
        f'<svg class="chart" role="img" aria-labelledby="ci-title" viewBox="0 0 '
        f'{label_w + plot_w + 70} {height}" width="{label_w + plot_w + 70}" height="{height}" '
        'xmlns="http://www.w3.org/2000/svg">',
        f'<title id="ci-title">{escape(title)}</title>',
    ]
    for tick in _nice_ticks(lo, hi):
        tx = x(tick)
        parts.append(
            f'<line x1="{_fmt(tx)}" y1="{top - 6}" x2="{_fmt(tx)}" y2="{height - bottom}" '
            'class="grid"/>'
            f'<text x="{_fmt(tx)}" y="{height - bottom + 16}" text-anchor="middle" '
            f'class="tick">{tick:g}</text>'
        )
    for k, row in enumerate(rows):
        y = top + row_h * k + row_h / 2
        name = escape(str(row.get("display_name") or row.get("model")))
        r, a, b = float(row["rating"]), float(row["lower"]), float(row["upper"])
        parts.append(
            f"<g><title>{name}: {r:.0f} (95% CI {a:.0f} to {b:.0f})</title>"
            f'<text x="{label_w - 8}" y="{_fmt(y + 4)}" text-anchor="end" class="label">'
            f"{name}</text>"
            f'<line x1="{_fmt(x(a))}" y1="{_fmt(y)}" x2="{_fmt(x(b))}" y2="{_fmt(y)}" '
            'class="interval"/>'
            f'<circle cx="{_fmt(x(r))}" cy="{_fmt(y)}" r="4.5" class="point"/>'
            f'<text x="{_fmt(x(b) + 6)}" y="{_fmt(y + 4)}" class="value">{r:.0f}</text></g>'
        )
    parts.append(
        f'<text x="{label_w + plot_w / 2}" y="{height - 4}" text-anchor="middle" class="axis">'
        "Bradley–Terry rating (Elo scale)</text></svg>"
    )
    return "".join(parts)


def _heat_colour(rate: float) -> str:
    # Diverging blue (wins) / orange (losses) through white at 50%.
    t = max(0.0, min(1.0, rate))
    if t >= 0.5:
        s = (t - 0.5) * 2
        r, g, b = 255 - s * (255 - 39), 255 - s * (255 - 84), 255 - s * (255 - 197)
    else:
        s = (0.5 - t) * 2
        r, g, b = 255 - s * (255 - 194), 255 - s * (255 - 65), 255 - s * (255 - 12)
    return f"rgb({r:.0f},{g:.0f},{b:.0f})"


def win_rate_heatmap(
    names: Sequence[str],
    win_rates: Sequence[Sequence[float | None]],
    counts: Sequence[Sequence[int]] | None = None,
    *,
    title: str = "Pairwise win rate of the row model against the column model",
) -> str:
    """Heatmap with the win rate printed in each cell ("–" where the pair never met).

    names: n labels; win_rates: [n][n] fractions in [0, 1] or None; counts: [n][n] battles.
    """
    n = len(names)
    if n == 0:
        return ""
    cell = 46
    widest = _labels_width(names)
    label_w = round(max(80.0, widest + 14))
    # Column labels are rotated by 55°: they rise sin(55°)·w and lean cos(55°)·w to the right.
    top = round(max(60.0, widest * 0.82 + 24))
    right = round(max(20.0, widest * 0.58 + 12))
    width, height = label_w + cell * n + right, top + cell * n + 10
    parts = [
        f'<svg class="chart heatmap" role="img" aria-labelledby="hm-title" viewBox="0 0 '
        f'{width} {height}" width="{width}" height="{height}" '
        'xmlns="http://www.w3.org/2000/svg">',
        f'<title id="hm-title">{escape(title)}</title>',
    ]
    for j, name in enumerate(names):
        cx = label_w + cell * j + cell / 2
        parts.append(
            f'<text transform="translate({_fmt(cx + 4)},{top - 8}) rotate(-55)" '
            f'class="label">{escape(name)}</text>'
        )
    for i, row_name in enumerate(names):
        y = top + cell * i
        parts.append(
            f'<text x="{label_w - 8}" y="{_fmt(y + cell / 2 + 4)}" text-anchor="end" '
            f'class="label">{escape(row_name)}</text>'
        )
        for j, col_name in enumerate(names):
            x = label_w + cell * j
            rate = win_rates[i][j] if i != j else None
            battles = counts[i][j] if counts else None
            if rate is None or (isinstance(rate, float) and math.isnan(rate)):
                fill, text = "#f1f2f6", "–"
                tip = f"{row_name} vs {col_name}: no battles" if i != j else row_name
            else:
                fill, text = _heat_colour(float(rate)), f"{float(rate) * 100:.0f}%"
                n_text = f" over {battles} battles" if battles is not None else ""
                tip = f"{row_name} beats {col_name} {float(rate) * 100:.0f}% of the time{n_text}"
            parts.append(
                f'<g><title>{escape(tip)}</title><rect x="{x}" y="{y}" width="{cell}" '
                f'height="{cell}" fill="{fill}" class="cell"/>'
                f'<text x="{_fmt(x + cell / 2)}" y="{_fmt(y + cell / 2 + 4)}" '
                f'text-anchor="middle" class="cell-text">{text}</text></g>'
            )
    parts.append("</svg>")
    return "".join(parts)


def rating_over_time(
    times: Sequence[datetime],
    series: dict[str, Sequence[float | None]],
    *,
    title: str = "Rating over time",
) -> str:
    """Line chart: one line per model (labelled at its end), x = snapshot time, y = rating.

    times: k snapshot times, oldest first; series: label -> k ratings (None = not rated then).
    """
    if len(times) == 0 or not series:
        return ""
    left, top, bottom, plot_w, plot_h = 60, 20, 40, 560, 260
    right = round(max(60.0, _labels_width(series) + 16))
    values = [v for vs in series.values() for v in vs if v is not None]
    if not values:
        return ""
    lo, hi = min(values), max(values)
    pad = max((hi - lo) * 0.08, 5.0)
    lo, hi = lo - pad, hi + pad
    t0, t1 = times[0].timestamp(), times[-1].timestamp()
    span = max(t1 - t0, 1.0)

    def x(t: datetime) -> float:
        return left + ((t.timestamp() - t0) / span if len(times) > 1 else 0.5) * plot_w

    def y(v: float) -> float:
        return top + (hi - v) / (hi - lo) * plot_h

    parts = [
        f'<svg class="chart" role="img" aria-labelledby="rt-title" viewBox="0 0 '
        f'{left + plot_w + right} {top + plot_h + bottom}" width="{left + plot_w + right}" '
        f'height="{top + plot_h + bottom}" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="rt-title">{escape(title)}</title>',
    ]
    for tick in _nice_ticks(lo, hi):
        parts.append(
            f'<line x1="{left}" y1="{_fmt(y(tick))}" x2="{left + plot_w}" y2="{_fmt(y(tick))}" '
            f'class="grid"/><text x="{left - 6}" y="{_fmt(y(tick) + 4)}" text-anchor="end" '
            f'class="tick">{tick:g}</text>'
        )
    for when in (times[0], times[-1]):
        parts.append(
            f'<text x="{_fmt(x(when))}" y="{top + plot_h + 18}" text-anchor="middle" '
            f'class="tick">{when:%Y-%m-%d %H:%M}</text>'
        )
    dashes = ("", "6 3", "2 3", "8 3 2 3")
    for k, (label, vs) in enumerate(series.items()):
        colour = PALETTE[k % len(PALETTE)]
        points = [(x(t), y(v)) for t, v in zip(times, vs, strict=True) if v is not None]
        if not points:
            continue
        path = " ".join(f"{_fmt(px)},{_fmt(py)}" for px, py in points)
        dash = dashes[(k // len(PALETTE)) % len(dashes)]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        last = [v for v in vs if v is not None][-1]
        parts.append(
            f"<g><title>{escape(label)}: {last:.0f} now</title>"
            f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"'
            f"{dash_attr}/>"
            + "".join(
                f'<circle cx="{_fmt(px)}" cy="{_fmt(py)}" r="2.5" fill="{colour}"/>'
                for px, py in points
            )
            + f'<text x="{_fmt(points[-1][0] + 6)}" y="{_fmt(points[-1][1] + 4)}" class="label" '
            f'fill="{colour}">{escape(label)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)
