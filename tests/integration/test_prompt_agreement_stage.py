"""The metrics stage stores a prompt_agreement row read by the synthetic checker, fitted on first
use at PROMPT_CHECKER_WEIGHTS_PATH, for image and video versions whose samples are renders."""

from __future__ import annotations

import numpy as np
import pytest
from django.contrib.auth import get_user_model

from evaluation.features.weights import sha256_file
from evaluation.models import MetricResult, MetricStatus, Prompt, PromptSet
from evaluation.sample_store import store_sample
from evaluation.services import version_metrics_compute
from models_registry.generators.synthetic import (
    render_image_dataset,
    render_video_dataset,
)
from models_registry.models import GenerativeModel, ModelVersion


@pytest.fixture
def stage_settings(settings, tmp_path):
    """Default metrics of each task; only the checker's weights can be had (fitted at its path)."""
    settings.METRICS_BY_TASK = {"text-to-image": None, "text-to-video": None}
    settings.INCEPTION_WEIGHTS_PATH = None
    settings.CLIP_WEIGHTS_PATH = None
    settings.I3D_WEIGHTS_PATH = None
    settings.METRICS_DEVICE = "cpu"
    settings.PROMPT_CHECKER_WEIGHTS_PATH = tmp_path / "checker" / "prompt-checker.safetensors"
    return settings.PROMPT_CHECKER_WEIGHTS_PATH


def make_version(slug: str, task: str, media: np.ndarray, prompts: list[str]) -> ModelVersion:
    owner, _ = get_user_model().objects.get_or_create(username="author")
    model = GenerativeModel.objects.create(
        slug=slug, display_name=slug, task=task, paradigm="diffusion", owner=owner
    )
    version = ModelVersion.objects.create(model=model, tag="v1")
    prompt_set, _ = PromptSet.objects.get_or_create(
        slug=f"{slug}-prompts", defaults={"name": slug, "task": task}
    )
    for i, (pixels, text) in enumerate(zip(media, prompts, strict=True)):
        prompt = Prompt.objects.create(prompt_set=prompt_set, text=text, position=i)
        store_sample(version=version, prompt=prompt, seed=0, pixels=pixels, generation_seconds=0)
    return version


@pytest.mark.django_db
def test_image_renders_get_full_agreement_beside_the_unavailable_metrics(stage_settings):
    images, captions, _ = render_image_dataset(10, seed=21)
    noise = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    version = make_version(
        "renders",
        "text-to-image",
        np.concatenate([images, noise]),
        captions + ["a photo of a cat", "a dog in the snow"],  # outside the grammar: unscored
    )
    assert not stage_settings.exists()
    version_metrics_compute(version_id=version.pk)
    rows = {row.metric: row for row in MetricResult.objects.filter(version=version)}
    assert sorted(rows) == sorted(
        ["fid", "kid", "clip_score", "cmmd", "fd_clip", "prompt_agreement"]
    )
    row = rows["prompt_agreement"]
    assert row.status == MetricStatus.OK and row.value == 1.0 and row.n == 10
    assert (row.lower, row.upper) == (1.0, 1.0)
    assert row.backbone == "synthetic-checker" and not row.weights_custom
    assert stage_settings.is_file() and row.weights_sha256 == sha256_file(stage_settings)
    assert row.details["unparsed"] == 2 and row.details["position"] == 1.0
    assert rows["fid"].status == MetricStatus.UNAVAILABLE  # the other backbones have no weights

    version_metrics_compute(version_id=version.pk)  # reuses the fitted file, replaces the row
    assert MetricResult.objects.filter(version=version, metric="prompt_agreement").count() == 1
    assert MetricResult.objects.get(version=version, metric="prompt_agreement").weights_sha256 == (
        row.weights_sha256
    )


@pytest.mark.django_db
def test_video_renders_stored_as_mp4_agree_with_their_motion(stage_settings):
    clips, captions, _ = render_video_dataset(6, seed=22, frames=8)
    version = make_version("clips", "text-to-video", clips, captions)
    version_metrics_compute(version_id=version.pk)
    row = MetricResult.objects.get(version=version, metric="prompt_agreement")
    assert row.status == MetricStatus.OK and row.n == 6 and row.value >= 0.97
    assert row.details["direction"] == 1.0 and row.details["unparsed"] == 0


@pytest.mark.django_db
def test_prompts_outside_the_synthetic_domain_leave_the_metric_unavailable(stage_settings):
    images, _, _ = render_image_dataset(3, seed=23)
    version = make_version("free-text", "text-to-image", images, ["a cat", "a dog", "a red bus"])
    version_metrics_compute(version_id=version.pk)
    row = MetricResult.objects.get(version=version, metric="prompt_agreement")
    assert row.status == MetricStatus.UNAVAILABLE and row.value is None
    assert "none of the 3 samples has a prompt of the synthetic domain" in row.message
    assert not stage_settings.exists()  # nothing to check: the checker is not even fitted
