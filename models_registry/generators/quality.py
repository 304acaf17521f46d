"""Evidence of sample quality: a simple classifier trained on the synthetic data that reads the
colour and the shape of an image, and the rate at which generated samples agree with their prompts.

The classifier (logistic regressions over a few interpretable features) is fitted on rendered
images only, never on generated ones; it reads ~100% of held-out renders correctly. For a clip
it reads the middle frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage
from torch import nn
from torch.nn import functional as F

from models_registry.generators.synthetic import (
    COLOURS,
    SHAPES,
    parse_caption,
    render_image_dataset,
)

N_FEATURES = 11
COLOUR_NAMES = list(COLOURS)
SHAPE_NAMES = list(SHAPES)


def shape_colour_features(images: np.ndarray) -> torch.Tensor:
    """Hand-made features float [N, N_FEATURES] of uint8 [N, H, W, 3] images (clips: the middle frame).

    Background = median border colour; foreground = pixels far from it. Features: mean
    foreground RGB, background RGB, the bounding box fill ratio (square 1, circle π/4,
    triangle 1/2) and the share of foreground in the top and bottom halves of the box
    (a triangle is bottom-heavy) and the fill of its top and bottom corner cells, measured on
    the largest foreground blob.
    """
    if images.ndim == 5:
        images = images[:, images.shape[1] // 2]
    out = np.zeros((len(images), N_FEATURES), dtype=np.float32)
    for i, img in enumerate(images.astype(np.float32) / 255.0):
        border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
        bg = np.median(border, axis=0)
        mask = np.linalg.norm(img - bg, axis=-1) > 0.25
        out[i, 3:6] = bg
        labels, count = ndimage.label(ndimage.binary_opening(mask))
        if count == 0:
            continue
        # The largest connected blob is the object; isolated noisy pixels are not.
        mask = labels == 1 + int(np.argmax(ndimage.sum(mask, labels, range(1, count + 1))))
        ys, xs = np.nonzero(mask)
        box = mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        half = box.shape[0] // 2
        out[i, 0:3] = img[mask].mean(axis=0)
        out[i, 6] = box.mean()
        out[i, 7] = box[:half].sum() / box.sum()
        out[i, 8] = box[box.shape[0] - half :].sum() / box.sum()
        # Corner cells: full for a square (even with rounded edges), half-empty for a circle,
        # empty at the top and full at the bottom for a triangle.
        ch, cw = max(1, box.shape[0] // 4), max(1, box.shape[1] // 4)
        out[i, 9] = (box[:ch, :cw].mean() + box[:ch, -cw:].mean()) / 2
        out[i, 10] = (box[-ch:, :cw].mean() + box[-ch:, -cw:].mean()) / 2
    return torch.from_numpy(out)


class ShapeColourClassifier(nn.Module):
    """Two logistic regressions over `shape_colour_features`: colour and shape."""

    def __init__(self) -> None:
        super().__init__()
        self.colour = nn.Linear(N_FEATURES, len(COLOUR_NAMES))
        self.shape = nn.Linear(N_FEATURES, len(SHAPE_NAMES))

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.colour(features), self.shape(features)


def _to_input(images: np.ndarray) -> torch.Tensor:
    return shape_colour_features(images)


def _labels(captions: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    parsed = [parse_caption(c) for c in captions]
    colour = torch.tensor([COLOUR_NAMES.index(p["colour"]) for p in parsed])
    shape = torch.tensor([SHAPE_NAMES.index(p["shape"]) for p in parsed])
    return colour, shape


def augment(images: np.ndarray, seed: int) -> np.ndarray:
    """Soften renders the way generators do: Gaussian blur (σ up to 1.2 px) and pixel noise
    (σ up to 15 levels), half of the images left clean."""
    rng = np.random.default_rng(seed)
    out = images.astype(np.float32)
    for i in range(len(out)):
        if rng.random() < 0.5:
            continue
        out[i] = ndimage.gaussian_filter(out[i], sigma=(rng.uniform(0, 1.2),) * 2 + (0,))
        out[i] += rng.normal(0, rng.uniform(0, 15), out[i].shape)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def train_classifier(n: int = 2000, steps: int = 300, seed: int = 1234) -> ShapeColourClassifier:
    """Fit both heads by full-batch Adam on `n` rendered, partly `augment`ed images (seconds)."""
    torch.manual_seed(seed)
    images, captions, _ = render_image_dataset(n, seed)
    x = _to_input(augment(images, seed))
    colour, shape = _labels(captions)
    model = ShapeColourClassifier()
    optimiser = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(steps):
        c_logits, s_logits = model(x)
        loss = F.cross_entropy(c_logits, colour) + F.cross_entropy(s_logits, shape)
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
    """The cached classifier at `path` (safetensors), trained and saved there when missing or
    made for other features."""
    if path.is_file():
        try:
            return load_classifier(path)
        except RuntimeError:  # saved by an older feature set: refit
            pass
    model = train_classifier()
    save_classifier(model, path)
    return model
