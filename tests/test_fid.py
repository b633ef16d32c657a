"""Fréchet distance maths, the shipped MNIST classifier, and the image-quality report (CPU, seconds)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from core.classifier import load_classifier
from core.fid import frechet_distance, image_quality, real_ratio_range
from core.image_data import load_image_dataset, to_model_range

DATA_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data"
N = 256  # sample size of the image-quality checks


def gaussian_set(mean: torch.Tensor, variances: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """n points (n, d) whose sample mean is exactly ``mean`` and sample covariance exactly diag(variances)."""
    z = torch.randn(n, len(mean), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    z -= z.mean(0)
    z = z @ torch.linalg.inv(torch.linalg.cholesky(torch.cov(z.T))).T  # whitened: cov(z) = I
    return mean + z * variances.sqrt()


# ----- Fréchet distance ------------------------------------------------------------------------
def test_identical_sets_are_at_distance_zero():
    x = torch.randn(300, 32, generator=torch.Generator().manual_seed(0))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)
    assert frechet_distance(x, x.flip(0)) == pytest.approx(0.0, abs=1e-8)  # order does not matter


def test_diagonal_gaussians_match_the_closed_form():
    g = torch.Generator().manual_seed(1)
    d = 8
    mu1, mu2 = torch.randn(d, generator=g, dtype=torch.float64), torch.randn(d, generator=g, dtype=torch.float64)
    a, b = torch.rand(d, generator=g, dtype=torch.float64) * 3 + 0.1, torch.rand(d, generator=g, dtype=torch.float64) * 3 + 0.1
    expected = float((mu1 - mu2).square().sum() + (a.sqrt() - b.sqrt()).square().sum())
    fd = frechet_distance(gaussian_set(mu1, a, 400, seed=2), gaussian_set(mu2, b, 500, seed=3))
    assert fd == pytest.approx(expected, rel=1e-9)


def test_general_covariances_match_eigenvalues_of_the_product():
    """Tr (Σ₁Σ₂)^{1/2} = Σ √λ(Σ₁Σ₂) (real, non-negative eigenvalues), computed independently with eigvals."""
    g = torch.Generator().manual_seed(4)
    a = torch.randn(200, 6, generator=g, dtype=torch.float64) @ torch.randn(6, 6, generator=g, dtype=torch.float64)
    b = torch.randn(150, 6, generator=g, dtype=torch.float64) @ torch.randn(6, 6, generator=g, dtype=torch.float64) + 1.0
    ca, cb = torch.cov(a.T), torch.cov(b.T)
    trace_sqrt = torch.linalg.eigvals(ca @ cb).real.clamp(min=0).sqrt().sum()
    expected = float((a.mean(0) - b.mean(0)).square().sum() + ca.trace() + cb.trace() - 2 * trace_sqrt)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-8)
    assert frechet_distance(b, a) == pytest.approx(expected, rel=1e-8)  # symmetric


def test_singular_covariances_are_handled():
    g = torch.Generator().manual_seed(5)
    few = torch.randn(10, 64, generator=g)  # n < d: rank-9 covariance
    assert frechet_distance(few, few) == pytest.approx(0.0, abs=1e-6)
    assert math.isfinite(frechet_distance(few, torch.randn(20, 64, generator=g)))
    collapsed = torch.ones(50, 4)  # Σ = 0
    other = torch.randn(80, 4, generator=g, dtype=torch.float64)
    expected = float((1 - other.mean(0)).square().sum() + torch.cov(other.T).trace())
    assert frechet_distance(collapsed, other) == pytest.approx(expected, rel=1e-9)


def test_bad_feature_sets():
    with pytest.raises(ValueError, match="same d"):
        frechet_distance(torch.zeros(5, 3), torch.zeros(5, 4))
    with pytest.raises(ValueError, match="at least 2"):
        frechet_distance(torch.zeros(1, 3), torch.zeros(5, 3))
    assert frechet_distance(torch.full((5, 3), math.nan), torch.zeros(5, 3)) == math.inf


# ----- shipped classifier ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def mnist():
    return load_image_dataset("mnist", root=DATA_ROOT, split="test", download=False)


def test_shipped_mnist_classifier_has_its_recorded_held_out_accuracy(mnist):
    classifier = load_classifier("mnist")
    card = classifier.card
    assert card.heldout_accuracy >= 0.98
    assert (card.data.split, card.data.n_total, card.data.n_heldout) == ("test", 10_000, 2_000)
    _, heldout = card.data.indices()
    predicted = classifier.predict(to_model_range(mnist.images[heldout]))
    accuracy = float((predicted == mnist.labels[heldout]).double().mean())
    assert accuracy >= 0.98
    assert accuracy == pytest.approx(card.heldout_accuracy, abs=1.5e-3)  # ≤ 3 images from round-off
    assert classifier.features(to_model_range(mnist.images[:5])).shape == (5, card.model.feature_dim)


def test_no_classifier_for_an_unshipped_data_set():
    with pytest.raises(ValueError, match="no classifier is shipped"):
        load_classifier("fashion_mnist")


# ----- image quality ---------------------------------------------------------------------------
def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (N, 1, H, W), edges replicated."""
    radius = math.ceil(3 * sigma)
    k = torch.exp(-torch.arange(-radius, radius + 1, dtype=torch.float32).square() / (2 * sigma**2))
    k = k / k.sum()
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode="replicate"), k.view(1, 1, -1, 1))


@pytest.fixture(scope="module")
def real_digits(mnist):
    """N real digits in [−1, 1] from the classifier's held-out part."""
    _, heldout = load_classifier("mnist").card.data.indices()
    return to_model_range(mnist.images[heldout[:N]])  # (N, 1, 28, 28)


def quality(samples: torch.Tensor) -> dict:
    return image_quality(samples, "mnist", root=DATA_ROOT)


def test_fid_ratio_separates_real_blurred_and_noise(real_digits):
    real = quality(real_digits)
    blurred = quality(gaussian_blur(real_digits, sigma=1.0))
    noise = quality(torch.rand(N, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1)
    assert real["n"] == blurred["n"] == noise["n"] == N
    assert real["fid_real"] == blurred["fid_real"] > 0  # the same real-vs-real floor
    assert real["reference_draws"] == 4
    assert real["fid_ratio"] == pytest.approx(real["fid"] / real["fid_real"])
    assert 0.7 < real["fid_ratio"] < 1.4  # measured 0.97–1.22 over seeds 0–3
    assert blurred["fid_ratio"] > 3 * real["fid_ratio"]  # σ = 1 px: measured 6.7–10.8
    assert noise["fid_ratio"] > 5 * blurred["fid_ratio"]  # measured 112–163


def test_real_digits_scored_as_samples_spread_around_1_and_that_is_the_ratios_noise(real_digits):
    """At n = 64 real digits themselves score 0.66–1.62 (40 draws, seed 0): a model's ratio inside that spread is as
    good as real data can tell; digits blurred by 1 px score outside it (2.5 against at most 1.43)."""
    scores = real_ratio_range("mnist", 64, draws=8, root=DATA_ROOT)
    assert len(scores) == 8 and len(set(scores)) == 8
    assert 0.5 < min(scores) < 1 < max(scores) < 2.5
    blurred = image_quality(gaussian_blur(real_digits[:64], sigma=1.0), "mnist", root=DATA_ROOT)["fid_ratio"]
    assert blurred > 1.5 * max(scores)
    assert len(real_ratio_range("mnist", 2000, draws=8, root=DATA_ROOT)) == 1  # 4 reference draws use 8,000 of 10,000
    with pytest.raises(ValueError, match="no 2500 real mnist images are left beside the 4 reference draws of 2500"):
        real_ratio_range("mnist", 2500, root=DATA_ROOT)


def test_class_coverage(real_digits):
    real = quality(real_digits)
    assert len(real["class_fractions"]) == 10
    assert sum(real["class_fractions"]) == pytest.approx(1.0)
    assert real["classes_present"] == 10
    assert real["max_class_fraction"] < 0.2
    one_digit = quality(real_digits[:1].repeat(N, 1, 1, 1))
    assert one_digit["classes_present"] == 1
    assert one_digit["max_class_fraction"] == 1.0
    assert one_digit["fid_ratio"] > 10


def test_image_quality_rejects_bad_samples(real_digits):
    with pytest.raises(ValueError, match="shape"):
        quality(real_digits[:, 0])
    with pytest.raises(ValueError, match="NaN"):
        quality(torch.full((4, 1, 28, 28), math.nan))
    with pytest.raises(ValueError, match="2·n"):
        quality(torch.zeros(5_001, 1, 28, 28))
    with pytest.raises(ValueError, match="no classifier is shipped"):
        image_quality(real_digits, "fashion_mnist", root=DATA_ROOT)
