from django.contrib import admin

from arena import rater_checks
from arena.models import (
    Battle,
    BattleSample,
    Rater,
    RaterFlag,
    RatingSnapshot,
    SampleReveal,
    TargetingFlag,
    Vote,
)


@admin.register(Rater)
class RaterAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "user", "judge_name", "created_at"]
    list_filter = ["kind"]


class BattleSampleInline(admin.TabularInline):
    model = BattleSample
    fields = ["position", "sample"]
    readonly_fields = ["position", "sample"]
    extra = 0
    can_delete = False


@admin.register(Battle)
class BattleAdmin(admin.ModelAdmin):
    list_display = ["id", "task", "size", "prompt", "served_to", "served_at", "expires_at"]
    list_filter = ["task", "size"]
    inlines = [BattleSampleInline]


@admin.register(Vote)
class VoteAdmin(admin.ModelAdmin):
    """Votes are append-only: the admin can read them but never change or delete them."""

    list_display = [
        "id",
        "task",
        "category",
        "model_a",
        "model_b",
        "outcome",
        "kind",
        "ranking",
        "rater_kind",
        "created_at",
    ]
    list_filter = ["task", "outcome", "kind", "rater_kind"]

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False


@admin.register(RatingSnapshot)
class RatingSnapshotAdmin(admin.ModelAdmin):
    list_display = ["task", "category", "rater_kind", "n_votes", "computed_at"]
    list_filter = ["task", "rater_kind"]


@admin.register(RaterFlag)
class RaterFlagAdmin(admin.ModelAdmin):
    """The outlier test's verdicts; maintainers review them with the actions (or on
    /maintainers/raters/). The test's own fields are read-only."""

    list_display = [
        "rater",
        "decision",
        "decided_at",
        "n_votes",
        "agreement",
        "llr",
        "review",
        "excluded",
        "checked_at",
    ]
    list_filter = ["decision", "review", "excluded"]
    readonly_fields = [
        "rater",
        "decision",
        "decided_at",
        "n_votes",
        "informative",
        "llr",
        "agreement",
        "checked_at",
        "review",
        "reviewed_by",
        "reviewed_at",
        "excluded",
    ]
    actions = ["confirm_flags", "clear_flags", "reset_reviews"]

    def has_add_permission(self, request):
        return False

    def _review(self, request, queryset, action: str) -> None:
        for flag in queryset:
            rater_checks.review_rater_flag(flag_id=flag.pk, action=action, user=request.user)
        self.message_user(request, f"{action}: {queryset.count()} rater flag(s).")

    @admin.action(description="Confirm: exclude these raters' votes")
    def confirm_flags(self, request, queryset):
        self._review(request, queryset, "confirm")

    @admin.action(description="Clear: count these raters' votes")
    def clear_flags(self, request, queryset):
        self._review(request, queryset, "clear")

    @admin.action(description="Reset: let the test decide again")
    def reset_reviews(self, request, queryset):
        self._review(request, queryset, "reset")


@admin.register(TargetingFlag)
class TargetingFlagAdmin(admin.ModelAdmin):
    """Raters and addresses the targeted-voting test flagged (their votes are left out)."""

    list_display = ["subject", "key", "model", "n", "wins", "expected", "p_value", "checked_at"]
    list_filter = ["subject"]
    search_fields = ["key", "model"]
    readonly_fields = list_display


@admin.register(SampleReveal)
class SampleRevealAdmin(admin.ModelAdmin):
    """Who has seen which sample's model (never served to them again)."""

    list_display = ["sample", "rater", "rater_kind", "created_at"]
    list_filter = ["rater_kind"]
    raw_id_fields = ["sample", "rater"]
    readonly_fields = ["sample", "rater", "rater_kind", "ip_hash", "created_at"]
