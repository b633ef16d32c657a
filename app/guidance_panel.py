"""The Reverse tab's panel on guidance (`core.guidance`): the tab's model steered towards one class, classifier-free
by its own classes when it is class-conditional (`core.conditioning`), or by a classifier: the shipped classifier of
its data applied to the model's denoised guess x̂_0 (MNIST), or the exact p_t(y | x_t) of a mixture of Gaussians
(the 8 Gaussians); unguided and guided samples from the same noise side by side, or the guided chain in the tab's
player."""

from __future__ import annotations

import html
import math
import time
from dataclasses import dataclass, replace

import gradio as gr
import numpy as np
import torch

from app import figures, formulas, panel_grid, runs
from app.controls import MAX_SEED, notice_html, number_between, redraw_after_release_alone, show_when, whole_number
from app.as_written import in_markdown
from app.errors import InputError
from app.images import image_grid, image_pixels
from app.player import FIELD_CAP, field_grid
from app.checkpoint_access import kept_with_seconds, untrained_null_note
from app.reverse_tab import (
    DIVERGED, MAX_FRAMES, MIN_FRAMES, ReverseControls, SamplerChoice, checkpoint_classes, checkpoint_steps,
    chosen_checkpoint, data_kind, data_name, examples_for, grid_columns, model_and_sampler, model_device, model_label,
    picture_cap, play_in_player, reference_points, results_make_way, sample_chain, show_chain,
)
from app.step_anatomy import t_slider, t_value
from core.checkpoint_archive import safe_name
from core.checkpoints import Checkpoint
from core.classifier import load_classifier, shipped_classifiers
from core.conditioning import num_classes
from core.data import GaussianMixture
from core.guidance import (
    GUIDANCE_LABELS, GUIDANCE_METHODS, GuidanceMethod, class_score, default_method, guidance_classes, guidance_methods,
    guided_model, model_mixture, read_classes,
)
from core.metrics import mean_pairwise_distance
from core.sampler import describe_steps, initial_noise, number_of_steps, sample

# samples at most: classifier guidance takes a gradient through the model (and for images the classifier) at every
# step; classifier-free guidance calls the model once on a doubled batch
MAX_GUIDED = {("2d", "classifier"): 2000, ("2d", "classifier-free"): 2000,
              ("image", "classifier"): 16, ("image", "classifier-free"): 64}
MAX_SCALE = 20.0
DEFAULT_SCALE = 3.0
DEFAULT_CLASS = "7"
DEFAULT_SWEEP = "0, 1, 2, 4, 8"  # the scales compared side by side
MAX_SWEEP = 6


def method_choices(path) -> list[GuidanceMethod]:
    """How the checkpoint's model can be steered, the default first: classifier-free when it is class-conditional,
    classifier guidance when its data has a classifier or a mixture (from its config; [] when neither)."""
    name, kind = data_name(path), data_kind(path)
    return [] if name is None or kind is None else guidance_methods(checkpoint_classes(path), name, kind)


def chosen_method(path, current=None) -> GuidanceMethod | None:
    """``current`` when the checkpoint allows it, else its default method (None when there is none)."""
    methods = method_choices(path)
    return current if current in methods else (methods[0] if methods else None)


def no_guide_notice(path) -> str:
    """A visible note, before anyone presses a button, when the chosen model cannot be guided; empty otherwise."""
    if path is None or method_choices(path):
        return ""
    return notice_html("⚠ This model has no classes to steer towards. Guidance needs a class-conditional model "
                       "(<b>mnist_conditional</b>, <b>eight_gaussians_conditional</b>), data with a shipped classifier "
                       "(<b>mnist</b>) or data of known classes (<b>eight_gaussians</b>): pick one as the Checkpoint "
                       "above.", "warn")


def class_choices(path, method=None) -> list[str]:
    """The classes the checkpoint's model can be steered towards with ``method`` (default: its first;
    `core.guidance.guidance_classes`), from its config ([] when there are none)."""
    name, kind, method = data_name(path), data_kind(path), chosen_method(path, method)
    return [] if name is None or kind is None or method is None else guidance_classes(name, kind, method)


def chosen_class(choices: list[str], current=None) -> str | None:
    """``current`` when it is one of ``choices``, else `DEFAULT_CLASS` or the first (None when there are none)."""
    return current if current in choices else (DEFAULT_CLASS if DEFAULT_CLASS in choices else choices[0] if choices else None)


def class_dropdown(path, current=None, method=None) -> gr.Dropdown:
    """The class choices for the chosen checkpoint and method, keeping ``current`` when it fits."""
    choices = class_choices(path, method)
    return gr.Dropdown(choices=choices, value=chosen_class(choices, current))


def method_and_classes(path, method, current) -> tuple[gr.Radio, gr.Dropdown]:
    """On a change of checkpoint: its methods (keeping ``method`` when it fits) and that method's classes."""
    method = chosen_method(path, method)
    return gr.Radio(value=method), class_dropdown(path, current, method)


def model_chosen(path, method, current, t) -> tuple[gr.Radio, gr.Dropdown, gr.Slider, str]:
    """On a change of checkpoint, the panel's controls in one request (they were three): `method_and_classes`, the
    field's t slider (`t_slider`, keeping ``t`` when it fits) and the note when the model cannot be guided
    (`no_guide_notice`)."""
    return (*method_and_classes(path, method, current), t_slider(path, t), no_guide_notice(path))


@dataclass(frozen=True)
class Guidance:
    """The checked inputs of a guided sampling."""

    checkpoint: Checkpoint  # with the guided ε-predictor in place of its network
    unguided: Checkpoint
    choice: SamplerChoice
    method: GuidanceMethod  # classifier-free, or by a classifier
    mixture: GaussianMixture | None  # the 8 Gaussians: their mixture in model coordinates (steers with "classifier")
    target: str
    scale: float
    n: int
    seed: int


def guidance_inputs(path, sampler, eta, steps, spacing, n, seed, trained, target, scale, method=None) -> Guidance:
    """The panel's and the tab's controls, checked (gr.Error naming the one at fault), with the guided model
    (``method``: classifier-free for a class-conditional model unless told, else classifier)."""
    checkpoint, choice = model_and_sampler(path, trained, False, sampler, eta, steps, spacing)
    scale = number_between(scale, "The guidance scale", 0.0, MAX_SCALE)
    method = method or default_method(checkpoint.model)
    n = min(whole_number(n, "Samples", 1, 10**6), picture_cap(checkpoint.data, MAX_GUIDED.get((checkpoint.data.kind, method), 1)))
    seed = whole_number(seed, "Seed", 0, MAX_SEED)
    try:
        guided = guided_model(checkpoint.model, checkpoint.schedule, checkpoint.data, target, scale, n,
                              model_device(checkpoint), method)
    except ValueError as err:
        raise as_sentence(err) from None
    return Guidance(replace(checkpoint, model=guided), checkpoint, choice, method, model_mixture(checkpoint.data),
                    target, scale, n, seed)


def as_sentence(err: ValueError) -> gr.Error:
    """The engine's refusal ("the class to steer towards must be one of …") as the UI's sentence."""
    if isinstance(err, InputError):  # already one
        return err
    message = str(err)
    return InputError(message[0].upper() + message[1:] + ".")


def rescaled(job: Guidance, scale: float) -> Guidance:
    """The same guidance with another scale (the model steered anew, `core.guidance.guided_model`)."""
    unguided = job.unguided
    guided = guided_model(unguided.model, unguided.schedule, unguided.data, job.target, scale, job.n,
                          model_device(unguided), job.method)
    return replace(job, checkpoint=replace(unguided, model=guided), scale=scale)


def _samples(checkpoint: Checkpoint, job: Guidance) -> tuple[torch.Tensor, float]:
    choice = job.choice
    x_T, generator = initial_noise((job.n, *checkpoint.data.shape), seed=job.seed, device=model_device(checkpoint))
    start = time.perf_counter()
    out = sample(checkpoint.model, checkpoint.schedule, x_T, method=choice.method, steps=choice.steps, eta=choice.eta,
                 variance=choice.variance, spacing=choice.spacing, clip_x0=checkpoint.data.clip_x0, generator=generator)
    if not torch.isfinite(out).all():
        raise InputError(DIVERGED)
    return out.float().cpu(), time.perf_counter() - start


def unguided_samples(job: Guidance) -> tuple[torch.Tensor, float | None]:
    """`_samples` of the model without guidance and their seconds, None where they were kept
    (`kept_with_seconds`) from an earlier click for this model, sampler, n and seed: another scale or class is
    guided from the same noise, and the unguided half had been sampled again each time (on 2 cores, 1,500 points of
    the 8 Gaussians: 3.9 of 9.6 s)."""
    return kept_with_seconds(job.unguided, "unguided samples", lambda: _samples(job.unguided, job), job.choice, job.n,
                             job.seed)


def guide(path, sampler, eta, steps, spacing, n, seed, trained, target, scale, method=None, progress=gr.Progress()):
    """(figure, Markdown): n samples from the same noise, unguided and guided towards ``target`` with ``scale``."""
    job = guidance_inputs(path, sampler, eta, steps, spacing, n, seed, trained, target, scale, method)
    progress(0.05, desc="Sampling without guidance")
    unguided, unguided_s = unguided_samples(job)
    progress(0.4, desc=f"Sampling guided towards {job.target}")
    guided, guided_s = _samples(job.checkpoint, job)
    how = "classifier-free, " if job.method == "classifier-free" else ""
    labels = ["unguided (s = 0)", f"guided towards {job.target} ({how}s = {job.scale:g})"]
    if job.checkpoint.data.kind == "2d":
        figure = panel_grid.noised_grid_figure([[unguided.numpy(), guided.numpy()]], [""], labels, kind="points",
                                               cell_px=320, reference=reference_points(job.unguided))
    else:
        nrow = grid_columns(job.n)
        figure = panel_grid.noised_grid_figure([[image_grid(unguided, nrow), image_grid(guided, nrow)]], [""], labels,
                                               kind="images", cell_px=320)
    markdown = guide_markdown(job, unguided, guided, unguided_s, guided_s)
    return figure, markdown + untrained_null_warning(job.checkpoint, [job.method])


def untrained_null_warning(checkpoint: Checkpoint, methods) -> str:
    """`reverse_tab.untrained_null_note` when classifier-free guidance (one of ``methods``) steers the model."""
    return untrained_null_note(checkpoint.config) if "classifier-free" in methods else ""


def guide_markdown(job: Guidance, unguided: torch.Tensor, guided: torch.Tensor, unguided_s: float | None,
                   guided_s: float) -> str:
    """What guidance did: how many samples of each set are of the target class (`core.guidance.read_classes`:
    nearest the target's centre or training points, or read so by the classifier). ``unguided_s`` None: the
    unguided samples were kept from an earlier click."""
    T = job.checkpoint.schedule.T
    chain = describe_steps(number_of_steps(T, job.choice.steps, job.choice.method), T, job.choice.spacing)
    head = (f"{runs.bold_name(job.checkpoint.path)} · {GUIDANCE_LABELS[job.method]} · "
            f"{model_label(job.checkpoint, job.choice, False)}, {chain} · {job.n:,} samples from the same noise · "
            f"unguided {formulas.time_taken(unguided_s)}, guided {formulas.time_taken(guided_s)}.")
    if job.mixture is not None:
        return "\n".join([head, mixture_sentence(job, unguided, guided)]) + off_plot_line(job, unguided, guided)
    reads = [read_classes(job.checkpoint.data, x) for x in (unguided, guided)]
    if reads[0] is None or reads[1] is None:
        return head + off_plot_line(job, unguided, guided)
    (unguided_classes, how), (guided_classes, _) = reads
    lines = [head, f"- Samples {how} **{html.escape(job.target)}**: **{unguided_classes.count(job.target):,} of "
                   f"{job.n:,}** unguided, **{guided_classes.count(job.target):,} of {job.n:,}** guided"]
    if job.checkpoint.data.kind == "image":
        lines[-1] += f" (guided: {' '.join(guided_classes)})."
        lines.append(
            "- The judge is the classifier that steers: its gradient can also find strokes that convince it without "
            "looking like the class to a person, the more so at large scales. Look at the pictures too."
            if job.method == "classifier" else
            "- The judge did not steer: the model's own classes did, so it is an independent reader of the digits.")
    else:
        lines[-1] += "."
    return "\n".join(lines) + off_plot_line(job, unguided, guided)


def off_plot_line(job: Guidance, unguided: torch.Tensor, guided: torch.Tensor) -> str:
    """2D: a line saying how many samples of each set lie beyond the panels' fixed axes (counted in the figures
    above, not drawn: strong guidance can throw them there), else ""."""
    if job.checkpoint.data.kind != "2d":
        return ""
    off = {name: figures.beyond_the_axes(x) for name, x in (("unguided", unguided), ("guided", guided))}
    if not any(off.values()):
        return ""
    counts = " and ".join(f"**{n:,} of {job.n:,}** {name}" for name, n in off.items() if n)
    return (f"\n- {counts} samples lie beyond the plot's ±{figures.POINT_RANGE[1]:g}: counted above, not drawn.")


def mixture_sentence(job: Guidance, unguided: torch.Tensor, guided: torch.Tensor) -> str:
    """2D: the share of samples nearest the target component's centre, the guided ones' spread about it, and how far
    their mean lies from it."""
    mixture = job.mixture
    k = mixture.names.index(job.target)
    shares = [int((mixture.nearest(x) == k).sum()) for x in (unguided, guided)]
    at_target = guided[mixture.nearest(guided) == k]
    if len(at_target):
        rms, offset = mixture.spread_about(at_target, k)
        spread = f"{float(rms.mean()):.3f}, their mean {offset:.3f} from it"
    else:
        spread = "–"
    why = ("The guide here is exact: p_t(y | x_t) of the mixture in closed form, the noisy classifier that Dhariwal "
           "& Nichol train, so s = 1 samples the chosen component with its own spread, as far as the model's ε̂ is "
           "right." if job.method == "classifier" else
           "The guide is the model itself: ε̂(x_t, t, y) − ε̂(x_t, t, ∅) is −√(1 − ᾱ_t) times the gradient of its "
           "implicit classifier log p_t(y | x_t), so s = 1 is the conditional model, as good as it learnt each class.")
    return (f"- Nearest the centre of **{job.target}**: **{shares[0]:,} of {job.n:,}** unguided samples, "
            f"**{shares[1]:,} of {job.n:,}** guided ones; their spread about it (root-mean-square distance per "
            f"coordinate) {spread}; the component's own spread {mixture.std:.3f}. {why}")


def parse_scales(text) -> list[float]:
    """The scales of a sweep, from text such as "0, 1, 2, 4, 8": distinct, increasing, each from 0 to `MAX_SCALE`,
    2 to `MAX_SWEEP` of them (gr.Error otherwise)."""
    rule = (f"Scales to compare: 2 to {MAX_SWEEP} numbers from 0 to {MAX_SCALE:g}, separated by commas, e.g. "
            f"{DEFAULT_SWEEP}")
    try:
        scales = sorted({float(part) for part in str(text or "").split(",") if part.strip()})
    except ValueError:
        raise InputError(f"{rule}; got {text!r}.") from None
    if not 2 <= len(scales) <= MAX_SWEEP or not all(0 <= s <= MAX_SCALE for s in scales):
        raise InputError(f"{rule}; got {text!r}.")
    return scales


@dataclass(frozen=True)
class SweepColumn:
    """The samples of one scale of a sweep, and what they show."""

    scale: float
    samples: torch.Tensor
    of_target: int | None  # how many are of the target class (None when their classes cannot be told)
    diversity: float  # the mean distance between two of them (`core.metrics.mean_pairwise_distance`)
    class_diversity: float | None  # the same among those of the target class (None: fewer than 2, or not told)
    seconds: float


def sweep(path, sampler, eta, steps, spacing, n, seed, trained, target, scales, method=None, both=False,
          progress=gr.Progress()):
    """(figure, Markdown): the samples of one noise guided towards ``target`` at each of ``scales`` (text, e.g.
    "0, 1, 2, 4, 8"), side by side, with how many are of the class and how varied they are: the trade-off of the
    guidance scale (Ho & Salimans 2022, Fig. 1; Dhariwal & Nichol 2021, Fig. 3). With ``both``, a row per method
    the model allows (classifier-free and classifier guidance), from the same noise and as many samples each."""
    scales = parse_scales(scales)
    job = guidance_inputs(path, sampler, eta, steps, spacing, n, seed, trained, target, scales[0], method)
    jobs = [job]
    if both:
        others = [m for m in method_choices(path) if m != job.method]
        jobs += [guidance_inputs(path, sampler, eta, steps, spacing, n, seed, trained, target, scales[0], m)
                 for m in others]
        jobs = [replace(j, n=min(j.n for j in jobs)) for j in jobs]  # classifier guidance takes fewer images
    if jobs[0].n < 2:
        raise InputError("A sweep compares how varied the samples are: ask for at least 2.")
    rows, judge, done = [], None, 0
    for row_job in jobs:
        columns = []
        for scale in scales:
            progress(done / (len(jobs) * len(scales)),
                     desc=f"Sampling guided towards {job.target} ({row_job.method}) with s = {scale:g}")
            done += 1
            column, judge = sweep_column(rescaled(row_job, scale))
            columns.append(column)
        rows.append((row_job.method, columns))
    labels = [f"s = {c.scale:g}" + ("" if c.of_target is None or len(rows) > 1 else f" · {c.of_target:,} of {job.n:,}")
              for c in rows[0][1]]
    row_labels = [GUIDANCE_LABELS[m] if len(rows) > 1 else "" for m, _ in rows]
    if job.checkpoint.data.kind == "2d":
        cells = [[c.samples.numpy() for c in columns] for _, columns in rows]
        figure = panel_grid.noised_grid_figure(cells, row_labels, labels, kind="points", cell_px=260,
                                               reference=reference_points(job.unguided))
    else:
        nrow = grid_columns(jobs[0].n)
        cells = [[image_grid(c.samples, nrow) for c in columns] for _, columns in rows]
        figure = panel_grid.noised_grid_figure(cells, row_labels, labels, kind="images", cell_px=260)
    return figure, sweep_markdown(jobs[0], rows, judge) + untrained_null_warning(job.checkpoint, [m for m, _ in rows])


def sweep_column(job: Guidance) -> tuple[SweepColumn, str | None]:
    """The samples of one scale of a sweep and what they show; and how their classes were told (None: they cannot
    be)."""
    samples, seconds = _samples(job.checkpoint, job)
    read = read_classes(job.checkpoint.data, samples)
    space = diversity_space(job.checkpoint.data, samples)
    if read is None:
        return SweepColumn(job.scale, samples, None, mean_pairwise_distance(space), None, seconds), None
    of_class = space[[c == job.target for c in read[0]]]
    within = mean_pairwise_distance(of_class) if len(of_class) > 1 else None
    return SweepColumn(job.scale, samples, read[0].count(job.target), mean_pairwise_distance(space), within,
                       seconds), read[1]


def diversity_space(data, samples: torch.Tensor) -> torch.Tensor:
    """Where a sweep measures how varied the samples are: images in the feature space of their data's shipped
    classifier (that of the FID ratio) when there is one (`DIVERSITY_SPACES`), else as they are (points, pixels)."""
    return load_classifier(data.name).features(samples) if space_of(data) == "features" else samples


DIVERSITY_SPACES = {"features": "in the feature space of the shipped classifier (that of the FID ratio)",
                    "pixels": "in pixels", "points": "in the model's coordinates"}


def space_of(data) -> str:
    """The key of `DIVERSITY_SPACES` where a sweep on ``data`` measures diversity."""
    if data.kind != "image":
        return "points"
    return "features" if data.name in shipped_classifiers() else "pixels"


def sweep_markdown(job: Guidance, rows: list[tuple[GuidanceMethod, list[SweepColumn]]], judge: str | None) -> str:
    """The sweep's table: per method and scale, the samples of the class (told ``judge``, e.g. "nearest the centre
    of"; None when classes cannot be told), their diversity, all of them and those of the class, and the time."""
    T = job.checkpoint.schedule.T
    chain = describe_steps(number_of_steps(T, job.choice.steps, job.choice.method), T, job.choice.spacing)
    space = DIVERSITY_SPACES[space_of(job.checkpoint.data)]
    target = html.escape(job.target)
    how = " and ".join(GUIDANCE_LABELS[m] for m, _ in rows)
    lines = [f"{runs.bold_name(job.checkpoint.path)} · {how} towards **{target}** · "
             f"{model_label(job.checkpoint, job.choice, False)}, {chain} · {job.n:,} samples from the same noise at "
             "each scale.", "",
             f"| guide | s | samples {judge or 'of the class'} {target} | diversity of all | diversity of those of "
             f"{target} | time |", "|---|---|---|---|---|---|"]
    for method, columns in rows:
        for c in columns:
            share = "–" if c.of_target is None else f"{c.of_target:,} of {job.n:,}"
            within = "–" if c.class_diversity is None else f"{c.class_diversity:.3g}"
            took = formulas.seconds_text(c.seconds)
            lines.append(f"| {method} | {c.scale:g} | {share} | {c.diversity:.3g} | {within} | {took} |")
    lines += ["", f"Diversity: the mean distance between two samples, {space}. Raising s buys samples of the class, "
                  "usually at the cost of variety, even among those that were of the class unguided: the trade of "
                  "diversity for fidelity (Ho & Salimans 2022). Past some scale nothing more is gained and the model's "
                  "errors are amplified (classifier-free: s − 1 times the learnt ε̂(x_t, t, y) − ε̂(x_t, t, ∅); "
                  "classifier guidance: a classifier convinced by strokes that do not make the class), so samples may "
                  "stray instead of narrowing."]
    if job.checkpoint.data.kind == "2d":
        counts = [(method, c.scale, figures.beyond_the_axes(c.samples)) for method, columns in rows for c in columns]
        off = [f"{method} s = {scale:g}: {n:,} of {job.n:,}" for method, scale, n in counts if n]
        if off:
            lines += ["", f"**Beyond the plots' ±{figures.POINT_RANGE[1]:g}** (counted in the table, not drawn): "
                          + "; ".join(off) + "."]
    return "\n".join(lines)


FIELD_POINTS = 1000  # training points noised to t, drawn beneath the field and where learnt and exact are compared


def guide_field(path, trained, target, t, seed=0):
    """(figure, Markdown): the guide's direction ∇ log p_t(y | x_t) towards ``target`` at step ``t``, by each method
    the model allows (`core.guidance.class_score`: classifier-free, the model's implicit classifier; classifier
    guidance, the exact classifier of a mixture or the shipped classifier on x̂₀). 2D: on a grid, over training points
    noised to t, and where both exist, how closely the learnt direction follows the exact one at those points.
    Images: as pictures, for training images noised to t (`image_field`)."""
    checkpoint = chosen_checkpoint(path, trained, False)
    data = checkpoint.data
    t = whole_number(t, "t", 1, checkpoint.schedule.T)
    seed = whole_number(seed, "Seed", 0, MAX_SEED)
    methods = guidance_methods(num_classes(checkpoint.model), data.name, data.kind)
    if not methods:
        raise InputError(f"{runs.display_name(checkpoint.path)} has no classes to steer by: train a class-conditional "
                         "model, or pick the 8 Gaussians or MNIST.")
    field = image_field if data.kind == "image" else points_field
    try:
        figure, markdown = field(checkpoint, target, t, seed, methods)
    except ValueError as err:  # e.g. a class the model does not have
        raise as_sentence(err) from None
    return figure, markdown + untrained_null_warning(checkpoint, methods)


def noised_examples(checkpoint: Checkpoint, n: int, t: int, seed: int) -> torch.Tensor:
    """n training examples noised to t, x_t = √ᾱ_t·x₀ + √(1 − ᾱ_t)·ε (seeded), on the model's device."""
    device = model_device(checkpoint)
    x0 = examples_for(checkpoint, n, seed, "The guide's field").to(device)
    generator = torch.Generator(device=device).manual_seed(seed)
    return checkpoint.schedule.q_sample(x0, t, torch.randn(x0.shape, generator=generator, device=device))


def points_field(checkpoint: Checkpoint, target: str, t: int, seed: int, methods: list[GuidanceMethod]):
    """(figure, Markdown): per method, ∇ log p_t(y | x_t) on `player.field_grid` as arrows over `FIELD_POINTS`
    training points noised to t, and with both methods how the learnt one compares with the exact one there."""
    data, schedule = checkpoint.data, checkpoint.schedule
    x_t = noised_examples(checkpoint, FIELD_POINTS, t, seed)
    grid = torch.as_tensor(field_grid(), dtype=x_t.dtype, device=x_t.device)
    scores = {m: class_score(checkpoint.model, schedule, data, target, torch.cat([grid, x_t]), t, m).cpu()
              for m in methods}  # at the grid's points, then at the noised examples
    fields = {m: score[: len(grid)].numpy() for m, score in scores.items()}
    at_data = {m: score[len(grid) :] for m, score in scores.items()}
    labels = [f"{FIELD_TITLES[m]} at t = {t:,}" for m in methods]
    figure = panel_grid.noised_grid_figure([[np.zeros((0, 2))] * len(methods)], [""], labels, kind="points", cell_px=420,
                                           reference=x_t.cpu().numpy(), arrows=[[fields[m] for m in methods]],
                                           arrow_origins=field_grid(), arrow_cap=FIELD_CAP)
    return figure, field_markdown(runs.display_name(checkpoint.path), target, t, float(schedule.alpha_bars[t]), at_data)


FIELD_TITLES = {"classifier-free": "learnt: the model's implicit classifier",
                "classifier": "exact: p_t(y | x_t) of the mixture"}
IMAGE_FIELD_TITLES = {"classifier-free": "implicit classifier", "classifier": "shipped classifier on x̂₀"}
FIELD_IMAGES = 4  # training images noised to t, one row each


# what a guided DDPM step does with ∇log p_t(y | x_t), with unclipped x̂₀ (ε̂ − s·√(1 − ᾱ_t)·∇ in the posterior
# mean); s here is the guidance scale, not the chain's next timestep
GUIDED_STEP = ("A guided DDPM step adds s·β_t/√α_t times it to the mean (s the guidance scale; Dhariwal & "
               "Nichol's Algorithm 1 writes s·Σ, Σ the step's variance, from β̃_t to β_t)")


def image_field(checkpoint: Checkpoint, target: str, t: int, seed: int, methods: list[GuidanceMethod]):
    """(figure, Markdown): for `FIELD_IMAGES` training images noised to t, x_t, the model's x̂₀ and, per method,
    ∇ log p_t(y | x_t) as a picture (grey 0; white: guidance brightens the pixel, black: darkens it; each method
    scaled to its own range), with how alike the methods' gradients are when there are two."""
    data, schedule = checkpoint.data, checkpoint.schedule
    x_t = noised_examples(checkpoint, FIELD_IMAGES, t, seed)
    steps = torch.full((len(x_t),), t, dtype=torch.long, device=x_t.device)
    with torch.inference_mode():
        x0_hat = schedule.predict_x0(x_t, steps, checkpoint.model(x_t, steps)).clamp(-1, 1)
    gradients = {m: class_score(checkpoint.model, schedule, data, target, x_t, t, m).float().cpu() for m in methods}
    shown = [x_t.cpu(), x0_hat.cpu()] + [g / g.abs().quantile(0.99).clamp_min(1e-12) for g in gradients.values()]
    cells = [[image_pixels(v[k : k + 1])[0] for v in shown] for k in range(len(x_t))]
    labels = [f"x_t (t = {t:,})", "x̂₀ of the model"] + [f"∇log p_t({target} | x_t): {IMAGE_FIELD_TITLES[m]}"
                                                          for m in methods]
    figure = panel_grid.noised_grid_figure(cells, [""] * len(cells), labels, kind="images", cell_px=150)
    lines = [f"{runs.bold_name(checkpoint.path)} · what guidance towards **{html.escape(target)}** adds at t = {t:,} "
             f"(ᾱ_t = {formulas.number(float(schedule.alpha_bars[t]))}), for {len(x_t)} training images noised to t: "
             "grey is 0, white where it brightens a pixel, black where it darkens it (each column scaled to its own "
             "range). "
             f"{GUIDED_STEP}."]
    if len(gradients) == 2:
        learnt, classifier = (gradients[m].flatten(1).double() for m in ("classifier-free", "classifier"))
        cosine = torch.nn.functional.cosine_similarity(learnt, classifier, dim=1)
        # the median of 4: the middle two's mean (`Tensor.median` gives the lower one)
        ratio = (learnt.norm(dim=1) / classifier.norm(dim=1).clamp_min(1e-12)).quantile(0.5)
        cosines = " · ".join(formulas.number(c, decimals=2) for c in cosine.tolist())
        lines.append(f"- How alike the two guides are, image by image: cosine **{cosines}** (1: the same picture, "
                     f"0: unrelated); the implicit classifier's gradient is {float(ratio):.2f}× "
                     "the shipped classifier's in length (median). Both steer towards the class, each by its own "
                     "reading of x_t.")
    return figure, "\n".join(lines)


def field_markdown(name: str, target: str, t: int, alpha_bar: float, at_data: dict[str, torch.Tensor]) -> str:
    """What the field shows, and with both methods, how the learnt gradient compares with the exact one at the
    noised training points (mean cosine, median length ratio)."""
    lines = [f"**{in_markdown(name)}** · ∇ log p_t(y | x_t) towards **{html.escape(target)}** at t = {t:,} "
             f"(ᾱ_t = {formulas.number(alpha_bar)}) · arrows show its direction, drawn no longer than the grid's "
             f"spacing; grey: {FIELD_POINTS:,} training points noised to t. {GUIDED_STEP}, so the arrows are where "
             "guidance pushes x_t at this step."]
    if len(at_data) == 2:
        learnt, exact = at_data["classifier-free"].double(), at_data["classifier"].double()
        norms = learnt.norm(dim=1), exact.norm(dim=1)
        kept = norms[1] > 1e-6 * float(norms[1].max())
        cosine = float(torch.nn.functional.cosine_similarity(learnt[kept], exact[kept], dim=1).mean())
        ratios = norms[0][kept] / norms[1][kept]
        ratio = float(ratios.quantile(0.5)) if len(ratios) else math.nan  # none kept: as `median` had given
        lines.append(f"- At the noised training points the learnt direction follows the exact one with mean cosine "
                     f"**{formulas.number(cosine, decimals=3)}** (1: the same direction), **{ratio:.2f}×** its length "
                     "(median): what classifier-free guidance gets from the model's own classes, against the classifier Dhariwal & "
                     "Nichol would have to train.")
    return "\n".join(lines)


def play(request: gr.Request, path, sampler, eta, steps, spacing, n, seed, n_frames, trained, target, scale,
         method=None, progress=gr.Progress()):
    """The guided chain in the tab's player (`reverse_tab.show_chain`)."""
    job = guidance_inputs(path, sampler, eta, steps, spacing, n, seed, trained, target, scale, method)
    n_frames = whole_number(n_frames, "Frames", MIN_FRAMES, MAX_FRAMES)
    choice = job.choice
    chain = sample_chain(job.checkpoint, method=choice.method, variance=choice.variance, eta=choice.eta,
                         steps=choice.steps, n=job.n, seed=job.seed, n_frames=n_frames, spacing=choice.spacing,
                         progress=progress)
    chain.guided_to = job.target
    # named as guided: it played as the plain model's chain, whose samples seemed to be nearly all 7s
    label = f"guided towards {html.escape(job.target)} ({job.method} guidance, s = {job.scale:g}) · {choice.label}"
    return show_chain(request, chain, job.checkpoint, replace(choice, label=label), False,
                      stem_suffix=f"-guided-{safe_name(job.target)}", progress=progress)


def build(controls: ReverseControls) -> None:
    """Lay out the panel below the Reverse tab, reading the tab's model and sampler controls."""
    with gr.Accordion("Steer towards a class: classifier and classifier-free guidance", open=False,
                      elem_id="reverse-guide"):
        gr.Markdown(
            "Bayes' rule makes an unconditional model conditional: ∇log p(x_t | y) = ∇log p(x_t) + ∇log p(y | x_t), "
            "so each step uses ε̂ − s·√(1 − ᾱ_t)·∇log p(y | x_t) (Dhariwal & Nichol 2021). **Classifier guidance** "
            "takes p(y | x_t) from a classifier: for MNIST models the shipped one, trained on clean digits, applied to "
            "the model's denoised guess x̂₀(x_t); for the 8 Gaussians the exact p_t(y | x_t) of the mixture. "
            "**Classifier-free guidance** (Ho & Salimans 2022) needs a class-conditional model, trained with its labels "
            "dropped to ∅ some of the time (p_uncond, 10 % by default) so that it also learnt ε̂(x_t, t, ∅) without "
            "them (the shipped `mnist_conditional` and `eight_gaussians_conditional`, the Train tab's Class-conditional, "
            "or `python -m core.train --conditional`): each step uses "
            "ε̂(x_t, t, ∅) + s·(ε̂(x_t, t, y) − ε̂(x_t, t, ∅)), whose difference term is −√(1 − ᾱ_t) times "
            "∇log p_t(y | x_t), the gradient of the model's own implicit classifier p_t(y | x_t) ∝ "
            "p_t(x_t | y)/p_t(x_t). The scale s means the same in both: 0 is the unconditional model, 1 Bayes' rule "
            "(the conditional model: exactly so with classifier-free guidance and the 8 Gaussians' exact classifier, "
            "approximately with a clean classifier on x̂₀), more gives less varied, more class-typical samples (Ho & "
            "Salimans' w is s − 1). Uses the model, sampler, steps, spacing, samples (at most "
            f"{MAX_GUIDED['image', 'classifier']} images under classifier guidance, "
            f"{MAX_GUIDED['image', 'classifier-free']} classifier-free, or {MAX_GUIDED['2d', 'classifier']:,} points) "
            "and seed above. **Compare scales** draws the same noise at several s side by side: fidelity to the class "
            "against diversity (**Both guides**: a row for each guide the model allows). **The guide's field** draws "
            "the direction ∇log p_t(y | x_t) that guidance adds at step t: for 2D models on a grid, learnt (classifier-free) beside exact (the 8 Gaussians' classifier); for "
            "images as a picture, on training images noised to t.")
        path = controls.checkpoint.value
        notice = gr.HTML(no_guide_notice(path))
        with gr.Row():
            method = gr.Radio([(GUIDANCE_LABELS[m], m) for m in GUIDANCE_METHODS], value=chosen_method(path),
                              label="Guide by", elem_id="reverse-guide-method",
                              info="classifier-free needs a class-conditional model")
            choices = class_choices(path)
            # custom values pass to `guide`, which names the classes that fit: an API call may name any model
            target = gr.Dropdown(choices=choices, value=chosen_class(choices), label="Class to steer towards",
                                 allow_custom_value=True)
            scale = gr.Slider(0.0, MAX_SCALE, value=DEFAULT_SCALE, step=0.5, label="Guidance scale s",
                              info="0: no guidance; 1: Bayes' rule, as exact as the guide; larger: starker")
        with gr.Row():
            guide_btn = gr.Button("Sample with and without guidance")
            play_btn = gr.Button("Play the guided chain in the player")
        with gr.Row(equal_height=True):
            scales = gr.Textbox(DEFAULT_SWEEP, label="Scales to compare", elem_id="reverse-guide-scales", scale=3,
                                info=f"2 to {MAX_SWEEP} values of s from 0 to {MAX_SCALE:g}, separated by commas")
            both = gr.Checkbox(False, label="Both guides", scale=1, elem_id="reverse-guide-both",
                               info="a row each, for models that allow both")
            sweep_btn = gr.Button("Compare scales", scale=1)
        with gr.Row():
            field_t = gr.Slider(1, checkpoint_steps(path), step=1, value=t_value(path), scale=4,
                                label="t of the guide's field: drag it", elem_id="reverse-guide-field-t")
            field_btn = gr.Button("Draw the guide's field at t", scale=1)
        plot = gr.Plot(label="Guidance", elem_id="reverse-guide-plot", visible=False)
        stats = gr.Markdown()
    c = controls
    c.checkpoint.change(model_chosen, [c.checkpoint, method, target, field_t], [method, target, field_t, notice],
                        show_progress="hidden", queue=False)
    method.input(lambda path, m, current: class_dropdown(path, current, m), [c.checkpoint, method, target], target,
                 show_progress="hidden", queue=False)
    show_when(guide_btn.click, plot)
    results_make_way(c, plot, stats)
    c.job_click(guide_btn, guide, [c.checkpoint, c.sampler, c.eta, c.steps, c.spacing, c.n, c.seed, c.trained,
                                        target, scale, method], [plot, stats])
    show_when(sweep_btn.click, plot)
    c.job_click(sweep_btn, sweep, [c.checkpoint, c.sampler, c.eta, c.steps, c.spacing, c.n, c.seed, c.trained,
                                        target, scales, method, both], [plot, stats], api_name="guidance_sweep")
    after_reset = redraw_after_release_alone(field_t, "reverse-guidance-field-redraw")  # ↺ sends no input
    for trigger in (field_btn.click, field_t.input, after_reset.click):
        show_when(trigger, plot)
    gr.on([field_btn.click, field_t.input, after_reset.click], guide_field,
          [c.checkpoint, c.trained, target, field_t, c.seed], [plot, stats], trigger_mode="always_last",
          show_progress="hidden", api_name="guide_field")
    play_in_player(c.job_click(
        play_btn, play, [c.checkpoint, c.sampler, c.eta, c.steps, c.spacing, c.n, c.seed, c.n_frames, c.trained, target, scale,
               method], c.player, api_name="play_guided"), c.player[-1])
