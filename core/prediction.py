"""What the network predicts: ε (Ho et al. 2020), x_0, or v (Salimans & Ho 2022), all served as ε̂.

x_t = √ᾱ_t·x_0 + √(1 − ᾱ_t)·ε, so given x_t any one of three targets fixes the other two:

    ε                                   the noise (Ho et al. 2020, eq. 14: L_simple)
    x_0                                 the clean data
    v = √ᾱ_t·ε − √(1 − ᾱ_t)·x_0         the "velocity" (Salimans & Ho 2022, sec. 4 and appendix D)

A network trained on x_0 or v is turned into the ε-predictor of the engine's contract
(``model(x_t, t) -> ε̂``), so every sampler, panel and metric works unchanged:

    from x̂_0:  ε̂ = (x_t − √ᾱ_t·x̂_0) / √(1 − ᾱ_t)
    from v̂:    ε̂ = √(1 − ᾱ_t)·x_t + √ᾱ_t·v̂

The choice changes two things. (1) What the network must output: ε has unit variance at every t,
v too for data of unit variance, x_0 has the data's. (2) How plain mean-squared error weights the noise levels.
The errors are tied by ‖ε − ε̂‖² = SNR_t·‖x_0 − x̂_0‖² = ᾱ_t·‖v − v̂‖² (SNR_t = ᾱ_t/(1 − ᾱ_t)), so the x_0 loss is
the ε loss weighted by 1/SNR_t (almost nothing at small t, a lot at large t) and the v loss is it
weighted by 1/ᾱ_t = 1 + 1/SNR_t (1 at small t, more at large t). `error_to_eps` gives these factors;
`core.trainer.loss_weights` uses them to give Min-SNR-γ the same ε weighting for every target.

Whatever the target, ε̂ is also an estimate of the score: ∇ log q_t(x_t) ≈ −ε̂/√(1 − ᾱ_t) (Vincent 2011).
`denoising_field` gives it at each step's scale, −√(1 − ᾱ_t)·ε̂ = √ᾱ_t·x̂_0 − x_t (Tweedie's formula).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from core.schedules import NoiseSchedule

Prediction = Literal["eps", "x0", "v"]
PREDICTIONS: tuple[Prediction, ...] = ("eps", "x0", "v")
PREDICTION_LABELS = {
    "eps": "ε, the noise (Ho et al. 2020)",
    "x0": "x₀, the clean data",
    "v": "v = √ᾱ·ε − √(1 − ᾱ)·x₀ (Salimans & Ho 2022)",
}
PREDICTION_SYMBOLS = {"eps": "ε", "x0": "x₀", "v": "v"}
PREDICTION_ESTIMATES = {"eps": "ε̂", "x0": "x̂₀", "v": "v̂"}  # the network's output, as the texts write it
EPS_FROM_PREDICTION = {  # what `EpsilonView` computes, as the texts write it
    "x0": "ε̂ = (x_t − √ᾱ_t·x̂₀)/√(1 − ᾱ_t)",
    "v": "ε̂ = √(1 − ᾱ_t)·x_t + √ᾱ_t·v̂",
}


def check_prediction(prediction: object) -> Prediction:
    """``prediction`` if it is one of PREDICTIONS, else a ValueError that lists them."""
    if prediction not in PREDICTIONS:
        raise ValueError(_unknown_message(prediction))
    return prediction  # type: ignore[return-value]


def _unknown_message(prediction: object) -> str:
    return f"unknown prediction target {prediction!r}; choose one of: {', '.join(PREDICTIONS)}"


def _coefficients(schedule: NoiseSchedule) -> tuple[torch.Tensor, torch.Tensor]:
    """(√ᾱ_t, √(1 − ᾱ_t)) for t = 0..T, float32 (computed in float64)."""
    return schedule.alpha_bars.sqrt().float(), (1.0 - schedule.alpha_bars).sqrt().float()


def training_target(prediction: Prediction, x0: torch.Tensor, noise: torch.Tensor, sqrt_ab: torch.Tensor,
                    sqrt_1m_ab: torch.Tensor) -> torch.Tensor:
    """The regression target of one batch: ε, x_0 or v = √ᾱ_t·ε − √(1 − ᾱ_t)·x_0.

    ``sqrt_ab``, ``sqrt_1m_ab``: √ᾱ_t and √(1 − ᾱ_t) of each example, shaped to broadcast over x0 (B, 1, ...).
    """
    if prediction == "eps":
        return noise
    if prediction == "x0":
        return x0
    if prediction == "v":
        return sqrt_ab * noise - sqrt_1m_ab * x0
    raise ValueError(_unknown_message(prediction))


def error_to_eps(schedule: NoiseSchedule, prediction: Prediction) -> torch.Tensor:
    """c_t (t = 0..T, float64) with ‖ε − ε̂‖² = c_t·‖target − prediction‖²: 1 for ε, SNR_t for x_0, ᾱ_t for v.

    Index 0 (clean data, never trained) is set to 0.
    """
    if prediction == "eps":
        factor = torch.ones_like(schedule.alpha_bars)
    elif prediction == "x0":
        factor = schedule.snr.clone()
    elif prediction == "v":
        factor = schedule.alpha_bars.clone()
    else:
        raise ValueError(_unknown_message(prediction))
    factor[0] = 0.0
    return factor


class EpsilonView(nn.Module):
    """A network that predicts x_0 or v, called as the ε-predictor of the contract: ``self(x_t, t) -> ε̂``.

    ``net`` holds all the weights; checkpoints store ``net`` and the name of its target.
    """

    def __init__(self, net: nn.Module, schedule: NoiseSchedule, prediction: Prediction) -> None:
        super().__init__()
        if check_prediction(prediction) == "eps":
            raise ValueError("an ε-predicting network is used as it is; EpsilonView is for x0 and v")
        self.net = net
        self.prediction = prediction
        sqrt_ab, sqrt_1m_ab = _coefficients(schedule)
        self.register_buffer("sqrt_ab", sqrt_ab, persistent=False)  # (T+1,)
        self.register_buffer("sqrt_1m_ab", sqrt_1m_ab, persistent=False)  # (T+1,)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """ε̂ from the network's x̂_0 or v̂; ``labels`` go to a class-conditional network (`core.conditioning`)."""
        out = (self.net(x_t, t) if labels is None else self.net(x_t, t, labels)).float()
        shape = (len(t),) + (1,) * (x_t.dim() - 1)
        a, s = self.sqrt_ab[t].view(shape), self.sqrt_1m_ab[t].view(shape)  # (B, 1, ...)
        if self.prediction == "x0":
            return (x_t - a * out) / s
        return s * x_t + a * out  # v

    def extra_repr(self) -> str:
        return f"prediction={self.prediction!r}"


def as_eps_model(net: nn.Module, schedule: NoiseSchedule, prediction: Prediction) -> nn.Module:
    """The ε-predictor of a network trained on ``prediction``: the network itself for ε, else an EpsilonView."""
    return net if check_prediction(prediction) == "eps" else EpsilonView(net, schedule, prediction)


def unwrap(model: nn.Module) -> tuple[nn.Module, Prediction]:
    """(the network, what it predicts): the inverse of `as_eps_model`."""
    if isinstance(model, EpsilonView):
        return model.net, model.prediction
    return model, "eps"


def denoising_field(model: nn.Module, schedule: NoiseSchedule, points: torch.Tensor, t: int) -> torch.Tensor:
    """The arrows of the score field at step t ≥ 1, from each point x to the model's denoised guess at this
    step's scale:  √ᾱ_t·x̂₀(x) − x = −√(1 − ᾱ_t)·ε̂(x, t) = (1 − ᾱ_t)·∇ₓ log q_t(x)  (Tweedie's formula).
    An ε-predictor is a denoising score matcher (Vincent 2011): −ε̂/√(1 − ᾱ_t) estimates the score, the
    direction in which x_t grows likelier. Scaled by 1 − ᾱ_t its length is a distance (how far x lies from
    where the model thinks the data is), so arrows of different steps can be compared."""
    eps = model(points, torch.full((len(points),), t, dtype=torch.long, device=points.device))
    return -math.sqrt(1.0 - float(schedule.alpha_bars[t])) * eps
