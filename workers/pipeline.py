"""The evaluation pipeline of a validated version, built from Celery canvas primitives.

    ready ─► [generating] gpu_generate_samples ─► [evaluating] gpu_compute_metrics ─► judge ─► arena

Each stage is an idempotent task keyed by natural keys (a sample by version + prompt + seed, a metric
by version + metric + backbone + reference), so redelivery after a worker dies never duplicates rows.
A stage that raises records its reason on its `VersionStage` row; the chain's error callback marks
the version failed, and other versions' chains go on untouched.
"""

from __future__ import annotations

from celery import chain, group, signature
from django.conf import settings
from django.db import transaction

from models_registry.models import ModelVersion, Stage, StageState, VersionStage, VersionStatus
from workers.stages import stage_done, stage_start

# Stages a maintainer can (re)run, in pipeline order; `validate` re-checks the stored checkpoint.
PIPELINE_STAGES = [Stage.GENERATE, Stage.METRICS, Stage.JUDGE, Stage.ARENA]
RERUNNABLE_STAGES = [Stage.VALIDATE, *PIPELINE_STAGES]


class PipelineError(ValueError):
    """A user-caused pipeline request that cannot be honoured (message names what is wrong)."""


def judge_task_name() -> str:
    """The local VLM runs on GPU workers; an API judge (or none, which the task records) on default."""
    if settings.JUDGE_LOCAL_VLM_PATH:
        return "workers.tasks.gpu_judge_version"
    return "workers.tasks.judge_version"


def generation_group(version_id: int):
    """One gpu task per chunk of benchmark prompts, so several GPU workers share a version and
    no (prompt, seed) is in two tasks. Falls back to one task when the prompt set is missing
    (the task then fails the stage with the reason)."""
    from evaluation.models import PromptSet
    from evaluation.sample_store import DEFAULT_PROMPT_SETS

    version = ModelVersion.objects.select_related("model").get(pk=version_id)
    prompt_set = PromptSet.objects.filter(slug=DEFAULT_PROMPT_SETS[version.model.task]).first()
    ids = (
        list(prompt_set.prompts.order_by("position", "id").values_list("id", flat=True))
        if prompt_set
        else []
    )
    size = max(1, settings.GENERATION_PROMPTS_PER_TASK)
    chunks = [ids[i : i + size] for i in range(0, len(ids), size)] or [None]
    return group(
        signature(
            "workers.tasks.gpu_generate_samples",
            args=[version_id],
            kwargs={"prompt_ids": chunk} if chunk is not None else {},
            immutable=True,
        )
        for chunk in chunks
    )


def stage_signatures(version_id: int, stage: str) -> list:
    """Immutable signatures that run `stage` for a version, with the status it enters."""
    status = lambda value: signature(  # noqa: E731 - tiny local factory
        "workers.tasks.pipeline_set_status", args=[version_id, value], immutable=True
    )
    if stage == Stage.GENERATE:
        return [status(VersionStatus.GENERATING), generation_group(version_id)]
    if stage == Stage.METRICS:
        return [
            status(VersionStatus.EVALUATING),
            signature("workers.tasks.gpu_compute_metrics", args=[version_id], immutable=True),
        ]
    if stage == Stage.JUDGE:
        return [signature(judge_task_name(), args=[version_id], immutable=True)]
    if stage == Stage.ARENA:
        return [signature("workers.tasks.pipeline_join_arena", args=[version_id], immutable=True)]
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
    flow.link_error(signature("workers.tasks.pipeline_failed", args=[version_id], immutable=True))
    return flow


def pipeline_start(*, version_id: int, from_stage: str = Stage.GENERATE) -> None:
    """Enqueue the pipeline once the surrounding transaction commits (workers see committed rows)."""
    for stage in PIPELINE_STAGES[PIPELINE_STAGES.index(from_stage) :]:
        VersionStage.objects.update_or_create(
            version_id=version_id,
            stage=stage,
            defaults={"state": StageState.PENDING, "reason": "", "finished_at": None},
        )
    flow = pipeline_chain(version_id=version_id, from_stage=from_stage)
    transaction.on_commit(flow.apply_async)


def pipeline_rerun(*, version: ModelVersion, stage: str) -> None:
    """Re-run one stage of a version and everything after it (maintainers: admin or `rerun`)."""
    if stage not in RERUNNABLE_STAGES:
        raise PipelineError(
            f"unknown stage {stage!r}; choose one of {', '.join(RERUNNABLE_STAGES)}"
        )
    if stage == Stage.VALIDATE:
        if not hasattr(version, "checkpoint") and not version.uploads.exists():
            raise PipelineError(f"{version} has no uploaded checkpoint to validate")
        version.status = VersionStatus.VALIDATING
        version.save(update_fields=["status", "updated_at"])
        validate = signature("workers.tasks.validate_checkpoint", args=[version.pk], immutable=True)
        transaction.on_commit(validate.apply_async)
        return
    if version.status in (
        VersionStatus.DRAFT,
        VersionStatus.UPLOADING,
        VersionStatus.VALIDATING,
        VersionStatus.REJECTED,
    ):
        raise PipelineError(
            f"{version} is {version.status}: only validated versions run the pipeline"
        )
    pipeline_start(version_id=version.pk, from_stage=stage)


def version_set_status(*, version_id: int, status: str, reason: str = "") -> None:
    ModelVersion.objects.filter(pk=version_id).update(status=status, status_reason=reason)


def version_join_arena(*, version_id: int) -> ModelVersion:
    """Last stage: samples join the arena if approved (or at once with ARENA_AUTO_APPROVE)."""
    with transaction.atomic():
        version = ModelVersion.objects.select_for_update().get(pk=version_id)
        stage_start(version_id=version_id, stage=Stage.ARENA, total=1)
        if settings.ARENA_AUTO_APPROVE and not version.arena_approved:
            version.arena_approved = True
        if version.arena_approved:
            version.status = VersionStatus.PUBLISHED
            version.status_reason = ""
            version.save(update_fields=["arena_approved", "status", "status_reason", "updated_at"])
            stage_done(version_id=version_id, stage=Stage.ARENA)
        else:
            version.status = VersionStatus.EVALUATING
            version.status_reason = (
                "Evaluated; waiting for a maintainer to approve it for the arena."
            )
            version.save(update_fields=["status", "status_reason", "updated_at"])
            VersionStage.objects.filter(version_id=version_id, stage=Stage.ARENA).update(
                state=StageState.PENDING, reason="awaiting maintainer approval"
            )
    return version


def arena_stage_resume(*, version_id: int) -> bool:
    """Finish the arena stage of a version that was evaluated and waited for approval."""
    waiting = VersionStage.objects.filter(
        version_id=version_id,
        stage=Stage.ARENA,
        state=StageState.PENDING,
        reason="awaiting maintainer approval",
    ).exists()
    if waiting:
        version_join_arena(version_id=version_id)
    return waiting


def first_failed_stage(*, version: ModelVersion) -> str | None:
    """The earliest failed stage of a version in pipeline order, for 're-run from the failure'."""
    failed = set(version.stages.filter(state=StageState.FAILED).values_list("stage", flat=True))
    return next((s for s in RERUNNABLE_STAGES if s in failed), None)


def version_pipeline_failed(*, version_id: int, reason: str) -> None:
    """Mark the version failed, naming the stage that failed and its recorded reason."""
    failed = (
        VersionStage.objects.filter(version_id=version_id, state=StageState.FAILED)
        .order_by("-updated_at")
        .first()
    )
    detail = f"stage {failed.stage} failed: {failed.reason}" if failed else reason
    version_set_status(version_id=version_id, status=VersionStatus.FAILED, reason=detail[:4000])
