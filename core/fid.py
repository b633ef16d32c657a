"""Image sample quality: Fréchet distance in a small classifier's feature space, and class coverage.

Fréchet distance (FID, Heusel et al. 2017) between Gaussians fitted to two feature sets,
N(μ₁, Σ₁) and N(μ₂, Σ₂) (the 2-Wasserstein distance between them, squared):

    FD = ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁Σ₂)^{1/2}).

Σ₁Σ₂ is not symmetric, but with A = Σ₁^{1/2}, B = Σ₁^{1/2}Σ₂ it is AB, which has the same
eigenvalues as BA = M = Σ₁^{1/2} Σ₂ Σ₁^{1/2}, symmetric PSD (true even for singular Σ₁), so
Tr (Σ₁Σ₂)^{1/2} = Σᵢ √λᵢ(Σ₁Σ₂) = Σᵢ √λᵢ(M). Both square roots
come from `eigh` of symmetric matrices in float64, with round-off negatives clamped to 0; no
inverse is taken, so singular covariances (fewer samples than dimensions, collapsed samples)
are fine.

The features are φ(x), the penultimate layer of the data set's shipped classifier
(`core.classifier`), not Inception-v3: FID values are comparable only within one classifier.
A finite real sample is itself at a non-zero FD from another real sample of the same size
(FD is biased upwards by roughly Tr Σ / n terms), so `image_quality` compares against that floor.
With R_1..R_D disjoint draws of n real images (n = the number of samples; D = min(4, N // n)
for N real images, at least 2):
    fid       = mean_d FD(samples, R_d)
    fid_real  = mean_{d<e} FD(R_d, R_e)
    fid_ratio = fid / fid_real          (≈ 1: as good as real data)
A single FD at n = 256 varies by about ±25 % from draw to draw on MNIST; the averages steady
both terms. What is left is the ratio's noise, which `real_ratio_range` measures by scoring draws of real images
as if they were samples (MNIST, seed 0: 0.66–1.62 over 40 draws at n = 64; 0.85–2.2 over 20 draws at n = 256,
mean 1.21, as the floor of this seed's reference draws happens to be low).

Class coverage: the classifier labels each sample; with K classes and fractions p_k,
``classes_present`` counts classes with p_k ≥ 0.1/K (a tenth of the uniform share; 1% for
MNIST) and ``max_class_fraction`` = max_k p_k (1/K when balanced, 1 when collapsed on one class).
"""

from __future__ import annotations

import itertools
import math
from functools import lru_cache
from pathlib import Path
from typing import TypedDict

import torch

from core.classifier import load_classifier

PRESENT_SHARE = 0.1  # a class is "present" when its fraction is at least this share of 1/K
MAX_REFERENCE_DRAWS = 4  # disjoint real draws R_d averaged over (fewer when the data set is small)


def _sqrtm_psd(matrix: torch.Tensor) -> torch.Tensor:
    """Symmetric PSD square root (d, d) → (d, d) by eigen-decomposition, negatives clamped to 0."""
    eigenvalues, eigenvectors = torch.linalg.eigh(matrix)
    return (eigenvectors * eigenvalues.clamp(min=0).sqrt()) @ eigenvectors.T


def frechet_distance(feats_a: torch.Tensor, feats_b: torch.Tensor) -> float:
    """FD between Gaussians fitted to feature sets (n, d) and (m, d), in float64 (see module doc).

    Covariances are the unbiased sample covariances. Returns ``inf`` if a set holds NaN or ±inf.
    """
    if feats_a.dim() != 2 or feats_b.dim() != 2 or feats_a.shape[1] != feats_b.shape[1]:
        raise ValueError(f"feature sets must be (n, d) and (m, d) with the same d, got {tuple(feats_a.shape)} and {tuple(feats_b.shape)}")
    if len(feats_a) < 2 or len(feats_b) < 2:
        raise ValueError(f"need at least 2 feature vectors per set for a covariance, got {len(feats_a)} and {len(feats_b)}")
    a, b = feats_a.detach().to("cpu", torch.float64), feats_b.detach().to("cpu", torch.float64)
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        return math.inf
    mu_a, mu_b = a.mean(0), b.mean(0)  # (d,)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)  # (d, d)
    cov_a, cov_b = (cov_a + cov_a.T) / 2, (cov_b + cov_b.T) / 2  # exact symmetry for eigh
    sqrt_a = _sqrtm_psd(cov_a)
    middle = sqrt_a @ cov_b @ sqrt_a  # Σ₁^{1/2} Σ₂ Σ₁^{1/2}, (d, d)
    trace_sqrt = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum()
    fd = (mu_a - mu_b).square().sum() + cov_a.trace() + cov_b.trace() - 2 * trace_sqrt
    return max(float(fd), 0.0)


class ImageQuality(TypedDict):
    """What `image_quality` reports."""

    n: int  # number of samples
    fid: float  # mean_d FD(samples, R_d), R_d disjoint draws of n real images
    fid_real: float  # mean_{d<e} FD(R_d, R_e): the floor at this n
    fid_ratio: float  # fid / fid_real; ≈ 1 is as good as real data
    reference_draws: int  # D, the number of real draws R_d
    class_fractions: list[float]  # p_k, fraction of samples the classifier assigns to class k (K values)
    classes_present: int  # number of classes with p_k ≥ PRESENT_SHARE / K
    max_class_fraction: float  # max_k p_k


def _draw_order(count: int, seed: int) -> torch.Tensor:
    """The order in which the real images are drawn for ``seed``: the reference draws first (`_real_features`), the
    images scored as samples after them (`real_ratio_range`)."""
    return torch.randperm(count, generator=torch.Generator().manual_seed(seed))


@lru_cache(maxsize=8)
def _real_features(dataset_name: str, root: str | None, n: int, seed: int) -> tuple[torch.Tensor, ...]:
    """Classifier features of D = min(MAX_REFERENCE_DRAWS, N // n) disjoint seeded draws of n real images, each (n, F)."""
    from core.image_data import load_image_dataset, to_model_range

    data = load_image_dataset(dataset_name, root=root, split="any")
    draws = min(MAX_REFERENCE_DRAWS, len(data.images) // n)
    if draws < 2:
        raise ValueError(f"image_quality needs 2·n ≤ {len(data.images)} real {dataset_name} images for two disjoint reference draws, got n = {n}")
    images = to_model_range(data.images[_draw_order(len(data.images), seed)[: draws * n]]).float()  # (D·n, C, H, W)
    return tuple(load_classifier(dataset_name).features(images).split(n))  # D × (n, F)


def _fid_to(features: torch.Tensor, real: tuple[torch.Tensor, ...]) -> float:
    """mean_d FD(features, R_d)."""
    return sum(frechet_distance(features, r) for r in real) / len(real)


def _real_floor(real: tuple[torch.Tensor, ...]) -> float:
    """mean_{d<e} FD(R_d, R_e): the distance between two real draws of this size."""
    pairs = list(itertools.combinations(real, 2))
    return sum(frechet_distance(a, b) for a, b in pairs) / len(pairs)


def real_ratio_range(dataset_name: str, n: int, *, draws: int = 8, seed: int = 0,
                     root: str | Path | None = None) -> list[float]:
    """The FID ratio of real images scored as if they were samples: ``draws`` draws of n real images, disjoint from
    each other and from the reference draws of `image_quality` at this ``seed`` (fewer when the data set runs out).
    Their spread is the ratio's noise at this n (MNIST, n = 64: 0.66–1.62 over 40 draws): a model's ratio inside it
    is as good as real data can tell, and two ratios closer than its width are not told apart."""
    from core.image_data import load_image_dataset, to_model_range

    real = _real_features(dataset_name, None if root is None else str(root), n, seed)
    data = load_image_dataset(dataset_name, root=root, split="any")
    unused = _draw_order(len(data.images), seed)[len(real) * n:]
    draws = min(draws, len(unused) // n)
    if draws < 1:
        raise ValueError(f"no {n} real {dataset_name} images are left beside the {len(real)} reference draws of {n} "
                         f"(the data set holds {len(data.images):,}): take fewer")
    images = to_model_range(data.images[unused[: draws * n]]).float()
    floor = _real_floor(real)
    return [_fid_to(features, real) / floor for features in load_classifier(dataset_name).features(images).split(n)]


def class_coverage(labels: torch.Tensor, n_classes: int) -> tuple[list[float], int, float]:
    """(fractions p_k (K,), classes present, max fraction) of predicted class indices (N,)."""
    fractions = torch.bincount(labels, minlength=n_classes).double() / len(labels)  # (K,)
    return fractions.tolist(), int((fractions >= PRESENT_SHARE / n_classes).sum()), float(fractions.max())


def image_quality(samples: torch.Tensor, dataset_name: str, *, seed: int = 0, root: str | Path | None = None) -> ImageQuality:
    """FID ratio and class coverage of generated images against real ``dataset_name`` images.

    ``samples``: (N, C, H, W) float in [−1, 1] (clamped to it, as when saved as an image).
    Real images come from ``core.image_data.load_image_dataset(dataset_name, root=root, split="any")``:
    D = min(4, N_real // N) ≥ 2 disjoint draws of N images chosen by ``seed`` (see the module doc). Raises ValueError
    when no classifier is shipped for the data set, when the samples hold NaN/inf, or when the data
    set has fewer than 2N images.
    """
    if samples.dim() != 4 or len(samples) < 2:
        raise ValueError(f"samples must be a batch of at least 2 images (N, C, H, W), got shape {tuple(samples.shape)}")
    if not torch.isfinite(samples).all():
        raise ValueError("samples contain NaN or inf: the sampler diverged")
    classifier = load_classifier(dataset_name)
    x = samples.detach().float().clamp(-1, 1)
    n = len(x)
    classifier.check_input(x)
    real = _real_features(dataset_name, None if root is None else str(root), n, seed)  # D × (n, F)
    sample_features = classifier.features(x)  # (n, F)
    fid, fid_real = _fid_to(sample_features, real), _real_floor(real)
    labels = classifier.classify_features(sample_features)  # (n,)
    fractions, present, max_fraction = class_coverage(labels, classifier.card.model.n_classes)
    return ImageQuality(
        n=n,
        fid=fid,
        fid_real=fid_real,
        fid_ratio=fid / fid_real,
        reference_draws=len(real),
        class_fractions=fractions,
        classes_present=present,
        max_class_fraction=max_fraction,
    )
