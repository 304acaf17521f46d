"""Pure checkpoint safety checks: archive listing, safetensors headers, generator config schema.

No Django imports and nothing is ever unpickled: archives are listed and their members read as
plain bytes; safetensors headers are parsed with ``struct`` + ``json`` exactly as the format
specifies (8-byte little-endian header length, JSON header, contiguous tensor data).
Every user-caused problem raises :class:`CheckpointRejected` with a message naming the file and
what is allowed.
"""

from __future__ import annotations

import gzip
import json
import lzma
import math
import posixpath
import stat
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

# Pure modules only: the web process validates uploads without importing torch.
from models_registry.generators.diffusers_loader import (
    LORA_WEIGHT_NAME,
    RUNTIME_KEYS,
    parse_runtime_options,
    pipeline_resolution,
)
from models_registry.generators.native_config import (
    GUIDANCE_RANGE,
    STEPS_RANGE,
    VIDEO_FRAMES_RANGE,
    apply_overrides,
    validate_native_config,
)
from models_registry.generators.protocol import GeneratorConfigError
from models_registry.generators.tasks import TASK_NAMES, task_spec


class CheckpointRejected(Exception):
    """A checkpoint fails validation; ``str(exc)`` is the reason shown to the author."""


@dataclass(frozen=True)
class ArchiveLimits:
    """Limits applied before anything is unpacked (bytes; ratio = unpacked / archive bytes)."""

    max_files: int = 1000
    max_unpacked_bytes: int = 20 * 1024**3
    max_compression_ratio: float = 100.0
    max_json_bytes: int = 64 * 1024**2
    max_safetensors_header_bytes: int = 100 * 1024**2


# Members smaller than this are not ratio-checked one by one (tiny JSON files compress very well).
PER_MEMBER_RATIO_MIN_BYTES = 1024**2
MAX_PATH_CHARS = 1024

WEIGHT_SUFFIX = ".safetensors"
ALLOWED_SUFFIXES = (WEIGHT_SUFFIX, ".json", ".txt", ".md", ".model")
ALLOWED_BASENAMES = ("LICENSE", ".gitattributes")
# Files that can only be loaded by unpickling (torch.load, pickle, joblib, numpy allow_pickle).
PICKLE_SUFFIXES = (
    ".bin",
    ".pt",
    ".pth",
    ".ckpt",
    ".pkl",
    ".pickle",
    ".joblib",
    ".npy",
    ".npz",
    ".mar",
    ".safetensors.bin",
)

# safetensors dtypes and their byte widths (sub-byte float formats are not accepted).
SAFETENSORS_DTYPE_BYTES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "F8_E8M0": 1,
    "U16": 2,
    "I16": 2,
    "F16": 2,
    "BF16": 2,
    "U32": 4,
    "I32": 4,
    "F32": 4,
    "U64": 8,
    "I64": 8,
    "F64": 8,
    "C64": 8,
}


# --- archives ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArchiveMember:
    """One regular file of an archive: its safe relative path (``/``-separated) and size in bytes."""

    path: str
    size: int
    source_name: str  # the member name inside the archive, used to read it


@dataclass
class ArchiveListing:
    kind: str  # "zip" or "tar"
    files: list[ArchiveMember] = field(default_factory=list)
    total_bytes: int = 0


def safe_member_path(name: str) -> str:
    """Normalise an archive member name to a relative ``a/b/c`` path, rejecting anything unsafe.

    Rejected: absolute paths (``/x``, ``C:\\x``, ``\\\\host``), ``..`` components, control
    characters and NUL bytes, over-long names.
    """
    if not name or len(name) > MAX_PATH_CHARS:
        raise CheckpointRejected(f"archive member name {name[:80]!r} is empty or too long")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise CheckpointRejected(f"archive member {name!r} has control characters in its name")
    unified = name.replace("\\", "/")
    if unified.startswith("/") or (len(unified) > 1 and unified[1] == ":"):
        raise CheckpointRejected(
            f"archive member {name!r} has an absolute path; only relative paths are allowed"
        )
    parts = [part for part in unified.split("/") if part not in ("", ".")]
    if any(part == ".." for part in parts):
        raise CheckpointRejected(
            f"archive member {name!r} uses '..' (path traversal); only paths inside the archive "
            "are allowed"
        )
    return "/".join(parts)


def _check_file_type(path: str) -> None:
    base = posixpath.basename(path)
    lower = base.lower()
    if lower.endswith(PICKLE_SUFFIXES):
        raise CheckpointRejected(
            f"{path!r} is a pickle-based file ({posixpath.splitext(lower)[1]}); loading it would "
            "mean unpickling untrusted data. Convert the weights to .safetensors"
        )
    if base in ALLOWED_BASENAMES or lower.endswith(ALLOWED_SUFFIXES):
        return
    raise CheckpointRejected(
        f"{path!r} has a file type that is not accepted; allowed: "
        f"{', '.join(ALLOWED_SUFFIXES)} (weights must be .safetensors)"
    )


class _ListingBuilder:
    """Accumulates members and enforces the limits as soon as they are crossed."""

    def __init__(self, kind: str, archive_bytes: int, limits: ArchiveLimits) -> None:
        self.listing = ArchiveListing(kind=kind)
        self.archive_bytes = max(archive_bytes, 1)
        self.limits = limits
        self.seen: set[str] = set()
        self.dirs: set[str] = set()
        self.entries = 0

    def add_dir(self, name: str) -> None:
        self._count()
        path = safe_member_path(name)
        if path:
            self.dirs.add(path)

    def add_file(self, name: str, size: int, compressed: int | None = None) -> None:
        self._count()
        path = safe_member_path(name)
        if not path:
            raise CheckpointRejected(f"archive member {name!r} has no file name")
        if path in self.seen:
            raise CheckpointRejected(f"archive contains {path!r} more than once")
        _check_file_type(path)
        if size < 0:
            raise CheckpointRejected(f"archive member {path!r} declares a negative size")
        self.seen.add(path)
        self.listing.files.append(ArchiveMember(path=path, size=size, source_name=name))
        self.listing.total_bytes += size
        limits = self.limits
        if self.listing.total_bytes > limits.max_unpacked_bytes:
            raise CheckpointRejected(
                f"archive unpacks to more than {limits.max_unpacked_bytes} bytes (the limit)"
            )
        if compressed is not None and size >= PER_MEMBER_RATIO_MIN_BYTES:
            ratio = size / max(compressed, 1)
            if ratio > limits.max_compression_ratio:
                raise CheckpointRejected(
                    f"archive member {path!r} has compression ratio {ratio:.0f}:1, typical of a "
                    f"zip bomb (limit {limits.max_compression_ratio:g}:1)"
                )
        ratio = self.listing.total_bytes / self.archive_bytes
        if (
            self.listing.total_bytes >= PER_MEMBER_RATIO_MIN_BYTES
            and ratio > limits.max_compression_ratio
        ):
            raise CheckpointRejected(
                f"archive has compression ratio {ratio:.0f}:1, typical of a zip bomb "
                f"(limit {limits.max_compression_ratio:g}:1)"
            )

    def _count(self) -> None:
        self.entries += 1
        if self.entries > self.limits.max_files:
            raise CheckpointRejected(
                f"archive has more than {self.limits.max_files} entries (the limit)"
            )

    def finish(self) -> ArchiveListing:
        files = {member.path for member in self.listing.files}
        for path in files:
            parent = posixpath.dirname(path)
            while parent:
                if parent in files:
                    raise CheckpointRejected(
                        f"archive has both a file {parent!r} and entries inside it"
                    )
                parent = posixpath.dirname(parent)
        if not self.listing.files:
            raise CheckpointRejected("archive contains no files")
        return self.listing


def detect_archive_kind(fileobj: IO[bytes]) -> str:
    """``"zip"`` or ``"tar"`` (plain, gzip, bzip2 or xz), from the content, not the file name."""
    fileobj.seek(0)
    head = fileobj.read(4)
    fileobj.seek(0)
    # is_zipfile alone looks only at the end, so a tar ending in a zip member would pass.
    if head == ZIP_MAGIC and zipfile.is_zipfile(fileobj):
        fileobj.seek(0)
        return "zip"
    fileobj.seek(0)
    try:
        with tarfile.open(fileobj=fileobj, mode="r:*") as tar:
            tar.next()
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise CheckpointRejected(
            "upload is not a readable .zip or .tar/.tar.gz archive; pack config.json + "
            "model.safetensors (native) or a diffusers pipeline folder into one"
        ) from exc
    finally:
        fileobj.seek(0)
    return "tar"


def list_archive(
    fileobj: IO[bytes], *, archive_bytes: int, limits: ArchiveLimits
) -> ArchiveListing:
    """List the regular files of a zip/tar archive, enforcing every safety rule and limit.

    Reads only metadata (tar: headers while streaming past data). Rejects links, devices,
    FIFOs, sparse or encrypted members, unsafe paths, too many entries, too many unpacked
    bytes and zip-bomb compression ratios. ``archive_bytes``: size of the archive file.
    """
    kind = detect_archive_kind(fileobj)
    builder = _ListingBuilder(kind, archive_bytes, limits)
    if kind == "zip":
        try:
            with zipfile.ZipFile(fileobj) as archive:
                for info in archive.infolist():
                    mode = info.external_attr >> 16
                    kind_bits = stat.S_IFMT(mode)
                    if kind_bits == stat.S_IFLNK:
                        raise CheckpointRejected(
                            f"archive member {info.filename!r} is a symlink; links are not allowed"
                        )
                    if kind_bits not in (0, stat.S_IFREG, stat.S_IFDIR):
                        raise CheckpointRejected(
                            f"archive member {info.filename!r} is a device or special file; "
                            "only regular files and folders are allowed"
                        )
                    if info.flag_bits & 0x1:
                        raise CheckpointRejected(
                            f"archive member {info.filename!r} is encrypted; not supported"
                        )
                    if info.is_dir():
                        builder.add_dir(info.filename)
                    else:
                        builder.add_file(info.filename, info.file_size, info.compress_size)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError) as exc:
            raise CheckpointRejected(f"zip archive is corrupt or unsupported: {exc}") from exc
    else:
        try:
            with tarfile.open(fileobj=fileobj, mode="r:*") as archive:
                # Iterate (not getmembers) so that limits stop the scan as soon as they are crossed.
                for member in archive:
                    if member.issym() or member.islnk():
                        raise CheckpointRejected(
                            f"archive member {member.name!r} is a "
                            f"{'symlink' if member.issym() else 'hardlink'}; links are not allowed"
                        )
                    if member.isdir():
                        builder.add_dir(member.name)
                    elif member.isreg() and not member.issparse():
                        builder.add_file(member.name, member.size)
                    else:
                        raise CheckpointRejected(
                            f"archive member {member.name!r} is a device, FIFO or special file; "
                            "only regular files and folders are allowed"
                        )
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise CheckpointRejected(f"tar archive is corrupt: {exc}") from exc
    fileobj.seek(0)
    return builder.finish()


def iter_archive_files(
    fileobj: IO[bytes], listing: ArchiveListing
) -> Iterator[tuple[ArchiveMember, IO[bytes]]]:
    """Yield ``(member, readable stream)`` for each listed file, in archive order.

    The stream yields at most the member's declared size (zip also checks the CRC at the end).
    """
    fileobj.seek(0)
    by_name = {member.source_name: member for member in listing.files}
    if listing.kind == "zip":
        with zipfile.ZipFile(fileobj) as archive:
            for info in archive.infolist():
                member = by_name.get(info.filename)
                if member is not None:
                    with archive.open(info) as stream:
                        yield member, stream
    else:
        with tarfile.open(fileobj=fileobj, mode="r:*") as archive:
            for info in archive:
                member = by_name.get(info.name)
                if member is not None and info.isreg():
                    stream = archive.extractfile(info)
                    if stream is None:  # pragma: no cover - isreg() members always have data
                        raise CheckpointRejected(f"archive member {info.name!r} has no data")
                    with stream:
                        yield member, stream


def strip_common_root(paths: list[str], markers: tuple[str, ...]) -> str:
    """The single top folder to strip (``"pipe/"``) when all files sit inside it, else ``""``.

    Only applies when none of ``markers`` (e.g. ``model_index.json``) is at the archive root.
    """
    if any(path in markers for path in paths):
        return ""
    tops = {path.split("/", 1)[0] for path in paths}
    if len(tops) == 1 and all("/" in path for path in paths):
        return tops.pop() + "/"
    return ""


# --- file contents ---------------------------------------------------------------------------


PICKLE_MAGIC = tuple(bytes([0x80, protocol]) for protocol in range(2, 6))
ZIP_MAGIC = b"PK\x03\x04"


def check_not_pickle(path: str, head: bytes) -> None:
    """Reject content that is a pickle (protocol 2-5) or a torch zip checkpoint, whatever its name."""
    if head.startswith(PICKLE_MAGIC):
        raise CheckpointRejected(
            f"{path!r} contains pickled data; pickles are never loaded. Use .safetensors"
        )
    if head.startswith(ZIP_MAGIC):
        raise CheckpointRejected(
            f"{path!r} is a zip container (the torch.save format, which holds a pickle); "
            "use .safetensors"
        )


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int  # byte offsets relative to the start of the data section
    end: int


def parse_safetensors_header(
    stream: IO[bytes], *, file_size: int, max_header_bytes: int, path: str = "model.safetensors"
) -> tuple[dict[str, str], list[TensorInfo]]:
    """Parse and check a safetensors header read sequentially from ``stream``.

    Checks: header length within ``max_header_bytes`` and inside the file, UTF-8 JSON object,
    known dtypes, non-negative integer shapes, ``data_offsets`` inside the data section, byte
    length == prod(shape) * dtype width, no overlapping tensors, no gaps or trailing bytes
    (same rules as the reference ``safetensors`` library). Returns (metadata, tensors).
    """
    prefix = stream.read(8)
    if len(prefix) < 8 or file_size < 8:
        raise CheckpointRejected(f"{path!r} is too short to be a safetensors file")
    check_not_pickle(path, prefix)
    (header_len,) = struct.unpack("<Q", prefix)
    if header_len > max_header_bytes:
        raise CheckpointRejected(
            f"{path!r}: safetensors header of {header_len} bytes is over the "
            f"{max_header_bytes}-byte limit"
        )
    if 8 + header_len > file_size:
        raise CheckpointRejected(
            f"{path!r}: safetensors header length {header_len} runs past the end of the "
            f"{file_size}-byte file"
        )
    raw = stream.read(header_len)
    if len(raw) != header_len:
        raise CheckpointRejected(f"{path!r}: file ends inside the safetensors header")
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointRejected(f"{path!r}: safetensors header is not valid JSON ({exc})") from exc
    if not isinstance(header, dict):
        raise CheckpointRejected(f"{path!r}: safetensors header must be a JSON object")
    data_len = file_size - 8 - header_len
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise CheckpointRejected(f"{path!r}: __metadata__ must map strings to strings")
    tensors: list[TensorInfo] = []
    for name, entry in header.items():
        tensors.append(_tensor_info(path, name, entry, data_len))
    if not tensors:
        raise CheckpointRejected(f"{path!r} contains no tensors")
    position = 0
    for tensor in sorted(tensors, key=lambda t: (t.begin, t.end)):
        if tensor.begin < position:
            raise CheckpointRejected(
                f"{path!r}: tensor {tensor.name!r} overlaps another tensor "
                f"(starts at byte {tensor.begin}, previous tensor ends at {position})"
            )
        if tensor.begin > position:
            raise CheckpointRejected(
                f"{path!r}: unreferenced bytes {position}..{tensor.begin} before tensor "
                f"{tensor.name!r} (tensor data must be contiguous)"
            )
        position = tensor.end
    if position != data_len:
        raise CheckpointRejected(
            f"{path!r}: {data_len - position} bytes after the last tensor are not referenced "
            "by the header"
        )
    return metadata, tensors


def _tensor_info(path: str, name: str, entry: Any, data_len: int) -> TensorInfo:
    where = f"{path!r}: tensor {name!r}"
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise CheckpointRejected(f"{where} must have exactly dtype, shape and data_offsets")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if dtype not in SAFETENSORS_DTYPE_BYTES:
        raise CheckpointRejected(
            f"{where} has unknown dtype {dtype!r}; allowed: {', '.join(SAFETENSORS_DTYPE_BYTES)}"
        )
    if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
        raise CheckpointRejected(f"{where} shape must be a list of non-negative integers")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_int(o) for o in offsets):
        raise CheckpointRejected(f"{where} data_offsets must be two integers [begin, end]")
    begin, end = offsets
    if not 0 <= begin <= end <= data_len:
        raise CheckpointRejected(
            f"{where} data_offsets [{begin}, {end}] lie outside the {data_len}-byte data section"
        )
    expected = math.prod(shape) * SAFETENSORS_DTYPE_BYTES[dtype]
    if end - begin != expected:
        raise CheckpointRejected(
            f"{where}: dtype {dtype} and shape {shape} need {expected} bytes but data_offsets "
            f"span {end - begin}"
        )
    return TensorInfo(name=name, dtype=dtype, shape=tuple(shape), begin=begin, end=end)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_json_file(stream: IO[bytes], *, size: int, max_bytes: int, path: str) -> Any:
    """Read and parse a JSON file of ``size`` bytes, refusing files over ``max_bytes``."""
    if size > max_bytes:
        raise CheckpointRejected(f"{path!r} is {size} bytes; JSON files are limited to {max_bytes}")
    raw = stream.read(max_bytes + 1)
    check_not_pickle(path, raw[:4])
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointRejected(f"{path!r} is not valid JSON ({exc})") from exc


# --- generator config schema -------------------------------------------------------------------

# A diffusers pipeline's settings; a native config.json is checked by the one native schema
# (models_registry/generators/native_config.py), whose ranges are those of the reference U-Net.
RESOLUTION_RANGE = (8, 1024)
FRAMES_RANGE = (1, 128)
VIDEO_MIN_FRAMES = VIDEO_FRAMES_RANGE[0]
# Settings an author may give on a version (applied over the checkpoint's own config); the
# runtime keys (torch_dtype, slicing, offload, compile, lora_scale) are for diffusers pipelines.
OVERRIDE_KEYS = {"resolution", "frames", "sampler", "steps", "guidance_scale", *RUNTIME_KEYS}


def _int_in_range(config: dict, key: str, low: int, high: int, where: str) -> int:
    value = config.get(key)
    if not _is_int(value) or not low <= value <= high:
        raise CheckpointRejected(
            f"{where}: {key!r} must be an integer from {low} to {high}, got {value!r}"
        )
    return value


def check_overrides(overrides: Any, *, where: str = "generator_config") -> dict:
    """Validate author-supplied version settings: optional resolution, frames, sampler.

    The checkpoint's format is not known yet, so these are the widest ranges of any format; the
    format's own schema checks the merged config when the checkpoint is validated.
    """
    if not isinstance(overrides, dict):
        raise CheckpointRejected(f"{where} must be a JSON object")
    unknown = set(overrides) - OVERRIDE_KEYS
    if unknown:
        raise CheckpointRejected(
            f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(OVERRIDE_KEYS)}"
        )
    if "resolution" in overrides:
        _int_in_range(overrides, "resolution", *RESOLUTION_RANGE, where)
    if "frames" in overrides:
        _int_in_range(overrides, "frames", *FRAMES_RANGE, where)
    if "steps" in overrides:
        _int_in_range(overrides, "steps", *STEPS_RANGE, where)
    low, high = GUIDANCE_RANGE
    guidance = overrides.get("guidance_scale", low)
    if (
        not isinstance(guidance, int | float)
        or isinstance(guidance, bool)
        or not (low <= guidance <= high)
    ):
        raise CheckpointRejected(f"{where}: 'guidance_scale' must be a number from {low} to {high}")
    if "sampler" in overrides and not isinstance(overrides["sampler"], dict | str):
        raise CheckpointRejected(f"{where}: 'sampler' must be a sampler name or a JSON object")
    try:
        parse_runtime_options(overrides, where=where)
    except GeneratorConfigError as exc:
        raise CheckpointRejected(str(exc)) from exc
    return overrides


def check_generator_settings(config: dict, *, where: str) -> None:
    """Checks for task, resolution and frames of a diffusers pipeline's generator config."""
    if config.get("task") not in TASK_NAMES:
        raise CheckpointRejected(
            f"{where}: 'task' must be one of {', '.join(TASK_NAMES)}, got {config.get('task')!r}"
        )
    _int_in_range(config, "resolution", *RESOLUTION_RANGE, where)
    frames = _int_in_range(config, "frames", *FRAMES_RANGE, where)
    if config["task"] == "text-to-video" and frames < VIDEO_MIN_FRAMES:
        raise CheckpointRejected(
            f"{where}: a text-to-video model needs 'frames' >= {VIDEO_MIN_FRAMES}, got {frames}"
        )
    if task_spec(config["task"]).media == "image" and frames != 1:
        raise CheckpointRejected(
            f"{where}: a {config['task']} model has 'frames' = 1, got {frames}"
        )
    if "sampler" in config and not isinstance(config["sampler"], dict):
        raise CheckpointRejected(f"{where}: 'sampler' must be a JSON object")


def check_native_config(config: Any, *, where: str = "config.json") -> dict:
    """Validate a native ``config.json`` with the native schema (the one the loader uses).

    Returns the canonical config (defaults filled in).
    """
    try:
        return validate_native_config(config)
    except GeneratorConfigError as exc:
        raise CheckpointRejected(f"{where}: {exc}") from exc


def check_diffusers_index(index: Any, *, where: str = "model_index.json") -> dict[str, str]:
    """Validate ``model_index.json``; returns ``{component folder: class name}`` of used components."""
    if not isinstance(index, dict) or not isinstance(index.get("_class_name"), str):
        raise CheckpointRejected(f"{where} must be a JSON object with a '_class_name' string")
    components: dict[str, str] = {}
    for key, value in index.items():
        if key.startswith("_"):
            continue
        if isinstance(value, list) and len(value) == 2:
            library, class_name = value
            if library is None and class_name is None:
                continue  # an optional component that this pipeline leaves out
            if isinstance(library, str) and isinstance(class_name, str):
                if "/" in key or key in ("", ".", ".."):
                    raise CheckpointRejected(
                        f"{where}: component name {key!r} is not a folder name"
                    )
                components[key] = class_name
                continue
        if isinstance(value, list):
            raise CheckpointRejected(
                f"{where}: component {key!r} must be [library, class name], got {value!r}"
            )
    if not components:
        raise CheckpointRejected(f"{where} lists no components")
    return components


# --- whole checkpoint ----------------------------------------------------------------------------

NATIVE_FILES = ("config.json", "model.safetensors")
DIFFUSERS_INDEX = "model_index.json"
LORA_FILE = LORA_WEIGHT_NAME  # a LoRA adapter: the file diffusers' save_lora_weights writes


class _ReplayReader:
    """A read-only stream that returns ``head`` first, then the rest of ``stream``."""

    def __init__(self, head: bytes, stream: IO[bytes]) -> None:
        self._head = head
        self._stream = stream

    def read(self, size: int = -1) -> bytes:
        if self._head:
            if size is None or size < 0:
                data, self._head = self._head + self._stream.read(), b""
                return data
            data, self._head = self._head[:size], self._head[size:]
            return data
        return self._stream.read(size)


@dataclass
class CheckpointSummary:
    """What validation learned: format, parsed configs and tensor counts per weight file."""

    format: str  # "native", "diffusers" or "lora"
    files: dict[str, int] = field(default_factory=dict)  # relative path -> bytes
    tensors: dict[str, int] = field(default_factory=dict)  # weight file -> number of tensors
    config: dict = field(default_factory=dict)  # native config.json
    model_index: dict = field(default_factory=dict)  # diffusers model_index.json
    components: dict[str, str] = field(default_factory=dict)  # folder -> class name
    json_files: dict[str, Any] = field(default_factory=dict)

    @property
    def total_bytes(self) -> int:
        return sum(self.files.values())


def checkpoint_format(paths: list[str]) -> str:
    """Decide the format from the file list (already stripped of a common top folder)."""
    if DIFFUSERS_INDEX in paths:
        return "diffusers"
    if LORA_FILE in paths and "config.json" not in paths and "model.safetensors" not in paths:
        return "lora"
    if "config.json" in paths or "model.safetensors" in paths:
        missing = [name for name in NATIVE_FILES if name not in paths]
        if missing:
            raise CheckpointRejected(
                f"native checkpoint is missing {', '.join(missing)} (needs config.json + "
                "model.safetensors at the archive root)"
            )
        return "native"
    raise CheckpointRejected(
        "archive has neither model_index.json (diffusers pipeline), config.json + "
        f"model.safetensors (native format) nor {LORA_FILE} (a LoRA adapter) at its root"
    )


def validate_archive(
    fileobj: IO[bytes],
    *,
    archive_bytes: int,
    limits: ArchiveLimits,
    sink: Any,
) -> CheckpointSummary:
    """Check a checkpoint archive and hand each file to ``sink(relative_path, stream) -> bytes``.

    ``sink`` stores the file (e.g. into Django storage) and returns the number of bytes written.
    Files are streamed; only JSON files and safetensors headers are held in memory. On any
    problem raises :class:`CheckpointRejected`; the caller removes what ``sink`` stored.
    """
    listing = list_archive(fileobj, archive_bytes=archive_bytes, limits=limits)
    root = strip_common_root(
        [member.path for member in listing.files], (DIFFUSERS_INDEX, *NATIVE_FILES, LORA_FILE)
    )
    paths = [member.path[len(root) :] for member in listing.files]
    summary = CheckpointSummary(format=checkpoint_format(paths))
    try:
        _unpack_members(fileobj, listing, root, limits, sink, summary)
    except CORRUPT_ARCHIVE_ERRORS as exc:
        raise CheckpointRejected(f"archive data is corrupt: {exc}") from exc
    if summary.format == "native":
        summary.config = check_native_config(summary.json_files["config.json"])
    elif summary.format == "diffusers":
        _check_diffusers_layout(summary)
    return summary


# Read errors that mean the uploaded bytes are damaged (gzip.BadGzipFile is an OSError subclass).
CORRUPT_ARCHIVE_ERRORS = (
    zipfile.BadZipFile,
    tarfile.TarError,
    EOFError,
    zlib.error,
    gzip.BadGzipFile,
    lzma.LZMAError,
)


def _unpack_members(
    fileobj: IO[bytes],
    listing: ArchiveListing,
    root: str,
    limits: ArchiveLimits,
    sink: Any,
    summary: CheckpointSummary,
) -> None:
    for member, stream in iter_archive_files(fileobj, listing):
        path = member.path[len(root) :]
        lower = path.lower()
        if lower.endswith(".json"):
            raw = stream.read(limits.max_json_bytes + 1)
            summary.json_files[path] = parse_json_file(
                _ReplayReader(raw, stream),
                size=member.size,
                max_bytes=limits.max_json_bytes,
                path=path,
            )
            written = sink(path, _ReplayReader(raw, stream))
        elif lower.endswith(WEIGHT_SUFFIX):
            recorder = _RecordingReader(stream)
            _, tensors = parse_safetensors_header(
                recorder,
                file_size=member.size,
                max_header_bytes=limits.max_safetensors_header_bytes,
                path=path,
            )
            summary.tensors[path] = len(tensors)
            written = sink(path, _ReplayReader(recorder.recorded, stream))
        else:
            head = stream.read(8)
            check_not_pickle(path, head)
            written = sink(path, _ReplayReader(head, stream))
        if written != member.size:
            raise CheckpointRejected(
                f"{path!r} holds {written} bytes but the archive declares {member.size}"
            )
        summary.files[path] = written


class _RecordingReader:
    """Passes reads through and keeps a copy of everything read (used for the small header)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._parts: list[bytes] = []

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self._parts.append(data)
        return data

    @property
    def recorded(self) -> bytes:
        return b"".join(self._parts)


def _check_diffusers_layout(summary: CheckpointSummary) -> None:
    summary.model_index = summary.json_files[DIFFUSERS_INDEX]
    summary.components = check_diffusers_index(summary.model_index)
    for folder in summary.components:
        inside = [path for path in summary.files if path.startswith(folder + "/")]
        if not inside:
            raise CheckpointRejected(
                f"model_index.json lists component {folder!r} but the archive has no "
                f"{folder}/ folder"
            )
        if not any(path.endswith(".json") for path in inside):
            raise CheckpointRejected(f"component folder {folder}/ has no JSON config")
    weights = [path for path in summary.files if path.endswith(WEIGHT_SUFFIX)]
    if not weights:
        raise CheckpointRejected("diffusers pipeline has no .safetensors weights")


def diffusers_generator_config(summary: CheckpointSummary, *, task: str, overrides: dict) -> dict:
    """The generator config recorded for a diffusers pipeline (task, resolution, frames, sampler,
    and the runtime options: torch_dtype, attention/VAE slicing, VAE tiling, cpu_offload, compile).

    Resolution defaults to what `pipeline_resolution` reads from the component configs (the
    loader uses the same function); otherwise the author must set ``resolution`` on the version.
    """
    config: dict[str, Any] = {
        "format": "diffusers",
        "task": task,
        "pipeline_class": summary.model_index["_class_name"],
        "components": dict(summary.components),
    }
    resolution = overrides.get("resolution") or pipeline_resolution(
        summary.model_index, summary.json_files
    )
    if resolution is None:
        raise CheckpointRejected(
            "cannot tell the pipeline's output resolution from its configs (no integer "
            "unet/ or transformer/ config.json sample_size, or a vae/ config.json without "
            "block_out_channels); set generator_config.resolution on the version"
        )
    config["resolution"] = resolution
    config["frames"] = overrides.get("frames", 1 if task_spec(task).media == "image" else 16)
    config["sampler"] = overrides.get("sampler", {})
    check_generator_settings(config, where="diffusers generator config")
    try:
        config.update(parse_runtime_options(overrides).as_dict())
    except GeneratorConfigError as exc:
        raise CheckpointRejected(str(exc)) from exc
    return config


def native_generator_config(summary: CheckpointSummary, *, task: str, overrides: dict) -> dict:
    """config.json with the version's generator_config applied (resolution, frames, sampler,
    steps, guidance_scale), checked by the native schema: the config the loader will use."""
    config = summary.config
    if config["task"] != task:
        raise CheckpointRejected(
            f"config.json task {config['task']!r} does not match the model's task {task!r}"
        )
    runtime = sorted(key for key in RUNTIME_KEYS if key in overrides)
    if runtime:
        raise CheckpointRejected(
            f"generator_config: {', '.join(runtime)} apply only to diffusers pipelines; this "
            "checkpoint is in the native format (remove them from the version)"
        )
    try:
        return apply_overrides(config, overrides)
    except GeneratorConfigError as exc:
        raise CheckpointRejected(str(exc)) from exc


def lora_generator_config(base_config: dict, *, base: str, overrides: dict) -> dict:
    """The generator config of a LoRA adapter version on the diffusers version `base`
    ("<model-slug>@<tag>", whose recorded config is `base_config`): the base's task, pipeline,
    resolution, frames, sampler and runtime options, with the adapter version's own settings
    (including `lora_scale`, default 1.0) over them."""
    if base_config.get("format") != "diffusers":
        raise CheckpointRejected(
            f"base version {base} is not a diffusers pipeline; LoRA adapters load onto "
            "diffusers pipelines only"
        )
    config = {
        key: base_config[key]
        for key in ("task", "pipeline_class", "components", "resolution", "frames", "sampler")
        if key in base_config
    }
    config.update(format="lora", base_version=base)
    for key in ("resolution", "frames", "sampler"):
        if key in overrides:
            config[key] = overrides[key]
    check_generator_settings(config, where="LoRA generator config")
    runtime = {key: base_config[key] for key in RUNTIME_KEYS if key in base_config}
    runtime.update({key: overrides[key] for key in RUNTIME_KEYS if key in overrides})
    try:
        config.update(parse_runtime_options(runtime).as_dict(lora=True))
    except GeneratorConfigError as exc:
        raise CheckpointRejected(str(exc)) from exc
    return config
