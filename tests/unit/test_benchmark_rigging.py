"""benchmarks/rigging.py on its quick arena: the defences make rigging cost more votes, stop the
undefended attack outright, and flag (almost) no honest rater at the effort that gains a rank."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def report():
    spec = importlib.util.spec_from_file_location(
        "benchmark_rigging", ROOT / "benchmarks" / "rigging.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module.run(module.quick_config())


def test_defences_on_need_more_adversarial_votes_than_defences_off(report):
    # 12 models, 6,000 honest votes, 3 arenas; total adversarial votes, median [range]:
    #   +1 rank: off 256 [240-512]; 10 accounts/address (t = 1) 2,560 [2,240-3,200];
    #            unlimited addresses (t = 8) 320 [320-400]
    #   top 3:   off 1,080 [960-1,792]; 2,560 -> 12,800 [10,880-13,440]; 1,500 [1,120-2,240]
    # With unlimited addresses the +1-rank difference is within the arena-to-arena noise (the
    # minimum-votes rule makes each target vote cost M / t = 2.5 votes but also drops ~40% of
    # the honest votes, so fewer target votes move the board); the top-3 one is not.
    off, per_ten, per_one = report.rows
    assert (off.accounts_per_address, per_ten.accounts_per_address) == (None, 10)
    assert per_one.accounts_per_address == 1
    assert (per_ten.target_votes, per_one.target_votes) == (1, 8)  # the adversary's pilot
    for goal in ("+1 rank", "top 3"):
        needed_off = [a.total_votes[goal] for a in off.attacks]
        needed_ten = [a.total_votes[goal] for a in per_ten.attacks]
        assert None not in needed_off and None not in needed_ten, goal
        assert all(t >= 3 * o for o, t in zip(needed_off, needed_ten, strict=True)), goal
        for row in (per_ten, per_one):
            # Every sybil casts M = 20 votes, t of them for the target.
            assert [a.target_votes[goal] * row.votes_per_account for a in row.attacks] == [
                a.total_votes[goal] * row.target_votes for a in row.attacks
            ]
    top3_off = np.median([a.total_votes["top 3"] for a in off.attacks])
    assert np.median([a.total_votes["top 3"] for a in per_one.attacks]) > 1.2 * top3_off


def test_the_undefended_attack_gains_nothing_against_the_defences(report):
    # One account voting for the target in every battle showing it is flagged by the
    # targeted-voting test: all its votes are excluded and the target keeps its rank.
    for attack in report.rows[0].attacks:
        flags = attack.flags["+1 rank"]
        assert flags["adversarial target_rater"] == 1.0
        assert flags["adversarial excluded"] == 1.0
        assert flags["rank gained"] <= 0


def test_honest_raters_are_rarely_flagged_at_the_effort_that_gains_a_rank(report):
    # Measured at the +1-rank effort: median 0 honest raters flagged, worst arena 1 of 430
    # (0.23%). The minimum-votes rule drops ~40% of the honest votes (81% of the raters).
    for row in report.rows[1:]:
        shares = [a.flags["+1 rank"]["honest share flagged"] for a in row.attacks]
        assert np.median(shares) <= 0.01 and max(shares) <= 0.015, shares
        dropped = [a.flags["+1 rank"]["honest votes min_votes"] for a in row.attacks]
        assert 0.3 < np.median(dropped) < 0.5
    assert report.seconds < 20
