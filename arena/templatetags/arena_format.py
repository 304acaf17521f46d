"""Display helpers for leaderboard and model pages.

Metric names, headings and interval meanings come from evaluation.metrics.catalogue, task names
and labels from models_registry.generators.tasks; templates hard-code neither.
"""

from __future__ import annotations

import math

from django import template

from arena.selectors import metric_cell
from evaluation.metrics.catalogue import INTERVALS, METRICS, interval_of, metric_heading
from models_registry.generators.tasks import TASKS

register = template.Library()


def _number(value: float) -> str:
    if value == 0 or 0.01 <= abs(value) < 10000:
        return (
            f"{value:.3g}"
            if abs(value) < 1
            else f"{value:.4g}"
            if abs(value) < 100
            else f"{value:.1f}"
        )
    return f"{value:.3e}"


@register.filter
def money(value) -> str:
    """Dollars with two significant digits below a cent ('$2.8e-07'), else cents ('$0.12');
    '—' for None."""
    if value is None:
        return "—"
    value = float(value)
    return f"${value:.2g}" if abs(value) < 0.01 else f"${value:.2f}"


@register.filter
def seconds(value) -> str:
    """'0.0123 s' (three significant digits); '—' for None."""
    return "—" if value is None else f"{float(value):.3g} s"


@register.filter
def lookup(mapping, key):
    """mapping[key], or None when absent."""
    return (mapping or {}).get(key)


@register.filter
def metric_text(cell) -> str:
    """'value [lower, upper]' (a confidence interval) or 'value ± spread' (a ±1 std interval),
    or the status in words ('unavailable', 'failed', '—' when none)."""
    if not cell or cell.get("status") == "missing":
        return "—"
    if cell["status"] != "ok" or cell.get("value") is None:
        return str(cell["status"])
    value = float(cell["value"])
    text = _number(value)
    if cell.get("lower") is not None and cell.get("upper") is not None:
        lower, upper = float(cell["lower"]), float(cell["upper"])
        if cell.get("interval") == "std":
            text += f" ± {_number((upper - lower) / 2)}"
        else:
            text += f" [{_number(lower)}, {_number(upper)}]"
    return text


@register.filter
def result_text(result) -> str:
    """metric_text of a stored MetricResult (model page)."""
    return metric_text(metric_cell(result))


@register.filter
def heading(metric: str) -> str:
    """Column header of a metric name: 'FID ↓'."""
    return metric_heading(metric)


@register.filter
def interval_label(metric: str) -> str:
    """What a metric's interval is, short: '95% CI', '±1 std' ('' when not in the catalogue)."""
    interval = interval_of(metric)
    return interval.label if interval else ""


@register.filter
def interval_note(metric: str) -> str:
    """What a metric's interval is and how it is estimated, one phrase."""
    spec = METRICS.get(metric)
    return spec.interval_note if spec else "interval not described in the metric catalogue"


@register.filter
def metric_tooltip(metric: str) -> str:
    """Header tooltip: description, direction and interval of a metric."""
    spec = METRICS.get(metric)
    if spec is None:
        return metric
    return (
        f"{spec.label}: {spec.description}; {spec.direction} is better. "
        f"Interval: {spec.interval_note}."
    )


@register.filter
def metric_cell_title(cell, metric: str) -> str:
    """Cell tooltip: the failure message, else what the bracketed interval means."""
    if not cell:
        return ""
    if cell.get("message"):
        return cell["message"]
    if cell.get("status") == "ok" and cell.get("lower") is not None:
        interval = INTERVALS.get(cell.get("interval") or "")
        return f"{metric_heading(metric)}: {interval.description if interval else 'interval'}"
    return ""


@register.simple_tag
def metric_catalogue() -> list:
    """Every catalogue entry, in display order (for prose such as the start page)."""
    return list(METRICS.values())


@register.simple_tag
def task_catalogue() -> list:
    """Every task spec (name, label, media_plural), for navigation."""
    return list(TASKS.values())


@register.filter
def metric_sort(cell) -> str:
    """Sort key for a metric cell: its value, or empty so that missing values sort last."""
    if not cell or cell.get("status") != "ok" or cell.get("value") is None:
        return ""
    return repr(float(cell["value"]))


@register.filter
def percent(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{float(value) * 100:.0f}%"
