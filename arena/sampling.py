"""Active pair selection for arena battles (pure: numpy only, no Django).

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
"""

from __future__ import annotations

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
