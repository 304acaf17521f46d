"""Rate limits: exact database counters with a sliding one-minute estimate."""

from __future__ import annotations

import secrets
import threading

import pytest
from django.db import connection
from django.test import Client

from arena.models import Battle, RateCounter, Vote
from arena.rate_limits import Limit, first_exceeded, minute_and_carry, over, prune_counters
from tests.integration.arena_support import age_battle, configure_arena, make_arena

MINUTE = 60.0
T0 = 1_800_000_000.0  # the start of a minute (divisible by 60)
M0 = int(T0 // 60)


def test_sliding_estimate_weights_the_previous_minute_by_what_is_left_of_it():
    assert minute_and_carry(T0) == (M0, 1.0)
    minute, carry = minute_and_carry(T0 + 45)
    assert minute == M0 and carry == pytest.approx(0.25)
    assert not over(previous=8, hits=2, carry=0.25, per_minute=4)  # 8 * 0.25 + 2 = 4
    assert over(previous=8, hits=3, carry=0.25, per_minute=4)
    assert over(previous=0, hits=5, carry=1.0, per_minute=4)


@pytest.mark.django_db
def test_counter_counts_each_attempt_and_moves_through_minutes():
    limit = Limit("votes:rater:test", 3)
    assert [first_exceeded([limit], now=T0 + k) for k in range(3)] == [None] * 3
    assert first_exceeded([limit], now=T0 + 3) == limit  # the 4th attempt in a minute
    assert first_exceeded([limit], now=T0 + 4) == limit  # refused attempts count too
    row = RateCounter.objects.get(key=limit.key)
    assert (row.previous, row.hits) == (0, 5)
    # 15 s into the next minute 75% of the previous one still counts: 5 * 0.75 + 1 > 3.
    assert first_exceeded([limit], now=T0 + MINUTE + 15) == limit
    row.refresh_from_db()
    assert (row.minute, row.previous, row.hits) == (M0 + 1, 5, 1)
    # Two minutes after the burst its counts are gone entirely.
    assert first_exceeded([limit], now=T0 + 3 * MINUTE + 1) is None
    row.refresh_from_db()
    assert (row.previous, row.hits) == (0, 1)
    # A request whose clock lags behind counts in the row's minute (never resets the row).
    assert first_exceeded([limit], now=T0 + 2 * MINUTE + 1) is None
    row.refresh_from_db()
    assert (row.minute, row.hits) == (M0 + 3, 2)


@pytest.mark.django_db
def test_pruning_removes_only_counters_that_no_longer_count():
    quiet, recent, current = Limit("a", 2), Limit("b", 2), Limit("c", 2)
    first_exceeded([quiet], now=T0)
    first_exceeded([quiet], now=T0 + 1)
    first_exceeded([recent], now=T0 + 2 * MINUTE)
    first_exceeded([recent], now=T0 + 2 * MINUTE + 1)
    first_exceeded([current], now=T0 + 3 * MINUTE)
    assert prune_counters(now=T0 + 3 * MINUTE + 30) == 1
    assert set(RateCounter.objects.values_list("key", flat=True)) == {"b", "c"}
    # What was pruned counted for nothing: its next hit starts afresh, as it would have anyway.
    assert first_exceeded([quiet], now=T0 + 3 * MINUTE + 31) is None
    assert RateCounter.objects.filter(key="a", previous=0, hits=1).exists()
    # What was kept still counts: 2 hits in the previous minute, 30 s ago, weigh 2 × 0.5 = 1.
    assert first_exceeded([recent], now=T0 + 3 * MINUTE + 30) is None
    assert first_exceeded([recent], now=T0 + 3 * MINUTE + 31) == recent


@pytest.mark.django_db
def test_beat_prunes_rate_counters():
    from django.conf import settings

    from workers.tasks import prune_rate_counters

    entry = settings.CELERY_BEAT_SCHEDULE["prune-rate-counters"]
    assert entry["task"] == prune_rate_counters.name and entry["schedule"] == 600.0
    first_exceeded([Limit("gone", 1)], now=0.0)
    assert prune_rate_counters.apply().get() == {"deleted": 1}
    assert not RateCounter.objects.exists()


@pytest.mark.django_db
def test_limits_of_zero_are_off_and_keys_are_independent():
    assert first_exceeded([Limit("votes:rater:a", 0)], now=T0) is None
    assert not RateCounter.objects.exists()
    a, b = Limit("votes:rater:a", 1), Limit("votes:ip:x", 2)
    assert first_exceeded([a, b], now=T0) is None
    assert first_exceeded([Limit("votes:rater:c", 1), b], now=T0) is None
    assert first_exceeded([Limit("votes:rater:d", 1), b], now=T0) == b  # 3rd hit on the address
    assert first_exceeded([a], now=T0) == a


@pytest.fixture
def limited(settings, tmp_path):
    return configure_arena(
        settings, tmp_path, ARENA_MIN_VIEW_SECONDS=0, ARENA_VOTES_PER_MINUTE_PER_RATER=5
    )


@pytest.mark.django_db(transaction=True)
def test_concurrent_votes_of_one_rater_are_limited_exactly(limited):
    make_arena()
    owner = Client()
    battles = []
    for _ in range(12):
        assert owner.get("/arena/text-to-image/").status_code == 200
        battles.append(age_battle(Battle.objects.order_by("-id").first(), 5))
    statuses: list[int] = []
    barrier = threading.Barrier(len(battles))

    def vote(battle: Battle) -> None:
        browser = Client()
        browser.cookies = owner.cookies
        barrier.wait()
        try:
            response = browser.post(
                f"/arena/battles/{battle.token}/vote",
                {"outcome": "tie"},
                HTTP_ACCEPT="application/json",
            )
            statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=vote, args=(b,)) for b in battles]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201] * 5 + [429] * 7, statuses
    assert Vote.objects.count() == 5
    counter = RateCounter.objects.get(key=f"votes:rater:{battles[0].served_to_id}")
    assert counter.previous + counter.hits == 12  # every attempt counted, none twice


@pytest.mark.django_db
def test_a_forged_rater_cookie_is_no_rater(limited):
    make_arena()
    owner, forger = Client(), Client()
    owner.get("/arena/text-to-image/")
    battle = age_battle(Battle.objects.order_by("-id").first(), 5)
    forger.get("/arena/text-to-image/")
    signed = owner.cookies["arena_rater"].value
    rater_id, _, rest = signed.partition(":")
    assert rater_id == str(battle.served_to_id)
    # The forger's own signature on the owner's id does not verify.
    forged = f"{rater_id}:{forger.cookies['arena_rater'].value.partition(':')[2]}"
    forger.cookies["arena_rater"] = forged
    response = forger.post(
        f"/arena/battles/{battle.token}/vote", {"outcome": "tie"}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 403 and response.json()["error"] == "not_your_battle"
    assert not Vote.objects.exists()


@pytest.mark.django_db
def test_guessing_battle_tokens_is_throttled_with_or_without_a_rater_cookie(settings, tmp_path):
    configure_arena(
        settings, tmp_path, ARENA_VOTES_PER_MINUTE_PER_RATER=3, ARENA_VOTES_PER_MINUTE_PER_IP=6
    )
    make_arena()
    guesser = Client()
    guesser.get("/arena/text-to-image/")  # a rater cookie: its own limit (3) comes first

    def guess(client: Client) -> int:
        return client.post(
            f"/arena/battles/guess{secrets.token_hex(8)}/vote",
            {"outcome": "tie"},
            HTTP_ACCEPT="application/json",
        ).status_code

    assert [guess(guesser) for _ in range(4)] == [404, 404, 404, 429]
    # A client without cookies is no rater, yet its address (one so far) still counts.
    assert [guess(Client()) for _ in range(3)] == [404, 404, 429]
    assert not Vote.objects.exists()
