"""Celery tasks: thin wrappers that call one service each. `gpu_*` tasks route to the gpu queue."""

from __future__ import annotations

import os
import socket

from celery import shared_task

from config import task_names


@shared_task(name=task_names.PING)
def ping(payload: str = "pong") -> dict:
    """Round-trip check used by health tooling: echoes the payload and names the worker."""
    return {"payload": payload, "hostname": socket.gethostname(), "pid": os.getpid()}
