"""Rater hygiene: a sequential test for raters who disagree with the consensus, and personal
leaderboards shrunk toward it.

Outlier test (cf. FastChat / Chatbot Arena's anomalous-user detection). For each decisive vote
of a rater, in time order, the consensus Bradley–Terry fit gives p = sigmoid(theta_chosen -
theta_other), the consensus probability of the choice the rater made. Wald's sequential
probability ratio test compares

    H0: the rater chooses like the consensus, P(choice) = p,
    H1 ("random"): the rater answers at random, P(choice) = 1/2, or
    H1 ("adversarial"): the rater votes against the consensus, P(choice) = 1 - p,

adding log P1(choice) / P0(choice) per vote and stopping at the first crossing of
log((1 - beta) / alpha) (flag: accept H1) or log(beta / (1 - alpha)) (clear: accept H0). Wald's
bounds give P(flag | honest) <= alpha / (1 - beta) and P(clear | H1) <= beta / (1 - alpha) for
a test run to a decision; a rater whose votes run out first is "undecided". Ties, both-bad votes
and votes on models the consensus does not know carry no information and are skipped (they
still count in the vote index). A vote between equal models (p = 1/2) adds nothing, as it should.

Personal leaderboard: the maximum a posteriori Bradley–Terry fit on one rater's votes with a
Gaussian prior N(theta_consensus, prior_sd^2) on every model, so a model the rater never saw
keeps its consensus rating, and a rater's board moves away from the consensus only as far as
their votes justify. Intervals are the Laplace approximation (inverse Hessian of the posterior).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.linalg
from scipy.special import expit, log_expit
from scipy.stats import norm

from arena.ratings.bradley_terry import (
    BradleyTerryFit,
    BradleyTerryOptions,
    _build_problem,
    counts,
    rank_intervals,
    rating_rows,
)
from arena.ratings.style import _hessian, _newton_rows, _Penalty, _Rows
from arena.ratings.votes import MODEL_A, MODEL_B, AggregatedVotes, _outcome_codes

SPRT_ALTERNATIVES = ("random", "adversarial")
DECISIONS = ("flagged", "cleared", "undecided")
PERSONAL_MIN_VOTES = 30


def sprt_bounds(alpha: float = 0.01, beta: float = 0.1) -> tuple[float, float]:
    """Wald's (lower, upper) log-likelihood-ratio thresholds."""
    if not (0 < alpha < 1 and 0 < beta < 1 and alpha + beta < 1):
        raise ValueError(f"need 0 < alpha, beta and alpha + beta < 1 (got {alpha}, {beta})")
    return math.log(beta / (1 - alpha)), math.log((1 - beta) / alpha)


def llr_increments(logit_choice: np.ndarray, alternative: str = "random") -> np.ndarray:
    """log P1(choice) - log P0(choice) per vote, from the consensus logit of the choice made."""
    if alternative == "random":
        return math.log(0.5) - log_expit(logit_choice)
    if alternative == "adversarial":
        return log_expit(-logit_choice) - log_expit(logit_choice)
    raise ValueError(f"alternative={alternative!r} must be one of {SPRT_ALTERNATIVES}")


@dataclass(frozen=True)
class RaterCheck:
    """The SPRT verdict on one rater.

    decided_at: 1-based index, among the rater's votes in time order, of the vote at which the
    test stopped (None if undecided); llr: the log-likelihood ratio there (or after the last
    vote); informative: decisive votes on known models read up to that point; agreement: share
    of all the rater's informative votes that picked the consensus favourite.
    """

    rater: str
    decision: str
    decided_at: int | None
    n_votes: int
    informative: int
    llr: float
    agreement: float | None

    @property
    def flagged(self) -> bool:
        return self.decision == "flagged"

    def as_dict(self) -> dict:
        return {
            "rater": self.rater,
            "decision": self.decision,
            "decided_at": self.decided_at,
            "n_votes": self.n_votes,
            "informative": self.informative,
            "llr": self.llr,
            "agreement": self.agreement,
        }


def check_raters(
    consensus: BradleyTerryFit,
    rater: Sequence | np.ndarray,
    model_a: Sequence | np.ndarray,
    model_b: Sequence | np.ndarray,
    winner,
    *,
    order: Sequence | np.ndarray | None = None,
    alpha: float = 0.01,
    beta: float = 0.1,
    alternative: str = "random",
) -> list[RaterCheck]:
    """Run the SPRT on every rater; per-vote columns, in time order unless ``order`` (e.g.
    timestamps) says otherwise. Returns one RaterCheck per rater, sorted by rater id."""
    lower, upper = sprt_bounds(alpha, beta)
    raters = pd.Series(np.asarray(rater, dtype=object)).astype(str)
    n = len(raters)
    if not (len(model_a) == len(model_b) == len(winner) == n):
        raise ValueError("rater, model_a, model_b and winner must have the same length")
    if n == 0:
        return []
    index = {m: i for i, m in enumerate(consensus.models)}
    ia = pd.Series(np.asarray(model_a, dtype=object)).map(index)
    ib = pd.Series(np.asarray(model_b, dtype=object)).map(index)
    known = (ia.notna() & ib.notna()).to_numpy()
    ia = ia.fillna(0).to_numpy(dtype=np.int64)
    ib = ib.fillna(0).to_numpy(dtype=np.int64)
    codes = _outcome_codes(winner)
    decisive = known & ((codes == MODEL_A) | (codes == MODEL_B))
    logit_a = consensus.theta[ia] - consensus.theta[ib]
    logit_choice = np.where(codes == MODEL_A, logit_a, -logit_a)
    increments = np.where(decisive, llr_increments(logit_choice, alternative), 0.0)
    agrees = decisive & (logit_choice > 0)
    against = decisive & (logit_choice < 0)

    group, names = pd.factorize(raters, sort=True)
    time_key = np.arange(n) if order is None else np.asarray(order)
    perm = np.lexsort((np.arange(n), time_key, group))
    group, increments = group[perm], increments[perm]
    decisive, agrees, against = decisive[perm], agrees[perm], against[perm]
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    sizes = np.diff(np.r_[starts, n])
    csum = np.cumsum(increments)
    base = np.repeat(np.r_[0.0, csum[starts[1:] - 1]], sizes)
    llr = csum - base
    position = np.arange(n) - np.repeat(starts, sizes)  # 0-based within the rater
    informative_so_far = np.cumsum(decisive) - np.repeat(
        np.r_[0, np.cumsum(decisive)[starts[1:] - 1]], sizes
    )
    big = np.iinfo(np.int64).max
    hit_up = np.minimum.reduceat(np.where(llr >= upper, position, big), starts)
    hit_down = np.minimum.reduceat(np.where(llr <= lower, position, big), starts)
    n_agree = np.add.reduceat(agrees.astype(np.int64), starts)
    n_against = np.add.reduceat(against.astype(np.int64), starts)
    out = []
    for k, start in enumerate(starts):
        first = min(hit_up[k], hit_down[k])
        if first == big:
            decision, decided_at, at = "undecided", None, start + sizes[k] - 1
        else:
            decision = "flagged" if hit_up[k] < hit_down[k] else "cleared"
            decided_at, at = int(first) + 1, start + int(first)
        counted = n_agree[k] + n_against[k]
        out.append(
            RaterCheck(
                rater=str(names[k]),
                decision=decision,
                decided_at=decided_at,
                n_votes=int(sizes[k]),
                informative=int(informative_so_far[at]),
                llr=float(llr[at]),
                agreement=float(n_agree[k] / counted) if counted else None,
            )
        )
    return out


@dataclass
class PersonalRatings:
    """One rater's board on the consensus scale; arrays are [n] in ``models`` (consensus) order."""

    rater: str
    models: tuple[str, ...]
    ratings: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    consensus: np.ndarray  # the consensus ratings (the prior's centre)
    rank: np.ndarray
    rank_ub: np.ndarray
    votes: np.ndarray  # the rater's votes per model
    n_votes: int
    prior_sd: float
    iterations: int

    @property
    def shift(self) -> np.ndarray:
        """Personal minus consensus rating (points)."""
        return self.ratings - self.consensus

    def table(self) -> list[dict]:
        order = sorted(range(len(self.models)), key=lambda i: (-self.ratings[i], self.models[i]))
        return rating_rows(
            self.models,
            order,
            {
                "rating": self.ratings,
                "lower": self.lower,
                "upper": self.upper,
                "consensus": self.consensus,
                "shift": self.shift,
                "rank": counts(self.rank),
                "rank_ub": counts(self.rank_ub),
                "votes": counts(self.votes),
            },
        )


def personal_ratings(
    rater_votes: AggregatedVotes,
    consensus: BradleyTerryFit,
    *,
    rater: str = "",
    prior_sd: float = 100.0,
    min_votes: int = PERSONAL_MIN_VOTES,
    significance: float = 0.05,
) -> PersonalRatings:
    """MAP ratings from one rater's votes with the prior N(consensus, prior_sd^2) (rating points).

    Scale, tie weight and both_bad handling are the consensus fit's (from its ``method``);
    votes are not reweighted. Raises ValueError with fewer than ``min_votes`` counted votes or
    for a model the consensus does not rate.
    """
    if prior_sd <= 0:
        raise ValueError(f"prior_sd={prior_sd!r} must be > 0")
    method = consensus.method
    options = BradleyTerryOptions(
        scale=method.get("scale", 400.0),
        base=method.get("base", 10.0),
        tie_weight=method.get("tie_weight", 0.5),
        both_bad=method.get("both_bad", "tie"),
        significance=significance,
    )
    unknown = sorted(set(rater_votes.models) - set(consensus.models))
    if unknown:
        raise ValueError(f"the consensus has no rating for {', '.join(map(repr, unknown))}")
    position = np.array([consensus.models.index(m) for m in rater_votes.models], dtype=np.int64)
    n = len(consensus.models)
    mapped = AggregatedVotes(
        tuple(consensus.models),
        position[rater_votes.model_a] if len(position) else rater_votes.model_a,
        position[rater_votes.model_b] if len(position) else rater_votes.model_b,
        rater_votes.outcome,
        rater_votes.count,
    )
    p = _build_problem(mapped, options)
    n_votes = int(p.c.sum())
    if n_votes < min_votes:
        raise ValueError(
            f"rater {rater!r} has {n_votes} counted votes; a personal board needs {min_votes}"
        )
    alpha = options.alpha
    centre = consensus.theta
    rows = _Rows(n, p.ra, p.rb, np.zeros((len(p.c), 0)), p.y, p.w, p.c, np.zeros(len(p.c)))
    pen = _Penalty(lam=(alpha / prior_sd) ** 2, ridge=0.0, mean=centre)
    x, iterations = _newton_rows(rows, pen, centre.copy())
    cov = scipy.linalg.inv(_hessian(x, rows, pen))
    ratings = consensus.ratings + alpha * (x - centre)
    sd = alpha * np.sqrt(np.clip(np.diag(cov), 0, None))
    z = norm.ppf(1 - significance / 2)
    lower, upper = ratings - z * sd, ratings + z * sd
    rank, rank_ub = rank_intervals(ratings, lower, upper)
    per_model = np.bincount(p.ra, p.c, n) + np.bincount(p.rb, p.c, n)
    return PersonalRatings(
        rater=rater,
        models=tuple(consensus.models),
        ratings=ratings,
        lower=lower,
        upper=upper,
        consensus=consensus.ratings.copy(),
        rank=rank,
        rank_ub=rank_ub,
        votes=per_model.astype(np.int64),
        n_votes=n_votes,
        prior_sd=prior_sd,
        iterations=iterations,
    )


def consensus_probability(consensus: BradleyTerryFit, model_a: str, model_b: str) -> float:
    """P(model_a beats model_b) under the consensus fit."""
    i, j = consensus.models.index(model_a), consensus.models.index(model_b)
    return float(expit(consensus.theta[i] - consensus.theta[j]))
