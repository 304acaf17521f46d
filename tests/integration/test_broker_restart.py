"""The broker restarting while tasks are queued loses no task (Redis with append-only persistence)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest
from celery import Celery
from django_celery_results.models import TaskResult

from tests.conftest import wait_for

REDIS = shutil.which("redis-server")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A private redis-server configured as production should be: append-only file, fsync always."""

    def __init__(self, directory, port: int) -> None:
        self.directory, self.port = directory, port

    def start(self) -> None:
        subprocess.run(
            [
                REDIS,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
                "--daemonize",
                "yes",
                "--pidfile",
                str(self.directory / "redis.pid"),
                "--logfile",
                str(self.directory / "redis.log"),
            ],
            check=True,
        )
        wait_for(self.ping, timeout=20, message=f"redis on port {self.port}")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        subprocess.run(["redis-cli", "-p", str(self.port), "shutdown"], capture_output=True)
        deadline = time.monotonic() + 20
        while self.ping() and time.monotonic() < deadline:
            time.sleep(0.2)


@pytest.mark.skipif(REDIS is None, reason="redis-server is not installed")
def test_tasks_queued_before_a_broker_restart_all_run(
    child_env, celery_workers, tmp_path, monkeypatch
):
    server = RedisServer(tmp_path, free_port())
    server.start()
    try:
        url = f"redis://127.0.0.1:{server.port}/0"
        monkeypatch.setenv("CELERY_BROKER_URL", url)
        sender = Celery("sender", broker=url)
        sender.conf.task_serializer = "json"
        ids = [
            sender.send_task(
                "workers.tasks.ping", args=[f"job-{i}"], queue="default", routing_key="default"
            ).id
            for i in range(20)
        ]
        sender.pool.force_close_all()

        server.stop()  # the broker goes away with 20 tasks queued and no worker running
        assert not server.ping()
        server.start()

        celery_workers.start(
            dict(child_env, CELERY_BROKER_URL=url), queues="default", name="after-restart"
        )
        wait_for(
            lambda: (
                TaskResult.objects.filter(task_id__in=ids, status="SUCCESS").count() == len(ids)
            ),
            timeout=120,
            message="all 20 tasks queued before the restart to run",
        )
        payloads = sorted(row.result for row in TaskResult.objects.filter(task_id__in=ids))
        assert len(payloads) == 20 and all('"job-' in p for p in payloads)
    finally:
        server.stop()
