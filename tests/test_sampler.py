"""Samplers end to end on Gaussian data, where the ideal noise predictor is known in closed form.

For x_0 ~ N(μ, diag(s²)): x_t ~ N(√ᾱ_t μ, v_t), v_t = ᾱ_t s² + 1 − ᾱ_t, and the MMSE noise
predictor is ε*(x_t, t) = E[ε | x_t] = √(1 − ᾱ_t) (x_t − √ᾱ_t μ) / v_t. With it every sampler step
is an affine map plus Gaussian noise, so the exact mean and variance of the chain's output can be
propagated step by step in closed form (written here from the papers' equations, independently of
core.sampler); the samples must match those, and (for the full chain) the data distribution.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from core.ddim_map import encode, iter_encode
from core.inpaint import inpaint
from core.mlp import MLPConfig, MLPDenoiser
from core.sampler import (
    chain_timesteps, initial_noise, iter_sample, log_snr_timesteps, plan_steps, sample, step_from_eps, timesteps,
)
from core.schedules import NoiseSchedule, make_schedule

MU = torch.tensor([1.5, -0.5])
STD = torch.tensor([0.3, 2.0])
N = 20_000


def ideal_eps(schedule: NoiseSchedule):
    ab = schedule.alpha_bars.float()

    def model(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a = ab[t][:, None]
        return (1 - a).sqrt() * (x - a.sqrt() * MU) / (a * STD**2 + 1 - a)

    return model


def propagate(schedule: NoiseSchedule, ts: list[int], method: str, variance: str = "small", eta: float = 0.0,
              start: torch.Tensor | None = None):
    """Exact (mean, var) of the chain output per dimension, starting from x_T ~ N(0, 1), or from the point
    ``start`` (variance 0) at ts[0]."""
    ab = [float(a) for a in schedule.alpha_bars]
    mean, var = torch.zeros(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64)
    if start is not None:
        mean, var = start.double(), torch.zeros(2, dtype=torch.float64)
    mu, s2 = MU.double(), STD.double() ** 2
    for t, s in zip(ts, ts[1:] + [0]):
        a_t, a_s = ab[t], ab[s]
        v = a_t * s2 + 1 - a_t
        k = math.sqrt(1 - a_t) / v  # ε* = k (x − √ᾱ_t μ)
        # x̂_0 = (x − √(1−ᾱ_t) ε*)/√ᾱ_t = p x + q
        p = (1 - math.sqrt(1 - a_t) * k) / math.sqrt(a_t)
        q = math.sqrt(1 - a_t) * k * math.sqrt(a_t) * mu / math.sqrt(a_t)
        if method == "ddpm":
            beta = 1 - a_t / a_s  # effective β of the (possibly strided) step
            if s == t - 1:  # eq. 11 of Ho et al., written in ε: μ = (x − β_t/√(1−ᾱ_t) ε)/√α_t
                A, B = (1 - beta / math.sqrt(1 - a_t) * k) / math.sqrt(1 - beta), beta / math.sqrt(1 - a_t) * k * math.sqrt(a_t) * mu / math.sqrt(1 - beta)
            else:  # eq. 7 with x̂_0 plugged in
                c0, c1 = math.sqrt(a_s) * beta / (1 - a_t), math.sqrt(1 - beta) * (1 - a_s) / (1 - a_t)
                A, B = c0 * p + c1, c0 * q
            noise_var = 0.0 if s == 0 else (beta * (1 - a_s) / (1 - a_t) if variance == "small" else beta)
        else:  # DDIM eq. 12
            sigma2 = eta**2 * (1 - a_s) / (1 - a_t) * (1 - a_t / a_s)
            c_eps = math.sqrt(1 - a_s - sigma2)
            A = math.sqrt(a_s) * p + c_eps * k
            B = math.sqrt(a_s) * q - c_eps * k * math.sqrt(a_t) * mu
            noise_var = sigma2
        mean, var = A * mean + B, A**2 * var + noise_var
    return mean, var


def run(schedule, **options):
    x_T, generator = initial_noise((N, 2), seed=123)
    return sample(ideal_eps(schedule), schedule, x_T, generator=generator, **options).double()


CASES = [
    ("linear", dict(method="ddpm"), 0.02),
    ("linear", dict(method="ddpm", variance="large"), 0.02),
    ("cosine", dict(method="ddpm"), 0.02),
    ("linear", dict(method="ddpm", steps=100), 0.12),
    ("cosine", dict(method="ddpm", steps=50, variance="large"), 0.12),
    ("linear", dict(method="ddim", steps=50), 0.12),
    ("sigmoid", dict(method="ddim", steps=100), 0.12),
    ("cosine", dict(method="ddim", steps=50, eta=1.0), 0.2),
    ("cosine", dict(method="ddpm", steps=50, spacing="log_snr"), 0.12),
    ("linear", dict(method="ddim", steps=50, spacing="log_snr"), 0.12),
]


@pytest.mark.parametrize("name, options, data_tolerance", CASES)
def test_gaussian_data_moments(name: str, options: dict, data_tolerance: float) -> None:
    schedule = make_schedule(name, 1000)
    out = run(schedule, **options)
    ts = chain_timesteps(schedule, options.get("steps"), options["method"], options.get("spacing", "uniform"))
    mean, var = propagate(schedule, ts, options["method"], options.get("variance", "small"), options.get("eta", 0.0))
    std = var.sqrt()
    # 1) the sampler computes exactly the chain of the equations (up to Monte-Carlo error)
    assert torch.allclose(out.mean(0), mean, atol=4 * float(std.max()) / math.sqrt(N))
    assert torch.allclose(out.std(0), std, rtol=0.03)
    # 2) that chain reproduces the data; the full DDPM chain closely, few-step chains within their
    #    known discretisation error (few-step samplers shrink the variance of Gaussian data)
    assert torch.allclose(mean, MU.double(), atol=0.02)
    assert torch.allclose(std, STD.double(), rtol=data_tolerance)


@pytest.mark.parametrize("t0, options, tolerance", [
    (40, dict(method="ddpm"), 0.06), (300, dict(method="ddpm"), 0.02), (700, dict(method="ddpm"), 0.02),
    (300, dict(method="ddim", steps=100, eta=1.0), 0.1), (500, dict(method="ddpm", steps=50, spacing="log_snr"), 0.15),
])
def test_chain_joined_at_t0_samples_the_posterior_of_its_start(t0: int, options: dict, tolerance: float) -> None:
    """SDEdit: joined at t0 from one fixed x_t0 = c, the chain with the exact ε* samples p(x_0 | x_t0 = c). For
    Gaussian data that posterior is N(m, v) per dimension, v = 1/(1/s² + ᾱ/(1 − ᾱ)), m = v·(μ/s² + √ᾱ·c/(1 − ᾱ)).
    (Strided chains shrink the variance a little, as from x_T; deterministic DDIM maps c to one point.)"""
    schedule = make_schedule("linear", 1000)
    c = torch.tensor([0.4, 1.0])
    generator = torch.Generator().manual_seed(5)
    out = sample(ideal_eps(schedule), schedule, c.expand(N, 2).clone(), start_t=t0, generator=generator,
                 **options).double()
    ts = chain_timesteps(schedule, options.get("steps"), options["method"], options.get("spacing", "uniform"), t0)
    assert ts[0] == t0 and ts[1] < t0
    mean, var = propagate(schedule, ts, options["method"], eta=options.get("eta", 0.0), start=c)
    assert torch.allclose(out.mean(0), mean, atol=4 * float(var.sqrt().max()) / math.sqrt(N))
    assert torch.allclose(out.std(0), var.sqrt(), rtol=0.03)
    a, s2 = float(schedule.alpha_bars[t0]), STD.double() ** 2
    v = 1 / (1 / s2 + a / (1 - a))
    m = v * (MU.double() / s2 + math.sqrt(a) * c.double() / (1 - a))
    assert torch.allclose(out.mean(0), m, atol=0.02 + 4 * float(v.sqrt().max()) / math.sqrt(N))
    assert torch.allclose(out.std(0), v.sqrt(), rtol=tolerance)


def test_chain_joined_at_t0_runs_the_chain_below_it() -> None:
    schedule = make_schedule("linear", 100)
    assert chain_timesteps(schedule, None, "ddpm", start_t=30) == list(range(30, 0, -1))
    assert chain_timesteps(schedule, 10, "ddim", start_t=50) == [50] + [t for t in timesteps(100, 10, "ddim") if t < 50]
    assert chain_timesteps(schedule, 10, "ddim", start_t=100) == timesteps(100, 10, "ddim")
    assert chain_timesteps(schedule, None, "ddpm", start_t=1) == [1]
    x, g = initial_noise((4, 2), seed=0)
    records = list(iter_sample(ideal_eps(schedule), schedule, x, start_t=20, generator=g))
    assert [r.t for r in records] == list(range(20, 0, -1)) and torch.equal(records[0].x_t, x)
    for bad in (0, 101, 2.5, True):
        with pytest.raises(ValueError, match="first step"):
            chain_timesteps(schedule, None, "ddpm", start_t=bad)


def test_records_and_last_step() -> None:
    schedule = make_schedule("linear", 100)
    x_T, g = initial_noise((16, 2), seed=0)
    records = list(iter_sample(ideal_eps(schedule), schedule, x_T, method="ddpm", steps=10, generator=g))
    assert [r.t for r in records] == timesteps(100, 10, "ddpm")
    assert records[0].t == 100 and records[-1].t == 1 and records[-1].t_prev == 0
    assert [r.t_prev for r in records] == [r.t for r in records[1:]] + [0]
    for prev, nxt in zip(records, records[1:]):
        assert torch.equal(prev.x_prev, nxt.x_t)
    last = records[-1]
    assert torch.equal(last.x_prev, last.x0_pred), "no noise on the last step: x_0 is the final x̂_0"
    as_dict = dict(last)  # records read like dicts (the contract's keys among theirs)
    assert {"t", "t_prev", "x_t", "x_prev", "x0_pred", "eps_pred"} <= as_dict.keys() and as_dict["t"] == last["t"] == 1
    large = list(iter_sample(ideal_eps(schedule), schedule, x_T, method="ddpm", variance="large", steps=10, generator=g))
    assert torch.equal(large[-1].x_prev, large[-1].x0_pred), "σ² = β too: no noise on the last step"
    assert set(["t", "t_prev", "x_t", "x_prev", "x0_pred", "eps_pred"]) <= set(vars(last))
    assert all(key in last for key in ("t", "x0_pred")) and "nope" not in last and 0 not in last  # read like a dict
    assert last["t"] == last.t == 1
    assert torch.equal(last["x_prev"], last.x_prev)


def test_timesteps() -> None:
    assert timesteps(1000, None, "ddpm") == list(range(1000, 0, -1))
    assert timesteps(1000, None, "ddim") == timesteps(1000, 50, "ddim")
    ts = timesteps(1000, 7, "ddim")
    assert ts[0] == 1000 and ts[-1] == 1 and len(set(ts)) == 7 and ts == sorted(ts, reverse=True)
    assert timesteps(10, 10, "ddpm") == list(range(10, 0, -1))
    assert timesteps(1000, 50, "ddim")[:4] == [1000, 980, 959, 939]  # rounded, not truncated: 1000 − k·999/49
    assert timesteps(10, 1, "ddim") == [10]
    for bad in (0, 11, 2.5):
        with pytest.raises(ValueError, match="sampling steps"):
            timesteps(10, bad, "ddpm")
    assert timesteps(10, np.int64(5), "ddim") == timesteps(10, 5, "ddim")  # numpy's ints had been refused


@pytest.mark.parametrize("name", ["linear", "cosine", "sigmoid"])
def test_log_snr_timesteps_are_evenly_spaced_in_log_snr(name: str) -> None:
    schedule = make_schedule(name, 1000)
    for steps in (1, 2, 7, 50, 333):
        ts = log_snr_timesteps(schedule, steps, "ddpm")
        assert len(ts) == steps and ts[0] == 1000 and ts == sorted(set(ts), reverse=True) and ts[-1] >= 1
        assert steps == 1 or ts[-1] == 1
    assert log_snr_timesteps(schedule, None, "ddpm") == list(range(1000, 0, -1))
    assert log_snr_timesteps(schedule, None, "ddim") == log_snr_timesteps(schedule, 50, "ddim")
    # an error δ in ε̂ at a DDIM step t → s moves x_s by |√(1 − ᾱ_s) − √(ᾱ_s/SNR_t)|·δ, about √(ᾱ_s/ᾱ_t)·δ where
    # ᾱ_t ≪ ᾱ_s: evenly spaced t makes the first jump huge on schedules with a tiny ᾱ_T; evenly spaced λ has every
    # step shrink it, bar the capped β_T step t = T → T − 1
    ab = schedule.alpha_bars.double()

    def gains(ts: list[int]) -> list[float]:  # in closed form, and as the sampler's steps give it
        closed = [float(((1 - ab[s]).sqrt() - (ab[s] * (1 - ab[t]) / ab[t]).sqrt()).abs()) for t, s in zip(ts, ts[1:])]
        assert closed == pytest.approx([c.eps_error_gain for c in plan_steps(schedule, ts, "ddim")][:-1], rel=1e-9)
        return closed

    log_snr, uniform = gains(log_snr_timesteps(schedule, 50, "ddim")), gains(timesteps(1000, 50, "ddim"))
    top = 1 / math.sqrt(1 - float(schedule.betas[-1]))  # 1/√α_T: the full chain's own first step
    assert log_snr[0] <= max(top, 1.0) and max(log_snr[1:]) <= 1.0 + 1e-9  # README: ×31, then ×1.0, 0.5, 0.33, …
    if name == "linear":
        assert max(log_snr) < 1 and max(uniform) < 1  # ᾱ_T = 4e-5: both spacings are fine (uniform's first: 0.22)
    else:
        assert uniform[0] > 4 * top  # cosine: ≈ 631, sigmoid ≈ 144, where the full chain has 1/√α_T ≈ 32


@pytest.mark.parametrize("name", ["cosine", "sigmoid"])
def test_log_snr_spacing_keeps_strided_ddpm_robust_to_model_error(name: str) -> None:
    """ε* + 0.01 (a small, constant error, as a trained net has at high noise): on schedules ending at
    β_T = 0.999 evenly spaced strided chains amplify it, DDIM by far the most; DDPM on λ-spaced steps does
    about as well as the full chain."""
    schedule = make_schedule(name, 1000)
    ideal = ideal_eps(schedule)

    def mean_error(**options) -> float:
        x_T, generator = initial_noise((N, 2), seed=123)
        out = sample(lambda x, t: ideal(x, t) + 0.01, schedule, x_T, generator=generator, **options)
        return float((out.double().mean(0) - MU).abs().max())

    full = mean_error(method="ddpm")
    assert full < 0.1
    assert mean_error(method="ddpm", steps=50, spacing="log_snr") < 0.15
    assert mean_error(method="ddpm", steps=50) > 0.4
    assert mean_error(method="ddim", steps=50) > 2.0


def test_same_seed_same_samples_and_different_seed_differs() -> None:
    schedule = make_schedule("cosine", 200)
    model = ideal_eps(schedule)

    def draw(seed: int) -> torch.Tensor:
        x_T, g = initial_noise((64, 2), seed=seed)
        return sample(model, schedule, x_T, generator=g)

    assert torch.equal(draw(5), draw(5))
    assert not torch.allclose(draw(5), draw(6))


def test_callback_sees_every_step_and_can_stop() -> None:
    schedule = make_schedule("linear", 50)
    x_T, g = initial_noise((8, 2), seed=0)
    seen = []
    sample(ideal_eps(schedule), schedule, x_T, generator=g, callback=lambda r: seen.append(r.t))
    assert seen == list(range(50, 0, -1))
    stopped = []
    out = sample(ideal_eps(schedule), schedule, x_T, generator=g, callback=lambda r: stopped.append(r.t) or len(stopped) < 5)
    assert stopped == [50, 49, 48, 47, 46] and out.shape == x_T.shape


def test_clip_x0_only_when_asked() -> None:
    schedule = make_schedule("linear", 100)
    big = lambda x, t: torch.full_like(x, -50.0)  # noqa: E731  (x̂_0 far outside [−1, 1])
    x_T, g = initial_noise((4, 1, 2, 2), seed=0)
    clipped = list(iter_sample(big, schedule, x_T, clip_x0=1.0, steps=5, generator=g))
    assert all(float(r.x0_pred.abs().max()) <= 1.0 for r in clipped)
    # ε̂ is re-derived from the clipped x̂_0, so x̂_0 and ε̂ stay consistent with x_t
    r = clipped[1]
    ab = float(schedule.alpha_bars[r.t])
    assert torch.allclose(r.x_t, math.sqrt(ab) * r.x0_pred + math.sqrt(1 - ab) * r.eps_pred, atol=1e-4)
    unclipped = list(iter_sample(big, schedule, x_T, steps=5, generator=g))
    assert float(unclipped[1].x0_pred.abs().max()) > 1.0


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(method="euler"), "method"),
        (dict(variance="medium"), "variance"),
        (dict(method="ddim", eta=1.5), "eta"),
        (dict(steps=0), "sampling steps"),
        (dict(steps=101), "sampling steps"),
        (dict(clip_x0=-1.0), "clip_x0"),
        (dict(clip_x0=True), "clip_x0 must be a positive bound"),
        (dict(eta=0.5), "eta is DDIM's; DDPM's noise is set by variance"),
        (dict(method="ddim", variance="large"), "variance is DDPM's; DDIM's noise is set by eta"),
        (dict(steps=10, spacing="karras"), "spacing"),
    ],
)
def test_bad_options(options: dict, message: str) -> None:
    schedule = make_schedule("linear", 100)
    with pytest.raises(ValueError, match=message):
        sample(ideal_eps(schedule), schedule, torch.zeros(2, 2), **options)


def test_a_single_step_refuses_an_unknown_method_too() -> None:
    """`step_from_eps` is public (the Reverse tab's anatomy calls it): any method but "ddpm" had taken DDIM's step."""
    schedule = make_schedule("linear", 100)
    step = plan_steps(schedule, [10, 5], "ddpm")[0]
    with pytest.raises(ValueError, match="method must be one of"):
        step_from_eps(torch.zeros(2, 2), torch.zeros(2, 2), step, "euler")


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_ddim_at_eta_1_takes_the_ddpm_posterior_step_on_any_chain(name: str) -> None:
    """Song et al. eq. 16: σ(η = 1) = √((1 − ᾱ_s)/(1 − ᾱ_t))·√(1 − ᾱ_t/ᾱ_s), the posterior's standard deviation √β̃ for
    the step t → s, strided or not; and the step's mean, √ᾱ_s·x̂₀ + √(1 − ᾱ_s − σ²)·ε̂, is the posterior mean at x̂₀.
    (The moment tests allow a few per cent, which a σ without its first square root passed.)"""
    schedule = make_schedule(name, 1000)
    ts = timesteps(1000, 50, "ddim")
    ddim, ddpm = plan_steps(schedule, ts, "ddim", eta=1.0), plan_steps(schedule, ts, "ddpm", variance="small")
    x_t, x0 = 0.7, -0.3
    for a, b in zip(ddim[:-1], ddpm[:-1]):
        assert (a.t, a.s) == (b.t, b.s) and a.sigma == pytest.approx(b.sigma, rel=1e-9), (a.t, a.s)
        eps = (x_t - a.sqrt_ab_t * x0) / a.sqrt_1m_ab_t
        assert a.c_x0 * x0 + a.c_eps * eps == pytest.approx(b.c_x0 * x0 + b.c_xt * x_t, rel=1e-9, abs=1e-12)
    assert ddim[-1].sigma == ddpm[-1].sigma == 0.0


def test_a_chain_keeps_no_graph_and_gives_plain_tensors() -> None:
    """With autograd on (a notebook's default), a chain of a network with trainable weights keeps no graph: every
    step's graph had been kept, 14 MB a step for 2,000 points. `sample`'s result is a plain tensor: under inference
    mode it had been an inference tensor, which in-place ops and autograd refuse."""
    schedule = make_schedule("linear", 30)
    model = MLPDenoiser(MLPConfig(hidden=16, depth=1, emb_dim=8)).eval()
    assert torch.is_grad_enabled() and all(p.requires_grad for p in model.parameters())
    x_T, generator = initial_noise((4, 2), seed=0)
    for record in iter_sample(model, schedule, x_T, generator=generator):
        assert not record.x_prev.requires_grad and not record.eps_pred.requires_grad, record.t
    for record in iter_encode(model, schedule, x_T, steps=5):
        assert not record.x_t.requires_grad, record.t
    outputs = [sample(model, schedule, x_T, steps=5, method="ddim"), encode(model, schedule, x_T, steps=5),
               inpaint(model, schedule, x_T, torch.tensor([True, False]), steps=5)]
    for out in outputs:
        assert not out.is_inference() and not out.requires_grad
        out.add_(1.0)  # "Inplace update to inference tensor outside InferenceMode" before


def test_a_start_in_another_dtype_than_the_weights_is_refused_in_words() -> None:
    """NumPy data arrives as float64: it had failed in the network's first layer ("expected m1 and m2 to have the
    same dtype")."""
    schedule = make_schedule("linear", 30)
    model = MLPDenoiser(MLPConfig(hidden=16, depth=1, emb_dim=8))
    x = torch.from_numpy(np.zeros((3, 2)))
    for run in (lambda: sample(model, schedule, x), lambda: encode(model, schedule, x),
                lambda: inpaint(model, schedule, x, torch.tensor([True, False]))):
        with pytest.raises(ValueError, match=r"is torch.float64, but the model's weights are torch.float32: pass"):
            run()
    assert sample(model.double(), schedule, x, steps=3).dtype == torch.float64  # weights in float64: fine
