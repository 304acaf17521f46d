"""Celery task: the periodic outlier test of human raters (beat, every ARENA_RATER_CHECK_SECONDS)."""

from __future__ import annotations

from celery import shared_task

from config import task_names


@shared_task(name=task_names.CHECK_RATERS)
def check_raters() -> dict:
    """Test every human rater against the consensus and store the flags; returns the counts."""
    from arena.rater_checks import check_all_raters

    return check_all_raters().as_dict()
