"""Evaluation reads: metric results of versions and reference sets of a task."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet

from evaluation.metrics.catalogue import metric_spec
from evaluation.models import MetricResult, MetricStatus, ReferenceSet, Sample
from models_registry.models import ModelVersion


def version_samples(*, version: ModelVersion) -> QuerySet[Sample]:
    """Generated samples of one version, in natural-key order."""
    return Sample.objects.filter(version=version).select_related("prompt")


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


def reference_sets_for_task(*, task: str) -> QuerySet[ReferenceSet]:
    return ReferenceSet.objects.filter(task=task).order_by("slug", "backbone")
