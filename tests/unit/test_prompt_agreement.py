"""The synthetic domain's checker (quality.check_samples) and the prompt_agreement metric."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from evaluation.features.registry import backbone_name, load_backbone
from evaluation.features.weights import WeightsUnavailable, sha256_file
from evaluation.metrics.contract import EmptyMetricError
from evaluation.metrics.prompt_agreement import (
    CHECKER_NAME,
    CheckerBackbone,
    NoCheckablePrompts,
    PromptAgreement,
)
from evaluation.metrics.suite import evaluate
from models_registry.generators.quality import (
    IMAGE_ATTRIBUTES,
    VIDEO_ATTRIBUTES,
    check_samples,
    prompt_agreement,
    read_attributes,
    save_classifier,
    train_classifier,
)
from models_registry.generators.synthetic import (
    BACKGROUNDS,
    COLOURS,
    DIRECTIONS,
    POSITIONS,
    SHAPES,
    SIZES,
    image_caption,
    render_image,
    render_image_dataset,
    render_video,
    render_video_dataset,
    sample_image_attributes,
    sample_video_attributes,
    video_caption,
)

IDS = dict(backbone=CHECKER_NAME, weights_sha256="0" * 64)


@pytest.fixture(scope="module")
def model():
    return train_classifier(n=600, steps=200)


@pytest.fixture(scope="module")
def checker(model):
    return CheckerBackbone(model, weights_sha256="0" * 64)


def _other(options, value: str) -> str:
    return next(name for name in options if name != value)


def test_renders_show_every_attribute_of_their_prompt(model):
    images, captions, _ = render_image_dataset(400, seed=99)
    checks = check_samples(model, images, captions)
    assert all(set(c.attributes) == set(IMAGE_ATTRIBUTES) for c in checks)
    assert np.mean([c.score for c in checks]) >= 0.97
    for name in IMAGE_ATTRIBUTES:
        assert np.mean([c.attributes[name] for c in checks]) >= 0.97, name

    clips, clip_captions, _ = render_video_dataset(60, seed=98, frames=8)
    checks = check_samples(model, clips, clip_captions)
    assert all(set(c.attributes) == set(VIDEO_ATTRIBUTES) for c in checks)
    assert np.mean([c.score for c in checks]) >= 0.97
    for name in VIDEO_ATTRIBUTES:
        assert np.mean([c.attributes[name] for c in checks]) >= 0.97, name


def test_noise_shows_almost_nothing(model):
    rng = np.random.default_rng(0)
    images, captions, _ = render_image_dataset(200, seed=5)
    noise = rng.integers(0, 256, images.shape, dtype=np.uint8)
    assert np.mean([c.score for c in check_samples(model, noise, captions)]) < 0.1
    clips, clip_captions, _ = render_video_dataset(40, seed=6, frames=8)
    noise = rng.integers(0, 256, clips.shape, dtype=np.uint8)
    assert np.mean([c.score for c in check_samples(model, noise, clip_captions)]) < 0.1


IMAGE_OPTIONS = {
    "colour": COLOURS,
    "shape": SHAPES,
    "size": SIZES,
    "position": POSITIONS,
    "background": BACKGROUNDS,
}
VIDEO_OPTIONS = {**IMAGE_OPTIONS, "direction": DIRECTIONS}
del VIDEO_OPTIONS["position"]


@pytest.mark.parametrize("wrong", IMAGE_ATTRIBUTES)
def test_an_image_with_one_wrong_attribute_scores_four_fifths(model, wrong):
    rng = np.random.default_rng(IMAGE_ATTRIBUTES.index(wrong))
    images, captions = [], []
    for _ in range(20):
        attrs = sample_image_attributes(rng)
        drawn = {**attrs, wrong: _other(IMAGE_OPTIONS[wrong], attrs[wrong])}
        images.append(render_image(**drawn, rng=rng))
        captions.append(image_caption(**attrs))
    checks = check_samples(model, np.stack(images), captions)
    assert [c.score for c in checks] == [pytest.approx(0.8)] * 20
    assert all(not c.attributes[wrong] for c in checks)
    assert all(c.attributes[name] for c in checks for name in IMAGE_ATTRIBUTES if name != wrong)


@pytest.mark.parametrize("wrong", VIDEO_ATTRIBUTES)
def test_a_clip_with_one_wrong_attribute_scores_four_fifths(model, wrong):
    rng = np.random.default_rng(10 + VIDEO_ATTRIBUTES.index(wrong))
    clips, captions = [], []
    for _ in range(12):
        attrs = sample_video_attributes(rng)
        drawn = {**attrs, wrong: _other(VIDEO_OPTIONS[wrong], attrs[wrong])}
        clips.append(render_video(**drawn, frames=8, rng=rng))
        captions.append(video_caption(**attrs))
    checks = check_samples(model, np.stack(clips), captions)
    assert [c.score for c in checks] == [pytest.approx(0.8)] * 12
    assert all(not c.attributes[wrong] for c in checks)


def test_a_still_clip_has_no_direction_and_an_empty_frame_only_a_background(model):
    attrs = dict(size="large", colour="red", shape="circle", direction="left", background="white")
    still_attrs = {k: v for k, v in attrs.items() if k != "direction"}
    frame = render_image(**still_attrs, position="center")
    still = np.repeat(frame[None], 8, axis=0)[None]
    (check,) = check_samples(model, still, [video_caption(**attrs)])
    assert check.read["direction"] is None and not check.attributes["direction"]
    assert check.score == pytest.approx(0.8)
    empty = np.full((1, 32, 32, 3), BACKGROUNDS["gray"], dtype=np.uint8)
    (read,) = read_attributes(model, empty)
    assert read == dict.fromkeys(("colour", "shape", "size", "position"), None) | {
        "background": "gray"
    }
    caption = image_caption(
        size="small", colour="blue", shape="square", position="top left", background="gray"
    )
    (check,) = check_samples(model, empty, [caption])
    assert check.score == pytest.approx(0.2) and check.attributes["background"]


def test_prompts_outside_the_grammar_get_no_score(model):
    images, captions, _ = render_image_dataset(3, seed=1)
    checks = check_samples(model, images, ["a photo of a cat", captions[1], "a red square 2"])
    assert checks[0] is None and checks[2] is None and checks[1].score == 1.0
    assert check_samples(model, images[:1], ["a dog"]) == [None]
    with pytest.raises(ValueError, match="one per sample"):
        check_samples(model, images, captions[:2])
    with pytest.raises(ValueError, match="no prompt is in the synthetic grammar"):
        prompt_agreement(model, images[:1], ["a dog"])


def test_prompt_agreement_keeps_its_colour_shape_both_keys(model):
    images, captions, _ = render_image_dataset(50, seed=2)
    result = prompt_agreement(model, images, captions)
    assert {"colour", "shape", "both", "n", "score", "position", "size", "background"} <= set(
        result
    )
    assert result["n"] == 50 and result["both"] == result["score"] == 1.0
    clips, clip_captions, _ = render_video_dataset(8, seed=2, frames=8)
    result = prompt_agreement(model, clips, clip_captions)
    assert result["direction"] == 1.0 and "position" not in result


def test_the_metric_is_the_mean_score_with_a_student_t_interval(checker):
    """A known mixture: 6 renders (score 1), 4 with a wrong colour (0.8), 2 noise images (0),
    and 2 prompts outside the grammar (not scored)."""
    rng = np.random.default_rng(4)
    media, prompts, expected = [], [], []
    for k in range(12):
        attrs = sample_image_attributes(rng)
        caption = image_caption(**attrs)
        if k < 6:
            media.append(render_image(**attrs, rng=rng))
            expected.append(1.0)
        elif k < 10:
            media.append(render_image(**{**attrs, "colour": _other(COLOURS, attrs["colour"])}))
            expected.append(0.8)
        else:
            media.append(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
            expected.append(0.0)
        prompts.append(caption)
    media += [render_image(**sample_image_attributes(rng)) for _ in range(2)]
    prompts += ["a photo of a cat", "a red square"]
    media = np.stack(media)
    batches = [(media[:5], prompts[:5]), (media[5:], prompts[5:])]
    value = evaluate("prompt_agreement", backbone=checker, reference=None, batches=batches)
    assert value.metric == "prompt_agreement" and value.n == 12
    assert value.value == pytest.approx(np.mean(expected))
    low, high = stats.t.interval(
        0.95, len(expected) - 1, loc=np.mean(expected), scale=stats.sem(expected)
    )
    assert high > 1.0  # the interval is clipped to the score's range
    assert (value.lower, value.upper) == (pytest.approx(low), 1.0)
    assert value.details["unparsed"] == 2
    assert value.details["colour"] == pytest.approx(6 / 12)
    assert value.details["shape"] == pytest.approx(10 / 12)
    assert value.backbone == CHECKER_NAME


def test_all_correct_renders_score_exactly_one(checker):
    clips, captions, _ = render_video_dataset(6, seed=11, frames=8)
    value = evaluate(
        "prompt_agreement", backbone=checker, reference=None, batches=[(clips, captions)]
    )
    assert (value.value, value.lower, value.upper, value.n) == (1.0, 1.0, 1.0, 6)


def test_no_checkable_prompt_is_a_clear_error():
    metric = PromptAgreement(**IDS)
    with pytest.raises(EmptyMetricError, match="at least one"):
        metric.compute()
    metric.update([None, None, None])
    with pytest.raises(NoCheckablePrompts, match="none of the 3 samples has a prompt of the"):
        metric.compute()


def test_the_checker_backbone_is_fitted_at_its_path_when_missing(tmp_path, model):
    with pytest.raises(WeightsUnavailable, match="PROMPT_CHECKER_WEIGHTS_PATH") as caught:
        load_backbone("checker", weights_path=None)
    assert caught.value.setting == "PROMPT_CHECKER_WEIGHTS_PATH"
    assert backbone_name("checker") == CHECKER_NAME

    saved = tmp_path / "given" / "checker.safetensors"
    save_classifier(model, saved)
    loaded = load_backbone("checker", weights_path=saved)
    assert loaded.name == CHECKER_NAME and not loaded.custom
    assert loaded.weights_sha256 == sha256_file(saved)
    images, captions, _ = render_image_dataset(20, seed=3)
    assert [c.score for c in loaded.check(images, captions)] == [1.0] * 20

    fresh = tmp_path / "fitted" / "checker.safetensors"
    fitted = load_backbone("checker", weights_path=fresh)  # trains (seconds) and saves
    assert fresh.is_file() and fitted.weights_sha256 == sha256_file(fresh)
    mtime = fresh.stat().st_mtime_ns
    again = load_backbone("checker", weights_path=fresh)
    assert again.weights_sha256 == fitted.weights_sha256 and fresh.stat().st_mtime_ns == mtime
    assert [c.score for c in again.check(images, captions)] == [1.0] * 20
    assert list(tmp_path.rglob("*.tmp")) == []
