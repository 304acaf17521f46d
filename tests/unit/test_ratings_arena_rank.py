"""Agreement with LMArena's `arena-rank` package on the same votes, plain and reweighted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from arena.ratings import AggregatedVotes, BradleyTerryOptions, fit_bradley_terry
from tests.unit.test_ratings_bradley_terry import ALPHA, exact_mle, simulate

jnp = pytest.importorskip("jax.numpy", reason="arena-rank (dev extra) brings jax")
arena_rank_bt = pytest.importorskip("arena_rank.models.bradley_terry")
arena_rank_data = pytest.importorskip("arena_rank.utils.data_utils")


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(2024)
    skills = rng.normal(0, 1.2, 16)
    model_a, model_b, winner = simulate(skills, 60_000, rng, tie_rate=0.15)
    # LMArena's labels for a tie where both answers were bad.
    bad = (winner == "tie") & (rng.random(len(winner)) < 0.3)
    winner = np.where(bad, "tie (bothbad)", winner)
    # Uneven pair frequencies so that reweighting changes the answer.
    keep = rng.random(len(winner)) < np.where(model_a < model_b, 1.0, 0.2)
    return pd.DataFrame(
        {"model_a": model_a[keep], "model_b": model_b[keep], "winner": winner[keep]}
    )


@pytest.mark.parametrize("reweighted", [False, True], ids=["plain", "reweighted"])
def test_ratings_and_sandwich_intervals_agree_with_arena_rank(frame, reweighted):
    dataset = arena_rank_data.PairDataset.from_pandas(frame, reweighted=reweighted)
    theirs_model = arena_rank_bt.BradleyTerry(n_competitors=len(dataset.competitors))
    theirs = theirs_model.compute_ratings_and_cis(dataset, significance_level=0.05)

    votes = AggregatedVotes.from_votes(frame["model_a"], frame["model_b"], frame["winner"])
    ours = fit_bradley_terry(votes, BradleyTerryOptions(reweight=reweighted))
    assert list(ours.models) == list(theirs["competitors"])

    # arena-rank's L-BFGS stops a little short of the optimum: 0.5 points to it, 0.01 to the MLE.
    rating_gap = np.abs(np.asarray(theirs["ratings"]) - ours.ratings).max()
    assert rating_gap < 0.5, f"ratings differ from arena-rank by {rating_gap:.3f} points"
    pairs = [tuple(sorted(p)) for p in zip(frame["model_a"], frame["model_b"], strict=True)]
    per_pair = pd.Series(pairs).map(pd.Series(pairs).value_counts()).to_numpy()
    weights = 1 / np.maximum(per_pair, 50) if reweighted else None
    winner = frame["winner"].replace("tie (bothbad)", "tie")
    exact = 1000 + ALPHA * exact_mle(
        frame["model_a"], frame["model_b"], winner, ours.models, weights
    )
    assert np.abs(exact - ours.ratings).max() < 0.01

    # Sandwich intervals evaluated at the same ratings: bounds within 1% of the interval width.
    at_ours = arena_rank_bt.BradleyTerry(n_competitors=len(dataset.competitors))
    at_ours.params = {"ratings": jnp.asarray(ours.theta)}
    at_ours.fitted = True
    theirs_at_ours = at_ours.compute_ratings_and_cis(dataset, significance_level=0.05)
    width = ours.upper - ours.lower
    for key, mine in (("rating_lower", ours.lower), ("rating_upper", ours.upper)):
        gap = np.abs(np.asarray(theirs_at_ours[key]) - mine) / width
        assert gap.max() < 0.01, f"{key} differs by {gap.max():.2%} of the interval width"
    variance_ratio = np.asarray(theirs_at_ours["variances"]) / ours.variance
    assert np.allclose(variance_ratio, 1.0, rtol=0.02)
    # And at arena-rank's own (slightly unconverged) ratings the intervals are close too.
    gap = np.abs(np.asarray(theirs["rating_lower"]) - ours.lower) / width
    assert gap.max() < 0.05
