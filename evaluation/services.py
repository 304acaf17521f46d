"""The metric service: a version's metrics computed on its battle pool, stored idempotently as
MetricResult rows with their reproducibility manifests.

Heavy imports (torch, open_clip, the backbones) stay inside the functions so that importing
this module (web process, worker start-up) is cheap."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from evaluation.backbones import (
    backbone_load,
    frames_needed,
    metric_options,
    metrics_device,
)
from evaluation.metrics.catalogue import (
    EDIT,
    REFERENCE,
    default_metrics_for_task,
    metric_spec,
    suite_metric_spec,
    task_metric_problems,
)
from evaluation.models import (
    MediaKind,
    MetricResult,
    MetricStatus,
    Sample,
    SamplePool,
)
from evaluation.reference_sets import (
    reference_set_for_task,
    reference_slug_for_task,
    reference_stats_load,
)
from models_registry.generators.tasks import task_spec
from models_registry.models import ModelVersion

if TYPE_CHECKING:
    import numpy as np

    from evaluation.metrics.edit import EditPrompts


log = logging.getLogger(__name__)


def metric_result_store(
    *,
    version: ModelVersion,
    metric: str,
    backbone: str,
    reference: str = "",
    status: str = MetricStatus.OK,
    value: float | None = None,
    lower: float | None = None,
    upper: float | None = None,
    n: int = 0,
    weights_sha256: str = "",
    weights_custom: bool = False,
    message: str = "",
    details: dict | None = None,
    manifest: dict | None = None,
) -> MetricResult:
    """Create or replace the result keyed by (version, metric, backbone, reference); `manifest`
    is its reproducibility manifest (evaluation.provenance.reproducibility)."""
    metric_spec(metric)  # ValueError naming the catalogue's metrics
    if status == MetricStatus.OK and value is None:
        raise ValueError("an ok metric result needs a value")
    row, _ = MetricResult.objects.update_or_create(
        version=version,
        metric=metric,
        backbone=backbone,
        reference=reference,
        defaults=dict(
            status=status,
            value=value,
            lower=lower,
            upper=upper,
            n=n,
            weights_sha256=weights_sha256,
            weights_custom=weights_custom,
            message=message[:4000],
            details=details or {},
            manifest=manifest or {},
        ),
    )
    return row


def _sample_batches(
    samples: Sequence[Sample],
    *,
    kind: str,
    batch_size: int,
    frames: int | None,
    purpose: str,
    edit: bool = False,
) -> Iterator[tuple[object, list[str]]]:
    """(media batch, prompts) of `samples`; with `edit`, the prompts are `EditPrompts` (target
    captions with each edit's source image, source caption and the oracle's edit mask)."""
    from evaluation.features.media import batch_arrays, read_image, read_video

    reader = read_video if kind == MediaKind.VIDEO else read_image

    def items():
        for sample in samples:
            with sample.media.open("rb") as handle:
                yield sample.media.name, reader(handle, label=sample.media.name)

    prompts = [sample.prompt.text for sample in samples]
    for i, batch in enumerate(
        batch_arrays(items(), batch_size, kind=kind, frames=frames, purpose=purpose)
    ):
        start = i * batch_size
        if edit:
            yield batch, _edit_prompts(samples[start : start + len(batch)], batch)
        else:
            yield batch, prompts[start : start + len(batch)]


def _edit_prompts(samples: Sequence[Sample], edits: np.ndarray) -> EditPrompts:
    """The EditPrompts of a batch of edited samples (their prompts' source images resized to
    the edits' size). MediaError names a prompt without a source or target."""
    import numpy as np

    from evaluation.features.media import MediaError
    from evaluation.features.resize import resize_images
    from evaluation.metrics.edit import EditPrompts
    from evaluation.sample_store import prompt_source_image
    from models_registry.generators.synthetic import edit_region

    side = edits.shape[1]
    sources, masks = [], []
    for sample in samples:
        prompt = sample.prompt
        if not (prompt.source_text and prompt.target_text):
            raise MediaError(
                f"prompt {prompt.pk} ({prompt.text!r}) has no source and target captions: the "
                "edit metrics need the oracle's scenes"
            )
        sources.append(resize_images(prompt_source_image(prompt)[None], side)[0])
        try:
            masks.append(edit_region(prompt.source_text, prompt.target_text, resolution=side))
        except ValueError as exc:
            raise MediaError(f"prompt {prompt.pk}: {exc}") from exc
    return EditPrompts(
        [sample.prompt.target_text for sample in samples],
        sources=np.stack(sources),
        source_captions=[sample.prompt.source_text for sample in samples],
        masks=np.stack(masks),
    )


def task_metric_names(task: str) -> list[str]:
    """The metrics computed for `task`: METRICS_<TASK> when set, else the catalogue's defaults."""
    configured = settings.METRICS_BY_TASK.get(task)
    if configured is None:
        return list(default_metrics_for_task(task))
    problems = task_metric_problems(task, configured)
    if problems:
        raise ImproperlyConfigured("; ".join(problems))
    return list(configured)


def version_metrics_compute(
    *, version_id: int, progress: Callable[[int, int], None] | None = None
) -> list[MetricResult]:
    """Evaluate a version's samples with its task's metrics and store one row per metric.

    Metrics whose backbone weights are missing or refused get `unavailable` rows with the
    message; metrics that cannot be computed from these samples (too few, too short videos,
    unreadable files) get `failed` rows. Re-running replaces the rows (idempotent).
    `progress(done, total)` counts metrics finished.
    """
    from evaluation.features.registry import backbone_name
    from evaluation.features.weights import WeightsRejected, WeightsUnavailable
    from evaluation.metrics.prompt_agreement import NoCheckablePrompts
    from evaluation.provenance.reproducibility import library_versions

    version = ModelVersion.objects.select_related("model").get(pk=version_id)
    task = version.model.task
    names = task_metric_names(task)
    progress = progress or (lambda _done, _total: None)
    progress(0, len(names))  # every metric is redone
    samples = list(
        # The battle pool: the samples raters judge (evaluation.pools says which pool each
        # score reads).
        Sample.objects.filter(version=version, pool=SamplePool.BATTLE)
        .select_related("prompt")
        .order_by("prompt", "seed")
    )
    kind = task_spec(task).media
    results: list[MetricResult] = []
    by_backbone: dict[str, list[str]] = {}
    for name in names:
        by_backbone.setdefault(suite_metric_spec(name).backbone, []).append(name)
    for key, group in by_backbone.items():
        model_name = settings.CLIP_MODEL_NAME if key == "clip" else None
        try:
            if key == "checker":
                _check_checkable_prompts(samples, edit=task_spec(task).source_image)
            backbone = backbone_load(key=key)
        except (WeightsUnavailable, WeightsRejected, NoCheckablePrompts) as exc:
            for name in group:
                results.append(
                    metric_result_store(
                        version=version,
                        metric=name,
                        backbone=backbone_name(key, model_name),
                        status=MetricStatus.UNAVAILABLE,
                        message=str(exc),
                        manifest={"libraries": library_versions(), "computed": False},
                    )
                )
                progress(len(results), len(names))
            continue
        results.extend(_compute_group(version, task, kind, group, backbone, samples))
        progress(len(results), len(names))
    return results


def _check_checkable_prompts(samples: Sequence[Sample], *, edit: bool = False) -> None:
    """NoCheckablePrompts unless some sample's prompt (an edit's: its target caption) is a
    caption of the synthetic domain (the checker scores only those; a version without any gets
    an `unavailable` prompt_agreement / edit_accuracy)."""
    from evaluation.metrics.prompt_agreement import no_checkable_prompts
    from models_registry.generators.quality import parse_prompt

    def text(sample: Sample) -> str:
        return sample.prompt.target_text if edit else sample.prompt.text

    if samples and not any(parse_prompt(text(sample)) for sample in samples):
        raise no_checkable_prompts(
            len(samples), metric="edit_accuracy" if edit else "prompt_agreement"
        )


def _compute_group(version, task, kind, names, backbone, samples) -> list[MetricResult]:
    from evaluation.features.media import MediaError
    from evaluation.metrics.suite import evaluate_many

    needs_reference = [n for n in names if metric_spec(n).kind == REFERENCE]
    slug = reference_slug_for_task(task) if needs_reference else ""
    ids = dict(
        version=version,
        backbone=backbone.name,
        weights_sha256=backbone.weights_sha256,
        weights_custom=backbone.custom,
        manifest=metric_manifest(backbone=backbone, samples=samples),
    )
    if backbone.modality == "video" and kind != MediaKind.VIDEO:
        return [
            metric_result_store(
                metric=n,
                reference=slug,
                status=MetricStatus.FAILED,
                message=f"{n} applies to videos only",
                **ids,
            )
            for n in names
        ]
    frames = frames_needed(backbone)
    try:
        if not samples:
            raise MediaError(f"version {version} has no samples to evaluate")
        reference_stats = None
        if needs_reference:
            reference_set = reference_set_for_task(task=task, backbone=backbone)
            reference_stats = reference_stats_load(reference_set=reference_set)
            ids["manifest"] = {**ids["manifest"], "reference": _reference_entry(reference_set)}
        values = evaluate_many(
            names,
            backbone=backbone,
            references={n: reference_stats for n in needs_reference},
            batches=_sample_batches(
                samples,
                kind=kind,
                batch_size=settings.METRICS_BATCH_SIZE,
                frames=frames,
                purpose=backbone.name,
                edit=any(metric_spec(n).kind == EDIT for n in names),
            ),
            options={n: metric_options(n) for n in names},
        )
    except MediaError as exc:
        return [
            metric_result_store(
                metric=n,
                reference=slug if n in needs_reference else "",
                status=MetricStatus.FAILED,
                message=str(exc),
                **ids,
            )
            for n in names
        ]
    rows = []
    for name, value in values.items():
        reference = slug if name in needs_reference else ""
        if isinstance(value, Exception):
            rows.append(
                metric_result_store(
                    metric=name,
                    reference=reference,
                    status=MetricStatus.FAILED,
                    message=str(value),
                    **ids,
                )
            )
            continue
        manifest = ids["manifest"] if reference else {**ids["manifest"], "reference": {}}
        manifest = {
            **manifest,
            "seeds": {**manifest["seeds"], "estimator_seed": _estimator_seed(value.details)},
            "options": _json_safe(metric_options(name)),
        }
        rows.append(
            metric_result_store(
                metric=name,
                reference=reference,
                value=value.value,
                lower=value.lower,
                upper=value.upper,
                n=value.n,
                details=_json_safe(value.details),
                **{**ids, "manifest": manifest},
            )
        )
    return rows


def _estimator_seed(details: dict) -> int | None:
    """The seed the estimator drew subsets / bootstrap replicates with (KID, CMMD), if any."""
    seed = details.get("seed")
    return seed if isinstance(seed, int) else None


def metric_manifest(*, backbone, samples: Sequence[Sample]) -> dict:
    """The reproducibility manifest of metrics computed by `backbone` on `samples`, with no
    reference (see `_reference_entry`): evaluation.provenance.reproducibility."""
    from evaluation.features.registry import BACKBONES
    from evaluation.provenance.reproducibility import reproducibility_manifest

    resize_mode = getattr(backbone, "resize_mode", "") or next(
        (spec.resize_mode for spec in BACKBONES.values() if spec.modality == backbone.modality),
        "native resolution (the metric reads the generated pixels)",
    )
    dtype = "float32"  # the features every backbone returns
    for attribute in ("network", "model"):
        module = getattr(backbone, attribute, None)
        parameters = getattr(module, "parameters", None)
        first = next(iter(parameters()), None) if callable(parameters) else None
        if first is not None:
            dtype = str(first.dtype).removeprefix("torch.")
            break
    digest = hashlib.sha256("\n".join(s.sha256 for s in samples).encode()).hexdigest()
    return reproducibility_manifest(
        backbone=backbone.name,
        weights_sha256=backbone.weights_sha256 or "",
        resize_mode=resize_mode,
        dtype=dtype,
        device=str(getattr(backbone, "device", None) or metrics_device()),
        batch_size=settings.METRICS_BATCH_SIZE,
        seeds={"sample_seeds": sorted({s.seed for s in samples})},
        reference={},
        samples={"n": len(samples), "sha256": digest},
        options={},
    )


def _reference_entry(reference_set) -> dict:
    """A ReferenceSet as the manifest's "reference" entry."""
    return {
        "slug": reference_set.slug,
        "n": reference_set.n,
        "stats_sha256": reference_set.stats_sha256,
        "source": reference_set.source_path,
    }


def _json_safe(details: dict) -> dict:
    return {
        k: (v if isinstance(v, (str, int, float, bool)) or v is None else str(v))
        for k, v in details.items()
    }
