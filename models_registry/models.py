"""Who submits what: models, versions, checkpoints, uploads, API tokens."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from models_registry.generators.tasks import TASKS

# One member per entry of the task catalogue (TEXT_TO_IMAGE = "text-to-image", "Text to image").
Task = models.TextChoices(
    "Task", [(spec.choice_name, (spec.name, spec.label)) for spec in TASKS.values()]
)


class Paradigm(models.TextChoices):
    DIFFUSION = "diffusion", "Diffusion"
    SCORE = "score", "Score-based"
    FLOW = "flow", "Flow matching"
    AUTOREGRESSIVE = "autoregressive", "Autoregressive"
    OTHER = "other", "Other"


class Visibility(models.TextChoices):
    PUBLIC = "public", "Public"
    UNLISTED = "unlisted", "Unlisted"
    PRIVATE = "private", "Private"


class GenerativeModel(models.Model):
    slug = models.SlugField(max_length=80, unique=True)
    display_name = models.CharField(max_length=120)
    task = models.CharField(max_length=20, choices=Task.choices)
    paradigm = models.CharField(max_length=20, choices=Paradigm.choices)
    license = models.CharField(max_length=80, blank=True)
    description = models.TextField(blank=True)
    homepage = models.URLField(blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="generative_models"
    )
    visibility = models.CharField(
        max_length=10, choices=Visibility.choices, default=Visibility.PRIVATE
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.CheckConstraint(condition=Q(task__in=Task.values), name="model_task_valid"),
            models.CheckConstraint(
                condition=Q(paradigm__in=Paradigm.values), name="model_paradigm_valid"
            ),
            models.CheckConstraint(
                condition=Q(visibility__in=Visibility.values), name="model_visibility_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.slug


class VersionStatus(models.TextChoices):
    DRAFT = "draft", "Draft (no checkpoint yet)"
    UPLOADING = "uploading", "Uploading"
    VALIDATING = "validating", "Validating"
    READY = "ready", "Ready"
    REJECTED = "rejected", "Rejected"
    GENERATING = "generating", "Generating samples"
    EVALUATING = "evaluating", "Evaluating"
    PUBLISHED = "published", "Published"
    FAILED = "failed", "Failed"


class ModelVersion(models.Model):
    model = models.ForeignKey(GenerativeModel, on_delete=models.CASCADE, related_name="versions")
    tag = models.CharField(max_length=64)
    generator_config = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=16, choices=VersionStatus.choices, default=VersionStatus.DRAFT
    )
    status_reason = models.TextField(blank=True)
    arena_approved = models.BooleanField(default=False)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # A LoRA adapter version: the diffusers version it is loaded onto (its checkpoint holds only
    # pytorch_lora_weights.safetensors). A base with adapters cannot be deleted.
    base_version = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="adapters"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model__slug", "created_at"]
        constraints = [
            models.UniqueConstraint(fields=["model", "tag"], name="version_tag_unique_per_model"),
            models.CheckConstraint(
                condition=Q(status__in=VersionStatus.values), name="version_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model.slug}@{self.tag}"


class CheckpointFormat(models.TextChoices):
    DIFFUSERS = "diffusers", "Diffusers pipeline archive"
    NATIVE = "native", "Native (config.json + model.safetensors)"
    LORA = "lora", "LoRA adapter (pytorch_lora_weights.safetensors) on a diffusers base version"


class Checkpoint(models.Model):
    version = models.OneToOneField(
        ModelVersion, on_delete=models.CASCADE, related_name="checkpoint"
    )
    file = models.FileField(upload_to="checkpoints/", max_length=300)
    format = models.CharField(max_length=16, choices=CheckpointFormat.choices)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    # Validated, unpacked directory the generator loads from (relative to MEDIA_ROOT).
    unpacked_path = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(size__gte=0), name="checkpoint_size_nonnegative"),
            models.CheckConstraint(
                condition=Q(format__in=CheckpointFormat.values), name="checkpoint_format_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.version} ({self.format}, {self.sha256[:12]})"


class UploadStatus(models.TextChoices):
    OPEN = "open", "Receiving chunks"
    FINALIZED = "finalized", "Finalized"
    ABORTED = "aborted", "Aborted"


class Upload(models.Model):
    """A resumable chunked upload of one checkpoint file."""

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="uploads")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="uploads"
    )
    filename = models.CharField(max_length=255)
    total_size = models.BigIntegerField()
    received = models.BigIntegerField(default=0)
    storage_name = models.CharField(max_length=300, blank=True)
    # Hex sha256 of the complete file, verified against the author's value at finalize.
    sha256 = models.CharField(max_length=64, blank=True)
    status = models.CharField(
        max_length=12, choices=UploadStatus.choices, default=UploadStatus.OPEN
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(total_size__gt=0), name="upload_total_positive"),
            models.CheckConstraint(
                condition=Q(received__gte=0) & Q(received__lte=models.F("total_size")),
                name="upload_received_within_total",
            ),
        ]

    def __str__(self) -> str:
        return f"upload {self.pk} {self.filename} {self.received}/{self.total_size}"


class ApiToken(models.Model):
    """A per-user API token; only its sha256 is stored."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=80, blank=True)
    prefix = models.CharField(max_length=12)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.user} {self.prefix}…"


class TrainingState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Training"
    DONE = "done", "Trained"
    FAILED = "failed", "Failed"


class TrainingKind(models.TextChoices):
    GENERATOR = "generator", "Reference generator"
    BACKBONE = "backbone", "Metric backbone"


class TrainingJob(models.Model):
    """A model the platform trains itself for the demo (a reference generator or the demo CLIP),
    with its progress; `make run` queues them in the background and the home page shows them."""

    slug = models.SlugField(max_length=64, unique=True)
    label = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=TrainingKind.choices)
    task = models.CharField(max_length=32, blank=True)  # generators: the task they generate for
    position = models.PositiveIntegerField(default=0)  # order in the training queue
    state = models.CharField(
        max_length=8, choices=TrainingState.choices, default=TrainingState.QUEUED
    )
    step = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True)
    version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "slug"]
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=TrainingState.values), name="training_state_valid"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=TrainingKind.values), name="training_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.slug}: {self.state} {self.step}/{self.total}"
