"""Train one 2D toy on each prediction target (ε, x_0, v) and compare: the prediction-target figures of the user's guide (docs/guide.md).

    python scripts/measure_predictions.py [--data swiss_roll] [--schedule linear] [--steps 3000] [--min-snr 0] [--seed 0]

Each run is the Train tab's default 2D run (the MLP, 3,000 steps × 512) with the same data, schedule and seed
(it draws the training set, the initial weights, the batches and the sampling noise); only the target changes. Prints per target: the final loss (in the target's own units), the unweighted ε
error ‖ε − ε̂‖² in five ranges of t (in ε units for every target, `Trainer.bucket_loss`), and the sliced-Wasserstein
ratio of 2,000 samples to the data (1: as close as another draw of the data) under DDPM over all T steps and DDIM
over 50 steps spaced evenly in log-SNR. About 45 s a target on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from core.data import TOY2D_NAMES, make_toy2d  # noqa: E402
from core.metrics import sliced_wasserstein_ratio  # noqa: E402
from core.mlp import MLPConfig, MLPDenoiser  # noqa: E402
from core.prediction import PREDICTIONS  # noqa: E402
from core.sampler import initial_noise, sample  # noqa: E402
from core.schedules import SCHEDULE_NAMES, make_schedule  # noqa: E402
from core.presets import DEFAULTS  # noqa: E402
from core.trainer import LOSS_BUCKETS, TrainConfig, Trainer, loss_bucket_ranges  # noqa: E402

SAMPLES = 2000
GROUPS = 5  # the error by t is printed over this many ranges of t (each LOSS_BUCKETS / GROUPS buckets)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="swiss_roll", choices=TOY2D_NAMES, help="2D toy (default: swiss_roll)")
    parser.add_argument("--schedule", default="linear", choices=SCHEDULE_NAMES, help="noise schedule (default: linear)")
    parser.add_argument("--steps", type=int, default=DEFAULTS["2d"]["steps"],
                        help=f"training steps per target (default: {DEFAULTS['2d']['steps']})")
    parser.add_argument("--min-snr", type=float, default=0.0,
                        help="Min-SNR-γ (0: plain squared error of the target; default)")
    parser.add_argument("--seed", type=int, default=0,
                        help="draws the training set, the weights, the batches and the noise (default: 0)")
    args = parser.parse_args()
    schedule = make_schedule(args.schedule, 1000)
    data = make_toy2d(args.data, 10_000, seed=args.seed)
    reference = lambda n, seed: make_toy2d(args.data, n, seed=seed)  # noqa: E731
    ranges = loss_bucket_ranges(schedule.T)
    per_group = LOSS_BUCKETS // GROUPS
    labels = [f"t {ranges[g * per_group][0]}–{ranges[(g + 1) * per_group - 1][1]}" for g in range(GROUPS)]
    print(f"{args.data}, {args.schedule}, T = {schedule.T}, {args.steps} steps × 512, Min-SNR γ = {args.min_snr:g}, "
          f"seed {args.seed}; ε error by t: {', '.join(labels)}")
    for prediction in PREDICTIONS:
        torch.manual_seed(args.seed)
        config = TrainConfig(steps=args.steps, batch_size=DEFAULTS["2d"]["batch"], lr=DEFAULTS["2d"]["lr"],
                             ema_decay=DEFAULTS["2d"]["ema_decay"], min_snr_gamma=args.min_snr, prediction=prediction,
                             seed=args.seed, log_every=100)
        trainer = Trainer(MLPDenoiser(MLPConfig()), schedule, data, config)
        losses = [loss for event in trainer.run() for loss in event.losses]
        buckets = trainer.bucket_loss()
        by_t = [sum(buckets[g * per_group:(g + 1) * per_group]) / per_group for g in range(GROUPS)]
        ratios = []
        for options in ({"method": "ddpm"}, {"method": "ddim", "steps": 50, "spacing": "log_snr"}):
            x_T, generator = initial_noise((SAMPLES, 2), seed=args.seed + 1)
            samples = sample(trainer.sampling_model, schedule, x_T, generator=generator, **options)
            ratios.append(sliced_wasserstein_ratio(samples, reference))
        final = sum(losses[-100:]) / 100
        shown = " / ".join(f"{v:.3g}" if math.isfinite(v) else "–" for v in by_t)
        print(f"  {prediction:>3}: loss {final:.4f}; ε error by t {shown}; SW ratio DDPM-{schedule.T} "
              f"{ratios[0]:.2f}, DDIM-50 {ratios[1]:.2f}", flush=True)


if __name__ == "__main__":
    main()
