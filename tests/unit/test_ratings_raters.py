"""Rater hygiene: SPRT error rates by simulation, personal boards shrunk toward the consensus."""

from __future__ import annotations

import math

import numpy as np
import pytest

from arena.ratings import (
    AggregatedVotes,
    check_raters,
    fit_bradley_terry,
    personal_ratings,
    sprt_bounds,
)
from tests.unit.test_ratings_bradley_terry import ALPHA, simulate

SKILLS = np.linspace(-1.5, 1.5, 10)
NAMES = np.array([f"m{i:02d}" for i in range(10)])


@pytest.fixture(scope="module")
def consensus():
    rng = np.random.default_rng(0)
    return fit_bradley_terry(AggregatedVotes.from_votes(*simulate(SKILLS, 50_000, rng, 0.0)))


def crowd(kind: str, n_raters: int, n_votes: int, rng):
    """Per-vote columns for raters who vote by the truth ("honest"), by coin ("random") or
    against the truth ("adversarial"); a few ties mixed in."""
    total = n_raters * n_votes
    a = rng.integers(0, 10, total)
    b = (a + rng.integers(1, 10, total)) % 10
    p = 1 / (1 + np.exp(-(SKILLS[a] - SKILLS[b])))
    p = {"honest": p, "random": np.full(total, 0.5), "adversarial": 1 - p}[kind]
    winner = np.where(rng.random(total) < p, "model_a", "model_b")
    winner = np.where(rng.random(total) < 0.05, "tie", winner)
    rater = np.repeat([f"{kind}-{k:04d}" for k in range(n_raters)], n_votes)
    return rater, NAMES[a], NAMES[b], winner


def test_honest_raters_are_flagged_at_most_about_alpha_of_the_time(consensus):
    rng = np.random.default_rng(1)
    checks = check_raters(consensus, *crowd("honest", 3000, 200, rng))
    decisions = np.array([c.decision for c in checks])
    flagged = float(np.mean(decisions == "flagged"))
    # Wald: P(flag | H0) <= alpha / (1 - beta) = 0.0111; 3000 raters give a standard error 0.002.
    assert flagged <= 0.016, f"honest raters flagged {flagged:.4f}"
    assert np.mean(decisions == "cleared") > 0.97
    cleared_at = [c.decided_at for c in checks if c.decision == "cleared"]
    assert np.median(cleared_at) <= 30


def test_random_raters_are_flagged_with_high_power_within_a_few_dozen_votes(consensus):
    rng = np.random.default_rng(2)
    checks = check_raters(consensus, *crowd("random", 1000, 80, rng))
    decisions = np.array([c.decision for c in checks])
    flagged = float(np.mean(decisions == "flagged"))
    # Wald: P(clear | H1) <= beta / (1 - alpha) = 0.101, so power >= 0.9 up to truncation.
    assert flagged >= 0.85, f"random raters flagged {flagged:.3f}"
    assert np.mean(decisions == "cleared") <= 0.11
    assert np.median([c.decided_at for c in checks if c.flagged]) <= 40
    assert all(c.agreement is not None and c.agreement < 0.75 for c in checks if c.flagged)


def test_adversarial_raters_are_flagged_almost_at_once(consensus):
    rng = np.random.default_rng(3)
    # Against the random alternative every adversarial rater is flagged; against the
    # adversarial one Wald's beta still applies (P(clear | H1) <= 0.101).
    for alternative, power, median in (("random", 0.99, 12), ("adversarial", 0.88, 8)):
        checks = check_raters(
            consensus, *crowd("adversarial", 500, 40, rng), alternative=alternative
        )
        assert np.mean([c.flagged for c in checks]) >= power
        assert np.median([c.decided_at for c in checks]) <= median
    honest = check_raters(consensus, *crowd("honest", 1000, 200, rng), alternative="adversarial")
    assert np.mean([c.flagged for c in honest]) <= 0.016


def test_sprt_steps_are_wald_log_likelihood_ratios(consensus):
    # One rater, hand-made votes: the running LLR is the sum of log(0.5 / p_choice).
    i, j = 9, 0
    p = 1 / (1 + math.exp(-(consensus.theta[i] - consensus.theta[j])))
    winner = ["model_b", "tie", "model_b", "model_a", "model_b", "model_b"]
    checks = check_raters(
        consensus,
        ["r"] * 6,
        [NAMES[i]] * 6,
        [NAMES[j]] * 6,
        winner,
        order=[5, 0, 1, 2, 3, 4],  # the first row is the last vote
    )
    (check,) = checks
    lower, upper = sprt_bounds(0.01, 0.1)
    steps = {"model_a": math.log(0.5 / p), "model_b": math.log(0.5 / (1 - p)), "tie": 0.0}
    in_time = winner[1:] + winner[:1]
    path = np.cumsum([steps[w] for w in in_time])
    first = int(np.flatnonzero(path >= upper)[0])
    assert check.decision == "flagged" and check.decided_at == first + 1
    assert check.llr == pytest.approx(path[first])
    assert check.informative == sum(w != "tie" for w in in_time[: first + 1])
    assert upper == pytest.approx(math.log(0.9 / 0.01)) and lower == pytest.approx(
        math.log(0.1 / 0.99)
    )
    unknown = check_raters(consensus, ["r", "r"], ["zz", NAMES[0]], [NAMES[1], "yy"], winner[:2])
    assert unknown[0].decision == "undecided" and unknown[0].informative == 0
    with pytest.raises(ValueError, match="alpha"):
        sprt_bounds(0.6, 0.5)


def test_personal_ratings_equal_the_consensus_for_a_rater_who_agrees_in_expectation():
    rng = np.random.default_rng(4)
    base = AggregatedVotes.from_votes(*simulate(SKILLS[:6], 60, rng, tie_rate=0.1))
    # The crowd cast these very votes ten times over; the rater cast them once. The crowd's MLE
    # is then the rater's MLE too, so the posterior mode sits exactly on the prior's centre.
    crowd_votes = AggregatedVotes(
        base.models, base.model_a, base.model_b, base.outcome, base.count * 10
    )
    consensus = fit_bradley_terry(crowd_votes)
    assert consensus.flags == []
    mine = personal_ratings(base, consensus, rater="me", prior_sd=80.0)
    assert np.abs(mine.ratings - consensus.ratings).max() < 1e-8
    assert (mine.lower < mine.ratings).all() and list(mine.rank) == list(consensus.rank)
    assert mine.n_votes == 60 and mine.votes.sum() == 120


def test_personal_ratings_move_toward_the_raters_own_preferences(consensus):
    rng = np.random.default_rng(5)
    taste = SKILLS[::-1].copy()  # this rater likes what the crowd dislikes
    distances, previous = [], None
    for n_votes in (30, 300, 30_000):
        a, b, winner = simulate(taste, n_votes, rng, tie_rate=0.0)
        board = personal_ratings(AggregatedVotes.from_votes(a, b, winner), consensus)
        own = 1000 + ALPHA * (taste - taste.mean())
        distances.append(np.abs(board.ratings - own).max())
        # The posterior mode solves score(theta) = (theta - consensus) / prior_sd^2 (logits).
        index = {m: k for k, m in enumerate(board.models)}
        ia = np.array([index[m] for m in a])
        ib = np.array([index[m] for m in b])
        theta = (board.ratings - 1000) / ALPHA
        y = (winner == "model_a").astype(float)
        r = y - 1 / (1 + np.exp(-(theta[ia] - theta[ib])))
        score = np.bincount(ia, r, 10) - np.bincount(ib, r, 10)
        prior = (theta - consensus.theta) / (100.0 / ALPHA) ** 2
        assert np.abs(score - prior).max() < 1e-6
        if previous is not None:
            assert (np.abs(board.shift) >= np.abs(previous.shift) - 1e-9).sum() >= 8
        previous = board
    assert distances[0] > distances[1] > distances[2]
    assert distances[2] < 15, distances
    assert list(board.rank) == list(range(1, 11))  # m00 is this rater's favourite
    rows = board.table()
    assert rows[0]["model"] == "m00" and rows[0]["shift"] > 0


def test_personal_ratings_need_enough_votes_and_known_models(consensus):
    few = AggregatedVotes.from_votes(["m00"] * 29, ["m01"] * 29, ["model_a"] * 29)
    with pytest.raises(ValueError, match="29 counted votes"):
        personal_ratings(few, consensus, rater="r1")
    strange = AggregatedVotes.from_votes(["new"] * 40, ["m01"] * 40, ["model_a"] * 40)
    with pytest.raises(ValueError, match="'new'"):
        personal_ratings(strange, consensus)
    # A model the rater never saw keeps its consensus rating exactly.
    only_two = AggregatedVotes.from_votes(["m00"] * 40, ["m01"] * 40, ["model_a"] * 40)
    board = personal_ratings(only_two, consensus)
    assert np.allclose(board.ratings[2:], consensus.ratings[2:])
    assert board.ratings[0] > consensus.ratings[0] and board.ratings[1] < consensus.ratings[1]
