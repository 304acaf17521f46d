"""Davidson tie model: closed form, independent MLE, known truth, interval coverage, limits."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.optimize

from arena.ratings import (
    AggregatedVotes,
    DavidsonOptions,
    fit_bradley_terry,
    fit_davidson,
)

ALPHA = 400 / math.log(10)


def simulate(theta: np.ndarray, nu: float, n_votes: int, rng):
    """Per-vote (model_a, model_b, winner) drawn from the Davidson model."""
    n = len(theta)
    a = rng.integers(0, n, n_votes)
    b = (a + rng.integers(1, n, n_votes)) % n
    pa, pb = np.exp(theta[a]), np.exp(theta[b])
    pt = nu * np.sqrt(pa * pb)
    u = rng.random(n_votes) * (pa + pb + pt)
    winner = np.where(u < pa, "model_a", np.where(u < pa + pb, "model_b", "tie"))
    names = np.array([f"m{i:02d}" for i in range(n)])
    return names[a], names[b], winner


def davidson_nll(params: np.ndarray, a, b, outcome) -> float:
    """Per-vote negative log-likelihood, theta_0 = 0, params = (theta_1.., log nu)."""
    theta = np.concatenate([[0.0], params[:-1]])
    log_nu = params[-1]
    ta, tb = theta[a], theta[b]
    tie = log_nu + (ta + tb) / 2
    log_d = np.logaddexp(np.logaddexp(ta, tb), tie)
    own = np.where(outcome == "model_a", ta, np.where(outcome == "model_b", tb, tie))
    return -float((own - log_d).sum())


@pytest.mark.parametrize(("w", "l", "t"), [(30, 12, 9), (5, 5, 1), (3, 40, 100)])
def test_two_models_closed_form(w, l, t):  # noqa: E741 (w wins, l losses, t ties)
    winner = ["model_a"] * w + ["model_b"] * l + ["tie"] * t
    votes = AggregatedVotes.from_votes(["x"] * (w + l + t), ["y"] * (w + l + t), winner)
    fit = fit_davidson(votes)
    x, y = fit.models.index("x"), fit.models.index("y")
    assert fit.theta[x] - fit.theta[y] == pytest.approx(math.log(w / l), abs=1e-9)
    assert fit.nu == pytest.approx(t / math.sqrt(w * l), rel=1e-9)
    assert fit.ratings.mean() == pytest.approx(1000.0)
    assert fit.flags == [] and fit.nu_lower < fit.nu < fit.nu_upper
    # Fitted probabilities are the observed frequencies (the two-model model is saturated) ...
    total = w + l + t
    assert fit.probabilities("x", "y") == pytest.approx((w / total, l / total, t / total))
    # ... so the sandwich equals the inverse information, which is the multinomial delta method:
    # var(log(w/l)) = 1/w + 1/l, and log nu = log t - (log w + log l) / 2.
    info = fit_davidson(votes, DavidsonOptions(ci="information"))
    assert np.allclose(fit.variance, info.variance, rtol=1e-8)
    var_d = 1 / w + 1 / l
    assert fit.variance[x] == pytest.approx(ALPHA**2 * var_d / 4, rel=1e-6)
    var_g = 1 / t + 1 / (4 * w) + 1 / (4 * l)
    assert fit.log_nu_se**2 == pytest.approx(var_g, rel=1e-6)


def test_fit_is_the_mle_of_an_independent_per_vote_likelihood():
    rng = np.random.default_rng(1)
    model_a, model_b, winner = simulate(rng.normal(0, 1, 5), 0.5, 2000, rng)
    winner = np.where((winner == "tie") & (rng.random(len(winner)) < 0.4), "both_bad", winner)
    votes = AggregatedVotes.from_votes(model_a, model_b, winner)
    for both_bad in ("tie", "drop"):
        fit = fit_davidson(votes, DavidsonOptions(both_bad=both_bad))
        keep = winner != "both_bad" if both_bad == "drop" else np.ones(len(winner), bool)
        index = {m: i for i, m in enumerate(fit.models)}
        a = np.array([index[m] for m in model_a[keep]])
        b = np.array([index[m] for m in model_b[keep]])
        outcome = winner[keep]

        best = scipy.optimize.minimize(
            davidson_nll, np.zeros(5), args=(a, b, outcome), method="BFGS", options={"gtol": 1e-9}
        )
        theta = np.concatenate([[0.0], best.x[:-1]])
        assert np.abs(fit.theta - (theta - theta.mean())).max() < 1e-5
        assert fit.nu == pytest.approx(math.exp(best.x[-1]), rel=1e-5)
        assert fit.gradient_norm < 1e-8


def test_simulation_recovers_known_strengths_and_tie_parameter():
    rng = np.random.default_rng(2)
    theta = np.linspace(-1.0, 1.0, 8)
    fit = fit_davidson(AggregatedVotes.from_votes(*simulate(theta, 0.8, 60_000, rng)))
    truth = 1000 + ALPHA * (theta - theta.mean())
    error = np.abs(fit.ratings - truth)
    assert (error < 3.5 * np.sqrt(fit.variance)).all(), error
    assert abs(math.log(fit.nu / 0.8)) < 3.5 * fit.log_nu_se
    assert abs(fit.nu - 0.8) < 0.03
    assert list(fit.rank) == list(range(8, 0, -1))
    assert fit.tie_probability_equal == pytest.approx(fit.nu / (2 + fit.nu))


def test_95_percent_intervals_cover_theta_and_nu_95_percent_of_the_time():
    rng = np.random.default_rng(3)
    theta = np.array([-0.8, -0.3, 0.0, 0.2, 0.5, 0.9])
    truth = 1000 + ALPHA * (theta - theta.mean())
    nu = 0.5
    covered, nu_covered = [], []
    for _ in range(400):
        fit = fit_davidson(AggregatedVotes.from_votes(*simulate(theta, nu, 1200, rng)))
        covered.extend((fit.lower <= truth) & (truth <= fit.upper))
        nu_covered.append(fit.nu_lower <= nu <= fit.nu_upper)
    coverage, nu_coverage = float(np.mean(covered)), float(np.mean(nu_covered))
    print(f"coverage theta {coverage:.4f} nu {nu_coverage:.4f}")
    assert 0.935 <= coverage <= 0.965, f"theta coverage {coverage:.3f}"
    assert 0.925 <= nu_coverage <= 0.975, f"nu coverage {nu_coverage:.3f}"


def test_without_ties_nu_is_zero_and_theta_is_the_plain_fit():
    rng = np.random.default_rng(4)
    model_a, model_b, winner = simulate(rng.normal(0, 1, 6), 0.0, 4000, rng)
    assert (winner != "tie").all()
    votes = AggregatedVotes.from_votes(model_a, model_b, winner)
    fit = fit_davidson(votes)
    plain = fit_bradley_terry(votes)
    assert fit.flags == ["no_ties"] and fit.nu == 0.0 and fit.nu_lower == 0.0
    assert np.abs(fit.ratings - plain.ratings).max() < 1e-8
    # Same intervals up to the plain sandwich's tiny arena-rank ridge.
    assert np.allclose(fit.variance, plain.variance, rtol=1e-3)
    # Likelihood-ratio upper bound: with 4000 decisive votes nu is at most a few thousandths.
    assert 0 < fit.nu_upper < 0.005
    # A handful of ties: nu is small and theta is close to the plain fit.
    few = winner.copy()
    few[:4] = "tie"
    fit_few = fit_davidson(AggregatedVotes.from_votes(model_a, model_b, few))
    assert 0 < fit_few.nu < 0.01
    shift = np.abs(fit_few.ratings - plain.ratings) / (plain.upper - plain.lower)
    assert shift.max() < 0.05


def test_both_bad_counts_as_tie_or_is_dropped():
    rng = np.random.default_rng(5)
    model_a, model_b, winner = simulate(rng.normal(0, 1, 5), 0.6, 3000, rng)
    winner = np.where((winner == "tie") & (rng.random(len(winner)) < 0.5), "tie (bothbad)", winner)
    votes = AggregatedVotes.from_votes(model_a, model_b, winner)
    as_tie = fit_davidson(votes)
    relabelled = AggregatedVotes.from_votes(
        model_a, model_b, np.where(winner == "tie (bothbad)", "tie", winner)
    )
    assert np.allclose(as_tie.ratings, fit_davidson(relabelled).ratings, atol=1e-10)
    keep = winner != "tie (bothbad)"
    dropped = fit_davidson(votes, DavidsonOptions(both_bad="drop"))
    without = fit_davidson(AggregatedVotes.from_votes(model_a[keep], model_b[keep], winner[keep]))
    assert np.allclose(dropped.ratings, without.ratings, atol=1e-10)
    assert dropped.nu == pytest.approx(without.nu) and dropped.nu < as_tie.nu
    assert dropped.method["both_bad"] == "drop"


def test_degenerate_data_is_finite_and_flagged():
    never_lost = AggregatedVotes.from_votes(
        ["a"] * 10 + ["b"] * 10,
        ["b"] * 10 + ["c"] * 10,
        ["model_a"] * 10 + ["tie"] * 5 + ["model_a"] * 5,
    )
    fit = fit_davidson(never_lost)
    assert {"infinite_mle", "regularized"} <= set(fit.flags)
    assert np.isfinite(fit.ratings).all() and np.isfinite(fit.variance).all()
    assert fit.table()[0]["model"] == "a"
    all_ties = fit_davidson(AggregatedVotes.from_votes(["a", "b"], ["b", "c"], ["tie", "tie"]))
    assert "no_decisive_votes" in all_ties.flags and math.isfinite(all_ties.nu)
    assert np.allclose(all_ties.ratings, 1000.0)
    assert fit_davidson(AggregatedVotes.empty()).flags == ["no_votes"]
    anchored = fit_davidson(never_lost, DavidsonOptions(anchor=("c", 0.0)))
    assert anchored.ratings[2] == 0.0 and anchored.variance[2] == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="ci="):
        DavidsonOptions(ci="bootstrap")
