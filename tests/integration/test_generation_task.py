"""Sampling as work: the gpu_generate_samples task on a real Celery worker, the sample store,
and the reference-model registration, with tiny random native generators built and saved here."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import av
import numpy as np
import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from PIL import Image

from evaluation.management.commands.load_prompt_sets import load_prompt_set
from evaluation.models import MediaKind, Sample
from evaluation.sample_store import GenerationFailed, generate_samples, store_sample
from models_registry.generators.native import build_model, save_native
from models_registry.generators.synthetic import benchmark_prompts
from models_registry.reference_models import register_reference_model
from pipeline.models import Stage, StageState, VersionStage
from pipeline.services import pipeline_generate
from tests.conftest import wait_for
from tests.unit.test_generators_native import tiny


def tiny_config(paradigm: str = "flow") -> dict:
    """The unit tests' tiny native config with a 2-step Euler sampler."""
    return tiny(paradigm, {"name": "euler", "steps": 2, "guidance_scale": 2.0})


def register_tiny(tmp_path: Path, slug: str, paradigm: str = "flow", config: dict | None = None):
    import torch

    torch.manual_seed(0)
    config = config or tiny_config(paradigm)
    directory = tmp_path / slug
    save_native(directory, model=build_model(config), config=config)
    version, created = register_reference_model(
        directory=directory, slug=slug, display_name=slug, description="test generator"
    )
    assert created
    return version


def tiny_prompt_set(task: str = "text-to-image", n: int = 3, slug: str = "tiny-t2i"):
    prompt_set, _ = load_prompt_set(
        slug=slug, name=slug, task=task, description="", prompts=benchmark_prompts(task, n)
    )
    return prompt_set


def stage(version) -> VersionStage | None:
    return VersionStage.objects.filter(version=version, stage=Stage.GENERATE).first()


def test_worker_generates_samples_once_and_a_second_run_adds_nothing(
    child_env, celery_workers, tmp_path
):
    from workers.tasks.generation import gpu_generate_samples

    version = register_tiny(tmp_path, "tiny-flow")
    tiny_prompt_set()
    celery_workers.start(child_env, queues="gpu", name="gpu1")

    gpu_generate_samples.delay(version.id, "tiny-t2i", [0, 1])
    row = wait_for(
        lambda: (s := stage(version)) and s.state in (StageState.DONE, StageState.FAILED) and s,
        timeout=180,
        message="the generate stage to finish",
    )
    assert row.state == StageState.DONE, row.reason
    assert (row.done, row.total) == (6, 6)
    samples = list(Sample.objects.filter(version=version))
    assert len(samples) == 6
    first_ids = {s.public_id for s in samples}
    for sample in samples:
        assert sample.media.name.startswith("samples/") and "tiny" not in sample.media.name
        data = default_storage.open(sample.media.name).read()
        assert hashlib.sha256(data).hexdigest() == sample.sha256
        image = Image.open(io.BytesIO(data))
        assert image.format == "PNG" and image.size == (16, 16)
        assert sample.media_kind == MediaKind.IMAGE and sample.generation_seconds > 0

    gpu_generate_samples.delay(version.id, "tiny-t2i", [0, 1])
    wait_for(
        lambda: stage(version).finished_at > row.finished_at,
        timeout=120,
        message="the second run to finish",
    )
    assert stage(version).state == StageState.DONE
    assert {s.public_id for s in Sample.objects.filter(version=version)} == first_ids
    assert len(list((Path(settings.MEDIA_ROOT) / "samples").iterdir())) >= 6


def test_worker_fails_the_stage_with_a_readable_reason_for_a_bad_config(
    child_env, celery_workers, tmp_path
):
    from django_celery_results.models import TaskResult

    from workers.tasks.generation import gpu_generate_samples

    version = register_tiny(tmp_path, "tiny-bad")
    # The checkpoint on disk later turns out broken: its sampler does not exist.
    config_path = Path(settings.MEDIA_ROOT) / version.checkpoint.unpacked_path / "config.json"
    config = json.loads(config_path.read_text())
    config["sampler"]["name"] = "warp-drive"
    config_path.write_text(json.dumps(config))
    version.generator_config = config
    version.save()
    tiny_prompt_set()
    celery_workers.start(child_env, queues="gpu", name="gpu2")

    result = gpu_generate_samples.delay(version.id, "tiny-t2i", [0])
    row = wait_for(
        lambda: (s := stage(version)) and s.state == StageState.FAILED and s,
        timeout=180,
        message="the generate stage to fail",
    )
    assert "sampler.name must be one of" in row.reason and "warp-drive" in row.reason
    task = wait_for(
        lambda: TaskResult.objects.filter(task_id=result.id, status="FAILURE").first(),
        timeout=60,
        message="the task to be recorded as failed",
    )
    assert "GenerationFailed" in task.result
    assert not Sample.objects.filter(version=version).exists()


@pytest.mark.django_db
def test_generation_resumes_where_it_stopped(tmp_path):
    version = register_tiny(tmp_path, "tiny-resume")
    prompt_set = tiny_prompt_set(n=4)
    first = generate_samples(
        version_id=version.id, prompt_set_slug=prompt_set.slug, seeds=[0], device="cpu"
    )
    assert (first.created, first.existing) == (4, 0)
    # A redelivered run with more seeds only makes what is missing.
    progress = []
    again = generate_samples(
        version_id=version.id,
        prompt_set_slug=prompt_set.slug,
        seeds=[0, 1],
        batch_size=3,
        device="cpu",
        progress=lambda done, total: progress.append((done, total)),
    )
    assert (again.created, again.existing, again.total) == (4, 4, 8) and again.complete
    assert Sample.objects.filter(version=version).count() == 8
    assert progress == [(4, 8), (7, 8), (8, 8)]  # what existed, then after each batch of 3


@pytest.mark.django_db
def test_same_prompt_and_seed_give_the_same_pixels_across_versions_of_one_checkpoint(tmp_path):
    version = register_tiny(tmp_path, "tiny-det")
    prompt_set = tiny_prompt_set(n=2)
    generate_samples(
        version_id=version.id, prompt_set_slug=prompt_set.slug, seeds=[5], device="cpu"
    )
    shas = sorted(Sample.objects.filter(version=version).values_list("sha256", flat=True))
    Sample.objects.filter(version=version).delete()
    generate_samples(
        version_id=version.id,
        prompt_set_slug=prompt_set.slug,
        seeds=[5],
        batch_size=1,
        device="cpu",
    )
    assert sorted(Sample.objects.filter(version=version).values_list("sha256", flat=True)) == shas


@pytest.mark.django_db
def test_video_samples_are_browser_playable_h264_mp4(tmp_path):
    version = register_tiny(tmp_path, "tiny-video", paradigm="video")
    prompt_set = tiny_prompt_set("text-to-video", n=2, slug="tiny-t2v")
    generate_samples(
        version_id=version.id, prompt_set_slug=prompt_set.slug, seeds=[0], device="cpu"
    )
    samples = list(Sample.objects.filter(version=version))
    assert len(samples) == 2
    for sample in samples:
        assert sample.media.name.endswith(".mp4") and sample.media_kind == MediaKind.VIDEO
        assert (sample.frames, sample.width, sample.height) == (8, 16, 16)
        with av.open(default_storage.path(sample.media.name)) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264"
            assert stream.codec_context.pix_fmt == "yuv420p"
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        assert len(frames) == 8 and frames[0].shape == (16, 16, 3)


@pytest.mark.django_db
def test_store_sample_is_idempotent_and_pads_odd_video_sizes(tmp_path):
    version = register_tiny(tmp_path, "tiny-store", paradigm="video")
    prompt = tiny_prompt_set("text-to-video", n=1, slug="one-t2v").prompts.get()
    clip = np.random.default_rng(0).integers(0, 255, (8, 15, 17, 3), dtype=np.uint8)
    sample, created = store_sample(
        version=version, prompt=prompt, seed=3, pixels=clip, generation_seconds=0.5
    )
    again, created_again = store_sample(
        version=version, prompt=prompt, seed=3, pixels=clip, generation_seconds=0.5
    )
    assert created and not created_again and again.pk == sample.pk
    assert (
        len(
            list((Path(settings.MEDIA_ROOT) / "samples").glob(f"*{Path(sample.media.name).suffix}"))
        )
        >= 1
    )
    with av.open(default_storage.path(sample.media.name)) as container:
        ctx = container.streams.video[0].codec_context
        assert (ctx.width, ctx.height) == (18, 16)
    assert (sample.width, sample.height) == (17, 15)
    with pytest.raises(ValueError, match="pixels must be uint8"):
        store_sample(
            version=version,
            prompt=prompt,
            seed=4,
            pixels=clip.astype(np.float32),
            generation_seconds=None,
        )
    assert not Sample.objects.filter(seed=4).exists()


@pytest.mark.django_db
def test_missing_prompt_set_and_task_mismatch_fail_with_reasons(tmp_path):
    version = register_tiny(tmp_path, "tiny-mismatch")
    with pytest.raises(GenerationFailed, match="prompt set 'nope' does not exist"):
        generate_samples(version_id=version.id, prompt_set_slug="nope", device="cpu")
    tiny_prompt_set("text-to-video", n=1, slug="vid")
    with pytest.raises(GenerationFailed, match="is text-to-video but the model is text-to-image"):
        pipeline_generate(version_id=version.id, prompt_set_slug="vid")
    row = stage(version)
    assert row.state == StageState.FAILED  # the pipeline records the readable reason as is
    assert row.reason == "prompt set 'vid' is text-to-video but the model is text-to-image"


@pytest.mark.django_db
def test_registering_the_same_weights_twice_creates_one_version(tmp_path):
    version = register_tiny(tmp_path, "tiny-twice")
    again, created = register_reference_model(
        directory=tmp_path / "tiny-twice", slug="tiny-twice", display_name="x", description=""
    )
    assert not created and again.pk == version.pk
    checkpoint = version.checkpoint
    weights = Path(settings.MEDIA_ROOT) / checkpoint.unpacked_path / "model.safetensors"
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == checkpoint.sha256
    assert version.model.visibility == "public" and version.arena_approved
    assert version.status == "ready" and version.model.owner.username == "reference-models"
