"""Reverse-process samplers: DDPM ancestral sampling (Ho et al. 2020, Algorithm 2) and DDIM
(Song et al. 2021), as generators that yield one record per reverse step.

Both run over a decreasing list of timesteps τ = [τ_1 = T > ... > τ_S = 1], then to 0. With
s the next timestep in the list (0 after the last), ᾱ_0 = 1 and the model's ε̂ = ε_θ(x_t, t):

    x̂_0 = (x_t − √(1 − ᾱ_t) · ε̂) / √ᾱ_t                                   (eq. 15)
    (optionally clipped to [−1, 1] for image data, then ε̂ re-derived from the clipped x̂_0)

DDPM (full chain: τ = T..1; strided: any sub-list; β_{t|s} = 1 − ᾱ_t/ᾱ_s is the effective β):
    x_s = μ̃(x_t, x̂_0) + σ · z,   μ̃ = √ᾱ_s β_{t|s}/(1 − ᾱ_t) · x̂_0 + √(ᾱ_t/ᾱ_s)(1 − ᾱ_s)/(1 − ᾱ_t) · x_t
    σ² = β̃_{t|s} = β_{t|s}(1 − ᾱ_s)/(1 − ᾱ_t)  ("small", the posterior variance)
       or β_{t|s}                                ("large", the upper bound of Ho et al. §3.2);
    no noise is added on the last step (s = 0), whichever variance is chosen.
    (With unclipped x̂_0, μ̃ equals eq. 11: (x_t − β_t/√(1 − ᾱ_t) · ε̂)/√α_t.)

DDIM (eq. 12), with η ∈ [0, 1] interpolating deterministic (0) and DDPM-like (1) sampling:
    σ = η · √((1 − ᾱ_s)/(1 − ᾱ_t)) · √(1 − ᾱ_t/ᾱ_s)
    x_s = √ᾱ_s · x̂_0 + √(1 − ᾱ_s − σ²) · ε̂ + σ · z
The last step uses ᾱ_s = ᾱ_0 = 1, so it returns x̂_0.

Spacing of a chain shorter than T ("uniform" or "log_snr"). An error δ in ε̂ at a DDIM step t → s
moves x_s by |√(1 − ᾱ_s) − √(ᾱ_s/SNR_t)| · δ, about √(ᾱ_s/ᾱ_t) · δ where ᾱ_t ≪ ᾱ_s. Evenly spaced
t (the usual choice, "uniform") makes the first jump the worst: on the cosine schedule
(ᾱ_T ≈ 2.4e-9, ᾱ_980 ≈ 1e-3) DDIM-50 multiplies the model's error at t = T by ≈ 631, and a 2D
denoiser, whose error is never that small, throws its points to |x| ~ 100. "log_snr" spaces the
steps evenly in λ_t = log(ᾱ_t/(1 − ᾱ_t)) instead (the spacing of the "logSNR" time steps of
DPM-Solver, Lu et al. 2022, whose λ is half this one): no jump spans much of λ, so after the top
one (the capped T → T − 1: ≈ 31, as in the full chain) the next step keeps the error (×1.0) and each later one
shrinks it (×0.5, 0.33, …; 0.19 the median at 50 steps on the cosine schedule).
Ancestral (DDPM) steps then forget the errors as they go. The deterministic DDIM ODE sums them
(its error grows like ∫ δ dσ̄, with σ̄ = √((1 − ᾱ)/ᾱ) up to 2·10⁴ on the cosine schedule), so it
needs an ε̂ far more precise at high noise than a small model has, whatever the spacing.

A chain can also join at any step t₀ ≤ T (``start_t``): from data noised to x_t₀ ~ q(x_t₀ | x_0) rather than from
pure noise, it runs the same steps below t₀ (SDEdit, Meng et al. 2022). With an exact ε-predictor the ancestral
(DDPM) chain then samples p(x_0 | x_t₀), the data that could have been noised into x_t₀; DDIM (η = 0) maps x_t₀ to
one x_0. Small t₀ gives x_0 back nearly as it was; large t₀ keeps only its coarse layout, and at t₀ = T nothing of it.

Randomness comes from the ``generator`` (without one, from torch's global generator): same seed, same samples.
The steps run without autograd (`torch.no_grad`), so a chain keeps no graph of its steps.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from core.schedules import NoiseSchedule

Method = Literal["ddpm", "ddim"]
Variance = Literal["small", "large"]
Spacing = Literal["uniform", "log_snr"]
METHODS: tuple[Method, ...] = ("ddpm", "ddim")
VARIANCES: tuple[Variance, ...] = ("small", "large")
SPACINGS: tuple[Spacing, ...] = ("uniform", "log_snr")
SPACING_LABELS: dict[Spacing, str] = {"uniform": "evenly in t", "log_snr": "evenly in log-SNR"}


def describe_steps(steps: int, T: int, spacing: Spacing) -> str:
    """A chain's steps in words: "all T = 1000 steps" or "100 of T = 1000 steps, evenly in log-SNR"."""
    if steps >= T:
        return f"all T = {T} steps"
    return f"{steps} of T = {T} steps, {SPACING_LABELS[spacing]}"


@dataclass
class StepRecord:
    """One reverse step t → t_prev (all tensors shaped like x_t, on the model's device)."""

    index: int  # 0-based position of this step in the chain
    n_steps: int  # length of the chain
    t: int
    t_prev: int
    x_t: torch.Tensor
    x_prev: torch.Tensor
    x0_pred: torch.Tensor
    eps_pred: torch.Tensor

    def __getitem__(self, key: str) -> object:  # records read like dicts too: record["x_prev"]
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:  # "t" in record (without it, Python tried record[0], record[1], …)
        return isinstance(key, str) and key in self.__dataclass_fields__

    def keys(self) -> list[str]:  # and dict(record) (it had read the record as pairs: "attribute name must be string")
        return list(self.__dataclass_fields__)


DEFAULT_DDIM_STEPS = 50  # DDIM's usual count (Song et al. 2021), its chain's default length here


def number_of_steps(T: int, steps: int | None, method: Method) -> int:
    """The steps of a chain: ``steps`` checked (1..T), or by default all T for DDPM and `DEFAULT_DDIM_STEPS` (or T if
    smaller) for DDIM."""
    if steps is None:
        return T if method == "ddpm" else min(DEFAULT_DDIM_STEPS, T)
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or not 1 <= steps <= T:  # numpy's ints too
        raise ValueError(f"number of sampling steps must be a whole number from 1 to T = {T}, got {steps!r}")
    return int(steps)


def timesteps(T: int, steps: int | None, method: Method) -> list[int]:
    """The decreasing timestep list of a chain: T, ..., 1 (``steps`` of them, evenly spaced).

    ``steps=None`` means all T steps for DDPM and 50 (or T if smaller) for DDIM.
    """
    steps = number_of_steps(T, steps, method)
    if steps == 1:
        return [T]
    # evenly spaced from T down to 1, rounded; distinct because the spacing is ≥ 1
    return [round(T - i * (T - 1) / (steps - 1)) for i in range(steps)]


def log_snr_timesteps(schedule: NoiseSchedule, steps: int | None, method: Method) -> list[int]:
    """T, ..., 1 (``steps`` distinct timesteps) evenly spaced in log-SNR λ_t rather than in t.

    Built from T down: each next timestep is the t whose λ_t is nearest to one even share of the
    λ still to cover, (λ_1 − λ_prev)/(steps left), kept strictly below the previous one and high
    enough to leave room for the rest. Where one step of t already spans more than a share (the
    capped β_T = 0.999 of the cosine and sigmoid schedules: λ_(T−1) − λ_T = log 1000), the
    remaining steps share what is left evenly.
    """
    T = schedule.T
    steps = number_of_steps(T, steps, method)
    log_snr = schedule.log_snr.double()  # index t; λ_1 > … > λ_T
    ascending = log_snr[1:].flip(0)  # λ_T … λ_1; ascending[j] is λ_(T − j)
    ts = [T]
    for left in range(steps - 1, 0, -1):  # timesteps still to choose, this one included
        previous = ts[-1]
        target = float(log_snr[previous]) + (float(log_snr[1]) - float(log_snr[previous])) / left
        j = int(torch.searchsorted(ascending, torch.tensor(target, dtype=torch.float64)).clamp(1, T - 1))
        if abs(float(ascending[j - 1]) - target) <= abs(float(ascending[j]) - target):
            j -= 1  # ascending[j − 1] < target ≤ ascending[j]: take the nearer
        ts.append(max(min(T - j, previous - 1), left))
    return ts


def chain_timesteps(
    schedule: NoiseSchedule, steps: int | None, method: Method, spacing: Spacing = "uniform", start_t: int | None = None
) -> list[int]:
    """The timesteps a chain visits: `timesteps` ("uniform") or `log_snr_timesteps` ("log_snr") of a chain of
    ``steps``; with ``start_t`` (1..T), the chain joined at that step: [start_t] and the chain's timesteps below it."""
    if spacing == "uniform":
        ts = timesteps(schedule.T, steps, method)
    elif spacing == "log_snr":
        ts = log_snr_timesteps(schedule, steps, method)
    else:
        raise ValueError(f"spacing must be one of {', '.join(SPACINGS)}, got {spacing!r}")
    if start_t is None:
        return ts
    if isinstance(start_t, bool) or not isinstance(start_t, numbers.Integral) or not 1 <= start_t <= schedule.T:
        raise ValueError(f"the chain's first step must be a whole number from 1 to T = {schedule.T}, got {start_t!r}")
    return [int(start_t)] + [t for t in ts if t < start_t]


@dataclass(frozen=True)
class StepCoefficients:
    """Python floats for one step t → s, so the loop does no table look-ups."""

    t: int
    s: int
    sqrt_ab_t: float  # √ᾱ_t
    sqrt_1m_ab_t: float  # √(1 − ᾱ_t)
    c_x0: float  # DDPM: posterior mean coefficient of x̂_0 / DDIM: √ᾱ_s
    c_xt: float  # DDPM: posterior mean coefficient of x_t / DDIM: unused (0)
    c_eps: float  # DDPM: unused (0) / DDIM: √(1 − ᾱ_s − σ²)
    sigma: float  # standard deviation of the added noise (0 on the last step)

    @property
    def eps_error_gain(self) -> float:
        """DDIM: how much of an error δ in ε̂ the step carries into x_s. It computes x̂_0 = (x_t − √(1 − ᾱ_t)·ε̂)/√ᾱ_t
        and moves it to x_s = c_x0·x̂_0 + c_eps·ε̂, so δ reaches x_s times |c_eps − c_x0·√(1 − ᾱ_t)/√ᾱ_t|; at η = 0,
        |√(1 − ᾱ_s) − √(ᾱ_s/SNR_t)|: below 1 for the small steps of a chain, about √(ᾱ_s/ᾱ_t) where ᾱ_t ≪ ᾱ_s."""
        return abs(self.c_eps - self.c_x0 * self.sqrt_1m_ab_t / self.sqrt_ab_t)


def plan_steps(
    schedule: NoiseSchedule, ts: list[int], method: Method, variance: Variance = "small", eta: float = 0.0
) -> list[StepCoefficients]:
    """The coefficients of each step t → s of a chain over the timesteps ``ts`` (then to 0)."""
    ab = schedule.alpha_bars
    out = []
    for t, s in zip(ts, ts[1:] + [0]):
        ab_t, ab_s = float(ab[t]), float(ab[s])
        if method == "ddpm":
            c_x0, c_xt, posterior_var = schedule.posterior_coefficients(t, s)
            if s == 0:
                var = 0.0
            elif variance == "small":
                var = posterior_var
            elif variance == "large":
                var = schedule.effective_beta(t, s)
            else:
                raise ValueError(f"variance must be one of {VARIANCES}, got {variance!r}")
            out.append(StepCoefficients(t, s, math.sqrt(ab_t), math.sqrt(1 - ab_t), c_x0, c_xt, 0.0, math.sqrt(var)))
        elif method == "ddim":
            sigma = eta * math.sqrt((1 - ab_s) / (1 - ab_t)) * math.sqrt(max(0.0, 1 - ab_t / ab_s))
            c_eps = math.sqrt(max(0.0, 1 - ab_s - sigma**2))
            out.append(StepCoefficients(t, s, math.sqrt(ab_t), math.sqrt(1 - ab_t), math.sqrt(ab_s), 0.0, c_eps, sigma))
        else:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return out


def check_options(method: Method, variance: Variance, eta: float, clip_x0: float | None) -> None:
    """Raise ValueError, naming the option, for a sampler option out of its range."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if variance not in VARIANCES:
        raise ValueError(f"variance must be one of {', '.join(VARIANCES)}, got {variance!r}")
    if isinstance(eta, bool) or not (isinstance(eta, numbers.Real) and 0.0 <= eta <= 1.0):
        raise ValueError(f"eta must lie in [0, 1], got {eta!r}")
    # the other method's option had been taken without a word (the CLI refuses it)
    if method == "ddpm" and eta != 0:
        raise ValueError(f"eta is DDIM's; DDPM's noise is set by variance (small or large), got eta={eta!r}")
    if method == "ddim" and variance != "small":
        raise ValueError("variance is DDPM's; DDIM's noise is set by eta (0: none, 1: DDPM's small variance)")
    check_clip(clip_x0)


def check_clip(clip_x0: float | None) -> None:
    """A ValueError for a ``clip_x0`` that is neither None nor a positive bound (True had been read as 1.0)."""
    if isinstance(clip_x0, bool) or (clip_x0 is not None and not (isinstance(clip_x0, numbers.Real) and clip_x0 > 0)):
        raise ValueError(f"clip_x0 must be a positive bound (1.0 for images in [−1, 1]) or None, got {clip_x0!r}")


def reverse_step(
    model: nn.Module, x: torch.Tensor, c: StepCoefficients, method: Method, clip_x0: float | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One reverse step t → s from x = x_t (see the module docstring), without autograd: (x_s, x̂_0, ε̂). (Under a
    caller's autograd, every step had kept its graph: 14 MB a step for 2,000 points, 2.8 GB in 200 steps.)"""
    t_batch = torch.full((x.shape[0],), c.t, dtype=torch.long, device=x.device)
    with torch.no_grad():
        return step_from_eps(x, model(x, t_batch), c, method, clip_x0, generator)


def check_input(model: nn.Module, x: torch.Tensor, name: str = "x_T") -> None:
    """A ValueError when the chain's start ``x`` is not in the dtype of ``model``'s weights (NumPy's float64 had
    failed inside the network's first layer, "expected m1 and m2 to have the same dtype")."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a tensor, got {type(x).__name__}")
    weights = next(model.parameters(), None) if isinstance(model, nn.Module) else None  # any callable may be a model
    if weights is not None and x.dtype != weights.dtype:
        raise ValueError(f"{name} is {x.dtype}, but the model's weights are {weights.dtype}: pass {name}.to({weights.dtype})")


def step_from_eps(
    x: torch.Tensor, eps: torch.Tensor, c: StepCoefficients, method: Method, clip_x0: float | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`reverse_step` from the network's prediction ``eps`` = ε̂(x_t, t): (x_s, x̂_0, ε̂), where with ``clip_x0`` x̂_0 is
    clipped and ε̂ is the noise that the clipped x̂_0 implies, (x_t − √ᾱ_t·x̂_0)/√(1 − ᾱ_t), not ``eps``."""
    x0 = (x - c.sqrt_1m_ab_t * eps) / c.sqrt_ab_t
    if clip_x0 is not None:
        x0 = x0.clamp(-clip_x0, clip_x0)
        eps = (x - c.sqrt_ab_t * x0) / c.sqrt_1m_ab_t
    if method == "ddpm":
        x_prev = c.c_x0 * x0 + c.c_xt * x
    elif method == "ddim":
        x_prev = c.c_x0 * x0 + c.c_eps * eps
    else:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if c.sigma > 0:
        x_prev = x_prev + c.sigma * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return x_prev, x0, eps


def iter_sample(
    model: nn.Module,
    schedule: NoiseSchedule,
    x_T: torch.Tensor,
    *,
    method: Method = "ddpm",
    steps: int | None = None,
    eta: float = 0.0,
    variance: Variance = "small",
    spacing: Spacing = "uniform",
    clip_x0: float | None = None,
    generator: torch.Generator | None = None,
    start_t: int | None = None,
) -> Iterator[StepRecord]:
    """Run the reverse chain from x_T, yielding a `StepRecord` per step (the last has t_prev = 0).

    ``spacing``: how a chain of fewer than T steps picks its timesteps (see the module docstring).
    ``start_t``: the chain joins at this step, and ``x_T`` is then x at t = start_t (e.g. data noised by
    `NoiseSchedule.q_sample`); it runs [start_t] and the timesteps of the ``steps``-step chain below it.
    ``clip_x0``: clamp x̂_0 to [−clip_x0, clip_x0] (use 1.0 for images in [−1, 1]; None for 2D data).
    ``generator`` drives all sampling noise and must live on x_T's device.
    ``model`` is called as it is: a network with dropout belongs in eval mode (`core.checkpoints.load_checkpoint`
    gives it so).
    """
    check_options(method, variance, eta, clip_x0)
    check_input(model, x_T)
    ts = chain_timesteps(schedule, steps, method, spacing, start_t)
    plan = plan_steps(schedule, ts, method, variance, float(eta))
    x = x_T
    for index, c in enumerate(plan):
        x_prev, x0, eps = reverse_step(model, x, c, method, clip_x0, generator)
        yield StepRecord(index, len(plan), c.t, c.s, x, x_prev, x0, eps)
        x = x_prev


def sample(
    model: nn.Module,
    schedule: NoiseSchedule,
    x_T: torch.Tensor,
    *,
    callback: Callable[[StepRecord], bool | None] | None = None,
    **options: object,
) -> torch.Tensor:
    """Run `iter_sample` to the end (or until ``callback`` returns False) and return the last x.

    Options are those of `iter_sample`. The result is a plain tensor (it had been an inference tensor, which
    in-place ops and autograd refuse outside `torch.inference_mode()`).
    """
    x = x_T
    for record in iter_sample(model, schedule, x_T, **options):  # type: ignore[arg-type]
        x = record.x_prev
        if callback is not None and callback(record) is False:
            break
    return x


def initial_noise(shape: tuple[int, ...], *, seed: int, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Generator]:
    """x_T ~ N(0, I) and the generator that continues to drive the chain: one seed for a whole run."""
    generator = torch.Generator(device=device).manual_seed(int(seed))
    return torch.randn(shape, generator=generator, device=device), generator
