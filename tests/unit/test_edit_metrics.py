"""The image-editing domain and its metrics against known truth: the exact target is a perfect
edit, the untouched source is none, and nothing changed outside the edit region costs nothing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evaluation.metrics.edit import (
    EditPrompts,
    PixelBackbone,
    masked_outside,
    preservation_l1_scores,
)
from evaluation.metrics.prompt_agreement import CheckerBackbone
from evaluation.metrics.suite import evaluate, evaluate_many
from models_registry.generators.quality import train_classifier
from models_registry.generators.synthetic import (
    EDIT_CATEGORIES,
    benchmark_edits,
    edit_region,
    make_edit,
    parse_caption,
    render_edit,
    render_edit_dataset,
    render_image,
    render_scene,
    scene_of_caption,
)

CHANGED = {"colour": "colour", "shape": "shape", "position": "position", "size": "size"}


def test_the_training_mix_sets_each_edit_kinds_share():
    from models_registry.generators.reference import EDIT_TRAINING_MIX

    _, _, _, plain = render_edit_dataset(12, seed=0)
    assert plain == list(EDIT_CATEGORIES) * 2
    sources, targets, instructions, mixed = render_edit_dataset(18, seed=0, mix=EDIT_TRAINING_MIX)
    shares = {c: mixed.count(c) for c in EDIT_CATEGORIES}
    assert shares == {**dict.fromkeys(EDIT_CATEGORIES, 2), "position": 4, "add": 6}
    assert sources.shape == targets.shape == (18, 32, 32, 3) and len(instructions) == 18


def test_the_benchmark_has_distinct_instructions_and_an_equal_share_of_each_edit_kind():
    edits = benchmark_edits(48)
    assert len({e.instruction for e in edits}) == 48
    assert [e.category for e in edits[:6]] == list(EDIT_CATEGORIES)
    assert {c: sum(e.category == c for e in edits) for c in EDIT_CATEGORIES} == dict.fromkeys(
        EDIT_CATEGORIES, 8
    )
    for edit in edits:
        source, target = parse_caption(edit.source_caption), parse_caption(edit.target_caption)
        changed = {k for k in source if source[k] != target[k]}
        if edit.category in CHANGED:
            assert changed == {CHANGED[edit.category]}, edit
        elif edit.category == "remove":
            assert target["shape"] is None and source["shape"] and target["background"]
        else:  # add
            assert source["shape"] is None and target["shape"]
        assert source["background"] == target["background"]


def test_an_edit_changes_pixels_only_inside_the_oracle_region():
    rng = np.random.default_rng(3)
    for edit in benchmark_edits(48):
        source, target = render_edit(edit, resolution=32, rng=rng)  # jittered alike
        region = edit_region(edit.source_caption, edit.target_caption, resolution=32)
        assert 0 < region.mean() < 1
        assert not (source != target).any(-1)[~region].any(), edit
        assert (source != target).any(-1)[region].any(), edit


def test_scenes_render_as_the_grammar_renders_them():
    scene = scene_of_caption("a large blue square at the top right on a gray background")
    assert np.array_equal(render_scene(scene), render_image(**scene, resolution=32))
    empty = render_scene({"background": "white"})
    assert (empty == (240, 240, 240)).all()
    with pytest.raises(ValueError, match="still image"):
        scene_of_caption("a small red circle moving up on a black background")
    with pytest.raises(ValueError, match="unknown edit category"):
        make_edit("recolour", scene, np.random.default_rng(0))


def _edit_batch(edits, outputs, resolution=32):
    sources = np.stack([render_scene(e.source, resolution=resolution) for e in edits])
    masks = np.stack(
        [edit_region(e.source_caption, e.target_caption, resolution=resolution) for e in edits]
    )
    prompts = EditPrompts(
        [e.target_caption for e in edits],
        sources=sources,
        source_captions=[e.source_caption for e in edits],
        masks=masks,
    )
    return outputs, prompts


@pytest.fixture(scope="module")
def checker():
    return CheckerBackbone(train_classifier(n=600, steps=200), weights_sha256="0" * 64)


def test_edit_accuracy_is_one_for_the_exact_target_and_low_for_the_unedited_source(checker):
    edits = benchmark_edits(24)
    targets = np.stack([render_scene(e.target) for e in edits])
    sources = np.stack([render_scene(e.source) for e in edits])
    exact = evaluate(
        "edit_accuracy", backbone=checker, reference=None, batches=[_edit_batch(edits, targets)]
    )
    assert exact.value == pytest.approx(1.0) and exact.n == 24
    assert exact.details["object"] == 1.0  # the removals show no object
    unedited = evaluate(
        "edit_accuracy", backbone=checker, reference=None, batches=[_edit_batch(edits, sources)]
    )
    # The source lacks the one change each edit asks for: no edit is exact.
    assert unedited.value == 0.0 and unedited.n == 24
    for attribute in ("colour", "shape", "position", "size", "object"):
        assert unedited.details[attribute] < 1.0, attribute
    assert unedited.details["background"] == 1.0  # what no edit changes is all there


def test_preservation_l1_is_zero_for_identical_images_and_exact_for_a_known_change():
    edits = benchmark_edits(12)
    outputs, prompts = _edit_batch(edits, None)
    sources = prompts.sources
    assert np.array_equal(preservation_l1_scores(sources, sources, prompts.masks), np.zeros(12))
    # Change only inside the region: still zero. Add 10 to every channel outside it: 10/255.
    inside = np.where(prompts.masks[..., None], 255 - sources, sources).astype(np.uint8)
    assert np.allclose(preservation_l1_scores(inside, sources, prompts.masks), 0.0)
    shifted = sources.astype(np.int16)
    shifted[~prompts.masks] = np.clip(shifted[~prompts.masks], 0, 245) + 10
    shifted = shifted.astype(np.uint8)
    expected = np.array(
        [
            np.abs(shifted[i].astype(float) - sources[i])[~prompts.masks[i]].mean() / 255
            for i in range(12)
        ]
    )
    assert np.allclose(preservation_l1_scores(shifted, sources, prompts.masks), expected)
    assert np.allclose(expected, 10 / 255)  # no background is above 245
    result = evaluate(
        "preservation_l1",
        backbone=PixelBackbone(),
        reference=None,
        batches=[(shifted, prompts)],
    )
    assert result.value == pytest.approx(10 / 255) and result.n == 12
    assert result.lower == pytest.approx(10 / 255) and result.upper == pytest.approx(10 / 255)


def test_preservation_l1_of_the_exact_target_is_zero_and_of_a_blank_image_is_not():
    edits = benchmark_edits(12)
    targets = np.stack([render_scene(e.target) for e in edits])
    batch = _edit_batch(edits, targets)
    exact = evaluate("preservation_l1", backbone=PixelBackbone(), reference=None, batches=[batch])
    assert exact.value == 0.0
    blank = np.zeros_like(targets)
    off = evaluate(
        "preservation_l1", backbone=PixelBackbone(), reference=None, batches=[(blank, batch[1])]
    )
    assert off.value > 0.05


class SceneCLIP:
    """An aligned toy CLIP: a render and the caption of its scene embed to the same vector
    (one-hot over the scene's attribute values), as a perfect CLIP would."""

    name, modality, weights_sha256, custom = "scene-clip", "image-text", "0" * 64, False
    VALUES = [
        "red",
        "green",
        "blue",
        "yellow",
        "purple",
        "circle",
        "square",
        "triangle",
        "small",
        "large",
        "center",
        "top left",
        "top right",
        "bottom left",
        "bottom right",
        "black",
        "gray",
        "white",
    ]

    def __init__(self, edits) -> None:
        self.images: dict[bytes, torch.Tensor] = {}
        for edit in edits:
            for scene in (edit.source, edit.target):
                self.images[render_scene(scene).tobytes()] = self._vector(scene)

    def _vector(self, scene) -> torch.Tensor:
        v = torch.zeros(len(self.VALUES), dtype=torch.float64)
        for value in scene.values():
            v[self.VALUES.index(value)] = 1.0
        return v

    def encode_images(self, images: np.ndarray) -> torch.Tensor:
        # Images it has not seen (masked ones) embed by their mean colour, deterministically.
        return torch.stack(
            [
                self.images.get(
                    img.tobytes(),
                    torch.cat(
                        [
                            torch.as_tensor(img.reshape(-1, 3).mean(0) / 255, dtype=torch.float64),
                            torch.ones(len(self.VALUES) - 3, dtype=torch.float64),
                        ]
                    ),
                )
                for img in images
            ]
        )

    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        return torch.stack([self._vector(scene_of_caption(t)) for t in texts])


def test_clip_direction_is_one_for_the_exact_target_zero_for_the_source_and_minus_one_back():
    edits = benchmark_edits(24)
    clip = SceneCLIP(edits)
    targets = np.stack([render_scene(e.target) for e in edits])
    sources = np.stack([render_scene(e.source) for e in edits])
    exact = evaluate(
        "clip_direction", backbone=clip, reference=None, batches=[_edit_batch(edits, targets)]
    )
    assert exact.value == pytest.approx(1.0) and exact.n == 24
    unchanged = evaluate(
        "clip_direction", backbone=clip, reference=None, batches=[_edit_batch(edits, sources)]
    )
    assert unchanged.value == pytest.approx(0.0)
    # The image moving from the target back to the source, the captions asking the other way.
    _, prompts = _edit_batch(edits, None)
    prompts.sources = targets
    backwards = evaluate(
        "clip_direction", backbone=clip, reference=None, batches=[(sources, prompts)]
    )
    assert backwards.value == pytest.approx(-1.0)


def test_preservation_clip_is_zero_when_only_the_edit_region_differs():
    edits = benchmark_edits(12)
    clip = SceneCLIP(edits)
    targets = np.stack([render_scene(e.target) for e in edits])
    outputs, prompts = _edit_batch(edits, targets)
    # Target and source agree outside the region, so the masked images are identical.
    assert np.array_equal(
        masked_outside(targets, prompts.masks), masked_outside(prompts.sources, prompts.masks)
    )
    result = evaluate(
        "preservation_clip", backbone=clip, reference=None, batches=[(targets, prompts)]
    )
    assert result.value == pytest.approx(0.0, abs=1e-12)
    inverted = (255 - targets).astype(np.uint8)
    changed = evaluate(
        "preservation_clip", backbone=clip, reference=None, batches=[(inverted, prompts)]
    )
    assert changed.value > 0.01


def test_edit_metrics_merge_like_one_pass_and_refuse_plain_prompts(checker):
    edits = benchmark_edits(12)
    rng = np.random.default_rng(0)
    noisy = rng.integers(0, 256, size=(12, 32, 32, 3), dtype=np.uint8)
    whole = evaluate_many(
        ["preservation_l1"],
        backbone=PixelBackbone(),
        references={},
        batches=[_edit_batch(edits, noisy)],
    )["preservation_l1"]
    from evaluation.metrics.edit import PreservationL1

    a = PreservationL1(metric="preservation_l1", backbone="pixels", weights_sha256="")
    b = PreservationL1(metric="preservation_l1", backbone="pixels", weights_sha256="")
    a.update(None, *_edit_batch(edits[:5], noisy[:5]))
    b.update(None, *_edit_batch(edits[5:], noisy[5:]))
    a.merge(b)
    merged = a.compute()
    assert merged.value == pytest.approx(whole.value) and merged.upper == pytest.approx(whole.upper)
    with pytest.raises(ValueError, match="source image, captions and edit mask"):
        evaluate(
            "preservation_l1",
            backbone=PixelBackbone(),
            reference=None,
            batches=[(noisy, ["a red circle"] * 12)],
        )
    with pytest.raises(ValueError, match="must match their sources"):
        evaluate(
            "preservation_l1",
            backbone=PixelBackbone(),
            reference=None,
            batches=[(noisy[:, :16, :16], _edit_batch(edits, None)[1])],
        )


def test_compute_metric_on_a_folder_refuses_edit_metrics_naming_why(tmp_path):
    from evaluation.features.media import MediaError
    from evaluation.folder_metrics import folder_metric_compute

    for name in ("edit_accuracy", "clip_direction", "preservation_l1", "preservation_clip"):
        with pytest.raises(MediaError, match=f"{name} compares each edit with its source"):
            folder_metric_compute(metric=name, fake=tmp_path)
