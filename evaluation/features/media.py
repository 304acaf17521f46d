"""Reading folders of images (PNG/JPEG) and videos (MP4) into uint8 arrays, with clear errors."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
VIDEO_SUFFIXES = (".mp4",)


class MediaError(ValueError):
    """A user-supplied media file or folder cannot be used; the message names it."""


def list_media(folder: Path, kind: str) -> list[Path]:
    """Sorted image or video files of `folder` ("image" or "video"); errors when there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MediaError(f"{folder} is not a directory")
    suffixes = IMAGE_SUFFIXES if kind == "image" else VIDEO_SUFFIXES
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
    if not files:
        raise MediaError(f"{folder} contains no {kind} files ({', '.join(suffixes)})")
    return files


def read_image(path: Path | BinaryIO, label: str | None = None) -> np.ndarray:
    """uint8 [H, W, 3] RGB from a path or a binary file object (`label` names it in errors)."""
    label = label or str(path)
    try:
        with Image.open(path) as img:
            img.load()
            return np.asarray(img.convert("RGB"), dtype=np.uint8)
    except (OSError, SyntaxError, ValueError) as exc:
        raise MediaError(f"cannot read image {label}: {exc}") from exc


def read_video(path: Path | BinaryIO, label: str | None = None) -> np.ndarray:
    """uint8 [T, H, W, 3] RGB frames of the first video stream (path or binary file object)."""
    import av

    label = label or str(path)
    try:
        with av.open(path if hasattr(path, "read") else str(path)) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    except (av.error.FFmpegError, IndexError, ValueError, OSError) as exc:
        raise MediaError(f"cannot read video {label}: {exc}") from exc
    if not frames:
        raise MediaError(f"video {label} has no frames")
    return np.stack(frames).astype(np.uint8, copy=False)


def write_video(path: Path, frames: np.ndarray, fps: int = 8) -> None:
    """Write uint8 [T, H, W, 3] frames as a lossless-ish H.264 MP4 (yuv444, crf 0)."""
    import av

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = int(frames.shape[2]), int(frames.shape[1])
        stream.pix_fmt = "yuv444p"
        stream.options = {"crf": "0"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def batches(
    paths: Sequence[Path],
    batch_size: int,
    *,
    kind: str,
    frames: int | None = None,
    purpose: str = "this metric",
) -> Iterator[np.ndarray]:
    """uint8 batches [B, H, W, 3] (images) or [B, frames, H, W, 3] (videos) read from files.

    See `batch_arrays` for the checks (one size per set, enough frames).
    """
    reader = read_image if kind == "image" else read_video
    return batch_arrays(
        ((p.name, reader(p)) for p in paths), batch_size, kind=kind, frames=frames, purpose=purpose
    )


def batch_arrays(
    items: Iterable[tuple[str, np.ndarray]],
    batch_size: int,
    *,
    kind: str,
    frames: int | None = None,
    purpose: str = "this metric",
) -> Iterator[np.ndarray]:
    """Stack named uint8 images [H, W, 3] or videos [T, H, W, 3] into batches.

    All items must share one size; a video shorter than `frames` is an error naming it and
    `purpose`; videos keep their leading `frames` frames (with `frames=None` a batch is cut to
    its shortest video).
    """
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    first: tuple[str, tuple[int, ...]] | None = None
    batch: list[np.ndarray] = []
    for name, item in items:
        shape = item.shape[0:2] if kind == "image" else item.shape[1:3]
        if first is None:
            first = (name, shape)
        elif shape != first[1]:
            raise MediaError(
                f"mixed sizes: {name} is {shape[1]}x{shape[0]} but {first[0]} is "
                f"{first[1][1]}x{first[1][0]}; all files of a set must have one size"
            )
        if kind == "video" and frames is not None:
            if item.shape[0] < frames:
                raise MediaError(
                    f"video {name} has {item.shape[0]} frames; {purpose} needs at least {frames}"
                )
            item = item[:frames]
        batch.append(item)
        if len(batch) == batch_size:
            yield _stack(batch)
            batch = []
    if batch:
        yield _stack(batch)


def _stack(items: list[np.ndarray]) -> np.ndarray:
    if items[0].ndim == 4:
        shortest = min(item.shape[0] for item in items)
        items = [item[:shortest] for item in items]
    return np.stack(items)
