"""The native config.json schema, defined once: the upload validator and the loader both use it.

Pure (no torch, no Django): the web process validates uploads with it and the loader builds the
networks and samplers from what it returns, so a config that passes validation is one the loader
can build and sample. Every error is a `GeneratorConfigError` naming the field and what is
allowed.

    {
      "format": "native",
      "paradigm": "diffusion" | "score" | "flow" | "video",
      "task": "text-to-image" | "text-to-video" | "image-edit",  # video <=> text-to-video;
                                                    # image-edit: image paradigms, the U-Net
                                                    # also reads the source image
      "resolution": 32,                             # pixels, square, 8..512, multiple of the stride
      "frames": 1,                                  # 1 for images (default), 2..64 for video
      "architecture": {"type": "unet", "channels": 48, "channel_mult": [1, 2, 2], "patch": 2,
                       "heads": 4, "cond_dim": 128, "temporal": false,
                       "image_conditioning": false,  # true <=> image-edit (source channels)
                       "text": {"vocabulary": [...], "dim": 128, "layers": 1, "heads": 4,
                                "max_tokens": 24}},
      "schedule": {...},   # optional; diffusion: num_train_timesteps, beta_schedule, beta_start,
                           # beta_end, clip_sample; score: sigma_min, sigma_max; flow/video: {}
      "sampler": {"name": "ddpm|ddim|ve-pc|euler|heun", "steps": 50, "guidance_scale": 3.0,
                  ...options: ddim eta; ve-pc snr, corrector_steps; euler/heun shift},
                           # optional; defaults to the paradigm's first sampler, 50 steps, CFG 3
      "training": {...}    # free-form provenance (also name, description, metadata); not loaded
    }

Schedule keys and sampler options left out take the sampler classes' defaults (samplers.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from models_registry.generators.protocol import GeneratorConfigError
from models_registry.generators.tasks import TASK_NAMES

PARADIGMS = ("diffusion", "score", "flow", "video")
# Square side in pixels that the reference U-Net builds and samples at.
RESOLUTION_RANGE = (8, 512)
# Frames of a video clip: the temporal layers need at least 2; 64 bounds a clip's memory.
VIDEO_FRAMES_RANGE = (2, 64)
STEPS_RANGE = (1, 1000)
GUIDANCE_RANGE = (0.0, 50.0)
# Spatial self-attention runs over the lowest level's H·W tokens at O(tokens²) per step; beyond
# 128×128 one sampling step takes minutes.
MAX_ATTENTION_TOKENS = 128 * 128
REQUIRED_KEYS = {"format", "paradigm", "task", "resolution", "architecture"}
OPTIONAL_KEYS = {"frames", "schedule", "sampler", "training", "name", "description", "metadata"}
# Provenance keys: carried through unchanged, never used to load.
EXTRA_KEYS = ("training", "name", "description", "metadata")

# Samplers and the paradigms whose network output each one understands (classes: samplers.py).
SAMPLER_PARADIGMS: dict[str, tuple[str, ...]] = {
    "ddpm": ("diffusion",),
    "ddim": ("diffusion",),
    "ve-pc": ("score",),
    "ve-heun": ("score",),
    "euler": ("flow", "video"),
    "heun": ("flow", "video"),
}
DEFAULT_SAMPLER = {"diffusion": "ddim", "score": "ve-pc", "flow": "euler", "video": "euler"}
DEFAULT_STEPS = 50
DEFAULT_GUIDANCE_SCALE = 3.0


@dataclass(frozen=True)
class Number:
    """A JSON number (or integer, with `integer=True`) in [lo, hi]."""

    lo: float
    hi: float
    integer: bool = False


@dataclass(frozen=True)
class Choice:
    """One of a fixed set of JSON values."""

    values: tuple[Any, ...]


# Options a sampler config may set per sampler (besides name, steps and guidance_scale).
SAMPLER_OPTION_SPECS: dict[str, dict[str, Number | Choice]] = {
    "ddpm": {},
    "ddim": {"eta": Number(0.0, 1.0)},
    "ve-pc": {"snr": Number(0.0, 1.0), "corrector_steps": Number(0, 10, integer=True)},
    "ve-heun": {"rho": Number(1.0, 20.0)},
    "euler": {"shift": Number(0.1, 10.0)},
    "heun": {"shift": Number(0.1, 10.0)},
}
# Training-schedule keys each paradigm stores in config["schedule"].
SCHEDULE_SPECS: dict[str, dict[str, Number | Choice]] = {
    "diffusion": {
        "num_train_timesteps": Number(1, 10000, integer=True),
        "beta_schedule": Choice(("linear", "cosine")),
        # beta > 0, or the first step divides by 1 - alpha_bar = 0.
        "beta_start": Number(1e-6, 0.999),
        "beta_end": Number(1e-6, 0.999),
        "clip_sample": Choice((True, False)),
    },
    "score": {"sigma_min": Number(1e-4, 1000.0), "sigma_max": Number(1e-4, 1000.0)},
    "flow": {},
    "video": {},
}
# The DDPM/DDIM schedulers' num_train_timesteps and linear betas when the schedule leaves them
# out (samplers.py).
DEFAULT_TRAIN_TIMESTEPS = 1000
DEFAULT_BETAS = (1e-4, 0.02)
MIN_ALPHA_BAR = 1e-20
SAMPLER_OPTIONS: dict[str, set[str]] = {n: set(s) for n, s in SAMPLER_OPTION_SPECS.items()}
SCHEDULE_KEYS: dict[str, set[str]] = {p: set(s) for p, s in SCHEDULE_SPECS.items()}


def task_of(paradigm: str) -> str:
    """The task a paradigm's networks generate for by default."""
    return "text-to-video" if paradigm == "video" else "text-to-image"


# Tasks each paradigm's networks can serve: image paradigms also edit (the U-Net reads the source
# image concatenated to its input channels, as InstructPix2Pix does).
PARADIGM_TASKS: dict[str, tuple[str, ...]] = {
    "diffusion": ("text-to-image", "image-edit"),
    "score": ("text-to-image", "image-edit"),
    "flow": ("text-to-image", "image-edit"),
    "video": ("text-to-video",),
}


@dataclass(frozen=True)
class TextEncoderConfig:
    vocabulary: tuple[str, ...]
    dim: int
    layers: int
    heads: int
    max_tokens: int


@dataclass(frozen=True)
class UNetConfig:
    channels: int
    channel_mult: tuple[int, ...]
    patch: int
    heads: int
    cond_dim: int
    temporal: bool
    text: TextEncoderConfig
    image_conditioning: bool = False  # the source image's channels join the input (image-edit)

    @property
    def stride(self) -> int:
        """Pixels per lowest-level cell: the patch times one halving per extra level."""
        return self.patch * 2 ** (len(self.channel_mult) - 1)

    def as_dict(self) -> dict:
        out = {
            "type": "unet",
            "channels": self.channels,
            "channel_mult": list(self.channel_mult),
            "patch": self.patch,
            "heads": self.heads,
            "cond_dim": self.cond_dim,
            "temporal": self.temporal,
            "text": {
                "vocabulary": list(self.text.vocabulary),
                "dim": self.text.dim,
                "layers": self.text.layers,
                "heads": self.text.heads,
                "max_tokens": self.text.max_tokens,
            },
        }
        if self.image_conditioning:  # only editors carry the key
            out["image_conditioning"] = True
        return out


@dataclass(frozen=True)
class SamplerConfig:
    name: str
    steps: int
    guidance_scale: float
    options: dict[str, Any] = field(default_factory=dict)  # only those the config sets

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "steps": self.steps,
            "guidance_scale": self.guidance_scale,
            **self.options,
        }


@dataclass(frozen=True)
class NativeConfig:
    """A validated native config.json with its defaults filled in."""

    paradigm: str
    task: str
    resolution: int
    frames: int
    architecture: UNetConfig
    schedule: dict[str, Any]
    sampler: SamplerConfig
    extra: dict[str, Any] = field(default_factory=dict)  # training / name / description / metadata

    def as_dict(self) -> dict:
        """The canonical JSON object (what config.json and a version's generator config hold)."""
        return {
            "format": "native",
            "paradigm": self.paradigm,
            "task": self.task,
            "resolution": self.resolution,
            "frames": self.frames,
            "architecture": self.architecture.as_dict(),
            "schedule": dict(self.schedule),
            "sampler": self.sampler.as_dict(),
            **self.extra,
        }


# --- field checks -------------------------------------------------------------------------------


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _int(cfg: Mapping, key: str, where: str, lo: int, hi: int) -> int:
    value = cfg.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise GeneratorConfigError(
            f"{where}{key} must be an integer in [{lo}, {hi}], got {value!r}"
        )
    return value


def _number(cfg: Mapping, key: str, where: str, lo: float, hi: float) -> float:
    value = cfg.get(key)
    if not _is_number(value) or not lo <= value <= hi:
        raise GeneratorConfigError(f"{where}{key} must be a number in [{lo}, {hi}], got {value!r}")
    return float(value)


def _object(value: object, where: str) -> Mapping:
    if not isinstance(value, dict):
        raise GeneratorConfigError(f"{where} must be a JSON object, got {value!r}")
    return value


def _checked(cfg: Mapping, specs: Mapping[str, Number | Choice], where: str, what: str) -> dict:
    """The keys of `cfg` checked against `specs` (unknown keys are an error naming the allowed)."""
    unknown = sorted(set(cfg) - set(specs))
    if unknown:
        raise GeneratorConfigError(
            f"{where} has unknown {what} {unknown}; allowed: {sorted(specs)}"
        )
    out: dict[str, Any] = {}
    for key, spec in specs.items():
        if key not in cfg:
            continue
        if isinstance(spec, Choice):
            if cfg[key] not in spec.values or type(cfg[key]) not in {type(v) for v in spec.values}:
                raise GeneratorConfigError(
                    f"{where}.{key} must be one of {list(spec.values)}, got {cfg[key]!r}"
                )
            out[key] = cfg[key]
        elif spec.integer:
            out[key] = _int(cfg, key, f"{where}.", int(spec.lo), int(spec.hi))
        else:
            out[key] = _number(cfg, key, f"{where}.", spec.lo, spec.hi)
    return out


# --- the schema ---------------------------------------------------------------------------------


def parse_sampler(
    paradigm: str,
    sampler: object,
    *,
    where: str = "sampler",
    schedule: Mapping[str, Any] | None = None,
) -> SamplerConfig:
    """Check a sampler config {"name", "steps", "guidance_scale", options...} for a paradigm.

    `name`, `steps` and `guidance_scale` default to the paradigm's default sampler, 50 and 3.0;
    for diffusion, `steps` may not exceed the schedule's num_train_timesteps.
    """
    sampler = _object(sampler, where)
    name = sampler.get("name", DEFAULT_SAMPLER[paradigm])
    if name not in SAMPLER_PARADIGMS:
        raise GeneratorConfigError(
            f"{where}.name must be one of {sorted(SAMPLER_PARADIGMS)}, got {name!r}"
        )
    if paradigm not in SAMPLER_PARADIGMS[name]:
        fits = [n for n, ps in SAMPLER_PARADIGMS.items() if paradigm in ps]
        raise GeneratorConfigError(
            f"{where}.name {name!r} does not fit paradigm {paradigm!r}; use one of {fits}"
        )
    values = {"steps": DEFAULT_STEPS, "guidance_scale": DEFAULT_GUIDANCE_SCALE, **sampler}
    steps = _int(values, "steps", f"{where}.", *STEPS_RANGE)
    guidance = _number(values, "guidance_scale", f"{where}.", *GUIDANCE_RANGE)
    rest = {k: v for k, v in sampler.items() if k not in ("name", "steps", "guidance_scale")}
    options = _checked(rest, SAMPLER_OPTION_SPECS[name], where, f"options for {name!r}")
    if paradigm == "diffusion":
        train_steps = (schedule or {}).get("num_train_timesteps", DEFAULT_TRAIN_TIMESTEPS)
        if steps > train_steps:
            raise GeneratorConfigError(
                f"{where}.steps must be at most schedule.num_train_timesteps={train_steps}, "
                f"got {steps}"
            )
    return SamplerConfig(name=name, steps=steps, guidance_scale=guidance, options=options)


def _parse_schedule(paradigm: str, schedule: object) -> dict[str, Any]:
    schedule = _object(schedule, "schedule")
    unknown = sorted(set(schedule) - SCHEDULE_KEYS[paradigm])
    if unknown:
        raise GeneratorConfigError(
            f"schedule keys for {paradigm} must be among {sorted(SCHEDULE_KEYS[paradigm])}, "
            f"got unknown {unknown}"
        )
    out = _checked(schedule, SCHEDULE_SPECS[paradigm], "schedule", "keys")
    if out.get("beta_start", 0.0) > out.get("beta_end", 1.0):
        raise GeneratorConfigError(
            f"schedule.beta_start={out['beta_start']} must not exceed beta_end={out['beta_end']}"
        )
    if paradigm == "diffusion" and out.get("beta_schedule", "linear") == "linear":
        # alpha_bar at the last timestep; near 0, the ε-to-x0 division overflows float32.
        steps = out.get("num_train_timesteps", DEFAULT_TRAIN_TIMESTEPS)
        start, end = out.get("beta_start", DEFAULT_BETAS[0]), out.get("beta_end", DEFAULT_BETAS[1])
        log_abar = math.fsum(
            math.log1p(-(start + (end - start) * i / max(steps - 1, 1))) for i in range(steps)
        )
        if log_abar < math.log(MIN_ALPHA_BAR):
            raise GeneratorConfigError(
                f"schedule: linear betas {start}..{end} over {steps} timesteps leave alpha_bar = "
                f"{math.exp(log_abar):.3g} at the last step (at least {MIN_ALPHA_BAR:g}); lower "
                "beta_end or num_train_timesteps"
            )
    if out.get("sigma_min", 0.0) >= out.get("sigma_max", float("inf")):
        raise GeneratorConfigError(
            f"schedule.sigma_min={out['sigma_min']} must be below sigma_max={out['sigma_max']}"
        )
    return out


def _parse_text(text: object) -> TextEncoderConfig:
    where = "architecture.text."
    text = _object(text, where.rstrip("."))
    vocab = text.get("vocabulary")
    if (
        not isinstance(vocab, list)
        or not 1 <= len(vocab) <= 50000
        or not all(isinstance(w, str) for w in vocab)
    ):
        raise GeneratorConfigError(f"{where}vocabulary must be a list of 1-50000 words")
    dim = _int(text, "dim", where, 8, 4096)
    layers = _int(text, "layers", where, 1, 24)
    heads = _int(text, "heads", where, 1, 64)
    if dim % heads:
        raise GeneratorConfigError(f"{where}heads={heads} must divide dim={dim}")
    max_tokens = _int(text, "max_tokens", where, 2, 512)
    return TextEncoderConfig(tuple(vocab), dim, layers, heads, max_tokens)


def _parse_architecture(paradigm: str, arch: object, task: str) -> UNetConfig:
    where = "architecture."
    if not isinstance(arch, dict) or arch.get("type") != "unet":
        raise GeneratorConfigError("architecture.type must be 'unet'")
    channels = _int(arch, "channels", where, 4, 512)
    mult = arch.get("channel_mult")
    if (
        not isinstance(mult, list)
        or not 1 <= len(mult) <= 4
        or not all(isinstance(m, int) and not isinstance(m, bool) and 1 <= m <= 8 for m in mult)
    ):
        raise GeneratorConfigError(
            f"{where}channel_mult must be 1-4 integers in [1, 8], got {mult!r}"
        )
    patch = arch.get("patch")
    if not isinstance(patch, int) or isinstance(patch, bool) or patch not in (1, 2, 4):
        raise GeneratorConfigError(f"{where}patch must be 1, 2 or 4, got {patch!r}")
    heads = _int(arch, "heads", where, 1, 64)
    if (channels * mult[-1]) % heads:
        raise GeneratorConfigError(f"{where}heads={heads} must divide {channels * mult[-1]}")
    cond_dim = _int(arch, "cond_dim", where, 8, 4096)
    if cond_dim % 2:  # the sinusoidal timestep embedding has cos and sin halves
        raise GeneratorConfigError(f"{where}cond_dim must be even, got {cond_dim}")
    temporal = paradigm == "video"
    if arch.get("temporal") is not temporal:
        raise GeneratorConfigError(f"{where}temporal must be {temporal} for {paradigm}")
    unknown = sorted(set(arch) - {"type", *UNetConfig.__dataclass_fields__})
    if unknown:
        raise GeneratorConfigError(f"architecture has unknown keys {unknown}")
    image_conditioning = task == "image-edit"
    if arch.get("image_conditioning", False) is not image_conditioning:
        raise GeneratorConfigError(
            f"{where}image_conditioning must be {str(image_conditioning).lower()} for task {task}"
        )
    return UNetConfig(
        channels=channels,
        channel_mult=tuple(mult),
        patch=patch,
        heads=heads,
        cond_dim=cond_dim,
        temporal=temporal,
        text=_parse_text(arch.get("text")),
        image_conditioning=image_conditioning,
    )


def parse_native_config(config: object) -> NativeConfig:
    """Validate a native config.json object and fill in its defaults.

    Raises GeneratorConfigError naming the first bad field and what is allowed.
    """
    if not isinstance(config, dict):
        raise GeneratorConfigError("config.json must contain a JSON object")
    missing = sorted(REQUIRED_KEYS - set(config))
    if missing:
        raise GeneratorConfigError(f"missing required keys: {', '.join(missing)}")
    unknown = sorted(set(config) - REQUIRED_KEYS - OPTIONAL_KEYS)
    if unknown:
        raise GeneratorConfigError(
            f"unknown keys {unknown}; put model hyper-parameters inside 'architecture' and "
            "sampling settings inside 'sampler'"
        )
    if config["format"] != "native":
        raise GeneratorConfigError(f"format must be 'native', got {config['format']!r}")
    paradigm = config["paradigm"]
    if paradigm not in PARADIGMS:
        raise GeneratorConfigError(f"paradigm must be one of {list(PARADIGMS)}, got {paradigm!r}")
    if config["task"] not in TASK_NAMES:
        raise GeneratorConfigError(
            f"task must be one of {list(TASK_NAMES)}, got {config['task']!r}"
        )
    if config["task"] not in PARADIGM_TASKS[paradigm]:
        allowed = " or ".join(repr(t) for t in PARADIGM_TASKS[paradigm])
        raise GeneratorConfigError(
            f"task must be {allowed} for paradigm {paradigm!r}, got {config['task']!r}"
        )
    resolution = _int(config, "resolution", "", *RESOLUTION_RANGE)
    if paradigm == "video":
        frames = _int(config, "frames", "", *VIDEO_FRAMES_RANGE)
    else:
        frames = config.get("frames", 1)
        if not isinstance(frames, int) or isinstance(frames, bool) or frames != 1:
            raise GeneratorConfigError(f"frames must be 1 for images, got {frames!r}")
    arch = _parse_architecture(paradigm, config["architecture"], config["task"])
    if resolution % arch.stride:
        raise GeneratorConfigError(
            f"resolution must be a multiple of {arch.stride} for this U-Net "
            f"(patch × 2^(levels-1)), got {resolution}"
        )
    tokens = (resolution // arch.stride) ** 2
    if tokens > MAX_ATTENTION_TOKENS:
        raise GeneratorConfigError(
            f"resolution {resolution} leaves {tokens} attention tokens at the U-Net's lowest "
            f"level (at most {MAX_ATTENTION_TOKENS}); use a larger patch or more channel_mult "
            "levels"
        )
    schedule = _parse_schedule(paradigm, config.get("schedule", {}))
    sampler = parse_sampler(paradigm, config.get("sampler", {}), schedule=schedule)
    return NativeConfig(
        paradigm=paradigm,
        task=config["task"],
        resolution=resolution,
        frames=frames,
        architecture=arch,
        schedule=schedule,
        sampler=sampler,
        extra={key: config[key] for key in EXTRA_KEYS if key in config},
    )


def validate_native_config(config: object) -> dict:
    """`parse_native_config(config).as_dict()`: the canonical config, or GeneratorConfigError."""
    return parse_native_config(config).as_dict()


def validate_sampler(
    paradigm: str, sampler: object, where: str = "sampler", schedule: Mapping | None = None
) -> dict:
    """`parse_sampler(...).as_dict()`: a checked sampler config as a JSON object."""
    return parse_sampler(paradigm, sampler, where=where, schedule=schedule).as_dict()


def apply_overrides(config: Mapping | NativeConfig, overrides: Mapping) -> dict:
    """A version's generator config over config.json; returns the checked canonical config.

    `overrides`: `resolution`, `frames` and `sampler` ({"name", "steps", "guidance_scale",
    options}, or just a name; a different name keeps steps and guidance scale but drops the old
    sampler's options). Top-level `steps` / `guidance_scale` are accepted as shorthands.
    """
    merged = config.as_dict() if isinstance(config, NativeConfig) else dict(config)
    for key in ("resolution", "frames"):
        if overrides.get(key) is not None:
            merged[key] = overrides[key]
    sampler = dict(merged.get("sampler") or {})
    wanted = overrides.get("sampler")
    if isinstance(wanted, str):
        wanted = {"name": wanted}
    if isinstance(wanted, dict) and wanted:
        if "name" in wanted and wanted["name"] != sampler.get("name"):
            sampler = {k: sampler[k] for k in ("steps", "guidance_scale") if k in sampler}
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
