"""Ratings engine speed: our Bradley–Terry fit + sandwich CIs vs arena-rank, bootstrap, --from-db.

    DEBUG=1 .venv/bin/python benchmarks/ratings.py                      # 1M votes, 100 models
    DEBUG=1 DATABASE_URL=postgres://postgres@127.0.0.1:5432/ratings_dev \\
        .venv/bin/python benchmarks/ratings.py --from-db                # + 1M votes in PostgreSQL

Both fits start from the same pandas DataFrame of per-vote rows (model_a, model_b, winner) and
include aggregation into unique rows. arena-rank (JAX) is timed cold (first call, includes JIT
compilation) and warm (second call); the ratio uses the warm time. --from-db creates a throwaway
database (<name>_ratings_bench), inserts the votes with INSERT ... SELECT generate_series and
COPY, times refresh_rating_snapshots (SQL GROUP BY + fit + Elo window + write) and the
`compute_ratings --from-db` path, then drops the database.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def simulate_frame(n_votes: int, n_models: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    skills = rng.normal(0, 1.0, n_models)
    a = rng.integers(0, n_models, n_votes)
    b = (a + rng.integers(1, n_models, n_votes)) % n_models
    p = 1 / (1 + np.exp(-(skills[a] - skills[b])))
    u = rng.random(n_votes)
    winner = np.where(
        u < 0.85 * p,
        "model_a",
        np.where(u < 0.85, "model_b", np.where(u < 0.95, "tie", "tie (bothbad)")),
    )
    names = np.array([f"model-{i:03d}" for i in range(n_models)])
    return pd.DataFrame({"model_a": names[a], "model_b": names[b], "winner": winner})


def timed(fn, repeat: int = 1):
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def bench_core(frame: pd.DataFrame, rounds: int, skip_arena_rank: bool) -> None:
    from arena.ratings import AggregatedVotes, BradleyTerryOptions, fit_bradley_terry

    def ours():
        votes = AggregatedVotes.from_votes(frame["model_a"], frame["model_b"], frame["winner"])
        return fit_bradley_terry(votes)

    t_ours, fit = timed(ours, repeat=3)
    t_agg, votes = timed(
        lambda: AggregatedVotes.from_votes(frame["model_a"], frame["model_b"], frame["winner"])
    )
    print(f"votes: {len(frame):,}  models: {votes.n_models}  unique rows: {len(votes.count):,}")
    print(f"ours   fit + sandwich CIs (incl. aggregation): {t_ours:8.3f} s (best of 3)")
    print(f"         of which aggregation:                 {t_agg:8.3f} s")
    print(f"         Newton iterations: {fit.iterations}, max |gradient|: {fit.gradient_norm:.1e}")
    boot_opts = BradleyTerryOptions(ci="bootstrap", bootstrap_rounds=rounds, seed=0)
    t_boot, _ = timed(lambda: fit_bradley_terry(votes, boot_opts))
    print(f"ours   bootstrap ({rounds} rounds, on aggregated rows): {t_boot:8.3f} s")
    if skip_arena_rank:
        return
    from arena_rank.models.bradley_terry import BradleyTerry
    from arena_rank.utils.data_utils import PairDataset

    def theirs():
        dataset = PairDataset.from_pandas(frame)
        out = BradleyTerry(n_competitors=len(dataset.competitors)).compute_ratings_and_cis(dataset)
        np.asarray(out["rating_upper"])  # wait for JAX's asynchronous dispatch
        return out

    t_cold, _ = timed(theirs)
    t_warm, out = timed(theirs, repeat=2)
    gap = np.abs(np.asarray(out["ratings"]) - fit.ratings).max()
    print(f"arena-rank fit + sandwich CIs, cold (JIT):     {t_cold:8.3f} s")
    print(f"arena-rank fit + sandwich CIs, warm:           {t_warm:8.3f} s (best of 2)")
    print(f"speed-up (arena-rank warm / ours):             {t_warm / t_ours:8.1f}x")
    print(f"max rating difference to arena-rank:           {gap:8.4f} points")


BATTLE_VALUES = {
    "token": "md5('t' || i)",
    "media_token_a": "md5('a' || i)",
    "media_token_b": "md5('b' || i)",
    "task": "%(task)s",
    "prompt_id": "%(prompt)s",
    "sample_a_id": "%(sample_a)s",
    "sample_b_id": "%(sample_b)s",
    "served_to_id": "%(rater)s",
    "served_at": "now()",
    "expires_at": "now() + interval '1 hour'",
    "ip_hash": "''",
}


def bench_db(frame: pd.DataFrame, keep: bool) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    base = settings.DATABASES["default"]["NAME"]
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = (
        f"{Path(base).stem}_ratings_bench"
    )
    if connection.vendor != "postgresql":
        print("--from-db: set DATABASE_URL to PostgreSQL (the target is measured there)")
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        from arena.models import Battle, Rater, Vote
        from arena.rating_snapshots import refresh_rating_snapshots, stored_votes
        from arena.ratings import fit_bradley_terry
        from evaluation.models import Prompt, PromptSet, Sample
        from models_registry.models import GenerativeModel, ModelVersion

        task = "text-to-image"
        owner = get_user_model().objects.create_user("bench")
        prompt = Prompt.objects.create(
            prompt_set=PromptSet.objects.create(slug="bench", name="bench", task=task), text="p"
        )
        slugs = sorted(set(frame["model_a"]) | set(frame["model_b"]))
        ids = {}
        samples = []
        for slug in slugs:
            model = GenerativeModel.objects.create(
                slug=slug, display_name=slug, task=task, paradigm="diffusion", owner=owner
            )
            ids[slug] = model.pk
            version = ModelVersion.objects.create(model=model, tag="v1")
            samples.append(
                Sample.objects.create(
                    version=version,
                    prompt=prompt,
                    seed=0,
                    media="x.png",
                    media_kind="image",
                    width=1,
                    height=1,
                    sha256="0" * 64,
                )
            )
        rater = Rater.objects.create(kind="human")
        n = len(frame)
        fields = [f for f in Battle._meta.concrete_fields if not f.primary_key]
        unknown = [f.column for f in fields if f.column not in BATTLE_VALUES]
        if unknown:
            raise SystemExit(f"benchmark does not know how to fill Battle columns {unknown}")
        columns = ", ".join(f.column for f in fields)
        values = ", ".join(BATTLE_VALUES[f.column] for f in fields)
        params = {
            "task": task,
            "prompt": prompt.pk,
            "sample_a": samples[0].pk,
            "sample_b": samples[1].pk,
            "rater": rater.pk,
            "n": n,
        }
        start = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {Battle._meta.db_table} ({columns}) "
                f"SELECT {values} FROM generate_series(1, %(n)s) AS i",
                params,
            )
            cursor.execute(f"SELECT min(id) FROM {Battle._meta.db_table}")
            first = cursor.fetchone()[0]
        outcome = frame["winner"].replace({"tie (bothbad)": "both_bad"})
        categories = np.array(["animals", "scenes", "people", "text"])[np.arange(n) % 4]
        rows = pd.DataFrame(
            {
                "battle_id": np.arange(first, first + n),
                "rater_id": rater.pk,
                "rater_kind": "human",
                "outcome": outcome,
                "task": task,
                "category": categories,
                "model_a_id": frame["model_a"].map(ids),
                "model_b_id": frame["model_b"].map(ids),
                "ip_hash": "",
                "created_at": pd.Timestamp.now(tz="UTC").isoformat(),
            }
        )
        buffer = io.StringIO()
        rows.to_csv(buffer, index=False, header=False)
        raw = connection.connection
        with connection.cursor() as cursor:
            with cursor.cursor.copy(
                f"COPY {Vote._meta.db_table} ({', '.join(rows.columns)}) FROM STDIN "
                "WITH (FORMAT csv, FORCE_NOT_NULL (ip_hash))"
            ) as copy:
                copy.write(buffer.getvalue())
            cursor.execute(f"ANALYZE {Vote._meta.db_table}")
        raw.commit() if not connection.get_autocommit() else None
        print(f"inserted {Vote.objects.count():,} votes in {time.perf_counter() - start:.1f} s")

        t_agg, votes = timed(lambda: stored_votes(task=task), repeat=3)
        t_fit, _ = timed(lambda: fit_bradley_terry(votes), repeat=3)
        print(f"--from-db SQL GROUP BY aggregation:            {t_agg:8.3f} s (best of 3)")
        print(f"--from-db aggregation + fit + sandwich:        {t_agg + t_fit:8.3f} s")
        t_cmd, _ = timed(
            lambda: call_command(
                "compute_ratings", "--from-db", "--task", task, "--json", stdout=io.StringIO()
            )
        )
        print(f"compute_ratings --from-db --json (command):    {t_cmd:8.3f} s")
        t_refresh, snaps = timed(lambda: refresh_rating_snapshots(task=task, force=True), repeat=2)
        print(
            f"refresh_rating_snapshots ({len(snaps)} boards: all + 4 categories, "
            f"Elo window {settings.RATINGS_ELO_WINDOW}): {t_refresh:.3f} s (best of 2)"
        )
        t_unchanged, _ = timed(lambda: refresh_rating_snapshots(task=task))
        print(f"refresh with no new votes (kept snapshots):    {t_unchanged:8.3f} s")
    finally:
        if not keep:
            connection.creation.destroy_test_db(name, verbosity=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--votes", type=int, default=1_000_000)
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--bootstrap-rounds", type=int, default=100)
    parser.add_argument("--skip-arena-rank", action="store_true")
    parser.add_argument("--skip-core", action="store_true")
    parser.add_argument("--from-db", action="store_true", help="also time the database path")
    parser.add_argument("--keep-db", action="store_true", help="keep the benchmark database")
    args = parser.parse_args()
    frame = simulate_frame(args.votes, args.models)
    if not args.skip_core:
        bench_core(frame, args.bootstrap_rounds, args.skip_arena_rank)
    if args.from_db:
        bench_db(frame, args.keep_db)


if __name__ == "__main__":
    main()
