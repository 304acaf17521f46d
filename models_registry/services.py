"""Registry writes: models, versions, API tokens, chunked uploads, checkpoint validation.

Every state change of the submission flow goes through one function here; the API, the admin,
management commands and the validation task call these and nothing else.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
import secrets
from dataclasses import dataclass
from typing import IO, Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.text import get_valid_filename

from models_registry import selectors, signals
from models_registry.authentication import hash_token_key
from models_registry.checkpoint_files import local_checkpoint_directory
from models_registry.checkpoint_validation import (
    PICKLE_SUFFIXES,
    ArchiveLimits,
    CheckpointRejected,
    check_overrides,
    diffusers_generator_config,
    lora_generator_config,
    native_generator_config,
    validate_archive,
)
from models_registry.models import (
    ApiToken,
    Checkpoint,
    CheckpointFormat,
    GenerativeModel,
    ModelVersion,
    Upload,
    UploadStatus,
    VersionStatus,
    Visibility,
)

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
UPLOADS_DIR = "checkpoints/uploads"
UNPACKED_DIR = "checkpoints/unpacked"
# Statuses from which a (new) checkpoint upload may start.
UPLOADABLE = (VersionStatus.DRAFT, VersionStatus.REJECTED)


class RegistryError(Exception):
    """A user-caused error; ``status_code`` is the HTTP status the API answers with."""

    status_code = 400

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra


class NotAllowed(RegistryError):
    status_code = 409


class UploadOffsetConflict(RegistryError):
    """A chunk that does not start at the next expected byte (out of order or overlapping)."""

    status_code = 409


class RangeNotSatisfiable(RegistryError):
    status_code = 416


class TooLarge(RegistryError):
    status_code = 413


# --- API tokens --------------------------------------------------------------------------------


def api_token_create(*, user, name: str = "") -> tuple[ApiToken, str]:
    """Issue a token for ``user``; returns (row, key). Only the key's sha256 is stored."""
    # A recognisable prefix (secret scanners) that also never starts with "-" (command lines).
    key = f"gva_{secrets.token_urlsafe(32)}"
    token = ApiToken.objects.create(
        user=user, name=name, prefix=key[:8], key_hash=hash_token_key(key)
    )
    return token, key


# --- models and versions -------------------------------------------------------------------------

MODEL_UPDATABLE = ("display_name", "paradigm", "license", "description", "homepage", "visibility")


def model_create(
    *,
    owner,
    slug: str,
    display_name: str,
    task: str,
    paradigm: str,
    license: str = "",
    description: str = "",
    homepage: str = "",
    visibility: str = Visibility.PRIVATE,
) -> GenerativeModel:
    model = GenerativeModel(
        owner=owner,
        slug=slug,
        display_name=display_name,
        task=task,
        paradigm=paradigm,
        license=license,
        description=description,
        homepage=homepage,
        visibility=visibility,
    )
    model.full_clean()
    model.save()
    return model


def model_update(*, model: GenerativeModel, data: dict[str, Any]) -> GenerativeModel:
    """Update the editable fields (slug and task are fixed once versions may reference them)."""
    unknown = set(data) - set(MODEL_UPDATABLE)
    if unknown:
        raise RegistryError(f"cannot change {', '.join(sorted(unknown))} of a model")
    for key, value in data.items():
        setattr(model, key, value)
    model.full_clean()
    model.save()
    return model


def _clean_overrides(generator_config: Any, *, lora: bool = False) -> dict:
    try:
        overrides = check_overrides(generator_config or {})
    except CheckpointRejected as exc:
        raise RegistryError(str(exc), field="generator_config") from exc
    if "lora_scale" in overrides and not lora:
        raise RegistryError(
            "generator_config.lora_scale applies only to a LoRA adapter version (one created "
            "with base_version)",
            field="generator_config",
        )
    return overrides


# A base version's statuses once its checkpoint passed validation.
VALIDATED = (
    VersionStatus.READY,
    VersionStatus.GENERATING,
    VersionStatus.EVALUATING,
    VersionStatus.PUBLISHED,
)


def lora_base_resolve(*, model: GenerativeModel, reference: str | int) -> ModelVersion:
    """The diffusers version a LoRA version of ``model`` loads onto: ``reference`` is its id or
    ``"<model-slug>@<tag>"``; it must be visible to the model's owner, validated, a diffusers
    pipeline and of the same task."""
    ref = str(reference).strip()
    versions = selectors.visible_versions(user=model.owner)
    if ref.isascii() and ref.isdigit():
        # Beyond a bigint no row can match (and the database would refuse the number).
        base = versions.filter(pk=int(ref)).first() if len(ref) < 19 else None
    elif "@" in ref:
        slug, tag = ref.split("@", 1)
        base = versions.filter(model__slug=slug, tag=tag).first()
    else:
        raise RegistryError(
            f"base_version must be a version id or '<model-slug>@<tag>', got {ref!r}",
            field="base_version",
        )
    if base is None:
        raise RegistryError(
            f"base_version {ref!r}: no such version among the models you can see",
            field="base_version",
        )
    if base.model.task != model.task:
        raise RegistryError(
            f"base_version {base} generates {base.model.task} but {model.slug!r} is {model.task}",
            field="base_version",
        )
    checkpoint = Checkpoint.objects.filter(version=base).first()
    if base.status not in VALIDATED or checkpoint is None:
        raise RegistryError(
            f"base_version {base} is {base.status}; only a validated version can be a base",
            field="base_version",
        )
    if checkpoint.format != CheckpointFormat.DIFFUSERS:
        raise RegistryError(
            f"base_version {base} is a {checkpoint.format} checkpoint; LoRA adapters load onto "
            "diffusers pipelines only",
            field="base_version",
        )
    return base


def version_create(
    *,
    model: GenerativeModel,
    tag: str,
    generator_config: dict | None = None,
    base_version: str | int | None = None,
) -> ModelVersion:
    """A new draft version; ``generator_config`` may set resolution, frames, sampler and the
    diffusers runtime options. With ``base_version`` (an id or ``"<model-slug>@<tag>"``) the
    version is a LoRA adapter on that diffusers version: its upload holds only
    ``pytorch_lora_weights.safetensors``."""
    if model.versions.filter(tag=tag).exists():
        raise NotAllowed(f"model {model.slug!r} already has a version tagged {tag!r}", field="tag")
    base = None if base_version is None else lora_base_resolve(model=model, reference=base_version)
    return ModelVersion.objects.create(
        model=model,
        tag=tag,
        generator_config=_clean_overrides(generator_config, lora=base is not None),
        base_version=base,
    )


def version_update(
    *, version: ModelVersion, tag: str | None = None, generator_config: dict | None = None
) -> ModelVersion:
    if tag is not None and tag != version.tag:
        if version.model.versions.filter(tag=tag).exclude(pk=version.pk).exists():
            raise NotAllowed(f"a version tagged {tag!r} already exists", field="tag")
        version.tag = tag
    if generator_config is not None:
        if version.status not in (*UPLOADABLE, VersionStatus.UPLOADING):
            raise NotAllowed(
                f"generator_config is fixed once the checkpoint is {version.status}",
                field="generator_config",
            )
        version.generator_config = _clean_overrides(
            generator_config, lora=version.base_version_id is not None
        )
    version.save()
    return version


def version_approve_for_arena(*, version: ModelVersion, approver) -> ModelVersion:
    """Staff approval for the public arena (only a validated version of a non-private model)."""
    if version.status in (
        VersionStatus.DRAFT,
        VersionStatus.UPLOADING,
        VersionStatus.VALIDATING,
        VersionStatus.REJECTED,
        VersionStatus.FAILED,
    ):
        raise NotAllowed(f"{version} is {version.status}; only validated versions can be approved")
    if version.model.visibility == Visibility.PRIVATE:
        raise NotAllowed(f"{version.model} is private; make it public before approving it")
    version.arena_approved = True
    version.approved_by = approver
    version.save(update_fields=["arena_approved", "approved_by", "updated_at"])
    signals.arena_approved.send(sender=ModelVersion, version_id=version.pk)
    version.refresh_from_db()
    return version


def version_revoke_arena(*, version: ModelVersion) -> ModelVersion:
    version.arena_approved = False
    version.approved_by = None
    version.save(update_fields=["arena_approved", "approved_by", "updated_at"])
    return version


# --- uploads -------------------------------------------------------------------------------------


def user_storage_usage_bytes(*, user) -> int:
    """Bytes counted against the user's quota: every open or finalized upload (declared size)."""
    total = Upload.objects.filter(
        owner=user, status__in=[UploadStatus.OPEN, UploadStatus.FINALIZED]
    ).aggregate(total=Sum("total_size"))["total"]
    return int(total or 0)


def _check_filename(filename: str) -> str:
    lower = filename.lower()
    if lower.endswith(PICKLE_SUFFIXES):
        raise RegistryError(
            f"{filename!r} is a pickle-based checkpoint; it would have to be unpickled to load. "
            "Convert it to .safetensors and upload a .zip/.tar of the model folder",
            field="filename",
        )
    if not lower.endswith(ARCHIVE_SUFFIXES):
        raise RegistryError(
            f"filename must end with one of {', '.join(ARCHIVE_SUFFIXES)}; pack config.json + "
            "model.safetensors or a diffusers pipeline folder into one archive",
            field="filename",
        )
    return get_valid_filename(posixpath.basename(filename.replace("\\", "/"))) or "checkpoint"


def upload_start(*, version: ModelVersion, user, filename: str, total_size: int) -> Upload:
    """Open a resumable upload of ``total_size`` bytes for ``version`` (owner only).

    Checks the archive name, the per-checkpoint limit and the per-user quota, creates an empty
    file in storage and moves the version to ``uploading``.
    """
    safe_name = _check_filename(filename)
    if total_size <= 0:
        raise RegistryError("total_size must be a positive number of bytes", field="total_size")
    if total_size > settings.UPLOAD_MAX_CHECKPOINT_BYTES:
        raise TooLarge(
            f"total_size {total_size} is over the {settings.UPLOAD_MAX_CHECKPOINT_BYTES}-byte "
            "limit for one checkpoint",
            field="total_size",
        )
    with transaction.atomic():
        # Lock the user row so that concurrent starts cannot both squeeze under the quota.
        get_user_model().objects.select_for_update().get(pk=user.pk)
        version = ModelVersion.objects.select_for_update().get(pk=version.pk)
        open_upload = version.uploads.filter(status=UploadStatus.OPEN).first()
        if open_upload is not None:
            raise NotAllowed(
                f"version already has open upload {open_upload.pk} at offset "
                f"{open_upload.received}; resume it or abort it with DELETE",
                upload_id=open_upload.pk,
                offset=open_upload.received,
            )
        if version.status not in UPLOADABLE:
            raise NotAllowed(
                f"version {version.tag!r} is {version.status}; a checkpoint can only be uploaded "
                "to a draft or rejected version (create a new version instead)"
            )
        used = user_storage_usage_bytes(user=user)
        quota = settings.UPLOAD_USER_QUOTA_BYTES
        if used + total_size > quota:
            raise TooLarge(
                f"upload of {total_size} bytes would exceed your quota: {used} of {quota} bytes "
                "already used",
                field="total_size",
            )
        upload = Upload.objects.create(
            version=version, owner=user, filename=safe_name, total_size=total_size
        )
        upload.storage_name = f"{UPLOADS_DIR}/{upload.pk}/{safe_name}"
        upload.save(update_fields=["storage_name"])
        version_status_change(version=version, status=VersionStatus.UPLOADING)
    return upload


def upload_write_chunk(
    *,
    upload: Upload,
    start: int,
    end: int,
    total: int,
    stream: IO[bytes],
    content_length: int | None = None,
) -> Upload:
    """Append bytes ``start..end`` (inclusive) of a ``total``-byte upload, read from ``stream``.

    The chunk must start exactly at the next expected offset (``upload.received``); it is
    streamed to storage in small buffers, so memory does not grow with the chunk size.
    """
    if upload.status != UploadStatus.OPEN:
        raise NotAllowed(f"upload {upload.pk} is {upload.status}; it takes no more chunks")
    if total != upload.total_size:
        raise RangeNotSatisfiable(
            f"Content-Range total {total} does not match the upload's total_size "
            f"{upload.total_size}",
            offset=upload.received,
        )
    if not 0 <= start <= end < total:
        raise RangeNotSatisfiable(
            f"Content-Range bytes {start}-{end}/{total} is not a range inside the upload",
            offset=upload.received,
        )
    size = end - start + 1
    if size > settings.UPLOAD_CHUNK_MAX_BYTES:
        raise TooLarge(
            f"chunk of {size} bytes is over the {settings.UPLOAD_CHUNK_MAX_BYTES}-byte chunk limit",
            offset=upload.received,
        )
    if content_length is not None and content_length != size:
        raise RegistryError(
            f"Content-Length {content_length} does not match Content-Range size {size}",
            offset=upload.received,
        )
    if start != upload.received:
        kind = "overlaps bytes already received" if start < upload.received else "is out of order"
        raise UploadOffsetConflict(
            f"chunk starting at byte {start} {kind}; the next expected offset is {upload.received}",
            offset=upload.received,
        )
    part = _part_name(upload, start, end)
    body = _ChunkBody(stream, size, settings.UPLOAD_STREAM_BUFFER_BYTES)
    saved = default_storage.save(part, File(body, name=posixpath.basename(part)))
    if body.read_bytes != size:
        default_storage.delete(saved)
        raise RegistryError(
            f"chunk body ended after {body.read_bytes} of {size} bytes; resend it from offset "
            f"{upload.received}",
            offset=upload.received,
        )
    with transaction.atomic():
        locked = Upload.objects.select_for_update().get(pk=upload.pk)
        won = locked.status == UploadStatus.OPEN and locked.received == start
        if won:
            locked.received = end + 1
            locked.save(update_fields=["received", "updated_at"])
    if not won:
        default_storage.delete(saved)  # another request stored these bytes first
        raise UploadOffsetConflict(
            f"another request advanced this upload; the next expected offset is {locked.received}",
            offset=locked.received,
        )
    return locked


def _parts_folder(upload: Upload) -> str:
    return f"{posixpath.dirname(upload.storage_name)}/parts"


def _part_name(upload: Upload, start: int, end: int) -> str:
    # A unique suffix: two racing requests for one offset never write the same object.
    return f"{_parts_folder(upload)}/{start:015d}-{end:015d}-{secrets.token_hex(4)}"


class _ChunkBody:
    """Reads at most ``size`` bytes of a request body in small buffers, counting them."""

    def __init__(self, stream: IO[bytes], size: int, buffer_bytes: int) -> None:
        self.stream, self.left, self.buffer_bytes, self.read_bytes = stream, size, buffer_bytes, 0

    def read(self, n: int = -1) -> bytes:
        want = self.left if n is None or n < 0 else min(n, self.left)
        data = self.stream.read(min(want, self.buffer_bytes)) if want > 0 else b""
        self.left -= len(data)
        self.read_bytes += len(data)
        return data


class _PartsReader:
    """The stored chunks of an upload read back in offset order as one stream, hashed as read."""

    def __init__(self, names: list[str]) -> None:
        self.names, self.handle, self.digest = list(names), None, hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        n = 1024**2 if n is None or n < 0 else n
        while True:
            if self.handle is None:
                if not self.names:
                    return b""
                self.handle = default_storage.open(self.names.pop(0), "rb")
            data = self.handle.read(n)
            if data:
                self.digest.update(data)
                return data
            self.handle.close()
            self.handle = None


def _chunk_chain(upload: Upload) -> list[str]:
    """Names of the parts that cover bytes 0..total-1 in order (parts of lost races are left)."""
    folder = _parts_folder(upload)
    if not default_storage.exists(folder):
        return []
    by_start: dict[int, list[tuple[int, str]]] = {}
    for name in default_storage.listdir(folder)[1]:
        start, end, _ = name.split("-")
        by_start.setdefault(int(start), []).append((int(end), f"{folder}/{name}"))
    chain, offset = [], 0
    while offset < upload.total_size and offset in by_start:
        end, name = min(by_start[offset])  # any lost racer's part is checked by the sha256
        chain.append(name)
        offset = end + 1
    if offset != upload.total_size:
        raise RuntimeError(f"upload {upload.pk} is missing stored bytes from offset {offset}")
    return chain


def _assemble_parts(upload: Upload) -> str:
    """Join the stored chunks into the upload's file (streamed) and return its sha256."""
    reader = _PartsReader(_chunk_chain(upload))
    _delete_stored(upload.storage_name)
    saved = default_storage.save(upload.storage_name, File(reader, name=upload.filename))
    if saved != upload.storage_name:
        raise RuntimeError(f"storage renamed {upload.storage_name!r} to {saved!r}")
    _delete_tree(_parts_folder(upload))
    return reader.digest.hexdigest()


def file_sha256(*, storage_name: str) -> str:
    """Hex sha256 of a stored file, read in 1 MiB blocks (constant memory)."""
    digest = hashlib.sha256()
    with default_storage.open(storage_name, "rb") as handle:
        for block in iter(lambda: handle.read(1024**2), b""):
            digest.update(block)
    return digest.hexdigest()


def upload_finalize(*, upload: Upload, sha256: str) -> ModelVersion:
    """Check that every byte arrived and matches ``sha256``, then queue validation.

    On a mismatch the stored bytes and the upload are removed and the version is rejected.
    """
    expected = sha256.strip().lower()
    if not SHA256_RE.match(expected):
        raise RegistryError("sha256 must be 64 hexadecimal characters", field="sha256")
    if upload.status != UploadStatus.OPEN:
        raise NotAllowed(f"upload {upload.pk} is already {upload.status}")
    if upload.received != upload.total_size:
        raise UploadOffsetConflict(
            f"upload is incomplete: {upload.received} of {upload.total_size} bytes received; "
            f"resume from offset {upload.received}",
            offset=upload.received,
        )
    actual = _assemble_parts(upload)
    version = upload.version
    if actual != expected:
        reason = (
            f"sha256 mismatch: you sent {expected} but the uploaded bytes hash to {actual}; "
            "the upload was discarded, start a new one"
        )
        version_reject(version=version, reason=reason)
        raise RegistryError(reason, field="sha256")
    with transaction.atomic():
        locked = Upload.objects.select_for_update().get(pk=upload.pk)
        if locked.status != UploadStatus.OPEN:
            raise NotAllowed(f"upload {upload.pk} is already {locked.status}")
        locked.status = UploadStatus.FINALIZED
        locked.sha256 = actual
        locked.save(update_fields=["status", "sha256", "updated_at"])
        version = ModelVersion.objects.select_for_update().get(pk=upload.version_id)
        version_status_change(version=version, status=VersionStatus.VALIDATING)
        signals.checkpoint_finalized.send(sender=ModelVersion, version_id=version.pk)
    return version


def upload_abort(*, upload: Upload) -> None:
    """Discard an open upload and its bytes; the version goes back to draft."""
    if upload.status != UploadStatus.OPEN:
        raise NotAllowed(f"upload {upload.pk} is {upload.status}; only open uploads can be aborted")
    _delete_stored(upload.storage_name)
    _delete_tree(posixpath.dirname(upload.storage_name))
    with transaction.atomic():
        version = ModelVersion.objects.select_for_update().get(pk=upload.version_id)
        upload.delete()
        if version.status == VersionStatus.UPLOADING:
            version_status_change(version=version, status=VersionStatus.DRAFT)


# --- validation ----------------------------------------------------------------------------------


def archive_limits() -> ArchiveLimits:
    return ArchiveLimits(
        max_files=settings.CHECKPOINT_MAX_FILES,
        max_unpacked_bytes=settings.CHECKPOINT_MAX_UNPACKED_BYTES,
        max_compression_ratio=settings.CHECKPOINT_MAX_COMPRESSION_RATIO,
        max_json_bytes=settings.CHECKPOINT_MAX_JSON_BYTES,
        max_safetensors_header_bytes=settings.SAFETENSORS_MAX_HEADER_BYTES,
    )


@dataclass
class _StorageSink:
    """Writes unpacked files under one storage folder and returns their sizes."""

    folder: str

    def __call__(self, path: str, stream: IO[bytes]) -> int:
        name = f"{self.folder}/{path}"
        saved = default_storage.save(name, File(stream, name=posixpath.basename(path)))
        if saved != name:
            raise RuntimeError(f"storage renamed {name!r} to {saved!r}; the folder was not empty")
        return default_storage.size(saved)


def checkpoint_validate(*, version_id: int) -> ModelVersion | None:
    """Validate the finalized upload of a version, unpack it and mark the version ready.

    Idempotent: a version that is no longer ``validating`` is returned unchanged, and a rerun
    after a crash starts from an empty unpack folder. On rejection everything is removed.
    """
    version = ModelVersion.objects.select_related("model").filter(pk=version_id).first()
    if version is None or version.status != VersionStatus.VALIDATING:
        return version  # deleted meanwhile, or already validated (a redelivered task)
    upload = version.uploads.filter(status=UploadStatus.FINALIZED).order_by("-pk").first()
    if upload is None:
        raise RuntimeError(f"version {version_id} is validating but has no finalized upload")
    folder = f"{UNPACKED_DIR}/{version.pk}"
    _delete_tree(folder)
    overrides = dict(version.generator_config or {})
    try:
        with default_storage.open(upload.storage_name, "rb") as archive:
            summary = validate_archive(
                archive,
                archive_bytes=upload.total_size,
                limits=archive_limits(),
                sink=_StorageSink(folder),
            )
        if version.base_version_id is not None or summary.format == CheckpointFormat.LORA:
            config = _lora_config(version, summary.format, folder, upload.sha256, overrides)
        elif summary.format == "native":
            # The native schema applies the overrides by the loader's own rules.
            config = native_generator_config(summary, task=version.model.task, overrides=overrides)
        else:
            config = diffusers_generator_config(
                summary, task=version.model.task, overrides=overrides
            )
            _diffusers_loader_check(folder, upload.sha256, config)
    except CheckpointRejected as exc:
        return version_reject(version=version, reason=str(exc))
    with transaction.atomic():
        Checkpoint.objects.update_or_create(
            version=version,
            defaults={
                "file": upload.storage_name,
                "format": summary.format,
                "size": upload.total_size,
                "sha256": upload.sha256,
                "unpacked_path": folder,
            },
        )
        version.generator_config = config
        version.save(update_fields=["generator_config", "updated_at"])
        version = version_mark_ready(version=version)
    return version


def _diffusers_loader_check(folder: str, sha256: str, config: dict) -> None:
    """Run the diffusers loader's own layout and sampler checks, so a ready version is one it
    can load and run (a bad sampler key is refused here, not at generation)."""
    # Imported here: the generator modules import torch, which the web process never needs.
    from models_registry.generators.diffusers_loader import (
        check_model_index,
        check_sampler,
        pipeline_guides_on_image,
    )
    from models_registry.generators.protocol import GeneratorConfigError

    try:
        check_model_index(local_checkpoint_directory(folder=folder, key=sha256))
        guided = pipeline_guides_on_image(config["pipeline_class"])
        check_sampler(config.get("sampler") or {}, image_guided=guided)
    except GeneratorConfigError as exc:
        raise CheckpointRejected(str(exc)) from exc


def _lora_config(
    version: ModelVersion, fmt: str, folder: str, sha256: str, overrides: dict
) -> dict:
    """A LoRA version's generator config, after loading the adapter onto its base."""
    base = version.base_version
    if base is None:
        raise CheckpointRejected(
            "this archive is a LoRA adapter (pytorch_lora_weights.safetensors only); create the "
            "version with base_version set to the diffusers version it adapts"
        )
    if fmt != CheckpointFormat.LORA:
        raise CheckpointRejected(
            f"version {version} is a LoRA adapter on {base}; upload an archive holding "
            f"pytorch_lora_weights.safetensors, not a full {fmt} checkpoint"
        )
    config = lora_generator_config(base.generator_config, base=str(base), overrides=overrides)
    _lora_loader_check(folder, sha256, base)
    return config


def _lora_loader_check(folder: str, sha256: str, base: ModelVersion) -> None:
    """Load the base pipeline (bfloat16, CPU: half the memory of float32) and the adapter onto
    it with peft, so a ready LoRA version is one the generator can load."""
    from models_registry.generators.diffusers_loader import load_lora_adapter, load_pipeline
    from models_registry.generators.protocol import GeneratorConfigError

    checkpoint = base.checkpoint
    base_dir = local_checkpoint_directory(folder=checkpoint.unpacked_path, key=checkpoint.sha256)
    try:
        pipe = load_pipeline(base_dir, torch_dtype="bfloat16")
        load_lora_adapter(pipe, local_checkpoint_directory(folder=folder, key=sha256))
    except GeneratorConfigError as exc:
        raise CheckpointRejected(str(exc)) from exc


STATUS_REASON_MAX_CHARS = 4000


def version_status_change(
    *,
    version: ModelVersion | int,
    status: str,
    reason: str = "",
    arena_approved: bool | None = None,
) -> ModelVersion | None:
    """The one way a version's status changes (the registry and the pipeline both call it):
    its status, the reason shown with it, and, when given, its arena approval, in one UPDATE.
    With an instance, the instance is updated too and returned. ValueError for an unknown
    status (a bug of ours, not a user's)."""
    if status not in VersionStatus.values:
        raise ValueError(f"unknown version status {status!r}")
    fields = {"status": status, "status_reason": reason[:STATUS_REASON_MAX_CHARS]}
    if arena_approved is not None:
        fields["arena_approved"] = arena_approved
    fields["updated_at"] = timezone.now()
    pk = version.pk if isinstance(version, ModelVersion) else int(version)
    ModelVersion.objects.filter(pk=pk).update(**fields)
    if not isinstance(version, ModelVersion):
        return None
    for name, value in fields.items():
        setattr(version, name, value)
    return version


def version_mark_ready(*, version: ModelVersion) -> ModelVersion:
    """The checkpoint passed validation: the version is ``ready`` (the pipeline starts here)."""
    return version_status_change(version=version, status=VersionStatus.READY)


def version_reject(*, version: ModelVersion, reason: str) -> ModelVersion:
    """Reject the version's checkpoint: remove every stored byte and partial row, keep a reason."""
    uploads = list(version.uploads.all())
    for upload in uploads:
        if upload.storage_name:
            _delete_stored(upload.storage_name)
            _delete_tree(posixpath.dirname(upload.storage_name))
    _delete_tree(f"{UNPACKED_DIR}/{version.pk}")
    with transaction.atomic():
        Checkpoint.objects.filter(version=version).delete()
        Upload.objects.filter(pk__in=[upload.pk for upload in uploads]).delete()
        version_status_change(version=version, status=VersionStatus.REJECTED, reason=reason)
    return version


def _delete_stored(name: str) -> None:
    if default_storage.exists(name):
        default_storage.delete(name)


def _delete_tree(folder: str) -> None:
    """Delete every file under a storage folder, then the (now empty) folders themselves."""
    if not folder or not default_storage.exists(folder):
        return
    dirs, files = default_storage.listdir(folder)
    for name in files:
        default_storage.delete(f"{folder}/{name}")
    for name in dirs:
        _delete_tree(f"{folder}/{name}")
    default_storage.delete(folder)  # FileSystemStorage removes the empty directory
