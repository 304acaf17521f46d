"""Sampling task: generate a version's benchmark samples on a GPU worker."""

from __future__ import annotations

from celery import shared_task

from config import task_names


@shared_task(name=task_names.GPU_GENERATE_SAMPLES)
def gpu_generate_samples(
    version_id: int,
    prompt_set_slug: str | None = None,
    seeds: list[int] | None = None,
    prompt_ids: list[int] | None = None,
) -> dict:
    """Generate the missing (prompt, seed) samples of a version; idempotent, resumes after a
    redelivery. A bad config or OOM fails the "generate" stage with its reason (no retry)."""
    from pipeline.services import pipeline_generate

    report = pipeline_generate(
        version_id=version_id, prompt_set_slug=prompt_set_slug, seeds=seeds, prompt_ids=prompt_ids
    )
    return report.as_dict()


@shared_task(name=task_names.GPU_REFILL_BATTLE_POOL)
def gpu_refill_battle_pool(version_id: int) -> dict | None:
    """Fresh battle samples for a version whose pool runs low (evaluation.pools); idempotent
    per (version, prompt, seed), so a redelivery resumes. None when no seed is left."""
    from evaluation.sample_store import battle_pool_refill

    report = battle_pool_refill(version_id=version_id)
    return None if report is None else report.as_dict()


@shared_task(name=task_names.GPU_STEPS_SWEEP)
def gpu_steps_sweep(
    version_id: int,
    metric: str = "prompt_agreement",
    nfe_budgets: list[int] | None = None,
    sampler: str | None = None,
    seeds: list[int] | None = None,
    force: bool = False,
    prompt_set_slug: str | None = None,
) -> list[dict]:
    """A version's steps sweep (quality per NFE budget); idempotent per (version, metric,
    sampler, steps): a redelivery computes only the missing points. Returns the points."""
    from evaluation.steps_sweep import DEFAULT_NFE_BUDGETS, steps_sweep_run

    points = steps_sweep_run(
        version_id=version_id,
        metric=metric,
        nfe_budgets=nfe_budgets or DEFAULT_NFE_BUDGETS,
        sampler=sampler,
        seeds=seeds if seeds is not None else (0,),
        force=force,
        prompt_set_slug=prompt_set_slug,
    )
    return [
        {"steps": p.steps, "nfe": p.nfe, "status": p.status, "value": p.value, "n": p.n}
        for p in points
    ]
