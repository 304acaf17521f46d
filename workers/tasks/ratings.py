"""Celery task: refresh leaderboard snapshots (beat schedule every RATINGS_REFRESH_SECONDS)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="workers.tasks.refresh_rating_snapshots")
def refresh_rating_snapshots(task: str | None = None, force: bool = False) -> dict:
    """Retire the battle samples of versions that left the arena (arena.anonymity), then fit
    and store the snapshots of one task (or all); returns the current snapshot ids."""
    from arena.anonymity import retire_departed
    from arena.rating_snapshots import refresh_rating_snapshots as refresh

    retired = retire_departed(task=task)
    snapshots = refresh(task=task, force=force)
    return {
        "retired_samples": len(retired),
        "snapshots": [
            {"id": s.pk, "task": s.task, "category": s.category, "rater_kind": s.rater_kind}
            for s in snapshots
        ],
    }
