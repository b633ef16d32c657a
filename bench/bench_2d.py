"""Benchmark the 2D engine on this machine; prints figures (not a test).

    python bench/bench_2d.py            # all four parts
    python bench/bench_2d.py --skip-train

1. Training: the CLI defaults on the swiss roll (MLP, linear schedule, T = 1000): wall-clock
   training time and the sliced-Wasserstein ratio of 2,000 DDPM-1000 samples (goal ≤ 1.5 in ≤ 30 s).
2. Sampling: 2,000 points through the full 1,000-step DDPM chain (goal ≤ 2 s), against two peers
   stepping the same model in the same run: a textbook loop (Algorithm 2 written per step with
   tensor indexing, as in tiny-diffusion and most tutorials) and diffusers' DDPMScheduler.
3. Callback overhead: the same chain with a per-step callback that reads the record (goal ≤ 5%).
4. Preview samplers: the Train tab's 2D preview (1,000 points, DDPM over 100 steps evenly in log-SNR)
   against the DDIM-50 it replaced and the full chain, on the shipped swiss_roll_cosine and
   swiss_roll_linear: seconds per preview and the sliced-Wasserstein ratio of 2,000 samples.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.checkpoints import load_checkpoint  # noqa: E402
from core.data import make_toy2d  # noqa: E402
from core.metrics import sliced_wasserstein_ratio  # noqa: E402
from core.mlp import MLPConfig, MLPDenoiser  # noqa: E402
from core.sampler import initial_noise, sample  # noqa: E402
from core.schedules import make_schedule  # noqa: E402
from core.presets import DEFAULTS  # noqa: E402
from core.trainer import TrainConfig, Trainer  # noqa: E402

N_POINTS = 2000
PREVIEW_POINTS = 1000  # as in the Train tab
CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def textbook_ddpm(model, schedule, x):
    """Algorithm 2 as commonly written: index the schedule tensors at every step."""
    betas, alphas, alpha_bars = (v.float() for v in (schedule.betas, schedule.alphas, schedule.alpha_bars))
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for t in range(schedule.T, 0, -1):
            tt = torch.full((len(x),), t, dtype=torch.long)
            eps = model(x, tt)
            mean = (x - betas[t] / torch.sqrt(1 - alpha_bars[t]) * eps) / torch.sqrt(alphas[t])
            if t > 1:
                var = betas[t] * (1 - alpha_bars[t - 1]) / (1 - alpha_bars[t])
                x = mean + torch.sqrt(var) * torch.randn(x.shape, generator=g)
            else:
                x = mean
    return x


def diffusers_ddpm(model, scheduler, x):
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for t in scheduler.timesteps:  # diffusers counts t = 999..0 for the paper's 1000..1
            eps = model(x, torch.full((len(x),), int(t) + 1, dtype=torch.long))
            x = scheduler.step(eps, t, x, generator=g).prev_sample
    return x


def bench_training() -> None:
    d = DEFAULTS["2d"]
    torch.manual_seed(0)
    schedule = make_schedule("linear", 1000)
    config = TrainConfig(steps=d["steps"], batch_size=d["batch"], lr=d["lr"], ema_decay=d["ema_decay"], seed=0)
    trainer = Trainer(MLPDenoiser(MLPConfig()), schedule, make_toy2d("swiss_roll", 10_000, seed=0), config)
    end = [ev for ev in trainer.run()][-1]
    x_T, g = initial_noise((N_POINTS, 2), seed=1)
    samples = sample(trainer.sampling_model, schedule, x_T, generator=g)
    ratio = sliced_wasserstein_ratio(samples, lambda n, s: make_toy2d("swiss_roll", n, seed=s))
    print(f"training  swiss roll, {config.steps} steps × batch {config.batch_size}: {end.elapsed:.1f} s "
          f"({end.samples_per_s:,.0f} examples/s); sliced-Wasserstein ratio {ratio:.2f} (goal ≤ 1.5 in ≤ 30 s)")


def bench_sampling(repeats: int) -> None:
    torch.manual_seed(0)
    model = MLPDenoiser(MLPConfig()).eval()
    schedule = make_schedule("linear", 1000)
    x_T, _ = initial_noise((N_POINTS, 2), seed=0)

    def ours(callback=None):
        x, g = x_T.clone(), torch.Generator().manual_seed(0)
        return sample(model, schedule, x, generator=g, callback=callback)

    ours_s = best_of(ours, repeats)
    textbook_s = best_of(lambda: textbook_ddpm(model, schedule, x_T.clone()), repeats)
    rows = [("ours (core.sampler)", ours_s), ("textbook loop", textbook_s)]
    try:
        from diffusers import DDPMScheduler

        scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", beta_start=1e-4, beta_end=0.02,
                                  variance_type="fixed_small", clip_sample=False)
        scheduler.set_timesteps(1000)
        rows.append(("diffusers DDPMScheduler", best_of(lambda: diffusers_ddpm(model, scheduler, x_T.clone()), repeats)))
    except ImportError:
        print("(diffusers not installed: skipping that peer)")
    print(f"sampling  {N_POINTS} points × 1000 DDPM steps, {sum(p.numel() for p in model.parameters()):,}-parameter MLP, "
          f"best of {repeats} (goal ≤ 2 s):")
    for name, seconds in rows:
        print(f"  {name:<26} {seconds:6.2f} s   ({seconds / ours_s:4.2f}× ours)")

    seen = []

    def reader(record):
        seen.append(record.t)

    overheads = []
    for _ in range(repeats):
        plain = best_of(ours, 1)
        with_cb = best_of(lambda: ours(reader), 1)
        overheads.append(with_cb / plain - 1)
    print(f"callback  per-step callback overhead: {100 * statistics.median(overheads):+.1f}% (median of {repeats}; goal ≤ 5%)")


def bench_previews(repeats: int) -> None:
    samplers = [("DDIM-50, evenly in t", dict(method="ddim", steps=50)),
                ("DDPM-100, evenly in log-SNR", dict(method="ddpm", steps=100, spacing="log_snr")),
                ("DDPM, all 1000 steps", dict(method="ddpm"))]
    print(f"previews  {PREVIEW_POINTS} points per preview; SW ratio of {N_POINTS} samples (1 = as good as real data)")
    for name in ("swiss_roll_cosine", "swiss_roll_linear"):
        ckpt = load_checkpoint(CHECKPOINTS / name)
        for label, options in samplers:
            x_T, g = initial_noise((PREVIEW_POINTS, 2), seed=1)
            seconds = best_of(lambda: sample(ckpt.model, ckpt.schedule, x_T, generator=g, **options), repeats)
            x_T, g = initial_noise((N_POINTS, 2), seed=0)
            x0 = sample(ckpt.model, ckpt.schedule, x_T, generator=g, **options)
            ratio = sliced_wasserstein_ratio(x0, lambda n, s: make_toy2d("swiss_roll", n, seed=s), seed=0)
            print(f"  {name:<18} {label:<28} {seconds:5.2f} s   SW ratio {ratio:8.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--skip-train", action="store_true")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    if not args.skip_train:
        bench_training()
    bench_sampling(args.repeats)
    bench_previews(args.repeats)


if __name__ == "__main__":
    main()
