"""Input and output shapes of the registry API (no business logic: services do the work)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from models_registry.models import (
    Checkpoint,
    GenerativeModel,
    ModelVersion,
    Upload,
)

MAX_BYTES = 2**63 - 1  # largest size a BigIntegerField holds
TAG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class VersionBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = ModelVersion
        fields = ["id", "tag", "status"]


class GenerativeModelSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)
    versions = VersionBriefSerializer(many=True, read_only=True)

    class Meta:
        model = GenerativeModel
        fields = [
            "slug",
            "display_name",
            "task",
            "paradigm",
            "license",
            "description",
            "homepage",
            "visibility",
            "owner",
            "versions",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["owner", "versions", "created_at", "updated_at"]


class GenerativeModelUpdateSerializer(serializers.ModelSerializer):
    class Meta:
        model = GenerativeModel
        fields = ["display_name", "paradigm", "license", "description", "homepage", "visibility"]


class CheckpointSerializer(serializers.ModelSerializer):
    class Meta:
        model = Checkpoint
        fields = ["format", "size", "sha256", "created_at"]


class StageRowSerializer(serializers.Serializer):
    """One pipeline stage of a version; the pipeline app's rows, read through `version.stages`
    (the registry imports no pipeline code)."""

    stage = serializers.CharField()
    state = serializers.CharField()
    done = serializers.IntegerField()
    total = serializers.IntegerField()
    reason = serializers.CharField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class ModelVersionSerializer(serializers.ModelSerializer):
    model = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    checkpoint = serializers.SerializerMethodField()
    stages = StageRowSerializer(many=True, read_only=True)

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "model",
            "tag",
            "status",
            "status_reason",
            "arena_approved",
            "generator_config",
            "checkpoint",
            "stages",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(CheckpointSerializer(allow_null=True))
    def get_checkpoint(self, version: ModelVersion) -> dict | None:
        checkpoint = Checkpoint.objects.filter(version=version).first()
        return CheckpointSerializer(checkpoint).data if checkpoint else None


@extend_schema_field(
    {
        "type": "object",
        "properties": {
            "resolution": {"type": "integer", "minimum": 8, "maximum": 1024},
            "frames": {"type": "integer", "minimum": 1, "maximum": 128},
            "sampler": {"type": "object", "additionalProperties": True},
        },
        "additionalProperties": False,
    }
)
class OverridesField(serializers.JSONField):
    """Optional version settings applied over the checkpoint's own config."""


class VersionCreateSerializer(serializers.Serializer):
    tag = serializers.RegexField(TAG_PATTERN, max_length=64)
    generator_config = OverridesField(required=False)


class VersionUpdateSerializer(serializers.Serializer):
    tag = serializers.RegexField(TAG_PATTERN, max_length=64, required=False)
    generator_config = OverridesField(required=False)


class UploadSerializer(serializers.ModelSerializer):
    version = serializers.PrimaryKeyRelatedField(read_only=True)
    next_offset = serializers.IntegerField(source="received", read_only=True)

    class Meta:
        model = Upload
        fields = [
            "id",
            "version",
            "filename",
            "total_size",
            "received",
            "next_offset",
            "status",
            "sha256",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class UploadStartSerializer(serializers.Serializer):
    filename = serializers.CharField(max_length=255)
    total_size = serializers.IntegerField(min_value=1, max_value=MAX_BYTES)


class UploadFinalizeSerializer(serializers.Serializer):
    sha256 = serializers.CharField(max_length=64, min_length=64)


class ErrorSerializer(serializers.Serializer):
    """Error body: ``detail`` says what was wrong; upload errors also give the resume offset."""

    detail = serializers.CharField()
    offset = serializers.IntegerField(required=False)
    field = serializers.CharField(required=False)
    upload_id = serializers.IntegerField(required=False)
