"""Lookalike fingerprints: a small thumbnail per sample, and which samples look alike.

A rater who saves every public picture of a model and compares it with a battle's media (by hash,
or by pixels after undoing a resize) learns who made the battle sample when the two are the same
or nearly so. Battle and showcase samples come from different seeds, but a model whose output
barely depends on the seed (mode collapse, an under-trained network) makes near-copies anyway.
The screen (evaluation.pools) keeps such public samples hidden while a lookalike battle sample
is live.

The fingerprint is the 16x16 RGB area average of the image (of the first frame of a clip). Area
averaging cannot increase the mean absolute difference (MAD) of two images of the same size, so
two samples whose full-size MAD is below a threshold have thumbnail MAD below it too: a
thumbnail threshold of t catches every pair an attacker's full-size match at t would catch.
"""

from __future__ import annotations

import numpy as np

SIDE = 16
FINGERPRINT_BYTES = SIDE * SIDE * 3


def fingerprint(pixels: np.ndarray) -> bytes:
    """16x16x3 uint8 area-average thumbnail (768 bytes) of uint8 [H, W, 3] or [T, H, W, 3]."""
    image = np.asarray(pixels)
    if image.ndim == 4:
        image = image[0]
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"need uint8 [H, W, 3] or [T, H, W, 3] pixels, got {image.shape}")
    return thumbnail(image).tobytes()


def thumbnail(image: np.ndarray, side: int = SIDE) -> np.ndarray:
    """Area average of uint8 [H, W, 3] to uint8 [side, side, 3] (exact for any H, W >= 1: each
    output cell averages the input pixels it covers, weighted by coverage)."""
    height, width = image.shape[:2]
    rows = _coverage(height, side)  # [side, H]
    cols = _coverage(width, side)  # [side, W]
    out = np.einsum("ih,hwc,jw->ijc", rows, image.astype(np.float64), cols)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _coverage(n: int, side: int) -> np.ndarray:
    """[side, n] weights: row i averages the input cells that output cell i covers."""
    edges = np.linspace(0.0, n, side + 1)
    starts, ends = edges[:-1, None], edges[1:, None]
    cells = np.arange(n)[None, :]
    overlap = np.clip(np.minimum(ends, cells + 1) - np.maximum(starts, cells), 0.0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)


def as_array(fingerprints: list[bytes]) -> np.ndarray:
    """Stack fingerprints into float32 [N, 768] (0-255)."""
    if not fingerprints:
        return np.zeros((0, FINGERPRINT_BYTES), dtype=np.float32)
    return np.frombuffer(b"".join(fingerprints), dtype=np.uint8).reshape(-1, FINGERPRINT_BYTES)


def lookalikes(candidates: np.ndarray, against: np.ndarray, threshold: float) -> np.ndarray:
    """bool [N]: does candidate n have a fingerprint within mean absolute difference `threshold`
    (0-255 scale) of any row of `against`? candidates [N, 768], against [M, 768]."""
    if len(candidates) == 0 or len(against) == 0:
        return np.zeros(len(candidates), dtype=bool)
    a = candidates.astype(np.float32)
    b = against.astype(np.float32)
    out = np.zeros(len(a), dtype=bool)
    step = max(1, 2**24 // (len(b) * FINGERPRINT_BYTES))  # at most 64 MB of floats per step
    for start in range(0, len(a), step):
        block = np.abs(a[start : start + step, None, :] - b[None, :, :]).mean(axis=2)
        out[start : start + step] = (block < threshold).any(axis=1)
    return out
