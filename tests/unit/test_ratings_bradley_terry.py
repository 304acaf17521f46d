"""Bradley–Terry ratings: closed forms, exact MLE, simulated coverage, degenerate data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from arena.ratings import AggregatedVotes, BradleyTerryOptions, fit_bradley_terry, rank_intervals
from arena.ratings.votes import VoteFormatError

ALPHA = 400 / math.log(10)  # rating points per logit


def simulate(skills: np.ndarray, n_votes: int, rng, tie_rate: float = 0.1):
    """Per-vote arrays (model_a, model_b, winner) from a Bradley–Terry model with ties."""
    n = len(skills)
    a = rng.integers(0, n, n_votes)
    b = (a + rng.integers(1, n, n_votes)) % n
    p = 1 / (1 + np.exp(-(skills[a] - skills[b])))
    u = rng.random(n_votes)
    tie = rng.random(n_votes) < tie_rate
    winner = np.where(tie, "tie", np.where(u < p, "model_a", "model_b"))
    names = np.array([f"m{i:02d}" for i in range(n)])
    return names[a], names[b], winner


def exact_mle(model_a, model_b, winner, models, weights=None) -> np.ndarray:
    """Independent per-vote Newton solve of the tie-as-half-win likelihood; centred logits."""
    index = {m: i for i, m in enumerate(models)}
    a = np.array([index[m] for m in model_a])
    b = np.array([index[m] for m in model_b])
    y = np.select(
        [np.asarray(winner) == "model_a", np.asarray(winner) == "model_b"], [1.0, 0.0], 0.5
    )
    w = np.ones(len(a)) if weights is None else weights
    n = len(models)
    x = np.zeros((len(a), n))
    x[np.arange(len(a)), a] = 1
    x[np.arange(len(a)), b] = -1
    theta = np.zeros(n)
    for _ in range(50):
        p = 1 / (1 + np.exp(-(x @ theta)))
        grad = x.T @ (w * (y - p))
        hess = (x * (w * p * (1 - p))[:, None]).T @ x
        step = np.linalg.pinv(hess) @ grad
        theta = theta + step
        if np.abs(step).max() < 1e-13:
            break
    return theta - theta.mean()


def per_vote_gradient(fit, model_a, model_b, winner) -> np.ndarray:
    index = {m: i for i, m in enumerate(fit.models)}
    a = np.array([index[m] for m in model_a])
    b = np.array([index[m] for m in model_b])
    y = np.select(
        [np.asarray(winner) == "model_a", np.asarray(winner) == "model_b"], [1.0, 0.0], 0.5
    )
    r = y - 1 / (1 + np.exp(-(fit.theta[a] - fit.theta[b])))
    return np.bincount(a, r, len(fit.models)) - np.bincount(b, r, len(fit.models))


def test_two_models_mle_is_the_closed_form_log_odds():
    winner = ["model_a"] * 30 + ["model_b"] * 12 + ["tie"] * 8
    votes = AggregatedVotes.from_votes(["x"] * 50, ["y"] * 50, winner)
    fit = fit_bradley_terry(votes)
    log_odds = math.log((30 + 4) / (12 + 4))  # ties count half a win each
    ratings = dict(zip(fit.models, fit.ratings, strict=True))
    assert ratings["x"] - ratings["y"] == pytest.approx(ALPHA * log_odds, abs=1e-8)
    assert (ratings["x"] + ratings["y"]) / 2 == pytest.approx(1000.0, abs=1e-9)
    assert fit.flags == []


def test_two_models_closed_form_with_other_scale_and_anchor():
    votes = AggregatedVotes.from_votes(["x"] * 10, ["y"] * 10, ["model_a"] * 7 + ["model_b"] * 3)
    options = BradleyTerryOptions(scale=1.0, base=math.e, anchor=("y", 0.0))
    fit = fit_bradley_terry(votes, options)
    ratings = dict(zip(fit.models, fit.ratings, strict=True))
    assert ratings["y"] == 0.0
    assert ratings["x"] == pytest.approx(math.log(7 / 3), abs=1e-10)
    anchored = dict(zip(fit.models, fit.variance, strict=True))
    assert anchored["y"] == 0.0 and anchored["x"] > 0


def test_fit_is_the_exact_mle_within_a_hundredth_of_a_point():
    rng = np.random.default_rng(11)
    skills = rng.normal(0, 1.0, 25)
    model_a, model_b, winner = simulate(skills, 40_000, rng)
    fit = fit_bradley_terry(AggregatedVotes.from_votes(model_a, model_b, winner))
    gradient = per_vote_gradient(fit, model_a, model_b, winner)
    assert np.abs(gradient).max() < 1e-6, f"gradient at the fit: {np.abs(gradient).max():.2e}"
    newton = exact_mle(model_a, model_b, winner, fit.models)
    diff = np.abs(1000 + ALPHA * newton - fit.ratings).max()
    assert diff < 0.01, f"max distance to the Newton solve: {diff:.2e} rating points"


def test_reweighted_fit_is_the_exact_weighted_mle():
    rng = np.random.default_rng(5)
    skills = rng.normal(0, 1.0, 8)
    model_a, model_b, winner = simulate(skills, 3000, rng)
    fit = fit_bradley_terry(
        AggregatedVotes.from_votes(model_a, model_b, winner), BradleyTerryOptions(reweight=True)
    )
    pair = [tuple(sorted(p)) for p in zip(model_a, model_b, strict=True)]
    votes_of_pair = {p: pair.count(p) for p in set(pair)}
    weights = np.array([1 / max(votes_of_pair[p], 50) for p in pair])
    newton = exact_mle(model_a, model_b, winner, fit.models, weights)
    assert np.abs(1000 + ALPHA * newton - fit.ratings).max() < 0.01


def test_estimates_recover_known_skills():
    rng = np.random.default_rng(3)
    skills = np.linspace(-1.5, 1.5, 10)
    # No ties: the data come from the plain Bradley–Terry model whose skills are the truth.
    fit = fit_bradley_terry(
        AggregatedVotes.from_votes(*simulate(skills, 200_000, rng, tie_rate=0.0))
    )
    truth = 1000 + ALPHA * (skills - skills.mean())
    error = np.abs(fit.ratings - truth)
    half_width = (fit.upper - fit.lower) / 2
    assert error.max() < 10, f"max error {error.max():.2f} points"
    assert (error < 1.5 * half_width).all()
    assert list(fit.rank) == list(range(10, 0, -1))


def _coverage(ci: str, repetitions: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    skills = np.array([-1.0, -0.6, -0.3, 0.0, 0.2, 0.5, 0.9, 1.2])
    truth = 1000 + ALPHA * (skills - skills.mean())
    covered = []
    for rep in range(repetitions):
        votes = AggregatedVotes.from_votes(*simulate(skills, 1500, rng, tie_rate=0.0))
        options = BradleyTerryOptions(ci=ci, seed=rep, bootstrap_rounds=200)
        fit = fit_bradley_terry(votes, options)
        covered.extend((fit.lower <= truth) & (truth <= fit.upper))
    return float(np.mean(covered))


def test_sandwich_95_percent_intervals_cover_the_truth_about_95_percent_of_the_time():
    coverage = _coverage("sandwich", repetitions=300, seed=1)
    assert 0.93 <= coverage <= 0.97, f"observed coverage of 95% sandwich intervals: {coverage:.3f}"


def test_bootstrap_95_percent_intervals_cover_the_truth_about_95_percent_of_the_time():
    coverage = _coverage("bootstrap", repetitions=60, seed=2)
    assert 0.91 <= coverage <= 0.98, f"observed coverage of 95% bootstrap intervals: {coverage:.3f}"


def test_bootstrap_rounds_equal_refits_of_the_resampled_counts():
    rng = np.random.default_rng(8)
    votes = AggregatedVotes.from_votes(*simulate(rng.normal(0, 1, 6), 2000, rng))
    options = BradleyTerryOptions(ci="bootstrap", bootstrap_rounds=20, seed=123)
    fit = fit_bradley_terry(votes, options)
    resampled = np.random.default_rng(123).multinomial(
        votes.n_votes, votes.count / votes.n_votes, size=20
    )
    for b in (0, 7, 19):
        again = AggregatedVotes(
            votes.models, votes.model_a, votes.model_b, votes.outcome, resampled[b]
        )
        refit = fit_bradley_terry(again)
        assert np.abs(refit.ratings - fit.bootstrap_samples[b]).max() < 1e-6
    lower = np.quantile(fit.bootstrap_samples, 0.025, axis=0)
    assert np.allclose(fit.lower, lower)
    assert np.allclose(fit.variance, fit.bootstrap_samples.var(axis=0))
    same = fit_bradley_terry(votes, options)
    assert np.array_equal(same.lower, fit.lower), "a seed makes the bootstrap reproducible"


def test_rank_upper_bound_counts_models_clearly_above():
    ratings = np.array([1100.0, 1090.0, 1000.0, 900.0])
    lower = np.array([1080.0, 1070.0, 950.0, 880.0])
    upper = np.array([1120.0, 1110.0, 1075.0, 920.0])
    rank, rank_ub = rank_intervals(ratings, lower, upper)
    assert list(rank) == [1, 2, 3, 4]
    # model 3's upper bound 1075 is below the lower bounds 1080 of model 1 only.
    assert list(rank_ub) == [1, 1, 2, 4]


def test_never_lost_model_gets_a_finite_flagged_rating():
    model_a = ["champ"] * 20 + ["x"] * 10 + ["y"] * 10
    model_b = ["x"] * 10 + ["y"] * 10 + ["y"] * 10 + ["x"] * 10
    winner = ["model_a"] * 20 + ["model_a"] * 6 + ["model_b"] * 4 + ["model_a"] * 5 + ["tie"] * 5
    for ci in ("sandwich", "bootstrap"):
        fit = fit_bradley_terry(
            AggregatedVotes.from_votes(model_a, model_b, winner), BradleyTerryOptions(ci=ci, seed=0)
        )
        assert {"infinite_mle", "regularized"} <= set(fit.flags)
        assert "disconnected" not in fit.flags
        for values in (fit.ratings, fit.lower, fit.upper, fit.variance):
            assert np.isfinite(values).all()
        row = fit.table()[0]
        assert row["model"] == "champ" and "never_lost" in row["flags"]
        assert row["rank"] == 1 and row["wins"] == 20 and row["losses"] == 0


def test_never_won_model_is_flagged():
    fit = fit_bradley_terry(
        AggregatedVotes.from_votes(["a", "a", "b"], ["b", "c", "c"], ["model_a", "model_a", "tie"])
    )
    rows = {r["model"]: r for r in fit.table()}
    assert "never_won" in rows["c"]["flags"] and "never_lost" in rows["a"]["flags"]
    assert np.isfinite(fit.ratings).all()


def test_disconnected_comparison_graph_is_flagged_with_components():
    fit = fit_bradley_terry(
        AggregatedVotes.from_votes(
            ["a", "b", "a", "c", "d", "c"],
            ["b", "a", "b", "d", "c", "d"],
            ["model_a", "model_a", "tie", "model_a", "model_a", "model_b"],
        )
    )
    assert "disconnected" in fit.flags and "regularized" in fit.flags
    assert fit.components == [["a", "b"], ["c", "d"]]
    assert np.isfinite(fit.ratings).all() and np.isfinite(fit.variance).all()
    assert fit.ratings.mean() == pytest.approx(1000.0)


def test_no_votes_and_one_model_do_not_crash():
    empty = fit_bradley_terry(AggregatedVotes.empty())
    assert empty.flags == ["no_votes"] and empty.table() == []
    assert empty.matrices() == {"win_rate_matrix": [], "count_matrix": [], "predicted_matrix": []}
    z = np.zeros(0, dtype=np.int64)
    single = AggregatedVotes(("solo",), z, z, np.zeros(0, dtype=np.int8), z)
    fit = fit_bradley_terry(single)
    assert fit.flags == ["no_votes", "single_model"]
    assert fit.table()[0]["rating"] == 1000.0 and fit.table()[0]["flags"] == ["no_votes"]


def test_several_models_without_votes_are_flagged_not_crashed():
    z = np.zeros(0, dtype=np.int64)
    votes = AggregatedVotes(("a", "b", "c"), z, z, np.zeros(0, dtype=np.int8), z)
    fit = fit_bradley_terry(votes)
    assert fit.flags[0] == "no_votes" and "disconnected" in fit.flags
    assert fit.model_flags == [["no_votes"]] * 3
    assert (fit.ratings == 1000.0).all() and np.isfinite(fit.variance).all()


def test_unknown_outcome_names_the_row_and_the_allowed_values():
    with pytest.raises(VoteFormatError) as err:
        AggregatedVotes.from_votes(["a", "a", "a"], ["b", "b", "b"], ["model_a", "tie", "draw"])
    message = str(err.value)
    assert "row 2: winner 'draw' is not one of the allowed values" in message
    assert "'model_a'" in message and "'tie (bothbad)'" in message and "'both_bad'" in message


def test_anchor_must_name_a_model_with_votes():
    votes = AggregatedVotes.from_votes(["a"], ["b"], ["tie"])
    with pytest.raises(ValueError, match="anchor model 'zzz' has no votes"):
        fit_bradley_terry(votes, BradleyTerryOptions(anchor=("zzz", 1000.0)))


def test_bad_option_names_the_field():
    with pytest.raises(ValueError, match="significance"):
        BradleyTerryOptions(significance=1.5)
    with pytest.raises(ValueError, match="both_bad"):
        BradleyTerryOptions(both_bad="loss")


def test_both_bad_drop_and_tie_weight_zero_equal_removing_those_votes():
    rng = np.random.default_rng(4)
    model_a, model_b, winner = simulate(rng.normal(0, 1, 5), 3000, rng, tie_rate=0.2)
    winner = np.where((winner == "tie") & (rng.random(len(winner)) < 0.5), "both_bad", winner)
    full = AggregatedVotes.from_votes(model_a, model_b, winner)
    keep = winner != "both_bad"
    without_bad = AggregatedVotes.from_votes(model_a[keep], model_b[keep], winner[keep])
    dropped = fit_bradley_terry(full, BradleyTerryOptions(both_bad="drop"))
    assert np.allclose(dropped.ratings, fit_bradley_terry(without_bad).ratings, atol=1e-8)
    decisive = np.isin(winner, ["model_a", "model_b"])
    no_ties = AggregatedVotes.from_votes(model_a[decisive], model_b[decisive], winner[decisive])
    zero = fit_bradley_terry(full, BradleyTerryOptions(tie_weight=0.0))
    assert np.allclose(zero.ratings, fit_bradley_terry(no_ties).ratings, atol=1e-8)
    as_tie = fit_bradley_terry(full)
    relabelled = AggregatedVotes.from_votes(model_a, model_b, np.where(keep, winner, "tie"))
    assert np.allclose(as_tie.ratings, fit_bradley_terry(relabelled).ratings, atol=1e-10)


def test_matrices_and_counts():
    votes = AggregatedVotes.from_votes(
        ["a", "a", "a", "b", "c", "c"],
        ["b", "b", "b", "a", "a", "b"],
        ["model_a", "model_a", "tie", "model_a", "model_b", "tie"],
    )
    fit = fit_bradley_terry(votes)
    rows = {r["model"]: r for r in fit.table()}
    assert (rows["a"]["wins"], rows["a"]["losses"], rows["a"]["ties"]) == (3, 1, 1)
    assert rows["a"]["votes"] == 5 and rows["a"]["win_rate"] == pytest.approx(3.5 / 5)
    m = fit.matrices()
    order = [r["model"] for r in fit.table()]
    ia, ib, ic = order.index("a"), order.index("b"), order.index("c")
    assert m["count_matrix"][ia][ib] == 4 and m["count_matrix"][ib][ia] == 4
    assert m["win_rate_matrix"][ia][ib] == pytest.approx(2.5 / 4)
    assert m["win_rate_matrix"][ib][ia] == pytest.approx(1.5 / 4)
    assert m["win_rate_matrix"][ia][ia] is None and m["predicted_matrix"][ic][ic] is None
    p = m["predicted_matrix"][ia][ib]
    assert p + m["predicted_matrix"][ib][ia] == pytest.approx(1.0, abs=1e-5)
    assert 0.5 < p < 1
    assert m["count_matrix"][ib][ic] == 1 and m["win_rate_matrix"][ic][ib] == 0.5
