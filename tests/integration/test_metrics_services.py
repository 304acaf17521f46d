"""Reference sets, idempotent metric rows and the metrics task on a real Celery worker."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.management import call_command
from PIL import Image

from evaluation.backbones import backbone_load
from evaluation.models import MetricResult, MetricStatus, Prompt, PromptSet, ReferenceSet, Sample
from evaluation.reference_sets import (
    ReferenceSetCorrupted,
    reference_set_build,
    reference_stats_load,
)
from evaluation.selectors import metric_results_for_version, metric_values_by_version
from evaluation.services import version_metrics_compute
from models_registry.models import GenerativeModel, ModelVersion
from pipeline.models import VersionStage
from pipeline.services import pipeline_metrics
from tests.conftest import wait_for
from tests.integration.test_metrics_commands import write_images
from tests.unit.test_metrics_backbones import TINY_CLIP_NAME, images, save_tiny_clip


def make_version_with_samples(n: int = 6, size: int = 32) -> ModelVersion:
    owner = get_user_model().objects.create_user("author", password="x")
    model = GenerativeModel.objects.create(
        slug="shapes-gen",
        display_name="Shapes",
        task="text-to-image",
        paradigm="diffusion",
        owner=owner,
    )
    version = ModelVersion.objects.create(model=model, tag="v1")
    prompt_set = PromptSet.objects.create(slug="t2i", name="t2i", task="text-to-image")
    for i, pic in enumerate(images(9, n, size, shift=30)):
        prompt = Prompt.objects.create(prompt_set=prompt_set, text=f"a blue square {i}", position=i)
        buffer = io.BytesIO()
        Image.fromarray(pic).save(buffer, format="PNG")
        Sample.objects.create(
            version=version,
            prompt=prompt,
            seed=0,
            media=ContentFile(buffer.getvalue(), f"s{i}.png"),
            media_kind="image",
            width=size,
            height=size,
            sha256=hashlib.sha256(buffer.getvalue()).hexdigest(),
        )
    return version


@pytest.fixture
def clip_settings(settings, tmp_path):
    weights = save_tiny_clip(tmp_path / "clip")
    settings.CLIP_MODEL_NAME = TINY_CLIP_NAME
    settings.CLIP_WEIGHTS_PATH = weights
    settings.CLIP_WEIGHTS_CUSTOM = True
    settings.INCEPTION_WEIGHTS_PATH = None
    settings.METRICS_DEVICE = "cpu"
    return weights


@pytest.mark.django_db
def test_reference_set_is_cached_idempotent_and_verified(tmp_path, clip_settings):
    backbone = backbone_load(key="clip")
    folder = write_images(tmp_path / "real", images(1, 5, 32))
    first = reference_set_build(
        task="text-to-image", backbone=backbone, slug="real-5", folder=folder
    )
    again = reference_set_build(
        task="text-to-image", backbone=backbone, slug="real-5", folder=folder
    )
    assert again.pk == first.pk and ReferenceSet.objects.count() == 1
    stats = reference_stats_load(reference_set=first)
    assert stats.n == 5 and stats.features.shape == (5, 16)
    assert stats.weights_sha256 == backbone.weights_sha256

    synthetic = reference_set_build(
        task="text-to-image", backbone=backbone, slug="synth", synthetic=8, seed=3
    )
    assert synthetic.n == 8 and synthetic.source_path.startswith("synthetic:8")

    path = first.stats_file.path
    with open(path, "r+b") as handle:  # flip one byte of the cached statistics
        handle.seek(200)
        byte = handle.read(1)
        handle.seek(200)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ReferenceSetCorrupted, match="delete the set and build it again"):
        reference_stats_load(reference_set=first)


@pytest.mark.django_db
def test_version_metrics_store_ok_and_unavailable_rows_idempotently(
    tmp_path, settings, clip_settings
):
    settings.METRICS_REFERENCE_DIRS = {
        "text-to-image": write_images(tmp_path / "real", images(1, 6, 32)),
        "text-to-video": None,
    }
    settings.METRICS_BOOTSTRAP = 20
    version = make_version_with_samples()
    progress = []
    version_metrics_compute(version_id=version.pk, progress=lambda *p: progress.append(p))
    assert progress[0] == (0, 6) and progress[-1] == (6, 6)
    pipeline_metrics(version_id=version.pk)  # a retry replaces, never duplicates
    rows = {row.metric: row for row in MetricResult.objects.filter(version=version)}
    names = ["clip_score", "cmmd", "fd_clip", "fid", "kid", "prompt_agreement"]
    assert sorted(rows) == names
    assert MetricResult.objects.filter(version=version).count() == 6
    # "a blue square 3" is outside the synthetic grammar: the checker has nothing to read.
    assert rows["prompt_agreement"].status == MetricStatus.UNAVAILABLE
    for name in ("fid", "kid"):
        assert rows[name].status == MetricStatus.UNAVAILABLE
        assert "INCEPTION_WEIGHTS_PATH" in rows[name].message
    for name in ("clip_score", "cmmd", "fd_clip"):
        row = rows[name]
        assert row.status == MetricStatus.OK and row.n == 6 and row.weights_custom
        assert row.backbone == f"clip:{TINY_CLIP_NAME}" and len(row.weights_sha256) == 64
    assert rows["cmmd"].reference.startswith("text-to-image-dir-")
    assert rows["clip_score"].reference == ""
    stage = VersionStage.objects.get(version=version, stage="metrics")
    assert (stage.state, stage.done, stage.total) == ("done", 6, 6)
    listed = [row.metric for row in metric_results_for_version(version=version)]
    assert listed == names
    board = metric_values_by_version(versions=[version], metric="cmmd")
    assert board[version.pk].value == rows["cmmd"].value
    assert metric_values_by_version(versions=[version], metric="fid") == {}


def test_metrics_task_on_a_real_worker(child_env, celery_workers, tmp_path, settings):
    from config.celery import app

    weights = save_tiny_clip(tmp_path / "clip")
    real = write_images(tmp_path / "real", images(1, 6, 32))
    version = make_version_with_samples()
    env = dict(
        child_env,
        CLIP_MODEL_NAME=TINY_CLIP_NAME,
        CLIP_WEIGHTS_PATH=str(weights),
        CLIP_WEIGHTS_CUSTOM="1",
        INCEPTION_WEIGHTS_PATH="",
        METRICS_DEVICE="cpu",
        METRICS_REFERENCE_IMAGES_DIR=str(real),
        METRICS_BOOTSTRAP="20",
    )
    celery_workers.start(env, queues="gpu", name="metrics")
    app.send_task("workers.tasks.gpu_compute_metrics", args=[version.pk])
    wait_for(
        lambda: VersionStage.objects.filter(
            version=version, stage="metrics", state="done"
        ).exists(),
        timeout=240,
        message="the worker to finish the metrics stage",
    )
    rows = {row.metric: row for row in MetricResult.objects.filter(version=version)}
    assert rows["clip_score"].status == "ok" and rows["cmmd"].status == "ok"
    assert rows["fid"].status == "unavailable" and "INCEPTION_WEIGHTS_PATH" in rows["fid"].message


def test_build_reference_set_command_reports_the_set(tmp_path, clip_settings, db):
    folder = write_images(tmp_path / "real", images(1, 4, 32))
    out = io.StringIO()
    call_command(
        "build_reference_set",
        "--task",
        "text-to-image",
        "--backbone",
        "clip",
        "--dir",
        str(folder),
        "--slug",
        "mine",
        "--export",
        str(tmp_path / "ref.npz"),
        stdout=out,
    )
    assert "reference set mine [clip:test-clip-micro] n=4" in out.getvalue()
    assert np.load(tmp_path / "ref.npz")["n"] == 4
