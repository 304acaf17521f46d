"""open_clip image and text embeddings (L2-normalised) from a model name and a local checkpoint.

A checkpoint may be an open_clip state dict (.safetensors or torch.save, read weights_only) or
OpenAI's original TorchScript release (e.g. ViT-B-32.pt, whose sha256 open_clip publishes in its
download URL). A custom architecture is described by `<model name>.json` (open_clip's config
format) next to the checkpoint, as written by `train_demo_clip`.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from evaluation.features.weights import WeightsRejected, load_state_dict

_REGISTERED_CONFIGS: set[Path] = set()


def published_sha256(model_name: str | None) -> str | None:
    """sha256 of OpenAI's release of `model_name` (part of open_clip's download URL), if any."""
    from open_clip.pretrained import get_pretrained_url

    url = get_pretrained_url(model_name or "", "openai")
    return url.split("/")[-2] if url else None


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any("/code/" in name for name in archive.namelist())


def register_local_config(weights_path: Path, model_name: str) -> bool:
    """Register `<model_name>.json` next to the weights with open_clip; True if one was found."""
    import open_clip

    config = Path(weights_path).with_name(f"{model_name}.json").resolve()
    if not config.is_file():
        return False
    if config not in _REGISTERED_CONFIGS:  # open_clip appends to its search path on every call
        open_clip.add_model_config(config)
        _REGISTERED_CONFIGS.add(config)
    return True


def build_clip_model(weights_path: Path, model_name: str):
    """(model, preprocess, tokenizer) with the checkpoint's weights; no download, no fallback."""
    import open_clip
    from open_clip.model import build_model_from_openai_state_dict

    register_local_config(weights_path, model_name)
    if model_name not in open_clip.list_models():
        raise WeightsRejected(
            f"unknown open_clip model {model_name!r}: use a name from open_clip.list_models() or "
            f"put its config as {Path(weights_path).with_name(model_name + '.json')}"
        )
    if _is_torchscript(weights_path):
        # OpenAI's release is a TorchScript archive; only its tensors are used.
        scripted = torch.jit.load(str(weights_path), map_location="cpu")
        model = build_model_from_openai_state_dict(scripted.state_dict())
        _, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=None)
    else:
        model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=None)
        state = load_state_dict(weights_path)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise WeightsRejected(
                f"{weights_path} does not match open_clip model {model_name!r}: {str(exc)[:500]}"
            ) from exc
    tokenizer = open_clip.get_tokenizer(model_name)
    return model.eval().requires_grad_(False), preprocess, tokenizer


class CLIPBackbone:
    """encode_images(uint8 [N, H, W, 3]) and encode_texts(list[str]) -> float32 [N, E], unit norm."""

    modality = "image-text"

    def __init__(
        self,
        weights_path: Path,
        *,
        model_name: str,
        name: str,
        weights_sha256: str,
        custom: bool,
        device: str | torch.device = "cpu",
    ) -> None:
        self.name, self.weights_sha256, self.custom = name, weights_sha256, custom
        self.device = torch.device(device)
        self.model, self.preprocess, self.tokenizer = build_clip_model(weights_path, model_name)
        self.model.to(self.device)
        self.dim = (
            int(self.model.text_projection.shape[1])
            if isinstance(getattr(self.model, "text_projection", None), torch.Tensor)
            else int(self.encode_texts(["a"]).shape[1])
        )

    @torch.no_grad()
    def encode_images(self, images: np.ndarray) -> torch.Tensor:
        pixels = torch.stack([self.preprocess(Image.fromarray(image)) for image in images])
        features = self.model.encode_image(pixels.to(self.device))
        return torch.nn.functional.normalize(features.float(), dim=-1).cpu()

    @torch.no_grad()
    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(list(texts)).to(self.device)
        features = self.model.encode_text(tokens)
        return torch.nn.functional.normalize(features.float(), dim=-1).cpu()
