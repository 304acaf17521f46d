"""Diffusers runtime options (torch_dtype, attention / VAE slicing, VAE tiling, cpu_offload,
compile) on tiny random pipelines built here: an SD-like UNet pipeline and an SD3 (MMDiT,
flow-matching) transformer pipeline, saved with safetensors and loaded through `load_generator`."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from models_registry.checkpoint_validation import CheckpointRejected, check_overrides
from models_registry.generators import GeneratorConfigError, load_generator
from models_registry.generators.diffusers_loader import parse_runtime_options
from tests.unit.test_generators_diffusers import (  # noqa: F401 (t2i_dir: a fixture)
    _text_encoder,
    _tokenizer,
    _vae,
    _validated,
    save_tiny_sd,
    t2i_dir,
    tiny_unet,
)

PROMPTS = ["a red circle", "a blue square"]
SEEDS = [0, 1]


def save_tiny_sd3(directory: Path) -> Path:
    """A tiny StableDiffusion3Pipeline: SD3Transformer2DModel (a DiT), two CLIP text encoders
    with projection, no T5 (model_index records it as absent), flow-matching Euler; saved with
    safetensors."""
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        SD3Transformer2DModel,
        StableDiffusion3Pipeline,
    )
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    torch.manual_seed(0)
    transformer = SD3Transformer2DModel(
        sample_size=16,
        patch_size=1,
        in_channels=4,
        num_layers=1,
        attention_head_dim=8,
        num_attention_heads=4,
        caption_projection_dim=32,
        joint_attention_dim=32,
        pooled_projection_dim=64,
        out_channels=4,
    )
    clip = CLIPTextConfig(
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
        hidden_size=32,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=2,
        vocab_size=200,
        max_position_embeddings=77,
        projection_dim=32,
    )
    vae = AutoencoderKL(
        sample_size=32,
        in_channels=3,
        out_channels=3,
        block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        use_quant_conv=False,
        use_post_quant_conv=False,
        shift_factor=0.0609,
        scaling_factor=1.5035,
    )
    pipe = StableDiffusion3Pipeline(
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=CLIPTextModelWithProjection(clip),
        tokenizer=_tokenizer(),
        text_encoder_2=CLIPTextModelWithProjection(clip),
        tokenizer_2=_tokenizer(),
        text_encoder_3=None,
        tokenizer_3=None,
    )
    pipe.save_pretrained(directory, safe_serialization=True)
    return directory


@pytest.fixture(scope="module")
def sd3_dir(tmp_path_factory) -> Path:
    return save_tiny_sd3(tmp_path_factory.mktemp("tiny-sd3") / "pipe")


def _images(directory: Path, **options) -> tuple[np.ndarray, object]:
    gen = load_generator(directory, device="cpu", overrides={"steps": 2, **options})
    return gen.generate(PROMPTS, SEEDS), gen


# --- the schema --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"torch_dtype": "float64"},
            "torch_dtype must be one of ['float32', 'float16', 'bfloat16']",
        ),
        ({"attention_slicing": "half"}, "attention_slicing must be true, false, ['auto', 'max']"),
        ({"attention_slicing": 0}, "or a positive slice size, got 0"),
        ({"vae_slicing": "yes"}, "vae_slicing must be true or false"),
        ({"vae_tiling": 1}, "vae_tiling must be true or false"),
        ({"cpu_offload": "disk"}, "cpu_offload must be one of ['none', 'model', 'sequential']"),
        ({"compile": "max-autotune"}, "compile must be true or false"),
        ({"lora_scale": 3}, "lora_scale must be a number from 0.0 to 2.0"),
    ],
)
def test_bad_runtime_options_name_the_field_and_the_allowed_values(options, message):
    with pytest.raises(GeneratorConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_runtime_options(options)
    # The version API checks the same rules when the version is created.
    with pytest.raises(CheckpointRejected, match=f"generator_config.{next(iter(options))}"):
        check_overrides(options)


def test_runtime_options_are_normalised():
    runtime = parse_runtime_options({"attention_slicing": True, "torch_dtype": "bfloat16"})
    assert runtime.attention_slicing == "auto" and runtime.torch_dtype == "bfloat16"
    assert parse_runtime_options({}).as_dict() == {
        "torch_dtype": "float32",
        "attention_slicing": False,
        "vae_slicing": False,
        "vae_tiling": False,
        "cpu_offload": "none",
        "compile": False,
    }


def test_validator_records_the_runtime_options_the_loader_uses(t2i_dir):  # noqa: F811
    config = _validated(t2i_dir, overrides={"torch_dtype": "bfloat16", "vae_slicing": True})
    assert config["torch_dtype"] == "bfloat16" and config["vae_slicing"] is True
    assert config["cpu_offload"] == "none" and config["attention_slicing"] is False
    gen = load_generator(t2i_dir, device="cpu", overrides=config)
    assert gen.pipe.unet.dtype == torch.bfloat16 and gen.pipe.vae.use_slicing


def test_sd3_pipeline_without_t5_loads_with_the_validators_resolution(sd3_dir):
    config = _validated(sd3_dir)
    assert config["pipeline_class"] == "StableDiffusion3Pipeline" and config["resolution"] == 32
    images, gen = _images(sd3_dir)
    assert images.shape == (2, 32, 32, 3) and images.dtype == np.uint8
    assert gen.pipe.text_encoder_3 is None


# --- dtype -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["t2i_dir", "sd3_dir"])
def test_bfloat16_runs_on_cpu_and_stays_close_to_float32(request, fixture):
    directory = request.getfixturevalue(fixture)
    full, _ = _images(directory)
    half, gen = _images(directory, torch_dtype="bfloat16")
    assert gen.pipe.dtype == torch.bfloat16
    denoiser = gen.pipe.unet if fixture == "t2i_dir" else gen.pipe.transformer
    assert denoiser.dtype == torch.bfloat16 and gen.pipe.vae.dtype == torch.bfloat16
    assert gen.last_stats.dtype == "bfloat16"  # the reported dtype is the loaded one
    diff = np.abs(full.astype(int) - half.astype(int))
    # bf16 keeps 8 bits of mantissa: a few grey levels apart, far from unrelated images (~60).
    assert diff.mean() < 2.0 and diff.max() <= 16, (diff.mean(), diff.max())


def test_float16_on_cpu_is_refused_with_a_reason(t2i_dir):  # noqa: F811
    with pytest.raises(GeneratorConfigError, match="torch_dtype 'float16' needs a CUDA device"):
        load_generator(t2i_dir, device="cpu", overrides={"torch_dtype": "float16"})


# --- memory options ----------------------------------------------------------------------------


@pytest.mark.parametrize("slicing", [True, "max", 2])
def test_attention_slicing_gives_the_same_images(t2i_dir, slicing):  # noqa: F811
    plain, _ = _images(t2i_dir)
    sliced, gen = _images(t2i_dir, attention_slicing=slicing)
    processors = {type(p).__name__ for p in gen.pipe.unet.attn_processors.values()}
    assert processors == {"SlicedAttnProcessor"}
    # The same attention, computed slice by slice: float rounding only (at most 1 grey level).
    assert np.abs(plain.astype(int) - sliced.astype(int)).max() <= 1


def test_attention_slicing_on_a_transformer_pipeline_is_refused(sd3_dir):
    with pytest.raises(GeneratorConfigError, match="attention_slicing: StableDiffusion3Pipeline"):
        load_generator(sd3_dir, device="cpu", overrides={"attention_slicing": True})


def test_attention_slice_size_larger_than_the_heads_is_refused(t2i_dir):  # noqa: F811
    with pytest.raises(
        GeneratorConfigError, match="attention_slicing: size 64 has to be smaller or equal to 4"
    ):
        load_generator(t2i_dir, device="cpu", overrides={"attention_slicing": 64})


@pytest.mark.parametrize("fixture", ["t2i_dir", "sd3_dir"])
def test_vae_slicing_and_tiling_give_the_same_images(request, fixture):
    directory = request.getfixturevalue(fixture)
    plain, _ = _images(directory)
    sliced, gen = _images(directory, vae_slicing=True, vae_tiling=True)
    assert gen.pipe.vae.use_slicing and gen.pipe.vae.use_tiling
    # The images fit one tile; slicing decodes them one by one (float rounding only).
    assert np.abs(plain.astype(int) - sliced.astype(int)).max() <= 1


def test_cpu_offload_is_ignored_on_a_cpu_device_and_says_so(t2i_dir, caplog):  # noqa: F811
    plain, _ = _images(t2i_dir)
    with caplog.at_level(logging.WARNING, logger="models_registry.generators.diffusers_loader"):
        offloaded, gen = _images(t2i_dir, cpu_offload="model")
    assert gen.runtime.cpu_offload == "none"
    assert "cpu_offload 'model' ignored: the device is cpu" in caplog.text
    assert np.array_equal(plain, offloaded)


def test_compile_compiles_the_denoiser_in_place(t2i_dir):  # noqa: F811
    gen = load_generator(t2i_dir, device="cpu", overrides={"steps": 1, "compile": True})
    assert type(gen.pipe.unet).__name__ == "UNet2DConditionModel"  # the pipeline's type checks
    assert gen.pipe.unet._compiled_call_impl is not None  # compiled on its first call


@pytest.mark.slow
def test_compiled_denoiser_gives_the_same_images(sd3_dir):
    plain, _ = _images(sd3_dir)
    compiled, _ = _images(sd3_dir, compile=True)  # about a minute of inductor on 2 CPU cores
    assert np.abs(plain.astype(int) - compiled.astype(int)).max() <= 1


# --- LoRA adapters -----------------------------------------------------------------------------


def save_lora(directory: Path, pipeline_class, denoiser, *, seed: int = 1) -> Path:
    """A peft LoRA with random non-zero A and B on the denoiser's attention projections, saved
    with the pipeline class's `save_lora_weights` (safetensors)."""
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    torch.manual_seed(seed)
    targets = ["to_q", "to_k", "to_v", "to_out.0"]
    config = LoraConfig(r=4, lora_alpha=4, target_modules=targets, init_lora_weights=False)
    denoiser.add_adapter(config)
    name = "unet" if hasattr(denoiser.config, "cross_attention_dim") else "transformer"
    pipeline_class.save_lora_weights(
        directory,
        **{f"{name}_lora_layers": get_peft_model_state_dict(denoiser)},
        safe_serialization=True,
    )
    return directory


@pytest.fixture(scope="module")
def sd3_lora_dir(sd3_dir, tmp_path_factory) -> Path:
    from diffusers import SD3Transformer2DModel, StableDiffusion3Pipeline

    transformer = SD3Transformer2DModel.from_pretrained(sd3_dir / "transformer")
    return save_lora(tmp_path_factory.mktemp("sd3-lora"), StableDiffusion3Pipeline, transformer)


def test_lora_on_a_transformer_pipeline_changes_images_and_scale_zero_is_the_base(
    sd3_dir, sd3_lora_dir
):
    base, _ = _images(sd3_dir)

    def change(scale: float) -> float:
        overrides = {"steps": 2, "lora_scale": scale}
        gen = load_generator(sd3_dir, device="cpu", overrides=overrides, lora=sd3_lora_dir)
        return float(np.abs(gen.generate(PROMPTS, SEEDS).astype(int) - base.astype(int)).mean())

    # W x + scale × B A x: nothing at scale 0, and more the stronger the adapter.
    assert change(0.0) == 0.0
    one, two = change(1.0), change(2.0)
    assert 0.1 < one < two, (one, two)


def test_an_adapter_for_another_architecture_is_refused(sd3_dir, tmp_path):
    from diffusers import StableDiffusionPipeline

    unet_lora = save_lora(tmp_path / "unet-lora", StableDiffusionPipeline, tiny_unet())
    with pytest.raises(GeneratorConfigError, match="match no layer of the base"):
        load_generator(sd3_dir, device="cpu", overrides={"steps": 1}, lora=unet_lora)


def test_a_lora_needs_a_diffusers_base(tmp_path, sd3_lora_dir):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(GeneratorConfigError, match="needs a diffusers pipeline as its base"):
        load_generator(tmp_path, device="cpu", lora=sd3_lora_dir)
