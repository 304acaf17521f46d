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
from models_registry.selectors import version_generation_summary

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


class GenerationSummarySerializer(serializers.Serializer):
    """What generating a version's samples cost (models_registry.generators.cost): seconds and
    $ per sample (median and mean over `n` timed samples, `n_priced` of them on a priced
    device), $ per megapixel and per video second (medians), device, dtype, batch size, sampler
    steps, NFE (network evaluations per sample) and the largest peak memory recorded."""

    n = serializers.IntegerField()
    n_priced = serializers.IntegerField()
    seconds_median = serializers.FloatField()
    seconds_mean = serializers.FloatField()
    cost_per_sample_median = serializers.FloatField(allow_null=True)
    cost_per_sample_mean = serializers.FloatField(allow_null=True)
    cost_per_megapixel_median = serializers.FloatField(allow_null=True)
    cost_per_video_second_median = serializers.FloatField(allow_null=True)
    device_kind = serializers.CharField()
    device_name = serializers.CharField()
    price_key = serializers.CharField()
    price_per_hour = serializers.FloatField(allow_null=True)
    dtype = serializers.CharField()
    batch_size = serializers.IntegerField(allow_null=True)
    steps = serializers.IntegerField(allow_null=True)
    nfe = serializers.IntegerField(allow_null=True)
    peak_memory_bytes = serializers.IntegerField(allow_null=True)
    mixed = serializers.ListField(child=serializers.CharField())


class StepsSweepRowSerializer(serializers.Serializer):
    """One steps-sweep point of a version; the evaluation app's rows, read through
    `version.steps_sweep`."""

    metric = serializers.CharField()
    sampler = serializers.CharField()
    steps = serializers.IntegerField()
    nfe = serializers.IntegerField()
    nfe_budget = serializers.IntegerField()
    guidance_scale = serializers.FloatField(allow_null=True)
    status = serializers.CharField()
    value = serializers.FloatField(allow_null=True)
    lower = serializers.FloatField(allow_null=True)
    upper = serializers.FloatField(allow_null=True)
    n = serializers.IntegerField()
    seconds_per_sample = serializers.FloatField(allow_null=True)
    message = serializers.CharField()
    updated_at = serializers.DateTimeField()


class ModelVersionSerializer(serializers.ModelSerializer):
    model = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    base_version = serializers.SerializerMethodField()
    checkpoint = serializers.SerializerMethodField()
    stages = StageRowSerializer(many=True, read_only=True)
    generation = serializers.SerializerMethodField()
    steps_sweep = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "model",
            "tag",
            "status",
            "status_reason",
            "arena_approved",
            "base_version",
            "generator_config",
            "checkpoint",
            "stages",
            "generation",
            "steps_sweep",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_base_version(self, version: ModelVersion) -> str | None:
        """A LoRA adapter version's base, as "<model-slug>@<tag>"; null for full checkpoints."""
        return str(version.base_version) if version.base_version_id else None

    @extend_schema_field(CheckpointSerializer(allow_null=True))
    def get_checkpoint(self, version: ModelVersion) -> dict | None:
        checkpoint = Checkpoint.objects.filter(version=version).first()
        return CheckpointSerializer(checkpoint).data if checkpoint else None

    @extend_schema_field(GenerationSummarySerializer(allow_null=True))
    def get_generation(self, version: ModelVersion) -> dict | None:
        summary = version_generation_summary(version=version)
        return GenerationSummarySerializer(summary.as_dict()).data if summary else None

    @extend_schema_field(StepsSweepRowSerializer(many=True))
    def get_steps_sweep(self, version: ModelVersion) -> list[dict]:
        points = version.steps_sweep.order_by("metric", "sampler", "nfe", "steps")
        return StepsSweepRowSerializer(points, many=True).data


@extend_schema_field(
    {
        "type": "object",
        "properties": {
            "resolution": {"type": "integer", "minimum": 8, "maximum": 1024},
            "frames": {"type": "integer", "minimum": 1, "maximum": 128},
            "sampler": {"type": "object", "additionalProperties": True},
            "steps": {"type": "integer", "minimum": 1, "maximum": 1000},
            "guidance_scale": {"type": "number", "minimum": 0, "maximum": 50},
            "torch_dtype": {"type": "string", "enum": ["float32", "float16", "bfloat16"]},
            "attention_slicing": {
                "oneOf": [
                    {"type": "boolean"},
                    {"type": "string", "enum": ["auto", "max"]},
                    {"type": "integer", "minimum": 1},
                ]
            },
            "vae_slicing": {"type": "boolean"},
            "vae_tiling": {"type": "boolean"},
            "cpu_offload": {"type": "string", "enum": ["none", "model", "sequential"]},
            "compile": {"type": "boolean"},
            "lora_scale": {"type": "number", "minimum": 0, "maximum": 2},
        },
        "additionalProperties": False,
    }
)
class OverridesField(serializers.JSONField):
    """Optional version settings applied over the checkpoint's own config."""


class VersionCreateSerializer(serializers.Serializer):
    tag = serializers.RegexField(TAG_PATTERN, max_length=64)
    generator_config = OverridesField(required=False)
    base_version = serializers.CharField(
        required=False,
        max_length=150,
        help_text="Makes the version a LoRA adapter on this diffusers version: its id or "
        '"<model-slug>@<tag>" (a validated version you can see, same task).',
    )


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
