"""Services: publish samples with provenance, verify uploaded images, the provenance column.

Two files per image sample, on purpose:

- ``Sample.media`` (sample_store) is the anonymous original: pixels only, an opaque name. Battles
  serve it before the vote, so it carries no C2PA manifest, no text chunk, no EXIF and no mark.
- ``SampleProvenance.media`` is the published rendition (``sample_publish``): upscaled to at least
  256 px, invisibly watermarked with a random 63-bit id, and signed with a C2PA manifest naming
  the model, version, checkpoint sha256, prompt, seed and sampler settings. Model pages, sample
  pages and exports serve it. Clips get the C2PA manifest only (the watermark is for images).

``verify_image`` reads an uploaded image's manifest and watermark and finds the sample, even when
the metadata was stripped (through the watermark id).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Case, When

from evaluation.models import MediaKind, Sample, SamplePool, SampleProvenance, VersionProvenance
from evaluation.provenance.credentials import (
    SigningCredentials,
    configured_credentials,
    demo_credentials,
)
from evaluation.provenance.manifest import ManifestReport, read_manifest, sign_media
from evaluation.provenance.rendition import (
    UnreadableImage,
    decode_image,
    encode_png_pixels_only,
    jpeg_round_trip,
    publication_pixels,
)
from evaluation.provenance.watermark import (
    bit_accuracy,
    decode_bits,
    id_bits,
    known_watermark,
    match_ids,
    readings,
    resize_rgb,
)
from evaluation.sample_store import decode_media

log = logging.getLogger(__name__)

WATERMARK_ID_BITS = 63  # fits PostgreSQL's signed bigint; the payload's top bit is always 0
VERIFY_FORMATS = ("png", "jpeg", "webp")


# --- signing -----------------------------------------------------------------------------------


def signing_credentials() -> SigningCredentials:
    """C2PA_SIGNING_CERT + C2PA_SIGNING_KEY, else the demo chain when C2PA_DEMO_SIGNER allows it.

    ImproperlyConfigured (naming the settings) when neither: production never signs with a
    certificate nobody configured.
    """
    cert, key = settings.C2PA_SIGNING_CERT, settings.C2PA_SIGNING_KEY
    if cert or key:
        if not (cert and key):
            raise ImproperlyConfigured("set both C2PA_SIGNING_CERT and C2PA_SIGNING_KEY (PEM)")
        return configured_credentials(cert_path=cert, key_path=key)
    if not settings.C2PA_DEMO_SIGNER:
        raise ImproperlyConfigured(
            "publishing samples needs a C2PA signing certificate: set C2PA_SIGNING_CERT and "
            "C2PA_SIGNING_KEY (PEM chain and key), or C2PA_DEMO_SIGNER=1 to sign with a "
            "self-signed demo chain"
        )
    return demo_credentials(settings.C2PA_DEMO_DIR)


def trust_anchors() -> bytes:
    """The demo CA when the demo chain signs (our own reader then reports "Trusted")."""
    if settings.C2PA_SIGNING_CERT or not settings.C2PA_DEMO_SIGNER:
        return b""
    return demo_credentials(settings.C2PA_DEMO_DIR).anchor_pem


def generation_facts(sample: Sample) -> dict:
    """What the manifest asserts about how `sample` was made (JSON-able)."""
    version = sample.version
    model = version.model
    checkpoint = getattr(version, "checkpoint", None)
    sampler = dict(version.generator_config or {})
    for key in ("steps", "nfe", "dtype", "batch_size"):
        value = getattr(sample, key, None)
        if value not in (None, ""):
            sampler.setdefault(key, value)
    return {
        "sample": str(sample.public_id),
        "model": model.slug,
        "model_name": model.display_name,
        "paradigm": model.paradigm,
        "task": model.task,
        "version": version.tag,
        "checkpoint_sha256": checkpoint.sha256 if checkpoint else "",
        "prompt": sample.prompt.text,
        "seed": sample.seed,
        "sampler": sampler,
        "original_sha256": sample.sha256,
        "original_size": [sample.width, sample.height],
    }


def _new_watermark_id() -> int:
    while True:
        candidate = secrets.randbits(WATERMARK_ID_BITS)
        if not SampleProvenance.objects.filter(watermark_id=candidate).exists():
            return candidate


def _published_name(sample: Sample, digest: str, ext: str) -> str:
    # Opaque like the originals: the public id is random, the content hash follows.
    return f"published/{sample.public_id.hex}{digest[:16]}.{ext}"


def sample_publish(*, sample: Sample) -> SampleProvenance:
    """The sample's published rendition, made on first call (idempotent, safe to race).

    Images: upscaled, watermarked with a fresh id, PNG, C2PA-signed. Clips: the stored MP4,
    C2PA-signed. The manifest is read back from the signed bytes and stored with the row.
    """
    existing = SampleProvenance.objects.filter(sample=sample).first()
    if existing is not None:
        return existing
    sample = Sample.objects.select_related("version__model", "prompt").get(pk=sample.pk)
    credentials = signing_credentials()
    watermark_id = _new_watermark_id()
    if sample.media_kind == MediaKind.VIDEO:
        with sample.media.open("rb") as handle:
            data, mime, ext, watermarked = handle.read(), "video/mp4", "mp4", False
        height, width = sample.height, sample.width
    else:
        pixels = publication_pixels(decode_media(sample), watermark_id=watermark_id)
        data, mime, ext, watermarked = encode_png_pixels_only(pixels), "image/png", "png", True
        height, width = pixels.shape[:2]
    facts = generation_facts(sample)
    signed = sign_media(
        data,
        mime=mime,
        credentials=credentials,
        generation={**facts, "watermark_id": f"{watermark_id:016x}" if watermarked else ""},
        title=f"{facts['model']} {facts['version']} seed {sample.seed}",
        software_agent=f"{facts['model_name']} ({facts['model']}@{facts['version']})",
    )
    report = read_manifest(signed, trust_anchors=credentials.anchor_pem)
    digest = hashlib.sha256(signed).hexdigest()
    name = default_storage.save(_published_name(sample, digest, ext), ContentFile(signed))
    try:
        with transaction.atomic():
            return SampleProvenance.objects.create(
                sample=sample,
                watermark_id=watermark_id,
                media=name,
                sha256=digest,
                width=width,
                height=height,
                watermarked=watermarked,
                signed=True,
                demo_signer=credentials.demo,
                manifest=report.as_dict(),
            )
    except IntegrityError:
        default_storage.delete(name)
        return SampleProvenance.objects.get(sample=sample)
    except BaseException:
        default_storage.delete(name)
        raise


def publish_samples(samples) -> tuple[int, int]:
    """Publish every sample of `samples` not yet published; (published now, already)."""
    samples = list(samples)
    published = set(
        SampleProvenance.objects.filter(sample__in=samples).values_list("sample_id", flat=True)
    )
    for sample in samples:
        if sample.pk not in published:
            sample_publish(sample=sample)
    return len(samples) - len(published), len(published)


# --- verification --------------------------------------------------------------------------------


class VerifyRefused(ValueError):
    """An upload /verify does not read: too big, not an image, a format it does not take."""

    def __init__(self, field: str, message: str, status: int = 400):
        super().__init__(message)
        self.field, self.message, self.status = field, message, status


@dataclass
class Verification:
    manifest: ManifestReport
    watermark: dict = field(default_factory=dict)
    sample: Sample | None = None
    matched_by: str = ""  # "manifest" or "watermark"
    image: dict = field(default_factory=dict)  # width, height, format


def _published_sizes() -> list[tuple[int, int]]:
    return list(
        SampleProvenance.objects.filter(watermarked=True).values_list("width", "height").distinct()
    )


def _watermark_ids() -> np.ndarray:
    ids = SampleProvenance.objects.filter(watermarked=True).values_list("watermark_id", flat=True)
    return np.fromiter(ids, dtype=np.uint64)


def verify_image(*, data: bytes) -> Verification:
    """The manifest (validated), the watermark verdict and the sample behind an uploaded image.

    VerifyRefused (field "image") for an upload that is too large or not a PNG / JPEG / WebP
    Pillow decodes within VERIFY_MAX_PIXELS. The bytes are only ever decoded by Pillow and read
    by c2pa; nothing is executed or unpickled.
    """
    if not data:
        raise VerifyRefused("image", "image: the upload is empty; send a PNG, JPEG or WebP file")
    if len(data) > settings.VERIFY_MAX_BYTES:
        raise VerifyRefused(
            "image",
            f"image: {len(data)} bytes is over the limit of {settings.VERIFY_MAX_BYTES} bytes",
            status=413,
        )
    try:
        pixels, fmt = decode_image(data, max_pixels=settings.VERIFY_MAX_PIXELS)
    except UnreadableImage as exc:
        raise VerifyRefused("image", f"image: {exc}; send a PNG, JPEG or WebP file") from exc
    if fmt not in VERIFY_FORMATS:
        raise VerifyRefused(
            "image", f"image: {fmt or 'unknown'} is not accepted; send PNG, JPEG or WebP"
        )
    manifest = read_manifest(data, trust_anchors=trust_anchors())
    result = Verification(
        manifest=manifest,
        image={"width": int(pixels.shape[1]), "height": int(pixels.shape[0]), "format": fmt},
    )
    threshold = settings.WATERMARK_THRESHOLD
    bit_readings = readings(pixels, _published_sizes())
    match = match_ids(bit_readings, _watermark_ids(), threshold=threshold)
    result.watermark = {
        "detected": match.detected,
        "bit_accuracy": match.bit_accuracy,
        "threshold": threshold,
        "payload": f"{match.watermark_id:016x}" if match.detected else "",
        "read_at": list(match.size) if match.size else None,
        "readable": bool(bit_readings),
    }
    if match.detected:
        found = SampleProvenance.objects.filter(watermark_id=match.watermark_id).first()
        result.sample, result.matched_by = (found.sample if found else None), "watermark"
    public_id = manifest.generation.get("sample") if manifest.valid else None
    if result.sample is None and public_id:
        result.sample = Sample.objects.filter(public_id=public_id).first()
        result.matched_by = "manifest" if result.sample else ""
    return result


# --- the provenance column ---------------------------------------------------------------------


_SHOWCASE_FIRST = Case(When(pool=SamplePool.SHOWCASE, then=0), default=1)

# "A resize": bicubic down to 3/4 of each side, read back at the published size.
RESIZE_FACTOR = 0.75
JPEG_QUALITY = 75


def version_provenance_check(*, version_id: int, samples: int | None = None) -> VersionProvenance:
    """Check up to `samples` (PROVENANCE_CHECK_SAMPLES) image samples of a version: do its own
    outputs (the stored originals, before our signing) carry C2PA or a known public watermark,
    and does our watermark survive JPEG q75 and a resize on them (mean bit accuracy of 64)?"""
    count = samples or settings.PROVENANCE_CHECK_SAMPLES
    threshold = settings.WATERMARK_THRESHOLD
    chosen = list(
        # The showcase first (battle samples' renditions are served only once they are public,
        # but the showcase is what the column describes when there is one).
        Sample.objects.filter(version_id=version_id, media_kind=MediaKind.IMAGE)
        .select_related("version__model", "prompt")
        .order_by(_SHOWCASE_FIRST, "prompt__position", "prompt_id", "seed")[:count]
    )
    raw_c2pa = 0
    marks: dict[str, int] = {}
    per_sample = []
    for sample in chosen:
        with sample.media.open("rb") as handle:
            raw = handle.read()
        has_c2pa = read_manifest(raw).present
        raw_c2pa += has_c2pa
        original = decode_media(sample)
        mark, mark_accuracy = known_watermark(original, threshold=threshold)
        if mark:
            marks[mark] = marks.get(mark, 0) + 1
        published = sample_publish(sample=sample)
        if not published.watermarked:
            continue
        with published.media.open("rb") as handle:
            pixels, _ = decode_image(handle.read(), max_pixels=settings.VERIFY_MAX_PIXELS)
        expected = id_bits(published.watermark_id)
        height, width = pixels.shape[:2]
        small = resize_rgb(pixels, round(width * RESIZE_FACTOR), round(height * RESIZE_FACTOR))
        per_sample.append(
            {
                "sample": str(sample.public_id),
                "raw_c2pa": has_c2pa,
                "raw_watermark": mark,
                "raw_watermark_accuracy": mark_accuracy,
                "clean": bit_accuracy(decode_bits(pixels), expected),
                "jpeg75": bit_accuracy(
                    decode_bits(jpeg_round_trip(pixels, JPEG_QUALITY)), expected
                ),
                # Read back the way /verify reads: at the published size.
                "resize": bit_accuracy(decode_bits(resize_rgb(small, width, height)), expected),
            }
        )

    def mean(key: str) -> float | None:
        values = [row[key] for row in per_sample]
        return float(np.mean(values)) if values else None

    def survives(key: str) -> bool | None:  # the mark is read on every checked sample
        return all(row[key] >= threshold for row in per_sample) if per_sample else None

    jpeg, resized = mean("jpeg75"), mean("resize")
    top_mark = max(marks, key=marks.get) if marks else ""
    row, _ = VersionProvenance.objects.update_or_create(
        version_id=version_id,
        defaults=dict(
            samples_checked=len(chosen),
            raw_c2pa=raw_c2pa,
            raw_watermark=top_mark,
            raw_watermark_samples=marks.get(top_mark, 0),
            clean_bit_accuracy=mean("clean"),
            jpeg75_bit_accuracy=jpeg,
            resize_bit_accuracy=resized,
            survives_jpeg75=survives("jpeg75"),
            survives_resize=survives("resize"),
            details={
                "threshold": threshold,
                "jpeg_quality": JPEG_QUALITY,
                "resize_factor": RESIZE_FACTOR,
                "samples": per_sample,
            },
        ),
    )
    return row
