"""`python -m core.evaluate --ckpt DIR`: measure a checkpoint's sample quality, print JSON.

2D checkpoints: the sliced-Wasserstein ratio SW(samples, data)/SW(data, data′) (`core.metrics`), against
the toy regenerated from its name, or the training points stored with the checkpoint (a CSV, a drawing).
Image checkpoints: the classifier-feature FID ratio and class coverage (`core.fid`), which need the classifier shipped
for the data set (`core.classifier`); a model of other images (Fashion-MNIST, CIFAR-10 without a trained classifier, a
folder of one's own) can still be measured by its bound (--nll), where its images can be loaded by name.
Each sampler given with --sampler is measured on the same seed, e.g. ``--sampler ddpm --sampler ddim:50
--sampler ddpm:50:log_snr`` (50 DDPM steps spaced evenly in log-SNR; see `core.sampler`).
With --nll, also the variational bound on the negative log-likelihood of n training examples (`core.elbo`), for
both reverse variances σ² = β̃ ("small") and β ("large"), in nats and bits per dimension.
With --real-data, also the data itself scored the same way, `REAL_DRAWS` draws of n (`core.metrics.real_sw_ratios`,
`core.fid.real_ratio_range`): the measure's noise at this n, against which the samplers' figures are read.
"""

from __future__ import annotations

import json
import math
import numbers
import sys
import time
from typing import Any

import torch

from core.checkpoints import Checkpoint, load_checkpoint, without_non_finite
from core.classifier import shipped_classifiers
from core.data import DataInfo
from core.cli import MAX_SAMPLES, MAX_SEED, OneLineParser, fail, folder, run, seed_number
from core.datasets import IMAGE_DATASETS, training_examples
from core.elbo import variational_bounds
from core.paths import user_path
from core.fid import image_quality, real_ratio_range
from core.metrics import non_finite_count, real_sw_ratios, sliced_wasserstein_ratio
from core.sampler import METHODS, SPACINGS, initial_noise, number_of_steps, sample
from core.devices import resolve_device

PROG = "python -m core.evaluate"
REAL_DRAWS = 8  # --real-data: draws of the data scored as samples are


def parse_sampler(text: str) -> tuple[str, int | None, str]:
    """"ddpm" → ("ddpm", None, "uniform"); "ddim:50" → ("ddim", 50, "uniform"); "ddpm:50:log_snr" → (…, "log_snr")."""
    method, colon, rest = text.partition(":")
    steps, _, spacing = rest.partition(":")
    if method not in METHODS:
        raise ValueError(f"sampler {text!r}: use ddpm or ddim, optionally :STEPS and :SPACING, e.g. ddpm:50:log_snr")
    if spacing.count(":"):  # "ddim:5:log_snr:extra" was told its SPACING was wrong
        raise ValueError(f"sampler {text!r}: at most METHOD:STEPS:SPACING, e.g. ddpm:50:log_snr")
    if spacing and spacing not in SPACINGS:
        raise ValueError(f"sampler {text!r}: SPACING must be one of {', '.join(SPACINGS)}")
    if colon and not steps:  # "ddim:" would silently mean the default number of steps
        raise ValueError(f"sampler {text!r}: give STEPS after the colon (e.g. {method}:50), or no colon for the default")
    try:
        return method, int(steps) if steps else None, spacing or "uniform"
    except ValueError:
        raise ValueError(f"sampler {text!r}: STEPS must be a whole number") from None


def sampler_key(text: str, T: int) -> str:
    """The key of a sampler's results in the JSON: "ddpm" → "ddpm-1000" (at T = 1000), "ddim" → "ddim-50",
    "ddpm:100:log_snr" → "ddpm-100-log_snr"."""
    method, steps, spacing = parse_sampler(text)
    key = f"{method}-{steps or number_of_steps(T, None, method)}"  # type: ignore[arg-type]
    return key + ("-log_snr" if spacing == "log_snr" else "")


def sampler_of_key(key: str) -> str:
    """The inverse of `sampler_key`: "ddim-50" → "ddim:50", "ddpm-100-log_snr" → "ddpm:100:log_snr"."""
    text = key.replace("-", ":")
    parse_sampler(text)  # a key that `sampler_key` cannot have made raises ValueError
    return text


def evaluate(ckpt: Checkpoint, *, n: int, samplers: list[str] | str, seed: int, data_dir: str | None = None) -> dict[str, Any]:
    """{sampler label: metrics} for a loaded checkpoint (raises ValueError when it cannot be measured).
    ``samplers``: labels as the CLI's --sampler ("ddpm", "ddim:50", "ddpm:100:log_snr"); one label alone is a list of one."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 2:
        raise ValueError(f"n must be a whole number of samples, at least 2 to compare with the data, got {n!r}")
    samplers = [samplers] if isinstance(samplers, str) else samplers
    info = ckpt.data
    draw_data = ckpt.data_sampler()
    if info.kind == "2d" and draw_data is None:
        raise ValueError(f"{ckpt.path}: no reference distribution for user data {info.name!r} "
                         "(a checkpoint saved before its training points were stored with it)")
    device = next(ckpt.model.parameters()).device
    results: dict[str, Any] = {}
    for text in samplers:
        method, steps, spacing = parse_sampler(text)
        key = sampler_key(text, ckpt.schedule.T)
        x_T, generator = initial_noise((n,) + info.shape, seed=seed, device=device)
        start = time.perf_counter()
        x0 = sample(ckpt.model, ckpt.schedule, x_T, method=method, steps=steps, spacing=spacing,
                    clip_x0=info.clip_x0, generator=generator)
        seconds = time.perf_counter() - start
        if broken := non_finite_count(x0):  # a diverged model's: scored null, status 0
            raise ValueError(f"{broken} of {n} samples ({text}) are not finite numbers (NaN or infinite): {ckpt.path} "
                             "does not give a usable model (did its training diverge?)")
        if info.kind == "2d":
            ratio = sliced_wasserstein_ratio(x0.cpu(), draw_data, seed=seed)
            results[key] = {"sliced_wasserstein_ratio": None if math.isnan(ratio) else round(ratio, 4),  # None: one point
                            "n": n, "sampling_seconds": round(seconds, 2)}
        else:
            quality = image_quality(x0.cpu(), info.name, seed=seed, root=data_dir)
            results[key] = {**{k: _rounded(v) for k, v in quality.items()}, "sampling_seconds": round(seconds, 2)}
    return results


def unscored_reason(info: DataInfo) -> str | None:
    """Why samples of a model of ``info``'s data cannot be scored here (None: they can): images of a data set with no
    shipped classifier, or of a folder, whose images have no classes to train one on."""
    if info.kind == "2d" or info.name in shipped_classifiers():
        return None
    if info.name in IMAGE_DATASETS:
        return (f"no classifier is shipped for {info.name} (only for {', '.join(shipped_classifiers()) or 'none'}) to "
                "score its samples")
    return (f"{info.name} is a folder of images without classes: no classifier scores its samples, and the variational "
            f"bound (--nll) needs a data set this tool can load by name ({', '.join(IMAGE_DATASETS)})")


def real_scores(ckpt: Checkpoint, *, n: int, seed: int, data_dir: str | None = None) -> tuple[str, list[float]]:
    """(the measure's key, its scores of the data itself): `REAL_DRAWS` draws of n scored as `evaluate` scores
    samples, by the SW ratio (2D) or the FID ratio (images). Their spread is the measure's noise at this n."""
    if ckpt.data.kind == "2d":
        return "sliced_wasserstein_ratio", real_sw_ratios(ckpt.data_sampler(), n, draws=REAL_DRAWS, seed=seed)
    return "fid_ratio", real_ratio_range(ckpt.data.name, n, draws=REAL_DRAWS, seed=seed, root=data_dir)


def real_data_scores(ckpt: Checkpoint, *, n: int, seed: int, data_dir: str | None = None) -> dict[str, Any]:
    """`real_scores` as printed: each draw's score and their range."""
    key, values = real_scores(ckpt, n=n, seed=seed, data_dir=data_dir)
    return {"n": n, "draws": len(values), key: {"min": _rounded(min(values)), "max": _rounded(max(values)),
                                                "values": _rounded(values)}}


def _rounded(value: Any) -> Any:
    """A measurement as printed: floats (also in a list) to 4 decimals, as the other figures; anything else as is."""
    if isinstance(value, float):
        return round(value, 4)
    return [_rounded(v) for v in value] if isinstance(value, list) else value


def likelihood_bounds(ckpt: Checkpoint, *, n: int, seed: int, n_t: int | None,
                      data_dir: str | None = None) -> dict[str, Any]:
    """The variational bound of the checkpoint on n of its training examples, for σ² = β̃ and σ² = β (`core.elbo`,
    from the same noise and model calls): {"n", "timesteps_measured", "small": {...}, "large": {...}} in nats per dimension."""
    info = ckpt.data
    device = next(ckpt.model.parameters()).device
    examples = training_examples(info, ckpt.points, n, seed=seed, root=data_dir).to(device)
    start = time.perf_counter()
    bounds = variational_bounds(ckpt.model, ckpt.schedule, examples, n_t=n_t, discrete=info.kind == "image",
                                clip_x0=info.clip_x0, generator=torch.Generator(device=device).manual_seed(seed))
    results: dict[str, Any] = {"n": n, "timesteps_measured": len(bounds["small"].ts),
                               "seconds": round(time.perf_counter() - start, 2),
                               "unit": "nats per dimension (bits_per_dim: bits per dimension)"}
    for variance, bound in bounds.items():
        results[variance] = {"nats_per_dim": round(bound.total, 4), "bits_per_dim": round(bound.bits_per_dim, 4),
                             "prior": round(bound.prior, 5), "diffusion": round(bound.diffusion, 4),
                             "decoder": round(bound.decoder, 4)}
    return results


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog=PROG, description="Measure a checkpoint's sample quality; prints JSON.")
    p.add_argument("--ckpt", required=True, type=user_path, help="checkpoint directory")
    p.add_argument("--n", type=int,
                   help=f"number of samples, 2 … {MAX_SAMPLES:,} (default: 2000 for 2D, 256 for images)")
    p.add_argument("--sampler", action="append",
                   help="ddpm or ddim, optionally :STEPS and :SPACING (uniform or log_snr), e.g. ddpm:50:log_snr; "
                        "repeatable (default: ddpm and ddim:50)")
    p.add_argument("--seed", type=seed_number, default=0, help=f"random seed, 0 to {MAX_SEED} (default: 0)")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda")
    p.add_argument("--data-dir", type=folder, help="image data directory for the real reference images (default: $DDPM_DATA_DIR or ./data)")
    p.add_argument("--nll", action="store_true",
                   help="also the variational bound on the negative log-likelihood of n training examples, in nats "
                        "and bits per dimension, for σ² = β̃ and σ² = β")
    p.add_argument("--real-data", action="store_true",
                   help=f"also score {REAL_DRAWS} draws of n of the data itself the same way: the measure's noise at "
                        "this n (e.g. 64 real MNIST digits: FID ratio 0.69–1.43 over 8 draws)")
    p.add_argument("--nll-timesteps", type=int,
                   help="terms of the bound to measure, at most (default: all T − 1 for 2D, 100 for images; fewer "
                        "give an unbiased estimate)")
    args = p.parse_args(argv)
    if args.nll_timesteps is not None and not args.nll:
        fail(PROG, "--nll-timesteps is used only with --nll")
    if args.n is not None and args.n > MAX_SAMPLES:
        fail(PROG, f"--n must be at most {MAX_SAMPLES:,}, got {args.n:,}")
    try:
        ckpt = load_checkpoint(args.ckpt, device=resolve_device(args.device))
        if args.data_dir is not None and ckpt.data.kind == "2d":  # taken without a word: 2D data is made in code
            raise ValueError(f"--data-dir applies to image models; {ckpt.data.name} is 2D data, made in code or kept "
                             "with the model")
        n = args.n if args.n is not None else (2000 if ckpt.data.kind == "2d" else 256)
        if n < 2:
            raise ValueError(f"--n must be at least 2, got {n}")
        n_t = args.nll_timesteps if args.nll_timesteps is not None else (None if ckpt.data.kind == "2d" else 100)
        if n_t is not None and n_t < 1:
            raise ValueError(f"--nll-timesteps must be at least 1, got {n_t}")
        unscored = unscored_reason(ckpt.data)
        if unscored is None:
            results = evaluate(ckpt, n=n, samplers=args.sampler or ["ddpm", "ddim:50"], seed=args.seed,
                               data_dir=args.data_dir)
        elif ckpt.data.name not in IMAGE_DATASETS:
            raise ValueError(unscored)
        elif not args.nll:
            raise ValueError(f"{unscored}; train one with scripts/train_classifier.py, or measure the variational "
                             "bound alone with --nll")
        elif args.sampler or args.real_data:
            raise ValueError(f"{unscored}: with --nll, leave out --sampler and --real-data")
        else:
            results = {"samples": f"not scored: {unscored}"}
        if args.real_data:
            results["real_data"] = real_data_scores(ckpt, n=n, seed=args.seed, data_dir=args.data_dir)
        if args.nll:
            results["variational_bound"] = likelihood_bounds(ckpt, n=n, seed=args.seed, n_t=n_t, data_dir=args.data_dir)
    except ValueError as err:
        fail(PROG, str(err))
    json.dump(without_non_finite({"checkpoint": str(args.ckpt), "data": ckpt.data.name, **results}), sys.stdout,
              indent=2, allow_nan=False)
    print()
    return 0


if __name__ == "__main__":
    run(main, PROG)
