"""Metrics stage: FID, KID, CLIP score, CMMD, FVD, FD on CLIP for one version's samples."""

from __future__ import annotations

from celery import shared_task

from config import task_names


@shared_task(name=task_names.GPU_COMPUTE_METRICS)
def gpu_compute_metrics(version_id: int) -> dict:
    """Evaluate version `version_id` against its task's reference sets; rows are replaced on retry."""
    from pipeline.services import pipeline_metrics

    rows = pipeline_metrics(version_id=version_id)
    return {row.metric: {"status": row.status, "value": row.value} for row in rows}
