"""Time to recognisable digits: train a U-Net preset on MNIST and measure the classifier-FID ratio
(256 DDIM-50 samples, `core.fid.image_quality`) every ``--eval-every`` steps; prints a table.

    DDPM_DATA_DIR=../shared/data python bench/bench_time_to_digits.py              # small, 15-min budget
    DDPM_DATA_DIR=../shared/data python bench/bench_time_to_digits.py --min-snr 0  # plain L_simple
    DDPM_DATA_DIR=../shared/data python bench/bench_time_to_digits.py --device cuda --steps 3000

Goal (issue #3): FID ratio ≤ 2 within 15 minutes of training on 2 CPU cores (`small` preset),
within 2 minutes on one H100/H200. The training clock excludes the evaluations (sampling and
FID), which pause it. The learning-rate schedule decays over ``--steps``; the printed minute at
which the ratio first falls to ≤ 2 is the figure to report. The defaults (5,800 steps, lr 2e-3,
Min-SNR-5 loss weighting) are the measured CPU configuration: 5,800 steps fit the 15 minutes on
the faster 2-core dev machine (~6.5 steps/s); on a slower one, pass the steps that fit (e.g.
``--steps 2800`` at ~3 steps/s), since the learning rate only decays fully by the last step.
``--steps 0`` does that itself: it times steps 50–150 (after the warm-up, and after compiling with
``--compile``), then sets the run's length to the steps that fit the rest of ``--max-minutes``, so
that the learning rate decays over them (used for the GPU, whose speed is not known in advance).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.fid import image_quality  # noqa: E402
from core.image_data import load_image_dataset, to_model_range  # noqa: E402
from core.schedules import make_schedule  # noqa: E402
from core.trainer import TrainConfig, Trainer, device_name  # noqa: E402
from core.unet import UNET_PRESETS, UNet, unet_config  # noqa: E402

GOAL_RATIO = 2.0
EVAL_SAMPLES = 256
EVENT_EVERY = 50  # steps between the trainer's events (the evaluations fall on multiples of --eval-every)
TIMED_STEPS = (50, 150)  # with --steps 0, the speed is timed between these steps (after the LR warm-up)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="small", choices=UNET_PRESETS)
    p.add_argument("--steps", type=int, default=5800,
                   help="training steps (the LR decays over them); 0: as many as fit --max-minutes, timed at the start")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--ema-decay", type=float, default=0.999)
    p.add_argument("--min-snr", type=float, default=5.0, help="Min-SNR-γ loss weighting (0: plain L_simple)")
    p.add_argument("--ddpm-final", action="store_true", help="also score the final weights with DDPM-1000 samples")
    p.add_argument("--eval-every", type=int, default=1000, help="steps between evaluations")
    p.add_argument("--max-minutes", type=float, default=15.0, help="training-time budget")
    p.add_argument("--device", default="auto")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the U-Net (its compile time counts as training time)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    data = to_model_range(load_image_dataset("mnist", split="any").images).float()  # (N, 1, 28, 28)
    schedule = make_schedule("linear", 1000)
    torch.manual_seed(args.seed)
    model = UNet(unet_config(args.model, 28, 1))
    fit_to_time = args.steps == 0
    if args.eval_every % EVENT_EVERY:
        p.error(f"--eval-every must be a multiple of {EVENT_EVERY}")
    config = TrainConfig(steps=10**9 if fit_to_time else args.steps, batch_size=args.batch, lr=args.lr,
                         ema_decay=args.ema_decay, min_snr_gamma=args.min_snr, seed=args.seed, device=args.device,
                         clip_x0=1.0, log_every=EVENT_EVERY, preview_steps=50, compile=args.compile)
    trainer = Trainer(model, schedule, data, config)
    print(f"{device_name(trainer.device)}, U-Net {args.model} "
          f"{model.num_parameters():,} parameters, batch {args.batch}, lr {args.lr:g}, EMA {args.ema_decay:g}, "
          f"Min-SNR γ {args.min_snr:g}, {len(data)} MNIST images{', torch.compile' if args.compile else ''}")
    print(f"{'step':>6} {'train min':>9} {'FID ratio':>9} {'classes':>7} {'max class':>9}")

    paused = 0.0  # seconds spent evaluating, taken off the training clock
    reached = None
    evaluated_step = -1
    timed_from = 0.0
    for event in trainer.run():
        seconds = event.elapsed - paused  # the training clock
        minutes = seconds / 60
        if fit_to_time and event.step == TIMED_STEPS[0]:
            timed_from = seconds
        if fit_to_time and event.step == TIMED_STEPS[1]:
            rate = (TIMED_STEPS[1] - TIMED_STEPS[0]) / (seconds - timed_from)
            fits = int(rate * (args.max_minutes * 60 - seconds) * 0.97)  # a margin for the speed's ups and downs
            trainer.config.steps = event.step + max(1, fits)  # the LR schedule and the loop read it from here on
            print(f"{rate:.1f} steps/s: {trainer.config.steps:,} steps fit {args.max_minutes:g} min", flush=True)
        due = event.step % args.eval_every == 0 or event.kind == "end"
        if due and event.step != evaluated_step and event.step > 0:
            evaluated_step = event.step
            pause_start = time.perf_counter()
            x0 = trainer.preview(EVAL_SAMPLES, seed=args.seed + 1)  # DDIM-50 (preview_steps), x̂0 clipped
            quality = image_quality(x0, "mnist", seed=args.seed)
            paused += time.perf_counter() - pause_start
            print(f"{event.step:>6} {minutes:>9.2f} {quality['fid_ratio']:>9.2f} {quality['classes_present']:>7} "
                  f"{quality['max_class_fraction']:>9.2f}", flush=True)
            if reached is None and quality["fid_ratio"] <= GOAL_RATIO:
                reached = minutes
        if minutes >= args.max_minutes:
            trainer.stop()
    verdict = f"{reached:.1f} min" if reached is not None else f"not within {args.max_minutes:g} min"
    print(f"time to FID ratio ≤ {GOAL_RATIO:g} ({EVAL_SAMPLES} DDIM-50 samples): {verdict}")
    if args.ddpm_final:
        quality = image_quality(trainer.preview(EVAL_SAMPLES, seed=args.seed + 1, full_chain=True), "mnist", seed=args.seed)
        print(f"final weights, {EVAL_SAMPLES} DDPM-{schedule.T} samples: FID ratio {quality['fid_ratio']:.2f}, "
              f"{quality['classes_present']} classes, max class {quality['max_class_fraction']:.2f}")


if __name__ == "__main__":
    main()
