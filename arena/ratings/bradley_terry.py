"""Bradley–Terry maximum-likelihood ratings with sandwich or bootstrap confidence intervals.

Model: P(i beats j) = sigmoid(theta_i - theta_j), theta in natural (log-odds) units. Reported
ratings are ``init_rating + alpha * theta`` with ``alpha = scale / ln(base)`` (400 / ln 10 ≈ 173.7
points per logit), centred so their mean is ``init_rating`` unless a model is anchored.

The fit works on unique (pair, outcome) rows with counts: a tie is a row with outcome 0.5 whose
weight is ``2 * tie_weight`` (0.5: half a win and half a loss for each model); ``both_bad`` is a tie
or dropped. The optimiser is a damped Newton method on the analytic gradient and Hessian
(scipy.linalg / scipy.sparse.linalg solves); when the MLE does not exist (a model never lost or
never won, a disconnected comparison graph) a Gaussian prior with standard deviation
``prior_sd`` rating points keeps it finite, and the fit says so in ``flags``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.sparse.csgraph
import scipy.sparse.linalg
from scipy.special import expit
from scipy.stats import norm
from threadpoolctl import threadpool_limits

from arena.ratings.votes import BOTH_BAD, MODEL_A, MODEL_B, TIE, AggregatedVotes

CI_METHODS = ("sandwich", "bootstrap")
BOTH_BAD_MODES = ("tie", "drop")
DENSE_MAX_MODELS = 1000  # above this the Newton system is solved with a sparse LU
BATCHED_BOOTSTRAP_MAX_MODELS = 300  # above this bootstrap rounds are fitted one by one
NEWTON_STEP_TOL = 1e-10  # logits (≈ 2e-8 rating points)


@dataclass(frozen=True)
class BradleyTerryOptions:
    """How to turn votes into ratings. Rating-valued fields are in rating points."""

    scale: float = 400.0
    base: float = 10.0
    init_rating: float = 1000.0
    tie_weight: float = 0.5
    both_bad: str = "tie"
    reweight: bool = False
    min_pair_count: int = 50
    significance: float = 0.05
    ci: str = "sandwich"
    bootstrap_rounds: int = 100
    seed: int | None = None
    anchor: tuple[str, float] | None = None
    prior_sd: float = 400.0
    hessian_reg: float = 1e-5

    def __post_init__(self) -> None:
        checks = [
            ("scale", self.scale > 0, "must be > 0"),
            ("base", self.base > 1, "must be > 1"),
            ("tie_weight", 0 <= self.tie_weight <= 1, "must be in [0, 1]"),
            ("both_bad", self.both_bad in BOTH_BAD_MODES, f"must be one of {BOTH_BAD_MODES}"),
            ("min_pair_count", self.min_pair_count >= 1, "must be >= 1"),
            ("significance", 0 < self.significance < 1, "must be in (0, 1)"),
            ("ci", self.ci in CI_METHODS, f"must be one of {CI_METHODS}"),
            ("bootstrap_rounds", self.bootstrap_rounds >= 2, "must be >= 2"),
            ("prior_sd", self.prior_sd > 0, "must be > 0"),
            ("hessian_reg", self.hessian_reg >= 0, "must be >= 0"),
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
            "ci": self.ci,
            "significance": self.significance,
            "scale": self.scale,
            "base": self.base,
            "init_rating": self.init_rating,
            "tie_weight": self.tie_weight,
            "both_bad": self.both_bad,
            "reweight": self.reweight,
            "prior_sd": self.prior_sd,
        }
        if self.reweight:
            out["min_pair_count"] = self.min_pair_count
        if self.ci == "bootstrap":
            out["bootstrap_rounds"] = self.bootstrap_rounds
            out["seed"] = self.seed
        if self.anchor is not None:
            out["anchor"] = {"model": self.anchor[0], "rating": self.anchor[1]}
        return out


@dataclass
class _Problem:
    """Fit-ready arrays. Rows r are unique (a, b, outcome); pairs p are unordered (lo < hi)."""

    n: int
    ra: np.ndarray  # int [R]
    rb: np.ndarray  # int [R]
    outcome: np.ndarray  # int8 [R]
    y: np.ndarray  # float [R] score of ra (1, 0, 0.5)
    w: np.ndarray  # float [R] weight of one vote (reweighting x tie multiplier)
    c: np.ndarray  # float [R] vote count
    row_pair: np.ndarray  # int [R] -> pair
    pa: np.ndarray  # int [P] lower index
    pb: np.ndarray  # int [P] higher index
    s: np.ndarray  # float [P] weighted score mass of pa against pb
    m: np.ndarray  # float [P] weighted vote mass of the pair


def _build_problem(votes: AggregatedVotes, options: BradleyTerryOptions) -> _Problem:
    n = votes.n_models
    outcome = votes.outcome.astype(np.int8)
    is_tie = (outcome == TIE) | (outcome == BOTH_BAD)
    multiplier = np.where(is_tie, 2.0 * options.tie_weight, 1.0)
    keep = (votes.count > 0) & (multiplier > 0)
    if options.both_bad == "drop":
        keep &= outcome != BOTH_BAD
    ra, rb = votes.model_a[keep], votes.model_b[keep]
    outcome, multiplier = outcome[keep], multiplier[keep]
    c = votes.count[keep].astype(np.float64)
    y = np.where(outcome == MODEL_A, 1.0, np.where(outcome == MODEL_B, 0.0, 0.5))
    lo, hi = np.minimum(ra, rb), np.maximum(ra, rb)
    pair_key, row_pair = np.unique(lo * max(n, 1) + hi, return_inverse=True)
    pa, pb = pair_key // max(n, 1), pair_key % max(n, 1)
    if options.reweight:
        # arena-rank's reweighting: each vote weighs 1 / max(votes of its pair, min_pair_count).
        pair_votes = np.bincount(row_pair, weights=c, minlength=len(pair_key))
        w = multiplier / np.maximum(pair_votes[row_pair], options.min_pair_count)
    else:
        w = multiplier
    y_lo = np.where(ra < rb, y, 1.0 - y)
    s = np.bincount(row_pair, weights=w * c * y_lo, minlength=len(pair_key))
    m = np.bincount(row_pair, weights=w * c, minlength=len(pair_key))
    return _Problem(n, ra, rb, outcome, y, w, c, row_pair, pa, pb, s, m)


def _objective(theta: np.ndarray, p: _Problem, lam: float) -> float:
    d = theta[p.pa] - theta[p.pb]
    return float(-(p.s @ d - p.m @ np.logaddexp(0.0, d)) + 0.5 * lam * theta @ theta)


def _gradient(theta: np.ndarray, p: _Problem, lam: float) -> np.ndarray:
    r = p.s - p.m * expit(theta[p.pa] - theta[p.pb])
    grad = np.bincount(p.pb, weights=r, minlength=p.n) - np.bincount(p.pa, weights=r, minlength=p.n)
    return grad + lam * theta


def _laplacian(n: int, pa: np.ndarray, pb: np.ndarray, h: np.ndarray) -> scipy.sparse.csr_matrix:
    """sum_p h_p (e_a - e_b)(e_a - e_b)^T as a sparse [n, n] matrix."""
    rows = np.concatenate([pa, pb, pa, pb])
    cols = np.concatenate([pa, pb, pb, pa])
    # float even when h is empty (np.bincount of no rows is int64), so ridges can be added
    vals = np.concatenate([h, h, -h, -h]).astype(np.float64, copy=False)
    return scipy.sparse.csr_matrix((vals, (rows, cols)), shape=(n, n))


def _newton_direction(hess: scipy.sparse.csr_matrix, grad: np.ndarray, lam: float) -> np.ndarray:
    """Solve H delta = -grad; with no prior H is singular along 1, so theta_0 is held fixed."""
    n = len(grad)
    start = 0 if lam > 0 else 1
    h = hess[start:, start:]
    if lam > 0:
        h = h + lam * scipy.sparse.identity(n, format="csr")
    delta = np.zeros(n)
    if n - start == 0:
        return delta
    if n <= DENSE_MAX_MODELS:
        try:
            delta[start:] = scipy.linalg.solve(h.toarray(), -grad[start:], assume_a="pos")
        except (np.linalg.LinAlgError, scipy.linalg.LinAlgError):
            delta[start:] = scipy.linalg.lstsq(h.toarray(), -grad[start:])[0]
    else:
        delta[start:] = scipy.sparse.linalg.spsolve(h.tocsc(), -grad[start:])
    return delta


def _newton(p: _Problem, lam: float, theta0: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Damped Newton (Armijo backtracking) on the convex negative log-likelihood (+ prior)."""
    theta = np.zeros(p.n) if theta0 is None else theta0.copy()
    f = _objective(theta, p, lam)
    for iteration in range(1, 201):
        grad = _gradient(theta, p, lam)
        prob = expit(theta[p.pa] - theta[p.pb])
        delta = _newton_direction(_laplacian(p.n, p.pa, p.pb, p.m * prob * (1 - prob)), grad, lam)
        slope = float(grad @ delta)
        if -slope <= 1e-12 * max(1.0, abs(f)):
            # Newton decrement below float64 resolution of f: the full step is the answer.
            return theta + delta, iteration
        step = 1.0
        while True:
            candidate = theta + step * delta
            f_new = _objective(candidate, p, lam)
            if f_new <= f + 1e-4 * step * slope or step < 1e-12:
                break
            step *= 0.5
        theta, f = candidate, f_new
        if np.max(np.abs(step * delta), initial=0.0) < NEWTON_STEP_TOL:
            return theta, iteration
    return theta, iteration


def _connectivity(
    n: int, pa: np.ndarray, pb: np.ndarray, s: np.ndarray, m: np.ndarray
) -> tuple[int, np.ndarray, int]:
    """(weak components, their labels, strong components of the 'won at least once' graph)."""
    undirected = scipy.sparse.csr_matrix((np.ones(len(pa)), (pa, pb)), shape=(n, n))
    n_weak, labels = scipy.sparse.csgraph.connected_components(undirected, directed=False)
    # Ford's condition: the MLE exists iff the directed graph "i scored against j" is strongly
    # connected (a tie scores both ways).
    fwd, back = s > 0, (m - s) > 1e-12 * np.maximum(m, 1)
    rows = np.concatenate([pa[fwd], pb[back]])
    cols = np.concatenate([pb[fwd], pa[back]])
    directed = scipy.sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    n_strong, _ = scipy.sparse.csgraph.connected_components(
        directed, directed=True, connection="strong"
    )
    return n_weak, labels, n_strong


def _prior_precision(p: _Problem, options: BradleyTerryOptions) -> float:
    """Precision of the N(0, prior_sd^2) prior, in the likelihood's units (one average vote)."""
    sd_logits = options.prior_sd / options.alpha
    mean_vote_weight = float((p.w * p.c).sum() / p.c.sum()) if p.c.sum() > 0 else 1.0
    return mean_vote_weight / sd_logits**2


def _sandwich_covariance(
    theta: np.ndarray, p: _Problem, options: BradleyTerryOptions, lam: float
) -> np.ndarray:
    """Robust covariance H^-1 G H^-1 of theta (logits^2), with arena-rank's diagonal ridge."""
    prob = expit(theta[p.ra] - theta[p.rb])
    h = np.bincount(p.row_pair, weights=p.w * p.c * prob * (1 - prob), minlength=len(p.pa))
    g = np.bincount(p.row_pair, weights=(p.y - prob) ** 2 * p.w**2 * p.c, minlength=len(p.pa))
    hess = _laplacian(p.n, p.pa, p.pb, h).toarray()
    grad_cov = _laplacian(p.n, p.pa, p.pb, g).toarray()
    unweighted = bool(np.allclose(p.w, 1.0))
    ridge = options.hessian_reg * (p.c.sum() if unweighted else 1.0) + lam
    hess[np.diag_indices(p.n)] += ridge
    hess_inv = scipy.linalg.inv(hess)
    cov = hess_inv @ grad_cov @ hess_inv
    return 0.5 * (cov + cov.T)


def _plain(value):
    """A numpy scalar as the Python number it holds; a tuple of flags as a list."""
    if isinstance(value, np.generic):
        return value.item()
    return list(value) if isinstance(value, tuple | list) else value


def counts(values) -> np.ndarray:
    """A count column (votes, wins, ranks) as integers, as tables show it."""
    return np.asarray(values).astype(np.int64)


def rating_rows(models, order, columns: dict) -> list[dict]:
    """Table rows of a fit: {"model": ..., <column>: value, ...} for each model index in `order`,
    with numpy values as plain Python numbers (the shape every fit's ``table()`` returns)."""
    return [
        {"model": models[i], **{name: _plain(values[i]) for name, values in columns.items()}}
        for i in order
    ]


@dataclass
class BradleyTerryFit:
    """A fitted leaderboard; arrays are [n_models] in ``models`` order (not sorted)."""

    models: tuple[str, ...]
    theta: np.ndarray  # logits, centred (or anchored)
    ratings: np.ndarray  # rating points
    lower: np.ndarray
    upper: np.ndarray
    variance: np.ndarray  # rating points^2
    rank: np.ndarray
    rank_ub: np.ndarray
    votes: np.ndarray
    wins: np.ndarray
    losses: np.ndarray
    ties: np.ndarray
    flags: list[str]
    model_flags: list[list[str]]
    components: list[list[str]]
    n_votes: int
    iterations: int
    gradient_norm: float  # max |d(neg. log-lik)/d theta| at the solution (logit units)
    method: dict
    bootstrap_samples: np.ndarray | None = None  # [B, n] rating points
    _problem: _Problem | None = field(default=None, repr=False)

    @property
    def order(self) -> np.ndarray:
        """Model indices sorted by rating (desc), then name."""
        names = np.array(self.models, dtype=object)
        order = sorted(range(len(self.models)), key=lambda i: (-self.ratings[i], names[i]))
        return np.array(order, dtype=np.int64)

    def table(self) -> list[dict]:
        """Rows sorted by rating desc: model, rating, lower, upper, variance, votes, rank, rank_ub,
        wins, losses, ties, win_rate, flags."""
        votes = np.asarray(self.votes)
        played = (self.wins + 0.5 * self.ties) / np.where(votes > 0, votes, 1)
        win_rate = [float(r) if v else None for r, v in zip(played, votes, strict=True)]
        return rating_rows(
            self.models,
            self.order,
            {
                "rating": self.ratings,
                "lower": self.lower,
                "upper": self.upper,
                "variance": self.variance,
                "votes": counts(votes),
                "rank": counts(self.rank),
                "rank_ub": counts(self.rank_ub),
                "wins": counts(self.wins),
                "losses": counts(self.losses),
                "ties": counts(self.ties),
                "win_rate": win_rate,
                "flags": self.model_flags,
            },
        )

    def matrices(self) -> dict[str, list[list[float | None]]]:
        """Observed win rate, battle count and predicted win probability, in ``order``.

        Entry [i][j] is about the i-th model (rating order) against the j-th; ``None`` where
        there is no data (and on the diagonal).
        """
        idx = self.order
        n = len(self.models)
        won = np.zeros((n, n))
        tied = np.zeros((n, n))
        p = self._problem
        if p is not None and len(p.c):
            tie = p.y == 0.5
            np.add.at(won, (p.ra[p.y == 1], p.rb[p.y == 1]), p.c[p.y == 1])
            np.add.at(won, (p.rb[p.y == 0], p.ra[p.y == 0]), p.c[p.y == 0])
            np.add.at(tied, (p.ra[tie], p.rb[tie]), p.c[tie])
            tied = tied + tied.T
        count = won + won.T + tied
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = (won + 0.5 * tied) / count
        predicted = expit(self.theta[:, None] - self.theta[None, :])
        np.fill_diagonal(predicted, np.nan)

        def as_json(matrix: np.ndarray, digits: int) -> list[list[float | None]]:
            sub = matrix[np.ix_(idx, idx)]
            out = np.round(sub, digits).astype(object)
            out[np.isnan(sub)] = None
            return out.tolist()

        count_sub = count[np.ix_(idx, idx)]
        return {
            "win_rate_matrix": as_json(rate, 6),
            "count_matrix": count_sub.astype(np.int64).tolist(),
            "predicted_matrix": as_json(predicted, 6),
        }


def rank_intervals(
    ratings: np.ndarray, lower: np.ndarray, upper: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """rank = 1 + models rated strictly higher; rank_ub = 1 + models whose lower bound is above
    this model's upper bound (LMArena's displayed rank)."""
    rank = 1 + (ratings[None, :] > ratings[:, None]).sum(axis=1)
    rank_ub = 1 + (lower[None, :] > upper[:, None]).sum(axis=1)
    return rank.astype(np.int64), rank_ub.astype(np.int64)


def fit_bradley_terry(
    votes: AggregatedVotes, options: BradleyTerryOptions | None = None
) -> BradleyTerryFit:
    """Fit ratings and confidence intervals to aggregated votes.

    Never returns NaN: degenerate data (no votes, one model, a model that never lost or never
    won, a disconnected comparison graph) is regularised and reported in ``flags``.
    Raises ValueError if the anchor model has no votes.
    """
    # Small dense systems: BLAS threads only add synchronisation (100x slower on a busy host).
    limit = 1 if votes.n_models <= DENSE_MAX_MODELS else None
    with threadpool_limits(limits=limit, user_api="blas"):
        return _fit(votes, options)


def _fit(votes: AggregatedVotes, options: BradleyTerryOptions | None) -> BradleyTerryFit:
    options = options or BradleyTerryOptions()
    p = _build_problem(votes, options)
    n = p.n
    alpha = options.alpha
    if options.anchor is not None and options.anchor[0] not in votes.models:
        known = ", ".join(votes.models[:20]) + (" ..." if n > 20 else "")
        raise ValueError(f"anchor model {options.anchor[0]!r} has no votes; known models: {known}")
    counts = _model_counts(p)
    flags: list[str] = []
    model_flags = [
        [
            name
            for name, hit in (
                ("no_votes", counts["votes"][i] == 0),
                ("never_lost", counts["votes"][i] > 0 and counts["losses"][i] == 0),
                ("never_won", counts["votes"][i] > 0 and counts["wins"][i] == 0),
            )
            if hit
        ]
        for i in range(n)
    ]
    n_votes = int(p.c.sum())
    if n_votes == 0:
        flags.append("no_votes")
    if n == 1:
        flags.append("single_model")
    components: list[list[str]] = []
    lam = 0.0
    if n >= 2:
        n_weak, labels, n_strong = _connectivity(n, p.pa, p.pb, p.s, p.m)
        if n_weak > 1:
            flags.append("disconnected")
            groups = [np.flatnonzero(labels == k) for k in range(n_weak)]
            groups.sort(key=lambda g: (-len(g), votes.models[g[0]]))
            components = [[votes.models[i] for i in g] for g in groups]
        if n_strong > n_weak:
            flags.append("infinite_mle")
        if n_strong > 1:
            flags.append("regularized")
            lam = _prior_precision(p, options)
    if n >= 2:
        theta, iterations = _newton(p, lam)
        theta -= theta.mean()
        grad_norm = float(np.max(np.abs(_gradient(theta, p, lam))))
    else:
        theta, iterations, grad_norm = np.zeros(n), 0, 0.0

    anchor_index = votes.models.index(options.anchor[0]) if options.anchor else None
    offset = options.anchor[1] if options.anchor else options.init_rating

    def to_ratings(t: np.ndarray) -> np.ndarray:
        """logits [..., n] -> rating points, centred or anchored per row."""
        if t.shape[-1] == 0:
            return t.copy()
        if anchor_index is None:
            return offset + alpha * (t - t.mean(axis=-1, keepdims=True))
        return offset + alpha * (t - t[..., anchor_index : anchor_index + 1])

    ratings = to_ratings(theta)
    samples = None
    method = options.method()
    if n < 2:
        variance = np.zeros(n)
        lower, upper = ratings.copy(), ratings.copy()
    elif options.ci == "sandwich":
        cov = _sandwich_covariance(theta, p, options, lam)
        transform = np.eye(n)
        if anchor_index is not None:
            transform[:, anchor_index] -= 1.0  # theta_i - theta_anchor
        variance = np.clip(np.einsum("ij,jk,ik->i", transform, cov, transform), 0, None)
        variance = variance * alpha**2
        z = norm.ppf(1 - options.significance / 2)
        lower = ratings - z * np.sqrt(variance)
        upper = ratings + z * np.sqrt(variance)
    else:
        boot_theta, n_regularized = _bootstrap(p, theta, lam, options)
        if n_regularized:
            flags.append("bootstrap_regularized")
            method["bootstrap_regularized_rounds"] = n_regularized
        samples = to_ratings(boot_theta)
        lower = np.quantile(samples, options.significance / 2, axis=0)
        upper = np.quantile(samples, 1 - options.significance / 2, axis=0)
        variance = samples.var(axis=0)
    rank, rank_ub = rank_intervals(ratings, lower, upper)
    return BradleyTerryFit(
        models=votes.models,
        theta=theta,
        ratings=ratings,
        lower=lower,
        upper=upper,
        variance=variance,
        rank=rank,
        rank_ub=rank_ub,
        votes=counts["votes"],
        wins=counts["wins"],
        losses=counts["losses"],
        ties=counts["ties"],
        flags=flags,
        model_flags=model_flags,
        components=components,
        n_votes=n_votes,
        iterations=iterations,
        gradient_norm=grad_norm,
        method=method,
        bootstrap_samples=samples,
        _problem=p,
    )


def _model_counts(p: _Problem) -> dict[str, np.ndarray]:
    """Raw vote counts per model (ties include both_bad when it counts as a tie)."""
    n = p.n
    a_won, b_won, tie = p.y == 1, p.y == 0, p.y == 0.5

    def count(idx: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return np.bincount(idx[mask], weights=p.c[mask], minlength=n).astype(np.int64)

    wins = count(p.ra, a_won) + count(p.rb, b_won)
    losses = count(p.rb, a_won) + count(p.ra, b_won)
    ties = count(p.ra, tie) + count(p.rb, tie)
    return {"wins": wins, "losses": losses, "ties": ties, "votes": wins + losses + ties}


def _bootstrap(
    p: _Problem, theta_hat: np.ndarray, lam: float, options: BradleyTerryOptions
) -> tuple[np.ndarray, int]:
    """Refit on multinomial resamples of the unique rows' counts: theta [B, n], #regularised.

    Weights stay those of the full data (as arena-rank does); a round whose resample has no
    finite MLE gets the prior, so every round is finite.
    """
    rng = np.random.default_rng(options.seed)
    total = int(p.c.sum())
    boot = rng.multinomial(total, p.c / total, size=options.bootstrap_rounds).astype(np.float64)
    n_rows, n_pairs = len(p.c), len(p.pa)
    y_lo = np.where(p.ra < p.rb, p.y, 1.0 - p.y)
    to_pair_s = scipy.sparse.csr_matrix(
        (p.w * y_lo, (p.row_pair, np.arange(n_rows))), shape=(n_pairs, n_rows)
    )
    to_pair_m = scipy.sparse.csr_matrix(
        (p.w, (p.row_pair, np.arange(n_rows))), shape=(n_pairs, n_rows)
    )
    s_all = np.asarray(to_pair_s @ boot.T).T  # [B, P]
    m_all = np.asarray(to_pair_m @ boot.T).T
    prior = _prior_precision(p, options)
    lams = np.empty(options.bootstrap_rounds)
    for b in range(options.bootstrap_rounds):
        _, _, n_strong = _connectivity(p.n, p.pa, p.pb, s_all[b], m_all[b])
        lams[b] = lam if n_strong == 1 else max(lam, prior)
    n_regularized = int(((lams > 0) & (lam == 0)).sum())
    if p.n <= BATCHED_BOOTSTRAP_MAX_MODELS:
        thetas = _batched_newton(p, s_all, m_all, lams, theta_hat)
    else:
        thetas = np.empty((options.bootstrap_rounds, p.n))
        for b in range(options.bootstrap_rounds):
            sub = _Problem(**{**p.__dict__, "s": s_all[b], "m": m_all[b]})
            thetas[b] = _newton(sub, float(lams[b]), theta_hat)[0]
    return thetas, n_regularized


def _batched_newton(
    p: _Problem, s: np.ndarray, m: np.ndarray, lams: np.ndarray, theta0: np.ndarray
) -> np.ndarray:
    """Newton on B independent problems at once (pairs shared, masses s, m [B, P] differ)."""
    n, n_pairs = p.n, len(p.pa)
    rounds = s.shape[0]
    incidence = scipy.sparse.csr_matrix(
        (
            np.concatenate([np.ones(n_pairs), -np.ones(n_pairs)]),
            (np.tile(np.arange(n_pairs), 2), np.concatenate([p.pa, p.pb])),
        ),
        shape=(n_pairs, n),
    )
    flat = scipy.sparse.csr_matrix(
        (
            np.concatenate([np.ones(2 * n_pairs), -np.ones(2 * n_pairs)]),
            (
                np.tile(np.arange(n_pairs), 4),
                np.concatenate(
                    [p.pa * n + p.pa, p.pb * n + p.pb, p.pa * n + p.pb, p.pb * n + p.pa]
                ),
            ),
        ),
        shape=(n_pairs, n * n),
    )
    flat_t, incidence_t = flat.T.tocsr(), incidence.T.tocsr()
    eye = np.eye(n)
    ones = np.ones((n, n))
    gauge = (lams == 0).astype(np.float64)

    def objective(theta: np.ndarray) -> np.ndarray:
        d = theta[:, p.pa] - theta[:, p.pb]
        nll = -(s * d - m * np.logaddexp(0.0, d)).sum(axis=1)
        return nll + 0.5 * lams * (theta * theta).sum(axis=1)

    theta = np.tile(theta0, (rounds, 1))
    f = objective(theta)
    for _ in range(100):
        prob = expit(theta[:, p.pa] - theta[:, p.pb])
        r = s - m * prob
        grad = -np.asarray(incidence_t @ r.T).T + lams[:, None] * theta
        hess = np.asarray(flat_t @ (m * prob * (1 - prob)).T).T.reshape(rounds, n, n)
        hess = hess + lams[:, None, None] * eye
        # Without a prior H is singular along 1 and grad is orthogonal to 1: adding c 11^T
        # leaves the Newton step unchanged and makes the system solvable.
        scale = np.trace(hess, axis1=1, axis2=2) / n**2
        hess = hess + (gauge * scale)[:, None, None] * ones
        delta = np.linalg.solve(hess, -grad[..., None])[..., 0]
        slope = (grad * delta).sum(axis=1)
        # Below float64 resolution of f the Armijo test is noise: take the full step.
        converged = -slope <= 1e-12 * np.maximum(1.0, np.abs(f))
        step = np.ones(rounds)
        for _ in range(40):
            candidate = theta + step[:, None] * delta
            f_new = objective(candidate)
            bad = (f_new > f + 1e-4 * step * slope) & ~converged
            if not bad.any():
                break
            step = np.where(bad, step * 0.5, step)
        theta, f = candidate, f_new
        if np.max(np.abs(step[:, None] * delta)) < NEWTON_STEP_TOL:
            break
    return theta
