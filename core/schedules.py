"""Noise schedules and the Gaussian forward process of DDPM (Ho et al. 2020).

Indexing follows the paper: t ∈ {1..T}; index 0 is the clean data. Every tensor here has
length T+1 with β_0 = 0 and ᾱ_0 = 1, and is float64 (ᾱ_t reaches 1e-5 and below, where
float16/float32 round-off in 1 − ᾱ_t matters).

Forward process (eq. 4):      q(x_t | x_0) = N(√ᾱ_t · x_0, (1 − ᾱ_t) I),   ᾱ_t = ∏_{s≤t} (1 − β_s)
Posterior (eqs. 6–7), for any earlier step s < t (s = t − 1 in the paper; strided samplers use
other s), with α_{t|s} = ᾱ_t / ᾱ_s and β_{t|s} = 1 − α_{t|s}:
    q(x_s | x_t, x_0) = N(μ̃, β̃ I),
    μ̃ = √ᾱ_s · β_{t|s} / (1 − ᾱ_t) · x_0  +  √α_{t|s} · (1 − ᾱ_s) / (1 − ᾱ_t) · x_t
    β̃ = β_{t|s} · (1 − ᾱ_s) / (1 − ᾱ_t)              (β̃ = 0 when s = 0: never take its log)
x̂_0 from a noise prediction (eq. 15 rearranged): x̂_0 = (x_t − √(1 − ᾱ_t) · ε̂) / √ᾱ_t.

Schedules (`make_schedule(name, T, **params)`):
- ``linear``: β from β_start = 1e-4 to β_end = 0.02 at T = 1000 (Ho et al.); for other T both
  ends are multiplied by 1000/T (``scale_with_T``), so that the chain still ends in noise.
- ``cosine`` (Nichol & Dhariwal 2021): ᾱ_t = f(t)/f(0), f(t) = cos²(((t/T) + s)/(1 + s) · π/2),
  s = 0.008; β_t = 1 − ᾱ_t/ᾱ_{t−1} capped at ``max_beta`` = 0.999.
- ``sigmoid`` (Jabri et al. 2022 / Chen 2023), defined in ᾱ space: with u = t/T,
  ᾱ(u) = (σ(end/τ) − σ((u(end − start) + start)/τ)) / (σ(end/τ) − σ(start/τ)),
  start = −3, end = 3, τ = 1; ᾱ(T/2) = 0.5. β capped at 0.999.
- ``sigmoid_beta`` (GeoDiff, Xu et al. 2022), defined in β space:
  β_t = σ(linspace(−6, 6, T)) · (β_end − β_start) + β_start, with the linear schedule's ends.
- ``quadratic``: β = linspace(√β_start, √β_end, T)², with the linear schedule's ends.
- ``custom``: ``betas=[β_1, ..., β_T]``, non-decreasing, each in (0, 1).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any

import torch

SCHEDULE_NAMES = ("linear", "cosine", "sigmoid", "sigmoid_beta", "quadratic")
SCHEDULE_LABELS = {
    "linear": "linear (Ho et al. 2020)",
    "cosine": "cosine (Nichol & Dhariwal 2021)",
    "sigmoid": "sigmoid in ᾱ-space (Jabri et al. 2022 / Chen 2023)",
    "sigmoid_beta": "sigmoid in β-space (GeoDiff, Xu et al. 2022)",
    "quadratic": "quadratic in √β",
    "custom": "custom β",
}
MAX_T = 10_000  # longest chain we accept: beyond it, tables and the sampler get needlessly slow
REACHES_NOISE_ALPHA_BAR = 1e-3  # ᾱ_T above this: x_T still carries visible signal
ALPHA_BAR_FLOOR = torch.finfo(torch.float64).tiny  # ᾱ_t stops here (2.2e−308); log ᾱ_t goes on (`NoiseSchedule`)

_DEFAULTS: dict[str, dict[str, float | bool]] = {
    "linear": {"beta_start": 1e-4, "beta_end": 0.02, "scale_with_T": True},
    "cosine": {"s": 0.008, "max_beta": 0.999},
    "sigmoid": {"start": -3.0, "end": 3.0, "tau": 1.0, "max_beta": 0.999},
    "sigmoid_beta": {"beta_start": 1e-4, "beta_end": 0.02, "scale_with_T": True},
    "quadratic": {"beta_start": 1e-4, "beta_end": 0.02, "scale_with_T": True},
}


def check_timesteps(t: Any, batch: int) -> None:
    """The model call convention, ``model(x_t, t)``: t a tensor of whole timesteps (an integer dtype) of shape (B,),
    one per example. Its values (1..T of the model's schedule) are the caller's: reading them would wait for the GPU.
    A float t had been embedded as given (2.7 between steps), and a (B, 1) one failed deep in a matrix product."""
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"t must be a tensor of timesteps of shape (B,) = ({batch},), got {type(t).__name__}")
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise ValueError(f"t must hold whole timesteps (an integer dtype, e.g. torch.long), got {t.dtype}")
    if t.dim() != 1 or t.shape[0] != batch:
        raise ValueError(f"t must be a 1-D tensor with one timestep per example (B={batch}), got {tuple(t.shape)}")


def default_params(name: str) -> dict[str, float | bool]:
    """The default parameters of schedule ``name`` (a copy)."""
    if name not in _DEFAULTS:
        raise ValueError(_unknown_name_message(name))
    return dict(_DEFAULTS[name])


def _unknown_name_message(name: object) -> str:
    return f"Unknown noise schedule {name!r}; choose one of: {', '.join(SCHEDULE_NAMES)}, custom."


def _posterior(ab_t: Any, ab_s: Any) -> tuple[Any, Any, Any]:
    """(c_x0, c_xt, β̃) of q(x_s | x_t, x_0) from ᾱ_t and ᾱ_s, floats or tensors alike (eqs. 6–7 for a step t → s):
    with α_{t|s} = ᾱ_t/ᾱ_s and β_{t|s} = 1 − α_{t|s}, c_x0 = √ᾱ_s·β_{t|s}/(1 − ᾱ_t), c_xt = √α_{t|s}·(1 − ᾱ_s)/(1 − ᾱ_t)
    and β̃ = β_{t|s}·(1 − ᾱ_s)/(1 − ᾱ_t)."""
    alpha_ts = ab_t / ab_s
    beta_ts = 1.0 - alpha_ts
    return (ab_s**0.5 * beta_ts / (1.0 - ab_t), alpha_ts**0.5 * (1.0 - ab_s) / (1.0 - ab_t),
            beta_ts * (1.0 - ab_s) / (1.0 - ab_t))


def _broadcast(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B,) coefficients → (B, 1, ..., 1) in ``like``'s dtype and device; B must be 1 or ``like``'s batch."""
    if values.dim() == 1 and values.shape[0] not in (1, like.shape[0] if like.dim() else 1):
        raise ValueError(f"t holds {values.shape[0]} timesteps for a batch of {like.shape[0]}: give one t, or one per "
                         "example")
    values = values.to(device=like.device, dtype=like.dtype)
    return values.reshape(values.shape + (1,) * (like.dim() - values.dim()))


@dataclass(frozen=True)
class NoiseSchedule:
    """β_t, α_t = 1 − β_t and ᾱ_t for t = 0..T (float64, length T+1, index 0 = clean data)."""

    name: str
    T: int
    betas: torch.Tensor
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # log ᾱ_t = Σ_s log(1 − β_s), exact where ᾱ_t is past float64's range (linear at T = 10,000 with β up to
        # 0.2, unscaled: ᾱ_T = 10^−467; the product of the α_s had stuck at 9.9e−324, and log-SNR read −744 for
        # −1075). ᾱ_t itself stops at the smallest normal float64, ALPHA_BAR_FLOOR: the steps past it are steps of
        # β = 0 (nothing of the data is left to lose), where 0 would make their ratios ᾱ_t/ᾱ_s and SNR weights 0/0.
        log_alpha_bars = torch.cumsum(torch.log1p(-self.betas), dim=0)
        object.__setattr__(self, "alphas", 1.0 - self.betas)
        object.__setattr__(self, "log_alpha_bars", log_alpha_bars)
        object.__setattr__(self, "alpha_bars", torch.exp(log_alpha_bars).clamp(min=ALPHA_BAR_FLOOR))

    alphas: torch.Tensor = field(init=False, repr=False)
    log_alpha_bars: torch.Tensor = field(init=False, repr=False)  # log ᾱ_t, finite where ᾱ_t underflows to 0
    alpha_bars: torch.Tensor = field(init=False, repr=False)

    # ----- summary numbers -------------------------------------------------------------------
    @property
    def alpha_bar_T(self) -> float:
        """ᾱ_T: the signal fraction left at the end of the chain (should be ≲ 1e-3); 0 past float64's range."""
        return math.exp(float(self.log_alpha_bars[-1]))

    @property
    def snr(self) -> torch.Tensor:
        """SNR(t) = ᾱ_t / (1 − ᾱ_t), t = 0..T (index 0 is +inf)."""
        return self.alpha_bars / (1.0 - self.alpha_bars)

    @property
    def log_snr(self) -> torch.Tensor:
        """log SNR(t) = log ᾱ_t − log(1 − ᾱ_t), t = 0..T (index 0 is +inf), from log ᾱ_t (right where ᾱ_t underflows)."""
        return self.log_alpha_bars - torch.log(-torch.expm1(self.log_alpha_bars))

    @property
    def snr_T(self) -> float:
        return math.exp(float(self.log_snr[-1]))

    @property
    def reaches_noise(self) -> bool:
        """True when ᾱ_T ≤ 1e-3, i.e. x_T is close enough to N(0, I) to start sampling there."""
        return self.alpha_bar_T <= REACHES_NOISE_ALPHA_BAR

    @property
    def t_snr_one(self) -> float:
        """The (fractional) t where SNR(t) = 1, i.e. ᾱ_t = 0.5, by linear interpolation of log-SNR."""
        log_snr = self.log_snr[1:]  # t = 1..T, decreasing
        below = torch.nonzero(log_snr <= 0)
        if below.numel() == 0:
            return float("nan")
        i = int(below[0])  # log_snr index i ↔ t = i + 1
        if i == 0:
            return 1.0
        hi, lo = float(log_snr[i - 1]), float(log_snr[i])
        return i + hi / (hi - lo)

    # ----- forward process -------------------------------------------------------------------
    def _index(self, t: int | torch.Tensor) -> torch.Tensor:
        """t checked to lie in 0..T, as a LongTensor on the schedule's device (the CPU), so that it indexes the
        schedule's tables whatever device a sampler's t lives on (PyTorch refuses a CUDA index into a CPU tensor)."""
        if isinstance(t, bool) or (isinstance(t, torch.Tensor) and t.dtype == torch.bool):
            raise ValueError("t must be a whole number of steps or a tensor of them, got a bool")
        t = torch.as_tensor(t)
        if t.is_floating_point() and not torch.equal(t, t.round()):  # 2.7 had been read as 2, and 1000.9 as 1000
            raise ValueError(f"t must be whole numbers of steps, got {t.tolist() if t.numel() <= 8 else t.dtype}")
        t = t.to(device=self.alpha_bars.device, dtype=torch.long)
        if t.dim() > 1:
            raise ValueError("t must be an int or a 1-D tensor of timesteps")
        if t.numel() and (int(t.min()) < 0 or int(t.max()) > self.T):
            raise ValueError(f"t must lie in 0..{self.T}, got values from {int(t.min())} to {int(t.max())}")
        return t

    def q_sample(self, x0: torch.Tensor, t: int | torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = √ᾱ_t · x_0 + √(1 − ᾱ_t) · ε (eq. 4). t: an int, or a LongTensor (B,) over x0's batch."""
        alpha_bar = self.alpha_bars[self._index(t)]
        return _broadcast(alpha_bar.sqrt(), x0) * x0 + _broadcast((1.0 - alpha_bar).sqrt(), x0) * noise

    def q_step(self, x_prev: torch.Tensor, t: int, noise: torch.Tensor) -> torch.Tensor:
        """One step of the forward chain, q(x_t | x_{t−1}) = N(√(1 − β_t)·x_{t−1}, β_t I) (eq. 2):
        x_t = √(1 − β_t)·x_{t−1} + √β_t·ε_t, t in 1..T."""
        if not 1 <= int(t) <= self.T:
            raise ValueError(f"a step of the forward chain goes to t in 1..{self.T}, got {t}")
        beta = float(self.betas[int(t)])
        return math.sqrt(1.0 - beta) * x_prev + math.sqrt(beta) * noise

    def q_chain(self, x0: torch.Tensor, t: int, generator: torch.Generator | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """x_t reached from x_0 by t steps of `q_step`, each with fresh noise ε_s ~ N(0, I), and the root-mean-square
        of its noise part x_s − √ᾱ_s·x_0 at s = 0..t (float64, length t + 1).

        Step by step the x_0 part is multiplied by √(1 − β_s), to ∏√(1 − β_s)·x_0 = √ᾱ_t·x_0, and the noise part
        is a sum of independent Gaussians whose variance follows (1 − β_s)(1 − ᾱ_{s−1}) + β_s = 1 − ᾱ_s: x_t has
        the law of the one jump q(x_t | x_0) = N(√ᾱ_t·x_0, (1 − ᾱ_t) I) (eq. 4), and the measured root-mean-square
        follows √(1 − ᾱ_s). The jump is what lets training draw any t at once."""
        t = int(self._index(int(t)))
        x = x0
        mean_squares = torch.zeros(t + 1, dtype=x0.dtype)
        signal = self.alpha_bars.sqrt().tolist()
        for s in range(1, t + 1):
            x = self.q_step(x, s, torch.randn(x0.shape, generator=generator, dtype=x0.dtype))
            mean_squares[s] = torch.sub(x, x0, alpha=signal[s]).square_().mean()
        return x, mean_squares.double().sqrt()

    def predict_x0(self, x_t: torch.Tensor, t: int | torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """x̂_0 = (x_t − √(1 − ᾱ_t) · ε̂) / √ᾱ_t."""
        alpha_bar = self.alpha_bars[self._index(t)]
        return (x_t - _broadcast((1.0 - alpha_bar).sqrt(), x_t) * eps) / _broadcast(alpha_bar.sqrt(), x_t)

    def predict_eps(self, x_t: torch.Tensor, t: int | torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        """ε̂ = (x_t − √ᾱ_t · x̂_0) / √(1 − ᾱ_t)  (t ≥ 1: at t = 0, x_t is x_0 and holds no noise to read)."""
        index = self._index(t)
        if index.numel() and int(index.min()) < 1:
            raise ValueError("ε̂ is defined for t in 1..T: at t = 0 the data holds no noise (1 − ᾱ_0 = 0)")
        alpha_bar = self.alpha_bars[index]
        return (x_t - _broadcast(alpha_bar.sqrt(), x_t) * x0) / _broadcast((1.0 - alpha_bar).sqrt(), x_t)

    def posterior_coefficients(self, t: int, t_prev: int) -> tuple[float, float, float]:
        """(c_x0, c_xt, β̃) with q(x_{t_prev} | x_t, x_0) = N(c_x0·x_0 + c_xt·x_t, β̃ I), 0 ≤ t_prev < t."""
        if not 0 <= t_prev < t <= self.T:
            raise ValueError(f"need 0 ≤ t_prev < t ≤ {self.T}, got t={t}, t_prev={t_prev}")
        return _posterior(float(self.alpha_bars[t]), float(self.alpha_bars[t_prev]))  # floats: a plan's steps add up

    def posterior_mean_variance(
        self, x0: torch.Tensor, x_t: torch.Tensor, t: int | torch.Tensor, t_prev: int | torch.Tensor | None = None
    ) -> tuple[torch.Tensor, float | torch.Tensor]:
        """Mean and variance of q(x_{t_prev} | x_t, x_0) (eqs. 6–7); t_prev defaults to t − 1.

        t an int: the variance is a float. t a LongTensor (B,), one per example as for `q_sample` (t_prev likewise):
        the variance is a tensor (B, 1, ..., 1) in x0's dtype."""
        if isinstance(t, torch.Tensor) and t.dim() == 1:
            index = self._index(t)
            prev = index - 1 if t_prev is None else self._index(t_prev)
            if not bool(((prev >= 0) & (prev < index)).all()):  # t = 0 had wrapped to ᾱ_T: a variance of −∞
                raise ValueError(f"need 0 ≤ t_prev < t ≤ {self.T}, got t={index.tolist()}, t_prev={prev.tolist()}")
            c_x0, c_xt, variance = _posterior(self.alpha_bars[index], self.alpha_bars[prev])
            return _broadcast(c_x0, x0) * x0 + _broadcast(c_xt, x_t) * x_t, _broadcast(variance, x0)
        t = int(t)
        c_x0, c_xt, variance = self.posterior_coefficients(t, t - 1 if t_prev is None else int(t_prev))
        return c_x0 * x0 + c_xt * x_t, variance

    def effective_beta(self, t: int, t_prev: int) -> float:
        """β between two steps of a strided chain: 1 − ᾱ_t / ᾱ_{t_prev}."""
        return float(1.0 - self.alpha_bars[t] / self.alpha_bars[t_prev])

    def to_config(self) -> dict[str, Any]:
        """JSON-able description that `schedule_from_config` turns back into this schedule."""
        config: dict[str, Any] = {"name": self.name, "T": self.T, "params": dict(self.params)}
        if self.name == "custom":
            config["params"]["betas"] = [float(b) for b in self.betas[1:]]
        return config


def schedule_from_config(config: dict[str, Any]) -> NoiseSchedule:
    """Inverse of `NoiseSchedule.to_config`."""
    return make_schedule(config["name"], config["T"], **config.get("params", {}))


# ----- construction --------------------------------------------------------------------------


def _check_T(T: object) -> int:
    if isinstance(T, bool) or not isinstance(T, numbers.Real) or not float(T).is_integer():  # numpy's ints too
        raise ValueError(f"T must be a whole number of steps, got {T!r}")
    T = int(T)
    if not 2 <= T <= MAX_T:
        raise ValueError(f"T must be between 2 and {MAX_T}, got {T}")
    return T


def _check_params(name: str, params: dict[str, Any]) -> dict[str, Any]:
    allowed = _DEFAULTS[name]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(
            f"Unknown parameter(s) {', '.join(unknown)} for the {name} schedule; "
            f"it takes: {', '.join(allowed)}"
        )
    merged: dict[str, Any] = {**allowed, **params}
    for key, value in merged.items():
        if isinstance(allowed[key], bool):
            if not isinstance(value, bool):
                raise ValueError(f"{name} schedule: {key} must be true or false, got {value!r}")
            continue
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} schedule: {key} must be a number, got {value!r}") from None
        if not math.isfinite(value):
            raise ValueError(f"{name} schedule: {key} must be a finite number, got {value}")
        merged[key] = value
    return merged


def _beta_range(name: str, T: int, p: dict[str, Any]) -> tuple[float, float]:
    """β_start, β_end after the 1000/T scaling, checked to lie in (0, 1)."""
    scale = 1000.0 / T if p["scale_with_T"] else 1.0
    start, end = p["beta_start"] * scale, p["beta_end"] * scale
    for key, value in (("beta_start", start), ("beta_end", end)):
        if not 0.0 < value < 1.0:
            hint = f" (after scaling by 1000/T = {scale:g}; use a larger T or turn scale_with_T off)" if scale != 1 else ""
            raise ValueError(f"{name} schedule: {key} must lie in (0, 1), got {value:g}{hint}")
    if start > end:
        raise ValueError(f"{name} schedule: beta_start ({start:g}) must not exceed beta_end ({end:g})")
    return start, end


def _betas_from_alpha_bar(alpha_bar: torch.Tensor, max_beta: float) -> torch.Tensor:
    """β_t = min(1 − ᾱ_t/ᾱ_{t−1}, max_beta) for t = 1..T, from ᾱ at t = 0..T."""
    if not 0.0 < max_beta < 1.0:
        raise ValueError(f"max_beta must lie in (0, 1), got {max_beta:g}")
    return (1.0 - alpha_bar[1:] / alpha_bar[:-1]).clamp(min=0.0, max=max_beta)


def _make_betas(name: str, T: int, p: dict[str, Any]) -> torch.Tensor:
    """β_1..β_T (float64) for the named schedule."""
    f64 = torch.float64
    if name == "linear":
        start, end = _beta_range(name, T, p)
        return torch.linspace(start, end, T, dtype=f64)
    if name == "quadratic":
        start, end = _beta_range(name, T, p)
        return torch.linspace(math.sqrt(start), math.sqrt(end), T, dtype=f64) ** 2
    if name == "sigmoid_beta":
        start, end = _beta_range(name, T, p)
        return torch.sigmoid(torch.linspace(-6.0, 6.0, T, dtype=f64)) * (end - start) + start
    if name == "cosine":
        if not 0.0 <= p["s"] < 1.0:
            raise ValueError(f"cosine schedule: s must lie in [0, 1), got {p['s']:g}")
        u = torch.arange(T + 1, dtype=f64) / T
        f = torch.cos((u + p["s"]) / (1.0 + p["s"]) * math.pi / 2) ** 2
        return _betas_from_alpha_bar(f / f[0], p["max_beta"])
    if name == "sigmoid":
        start, end, tau = p["start"], p["end"], p["tau"]
        if not start < end:
            raise ValueError(f"sigmoid schedule: start ({start:g}) must be below end ({end:g})")
        if not tau > 0:
            raise ValueError(f"sigmoid schedule: tau must be positive, got {tau:g}")
        u = torch.arange(T + 1, dtype=f64) / T
        v_start = torch.sigmoid(torch.tensor(start / tau, dtype=f64))
        v_end = torch.sigmoid(torch.tensor(end / tau, dtype=f64))
        if not v_end - v_start > 1e-9:  # the advice below had said "use a larger τ" for τ = 1e308
            raise ValueError(f"sigmoid schedule: τ = {tau:g} is too large for start = {start:g} and end = {end:g}: the "
                             "sigmoid is flat between start/τ and end/τ, so ᾱ_t cannot fall from 1 to 0; use a smaller τ")
        alpha_bar = (v_end - torch.sigmoid((u * (end - start) + start) / tau)) / (v_end - v_start)
        betas = _betas_from_alpha_bar(alpha_bar.clamp(min=1e-12, max=1.0), p["max_beta"])
        if not ((betas > 0).all() and (betas[1:] >= betas[:-1]).all()):  # ᾱ_t reached its 1e-12 floor before T
            raise ValueError(f"sigmoid schedule: τ = {tau:g} is too small for start = {start:g}, end = {end:g} and "
                             f"T = {T}: ᾱ_t drops below 1e-12 before t = T, where β_t = 1 − ᾱ_t/ᾱ_(t−1) can no "
                             "longer be computed; use a larger τ")
        return betas
    raise ValueError(_unknown_name_message(name))


MIN_BETA_1 = 1e-12  # there 1 − (1 − β_1) in float64 keeps about four significant digits; at 1e-16, none


def _check_betas(betas: torch.Tensor, name: str) -> None:
    if not torch.isfinite(betas).all():
        raise ValueError(f"{name} schedule: β contains NaN or infinite values")
    if not ((betas > 0) & (betas < 1)).all():
        raise ValueError(f"{name} schedule: every β_t must lie in (0, 1); got min {float(betas.min()):g}, max {float(betas.max()):g}")
    if (betas[1:] < betas[:-1]).any():
        raise ValueError(f"{name} schedule: β_t must not decrease with t")
    if betas[0] < MIN_BETA_1:
        raise ValueError(f"{name} schedule: β_1 = {float(betas[0]):g} is too small: 1 − ᾱ_1 = β_1 loses its digits in "
                         f"float64, and the step at t = 1 divides by it; use β_1 ≥ {MIN_BETA_1:g}")


def make_schedule(name: str, T: int, **params: Any) -> NoiseSchedule:
    """Build a named noise schedule with T steps; unknown names or bad parameters raise ValueError."""
    T = _check_T(T)
    if name == "custom":
        if set(params) != {"betas"}:
            raise ValueError("custom schedule takes exactly one parameter: betas (a list of T values)")
        try:
            betas = torch.as_tensor(params["betas"], dtype=torch.float64).flatten()
        except (TypeError, ValueError, RuntimeError):
            raise ValueError("custom schedule: betas must be a list of numbers") from None
        if betas.numel() != T:
            raise ValueError(f"custom schedule: expected T = {T} betas, got {betas.numel()}")
        stored: dict[str, Any] = {}
    elif name in SCHEDULE_NAMES:
        stored = _check_params(name, params)
        betas = _make_betas(name, T, stored)
    else:
        raise ValueError(_unknown_name_message(name))
    _check_betas(betas, name)
    return NoiseSchedule(name=name, T=T, betas=torch.cat([torch.zeros(1, dtype=torch.float64), betas]), params=stored)
