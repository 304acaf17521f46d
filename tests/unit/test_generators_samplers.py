"""Samplers against closed forms: for Gaussian data N(μ, s²) the optimal ε-predictor, score and
velocity are known exactly, so a correct sampler driven by them must reproduce μ and s."""

from __future__ import annotations

import math

import pytest
import torch

from models_registry.generators.samplers import (
    DDIMScheduler,
    DDPMScheduler,
    FlowMatchEulerScheduler,
    FlowMatchHeunScheduler,
    VESDEHeunScheduler,
    VESDEPredictorCorrector,
    make_scheduler,
    run_sampler,
)

MU, S = 0.5, 0.3
N, D = 500, 8


def generators(n: int = N, offset: int = 0) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(offset + i) for i in range(n)]


def exact_epsilon(scheduler: DDPMScheduler):
    def model(x: torch.Tensor, t: float) -> torch.Tensor:
        abar = float(scheduler.alphas_cumprod[round(t * scheduler.num_train_timesteps)])
        return math.sqrt(1 - abar) * (x - math.sqrt(abar) * MU) / (abar * S**2 + 1 - abar)

    return model


def exact_ve_noise(scheduler: VESDEPredictorCorrector):
    def model(x_in: torch.Tensor, t: float) -> torch.Tensor:
        sigma = scheduler.sigma(t)
        x = x_in * math.sqrt(1 + sigma**2)
        return sigma * (x - MU) / (S**2 + sigma**2)  # = -σ · score

    return model


def exact_ve_noise_at_sigma(scheduler: VESDEHeunScheduler):
    def model(x_in: torch.Tensor, t: float) -> torch.Tensor:
        sigma = scheduler.sigma_min * (scheduler.sigma_max / scheduler.sigma_min) ** t
        x = x_in * math.sqrt(1 + sigma**2)
        return sigma * (x - MU) / (S**2 + sigma**2)

    return model


def exact_velocity(x: torch.Tensor, t: float) -> torch.Tensor:
    var = (1 - t) ** 2 * S**2 + t**2
    centred = x - (1 - t) * MU
    e_x0 = MU + (1 - t) * S**2 / var * centred
    e_eps = t / var * centred
    return e_eps - e_x0


def assert_gaussian(x: torch.Tensor, mean_tol: float = 0.02, std_rtol: float = 0.06) -> None:
    assert abs(float(x.mean()) - MU) < mean_tol, float(x.mean())
    assert abs(float(x.std()) / S - 1) < std_rtol, float(x.std())


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_ddpm_ancestral_with_exact_epsilon_reproduces_the_gaussian(schedule):
    scheduler = DDPMScheduler(beta_schedule=schedule, clip_sample=False)
    x = run_sampler(exact_epsilon(scheduler), scheduler, (N, D), generators(), steps=1000)
    assert_gaussian(x)


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_ddim_with_exact_epsilon_converges_to_the_gaussian_as_steps_grow(schedule):
    scheduler = DDIMScheduler(beta_schedule=schedule, clip_sample=False)
    errors = []
    for steps in (10, 50, 250):
        x = run_sampler(exact_epsilon(scheduler), scheduler, (N, D), generators(), steps=steps)
        errors.append(abs(float(x.std()) - S))
    assert errors[0] > errors[1] > errors[2]
    assert_gaussian(x, std_rtol=0.03)


def test_ddim_is_deterministic_given_the_initial_noise_and_ddpm_is_not_ddim():
    ddim = DDIMScheduler(clip_sample=False)
    a = run_sampler(exact_epsilon(ddim), ddim, (4, D), generators(4), steps=10)
    b = run_sampler(exact_epsilon(ddim), ddim, (4, D), generators(4), steps=10)
    ddpm = DDPMScheduler(clip_sample=False)
    c = run_sampler(exact_epsilon(ddpm), ddpm, (4, D), generators(4), steps=10)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_ve_sde_predictor_corrector_with_exact_score_reproduces_the_gaussian():
    # The Langevin step size uses per-sample norms (so a sample depends only on its seed); like
    # Song et al.'s batch norms they are only accurate in high dimension, as for images.
    scheduler = VESDEPredictorCorrector(sigma_min=0.01, sigma_max=20.0, snr=0.16)
    x = run_sampler(exact_ve_noise(scheduler), scheduler, (200, 512), generators(200), steps=300)
    assert_gaussian(x, std_rtol=0.08)
    assert len(scheduler.timesteps) == 600  # one corrector + one predictor call per level


def test_ve_sde_predictor_only_is_also_consistent():
    scheduler = VESDEPredictorCorrector(sigma_max=20.0, corrector_steps=0)
    x = run_sampler(exact_ve_noise(scheduler), scheduler, (N, D), generators(), steps=300)
    assert_gaussian(x, std_rtol=0.08)


def test_ve_heun_ode_with_exact_score_maps_the_noise_onto_the_gaussian():
    # The probability-flow ODE is deterministic: it transports N(MU, S² + σ_max²) onto N(MU, S²)
    # exactly, so the error shrinks fast with steps (Heun: second order), with 2N - 1 calls.
    errors = []
    for steps in (4, 12, 40):
        scheduler = VESDEHeunScheduler(sigma_min=0.002, sigma_max=20.0)
        x = run_sampler(
            exact_ve_noise_at_sigma(scheduler), scheduler, (N, D), generators(), steps=steps
        )
        assert len(scheduler.timesteps) == 2 * steps - 1
        errors.append(abs(float(x.std()) / S - 1))
    assert errors[0] > errors[1] > errors[2] and errors[2] < 0.02, errors
    assert_gaussian(x, std_rtol=0.02)
    a = run_sampler(exact_ve_noise_at_sigma(scheduler), scheduler, (4, D), generators(4), steps=8)
    b = run_sampler(exact_ve_noise_at_sigma(scheduler), scheduler, (4, D), generators(4), steps=8)
    assert torch.equal(a, b)  # no noise after the start


def test_rectified_flow_euler_with_exact_velocity_reproduces_the_gaussian():
    x = run_sampler(exact_velocity, FlowMatchEulerScheduler(), (N, D), generators(), steps=100)
    assert_gaussian(x)


def test_heun_is_more_accurate_than_euler_at_equal_steps():
    noise_gens = generators(N, offset=7)
    euler = run_sampler(exact_velocity, FlowMatchEulerScheduler(), (N, D), noise_gens, steps=4)
    heun = run_sampler(exact_velocity, FlowMatchHeunScheduler(), (N, D), generators(N, 7), 4)
    # The exact ODE map for Gaussians is affine: x0 = μ + s ε (straight line, flow of N(0,1)).
    truth = run_sampler(exact_velocity, FlowMatchHeunScheduler(), (N, D), generators(N, 7), 200)
    assert (heun - truth).abs().max() < (euler - truth).abs().max()
    assert_gaussian(heun)


def test_make_scheduler_rejects_a_sampler_from_another_paradigm():
    with pytest.raises(ValueError, match="does not fit paradigm 'diffusion'"):
        make_scheduler("diffusion", {}, {"name": "euler"})
    with pytest.raises(ValueError, match="sampler.name must be one of"):
        make_scheduler("flow", {}, {"name": "magic"})


def test_ancestral_samplers_need_one_generator_per_sample():
    scheduler = DDPMScheduler()
    with pytest.raises(ValueError, match="one generator per item"):
        run_sampler(exact_epsilon(scheduler), scheduler, (3, D), generators(2), steps=2)
