"""Prediction targets (core.prediction): each exact target gives back the noise, the error factors, Min-SNR
weights per target, and the ideal x_0 and v predictors of Gaussian data sample exactly like the ideal ε one."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from core.prediction import (
    PREDICTIONS, EpsilonView, as_eps_model, check_prediction, denoising_field, error_to_eps, training_target, unwrap,
)
from core.sampler import initial_noise, sample
from core.schedules import NoiseSchedule, make_schedule
from core.trainer import loss_weights

MU = torch.tensor([1.5, -0.5])
STD = torch.tensor([0.3, 2.0])


class Fixed(nn.Module):
    """A "network" that outputs a given tensor (the exact target, or a perturbed one)."""

    def __init__(self, output: torch.Tensor) -> None:
        super().__init__()
        self.output = output

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.output


def draw(schedule: NoiseSchedule, shape: tuple[int, ...], seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.rand(shape, generator=g) * 2 - 1
    noise = torch.randn(shape, generator=g)
    t = torch.randint(1, schedule.T + 1, (shape[0],), generator=g)
    t[0], t[1] = 1, schedule.T  # the ends of the chain, where the conversions are most delicate
    view = (-1,) + (1,) * (len(shape) - 1)
    a, s = schedule.alpha_bars[t].sqrt().float().view(view), (1 - schedule.alpha_bars[t]).sqrt().float().view(view)
    return x0, noise, t, a, s, a * x0 + s * noise


@pytest.mark.parametrize("name", ["linear", "cosine"])
@pytest.mark.parametrize("shape", [(64, 2), (16, 1, 4, 4)])
@pytest.mark.parametrize("prediction", ["x0", "v"])
def test_the_view_of_an_exact_target_is_the_noise(name: str, shape: tuple[int, ...], prediction: str) -> None:
    schedule = make_schedule(name, 1000)
    x0, noise, t, a, s, x_t = draw(schedule, shape)
    target = training_target(prediction, x0, noise, a, s)
    if prediction == "v":  # v = √ᾱ·ε − √(1 − ᾱ)·x_0, written out
        assert torch.allclose(target, a * noise - s * x0)
    view = EpsilonView(Fixed(target), schedule, prediction)
    assert torch.allclose(view(x_t, t), noise, atol=2e-4)
    x0_hat = schedule.predict_x0(x_t.double(), t, view(x_t, t).double()).float()  # and back, where it is well posed
    kept = schedule.alpha_bars[t] > 1e-3
    assert torch.allclose(x0_hat[kept], x0[kept], atol=1e-4)


@pytest.mark.parametrize("prediction", PREDICTIONS)
def test_error_to_eps_relates_the_errors_of_each_target(prediction: str) -> None:
    schedule = make_schedule("linear", 1000)
    x0, noise, t, a, s, x_t = draw(schedule, (256, 2), seed=1)
    target = training_target(prediction, x0, noise, a, s)
    guess = target + 0.1 * torch.randn(target.shape, generator=torch.Generator().manual_seed(2))
    eps_hat = as_eps_model(Fixed(guess), schedule, prediction)(x_t, t)
    eps_error = (eps_hat - noise).pow(2).sum(1).double()
    target_error = (guess - target).pow(2).sum(1).double()
    factor = error_to_eps(schedule, prediction)
    assert torch.allclose(eps_error, factor[t] * target_error, rtol=1e-3, atol=1e-6)
    snr = schedule.snr
    expected = {"eps": torch.ones_like(snr), "x0": snr, "v": schedule.alpha_bars}[prediction]
    assert factor[0] == 0 and torch.allclose(factor[1:], expected[1:])


def test_min_snr_weights_give_every_target_the_same_eps_weighting() -> None:
    schedule, gamma = make_schedule("cosine", 1000), 5.0
    snr = schedule.snr[1:]
    closed = {"eps": torch.clamp(snr, max=gamma) / snr, "x0": torch.clamp(snr, max=gamma),
              "v": torch.clamp(snr, max=gamma) / (snr + 1)}  # Hang et al. 2023, sec. 3.4
    for prediction in PREDICTIONS:
        weights = loss_weights(schedule, gamma, prediction)
        assert weights[0] == 0 and torch.allclose(weights[1:], closed[prediction])
        eps_weights = weights[1:] / error_to_eps(schedule, prediction)[1:]
        assert torch.allclose(eps_weights, closed["eps"])
        assert torch.equal(loss_weights(schedule, 0.0, prediction), torch.ones(1001, dtype=torch.float64))


def ideal_predictors(schedule: NoiseSchedule) -> dict[str, nn.Module]:
    """The MMSE predictors of each target for x_0 ~ N(MU, diag(STD²)) (see tests/test_sampler.py)."""
    ab = schedule.alpha_bars.float()

    class Ideal(nn.Module):
        def __init__(self, prediction: str) -> None:
            super().__init__()
            self.prediction = prediction

        def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            a = ab[t][:, None]
            eps = (1 - a).sqrt() * (x - a.sqrt() * MU) / (a * STD**2 + 1 - a)  # E[ε | x_t]
            x0 = (x - (1 - a).sqrt() * eps) / a.sqrt()  # E[x_0 | x_t]
            return {"eps": eps, "x0": x0, "v": a.sqrt() * eps - (1 - a).sqrt() * x0}[self.prediction]

    return {p: as_eps_model(Ideal(p), schedule, p) for p in PREDICTIONS}


@pytest.mark.parametrize("name, options", [
    ("linear", dict(method="ddpm")), ("cosine", dict(method="ddim", steps=50)),
    ("cosine", dict(method="ddpm", steps=100, spacing="log_snr")),
])
def test_ideal_x0_and_v_predictors_sample_the_data_like_the_ideal_eps_one(name: str, options: dict) -> None:
    schedule = make_schedule(name, 1000)
    samples = {}
    for prediction, model in ideal_predictors(schedule).items():
        x_T, g = initial_noise((20_000, 2), seed=5)
        samples[prediction] = sample(model, schedule, x_T, generator=g, **options)
    for prediction in ("x0", "v"):
        assert torch.allclose(samples[prediction], samples["eps"], atol=2e-3), prediction
    assert torch.allclose(samples["v"].mean(0), MU, atol=0.05)
    assert torch.allclose(samples["x0"].std(0), STD, rtol=0.12)


def test_denoising_field_is_the_exact_tweedie_step_under_the_ideal_predictor() -> None:
    """For Gaussian data N(μ, s²) the ideal ε̂ is known, and (1 − ᾱ_t)·∇log q_t(x) = −(1 − ᾱ_t)(x − √ᾱ_t μ)/v_t
    with v_t = ᾱ_t s² + 1 − ᾱ_t: the field must be that, and the step from x to √ᾱ_t·x̂₀(x)."""
    schedule = make_schedule("cosine", 100)
    ideal = ideal_predictors(schedule)["eps"]
    axis = torch.linspace(-3.75, 3.75, 16)
    x = torch.cartesian_prod(axis, axis)  # (256, 2): the score field's grid
    for t in (1, 30, 100):
        a = float(schedule.alpha_bars[t])
        field = denoising_field(ideal, schedule, x, t)
        expected = -(1 - a) * (x - math.sqrt(a) * MU) / (a * STD**2 + 1 - a)
        torch.testing.assert_close(field, expected, rtol=1e-4, atol=1e-6)
        x0 = schedule.predict_x0(x, t, ideal(x, torch.full((len(x),), t)))
        torch.testing.assert_close(x + field, math.sqrt(a) * x0, rtol=1e-4, atol=1e-5)


def test_wrapping_and_bad_names() -> None:
    schedule = make_schedule("cosine", 10)
    net = nn.Linear(2, 2)
    assert as_eps_model(net, schedule, "eps") is net and unwrap(net) == (net, "eps")
    view = as_eps_model(net, schedule, "v")
    assert isinstance(view, EpsilonView) and unwrap(view) == (net, "v")
    assert list(view.state_dict()) == ["net.weight", "net.bias"]  # the coefficients are not weights
    with pytest.raises(ValueError, match="is used as it is"):
        EpsilonView(net, schedule, "eps")
    with pytest.raises(ValueError, match="choose one of: eps, x0, v"):
        check_prediction("score")
    with pytest.raises(ValueError, match="unknown prediction target 'score'"):
        error_to_eps(schedule, "score")  # type: ignore[arg-type]
