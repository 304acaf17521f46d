"""Judge–human agreement: the judge's accuracy against the human majority verdict, with a Wilson CI.

As GenAI-Bench reports for its VLM judges: each item is one battle pair (same prompt, same two
samples) that humans and the judge both voted on; the human label is the strict majority of the human
votes (A / B / tie, "both bad" counted as tie); items without a strict majority are left out.
Accuracy is reported with ties ("with tie": 3-way) and on the items whose human label is not a tie
("without tie": the judge must name the human winner, so a judge tie counts as wrong).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from scipy.stats import binomtest

LABELS = ("A", "B", "tie")


@dataclass(frozen=True)
class AgreementItem:
    """Human vote counts per label and the judge's label, both oriented to the same (A, B)."""

    human_counts: Mapping[str, int]
    judge: str


def human_majority(counts: Mapping[str, int]) -> str | None:
    """The label with strictly the most votes, or None (no votes, or a tie for first place)."""
    ranked = sorted(((counts.get(label, 0), label) for label in LABELS), reverse=True)
    if ranked[0][0] == 0 or ranked[0][0] == ranked[1][0]:
        return None
    return ranked[0][1]


def wilson_interval(
    successes: int, trials: int, *, confidence: float = 0.95
) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (scipy's binomtest)."""
    interval = binomtest(successes, trials).proportion_ci(
        confidence_level=confidence, method="wilson"
    )
    return float(interval.low), float(interval.high)


def _accuracy(correct: int, n: int, confidence: float) -> dict:
    if n == 0:
        return {"n": 0, "correct": 0, "accuracy": None, "lower": None, "upper": None}
    lower, upper = wilson_interval(correct, n, confidence=confidence)
    return {"n": n, "correct": correct, "accuracy": correct / n, "lower": lower, "upper": upper}


def agreement_stats(items: Iterable[AgreementItem], *, confidence: float = 0.95) -> dict:
    """Accuracy of the judge against the human majority.

    Returns {"items", "no_majority", "confidence", "with_ties": {n, correct, accuracy, lower, upper},
    "without_ties": {...}}; accuracy and bounds are None when nothing can be compared.
    """
    total = no_majority = 0
    correct = compared = 0
    correct_decisive = decisive = 0
    for item in items:
        if item.judge not in LABELS:
            raise ValueError(f"judge label {item.judge!r} is not one of {LABELS}")
        total += 1
        label = human_majority(item.human_counts)
        if label is None:
            no_majority += 1
            continue
        compared += 1
        correct += item.judge == label
        if label != "tie":
            decisive += 1
            correct_decisive += item.judge == label
    return {
        "items": total,
        "no_majority": no_majority,
        "confidence": confidence,
        "with_ties": _accuracy(correct, compared, confidence),
        "without_ties": _accuracy(correct_decisive, decisive, confidence),
    }
