"""Reference sets: building and caching the feature statistics of a real image or video set for
one backbone, loading them back (checksum-verified), and the reference set of a task."""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction

from evaluation.backbones import frames_needed
from evaluation.models import (
    ReferenceSet,
)
from models_registry.generators.tasks import task_spec

if TYPE_CHECKING:
    pass


log = logging.getLogger(__name__)


class ReferenceSetCorrupted(Exception):
    """A cached reference statistics file no longer matches the checksum recorded for it."""


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
        frames=frames_needed(backbone),
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
