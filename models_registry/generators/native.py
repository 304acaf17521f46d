"""The native checkpoint format: a directory with `config.json` and `model.safetensors`.

config.json follows the one schema in `native_config` (`parse_native_config`), which the upload
validator uses too: whatever the registry accepts, this module builds and samples. Every error
names the field and what is allowed.

model.safetensors holds float tensors `text_encoder.*` and `denoiser.*` (no pickle anywhere).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from models_registry.generators.measurement import GenerationMeter, GenerationStats
from models_registry.generators.native_config import (  # noqa: F401 (re-exported)
    PARADIGMS,
    NativeConfig,
    apply_overrides,
    parse_native_config,
    parse_sampler,
    validate_native_config,
    validate_sampler,
)
from models_registry.generators.networks import CaptionEncoder, ConditionalUNet
from models_registry.generators.protocol import GeneratorConfigError
from models_registry.generators.samplers import make_scheduler, run_sampler
from models_registry.generators.training import (
    TextConditionedDenoiser,
    to_model_space,
    to_pixels,
)

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


def build_model(config: dict | NativeConfig) -> TextConditionedDenoiser:
    """Randomly initialised caption encoder + U-Net for a config (checked against the schema)."""
    if not isinstance(config, NativeConfig):
        config = parse_native_config(config)
    arch, text = config.architecture, config.architecture.text
    encoder = CaptionEncoder(
        list(text.vocabulary),
        dim=text.dim,
        layers=text.layers,
        heads=text.heads,
        max_tokens=text.max_tokens,
    )
    net = ConditionalUNet(
        channels=arch.channels,
        channel_mult=arch.channel_mult,
        text_dim=text.dim,
        cond_dim=arch.cond_dim,
        heads=arch.heads,
        temporal=arch.temporal,
        patch=arch.patch,
        image_conditioning=arch.image_conditioning,
    )
    return TextConditionedDenoiser(encoder, net)


def save_native(directory: Path, *, model: TextConditionedDenoiser, config: dict) -> None:
    """Write config.json (the canonical form of `config`) + model.safetensors; the config is
    written last (its presence marks a complete checkpoint) and each file is renamed into place,
    so no half-written file remains."""
    from safetensors.torch import save_file

    canonical = validate_native_config(config)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp = directory / f".{WEIGHTS_FILE}.tmp"
    save_file(state, str(tmp), metadata={"format": "pt"})
    os.replace(tmp, directory / WEIGHTS_FILE)
    tmp = directory / f".{CONFIG_FILE}.tmp"
    tmp.write_text(json.dumps(canonical, indent=2, sort_keys=True))
    os.replace(tmp, directory / CONFIG_FILE)


def read_native_config(directory: Path) -> dict:
    """The checked, canonical config.json of a checkpoint directory."""
    path = Path(directory) / CONFIG_FILE
    try:
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise GeneratorConfigError(f"cannot read {CONFIG_FILE}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise GeneratorConfigError(f"{CONFIG_FILE} is not valid JSON: {exc}") from exc
    return validate_native_config(config)


class NativeGenerator:
    """A reference (native-format) generator: caption encoder + U-Net + a sampler with CFG."""

    def __init__(self, config: dict, model: TextConditionedDenoiser, device: str) -> None:
        parsed = parse_native_config(config)
        self.config = parsed.as_dict()
        self.model = model.to(device).eval()
        self.device = device
        self.task = parsed.task
        self.paradigm = parsed.paradigm
        self.resolution = parsed.resolution
        self.frames = parsed.frames
        self.schedule = dict(parsed.schedule)
        self.sampler = parsed.sampler.as_dict()
        self.last_stats: GenerationStats | None = None
        self.sampler_param = "sampler"  # the generate() parameter choosing the sampler

    @property
    def sampler_name(self) -> str:
        """The sampler a call without a `sampler` parameter uses."""
        return self.sampler["name"]

    def _sampler_config(
        self, steps: int | None, guidance_scale: float | None, sampler: str | None
    ) -> dict:
        """The checked sampler config of one call: the version's, with this call's overrides."""
        cfg = dict(self.sampler)
        if sampler is not None and sampler != cfg["name"]:
            cfg = {"name": sampler, "steps": cfg["steps"], "guidance_scale": cfg["guidance_scale"]}
        if steps is not None:
            cfg["steps"] = steps
        if guidance_scale is not None:
            cfg["guidance_scale"] = guidance_scale
        return parse_sampler(
            self.paradigm, cfg, where="generation parameter sampler", schedule=self.schedule
        ).as_dict()

    def nfe_for_steps(
        self, steps: int, *, guidance_scale: float | None = None, sampler: str | None = None
    ) -> int:
        """Network evaluations per sample of `generate(steps=steps, ...)`: the sampler's own
        timesteps after `set_timesteps(steps)` (one network call each), doubled under CFG."""
        cfg = self._sampler_config(steps, guidance_scale, sampler)
        scheduler = make_scheduler(self.paradigm, self.schedule, cfg)
        scheduler.set_timesteps(cfg["steps"])
        return len(scheduler.timesteps) * (1 if float(cfg["guidance_scale"]) == 1.0 else 2)

    @torch.no_grad()
    def generate(
        self,
        prompts: list[str],
        seeds: list[int],
        *,
        steps: int | None = None,
        guidance_scale: float | None = None,
        sampler: str | None = None,
        images: np.ndarray | None = None,
    ) -> np.ndarray:
        """uint8 [N, H, W, 3] images or [N, T, H, W, 3] clips, one per (prompt, seed); the
        call's measured cost is in `last_stats` afterwards. An image-edit model edits `images`
        uint8 [N, H, W, 3] (one source per prompt, resized to its resolution) as told."""
        if len(prompts) != len(seeds):
            raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
        source = self._sources(images, len(prompts))
        cfg = self._sampler_config(steps, guidance_scale, sampler)
        scheduler = make_scheduler(self.paradigm, self.schedule, cfg)
        n, res = len(prompts), self.resolution
        shape = (n, self.frames, 3, res, res) if self.task == "text-to-video" else (n, 3, res, res)
        scale = float(cfg["guidance_scale"])
        with GenerationMeter(self.device, batch_size=n) as meter:
            cond = self.model.encode(prompts, self.device)
            null = self.model.encode([""] * n, self.device)

            def network(x: torch.Tensor, t: float, text: torch.Tensor) -> torch.Tensor:
                meter.count(x.shape[0])
                times = torch.full((x.shape[0],), t, device=self.device)
                if source is None:
                    return self.model(x, times, text)
                return self.model(x, times, text, source=source.repeat(len(x) // n, 1, 1, 1))

            def denoise(x: torch.Tensor, t: float) -> torch.Tensor:
                if scale == 1.0:
                    return network(x, t, cond)
                c, u = network(torch.cat([x, x]), t, torch.cat([cond, null])).chunk(2)
                return u + scale * (c - u)

            generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
            x = run_sampler(denoise, scheduler, shape, generators, cfg["steps"], self.device)
            pixels = to_pixels(x)
        dtype = next(self.model.parameters()).dtype
        self.last_stats = meter.stats(steps=cfg["steps"], dtype=dtype)
        return pixels

    def _sources(self, images: np.ndarray | None, n: int) -> torch.Tensor | None:
        """The source images in model space [N, 3, R, R] (None for text-to-media models)."""
        if self.task != "image-edit":
            if images is not None:
                raise ValueError(f"a {self.task} model takes no images to edit")
            return None
        images = None if images is None else np.asarray(images)
        if images is None or images.ndim != 4 or images.shape[-1] != 3 or len(images) != n:
            got = None if images is None else list(images.shape)
            raise ValueError(f"an image-edit model needs images uint8 [{n}, H, W, 3], got {got}")
        if images.shape[1:3] != (self.resolution, self.resolution):
            from PIL import Image

            side = (self.resolution, self.resolution)
            images = np.stack(
                [np.asarray(Image.fromarray(i).resize(side, Image.BICUBIC)) for i in images]
            )
        return to_model_space(images.astype(np.uint8)).to(self.device)


def load_native(
    directory: Path, device: str = "cpu", overrides: dict | None = None
) -> NativeGenerator:
    """Load a native checkpoint directory onto `device` (safetensors only, strict key match)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    directory = Path(directory)
    config = read_native_config(directory)
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise GeneratorConfigError(f"{WEIGHTS_FILE} is missing next to {CONFIG_FILE}")
    try:
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise GeneratorConfigError(
            f"{WEIGHTS_FILE} is not a readable safetensors file: {exc}"
        ) from exc
    model = build_model(config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in expected if k in state and state[k].shape != expected[k].shape)
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensors (e.g. {missing[:3]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected tensors (e.g. {unexpected[:3]})")
        if wrong:
            k = wrong[0]
            parts.append(
                f"{len(wrong)} tensors with wrong shapes (e.g. {k}: "
                f"{tuple(state[k].shape)} != {tuple(expected[k].shape)})"
            )
        raise GeneratorConfigError(
            f"{WEIGHTS_FILE} does not match config.json architecture: " + "; ".join(parts)
        )
    if not all(v.is_floating_point() for v in state.values()):
        raise GeneratorConfigError(f"{WEIGHTS_FILE} must hold floating-point tensors only")
    model.load_state_dict(state, strict=True)
    if overrides:
        config = apply_overrides(config, overrides)
    return NativeGenerator(config, model, device)
