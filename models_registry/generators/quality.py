"""Evidence of sample quality: a small CNN trained on the synthetic data that reads the colour
and the shape of an image, and the rate at which generated samples agree with their prompts.

The classifier is trained on rendered images only (never on generated ones), reaches ~100% on
held-out renders, and for a clip it reads the middle frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from models_registry.generators.synthetic import (
    COLOURS,
    SHAPES,
    parse_caption,
    render_image_dataset,
)

COLOUR_NAMES = list(COLOURS)
SHAPE_NAMES = list(SHAPES)


class ShapeColourClassifier(nn.Module):
    """uint8-derived images float [B, 3, 32, 32] in [-1, 1] -> (colour logits, shape logits)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1),
            nn.SiLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.SiLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3, padding=1),
            nn.SiLU(),
            nn.AdaptiveMaxPool2d(1),
        )
        self.colour = nn.Linear(64, len(COLOUR_NAMES))
        self.shape = nn.Linear(64, len(SHAPE_NAMES))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(x).flatten(1)
        return self.colour(h), self.shape(h)


def _to_input(images: np.ndarray) -> torch.Tensor:
    if images.ndim == 5:  # clips: read the middle frame
        images = images[:, images.shape[1] // 2]
    x = torch.from_numpy(np.ascontiguousarray(images)).float().permute(0, 3, 1, 2) / 127.5 - 1
    return (
        F.interpolate(x, size=(32, 32), mode="bilinear", antialias=True) if x.shape[-1] != 32 else x
    )


def _labels(captions: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    parsed = [parse_caption(c) for c in captions]
    colour = torch.tensor([COLOUR_NAMES.index(p["colour"]) for p in parsed])
    shape = torch.tensor([SHAPE_NAMES.index(p["shape"]) for p in parsed])
    return colour, shape


def train_classifier(
    n: int = 6000, steps: int = 600, seed: int = 1234, batch_size: int = 128
) -> ShapeColourClassifier:
    """Train on `n` rendered images (with light pixel noise so that slightly noisy samples are
    read as well) for `steps` Adam steps. About 20 s on 2 CPU cores."""
    torch.manual_seed(seed)
    images, captions, _ = render_image_dataset(n, seed)
    x = _to_input(images)
    colour, shape = _labels(captions)
    model = ShapeColourClassifier()
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(0, n, (batch_size,), generator=gen)
        batch = x[idx] + 0.1 * torch.randn(x[idx].shape, generator=gen)
        c_logits, s_logits = model(batch)
        loss = F.cross_entropy(c_logits, colour[idx]) + F.cross_entropy(s_logits, shape[idx])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model.eval()


@torch.no_grad()
def classify(model: ShapeColourClassifier, images: np.ndarray) -> tuple[list[str], list[str]]:
    """(colour names, shape names) read from uint8 [N, H, W, 3] images or [N, T, H, W, 3] clips."""
    c_logits, s_logits = model(_to_input(images))
    return (
        [COLOUR_NAMES[i] for i in c_logits.argmax(1).tolist()],
        [SHAPE_NAMES[i] for i in s_logits.argmax(1).tolist()],
    )


def prompt_agreement(
    model: ShapeColourClassifier, images: np.ndarray, prompts: Sequence[str]
) -> dict[str, float]:
    """Fractions of samples whose colour, shape, and both, agree with the prompt (0..1)."""
    colours, shapes = classify(model, images)
    parsed = [parse_caption(p) for p in prompts]
    colour_ok = np.array([c == p["colour"] for c, p in zip(colours, parsed, strict=True)])
    shape_ok = np.array([s == p["shape"] for s, p in zip(shapes, parsed, strict=True)])
    return {
        "colour": float(colour_ok.mean()),
        "shape": float(shape_ok.mean()),
        "both": float((colour_ok & shape_ok).mean()),
        "n": len(prompts),
    }


def save_classifier(model: ShapeColourClassifier, path: Path) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))
    tmp.replace(path)


def load_classifier(path: Path) -> ShapeColourClassifier:
    from safetensors.torch import load_file

    model = ShapeColourClassifier()
    model.load_state_dict(load_file(str(path)), strict=True)
    return model.eval()


def load_or_train_classifier(path: Path) -> ShapeColourClassifier:
    """The cached classifier at `path` (safetensors), trained and saved there when missing."""
    if path.is_file():
        return load_classifier(path)
    model = train_classifier()
    save_classifier(model, path)
    return model
