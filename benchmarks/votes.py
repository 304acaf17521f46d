"""Concurrent voters over HTTP against gunicorn + PostgreSQL: votes/s, latency, no vote lost.

    .venv/bin/python benchmarks/votes.py [--voters 64] [--battles-per-voter 20] [--workers 4]

Needs a PostgreSQL server (``--database-url``, default
postgres://postgres@127.0.0.1:5432/arena_bench; the database is created and migrated if
missing, and its arena tables are emptied first). The script seeds a small arena (8 public
models x 16 prompts), collects static files and starts gunicorn in production mode (DEBUG off,
behind a simulated TLS proxy: X-Forwarded-Proto), with the minimum viewing time at 0 and the
rate limits lifted so that the voters' speed is what is measured. Then:

1. every voter (its own session, so its own rater) fetches its battles through the JSON API;
2. all voters vote on all their battles at once, while one reader keeps loading the
   leaderboard page;
3. it prints sustained votes/s, vote latency p50/p99, leaderboard latency p50/p95, and checks
   that the number of stored votes equals the number of accepted (201) responses.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUTCOMES = ("model_a", "model_b", "tie", "both_bad")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_database(url: str) -> None:
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def seed(env: dict[str, str], media_root: Path) -> None:
    """Migrate, empty the arena tables and create 8 approved public models with samples."""
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    import io

    from django.contrib.auth import get_user_model
    from django.core.files.base import ContentFile
    from PIL import Image

    from arena.models import Battle, Rater, RatingSnapshot, Vote
    from evaluation.models import Prompt, PromptSet, Sample
    from models_registry.models import GenerativeModel, ModelVersion

    Vote.objects.all().delete()
    Battle.objects.all().delete()
    Rater.objects.all().delete()
    RatingSnapshot.objects.all().delete()
    GenerativeModel.objects.filter(slug__startswith="bench-").delete()
    PromptSet.objects.filter(slug="bench-prompts").delete()
    owner, _ = get_user_model().objects.get_or_create(username="bench-owner")
    prompt_set = PromptSet.objects.create(slug="bench-prompts", name="Bench", task="text-to-image")
    prompts = [
        Prompt.objects.create(
            prompt_set=prompt_set, text=f"bench prompt {k}", category=f"c{k % 4}", position=k
        )
        for k in range(16)
    ]
    for m in range(8):
        model = GenerativeModel.objects.create(
            slug=f"bench-{m}",
            display_name=f"Bench model {m}",
            task="text-to-image",
            paradigm="diffusion",
            owner=owner,
            visibility="public",
        )
        version = ModelVersion.objects.create(
            model=model, tag="v1", status="published", arena_approved=True
        )
        for prompt in prompts:
            buffer = io.BytesIO()
            Image.new("RGB", (32, 32), (m * 30, prompt.position * 15, 90)).save(buffer, "PNG")
            sample = Sample(
                version=version,
                prompt=prompt,
                seed=0,
                media_kind="image",
                width=32,
                height=32,
                sha256=secrets.token_hex(32),
            )
            sample.media.save(f"bench-{m}-{prompt.pk}.png", ContentFile(buffer.getvalue()))
    # A leaderboard to read while voting (a real refresh, as the beat would do).
    from arena import services
    from arena.rating_snapshots import refresh_rating_snapshots

    rater = services.rater_for_session(user=None, session={})
    from datetime import timedelta

    for _ in range(200):
        battle = services.battle_create(task="text-to-image", rater=rater, ip_hash="seed")
        Battle.objects.filter(pk=battle.pk).update(
            served_at=battle.served_at - timedelta(seconds=5)
        )
        a, b = battle.sample_a.version.model.slug, battle.sample_b.version.model.slug
        services.vote_create(
            token=battle.token,
            rater_id=rater.id,
            outcome="model_a" if a > b else "model_b",
            ip_hash="seed",
        )
    refresh_rating_snapshots(task="text-to-image")


class Voter:
    def __init__(self, client: httpx.AsyncClient, origin: str):
        self.client = client
        self.origin = origin
        self.cookies: dict[str, str] = {}
        self.tokens: list[str] = []

    def headers(self) -> dict[str, str]:
        cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        return {
            "Cookie": cookie,
            "X-Forwarded-Proto": "https",
            "Origin": self.origin,
            "Referer": self.origin + "/",
            "Accept": "application/json",
            "X-CSRFToken": self.cookies.get("csrftoken", ""),
        }

    def keep(self, response: httpx.Response) -> None:
        # Cookies are Secure (production): kept by hand because the hop to gunicorn is plain HTTP.
        for name, value in response.cookies.items():
            self.cookies[name] = value

    async def start(self) -> None:
        response = await self.client.get("/arena/text-to-image/", headers=self.headers())
        response.raise_for_status()
        self.keep(response)

    async def fetch_battles(self, n: int) -> None:
        for _ in range(n):
            response = await self.client.post(
                "/arena/text-to-image/battles", headers=self.headers()
            )
            if response.status_code != 201:
                raise RuntimeError(f"battle: {response.status_code} {response.text[:200]}")
            self.keep(response)
            self.tokens.append(response.json()["token"])

    async def vote_all(self, latencies: list[float], statuses: list[int], rng) -> None:
        for token in self.tokens:
            started = time.perf_counter()
            response = await self.client.post(
                f"/arena/battles/{token}/vote",
                data={"outcome": OUTCOMES[int(rng.integers(4))]},
                headers=self.headers(),
            )
            latencies.append(time.perf_counter() - started)
            statuses.append(response.status_code)


async def read_leaderboard(client: httpx.AsyncClient, stop: asyncio.Event, out: list[float]):
    headers = {"X-Forwarded-Proto": "https"}
    while not stop.is_set():
        started = time.perf_counter()
        response = await client.get("/leaderboard/text-to-image/", headers=headers)
        out.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise RuntimeError(f"leaderboard: {response.status_code}")


async def drive(base_url: str, voters: int, battles_per_voter: int) -> dict:
    limits = httpx.Limits(max_connections=voters + 4, max_keepalive_connections=voters + 4)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as client:
        origin = "https://" + base_url.split("://", 1)[1]
        crowd = [Voter(client, origin) for _ in range(voters)]
        await asyncio.gather(*(v.start() for v in crowd))
        started = time.perf_counter()
        await asyncio.gather(*(v.fetch_battles(battles_per_voter) for v in crowd))
        battle_seconds = time.perf_counter() - started
        latencies: list[float] = []
        statuses: list[int] = []
        board: list[float] = []
        stop = asyncio.Event()
        reader = asyncio.create_task(read_leaderboard(client, stop, board))
        rngs = [np.random.default_rng(k) for k in range(voters)]
        started = time.perf_counter()
        await asyncio.gather(
            *(v.vote_all(latencies, statuses, r) for v, r in zip(crowd, rngs, strict=True))
        )
        vote_seconds = time.perf_counter() - started
        stop.set()
        await reader
    return {
        "battles": voters * battles_per_voter,
        "battle_seconds": battle_seconds,
        "vote_seconds": vote_seconds,
        "latencies": np.array(latencies),
        "statuses": statuses,
        "board": np.array(board),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/arena_bench"
        ),
    )
    parser.add_argument("--voters", type=int, default=64)
    parser.add_argument("--battles-per-voter", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    args = parser.parse_args()

    ensure_database(args.database_url)
    work = Path(tempfile.mkdtemp(prefix="arena-bench-"))
    port = free_port()
    env = dict(
        os.environ,
        DATABASE_URL=args.database_url,
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1",
        VAR_DIR=str(work / "var"),
        MEDIA_ROOT=str(work / "media"),
        STATIC_ROOT=str(work / "static"),
        CELERY_BROKER_URL=os.environ.get("CELERY_BROKER_URL", "filesystem://"),
        ARENA_MIN_VIEW_SECONDS="0",
        ARENA_VOTES_PER_MINUTE_PER_RATER="0",
        ARENA_VOTES_PER_MINUTE_PER_IP="0",
        ARENA_BATTLES_PER_MINUTE_PER_RATER="0",
        ARENA_BATTLES_PER_MINUTE_PER_IP="0",
        ARENA_REFRESH_DEBOUNCE_SECONDS="0",
        LOG_LEVEL="WARNING",
    )
    print(f"seeding {args.database_url} ...", flush=True)
    seed(env, work / "media")
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi",
            "-w",
            str(args.workers),
            "-k",
            "gthread",
            "--threads",
            str(args.threads),
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    try:
        base_url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(base_url + "/healthz", timeout=2).status_code in (200, 503):
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        result = asyncio.run(drive(base_url, args.voters, args.battles_per_voter))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)

    from arena.models import Vote

    statuses = result["statuses"]
    accepted = sum(1 for s in statuses if s == 201)
    stored = Vote.objects.exclude(ip_hash="seed").count()
    lat, board = result["latencies"] * 1000, result["board"] * 1000
    print(
        f"gunicorn {args.workers} workers x {args.threads} threads, {args.voters} voters, "
        f"{os.cpu_count()} CPU cores shared by server, database and client"
    )
    print(
        f"battles served: {result['battles']} in {result['battle_seconds']:.1f} s "
        f"({result['battles'] / result['battle_seconds']:.0f} battles/s)"
    )
    print(
        f"votes: {len(statuses)} sent in {result['vote_seconds']:.1f} s = "
        f"{len(statuses) / result['vote_seconds']:.0f} votes/s sustained; "
        f"latency p50 {np.percentile(lat, 50):.1f} ms, p99 {np.percentile(lat, 99):.1f} ms"
    )
    print(
        f"leaderboard page under that load: {len(board)} loads, "
        f"p50 {np.percentile(board, 50):.1f} ms, p95 {np.percentile(board, 95):.1f} ms"
    )
    others = sorted({s for s in statuses if s != 201})
    print(
        f"accepted (201): {accepted}; other statuses: {others or 'none'}; stored votes: {stored}; "
        f"{'OK: stored == accepted' if stored == accepted else 'MISMATCH'}"
    )
    if stored != accepted:
        sys.exit(1)


if __name__ == "__main__":
    main()
