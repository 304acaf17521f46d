"""Training the demo's own tiny CLIP on the synthetic dataset (a training job of the demo)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    pass


log = logging.getLogger(__name__)


DEMO_CLIP_JOB = "demo-clip"
DEMO_CLIP_STEPS = 400


def demo_clip_job_spec(*, quick: bool = False) -> dict:
    """The training job of the demo CLIP (CLIP score, CMMD and FD-on-CLIP in the demo)."""
    from models_registry.models import TrainingKind

    return {
        "slug": DEMO_CLIP_JOB,
        "label": "Demo CLIP (for CLIP score, CMMD and FD on CLIP)",
        "kind": TrainingKind.BACKBONE,
        "total": 20 if quick else DEMO_CLIP_STEPS,
    }


def demo_clip_train(*, quick: bool = False) -> Path:
    """Train (or reuse) the demo CLIP at CLIP_WEIGHTS_PATH as the tracked job `demo-clip`."""
    from evaluation.features.demo_clip import train_demo_clip
    from models_registry.reference_training import training_job_tracked

    if not settings.CLIP_WEIGHTS_PATH:
        raise ImproperlyConfigured("CLIP_WEIGHTS_PATH is not set: no place for the demo CLIP")
    with training_job_tracked(slug=DEMO_CLIP_JOB) as progress:
        checkpoint = train_demo_clip(
            settings.CLIP_WEIGHTS_PATH,
            steps=demo_clip_job_spec(quick=quick)["total"],
            progress=progress,
        )
    return checkpoint.weights_path
