"""Benchmark image sampling: DDIM-50 and DDPM-1000 for 64 MNIST-sized samples; prints figures.

    python bench/bench_image_sampling.py [--ckpt checkpoints/mnist] [--device cpu|cuda] [--ddpm-steps 1000]

Uses the checkpoint's U-Net when given, else a fresh `small` U-Net (same cost). Goals on this
machine's 2 CPU cores: DDIM-50 ≤ 5 s, DDPM-1000 ≤ 60 s. ``--ddpm-steps`` below 1000 times a
shorter DDPM chain and extrapolates per step (the cost of a step does not depend on t).
Also times diffusers' DDIMScheduler stepping the same model as a peer.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.checkpoints import load_checkpoint  # noqa: E402
from core.devices import resolve_device  # noqa: E402
from core.sampler import initial_noise, sample  # noqa: E402
from core.schedules import make_schedule  # noqa: E402
from core.trainer import device_name  # noqa: E402
from core.unet import UNet, unet_config  # noqa: E402

N = 64


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ckpt", help="image checkpoint directory (default: a fresh small U-Net)")
    p.add_argument("--device", default="auto")
    p.add_argument("--ddpm-steps", type=int, default=1000, help="DDPM steps to time (extrapolated to 1000)")
    args = p.parse_args()
    device = resolve_device(args.device)
    if args.ckpt:
        ckpt = load_checkpoint(args.ckpt, device=device)
        model, schedule = ckpt.model, ckpt.schedule
    else:
        torch.manual_seed(0)
        model, schedule = UNet(unet_config("small", 28, 1)).to(device).eval(), make_schedule("linear", 1000)
    shape = (N, model.config.channels, model.config.image_size, model.config.image_size)
    print(f"{device_name(device)}, torch {torch.__version__}, "
          f"U-Net {sum(q.numel() for q in model.parameters()):,} parameters, {N} samples of {shape[1:]}")

    def run(method: str, steps: int):
        x_T, g = initial_noise(shape, seed=0, device=device)
        return sample(model, schedule, x_T, method=method, steps=steps, clip_x0=1.0, generator=g)

    run("ddim", 2)  # warm-up
    ddim = timed(lambda: run("ddim", 50))
    print(f"DDIM-50:   {ddim:7.2f} s  (goal ≤ 5 s on CPU)")
    try:
        from diffusers import DDIMScheduler

        scheduler = DDIMScheduler(num_train_timesteps=1000, beta_schedule="linear", beta_start=1e-4, beta_end=0.02,
                                  clip_sample=True, set_alpha_to_one=True, timestep_spacing="linspace")
        scheduler.set_timesteps(50)  # linspace + 1 = our DDIM-50 timesteps (1000, …, 1): the same chain, not only as long

        def peer():
            x = initial_noise(shape, seed=0, device=device)[0]
            with torch.inference_mode():
                for t in scheduler.timesteps:
                    eps = model(x, torch.full((N,), int(t) + 1, device=device, dtype=torch.long))
                    x = scheduler.step(eps, t, x).prev_sample

        peer_s = timed(peer)
        print(f"  diffusers DDIMScheduler, same model: {peer_s:.2f} s (ours {ddim / peer_s:.2f}× its time)")
    except ImportError:
        print("  (diffusers not installed: no peer)")
    ddpm = timed(lambda: run("ddpm", args.ddpm_steps)) * 1000 / args.ddpm_steps
    note = "" if args.ddpm_steps == 1000 else f" (extrapolated from {args.ddpm_steps} steps)"
    print(f"DDPM-1000: {ddpm:7.2f} s{note}  (goal ≤ 60 s on CPU)")


if __name__ == "__main__":
    main()
