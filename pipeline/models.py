"""Pipeline stages of a version: which stage, its state, progress (done / total) and reason."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from models_registry.models import ModelVersion


class Stage(models.TextChoices):
    VALIDATE = "validate", "Validate checkpoint"
    GENERATE = "generate", "Generate samples"
    METRICS = "metrics", "Compute metrics"
    JUDGE = "judge", "VLM judge"
    ARENA = "arena", "Join arena"


class StageState(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"


class VersionStage(models.Model):
    """State and progress of one pipeline stage of a version (visible in API, pages, admin)."""

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="stages")
    stage = models.CharField(max_length=16, choices=Stage.choices)
    state = models.CharField(max_length=10, choices=StageState.choices, default=StageState.PENDING)
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    reason = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "models_registry_versionstage"  # the table predates this app; rows kept
        ordering = ["version", "id"]
        constraints = [
            models.UniqueConstraint(fields=["version", "stage"], name="stage_unique_per_version"),
            models.CheckConstraint(condition=Q(stage__in=Stage.values), name="stage_name_valid"),
            models.CheckConstraint(
                condition=Q(state__in=StageState.values), name="stage_state_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.version} {self.stage}: {self.state} {self.done}/{self.total}"
