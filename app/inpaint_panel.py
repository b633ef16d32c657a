"""The Reverse tab's panel on inpainting (`core.inpaint`): fill in the hidden part of training examples with the
tab's unconditional model and sampler, by the replacement method alone (U = 1) and with RePaint's resampling
(U rounds per step), side by side, from the same noise; and play the resampled chain in the tab's player."""

from __future__ import annotations

import time
from dataclasses import dataclass

import gradio as gr
import torch

from app import formulas, panel_grid, runs
from app.checkpoint_access import kept_with_seconds
from app.controls import MAX_SEED, show_when, whole_number
from app.errors import InputError
from app.images import image_grid, paint_hidden
from app.own_points import box_reader, read_box, select_brush_js
from app.painted_mask import (
    BLANK_BOX_JS, PAINT_BOX_ID, PAINT_BOX_SHOWN_JS, PAINTED, PAINTED_LABEL, beneath_image, painted_box, painted_known,
    painted_label, picture_beneath,
)
from app.reverse_tab import (
    DIVERGED, MAX_FRAMES, MIN_FRAMES, REFERENCE_POINTS, ReverseControls, SamplerChoice, data_kind, examples_for,
    grid_columns, model_and_sampler, model_device, model_label, play_in_player, read_samples, results_make_way,
    sample_chain, sample_count, show_chain,
)
from core.checkpoints import Checkpoint
from core.inpaint import IMAGE_MASKS, POINT_MASKS, iter_inpaint, known_mask
from core.metrics import copy_fraction
from core.sampler import describe_steps, number_of_steps

MAX_INPAINTED = {"2d": 1000, "image": 16}  # examples filled in at most
HELPER = dict(show_progress="hidden", queue=False, api_visibility="private")  # the panel's own events, not the API's
DEFAULT_ROUNDS = 5
MAX_ROUNDS = 20
MAX_JUMP = 25  # steps a round goes back at most, here (RePaint: 10)
MAX_IMAGE_CALLS = 2000  # images: U × chain steps at most (16 digits: about 90 s on 2 CPU cores)
ON_DATA_RADIUS = 0.05  # 2D: a completed point this close to a training point lies on the data (model units)
ON_DATA_REFERENCE = 10_000  # 2D: training points the completions are measured against


def mask_choices(kind: str | None) -> list[tuple[str, str]]:
    """What can be kept known for data of ``kind``: (label, mask name) pairs of `core.inpaint`'s masks, and for
    images what the user leaves unpainted (`app.painted_mask`)."""
    if kind == "2d":
        return [(label, name) for name, label in POINT_MASKS.items()]
    return [(label, name) for name, label in IMAGE_MASKS.items()] + [(PAINTED_LABEL, PAINTED)]


def mask_dropdown(path, current=None) -> gr.Dropdown:
    """The mask choices for the checkpoint at ``path``, keeping ``current`` when it fits."""
    choices = mask_choices(data_kind(path))
    names = [name for _, name in choices]
    return gr.Dropdown(choices=choices, value=current if current in names else names[0])


@dataclass(frozen=True)
class Inpainting:
    """The checked inputs of an inpainting: the model, its sampler, the examples and what of them is kept."""

    checkpoint: Checkpoint
    choice: SamplerChoice
    seed: int
    rounds: int
    jump: int  # steps each resampling round goes back (RePaint's jump length)
    examples: torch.Tensor  # (n, ...) on the model's device
    known: torch.Tensor  # bool (1, ...) on the model's device
    known_label: str


def inpainting_inputs(path, sampler, eta, steps, spacing, n, seed, ideal, trained, mask_name, rounds,
                      jump=1, painted=None) -> Inpainting:
    """The panel's and the tab's controls, checked (gr.Error naming the one at fault), with the examples drawn;
    ``painted`` is the box read for the known part `PAINTED`."""
    checkpoint, choice = model_and_sampler(path, trained, ideal, sampler, eta, steps, spacing)
    kind = checkpoint.data.kind
    labels = {name: label for label, name in mask_choices(kind)}
    if not isinstance(mask_name, str) or mask_name not in labels:  # a list through the API: "unhashable type"
        raise InputError(f"Choose what is known from the list: for this model one of {', '.join(labels.values())}.")
    n = sample_count(n, checkpoint, 2, MAX_INPAINTED)
    seed = whole_number(seed, "Seed", 0, MAX_SEED)
    rounds = whole_number(rounds, "Resampling rounds", 1, MAX_ROUNDS)
    jump = whole_number(jump, "Jump back", 1, MAX_JUMP)
    calls = rounds * number_of_steps(checkpoint.schedule.T, choice.steps, choice.method)
    if kind == "image" and calls > MAX_IMAGE_CALLS:
        raise InputError(f"U × sampling steps is {calls:,}: too slow for images here (at most {MAX_IMAGE_CALLS:,}, about "
                       "90 s for 16 digits on 2 CPU cores). Lower U or the sampling steps.")
    device = model_device(checkpoint)
    examples = examples_for(checkpoint, n, seed, "Inpainting").to(device)
    if mask_name == PAINTED:
        known = painted_known(painted, tuple(checkpoint.data.shape)).to(device)
        return Inpainting(checkpoint, choice, seed, rounds, jump, examples, known, painted_label(known))
    known = known_mask(mask_name, tuple(checkpoint.data.shape), seed=seed).to(device)
    return Inpainting(checkpoint, choice, seed, rounds, jump, examples, known, labels[mask_name])


def complete(job: Inpainting, rounds: int, progress=None) -> tuple[torch.Tensor, float]:
    """The examples of ``job`` completed with ``rounds`` rounds per step, from its seed: (x_0 on the CPU, seconds)."""
    checkpoint, choice = job.checkpoint, job.choice
    chain_steps = number_of_steps(checkpoint.schedule.T, choice.steps, choice.method)
    start = time.perf_counter()
    with torch.inference_mode():
        for record in iter_inpaint(checkpoint.model, checkpoint.schedule, job.examples, job.known, method=choice.method,
                                   steps=choice.steps, eta=choice.eta, variance=choice.variance, spacing=choice.spacing,
                                   clip_x0=checkpoint.data.clip_x0, resample=rounds, jump=job.jump,
                                   generator=torch.Generator(device=job.examples.device).manual_seed(job.seed)):
            if progress is not None and record.index % 10 == 0:
                progress((record.index, chain_steps), unit="steps",
                         desc="Filling in: replacement only" if rounds == 1 else f"Filling in: {rounds} rounds per step")
    completed = record.x_prev.float().cpu()
    if not torch.isfinite(completed).all():
        raise InputError(DIVERGED)
    return completed, time.perf_counter() - start


def replacement_completion(job: Inpainting, ideal: bool, progress=None) -> tuple[torch.Tensor, float | None]:
    """`complete` with U = 1, the replacement alone, and its seconds: None where it was kept (`kept_with_seconds`)
    from an earlier click for the same model (the network, or with ``ideal`` the ideal denoiser), sampler, seed,
    examples and mask. Another U or jump (with U = 1 the jump changes nothing) fills in from the same noise, and the
    replacement column had been computed again each time (at U = 5, a sixth of a click)."""
    return kept_with_seconds(job.checkpoint, "replacement completion", lambda: complete(job, 1, progress),
                             bool(ideal), job.checkpoint.data, job.choice, job.seed,
                             job.examples.float().cpu().numpy(), job.known.cpu().numpy())


def fill_in(path, sampler, eta, steps, spacing, n, seed, ideal, trained, mask_name, rounds, jump=1, painted=None,
            progress=gr.Progress()):
    """(figure, Markdown): n training examples with the ``mask_name`` part kept (`PAINTED`: what ``painted`` leaves
    unpainted), the rest filled in by the replacement method (U = 1: `replacement_completion`) and with ``rounds``
    resampling rounds per step, each going back ``jump`` steps, from the same seed."""
    job = inpainting_inputs(path, sampler, eta, steps, spacing, n, seed, ideal, trained, mask_name, rounds, jump,
                            painted)
    completions, seconds = {}, {}
    completions[1], seconds[1] = replacement_completion(job, ideal, progress)
    if job.rounds > 1:
        completions[job.rounds], seconds[job.rounds] = complete(job, job.rounds, progress)
    examples, known, kind = job.examples.float().cpu(), job.known.cpu(), job.checkpoint.data.kind
    labels = ["x₀: training examples"] + [column_label(u, job.jump) for u in completions]
    reference = None
    if kind == "2d":
        draw = job.checkpoint.data_sampler()
        reference = None if draw is None else draw(ON_DATA_REFERENCE, 1_000_003)
        figure = panel_grid.noised_grid_figure(
            [[examples.numpy()] + [c.numpy() for c in completions.values()]], [""], labels, kind="points", cell_px=300,
            reference=None if reference is None else reference[:REFERENCE_POINTS].numpy())
    else:
        nrow = grid_columns(len(examples))
        grids = [image_grid(examples, nrow), image_grid(paint_hidden(examples, known), nrow)]
        grids += [image_grid(c, nrow) for c in completions.values()]
        labels.insert(1, "known (hidden in blue)")
        figure = panel_grid.noised_grid_figure([grids], [""], labels, kind="images", cell_px=260)
    return figure, fill_in_markdown(job, ideal, examples, known, completions, seconds, reference)


def play(request: gr.Request, path, sampler, eta, steps, spacing, n, seed, n_frames, ideal, trained, mask_name, rounds,
         jump=1, painted=None, progress=gr.Progress()):
    """The resampled inpainting chain in the tab's player (`reverse_tab.show_chain`): x_t with its kept part noised
    to t, beside x̂₀, and the examples with their hidden part in blue (images)."""
    job = inpainting_inputs(path, sampler, eta, steps, spacing, n, seed, ideal, trained, mask_name, rounds, jump,
                            painted)
    n_frames = whole_number(n_frames, "Frames", MIN_FRAMES, MAX_FRAMES)
    choice = job.choice
    chain = sample_chain(job.checkpoint, method=choice.method, variance=choice.variance, eta=choice.eta,
                         steps=choice.steps, n=len(job.examples), seed=job.seed, n_frames=n_frames,
                         spacing=choice.spacing, starts=job.examples, known=job.known, known_label=job.known_label,
                         resample=job.rounds, jump=job.jump, progress=progress)
    jumps = f"-j{job.jump}" if job.jump > 1 and job.rounds > 1 else ""  # with U = 1 the jump changes nothing
    return show_chain(request, chain, job.checkpoint, choice, ideal, progress=progress,
                      stem_suffix=f"-inpainted-{mask_name}-u{job.rounds}{jumps}")  # not a plain Generate's name


def column_label(rounds: int, jump: int = 1) -> str:
    if rounds == 1:
        return "replacement (U = 1)"
    return f"resampled (U = {rounds})" if jump == 1 else f"resampled (U = {rounds}, J = {jump})"


def fill_in_markdown(job: Inpainting, ideal: bool, examples: torch.Tensor, known: torch.Tensor,
                     completions: dict[int, torch.Tensor], seconds: dict[int, float | None],
                     reference: torch.Tensor | None) -> str:
    """What the inpainting made of the examples, for each number of rounds (and its seconds; None: kept from an
    earlier click): for images the difference in the hidden part and the classifier's reading (MNIST); for 2D how
    many completions lie on the data (the difference to the example says little there: a swiss roll's x has several
    y on the roll)."""
    checkpoint, choice = job.checkpoint, job.choice
    n, kind = len(examples), checkpoint.data.kind
    T = checkpoint.schedule.T
    chain = describe_steps(number_of_steps(T, choice.steps, choice.method), T, choice.spacing)
    timing = ", ".join(f"{column_label(u, job.jump)} {formulas.time_taken(s)}" for u, s in seconds.items())
    lines = [f"{runs.bold_name(checkpoint.path)} · {model_label(checkpoint, choice, ideal)}, {chain} · {n:,} "
             f"training examples, known: {job.known_label} · {timing}."]
    if reference is not None:  # a small set's draws repeat its points: "one of 10,000" had been 16 points, drawn again
        reference = torch.unique(reference, dim=0)
        on_data = {u: copy_fraction(c, reference, ON_DATA_RADIUS) for u, c in completions.items()}
        baseline = copy_fraction(examples, reference, ON_DATA_RADIUS)
        lines.append(f"- On the data (within {ON_DATA_RADIUS} of one of {len(reference):,} training points): "
                     + ", ".join(f"{column_label(u, job.jump)} **{share:.0%}**" for u, share in on_data.items())
                     + f"; the examples themselves {baseline:.0%}.")
    if kind == "image":
        hidden = ~known.expand_as(examples)
        rms = {u: float((c - examples)[hidden].pow(2).mean().sqrt()) for u, c in completions.items()}
        lines.append("- Root-mean-square difference to the examples in the hidden part: "
                     + ", ".join(f"{column_label(u, job.jump)} **{r:.3f}**" for u, r in rms.items())
                     + " per pixel (many completions fit; the more the known part tells, the closer they come).")
        before = read_samples(examples, checkpoint.data.name)
        if before is not None:
            kept = {u: before.agreement(read_samples(c, checkpoint.data.name)) for u, c in completions.items()}
            lines.append("- The shipped classifier reads the same class as in the example: "
                         + ", ".join(f"{column_label(u, job.jump)} **{k} of {n}**" for u, k in kept.items()) + ".")
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
            "drawn part settles against the known one (U times the cost); with a jump J it takes J steps before it "
            "goes back, J steps at once. Both run from the same noise, with the "
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
            jump = gr.Slider(1, MAX_JUMP, value=1, step=1, label="Jump back (J steps)",
                             info="steps each round goes back (RePaint: 10); same cost")
        with gr.Column(visible=False) as paint_group:
            paint = painted_box()
        with gr.Row():
            fill_btn = gr.Button("Fill in the hidden part")
            play_btn = gr.Button("Play the resampled chain in the player")
        plot = gr.Plot(label="Inpainting: replacement against resampling", elem_id="reverse-inpaint-plot", visible=False)
        stats = gr.Markdown()
    c = controls
    paint_copy, beneath = box_reader(paint), beneath_image()
    shown = {"fn": picture_beneath, "inputs": [c.checkpoint, c.trained, mask, beneath], "outputs": beneath, **HELPER}
    c.checkpoint.change(mask_dropdown, [c.checkpoint, mask], mask, **HELPER).then(**shown)
    mask.change(**shown)
    mask.change(None, mask, paint_group, js=PAINT_BOX_SHOWN_JS, queue=False)
    gr.on([beneath.change, paint.clear], None, beneath, paint, js=BLANK_BOX_JS, queue=False)
    gr.on([mask.change, paint.clear], None, [mask], None, js=select_brush_js(PAINT_BOX_ID, f"args[0] === '{PAINTED}'"),
          queue=False)
    show_when(fill_btn.click, plot)
    results_make_way(c, plot, stats)
    for button in (fill_btn, play_btn):  # before their jobs, which read the copy
        read_box(button.click, paint, paint_copy)
    c.job_click(fill_btn, fill_in, [c.checkpoint, c.sampler, c.eta, c.steps, c.spacing, c.n, c.seed, c.ideal,
                                         c.trained, mask, rounds, jump, paint_copy], [plot, stats])
    play_in_player(c.job_click(
        play_btn, play, [c.checkpoint, c.sampler, c.eta, c.steps, c.spacing, c.n, c.seed, c.n_frames, c.ideal, c.trained, mask,
               rounds, jump, paint_copy], c.player, api_name="play_inpainting"), c.player[-1])
