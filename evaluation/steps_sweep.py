"""Services: a version's steps sweep (quality against network evaluations per sample).

For each NFE budget (default 1, 2, 4, 8, 16, 32) the version's sampler runs with the most steps
whose network evaluations fit the budget (`models_registry.generators.measurement.plan_nfe_sweep`
over the generator's own `nfe_for_steps`), over the task's benchmark prompts, and one catalogue
metric scores the samples in memory (they are not stored: a Sample is the version's default
sampler output). Each point stores the NFE counted while generating, which is what the plot and
the API show. Idempotent on (version, metric, sampler, steps): existing points are kept unless
`force`. This is how distilled and reflowed few-step models are judged against their teachers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence

from django.conf import settings
from django.db import transaction

from evaluation.metrics.catalogue import PROMPT, REFERENCE, suite_metric_spec, task_metric_problems
from evaluation.models import MetricStatus, PromptSet, StepsSweepPoint
from evaluation.sample_store import (
    GenerationFailed,
    _is_oom,
    generator_device,
    load_version_generator,
)
from models_registry.generators.measurement import plan_nfe_sweep
from models_registry.generators.tasks import task_spec
from models_registry.models import ModelVersion

log = logging.getLogger(__name__)

DEFAULT_NFE_BUDGETS = (1, 2, 4, 8, 16, 32)
SWEEP_METRIC_KINDS = (PROMPT, REFERENCE)  # scored from generated media (+ prompts) alone


class SweepRequestError(ValueError):
    """A sweep request that cannot run (bad metric, budgets, sampler); the message names it."""


def check_sweep_request(*, task: str, metric: str, nfe_budgets: Sequence[int]) -> None:
    """SweepRequestError naming the bad field: a metric outside the catalogue, not for this
    task or not computable from media alone, or a budget below 1."""
    try:
        spec = suite_metric_spec(metric)
    except ValueError as exc:
        raise SweepRequestError(f"metric: {exc}") from exc
    problems = task_metric_problems(task, [metric])
    if problems:
        raise SweepRequestError("metric: " + "; ".join(problems))
    if spec.kind not in SWEEP_METRIC_KINDS:
        raise SweepRequestError(
            f"metric: {metric} compares with {spec.kind} inputs; a steps sweep scores media "
            f"alone (metric kinds {', '.join(SWEEP_METRIC_KINDS)})"
        )
    if not nfe_budgets:
        raise SweepRequestError("nfe_budgets: give at least one budget")
    bad = [b for b in nfe_budgets if isinstance(b, bool) or not isinstance(b, int) or b < 1]
    if bad:
        raise SweepRequestError(f"nfe_budgets: budgets must be integers >= 1, got {bad}")


def steps_sweep_run(
    *,
    version_id: int,
    metric: str = "prompt_agreement",
    nfe_budgets: Sequence[int] = DEFAULT_NFE_BUDGETS,
    sampler: str | None = None,
    prompt_set_slug: str | None = None,
    seeds: Sequence[int] = (0,),
    batch_size: int | None = None,
    device: str | None = None,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> list[StepsSweepPoint]:
    """Run (or complete) the steps sweep of a version; returns its points for this metric and
    sampler, by NFE. `sampler` picks another sampler (native) or scheduler class (diffusers)
    than the version's. `progress(done, total)` counts points. Raises SweepRequestError for a
    bad request and GenerationFailed when the checkpoint cannot generate."""
    from evaluation.backbones import backbone_load, metric_options
    from evaluation.features.media import MediaError
    from evaluation.features.weights import WeightsRejected, WeightsUnavailable
    from evaluation.metrics.prompt_agreement import NoCheckablePrompts
    from evaluation.metrics.suite import evaluate
    from evaluation.reference_sets import (
        reference_set_for_task,
        reference_slug_for_task,
        reference_stats_load,
    )
    from evaluation.services import _json_safe
    from models_registry.generators import GeneratorConfigError
    from models_registry.generators.quality import parse_prompt

    version = ModelVersion.objects.select_related("model").get(pk=version_id)
    task = version.model.task
    nfe_budgets = list(nfe_budgets)
    check_sweep_request(task=task, metric=metric, nfe_budgets=nfe_budgets)
    spec = suite_metric_spec(metric)
    slug = prompt_set_slug or task_spec(task).prompt_set
    prompt_set = PromptSet.objects.filter(slug=slug, task=task).first()
    if prompt_set is None:
        raise SweepRequestError(
            f"prompt_set: {slug!r} is not a {task} prompt set; run `manage.py load_prompt_sets`"
        )
    prompts = [p.text for p in prompt_set.prompts.order_by("position", "id")]
    seeds = [int(s) for s in seeds]
    if not prompts or not seeds:
        raise SweepRequestError("prompt_set / seeds: nothing to generate")
    generator = load_version_generator(version, device=generator_device(device))
    params = {generator.sampler_param: sampler} if sampler else {}
    sampler_name = sampler or generator.sampler_name
    try:  # one step must be valid: a bad sampler is the request's fault, not a budget's
        one_step = generator.nfe_for_steps(1, **params)
    except (GeneratorConfigError, ValueError) as exc:
        raise SweepRequestError(f"sampler: {exc}") from exc
    plan = plan_nfe_sweep(lambda s: generator.nfe_for_steps(s, **params), nfe_budgets)
    if not plan:
        raise SweepRequestError(
            f"nfe_budgets: no budget in {sorted(nfe_budgets)} fits one step of {sampler_name} "
            f"({one_step} network evaluations per sample)"
        )
    existing = {
        p.steps: p
        for p in StepsSweepPoint.objects.filter(
            version=version, metric=metric, sampler=sampler_name
        )
    }
    progress = progress or (lambda _done, _total: None)
    todo = [(b, s, n) for b, s, n in plan if force or s not in existing]
    progress(len(plan) - len(todo), len(plan))
    if not todo:
        return _points(version, metric, sampler_name)

    items = [(p, s) for p in prompts for s in seeds]
    batch = max(1, batch_size or settings.GENERATOR_BATCH_SIZE)
    backbone, reference, unavailable = None, None, ""
    try:
        if (
            spec.kind == PROMPT
            and spec.backbone == "checker"
            and not any(map(parse_prompt, prompts))
        ):
            from evaluation.metrics.prompt_agreement import no_checkable_prompts

            raise no_checkable_prompts(len(items), metric=metric)
        backbone = backbone_load(key=spec.backbone)
        if spec.kind == REFERENCE:
            reference = reference_stats_load(
                reference_set=reference_set_for_task(task=task, backbone=backbone)
            )
    except (WeightsUnavailable, WeightsRejected, NoCheckablePrompts) as exc:
        unavailable = str(exc)

    for done, (budget, steps, planned_nfe) in enumerate(todo, start=len(plan) - len(todo)):
        measured: list[tuple[float, int]] = []  # (seconds per sample, NFE) per batch
        batches = _generated_batches(
            generator, items, batch=batch, steps=steps, params=params, measured=measured
        )
        fields = dict(
            nfe_budget=budget,
            guidance_scale=_guidance(generator),
            prompt_set=slug,
            seeds=seeds,
            backbone=getattr(backbone, "name", spec.backbone),
        )
        if unavailable:  # nothing to score with: generate nothing, keep the planned NFE
            fields.update(status=MetricStatus.UNAVAILABLE, message=unavailable)
        else:
            try:
                value = evaluate(
                    metric,
                    backbone=backbone,
                    reference=reference,
                    batches=batches,
                    **metric_options(metric),
                )
            except (MediaError, ValueError) as exc:
                if isinstance(exc, SweepRequestError):
                    raise
                fields.update(status=MetricStatus.FAILED, message=str(exc))
            else:
                fields.update(
                    status=MetricStatus.OK,
                    value=value.value,
                    lower=value.lower,
                    upper=value.upper,
                    n=value.n,
                    details=_json_safe(value.details),
                    message="",
                )
        nfes = sorted({nfe for _, nfe in measured})
        if nfes and nfes != [planned_nfe]:
            log.warning(
                "steps sweep of version %s: %s at %d steps counted NFE %s, planned %d",
                version_id,
                sampler_name,
                steps,
                nfes,
                planned_nfe,
            )
        fields["nfe"] = max(nfes) if nfes else planned_nfe
        fields["details"] = {**fields.get("details", {}), "planned_nfe": planned_nfe}
        if measured:
            fields["seconds_per_sample"] = sum(s for s, _ in measured) / len(measured)
        if spec.kind == REFERENCE and not unavailable:
            fields["details"]["reference"] = reference_slug_for_task(task)
        with transaction.atomic():
            StepsSweepPoint.objects.update_or_create(
                version=version,
                metric=metric,
                sampler=sampler_name,
                steps=steps,
                defaults={"value": None, "lower": None, "upper": None, "n": 0, **fields},
            )
        log.info(
            "steps sweep %s %s %s steps=%d nfe=%d: %s",
            version,
            metric,
            sampler_name,
            steps,
            fields["nfe"],
            fields.get("value", fields["status"]),
        )
        progress(done + 1, len(plan))
    return _points(version, metric, sampler_name)


def _generated_batches(
    generator,
    items: Sequence[tuple[str, int]],
    *,
    batch: int,
    steps: int,
    params: dict,
    measured: list[tuple[float, int]],
) -> Iterator[tuple[object, list[str]]]:
    """(uint8 pixels, prompts) per batch of (prompt, seed) items, generated lazily so a metric
    streams them; appends (seconds per sample, counted NFE) of each batch to `measured`."""
    from models_registry.generators import GeneratorConfigError

    for start in range(0, len(items), batch):
        chunk = items[start : start + batch]
        texts = [p for p, _ in chunk]
        began = time.perf_counter()
        try:
            pixels = generator.generate(texts, [s for _, s in chunk], steps=steps, **params)
        except GeneratorConfigError as exc:
            raise SweepRequestError(f"sampler: {exc}") from exc
        except Exception as exc:
            if _is_oom(exc):
                raise GenerationFailed(
                    f"out of memory on {generator.device} at batch size {len(chunk)}"
                ) from exc
            raise
        measured.append(((time.perf_counter() - began) / len(chunk), generator.last_stats.nfe))
        yield pixels, texts


def _points(version: ModelVersion, metric: str, sampler: str) -> list[StepsSweepPoint]:
    return list(
        StepsSweepPoint.objects.filter(version=version, metric=metric, sampler=sampler).order_by(
            "nfe", "steps"
        )
    )


def _guidance(generator) -> float | None:
    sampler = getattr(generator, "sampler", None)
    if isinstance(sampler, dict):
        return float(sampler.get("guidance_scale", 1.0))
    value = getattr(generator, "guidance_scale", None)
    return None if value is None else float(value)


__all__ = [
    "DEFAULT_NFE_BUDGETS",
    "GenerationFailed",
    "SweepRequestError",
    "check_sweep_request",
    "steps_sweep_run",
]
