"""Display helpers for leaderboard and model pages."""

from __future__ import annotations

import math

from django import template

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
def lookup(mapping, key):
    """mapping[key], or None when absent."""
    return (mapping or {}).get(key)


@register.filter
def metric_text(cell) -> str:
    """'value [lower, upper]', or the status in words ('unavailable', 'failed', '—' when none)."""
    if not cell or cell.get("status") == "missing":
        return "—"
    if cell["status"] != "ok" or cell.get("value") is None:
        return str(cell["status"])
    text = _number(float(cell["value"]))
    if cell.get("lower") is not None and cell.get("upper") is not None:
        text += f" [{_number(float(cell['lower']))}, {_number(float(cell['upper']))}]"
    return text


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
