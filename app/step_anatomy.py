"""The Reverse tab's panel on one reverse step, taken apart: what the network is given at t, what it predicts,
and what the sampler makes of it.

Training examples x_0 are noised to a chosen t with one fixed noise ε, x_t = √ᾱ_t·x_0 + √(1 − ᾱ_t)·ε (Algorithm 1's
input), and the tab's model and sampler take one step from there (Algorithm 2's loop body,
`core.sampler.step_from_eps`): the predicted noise ε̂(x_t, t), the denoised guess x̂_0 = (x_t − √(1 − ᾱ_t)·ε̂)/√ᾱ_t
(clipped for images), and x_s for the sampler's next timestep s. Side by side with x_0 and ε, they show the
training objective at work (ε̂ against ε: their mean squared difference is the loss L_simple at this t) and how a
step moves x_t towards x̂_0. The noise is held fixed while t is dragged, as in the Forward tab.
"""

from __future__ import annotations

import math

import gradio as gr
import numpy as np
import torch

from app import figures, formulas, panel_grid, runs
from app.controls import MAX_SEED, redraw_after_release_alone, show_when, whole_number
from app.errors import InputError
from app.images import image_pixels
from app.reverse_tab import (
    DIVERGED, ReverseControls, SamplerChoice, checkpoint_steps, examples_for, model_and_sampler, model_device,
    model_label, read_samples, reference_points, results_make_way, step_within,
)
from core.checkpoints import Checkpoint
from core.prediction import EPS_FROM_PREDICTION, PREDICTION_SYMBOLS, error_to_eps, unwrap
from core.sampler import chain_timesteps, plan_steps, step_from_eps

EXAMPLES = {"2d": 1000, "image": 4}  # training examples taken apart (images: one row each)
ERROR_FACTOR = {"x0": "SNR_t", "v": "ᾱ_t"}  # core.prediction.error_to_eps
NOISE_SHOWN = 3.0  # images: ε and ε̂ are shown divided by this, to fit [−1, 1] (x_t, x̂_0, x_s and the error are not)
# What the panels show, said above the numbers: the plot's label had said "over the training data in grey" for images
# too, and nothing said that the error column is drawn 3× larger than the ε and ε̂ beside it.
PICTURES_KEY = {
    "2d": "Each point is coloured by the angle of its x₀, to be followed from panel to panel, over the training "
          "data in grey.",
    "image": f"Mid-grey is 0 in every picture; ε and ε̂ are drawn ÷{NOISE_SHOWN:g} to fit, the error ε − ε̂ at its own "
             "size (×1).",
}
DEFAULT_SHARE = 0.5  # the t first shown, as a share of T
IMAGE_COLUMNS = ["x₀ (example)", f"ε (÷{NOISE_SHOWN:g})", "x_t", f"ε̂ predicted (÷{NOISE_SHOWN:g})", "ε − ε̂ (×1)",
                 "x̂₀ predicted", "x_s (one step)"]
# on a phone, where the titles above would be 8 px
# px of the window kept for what must be on view with the image grid: its slider and the plot's label above it
ON_VIEW_WITH_THE_GRID = 150
SHORT_IMAGE_COLUMNS = ["x₀", f"ε ÷{NOISE_SHOWN:g}", "x_t", f"ε̂ ÷{NOISE_SHOWN:g}", "ε − ε̂ ×1", "x̂₀", "x_s"]
POINT_COLUMNS = ["x₀ (examples)", "x_t", "x̂₀ predicted", "x_s (one step)"]


def next_timestep(checkpoint: Checkpoint, choice: SamplerChoice, t: int) -> int:
    """The timestep the sampler steps to from t: the largest of its chain's timesteps below t (0 after the last)."""
    ts = chain_timesteps(checkpoint.schedule, choice.steps, choice.method, choice.spacing)  # type: ignore[arg-type]
    return max((s for s in ts if s < t), default=0)


def take_apart(checkpoint: Checkpoint, choice: SamplerChoice, t: int, seed: int) -> dict[str, torch.Tensor | int]:
    """One step from training examples noised to t: x0, eps, x_t, eps_hat, x0_hat, x_s (CPU float32) and s."""
    kind = checkpoint.data.kind
    x0 = examples_for(checkpoint, EXAMPLES[kind], seed, "Taking a step apart").to(model_device(checkpoint))
    generator = torch.Generator(device=x0.device).manual_seed(seed)
    eps = torch.randn(x0.shape, generator=generator, device=x0.device)
    x_t = checkpoint.schedule.q_sample(x0, t, eps)
    s = next_timestep(checkpoint, choice, t)
    step = plan_steps(checkpoint.schedule, [t, s] if s > 0 else [t], choice.method,  # type: ignore[arg-type]
                      choice.variance, choice.eta)[0]  # type: ignore[arg-type]
    with torch.inference_mode():
        # ε̂ as the network predicts it: its error against ε is the loss L_simple. With images the step goes on from
        # x̂_0 clipped to [−1, 1] and the ε̂ that implies, which is closer to ε (the loss shown was 0.0000 at t = T).
        eps_hat = checkpoint.model(x_t, torch.full((len(x_t),), t, dtype=torch.long, device=x_t.device))
        x_s, x0_hat, _ = step_from_eps(x_t, eps_hat, step, choice.method,  # type: ignore[arg-type]
                                       checkpoint.data.clip_x0, generator)
    parts = {"x0": x0, "eps": eps, "x_t": x_t, "eps_hat": eps_hat, "x0_hat": x0_hat, "x_s": x_s}
    if not all(torch.isfinite(v).all() for v in parts.values()):
        raise InputError(DIVERGED)
    return {k: v.float().cpu() for k, v in parts.items()} | {"s": s}


def anatomy_figure(parts: dict, kind: str, reference: np.ndarray | None):
    """Images: one row per example, x₀ · ε · x_t · ε̂ · ε − ε̂ · x̂₀ · x_s; points: x₀ · x_t · x̂₀ · x_s, each point
    coloured by the angle of its x₀ (to be followed from panel to panel), over the training data in grey."""
    if kind == "image":
        shown = [parts["x0"], parts["eps"] / NOISE_SHOWN, parts["x_t"], parts["eps_hat"] / NOISE_SHOWN,
                 parts["eps"] - parts["eps_hat"], parts["x0_hat"], parts["x_s"]]
        cells = [[image_pixels(v[k : k + 1])[0] for v in shown] for k in range(len(parts["x0"]))]
        return panel_grid.noised_grid_figure(cells, [""] * len(cells), IMAGE_COLUMNS, kind="images", cell_px=120,
                                             short_titles=SHORT_IMAGE_COLUMNS, window_less_px=ON_VIEW_WITH_THE_GRID)
    cells = [[parts[k].numpy() for k in ("x0", "x_t", "x0_hat", "x_s")]]
    # pictures, not scatter traces: the figure is redrawn at every step of a drag of t
    return panel_grid.noised_grid_figure(cells, [""], POINT_COLUMNS, kind="points", cell_px=260,
                                         point_hues=figures.angle_hues(cells[0][0]), reference=reference,
                                         points_as_pictures=True)


def off_plot(points: torch.Tensor, name: str) -> str:
    """2D: ", N of M {name} lie beyond the plot's ±4" for points the figure cannot show (an ε network's x̂₀ at
    large t can land tens of units away), else ""."""
    off = figures.beyond_the_axes(points)
    return f", **{off:,} of {len(points):,} {name} lie beyond the plot's ±{figures.POINT_RANGE[1]:g}**" if off else ""


FAINT_NOISE = 0.1  # √(1 − ᾱ_t) below this: ε is a faint part of x_t, and ε̂'s error says little about x̂₀


def faint_noise_note(alpha_bar: float) -> str:
    """At small t the noise is hard to predict yet matters little: why ε̂'s error can be about 1 while x̂₀ is close."""
    scale = math.sqrt(1 - alpha_bar)
    if scale >= FAINT_NOISE:
        return ""
    return (f" At this t, ε moves x_t by only √(1 − ᾱ_t) = {formulas.number(scale)} of its size: it is hard to tell "
            "apart from the data, so ε̂ can be far off, yet x̂₀ = (x_t − √(1 − ᾱ_t)·ε̂)/√ᾱ_t moves by that same small "
            "factor (next line).")


def anatomy_markdown(checkpoint: Checkpoint, choice: SamplerChoice, ideal: bool, parts: dict, t: int) -> str:
    """The step in numbers: the network's error on the noise (the loss at t), x̂₀'s distance to x₀, the step's
    formula, and for images what the shipped classifier reads in x̂₀."""
    schedule, s = checkpoint.schedule, int(parts["s"])
    alpha_bar = float(schedule.alpha_bars[t])
    loss = float((parts["eps"] - parts["eps_hat"]).pow(2).mean())
    miss = float((parts["x0_hat"] - parts["x0"]).pow(2).mean().sqrt())
    unit = "coordinate" if checkpoint.data.kind == "2d" else "pixel"
    note = formulas.reverse_notes(schedule, [t, s, 0] if s > 0 else [t, 0], [0], method=choice.method,
                                  variance=choice.variance, eta=choice.eta)[0]
    predicts = "eps" if ideal else unwrap(checkpoint.model)[1]
    lines = [
        f"{runs.bold_name(checkpoint.path)} · {model_label(checkpoint, choice, ideal)} · {len(parts['x0']):,} "
        f"training examples noised to **t = {t}** of {schedule.T} (ᾱ_t = {formulas.number(alpha_bar)}, "
        f"SNR {formulas.number(alpha_bar / (1 - alpha_bar))}), with one noise ε held fixed while t changes. "
        + PICTURES_KEY[checkpoint.data.kind],
        f"- **ε̂ against ε**: mean squared difference **{formulas.number(loss)}** per {unit}, "
        + ("the plain loss L_simple at this t" if predicts == "eps" else "what L_simple would be at this t")
        + " (0: the noise found exactly; predicting ε̂ = 0 would score about 1"
        + ("; a Min-SNR-γ run weights it by min(SNR_t, γ)/SNR_t)." if predicts == "eps" else ").")
        + faint_noise_note(alpha_bar),
        f"- **x̂₀ against x₀**: root-mean-square difference {miss:.3f} per {unit}"
        + (off_plot(parts["x0_hat"], "x̂₀") if checkpoint.data.kind == "2d" else " (x̂₀ clipped to [−1, 1])") + ".",
        f"- **The step**: {note}" + (", z ~ N(0, I)" if "·z" in note else "")
        + ("" if s else " (the last step: x̂₀ itself)") + ".",
    ]
    if predicts != "eps":
        own = loss / float(error_to_eps(schedule, predicts)[t])
        lines.insert(2, f"- **This network predicts {PREDICTION_SYMBOLS[predicts]}**, not ε: "
                        f"{EPS_FROM_PREDICTION[predicts]}. Its own error at this t, on the target it learns, is "
                        f"**{formulas.number(own)}** per {unit} (‖ε − ε̂‖² = {ERROR_FACTOR[predicts]} times it).")
    if checkpoint.data.kind == "image":
        before, after = read_samples(parts["x0"], checkpoint.data.name), read_samples(parts["x0_hat"],
                                                                                      checkpoint.data.name)
        if before is not None and after is not None:
            lines.append(f"- The shipped classifier reads the class of the example in {before.agreement(after)} of "
                         f"{len(parts['x0'])} x̂₀.")
    return "\n".join(lines)


def show_step(path, t, sampler, eta, steps, spacing, seed, ideal, trained):
    """(figure, Markdown): one step from training examples noised to t, taken apart."""
    checkpoint, choice = model_and_sampler(path, trained, ideal, sampler, eta, steps, spacing)
    t = whole_number(t, "t", 1, checkpoint.schedule.T)
    seed = whole_number(seed, "Seed", 0, MAX_SEED)
    parts = take_apart(checkpoint, choice, t, seed)
    figure = anatomy_figure(parts, checkpoint.data.kind, reference_points(checkpoint))
    return figure, anatomy_markdown(checkpoint, choice, ideal, parts, t)


def t_value(path, current=None) -> int:
    """The t to show for the checkpoint at ``path``: ``current`` when it lies in 1..T, else T/2."""
    return step_within(checkpoint_steps(path), current, DEFAULT_SHARE)


def t_slider(path, current=None) -> gr.Slider:
    """The t slider for the checkpoint at ``path``: 1..T, at `t_value`."""
    return gr.Slider(minimum=1, maximum=checkpoint_steps(path), value=t_value(path, current))


def build(controls: ReverseControls) -> None:
    """Lay out the panel below the Reverse tab, reading the tab's checkpoint, sampler, seed and ideal-denoiser box."""
    c = controls
    with gr.Accordion("Anatomy of one step: what the network is given at t, and what it predicts", open=False,
                      elem_id="reverse-anatomy") as box:
        gr.Markdown(
            "Training examples x₀ noised to t with one noise ε, x_t = √ᾱ_t·x₀ + √(1 − ᾱ_t)·ε, as in training "
            "(Algorithm 1), then one step of the sampler above from there (Algorithm 2): the network's ε̂, the "
            "denoised guess x̂₀ = (x_t − √(1 − ᾱ_t)·ε̂)/√ᾱ_t, and x_s at the sampler's next step s. ε̂ against ε is "
            "what training fits (for images shown side by side; for points, the number under the figure). Drag t: "
            "ε stays the same. Uses the model, sampler, seed and ideal-denoiser box "
            f"above, on {EXAMPLES['image']} images or {EXAMPLES['2d']:,} points (coloured by where their x₀ is).")
        with gr.Row():
            t = gr.Slider(1, checkpoint_steps(c.checkpoint.value), step=1, label="t",
                          value=t_value(c.checkpoint.value), scale=4)
            show_btn = gr.Button("Take step t apart", scale=1)
        plot = gr.Plot(label="One reverse step, taken apart (what its pictures show: first line below)",
                       elem_id="reverse-anatomy-plot", visible=False)
        stats = gr.Markdown()
    results_make_way(c, plot, stats)
    c.checkpoint.change(t_slider, [c.checkpoint, t], t, show_progress="hidden", queue=False)
    after_reset = redraw_after_release_alone(t, "reverse-anatomy-redraw")  # ↺ sends no input
    # drawn as the panel opens too: opened, it had stood empty until its button was found
    for trigger in (box.expand, show_btn.click, t.input, after_reset.click):
        show_when(trigger, plot)
    gr.on([box.expand, show_btn.click, t.input, after_reset.click], show_step,
          [c.checkpoint, t, c.sampler, c.eta, c.steps, c.spacing, c.seed, c.ideal, c.trained], [plot, stats],
          trigger_mode="always_last", show_progress="hidden", api_name="show_step")
