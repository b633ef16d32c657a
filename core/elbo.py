"""The variational bound on the negative log-likelihood of a DDPM (Ho et al. 2020, eq. 5; Sohl-Dickstein et al. 2015):

    −log p_θ(x_0) ≤ L = L_T + Σ_{t=2}^{T} L_{t−1} + L_0,
    L_T     = KL(q(x_T | x_0) ‖ N(0, I))                          the prior's mismatch (no parameters),
    L_{t−1} = E_q KL(q(x_{t−1} | x_t, x_0) ‖ p_θ(x_{t−1} | x_t))    the denoising terms,
    L_0     = E_q −log p_θ(x_0 | x_1)                              the decoder.

p_θ(x_{t−1} | x_t) = N(μ̃(x_t, x̂_0), σ_t² I) is the sampler's DDPM step (`core.sampler`), with σ_t² = β̃_t ("small")
or β_t ("large"). Per dimension, between Gaussians of means m_q, m_p and variances v_q = β̃_t, v_p = σ_t²:

    KL = ½ (log(v_p/v_q) + v_q/v_p − 1 + (m_q − m_p)²/v_p),

and since μ̃ is linear in x_0, m_q − m_p = c_x0·(x_0 − x̂_0) = √(β_t²/(α_t(1 − ᾱ_t)))·(ε̂ − ε): each term is the
training loss ‖ε − ε̂‖² at t weighted by β_t²/(2σ_t² α_t (1 − ᾱ_t)) (eq. 12), plus a constant from the variances
(0 for σ² = β̃). The plain loss of Algorithm 1 drops these weights.

The decoder: for continuous data (2D), N(x_0; x̂_0(x_1), β_1 I) (β̃_1 = 0 would make it a point mass); for images
of 256 levels in [−1, 1], the discretised Gaussian of §3.3: the mass of N(x̂_0(x_1), β_1) over each level's bin of
width 2/255, the two end bins open to ±∞, so that −log p is the length of a code for real data.
x̂_0 is clipped where the sampler clips it (``clip_x0``).

The sum over t is exact over all T − 1 terms, or estimated without bias from at most ``n_t`` of them: 2..T split into
runs that grow geometrically, one t drawn uniformly in each, its term counted once for every t of its run. Each term
draws its own x_t ~ q(x_t | x_0). Results are in nats per dimension (bits: divide by ln 2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from core.schedules import NoiseSchedule

Variance = Literal["small", "large"]
VARIANCES: tuple[Variance, ...] = ("small", "large")
BIN_HALF_WIDTH = 1.0 / 255.0  # images of 256 levels in [−1, 1]: bins of width 2/255


@dataclass(frozen=True)
class Bound:
    """The variational bound of a model on some data, in nats per dimension (means over the data)."""

    prior: float  # L_T
    diffusion: float  # Σ_{t=2}^{T} L_{t−1} (estimated from `ts` when not all were measured)
    decoder: float  # L_0
    ts: list[int]  # the t of each measured term L_{t−1}, increasing
    terms: list[float]  # L_{t−1} at each of `ts`
    weights: list[int]  # how many t each measured term stands for in the sum (all 1 when every t was measured)
    discrete: bool  # the decoder of 256-level images (else a density of continuous data)

    @property
    def total(self) -> float:
        return self.prior + self.diffusion + self.decoder

    @property
    def bits_per_dim(self) -> float:
        return self.total / math.log(2.0)


def epsilon_weights(schedule: NoiseSchedule, variance: Variance = "small") -> torch.Tensor:
    """The weight of ‖ε − ε̂‖² (per dimension) in each term L_{t−1} of the bound, β_t²/(2σ_t² α_t (1 − ᾱ_t)) (eq. 12),
    indexed by t (float64, length T + 1; NaN at t = 0 and 1, where the decoder L_0 stands instead). With σ² = β̃_t it
    is ½(SNR_{t−1}/SNR_t − 1): half the factor by which one step divides the SNR, less one. The plain loss weights every
    t alike."""
    if variance not in VARIANCES:
        raise ValueError(f"variance must be one of {', '.join(VARIANCES)}, got {variance!r}")
    betas, alphas, ab = schedule.betas, schedule.alphas, schedule.alpha_bars
    weights = torch.full_like(betas, math.nan)
    t = torch.arange(2, schedule.T + 1)
    posterior = betas[t] * (1 - ab[t - 1]) / (1 - ab[t])
    sigma2 = posterior if variance == "small" else betas[t]
    weights[t] = betas[t] ** 2 / (2 * sigma2 * alphas[t] * (1 - ab[t]))
    return weights


def gaussian_kl(mean_q: torch.Tensor, var_q: float, mean_p: torch.Tensor, var_p: float) -> torch.Tensor:
    """KL(N(mean_q, var_q) ‖ N(mean_p, var_p)) per element."""
    return 0.5 * (math.log(var_p / var_q) + var_q / var_p - 1.0 + (mean_q - mean_p) ** 2 / var_p)


def discretised_gaussian_nll(x: torch.Tensor, mean: torch.Tensor, std: float) -> torch.Tensor:
    """−log of the mass of N(mean, std²) over x's bin (x on the 256 levels of [−1, 1]), per element, in float64."""
    x, mean = x.double(), mean.double()
    upper = torch.where(x > 1 - BIN_HALF_WIDTH, torch.full_like(x, math.inf), x + BIN_HALF_WIDTH)
    lower = torch.where(x < -1 + BIN_HALF_WIDTH, torch.full_like(x, -math.inf), x - BIN_HALF_WIDTH)
    z_upper, z_lower = (upper - mean) / std, (lower - mean) / std
    # The mass Φ(b) − Φ(a), in logs: log Φ(b) + log(1 − Φ(a)/Φ(b)). Above the mean it is taken as Φ(−a') − Φ(−b')
    # (mirrored), so that both ends lie in the lower tail, where log Φ keeps its digits: Φ itself is 0 in float64
    # below z ≈ −8.3 (a bin 8.5σ from x̂₀ had mass 0, an NLL of 691 nats, not 40), and rounds to 1 far above 0.
    mirrored = z_lower > 0
    a = torch.where(mirrored, -z_upper, z_lower)
    b = torch.where(mirrored, -z_lower, z_upper)
    log_a, log_b = torch.special.log_ndtr(a), torch.special.log_ndtr(b)
    return -(log_b + torch.log1p(-torch.exp(log_a - log_b)))


def measured_timesteps(T: int, n_t: int | None, generator: torch.Generator | None = None) -> tuple[list[int], list[int]]:
    """(timesteps, weights) of the terms L_{t−1} to measure: all of 2..T (weights 1), or one t drawn uniformly from
    each of at most n_t runs that split 2..T, weighted by its run's length. The runs grow geometrically (from
    single steps at small t), since the terms fall by orders of magnitude over the first tens of steps: equal runs
    would let one draw stand for the whole steep start."""
    if n_t is not None and (isinstance(n_t, bool) or not isinstance(n_t, int) or n_t < 1):  # before it is compared
        raise ValueError(f"the number of measured timesteps must be a whole number ≥ 1, got {n_t!r}")
    if T < 2:
        return [], []
    if n_t is None or n_t >= T - 1:
        return list(range(2, T + 1)), [1] * (T - 1)
    edges = sorted({round(2 * ((T + 1) / 2) ** (k / n_t)) for k in range(n_t + 1)})  # run: edges[k] .. edges[k+1] − 1
    device = "cpu" if generator is None else generator.device
    ts = [lo + int(torch.randint(hi - lo, (1,), generator=generator, device=device)) for lo, hi in zip(edges, edges[1:])]
    return ts, [hi - lo for lo, hi in zip(edges, edges[1:])]


def _x0_pred(model: nn.Module, schedule: NoiseSchedule, x_t: torch.Tensor, t: int, clip_x0: float | None) -> torch.Tensor:
    eps = model(x_t, torch.full((len(x_t),), t, dtype=torch.long, device=x_t.device))
    x0 = schedule.predict_x0(x_t, t, eps)
    return x0 if clip_x0 is None else x0.clamp(-clip_x0, clip_x0)


def variational_bounds(
    model: nn.Module,
    schedule: NoiseSchedule,
    x_0: torch.Tensor,
    *,
    variances: tuple[Variance, ...] = VARIANCES,
    n_t: int | None = None,
    discrete: bool = False,
    clip_x0: float | None = None,
    generator: torch.Generator | None = None,
) -> dict[Variance, Bound]:
    """The bound L of ``model`` on the data ``x_0`` (N, ...) for each reverse variance in ``variances``, from the same
    x_t and model calls, in nats per dimension (see the module docstring).

    ``variances``: σ_t² of the reverse steps, β̃_t ("small") and/or β_t ("large"); ``n_t``: measure at most that many
    of the T − 1 terms L_{t−1} (None: all; see `measured_timesteps`); ``discrete``: the data are 256-level images in
    [−1, 1] (the discretised decoder); ``clip_x0``: clamp x̂_0 as the sampler does; ``generator``: the noise of every
    x_t and the drawn timesteps.
    """
    if not variances or any(v not in VARIANCES for v in variances):
        raise ValueError(f"variances must be some of {', '.join(VARIANCES)}, got {variances!r}")
    T, ab = schedule.T, schedule.alpha_bars
    dims = x_0[0].numel()
    device = x_0.device

    def noised(t: int) -> torch.Tensor:
        noise = torch.randn(x_0.shape, generator=generator, device=device, dtype=x_0.dtype)
        return schedule.q_sample(x_0, t, noise)

    def per_dim(values: torch.Tensor) -> float:  # sum over dimensions, mean over the data, per dimension
        return float(values.double().flatten(1).sum(1).mean()) / dims

    with torch.inference_mode():
        a_T = float(ab[T])
        prior = per_dim(gaussian_kl(math.sqrt(a_T) * x_0.double(), 1.0 - a_T, torch.zeros((), dtype=torch.float64), 1.0))
        ts, weights = measured_timesteps(T, n_t, generator)
        terms: dict[Variance, list[float]] = {v: [] for v in variances}
        for t in ts:
            x_t = noised(t)
            c_x0, _, posterior_var = schedule.posterior_coefficients(t, t - 1)
            # the two means share c_xt·x_t: they differ by c_x0·(x_0 − x̂_0)
            gap = c_x0 * (x_0.double() - _x0_pred(model, schedule, x_t, t, clip_x0).double())
            for v in variances:
                sigma2 = posterior_var if v == "small" else float(schedule.betas[t])
                terms[v].append(per_dim(gaussian_kl(gap, posterior_var, torch.zeros((), dtype=torch.float64), sigma2)))
        x0_hat = _x0_pred(model, schedule, noised(1), 1, clip_x0)  # the posterior mean at t = 1 is x̂_0 itself
        std_1 = math.sqrt(float(schedule.betas[1]))
        if discrete:
            decoder = per_dim(discretised_gaussian_nll(x_0, x0_hat, std_1))
        else:
            z = (x_0.double() - x0_hat.double()) / std_1
            decoder = per_dim(0.5 * z**2 + math.log(std_1) + 0.5 * math.log(2 * math.pi))
    return {v: Bound(prior, sum(w * term for w, term in zip(weights, terms[v])), decoder, ts, terms[v], weights, discrete)
            for v in variances}


def variational_bound(model: nn.Module, schedule: NoiseSchedule, x_0: torch.Tensor, *, variance: Variance = "small",
                      **options: object) -> Bound:
    """`variational_bounds` for one reverse variance (options are those of `variational_bounds`)."""
    return variational_bounds(model, schedule, x_0, variances=(variance,), **options)[variance]  # type: ignore[arg-type]
