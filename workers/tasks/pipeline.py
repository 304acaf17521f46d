"""The pipeline's own tasks: launch the chain, set a version's status, join the arena, fail."""

from __future__ import annotations

from celery import shared_task

from config import task_names


@shared_task(name=task_names.PIPELINE_LAUNCH)
def pipeline_launch(version_id: int, from_stage: str = "generate") -> str:
    """Build the chain of a version's stages from `from_stage` and send it (pipeline_start)."""
    from pipeline.chain import pipeline_chain

    return pipeline_chain(version_id=version_id, from_stage=from_stage).apply_async().id


@shared_task(name=task_names.PIPELINE_SET_STATUS)
def pipeline_set_status(version_id: int, status: str) -> str:
    """The chain's step into a stage's version status (the registry's one status service)."""
    from models_registry.services import version_status_change

    version_status_change(version=version_id, status=status)
    return status


@shared_task(name=task_names.PIPELINE_JOIN_ARENA)
def pipeline_join_arena(version_id: int) -> dict:
    from pipeline.services import version_join_arena

    version = version_join_arena(version_id=version_id)
    return {
        "version_id": version_id,
        "status": version.status,
        "arena_approved": version.arena_approved,
    }


@shared_task(name=task_names.PIPELINE_FAILED)
def pipeline_failed(version_id: int) -> None:
    """Error callback of the chain: the failing stage already recorded its reason."""
    from pipeline.services import version_pipeline_failed

    version_pipeline_failed(version_id=version_id, reason="a pipeline stage failed")
