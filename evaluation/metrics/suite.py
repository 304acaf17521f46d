"""The streaming class of each media metric, and one loop that streams media through backbone and
metric.

Which metrics exist, and the backbone, media and estimator of each, is the catalogue
(evaluation.metrics.catalogue); the suite computes its `SUITE_METRIC_NAMES` (judge metrics are
evaluation.judging's). A backbone is duck-typed (see evaluation.features.registry): `name`, `weights_sha256`,
`modality` and `encode_images` / `encode_texts` / `encode_videos`; the synthetic checker
(modality "checker", prompt_agreement) instead reads media and prompts together (`check`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch

from evaluation.metrics.catalogue import REFERENCE, suite_metric_spec
from evaluation.metrics.clip_score import CLIPScore, clip_pair_scores
from evaluation.metrics.cmmd import CMMD
from evaluation.metrics.contract import StreamingMetric
from evaluation.metrics.edit import (
    ClipDirection,
    EditAccuracy,
    EditMetric,
    PreservationCLIP,
    PreservationL1,
)
from evaluation.metrics.frechet import FrechetDistanceMetric
from evaluation.metrics.kid import KernelInceptionDistance
from evaluation.metrics.prompt_agreement import PromptAgreement
from evaluation.metrics.reference import ReferenceStats
from evaluation.metrics.result import MetricValue

# Catalogue `estimator` -> how to build it from reference statistics and the metric's ids.
ESTIMATORS: dict[str, Callable[..., StreamingMetric]] = {
    "frechet": lambda reference, **kw: FrechetDistanceMetric(reference.gaussian, **kw),
    "kid": lambda reference, **kw: KernelInceptionDistance(reference.features, **kw),
    "cmmd": lambda reference, **kw: CMMD(reference.features, **kw),
    "clip_score": lambda reference, **kw: CLIPScore(**kw),
    "prompt_agreement": lambda reference, **kw: PromptAgreement(**kw),
    "edit_accuracy": lambda reference, **kw: EditAccuracy(**kw),
    "clip_direction": lambda reference, **kw: ClipDirection(**kw),
    "preservation_l1": lambda reference, **kw: PreservationL1(**kw),
    "preservation_clip": lambda reference, **kw: PreservationCLIP(**kw),
}


def encode_media(backbone, media: np.ndarray) -> torch.Tensor:
    """Features [B, D] of uint8 images [B, H, W, 3] or videos [B, T, H, W, 3].

    Videos through an image backbone get the mean of their frame embeddings (re-normalised for
    CLIP), so CLIP-based metrics also apply to video tasks.
    """
    if backbone.modality == "video":
        if media.ndim != 5:
            raise ValueError(f"{backbone.name} needs videos [B, T, H, W, 3], got images")
        return backbone.encode_videos(media)
    if media.ndim == 4:
        return backbone.encode_images(media)
    b, t = media.shape[:2]
    frames = backbone.encode_images(media.reshape(b * t, *media.shape[2:])).reshape(b, t, -1)
    pooled = frames.mean(dim=1)
    return (
        torch.nn.functional.normalize(pooled, dim=-1)
        if backbone.modality == "image-text"
        else pooled
    )


def reference_from_media(
    backbone,
    batches: Iterable[np.ndarray],
    *,
    capacity: int = 10_000,
    on_batch: Callable[[int], None] | None = None,
) -> ReferenceStats:
    """Reference statistics of real media batches through `backbone`."""

    def features():
        for media in batches:
            yield encode_media(backbone, media)
            if on_batch:
                on_batch(len(media))

    return ReferenceStats.from_features(
        features(),
        backbone=backbone.name,
        weights_sha256=backbone.weights_sha256,
        capacity=capacity,
    )


def make_metric(
    name: str, *, backbone, reference: ReferenceStats | None, **options
) -> StreamingMetric:
    """A streaming metric object for `name` against `reference` (None for prompt metrics)."""
    spec = suite_metric_spec(name)
    if (spec.backbone == "checker") != (backbone.modality == "checker"):
        raise ValueError(
            f"{name} needs the {spec.backbone} backbone, got {backbone.name} ({backbone.modality})"
        )
    ids = dict(metric=name, backbone=backbone.name, weights_sha256=backbone.weights_sha256)
    if spec.kind == REFERENCE:
        if reference is None:
            raise ValueError(f"{name} needs reference statistics")
        reference.check_backbone(backbone.name, backbone.weights_sha256)
    return ESTIMATORS[spec.estimator](reference, **ids, **options)


def evaluate_many(
    names: Sequence[str],
    *,
    backbone,
    references: dict[str, ReferenceStats | None],
    batches: Iterable[tuple[np.ndarray, Sequence[str] | None]],
    on_batch: Callable[[int], None] | None = None,
    options: dict[str, dict] | None = None,
) -> dict[str, MetricValue | Exception]:
    """Stream (media batch, prompts or None) once through `backbone` into every metric of `names`.

    Returns each metric's value, or the ValueError its compute() raised (e.g. too few samples).
    clip_score needs one prompt per item; for videos it averages per-frame scores (CLIPSIM).
    prompt_agreement (the checker backbone) reads each item with its prompt. Edit metrics
    (evaluation.metrics.edit) read each edited image with its `EditPrompts` entry (target
    caption, source image, source caption, edit mask); edit_accuracy is the checker against the
    target caption.
    """
    options = options or {}
    metrics = {
        name: make_metric(
            name, backbone=backbone, reference=references.get(name), **options.get(name, {})
        )
        for name in names
    }
    prompt_metrics = {name for name in names if suite_metric_spec(name).kind != REFERENCE}
    wants_features = len(prompt_metrics) < len(metrics)
    for media, prompts in batches:
        features = encode_media(backbone, media) if wants_features else None
        for name, metric in metrics.items():
            if name not in prompt_metrics:
                metric.update(features)
                continue
            if prompts is None or len(prompts) != len(media):
                raise ValueError(f"{name} needs exactly one prompt per image or video")
            if isinstance(metric, PromptAgreement):
                metric.update(backbone.check(media, list(prompts)))
                continue
            if isinstance(metric, EditMetric):
                metric.update(backbone, media, prompts)
                continue
            text = backbone.encode_texts(list(prompts))
            if media.ndim == 5:
                b, t = media.shape[:2]
                frames = backbone.encode_images(media.reshape(b * t, *media.shape[2:]))
                scores = clip_pair_scores(frames, text.repeat_interleave(t, dim=0))
                metric.update_scores(scores.reshape(b, t).mean(dim=1))
            elif features is not None:
                metric.update(features, text)
            else:
                metric.update(backbone.encode_images(media), text)
        if on_batch:
            on_batch(len(media))
    results: dict[str, MetricValue | Exception] = {}
    for name, metric in metrics.items():
        try:
            results[name] = metric.compute()
        except ValueError as exc:
            results[name] = exc
    return results


def evaluate(
    name: str,
    *,
    backbone,
    reference: ReferenceStats | None,
    batches: Iterable[tuple[np.ndarray, Sequence[str] | None]],
    on_batch: Callable[[int], None] | None = None,
    **options,
) -> MetricValue:
    """One metric over streamed (media, prompts) batches; raises what compute() raises."""
    result = evaluate_many(
        [name],
        backbone=backbone,
        references={name: reference},
        batches=batches,
        on_batch=on_batch,
        options={name: options},
    )[name]
    if isinstance(result, Exception):
        raise result
    return result
