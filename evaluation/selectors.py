"""Evaluation reads: metric results of versions and reference sets of a task."""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.db.models import QuerySet

from evaluation.metrics.catalogue import metric_spec
from evaluation.models import (
    MetricResult,
    MetricStatus,
    ReferenceSet,
    Sample,
    StepsSweepPoint,
    VersionProvenance,
)
from models_registry.generators.cost import (
    GENERATION_FIELDS,
    GenerationSummary,
    summarise_generation,
)
from models_registry.models import ModelVersion


def version_samples(*, version: ModelVersion) -> QuerySet[Sample]:
    """The public samples of one version (its showcase and retired battle samples; a live
    battle sample is never listed), in natural-key order."""
    return Sample.objects.public().filter(version=version).select_related("prompt")


def metric_results_for_version(*, version: ModelVersion) -> QuerySet[MetricResult]:
    """Every stored metric row of a version (ok, unavailable and failed), by metric name."""
    return MetricResult.objects.filter(version=version).order_by("metric", "backbone")


def metric_values_by_version(
    *, versions: Iterable[ModelVersion], metric: str
) -> dict[int, MetricResult]:
    """{version id: ok result of `metric`} for leaderboards (one backbone/reference per metric:
    the most recently computed). ValueError for a metric the catalogue lacks."""
    metric_spec(metric)
    rows = MetricResult.objects.filter(
        version__in=list(versions), metric=metric, status=MetricStatus.OK
    ).order_by("version_id", "-updated_at")
    out: dict[int, MetricResult] = {}
    for row in rows:
        out.setdefault(row.version_id, row)
    return out


def provenance_by_model(*, model_ids: Iterable[int]) -> dict[int, VersionProvenance]:
    """{model id: the provenance check of its newest checked version} (one query)."""
    rows = (
        VersionProvenance.objects.filter(version__model_id__in=list(model_ids))
        .select_related("version")
        .order_by("version__model_id", "-version__created_at", "-version_id")
    )
    out: dict[int, VersionProvenance] = {}
    for row in rows:
        out.setdefault(row.version.model_id, row)
    return out


def reference_sets_for_task(*, task: str) -> QuerySet[ReferenceSet]:
    return ReferenceSet.objects.filter(task=task).order_by("slug", "backbone")


def generation_summaries_by_model(
    *, model_ids: Iterable[int]
) -> dict[int, tuple[ModelVersion, GenerationSummary]]:
    """{model id: (version, its GenerationSummary)} for each model's newest version whose samples
    recorded their generation time; priced with GENERATION_PRICES (one query for the samples)."""
    versions = (
        ModelVersion.objects.filter(
            model_id__in=list(model_ids), samples__generation_seconds__isnull=False
        )
        .distinct()
        .order_by("model_id", "-created_at", "-id")
    )
    newest: dict[int, ModelVersion] = {}
    for version in versions:
        newest.setdefault(version.model_id, version)
    summaries = generation_summaries_by_version(version_ids=[v.id for v in newest.values()])
    return {
        model_id: (version, summaries[version.id])
        for model_id, version in newest.items()
        if version.id in summaries
    }


def generation_summaries_by_version(*, version_ids: Iterable[int]) -> dict[int, GenerationSummary]:
    """{version id: its GenerationSummary} for the versions whose samples recorded their
    generation time; priced with GENERATION_PRICES (one query for the samples)."""
    by_version: dict[int, list[tuple]] = {}
    rows = Sample.objects.filter(
        version_id__in=list(version_ids), generation_seconds__isnull=False
    ).values_list("version_id", *GENERATION_FIELDS)
    for version_id, *fields in rows:
        by_version.setdefault(version_id, []).append(tuple(fields))
    out = {}
    for version_id, version_rows in by_version.items():
        summary = summarise_generation(
            version_rows, prices=settings.GENERATION_PRICES, fps=settings.SAMPLE_VIDEO_FPS
        )
        if summary is not None:
            out[version_id] = summary
    return out


def steps_sweep_points(*, versions: Iterable[ModelVersion]) -> QuerySet[StepsSweepPoint]:
    """Steps-sweep points of these versions, by version, metric, sampler and NFE."""
    return StepsSweepPoint.objects.filter(version__in=list(versions)).order_by(
        "version_id", "metric", "sampler", "nfe", "steps"
    )
