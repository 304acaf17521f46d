"""REST reads of a version's samples and metric results (``/api/v1/versions/<pk>/...``)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema

from evaluation import selectors
from evaluation.serializers import MetricResultSerializer, SampleSerializer
from models_registry.api import VersionChildListView


@extend_schema(summary="List a version's generated samples")
class VersionSamplesView(VersionChildListView):
    serializer_class = SampleSerializer

    def get_queryset(self):
        return selectors.version_samples(version=self.version())


@extend_schema(summary="List a version's metric results")
class VersionMetricsView(VersionChildListView):
    serializer_class = MetricResultSerializer

    def get_queryset(self):
        return selectors.metric_results_for_version(version=self.version())
