"""Rank robustness: two-model closed form, brute force over vote subsets, verified flips."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from arena.ratings import (
    AggregatedVotes,
    BradleyTerryOptions,
    fit_bradley_terry,
    rank_robustness,
    votes_to_flip,
)
from tests.unit.test_ratings_bradley_terry import simulate


def two_models(w: int, l: int, t: int) -> AggregatedVotes:  # noqa: E741 (w wins, l losses)
    winner = ["model_a"] * w + ["model_b"] * l + ["tie"] * t
    return AggregatedVotes.from_votes(["x"] * len(winner), ["y"] * len(winner), winner)


@pytest.mark.parametrize(
    ("w", "l", "t"), [(30, 12, 0), (30, 12, 8), (10, 10, 0), (7, 1, 3), (40, 39, 100), (2, 1, 0)]
)
def test_two_models_need_w_minus_l_plus_one_removed_wins(w, l, t):  # noqa: E741
    # Ties are half a win each: the gap is log((w - x + t/2) / (l + t/2)), negative iff x > w - l.
    votes = two_models(w, l, t)
    for options in (BradleyTerryOptions(), BradleyTerryOptions(tie_weight=0.0)):
        (flip,) = rank_robustness(votes, options)
        assert (flip.upper, flip.lower) == ("x", "y")
        assert flip.count == w - l + 1 and flip.display == str(w - l + 1)
        assert flip.removed == (("x", "y", "model_a", w - l + 1),)
        assert flip.fraction == pytest.approx((w - l + 1) / (w + l + t))


@pytest.mark.parametrize(("w", "t"), [(5, 0), (5, 4)])
def test_a_model_that_never_lost_cannot_be_overtaken_by_removals(w, t):
    # l = 0: with every win removed only ties (or nothing) remain and the two are level; with
    # t = 0 the full fit needs the prior ("regularized"), which keeps the upper model finite.
    (flip,) = rank_robustness(two_models(w, 0, t), max_removals=50)
    assert flip.count is None and flip.display == ">50" and not flip.flipped


def brute_force(votes: AggregatedVotes, options, upper: str, lower: str, limit: int) -> int | None:
    """Smallest number of removed votes (any subset, up to ``limit``) that flips the pair."""
    u, lo = votes.models.index(upper), votes.models.index(lower)
    counts = votes.count
    for size in range(1, limit + 1):
        for rows in itertools.combinations_with_replacement(range(len(counts)), size):
            removed = np.bincount(rows, minlength=len(counts))
            if (removed > counts).any():
                continue
            trial = AggregatedVotes(
                votes.models, votes.model_a, votes.model_b, votes.outcome, counts - removed
            )
            fit = fit_bradley_terry(trial, options)
            if fit.ratings[lo] - fit.ratings[u] > 1e-6:
                return size
    return None


THREE = [
    # (model_a, model_b, winner, count)
    ("a", "b", "model_a", 5),
    ("a", "b", "model_b", 3),
    ("a", "b", "tie", 1),
    ("a", "c", "model_a", 4),
    ("a", "c", "model_b", 2),
    ("b", "c", "model_a", 4),
    ("b", "c", "model_b", 3),
    ("c", "b", "tie", 1),
]


@pytest.mark.parametrize(
    "rows",
    [
        THREE,
        # a never lost: the board needs the prior, and so do some of the subsets.
        [("a", "b", "model_a", 3), ("a", "c", "model_a", 2), ("b", "c", "model_a", 3),
         ("c", "b", "model_a", 2), ("b", "c", "tie", 2)],
        # Uneven pair counts: which votes matter most is not obvious from the counts.
        [("a", "b", "model_a", 6), ("b", "a", "model_a", 4), ("a", "c", "model_a", 2),
         ("c", "a", "model_a", 1), ("b", "c", "model_a", 5), ("c", "b", "model_a", 4),
         ("c", "b", "tie", 3)],
    ],
    ids=["ties", "prior", "uneven"],
)  # fmt: skip
def test_three_models_match_brute_force_over_subsets(rows):
    a, b, winner, count = zip(*rows, strict=True)
    votes = AggregatedVotes.from_rows(a, b, winner, count)
    options = BradleyTerryOptions()
    flips = rank_robustness(votes, options)
    fit = fit_bradley_terry(votes, options)
    assert [f.upper for f in flips] == [fit.models[i] for i in fit.order[:-1]]
    for flip in flips:
        expected = brute_force(votes, options, flip.upper, flip.lower, limit=6)
        assert flip.count == expected, (flip.upper, flip.lower, flip.count, expected)
        if flip.count is None:
            continue
        # The reported votes are a real flip: remove exactly them and refit.
        removed = np.zeros(len(votes.count), dtype=np.int64)
        for ma, mb, outcome, k in flip.removed:
            row = next(
                r
                for r in range(len(votes.count))
                if (votes.models[votes.model_a[r]], votes.models[votes.model_b[r]]) == (ma, mb)
                and ["model_a", "model_b", "tie", "both_bad"][votes.outcome[r]] == outcome
            )
            removed[row] += k
        assert removed.sum() == flip.count
        trial = AggregatedVotes(
            votes.models, votes.model_a, votes.model_b, votes.outcome, votes.count - removed
        )
        refit = fit_bradley_terry(trial, options)
        ia, ib = votes.models.index(flip.upper), votes.models.index(flip.lower)
        assert refit.ratings[ib] > refit.ratings[ia]


def test_large_board_flips_are_verified_and_close_to_first_order():
    rng = np.random.default_rng(0)
    votes = AggregatedVotes.from_votes(*simulate(rng.normal(0, 1, 12), 10_000, rng))
    fit = fit_bradley_terry(votes)
    flips = rank_robustness(votes, fit=fit)
    assert len(flips) == 11 and all(f.flipped for f in flips)
    for flip in flips:
        assert flip.position == fit.rank[votes.models.index(flip.upper)]
        # The first-order guess from the full fit is the right order of magnitude.
        assert 0.5 * flip.count <= flip.approximate <= 2 * flip.count + 2
        assert sum(k for *_, k in flip.removed) == flip.count
    by_gap = sorted(flips, key=lambda f: f.gap)
    assert by_gap[0].count < by_gap[-1].count
    with pytest.raises(ValueError, match="placed below"):
        votes_to_flip(votes, flips[0].lower, flips[0].upper)
    again = votes_to_flip(votes, flips[0].upper, flips[0].lower)
    assert again.count == flips[0].count
    capped = votes_to_flip(votes, flips[0].upper, flips[0].lower, max_removals=1)
    assert capped.count in (None, 1) and capped.display in (">1", "1")
