"""Media for judges: PNG bytes, base64 data URLs, and evenly sampled video frames (PyAV)."""

from __future__ import annotations

import base64
import io
from typing import BinaryIO

import numpy as np
from PIL import Image


class MediaError(ValueError):
    """A sample's file cannot be read as the image or video it claims to be."""


def png_bytes(image: Image.Image) -> bytes:
    """Encode a PIL image as PNG bytes (lossless, so the judge sees what the generator made)."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def image_mime(data: bytes) -> str:
    """MIME type of encoded image bytes, from their magic number."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    raise MediaError("not a PNG, JPEG or WebP image")


def data_url(data: bytes) -> str:
    """`data:<mime>;base64,...` URL of encoded image bytes, as OpenAI-compatible APIs accept."""
    return f"data:{image_mime(data)};base64,{base64.b64encode(data).decode('ascii')}"


def decode_data_url(url: str) -> bytes:
    """Inverse of `data_url` (used by the local backend, which receives OpenAI-style messages)."""
    header, sep, payload = url.partition(",")
    if not sep or not header.startswith("data:") or not header.endswith(";base64"):
        raise MediaError("expected a base64 data URL")
    return base64.b64decode(payload, validate=True)


def open_image(data: bytes) -> Image.Image:
    """Decode image bytes to an RGB PIL image; MediaError if they are not an image."""
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except Exception as exc:  # PIL raises many types for corrupt data
        raise MediaError(f"cannot decode image: {exc}") from exc
    return image.convert("RGB")


def sample_frame_indices(total: int, n: int) -> list[int]:
    """`n` frame indices spread evenly over `total` frames, first and last included (or all)."""
    if total <= 0:
        raise MediaError("the video has no frames")
    if n >= total:
        return list(range(total))
    return sorted({int(i) for i in np.linspace(0, total - 1, num=max(n, 1)).round()})


def video_frames(source: str | BinaryIO, n: int) -> list[Image.Image]:
    """`n` RGB frames sampled evenly from a video file (path or binary file object), in order."""
    import av

    try:
        with av.open(source) as container:
            stream = container.streams.video[0]
            frames = [frame.to_image() for frame in container.decode(stream)]
    except (av.error.FFmpegError, IndexError) as exc:
        raise MediaError(f"cannot decode video: {exc}") from exc
    # Decoding everything once is simpler than seeking and exact for any codec; samples are short.
    return [frames[i].convert("RGB") for i in sample_frame_indices(len(frames), n)]
