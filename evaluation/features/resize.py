"""Clean resizing: PIL bicubic with antialiasing (as clean-fid recommends), uint8 in and out."""

from __future__ import annotations

import numpy as np
from PIL import Image


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 [N, H, W, 3] -> uint8 [N, size, size, 3]; unchanged when already that size."""
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be uint8 [N, H, W, 3], got {list(images.shape)}")
    if images.shape[1] == size and images.shape[2] == size:
        return images
    out = np.empty((images.shape[0], size, size, 3), dtype=np.uint8)
    for i, image in enumerate(images):
        out[i] = np.asarray(
            Image.fromarray(image).resize((size, size), resample=Image.Resampling.BICUBIC)
        )
    return out
