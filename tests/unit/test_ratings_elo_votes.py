"""Vote files in LMArena's schema, aggregation, and the online Elo feed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from arena.ratings import AggregatedVotes, OnlineElo, VoteFormatError, read_votes


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "question_id": ["q1", "q2", "q3", "q4", "q5", "q6"],
            "model_a": ["gpt", "gpt", "llama", "gpt", "claude", "gpt"],
            "model_b": ["llama", "claude", "claude", "llama", "gpt", "llama"],
            "winner": ["model_a", "tie", "model_b", "tie (bothbad)", "both_bad", "model_a"],
            "turn": [1, 1, 2, 1, 1, 3],
        }
    )


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_reads_every_format_and_ignores_extra_columns(frame, tmp_path, suffix):
    path = tmp_path / f"votes{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_parquet(path)
    votes = read_votes(path)
    assert votes.models == ("claude", "gpt", "llama")
    assert votes.n_votes == 6
    rows = {
        (votes.models[a], votes.models[b], int(o)): int(c)
        for a, b, o, c in zip(votes.model_a, votes.model_b, votes.outcome, votes.count, strict=True)
    }
    # gpt vs llama "model_a" twice -> one row with count 2; both bothbad spellings -> code 3.
    assert rows == {
        ("gpt", "llama", 0): 2,
        ("gpt", "claude", 2): 1,
        ("llama", "claude", 1): 1,
        ("gpt", "llama", 3): 1,
        ("claude", "gpt", 3): 1,
    }


def test_missing_column_and_unknown_extension_are_named(frame, tmp_path):
    path = tmp_path / "votes.csv"
    frame.drop(columns="winner").to_csv(path, index=False)
    with pytest.raises(VoteFormatError, match="missing column.*winner"):
        read_votes(path)
    with pytest.raises(VoteFormatError, match="unsupported extension '.xlsx'"):
        read_votes(tmp_path / "votes.xlsx")
    with pytest.raises(VoteFormatError, match="no such file"):
        read_votes(tmp_path / "nothing.csv")


def test_bad_rows_are_named(frame, tmp_path):
    path = tmp_path / "votes.csv"
    frame.assign(winner=["model_a", "model_a", "model_a", "", "model_a", "model_a"]).to_csv(
        path, index=False
    )
    with pytest.raises(VoteFormatError, match=r"row 3: winner is empty \('model_a'"):
        read_votes(path)
    with pytest.raises(VoteFormatError, match="row 1: model_a and model_b are both 'x'"):
        AggregatedVotes.from_votes(["a", "x"], ["b", "x"], ["tie", "tie"])
    with pytest.raises(VoteFormatError, match="row 0: model_b is empty"):
        AggregatedVotes.from_votes(["a"], [None], ["tie"])


def test_from_rows_merges_duplicate_rows_and_accepts_codes():
    votes = AggregatedVotes.from_rows(["a", "a", "b"], ["b", "b", "a"], [0, 0, 2], [3, 4, 5])
    assert votes.n_votes == 12 and len(votes.count) == 2
    assert sorted(votes.count.tolist()) == [5, 7]


def test_elo_first_update_and_order_dependence():
    elo = OnlineElo(k=16)
    elo.update("a", "b", "model_a")
    assert elo.rating("a") == pytest.approx(1008.0) and elo.rating("b") == pytest.approx(992.0)
    expected = 1 / (1 + 10 ** ((992 - 1008) / 400))
    elo.update("b", "a", "tie")
    assert elo.rating("b") == pytest.approx(992 + 16 * (0.5 - (1 - expected)))
    assert elo.rating("a") + elo.rating("b") == pytest.approx(2000.0)
    forward = OnlineElo().update_many([("a", "b", "model_a"), ("b", "a", "model_a")])
    backward = OnlineElo().update_many([("b", "a", "model_a"), ("a", "b", "model_a")])
    assert forward.rating("a") < 1000 < backward.rating("a"), "the latest vote weighs most"


def test_elo_follows_recent_form():
    elo = OnlineElo(k=32)
    elo.update_many([("old", "new", "model_a")] * 50 + [("old", "new", "model_b")] * 50)
    assert elo.rating("new") > elo.rating("old")


def test_elo_both_bad_modes_and_unknown_outcome():
    tie = OnlineElo().update_many([("a", "b", "model_a"), ("a", "b", "both_bad")])
    plain_tie = OnlineElo().update_many([("a", "b", "model_a"), ("a", "b", "tie")])
    assert tie.ratings == plain_tie.ratings
    dropped = OnlineElo(both_bad="drop").update_many([("a", "b", "both_bad")])
    assert dropped.n_votes == 0 and dropped.rating("a") == 1000.0
    with pytest.raises(KeyError):
        OnlineElo().update("a", "b", "draw")
    with pytest.raises(ValueError, match="k=0"):
        OnlineElo(k=0)
    assert np.isfinite(tie.rating("a"))
