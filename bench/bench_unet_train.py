"""Training throughput of our `small` U-Net against diffusers' UNet2DModel at a matched size.

One training step = DDPM noising (eq. 4), ε̂ = model(x_t, t), L = mean (ε − ε̂)² (Algorithm 1),
backward, fused AdamW step. Both models see the same batches; they run in alternating rounds in the
same process, so that a busy machine slows both alike; the median round counts.

    python bench/bench_unet_train.py                 # CPU, batch 64, 28×28×1
    python bench/bench_unet_train.py --device cuda   # GPU: bf16 autocast

Both run channels-last (ours by default; the same layout is given to the peer).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.unet import UNet, unet_config  # noqa: E402


class PatchStem(torch.nn.Module):
    """Wraps a diffusers UNet2DModel in our `small` preset's p×p patch stem (pixel_unshuffle in,
    pixel_shuffle out), so that both sides run the same architecture."""

    def __init__(self, unet: torch.nn.Module, patch: int) -> None:
        super().__init__()
        self.unet, self.patch = unet, patch

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        out = self.unet(F.pixel_unshuffle(x, self.patch), t).sample
        return F.pixel_shuffle(out, self.patch)


def diffusers_unet(size: int, channels: int) -> torch.nn.Module:
    """diffusers' UNet2DModel laid out like our `small` preset: its patch stem, widths, residual
    blocks per level, attention at the lowest level and in the bottleneck, GroupNorm groups,
    one head and dropout."""
    from diffusers import UNet2DModel

    config = unet_config("small", size, channels)
    attended = [r in config.attention_resolutions for r in config.resolutions]
    unet = UNet2DModel(
        sample_size=size // config.patch_size,
        in_channels=channels * config.patch_size**2,
        out_channels=channels * config.patch_size**2,
        block_out_channels=config.widths,
        layers_per_block=config.num_res_blocks,
        down_block_types=tuple("AttnDownBlock2D" if a else "DownBlock2D" for a in attended),
        up_block_types=tuple("AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attended)),
        norm_num_groups=config.norm_groups,
        attention_head_dim=config.widths[-1] // config.num_heads,
        dropout=config.dropout,
    )
    return PatchStem(unet, config.patch_size)


def make_step(
    model: torch.nn.Module, forward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], args: argparse.Namespace
) -> Callable[[torch.Tensor], float]:
    """A closure running one training step on a clean batch x0 (B, C, H, W); returns the loss."""
    from diffusers import DDPMScheduler

    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear")
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-4, fused=True)  # one kernel for all tensors
    device = torch.device(args.device)
    generator = torch.Generator(device=device).manual_seed(0)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    def step(x0: torch.Tensor) -> float:
        noise = torch.randn(x0.shape, generator=generator, device=device)
        t = torch.randint(1, 1001, (x0.shape[0],), generator=generator, device=device)  # paper's 1..T
        x_t = scheduler.add_noise(x0, noise, t - 1).contiguous(memory_format=torch.channels_last)  # diffusers' 0..T−1
        with autocast:
            loss = F.mse_loss(forward(x_t, t).float(), noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per model")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds per model")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    torch.manual_seed(0)
    ours = UNet(unet_config("small", args.size, args.channels))
    theirs = diffusers_unet(args.size, args.channels)
    models = {
        "ours (core.unet small)": (ours, lambda x, t: ours(x, t)),
        "diffusers UNet2DModel": (theirs, lambda x, t: theirs(x, t)),
    }
    steps = {}
    for name, (model, forward) in models.items():
        model.to(device).train()
        model.to(memory_format=torch.channels_last)  # ours is channels-last already; the peer gets the same
        steps[name] = make_step(model, forward, args)

    x0 = torch.rand(args.batch, args.channels, args.size, args.size, device=device) * 2 - 1  # (B, C, H, W)

    def run(name: str, n: int) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(n):
            steps[name](x0)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    for name in steps:
        run(name, args.warmup)
    rates: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name in steps:
            rates[name].append(args.steps * args.batch / run(name, args.steps))

    print(f"device={args.device} threads={torch.get_num_threads()} batch={args.batch} "
          f"image={args.channels}×{args.size}×{args.size} rounds={args.rounds}×{args.steps} steps")
    print(f"{'model':<26} {'params':>10} {'images/s (median)':>18} {'min':>8} {'max':>8}")
    medians = {}
    for name, (model, _) in models.items():
        params = sum(p.numel() for p in model.parameters())
        medians[name] = statistics.median(rates[name])
        print(f"{name:<26} {params:>10,} {medians[name]:>18.1f} {min(rates[name]):>8.1f} {max(rates[name]):>8.1f}")
    ours_rate, theirs_rate = medians.values()
    print(f"ratio ours/diffusers: {ours_rate / theirs_rate:.2f}×")


if __name__ == "__main__":
    main()
