"""Sample-quality measures.

2D point clouds — sliced Wasserstein distance (Rabin et al. 2011; Bonneel et al. 2015):
    SW₂(X, Y)² = E_θ [ W₂²(⟨X, θ⟩, ⟨Y, θ⟩) ],  θ uniform on the unit circle,
where each 1-D W₂ compares sorted projections (quantile functions). A finite sample of the
data is itself at a non-zero distance from another sample of the same size, so we report the
ratio SW(model, data) / SW(data, data′) at the same sample size: a perfect model scores ≈ 1.

Copies (memorisation, e.g. Carlini et al. 2023 for images): the share of samples that lie within a small
radius of one of the training points. A distribution-level score such as the SW ratio cannot see it: a
model that returns only copies of its training points matches their distribution perfectly.

Return to the start (a chain joined at t₀ from noised data, SDEdit): how far each sample ends from the example
x_0 it was noised from, against how far it lies from the others' examples,
    r = mean_i ‖s_i − x_i‖ / mean_{i≠j} ‖s_i − x_j‖:
0 when every sample came back to its own example, about 1 when the noise left nothing of it.

Diversity (a guided model's side of the trade-off, e.g. classifier-free guidance): the mean distance between two
samples, mean_{i<j} ‖s_i − s_j‖, in whatever space the samples are given (points, pixels or a classifier's
features); it falls to 0 as the samples collapse onto one.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


def _squared_w2(px: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
    """W₂² between the 1-D empirical measures of sorted samples px (K, n) and py (K, m), per row (K,): the integral
    over u in (0, 1) of (F_x⁻¹(u) − F_y⁻¹(u))², where each quantile function is a step, constant between the cuts i/n
    (i/m): summed exactly over the pieces between both sets of cuts. Of equal sizes, the mean squared difference of
    the sorted values."""
    n, m = px.shape[1], py.shape[1]
    if n == m:
        return (px - py).pow(2).mean(dim=1)
    cuts = torch.cat([torch.arange(n + 1, dtype=torch.float64) / n, torch.arange(m + 1, dtype=torch.float64) / m])
    edges = torch.unique(cuts)  # sorted, 0 … 1
    middles = (edges[1:] + edges[:-1]) / 2
    x_at, y_at = px[:, (middles * n).long()], py[:, (middles * m).long()]  # F⁻¹(u) = the ⌊u·n⌋-th smallest
    return ((x_at - y_at).pow(2) * edges.diff()).sum(dim=1)


def sliced_wasserstein(x: torch.Tensor, y: torch.Tensor, *, n_projections: int = 512, seed: int = 0) -> float:
    """SW₂ between point sets x (n, d) and y (m, d), over ``n_projections`` fixed random directions."""
    if x.dim() != 2 or y.dim() != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"point sets must be (n, d) and (m, d) with the same d, got {tuple(x.shape)} and {tuple(y.shape)}")
    if len(x) == 0 or len(y) == 0:
        raise ValueError("point sets must not be empty")
    x, y = x.detach().double().cpu(), y.detach().double().cpu()
    if not (torch.isfinite(x).all() and torch.isfinite(y).all()):
        return math.inf
    directions = torch.randn(n_projections, x.shape[1], generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    directions /= directions.norm(dim=1, keepdim=True)
    px = (directions @ x.T).sort(dim=1).values  # (K, n)
    py = (directions @ y.T).sort(dim=1).values  # (K, m)
    return float(_squared_w2(px, py).mean().sqrt())


N_BASELINES = 4  # pairs of data draws averaged for the SW ratio's denominator


def sliced_wasserstein_ratio(
    samples: torch.Tensor, draw_data: Callable[[int, int], torch.Tensor], *, seed: int = 0,
    n_baselines: int = N_BASELINES,
) -> float:
    """SW(samples, data) / SW(data, data′), both data draws of the samples' size.

    ``draw_data(n, seed)`` returns n data points for a seed (e.g. ``lambda n, s: make_toy2d(name, n, seed=s)``).
    The denominator is averaged over ``n_baselines`` independent pairs to steady it. NaN when it is 0: data of one
    point, whose draws all coincide, gives no scale to measure the samples by.
    """
    reference, baseline = _reference(draw_data, len(samples), seed, n_baselines)
    return _ratio(samples, reference, baseline, seed)


def _reference(draw_data: Callable[[int, int], torch.Tensor], n: int, seed: int,
               n_baselines: int) -> tuple[torch.Tensor, float]:
    """`sliced_wasserstein_ratio`'s draw of the data (n points) and its denominator, SW(data, data′)."""
    reference = draw_data(n, 1_000_003 + seed)
    baseline = sum(
        sliced_wasserstein(draw_data(n, 2_000_003 + seed + k), reference, seed=seed) for k in range(n_baselines)
    ) / n_baselines
    return reference, baseline


def _ratio(samples: torch.Tensor, reference: torch.Tensor, baseline: float, seed: int) -> float:
    return sliced_wasserstein(samples, reference, seed=seed) / baseline if baseline > 0 else math.nan


REAL_DRAW_SEED = 3_000_003  # `real_sw_ratios` draws the data apart from `sliced_wasserstein_ratio`'s own seeds


def real_sw_ratios(draw_data: Callable[[int, int], torch.Tensor], n: int, *, draws: int = 8,
                   seed: int = 0) -> list[float]:
    """The SW ratio of the data itself: ``draws`` fresh draws of n data points, each scored by
    `sliced_wasserstein_ratio` as if it were samples. Their spread is the ratio's noise at this n (moons, n = 1,000:
    0.45–1.49 over 8 draws), against which a model's ratio is read."""
    reference, baseline = _reference(draw_data, n, seed, N_BASELINES)  # one denominator for every draw, as each
    # draw's `sliced_wasserstein_ratio` would compute it again
    return [_ratio(draw_data(n, REAL_DRAW_SEED + 1_000 * seed + k), reference, baseline, seed) for k in range(draws)]


def non_finite_count(samples: torch.Tensor) -> int:
    """How many of ``samples`` (N, ...) hold a NaN or infinite value: a diverged model's."""
    return int((~torch.isfinite(samples)).flatten(1).any(1).sum())


def copy_fraction(samples: torch.Tensor, training_points: torch.Tensor, radius: float) -> float:
    """The share of ``samples`` (N, D) that lie within ``radius`` (Euclidean) of one of ``training_points``
    (M, D): copies of training points."""
    nearest = torch.cat([torch.cdist(chunk.float(), training_points.float()).min(dim=1).values
                         for chunk in samples.split(1024)])
    return float((nearest <= radius).float().mean())


def return_ratio(samples: torch.Tensor, starts: torch.Tensor, *, max_pairs: int = 1000) -> float:
    """How close the samples (N, ...) of a chain joined at t₀ came back to the examples (N, ...) they were noised
    from, pairwise: mean ‖s_i − x_i‖ over mean ‖s_i − x_j‖ (x_j ≠ x_i; over the first ``max_pairs`` of each when N is
    larger). 0: each came back to its own example; ≈ 1: no closer to it than to any other. The others leave out the
    copies of x_i (a small training set is drawn from with replacement); with no two examples apart, the ratio is
    not defined (it had read 1, "nothing left", for a one-point set): a ValueError that says so."""
    if samples.shape != starts.shape or len(samples) < 2:
        raise ValueError(f"samples and starts must have the same shape, with at least 2 of each; got "
                         f"{tuple(samples.shape)} and {tuple(starts.shape)}")
    s, x = samples.flatten(1).double().cpu(), starts.flatten(1).double().cpu()
    own = (s - x).norm(dim=1).mean()
    s, x = s[:max_pairs], x[:max_pairs]
    ids = torch.unique(x, dim=0, return_inverse=True)[1]  # equal examples, equal ids (cdist's distances between
    other = ids[:, None] != ids[None, :]  # copies of an image came out 7.5e-7, not 0); (i, j): x_j another than x_i
    if not other.any():
        raise ValueError("The return ratio is not defined here: the examples are all one point, so no sample can "
                         "come nearer its own example than the others.")
    return float(own / torch.cdist(s, x)[other].mean())


def mean_pairwise_distance(samples: torch.Tensor, *, max_samples: int = 2000) -> float:
    """mean_{i<j} ‖s_i − s_j‖ of samples (N, ...) (flattened; the first ``max_samples`` when N is larger): how varied
    they are. Needs N ≥ 2."""
    if len(samples) < 2:
        raise ValueError(f"the mean distance between two samples needs at least 2 samples, got {len(samples)}")
    s = samples[:max_samples].flatten(1).double().cpu()
    n = len(s)
    return float(torch.cdist(s, s).sum() / (n * (n - 1)))
