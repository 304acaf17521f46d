"""Seeding the demo in the background (issue 14): `seed_demo` returns at once, a training worker
trains the demo's models in order, each one is evaluated and published; progress is visible."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from models_registry.models import ModelVersion, TrainingJob, TrainingState, VersionStatus
from models_registry.selectors import training_finished, training_progress
from pipeline.seeding import demo_seed_jobs, demo_seed_start
from tests.conftest import wait_for
from workers.management.commands.seed_progress import progress_line

FAST = "ref-flow-undertrained"
STUDENT = "ref-rectified-flow-2step"  # needs its teacher trained first


@pytest.fixture
def reference_dir(tmp_path, settings):
    settings.REFERENCE_MODELS_DIR = tmp_path / "reference"
    return settings.REFERENCE_MODELS_DIR


def seed(*args: str) -> str:
    out = io.StringIO()
    call_command("seed_demo", "--quick", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_jobs_come_in_training_order(settings, tmp_path):
    settings.CLIP_WEIGHTS_PATH = tmp_path / "clip.safetensors"
    slugs = [job["slug"] for job in demo_seed_jobs()]
    assert slugs[0] == "demo-clip"  # every model's CLIP metrics need it
    # The fastest models publish first (both under-trained ones, 60 and 80 steps).
    assert slugs[1:3] == ["ref-video-undertrained", FAST]
    assert slugs.index("ref-rectified-flow") < slugs.index(STUDENT)
    settings.CLIP_WEIGHTS_PATH = None
    assert "demo-clip" not in [job["slug"] for job in demo_seed_jobs()]
    with pytest.raises(ValueError, match=r"unknown demo models \['nope'\]"):
        demo_seed_jobs(only=["nope"])


@pytest.mark.django_db
def test_seed_demo_only_queues_the_training(reference_dir, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        out = seed("--only", FAST)
    assert len(callbacks) == 1  # one chain, sent on commit (not run here)
    assert f"Queued 1 models to train in the background\n  {FAST}" in out
    job = TrainingJob.objects.get(slug=FAST)
    assert (job.state, job.step, job.total, job.version) == (TrainingState.QUEUED, 0, 3, None)
    assert not reference_dir.exists() or not any(reference_dir.iterdir())
    with pytest.raises(CommandError, match="unknown demo models"):
        seed("--only", "nope")


@pytest.mark.django_db(transaction=True)
def test_wait_trains_evaluates_and_publishes_and_a_failure_is_shown(reference_dir, client):
    out = seed("--wait", "--only", FAST, STUDENT)
    fast, student = TrainingJob.objects.get(slug=FAST), TrainingJob.objects.get(slug=STUDENT)
    assert fast.state == TrainingState.DONE and fast.step == fast.total == 3
    assert fast.version.status == VersionStatus.PUBLISHED
    assert fast.version.samples.count() > 0
    assert student.state == TrainingState.FAILED
    assert "needs its teacher ref-rectified-flow trained first" in student.message
    assert f"{FAST}: trained, published" in out and f"{STUDENT}: failed" in out

    rows = training_progress()
    assert [r["slug"] for r in rows] == [FAST, STUDENT] and training_finished(rows)
    assert progress_line(rows[0], 24).endswith("100%  trained; published")
    assert "failed: TrainingFailed: " in progress_line(rows[1], 24)
    page = client.get(reverse("arena:home")).content.decode()
    assert 'data-job="ref-flow-undertrained" data-state="done"' in page
    assert "Failed: TrainingFailed" in page and 'http-equiv="refresh"' not in page

    # A second seed reuses the trained and published model: nothing is queued for it again.
    assert demo_seed_start(quick=True, only=[FAST]) == []
    assert ModelVersion.objects.filter(model__slug=FAST).count() == 1
    # A model stopped mid-pipeline (its version not published) is queued again.
    ModelVersion.objects.filter(model__slug=FAST).update(status=VersionStatus.EVALUATING)
    assert demo_seed_start(quick=True, only=[FAST]) == [FAST]
    assert TrainingJob.objects.get(slug=FAST).state == TrainingState.QUEUED


@pytest.mark.django_db
def test_the_home_page_refreshes_while_models_train(reference_dir, client):
    demo_seed_start(quick=True, only=[FAST])
    TrainingJob.objects.filter(slug=FAST).update(
        state=TrainingState.RUNNING, step=2, message="loss 0.5000"
    )
    page = client.get(reverse("arena:home")).content.decode()
    assert 'http-equiv="refresh"' in page and "Setting up the demo" in page
    assert '<progress max="3" value="2"' in page and "(loss 0.5000)" in page
    out = io.StringIO()
    call_command("seed_progress", "--once", stdout=out)
    assert "[################........]  67%  training 2/3, loss 0.5000" in out.getvalue()


def test_a_training_worker_trains_while_the_pipeline_worker_evaluates(
    child_env, celery_workers, tmp_path
):
    env = dict(child_env, REFERENCE_MODELS_DIR=str(tmp_path / "reference"), TRAINING_THREADS="1")
    from django.conf import settings

    settings.REFERENCE_MODELS_DIR = tmp_path / "reference"
    celery_workers.start(env, queues="training", name="trainer")
    celery_workers.start(env, queues="default,gpu", name="pipeline")
    call_command("load_prompt_sets", stdout=io.StringIO())
    demo_seed_start(quick=True, only=[FAST])  # outside a transaction: sent at once

    def published():
        job = TrainingJob.objects.select_related("version").get(slug=FAST)
        if job.state == TrainingState.FAILED:
            pytest.fail(job.message)
        if job.version and job.version.status == VersionStatus.FAILED:
            pytest.fail(job.version.status_reason)
        return job.version and job.version.status == VersionStatus.PUBLISHED

    wait_for(published, timeout=300, message="the demo model to train and publish")
    received = "Task workers.tasks.train_model["  # the worker logs every task it receives
    assert received in celery_workers.log("trainer")
    assert received not in celery_workers.log("pipeline")


def test_beat_sends_the_checker_judge_to_every_task_in_the_demo(settings):
    from config.celery import app
    from models_registry.generators.tasks import TASK_NAMES
    from workers import tasks  # noqa: F401 - registers the task names

    assert settings.JUDGE_CHECKER_PAIRS > 0  # the demo's default (DEBUG when settings load)
    for task in TASK_NAMES:
        entry = settings.CELERY_BEAT_SCHEDULE[f"judge-checker-{task}"]
        assert entry["args"] == [task, "checker", settings.JUDGE_CHECKER_PAIRS]
        assert entry["task"] in app.tasks  # the name beat sends is a registered task
    train = app.amqp.router.route({}, "workers.tasks.train_model")
    assert train["queue"].name == "training"  # the demo's trainer, never the pipeline worker
