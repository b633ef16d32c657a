"""`python -m core.sample`: draw samples from a checkpoint into a .npy file or a .png grid.

    python -m core.sample --ckpt checkpoints/swiss_roll --n 2000 --out samples.npy
    python -m core.sample --ckpt checkpoints/mnist --n 64 --method ddim --steps 50 --out digits.png
    python -m core.sample --ckpt checkpoints/swiss_roll_cosine --steps 100 --spacing log_snr --out roll.npy
    python -m core.sample --ckpt checkpoints/mnist --n 64 --method ddim --steps 100 --start-t 400 --out again.png
    python -m core.sample --ckpt checkpoints/mnist --n 64 --steps 100 --inpaint left --resample 5 --jump 10 --out halves.png
    python -m core.sample --ckpt checkpoints/mnist --n 16 --method ddim --inpaint hide.png --resample 5 --out filled.png
    python -m core.sample --ckpt checkpoints/mnist --n 64 --method ddim --guide 7 --guidance-scale 3 --out sevens.png
    python -m core.sample --ckpt runs/moons_conditional --n 1000 --guide "upper moon" --guidance-scale 3 --out up.png

``--start-t t₀`` joins the chain at step t₀ from n training examples noised to it (SDEdit; see `core.sampler`)
instead of from pure noise, and prints the return ratio of `core.metrics` (0: the samples came back to their
examples; 1: nothing of them is left).

``--inpaint MASK`` keeps a part of n training examples (an image mask of `core.inpaint`, or the coordinate x or y of
2D points; or a picture of the part to hide, light where hidden and dark where kept, at any size: an image pixel is
hidden where the picture's lightness averaged over it is at least one half) and draws the rest, with ``--resample
U`` rounds per step (RePaint; 1: the replacement method), each going back ``--jump J`` steps of the chain (RePaint's
jump length; default 1).
For images with a shipped classifier it prints how many completions are read as the class of their example.

``--guide CLASS`` steers the model towards a class (`core.guidance`; scale ``--guidance-scale``): a
class-conditional model (trained with ``--conditional``) by classifier-free guidance, any other with the shipped
classifier of its data applied to x̂_0 or the exact p_t(y | x_t) of the 8 Gaussians (classifier guidance; also
for a conditional model with ``--guidance classifier``). It prints how many samples are of that class, and
combines with the other options.

.npy: 2D → (N, 2) in the data's coordinates (those of `core.data.make_toy2d`);
images → (N, C, H, W) float32 in [−1, 1]. .png: an image grid, or a scatter plot for 2D.
"""

from __future__ import annotations

import argparse

import math
import sys

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torchvision.utils import make_grid

from core.checkpoints import load_checkpoint, write_atomically
from core.cli import (
    MAX_SAMPLES, MAX_SEED, OneLineParser, check_writable_parent, fail, folder, run, seed_number,
)
from core.datasets import training_examples
from core.classifier import load_classifier, shipped_classifiers
from core.guidance import GUIDANCE_METHODS, default_method, find_class, guidance_classes, guided_model, read_classes
from core.image_data import to_uint8
from core.inpaint import IMAGE_MASKS, MAX_JUMP, MAX_RESAMPLE, POINT_MASKS, inpaint, known_from_coverage, known_mask
from core.metrics import non_finite_count, return_ratio
from core.paths import user_path
from core.sampler import METHODS, SPACINGS, VARIANCES, initial_noise, sample
from core.devices import resolve_device

PROG = "python -m core.sample"


def build_parser() -> OneLineParser:
    p = OneLineParser(prog=PROG, description="Sample from a DDPM checkpoint.")
    p.add_argument("--ckpt", required=True, type=user_path, help="checkpoint directory")
    p.add_argument("--n", type=int, default=64, help=f"number of samples, 1 … {MAX_SAMPLES:,} (default: 64)")
    p.add_argument("--method", default="ddpm", choices=METHODS, help="sampler (default: ddpm)")
    p.add_argument("--steps", type=int, help="reverse steps (default: T for ddpm, 50 for ddim)")
    p.add_argument("--spacing", default="uniform", choices=SPACINGS,
                   help="timesteps of a chain shorter than T: evenly in t (default) or in log-SNR (log_snr: keeps "
                        "strided ddpm sound on the cosine and sigmoid schedules; see core.sampler)")
    p.add_argument("--eta", type=float, help="with --method ddim: η in [0, 1] (default: 0, deterministic)")
    p.add_argument("--variance", choices=VARIANCES,
                   help="with --method ddpm: σ², small = β̃ (default) or large = β")
    p.add_argument("--seed", type=seed_number, default=0, help=f"random seed, 0 to {MAX_SEED} (default: 0)")
    p.add_argument("--start-t", type=int, metavar="T0",
                   help="start the chain at step T0 from N training examples noised to it (SDEdit), not from pure "
                        "noise (2D: drawn with --seed; images: the first N of the data set in $DDPM_DATA_DIR)")
    p.add_argument("--inpaint", metavar="MASK",
                   help="keep part of N training examples and draw the rest (inpainting): for images "
                        f"{', '.join(IMAGE_MASKS)} (the part kept), or a picture file of the part to hide (light: "
                        "hidden, dark: kept; any size); for 2D points x or y (the coordinate kept)")
    p.add_argument("--resample", type=int, default=1, metavar="U",
                   help=f"with --inpaint: rounds per step, 1 to {MAX_RESAMPLE} (RePaint's resampling; default 1: "
                        "the replacement method alone; U costs U times the model calls)")
    p.add_argument("--jump", type=int, default=1, metavar="J",
                   help=f"with --resample: steps of the chain each round goes back, 1 to {MAX_JUMP} (RePaint's jump "
                        "length; default 1; the cost stays U model calls per step)")
    p.add_argument("--guide", metavar="CLASS",
                   help="steer towards this class: a class-conditional model by classifier-free guidance; others by "
                        "classifier guidance, for image models whose data has a shipped classifier ("
                        + (", ".join(shipped_classifiers()) or "none") + ") a class it names, guided on x̂0, for the "
                        "8 Gaussians a component, e.g. '90° (top)', '90' or 'top', guided by its exact p_t(y | x_t); "
                        "any case")
    p.add_argument("--guidance-scale", type=float, metavar="S",
                   help="with --guide: the scale s ≥ 0 (default: 3; 0: the unconditional model; 1: the conditional "
                        "one, by Bayes' rule, as exact as the guide: a classifier on x̂0 approximates p_t(y | x_t); "
                        "more: starker)")
    p.add_argument("--guidance", choices=GUIDANCE_METHODS,
                   help="with --guide: the method (default: classifier-free for a class-conditional model, else "
                        "classifier)")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda")
    p.add_argument("--data-dir", type=folder, help="image data directory, for the examples --start-t and --inpaint begin from "
                                      "(default: $DDPM_DATA_DIR or ./data)")
    p.add_argument("--out", required=True, type=user_path,
                   help="output file: .npy or .png (a file there is replaced once the samples are ready)")
    return p


def inpaint_mask(mask: str, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """The bool mask (1, *shape), true where known, of ``--inpaint``: a mask of `core.inpaint` by name, or for images a
    picture file of the part to hide (`core.inpaint.known_from_coverage` of its lightness). ValueError, in words."""
    names = POINT_MASKS if len(shape) == 1 else IMAGE_MASKS
    if mask in names:
        return known_mask(mask, shape, seed=seed)
    if len(shape) == 1 or mask in {*IMAGE_MASKS, *POINT_MASKS}:  # a picture has no place in a 2D point
        raise ValueError(f"--inpaint for this model must be one of {', '.join(names)}; got {mask!r}")
    path = user_path(mask)
    try:
        with Image.open(path) as picture:
            lightness = np.asarray(picture.convert("L"), dtype=np.float32) / 255.0
    except FileNotFoundError:
        raise ValueError(f"--inpaint must be one of {', '.join(names)} or a picture file of the part to hide; "
                         f"{mask!r} is neither") from None
    except (OSError, Image.DecompressionBombError) as err:  # not a picture Pillow reads, or a folder
        raise ValueError(f"--inpaint {path.name} cannot be read as a picture: {err}") from None
    return known_from_coverage(torch.from_numpy(lightness), shape)


def scatter_png(points: np.ndarray, size: int = 512) -> Image.Image:
    """A plain scatter plot of (N, 2) points for a quick look: centred, x and y on one scale (a circle stays round),
    with a line at the top saying how many points and their ranges (it had none, and pinned the points to the
    bottom-left corner). Non-finite points are left out and counted."""
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    finite = points[np.isfinite(points).all(axis=1)]
    caption = f"{len(points):,} samples"  # plain ASCII: the default font's "·" and "…" ran into their neighbours
    if len(finite):
        lo, hi = finite.min(axis=0), finite.max(axis=0)
        span = float(max(hi - lo)) or 1.0
        top, margin = 24, 12  # the caption's band; the margin round the points
        scale = (size - top - 2 * margin) / span
        centre = np.array([size / 2, top + (size - top) / 2])
        pixels = (finite - (lo + hi) / 2) * scale * np.array([1.0, -1.0]) + centre
        for x, y in pixels:
            draw.ellipse((x - 1.5, y - 1.5, x + 1.5, y + 1.5), fill=(31, 119, 180))
        caption += f", x from {lo[0]:.3g} to {hi[0]:.3g}, y from {lo[1]:.3g} to {hi[1]:.3g}"
    if len(finite) < len(points):
        caption += f", {len(points) - len(finite):,} not finite (left out)"
    draw.text((8, 4), caption, fill=(60, 60, 60), font=ImageFont.load_default(size=14))
    return image


def inpaint_report(samples, examples, dataset: str, kind: str, resample: int, jump: int = 1) -> str:
    """One line on an inpainting: how it was done and, for images with a shipped classifier, how many completions
    are read as the class of their example."""
    how = "the replacement method" if resample == 1 else f"{resample} resampling rounds per step"
    if resample > 1 and jump > 1:
        how += f", each going back {jump} steps"
    line = f"inpainted {len(samples)} training examples with {how}"
    if kind == "image" and dataset in shipped_classifiers():
        classifier = load_classifier(dataset)
        same = int((classifier.predict(samples.float().cpu()) == classifier.predict(examples.float().cpu())).sum())
        line += f"; the shipped classifier reads the class of the example in {same} of {len(samples)}"
    return line


def guide_report(samples, data, target: str, scale: float, method: str) -> str:
    """One line on a guided sampling: how it was guided and how many samples are of the target class
    (`core.guidance.read_classes`: nearest its centre, nearest its training points, or read so by the shipped
    classifier)."""
    line = f"guided towards {target} ({method}, s = {scale:g})"
    read = read_classes(data, samples.float().cpu())
    if read is None:
        return line
    classes, how = read
    return f"{line}: {classes.count(target)} of {len(samples)} samples {how} {target}"


def refuse_unused_flags(args: argparse.Namespace) -> None:
    """Fail in one line on a flag that would change nothing (silently ignored, it would mislead), and fill in the
    defaults of the others."""
    if args.eta is not None and args.method != "ddim":
        fail(PROG, "--eta applies to --method ddim only")
    if args.spacing != "uniform" and args.method == "ddpm" and args.steps is None:  # all T steps: nothing to space
        fail(PROG, "--spacing applies to a chain of fewer steps than T: give --steps (DDPM takes all T by default)")
    if args.variance is not None and args.method != "ddpm":
        fail(PROG, "--variance applies to --method ddpm only (DDIM's noise is set by --eta)")
    if args.guidance_scale is not None and args.guide is None:
        fail(PROG, "--guidance-scale needs --guide CLASS")
    if args.guidance is not None and args.guide is None:
        fail(PROG, "--guidance needs --guide CLASS")
    if args.inpaint is None:
        if args.resample != 1:
            fail(PROG, "--resample needs --inpaint")
        if args.jump != 1:
            fail(PROG, "--jump needs --inpaint")
    elif args.start_t is not None:
        fail(PROG, "--inpaint and --start-t cannot be combined: an inpainting chain starts from pure noise")
    if args.jump != 1 and args.resample == 1:
        fail(PROG, "--jump needs --resample 2 or more (each resampling round goes back J steps)")
    if args.data_dir is not None and args.start_t is None and args.inpaint is None:
        fail(PROG, "--data-dir applies to --start-t and --inpaint, which begin from examples of the data")
    args.eta = 0.0 if args.eta is None else args.eta
    args.variance = args.variance or "small"
    args.guidance_scale = 3.0 if args.guidance_scale is None else args.guidance_scale


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    refuse_unused_flags(args)
    suffix = args.out.suffix.lower()
    if suffix not in (".npy", ".png"):
        fail(PROG, f"--out must end in .npy or .png, got {args.out.name!r}")
    if not 1 <= args.n <= MAX_SAMPLES:
        fail(PROG, f"--n must be between 1 and {MAX_SAMPLES}, got {args.n}")
    if args.out.is_dir():
        fail(PROG, f"--out {args.out} is a folder; name the file to write, e.g. {args.out / ('samples' + suffix)}")
    check_writable_parent(PROG, args.out)  # before sampling, which a bad --out would otherwise throw away
    try:
        device = resolve_device(args.device)
        ckpt = load_checkpoint(args.ckpt, device=device)
        model = ckpt.model if args.guide is None else guided_model(
            ckpt.model, ckpt.schedule, ckpt.data, args.guide, args.guidance_scale, args.n, device, args.guidance)
        if args.guide is not None:  # "top" → "90° (top)", as guided_model read it
            args.guidance = args.guidance or default_method(ckpt.model)
            args.guide = find_class(args.guide, guidance_classes(ckpt.data.name, ckpt.data.kind, args.guidance))
        x_T, generator = initial_noise((args.n,) + ckpt.data.shape, seed=args.seed, device=device)
        starts = None
        if args.inpaint is not None:
            known = inpaint_mask(args.inpaint, tuple(ckpt.data.shape), args.seed).to(device)
            starts = training_examples(ckpt.data, ckpt.points, args.n, seed=args.seed,
                                       root=args.data_dir).to(device)
            samples = inpaint(  # seeded afresh, as the app's inpainting panel: the same seed, the same completions
                model, ckpt.schedule, starts, known, method=args.method, steps=args.steps, eta=args.eta,
                variance=args.variance, spacing=args.spacing, clip_x0=ckpt.data.clip_x0, resample=args.resample,
                jump=args.jump,
                generator=torch.Generator(device=device).manual_seed(args.seed),
            )
        else:
            if args.start_t is not None:
                if not 1 <= args.start_t <= ckpt.schedule.T:
                    fail(PROG, f"--start-t must be between 1 and T = {ckpt.schedule.T}, got {args.start_t}")
                starts = training_examples(ckpt.data, ckpt.points, args.n, seed=args.seed,
                                           root=args.data_dir).to(device)
                x_T = ckpt.schedule.q_sample(starts, args.start_t, x_T)  # x_t0 = √ᾱ·x_0 + √(1 − ᾱ)·ε
            samples = sample(
                model, ckpt.schedule, x_T, method=args.method, steps=args.steps, eta=args.eta,
                variance=args.variance, spacing=args.spacing, clip_x0=ckpt.data.clip_x0, generator=generator,
                start_t=args.start_t,
            )
    except ValueError as err:
        fail(PROG, str(err))
    broken = non_finite_count(samples)
    if broken:  # a diverged model's: written as NaN, with "wrote 4 samples" and status 0
        fail(PROG, f"{broken} of {args.n} samples are not finite numbers (NaN or infinite): {args.ckpt} does not "
                   "give a usable model (did its training diverge?); nothing was written")
    if args.guide is not None:
        print(guide_report(samples, ckpt.data, args.guide, args.guidance_scale, args.guidance), file=sys.stderr)
    if args.inpaint is not None:
        print(inpaint_report(samples, starts, ckpt.data.name, ckpt.data.kind, args.resample, args.jump), file=sys.stderr)
    elif starts is not None and args.n >= 2:
        try:
            print(f"return ratio {return_ratio(samples, starts):.3f} (0: the samples came back to the examples they "
                  f"were noised from at t = {args.start_t}; 1: nothing of them is left)", file=sys.stderr)
        except ValueError as err:  # a one-point set
            print(err, file=sys.stderr)
    samples = ckpt.data.to_data_coordinates(samples.float().cpu())
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".npy":  # np.save(path) adds ".npy" to "s.NPY", and wrote s.NPY.npy: saved to a file
            write_atomically(args.out, lambda file: np.save(file, samples.numpy()))
        elif ckpt.data.kind == "image":
            grid = make_grid(to_uint8(samples), nrow=math.ceil(math.sqrt(args.n)), padding=2, pad_value=255)
            picture = Image.fromarray(grid.permute(1, 2, 0).squeeze(-1).numpy())
            write_atomically(args.out, lambda file: picture.save(file, format="PNG"))
        else:
            write_atomically(args.out, lambda file: scatter_png(samples.numpy()).save(file, format="PNG"))
    except OSError as err:  # e.g. the disk filled up while sampling
        fail(PROG, f"cannot write {args.out}: {err.strerror or err}")
    print(f"wrote {args.n} sample{'s' if args.n != 1 else ''} to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run(main, PROG)
