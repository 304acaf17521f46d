"""The value every metric returns: score, confidence interval, sample count and backbone identity."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class MetricValue:
    """One metric score. `lower`/`upper` bound the confidence interval (None where not defined)."""

    metric: str
    value: float
    lower: float | None
    upper: float | None
    n: int
    backbone: str
    weights_sha256: str
    details: dict = field(default_factory=dict)

    def as_json(self) -> dict:
        """The public JSON shape (`compute_metric --json`, API)."""
        return {
            "metric": self.metric,
            "value": self.value,
            "lower": self.lower,
            "upper": self.upper,
            "n": self.n,
            "backbone": self.backbone,
            "weights_sha256": self.weights_sha256,
        }
