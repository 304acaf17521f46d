"""Procedural training data: coloured shapes with captions, and clips of shapes moving.

Everything is deterministic by seed and rendered with numpy (2x supersampled, so edges are
anti-aliased). The caption grammar is small and closed, so a token vocabulary and a caption
parser cover it exactly:

    image: "a {size} {colour} {shape} at the {position} on a {background} background"
           ("in the center" for the center position)
    video: "a {size} {colour} {shape} moving {direction} on a {background} background"
"""

from __future__ import annotations

import re

import numpy as np

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 180, 60),
    "blue": (40, 80, 225),
    "yellow": (235, 210, 40),
    "purple": (155, 50, 185),
}
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "black": (15, 15, 15),
    "gray": (128, 128, 128),
    "white": (240, 240, 240),
}
SHAPES = ("circle", "square", "triangle")
SIZES: dict[str, float] = {"small": 0.2, "large": 0.3}  # half-extent as a fraction of the side
POSITIONS: dict[str, tuple[float, float]] = {  # (x, y) centre as a fraction of the side
    "center": (0.5, 0.5),
    "top left": (0.3, 0.3),
    "top right": (0.7, 0.3),
    "bottom left": (0.3, 0.7),
    "bottom right": (0.7, 0.7),
}
DIRECTIONS: dict[str, tuple[float, float]] = {
    "left": (-1.0, 0.0),
    "right": (1.0, 0.0),
    "up": (0.0, -1.0),
    "down": (0.0, 1.0),
}
IMAGE_CATEGORIES = ("colour", "shape", "position", "size")
VIDEO_CATEGORIES = ("colour", "shape", "motion")
# Total travel of a moving shape over a clip, as a fraction of the side.
TRAVEL = 0.4
JITTER = 0.03

VOCABULARY: list[str] = sorted(
    {"a", "at", "the", "on", "in", "background", "moving"}
    | set(COLOURS)
    | set(BACKGROUNDS)
    | set(SHAPES)
    | set(SIZES)
    | set(DIRECTIONS)
    | {word for position in POSITIONS for word in position.split()}
)


def image_caption(*, size: str, colour: str, shape: str, position: str, background: str) -> str:
    where = "in the center" if position == "center" else f"at the {position}"
    return f"a {size} {colour} {shape} {where} on a {background} background"


def video_caption(*, size: str, colour: str, shape: str, direction: str, background: str) -> str:
    return f"a {size} {colour} {shape} moving {direction} on a {background} background"


_IMAGE_RE = re.compile(
    r"^a (?P<size>\w+) (?P<colour>\w+) (?P<shape>\w+) "
    r"(?:in the (?P<center>center)|at the (?P<position>\w+ \w+)) "
    r"on a (?P<background>\w+) background$"
)
_VIDEO_RE = re.compile(
    r"^a (?P<size>\w+) (?P<colour>\w+) (?P<shape>\w+) moving (?P<direction>\w+) "
    r"on a (?P<background>\w+) background$"
)


def parse_caption(caption: str) -> dict[str, str | None]:
    """Attributes of a caption of the synthetic grammar.

    Returns keys colour, shape, size, position, background, direction (None where the caption
    has no such attribute). Raises ValueError for text outside the grammar.
    """
    text = " ".join(caption.lower().split())
    out: dict[str, str | None] = dict.fromkeys(
        ("colour", "shape", "size", "position", "background", "direction")
    )
    if match := _IMAGE_RE.match(text):
        out["position"] = match["center"] or match["position"]
    elif match := _VIDEO_RE.match(text):
        out["direction"] = match["direction"]
    else:
        raise ValueError(f"caption is not in the synthetic grammar: {caption!r}")
    for key in ("colour", "shape", "size", "background"):
        out[key] = match[key]
    checks = {
        "colour": COLOURS,
        "shape": SHAPES,
        "size": SIZES,
        "position": POSITIONS,
        "background": BACKGROUNDS,
        "direction": DIRECTIONS,
    }
    for key, allowed in checks.items():
        if out[key] is not None and out[key] not in allowed:
            raise ValueError(f"unknown {key} {out[key]!r} in caption {caption!r}")
    return out


def _shape_mask(shape: str, cx: float, cy: float, r: float, size: int) -> np.ndarray:
    """Anti-aliased coverage float32 [size, size] of one shape (coordinates in pixels)."""
    scale = 2  # supersampling factor
    coords = (np.arange(size * scale, dtype=np.float32) + 0.5) / scale
    x = coords[None, :]
    y = coords[:, None]
    if shape == "circle":
        mask = (x - cx) ** 2 + (y - cy) ** 2 <= r * r
    elif shape == "square":
        mask = (np.abs(x - cx) <= r * 0.9) & (np.abs(y - cy) <= r * 0.9)
    elif shape == "triangle":
        top = cy - r
        mask = (y >= top) & (y <= cy + r) & (np.abs(x - cx) <= (y - top) / 2.0)
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return mask.reshape(size, scale, size, scale).mean(axis=(1, 3)).astype(np.float32)


def _paint(background: str, colour: str, mask: np.ndarray) -> np.ndarray:
    bg = np.array(BACKGROUNDS[background], dtype=np.float32)
    fg = np.array(COLOURS[colour], dtype=np.float32)
    img = bg[None, None, :] * (1.0 - mask[..., None]) + fg[None, None, :] * mask[..., None]
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _choice(rng: np.random.Generator, options) -> str:
    options = list(options)
    return options[int(rng.integers(len(options)))]


def render_image(
    *,
    size: str,
    colour: str,
    shape: str,
    position: str,
    background: str,
    resolution: int = 32,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """One image uint8 [H, W, 3] for the given attributes (small positional jitter from rng)."""
    jx, jy = rng.uniform(-JITTER, JITTER, 2) if rng is not None else (0.0, 0.0)
    fx, fy = POSITIONS[position]
    mask = _shape_mask(
        shape, (fx + jx) * resolution, (fy + jy) * resolution, SIZES[size] * resolution, resolution
    )
    return _paint(background, colour, mask)


def sample_image_attributes(rng: np.random.Generator) -> dict[str, str]:
    return {
        "size": _choice(rng, SIZES),
        "colour": _choice(rng, COLOURS),
        "shape": _choice(rng, SHAPES),
        "position": _choice(rng, POSITIONS),
        "background": _choice(rng, BACKGROUNDS),
    }


def sample_video_attributes(rng: np.random.Generator) -> dict[str, str]:
    return {
        "size": _choice(rng, SIZES),
        "colour": _choice(rng, COLOURS),
        "shape": _choice(rng, SHAPES),
        "direction": _choice(rng, DIRECTIONS),
        "background": _choice(rng, BACKGROUNDS),
    }


def render_image_dataset(
    n: int, seed: int, size: int = 32
) -> tuple[np.ndarray, list[str], list[str]]:
    """`n` captioned images: (uint8 [N, size, size, 3], captions, categories)."""
    rng = np.random.default_rng(seed)
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    captions: list[str] = []
    categories: list[str] = []
    for i in range(n):
        attrs = sample_image_attributes(rng)
        images[i] = render_image(**attrs, resolution=size, rng=rng)
        captions.append(image_caption(**attrs))
        categories.append(IMAGE_CATEGORIES[i % len(IMAGE_CATEGORIES)])
    return images, captions, categories


def render_video(
    *,
    size: str,
    colour: str,
    shape: str,
    direction: str,
    background: str,
    resolution: int = 32,
    frames: int = 8,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """One clip uint8 [T, H, W, 3]: the shape travels TRAVEL·side through the centre."""
    jx, jy = rng.uniform(-JITTER, JITTER, 2) if rng is not None else (0.0, 0.0)
    dx, dy = DIRECTIONS[direction]
    clip = np.empty((frames, resolution, resolution, 3), dtype=np.uint8)
    for t in range(frames):
        progress = t / max(frames - 1, 1) - 0.5
        cx = (0.5 + jx + dx * TRAVEL * progress) * resolution
        cy = (0.5 + jy + dy * TRAVEL * progress) * resolution
        mask = _shape_mask(shape, cx, cy, SIZES[size] * resolution, resolution)
        clip[t] = _paint(background, colour, mask)
    return clip


def render_video_dataset(
    n: int, seed: int, size: int = 32, frames: int = 8
) -> tuple[np.ndarray, list[str], list[str]]:
    """`n` captioned clips: (uint8 [N, frames, size, size, 3], captions, categories)."""
    rng = np.random.default_rng(seed)
    videos = np.empty((n, frames, size, size, 3), dtype=np.uint8)
    captions: list[str] = []
    categories: list[str] = []
    for i in range(n):
        attrs = sample_video_attributes(rng)
        videos[i] = render_video(**attrs, resolution=size, frames=frames, rng=rng)
        captions.append(video_caption(**attrs))
        categories.append(VIDEO_CATEGORIES[i % len(VIDEO_CATEGORIES)])
    return videos, captions, categories


def benchmark_prompts(task: str, n: int, seed: int = 2024) -> list[tuple[str, str]]:
    """Distinct (caption, category) pairs for a benchmark prompt set.

    Each category cycles through the values of the attribute it names (all colours for
    "colour", all shapes for "shape", ...), the other attributes drawn at random, so a
    per-category leaderboard compares models on every value of that attribute.
    """
    rng = np.random.default_rng(seed)
    if task == "text-to-image":
        categories = {"colour": COLOURS, "shape": SHAPES, "position": POSITIONS, "size": SIZES}
        attr_for = {"colour": "colour", "shape": "shape", "position": "position", "size": "size"}
        sample, caption = sample_image_attributes, image_caption
    elif task == "text-to-video":
        categories = {"colour": COLOURS, "shape": SHAPES, "motion": DIRECTIONS}
        attr_for = {"colour": "colour", "shape": "shape", "motion": "direction"}
        sample, caption = sample_video_attributes, video_caption
    else:
        raise ValueError(f"unknown task {task!r}; expected text-to-image or text-to-video")
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    names = list(categories)
    counters = dict.fromkeys(names, 0)
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 100 * n:
            raise ValueError(f"cannot draw {n} distinct prompts from the grammar")
        category = names[len(out) % len(names)]
        values = list(categories[category])
        attrs = sample(rng)
        attrs[attr_for[category]] = values[counters[category] % len(values)]
        text = caption(**attrs)
        if text in seen:
            continue
        counters[category] += 1
        seen.add(text)
        out.append((text, category))
    return out
