"""The Reverse tab's panel on inpainting (`core.inpaint`): fill in the hidden part of training examples with the
tab's unconditional model and sampler, by the replacement method alone (U = 1) and with RePaint's resampling
(U rounds per step), side by side, from the same noise."""

from __future__ import annotations

import html
import time

import gradio as gr
import torch

from app import figures, runs
from app.controls import whole_number
from app.images import image_grid
from app.reverse_tab import (
    MAX_SAMPLES, REFERENCE_POINTS, ReverseControls, SamplerChoice, data_kind, examples_for, grid_columns, model_and_sampler,
    model_device, model_label, read_samples,
)
from core.checkpoints import Checkpoint
from core.inpaint import IMAGE_MASKS, POINT_MASKS, iter_inpaint, known_mask
from core.metrics import copy_fraction
from core.sampler import describe_steps, number_of_steps

MAX_INPAINTED = {"2d": 1000, "image": 16}  # examples filled in at most
DEFAULT_ROUNDS = 5
MAX_ROUNDS = 20
ON_DATA_RADIUS = 0.05  # 2D: a completed point this close to a training point lies on the data (model units)
ON_DATA_REFERENCE = 10_000  # 2D: training points the completions are measured against
HIDDEN_COLOUR = torch.tensor([-0.22, 0.17, 0.86])  # hidden pixels are shown cornflower blue (RGB in [−1, 1])
DIVERGED = "The model produced NaN or infinite values (was its training diverging?)."


def mask_choices(kind: str | None) -> list[tuple[str, str]]:
    """What can be kept known for data of ``kind``: (label, mask name) pairs of `core.inpaint`'s masks."""
    masks = POINT_MASKS if kind == "2d" else IMAGE_MASKS
    return [(label, name) for name, label in masks.items()]


def mask_dropdown(path, current=None) -> gr.Dropdown:
    """The mask choices for the checkpoint at ``path``, keeping ``current`` when it fits."""
    choices = mask_choices(data_kind(path))
    names = [name for _, name in choices]
    return gr.Dropdown(choices=choices, value=current if current in names else names[0])


def shown_hidden(examples: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """Images (B, C, H, W) in [−1, 1] as RGB, their hidden pixels painted `HIDDEN_COLOUR`."""
    rgb = examples.expand(-1, 3, -1, -1) if examples.shape[1] == 1 else examples
    hidden = ~known[:, :1].expand(len(examples), 3, -1, -1)
    return torch.where(hidden, HIDDEN_COLOUR.view(1, 3, 1, 1).to(examples), rgb)


def fill_in(path, sampler, eta, steps, spacing, n, seed, ideal, trained, mask_name, rounds, progress=gr.Progress()):
    """(figure, Markdown): n training examples with the ``mask_name`` part kept, the rest filled in by the
    replacement method (U = 1) and with ``rounds`` resampling rounds per step, from the same seed."""
    checkpoint, choice = model_and_sampler(path, trained, ideal, sampler, eta, steps, spacing)
    kind = checkpoint.data.kind
    masks = POINT_MASKS if kind == "2d" else IMAGE_MASKS
    if mask_name not in masks:
        raise gr.Error(f"Choose what is known from the list: for this model one of {', '.join(masks.values())}.")
    n = min(whole_number(n, "Number of samples", 2, MAX_SAMPLES[kind]), MAX_INPAINTED[kind])
    seed = whole_number(seed, "Seed", 0, 2**31 - 1)
    rounds = whole_number(rounds, "Resampling rounds", 1, MAX_ROUNDS)
    device = model_device(checkpoint)
    examples = examples_for(checkpoint, n, seed, "Inpainting").to(device)
    known = known_mask(mask_name, tuple(checkpoint.data.shape), seed=seed).to(device)
    chain_steps = number_of_steps(checkpoint.schedule.T, choice.steps, choice.method)
    plans = sorted({1, rounds})
    total, done = sum(plans) * chain_steps, 0
    completions, seconds = {}, {}
    for u in plans:
        start = time.perf_counter()
        options = dict(method=choice.method, steps=choice.steps, eta=choice.eta, variance=choice.variance,
                       spacing=choice.spacing, clip_x0=checkpoint.data.clip_x0, resample=u,
                       generator=torch.Generator(device=device).manual_seed(seed))
        with torch.inference_mode():
            for record in iter_inpaint(checkpoint.model, checkpoint.schedule, examples, known, **options):
                done += u
                if record.index % 10 == 0:
                    progress(done / total, desc="Filling in: replacement only" if u == 1
                             else f"Filling in: {u} rounds per step")
        completions[u], seconds[u] = record.x_prev.float().cpu(), time.perf_counter() - start
        if not torch.isfinite(completions[u]).all():
            raise gr.Error(DIVERGED)
    examples, known = examples.float().cpu(), known.cpu()
    labels = ["x₀: training examples"] + [column_label(u) for u in plans]
    reference = None
    if kind == "2d":
        draw = checkpoint.data_sampler()
        reference = None if draw is None else draw(ON_DATA_REFERENCE, 1_000_003)
        figure = figures.noised_grid_figure([[examples.numpy()] + [completions[u].numpy() for u in plans]], [""], labels,
                                            kind="points", cell_px=300,
                                            reference=None if reference is None else reference[:REFERENCE_POINTS].numpy())
    else:
        nrow = grid_columns(n)
        grids = [image_grid(examples, nrow), image_grid(shown_hidden(examples, known), nrow)]
        grids += [image_grid(completions[u], nrow) for u in plans]
        labels.insert(1, "known (hidden in blue)")
        figure = figures.noised_grid_figure([grids], [""], labels, kind="images", cell_px=260)
    return figure, fill_in_markdown(checkpoint, choice, ideal, mask_name, examples, known, completions, seconds, reference)


def column_label(rounds: int) -> str:
    return "replacement (U = 1)" if rounds == 1 else f"resampled (U = {rounds})"


def fill_in_markdown(checkpoint: Checkpoint, choice: SamplerChoice, ideal: bool, mask_name: str, examples: torch.Tensor,
                     known: torch.Tensor, completions: dict[int, torch.Tensor], seconds: dict[int, float],
                     reference: torch.Tensor | None) -> str:
    """What the inpainting made of the examples, for each number of rounds: for images the difference in the hidden
    part and the classifier's reading (MNIST); for 2D how many completions lie on the data (the difference to the
    example says little there: a swiss roll's x has several y on the roll)."""
    n, kind = len(examples), checkpoint.data.kind
    T = checkpoint.schedule.T
    chain = describe_steps(number_of_steps(T, choice.steps, choice.method), T, choice.spacing)
    masks = POINT_MASKS if kind == "2d" else IMAGE_MASKS
    timing = ", ".join(f"{column_label(u)} in {s:.1f} s" for u, s in seconds.items())
    lines = [f"**{html.escape(checkpoint.name)}** · {model_label(checkpoint, choice, ideal)}, {chain} · {n} training "
             f"examples, known: {masks[mask_name]} · {timing}."]
    if reference is not None:
        on_data = {u: copy_fraction(c, reference, ON_DATA_RADIUS) for u, c in completions.items()}
        baseline = copy_fraction(examples, reference, ON_DATA_RADIUS)
        lines.append(f"- On the data (within {ON_DATA_RADIUS} of one of {len(reference):,} training points): "
                     + ", ".join(f"{column_label(u)} **{share:.0%}**" for u, share in on_data.items())
                     + f"; the examples themselves {baseline:.0%}.")
    if kind == "image":
        hidden = ~known.expand_as(examples)
        rms = {u: float((c - examples)[hidden].pow(2).mean().sqrt()) for u, c in completions.items()}
        lines.append("- Root-mean-square difference to the examples in the hidden part: "
                     + ", ".join(f"{column_label(u)} **{r:.3f}**" for u, r in rms.items())
                     + " per pixel (many completions fit; the more the known part tells, the closer they come).")
        before = read_samples(examples, checkpoint.data.name)
        if before is not None:
            kept = {u: sum(a == b for a, b in zip(before.labels, read_samples(c, checkpoint.data.name).labels))
                    for u, c in completions.items()}
            lines.append("- The shipped classifier reads the same class as in the example: "
                         + ", ".join(f"{column_label(u)} **{k} of {n}**" for u, k in kept.items()) + ".")
    return "\n".join(lines)


def build(controls: ReverseControls) -> None:
    """Lay out the panel below the Reverse tab, reading the tab's model and sampler controls."""
    kind = data_kind(controls.checkpoint.value)
    with gr.Accordion("Fill in the missing part: inpainting with an unconditional model (RePaint)", open=False,
                      elem_id="reverse-inpaint"):
        gr.Markdown(
            "The model was trained on whole examples only, yet it can complete a part: at each step t → s the "
            "known part of x_s is replaced by the example noised to s, and the sampler draws the rest. This "
            "**replacement** alone falls short: the drawn part sees the known part only through its noise, which "
            "hides it while t is large, and by the time it shows, the chain hardly moves. RePaint (Lugmayr et al. "
            "2022) **resamples**: it noises x_s back to t and takes the step again, U rounds in all, so that the "
            "drawn part settles against the known one (U times the cost). Both run from the same noise, with the "
            f"model, sampler, steps, spacing, samples (at most {MAX_INPAINTED['image']} images or "
            f"{MAX_INPAINTED['2d']:,} points) and seed above.")
        with gr.Row():
            # custom values pass to `fill_in`, which names the masks that fit the model: the choices shown are those
            # of the model chosen in this browser, while an API call may name any model
            mask = gr.Dropdown(choices=mask_choices(kind), value=mask_choices(kind)[0][1], label="Known part",
                               info="images: which pixels are kept; 2D: which coordinate of each point",
                               allow_custom_value=True)
            rounds = gr.Slider(1, MAX_ROUNDS, value=DEFAULT_ROUNDS, step=1, label="Resampling rounds per step (U)",
                               info="1: the replacement alone")
        fill_btn = gr.Button("Fill in the hidden part")
        plot = gr.Plot(label="Inpainting: replacement against resampling", elem_id="reverse-inpaint-plot")
        stats = gr.Markdown()
    c = controls
    c.checkpoint.change(mask_dropdown, [c.checkpoint, mask], mask, show_progress="hidden", queue=False)
    fill_btn.click(fill_in, [c.checkpoint, c.sampler, c.eta, c.steps, c.spacing, c.n, c.seed, c.ideal, c.trained, mask,
                             rounds], [plot, stats],
                   concurrency_id=runs.HEAVY_CONCURRENCY_ID, concurrency_limit=runs.heavy_concurrency(),
                   show_progress="minimal")
