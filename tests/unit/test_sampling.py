"""Active pair and K-wise selection: the weights do what the design says, and beat uniform in
simulation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from arena.sampling import (
    KwiseSamplingConfig,
    ModelState,
    NoBattleAvailable,
    SamplingConfig,
    _pair_score_matrix,
    _sampled_sets,
    active_pair_scores,
    choose_battle,
    choose_kwise_battle,
    kwise_set_probabilities,
    kwise_set_scores,
    pair_probabilities,
    state_from_elo,
)
from arena.sampling_simulation import (
    laplace_bradley_terry,
    plackett_luce_ranking,
    simulate,
    simulate_kwise,
)


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


# --- K-wise battles ---------------------------------------------------------------------------


def all_sets(n: int, k: int) -> np.ndarray:
    return np.array(list(itertools.combinations(range(n), k)))


def test_kwise_sets_share_a_prompt_are_distinct_and_shown_in_random_order():
    prompts = {
        "p1": ["m1", "m2", "m3", "m4", "m5"],
        "p2": ["m4", "m5", "m6", "m7"],
        "p3": ["m8", "m9"],  # too small for K = 4: never used while 4-sets exist
    }
    rng = np.random.default_rng(0)
    firsts, sets = set(), set()
    for _ in range(300):
        choice = choose_kwise_battle(prompts=prompts, states={}, rng=rng)
        assert len(choice.models) == 4 == len(set(choice.models))
        assert set(choice.models) <= set(prompts[choice.prompt])
        assert 0 < choice.set_probability <= 1 and choice.exhaustive
        firsts.add(choice.models[0])
        sets.add(frozenset(choice.models))
    assert firsts == {f"m{i}" for i in range(1, 8)}
    assert len(sets) == 5 + 1  # C(5, 4) sets of p1 and the one set of p2


def test_kwise_k_shrinks_to_the_largest_prompt_and_needs_two_models():
    prompts = {"p": ["a", "b", "c"], "q": ["c", "d"]}
    choice = choose_kwise_battle(prompts=prompts, states={}, rng=np.random.default_rng(1))
    assert sorted(choice.models) == ["a", "b", "c"] and choice.prompt == "p"
    with pytest.raises(NoBattleAvailable):
        choose_kwise_battle(
            prompts={"p": ["a"], "q": ["b"]}, states={}, rng=np.random.default_rng()
        )


def test_kwise_with_k_2_is_the_pair_score():
    rng = np.random.default_rng(2)
    states = [
        ModelState(float(r), float(v), int(n))
        for r, v, n in zip(
            rng.normal(size=6), rng.uniform(0.05, 1, 6), rng.integers(0, 60, 6), strict=True
        )
    ]
    pairs = all_pairs(6)
    kwise = kwise_set_scores(states, pairs, KwiseSamplingConfig(k=2))
    np.testing.assert_allclose(kwise, active_pair_scores(states, pairs, SamplingConfig()))


def test_kwise_prefers_close_uncertain_sets_and_ranking_reveals_more_than_top1():
    states = [ModelState(0.1 * i, 0.05, 100) for i in range(4)] + [
        ModelState(3.0 + i, 0.05, 100) for i in range(4)
    ]
    sets = np.array([[0, 1, 2, 3], [0, 1, 4, 6], [4, 5, 6, 7]])
    ranking = kwise_set_scores(states, sets, KwiseSamplingConfig())
    assert ranking[0] > 50 * max(ranking[1], ranking[2])
    top1 = kwise_set_scores(states, sets, KwiseSamplingConfig(feedback="top1"))
    assert np.all(top1 < ranking)


def test_kwise_floor_keeps_every_model_drawable():
    # One model far away and certain: the active rule alone would never show it.
    states = [ModelState(0.0, 0.1, 500) for _ in range(9)] + [ModelState(20.0, 1e-4, 500)]
    sets = all_sets(10, 4)
    config = KwiseSamplingConfig(floor=0.05)
    probs = kwise_set_probabilities(states, sets, config)
    shown = np.zeros(10)
    for p, members in zip(probs, sets, strict=True):
        shown[members] += p
    assert probs.sum() == pytest.approx(1.0)
    assert shown[9] >= config.floor * 4 / 10 - 1e-12
    # The floor is a uniform set with probability `floor`, mixed into the active choice.
    active = kwise_set_probabilities(states, sets, KwiseSamplingConfig(floor=0.0))
    np.testing.assert_allclose(probs, 0.95 * active + 0.05 / len(sets))
    uniform = kwise_set_probabilities(states, sets, KwiseSamplingConfig(floor=1.0))
    np.testing.assert_allclose(uniform, 1 / len(sets))


def test_kwise_reported_probability_is_the_set_probability():
    states = {f"m{i}": ModelState(0.3 * i, 0.2 + 0.05 * i, 40) for i in range(6)}
    prompts = {"p": list(states)}
    choice = choose_kwise_battle(prompts=prompts, states=states, rng=np.random.default_rng(3))
    ordered = [states[f"m{i}"] for i in range(6)]
    sets = all_sets(6, 4)
    probs = kwise_set_probabilities(ordered, sets, KwiseSamplingConfig())
    chosen = sorted(int(m[1:]) for m in choice.models)
    row = next(r for r, s in enumerate(sets) if list(s) == chosen)
    assert choice.set_probability == pytest.approx(probs[row])


def test_kwise_large_arena_scores_a_sample_of_valid_sets():
    models = [f"m{i:03d}" for i in range(60)]
    states = {m: ModelState(0.05 * i, 0.3, 50) for i, m in enumerate(models)}
    config = KwiseSamplingConfig(max_candidates=500)
    rng = np.random.default_rng(4)
    for _ in range(20):
        choice = choose_kwise_battle(prompts={"p": models}, states=states, rng=rng, config=config)
        assert len(set(choice.models)) == 4 and not choice.exhaustive
        assert set(choice.models) <= set(models)
    # The sample favours close models: 4 uniform models of 60 lie within 12 places (0.6
    # logits) about 3% of the time; the score-grown half of the sample does far more often.
    sets = _sampled_sets(
        [np.arange(60)],
        4,
        _pair_score_matrix(np.array([s.rating for s in states.values()]), np.full(60, 0.3), None),
        400,
        rng,
    )
    assert len(sets) > 300 and np.all(np.diff(sets, axis=1) > 0)
    spans = 0.05 * (sets[:, -1] - sets[:, 0])
    assert np.mean(spans <= 0.6) > 0.08


def test_simulated_rater_orders_by_plackett_luce():
    rng = np.random.default_rng(5)
    skills = np.array([0.0, 1.0, 2.0])
    rankings = np.array([plackett_luce_ranking(skills, np.arange(3), rng) for _ in range(20000)])
    first = np.bincount(rankings[:, 0], minlength=3) / len(rankings)
    expected = np.exp(skills) / np.exp(skills).sum()
    np.testing.assert_allclose(first, expected, atol=4 * np.sqrt(0.25 / len(rankings)))
    # Pairwise marginal of a PL ranking is Bradley–Terry: P(0 above 2) = sigmoid(-2).
    position = np.argsort(rankings, axis=1)
    above = np.mean(position[:, 0] < position[:, 2])
    assert above == pytest.approx(1 / (1 + np.exp(2.0)), abs=0.01)


def test_kwise_active_needs_far_fewer_actions_than_uniform_pairs_in_simulation():
    skills = np.linspace(-4, 4, 12)
    pairs, kwise, kwise_uniform = [], [], []
    for run in range(8):
        result = simulate(
            true_skills=skills,
            sampler="uniform",
            rng=np.random.default_rng(run),
            target_tau=0.85,
            max_votes=4000,
        )
        assert result.reached
        pairs.append(result.votes_to_target)
        for sampler, out in (("active", kwise), ("uniform", kwise_uniform)):
            result = simulate_kwise(
                true_skills=skills,
                sampler=sampler,
                rng=np.random.default_rng(run),
                target_tau=0.85,
                max_actions=2000,
                refit_every=5,
            )
            assert result.reached
            out.append(result.votes_to_target)
    ratio = np.mean(pairs) / np.mean(kwise)
    assert ratio > 2.5, f"uniform pairs / active K-wise actions = {ratio:.2f}"
    assert np.mean(kwise) < np.mean(kwise_uniform)
