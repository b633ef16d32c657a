"""Reverse tab: run the reverse chain of a trained model and play it in the browser.

Sampling is `core.sampler.iter_sample` (DDPM, Ho et al. 2020 Algorithm 2, with σ² = β̃ or β;
or DDIM, Song et al. 2021, with η and a step count; a chain of fewer than T steps spaced evenly in t
or in log-SNR). The chain is computed once per Generate;
about `DEFAULT_FRAMES` evenly spaced states (the first, x_T, and the last, x_0, included) are
rendered to small frames on one PNG sprite sheet and played by `app.player` in the browser (a
canvas driven by requestAnimationFrame), so playback is smooth whatever the server. The same frames download, when
asked, as a GIF (and MP4 when imageio-ffmpeg is there: `app.movie_files`).

Two teaching options: the score field of 2D models, arrows on a grid at each frame's t (`core.prediction.denoising_field`);
and the ideal denoiser of a few training examples (points or images) in place of the network
(`ideal_checkpoint`, `core.ideal`), whose samples can only be copies of those examples. For every model, the
chain can start from training examples noised to t₀ instead of from pure noise (SDEdit, Meng et al. 2022;
`starting_examples`): how much of an example survives the noise of step t₀. The panels below the tab read its
controls (`ReverseControls`): one step taken apart (`app.step_anatomy`), DDIM's map between noise and data
(`app.noise_map`), inpainting (`app.inpaint_panel`, which can play its chain here), classifier guidance
(`app.guidance_panel`), the number of sampling steps (`app.steps_panel`) and the variational bound (`app.bound_panel`).

Checkpoints: the shipped ones under checkpoints/ (env DDPM_CHECKPOINTS_DIR overrides), listed by
name, plus those this browser trained or uploaded (the Train tab's `gr.State` of paths, filled when
the page loads). A request for any other path is refused. Models load lazily on first use and are kept
in a small LRU cache keyed by path (they are read-only while sampling, so users share them): `app.checkpoint_access`.
"""

from __future__ import annotations

import html
import itertools
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import torch

from app import accessibility, figures, formulas, images, kept_chain, movie_files, player, runs
from app.controls import (
    MAX_SEED, SPACING_CHOICES, VIEWS_MIN_WIDTH, focus_js, number_between, scroll_into_view_js, show_when, shown_js,
    whole_number,
)
from app.as_written import in_markdown
from app.errors import InputError
from app.own_drawing import DRAWING_BRUSH, DRAWING_CANVAS, drawing_starts
from app.own_points import box_reader, drawing_box, read_box, select_brush_js
from app.images import image_pixels
from app.checkpoint_access import (
    trained_paths, checkpoint_choices, default_checkpoint, describe, kept_for_checkpoint, load, session_label,
)
from app.runs import display_name
from core.checkpoints import (
    Checkpoint, CheckpointError, model_classes, read_config,
)
from core.data import DataInfo
from core.datasets import training_examples
from core.classifier import load_classifier, shipped_classifiers
from core.ideal import IdealDenoiser
from core.inpaint import iter_inpaint
from core.evaluate import real_scores
from core.metrics import copy_fraction, return_ratio, sliced_wasserstein_ratio
from core.prediction import denoising_field
from core.sampler import (
    SPACINGS, Spacing, chain_timesteps, describe_steps, initial_noise, iter_sample, number_of_steps,
)

DEFAULT_FRAMES = 80
REFERENCE_POINTS = 2000  # training points drawn (grey) beneath a 2D chain
IDEAL_POINTS = 200  # training points of the ideal denoiser: few enough that its copies show as dots
IDEAL_IMAGES = 64  # training images of the ideal denoiser (MNIST: all the bundled digits)
COPY_RADIUS = 0.01  # a 2D sample this close to a training point is a copy (model units: data of unit spread)
IMAGE_COPY_RMS = 0.05  # an image this close (root-mean-square over pixels in [−1, 1]) to a training image is a copy
MAX_COPY_CHECK = 500  # copies are counted for training sets up to this size (denser sets are closer than the radius)
MIN_FRAMES, MAX_FRAMES = 2, 150
DEFAULT_START_SHARE = 0.4  # a chain joined at t₀ starts by default at t₀ = 0.4·T
SWEEP_SHARES = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)  # the t₀ of a survival sweep, as shares of T
MAX_SWEEP_SAMPLES = {"2d": 300, "image": 16}  # examples per chain of a sweep (it runs one chain per t₀)
MAX_CURVES = 6  # sweeps kept on the plot, to compare models and samplers
MAX_SAMPLES = {"2d": 5000, "image": 64}
PICTURE_VALUES = 3 * 32 * 32  # the tab's counts of pictures are set for pictures of up to this many values; of larger
# ones a job takes fewer (`picture_cap`): an uploaded U-Net at 256 × 256 × 3 takes about 150 MB a sample, and 64 had
# asked for 10 GB at once
DEFAULT_SAMPLES = {"2d": 1500, "image": 16}
GIF_FPS = 20
DIVERGED = "The model produced NaN or infinite values (was its training diverging?)."
SAMPLERS = [
    ("DDPM, σ² = β̃ (posterior variance, 'small')", "ddpm_small"),
    ("DDPM, σ² = β ('large')", "ddpm_large"),
    ("DDIM (η, steps)", "ddim"),
]
SAMPLER_VALUES = {value for _, value in SAMPLERS}


# ----- sampling ----------------------------------------------------------------------------------


@dataclass
class Chain:
    """A sampled reverse chain, reduced to the frames to show."""

    kind: str  # "2d" or "image"
    state_ts: list[int]  # t of every state x_T … x_0 of the chain (length S + 1, last 0)
    frame_states: list[int]  # which states are frames (indices into state_ts), first 0, last S
    x: list[np.ndarray] = field(default_factory=list)  # per frame: x_t (2D: (N, 2) float; images: uint8 (B, H, W[, 3]))
    x0: list[np.ndarray] = field(default_factory=list)  # per frame: predicted x̂_0 (same layout)
    reference: np.ndarray | None = None  # 2D: the training data (M, 2) in model coordinates, when it can be drawn
    fields: list[np.ndarray | None] | None = None  # 2D, when asked: per frame, `denoising_field` at player.field_grid()
    samples: torch.Tensor | None = None  # the chain's end x_0 (N, ...), float32 on the CPU, in model coordinates
    starts: torch.Tensor | None = None  # joined at t₀ or inpainted: the examples (N, ...) it started from (CPU)
    known: torch.Tensor | None = None  # inpainted: the bool mask of the examples' kept entries (CPU, broadcastable)
    known_label: str = ""  # inpainted: the kept part in words
    drawn: bool = False  # joined at t₀ from the user's drawing (`app.own_drawing`), not training examples
    resample: int = 1  # inpainted: rounds per step (`core.inpaint`)
    jump: int = 1  # inpainted: steps each round goes back
    seconds: float = 0.0
    seed: int = 0  # of its noise, and of the draws its samples are scored against (`data_distance`), as the CLI's
    guided_to: str = ""  # guided (`app.guidance_panel`): the class; its samples are not scored against all the data

    @property
    def frame_ts(self) -> list[int]:
        return [self.state_ts[i] for i in self.frame_states]


def frame_indices(n_states: int, n_frames: int) -> list[int]:
    """About n_frames evenly spaced indices in 0..n_states−1, first and last included, no repeats."""
    n_frames = max(2, min(n_frames, n_states))
    return sorted({int(round(v)) for v in np.linspace(0, n_states - 1, n_frames)})


def reference_points(checkpoint: Checkpoint) -> np.ndarray | None:
    """The training data of a 2D checkpoint, to draw beneath its chain: `REFERENCE_POINTS` points of its toy or of
    the points stored with it (`Checkpoint.data_sampler`); None for images and for older checkpoints of data read
    from a file, which the server may not have."""
    draw = checkpoint.data_sampler()
    return None if draw is None else draw(REFERENCE_POINTS, 0).numpy()


def model_device(checkpoint: Checkpoint) -> torch.device:
    """Where the checkpoint's model lives (its parameters', or for a model without any, its buffers')."""
    return next(itertools.chain(checkpoint.model.parameters(), checkpoint.model.buffers())).device


def examples_here(checkpoint: Checkpoint, n: int, seed: int) -> torch.Tensor:
    """n examples of the checkpoint's training data, in model coordinates (`core.datasets.training_examples`: 2D
    points drawn with ``seed``; the first n images of its data set), MNIST's from the bundled digits, which need
    no data directory. ValueError, with the reason, when this server cannot have them."""
    if checkpoint.data.kind == "image" and checkpoint.data.name == "mnist":
        return images.mnist_digits(n)
    return training_examples(checkpoint.data, checkpoint.points, n, seed=seed)


def examples_for(checkpoint: Checkpoint, n: int, seed: int, purpose: str) -> torch.Tensor:
    """`examples_here`, or gr.Error: "<purpose> needs training examples, and this server has none: <why>."."""
    try:
        return examples_here(checkpoint, n, seed)
    except ValueError as err:
        raise InputError(f"{purpose} needs training examples, and this server has none: {str(err).rstrip('.')}.") from None


def ideal_checkpoint(checkpoint: Checkpoint) -> Checkpoint:
    """The checkpoint with its network replaced by the ideal denoiser (`core.ideal.IdealDenoiser`) of a few of
    its training examples (`examples_here` with seed 0: `IDEAL_POINTS` 2D points, or `IDEAL_IMAGES` images),
    under the same schedule. Its data are those examples: a 2D chain draws them in grey and measures its samples
    against them; copies of them are counted. gr.Error when the examples cannot be had here."""
    info = checkpoint.data
    n = IDEAL_POINTS if info.kind == "2d" else IDEAL_IMAGES
    examples = examples_for(checkpoint, n, 0, "The ideal denoiser")
    data = replace(info, source=f"{n} training {'points' if info.kind == '2d' else 'images'} of {info.name}")
    ideal = IdealDenoiser(examples, checkpoint.schedule).to(model_device(checkpoint))
    ideal.register_forward_pre_hook(runs.check_sampling_time)  # a job's time limit, as on the loaded networks
    return replace(checkpoint, model=ideal, data=data, points=examples)


def starting_examples(checkpoint: Checkpoint, n: int, seed: int) -> torch.Tensor:
    """n examples of the checkpoint's training data (`examples_here`) for a chain joined at t₀; gr.Error when this
    server cannot have them."""
    try:
        return examples_here(checkpoint, n, seed)
    except ValueError as err:
        raise InputError(f"This model cannot start from its training data here: {str(err).rstrip('.')}. Untick “start from training "
                       "data” to sample it from pure noise.") from None


def sample_chain(
    checkpoint: Checkpoint, *, method: str, variance: str, eta: float, steps: int | None, n: int, seed: int,
    n_frames: int = DEFAULT_FRAMES, spacing: str = "uniform", score_field: bool = False,
    starts: torch.Tensor | None = None, start_t: int | None = None, known: torch.Tensor | None = None,
    known_label: str = "", resample: int = 1, jump: int = 1, progress: Any = None,
) -> Chain:
    """Run the whole chain once (inference mode) and keep the frames; with ``score_field`` (2D only), also the
    model's score field (`denoising_field` on `player.field_grid`) at each frame's t; none at t = 0.
    With ``starts`` (n examples) and ``start_t``, the chain joins at t₀ = start_t from the examples noised by
    q(x_t₀ | x_0), x_t₀ = √ᾱ_t₀·x_0 + √(1 − ᾱ_t₀)·ε, with the seed's ε in place of x_T. With ``starts`` and
    ``known`` (a bool mask, `core.inpaint`), it inpaints them instead: their ``known`` entries are kept, the rest
    drawn, with ``resample`` rounds per step, each going back ``jump`` steps; ``known_label`` says what is kept,
    for the stats."""
    schedule, info = checkpoint.schedule, checkpoint.data
    if starts is not None and len(starts) != n:
        raise ValueError(f"a chain from examples needs {n} of them, got {len(starts)}")
    if start_t is not None and known is not None:
        raise ValueError("a chain from examples joins at t₀ or inpaints them, not both")
    if (starts is None) != (start_t is None and known is None):
        raise ValueError(f"a chain from examples needs both its {n} examples and t₀ (or the mask of their kept part)")
    ts = chain_timesteps(schedule, steps, method, spacing, start_t)  # type: ignore[arg-type]
    n_states = len(ts) + 1
    keep = frame_indices(n_states, n_frames)
    keep_set = set(keep)
    device = model_device(checkpoint)
    chain = Chain(kind=info.kind, state_ts=ts + [0], frame_states=keep, reference=reference_points(checkpoint),
                  seed=seed)
    grid = None
    if score_field and info.kind == "2d":
        grid = torch.as_tensor(player.field_grid(), dtype=torch.float32, device=device)
        chain.fields = []
    x_T, generator = initial_noise((n, *info.shape), seed=seed, device=device)
    options = dict(method=method, steps=steps, eta=eta, variance=variance, spacing=spacing, clip_x0=info.clip_x0,
                   generator=generator)
    if known is not None:
        chain.starts, chain.known, chain.known_label = starts.float().cpu(), known.cpu(), known_label
        chain.resample, chain.jump = resample, jump
        options["generator"] = torch.Generator(device=device).manual_seed(seed)  # as `app.inpaint_panel` seeds it
        records = iter_inpaint(checkpoint.model, schedule, starts.to(device=device, dtype=x_T.dtype), known.to(device),
                               resample=resample, jump=jump, **options)
    else:
        if starts is not None:
            chain.starts = starts.float().cpu()
            x_T = schedule.q_sample(starts.to(device=device, dtype=x_T.dtype), start_t, x_T)
        records = iter_sample(checkpoint.model, schedule, x_T, start_t=start_t, **options)
    convert = (lambda v: v.float().cpu().numpy()) if info.kind == "2d" else image_pixels
    start = time.perf_counter()
    x_last = x_T
    report_every = max(1, len(ts) // 50)
    with torch.inference_mode():
        for record in records:
            j = record.index  # this record's x_t is state j
            if j in keep_set:
                chain.x.append(convert(record.x_t))
                chain.x0.append(convert(record.x0_pred))
                if grid is not None:
                    chain.fields.append(denoising_field(checkpoint.model, schedule, grid, record.t).float().cpu().numpy())
            x_last = record.x_prev
            if progress is not None and (j % report_every == 0):
                progress((j + 1, len(ts)), desc="Sampling the reverse chain", unit="steps")
        if not torch.isfinite(x_last).all():
            raise InputError(DIVERGED)
        chain.x.append(convert(x_last))  # the last state, x_0: its own "prediction"
        chain.x0.append(convert(x_last))
        if grid is not None:
            chain.fields.append(None)
        chain.samples = x_last.float().cpu()
    chain.seconds = time.perf_counter() - start
    return chain


START_CAPTION = "x₀, before noising"
DRAWN_CAPTION = "x₀: your drawing, before noising"
KNOWN_CAPTION = "x₀: kept (hidden in blue)"


def grid_columns(n: int) -> int:
    """Images per row of an image chain's grids: a square, or nearly."""
    return max(1, math.ceil(math.sqrt(n)))


def render(chain: Chain) -> tuple[list, list[str], int, list[tuple[int, int]]]:
    """(browser frames, captions, display width, panels) for the player: ``panels`` are the (x, width) of each
    panel in a frame, one per caption (`player.player_html`)."""
    starts = None if chain.starts is None else chain.starts.numpy()
    if chain.kind == "2d":
        frames = player.render_points_frames(chain.x, chain.x0, chain.frame_ts, chain.reference, chain.fields, starts)
        pinned = player.pinned_points(len(chain.x[0]))
        arrows = " · arrows: x → √ᾱ_t·x̂₀(x)" if chain.fields else ""
        rings = ("" if starts is None else "; rings: their x₀ before noising" if chain.known is None
                 else "; rings: the examples they complete")
        trail = formulas.count_text(min(player.TRAIL_FRAMES, len(frames) - 1), "frame")  # 8 of a 2-frame chain had been said
        pins = formulas.count_text(pinned, "pinned point")
        captions = [f"x_t (t = {{t}}){arrows} · lines: {pins} over the last {trail}",
                    f"predicted x̂₀ (dots: the {pins}{rings})"]
        return frames, captions, frames[0].width, player.points_panels()
    if chain.kind == "image":
        start = None
        if chain.known is not None:
            start = image_pixels(images.paint_hidden(chain.starts, chain.known))
        elif starts is not None:
            start = image_pixels(chain.starts)
        nrow = grid_columns(len(chain.x[0]))
        frames = player.render_image_frames(chain.x, chain.x0, nrow, start)
        captions = start_captions(chain) + ["x_t (t = {t})", "predicted x̂₀"]
        return frames, captions, 760, player.image_panels(chain.x[0], nrow, len(captions))
    raise ValueError(f"unknown data kind {chain.kind!r}")


def start_captions(chain: Chain) -> list[str]:
    """The caption of an image chain's grid of the examples it started from, when it has one."""
    if chain.starts is None:
        return []
    return [KNOWN_CAPTION if chain.known is not None else DRAWN_CAPTION if chain.drawn else START_CAPTION]


def data_distance(chain: Chain, checkpoint: Checkpoint) -> float | None:
    """How close the chain's samples x_0 came to the training data: the sliced-Wasserstein ratio of
    `core.metrics` (1: as close as another draw of the data); None where the data cannot be drawn."""
    draw = checkpoint.data_sampler()
    return None if draw is None else sliced_wasserstein_ratio(chain.samples, draw, seed=chain.seed)


def data_own_range(checkpoint: Checkpoint, n: int, seed: int) -> list[float]:
    """The scores of `core.evaluate.REAL_DRAWS` draws of n examples of the data itself, scored as a chain's samples
    with ``seed`` are (`core.evaluate.real_scores`: the SW ratio for 2D data, the FID ratio for images): the
    measure's noise at this n, against which a chain's score reads (moons at n = 1,000: 0.45–1.49). Kept for the
    checkpoint, n and seed (`checkpoint_access.kept_for_checkpoint`; 0.7 s for 1,500 points on 2 CPU cores):
    Generate again, or the steps panel at the same n, costs nothing. [] for 2D data that cannot be drawn; ValueError
    or OSError where images are missing."""
    if checkpoint.data.kind == "2d" and checkpoint.data_sampler() is None:
        return []
    return kept_for_checkpoint(checkpoint, "data's own SW ratios", lambda: real_scores(checkpoint, n=n, seed=seed)[1],
                               checkpoint.data.source, n, seed)


def stats_markdown(chain: Chain, checkpoint: Checkpoint, method_label: str, n: int, render_s: float, spacing: Spacing) -> str:
    ts = chain.frame_ts
    steps = len(chain.state_ts) - 1
    T = checkpoint.schedule.T
    listing = ", ".join(str(t) for t in ts)
    joined = chain.starts is not None and chain.known is None
    chain_words = f"{formulas.steps_text(steps)} from t₀ = {ts[0]}" if joined else describe_steps(steps, T, spacing)
    return (
        f"{runs.bold_name(checkpoint.path)} · {method_label}, {chain_words} · "
        f"{formulas.count_text(n, 'sample')}, seed {chain.seed} · sampled in {formulas.seconds_text(chain.seconds)}, {len(ts)} frames rendered in "
        f"{formulas.seconds_text(render_s)}."
        f"{_start_sentence(chain, checkpoint)}"
        f"{_guided_sentence(chain) if chain.guided_to else _distance_sentence(chain, checkpoint)}"
        f"{_copies_sentence(chain, checkpoint)} "
        f"{classifier_reading(chain, checkpoint.data)}\n\n"
        f"<details><summary>t of each frame (t = {ts[0]} … {ts[-1]})</summary>{listing}</details>"
    )


@dataclass(frozen=True)
class ClassifierReading:
    """What a data set's shipped classifier (`core.classifier`) reads in image samples."""

    dataset: str
    accuracy: float  # the classifier's held-out accuracy
    labels: list[str]  # the class it reads in each sample, in the samples' order
    n_classes: int

    @property
    def present(self) -> int:
        return len(set(self.labels))

    def agreement(self, other: ClassifierReading) -> int:
        """How many samples the two readings (of as many samples, in one order) read as the same class."""
        return sum(a == b for a, b in zip(self.labels, other.labels))


def read_samples(samples: torch.Tensor, dataset: str) -> ClassifierReading | None:
    """The shipped classifier's reading of image samples (N, C, H, W) in [−1, 1]; None when no classifier is
    shipped for ``dataset`` or the samples are not of its shape."""
    if dataset not in shipped_classifiers():
        return None
    classifier = load_classifier(dataset)
    config = classifier.card.model
    if samples.dim() != 4 or tuple(samples.shape[1:]) != (config.in_channels, config.image_size, config.image_size):
        return None
    names = classifier.card.class_names
    return ClassifierReading(dataset=dataset, accuracy=classifier.card.heldout_accuracy,
                             labels=[names[k] for k in classifier.predict(samples).tolist()], n_classes=len(names))


def classifier_reading(chain: Chain, info: DataInfo) -> str:
    """The reading of the chain's samples as a sentence, in the order of the grid (rows split by "·"), with the
    number of classes present; "" without a classifier for the data. (No confidence: the classifier reads pure
    noise as one class with over 90 % probability.)"""
    reading = read_samples(chain.samples, info.name) if chain.kind == "image" else None
    if reading is None:
        return ""
    nrow = grid_columns(len(reading.labels))
    rows = [" ".join(reading.labels[i : i + nrow]) for i in range(0, len(reading.labels), nrow)]
    return (
        f"The shipped {reading.dataset.upper()} classifier (held-out accuracy {reading.accuracy:.1%}) reads "
        f"the samples as **{' · '.join(rows)}** (row by row): {reading.present} of its {reading.n_classes} classes."
    )


def kept_classes(chain: Chain, info: DataInfo, before: ClassifierReading | None = None) -> tuple[int, int] | None:
    """For a chain from examples (joined at t₀ or inpainted) on image data with a shipped classifier: (samples read
    as the same class as the example they started from, samples); None otherwise. ``before``: the reading of the examples, when known."""
    if chain.starts is None or chain.kind != "image":
        return None
    before = before or read_samples(chain.starts, info.name)
    after = read_samples(chain.samples, info.name)
    if before is None or after is None:
        return None
    return before.agreement(after), len(after.labels)


def _start_sentence(chain: Chain, checkpoint: Checkpoint) -> str:
    """For a chain joined at t₀ or inpainted: where it started, and how much of its examples came back."""
    if chain.starts is None:
        return ""
    where = "the rings mark those of the pinned points" if chain.kind == "2d" else "the left grid"
    if chain.known is not None:
        how = "the replacement method" if chain.resample == 1 else f"{chain.resample} resampling rounds per step"
        if chain.resample > 1 and chain.jump > 1:
            how += f", each going back {chain.jump} steps"
        sentence = (f" **Inpainted**: {len(chain.starts)} training examples ({where}), of which {chain.known_label} "
                    f"is kept in every x_t (noised to its t) and the rest drawn, with {how}.")
    else:
        t0 = chain.state_ts[0]
        alpha_bar = float(checkpoint.schedule.alpha_bars[t0])
        n = len(chain.starts)
        if not chain.drawn:
            source = f"{n:,} training examples ({where})"
        elif chain.kind == "image":
            source = f"your drawing ({where}: {n:,} {'copy' if n == 1 else 'copies'} of it, each noised with its own ε)"
        else:
            source = f"your drawing ({n:,} points spread over its strokes; {where})"
        sentence = (f" Joined at **t₀ = {t0}** (ᾱ = {formulas.number(alpha_bar)}: √ᾱ = {math.sqrt(alpha_bar):.2f} "
                    f"of each example left, noise of std {math.sqrt(1 - alpha_bar):.2f} added) from {source}, not "
                    "from pure noise.")
    if chain.drawn and chain.kind == "image":  # copies of one picture: no return ratio (every copy is its own example)
        return sentence + _drawing_read(chain, checkpoint.data)
    if len(chain.starts) >= 2:
        try:
            ratio = return_ratio(chain.samples, chain.starts)
            sentence += (f" Return ratio **{ratio:.2f}** (each sample's distance to its own example over that to the "
                         "others': 0, all came back; 1, nothing of them is left).")
        except ValueError as err:  # a one-point set
            sentence += f" {err}"
    kept = kept_classes(chain, checkpoint.data)
    if kept is not None:
        sentence += f" The shipped classifier reads the same class as in its example in **{kept[0]} of {kept[1]}** samples."
    return sentence


def _drawing_read(chain: Chain, info: DataInfo) -> str:
    """For a chain from the user's drawing, on data with a shipped classifier: the class it reads in the drawing, and
    how many samples it reads as that class too."""
    drawing, samples = read_samples(chain.starts[:1], info.name), read_samples(chain.samples, info.name)
    if drawing is None or samples is None:
        return ""
    read = drawing.labels[0]
    return (f" The shipped classifier reads your drawing as **{read}**, and **{samples.labels.count(read)} of "
            f"{len(samples.labels)}** samples as {read} too.")


def _copies_sentence(chain: Chain, checkpoint: Checkpoint) -> str:
    """For a model of a small set of given examples (at most `MAX_COPY_CHECK`: a 2D model's points, the ideal
    denoiser's examples): how many samples copy one."""
    points = checkpoint.points
    if points is None or len(points) > MAX_COPY_CHECK:
        return ""
    if chain.kind == "2d":
        share = copy_fraction(chain.samples, points, COPY_RADIUS)
        if len(points) == 1:  # no ratio shown above, and "1 of the 1 training points" had been said
            return f" **{share:.0%}** of the samples are copies: within {COPY_RADIUS:g} of the training point (grey)."
        return (f" **{share:.0%}** of the samples are copies: within {COPY_RADIUS:g} of one of the {len(points):,} "
                "training points (grey). The ratio above cannot tell copies from new points.")
    radius = IMAGE_COPY_RMS * math.sqrt(points[0].numel())  # an RMS difference over the pixels, as a Euclidean radius
    share = copy_fraction(chain.samples.flatten(1), points.flatten(1).cpu(), radius)
    return (f" **{share:.0%}** of the samples are copies of one of the {len(points)} training images (within a "
            f"root-mean-square difference of {IMAGE_COPY_RMS:g} per pixel).")


def _guided_sentence(chain: Chain) -> str:
    """For a guided chain, in place of its distance to the data: it read 11.34 for the 8 Gaussians steered to one of
    them, which a student took for a broken model."""
    if chain.kind != "2d":
        return ""
    return (f" The samples are not scored against the training data: guided towards {html.escape(chain.guided_to)}, "
            "they leave the rest of it out by design (the guidance panel counts how many land on the class).")


def _distance_sentence(chain: Chain, checkpoint: Checkpoint) -> str:
    """The chain's SW ratio (`data_distance`), read against the data's own range at its size (`data_own_range`): a
    score alone (1.56 here, 1.02 after training, 0.92 in the steps panel, all for one model) read as bad or good
    by chance."""
    ratio = data_distance(chain, checkpoint)
    if ratio is None:
        return ""
    if math.isnan(ratio):
        return (" The sliced-Wasserstein ratio to the training data is not defined: the data is a single point, so "
                "two draws of it do not differ at all, and there is no scale to measure the samples by.")
    n = len(chain.samples)
    real = data_own_range(checkpoint, n, chain.seed)
    verdict = ""
    if real and math.isfinite(ratio):
        verdict = (" — inside the data's own range: as good as the data can tell" if ratio <= max(real) else
                   " — above the data's own range")
    own = (f" The data itself, {len(real)} fresh draws of {formulas.count_text(n, 'point')} scored the same way, scores "
           f"**{min(real):.2f}–{max(real):.2f}**: inside that range, samples are as good as this measure can tell at this "
           "size." if real else "")
    return (f" Sliced-Wasserstein ratio of the samples to the training data: **{ratio:.2f}**{verdict} (1: as close "
            f"as another draw of the data).{own} Scores move from one set of samples to the next, by more than that "
            "range at times: one seed cannot settle whether one sampler beats another; compare them over a few seeds.")


@dataclass(frozen=True)
class SamplerChoice:
    """The checked sampler controls of the tab."""

    method: str  # "ddpm" or "ddim"
    variance: str  # DDPM's σ²: "small" or "large"
    eta: float  # DDIM's η (0 for DDPM)
    steps: int | None  # None: all T for DDPM, 50 for DDIM
    spacing: Spacing
    label: str  # in words, for the stats


def sampler_choice(sampler, eta, steps, spacing, T: int) -> SamplerChoice:
    """The sampler controls, checked (gr.Error naming the control at fault)."""
    if sampler not in SAMPLER_VALUES:
        raise InputError(f"Unknown sampler {sampler!r}; choose one from the list.")
    if spacing not in SPACINGS:
        raise InputError(f"Unknown step spacing {spacing!r}; choose one from the list.")
    method = "ddim" if sampler == "ddim" else "ddpm"
    steps_value = None if steps is None or steps == "" or steps == 0 else whole_number(steps, "Sampling steps", 1, T)
    if method == "ddim":
        eta = number_between(eta, "η", 0.0, 1.0)
    else:
        eta = 0.0
    label = f"DDIM, η = {eta:g}" if method == "ddim" else {v: k for k, v in SAMPLERS}[sampler]
    return SamplerChoice(method, "large" if sampler == "ddpm_large" else "small", eta, steps_value, spacing, label)


def chosen_checkpoint(path, trained, ideal) -> Checkpoint:
    """The chosen checkpoint, with the ideal denoiser in place of its network when asked."""
    checkpoint = load(path, trained)
    return ideal_checkpoint(checkpoint) if ideal else checkpoint


def model_and_sampler(path, trained, ideal, sampler, eta, steps, spacing) -> tuple[Checkpoint, SamplerChoice]:
    """The chosen checkpoint (`chosen_checkpoint`) and the checked sampler controls."""
    checkpoint = chosen_checkpoint(path, trained, ideal)
    return checkpoint, sampler_choice(sampler, eta, steps, spacing, checkpoint.schedule.T)


def picture_cap(data: DataInfo, cap: int) -> int:
    """``cap`` examples of a job, or for pictures of more than `PICTURE_VALUES` values as many as hold the values of
    ``cap`` such pictures (at least one): 16 at 64 × 64 × 3 for 64, 1 at 256 × 256 × 3."""
    values = math.prod(data.shape)
    return cap if values <= PICTURE_VALUES else max(1, cap * PICTURE_VALUES // values)


def sample_count(n, checkpoint: Checkpoint, least: int, caps: dict[str, int]) -> int:
    """The number of examples a panel takes: ``n`` checked as Generate's count is (``least`` … `MAX_SAMPLES`), then
    at most the panel's cap for the model's kind (``caps``), fewer of large pictures (`picture_cap`)."""
    kind = checkpoint.data.kind
    return min(whole_number(n, "Samples", least, MAX_SAMPLES[kind]), picture_cap(checkpoint.data, caps[kind]))


def samples_bound(data: DataInfo) -> tuple[str, int, int]:
    """(the name, least and most) of a Generate's number of samples: `MAX_SAMPLES`, fewer of large pictures
    (`picture_cap`), then named with their size."""
    most = picture_cap(data, MAX_SAMPLES[data.kind])
    if most == MAX_SAMPLES[data.kind]:
        return "Samples", 1, most
    channels, height, width = data.shape
    return f"Samples of {width} × {height} pictures", 1, most


def generate(request: gr.Request, path, sampler, eta, steps, n, seed, n_frames, spacing, score_field, ideal, trained,
             from_data=False, start_t=None, drawing=None, progress=gr.Progress()):
    """Generate: (player HTML, stats Markdown, the `movie_files.Movie`, sprite sheet path). With ``from_data``,
    the chain joins at t₀ = ``start_t`` from n training examples noised to t₀ (`starting_examples`), or from the
    user's ``drawing`` (a Sketchpad value) where it holds ink (`own_drawing.drawing_starts`)."""
    checkpoint, choice = model_and_sampler(path, trained, ideal, sampler, eta, steps, spacing)
    kind, T = checkpoint.data.kind, checkpoint.schedule.T
    n = whole_number(n, *samples_bound(checkpoint.data))
    seed = whole_number(seed, "Seed", 0, MAX_SEED)
    n_frames = whole_number(n_frames, "Frames", MIN_FRAMES, MAX_FRAMES)
    starts, t0, drawn = None, None, None
    if from_data:
        t0 = whole_number(start_t, "t₀, the step the chain starts from", 1, T)
        drawn = drawing_starts(drawing, checkpoint.data, n, seed)
        starts = starting_examples(checkpoint, n, seed) if drawn is None else drawn
    if score_field and kind != "2d":
        gr.Warning("The score field is drawn for 2D models only: this chain of images plays without it.")
    try:
        chain = sample_chain(checkpoint, method=choice.method, variance=choice.variance, eta=choice.eta,
                             steps=choice.steps, n=n, seed=seed, n_frames=n_frames, spacing=choice.spacing,
                             score_field=bool(score_field), starts=starts, start_t=t0, progress=progress)
    except gr.Error:  # a ValueError too, already in words for the user (str() would add quotes)
        raise
    except ValueError as err:
        raise InputError(str(err)) from None
    chain.drawn = drawn is not None
    return show_chain(request, chain, checkpoint, choice, ideal, progress=progress)


def show_chain(request: gr.Request, chain: Chain, checkpoint: Checkpoint, choice: SamplerChoice, ideal: bool,
               stem_suffix: str = "", progress: Any = None):
    """A sampled chain for the player: (player HTML, stats Markdown, the `movie_files.Movie`, sprite sheet path);
    its GIF and MP4, when asked, are named "reverse-MODEL-SAMPLERSTEPS-seedN" + ``stem_suffix``
    ("reverse-moons-ddpm1000-seed0.gif", "reverse-moons-ddim50-seed0.gif": a DDPM and a DDIM movie of one model had
    the same name, and a movie alone did not say how to make it again). ``progress`` says that the
    frames are being drawn (seconds, after the sampling's own progress had stopped short of 100 %)."""
    if progress is not None:
        progress(1.0, desc="Sampled: drawing the frames")
    start = time.perf_counter()
    frames, captions, width, panels = render(chain)
    runs.stop_if_asked()  # Stop pressed as the frames were drawn: before the new movie replaces the shown one
    first = start_captions(chain)
    labels = None if chain.kind == "2d" else [first + [f"x_t (t = {t})", "predicted x̂₀"] for t in chain.frame_ts]
    notes = formulas.reverse_notes(checkpoint.schedule, chain.state_ts, chain.frame_states, method=choice.method,
                                   variance=choice.variance, eta=choice.eta,
                                   part="" if chain.known is None else "hidden part")
    page, movie = movie_files.publish(
        frames, chain.frame_ts, key=runs.session_key(request), view="reverse",
        stem=f"reverse-{display_name(checkpoint.path)}-{choice.method}{len(chain.state_ts) - 1}-seed{chain.seed}"
             f"{stem_suffix}",
        captions=captions, notes=notes, note_key=formulas.reverse_key(choice.method, choice.eta), export_labels=labels,
        export_fps=GIF_FPS, max_width=width, pixelated=chain.kind == "image", panels=panels)
    render_s = time.perf_counter() - start
    return page, stats_markdown(chain, checkpoint, model_label(checkpoint, choice, ideal), len(chain.samples), render_s,
                                choice.spacing), movie, movie.sprite


def model_label(checkpoint: Checkpoint, choice: SamplerChoice, ideal: bool) -> str:
    """The model and sampler in words, for the stats."""
    if not ideal:
        return choice.label
    examples = "points" if checkpoint.data.kind == "2d" else "images"
    return f"the ideal denoiser of {len(checkpoint.points)} of its training {examples} in place of its network · {choice.label}"


def sweep_t0s(T: int) -> list[int]:
    """The t₀ of a survival sweep: `SWEEP_SHARES` of T, rounded, distinct, increasing."""
    return sorted({max(1, round(share * T)) for share in SWEEP_SHARES})


def survival_sweep(checkpoint: Checkpoint, choice: SamplerChoice, n: int, seed: int, label: str = "",
                   progress: Any = None, drawn: torch.Tensor | None = None) -> figures.SurvivalCurve:
    """One chain joined at each t₀ of `sweep_t0s`, all from the same n ≥ 2 training examples, or the ``drawn``
    starts (`own_drawing.drawing_starts`), and the same seed: how much of them survives noise to t₀ and comes back,
    as the curve ``label`` of the survival plot. n copies of one drawn picture have no return ratio (no other
    example to be told from): only the share the classifier reads as the drawing, and gr.Error for a model without
    one."""
    starts = starting_examples(checkpoint, n, seed) if drawn is None else drawn
    copies = drawn is not None and checkpoint.data.kind == "image"
    before = read_samples(starts, checkpoint.data.name) if checkpoint.data.kind == "image" else None
    if copies and before is None:
        raise InputError("A sweep from your drawing counts the samples a shipped classifier reads as your drawing's "
                         "class, and none reads this model's pictures: untick “Start from training data noised to "
                         "t₀”, or clear the drawing box, to sweep from training examples.")
    t0s = sweep_t0s(checkpoint.schedule.T)
    ratios, kept = [], []
    for i, t0 in enumerate(t0s):
        if progress is not None:
            progress((i, len(t0s)), desc=f"Chain from t₀ = {t0}", unit="chains")
        chain = sample_chain(checkpoint, method=choice.method, variance=choice.variance, eta=choice.eta,
                             steps=choice.steps, n=n, seed=seed, n_frames=MIN_FRAMES, spacing=choice.spacing,
                             starts=starts, start_t=t0)
        ratios.append(None if copies else return_ratio(chain.samples, starts))
        same = kept_classes(chain, checkpoint.data, before)
        kept.append(None if same is None else same[0] / same[1])
    return figures.SurvivalCurve(label, t0s, [float(checkpoint.schedule.log_snr[t]) for t in t0s],
                                 None if copies else ratios, None if None in kept else kept)


def survival_markdown(curve: figures.SurvivalCurve, checkpoint: Checkpoint, label: str, n: int, seconds: float,
                      capped: bool, drawn: bool = False, read: str | None = None) -> str:
    """The sweep in words and as a table (``drawn``: from the user's drawing, which the classifier reads as
    ``read``)."""
    head = "| t₀ | ᾱ_t₀ |" + (" return ratio |" if curve.ratios else "") + (" kept their class |" if curve.kept else "")
    rows = [head, "|---" * head.count(" |") + "|"]
    for k, t0 in enumerate(curve.t0s):
        rows.append(f"| {t0} | {float(checkpoint.schedule.alpha_bars[t0]):.3g} |"
                    + (f" {curve.ratios[k]:.2f} |" if curve.ratios else "")
                    + (f" {round(curve.kept[k] * n)} of {n} |" if curve.kept else ""))
    source = f"the same {n} training examples"
    if drawn:
        source = f"the same {n} " + ("copies of your drawing" if checkpoint.data.kind == "image" else
                                     "points over your drawing")
    note = f" (at most {n} per chain in a sweep)" if capped else ""
    own = "starting point" if drawn else "example"
    ratio = (f"Return ratio: each sample's distance to its own {own} over that to the others' (0: all came back; "
             "1: nothing of them is left)." if curve.ratios else
             f"Kept their class: the samples the shipped classifier reads as **{read}**, as it reads your drawing.")
    return (f"{runs.bold_name(checkpoint.path)} · {label} · {len(curve.t0s)} chains from {source}{note} and the "
            f"same noise, in {formulas.seconds_text(seconds)}. {ratio}\n\n" + "\n".join(rows))


def sweep(path, sampler, eta, steps, n, seed, spacing, ideal, trained, curves, x_axis, from_data=False, drawing=None,
          progress=gr.Progress()):
    """Sweep t₀: (figure, Markdown, curves) of `survival_sweep` with the tab's model and sampler, drawn with the
    session's earlier sweeps (``curves``, the last `MAX_CURVES` kept; one of the same model, sampler and start is
    replaced, not drawn twice under one name) against t₀ or log-SNR (``x_axis``). With ``from_data`` and ink in the
    ``drawing`` (a Sketchpad value), the chains start from the drawing, as Generate's does."""
    checkpoint, choice = model_and_sampler(path, trained, ideal, sampler, eta, steps, spacing)
    kind, T = checkpoint.data.kind, checkpoint.schedule.T
    n = whole_number(n, "Samples", 2, MAX_SAMPLES[kind])
    most = picture_cap(checkpoint.data, MAX_SWEEP_SAMPLES[kind])
    capped, n = n > most, min(n, most)
    seed = whole_number(seed, "Seed", 0, MAX_SEED)
    x_axis = x_axis if x_axis in figures.SURVIVAL_AXES else "t"
    n_steps = number_of_steps(T, choice.steps, choice.method)  # type: ignore[arg-type]
    short = f"{choice.method.upper()}-{n_steps}" + (", log-SNR" if choice.spacing == "log_snr" and n_steps < T else "")
    start = time.perf_counter()
    try:
        drawn = drawing_starts(drawing, checkpoint.data, n, seed) if from_data else None
        reading = read_samples(drawn[:1], checkpoint.data.name) if drawn is not None and kind == "image" else None
        read = None if reading is None else reading.labels[0]  # in the label: drawings of two digits, two curves
        drawn_words = "" if drawn is None else ", your drawing" + ("" if read is None else f" read as {read}")
        curve_label = f"{display_name(checkpoint.path)} ({'ideal, ' if ideal else ''}{short}{drawn_words})"
        curve = survival_sweep(checkpoint, choice, n, seed, curve_label, progress=progress, drawn=drawn)
    except gr.Error:  # a ValueError too, already in words for the user
        raise
    except ValueError as err:
        raise InputError(str(err)) from None
    earlier = [c for c in curves or [] if c.label != curve.label]  # the same model and sampler again: replaced
    curves = [*earlier, curve][-MAX_CURVES:]
    label = (f"{model_label(checkpoint, choice, ideal)}: the chain of {describe_steps(n_steps, T, choice.spacing)}, "
             "joined at each t₀")
    stats = survival_markdown(curve, checkpoint, label, n, time.perf_counter() - start, capped, drawn is not None,
                              read)
    return figures.survival_figure(curves, x_axis), stats, curves


def redraw_sweeps(curves, x_axis):
    """The sweeps of the session against the other x axis (no chains run)."""
    if not curves:
        return gr.skip()
    return figures.survival_figure(curves, x_axis if x_axis in figures.SURVIVAL_AXES else "t")


def clear_sweeps():
    """Forget the session's sweeps: (empty plot, no stats, no curves)."""
    return None, "", []


def refresh(trained, current, request: gr.Request | None = None):
    """↻ Refresh: the checkpoint list read again (shipped models copied in while the app runs, and this browser's
    models that another of its tabs trained or uploaded since this page loaded). Returns (dropdown, model text, this
    page's models). A model of this browser that the page did not know joins its list (the `trained` State), which
    selects the newest as a finished run does (`after_training`); else the choice stays if still listed, or goes to
    the newest trained model."""
    known = list(trained or [])
    kept = runs.owner_checkpoints(runs.owner_key(request)) if request is not None else []
    found = [path for path in kept if path not in known]
    if found:
        return gr.skip(), gr.skip(), known + found
    choices = checkpoint_choices(trained)
    values = [v for _, v in choices]
    own = [str(p) for p in trained_paths(trained)]
    if current in values:
        value = current
    else:
        value = own[-1] if own else (values[0] if values else None)
    return gr.Dropdown(choices=choices, value=value), describe(value, trained), gr.skip()


def after_training(trained, current, jobs=0):
    """The Train tab saved a model, or one was uploaded: select it, unless a job of this tab (`jobs`) waits or runs
    for the model chosen. Then the choice stays, and a note says the new model is in the list: a run that ended
    during a Generate had put its name over the chain of the model picked, and Download zipped the new one."""
    paths = [str(p) for p in trained_paths(trained)]
    choices = checkpoint_choices(trained)
    listed = current in [v for _, v in choices]
    if jobs and listed and paths and paths[-1] != current:
        new = in_markdown(session_label(Path(paths[-1])))  # as the list names it
        return gr.Dropdown(choices=choices, value=current), (
            describe(current, trained) + f"\n\n***{new}** is ready in the list: it was not chosen for you, as a job "
                                         "for the model above had not ended.*")
    value = paths[-1] if paths else (current if listed else None)
    return gr.Dropdown(choices=choices, value=value), describe(value, trained)


def _config(path: str | None) -> dict | None:
    try:
        return read_config(path) if path else None
    except CheckpointError:
        return None


def data_kind(path: str | None) -> str | None:
    """The kind of data ("2d" or "image") of the checkpoint at ``path``, read from its config; None when unreadable."""
    return (_config(path) or {}).get("data", {}).get("kind")


def data_name(path: str | None) -> str | None:
    """The name of the data (e.g. "mnist") of the checkpoint at ``path``, read from its config; None when unreadable."""
    return (_config(path) or {}).get("data", {}).get("name")


def checkpoint_classes(path: str | None) -> int:
    """How many classes the model of the checkpoint at ``path`` is conditioned on (0: unconditional or unreadable)."""
    return model_classes(_config(path) or {})


def _steps_of(config: dict | None) -> int:
    """T of a checkpoint's config (1000 when unreadable)."""
    return int((config or {}).get("schedule", {}).get("T", 1000))


def checkpoint_steps(path: str | None) -> int:
    """T of the checkpoint at ``path``, read from its config (1000 when unreadable)."""
    return _steps_of(_config(path))


def step_within(T: int, current: Any, share: float) -> int:
    """A slider's t for a chain of T steps: ``current`` when it lies in 1..T, else ``share``·T (at least 1)."""
    return current if isinstance(current, (int, float)) and 1 <= current <= T else max(1, round(share * T))


def start_slider(config: dict | None, current: Any = None) -> gr.Slider:
    """The t₀ slider for a checkpoint of T steps: 1..T, keeping ``current`` when it fits, else 0.4·T."""
    T = _steps_of(config)
    return gr.Slider(minimum=1, maximum=T, value=step_within(T, current, DEFAULT_START_SHARE))


SAMPLER_NOTE_START = "\n\n*The sampler is now set "  # `checkpoint_selected`'s note, at the end of the description


def checkpoint_selected(path, trained, start_t=None, steps=None, kind_shown=None):
    """(description, sampler, steps, samples, t₀ slider, the kind of data the sampler controls suit).

    Defaults that suit a checkpoint of another kind of data than ``kind_shown``: all T steps of DDPM for 2D, DDIM 100
    steps for images. A checkpoint of the same kind keeps the sampler, the samples and the steps (fewer than its T):
    comparing two 2D models at "DDPM, 10 steps" silently ran all 1,000 steps on the second. t₀ within 1..T."""
    info = describe(path, trained)
    config = _config(path)
    if not config:
        return info, gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
    slider, T, kind = start_slider(config, start_t), _steps_of(config), config.get("data", {}).get("kind")
    if kind == kind_shown:
        try:
            kept = gr.skip() if not steps or float(steps) <= T else T
        except (TypeError, ValueError):  # a box mistyped: Generate says so
            kept = gr.skip()
        return info, gr.skip(), kept, gr.skip(), slider, kind
    # said beside the model when it changes the sampler (DDIM appearing without a word on a page about DDPM puzzled
    # students); not on the page's first choice
    if kind == "image":
        data = DataInfo(str(config["data"]["name"]), "image", tuple(config["data"]["shape"]))
        n = min(DEFAULT_SAMPLES["image"], samples_bound(data)[2])  # fewer of large pictures
        said = (f"for images: DDIM (η = 0), {min(100, T)} steps, {formulas.count_text(n, 'sample')}, quick on a CPU. "
                f"Choose DDPM for the paper's sampler (all {T:,} steps).")
        sampler, steps = "ddim", min(100, T)
    else:
        said = (f"for 2D data: DDPM with σ² = β̃ (one of the paper's two choices), over all {T:,} steps, "
                f"{DEFAULT_SAMPLES['2d']:,} samples.")
        sampler, steps, n = "ddpm_small", 0, DEFAULT_SAMPLES["2d"]
    return (info if kind_shown is None else f"{info}{SAMPLER_NOTE_START}{said}*"), sampler, steps, n, slider, kind


DRAWING_NOTE = ("**… or from your own drawing**: draw a digit (image models) or a shape (2D models) across most of "
                "the box and press Generate (or Sweep t₀, under the player). The chain starts from it, noised to "
                "t₀: at a small t₀ the samples keep your strokes, near T they are anything the model knows. For "
                "MNIST every sample starts from the digit, framed as MNIST's are (20 × 20, centred) and drawn white "
                "on black; for 2D, the points are spread over your strokes, centred and scaled to the data's size "
                "(where and how large you draw is lost). An empty box starts from training examples.")
SELECT_DRAWING_BRUSH_JS = select_brush_js("reverse-drawing")  # on view, the box has its brush picked
DRAWING_SHOWN_JS = shown_js("args[0]", kept_in="reverse-drawing")  # while the chain starts from data noised to t₀


def sampler_note_dropped(info: str):
    """The description without `checkpoint_selected`'s note once the sampler, steps or samples are changed by hand
    (next to the steps box, "… DDIM (η = 0), 100 steps" stayed after 20 was typed in)."""
    if not isinstance(info, str) or SAMPLER_NOTE_START not in info:
        return gr.skip()
    return info[:info.index(SAMPLER_NOTE_START)]


TEACHING_LABEL = "Teaching options: ideal denoiser · score field · start from noised data"
SHOW_PLAYER_JS = scroll_into_view_js("reverse-player")  # on Generate and after it
# Generate hands the focus to the player once its chain is there, so that Space plays and pauses: the focus had stayed
# on the button, scrolled out of view, where a second Space started another chain. Only if Generate still has it: a
# control focused meanwhile keeps it.
REMEMBER_GENERATE_JS = "() => { window.__ddpmGenerate = document.activeElement; return []; }"
FOCUS_PLAYER_JS = """() => {
  const player = document.querySelector('#reverse-player .ddpm-player');
  if (player && window.__ddpmGenerate && document.activeElement === window.__ddpmGenerate) {
    player.focus({preventScroll: true});
  }
  window.__ddpmGenerate = null;
  return [];
}"""


@dataclass(frozen=True)
class ReverseControls:
    """The tab's controls that the panels below it read (`app.step_anatomy`, `app.noise_map`, `app.inpaint_panel`,
    `app.guidance_panel`, `app.steps_panel`, `app.bound_panel`)."""

    checkpoint: gr.Dropdown
    sampler: gr.Radio
    eta: gr.Slider
    steps: gr.Number
    spacing: gr.Radio
    n: gr.Number
    seed: gr.Number
    n_frames: gr.Slider
    ideal: gr.Checkbox
    trained: gr.State
    player: list  # the player's outputs, as Generate fills them (`show_chain`): view, stats, Movie, sprite sheet
    model_slot: gr.Column  # under the checkpoint's description: where `app.model_files` puts its download and upload
    jobs: gr.State  # the buttons whose Reverse jobs wait or run on this page (`job_click`): `after_training` keeps the
    # choice while there are any
    stop: gr.Button  # shown while a job of the page waits or runs: it stops them (`runs.request_stop`)
    info: gr.Markdown  # the chosen checkpoint's description (`describe`)
    panels: list = field(default_factory=list)  # (plot, stats, pictures or None) of the panels whose results make way
    # (`results_make_way`)

    def job_click(self, button: gr.Button, fn: Any, inputs: Any, outputs: Any, **options: Any) -> Any:
        """`runs.heavy_click` for a job of this tab, counted in ``jobs`` from the click until it ends (its event).
        A panel's results (`results_make_way`) that arrive once another model is chosen make way at once: the note
        went up when the model changed, and a result still being computed then came back over it."""
        asked = gr.State(None)  # the model the job was pressed for
        key = gr.State(button._id)  # the button, counted once however often it is pressed while its job is pending
        button.click(job_waits, [self.jobs, self.checkpoint, key], [self.jobs, asked, self.stop],
                     show_progress="hidden", queue=False)
        event = runs.heavy_click(button, fn, inputs, outputs, **options)
        for ended in (event.success, event.failure):  # `.then` did not run after a job that failed: a count for good
            ended(job_ended, [self.jobs, key], [self.jobs, self.stop], show_progress="hidden", queue=False)
        if list(outputs[:2]) == self.player[:2]:  # a chain of the model chosen before plays, said so above its stats
            event.success(played_since, [self.checkpoint, asked, self.player[1]], self.player[1],
                          show_progress="hidden", queue=False, api_visibility="private")
        for plot, stats, pictures in self.panels:
            if list(outputs[:2]) == [plot, stats]:
                event.success(made_way_since, [self.checkpoint, asked, stats], [plot, stats], show_progress="hidden",
                              queue=False)
                event.failure(plot_unless_shown, stats, plot, show_progress="hidden", queue=False)
                if pictures is not None:
                    event.success(plot_made_way_since, [self.checkpoint, asked, stats], pictures,
                                  show_progress="hidden", queue=False)
                    event.failure(plot_unless_shown, stats, pictures, show_progress="hidden", queue=False)
        return event


def job_waits(jobs: Any, path: str | None, button: int) -> tuple[list[int], str | None, gr.Button]:
    """(the buttons whose jobs are pending, this one among them; the model this one is for; Stop, shown). A button is
    counted once: pressed again while its job is pending, Gradio drops the second click's job (its events are
    triggered once at a time), and a count of clicks had stayed one too high for good, Stop with it."""
    pending = sorted({*(jobs or []), button})
    return pending, path, gr.Button(runs.STOP, visible=True, interactive=True)


def job_ended(request: gr.Request, jobs: Any, button: int) -> tuple[list[int], gr.Button]:
    """(the buttons whose jobs are pending, without this one; Stop, hidden when none is left, and a Stop that came as
    the last ended forgotten: it would have stopped the next click's job)."""
    left = [k for k in (jobs or []) if k != button]
    if not left:
        runs.forget_stop(runs.page_of(request))
    return left, gr.Button(visible=bool(left))


def results_make_way(c: ReverseControls, plot: gr.Plot, stats: gr.Markdown, pictures: gr.Plot | None = None) -> None:
    """When another model is chosen, a panel's results, of the model before, make way for a note: they stayed under
    the new model's name (a student read the swiss roll's 1.187 bits/dim as MNIST's). A panel not run yet stays.
    ``pictures``: a second plot of the panel's results (its job's third output), hidden with the first."""
    c.checkpoint.change(made_way, [c.checkpoint, stats], [plot, stats], show_progress="hidden", queue=False)
    if pictures is not None:
        c.checkpoint.change(plot_made_way, [c.checkpoint, stats], pictures, show_progress="hidden", queue=False)
    c.panels.append((plot, stats, pictures))


def made_way(path: str | None, shown: str | None) -> tuple:
    """(plot, stats) of a panel once the model changed (`results_make_way`)."""
    if not shown or not path:
        return gr.skip(), gr.skip()
    return (gr.Plot(value=None, visible=False),
            f"*The results that were here are of the model chosen before: run this panel again for "
            f"{runs.bold_name(path)}.*")


def plot_made_way(path: str | None, shown: str | None) -> Any:
    """A panel's second plot once the model changed: as its first (`made_way`)."""
    return made_way(path, shown)[0]


def plot_made_way_since(path: str | None, asked: str | None, shown: str | None) -> Any:
    """A panel's second plot, for results that came back once another model was chosen: as its first."""
    return made_way_since(path, asked, shown)[0]


def made_way_since(path: str | None, asked: str | None, shown: str | None) -> tuple:
    """`made_way` for results that came back for ``asked`` once ``path`` was chosen; else they stay."""
    return made_way(path, shown) if asked and path != asked else (gr.skip(), gr.skip())


def played_since(path: str | None, asked: str | None, stats: str | None) -> Any:
    """The player's stats, for a chain that came back for ``asked`` once ``path`` was chosen: said to be of the model
    before (it had played under the new model's name and description); else as they are."""
    if not asked or not path or path == asked or not (stats or "").startswith(runs.bold_name(asked)):
        return gr.skip()  # also a job that was stopped: the stats shown are those before it
    return (f"*This chain is of {runs.bold_name(asked)}, the model chosen when it was asked for; the model above is "
            f"now {runs.bold_name(path)}.*\n\n{stats}")


def plot_unless_shown(shown: str | None) -> Any:
    """A panel's plot after its job was refused (the message a toast): hidden, unless it holds earlier results; it had
    stayed as `show_when` showed it, empty and marked "Error"."""
    return gr.skip() if shown else gr.Plot(visible=False)


def play_in_player(event: Any, sprite: gr.File) -> None:
    """After an ``event`` that filled the player (`show_chain`): load its sprite sheet and bring it into view."""
    shown = event.success(None, sprite, None, js=player.SPRITE_JS, queue=False)
    shown.then(None, None, None, js=SHOW_PLAYER_JS, queue=False).then(None, None, None, js=FOCUS_PLAYER_JS, queue=False)


def build(trained: gr.State) -> ReverseControls:
    """Lay out the Reverse tab; ``trained`` is the Train tab's State of this session's checkpoint paths."""
    choices = checkpoint_choices([])
    first = default_checkpoint(choices)
    first_T = _steps_of(_config(first))
    gr.Markdown(
        "Turn noise into data: run the reverse chain x_T → x_0 of a trained model once, then play it here: x_t "
        "beside the network's guess of the data, x̂₀. The anatomy panel below takes one step apart.\n\n"
        "<details><summary>What one step does, the models listed, the player's keys</summary>\n\n"
        "**Each step** starts from x_t (at first pure noise, x_T ~ N(0, I)): the network guesses the noise in it, "
        "ε̂ (a network trained on x₀ or v gives ε̂ through its formula), which gives a guess of the data, "
        "x̂₀ = (x_t − √(1 − ᾱ_t)·ε̂)/√ᾱ_t; the sampler adds up x̂₀ and x_t (DDIM: x̂₀ and ε̂) in the proportions of "
        "the next step's noise level and, for DDPM or DDIM with η > 0, adds a little fresh noise: that is x at the "
        "chain's next step (t − 1 when all T steps run). Shipped checkpoints are listed by name; models you train in "
        "the **Train** tab are added for this browser (a reload keeps them). In the player, a click on the frames "
        "plays or pauses; then Space, ← → and Home / End (or a presenter's clicker) step through the chain."
        "\n\n</details>"
    )
    with gr.Row():
        with gr.Column(scale=1, min_width=300, elem_id="reverse-controls"):
            refresh_btn = gr.Button("↻ Refresh", size="sm")
            checkpoint = gr.Dropdown(choices=choices, value=first, label="Checkpoint", elem_classes="name-dropdown",
                                     elem_id="reverse-checkpoint", buttons=[refresh_btn])
            info = gr.Markdown(describe(first, []))
            with gr.Row(elem_id="reverse-generate-bar"):
                generate_btn = gr.Button("Generate", variant="primary", elem_id="reverse-generate", scale=3)
                stop_btn = gr.Button("Stop", variant="stop", visible=False, elem_id="reverse-stop", scale=1,
                                     min_width=80)
            model_slot = gr.Column()
            sampler = gr.Radio(choices=SAMPLERS, value="ddpm_small", label="Sampler")
            eta = gr.Slider(0.0, 1.0, value=0.0, step=0.05, label="η (DDIM only: 0 = deterministic, 1 = DDPM with σ² = β̃)")
            steps = gr.Number(value=0, label="Sampling steps (0 or empty = all T for DDPM, 50 or T if fewer for DDIM)")
            spacing = gr.Radio(choices=SPACING_CHOICES, value="uniform", label="Fewer steps than T: space them",
                               info="log-SNR spacing keeps strided DDPM on the cosine and sigmoid schedules from "
                                    "amplifying the model's error at t = T")
            with gr.Row():
                n = gr.Number(value=DEFAULT_SAMPLES["2d"], label="Samples")
                seed = gr.Number(value=0, label="Seed")
            n_frames = gr.Slider(MIN_FRAMES, MAX_FRAMES, value=DEFAULT_FRAMES, step=1, label="Frames in the animation")
            with gr.Accordion(TEACHING_LABEL, open=False, elem_id="reverse-teaching"):
                ideal = gr.Checkbox(value=False, label=f"The ideal denoiser in place of the network (of {IDEAL_POINTS} "
                                                      f"training points, or {IDEAL_IMAGES} images)",
                                    info="the perfect fit of a finite training set, ε* in closed form: its samples can "
                                         "only be copies of those examples; a trained network's fall between them too")
                score_field = gr.Checkbox(value=False, label="2D: show the score field (arrows)",
                                          info="on a grid, at each frame's t: from x to √ᾱ_t·x̂₀(x) = x − √(1 − ᾱ_t)·ε̂ "
                                               "(the denoised guess x̂₀, scaled to step t), along the score it estimates, "
                                               "∇log p_t(x) ≈ −ε̂/√(1 − ᾱ_t), the way to likelier points")
                from_data = gr.Checkbox(value=False, label="Start from training data noised to t₀, not from pure noise",
                                        info="SDEdit: x_t₀ = √ᾱ_t₀·x₀ + √(1 − ᾱ_t₀)·ε from real examples (or your "
                                             "drawing, below), then the "
                                             "chain below t₀. Small t₀ gives the examples back, middle t₀ keeps only "
                                             "their rough shape, t₀ near T keeps nothing")
                start_t = gr.Slider(minimum=1, maximum=first_T, value=max(1, round(DEFAULT_START_SHARE * first_T)), step=1,
                                    label="t₀: the step the chain starts from", visible=False, elem_id="reverse-start-t")
                with gr.Column(visible=False) as drawing_group:
                    gr.Markdown(DRAWING_NOTE)
                    # no label on view: the note above says what it is for (the box's tools covered a label)
                    drawing = drawing_box(label="Your drawing", show_label=False, elem_id="reverse-drawing",
                                          side=DRAWING_CANVAS, brush_size=DRAWING_BRUSH, color="#000000")
        with gr.Column(scale=2, min_width=VIEWS_MIN_WIDTH):
            view = gr.HTML(player.empty_player("Press Generate to sample and animate the reverse chain."),
                           js_on_load=player.PLAYER_JS, css_template=player.PLAYER_CSS, elem_id="reverse-player")
            stats = gr.Markdown(elem_classes=accessibility.LIVE_STATUS)  # read out when a chain is done
            sprite = gr.File(visible=False, elem_id="reverse-sprite")  # the frames, for the player
            movie = gr.State(None)  # the shown movie's `movie_files.Movie`, from Generate or a panel's Play
            movie_files.build_exports(movie, sprite, api_name="movie_files", boxes_in_a_row=True)
            kept_chain.build(movie, stats, sprite)
            with gr.Accordion("How much of the data survives noise to t₀? Sweep t₀", open=False):
                gr.Markdown(
                    f"Runs the chain joined at t₀ from the same training examples and the same noise, for t₀ from "
                    f"{SWEEP_SHARES[0]:.0%} of T to T ({len(SWEEP_SHARES)} chains, with the sampler and model above), "
                    "and plots how much of the examples came back: the return ratio, and for MNIST the share of "
                    "digits the classifier reads as before. Where the curves rise, the noise decides what the "
                    "sample will be. With “Start from … noised to t₀” ticked and a drawing in its box, the chains "
                    "start from the drawing: for a digit, the share read as your drawing's digit. At most "
                    f"{MAX_SWEEP_SAMPLES['image']} images or {MAX_SWEEP_SAMPLES['2d']:,} "
                    "points per chain; on 2 CPU cores a sweep takes 11–17 s for a 2D model (all 1,000 DDPM "
                    "steps) and 20–40 s for MNIST (DDIM-100).")
                with gr.Row():
                    sweep_btn = gr.Button("Sweep t₀", scale=2)
                    clear_btn = gr.Button("Clear the plot", variant="secondary", scale=1)
                x_axis = gr.Radio(choices=[("t₀", "t"), ("log-SNR at t₀", "log_snr")], value="t", label="x axis",
                                  info="against log-SNR, models of different schedules can be compared: the SNR, "
                                       "not t, sets what survives")
                sweep_plot = gr.Plot(label="What comes back from noise at t₀ (earlier sweeps stay, up to "
                                           f"{MAX_CURVES})", elem_id="reverse-sweep", visible=False)
                sweep_stats = gr.Markdown()
                curves = gr.State([])

    # queued: a State set by an unqueued event does not fire its .change (the list would not be redrawn)
    refresh_btn.click(refresh, [trained, checkpoint], [checkpoint, info, trained], show_progress="hidden")
    jobs = gr.State([])
    trained.change(after_training, [trained, checkpoint, jobs], [checkpoint, info], show_progress="hidden", queue=False)
    kind_shown = gr.State("2d")  # the kind of data the sampler controls suit: their defaults are 2D's
    checkpoint.change(checkpoint_selected, [checkpoint, trained, start_t, steps, kind_shown],
                      [info, sampler, steps, n, start_t, kind_shown], show_progress="hidden", queue=False)
    from_data.change(lambda on: gr.Slider(visible=bool(on)), from_data, start_t, show_progress="hidden", queue=False)
    from_data.change(None, from_data, drawing_group, js=DRAWING_SHOWN_JS, queue=False)
    gr.on([from_data.change, drawing.clear], None, None, None, js=SELECT_DRAWING_BRUSH_JS, queue=False)
    for changed in (sampler, steps, n):
        changed.input(sampler_note_dropped, info, info, show_progress="hidden", queue=False)
    controls = ReverseControls(checkpoint, sampler, eta, steps, spacing, n, seed, n_frames, ideal, trained,
                               [view, stats, movie, sprite], model_slot, jobs, stop_btn, info)
    stop_btn.click(runs.request_stop, jobs, stop_btn, show_progress="hidden", queue=False,  # any job of the page
                   api_visibility="private")
    stop_btn.click(None, None, None, js=focus_js("reverse-generate"), queue=False)  # Stop goes: focus had fallen
    generate_btn.click(None, None, None, js=SHOW_PLAYER_JS, queue=False)  # its progress shows on the player
    generate_btn.click(None, None, None, js=REMEMBER_GENERATE_JS, queue=False)
    drawing_copy = box_reader(drawing)
    for button in (generate_btn, sweep_btn):  # before their jobs, which read the copy
        read_box(button.click, drawing, drawing_copy)
    play_in_player(controls.job_click(
        generate_btn, generate, [checkpoint, sampler, eta, steps, n, seed, n_frames, spacing, score_field, ideal, trained, from_data,
                   start_t, drawing_copy],
        [view, stats, movie, sprite]), sprite)
    show_when(sweep_btn.click, sweep_plot)
    controls.job_click(
        sweep_btn, sweep, [checkpoint, sampler, eta, steps, n, seed, spacing, ideal, trained, curves, x_axis,
                           from_data, drawing_copy],
        [sweep_plot, sweep_stats, curves])
    x_axis.change(redraw_sweeps, [curves, x_axis], sweep_plot, show_progress="hidden", queue=False)
    clear_btn.click(clear_sweeps, None, [sweep_plot, sweep_stats, curves], show_progress="hidden", queue=False)
    return controls
