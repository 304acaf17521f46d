"""The evaluation pipeline of issue 9 on real worker processes: the whole chain, a failing stage,
SIGKILL of a worker mid-generation (Redis redelivers), and two gpu workers sharing the work."""

from __future__ import annotations

import hashlib
import re
import signal
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import CommandError

from evaluation.models import MetricResult, MetricStatus, Sample
from evaluation.sample_store import generate_samples, sample_media_name
from models_registry.models import ModelVersion, VersionStatus
from pipeline.chain import PipelineError, pipeline_chain
from pipeline.models import Stage, StageState, VersionStage
from pipeline.services import pipeline_rerun, pipeline_start
from tests.conftest import wait_for
from tests.integration.redis_support import REDIS, RedisServer, free_port
from tests.integration.test_generation_task import register_tiny, tiny_config, tiny_prompt_set


def stages(version) -> dict[str, VersionStage]:
    return {row.stage: row for row in VersionStage.objects.filter(version=version)}


def finished(version) -> ModelVersion | None:
    version.refresh_from_db()
    return version if version.status in (VersionStatus.PUBLISHED, VersionStatus.FAILED) else None


def slow_config(steps: int = 60) -> dict:
    config = tiny_config("flow")
    config["sampler"]["steps"] = steps
    return config


def benchmark_prompt_set(n: int = 3):
    """The pipeline generates the task's benchmark prompt set (t2i-benchmark)."""
    return tiny_prompt_set(n=n, slug="t2i-benchmark")


def sample_files() -> set[str]:
    folder = Path(settings.MEDIA_ROOT) / "samples"
    return {f"samples/{p.name}" for p in folder.iterdir()} if folder.exists() else set()


def assert_samples_whole(version, expected: int) -> dict[tuple[int, int], str]:
    rows = list(Sample.objects.filter(version=version))
    assert len(rows) == expected
    assert len({(r.prompt_id, r.seed) for r in rows}) == expected
    for row in rows:
        data = default_storage.open(row.media.name).read()
        assert hashlib.sha256(data).hexdigest() == row.sha256, f"{row.media.name} is half-written"
    return {(r.prompt_id, r.seed): r.sha256 for r in rows}


def test_a_ready_version_flows_through_every_stage_to_the_arena(
    child_env, celery_workers, tmp_path
):
    version = register_tiny(tmp_path, "pipe-flow")
    benchmark_prompt_set(n=3)
    celery_workers.start(dict(child_env, GENERATOR_SEEDS_PER_PROMPT="2"), name="all")

    pipeline_start(version_id=version.id)  # outside a transaction: sent at once
    wait_for(lambda: finished(version), timeout=240, message="the pipeline to finish")

    assert version.status == VersionStatus.PUBLISHED, version.status_reason
    assert version.arena_approved  # ARENA_AUTO_APPROVE is on in DEBUG (the demo)
    rows = stages(version)
    assert rows[Stage.GENERATE].state == StageState.DONE
    # 3 prompts x (2 battle seeds + 1 showcase seed): both pools, from different seeds.
    assert (rows[Stage.GENERATE].done, rows[Stage.GENERATE].total) == (9, 9)
    assert rows[Stage.METRICS].state == StageState.DONE
    assert rows[Stage.JUDGE].state == StageState.SKIPPED and "JUDGE" in rows[Stage.JUDGE].reason
    assert rows[Stage.ARENA].state == StageState.DONE
    assert_samples_whole(version, 9)
    pools = Sample.objects.filter(version=version).values_list("pool", "withheld")
    assert sorted(pools) == [("battle", False)] * 6 + [("showcase", False)] * 3
    # No weights are configured in tests: metrics are stored as unavailable, naming the setting.
    fid = MetricResult.objects.get(version=version, metric="fid")
    assert fid.status == MetricStatus.UNAVAILABLE and "INCEPTION_WEIGHTS_PATH" in fid.message


def test_a_failing_stage_records_its_reason_and_other_versions_go_on(
    child_env, celery_workers, tmp_path
):
    broken = register_tiny(tmp_path, "pipe-broken")
    healthy = register_tiny(tmp_path, "pipe-healthy", config=slow_config(steps=2))
    # The stored checkpoint of `broken` turns out unreadable after validation.
    weights = Path(settings.MEDIA_ROOT) / broken.checkpoint.unpacked_path / "model.safetensors"
    weights.write_bytes(b"not a safetensors file")
    benchmark_prompt_set(n=2)
    celery_workers.start(dict(child_env, GENERATOR_SEEDS_PER_PROMPT="1"), name="mixed")

    pipeline_start(version_id=broken.id)
    pipeline_start(version_id=healthy.id)
    wait_for(lambda: finished(broken) and finished(healthy), timeout=240, message="both pipelines")

    assert broken.status == VersionStatus.FAILED
    assert broken.status_reason.startswith("stage generate failed:")
    assert stages(broken)[Stage.GENERATE].state == StageState.FAILED
    assert stages(broken)[Stage.METRICS].state == StageState.PENDING  # the chain stopped there
    assert not Sample.objects.filter(version=broken).exists()
    assert healthy.status == VersionStatus.PUBLISHED
    assert Sample.objects.filter(version=healthy).count() == 4  # 2 prompts x (1 + 1 showcase)

    # A maintainer fixes the checkpoint and re-runs the failed stage from the command line.
    register_tiny(tmp_path, "pipe-fixed")  # same seed → identical, valid weights on disk
    fixed_weights = next(
        (Path(settings.MEDIA_ROOT) / "checkpoints").rglob("pipe-fixed-*/model.safetensors")
    )
    weights.write_bytes(fixed_weights.read_bytes())
    call_command("rerun", "--version", f"{broken.model.slug}@{broken.tag}", "--stage", "generate")
    wait_for(
        lambda: finished(broken) and broken.status == VersionStatus.PUBLISHED and broken,
        timeout=240,
        message="the re-run pipeline to publish the fixed version",
    )
    assert stages(broken)[Stage.GENERATE].state == StageState.DONE


@pytest.mark.django_db
def test_rerun_refuses_unknown_versions_and_stages(tmp_path):
    version = register_tiny(tmp_path, "pipe-refuse")
    with pytest.raises(CommandError, match="no such model version"):
        call_command("rerun", "--version", "nope@v1", "--stage", "generate")
    with pytest.raises(CommandError, match="expected <model-slug>@<tag>"):
        call_command("rerun", "--version", "nope", "--stage", "generate")
    with pytest.raises(PipelineError, match="unknown stage"):
        pipeline_rerun(version=version, stage="teleport")
    version.status = VersionStatus.REJECTED
    version.save()
    with pytest.raises(PipelineError, match="only validated versions"):
        pipeline_rerun(version=version, stage="metrics")


def test_pipeline_is_a_celery_chain_of_named_stage_tasks():
    flow = pipeline_chain(version_id=7, from_stage=Stage.METRICS)
    names = [task.task for task in flow.tasks]
    assert names == [
        "workers.tasks.pipeline_set_status",
        "workers.tasks.gpu_compute_metrics",
        "workers.tasks.judge_version",
        "workers.tasks.pipeline_join_arena",
    ]
    assert all(task.immutable for task in flow.tasks)


@pytest.mark.skipif(REDIS is None, reason="redis-server is not installed")
def test_worker_killed_mid_generation_is_redelivered_and_the_result_is_identical(
    child_env, celery_workers, tmp_path, monkeypatch
):
    server = RedisServer(tmp_path, free_port())
    server.start()
    try:
        url = f"redis://127.0.0.1:{server.port}/0"
        monkeypatch.setenv("CELERY_BROKER_URL", url)  # Celery lets the env var win over broker=
        env = dict(
            child_env,
            CELERY_BROKER_URL=url,
            CELERY_VISIBILITY_TIMEOUT="6",  # unacked tasks come back 6 s after their worker dies
            GENERATOR_BATCH_SIZE="1",
            GENERATOR_SEEDS_PER_PROMPT="2",
        )
        version = register_tiny(tmp_path, "pipe-killed", config=slow_config(steps=80))
        benchmark_prompt_set(n=4)
        first = celery_workers.start(env, queues="gpu", name="victim")

        from celery import Celery

        sender = Celery("sender", broker=url, set_as_current=False)
        sender.conf.task_serializer = "json"
        sender.send_task(
            "workers.tasks.gpu_generate_samples", args=[version.id], queue="gpu", routing_key="gpu"
        )
        wait_for(
            lambda: 2 <= Sample.objects.filter(version=version).count() < 12,
            timeout=240,
            message="the first worker to be part-way through",
        )
        celery_workers.kill(first, signal.SIGKILL)
        partial = Sample.objects.filter(version=version).count()
        assert partial < 12

        celery_workers.start(env, queues="gpu", name="rescuer")
        wait_for(
            lambda: (
                stages(version).get(Stage.GENERATE)
                and stages(version)[Stage.GENERATE].state == StageState.DONE
                and Sample.objects.filter(version=version).count() == 12  # 4 x (2 + 1)
            ),
            timeout=300,
            message="the redelivered task to complete the generation",
        )
        killed_run = assert_samples_whole(version, 12)
        # The stage is marked done inside the task; Celery logs "succeeded" just after it returns.
        wait_for(
            lambda: "succeeded" in celery_workers.log("rescuer"),
            timeout=60,
            message="the rescuer to log the task as succeeded",
        )
        assert "gpu_generate_samples" in celery_workers.log("rescuer")
        # Nothing half-written or stray left behind: per (prompt, seed) exactly the row's file.
        files = sample_files()
        for row in Sample.objects.filter(version=version):
            key = sample_media_name(
                version_id=version.id, prompt_id=row.prompt_id, seed=row.seed, sha256="", ext=""
            )[: len("samples/") + 32]
            assert {f for f in files if f.startswith(key)} == {row.media.name}

        # Identical to an uninterrupted run of the same checkpoint.
        twin = register_tiny(tmp_path, "pipe-twin", config=slow_config(steps=80))
        generate_samples(version_id=twin.id, batch_size=1, device="cpu")
        twin_run = {k: v for k, v in assert_samples_whole(twin, 12).items()}
        assert killed_run == twin_run
    finally:
        server.stop()


def test_two_gpu_workers_never_generate_the_same_sample(
    child_env, celery_workers, tmp_path, settings
):
    version = register_tiny(tmp_path, "pipe-two", config=slow_config(steps=10))
    benchmark_prompt_set(n=6)
    # The worker that launches the chain splits it: six gpu tasks of one prompt each.
    env = dict(
        child_env,
        GENERATOR_SEEDS_PER_PROMPT="2",
        GENERATOR_BATCH_SIZE="2",
        GENERATION_PROMPTS_PER_TASK="1",
    )
    celery_workers.start(env, queues="gpu", name="gpuA")
    celery_workers.start(env, queues="gpu,default", name="gpuB")
    for name in ("gpuA", "gpuB"):  # both consuming before any work is queued
        wait_for(
            lambda n=name: " ready." in celery_workers.log(n), timeout=120, message=f"{name} ready"
        )

    pipeline_start(version_id=version.id)
    wait_for(lambda: finished(version), timeout=300, message="the pipeline to finish")
    assert version.status == VersionStatus.PUBLISHED, version.status_reason

    pattern = re.compile(r"generated sample version=(\d+) prompt=(\d+) seed=(\d+)")
    runs = {
        name: {m.groups() for m in pattern.finditer(celery_workers.log(name))}
        for name in ("gpuA", "gpuB")
    }
    assert runs["gpuA"] and runs["gpuB"], "both gpu workers should share the generation"
    assert not runs["gpuA"] & runs["gpuB"], "a sample was generated by both workers"
    assert len(runs["gpuA"] | runs["gpuB"]) == 18  # 6 prompts x (2 battle + 1 showcase)
    assert_samples_whole(version, 18)


@pytest.mark.django_db
def test_without_auto_approval_a_version_waits_for_a_maintainer_then_is_published(
    tmp_path, settings, admin_client
):
    from pipeline.services import version_join_arena

    settings.ARENA_AUTO_APPROVE = False
    version = register_tiny(tmp_path, "pipe-approval")
    version.arena_approved = False
    version.save()
    version_join_arena(version_id=version.id)
    version.refresh_from_db()
    assert version.status == VersionStatus.EVALUATING and not version.arena_approved
    assert stages(version)[Stage.ARENA].state == StageState.PENDING

    response = admin_client.post(
        "/admin/models_registry/modelversion/",
        {"action": "approve_for_arena", "_selected_action": [version.id]},
        follow=True,
    )
    assert response.status_code == 200
    version.refresh_from_db()
    assert version.arena_approved and version.status == VersionStatus.PUBLISHED
    assert stages(version)[Stage.ARENA].state == StageState.DONE


@pytest.mark.django_db
def test_admin_reruns_a_version_from_its_failed_stage(
    tmp_path, admin_client, django_capture_on_commit_callbacks
):
    version = register_tiny(tmp_path, "pipe-admin-rerun")
    VersionStage.objects.create(version=version, stage=Stage.GENERATE, state=StageState.DONE)
    VersionStage.objects.create(
        version=version, stage=Stage.METRICS, state=StageState.FAILED, reason="backbone exploded"
    )
    version.status = VersionStatus.FAILED
    version.save()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin_client.post(
            "/admin/models_registry/modelversion/",
            {"action": "rerun_failed_stage", "_selected_action": [version.id]},
            follow=True,
        )
    assert (
        "Re-running" in response.content.decode()
        and "from stage metrics" in response.content.decode()
    )
    assert len(callbacks) == 1  # the chain is sent when the transaction commits
    rows = stages(version)
    assert rows[Stage.GENERATE].state == StageState.DONE  # earlier stages are kept
    assert rows[Stage.METRICS].state == StageState.PENDING and rows[Stage.METRICS].reason == ""


def test_a_stage_is_one_row_of_the_stages_table(monkeypatch):
    """The chain, the stage order and rerun come from STAGES: a toy stage is one row (and its
    task), and every row's queue is where its task's name routes."""
    from fnmatch import fnmatch

    from pipeline import chain as stages_table

    for spec in stages_table.STAGES:
        if isinstance(spec.task, str):
            routed = next(
                (
                    r["queue"]
                    for glob, r in settings.CELERY_TASK_ROUTES.items()
                    if fnmatch(spec.task, glob)
                ),
                "default",
            )
            assert routed == spec.queue, spec
    assert stages_table.PIPELINE_STAGES == [s.stage for s in stages_table.STAGES]
    toy = stages_table.StageSpec("toy", "workers.tasks.toy_stage", "default", status="evaluating")
    rows = stages_table.STAGES
    monkeypatch.setattr(stages_table, "STAGES", (*rows[:2], toy, *rows[2:]))
    names = [task.task for task in pipeline_chain(version_id=7, from_stage="toy").tasks]
    assert names == [
        "workers.tasks.pipeline_set_status",
        "workers.tasks.toy_stage",
        "workers.tasks.judge_version",
        "workers.tasks.pipeline_join_arena",
    ]
    assert stages_table.stages_from("metrics") == ["metrics", "toy", "judge", "arena"]
