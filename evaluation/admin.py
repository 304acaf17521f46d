from django.contrib import admin

from evaluation.models import (
    MetricResult,
    Prompt,
    PromptSet,
    ReferenceSet,
    Sample,
    StepsSweepPoint,
)


class PromptInline(admin.TabularInline):
    model = Prompt
    extra = 0


@admin.register(PromptSet)
class PromptSetAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "task", "created_at"]
    inlines = [PromptInline]


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = ["text", "category", "prompt_set"]
    list_filter = ["prompt_set", "category"]
    search_fields = ["text"]


@admin.register(Sample)
class SampleAdmin(admin.ModelAdmin):
    list_display = [
        "version",
        "prompt",
        "seed",
        "pool",
        "retired_reason",
        "withheld",
        "media_kind",
        "generation_seconds",
        "device_name",
        "nfe",
        "created_at",
    ]
    list_filter = ["pool", "retired_reason", "withheld", "media_kind", "device_kind", "dtype"]
    readonly_fields = ["public_id", "sha256", "fingerprint"]


@admin.register(ReferenceSet)
class ReferenceSetAdmin(admin.ModelAdmin):
    list_display = ["slug", "task", "backbone", "n", "weights_sha256", "created_at"]


@admin.register(MetricResult)
class MetricResultAdmin(admin.ModelAdmin):
    list_display = [
        "version",
        "metric",
        "status",
        "value",
        "lower",
        "upper",
        "n",
        "backbone",
        "weights_sha256",
    ]
    list_filter = ["metric", "status"]


@admin.register(StepsSweepPoint)
class StepsSweepPointAdmin(admin.ModelAdmin):
    list_display = ["version", "metric", "sampler", "steps", "nfe", "status", "value", "n"]
    list_filter = ["metric", "sampler", "status"]
