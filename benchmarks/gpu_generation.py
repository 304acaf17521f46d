"""Generation speed and cost of a diffusers pipeline: images/s, s/MP and $/MP by resolution.

    .venv/bin/python benchmarks/gpu_generation.py /models/sdxl-base          # CUDA: 512, 1024 px
        [--sizes 512 1024] [--dtype bfloat16] [--steps 20] [--batch 1] [--repeats 3]
        [--options '{"vae_tiling": true}'] [--price-per-hour 2.50]
    .venv/bin/python benchmarks/gpu_generation.py                             # no CUDA: tiny ones

Loads the pipeline folder through `load_generator` (the loader workers use, with the version
options `torch_dtype`, `steps` and any `--options`), generates one warm-up batch per size (not
timed: CUDA kernels, cuDNN autotuning, torch.compile), then times `--repeats` batches with
`torch.cuda.synchronize()` on both sides and reports the median. Prices come from
GENERATION_PRICES in config/settings.py ($ per device-hour, matched on the device's name as the
cost columns of the leaderboard do) unless `--price-per-hour` is given.

Without CUDA and without a folder it builds the tests' tiny random pipelines (an SD-like UNet
pipeline and an SD3 transformer pipeline, tests/unit/test_generators_diffusers_runtime.py) and
runs them at 64 and 128 px, so the script runs on any CI machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PROMPT = "a photograph of a red fox in the snow, detailed, golden hour"


def settings_prices() -> dict[str, float]:
    """GENERATION_PRICES from the project's settings ($ per device-hour)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.conf import settings

    return dict(settings.GENERATION_PRICES)


def time_batches(generator, *, size: int, batch: int, repeats: int, device: str) -> list[float]:
    """Seconds of each of `repeats` timed `generate` calls of `batch` images at `size` px, after
    one untimed warm-up call; CUDA work is synchronised before and after each call."""
    import torch

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    prompts = [PROMPT] * batch
    generator.generate(prompts, list(range(batch)), resolution=size)  # warm-up, not timed
    seconds = []
    for repeat in range(repeats):
        seeds = [1000 * (repeat + 1) + i for i in range(batch)]
        sync()
        started = time.perf_counter()
        generator.generate(prompts, seeds, resolution=size)
        sync()
        seconds.append(time.perf_counter() - started)
    return seconds


def benchmark(
    directory: Path,
    *,
    sizes: list[int],
    device: str,
    dtype: str,
    steps: int,
    batch: int,
    repeats: int,
    options: dict,
    price_per_hour: float | None,
) -> list[dict]:
    """One row per size: images/s, s/MP, $/MP (None without a price), NFE, peak memory."""
    from models_registry.generators import load_generator
    from models_registry.generators.cost import megapixels, price_for_device
    from models_registry.generators.measurement import device_name

    name = device_name(device)
    kind = device.split(":", 1)[0]
    price_key = "--price-per-hour"
    if price_per_hour is None:
        found = price_for_device(settings_prices(), device_kind=kind, device_name=name)
        price_key, price_per_hour = found if found else ("none", None)
    started = time.perf_counter()
    generator = load_generator(
        directory, device=device, overrides={"torch_dtype": dtype, "steps": steps, **options}
    )
    load_seconds = time.perf_counter() - started
    print(
        f"\n{directory.name}: {type(generator.pipe).__name__}, {dtype}, {steps} steps, batch "
        f"{batch}, on {name} ({kind}); loaded in {load_seconds:.1f} s; price "
        + (f"${price_per_hour:.2f}/h ({price_key})" if price_per_hour is not None else "unknown")
    )
    rows = []
    for size in sizes:
        seconds = statistics.median(
            time_batches(generator, size=size, batch=batch, repeats=repeats, device=device)
        )
        mp = megapixels(size, size) * batch
        per_mp = seconds / mp
        stats = generator.last_stats
        row = {
            "pipeline": directory.name,
            "size": size,
            "dtype": stats.dtype if stats else dtype,
            "images_per_s": batch / seconds,
            "s_per_image": seconds / batch,
            "s_per_mp": per_mp,
            "usd_per_mp": None if price_per_hour is None else per_mp * price_per_hour / 3600.0,
            "nfe": stats.nfe if stats else None,
            "peak_memory_gib": (stats.peak_memory_bytes or 0) / 1024**3 if stats else None,
            "peak_memory_kind": stats.peak_memory_kind if stats else "",
        }
        rows.append(row)
        cost = "n/a" if row["usd_per_mp"] is None else f"${row['usd_per_mp']:.6f}"
        print(
            f"  {size:5d} px: {row['images_per_s']:8.3f} images/s  {row['s_per_mp']:8.3f} s/MP  "
            f"{cost}/MP  NFE {row['nfe']}  peak {row['peak_memory_gib']:.2f} GiB "
            f"({row['peak_memory_kind']})"
        )
    return rows


def build_tiny_pipelines(root: Path) -> list[Path]:
    """The tests' tiny SD-like and SD3 pipelines, saved under `root`."""
    from tests.unit.test_generators_diffusers import save_tiny_sd
    from tests.unit.test_generators_diffusers_runtime import save_tiny_sd3

    return [save_tiny_sd(root / "tiny-sd"), save_tiny_sd3(root / "tiny-sd3")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pipeline", nargs="?", type=Path, help="a diffusers pipeline folder")
    parser.add_argument("--sizes", type=int, nargs="+", help="px (default 512 1024; tiny: 64 128)")
    parser.add_argument("--dtype", default="bfloat16", choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--steps", type=int, default=None, help="default 20 (tiny: 4)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default=None, help="default cuda when available, else cpu")
    parser.add_argument("--options", default="{}", help="more generator_config keys, as JSON")
    parser.add_argument("--price-per-hour", type=float, default=None)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    options = json.loads(args.options)
    tiny = args.pipeline is None
    if tiny and device.startswith("cuda"):
        parser.error("give a diffusers pipeline folder to benchmark on CUDA")
    with tempfile.TemporaryDirectory(prefix="gpu-generation-") as tmp:
        folders = build_tiny_pipelines(Path(tmp)) if tiny else [args.pipeline]
        rows = []
        for folder in folders:
            rows += benchmark(
                folder,
                sizes=args.sizes or ([64, 128] if tiny else [512, 1024]),
                device=device,
                dtype=args.dtype,
                steps=args.steps or (4 if tiny else 20),
                batch=args.batch,
                repeats=args.repeats,
                options=options,
                price_per_hour=args.price_per_hour,
            )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
