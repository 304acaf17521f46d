"""Checkpoint validation task (default queue): unpack safely, check, mark ready or rejected."""

from __future__ import annotations

from celery import shared_task

from config import task_names


@shared_task(name=task_names.VALIDATE_CHECKPOINT)
def validate_checkpoint(version_id: int) -> dict:
    """Validate the finalized upload of ``version_id``; returns the resulting status."""
    from pipeline.services import pipeline_validate

    version = pipeline_validate(version_id=version_id)
    if version is None:
        return {"version_id": version_id, "status": "missing", "reason": "version was deleted"}
    return {"version_id": version.pk, "status": version.status, "reason": version.status_reason}
