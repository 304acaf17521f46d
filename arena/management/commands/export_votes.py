"""Export stored votes in LMArena's public-dataset schema (CSV, JSON Lines or Parquet).

    python manage.py export_votes --task text-to-image --format parquet --output votes.parquet

Columns: question_id, model_a, model_b, winner (model_a | model_b | tie | tie (bothbad)), judge
(anonymised rater id), rater_kind, task, category, prompt, tstamp (vote time, Unix seconds),
served_tstamp (battle served, Unix seconds), created_at (ISO 8601). `compute_ratings --votes`
and arena-rank read these files back.
"""

from __future__ import annotations

import csv
import json
import sys

from django.core.management.base import BaseCommand, CommandError

from arena.models import RaterKind
from arena.selectors import export_vote_rows, is_valid_task
from models_registry.models import Task

COLUMNS = (
    "question_id",
    "model_a",
    "model_b",
    "winner",
    "judge",
    "rater_kind",
    "task",
    "category",
    "prompt",
    "tstamp",
    "served_tstamp",
    "created_at",
    "vote_kind",
    "ranking",
    "flagged",
    "excluded_reason",
)
BATCH = 10_000


class Command(BaseCommand):
    help = "Export votes in LMArena's public-dataset schema (csv, jsonl or parquet)."

    def add_arguments(self, parser):
        parser.add_argument("--task", required=True, help=f"one of {', '.join(Task.values)}")
        parser.add_argument("--format", choices=["csv", "jsonl", "parquet"], default="csv")
        parser.add_argument(
            "--output", help="file to write (default: standard output; required for parquet)"
        )
        parser.add_argument("--category", default=None, help="only votes on this prompt category")
        parser.add_argument(
            "--rater-kind",
            choices=[*RaterKind.values, "all"],
            default=RaterKind.HUMAN,
            help="human (default), judge, or all",
        )

    def handle(self, *args, task, format, output, category, rater_kind, **options):
        if not is_valid_task(task):
            raise CommandError(
                f"--task: unknown task {task!r}; use one of {', '.join(Task.values)}"
            )
        if format == "parquet" and not output:
            raise CommandError("--output: a file path is required for --format parquet")
        rows = export_vote_rows(
            task=task, category=category, rater_kind=None if rater_kind == "all" else rater_kind
        )
        count = {"csv": _write_csv, "jsonl": _write_jsonl, "parquet": _write_parquet}[format](
            rows, output
        )
        self.stderr.write(f"exported {count} votes of {task} to {output or 'standard output'}")


def _open(output):
    return open(output, "w", newline="", encoding="utf-8") if output else sys.stdout


def _write_csv(rows, output) -> int:
    handle, n = _open(output), 0
    try:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
            n += 1
    finally:
        if output:
            handle.close()
    return n


def _write_jsonl(rows, output) -> int:
    handle, n = _open(output), 0
    try:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    finally:
        if output:
            handle.close()
    return n


def _write_parquet(rows, output) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("question_id", pa.string()),
            ("model_a", pa.string()),
            ("model_b", pa.string()),
            ("winner", pa.string()),
            ("judge", pa.string()),
            ("rater_kind", pa.string()),
            ("task", pa.string()),
            ("category", pa.string()),
            ("prompt", pa.string()),
            ("tstamp", pa.float64()),
            ("served_tstamp", pa.float64()),
            ("created_at", pa.string()),
        ]
    )
    n = 0
    with pq.ParquetWriter(output, schema) as writer:
        batch: list[dict] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= BATCH:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                n, batch = n + len(batch), []
        if batch or n == 0:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            n += len(batch)
    return n
