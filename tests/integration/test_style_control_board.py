"""Snapshots with style control, Davidson ties and rank robustness, and how the board shows them.

The confounded board: "glow" is no better than "plain-b" but its samples are brighter, and voters
like brightness; the plain Bradley–Terry board ranks it first, style control removes the
advantage and finds a positive brightness coefficient.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from arena.models import Battle, Rater, RaterFlag, RatingSnapshot, Vote
from arena.rating_snapshots import (
    davidson_options,
    latest_snapshot,
    ratings_options,
    refresh_rating_snapshots,
    stored_votes,
    style_votes,
)
from arena.ratings import fit_davidson, rank_robustness
from evaluation.models import Prompt, PromptSet, Sample
from evaluation.sample_store import store_sample
from models_registry.models import GenerativeModel, ModelVersion, VersionStatus

pytestmark = pytest.mark.django_db

TASK = "text-to-image"
# logit skill and mean brightness of each model's samples
MODELS = {"glow": (0.0, 0.65), "strong": (0.5, 0.4), "plain-b": (0.0, 0.4), "weak": (-0.5, 0.4)}
STYLE_LOGIT = 4.0  # voters: logit += 4 * (b_a - b_b) / (b_a + b_b)
PROMPTS = 8


class Board:
    def __init__(self) -> None:
        owner = get_user_model().objects.create_user("style-owner")
        prompt_set = PromptSet.objects.create(slug="style-set", name="set", task=TASK)
        self.prompts = [
            Prompt.objects.create(prompt_set=prompt_set, text=f"p{k}", category="c", position=k)
            for k in range(PROMPTS)
        ]
        self.models: dict[str, GenerativeModel] = {}
        self.samples: dict[str, list[Sample]] = {}
        rng = np.random.default_rng(0)
        for slug, (_, mean) in MODELS.items():
            self.add_model(slug, rng.uniform(mean - 0.2, mean + 0.2, PROMPTS), owner)
        self.rater = Rater.objects.create(kind="human")

    def add_model(self, slug, levels, owner, covariates=True) -> None:
        model = GenerativeModel.objects.create(
            slug=slug,
            display_name=slug.title(),
            task=TASK,
            paradigm="diffusion",
            owner=owner,
            visibility="public",
        )
        version = ModelVersion.objects.create(
            model=model, tag="v1", status=VersionStatus.PUBLISHED, arena_approved=True
        )
        self.models[slug] = model
        self.samples[slug] = []
        for prompt, level in zip(self.prompts, levels, strict=True):
            pixels = np.full((8, 8, 3), round(255 * level), dtype=np.uint8)
            sample, _ = store_sample(
                version=version, prompt=prompt, seed=0, pixels=pixels, generation_seconds=1.0
            )
            if not covariates:
                Sample.objects.filter(pk=sample.pk).update(covariates={})
                sample.refresh_from_db()
            self.samples[slug].append(sample)

    def vote(self, n: int, seed: int, slugs=None, tie_rate: float = 0.0, rater=None) -> int:
        """n simulated votes between random pairs of `slugs`; returns how many were stored."""
        rater = rater or self.rater
        rng = np.random.default_rng(seed)
        slugs = slugs or list(MODELS)
        now = timezone.now()
        rows = []
        for _ in range(n):
            a, b = rng.choice(slugs, 2, replace=False)
            k = int(rng.integers(PROMPTS))
            sa, sb = self.samples[a][k], self.samples[b][k]
            ba = sa.covariates.get("brightness", 0.4)
            bb = sb.covariates.get("brightness", 0.4)
            skill_a, skill_b = MODELS.get(a, (0.0,))[0], MODELS.get(b, (0.0,))[0]
            logit = skill_a - skill_b + STYLE_LOGIT * (ba - bb) / (ba + bb)
            u = rng.random()
            if u < tie_rate:
                outcome = "tie" if rng.random() < 0.7 else "both_bad"
            else:
                outcome = "model_a" if rng.random() < 1 / (1 + np.exp(-logit)) else "model_b"
            rows.append((a, b, sa, sb, outcome, self.prompts[k]))
        battles = Battle.objects.bulk_create(
            Battle(
                task=TASK,
                prompt=prompt,
                sample_a=sa,
                sample_b=sb,
                served_to=rater,
                served_at=now,
                expires_at=now + timedelta(minutes=30),
            )
            for _, _, sa, sb, _, prompt in rows
        )
        Vote.objects.bulk_create(
            Vote(
                battle=battle,
                rater=rater,
                outcome=outcome,
                task=TASK,
                category="c",
                model_a=self.models[a],
                model_b=self.models[b],
            )
            for battle, (a, b, _, _, outcome, _) in zip(battles, rows, strict=True)
        )
        return len(rows)


@pytest.fixture
def board(settings, tmp_path) -> Board:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.ARENA_POOL_CACHE_SECONDS = 0
    settings.RATINGS_STYLE_MIN_VOTES = 50
    board = Board()
    board.vote(3000, seed=1)
    return board


def _by_model(rows) -> dict[str, dict]:
    return {row["model"]: row for row in rows}


def test_style_control_removes_the_brightness_advantage(board):
    refresh_rating_snapshots(task=TASK)
    snap = latest_snapshot(task=TASK)
    plain = _by_model(snap.rows)
    style = snap.extra["style"]
    assert style["status"] == "ok" and style["n_votes"] == 3000 and style["skipped_votes"] == 0
    styled = _by_model(style["rows"])
    # Plain board: glow (equal skill to plain-b, brighter samples) is first, far above plain-b.
    assert plain["glow"]["rank"] == 1
    assert plain["glow"]["rating"] - plain["plain-b"]["rating"] > 100
    # Style control: glow falls back to plain-b's level, below the truly stronger model.
    assert abs(styled["glow"]["rating"] - styled["plain-b"]["rating"]) < 40
    assert styled["strong"]["rank"] == 1 and styled["glow"]["rank"] > 1
    for row in style["rows"]:
        assert row["lower"] < row["rating"] < row["upper"]
    coefficients = {c["covariate"]: c for c in style["coefficients"]}
    assert list(coefficients) == [
        "brightness",
        "saturation",
        "aspect_ratio",
        "generation_seconds",
        "width",
    ]
    brightness = coefficients["brightness"]
    assert brightness["coefficient"] > 0 and brightness["lower"] > 0
    # Grey 8x8 images generated in 1 s: the other covariates never differ, so they are fixed at 0.
    for name in ("saturation", "aspect_ratio", "generation_seconds", "width"):
        assert coefficients[name]["coefficient"] == 0
        assert f"constant_covariate:{name}" in style["flags"]
    # Only the human all-prompts board gets style control.
    assert "style" not in latest_snapshot(task=TASK, category="c").extra


def test_votes_on_samples_without_covariates_are_skipped_and_counted(board, settings):
    owner = board.models["glow"].owner
    board.add_model("legacy", np.full(PROMPTS, 0.4), owner, covariates=False)
    legacy = board.vote(200, seed=2, slugs=["legacy", "weak"])
    refresh_rating_snapshots(task=TASK)
    style = latest_snapshot(task=TASK).extra["style"]
    assert style["skipped_votes"] == legacy and style["total_votes"] == 3000 + legacy
    assert style["missing"]["brightness"] == legacy
    assert "legacy" not in _by_model(style["rows"])
    found = style_votes(task=TASK, covariates=["brightness"])
    assert (found.total, found.skipped, found.votes.n_votes) == (3200, 200, 3000)
    body = Client().get(f"/leaderboard/{TASK}.json").json()
    rows = _by_model(body["rows"])
    assert rows["legacy"]["style"] is None and rows["glow"]["style"]["rank"] >= 2
    assert body["style"]["skipped_votes"] == 200
    html = Client().get(f"/leaderboard/{TASK}/").content.decode()
    assert "200 votes whose samples lack a covariate are left out" in html


def test_votes_of_excluded_raters_stay_out_of_style_control(board):
    spammer = Rater.objects.create(kind="human")
    board.vote(400, seed=5, rater=spammer)
    RaterFlag.objects.create(
        rater=spammer, decision="flagged", checked_at=timezone.now(), excluded=True
    )
    refresh_rating_snapshots(task=TASK)
    style = latest_snapshot(task=TASK).extra["style"]
    assert style["total_votes"] == 3000 and style["n_votes"] == 3000


def test_too_few_votes_with_covariates_means_no_style_column(board, settings):
    settings.RATINGS_STYLE_MIN_VOTES = 5000
    refresh_rating_snapshots(task=TASK)
    style = latest_snapshot(task=TASK).extra["style"]
    assert style["status"] == "too_few_votes" and style["n_votes"] == 3000
    html = Client().get(f"/leaderboard/{TASK}/").content.decode()
    assert "Rank (style control)" not in html and 'id="style-toggle"' not in html
    assert "Style control needs at least 5000 votes" in html
    settings.RATINGS_STYLE_COVARIATES = []
    refresh_rating_snapshots(task=TASK)  # the method changed: a new snapshot, without style
    assert "style" not in latest_snapshot(task=TASK).extra


def _row_order(html: str) -> list[str]:
    return re.findall(r'<tr data-model="([^"]+)"', html)


def test_page_has_a_style_rank_column_a_toggle_and_a_no_js_fallback(board):
    refresh_rating_snapshots(task=TASK)
    snap = latest_snapshot(task=TASK)
    client = Client()
    html = client.get(f"/leaderboard/{TASK}/").content.decode()
    assert "Rank (style control)" in html and 'id="style-rank-head"' in html
    toggle = re.search(r'<a id="style-toggle"[^>]*>([^<]*)</a>', html)
    assert toggle and 'href="?view=style"' in toggle.group(0)
    assert toggle.group(1) == "Order by style control"
    assert 'aria-pressed="false"' in toggle.group(0)
    assert _row_order(html)[0] == "glow"
    assert "What sways voters" in html and 'data-covariate="brightness"' in html
    styled = sorted(snap.extra["style"]["rows"], key=lambda r: r["rank"])
    html_style = client.get(f"/leaderboard/{TASK}/?view=style").content.decode()
    assert _row_order(html_style) == [r["model"] for r in styled]
    assert _row_order(html_style)[0] == "strong"
    toggle = re.search(r'<a id="style-toggle"[^>]*>([^<]*)</a>', html_style)
    assert toggle.group(1) == "Order by rating" and 'aria-pressed="true"' in toggle.group(0)
    head = re.search(r'<th[^>]*id="style-rank-head"[^>]*>', html_style).group(0)
    assert 'aria-sort="ascending"' in head
    # The style-rank cell of each row is its style-controlled rank.
    for row in styled:
        cell = re.search(
            rf'<tr data-model="{row["model"]}".*?<td data-sort="{row["rank"]}" class="style-rank"',
            html_style,
            re.S,
        )
        assert cell, row["model"]
    # Category filters keep the view in the toggle's links.
    html_cat = client.get(f"/leaderboard/{TASK}/?category=c&view=style").content.decode()
    assert "Rank (style control)" not in html_cat  # category boards have no style control


def test_anonymous_cache_keeps_the_two_orderings_apart(board, settings):
    settings.ARENA_LEADERBOARD_CACHE_SECONDS = 600
    refresh_rating_snapshots(task=TASK)
    client = Client()
    for _ in range(2):
        assert _row_order(client.get(f"/leaderboard/{TASK}/").content.decode())[0] == "glow"
        styled = client.get(f"/leaderboard/{TASK}/?view=style").content.decode()
        assert _row_order(styled)[0] == "strong"


def test_the_styled_page_reads_snapshots_and_never_fits(board, django_assert_max_num_queries):
    refresh_rating_snapshots(task=TASK)
    count = RatingSnapshot.objects.count()
    for url in (f"/leaderboard/{TASK}/", f"/leaderboard/{TASK}/?view=style"):
        with django_assert_max_num_queries(12):
            assert Client().get(url).status_code == 200
    assert RatingSnapshot.objects.count() == count


def test_json_and_csv_export_style_ties_and_robustness(board):
    refresh_rating_snapshots(task=TASK)
    snap = latest_snapshot(task=TASK)
    client = Client()
    body = client.get(f"/leaderboard/{TASK}.json").json()
    styled = _by_model(snap.extra["style"]["rows"])
    for row in body["rows"]:
        expected = styled[row["model"]]
        assert row["style"] == {
            k: expected[k] for k in ("rating", "lower", "upper", "rank", "rank_ub")
        }
    assert [c["covariate"] for c in body["style_coefficients"]][0] == "brightness"
    assert body["style_coefficients"][0]["coefficient"] > 0
    assert body["style"]["status"] == "ok" and body["style"]["n_votes"] == 3000
    assert body["ties"] == {"model": "half", "tie_weight": 0.5, "both_bad": "tie"}
    assert body["rows"][0]["robustness"] is None
    assert all(r["robustness"]["display"] for r in body["rows"][1:])
    assert body["robustness"]["max_removals"] == 1000
    styled_body = client.get(f"/leaderboard/{TASK}.json?view=style").json()
    assert styled_body["view"] == "style" and styled_body["rows"][0]["model"] == "strong"
    response = client.get(f"/leaderboard/{TASK}.csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    for row in rows:
        expected = styled[row["model"]]
        assert int(row["style_rank"]) == expected["rank"]
        assert float(row["style_rating"]) == pytest.approx(expected["rating"])
    assert rows[0]["robustness"] == ""
    assert [r["robustness"] for r in rows[1:]] == [
        r["robustness"]["display"] for r in body["rows"][1:]
    ]


def test_robustness_counts_equal_rank_robustness_on_the_same_votes(board, settings):
    settings.RATINGS_STYLE_COVARIATES = []
    refresh_rating_snapshots(task=TASK)
    snap = latest_snapshot(task=TASK)
    flips = rank_robustness(stored_votes(task=TASK), ratings_options(), max_removals=1000)
    stored = snap.extra["robustness"]
    assert stored["status"] == "ok"
    assert [(p["upper"], p["lower"], p["count"]) for p in stored["pairs"]] == [
        (f.upper, f.lower, f.count) for f in flips
    ]
    assert [p["upper"] for p in stored["pairs"]] == [r["model"] for r in snap.rows[:-1]]
    html = Client().get(f"/leaderboard/{TASK}/").content.decode()
    assert ">Robustness</button>" in html
    for flip in flips:
        removed = "vote" if flip.count == 1 else "votes"
        assert re.search(
            rf'<tr data-model="{flip.lower}".*?flips with {re.escape(flip.display)} {removed} removed',
            html,
            re.S,
        ), flip
    # A close pair needs few votes; the judge and category boards are fine too.
    assert min(f.count or 10**9 for f in flips) < 1000
    settings.RATINGS_ROBUSTNESS_MAX_MODELS = 3
    refresh_rating_snapshots(task=TASK)
    assert latest_snapshot(task=TASK).extra["robustness"]["status"] == "too_many_models"
    html = Client().get(f"/leaderboard/{TASK}/").content.decode()
    assert ">Robustness</button>" not in html


def test_davidson_ties_store_nu_and_the_board_reports_it(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.RATINGS_TIE_MODEL = "davidson"
    settings.RATINGS_STYLE_COVARIATES = []
    board = Board()
    board.vote(1500, seed=3, tie_rate=0.25)
    refresh_rating_snapshots(task=TASK)
    snap = latest_snapshot(task=TASK)
    fit = fit_davidson(stored_votes(task=TASK), davidson_options())
    ties = snap.extra["ties"]
    assert ties["model"] == "davidson" and ties["both_bad"] == "tie"
    assert ties["nu"] == pytest.approx(fit.nu) and ties["nu_lower"] < fit.nu < ties["nu_upper"]
    assert 0.3 < fit.nu < 1.5  # a quarter of the votes are ties
    assert snap.method["tie_model"] == "davidson"
    expected = _by_model(fit.table())
    assert [r["model"] for r in snap.rows] == [r["model"] for r in fit.table()]
    for row in snap.rows:
        assert row["rating"] == pytest.approx(expected[row["model"]]["rating"])
        assert row["upper"] == pytest.approx(expected[row["model"]]["upper"])
    body = Client().get(f"/leaderboard/{TASK}.json").json()
    assert body["ties"]["nu"] == pytest.approx(fit.nu)
    html = Client().get(f"/leaderboard/{TASK}/").content.decode()
    assert f"ν = {fit.nu:.3f}" in html and "Davidson" in html
    assert "“Both are bad” votes are counted as ties" in html
    settings.RATINGS_BOTH_BAD = "drop"
    refresh_rating_snapshots(task=TASK)
    dropped = latest_snapshot(task=TASK).extra["ties"]
    assert dropped["both_bad"] == "drop" and dropped["nu"] < ties["nu"]
    assert (
        "“Both are bad” votes are left out"
        in Client().get(f"/leaderboard/{TASK}/").content.decode()
    )
