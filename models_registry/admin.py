from django.contrib import admin

from models_registry.models import (
    ApiToken,
    Checkpoint,
    GenerativeModel,
    ModelVersion,
    Upload,
    VersionStage,
)


class VersionStageInline(admin.TabularInline):
    model = VersionStage
    extra = 0
    readonly_fields = ["stage", "state", "done", "total", "reason", "started_at", "finished_at"]


@admin.register(GenerativeModel)
class GenerativeModelAdmin(admin.ModelAdmin):
    list_display = ["slug", "display_name", "task", "paradigm", "visibility", "owner", "created_at"]
    list_filter = ["task", "paradigm", "visibility"]
    search_fields = ["slug", "display_name"]


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["__str__", "status", "arena_approved", "created_at"]
    list_filter = ["status", "arena_approved", "model__task"]
    search_fields = ["model__slug", "tag"]
    inlines = [VersionStageInline]


@admin.register(Checkpoint)
class CheckpointAdmin(admin.ModelAdmin):
    list_display = ["version", "format", "size", "sha256", "created_at"]
    readonly_fields = ["sha256", "size"]


@admin.register(Upload)
class UploadAdmin(admin.ModelAdmin):
    list_display = [
        "version",
        "owner",
        "filename",
        "received",
        "total_size",
        "status",
        "updated_at",
    ]
    list_filter = ["status"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["user", "name", "prefix", "created_at", "last_used_at"]
    readonly_fields = ["prefix", "key_hash", "created_at", "last_used_at"]


@admin.register(VersionStage)
class VersionStageAdmin(admin.ModelAdmin):
    list_display = ["version", "stage", "state", "done", "total", "updated_at"]
    list_filter = ["stage", "state"]
