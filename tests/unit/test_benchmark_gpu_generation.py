"""benchmarks/gpu_generation.py on a tiny pipeline: its rates, s/MP and $/MP agree with each
other and with the price table, and the timed batches exclude the warm-up."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.unit.test_generators_diffusers import save_tiny_sd

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def gpu_generation():
    spec = importlib.util.spec_from_file_location(
        "gpu_generation", ROOT / "benchmarks" / "gpu_generation.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory) -> Path:
    return save_tiny_sd(tmp_path_factory.mktemp("bench") / "tiny-sd")


def _run(module, directory: Path, **changes) -> list[dict]:
    kwargs = dict(
        sizes=[32, 64],
        device="cpu",
        dtype="float32",
        steps=1,
        batch=2,
        repeats=2,
        options={},
        price_per_hour=3.6,
    )
    return module.benchmark(directory, **{**kwargs, **changes})


def test_rows_are_consistent_per_megapixel_and_priced(gpu_generation, tiny_sd):
    rows = _run(gpu_generation, tiny_sd)
    assert [row["size"] for row in rows] == [32, 64]
    for row in rows:
        megapixels = row["size"] ** 2 / 1e6
        assert row["s_per_image"] == pytest.approx(1 / row["images_per_s"])
        assert row["s_per_mp"] == pytest.approx(row["s_per_image"] / megapixels)
        assert row["usd_per_mp"] == pytest.approx(row["s_per_mp"] * 3.6 / 3600)
        assert row["dtype"] == "float32" and row["nfe"] == 2  # 1 step, CFG pair


def test_price_comes_from_generation_prices_for_the_device(gpu_generation, tiny_sd, settings):
    settings.GENERATION_PRICES = {"cpu": 7.2, "cuda": 1.0}
    (row,) = _run(gpu_generation, tiny_sd, sizes=[32], price_per_hour=None)
    assert row["usd_per_mp"] == pytest.approx(row["s_per_mp"] * 7.2 / 3600)
    settings.GENERATION_PRICES = {"cuda": 1.0}  # no price for a CPU: no cost, not a made-up one
    (row,) = _run(gpu_generation, tiny_sd, sizes=[32], price_per_hour=None)
    assert row["usd_per_mp"] is None


def test_warm_up_call_is_not_timed(gpu_generation, tiny_sd):
    from models_registry.generators import load_generator

    calls = []

    class Counting:
        def __init__(self, generator) -> None:
            self.generator = generator

        def generate(self, prompts, seeds, **params):
            calls.append(list(seeds))
            return self.generator.generate(prompts, seeds, **params)

    generator = Counting(load_generator(tiny_sd, device="cpu", overrides={"steps": 1}))
    seconds = gpu_generation.time_batches(generator, size=32, batch=2, repeats=3, device="cpu")
    assert len(seconds) == 3 and len(calls) == 4 and all(s > 0 for s in seconds)
    assert calls[0] == [0, 1]  # the warm-up; the timed calls use fresh seeds
    assert len({tuple(c) for c in calls}) == 4
