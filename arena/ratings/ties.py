"""Davidson's tie model: Bradley–Terry where a tie is an outcome in its own right.

With strengths pi_i = exp(theta_i) and a tie parameter nu >= 0 (Davidson 1970):

    P(a wins) = pi_a / D,   P(b wins) = pi_b / D,   P(tie) = nu * sqrt(pi_a * pi_b) / D,
    D = pi_a + pi_b + nu * sqrt(pi_a * pi_b).

Given that a vote is decisive, P(a wins) = sigmoid(theta_a - theta_b) exactly as in the plain
fit, so the ratings are on the same Elo-like scale (``init_rating + alpha * theta``, centred or
anchored). Ties are close calls: a tie is most likely between equal models, and nu is the ratio
P(tie) / P(a wins) for two equal models (P(tie) = nu / (2 + nu)). The plain fit instead counts a
tie as half a win for each side.

In terms of d = theta_a - theta_b and g = log nu, a vote's log-likelihood is d/2, -d/2 or g minus
log(e^{d/2} + e^{-d/2} + e^g): a three-outcome exponential family, convex in (theta, g), so the
MLE is found by damped Newton on the exact gradient and Hessian (counts aggregated per pair).
Intervals are the sandwich H^+ G H^+ (default) or the observed information H^+ (pseudo-inverse
along the unidentified theta + c direction), Wald in theta and in log nu.

"Both bad" votes: ``both_bad="tie"`` counts them as ties (LMArena's choice: neither side won);
``"drop"`` removes them before the fit. With no ties at all the MLE of nu is on the boundary
nu = 0: theta is then the plain Bradley–Terry MLE of the decisive votes, the fit flags
``no_ties`` and nu's interval is [0, upper] with the upper end from the likelihood-ratio bound.
As in the plain fit, a comparison graph without a finite MLE gets the N(0, prior_sd^2) prior on
theta and a flag.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.optimize
from scipy.special import logsumexp, softmax
from scipy.stats import chi2, norm

from arena.ratings.bradley_terry import (
    NEWTON_STEP_TOL,
    BradleyTerryOptions,
    _build_problem,
    _connectivity,
    _laplacian,
    _model_counts,
    _prior_precision,
    counts,
    rank_intervals,
    rating_rows,
)
from arena.ratings.votes import AggregatedVotes

DAVIDSON_CI_METHODS = ("sandwich", "information")
ALL_TIES_LOG_NU_SD = 5.0  # prior on log nu when no vote is decisive (the MLE is nu = infinity)


@dataclass(frozen=True)
class DavidsonOptions:
    """How to fit the tie model. Rating-valued fields are in rating points."""

    scale: float = 400.0
    base: float = 10.0
    init_rating: float = 1000.0
    both_bad: str = "tie"
    significance: float = 0.05
    ci: str = "sandwich"
    anchor: tuple[str, float] | None = None
    prior_sd: float = 400.0

    def __post_init__(self) -> None:
        # The shared fields are checked by the plain options' rules.
        self.plain()
        if self.ci not in DAVIDSON_CI_METHODS:
            raise ValueError(f"ci={self.ci!r} must be one of {DAVIDSON_CI_METHODS}")

    def plain(self) -> BradleyTerryOptions:
        return BradleyTerryOptions(
            scale=self.scale,
            base=self.base,
            init_rating=self.init_rating,
            both_bad=self.both_bad,
            significance=self.significance,
            anchor=self.anchor,
            prior_sd=self.prior_sd,
        )

    @property
    def alpha(self) -> float:
        return self.scale / math.log(self.base)

    def method(self) -> dict:
        out = {
            "model": "davidson",
            "ci": self.ci,
            "significance": self.significance,
            "scale": self.scale,
            "base": self.base,
            "init_rating": self.init_rating,
            "both_bad": self.both_bad,
            "prior_sd": self.prior_sd,
        }
        if self.anchor is not None:
            out["anchor"] = {"model": self.anchor[0], "rating": self.anchor[1]}
        return out


@dataclass
class _Pairs:
    """Per unordered pair (lo, hi): wins of lo, wins of hi, ties; rows keep the raw counts."""

    n: int
    pa: np.ndarray
    pb: np.ndarray
    wins: np.ndarray
    losses: np.ndarray
    ties: np.ndarray

    @property
    def total(self) -> np.ndarray:
        return self.wins + self.losses + self.ties


def _pairs(votes: AggregatedVotes, options: DavidsonOptions):
    p = _build_problem(votes, options.plain())
    y_lo = np.where(p.ra < p.rb, p.y, 1.0 - p.y)
    n_pairs = len(p.pa)

    def mass(mask: np.ndarray) -> np.ndarray:
        return np.bincount(p.row_pair[mask], weights=p.c[mask], minlength=n_pairs)

    pairs = _Pairs(p.n, p.pa, p.pb, mass(y_lo == 1), mass(y_lo == 0), mass(y_lo == 0.5))
    return pairs, p


def _probabilities(d: np.ndarray, g: float) -> np.ndarray:
    """[P, 3] probabilities of (lo wins, hi wins, tie)."""
    logits = np.column_stack([d / 2, -d / 2, np.full(len(d), g)])
    return softmax(logits, axis=1)


def _objective(x: np.ndarray, q: _Pairs, lam: float, g_prec: float) -> float:
    n = q.n
    d = x[q.pa] - x[q.pb]
    g = x[n]
    logits = np.column_stack([d / 2, -d / 2, np.full(len(d), g)])
    ll = (q.wins - q.losses) @ (d / 2) + q.ties.sum() * (g if q.ties.sum() else 0.0)
    ll -= q.total @ logsumexp(logits, axis=1)
    prior_g = 0.5 * g_prec * g * g if g_prec else 0.0
    return float(-ll + 0.5 * lam * x[:n] @ x[:n] + prior_g)


def _derivatives(
    x: np.ndarray, q: _Pairs, lam: float, g_prec: float
) -> tuple[np.ndarray, np.ndarray]:
    """Gradient and Hessian of the negative log-likelihood (+ priors) in (theta, log nu)."""
    n = q.n
    d = x[q.pa] - x[q.pb]
    pr = _probabilities(d, x[n])
    mean_d = (pr[:, 0] - pr[:, 1]) / 2
    r_d = (q.wins - q.losses) / 2 - q.total * mean_d
    grad = np.zeros(n + 1)
    grad[:n] = np.bincount(q.pb, r_d, n) - np.bincount(q.pa, r_d, n) + lam * x[:n]
    grad[n] = -(q.ties.sum() - q.total @ pr[:, 2]) + (g_prec * x[n] if g_prec else 0.0)
    h_dd = q.total * ((pr[:, 0] + pr[:, 1]) / 4 - mean_d**2)
    h_dg = -q.total * mean_d * pr[:, 2]
    hess = np.zeros((n + 1, n + 1))
    hess[:n, :n] = _laplacian(n, q.pa, q.pb, h_dd).toarray() + lam * np.eye(n)
    cross = np.bincount(q.pa, h_dg, n) - np.bincount(q.pb, h_dg, n)
    hess[:n, n] = hess[n, :n] = cross
    hess[n, n] = q.total @ (pr[:, 2] * (1 - pr[:, 2])) + g_prec
    return grad, hess


def _newton(
    q: _Pairs, lam: float, g_prec: float, free_g: bool, g0: float
) -> tuple[np.ndarray, int]:
    n = q.n
    x = np.zeros(n + 1)
    x[n] = g0
    free = np.ones(n + 1, dtype=bool)
    if lam == 0:
        free[0] = False  # theta + c: hold theta_0
    if not free_g:
        free[n] = False
    f = _objective(x, q, lam, g_prec)
    iteration = 0
    for iteration in range(1, 201):
        grad, hess = _derivatives(x, q, lam, g_prec)
        delta = np.zeros(n + 1)
        h, g = hess[np.ix_(free, free)], grad[free]
        try:
            delta[free] = scipy.linalg.solve(h, -g, assume_a="pos")
        except (np.linalg.LinAlgError, scipy.linalg.LinAlgError):
            delta[free] = scipy.linalg.lstsq(h, -g)[0]
        slope = float(grad @ delta)
        if -slope <= 1e-12 * max(1.0, abs(f)):
            return x + delta, iteration
        step = 1.0
        while True:
            candidate = x + step * delta
            f_new = _objective(candidate, q, lam, g_prec)
            if f_new <= f + 1e-4 * step * slope or step < 1e-12:
                break
            step *= 0.5
        x, f = candidate, f_new
        if np.max(np.abs(step * delta)) < NEWTON_STEP_TOL:
            break
    return x, iteration


def _score_covariance(x: np.ndarray, q: _Pairs) -> np.ndarray:
    """G = sum over votes of score score^T; a vote's score in (d, g) is u - E[u] with
    u = (1/2, 0), (-1/2, 0) or (0, 1) for lo wins, hi wins, tie."""
    n = q.n
    d = x[q.pa] - x[q.pb]
    pr = _probabilities(d, x[n])
    mean = np.column_stack([(pr[:, 0] - pr[:, 1]) / 2, pr[:, 2]])
    g_dd = np.zeros(len(d))
    g_dg = np.zeros(len(d))
    g_gg = np.zeros(len(d))
    for count, u in ((q.wins, (0.5, 0.0)), (q.losses, (-0.5, 0.0)), (q.ties, (0.0, 1.0))):
        r_d, r_g = u[0] - mean[:, 0], u[1] - mean[:, 1]
        g_dd += count * r_d * r_d
        g_dg += count * r_d * r_g
        g_gg += count * r_g * r_g
    out = np.zeros((n + 1, n + 1))
    out[:n, :n] = _laplacian(n, q.pa, q.pb, g_dd).toarray()
    # The score of theta_lo is -(d-score) in the negative log-likelihood's sign convention;
    # G is the same either way (outer products).
    cross = np.bincount(q.pa, g_dg, n) - np.bincount(q.pb, g_dg, n)
    out[:n, n] = out[n, :n] = cross
    out[n, n] = g_gg.sum()
    return out


@dataclass
class DavidsonFit:
    """A tie-model leaderboard; model arrays are [n_models] in ``models`` order."""

    models: tuple[str, ...]
    theta: np.ndarray
    ratings: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    variance: np.ndarray
    rank: np.ndarray
    rank_ub: np.ndarray
    nu: float
    nu_lower: float
    nu_upper: float
    log_nu_se: float  # standard error of log nu (0 when nu is on the boundary)
    votes: np.ndarray
    wins: np.ndarray
    losses: np.ndarray
    ties: np.ndarray
    flags: list[str]
    n_votes: int
    iterations: int
    gradient_norm: float
    method: dict

    @property
    def order(self) -> np.ndarray:
        names = self.models
        return np.array(
            sorted(range(len(names)), key=lambda i: (-self.ratings[i], names[i])), dtype=np.int64
        )

    @property
    def tie_probability_equal(self) -> float:
        """P(tie) between two equally strong models: nu / (2 + nu)."""
        return self.nu / (2 + self.nu)

    def probabilities(self, model_a: str, model_b: str) -> tuple[float, float, float]:
        """(P(a wins), P(b wins), P(tie)) under the fitted model."""
        i, j = self.models.index(model_a), self.models.index(model_b)
        g = math.log(self.nu) if self.nu > 0 else -np.inf
        pr = _probabilities(np.array([self.theta[i] - self.theta[j]]), g)[0]
        return float(pr[0]), float(pr[1]), float(pr[2])

    def table(self) -> list[dict]:
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
                "votes": counts(self.votes),
                "wins": counts(self.wins),
                "losses": counts(self.losses),
                "ties": counts(self.ties),
            },
        )


def fit_davidson(votes: AggregatedVotes, options: DavidsonOptions | None = None) -> DavidsonFit:
    """Maximum-likelihood Davidson ratings and tie parameter with confidence intervals.

    Never returns NaN: degenerate data is regularised and flagged as in the plain fit
    (``no_votes``, ``single_model``, ``disconnected``, ``infinite_mle``, ``regularized``), plus
    ``no_ties`` (nu = 0 on the boundary) and ``no_decisive_votes`` (a weak prior keeps nu finite).
    Raises ValueError if the anchor model has no votes.
    """
    options = options or DavidsonOptions()
    n = votes.n_models
    if options.anchor is not None and options.anchor[0] not in votes.models:
        raise ValueError(f"anchor model {options.anchor[0]!r} has no votes")
    q, p = _pairs(votes, options)
    counts = _model_counts(p)
    flags: list[str] = []
    n_votes = int(q.total.sum())
    n_ties, n_decisive = float(q.ties.sum()), float((q.wins + q.losses).sum())
    if n_votes == 0:
        flags.append("no_votes")
    if n == 1:
        flags.append("single_model")
    lam = 0.0
    if n >= 2 and n_votes:
        n_weak, _, n_strong = _connectivity(n, q.pa, q.pb, q.wins + q.ties / 2, q.total)
        if n_weak > 1:
            flags.append("disconnected")
        if n_strong > n_weak:
            flags.append("infinite_mle")
        if n_strong > 1:
            flags.append("regularized")
            lam = _prior_precision(p, options.plain())
    free_g = n_ties > 0
    g_prec = 0.0
    if n_votes and n_ties == 0:
        flags.append("no_ties")
    if n_votes and n_decisive == 0:
        flags.append("no_decisive_votes")
        g_prec = 1.0 / ALL_TIES_LOG_NU_SD**2
    if free_g and n_decisive > 0:
        # Start at the tie rate of equal models: P(tie) = nu / (2 + nu).
        rate = n_ties / n_votes
        g0 = math.log(2 * rate / (1 - rate))
    else:
        g0 = 0.0 if free_g else -np.inf
    if n >= 2 and n_votes:
        x, iterations = _newton(q, lam, g_prec, free_g, g0)
        x[:n] -= x[:n].mean()
        grad, hess = _derivatives(x, q, lam, g_prec)
        grad_norm = float(np.max(np.abs(grad if free_g else grad[:n])))
    else:
        x = np.zeros(n + 1)
        x[n] = g0 if n_votes else -np.inf
        iterations, grad_norm, hess = 0, 0.0, None
    theta, g = x[:n], float(x[n])

    alpha = options.alpha
    anchor_index = votes.models.index(options.anchor[0]) if options.anchor else None
    offset = options.anchor[1] if options.anchor else options.init_rating
    if anchor_index is not None:
        ratings = offset + alpha * (theta - theta[anchor_index])
    else:
        ratings = offset + alpha * (theta - theta.mean()) if n else theta.copy()
    z = norm.ppf(1 - options.significance / 2)
    nu = math.exp(g) if np.isfinite(g) else 0.0
    if hess is None:
        variance = np.zeros(n)
        log_nu_se, nu_lower, nu_upper = 0.0, nu, nu
    else:
        keep = np.ones(n + 1, dtype=bool)
        keep[n] = free_g
        h = hess[np.ix_(keep, keep)]
        m = len(h)
        # Pseudo-inverse along theta + c: (H + u u^T)^-1 = H^+ + u u^T for the unit null vector
        # u (when there is no prior), and G u = 0, so the sandwich is exactly H^+ G H^+.
        u = np.zeros(m)
        u[:n] = 1 / math.sqrt(n)
        h_inv = scipy.linalg.inv(h + (np.outer(u, u) if lam == 0 else 0.0))
        if lam == 0:
            h_inv -= np.outer(u, u)
        if options.ci == "sandwich":
            grad_cov = _score_covariance(x, q)[np.ix_(keep, keep)]
            cov = h_inv @ grad_cov @ h_inv
        else:
            cov = h_inv
        cov = 0.5 * (cov + cov.T)
        transform = np.eye(n) - (1.0 / n if anchor_index is None else 0.0)
        if anchor_index is not None:
            transform[:, anchor_index] -= 1.0
        cov_theta = cov[:n, :n]
        variance = np.clip(np.einsum("ij,jk,ik->i", transform, cov_theta, transform), 0, None)
        variance = variance * alpha**2
        if free_g:
            log_nu_se = math.sqrt(max(cov[n, n], 0.0))
            nu_lower, nu_upper = math.exp(g - z * log_nu_se), math.exp(g + z * log_nu_se)
        else:
            log_nu_se, nu_lower = 0.0, 0.0
            nu_upper = _nu_upper_bound(theta, q, chi2.ppf(1 - options.significance, 1) / 2)
    lower = ratings - z * np.sqrt(variance)
    upper = ratings + z * np.sqrt(variance)
    rank, rank_ub = rank_intervals(ratings, lower, upper)
    return DavidsonFit(
        models=votes.models,
        theta=theta,
        ratings=ratings,
        lower=lower,
        upper=upper,
        variance=variance,
        rank=rank,
        rank_ub=rank_ub,
        nu=nu,
        nu_lower=nu_lower,
        nu_upper=nu_upper,
        log_nu_se=log_nu_se,
        votes=counts["votes"],
        wins=counts["wins"],
        losses=counts["losses"],
        ties=counts["ties"],
        flags=flags,
        n_votes=n_votes,
        iterations=iterations,
        gradient_norm=grad_norm,
        method=options.method(),
    )


def _nu_upper_bound(theta: np.ndarray, q: _Pairs, drop: float) -> float:
    """With no ties, the nu at which the log-likelihood (theta held at its MLE) has fallen by
    ``drop`` from its maximum at nu = 0: sum over pairs of n_p log(1 + nu / (2 cosh(d_p / 2)))."""
    d = theta[q.pa] - theta[q.pb]
    half = np.abs(d) / 2
    # log(2 cosh(h)) = h + log1p(exp(-2h)), stable for large h.
    log_2cosh = half + np.log1p(np.exp(-2 * half))

    def loss(log_nu: float) -> float:
        return float(q.total @ np.logaddexp(0.0, log_nu - log_2cosh)) - drop

    hi = 0.0
    while loss(hi) < 0:
        hi += 5.0
    lo = hi - 5.0
    while loss(lo) > 0:
        lo -= 5.0
    return math.exp(scipy.optimize.brentq(loss, lo, hi, xtol=1e-12))
