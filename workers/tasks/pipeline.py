"""Small bookkeeping tasks that the pipeline chain (workers/pipeline.py) is made of."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="workers.tasks.pipeline_set_status")
def pipeline_set_status(version_id: int, status: str) -> str:
    from workers.pipeline import version_set_status

    version_set_status(version_id=version_id, status=status)
    return status


@shared_task(name="workers.tasks.pipeline_join_arena")
def pipeline_join_arena(version_id: int) -> dict:
    from workers.pipeline import version_join_arena

    version = version_join_arena(version_id=version_id)
    return {
        "version_id": version_id,
        "status": version.status,
        "arena_approved": version.arena_approved,
    }


@shared_task(name="workers.tasks.pipeline_failed")
def pipeline_failed(version_id: int) -> None:
    """Error callback of the chain: the failing stage already recorded its reason."""
    from workers.pipeline import version_pipeline_failed

    version_pipeline_failed(version_id=version_id, reason="a pipeline stage failed")
