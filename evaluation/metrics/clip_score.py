"""CLIP score: 100 * max(cos(image embedding, text embedding), 0), averaged over pairs.

This is the per-pair formula of Hessel et al. (2021) and torchmetrics' documentation
(torchmetrics' code clamps the mean instead of each pair; the two agree whenever no pair has a
negative cosine, which is the case for real CLIP models). The interval is the analytic
Student-t interval of a mean of independent per-pair scores.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from scipy import stats as scipy_stats

from evaluation.metrics.contract import EmptyMetricError, StreamingMetric
from evaluation.metrics.result import MetricValue


def clip_pair_scores(image_embeddings: torch.Tensor, text_embeddings: torch.Tensor) -> torch.Tensor:
    """Per-pair scores [B] in [0, 100] from embeddings [B, E] (normalised here)."""
    if image_embeddings.shape != text_embeddings.shape or image_embeddings.ndim != 2:
        raise ValueError(
            f"image and text embeddings must both be [B, E], got {list(image_embeddings.shape)}"
            f" and {list(text_embeddings.shape)}"
        )
    img = torch.nn.functional.normalize(image_embeddings.to(torch.float64), dim=-1)
    txt = torch.nn.functional.normalize(text_embeddings.to(torch.float64), dim=-1)
    return 100.0 * (img * txt).sum(dim=-1).clamp_min(0.0)


def student_t_mean(
    n: int, total: float, total_sq: float, confidence: float
) -> tuple[float, float | None, float | None]:
    """(mean, lower, upper) of n scores from their sum and sum of squares: the Student-t
    interval of the mean (no interval for a single score). Shared by every per-sample mean."""
    mean = total / n
    if n < 2:
        return mean, None, None
    var = max(total_sq - n * mean * mean, 0.0) / (n - 1)
    half = float(scipy_stats.t.ppf(0.5 + confidence / 2, n - 1)) * math.sqrt(var / n)
    return mean, mean - half, mean + half


class ScoreMean(StreamingMetric):
    """Streaming mean of per-item scores with the Student-t interval (constant memory; merge adds
    the sums exactly). Subclasses say what an item is (`what`, `needs`) and how a batch becomes
    scores (`update`)."""

    what = "per-item scores"  # the interval's note in `details`
    needs = "at least one item"  # what compute() on an empty state says is missing

    def __init__(
        self, *, metric: str, backbone: str, weights_sha256: str, confidence: float = 0.95
    ) -> None:
        self.metric, self.backbone, self.weights_sha256 = metric, backbone, weights_sha256
        self.confidence = confidence
        self.reset()

    def reset(self) -> None:
        self.n = 0
        self.total = 0.0
        self.total_sq = 0.0

    def update_scores(self, scores: torch.Tensor | np.ndarray) -> None:
        """Add already computed per-item scores [B]."""
        s = torch.as_tensor(scores, dtype=torch.float64).reshape(-1)
        self.n += int(s.shape[0])
        self.total += float(s.sum())
        self.total_sq += float((s * s).sum())

    def merge_key(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "backbone": self.backbone,
            "weights_sha256": self.weights_sha256,
            "confidence": self.confidence,
        }

    def merge(self, other: ScoreMean) -> None:
        self.check_mergeable(other)
        self.n += other.n
        self.total += other.total
        self.total_sq += other.total_sq

    def details(self) -> dict[str, Any]:
        return {"ci": f"student-t on {self.what}"}

    def compute(self) -> MetricValue:
        if self.n == 0:
            raise EmptyMetricError(f"{self.metric} needs {self.needs}")
        mean, lower, upper = student_t_mean(self.n, self.total, self.total_sq, self.confidence)
        return MetricValue(
            metric=self.metric,
            value=mean,
            lower=lower,
            upper=upper,
            n=self.n,
            backbone=self.backbone,
            weights_sha256=self.weights_sha256,
            details=self.details(),
        )


class CLIPScore(ScoreMean):
    """Streaming mean of per-pair CLIP scores."""

    what = "per-pair scores"
    needs = "at least one (image, prompt) pair"

    def __init__(
        self,
        *,
        backbone: str,
        weights_sha256: str,
        metric: str = "clip_score",
        confidence: float = 0.95,
    ) -> None:
        super().__init__(
            metric=metric, backbone=backbone, weights_sha256=weights_sha256, confidence=confidence
        )

    def update(self, image_embeddings: torch.Tensor, text_embeddings: torch.Tensor) -> None:
        """Add pairs: image and text embeddings [B, E] (row i of each belong together)."""
        self.update_scores(clip_pair_scores(image_embeddings, text_embeddings))
