"""Rigging the arena: adversarial votes needed to lift a mid-table model, defences off and on.

    .venv/bin/python benchmarks/rigging.py [--seeds 5] [--models 20] [--honest-votes 20000]
        [--accounts-per-address 10 1] [--min-votes 20] [--alpha 0.01] [--quick]

MEASURED

Arena. `--models` models with true skills evenly spaced over `--spread` logits (4 logits ≈ 700
Elo points). `--honest-votes` pairwise votes from honest raters whose votes per rater are
log-normal (median `--median-votes`, sigma 1.2, at most 2,000: most cast a handful, about 1% cast
hundreds); each vote follows Bradley–Terry with the true skills, with `--tie-rate` ties. Pairs
come from the arena's active sampler: the distribution `arena.sampling.choose_battle` draws
from (`pair_probabilities`, default SamplingConfig, floor 0.05), refreshed every 250 votes from
a MAP Bradley–Terry refit, starting from a fresh arena. 5% of honest raters sit behind 10
shared addresses (campus or carrier NAT); the others have an address each.

Adversary. It wants the model of true rank N/2 (the target) higher in the board fitted with
`fit_bradley_terry` (the platform's fit, default options). It recognises the target in every
battle (the worst case for anonymity). Its battles come from the same sampler (the sampler's
distributions over the second half of the honest stream, averaged; the campaign does not move
the sampler); the adversary may leave a battle without voting (battles expire), so it votes
only where it wants to. With defences off one account votes for the
target in every battle showing it: target votes = total votes. With defences on it opens
sybil accounts, `--accounts-per-address` of them per network address (10, and 1 = unlimited
addresses), each casting t votes for the target and max(0, M - t) honest votes (Bradley–Terry
with the true skills, decisive) on battles without it, in random order, so that every account
reaches the minimum M and counts. It picks t per address setting from a grid by a pilot on the
first seed (fewest total votes to gain one rank): the best simple strategy against a per-account
and per-address test is to stay under both thresholds and buy accounts.

Defences on, as the platform would run them: (1) the daily cap, ARENA_VOTES_PER_DAY_PER_RATER =
500 votes per account per day: it only bounds throughput, one account casts at most 500 votes a
day; every sybil casts max(M, t) <= 500 votes, one day's worth, so the cap never binds on this
adversary and costs it nothing beyond opening accounts (the accounts column says how many);
(2) the outlier test `check_raters` (SPRT, alpha 0.01, beta 0.1, alternative "random") per
rater; (3) the targeted-voting test `arena.ratings.targeting.check_targeted_voting` (alpha
`--alpha`) per rater and (4) per address; (5) the minimum-votes rule: a rater's votes count in
the board only once the rater has cast at least M = `--min-votes` decisive votes (it drops the
honest votes of light raters; the table says how many). Flagged raters and every rater of a
flagged address are excluded; as the hourly check does, the consensus is refitted without the
excluded raters and the tests rerun until the flags stop changing; the board is the last fit.

Effort is searched by doubling then bisection (to 10%) on the number of target votes (defences
off) or accounts (on); "+1 rank" means the target's fitted rank is one better than on the honest
votes alone (under the same defences), "top 3" means rank <= 3. Each cell: median [min-max]
over `--seeds` arenas. The flag columns are at the "+1 rank" effort: adversarial votes excluded
by each defence, honest raters flagged by each (and the share of all honest raters), honest
votes excluded (by flags, and by the minimum-votes rule).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from scipy.special import expit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from arena.ratings import AggregatedVotes, check_raters, fit_bradley_terry  # noqa: E402
from arena.ratings.targeting import check_targeted_voting  # noqa: E402
from arena.sampling import ModelState, SamplingConfig, pair_probabilities  # noqa: E402
from arena.sampling_simulation import laplace_bradley_terry  # noqa: E402

DAILY_CAP = 500  # ARENA_VOTES_PER_DAY_PER_RATER
MAX_PASSES = 4  # check / exclude / refit rounds until the flags stop changing
DEFENCES = ("sprt", "target_rater", "target_address", "min_votes")


@dataclass(frozen=True)
class RiggingConfig:
    models: int = 20
    spread: float = 4.0  # logits between the weakest and the strongest model
    honest_votes: int = 20_000
    median_votes: float = 7.0  # per honest rater (log-normal)
    votes_sigma: float = 1.2
    max_votes: int = 2000  # per honest rater
    tie_rate: float = 0.1
    shared_share: float = 0.05  # honest raters behind shared addresses
    shared_addresses: int = 10
    refit_every: int = 250  # honest votes between sampler refits
    accounts_per_address: tuple[int, ...] = (10, 1)
    # ... and where the adversary also votes on every battle it is served (no skipping)
    every_battle_accounts_per_address: tuple[int, ...] = (1,)
    min_votes: int = 20  # M: decisive votes before a rater's votes count
    alpha: float = 0.01  # targeted-voting test, per rater and per address
    sprt_alpha: float = 0.01
    sprt_beta: float = 0.1
    sprt_alternative: str = "random"
    target_grid: tuple[int, ...] = (1, 2, 4, 6, 8, 11, 16)  # candidate target votes per account
    max_adversarial_votes: int = 200_000
    tolerance: float = 0.1  # relative resolution of the effort search
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)


@dataclass
class Votes:
    """Per-vote columns: model indices a, b; outcome 0 (a won), 1 (b won), 2 (tie); rater and
    address ids; time (the SPRT reads each rater's votes in time order)."""

    a: np.ndarray
    b: np.ndarray
    outcome: np.ndarray
    rater: np.ndarray
    address: np.ndarray
    time: np.ndarray

    def __len__(self) -> int:
        return len(self.a)

    def head(self, n: int) -> Votes:
        return Votes(*(column[:n] for column in self.columns()))

    def columns(self) -> tuple[np.ndarray, ...]:
        return (self.a, self.b, self.outcome, self.rater, self.address, self.time)

    def __add__(self, other: Votes) -> Votes:
        return Votes(
            *(np.concatenate([x, y]) for x, y in zip(self.columns(), other.columns(), strict=True))
        )


@dataclass
class Arena:
    skills: np.ndarray  # true skills, logits [n]
    names: np.ndarray  # model names [n] (sorted, so index order is the fit's order)
    target: int
    honest: Votes
    n_honest_raters: int
    n_honest_addresses: int
    pairs: np.ndarray  # int [P, 2]
    # [P] what the sampler serves: its distributions over the second half of the honest
    # stream, averaged (one refit's distribution is far more concentrated)
    battle_probability: np.ndarray


def honest_arena(config: RiggingConfig, rng: np.random.Generator) -> Arena:
    n = config.models
    skills = np.linspace(-config.spread / 2, config.spread / 2, n)
    names = np.array([f"m{i:02d}" for i in range(n)], dtype=object)
    pairs = np.array(list(itertools.combinations(range(n), 2)), dtype=np.int64)
    sampler = SamplingConfig()
    wins = np.zeros((n, n))
    shown = np.zeros(n, dtype=np.int64)
    theta, cov = laplace_bradley_terry(wins, sampler.prior_variance)
    columns: list[tuple[np.ndarray, ...]] = []

    def distribution() -> np.ndarray:
        states = [ModelState(theta[m], cov[m, m], int(shown[m])) for m in range(n)]
        return pair_probabilities(states, pairs, sampler, cov)

    served = np.zeros(len(pairs))  # the sampler's distributions over the second half, summed
    for start in range(0, config.honest_votes, config.refit_every):
        size = min(config.refit_every, config.honest_votes - start)
        probability = distribution()
        if start >= config.honest_votes // 2:
            served += size * probability
        drawn = pairs[rng.choice(len(pairs), size=size, p=probability)]
        swap = rng.random(size) < 0.5
        a, b = np.where(swap, drawn[:, 1], drawn[:, 0]), np.where(swap, drawn[:, 0], drawn[:, 1])
        a_wins = rng.random(size) < expit(skills[a] - skills[b])
        outcome = np.where(rng.random(size) < config.tie_rate, 2, np.where(a_wins, 0, 1))
        np.add.at(wins, (a, b), np.select([outcome == 0, outcome == 2], [1.0, 0.5], 0.0))
        np.add.at(wins, (b, a), np.select([outcome == 1, outcome == 2], [1.0, 0.5], 0.0))
        shown += np.bincount(np.r_[a, b], minlength=n)
        theta, cov = laplace_bradley_terry(wins, sampler.prior_variance)
        columns.append((a, b, outcome))
    a, b, outcome = (np.concatenate(c) for c in zip(*columns, strict=True))
    # Votes per rater: log-normal, until the honest votes are used up; spread over the stream.
    counts: list[int] = []
    while sum(counts) < config.honest_votes:
        draw = rng.lognormal(np.log(config.median_votes), config.votes_sigma, 1000)
        counts += np.clip(np.rint(draw), 1, config.max_votes).astype(int).tolist()
    n_raters = int(np.searchsorted(np.cumsum(counts), config.honest_votes) + 1)
    counts = counts[:n_raters]
    counts[-1] -= sum(counts) - config.honest_votes  # the last rater stops at the total
    rater = rng.permutation(np.repeat(np.arange(n_raters), counts))
    address_of = np.arange(n_raters)
    shared = rng.random(n_raters) < config.shared_share
    address_of[shared] = n_raters + rng.integers(0, config.shared_addresses, int(shared.sum()))
    return Arena(
        skills=skills,
        names=names,
        target=n // 2,  # 0-based from the weakest: true rank n - n // 2 = n / 2 for even n
        honest=Votes(a, b, outcome, rater, address_of[rater], np.arange(len(a), dtype=float)),
        n_honest_raters=n_raters,
        n_honest_addresses=n_raters + config.shared_addresses,
        pairs=pairs,
        battle_probability=served / served.sum(),
    )


def sybil_votes(
    arena: Arena,
    *,
    accounts: int,
    target_votes: int,
    blend_votes: int,
    accounts_per_address: int,
    rng: np.random.Generator,
) -> Votes:
    """`accounts` adversarial accounts, contiguous in the result (so a prefix of k accounts is
    the attack with k accounts): each votes for the target in `target_votes` battles showing it
    and honestly (Bradley–Terry, true skills, decisive) in `blend_votes` battles without it."""
    t, h = target_votes, blend_votes
    per = t + h
    shows = (arena.pairs == arena.target).any(axis=1)
    battles = np.empty((accounts, per), dtype=np.int64)
    for mask, columns in ((shows, slice(0, t)), (~shows, slice(t, per))):
        p = np.where(mask, arena.battle_probability, 0.0)
        width = columns.stop - columns.start
        battles[:, columns] = rng.choice(len(p), size=(accounts, width), p=p / p.sum())
    # Random order within each account's session.
    battles = np.take_along_axis(battles, rng.random((accounts, per)).argsort(axis=1), axis=1)
    drawn = arena.pairs[battles.ravel()]
    swap = rng.random(len(drawn)) < 0.5
    a, b = np.where(swap, drawn[:, 1], drawn[:, 0]), np.where(swap, drawn[:, 0], drawn[:, 1])
    honest_a_wins = rng.random(len(a)) < expit(arena.skills[a] - arena.skills[b])
    is_target = (a == arena.target) | (b == arena.target)
    outcome = np.where(is_target, np.where(a == arena.target, 0, 1), np.where(honest_a_wins, 0, 1))
    account = np.repeat(np.arange(accounts), per)
    start = len(arena.honest)
    return Votes(
        a,
        b,
        outcome,
        arena.n_honest_raters + account,
        arena.n_honest_addresses + account // accounts_per_address,
        start + np.arange(len(a), dtype=float),
    )


def fit_rank(votes: Votes, arena: Arena, keep: np.ndarray | None = None):
    """Bradley–Terry fit of the kept votes; returns (fit, fitted rank of the target)."""
    n = len(arena.names)
    a, b, outcome = votes.a, votes.b, votes.outcome
    if keep is not None:
        a, b, outcome = a[keep], b[keep], outcome[keep]
    key, count = np.unique((a * n + b) * 4 + outcome, return_counts=True)
    pair = key // 4
    fit = fit_bradley_terry(
        AggregatedVotes.from_rows(
            arena.names[pair // n], arena.names[pair % n], (key % 4).astype(np.int64), count
        )
    )
    return fit, int(fit.rank[fit.models.index(arena.names[arena.target])])


@dataclass
class Outcome:
    """A board after the defences: the target's rank and who was excluded by what."""

    rank: int
    counted: np.ndarray  # bool [V]
    flags: dict[str, np.ndarray] = field(default_factory=dict)  # defence -> bool [V]
    passes: int = 0


def defended_board(votes: Votes, arena: Arena, config: RiggingConfig | None) -> Outcome:
    """The board with every defence on (config) or off (None)."""
    if config is None:
        _, rank = fit_rank(votes, arena)
        return Outcome(rank, np.ones(len(votes), dtype=bool))
    n_raters = int(votes.rater.max()) + 1
    n_addresses = int(votes.address.max()) + 1
    decisive = votes.outcome < 2
    too_few = np.bincount(votes.rater[decisive], minlength=n_raters) < config.min_votes
    excluded_rater = np.zeros(n_raters, dtype=bool)
    excluded_address = np.zeros(n_addresses, dtype=bool)
    model_a, model_b = arena.names[votes.a], arena.names[votes.b]
    rater_key = votes.rater.astype(str)
    for passes in range(1, MAX_PASSES + 1):
        counted = ~too_few[votes.rater] & ~excluded_rater[votes.rater]
        counted &= ~excluded_address[votes.address]
        consensus, rank = fit_rank(votes, arena, counted)
        sprt = np.zeros(n_raters, dtype=bool)
        for check in check_raters(
            consensus,
            rater_key,
            model_a,
            model_b,
            votes.outcome,
            order=votes.time,
            alpha=config.sprt_alpha,
            beta=config.sprt_beta,
            alternative=config.sprt_alternative,
        ):
            sprt[int(check.rater)] = check.flagged
        by_rater = np.zeros(n_raters, dtype=bool)
        for check in check_targeted_voting(
            consensus, votes.rater, model_a, model_b, votes.outcome, alpha=config.alpha
        ):
            by_rater[check.group] = check.flagged
        by_address = np.zeros(n_addresses, dtype=bool)
        for check in check_targeted_voting(
            consensus, votes.address, model_a, model_b, votes.outcome, alpha=config.alpha
        ):
            by_address[check.group] = check.flagged
        flags = {
            "sprt": sprt[votes.rater],
            "target_rater": by_rater[votes.rater],
            "target_address": by_address[votes.address],
            "min_votes": too_few[votes.rater],
        }
        stable = np.array_equal(sprt | by_rater, excluded_rater) and np.array_equal(
            by_address, excluded_address
        )
        if stable:
            return Outcome(rank, counted, flags, passes)
        excluded_rater, excluded_address = sprt | by_rater, by_address
    counted = ~too_few[votes.rater] & ~excluded_rater[votes.rater]
    counted &= ~excluded_address[votes.address]
    _, rank = fit_rank(votes, arena, counted)
    return Outcome(rank, counted, flags, MAX_PASSES)


def smallest_effort(
    reached: Callable[[int], bool], *, start: int, cap: int, tolerance: float
) -> int | None:
    """Smallest effort e <= cap with reached(e): doubling from `start`, then bisection to a
    relative `tolerance`; None if even `cap` does not reach the goal."""
    lo, hi = 0, max(1, min(start, cap))
    while not reached(hi):
        if hi >= cap:
            return None
        lo, hi = hi, min(2 * hi, cap)
    while hi - lo > max(1, tolerance * hi):
        mid = (lo + hi) // 2
        if reached(mid):
            hi = mid
        else:
            lo = mid
    return hi


@dataclass
class Attack:
    """Efforts found for one arena and one defence setting (None: not reached within the cap)."""

    target_votes: dict[str, int | None]  # goal -> adversarial votes for the target
    total_votes: dict[str, int | None]  # goal -> every adversarial vote
    accounts: dict[str, int | None]
    baseline_rank: int
    flags: dict[str, dict[str, float]] = field(default_factory=dict)  # goal -> flag_statistics


def attack(
    arena: Arena,
    config: RiggingConfig,
    *,
    defended: bool,
    target_votes: int = 0,
    accounts_per_address: int = 1,
    blend_votes: int | None = None,
    rng: np.random.Generator,
    goals: tuple[str, ...] = ("+1 rank", "top 3"),
    cap_votes: int | None = None,
) -> Attack:
    """Search the adversary's effort for each goal on one arena. Defended: accounts of
    `target_votes` target votes and `blend_votes` honest ones (default: just enough to reach
    the minimum M)."""
    defences = config if defended else None
    cap_votes = cap_votes or config.max_adversarial_votes
    if defended:
        blend = max(0, config.min_votes - target_votes) if blend_votes is None else blend_votes
        per = target_votes + blend
        cap = max(1, cap_votes // per)
        pool = sybil_votes(
            arena,
            accounts=cap,
            target_votes=target_votes,
            blend_votes=blend,
            accounts_per_address=accounts_per_address,
            rng=rng,
        )
    else:
        per, cap = 1, cap_votes
        pool = sybil_votes(
            arena, accounts=1, target_votes=cap, blend_votes=0, accounts_per_address=1, rng=rng
        )
    cache: dict[int, Outcome] = {}

    def outcome(effort: int) -> Outcome:
        if effort not in cache:
            votes = arena.honest + pool.head(effort * per) if effort else arena.honest
            cache[effort] = defended_board(votes, arena, defences)
        return cache[effort]

    baseline = outcome(0).rank
    wanted = {"+1 rank": baseline - 1, "top 3": 3}
    efforts: dict[str, int | None] = {}
    start = 1
    for goal in goals:
        found = smallest_effort(
            lambda e, goal=goal: outcome(e).rank <= wanted[goal],
            start=start,
            cap=cap,
            tolerance=config.tolerance,
        )
        efforts[goal] = found
        if found is None:
            break
        start = found
    for goal in goals:
        efforts.setdefault(goal, None)
    targets = target_votes if defended else 1
    result = Attack(
        target_votes={g: None if e is None else e * targets for g, e in efforts.items()},
        total_votes={g: None if e is None else e * per for g, e in efforts.items()},
        accounts={g: None if e is None else (e if defended else 1) for g, e in efforts.items()},
        baseline_rank=baseline,
    )
    if defended:
        for goal, effort in efforts.items():
            if effort is not None:
                votes = arena.honest + pool.head(effort * per)
                result.flags[goal] = flag_statistics(arena, votes, outcome(effort))
    elif efforts.get("+1 rank") is not None:
        # The undefended attack (one account, target votes only) against every defence.
        votes = arena.honest + pool.head(efforts["+1 rank"])
        against = defended_board(votes, arena, config)
        result.flags["+1 rank"] = flag_statistics(arena, votes, against)
        result.flags["+1 rank"]["rank gained"] = float(
            defended_board(arena.honest, arena, config).rank - against.rank
        )
    return result


def flag_statistics(arena: Arena, votes: Votes, outcome: Outcome) -> dict[str, float]:
    """Adversarial votes excluded and honest raters flagged, by defence; honest votes excluded."""
    honest = votes.rater < arena.n_honest_raters
    n_adversarial = int((~honest).sum())
    stats: dict[str, float] = {}
    for name in DEFENCES:
        flag = outcome.flags[name]
        stats[f"adversarial {name}"] = float(flag[~honest].sum() / max(n_adversarial, 1))
        raters = np.unique(votes.rater[honest & flag])
        stats[f"honest raters {name}"] = float(len(raters))
    flagged = (outcome.flags["sprt"] | outcome.flags["target_rater"]) | outcome.flags[
        "target_address"
    ]
    stats["honest raters flagged"] = float(len(np.unique(votes.rater[honest & flagged])))
    stats["honest raters"] = float(arena.n_honest_raters)
    stats["honest share flagged"] = stats["honest raters flagged"] / arena.n_honest_raters
    stats["honest votes flagged"] = float((honest & flagged).sum() / honest.sum())
    stats["honest votes min_votes"] = float(
        (honest & outcome.flags["min_votes"]).sum() / honest.sum()
    )
    stats["adversarial excluded"] = float(
        (~honest & ~outcome.counted).sum() / max(n_adversarial, 1)
    )
    stats["passes"] = float(outcome.passes)
    return stats


def best_target_votes(
    arena: Arena, config: RiggingConfig, accounts_per_address: int, rng: np.random.Generator
) -> tuple[int, dict[int, int | None]]:
    """The adversary's pilot: total votes to gain one rank for each t in the grid (pruned at
    the best so far); returns (best t, {t: total votes or None})."""
    totals: dict[int, int | None] = {}
    best_t, best_total = config.target_grid[0], config.max_adversarial_votes
    for t in config.target_grid:
        found = attack(
            arena,
            config,
            defended=True,
            target_votes=t,
            accounts_per_address=accounts_per_address,
            rng=rng,
            goals=("+1 rank",),
            cap_votes=best_total,
        ).total_votes["+1 rank"]
        totals[t] = found
        if found is not None and found < best_total:
            best_t, best_total = t, found
    return best_t, totals


@dataclass
class Row:
    """One defence setting: the adversary's strategy and one Attack per seed."""

    label: str
    accounts_per_address: int | None  # None: defences off (one account)
    every_battle: bool  # the adversary votes on every battle served (honestly off-target)
    target_votes: int | None  # t, per account
    votes_per_account: int | None
    attacks: list[Attack]


@dataclass
class Report:
    config: RiggingConfig
    rows: list[Row]
    pilot: dict[int, tuple[int, dict[int, int | None]]]  # accounts/address -> (t, totals)
    honest: dict[str, float]  # honest arena facts (first seed)
    seconds: float


def run(config: RiggingConfig) -> Report:
    started = time.perf_counter()
    arenas = [honest_arena(config, np.random.default_rng(seed)) for seed in config.seeds]
    first = arenas[0]
    per_rater = np.bincount(first.honest.rater)
    light = per_rater < config.min_votes
    shows = (first.pairs == first.target).any(axis=1)
    share = float(first.battle_probability[shows].sum())
    honest = {
        "raters": float(first.n_honest_raters),
        "median votes": float(np.median(per_rater)),
        "max votes": float(per_rater.max()),
        "raters >= 100": float((per_rater >= 100).mean()),
        "raters < M": float(light.mean()),
        "target battle share": share,
    }
    off = [
        attack(arena, config, defended=False, rng=np.random.default_rng(seed))
        for seed, arena in zip(config.seeds, arenas, strict=True)
    ]
    rows = [Row("off", None, False, None, None, off)]
    pilot = {}
    for per_address in config.accounts_per_address:
        rng = np.random.default_rng(10_000 + per_address)
        pilot[per_address] = best_target_votes(first, config, per_address, rng)
        t = pilot[per_address][0]
        strategies = [(False, max(0, config.min_votes - t))]
        if per_address in config.every_battle_accounts_per_address:
            # On average t / share battles are served to show the target t times.
            strategies.append((True, max(round(t * (1 - share) / share), config.min_votes - t)))
        for every_battle, blend in strategies:
            attacks = [
                attack(
                    arena,
                    config,
                    defended=True,
                    target_votes=t,
                    blend_votes=blend,
                    accounts_per_address=per_address,
                    rng=np.random.default_rng(seed + 100),
                )
                for seed, arena in zip(config.seeds, arenas, strict=True)
            ]
            rows.append(Row("on", per_address, every_battle, t, t + blend, attacks))
    return Report(config, rows, pilot, honest, time.perf_counter() - started)


def summary(values: list[float | None]) -> str:
    """median [min-max]; '>cap (k/n)' where only k of n arenas were rigged within the cap."""
    if any(v is None for v in values):
        reached = [v for v in values if v is not None]
        return f">cap ({len(reached)}/{len(values)})"
    v = np.array(values, dtype=float)
    if v.min() == v.max():
        return f"{np.median(v):,.0f}"
    return f"{np.median(v):,.0f} [{v.min():,.0f}-{v.max():,.0f}]"


def row_label(row: Row) -> str:
    if row.accounts_per_address is None:
        return "off: 1 account, target battles only"
    votes_on = "every battle" if row.every_battle else "chosen battles"
    return (
        f"on: {row.accounts_per_address}/address, t={row.target_votes}, "
        f"{row.votes_per_account}/acc, {votes_on}"
    )


def print_report(report: Report) -> None:
    config, honest = report.config, report.honest
    print(
        f"{config.models} models over {config.spread:g} logits, target m{config.models // 2:02d} "
        f"(true rank {config.models - config.models // 2}, in {honest['target battle share']:.1%}"
        f" of battles); {config.honest_votes:,} honest votes ({config.tie_rate:.0%} ties), "
        f"active sampler;\n{honest['raters']:,.0f} honest raters: median "
        f"{honest['median votes']:.0f} votes, max {honest['max votes']:,.0f}, "
        f"{honest['raters >= 100']:.1%} with >= 100, {honest['raters < M']:.0%} with < M; "
        f"{len(config.seeds)} seeds, median [min-max]"
    )
    print(
        f"defences on: daily cap {DAILY_CAP}/account, SPRT (alpha {config.sprt_alpha}, beta "
        f"{config.sprt_beta}, {config.sprt_alternative}), targeted-voting test per rater and\n"
        f"per address (alpha {config.alpha}), votes count from M = {config.min_votes} decisive "
        "votes per rater"
    )
    for per_address, (t, totals) in report.pilot.items():
        shown = ", ".join(f"{k}: {'-' if v is None else f'{v:,}'}" for k, v in totals.items())
        print(
            f"adversary's pilot, {per_address}/address, total votes to gain a rank by t "
            f"(-: worse than the best so far): {shown} -> t = {t}"
        )
    width = max(len(row_label(row)) for row in report.rows)
    for goal in ("+1 rank", "top 3"):
        print(f"\nadversarial votes to reach {goal}")
        print(f"{'setting':<{width}} {'target votes':>20} {'total votes':>22} {'accounts':>16}")
        for row in report.rows:
            cells = [
                summary([getattr(a, column)[goal] for a in row.attacks])
                for column in ("target_votes", "total_votes", "accounts")
            ]
            print(f"{row_label(row):<{width}} {cells[0]:>20} {cells[1]:>22} {cells[2]:>16}")
    print(
        "baseline rank of the target (honest votes only): "
        + ", ".join(
            f"{'on' if row.accounts_per_address else 'off'} "
            f"{summary([a.baseline_rank for a in row.attacks])}"
            for row in report.rows[:2]
        )
    )
    off = [a.flags["+1 rank"] for a in report.rows[0].attacks if a.flags]
    if off:
        excluded = " / ".join(
            f"{np.median([f[f'adversarial {d}'] for f in off]):.0%}" for d in DEFENCES
        )
        print(
            "the defences-off attack at its +1-rank effort, defences on: its votes excluded by "
            f"SPRT / rater / address / min-M\n{excluded}, ranks gained "
            f"{summary([f['rank gained'] for f in off])}"
        )
    print(
        "\nflags at each goal's effort, defences on (median; [max] over seeds): adversarial votes "
        "excluded by the SPRT,\nthe targeted-voting test per rater and per address, the "
        "minimum-votes rule, any; honest raters flagged by each\nand by any (share of honest "
        "raters); honest votes excluded by flags and by the minimum-votes rule"
    )
    print(
        f"{'':<14} {'':<7} {'adversarial votes':<26} | {'honest raters':<31} | honest votes\n"
        f"{'setting':<14} {'goal':<7} {'SPRT':>4} {'rater':>5} {'addr':>4} {'min-M':>5} "
        f"{'any':>4} | {'SPRT':>4} {'rater':>5} {'addr':>4} {'any':>8} {'share':>6} | "
        f"{'flags':>13} {'min-M':>6}"
    )
    for row in report.rows[1:]:
        label = f"{row.accounts_per_address}/addr {'every' if row.every_battle else 'chosen'}"
        for goal in ("+1 rank", "top 3"):
            stats = [a.flags[goal] for a in row.attacks if goal in a.flags]
            if not stats:
                print(f"{label:<14} {goal:<7} not reached")
                continue

            def med(key: str, stats=stats) -> float:
                return float(np.median([s[key] for s in stats]))

            def worst(key: str, stats=stats) -> float:
                return float(np.max([s[key] for s in stats]))

            adversarial = " ".join(
                f"{med(f'adversarial {d}'):>{w}.0%}"
                for d, w in zip((*DEFENCES, "excluded"), (4, 5, 4, 5, 4), strict=True)
            )
            raters = " ".join(
                f"{med(f'honest raters {d}'):>{w}.0f}"
                for d, w in zip(DEFENCES[:3], (4, 5, 4), strict=True)
            )
            flagged = "honest raters flagged"
            any_rater = f"{med(flagged):.0f} [{worst(flagged):.0f}]"
            votes = f"{med('honest votes flagged'):.1%} [{worst('honest votes flagged'):.1%}]"
            print(
                f"{label:<14} {goal:<7} {adversarial} | {raters} {any_rater:>8} "
                f"{med('honest share flagged'):>6.2%} | {votes:>13} "
                f"{med('honest votes min_votes'):>6.1%}"
            )
    print(f"\n{report.seconds:.0f} s")


def quick_config() -> RiggingConfig:
    """A small arena for the unit test (< 20 s): 12 models, 6,000 honest votes, 3 seeds."""
    return RiggingConfig(
        models=12,
        honest_votes=6000,
        refit_every=500,
        every_battle_accounts_per_address=(),
        target_grid=(1, 8),
        seeds=(0, 1, 2),
        max_adversarial_votes=40_000,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = RiggingConfig()
    parser.add_argument("--seeds", type=int, default=len(defaults.seeds))
    parser.add_argument("--models", type=int, default=defaults.models)
    parser.add_argument("--spread", type=float, default=defaults.spread)
    parser.add_argument("--honest-votes", type=int, default=defaults.honest_votes)
    parser.add_argument("--median-votes", type=float, default=defaults.median_votes)
    parser.add_argument("--tie-rate", type=float, default=defaults.tie_rate)
    parser.add_argument(
        "--accounts-per-address", type=int, nargs="+", default=list(defaults.accounts_per_address)
    )
    parser.add_argument(
        "--every-battle-accounts-per-address",
        type=int,
        nargs="*",
        default=list(defaults.every_battle_accounts_per_address),
    )
    parser.add_argument("--min-votes", type=int, default=defaults.min_votes)
    parser.add_argument("--alpha", type=float, default=defaults.alpha)
    parser.add_argument("--target-grid", type=int, nargs="+", default=list(defaults.target_grid))
    parser.add_argument("--max-adversarial-votes", type=int, default=defaults.max_adversarial_votes)
    parser.add_argument("--quick", action="store_true", help="the unit test's small arena")
    args = parser.parse_args()
    if args.quick:
        config = quick_config()
    else:
        config = replace(
            defaults,
            seeds=tuple(range(args.seeds)),
            models=args.models,
            spread=args.spread,
            honest_votes=args.honest_votes,
            median_votes=args.median_votes,
            tie_rate=args.tie_rate,
            accounts_per_address=tuple(args.accounts_per_address),
            every_battle_accounts_per_address=tuple(args.every_battle_accounts_per_address),
            min_votes=args.min_votes,
            alpha=args.alpha,
            target_grid=tuple(args.target_grid),
            max_adversarial_votes=args.max_adversarial_votes,
        )
    print_report(run(config))


if __name__ == "__main__":
    main()
