"""The one interface every generator implements, whatever its checkpoint format."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from models_registry.generators.tasks import TASK_NAMES as TASKS  # noqa: F401 (re-export)


class GeneratorConfigError(ValueError):
    """A checkpoint or generator config that cannot be loaded; the message names the bad field
    and what is allowed (shown to the model author as the stage's failure reason)."""


@runtime_checkable
class Generator(Protocol):
    """A loaded text-to-image or text-to-video generator.

    `generate(prompts, seeds, **params)` returns uint8 [N, H, W, 3] images ("text-to-image") or
    uint8 [N, T, H, W, 3] clips ("text-to-video"), one per (prompt, seed). The same prompt, seed
    and params give identical output on the same device. Params: `steps`, `guidance_scale`, and
    format-specific ones (native: `sampler`; diffusers: `scheduler`, `resolution`, `frames`).
    """

    task: str
    resolution: int
    frames: int
    device: str

    def generate(self, prompts: list[str], seeds: list[int], **params) -> np.ndarray: ...
