"""An invisible watermark carrying a 64-bit id (invisible-watermark, DWT-DCT-SVD), and the known
watermarks of public generators.

Our payload is a sample's 64-bit ``watermark_id``. Decoding reads 64 bits from any image of at
least 256x256 pixels; ``bit_accuracy`` compares them with an expected payload. An image that was
resized is read again at the sizes we publish at (``candidate_sizes``), since the DWT-DCT blocks
only line up at the embedding size. The detection threshold (WATERMARK_THRESHOLD) comes from the
measured false-positive rate on images that carry no watermark (see the README).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

PAYLOAD_BITS = 64
# DWT-DCT-SVD on the two chroma planes at strength 72 (measured on the demo's renders, README):
# every bit back after a resize, ~98% after JPEG q75, PSNR ~37 dB. The library's default
# (dwtDct, 36, chroma) lost JPEG q75 entirely (~52%, chance) on the same images.
METHOD = "dwtDctSvd"
SCALES = (0, 72, 72)
# The public generators' marks below use the library's dwtDct at its default strength.
KNOWN_METHOD = "dwtDct"
MIN_PIXELS = 256 * 256  # invisible-watermark refuses smaller images
# Stable Diffusion's reference scripts (bytes "StableDiffusionV1") and SDXL / diffusers (48 bits)
# stamp their outputs with the same library and method: outputs carrying them are recognisable.
KNOWN_WATERMARKS: dict[str, list[int]] = {
    "stable-diffusion-v1": [
        int(b) for b in np.unpackbits(np.frombuffer(b"StableDiffusionV1", np.uint8))
    ],
    "stable-diffusion-xl": [
        int(b) for b in bin(0b101100111110110010010000011110111011000110011110)[2:]
    ],
}


class WatermarkError(ValueError):
    """The image cannot carry or be read for a watermark (too small, wrong shape)."""


def _check(pixels: np.ndarray) -> None:
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise WatermarkError(f"need uint8 [H, W, 3] pixels, got {pixels.dtype} {pixels.shape}")
    if pixels.shape[0] * pixels.shape[1] < MIN_PIXELS:
        raise WatermarkError(
            f"a {pixels.shape[1]}x{pixels.shape[0]} image is too small for the watermark "
            "(at least 256x256 pixels)"
        )


def id_bits(watermark_id: int) -> list[int]:
    """The 64 bits (most significant first) of an unsigned 64-bit id."""
    if not 0 <= watermark_id < 1 << PAYLOAD_BITS:
        raise ValueError(f"watermark id must be in [0, 2**64), got {watermark_id}")
    return [(watermark_id >> (PAYLOAD_BITS - 1 - k)) & 1 for k in range(PAYLOAD_BITS)]


def bits_id(bits: Sequence[int]) -> int:
    value = 0
    for bit in bits:
        value = (value << 1) | int(bit)
    return value


def embed_bits(pixels: np.ndarray, bits: Sequence[int]) -> np.ndarray:
    """`pixels` (uint8 [H, W, 3] RGB, H*W >= 256*256) with `bits` embedded invisibly."""
    from imwatermark import WatermarkEncoder

    _check(pixels)
    encoder = WatermarkEncoder()
    encoder.set_watermark("bits", list(bits))
    bgr = np.ascontiguousarray(pixels[:, :, ::-1])
    return np.ascontiguousarray(encoder.encode(bgr, METHOD, scales=list(SCALES))[:, :, ::-1])


def embed_watermark(pixels: np.ndarray, watermark_id: int) -> np.ndarray:
    """`pixels` (uint8 [H, W, 3] RGB) carrying `watermark_id` (64 bits)."""
    return embed_bits(pixels, id_bits(watermark_id))


def decode_bits(
    pixels: np.ndarray, length: int = PAYLOAD_BITS, *, method: str = METHOD
) -> np.ndarray:
    """The `length` bits (uint8 0/1) the decoder reads from uint8 [H, W, 3] RGB pixels (our
    method and strength, or a public generator's ``KNOWN_METHOD`` at the library default)."""
    from imwatermark import WatermarkDecoder

    _check(pixels)
    decoder = WatermarkDecoder("bits", length)
    bgr = np.ascontiguousarray(pixels[:, :, ::-1])
    options = {"scales": list(SCALES)} if method == METHOD else {}
    return np.asarray(decoder.decode(bgr, method, **options), dtype=np.uint8)


def bit_accuracy(decoded: Sequence[int], expected: Sequence[int]) -> float:
    """Fraction of bits that agree (0.5 on average between unrelated payloads)."""
    decoded, expected = np.asarray(decoded, np.uint8), np.asarray(expected, np.uint8)
    return float((decoded == expected).mean())


def resize_rgb(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bicubic (PIL) resize of uint8 [H, W, 3] to [height, width, 3]."""
    from PIL import Image

    image = Image.fromarray(pixels).resize((width, height), Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.uint8)


def readings(
    pixels: np.ndarray, candidate_sizes: Iterable[tuple[int, int]] = ()
) -> list[tuple[tuple[int, int], np.ndarray]]:
    """The decoded 64 bits at the image's own size and at each candidate (width, height) with its
    aspect ratio (within 2%): [((width, height), bits), ...]. Sizes too small are skipped."""
    height, width = pixels.shape[:2]
    out = []
    if height * width >= MIN_PIXELS:
        out.append(((width, height), decode_bits(pixels)))
    for w, h in dict.fromkeys(candidate_sizes):
        if (w, h) == (width, height) or w * h < MIN_PIXELS:
            continue
        if abs((w / h) / (width / height) - 1.0) > 0.02:
            continue
        out.append(((w, h), decode_bits(resize_rgb(pixels, w, h))))
    return out


@dataclass(frozen=True)
class WatermarkMatch:
    watermark_id: int | None  # the best-matching known id (None: nothing to compare with)
    bit_accuracy: float  # of the decoded bits against that id
    detected: bool  # bit_accuracy >= threshold
    size: tuple[int, int] | None  # the (width, height) the bits were read at


def match_ids(bit_readings, known_ids: np.ndarray, *, threshold: float) -> WatermarkMatch:
    """The known 64-bit id nearest (Hamming) to any reading; `known_ids`: uint64 [N]."""
    best = WatermarkMatch(None, 0.0, False, None)
    ids = np.asarray(known_ids, dtype=np.uint64)
    if ids.size == 0:
        return best
    # Bits of every id as a [N, 64] matrix, most significant first.
    shifts = np.arange(PAYLOAD_BITS - 1, -1, -1, dtype=np.uint64)
    id_matrix = ((ids[:, None] >> shifts[None, :]) & np.uint64(1)).astype(np.uint8)
    for size, bits in bit_readings:
        agree = (id_matrix == bits[None, :]).mean(axis=1)
        k = int(agree.argmax())
        if agree[k] > best.bit_accuracy:
            accuracy = float(agree[k])
            best = WatermarkMatch(int(ids[k]), accuracy, accuracy >= threshold, size)
    return best


def known_watermark(pixels: np.ndarray, *, threshold: float) -> tuple[str, float]:
    """(name, bit accuracy) of the public generator watermark `pixels` carries best; name is ""
    below `threshold` or when the image is too small to carry one."""
    height, width = pixels.shape[:2]
    if height * width < MIN_PIXELS:
        return "", 0.0
    best_name, best_accuracy = "", 0.0
    for name, bits in KNOWN_WATERMARKS.items():
        accuracy = bit_accuracy(decode_bits(pixels, len(bits), method=KNOWN_METHOD), bits)
        if accuracy > best_accuracy:
            best_name, best_accuracy = name, accuracy
    return (best_name if best_accuracy >= threshold else ""), best_accuracy
