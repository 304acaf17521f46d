"""Parsing helpers shared by the judge modes: JSON objects inside free text, numbers, errors."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field


class VerdictParseError(ValueError):
    """The judge answered, but not in a form we can read (recorded as a failed verdict)."""


@dataclass
class Verdict:
    """One judge answer for one sample (rubric, VQAScore) or one pair (pairwise).

    `score` is on the mode's scale (VQAScore: probability in [0, 1]; rubric: 0–10);
    `outcome` is "A", "B" or "tie" for pairwise. Failed verdicts carry `error` and no score.
    """

    status: str  # "ok" | "failed"
    score: float | None = None
    outcome: str | None = None
    rationale: str = ""
    raw: dict = field(default_factory=dict)
    error: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @classmethod
    def failed(cls, error: str, **fields: object) -> Verdict:
        return cls(status="failed", error=error[:4000], **fields)  # type: ignore[arg-type]


_FENCE = re.compile(r"```(?:json)?", re.IGNORECASE)


def json_objects(text: str) -> list[dict]:
    """Every JSON object embedded in `text` (code fences and surrounding prose are ignored)."""
    cleaned = _FENCE.sub("", text)
    decoder = json.JSONDecoder()
    found: list[dict] = []
    position = cleaned.find("{")
    while position != -1:
        try:
            value, end = decoder.raw_decode(cleaned, position)
        except json.JSONDecodeError:
            position = cleaned.find("{", position + 1)
            continue
        if isinstance(value, dict):
            found.append(value)
        position = cleaned.find("{", end)
    return found


def as_number(value: object) -> float | None:
    """A float from a JSON number or a numeric string such as "8" or "8/10"; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = re.match(r"\s*(-?\d+(?:\.\d+)?)", value)
        if match:
            return float(match.group(1))
    return None
