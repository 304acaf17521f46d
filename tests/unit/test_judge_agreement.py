"""Judge–human agreement on constructed data with a known answer, and the Wilson interval."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evaluation.judges.agreement import (
    AgreementItem,
    agreement_stats,
    human_majority,
    wilson_interval,
)


def wilson_closed_form(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


@pytest.mark.parametrize(("k", "n"), [(0, 5), (7, 10), (10, 10), (412, 600)])
def test_wilson_interval_matches_the_closed_form(k, n):
    assert wilson_interval(k, n) == pytest.approx(wilson_closed_form(k, n), abs=1e-12)


def test_human_majority_needs_a_strict_plurality():
    assert human_majority({"A": 3, "B": 1}) == "A"
    assert human_majority({"tie": 2, "B": 1}) == "tie"
    assert human_majority({"A": 2, "B": 2}) is None
    assert human_majority({}) is None


def test_agreement_on_constructed_items_with_a_known_answer():
    items = (
        # 6 decisive human majorities: the judge gets 4 right, 1 wrong winner, 1 tie (wrong).
        [AgreementItem({"A": 3, "B": 1}, "A")] * 2
        + [AgreementItem({"B": 2}, "B")] * 2
        + [AgreementItem({"A": 2, "tie": 1}, "B"), AgreementItem({"B": 5, "A": 4}, "tie")]
        # 4 human ties: the judge says tie on 3.
        + [AgreementItem({"tie": 2, "A": 1}, "tie")] * 3
        + [AgreementItem({"tie": 1}, "A")]
        # 2 pairs without a human majority: left out.
        + [AgreementItem({"A": 1, "B": 1}, "A"), AgreementItem({"A": 2, "tie": 2}, "tie")]
    )
    result = agreement_stats(items)
    assert (result["items"], result["no_majority"]) == (12, 2)
    with_ties, without_ties = result["with_ties"], result["without_ties"]
    assert (with_ties["n"], with_ties["correct"]) == (10, 7)
    assert with_ties["accuracy"] == pytest.approx(0.7)
    assert (with_ties["lower"], with_ties["upper"]) == pytest.approx(wilson_closed_form(7, 10))
    assert (without_ties["n"], without_ties["correct"]) == (6, 4)
    assert without_ties["accuracy"] == pytest.approx(4 / 6)


def test_nothing_to_compare_gives_no_accuracy_rather_than_nan():
    result = agreement_stats([AgreementItem({"A": 1, "B": 1}, "A")])
    assert result["with_ties"] == {
        "n": 0,
        "correct": 0,
        "accuracy": None,
        "lower": None,
        "upper": None,
    }


def test_wilson_interval_covers_a_simulated_judge_about_95_percent_of_the_time():
    rng = np.random.default_rng(7)
    true_accuracy, n, rounds = 0.72, 80, 2000
    correct = rng.binomial(n, true_accuracy, size=rounds)
    covered = 0
    for k in correct:
        items = [AgreementItem({"A": 1}, "A")] * int(k) + [AgreementItem({"A": 1}, "B")] * int(
            n - k
        )
        stats = agreement_stats(items)["with_ties"]
        covered += stats["lower"] <= true_accuracy <= stats["upper"]
    coverage = covered / rounds
    assert 0.93 <= coverage <= 0.97, f"observed coverage {coverage:.3f}"


def test_unknown_judge_labels_are_refused():
    with pytest.raises(ValueError, match="not one of"):
        agreement_stats([AgreementItem({"A": 1}, "model_a")])
