"""Pairwise votes in LMArena's schema, aggregated into unique (model_a, model_b, outcome) rows.

A vote names two models and a winner: ``model_a``, ``model_b``, ``tie``, ``tie (bothbad)`` or
``both_bad``. Every fit works on the aggregated rows (one per distinct triple, with a count), so
the cost of a fit depends on the number of model pairs, not on the number of votes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

# Outcome codes used everywhere in the core.
MODEL_A, MODEL_B, TIE, BOTH_BAD = 0, 1, 2, 3
OUTCOME_NAMES = ("model_a", "model_b", "tie", "both_bad")
WINNER_VALUES: dict[str, int] = {
    "model_a": MODEL_A,
    "model_b": MODEL_B,
    "tie": TIE,
    "tie (bothbad)": BOTH_BAD,
    "both_bad": BOTH_BAD,
}
VOTE_COLUMNS = ("model_a", "model_b", "winner")
SUPPORTED_SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}


class VoteFormatError(ValueError):
    """A vote file or vote row that cannot be read; the message names the row and the problem."""


@dataclass(frozen=True)
class AggregatedVotes:
    """Unique (model_a, model_b, outcome) rows with counts.

    models: model names, index -> name (sorted).
    model_a, model_b: int64 [R] indices into ``models``.
    outcome: int8 [R] codes MODEL_A / MODEL_B / TIE / BOTH_BAD.
    count: int64 [R] number of votes with that triple (> 0).
    """

    models: tuple[str, ...]
    model_a: np.ndarray
    model_b: np.ndarray
    outcome: np.ndarray
    count: np.ndarray

    @property
    def n_models(self) -> int:
        return len(self.models)

    @property
    def n_votes(self) -> int:
        return int(self.count.sum())

    def renamed(self, names: dict) -> AggregatedVotes:
        """The same votes with model ``m`` renamed ``names[m]`` (and models re-sorted by name)."""
        new = [str(names[m]) for m in self.models]
        order = np.argsort(np.array(new, dtype=object), kind="stable")
        position = np.empty(len(new), dtype=np.int64)
        position[order] = np.arange(len(new))
        return AggregatedVotes(
            models=tuple(new[i] for i in order),
            model_a=position[self.model_a],
            model_b=position[self.model_b],
            outcome=self.outcome,
            count=self.count,
        )

    @classmethod
    def empty(cls) -> AggregatedVotes:
        z = np.zeros(0, dtype=np.int64)
        return cls((), z, z.copy(), np.zeros(0, dtype=np.int8), z.copy())

    @classmethod
    def from_votes(
        cls, model_a: Sequence | np.ndarray, model_b: Sequence | np.ndarray, winner
    ) -> AggregatedVotes:
        """Aggregate per-vote columns (one entry per vote, e.g. a DataFrame's columns)."""
        n = len(model_a)
        return cls.from_rows(model_a, model_b, winner, np.ones(n, dtype=np.int64))

    @classmethod
    def from_rows(
        cls,
        model_a: Sequence | np.ndarray,
        model_b: Sequence | np.ndarray,
        winner,
        count: Sequence | np.ndarray,
    ) -> AggregatedVotes:
        """Aggregate rows that already carry counts (e.g. a SQL GROUP BY); duplicates are merged.

        model_a, model_b: [R] model names; winner: [R] strings from ``WINNER_VALUES`` or
        int codes; count: [R] non-negative integers. Raises VoteFormatError naming the first bad
        row (0-based) for an unknown winner, a missing model name or a model against itself.
        """
        a, b = _series(model_a), _series(model_b)
        counts = np.asarray(count, dtype=np.int64)
        if not (len(a) == len(b) == len(counts) == len(winner)):
            raise VoteFormatError("model_a, model_b, winner and count must have the same length")
        if len(a) == 0:
            return cls.empty()
        codes = _outcome_codes(winner)
        for name, column in (("model_a", a), ("model_b", b)):
            missing = column.isna().to_numpy()
            if missing.any():
                row = int(np.flatnonzero(missing)[0])
                raise VoteFormatError(f"row {row}: {name} is empty; every vote names two models")
        if (counts < 0).any():
            row = int(np.flatnonzero(counts < 0)[0])
            raise VoteFormatError(f"row {row}: count {counts[row]} is negative")
        index, names = pd.factorize(pd.concat([a, b], ignore_index=True), sort=True)
        ia, ib = index[: len(a)].astype(np.int64), index[len(a) :].astype(np.int64)
        same = ia == ib
        if same.any():
            row = int(np.flatnonzero(same)[0])
            raise VoteFormatError(
                f"row {row}: model_a and model_b are both {a.iloc[row]!r}; a model cannot "
                "battle itself"
            )
        keep = counts > 0
        n = len(names)
        key = (ia[keep] * n + ib[keep]) * 4 + codes[keep]
        if n * n * 4 <= 4 * len(key) + 1_000_000:
            # Dense key space: one O(N) bincount instead of an O(N log N) sort.
            dense = np.bincount(key, weights=counts[keep], minlength=n * n * 4)
            unique = np.flatnonzero(dense)
            summed = dense[unique].astype(np.int64)
        else:
            unique, inverse = np.unique(key, return_inverse=True)
            summed = np.bincount(inverse, weights=counts[keep], minlength=len(unique))
            summed = summed.astype(np.int64)
        outcome = (unique % 4).astype(np.int8)
        pair = unique // 4
        return cls(
            models=tuple(str(x) for x in names),
            model_a=(pair // n).astype(np.int64),
            model_b=(pair % n).astype(np.int64),
            outcome=outcome,
            count=summed,
        )


def _series(values) -> pd.Series:
    if isinstance(values, pd.Series):
        return values.reset_index(drop=True)
    return pd.Series(list(values) if not isinstance(values, np.ndarray) else values)


def _outcome_codes(winner) -> np.ndarray:
    values = _series(winner)
    if values.dtype.kind in "iu":
        codes = values.to_numpy(dtype=np.int64)
        bad = (codes < 0) | (codes > 3)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise VoteFormatError(f"row {row}: outcome code {codes[row]} is not in 0..3")
        return codes
    # Map the few distinct strings, not every row (10x faster on a million votes).
    index, uniques = pd.factorize(values, use_na_sentinel=True)
    lookup = np.array([WINNER_VALUES.get(u, -1) if isinstance(u, str) else -1 for u in uniques])
    codes = np.append(lookup, -1)[index]  # the NA sentinel -1 picks the trailing -1
    bad = codes < 0
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        allowed = ", ".join(repr(v) for v in WINNER_VALUES)
        value = values.iloc[row]
        shown = "is empty" if pd.isna(value) else f"{value!r} is not one of the allowed values"
        raise VoteFormatError(f"row {row}: winner {shown} ({allowed})")
    return codes.astype(np.int64)


def read_vote_frame(path: str | Path) -> pd.DataFrame:
    """Read the ``model_a``, ``model_b``, ``winner`` columns of a CSV / JSON Lines / Parquet file.

    The format is chosen by the file extension; extra columns are ignored.
    """
    path = Path(path)
    kind = SUPPORTED_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise VoteFormatError(
            f"{path}: unsupported extension {path.suffix!r}; use one of "
            + ", ".join(sorted(SUPPORTED_SUFFIXES))
        )
    if not path.is_file():
        raise VoteFormatError(f"{path}: no such file")
    try:
        if kind == "csv":
            header = pd.read_csv(path, nrows=0).columns
            _require_columns(path, header)
            frame = pd.read_csv(path, usecols=list(VOTE_COLUMNS), dtype=str, keep_default_na=False)
            frame = frame.replace("", None)
        elif kind == "jsonl":
            frame = pd.read_json(path, lines=True, dtype=False)
            _require_columns(path, frame.columns)
        else:
            import pyarrow.parquet as pq

            _require_columns(path, pq.read_schema(path).names)
            frame = pq.read_table(path, columns=list(VOTE_COLUMNS)).to_pandas()
    except VoteFormatError:
        raise
    except (ValueError, OSError) as exc:  # pandas/pyarrow parse errors
        raise VoteFormatError(f"{path}: cannot read as {kind}: {exc}") from exc
    return frame[list(VOTE_COLUMNS)]


def _require_columns(path: Path, columns) -> None:
    missing = [c for c in VOTE_COLUMNS if c not in set(columns)]
    if missing:
        raise VoteFormatError(
            f"{path}: missing column(s) {', '.join(missing)}; votes need the columns "
            f"{', '.join(VOTE_COLUMNS)}"
        )


def read_votes(path: str | Path) -> AggregatedVotes:
    """Read and aggregate a vote file; errors name the file row (0-based, header excluded)."""
    frame = read_vote_frame(path)
    try:
        return AggregatedVotes.from_votes(frame["model_a"], frame["model_b"], frame["winner"])
    except VoteFormatError as exc:
        raise VoteFormatError(f"{Path(path)}: {exc}") from exc
