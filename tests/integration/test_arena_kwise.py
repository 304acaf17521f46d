"""K-wise battles (rank K samples or pick the best), the daily vote cap, the rater outlier test
and its maintainers' view, and personal leaderboards: through the real views and services."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from django.core.management import call_command
from django.test import Client

from arena import rater_checks, services
from arena.models import Battle, BattleSample, RaterFlag, RatingSnapshot, Vote
from arena.rating_snapshots import (
    kwise_votes,
    latest_snapshot,
    plackett_luce_options,
    ratings_options,
    refresh_rating_snapshots,
    stored_votes,
)
from arena.ratings.plackett_luce import RankedVotes, fit_plackett_luce
from tests.integration.arena_support import age_battle, cast_votes, configure_arena, make_arena

pytestmark = pytest.mark.django_db
URL = "/arena/text-to-image/"


@pytest.fixture(autouse=True)
def arena_settings(settings, tmp_path):
    return configure_arena(settings, tmp_path, ARENA_MIN_VIEW_SECONDS=1.0)


def serve(client: Client, k: int | None = 4) -> Battle:
    response = client.get(URL + (f"?k={k}" if k else ""))
    assert response.status_code == 200, response.content
    return age_battle(Battle.objects.order_by("-id").first(), 5)


def lineup(battle: Battle) -> list[int]:
    """Model ids of a battle's samples in display order (A, B, C, ...)."""
    extra = BattleSample.objects.filter(battle=battle).order_by("position")
    samples = [battle.sample_a, battle.sample_b, *(e.sample for e in extra)]
    return [s.version.model_id for s in samples]


def post(client: Client, battle: Battle, **fields):
    return client.post(
        f"/arena/battles/{battle.token}/vote", fields, HTTP_ACCEPT="application/json"
    )


def state():
    return (Vote.objects.count(), Battle.objects.count(), BattleSample.objects.count())


def test_kwise_battle_serves_four_anonymous_samples_and_reveals_after_a_ranking():
    arena = make_arena(n_models=5, n_prompts=2)
    client = Client()
    page = client.get(URL + "?k=4")
    assert page.status_code == 200
    html = page.content.decode()
    battle = age_battle(Battle.objects.get(), 5)
    assert battle.size == 4 and BattleSample.objects.filter(battle=battle).count() == 2
    models = lineup(battle)
    assert len(set(models)) == 4
    for identity in arena.identities():
        assert identity not in html, f"{identity!r} leaks before the vote"
    media = [battle.media_token_a, battle.media_token_b]
    media += [e.media_token for e in BattleSample.objects.filter(battle=battle)]
    for token in media:
        assert f"/arena/media/{token}" in html
        response = client.get(f"/arena/media/{token}")
        assert response.status_code == 200
        headers = " ".join(f"{k}: {v}" for k, v in response.headers.items())
        assert not any(identity in headers for identity in arena.identities())
        assert Client().get(f"/arena/media/{token}").status_code == 404  # another browser
    response = post(client, battle, ranking="C,A,D,B")
    assert response.status_code == 201, response.content
    vote = Vote.objects.get()
    assert vote.kind == "ranking" and vote.battle == battle
    assert vote.ranking == [models[2], models[0], models[3], models[1]]
    assert vote.model_a_id == models[0] and vote.model_b_id == models[1]
    assert vote.outcome == "model_a"  # A is ranked above B
    reveal = response.json()
    slugs = {m.pk: m.slug for m in arena.models}
    assert [m["slug"] for m in reveal["models"]] == [slugs[m] for m in models]
    assert [(m["side"], m["rank"]) for m in reveal["ranking"]] == [
        ("C", 1),
        ("A", 2),
        ("D", 3),
        ("B", 4),
    ]
    assert reveal["summary"] == "C > A > D > B"


def test_best_of_k_vote_stores_the_winner_first_and_projects_a_and_b():
    make_arena(n_models=4, n_prompts=1, seeds=12)
    client = Client()
    battle = serve(client)
    models = lineup(battle)
    response = post(client, battle, best="d")
    assert response.status_code == 201, response.content
    vote = Vote.objects.get()
    assert vote.kind == "top1" and vote.ranking == [models[3], models[0], models[1], models[2]]
    assert vote.outcome == "both_bad"  # neither A nor B was the best
    battle = serve(client)
    assert post(client, battle, best="B").status_code == 201
    assert Vote.objects.order_by("-id").first().outcome == "model_b"


def test_html_form_best_vote_without_javascript_shows_the_ranked_reveal():
    arena = make_arena(n_models=4, n_prompts=1)
    client = Client()
    battle = serve(client)
    response = client.post(
        f"/arena/battles/{battle.token}/vote", {"best": "C", "vote_kind": "best"}
    )
    assert response.status_code == 201
    html = response.content.decode()
    assert all(m.display_name in html for m in arena.models) and "?k=4" in html


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"ranking": "A,B,C"}, "bad_ranking"),  # not all four
        ({"ranking": "A,A,B,C"}, "bad_ranking"),  # twice
        ({"ranking": "A,B,C,Z"}, "bad_ranking"),
        ({"best": "E"}, "bad_best"),  # no fifth sample
        ({"best": "A", "ranking": "A,B,C,D"}, "bad_vote"),
        ({"vote_kind": "best"}, "bad_best"),  # the form without a choice
        ({"outcome": "model_a"}, "wrong_vote_kind"),  # a pairwise verdict on four samples
    ],
)
def test_bad_kwise_votes_are_400_and_write_nothing(fields, code):
    make_arena(n_models=4, n_prompts=1)
    client = Client()
    battle = serve(client)
    before = state()
    response = post(client, battle, **fields)
    assert response.status_code == 400, response.content
    assert response.json()["error"] == code and len(response.json()["message"]) > 10
    assert state() == before


def test_a_ranking_on_a_pairwise_battle_is_refused_and_pairs_stay_the_default():
    make_arena(n_models=4, n_prompts=1)
    client = Client()
    battle = serve(client, k=None)
    assert battle.size == 2 and not BattleSample.objects.exists()
    before = state()
    response = post(client, battle, ranking="B,A")
    assert response.status_code == 400 and response.json()["error"] == "pairwise_battle"
    assert state() == before
    assert client.get(URL + "?k=9").status_code == 400
    assert post(client, battle, outcome="model_b").status_code == 201


def test_kwise_vote_keeps_the_battle_rules():
    make_arena(n_models=4, n_prompts=1)
    owner, stranger = Client(), Client()
    battle = serve(owner)
    stranger.get(URL)
    before = state()
    response = post(stranger, battle, ranking="A,B,C,D")
    assert response.status_code == 403 and state() == before
    assert post(owner, battle, ranking="A,B,C,D").status_code == 201
    assert post(owner, battle, ranking="D,C,B,A").status_code == 409


def test_next_battle_keeps_k_and_falls_back_to_what_the_pool_allows():
    make_arena(n_models=3, n_prompts=1)
    client = Client()
    client.get(URL)
    response = client.post(
        "/arena/text-to-image/battles", {"k": "4"}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 201
    body = response.json()
    assert body["size"] == 3 and [m["side"] for m in body["media"]] == ["A", "B", "C"]


def vote_kwise(arena, client: Client, n: int, strength: dict[int, float], rng) -> None:
    """n K-wise votes ranked by a Plackett–Luce rater with these strengths; every third one a
    best-of-K pick."""
    for k in range(n):
        battle = serve(client)
        models = lineup(battle)
        weights = np.exp([strength[m] for m in models])
        order = list(
            rng.choice(len(models), size=len(models), replace=False, p=weights / weights.sum())
        )
        letters = [services.SIDES[p] for p in order]
        fields = {"best": letters[0]} if k % 3 == 2 else {"ranking": ",".join(letters)}
        assert post(client, battle, **fields).status_code == 201


def test_snapshot_fits_pairwise_and_kwise_votes_together_with_plackett_luce():
    arena = make_arena(n_models=4, n_prompts=2, seeds=20)
    strength = {m.pk: s for m, s in zip(arena.models, (0.0, 0.5, 1.0, 1.5), strict=True)}
    rng = np.random.default_rng(3)
    client = Client()
    for _ in range(12):
        battle = serve(client, k=None)
        a, b = lineup(battle)
        assert (
            post(
                client, battle, outcome="model_a" if strength[a] > strength[b] else "model_b"
            ).status_code
            == 201
        )
    refresh_rating_snapshots(task="text-to-image")
    bt = latest_snapshot(task="text-to-image")
    assert "fit" not in bt.extra  # no K-wise vote yet: the Bradley–Terry fit, unchanged
    vote_kwise(arena, client, 18, strength, rng)
    refresh_rating_snapshots(task="text-to-image")
    snapshot = latest_snapshot(task="text-to-image")
    assert snapshot.extra["fit"] == "plackett_luce" and snapshot.n_votes == 30
    assert snapshot.extra["kwise_battles"] == 18
    ranked = kwise_votes(task="text-to-image")
    assert ranked.n_battles == 18
    expected = fit_plackett_luce(
        RankedVotes.concat(stored_votes(task="text-to-image"), ranked),
        plackett_luce_options(ratings_options()),
    )
    ratings = dict(zip(expected.models, expected.ratings, strict=True))
    assert {row["model"]: row["rating"] for row in snapshot.rows} == pytest.approx(ratings)
    assert sum(row["votes"] for row in snapshot.rows) == 2 * 12 + 4 * 18
    assert snapshot.rows[0]["model"] == arena.models[3].slug  # strongest first
    # unchanged votes: the board keeps its snapshot
    count = RatingSnapshot.objects.count()
    refresh_rating_snapshots(task="text-to-image")
    assert RatingSnapshot.objects.count() == count


def test_daily_vote_cap_is_a_429_with_a_clear_message(settings):
    settings.ARENA_VOTES_PER_DAY_PER_RATER = 3
    make_arena(n_models=3, n_prompts=2, seeds=20)
    client = Client()
    for _ in range(3):
        battle = serve(client, k=None)
        assert post(client, battle, outcome="model_a").status_code == 201
    battle = serve(client, k=None)
    before = state()
    response = post(client, battle, outcome="model_a")
    assert response.status_code == 429
    body = response.json()
    assert body["error"] == "daily_limit" and "at most 3 votes per rater" in body["message"]
    assert response["Retry-After"] and state() == before
    other = Client()  # another rater is not capped
    battle = serve(other, k=None)
    assert post(other, battle, outcome="model_a").status_code == 201


def simulate_raters(arena, *, honest: int, random: int, votes: int, seed: int = 0):
    """Raters voting through the services: honest ones by the Bradley–Terry law of strengths
    far apart (2 logits a step), random ones by coin flips. Returns {rater id: "honest"|"random"}."""
    rng = np.random.default_rng(seed)
    strength = {m.pk: 2.0 * k for k, m in enumerate(arena.models)}
    raters = {}
    for kind, n in (("honest", honest), ("random", random)):
        for _ in range(n):
            raters[services.rater_for(user=None, anonymous_rater_id=None).pk] = kind
    for rater_id, kind in raters.items():
        rater = services.rater_for(user=None, anonymous_rater_id=rater_id)
        for _ in range(votes):
            battle = age_battle(
                services.battle_create(task=arena.task, rater=rater, ip_hash="", rng=rng, k=2), 5
            )
            a, b = lineup(battle)
            p_a = 1 / (1 + np.exp(strength[b] - strength[a])) if kind == "honest" else 0.5
            outcome = "model_a" if rng.random() < p_a else "model_b"
            services.vote_create(token=battle.token, rater_id=rater_id, outcome=outcome, ip_hash="")
    return raters


def test_the_flag_task_flags_a_random_rater_clears_honest_ones_and_snapshots_drop_its_votes(
    tmp_path,
):
    from workers.tasks import check_raters

    arena = make_arena(n_models=4, n_prompts=2, seeds=30)
    raters = simulate_raters(arena, honest=4, random=1, votes=40)
    refresh_rating_snapshots(task="text-to-image")
    assert latest_snapshot(task="text-to-image").n_votes == 200
    summary = check_raters()
    flags = {f.rater_id: f for f in RaterFlag.objects.all()}
    assert set(flags) == set(raters)
    for rater_id, kind in raters.items():
        expected = "flagged" if kind == "random" else "cleared"
        assert flags[rater_id].decision == expected, (kind, flags[rater_id].llr)
        assert flags[rater_id].excluded == (kind == "random")
        assert flags[rater_id].decided_at is not None and flags[rater_id].decided_at <= 40
    assert summary["flagged"] == 1 and summary["cleared"] == 4 and summary["changed"] == 1
    # the task refreshed the boards without the flagged rater's 40 votes
    assert latest_snapshot(task="text-to-image").n_votes == 160
    assert stored_votes(task="text-to-image").n_votes == 160
    # ... which stay in the export, marked
    out = tmp_path / "votes.csv"
    call_command(
        "export_votes", "--task", "text-to-image", "--output", str(out), stderr=io.StringIO()
    )
    frame = pd.read_csv(out)
    assert len(frame) == 200 and int(frame["flagged"].sum()) == 40
    assert set(frame["vote_kind"]) == {"pair"}


def test_maintainer_view_is_staff_only_and_a_review_overrides_the_test(django_user_model):
    arena = make_arena(n_models=4, n_prompts=2, seeds=30)
    raters = simulate_raters(arena, honest=2, random=1, votes=30, seed=1)
    rater_checks.check_all_raters()
    random_id = next(r for r, kind in raters.items() if kind == "random")
    flag = RaterFlag.objects.get(rater_id=random_id)
    assert flag.decision == "flagged" and flag.excluded
    url = "/maintainers/raters/"
    assert Client().get(url).status_code == 403
    user = django_user_model.objects.create_user("someone", password="pw")
    client = Client()
    client.force_login(user)
    assert client.get(url).status_code == 403
    assert client.post(f"{url}{flag.pk}/review", {"action": "clear"}).status_code == 403
    staff = django_user_model.objects.create_user("keeper", password="pw", is_staff=True)
    client.force_login(staff)
    page = client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    from arena.selectors import anonymised_rater_id

    assert anonymised_rater_id(random_id) in html and "flagged at vote" in html
    assert client.post(f"{url}{flag.pk}/review", {"action": "nope"}).status_code == 400
    assert client.post(f"{url}999999/review", {"action": "clear"}).status_code == 404
    response = client.post(f"{url}{flag.pk}/review", {"action": "clear"})
    assert response.status_code == 302
    flag.refresh_from_db()
    assert flag.review == "cleared" and not flag.excluded and flag.reviewed_by == staff
    rater_checks.check_all_raters()  # the test flags again; the review stands
    flag.refresh_from_db()
    assert flag.decision == "flagged" and not flag.excluded
    client.post(f"{url}{flag.pk}/review", {"action": "reset"})
    flag.refresh_from_db()
    assert flag.excluded and flag.review == ""


def test_personal_board_needs_thirty_votes():
    arena = make_arena(n_models=3, n_prompts=2, seeds=25)
    strength = {m.pk: k for k, m in enumerate(arena.models)}
    cast_votes(arena, 60, strength)  # the consensus: stronger models win
    client = Client()
    url = "/me/leaderboard/text-to-image/"
    response = client.get(url)
    assert response.status_code == 200 and "needs 30" in response.content.decode()
    for k in range(30):
        battle = serve(client, k=None)
        a, b = lineup(battle)
        # this rater prefers the weakest model: their board must shift it up
        outcome = "model_a" if strength[a] < strength[b] else "model_b"
        assert post(client, battle, outcome=outcome).status_code == 201
        if k == 28:
            refresh_rating_snapshots(task="text-to-image")
            html = client.get(url).content.decode()
            assert "You have 29 votes" in html and "Cast 1 more vote to see it" in html
            assert 'id="personal-board"' not in html
    refresh_rating_snapshots(task="text-to-image")
    response = client.get(url)
    html = response.content.decode()
    assert response.status_code == 200 and 'id="personal-board"' in html
    rater = Vote.objects.order_by("-id").first().rater
    board = rater_checks.personal_board(rater=rater, task="text-to-image")
    assert board.n_votes == 30 and len(board.rows) == 3
    by_model = {row["model"]: row for row in board.rows}
    weakest, strongest = arena.models[0].slug, arena.models[2].slug
    assert by_model[weakest]["shift"] > 0 > by_model[strongest]["shift"]
    assert arena.models[0].display_name in html
