"""Simulated arenas with known true skills, to measure battle samplers (pure: numpy + scipy).

Used by ``benchmarks/sampling.py`` and the sampling unit tests. The sampler under test sees only
what production sees: ratings and variances refitted every ``refit_every`` rater actions
(production refits on a beat), never the true skills. ``simulate`` runs pairwise battles
(Bradley–Terry raters); ``simulate_kwise`` runs K-wise battles whose raters order the K shown
samples, or pick the best of K, as a Plackett–Luce model with the true skills says (one
submitted battle is one action, as in K-Sort Arena).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit
from scipy.stats import kendalltau

from arena.ratings.plackett_luce import laplace_plackett_luce
from arena.sampling import (
    KwiseSamplingConfig,
    ModelState,
    SamplingConfig,
    choose_battle,
    choose_kwise_battle,
    uniform_pair,
    uniform_set,
)


def laplace_bradley_terry(
    wins: np.ndarray, prior_variance: float = 1.0, iterations: int = 25
) -> tuple[np.ndarray, np.ndarray]:
    """MAP Bradley–Terry skills under a N(0, prior_variance) prior, by Newton's method.

    wins: float [n, n], wins[i, j] = times i beat j. Returns (theta [n] in logits,
    covariance [n, n] in logits², the inverse Hessian: the Laplace posterior).
    """
    n = wins.shape[0]
    games = wins + wins.T
    theta = np.zeros(n)
    hessian = np.eye(n) / prior_variance
    for _ in range(iterations):
        p = expit(theta[:, None] - theta[None, :])
        grad = (wins - games * p).sum(axis=1) - theta / prior_variance
        w = games * p * (1.0 - p)
        hessian = np.diag(w.sum(axis=1)) - w + np.eye(n) / prior_variance
        step = np.linalg.solve(hessian, grad)
        theta = theta + step
        if np.max(np.abs(step)) < 1e-9:
            break
    return theta, np.linalg.inv(hessian)


@dataclass(frozen=True)
class SimulationResult:
    votes_to_target: int  # first vote count at which Kendall tau >= target (max_votes if never)
    reached: bool


def simulate(
    *,
    true_skills: np.ndarray,
    sampler: str,
    rng: np.random.Generator,
    target_tau: float = 0.9,
    max_votes: int = 20000,
    refit_every: int = 10,
    config: SamplingConfig | None = None,
) -> SimulationResult:
    """Run one simulated arena until the fitted ranking reaches Kendall tau >= target_tau.

    true_skills: float [n] in logits. sampler: "active" or "uniform". Every vote is drawn from
    the Bradley–Terry model with the true skills; the fit is refreshed every refit_every votes.
    """
    n = len(true_skills)
    config = config or SamplingConfig()
    wins = np.zeros((n, n))
    prompts = {0: list(range(n))}
    theta, cov = laplace_bradley_terry(wins, config.prior_variance)
    order = list(range(n))
    votes_per_model = np.zeros(n, dtype=np.int64)
    for vote in range(1, max_votes + 1):
        if sampler == "active":
            states = {
                m: ModelState(rating=theta[m], variance=cov[m, m], votes=int(votes_per_model[m]))
                for m in range(n)
            }
            choice = choose_battle(
                prompts=prompts,
                states=states,
                rng=rng,
                config=config,
                covariance=cov,
                covariance_order=order,
            )
            a, b = int(choice.model_a), int(choice.model_b)
        elif sampler == "uniform":
            a, b = uniform_pair(n, rng)
        else:
            raise ValueError(f"sampler must be 'active' or 'uniform', got {sampler!r}")
        if rng.random() < expit(true_skills[a] - true_skills[b]):
            wins[a, b] += 1
        else:
            wins[b, a] += 1
        votes_per_model[[a, b]] += 1
        if vote % refit_every == 0:
            theta, cov = laplace_bradley_terry(wins, config.prior_variance)
            if kendalltau(theta, true_skills).statistic >= target_tau:
                return SimulationResult(votes_to_target=vote, reached=True)
    return SimulationResult(votes_to_target=max_votes, reached=False)


def plackett_luce_ranking(
    true_skills: np.ndarray, shown: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """The rater's ordering of the shown models, best first, drawn from Plackett–Luce.

    Gumbel-max: sorting ``skill + Gumbel noise`` draws a PL ranking (its first entry is the
    best-of-K pick, chosen with probability softmax(skill)).
    """
    shown = np.asarray(shown, dtype=np.int64)
    noisy = true_skills[shown] + rng.gumbel(size=len(shown))
    return shown[np.argsort(-noisy)]


def simulate_kwise(
    *,
    true_skills: np.ndarray,
    sampler: str,
    rng: np.random.Generator,
    target_tau: float = 0.9,
    max_actions: int = 5000,
    refit_every: int = 10,
    config: KwiseSamplingConfig | None = None,
) -> SimulationResult:
    """Run one K-wise arena until the fitted ranking reaches Kendall tau >= target_tau.

    sampler: "active" (``choose_kwise_battle``) or "uniform" (uniform k-sets). Each action is
    one battle of ``config.k`` models; the rater submits a full ranking or the best of K
    (``config.feedback``). The fit is the MAP Plackett–Luce model under the sampler's prior,
    refreshed every refit_every actions. ``votes_to_target`` counts actions.
    """
    n = len(true_skills)
    config = config or KwiseSamplingConfig()
    k = min(config.k, n)
    stages_per_battle = k - 1 if config.feedback == "ranking" else 1
    order = np.full((max_actions, k), -1, dtype=np.int64)
    stages = np.full(max_actions, stages_per_battle, dtype=np.int64)
    prompts = {0: list(range(n))}
    theta, cov = np.zeros(n), np.eye(n) * config.prior_variance
    model_index = list(range(n))
    shown_count = np.zeros(n, dtype=np.int64)
    for action in range(1, max_actions + 1):
        if sampler == "active":
            states = {
                m: ModelState(rating=theta[m], variance=cov[m, m], votes=int(shown_count[m]))
                for m in range(n)
            }
            choice = choose_kwise_battle(
                prompts=prompts,
                states=states,
                rng=rng,
                config=config,
                covariance=cov,
                covariance_order=model_index,
            )
            shown = np.array(choice.models, dtype=np.int64)
        elif sampler == "uniform":
            shown = np.array(uniform_set(n, k, rng), dtype=np.int64)
        else:
            raise ValueError(f"sampler must be 'active' or 'uniform', got {sampler!r}")
        order[action - 1] = plackett_luce_ranking(true_skills, shown, rng)
        shown_count[shown] += 1
        if action % refit_every == 0:
            theta, cov = laplace_plackett_luce(
                n,
                order[:action],
                stages[:action],
                prior_variance=config.prior_variance,
                theta0=theta,
            )
            if kendalltau(theta, true_skills).statistic >= target_tau:
                return SimulationResult(votes_to_target=action, reached=True)
    return SimulationResult(votes_to_target=max_actions, reached=False)
