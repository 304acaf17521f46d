"""The judge tasks on a real Celery worker (API judge = loopback server), routing, and skipping."""

from __future__ import annotations

import pytest

from evaluation.models import JudgeResult, MetricResult
from pipeline.models import VersionStage
from tests.conftest import wait_for
from tests.integration.test_judge_services import (
    RED,
    make_image_sample,
    make_prompts,
    make_version,
    rubric_for_red,
)
from tests.unit.test_judge_support import OpenAICompatibleServer


def test_gpu_judging_routes_to_the_gpu_queue_and_api_judging_to_default():
    from config.celery import app

    router = app.amqp.router
    assert router.route({}, "workers.tasks.gpu_judge_version")["queue"].name == "gpu"
    assert router.route({}, "workers.tasks.judge_version")["queue"].name == "default"
    assert router.route({}, "workers.tasks.judge_battles")["queue"].name == "default"


def test_judge_version_task_runs_on_a_real_worker(child_env, celery_workers):
    from config.celery import app

    version = make_version("worker-judged")
    for prompt in make_prompts(2):
        make_image_sample(version, prompt, RED)
    with OpenAICompatibleServer(rubric_for_red) as server:
        env = dict(
            child_env,
            JUDGE_API_BASE_URL=server.url,
            JUDGE_API_MODEL="tiny-judge",
            JUDGE_BACKEND="",
            JUDGE_LOCAL_VLM_PATH="",
        )
        celery_workers.start(env, queues="default", name="judge")
        app.send_task(
            "workers.tasks.judge_version", args=[version.pk], queue="default", routing_key="default"
        )
        wait_for(
            lambda: VersionStage.objects.filter(
                version=version, stage="judge", state="done"
            ).exists(),
            timeout=120,
            message="the worker to finish judging (log: " + str(celery_workers.log_dir) + ")",
        )
    assert server.attempts == 2
    assert JudgeResult.objects.filter(sample__version=version, status="ok").count() == 2
    stage = VersionStage.objects.get(version=version, stage="judge")
    assert (stage.done, stage.total) == (2, 2)
    assert MetricResult.objects.get(version=version, metric="viescore").n == 2


@pytest.mark.django_db
def test_an_unconfigured_judge_skips_the_stage_with_the_settings_to_fill(settings):
    from workers.tasks.judging import gpu_judge_version

    settings.JUDGE_LOCAL_VLM_PATH = None
    version = make_version("not-judged")
    result = gpu_judge_version.run(version.pk)
    stage = VersionStage.objects.get(version=version, stage="judge")
    assert stage.state == "skipped" and "JUDGE_LOCAL_VLM_PATH" in stage.reason
    assert "JUDGE_LOCAL_VLM_PATH" in result["skipped"]
