"""compute_ratings --style / --ties / --robustness, from stored votes and from vote files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from django.core.management import CommandError, call_command

from arena.models import Vote
from arena.rating_snapshots import (
    davidson_options,
    latest_snapshot,
    ratings_options,
    refresh_rating_snapshots,
    stored_votes,
)
from arena.ratings import fit_davidson, rank_robustness
from tests.integration.test_style_control_board import TASK, Board

pytestmark = pytest.mark.django_db


@pytest.fixture
def board(settings, tmp_path) -> Board:
    settings.MEDIA_ROOT = tmp_path / "media"
    board = Board()
    board.vote(1500, seed=4, tie_rate=0.1)
    return board


def run(*args, capsys) -> str:
    call_command("compute_ratings", *args)
    return capsys.readouterr().out


def vote_frame() -> pd.DataFrame:
    """The stored human votes with each side's brightness and width, LMArena-style columns."""
    winner = {"model_a": "model_a", "model_b": "model_b", "tie": "tie", "both_bad": "tie (bothbad)"}
    rows = []
    for vote in Vote.objects.select_related(
        "model_a", "model_b", "battle__sample_a", "battle__sample_b"
    ).order_by("id"):
        a, b = vote.battle.sample_a.covariates, vote.battle.sample_b.covariates
        rows.append(
            {
                "model_a": vote.model_a.slug,
                "model_b": vote.model_b.slug,
                "winner": winner[vote.outcome],
                "brightness_a": a["brightness"],
                "brightness_b": b["brightness"],
                "width_a": a["width"],
                "width_b": b["width"],
            }
        )
    return pd.DataFrame(rows)


def test_style_from_db_matches_the_snapshot_and_finds_the_brightness_effect(
    board, settings, capsys
):
    settings.RATINGS_STYLE_COVARIATES = ["brightness", "width"]
    settings.RATINGS_STYLE_MIN_VOTES = 10
    refresh_rating_snapshots(task=TASK)
    style = latest_snapshot(task=TASK).extra["style"]
    body = json.loads(
        run("--from-db", "--task", TASK, "--style", "brightness,width", "--json", capsys=capsys)
    )
    assert set(body) == {"rows", "ties", "style"}
    assert body["style"]["n_votes"] == 1500 and body["style"]["skipped_votes"] == 0
    coefficients = {c["covariate"]: c for c in body["style"]["coefficients"]}
    assert coefficients["brightness"]["coefficient"] > 0 and coefficients["brightness"]["lower"] > 0
    assert coefficients["width"]["coefficient"] == 0  # every sample is 8 px wide
    assert "constant_covariate:width" in body["style"]["flags"]
    expected = {r["model"]: r for r in style["rows"]}
    for row in body["rows"]:
        assert row["style"]["rating"] == pytest.approx(expected[row["model"]]["rating"])
        assert row["style"]["rank"] == expected[row["model"]]["rank"]
    text = run("--from-db", "--task", TASK, "--style", "brightness", capsys=capsys)
    assert "style control on brightness: 1500 votes" in text and "style (rank)" in text
    assert "brightness" in text.splitlines()[-1]


def test_style_from_a_vote_file_agrees_with_the_database(board, tmp_path, capsys):
    db = json.loads(
        run("--from-db", "--task", TASK, "--style", "brightness", "--json", capsys=capsys)
    )
    frame = vote_frame()
    for suffix in ("csv", "jsonl", "parquet"):
        path = tmp_path / f"votes.{suffix}"
        if suffix == "csv":
            frame.to_csv(path, index=False)
        elif suffix == "jsonl":
            frame.to_json(path, orient="records", lines=True)
        else:
            frame.to_parquet(path)
        body = json.loads(
            run("--votes", str(path), "--style", "brightness", "--json", capsys=capsys)
        )
        assert body["style"]["n_votes"] == 1500
        for mine, theirs in zip(body["rows"], db["rows"], strict=True):
            assert mine["model"] == theirs["model"]
            assert mine["style"]["rating"] == pytest.approx(theirs["style"]["rating"], abs=1e-6)
        assert body["style"]["coefficients"][0]["coefficient"] == pytest.approx(
            db["style"]["coefficients"][0]["coefficient"], abs=1e-9
        )
    # An empty covariate cell skips the vote and says so.
    frame.loc[3, "brightness_b"] = np.nan
    path = tmp_path / "gaps.csv"
    frame.to_csv(path, index=False)
    body = json.loads(run("--votes", str(path), "--style", "brightness", "--json", capsys=capsys))
    assert body["style"]["skipped_votes"] == 1 and body["style"]["missing"] == {"brightness": 1}
    assert body["style"]["n_votes"] == 1499
    text = run("--votes", str(path), "--style", "brightness", capsys=capsys)
    assert "1 skipped for missing covariates (brightness: 1)" in text


def test_style_errors_are_clear(board, tmp_path, capsys):
    with pytest.raises(
        CommandError,
        match=r"unknown covariate\(s\) sharpness: .* record "
        r"aspect_ratio, brightness, generation_seconds, height, saturation, width",
    ):
        call_command(
            "compute_ratings", "--from-db", "--task", TASK, "--style", "brightness,sharpness"
        )
    frame = vote_frame().drop(columns=["brightness_b"])
    path = tmp_path / "votes.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(
        CommandError,
        match=r"missing: brightness_b \(covariate columns in the file: brightness_a, width_a, width_b\)",
    ):
        call_command("compute_ratings", "--votes", str(path), "--style", "brightness")
    frame = vote_frame()
    frame["brightness_a"] = frame["brightness_a"].astype(object)
    frame.loc[5, "brightness_a"] = "bright"
    frame.to_csv(path, index=False)
    with pytest.raises(CommandError, match=r"row 5: brightness_a 'bright' is not a number"):
        call_command("compute_ratings", "--votes", str(path), "--style", "brightness")
    with pytest.raises(CommandError, match="comma-separated covariate names"):
        call_command("compute_ratings", "--votes", str(path), "--style", " , ")
    with pytest.raises(CommandError, match="names a covariate twice"):
        call_command("compute_ratings", "--votes", str(path), "--style", "width,width")
    frame = vote_frame()
    frame[["brightness_a", "brightness_b"]] = np.nan
    frame.to_csv(path, index=False)
    with pytest.raises(CommandError, match="0 votes have them \\(1500 skipped\\)"):
        call_command("compute_ratings", "--votes", str(path), "--style", "brightness")


def test_davidson_ties_and_robustness_in_json_and_text(board, capsys):
    votes = stored_votes(task=TASK)
    body = json.loads(
        run(
            "--from-db",
            "--task",
            TASK,
            "--ties",
            "davidson",
            "--robustness",
            "--json",
            capsys=capsys,
        )
    )
    fit = fit_davidson(votes, davidson_options(ratings_options()))
    assert body["ties"]["model"] == "davidson" and body["ties"]["nu"] == pytest.approx(fit.nu)
    assert body["ties"]["nu_lower"] < fit.nu < body["ties"]["nu_upper"]
    assert [r["model"] for r in body["rows"]] == [r["model"] for r in fit.table()]
    assert body["rows"][0]["rating"] == pytest.approx(fit.table()[0]["rating"])
    flips = rank_robustness(votes, ratings_options(), max_removals=1000)
    assert [(p["upper"], p["lower"], p["count"]) for p in body["robustness"]] == [
        (f.upper, f.lower, f.count) for f in flips
    ]
    capped = json.loads(
        run(
            "--from-db",
            "--task",
            TASK,
            "--robustness",
            "--max-removals",
            "2",
            "--json",
            capsys=capsys,
        )
    )
    assert all(p["count"] is None or p["count"] <= 2 for p in capped["robustness"])
    assert any(p["display"] == ">2" for p in capped["robustness"])
    text = run("--from-db", "--task", TASK, "--ties", "davidson", "--robustness", capsys=capsys)
    assert (
        f"nu = {fit.nu:.4f}" in text and "robustness (votes whose removal flips the pair):" in text
    )
    assert f"#1 {flips[0].upper} > {flips[0].lower}: {flips[0].display}" in text
    # Without the new options --json stays the plain list.
    plain = json.loads(run("--from-db", "--task", TASK, "--json", capsys=capsys))
    assert isinstance(plain, list) and len(plain) == len(body["rows"]) == 4
