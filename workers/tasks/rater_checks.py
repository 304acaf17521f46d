"""Celery task: the periodic outlier test of human raters (beat, every ARENA_RATER_CHECK_SECONDS)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="workers.tasks.check_raters")
def check_raters() -> dict:
    """Test every human rater against the consensus and store the flags; returns the counts."""
    from arena.rater_checks import check_all_raters

    return check_all_raters().as_dict()
