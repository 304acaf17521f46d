"""Concurrent voters over HTTP against gunicorn + PostgreSQL: votes/s, latency, no vote lost.

    .venv/bin/python benchmarks/votes.py [--voters 64] [--rate 1000] [--workers 4 --threads 4]

Needs PostgreSQL (``--database-url``, default postgres://postgres@127.0.0.1:5432/arena_bench;
created and migrated if missing, arena tables emptied first) and Redis for the shared cache
(``--cache-url``, default redis://127.0.0.1:6379/3; '' for per-process memory). It seeds a small
arena (8 public models x 16 prompts), collects static files and starts gunicorn with the
production settings (config/gunicorn.conf.py, DEBUG off, behind a simulated TLS proxy that adds
X-Forwarded-Proto and X-Forwarded-For, so every voter has its own address). The minimum viewing
time is 0; the rate limits stay on (their counting is part of every vote) but high enough that
these fast voters never reach them. Every vote is its own connection, as behind a reverse proxy.

1. every voter (its own cookies, so its own rater) fetches its battles through the JSON API;
2. saturation: all voters vote as fast as the server answers (closed loop): the most votes/s;
3. offered load: votes arrive at ``--rate`` per second whatever the latency (open loop), the
   load the leaderboard target is stated for;
4. during both, a reader loads the leaderboard page ``--leaderboard-rate`` times a second.

Prints votes/s, vote latency p50/p99, leaderboard latency p50/p95 and the CPU each process
group spent per vote (client, gunicorn, PostgreSQL, Redis: they share the machine's cores), and
checks that the number of stored votes equals the number of accepted (201) responses.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import uvloop

ROOT = Path(__file__).resolve().parent.parent
OUTCOMES = ("model_a", "model_b", "tie", "both_bad")
FORM = "application/x-www-form-urlencoded"


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


def arena_tables() -> list[str]:
    """The tables a benchmark run writes (Django must be set up)."""
    from arena.models import Battle, RateCounter, Rater, RatingSnapshot, Vote

    return [m._meta.db_table for m in (Vote, Battle, Rater, RatingSnapshot, RateCounter)]


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
    from django.db import connection
    from PIL import Image

    from arena.models import Battle
    from evaluation.models import Prompt, PromptSet, Sample
    from models_registry.models import GenerativeModel, ModelVersion

    # TRUNCATE, not DELETE: every run starts from tables without the dead rows of the last one.
    tables = arena_tables()
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(tables)} CASCADE")
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

    rater = services.rater_for(user=None, anonymous_rater_id=None)
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
    with connection.cursor() as cursor:  # planner statistics for the fresh tables
        cursor.execute(f"ANALYZE {', '.join(tables)}")


def http_request(method: str, path: str, host: str, headers: dict[str, str], body: bytes) -> bytes:
    """The bytes of one HTTP/1.1 request (Content-Length on every POST)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Connection:
    """One keep-alive HTTP/1.1 connection on asyncio streams.

    Hand-written on purpose: the client shares the 2 cores with gunicorn and PostgreSQL, and a
    full client library (httpx) spends several times more CPU per request than this, which would
    be measured as server slowness.
    """

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        message = http_request(method, path, f"{self.host}:{self.port}", headers, body)
        reused = self.writer is not None
        if not reused:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(message)
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionResetError) as exc:
            # The server closed an idle keep-alive connection before reading this request
            # (no byte of a response came back): send it again on a new one, as browsers do.
            if not reused or getattr(exc, "partial", b""):
                raise
            self.close()
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            self.writer.write(message)
            head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        received = [tuple(x.strip() for x in line.split(":", 1)) for line in header_lines if line]
        fields = {k.lower(): v for k, v in received}
        if "content-length" in fields:
            content = await self.reader.readexactly(int(fields["content-length"]))
        elif fields.get("transfer-encoding", "").lower() == "chunked":
            content = await self._chunked()
        else:
            raise RuntimeError(f"{method} {path}: response without a length: {fields}")
        if fields.get("connection", "").lower() == "close":
            self.writer.close()
            self.reader = self.writer = None
        return status, received, content

    async def _chunked(self) -> bytes:
        parts = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            parts.append(await self.reader.readexactly(size + 2))
            if size == 0:
                return b"".join(part[:-2] for part in parts)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class Voter:
    """One browser: its own connection and cookies (session, CSRF), so its own rater."""

    def __init__(self, host: str, port: int, address: str):
        self.connection = Connection(host, port)
        self.host, self.port = host, port
        self.origin = f"https://{host}:{port}"
        self.address = address
        self.cookies: dict[str, str] = {}
        self.tokens: list[str] = []

    def headers(self, **extra: str) -> dict[str, str]:
        return {
            "Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()),
            "X-Forwarded-Proto": "https",
            "X-Forwarded-For": self.address,
            "Origin": self.origin,
            "Referer": self.origin + "/",
            "Accept": "application/json",
            "X-CSRFToken": self.cookies.get("csrftoken", ""),
            **extra,
        }

    async def call(self, method: str, path: str, body: bytes = b"", **headers: str):
        status, received, content = await self.connection.request(
            method, path, self.headers(**headers), body
        )
        # Cookies are Secure (production): kept by hand because the hop to gunicorn is plain HTTP.
        for name, value in received:
            if name.lower() == "set-cookie":
                key, _, rest = value.partition("=")
                self.cookies[key] = rest.split(";", 1)[0]
        return status, content

    async def start(self) -> None:
        status, content = await self.call("GET", "/arena/text-to-image/", Accept="text/html")
        if status != 200:
            raise RuntimeError(f"arena page: {status} {content[:200]!r}")

    async def fetch_battles(self, n: int) -> None:
        for _ in range(n):
            status, content = await self.call("POST", "/arena/text-to-image/battles")
            if status != 201:
                raise RuntimeError(f"battle: {status} {content[:200]!r}")
            self.tokens.append(json.loads(content)["token"])

    async def vote(self, token: str, outcome: str) -> tuple[int, float]:
        """Vote on a new connection, as a person voting every few seconds (past any keep-alive)
        behind a reverse proxy does. Returns (status, seconds)."""
        message = http_request(
            "POST",
            f"/arena/battles/{token}/vote",
            f"{self.host}:{self.port}",
            self.headers(**{"Content-Type": FORM, "Connection": "close"}),
            f"outcome={outcome}".encode(),
        )
        loop = asyncio.get_running_loop()
        answered = loop.create_future()
        started = time.perf_counter()
        await loop.create_connection(lambda: OneShot(message, answered), self.host, self.port)
        status = await answered
        return status, time.perf_counter() - started


class OneShot(asyncio.Protocol):
    """Send one request, read the response (Content-Length), close, resolve `answered` with the
    status. A protocol rather than streams: a vote is a whole connection, and the client's CPU
    counts against the server on this machine."""

    def __init__(self, message: bytes, answered: asyncio.Future):
        self.message, self.answered, self.received = message, answered, bytearray()
        self.transport = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.message)

    def data_received(self, data: bytes) -> None:
        self.received += data
        head_end = self.received.find(b"\r\n\r\n")
        if head_end < 0:
            return
        length = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", self.received[:head_end])
        if length is None:
            raise RuntimeError(f"response without Content-Length: {bytes(self.received[:200])!r}")
        if len(self.received) >= head_end + 4 + int(length.group(1)):
            self.answered.set_result(int(self.received[9:12]))
            self.transport.close()

    def connection_lost(self, exc) -> None:
        if not self.answered.done():
            self.answered.set_exception(exc or ConnectionError("closed before a whole response"))


async def read_leaderboard(
    host: str, port: int, per_second: float, stop: asyncio.Event, out: list[float]
) -> None:
    """A reader loading the leaderboard page `per_second` times a second (open loop)."""
    connection = Connection(host, port)
    next_at = time.perf_counter()
    while not stop.is_set():
        started = time.perf_counter()
        status, _, _ = await connection.request(
            "GET", "/leaderboard/text-to-image/", {"X-Forwarded-Proto": "https"}
        )
        out.append(time.perf_counter() - started)
        if status != 200:
            raise RuntimeError(f"leaderboard: {status}")
        next_at += 1.0 / per_second
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
    connection.close()


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these processes so far (Linux /proc)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def processes(*, session: int | None = None, name: str | None = None) -> list[int]:
    """Pids in a session (gunicorn's master and workers) or with a command name (postgres)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
            sid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[3])
        except (OSError, IndexError, ValueError):
            continue
        if (session is not None and sid == session) or (name is not None and comm == name):
            found.append(int(entry.name))
    return found


@dataclass
class Phase:
    """One measured stretch of voting: what was sent, how long it took, what it cost."""

    name: str
    seconds: float = 0.0
    statuses: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    board: list[float] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)

    def record(self, result: tuple[int, float]) -> None:
        self.statuses.append(result[0])
        self.latencies.append(result[1])

    def report(self) -> None:
        n = max(len(self.statuses), 1)
        lat, board = np.array(self.latencies) * 1000, np.array(self.board) * 1000
        print(
            f"{self.name}: {len(self.statuses)} votes in {self.seconds:.1f} s = "
            f"{len(self.statuses) / self.seconds:.0f} votes/s; vote latency "
            f"p50 {np.percentile(lat, 50):.1f} ms, p99 {np.percentile(lat, 99):.1f} ms; "
            f"leaderboard page ({len(board)} loads) p50 {np.percentile(board, 50):.1f} ms, "
            f"p95 {np.percentile(board, 95):.1f} ms"
        )
        print(
            "  CPU per vote (ms): "
            + ", ".join(f"{k} {1000 * v / n:.2f}" for k, v in self.cpu.items())
            + f"; cores busy {sum(self.cpu.values()) / self.seconds:.2f}"
        )


class Meter:
    """CPU seconds of the client, gunicorn, PostgreSQL and Redis over a phase."""

    def __init__(self, server_pid: int):
        self.server_pid = server_pid

    def groups(self) -> dict[str, list[int]]:
        return {
            "client": [os.getpid()],
            "gunicorn": processes(session=self.server_pid),
            "postgres": processes(name="postgres"),
            "redis": processes(name="redis-server"),
        }

    async def measure(self, phase: Phase, host: str, port: int, board_rate: float, work) -> None:
        # No collector pauses in the client while it times the server (its garbage is small).
        gc.collect()
        gc.disable()
        groups = self.groups()
        before = {k: cpu_seconds(pids) for k, pids in groups.items()}
        stop = asyncio.Event()
        reader = asyncio.create_task(read_leaderboard(host, port, board_rate, stop, phase.board))
        started = time.perf_counter()
        await work
        phase.seconds = time.perf_counter() - started
        phase.cpu = {k: cpu_seconds(pids) - before[k] for k, pids in groups.items()}
        stop.set()
        await reader
        gc.enable()


async def closed_loop(crowd: list[Voter], phase: Phase, rng) -> None:
    """Every voter votes on its battles one after another, as fast as the server answers."""

    async def run(voter: Voter) -> None:
        while voter.tokens:
            token = voter.tokens.pop()
            phase.record(await voter.vote(token, OUTCOMES[int(rng.integers(4))]))

    await asyncio.gather(*(run(v) for v in crowd))


async def open_loop(crowd: list[Voter], phase: Phase, rate: float, rng) -> None:
    """Votes arrive at `rate` per second whatever the latency (many people, each voting now and
    then): the offered load the leaderboard latency target is stated for."""
    work = [(v, t) for v in crowd for t in v.tokens]
    rng.shuffle(work)
    pending = []
    started = time.perf_counter()
    for k, (voter, token) in enumerate(work):
        delay = started + k / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(voter.vote(token, OUTCOMES[int(rng.integers(4))]))
        task.add_done_callback(lambda done: phase.record(done.result()))
        pending.append(task)
    await asyncio.gather(*pending)
    for voter in crowd:
        voter.tokens.clear()


def analyze(database_url: str) -> None:
    """Refresh the planner's statistics, as autovacuum does on a live arena. Here the battle
    table grows from a few hundred rows to thousands within seconds, faster than autovacuum
    looks (once a minute), and a prepared plan chosen for a tiny table would scan it whole."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"ANALYZE {', '.join(arena_tables())}")


async def drive(args, host: str, port: int, server_pid: int) -> list[Phase]:
    crowd = [
        Voter(host, port, f"10.{k // 65536}.{k // 256 % 256}.{k % 256}") for k in range(args.voters)
    ]
    await asyncio.gather(*(v.start() for v in crowd))
    meter, rng = Meter(server_pid), np.random.default_rng(0)
    warm: list[float] = []
    stop = asyncio.Event()
    reader = asyncio.create_task(read_leaderboard(host, port, 50.0, stop, warm))
    # Every worker opens its database and cache connections once before anything is measured.
    await asyncio.sleep(1.0)
    stop.set()
    await reader

    started = time.perf_counter()
    await asyncio.gather(*(v.fetch_battles(args.battles_per_voter) for v in crowd))
    analyze(args.database_url)
    elapsed = time.perf_counter() - started
    n = args.voters * args.battles_per_voter
    print(f"battles served: {n} in {elapsed:.1f} s ({n / elapsed:.0f} battles/s)", flush=True)
    saturation = Phase(f"saturation ({args.voters} voters, closed loop)")
    await meter.measure(
        saturation, host, port, args.leaderboard_rate, closed_loop(crowd, saturation, rng)
    )
    saturation.report()

    per_voter = math.ceil(args.rate * args.seconds / args.voters)
    await asyncio.gather(*(v.fetch_battles(per_voter) for v in crowd))
    analyze(args.database_url)
    offered = Phase(f"offered load ({args.rate:.0f} votes/s, open loop)")
    await meter.measure(
        offered, host, port, args.leaderboard_rate, open_loop(crowd, offered, args.rate, rng)
    )
    offered.report()
    for voter in crowd:
        voter.connection.close()
    return [saturation, offered]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/arena_bench"
        ),
    )
    parser.add_argument(
        "--cache-url",
        default=os.environ.get("CACHE_URL", "redis://127.0.0.1:6379/3"),
        help="shared cache (sessions, leaderboard pages); '' for per-process memory",
    )
    parser.add_argument("--voters", type=int, default=64)
    parser.add_argument(
        "--battles-per-voter", type=int, default=60, help="votes per voter when saturating"
    )
    parser.add_argument("--rate", type=float, default=1000.0, help="offered votes per second")
    parser.add_argument("--seconds", type=float, default=6.0, help="length of the offered load")
    parser.add_argument(
        "--workers", type=int, default=2 * (os.cpu_count() or 1), help="gunicorn processes"
    )
    parser.add_argument("--threads", type=int, default=2, help="threads per gunicorn worker")
    parser.add_argument(
        "--leaderboard-rate", type=float, default=20.0, help="leaderboard loads per second"
    )
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
        CACHE_URL=args.cache_url,
        CACHE_KEY_PREFIX=f"bench-{secrets.token_hex(4)}",
        ARENA_MIN_VIEW_SECONDS="0",
        # The rate limits stay on (their locks and counts are part of every vote), set high
        # enough that these fast voters never reach them.
        ARENA_VOTES_PER_MINUTE_PER_RATER="100000",
        ARENA_VOTES_PER_MINUTE_PER_IP="100000",
        ARENA_BATTLES_PER_MINUTE_PER_RATER="100000",
        ARENA_BATTLES_PER_MINUTE_PER_IP="100000",
        ARENA_TRUSTED_PROXY_HOPS="1",  # each voter has its own address (X-Forwarded-For)
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
            "--config",
            str(ROOT / "config" / "gunicorn.conf.py"),  # the production settings
            "--workers",
            str(args.workers),
            "--threads",
            str(args.threads),
            "--worker-connections",
            str(args.threads),
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    try:
        for _ in range(150):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        print(
            f"gunicorn {args.workers} workers x {args.threads} threads, {args.voters} voters, "
            f"{os.cpu_count()} CPU cores shared by server, database, cache and client",
            flush=True,
        )
        # uvloop: the client shares the cores with the server, so its event loop should be lean.
        phases = uvloop.run(drive(args, "127.0.0.1", port, server.pid))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)

    from arena.models import Vote

    saturation, offered = phases
    most = len(saturation.statuses) / saturation.seconds
    achieved = len(offered.statuses) / offered.seconds
    board_p95 = float(np.percentile(np.array(offered.board) * 1000, 95))
    print(
        f"targets: sustained >= 1000 votes/s: {most:.0f} ({most / 1000:.2f}x, "
        f"{'met' if most >= 1000 else 'NOT met'}); leaderboard p95 <= 30 ms while "
        f"{achieved:.0f} votes/s arrive: {board_p95:.1f} ms "
        f"({'met' if board_p95 <= 30 and achieved >= 0.98 * args.rate else 'NOT met'})"
    )
    statuses = [status for phase in phases for status in phase.statuses]
    accepted = sum(1 for s in statuses if s == 201)
    stored = Vote.objects.exclude(ip_hash="seed").count()
    others = sorted({s for s in statuses if s != 201})
    print(
        f"accepted (201): {accepted}; other statuses: {others or 'none'}; stored votes: {stored}; "
        f"{'OK: stored == accepted' if stored == accepted else 'MISMATCH'}"
    )
    if stored != accepted:
        sys.exit(1)


if __name__ == "__main__":
    main()
