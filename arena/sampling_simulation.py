"""Simulated arenas with known true skills, to measure pair samplers (pure: numpy + scipy).

Used by ``benchmarks/sampling.py`` and the sampling unit tests. The sampler under test sees only
what production sees: ratings and variances refitted every ``refit_every`` votes (production
refits on a beat), never the true skills.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit
from scipy.stats import kendalltau

from arena.sampling import ModelState, SamplingConfig, choose_battle, uniform_pair


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
