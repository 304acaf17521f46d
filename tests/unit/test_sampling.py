"""Active pair selection: the weights do what the design says, and beat uniform in simulation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from arena.sampling import (
    ModelState,
    NoBattleAvailable,
    SamplingConfig,
    active_pair_scores,
    choose_battle,
    pair_probabilities,
    state_from_elo,
)
from arena.sampling_simulation import laplace_bradley_terry, simulate


def all_pairs(n: int) -> np.ndarray:
    return np.array(list(itertools.combinations(range(n), 2)))


def test_close_uncertain_pairs_outweigh_settled_ones():
    states = [ModelState(0.0, 0.05, 100), ModelState(0.1, 0.05, 100), ModelState(3.0, 0.05, 100)]
    scores = active_pair_scores(states, all_pairs(3), SamplingConfig())
    close, far_1, far_2 = scores  # (0,1), (0,2), (1,2)
    assert close > 100 * max(far_1, far_2)


def test_more_uncertainty_means_more_weight():
    config = SamplingConfig(new_model_boost=0.0)
    sure = active_pair_scores(
        [ModelState(0, 0.01, 50), ModelState(0.2, 0.01, 50)], all_pairs(2), config
    )
    unsure = active_pair_scores(
        [ModelState(0, 0.5, 50), ModelState(0.2, 0.5, 50)], all_pairs(2), config
    )
    assert unsure[0] > sure[0]


def test_covariance_shrinks_the_variance_of_a_difference():
    states = [ModelState(0.0, 1.0, 50), ModelState(1.0, 1.0, 50)]
    independent = active_pair_scores(states, all_pairs(2), SamplingConfig())
    correlated = active_pair_scores(
        states, all_pairs(2), SamplingConfig(), covariance=np.array([[1.0, 0.9], [0.9, 1.0]])
    )
    assert correlated[0] < independent[0]


def test_new_models_are_boosted_and_the_boost_fades():
    config = SamplingConfig(new_model_boost=2.0, provisional_votes=30)
    base = [ModelState(0.0, 0.2, 100), ModelState(0.0, 0.2, 100), ModelState(0.0, 0.2, 100)]
    pairs = all_pairs(3)
    even = pair_probabilities(base, pairs, config)
    newcomer = base[:2] + [ModelState(0.0, 0.2, 0)]
    boosted = pair_probabilities(newcomer, pairs, config)
    with_new = [k for k, (a, b) in enumerate(pairs) if 2 in (a, b)]
    assert boosted[with_new].sum() > even[with_new].sum() * 1.2
    settled = base[:2] + [ModelState(0.0, 0.2, 30)]
    np.testing.assert_allclose(pair_probabilities(settled, pairs, config), even)


def test_floor_keeps_every_model_drawable():
    # One model is far from the rest and certain: the active rule alone would starve it.
    states = [ModelState(0.0, 0.1, 500) for _ in range(9)] + [ModelState(20.0, 1e-4, 500)]
    pairs = all_pairs(10)
    config = SamplingConfig(floor=0.05)
    probs = pair_probabilities(states, pairs, config)
    per_model = np.zeros(10)
    for p, (a, b) in zip(probs, pairs, strict=True):
        per_model[[a, b]] += p
    assert per_model.min() >= config.floor / 10 - 1e-12
    assert probs.sum() == pytest.approx(1.0)


def test_choose_battle_uses_only_co_occurring_pairs_and_randomises_sides():
    prompts = {"p1": ["m1", "m2"], "p2": ["m2", "m3"], "p3": ["m4"]}
    rng = np.random.default_rng(0)
    seen_pairs, sides = set(), set()
    for _ in range(400):
        choice = choose_battle(prompts=prompts, states={}, rng=rng)
        assert choice.model_a != choice.model_b
        assert {choice.model_a, choice.model_b} <= set(prompts[choice.prompt])
        seen_pairs.add(frozenset((choice.model_a, choice.model_b)))
        sides.add(choice.model_a)
    assert seen_pairs == {frozenset(("m1", "m2")), frozenset(("m2", "m3"))}
    assert sides == {"m1", "m2", "m3"}


def test_no_battle_without_two_models_on_a_prompt():
    with pytest.raises(NoBattleAvailable):
        choose_battle(prompts={"p": ["m1"], "q": ["m2"]}, states={}, rng=np.random.default_rng())


def test_elo_conversion():
    state = state_from_elo(
        rating=1000 + 400 / np.log(10), variance=(400 / np.log(10)) ** 2, votes=3, center=1000
    )
    assert state.rating == pytest.approx(1.0) and state.variance == pytest.approx(1.0)


def test_laplace_fit_recovers_two_model_log_odds():
    wins = np.array([[0.0, 300.0], [100.0, 0.0]])
    theta, cov = laplace_bradley_terry(wins, prior_variance=1e6)
    assert theta[0] - theta[1] == pytest.approx(np.log(3.0), abs=1e-4)
    # Var of the difference = 1 / (n p (1 - p)) for one pair.
    assert cov[0, 0] + cov[1, 1] - 2 * cov[0, 1] == pytest.approx(1 / (400 * 0.75 * 0.25), rel=1e-3)


def test_active_sampling_needs_fewer_votes_than_uniform_in_simulation():
    skills = np.linspace(-4, 4, 12)
    needed = {"active": [], "uniform": []}
    for run in range(8):
        for sampler, out in needed.items():
            result = simulate(
                true_skills=skills,
                sampler=sampler,
                rng=np.random.default_rng(run),
                target_tau=0.85,
                max_votes=4000,
            )
            assert result.reached
            out.append(result.votes_to_target)
    ratio = np.mean(needed["uniform"]) / np.mean(needed["active"])
    assert ratio > 1.2, f"uniform / active votes = {ratio:.2f}"


def test_in_a_fresh_arena_nobody_is_boosted():
    config = SamplingConfig(new_model_boost=5.0, provisional_votes=30)
    pairs = all_pairs(3)
    for votes in (0, 5):
        fresh = [ModelState(0.0, 1.0, votes) for _ in range(3)]
        np.testing.assert_allclose(pair_probabilities(fresh, pairs, config), np.full(3, 1 / 3))
