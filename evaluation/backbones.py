"""Metric backbones: which device metrics run on, loading a backbone from its configured local
weights, and the options each metric takes from settings."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings

from evaluation.metrics.catalogue import (
    metric_spec,
)

if TYPE_CHECKING:
    pass


log = logging.getLogger(__name__)


def metrics_device() -> str:
    """The torch device metric backbones run on (METRICS_DEVICE; "auto" = cuda when present)."""
    device = settings.METRICS_DEVICE
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def backbone_load(
    *,
    key: str,
    weights_path: Path | None = None,
    allow_custom: bool | None = None,
    device: str | None = None,
):
    """Load backbone `key` ("inception", "clip", "i3d", "checker") from the configured local weights.

    `weights_path` / `allow_custom` override INCEPTION_WEIGHTS_PATH / CLIP_WEIGHTS_PATH /
    I3D_WEIGHTS_PATH / PROMPT_CHECKER_WEIGHTS_PATH and the *_WEIGHTS_CUSTOM settings (the checker
    has none: it is fitted at its path when missing). Raises WeightsUnavailable or
    WeightsRejected (evaluation.features.weights) with a message naming what to configure.
    """
    from evaluation.features.registry import BACKBONES, load_backbone

    if key == "pixels":  # pixel metrics (preservation_l1) read the images themselves
        from evaluation.metrics.edit import PixelBackbone

        return PixelBackbone()
    spec = BACKBONES[key]
    path = weights_path if weights_path is not None else getattr(settings, spec.weights_setting)
    custom = allow_custom
    if custom is None:
        custom = getattr(settings, spec.custom_setting) if spec.custom_setting else False
    return load_backbone(
        key,
        weights_path=path,
        model_name=settings.CLIP_MODEL_NAME if key == "clip" else None,
        allow_custom=bool(custom or settings.WEIGHTS_ALLOW_CUSTOM),
        device=device or metrics_device(),
    )


def metric_options(name: str) -> dict:
    """Per-metric estimator settings (subsets, bootstrap replicates, jackknife groups)."""
    kind = metric_spec(name).estimator
    if kind == "kid":
        return {
            "subsets": settings.METRICS_KID_SUBSETS,
            "subset_size": settings.METRICS_KID_SUBSET_SIZE,
        }
    if kind == "cmmd":
        return {"bootstrap": settings.METRICS_BOOTSTRAP}
    if kind == "frechet":
        return {"groups": settings.METRICS_JACKKNIFE_GROUPS}
    return {}


def frames_needed(backbone) -> int | None:
    return settings.METRICS_FVD_FRAMES if backbone.modality == "video" else None
