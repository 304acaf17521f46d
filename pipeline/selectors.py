"""Pipeline reads."""

from __future__ import annotations

from django.db.models import QuerySet

from models_registry.models import ModelVersion
from pipeline.models import VersionStage


def version_stages(*, version: ModelVersion) -> QuerySet[VersionStage]:
    return VersionStage.objects.filter(version=version)
