"""The contract every streaming metric (and the state it keeps) follows, after torchmetrics' Metric.

- `update(batch)` adds samples; memory does not grow with their number (or is bounded).
- `compute()` reads the result without changing the state; on an empty (or too small) state it
  raises `EmptyMetricError` naming the metric and how many samples it needs.
- `reset()` returns to the state of a new instance.
- `merge(other)` adds another instance's state to this one (`other` is left unchanged), so that
  partial states from several workers or shards combine: after `a.update(A); b.update(B);
  a.merge(b)`, `a` holds what `a.update(A); a.update(B)` would (exactly, up to float rounding, for
  every metric except the bounded-sample ones, whose guarantee `FeatureReservoir.merge` states).
  Both sides must be configured alike (same reference, backbone, estimator settings), else
  ValueError.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Self

import numpy as np
import torch


class EmptyMetricError(ValueError):
    """compute() was called before the metric saw enough samples."""


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        a, b = (x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x for x in (a, b))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.shape(a) == np.shape(b) and bool(np.array_equal(a, b))
    return a == b


class StreamingMetric(ABC):
    """Base of every metric and metric state in evaluation.metrics (see the module docstring)."""

    @abstractmethod
    def update(self, *args: Any, **kwargs: Any) -> None: ...

    @abstractmethod
    def compute(self) -> Any: ...

    @abstractmethod
    def reset(self) -> None: ...

    @abstractmethod
    def merge(self, other: Self) -> None: ...

    @abstractmethod
    def merge_key(self) -> dict[str, Any]:
        """The configuration two instances must share to be merged (values may be arrays)."""

    def check_mergeable(self, other: object) -> None:
        """Raise TypeError / ValueError (naming the differing setting) unless `other` can merge."""
        if type(other) is not type(self):
            raise TypeError(
                f"cannot merge {type(other).__name__} into {type(self).__name__}: "
                "only states of the same metric class combine"
            )
        mine, theirs = self.merge_key(), other.merge_key()  # type: ignore[attr-defined]
        for name, value in mine.items():
            if not _same(value, theirs[name]):
                raise ValueError(
                    f"cannot merge {type(self).__name__} states with different {name}: "
                    "both must be built with the same settings and reference"
                )
