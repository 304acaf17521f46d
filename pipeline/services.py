"""The evaluation pipeline of a version: each stage runs one domain service inside `stage_run`.

    validate ─► [generating] generate ─► [evaluating] metrics ─► judge ─► arena

Celery tasks (workers/) call these functions; the chain that strings them together is derived
from the STAGES table (pipeline.chain) and sent by `workers.tasks.pipeline_launch`. A stage that raises records its reason on its `VersionStage` row; the chain's
error callback marks the version failed, and other versions' chains go on untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from celery import signature
from django.conf import settings
from django.db import transaction

from config import task_names
from models_registry.models import ModelVersion, VersionStatus
from models_registry.services import checkpoint_validate, version_status_change
from pipeline.chain import RERUNNABLE_STAGES, PipelineError, stages_from
from pipeline.models import Stage, StageState, VersionStage
from pipeline.stages import stage_run, stage_wait, stages_pending

if TYPE_CHECKING:
    from evaluation.judging import JudgeRunSummary

AWAITING_APPROVAL = "awaiting maintainer approval"


def _enqueue(task_name: str, *args) -> None:
    """Send a workers task by name once the surrounding transaction commits."""
    message = signature(task_name, args=list(args), immutable=True)
    transaction.on_commit(message.apply_async)


def validation_enqueue(*, version_id: int) -> None:
    _enqueue(task_names.VALIDATE_CHECKPOINT, version_id)


def pipeline_start(*, version_id: int, from_stage: str = Stage.GENERATE) -> None:
    """Queue the stages from `from_stage` on, then launch the chain after the commit."""
    stages_pending(version_id=version_id, stages=stages_from(from_stage))
    _enqueue(task_names.PIPELINE_LAUNCH, version_id, str(from_stage))


def pipeline_rerun(*, version: ModelVersion, stage: str) -> None:
    """Re-run one stage of a version and everything after it (maintainers: admin or `rerun`)."""
    stages_from(stage, allowed=RERUNNABLE_STAGES)  # PipelineError for an unknown stage
    if stage == Stage.VALIDATE:
        if not hasattr(version, "checkpoint") and not version.uploads.exists():
            raise PipelineError(f"{version} has no uploaded checkpoint to validate")
        version_status_change(version=version, status=VersionStatus.VALIDATING)
        validation_enqueue(version_id=version.pk)
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


# --- stages ----------------------------------------------------------------------------------


def pipeline_validate(*, version_id: int) -> ModelVersion | None:
    """Validate a version's finalized upload; a ready version starts the evaluation pipeline.

    A version no longer ``validating`` (deleted, or a redelivered task) is left as it is.
    """
    version = ModelVersion.objects.filter(pk=version_id).first()
    if version is None or version.status != VersionStatus.VALIDATING:
        return version
    with stage_run(version_id=version_id, stage=Stage.VALIDATE, total=1) as run:
        version = checkpoint_validate(version_id=version_id)
        if version is not None and version.status == VersionStatus.REJECTED:
            run.fail(version.status_reason)
    if version is not None and version.status == VersionStatus.READY:
        pipeline_start(version_id=version_id)
    return version


def pipeline_generate(
    *, version_id: int, prompt_set_slug: str | None = None, seeds=None, prompt_ids=None
):
    """Generate (part of) a version's samples; the last chunk to finish ends the stage."""
    from evaluation.sample_store import GenerationFailed, generate_samples

    with stage_run(
        version_id=version_id, stage=Stage.GENERATE, readable=(GenerationFailed,)
    ) as run:
        report = generate_samples(
            version_id=version_id,
            prompt_set_slug=prompt_set_slug,
            seeds=seeds,
            prompt_ids=prompt_ids,
            progress=run.progress,
        )
        if not report.complete:
            run.leave_running()
    return report


def pipeline_metrics(*, version_id: int):
    """The metrics stage: the task's metrics, then the provenance column's check of the
    version's outputs (PROVENANCE_CHECK_SAMPLES of them; 0 skips it)."""
    from evaluation.publication import version_provenance_check
    from evaluation.services import version_metrics_compute

    with stage_run(version_id=version_id, stage=Stage.METRICS) as run:
        results = version_metrics_compute(version_id=version_id, progress=run.progress)
        if settings.PROVENANCE_CHECK_SAMPLES > 0:
            version_provenance_check(version_id=version_id)
        return results


@dataclass(frozen=True)
class JudgeStageResult:
    """What the judge stage did: the run's summary, or why it was skipped (no judge configured;
    the reason names the settings to fill)."""

    summary: JudgeRunSummary | None = None
    skipped: str = ""


def pipeline_judge(*, version_id: int, mode: str | None, backend: str) -> JudgeStageResult:
    """Judge a version's samples, tracked as the judge stage."""
    from evaluation.judging import JudgeNotConfigured, judge_version_samples, resolve_backend

    version = ModelVersion.objects.get(pk=version_id)
    with stage_run(
        version_id=version_id,
        stage=Stage.JUDGE,
        total=version.samples.count(),
        skip_on=(JudgeNotConfigured,),
    ) as run:
        resolve_backend(backend)
        summary = judge_version_samples(
            version=version, mode=mode, backend=backend, progress=run.advance
        )
        return JudgeStageResult(summary=summary)
    return JudgeStageResult(skipped=run.skipped_reason)


def version_join_arena(*, version_id: int) -> ModelVersion:
    """Last stage: samples join the arena if approved (or at once with ARENA_AUTO_APPROVE)."""
    with transaction.atomic():
        version = ModelVersion.objects.select_for_update().get(pk=version_id)
        with stage_run(version_id=version_id, stage=Stage.ARENA, total=1) as run:
            approved = version.arena_approved or settings.ARENA_AUTO_APPROVE
            if approved:
                version_status_change(
                    version=version, status=VersionStatus.PUBLISHED, arena_approved=True
                )
            else:
                version_status_change(
                    version=version,
                    status=VersionStatus.EVALUATING,
                    reason="Evaluated; waiting for a maintainer to approve it for the arena.",
                )
                run.leave_running()
        if not version.arena_approved:
            stage_wait(version_id=version_id, stage=Stage.ARENA, reason=AWAITING_APPROVAL)
        else:
            steps_sweep_on_publish(version=version)
    return version


def steps_sweep_on_publish(*, version: ModelVersion) -> bool:
    """With STEPS_SWEEP_ON_PUBLISH, queue a published version's steps sweep (gpu queue) when
    STEPS_SWEEP_METRIC can score its task; returns whether one was queued. The sweep runs
    after the version is published, so its failure never fails the version."""
    from evaluation.steps_sweep import SweepRequestError, check_sweep_request

    if not settings.STEPS_SWEEP_ON_PUBLISH:
        return False
    try:
        check_sweep_request(
            task=version.model.task, metric=settings.STEPS_SWEEP_METRIC, nfe_budgets=[1]
        )
    except SweepRequestError:
        return False  # e.g. image-edit: prompt agreement cannot score an edit
    message = signature(
        task_names.GPU_STEPS_SWEEP,
        args=[version.pk],
        kwargs={"metric": settings.STEPS_SWEEP_METRIC},
        immutable=True,
    )
    transaction.on_commit(message.apply_async)
    return True


def arena_stage_resume(*, version_id: int) -> bool:
    """Finish the arena stage of a version that was evaluated and waited for approval."""
    waiting = VersionStage.objects.filter(
        version_id=version_id,
        stage=Stage.ARENA,
        state=StageState.PENDING,
        reason=AWAITING_APPROVAL,
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
    version_status_change(version=version_id, status=VersionStatus.FAILED, reason=detail)
