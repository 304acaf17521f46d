"""Real checkpoints: diffusers pipeline directories (text-to-image and text-to-video).

Loaded with `DiffusionPipeline.from_pretrained(dir, use_safetensors=True, local_files_only=True)`:
no network access, no pickled weights, no remote code. Components must come from the diffusers
or transformers libraries. Scheduler, steps, guidance scale, resolution and frames come from the
version's generator config (`overrides`: top-level `resolution`, `frames` and
`sampler: {"scheduler": "<diffusers scheduler class>", "steps": int, "guidance_scale": float}`)
and can be changed per `generate` call.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import numpy as np
import torch

from models_registry.generators.protocol import GeneratorConfigError

ALLOWED_LIBRARIES = {"diffusers", "transformers"}


def check_model_index(directory: Path) -> dict:
    """Read model_index.json and refuse components from other libraries or custom code."""
    path = Path(directory) / "model_index.json"
    try:
        index = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise GeneratorConfigError(f"model_index.json is not valid JSON: {exc}") from exc
    if not isinstance(index, dict) or not isinstance(index.get("_class_name"), str):
        raise GeneratorConfigError("model_index.json must name a diffusers pipeline in _class_name")
    for name, value in index.items():
        if name.startswith("_"):
            continue
        if not isinstance(value, list) or value == [None, None]:
            continue  # a plain config value (e.g. requires_safety_checker) or an absent component
        if not (len(value) == 2 and value[0] in ALLOWED_LIBRARIES):
            raise GeneratorConfigError(
                f"model_index.json component {name!r} must come from "
                f"{sorted(ALLOWED_LIBRARIES)}, got {value!r}"
            )
    if any(Path(directory).glob("*.py")):
        raise GeneratorConfigError("diffusers checkpoints must not contain Python files")
    return index


def _scheduler_class(name: str):
    import diffusers

    cls = getattr(diffusers, name, None) if name.endswith("Scheduler") else None
    if cls is None or not inspect.isclass(cls):
        raise GeneratorConfigError(
            f"scheduler must be a diffusers scheduler class name (e.g. 'DDIMScheduler', "
            f"'EulerDiscreteScheduler'), got {name!r}"
        )
    return cls


class DiffusersGenerator:
    """A diffusers pipeline behind the Generator protocol."""

    def __init__(self, directory: Path, device: str = "cpu", overrides: dict | None = None) -> None:
        import diffusers

        check_model_index(directory)
        try:
            pipe = diffusers.DiffusionPipeline.from_pretrained(
                str(directory),
                use_safetensors=True,
                local_files_only=True,
                trust_remote_code=False,
            )
        except (OSError, ValueError, TypeError, AttributeError, KeyError) as exc:
            raise GeneratorConfigError(f"cannot load diffusers pipeline: {exc}") from exc
        pipe.set_progress_bar_config(disable=True)
        self.pipe = pipe.to(device)
        self.device = device
        params = inspect.signature(pipe.__call__).parameters
        self.task = "text-to-video" if "num_frames" in params else "text-to-image"
        overrides = dict(overrides or {})
        # The registry records {"sampler": {"scheduler", "steps", "guidance_scale"}, ...}.
        sampler = overrides.get("sampler") or {}
        if not isinstance(sampler, dict):
            raise GeneratorConfigError(
                f"generator config sampler must be an object, got {sampler!r}"
            )
        unknown = set(sampler) - {"scheduler", "steps", "guidance_scale"}
        if unknown:
            raise GeneratorConfigError(
                f"generator config sampler has unknown keys {sorted(unknown)}; "
                "allowed: scheduler, steps, guidance_scale"
            )
        overrides = {**overrides, **sampler}
        if overrides.get("scheduler"):
            self._set_scheduler(overrides["scheduler"])
        default_size = self._default_resolution()
        self.resolution = int(overrides.get("resolution") or default_size)
        self.frames = int(overrides.get("frames") or (16 if self.task == "text-to-video" else 1))
        self.steps = int(overrides.get("steps") or 25)
        guidance = overrides.get("guidance_scale")
        self.guidance_scale = 5.0 if guidance is None else float(guidance)
        for key, value in (
            ("resolution", self.resolution),
            ("frames", self.frames),
            ("steps", self.steps),
        ):
            if value < 1:
                raise GeneratorConfigError(f"{key} must be a positive integer, got {value}")

    def _default_resolution(self) -> int:
        unet = getattr(self.pipe, "unet", None) or getattr(self.pipe, "transformer", None)
        sample_size = getattr(getattr(unet, "config", None), "sample_size", None) or 64
        if isinstance(sample_size, list | tuple):
            sample_size = sample_size[0]
        return int(sample_size) * int(getattr(self.pipe, "vae_scale_factor", 8))

    def _set_scheduler(self, name: str) -> None:
        self.pipe.scheduler = _scheduler_class(name).from_config(self.pipe.scheduler.config)

    @torch.no_grad()
    def generate(
        self,
        prompts: list[str],
        seeds: list[int],
        *,
        steps: int | None = None,
        guidance_scale: float | None = None,
        resolution: int | None = None,
        frames: int | None = None,
        scheduler: str | None = None,
    ) -> np.ndarray:
        """uint8 [N, H, W, 3] images or [N, T, H, W, 3] clips, one per (prompt, seed)."""
        if len(prompts) != len(seeds):
            raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
        if scheduler:
            self._set_scheduler(scheduler)
        size = resolution or self.resolution
        kwargs = {
            "prompt": list(prompts),
            "num_inference_steps": steps or self.steps,
            "guidance_scale": self.guidance_scale if guidance_scale is None else guidance_scale,
            "height": size,
            "width": size,
            # CPU generators: the same seed gives the same initial latents on every device.
            "generator": [torch.Generator().manual_seed(int(s)) for s in seeds],
            "output_type": "np",
        }
        if self.task == "text-to-video":
            kwargs["num_frames"] = frames or self.frames
            out = np.asarray(self.pipe(**kwargs).frames)
        else:
            out = np.asarray(self.pipe(**kwargs).images)
        return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)
