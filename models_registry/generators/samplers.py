"""Samplers with the diffusers scheduler shape: `set_timesteps(n)`, then for each `t` in
`timesteps`: `scale_model_input(sample, t)`, the network, and `step(model_output, t, sample)`.

A network sees `model_time(t)`, the paradigm's continuous time in [0, 1]. Schedulers that evaluate
the network twice per step (Heun, predictor–corrector) repeat timesteps in `timesteps` and keep
their state between calls, as diffusers' Heun scheduler does. Noise comes from one
`torch.Generator` per sample, so a sample depends only on its own seed.

Conventions (x0 = data in [-1, 1], ε ~ N(0, I)):
- diffusion (DDPM): x_t = sqrt(ᾱ_t) x0 + sqrt(1 - ᾱ_t) ε, network predicts ε;
- score (VE SDE): x_σ = x0 + σ ε with σ(t) = σ_min (σ_max/σ_min)^t, network sees
  x / sqrt(1 + σ²) and predicts ε, i.e. score = -output / σ;
- flow (rectified flow): x_t = (1 - t) x0 + t ε, network predicts the velocity ε - x0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from models_registry.generators.native_config import (  # noqa: F401 (re-exported)
    SAMPLER_OPTIONS,
    SAMPLER_PARADIGMS,
    SCHEDULE_KEYS,
)

Denoiser = Callable[[torch.Tensor, float], torch.Tensor]


@dataclass
class SchedulerOutput:
    prev_sample: torch.Tensor


def randn_per_item(
    shape: Sequence[int], generators: Sequence[torch.Generator], device: torch.device | str
) -> torch.Tensor:
    """Standard normal float32 `shape` whose i-th item is drawn from `generators[i]` (on CPU, so
    the same seed gives the same noise on every device)."""
    if len(generators) != shape[0]:
        raise ValueError(f"need one generator per item: {len(generators)} for {shape[0]}")
    noise = [torch.randn(tuple(shape[1:]), generator=g, dtype=torch.float32) for g in generators]
    return torch.stack(noise).to(device)


def _per_item(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.reshape(-1, *([1] * (like.dim() - 1)))


class DDPMScheduler:
    """DDPM ancestral sampler (Ho et al. 2020) over ε-prediction, "trailing" timestep spacing."""

    order = 1
    init_noise_sigma = 1.0

    def __init__(
        self,
        num_train_timesteps: int = 1000,
        beta_schedule: str = "linear",
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
        clip_sample: bool = True,
    ) -> None:
        self.num_train_timesteps = num_train_timesteps
        self.clip_sample = clip_sample
        self.alphas_cumprod = diffusion_alphas_cumprod(
            num_train_timesteps, beta_schedule, beta_start, beta_end
        )
        self.timesteps = torch.arange(num_train_timesteps - 1, -1, -1, dtype=torch.float64)

    def set_timesteps(self, num_inference_steps: int) -> None:
        if not 1 <= num_inference_steps <= self.num_train_timesteps:
            raise ValueError(
                f"steps must be between 1 and {self.num_train_timesteps}, got {num_inference_steps}"
            )
        ratio = self.num_train_timesteps / num_inference_steps
        steps = torch.round(torch.arange(self.num_train_timesteps, 0, -ratio)) - 1
        self.timesteps = steps.to(torch.float64)

    def scale_model_input(self, sample: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        return sample

    def model_time(self, t: torch.Tensor | float) -> float:
        return float(t) / self.num_train_timesteps

    def _prev(self, t: float) -> int:
        idx = int((self.timesteps == t).nonzero()[0, 0])
        return int(self.timesteps[idx + 1]) if idx + 1 < len(self.timesteps) else -1

    def _x0(self, eps: torch.Tensor, t: int, sample: torch.Tensor) -> torch.Tensor:
        abar = float(self.alphas_cumprod[t])
        x0 = (sample - math.sqrt(1 - abar) * eps) / math.sqrt(abar)
        return x0.clamp(-1, 1) if self.clip_sample else x0

    def step(
        self,
        model_output: torch.Tensor,
        t: torch.Tensor | float,
        sample: torch.Tensor,
        generator: Sequence[torch.Generator] | None = None,
    ) -> SchedulerOutput:
        t_int, prev = int(t), self._prev(float(t))
        abar = float(self.alphas_cumprod[t_int])
        abar_prev = float(self.alphas_cumprod[prev]) if prev >= 0 else 1.0
        beta = 1 - abar / abar_prev
        x0 = self._x0(model_output, t_int, sample)
        mean = (math.sqrt(abar_prev) * beta / (1 - abar)) * x0 + (
            math.sqrt(1 - beta) * (1 - abar_prev) / (1 - abar)
        ) * sample
        if prev < 0:
            return SchedulerOutput(mean)
        variance = (1 - abar_prev) / (1 - abar) * beta
        noise = randn_per_item(sample.shape, _need(generator), sample.device)
        return SchedulerOutput(mean + math.sqrt(variance) * noise)


class DDIMScheduler(DDPMScheduler):
    """DDIM (Song et al. 2021): deterministic for eta = 0, DDPM-like for eta = 1."""

    def __init__(self, eta: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.eta = eta

    def step(
        self,
        model_output: torch.Tensor,
        t: torch.Tensor | float,
        sample: torch.Tensor,
        generator: Sequence[torch.Generator] | None = None,
    ) -> SchedulerOutput:
        t_int, prev = int(t), self._prev(float(t))
        abar = float(self.alphas_cumprod[t_int])
        abar_prev = float(self.alphas_cumprod[prev]) if prev >= 0 else 1.0
        x0 = self._x0(model_output, t_int, sample)
        # Re-derive ε from the (possibly clipped) x0 so that both stay consistent.
        eps = (sample - math.sqrt(abar) * x0) / math.sqrt(1 - abar)
        sigma = self.eta * math.sqrt((1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev))
        prev_sample = math.sqrt(abar_prev) * x0 + math.sqrt(max(1 - abar_prev - sigma**2, 0)) * eps
        if sigma > 0 and prev >= 0:
            prev_sample = prev_sample + sigma * randn_per_item(
                sample.shape, _need(generator), sample.device
            )
        return SchedulerOutput(prev_sample)


def diffusion_alphas_cumprod(
    num_train_timesteps: int = 1000,
    beta_schedule: str = "linear",
    beta_start: float = 1e-4,
    beta_end: float = 0.02,
) -> torch.Tensor:
    """ᾱ_t float64 [T] for the linear (Ho et al.) or cosine (Nichol & Dhariwal) schedule."""
    if beta_schedule == "linear":
        betas = torch.linspace(beta_start, beta_end, num_train_timesteps, dtype=torch.float64)
    elif beta_schedule == "cosine":
        s = 0.008
        steps = torch.arange(num_train_timesteps + 1, dtype=torch.float64) / num_train_timesteps
        f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
        betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)
    else:
        raise ValueError(f"beta_schedule must be 'linear' or 'cosine', got {beta_schedule!r}")
    return torch.cumprod(1 - betas, dim=0)


class VESDEPredictorCorrector:
    """Predictor–corrector sampler for the variance-exploding SDE (Song et al. 2021):
    reverse-diffusion predictor and `corrector_steps` Langevin corrector steps per noise level.
    The final predictor step returns the noise-free mean (denoising at σ → 0)."""

    order = 1

    def __init__(
        self,
        sigma_min: float = 0.01,
        sigma_max: float = 25.0,
        snr: float = 0.16,
        corrector_steps: int = 1,
        eps: float = 1e-5,
    ) -> None:
        self.sigma_min, self.sigma_max = sigma_min, sigma_max
        self.snr, self.corrector_steps, self.eps = snr, corrector_steps, eps
        self.init_noise_sigma = sigma_max
        self.set_timesteps(100)

    def sigma(self, t: torch.Tensor | float) -> float:
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** float(t)

    def set_timesteps(self, num_inference_steps: int) -> None:
        if num_inference_steps < 1:
            raise ValueError(f"steps must be at least 1, got {num_inference_steps}")
        levels = torch.linspace(1.0, self.eps, num_inference_steps, dtype=torch.float64)
        self.levels = levels
        self.timesteps = levels.repeat_interleave(self.corrector_steps + 1)
        self._index = 0

    def scale_model_input(self, sample: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        return sample / math.sqrt(1 + self.sigma(t) ** 2)

    def model_time(self, t: torch.Tensor | float) -> float:
        return float(t)

    def step(
        self,
        model_output: torch.Tensor,
        t: torch.Tensor | float,
        sample: torch.Tensor,
        generator: Sequence[torch.Generator] | None = None,
    ) -> SchedulerOutput:
        gens = _need(generator)
        sigma = self.sigma(t)
        score = -model_output / sigma
        level, phase = divmod(self._index, self.corrector_steps + 1)
        self._index += 1
        noise = randn_per_item(sample.shape, gens, sample.device)
        if phase < self.corrector_steps:  # Langevin corrector at this noise level
            dims = tuple(range(1, sample.dim()))
            grad_norm = score.pow(2).sum(dims).sqrt()
            noise_norm = noise.pow(2).sum(dims).sqrt()
            step_size = 2 * (self.snr * noise_norm / grad_norm.clamp_min(1e-12)) ** 2
            step_size = _per_item(step_size, sample)
            return SchedulerOutput(sample + step_size * score + (2 * step_size).sqrt() * noise)
        last = level + 1 >= len(self.levels)
        sigma_next = 0.0 if last else self.sigma(self.levels[level + 1])
        var = sigma**2 - sigma_next**2
        mean = sample + var * score
        return SchedulerOutput(mean if last else mean + math.sqrt(var) * noise)


class VESDEHeunScheduler:
    """Karras et al. (2022) deterministic sampler for the variance-exploding score model: Heun's
    method on the probability-flow ODE dx/dσ = (x - D(x; σ)) / σ, where the network's noise
    estimate is exactly that derivative (D = x - σ·output). Noise levels follow EDM's schedule
    σ_i = (σ_max^(1/ρ) + i/(N-1) (σ_min^(1/ρ) - σ_max^(1/ρ)))^ρ, then σ_N = 0; the last step is
    Euler. 2N - 1 network calls for N levels, no noise drawn after the start."""

    order = 2

    def __init__(self, sigma_min: float = 0.01, sigma_max: float = 25.0, rho: float = 7.0):
        self.sigma_min, self.sigma_max, self.rho = sigma_min, sigma_max, rho
        self.init_noise_sigma = sigma_max
        self.set_timesteps(20)

    def set_timesteps(self, num_inference_steps: int) -> None:
        if num_inference_steps < 1:
            raise ValueError(f"steps must be at least 1, got {num_inference_steps}")
        n, r = num_inference_steps, 1.0 / self.rho
        ramp = torch.linspace(0, 1, n, dtype=torch.float64)
        hi, lo = self.sigma_max**r, self.sigma_min**r
        sigmas = (hi + ramp * (lo - hi)) ** self.rho if n > 1 else torch.tensor([self.sigma_max])
        self.sigmas = torch.cat([sigmas.to(torch.float64), torch.zeros(1, dtype=torch.float64)])
        # [σ0, σ1, σ1, σ2, ..., σ_{N-1}]: the predictor at σ_i, the corrector at σ_{i+1} > 0.
        self.timesteps = torch.cat(
            [torch.stack([self.sigmas[:-2], self.sigmas[1:-1]], dim=1).flatten(), sigmas[-1:]]
        )
        self._index = 0
        self._first: tuple[torch.Tensor, torch.Tensor] | None = None

    def scale_model_input(self, sample: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        return sample / math.sqrt(1 + float(sigma) ** 2)

    def model_time(self, sigma: torch.Tensor | float) -> float:
        """The network's time input t = log(σ/σ_min) / log(σ_max/σ_min), as in training."""
        return math.log(float(sigma) / self.sigma_min) / math.log(self.sigma_max / self.sigma_min)

    def step(
        self,
        model_output: torch.Tensor,
        t: torch.Tensor | float,
        sample: torch.Tensor,
        generator: Sequence[torch.Generator] | None = None,
    ) -> SchedulerOutput:
        sigma, sigma_next = float(self.sigmas[self._index]), float(self.sigmas[self._index + 1])
        if self._first is None:
            euler = sample + (sigma_next - sigma) * model_output
            if sigma_next == 0.0:  # the last step: Euler to the data
                self._index += 1
                return SchedulerOutput(euler)
            self._first = (sample, model_output)
            return SchedulerOutput(euler)
        start, d1 = self._first
        self._first = None
        self._index += 1
        return SchedulerOutput(start + (sigma_next - sigma) * 0.5 * (d1 + model_output))


class FlowMatchEulerScheduler:
    """Euler ODE sampler for rectified flow from t = 1 (noise) to t = 0 (data).

    `shift` > 1 spends more steps at high noise (SD3's time shift t' = s t / (1 + (s - 1) t)).
    """

    order = 1
    init_noise_sigma = 1.0

    def __init__(self, shift: float = 1.0) -> None:
        self.shift = shift
        self.set_timesteps(20)

    def _levels(self, n: int) -> torch.Tensor:
        if n < 1:
            raise ValueError(f"steps must be at least 1, got {n}")
        t = torch.linspace(1.0, 0.0, n + 1, dtype=torch.float64)
        return self.shift * t / (1 + (self.shift - 1) * t)

    def set_timesteps(self, num_inference_steps: int) -> None:
        self.levels = self._levels(num_inference_steps)
        self.timesteps = self.levels[:-1].clone()
        self._index = 0

    def scale_model_input(self, sample: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        return sample

    def model_time(self, t: torch.Tensor | float) -> float:
        return float(t)

    def step(
        self,
        model_output: torch.Tensor,
        t: torch.Tensor | float,
        sample: torch.Tensor,
        generator: Sequence[torch.Generator] | None = None,
    ) -> SchedulerOutput:
        dt = float(self.levels[self._index + 1] - self.levels[self._index])
        self._index += 1
        return SchedulerOutput(sample + dt * model_output)


class FlowMatchHeunScheduler(FlowMatchEulerScheduler):
    """Heun's second-order ODE sampler for rectified flow (two network calls per step)."""

    order = 2

    def set_timesteps(self, num_inference_steps: int) -> None:
        self.levels = self._levels(num_inference_steps)
        # [t0, t1, t1, t2, t2, ..., t_{n-1}, t_n]: predictor at t_i, corrector at t_{i+1}.
        pairs = torch.stack([self.levels[:-1], self.levels[1:]], dim=1)
        self.timesteps = pairs.flatten()
        self._index = 0
        self._first: tuple[torch.Tensor, torch.Tensor] | None = None

    def step(
        self,
        model_output: torch.Tensor,
        t: torch.Tensor | float,
        sample: torch.Tensor,
        generator: Sequence[torch.Generator] | None = None,
    ) -> SchedulerOutput:
        dt = float(self.levels[self._index + 1] - self.levels[self._index])
        if self._first is None:
            self._first = (sample, model_output)
            return SchedulerOutput(sample + dt * model_output)
        start, v1 = self._first
        self._first = None
        self._index += 1
        return SchedulerOutput(start + dt * 0.5 * (v1 + model_output))


def _need(generator: Sequence[torch.Generator] | None) -> Sequence[torch.Generator]:
    if generator is None:
        raise ValueError("this sampler draws noise: pass one torch.Generator per sample")
    return generator


# Sampler name -> (class, paradigms whose network output it understands).
SAMPLERS: dict[str, tuple[type, tuple[str, ...]]] = {
    name: (cls, SAMPLER_PARADIGMS[name])
    for name, cls in {
        "ddpm": DDPMScheduler,
        "ddim": DDIMScheduler,
        "ve-pc": VESDEPredictorCorrector,
        "ve-heun": VESDEHeunScheduler,
        "euler": FlowMatchEulerScheduler,
        "heun": FlowMatchHeunScheduler,
    }.items()
}


def make_scheduler(paradigm: str, schedule: dict, sampler: dict):
    """Scheduler for a sampler config {"name", options...} and the model's training schedule."""
    name = sampler.get("name")
    if name not in SAMPLERS:
        raise ValueError(f"sampler.name must be one of {sorted(SAMPLERS)}, got {name!r}")
    cls, paradigms = SAMPLERS[name]
    if paradigm not in paradigms:
        raise ValueError(
            f"sampler {name!r} does not fit paradigm {paradigm!r} (fits {', '.join(paradigms)})"
        )
    options = {k: v for k, v in sampler.items() if k in SAMPLER_OPTIONS[name]}
    return cls(**{**schedule, **options})


@torch.no_grad()
def run_sampler(
    denoiser: Denoiser,
    scheduler,
    shape: Sequence[int],
    generators: Sequence[torch.Generator],
    steps: int,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Draw samples float32 `shape` by integrating `denoiser(model_input, model_time)` from noise."""
    scheduler.set_timesteps(steps)
    x = randn_per_item(shape, generators, device) * scheduler.init_noise_sigma
    for t in scheduler.timesteps:
        out = denoiser(scheduler.scale_model_input(x, t), scheduler.model_time(t))
        x = scheduler.step(out, t, x, generator=generators).prev_sample
    return x
