"""REST read of a version's pipeline stages (``/api/v1/versions/<pk>/stages/``)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema

from models_registry.api import VersionChildListView
from models_registry.serializers import StageRowSerializer
from pipeline import selectors


@extend_schema(summary="List a version's pipeline stages")
class VersionStagesView(VersionChildListView):
    serializer_class = StageRowSerializer  # the same shape as a version body's `stages`

    def get_queryset(self):
        return selectors.version_stages(version=self.version())
