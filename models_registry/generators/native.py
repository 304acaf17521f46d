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
from models_registry.generators.training import TextConditionedDenoiser, to_pixels

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

    @torch.no_grad()
    def generate(
        self,
        prompts: list[str],
        seeds: list[int],
        *,
        steps: int | None = None,
        guidance_scale: float | None = None,
        sampler: str | None = None,
    ) -> np.ndarray:
        """uint8 [N, H, W, 3] images or [N, T, H, W, 3] clips, one per (prompt, seed)."""
        if len(prompts) != len(seeds):
            raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
        cfg = dict(self.sampler)
        if sampler is not None and sampler != cfg["name"]:
            cfg = {"name": sampler, "steps": cfg["steps"], "guidance_scale": cfg["guidance_scale"]}
        if steps is not None:
            cfg["steps"] = steps
        if guidance_scale is not None:
            cfg["guidance_scale"] = guidance_scale
        cfg = parse_sampler(
            self.paradigm, cfg, where="generation parameter sampler", schedule=self.schedule
        ).as_dict()
        scheduler = make_scheduler(self.paradigm, self.schedule, cfg)
        n, res = len(prompts), self.resolution
        shape = (n, self.frames, 3, res, res) if self.task == "text-to-video" else (n, 3, res, res)
        cond = self.model.encode(prompts, self.device)
        null = self.model.encode([""] * n, self.device)
        scale = float(cfg["guidance_scale"])

        def denoise(x: torch.Tensor, t: float) -> torch.Tensor:
            if scale == 1.0:
                return self.model(x, torch.full((n,), t, device=self.device), cond)
            both = self.model(
                torch.cat([x, x]),
                torch.full((2 * n,), t, device=self.device),
                torch.cat([cond, null]),
            )
            c, u = both.chunk(2)
            return u + scale * (c - u)

        generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
        x = run_sampler(denoise, scheduler, shape, generators, cfg["steps"], self.device)
        return to_pixels(x)


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
