"""Style control: Bradley–Terry with per-battle covariates (LMArena's "Rank (StyleCtrl)").

Model: P(a beats b) = sigmoid(theta_a - theta_b + beta . z), where z is the normalised difference
of the two samples' covariates (resolution, aspect ratio, generation seconds, brightness, ...).
``theta`` is the style-controlled skill: the rating a model would get if its samples looked like
everyone else's; ``beta`` says how much a unit of each normalised covariate difference sways a
voter, in logits.

Normalisation follows LMArena (FastChat's style control and arena-rank's ContextualPairDataset):
per covariate the raw difference x_a - x_b, or for "relative" covariates the ratio
(x_a - x_b) / (x_a + x_b) (0 where both are 0), then z-scored over the votes of the fit
(population standard deviation). A covariate whose normalised difference is constant carries no
information: its beta is fixed at 0 and the fit flags it.

Everything else is the plain fit of ``bradley_terry``: ties are half a win for each side (weight
``2 * tie_weight``), ``both_bad`` is a tie or dropped, optional arena-rank reweighting by pair
frequency, the N(0, prior_sd^2) prior on theta when the rating graph has no finite MLE, ratings
``init_rating + alpha * theta`` centred (or anchored), sandwich (H^-1 G H^-1 with arena-rank's
diagonal ridge) or bootstrap intervals. theta and beta are fitted jointly by damped Newton on the
exact gradient and Hessian. ``coef_ridge`` is arena-rank's ``reg``: a penalty
0.5 * coef_ridge * (sum of vote weights) * |beta|^2 (arena-rank's default is 1.0; ours is 0, the
plain MLE).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
import scipy.sparse
from scipy.special import expit
from scipy.stats import norm
from threadpoolctl import threadpool_limits

from arena.ratings.bradley_terry import (
    NEWTON_STEP_TOL,
    BradleyTerryOptions,
    _build_problem,
    _connectivity,
    _laplacian,
    _prior_precision,
    counts,
    rank_intervals,
    rating_rows,
)
from arena.ratings.votes import (
    BOTH_BAD,
    MODEL_A,
    MODEL_B,
    TIE,
    AggregatedVotes,
    VoteFormatError,
    _outcome_codes,
    _series,
)


@dataclass(frozen=True)
class StyleVote:
    """One vote with the covariates of each side's sample (e.g. {"brightness": 0.61, ...})."""

    model_a: str
    model_b: str
    winner: str  # model_a / model_b / tie / tie (bothbad) / both_bad
    covariates_a: Mapping[str, float]
    covariates_b: Mapping[str, float]


@dataclass(frozen=True)
class StyleVotes:
    """Per-vote rows (not aggregated: covariates differ from battle to battle).

    models: names (sorted); model_a, model_b: int64 [N] indices; outcome: int8 [N] codes of
    ``votes``; covariates_a, covariates_b: float [N, K] raw covariates of each side's sample, in
    ``covariate_names`` order.
    """

    models: tuple[str, ...]
    covariate_names: tuple[str, ...]
    model_a: np.ndarray
    model_b: np.ndarray
    outcome: np.ndarray
    covariates_a: np.ndarray
    covariates_b: np.ndarray

    @property
    def n_votes(self) -> int:
        return len(self.outcome)

    @classmethod
    def from_votes(
        cls, votes: Sequence[StyleVote], covariate_names: Sequence[str] | None = None
    ) -> StyleVotes:
        """From vote objects; covariate names default to the first vote's keys."""
        votes = list(votes)
        return cls.from_columns(
            [v.model_a for v in votes],
            [v.model_b for v in votes],
            [v.winner for v in votes],
            [v.covariates_a for v in votes],
            [v.covariates_b for v in votes],
            covariate_names,
        )

    @classmethod
    def from_columns(
        cls,
        model_a: Sequence | np.ndarray,
        model_b: Sequence | np.ndarray,
        winner,
        covariates_a,
        covariates_b,
        covariate_names: Sequence[str] | None = None,
    ) -> StyleVotes:
        """From per-vote columns. covariates_a/_b: a sequence of mappings name -> value, or an
        array [N, K] (then ``covariate_names`` names its K columns). Raises VoteFormatError naming
        the first bad row (unknown winner, a model against itself, a missing or non-finite
        covariate)."""
        a, b = _series(model_a), _series(model_b)
        if not (len(a) == len(b) == len(winner) == len(covariates_a) == len(covariates_b)):
            raise VoteFormatError("model_a, model_b, winner and the covariates need equal lengths")
        names = _covariate_names(covariates_a, covariate_names)
        xa = _covariate_matrix(covariates_a, names, "covariates_a")
        xb = _covariate_matrix(covariates_b, names, "covariates_b")
        if len(a) == 0:
            z = np.zeros(0, dtype=np.int64)
            return cls((), names, z, z.copy(), np.zeros(0, dtype=np.int8), xa, xb)
        codes = _outcome_codes(winner).astype(np.int8)
        for name, column in (("model_a", a), ("model_b", b)):
            missing = column.isna().to_numpy()
            if missing.any():
                row = int(np.flatnonzero(missing)[0])
                raise VoteFormatError(f"row {row}: {name} is empty; every vote names two models")
        import pandas as pd

        index, models = pd.factorize(pd.concat([a, b], ignore_index=True), sort=True)
        ia, ib = index[: len(a)].astype(np.int64), index[len(a) :].astype(np.int64)
        if (ia == ib).any():
            row = int(np.flatnonzero(ia == ib)[0])
            raise VoteFormatError(f"row {row}: model_a and model_b are both {a.iloc[row]!r}")
        return cls(tuple(str(m) for m in models), names, ia, ib, codes, xa, xb)

    def aggregated(self) -> AggregatedVotes:
        """The same votes without covariates, for the plain (unadjusted) Bradley–Terry fit."""
        return AggregatedVotes.from_rows(
            np.asarray(self.models, dtype=object)[self.model_a],
            np.asarray(self.models, dtype=object)[self.model_b],
            self.outcome.astype(np.int64),
            np.ones(self.n_votes, dtype=np.int64),
        )


def _covariate_names(covariates, given: Sequence[str] | None) -> tuple[str, ...]:
    if given is not None:
        return tuple(str(n) for n in given)
    if isinstance(covariates, np.ndarray):
        return tuple(f"x{k}" for k in range(covariates.shape[1] if covariates.ndim == 2 else 0))
    first = next(iter(covariates), None)
    return tuple(first.keys()) if isinstance(first, Mapping) else ()


def _covariate_matrix(values, names: tuple[str, ...], label: str) -> np.ndarray:
    if isinstance(values, np.ndarray) or (len(values) and not isinstance(values[0], Mapping)):
        out = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
        if out.shape[1] != len(names):
            raise VoteFormatError(f"{label} has {out.shape[1]} columns for {len(names)} names")
    else:
        out = np.empty((len(values), len(names)))
        for row, mapping in enumerate(values):
            for k, name in enumerate(names):
                if name not in mapping:
                    raise VoteFormatError(f"row {row}: {label} has no covariate {name!r}")
                out[row, k] = mapping[name]
    bad = ~np.isfinite(out)
    if bad.any():
        row, k = np.argwhere(bad)[0]
        raise VoteFormatError(f"row {row}: {label}[{names[k]!r}] is not a finite number")
    return out


@dataclass(frozen=True)
class StyleOptions:
    """How covariate differences become features (see the module docstring)."""

    relative: bool | tuple[str, ...] = True  # all, none, or the named covariates as ratios
    standardize: bool = True
    coef_ridge: float = 0.0

    def __post_init__(self) -> None:
        if self.coef_ridge < 0:
            raise ValueError(f"coef_ridge={self.coef_ridge!r} must be >= 0")

    def is_relative(self, names: tuple[str, ...]) -> np.ndarray:
        if isinstance(self.relative, bool):
            return np.full(len(names), self.relative)
        unknown = set(self.relative) - set(names)
        if unknown:
            raise ValueError(f"relative names unknown covariates: {sorted(unknown)}")
        return np.array([n in self.relative for n in names], dtype=bool)


def style_features(
    covariates_a: np.ndarray, covariates_b: np.ndarray, relative: np.ndarray
) -> np.ndarray:
    """Raw feature differences [N, K]: x_a - x_b, or (x_a - x_b) / (x_a + x_b) where relative.

    Relative covariates must be non-negative (sizes, durations, intensities)."""
    diff = covariates_a - covariates_b
    if relative.any():
        xa, xb = covariates_a[:, relative], covariates_b[:, relative]
        if (xa < 0).any() or (xb < 0).any():
            raise ValueError("relative (ratio) covariates must be >= 0; use relative=False")
        total = xa + xb
        with np.errstate(invalid="ignore", divide="ignore"):
            diff[:, relative] = np.where(total > 0, (xa - xb) / total, 0.0)
    return diff


@dataclass
class _Rows:
    """Logistic rows: logit = theta_a - theta_b + features @ beta + offset; y the score of a;
    each row is ``c`` votes of weight ``w``."""

    n: int
    a: np.ndarray
    b: np.ndarray
    features: np.ndarray  # [N, K]
    y: np.ndarray
    w: np.ndarray
    c: np.ndarray
    offset: np.ndarray

    def __post_init__(self) -> None:
        k = len(self.a)
        self.incidence = scipy.sparse.csr_matrix(
            (
                np.concatenate([np.ones(k), -np.ones(k)]),
                (np.tile(np.arange(k), 2), np.concatenate([self.a, self.b])),
            ),
            shape=(k, self.n),
        )

    def logits(self, x: np.ndarray) -> np.ndarray:
        return x[self.a] - x[self.b] + self.features @ x[self.n :] + self.offset

    def gram(self, vals: np.ndarray) -> np.ndarray:
        """X^T diag(vals) X for the design X = [incidence | features], dense [n+K, n+K]."""
        n = self.n
        out = np.zeros((n + self.features.shape[1],) * 2)
        out[:n, :n] = _laplacian(n, self.a, self.b, vals).toarray()
        weighted = vals[:, None] * self.features
        cross = np.asarray(self.incidence.T @ weighted)
        out[:n, n:] = cross
        out[n:, :n] = cross.T
        out[n:, n:] = self.features.T @ weighted
        return out


@dataclass(frozen=True)
class _Penalty:
    """0.5 * lam * |theta - mean|^2 + 0.5 * ridge * |beta|^2."""

    lam: float
    ridge: float
    mean: np.ndarray | None = None

    def value(self, x: np.ndarray, n: int) -> float:
        t = x[:n] if self.mean is None else x[:n] - self.mean
        return 0.5 * self.lam * float(t @ t) + 0.5 * self.ridge * float(x[n:] @ x[n:])

    def gradient(self, x: np.ndarray, n: int) -> np.ndarray:
        t = x[:n] if self.mean is None else x[:n] - self.mean
        return np.concatenate([self.lam * t, self.ridge * x[n:]])

    def diagonal(self, n: int, k: int) -> np.ndarray:
        return np.concatenate([np.full(n, self.lam), np.full(k, self.ridge)])


def _objective(x: np.ndarray, rows: _Rows, pen: _Penalty) -> float:
    z = rows.logits(x)
    nll = -float((rows.c * rows.w) @ (rows.y * z - np.logaddexp(0.0, z)))
    return nll + pen.value(x, rows.n)


def _gradient(x: np.ndarray, rows: _Rows, pen: _Penalty) -> np.ndarray:
    r = rows.c * rows.w * (rows.y - expit(rows.logits(x)))
    grad = -np.concatenate([rows.incidence.T @ r, rows.features.T @ r])
    return grad + pen.gradient(x, rows.n)


def _hessian(x: np.ndarray, rows: _Rows, pen: _Penalty) -> np.ndarray:
    prob = expit(rows.logits(x))
    hess = rows.gram(rows.c * rows.w * prob * (1 - prob))
    hess[np.diag_indices_from(hess)] += pen.diagonal(rows.n, rows.features.shape[1])
    return hess


def _newton_rows(
    rows: _Rows, pen: _Penalty, x0: np.ndarray | None = None, max_iter: int = 200
) -> tuple[np.ndarray, int]:
    """Damped Newton (Armijo backtracking) on the convex penalised negative log-likelihood.

    Without a prior on theta the likelihood is flat along theta + c: theta_0 is held fixed."""
    size = rows.n + rows.features.shape[1]
    x = np.zeros(size) if x0 is None else x0.copy()
    start = 1 if pen.lam == 0 and rows.n > 0 else 0
    f = _objective(x, rows, pen)
    iteration = 0
    for iteration in range(1, max_iter + 1):
        grad = _gradient(x, rows, pen)
        hess = _hessian(x, rows, pen)
        delta = np.zeros(size)
        h, g = hess[start:, start:], grad[start:]
        try:
            delta[start:] = scipy.linalg.solve(h, -g, assume_a="pos")
        except (np.linalg.LinAlgError, scipy.linalg.LinAlgError):
            delta[start:] = scipy.linalg.lstsq(h, -g)[0]
        slope = float(grad @ delta)
        if -slope <= 1e-12 * max(1.0, abs(f)):
            return x + delta, iteration
        step = 1.0
        while True:
            candidate = x + step * delta
            f_new = _objective(candidate, rows, pen)
            if f_new <= f + 1e-4 * step * slope or step < 1e-12:
                break
            step *= 0.5
        x, f = candidate, f_new
        if np.max(np.abs(step * delta), initial=0.0) < NEWTON_STEP_TOL:
            break
    return x, iteration


@dataclass
class StyleControlFit:
    """Style-controlled leaderboard; model arrays are [n_models] in ``models`` order, covariate
    arrays [K] in ``covariates`` order. ``coefficients`` are logits per standard deviation of the
    normalised covariate difference (positive: voters favour the side with more of it)."""

    models: tuple[str, ...]
    covariates: tuple[str, ...]
    theta: np.ndarray
    ratings: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    variance: np.ndarray
    rank: np.ndarray
    rank_ub: np.ndarray
    coefficients: np.ndarray
    coef_lower: np.ndarray
    coef_upper: np.ndarray
    coef_variance: np.ndarray
    feature_mean: np.ndarray  # normalisation: z = (raw difference - mean) / std
    feature_std: np.ndarray
    relative: np.ndarray  # bool [K]
    flags: list[str]
    n_votes: int
    iterations: int
    gradient_norm: float
    method: dict
    bootstrap_samples: np.ndarray | None = None  # [B, n] rating points
    coef_bootstrap_samples: np.ndarray | None = None  # [B, K] logits
    alpha: float = field(default=1.0, repr=False)

    @property
    def order(self) -> np.ndarray:
        names = self.models
        return np.array(
            sorted(range(len(names)), key=lambda i: (-self.ratings[i], names[i])), dtype=np.int64
        )

    def table(self) -> list[dict]:
        """Rows sorted by style-controlled rating: model, rating, lower, upper, variance, rank,
        rank_ub."""
        return rating_rows(
            self.models,
            self.order,
            {
                "rating": self.ratings,
                "lower": self.lower,
                "upper": self.upper,
                "variance": self.variance,
                "rank": counts(self.rank),
                "rank_ub": counts(self.rank_ub),
            },
        )

    def coefficient_table(self) -> list[dict]:
        """One row per covariate: beta (logits per sd), its CI, the same in rating points."""
        return [
            {
                "covariate": name,
                "coefficient": float(self.coefficients[k]),
                "lower": float(self.coef_lower[k]),
                "upper": float(self.coef_upper[k]),
                "points": float(self.alpha * self.coefficients[k]),
                "relative": bool(self.relative[k]),
                "feature_mean": float(self.feature_mean[k]),
                "feature_std": float(self.feature_std[k]),
            }
            for k, name in enumerate(self.covariates)
        ]


def fit_style_control(
    votes: StyleVotes | Sequence[StyleVote],
    options: BradleyTerryOptions | None = None,
    style: StyleOptions | None = None,
) -> StyleControlFit:
    """Fit style-controlled ratings and covariate coefficients with confidence intervals.

    ``options`` are the plain fit's (scale, ties, both_bad, reweight, ci, anchor, prior); the
    sandwich ridge ``hessian_reg`` applies to the theta and beta blocks as in arena-rank.
    Raises ValueError if the anchor model has no votes.
    """
    if not isinstance(votes, StyleVotes):
        votes = StyleVotes.from_votes(votes)
    options = options or BradleyTerryOptions()
    style = style or StyleOptions()
    with threadpool_limits(limits=1, user_api="blas"):
        return _fit(votes, options, style)


def _fit(votes: StyleVotes, options: BradleyTerryOptions, style: StyleOptions) -> StyleControlFit:
    n, names = len(votes.models), votes.covariate_names
    if options.anchor is not None and options.anchor[0] not in votes.models:
        raise ValueError(f"anchor model {options.anchor[0]!r} has no votes")
    relative = style.is_relative(names)
    outcome = votes.outcome
    is_tie = (outcome == TIE) | (outcome == BOTH_BAD)
    multiplier = np.where(is_tie, 2.0 * options.tie_weight, 1.0)
    keep = multiplier > 0
    if options.both_bad == "drop":
        keep &= outcome != BOTH_BAD
    a, b, outcome = votes.model_a[keep], votes.model_b[keep], outcome[keep]
    y = np.where(outcome == MODEL_A, 1.0, np.where(outcome == MODEL_B, 0.0, 0.5))
    w = multiplier[keep]
    if options.reweight:
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        _, pair, pair_votes = np.unique(
            lo * max(n, 1) + hi, return_inverse=True, return_counts=True
        )
        w = w / np.maximum(pair_votes[pair], options.min_pair_count)
    raw = style_features(votes.covariates_a[keep], votes.covariates_b[keep], relative)
    k = raw.shape[1]
    mean = raw.mean(axis=0) if len(raw) else np.zeros(k)
    std = raw.std(axis=0) if len(raw) else np.zeros(k)
    if not style.standardize:
        mean, std = np.zeros(k), np.ones(k)
    active = std > 1e-12 * np.maximum(1.0, np.abs(mean))
    std = np.where(active, std, 1.0)
    features = ((raw - mean) / std)[:, active]
    flags = [f"constant_covariate:{names[j]}" for j in np.flatnonzero(~active)]
    rows = _Rows(n, a, b, features, y, w, np.ones(len(y)), np.zeros(len(y)))
    n_votes = len(y)

    # Finite-MLE check and prior exactly as the plain fit on the same (aggregated) votes.
    lam = 0.0
    plain = _build_problem(_aggregate(n, a, b, outcome), options)
    if n_votes == 0:
        flags.append("no_votes")
    if n >= 2 and n_votes:
        n_weak, _, n_strong = _connectivity(n, plain.pa, plain.pb, plain.s, plain.m)
        if n_weak > 1:
            flags.append("disconnected")
        if n_strong > n_weak:
            flags.append("infinite_mle")
        if n_strong > 1:
            flags.append("regularized")
            lam = _prior_precision(plain, options)
    weight_total = float(w.sum())
    pen = _Penalty(lam, style.coef_ridge * weight_total)
    if n >= 2 and n_votes:
        x, iterations = _newton_rows(rows, pen)
        x[:n] -= x[:n].mean()
        grad_norm = float(np.max(np.abs(_gradient(x, rows, pen))))
    else:
        x, iterations, grad_norm = np.zeros(n + features.shape[1]), 0, 0.0
    theta = x[:n]
    beta = np.zeros(k)
    beta[active] = x[n:]

    alpha = options.alpha
    anchor_index = votes.models.index(options.anchor[0]) if options.anchor else None
    offset = options.anchor[1] if options.anchor else options.init_rating

    def to_ratings(t: np.ndarray) -> np.ndarray:
        if t.shape[-1] == 0:
            return t.copy()
        ref = t.mean(axis=-1, keepdims=True) if anchor_index is None else t[..., [anchor_index]]
        return offset + alpha * (t - ref)

    ratings = to_ratings(theta)
    method = {
        **options.method(),
        "model": "bradley_terry_covariates",
        "covariates": list(names),
        "relative": [names[j] for j in np.flatnonzero(relative)],
        "standardize": style.standardize,
        "coef_ridge": style.coef_ridge,
    }
    z = norm.ppf(1 - options.significance / 2)
    samples = coef_samples = None
    coef_var = np.zeros(k)
    if n < 2 or n_votes == 0:
        variance = np.zeros(n)
        lower, upper = ratings.copy(), ratings.copy()
        coef_lower, coef_upper = beta.copy(), beta.copy()
    elif options.ci == "sandwich":
        cov = _sandwich(x, rows, pen, options.hessian_reg * weight_total, style.coef_ridge)
        transform = np.eye(n)
        if anchor_index is not None:
            transform[:, anchor_index] -= 1.0
        cov_theta = cov[:n, :n]
        variance = np.clip(np.einsum("ij,jk,ik->i", transform, cov_theta, transform), 0, None)
        variance = variance * alpha**2
        lower, upper = ratings - z * np.sqrt(variance), ratings + z * np.sqrt(variance)
        coef_var[active] = np.clip(np.diag(cov)[n:], 0, None)
        coef_lower, coef_upper = beta - z * np.sqrt(coef_var), beta + z * np.sqrt(coef_var)
    else:
        boot, n_regularized = _bootstrap(rows, pen, x, plain, options)
        if n_regularized:
            flags.append("bootstrap_regularized")
            method["bootstrap_regularized_rounds"] = n_regularized
        samples = to_ratings(boot[:, :n])
        coef_samples = np.zeros((options.bootstrap_rounds, k))
        coef_samples[:, active] = boot[:, n:]
        q = (options.significance / 2, 1 - options.significance / 2)
        lower, upper = np.quantile(samples, q, axis=0)
        coef_lower, coef_upper = np.quantile(coef_samples, q, axis=0)
        variance = samples.var(axis=0)
        coef_var = coef_samples.var(axis=0)
    rank, rank_ub = rank_intervals(ratings, lower, upper)
    return StyleControlFit(
        models=votes.models,
        covariates=names,
        theta=theta,
        ratings=ratings,
        lower=lower,
        upper=upper,
        variance=variance,
        rank=rank,
        rank_ub=rank_ub,
        coefficients=beta,
        coef_lower=coef_lower,
        coef_upper=coef_upper,
        coef_variance=coef_var,
        feature_mean=mean,
        feature_std=std,
        relative=relative,
        flags=flags,
        n_votes=n_votes,
        iterations=iterations,
        gradient_norm=grad_norm,
        method=method,
        bootstrap_samples=samples,
        coef_bootstrap_samples=coef_samples,
        alpha=alpha,
    )


def _bootstrap(
    rows: _Rows, pen: _Penalty, x: np.ndarray, plain, options: BradleyTerryOptions
) -> tuple[np.ndarray, int]:
    """Refit on multinomial resamples of the votes (weights and feature normalisation stay those
    of the full data); a round whose resample has no finite MLE gets the prior, as in the plain
    bootstrap. Returns parameters [B, n + K] and the number of rounds regularised."""
    n, n_votes = rows.n, len(rows.y)
    rng = np.random.default_rng(options.seed)
    counts = rng.multinomial(n_votes, np.full(n_votes, 1.0 / n_votes), options.bootstrap_rounds)
    lo, hi = np.minimum(rows.a, rows.b), np.maximum(rows.a, rows.b)
    pair_key = plain.pa * max(n, 1) + plain.pb
    pair = np.searchsorted(pair_key, lo * max(n, 1) + hi)
    y_lo = np.where(rows.a < rows.b, rows.y, 1.0 - rows.y)
    prior = _prior_precision(plain, options)
    boot = np.empty((options.bootstrap_rounds, len(x)))
    n_regularized = 0
    for r in range(options.bootstrap_rounds):
        c = counts[r].astype(np.float64)
        s = np.bincount(pair, weights=c * rows.w * y_lo, minlength=len(pair_key))
        m = np.bincount(pair, weights=c * rows.w, minlength=len(pair_key))
        lam = pen.lam
        if _connectivity(n, plain.pa, plain.pb, s, m)[2] > 1 and lam == 0:
            lam, n_regularized = max(pen.lam, prior), n_regularized + 1
        again = _Rows(n, rows.a, rows.b, rows.features, rows.y, rows.w, c, rows.offset)
        boot[r] = _newton_rows(again, _Penalty(lam, pen.ridge), x)[0]
    boot[:, :n] -= boot[:, :n].mean(axis=1, keepdims=True)
    return boot, n_regularized


def _aggregate(n: int, a: np.ndarray, b: np.ndarray, outcome: np.ndarray) -> AggregatedVotes:
    key = (a * n + b) * 4 + outcome
    unique, count = np.unique(key, return_counts=True)
    pair = unique // 4
    return AggregatedVotes(
        models=tuple(str(i) for i in range(n)),
        model_a=(pair // n).astype(np.int64),
        model_b=(pair % n).astype(np.int64),
        outcome=(unique % 4).astype(np.int8),
        count=count.astype(np.int64),
    )


def _sandwich(
    x: np.ndarray, rows: _Rows, pen: _Penalty, ridge: float, coef_ridge: float
) -> np.ndarray:
    """H^-1 G H^-1 over (theta, beta) with arena-rank's diagonal ridge on H.

    With a beta penalty each vote's score includes its 1/N share of the penalty gradient, so G is
    the centred second moment: sum of g g^T minus N * mean(g) mean(g)^T (arena-rank subtracts
    the same term divided by N once more, which only matters for a large ``coef_ridge``)."""
    n = rows.n
    prob = expit(rows.logits(x))
    hess = rows.gram(rows.c * rows.w * prob * (1 - prob))
    hess[np.diag_indices_from(hess)] += pen.diagonal(n, rows.features.shape[1]) + ridge
    grad_cov = rows.gram(rows.c * (rows.w * (rows.y - prob)) ** 2)
    if coef_ridge > 0 and len(rows.w):
        shrink = coef_ridge * float(rows.w.mean()) * x[n:]
        grad_cov[n:, n:] -= np.outer(shrink, shrink) * float(rows.c.sum())
    hess_inv = scipy.linalg.inv(hess)
    cov = hess_inv @ grad_cov @ hess_inv
    return 0.5 * (cov + cov.T)
