"""The Reverse tab's panel on the variational bound (`core.elbo`, Ho et al. 2020 eq. 5): how many nats (or bits) per
dimension the model needs for its training data, −log p_θ(x_0) ≤ L_T + Σ L_{t−1} + L_0, term by term over t, for
both reverse variances of the DDPM sampler, σ² = β̃_t and σ² = β_t."""

from __future__ import annotations

import math
import time

import gradio as gr
import torch

from app import figures, formulas, runs
from app.controls import MAX_SEED, show_when, whole_number
from app.as_written import in_markdown
from app.errors import InputError
from app.reverse_tab import (
    DIVERGED, ReverseControls, chosen_checkpoint, examples_for, model_device, results_make_way, sample_count,
)
from core.elbo import VARIANCES, Bound, Variance, variational_bounds

MAX_EXAMPLES = {"2d": 1000, "image": 64}  # training examples the bound is measured on, at most
IMAGE_TERMS = 100  # images: an unbiased estimate from at most this many of the T − 1 terms (2D: all of them)
EARLY_STEPS = 10  # the share of the denoising terms from t ≤ this is reported
VARIANCE_LABELS: dict[Variance, str] = {"small": "σ² = β̃_t", "large": "σ² = β_t"}


def measure_bound(path, n, seed, ideal, trained, progress=gr.Progress()):
    """(figure, Markdown): the bound of the tab's model on n of its training examples."""
    checkpoint = chosen_checkpoint(path, trained, ideal)
    kind = checkpoint.data.kind
    n = sample_count(n, checkpoint, 1, MAX_EXAMPLES)
    seed = whole_number(seed, "Seed", 0, MAX_SEED)
    examples = examples_for(checkpoint, n, seed, "The bound").to(model_device(checkpoint))
    progress(0.1, desc="Measuring the terms of the bound")
    start = time.perf_counter()
    bounds = variational_bounds(checkpoint.model, checkpoint.schedule, examples, n_t=None if kind == "2d" else IMAGE_TERMS,
                                discrete=kind == "image", clip_x0=checkpoint.data.clip_x0,
                                generator=torch.Generator(device=examples.device).manual_seed(seed))
    seconds = time.perf_counter() - start
    if not all(math.isfinite(bound.total) for bound in bounds.values()):
        raise InputError(DIVERGED)
    figure = figures.bound_terms_figure(bounds["small"].ts, {VARIANCE_LABELS[v]: bounds[v].terms for v in VARIANCES})
    name = runs.display_name(checkpoint.path)
    return figure, bound_markdown(name, bounds, kind, n, seconds, checkpoint.schedule.T, ideal)


def fixed(value: float) -> str:
    """Three decimals, with the minus sign (−3.207) as the rest of the app writes it, not a hyphen."""
    return f"{value:.3f}".replace("-", "−")


def early_share(bound: Bound) -> float:
    """The share of Σ L_{t−1} that comes from t ≤ `EARLY_STEPS`."""
    early = sum(w * v for t, w, v in zip(bound.ts, bound.weights, bound.terms) if t <= EARLY_STEPS)
    return early / bound.diffusion if bound.diffusion > 0 else float("nan")


def bound_markdown(name: str, bounds: dict[Variance, Bound], kind: str, n: int, seconds: float, T: int,
                   ideal: bool) -> str:
    """The bound's parts as a table, one column per reverse variance."""
    small = bounds["small"]
    every = "the one term" if len(small.ts) == 1 else f"all {len(small.ts)} terms"
    measured = (f"{every} L<sub>t−1</sub>" if small.weights == [1] * len(small.ts)
                else f"an unbiased estimate of Σ L<sub>t−1</sub> from {len(small.ts)} of its {T - 1} terms")
    unit = ("per dimension, here a pixel of a 256-level image (the decoder L₀ gives each level's bin its probability)"
            if kind == "image" else "per dimension, here a coordinate of a point: a density in the model's units (a "
                                    "density can exceed 1: L₀ and the total can be negative)")
    model = "the ideal denoiser of its training examples" if ideal else "its network"
    header = "| | " + " | ".join(VARIANCE_LABELS[v] for v in VARIANCES) + " |"
    rows = [
        ("L<sub>T</sub> (prior: x<sub>T</sub> against N(0, I))", lambda b: f"{b.prior:.2g}"),
        ("Σ L<sub>t−1</sub> (denoising)", lambda b: fixed(b.diffusion)),
        (f"… of it from t ≤ {EARLY_STEPS}", lambda b: f"{early_share(b):.0%}"),
        ("L₀ (decoder)", lambda b: fixed(b.decoder)),
        ("**total, nats per dimension**", lambda b: f"**{fixed(b.total)}**"),
        ("**total, bits per dimension**", lambda b: f"**{fixed(b.bits_per_dim)}**"),
    ]
    table = [header, "|---|" + "---|" * len(VARIANCES)] + [
        f"| {label} | " + " | ".join(cell(bounds[v]) for v in VARIANCES) + " |" for label, cell in rows]
    better = min(VARIANCES, key=lambda v: bounds[v].total)
    return (
        f"**{in_markdown(name)}** ({model}) on {n:,} training examples · {measured} · {formulas.seconds_text(seconds)}. "
        f"Nats {unit}. The tighter bound here: **{VARIANCE_LABELS[better]}**.\n\n" + "\n".join(table)
    )


def build(controls: ReverseControls) -> None:
    """Lay out the panel below the Reverse tab, reading the tab's checkpoint, samples, seed and ideal-denoiser box."""
    with gr.Accordion("How likely is the data? The variational bound (ELBO)", open=False, elem_id="reverse-bound"):
        gr.Markdown(
            "−log p<sub>θ</sub>(x₀) ≤ L<sub>T</sub> + Σ<sub>t</sub> L<sub>t−1</sub> + L₀ (Ho et al. 2020, eq. 5): the "
            "prior's mismatch, one KL divergence per reverse step between the true posterior "
            "q(x<sub>t−1</sub> | x<sub>t</sub>, x₀) and the model's step, and the decoder. Each L<sub>t−1</sub> is the "
            "training loss ‖ε − ε̂‖² at t with the weight β<sub>t</sub>²/(2σ<sub>t</sub>²α<sub>t</sub>(1 − ᾱ<sub>t</sub>)) "
            "that the plain loss drops; with σ<sub>t</sub>² = β<sub>t</sub> it also holds a constant "
            "½(log(β<sub>t</sub>/β̃<sub>t</sub>) + β̃<sub>t</sub>/β<sub>t</sub> − 1) per dimension, the two variances' "
            "mismatch, which no model lowers (σ<sub>t</sub>² = β<sub>t</sub> can still give the tighter bound: its wider "
            "steps forgive errors of the mean). Measured on as many of the model's training examples as the "
            f"<b>Samples</b> box above says (up to {MAX_EXAMPLES['2d']:,} points or {MAX_EXAMPLES['image']} images) for "
            f"both reverse variances of the DDPM sampler; for images from at most {IMAGE_TERMS} of the terms (81 at "
            "T = 1000; more of them at small t, where they are large).")
        measure_btn = gr.Button("Measure the bound")
        plot = gr.Plot(label="The bound's terms, one per reverse step t", elem_id="reverse-bound-plot", visible=False)
        stats = gr.Markdown()
    c = controls
    show_when(measure_btn.click, plot)
    results_make_way(c, plot, stats)
    c.job_click(measure_btn, measure_bound, [c.checkpoint, c.n, c.seed, c.ideal, c.trained], [plot, stats])
