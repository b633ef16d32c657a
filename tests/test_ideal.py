"""The ideal denoiser of a finite training set against closed forms, and what sampling with it gives:
copies of the training points."""

from __future__ import annotations

import math

import pytest
import torch

from core.ideal import CHUNK, IdealDenoiser
from core.metrics import copy_fraction
from core.sampler import initial_noise, sample
from core.schedules import make_schedule

SCHEDULE = make_schedule("linear", 200)


def _t(t: int, n: int) -> torch.Tensor:
    return torch.full((n,), t, dtype=torch.long)


def test_one_training_point_is_always_the_answer():
    point = torch.tensor([[0.7, -1.2]])
    model = IdealDenoiser(point, SCHEDULE)
    x = torch.randn(50, 2, generator=torch.Generator().manual_seed(0)) * 3
    for t in (1, 50, 200):
        a = float(SCHEDULE.alpha_bars[t])
        torch.testing.assert_close(model.x0_mean(x, _t(t, 50)), point.expand(50, 2))
        torch.testing.assert_close(model(x, _t(t, 50)), (x - math.sqrt(a) * point) / math.sqrt(1 - a), rtol=2e-6,
                                   atol=1e-5)


def test_two_points_give_the_tanh_posterior_mean():
    """Points ±m on a line: the posterior mean of x_0 given x_t = x is m·tanh(√ᾱ_t·m·x/(1 − ᾱ_t)) along it."""
    m = 1.5
    model = IdealDenoiser(torch.tensor([[m, 0.0], [-m, 0.0]]), SCHEDULE)
    x = torch.stack([torch.linspace(-3, 3, 41), torch.linspace(-1, 1, 41)], dim=1)
    for t in (5, 40, 120):
        a = float(SCHEDULE.alpha_bars[t])
        expected = m * torch.tanh(math.sqrt(a) * m * x[:, 0] / (1 - a))
        got = model.x0_mean(x, _t(t, len(x)))
        torch.testing.assert_close(got[:, 0], expected, rtol=1e-4, atol=1e-4)
        assert got[:, 1].abs().max() < 1e-6  # the other coordinate carries no information


def test_many_gaussian_points_approach_the_gaussian_ideal_predictor():
    """Points drawn from N(μ, s²): ε* tends to the analytic predictor √(1−ᾱ)(x − √ᾱ μ)/(ᾱ s² + 1 − ᾱ)."""
    mu, std = torch.tensor([1.0, -0.5]), torch.tensor([0.5, 1.5])
    points = mu + std * torch.randn(40_000, 2, generator=torch.Generator().manual_seed(1))
    model = IdealDenoiser(points, SCHEDULE)
    t = 60
    a = float(SCHEDULE.alpha_bars[t])
    x = math.sqrt(a) * mu + torch.randn(200, 2, generator=torch.Generator().manual_seed(2)) * 0.8
    analytic = math.sqrt(1 - a) * (x - math.sqrt(a) * mu) / (a * std**2 + 1 - a)
    assert (model(x, _t(t, 200)) - analytic).abs().max() < 0.03


def test_large_batches_are_split_into_chunks_with_the_same_result():
    points = torch.randn(300, 2, generator=torch.Generator().manual_seed(3))
    model = IdealDenoiser(points, SCHEDULE)
    x = torch.randn(CHUNK * 2 + 7, 2, generator=torch.Generator().manual_seed(4))
    t = torch.randint(1, 201, (len(x),), generator=torch.Generator().manual_seed(5))
    whole = model(x, t)
    for i in (0, CHUNK - 1, CHUNK, 2 * CHUNK + 6):  # first and last rows of the chunks
        torch.testing.assert_close(whole[i : i + 1], model(x[i : i + 1], t[i : i + 1]))


def test_sampling_with_it_returns_copies_of_the_training_points():
    points = torch.randn(50, 2, generator=torch.Generator().manual_seed(6))
    model = IdealDenoiser(points, SCHEDULE)
    x_T, generator = initial_noise((400, 2), seed=0)
    with torch.inference_mode():
        samples = sample(model, SCHEDULE, x_T, method="ddpm", generator=generator)
    assert copy_fraction(samples, points, 0.01) > 0.9
    fresh = torch.randn(400, 2, generator=torch.Generator().manual_seed(7))  # new points of the same law
    assert copy_fraction(fresh, points, 0.01) < 0.05


def test_copy_fraction_counts_samples_near_a_training_point():
    train = torch.tensor([[0.0, 0.0], [5.0, 5.0]])
    samples = torch.tensor([[0.005, 0.0], [5.0, 4.995], [1.0, 1.0], [2.5, 2.5]])
    assert copy_fraction(samples, train, 0.01) == 0.5
    assert copy_fraction(samples, train, 2.0) == 0.75


def test_bad_points_are_refused():
    with pytest.raises(ValueError, match="non-empty"):
        IdealDenoiser(torch.zeros(0, 2), SCHEDULE)
    with pytest.raises(ValueError, match="non-empty"):
        IdealDenoiser(torch.zeros(5), SCHEDULE)


def test_examples_of_any_shape_are_compared_as_vectors_in_float64():
    """Images (N, C, H, W): near t = 1 the weights of 784-pixel examples are differences of terms ~1e7, which
    float32 logits would get wrong by up to 0.07 in x̂_0 between two near-equidistant digits."""
    images = torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(4)) * 2 - 1
    model = IdealDenoiser(images, SCHEDULE)
    flat = IdealDenoiser(images.flatten(1), SCHEDULE)
    x = torch.randn(5, 1, 28, 28, generator=torch.Generator().manual_seed(5))
    for t in (1, 3, 100):
        out = model(x, _t(t, 5))
        assert out.shape == x.shape and out.dtype == torch.float32
        torch.testing.assert_close(out.flatten(1), flat(x.flatten(1), _t(t, 5)))
    # halfway between two images at t = 1 the weights are set by their tiny difference in distance, exactly
    a = float(SCHEDULE.alpha_bars[1])
    mid = math.sqrt(a) * (0.5 * images[0] + 0.5 * images[1]) + 1e-3 * (images[0] - images[1])
    w = torch.softmax(-((mid.double().flatten() - math.sqrt(a) * images[:2].double().flatten(1)) ** 2).sum(1)
                      / (2 * (1 - a)), dim=0)
    expected = (w[:, None] * images[:2].double().flatten(1)).sum(0)
    torch.testing.assert_close(model.x0_mean(mid[None], _t(1, 1)).double().flatten(), expected, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="x_t must be"):
        model(torch.zeros(2, 784), _t(5, 2))
