"""VLM-judge tasks: judge a version's samples (API: default queue; local VLM: gpu queue) and battles."""

from __future__ import annotations

from celery import shared_task

JUDGE_STAGE = "judge"  # models_registry.models.Stage.JUDGE


def _judge_version(version_id: int, mode: str | None, backend: str) -> dict:
    from evaluation.judging import JudgeNotConfigured, judge_version_samples, resolve_backend
    from models_registry.models import ModelVersion
    from workers.stages import stage_advance, stage_done, stage_fail, stage_skip, stage_start

    version = ModelVersion.objects.get(pk=version_id)
    try:
        resolve_backend(backend)
    except JudgeNotConfigured as exc:
        stage_skip(version_id=version_id, stage=JUDGE_STAGE, reason=str(exc))
        return {"skipped": str(exc)}
    stage_start(version_id=version_id, stage=JUDGE_STAGE, total=version.samples.count())
    try:
        summary = judge_version_samples(
            version=version,
            mode=mode,
            backend=backend,
            progress=lambda k: stage_advance(version_id=version_id, stage=JUDGE_STAGE, by=k),
        )
    except JudgeNotConfigured as exc:
        stage_skip(version_id=version_id, stage=JUDGE_STAGE, reason=str(exc))
        return {"skipped": str(exc)}
    except Exception as exc:
        stage_fail(version_id=version_id, stage=JUDGE_STAGE, reason=f"{type(exc).__name__}: {exc}")
        raise
    stage_done(version_id=version_id, stage=JUDGE_STAGE)
    return {
        "judge": summary.judge,
        "mode": summary.mode,
        "ok": summary.ok,
        "failed": summary.failed,
        "cached": summary.cached,
        "value": summary.metric.value if summary.metric else None,
    }


@shared_task(name="workers.tasks.judge_version")
def judge_version(version_id: int, mode: str | None = None) -> dict:
    """Judge a version's samples with the API judge (rubric by default)."""
    return _judge_version(version_id, mode, "api")


@shared_task(name="workers.tasks.gpu_judge_version")
def gpu_judge_version(version_id: int, mode: str | None = None) -> dict:
    """Judge a version's samples with the local VLM (VQAScore by default), on a GPU worker."""
    return _judge_version(version_id, mode, "local")


@shared_task(name="workers.tasks.judge_battles")
def judge_battles(task: str, backend: str | None = None, limit: int | None = None) -> dict:
    """Judge new human-served battles of `task` pairwise; votes go to the judge's rater."""
    from evaluation.judging import JudgeNotConfigured
    from evaluation.judging import judge_battles as judge_battles_service

    try:
        summary = judge_battles_service(task=task, backend=backend, limit=limit)
    except JudgeNotConfigured as exc:
        return {"skipped": str(exc)}
    return {
        "judge": summary.judge,
        "pairs": summary.pairs,
        "ok": summary.ok,
        "failed": summary.failed,
        "votes": summary.votes,
    }
