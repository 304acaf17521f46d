"""Packing checkpoints into the archives the registry accepts (pure; no Django imports).

Used by the upload benchmark to write a large native checkpoint without holding it in memory,
and by tests to build small archives. (``examples/submit.py`` packs folders itself so that it
stays a standalone client.)
"""

from __future__ import annotations

import io
import json
import os
import struct
import tarfile
import zipfile
from collections.abc import Iterable
from pathlib import Path


def archive_bytes(files: dict[str, bytes], *, kind: str = "zip") -> bytes:
    """An in-memory archive of ``{path: content}``; ``kind``: zip, tar or tar.gz."""
    buffer = io.BytesIO()
    if kind == "zip":
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, content in files.items():
                archive.writestr(name, content)
    else:
        mode = "w:gz" if kind == "tar.gz" else "w"
        with tarfile.open(fileobj=buffer, mode=mode) as archive:
            for name, content in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(content)
                archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def write_safetensors_stream(
    path: Path, tensors: Iterable[tuple[str, str, list[int]]], *, fill: bytes = b"\x00"
) -> int:
    """Write a safetensors file with the given (name, dtype, shape) tensors and filler data.

    Writes in 8 MiB blocks so files of many GB use constant memory. Returns the file size.
    Only for benchmarks and tests: the values are ``fill`` repeated, not trained weights.
    """
    widths = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I64": 8, "I32": 4, "U8": 1}
    header: dict[str, dict] = {}
    offset = 0
    for name, dtype, shape in tensors:
        size = widths[dtype]
        for dim in shape:
            size *= dim
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # the format pads the header to 8-byte alignment
    block = (fill * (8 * 1024**2 // len(fill) + 1))[: 8 * 1024**2]
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(raw)))
        out.write(raw)
        remaining = offset
        while remaining:
            step = min(remaining, len(block))
            out.write(block[:step])
            remaining -= step
    return os.path.getsize(path)
