"""`python -m core.train`: train a DDPM headless (progress on stderr) and write a checkpoint.

    python -m core.train --data swiss_roll --out checkpoints/my_swiss_roll
    DDPM_DATA_DIR=../shared/data python -m core.train --data mnist --model small --out runs/mnist

Defaults depend on the data: 2D toys get the MLP denoiser and a run of a few thousand steps
that reaches a sliced-Wasserstein ratio ≤ 1.5 on the swiss roll; images get the `small` U-Net.

`--prediction x0|v` trains the network to predict the clean data or v = √ᾱ·ε − √(1 − ᾱ)·x_0 instead
of the noise (`core.prediction`); samplers and checkpoints see its ε view either way.

`--conditional` trains a class-conditional network on the data's labels (toys with classes, MNIST, Fashion-MNIST,
CIFAR-10), each dropped to "no class" with probability `--p-uncond`, for classifier-free guidance
(`core.conditioning`; `python -m core.sample --guide CLASS`).

`--init-from CKPT` continues training from a checkpoint's (EMA) weights with its model and
schedule and a fresh optimiser (new warm-up and cosine decay); the saved training record keeps
the earlier runs (`previous_runs`) so that a model card can list every command that made it. With
`--conditional` an unconditional checkpoint's network is given class vectors (zero: it starts as it was)
and learns to use them (`core.conditioning.with_classes`).
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import torch
from tqdm import tqdm

from core.checkpoints import (
    check_target, load_checkpoint, model_classes, model_name, read_config, save_checkpoint, steps_trained,
    trained_min_snr_gamma, training_history,
)
from core.cli import (
    MAX_SEED, OneLineParser, check_writable_parent, fail, folder, parse_params, run, seed_number, signals_held,
    stop_name,
)
from core.data import TOY2D_NAMES, DataInfo, data_sampler
from core.conditioning import DEFAULT_P_UNCOND, NULL_NEVER_TRAINED, num_classes, with_classes
from core.datasets import DEFAULT_TOY_POINTS, class_names, data_kind, load_labelled_data, load_training_data
from core.image_data import IMAGE_DATASETS, MAX_IMAGE_SIZE, MIRRORED_DATASETS
from core.metrics import sliced_wasserstein_ratio
from core.prediction import PREDICTIONS, as_eps_model, unwrap
from core.presets import DEFAULTS, EVAL_POINTS, new_model, warmup_steps
from core.sampler import initial_noise, sample
from core.paths import user_path
from core.schedules import MAX_T, REACHES_NOISE_ALPHA_BAR, SCHEDULE_NAMES, NoiseSchedule, make_schedule
from core.trainer import (
    SHORTEST_KEPT, TrainConfig, TrainEvent, Trainer, TrainingDiverged, device_name, loss_name,
)
from core.unet import UNET_PRESETS

PROG = "python -m core.train"
MAX_BATCH = 65_536  # --batch: larger ones ask for more memory than a machine has, and the kernel ends the process
CONFIG_FLAGS = {"steps": "--steps", "batch_size": "--batch", "learning rate": "--lr", "ema_decay": "--ema-decay",
                "min_snr_gamma": "--min-snr", "p_uncond": "--p-uncond", "max_seconds": "--max-seconds"}


def build_parser() -> OneLineParser:
    p = OneLineParser(prog=PROG, description="Train a DDPM on 2D toy data or images and save a checkpoint.")
    p.add_argument("--data", required=True, help=f"2D toy ({', '.join(TOY2D_NAMES)}), image data set "
                   f"({', '.join(IMAGE_DATASETS)}), a .csv of x,y points, or a folder of images")
    p.add_argument("--out", required=True, type=user_path, help="checkpoint directory to write (must not exist unless --overwrite)")
    p.add_argument("--init-from", type=user_path, metavar="CKPT",
                   help="continue from this checkpoint's weights, model and schedule (fresh optimiser)")
    p.add_argument("--schedule", choices=SCHEDULE_NAMES, help="noise schedule (default: linear)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="schedule parameter, repeatable, e.g. --param beta_end=0.01")
    p.add_argument("--T", type=int, help=f"number of diffusion steps, 2 … {MAX_T:,} (default: 1000; the linear, "
                                         "quadratic and sigmoid-in-β schedules scale β by 1000/T, so need T > 20 "
                                         "unless --param scale_with_T=false)")
    p.add_argument("--steps", type=int, help="training steps (default: 3000 for 2D, 6000 for images)")
    p.add_argument("--batch", type=int, help=f"batch size, at most {MAX_BATCH:,} (default: 512 for 2D, 64 for images)")
    p.add_argument("--lr", type=float, help="peak learning rate (default: 2e-3 for 2D, 1e-3 for images)")
    p.add_argument("--ema-decay", type=float, help="EMA decay, 0 disables (default: 0.995 for 2D, 0.999 for images)")
    p.add_argument("--min-snr", type=float, metavar="GAMMA",
                   help="Min-SNR-γ loss weighting min(SNR_t, γ)/SNR_t; 0: plain L_simple (default: 0 for 2D, 5 for images)")
    p.add_argument("--prediction", choices=PREDICTIONS,
                   help="what the network learns to predict: eps (the noise; default), x0 (the clean data) or "
                        "v = √ᾱ·ε − √(1−ᾱ)·x0")
    p.add_argument("--conditional", action="store_true",
                   help="train a class-conditional network on the data's labels, for classifier-free guidance "
                        "(toys with classes, mnist, fashion_mnist, cifar10); with --init-from an unconditional "
                        "checkpoint: make it conditional")
    p.add_argument("--p-uncond", type=float, metavar="P",
                   help=f"with --conditional: chance that a label is dropped to 'no class' (default: {DEFAULT_P_UNCOND:g})")
    p.add_argument("--model", choices=("mlp",) + UNET_PRESETS, help="mlp for 2D (default); U-Net preset for images (default: small)")
    p.add_argument("--seed", type=seed_number,
                   help=f"random seed, 0 to {MAX_SEED} (default: 0; with --init-from a checkpoint of a toy set of "
                        "its own size, that set's seed)")
    p.add_argument("--device", default="auto", help="auto (CUDA if present; default), cpu or cuda")
    p.add_argument("--n-points", type=int,
                   help=f"2D toys: training set size (default: {DEFAULT_TOY_POINTS:,})")
    p.add_argument("--image-size", type=int,
                   help=f"folder of images: side length in pixels, at most {MAX_IMAGE_SIZE}; the U-Net presets take multiples of "
                        "4 from 16, e.g. 28, 32, 64 (default: 32)")
    p.add_argument("--channels", type=int, choices=(1, 3), help="folder of images: 1 (grey) or 3 (RGB; default)")
    p.add_argument("--data-dir", type=folder, help="image data directory (default: $DDPM_DATA_DIR or ./data)")
    p.add_argument("--max-seconds", type=float, help="stop training after this many seconds")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (faster on GPU for long runs)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace --out if it is a checkpoint (never another folder or file)")
    p.add_argument("--no-eval", action="store_true", help="2D: skip the sliced-Wasserstein evaluation after training")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def refuse_model_flags(args: argparse.Namespace) -> None:
    """--init-from takes the model and schedule from the checkpoint: a ValueError for flags that would set them."""
    given = [flag for flag, value in (("--model", args.model), ("--prediction", args.prediction),
                                      ("--schedule", args.schedule), ("--T", args.T), ("--param", args.param))
             if value not in (None, [])]  # --T 0 is given too
    if given:
        raise ValueError(f"--init-from takes the model (and what it predicts) and the schedule from the checkpoint; "
                         f"drop {', '.join(given)}")


def continue_from(args: argparse.Namespace, shape: tuple[int, ...]) -> tuple[torch.nn.Module, NoiseSchedule, str, list[dict]]:
    """(model with the checkpoint's weights, its schedule, its preset name, the runs that made it)."""
    ckpt = load_checkpoint(args.init_from)
    if tuple(ckpt.data.shape) != tuple(shape):
        raise ValueError(f"{args.init_from} was trained on data of shape {tuple(ckpt.data.shape)}, "
                         f"but {args.data} has shape {tuple(shape)}")
    model = ckpt.model
    if args.conditional and not num_classes(model):  # the unconditional model, given (zero) class vectors
        net, prediction = unwrap(model)
        model = as_eps_model(with_classes(net, len(class_names(args.data))), ckpt.schedule, prediction)
    return model.train(), ckpt.schedule, model_name(ckpt.config), training_history(ckpt.config)


def min_snr_gamma(args: argparse.Namespace, default: float, started_from: dict | None) -> float:
    """The run's Min-SNR γ: --min-snr, else for --init-from the checkpoint's own (``started_from``: its config; it had
    switched a model trained on plain L_simple to Min-SNR-5 without a word), said when it is not the kind's default,
    else the default."""
    if args.min_snr is not None:
        return args.min_snr
    if started_from is None:
        return default
    gamma = trained_min_snr_gamma(started_from)
    if gamma != default:
        print(f"continuing with the checkpoint's loss weighting, {loss_name(gamma)}; --min-snr sets another",
              file=sys.stderr)
    return gamma


def continued_toy_set(args: argparse.Namespace, started_from: dict | None) -> tuple[int, int] | None:
    """(size, seed) of the toy training set that ``--init-from``'s checkpoint learnt, when it was one of another size
    than the usual (a memorisation experiment on 300 points, say) and the run goes on with the same toy without
    ``--n-points``: it continues on that very set, as the app's "Start from" does (it had gone on with 10,000
    points without a word). None otherwise. ``started_from``: the checkpoint's config."""
    if started_from is None or args.n_points is not None or args.data not in TOY2D_NAMES:
        return None
    training = started_from.get("training") or {}
    size, seed = training.get("data_size"), training.get("seed")
    if started_from.get("data", {}).get("name") != args.data or not isinstance(size, int) or not isinstance(seed, int):
        return None
    return (size, seed) if 1 <= size != DEFAULT_TOY_POINTS else None


@dataclass
class PreparedRun:
    """A run built from the flags: its trainer, and what its checkpoint records."""

    trainer: Trainer
    data: torch.Tensor  # (N, ...) in model coordinates, as loaded (the trainer holds a copy on its device)
    info: DataInfo
    preset: str  # the network's preset name, for the training record
    previous_runs: list  # the runs an --init-from checkpoint continued, for the training record
    conditional: bool


def prepare_run(args: argparse.Namespace) -> PreparedRun:
    """The data, network, schedule and trainer the flags ask for; ValueError (FileNotFoundError for missing files)
    in the user's words for flags that cannot go together or values out of range. Fills in the flags left out that
    the run needs (--seed, --n-points, --p-uncond), as the training record will say them."""
    kind = data_kind(args.data)
    defaults = DEFAULTS[kind]
    if args.init_from is not None:
        refuse_model_flags(args)
    folder_flags = [flag for flag, value in (("--image-size", args.image_size), ("--channels", args.channels))
                    if value is not None]
    named = args.data in TOY2D_NAMES or args.data in IMAGE_DATASETS
    if folder_flags and (named or not user_path(args.data).is_dir()):
        verb = "applies" if len(folder_flags) == 1 else "apply"
        raise ValueError(f"{' and '.join(folder_flags)} {verb} to a folder of images; {args.data} has its own size "
                         "and channels")
    if args.image_size is not None and not 1 <= args.image_size <= MAX_IMAGE_SIZE:  # before the images load
        raise ValueError(f"--image-size must be from 1 to {MAX_IMAGE_SIZE} pixels, got {args.image_size:,}")
    started_from = None if args.init_from is None else read_config(args.init_from)  # the config of --init-from
    conditional = args.conditional or (started_from is not None and model_classes(started_from) > 0)
    # a flag that would change nothing is refused, as core.sample refuses its own (it was taken without a word)
    if args.p_uncond is not None and not conditional:
        raise ValueError("--p-uncond applies to class-conditional runs (--conditional, or --init-from a "
                         "conditional checkpoint)")
    if args.n_points is not None and args.data not in TOY2D_NAMES:
        raise ValueError(f"--n-points applies to the 2D toys; {args.data} has its own examples")
    args.p_uncond = DEFAULT_P_UNCOND if args.p_uncond is None else args.p_uncond
    if (kept := continued_toy_set(args, started_from)) is not None:
        size, seed = kept
        if args.seed not in (None, seed):
            raise ValueError(f"--seed {args.seed} would draw another set than the {size:,} training points the "
                             f"checkpoint learnt (seed {seed}): leave --seed out to continue on them, or give "
                             "--n-points to train on a new set")
        args.n_points, args.seed = size, seed
        print(f"continuing on the checkpoint's own {size:,} training points of {args.data} (drawn again with "
              f"seed {seed}); --n-points sets another size", file=sys.stderr)
    args.seed = 0 if args.seed is None else args.seed
    args.n_points = DEFAULT_TOY_POINTS if args.n_points is None else args.n_points
    labels = None
    if conditional:
        data, labels, info = load_labelled_data(args.data, n_points=args.n_points, seed=args.seed, root=args.data_dir)
    else:
        data, info = load_training_data(
            args.data, n_points=args.n_points, seed=args.seed, root=args.data_dir,
            image_size=32 if args.image_size is None else args.image_size,
            channels=3 if args.channels is None else args.channels,
        )
    if args.init_from is not None:
        model, schedule, preset, previous_runs = continue_from(args, info.shape)
        if conditional and num_classes(model) != len(class_names(info.name)):
            raise ValueError(f"{args.init_from} knows {num_classes(model)} classes, {info.name} has "
                             f"{len(class_names(info.name))}")
    else:
        preset = args.model or defaults["model"]
        if (kind == "2d") != (preset == "mlp"):
            raise ValueError(f"model {preset} does not fit {kind} data: use mlp for 2D points, a U-Net preset for images")
        schedule = make_schedule(args.schedule or "linear", 1000 if args.T is None else args.T,
                                 **parse_params(args.param, PROG))
        torch.manual_seed(args.seed)  # weight initialisation
        model = new_model(preset, info.shape, len(class_names(info.name)) if conditional else 0)
        previous_runs = []
    steps = defaults["steps"] if args.steps is None else args.steps
    config = TrainConfig(
        steps=steps, warmup_steps=warmup_steps(steps), steps_before=steps_trained(previous_runs),
        batch_size=defaults["batch"] if args.batch is None else args.batch,
        lr=defaults["lr"] if args.lr is None else args.lr,
        ema_decay=defaults["ema_decay"] if args.ema_decay is None else args.ema_decay,
        min_snr_gamma=min_snr_gamma(args, defaults["min_snr"], started_from),
        prediction=unwrap(model)[1] if args.init_from is not None else args.prediction or "eps",
        seed=args.seed, device=args.device, clip_x0=info.clip_x0, hflip=args.data in MIRRORED_DATASETS,
        max_seconds=args.max_seconds, log_every=10, compile=args.compile, p_uncond=args.p_uncond,
    )
    trainer = Trainer(model, schedule, data, config, labels)
    return PreparedRun(trainer, data, info, preset, previous_runs, conditional)


def train_to_the_end(trainer: Trainer, quiet: bool) -> tuple[TrainEvent | None, str, str, float]:
    """Run the trainer with a progress bar on stderr until it ends, diverges or a stop signal comes: (its end event,
    None after a stop signal; the divergence's message or ""; the stop signal's name or ""; seconds trained)."""
    bar = tqdm(total=trainer.config.steps, disable=quiet, file=sys.stderr, unit="step", dynamic_ncols=True)
    end, diverged, interrupted = None, "", ""  # interrupted: what stopped the run ("Ctrl-C", "SIGTERM", "SIGHUP")
    started = time.perf_counter()
    try:
        for event in trainer.run():
            bar.update(event.step - bar.n)
            bar.set_postfix(loss=f"{event.loss:.4f}")
            if event.kind == "end":
                end = event
    except TrainingDiverged as err:  # the trainer holds the weights from before the bad step: save them
        diverged = str(err)
    except KeyboardInterrupt as err:  # save what was learnt, at once (no quality check: a second Ctrl-C would lose it)
        trainer.stop()
        interrupted = stop_name(err)
        try:  # the steps since the last report: had the run diverged among them? (then they were not learnt)
            trainer.read_losses()
        except TrainingDiverged as bad:
            diverged = str(bad)
    seconds = end.elapsed if end else time.perf_counter() - started
    bar.close()
    return end, diverged, interrupted, seconds


def main(argv: list[str] | None = None) -> int:
    """Check the flags, train, measure a 2D run, save: status 0, or 130 when a stop signal cut the run short (saved,
    unless it would replace a checkpoint with fewer than `SHORTEST_KEPT` steps); bad flags and a divergence exit 1
    with one line (`fail`)."""
    args = build_parser().parse_args(argv)
    check_writable_parent(PROG, args.out)  # before the run, which an unwritable --out would otherwise throw away
    try:
        check_target(args.out, overwrite=args.overwrite)
    except FileExistsError as err:
        fail(PROG, str(err) if args.overwrite else f"{err} (use --overwrite to replace it)")
    if args.batch is not None and args.batch > MAX_BATCH:
        fail(PROG, f"--batch must be at most {MAX_BATCH:,}, got {args.batch:,}")
    try:
        prepared = prepare_run(args)
    except (ValueError, FileNotFoundError) as err:
        fail(PROG, in_flags(str(err)))
    trainer, data, info = prepared.trainer, prepared.data, prepared.info
    schedule = trainer.schedule
    model, config, kind, conditional = trainer.model, trainer.config, info.kind, prepared.conditional
    if not schedule.reaches_noise:
        print(f"warning: this schedule does not reach noise (ᾱ_T = {schedule.alpha_bar_T:.3g} > "
              f"{REACHES_NOISE_ALPHA_BAR:g}): x_T still carries signal, but sampling starts from N(0, I); "
              "increase --T or beta_end", file=sys.stderr)

    read_from = f" from {info.source}" if info.source else ""
    if conditional:
        read_from += f", conditional on its {num_classes(model)} classes, each dropped to ∅ with p = {config.p_uncond:g}"
        if config.p_uncond == 0:
            read_from += f" ({NULL_NEVER_TRAINED})"
    print(f"training on {info.name} ({len(data)} examples{read_from}) on {device_name(trainer.device)}, "
          f"{sum(p.numel() for p in model.parameters()):,} parameters", file=sys.stderr)
    end, diverged, interrupted, seconds = train_to_the_end(trainer, args.quiet)
    if diverged and trainer.step == 0:
        fail(PROG, f"{diverged}; nothing was saved")
    if (diverged or interrupted) and trainer.step < SHORTEST_KEPT and args.out.exists():
        what = diverged or f"stopped by {interrupted} after {trainer.step:,} of {config.steps:,} steps"
        kept = (f"{what}; {args.out} is left as it was (a run cut short replaces a checkpoint from {SHORTEST_KEPT} "
                "steps on)")
        if diverged:
            fail(PROG, kept)
        print(kept, file=sys.stderr)
        return 130

    metrics = {}
    if kind == "2d" and not args.no_eval and not diverged and not interrupted:
        # seconds of sampling, silent before: a Ctrl-C there, as at a hung command, lost the finished run
        print(f"measuring the sliced-Wasserstein ratio (DDPM-{schedule.T}, {EVAL_POINTS} samples; Ctrl-C skips it)…",
              file=sys.stderr)
        try:
            x_T, generator = initial_noise((EVAL_POINTS, 2), seed=args.seed + 1, device=trainer.device)
            samples = sample(trainer.sampling_model, schedule, x_T, generator=generator).cpu()
            ratio = sliced_wasserstein_ratio(samples, data_sampler(info, data))
            metrics["sliced_wasserstein_ratio_ddpm"] = ratio
            print("sliced-Wasserstein ratio: " + ("not defined (the data is a single point)" if math.isnan(ratio)
                                                   else f"{ratio:.3f}"), file=sys.stderr)  # it had printed "nan"
        except KeyboardInterrupt as err:
            interrupted = stop_name(err)
            print(f"skipped ({interrupted}); saving the trained model", file=sys.stderr)
    end_reason = "diverged" if diverged else (end.reason if end else "stopped")  # no end event: Ctrl-C
    training = {
        **trainer.training_record(prepared.preset, end_reason, seconds),
        "command": "python -m core.train " + shlex.join(sys.argv[1:] if argv is None else argv),
    }
    if prepared.previous_runs:
        training["previous_runs"] = prepared.previous_runs
    target = free_target(args.out, args.overwrite)
    if target != args.out:
        print(f"{args.out} came into being while this run trained: saving it in {target} instead", file=sys.stderr)

    def save(directory: Path, overwrite: bool) -> Path:
        return save_checkpoint(directory, trainer.sampling_model, schedule, info, training=training, metrics=metrics,
                               points=data if info.given_as_points else None, overwrite=overwrite)

    early = "" if trainer.step >= config.steps else \
        f" ({f'stopped by {interrupted}' if interrupted else end_reason} after {trainer.step:,} of {config.steps:,} steps)"
    with signals_held(PROG) as came:  # a Ctrl-C (or a second one) during the save lost the whole run
        try:
            path = save(target, args.overwrite)
        except OSError as err:  # a full disk, a file-size limit: it had been a traceback, and the run was lost
            save_elsewhere(target, save, err, f"{diverged}; the weights from before that step are saved" if diverged
                           else f"the trained model{early} is saved")
    if diverged:
        fail(PROG, f"{diverged}; the weights from before that step are saved in {path}")
    print(f"saved {path}{early}", file=sys.stderr)
    return 130 if interrupted or came else 0  # saved, but cut short: a script's `train && sample` stops here


def save_elsewhere(target: Path, save: Callable[[Path, bool], Path], err: OSError, kept: str) -> NoReturn:
    """After ``target`` could not be written (``err``), save the run in the temporary folder, which often lies on
    another disk, and fail with one line that says where it went (``kept``: "the trained model is saved", or what a
    diverged or stopped run's weights are), or that it is lost: that could not be written either."""
    why = err.strerror or str(err)
    fallback = free_target(Path(tempfile.gettempdir()) / f"{target.name}-unsaved-{time.strftime('%Y%m%d-%H%M%S')}",
                           False)  # -2, -3, … for a second run in the same second
    try:
        path = save(fallback, False)
    except OSError as second:
        fail(PROG, f"could not save {target} ({why}), nor {fallback} ({second.strerror or second}): the trained "
                   "model is lost")
    fail(PROG, f"could not save {target} ({why}); {kept} in {path} instead")


def free_target(out: Path, overwrite: bool) -> Path:
    """Where to save: ``out``, checked at the start, or, when something came into being there while the run trained
    (another run's checkpoint, say) that may not be replaced, the first free ``out-2``, ``out-3``, …: the finished run
    had been lost to a FileExistsError."""
    try:
        check_target(out, overwrite=overwrite)
        return out
    except FileExistsError:
        n = 2
        while (candidate := out.with_name(f"{out.name}-{n}")).exists() or candidate.is_symlink():
            n += 1
        return candidate


def in_flags(message: str) -> str:
    """A TrainConfig error in the words of this command's flags: "batch_size must be …" → "--batch must be …"."""
    for field, flag in CONFIG_FLAGS.items():
        if message.startswith(field + " "):
            return flag + message[len(field):]
    return message


if __name__ == "__main__":
    run(main, PROG)
