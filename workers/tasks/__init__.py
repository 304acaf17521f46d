"""Celery tasks (thin: parse, call one service, report). One submodule per area; each task has an
explicit name `workers.tasks.<name>`, and names starting with `gpu_` route to the gpu queue.

Keep torch and other heavy imports inside the task functions so workers start fast.
"""

from workers.tasks.health import ping

__all__ = ["ping"]
