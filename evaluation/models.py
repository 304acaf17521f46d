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
    # Style covariates measured from the media at generation (evaluation.sample_store): width,
    # height, aspect_ratio, frames (videos), generation_seconds, brightness, saturation. Extra
    # keys are welcome (numbers); RATINGS_STYLE_COVARIATES chooses which enter style control.
    covariates = models.JSONField(default=dict, blank=True)
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


class MetricStatus(models.TextChoices):
    OK = "ok", "OK"
    UNAVAILABLE = "unavailable", "Unavailable (weights not configured)"
    FAILED = "failed", "Failed"


class MetricResult(models.Model):
    """One metric value for a version, idempotent on (version, metric, backbone, reference)."""

    version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="metric_results"
    )
    metric = models.CharField(max_length=32)
    status = models.CharField(max_length=12, choices=MetricStatus.choices, default=MetricStatus.OK)
    value = models.FloatField(null=True, blank=True)
    lower = models.FloatField(null=True, blank=True)
    upper = models.FloatField(null=True, blank=True)
    n = models.PositiveIntegerField(default=0)
    backbone = models.CharField(max_length=80)
    weights_sha256 = models.CharField(max_length=64, blank=True)
    # True when the weights' sha256 is not the published one (accepted because marked custom).
    weights_custom = models.BooleanField(default=False)
    reference = models.CharField(max_length=80, blank=True, default="")
    message = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)  # e.g. KID std, CI method, reference n
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


# --- VLM judge (issue 8) ---
class JudgeMode(models.TextChoices):
    VQASCORE = "vqascore", "VQAScore (P(Yes), local VLM)"
    RUBRIC = "rubric", "VIEScore-style rubric"


class JudgeStatus(models.TextChoices):
    OK = "ok", "OK"
    FAILED = "failed", "Failed"


class JudgeResult(models.Model):
    """One judge's verdict on one sample in one mode; idempotent on (sample, judge, mode)."""

    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="judge_results")
    judge = models.CharField(max_length=120)
    mode = models.CharField(max_length=12, choices=JudgeMode.choices)
    status = models.CharField(max_length=8, choices=JudgeStatus.choices)
    # VQAScore: probability in [0, 1]; rubric: sqrt(SC * PQ) on 0-10.
    score = models.FloatField(null=True, blank=True)
    rationale = models.TextField(blank=True)
    raw = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["sample", "judge", "mode"]
        constraints = [
            models.UniqueConstraint(
                fields=["sample", "judge", "mode"], name="judgeresult_natural_key"
            ),
            models.CheckConstraint(
                condition=Q(mode__in=JudgeMode.values), name="judgeresult_mode_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=JudgeStatus.values), name="judgeresult_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(status="ok", score__isnull=False)
                | Q(status="failed", score__isnull=True),
                name="judgeresult_ok_has_score",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.judge} {self.mode} sample {self.sample_id}: {self.status} {self.score}"


class JudgeCacheEntry(models.Model):
    """A judge's parsed-OK answer, keyed by sha256 of (judge, mode, prompt, sample sha256s)."""

    key = models.CharField(max_length=64, primary_key=True)
    judge = models.CharField(max_length=120, db_index=True)
    mode = models.CharField(max_length=32)
    response = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.judge} {self.mode} {self.key[:12]}"
