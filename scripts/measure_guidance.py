"""Measure classifier guidance (`core.guidance`) on the shipped mnist model: the figures of the README's section.

    python scripts/measure_guidance.py [--n 64] [--steps 50]

For each digit and each scale s (0, 1, 3), n samples from the same noise (seed 0) by DDIM with the given steps,
guided by the shipped classifier on x̂_0; prints how many the classifier reads as the digit it was steered
towards (the judge is the guide: see the README), and the time. About 5 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from core.checkpoints import load_checkpoint  # noqa: E402
from core.classifier import load_classifier  # noqa: E402
from core.guidance import GuidedDenoiser, classifier_log_likelihood  # noqa: E402
from core.sampler import initial_noise, sample  # noqa: E402

SCALES = (0.0, 1.0, 3.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64, help="samples per digit and scale (default: 64)")
    parser.add_argument("--steps", type=int, default=50, help="DDIM steps (default: 50)")
    args = parser.parse_args()
    checkpoint = load_checkpoint(Path(__file__).resolve().parent.parent / "checkpoints" / "mnist")
    classifier = load_classifier("mnist")
    print(f"mnist, {args.n} samples per digit, DDIM-{args.steps}: read as the digit steered towards, for s = "
          + ", ".join(f"{s:g}" for s in SCALES))
    for digit in range(10):
        counts, seconds = [], []
        for scale in SCALES:
            target = torch.full((args.n,), digit)
            guided = GuidedDenoiser(checkpoint.model, checkpoint.schedule,
                                    classifier_log_likelihood(classifier.model, target), scale, clip_x0=1.0)
            x_T, generator = initial_noise((args.n, 1, 28, 28), seed=0)
            start = time.perf_counter()
            out = sample(guided, checkpoint.schedule, x_T, method="ddim", steps=args.steps, clip_x0=1.0,
                         generator=generator)
            seconds.append(time.perf_counter() - start)
            counts.append(int((classifier.predict(out) == digit).sum()))
        print(f"  {digit}: " + " → ".join(map(str, counts)) + f" of {args.n} ("
              + ", ".join(f"{s:.1f} s" for s in seconds) + ")", flush=True)


if __name__ == "__main__":
    main()
