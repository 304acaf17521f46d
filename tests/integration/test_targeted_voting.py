"""The targeted-voting defence on the database (issue 23): a rater, or an address behind several
cookies, who votes for one model whenever it appears is flagged by the beat's rater check, its
votes leave the boards, and they stay stored and exported with the reason."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from django.core.management import call_command

from arena import rater_checks, services
from arena.models import RaterFlag, TargetingFlag, TargetSubject, Vote
from arena.rating_snapshots import latest_snapshot, refresh_rating_snapshots
from tests.integration.arena_support import age_battle, configure_arena, make_arena

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def arena_settings(settings, tmp_path):
    return configure_arena(settings, tmp_path)


def _vote(rater, *, ip_hash: str, choose, rng) -> None:
    battle = age_battle(
        services.battle_create(task="text-to-image", rater=rater, ip_hash=ip_hash, rng=rng), 5
    )
    a, b = battle.sample_a.version.model_id, battle.sample_b.version.model_id
    outcome = "model_a" if choose(a, b) else "model_b"
    services.vote_create(token=battle.token, rater_id=rater.pk, outcome=outcome, ip_hash=ip_hash)


def test_a_rater_and_an_address_favouring_one_model_are_flagged_and_left_out(tmp_path):
    arena = make_arena(n_models=6, n_prompts=2, seeds=30)
    rng = np.random.default_rng(0)
    strength = {m.pk: 0.6 * k for k, m in enumerate(arena.models)}
    target = arena.models[2].pk  # mid-table

    def honest(a, b):
        return rng.random() < 1 / (1 + np.exp(strength[b] - strength[a]))

    def rigged(a, b):
        return a == target if target in (a, b) else honest(a, b)

    honest_raters = [services.rater_for(user=None, anonymous_rater_id=None) for _ in range(10)]
    for k, rater in enumerate(honest_raters):
        for _ in range(40):
            _vote(rater, ip_hash=f"honest-{k}", choose=honest, rng=rng)
    # (No snapshot yet: pairs are drawn without active sampling, so the target shows up often.)
    # One adversary with one cookie ...
    loud = services.rater_for(user=None, anonymous_rater_id=None)
    for _ in range(90):
        _vote(loud, ip_hash="loud-address", choose=rigged, rng=rng)
    # ... and one behind eight fresh cookies from a single address, 12 votes each.
    quiet = [services.rater_for(user=None, anonymous_rater_id=None) for _ in range(8)]
    for rater in quiet:
        for _ in range(12):
            _vote(rater, ip_hash="quiet-address", choose=rigged, rng=rng)
    total = Vote.objects.count()

    rater_checks.check_all_raters()
    flags = {(f.subject, f.key): f for f in TargetingFlag.objects.all()}
    assert (TargetSubject.RATER, str(loud.pk)) in flags
    assert (TargetSubject.ADDRESS, "quiet-address") in flags
    assert all(f.model == arena.models[2].slug for f in flags.values())
    assert not any(key == str(r.pk) for _, key in flags for r in honest_raters)
    assert not any(key.startswith("honest") for _, key in flags)
    loud_flag = flags[(TargetSubject.RATER, str(loud.pk))]
    assert loud_flag.wins == loud_flag.n and loud_flag.expected < 0.75 * loud_flag.n
    assert loud_flag.p_value < 0.01

    # Their votes leave the boards (refitted by the check), and nothing is deleted.
    left_out = (
        Vote.objects.filter(rater=loud).count()
        + Vote.objects.filter(ip_hash="quiet-address").count()
    )
    assert Vote.objects.count() == total
    assert latest_snapshot(task="text-to-image").n_votes == total - left_out
    out = tmp_path / "votes.csv"
    call_command(
        "export_votes", "--task", "text-to-image", "--output", str(out), stderr=io.StringIO()
    )
    frame = pd.read_csv(out, keep_default_na=False)
    assert len(frame) == total
    reasons = frame["excluded_reason"].value_counts().to_dict()
    assert reasons.get("targeted", 0) + reasons.get("targeted_address", 0) == left_out
    assert int(frame["flagged"].sum()) == left_out

    # The next run, with nothing new, keeps the same targeted-voting flags (the outlier test may
    # now, against a consensus without the rigged votes, flag an adversary too, never an honest
    # rater).
    summary = rater_checks.check_all_raters()
    assert summary.targeted_changed == 0 and summary.targeted == len(flags)
    assert set(flags) == {(f.subject, f.key) for f in TargetingFlag.objects.all()}
    outliers = set(RaterFlag.objects.filter(excluded=True).values_list("rater_id", flat=True))
    assert outliers <= {loud.pk, *(r.pk for r in quiet)}


def test_selective_raters_and_raters_with_few_votes_are_left_out_and_exported_with_why(
    tmp_path, settings
):
    settings.ARENA_VOTE_RATE_MIN_BATTLES = 20
    settings.ARENA_MIN_VOTE_RATE = 0.5
    settings.ARENA_RATER_MIN_VOTES = 10
    make_arena(n_models=4, n_prompts=2, seeds=20)
    rng = np.random.default_rng(1)

    def first(a, b):
        return True

    steady = services.rater_for(user=None, anonymous_rater_id=None)
    for _ in range(24):  # votes on every battle
        _vote(steady, ip_hash="a", choose=first, rng=rng)
    picky = services.rater_for(user=None, anonymous_rater_id=None)
    for k in range(30):  # served 30 battles, votes on 12 of them (40% < 50%)
        if k % 5 < 2:
            _vote(picky, ip_hash="b", choose=first, rng=rng)
        else:
            services.battle_create(task="text-to-image", rater=picky, ip_hash="b", rng=rng)
    newcomer = services.rater_for(user=None, anonymous_rater_id=None)
    for _ in range(3):
        _vote(newcomer, ip_hash="c", choose=first, rng=rng)
    refresh_rating_snapshots(task="text-to-image")
    assert latest_snapshot(task="text-to-image").n_votes == 24  # the steady rater's only
    out = tmp_path / "votes.csv"
    call_command(
        "export_votes", "--task", "text-to-image", "--output", str(out), stderr=io.StringIO()
    )
    frame = pd.read_csv(out, keep_default_na=False)
    assert frame["excluded_reason"].value_counts().to_dict() == {
        "": 24,
        "selective": 12,
        "few_votes": 3,
    }
    # Voting on more of what it is served brings the picky rater back.
    for _ in range(10):
        _vote(picky, ip_hash="b", choose=first, rng=rng)
    refresh_rating_snapshots(task="text-to-image")
    assert latest_snapshot(task="text-to-image").n_votes == 24 + 22
