"""DDIM's deterministic map between noise and data (Song et al. 2021, §4.3 and §5.4): encoding data to
noise by running the η = 0 chain backwards, and paths between two noises.

With η = 0 a DDIM step t → s is deterministic (eq. 12 with σ = 0):

    x_s = √ᾱ_s · x̂_0(x_t) + √(1 − ᾱ_s) · ε̂(x_t, t),   x̂_0(x_t) = (x_t − √(1 − ᾱ_t) · ε̂)/√ᾱ_t.

Divided by √ᾱ, this is Euler's method for the probability-flow ODE  dx̄ = ε̂ dσ̄  in x̄ = x/√ᾱ and
σ̄ = √((1 − ᾱ)/ᾱ) (eq. 13–14), so the chain is a map from each x_T to one x_0, and the ODE can be run
the other way. Encoding steps s → t up the same timesteps with the model's ε̂ at the step's upper end
evaluated at x_s (x_t is not yet known; the step's error is of the order of ε̂(x_t, t) − ε̂(x_s, t)):

    x_t = √ᾱ_t · x̂_0 + √(1 − ᾱ_t) · ε̂(x_s, t),   x̂_0 = (x_s − √(1 − ᾱ_s) · ε̂(x_s, t))/√ᾱ_s

(x̂_0 = x_0 on the first step, from s = 0). This mirrors the decoding step t → s, which uses the same
ε̂(·, t), so that decoding the encoding gives x_0 back up to those errors, which shrink with the step
size. For Gaussian data N(μ, s²) and the exact ε*, the map is affine in closed form: the ODE carries
each quantile of the data to the same quantile of x_t ~ N(√ᾱ_t μ, ᾱ_t s² + 1 − ᾱ_t).

Paths between two noises x_a, x_b ~ N(0, I): ``"spherical"`` x(u) = cos(uπ/2)·x_a + sin(uπ/2)·x_b, which
for independent x_a and x_b is again N(0, I) at every u (cos² + sin² = 1), and ``"linear"``
(1 − u)·x_a + u·x_b, whose variance (1 − u)² + u² falls to ½ at u = ½: the sampler then starts from
noise of a smaller norm than any it was trained on (in D dimensions the norm of N(0, I) noise is √D ± ~0.7).
The spherical path continued to a full turn, x(θ) = cos θ·x_a + sin θ·x_b for θ in [0, 2π), is a closed loop
of N(0, I) noises (``noise_circle``): decoded, it is a movie of samples that loops without a seam.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from core.sampler import Spacing, chain_timesteps, check_clip, check_input
from core.schedules import NoiseSchedule

PathKind = Literal["spherical", "linear"]
PATH_KINDS: tuple[PathKind, ...] = ("spherical", "linear")


@dataclass
class EncodeRecord:
    """One encoding step s → t (s < t; tensors shaped like x_0, on the model's device)."""

    index: int  # 0-based position of this step in the encoding
    n_steps: int
    s: int
    t: int
    x_s: torch.Tensor
    x_t: torch.Tensor
    x0_pred: torch.Tensor  # x̂_0 from x_s (x_0 itself on the first step)
    eps_pred: torch.Tensor  # ε̂(x_s, t)


def encoding_timesteps(schedule: NoiseSchedule, steps: int | None, spacing: Spacing = "uniform") -> list[int]:
    """The increasing timesteps of an encoding: those of the DDIM chain of ``steps`` (`core.sampler.chain_timesteps`),
    in reverse, 1 … T; decoding with the same ``steps`` and ``spacing`` visits them in the other order."""
    return chain_timesteps(schedule, steps, "ddim", spacing)[::-1]


def iter_encode(
    model: nn.Module,
    schedule: NoiseSchedule,
    x_0: torch.Tensor,
    *,
    steps: int | None = None,
    spacing: Spacing = "uniform",
    clip_x0: float | None = None,
) -> Iterator[EncodeRecord]:
    """Run DDIM (η = 0) backwards from data x_0 to x_T, yielding an `EncodeRecord` per step (the last has t = T).

    ``steps``/``spacing``: the chain's timesteps, as for `core.sampler.iter_sample` with method "ddim" (default 50).
    ``clip_x0``: clamp x̂_0 to [−clip_x0, clip_x0] and re-derive ε̂ from it, as the decoder does when asked (the first
    step's x̂_0 is x_0 itself and is left alone).
    """
    check_clip(clip_x0)
    check_input(model, x_0, "x_0")
    ts = encoding_timesteps(schedule, steps, spacing)
    batch = x_0.shape[0]
    x = x_0
    for index, (s, t) in enumerate(zip([0, *ts[:-1]], ts)):
        with torch.no_grad():  # as the sampler's steps: no graph kept from step to step
            eps = model(x, torch.full((batch,), t, dtype=torch.long, device=x.device))
            x0 = schedule.predict_x0(x, s, eps)  # x_0 itself at s = 0 (ᾱ_0 = 1)
            if clip_x0 is not None and s > 0:
                x0 = x0.clamp(-clip_x0, clip_x0)
                eps = schedule.predict_eps(x, s, x0)
            x_t = schedule.q_sample(x0, t, eps)  # √ᾱ_t·x̂_0 + √(1 − ᾱ_t)·ε̂
        yield EncodeRecord(index, len(ts), s, t, x, x_t, x0, eps)
        x = x_t


def encode(model: nn.Module, schedule: NoiseSchedule, x_0: torch.Tensor, **options: object) -> torch.Tensor:
    """x_T of `iter_encode` run to the end (options are those of `iter_encode`)."""
    x = x_0
    for record in iter_encode(model, schedule, x_0, **options):  # type: ignore[arg-type]
        x = record.x_t
    return x


def noise_path(x_a: torch.Tensor, x_b: torch.Tensor, alphas: Sequence[float], kind: PathKind = "spherical") -> torch.Tensor:
    """The noises x(u) between x_a = x(0) and x_b = x(1), stacked: shape (len(alphas), *x_a.shape).

    "spherical": cos(uπ/2)·x_a + sin(uπ/2)·x_b (N(0, I) all the way for independent N(0, I) ends; u beyond 1
    goes on around the circle, back to x_a at u = 4); "linear": (1 − u)·x_a + u·x_b, u in [0, 1].
    """
    if x_a.shape != x_b.shape:
        raise ValueError(f"the two noises must have the same shape, got {tuple(x_a.shape)} and {tuple(x_b.shape)}")
    if kind not in PATH_KINDS:
        raise ValueError(f"path kind must be one of {', '.join(PATH_KINDS)}, got {kind!r}")
    weights = torch.tensor([float(a) for a in alphas], dtype=torch.float64)
    if len(weights) == 0 or not bool(((weights >= 0) & (weights <= (4 if kind == "spherical" else 1))).all()):
        raise ValueError(f"path positions u must lie in [0, 1] (spherical: up to 4, a full turn), got {list(alphas)!r}")
    if kind == "spherical":
        w_a, w_b = torch.cos(weights * math.pi / 2), torch.sin(weights * math.pi / 2)
    else:
        w_a, w_b = 1 - weights, weights
    shape = (-1,) + (1,) * x_a.dim()
    return w_a.to(x_a).view(shape) * x_a + w_b.to(x_a).view(shape) * x_b


def noise_circle(x_a: torch.Tensor, x_b: torch.Tensor, n: int) -> torch.Tensor:
    """n noises evenly around the circle x(θ) = cos θ·x_a + sin θ·x_b, θ_k = 2πk/n, stacked: (n, *x_a.shape).

    For independent x_a, x_b ~ N(0, I) every x(θ) is N(0, I), and neighbours differ by 2 sin(π/n)·‖x_a‖;
    x(2π) = x_a closes the loop, so it is left out.
    """
    if n < 2:
        raise ValueError(f"a circle needs at least 2 noises, got {n}")
    return noise_path(x_a, x_b, [4 * k / n for k in range(n)], "spherical")
