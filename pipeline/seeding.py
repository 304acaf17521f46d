"""Seeding the demo in the background: train the platform's own models, then evaluate them.

`demo_seed_start` (called by `manage.py seed_demo`, which `make run` runs before starting the
server) queues one training job per model and sends one chain of `workers.tasks.train_model`
tasks, in order, to the `training` queue: the demo CLIP first (the metrics of every model need
it), then the reference generators, fast ones first. Each generator, once trained, is
registered and goes through the same pipeline as an uploaded checkpoint (samples, metrics,
arena), on the other worker; pages fill in as models publish.
"""

from __future__ import annotations

import logging

from celery import chain, signature
from django.conf import settings
from django.db import transaction

from config import task_names
from evaluation.demo_clip_training import DEMO_CLIP_JOB, demo_clip_job_spec, demo_clip_train
from models_registry.models import TrainingJob, TrainingState, VersionStatus
from models_registry.reference_training import (
    reference_job_specs,
    reference_train,
    training_jobs_queue,
)
from pipeline.services import pipeline_start

logger = logging.getLogger(__name__)
TRAIN_TASK = task_names.TRAIN_MODEL


def demo_seed_jobs(*, quick: bool = False, only: list[str] | None = None) -> list[dict]:
    """Everything the demo trains, in training order (`only`: these slugs)."""
    clip = [demo_clip_job_spec(quick=quick)] if settings.CLIP_WEIGHTS_PATH else []
    jobs = clip + reference_job_specs(quick=quick)
    if only is not None:
        known = {job["slug"] for job in jobs}
        unknown = sorted(set(only) - known)
        if unknown:
            raise ValueError(f"unknown demo models {unknown}; known: {sorted(known)}")
        jobs = [job for job in jobs if job["slug"] in only]
    return jobs


def demo_seed_start(*, quick: bool = False, only: list[str] | None = None) -> list[str]:
    """Queue the demo's training jobs that are not done yet; returns their slugs in order.

    Idempotent: finished jobs are kept; a job whose model is registered but not yet published
    is run again, which reuses the trained weights and restarts its pipeline.
    """
    rows = training_jobs_queue(jobs=demo_seed_jobs(quick=quick, only=only))

    def finished(row: TrainingJob) -> bool:
        # Trained, and its version (if it has one) published: not stopped mid-pipeline.
        return row.state == TrainingState.DONE and (
            row.version is None or row.version.status == VersionStatus.PUBLISHED
        )

    todo = [row for row in rows if not finished(row)]
    TrainingJob.objects.filter(pk__in=[row.pk for row in todo]).update(state=TrainingState.QUEUED)
    pending = [row.slug for row in todo]
    if pending:
        work = chain(signature(TRAIN_TASK, args=[slug, quick], immutable=True) for slug in pending)
        transaction.on_commit(work.apply_async)
    return pending


def train_model(*, slug: str, quick: bool = False) -> str:
    """Run one training job (the task `workers.tasks.train_model`); returns its final state.

    A failure is recorded on the job's row and logged, and the chain goes on with the next
    model; a trained generator is registered and its pipeline started.
    """
    try:
        if slug == DEMO_CLIP_JOB:
            demo_clip_train(quick=quick)
            return TrainingState.DONE
        version = reference_train(slug=slug, quick=quick)
    except Exception:
        logger.exception("training %s failed", slug)
        return TrainingState.FAILED
    if version.status != VersionStatus.PUBLISHED:
        pipeline_start(version_id=version.pk)
    return TrainingState.DONE
