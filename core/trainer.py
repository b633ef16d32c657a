"""Training (Ho et al. 2020, Algorithm 1) as a loop that reports events and can be stopped.

    repeat:  x_0 ~ data,  t ~ Uniform{1..T},  ε ~ N(0, I)
             take a gradient step on  L = mean over elements ‖ε − ε_θ(√ᾱ_t x_0 + √(1 − ᾱ_t) ε, t)‖²

(the mean, not the sum, so the loss scale and learning rate do not depend on the data size).
Around it: AdamW, linear warm-up then cosine decay of the learning rate, gradient-norm
clipping, and an exponential moving average (EMA) of the weights, θ_ema ← d·θ_ema + (1 − d)·θ,
with the warm-up d_k = min(d, (1 + k)/(10 + k)) so that a short run's EMA is not dominated by
the random initial weights. Samples (previews, checkpoints) come from the EMA weights.

The network may be trained to predict x_0 or v instead of ε (``TrainConfig.prediction``, `core.prediction`):
the loss is then the mean squared error of that target, and samples come from its ε view. A class-conditional
network (`core.conditioning`) is trained on the data's labels, each replaced by "no class" with probability
``TrainConfig.p_uncond``, so that it learns the conditional and the unconditional model at once (Ho & Salimans
2022); its previews are of the conditional model, example i of class i mod K (`preview_labels`), so that the
classes can be seen being learnt.

All randomness (batches, t, ε, preview noise) comes from explicit generators seeded from
``TrainConfig.seed``: the same seed gives the same run on the same device (and thread count: a U-Net's
sums may round otherwise). A run that continues earlier ones (``steps_before`` > 0) seeds its draws
from (seed, steps_before) (`run_seed`), so it does not replay theirs. Dropout (the `base` U-Net) draws
from torch's global generator, which a continuation's Trainer seeds alike (a new run's entry point seeds
it for the weights). A non-finite loss or gradient stops the run with `TrainingDiverged`, and no update
from that step on is applied, so the model, its EMA and the optimiser keep their last good state. `Trainer.stop()` (from any thread)
ends the run after the current step.

A step never waits for the GPU: the divergence check is done on the device (a step after which the
run is no longer healthy is skipped by the fused AdamW kernel, the way a gradient scaler skips
overflowing steps, and gated out of the EMA), and the host reads the losses only when it reports an
event. On CUDA the host queues the next step's kernels while the GPU is still computing; a read per
step would leave the GPU idle while the host launches them.
"""

from __future__ import annotations

import copy
import math
import numbers
import platform
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from core.conditioning import DEFAULT_P_UNCOND, ClassifierFreeGuidance, cycling_labels, drop_labels, num_classes
from core.devices import resolve_device
from core.image_data import random_hflip
from core.prediction import Prediction, as_eps_model, check_prediction, error_to_eps, training_target, unwrap
from core.sampler import METHODS, SPACINGS, Method, Spacing, sample
from core.schedules import NoiseSchedule

LOSS_BUCKETS = 20  # the per-timestep loss is reported over this many equal ranges of t
# A run cut short (stopped, or diverged) before this many good steps has learnt next to nothing, and is not saved
# where it would take the place of a model: in the app (Stop right after Start pushed out the browser's oldest model;
# a learning rate of 1000 diverges at step 2), and over a checkpoint that `python -m core.train --overwrite` replaces
# (Ctrl-C in its first moments left an untrained model there). A run that finishes is saved however short.
SHORTEST_KEPT = 100


FULL_CHAIN_STEPS = 1000  # a full-chain preview of a longer chain takes this many DDPM steps, evenly in log-SNR


@contextmanager
def evaluating(model: nn.Module) -> Iterator[None]:
    """The network behind ``model`` in eval mode (no dropout) for the block, then back in the mode it was in,
    whatever ends the block."""
    network = unwrap(model)[0]  # an EpsilonView has no mode of its own
    was_training = network.training
    network.eval()
    try:
        yield
    finally:
        network.train(was_training)


def loss_bucket_ranges(T: int) -> list[tuple[int, int]]:
    """(first t, last t) of each of the LOSS_BUCKETS ranges of `Trainer.bucket_loss`: bucket k holds the t in
    1..T with (t − 1)·LOSS_BUCKETS // T = k (for T < LOSS_BUCKETS some are empty: first > last)."""
    return [(-(-k * T // LOSS_BUCKETS) + 1, -(-(k + 1) * T // LOSS_BUCKETS)) for k in range(LOSS_BUCKETS)]


class TrainingDiverged(RuntimeError):
    """The loss or the gradients became NaN/inf; the model holds the weights from before that step.

    ``losses``: those of the good steps since the last event, which no event reported.
    """

    def __init__(self, message: str, losses: list[float] | None = None) -> None:
        super().__init__(message)
        self.losses = losses or []


WHOLE_FIELDS = {"steps": 1, "batch_size": 1, "log_every": 1, "preview_n": 1, "preview_steps": 1, "warmup_steps": 0,
                "preview_every": 0, "steps_before": 0, "seed": 0}  # TrainConfig's whole-number fields, their least values


@dataclass
class TrainConfig:
    """Settings of one training run (the defaults suit the 2D toys on a CPU)."""

    steps: int = 4000  # optimiser steps
    batch_size: int = 512  # examples per step
    lr: float = 2e-3  # peak AdamW learning rate
    weight_decay: float = 0.0  # AdamW decoupled weight decay
    warmup_steps: int = 100  # linear learning-rate warm-up from 0
    min_lr_ratio: float = 0.05  # the cosine decay ends at lr · min_lr_ratio
    grad_clip: float = 1.0  # max global gradient norm (0 disables)
    ema_decay: float = 0.995  # EMA decay; ~1/(1 − d) = 200 steps of memory suits short runs (0 disables EMA)
    seed: int = 0  # seeds batches, timesteps, noise and previews
    device: str = "auto"  # "auto" → CUDA when available, else CPU
    preview_every: int = 0  # steps between preview samples (0: none)
    preview_n: int = 16  # samples per preview
    preview_method: Method = "ddim"  # sampler of the quick preview chain
    preview_steps: int = 50  # steps of the quick preview chain (≤ T)
    preview_spacing: Spacing = "uniform"  # its timesteps: "log_snr" keeps 2D DDPM previews sane on cosine (core.sampler)
    log_every: int = 10  # steps between "step" events
    clip_x0: float | None = None  # x̂_0 clipping for previews (1.0 for images in [−1, 1])
    hflip: bool = False  # random horizontal flips of image batches (CIFAR-10)
    amp: Literal["auto", "off", "bf16"] = "auto"  # bf16 autocast: "auto" = on for CUDA only
    max_seconds: float | None = None  # stop after this much training time (server-side caps)
    compile: bool = False  # torch.compile the model for training (pays off on GPU for long runs; off on CPU)
    min_snr_gamma: float = 0.0  # > 0: Min-SNR-γ loss weights min(SNR_t, γ)/SNR_t (Hang et al. 2023); 0: L_simple
    prediction: Prediction = "eps"  # what the network learns to predict: "eps", "x0" or "v" (core.prediction)
    p_uncond: float = DEFAULT_P_UNCOND  # class-conditional networks: chance that a label is dropped to "no class"
    steps_before: int = 0  # optimiser steps of the earlier runs that this one continues (`run_seed`)

    def __post_init__(self) -> None:
        for name, least in WHOLE_FIELDS.items():  # NumPy's integers (a sweep over np.arange) are taken, as ints
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
                raise ValueError(f"{name} must be a whole number ≥ {least}, got {value!r}")
            setattr(self, name, int(value))
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"learning rate must be a positive number, got {self.lr!r}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must lie in [0, 1), got {self.ema_decay!r}")
        if not self.grad_clip >= 0:  # also NaN
            raise ValueError(f"grad_clip must be a number ≥ 0 (0: off), got {self.grad_clip!r}")
        if not (math.isfinite(self.min_snr_gamma) and self.min_snr_gamma >= 0):
            raise ValueError(f"min_snr_gamma must be a number ≥ 0 (0: off), got {self.min_snr_gamma!r}")
        if self.preview_method not in METHODS or self.preview_spacing not in SPACINGS:
            raise ValueError(f"preview_method must be one of {METHODS} and preview_spacing one of {SPACINGS}, "
                             f"got {self.preview_method!r} and {self.preview_spacing!r}")
        check_prediction(self.prediction)
        if not 0.0 <= self.p_uncond < 1.0:
            raise ValueError(f"p_uncond must lie in [0, 1), got {self.p_uncond!r}")
        if self.max_seconds is not None and not self.max_seconds > 0:  # also NaN
            raise ValueError(f"max_seconds must be a positive number of seconds, got {self.max_seconds!r}")
        if self.amp not in ("auto", "off", "bf16"):
            raise ValueError(f"amp must be auto, off or bf16, got {self.amp!r}")


@dataclass
class TrainEvent:
    """What the loop reports. ``kind``: "step" (every log_every), "preview", or "end" (last event)."""

    kind: Literal["step", "preview", "end"]
    step: int  # optimiser steps done
    total_steps: int
    loss: float  # loss of the latest step
    lr: float
    elapsed: float  # seconds of training so far
    samples_per_s: float  # examples per second over the run so far
    losses: list[float] = field(default_factory=list)  # loss of every step since the previous event
    bucket_loss: list[float] = field(default_factory=list)  # running mean ‖ε − ε̂‖² per t bucket (NaN: no data yet)
    preview: torch.Tensor | None = None  # (preview_n, ...) EMA samples on the CPU, for "preview"
    reason: str = ""  # for "end": "finished", "stopped" or "time limit"

    @property
    def fraction(self) -> float:
        """The share of the run's steps done (its progress bar)."""
        return self.step / max(1, self.total_steps)


def loss_weights(schedule: NoiseSchedule, min_snr_gamma: float, prediction: Prediction = "eps") -> torch.Tensor:
    """Per-timestep weights w_t (index t = 0..T) of the squared error of the ``prediction`` target.

    γ = 0: w_t = 1, the plain mean squared error (for ε, Ho et al.'s L_simple). γ > 0: Min-SNR-γ (Hang et
    al. 2023), which weights the ε error by min(SNR_t, γ) / SNR_t whatever the target: the target's error
    is c_t times smaller (`core.prediction.error_to_eps`), so w_t = c_t·min(SNR_t, γ)/SNR_t, i.e.
    min(SNR_t, γ) for x_0 and min(SNR_t, γ)/(SNR_t + 1) for v. In x_0 terms the ε-loss is
    SNR_t · ‖x_0 − x̂_0‖², so this caps the weight of the nearly clean timesteps (SNR_t > γ), whose easy
    denoising otherwise dominates the gradient, and leaves the noisy ones, which decide the global shape
    of a sample, at weight 1.
    """
    if min_snr_gamma <= 0:
        return torch.ones_like(schedule.alpha_bars)
    snr = schedule.snr  # index 0 is +inf: its weight is 0 (t = 0 is never trained)
    return error_to_eps(schedule, prediction) * torch.clamp(snr, max=min_snr_gamma) / snr


def eps_weighting(schedule: NoiseSchedule, min_snr_gamma: float, prediction: Prediction) -> torch.Tensor:
    """The weight that training on ``prediction`` (with Min-SNR-γ, or plain for γ = 0) puts on the ε error
    ‖ε − ε̂‖² at each t (index t = 0..T, NaN at 0): `loss_weights` divided by `core.prediction.error_to_eps`.
    Plain: 1 for ε, 1/SNR_t for x_0, 1/ᾱ_t = 1 + 1/SNR_t for v; Min-SNR-γ: min(SNR_t, γ)/SNR_t for every target."""
    weights = loss_weights(schedule, min_snr_gamma, prediction) / error_to_eps(schedule, prediction)
    weights[0] = math.nan
    return weights


def run_seed(seed: int, steps_before: int) -> int:
    """The seed of a run's draws: ``seed`` for a new run; for one that continues runs of ``steps_before`` steps in
    all, a seed mixed from both (NumPy's SeedSequence). With ``seed`` alone a continuation's step k had drawn the same
    batch, t and ε as the first run's step k."""
    if steps_before == 0:
        return seed
    return int(np.random.SeedSequence([seed, steps_before]).generate_state(1)[0])


def loss_name(min_snr_gamma: float) -> str:
    """"Min-SNR-γ", or "L_simple" for γ = 0 (also for configs from before Min-SNR existed, which have no γ)."""
    return f"Min-SNR-{min_snr_gamma:g}" if min_snr_gamma > 0 else "L_simple"


def device_name(device: torch.device, threads: int | None = None) -> str:
    """A label for the UI, logs and checkpoints: the GPU's name, or the CPU's model and the threads torch computes
    on (``threads``, by default the calling thread's count), e.g. "CPU (AMD EPYC, 2 threads)" (speeds differ a lot
    between CPUs)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model, threads = cpu_model(), threads or torch.get_num_threads()
    return f"CPU ({model + ', ' if model else ''}{threads} thread{'s' if threads != 1 else ''})"


@cache
def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else platform.processor(); "" when unknown."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return platform.processor()


class Trainer:
    """Trains ``model`` to predict ``config.prediction`` (ε unless told) on ``data`` (a tensor (N, ...) already in
    model coordinates). ``model`` may be a loaded checkpoint's x_0 or v model (`core.prediction.EpsilonView`):
    its network is trained, on its own target, which the config must name. A class-conditional network needs
    ``labels`` (N,) in 0..K−1, one per example; an unconditional one takes none."""

    def __init__(self, model: nn.Module, schedule: NoiseSchedule, data: torch.Tensor, config: TrainConfig,
                 labels: torch.Tensor | None = None) -> None:
        if data.dim() < 2 or len(data) == 0:
            raise ValueError(f"training data must be a non-empty tensor (N, ...), got shape {tuple(data.shape)}")
        if not torch.isfinite(data).all():
            raise ValueError("training data contains NaN or infinite values")
        self.classes = num_classes(model)
        if (labels is None) != (self.classes == 0):
            raise ValueError("a class-conditional model needs one label per example" if self.classes else
                             "the model is not class-conditional: it takes no labels")
        if labels is not None and (labels.shape != (len(data),) or labels.dtype != torch.long
                                   or int(labels.min()) < 0 or int(labels.max()) >= self.classes):
            raise ValueError(f"labels must be a long tensor ({len(data)},) of classes 0..{self.classes - 1}")
        net, predicts = unwrap(model)
        if net is not model and predicts != config.prediction:
            raise ValueError(f"the model predicts {predicts}, but the run was asked to train it on "
                             f"{config.prediction}: set the prediction to {predicts}")
        self.config = config
        self.schedule = schedule
        self.device = resolve_device(config.device)
        self.model = net.to(self.device)
        self.ema_model = copy.deepcopy(self.model).eval().requires_grad_(False) if config.ema_decay > 0 else None
        self._eps_view = as_eps_model(self.ema_model if self.ema_model is not None else self.model, schedule,
                                      config.prediction).to(self.device)
        self.data = data.to(self.device, torch.float32)
        self.labels = labels.to(self.device) if labels is not None else None
        self.sqrt_ab = schedule.alpha_bars.sqrt().to(self.device, torch.float32)  # (T+1,)
        self.sqrt_1m_ab = (1.0 - schedule.alpha_bars).sqrt().to(self.device, torch.float32)  # (T+1,)
        self.loss_weight = loss_weights(schedule, config.min_snr_gamma, config.prediction).to(
            self.device, torch.float32)  # (T+1,)
        self.error_to_eps = error_to_eps(schedule, config.prediction).to(self.device, torch.float32)  # (T+1,)
        self._forward = torch.compile(self.model) if config.compile else self.model
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=True
        )  # fused: one kernel for all parameters (several times faster per step on CPU and GPU)
        self.generator = torch.Generator(device=self.device).manual_seed(run_seed(config.seed, config.steps_before))
        if config.steps_before:  # dropout (the `base` U-Net) draws from torch's global generator: unseeded, two equal
            # continuations had ended 1e-4 apart (a new model's run seeds it with ``seed`` for its weights, and its
            # dropout goes on from there)
            torch.manual_seed(run_seed(config.seed, config.steps_before))
        self.step = 0
        self._stop = threading.Event()
        self._healthy = torch.ones((), device=self.device)  # 1.0 while every step so far was finite, else 0.0
        self._unread: list[torch.Tensor] = []  # the losses of the steps since `read_losses`, still on the device
        self._bucket_sum = torch.zeros(LOSS_BUCKETS, dtype=torch.float64, device=self.device)
        self._bucket_count = torch.zeros(LOSS_BUCKETS, dtype=torch.float64, device=self.device)
        use_bf16 = config.amp == "bf16" or (config.amp == "auto" and self.device.type == "cuda")
        self._autocast = (
            torch.autocast(device_type=self.device.type, dtype=torch.bfloat16) if use_bf16 else nullcontext()
        )

    @property
    def sampling_model(self) -> nn.Module:
        """The ε-predictor to sample from (and to save): the EMA copy when EMA is on, seen through its
        `core.prediction.EpsilonView` when it predicts x_0 or v."""
        return self._eps_view

    def stop(self) -> None:
        """Ask the loop to end after the current step (safe from any thread). A stop ends that run only: `run()`
        again goes on from the step reached."""
        self._stop.set()

    def learning_rate(self, step: int) -> float:
        """Linear warm-up to ``lr`` over warmup_steps, then cosine decay to lr · min_lr_ratio."""
        c = self.config
        if step < c.warmup_steps:
            return c.lr * (step + 1) / c.warmup_steps
        progress = (step - c.warmup_steps) / max(1, c.steps - c.warmup_steps)
        return c.lr * (c.min_lr_ratio + (1 - c.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))

    def training_record(self, model: str, end_reason: str, seconds: float | None) -> dict:
        """What a checkpoint records of this run (its config's "training"): the run's settings, the model's preset
        name, how many classes it was trained on (0: unconditional, its p_uncond unused), the steps done and why the
        run ended, its time in seconds, hardware, torch version, training set size and error by t."""
        return {
            **asdict(self.config), "model": model, "classes": self.classes, "steps_done": self.step,
            "end_reason": end_reason, "seconds": None if seconds is None else round(seconds, 2),
            "hardware": device_name(self.device), "torch": torch.__version__, "data_size": len(self.data),
            "loss_by_t": self.bucket_loss(),
        }

    def bucket_loss(self) -> list[float]:
        """Mean unweighted ‖ε − ε̂‖² per range of t (LOSS_BUCKETS equal ranges over 1..T), in ε units for every
        target, so runs on different targets compare; NaN where nothing was seen."""
        return (self._bucket_sum / self._bucket_count).cpu().tolist()

    def measure_error_by_t(self, per_range: int = 32, seed: int = 0) -> list[float]:
        """The weights' mean unweighted ‖ε − ε̂‖² per range of t as they are now, like `bucket_loss` but without
        training: per_range fresh (x_0, t, ε) in each of the LOSS_BUCKETS ranges, t uniform within its range; NaN
        for an empty range (T < LOSS_BUCKETS). A run that continues a checkpoint compares its bars with this, the
        error it starts from (the checkpoint's own record is the mean over its whole run, early steps included).
        Its own generator (``seed``): the run's random stream is left as it was."""
        generator = torch.Generator(device=self.device).manual_seed(seed)
        ranges = [(first, last) for first, last in loss_bucket_ranges(self.schedule.T) if first <= last]
        t = torch.cat([torch.randint(first, last + 1, (per_range,), generator=generator, device=self.device)
                       for first, last in ranges])  # (R·per_range,), range by range
        x0, labels = self._batch(len(t), generator)
        noise = torch.randn(x0.shape, generator=generator, device=self.device)
        errors = []
        with torch.no_grad(), evaluating(self.model):
            for rows in torch.arange(len(t), device=self.device).split(self.config.batch_size):
                errors.append(self.error_to_eps[t[rows]] * self._target_errors(
                    x0[rows], None if labels is None else labels[rows], t[rows], noise[rows]))
        means = iter(torch.cat(errors).view(len(ranges), per_range).double().mean(dim=1).cpu().tolist())
        return [next(means) if first <= last else float("nan") for first, last in loss_bucket_ranges(self.schedule.T)]

    def _batch(self, size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(x_0 (size, ...) drawn from the data (flipped at random with hflip), their labels (size,) with some
        dropped to ∅, or None for an unconditional network)."""
        index = torch.randint(0, len(self.data), (size,), generator=generator, device=self.device)
        x0 = self.data[index]
        if self.config.hflip:
            x0 = random_hflip(x0, generator)
        if self.labels is None:
            return x0, None
        return x0, drop_labels(self.labels[index], self.config.p_uncond, self.classes, generator)

    def _target_errors(self, x0: torch.Tensor, labels: torch.Tensor | None, t: torch.Tensor,
                       noise: torch.Tensor) -> torch.Tensor:
        """Per example, the mean squared error of the network's prediction of its target (ε, x_0 or v) from
        x_t = √ᾱ_t·x_0 + √(1 − ᾱ_t)·ε at step t: (B,), in the target's units."""
        shape = (len(x0),) + (1,) * (x0.dim() - 1)
        sqrt_ab, sqrt_1m_ab = self.sqrt_ab[t].view(shape), self.sqrt_1m_ab[t].view(shape)  # (B, 1, ...)
        x_t = sqrt_ab * x0 + sqrt_1m_ab * noise
        with self._autocast:
            predicted = self._forward(x_t, t) if labels is None else self._forward(x_t, t, labels)
        target = training_target(self.config.prediction, x0, noise, sqrt_ab, sqrt_1m_ab)
        return (predicted.float() - target).pow(2).flatten(1).mean(dim=1)

    def train_step(self) -> torch.Tensor:
        """One step of Algorithm 1, without waiting for the device. Returns the loss as a 0-dim tensor
        on the device, NaN if the run is no longer healthy (this step or an earlier one had a non-finite
        loss or gradient; such steps change nothing), and keeps it for `read_losses`, which turns a NaN
        into `TrainingDiverged` (a loop of its own reads them now and then: they are kept until read)."""
        x0, labels = self._batch(self.config.batch_size, self.generator)  # (B, ...), (B,) or None
        t = torch.randint(1, self.schedule.T + 1, (len(x0),), generator=self.generator, device=self.device)  # (B,)
        noise = torch.randn(x0.shape, generator=self.generator, device=self.device)
        per_example = self._target_errors(x0, labels, t, noise)  # (B,)
        loss = (self.loss_weight[t] * per_example).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(
            self.model.parameters(), self.config.grad_clip if self.config.grad_clip > 0 else float("inf")
        )
        self._healthy = self._healthy * (torch.isfinite(loss) & torch.isfinite(grad_norm))
        self.optimizer.found_inf = 1.0 - self._healthy  # the fused kernel skips the update when this is 1
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate(self.step)
        self.optimizer.step()
        self._update_ema()
        self._record_buckets(t, self.error_to_eps[t] * per_example.detach())
        loss = torch.where(self._healthy > 0, loss.detach(), torch.nan)
        self._unread.append(loss)
        self.step += 1
        return loss

    def _update_ema(self) -> None:
        """θ_ema ← θ_ema + w·(θ − θ_ema), w = 1 − d_k while the run is healthy and 0 after (no sync)."""
        if self.ema_model is None:
            return
        decay = min(self.config.ema_decay, (1 + self.step) / (10 + self.step))
        with torch.no_grad():
            ema = list(self.ema_model.parameters())
            delta = torch._foreach_sub(list(self.model.parameters()), ema)
            torch._foreach_mul_(delta, (1.0 - decay) * self._healthy)
            torch._foreach_add_(ema, delta)

    def _record_buckets(self, t: torch.Tensor, per_example: torch.Tensor) -> None:
        bucket = (t - 1) * LOSS_BUCKETS // self.schedule.T  # (B,); see `loss_bucket_ranges`
        healthy = self._healthy.double().expand(len(t))  # (B,) of 1, or of 0: a diverged run's steps count for nothing
        self._bucket_sum.index_add_(0, bucket, torch.where(healthy > 0, per_example.double(), 0.0))
        self._bucket_count.index_add_(0, bucket, healthy)

    def read_losses(self) -> list[float]:
        """The losses of the `train_step`s since the last read (one host-device sync); raises
        `TrainingDiverged` at the first NaN, and sets ``step`` back to the number of steps whose updates
        were applied. `run` calls it once per event; a loop of its own around `train_step` can too, and
        whoever ends a run some other way (an exception, Ctrl-C) should, before it records ``step``."""
        if not self._unread:
            return []
        values = torch.stack(self._unread).tolist()
        self._unread.clear()
        first_bad = next((i for i, v in enumerate(values) if not math.isfinite(v)), None)
        if first_bad is not None:
            self.step = self.step - len(values) + first_bad
            raise TrainingDiverged(
                f"training diverged at step {self.step + 1}: the loss or its gradients became NaN or infinite "
                "(try a lower learning rate)",
                losses=values[:first_bad],
            )
        return values

    def preview_chain(self, full_chain: bool = False) -> dict[str, object]:
        """The sampler of a preview, as `core.sampler.sample` options (method, steps, spacing): the quick chain
        of the config, or with ``full_chain`` DDPM over all T steps (the reference; slower), over at most
        `FULL_CHAIN_STEPS` of them spaced evenly in log-SNR for a longer chain (T = 10,000 had taken a minute)."""
        if full_chain:
            if self.schedule.T > FULL_CHAIN_STEPS:
                return {"method": "ddpm", "steps": FULL_CHAIN_STEPS, "spacing": "log_snr"}
            return {"method": "ddpm", "steps": self.schedule.T, "spacing": "uniform"}
        c = self.config
        return {"method": c.preview_method, "steps": min(c.preview_steps, self.schedule.T), "spacing": c.preview_spacing}

    def preview_labels(self, n: int | None = None) -> torch.Tensor | None:
        """The class each of n preview samples is drawn from: i mod K for a class-conditional model
        (`core.conditioning.cycling_labels`), None for an unconditional one."""
        classes = num_classes(self.model)
        return cycling_labels(n or self.config.preview_n, classes) if classes else None

    def preview(self, n: int | None = None, *, seed: int | None = None, full_chain: bool = False) -> torch.Tensor:
        """n samples (CPU) from the sampling weights, drawn by `preview_chain`; from a class-conditional model,
        sample i of class i mod K (`preview_labels`)."""
        n = n or self.config.preview_n
        generator = torch.Generator(device=self.device).manual_seed(self.config.seed + 1 if seed is None else seed)
        x_T = torch.randn((n,) + tuple(self.data.shape[1:]), generator=generator, device=self.device)
        model = self.sampling_model
        labels = self.preview_labels(n)
        sampled = model if labels is None else ClassifierFreeGuidance(model, labels.to(self.device), 1.0)
        with evaluating(model):
            x0 = sample(sampled, self.schedule, x_T, **self.preview_chain(full_chain), clip_x0=self.config.clip_x0,
                        generator=generator)
        return x0.float().cpu()

    def run(self) -> Iterator[TrainEvent]:
        """Train until ``steps`` are done, `stop()` is called or the time limit passes; yield events.

        The last event has kind "end". A diverging loss raises `TrainingDiverged` (weights intact). The model is
        left in eval mode, and a stop request spent, however the loop ends (a caller's break too).
        """
        c = self.config
        self.model.train()
        start = time.perf_counter()
        loss = float("nan")
        reason = "finished"

        def event(kind: Literal["step", "preview", "end"], **extra: object) -> TrainEvent:
            nonlocal loss
            losses = self.read_losses()
            loss = losses[-1] if losses else loss
            elapsed = time.perf_counter() - start
            done = self.step * c.batch_size
            return TrainEvent(
                kind=kind, step=self.step, total_steps=c.steps, loss=loss, lr=self.learning_rate(max(0, self.step - 1)),
                elapsed=elapsed, samples_per_s=done / elapsed if elapsed > 0 else 0.0, losses=losses,
                bucket_loss=self.bucket_loss(), **extra,  # type: ignore[arg-type]
            )

        try:
            while self.step < c.steps:
                if self._stop.is_set():
                    reason = "stopped"
                    break
                if c.max_seconds is not None and time.perf_counter() - start >= c.max_seconds:
                    reason = "time limit"
                    break
                self.train_step()
                if self.step % c.log_every == 0 or self.step == c.steps:
                    yield event("step")
                if c.preview_every and self.step % c.preview_every == 0 and self.step < c.steps:
                    yield event("preview", preview=self.preview())
        finally:  # however the loop ends (a caller's break, a divergence too)
            self.model.eval()
            self._stop.clear()  # heard: a stop asked before the run began still ends it, and run() again goes on
        yield event("end", reason=reason)
