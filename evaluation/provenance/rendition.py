"""The published rendition of a sample's pixels, and media with no metadata.

A published image is the sample upscaled by an integer nearest-neighbour factor until its short
side is at least 256 pixels (the watermark needs 256x256; every generated pixel becomes a
factor x factor block, nothing is interpolated), watermarked, encoded as PNG and then signed.
"""

from __future__ import annotations

import io
import math
import struct

import numpy as np

from evaluation.provenance.watermark import embed_watermark

MIN_SIDE = 256
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The only PNG chunks a pixels-only file needs; anything else (tEXt, iTXt, eXIf, caBX) carries data.
PIXEL_CHUNKS = frozenset({"IHDR", "PLTE", "IDAT", "IEND"})


class UnreadableImage(ValueError):
    """Bytes that are not an image Pillow can decode within the size limit."""


def publication_scale(height: int, width: int) -> int:
    """The integer upscaling factor that brings the short side to at least MIN_SIDE pixels."""
    return max(1, math.ceil(MIN_SIDE / max(1, min(height, width))))


def publication_pixels(pixels: np.ndarray, *, watermark_id: int) -> np.ndarray:
    """uint8 [H, W, 3] -> the watermarked rendition, uint8 [s*H, s*W, 3] (s = publication_scale)."""
    scale = publication_scale(*pixels.shape[:2])
    if scale > 1:
        pixels = np.repeat(np.repeat(pixels, scale, axis=0), scale, axis=1)
    return embed_watermark(np.ascontiguousarray(pixels), watermark_id)


def encode_png_pixels_only(pixels: np.ndarray) -> bytes:
    """PNG bytes of uint8 [H, W, 3] with no ancillary chunks (no text, no EXIF, no C2PA)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels), mode="RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg_round_trip(pixels: np.ndarray, quality: int) -> np.ndarray:
    """uint8 [H, W, 3] after a JPEG encode at `quality` and a decode (a robustness attack)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    with Image.open(io.BytesIO(buffer.getvalue())) as image:
        return np.asarray(image.convert("RGB"))


def decode_image(data: bytes, *, max_pixels: int) -> tuple[np.ndarray, str]:
    """(uint8 [H, W, 3] RGB, format) of untrusted image bytes, refusing more than `max_pixels`.

    The header is read first, so a decompression bomb is refused before any pixel is decoded.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise UnreadableImage(
                    f"the image is {width}x{height}; at most {max_pixels} pixels are accepted"
                )
            fmt = (image.format or "").lower()
            pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise UnreadableImage(f"not a readable image: {exc}") from exc
    return pixels, fmt


def strip_metadata(data: bytes, *, max_pixels: int = 64_000_000) -> bytes:
    """The pixels of an image as a PNG with no metadata at all (C2PA, text chunks, EXIF)."""
    pixels, _ = decode_image(data, max_pixels=max_pixels)
    return encode_png_pixels_only(pixels)


def png_chunk_types(data: bytes) -> list[str]:
    """The chunk types of a PNG file in order (e.g. ["IHDR", "IDAT", "IEND"])."""
    if not data.startswith(PNG_SIGNATURE):
        raise UnreadableImage("not a PNG file")
    types, offset = [], len(PNG_SIGNATURE)
    while offset + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        types.append(kind.decode("latin-1"))
        offset += 12 + length
    return types
