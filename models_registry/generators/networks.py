"""Networks of the reference generators: a caption encoder and a conditional U-Net.

The U-Net is conditioned by adaptive group normalisation (the convolutional form of adaLN: the
sum of a timestep embedding and the caption embedding predicts a per-channel scale and shift).
With `temporal=True` it takes clips and adds factorised space-time layers: a temporal 1-D
convolution after every residual block and temporal self-attention at the lowest resolution.
Networks know nothing about samplers; `t` is the paradigm's continuous time in [0, 1].
"""

from __future__ import annotations

import math
import re

import torch
from torch import nn
from torch.nn import functional as F

PAD, CLS, UNK = "<pad>", "<cls>", "<unk>"


class CaptionEncoder(nn.Module):
    """Token embedding + transformer + mean pool over a fixed word vocabulary.

    An empty caption is just the <cls> token: its embedding is the learned "null" condition that
    classifier-free guidance uses.
    """

    def __init__(
        self,
        vocabulary: list[str],
        dim: int = 128,
        layers: int = 1,
        heads: int = 4,
        max_tokens: int = 24,
    ) -> None:
        super().__init__()
        self.vocabulary = [PAD, CLS, UNK, *vocabulary]
        self.index = {word: i for i, word in enumerate(self.vocabulary)}
        self.max_tokens = max_tokens
        self.dim = dim
        self.embed = nn.Embedding(len(self.vocabulary), dim, padding_idx=0)
        self.position = nn.Parameter(torch.randn(max_tokens, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(
            dim, heads, dim * 2, dropout=0.0, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def tokenize(self, captions: list[str]) -> torch.Tensor:
        """Token ids int64 [B, max_tokens], <cls> first, 0-padded (words beyond the limit dropped)."""
        ids = torch.zeros(len(captions), self.max_tokens, dtype=torch.long)
        for row, caption in enumerate(captions):
            words = re.findall(r"[a-z]+", caption.lower())[: self.max_tokens - 1]
            tokens = [self.index[CLS]] + [self.index.get(w, self.index[UNK]) for w in words]
            ids[row, : len(tokens)] = torch.tensor(tokens)
        return ids

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens int64 [B, L] -> caption embedding float [B, dim]."""
        pad = tokens == 0
        h = self.embed(tokens) + self.position[: tokens.shape[1]]
        h = self.encoder(h, src_key_padding_mask=pad)
        keep = (~pad).unsqueeze(-1).to(h.dtype)
        return self.norm((h * keep).sum(1) / keep.sum(1))


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding float [B, dim] of times t float [B] in [0, 1]."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
    args = 1000.0 * t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def _groups(channels: int) -> int:
    return math.gcd(8, channels)


class AdaGroupNorm(nn.Module):
    """GroupNorm whose scale and shift come from the conditioning vector (adaLN for convs)."""

    def __init__(self, channels: int, cond_dim: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(_groups(channels), channels, affine=False)
        self.proj = nn.Linear(cond_dim, 2 * channels)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        scale, shift = self.proj(cond)[:, :, None, None].chunk(2, dim=1)
        return self.norm(x) * (1 + scale) + shift


class TemporalConv(nn.Module):
    """Residual 1-D convolution over frames at every pixel (zero-initialised: starts as identity)."""

    def __init__(self, channels: int, frames_kernel: int = 3) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(_groups(channels), channels)
        self.conv = nn.Conv1d(channels, channels, frames_kernel, padding=frames_kernel // 2)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        bt, c, h, w = x.shape
        b = bt // frames
        y = self.norm(x).reshape(b, frames, c, h, w).permute(0, 3, 4, 2, 1)
        y = self.conv(F.silu(y.reshape(b * h * w, c, frames)))
        y = y.reshape(b, h, w, c, frames).permute(0, 4, 3, 1, 2).reshape(bt, c, h, w)
        return x + y


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, cond_dim: int, temporal: bool) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(cin), cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = AdaGroupNorm(cout, cond_dim)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()
        self.temporal = TemporalConv(cout) if temporal else None

    def forward(self, x: torch.Tensor, cond: torch.Tensor, frames: int) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h, cond)))
        h = h + self.skip(x)
        if self.temporal is not None:
            h = self.temporal(h, frames)
        return h


class Attention(nn.Module):
    """Spatial self-attention over H·W tokens and, for clips, temporal attention over frames."""

    def __init__(self, channels: int, heads: int, temporal: bool) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.GroupNorm(_groups(channels), channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.out = nn.Linear(channels, channels)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.temporal = temporal
        if temporal:
            self.t_norm = nn.LayerNorm(channels)
            self.t_qkv = nn.Linear(channels, 3 * channels)
            self.t_out = nn.Linear(channels, channels)
            nn.init.zeros_(self.t_out.weight)
            nn.init.zeros_(self.t_out.bias)

    def _attend(self, tokens: torch.Tensor, qkv: nn.Linear, out: nn.Linear) -> torch.Tensor:
        n, length, c = tokens.shape
        q, k, v = qkv(tokens).reshape(n, length, 3, self.heads, c // self.heads).unbind(2)
        y = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return out(y.transpose(1, 2).reshape(n, length, c))

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        bt, c, h, w = x.shape
        tokens = self.norm(x).flatten(2).transpose(1, 2)
        x = x + self._attend(tokens, self.qkv, self.out).transpose(1, 2).reshape(bt, c, h, w)
        if self.temporal:
            b = bt // frames
            seq = x.reshape(b, frames, c, h * w).permute(0, 3, 1, 2).reshape(b * h * w, frames, c)
            seq = seq + self._attend(self.t_norm(seq), self.t_qkv, self.t_out)
            x = seq.reshape(b, h * w, frames, c).permute(0, 2, 3, 1).reshape(bt, c, h, w)
        return x


class ConditionalUNet(nn.Module):
    """Text- and time-conditioned U-Net for images [B, 3, H, W] or clips [B, T, 3, H, W].

    Output has the input's shape (ε, scaled score or velocity, depending on the paradigm).
    """

    def __init__(
        self,
        channels: int = 32,
        channel_mult: tuple[int, ...] = (1, 2, 2),
        text_dim: int = 128,
        cond_dim: int = 128,
        heads: int = 4,
        temporal: bool = False,
        patch: int = 2,
        image_conditioning: bool = False,
    ) -> None:
        super().__init__()
        self.temporal = temporal
        self.patch = patch
        # Image editing: the source image joins the noisy input channel-wise (InstructPix2Pix).
        self.image_conditioning = image_conditioning
        inputs = 6 if image_conditioning else 3
        self.time_mlp = nn.Sequential(
            nn.Linear(cond_dim, cond_dim), nn.SiLU(), nn.Linear(cond_dim, cond_dim)
        )
        self.text_proj = nn.Linear(text_dim, cond_dim)
        self.cond_dim = cond_dim
        widths = [channels * m for m in channel_mult]
        # Pixel-unshuffle patches: the first level runs at H/patch, which is what makes CPU training fit.
        self.stem = nn.Sequential(
            nn.PixelUnshuffle(patch), nn.Conv2d(inputs * patch * patch, widths[0], 3, padding=1)
        )
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        prev = widths[0]
        for i, width in enumerate(widths):
            self.down.append(ResBlock(prev, width, cond_dim, temporal))
            prev = width
            last = i == len(widths) - 1
            self.downsample.append(
                nn.Identity() if last else nn.Conv2d(width, width, 3, stride=2, padding=1)
            )
        self.mid1 = ResBlock(prev, prev, cond_dim, temporal)
        self.mid_attn = Attention(prev, heads, temporal)
        self.mid2 = ResBlock(prev, prev, cond_dim, temporal)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i, width in reversed(list(enumerate(widths))):
            self.up.append(ResBlock(prev + width, width, cond_dim, temporal))
            prev = width
            self.upsample.append(nn.Identity() if i == 0 else nn.Upsample(scale_factor=2))
        self.head_norm = nn.GroupNorm(_groups(prev), prev)
        self.head = nn.Sequential(
            nn.Conv2d(prev, 3 * patch * patch, 3, padding=1), nn.PixelShuffle(patch)
        )
        nn.init.zeros_(self.head[0].weight)
        nn.init.zeros_(self.head[0].bias)

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        text: torch.Tensor,
        source: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x float [B, 3, H, W] (or [B, T, 3, H, W]), t float [B], text float [B, text_dim];
        `source` float [B, 3, H, W] in [-1, 1], the image to edit (image_conditioning only)."""
        if (source is not None) != self.image_conditioning:
            raise ValueError(
                "this U-Net edits a source image: pass source"
                if self.image_conditioning
                else "this U-Net takes no source image"
            )
        frames = 1
        shape = x.shape
        if source is not None:
            x = torch.cat([x, source], dim=1)
        if self.temporal:
            b, frames = shape[:2]
            x = x.reshape(b * frames, *shape[2:])
        cond = self.time_mlp(timestep_embedding(t, self.cond_dim)) + self.text_proj(text)
        if frames > 1:
            cond = cond.repeat_interleave(frames, dim=0)
        h = self.stem(x)
        skips = []
        for block, down in zip(self.down, self.downsample, strict=True):
            h = block(h, cond, frames)
            skips.append(h)
            h = down(h)
        h = self.mid2(self.mid_attn(self.mid1(h, cond, frames), frames), cond, frames)
        for block, up in zip(self.up, self.upsample, strict=True):
            h = block(torch.cat([h, skips.pop()], dim=1), cond, frames)
            h = up(h)
        out = self.head(F.silu(self.head_norm(h)))
        return out.reshape(shape)
