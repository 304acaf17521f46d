"""Service: the models the platform trains itself for the demo, as tracked jobs.

`make run` queues one `TrainingJob` per reference generator (and one for the demo CLIP, see
evaluation.services) and a background worker runs them in order; each job writes its progress
(step / total, the loss) at most once a second, so the home page and `manage.py seed_progress`
can draw a bar per model. A generator's job ends by registering the trained weights as a public
reference version (`register_reference_model`); the pipeline takes it from there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache

from django.conf import settings
from django.utils import timezone

from models_registry.models import ModelVersion, TrainingJob, TrainingKind, TrainingState

PROGRESS_WRITE_SECONDS = 1.0
Progress = Callable[[int, float], None]


class TrainingFailed(Exception):
    """A job could not run (e.g. its teacher is missing); the message is shown as its state."""


def training_jobs_queue(*, jobs: list[dict]) -> list[TrainingJob]:
    """Create or update one queued row per job {slug, label, kind, task, total}, in order.

    A job that already finished keeps its row (state done, version); anything else is queued
    again with its progress reset. Returns the rows in queue order.
    """
    rows = []
    for position, job in enumerate(jobs):
        row, created = TrainingJob.objects.get_or_create(
            slug=job["slug"],
            defaults={
                "label": job["label"],
                "kind": job["kind"],
                "task": job.get("task", ""),
                "total": job["total"],
                "position": position,
            },
        )
        if not created:
            row.label, row.kind, row.task = job["label"], job["kind"], job.get("task", "")
            row.position = position
            if row.state != TrainingState.DONE:  # queued again, from the start
                row.state, row.step, row.total, row.message = (
                    TrainingState.QUEUED,
                    0,
                    job["total"],
                    "",
                )
                row.started_at = row.finished_at = None
            row.save()
        rows.append(row)
    return rows


@contextmanager
def training_job_tracked(*, slug: str) -> Iterator[Progress]:
    """Run one job's work: marks it running, yields `progress(step, loss)` (throttled writes),
    then done; an exception marks it failed with the exception's message and is re-raised."""
    TrainingJob.objects.filter(slug=slug).update(
        state=TrainingState.RUNNING, step=0, message="", started_at=timezone.now()
    )
    last = [0.0]

    def progress(step: int, loss: float) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_WRITE_SECONDS:
            last[0] = now
            TrainingJob.objects.filter(slug=slug).update(
                step=step, message=f"loss {loss:.4f}", updated_at=timezone.now()
            )

    try:
        yield progress
    except Exception as exc:
        TrainingJob.objects.filter(slug=slug).update(
            state=TrainingState.FAILED,
            message=f"{type(exc).__name__}: {exc}"[:2000],
            finished_at=timezone.now(),
        )
        raise
    job = TrainingJob.objects.get(slug=slug)
    job.state, job.step, job.finished_at = TrainingState.DONE, job.total, timezone.now()
    job.save(update_fields=["state", "step", "finished_at", "updated_at"])


def reference_job_specs(*, quick: bool = False) -> list[dict]:
    """The training jobs of the reference generators, teachers before their students and the
    fast under-trained models first (they publish within minutes)."""
    from models_registry.generators.reference import REFERENCE_SPECS

    specs = sorted(REFERENCE_SPECS, key=lambda s: (s.teacher is not None, s.steps))
    return [
        {
            "slug": spec.slug,
            "label": spec.display_name,
            "kind": TrainingKind.GENERATOR,
            "task": spec.task,
            "total": min(spec.steps, 3) if quick else spec.steps,
        }
        for spec in specs
    ]


@lru_cache(maxsize=2)
def _training_data(quick: bool):
    from models_registry.generators.reference import TrainingData

    # Rendered once per worker process and shared by the jobs it runs.
    return TrainingData(images=2000 if quick else 20000, videos=200 if quick else 3000)


def reference_train(*, slug: str, quick: bool = False) -> ModelVersion:
    """Train (or reuse) the reference generator `slug` and register it; returns its version.

    Weights already under REFERENCE_MODELS_DIR are reused. Progress and failure are written
    to the job's row (created by `training_jobs_queue`).
    """
    import torch

    from models_registry.generators.reference import is_trained, reference_spec, train_reference
    from models_registry.reference_models import register_reference_model

    spec = reference_spec(slug)
    root = settings.REFERENCE_MODELS_DIR
    root.mkdir(parents=True, exist_ok=True)
    if settings.TRAINING_THREADS:
        torch.set_num_threads(settings.TRAINING_THREADS)
    with training_job_tracked(slug=slug) as progress:
        if spec.teacher and not is_trained(root / spec.teacher):
            raise TrainingFailed(f"{slug} needs its teacher {spec.teacher} trained first")
        if not is_trained(root / slug):
            train_reference(spec, root, _training_data(quick), quick=quick, progress=progress)
        version, _ = register_reference_model(
            directory=root / slug,
            slug=slug,
            display_name=spec.display_name,
            description=spec.description,
        )
        TrainingJob.objects.filter(slug=slug).update(version=version)
    return version
