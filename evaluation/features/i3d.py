"""I3D video features for FVD, following StyleGAN-V's protocol.

The detector is the TorchScript I3D (Kinetics-400) that StyleGAN-V publishes
(i3d_torchscript.pt). Each video contributes its first 16 frames, resized to 224x224 (PIL
bicubic), scaled to [-1, 1] and laid out [B, 3, T, H, W]; the detector is called with
rescale=False, resize=False, return_features=True, i.e. the 400-d features before the logits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from evaluation.features.resize import resize_images
from evaluation.features.weights import WeightsRejected

FRAMES = 16
SIZE = 224
PUBLISHED_SHA256 = "bec6519f66ea534e953026b4ae2c65553c17bf105611c746d904657e5860a5e2"


def prepare_videos(videos: np.ndarray, *, frames: int = FRAMES, size: int = SIZE) -> torch.Tensor:
    """uint8 [B, T >= frames, H, W, 3] -> float32 [B, 3, frames, size, size] in [-1, 1]."""
    if videos.ndim != 5 or videos.shape[-1] != 3:
        raise ValueError(f"videos must be uint8 [B, T, H, W, 3], got {list(videos.shape)}")
    if videos.shape[1] < frames:
        raise ValueError(f"videos have {videos.shape[1]} frames; FVD needs at least {frames}")
    clip = videos[:, :frames]
    b, t = clip.shape[:2]
    resized = resize_images(clip.reshape(b * t, *clip.shape[2:]), size).reshape(b, t, size, size, 3)
    x = torch.from_numpy(np.ascontiguousarray(resized)).float() / 127.5 - 1.0
    return x.permute(0, 4, 1, 2, 3).contiguous()


class I3DBackbone:
    """encode_videos(uint8 [B, T, H, W, 3]) -> float32 [B, D] (D = 400 for the published I3D)."""

    modality = "video"

    def __init__(
        self,
        weights_path: Path,
        *,
        name: str,
        weights_sha256: str,
        custom: bool,
        device: str | torch.device = "cpu",
        frames: int = FRAMES,
    ) -> None:
        self.name, self.weights_sha256, self.custom = name, weights_sha256, custom
        self.device = torch.device(device)
        self.frames = frames
        try:
            self.network = torch.jit.load(str(weights_path), map_location=self.device).eval()
        except RuntimeError as exc:
            raise WeightsRejected(f"{weights_path} is not a TorchScript file: {exc}") from exc
        self.dim = int(self.encode_videos(np.zeros((1, frames, SIZE, SIZE, 3), np.uint8)).shape[1])

    @torch.no_grad()
    def encode_videos(self, videos: np.ndarray) -> torch.Tensor:
        x = prepare_videos(videos, frames=self.frames).to(self.device)
        features = self.network(x, rescale=False, resize=False, return_features=True)
        return features.float().reshape(x.shape[0], -1).cpu()
