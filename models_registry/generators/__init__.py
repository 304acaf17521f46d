"""Pure-torch generators: the Generator protocol, reference diffusion / score / flow / video
networks and samplers, the native checkpoint format and the diffusers-pipeline loader.

No Django imports here: the sampling task and the registry call into this package.
"""

from __future__ import annotations

from pathlib import Path

from models_registry.generators.protocol import Generator, GeneratorConfigError


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_generator(
    directory: Path,
    device: str | None = None,
    overrides: dict | None = None,
    lora: Path | None = None,
) -> Generator:
    """Load a checkpoint directory: diffusers when it has `model_index.json`, native when it has
    `config.json` + `model.safetensors`. `overrides` is a version's generator config (steps,
    guidance_scale, sampler / scheduler, resolution, frames; for diffusers also torch_dtype,
    attention_slicing, vae_slicing, vae_tiling, cpu_offload, compile, lora_scale) applied as
    generation defaults. `lora`: a folder with `pytorch_lora_weights.safetensors` loaded onto the
    diffusers pipeline in `directory` (its base). Raises GeneratorConfigError with a readable
    reason when the directory cannot be loaded."""
    directory = Path(directory)
    device = device or default_device()
    if not directory.is_dir():
        raise GeneratorConfigError(f"checkpoint directory {directory} does not exist")
    if (directory / "model_index.json").is_file():
        from models_registry.generators.diffusers_loader import DiffusersGenerator

        return DiffusersGenerator(
            directory, device=device, overrides=overrides, lora_directory=lora
        )
    if lora is not None:
        raise GeneratorConfigError(
            f"{directory.name}: a LoRA adapter needs a diffusers pipeline as its base"
        )
    if (directory / "config.json").is_file():
        from models_registry.generators.native import load_native

        return load_native(directory, device=device, overrides=overrides)
    raise GeneratorConfigError(
        f"{directory.name}: expected model_index.json (a diffusers pipeline) or config.json + "
        "model.safetensors (native format)"
    )


__all__ = ["Generator", "GeneratorConfigError", "default_device", "load_generator"]
