"""A private redis-server for reliability tests (persistence and timeouts set per test)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

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
