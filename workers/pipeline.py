"""Chain building: the Celery canvas that runs a version's pipeline stages in order.

    [generating] gpu_generate_samples (a group of prompt chunks) ─► [evaluating]
    gpu_compute_metrics ─► judge ─► arena

What each stage does lives in `pipeline.services`; this module only strings the tasks together.
A failing task fails its stage; the chain's error callback then marks the version failed.
"""

from __future__ import annotations

from celery import chain, group, signature
from django.conf import settings

from config import task_names
from evaluation.models import PromptSet
from models_registry.generators.tasks import task_spec
from models_registry.models import ModelVersion, VersionStatus
from pipeline.models import Stage
from pipeline.services import PIPELINE_STAGES, PipelineError


def judge_task_name() -> str:
    """The local VLM runs on GPU workers; an API judge (or none, which the task records) on default."""
    if settings.JUDGE_LOCAL_VLM_PATH:
        return task_names.GPU_JUDGE_VERSION
    return task_names.JUDGE_VERSION


def generation_group(version_id: int):
    """One gpu task per chunk of benchmark prompts, so several GPU workers share a version and
    no (prompt, seed) is in two tasks. Falls back to one task when the prompt set is missing
    (the task then fails the stage with the reason)."""
    version = ModelVersion.objects.select_related("model").get(pk=version_id)
    prompt_set = PromptSet.objects.filter(slug=task_spec(version.model.task).prompt_set).first()
    ids = (
        list(prompt_set.prompts.order_by("position", "id").values_list("id", flat=True))
        if prompt_set
        else []
    )
    size = max(1, settings.GENERATION_PROMPTS_PER_TASK)
    chunks = [ids[i : i + size] for i in range(0, len(ids), size)] or [None]
    return group(
        signature(
            task_names.GPU_GENERATE_SAMPLES,
            args=[version_id],
            kwargs={"prompt_ids": chunk} if chunk is not None else {},
            immutable=True,
        )
        for chunk in chunks
    )


def stage_signatures(version_id: int, stage: str) -> list:
    """Immutable signatures that run `stage` for a version, with the status it enters."""

    def status(value: str):
        return signature(task_names.PIPELINE_SET_STATUS, args=[version_id, value], immutable=True)

    if stage == Stage.GENERATE:
        return [status(VersionStatus.GENERATING), generation_group(version_id)]
    if stage == Stage.METRICS:
        return [
            status(VersionStatus.EVALUATING),
            signature(task_names.GPU_COMPUTE_METRICS, args=[version_id], immutable=True),
        ]
    if stage == Stage.JUDGE:
        return [signature(judge_task_name(), args=[version_id], immutable=True)]
    if stage == Stage.ARENA:
        return [signature(task_names.PIPELINE_JOIN_ARENA, args=[version_id], immutable=True)]
    raise PipelineError(f"unknown stage {stage!r}; choose one of {', '.join(PIPELINE_STAGES)}")


def pipeline_chain(*, version_id: int, from_stage: str = Stage.GENERATE):
    """The chain from `from_stage` to the end, with an error callback that fails the version."""
    if from_stage not in PIPELINE_STAGES:
        raise PipelineError(
            f"unknown stage {from_stage!r}; choose one of {', '.join(PIPELINE_STAGES)}"
        )
    steps = []
    for stage in PIPELINE_STAGES[PIPELINE_STAGES.index(from_stage) :]:
        steps.extend(stage_signatures(version_id, stage))
    flow = chain(*steps)
    flow.link_error(signature(task_names.PIPELINE_FAILED, args=[version_id], immutable=True))
    return flow
