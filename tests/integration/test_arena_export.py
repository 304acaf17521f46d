"""export_votes writes LMArena's schema; compute_ratings and arena-rank read it back."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from arena.models import Battle, Vote
from tests.integration.arena_support import age_battle, configure_arena, make_arena

pytestmark = pytest.mark.django_db
OUTCOMES = ("model_a", "model_b", "tie", "both_bad")


@pytest.fixture
def voted(settings, tmp_path):
    configure_arena(settings, tmp_path)
    # Each client meets a sample once at most: 12 votes each need 24 samples per client.
    arena = make_arena(n_models=3, n_prompts=2, seeds=10)
    clients = [Client(), Client()]
    for k in range(24):
        client = clients[k % 2]
        client.get("/arena/text-to-image/")
        battle = age_battle(Battle.objects.order_by("-id").first(), 5)
        response = client.post(
            f"/arena/battles/{battle.token}/vote",
            {"outcome": OUTCOMES[k % 4]},
            HTTP_ACCEPT="application/json",
        )
        assert response.status_code == 201
    return arena


def export(tmp_path, fmt: str, *extra: str) -> pd.DataFrame:
    path = tmp_path / f"votes.{fmt}"
    call_command(
        "export_votes",
        "--task",
        "text-to-image",
        "--format",
        fmt,
        "--output",
        str(path),
        *extra,
        stderr=io.StringIO(),
    )
    if fmt == "csv":
        return pd.read_csv(path, keep_default_na=False)
    if fmt == "jsonl":
        return pd.read_json(path, lines=True)
    return pd.read_parquet(path)


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_export_has_lmarena_schema(voted, tmp_path, fmt):
    frame = export(tmp_path, fmt)
    assert len(frame) == Vote.objects.count() == 24
    for column in ("model_a", "model_b", "winner", "judge", "prompt", "category", "tstamp"):
        assert column in frame.columns
    assert set(frame["winner"]) == {"model_a", "model_b", "tie", "tie (bothbad)"}
    slugs = {m.slug for m in voted.models}
    assert set(frame["model_a"]) | set(frame["model_b"]) <= slugs
    assert frame["judge"].nunique() == 2
    raters = {str(r) for r in Vote.objects.values_list("rater_id", flat=True)}
    assert not set(frame["judge"].astype(str)) & raters  # anonymised, not the database id
    first = Vote.objects.order_by("id").first()
    row = frame.iloc[0]
    assert row["model_a"] == first.model_a.slug and row["category"] == first.category
    assert row["prompt"] == first.battle.prompt.text
    assert abs(float(row["tstamp"]) - first.created_at.timestamp()) < 1e-3


def test_category_filter_and_stdout(voted, capsys):
    call_command(
        "export_votes",
        "--task",
        "text-to-image",
        "--format",
        "jsonl",
        "--category",
        "animals",
        stderr=io.StringIO(),
    )
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines and {line["category"] for line in lines} == {"animals"}
    assert len(lines) == Vote.objects.filter(category="animals").count()


def test_compute_ratings_reads_the_export_back(voted, tmp_path, capsys):
    path = tmp_path / "votes.parquet"
    call_command(
        "export_votes",
        "--task",
        "text-to-image",
        "--format",
        "parquet",
        "--output",
        str(path),
        stderr=io.StringIO(),
    )
    capsys.readouterr()
    call_command("compute_ratings", "--votes", str(path), "--json")
    rows = json.loads(capsys.readouterr().out)
    assert {r["model"] for r in rows} == {m.slug for m in voted.models}
    assert sum(r["votes"] for r in rows) == 2 * 24


def test_arena_rank_reads_the_export_back(voted, tmp_path):
    from arena_rank.models.bradley_terry import BradleyTerry
    from arena_rank.utils.data_utils import PairDataset

    frame = export(tmp_path, "csv")
    dataset = PairDataset.from_pandas(frame)
    model = BradleyTerry(n_competitors=len(dataset.competitors))
    result = model.compute_ratings_and_cis(dataset)
    assert sorted(dataset.competitors) == sorted(m.slug for m in voted.models)
    assert len(result["ratings"]) == 3


def test_bad_arguments_are_clear_errors(voted):
    with pytest.raises(CommandError, match="--task"):
        call_command("export_votes", "--task", "text-to-sound")
    with pytest.raises(CommandError, match="--output"):
        call_command("export_votes", "--task", "text-to-image", "--format", "parquet")
