"""Procedural training data: coloured shapes with captions, and clips of shapes moving.

Everything is deterministic by seed and rendered with numpy (2x supersampled, so edges are
anti-aliased). The caption grammar is small and closed, so a token vocabulary and a caption
parser cover it exactly:

    image: "a {size} {colour} {shape} at the {position} on a {background} background"
           ("in the center" for the center position)
    video: "a {size} {colour} {shape} moving {direction} on a {background} background"
    empty scene (image editing's "remove" target, "add" source): "a {background} background"

Image editing (end of the module): (source image, instruction) pairs of six kinds with exact
target images and the oracle's edit region.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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


def empty_caption(*, background: str) -> str:
    """The caption of a scene with no object (what an edit that removes the object leaves)."""
    return f"a {background} background"


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
_EMPTY_RE = re.compile(r"^a (?P<background>\w+) background$")


def parse_caption(caption: str) -> dict[str, str | None]:
    """Attributes of a caption of the synthetic grammar.

    Returns keys colour, shape, size, position, background, direction (None where the caption
    has no such attribute; an empty scene has only a background). Raises ValueError for text
    outside the grammar.
    """
    text = " ".join(caption.lower().split())
    out: dict[str, str | None] = dict.fromkeys(
        ("colour", "shape", "size", "position", "background", "direction")
    )
    if match := _IMAGE_RE.match(text):
        out["position"] = match["center"] or match["position"]
    elif match := _VIDEO_RE.match(text):
        out["direction"] = match["direction"]
    elif match := _EMPTY_RE.match(text):
        out["background"] = match["background"]
    else:
        raise ValueError(f"caption is not in the synthetic grammar: {caption!r}")
    for key in ("colour", "shape", "size", "background"):
        out[key] = match.groupdict().get(key)
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
    if task == "image-edit":  # (instruction, category); sources and targets: benchmark_edits
        return [(edit.instruction, edit.category) for edit in benchmark_edits(n, seed)]
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
        raise ValueError(
            f"unknown task {task!r}; expected text-to-image, text-to-video or image-edit"
        )
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


# --- image editing ------------------------------------------------------------------------------
# (source image, instruction) pairs with an exact target image. A scene is one coloured shape on a background, or
# an empty background. Six kinds of edit, each changing exactly one thing:
#
#     colour    "make the red circle blue"
#     shape     "turn the red circle into a square"
#     position  "move the red circle to the top left"
#     size      "make the red circle large"
#     remove    "remove the red circle"                       (target: the empty background)
#     add       "add a small red circle at the top left"      (source: the empty background)
#
# Every edit has a source caption and a target caption of the grammar (`parse_caption` reads
# both), so the synthetic checker can read an edited image against its target, and the renderer
# gives the exact target. `edit_region` is the oracle's edit mask: the pixels the object covers in
# the source or the target, grown by `EDIT_MASK_MARGIN` pixels; everything outside it must stay as
# in the source. Pure numpy; deterministic by seed.

EDIT_CATEGORIES = ("colour", "shape", "position", "size", "add", "remove")
# The reference editor's text encoder reads instructions: the grammar's words and the verbs.
EDIT_VOCABULARY: list[str] = sorted(
    set(VOCABULARY) | {"make", "turn", "into", "move", "to", "remove", "add"}
)
# Pixels the edit mask grows by around the object's footprint (anti-aliased edges and the
# sub-pixel placement of a generated object stay inside the region).
EDIT_MASK_MARGIN = 1
OBJECT_KEYS = ("size", "colour", "shape", "position")


def scene_caption(scene: dict[str, str]) -> str:
    """The caption of a scene {size, colour, shape, position, background} or {background}."""
    if "shape" not in scene:
        return empty_caption(background=scene["background"])
    return image_caption(**{k: scene[k] for k in (*OBJECT_KEYS, "background")})


def scene_of_caption(caption: str) -> dict[str, str]:
    """The scene a caption of the grammar describes (ValueError outside the grammar or for a
    clip caption)."""
    parsed = parse_caption(caption)
    if parsed["direction"] is not None:
        raise ValueError(f"an edit scene is a still image, not a clip: {caption!r}")
    return {k: v for k, v in parsed.items() if v is not None and k != "direction"}


def _where(position: str) -> str:
    return "in the center" if position == "center" else f"at the {position}"


@dataclass(frozen=True)
class Edit:
    """One edit: its kind, the instruction and the source and target scenes."""

    category: str
    instruction: str
    source: dict[str, str]
    target: dict[str, str]

    @property
    def source_caption(self) -> str:
        return scene_caption(self.source)

    @property
    def target_caption(self) -> str:
        return scene_caption(self.target)


def _other(rng: np.random.Generator, options, current: str) -> str:
    choices = [o for o in options if o != current]
    return choices[int(rng.integers(len(choices)))]


def make_edit(category: str, scene: dict[str, str], rng: np.random.Generator) -> Edit:
    """An edit of kind `category` applied to `scene` (a scene with an object; for "add" only its
    background is kept), the new value drawn from `rng` among those that change the scene."""
    obj = f"{scene.get('colour')} {scene.get('shape')}"
    target = dict(scene)
    if category == "colour":
        target["colour"] = _other(rng, COLOURS, scene["colour"])
        instruction = f"make the {obj} {target['colour']}"
    elif category == "shape":
        target["shape"] = _other(rng, SHAPES, scene["shape"])
        instruction = f"turn the {obj} into a {target['shape']}"
    elif category == "position":
        target["position"] = _other(rng, POSITIONS, scene["position"])
        instruction = f"move the {obj} to the {target['position']}"
    elif category == "size":
        target["size"] = _other(rng, SIZES, scene["size"])
        instruction = f"make the {obj} {target['size']}"
    elif category == "remove":
        target = {"background": scene["background"]}
        instruction = f"remove the {obj}"
    elif category == "add":
        source = {"background": scene["background"]}
        instruction = (
            f"add a {scene['size']} {scene['colour']} {scene['shape']} {_where(scene['position'])}"
        )
        return Edit(category, instruction, source, dict(scene))
    else:
        raise ValueError(f"unknown edit category {category!r}; expected one of {EDIT_CATEGORIES}")
    return Edit(category, instruction, dict(scene), target)


def sample_edit(rng: np.random.Generator, category: str | None = None) -> Edit:
    """A random edit (of `category`, or of a random one)."""
    return make_edit(category or _choice(rng, EDIT_CATEGORIES), sample_image_attributes(rng), rng)


def _coverage(scene: dict[str, str], resolution: int, jitter: tuple[float, float]) -> np.ndarray:
    """The object's anti-aliased coverage float32 [H, W] (zeros for an empty scene)."""
    if "shape" not in scene:
        return np.zeros((resolution, resolution), dtype=np.float32)
    fx, fy = POSITIONS[scene["position"]]
    return _shape_mask(
        scene["shape"],
        (fx + jitter[0]) * resolution,
        (fy + jitter[1]) * resolution,
        SIZES[scene["size"]] * resolution,
        resolution,
    )


def render_scene(
    scene: dict[str, str], *, resolution: int = 32, jitter: tuple[float, float] = (0.0, 0.0)
) -> np.ndarray:
    """uint8 [H, W, 3] of a scene; `jitter` shifts the object (fractions of the side). With no
    jitter an object scene is pixel-identical to `synthetic.render_image` of its attributes."""
    colour = scene.get("colour", next(iter(COLOURS)))
    return _paint(scene["background"], colour, _coverage(scene, resolution, jitter))


def render_edit(
    edit: Edit, *, resolution: int = 32, rng: np.random.Generator | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(source, exact target) uint8 [H, W, 3], the object jittered alike in both (from rng)."""
    jitter = tuple(rng.uniform(-JITTER, JITTER, 2)) if rng is not None else (0.0, 0.0)
    return (
        render_scene(edit.source, resolution=resolution, jitter=jitter),
        render_scene(edit.target, resolution=resolution, jitter=jitter),
    )


def _dilate(mask: np.ndarray, margin: int) -> np.ndarray:
    """Binary dilation of bool [H, W] by a (2·margin+1)² square."""
    out = mask.copy()
    height, width = mask.shape
    padded = np.pad(mask, margin)
    for dy in range(2 * margin + 1):
        for dx in range(2 * margin + 1):
            out |= padded[dy : dy + height, dx : dx + width]
    return out


def edit_region(
    source_caption: str, target_caption: str, *, resolution: int, margin: int = EDIT_MASK_MARGIN
) -> np.ndarray:
    """The oracle's edit mask bool [H, W]: pixels the object covers (coverage > 0) in the
    unjittered source or target render, dilated by `margin` pixels. Outside it, a faithful edit
    leaves the source unchanged."""
    source, target = scene_of_caption(source_caption), scene_of_caption(target_caption)
    covered = (_coverage(source, resolution, (0.0, 0.0)) > 0) | (
        _coverage(target, resolution, (0.0, 0.0)) > 0
    )
    return _dilate(covered, margin)


def render_edit_dataset(
    n: int, seed: int, size: int = 32, mix: tuple[str, ...] = EDIT_CATEGORIES
) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """`n` jittered edits: (sources uint8 [N, size, size, 3], targets likewise, instructions,
    categories), the categories cycling through `mix` (a category listed twice gets twice the
    share)."""
    rng = np.random.default_rng(seed)
    sources = np.empty((n, size, size, 3), dtype=np.uint8)
    targets = np.empty_like(sources)
    instructions: list[str] = []
    categories: list[str] = []
    for i in range(n):
        edit = sample_edit(rng, mix[i % len(mix)])
        sources[i], targets[i] = render_edit(edit, resolution=size, rng=rng)
        instructions.append(edit.instruction)
        categories.append(edit.category)
    return sources, targets, instructions, categories


def benchmark_edits(n: int, seed: int = 2024) -> list[Edit]:
    """`n` edits with distinct instructions, the categories taking turns (an equal share each)."""
    rng = np.random.default_rng(seed)
    out: list[Edit] = []
    seen: set[str] = set()
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 100 * n:
            raise ValueError(f"cannot draw {n} distinct edits from the grammar")
        edit = sample_edit(rng, EDIT_CATEGORIES[len(out) % len(EDIT_CATEGORIES)])
        if edit.instruction in seen:
            continue
        seen.add(edit.instruction)
        out.append(edit)
    return out
