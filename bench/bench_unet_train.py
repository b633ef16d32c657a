"""Training throughput of our `small` U-Net and trainer against diffusers' UNet2DModel at a matched size.

Two comparisons, each on the same batches, in alternating rounds in the same process (a busy machine
slows both alike; the median round counts):

- model step: DDPM noising (eq. 4), ε̂ = model(x_t, t), L = mean (ε − ε̂)² (Algorithm 1), backward,
  fused AdamW step: the same loop around both models;
- trainer step: what a user's run does per step. Ours is `core.trainer.Trainer.train_step` (random
  batch, t and ε, Min-SNR-5 weights, grad clipping, AdamW, lr schedule, EMA, per-t loss buckets, the
  NaN check on the device, a read of the losses every 10 steps); the peer is the loop of diffusers' train_unconditional.py example (DDPMScheduler noising,
  MSE, grad clipping, AdamW, its EMAModel with foreach updates, loss.item()).

    python bench/bench_unet_train.py                 # CPU, batch 64, 28×28×1
    python bench/bench_unet_train.py --device cuda   # GPU: bf16 autocast on both sides

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

from core.schedules import make_schedule  # noqa: E402
from core.trainer import TrainConfig, Trainer  # noqa: E402
from core.unet import UNet, unet_config  # noqa: E402

LR = 2e-4
EMA_DECAY = 0.999
GRAD_CLIP = 1.0


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


def model_step(model: torch.nn.Module, device: torch.device) -> Callable[[torch.Tensor], float]:
    """A closure running one bare training step on a clean batch x0 (B, C, H, W); returns the loss."""
    from diffusers import DDPMScheduler

    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear")
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, fused=True)  # one kernel for all tensors
    generator = torch.Generator(device=device).manual_seed(0)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    def step(x0: torch.Tensor) -> float:
        noise = torch.randn(x0.shape, generator=generator, device=device)
        t = torch.randint(1, 1001, (x0.shape[0],), generator=generator, device=device)  # paper's 1..T
        x_t = scheduler.add_noise(x0, noise, t - 1).contiguous(memory_format=torch.channels_last)  # diffusers' 0..T−1
        with autocast:
            loss = F.mse_loss(model(x_t, t).float(), noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def our_trainer_step(
    model: torch.nn.Module, data: torch.Tensor, device: torch.device, batch: int
) -> Callable[[torch.Tensor], float]:
    """`Trainer.train_step` as a run takes it (it draws its own batches from ``data``), with the run's
    one read of the losses every ``log_every`` steps (the only point where the host waits for the GPU)."""
    config = TrainConfig(steps=10**9, batch_size=batch, lr=LR, ema_decay=EMA_DECAY, grad_clip=GRAD_CLIP,
                         min_snr_gamma=5.0, device=str(device))
    trainer = Trainer(model, make_schedule("linear", 1000), data, config)

    def step(_: torch.Tensor) -> float:
        trainer.train_step()
        if trainer.step % config.log_every:
            return float("nan")
        return trainer.read_losses()[-1]

    return step


def diffusers_trainer_step(
    model: torch.nn.Module, data: torch.Tensor, device: torch.device, batch: int
) -> Callable[[torch.Tensor], float]:
    """The step of diffusers' examples/unconditional_image_generation/train_unconditional.py (ε target)."""
    from diffusers import DDPMScheduler
    from diffusers.training_utils import EMAModel

    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear")
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, fused=True)
    lr_scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    ema = EMAModel(model.parameters(), decay=EMA_DECAY, foreach=True)
    ema.to(device)
    generator = torch.Generator(device=device).manual_seed(0)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    def step(_: torch.Tensor) -> float:
        x0 = data[torch.randint(0, len(data), (batch,), generator=generator, device=device)]
        noise = torch.randn(x0.shape, generator=generator, device=device)
        t = torch.randint(0, 1000, (batch,), generator=generator, device=device)
        x_t = scheduler.add_noise(x0, noise, t).contiguous(memory_format=torch.channels_last)
        with autocast:
            loss = F.mse_loss(model(x_t, t).float(), noise.float())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        optimizer.step()
        lr_scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        ema.step(model.parameters())
        return loss.detach().item()

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
    x0 = torch.rand(args.batch, args.channels, args.size, args.size, device=device) * 2 - 1  # (B, C, H, W)
    data = torch.rand(1024, args.channels, args.size, args.size, device=device) * 2 - 1  # the trainers' pool
    print(f"device={args.device} threads={torch.get_num_threads()} batch={args.batch} "
          f"image={args.channels}×{args.size}×{args.size} rounds={args.rounds}×{args.steps} steps")
    for loop in ("model step", "trainer step"):
        models = {"ours (core.unet small)": fresh_ours(args), "diffusers UNet2DModel": fresh_theirs(args)}
        steps = {}
        for name, model in models.items():
            model.to(device).train()
            model.to(memory_format=torch.channels_last)  # ours is channels-last already; the peer gets the same
            if loop == "model step":
                steps[name] = model_step(model, device)
            elif name.startswith("ours"):
                steps[name] = our_trainer_step(model, data, device, args.batch)
            else:
                steps[name] = diffusers_trainer_step(model, data, device, args.batch)
        report(loop, models, measure(steps, x0, device, args))


def fresh_ours(args: argparse.Namespace) -> torch.nn.Module:
    torch.manual_seed(0)
    return UNet(unet_config("small", args.size, args.channels))


def fresh_theirs(args: argparse.Namespace) -> torch.nn.Module:
    torch.manual_seed(0)
    return diffusers_unet(args.size, args.channels)


def measure(
    steps: dict[str, Callable[[torch.Tensor], float]], x0: torch.Tensor, device: torch.device, args: argparse.Namespace
) -> dict[str, list[float]]:
    """images/s per round for each step function: warm-up, then alternating rounds."""

    def run(step: Callable[[torch.Tensor], float], n: int) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(n):
            step(x0)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    for step in steps.values():
        run(step, args.warmup)
    rates: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name, step in steps.items():
            rates[name].append(args.steps * args.batch / run(step, args.steps))
    return rates


def report(loop: str, models: dict[str, torch.nn.Module], rates: dict[str, list[float]]) -> None:
    print(f"\n{loop}:")
    print(f"{'model':<26} {'params':>10} {'images/s (median)':>18} {'min':>8} {'max':>8}")
    medians = {}
    for name, model in models.items():
        params = sum(p.numel() for p in model.parameters())
        medians[name] = statistics.median(rates[name])
        print(f"{name:<26} {params:>10,} {medians[name]:>18.1f} {min(rates[name]):>8.1f} {max(rates[name]):>8.1f}")
    ours_rate, theirs_rate = medians.values()
    print(f"ratio ours/diffusers ({loop}): {ours_rate / theirs_rate:.2f}×")


if __name__ == "__main__":
    main()
