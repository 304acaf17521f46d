"""Generation cost: NFE counted by the generators against the network's real call count and the
samplers' closed forms, the NFE sweep plan, prices, per-version summaries, the Pareto frontier."""

from __future__ import annotations

import itertools
import random
import statistics

import pytest
import torch

from models_registry.generators import load_generator
from models_registry.generators.cost import (
    GenerationRow,
    cost_per_sample,
    megapixels,
    pareto_front,
    price_for_device,
    summarise_generation,
)
from models_registry.generators.measurement import GenerationMeter, plan_nfe_sweep
from tests.unit.test_generators_diffusers import (  # noqa: F401 (fixtures)
    ddpm_dir,
    t2i_dir,
    t2v_dir,
)
from tests.unit.test_generators_native import saved, tiny

PROMPTS = ["a large red square in the center on a white background", "a small blue circle"]

# (paradigm, sampler, schedule, NFE per sample without CFG as a closed form of the steps)
SAMPLERS = {
    "ddpm": ("diffusion", {"name": "ddpm"}, {"beta_schedule": "linear"}, lambda n: n),
    "ddim": ("diffusion", {"name": "ddim"}, {"beta_schedule": "cosine"}, lambda n: n),
    "ve-pc": ("score", {"name": "ve-pc", "corrector_steps": 1}, {}, lambda n: 2 * n),
    "ve-pc-2": ("score", {"name": "ve-pc", "corrector_steps": 2}, {}, lambda n: 3 * n),
    # Heun on the VE ODE: the last step to σ = 0 is Euler (2N - 1 calls).
    "ve-heun": ("score", {"name": "ve-heun"}, {}, lambda n: 2 * n - 1),
    "euler": ("flow", {"name": "euler"}, {}, lambda n: n),
    # Heun for rectified flow corrects at t = 0 too (2N calls).
    "heun": ("flow", {"name": "heun"}, {}, lambda n: 2 * n),
    "video-euler": ("video", {"name": "euler"}, {}, lambda n: n),
}


class NetworkCalls:
    """Counts the denoiser's forward passes and rows, independently of GenerationMeter."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.calls = self.rows = 0
        self.handle = module.register_forward_pre_hook(self._hook)

    def _hook(self, _module, args) -> None:
        self.calls += 1
        self.rows += args[0].shape[0]


@pytest.mark.parametrize("guidance", [1.0, 3.0], ids=["no-cfg", "cfg"])
@pytest.mark.parametrize("steps", [1, 3])
@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_counted_nfe_is_the_networks_call_count_and_the_samplers_closed_form(
    tmp_path, name, steps, guidance
):
    paradigm, sampler, schedule, closed_form = SAMPLERS[name]
    config = tiny(paradigm, {**sampler, "steps": steps, "guidance_scale": guidance}, schedule)
    gen = load_generator(saved(tmp_path, config), device="cpu")
    calls = NetworkCalls(gen.model)
    gen.generate(PROMPTS, [0, 1])
    stats = gen.last_stats
    cfg = 2 if guidance != 1.0 else 1
    assert calls.calls == closed_form(steps)  # one batched call per timestep (CFG batched)
    assert calls.rows == len(PROMPTS) * cfg * closed_form(steps)
    assert stats.nfe == cfg * closed_form(steps) == calls.rows // len(PROMPTS)
    assert gen.nfe_for_steps(steps) == stats.nfe
    assert stats.steps == steps and stats.batch_size == 2
    assert stats.dtype == "float32" and stats.device_kind == "cpu" and stats.device_name
    assert stats.peak_memory_kind == "process_max_rss" and stats.peak_memory_bytes > 10_000_000


def test_a_call_with_another_sampler_counts_that_samplers_evaluations(tmp_path):
    config = tiny("flow", {"name": "heun", "steps": 4, "guidance_scale": 3.0})
    gen = load_generator(saved(tmp_path, config), device="cpu")
    gen.generate(PROMPTS[:1], [0], steps=2, sampler="euler")
    assert gen.last_stats.nfe == 4 == gen.nfe_for_steps(2, sampler="euler")  # 2 steps × CFG
    gen.generate(PROMPTS[:1], [0], guidance_scale=1.0)
    assert gen.last_stats.nfe == 8 == gen.nfe_for_steps(4, guidance_scale=1.0)


def test_diffusers_nfe_counts_unet_calls_with_guidance_doubling(t2i_dir):  # noqa: F811
    gen = load_generator(
        t2i_dir,
        device="cpu",
        overrides={"sampler": {"scheduler": "HeunDiscreteScheduler", "steps": 3}},
    )
    calls = NetworkCalls(gen._denoiser())
    gen.generate(PROMPTS, [0, 1], guidance_scale=4.0)
    # Heun: 2 calls per step but the last (2·3 − 1 = 5), each on the CFG-doubled batch.
    assert calls.calls == 5 and calls.rows == 5 * 2 * len(PROMPTS)
    assert gen.last_stats.nfe == 10 == gen.nfe_for_steps(3, guidance_scale=4.0)
    assert gen.last_stats.dtype == "float32" and gen.last_stats.batch_size == 2
    gen.generate(PROMPTS[:1], [0], steps=2, guidance_scale=1.0, scheduler="DDIMScheduler")
    assert (
        gen.last_stats.nfe
        == 2
        == gen.nfe_for_steps(2, guidance_scale=1.0, scheduler="DDIMScheduler")
    )


def test_text_to_video_pipeline_counts_its_unet_calls(t2v_dir):  # noqa: F811
    gen = load_generator(t2v_dir, device="cpu", overrides={"sampler": {"steps": 2}})
    calls = NetworkCalls(gen._denoiser())
    gen.generate(PROMPTS[:1], [0], guidance_scale=3.0, frames=2)
    assert calls.calls == 2 and gen.last_stats.nfe == 4 == gen.nfe_for_steps(2, guidance_scale=3.0)


def test_unconditional_diffusers_pipeline_counts_one_evaluation_per_step(ddpm_dir):  # noqa: F811
    gen = load_generator(ddpm_dir, device="cpu", overrides={"sampler": {"steps": 4}})
    gen.generate(["ignored", "ignored"], [3, 4])
    assert gen.last_stats.nfe == 4 == gen.nfe_for_steps(4)


def test_meter_refuses_a_row_count_that_is_not_whole_evaluations_per_sample():
    with GenerationMeter("cpu", batch_size=3) as meter:
        meter.count(6)
        meter.count(2)
    with pytest.raises(RuntimeError, match="8 network rows for 3 samples"):
        meter.stats(steps=1, dtype=torch.float32)


def test_nfe_sweep_plan_takes_the_most_steps_that_fit_each_budget():
    budgets = [1, 2, 4, 8, 16, 32]
    euler = plan_nfe_sweep(lambda n: n, budgets)
    assert euler == [(b, b, b) for b in budgets]
    # Heun (2 per step) under CFG: 4 per step, so budgets 1 and 2 have no point.
    assert plan_nfe_sweep(lambda n: 4 * n, budgets) == [
        (4, 1, 4),
        (8, 2, 8),
        (16, 4, 16),
        (32, 8, 32),
    ]
    # 2N - 1 (VE Heun): budget 2 gives the same single step as budget 1 and is not repeated.
    assert plan_nfe_sweep(lambda n: 2 * n - 1, budgets) == [
        (1, 1, 1),
        (4, 2, 3),
        (8, 4, 7),
        (16, 8, 15),
        (32, 16, 31),
    ]

    def capped(n: int) -> int:
        if n > 3:
            raise ValueError("steps must be between 1 and 3")
        return n

    assert plan_nfe_sweep(capped, [2, 8]) == [(2, 2, 2), (8, 3, 3)]
    with pytest.raises(ValueError, match="budgets must be >= 1"):
        plan_nfe_sweep(lambda n: n, [0, 4])


def test_nfe_sweep_plan_of_real_samplers_matches_their_counted_nfe(tmp_path):
    config = tiny("score", {"name": "ve-heun", "steps": 3, "guidance_scale": 2.0})
    gen = load_generator(saved(tmp_path, config), device="cpu")
    plan = plan_nfe_sweep(gen.nfe_for_steps, [1, 2, 4, 8])
    assert plan == [(2, 1, 2), (8, 2, 6)]  # 2 × (2N − 1) under CFG
    for _budget, steps, nfe in plan:
        gen.generate(PROMPTS[:1], [0], steps=steps)
        assert gen.last_stats.nfe == nfe


PRICES = {"cpu": 0.10, "cuda": 2.0, "H100": 2.5, "A100": 1.5, "A10": 0.75, "L4": 0.7, "L40S": 1.0}


@pytest.mark.parametrize(
    ("kind", "name", "expected"),
    [
        ("cuda", "NVIDIA H100 80GB HBM3", ("H100", 2.5)),
        ("cuda", "NVIDIA A100-SXM4-80GB", ("A100", 1.5)),
        ("cuda", "NVIDIA A10", ("A10", 0.75)),
        ("cuda", "NVIDIA L40S", ("L40S", 1.0)),
        ("cuda", "NVIDIA L4", ("L4", 0.7)),
        ("cuda", "NVIDIA GeForce GTX 1080", ("cuda", 2.0)),  # unknown GPU: the generic price
        ("cpu", "AMD EPYC 7B13", ("cpu", 0.10)),
        ("mps", "mps", None),  # no price: no cost
    ],
)
def test_a_device_takes_the_price_of_the_key_whose_words_its_name_contains(kind, name, expected):
    assert price_for_device(PRICES, device_kind=kind, device_name=name) == expected


def test_multi_word_keys_beat_their_single_words():
    prices = {"cuda": 1.0, "RTX": 0.3, "RTX 4090": 0.7}
    got = price_for_device(prices, device_kind="cuda", device_name="NVIDIA GeForce RTX 4090")
    assert got == ("RTX 4090", 0.7)


def test_cost_per_sample_megapixel_and_video_second_by_hand():
    # 1.8 s on a $2.50/h H100: 2.5 / 3600 × 1.8 = $0.00125 per image.
    assert cost_per_sample(1.8, 2.5) == pytest.approx(0.00125)
    assert megapixels(1024, 1024) == pytest.approx(1.048576)
    assert megapixels(64, 48, frames=16) == pytest.approx(0.049152)
    rows = [
        # seconds, kind, name, dtype, batch, steps, nfe, peak, width, height, frames
        GenerationRow(
            1.8, "cuda", "NVIDIA H100 80GB HBM3", "float16", 8, 25, 50, 9_000, 1000, 1000, 1
        ),
        GenerationRow(
            3.6, "cuda", "NVIDIA H100 80GB HBM3", "float16", 8, 25, 50, 7_000, 1000, 1000, 1
        ),
        GenerationRow(
            0.9, "cuda", "NVIDIA H100 80GB HBM3", "float16", 4, 25, 50, None, 1000, 1000, 1
        ),
        GenerationRow(None, "", "", "", None, None, None, None, 1000, 1000, 1),  # before recording
    ]
    s = summarise_generation(rows, prices=PRICES, fps=8)
    assert s.n == s.n_priced == 3
    assert s.seconds_median == 1.8 and s.seconds_mean == pytest.approx(2.1)
    assert s.cost_per_sample_median == pytest.approx(0.00125)
    assert s.cost_per_sample_mean == pytest.approx(2.1 * 2.5 / 3600)
    assert s.cost_per_megapixel_median == pytest.approx(0.00125)  # exactly 1 MP per image
    assert s.cost_per_video_second_median is None
    assert (s.price_key, s.price_per_hour, s.dtype, s.nfe, s.steps) == (
        "H100",
        2.5,
        "float16",
        50,
        25,
    )
    assert s.batch_size == 8 and s.mixed == ["batch_size"] and s.peak_memory_bytes == 9_000


def test_video_cost_per_second_and_unpriced_devices():
    # A 16-frame clip at 8 fps is 2 video seconds; 36 s on a $0.10/h CPU = $0.001 per clip.
    clip = GenerationRow(36.0, "cpu", "AMD EPYC", "float32", 1, 16, 48, 1, 64, 64, 16)
    s = summarise_generation([clip], prices=PRICES, fps=8)
    assert s.cost_per_sample_median == pytest.approx(0.001)
    assert s.cost_per_video_second_median == pytest.approx(0.0005)
    assert s.cost_per_megapixel_median == pytest.approx(0.001 / (64 * 64 * 16 / 1e6))
    unpriced = summarise_generation([clip], prices={"cuda": 1.0}, fps=8)
    assert unpriced.n == 1 and unpriced.n_priced == 0 and unpriced.cost_per_sample_median is None
    assert summarise_generation([], prices=PRICES, fps=8) is None


def _dominated(i: int, points) -> bool:
    ci, qi = points[i]
    return any(
        c <= ci and q >= qi and (c < ci or q > qi) for j, (c, q) in enumerate(points) if j != i
    )


def test_pareto_front_by_hand():
    points = [(0.5, 0.60), (1.0, 0.90), (0.2, 0.40), (2.0, 0.85), (0.2, 0.30), (1.0, 0.90)]
    # (2.0, 0.85) costs more than (1.0, 0.90) and is worse; (0.2, 0.30) loses to (0.2, 0.40).
    assert pareto_front(points) == [2, 0, 1, 5]
    assert pareto_front([]) == []


def test_pareto_front_matches_the_definition_on_random_points():
    rng = random.Random(7)
    for _ in range(200):
        n = rng.randint(1, 12)
        points = [(rng.choice([0.1, 0.2, 0.5, 1.0]), rng.choice([0.3, 0.5, 0.7])) for _ in range(n)]
        front = pareto_front(points)
        assert sorted(front) == [i for i in range(n) if not _dominated(i, points)]
        costs = [points[i][0] for i in front]
        qualities = [points[i][1] for i in front]
        assert costs == sorted(costs) and qualities == sorted(qualities)


def test_medians_are_over_samples_not_batches():
    rows = [
        GenerationRow(s, "cpu", "x", "float32", 2, 1, 1, None, 10, 10, 1)
        for s in itertools.chain([1.0] * 5, [9.0])
    ]
    s = summarise_generation(rows, prices=PRICES, fps=8)
    assert s.seconds_median == statistics.median([1.0] * 5 + [9.0]) == 1.0


def test_quality_cost_plot_marks_the_optimal_points_and_draws_the_frontier():
    from arena.charts import quality_cost_plot

    points = [
        {"display_name": "cheap", "cost": 1e-4, "quality": 0.6, "pareto": True},
        {"display_name": "best", "cost": 1e-2, "quality": 0.9, "pareto": True},
        {"display_name": "worse & dear", "cost": 5e-2, "quality": 0.5, "pareto": False},
    ]
    svg = quality_cost_plot(points, quality_label="Prompt agreement")
    assert svg.count('class="pareto"') == 2 and svg.count('class="dominated"') == 1
    assert "cheap ★" in svg and "worse &amp; dear ★" not in svg and "worse &amp; dear" in svg
    # The frontier is a step line through the two optimal points (3 vertices).
    frontier = svg.split('class="frontier"')[0].rsplit("<polyline points=", 1)[1]
    assert len(frontier.split('"')[1].split()) == 3
    assert ">$0.0001<" in svg and ">$0.01<" in svg  # decade ticks of the log axis
    assert quality_cost_plot([], quality_label="x") == ""


def test_steps_sweep_plot_puts_nfe_on_a_log2_axis():
    from arena.charts import steps_sweep_plot

    series = {
        "v1 · euler": [
            {"nfe": n, "steps": n, "value": v, "lower": v - 0.05, "upper": v + 0.05}
            for n, v in ((1, 0.9), (2, 0.95), (32, 0.96))
        ],
        "v1 · heun": [{"nfe": 4, "steps": 1, "value": None}],  # failed point: left out
    }
    svg = steps_sweep_plot(series, quality_label="Prompt agreement ↑")
    for tick in (1, 2, 4, 8, 16, 32):
        assert f">{tick}</text>" in svg
    assert "v1 · heun" not in svg and svg.count("<circle") == 3
    assert "0.9 at NFE 1, 1 steps" in svg
    xs = [float(c.split('cx="')[1].split('"')[0]) for c in svg.split("<circle")[1:]]
    # log2 spacing: NFE 2 -> 32 is four times NFE 1 -> 2.
    assert (xs[2] - xs[1]) == pytest.approx(4 * (xs[1] - xs[0]), rel=0.01)
