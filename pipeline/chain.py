"""The STAGES table of the evaluation pipeline, and everything derived from it.

    validate ─► [generating] generate (a group of prompt chunks) ─► [evaluating] metrics ─►
    judge ─► arena

One row per stage after validation: which task runs it, on which queue, the version status it
enters, and how it fans out over several workers. The stage order (`PIPELINE_STAGES`,
`RERUNNABLE_STAGES`), the Celery chain (`pipeline_chain`), `pipeline_start` / rerun and the
stages the API lists all read this table; what each stage does lives in `pipeline.services`.
A failing task fails its stage; the chain's error callback then marks the version failed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from celery import chain, group, signature
from django.conf import settings

from config import task_names
from evaluation.models import PromptSet
from models_registry.generators.tasks import task_spec
from models_registry.models import ModelVersion, VersionStatus
from pipeline.models import Stage


def generation_chunks(version_id: int) -> list[dict]:
    """One task's kwargs per chunk of benchmark prompts (GENERATION_PROMPTS_PER_TASK), so several
    GPU workers share a version and no (prompt, seed) is in two tasks; one task without kwargs
    when the prompt set is missing (the task then fails the stage with the reason)."""
    version = ModelVersion.objects.select_related("model").get(pk=version_id)
    prompt_set = PromptSet.objects.filter(slug=task_spec(version.model.task).prompt_set).first()
    ids = (
        list(prompt_set.prompts.order_by("position", "id").values_list("id", flat=True))
        if prompt_set
        else []
    )
    size = max(1, settings.GENERATION_PROMPTS_PER_TASK)
    return [{"prompt_ids": ids[i : i + size]} for i in range(0, len(ids), size)] or [{}]


def judge_task() -> str:
    """A local VLM runs on GPU workers; an API judge (or none, which the task records) does not."""
    return (
        task_names.GPU_JUDGE_VERSION if settings.JUDGE_LOCAL_VLM_PATH else task_names.JUDGE_VERSION
    )


@dataclass(frozen=True)
class StageSpec:
    stage: str  # a Stage value
    task: str | Callable[[], str]  # the task's name, or what chooses it when the chain is built
    queue: str  # where it runs ("gpu" tasks are routed by their name; see CELERY_TASK_ROUTES)
    status: str | None = None  # the VersionStatus the version enters with this stage
    fan_out: Callable[[int], list[dict]] | None = None  # kwargs of each parallel task

    def task_name(self) -> str:
        return self.task() if callable(self.task) else self.task


STAGES: tuple[StageSpec, ...] = (
    StageSpec(
        Stage.GENERATE,
        task_names.GPU_GENERATE_SAMPLES,
        "gpu",
        status=VersionStatus.GENERATING,
        fan_out=generation_chunks,
    ),
    StageSpec(
        Stage.METRICS, task_names.GPU_COMPUTE_METRICS, "gpu", status=VersionStatus.EVALUATING
    ),
    StageSpec(Stage.JUDGE, judge_task, "gpu or default (JUDGE_LOCAL_VLM_PATH)"),
    StageSpec(Stage.ARENA, task_names.PIPELINE_JOIN_ARENA, "default"),
)
# Stages a maintainer can (re)run, in pipeline order; `validate` re-checks the stored checkpoint.
PIPELINE_STAGES: list[str] = [spec.stage for spec in STAGES]
RERUNNABLE_STAGES: list[str] = [Stage.VALIDATE, *PIPELINE_STAGES]


class PipelineError(ValueError):
    """A user-caused pipeline request that cannot be honoured (message names what is wrong)."""


def stages_from(stage: str, *, allowed: list[str] | None = None) -> list[str]:
    """The stages from `stage` to the end of `allowed` (default: the STAGES table's, read now);
    PipelineError naming the known ones otherwise."""
    allowed = [spec.stage for spec in STAGES] if allowed is None else allowed
    if stage not in allowed:
        raise PipelineError(f"unknown stage {stage!r}; choose one of {', '.join(allowed)}")
    return allowed[allowed.index(stage) :]


def stage_signatures(version_id: int, spec: StageSpec) -> list:
    """Immutable signatures that run one stage for a version: the status it enters, then its
    task (a group of them when it fans out)."""
    steps = []
    if spec.status is not None:
        steps.append(
            signature(
                task_names.PIPELINE_SET_STATUS, args=[version_id, spec.status], immutable=True
            )
        )
    name = spec.task_name()
    if spec.fan_out is None:
        steps.append(signature(name, args=[version_id], immutable=True))
    else:
        steps.append(
            group(
                signature(name, args=[version_id], kwargs=kwargs, immutable=True)
                for kwargs in spec.fan_out(version_id)
            )
        )
    return steps


def pipeline_chain(*, version_id: int, from_stage: str = Stage.GENERATE):
    """The chain from `from_stage` to the end, with an error callback that fails the version."""
    names = stages_from(from_stage)
    steps = []
    for spec in STAGES:
        if spec.stage in names:
            steps.extend(stage_signatures(version_id, spec))
    flow = chain(*steps)
    flow.link_error(signature(task_names.PIPELINE_FAILED, args=[version_id], immutable=True))
    return flow
