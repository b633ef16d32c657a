"""Start's inputs checked into a `Plan` (`make_plan`: a plain-worded gr.Error for each bad one, the server's caps
applied), and what a plan builds: the network (new, or a fresh copy of the checkpoint it continues) and the trainer's
`TrainConfig`."""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from app import controls, formulas, runs
from app.errors import InputError
from app.own_points import OWN_POINTS, OwnPoints
from app.checkpoint_access import REPO_CHECKPOINTS, allowed, not_allowed_error, shipped_root
from app.runs import display_name
from core.checkpoints import (
    CheckpointError, load_checkpoint, model_classes, model_name, model_prediction, read_config, steps_trained,
    trained_min_snr_gamma, training_history,
)
from core.conditioning import NULL_NEVER_TRAINED
from core.data import TOY2D_CLASSES, TOY2D_LABELS, TOY2D_NAMES, DataInfo
from core.datasets import DEFAULT_TOY_POINTS, class_names
from core.image_data import (
    IMAGE_DATASET_LABELS, IMAGE_DATASETS, MIRRORED_DATASETS, available_datasets, dataset_available, short_label,
)
from core.prediction import PREDICTION_SYMBOLS, PREDICTIONS, Prediction
from core.schedules import NoiseSchedule, default_params, schedule_from_config
from core.presets import DEFAULTS as TRAIN_DEFAULTS, new_model, warmup_steps
from core.trainer import TrainConfig, loss_name


MAX_BATCH = 4096
MAX_IMAGE_BATCH = 256  # a U-Net's activations take about 2 MB an MNIST example: 4,096 had asked for 8 GB at once
MAX_LR = 1e3  # above this nothing sensible happens; values up to it are allowed (to show divergence)
MAX_TOY_POINTS = 100_000  # training points a 2D toy run may draw
PREVIEW_POINTS = 1000  # 2D preview samples
PREVIEW_IMAGES = 16  # image preview samples (a 4 × 4 grid)
PREVIEW_STEPS = {"2d": 100, "image": 50}  # steps of an in-run preview chain (DDPM in log-SNR for 2D, DDIM for images)
MAX_P_UNCOND = 0.5
UNTRAINED_NULL_NOTE = f"p_uncond = 0: {NULL_NEVER_TRAINED}."
MODEL_CHOICES = [("MLP (2D points)", "mlp"), ("U-Net tiny (images, fast)", "tiny"), ("U-Net small (images)", "small")]
# Defaults per kind of data: the CLI's; images on a CPU take fewer steps (5–11 min on 2 cores)
DEFAULTS_2D = TRAIN_DEFAULTS["2d"]
DEFAULTS_IMAGE_GPU = TRAIN_DEFAULTS["image"]
DEFAULTS_IMAGE_CPU = {**TRAIN_DEFAULTS["image"], "steps": 2000}


def data_kind_of(name: str) -> str:
    if name in TOY2D_NAMES or name == OWN_POINTS:
        return "2d"
    if name in IMAGE_DATASETS:
        return "image"
    raise InputError(f"Unknown data {name!r}; choose one from the list.")


def defaults_for(kind: str) -> dict:
    """The defaults for "2d" or "image" data (images: fewer steps without a GPU)."""
    if kind == "2d":
        return DEFAULTS_2D
    return DEFAULTS_IMAGE_GPU if torch.cuda.is_available() else DEFAULTS_IMAGE_CPU


def conditional_data() -> str:
    """The data with classes that this server offers: the toys with classes, then the image data sets found."""
    return ", ".join([*(TOY2D_LABELS[n] for n in TOY2D_CLASSES),
                      *(short_label(n) for n in available_datasets() if class_names(n))])


@dataclass
class Plan:
    """A checked training request."""

    data: str
    kind: str
    schedule: NoiseSchedule
    model: str
    steps: int
    batch: int
    lr: float
    seed: int
    max_seconds: float
    notes: list[str]
    init_from: Path | None = None  # continue from this checkpoint's weights (None: a new model)
    previous_runs: list[dict] | None = None  # the runs that made init_from, oldest first
    own: OwnPoints | None = None  # the points to learn when data is OWN_POINTS
    n_points: int = DEFAULT_TOY_POINTS  # the size of a 2D toy's training set
    prediction: Prediction = "eps"  # what the network learns to predict (core.prediction)
    conditional: bool = False  # class-conditional on the data's classes, for classifier-free guidance
    p_uncond: float = TrainConfig.p_uncond  # conditional runs: the chance that an example's class is dropped to ∅
    until_saved: list[str] = field(default_factory=list)  # notes said until the run ends (its end says what happened)
    # the loss weighting (named on the loss plot's axis too): the CLI's default for the kind, or a continued checkpoint's
    min_snr_gamma: float = 0.0

    @property
    def steps_before(self) -> int:
        """The optimiser steps of the runs that made the checkpoint this run continues (0 for a new model)."""
        return steps_trained(self.previous_runs or [])

    @property
    def running_notes(self) -> list[str]:
        """The notes of the statuses before the run's last."""
        return self.notes + self.until_saved


def data_missing_here(name: str) -> str:
    """The label of the data a checkpoint learnt, when this server can neither make it (a 2D toy) nor read it (an
    image data set in DDPM_DATA_DIR): it cannot be trained further here. "" when it can."""
    if name in TOY2D_NAMES or (name in IMAGE_DATASETS and dataset_available(name)):
        return ""
    return IMAGE_DATASET_LABELS.get(name, str(name))


def _start_checkpoint(start_from: str, trained: Any, kind: str) -> tuple[Path, dict]:
    """(path, config) of the checkpoint to continue from, checked: this browser may use it, same kind of data."""
    if not allowed(start_from, trained):
        if start_from in (trained or []):  # one of the page's own, deleted since (another tab's new model, say)
            raise InputError(f"Start from: {not_allowed_error(start_from, trained).words}")
        raise InputError("Start from: choose a new model or a checkpoint from the list.")
    try:
        config = read_config(start_from)
        ckpt_kind, ckpt_data = config["data"]["kind"], config["data"]["name"]
    except (CheckpointError, KeyError, TypeError) as err:
        raise InputError(f"The checkpoint to start from cannot be read: {err}") from None
    if ckpt_kind != kind:
        if ckpt_kind == "image" and (missing := data_missing_here(ckpt_data)):
            raise InputError(f"{display_name(start_from)} was trained on {missing}, which is not on this server: it "
                             "cannot be trained further here (it samples in the Reverse tab).")
        what = {"2d": "2D points", "image": "images"}
        raise InputError(f"{display_name(start_from)} was trained on {what.get(ckpt_kind, ckpt_kind)} ({ckpt_data}): "
                       f"pick {what.get(ckpt_kind, ckpt_kind)} as training data, or start from a new model.")
    return Path(start_from), config


@dataclass
class ModelChoice:
    """What the network will be: a new one as chosen, or the checkpoint's it continues (`_continued`)."""

    schedule: NoiseSchedule
    model: str
    prediction: Prediction
    conditional: bool
    min_snr_gamma: float  # the loss weighting: the CLI's default for the kind of data, or the checkpoint's
    init_from: Path | None = None
    previous_runs: list[dict] | None = None
    classes: int = 0  # the continued checkpoint's number of classes
    trained_on: str = ""  # the name of the continued checkpoint's data


def _check_data(data, own) -> str:
    """The kind of the training data ("2d" or "image"), checked: chosen, drawn or uploaded, on this server."""
    if not data:
        raise InputError("Choose the training data.")
    kind = data_kind_of(data)
    if data == OWN_POINTS and not isinstance(own, OwnPoints):
        raise InputError("No points to learn yet: draw a shape in the box under Training data, or upload a CSV "
                         "of x,y points.")
    if kind == "image" and not dataset_available(data):
        raise InputError(
            f"{IMAGE_DATASET_LABELS.get(data, data)} is not available on this server: its files were not found "
            "(the host can set DDPM_DATA_DIR)."
        )
    return kind


def _new_model(kind, schedule_name, T, model, prediction, conditional, param_values) -> ModelChoice:
    """A new network as chosen, checked: a known model that fits the kind of data, a known target."""
    schedule = controls.build_schedule(schedule_name, T, param_values)
    if model not in {value for _, value in MODEL_CHOICES}:
        raise InputError(f"Unknown model {model!r}; choose one from the list.")
    if (kind == "2d") != (model == "mlp"):
        raise InputError("The MLP is for 2D points and the U-Nets are for images: pick a model that fits the data.")
    if prediction not in PREDICTIONS:
        raise InputError(f"Unknown prediction target {prediction!r}; choose ε, x₀ or v.")
    return ModelChoice(schedule, model, prediction, bool(conditional), defaults_for(kind)["min_snr"])


def _continued(start_from, trained, kind, schedule_name, T, prediction, conditional, notes: list[str]) -> ModelChoice:
    """The checkpoint's network, schedule, target, loss weighting and classes, which a continued run keeps; each
    choice of the page they overrule is said in ``notes``."""
    init_from, config = _start_checkpoint(start_from, trained, kind)
    try:
        schedule = schedule_from_config(config["schedule"])
    except (KeyError, TypeError, ValueError) as err:
        raise InputError(f"The checkpoint to start from has an invalid schedule: {err}") from None
    name, classes = display_name(init_from), model_classes(config)
    kept = model_prediction(config)
    if prediction != kept:
        notes.append(f"Continuing {name}: its network predicts {PREDICTION_SYMBOLS.get(kept, kept)}, and goes on "
                     "learning that.")
    min_snr_gamma = trained_min_snr_gamma(config)
    if min_snr_gamma != defaults_for(kind)["min_snr"]:
        notes.append(f"Continuing {name}: it was trained on the {loss_name(min_snr_gamma)} loss, and goes on with it.")
    if bool(conditional) != bool(classes):
        notes.append(f"Continuing {name}: it is {'' if classes else 'not '}class-conditional, and stays so.")
    if (schedule_name, int(T or 0)) != (schedule.name, schedule.T):
        notes.append(f"Continuing {name}: its noise schedule ({schedule.name}, T = {schedule.T}) is used, not the one "
                     "chosen here.")
    return ModelChoice(schedule, model_name(config), kept, classes > 0, min_snr_gamma, init_from,
                       training_history(config), classes, config["data"]["name"])


def _check_classes(data, choice: ModelChoice, p_uncond, notes: list[str]) -> float:
    """The p_uncond of a class-conditional run (checked; the config's default otherwise), once the data is known to
    have classes, as many as a continued checkpoint's."""
    if not choice.conditional:
        return TrainConfig.p_uncond
    if not class_names(data):
        name = TOY2D_LABELS.get(data) or IMAGE_DATASET_LABELS.get(data) or "Your own points"
        raise InputError(f"{name} has no classes to condition on; class-conditional training "
                         f"needs data with classes: {conditional_data()}.")
    if choice.init_from is not None and len(class_names(data)) != choice.classes:
        name = TOY2D_LABELS.get(data) or IMAGE_DATASET_LABELS.get(data) or data
        raise InputError(f"{display_name(choice.init_from)} is conditional on {choice.classes} classes, but {name} "
                         f"has {len(class_names(data))}: pick data with {choice.classes} classes (it was trained on "
                         f"{choice.trained_on}), or start from a new model.")
    p_uncond = controls.number_between(p_uncond, "Drop the class to ∅ (p_uncond)", 0.0, MAX_P_UNCOND)
    if p_uncond == 0:
        notes.append(UNTRAINED_NULL_NOTE)
    return p_uncond


def _learning_rate(lr) -> float:
    if lr is None or lr == "":
        raise InputError("Learning rate is empty; enter a positive number such as 0.002.")
    try:
        lr = float(lr)
    except (TypeError, ValueError):
        raise InputError(f"Learning rate must be a positive number, got {lr!r}.") from None
    if not (math.isfinite(lr) and 0 < lr <= MAX_LR):
        raise InputError(f"Learning rate must be a positive number up to {MAX_LR:g}, got {lr:g}.")
    return lr


def _capped_steps(steps, notes: list[str]) -> int:
    """The run's steps, at most the server's cap (`runs.max_train_steps`; said in ``notes`` when it applies)."""
    steps = controls.whole_number(steps, "Training steps", 1)
    cap = runs.max_train_steps()
    if steps > cap:
        notes.append(f"{steps} steps asked for; this server allows at most {cap}, so the run takes {cap}.")
    return min(steps, cap)


def make_plan(data, schedule_name, T, model, prediction, conditional, p_uncond, start_from, steps, batch, lr, seed,
              n_points, trained, own, param_values, owner: str | None = None) -> Plan:
    """Check every input (gr.Error with a plain message) and apply the server caps. The plan's notes also say, before
    the run, what its settings will cost: a chain that does not reach noise, and the model of ``owner`` (a browser's
    key) that the new one will push out."""
    kind = _check_data(data, own)
    notes: list[str] = []
    if start_from:  # the model and the schedule come from the checkpoint
        choice = _continued(start_from, trained, kind, schedule_name, T, prediction, conditional, notes)
    else:
        choice = _new_model(kind, schedule_name, T, model, prediction, conditional, param_values)
    p_uncond = _check_classes(data, choice, p_uncond, notes)
    steps = _capped_steps(steps, notes)
    batch = controls.whole_number(batch, "Batch size" + (" for images" if kind == "image" else ""), 1,
                                  MAX_IMAGE_BATCH if kind == "image" else MAX_BATCH)
    lr = _learning_rate(lr)
    seed = controls.whole_number(seed, "Seed", 0, controls.MAX_SEED)
    n_points = controls.whole_number(n_points, "Training points", 1, MAX_TOY_POINTS) if data in TOY2D_NAMES \
        else DEFAULT_TOY_POINTS
    schedule = choice.schedule
    if not schedule.reaches_noise:  # the Forward and Schedules tabs flag it; a run on it went without a word
        notes.append(f"ᾱ_T = {formulas.number(schedule.alpha_bar_T)}: this chain does not reach noise, yet sampling "
                     f"starts from N(0, I), so the samples will miss the data; {controls.reach_noise_advice(schedule)}.")
    until_saved = []
    if owner is not None and (pushed := runs.pushed_out_by_next(owner)):  # said before, not only after the run
        until_saved.append(f"{runs.pruned_sentence(pushed, will=True)} when this run saves its model: download it "
                           "first to keep it.")
    runs.check_can_save()  # a run whose model cannot be saved had trained, then said so
    return Plan(data, kind, schedule, choice.model, steps, batch, lr, seed, runs.max_train_seconds(), notes,
                choice.init_from, choice.previous_runs, own if data == OWN_POINTS else None, n_points,
                choice.prediction, choice.conditional, p_uncond, until_saved, choice.min_snr_gamma)


def build_model(plan: Plan, data: torch.Tensor) -> torch.nn.Module:
    """A new model (seeded), or a fresh copy of the checkpoint's to continue from (in train mode)."""
    if plan.init_from is not None:
        try:
            ckpt = load_checkpoint(plan.init_from)
        except CheckpointError as err:
            raise InputError(f"The checkpoint to start from cannot be loaded: {err}") from None
        if tuple(ckpt.data.shape) != tuple(data.shape[1:]):
            raise InputError(f"{display_name(plan.init_from)} was trained on data of shape {tuple(ckpt.data.shape)}, but "
                           f"{plan.data} has shape {tuple(data.shape[1:])}: pick matching data or a new model.")
        return ckpt.model.train()
    torch.manual_seed(plan.seed)  # weight initialisation
    try:
        return new_model(plan.model, tuple(data.shape[1:]), len(class_names(plan.data)) if plan.conditional else 0)
    except ValueError as err:
        raise InputError(f"This U-Net does not fit the data: {err}") from None


def train_config(plan: Plan, info: DataInfo) -> TrainConfig:
    defaults = defaults_for(plan.kind)
    if plan.kind == "2d":  # ancestral steps even in log-SNR: DDIM throws 2D points far out on cosine (core.sampler)
        every, n, method, spacing = max(50, plan.steps // 20), PREVIEW_POINTS, "ddpm", "log_snr"
    else:  # x̂₀ is clipped for images, which keeps DDIM sane; a conditional run shows each class twice
        every, method, spacing = max(100, plan.steps // 8), "ddim", "uniform"
        n = 2 * len(class_names(plan.data)) if plan.conditional else PREVIEW_IMAGES
    return TrainConfig(
        steps=plan.steps, batch_size=plan.batch, lr=plan.lr, ema_decay=defaults["ema_decay"], seed=plan.seed,
        device="auto", preview_every=every, preview_n=n, preview_method=method,
        preview_steps=min(PREVIEW_STEPS[plan.kind], plan.schedule.T), preview_spacing=spacing,
        log_every=10, clip_x0=info.clip_x0, hflip=plan.data in MIRRORED_DATASETS, max_seconds=plan.max_seconds,
        warmup_steps=warmup_steps(plan.steps), min_snr_gamma=plan.min_snr_gamma, prediction=plan.prediction,
        p_uncond=plan.p_uncond, steps_before=plan.steps_before,
    )


def cli_command(plan: Plan, out: str) -> str | None:
    """The `python -m core.train` command that makes the same run, writing ``out``, for its training record (model
    cards print it): every setting spelt out, a checkpoint to start from by its folder (a shipped one's path in the
    repository, a run of this server's as the command writes it, runs/NAME). None for points of the page's own (drawn
    or uploaded), which the command line has no name for."""
    if plan.own is not None:
        return None
    args = ["--data", plan.data]
    if plan.init_from is not None:
        folder = plan.init_from.parent.resolve()
        start = (f"checkpoints/{plan.init_from.name}" if folder == REPO_CHECKPOINTS.resolve() else
                 str(plan.init_from) if folder == shipped_root().resolve() else f"runs/{plan.init_from.name}")
        args += ["--init-from", start]
    else:
        s = plan.schedule
        changed = {k: v for k, v in s.params.items() if default_params(s.name).get(k) != v}
        params = [arg for k, v in changed.items() for arg in ("--param", f"{k}={str(v).lower()}")]
        args += ["--schedule", s.name, "--T", str(s.T), *params,
                 "--model", plan.model, "--prediction", plan.prediction]
    if plan.conditional:
        args += ["--conditional", "--p-uncond", repr(plan.p_uncond)]
    if plan.data in TOY2D_NAMES:  # always: continued, a toy set of its own size would be taken up again without it
        args += ["--n-points", str(plan.n_points)]
    args += ["--steps", str(plan.steps), "--batch", str(plan.batch), "--lr", repr(plan.lr),
             "--min-snr", repr(plan.min_snr_gamma), "--seed", str(plan.seed), "--out", out]
    return "python -m core.train " + shlex.join(args)  # quoted: a folder's path may hold spaces


def preview_classes(plan: Plan) -> tuple[str, ...]:
    """The classes of a conditional run's previews (its data's, in label order); () for an unconditional run."""
    return class_names(plan.data) if plan.conditional else ()
