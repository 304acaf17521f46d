"""Sampling task: generate a version's benchmark samples on a GPU worker."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="workers.tasks.gpu_generate_samples")
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
