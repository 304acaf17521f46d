"""Metrics of a folder of images or clips (`manage.py compute_metric`): no database rows."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings

from evaluation.backbones import backbone_load, frames_needed, metric_options
from evaluation.metrics.catalogue import (
    EDIT,
    PROMPT,
    REFERENCE,
    suite_metric_spec,
)

if TYPE_CHECKING:
    pass


log = logging.getLogger(__name__)


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
    frames = frames_needed(backbone)
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
