"""Celery task: refresh leaderboard snapshots (beat schedule every RATINGS_REFRESH_SECONDS)."""

from __future__ import annotations

from celery import shared_task

from config import task_names


@shared_task(name=task_names.REFRESH_RATING_SNAPSHOTS)
def refresh_rating_snapshots(task: str | None = None, force: bool = False) -> dict:
    """Fit and store the snapshots of one task (or all); returns the current snapshot ids."""
    from arena.rating_snapshots import refresh_rating_snapshots as refresh

    snapshots = refresh(task=task, force=force)
    return {
        "snapshots": [
            {"id": s.pk, "task": s.task, "category": s.category, "rater_kind": s.rater_kind}
            for s in snapshots
        ],
    }


@shared_task(name=task_names.RETIRE_DEPARTED_SAMPLES)
def retire_departed_samples(task: str | None = None) -> dict:
    """Retire the battle pools of versions that left the arena (arena.anonymity; beat runs it
    every RATINGS_REFRESH_SECONDS): they are never served again and become public."""
    from arena.anonymity import retire_departed

    return {"retired": len(retire_departed(task=task))}
