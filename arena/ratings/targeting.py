"""Targeted voting: one rater's (or one address's, or one account's) votes favour one model far
beyond the consensus.

The outlier test (arena.ratings.raters) asks whether a rater votes like the consensus overall;
a rater who votes for one model whenever it appears, and honestly otherwise, passes it. This
test looks at one model at a time. For a group g (a rater id, an address hash: any key) and a
model m, take the n decisive votes of g on battles showing m and count W, the wins of m. The
consensus Bradley–Terry fit gives p_k = sigmoid(theta_m - theta_opponent), the consensus
probability that m wins vote k. Under

    H0: the group votes like the consensus (votes independent given the pairs shown),

W is Poisson-binomial(p_1 .. p_n), and the one-sided exact tail P(W >= w) (computed by the
Poisson-binomial recursion, no normal approximation) is a valid p-value for "g favours m":
P(tail <= a | H0) <= a for every a (the test is conservative because W is discrete). The
group's p-value is the smallest tail over the K models it has at least ``min_votes`` decisive
votes on, times K (Bonferroni, capped at 1), so whatever the dependence between the models'
counts (a win of m is a loss of its opponent),

    P(flag | honest group) = P(K * min_m tail_m < alpha | H0) <= alpha.

The bound is per group and holds for any grouping of honest votes: an address shared by many
honest raters is one honest group. It assumes the consensus is the truth; the consensus is
estimated from votes that include the group's own, which pulls it toward the group (slightly
conservative for an honest group, a loss of power against a large adversary). A consensus
dragged far from the truth (by rigged votes rivalling the honest ones) makes heavy honest
raters, and addresses shared by many, look as if they favoured the target's rivals
(benchmarks/rigging.py measures it). Ties, both-bad votes and votes on models the consensus
does not know carry no information and are skipped.

Power: a rater who favours a model lifts W above its expectation sum p_k by about (1 - p) per
rigged vote; when every vote on a mid-table model (p ≈ 1/2) is rigged, W = n and the tail is
about 2^-n, so about log2(K / alpha) rigged votes are flagged: 11 for K = 20, alpha = 0.01.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy.special import expit

from arena.ratings.bradley_terry import BradleyTerryFit
from arena.ratings.votes import MODEL_A, MODEL_B, _outcome_codes


@dataclass(frozen=True)
class TargetCheck:
    """The targeted-voting verdict on one group.

    model: the most favoured model (smallest tail; None when no model was tested); n: the
    group's decisive votes involving it; wins: how many of them it won; expected: the consensus
    expectation of those wins (sum of p_k); p_value: the Bonferroni-adjusted p-value of the
    group (min(1, tested * tail)); tested: the number of models tested (the Bonferroni factor).
    """

    group: object
    flagged: bool
    model: str | None
    n: int
    wins: int
    expected: float
    p_value: float
    tested: int

    def as_dict(self) -> dict:
        return asdict(self)


def poisson_binomial_tail(p: Sequence[float] | np.ndarray, at_least: int) -> float:
    """P(W >= at_least) for W the number of successes of independent trials with success
    probabilities ``p`` (float [n] in [0, 1]); exact, by the Poisson-binomial recursion."""
    p = np.asarray(p, dtype=np.float64).ravel()
    if ((p < 0) | (p > 1)).any():
        raise ValueError("p must hold probabilities in [0, 1]")
    return float(_tails(p, np.zeros(len(p), dtype=np.int64), np.array([int(at_least)]))[0])


def _tails(p: np.ndarray, cell: np.ndarray, at_least: np.ndarray) -> np.ndarray:
    """P(W_c >= at_least[c]) for every cell c, W_c Poisson-binomial over the p with cell == c.

    p: float [E]; cell: int [E] in 0..C-1, sorted; at_least: int [C]. Cells are processed in
    batches of similar size (powers of two, padded with p = 0, which adds no success), so the
    cost is about sum_c n_c^2 and the Python loop runs over trials, not cells.
    """
    n_cells = len(at_least)
    out = np.zeros(n_cells)
    sizes = np.bincount(cell, minlength=n_cells)
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    out[at_least <= 0] = 1.0
    live = (at_least > 0) & (at_least <= sizes)  # more wins than trials: probability 0
    size_class = np.ceil(np.log2(np.maximum(sizes, 1))).astype(np.int64)
    for k in np.unique(size_class[live]):
        cells = np.flatnonzero(live & (size_class == k))
        width = int(sizes[cells].max())
        position = np.arange(width)
        take = starts[cells, None] + position[None, :]
        inside = position[None, :] < sizes[cells, None]
        trials = np.where(inside, p[np.where(inside, take, 0)], 0.0)  # [c, width]
        pmf = np.zeros((len(cells), width + 1))
        pmf[:, 0] = 1.0
        for j in range(width):
            q = trials[:, j : j + 1]
            head = pmf[:, : j + 2]
            shifted = head[:, :-1] * q
            head *= 1.0 - q
            head[:, 1:] += shifted
        # Sum the upper tail directly (no 1 - cdf), so tiny p-values keep their precision.
        tail = np.cumsum(pmf[:, ::-1], axis=1)[:, ::-1]
        out[cells] = np.clip(tail[np.arange(len(cells)), at_least[cells]], 0.0, 1.0)
    return out


def check_targeted_voting(
    consensus: BradleyTerryFit,
    group: Sequence | np.ndarray,
    model_a: Sequence | np.ndarray,
    model_b: Sequence | np.ndarray,
    winner,
    *,
    alpha: float = 0.01,
    min_votes: int = 1,
) -> list[TargetCheck]:
    """Test every group for votes that favour one model beyond the consensus.

    consensus: a fit with ``models`` and ``theta`` (logits), e.g. a BradleyTerryFit.
    group, model_a, model_b, winner: per-vote columns [V]; group keys are any hashable
    (rater ids, address hashes); winner as ``AggregatedVotes`` accepts ("model_a", "model_b",
    "tie", "tie (bothbad)", "both_bad" or codes 0..3). A model is tested for a group when the
    group has at least ``min_votes`` decisive votes on it. Returns one TargetCheck per group
    (sorted by group), flagged when its p-value < alpha, so P(flag | honest group) <= alpha.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha={alpha!r} must be in (0, 1)")
    if min_votes < 1:
        raise ValueError(f"min_votes={min_votes!r} must be >= 1")
    keys = pd.Series(group if isinstance(group, np.ndarray | pd.Series) else list(group))
    n = len(keys)
    if not (len(model_a) == len(model_b) == len(winner) == n):
        raise ValueError("group, model_a, model_b and winner must have the same length")
    if n == 0:
        return []
    group_id, names = pd.factorize(keys.astype(object), sort=True)
    index = pd.Index(list(consensus.models), dtype=object)
    ia = index.get_indexer(np.asarray(model_a, dtype=object))  # -1: unknown to the consensus
    ib = index.get_indexer(np.asarray(model_b, dtype=object))
    codes = _outcome_codes(winner)
    decisive = (ia >= 0) & (ib >= 0) & ((codes == MODEL_A) | (codes == MODEL_B))
    ia, ib = ia[decisive].astype(np.int64), ib[decisive].astype(np.int64)
    a_won = codes[decisive] == MODEL_A
    voter = group_id[decisive].astype(np.int64)
    theta = np.asarray(consensus.theta, dtype=np.float64)
    p_a = expit(theta[ia] - theta[ib])
    # Each decisive vote is one trial for each of its two models.
    n_models = len(consensus.models)
    entry_cell = np.concatenate([voter * n_models + ia, voter * n_models + ib])
    entry_p = np.concatenate([p_a, 1.0 - p_a])
    entry_won = np.concatenate([a_won, ~a_won])
    cell_key, entry_cell = np.unique(entry_cell, return_inverse=True)
    by_cell = np.argsort(entry_cell, kind="stable")
    entry_cell, entry_p, entry_won = entry_cell[by_cell], entry_p[by_cell], entry_won[by_cell]
    n_cells = len(cell_key)
    trials = np.bincount(entry_cell, minlength=n_cells)
    wins = np.bincount(entry_cell, weights=entry_won, minlength=n_cells).astype(np.int64)
    expected = np.bincount(entry_cell, weights=entry_p, minlength=n_cells)
    tested = trials >= min_votes
    tail = np.ones(n_cells)
    keep = tested[entry_cell]
    if keep.any():
        # Re-index the tested cells densely so _tails sees 0..T-1.
        tested_cells = np.flatnonzero(tested)
        dense = np.full(n_cells, -1, dtype=np.int64)
        dense[tested_cells] = np.arange(len(tested_cells))
        tail[tested_cells] = _tails(entry_p[keep], dense[entry_cell[keep]], wins[tested_cells])
    cell_group, cell_model = cell_key // n_models, cell_key % n_models
    # Per group: the smallest tail first, then the larger excess of wins, then consensus order.
    rank_key = np.where(tested, tail, np.inf)
    order = np.lexsort((cell_model, -(wins - expected), rank_key, cell_group))
    first = order[np.flatnonzero(np.diff(cell_group[order], prepend=-1))]
    best = np.full(len(names), -1, dtype=np.int64)
    best[cell_group[first]] = first
    n_tested = np.bincount(cell_group[tested], minlength=len(names))
    out = []
    for g, name in enumerate(names):
        key = name.item() if isinstance(name, np.generic) else name
        b, k = int(best[g]), int(n_tested[g])
        if k == 0:
            out.append(TargetCheck(key, False, None, 0, 0, 0.0, 1.0, 0))
            continue
        p_value = min(1.0, k * float(tail[b]))
        out.append(
            TargetCheck(
                group=key,
                flagged=p_value < alpha,
                model=str(consensus.models[int(cell_model[b])]),
                n=int(trials[b]),
                wins=int(wins[b]),
                expected=float(expected[b]),
                p_value=p_value,
                tested=k,
            )
        )
    return out
