"""Our schedules and samplers against diffusers' (the peer most users know), step for step.

Where both implement the same thing they must agree to rounding: the β tables of the four schedules diffusers has,
and every step of a DDPM or DDIM chain (x_s and x̂_0) given the same network, the same timesteps and the same noise.

Translating between the two:
- diffusers counts timesteps from 0: its timestep k is the paper's (and our) t = k + 1, its ``betas[k]`` our β_(k+1)
  and its ``alphas_cumprod[k]`` our ᾱ_(k+1). Its network is called with k, ours with t.
- Its schedulers keep their tables in float32. The sampler comparisons hand them our float64 ᾱ and run in float64,
  so that any difference is in the formulas, not in the precision.
- Its DDPM follows any list of timesteps (``set_timesteps(timesteps=…)``); its DDIM steps from k to
  k − T // num_inference_steps, so the DDIM comparisons use chains whose stride is exactly that (T = 1000, 10 steps:
  stride 111 = 1000 // 9) and give it our timesteps.
"""

from __future__ import annotations

import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler

from core.mlp import MLPConfig, MLPDenoiser
from core.prediction import as_eps_model, training_target
from core.sampler import chain_timesteps, iter_sample
from core.schedules import NoiseSchedule, make_schedule

# our name → diffusers' beta_schedule (diffusers' "sigmoid" is GeoDiff's β-space one, our "sigmoid_beta")
SAME_SCHEDULES = {"linear": "linear", "quadratic": "scaled_linear", "cosine": "squaredcos_cap_v2",
                  "sigmoid_beta": "sigmoid"}


@pytest.mark.parametrize("ours, theirs", SAME_SCHEDULES.items())
def test_betas_match_diffusers(ours: str, theirs: str) -> None:
    schedule = make_schedule(ours, 1000)
    peer = DDPMScheduler(num_train_timesteps=1000, beta_schedule=theirs)
    assert peer.betas.dtype == torch.float32  # so agreement is to float32's rounding, no better
    torch.testing.assert_close(schedule.betas[1:].float(), peer.betas, rtol=2e-6, atol=0)
    torch.testing.assert_close(schedule.alpha_bars[1:].float(), peer.alphas_cumprod, rtol=2e-5, atol=1e-9)


def network(seed: int = 0) -> torch.nn.Module:
    """A small MLP with random weights, in float64: a network whose ε̂ varies with x_t and t."""
    torch.manual_seed(seed)
    return MLPDenoiser(MLPConfig(hidden=32, depth=2, emb_dim=16)).double().eval()


def peer_scheduler(kind: type, schedule: NoiseSchedule, **config: object):
    """diffusers' scheduler of ``kind`` over our schedule, its ᾱ table replaced by our float64 one."""
    peer = kind(num_train_timesteps=schedule.T, trained_betas=schedule.betas[1:].numpy(), **config)
    peer.alphas_cumprod = schedule.alpha_bars[1:].clone()
    return peer


def run_peer(peer, net: torch.nn.Module, x_T: torch.Tensor, ts: list[int], seed: int, **step_options: object):
    """diffusers' chain over our timesteps ``ts``: the (x_s, x̂_0) of each step."""
    generator = torch.Generator().manual_seed(seed)
    x, out = x_T, []
    for t in ts:
        k = t - 1  # diffusers' timestep
        eps = net(x, torch.full((len(x),), t, dtype=torch.long))  # our network, called with the paper's t
        step = peer.step(eps, k, x, generator=generator, **step_options)
        out.append((step.prev_sample, step.pred_original_sample))
        x = step.prev_sample
    return out


def run_ours(net: torch.nn.Module, schedule: NoiseSchedule, x_T: torch.Tensor, seed: int, **options: object):
    generator = torch.Generator().manual_seed(seed)
    return [(r.x_prev, r.x0_pred) for r in iter_sample(net, schedule, x_T, generator=generator, **options)]


def assert_same_chain(ours, theirs) -> None:
    assert len(ours) == len(theirs)
    for step, ((x_ours, x0_ours), (x_theirs, x0_theirs)) in enumerate(zip(ours, theirs)):
        torch.testing.assert_close(x0_ours, x0_theirs, rtol=1e-9, atol=1e-9, msg=lambda m: f"x̂_0 at step {step}: {m}")
        torch.testing.assert_close(x_ours, x_theirs, rtol=1e-9, atol=1e-9, msg=lambda m: f"x_s at step {step}: {m}")


def start(n: int = 64, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 1.5


@pytest.mark.parametrize("variance, variance_type", [("small", "fixed_small"), ("large", "fixed_large")])
@pytest.mark.parametrize("steps", [None, 7])
@pytest.mark.parametrize("clip_x0", [None, 1.0])
def test_ddpm_matches_diffusers(variance: str, variance_type: str, steps: int | None, clip_x0: float | None) -> None:
    """Ancestral DDPM, the full chain (T = 40) and a strided one: same x̂_0, same posterior mean, same σ."""
    schedule, net, x_T = make_schedule("cosine", 40), network(), start()
    ts = chain_timesteps(schedule, steps, "ddpm")
    peer = peer_scheduler(DDPMScheduler, schedule, variance_type=variance_type, clip_sample=clip_x0 is not None,
                          clip_sample_range=clip_x0 or 1.0)
    peer.set_timesteps(timesteps=[t - 1 for t in ts])
    ours = run_ours(net, schedule, x_T, seed=5, method="ddpm", steps=steps, variance=variance, clip_x0=clip_x0)
    assert_same_chain(ours, run_peer(peer, net, x_T, ts, seed=5))


@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("clip_x0", [None, 1.0])
def test_ddim_matches_diffusers(eta: float, clip_x0: float | None) -> None:
    """DDIM (eq. 12) at η = 0, ½ and 1, ten steps of T = 1000 (our 1000, 889, …, 1), the last to ᾱ_0 = 1; with
    clipping, both re-derive ε̂ from the clipped x̂_0 (diffusers' ``use_clipped_model_output``)."""
    schedule, net, x_T = make_schedule("linear", 1000), network(), start()
    ts = chain_timesteps(schedule, 10, "ddim")
    assert [t - 1 for t in ts] == list(range(999, -1, -111))  # diffusers' stride 1000 // 9
    peer = peer_scheduler(DDIMScheduler, schedule, clip_sample=clip_x0 is not None, clip_sample_range=clip_x0 or 1.0,
                          set_alpha_to_one=True)
    peer.set_timesteps(9)
    ours = run_ours(net, schedule, x_T, seed=3, method="ddim", steps=10, eta=eta, clip_x0=clip_x0)
    theirs = run_peer(peer, net, x_T, ts, seed=3, eta=eta, use_clipped_model_output=True)
    assert_same_chain(ours, theirs)


@pytest.mark.parametrize("prediction, prediction_type", [("v", "v_prediction"), ("x0", "sample")])
def test_other_targets_match_diffusers(prediction: str, prediction_type: str) -> None:
    """A network trained on v or x_0, sampled through our ε-view of it, against diffusers fed its raw output.

    Both run in float32 here, as the ε-view does. Ours turns the network's output into ε̂ and the sampler turns ε̂
    back into x̂_0 = (x_t − √(1 − ᾱ_t)·ε̂)/√ᾱ_t, which divides float32's rounding of ε̂ by √ᾱ_t: on the linear
    schedule (√ᾱ_T = 6e-3) x̂_0 at t = T differs from diffusers' direct x̂_0 by ~8e-5, x_s by ~3e-6. (On the cosine
    schedule, √ᾱ_T = 5e-5: x̂_0 at t = T by 4e-3, the samples by 1e-3.)
    """
    schedule, x_T = make_schedule("linear", 1000), start().float()
    raw = network().float()
    ts = chain_timesteps(schedule, 10, "ddim")
    peer = peer_scheduler(DDIMScheduler, schedule, prediction_type=prediction_type, clip_sample=False,
                          set_alpha_to_one=True)
    peer.alphas_cumprod = peer.alphas_cumprod.float()
    peer.set_timesteps(9)
    ours = run_ours(as_eps_model(raw, schedule, prediction), schedule, x_T, seed=0, method="ddim", steps=10)
    theirs = run_peer(peer, raw, x_T, ts, seed=0)
    assert len(ours) == len(theirs) == 10
    for (x_ours, x0_ours), (x_theirs, x0_theirs) in zip(ours, theirs):
        torch.testing.assert_close(x0_ours, x0_theirs, rtol=0, atol=2e-4)
        torch.testing.assert_close(x_ours, x_theirs, rtol=0, atol=1e-5)


def test_noising_and_v_target_match_diffusers() -> None:
    """q(x_t | x_0) (eq. 4) against ``add_noise``, and the v target against ``get_velocity``, at t = 1, …, T."""
    schedule = make_schedule("cosine", 1000)
    peer = peer_scheduler(DDPMScheduler, schedule)
    generator = torch.Generator().manual_seed(0)
    t = torch.tensor([1, 2, 10, 500, 999, 1000])
    x0, noise = (torch.randn(len(t), 3, generator=generator, dtype=torch.float64) for _ in range(2))
    torch.testing.assert_close(schedule.q_sample(x0, t, noise), peer.add_noise(x0, noise, t - 1), rtol=1e-12, atol=0)
    sqrt_ab, sqrt_1m_ab = schedule.alpha_bars[t, None].sqrt(), (1 - schedule.alpha_bars[t, None]).sqrt()
    torch.testing.assert_close(training_target("v", x0, noise, sqrt_ab, sqrt_1m_ab),
                               peer.get_velocity(x0, noise, t - 1), rtol=1e-12, atol=1e-15)
