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
    # Image editing (task image-edit): `text` is the instruction, `source_image` the PNG it
    # edits; `source_text` / `target_text` caption the source and the exact target when they are
    # scenes of the synthetic grammar (the oracle's edit metrics read them). Blank otherwise.
    source_image = models.FileField(upload_to="prompt_sources/", max_length=300, blank=True)
    source_text = models.TextField(blank=True)
    target_text = models.TextField(blank=True)

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


class SamplePool(models.TextChoices):
    """The two disjoint pools the generate stage makes of every version (evaluation.pools)."""

    BATTLE = "battle", "Battle pool (served only in battles, public once retired)"
    SHOWCASE = "showcase", "Showcase (galleries, sample pages, API lists)"


class RetiredReason(models.TextChoices):
    REVEALS = "reveals", "Its model was revealed to ARENA_RETIRE_AFTER_REVEALS raters"
    LEFT_ARENA = "left_arena", "Its version left the arena"
    LOOKALIKE = "lookalike", "It looks like a public sample of its version (never served)"


class SampleQuerySet(models.QuerySet):
    def public(self) -> SampleQuerySet:
        """Samples anyone may find: the showcase and retired battle samples, but none withheld
        as a lookalike of a live battle sample (the anonymity rule, evaluation.pools)."""
        return self.filter(
            Q(pool=SamplePool.SHOWCASE) | Q(retired_at__isnull=False), withheld=False
        )

    def live_battle(self) -> SampleQuerySet:
        """Battle-pool samples that may still be served (not retired)."""
        return self.filter(pool=SamplePool.BATTLE, retired_at__isnull=True)


class Sample(models.Model):
    """One generated image or video, keyed by its natural key (version, prompt, seed).

    `pool` says where it may appear: the battle pool (served to raters through per-battle tokens
    only, public once `retired_at` is set) or the showcase (public unless `withheld`)."""

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
    # What generating it took, measured by the generator during its batch
    # (models_registry.generators.measurement.GenerationStats); blank on samples stored before.
    device_kind = models.CharField(max_length=16, blank=True)  # cpu | cuda | mps
    device_name = models.CharField(max_length=120, blank=True)  # GPU name or CPU model
    dtype = models.CharField(max_length=16, blank=True)  # the denoiser's dtype, e.g. float16
    batch_size = models.PositiveIntegerField(null=True, blank=True)
    steps = models.PositiveIntegerField(null=True, blank=True)  # sampler steps
    nfe = models.PositiveIntegerField(null=True, blank=True)  # network evaluations per sample
    peak_memory_bytes = models.BigIntegerField(null=True, blank=True)
    # cuda_max_allocated (the batch's CUDA allocator peak) | process_max_rss (the CPU worker's
    # peak resident set since it started)
    peak_memory_kind = models.CharField(max_length=24, blank=True)
    # Style covariates measured from the media at generation (evaluation.sample_store): width,
    # height, aspect_ratio, frames (videos), generation_seconds, brightness, saturation. Extra
    # keys are welcome (numbers); RATINGS_STYLE_COVARIATES chooses which enter style control.
    covariates = models.JSONField(default=dict, blank=True)
    pool = models.CharField(
        max_length=10, choices=SamplePool.choices, default=SamplePool.BATTLE, db_index=True
    )
    retired_at = models.DateTimeField(null=True, blank=True, db_index=True)
    retired_reason = models.CharField(max_length=12, choices=RetiredReason.choices, blank=True)
    # Kept from public lists while it looks like a live battle sample of its version (a model
    # whose outputs barely change with the seed would otherwise give its battles away).
    withheld = models.BooleanField(default=False)
    # 16x16 RGB area-average thumbnail (768 bytes) of the image or first frame: the lookalike
    # screen compares these (evaluation.features.fingerprint).
    fingerprint = models.BinaryField(max_length=768, blank=True, default=b"")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = SampleQuerySet.as_manager()

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
            models.CheckConstraint(
                condition=Q(pool__in=SamplePool.values), name="sample_pool_valid"
            ),
            models.CheckConstraint(
                condition=Q(pool=SamplePool.BATTLE) | Q(retired_at__isnull=True),
                name="sample_only_battle_retires",
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
    # How to reproduce the value (evaluation.provenance.reproducibility): library versions,
    # resize mode, dtype, device, batch size, weights sha256, seeds, reference set, samples.
    manifest = models.JSONField(default=dict, blank=True)
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


class StepsSweepPoint(models.Model):
    """One point of a version's steps sweep: a metric of samples generated with `steps` sampler
    steps (`nfe` network evaluations per sample, counted while generating). Idempotent on
    (version, metric, sampler, steps); the samples are scored in memory, not stored."""

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="steps_sweep")
    metric = models.CharField(max_length=32)
    sampler = models.CharField(max_length=60)  # native sampler name or diffusers scheduler class
    steps = models.PositiveIntegerField()
    nfe = models.PositiveIntegerField()  # measured network evaluations per sample
    nfe_budget = models.PositiveIntegerField()  # the budget of the sweep this point answers
    guidance_scale = models.FloatField(null=True, blank=True)
    status = models.CharField(max_length=12, choices=MetricStatus.choices, default=MetricStatus.OK)
    value = models.FloatField(null=True, blank=True)
    lower = models.FloatField(null=True, blank=True)
    upper = models.FloatField(null=True, blank=True)
    n = models.PositiveIntegerField(default=0)  # samples scored
    seconds_per_sample = models.FloatField(null=True, blank=True)
    prompt_set = models.CharField(max_length=80)
    seeds = models.JSONField(default=list, blank=True)
    backbone = models.CharField(max_length=80, blank=True)
    message = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["version", "metric", "sampler", "nfe", "steps"]
        constraints = [
            models.UniqueConstraint(
                fields=["version", "metric", "sampler", "steps"],
                name="stepssweeppoint_natural_key",
            ),
            models.CheckConstraint(
                condition=Q(status__in=MetricStatus.values), name="stepssweeppoint_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(status="ok", value__isnull=False) | ~Q(status="ok"),
                name="stepssweeppoint_ok_has_value",
            ),
            models.CheckConstraint(
                condition=Q(steps__gte=1), name="stepssweeppoint_steps_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.version} {self.metric} {self.sampler}@{self.steps} (NFE {self.nfe})"


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


# --- provenance (issue 18) ---
class SampleProvenance(models.Model):
    """A sample's published rendition: watermarked with `watermark_id`, signed with C2PA.

    Sample.media stays anonymous (battles serve it, pixels only); this file is what model pages,
    sample pages and exports serve, once identity may be known.
    """

    sample = models.OneToOneField(Sample, on_delete=models.CASCADE, related_name="provenance")
    # The 63-bit id the invisible watermark carries (maps a stripped copy back to its sample).
    watermark_id = models.BigIntegerField(unique=True)
    media = models.FileField(upload_to="published/", max_length=300)
    sha256 = models.CharField(max_length=64)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    watermarked = models.BooleanField(default=False)  # False for clips (C2PA only)
    signed = models.BooleanField(default=False)
    demo_signer = models.BooleanField(default=False)  # signed with the self-signed demo chain
    # The manifest as read back from the signed file (ManifestReport.as_dict()).
    manifest = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(watermark_id__gte=0), name="sampleprovenance_id_nonnegative"
            ),
        ]

    def __str__(self) -> str:
        return f"provenance of sample {self.sample_id} (wm {self.watermark_id:016x})"


class VersionProvenance(models.Model):
    """The provenance column of a version: what its own outputs carry, and whether our watermark
    survives JPEG q75 and a resize on its outputs (mean bit accuracy over the checked samples)."""

    version = models.OneToOneField(
        ModelVersion, on_delete=models.CASCADE, related_name="provenance"
    )
    samples_checked = models.PositiveIntegerField(default=0)
    raw_c2pa = models.PositiveIntegerField(default=0)  # checked raw outputs carrying C2PA
    raw_watermark = models.CharField(max_length=40, blank=True)  # a known mark found, or ""
    raw_watermark_samples = models.PositiveIntegerField(default=0)
    clean_bit_accuracy = models.FloatField(null=True, blank=True)
    jpeg75_bit_accuracy = models.FloatField(null=True, blank=True)
    resize_bit_accuracy = models.FloatField(null=True, blank=True)
    survives_jpeg75 = models.BooleanField(null=True, blank=True)
    survives_resize = models.BooleanField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)  # per sample, threshold, transforms
    checked_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"provenance of {self.version}"
