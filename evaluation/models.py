"""Prompt sets, reference sets, samples, evaluation runs and metric results."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from models_registry.models import ModelVersion, Task


class PromptSet(models.Model):
    slug = models.SlugField(max_length=80, unique=True)
    name = models.CharField(max_length=120)
    task = models.CharField(max_length=20, choices=Task.choices)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.CheckConstraint(condition=Q(task__in=Task.values), name="promptset_task_valid"),
        ]

    def __str__(self) -> str:
        return self.slug


class Prompt(models.Model):
    prompt_set = models.ForeignKey(PromptSet, on_delete=models.CASCADE, related_name="prompts")
    text = models.TextField()
    category = models.CharField(max_length=60, blank=True, db_index=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["prompt_set", "position", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["prompt_set", "text"], name="prompt_text_unique_per_set"
            ),
        ]

    def __str__(self) -> str:
        return self.text[:60]


class MediaKind(models.TextChoices):
    IMAGE = "image", "Image"
    VIDEO = "video", "Video"


class Sample(models.Model):
    """One generated image or video, keyed by its natural key (version, prompt, seed)."""

    # Opaque id used in arena media URLs so that no model identity reaches the browser.
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="samples")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="samples")
    seed = models.BigIntegerField()
    media = models.FileField(upload_to="samples/", max_length=300)
    media_kind = models.CharField(max_length=8, choices=MediaKind.choices)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    frames = models.PositiveIntegerField(default=1)
    sha256 = models.CharField(max_length=64)
    generation_seconds = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["version", "prompt", "seed"]
        constraints = [
            models.UniqueConstraint(
                fields=["version", "prompt", "seed"], name="sample_natural_key"
            ),
            models.CheckConstraint(condition=Q(frames__gte=1), name="sample_frames_positive"),
            models.CheckConstraint(
                condition=Q(media_kind__in=MediaKind.values), name="sample_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.version} prompt={self.prompt_id} seed={self.seed}"


class ReferenceSet(models.Model):
    """Cached feature statistics (mu, sigma) of a reference image/video set for one backbone."""

    slug = models.SlugField(max_length=80)
    task = models.CharField(max_length=20, choices=Task.choices)
    backbone = models.CharField(max_length=80)
    weights_sha256 = models.CharField(max_length=64)
    source_path = models.CharField(max_length=500, blank=True)
    stats_file = models.FileField(upload_to="reference_stats/", max_length=300)
    stats_sha256 = models.CharField(max_length=64)
    n = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["slug", "backbone", "weights_sha256"],
                name="referenceset_unique_per_backbone",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.slug} [{self.backbone}]"


class RunStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class EvalRun(models.Model):
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="eval_runs")
    prompt_set = models.ForeignKey(PromptSet, on_delete=models.PROTECT, related_name="eval_runs")
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.PENDING)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=RunStatus.values), name="evalrun_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"eval run {self.pk} of version {self.version_id} ({self.status})"


class MetricStatus(models.TextChoices):
    OK = "ok", "OK"
    UNAVAILABLE = "unavailable", "Unavailable (weights not configured)"
    FAILED = "failed", "Failed"


class MetricResult(models.Model):
    """One metric value for a version, idempotent on (version, metric, backbone, reference)."""

    version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="metric_results"
    )
    eval_run = models.ForeignKey(
        EvalRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="results"
    )
    metric = models.CharField(max_length=32)
    status = models.CharField(max_length=12, choices=MetricStatus.choices, default=MetricStatus.OK)
    value = models.FloatField(null=True, blank=True)
    lower = models.FloatField(null=True, blank=True)
    upper = models.FloatField(null=True, blank=True)
    n = models.PositiveIntegerField(default=0)
    backbone = models.CharField(max_length=80)
    weights_sha256 = models.CharField(max_length=64, blank=True)
    reference = models.CharField(max_length=80, blank=True, default="")
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["version", "metric"]
        constraints = [
            models.UniqueConstraint(
                fields=["version", "metric", "backbone", "reference"],
                name="metricresult_natural_key",
            ),
            models.CheckConstraint(
                condition=Q(status__in=MetricStatus.values), name="metricresult_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(status="ok", value__isnull=False) | ~Q(status="ok"),
                name="metricresult_ok_has_value",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.version} {self.metric}={self.value}"
