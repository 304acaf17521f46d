"""InceptionV3 pool3 features (2048-d) through torch-fidelity's FeatureExtractorInceptionV3.

The layout is torch-fidelity's port of the TensorFlow FID network (the one torchmetrics uses);
the published file is weights-inception-2015-12-05-6726825d.pth. Images are resized to 299x299
with PIL bicubic (clean resizing) before the network, so its internal resize is the identity.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from evaluation.features.resize import resize_images
from evaluation.features.weights import WeightsRejected, load_state_dict

INPUT_SIZE = 299
PUBLISHED_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"


def build_inception_network(state_dict: dict[str, torch.Tensor]) -> torch.nn.Module:
    """torch-fidelity's FeatureExtractorInceptionV3 (pool3 output) holding `state_dict`."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    # torch-fidelity reads its weights with a full unpickle; hand it a buffer re-serialised from
    # tensors we already loaded with weights_only=True, so nothing from the file is unpickled.
    buffer = io.BytesIO()
    torch.save(dict(state_dict), buffer)
    buffer.seek(0)
    try:
        return FeatureExtractorInceptionV3(
            "inception-v3-compat", ["2048"], feature_extractor_weights_path=buffer
        )
    except RuntimeError as exc:  # load_state_dict: missing/unexpected keys, shape mismatch
        raise WeightsRejected(
            f"not an InceptionV3 state dict in torch-fidelity's layout: {str(exc)[:500]}"
        ) from exc


class InceptionBackbone:
    """encode_images(uint8 [N, H, W, 3]) -> float32 [N, 2048]."""

    dim = 2048
    modality = "image"

    def __init__(
        self,
        weights_path: Path,
        *,
        name: str,
        weights_sha256: str,
        custom: bool,
        device: str | torch.device = "cpu",
    ) -> None:
        self.name, self.weights_sha256, self.custom = name, weights_sha256, custom
        self.device = torch.device(device)
        self.network = build_inception_network(load_state_dict(weights_path)).to(self.device)

    @torch.no_grad()
    def encode_images(self, images: np.ndarray) -> torch.Tensor:
        resized = resize_images(images, INPUT_SIZE)
        x = torch.from_numpy(np.ascontiguousarray(resized)).permute(0, 3, 1, 2).to(self.device)
        (features,) = self.network(x)
        return features.float().cpu()
