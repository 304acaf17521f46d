"""Real checkpoints: diffusers pipeline directories (text-to-image, text-to-video, image-edit).

Loaded with `DiffusionPipeline.from_pretrained(dir, use_safetensors=True, local_files_only=True)`:
no network access, no pickled weights, no remote code. Components must come from the diffusers
or transformers libraries. Scheduler, steps, guidance scale, resolution and frames come from the
version's generator config (`overrides`: top-level `resolution`, `frames` and
`sampler: {"scheduler": "<diffusers scheduler class>", "steps": int, "guidance_scale": float}`)
and can be changed per `generate` call.

Image-conditioned pipelines (an `image` argument, e.g. `StableDiffusionInstructPix2PixPipeline`)
are image-edit generators: `generate(prompts, seeds, images=...)` passes each source image,
resized to the version's resolution, as `image=` with its instruction as the prompt; the output
has the source's size. InstructPix2Pix's `image_guidance_scale` is a sampler key too.

Unconditional pixel-space pipelines (`DDPMPipeline`: a `unet` + `scheduler`, no VAE, no prompt)
load too: they ignore the prompts and the guidance scale, generate one image per seed, and
their resolution is fixed at the UNet's `sample_size`.

Pure at import time (torch and diffusers are imported inside the functions that need them), so
the upload validator can use `pipeline_resolution` and `check_model_index` in the web process.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from models_registry.generators.measurement import GenerationMeter, GenerationStats
from models_registry.generators.protocol import GeneratorConfigError

log = logging.getLogger(__name__)

ALLOWED_LIBRARIES = {"diffusers", "transformers"}
DENOISER_FOLDERS = ("unet", "transformer")
# Component configs that decide the output resolution (paths inside the pipeline folder).
RESOLUTION_CONFIGS = tuple(f"{folder}/config.json" for folder in (*DENOISER_FOLDERS, "vae"))


def _listed_components(model_index: Mapping) -> set[str]:
    return {
        name
        for name, value in model_index.items()
        if not name.startswith("_")
        and isinstance(value, list)
        and len(value) == 2
        and value != [None, None]
    }


def pipeline_resolution(model_index: Mapping, configs: Mapping[str, Any]) -> int | None:
    """Output side in pixels of a diffusers pipeline, or None when its configs do not tell.

    `configs`: parsed JSON by path inside the pipeline folder (e.g. "unet/config.json"). The
    denoiser's (`unet` or `transformer`) square `sample_size` times the VAE's downsampling
    factor 2^(len(block_out_channels) - 1) for latent pipelines; pixel-space pipelines without a
    VAE (DDPMPipeline) generate at `sample_size` itself.
    """
    listed = _listed_components(model_index)
    sample_size = None
    for folder in DENOISER_FOLDERS:
        cfg = configs.get(f"{folder}/config.json")
        if folder not in listed or not isinstance(cfg, dict):
            continue
        size = cfg.get("sample_size")
        if isinstance(size, list | tuple) and size and all(s == size[0] for s in size):
            size = size[0]  # [h, w] with h == w
        if isinstance(size, int) and not isinstance(size, bool) and size > 0:
            sample_size = size
            break
    if sample_size is None:
        return None
    if "vae" not in listed:
        return sample_size
    vae = configs.get("vae/config.json")
    blocks = vae.get("block_out_channels") if isinstance(vae, dict) else None
    if not isinstance(blocks, list) or not blocks:
        return None
    return sample_size * 2 ** (len(blocks) - 1)


def _resolution_configs(directory: Path) -> dict[str, Any]:
    configs = {}
    for name in RESOLUTION_CONFIGS:
        path = Path(directory) / name
        if path.is_file():
            try:
                configs[name] = json.loads(path.read_text())
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise GeneratorConfigError(f"{name} is not readable JSON: {exc}") from exc
    return configs


def check_model_index(directory: Path) -> dict:
    """Read model_index.json and refuse components from other libraries or custom code."""
    path = Path(directory) / "model_index.json"
    try:
        index = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise GeneratorConfigError(f"model_index.json is not valid JSON: {exc}") from exc
    if not isinstance(index, dict) or not isinstance(index.get("_class_name"), str):
        raise GeneratorConfigError("model_index.json must name a diffusers pipeline in _class_name")
    for name, value in index.items():
        if name.startswith("_"):
            continue
        if not isinstance(value, list) or value == [None, None]:
            continue  # a plain config value (e.g. requires_safety_checker) or an absent component
        if not (len(value) == 2 and value[0] in ALLOWED_LIBRARIES):
            raise GeneratorConfigError(
                f"model_index.json component {name!r} must come from "
                f"{sorted(ALLOWED_LIBRARIES)}, got {value!r}"
            )
    if any(Path(directory).glob("*.py")):
        raise GeneratorConfigError("diffusers checkpoints must not contain Python files")
    return index


def check_sampler(sampler, *, image_guided: bool) -> None:
    """A diffusers version's ``generator_config.sampler``: an object with only ``scheduler`` (a
    diffusers scheduler class name), ``steps`` and ``guidance_scale`` (and
    ``image_guidance_scale`` for pipelines that guide on a source image, InstructPix2Pix).
    Raises GeneratorConfigError naming what is wrong; the registry runs it at upload, the loader
    at load, so a bad key is refused before any generation."""
    if not isinstance(sampler, dict):
        raise GeneratorConfigError(f"generator config sampler must be an object, got {sampler!r}")
    allowed = {"scheduler", "steps", "guidance_scale"}
    if image_guided:
        allowed.add("image_guidance_scale")
    unknown = set(sampler) - allowed
    if unknown:
        raise GeneratorConfigError(
            f"generator config sampler has unknown keys {sorted(unknown)}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )
    if sampler.get("scheduler"):
        _scheduler_class(str(sampler["scheduler"]))


def pipeline_guides_on_image(pipeline_class: str) -> bool:
    """Whether a diffusers pipeline class takes ``image_guidance_scale`` (InstructPix2Pix)."""
    import diffusers

    cls = getattr(diffusers, pipeline_class, None)
    if cls is None or not inspect.isclass(cls):
        return False
    return "image_guidance_scale" in inspect.signature(cls.__call__).parameters


def _scheduler_class(name: str):
    import diffusers

    cls = getattr(diffusers, name, None) if name.endswith("Scheduler") else None
    if cls is None or not inspect.isclass(cls):
        raise GeneratorConfigError(
            f"scheduler must be a diffusers scheduler class name (e.g. 'DDIMScheduler', "
            f"'EulerDiscreteScheduler'), got {name!r}"
        )
    return cls


# --- runtime options: how a pipeline is loaded and run (a version's generator_config keys) -----

TORCH_DTYPES = ("float32", "float16", "bfloat16")
CPU_OFFLOAD_MODES = ("none", "model", "sequential")
ATTENTION_SLICE_MODES = ("auto", "max")
# 0 leaves the base model unchanged, 1 is the adapter as trained.
LORA_SCALE_RANGE = (0.0, 2.0)
RUNTIME_KEYS = (
    "torch_dtype",
    "attention_slicing",
    "vae_slicing",
    "vae_tiling",
    "cpu_offload",
    "compile",
    "lora_scale",
)
LORA_WEIGHT_NAME = "pytorch_lora_weights.safetensors"
ADAPTER = "adapter"  # the peft adapter name a LoRA version is loaded under


@dataclass(frozen=True)
class DiffusersRuntime:
    """How a diffusers pipeline is loaded and run.

    `torch_dtype`: weights and activations ("float16" needs CUDA; "bfloat16" also runs on CPU);
    `attention_slicing`: None (off), "auto", "max" or a slice size (UNet pipelines only);
    `vae_slicing` / `vae_tiling`: decode the batch one image at a time / in tiles;
    `cpu_offload`: "model" or "sequential" keeps weights in CPU memory and moves them to the
    GPU as they run (ignored on a CPU device, where the weights already are);
    `compile`: torch.compile of the denoiser (unet or transformer), compiled on the first call;
    `lora_scale`: strength of a LoRA adapter (versions with a base version only).
    """

    torch_dtype: str = "float32"
    attention_slicing: str | int | None = None
    vae_slicing: bool = False
    vae_tiling: bool = False
    cpu_offload: str = "none"
    compile: bool = False
    lora_scale: float = 1.0

    def as_dict(self, *, lora: bool = False) -> dict:
        """The keys recorded in a version's generator config (`lora_scale` only for adapters)."""
        out = {
            "torch_dtype": self.torch_dtype,
            "attention_slicing": (
                False if self.attention_slicing is None else self.attention_slicing
            ),
            "vae_slicing": self.vae_slicing,
            "vae_tiling": self.vae_tiling,
            "cpu_offload": self.cpu_offload,
            "compile": self.compile,
        }
        if lora:
            out["lora_scale"] = self.lora_scale
        return out


def _flag(config: Mapping, key: str, where: str) -> bool:
    value = config.get(key, False)
    if not isinstance(value, bool):
        raise GeneratorConfigError(f"{where}.{key} must be true or false, got {value!r}")
    return value


def parse_runtime_options(config: Mapping, *, where: str = "generator_config") -> DiffusersRuntime:
    """The runtime keys of a generator config (others are ignored), checked and normalised.

    Device-independent: whether the worker's device can honour them is checked at load.
    Raises GeneratorConfigError naming the field and the allowed values.
    """
    dtype = config.get("torch_dtype", "float32")
    if dtype not in TORCH_DTYPES:
        raise GeneratorConfigError(
            f"{where}.torch_dtype must be one of {list(TORCH_DTYPES)}, got {dtype!r}"
        )
    slicing = config.get("attention_slicing", False)
    if slicing is True:
        slicing = "auto"
    elif slicing is False or slicing is None:
        slicing = None
    elif (
        slicing not in ATTENTION_SLICE_MODES
        if isinstance(slicing, str)
        else not isinstance(slicing, int) or slicing < 1
    ):
        raise GeneratorConfigError(
            f"{where}.attention_slicing must be true, false, {list(ATTENTION_SLICE_MODES)} or a "
            f"positive slice size, got {slicing!r}"
        )
    offload = config.get("cpu_offload", "none")
    if offload not in CPU_OFFLOAD_MODES:
        raise GeneratorConfigError(
            f"{where}.cpu_offload must be one of {list(CPU_OFFLOAD_MODES)}, got {offload!r}"
        )
    scale = config.get("lora_scale", 1.0)
    low, high = LORA_SCALE_RANGE
    if not isinstance(scale, int | float) or isinstance(scale, bool) or not low <= scale <= high:
        raise GeneratorConfigError(
            f"{where}.lora_scale must be a number from {low} to {high}, got {scale!r}"
        )
    return DiffusersRuntime(
        torch_dtype=dtype,
        attention_slicing=slicing,
        vae_slicing=_flag(config, "vae_slicing", where),
        vae_tiling=_flag(config, "vae_tiling", where),
        cpu_offload=offload,
        compile=_flag(config, "compile", where),
        lora_scale=float(scale),
    )


def load_pipeline(directory: Path, *, torch_dtype: str = "float32"):
    """`DiffusionPipeline.from_pretrained` of a checked folder: local files, safetensors only, no
    remote code, weights in `torch_dtype`. Components that model_index.json records as absent
    ([null, null], e.g. SD3 without its T5 encoder) are passed as None. Raises
    GeneratorConfigError when it cannot load."""
    import diffusers
    import torch

    absent = {
        name: None
        for name, value in check_model_index(directory).items()
        if not name.startswith("_") and value == [None, None]
    }
    dtype = getattr(torch, torch_dtype)
    try:
        pipe = diffusers.DiffusionPipeline.from_pretrained(
            str(directory),
            use_safetensors=True,
            local_files_only=True,
            trust_remote_code=False,
            dtype=dtype,
            **absent,
        )
    except (OSError, ValueError, TypeError, AttributeError, KeyError) as exc:
        raise GeneratorConfigError(f"cannot load diffusers pipeline: {exc}") from exc
    if pipe.dtype != dtype:
        raise RuntimeError(f"asked diffusers for {dtype} weights, got {pipe.dtype}")
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _lora_tensor_names(path: Path) -> list[str]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return list(handle.keys())


def load_lora_adapter(pipe, directory: Path, *, scale: float = 1.0) -> int:
    """Load `directory/pytorch_lora_weights.safetensors` onto `pipe` (peft, `load_lora_weights`)
    at strength `scale`; returns the number of LoRA tensors loaded.

    Every tensor of the file must find its layer: diffusers only warns about keys that match
    nothing, so a partly matching adapter is refused here, naming what did not fit. Raises
    GeneratorConfigError with a readable reason (wrong base, shape mismatch, not a LoRA)."""
    path = Path(directory) / LORA_WEIGHT_NAME
    if not path.is_file():
        raise GeneratorConfigError(f"the adapter has no {LORA_WEIGHT_NAME}")
    if not hasattr(pipe, "load_lora_weights"):
        raise GeneratorConfigError(
            f"the base pipeline {type(pipe).__name__} does not take LoRA adapters"
        )
    names = [n for n in _lora_tensor_names(path) if not n.endswith(".alpha")]
    try:
        pipe.load_lora_weights(str(directory), weight_name=LORA_WEIGHT_NAME, adapter_name=ADAPTER)
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        shown = "; ".join(lines[:3]) + (f" ... ({len(lines) - 3} more)" if len(lines) > 3 else "")
        raise GeneratorConfigError(
            f"the LoRA adapter does not fit the base pipeline {type(pipe).__name__}: {shown}"
        ) from exc
    loaded = _loaded_lora_names(pipe)
    if len(loaded) != len(names):
        unmatched = sorted(set(names) - loaded)
        example = f"; e.g. {unmatched[:3]}" if unmatched else ""
        raise GeneratorConfigError(
            f"the LoRA adapter does not fit the base pipeline {type(pipe).__name__}: "
            f"{len(names) - len(loaded)} of its {len(names)} tensors match no layer of the "
            f"base{example}"
        )
    pipe.set_adapters([ADAPTER], adapter_weights=[scale])
    return len(loaded)


def _loaded_lora_names(pipe) -> set[str]:
    """The adapter's loaded parameters, named as diffusers names them in a LoRA file
    (`unet.<module>.lora_A.weight`)."""
    import torch

    names = set()
    for key, module in pipe.components.items():
        if not isinstance(module, torch.nn.Module):
            continue
        for name, _ in module.named_parameters():
            if "lora_" in name and (f".{ADAPTER}." in name or name.endswith(f".{ADAPTER}")):
                names.add(f"{key}.{name.replace(f'.{ADAPTER}', '')}")
    return names


def _source_images(images: np.ndarray, n: int, size: int) -> list:
    """PIL images of the sources uint8 [N, H, W, 3], resized to size × size (bicubic)."""
    from PIL import Image

    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or len(images) != n:
        raise ValueError(f"images must be uint8 [{n}, H, W, 3], got {list(images.shape)}")
    out = []
    for image in images.astype(np.uint8):
        pil = Image.fromarray(image)
        out.append(pil if pil.size == (size, size) else pil.resize((size, size), Image.BICUBIC))
    return out


def _check_device(runtime: DiffusersRuntime, device: str) -> DiffusersRuntime:
    """What `runtime` means on `device`: float16 on a CPU is refused; offload is dropped there."""
    kind = device.split(":", 1)[0]
    if runtime.torch_dtype == "float16" and kind == "cpu":
        raise GeneratorConfigError(
            "torch_dtype 'float16' needs a CUDA device, and this worker generates on the cpu "
            "(half-precision kernels are missing or very slow there); use 'bfloat16' or "
            "'float32'"
        )
    if runtime.cpu_offload != "none" and kind != "cuda":
        # The weights already live in CPU memory: offloading moves nothing and changes no pixel.
        log.warning("cpu_offload %r ignored: the device is %s", runtime.cpu_offload, device)
        return replace(runtime, cpu_offload="none")
    return runtime


class DiffusersGenerator:
    """A diffusers pipeline behind the Generator protocol.

    Text-conditioned pipelines get the prompts, guidance scale and size. Unconditional ones
    (no `prompt` argument, e.g. DDPMPipeline) ignore the prompts and the guidance scale and
    draw one sample per seed; pipelines without `height` / `width` arguments generate at their
    fixed resolution, and asking for another one is a GeneratorConfigError.
    """

    def __init__(
        self,
        directory: Path,
        device: str = "cpu",
        overrides: dict | None = None,
        lora_directory: Path | None = None,
    ) -> None:
        overrides = dict(overrides or {})
        index = check_model_index(directory)
        # Runtime options (dtype, slicing, offload, compile, lora_scale): DiffusersRuntime.
        self.runtime = _check_device(parse_runtime_options(overrides), device)
        pipe = load_pipeline(directory, torch_dtype=self.runtime.torch_dtype)
        if lora_directory is not None:
            load_lora_adapter(pipe, lora_directory, scale=self.runtime.lora_scale)
        self.pipe = pipe
        self.device = device
        self._apply_runtime()
        params = inspect.signature(pipe.__call__).parameters
        self.task = (
            "text-to-video"
            if "num_frames" in params
            else "image-edit"
            if "image" in params
            else "text-to-image"
        )
        self.conditional = "prompt" in params
        # An editor's output has its source's size, which generate() sets.
        self.sized = ("height" in params and "width" in params) or self.task == "image-edit"
        # InstructPix2Pix guides on the text and on the source image: three rows per sample.
        self.image_guided = "image_guidance_scale" in params
        # The registry records {"sampler": {"scheduler", "steps", "guidance_scale"}, ...}.
        sampler = overrides.get("sampler") or {}
        check_sampler(sampler, image_guided=self.image_guided)
        overrides = {**overrides, **sampler}
        if overrides.get("scheduler"):
            self._set_scheduler(overrides["scheduler"])
        self.native_resolution = pipeline_resolution(index, _resolution_configs(directory))
        resolution = overrides.get("resolution") or self.native_resolution
        if resolution is None:
            raise GeneratorConfigError(
                "cannot tell the pipeline's output resolution from its configs; set "
                "generator_config.resolution on the version"
            )
        self.resolution = self._size(int(resolution))
        self.frames = int(overrides.get("frames") or (16 if self.task == "text-to-video" else 1))
        self.steps = int(overrides.get("steps") or 25)
        guidance = overrides.get("guidance_scale")
        self.guidance_scale = 5.0 if guidance is None else float(guidance)
        image_guidance = overrides.get("image_guidance_scale")
        self.image_guidance_scale = 1.5 if image_guidance is None else float(image_guidance)
        for key, value in (
            ("resolution", self.resolution),
            ("frames", self.frames),
            ("steps", self.steps),
        ):
            if value < 1:
                raise GeneratorConfigError(f"{key} must be a positive integer, got {value}")
        self.last_stats: GenerationStats | None = None
        self.sampler_param = "scheduler"  # the generate() parameter choosing the sampler

    def _apply_runtime(self) -> None:
        """Slicing, tiling, placement (device or CPU offload) and compilation, as configured."""
        import torch

        pipe, runtime, name = self.pipe, self.runtime, type(self.pipe).__name__
        if runtime.attention_slicing is not None:
            sliceable = [
                key
                for key, module in pipe.components.items()
                if isinstance(module, torch.nn.Module) and hasattr(module, "set_attention_slice")
            ]
            if not sliceable:
                raise GeneratorConfigError(
                    f"attention_slicing: {name} has no component that supports attention slicing "
                    "(UNet pipelines do; transformer pipelines already use PyTorch's "
                    "memory-efficient attention); set it to false"
                )
            try:
                pipe.enable_attention_slicing(runtime.attention_slicing)
            except ValueError as exc:
                raise GeneratorConfigError(f"attention_slicing: {exc}") from exc
        for key, method in (("vae_slicing", "enable_slicing"), ("vae_tiling", "enable_tiling")):
            if not getattr(runtime, key):
                continue
            vae = getattr(pipe, "vae", None)
            try:
                getattr(vae, method)()
            except (AttributeError, NotImplementedError) as exc:
                raise GeneratorConfigError(
                    f"{key}: {name} has no VAE that supports it ({exc}); set it to false"
                ) from exc
        if runtime.cpu_offload == "model":
            pipe.enable_model_cpu_offload(device=self.device)
        elif runtime.cpu_offload == "sequential":
            pipe.enable_sequential_cpu_offload(device=self.device)
        else:
            pipe.to(self.device)
        if runtime.compile:
            self._denoiser().compile()  # in place: the pipeline keeps its module types

    def _size(self, resolution: int) -> int:
        if not self.sized and resolution != self.native_resolution:
            raise GeneratorConfigError(
                f"resolution: {type(self.pipe).__name__} generates at its fixed "
                f"{self.native_resolution} px (the UNet's sample_size), got {resolution}"
            )
        return resolution

    def _set_scheduler(self, name: str) -> None:
        self.pipe.scheduler = _scheduler_class(name).from_config(self.pipe.scheduler.config)

    @property
    def sampler_name(self) -> str:
        """The scheduler class a call without a `scheduler` parameter uses."""
        return type(self.pipe.scheduler).__name__

    def _denoiser(self):
        """The network the sampler calls each step (`unet` or `transformer`)."""
        for name in DENOISER_FOLDERS:
            module = getattr(self.pipe, name, None)
            if module is not None:
                return module
        raise GeneratorConfigError(
            f"the pipeline has no denoiser ({' or '.join(DENOISER_FOLDERS)})"
        )

    def nfe_for_steps(
        self, steps: int, *, guidance_scale: float | None = None, scheduler: str | None = None
    ) -> int:
        """Network evaluations per sample of `generate(steps=steps, ...)`: the scheduler's own
        timesteps after `set_timesteps(steps)` (one denoiser call each; 2 per Heun step),
        doubled under classifier-free guidance (diffusers guides when guidance_scale > 1)."""
        cls = _scheduler_class(scheduler) if scheduler else type(self.pipe.scheduler)
        sampler = cls.from_config(self.pipe.scheduler.config)
        sampler.set_timesteps(steps)
        scale = self.guidance_scale if guidance_scale is None else guidance_scale
        rows = 3 if self.image_guided else 2
        return len(sampler.timesteps) * (rows if self.conditional and scale > 1.0 else 1)

    def generate(
        self,
        prompts: list[str],
        seeds: list[int],
        *,
        steps: int | None = None,
        guidance_scale: float | None = None,
        resolution: int | None = None,
        frames: int | None = None,
        scheduler: str | None = None,
        images: np.ndarray | None = None,
        image_guidance_scale: float | None = None,
    ) -> np.ndarray:
        """uint8 [N, H, W, 3] images or [N, T, H, W, 3] clips, one per (prompt, seed).

        An unconditional pipeline ignores the prompts and `guidance_scale` (sample i depends on
        seeds[i] only). An image-edit pipeline edits `images` uint8 [N, H, W, 3] (resized to the
        resolution) as the prompts say."""
        import torch

        if len(prompts) != len(seeds):
            raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
        if (images is not None) != (self.task == "image-edit"):
            raise ValueError(
                "an image-edit pipeline needs images= (one source per prompt)"
                if self.task == "image-edit"
                else f"a {self.task} pipeline takes no images to edit"
            )
        if scheduler:
            self._set_scheduler(scheduler)
        size = self._size(resolution or self.resolution)
        kwargs: dict[str, Any] = {
            "num_inference_steps": steps or self.steps,
            # CPU generators: the same seed gives the same initial noise on every device.
            "generator": [torch.Generator().manual_seed(int(s)) for s in seeds],
            "output_type": "np",
        }
        if self.conditional:
            kwargs["prompt"] = list(prompts)
            kwargs["guidance_scale"] = (
                self.guidance_scale if guidance_scale is None else guidance_scale
            )
        else:
            kwargs["batch_size"] = len(seeds)
        if self.task == "image-edit":
            kwargs["image"] = _source_images(images, len(seeds), size)
            if self.image_guided:
                kwargs["image_guidance_scale"] = (
                    self.image_guidance_scale
                    if image_guidance_scale is None
                    else image_guidance_scale
                )
        elif self.sized:
            kwargs["height"] = kwargs["width"] = size
        denoiser = self._denoiser()

        def count_rows(_module, args, module_kwargs) -> None:
            x = args[0] if args else module_kwargs.get("sample", module_kwargs.get("hidden_states"))
            meter.count(x.shape[0])

        hook = denoiser.register_forward_pre_hook(count_rows, with_kwargs=True)
        try:
            with torch.no_grad(), GenerationMeter(self.device, batch_size=len(seeds)) as meter:
                if self.task == "text-to-video":
                    kwargs["num_frames"] = frames or self.frames
                    out = np.asarray(self.pipe(**kwargs).frames)
                else:
                    out = np.asarray(self.pipe(**kwargs).images)
        finally:
            hook.remove()
        self.last_stats = meter.stats(steps=kwargs["num_inference_steps"], dtype=denoiser.dtype)
        return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)
