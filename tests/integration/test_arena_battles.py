"""Serving battles: anonymous pages and JSON, eligibility, per-battle media ids, no identity leaks."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from arena.models import Battle, Rater
from tests.integration.arena_support import add_model, configure_arena, make_arena

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def arena_settings(settings, tmp_path):
    return configure_arena(settings, tmp_path)


def new_battle_json(client: Client, task: str = "text-to-image"):
    client.get(f"/arena/{task}/")  # sets the session and the CSRF cookie
    token = client.cookies["csrftoken"].value
    return client.post(
        f"/arena/{task}/battles", HTTP_ACCEPT="application/json", HTTP_X_CSRFTOKEN=token
    )


def test_battle_page_shows_prompt_two_samples_and_vote_controls():
    arena = make_arena()
    client = Client()
    response = client.get("/arena/text-to-image/")
    assert response.status_code == 200
    html = response.content.decode()
    battle = Battle.objects.get()
    assert battle.prompt.text in html
    assert f"/arena/media/{battle.media_token_a}" in html
    assert f"/arena/media/{battle.media_token_b}" in html
    for label in ("A is better", "B is better", "Tie", "Both are bad"):
        assert label in html
    assert 'aria-keyshortcuts="1"' in html and "<kbd>4</kbd>" in html
    served = {battle.sample_a.version.model_id, battle.sample_b.version.model_id}
    assert len(served) == 2 and served <= {m.pk for m in arena.models}
    assert battle.sample_a.prompt_id == battle.sample_b.prompt_id == battle.prompt_id


def test_anonymous_session_keeps_one_rater_and_users_get_their_own():
    make_arena()
    client = Client()
    client.get("/arena/text-to-image/")
    client.get("/arena/text-to-image/")
    assert Rater.objects.count() == 1
    assert Battle.objects.filter(served_to=Rater.objects.get()).count() == 2
    user = get_user_model().objects.create_user("alice", password="pw")
    logged_in = Client()
    logged_in.force_login(user)
    logged_in.get("/arena/text-to-image/")
    assert Rater.objects.get(user=user).battles.count() == 1


def test_no_model_identity_reaches_the_browser_before_the_vote():
    arena = make_arena(n_models=4, n_prompts=3, seeds=2)
    secrets_ = arena.identities()
    client = Client()
    seen_media = {}
    for round_ in range(30):
        if round_ % 2:
            response = new_battle_json(client)
            assert response.status_code == 201
            body = response.content.decode()
            payload = json.loads(body)
            urls = [m["url"] for m in payload["media"]]
        else:
            response = client.get("/arena/text-to-image/")
            assert response.status_code == 200
            body = response.content.decode()
            battle = Battle.objects.order_by("-id").first()
            urls = [f"/arena/media/{battle.media_token_a}", f"/arena/media/{battle.media_token_b}"]
        headers = " ".join(f"{k}: {v}" for k, v in response.items())
        for secret in secrets_:
            assert secret not in body, f"{secret!r} leaked in a battle response"
            assert secret not in headers, f"{secret!r} leaked in battle response headers"
        for url in urls:
            media = client.get(url)
            assert media.status_code == 200
            assert media["Content-Type"] == "image/png"
            assert "Content-Disposition" not in media
            media_headers = " ".join(f"{k}: {v}" for k, v in media.items())
            for secret in secrets_:
                assert secret not in media_headers and secret not in url
            seen_media[url] = b"".join(media.streaming_content)
    # A media id is never reused, so two battles cannot be linked by their URLs.
    assert len(seen_media) == 60


def test_the_same_sample_gets_a_new_media_id_in_every_battle():
    make_arena(n_models=2, n_prompts=1)
    client = Client()
    for _ in range(6):
        client.get("/arena/text-to-image/")
    tokens_by_sample = {}
    for battle in Battle.objects.all():
        tokens_by_sample.setdefault(battle.sample_a_id, set()).add(battle.media_token_a)
        tokens_by_sample.setdefault(battle.sample_b_id, set()).add(battle.media_token_b)
    assert all(len(tokens) == 6 for tokens in tokens_by_sample.values())


def test_media_is_only_served_to_the_rater_of_the_battle():
    make_arena()
    owner, stranger = Client(), Client()
    owner.get("/arena/text-to-image/")
    battle = Battle.objects.get()
    stranger.get("/arena/text-to-image/")
    assert owner.get(f"/arena/media/{battle.media_token_a}").status_code == 200
    refused = stranger.get(f"/arena/media/{battle.media_token_a}")
    assert refused.status_code == 404
    assert Client().get("/arena/media/not-a-token").status_code == 404


def test_only_approved_visible_healthy_versions_enter_battles():
    arena = make_arena(n_models=2)
    hidden = [
        add_model(arena, visibility="private"),
        add_model(arena, approved=False),
        add_model(arena, status="rejected"),
        add_model(arena, status="failed"),
    ]
    client = Client()
    for _ in range(25):
        assert client.get("/arena/text-to-image/").status_code == 200
    served = set()
    for battle in Battle.objects.select_related("sample_a__version", "sample_b__version"):
        served |= {battle.sample_a.version.model_id, battle.sample_b.version.model_id}
    assert served == {arena.models[0].pk, arena.models[1].pk}
    assert not served & {m.pk for m in hidden}


def test_no_battle_available_is_explained_not_an_error():
    make_arena(n_models=1)
    client = Client()
    page = client.get("/arena/text-to-image/")
    assert page.status_code == 200
    assert "No battle is available yet" in page.content.decode()
    response = new_battle_json(client)
    assert response.status_code == 503
    assert response.json()["error"] == "no_battle"
    assert Battle.objects.count() == 0


def test_unknown_task_is_404():
    assert Client().get("/arena/text-to-sound/").status_code == 404
    refused = Client().post("/arena/text-to-sound/battles", HTTP_ACCEPT="application/json")
    assert refused.status_code == 404
    assert refused.json() == {"error": "unknown_task", "message": "Unknown task."}


def test_video_arena_serves_video_samples_with_replay_control():
    make_arena(task="text-to-video")
    page = Client().get("/arena/text-to-video/")
    html = page.content.decode()
    assert page.status_code == 200
    assert html.count("<video") == 2 and 'id="replay"' in html


def test_battle_rate_limit_per_rater(arena_settings):
    arena_settings.ARENA_BATTLES_PER_MINUTE_PER_RATER = 3
    make_arena()
    client = Client()
    for _ in range(3):
        assert client.get("/arena/text-to-image/").status_code == 200
    refused = client.get("/arena/text-to-image/")
    assert refused.status_code == 429
    assert "at most 3 per minute" in refused.content.decode()
    assert Battle.objects.count() == 3
    # "Next battle" (JSON) is refused the same way, with the code and when to come back.
    refused = new_battle_json(client)
    assert refused.status_code == 429 and refused["Retry-After"] == "60"
    assert refused.json()["error"] == "rate_limited"
    assert Battle.objects.count() == 3
