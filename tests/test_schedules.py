"""Noise schedules against closed forms and known values; forward process and posterior."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from core.mlp import MLPConfig, MLPDenoiser
from core.sampler import chain_timesteps, plan_steps
from core.schedules import ALPHA_BAR_FLOOR, MAX_T, MIN_BETA_1, SCHEDULE_NAMES, make_schedule, schedule_from_config
from core.trainer import TrainConfig, Trainer, loss_weights
from core.unet import UNet, unet_config


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
@pytest.mark.parametrize("T", [50, 1000])
def test_invariants(name: str, T: int) -> None:
    s = make_schedule(name, T)
    assert s.betas.dtype == s.alpha_bars.dtype == torch.float64
    assert len(s.betas) == len(s.alphas) == len(s.alpha_bars) == T + 1
    assert s.betas[0] == 0 and s.alpha_bars[0] == 1
    assert ((s.betas[1:] > 0) & (s.betas[1:] < 1)).all()
    assert (s.alpha_bars[1:] < s.alpha_bars[:-1]).all(), "ᾱ must strictly decrease"
    assert torch.allclose(s.alpha_bars, torch.cumprod(1 - s.betas, 0))
    assert s.reaches_noise, f"{name} at T={T} ends at ᾱ_T={s.alpha_bar_T}"


def test_linear_known_values() -> None:
    s = make_schedule("linear", 1000)
    assert s.betas[1] == pytest.approx(1e-4) and s.betas[1000] == pytest.approx(0.02)
    assert s.alpha_bar_T == pytest.approx(4.04e-5, rel=0.01)
    # scaled by 1000/T for other T: same ends of the diffusion in "time"
    s100 = make_schedule("linear", 100)
    assert s100.betas[1] == pytest.approx(1e-3) and s100.betas[100] == pytest.approx(0.2)
    unscaled = make_schedule("linear", 100, scale_with_T=False)
    assert unscaled.betas[100] == pytest.approx(0.02) and not unscaled.reaches_noise


def test_cosine_known_values() -> None:
    s = make_schedule("cosine", 1000)
    assert float(s.betas[1]) == pytest.approx(4.128e-5, rel=1e-3)
    f = lambda t: math.cos((t / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    for t in (1, 250, 500, 900):
        assert float(s.alpha_bars[t]) == pytest.approx(f(t) / f(0), rel=1e-9)
    assert float(s.betas.max()) == pytest.approx(0.999)  # capped at the end


def test_sigmoid_is_alpha_bar_space() -> None:
    s = make_schedule("sigmoid", 1000)
    assert float(s.alpha_bars[500]) == pytest.approx(0.5, abs=1e-9)
    assert s.t_snr_one == pytest.approx(500, abs=1e-6)
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    expected = (sig(3) - sig(-3 + 6 * 0.25)) / (sig(3) - sig(-3))
    assert float(s.alpha_bars[250]) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("T", [10, 1000])
def test_sigmoid_with_too_small_a_tau_says_so(T) -> None:
    """At τ = 0.1 (start −3, end 3) ᾱ_t underflows long before T: the error names τ, not a β of 0."""
    with pytest.raises(ValueError, match=f"τ = 0.1 is too small for start = -3, end = 3 and T = {T}"):
        make_schedule("sigmoid", T, tau=0.1)
    assert make_schedule("sigmoid", T, tau=0.15).betas[1:].min() > 0
    with pytest.raises(ValueError, match="τ = 1e[+]308 is too large for start = -3 and end = 3.*use a smaller τ"):
        make_schedule("sigmoid", T, tau=1e308)  # its advice had been to use a larger τ
    assert make_schedule("sigmoid", T, tau=1e3).alpha_bars[-1] < 1e-3


def test_sigmoid_beta_is_geodiff() -> None:
    s = make_schedule("sigmoid_beta", 1000)
    x = torch.linspace(-6, 6, 1000, dtype=torch.float64)
    assert torch.allclose(s.betas[1:], torch.sigmoid(x) * (0.02 - 1e-4) + 1e-4)


def test_quadratic_is_square_of_linspace_of_roots() -> None:
    s = make_schedule("quadratic", 1000)
    expected = torch.linspace(1e-4**0.5, 0.02**0.5, 1000, dtype=torch.float64) ** 2
    assert torch.allclose(s.betas[1:], expected)
    assert float(s.betas[1000]) == pytest.approx(0.02)


def test_snr_and_log_snr() -> None:
    s = make_schedule("linear", 1000)
    ab = s.alpha_bars[1:]
    assert torch.allclose(s.snr[1:], ab / (1 - ab))
    assert torch.allclose(s.log_snr[1:], torch.log(ab / (1 - ab)))
    t = s.t_snr_one
    lo = int(math.floor(t))
    assert float(s.snr[lo]) >= 1 >= float(s.snr[lo + 1])
    assert s.snr_T == pytest.approx(s.alpha_bar_T / (1 - s.alpha_bar_T))


def test_q_sample_moments() -> None:
    s = make_schedule("cosine", 1000)
    g = torch.Generator().manual_seed(0)
    x0 = torch.full((200_000, 1), 2.0)
    for t in (1, 300, 700, 1000):
        xt = s.q_sample(x0, t, torch.randn(x0.shape, generator=g))
        ab = float(s.alpha_bars[t])
        assert float(xt.mean()) == pytest.approx(2 * math.sqrt(ab), abs=0.01)
        assert float(xt.std()) == pytest.approx(math.sqrt(1 - ab), rel=0.01, abs=1e-4)
    assert torch.equal(s.q_sample(x0[:4], 0, torch.randn(4, 1)), x0[:4])  # t = 0 is the clean data


def test_steps_of_the_forward_chain_multiply_x0_by_sqrt_alpha_bar() -> None:
    """Without noise, t steps of q(x_s | x_{s−1}) leave ∏√(1 − β_s)·x_0 = √ᾱ_t·x_0; with a noise, each adds √β_t·ε."""
    s = make_schedule("cosine", 200)
    x0 = torch.randn(5, 3, dtype=torch.float64)
    x = x0
    for t in range(1, 201):
        x = s.q_step(x, t, torch.zeros_like(x0))
        assert torch.allclose(x, s.alpha_bars[t].sqrt() * x0, rtol=1e-12, atol=0)
    eps = torch.randn(5, 3, dtype=torch.float64)
    beta = s.betas[17]
    assert torch.allclose(s.q_step(x0, 17, eps), (1 - beta).sqrt() * x0 + beta.sqrt() * eps, rtol=1e-12)
    for bad in (0, 201):
        with pytest.raises(ValueError, match="1..200"):
            s.q_step(x0, bad, eps)


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_the_forward_chain_reaches_the_law_of_the_one_jump(name: str) -> None:
    """t steps with fresh noise each give x_t ~ N(√ᾱ_t·x_0, (1 − ᾱ_t) I): the slope of x_t on x_0 is √ᾱ_t, and the
    noise part's root-mean-square follows √(1 − ᾱ_s) at every step (eq. 4)."""
    s = make_schedule(name, 120)
    x0 = torch.rand(100_000, dtype=torch.float64) * 4 - 2
    for t in (1, 30, 120):
        xt, rms = s.q_chain(x0, t, torch.Generator().manual_seed(t))
        assert rms.shape == (t + 1,) and rms[0] == 0
        theory = (1 - s.alpha_bars[1:t + 1]).sqrt()
        assert torch.allclose(rms[1:], theory, rtol=0.015)
        slope = float(((xt - xt.mean()) * (x0 - x0.mean())).sum() / (x0 - x0.mean()).square().sum())
        assert slope == pytest.approx(float(s.alpha_bars[t].sqrt()), abs=0.01)
        residual = xt - float(s.alpha_bars[t].sqrt()) * x0
        assert float(residual.mean()) == pytest.approx(0, abs=0.01)
        assert float(residual.std()) == pytest.approx(float(theory[-1]), rel=0.015)
    same, _ = s.q_chain(x0[:10], 50, torch.Generator().manual_seed(3))
    again, _ = s.q_chain(x0[:10], 50, torch.Generator().manual_seed(3))
    assert torch.equal(same, again)  # a seed gives the same chain
    _, near = s.q_chain(x0[:1000], 60, torch.Generator().manual_seed(4))
    _, far = s.q_chain(x0[:1000] + 100, 60, torch.Generator().manual_seed(4))
    torch.testing.assert_close(far, near, rtol=1e-9, atol=0)  # the noise part's RMS: x_s − √ᾱ_s·x_0 at the same s
    start, rms = s.q_chain(x0[:10], 0)
    assert torch.equal(start, x0[:10]) and rms.tolist() == [0.0]
    with pytest.raises(ValueError, match="0..120"):
        s.q_chain(x0, 121)


def test_q_sample_per_example_t() -> None:
    s = make_schedule("linear", 100)
    x0, noise = torch.randn(3, 2, 4, 4), torch.randn(3, 2, 4, 4)
    t = torch.tensor([0, 50, 100])
    batched = s.q_sample(x0, t, noise)
    for i in range(3):
        assert torch.allclose(batched[i], s.q_sample(x0[i : i + 1], int(t[i]), noise[i : i + 1])[0])
    with pytest.raises(ValueError, match="0..100"):
        s.q_sample(x0, torch.tensor([0, 1, 101]), noise)


def test_predict_x0_inverts_q_sample() -> None:
    s = make_schedule("sigmoid", 500)
    x0, eps = torch.randn(8, 2, dtype=torch.float64), torch.randn(8, 2, dtype=torch.float64)
    t = torch.randint(1, 501, (8,))
    xt = s.q_sample(x0, t, eps)
    assert torch.allclose(s.predict_x0(xt, t, eps), x0, atol=1e-6)
    assert torch.allclose(s.predict_eps(xt, t, x0), eps, atol=1e-6)


@pytest.mark.parametrize("t, t_prev", [(10, 9), (500, 499), (1, 0), (400, 100), (1000, 0)])
def test_posterior_matches_direct_gaussian_conditioning(t: int, t_prev: int) -> None:
    """q(x_s | x_t, x_0) from the joint Gaussian of (x_s, x_t) given x_0, computed directly."""
    s = make_schedule("linear", 1000)
    ab_t, ab_s = float(s.alpha_bars[t]), float(s.alpha_bars[t_prev])
    # Given x_0: x_s = √ᾱ_s x_0 + √(1−ᾱ_s) e1 ; x_t = √(ᾱ_t/ᾱ_s) x_s + √(1−ᾱ_t/ᾱ_s) e2.
    var_s, var_t = 1 - ab_s, 1 - ab_t
    cov_st = math.sqrt(ab_t / ab_s) * var_s
    x0, xt = torch.tensor([0.7], dtype=torch.float64), torch.tensor([-1.3], dtype=torch.float64)
    direct_mean = math.sqrt(ab_s) * x0 + cov_st / var_t * (xt - math.sqrt(ab_t) * x0)
    direct_var = var_s - cov_st**2 / var_t
    mean, var = s.posterior_mean_variance(x0, xt, t, t_prev)
    assert torch.allclose(mean, direct_mean, atol=1e-12)
    assert var == pytest.approx(direct_var, abs=1e-12)
    if t_prev == t - 1:
        beta = float(s.betas[t])
        assert var == pytest.approx(beta * (1 - ab_s) / (1 - ab_t), abs=1e-15)  # β̃_t, eq. 7
    if t_prev == 0:
        assert var == 0 and torch.allclose(mean, x0)


def test_posterior_takes_one_t_per_example_as_q_sample_does() -> None:
    """A batch of t (and of t_prev) gives each example its own posterior, the scalar one's; t had to be one int
    ("Boolean value of Tensor with more than one value is ambiguous"). A t that fits neither one t nor one per
    example is refused in words (q_sample had failed in broadcasting)."""
    s = make_schedule("cosine", 1000)
    x0, xt = torch.randn(4, 3, 2, dtype=torch.float64), torch.randn(4, 3, 2, dtype=torch.float64)
    t, t_prev = torch.tensor([1, 10, 500, 1000]), torch.tensor([0, 3, 499, 10])
    for prev in (None, t_prev):
        mean, var = s.posterior_mean_variance(x0, xt, t, prev)
        assert mean.shape == x0.shape and var.shape == (4, 1, 1)
        for i in range(4):
            one_mean, one_var = s.posterior_mean_variance(x0[i], xt[i], int(t[i]), None if prev is None else int(prev[i]))
            assert torch.allclose(mean[i], one_mean, atol=1e-12) and float(var[i]) == pytest.approx(one_var, abs=1e-15)
    with pytest.raises(ValueError, match="t_prev < t"):
        s.posterior_mean_variance(x0, xt, t, t)
    with pytest.raises(ValueError, match="t_prev < t"):  # t = 0 in a batch, as the scalar one: it had wrapped to ᾱ_T
        s.posterior_mean_variance(x0, xt, torch.tensor([0, 10, 500, 1000]))
    with pytest.raises(ValueError, match="t holds 3 timesteps for a batch of 4"):
        s.q_sample(x0, torch.tensor([1, 2, 3]), xt)


def test_alpha_bar_and_log_snr_past_float64_underflow() -> None:
    """ᾱ_T = 10^−467 (linear at T = 10,000 with β up to 0.2, unscaled) is below float64: the product of the α_t had
    stuck at the smallest float, 9.9e−324, and log-SNR read −744. ᾱ_T rounds to 0, and log-SNR is Σ log(1 − β_t)."""
    s = make_schedule("linear", 10_000, beta_end=0.2, scale_with_T=False)
    exact = math.fsum(math.log1p(-b) for b in s.betas[1:].tolist())
    assert exact < -1000 and s.alpha_bar_T == s.snr_T == 0.0
    assert float(s.log_snr[-1]) == pytest.approx(exact, rel=1e-12) and float(s.log_alpha_bars[-1]) == pytest.approx(exact)
    assert torch.all(torch.diff(s.log_snr[1:]) < 0)  # decreasing to the end (it had gone flat from t ≈ 8,400)
    # the table stops at float64's smallest normal number: the steps past it are steps of β = 0, and what divides by
    # ᾱ_t stays finite (at exactly 0, Min-SNR weights were 0/0 and DDIM's plan divided by zero)
    assert float(s.alpha_bars.min()) == ALPHA_BAR_FLOOR
    assert torch.isfinite(loss_weights(s, 5.0)).all()
    for spacing in ("uniform", "log_snr"):
        plan = plan_steps(s, chain_timesteps(s, 50, "ddim", spacing), "ddim")
        assert all(math.isfinite(c.c_eps) and math.isfinite(c.sigma) for c in plan)
    trainer = Trainer(MLPDenoiser(MLPConfig(hidden=8, depth=1, emb_dim=8)), s, torch.randn(64, 2),
                      TrainConfig(steps=2, batch_size=8, min_snr_gamma=5.0))
    assert [ev.reason for ev in trainer.run()][-1] == "finished"  # Min-SNR had diverged at its first step
    usual = make_schedule("linear", 1000)
    assert torch.allclose(usual.alpha_bars, torch.cumprod(1 - usual.betas, 0), rtol=1e-13, atol=0)


def test_config_round_trip() -> None:
    for name in SCHEDULE_NAMES:
        s = make_schedule(name, 300)
        assert torch.equal(schedule_from_config(s.to_config()).betas, s.betas)
    custom = make_schedule("custom", 4, betas=[0.1, 0.2, 0.3, 0.4])
    assert torch.equal(schedule_from_config(custom.to_config()).betas, custom.betas)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: make_schedule("cosin", 100), "Unknown noise schedule"),
        (lambda: make_schedule("linear", 1), "between 2 and"),
        (lambda: make_schedule("linear", MAX_T + 1), "between 2 and"),
        (lambda: make_schedule("linear", 10.5), "whole number"),
        (lambda: make_schedule("linear", 1000, beta_end=1.5), "beta_end must lie in"),
        (lambda: make_schedule("linear", 1000, beta_start=-0.1), "beta_start must lie in"),
        (lambda: make_schedule("linear", 1000, beta_start=float("nan")), "finite"),
        (lambda: make_schedule("linear", 10), "larger T"),
        (lambda: make_schedule("cosine", 100, s=float("inf")), "finite"),
        (lambda: make_schedule("cosine", 100, foo=1), "Unknown parameter"),
        (lambda: make_schedule("sigmoid", 100, start=3, end=-3), "must be below"),
        (lambda: make_schedule("sigmoid", 100, tau=0), "tau must be positive"),
        (lambda: make_schedule("custom", 3, betas=[0.3, 0.2, 0.1]), "must not decrease"),
        (lambda: make_schedule("custom", 3, betas=[0.1, 0.2, 1.0]), r"\(0, 1\)"),
        (lambda: make_schedule("custom", 3, betas=[0.1, float("nan"), 0.2]), "NaN"),
        (lambda: make_schedule("custom", 3, betas=[0.1, 0.2]), "expected T = 3"),
    ],
)
def test_bad_input_raises_value_error(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_a_beta_1_lost_to_rounding_is_refused_and_the_floor_keeps_the_first_step_finite() -> None:
    """β_1 = 1e-18 passed: 1 − ᾱ_1 rounded to 0 in float64, the posterior at t = 1 was 0/0 and every sample NaN."""
    for build in (lambda: make_schedule("linear", 100, beta_start=1e-18, scale_with_T=False),
                  lambda: make_schedule("custom", 3, betas=[1e-20, 0.5, 0.9])):
        with pytest.raises(ValueError, match="β_1 = 1e-.. is too small"):
            build()
    at_floor = make_schedule("custom", 3, betas=[MIN_BETA_1, 0.5, 0.9])
    assert float(1 - at_floor.alpha_bars[1]) == pytest.approx(MIN_BETA_1, rel=1e-3)
    assert all(math.isfinite(c) for c in at_floor.posterior_coefficients(1, 0))
    assert math.isfinite(float(at_floor.log_snr[1]))


def test_timesteps_that_are_not_whole_are_refused_not_rounded_down() -> None:
    """q_sample(x0, 2.7, ε) was q_sample(x0, 2, ε), 1000.9 passed as 1000 with T = 1000, and True as 1; numpy's ints
    were refused as T. The models took a float t as given and a (B, 1) one failed inside a matrix product."""
    schedule, x0, noise = make_schedule("linear", 1000), torch.ones(4, 2), torch.zeros(4, 2)
    for t in (2.7, 1000.9, torch.tensor([0.5, 1.5, 2.5, 999.9])):
        with pytest.raises(ValueError, match="t must be whole numbers of steps"):
            schedule.q_sample(x0, t, noise)
    with pytest.raises(ValueError, match="got a bool"):
        schedule.q_sample(x0, True, noise)
    assert torch.equal(schedule.q_sample(x0, 3.0, noise), schedule.q_sample(x0, 3, noise))  # a whole float is one
    assert torch.equal(schedule.q_sample(x0, torch.tensor([1.0, 2.0, 3.0, 4.0]), noise),
                       schedule.q_sample(x0, torch.tensor([1, 2, 3, 4]), noise))
    with pytest.raises(ValueError, match="ε̂ is defined for t in 1..T"):
        schedule.predict_eps(x0, 0, x0)  # was NaN, without a word
    assert make_schedule("linear", np.int64(100)).T == 100
    for model in (MLPDenoiser(MLPConfig(hidden=16, depth=1, emb_dim=8)), UNet(unet_config("tiny", 28, 1))):
        x = torch.zeros(5, 2) if isinstance(model, MLPDenoiser) else torch.zeros(5, 1, 28, 28)
        for t, message in ((torch.full((5,), 2.5), "whole timesteps .an integer dtype"), (3, "a tensor of timesteps"),
                           (torch.ones(5, 1, dtype=torch.long), "one timestep per example .B=5.")):
            with pytest.raises(ValueError, match=message):
                model(x, t)
        assert model(x, torch.full((5,), 3)).shape == x.shape
