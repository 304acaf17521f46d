"""Plackett–Luce K-wise ratings: agree with choix, reduce to Bradley–Terry, recover the truth."""

from __future__ import annotations

import math

import choix
import numpy as np
import pytest
from scipy.special import expit

from arena.ratings.bradley_terry import BradleyTerryOptions, fit_bradley_terry
from arena.ratings.plackett_luce import (
    PAIR_TIE,
    RANKING,
    TOP1,
    PlackettLuceOptions,
    RankedVotes,
    fit_plackett_luce,
    laplace_plackett_luce,
)
from arena.ratings.votes import AggregatedVotes, VoteFormatError

ALPHA = 400 / math.log(10)


def name(i: int) -> str:
    return f"m{i:02d}"


def pl_ranking(theta: np.ndarray, shown: np.ndarray, rng: np.random.Generator) -> list[int]:
    """A full ranking of `shown` drawn from Plackett–Luce (Gumbel-max: sort theta + Gumbel)."""
    noisy = theta[shown] + rng.gumbel(size=len(shown))
    return [int(m) for m in shown[np.argsort(-noisy)]]


def simulate_battles(theta, n_battles, rng, ks=(2, 3, 4), kinds=("ranking", "top1")):
    """(rankings as index lists, kinds): K uniform in ks, models uniform, kind uniform in kinds."""
    n = len(theta)
    rankings, out_kinds = [], []
    for _ in range(n_battles):
        k = int(rng.choice(ks))
        rankings.append(pl_ranking(theta, rng.choice(n, size=k, replace=False), rng))
        out_kinds.append(str(rng.choice(kinds)))
    return rankings, out_kinds


def named(rankings):
    return [[name(i) for i in r] for r in rankings]


def as_choix_top1(rankings, kinds):
    """Every ranking as its sequence of choices (winner, losers), top-1 as its first choice."""
    data = []
    for ranking, kind in zip(rankings, kinds, strict=True):
        stages = len(ranking) - 1 if kind == "ranking" else 1
        data.extend((ranking[s], ranking[s + 1 :]) for s in range(stages))
    return data


# --- agreement with choix ------------------------------------------------------------------


def test_full_rankings_match_choix_ilsr_mle():
    rng = np.random.default_rng(1)
    theta = rng.normal(0, 1, 10)
    rankings, _ = simulate_battles(theta, 1500, rng, ks=(3, 4), kinds=("ranking",))
    fit = fit_plackett_luce(RankedVotes.from_battles(named(rankings), "ranking"))
    assert fit.flags == []
    reference = choix.ilsr_rankings(10, rankings, alpha=0.0, tol=1e-13, max_iter=1000)
    np.testing.assert_allclose(fit.theta, reference - reference.mean(), atol=1e-8)
    np.testing.assert_allclose(fit.ratings, 1000 + ALPHA * fit.theta)
    assert fit.ratings.mean() == pytest.approx(1000.0)


def test_full_rankings_match_choix_opt_rankings_with_the_same_prior():
    rng = np.random.default_rng(2)
    theta = rng.normal(0, 1.5, 8)
    rankings, _ = simulate_battles(theta, 400, rng, ks=(4,), kinds=("ranking",))
    options = PlackettLuceOptions(regularize="always", prior_sd=200.0)
    fit = fit_plackett_luce(RankedVotes.from_battles(named(rankings)), options)
    # Our prior adds lam/2 |theta|^2 (lam = 1 / sd^2, sd in logits); choix adds alpha |theta|^2.
    lam = 1.0 / (200.0 / ALPHA) ** 2
    reference = choix.opt_rankings(8, rankings, alpha=lam / 2, tol=1e-12)
    np.testing.assert_allclose(fit.theta, reference, atol=1e-7)
    assert abs(reference.mean()) < 1e-9  # the isotropic MAP is centred by itself


def test_top1_of_k_matches_choix():
    rng = np.random.default_rng(3)
    theta = rng.normal(0, 1, 9)
    rankings, kinds = simulate_battles(theta, 2500, rng, ks=(2, 3, 4), kinds=("top1",))
    # A top-1 battle keeps only the winner: the order of the others must not matter.
    shuffled = [[r[0], *rng.permutation(r[1:]).tolist()] for r in rankings]
    fit = fit_plackett_luce(RankedVotes.from_battles(named(shuffled), "top1"))
    data = as_choix_top1(rankings, kinds)
    reference = choix.ilsr_top1(9, data, alpha=0.0, tol=1e-13, max_iter=1000)
    np.testing.assert_allclose(fit.theta, reference - reference.mean(), atol=1e-8)
    lam = 0.3
    map_fit = fit_plackett_luce(
        RankedVotes.from_battles(named(shuffled), "top1"),
        PlackettLuceOptions(regularize="always", prior_sd=ALPHA / math.sqrt(lam)),
    )
    np.testing.assert_allclose(
        map_fit.theta, choix.opt_top1(9, data, alpha=lam / 2, tol=1e-12), atol=1e-7
    )


def test_rankings_top1_and_pairwise_votes_share_one_likelihood():
    rng = np.random.default_rng(4)
    theta = rng.normal(0, 1, 12)
    rankings, kinds = simulate_battles(theta, 2000, rng)
    kwise = RankedVotes.from_battles(named(rankings), kinds)
    a = rng.integers(0, 12, 1500)
    b = (a + rng.integers(1, 12, 1500)) % 12
    a_won = rng.random(1500) < expit(theta[a] - theta[b])
    pairwise = AggregatedVotes.from_votes(
        [name(i) for i in a], [name(i) for i in b], np.where(a_won, "model_a", "model_b")
    )
    fit = fit_plackett_luce(RankedVotes.concat(kwise, pairwise))
    data = as_choix_top1(rankings, kinds)
    data += [
        (int(w), [int(lo)])
        for w, lo in zip(np.where(a_won, a, b), np.where(a_won, b, a), strict=True)
    ]
    reference = choix.ilsr_top1(12, data, alpha=0.0, tol=1e-13, max_iter=1000)
    np.testing.assert_allclose(fit.theta, reference - reference.mean(), atol=1e-8)


# --- pairwise votes: the existing Bradley–Terry fit --------------------------------------


def pairwise_votes(theta, n_votes, rng, tie_rate=0.0):
    n = len(theta)
    a = rng.integers(0, n, n_votes)
    b = (a + rng.integers(1, n, n_votes)) % n
    winner = np.where(rng.random(n_votes) < expit(theta[a] - theta[b]), "model_a", "model_b")
    winner[rng.random(n_votes) < tie_rate] = "tie"
    return AggregatedVotes.from_votes([name(i) for i in a], [name(i) for i in b], winner)


@pytest.mark.parametrize("tie_rate", [0.0, 0.15])
def test_pairwise_only_equals_fit_bradley_terry(tie_rate):
    rng = np.random.default_rng(5)
    votes = pairwise_votes(rng.normal(0, 1, 10), 3000, rng, tie_rate)
    bt = fit_bradley_terry(votes)
    pl = fit_plackett_luce(votes)
    np.testing.assert_allclose(pl.ratings, bt.ratings, atol=1e-8)
    # BT's sandwich carries a 1e-5 * n_votes diagonal ridge; ours is the exact pseudo-inverse.
    np.testing.assert_allclose(pl.variance, bt.variance, rtol=2e-3)
    assert pl.flags == bt.flags == []
    assert pl.wins.tolist() == bt.wins.tolist() and pl.ties.tolist() == bt.ties.tolist()
    assert pl.battles.tolist() == bt.votes.tolist()


def test_pairwise_with_a_model_that_never_lost_matches_the_regularised_bt_fit():
    votes = AggregatedVotes.from_rows(
        ["a", "a", "b", "c", "b"],
        ["b", "c", "c", "a", "d"],
        ["model_a", "model_a", "model_a", "model_b", "model_b"],
        [20, 15, 12, 3, 9],
    )
    bt = fit_bradley_terry(votes, BradleyTerryOptions(anchor=("b", 1000.0)))
    pl = fit_plackett_luce(votes, PlackettLuceOptions(anchor=("b", 1000.0)))
    assert "regularized" in pl.flags and "infinite_mle" in pl.flags
    assert pl.flags == bt.flags
    np.testing.assert_allclose(pl.ratings, bt.ratings, atol=1e-7)
    assert pl.ratings[pl.models.index("b")] == 1000.0
    assert pl.variance[pl.models.index("b")] == 0.0
    assert pl.model_flags[pl.models.index("a")] == ["never_lost"]


def test_two_models_closed_form():
    # 300 wins to 100: theta difference log 3, Var = 1 / (n p (1 - p)) (observed information).
    votes = RankedVotes.from_battles([["x", "y"], ["y", "x"]], "ranking", counts=[300, 100])
    fit = fit_plackett_luce(votes, PlackettLuceOptions(ci="observed"))
    diff = fit.theta[0] - fit.theta[1]
    assert diff == pytest.approx(math.log(3), abs=1e-10)
    var_diff = fit.covariance[0, 0] + fit.covariance[1, 1] - 2 * fit.covariance[0, 1]
    assert var_diff == pytest.approx(1 / (400 * 0.75 * 0.25), rel=1e-9)
    # Correctly specified binomial data: the sandwich equals the observed information.
    sandwich = fit_plackett_luce(votes)
    np.testing.assert_allclose(sandwich.variance, fit.variance, rtol=1e-9)


def test_symmetric_top1_of_three_closed_form():
    # Each of a, b, c wins a third of the best-of-3 battles: equal strengths, and one choice
    # from three equals has information diag(p) - p p^T = (I - J/3) / 3.
    votes = RankedVotes.from_battles(
        [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"]], "top1", counts=[50, 50, 50]
    )
    fit = fit_plackett_luce(votes, PlackettLuceOptions(ci="observed"))
    np.testing.assert_allclose(fit.theta, 0.0, atol=1e-12)
    # H = 150 (I - J/3) / 3, so H^+ = (I - J/3) / 50 and Var(theta_i) = (2/3) / 50.
    np.testing.assert_allclose(np.diag(fit.covariance), (2 / 3) / 50, rtol=1e-9)


# --- simulation with known truth ------------------------------------------------------------


def test_simulation_recovers_the_true_strengths():
    rng = np.random.default_rng(6)
    truth = np.linspace(-2, 2, 15)
    rankings, kinds = simulate_battles(truth, 20000, rng)
    fit = fit_plackett_luce(RankedVotes.from_battles(named(rankings), kinds))
    error = fit.theta - (truth - truth.mean())
    se = np.sqrt(np.diag(fit.covariance))
    assert np.max(np.abs(error)) < 0.12  # SE ≈ 0.033 logits (≈ 6 rating points)
    assert np.max(np.abs(error / se)) < 3.5
    assert list(fit.order) == list(range(14, -1, -1))


def test_confidence_intervals_cover_95_percent():
    """Wald intervals of the centred ratings, 250 arenas x 10 models, both CI methods."""
    rng = np.random.default_rng(7)
    truth = np.linspace(-1.5, 1.5, 10)
    centred = 1000 + ALPHA * (truth - truth.mean())
    hits = {"sandwich": [], "observed": []}
    for _ in range(250):
        rankings, kinds = simulate_battles(truth, 300, rng)
        votes = RankedVotes.from_battles(named(rankings), kinds)
        for ci, out in hits.items():
            fit = fit_plackett_luce(votes, PlackettLuceOptions(ci=ci))
            assert fit.flags == []
            out.extend((fit.lower <= centred) & (centred <= fit.upper))
    for ci, out in hits.items():
        assert len(out) == 2500
        assert np.mean(out) == pytest.approx(0.95, abs=0.015), ci


def test_laplace_fit_matches_the_options_fit_with_the_same_prior():
    rng = np.random.default_rng(8)
    truth = rng.normal(0, 1, 7)
    rankings, kinds = simulate_battles(truth, 300, rng)
    order = np.full((len(rankings), 4), -1)
    for row, r in enumerate(rankings):
        order[row, : len(r)] = r
    stages = np.array(
        [len(r) - 1 if k == "ranking" else 1 for r, k in zip(rankings, kinds, strict=True)]
    )
    theta, cov = laplace_plackett_luce(7, order, stages, prior_variance=2.0)
    fit = fit_plackett_luce(
        RankedVotes.from_battles(named(rankings), kinds),
        PlackettLuceOptions(regularize="always", prior_sd=ALPHA * math.sqrt(2.0), ci="observed"),
    )
    np.testing.assert_allclose(theta, fit.theta, atol=1e-8)
    centring = np.eye(7) - 1 / 7
    np.testing.assert_allclose(centring @ cov @ centring, fit.covariance, atol=1e-10)


# --- data handling and degenerate input -----------------------------------------------------


def test_aggregation_merges_equivalent_battles():
    votes = RankedVotes.from_battles(
        [["a", "b", "c"], ["a", "c", "b"], ["a", "b", "c"], ["b", "a"], ["b", "a"], ["a", "b"]],
        ["top1", "top1", "ranking", "top1", "ranking", "tie"],
    )
    rows = {
        (int(k), tuple(votes.models[i] for i in o if i >= 0)): int(c)
        for k, o, c in zip(votes.kind, votes.order, votes.count, strict=True)
    }
    assert rows == {
        (TOP1, ("a", "b", "c")): 2,
        (RANKING, ("a", "b", "c")): 1,
        (RANKING, ("b", "a")): 2,
        (PAIR_TIE, ("a", "b")): 1,
    }
    assert votes.n_battles == 6


def test_concat_matches_models_by_name():
    kwise = RankedVotes.from_battles([["z", "y", "x"]], "ranking")
    pairwise = AggregatedVotes.from_votes(["w"], ["x"], ["tie"])
    both = RankedVotes.concat(kwise, pairwise)
    assert both.models == ("w", "x", "y", "z")
    fit = fit_plackett_luce(both)
    assert fit.battles.tolist() == [1, 2, 1, 1]
    assert fit.ties.tolist() == [1, 1, 0, 0]
    assert fit.wins.tolist() == [0, 0, 0, 1]


@pytest.mark.parametrize(
    ("rankings", "kinds", "message"),
    [
        ([["a"]], "ranking", "at least two"),
        ([["a", "b", "a"]], "ranking", "appears twice"),
        ([["a", "b", "c"]], "tie", "pairwise"),
        ([["a", "b"]], "best-of", "kind"),
    ],
)
def test_bad_battles_are_rejected(rankings, kinds, message):
    with pytest.raises(VoteFormatError, match=message):
        RankedVotes.from_battles(rankings, kinds)


def test_disconnected_and_unbeaten_data_is_regularised_and_finite():
    votes = RankedVotes.from_battles(
        [["a", "b", "c"], ["d", "e"], ["e", "d"]], "ranking", counts=[5, 3, 2]
    )
    fit = fit_plackett_luce(votes)
    assert {"disconnected", "infinite_mle", "regularized"} <= set(fit.flags)
    assert fit.components == [["a", "b", "c"], ["d", "e"]]
    assert np.all(np.isfinite(fit.ratings)) and np.all(np.isfinite(fit.variance))
    assert fit.ratings[0] > fit.ratings[1] > fit.ratings[2]
    assert fit.gradient_norm < 1e-8


def test_empty_and_single_model():
    empty = fit_plackett_luce(RankedVotes.empty())
    assert empty.flags == ["no_votes"] and len(empty.ratings) == 0
    with pytest.raises(ValueError, match="anchor"):
        fit_plackett_luce(RankedVotes.empty(), PlackettLuceOptions(anchor=("a", 1000.0)))
