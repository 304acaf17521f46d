"""The native checkpoint format: a directory with `config.json` and `model.safetensors`.

config.json (validated by `validate_native_config`; every error names the field):

    {
      "format": "native",
      "paradigm": "diffusion" | "score" | "flow" | "video",
      "task": "text-to-image" | "text-to-video",   # video <=> text-to-video
      "resolution": 32,                             # pixels, square
      "frames": 1,                                  # 1 for images, 2..64 for video
      "architecture": {"type": "unet", "channels": 48, "channel_mult": [1, 2, 2], "patch": 2,
                       "heads": 4, "cond_dim": 128, "temporal": false,
                       "text": {"vocabulary": [...], "dim": 128, "layers": 1, "heads": 4,
                                "max_tokens": 24}},
      "schedule": {...},   # diffusion: num_train_timesteps, beta_schedule, beta_start, beta_end,
                           #            clip_sample; score: sigma_min, sigma_max; flow/video: {}
      "sampler": {"name": "ddpm|ddim|ve-pc|euler|heun", "steps": 50, "guidance_scale": 3.0,
                  ...options: ddim eta; ve-pc snr, corrector_steps; euler/heun shift},
      "training": {...}    # free-form provenance (steps, seconds, data), not used to load
    }

model.safetensors holds float tensors `text_encoder.*` and `denoiser.*` (no pickle anywhere).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from models_registry.generators.networks import CaptionEncoder, ConditionalUNet
from models_registry.generators.protocol import GeneratorConfigError
from models_registry.generators.samplers import (
    SAMPLER_OPTIONS,
    SAMPLERS,
    SCHEDULE_KEYS,
    make_scheduler,
    run_sampler,
)
from models_registry.generators.training import TextConditionedDenoiser, to_pixels

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
PARADIGMS = ("diffusion", "score", "flow", "video")


def _int(cfg: dict, key: str, where: str, lo: int, hi: int) -> int:
    value = cfg.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise GeneratorConfigError(
            f"{where}{key} must be an integer in [{lo}, {hi}], got {value!r}"
        )
    return value


def _number(cfg: dict, key: str, where: str, lo: float, hi: float) -> float:
    value = cfg.get(key)
    if not isinstance(value, int | float) or isinstance(value, bool) or not lo <= value <= hi:
        raise GeneratorConfigError(f"{where}{key} must be a number in [{lo}, {hi}], got {value!r}")
    return float(value)


def validate_sampler(paradigm: str, sampler: object, where: str = "sampler.") -> dict:
    """Check a sampler config {"name", "steps", "guidance_scale", options...} for a paradigm."""
    if not isinstance(sampler, dict):
        raise GeneratorConfigError(f"{where.rstrip('.')} must be an object")
    name = sampler.get("name")
    if name not in SAMPLERS:
        raise GeneratorConfigError(f"{where}name must be one of {sorted(SAMPLERS)}, got {name!r}")
    if paradigm not in SAMPLERS[name][1]:
        fits = [n for n, (_, ps) in SAMPLERS.items() if paradigm in ps]
        raise GeneratorConfigError(
            f"{where}name {name!r} does not fit paradigm {paradigm!r}; use one of {fits}"
        )
    _int(sampler, "steps", where, 1, 1000)
    _number(sampler, "guidance_scale", where, 0.0, 50.0)
    unknown = set(sampler) - {"name", "steps", "guidance_scale"} - SAMPLER_OPTIONS[name]
    if unknown:
        raise GeneratorConfigError(
            f"{where} has unknown options {sorted(unknown)} for {name!r}; "
            f"allowed: {sorted(SAMPLER_OPTIONS[name])}"
        )
    return sampler


def validate_native_config(config: object) -> dict:
    """Validate a native config.json object; returns it, or raises GeneratorConfigError."""
    if not isinstance(config, dict):
        raise GeneratorConfigError("config.json must contain a JSON object")
    if config.get("format") != "native":
        raise GeneratorConfigError(f"format must be 'native', got {config.get('format')!r}")
    paradigm = config.get("paradigm")
    if paradigm not in PARADIGMS:
        raise GeneratorConfigError(f"paradigm must be one of {list(PARADIGMS)}, got {paradigm!r}")
    task = "text-to-video" if paradigm == "video" else "text-to-image"
    if config.get("task") != task:
        raise GeneratorConfigError(
            f"task must be {task!r} for paradigm {paradigm!r}, got {config.get('task')!r}"
        )
    _int(config, "resolution", "", 8, 512)
    if paradigm == "video":
        _int(config, "frames", "", 2, 64)
    elif config.get("frames", 1) != 1:
        raise GeneratorConfigError(f"frames must be 1 for images, got {config.get('frames')!r}")
    arch = config.get("architecture")
    if not isinstance(arch, dict) or arch.get("type") != "unet":
        raise GeneratorConfigError("architecture.type must be 'unet'")
    where = "architecture."
    channels = _int(arch, "channels", where, 4, 512)
    mult = arch.get("channel_mult")
    if (
        not isinstance(mult, list)
        or not 1 <= len(mult) <= 4
        or not all(isinstance(m, int) and 1 <= m <= 8 for m in mult)
    ):
        raise GeneratorConfigError(
            f"{where}channel_mult must be 1-4 integers in [1, 8], got {mult!r}"
        )
    patch = arch.get("patch")
    if patch not in (1, 2, 4):
        raise GeneratorConfigError(f"{where}patch must be 1, 2 or 4, got {patch!r}")
    heads = _int(arch, "heads", where, 1, 64)
    if (channels * mult[-1]) % heads:
        raise GeneratorConfigError(f"{where}heads={heads} must divide {channels * mult[-1]}")
    _int(arch, "cond_dim", where, 8, 4096)
    if arch.get("temporal") is not (paradigm == "video"):
        raise GeneratorConfigError(f"{where}temporal must be {paradigm == 'video'} for {paradigm}")
    stride = patch * 2 ** (len(mult) - 1)
    if config["resolution"] % stride:
        raise GeneratorConfigError(f"resolution must be a multiple of {stride} for this U-Net")
    text = arch.get("text")
    if not isinstance(text, dict):
        raise GeneratorConfigError(f"{where}text must be an object")
    vocab = text.get("vocabulary")
    if (
        not isinstance(vocab, list)
        or not 1 <= len(vocab) <= 50000
        or not all(isinstance(w, str) for w in vocab)
    ):
        raise GeneratorConfigError(f"{where}text.vocabulary must be a list of 1-50000 words")
    dim = _int(text, "dim", f"{where}text.", 8, 4096)
    _int(text, "layers", f"{where}text.", 1, 24)
    text_heads = _int(text, "heads", f"{where}text.", 1, 64)
    if dim % text_heads:
        raise GeneratorConfigError(f"{where}text.heads={text_heads} must divide dim={dim}")
    _int(text, "max_tokens", f"{where}text.", 2, 512)
    schedule = config.get("schedule", {})
    if not isinstance(schedule, dict) or set(schedule) - SCHEDULE_KEYS[paradigm]:
        raise GeneratorConfigError(
            f"schedule keys for {paradigm} must be among {sorted(SCHEDULE_KEYS[paradigm])}"
        )
    validate_sampler(paradigm, config.get("sampler"))
    return config


def build_model(config: dict) -> TextConditionedDenoiser:
    """Randomly initialised caption encoder + U-Net for a validated config."""
    arch = config["architecture"]
    text = arch["text"]
    encoder = CaptionEncoder(
        text["vocabulary"],
        dim=text["dim"],
        layers=text["layers"],
        heads=text["heads"],
        max_tokens=text["max_tokens"],
    )
    net = ConditionalUNet(
        channels=arch["channels"],
        channel_mult=tuple(arch["channel_mult"]),
        text_dim=text["dim"],
        cond_dim=arch["cond_dim"],
        heads=arch["heads"],
        temporal=arch["temporal"],
        patch=arch["patch"],
    )
    return TextConditionedDenoiser(encoder, net)


def save_native(directory: Path, *, model: TextConditionedDenoiser, config: dict) -> None:
    """Write config.json + model.safetensors; the config is written last (its presence marks a
    complete checkpoint) and each file is renamed into place, so no half-written file remains."""
    from safetensors.torch import save_file

    validate_native_config(config)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp = directory / f".{WEIGHTS_FILE}.tmp"
    save_file(state, str(tmp), metadata={"format": "pt"})
    os.replace(tmp, directory / WEIGHTS_FILE)
    tmp = directory / f".{CONFIG_FILE}.tmp"
    tmp.write_text(json.dumps(config, indent=2, sort_keys=True))
    os.replace(tmp, directory / CONFIG_FILE)


def read_native_config(directory: Path) -> dict:
    path = Path(directory) / CONFIG_FILE
    try:
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise GeneratorConfigError(f"cannot read {CONFIG_FILE}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise GeneratorConfigError(f"{CONFIG_FILE} is not valid JSON: {exc}") from exc
    return validate_native_config(config)


def apply_overrides(config: dict, overrides: dict) -> dict:
    """A version's generator config over config.json: `resolution`, `frames` and `sampler`
    ({"name", "steps", "guidance_scale", options}; a different name starts from that sampler's
    defaults). Top-level `steps` / `guidance_scale` are accepted as shorthands."""
    merged = dict(config)
    for key in ("resolution", "frames"):
        if overrides.get(key) is not None:
            merged[key] = overrides[key]
    sampler = dict(config["sampler"])
    wanted = overrides.get("sampler")
    if isinstance(wanted, str):
        wanted = {"name": wanted}
    if isinstance(wanted, dict) and wanted:
        if wanted.get("name", sampler["name"]) != sampler["name"]:
            sampler = {"steps": sampler["steps"], "guidance_scale": sampler["guidance_scale"]}
        sampler.update(wanted)
    elif wanted is not None and not isinstance(wanted, dict):
        raise GeneratorConfigError(f"generator config sampler must be an object, got {wanted!r}")
    for key in ("steps", "guidance_scale"):
        if overrides.get(key) is not None:
            sampler[key] = overrides[key]
    merged["sampler"] = sampler
    try:
        return validate_native_config(merged)
    except GeneratorConfigError as exc:
        raise GeneratorConfigError(f"version generator config: {exc}") from exc


class NativeGenerator:
    """A reference (native-format) generator: caption encoder + U-Net + a sampler with CFG."""

    def __init__(self, config: dict, model: TextConditionedDenoiser, device: str) -> None:
        self.config = config
        self.model = model.to(device).eval()
        self.device = device
        self.task = config["task"]
        self.paradigm = config["paradigm"]
        self.resolution = config["resolution"]
        self.frames = config.get("frames", 1)
        self.sampler = dict(config["sampler"])

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
        cfg["steps"] = cfg["steps"] if steps is None else steps
        cfg["guidance_scale"] = cfg["guidance_scale"] if guidance_scale is None else guidance_scale
        validate_sampler(self.paradigm, cfg, where="generation parameter ")
        scheduler = make_scheduler(self.paradigm, self.config.get("schedule", {}), cfg)
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
