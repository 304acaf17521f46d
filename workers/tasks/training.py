"""Training tasks (the `training` queue): the demo's own models, one job per task."""

from __future__ import annotations

from celery import shared_task

from config import task_names


@shared_task(name=task_names.TRAIN_MODEL)
def train_model(slug: str, quick: bool = False) -> str:
    """Train one of the demo's models (a reference generator or the demo CLIP) and hand it on."""
    from pipeline.seeding import train_model as train_model_service

    return train_model_service(slug=slug, quick=quick)
