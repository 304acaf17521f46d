"""Leaderboard pages, JSON and CSV, and model pages: read snapshots, respect visibility."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from arena.models import RatingSnapshot
from arena.rating_snapshots import refresh_rating_snapshots
from evaluation.models import MetricResult
from pipeline.models import VersionStage
from tests.integration.arena_support import add_model, cast_votes, judge_vote, make_arena

pytestmark = pytest.mark.django_db


@pytest.fixture
def board(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.ARENA_POOL_CACHE_SECONDS = 0
    settings.ARENA_VOTES_PER_MINUTE_PER_RATER = 10_000
    settings.ARENA_BATTLES_PER_MINUTE_PER_RATER = 10_000
    settings.ARENA_REFRESH_DEBOUNCE_SECONDS = 0
    settings.ARENA_PROVISIONAL_VOTES = 30
    arena = make_arena(n_models=3, n_prompts=2, seeds=2, showcase=1)
    cast_votes(arena, 40)
    refresh_rating_snapshots(task="text-to-image")
    cast_votes(arena, 20)
    refresh_rating_snapshots(task="text-to-image")
    weakest, middle, strongest = arena.models
    MetricResult.objects.create(
        version=arena.versions[2],
        metric="fid",
        value=12.5,
        lower=11.0,
        upper=14.0,
        backbone="inception",
    )
    MetricResult.objects.create(
        version=arena.versions[2], metric="clip_score", value=0.31, backbone="clip"
    )
    MetricResult.objects.create(
        version=arena.versions[1],
        metric="fid",
        status="unavailable",
        backbone="inception",
        message="set INCEPTION_WEIGHTS_PATH to enable FID",
    )
    MetricResult.objects.create(
        version=arena.versions[2],
        metric="kid",
        value=0.25,
        lower=0.2,
        upper=0.3,
        backbone="inception",
    )
    MetricResult.objects.create(
        version=arena.versions[2],
        metric="fd_clip",
        value=3.5,
        lower=3.0,
        upper=4.0,
        backbone="clip",
    )
    MetricResult.objects.create(
        version=arena.versions[0],
        metric="viescore",
        value=7.2,
        lower=6.8,
        upper=7.6,
        backbone="qwen",
    )
    return arena


def test_leaderboard_page_shows_ranked_models_metrics_and_plots(board):
    html = Client().get("/leaderboard/text-to-image/").content.decode()
    names = [m.display_name for m in board.models]
    positions = [html.index(name) for name in reversed(names)]
    assert positions == sorted(positions), "strongest model should be listed first"
    assert "FID ↓" in html and "CLIP score ↑" in html and "VIEScore ↑" in html
    assert "12.5 [11, 14]" in html
    assert "unavailable" in html and "INCEPTION_WEIGHTS_PATH" in html
    assert 'id="ci-plot"' in html and "<svg" in html and 'id="heatmap"' in html
    assert 'id="history"' in html and "<polyline" in html
    snapshot = RatingSnapshot.objects.filter(category="").latest("computed_at")
    assert snapshot.computed_at.strftime("%Y-%m-%d %H:%M:%S") in html
    assert 'aria-sort="ascending"' in html


def _metric_header(html: str, metric: str) -> str:
    found = re.search(rf'<th[^>]*data-metric="{metric}"[^>]*>(.*?)</th>', html, re.S)
    assert found, f"no column header for {metric}"
    return found.group(0)


def test_every_metric_column_has_its_catalogue_label_and_says_what_its_interval_is(board):
    html = Client().get("/leaderboard/text-to-image/").content.decode()
    for metric, label in (
        ("fid", "FID ↓"),
        ("clip_score", "CLIP score ↑"),
        ("fd_clip", "FD (CLIP) ↓"),
        ("viescore", "VIEScore ↑"),
    ):
        header = _metric_header(html, metric)
        assert label in header and "[95% CI]" in header and "±1 std" not in header
    kid = _metric_header(html, "kid")
    assert "KID ↓" in kid and "[±1 std]" in kid and "95% CI" not in kid
    assert "a spread rather than a confidence interval" in kid  # its tooltip
    # KID cells show a spread, the others a bracketed confidence interval.
    assert "0.25 ± 0.05" in html and "3.5 [3, 4]" in html and "7.2 [6.8, 7.6]" in html
    legend = re.search(r'<p id="metric-intervals".*?</p>', html, re.S).group(0)
    assert "KID ↓: ±1 standard deviation" in legend
    assert "FID ↓: 95% confidence interval" in legend
    cells = Client().get("/leaderboard/text-to-image.json").json()["rows"][0]["metrics"]
    assert cells["kid"]["interval"] == "std" and cells["fid"]["interval"] == "ci95"
    model_page = Client().get(f"/models/{board.models[2].slug}/").content.decode()
    assert "KID ↓" in model_page and "±1 std" in model_page and "0.25 ± 0.05" in model_page
    assert "FD (CLIP) ↓" in model_page and "95% CI" in model_page


def test_models_with_few_votes_are_marked_provisional(board, settings):
    rows = Client().get("/leaderboard/text-to-image.json").json()["rows"]
    votes = sorted(r["votes"] for r in rows)
    marker = 'title="fewer than'
    settings.ARENA_PROVISIONAL_VOTES = votes[0]
    assert Client().get("/leaderboard/text-to-image/").content.decode().count(marker) == 0
    settings.ARENA_PROVISIONAL_VOTES = votes[-1]
    html = Client().get("/leaderboard/text-to-image/").content.decode()
    assert html.count(marker) == sum(v < votes[-1] for v in votes) >= 1
    settings.ARENA_PROVISIONAL_VOTES = votes[-1] + 1
    body = Client().get("/leaderboard/text-to-image.json").json()
    assert all(r["provisional"] for r in body["rows"])


def test_the_page_reads_snapshots_and_never_fits(board, django_assert_max_num_queries):
    count = RatingSnapshot.objects.count()
    with django_assert_max_num_queries(12):
        assert Client().get("/leaderboard/text-to-image/").status_code == 200
    assert RatingSnapshot.objects.count() == count


def test_category_filter(board):
    client = Client()
    html = client.get("/leaderboard/text-to-image/?category=animals").content.decode()
    assert "· animals" in html and '<option value="animals" selected>' in html
    body = client.get("/leaderboard/text-to-image.json?category=animals").json()
    snap = RatingSnapshot.objects.filter(category="animals").latest("computed_at")
    assert body["category"] == "animals" and body["n_votes"] == snap.n_votes
    empty = client.get("/leaderboard/text-to-image/?category=nothing-here")
    html = empty.content.decode()
    assert empty.status_code == 200 and "No human votes yet in this category" in html
    # The models are still listed, with their metrics and no rating.
    assert html.count("no votes yet") == 3 and "12.5" in html


def test_published_models_without_votes_are_listed_with_their_metrics(board, settings):
    newcomer = add_model(board, name="Newcomer Gen")
    MetricResult.objects.create(
        version=board.versions[-1], metric="fid", value=40.0, lower=39.0, upper=41.0
    )
    draft = add_model(board, name="Draft Gen", status="ready")
    client = Client()
    body = client.get("/leaderboard/text-to-image.json").json()
    rows = {r["model"]: r for r in body["rows"]}
    assert draft.slug not in rows  # not published yet
    row = rows[newcomer.slug]
    assert row["no_votes"] and row["rating"] is None and row["rank"] is None
    assert row["metrics"]["fid"]["value"] == 40.0 and not row["provisional"]
    assert [r["model"] for r in body["rows"]][-1] == newcomer.slug  # after the rated models
    html = client.get("/leaderboard/text-to-image/").content.decode()
    assert re.search(rf'data-model="{newcomer.slug}" class="no-votes"', html)
    csv_rows = list(
        csv.DictReader(io.StringIO(client.get("/leaderboard/text-to-image.csv").content.decode()))
    )
    assert {r["model"]: r["no_votes"] for r in csv_rows}[newcomer.slug] == "True"


def test_a_board_without_any_vote_lists_every_published_model(settings):
    arena = make_arena(n_models=2, n_prompts=1)
    MetricResult.objects.create(version=arena.versions[0], metric="clip_score", value=0.3)
    html = Client().get("/leaderboard/text-to-image/").content.decode()
    assert "No human votes yet" in html and html.count("no votes yet") == 2
    assert "Judge rating" not in html  # no judge has voted either
    for model in arena.models:
        assert model.display_name in html


def test_judge_ratings_have_their_own_labelled_column(board):

    from arena.judging import judge_rater

    judge = judge_rater(judge_name="synthetic-checker")
    strongest, weakest = board.models[2], board.models[0]
    sample_of = {v.model_id: v.samples.first() for v in board.versions[:3]}
    for k in range(6):
        judge_vote(
            judge,
            sample_of[strongest.pk],
            sample_of[weakest.pk],
            "model_a" if k < 5 else "model_b",
            token=f"judge-{k}",
        )
    human_before = RatingSnapshot.objects.filter(rater_kind="human").latest("computed_at").rows
    refresh_rating_snapshots(task="text-to-image")
    client = Client()
    html = client.get("/leaderboard/text-to-image/").content.decode()
    assert "Judge rating" in html and "[synthetic-checker, 95% CI]" in html
    rows = {r["model"]: r for r in client.get("/leaderboard/text-to-image.json").json()["rows"]}
    assert rows[strongest.slug]["judge"]["votes"] == 6
    assert rows[strongest.slug]["judge"]["rating"] > rows[weakest.slug]["judge"]["rating"]
    assert rows[board.models[1].slug]["judge"] is None  # never judged
    # Human ratings are untouched by judge votes.
    human_after = RatingSnapshot.objects.filter(rater_kind="human").latest("computed_at").rows
    assert [r["rating"] for r in human_after] == [r["rating"] for r in human_before]


def test_json_and_csv_at_stable_urls(board):
    client = Client()
    body = client.get("/leaderboard/text-to-image.json").json()
    assert [r["model"] for r in body["rows"]] == [m.slug for m in reversed(board.models)]
    row = body["rows"][0]
    assert {
        "rank",
        "rank_ub",
        "rating",
        "lower",
        "upper",
        "votes",
        "win_rate",
        "provisional",
    } <= set(row)
    assert row["metrics"]["fid"]["value"] == 12.5
    assert body["computed_at"] and len(body["win_rate_matrix"]) == 3
    response = client.get("/leaderboard/text-to-image.csv")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["model"] for r in rows] == [m.slug for m in reversed(board.models)]
    assert rows[0]["fid"] == "12.5" and rows[1]["fid"] == "unavailable"
    assert client.get("/leaderboard/text-to-sound.json").status_code == 404


def test_private_models_are_hidden_except_from_owner_and_staff(board, django_user_model):
    private = board.models[1]
    private.visibility = "private"
    private.save()
    anonymous = Client()
    assert private.slug not in anonymous.get("/leaderboard/text-to-image.json").content.decode()
    assert private.display_name not in anonymous.get("/leaderboard/text-to-image/").content.decode()
    assert anonymous.get(f"/models/{private.slug}/").status_code == 404
    owner = Client()
    owner.force_login(private.owner)
    assert private.slug in owner.get("/leaderboard/text-to-image.json").content.decode()
    assert owner.get(f"/models/{private.slug}/").status_code == 200
    staff = Client()
    staff.force_login(django_user_model.objects.create_user("staff", password="x", is_staff=True))
    assert staff.get(f"/models/{private.slug}/").status_code == 200
    # The head-to-head record of a public model does not name the private opponent.
    public_page = anonymous.get(f"/models/{board.models[2].slug}/").content.decode()
    assert private.display_name not in public_page


def test_model_page_card_versions_stages_gallery_metrics_and_head_to_head(board):
    model, version = board.models[2], board.versions[2]
    VersionStage.objects.create(version=version, stage="generate", state="done", done=4, total=4)
    VersionStage.objects.create(
        version=version,
        stage="metrics",
        state="failed",
        done=1,
        total=3,
        reason="CUDA out of memory",
    )
    client = Client()
    html = client.get(f"/models/{model.slug}/").content.decode()
    assert model.display_name in html and "Diffusion" in html and "MIT" in html
    assert version.tag in html and "CUDA out of memory" in html and "4 / 4" in html
    assert "a red fox number 0 in the snow" in html
    sample = version.samples.filter(pool="showcase").first()
    media = client.get(f"/models/{model.slug}/samples/{sample.public_id}")
    assert media.status_code == 200 and media["Content-Type"] == "image/png"
    for battle_sample in version.samples.filter(pool="battle"):  # served in battles only
        assert str(battle_sample.public_id) not in html
        url = f"/models/{model.slug}/samples/{battle_sample.public_id}"
        assert client.get(url).status_code == 404
    other = board.versions[0].samples.first()
    assert client.get(f"/models/{model.slug}/samples/{other.public_id}").status_code == 404
    assert "12.5" in html and "clip_score" in html
    for opponent in board.models[:2]:
        assert opponent.display_name in html
    assert client.get("/models/no-such-model/").status_code == 404


def test_empty_leaderboard_and_new_models(board):
    add_model(board)
    html = Client().get("/leaderboard/text-to-video/").content.decode()
    assert "No published models for this task yet" in html


@pytest.mark.django_db
def test_a_model_that_never_lost_is_explained_in_words_not_codes(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.ARENA_POOL_CACHE_SECONDS = 0
    settings.ARENA_VOTES_PER_MINUTE_PER_RATER = 10_000
    settings.ARENA_BATTLES_PER_MINUTE_PER_RATER = 10_000
    settings.ARENA_REFRESH_DEBOUNCE_SECONDS = 0
    arena = make_arena(n_models=2, n_prompts=1)
    cast_votes(arena, 1)  # one vote: the winner never lost, the MLE is infinite
    refresh_rating_snapshots(task="text-to-image")
    snapshot = RatingSnapshot.objects.filter(category="").latest("computed_at")
    assert "infinite_mle" in snapshot.extra["flags"]

    html = Client().get("/leaderboard/text-to-image/").content.decode()
    assert "only wins or only losses so far" in html
    assert '<p class="notice">infinite_mle</p>' not in html
    assert "infinite_mle" in Client().get("/leaderboard/text-to-image.json").content.decode()


def test_anonymous_leaderboards_are_cached_and_never_stale(board, django_assert_num_queries):
    url = "/leaderboard/text-to-image/"
    first = Client().get(url).content
    with django_assert_num_queries(1):  # the fingerprint only: page served from the cache
        assert Client().get(url).content == first
    # A model made private disappears at once for anonymous visitors (no leak from the cache).
    private = board.models[2]
    private.visibility = "private"
    private.save()
    assert private.display_name not in Client().get(url).content.decode()
    assert private.slug not in Client().get("/leaderboard/text-to-image.json").content.decode()
    owner = Client()
    owner.force_login(private.owner)
    assert private.display_name in owner.get(url).content.decode()  # never the anonymous copy
    # A new snapshot and a changed metric show up on the next load.
    private.visibility = "public"
    private.save()
    cast_votes(board, 5)
    refresh_rating_snapshots(task="text-to-image")
    newest = RatingSnapshot.objects.filter(category="").latest("computed_at")
    page = Client().get(url).content.decode()
    assert newest.computed_at.strftime("%Y-%m-%d %H:%M:%S") in page
    fid = MetricResult.objects.get(metric="fid", status="ok")
    fid.value = 99.25
    fid.save()
    assert "99.2" in Client().get(url).content.decode()


def test_leaderboard_cache_can_be_switched_off(board, settings):
    settings.ARENA_LEADERBOARD_CACHE_SECONDS = 0
    Client().get("/leaderboard/text-to-image/")
    with CaptureQueriesContext(connection) as captured:
        assert Client().get("/leaderboard/text-to-image/").status_code == 200
    assert len(captured) > 1  # rendered again, not served from the cache
