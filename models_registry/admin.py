from django.contrib import admin, messages

from models_registry import selectors, services
from models_registry.models import (
    ApiToken,
    Checkpoint,
    GenerativeModel,
    ModelVersion,
    Upload,
)


@admin.register(GenerativeModel)
class GenerativeModelAdmin(admin.ModelAdmin):
    list_display = ["slug", "display_name", "task", "paradigm", "visibility", "owner", "created_at"]
    list_filter = ["task", "paradigm", "visibility"]
    search_fields = ["slug", "display_name"]

    def get_queryset(self, request):
        # Private models stay hidden from anyone who is not their owner or staff.
        return selectors.visible_models(user=request.user)


@admin.action(description="Approve selected versions for the public arena")
def approve_for_arena(modeladmin, request, queryset):
    approved = 0
    for version in queryset.select_related("model"):
        try:
            services.version_approve_for_arena(version=version, approver=request.user)
            approved += 1
        except services.RegistryError as exc:
            modeladmin.message_user(request, str(exc), messages.ERROR)
    if approved:
        modeladmin.message_user(request, f"Approved {approved} version(s) for the arena.")


@admin.action(description="Revoke arena approval of selected versions")
def revoke_arena(modeladmin, request, queryset):
    for version in queryset:
        services.version_revoke_arena(version=version)
    modeladmin.message_user(request, f"Revoked arena approval of {queryset.count()} version(s).")


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "status",
        "base_version",
        "arena_approved",
        "approved_by",
        "created_at",
    ]
    list_filter = ["status", "arena_approved", "model__task"]
    list_select_related = ["base_version__model"]  # base_version's __str__ reads its model
    search_fields = ["model__slug", "tag"]
    # base_version is fixed once set: the adapter was validated against that base.
    readonly_fields = ["status", "status_reason", "base_version", "arena_approved", "approved_by"]
    actions = [approve_for_arena, revoke_arena]

    def get_queryset(self, request):
        return selectors.visible_versions(user=request.user)


@admin.register(Checkpoint)
class CheckpointAdmin(admin.ModelAdmin):
    list_display = ["version", "format", "size", "sha256", "created_at"]
    readonly_fields = ["sha256", "size", "unpacked_path"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .filter(version__in=selectors.visible_versions(user=request.user))
        )


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
    readonly_fields = ["received", "storage_name", "sha256", "status"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .filter(version__in=selectors.visible_versions(user=request.user))
        )


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["user", "name", "prefix", "created_at", "last_used_at"]
    fields = ["user", "name", "prefix", "created_at", "last_used_at"]
    readonly_fields = ["prefix", "created_at", "last_used_at"]

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        # The key exists only now: show it once, store only its hash.
        token, key = services.api_token_create(user=obj.user, name=obj.name)
        obj.pk, obj.prefix, obj.key_hash = token.pk, token.prefix, token.key_hash
        obj.created_at = token.created_at
        obj._state.adding = False
        self.message_user(
            request,
            f"API token for {obj.user}: {key} (copy it now; it is not shown again)",
            messages.WARNING,
        )
