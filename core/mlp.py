"""A small MLP ε-predictor for 2D point clouds (the denoiser of tiny-diffusion, typed and configurable).

Each input coordinate and the timestep go through a sinusoidal embedding (Vaswani et al. 2017;
the timestep embedding of Ho et al. 2020):
    emb(v)_k = sin(s·v·ω_k),  emb(v)_{k+d/2} = cos(s·v·ω_k),   ω_k = 10000^(−k/(d/2 − 1)),
which lets a small MLP resolve sharp 2D structure (a plain MLP on raw (x, y) blurs it — the
spectral bias of Tancik et al. 2020). The sines alone are periodic, though: a point far outside
the data looks like one inside it, and ε̂ must equal ≈ x_t at high noise to a precision that the
reverse chain then multiplies by up to 1/√ᾱ_T. So the raw coordinates also enter the first layer,
and a linear skip x_t → ε̂ is added to the output; without them, samples of the cosine and sigmoid
schedules (β_T = 0.999) and of deterministic DDIM fly off to |x| ~ 100. The embeddings are concatenated and fed through
residual GELU blocks (GELU, not ReLU: with ReLU the same small MLP fits
the toys several times worse in a short run); the output is ε̂ with the input's shape. Call convention:
``model(x_t, t) -> eps_hat`` with x_t (B, 2) float32 and t (B,) long in 1..T.

With ``num_classes`` K > 0 the network is class-conditional (`core.conditioning`): ``model(x_t, t, y)``, y (B,)
long in 0..K (K: no class, also what ``model(x_t, t)`` means); a learned vector per label is added where the
timestep enters, so the label shifts every hidden unit like t does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from core.conditioning import null_labels
from core.schedules import check_timesteps


MAX_DEPTH = 64  # residual blocks at most: a checkpoint's config is built before its weights are compared with it,
# and a config of a million blocks took minutes to build


@dataclass(frozen=True)
class MLPConfig:
    """Size of the 2D denoiser; the defaults give ≈100k parameters."""

    hidden: int = 128  # width of every hidden layer
    depth: int = 3  # number of residual blocks
    emb_dim: int = 128  # sinusoidal embedding size per input coordinate and for t (even)
    input_scale: float = 25.0  # s for the coordinates: data of unit spread → frequencies up to ~25 rad/unit
    time_scale: float = 1.0  # s for the timestep (t is used as an integer 1..T)
    num_classes: int = 0  # K > 0: class-conditional on labels 0..K−1, K meaning "no class" (core.conditioning)

    def __post_init__(self) -> None:
        if self.hidden < 1 or not 0 <= self.depth <= MAX_DEPTH:
            raise ValueError(f"MLP hidden must be ≥ 1 and depth from 0 to {MAX_DEPTH}, got hidden={self.hidden}, "
                             f"depth={self.depth}")
        if self.emb_dim < 4 or self.emb_dim % 2:
            raise ValueError(f"MLP emb_dim must be an even number ≥ 4, got {self.emb_dim}")
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int) or self.num_classes < 0:
            raise ValueError(f"MLP num_classes must be a whole number ≥ 0 (0: unconditional), got {self.num_classes!r}")


class SinusoidalEmbedding(nn.Module):
    """(B,) values → (B, dim) sines and cosines at geometric frequencies."""

    def __init__(self, dim: int, scale: float) -> None:
        super().__init__()
        half = dim // 2
        freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, dtype=torch.float32) / (half - 1))
        self.register_buffer("freqs", freqs * scale, persistent=False)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        angles = v.to(torch.float32)[:, None] * self.freqs  # (B, dim/2)
        return torch.cat([angles.sin(), angles.cos()], dim=1)  # (B, dim)


class ResidualBlock(nn.Module):
    """h ← h + GELU(W h + b)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.linear = nn.Linear(width, width)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + F.gelu(self.linear(h))


class MLPDenoiser(nn.Module):
    """ε̂(x_t, t) for 2D points.

    The first layer acts on [emb(x), emb(y), emb(t)]; it is applied as two matrix products,
    W_xy·[emb(x), emb(y)] + (W_t·emb(t) + b), so that when every point shares one t (as in
    sampling) the timestep part is computed once per step rather than once per point.
    """

    def __init__(self, config: MLPConfig = MLPConfig()) -> None:
        super().__init__()
        self.config = config
        self.embed_xy = SinusoidalEmbedding(config.emb_dim, config.input_scale)
        self.embed_t = SinusoidalEmbedding(config.emb_dim, config.time_scale)
        self.first = nn.Linear(3 * config.emb_dim, config.hidden)
        self.first_raw = nn.Linear(2, config.hidden, bias=False)  # x_t itself: tells far points apart
        self.blocks = nn.Sequential(*[ResidualBlock(config.hidden) for _ in range(config.depth)])
        self.out = nn.Linear(config.hidden, 2)
        self.skip = nn.Linear(2, 2, bias=False)  # linear path x_t → ε̂ (ε ≈ x_t at high noise)
        if config.num_classes:  # one vector per label and one for ∅, zero at first: the labels start out ignored
            self.embed_class = nn.Embedding(config.num_classes + 1, config.hidden)
            nn.init.zeros_(self.embed_class.weight)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if x_t.dim() != 2 or x_t.shape[1] != 2:
            raise ValueError(f"the 2D denoiser takes points of shape (B, 2), got {tuple(x_t.shape)}")
        check_timesteps(t, len(x_t))
        if labels is not None and not self.config.num_classes:
            raise ValueError("this denoiser is not class-conditional: it takes no labels")
        xy_dim = 2 * self.config.emb_dim
        emb_xy = self.embed_xy(x_t.reshape(-1)).reshape(len(x_t), xy_dim)  # (B, 2·emb): [emb(x), emb(y)]
        # the check reads a value back (a graph break under torch.compile, which then embeds per point)
        shared_t = not torch.compiler.is_compiling() and t.numel() > 1 and bool((t == t[0]).all())
        emb_t = self.embed_t(t[:1] if shared_t else t)  # (1 or B, emb)
        h = F.linear(emb_xy, self.first.weight[:, :xy_dim]) + self.first_raw(x_t)  # (B, hidden)
        if self.config.num_classes:
            h = h + self.embed_class(null_labels(labels, len(x_t), self.config.num_classes, x_t.device))
        h = F.gelu(h + F.linear(emb_t, self.first.weight[:, xy_dim:], self.first.bias))
        return self.out(self.blocks(h)) + self.skip(x_t)  # (B, 2)
