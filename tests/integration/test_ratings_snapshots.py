"""Leaderboard snapshots from stored votes: SQL aggregation, refresh, history, command, task."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import numpy as np
import pandas as pd
import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from arena.models import Battle, Rater, RatingSnapshot, Vote
from arena.rating_snapshots import (
    latest_snapshot,
    ratings_options,
    recent_elo,
    refresh_rating_snapshots,
    snapshot_history,
    stored_votes,
)
from arena.ratings import AggregatedVotes, OnlineElo, fit_bradley_terry
from evaluation.models import Prompt, PromptSet, Sample
from models_registry.models import GenerativeModel, ModelVersion
from tests.conftest import wait_for

TASK = "text-to-image"


class Arena:
    """Just enough registry/evaluation rows to store votes for a few models."""

    def __init__(self, slugs: list[str], categories: list[str]) -> None:
        owner = get_user_model().objects.create_user("ratings-owner")
        prompt_set = PromptSet.objects.create(slug="ratings-set", name="set", task=TASK)
        self.prompts = {
            c: Prompt.objects.create(prompt_set=prompt_set, text=f"prompt {c}", category=c)
            for c in categories
        }
        self.samples: dict[tuple[str, str], Sample] = {}
        self.models = {}
        for slug in slugs:
            model = GenerativeModel.objects.create(
                slug=slug,
                display_name=slug.title(),
                task=TASK,
                paradigm="diffusion",
                owner=owner,
                visibility="public",
            )
            self.models[slug] = model
            version = ModelVersion.objects.create(model=model, tag="v1")
            for c, prompt in self.prompts.items():
                self.samples[slug, c] = Sample.objects.create(
                    version=version,
                    prompt=prompt,
                    seed=0,
                    media=f"samples/{slug}-{c}.png",
                    media_kind="image",
                    width=8,
                    height=8,
                    sha256="0" * 64,
                )
        self.human = Rater.objects.create(kind="human")
        self.judge = Rater.objects.create(kind="judge", judge_name="test-judge")

    def vote(self, rows: list[tuple[str, str, str, str, str]]) -> list[Vote]:
        """rows: (model_a slug, model_b slug, outcome, category, rater kind), in vote order."""
        now = timezone.now()
        battles = Battle.objects.bulk_create(
            Battle(
                task=TASK,
                prompt=self.prompts[c],
                sample_a=self.samples[a, c],
                sample_b=self.samples[b, c],
                served_to=self.human if kind == "human" else self.judge,
                served_at=now,
                expires_at=now + timedelta(minutes=30),
            )
            for a, b, _, c, kind in rows
        )
        votes = []
        for battle, (a, b, outcome, c, kind) in zip(battles, rows, strict=True):
            votes.append(
                Vote(
                    battle=battle,
                    rater=self.human if kind == "human" else self.judge,
                    rater_kind=kind,
                    outcome=outcome,
                    task=TASK,
                    category=c,
                    model_a=self.models[a],
                    model_b=self.models[b],
                )
            )
        return Vote.objects.bulk_create(votes)


def simulated_rows(n: int, seed: int, slugs, categories, kinds=("human",)):
    rng = np.random.default_rng(seed)
    skill = {s: v for s, v in zip(slugs, np.linspace(1, -1, len(slugs)), strict=True)}
    rows = []
    for _ in range(n):
        a, b = rng.choice(slugs, 2, replace=False)
        p = 1 / (1 + np.exp(-(skill[a] - skill[b])))
        u = rng.random()
        outcome = "model_a" if u < 0.8 * p else "model_b" if u < 0.8 else "tie"
        if outcome == "tie" and rng.random() < 0.3:
            outcome = "both_bad"
        rows.append((a, b, outcome, rng.choice(categories), rng.choice(kinds)))
    return rows


SLUGS = ["alpha", "beta", "gamma", "delta"]
CATEGORIES = ["animals", "scenes"]


@pytest.fixture
def arena(db) -> Arena:
    return Arena(SLUGS, [*CATEGORIES, ""])


def core_fit(rows, *, category="", kind="human"):
    chosen = [r for r in rows if r[4] == kind and (not category or r[3] == category)]
    a, b, outcome = zip(*[r[:3] for r in chosen], strict=True)
    return fit_bradley_terry(AggregatedVotes.from_votes(a, b, outcome), ratings_options())


def test_stored_votes_are_aggregated_in_sql_and_match_the_core(arena):
    rows = simulated_rows(400, 1, SLUGS, CATEGORIES)
    arena.vote(rows)
    with CaptureQueriesContext(connection) as queries:
        votes = stored_votes(task=TASK, category="animals")
    assert any("GROUP BY" in q["sql"] for q in queries.captured_queries)
    # The GROUP BY, the slug lookup (and on PostgreSQL a savepoint and a work_mem setting).
    assert len(queries.captured_queries) <= 5
    assert votes.n_votes == sum(1 for r in rows if r[3] == "animals")
    assert len(votes.count) <= 4 * 3 * 4  # unique (a, b, outcome) rows, not votes
    fit = fit_bradley_terry(votes, ratings_options())
    expected = core_fit(rows, category="animals")
    assert fit.models == expected.models
    assert np.allclose(fit.ratings, expected.ratings) and np.allclose(fit.upper, expected.upper)


def test_refresh_stores_one_snapshot_per_board_with_the_contract_shape(arena, settings):
    rows = simulated_rows(300, 2, SLUGS, CATEGORIES, kinds=("human", "judge"))
    arena.vote(rows)
    snapshots = refresh_rating_snapshots(task=TASK)
    boards = {(s.category, s.rater_kind) for s in snapshots}
    assert boards == {(c, k) for c in ["", *CATEGORIES] for k in ("human", "judge")}
    assert RatingSnapshot.objects.count() == 6

    snap = latest_snapshot(task=TASK)
    assert snap.rater_kind == "human" and snap.category == ""
    assert snap.n_votes == sum(1 for r in rows if r[4] == "human")
    expected = core_fit(rows)
    ratings = [row["rating"] for row in snap.rows]
    assert ratings == sorted(ratings, reverse=True)
    by_model = {row["model"]: row for row in snap.rows}
    for i, slug in enumerate(expected.models):
        assert by_model[slug]["rating"] == pytest.approx(expected.ratings[i])
        assert by_model[slug]["lower"] == pytest.approx(expected.lower[i])
    keys = {"model", "display_name", "rating", "lower", "upper", "variance", "votes", "rank"}
    keys |= {"rank_ub", "wins", "losses", "ties", "win_rate", "elo", "flags"}
    assert all(keys <= set(row) for row in snap.rows)
    top = snap.rows[0]
    assert top["display_name"] == top["model"].title()
    assert top["win_rate"] == pytest.approx((top["wins"] + top["ties"] / 2) / top["votes"])
    assert snap.method["ci"] == "sandwich" and snap.method["both_bad"] == "tie"
    assert {"significance", "scale", "base", "init_rating", "tie_weight"} <= set(snap.method)
    extra = snap.extra
    assert extra["models"] == [row["model"] for row in snap.rows]
    assert len(extra["win_rate_matrix"]) == len(SLUGS) == len(extra["predicted_matrix"][0])
    assert extra["win_rate_matrix"][0][0] is None and extra["flags"] == []
    assert sum(map(sum, extra["count_matrix"])) == 2 * snap.n_votes
    json.dumps(extra, allow_nan=False)  # JSON-safe: no NaN anywhere

    animals = latest_snapshot(task=TASK, category="animals", rater_kind="judge")
    assert animals.n_votes == sum(1 for r in rows if r[3] == "animals" and r[4] == "judge")


def test_unchanged_votes_keep_the_snapshot_and_new_votes_add_history(arena):
    arena.vote(simulated_rows(100, 3, SLUGS, [""]))
    first = refresh_rating_snapshots(task=TASK)
    assert len(first) == 1
    again = refresh_rating_snapshots(task=TASK)
    assert [s.pk for s in again] == [s.pk for s in first]
    assert RatingSnapshot.objects.count() == 1
    forced = refresh_rating_snapshots(task=TASK, force=True)
    assert forced[0].pk != first[0].pk
    arena.vote([("delta", "alpha", "model_a", "", "human")])
    newer = refresh_rating_snapshots()
    assert newer[0].n_votes == 101
    history = snapshot_history(task=TASK)
    assert [s.pk for s in history] == [first[0].pk, forced[0].pk, newer[0].pk]
    assert snapshot_history(task=TASK, limit=2) == history[1:]
    assert latest_snapshot(task=TASK).pk == newer[0].pk
    assert latest_snapshot(task="text-to-video") is None


def test_old_snapshots_are_pruned_per_board(arena, settings):
    settings.RATINGS_SNAPSHOT_KEEP = 2
    arena.vote(simulated_rows(50, 4, SLUGS, [""]))
    for _ in range(4):
        refresh_rating_snapshots(task=TASK, force=True)
    assert RatingSnapshot.objects.count() == 2


def test_degenerate_boards_are_flagged_not_nan(arena):
    # alpha never loses; gamma/delta only ever meet each other.
    arena.vote(
        [("alpha", "beta", "model_a", "animals", "human")] * 5
        + [
            ("gamma", "delta", "model_a", "animals", "human"),
            ("delta", "gamma", "tie", "", "human"),
        ]
    )
    snap = refresh_rating_snapshots(task=TASK)[0]
    assert {"disconnected", "regularized", "infinite_mle"} <= set(snap.extra["flags"])
    assert sorted(map(sorted, snap.extra["components"])) == [["alpha", "beta"], ["delta", "gamma"]]
    alpha = next(r for r in snap.rows if r["model"] == "alpha")
    assert "never_lost" in alpha["flags"]
    json.dumps(snap.rows, allow_nan=False)
    json.dumps(snap.extra, allow_nan=False)


def test_elo_is_online_over_the_most_recent_window(arena, settings):
    settings.RATINGS_ELO_WINDOW = 3
    settings.RATINGS_ELO_K = 20.0
    rows = [("alpha", "beta", "model_a", "", "human")] * 4 + [
        ("beta", "gamma", "model_a", "", "human"),
        ("gamma", "alpha", "tie", "", "human"),
        ("beta", "alpha", "model_a", "", "human"),
    ]
    arena.vote(rows)
    with CaptureQueriesContext(connection) as queries:
        elo = recent_elo(task=TASK)
    assert len(queries.captured_queries) == 2
    expected = OnlineElo(k=20.0).update_many([r[:3] for r in rows[-3:]])
    assert elo.ratings == pytest.approx(expected.ratings) and elo.n_votes == 3
    snap = refresh_rating_snapshots(task=TASK)[0]
    by_model = {row["model"]: row["elo"] for row in snap.rows}
    assert by_model["beta"] == pytest.approx(expected.rating("beta"))
    assert snap.extra["elo_votes"] == 3 and snap.method["elo_window"] == 3


def test_refresh_query_count_does_not_grow_with_votes(arena):
    arena.vote(simulated_rows(40, 5, SLUGS, CATEGORIES))
    with CaptureQueriesContext(connection) as small:
        refresh_rating_snapshots(task=TASK, force=True)
    arena.vote(simulated_rows(400, 6, SLUGS, CATEGORIES))
    with CaptureQueriesContext(connection) as large:
        refresh_rating_snapshots(task=TASK, force=True)
    assert len(large.captured_queries) == len(small.captured_queries)


def test_unknown_task_is_refused(db):
    with pytest.raises(ValueError, match="task 'text-to-audio' is not one of text-to-image"):
        refresh_rating_snapshots(task="text-to-audio")


def run_command(*args) -> str:
    out = StringIO()
    call_command("compute_ratings", *args, stdout=out)
    return out.getvalue()


def test_command_from_file_and_from_db_agree(arena, tmp_path):
    rows = simulated_rows(300, 7, SLUGS, CATEGORIES)
    arena.vote(rows)
    frame = pd.DataFrame(
        {
            "model_a": [r[0] for r in rows],
            "model_b": [r[1] for r in rows],
            "winner": [r[2] for r in rows],
            "judge": "someone",
        }
    )
    path = tmp_path / "votes.parquet"
    frame.to_parquet(path)
    from_file = json.loads(run_command("--votes", str(path), "--json"))
    from_db = json.loads(run_command("--from-db", "--task", TASK, "--json"))
    assert [set(r) for r in from_file] == [
        {"model", "rating", "lower", "upper", "variance", "votes", "rank", "rank_ub"}
    ] * len(SLUGS)
    assert [r["model"] for r in from_file] == [r["model"] for r in from_db]
    for a, b in zip(from_file, from_db, strict=True):
        assert a["rating"] == pytest.approx(b["rating"]) and a["upper"] == pytest.approx(b["upper"])
    table = run_command("--from-db", "--task", TASK, "--category", "scenes")
    assert "95% CI" in table and "alpha" in table
    anchored = json.loads(
        run_command(
            "--votes",
            str(path),
            "--json",
            "--anchor",
            "beta=1200",
            "--ci",
            "bootstrap",
            "--bootstrap-rounds",
            "30",
            "--seed",
            "1",
            "--reweight",
        )
    )
    assert next(r for r in anchored if r["model"] == "beta")["rating"] == 1200.0


def test_command_errors_are_clear(db, tmp_path):
    path = tmp_path / "votes.csv"
    path.write_text("model_a,model_b,winner\nx,y,model_a\nx,y,draw\n")
    with pytest.raises(CommandError, match="row 1: winner 'draw' is not one of"):
        run_command("--votes", str(path))
    with pytest.raises(CommandError, match="--from-db needs --task"):
        run_command("--from-db")
    with pytest.raises(CommandError, match="--anchor expects MODEL=RATING"):
        run_command("--votes", str(path), "--anchor", "x")
    path.write_text("model_a,model_b,winner\nx,y,model_a\n")
    with pytest.raises(CommandError, match="anchor model 'z' has no votes"):
        run_command("--votes", str(path), "--anchor", "z=1000")
    with pytest.raises(CommandError, match="significance=2.0 must be in"):
        run_command("--votes", str(path), "--significance", "2")


def test_refresh_snapshots_command(arena):
    arena.vote(simulated_rows(30, 8, SLUGS, [""]))
    out = run_command("--refresh-snapshots")
    assert f"{TASK} / all / human: 30 votes, 4 models" in out


def test_beat_task_refreshes_snapshots_on_a_real_worker(arena, child_env, celery_workers):
    from django.conf import settings

    from config.celery import app
    from workers.tasks import refresh_rating_snapshots as task

    assert settings.CELERY_BEAT_SCHEDULE["refresh-rating-snapshots"]["task"] == task.name
    arena.vote(simulated_rows(60, 9, SLUGS, CATEGORIES))
    celery_workers.start(child_env, queues="default", name="ratings")
    app.send_task("workers.tasks.refresh_rating_snapshots", kwargs={"task": TASK})
    snap = wait_for(
        lambda: latest_snapshot(task=TASK, category="scenes"),
        timeout=90,
        message="the worker to store a snapshot",
    )
    assert snap.n_votes == sum(
        1 for r in simulated_rows(60, 9, SLUGS, CATEGORIES) if r[3] == "scenes"
    )
