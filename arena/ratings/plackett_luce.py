"""Plackett–Luce ratings for K-wise battles (K-Sort Arena style), pairwise votes included.

A battle shows K models (K >= 2). The rater either orders all K (a full ranking) or picks the
best of K (top-1: the winner over the rest, the others unordered). Under Plackett–Luce a ranking
is a sequence of choices: the first-ranked model is chosen from all K with probability
``softmax(theta)``, the second from the remaining K - 1, and so on; a top-1 battle is the first
choice only. A pairwise vote is a K = 2 ranking, so it is Bradley–Terry's
``P(a beats b) = sigmoid(theta_a - theta_b)``: the two models share one likelihood and one scale.
A pairwise tie counts as the existing Bradley–Terry fit counts it: half a win and half a loss,
the vote weighing ``2 * tie_weight``; ``both_bad`` is a tie or dropped.

The fit maximises the (weighted) log-likelihood by a damped Newton method on the analytic
gradient and Hessian (the Hessian of one choice from set S is ``diag(p) - p p^T`` on S). When the
MLE does not exist (Hunter 2004: the directed graph "i was ranked above j" is not strongly
connected — a model never beaten, never winning, or a disconnected comparison graph) a Gaussian
prior with standard deviation ``prior_sd`` rating points keeps it finite and ``flags`` says so;
``regularize="always"`` applies that prior to every fit (a MAP estimate).

Identifiability: ratings are centred (mean ``init_rating``) unless a model is anchored. Reported
ratings are ``init_rating + alpha * theta`` with ``alpha = scale / ln(base)``, the same Elo-like
scale as ``bradley_terry.py``. Confidence intervals are Wald intervals from either the sandwich
covariance ``H^+ G H^+`` (default; ``G`` sums the outer products of each battle's score, so the
K - 1 choices of one ranking form one cluster) or the inverse observed information ``H^+``
(``ci="observed"``), where ``H^+`` is the pseudo-inverse on the sum-to-zero subspace (or the
inverse of ``H + lambda I`` under the prior).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.sparse.csgraph
import scipy.sparse.linalg
from scipy.stats import norm
from threadpoolctl import ThreadpoolController, threadpool_limits

from arena.ratings.bradley_terry import counts, rating_rows
from arena.ratings.votes import BOTH_BAD, MODEL_B, TIE, AggregatedVotes, VoteFormatError

# Battle kinds.
RANKING, TOP1, PAIR_TIE, PAIR_BOTH_BAD = 0, 1, 2, 3
KIND_NAMES = ("ranking", "top1", "tie", "both_bad")
KIND_VALUES: dict[str, int] = {
    "ranking": RANKING,
    "full": RANKING,
    "top1": TOP1,
    "best": TOP1,
    "tie": PAIR_TIE,
    "both_bad": PAIR_BOTH_BAD,
    "tie (bothbad)": PAIR_BOTH_BAD,
}
CI_METHODS = ("sandwich", "observed")
BOTH_BAD_MODES = ("tie", "drop")
REGULARIZE_MODES = ("auto", "always")
DENSE_MAX_MODELS = 1000  # above this the Newton system is solved with a sparse LU
NEWTON_STEP_TOL = 1e-10  # logits


@dataclass(frozen=True)
class RankedVotes:
    """Unique K-wise battles with counts.

    models: model names, index -> name (sorted).
    order: int64 [R, W] model indices, best first (for top-1 the winner, then the others sorted);
        -1 pads past a battle's size; W is the largest K.
    size: int64 [R] number of models shown (K >= 2).
    kind: int8 [R] RANKING / TOP1 / PAIR_TIE / PAIR_BOTH_BAD (the last two only with K = 2).
    count: int64 [R] number of battles with that row (> 0).
    """

    models: tuple[str, ...]
    order: np.ndarray
    size: np.ndarray
    kind: np.ndarray
    count: np.ndarray

    @property
    def n_models(self) -> int:
        return len(self.models)

    @property
    def n_battles(self) -> int:
        return int(self.count.sum())

    @classmethod
    def empty(cls) -> RankedVotes:
        z = np.zeros(0, dtype=np.int64)
        return cls((), np.zeros((0, 2), dtype=np.int64), z, np.zeros(0, dtype=np.int8), z.copy())

    @classmethod
    def from_battles(
        cls,
        rankings: Sequence[Sequence],
        kinds: str | Sequence = "ranking",
        counts: Sequence | np.ndarray | None = None,
    ) -> RankedVotes:
        """Aggregate battles given as model names, best first.

        rankings: [R] sequences of K >= 2 distinct model names: a full ranking (best first), or
        for ``top1`` the winner first and the others in any order, or for ``tie`` / ``both_bad``
        the two models of a tied pairwise vote. kinds: one name from ``KIND_VALUES`` (or a
        code) for all rows, or one per row. counts: [R] non-negative integers (default 1).
        Raises VoteFormatError naming the first bad row (0-based).
        """
        n_rows = len(rankings)
        if isinstance(kinds, str | int | np.integer):
            kinds = [kinds] * n_rows
        counts = np.ones(n_rows, dtype=np.int64) if counts is None else np.asarray(counts)
        if not (len(kinds) == n_rows == len(counts)):
            raise VoteFormatError("rankings, kinds and counts must have the same length")
        if n_rows == 0:
            return cls.empty()
        codes = np.empty(n_rows, dtype=np.int8)
        for row, kind in enumerate(kinds):
            code = KIND_VALUES.get(kind) if isinstance(kind, str) else kind
            if code is None or not 0 <= int(code) <= 3:
                allowed = ", ".join(repr(k) for k in KIND_VALUES)
                raise VoteFormatError(f"row {row}: kind {kind!r} is not one of {allowed}")
            codes[row] = int(code)
        counts = counts.astype(np.int64)
        if (counts < 0).any():
            row = int(np.flatnonzero(counts < 0)[0])
            raise VoteFormatError(f"row {row}: count {counts[row]} is negative")
        names = sorted({str(m) for ranking in rankings for m in ranking})
        index = {name: k for k, name in enumerate(names)}
        sizes = np.array([len(r) for r in rankings], dtype=np.int64)
        width = int(max(2, sizes.max()))
        order = np.full((n_rows, width), -1, dtype=np.int64)
        for row, ranking in enumerate(rankings):
            idx = [index[str(m)] for m in ranking]
            if len(idx) < 2:
                raise VoteFormatError(f"row {row}: a battle needs at least two models")
            if len(set(idx)) != len(idx):
                raise VoteFormatError(f"row {row}: a model appears twice in {list(ranking)!r}")
            if codes[row] in (PAIR_TIE, PAIR_BOTH_BAD) and len(idx) != 2:
                raise VoteFormatError(f"row {row}: a tie is a pairwise outcome (K = 2)")
            order[row, : len(idx)] = idx
        return cls._aggregate(tuple(names), order, sizes, codes, counts)

    @classmethod
    def from_pairwise(cls, votes: AggregatedVotes) -> RankedVotes:
        """Pairwise votes as K = 2 battles (a win is a ranking, a tie stays a tie)."""
        if len(votes.count) == 0:
            empty = cls.empty()
            return cls(votes.models, empty.order, empty.size, empty.kind, empty.count)
        a, b = votes.model_a.astype(np.int64), votes.model_b.astype(np.int64)
        b_won = votes.outcome == MODEL_B
        order = np.stack([np.where(b_won, b, a), np.where(b_won, a, b)], axis=1)
        kind = np.select(
            [votes.outcome == TIE, votes.outcome == BOTH_BAD], [PAIR_TIE, PAIR_BOTH_BAD], RANKING
        ).astype(np.int8)
        size = np.full(len(a), 2, dtype=np.int64)
        return cls._aggregate(votes.models, order, size, kind, votes.count.astype(np.int64))

    @classmethod
    def concat(cls, *parts: RankedVotes | AggregatedVotes) -> RankedVotes:
        """Merge K-wise and pairwise votes (models are matched by name)."""
        parts = tuple(p if isinstance(p, RankedVotes) else cls.from_pairwise(p) for p in parts)
        names = sorted({m for p in parts for m in p.models})
        index = {name: k for k, name in enumerate(names)}
        width = max([2] + [p.order.shape[1] for p in parts])
        orders, sizes, kinds, counts = [], [], [], []
        for p in parts:
            remap = np.array([index[m] for m in p.models] + [-1], dtype=np.int64)
            block = np.full((len(p.count), width), -1, dtype=np.int64)
            block[:, : p.order.shape[1]] = remap[p.order]  # -1 maps to remap[-1] = -1
            orders.append(block)
            sizes.append(p.size)
            kinds.append(p.kind)
            counts.append(p.count)
        if not orders:
            return cls.empty()
        return cls._aggregate(
            tuple(names),
            np.concatenate(orders),
            np.concatenate(sizes),
            np.concatenate(kinds),
            np.concatenate(counts),
        )

    @classmethod
    def _aggregate(
        cls,
        models: tuple[str, ...],
        order: np.ndarray,
        size: np.ndarray,
        kind: np.ndarray,
        count: np.ndarray,
    ) -> RankedVotes:
        """Canonicalise (top-1 losers sorted, tied pairs sorted, top-1 of 2 = ranking), merge."""
        keep = count > 0
        order, size, kind, count = order[keep].copy(), size[keep], kind[keep].copy(), count[keep]
        width = order.shape[1]
        if len(count) == 0:
            return cls(models, np.zeros((0, width), dtype=np.int64), size, kind, count)
        kind[(kind == TOP1) & (size == 2)] = RANKING
        big = np.iinfo(np.int64).max
        padded = np.where(order < 0, big, order)
        top1 = kind == TOP1
        padded[top1, 1:] = np.sort(padded[top1, 1:], axis=1)
        tie = (kind == PAIR_TIE) | (kind == PAIR_BOTH_BAD)
        padded[tie, :2] = np.sort(padded[tie, :2], axis=1)
        order = np.where(padded == big, -1, padded)
        key = np.column_stack([kind.astype(np.int64), order])
        unique, inverse = np.unique(key, axis=0, return_inverse=True)
        summed = np.bincount(inverse.ravel(), weights=count, minlength=len(unique))
        order = unique[:, 1:]
        return cls(
            models=models,
            order=order,
            size=(order >= 0).sum(axis=1).astype(np.int64),
            kind=unique[:, 0].astype(np.int8),
            count=summed.astype(np.int64),
        )


@dataclass(frozen=True)
class PlackettLuceOptions:
    """How to turn K-wise battles into ratings. Rating-valued fields are in rating points."""

    scale: float = 400.0
    base: float = 10.0
    init_rating: float = 1000.0
    tie_weight: float = 0.5
    both_bad: str = "tie"
    significance: float = 0.05
    ci: str = "sandwich"
    anchor: tuple[str, float] | None = None
    prior_sd: float = 400.0
    regularize: str = "auto"

    def __post_init__(self) -> None:
        checks = [
            ("scale", self.scale > 0, "must be > 0"),
            ("base", self.base > 1, "must be > 1"),
            ("tie_weight", 0 <= self.tie_weight <= 1, "must be in [0, 1]"),
            ("both_bad", self.both_bad in BOTH_BAD_MODES, f"must be one of {BOTH_BAD_MODES}"),
            ("significance", 0 < self.significance < 1, "must be in (0, 1)"),
            ("ci", self.ci in CI_METHODS, f"must be one of {CI_METHODS}"),
            ("prior_sd", self.prior_sd > 0, "must be > 0"),
            ("regularize", self.regularize in REGULARIZE_MODES, f"one of {REGULARIZE_MODES}"),
        ]
        for name, ok, rule in checks:
            if not ok:
                raise ValueError(f"{name}={getattr(self, name)!r} {rule}")

    @property
    def alpha(self) -> float:
        """Rating points per logit."""
        return self.scale / math.log(self.base)

    def method(self) -> dict:
        """JSON description of the method, stored with every snapshot."""
        out = {
            "model": "plackett_luce",
            "ci": self.ci,
            "significance": self.significance,
            "scale": self.scale,
            "base": self.base,
            "init_rating": self.init_rating,
            "tie_weight": self.tie_weight,
            "both_bad": self.both_bad,
            "prior_sd": self.prior_sd,
            "regularize": self.regularize,
        }
        if self.anchor is not None:
            out["anchor"] = {"model": self.anchor[0], "rating": self.anchor[1]}
        return out


@dataclass
class _Events:
    """Plackett–Luce choices: column 0 of ``members`` is chosen from the row's set.

    members: int [E, W] model indices, -1 padding; safe: the same with padding -> 0;
    mask: bool [E, W]; w: float [E] weight of one battle's choice; c: float [E] battle count;
    battle: int [E] the battle row the choice belongs to (a cluster for the sandwich).
    """

    n: int
    members: np.ndarray
    safe: np.ndarray
    mask: np.ndarray
    w: np.ndarray
    c: np.ndarray
    battle: np.ndarray
    n_battles: int
    battle_weight: np.ndarray  # float [B] weight of one battle (1, or 2 * tie_weight for a tie)
    battle_count: np.ndarray  # float [B]

    @property
    def wc(self) -> np.ndarray:
        return self.w * self.c


def _make_events(
    n: int,
    order: np.ndarray,
    stages: np.ndarray,
    weight: np.ndarray,
    count: np.ndarray,
    tie: np.ndarray | None = None,
) -> _Events:
    """Expand battles into choices: stage s of a battle picks order[s] from order[s:].

    order: int [B, W] best first, -1 padded; stages: int [B] number of sequential choices
    (K - 1 for a full ranking, 1 for top-1); weight, count: float [B]; tie: bool [B] rows
    that are tied pairs (two half-weighted choices, one each way).
    """
    n_rows, width = order.shape
    tie = np.zeros(n_rows, dtype=bool) if tie is None else tie
    members, w, c, battle = [], [], [], []
    rows = np.arange(n_rows)
    for s in range(max(width - 1, 0)):
        take = (stages > s) & ~tie
        block = np.full((int(take.sum()), width), -1, dtype=np.int64)
        block[:, : width - s] = order[take, s:]
        members.append(block)
        w.append(weight[take])
        c.append(count[take])
        battle.append(rows[take])
    if tie.any():
        for first, second in ((0, 1), (1, 0)):
            block = np.full((int(tie.sum()), width), -1, dtype=np.int64)
            block[:, 0], block[:, 1] = order[tie, first], order[tie, second]
            members.append(block)
            w.append(0.5 * weight[tie])
            c.append(count[tie])
            battle.append(rows[tie])
    members_all = np.concatenate(members) if members else np.zeros((0, width), dtype=np.int64)
    mask = members_all >= 0
    return _Events(
        n=n,
        members=members_all,
        safe=np.where(mask, members_all, 0),
        mask=mask,
        w=np.concatenate(w).astype(np.float64) if w else np.zeros(0),
        c=np.concatenate(c).astype(np.float64) if c else np.zeros(0),
        battle=np.concatenate(battle) if battle else np.zeros(0, dtype=np.int64),
        n_battles=n_rows,
        battle_weight=np.asarray(weight, dtype=np.float64),
        battle_count=np.asarray(count, dtype=np.float64),
    )


def _events_from_votes(votes: RankedVotes, options: PlackettLuceOptions) -> _Events:
    kind = votes.kind
    is_tie = (kind == PAIR_TIE) | (kind == PAIR_BOTH_BAD)
    weight = np.where(is_tie, 2.0 * options.tie_weight, 1.0)
    keep = (votes.count > 0) & (weight > 0)
    if options.both_bad == "drop":
        keep &= kind != PAIR_BOTH_BAD
    stages = np.where(kind == RANKING, votes.size - 1, 1)
    return _make_events(
        votes.n_models,
        votes.order[keep],
        stages[keep],
        weight[keep],
        votes.count[keep].astype(np.float64),
        is_tie[keep],
    )


def _probabilities(theta: np.ndarray, ev: _Events) -> tuple[np.ndarray, np.ndarray]:
    """(log-likelihood of each choice [E], choice probabilities [E, W], 0 on padding)."""
    z = np.where(ev.mask, theta[ev.safe], -np.inf)
    top = z.max(axis=1, initial=-np.inf, where=ev.mask) if len(z) else np.zeros(0)
    expz = np.exp(z - top[:, None])
    total = expz.sum(axis=1)
    loglik = z[:, 0] - top - np.log(total)
    return loglik, expz / total[:, None]


def _objective(theta: np.ndarray, ev: _Events, lam: float) -> float:
    loglik, _ = _probabilities(theta, ev)
    return float(-(ev.wc @ loglik) + 0.5 * lam * theta @ theta)


def _gradient_from(p: np.ndarray, theta: np.ndarray, ev: _Events, lam: float) -> np.ndarray:
    wc = ev.wc
    grad = np.bincount(ev.safe.ravel(), weights=(wc[:, None] * p).ravel(), minlength=ev.n)
    grad -= np.bincount(ev.members[:, 0], weights=wc, minlength=ev.n) if len(wc) else 0.0
    return grad + lam * theta


def _gradient(theta: np.ndarray, ev: _Events, lam: float) -> np.ndarray:
    return _gradient_from(_probabilities(theta, ev)[1], theta, ev, lam)


def _hessian(p: np.ndarray, ev: _Events, dense: bool) -> np.ndarray | scipy.sparse.csr_matrix:
    """sum_e w_e c_e (diag(p_e) - p_e p_e^T), without the prior."""
    n, width = ev.n, ev.safe.shape[1]
    vals = -(p[:, :, None] * p[:, None, :])
    diag = np.arange(width)
    vals[:, diag, diag] += p
    vals *= ev.wc[:, None, None]
    rows = np.broadcast_to(ev.safe[:, :, None], vals.shape).ravel()
    cols = np.broadcast_to(ev.safe[:, None, :], vals.shape).ravel()
    if dense:
        flat = np.bincount(rows * n + cols, weights=vals.ravel(), minlength=n * n)
        return flat.reshape(n, n)
    return scipy.sparse.csr_matrix((vals.ravel(), (rows, cols)), shape=(n, n))


def _newton_direction(hess, grad: np.ndarray, lam: float) -> np.ndarray:
    """Solve H delta = -grad; with no prior H is singular along 1, so theta_0 is held fixed."""
    n = len(grad)
    start = 0 if lam > 0 else 1
    delta = np.zeros(n)
    if n - start == 0:
        return delta
    if isinstance(hess, np.ndarray):
        h = hess[start:, start:] + lam * np.eye(n - start)
        try:
            delta[start:] = scipy.linalg.solve(h, -grad[start:], assume_a="pos")
        except (np.linalg.LinAlgError, scipy.linalg.LinAlgError):
            delta[start:] = scipy.linalg.lstsq(h, -grad[start:])[0]
    else:
        h = hess[start:, start:] + lam * scipy.sparse.identity(n - start, format="csr")
        delta[start:] = scipy.sparse.linalg.spsolve(h.tocsc(), -grad[start:])
    return delta


def _newton(
    ev: _Events, lam: float, theta0: np.ndarray | None = None, max_iter: int = 200
) -> tuple[np.ndarray, int]:
    """Damped Newton (Armijo backtracking) on the convex negative log-likelihood (+ prior)."""
    dense = ev.n <= DENSE_MAX_MODELS
    theta = np.zeros(ev.n) if theta0 is None else np.array(theta0, dtype=np.float64)
    f = _objective(theta, ev, lam)
    iteration = 0
    for iteration in range(1, max_iter + 1):
        _, p = _probabilities(theta, ev)
        grad = _gradient_from(p, theta, ev, lam)
        delta = _newton_direction(_hessian(p, ev, dense), grad, lam)
        slope = float(grad @ delta)
        if -slope <= 1e-12 * max(1.0, abs(f)):
            return theta + delta, iteration
        step = 1.0
        while True:
            candidate = theta + step * delta
            f_new = _objective(candidate, ev, lam)
            if f_new <= f + 1e-4 * step * slope or step < 1e-12:
                break
            step *= 0.5
        theta, f = candidate, f_new
        if np.max(np.abs(step * delta), initial=0.0) < NEWTON_STEP_TOL:
            return theta, iteration
    return theta, iteration


def _beats_pairs(ev: _Events) -> tuple[np.ndarray, np.ndarray]:
    """(winner, loser) index arrays: the chosen model beat every other member of its set."""
    width = ev.members.shape[1]
    winner = np.repeat(ev.members[:, 0], width - 1)
    loser = ev.members[:, 1:].ravel()
    keep = loser >= 0
    return winner[keep], loser[keep]


def _connectivity(ev: _Events) -> tuple[int, np.ndarray, int]:
    """(weak components, their labels, strong components of the 'ranked above' graph)."""
    n = ev.n
    winner, loser = _beats_pairs(ev)
    ones = np.ones(len(winner))
    directed = scipy.sparse.csr_matrix((ones, (winner, loser)), shape=(n, n))
    n_weak, labels = scipy.sparse.csgraph.connected_components(directed, directed=False)
    n_strong, _ = scipy.sparse.csgraph.connected_components(
        directed, directed=True, connection="strong"
    )
    return n_weak, labels, n_strong


def _prior_precision(ev: _Events, options: PlackettLuceOptions) -> float:
    """Precision of the N(0, prior_sd^2) prior in units of one average battle (as BT's)."""
    sd_logits = options.prior_sd / options.alpha
    total = ev.battle_count.sum()
    mean_weight = float(ev.battle_weight @ ev.battle_count / total) if total > 0 else 1.0
    return mean_weight / sd_logits**2


def _inverse_information(hess: np.ndarray, lam: float) -> np.ndarray:
    """(H + lam I)^-1, or without a prior the pseudo-inverse of H on the sum-to-zero subspace."""
    n = hess.shape[0]
    if lam > 0:
        return scipy.linalg.inv(hess + lam * np.eye(n))
    # H 1 = 0, so (H + c 11^T)^-1 = H^+ + 11^T / (c n^2).
    c = max(float(np.trace(hess)) / n**2, 1e-300)
    return scipy.linalg.inv(hess + c * np.ones((n, n))) - np.ones((n, n)) / (c * n * n)


def _score_covariance(theta: np.ndarray, ev: _Events) -> np.ndarray:
    """G = sum over battles of count * s_b s_b^T, s_b the score of one battle (all its choices)."""
    _, p = _probabilities(theta, ev)
    width = ev.safe.shape[1]
    score = -(ev.w[:, None] * p)
    score[:, 0] += ev.w  # d loglik / d theta: w (e_chosen - p)
    rows = np.repeat(ev.battle, width)
    per_battle = scipy.sparse.csr_matrix(
        (score.ravel(), (rows, ev.safe.ravel())), shape=(ev.n_battles, ev.n)
    )
    weighted = per_battle.multiply(ev.battle_count[:, None]).tocsr()
    return np.asarray((per_battle.T @ weighted).todense())


def _covariance(
    theta: np.ndarray, ev: _Events, lam: float, ci: str
) -> tuple[np.ndarray, np.ndarray]:
    """(covariance of theta in logits^2, Hessian of the neg. log-likelihood without prior)."""
    _, p = _probabilities(theta, ev)
    hess = np.asarray(_hessian(p, ev, dense=True))
    inv = _inverse_information(hess, lam)
    if ci == "observed":
        cov = inv
    else:
        cov = inv @ _score_covariance(theta, ev) @ inv
    return 0.5 * (cov + cov.T), hess


@dataclass
class PlackettLuceFit:
    """A fitted leaderboard; arrays are [n_models] in ``models`` order (not sorted).

    ``covariance`` is the covariance of the reported theta (centred or anchored), logits^2,
    to feed the K-wise sampler. ``battles`` counts a model's appearances, ``wins`` the battles
    it was ranked (or picked) first in, ``ties`` its tied pairwise votes.
    """

    models: tuple[str, ...]
    theta: np.ndarray
    ratings: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    variance: np.ndarray  # rating points^2
    covariance: np.ndarray  # [n, n] logits^2
    rank: np.ndarray
    rank_ub: np.ndarray
    battles: np.ndarray
    wins: np.ndarray
    ties: np.ndarray
    flags: list[str]
    model_flags: list[list[str]]
    components: list[list[str]]
    n_battles: int
    iterations: int
    gradient_norm: float  # max |d(neg. log-lik + prior)/d theta| at the solution (logits)
    method: dict
    _events: _Events | None = field(default=None, repr=False)

    @property
    def order(self) -> np.ndarray:
        """Model indices sorted by rating (desc), then name."""
        order = sorted(range(len(self.models)), key=lambda i: (-self.ratings[i], self.models[i]))
        return np.array(order, dtype=np.int64)

    def table(self) -> list[dict]:
        """Rows sorted by rating desc: model, rating, lower, upper, variance, battles, wins,
        ties, rank, rank_ub, flags."""
        return rating_rows(
            self.models,
            self.order,
            {
                "rating": self.ratings,
                "lower": self.lower,
                "upper": self.upper,
                "variance": self.variance,
                "battles": counts(self.battles),
                "wins": counts(self.wins),
                "ties": counts(self.ties),
                "rank": counts(self.rank),
                "rank_ub": counts(self.rank_ub),
                "flags": self.model_flags,
            },
        )


def fit_plackett_luce(
    votes: RankedVotes | AggregatedVotes, options: PlackettLuceOptions | None = None
) -> PlackettLuceFit:
    """Fit ratings and confidence intervals to K-wise battles (and pairwise votes).

    Never returns NaN: degenerate data is regularised and reported in ``flags`` (``no_votes``,
    ``single_model``, ``disconnected``, ``infinite_mle``, ``regularized``). Raises ValueError if
    the anchor model has no battles.
    """
    # Small dense systems: BLAS threads only add synchronisation (as in bradley_terry).
    limit = 1 if votes.n_models <= DENSE_MAX_MODELS else None
    with threadpool_limits(limits=limit, user_api="blas"):
        return _fit(votes, options)


def _fit(
    votes: RankedVotes | AggregatedVotes, options: PlackettLuceOptions | None
) -> PlackettLuceFit:
    options = options or PlackettLuceOptions()
    if isinstance(votes, AggregatedVotes):
        votes = RankedVotes.from_pairwise(votes)
    n = votes.n_models
    if options.anchor is not None and options.anchor[0] not in votes.models:
        known = ", ".join(votes.models[:20]) + (" ..." if n > 20 else "")
        raise ValueError(f"anchor model {options.anchor[0]!r} has no votes; known models: {known}")
    ev = _events_from_votes(votes, options)
    counts = _model_counts(votes, ev)
    model_flags = [
        [
            name
            for name, hit in (
                ("no_votes", counts["battles"][i] == 0),
                ("never_lost", counts["battles"][i] > 0 and counts["beaten"][i] == 0),
                ("never_won", counts["battles"][i] > 0 and counts["beat"][i] == 0),
            )
            if hit
        ]
        for i in range(n)
    ]
    flags: list[str] = []
    n_battles = int(ev.battle_count.sum())
    if n_battles == 0:
        flags.append("no_votes")
    if n == 1:
        flags.append("single_model")
    components: list[list[str]] = []
    lam = _prior_precision(ev, options) if options.regularize == "always" else 0.0
    if n >= 2:
        n_weak, labels, n_strong = _connectivity(ev)
        if n_weak > 1:
            flags.append("disconnected")
            groups = [np.flatnonzero(labels == k) for k in range(n_weak)]
            groups.sort(key=lambda g: (-len(g), votes.models[g[0]]))
            components = [[votes.models[i] for i in g] for g in groups]
        if n_strong > n_weak:
            flags.append("infinite_mle")
        if n_strong > 1:
            flags.append("regularized")
            lam = _prior_precision(ev, options)
    if n >= 2:
        theta, iterations = _newton(ev, lam)
        if lam == 0:
            theta -= theta.mean()
        grad_norm = float(np.max(np.abs(_gradient(theta, ev, lam))))
        cov, _ = _covariance(theta, ev, lam, options.ci)
    else:
        theta, iterations, grad_norm = np.zeros(n), 0, 0.0
        cov = np.zeros((n, n))
    alpha = options.alpha
    if options.anchor is not None:
        anchor = votes.models.index(options.anchor[0])
        transform = np.eye(n)
        transform[:, anchor] -= 1.0  # theta_i - theta_anchor
        offset = options.anchor[1]
    else:
        transform = np.eye(n) - 1.0 / max(n, 1)  # centring
        offset = options.init_rating
    theta = transform @ theta
    cov = transform @ cov @ transform.T
    ratings = offset + alpha * theta
    variance = np.clip(np.diag(cov), 0, None) * alpha**2
    z = norm.ppf(1 - options.significance / 2)
    lower, upper = ratings - z * np.sqrt(variance), ratings + z * np.sqrt(variance)
    rank = 1 + (ratings[None, :] > ratings[:, None]).sum(axis=1)
    rank_ub = 1 + (lower[None, :] > upper[:, None]).sum(axis=1)
    return PlackettLuceFit(
        models=votes.models,
        theta=theta,
        ratings=ratings,
        lower=lower,
        upper=upper,
        variance=variance,
        covariance=cov,
        rank=rank.astype(np.int64),
        rank_ub=rank_ub.astype(np.int64),
        battles=counts["battles"],
        wins=counts["wins"],
        ties=counts["ties"],
        flags=flags,
        model_flags=model_flags,
        components=components,
        n_battles=n_battles,
        iterations=iterations,
        gradient_norm=grad_norm,
        method=options.method(),
        _events=ev,
    )


def _model_counts(votes: RankedVotes, ev: _Events) -> dict[str, np.ndarray]:
    n = votes.n_models
    shown = votes.order >= 0
    battles = np.bincount(
        votes.order[shown],
        weights=np.broadcast_to(votes.count[:, None], shown.shape)[shown],
        minlength=n,
    )
    tie = (votes.kind == PAIR_TIE) | (votes.kind == PAIR_BOTH_BAD)
    first = votes.order[~tie, 0]
    wins = np.bincount(first, weights=votes.count[~tie], minlength=n)
    ties = np.bincount(
        votes.order[tie, :2].ravel(), weights=np.repeat(votes.count[tie], 2), minlength=n
    )
    winner, loser = _beats_pairs(ev)
    return {
        "battles": battles.astype(np.int64),
        "wins": wins.astype(np.int64),
        "ties": ties.astype(np.int64),
        "beat": np.bincount(winner, minlength=n),
        "beaten": np.bincount(loser, minlength=n),
    }


def laplace_plackett_luce(
    n_models: int,
    order: np.ndarray,
    stages: np.ndarray,
    *,
    prior_variance: float = 1.0,
    count: np.ndarray | None = None,
    theta0: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """MAP Plackett–Luce skills under a N(0, prior_variance) prior, with the Laplace covariance.

    order: int [B, W] model indices, best first, -1 padded; stages: int [B] choices observed
    per battle (K - 1 for a full ranking, 1 for best-of-K); count: optional [B] multiplicities.
    Returns (theta [n] logits, covariance [n, n] logits^2, the inverse Hessian of the
    negative log-posterior). For simulations and samplers that want a fit on raw arrays.
    """
    if n_models > DENSE_MAX_MODELS:
        return _laplace(n_models, order, stages, prior_variance, count, theta0)
    with _blas_controller().limit(limits=1, user_api="blas"):
        return _laplace(n_models, order, stages, prior_variance, count, theta0)


@functools.lru_cache(maxsize=1)
def _blas_controller() -> ThreadpoolController:
    """One controller for the process: building one scans the loaded libraries (ms)."""
    return ThreadpoolController()


def _laplace(n_models, order, stages, prior_variance, count, theta0):
    order = np.asarray(order, dtype=np.int64).reshape(len(stages), -1)
    stages = np.asarray(stages, dtype=np.int64)
    count = np.ones(len(stages)) if count is None else np.asarray(count, dtype=np.float64)
    ev = _make_events(n_models, order, stages, np.ones(len(stages)), count)
    lam = 1.0 / prior_variance
    theta, _ = _newton(ev, lam, theta0)
    _, p = _probabilities(theta, ev)
    hess = np.asarray(_hessian(p, ev, dense=True)) + lam * np.eye(n_models)
    return theta, scipy.linalg.inv(hess)
