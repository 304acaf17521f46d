from django.contrib import admin

from arena.models import Battle, Rater, RatingSnapshot, Vote


@admin.register(Rater)
class RaterAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "user", "judge_name", "created_at"]
    list_filter = ["kind"]


@admin.register(Battle)
class BattleAdmin(admin.ModelAdmin):
    list_display = ["id", "task", "prompt", "served_to", "served_at", "expires_at"]
    list_filter = ["task"]


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
        "rater_kind",
        "created_at",
    ]
    list_filter = ["task", "outcome", "rater_kind"]

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
