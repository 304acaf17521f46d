"""Training losses of the reference paradigms and one training loop for all of them.

Losses take `net(x_in, t [B], text [B, D]) -> output` and clean data x0 in [-1, 1]; they use the
same conventions as the samplers (see samplers.py), so a paradigm is a loss plus a sampler.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from models_registry.generators.samplers import diffusion_alphas_cumprod

Net = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def _expand(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.reshape(-1, *([1] * (like.dim() - 1)))


def epsilon_prediction_loss(
    net: Net,
    x0: torch.Tensor,
    text: torch.Tensor,
    alphas_cumprod: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """DDPM "simple" loss: E ||ε_θ(sqrt(ᾱ_t) x0 + sqrt(1-ᾱ_t) ε, t) - ε||², t ~ U{0..T-1}."""
    steps = len(alphas_cumprod)
    t = torch.randint(0, steps, (x0.shape[0],), generator=generator).to(x0.device)
    abar = _expand(alphas_cumprod.to(x0.device, torch.float32)[t], x0)
    eps = torch.randn(x0.shape, generator=generator).to(x0.device)
    x_t = abar.sqrt() * x0 + (1 - abar).sqrt() * eps
    return (net(x_t, t.float() / steps, text) - eps).pow(2).mean()


def denoising_score_matching_loss(
    net: Net,
    x0: torch.Tensor,
    text: torch.Tensor,
    sigma_min: float,
    sigma_max: float,
    generator: torch.Generator | None = None,
    eps: float = 1e-5,
    log_sigma: tuple[float, float] | None = None,
) -> torch.Tensor:
    """Denoising score matching for the VE SDE with weight λ(σ) = σ²:
    E ||σ s_θ(x0 + σz, σ) + z||², where the network outputs -σ s_θ (the noise estimate).

    σ is log-uniform on [σ_min, σ_max] (Song et al.), or with `log_sigma` = (mean, std)
    log-normal clamped to that range (Karras et al. 2022's EDM training distribution), which
    spends the training on the noise levels that decide what a sample shows. The network's
    time input is t = log(σ/σ_min) / log(σ_max/σ_min) either way, as the sampler expects."""
    n = x0.shape[0]
    if log_sigma is None:
        t = torch.rand(n, generator=generator).to(x0.device) * (1 - eps) + eps
    else:
        mean, std = log_sigma
        log_s = mean + std * torch.randn(n, generator=generator).to(x0.device)
        lo, hi = math.log(sigma_min), math.log(sigma_max)
        t = ((log_s.clamp(lo, hi) - lo) / (hi - lo)).clamp_min(eps)
    sigma = _expand(sigma_min * (sigma_max / sigma_min) ** t, x0)
    z = torch.randn(x0.shape, generator=generator).to(x0.device)
    x = x0 + sigma * z
    return (net(x / (1 + sigma**2).sqrt(), t, text) - z).pow(2).mean()


def logit_normal_times(
    n: int, generator: torch.Generator | None = None, mean: float = 0.0, std: float = 1.0
) -> torch.Tensor:
    """t = sigmoid(N(mean, std²)) float [n]: favours the middle of [0, 1] (SD3)."""
    return torch.sigmoid(mean + std * torch.randn(n, generator=generator))


def flow_matching_loss(
    net: Net,
    x0: torch.Tensor,
    text: torch.Tensor,
    generator: torch.Generator | None = None,
    noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """Conditional flow matching on the straight path x_t = (1-t) x0 + t ε, target v = ε - x0,
    with logit-normal t. Passing `noise` coupled to x0 (reflow pairs) trains a rectified flow."""
    t = logit_normal_times(x0.shape[0], generator).to(x0.device)
    if noise is None:
        noise = torch.randn(x0.shape, generator=generator).to(x0.device)
    tt = _expand(t, x0)
    x_t = (1 - tt) * x0 + tt * noise
    return (net(x_t, t, text) - (noise - x0)).pow(2).mean()


class EMA:
    """Exponential moving average of parameters with the usual warm-up (decay grows with steps)."""

    def __init__(self, module: nn.Module, decay: float = 0.999) -> None:
        self.module = copy.deepcopy(module).eval().requires_grad_(False)
        self.decay = decay
        self.updates = 0

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for ema_p, p in zip(self.module.parameters(), module.parameters(), strict=True):
            ema_p.lerp_(p.detach(), 1 - d)


@dataclass
class TrainingPlan:
    """What and how long to train. `paradigm` picks the loss; `pairs` (noise, data) for reflow."""

    paradigm: str
    steps: int
    batch_size: int = 64
    lr: float = 2e-3
    caption_dropout: float = 0.1
    seed: int = 0
    ema_decay: float = 0.999
    schedule: dict = field(default_factory=dict)
    log_sigma: tuple[float, float] | None = None  # score models: log-normal σ (mean, std)


class TextConditionedDenoiser(nn.Module):
    """Caption encoder + denoising network, trained jointly; what native checkpoints store."""

    def __init__(self, text_encoder: nn.Module, net: nn.Module) -> None:
        super().__init__()
        self.text_encoder = text_encoder
        self.denoiser = net

    def encode(self, captions: Sequence[str], device: torch.device | str) -> torch.Tensor:
        return self.text_encoder(self.text_encoder.tokenize(list(captions)).to(device))

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        text: torch.Tensor,
        source: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return self.denoiser(x, t, text, source=source)


def to_model_space(pixels: np.ndarray) -> torch.Tensor:
    """uint8 [N, H, W, 3] or [N, T, H, W, 3] -> float32 [N, 3, H, W] / [N, T, 3, H, W] in [-1, 1]."""
    x = torch.from_numpy(pixels).float() / 127.5 - 1.0
    return x.movedim(-1, -3).contiguous()


def to_pixels(x: torch.Tensor) -> np.ndarray:
    """Inverse of to_model_space: float in [-1, 1] -> uint8 channels-last."""
    x = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.movedim(-3, -1).cpu().numpy()


def train(
    model: TextConditionedDenoiser,
    data: torch.Tensor,
    captions: Sequence[str],
    plan: TrainingPlan,
    pairs_noise: torch.Tensor | None = None,
    progress: Callable[[int, float], None] | None = None,
    sources: torch.Tensor | None = None,
) -> TextConditionedDenoiser:
    """Train `model` on data float [N, ...] in [-1, 1] with the plan's loss; returns the EMA copy.

    With `pairs_noise` [N, ...] (reflow), each data item is coupled with its noise. With
    `sources` [N, 3, H, W] (image editing), item i is the edit of source i that caption i asks
    for, and the network sees the source beside its input.
    `progress(step, loss)` is called after every step (the command draws a tqdm bar with it).
    """
    gen = torch.Generator().manual_seed(plan.seed)
    device = next(model.parameters()).device
    optimiser = torch.optim.AdamW(model.parameters(), lr=plan.lr, weight_decay=0.0)
    warmup = max(1, min(100, plan.steps // 10))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimiser,
        lambda s: min(1.0, (s + 1) / warmup) * (0.5 * (1 + math.cos(math.pi * s / plan.steps))),
    )
    ema = EMA(model, plan.ema_decay)
    alphas = None
    if plan.paradigm == "diffusion":
        keys = ("num_train_timesteps", "beta_schedule", "beta_start", "beta_end")
        alphas = diffusion_alphas_cumprod(
            **{k: plan.schedule[k] for k in keys if k in plan.schedule}
        )
    tokens = model.text_encoder.tokenize(list(captions))
    null = model.text_encoder.tokenize([""])[0]
    model.train()
    for step in range(plan.steps):
        idx = torch.randint(0, data.shape[0], (plan.batch_size,), generator=gen)
        x0 = data[idx].to(device)
        batch_tokens = tokens[idx].clone()
        drop = torch.rand(plan.batch_size, generator=gen) < plan.caption_dropout
        batch_tokens[drop] = null
        text = model.text_encoder(batch_tokens.to(device))
        net: Net = model
        if sources is not None:
            source = sources[idx].to(device)

            def net(x, t, text, source=source):
                return model(x, t, text, source=source)

        if plan.paradigm == "diffusion":
            loss = epsilon_prediction_loss(net, x0, text, alphas, gen)
        elif plan.paradigm == "score":
            loss = denoising_score_matching_loss(
                net,
                x0,
                text,
                plan.schedule["sigma_min"],
                plan.schedule["sigma_max"],
                gen,
                log_sigma=plan.log_sigma,
            )
        elif plan.paradigm in ("flow", "video"):
            noise = pairs_noise[idx].to(device) if pairs_noise is not None else None
            loss = flow_matching_loss(net, x0, text, gen, noise=noise)
        else:
            raise ValueError(f"unknown paradigm {plan.paradigm!r}")
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        scheduler.step()
        ema.update(model)
        if progress is not None:
            progress(step, loss.item())
    return ema.module
