"""Measure guidance (`core.guidance`) on the shipped models: the figures of the user's guide's guidance sections (docs/guide.md).

    python scripts/measure_guidance.py [--n 64] [--steps 50]
    python scripts/measure_guidance.py --data eight_gaussians [--n 2000]
    python scripts/measure_guidance.py --method classifier-free [--data eight_gaussians]

mnist: for each digit and each scale s (0, 1, 3), n samples from the same noise (seed 0; classifier-free: seed = the
digit) by DDIM with the given steps, guided by the shipped classifier on x̂_0; prints how many the classifier reads as the digit it was steered
towards (the judge is the guide: see docs/guide.md), and the time. About 5 minutes on 2 CPU cores.
eight_gaussians: n samples from the same noise (seed 0) guided towards the component at 45° by the exact
p_t(y | x_t) of the mixture, for s = 0, 1, 3, 10, by DDPM over all T steps and by DDIM with the given steps; prints
the share nearest the target's centre, their spread about it (root-mean-square per coordinate) against the
component's own, and how far their mean lies from it. About 1 minute.
--method classifier-free does the same with the class-conditional models (mnist_conditional,
eight_gaussians_conditional) steered by their own classes; for the digits the classifier, which did not steer, is
an independent judge, and it also prints the FID ratio and class coverage of the 10 × n guided digits of each scale
(fidelity against diversity).
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
from core.fid import image_quality  # noqa: E402
from core.guidance import GUIDANCE_METHODS, GuidedDenoiser, classifier_log_likelihood, guided_model, model_mixture  # noqa: E402
from core.sampler import initial_noise, sample  # noqa: E402

CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"
SCALES = (0.0, 1.0, 3.0)
MIXTURE_SCALES = (0.0, 1.0, 3.0, 10.0)
MIXTURE_TARGET = "45° (upper right)"


def measure_digits(n: int, steps: int, method: str) -> None:
    checkpoint = load_checkpoint(CHECKPOINTS / ("mnist" if method == "classifier" else "mnist_conditional"))
    classifier = load_classifier("mnist")
    print(f"{checkpoint.name}, {method}, {n} samples per digit, DDIM-{steps}: read as the digit steered towards, "
          "for s = " + ", ".join(f"{s:g}" for s in SCALES))
    samples: dict[float, list[torch.Tensor]] = {scale: [] for scale in SCALES}
    for digit in range(10):
        counts, seconds = [], []
        for scale in SCALES:
            target = torch.full((n,), digit)
            guided = GuidedDenoiser(checkpoint.model, checkpoint.schedule,
                                    classifier_log_likelihood(classifier.model, target), scale, clip_x0=1.0) \
                if method == "classifier" else guided_model(checkpoint.model, checkpoint.schedule, checkpoint.data,
                                                            str(digit), scale, n, method=method)
            # classifier-free: each digit from its own noise, so that the 10 × n digits of a scale are 10 × n draws
            x_T, generator = initial_noise((n, 1, 28, 28), seed=0 if method == "classifier" else digit)
            start = time.perf_counter()
            out = sample(guided, checkpoint.schedule, x_T, method="ddim", steps=steps, clip_x0=1.0,
                         generator=generator)
            seconds.append(time.perf_counter() - start)
            counts.append(int((classifier.predict(out) == digit).sum()))
            samples[scale].append(out)
        print(f"  {digit}: " + " → ".join(map(str, counts)) + f" of {n} ("
              + ", ".join(f"{s:.1f} s" for s in seconds) + ")", flush=True)
    if method == "classifier-free":
        for scale in SCALES:
            quality = image_quality(torch.cat(samples[scale]), "mnist")
            print(f"  s = {scale:g}: FID ratio {quality['fid_ratio']:.2f} of the {10 * n} guided digits "
                  f"({quality['classes_present']} classes, the largest {quality['max_class_fraction']:.0%})")


def measure_mixture(n: int, steps: int, method: str) -> None:
    checkpoint = load_checkpoint(CHECKPOINTS / ("eight_gaussians" if method == "classifier" else "eight_gaussians_conditional"))
    mixture = model_mixture(checkpoint.data)
    k = mixture.names.index(MIXTURE_TARGET)
    print(f"{checkpoint.name}, {method}, {n} samples towards {MIXTURE_TARGET}; the component's own spread "
          f"{mixture.std:.4f}")
    for sampler, sampler_steps in (("ddpm", None), ("ddim", steps)):
        for scale in MIXTURE_SCALES:
            guided = guided_model(checkpoint.model, checkpoint.schedule, checkpoint.data, MIXTURE_TARGET, scale, n,
                                  method=method)
            x_T, generator = initial_noise((n, 2), seed=0)
            start = time.perf_counter()
            with torch.inference_mode():
                out = sample(guided, checkpoint.schedule, x_T, method=sampler, steps=sampler_steps, generator=generator)
            seconds = time.perf_counter() - start
            near = mixture.nearest(out) == k
            spread, offset = mixture.spread_about(out[near], k)
            print(f"  {sampler.upper()}-{sampler_steps or checkpoint.schedule.T}, s = {scale:g}: {int(near.sum())} of {n} "
                  f"nearest the target, spread about its centre {float(spread[0]):.4f} / {float(spread[1]):.4f}, "
                  f"their mean {offset:.4f} from it ({seconds:.1f} s)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=("mnist", "eight_gaussians"), default="mnist")
    parser.add_argument("--n", type=int, help="samples per class and scale (default: 64 digits, 2,000 points)")
    parser.add_argument("--steps", type=int, default=50, help="DDIM steps (default: 50)")
    parser.add_argument("--method", choices=GUIDANCE_METHODS, default="classifier",
                        help="classifier guidance of the unconditional models (default), or classifier-free guidance "
                             "of the class-conditional ones")
    args = parser.parse_args()
    if args.data == "mnist":
        measure_digits(args.n or 64, args.steps, args.method)
    else:
        measure_mixture(args.n or 2000, args.steps, args.method)


if __name__ == "__main__":
    main()
