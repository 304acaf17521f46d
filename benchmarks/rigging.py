"""Rigging the arena: adversarial votes needed to lift a mid-table model, defences off and on.

    .venv/bin/python benchmarks/rigging.py [--seeds 5] [--models 20] [--honest-votes 20000]
        [--honest-skip 0.15] [--accounts-per-address 10 1] [--every-battle-accounts-per-address 1]
        [--vote-rate-battles 5] [--min-vote-rate 0.5] [--min-votes 5] [--alpha 0.01]
        [--target-grid 1 2 4 6 8 11] [--grid] [--quick]

Arena. `--models` models with true skills evenly spaced over `--spread` logits (4 logits ≈ 700
Elo points). `--honest-votes` pairwise votes from honest raters whose votes per rater are
log-normal (median `--median-votes` = 7, sigma 1.2, at most 2,000: most cast a handful, about 1%
cast hundreds); each vote follows Bradley–Terry with the true skills, with `--tie-rate` ties.
Pairs come from the arena's active sampler: the distribution `arena.sampling.choose_battle`
draws from (`pair_probabilities`, default SamplingConfig, floor 0.05), refreshed every 250 votes
from a MAP Bradley–Terry refit, starting from a fresh arena. 5% of honest raters sit behind 10
shared addresses (campus or carrier NAT); the others have an address each. Honest raters leave
battles too: each battle served is left without a vote with probability `--honest-skip` = 0.15,
independently, so a rater with v votes was served v + NegativeBinomial(v, 0.85) battles (a vote
rate of about 85%); the simulation keeps battles served per rater, as the platform does.

Adversary. It wants the model of true rank N/2 (the target) higher in the board fitted with
`fit_bradley_terry` (the platform's fit, default options). It recognises the target in every
battle (the worst case for anonymity). Its battles come from the same sampler (the sampler's
distributions over the second half of the honest stream, averaged; the campaign does not move
the sampler), one at a time: it cannot choose them, only vote or leave (battles expire). With
defences off one account votes for the target in every battle showing it and leaves the rest:
target votes = total votes. With defences on it opens sybil accounts, `--accounts-per-address`
of them per network address (10, and 1 = unlimited addresses); each is served battles, votes for
the target whenever it appears, up to t times, and votes honestly (Bradley–Terry with the true
skills, decisive) on just enough of its other battles for the vote-count rules to count it (M
votes, and R of its battles once served B), leaving the rest, in random order ("rule-bound").
Its best strategy has two shapes: "t=..." accounts are done at their t-th target vote; "t=...,
leaves at L" accounts also stop after L battles served (L = M, the fewest that carry M votes, or
B - 1, the most that escape the vote-rate rule), and one shown no target by then casts nothing:
accounts are free, votes are not. (The adversary plans its honest votes with hindsight, a small
favour to it.) It picks the strategy per address setting by a pilot on the first arena (fewest
total votes to gain one rank; t from `--target-grid`), then tries the pilot's 3 best on every
arena and keeps the best median (several strategies cost about the same, and one arena's
choice is noise). The "every battle" row votes on every battle it is served (the pilot's best
t; honestly when the target is not shown). The "pre-rule sybils" line replays the strategy that
was optimal before the vote-rate rule (t target votes, honest votes only up to M, every other
battle left) with the target votes the 1/address row needed.

Defences on, as the platform runs them: (1) the daily cap, ARENA_VOTES_PER_DAY_PER_RATER = 500
votes per account per day. It bounds one account's throughput, not the adversary's: every sybil
here casts a few dozen votes at most, so the cap never binds and costs the adversary only the
accounts it opens (the accounts column, which counts accounts that cast nothing; votes/acc is
per account opened); (2) the outlier test `check_raters` (SPRT, alpha 0.01, beta 0.1,
alternative "random") per rater; (3) the targeted-voting test
`arena.ratings.targeting.check_targeted_voting` (alpha `--alpha`) per rater and (4) per address;
the vote-count rules of `arena.rating_snapshots.vote_count_excluded_raters`: (5) the vote-rate
rule, a rater served at least B = `--vote-rate-battles` battles counts only if votes / battles
served >= R = `--min-vote-rate`, otherwise all their votes are left out ("selective"); (6) the
minimum-votes rule, a rater's votes count only from M = `--min-votes` votes (ties included, as
on the platform; "few_votes"). Flagged raters, every rater of a flagged address and the raters
the rules leave out are excluded from the board and the consensus; as the hourly check does,
the consensus is refitted without the excluded raters and the tests rerun until the flags stop
changing; the board is the last fit. (arena.rater_checks also rechecks each suspect against a
consensus fitted without its own votes; that leave-one-out step is not modelled here: it
matters little for sybils of a few votes.)

Effort is searched by doubling then bisection (to 10%) on the number of target votes (defences
off) or accounts (on), on a fixed stream of adversarial votes per arena; "+1 rank" means the
target's fitted rank is one better than on the honest votes alone (under the same defences),
"top 3" means rank <= 3. Each cell: median [min-max] over `--seeds` arenas. The flag table is
at each goal's effort: adversarial votes excluded by each defence, honest raters flagged by
each test (median; the worst arena in brackets), honest votes excluded by the flags. `--grid`
adds the sweep: M in 1, 5, 10, 20, each with B = 20 and B = M (+1 rank only; ~14 more minutes).

Measured (2026-12-08, 2 shared CPU cores, default flags, 225 s; the sweep from the same day's
`--grid` run, whose first part prints the same table):

    20 models over 4 logits, target m10 (true rank 10, in 12.2% of battles); 20,000 honest votes (10% ties), active sampler;
    1,381 honest raters: median 7 votes, max 528, 1.3% with >= 100; each battle left with probability 0.15 (vote rate 85%),
    69% served >= B battles; 5 seeds, median [min-max]
    defences on: daily cap 500/account, SPRT (alpha 0.01, beta 0.1, random), targeted-voting test per rater and
    per address (alpha 0.01), vote-rate rule (from B = 5 battles served, votes >= R = 0.5 of them), votes count from M = 5 votes per rater
    honest raters left out by the rules (median; [max] over seeds), raters / their votes: vote rate 0.23% [0.43%] / 0.04% [0.07%], min-M 35.0% / 5.9%
    adversary's pilot, 10/address, total votes to gain a rank on the first arena (-: worse than the best so far):
      t=1: 1,502, t=2: -, t=4: -, t=6: -, t=8: -, t=11: -, t=1, leaves at 4: 1,270, t=2, leaves at 4: 1,050, t=4, leaves at 4: 1,050, t=1, leaves at 5: -, t=2, leaves at 5: -, t=5, leaves at 5: 1,050
      finalists, median over the arenas: t=2, leaves at 4: 1,060, t=4, leaves at 4: 1,060, t=5, leaves at 5: 950 -> t=5, leaves at 5
    adversary's pilot, 1/address, total votes to gain a rank on the first arena (-: worse than the best so far):
      t=1: 1,353, t=2: 1,026, t=4: -, t=6: -, t=8: -, t=11: -, t=1, leaves at 4: -, t=2, leaves at 4: -, t=4, leaves at 4: 930, t=1, leaves at 5: -, t=2, leaves at 5: -, t=5, leaves at 5: -
      finalists, median over the arenas: t=4, leaves at 4: 1,060, t=2: 1,236, t=1: 1,647 -> t=4, leaves at 4

    adversarial votes to reach +1 rank
    setting                                              target votes            total votes           accounts votes/acc
    off: 1 account, target battles only                 256 [144-640]          256 [144-640]                  1      256
    on: 10/address, t=5, leaves at 5, rule-bound        232 [145-615]        950 [625-2,405]    480 [240-1,152]        2
    on: 1/address, t=4, leaves at 4, rule-bound         248 [145-649]      1,060 [560-2,730]    640 [208-1,536]        2
    on: 1/address, t=2, every battle                    224 [144-576]      2,342 [851-5,482]       112 [72-288]       19

    adversarial votes to reach top 3
    setting                                              target votes            total votes           accounts votes/acc
    off: 1 account, target battles only           3,072 [1,920-6,400]    3,072 [1,920-6,400]                  1     3072
    on: 10/address, t=5, leaves at 5, rule-bound  2,939 [1,800-6,079]  12,080 [7,800-24,680] 5,632 [3,120-11,520]        2
    on: 1/address, t=4, leaves at 4, rule-bound   2,883 [1,631-5,245]  12,405 [7,305-22,235] 7,616 [4,160-12,288]        2
    on: 1/address, t=2, every battle              2,912 [2,112-5,760] 25,739 [19,190-54,736] 1,456 [1,056-2,880]       19
    baseline rank of the target (honest votes only): off 10, on 10
    the defences-off attack at its +1-rank effort, defences on: its votes excluded by SPRT / rater / address / vote rate / min-M
    0% / 100% / 100% / 100% / 0%, ranks gained 0
    the pre-rule sybils (t=2, honest votes only up to M, every other battle left) with the 1/address row's +1-rank target votes:
    620 [365-1,625] votes, 70% of them left out by the vote-rate rule, 70% by any defence, ranks gained 0

    flags at each goal's effort, defences on (median; [max] over seeds): adversarial votes excluded by the SPRT,
    the targeted-voting test per rater and per address, the vote-rate rule, the minimum-votes rule, any;
    honest raters flagged by each test and by any (share of honest raters); honest votes excluded by the flags
                           adversarial votes                | honest raters                   | honest votes
    setting        goal    SPRT rater addr  rate min-M  any | SPRT rater addr      any  share |         flags
    10/addr rules  +1 rank   0%    0%   0%    0%    0%   0% |    1     0    0    1 [1]  0.07% |   0.2% [0.5%]
    10/addr rules  top 3     0%    0%   0%    0%    0%   0% |   14     1    1  15 [54]  1.14% |  9.8% [13.0%]
    1/addr rules   +1 rank   0%    0%   0%    0%    0%   0% |    0     0    0    0 [1]  0.00% |   0.0% [0.5%]
    1/addr rules   top 3     0%    0%   0%    0%    0%   0% |   14     2    2  15 [43]  1.14% |  9.7% [12.3%]
    1/addr every   +1 rank   0%    0%   0%    0%    0%   0% |    1     0    0    1 [1]  0.07% |   0.2% [0.5%]
    1/addr every   top 3     0%    0%   0%    0%    0%   0% |   14     1    1  15 [49]  1.07% |  9.7% [11.4%]

    225 s

    the sweep: the minimum-votes rule M and the vote-rate rule's B (R = 0.5), 5 seeds, +1 rank: total adversarial votes
    (median [min-max]) and the adversary's strategy, per accounts-per-address setting; honest raters flagged by the tests at
    those efforts (share; median [max] over settings and seeds); honest raters and their votes left out by the
    vote-rate rule (rate) and by M (min-M), median over seeds; the goal (>= 1,000 votes, <= 1% flagged)
      M   B                           10/address                            1/address        flagged | raters: rate  min-M | votes: rate  min-M | goal
      1  20     273 [147-649] (t=1, leaves at 1)     273 [147-649] (t=1, leaves at 1)  0.07% [0.08%] |        0.00%   0.0% |       0.00%   0.0% | not met
      1   1     273 [147-649] (t=1, leaves at 1)     273 [147-649] (t=1, leaves at 1)  0.07% [0.08%] |        0.49%   0.0% |       0.07%   0.0% | not met
      5  20   950 [625-2,405] (t=5, leaves at 5) 505 [219-1,525] (t=19, leaves at 19)  0.04% [0.08%] |        0.00%  35.0% |       0.00%   5.9% | not met
      5   5   950 [625-2,405] (t=5, leaves at 5) 1,060 [560-2,730] (t=4, leaves at 4)  0.04% [0.08%] |        0.23%  35.0% |       0.04%   5.9% | not met
     10  20 1,410 [1,220-4,650] (t=1, leaves at 10)                867 [426-1,777] (t=4)  0.07% [0.08%] |        0.00%  59.8% |       0.00%  16.7% | not met
     10  10 1,470 [1,210-4,830] (t=1, leaves at 9)                867 [426-1,777] (t=4)  0.07% [0.08%] |        0.00%  59.8% |       0.00%  16.7% | not met
     20  20 3,180 [2,300-8,440] (t=1, leaves at 19)                910 [335-1,851] (t=8)  0.07% [0.08%] |        0.00%  79.9% |       0.00%  35.8% | not met

Reading. The issue's goal, with defences on: >= 1,000 adversarial votes to gain one rank (median
over the arenas, both address settings) and <= 1% of honest raters flagged by the tests.
* NOT met by any swept setting. The closest, and the default: B = 5, R = 0.5, M = 5 (alpha
  0.01): 950 [625-2,405] votes with 10 accounts per address, 1,060 [560-2,730] with unlimited
  addresses (before the vote-rate rule: 3,200 and 360), at a price of 5.9% of the honest votes
  (35% of the raters, by M) and 0.04% (0.23% of the raters, by the vote rate), against 39%
  before (M = 20). Honest raters flagged at the +1-rank effort: 0.07% (at most 1 of 1,381).
* Why about 1,000: a target vote now costs about 4 votes whatever the shape. A rule-bound
  account showing the target t times is served about t / 12.2% battles and must vote on half:
  R / share = 4.1 votes per target vote; an account that leaves after L battles pays M votes for
  the k >= 1 target votes it got: M / E[k | k >= 1], 3.9 for M = L = 5. The target moves after
  150-250 target votes (fewer than the undefended 256: the rules also drop light raters' votes),
  so 600-1,000 votes plus noise; across arenas the cost varies 2-5x.
* B: with B = 20, accounts that leave after 19 battles never meet the vote-rate rule; at M = 5
  they need 505 votes. B <= M closes that (every counted account has been served >= M >= B
  battles) at almost no honest cost: the default B = 5.
* M: M = 1 is no defence (273 = undefended: one-battle accounts, each voting only when shown
  the target). M above 5 costs honest votes (16.7% at 10, 35.8% at 20) and buys nothing with
  unlimited addresses (867, 910: the fewer honest votes counted, the cheaper the target is to
  move); it only raises the 10-per-address cost (1,410-3,180), where each address's 10
  accounts carry only about 10 target votes.
* The vote-rate rule does what it is for: the pre-rule sybils (2 target votes and 3 honest ones
  per account over about 16 battles) lose 70% of their votes to it and gain nothing; the
  defences-off attack (one account, target battles only) is left out entirely (by the vote
  rate and by the targeted-voting test); the pre-rule optimum at M = 20 (360 votes) is gone.
* At the top-3 effort (12,000 rigged votes against 20,000 honest ones) the consensus is dragged
  so far that 1.1% of honest raters (worst arena 3.9%), carrying ~10% of the honest votes, are
  flagged, mostly by the SPRT: that goal is reached only by rigging a large share of the board.
* Not modelled: an adversary that spends its filler votes against the target's rivals instead
  of voting honestly (no test looks for a rater who disfavours one model); it would be cheaper.

Knobs, measured the same day (+1 rank, total adversarial votes, 10/address | 1/address, 5 seeds):
* `--min-vote-rate 0.6`: B = M = 5: 950 [695-2,660] | 950 [530-2,660] (the accounts that leave
  after 4-5 battles pay M, not R); B = M = 10: 1,470 [1,400-4,830] | 946 [487-2,292] (the
  pilot's other finalists 1,302 and 1,311: the estimate is noisy by about 20%); M = 10, B = 20:
  1,410 | 790. Honest votes left out by the vote rate: 0.34%, 0.09%, 0%.
* Measured before the vote-rate rule: `--honest-votes 100000` made the unlimited-address cost
  1,280 (undefended 1,024): the cost scales with the honest votes on the target's neighbours.
So in a 20,000-vote arena the rules cap a sybil's advantage at about 4 votes per target vote;
what goes further is the price of an identity (the 10-per-address rows), more honest votes, or
a test of the filler votes themselves.
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
TESTS = ("sprt", "target_rater", "target_address")  # flags (a verdict on the votes)
RULES = ("selective", "min_votes")  # vote-count rules (a verdict on the counts)
DEFENCES = TESTS + RULES
GOALS = ("+1 rank", "top 3")


@dataclass(frozen=True)
class RiggingConfig:
    models: int = 20
    spread: float = 4.0  # logits between the weakest and the strongest model
    honest_votes: int = 20_000
    median_votes: float = 7.0  # per honest rater (log-normal)
    votes_sigma: float = 1.2
    max_votes: int = 2000  # per honest rater
    tie_rate: float = 0.1
    honest_skip: float = 0.15  # P(an honest rater leaves a battle it is served without voting)
    shared_share: float = 0.05  # honest raters behind shared addresses
    shared_addresses: int = 10
    refit_every: int = 250  # honest votes between sampler refits
    accounts_per_address: tuple[int, ...] = (10, 1)
    # ... and where the adversary also votes on every battle it is served (no skipping)
    every_battle_accounts_per_address: tuple[int, ...] = (1,)
    vote_rate_battles: int = 5  # B: battles served before the vote-rate rule applies
    min_vote_rate: float = 0.5  # R: votes / battles served a rater needs from B battles on
    min_votes: int = 5  # M: votes before a rater's votes count (1: every rater counts)
    # The sweep (+1 rank only): (M, B) pairs, B None: vote_rate_battles; () skips it.
    sweep: tuple[tuple[int, int | None], ...] = ()
    alpha: float = 0.01  # targeted-voting test, per rater and per address
    sprt_alpha: float = 0.01
    sprt_beta: float = 0.1
    sprt_alternative: str = "random"
    target_grid: tuple[int, ...] = (1, 2, 4, 6, 8, 11)  # candidate target votes per account
    finalists: int = 3  # the pilot's best strategies tried on every arena
    candidates: tuple[Strategy, ...] = ()  # the pilot's candidates (): pilot_strategies
    goals: tuple[str, ...] = GOALS
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
    served: np.ndarray  # int [honest raters]: battles served to each (voted or left)
    n_honest_raters: int
    n_honest_addresses: int
    pairs: np.ndarray  # int [P, 2]
    # [P] what the sampler serves: its distributions over the second half of the honest
    # stream, averaged (one refit's distribution is far more concentrated)
    battle_probability: np.ndarray

    @property
    def shows_target(self) -> np.ndarray:
        return (self.pairs == self.target).any(axis=1)

    @property
    def target_share(self) -> float:
        """The share of the battles served that show the target."""
        return float(self.battle_probability[self.shows_target].sum())


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
    # Battles served: each is left without a vote with probability honest_skip, independently,
    # until the rater has cast its votes (the battles it left: negative binomial).
    votes_cast = np.array(counts, dtype=np.int64)
    skipped = rng.negative_binomial(votes_cast, 1 - config.honest_skip) if config.honest_skip else 0
    return Arena(
        skills=skills,
        names=names,
        target=n // 2,  # 0-based from the weakest: true rank n - n // 2 = n / 2 for even n
        honest=Votes(a, b, outcome, rater, address_of[rater], np.arange(len(a), dtype=float)),
        served=votes_cast + skipped,
        n_honest_raters=n_raters,
        n_honest_addresses=n_raters + config.shared_addresses,
        pairs=pairs,
        battle_probability=served / served.sum(),
    )


@dataclass(frozen=True)
class Strategy:
    """How each sybil account is served battles and votes on them.

    target_votes t: it votes for the target in the first t battles showing it and is then done
    (no more battles served), unless leave_at L: it also stops after L battles served, short of
    t target votes (an account shown no target by then casts nothing). mode: "rules" votes
    honestly on just enough of its other battles for the vote-count rules (M votes in all; and
    R of its battles once served B), skipping the rest; "every" votes on every battle it is
    served (honestly on those without the target; at least M votes); "pre-rule" votes honestly
    on just enough for M and ignores the vote-rate rule (what was optimal without it).
    """

    target_votes: int
    leave_at: int | None = None
    mode: str = "rules"

    def label(self) -> str:
        leave = f", leaves at {self.leave_at}" if self.leave_at is not None else ""
        return f"t={self.target_votes}{leave}"


@dataclass
class Pool:
    """A stream of sybil accounts, contiguous in `votes` (a prefix of k accounts is the attack
    with k accounts); per account: cumulated votes and target votes, battles served."""

    votes: Votes
    ends: np.ndarray  # int [A]: votes of accounts 0..i
    target_ends: np.ndarray  # int [A]: target votes of accounts 0..i
    served: np.ndarray  # int [A]

    def head(self, accounts: int) -> tuple[Votes, np.ndarray]:
        n = int(self.ends[accounts - 1]) if accounts else 0
        return self.votes.head(n), self.served[:accounts]


def account_plans(
    arena: Arena, config: RiggingConfig, strategy: Strategy, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(target votes, battles served, votes) of n accounts following `strategy`."""
    share = arena.target_share
    t, leave = strategy.target_votes, strategy.leave_at
    if leave is None:
        k = np.full(n, t, dtype=np.int64)  # the t-th battle showing the target ends it
        served = t + rng.negative_binomial(t, share, n)
    else:
        shown = np.cumsum(rng.random((n, leave)) < share, axis=1)
        k = np.minimum(shown[:, -1], t)
        served = np.where(shown[:, -1] >= t, np.argmax(shown >= t, axis=1) + 1, leave)
    other = served - k  # battles served without the target, so far
    need = np.maximum(k, config.min_votes)
    if strategy.mode == "every":
        votes = np.maximum(served, need)
        return k, np.maximum(served, votes), np.where(k > 0, votes, 0)
    rate = config.min_vote_rate if strategy.mode == "rules" else 0.0
    while True:
        need = np.maximum(k, config.min_votes)
        by_rate = np.ceil(rate * served - 1e-9).astype(np.int64)
        need = np.where(served >= config.vote_rate_battles, np.maximum(need, by_rate), need)
        short = np.where(k > 0, need - k - other, 0)  # honest votes it has no battle for yet
        if (short <= 0).all():
            break
        # It is served more battles: `short` without the target (it votes honestly on each)
        # and those with the target that come along meanwhile (left: its budget is spent).
        extra = np.maximum(short, 0)
        with_target = np.where(extra > 0, rng.negative_binomial(np.maximum(extra, 1), 1 - share), 0)
        served = served + extra + with_target
        other = other + extra
    return k, served, np.where(k > 0, need, 0)


def account_votes(
    arena: Arena,
    target_votes: np.ndarray,
    honest_votes: np.ndarray,
    accounts_per_address: int,
    rng: np.random.Generator,
) -> Votes:
    """Account i votes for the target in target_votes[i] battles showing it and honestly
    (Bradley–Terry, true skills, decisive) in honest_votes[i] battles without it, in random
    order; accounts contiguous, after the honest votes."""
    shows = arena.shows_target
    n = len(target_votes)
    battles, account = [], []
    for mask, count in ((shows, target_votes), (~shows, honest_votes)):
        p = np.where(mask, arena.battle_probability, 0.0)
        battles.append(rng.choice(len(p), size=int(count.sum()), p=p / p.sum()))
        account.append(np.repeat(np.arange(n), count))
    battles, account = np.concatenate(battles), np.concatenate(account)
    order = np.lexsort((rng.random(len(account)), account))  # random order within an account
    battles, account = battles[order], account[order]
    drawn = arena.pairs[battles]
    swap = rng.random(len(drawn)) < 0.5
    a, b = np.where(swap, drawn[:, 1], drawn[:, 0]), np.where(swap, drawn[:, 0], drawn[:, 1])
    honest_a_wins = rng.random(len(a)) < expit(arena.skills[a] - arena.skills[b])
    is_target = (a == arena.target) | (b == arena.target)
    outcome = np.where(is_target, np.where(a == arena.target, 0, 1), np.where(honest_a_wins, 0, 1))
    start = len(arena.honest)
    return Votes(
        a,
        b,
        outcome,
        arena.n_honest_raters + account,
        arena.n_honest_addresses + account // accounts_per_address,
        start + np.arange(len(a), dtype=float),
    )


def sybil_pool(
    arena: Arena,
    config: RiggingConfig,
    strategy: Strategy,
    *,
    max_votes: int,
    accounts_per_address: int,
    rng: np.random.Generator,
) -> Pool:
    """Accounts following `strategy`, as many as fit in max_votes votes (at least one)."""
    chunk = max(64, max_votes // max(config.min_votes, strategy.target_votes, 1) // 4)
    plans = []
    total = 0
    while total < max_votes:
        plans.append(account_plans(arena, config, strategy, chunk, rng))
        total += int(plans[-1][2].sum())
    k, served, votes = (np.concatenate(column) for column in zip(*plans, strict=True))
    ends = np.cumsum(votes)
    n = max(1, int(np.searchsorted(ends, max_votes, side="right")))
    k, served, votes = k[:n], served[:n], votes[:n]
    return Pool(
        votes=account_votes(arena, k, votes - k, accounts_per_address, rng),
        ends=ends[:n],
        target_ends=np.cumsum(k),
        served=served,
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


def vote_count_rules(
    votes: Votes, served: np.ndarray, config: RiggingConfig
) -> dict[str, np.ndarray]:
    """The platform's vote-count rules (arena.rating_snapshots.vote_count_excluded_raters), per
    rater id: "selective", served at least B battles but voted on fewer than R of them;
    "min_votes" ("few_votes" there), fewer than M votes in all (ties included)."""
    n_raters = max(int(votes.rater.max()) + 1, len(served))
    voted = np.bincount(votes.rater, minlength=n_raters)
    served = np.pad(served, (0, n_raters - len(served)))
    return {
        "selective": (served >= config.vote_rate_battles) & (voted < config.min_vote_rate * served),
        "min_votes": voted < config.min_votes,
    }


def defended_board(
    votes: Votes, served: np.ndarray | None, arena: Arena, config: RiggingConfig | None
) -> Outcome:
    """The board with every defence on (config) or off (None); served: battles served per
    rater id (honest raters, then the sybil accounts)."""
    if config is None:
        _, rank = fit_rank(votes, arena)
        return Outcome(rank, np.ones(len(votes), dtype=bool))
    rules = vote_count_rules(votes, served, config)
    n_raters = len(rules["min_votes"])
    n_addresses = int(votes.address.max()) + 1
    left_out = (rules["selective"] | rules["min_votes"])[votes.rater]
    excluded_rater = np.zeros(n_raters, dtype=bool)
    excluded_address = np.zeros(n_addresses, dtype=bool)
    model_a, model_b = arena.names[votes.a], arena.names[votes.b]
    rater_key = votes.rater.astype(str)
    for passes in range(1, MAX_PASSES + 1):
        counted = ~left_out & ~excluded_rater[votes.rater] & ~excluded_address[votes.address]
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
            "selective": rules["selective"][votes.rater],
            "min_votes": rules["min_votes"][votes.rater],
        }
        stable = np.array_equal(sprt | by_rater, excluded_rater) and np.array_equal(
            by_address, excluded_address
        )
        if stable:
            return Outcome(rank, counted, flags, passes)
        excluded_rater, excluded_address = sprt | by_rater, by_address
    counted = ~left_out & ~excluded_rater[votes.rater] & ~excluded_address[votes.address]
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
    strategy: Strategy | None,
    accounts_per_address: int = 1,
    rng: np.random.Generator,
    goals: tuple[str, ...] = GOALS,
    cap_votes: int | None = None,
) -> Attack:
    """Search the adversary's effort for each goal on one arena: accounts following `strategy`
    with the defences on, or (strategy None) one account's target votes with them off."""
    cap_votes = cap_votes or config.max_adversarial_votes
    if strategy is not None:
        pool = sybil_pool(
            arena,
            config,
            strategy,
            max_votes=cap_votes,
            accounts_per_address=accounts_per_address,
            rng=rng,
        )
        cap = len(pool.ends)
        defences: RiggingConfig | None = config

        def adversarial(effort: int) -> tuple[Votes, np.ndarray]:
            return pool.head(effort)

        def counts(effort: int) -> tuple[int, int, int]:  # target votes, votes, accounts
            return int(pool.target_ends[effort - 1]), int(pool.ends[effort - 1]), effort

    else:
        cap, defences = cap_votes, None
        one = account_votes(arena, np.array([cap]), np.array([0]), 1, rng)

        def adversarial(effort: int) -> tuple[Votes, np.ndarray]:
            # The account leaves every battle without the target: served ~ negative binomial.
            served = effort + rng.negative_binomial(effort, arena.target_share)
            return one.head(effort), np.array([served])

        def counts(effort: int) -> tuple[int, int, int]:
            return effort, effort, 1

    cache: dict[int, Outcome] = {}

    def votes_at(effort: int) -> tuple[Votes, np.ndarray]:
        if not effort:
            return arena.honest, arena.served
        votes, served = adversarial(effort)
        return arena.honest + votes, np.concatenate([arena.served, served])

    def outcome(effort: int) -> Outcome:
        if effort not in cache:
            cache[effort] = defended_board(*votes_at(effort), arena, defences)
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
    result = Attack({}, {}, {}, baseline_rank=baseline)
    for goal, effort in efforts.items():
        found = (None, None, None) if effort is None else counts(effort)
        result.target_votes[goal], result.total_votes[goal], result.accounts[goal] = found
    if strategy is not None:
        for goal, effort in efforts.items():
            if effort is not None:
                result.flags[goal] = flag_statistics(arena, votes_at(effort)[0], outcome(effort))
    elif efforts.get("+1 rank") is not None:
        # The undefended attack (one account, target votes only) against every defence.
        votes, served = votes_at(efforts["+1 rank"])
        against = defended_board(votes, served, arena, config)
        result.flags["+1 rank"] = flag_statistics(arena, votes, against)
        result.flags["+1 rank"]["rank gained"] = float(
            defended_board(arena.honest, arena.served, arena, config).rank - against.rank
        )
    return result


def flag_statistics(arena: Arena, votes: Votes, outcome: Outcome) -> dict[str, float]:
    """Adversarial votes excluded and honest raters flagged (tests) or left out (rules), by
    defence; honest votes excluded by the tests and by each rule."""
    honest = votes.rater < arena.n_honest_raters
    n_adversarial = int((~honest).sum())
    stats: dict[str, float] = {}
    for name in DEFENCES:
        flag = outcome.flags[name]
        stats[f"adversarial {name}"] = float(flag[~honest].sum() / max(n_adversarial, 1))
        stats[f"honest raters {name}"] = float(len(np.unique(votes.rater[honest & flag])))
        stats[f"honest votes {name}"] = float((honest & flag).sum() / honest.sum())
    flagged = np.logical_or.reduce([outcome.flags[name] for name in TESTS])
    stats["honest raters flagged"] = float(len(np.unique(votes.rater[honest & flagged])))
    stats["honest raters"] = float(arena.n_honest_raters)
    stats["honest share flagged"] = stats["honest raters flagged"] / arena.n_honest_raters
    stats["honest votes flagged"] = float((honest & flagged).sum() / honest.sum())
    stats["adversarial excluded"] = float(
        (~honest & ~outcome.counted).sum() / max(n_adversarial, 1)
    )
    stats["passes"] = float(outcome.passes)
    return stats


def pilot_strategies(config: RiggingConfig) -> list[Strategy]:
    """The adversary's candidates: t target votes per account from `target_grid`; and accounts
    that leave after L battles served, L = max(M, 1) (the fewest that carry M votes) or B - 1
    (the most that escape the vote-rate rule), with t = 1, 2 or L target votes at most (an
    account shown no target by then casts nothing: accounts are free, votes are not)."""
    if config.candidates:
        return list(config.candidates)
    strategies = [Strategy(t) for t in config.target_grid]
    for leave in sorted({max(config.min_votes, 1), config.vote_rate_battles - 1}):
        if leave >= 1:
            strategies += [Strategy(t, leave_at=leave) for t in sorted({1, 2, leave}) if t <= leave]
    return strategies


def best_strategy(
    arena: Arena, config: RiggingConfig, accounts_per_address: int, rng: np.random.Generator
) -> tuple[Strategy, dict[Strategy, int | None]]:
    """The adversary's pilot: total votes to gain one rank for each candidate strategy (pruned
    at the best so far); returns (best, {strategy: total votes or None})."""
    totals: dict[Strategy, int | None] = {}
    strategies = pilot_strategies(config)
    best, best_total = strategies[0], config.max_adversarial_votes
    for strategy in strategies:
        found = attack(
            arena,
            config,
            strategy=strategy,
            accounts_per_address=accounts_per_address,
            rng=rng,
            goals=("+1 rank",),
            cap_votes=best_total,
        ).total_votes["+1 rank"]
        totals[strategy] = found
        if found is not None and found < best_total:
            best, best_total = strategy, found
    return best, totals


@dataclass
class Pilot:
    """The adversary's choice for one accounts-per-address setting: total votes to gain one rank
    on the first arena per candidate (None: worse than the best so far), the finalists' median
    over every arena, the strategy kept."""

    totals: dict[Strategy, int | None]
    medians: dict[Strategy, float]
    best: Strategy

    def best_bound(self) -> int:
        """The best t among accounts that never leave early (the pre-rule optimum's shape)."""
        bound = {s.target_votes: v for s, v in self.totals.items() if s.leave_at is None}
        return min(bound, key=lambda t: np.inf if bound[t] is None else bound[t])


@dataclass
class Row:
    """One defence setting: the adversary's strategy and one Attack per seed."""

    accounts_per_address: int | None  # None: defences off (one account)
    strategy: Strategy | None
    attacks: list[Attack]


@dataclass
class Sweep:
    """One point (M, B) of the sweep, +1 rank only: per accounts-per-address setting, the
    adversary's strategy and attacks; the vote-count rules' toll on the honest raters, per
    arena."""

    min_votes: int
    vote_rate_battles: int
    rows: dict[int, Row]
    honest: list[dict[str, float]]


@dataclass
class Report:
    config: RiggingConfig
    rows: list[Row]
    pilot: dict[int, Pilot]  # accounts per address -> the adversary's choice
    honest: dict[str, float]  # honest arena facts (first seed)
    honest_rules: list[dict[str, float]]  # per arena: honest_rule_statistics
    pre_rule: list[dict[str, float]]  # per arena: pre-rule sybils at the +1-rank effort
    sweep: list[Sweep]
    seconds: float
    sweep_seconds: float


def honest_rule_statistics(arena: Arena, config: RiggingConfig) -> dict[str, float]:
    """Honest raters left out by each vote-count rule (share of raters) and their votes (share
    of honest votes), on the honest votes alone."""
    rules = vote_count_rules(arena.honest, arena.served, config)
    per_rater = np.bincount(arena.honest.rater, minlength=arena.n_honest_raters)
    stats = {}
    either = np.zeros(arena.n_honest_raters, dtype=bool)
    for name in RULES:
        out = rules[name][: arena.n_honest_raters]
        either |= out
        stats[f"raters {name}"] = float(out.mean())
        stats[f"votes {name}"] = float(per_rater[out].sum() / per_rater.sum())
    stats["raters either"] = float(either.mean())
    stats["votes either"] = float(per_rater[either].sum() / per_rater.sum())
    return stats


def defended_rows(
    arenas: list[Arena], config: RiggingConfig, goals: tuple[str, ...], *, every_battle: bool
) -> tuple[list[Row], dict[int, Pilot]]:
    """Per accounts-per-address setting: the pilot on the first arena; its `finalists` best
    strategies on every arena (+1 rank), the best median kept (the pilot's choice alone is
    noisy: several strategies cost about the same); then that strategy on every arena for the
    goals (and, if every_battle and asked for, the pilot's best t voting on every battle)."""
    rows, pilots = [], {}
    for per_address in config.accounts_per_address:

        def attacks(
            strategy: Strategy, goals: tuple[str, ...], per_address: int = per_address
        ) -> list[Attack]:
            return [
                attack(
                    arena,
                    config,
                    strategy=strategy,
                    accounts_per_address=per_address,
                    rng=np.random.default_rng(seed + 100),
                    goals=goals,
                )
                for seed, arena in zip(config.seeds, arenas, strict=True)
            ]

        rng = np.random.default_rng(10_000 + per_address)
        _, totals = best_strategy(arenas[0], config, per_address, rng)
        reached = sorted((v, i) for i, v in enumerate(totals.values()) if v is not None)
        finalists = [list(totals)[i] for _, i in reached[: config.finalists]]
        medians: dict[Strategy, float] = {}
        for strategy in finalists:
            found = [a.total_votes["+1 rank"] for a in attacks(strategy, ("+1 rank",))]
            medians[strategy] = float(np.median([np.inf if v is None else v for v in found]))
        best = min(medians, key=medians.get)
        pilots[per_address] = Pilot(totals, medians, best)
        rows.append(Row(per_address, best, attacks(best, goals)))
        if every_battle and per_address in config.every_battle_accounts_per_address:
            every = Strategy(pilots[per_address].best_bound(), mode="every")
            rows.append(Row(per_address, every, attacks(every, goals)))
    return rows, pilots


def pre_rule_check(
    arena: Arena, config: RiggingConfig, row: Row, attack_: Attack, t: int, seed: int
) -> dict[str, float]:
    """The strategy that was optimal before the vote-rate rule (t target votes per account,
    honest votes up to M, every other battle left), with as many target votes as `row` needed
    for +1 rank: the share of its votes the defences leave out, and the ranks it gains."""
    pool = sybil_pool(
        arena,
        config,
        Strategy(t, mode="pre-rule"),
        max_votes=config.max_adversarial_votes,
        accounts_per_address=row.accounts_per_address,
        rng=np.random.default_rng(seed + 200),
    )
    accounts = int(np.searchsorted(pool.target_ends, attack_.target_votes["+1 rank"])) + 1
    votes, served = pool.head(min(accounts, len(pool.ends)))
    votes, served = arena.honest + votes, np.concatenate([arena.served, served])
    outcome = defended_board(votes, served, arena, config)
    stats = flag_statistics(arena, votes, outcome)
    stats["rank gained"] = float(attack_.baseline_rank - outcome.rank)
    stats["votes"] = float(len(votes) - len(arena.honest))
    stats["t"] = float(t)
    return stats


def run(config: RiggingConfig) -> Report:
    started = time.perf_counter()
    arenas = [honest_arena(config, np.random.default_rng(seed)) for seed in config.seeds]
    first = arenas[0]
    per_rater = np.bincount(first.honest.rater)
    honest = {
        "raters": float(first.n_honest_raters),
        "median votes": float(np.median(per_rater)),
        "max votes": float(per_rater.max()),
        "raters >= 100": float((per_rater >= 100).mean()),
        "vote rate": float(per_rater.sum() / first.served.sum()),
        "raters served >= B": float((first.served >= config.vote_rate_battles).mean()),
        "target battle share": first.target_share,
    }
    off = [
        attack(arena, config, strategy=None, rng=np.random.default_rng(seed), goals=config.goals)
        for seed, arena in zip(config.seeds, arenas, strict=True)
    ]
    rows, pilot = defended_rows(arenas, config, config.goals, every_battle=True)
    rows = [Row(None, None, off), *rows]
    pre_rule = []
    if 1 in pilot:
        row = next(r for r in rows if r.accounts_per_address == 1)
        pre_rule = [
            pre_rule_check(arena, config, row, a, pilot[1].best_bound(), seed)
            for seed, arena, a in zip(config.seeds, arenas, row.attacks, strict=True)
            if a.target_votes["+1 rank"] is not None
        ]
    sweep, sweep_started = [], time.perf_counter()
    for m, b in config.sweep:
        swept = replace(
            config, min_votes=m, vote_rate_battles=config.vote_rate_battles if b is None else b
        )
        if (swept.min_votes, swept.vote_rate_battles) == (
            config.min_votes,
            config.vote_rate_battles,
        ):
            by_address = {r.accounts_per_address: r for r in rows[1:] if r.strategy.mode == "rules"}
        else:
            swept_rows, _ = defended_rows(arenas, swept, ("+1 rank",), every_battle=False)
            by_address = {r.accounts_per_address: r for r in swept_rows}
        honest_rules = [honest_rule_statistics(arena, swept) for arena in arenas]
        sweep.append(Sweep(swept.min_votes, swept.vote_rate_battles, by_address, honest_rules))
    honest_rules = [honest_rule_statistics(arena, config) for arena in arenas]
    return Report(
        config,
        rows,
        pilot,
        honest,
        honest_rules,
        pre_rule,
        sweep,
        time.perf_counter() - started,
        time.perf_counter() - sweep_started,
    )


def summary(values: list[float | None]) -> str:
    """median [min-max]; '>cap (k/n)' where only k of n arenas were rigged within the cap."""
    if any(v is None for v in values):
        reached = [v for v in values if v is not None]
        return f">cap ({len(reached)}/{len(values)})"
    v = np.array(values, dtype=float)
    if v.min() == v.max():
        return f"{np.median(v):,.0f}"
    return f"{np.median(v):,.0f} [{v.min():,.0f}-{v.max():,.0f}]"


MODES = {"rules": "rule-bound", "every": "every battle", "pre-rule": "pre-rule"}


def row_label(row: Row) -> str:
    if row.strategy is None:
        return "off: 1 account, target battles only"
    return f"on: {row.accounts_per_address}/address, {row.strategy.label()}, {MODES[row.strategy.mode]}"


def short_label(row: Row) -> str:
    mode = {"rules": "rules", "every": "every", "pre-rule": "pre"}[row.strategy.mode]
    return f"{row.accounts_per_address}/addr {mode}"


def per_account(attack_: Attack, goal: str) -> float | None:
    if attack_.total_votes[goal] is None:
        return None
    return attack_.total_votes[goal] / attack_.accounts[goal]


def goal_met(votes: list[int | None], flagged: list[float]) -> bool:
    """The issue's goal: >= 1,000 adversarial votes to gain one rank (median over arenas) and
    <= 1% of honest raters flagged by the tests (median over arenas)."""
    reached = [np.inf if v is None else v for v in votes]
    return bool(np.median(reached) >= 1000 and np.median(flagged) <= 0.01)


def print_report(report: Report) -> None:
    config, honest = report.config, report.honest

    def med(stats: list[dict[str, float]], key: str) -> float:
        return float(np.median([s[key] for s in stats]))

    def worst(stats: list[dict[str, float]], key: str) -> float:
        return float(np.max([s[key] for s in stats]))

    rules = report.honest_rules
    print(
        f"{config.models} models over {config.spread:g} logits, target m{config.models // 2:02d} "
        f"(true rank {config.models - config.models // 2}, in {honest['target battle share']:.1%}"
        f" of battles); {config.honest_votes:,} honest votes ({config.tie_rate:.0%} ties), "
        f"active sampler;\n{honest['raters']:,.0f} honest raters: median "
        f"{honest['median votes']:.0f} votes, max {honest['max votes']:,.0f}, "
        f"{honest['raters >= 100']:.1%} with >= 100; each battle left with probability "
        f"{config.honest_skip:g} (vote rate {honest['vote rate']:.0%}),\n"
        f"{honest['raters served >= B']:.0%} served >= B battles; {len(config.seeds)} seeds, "
        "median [min-max]"
    )
    print(
        f"defences on: daily cap {DAILY_CAP}/account, SPRT (alpha {config.sprt_alpha}, beta "
        f"{config.sprt_beta}, {config.sprt_alternative}), targeted-voting test per rater and\n"
        f"per address (alpha {config.alpha}), vote-rate rule (from B = {config.vote_rate_battles}"
        f" battles served, votes >= R = {config.min_vote_rate:g} of them), votes count from M = "
        f"{config.min_votes} votes per rater\nhonest raters left out by the rules (median; [max]"
        " over seeds), raters / their votes: vote rate "
        f"{med(rules, 'raters selective'):.2%} [{worst(rules, 'raters selective'):.2%}] / "
        f"{med(rules, 'votes selective'):.2%} [{worst(rules, 'votes selective'):.2%}], "
        f"min-M {med(rules, 'raters min_votes'):.1%} / {med(rules, 'votes min_votes'):.1%}"
    )
    for per_address, chosen in report.pilot.items():
        shown = ", ".join(
            f"{s.label()}: {'-' if v is None else f'{v:,}'}" for s, v in chosen.totals.items()
        )
        finals = ", ".join(f"{s.label()}: {v:,.0f}" for s, v in chosen.medians.items())
        print(
            f"adversary's pilot, {per_address}/address, total votes to gain a rank on the first "
            f"arena (-: worse than the best so far):\n  {shown}\n  finalists, median over "
            f"the arenas: {finals} -> {chosen.best.label()}"
        )
    width = max(len(row_label(row)) for row in report.rows)
    for goal in config.goals:
        print(f"\nadversarial votes to reach {goal}")
        print(
            f"{'setting':<{width}} {'target votes':>20} {'total votes':>22} {'accounts':>18} "
            f"{'votes/acc':>8}"
        )
        for row in report.rows:
            cells = [
                summary([getattr(a, column)[goal] for a in row.attacks])
                for column in ("target_votes", "total_votes", "accounts")
            ]
            each = [per_account(a, goal) for a in row.attacks]
            each = "-" if None in each else f"{np.median(each):.0f}"
            print(
                f"{row_label(row):<{width}} {cells[0]:>20} {cells[1]:>22} {cells[2]:>18} {each:>8}"
            )
    print(
        "baseline rank of the target (honest votes only): "
        + ", ".join(
            f"{'on' if row.strategy else 'off'} {summary([a.baseline_rank for a in row.attacks])}"
            for row in report.rows[:2]
        )
    )
    off = [a.flags["+1 rank"] for a in report.rows[0].attacks if a.flags]
    if off:
        excluded = " / ".join(f"{med(off, f'adversarial {d}'):.0%}" for d in DEFENCES)
        print(
            "the defences-off attack at its +1-rank effort, defences on: its votes excluded by "
            f"SPRT / rater / address / vote rate / min-M\n{excluded}, ranks gained "
            f"{summary([f['rank gained'] for f in off])}"
        )
    if report.pre_rule:
        pre = report.pre_rule
        print(
            f"the pre-rule sybils (t={pre[0]['t']:.0f}, honest votes only up to M, every other "
            "battle left) with the 1/address row's +1-rank target votes:\n"
            f"{summary([s['votes'] for s in pre])} votes, "
            f"{med(pre, 'adversarial selective'):.0%} of them left out by the vote-rate rule, "
            f"{med(pre, 'adversarial excluded'):.0%} by any defence, ranks gained "
            f"{summary([s['rank gained'] for s in pre])}"
        )
    print(
        "\nflags at each goal's effort, defences on (median; [max] over seeds): adversarial votes "
        "excluded by the SPRT,\nthe targeted-voting test per rater and per address, the "
        "vote-rate rule, the minimum-votes rule, any;\nhonest raters flagged by each test and by "
        "any (share of honest raters); honest votes excluded by the flags"
    )
    print(
        f"{'':<14} {'':<7} {'adversarial votes':<32} | {'honest raters':<31} | honest votes\n"
        f"{'setting':<14} {'goal':<7} {'SPRT':>4} {'rater':>5} {'addr':>4} {'rate':>5} "
        f"{'min-M':>5} {'any':>4} | {'SPRT':>4} {'rater':>5} {'addr':>4} {'any':>8} "
        f"{'share':>6} | {'flags':>13}"
    )
    for row in report.rows[1:]:
        for goal in config.goals:
            stats = [a.flags[goal] for a in row.attacks if goal in a.flags]
            if not stats:
                print(f"{short_label(row):<14} {goal:<7} not reached")
                continue
            adversarial = " ".join(
                f"{med(stats, f'adversarial {d}'):>{w}.0%}"
                for d, w in zip((*DEFENCES, "excluded"), (4, 5, 4, 5, 5, 4), strict=True)
            )
            raters = " ".join(
                f"{med(stats, f'honest raters {d}'):>{w}.0f}"
                for d, w in zip(TESTS, (4, 5, 4), strict=True)
            )
            flagged = "honest raters flagged"
            any_rater = f"{med(stats, flagged):.0f} [{worst(stats, flagged):.0f}]"
            votes = (
                f"{med(stats, 'honest votes flagged'):.1%} "
                f"[{worst(stats, 'honest votes flagged'):.1%}]"
            )
            print(
                f"{short_label(row):<14} {goal:<7} {adversarial} | {raters} {any_rater:>8} "
                f"{med(stats, 'honest share flagged'):>6.2%} | {votes:>13}"
            )
    if report.sweep:
        print_sweep(report)
        print(f"\n{report.seconds:.0f} s, the sweep {report.sweep_seconds:.0f} s of them")
    else:
        print(f"\n{report.seconds:.0f} s")


def print_sweep(report: Report) -> None:
    config = report.config
    print(
        f"\nthe sweep: the minimum-votes rule M and the vote-rate rule's B (R = "
        f"{config.min_vote_rate:g}), {len(config.seeds)} seeds, +1 rank: total adversarial "
        "votes\n(median [min-max]) and the adversary's strategy, per accounts-per-address "
        "setting; honest raters flagged by the tests at\nthose efforts (share; median [max] over "
        "settings and seeds); honest raters and their votes left out by the\nvote-rate rule "
        "(rate) and by M (min-M), median over seeds; the goal (>= 1,000 votes, <= 1% flagged)"
    )
    settings = list(report.sweep[0].rows)
    head = "".join(f" {f'{k}/address':>36}" for k in settings)
    print(
        f"{'M':>3} {'B':>3}{head} {'flagged':>14} | {'raters: rate':>12} {'min-M':>6} | "
        f"{'votes: rate':>11} {'min-M':>6} | goal"
    )
    for swept in report.sweep:
        cells, flagged, met = [], [], True
        for k in settings:
            row = swept.rows[k]
            votes = [a.total_votes["+1 rank"] for a in row.attacks]
            shares = [a.flags["+1 rank"]["honest share flagged"] for a in row.attacks if a.flags]
            flagged += shares
            met &= goal_met(votes, shares)
            cells.append(f"{summary(votes)} ({row.strategy.label()})")
        rules = swept.honest

        def med(key: str, rules=rules) -> float:
            return float(np.median([r[key] for r in rules]))

        share = f"{np.median(flagged):.2%} [{np.max(flagged):.2%}]" if flagged else "-"
        print(
            f"{swept.min_votes:>3} {swept.vote_rate_battles:>3}"
            + "".join(f" {c:>36}" for c in cells)
            + f" {share:>14} | {med('raters selective'):>12.2%} {med('raters min_votes'):>6.1%} "
            f"| {med('votes selective'):>11.2%} {med('votes min_votes'):>6.1%} | "
            f"{'met' if met else 'not met'}"
        )


def quick_config() -> RiggingConfig:
    """A small arena for the unit test (< 20 s): 12 models, 6,000 honest votes, 3 seeds; the
    pilot's candidates cut to four, its choice kept as is (one finalist); +1 rank only."""
    return RiggingConfig(
        models=12,
        honest_votes=6000,
        refit_every=500,
        every_battle_accounts_per_address=(),
        target_grid=(1, 8),
        candidates=(Strategy(1), Strategy(8), Strategy(2, leave_at=4), Strategy(5, leave_at=5)),
        finalists=1,
        goals=("+1 rank",),
        seeds=(0, 1, 2),
        max_adversarial_votes=40_000,
    )


def grid_points() -> tuple[tuple[int, int], ...]:
    """The sweep: M in 1, 5, 10, 20, each with B = 20 and with B = M."""
    return tuple(dict.fromkeys((m, b) for m in (1, 5, 10, 20) for b in (20, m)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = RiggingConfig()
    parser.add_argument("--seeds", type=int, default=len(defaults.seeds))
    parser.add_argument("--models", type=int, default=defaults.models)
    parser.add_argument("--spread", type=float, default=defaults.spread)
    parser.add_argument("--honest-votes", type=int, default=defaults.honest_votes)
    parser.add_argument("--median-votes", type=float, default=defaults.median_votes)
    parser.add_argument("--tie-rate", type=float, default=defaults.tie_rate)
    parser.add_argument("--honest-skip", type=float, default=defaults.honest_skip)
    parser.add_argument(
        "--accounts-per-address", type=int, nargs="+", default=list(defaults.accounts_per_address)
    )
    parser.add_argument(
        "--every-battle-accounts-per-address",
        type=int,
        nargs="*",
        default=list(defaults.every_battle_accounts_per_address),
    )
    parser.add_argument("--vote-rate-battles", type=int, default=defaults.vote_rate_battles)
    parser.add_argument("--min-vote-rate", type=float, default=defaults.min_vote_rate)
    parser.add_argument("--min-votes", type=int, default=defaults.min_votes)
    parser.add_argument(
        "--grid",
        action="store_true",
        help="also sweep M over 1 5 10 20, each with B = 20 and B = M (+1 rank only)",
    )
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
            honest_skip=args.honest_skip,
            accounts_per_address=tuple(args.accounts_per_address),
            every_battle_accounts_per_address=tuple(args.every_battle_accounts_per_address),
            vote_rate_battles=args.vote_rate_battles,
            min_vote_rate=args.min_vote_rate,
            min_votes=args.min_votes,
            sweep=grid_points() if args.grid else (),
            alpha=args.alpha,
            target_grid=tuple(args.target_grid),
            max_adversarial_votes=args.max_adversarial_votes,
        )
    print_report(run(config))


if __name__ == "__main__":
    main()
