"""Prompt agreement: the share of its prompt's attributes a sample shows, read by the synthetic
domain's own checker (models_registry.generators.quality), averaged over samples.

Only prompts of the synthetic grammar can be checked; samples whose prompt `parse_caption` cannot
read get no score and are counted apart (`unparsed`). The interval is the Student-t interval of the
mean of the per-sample scores (clipped to [0, 1]); `details` also carries the share of samples showing each attribute.

`CheckerBackbone` is the duck-typed "backbone" (see evaluation.features.registry) the suite
streams media through for this metric: it reads media and prompts together (`check`), it has no
embedding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from evaluation.metrics.clip_score import student_t_mean
from evaluation.metrics.contract import EmptyMetricError, StreamingMetric
from evaluation.metrics.result import MetricValue
from models_registry.generators.quality import SampleCheck, ShapeColourClassifier, check_samples

CHECKER_NAME = "synthetic-checker"  # the backbone of prompt_agreement rows, and the judge's name


class NoCheckablePrompts(EmptyMetricError):
    """Samples were seen, but none of their prompts is in the synthetic grammar."""


def no_checkable_prompts(samples: int, *, metric: str = "prompt_agreement") -> NoCheckablePrompts:
    """The error (and message) of `samples` samples none of whose prompts the checker can read."""
    return NoCheckablePrompts(
        f"{metric}: none of the {samples} samples has a prompt of the synthetic domain (a "
        "caption parse_caption reads, e.g. 'a small red circle in the center on a black "
        "background'); the checker scores only those"
    )


class CheckerBackbone:
    """The checker as the suite's backbone: `check(media, prompts)` per sample (None where the
    prompt is outside the grammar). Its weights are the colour / shape classifier's file."""

    modality = "checker"
    custom = False  # the platform's own model, fitted on renders: there is no published file
    dim = 0

    def __init__(
        self, model: ShapeColourClassifier, *, weights_sha256: str, name: str = CHECKER_NAME
    ) -> None:
        self.model, self.name, self.weights_sha256 = model, name, weights_sha256

    def check(self, media: np.ndarray, prompts: Sequence[str]) -> list[SampleCheck | None]:
        return check_samples(self.model, media, prompts)


class PromptAgreement(StreamingMetric):
    """Streaming mean of per-sample checker scores (constant memory; merge adds sums exactly)."""

    def __init__(
        self,
        *,
        backbone: str,
        weights_sha256: str,
        metric: str = "prompt_agreement",
        confidence: float = 0.95,
    ) -> None:
        self.metric, self.backbone, self.weights_sha256 = metric, backbone, weights_sha256
        self.confidence = confidence
        self.reset()

    def reset(self) -> None:
        self.n = 0
        self.unparsed = 0
        self.total = 0.0
        self.total_sq = 0.0
        self.shown: dict[str, int] = {}  # attribute -> samples showing it
        self.asked: dict[str, int] = {}  # attribute -> samples whose prompt names it

    def update(self, checks: Sequence[SampleCheck | None]) -> None:
        """Add per-sample checks (None: a prompt outside the synthetic grammar, not scored)."""
        for check in checks:
            if check is None:
                self.unparsed += 1
                continue
            self.n += 1
            self.total += check.score
            self.total_sq += check.score * check.score
            for name, ok in check.attributes.items():
                self.asked[name] = self.asked.get(name, 0) + 1
                self.shown[name] = self.shown.get(name, 0) + bool(ok)

    def merge_key(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "backbone": self.backbone,
            "weights_sha256": self.weights_sha256,
            "confidence": self.confidence,
        }

    def merge(self, other: PromptAgreement) -> None:
        self.check_mergeable(other)
        self.n += other.n
        self.unparsed += other.unparsed
        self.total += other.total
        self.total_sq += other.total_sq
        for name, count in other.asked.items():
            self.asked[name] = self.asked.get(name, 0) + count
            self.shown[name] = self.shown.get(name, 0) + other.shown.get(name, 0)

    def compute(self) -> MetricValue:
        if self.n == 0:
            if self.unparsed:
                raise no_checkable_prompts(self.unparsed, metric=self.metric)
            raise EmptyMetricError(f"{self.metric} needs at least one (sample, prompt) pair")
        mean, lower, upper = student_t_mean(self.n, self.total, self.total_sq, self.confidence)
        if lower is not None:  # a share: the interval stays inside [0, 1]
            lower, upper = max(lower, 0.0), min(upper, 1.0)
        details: dict[str, Any] = {
            "ci": "student-t on per-sample scores",
            "unparsed": self.unparsed,
        }
        for name in sorted(self.asked):
            details[name] = self.shown.get(name, 0) / self.asked[name]
        return MetricValue(
            metric=self.metric,
            value=mean,
            lower=lower,
            upper=upper,
            n=self.n,
            backbone=self.backbone,
            weights_sha256=self.weights_sha256,
            details=details,
        )
