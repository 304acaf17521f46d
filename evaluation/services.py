"""Evaluation writes and multi-step operations: reference sets, metric results, version metrics.

Heavy imports (torch, open_clip, the backbones) stay inside the functions so that importing
this module (web process, worker start-up) is cheap.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction

from evaluation.metrics.catalogue import (
    EDIT,
    PROMPT,
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
    ReferenceSet,
    Sample,
    SamplePool,
)
from models_registry.generators.tasks import task_spec
from models_registry.models import ModelVersion

if TYPE_CHECKING:
    import numpy as np

    from evaluation.metrics.edit import EditPrompts

log = logging.getLogger(__name__)


class ReferenceSetCorrupted(Exception):
    """A cached reference statistics file no longer matches the checksum recorded for it."""


# --- backbones ---------------------------------------------------------------------------------


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


# --- reference sets ----------------------------------------------------------------------------


def _synthetic_media(*, task: str, n: int, seed: int) -> tuple[str, Iterator[tuple[str, object]]]:
    from models_registry.generators.synthetic import render_image_dataset, render_video_dataset

    size = settings.METRICS_SYNTHETIC_RESOLUTION
    kind = task_spec(task).media
    if kind == "video":
        media, _, _ = render_video_dataset(n, seed, size=size, frames=settings.METRICS_FVD_FRAMES)
    else:
        media, _, _ = render_image_dataset(n, seed, size=size)
    return kind, ((f"synthetic #{i}", item) for i, item in enumerate(media))


def _folder_media(*, folder: Path, task: str) -> tuple[str, Iterator[tuple[str, object]]]:
    from evaluation.features.media import list_media, read_image, read_video

    kind = task_spec(task).media
    reader = read_video if kind == "video" else read_image
    paths = list_media(folder, kind)
    return kind, ((p.name, reader(p)) for p in paths)


def _frames_needed(backbone) -> int | None:
    return settings.METRICS_FVD_FRAMES if backbone.modality == "video" else None


def reference_set_build(
    *,
    task: str,
    backbone,
    slug: str,
    folder: Path | None = None,
    synthetic: int | None = None,
    seed: int | None = None,
    batch_size: int | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> ReferenceSet:
    """Compute and cache reference statistics of real media for `backbone` (idempotent).

    Source: `folder` (PNG/JPEG or MP4) or `synthetic` renders of the benchmark dataset. An
    existing set with the same (slug, backbone, weights sha256) is verified and returned. The
    .npz is written to storage first and removed again if the row cannot be created.
    """
    from evaluation.features.media import batch_arrays
    from evaluation.metrics.suite import reference_from_media

    existing = ReferenceSet.objects.filter(
        slug=slug, backbone=backbone.name, weights_sha256=backbone.weights_sha256
    ).first()
    if existing is not None:
        reference_stats_load(reference_set=existing)
        return existing
    if (folder is None) == (synthetic is None):
        raise ValueError("give exactly one source: a folder or a number of synthetic renders")
    if folder is not None:
        kind, items = _folder_media(folder=Path(folder), task=task)
        source = str(Path(folder).resolve())
    else:
        seed = settings.METRICS_SYNTHETIC_REFERENCE_SEED if seed is None else seed
        kind, items = _synthetic_media(task=task, n=synthetic, seed=seed)
        source = f"synthetic:{synthetic}:seed={seed}:size={settings.METRICS_SYNTHETIC_RESOLUTION}"
    batches = batch_arrays(
        items,
        batch_size or settings.METRICS_BATCH_SIZE,
        kind=kind,
        frames=_frames_needed(backbone),
        purpose=f"the {backbone.name} reference set",
    )
    stats = reference_from_media(backbone, batches, on_batch=on_batch)
    buffer = io.BytesIO()
    stats.save(buffer)
    payload = buffer.getvalue()
    digest = hashlib.sha256(payload).hexdigest()
    name = default_storage.save(
        f"reference_stats/{slug}-{backbone.name.replace(':', '_')}-{digest[:12]}.npz",
        ContentFile(payload),
    )
    try:
        with transaction.atomic():
            return ReferenceSet.objects.create(
                slug=slug,
                task=task,
                backbone=backbone.name,
                weights_sha256=backbone.weights_sha256,
                source_path=source[:500],
                stats_file=name,
                stats_sha256=digest,
                n=stats.n,
            )
    except IntegrityError:
        # Another worker built the same set meanwhile: keep theirs, drop our file.
        default_storage.delete(name)
        return ReferenceSet.objects.get(
            slug=slug, backbone=backbone.name, weights_sha256=backbone.weights_sha256
        )
    except Exception:
        default_storage.delete(name)
        raise


def reference_stats_load(*, reference_set: ReferenceSet):
    """The set's ReferenceStats after checking the file against its recorded sha256."""
    from evaluation.metrics.reference import ReferenceStats

    with reference_set.stats_file.open("rb") as handle:
        payload = handle.read()
    digest = hashlib.sha256(payload).hexdigest()
    if digest != reference_set.stats_sha256:
        raise ReferenceSetCorrupted(
            f"reference set {reference_set.slug} [{reference_set.backbone}]: stats file "
            f"{reference_set.stats_file.name} has sha256 {digest}, expected "
            f"{reference_set.stats_sha256}; delete the set and build it again"
        )
    stats = ReferenceStats.load(io.BytesIO(payload))
    stats.check_backbone(reference_set.backbone, reference_set.weights_sha256)
    return stats


def reference_slug_for_task(task: str) -> str:
    """The configured reference source of a task, as a slug (folder hash or synthetic spec)."""
    folder = settings.METRICS_REFERENCE_DIRS.get(task)
    if folder:
        tag = hashlib.sha256(str(Path(folder).resolve()).encode()).hexdigest()[:10]
        return f"{task}-dir-{tag}"
    return (
        f"{task}-synthetic-{settings.METRICS_SYNTHETIC_REFERENCE_SIZE}"
        f"-s{settings.METRICS_SYNTHETIC_REFERENCE_SEED}-r{settings.METRICS_SYNTHETIC_RESOLUTION}"
    )


def reference_set_for_task(*, task: str, backbone) -> ReferenceSet:
    """The task's configured reference set for `backbone`, built on first use."""
    folder = settings.METRICS_REFERENCE_DIRS.get(task)
    return reference_set_build(
        task=task,
        backbone=backbone,
        slug=reference_slug_for_task(task),
        folder=folder,
        synthetic=None if folder else settings.METRICS_SYNTHETIC_REFERENCE_SIZE,
    )


# --- metric results ----------------------------------------------------------------------------


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
    frames = _frames_needed(backbone)
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


# --- folders (compute_metric) --------------------------------------------------------------------


def read_prompts(*, prompts_file: Path, files: Sequence[Path]) -> list[str]:
    """One prompt per file: a .json {file name: prompt} or a text file, one line per file in
    sorted file-name order."""
    import json

    from evaluation.features.media import MediaError

    path = Path(prompts_file)
    if not path.is_file():
        raise MediaError(f"prompts file {path} does not exist")
    if path.suffix.lower() == ".json":
        try:
            mapping = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise MediaError(f"prompts file {path} is not valid JSON: {exc}") from exc
        if not isinstance(mapping, dict):
            raise MediaError(f"prompts file {path} must be a JSON object {{file name: prompt}}")
        missing = [f.name for f in files if f.name not in mapping]
        if missing:
            raise MediaError(f"prompts file {path} has no prompt for {', '.join(missing[:5])}")
        return [str(mapping[f.name]) for f in files]
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(lines) != len(files):
        raise MediaError(
            f"prompts file {path} has {len(lines)} prompts for {len(files)} files; give one line "
            "per file in sorted file-name order, or a JSON object {file name: prompt}"
        )
    return lines


def folder_metric_compute(
    *,
    metric: str,
    fake: Path,
    real: Path | None = None,
    prompts_file: Path | None = None,
    weights_path: Path | None = None,
    allow_custom: bool | None = None,
    batch_size: int | None = None,
    device: str | None = None,
    progress: Callable[[str, int], Callable[[int], None]] | None = None,
):
    """A metric (MetricValue) of a folder of generated media against real media.

    `real` is a folder of PNG/JPEG/MP4 or a reference .npz written by build_reference_set (not
    needed for clip_score, which needs `prompts_file`). `progress(label, total)` returns a
    callback taking the number of items just processed. Raises MediaError, WeightsUnavailable,
    WeightsRejected or ValueError with a message for the user.
    """
    from evaluation.features.media import MediaError, batches
    from evaluation.metrics.reference import ReferenceStats
    from evaluation.metrics.suite import evaluate, reference_from_media

    spec = suite_metric_spec(metric)
    if spec.kind == EDIT:
        raise MediaError(
            f"{metric} compares each edit with its source image and the oracle's edit region: "
            "it is computed by the metrics stage of an image-edit version, not on a folder"
        )
    fake_files = _media_files(Path(fake), spec.media)
    kind = "video" if fake_files[0].suffix.lower() == ".mp4" else "image"
    prompts = None
    if spec.kind == PROMPT:
        if prompts_file is None:
            raise MediaError(f"{metric} needs --prompts FILE (one prompt per generated file)")
        prompts = read_prompts(prompts_file=prompts_file, files=fake_files)
    elif real is None:
        raise MediaError(f"{metric} needs --real (a folder of real media or a reference .npz)")
    backbone = backbone_load(
        key=spec.backbone, weights_path=weights_path, allow_custom=allow_custom, device=device
    )
    size = batch_size or settings.METRICS_BATCH_SIZE
    frames = _frames_needed(backbone)
    purpose = f"{metric} ({backbone.name})"
    progress = progress or (lambda _label, _total: None)
    reference = None
    if spec.kind == REFERENCE:
        real = Path(real)
        if real.is_file() and real.suffix == ".npz":
            reference = ReferenceStats.load(real)
        else:
            real_files = _media_files(real, "video" if kind == "video" else "image")
            reference = reference_from_media(
                backbone,
                batches(real_files, size, kind=kind, frames=frames, purpose=purpose),
                on_batch=progress("real", len(real_files)),
            )

    def fake_batches():
        start = 0
        for batch in batches(fake_files, size, kind=kind, frames=frames, purpose=purpose):
            yield batch, (prompts[start : start + len(batch)] if prompts else None)
            start += len(batch)

    return evaluate(
        metric,
        backbone=backbone,
        reference=reference,
        batches=fake_batches(),
        on_batch=progress("generated", len(fake_files)),
        **metric_options(metric),
    )


def _media_files(folder: Path, media: str) -> list[Path]:
    from evaluation.features.media import MediaError, list_media

    if media != "any":
        return list_media(folder, media)
    try:
        return list_media(folder, "image")
    except MediaError:
        try:
            return list_media(folder, "video")
        except MediaError:
            raise MediaError(
                f"{folder} contains no images (.png, .jpg, .jpeg) or videos (.mp4)"
            ) from None


# --- the demo's own CLIP --------------------------------------------------------------------

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
