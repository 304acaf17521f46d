"""One native config schema: what the upload validator accepts, the loader loads and samples.

Configs at the edges of every range go through the registry's validator (an archive through
`validate_archive`), are saved with tiny random networks built by the project's own
`build_model` / `save_native`, and are loaded and sampled through `load_generator`. Configs just
outside a range are refused by the validator and by the loader with the same message, naming
the field.
"""

from __future__ import annotations

import copy
import inspect
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from models_registry.checkpoint_packing import archive_bytes
from models_registry.checkpoint_validation import (
    ArchiveLimits,
    CheckpointRejected,
    native_generator_config,
    validate_archive,
)
from models_registry.generators import load_generator, samplers
from models_registry.generators.native import build_model, save_native
from models_registry.generators.native_config import (
    DEFAULT_BETAS,
    DEFAULT_GUIDANCE_SCALE,
    DEFAULT_SAMPLER,
    DEFAULT_STEPS,
    DEFAULT_TRAIN_TIMESTEPS,
    GUIDANCE_RANGE,
    MAX_ATTENTION_TOKENS,
    PARADIGMS,
    RESOLUTION_RANGE,
    SAMPLER_OPTION_SPECS,
    SAMPLER_PARADIGMS,
    SCHEDULE_SPECS,
    STEPS_RANGE,
    VIDEO_FRAMES_RANGE,
    parse_native_config,
)
from models_registry.generators.protocol import GeneratorConfigError
from models_registry.generators.synthetic import VOCABULARY

LIMITS = ArchiveLimits(
    max_files=10,
    max_unpacked_bytes=64 * 1024**2,
    max_compression_ratio=100.0,
    max_json_bytes=1024**2,
    max_safetensors_header_bytes=1024**2,
)
MIN_RES, MAX_RES = RESOLUTION_RANGE
MIN_FRAMES, MAX_FRAMES = VIDEO_FRAMES_RANGE


def config_for(paradigm: str, *, patch: int = 2, mult: tuple[int, ...] = (1, 2), **changes):
    """A tiny config of `paradigm` (stride = patch * 2^(len(mult) - 1))."""
    video = paradigm == "video"
    config = {
        "format": "native",
        "paradigm": paradigm,
        "task": "text-to-video" if video else "text-to-image",
        "resolution": 16,
        "frames": MIN_FRAMES if video else 1,
        "architecture": {
            "type": "unet",
            "channels": 4,
            "channel_mult": list(mult),
            "patch": patch,
            "heads": 2,
            "cond_dim": 8,
            "temporal": video,
            "text": {"vocabulary": VOCABULARY, "dim": 8, "layers": 1, "heads": 2, "max_tokens": 8},
        },
        "sampler": {"name": DEFAULT_SAMPLER[paradigm], "steps": 1, "guidance_scale": 2.0},
    }
    config.update(changes)
    return config


def upload(directory: Path) -> dict:
    """The registry's validator over an archive of the checkpoint folder; the config it keeps."""
    files = {name: (directory / name).read_bytes() for name in ("config.json", "model.safetensors")}
    data = archive_bytes(files, kind="tar")
    summary = validate_archive(
        io.BytesIO(data),
        archive_bytes=len(data),
        limits=LIMITS,
        sink=lambda path, stream: len(stream.read()),
    )
    return summary.config


def saved(directory: Path, config: dict) -> Path:
    torch.manual_seed(0)
    model = build_model(config)
    for p in model.parameters():  # random (not zero-initialised) output layers
        p.data.normal_(0, 0.2)
    save_native(directory, model=model, config=config)
    return directory


def assert_generates(directory: Path, config: dict, **params) -> np.ndarray:
    """Validated upload -> load -> generate two samples; checks shape, dtype, determinism."""
    accepted = upload(directory)
    gen = load_generator(directory, device="cpu")
    assert gen.config == accepted  # the validator keeps exactly the config the loader uses
    prompts = ["a red circle", "a blue square at the top left"]
    out = gen.generate(prompts, [0, 1], **params)
    side, frames = config["resolution"], config.get("frames", 1)
    expected = (2, frames, side, side, 3) if config["paradigm"] == "video" else (2, side, side, 3)
    assert out.shape == expected and out.dtype == np.uint8
    assert np.array_equal(out, gen.generate(prompts, [0, 1], **params))
    assert not np.array_equal(out[0], out[1])  # finite samples that depend on prompt and seed
    return out


# --- accepted configs load and generate ---------------------------------------------------------

# (paradigm, config changes, builder kwargs): every paradigm at the smallest and largest
# resolution, video at the fewest and most frames (and the largest clip).
EDGES = [
    *[(p, {"resolution": MIN_RES}, {}) for p in PARADIGMS],
    *[(p, {"resolution": MIN_RES}, {"patch": 1, "mult": (1,)}) for p in PARADIGMS],
    *[(p, {"resolution": MAX_RES}, {"patch": 4, "mult": (1, 2)}) for p in PARADIGMS],
    ("video", {"resolution": MIN_RES, "frames": MAX_FRAMES}, {}),
    ("video", {"resolution": MAX_RES, "frames": MIN_FRAMES}, {"patch": 4, "mult": (1, 2, 2)}),
    ("video", {"resolution": 64, "frames": MAX_FRAMES}, {"patch": 4, "mult": (1, 2)}),
]


@pytest.mark.parametrize(
    ("paradigm", "changes", "arch"), EDGES, ids=[f"{p}-{c}-{a}" for p, c, a in EDGES]
)
def test_configs_at_the_edges_of_the_ranges_validate_load_and_generate(
    tmp_path, paradigm, changes, arch
):
    config = config_for(paradigm, **arch, **changes)
    assert_generates(saved(tmp_path, config), config)


# Every sampler with its options at both ends of their ranges, and each paradigm's schedule.
SAMPLER_EDGES = [
    (
        name,
        {k: getattr(spec, end) for k, spec in SAMPLER_OPTION_SPECS[name].items()},
    )
    for name in SAMPLER_PARADIGMS
    for end in ("lo", "hi")
]
SCHEDULE_EDGES = {
    "diffusion": [
        {"num_train_timesteps": 1, "beta_schedule": "linear", "beta_start": 1e-6, "beta_end": 1e-6},
        {"num_train_timesteps": 10000, "beta_schedule": "cosine", "clip_sample": False},
        {"num_train_timesteps": 10, "beta_start": 0.9, "beta_end": 0.9},  # alpha_bar 1e-10
    ],
    "score": [{"sigma_min": 1e-4, "sigma_max": 1000.0}, {"sigma_min": 999.0, "sigma_max": 1000.0}],
    "flow": [{}],
    "video": [{}],
}


@pytest.mark.parametrize(("name", "options"), SAMPLER_EDGES)
def test_every_sampler_generates_with_its_options_at_their_limits(tmp_path, name, options):
    for i, paradigm in enumerate(SAMPLER_PARADIGMS[name]):
        for j, schedule in enumerate(SCHEDULE_EDGES[paradigm]):
            steps = min(2, schedule.get("num_train_timesteps", DEFAULT_TRAIN_TIMESTEPS))
            config = config_for(
                paradigm,
                resolution=8,
                schedule=schedule,
                sampler={"name": name, "steps": steps, "guidance_scale": GUIDANCE_RANGE[1]},
            )
            config["sampler"].update(options)
            assert_generates(saved(tmp_path / f"{i}-{j}", config), config)


def test_the_most_steps_a_ddpm_config_allows_generate(tmp_path):
    sampler = {"name": "ddpm", "steps": STEPS_RANGE[1], "guidance_scale": 1.0}
    config = config_for("diffusion", resolution=8, sampler=sampler)
    directory = saved(tmp_path, config)
    assert upload(directory)["sampler"] == sampler
    out = load_generator(directory, device="cpu").generate(["a red circle"], [0])
    assert out.shape == (1, 8, 8, 3) and out.dtype == np.uint8 and out.std() > 0


def test_left_out_fields_get_the_schema_defaults_and_still_generate(tmp_path):
    config = config_for("flow", resolution=8)
    del config["frames"], config["sampler"]
    parsed = parse_native_config(config)
    assert parsed.frames == 1 and parsed.schedule == {}
    assert parsed.sampler.as_dict() == {
        "name": DEFAULT_SAMPLER["flow"],
        "steps": DEFAULT_STEPS,
        "guidance_scale": DEFAULT_GUIDANCE_SCALE,
    }
    assert_generates(saved(tmp_path, config), parsed.as_dict(), steps=1)


def test_version_overrides_give_the_same_config_in_the_validator_and_the_loader(tmp_path):
    directory = saved(tmp_path, config_for("flow"))
    summary_config = upload(directory)
    overrides = {"sampler": {"name": "heun", "shift": 2.0}, "steps": 3, "resolution": 32}

    class Summary:
        config = summary_config

    registry = native_generator_config(Summary, task="text-to-image", overrides=overrides)
    gen = load_generator(directory, device="cpu", overrides=overrides)
    assert registry == gen.config
    assert registry["sampler"] == {"name": "heun", "steps": 3, "guidance_scale": 2.0, "shift": 2.0}
    assert gen.generate(["a red circle"], [0]).shape == (1, 32, 32, 3)


# --- refused configs: the same message from the validator and the loader ------------------------


def _set(path: str, value):
    def change(config: dict) -> None:
        *parents, key = path.split(".")
        target = config
        for parent in parents:
            target = target.setdefault(parent, {})
        target[key] = value

    return change


def _delete(key: str):
    return lambda config: config.pop(key)


# (paradigm, change, message fragment naming the field and what is allowed)
REFUSED = [
    ("flow", _set("resolution", MIN_RES - 1), "resolution must be an integer in [8, 512], got 7"),
    ("flow", _set("resolution", MAX_RES + 4), "resolution must be an integer in [8, 512], got 516"),
    ("flow", _set("resolution", 32.0), "resolution must be an integer in [8, 512], got 32.0"),
    ("flow", _set("resolution", 17), "resolution must be a multiple of 2 for this U-Net"),
    ("video", _set("frames", MIN_FRAMES - 1), "frames must be an integer in [2, 64], got 1"),
    ("video", _set("frames", MAX_FRAMES + 1), "frames must be an integer in [2, 64], got 65"),
    ("video", _delete("frames"), "frames must be an integer in [2, 64], got None"),
    ("flow", _set("frames", 8), "frames must be 1 for images, got 8"),
    ("flow", _set("frames", True), "frames must be 1 for images, got True"),
    ("diffusion", _set("paradigm", "gan"), "paradigm must be one of ['diffusion', 'score'"),
    ("flow", _set("task", "text-to-video"), "task must be 'text-to-image' or 'image-edit' for"),
    ("video", _set("task", "image-edit"), "task must be 'text-to-video' for paradigm 'video'"),
    (
        "flow",
        _set("task", "image-edit"),
        "architecture.image_conditioning must be true for task image-edit",
    ),
    (
        "flow",
        _set("architecture.image_conditioning", True),
        "architecture.image_conditioning must be false",
    ),
    ("flow", _set("task", "text-to-audio"), "task must be one of ['text-to-image'"),
    ("flow", _set("format", "pickle"), "format must be 'native', got 'pickle'"),
    ("flow", _set("surprise", 1), "unknown keys ['surprise']"),
    ("flow", _delete("architecture"), "missing required keys: architecture"),
    ("flow", _set("architecture.type", "mlp"), "architecture.type must be 'unet'"),
    ("flow", _set("architecture.depth", 3), "architecture has unknown keys ['depth']"),
    ("flow", _set("architecture.channels", 2), "architecture.channels must be an integer in [4"),
    ("flow", _set("architecture.channel_mult", [1, 9]), "architecture.channel_mult must be 1-4"),
    ("flow", _set("architecture.channel_mult", []), "architecture.channel_mult must be 1-4"),
    ("flow", _set("architecture.patch", 3), "architecture.patch must be 1, 2 or 4, got 3"),
    ("flow", _set("architecture.heads", 3), "architecture.heads=3 must divide 8"),
    ("flow", _set("architecture.cond_dim", 9), "architecture.cond_dim must be even, got 9"),
    ("flow", _set("architecture.temporal", True), "architecture.temporal must be False for flow"),
    ("video", _set("architecture.temporal", False), "architecture.temporal must be True"),
    ("flow", _set("architecture.text.dim", 4), "architecture.text.dim must be an integer in [8"),
    ("flow", _set("architecture.text.heads", 3), "architecture.text.heads=3 must divide dim=8"),
    ("flow", _set("architecture.text.layers", 0), "architecture.text.layers must be an integer"),
    ("flow", _set("architecture.text.max_tokens", 1), "architecture.text.max_tokens must be"),
    ("flow", _set("architecture.text.vocabulary", []), "architecture.text.vocabulary must be"),
    ("flow", _set("architecture.text", "clip"), "architecture.text must be a JSON object"),
    ("flow", _set("schedule.sigma_max", 3), "schedule keys for flow must be among []"),
    ("diffusion", _set("schedule.beta_schedule", "sqrt"), "schedule.beta_schedule must be one of"),
    ("diffusion", _set("schedule.beta_start", 0.0), "schedule.beta_start must be a number in"),
    ("diffusion", _set("schedule.beta_end", 1.0), "schedule.beta_end must be a number in"),
    ("diffusion", _set("schedule.clip_sample", 1), "schedule.clip_sample must be one of"),
    ("diffusion", _set("schedule.num_train_timesteps", 0), "schedule.num_train_timesteps must be"),
    (
        "diffusion",
        lambda c: c.update(schedule={"beta_start": 0.02, "beta_end": 0.01}),
        "schedule.beta_start=0.02 must not exceed beta_end=0.01",
    ),
    (
        "score",
        lambda c: c.update(schedule={"sigma_min": 5.0, "sigma_max": 5.0}),
        "schedule.sigma_min=5.0 must be below sigma_max=5.0",
    ),
    ("flow", _set("sampler.name", "dpm++"), "sampler.name must be one of ['ddim', 'ddpm'"),
    ("flow", _set("sampler.name", "ddim"), "sampler.name 'ddim' does not fit paradigm 'flow'"),
    ("score", _set("sampler.name", "euler"), "sampler.name 'euler' does not fit paradigm 'score'"),
    ("flow", _set("sampler.steps", 0), "sampler.steps must be an integer in [1, 1000], got 0"),
    ("flow", _set("sampler.steps", 1001), "sampler.steps must be an integer in [1, 1000]"),
    ("flow", _set("sampler.guidance_scale", -1), "sampler.guidance_scale must be a number in"),
    ("flow", _set("sampler.guidance_scale", 51), "sampler.guidance_scale must be a number in"),
    ("flow", _set("sampler.eta", 0.5), "sampler has unknown options for 'euler' ['eta']"),
    ("flow", _set("sampler.shift", 0.0), "sampler.shift must be a number in [0.1, 10.0]"),
    ("flow", _set("sampler", "euler"), "sampler must be a JSON object"),
    ("score", _set("sampler.corrector_steps", 11), "sampler.corrector_steps must be an integer"),
    ("score", _set("sampler.snr", 2.0), "sampler.snr must be a number in [0.0, 1.0]"),
    ("diffusion", _set("sampler.eta", 1.5), "sampler.eta must be a number in [0.0, 1.0]"),
    (
        "score",
        lambda c: c.update(sampler={"name": "ve-heun", "rho": 0.5}),
        "sampler.rho must be a number in [1.0, 20.0]",
    ),
    (
        "diffusion",
        lambda c: c.update(schedule={"num_train_timesteps": 10}, sampler={"steps": 11}),
        "sampler.steps must be at most schedule.num_train_timesteps=10, got 11",
    ),
    (
        "flow",
        _set("resolution", MAX_RES),  # stride 2: 256 x 256 tokens at the lowest level
        f"resolution 512 leaves 65536 attention tokens at the U-Net's lowest level (at most "
        f"{MAX_ATTENTION_TOKENS})",
    ),
    (
        "diffusion",
        lambda c: c.update(schedule={"beta_end": 0.999}),
        "schedule: linear betas 0.0001..0.999 over 1000 timesteps leave alpha_bar = 0 at the "
        "last step (at least 1e-20)",
    ),
    ("score", _set("schedule.sigma_max", 2000.0), "schedule.sigma_max must be a number in"),
    ("score", _set("schedule.sigma_min", 0.0), "schedule.sigma_min must be a number in"),
]


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> dict[str, Path]:
    """Real weights per paradigm: a refused config.json is paired with loadable weights."""
    root = tmp_path_factory.mktemp("weights")
    return {
        p: saved(root / p, config_for(p, patch=1, mult=(1, 2))) / "model.safetensors"
        for p in PARADIGMS
    }


@pytest.mark.parametrize(
    ("paradigm", "change", "message"), REFUSED, ids=[m[:48] for _, _, m in REFUSED]
)
def test_out_of_range_fields_are_refused_with_the_same_message_by_validator_and_loader(
    tmp_path, weights, paradigm, change, message
):
    config = copy.deepcopy(config_for(paradigm, patch=1, mult=(1, 2)))
    change(config)
    shutil.copy(weights[paradigm], tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointRejected, match=re.escape(message)) as rejected:
        upload(tmp_path)
    assert str(rejected.value).startswith("config.json: ")
    with pytest.raises(GeneratorConfigError, match=re.escape(message)):
        load_generator(tmp_path, device="cpu")


def test_the_refusal_table_covers_every_field_of_the_schema():
    """A field without a refusal case above would leave its range untested."""
    named = " ".join(message for _, _, message in REFUSED)
    fields = ["resolution", "frames", "paradigm", "task", "format", "sampler.name"]
    fields += ["sampler.steps", "sampler.guidance_scale", "architecture.type"]
    arch = parse_native_config(config_for("flow")).architecture
    fields += [f"architecture.{k}" for k in arch.__dataclass_fields__ if k != "text"]
    fields += [f"architecture.text.{k}" for k in arch.text.__dataclass_fields__]
    fields += [f"schedule.{k}" for spec in SCHEDULE_SPECS.values() for k in spec]
    fields += [f"sampler.{k}" for spec in SAMPLER_OPTION_SPECS.values() for k in spec]
    missing = [field for field in fields if field not in named]
    assert not missing, missing


# --- the schema and the samplers agree ----------------------------------------------------------


def test_the_schema_names_what_the_sampler_classes_take():
    assert set(samplers.SAMPLERS) == set(SAMPLER_PARADIGMS)
    for name, (cls, paradigms) in samplers.SAMPLERS.items():
        assert paradigms == SAMPLER_PARADIGMS[name]
        # Keyword arguments of the class and the bases it passes **kwargs to.
        params = {p for base in cls.__mro__[:-1] for p in inspect.signature(base).parameters}
        assert set(SAMPLER_OPTION_SPECS[name]) <= params, name
        for paradigm in paradigms:
            assert set(SCHEDULE_SPECS[paradigm]) <= params, name
    ddpm = inspect.signature(samplers.DDPMScheduler).parameters
    assert ddpm["num_train_timesteps"].default == DEFAULT_TRAIN_TIMESTEPS
    assert (ddpm["beta_start"].default, ddpm["beta_end"].default) == DEFAULT_BETAS
    assert set(DEFAULT_SAMPLER) == set(PARADIGMS)
    assert all(p in SAMPLER_PARADIGMS[DEFAULT_SAMPLER[p]] for p in PARADIGMS)
