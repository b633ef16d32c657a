"""DDIM's deterministic map (core.ddim_map) on Gaussian data, where the probability-flow map is known in closed form.

For x_0 ~ N(μ, diag(s²)) and the exact ε* (see tests/test_sampler.py), the DDIM ODE carries each quantile of the
data to the same quantile of x_t ~ N(√ᾱ_t μ, v_t), v_t = ᾱ_t s² + 1 − ᾱ_t:  x_t = √ᾱ_t μ + √v_t/s · (x_0 − μ).
Encoding must approach that map as the steps shrink, and decoding must give x_0 back.
"""

from __future__ import annotations

import math

import pytest
import torch

from core.ddim_map import encode, encoding_timesteps, iter_encode, noise_circle, noise_path
from core.sampler import chain_timesteps, sample
from core.schedules import make_schedule
from tests.test_sampler import MU, STD, ideal_eps


def data(n: int = 4000) -> torch.Tensor:
    return MU + STD * torch.randn(n, 2, generator=torch.Generator().manual_seed(0))


def flow_map(schedule, x0: torch.Tensor, t: int) -> torch.Tensor:
    a = float(schedule.alpha_bars[t])
    return math.sqrt(a) * MU + (a * STD**2 + 1 - a).sqrt() / STD * (x0 - MU)


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_encoding_follows_the_closed_form_flow_and_decoding_undoes_it(name: str) -> None:
    schedule = make_schedule(name, 1000)
    model, x0 = ideal_eps(schedule), data()
    x_T = encode(model, schedule, x0, steps=1000)
    assert (x_T - flow_map(schedule, x0, 1000)).abs().max() < 0.04
    assert x_T.mean(0).abs().max() < 0.05 and (x_T.std(0) - 1).abs().max() < 0.05  # N(0, I), as the sampler starts
    back = sample(model, schedule, x_T, method="ddim", steps=1000)
    assert (back - x0).abs().max() < 0.04


def test_encoding_errors_shrink_with_the_step_size() -> None:
    schedule = make_schedule("linear", 1000)
    model, x0 = ideal_eps(schedule), data(1000)
    exact = flow_map(schedule, x0, 1000)
    errors = [float((encode(model, schedule, x0, steps=steps) - exact).abs().mean()) for steps in (20, 50, 200)]
    assert errors[0] > 2 * errors[1] > 4 * errors[2] > 0  # first order: about ∝ 1/steps


def test_records_climb_the_reversed_chain_from_x0() -> None:
    schedule = make_schedule("cosine", 100)
    model, x0 = ideal_eps(schedule), data(50)
    assert encoding_timesteps(schedule, 10, "log_snr") == chain_timesteps(schedule, 10, "ddim", "log_snr")[::-1]
    records = list(iter_encode(model, schedule, x0, steps=10, spacing="log_snr"))
    assert [(r.s, r.t) for r in records] == list(zip([0, *encoding_timesteps(schedule, 10, "log_snr")[:-1]],
                                                     encoding_timesteps(schedule, 10, "log_snr")))
    assert records[-1].t == 100 and records[0].x_s is x0 and torch.equal(records[0].x0_pred, x0)
    for before, after in zip(records, records[1:]):
        assert after.x_s is before.x_t
    a = float(schedule.alpha_bars[records[3].t])
    assert torch.allclose(records[3].x_t, math.sqrt(a) * records[3].x0_pred + math.sqrt(1 - a) * records[3].eps_pred)


def test_clipping_only_when_asked_and_never_of_x0_itself() -> None:
    schedule = make_schedule("linear", 100)

    def pushy(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:  # an ε̂ that makes x̂_0 leave [−1, 1]
        return -3 * t.view(-1, 1, 1, 1) / 100 * torch.ones_like(x)

    x0 = torch.full((4, 1, 2, 2), 0.9)
    free = list(iter_encode(pushy, schedule, x0, steps=10))
    clipped = list(iter_encode(pushy, schedule, x0, steps=10, clip_x0=1.0))
    assert torch.equal(clipped[0].x0_pred, x0)
    assert max(float(r.x0_pred.abs().max()) for r in free) > 1.5
    assert all(float(r.x0_pred.abs().max()) <= 1.0 for r in clipped)
    for r in clipped[1:]:  # ε̂ re-derived from the clipped x̂₀, as the decoder does: x_s = √ᾱ_s·x̂₀ + √(1 − ᾱ_s)·ε̂
        torch.testing.assert_close(r.x_s, schedule.q_sample(r.x0_pred, r.s, r.eps_pred))
    with pytest.raises(ValueError, match="clip_x0"):
        encode(pushy, schedule, x0, clip_x0=0)
    with pytest.raises(ValueError, match="from 1 to T = 100"):
        encode(pushy, schedule, x0, steps=101)


def test_the_spherical_path_stays_standard_normal_and_the_straight_line_does_not() -> None:
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(20_000, 8, generator=g), torch.randn(20_000, 8, generator=g)
    path = noise_path(a, b, [0, 0.25, 0.5, 1])
    assert path.shape == (4, 20_000, 8) and torch.equal(path[0], a) and torch.allclose(path[-1], b, atol=1e-6)
    assert [round(float(p.var()), 2) for p in path] == [1.0, 1.0, 1.0, 1.0]
    torch.testing.assert_close(noise_path(a, b, [0, 0.25, 1], "linear"), torch.stack([a, 0.75 * a + 0.25 * b, b]))
    line = noise_path(a, b, [0.5], "linear")[0]
    assert torch.allclose(line, (a + b) / 2) and abs(float(line.var()) - 0.5) < 0.02
    with pytest.raises(ValueError, match="same shape"):
        noise_path(a, b[:, :4], [0.5])
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        noise_path(a, b, [1.5], "linear")
    with pytest.raises(ValueError, match="a full turn"):
        noise_path(a, b, [4.5])
    with pytest.raises(ValueError, match="path kind"):
        noise_path(a, b, [0.5], "straight")  # type: ignore[arg-type]


def test_the_noise_circle_is_a_closed_loop_of_standard_normal_noise() -> None:
    g = torch.Generator().manual_seed(2)
    a, b = torch.randn(20_000, 8, generator=g), torch.randn(20_000, 8, generator=g)
    circle = noise_circle(a, b, 12)
    assert circle.shape == (12, 20_000, 8) and torch.equal(circle[0], a)
    assert torch.allclose(circle[3], b, atol=1e-6) and torch.allclose(circle[6], -a, atol=1e-6)  # θ = π/2, π
    assert [round(float(x.var()), 2) for x in circle] == [1.0] * 12
    steps = (circle.roll(-1, dims=0) - circle).flatten(1).norm(dim=1)  # the last step closes the loop onto x_a
    assert torch.allclose(steps, steps.mean(), rtol=0.03)
    assert float(steps.mean()) == pytest.approx(2 * math.sin(math.pi / 12) * float(a.norm()), rel=0.03)
    with pytest.raises(ValueError, match="at least 2"):
        noise_circle(a, b, 1)
