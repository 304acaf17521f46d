"""Active pair and K-wise set selection for arena battles (pure: numpy/scipy, no Django).

Which two models should the next rater compare? Uniform random pairing wastes most votes on
pairs whose order is already certain. Like Chatbot Arena's and K-Sort Arena's active sampling,
we weight each candidate pair by what one more vote on it would teach us about the ranking:

* ``d = θ_i - θ_j`` is the current rating difference and ``v`` its variance (from the full
  covariance when given, since ratings fitted on shared opponents are correlated; else
  ``var_i + var_j``).
* Under Bradley–Terry one comparison carries Fisher information ``I = p (1 - p)`` about ``d``
  (``p = σ(d)``), so it shrinks the posterior of ``d`` by the factor ``1 + I v``: the
  information gain is ``log(1 + I v)`` (the D-optimal design criterion).
* That gain only matters for the ranking while the pair's order is in doubt, so it is
  multiplied by ``u = Φ(-|d| / √v)``, the probability that the current order is wrong.
* The weight is ``(log(1 + I v) · u) ** sharpness``; pairs whose order is settled get almost
  nothing, which is exactly where uniform pairing wastes its votes.
* A model with fewer votes than the others (below ``min(provisional_votes, median votes)``)
  gets a boost that fades linearly to 1 as its votes come in, so a newcomer to an established
  arena is placed quickly; in a fresh arena, where every model is new, nobody is boosted.
* A floor: with probability ``floor`` the pair is drawn by a model-uniform rule (uniform model,
  then a uniform partner), so every model is drawn with probability ≥ ``floor / n_models``.

Ratings here are in natural log-odds units (θ, one unit = 400 / ln 10 ≈ 173.7 Elo points).

``choose_kwise_battle`` picks K models for a K-wise battle (K-Sort Arena style) by the same
score summed over the pairs the rater's answer reveals (see the K-wise section below); ratings
for it come from ``arena.ratings.plackett_luce``.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import expit, ndtr

ELO_PER_LOGIT = 400.0 / math.log(10.0)


class NoBattleAvailable(Exception):
    """Fewer than two eligible models share a prompt: no battle can be formed."""


@dataclass(frozen=True)
class ModelState:
    """What the sampler knows about one model: rating θ (logits), its variance (logits²), votes."""

    rating: float = 0.0
    variance: float = 1.0
    votes: int = 0


@dataclass(frozen=True)
class SamplingConfig:
    floor: float = 0.05  # share of model-uniform picks, in [0, 1]
    new_model_boost: float = 2.0  # extra weight factor for a model with no votes
    provisional_votes: int = 30  # the boost fades to nothing at this many votes
    prior_variance: float = 4.0  # variance (logits²) of a model without a fitted rating
    sharpness: float = 4.0  # exponent on the active scores: higher concentrates on the best pairs


@dataclass(frozen=True)
class BattleChoice:
    prompt: Hashable
    model_a: Hashable
    model_b: Hashable
    pair_probability: float  # probability with which this unordered pair was drawn


def state_from_elo(
    *, rating: float, variance: float, votes: int, center: float = 0.0
) -> ModelState:
    """Convert an Elo-scale rating (points) and variance (points²) to logit units."""
    return ModelState(
        rating=(rating - center) / ELO_PER_LOGIT,
        variance=max(variance, 0.0) / ELO_PER_LOGIT**2,
        votes=int(votes),
    )


def active_pair_scores(
    states: Sequence[ModelState],
    pairs: np.ndarray,
    config: SamplingConfig,
    covariance: np.ndarray | None = None,
) -> np.ndarray:
    """Unnormalised active-sampling weight of each pair.

    states: one per model index; pairs: int [P, 2] model indices; covariance: optional float
    [n, n] (logits²) of the ratings, indexed like states. Returns float64 [P] ≥ 0.
    """
    theta = np.array([s.rating for s in states], dtype=np.float64)
    var = np.array([max(s.variance, 1e-12) for s in states], dtype=np.float64)
    votes = np.array([s.votes for s in states], dtype=np.float64)
    i, j = pairs[:, 0], pairs[:, 1]
    d = theta[i] - theta[j]
    v = var[i] + var[j]
    if covariance is not None:
        v = np.maximum(covariance[i, i] + covariance[j, j] - 2.0 * covariance[i, j], 1e-12)
    p = expit(d)
    gain = np.log1p(p * (1.0 - p) * v)
    order_uncertain = ndtr(-np.abs(d) / np.sqrt(v))
    # A model is "new" relative to the others (a fresh arena where all are new boosts no one).
    reference = min(float(config.provisional_votes), float(np.median(votes)))
    fade = np.clip(1.0 - votes / reference, 0.0, 1.0) if reference > 0 else np.zeros_like(votes)
    boost = 1.0 + config.new_model_boost * fade
    return (gain * order_uncertain) ** config.sharpness * np.maximum(boost[i], boost[j])


def pair_probabilities(
    states: Sequence[ModelState],
    pairs: np.ndarray,
    config: SamplingConfig,
    covariance: np.ndarray | None = None,
) -> np.ndarray:
    """Probability of drawing each candidate pair (float64 [P], sums to 1), floor included."""
    n_pairs = len(pairs)
    if n_pairs == 0:
        raise NoBattleAvailable("no two eligible models share a prompt")
    scores = active_pair_scores(states, pairs, config, covariance)
    total = scores.sum()
    active = scores / total if total > 0 and np.isfinite(total) else np.full(n_pairs, 1 / n_pairs)
    # Model-uniform floor: a uniform model among those in some pair, then a uniform partner.
    present = np.unique(pairs)
    degree = np.bincount(pairs.ravel(), minlength=len(states)).astype(np.float64)
    floor = (1.0 / degree[pairs[:, 0]] + 1.0 / degree[pairs[:, 1]]) / len(present)
    probs = (1.0 - config.floor) * active + config.floor * floor
    return probs / probs.sum()


def choose_battle(
    *,
    prompts: Mapping[Hashable, Iterable[Hashable]],
    states: Mapping[Hashable, ModelState],
    rng: np.random.Generator,
    config: SamplingConfig | None = None,
    covariance: np.ndarray | None = None,
    covariance_order: Sequence[Hashable] = (),
) -> BattleChoice:
    """Choose a prompt and an ordered pair of models for the next battle.

    prompts: prompt key -> keys of the models with an eligible sample for that prompt.
    states: model key -> ModelState; models missing here get a prior state (no votes, centred
    at the mean rating, ``prior_variance``). covariance: optional [k, k] rating covariance
    (logits²) of the models in covariance_order; models outside it use their own variance.
    Sides are randomised. Raises NoBattleAvailable.
    """
    config = config or SamplingConfig()
    models = sorted({m for ms in prompts.values() for m in ms}, key=repr)
    index = {m: k for k, m in enumerate(models)}
    known = [states[m].rating for m in models if m in states]
    center = float(np.mean(known)) if known else 0.0
    model_states = [
        states.get(m, ModelState(rating=center, variance=config.prior_variance, votes=0))
        for m in models
    ]
    prompts_by_pair: dict[tuple[int, int], list[Hashable]] = {}
    for prompt, members in prompts.items():
        idx = sorted({index[m] for m in members})
        for a_pos, a in enumerate(idx):
            for b in idx[a_pos + 1 :]:
                prompts_by_pair.setdefault((a, b), []).append(prompt)
    pair_keys = list(prompts_by_pair)
    pairs = np.array(pair_keys, dtype=np.int64).reshape(-1, 2)
    full = None
    if covariance is not None:
        full = np.diag([s.variance for s in model_states])
        where = [(index[m], k) for k, m in enumerate(covariance_order) if m in index]
        rows = np.array([w[0] for w in where], dtype=np.int64)
        cols = np.array([w[1] for w in where], dtype=np.int64)
        full[np.ix_(rows, rows)] = np.asarray(covariance)[np.ix_(cols, cols)]
    probs = pair_probabilities(model_states, pairs, config, full)
    k = int(rng.choice(len(pairs), p=probs))
    a, b = pair_keys[k]
    candidates = prompts_by_pair[(a, b)]
    prompt = candidates[int(rng.integers(len(candidates)))]
    if rng.random() < 0.5:
        a, b = b, a
    return BattleChoice(
        prompt=prompt, model_a=models[a], model_b=models[b], pair_probability=float(probs[k])
    )


def uniform_pair(n_models: int, rng: np.random.Generator) -> tuple[int, int]:
    """A uniformly random unordered pair of distinct model indices (the baseline sampler)."""
    a, b = rng.choice(n_models, size=2, replace=False)
    return int(a), int(b)


# --- K-wise battles (K-Sort Arena style) -------------------------------------------------------
#
# A K-wise battle shows K models; the rater orders them (``feedback="ranking"``) or picks the
# best (``"top1"``), one action either way. Under Plackett–Luce a full ranking reveals the order
# of every pair in the set, and P(i ranked above j) = σ(θ_i - θ_j) exactly (the pairwise marginal
# of PL is Bradley–Terry), so the expected ranking-relevant information of showing S is the sum,
# over the pairs the feedback reveals, of the pair score above: ``log(1 + I v) · u`` (a heuristic:
# it ignores that the pairs of one ranking are not independent comparisons). A best-of-K
# pick reveals only the winner against the others: pair (i, j) counts with the probability that
# i or j wins, ``P_S(i) + P_S(j)`` (PL choice probabilities ``softmax(θ_S)``). The set weight is
# ``(Σ pair scores) ** sharpness`` times the largest new-model boost in the set; the floor draws a
# uniform model, then a uniform candidate set that contains it.

FEEDBACK_MODES = ("ranking", "top1")


@dataclass(frozen=True)
class KwiseSamplingConfig:
    k: int = 4  # models per battle (fewer when no prompt has k eligible models)
    feedback: str = "ranking"  # what a rater submits: "ranking" (order all k) or "top1"
    floor: float = 0.05  # share of model-uniform picks, in [0, 1]
    new_model_boost: float = 2.0
    provisional_votes: int = 30
    prior_variance: float = 4.0
    sharpness: float = 4.0
    max_candidates: int = 60000  # enumerate every k-set up to this many; else score a sample

    def __post_init__(self) -> None:
        if self.k < 2:
            raise ValueError(f"k={self.k} must be >= 2")
        if self.feedback not in FEEDBACK_MODES:
            raise ValueError(f"feedback={self.feedback!r} must be one of {FEEDBACK_MODES}")
        if not 0 <= self.floor <= 1:
            raise ValueError(f"floor={self.floor} must be in [0, 1]")


@dataclass(frozen=True)
class KwiseBattleChoice:
    prompt: Hashable
    models: tuple[Hashable, ...]  # K distinct models in the order to show them (randomised)
    set_probability: float  # probability with which this unordered set was drawn
    exhaustive: bool  # True when every candidate set was scored (else: among those scored)


def _pair_score_matrix(
    theta: np.ndarray, var: np.ndarray, covariance: np.ndarray | None
) -> np.ndarray:
    """[n, n] ranking-relevant information of one comparison of i and j (0 on the diagonal)."""
    d = theta[:, None] - theta[None, :]
    if covariance is not None:
        diag = np.diag(covariance)
        v = diag[:, None] + diag[None, :] - 2.0 * covariance
    else:
        v = var[:, None] + var[None, :]
    v = np.maximum(v, 1e-12)
    p = expit(d)
    score = np.log1p(p * (1.0 - p) * v) * ndtr(-np.abs(d) / np.sqrt(v))
    np.fill_diagonal(score, 0.0)
    return score


def _boost(votes: np.ndarray, config) -> np.ndarray:
    reference = min(float(config.provisional_votes), float(np.median(votes)))
    fade = np.clip(1.0 - votes / reference, 0.0, 1.0) if reference > 0 else np.zeros_like(votes)
    return 1.0 + config.new_model_boost * fade


def kwise_set_scores(
    states: Sequence[ModelState],
    sets: np.ndarray,
    config: KwiseSamplingConfig,
    covariance: np.ndarray | None = None,
) -> np.ndarray:
    """Unnormalised active weight of each candidate set.

    states: one per model index; sets: int [S, K] distinct model indices; covariance: optional
    float [n, n] (logits²). Returns float64 [S] ≥ 0.
    """
    theta = np.array([s.rating for s in states], dtype=np.float64)
    var = np.array([max(s.variance, 1e-12) for s in states], dtype=np.float64)
    votes = np.array([s.votes for s in states], dtype=np.float64)
    pair = _pair_score_matrix(theta, var, covariance)
    k = sets.shape[1]
    first, second = np.triu_indices(k, 1)
    a, b = sets[:, first], sets[:, second]  # [S, k(k-1)/2]
    revealed = pair[a, b]
    if config.feedback == "top1":
        z = theta[sets]
        win = np.exp(z - z.max(axis=1, keepdims=True))
        win /= win.sum(axis=1, keepdims=True)
        revealed = revealed * (win[:, first] + win[:, second])
    boost = _boost(votes, config)[sets].max(axis=1)
    return revealed.sum(axis=1) ** config.sharpness * boost


def kwise_set_probabilities(
    states: Sequence[ModelState],
    sets: np.ndarray,
    config: KwiseSamplingConfig,
    covariance: np.ndarray | None = None,
) -> np.ndarray:
    """Probability of drawing each candidate set (float64 [S], sums to 1), floor included.

    The floor picks a uniform model among those in some set, then a uniform set containing it,
    so every such model is shown with probability ≥ ``floor / n_present`` (≥ ``floor * K / n``
    when the sets are all K-subsets of n models).
    """
    n_sets = len(sets)
    if n_sets == 0:
        raise NoBattleAvailable("no two eligible models share a prompt")
    scores = kwise_set_scores(states, sets, config, covariance)
    total = scores.sum()
    active = scores / total if total > 0 and np.isfinite(total) else np.full(n_sets, 1 / n_sets)
    present = np.unique(sets)
    degree = np.bincount(sets.ravel(), minlength=len(states)).astype(np.float64)
    floor = np.zeros(n_sets)
    for column in range(sets.shape[1]):
        floor += 1.0 / degree[sets[:, column]]
    floor /= len(present)
    probs = (1.0 - config.floor) * active + config.floor * floor
    return probs / probs.sum()


@functools.lru_cache(maxsize=32)
def _combinations(members: tuple[int, ...], k: int) -> np.ndarray:
    """All k-subsets of members as int [C(m, k), k] rows (sorted); cached, read-only."""
    out = np.array(list(itertools.combinations(members, k)), dtype=np.int64).reshape(-1, k)
    out.flags.writeable = False
    return out


def _sampled_sets(
    groups: list[np.ndarray], k: int, pair: np.ndarray, size: int, rng: np.random.Generator
) -> np.ndarray:
    """About ``size`` distinct k-sets for arenas too large to enumerate, each within one group:
    half grown from a uniform model by adding partners with probability ∝ their summed pair
    score with the members so far (close, uncertain partners), half uniform."""
    n = pair.shape[0]
    sizes = np.array([math.comb(len(g), k) for g in groups], dtype=np.float64)
    which = rng.choice(len(groups), size=size, p=sizes / sizes.sum())
    allowed = np.zeros((size, n), dtype=bool)
    for g, members in enumerate(groups):
        allowed[np.ix_(which == g, members)] = True
    greedy = np.arange(size) % 2 == 0
    out = np.empty((size, k), dtype=np.int64)
    affinity = np.zeros((size, n))
    for step in range(k):
        weight = np.where(allowed, 1.0, 0.0)
        if step > 0:
            weight[greedy] = np.where(allowed[greedy], affinity[greedy] + 1e-9, 0.0)
        cumulative = np.cumsum(weight, axis=1)
        draw = rng.random(size) * cumulative[:, -1]
        pick = np.minimum((cumulative <= draw[:, None]).sum(axis=1), n - 1)
        out[:, step] = pick
        allowed[np.arange(size), pick] = False
        affinity += pair[pick]
    return np.unique(np.sort(out, axis=1), axis=0)


def choose_kwise_battle(
    *,
    prompts: Mapping[Hashable, Iterable[Hashable]],
    states: Mapping[Hashable, ModelState],
    rng: np.random.Generator,
    config: KwiseSamplingConfig | None = None,
    covariance: np.ndarray | None = None,
    covariance_order: Sequence[Hashable] = (),
) -> KwiseBattleChoice:
    """Choose a prompt and K distinct models (all with a sample for that prompt) to show.

    Same inputs as ``choose_battle``. K is ``config.k``, or the size of the largest prompt's
    model set when that is smaller (at least 2); only prompts with K eligible models are used,
    so a model eligible only on smaller prompts is left to pairwise battles. The display order
    is randomised. ``set_probability`` is exact when ``exhaustive`` (every K-set of every
    prompt scored, up to ``config.max_candidates``), else relative to the sampled candidates.
    Raises NoBattleAvailable when no prompt has two eligible models.
    """
    config = config or KwiseSamplingConfig()
    models = sorted({m for ms in prompts.values() for m in ms}, key=repr)
    index = {m: i for i, m in enumerate(models)}
    by_members: dict[tuple[int, ...], list[Hashable]] = {}
    for prompt, members in prompts.items():
        key = tuple(sorted({index[m] for m in members}))
        if len(key) >= 2:
            by_members.setdefault(key, []).append(prompt)
    if not by_members:
        raise NoBattleAvailable("no two eligible models share a prompt")
    k = min(config.k, max(len(key) for key in by_members))
    groups = [np.array(key, dtype=np.int64) for key in by_members if len(key) >= k]
    known = [states[m].rating for m in models if m in states]
    center = float(np.mean(known)) if known else 0.0
    model_states = [
        states.get(m, ModelState(rating=center, variance=config.prior_variance, votes=0))
        for m in models
    ]
    full = None
    if covariance is not None:
        full = np.diag([s.variance for s in model_states])
        where = [(index[m], j) for j, m in enumerate(covariance_order) if m in index]
        rows = np.array([w[0] for w in where], dtype=np.int64)
        cols = np.array([w[1] for w in where], dtype=np.int64)
        full[np.ix_(rows, rows)] = np.asarray(covariance)[np.ix_(cols, cols)]
    n_candidates = sum(math.comb(len(g), k) for g in groups)
    exhaustive = n_candidates <= config.max_candidates
    if exhaustive:
        blocks = [_combinations(tuple(g.tolist()), k) for g in groups]
        sets = blocks[0] if len(blocks) == 1 else np.unique(np.concatenate(blocks), axis=0)
    else:
        theta = np.array([s.rating for s in model_states])
        var = np.array([max(s.variance, 1e-12) for s in model_states])
        pair = _pair_score_matrix(theta, var, full)
        sets = _sampled_sets(groups, k, pair, min(config.max_candidates, 5000), rng)
    probs = kwise_set_probabilities(model_states, sets, config, full)
    pick = int(rng.choice(len(sets), p=probs))
    chosen = set(sets[pick].tolist())
    candidates = [p for key, ps in by_members.items() if chosen <= set(key) for p in ps]
    prompt = candidates[int(rng.integers(len(candidates)))]
    shown = rng.permutation(sets[pick])
    return KwiseBattleChoice(
        prompt=prompt,
        models=tuple(models[i] for i in shown),
        set_probability=float(probs[pick]),
        exhaustive=exhaustive,
    )


def uniform_set(n_models: int, k: int, rng: np.random.Generator) -> tuple[int, ...]:
    """A uniformly random set of k distinct model indices (the K-wise baseline sampler)."""
    return tuple(int(m) for m in rng.choice(n_models, size=k, replace=False))
