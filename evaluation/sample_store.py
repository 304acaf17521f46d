"""Services: generate a version's samples and store each one idempotently.

A sample is keyed by (version, prompt, seed). Images are stored as PNG, clips as H.264 MP4
(yuv420p, even sizes, faststart) that browsers play. Media names are opaque under `samples/`
(never the model's slug: the arena must not leak identities): a keyed hash of the natural key plus
the content hash. The file is written before its row; a worker killed in between leaves a file
that the redelivered run finds under the same name and reuses, and a row that cannot be created
deletes its own file, so neither a stray file nor a row without its file stays behind.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction

from evaluation.features.fingerprint import fingerprint
from evaluation.models import MediaKind, Prompt, PromptSet, Sample, SamplePool
from evaluation.pools import (
    generation_seeds,
    next_battle_seeds,
    pool_for_seed,
    screen_lookalikes,
)
from models_registry.checkpoint_files import local_checkpoint_directory
from models_registry.generators.measurement import GenerationStats
from models_registry.generators.tasks import task_spec
from models_registry.models import ModelVersion

log = logging.getLogger(__name__)


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of one uint8 [H, W, 3] image (lossless; pixels only: no text, EXIF or C2PA
    chunk, so battles can serve it)."""
    from evaluation.provenance.rendition import encode_png_pixels_only

    return encode_png_pixels_only(image)


def encode_mp4(clip: np.ndarray, fps: int = 8, crf: int = 12) -> bytes:
    """H.264 MP4 bytes of one uint8 [T, H, W, 3] clip (yuv420p; odd sizes padded to even by
    repeating the last row/column, since 4:2:0 chroma needs even dimensions)."""
    import av

    frames, height, width, _ = clip.shape
    pad_h, pad_w = height % 2, width % 2
    if pad_h or pad_w:
        clip = np.pad(clip, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    # faststart rewrites the file to put the index first, so ffmpeg needs a real file.
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip.mp4"
        with av.open(str(path), mode="w", options={"movflags": "+faststart"}) as container:
            stream = container.add_stream("libx264", rate=fps)
            stream.width, stream.height = width + pad_w, height + pad_h
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(crf), "preset": "medium"}
            for frame in clip:
                image = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
                for packet in stream.encode(image):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        return path.read_bytes()


# Pixels read to measure brightness / saturation: frames and pixels are subsampled evenly
# beyond this (a mean over a quarter million pixels is exact to ~0.001).
COVARIATE_MAX_PIXELS = 1 << 18


def sample_covariates(pixels: np.ndarray, generation_seconds: float | None = None) -> dict:
    """Style covariates of one sample from its uint8 [H, W, 3] or [T, H, W, 3] pixels.

    width, height, aspect_ratio (width / height), frames (clips only), generation_seconds (when
    known), brightness (mean Rec. 601 luma, 0..1) and saturation (mean HSV saturation,
    (max - min) / max per pixel, 0 for black; 0..1). Cheap: one pass of numpy over at most
    COVARIATE_MAX_PIXELS pixels.
    """
    if pixels.ndim not in (3, 4) or pixels.shape[-1] != 3:
        raise ValueError(f"pixels must be [H, W, 3] or [T, H, W, 3], got {pixels.shape}")
    clip = pixels if pixels.ndim == 4 else pixels[None]
    frames, height, width, _ = clip.shape
    out: dict = {
        "width": int(width),
        "height": int(height),
        "aspect_ratio": float(width) / float(height) if height else 0.0,
    }
    if pixels.ndim == 4:
        out["frames"] = int(frames)
    if generation_seconds is not None:
        out["generation_seconds"] = float(generation_seconds)
    if clip.size == 0:
        return out
    stride = 1
    while frames * -(-height // stride) * -(-width // stride) > COVARIATE_MAX_PIXELS and (
        stride < max(height, width)
    ):
        stride *= 2
    pick = clip[:, ::stride, ::stride]
    if pick.shape[0] * pick.shape[1] * pick.shape[2] > COVARIATE_MAX_PIXELS:
        keep = max(1, COVARIATE_MAX_PIXELS // (pick.shape[1] * pick.shape[2]))
        pick = pick[np.linspace(0, frames - 1, keep).round().astype(np.int64)]
    rgb = pick.reshape(-1, 3).astype(np.float32) / 255.0
    luma = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    high, low = rgb.max(axis=1), rgb.min(axis=1)
    saturation = np.divide(high - low, high, out=np.zeros_like(high), where=high > 0)
    out["brightness"] = round(float(luma.mean()), 6)
    out["saturation"] = round(float(saturation.mean()), 6)
    return out


def store_sample(
    *,
    version: ModelVersion,
    prompt: Prompt,
    seed: int,
    pixels: np.ndarray,
    generation_seconds: float | None,
    stats: GenerationStats | None = None,
) -> tuple[Sample, bool]:
    """Store one generated sample; returns (sample, created). An existing (version, prompt, seed)
    sample is returned unchanged, also when another worker stores it concurrently.

    pixels: uint8 [H, W, 3] (image) or [T, H, W, 3] (clip). The row's ``covariates`` are
    measured from these pixels (``sample_covariates``); ``stats`` (the generator's
    ``last_stats`` for the sample's batch) fill its device, dtype, batch size, steps, NFE and
    peak memory columns. Its pool follows from the seed (evaluation.pools); a showcase sample
    is stored withheld until the lookalike screen has compared it with the battle pool.
    """

    existing = Sample.objects.filter(version=version, prompt=prompt, seed=seed).first()
    if existing is not None:
        return existing, False
    if pixels.dtype != np.uint8 or pixels.ndim not in (3, 4) or pixels.shape[-1] != 3:
        raise ValueError(
            f"pixels must be uint8 [H, W, 3] or [T, H, W, 3], got {pixels.dtype} {pixels.shape}"
        )
    if pixels.ndim == 3:
        data, kind, ext, frames = encode_png(pixels), MediaKind.IMAGE, "png", 1
    else:
        data, kind, ext = encode_mp4(pixels, fps=settings.SAMPLE_VIDEO_FPS), MediaKind.VIDEO, "mp4"
        frames = pixels.shape[0]
    digest = hashlib.sha256(data).hexdigest()
    pool = pool_for_seed(seed)
    name = sample_media_name(
        version_id=version.pk, prompt_id=prompt.pk, seed=seed, sha256=digest, ext=ext
    )
    if not default_storage.exists(name):
        saved = default_storage.save(name, ContentFile(data))
        if saved != name:  # a concurrent writer won the name with the same bytes
            default_storage.delete(saved)
    try:
        with transaction.atomic():
            sample = Sample.objects.create(
                version=version,
                prompt=prompt,
                seed=seed,
                media=name,
                media_kind=kind,
                width=pixels.shape[-2],
                height=pixels.shape[-3],
                frames=frames,
                sha256=digest,
                generation_seconds=generation_seconds,
                covariates=sample_covariates(pixels, generation_seconds),
                pool=pool,
                withheld=pool == SamplePool.SHOWCASE,
                fingerprint=fingerprint(pixels),
                **generation_facts(stats),
            )
    except IntegrityError:
        winner = Sample.objects.get(version=version, prompt=prompt, seed=seed)
        if winner.media.name != name:
            default_storage.delete(name)
        return winner, False
    except BaseException:
        default_storage.delete(name)
        raise
    return sample, True


def generation_facts(stats: GenerationStats | None) -> dict:
    """The Sample columns of a generator's GenerationStats (none when it reported nothing)."""
    if stats is None:
        return {}
    return {
        "device_kind": stats.device_kind,
        "device_name": stats.device_name[:120],
        "dtype": stats.dtype,
        "batch_size": stats.batch_size,
        "steps": stats.steps,
        "nfe": stats.nfe,
        "peak_memory_bytes": stats.peak_memory_bytes,
        "peak_memory_kind": stats.peak_memory_kind,
    }


def prompt_source_image(prompt: Prompt) -> np.ndarray:
    """The source image uint8 [H, W, 3] an image-edit prompt edits (MediaError when it has none
    or it cannot be read)."""
    from evaluation.features.media import MediaError, read_image

    if not prompt.source_image:
        raise MediaError(f"prompt {prompt.pk} ({prompt.text!r}) has no source image to edit")
    try:
        with prompt.source_image.open("rb") as handle:
            return read_image(handle, label=prompt.source_image.name)
    except OSError as exc:
        raise MediaError(f"cannot open {prompt.source_image.name}: {exc}") from exc


def decode_media(sample: Sample) -> np.ndarray:
    """The stored pixels of a sample: uint8 [H, W, 3] (PNG) or [T, H, W, 3] (MP4)."""
    with sample.media.open("rb") as handle:
        data = handle.read()
    if sample.media_kind == MediaKind.VIDEO:
        import av

        with av.open(io.BytesIO(data)) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        return np.stack(frames) if frames else np.zeros((0, 0, 0, 3), dtype=np.uint8)
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def backfill_covariates(samples, *, overwrite: bool = False) -> tuple[int, int]:
    """Measure and save the covariates of samples stored without them (all with ``overwrite``),
    from their stored media; keeps extra keys already there. Returns (updated, failed)."""
    updated = failed = 0
    for sample in samples:
        if sample.covariates and not overwrite:
            continue
        try:
            pixels = decode_media(sample)
        except Exception as exc:  # a missing or unreadable file: report, go on
            log.warning("sample %s: cannot read its media for covariates: %s", sample.pk, exc)
            failed += 1
            continue
        measured = sample_covariates(pixels, sample.generation_seconds)
        if sample.media_kind == MediaKind.VIDEO:
            # The stored clip may be padded to even sizes; the row keeps the generated size.
            measured.update(width=sample.width, height=sample.height, frames=sample.frames)
            measured["aspect_ratio"] = sample.width / sample.height if sample.height else 0.0
        sample.covariates = {**sample.covariates, **measured}
        sample.save(update_fields=["covariates"])
        updated += 1
    return updated, failed


def sample_media_name(*, version_id: int, prompt_id: int, seed: int, sha256: str, ext: str) -> str:
    """Opaque, deterministic media name: HMAC of the natural key (keyed by SECRET_KEY) + content."""
    key = hmac.new(
        settings.SECRET_KEY.encode(),
        f"sample:{version_id}:{prompt_id}:{seed}".encode(),
        hashlib.sha256,
    ).hexdigest()[:32]
    return f"samples/{key}{sha256[:16]}.{ext}"


class GenerationFailed(RuntimeError):
    """Generation cannot go on, for a reason meant for the model's author (not retried)."""


@dataclass
class GenerationReport:
    version_id: int
    prompt_set: str
    total: int
    created: int
    existing: int
    device: str
    complete: bool = False  # every (prompt, seed) of the set has a sample now

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def checkpoint_directory(version: ModelVersion) -> Path:
    """The validated, unpacked checkpoint directory of a version (relative to MEDIA_ROOT)."""
    checkpoint = getattr(version, "checkpoint", None)
    if checkpoint is None:
        raise GenerationFailed("the version has no checkpoint; upload one first")
    if not checkpoint.unpacked_path:
        raise GenerationFailed("the checkpoint has not been validated and unpacked yet")
    return local_checkpoint_directory(folder=checkpoint.unpacked_path, key=checkpoint.sha256)


def generator_directories(version: ModelVersion) -> tuple[Path, Path | None]:
    """(pipeline folder, LoRA adapter folder or None) to load a version's generator from
    (`load_generator(directory, lora=...)`): a LoRA adapter version loads its base version's
    pipeline with its own adapter on top."""
    directory = checkpoint_directory(version)
    if version.base_version_id is None:
        return directory, None
    return checkpoint_directory(version.base_version), directory


def generator_device(device: str | None = None) -> str:
    """`device`, else GENERATOR_DEVICE, else (for "auto") CUDA when there is one, else CPU."""
    from models_registry.generators import default_device

    device = device or (None if settings.GENERATOR_DEVICE == "auto" else settings.GENERATOR_DEVICE)
    return device or default_device()


def load_version_generator(version: ModelVersion, *, device: str):
    """The version's generator on `device` (`generator_directories`); GenerationFailed (logged)
    when it has no usable checkpoint, a bad generator config or runs out of memory loading."""
    from models_registry.generators import GeneratorConfigError, load_generator

    try:
        directory, lora = generator_directories(version)
    except GenerationFailed as exc:
        raise _fail(version.pk, str(exc)) from exc
    try:
        return load_generator(
            directory, device=device, overrides=version.generator_config, lora=lora
        )
    except GeneratorConfigError as exc:
        raise _fail(version.pk, f"bad generator config: {exc}") from exc
    except Exception as exc:
        if _is_oom(exc):
            raise _fail(version.pk, f"out of memory loading the model on {device}") from exc
        raise


def _is_oom(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.cuda.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
    )


def _fail(version_id: int, reason: str) -> GenerationFailed:
    log.warning("generation of version %s failed: %s", version_id, reason)
    return GenerationFailed(reason)


def _edit_params(version_id: int, task: str, chunk: list[tuple[Prompt, int]]) -> dict:
    """`images=` (uint8 [N, H, W, 3], the prompts' source images) for an image-edit chunk."""
    from evaluation.features.media import MediaError

    if not task_spec(task).source_image:
        return {}
    try:
        return {"images": np.stack([prompt_source_image(prompt) for prompt, _ in chunk])}
    except (MediaError, ValueError) as exc:
        raise _fail(version_id, f"cannot read the source images to edit: {exc}") from exc


def generate_samples(
    *,
    version_id: int,
    prompt_set_slug: str | None = None,
    seeds: list[int] | None = None,
    prompt_ids: list[int] | None = None,
    batch_size: int | None = None,
    device: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> GenerationReport:
    """Generate the missing samples of a version for a prompt set and seeds, in batches.

    Seeds default to both pools (evaluation.pools.generation_seeds: the battle pool's, then the
    showcase's); when the set is complete, the lookalike screen runs over the version.

    Idempotent per (version, prompt, seed): what exists is skipped, so a retry or a redelivery
    resumes where the last run stopped. `progress(done, total)` is called with the samples of the
    whole set that exist. With `prompt_ids`, only those prompts are generated (one chunk of a
    Celery group that spreads a version over several gpu workers); the report says whether the
    set is complete, whichever chunk finishes last. A bad config, a wrong task or running out of
    memory at batch size 1 raises GenerationFailed with a readable reason (not retried).
    """
    from models_registry.generators import GeneratorConfigError

    version = ModelVersion.objects.select_related("model").get(pk=version_id)
    task = version.model.task
    slug = prompt_set_slug or task_spec(task).prompt_set
    prompt_set = PromptSet.objects.filter(slug=slug).first()
    if prompt_set is None:
        raise _fail(
            version_id, f"prompt set {slug!r} does not exist; run `manage.py load_prompt_sets`"
        )
    if prompt_set.task != task:
        raise _fail(version_id, f"prompt set {slug!r} is {prompt_set.task} but the model is {task}")
    seeds = generation_seeds() if seeds is None else [int(s) for s in seeds]
    prompts = list(prompt_set.prompts.order_by("position", "id"))
    done = set(
        Sample.objects.filter(
            version=version, prompt__prompt_set=prompt_set, seed__in=seeds
        ).values_list("prompt_id", "seed")
    )
    total = len(prompts) * len(seeds)
    if prompt_ids is not None:
        wanted = {int(i) for i in prompt_ids}
        prompts = [p for p in prompts if p.id in wanted]
    todo = [(p, s) for p in prompts for s in seeds if (p.id, s) not in done]
    progress = progress or (lambda _done, _total: None)
    progress(len(done), total)
    device = generator_device(device)
    report = GenerationReport(version_id, slug, total, 0, total - len(todo), device)
    if not todo:
        return _finish(report, version_id, total, prompt_set, seeds)
    generator = load_version_generator(version, device=device)
    if generator.task != task:
        raise _fail(
            version_id, f"the checkpoint generates {generator.task} but the model is {task}"
        )
    batch = max(1, batch_size or settings.GENERATOR_BATCH_SIZE)
    position = 0
    while position < len(todo):
        chunk = todo[position : position + batch]
        started = time.perf_counter()
        try:
            pixels = generator.generate(
                [p.text for p, _ in chunk],
                [s for _, s in chunk],
                **_edit_params(version_id, task, chunk),
            )
        except GeneratorConfigError as exc:
            raise _fail(version_id, f"bad generator config: {exc}") from exc
        except Exception as exc:
            if not _is_oom(exc):
                raise
            if batch == 1:
                raise _fail(
                    version_id, f"out of memory on {device} even at batch size 1: {exc}"
                ) from exc
            _release_memory()
            batch = max(1, batch // 2)  # retry the same chunk, smaller
            log.info("out of memory on %s; batch size now %d", device, batch)
            continue
        seconds = (time.perf_counter() - started) / len(chunk)
        for (prompt, seed), sample_pixels in zip(chunk, pixels, strict=True):
            _, created = store_sample(
                version=version,
                prompt=prompt,
                seed=seed,
                pixels=sample_pixels,
                generation_seconds=seconds,
                stats=generator.last_stats,
            )
            report.created += created
            report.existing += not created
            if created:
                log.info(
                    "generated sample version=%s prompt=%s seed=%s", version_id, prompt.id, seed
                )
        position += len(chunk)
        progress(_samples_done(version_id, prompt_set, seeds), total)
    return _finish(report, version_id, total, prompt_set, seeds)


def _finish(report: GenerationReport, version_id, total, prompt_set, seeds) -> GenerationReport:
    """Mark the report complete when every (prompt, seed) exists, and then screen the version
    for lookalikes (which makes its showcase public)."""
    report.complete = _set_complete(version_id, total, prompt_set, seeds)
    if report.complete:
        screen_lookalikes(version_id=version_id)
    return report


def _samples_done(version_id: int, prompt_set: PromptSet, seeds: list[int]) -> int:
    return Sample.objects.filter(
        version_id=version_id, prompt__prompt_set=prompt_set, seed__in=seeds
    ).count()


def _set_complete(version_id: int, total: int, prompt_set: PromptSet, seeds: list[int]) -> bool:
    return _samples_done(version_id, prompt_set, seeds) >= total


def _release_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def battle_pool_refill(*, version_id: int):
    """Generate fresh battle samples for a version (the next battle seeds) and screen them.
    Returns the GenerationReport, or None when the version has reached ARENA_POOL_MAX_SEEDS."""
    seeds = next_battle_seeds(version_id=version_id)
    if not seeds:
        log.warning("version %s has used every battle seed below ARENA_POOL_MAX_SEEDS", version_id)
        return None
    # The prompt set its battle pool was generated on (the task's benchmark by default).
    prompt_set = (
        Sample.objects.filter(version_id=version_id, pool=SamplePool.BATTLE)
        .values_list("prompt__prompt_set__slug", flat=True)
        .order_by("-seed")
        .first()
    )
    report = generate_samples(version_id=version_id, prompt_set_slug=prompt_set, seeds=seeds)
    screen_lookalikes(version_id=version_id)
    return report
