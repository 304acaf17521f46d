"""Image-edit generators through the one Generator protocol: the native editor (source channels
concatenated to the U-Net input) and diffusers' InstructPix2Pix pipeline (`image=`), both built
tiny and random here, saved, and loaded by `load_generator` as workers load them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models_registry.generators import load_generator
from models_registry.generators.native import build_model, save_native
from models_registry.generators.reference import native_config, reference_spec
from models_registry.generators.synthetic import benchmark_edits, render_edit_dataset, render_scene
from models_registry.generators.training import TrainingPlan, to_model_space, train
from tests.unit.test_generators_diffusers import _text_encoder, _tokenizer, _vae


def _editor_config() -> dict:
    config = native_config(reference_spec("ref-edit-flow"))
    config["architecture"].update(channels=8, cond_dim=16)
    config["architecture"]["text"].update(dim=16, heads=2)
    config["sampler"] = {"name": "euler", "steps": 2, "guidance_scale": 2.0}
    return config


def save_trained_editor(directory: Path, seed: int = 0) -> Path:
    """A tiny native editor trained for 3 steps on synthetic edit triples (the platform's own
    loop; an untrained U-Net's zero-initialised head ignores its inputs)."""
    config = _editor_config()
    torch.manual_seed(seed)
    model = build_model(config)
    sources, targets, instructions, _ = render_edit_dataset(24, seed=seed)
    ema = train(
        model,
        to_model_space(targets),
        instructions,
        TrainingPlan(paradigm="flow", steps=3, batch_size=4, seed=seed),
        sources=to_model_space(sources),
    )
    save_native(directory, model=ema, config=config)
    return directory


@pytest.fixture(scope="module")
def editor_dir(tmp_path_factory) -> Path:
    return save_trained_editor(tmp_path_factory.mktemp("editor") / "ref-edit-flow")


def _sources(n: int, size: int = 32) -> tuple[list[str], np.ndarray]:
    edits = benchmark_edits(n)
    return [e.instruction for e in edits], np.stack(
        [render_scene(e.source, resolution=size) for e in edits]
    )


def test_the_reference_editor_config_is_an_image_edit_flow_model_reading_instructions():
    config = native_config(reference_spec("ref-edit-flow"))
    assert config["task"] == "image-edit" and config["paradigm"] == "flow"
    assert config["architecture"]["image_conditioning"] is True
    assert {"make", "turn", "move", "remove", "add"} <= set(
        config["architecture"]["text"]["vocabulary"]
    )


def test_native_editor_edits_its_sources_deterministically(editor_dir):
    gen = load_generator(editor_dir, device="cpu")
    assert gen.task == "image-edit" and gen.resolution == 32
    prompts, sources = _sources(3)
    a = gen.generate(prompts, [0, 1, 2], images=sources)
    assert a.shape == (3, 32, 32, 3) and a.dtype == np.uint8
    assert np.array_equal(a, gen.generate(prompts, [0, 1, 2], images=sources))
    # The source is an input: another source, same prompt and seed, another edit.
    other = gen.generate(prompts, [0, 1, 2], images=sources[::-1].copy())
    assert not np.array_equal(a, other)
    # A source of another size is resized to the model's resolution.
    _, big = _sources(3, size=64)
    assert gen.generate(prompts, [0, 1, 2], images=big).shape == (3, 32, 32, 3)


def test_native_editor_needs_one_source_per_prompt(editor_dir):
    gen = load_generator(editor_dir, device="cpu")
    prompts, sources = _sources(2)
    with pytest.raises(ValueError, match=r"needs images uint8 \[2, H, W, 3\], got None"):
        gen.generate(prompts, [0, 1])
    with pytest.raises(ValueError, match=r"got \[1, 32, 32, 3\]"):
        gen.generate(prompts, [0, 1], images=sources[:1])


def test_a_text_to_image_model_takes_no_images(tmp_path):
    config = native_config(reference_spec("ref-flow-undertrained"))
    save_native(tmp_path / "t2i", model=build_model(config), config=config)
    gen = load_generator(tmp_path / "t2i", device="cpu", overrides={"steps": 1})
    with pytest.raises(ValueError, match="text-to-image model takes no images"):
        gen.generate(
            ["a small red circle in the center on a black background"],
            [0],
            images=np.zeros((1, 32, 32, 3), np.uint8),
        )


@pytest.fixture(scope="module")
def ip2p_dir(tmp_path_factory) -> Path:
    from diffusers import (
        EulerAncestralDiscreteScheduler,
        StableDiffusionInstructPix2PixPipeline,
        UNet2DConditionModel,
    )

    root = tmp_path_factory.mktemp("tiny-ip2p")
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(16, 32),
        layers_per_block=1,
        sample_size=16,
        in_channels=8,  # noisy latents + the source image's latents
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=4,
        norm_num_groups=8,
    )
    pipe = StableDiffusionInstructPix2PixPipeline(
        unet=unet,
        vae=_vae(),
        text_encoder=_text_encoder(),
        tokenizer=_tokenizer(),
        scheduler=EulerAncestralDiscreteScheduler(beta_schedule="scaled_linear"),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(root / "pipe", safe_serialization=True)
    return root / "pipe"


def test_instruct_pix2pix_pipeline_is_an_image_edit_generator(ip2p_dir):
    gen = load_generator(
        ip2p_dir,
        device="cpu",
        overrides={"sampler": {"steps": 2, "guidance_scale": 3.0, "image_guidance_scale": 1.5}},
    )
    assert gen.task == "image-edit" and gen.resolution == 32
    prompts, sources = _sources(2)
    a = gen.generate(prompts, [0, 1], images=sources)
    assert a.shape == (2, 32, 32, 3) and a.dtype == np.uint8
    assert np.array_equal(a, gen.generate(prompts, [0, 1], images=sources))
    assert not np.array_equal(a, gen.generate(prompts, [0, 1], images=255 - sources))
    # Text and image guidance: three denoiser rows per sample and step, as counted.
    assert gen.last_stats.nfe == gen.nfe_for_steps(2) == 2 * 3
    with pytest.raises(ValueError, match="needs images="):
        gen.generate(prompts, [0, 1])


def test_instruct_pix2pix_sampler_keys_are_checked(ip2p_dir):
    from models_registry.generators import GeneratorConfigError

    with pytest.raises(GeneratorConfigError, match="unknown keys \\['eta'\\]"):
        load_generator(ip2p_dir, device="cpu", overrides={"sampler": {"eta": 0.0}})
