"""Pipeline admin: stage rows, and the version admin with its stages and a re-run action."""

from django.contrib import admin, messages

from models_registry import selectors
from models_registry.admin import ModelVersionAdmin
from models_registry.models import ModelVersion
from pipeline.chain import PipelineError
from pipeline.models import VersionStage
from pipeline.services import first_failed_stage, pipeline_rerun


class VersionStageInline(admin.TabularInline):
    model = VersionStage
    extra = 0
    readonly_fields = ["stage", "state", "done", "total", "reason", "started_at", "finished_at"]


@admin.action(description="Re-run the pipeline from the failed stage")
def rerun_failed_stage(modeladmin, request, queryset):
    for version in queryset.select_related("model"):
        stage = first_failed_stage(version=version)
        if stage is None:
            modeladmin.message_user(request, f"{version} has no failed stage.", messages.WARNING)
            continue
        try:
            pipeline_rerun(version=version, stage=stage)
        except PipelineError as exc:
            modeladmin.message_user(request, str(exc), messages.ERROR)
            continue
        modeladmin.message_user(request, f"Re-running {version} from stage {stage}.")


admin.site.unregister(ModelVersion)


@admin.register(ModelVersion)
class PipelineModelVersionAdmin(ModelVersionAdmin):
    """The registry's version admin, with the version's stages and a re-run action."""

    actions = [*ModelVersionAdmin.actions, rerun_failed_stage]
    inlines = [VersionStageInline]


@admin.register(VersionStage)
class VersionStageAdmin(admin.ModelAdmin):
    list_display = ["version", "stage", "state", "done", "total", "updated_at"]
    list_filter = ["stage", "state"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .filter(version__in=selectors.visible_versions(user=request.user))
        )
