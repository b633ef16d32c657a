"""The variational bound (core.elbo) on Gaussian data, where every term has a closed form.

For x_0 ~ N(μ, diag(s²)) and the exact ε* (tests/test_sampler.py), x̂_0 is the posterior mean E[x_0 | x_t], whose
error has variance Var(x_0 | x_t) = s²(1 − ᾱ_t)/(ᾱ_t s² + 1 − ᾱ_t); with σ_t² = β̃_t the term L_{t−1} is then
c_x0²·Var(x_0 | x_t)/(2β̃_t) per dimension. The whole bound can never fall below the data's entropy, ½ log(2πe s²).
"""

from __future__ import annotations

import math

import pytest
import torch

from core.elbo import (
    discretised_gaussian_nll, epsilon_weights, gaussian_kl, measured_timesteps, variational_bound, variational_bounds,
)
from core.schedules import make_schedule
from tests.test_sampler import MU, STD, ideal_eps

ENTROPY = float((0.5 * torch.log(2 * math.pi * math.e * STD.double() ** 2)).mean())  # nats per dimension


def data(n: int = 4000) -> torch.Tensor:
    return MU + STD * torch.randn(n, 2, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def linear():
    schedule = make_schedule("linear", 1000)
    return schedule, ideal_eps(schedule), data()


def test_each_term_matches_its_closed_form(linear) -> None:
    schedule, model, x0 = linear
    bound = variational_bound(model, schedule, x0, generator=torch.Generator().manual_seed(1))
    assert bound.ts == list(range(2, 1001)) and bound.weights == [1] * 999
    for t in (2, 10, 100, 500):
        c_x0, _, posterior_var = schedule.posterior_coefficients(t, t - 1)
        a = float(schedule.alpha_bars[t])
        expected = float((c_x0**2 * STD.double() ** 2 * (1 - a) / (a * STD.double() ** 2 + 1 - a) / (2 * posterior_var)).mean())
        assert bound.terms[t - 2] == pytest.approx(expected, rel=0.08)
    a_T = float(schedule.alpha_bars[-1])  # L_T: KL(N(√ᾱ_T x_0, 1 − ᾱ_T) ‖ N(0, 1)), averaged over the data
    prior = 0.5 * (a_T * float((x0.double() ** 2).mean()) + (1 - a_T) - 1 - math.log(1 - a_T))
    assert bound.prior == pytest.approx(prior, rel=1e-6)


def test_the_bound_is_tight_with_sigma2_beta_and_loose_with_beta_tilde(linear) -> None:
    """The data's true reverse step has variance ≈ β_t at small t (the data are wide beside the noise there): σ² = β_t
    makes the bound nearly the entropy, σ² = β̃_t ≈ β_t/2 leaves almost half a nat per dimension in the first terms."""
    schedule, model, x0 = linear
    large = variational_bound(model, schedule, x0, variance="large", generator=torch.Generator().manual_seed(1))
    small = variational_bound(model, schedule, x0, variance="small", generator=torch.Generator().manual_seed(1))
    assert ENTROPY - 0.02 < large.total < ENTROPY + 0.03
    assert small.total > ENTROPY + 0.3
    assert sum(small.terms[:10]) - sum(large.terms[:10]) > 0.3  # where the difference lies
    assert small.bits_per_dim == pytest.approx(small.total / math.log(2))


def test_a_model_that_knows_less_gets_a_looser_bound(linear) -> None:
    schedule, model, x0 = linear
    exact = variational_bound(model, schedule, x0, variance="large", generator=torch.Generator().manual_seed(1))
    blurred = variational_bound(lambda x, t: 0.9 * model(x, t), schedule, x0, variance="large",
                                generator=torch.Generator().manual_seed(1))
    assert blurred.total > exact.total + 0.03


def test_a_few_measured_terms_estimate_the_sum(linear) -> None:
    schedule, model, x0 = linear
    full = variational_bound(model, schedule, x0, generator=torch.Generator().manual_seed(1))
    ts, weights = measured_timesteps(1000, 50, torch.Generator().manual_seed(0))
    assert len(ts) <= 50 and sum(weights) == 999 and ts[:5] == [2, 3, 4, 5, 6]  # single steps first
    assert ts == sorted(ts) and all(w >= 1 for w in weights)
    estimates = [variational_bound(model, schedule, x0, n_t=50, generator=torch.Generator().manual_seed(s)).total
                 for s in range(3)]
    assert all(abs(e - full.total) < 0.1 for e in estimates)
    for bad in (0, 2000.0, "50", True):  # 2000.0 had meant all terms, and "50" failed inside the comparison
        with pytest.raises(ValueError, match="whole number ≥ 1"):
            measured_timesteps(1000, bad)


def test_the_discretised_decoder_is_a_distribution_over_the_256_levels() -> None:
    levels = torch.arange(256, dtype=torch.float64) / 127.5 - 1
    for mean, std in [(0.3, 0.01), (-0.99, 0.2), (1.5, 0.05), (0.0, 1e-3)]:
        mass = torch.exp(-discretised_gaussian_nll(levels, torch.full_like(levels, mean), std))
        assert float(mass.sum()) == pytest.approx(1.0, abs=1e-9)
    # a sharp decoder centred on the level: nearly all its mass in that bin; the end bins reach to ±∞
    assert float(discretised_gaussian_nll(levels[100:101], levels[100:101], 5e-4)) < 1e-9  # ±7.8σ in the bin
    assert float(discretised_gaussian_nll(torch.tensor([1.0]), torch.tensor([5.0]), 0.1)) < 1e-9


def test_the_discretised_decoder_is_exact_far_in_its_tails() -> None:
    """A bin many σ from x̂₀ (an under-trained model's) has the mass Φ(z_upper) − Φ(z_lower), from erfc (exact in the
    tail): Φ itself is 0 in float64 below z ≈ −8.3, which gave such bins mass 0 and an NLL of 691 nats."""
    def phi(z: float) -> float:
        return 0.5 * math.erfc(-z / math.sqrt(2))

    half = 1 / 255
    for level, mean, std in [(129 / 127.5 - 1, 0.99, 0.1), (127 / 127.5 - 1, 0.99, 0.03), (64 / 127.5 - 1, -0.9, 0.02),
                             (128 / 127.5 - 1, -0.99, 0.03)]:  # the last two above the mean: mirrored
        z_upper, z_lower = (level + half - mean) / std, (level - half - mean) / std
        mass = phi(z_upper) - phi(z_lower) if z_lower < 0 else phi(-z_lower) - phi(-z_upper)  # by symmetry
        expected = -math.log(mass)
        x, x0_hat = torch.tensor([level], dtype=torch.float64), torch.tensor([mean], dtype=torch.float64)
        got = float(discretised_gaussian_nll(x, x0_hat, std))
        assert got == pytest.approx(expected, rel=1e-9), (level, mean, std)
        assert 40 < got < 700


def test_gaussian_kl_closed_form() -> None:
    assert float(gaussian_kl(torch.tensor(0.0), 1.0, torch.tensor(0.0), 1.0)) == 0.0
    assert float(gaussian_kl(torch.tensor(1.0), 2.0, torch.tensor(0.0), 4.0)) == pytest.approx(
        0.5 * (math.log(2) + 0.5 - 1 + 0.25))


def test_both_variances_come_from_the_same_model_calls(linear) -> None:
    schedule, model, x0 = linear
    calls = []

    def counted(x, t):
        calls.append(int(t[0]))
        return model(x, t)

    both = variational_bounds(counted, schedule, x0[:500], n_t=30, generator=torch.Generator().manual_seed(4))
    assert len(calls) == len(both["small"].ts) + 1  # one per measured term, one for the decoder
    alone = variational_bound(model, schedule, x0[:500], variance="large", n_t=30, generator=torch.Generator().manual_seed(4))
    assert both["large"] == alone and both["small"].ts == alone.ts and both["small"].decoder == alone.decoder
    with pytest.raises(ValueError, match="variances must be some of small, large"):
        variational_bound(model, schedule, x0, variance="tiny")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_each_term_is_the_epsilon_error_weighted_by_eq_12(name: str) -> None:
    """L_{t−1} = w_t·E‖ε − ε̂‖² per dimension, with w_t = β_t²/(2σ_t²α_t(1 − ᾱ_t)) = ½(SNR_{t−1}/SNR_t − 1) for
    σ² = β̃ (plus ½(log(β/β̃) + β̃/β − 1) for σ² = β)."""
    schedule = make_schedule(name, 1000)
    model, x0 = ideal_eps(schedule), data()
    small, large = epsilon_weights(schedule, "small"), epsilon_weights(schedule, "large")
    snr = schedule.snr
    assert torch.isnan(small[:2]).all() and torch.allclose(small[2:], 0.5 * (snr[1:-1] / snr[2:] - 1), rtol=1e-9)
    bounds = variational_bounds(model, schedule, x0, generator=torch.Generator().manual_seed(1))
    for t in (2, 30, 400):
        noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(t))
        error = float((noise - model(schedule.q_sample(x0, t, noise), torch.full((len(x0),), t))).pow(2).mean())
        assert bounds["small"].terms[t - 2] == pytest.approx(float(small[t]) * error, rel=0.1)
        beta, posterior = float(schedule.betas[t]), schedule.posterior_coefficients(t, t - 1)[2]
        constant = 0.5 * (math.log(beta / posterior) + posterior / beta - 1)
        assert bounds["large"].terms[t - 2] == pytest.approx(float(large[t]) * error + constant, rel=0.1)
    with pytest.raises(ValueError, match="variance must be one of"):
        epsilon_weights(schedule, "medium")  # type: ignore[arg-type]


def test_the_bound_clips_x0_as_the_sampler_does() -> None:
    """A network whose x̂₀ is 50 everywhere, clipped to 1, on data x₀ = 0.5: each term L_{t−1} is the KL between
    posteriors of equal variance β̃_t whose means differ by c_x0·(x₀ − 1), c_x0²·0.25/(2β̃_t); the decoder is the
    Gaussian density of x₀ about 1 with variance β₁, ½·0.25/β₁ + ln √β₁ + ½ ln 2π (nats per dimension)."""
    schedule = make_schedule("linear", 100)
    ab = schedule.alpha_bars.float()

    def fifty(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:  # ε̂ that makes x̂₀ = 50
        a = ab[t].view(-1, 1)
        return (x_t - a.sqrt() * 50) / (1 - a).sqrt()

    bound = variational_bound(fifty, schedule, torch.full((4, 2), 0.5), clip_x0=1.0,
                              generator=torch.Generator().manual_seed(0))
    for t, term in zip(bound.ts, bound.terms):
        c_x0, _, posterior_var = schedule.posterior_coefficients(t, t - 1)
        assert term == pytest.approx(c_x0**2 * 0.25 / (2 * posterior_var), rel=1e-4), t
    beta_1 = float(schedule.betas[1])
    assert bound.decoder == pytest.approx(0.125 / beta_1 + 0.5 * math.log(beta_1) + 0.5 * math.log(2 * math.pi), rel=1e-4)
