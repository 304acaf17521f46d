"""Vote integrity: every rule refuses with a clear 4xx and leaves the database unchanged."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from arena import services
from arena.models import Battle, Rater, Vote
from tests.integration.arena_support import age_battle, cast_votes, configure_arena, make_arena

OK = 201


@pytest.fixture(autouse=True)
def arena_settings(settings, tmp_path):
    return configure_arena(
        settings,
        tmp_path,
        ARENA_MIN_VIEW_SECONDS=2.0,
        ARENA_BATTLE_TTL_SECONDS=600,
        ARENA_VOTES_PER_MINUTE_PER_RATER=100,
    )


def serve(client: Client, *, viewed: float = 5.0) -> Battle:
    """Serve a battle to this client and pretend it was looked at for `viewed` seconds."""
    assert client.get("/arena/text-to-image/").status_code == 200
    return age_battle(Battle.objects.order_by("-id").first(), viewed)


def cast(client: Client, battle_or_token, outcome: str = "model_a", **extra):
    token = getattr(battle_or_token, "token", battle_or_token)
    return client.post(
        f"/arena/battles/{token}/vote",
        {"outcome": outcome},
        HTTP_ACCEPT="application/json",
        **extra,
    )


def snapshot_state():
    return (
        Vote.objects.count(),
        list(Battle.objects.order_by("id").values_list("id", "token", "served_at", "expires_at")),
    )


def assert_refused(response, status: int, code: str, before) -> None:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["error"] == code and len(body["message"]) > 10
    assert snapshot_state() == before, "a refused vote changed the database"


@pytest.mark.django_db
def test_vote_is_recorded_with_denormalised_fields_and_reveals_the_models():
    arena = make_arena()
    client = Client()
    battle = serve(client)
    response = cast(client, battle, "model_b")
    assert response.status_code == OK
    vote = Vote.objects.get()
    assert vote.battle == battle and vote.outcome == "model_b"
    assert vote.task == "text-to-image" and vote.category == battle.prompt.category
    assert vote.model_a_id == battle.sample_a.version.model_id
    assert vote.model_b_id == battle.sample_b.version.model_id
    assert vote.rater_kind == "human" and vote.rater == battle.served_to
    reveal = response.json()
    names = {m.slug: m.display_name for m in arena.models}
    assert reveal["model_a"]["name"] == names[reveal["model_a"]["slug"]]
    assert reveal["model_a"]["slug"] == vote.model_a.slug


@pytest.mark.django_db
def test_html_form_vote_without_javascript_shows_the_reveal_page():
    make_arena()
    client = Client()
    battle = serve(client)
    response = client.post(f"/arena/battles/{battle.token}/vote", {"outcome": "tie"})
    assert response.status_code == OK
    html = response.content.decode()
    assert battle.sample_a.version.model.display_name in html and "Next battle" in html


@pytest.mark.django_db
def test_tokens_are_unguessable_and_unknown_tokens_are_404():
    make_arena()
    client = Client()
    battles = [serve(client) for _ in range(5)]
    tokens = {b.token for b in battles} | {b.media_token_a for b in battles}
    assert len(tokens) == 10 and all(len(t) >= 43 for t in tokens)  # 256 random bits each
    before = snapshot_state()
    assert_refused(cast(client, "x" * 43), 404, "unknown_battle", before)


@pytest.mark.django_db
def test_one_vote_per_battle():
    make_arena()
    client = Client()
    battle = serve(client)
    assert cast(client, battle).status_code == OK
    before = snapshot_state()
    assert_refused(cast(client, battle, "model_b"), 409, "already_voted", before)
    assert Vote.objects.get().outcome == "model_a"


@pytest.mark.django_db
def test_only_the_rater_the_battle_was_served_to_may_vote():
    make_arena()
    owner, stranger = Client(), Client()
    battle = serve(owner)
    stranger.get("/arena/text-to-image/")  # the stranger has a rater of their own
    before = snapshot_state()
    assert_refused(cast(stranger, battle), 403, "not_your_battle", before)
    assert_refused(cast(Client(), battle), 403, "not_your_battle", before)  # no session at all


@pytest.mark.django_db
def test_no_vote_before_the_minimum_viewing_time():
    make_arena()
    client = Client()
    battle = serve(client, viewed=0.5)
    before = snapshot_state()
    response = cast(client, battle)
    assert_refused(response, 425, "too_early", before)
    assert "at least 2 seconds" in response.json()["message"]
    age_battle(battle, 2.0)
    assert cast(client, battle).status_code == OK


@pytest.mark.django_db
def test_votes_on_expired_battles_are_refused(arena_settings):
    make_arena()
    client = Client()
    battle = serve(client, viewed=arena_settings.ARENA_BATTLE_TTL_SECONDS + 1)
    before = snapshot_state()
    assert_refused(cast(client, battle), 410, "expired", before)


@pytest.mark.django_db
def test_unknown_outcome_is_400():
    make_arena()
    client = Client()
    battle = serve(client)
    before = snapshot_state()
    response = cast(client, battle, "model_c")
    assert_refused(response, 400, "bad_outcome", before)
    assert "model_a" in response.json()["message"]


@pytest.mark.django_db
def test_per_rater_rate_limit(arena_settings):
    arena_settings.ARENA_VOTES_PER_MINUTE_PER_RATER = 3
    make_arena()
    client = Client()
    battles = [serve(client) for _ in range(4)]
    for battle in battles[:3]:
        assert cast(client, battle).status_code == OK
    before = snapshot_state()
    response = cast(client, battles[3])
    assert_refused(response, 429, "rate_limited", before)
    assert response["Retry-After"] == "60"
    # Two minutes later the rater may vote again (the window slides).
    later = timezone.now() + timedelta(minutes=2)
    rater_id = battles[3].served_to_id
    vote = services.vote_create(
        token=battles[3].token, rater_id=rater_id, outcome="tie", ip_hash="", now=later
    )
    assert vote.outcome == "tie" and Vote.objects.count() == 4


@pytest.mark.django_db
def test_per_ip_rate_limit_across_raters(arena_settings):
    arena_settings.ARENA_VOTES_PER_MINUTE_PER_IP = 2
    make_arena()
    clients = [Client(REMOTE_ADDR="203.0.113.7") for _ in range(3)]
    battles = [serve(c) for c in clients]
    assert cast(clients[0], battles[0]).status_code == OK
    assert cast(clients[1], battles[1]).status_code == OK
    before = snapshot_state()
    assert_refused(cast(clients[2], battles[2]), 429, "rate_limited", before)
    other_network = Client(REMOTE_ADDR="198.51.100.1")
    assert cast(other_network, serve(other_network)).status_code == OK
    assert Rater.objects.count() == 4


@pytest.mark.django_db
def test_forwarded_for_is_trusted_only_behind_configured_proxies(arena_settings):
    arena_settings.ARENA_VOTES_PER_MINUTE_PER_IP = 1
    make_arena()
    a, b = Client(), Client()
    battle_a, battle_b = serve(a), serve(b)
    # With no trusted proxy, a spoofed X-Forwarded-For does not dodge the per-IP limit.
    assert cast(a, battle_a, HTTP_X_FORWARDED_FOR="192.0.2.1").status_code == OK
    assert cast(b, battle_b, HTTP_X_FORWARDED_FOR="192.0.2.2").status_code == 429
    arena_settings.ARENA_TRUSTED_PROXY_HOPS = 1
    assert cast(b, battle_b, HTTP_X_FORWARDED_FOR="192.0.2.2").status_code == OK


@pytest.mark.django_db
def test_csrf_is_required():
    make_arena()
    client = Client(enforce_csrf_checks=True)
    battle = serve(client)
    before = snapshot_state()
    response = cast(client, battle)
    assert_refused(response, 403, "csrf_failed", before)
    html = client.post(f"/arena/battles/{battle.token}/vote", {"outcome": "model_a"})
    assert html.status_code == 403 and "security token" in html.content.decode()
    token = client.cookies["csrftoken"].value
    assert cast(client, battle, HTTP_X_CSRFTOKEN=token).status_code == OK


@pytest.mark.django_db
def test_refusal_pages_are_html_for_browsers():
    make_arena()
    client = Client()
    battle = serve(client, viewed=0)
    response = client.post(f"/arena/battles/{battle.token}/vote", {"outcome": "model_a"})
    assert response.status_code == 425
    assert "at least 2 seconds" in response.content.decode()
    assert Vote.objects.count() == 0
    assert client.get(f"/arena/battles/{battle.token}/vote").status_code == 405


@pytest.mark.django_db(transaction=True)
def test_concurrent_votes_on_one_battle_store_exactly_one():
    make_arena()
    client = Client()
    battle = serve(client)
    session_cookie = client.cookies
    statuses: list[int] = []
    barrier = threading.Barrier(6)

    def worker(outcome: str) -> None:
        c = Client()
        c.cookies = session_cookie
        barrier.wait()
        try:
            statuses.append(cast(c, battle, outcome).status_code)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=worker, args=(o,))
        for o in ("model_a", "model_b", "tie", "both_bad", "model_a", "model_b")
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [201, 409, 409, 409, 409, 409], statuses
    assert Vote.objects.filter(battle=battle).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_vote_triggers_a_debounced_snapshot_refresh_on_a_real_worker(
    arena_settings, child_env, celery_workers
):
    from arena.models import RatingSnapshot
    from tests.conftest import wait_for

    arena_settings.ARENA_REFRESH_DEBOUNCE_SECONDS = 60
    make_arena()
    celery_workers.start(child_env, queues="default", name="arena-refresh")
    client = Client()
    first, second = serve(client), serve(client)
    assert cast(client, first).status_code == OK
    snapshot = wait_for(
        lambda: RatingSnapshot.objects.filter(task="text-to-image", category="").first(),
        timeout=90,
        message="the on-demand snapshot refresh after a vote",
    )
    assert snapshot.n_votes == 1
    assert cast(client, second).status_code == OK  # inside the debounce window: no new task
    from arena.services import request_rating_refresh

    assert request_rating_refresh(task="text-to-image") is False


@pytest.mark.django_db
def test_the_vote_statement_is_prepared_on_postgresql():
    """Planning the vote's joins costs more than running them: PostgreSQL must reuse a plan."""
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are a PostgreSQL matter")
    cast_votes(make_arena(), 8)  # past DATABASE_PREPARE_THRESHOLD (5) on this connection
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
            ["%cast_vote%"],
        )
        assert cursor.fetchone()[0] == 1
