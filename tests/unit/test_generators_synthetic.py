"""The synthetic dataset, its caption grammar and the prompt-agreement checker."""

from __future__ import annotations

import numpy as np
import pytest

from models_registry.generators.quality import prompt_agreement, train_classifier
from models_registry.generators.synthetic import (
    BACKGROUNDS,
    COLOURS,
    parse_caption,
    render_image_dataset,
    render_video_dataset,
)


def test_image_dataset_is_deterministic_by_seed_with_parseable_captions():
    a, captions, categories = render_image_dataset(20, seed=3)
    b, captions_b, _ = render_image_dataset(20, seed=3)
    c, _, _ = render_image_dataset(20, seed=4)
    assert a.shape == (20, 32, 32, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and captions == captions_b and not np.array_equal(a, c)
    assert set(categories) == {"colour", "shape", "position", "size"}
    for image, caption in zip(a, captions, strict=True):
        attrs = parse_caption(caption)
        assert attrs["direction"] is None
        # The corners show the background colour, the centre of mass holds the shape colour.
        assert np.abs(image[0, 0].astype(int) - BACKGROUNDS[attrs["background"]]).max() <= 1
        distances = np.abs(image.astype(int) - COLOURS[attrs["colour"]]).sum(-1)
        assert distances.min() <= 3


def test_video_dataset_moves_the_shape_in_the_described_direction():
    clips, captions, categories = render_video_dataset(12, seed=1, size=32, frames=8)
    assert clips.shape == (12, 8, 32, 32, 3) and set(categories) == {"colour", "shape", "motion"}
    for clip, caption in zip(clips, captions, strict=True):
        attrs = parse_caption(caption)
        colour = np.array(COLOURS[attrs["colour"]])
        centres = []
        for frame in clip:
            ys, xs = np.nonzero(np.abs(frame.astype(int) - colour).sum(-1) < 30)
            centres.append((xs.mean(), ys.mean()))
        dx = centres[-1][0] - centres[0][0]
        dy = centres[-1][1] - centres[0][1]
        expected = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
        ex, ey = expected[attrs["direction"]]
        assert dx * ex + dy * ey > 8  # moved ≥ 8 pixels along the direction


def test_parse_caption_rejects_text_outside_the_grammar():
    assert parse_caption("a small red circle at the top left on a gray background") == {
        "colour": "red",
        "shape": "circle",
        "size": "small",
        "position": "top left",
        "background": "gray",
        "direction": None,
    }
    assert parse_caption("a large blue square moving up on a white background")["direction"] == "up"
    with pytest.raises(ValueError, match="not in the synthetic grammar"):
        parse_caption("a photo of a cat")
    with pytest.raises(ValueError, match="unknown colour"):
        parse_caption("a small pink circle in the center on a black background")


def test_classifier_reads_renders_and_not_noise():
    model = train_classifier(n=600, steps=200)
    images, captions, _ = render_image_dataset(300, seed=99)
    on_renders = prompt_agreement(model, images, captions)
    assert on_renders["both"] >= 0.97 and on_renders["score"] >= 0.97
    assert min(on_renders[k] for k in ("size", "position", "background")) >= 0.97
    noise = np.random.default_rng(0).integers(0, 256, images.shape, dtype=np.uint8)
    on_noise = prompt_agreement(model, noise, captions)
    assert on_noise["both"] < 0.3 and on_noise["score"] < 0.1


def test_checker_reads_clips_and_their_motion_and_not_noise():
    model = train_classifier(n=600, steps=200)
    clips, captions, _ = render_video_dataset(48, seed=7, frames=8)
    on_renders = prompt_agreement(model, clips, captions)
    assert on_renders["both"] >= 0.97 and on_renders["direction"] >= 0.97
    assert on_renders["score"] >= 0.97
    noise = np.random.default_rng(1).integers(0, 256, clips.shape, dtype=np.uint8)
    assert prompt_agreement(model, noise, captions)["score"] < 0.1
