"""VLM-judge tasks: judge a version's samples (API: default queue; local VLM: gpu queue) and battles."""

from __future__ import annotations

from celery import shared_task

from config import task_names


def _judge_version(version_id: int, mode: str | None, backend: str) -> dict:
    from pipeline.services import pipeline_judge

    result = pipeline_judge(version_id=version_id, mode=mode, backend=backend)
    if result.summary is None:
        return {"skipped": result.skipped}
    summary = result.summary
    return {
        "judge": summary.judge,
        "mode": summary.mode,
        "ok": summary.ok,
        "failed": summary.failed,
        "cached": summary.cached,
        "value": summary.metric.value if summary.metric else None,
    }


@shared_task(name=task_names.JUDGE_VERSION)
def judge_version(version_id: int, mode: str | None = None) -> dict:
    """Judge a version's samples with the API judge (rubric by default)."""
    return _judge_version(version_id, mode, "api")


@shared_task(name=task_names.GPU_JUDGE_VERSION)
def gpu_judge_version(version_id: int, mode: str | None = None) -> dict:
    """Judge a version's samples with the local VLM (VQAScore by default), on a GPU worker."""
    return _judge_version(version_id, mode, "local")


def _battles_report(summary) -> dict:
    """A battle-judging run's summary as the task's (JSON) result."""
    return {
        "judge": summary.judge,
        "pairs": summary.pairs,
        "unjudgeable": summary.unjudgeable,
        "ok": summary.ok,
        "failed": summary.failed,
        "votes": summary.votes,
    }


@shared_task(name=task_names.JUDGE_BATTLES)
def judge_battles(task: str, backend: str | None = None, limit: int | None = None) -> dict:
    """Judge new human-served battles of `task` pairwise; votes go to the judge's rater."""
    from arena.judging import judge_battles as judge_battles_service
    from evaluation.judging import JudgeNotConfigured

    try:
        summary = judge_battles_service(task=task, backend=backend, limit=limit)
    except JudgeNotConfigured as exc:
        return {"skipped": str(exc)}
    return _battles_report(summary)


@shared_task(name=task_names.JUDGE_SAMPLED_BATTLES)
def judge_sampled_battles(task: str, backend: str = "checker", n: int = 150) -> dict:
    """Judge up to `n` new sample pairs of `task` drawn at random (no human battle needed)."""
    from arena.judging import judge_sampled_battles as judge_sampled_battles_service
    from evaluation.judging import JudgeNotConfigured

    try:
        summary = judge_sampled_battles_service(task=task, backend=backend, n=n)
    except JudgeNotConfigured as exc:
        return {"skipped": str(exc)}
    return _battles_report(summary)
