"""Real checkpoints: diffusers pipeline directories (text-to-image and text-to-video).

Loaded with `DiffusionPipeline.from_pretrained(dir, use_safetensors=True, local_files_only=True)`:
no network access, no pickled weights, no remote code. Components must come from the diffusers
or transformers libraries. Scheduler, steps, guidance scale, resolution and frames come from the
version's generator config (`overrides`: top-level `resolution`, `frames` and
`sampler: {"scheduler": "<diffusers scheduler class>", "steps": int, "guidance_scale": float}`)
and can be changed per `generate` call.

Unconditional pixel-space pipelines (`DDPMPipeline`: a `unet` + `scheduler`, no VAE, no prompt)
load too: they ignore the prompts and the guidance scale, generate one image per seed, and
their resolution is fixed at the UNet's `sample_size`.

Pure at import time (torch and diffusers are imported inside the functions that need them), so
the upload validator can use `pipeline_resolution` and `check_model_index` in the web process.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from models_registry.generators.protocol import GeneratorConfigError

ALLOWED_LIBRARIES = {"diffusers", "transformers"}
DENOISER_FOLDERS = ("unet", "transformer")
# Component configs that decide the output resolution (paths inside the pipeline folder).
RESOLUTION_CONFIGS = tuple(f"{folder}/config.json" for folder in (*DENOISER_FOLDERS, "vae"))


def _listed_components(model_index: Mapping) -> set[str]:
    return {
        name
        for name, value in model_index.items()
        if not name.startswith("_")
        and isinstance(value, list)
        and len(value) == 2
        and value != [None, None]
    }


def pipeline_resolution(model_index: Mapping, configs: Mapping[str, Any]) -> int | None:
    """Output side in pixels of a diffusers pipeline, or None when its configs do not tell.

    `configs`: parsed JSON by path inside the pipeline folder (e.g. "unet/config.json"). The
    denoiser's (`unet` or `transformer`) square `sample_size` times the VAE's downsampling
    factor 2^(len(block_out_channels) - 1) for latent pipelines; pixel-space pipelines without a
    VAE (DDPMPipeline) generate at `sample_size` itself.
    """
    listed = _listed_components(model_index)
    sample_size = None
    for folder in DENOISER_FOLDERS:
        cfg = configs.get(f"{folder}/config.json")
        if folder not in listed or not isinstance(cfg, dict):
            continue
        size = cfg.get("sample_size")
        if isinstance(size, list | tuple) and size and all(s == size[0] for s in size):
            size = size[0]  # [h, w] with h == w
        if isinstance(size, int) and not isinstance(size, bool) and size > 0:
            sample_size = size
            break
    if sample_size is None:
        return None
    if "vae" not in listed:
        return sample_size
    vae = configs.get("vae/config.json")
    blocks = vae.get("block_out_channels") if isinstance(vae, dict) else None
    if not isinstance(blocks, list) or not blocks:
        return None
    return sample_size * 2 ** (len(blocks) - 1)


def _resolution_configs(directory: Path) -> dict[str, Any]:
    configs = {}
    for name in RESOLUTION_CONFIGS:
        path = Path(directory) / name
        if path.is_file():
            try:
                configs[name] = json.loads(path.read_text())
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise GeneratorConfigError(f"{name} is not readable JSON: {exc}") from exc
    return configs


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
    """A diffusers pipeline behind the Generator protocol.

    Text-conditioned pipelines get the prompts, guidance scale and size. Unconditional ones
    (no `prompt` argument, e.g. DDPMPipeline) ignore the prompts and the guidance scale and
    draw one sample per seed; pipelines without `height` / `width` arguments generate at their
    fixed resolution, and asking for another one is a GeneratorConfigError.
    """

    def __init__(self, directory: Path, device: str = "cpu", overrides: dict | None = None) -> None:
        import diffusers

        index = check_model_index(directory)
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
        self.conditional = "prompt" in params
        self.sized = "height" in params and "width" in params
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
        self.native_resolution = pipeline_resolution(index, _resolution_configs(directory))
        resolution = overrides.get("resolution") or self.native_resolution
        if resolution is None:
            raise GeneratorConfigError(
                "cannot tell the pipeline's output resolution from its configs; set "
                "generator_config.resolution on the version"
            )
        self.resolution = self._size(int(resolution))
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

    def _size(self, resolution: int) -> int:
        if not self.sized and resolution != self.native_resolution:
            raise GeneratorConfigError(
                f"resolution: {type(self.pipe).__name__} generates at its fixed "
                f"{self.native_resolution} px (the UNet's sample_size), got {resolution}"
            )
        return resolution

    def _set_scheduler(self, name: str) -> None:
        self.pipe.scheduler = _scheduler_class(name).from_config(self.pipe.scheduler.config)

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
        """uint8 [N, H, W, 3] images or [N, T, H, W, 3] clips, one per (prompt, seed).

        An unconditional pipeline ignores the prompts and `guidance_scale` (sample i depends on
        seeds[i] only)."""
        import torch

        if len(prompts) != len(seeds):
            raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
        if scheduler:
            self._set_scheduler(scheduler)
        size = self._size(resolution or self.resolution)
        kwargs: dict[str, Any] = {
            "num_inference_steps": steps or self.steps,
            # CPU generators: the same seed gives the same initial noise on every device.
            "generator": [torch.Generator().manual_seed(int(s)) for s in seeds],
            "output_type": "np",
        }
        if self.conditional:
            kwargs["prompt"] = list(prompts)
            kwargs["guidance_scale"] = (
                self.guidance_scale if guidance_scale is None else guidance_scale
            )
        else:
            kwargs["batch_size"] = len(seeds)
        if self.sized:
            kwargs["height"] = kwargs["width"] = size
        with torch.no_grad():
            if self.task == "text-to-video":
                kwargs["num_frames"] = frames or self.frames
                out = np.asarray(self.pipe(**kwargs).frames)
            else:
                out = np.asarray(self.pipe(**kwargs).images)
        return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)
