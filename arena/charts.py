"""Server-side SVG charts for the leaderboard (pure Python, no Django).

Small pictures: ratings with 95% intervals, the pairwise win-rate heatmap, ratings over time,
quality against generation cost (with the Pareto frontier) and a model's steps sweep. Written as SVG strings rather than through a plotting library so a page renders in a few
milliseconds, works without JavaScript and every mark carries a text label (no colour-only cue).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
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


def _log_ticks(lo: float, hi: float, base: int = 10) -> list[float]:
    """Powers of `base` spanning [lo, hi] (lo, hi > 0)."""
    first = math.floor(math.log(lo, base) + 1e-9)
    last = math.ceil(math.log(hi, base) - 1e-9)
    return [float(base) ** k for k in range(first, last + 1)]


def _money(x: float) -> str:
    return f"${x:.2g}" if x < 0.01 else f"${x:.2f}"


def _log_x_frame(
    *,
    chart_id: str,
    title: str,
    x_range: tuple[float, float],
    base: int,
    x_tick: Callable[[float], str],
    y_range: tuple[float, float],
    box: tuple[int, int, int, int],
    size: tuple[int, int],
):
    """The frame of a chart with a log-`base` x axis and a linear y axis: (x, y, parts) with the
    scale functions and the opening SVG with grid lines and ticks. box: (left, top, plot_w,
    plot_h); size: (width, height)."""
    (lo_x, hi_x), (lo_y, hi_y) = x_range, y_range
    left, top, plot_w, plot_h = box

    def x(v: float) -> float:
        return left + math.log(v / lo_x, base) / math.log(hi_x / lo_x, base) * plot_w

    def y(v: float) -> float:
        return top + (hi_y - v) / (hi_y - lo_y) * plot_h

    width, height = size
    parts = [
        f'<svg class="chart" role="img" aria-labelledby="{chart_id}" viewBox="0 0 {width} '
        f'{height}" width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{chart_id}">{escape(title)}</title>',
    ]
    for tick in _nice_ticks(lo_y, hi_y):
        parts.append(
            f'<line x1="{left}" y1="{_fmt(y(tick))}" x2="{left + plot_w}" y2="{_fmt(y(tick))}" '
            f'class="grid"/><text x="{left - 6}" y="{_fmt(y(tick) + 4)}" text-anchor="end" '
            f'class="tick">{tick:g}</text>'
        )
    for tick in _log_ticks(lo_x, hi_x, base=base):
        if lo_x <= tick <= hi_x:
            parts.append(
                f'<line x1="{_fmt(x(tick))}" y1="{top}" x2="{_fmt(x(tick))}" '
                f'y2="{top + plot_h}" class="grid"/><text x="{_fmt(x(tick))}" '
                f'y="{top + plot_h + 16}" text-anchor="middle" class="tick">{x_tick(tick)}</text>'
            )
    return x, y, parts


def quality_cost_plot(
    points: Sequence[dict],
    *,
    quality_label: str,
    direction: str = "higher",
    title: str = "Quality against generation cost",
) -> str:
    """Scatter of quality (y) against $ per megapixel (x, log scale), every point labelled; the
    Pareto-optimal points (`pareto`) are filled and joined by the frontier (a step line: the
    best quality to be had at each cost). points: [{display_name, cost, quality, pareto}]."""
    points = [p for p in points if p["cost"] > 0]
    if not points:
        return ""
    left, top, bottom, plot_w, plot_h = 64, 24, 46, 520, 280
    right = round(max(40.0, _labels_width(p["display_name"] for p in points) + 16))
    costs = [p["cost"] for p in points]
    lo_x, hi_x = min(costs) / 2, max(costs) * 2
    values = [p["quality"] for p in points]
    lo_y, hi_y = min(values), max(values)
    pad = max((hi_y - lo_y) * 0.1, abs(hi_y) * 0.02, 1e-6)
    lo_y, hi_y = lo_y - pad, hi_y + pad

    width, height = left + plot_w + right, top + plot_h + bottom
    x, y, parts = _log_x_frame(
        chart_id="qc-title",
        title=title,
        x_range=(lo_x, hi_x),
        base=10,
        x_tick=_money,
        y_range=(lo_y, hi_y),
        box=(left, top, plot_w, plot_h),
        size=(width, height),
    )
    front = sorted((p for p in points if p.get("pareto")), key=lambda p: p["cost"])
    if front:
        # Frontier as steps: from each optimal point, its quality holds until the next one.
        path = []
        for k, p in enumerate(front):
            path.append((x(p["cost"]), y(p["quality"])))
            if k + 1 < len(front):
                path.append((x(front[k + 1]["cost"]), y(p["quality"])))
        coords = " ".join(f"{_fmt(px)},{_fmt(py)}" for px, py in path)
        parts.append(
            f'<polyline points="{coords}" fill="none" stroke="{PALETTE[2]}" stroke-width="2" '
            'stroke-dasharray="5 3" class="frontier"><title>Pareto frontier</title></polyline>'
        )
    arrow = "↑" if direction == "higher" else "↓"
    for p in points:
        px, py = x(p["cost"]), y(p["quality"])
        name = escape(str(p["display_name"]))
        optimal = bool(p.get("pareto"))
        fill = PALETTE[2] if optimal else "#ffffff"
        tip = f"{name}: {p['quality']:.4g} at {_money(p['cost'])} per megapixel" + (
            " (Pareto-optimal)" if optimal else ""
        )
        parts.append(
            f'<g class="{"pareto" if optimal else "dominated"}"><title>{tip}</title>'
            f'<circle cx="{_fmt(px)}" cy="{_fmt(py)}" r="5" fill="{fill}" '
            f'stroke="{PALETTE[2] if optimal else PALETTE[0]}" stroke-width="2"/>'
            f'<text x="{_fmt(px + 8)}" y="{_fmt(py + 4)}" class="label">{name}'
            f"{' ★' if optimal else ''}</text></g>"
        )
    parts.append(
        f'<text x="{left + plot_w / 2}" y="{height - 6}" text-anchor="middle" class="axis">'
        "$ per megapixel (median, log scale)</text>"
        f'<text transform="translate(14,{top + plot_h / 2}) rotate(-90)" text-anchor="middle" '
        f'class="axis">{escape(quality_label)} {arrow}</text></svg>'
    )
    return "".join(parts)


def steps_sweep_plot(
    series: dict[str, Sequence[dict]],
    *,
    quality_label: str,
    title: str = "Quality against network evaluations per sample",
) -> str:
    """Lines of quality (y, with its interval as a bar) against NFE (x, log2 scale), one per
    series, labelled at their end. series: label -> [{nfe, value, lower, upper}] by NFE (points
    without a value are left out)."""
    series = {
        label: [p for p in pts if p.get("value") is not None] for label, pts in series.items()
    }
    series = {label: pts for label, pts in series.items() if pts}
    if not series:
        return ""
    left, top, bottom, plot_w, plot_h = 56, 20, 46, 520, 260
    right = round(max(60.0, _labels_width(series) + 16))
    nfes = [p["nfe"] for pts in series.values() for p in pts]
    lo_x, hi_x = min(nfes) / 1.5, max(nfes) * 1.5
    values = [
        v
        for pts in series.values()
        for p in pts
        for v in (p["value"], p.get("lower"), p.get("upper"))
        if v is not None
    ]
    lo_y, hi_y = min(values), max(values)
    pad = max((hi_y - lo_y) * 0.08, 0.02)
    lo_y, hi_y = lo_y - pad, hi_y + pad

    width, height = left + plot_w + right, top + plot_h + bottom
    x, y, parts = _log_x_frame(
        chart_id="ss-title",
        title=title,
        x_range=(lo_x, hi_x),
        base=2,
        x_tick=lambda tick: f"{tick:g}",
        y_range=(lo_y, hi_y),
        box=(left, top, plot_w, plot_h),
        size=(width, height),
    )
    dashes = ("", "6 3", "2 3", "8 3 2 3")
    label_ys: list[float] = []  # end labels of lines that end together are stacked, not overlaid
    for k, (label, pts) in enumerate(series.items()):
        colour = PALETTE[k % len(PALETTE)]
        dash = dashes[(k // len(PALETTE)) % len(dashes)]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        label_y = y(pts[-1]["value"]) + 4
        while any(abs(label_y - used) < 13 for used in label_ys):
            label_y += 13
        label_ys.append(label_y)
        coords = " ".join(f"{_fmt(x(p['nfe']))},{_fmt(y(p['value']))}" for p in pts)
        marks = []
        for p in pts:
            px, py = x(p["nfe"]), y(p["value"])
            steps = f", {p['steps']} steps" if p.get("steps") is not None else ""
            tip = escape(f"{label}: {p['value']:.3g} at NFE {p['nfe']}{steps}")
            bar = ""
            if p.get("lower") is not None and p.get("upper") is not None:
                bar = (
                    f'<line x1="{_fmt(px)}" y1="{_fmt(y(p["lower"]))}" x2="{_fmt(px)}" '
                    f'y2="{_fmt(y(p["upper"]))}" class="interval" style="stroke: {colour}"/>'
                )
            marks.append(
                f"<g><title>{tip}</title>{bar}"
                f'<circle cx="{_fmt(px)}" cy="{_fmt(py)}" r="3.5" fill="{colour}"/></g>'
            )
        last = pts[-1]
        parts.append(
            f'<g class="series"><polyline points="{coords}" fill="none" stroke="{colour}" '
            f'stroke-width="2"{dash_attr}/>{"".join(marks)}'
            f'<text x="{_fmt(x(last["nfe"]) + 8)}" y="{_fmt(label_y)}" '
            f'class="label" fill="{colour}">{escape(label)}</text></g>'
        )
    parts.append(
        f'<text x="{left + plot_w / 2}" y="{height - 6}" text-anchor="middle" class="axis">'
        "NFE: network evaluations per sample (log₂ scale)</text>"
        f'<text transform="translate(14,{top + plot_h / 2}) rotate(-90)" text-anchor="middle" '
        f'class="axis">{escape(quality_label)}</text></svg>'
    )
    return "".join(parts)
