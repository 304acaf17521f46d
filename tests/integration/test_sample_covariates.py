"""Style covariates measured from the pixels when a sample is stored, and backfilled later."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from evaluation.models import Prompt, PromptSet, Sample
from evaluation.sample_store import sample_covariates, store_sample
from models_registry.models import GenerativeModel, ModelVersion

pytestmark = pytest.mark.django_db


@pytest.fixture
def version(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    owner = get_user_model().objects.create_user("covariates-owner")
    model = GenerativeModel.objects.create(
        slug="cov-gen",
        display_name="Cov Gen",
        task="text-to-image",
        paradigm="diffusion",
        owner=owner,
    )
    return ModelVersion.objects.create(model=model, tag="v1")


def _prompt(task: str) -> Prompt:
    prompt_set = PromptSet.objects.create(slug=f"cov-{task}", name="cov", task=task)
    return Prompt.objects.create(prompt_set=prompt_set, text="a fox", category="animals")


def _reference(pixels: np.ndarray) -> tuple[float, float]:
    """Mean luma and HSV saturation, pixel by pixel with the standard library."""
    flat = pixels.reshape(-1, 3) / 255.0
    luma = [0.299 * r + 0.587 * g + 0.114 * b for r, g, b in flat]
    saturation = [colorsys.rgb_to_hsv(r, g, b)[1] for r, g, b in flat]
    return float(np.mean(luma)), float(np.mean(saturation))


def test_an_image_stores_its_size_brightness_saturation_and_generation_time(version):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (12, 30, 3), dtype=np.uint8)
    image[0, 0] = 0  # a black pixel has saturation 0
    sample, created = store_sample(
        version=version,
        prompt=_prompt("text-to-image"),
        seed=0,
        pixels=image,
        generation_seconds=1.25,
    )
    assert created
    stored = Sample.objects.get(pk=sample.pk).covariates
    brightness, saturation = _reference(image)
    assert stored["width"] == 30 and stored["height"] == 12
    assert stored["aspect_ratio"] == pytest.approx(2.5)
    assert stored["generation_seconds"] == 1.25
    assert "frames" not in stored
    assert stored["brightness"] == pytest.approx(brightness, abs=1e-5)
    assert stored["saturation"] == pytest.approx(saturation, abs=1e-5)
    grey = np.full((4, 4, 3), 128, dtype=np.uint8)
    assert sample_covariates(grey)["saturation"] == 0.0
    assert sample_covariates(grey)["brightness"] == pytest.approx(128 / 255, abs=1e-6)
    assert "generation_seconds" not in sample_covariates(grey)


def test_a_video_stores_frames_and_means_over_all_frames(version):
    clip = np.zeros((6, 10, 16, 3), dtype=np.uint8)
    clip[:3] = (255, 0, 0)  # three pure red frames, three black ones
    sample, _ = store_sample(
        version=version,
        prompt=_prompt("text-to-video"),
        seed=0,
        pixels=clip,
        generation_seconds=None,
    )
    stored = Sample.objects.get(pk=sample.pk).covariates
    assert stored["frames"] == 6 and (stored["width"], stored["height"]) == (16, 10)
    assert stored["aspect_ratio"] == pytest.approx(1.6)
    assert "generation_seconds" not in stored  # unknown, so votes on it skip that covariate
    assert stored["brightness"] == pytest.approx(0.299 / 2, abs=1e-6)
    assert stored["saturation"] == pytest.approx(0.5, abs=1e-6)


def test_large_media_are_subsampled_and_stay_close_to_the_exact_means():
    rng = np.random.default_rng(2)
    clip = rng.integers(0, 256, (16, 256, 384, 3), dtype=np.uint8)
    measured = sample_covariates(clip)
    flat = clip.reshape(-1, 3).astype(np.float64) / 255
    exact_luma = float((flat @ np.array([0.299, 0.587, 0.114])).mean())
    assert measured["brightness"] == pytest.approx(exact_luma, abs=3e-3)
    assert measured["frames"] == 16 and measured["width"] == 384


def test_backfill_measures_stored_media_and_keeps_extra_keys(version):
    image = np.full((8, 8, 3), (200, 100, 50), dtype=np.uint8)
    sample, _ = store_sample(
        version=version,
        prompt=_prompt("text-to-image"),
        seed=0,
        pixels=image,
        generation_seconds=2.0,
    )
    measured = dict(sample.covariates)
    Sample.objects.filter(pk=sample.pk).update(covariates={})
    call_command("backfill_sample_covariates")
    assert Sample.objects.get(pk=sample.pk).covariates == measured
    Sample.objects.filter(pk=sample.pk).update(covariates={"sharpness": 0.3})
    call_command("backfill_sample_covariates", "--overwrite")
    assert Sample.objects.get(pk=sample.pk).covariates == {**measured, "sharpness": 0.3}
