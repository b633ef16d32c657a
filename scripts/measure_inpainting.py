"""Measure inpainting (`core.inpaint`) on the shipped models: the figures of the user's guide's inpainting section (docs/guide.md).

    python scripts/measure_inpainting.py [--digits 64] [--rounds 5] [--jump 1]

MNIST: the bundled digits, each mask of `core.inpaint.IMAGE_MASKS` kept, the rest drawn by the replacement
method (U = 1) and with U resampling rounds per step, under DDIM-50 and DDPM-100; prints how many completions
the shipped classifier reads as the class of their example. swiss_roll_linear: 1,000 points, x kept and y drawn
(DDPM-100 spaced in log-SNR), the share of completions within 0.05 of the training data, for U = 1, 3 and 10.
``--jump J``: each resampling round goes back J steps (RePaint's jumps; default 1, one step).
Seed 0 throughout; about 8 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from app.images import mnist_digits  # noqa: E402
from core.checkpoints import load_checkpoint  # noqa: E402
from core.classifier import load_classifier  # noqa: E402
from core.datasets import training_examples  # noqa: E402
from core.inpaint import IMAGE_MASKS, inpaint, known_mask  # noqa: E402
from core.metrics import copy_fraction  # noqa: E402

CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"


def digits(n: int, rounds: int, jump: int) -> None:
    checkpoint = load_checkpoint(CHECKPOINTS / "mnist")
    examples = mnist_digits(n)
    classifier = load_classifier("mnist")
    truth = classifier.predict(examples)
    print(f"mnist, {n} bundled digits: completions read as their example's class (U = 1 → U = {rounds}, J = {jump})")
    for method, steps in (("ddim", 50), ("ddpm", 100)):
        for name, label in IMAGE_MASKS.items():
            known = known_mask(name, (1, 28, 28), seed=0)
            kept, seconds = [], []
            for u in (1, rounds):
                start = time.perf_counter()
                out = inpaint(checkpoint.model, checkpoint.schedule, examples, known, method=method, steps=steps,
                              clip_x0=1.0, resample=u, jump=jump, generator=torch.Generator().manual_seed(0))
                seconds.append(time.perf_counter() - start)
                kept.append(int((classifier.predict(out) == truth).sum()))
            print(f"  {method.upper()}-{steps}, known {label}: {kept[0]} → {kept[1]} of {n} "
                  f"({seconds[0]:.1f} s, {seconds[1]:.1f} s)", flush=True)


def swiss_roll(jump: int) -> None:
    checkpoint = load_checkpoint(CHECKPOINTS / "swiss_roll_linear")
    examples = training_examples(checkpoint.data, checkpoint.points, 1000, seed=0)
    reference = training_examples(checkpoint.data, checkpoint.points, 10_000, seed=7)
    print(f"swiss_roll_linear, 1,000 points, x kept: share within 0.05 of the training data (DDPM-100, log-SNR, "
          f"J = {jump})")
    for u in (1, 3, 10):
        start = time.perf_counter()
        out = inpaint(checkpoint.model, checkpoint.schedule, examples, known_mask("x", (2,)), steps=100,
                      spacing="log_snr", resample=u, jump=jump, generator=torch.Generator().manual_seed(0))
        print(f"  U = {u}: {copy_fraction(out, reference, 0.05):.0%} ({time.perf_counter() - start:.1f} s)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--digits", type=int, default=64, help="bundled MNIST digits to inpaint (default: 64)")
    parser.add_argument("--rounds", type=int, default=5, help="resampling rounds compared with U = 1 (default: 5)")
    parser.add_argument("--jump", type=int, default=1, help="steps each resampling round goes back (default: 1)")
    args = parser.parse_args()
    swiss_roll(args.jump)
    digits(args.digits, args.rounds, args.jump)


if __name__ == "__main__":
    main()
