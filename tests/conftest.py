"""Shared fixtures: real Celery worker processes against the test database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def small_pools_last(settings) -> None:
    """Test arenas hold a handful of samples and test clients share 127.0.0.1: retirement after
    reveals and exclusion by address would empty them after a few votes, so they are off except
    where tests/integration/test_anonymity.py turns them on. A rater is still never served a
    sample they have seen (that rule has no switch)."""
    settings.ARENA_RETIRE_AFTER_REVEALS = 10**6
    settings.ARENA_EXCLUDE_SEEN_BY_ADDRESS = False
    # Test helpers vote through fresh raters; the vote-count rules are tested on their own
    # (tests/integration/test_targeted_voting.py).
    settings.ARENA_RATER_MIN_VOTES = 1
    settings.ARENA_MIN_VOTE_RATE = 0.0


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    """Each test starts with empty caches: leaderboard pages, arena pool, refresh debounce."""
    from django.core.cache import caches

    for alias in settings.CACHES:
        caches[alias].clear()


def test_database_url() -> str:
    """A DATABASE_URL that points a child process at the database this test run uses."""
    cfg = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{cfg['NAME']}"
    user = cfg.get("USER") or ""
    password = f":{cfg['PASSWORD']}" if cfg.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    host = cfg.get("HOST") or "127.0.0.1"
    port = f":{cfg['PORT']}" if cfg.get("PORT") else ""
    return f"postgres://{auth}{host}{port}/{cfg['NAME']}"


@pytest.fixture
def child_env(transactional_db) -> dict[str, str]:
    """Environment for a worker/server subprocess sharing this test's database and media."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=test_database_url(),
        DEBUG="1",
        MEDIA_ROOT=str(settings.MEDIA_ROOT),
        PYTHONUNBUFFERED="1",
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        # The worker counts votes by the same rules as this test process (small_pools_last).
        ARENA_RETIRE_AFTER_REVEALS=str(settings.ARENA_RETIRE_AFTER_REVEALS),
        ARENA_EXCLUDE_SEEN_BY_ADDRESS="1" if settings.ARENA_EXCLUDE_SEEN_BY_ADDRESS else "0",
        ARENA_RATER_MIN_VOTES=str(settings.ARENA_RATER_MIN_VOTES),
        ARENA_MIN_VOTE_RATE=str(settings.ARENA_MIN_VOTE_RATE),
    )
    return env


def purge_queues() -> None:
    """Drop messages left on the configured broker by earlier tests, so workers see only ours."""
    from config.celery import app

    app.control.purge()


class WorkerProcesses:
    """Starts real `celery worker` processes and stops them (SIGTERM, then SIGKILL) at teardown."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen] = []

    def start(
        self,
        env: dict[str, str],
        queues: str = "default,gpu",
        name: str = "w1",
        concurrency: int = 1,
    ) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-Q",
                queues,
                "-n",
                f"{name}@%h",
                "--concurrency",
                str(concurrency),
                "--pool",
                "prefork",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "INFO",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
        """Kill the whole process group (the worker and its pool children)."""
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)

    def log(self, name: str) -> str:
        return (self.log_dir / f"{name}.log").read_text()

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(timeout=20)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    try:
                        os.killpg(proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    proc.wait(timeout=10)


@pytest.fixture
def celery_workers(tmp_path) -> Iterator[WorkerProcesses]:
    purge_queues()
    workers = WorkerProcesses(tmp_path)
    yield workers
    workers.stop_all()


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.25, message: str = "condition"):
    """Poll `predicate` until it returns a truthy value; fail the test with `message` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {message}")
