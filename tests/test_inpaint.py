"""Inpainting (`core.inpaint`) on correlated Gaussian data, where the exact ε* and the exact conditional are known.

For x_0 ~ N(μ, Σ): x_t ~ N(√ᾱ_t μ, C_t), C_t = ᾱ_t Σ + (1 − ᾱ_t) I, and ε*(x_t) = √(1 − ᾱ_t) C_t⁻¹ (x_t − √ᾱ_t μ).
Every step of the chain, the replacement of the known entry and the jump back are then affine maps plus
Gaussian noise, so the mean and covariance of the completions can be propagated exactly (written here from
the equations, independently of core.inpaint). With the first coordinate known, x_0[0] = c, the exact
conditional of the second is N(μ_1 + Σ_10/Σ_00 (c − μ_0), Σ_11 − Σ_10²/Σ_00).
"""

from __future__ import annotations

import math

import pytest
import torch

from core.checkpoints import load_checkpoint
from core.datasets import training_examples
from core.inpaint import IMAGE_MASKS, POINT_MASKS, inpaint, iter_inpaint, known_mask
from core.sampler import chain_timesteps, timesteps
from core.schedules import NoiseSchedule, make_schedule
from tests.conftest import REPO

MU = torch.tensor([0.5, -0.3], dtype=torch.float64)
SIGMA = torch.tensor([[1.0, 0.72], [0.72, 0.64]], dtype=torch.float64)  # correlation 0.9
C = 1.2  # the known first coordinate
N = 10_000
KNOWN = torch.tensor([True, False])


def exact_eps(schedule: NoiseSchedule):
    ab = schedule.alpha_bars

    def model(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a = float(ab[int(t[0])])
        cov = a * SIGMA + (1 - a) * torch.eye(2, dtype=torch.float64)
        return (math.sqrt(1 - a) * torch.linalg.solve(cov, (x.double() - math.sqrt(a) * MU).T).T).to(x.dtype)

    return model


def conditional() -> tuple[float, float]:
    """Mean and standard deviation of x_0[1] given x_0[0] = C."""
    mean = MU[1] + SIGMA[1, 0] / SIGMA[0, 0] * (C - MU[0])
    return float(mean), math.sqrt(float(SIGMA[1, 1] - SIGMA[1, 0] ** 2 / SIGMA[0, 0]))


def propagate(schedule: NoiseSchedule, ts: list[int], rounds: int, jump: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact mean (2,) and covariance (2, 2) of the completions of DDPM (σ² = β̃) over ``ts`` with ``rounds``,
    each round going back ``jump`` steps."""
    ab = [float(a) for a in schedule.alpha_bars]
    eye = torch.eye(2, dtype=torch.float64)

    def replace_known(mean, cov, a):  # the known coordinate becomes √a·C + √(1 − a)·ε', independent of the rest
        mean, cov = mean.clone(), cov.clone()
        mean[0], cov[0, :], cov[:, 0] = math.sqrt(a) * C, 0.0, 0.0
        cov[0, 0] = 1 - a
        return mean, cov

    def step(mean, cov, t, s):
        a_t, a_s = ab[t], ab[s]
        K = math.sqrt(1 - a_t) * torch.linalg.inv(a_t * SIGMA + (1 - a_t) * eye)  # ε* = K (x − √ᾱ_t μ)
        P, q = (eye - math.sqrt(1 - a_t) * K) / math.sqrt(a_t), math.sqrt(1 - a_t) * K @ MU  # x̂_0 = P x + q
        beta = 1 - a_t / a_s
        c0, c1 = math.sqrt(a_s) * beta / (1 - a_t), math.sqrt(1 - beta) * (1 - a_s) / (1 - a_t)  # eq. 7
        A, b = c0 * P + c1 * eye, c0 * q
        noise = 0.0 if s == 0 else beta * (1 - a_s) / (1 - a_t)
        return replace_known(A @ mean + b, A @ cov @ A.T + noise * eye, a_s)

    mean, cov = replace_known(torch.zeros(2, dtype=torch.float64), eye.clone(), ab[ts[0]])
    pairs = list(zip(ts, ts[1:] + [0]))
    for first in range(0, len(pairs), jump):
        block = pairs[first : first + jump]
        keep = ab[block[0][0]] / ab[block[-1][1]]  # back from the block's end to its start: ᾱ_{t_0}/ᾱ_{t_J}
        start_mean, start_cov = mean, cov
        for round_ in range(rounds):
            if round_ > 0:  # back to t_0: x = √keep·x + √(1 − keep)·z
                mean, cov = math.sqrt(keep) * mean, keep * cov + (1 - keep) * eye
            else:
                mean, cov = start_mean, start_cov
            for t, s in block:
                mean, cov = step(mean, cov, t, s)
    return mean, cov


def run(schedule: NoiseSchedule, **options) -> torch.Tensor:
    x_0 = torch.tensor([C, 0.0]).expand(N, 2).clone()
    generator = torch.Generator().manual_seed(3)
    return inpaint(exact_eps(schedule), schedule, x_0, KNOWN, generator=generator, **options).double()


@pytest.mark.parametrize("rounds, jump", [(1, 1), (3, 1), (3, 7)])
def test_completions_follow_the_exact_chain(rounds: int, jump: int) -> None:
    schedule = make_schedule("linear", 1000)
    out = run(schedule, steps=50, resample=rounds, jump=jump)
    assert torch.all(out[:, 0] == torch.tensor(C, dtype=torch.float32).double())  # the known entry is kept exactly
    mean, cov = propagate(schedule, timesteps(1000, 50, "ddpm"), rounds, jump)
    std = float(cov[1, 1].sqrt())
    assert abs(float(out[:, 1].mean()) - float(mean[1])) < 4 * std / math.sqrt(N)
    assert float(out[:, 1].std()) == pytest.approx(std, rel=0.03)


def test_replacement_falls_short_and_resampling_reaches_the_conditional() -> None:
    """The replacement method moves the drawn coordinate only part of the way from its marginal to its conditional
    (about three quarters), and leaves it too wide; ten rounds per step bring its mean to the conditional one
    (RePaint), but narrow its spread a little more than they should, the more so the coarser the chain."""
    true_mean, true_std = conditional()
    marginal = float(MU[1])
    schedule = make_schedule("linear", 200)
    full = list(range(200, 0, -1))
    for rounds in (1, 10):  # the sampler runs the chain that the equations give
        out = run(schedule, resample=rounds)[:, 1]
        mean, cov = propagate(schedule, full, rounds)
        assert abs(float(out.mean()) - float(mean[1])) < 4 * float(cov[1, 1].sqrt()) / math.sqrt(N)
        assert float(out.std()) == pytest.approx(float(cov[1, 1].sqrt()), rel=0.03)
    replaced_mean, replaced_cov = propagate(schedule, full, 1)
    assert 0.6 < (float(replaced_mean[1]) - marginal) / (true_mean - marginal) < 0.85
    assert float(replaced_cov[1, 1].sqrt()) > 1.1 * true_std
    thousand = make_schedule("linear", 1000)
    for ts, (low, high) in ((list(range(1000, 0, -1)), (0.95, 1.0)), (timesteps(1000, 100, "ddpm"), (0.8, 0.9))):
        mean, cov = propagate(thousand, ts, 10)
        assert float(mean[1]) == pytest.approx(true_mean, abs=0.01)
        assert low < float(cov[1, 1].sqrt()) / true_std < high


def test_jumps_back_keep_the_spread_that_one_step_resampling_narrows() -> None:
    """Over 100 steps, ten rounds that go back one step at a time bring the mean almost to the conditional one but
    leave the spread 17 % too narrow; going back 10 steps (RePaint's jumps, the same cost) keeps it within 3 %,
    for a mean 96 % of the way."""
    true_mean, true_std = conditional()
    marginal = float(MU[1])
    schedule = make_schedule("linear", 1000)
    ts = timesteps(1000, 100, "ddpm")
    shares, spreads = {}, {}
    for jump in (1, 10):
        mean, cov = propagate(schedule, ts, 10, jump)
        shares[jump] = (float(mean[1]) - marginal) / (true_mean - marginal)
        spreads[jump] = float(cov[1, 1].sqrt()) / true_std
    assert shares[1] > 0.97 and spreads[1] < 0.85
    assert shares[10] > 0.94 and 0.95 < spreads[10] < 1.0


def test_records_and_known_entries() -> None:
    schedule = make_schedule("cosine", 100)
    x_0 = torch.randn(8, 1, 6, 6, generator=torch.Generator().manual_seed(0)).clamp(-1, 1)
    mask = known_mask("left", (1, 6, 6))
    records = list(iter_inpaint(zero_data_eps(schedule), schedule, x_0, mask, method="ddim", steps=10, spacing="log_snr",
                                clip_x0=1.0, resample=2, jump=3, generator=torch.Generator().manual_seed(1)))
    assert [r.t for r in records] == chain_timesteps(schedule, 10, "ddim", "log_snr")
    assert records[-1].t_prev == 0 and all(r.index == k and r.n_steps == 10 for k, r in enumerate(records))
    out = records[-1].x_prev
    assert torch.equal(out[..., :3], x_0[..., :3]) and not torch.equal(out[..., 3:], x_0[..., 3:])
    # x_T's known half is x_0 noised to T, the rest pure noise: both of unit spread at the cosine schedule's T
    assert float(records[0].x_t.std()) == pytest.approx(1.0, abs=0.2)
    again = inpaint(zero_data_eps(schedule), schedule, x_0, mask, method="ddim", steps=10, spacing="log_snr", clip_x0=1.0,
                    resample=2, jump=3, generator=torch.Generator().manual_seed(1))
    assert torch.equal(again, out)  # same seed, same pixels


def zero_data_eps(schedule: NoiseSchedule):
    """The exact ε* of data that is always 0: x_t = √(1 − ᾱ_t)·ε, so ε* = x_t/√(1 − ᾱ_t)."""
    ab = schedule.alpha_bars.float()
    return lambda x, t: x / (1 - ab[t]).sqrt().view(-1, *[1] * (x.dim() - 1))


def test_masks() -> None:
    for name in IMAGE_MASKS:
        mask = known_mask(name, (3, 28, 28), seed=0)
        assert mask.shape == (1, 3, 28, 28) and mask.dtype == torch.bool
        assert torch.equal(mask[:, 0], mask[:, 2])  # the same pixels in every channel
        share = float(mask.float().mean())
        assert share == pytest.approx({"frame": 0.75, "pixels": 0.2}.get(name, 0.5), abs=0.03)
    assert known_mask("left", (1, 4, 4))[0, 0].tolist() == [[True, True, False, False]] * 4
    assert known_mask("top", (1, 4, 4))[0, 0, :, 0].tolist() == [True, True, False, False]
    assert torch.equal(known_mask("pixels", (1, 8, 8), seed=1), known_mask("pixels", (1, 8, 8), seed=1))
    assert not torch.equal(known_mask("pixels", (1, 8, 8), seed=1), known_mask("pixels", (1, 8, 8), seed=2))
    assert known_mask("x", (2,)).tolist() == [[True, False]] and known_mask("y", (2,)).tolist() == [[False, True]]
    assert set(POINT_MASKS) == {"x", "y"}
    for name, shape in (("x", (1, 28, 28)), ("left", (2,)), ("nose", (1, 28, 28))):
        with pytest.raises(ValueError, match="unknown mask"):
            known_mask(name, shape)


def test_refusals() -> None:
    schedule = make_schedule("linear", 50)
    x_0 = torch.zeros(4, 2)
    model = exact_eps(schedule)
    with pytest.raises(ValueError, match="bool"):
        inpaint(model, schedule, x_0, torch.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match="does not fit"):
        inpaint(model, schedule, x_0, torch.tensor([True, False, True]))
    with pytest.raises(ValueError, match="nothing to draw"):
        inpaint(model, schedule, x_0, torch.tensor([True, True]))
    with pytest.raises(ValueError, match="keeps nothing of an example"):
        inpaint(model, schedule, x_0, torch.tensor([False, False]))
    for bad in (0, 101, 2.5, True):
        with pytest.raises(ValueError, match="resampling rounds"):
            inpaint(model, schedule, x_0, KNOWN, resample=bad)
        with pytest.raises(ValueError, match="jump length"):
            inpaint(model, schedule, x_0, KNOWN, jump=bad)
    with pytest.raises(ValueError, match="NaN"):
        inpaint(model, schedule, torch.full((4, 2), math.nan), KNOWN)
    with pytest.raises(ValueError, match="method"):
        inpaint(model, schedule, x_0, KNOWN, method="euler")


def test_resampling_puts_swiss_roll_completions_on_the_roll() -> None:
    """The shipped swiss-roll model, each example's x kept and its y drawn: the replacement method leaves about a
    fifth of the points off the roll (beyond 0.05 of every training point); three rounds per step half that."""
    checkpoint = load_checkpoint(REPO / "checkpoints" / "swiss_roll_linear")
    examples = training_examples(checkpoint.data, checkpoint.points, 1000, seed=0)
    reference = training_examples(checkpoint.data, checkpoint.points, 10_000, seed=7)

    def on_roll(rounds: int) -> float:
        out = inpaint(checkpoint.model, checkpoint.schedule, examples, known_mask("x", (2,)), steps=100,
                      spacing="log_snr", resample=rounds, generator=torch.Generator().manual_seed(0))
        assert torch.equal(out[:, 0], examples[:, 0])
        return float((torch.cdist(out, reference).min(dim=1).values < 0.05).float().mean())

    replaced, resampled = on_roll(1), on_roll(3)
    assert replaced < 0.88 and resampled > 0.9 and resampled - replaced > 0.06
