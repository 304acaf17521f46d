"""The one interface every generator implements, whatever its checkpoint format."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from models_registry.generators.measurement import GenerationStats  # noqa: F401 (re-export)
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
    An "image-edit" generator also takes `images=` uint8 [N, H, W, 3], the source each prompt
    (an instruction) edits, and returns the edited images.

    After each call `last_stats` holds what it cost (`GenerationStats`: steps, network
    evaluations per sample counted during the call, dtype, device, batch size, peak memory).
    `nfe_for_steps(steps, **params)` says how many network evaluations per sample a call with
    those params will make (the sampler's own timesteps, CFG doubling), without running it.
    `sampler_name` is the default sampler (native) or scheduler class (diffusers); the
    `sampler_param` names the generate() parameter that picks another ("sampler" or
    "scheduler").
    """

    task: str
    resolution: int
    frames: int
    device: str
    last_stats: GenerationStats | None
    sampler_name: str
    sampler_param: str

    def generate(self, prompts: list[str], seeds: list[int], **params) -> np.ndarray: ...

    def nfe_for_steps(self, steps: int, **params) -> int: ...
