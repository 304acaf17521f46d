"""Periodic clean-up tasks run by Celery beat."""

from __future__ import annotations

import time

from celery import shared_task

from config import task_names


@shared_task(name=task_names.PRUNE_RATE_COUNTERS)
def prune_rate_counters() -> dict:
    """Delete rate-limit counters of raters and addresses that have gone quiet."""
    from arena.rate_limits import prune_counters

    return {"deleted": prune_counters(now=time.time())}
