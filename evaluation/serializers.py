"""Output shapes of a version's samples and metric results in the REST API."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from evaluation.models import MetricResult, Sample


class SampleSerializer(serializers.ModelSerializer):
    prompt = serializers.CharField(source="prompt.text", read_only=True)
    category = serializers.CharField(source="prompt.category", read_only=True)
    media_url = serializers.SerializerMethodField()
    # The signed, watermarked rendition and its manifest (media_url is the anonymous original).
    published_url = serializers.SerializerMethodField()
    manifest_url = serializers.SerializerMethodField()

    class Meta:
        model = Sample
        fields = [
            "public_id",
            "prompt",
            "category",
            "seed",
            "media_url",
            "published_url",
            "manifest_url",
            "media_kind",
            "width",
            "height",
            "frames",
            "sha256",
            "generation_seconds",
            "created_at",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.URI)
    def get_media_url(self, sample: Sample) -> str:
        return sample.media.url if sample.media else ""

    @extend_schema_field(OpenApiTypes.URI)
    def get_published_url(self, sample: Sample) -> str:
        return reverse("arena:sample-media", args=[sample.public_id])

    @extend_schema_field(OpenApiTypes.URI)
    def get_manifest_url(self, sample: Sample) -> str:
        return reverse("arena:sample-manifest", args=[sample.public_id])


class MetricResultSerializer(serializers.ModelSerializer):
    class Meta:
        model = MetricResult
        fields = [
            "metric",
            "status",
            "value",
            "lower",
            "upper",
            "n",
            "backbone",
            "weights_sha256",
            "reference",
            "message",
            "manifest",
            "updated_at",
        ]
        read_only_fields = fields
