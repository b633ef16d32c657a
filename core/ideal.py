"""The ideal denoiser of a finite training set: what a perfectly trained ε-predictor would be.

Training minimises E‖ε − ε_θ(x_t, t)‖² over x_0 drawn from the training set. With x_0 uniform over the
points x_1 … x_N (the empirical distribution) the minimiser is known in closed form: x_t given x_0 = x_i
is N(√ᾱ_t·x_i, (1 − ᾱ_t) I), so the posterior over which point x_t came from is

    w_i(x_t) = softmax_i( −‖x_t − √ᾱ_t·x_i‖² / (2(1 − ᾱ_t)) ),

and the ideal predictions are the posterior means

    x̂_0*(x_t, t) = Σ_i w_i(x_t)·x_i,        ε*(x_t, t) = (x_t − √ᾱ_t·x̂_0*) / √(1 − ᾱ_t).

Its score −ε*/√(1 − ᾱ_t) is the exact score of the noised training set. Sampled with it, the reverse
chain can only return training points: as t → 0 the weights pick the nearest point, so every sample
lands on a copy of one. A trained network does not reach this minimum, and its samples fall *between*
the training points as well: it generalises because it fits imperfectly (Kadkhodaie et al. 2024;
Kamb & Ganguli 2024).

Examples of any shape (2D points, images) are compared as flat vectors. The logits are computed in float64:
near t = 1 they are differences of terms of order D/(1 − ᾱ_t) ~ 10⁷ for 784 pixels, beyond float32.
"""

from __future__ import annotations

import torch
from torch import nn

from core.schedules import NoiseSchedule

CHUNK = 512  # rows of x_t per distance matrix (a chunk of 512 against 2,000 points: 8 MB)


class IdealDenoiser(nn.Module):
    """ε*(x_t, t) of the empirical distribution of ``points`` (N, ...) (N examples of any shape) under
    ``schedule``; called like any ε-predictor: ``model(x_t, t) -> eps`` with x_t (B, ...) shaped like the
    examples and t (B,) long in 1..T."""

    def __init__(self, points: torch.Tensor, schedule: NoiseSchedule) -> None:
        super().__init__()
        if points.dim() < 2 or len(points) == 0:
            raise ValueError(f"points must be a non-empty (N, ...) tensor of N examples, got shape {tuple(points.shape)}")
        self.example_shape = tuple(points.shape[1:])
        self.register_buffer("points", points.detach().flatten(1).double().clone())  # (N, D)
        self.register_buffer("alpha_bars", schedule.alpha_bars.detach().double().clone())
        self.register_buffer("squared_norms", self.points.pow(2).sum(dim=1))

    def _coefficients(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(√ᾱ_t, 1 − ᾱ_t) per row, (B, 1) float64 (near t = 1, 1 − ᾱ_t ~ 1e-4)."""
        alpha_bar = self.alpha_bars[t].unsqueeze(1)
        return alpha_bar.sqrt(), 1 - alpha_bar

    def _flat(self, x_t: torch.Tensor) -> torch.Tensor:
        if tuple(x_t.shape[1:]) != self.example_shape:
            raise ValueError(f"x_t must be (B, {', '.join(map(str, self.example_shape))}), got {tuple(x_t.shape)}")
        return x_t.flatten(1).double()

    def x0_mean(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x̂_0*(x_t, t) = Σ_i w_i·x_i, the posterior mean of x_0 given x_t (see the module docstring)."""
        mean = self._x0_mean(self._flat(x_t), *self._coefficients(t))
        return mean.to(x_t.dtype).reshape(x_t.shape)

    def _x0_mean(self, x_t: torch.Tensor, sqrt_ab: torch.Tensor, one_minus_ab: torch.Tensor) -> torch.Tensor:
        """Flat float64 x_t (B, D) → flat float64 x̂_0* (B, D)."""
        means = []
        for x, s, v in zip(x_t.split(CHUNK), sqrt_ab.split(CHUNK), one_minus_ab.split(CHUNK)):
            # ‖x − √ᾱ·x_i‖² = ‖x‖² − 2√ᾱ·x·x_i + ᾱ‖x_i‖²; the ‖x‖² term is the same for all i, so softmax drops it
            logits = (2 * s * (x @ self.points.T) - s.square() * self.squared_norms) / (2 * v)
            means.append(torch.softmax(logits, dim=1) @ self.points)
        return torch.cat(means)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        x = self._flat(x_t)
        sqrt_ab, one_minus_ab = self._coefficients(t)
        eps = (x - sqrt_ab * self._x0_mean(x, sqrt_ab, one_minus_ab)) / one_minus_ab.sqrt()
        return eps.to(x_t.dtype).reshape(x_t.shape)
