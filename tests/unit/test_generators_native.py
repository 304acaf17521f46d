"""The native format and the Generator protocol: shapes, dtypes, determinism, readable errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from models_registry.generators import Generator, GeneratorConfigError, load_generator
from models_registry.generators.native import (
    apply_overrides,
    build_model,
    save_native,
    validate_native_config,
)
from models_registry.generators.reference import REFERENCE_SPECS, native_config
from models_registry.generators.synthetic import VOCABULARY, benchmark_prompts

PROMPT = "a large red square in the center on a white background"


def tiny(paradigm: str, sampler: dict, schedule: dict | None = None) -> dict:
    video = paradigm == "video"
    return {
        "format": "native",
        "paradigm": paradigm,
        "task": "text-to-video" if video else "text-to-image",
        "resolution": 16,
        "frames": 8 if video else 1,
        "architecture": {
            "type": "unet",
            "channels": 8,
            "channel_mult": [1, 2],
            "patch": 2,
            "heads": 2,
            "cond_dim": 16,
            "temporal": video,
            "text": {
                "vocabulary": VOCABULARY,
                "dim": 16,
                "layers": 1,
                "heads": 2,
                "max_tokens": 24,
            },
        },
        "schedule": schedule or {},
        "sampler": sampler,
    }


CASES = {
    "diffusion-ddpm": tiny(
        "diffusion",
        {"name": "ddpm", "steps": 3, "guidance_scale": 2.0},
        {"beta_schedule": "linear"},
    ),
    "diffusion-ddim": tiny(
        "diffusion",
        {"name": "ddim", "steps": 3, "guidance_scale": 2.0},
        {"beta_schedule": "cosine"},
    ),
    "score-pc": tiny(
        "score",
        {"name": "ve-pc", "steps": 3, "guidance_scale": 2.0},
        {"sigma_min": 0.01, "sigma_max": 20.0},
    ),
    "flow-euler": tiny("flow", {"name": "euler", "steps": 2, "guidance_scale": 1.0}),
    "flow-heun": tiny("flow", {"name": "heun", "steps": 2, "guidance_scale": 3.0}),
    "video-euler": tiny("video", {"name": "euler", "steps": 2, "guidance_scale": 2.0}),
}


def saved(tmp_path: Path, config: dict) -> Path:
    torch.manual_seed(0)
    model = build_model(config)
    # Random (not zero-initialised) output layers, so that outputs depend on the prompt.
    for p in model.parameters():
        p.data.normal_(0, 0.2)
    save_native(tmp_path / "ckpt", model=model, config=config)
    return tmp_path / "ckpt"


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_paradigm_generates_deterministic_uint8_of_the_right_shape(tmp_path, case):
    config = CASES[case]
    gen = load_generator(saved(tmp_path, config), device="cpu")
    assert isinstance(gen, Generator)
    prompts = [PROMPT, "a small blue circle at the top left on a black background"]
    a = gen.generate(prompts, [11, 12])
    b = gen.generate(prompts, [11, 12])
    expected = (2, 8, 16, 16, 3) if config["paradigm"] == "video" else (2, 16, 16, 3)
    assert a.shape == expected and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, gen.generate(prompts, [13, 12]))
    # The sample of an item depends on its own seed, not on what else is in the batch.
    alone = gen.generate([prompts[1]], [12])
    assert np.abs(alone[0].astype(int) - a[1].astype(int)).max() <= 1


def test_generation_parameters_override_the_config(tmp_path):
    gen = load_generator(saved(tmp_path, CASES["flow-euler"]), device="cpu")
    a = gen.generate([PROMPT], [0], steps=1)
    b = gen.generate([PROMPT], [0], steps=4, sampler="heun", guidance_scale=4.0)
    assert not np.array_equal(a, b)
    with pytest.raises(GeneratorConfigError, match="does not fit paradigm 'flow'"):
        gen.generate([PROMPT], [0], sampler="ddim")


def test_version_overrides_apply_and_are_validated(tmp_path):
    directory = saved(tmp_path, CASES["diffusion-ddim"])
    gen = load_generator(
        directory, device="cpu", overrides={"sampler": {"name": "ddpm"}, "steps": 4}
    )
    assert gen.sampler == {"name": "ddpm", "steps": 4, "guidance_scale": 2.0}
    with pytest.raises(GeneratorConfigError, match="steps must be an integer"):
        load_generator(directory, device="cpu", overrides={"steps": 0})
    with pytest.raises(GeneratorConfigError, match="unknown options"):
        apply_overrides(CASES["flow-euler"], {"sampler": {"eta": 1.0}})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.update(format="pickle"), "format must be 'native'"),
        (lambda c: c.update(paradigm="gan"), "paradigm must be one of"),
        (lambda c: c.update(task="text-to-video"), "task must be 'text-to-image'"),
        (lambda c: c.update(resolution=30), "resolution must be a multiple of 4"),
        (lambda c: c["architecture"].update(patch=3), "architecture.patch must be 1, 2 or 4"),
        (lambda c: c["architecture"].update(heads=3), "heads=3 must divide 16"),
        (lambda c: c["sampler"].update(name="ddim"), "does not fit paradigm 'flow'"),
        (lambda c: c["sampler"].update(steps=5000), "sampler.steps must be an integer"),
        (lambda c: c["schedule"].update(sigma_max=3), "schedule keys for flow"),
    ],
)
def test_config_errors_name_the_field(change, message):
    config = json.loads(json.dumps(CASES["flow-euler"]))
    change(config)
    with pytest.raises(GeneratorConfigError, match=message):
        validate_native_config(config)


def test_weights_that_do_not_match_the_architecture_are_refused(tmp_path):
    directory = saved(tmp_path, CASES["flow-euler"])
    config = json.loads((directory / "config.json").read_text())
    config["architecture"]["channels"] = 16
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(GeneratorConfigError, match="does not match config.json architecture"):
        load_generator(directory, device="cpu")


def test_non_safetensors_weights_and_broken_json_are_refused(tmp_path):
    directory = saved(tmp_path, CASES["flow-euler"])
    torch.save({"x": torch.zeros(1)}, directory / "model.safetensors")
    with pytest.raises(GeneratorConfigError, match="not a readable safetensors file"):
        load_generator(directory, device="cpu")
    (directory / "config.json").write_text("{not json")
    with pytest.raises(GeneratorConfigError, match="config.json is not valid JSON"):
        load_generator(directory, device="cpu")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(GeneratorConfigError, match="expected model_index.json"):
        load_generator(empty, device="cpu")


def test_save_leaves_no_temporary_files_and_reference_configs_are_valid(tmp_path):
    directory = saved(tmp_path, CASES["score-pc"])
    assert sorted(p.name for p in directory.iterdir()) == ["config.json", "model.safetensors"]
    for spec in REFERENCE_SPECS:
        validate_native_config(native_config(spec))
    slugs = [spec.slug for spec in REFERENCE_SPECS]
    assert {"diffusion", "score", "flow", "video"} <= {s.paradigm for s in REFERENCE_SPECS}
    assert len(set(slugs)) == len(slugs)


def test_benchmark_prompts_parse_and_cover_their_category():
    prompts = benchmark_prompts("text-to-image", 48)
    assert len({p for p, _ in prompts}) == 48
    colour_prompts = [p for p, c in prompts if c == "colour"]
    assert len(colour_prompts) == 12
