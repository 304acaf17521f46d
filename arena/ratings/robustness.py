"""Rank robustness: the fewest votes whose removal flips two adjacent models on the leaderboard.

Broderick, Giordano & Meager ("An automatic finite-sample robustness metric", 2020/2023) showed
that dropping a handful of data points can reverse a conclusion; for LMArena-style boards,
"dropping 2 of 57,477 votes flips #1". For each adjacent pair (rank k above rank k + 1) this
module finds a small set of votes whose removal puts the lower model strictly above the upper
one, and verifies it with the exact Bradley–Terry refit (``fit_bradley_terry``, same options).

Search. The gap is delta = theta_upper - theta_lower (logits). Removing one vote of row r
(a, b, score y, weight w) changes it, to first order (the influence function), by
    -w (y - p_r) (v_a - v_b),   v = H^+ (e_upper - e_lower),
with p_r = sigmoid(theta_a - theta_b) and H the Hessian of the negative log-likelihood (+ prior).
Votes are removed in order of that change (most gap-closing first) until the first-order gap
is negative, the board is refitted, and the loop continues from the refit until the exact
refit flips the pair or ``max_removals`` votes are gone. The removal sequence is then shortened
by bisection on its prefix length (each probe an exact refit), so the reported count is verified:
removing exactly those ``count`` votes flips the pair. It is an upper bound on the true minimum
(an exhaustive search is exponential); the tests check it equals brute force on small boards.

Flipped means strictly: rating(lower) > rating(upper) + 1e-6 points (equal ratings are a tie,
not a reversal). With the plain fit's ties-as-half-wins and no prior, two models with w wins of
the upper, l losses and t ties flip after removing w - l + 1 wins (when l >= 1; with l = 0 no
removal puts the lower model strictly above, and the result is reported as ">cap").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.linalg
from scipy.special import expit

from arena.ratings.bradley_terry import (
    BradleyTerryFit,
    BradleyTerryOptions,
    _build_problem,
    _laplacian,
    _prior_precision,
    fit_bradley_terry,
)
from arena.ratings.votes import BOTH_BAD, MODEL_A, MODEL_B, OUTCOME_NAMES, TIE, AggregatedVotes

FLIP_TOL = 1e-6  # rating points
DEFAULT_MAX_REMOVALS = 1000


@dataclass(frozen=True)
class RankFlip:
    """How many votes it takes to swap ``upper`` (rank ``position``) with ``lower`` (the next).

    count: verified number of removed votes that flips the pair (None if not found);
    approximate: the first-order prediction from the full fit (None if no vote narrows the gap);
    removed: (model_a, model_b, outcome, votes) of the removed votes, largest influence first;
    refits: exact fits spent.
    """

    position: int
    upper: str
    lower: str
    gap: float  # rating points, upper - lower, full data
    n_votes: int
    count: int | None
    cap: int
    approximate: int | None
    removed: tuple[tuple[str, str, str, int], ...]
    refits: int

    @property
    def flipped(self) -> bool:
        return self.count is not None

    @property
    def display(self) -> str:
        """ "2" or ">1000"."""
        return str(self.count) if self.count is not None else f">{self.cap}"

    @property
    def fraction(self) -> float | None:
        """Share of all votes that must go (count / n_votes)."""
        return self.count / self.n_votes if self.count is not None and self.n_votes else None

    def as_dict(self) -> dict:
        return {
            "position": self.position,
            "upper": self.upper,
            "lower": self.lower,
            "gap": self.gap,
            "count": self.count,
            "display": self.display,
            "fraction": self.fraction,
            "approximate": self.approximate,
            "cap": self.cap,
            "removed": [
                {"model_a": a, "model_b": b, "outcome": o, "votes": k}
                for a, b, o, k in self.removed
            ],
        }


def rank_robustness(
    votes: AggregatedVotes,
    options: BradleyTerryOptions | None = None,
    max_removals: int = DEFAULT_MAX_REMOVALS,
    fit: BradleyTerryFit | None = None,
) -> list[RankFlip]:
    """One RankFlip per adjacent pair of the board (rank 1 vs 2, 2 vs 3, ...), in board order.

    ``fit`` may pass the full-data fit when the caller already has it (same votes and options).
    """
    options = options or BradleyTerryOptions()
    fit = fit or fit_bradley_terry(votes, options)
    order = fit.order
    return [
        _search(votes, options, fit, int(order[k]), int(order[k + 1]), k + 1, max_removals)
        for k in range(len(order) - 1)
    ]


def votes_to_flip(
    votes: AggregatedVotes,
    upper: str,
    lower: str,
    options: BradleyTerryOptions | None = None,
    max_removals: int = DEFAULT_MAX_REMOVALS,
) -> RankFlip:
    """The fewest votes (found as above) whose removal puts ``lower`` strictly above ``upper``.

    ``upper`` must currently be placed above ``lower`` (ValueError otherwise)."""
    options = options or BradleyTerryOptions()
    fit = fit_bradley_terry(votes, options)
    u, l_ = votes.models.index(upper), votes.models.index(lower)
    place = {int(m): k for k, m in enumerate(fit.order)}
    if place[u] > place[l_]:
        raise ValueError(f"{upper!r} is placed below {lower!r}; swap the arguments")
    return _search(votes, options, fit, u, l_, place[u] + 1, max_removals)


def _flipped(fit: BradleyTerryFit, upper: int, lower: int) -> bool:
    return bool(fit.ratings[lower] - fit.ratings[upper] > FLIP_TOL)


def _refit(
    votes: AggregatedVotes, removed: np.ndarray, options: BradleyTerryOptions
) -> BradleyTerryFit | None:
    """The exact fit without the removed votes; None when no vote is left (a level board)."""
    if int(votes.count.sum() - removed.sum()) == 0:
        return None
    return fit_bradley_terry(_minus(votes, removed), options)


def _influence(
    votes: AggregatedVotes,
    options: BradleyTerryOptions,
    fit: BradleyTerryFit,
    upper: int,
    lower: int,
) -> np.ndarray:
    """First-order change of theta_upper - theta_lower from removing one vote of each row
    (+inf for rows that carry no weight in the fit)."""
    n = votes.n_models
    p = _build_problem(votes, options)
    theta = fit.theta
    prob = expit(theta[p.pa] - theta[p.pb])
    lam = _prior_precision(p, options) if "regularized" in fit.flags else 0.0
    hess = _laplacian(n, p.pa, p.pb, p.m * prob * (1 - prob)).toarray()
    hess += lam * np.eye(n) if lam > 0 else np.ones((n, n)) / n  # gauge: 1 is H's null vector
    target = np.zeros(n)
    target[upper], target[lower] = 1.0, -1.0
    v = scipy.linalg.solve(hess, target, assume_a="sym")
    outcome = votes.outcome
    y = np.where(outcome == MODEL_A, 1.0, np.where(outcome == MODEL_B, 0.0, 0.5))
    is_tie = (outcome == TIE) | (outcome == BOTH_BAD)
    w = np.where(is_tie, 2.0 * options.tie_weight, 1.0)
    if options.both_bad == "drop":
        w = np.where(outcome == BOTH_BAD, 0.0, w)
    if options.reweight:
        lo, hi = np.minimum(votes.model_a, votes.model_b), np.maximum(votes.model_a, votes.model_b)
        _, pair = np.unique(lo * n + hi, return_inverse=True)
        pair_votes = np.bincount(pair, weights=votes.count)
        w = w / np.maximum(pair_votes[pair], options.min_pair_count)
    a, b = votes.model_a, votes.model_b
    change = -w * (y - expit(theta[a] - theta[b])) * (v[a] - v[b])
    return np.where(w > 0, change, np.inf)


def _search(
    votes: AggregatedVotes,
    options: BradleyTerryOptions,
    full: BradleyTerryFit,
    upper: int,
    lower: int,
    position: int,
    cap: int,
) -> RankFlip:
    alpha = options.alpha
    removed = np.zeros(len(votes.count), dtype=np.int64)
    sequence: list[tuple[int, int]] = []  # (row, votes) chunks in removal order
    refits, approximate = 0, None
    fit, flipped = full, _flipped(full, upper, lower)
    while not flipped and removed.sum() < cap:
        change = _influence(_minus(votes, removed), options, fit, upper, lower)
        left = votes.count - removed
        candidates = np.flatnonzero((change < 0) & (left > 0))
        if len(candidates) == 0:
            break
        candidates = candidates[np.argsort(change[candidates], kind="stable")]
        gap = (fit.ratings[upper] - fit.ratings[lower]) / alpha
        per_vote = change[candidates]
        cumulative = np.cumsum(per_vote * left[candidates])
        # Row where the first-order gap crosses below zero, and how many of its votes are needed.
        target = -gap - FLIP_TOL / alpha
        reach = np.flatnonzero(cumulative < target)
        budget = cap - int(removed.sum())
        chunks: list[tuple[int, int]] = []
        if len(reach):
            last = int(reach[0])
            before = cumulative[last - 1] if last else 0.0
            need_last = int(math.floor((target - before) / per_vote[last])) + 1
            need_last = min(max(need_last, 1), int(left[candidates[last]]))
            chunks = [(int(r), int(left[r])) for r in candidates[:last]]
            chunks.append((int(candidates[last]), need_last))
        else:
            chunks = [(int(r), int(left[r])) for r in candidates]
        step: list[tuple[int, int]] = []
        for row, k in chunks:
            k = min(k, budget)
            if k <= 0:
                break
            step.append((row, k))
            budget -= k
        if approximate is None:
            approximate = sum(k for _, k in chunks) if len(reach) else None
        for row, k in step:
            removed[row] += k
        sequence.extend(step)
        refit = _refit(votes, removed, options)
        refits += 1
        if refit is None:
            break
        fit, flipped = refit, _flipped(refit, upper, lower)
    count = None
    if flipped:
        total = int(removed.sum())
        lo, hi = 0, total  # prefix lo does not flip (the full board), prefix hi does
        while hi - lo > 1:
            mid = (lo + hi) // 2
            trial = _refit(votes, _prefix(sequence, mid, len(removed)), options)
            refits += 1
            if trial is not None and _flipped(trial, upper, lower):
                hi = mid
            else:
                lo = mid
        count = hi
        removed = _prefix(sequence, hi, len(removed))
    names = votes.models
    shown = [
        (names[votes.model_a[r]], names[votes.model_b[r]], OUTCOME_NAMES[votes.outcome[r]], k)
        for r, k in _merge(sequence, removed)
    ]
    return RankFlip(
        position=position,
        upper=names[upper],
        lower=names[lower],
        gap=float(full.ratings[upper] - full.ratings[lower]),
        n_votes=votes.n_votes,
        count=count,
        cap=cap,
        approximate=approximate,
        removed=tuple(shown) if count is not None else (),
        refits=refits,
    )


def _minus(votes: AggregatedVotes, removed: np.ndarray) -> AggregatedVotes:
    return AggregatedVotes(
        votes.models, votes.model_a, votes.model_b, votes.outcome, votes.count - removed
    )


def _prefix(sequence: list[tuple[int, int]], k: int, n_rows: int) -> np.ndarray:
    """Removal counts per row of the first ``k`` votes of the sequence."""
    out = np.zeros(n_rows, dtype=np.int64)
    for row, m in sequence:
        take = min(m, k)
        out[row] += take
        k -= take
        if k == 0:
            break
    return out


def _merge(sequence: list[tuple[int, int]], removed: np.ndarray) -> list[tuple[int, int]]:
    """Rows with removed votes, in first-removal order."""
    seen: list[int] = []
    for row, _ in sequence:
        if removed[row] > 0 and row not in seen:
            seen.append(row)
    return [(row, int(removed[row])) for row in seen]
