"""The diffusers loader against tiny randomly initialised pipelines built here and saved to a
temporary directory, loaded through the same `load_generator` that workers use."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from models_registry.checkpoint_packing import archive_bytes
from models_registry.checkpoint_validation import (
    ArchiveLimits,
    diffusers_generator_config,
    validate_archive,
)
from models_registry.generators import GeneratorConfigError, load_generator


def _tokenizer():
    """A character-level CLIP tokenizer built in memory (no download)."""
    from transformers import CLIPTokenizer

    chars = [chr(c) for c in range(33, 127)]
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in chars:
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


def _text_encoder():
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    return CLIPTextModel(
        CLIPTextConfig(
            vocab_size=200,
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            max_position_embeddings=77,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        )
    )


def _vae():
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    return AutoencoderKL(
        block_out_channels=(8, 16),
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        norm_num_groups=8,
        sample_size=32,
    )


def tiny_unet(block_out_channels: tuple[int, int] = (16, 32)):
    """The tiny SD UNet (2 levels, cross-attention at the lower one), random weights."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        block_out_channels=block_out_channels,
        layers_per_block=1,
        sample_size=16,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=4,
        norm_num_groups=8,
    )


def save_tiny_sd(directory: Path) -> Path:
    """A tiny StableDiffusionPipeline (UNet + VAE + CLIP text encoder), saved with safetensors."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline

    torch.manual_seed(0)
    pipe = StableDiffusionPipeline(
        unet=tiny_unet(),
        vae=_vae(),
        text_encoder=_text_encoder(),
        tokenizer=_tokenizer(),
        scheduler=DDIMScheduler(beta_schedule="scaled_linear", clip_sample=False, steps_offset=1),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(directory, safe_serialization=True)
    return directory


@pytest.fixture(scope="module")
def t2i_dir(tmp_path_factory) -> Path:
    return save_tiny_sd(tmp_path_factory.mktemp("tiny-sd") / "pipe")


@pytest.fixture(scope="module")
def t2v_dir(tmp_path_factory) -> Path:
    from diffusers import DDIMScheduler, TextToVideoSDPipeline, UNet3DConditionModel

    root = tmp_path_factory.mktemp("tiny-t2v")
    torch.manual_seed(0)
    unet = UNet3DConditionModel(
        block_out_channels=(16, 32),
        layers_per_block=1,
        sample_size=16,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"),
        up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"),
        cross_attention_dim=32,
        attention_head_dim=4,
        norm_num_groups=8,
    )
    pipe = TextToVideoSDPipeline(
        unet=unet,
        vae=_vae(),
        text_encoder=_text_encoder(),
        tokenizer=_tokenizer(),
        scheduler=DDIMScheduler(beta_schedule="scaled_linear", clip_sample=False, steps_offset=1),
    )
    pipe.save_pretrained(root / "pipe", safe_serialization=True)
    return root / "pipe"


def test_text_to_image_pipeline_loads_and_generates_deterministic_uint8_images(t2i_dir):
    gen = load_generator(t2i_dir, device="cpu", overrides={"steps": 2, "resolution": 32})
    assert gen.task == "text-to-image" and gen.resolution == 32
    prompts = ["a red circle", "a blue square"]
    a = gen.generate(prompts, [1, 2])
    b = gen.generate(prompts, [1, 2])
    assert a.shape == (2, 32, 32, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(gen.generate(prompts, [3, 4]), a)


def test_scheduler_steps_and_guidance_come_from_the_version_config(t2i_dir):
    gen = load_generator(
        t2i_dir,
        device="cpu",
        overrides={
            "sampler": {"scheduler": "EulerDiscreteScheduler", "steps": 3, "guidance_scale": 1.0}
        },
    )
    assert type(gen.pipe.scheduler).__name__ == "EulerDiscreteScheduler"
    assert gen.steps == 3 and gen.guidance_scale == 1.0
    out = gen.generate(["a red circle"], [0], resolution=16)
    assert out.shape == (1, 16, 16, 3)


def test_unknown_scheduler_is_a_readable_config_error(t2i_dir):
    with pytest.raises(GeneratorConfigError, match="scheduler must be a diffusers scheduler"):
        load_generator(t2i_dir, device="cpu", overrides={"scheduler": "os.system"})


def test_pickled_weights_are_refused(t2i_dir, tmp_path):
    import shutil

    copy = tmp_path / "pipe"
    shutil.copytree(t2i_dir, copy)
    for weights in copy.glob("unet/*.safetensors"):
        weights.unlink()
    torch.save({}, copy / "unet" / "diffusion_pytorch_model.bin")
    with pytest.raises(GeneratorConfigError, match="cannot load diffusers pipeline"):
        load_generator(copy, device="cpu")


def test_components_from_foreign_libraries_are_refused(t2i_dir, tmp_path):
    import shutil

    copy = tmp_path / "pipe"
    shutil.copytree(t2i_dir, copy)
    index = json.loads((copy / "model_index.json").read_text())
    index["unet"] = ["evil_module", "Unet"]
    (copy / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(GeneratorConfigError, match="component 'unet' must come from"):
        load_generator(copy, device="cpu")


def test_text_to_video_pipeline_generates_clips(t2v_dir):
    gen = load_generator(t2v_dir, device="cpu", overrides={"steps": 2, "frames": 4})
    assert gen.task == "text-to-video"
    a = gen.generate(["a red circle moving left"], [5], resolution=32)
    assert a.shape == (1, 4, 32, 32, 3) and a.dtype == np.uint8
    assert np.array_equal(a, gen.generate(["a red circle moving left"], [5], resolution=32))


# --- pixel-space (unconditional) pipelines -----------------------------------------------------


@pytest.fixture(scope="module")
def ddpm_dir(tmp_path_factory) -> Path:
    """A tiny pixel-space DDPMPipeline (UNet2DModel + DDPMScheduler, no VAE, no prompt)."""
    from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel

    root = tmp_path_factory.mktemp("tiny-ddpm")
    torch.manual_seed(0)
    unet = UNet2DModel(
        sample_size=24,
        in_channels=3,
        out_channels=3,
        layers_per_block=1,
        block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
        norm_num_groups=4,
    )
    pipe = DDPMPipeline(unet=unet, scheduler=DDPMScheduler(num_train_timesteps=50))
    pipe.save_pretrained(root / "pipe", safe_serialization=True)
    return root / "pipe"


def test_ddpm_pipeline_generates_at_the_unets_sample_size_and_ignores_prompts(ddpm_dir):
    gen = load_generator(ddpm_dir, device="cpu", overrides={"steps": 2})
    assert gen.task == "text-to-image" and gen.resolution == 24 and not gen.conditional
    a = gen.generate(["a red circle", "a blue square"], [1, 2])
    assert a.shape == (2, 24, 24, 3) and a.dtype == np.uint8
    assert np.array_equal(a, gen.generate(["a red circle", "a blue square"], [1, 2]))
    # Unconditional: the prompt changes nothing, the seed changes the sample.
    assert np.array_equal(a, gen.generate(["something else", ""], [1, 2]))
    assert not np.array_equal(a[0], gen.generate(["a red circle"], [3])[0])
    # Sample i depends on seeds[i] only, not on the rest of the batch.
    assert np.array_equal(a[1], gen.generate(["x"], [2])[0])


def test_ddpm_pipeline_refuses_a_resolution_it_cannot_generate(ddpm_dir):
    with pytest.raises(GeneratorConfigError, match="fixed 24 px"):
        load_generator(ddpm_dir, device="cpu", overrides={"resolution": 32})
    gen = load_generator(ddpm_dir, device="cpu", overrides={"steps": 1, "resolution": 24})
    with pytest.raises(GeneratorConfigError, match="fixed 24 px"):
        gen.generate(["a red circle"], [0], resolution=48)


def test_latent_pipeline_resolution_is_sample_size_times_the_vae_factor(t2i_dir):
    gen = load_generator(t2i_dir, device="cpu", overrides={"steps": 1})
    assert gen.resolution == 32  # unet sample_size 16 x 2 (two VAE blocks)
    assert gen.generate(["a red circle"], [0]).shape == (1, 32, 32, 3)


def _validated(directory: Path, task: str = "text-to-image", overrides: dict | None = None):
    """The upload validator's generator config for an archive of a pipeline folder."""
    import io

    files = {
        str(path.relative_to(directory)): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }
    data = archive_bytes(files, kind="tar")
    summary = validate_archive(
        io.BytesIO(data),
        archive_bytes=len(data),
        limits=ArchiveLimits(),
        sink=lambda path, stream: len(stream.read()),
    )
    return diffusers_generator_config(summary, task=task, overrides=overrides or {})


@pytest.mark.parametrize("fixture", ["ddpm_dir", "t2i_dir"])
def test_validator_and_loader_tell_the_same_resolution(request, fixture):
    directory = request.getfixturevalue(fixture)
    config = _validated(directory)
    gen = load_generator(directory, device="cpu", overrides={"steps": 1})
    assert config["resolution"] == gen.resolution == {"ddpm_dir": 24, "t2i_dir": 32}[fixture]
    out = gen.generate(["a red circle"], [0], resolution=config["resolution"])
    assert out.shape == (1, config["resolution"], config["resolution"], 3)
