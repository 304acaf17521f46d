"""Output shape of a version's pipeline stages in the REST API."""

from __future__ import annotations

from rest_framework import serializers

from pipeline.models import VersionStage


class VersionStageSerializer(serializers.ModelSerializer):
    class Meta:
        model = VersionStage
        fields = ["stage", "state", "done", "total", "reason", "started_at", "finished_at"]
