"""Evidence of sample quality: the synthetic domain's own checker, which reads from an image or a
clip what a caption of the synthetic grammar (models_registry.generators.synthetic) says, and the
rate at which generated samples agree with their prompts.

What is read, per sample:

- colour and shape: two logistic regressions over a few interpretable features of the largest
  foreground blob (`ShapeColourClassifier`), fitted on rendered images only, never on generated
  ones; they read ~100% of held-out renders correctly. For a clip they read the middle frame.
- size: the blob's larger bounding-box side as a share of the image side, against the extents the
  renderer draws for each size (nearest wins); for a clip the median over its frames.
- position (images): the centre of the blob's bounding box, nearest of the caption positions
  (the box centre, not the mass centroid, which sits lower in a triangle).
- direction (clips): the least-squares track of the blob's box centre over the frames; the
  direction of the dominant axis of travel, when it travels at least TRAVEL / 2 of the side.
- background: the median border colour, nearest background colour, when most of the border shows
  it (so noise reads no background).

A sample with no plausible object (no blob, a blob covering most of the frame, or a blob of no
single colour: noise) shows none of the object's attributes. A sample's score is the fraction of
its prompt's attributes it shows: colour, shape, size, background and position (images) or
direction (clips): five attributes each.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage
from torch import nn
from torch.nn import functional as F

from models_registry.generators.synthetic import (
    BACKGROUNDS,
    COLOURS,
    DIRECTIONS,
    POSITIONS,
    SHAPES,
    SIZES,
    TRAVEL,
    parse_caption,
    render_image_dataset,
)

N_FEATURES = 11
COLOUR_NAMES = list(COLOURS)
SHAPE_NAMES = list(SHAPES)
# What the checker compares with a prompt, per media kind (each counts equally in the score).
IMAGE_ATTRIBUTES = ("colour", "shape", "size", "position", "background")
VIDEO_ATTRIBUTES = ("colour", "shape", "size", "direction", "background")
BACKGROUND_TOLERANCE = 0.1  # per channel (0..1): a border pixel showing the background colour
# A plausible object: a blob covering this share of the frame, most of it of one colour.
OBJECT_AREA = (0.01, 0.6)
OBJECT_UNIFORMITY = 0.15  # share of blob pixels within 0.15 (RGB distance, 0..1) of its median
# Larger bounding-box side / image side the renderer draws per size (a square is 0.9 of the
# extent of a circle of the same size).
SIZE_EXTENTS = {name: 2 * half * 0.95 for name, half in SIZES.items()}


def _background_and_blob(img: np.ndarray) -> tuple[np.ndarray, float, np.ndarray | None]:
    """(background RGB, share of border pixels showing it, mask of the largest foreground blob
    or None) of one float image [H, W, 3] in 0..1.

    Background = median border colour; foreground = pixels far from it, opened so that isolated
    noisy pixels drop out; the largest connected blob is the object.
    """
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
    bg = np.median(border, axis=0)
    uniform = float((np.abs(border - bg).max(axis=-1) < BACKGROUND_TOLERANCE).mean())
    mask = np.linalg.norm(img - bg, axis=-1) > 0.25
    labels, count = ndimage.label(ndimage.binary_opening(mask))
    if count == 0:
        return bg, uniform, None
    blob = labels == 1 + int(np.argmax(ndimage.sum(mask, labels, range(1, count + 1))))
    return bg, uniform, blob


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
        bg, _, mask = _background_and_blob(img)
        out[i, 3:6] = bg
        if mask is None:
            continue
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


@dataclass(frozen=True)
class FrameGeometry:
    """What one frame shows besides colour and shape (fractions of the image side)."""

    background: str | None
    has_object: bool
    centre: tuple[float, float] | None  # (x, y) of the blob's bounding box
    extent: float | None  # its larger side


def frame_geometry(image: np.ndarray) -> FrameGeometry:
    """Background, object presence, box centre and extent of one uint8 image [H, W, 3]."""
    img = image.astype(np.float32) / 255.0
    bg, uniform, blob = _background_and_blob(img)
    background = None
    if uniform >= 0.5:
        name = min(BACKGROUNDS, key=lambda b: np.abs(np.array(BACKGROUNDS[b]) / 255 - bg).max())
        if np.abs(np.array(BACKGROUNDS[name]) / 255 - bg).max() < 2 * BACKGROUND_TOLERANCE:
            background = name
    if blob is None:
        return FrameGeometry(background, False, None, None)
    pixels = img[blob]
    one_colour = np.linalg.norm(pixels - np.median(pixels, axis=0), axis=-1) < 0.15
    if not (
        OBJECT_AREA[0] <= blob.mean() <= OBJECT_AREA[1] and one_colour.mean() >= OBJECT_UNIFORMITY
    ):
        return FrameGeometry(background, False, None, None)
    ys, xs = np.nonzero(blob)
    height, width = blob.shape
    centre = ((xs.min() + xs.max() + 1) / 2 / width, (ys.min() + ys.max() + 1) / 2 / height)
    extent = max((ys.max() - ys.min() + 1) / height, (xs.max() - xs.min() + 1) / width)
    return FrameGeometry(background, True, centre, float(extent))


def _nearest(value: float, options: dict[str, float]) -> str:
    return min(options, key=lambda name: abs(options[name] - value))


def _position_of(centre: tuple[float, float]) -> str:
    x, y = centre
    return min(POSITIONS, key=lambda p: (POSITIONS[p][0] - x) ** 2 + (POSITIONS[p][1] - y) ** 2)


def _direction_of(centres: list[tuple[float, float] | None]) -> str | None:
    """The direction of travel of a track of box centres (None where absent), or None when the
    object is seen in fewer than two frames or travels less than TRAVEL / 2 of the side."""
    seen = [(t, c) for t, c in enumerate(centres) if c is not None]
    if len(seen) < 2:
        return None
    t = np.array([t for t, _ in seen], dtype=np.float64)
    xy = np.array([c for _, c in seen], dtype=np.float64)
    slope = np.polyfit(t, xy, 1)[0]  # [dx/dt, dy/dt]
    travel = slope * (len(centres) - 1)
    if np.linalg.norm(travel) < TRAVEL / 2:
        return None
    return max(DIRECTIONS, key=lambda d: float(np.dot(DIRECTIONS[d], travel)))


@torch.no_grad()
def read_attributes(model: ShapeColourClassifier, media: np.ndarray) -> list[dict[str, str | None]]:
    """What the checker reads from uint8 images [N, H, W, 3] or clips [N, T, H, W, 3]: per sample
    {colour, shape, size, background, and position (images) or direction (clips)}, None for what
    it cannot read (no object: none of colour, shape, size, position, direction)."""
    if media.ndim not in (4, 5) or media.shape[-1] != 3:
        raise ValueError(
            f"expected images [N, H, W, 3] or clips [N, T, H, W, 3], got {media.shape}"
        )
    if len(media) == 0:
        return []
    colours, shapes = classify(model, media)
    out: list[dict[str, str | None]] = []
    for i, item in enumerate(media):
        frames = item if media.ndim == 5 else item[None]
        geometry = [frame_geometry(frame) for frame in frames]
        middle = geometry[len(geometry) // 2]
        extents = [g.extent for g in geometry if g.extent is not None]
        read: dict[str, str | None] = {
            "colour": colours[i] if middle.has_object else None,
            "shape": shapes[i] if middle.has_object else None,
            "size": _nearest(float(np.median(extents)), SIZE_EXTENTS) if extents else None,
            "background": middle.background,
        }
        if media.ndim == 5:
            read["direction"] = _direction_of([g.centre for g in geometry])
        else:
            read["position"] = _position_of(middle.centre) if middle.centre else None
        out.append(read)
    return out


@dataclass(frozen=True)
class SampleCheck:
    """One sample against its prompt: the score (fraction of the prompt's attributes shown, 0..1),
    whether each attribute is shown, and what was read."""

    score: float
    attributes: dict[str, bool]
    read: dict[str, str | None]


def parse_prompt(prompt: str) -> dict[str, str | None] | None:
    """The prompt's attributes, or None for a prompt outside the synthetic grammar."""
    try:
        return parse_caption(prompt)
    except ValueError:
        return None


def check_samples(
    model: ShapeColourClassifier, media: np.ndarray, prompts: Sequence[str]
) -> list[SampleCheck | None]:
    """Each sample checked against its prompt; None for a prompt `parse_caption` cannot read
    (no score: the checker only knows the synthetic domain). An image is checked on
    IMAGE_ATTRIBUTES, a clip on VIDEO_ATTRIBUTES; a prompt of the other media kind (an image
    caption for a clip) is checked on the attributes both share and counts the rest as not shown.
    An empty scene's caption ("a black background") is checked on its background and on showing
    no object ("object").
    """
    if len(prompts) != len(media):
        raise ValueError(f"{len(media)} samples but {len(prompts)} prompts: give one per sample")
    parsed = [parse_prompt(p) for p in prompts]
    keep = [i for i, p in enumerate(parsed) if p is not None]
    out: list[SampleCheck | None] = [None] * len(prompts)
    if not keep:
        return out
    names = VIDEO_ATTRIBUTES if media.ndim == 5 else IMAGE_ATTRIBUTES
    for i, read in zip(keep, read_attributes(model, media[keep]), strict=True):
        wanted = {k: v for k, v in parsed[i].items() if v is not None}
        shown = {name: read.get(name) == wanted[name] for name in wanted if name in names}
        shown.update({name: False for name in wanted if name not in names})
        if parsed[i]["shape"] is None:  # an empty scene ("a black background"): no object
            shown["object"] = read.get("shape") is None
        out[i] = SampleCheck(score=sum(shown.values()) / len(shown), attributes=shown, read=read)
    return out


def prompt_agreement(
    model: ShapeColourClassifier, images: np.ndarray, prompts: Sequence[str]
) -> dict[str, float]:
    """Fractions (0..1) of samples whose colour, shape, both, and each other attribute of the
    prompt agree with it, and the mean checker score ("score"), over the `n` samples whose
    prompt is in the synthetic grammar (ValueError when none is)."""
    checks = [c for c in check_samples(model, images, prompts) if c is not None]
    if not checks:
        raise ValueError("no prompt is in the synthetic grammar: nothing to check")
    objects = [c for c in checks if "colour" in c.attributes]  # not the empty scenes
    out: dict[str, float] = {
        "colour": float(np.mean([c.attributes["colour"] for c in objects])) if objects else 0.0,
        "shape": float(np.mean([c.attributes["shape"] for c in objects])) if objects else 0.0,
        "both": (
            float(np.mean([c.attributes["colour"] and c.attributes["shape"] for c in objects]))
            if objects
            else 0.0
        ),
    }
    for name in ("size", "position", "direction", "background", "object"):
        hits = [c.attributes[name] for c in checks if name in c.attributes]
        if hits:
            out[name] = float(np.mean(hits))
    out["score"] = float(np.mean([c.score for c in checks]))
    out["n"] = len(checks)
    return out


def save_classifier(model: ShapeColourClassifier, path: Path) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # concurrent fits do not collide
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
