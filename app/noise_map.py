"""The Reverse tab's panel on DDIM's deterministic map between noise and data (η = 0; `core.ddim_map`).

Two views, with the tab's model, steps and step spacing:
- Encode: training examples x_0 run up the DDIM chain to x_T (the ODE backwards), then decoded again. How far
  the decoded x_0 lies from the examples measures how well the chain inverts; how far the encoded x_T is from
  N(0, I) noise shows whether the examples lie where the sampler's noise would take it.
- Walk: samples decoded from noises along a path between two noises x_a and x_b: the spherical path
  cos(απ/2)·x_a + sin(απ/2)·x_b, which stays N(0, I), against (for images) the straight line, which does not.
"""

from __future__ import annotations

import html
import math
import time
import gradio as gr
import numpy as np
import torch

from app import figures, runs
from app.controls import whole_number
from app.reverse_tab import (
    DIVERGED, MAX_SAMPLES, ReverseControls, SamplerChoice, capped_end, examples_for, grid_columns, image_pixels,
    model_and_sampler, model_device, model_label, read_samples, reference_points,
)
from app.images import image_grid
from core.checkpoints import Checkpoint
from core.ddim_map import encode, noise_path
from core.metrics import return_ratio
from core.sampler import describe_steps, initial_noise, number_of_steps, sample
from core.schedules import NoiseSchedule

MAX_ENCODED = {"2d": 1000, "image": 16}  # examples encoded at most (a 2D cloud of 1,000 shows the map's shape)
PATH_PAIRS = {"2d": 6, "image": 3}  # pairs of noises walked between
PATH_POSITIONS = {"2d": 41, "image": 9}  # points along each path, ends included


def map_checkpoint(path, trained, ideal, steps, spacing) -> tuple[Checkpoint, SamplerChoice]:
    """The tab's model (or its ideal denoiser) and DDIM with η = 0 over the tab's steps and spacing."""
    return model_and_sampler(path, trained, ideal, "ddim", 0.0, steps, spacing)


def _decode(checkpoint: Checkpoint, x_T: torch.Tensor, choice: SamplerChoice) -> torch.Tensor:
    return sample(checkpoint.model, checkpoint.schedule, x_T, method="ddim", eta=0.0, steps=choice.steps,
                  spacing=choice.spacing, clip_x0=checkpoint.data.clip_x0)


def _chain_words(checkpoint: Checkpoint, choice: SamplerChoice) -> str:
    T = checkpoint.schedule.T
    return describe_steps(number_of_steps(T, choice.steps, "ddim"), T, choice.spacing)


def latent_hues(latents: np.ndarray) -> np.ndarray:
    """2D: each point's hue, the angle of its encoded x_T around the origin as a share of a full turn (0..1)."""
    return (np.arctan2(latents[:, 1], latents[:, 0]) + math.pi) / (2 * math.pi)


def off_plot_sentence(points: torch.Tensor, schedule: NoiseSchedule) -> str:
    """2D: how many decoded points lie off the plot (beyond ±4, where data of unit spread never is), and why."""
    off = int((points.abs() > figures.POINT_RANGE[1]).any(dim=1).sum())
    if not off:
        return ""
    return (f" **{off} of {len(points)} decoded points lie off the plot** (beyond ±{figures.POINT_RANGE[1]:g}): DDIM adds "
            "no noise that would wash out the model's errors"
            + (", and this schedule's capped β_T makes its noisiest steps multiply them by hundreds (see the note "
               "under the checkpoint)." if capped_end(schedule) else "."))


def neighbour_correlation(latents: torch.Tensor) -> float:
    """Images: the correlation of horizontally neighbouring values of x_T (independent noise: 0)."""
    left, right = latents[..., :, :-1].flatten().double(), latents[..., :, 1:].flatten().double()
    return float(torch.corrcoef(torch.stack([left, right]))[0, 1])


def encode_examples(path, steps, spacing, n, seed, ideal, trained, progress=gr.Progress()):
    """Encode: (figure, Markdown) for n training examples encoded to x_T and decoded back."""
    checkpoint, choice = map_checkpoint(path, trained, ideal, steps, spacing)
    kind = checkpoint.data.kind
    n = min(whole_number(n, "Number of samples", 2, MAX_SAMPLES[kind]), MAX_ENCODED[kind])
    seed = whole_number(seed, "Seed", 0, 2**31 - 1)
    examples = examples_for(checkpoint, n, seed, "Encoding").to(model_device(checkpoint))
    schedule = checkpoint.schedule
    progress(0.1, desc="Encoding: the DDIM chain run backwards")
    start = time.perf_counter()
    try:
        latents = encode(checkpoint.model, schedule, examples, steps=choice.steps, spacing=choice.spacing,
                         clip_x0=checkpoint.data.clip_x0)
        encode_s = time.perf_counter() - start
        progress(0.55, desc="Decoding the encoded noise")
        decoded = _decode(checkpoint, latents, choice)
    except ValueError as err:
        raise gr.Error(str(err)) from None
    decode_s = time.perf_counter() - start - encode_s
    if not (torch.isfinite(latents).all() and torch.isfinite(decoded).all()):
        raise gr.Error(DIVERGED)
    examples, latents, decoded = examples.float().cpu(), latents.float().cpu(), decoded.float().cpu()
    labels = ["x₀: training examples", "x_T: encoded (DDIM backwards)", "x₀ decoded from that x_T"]
    if kind == "2d":
        clouds = [v.numpy() for v in (examples, latents, decoded)]
        figure = figures.noised_grid_figure([clouds], [""], labels, kind="points", cell_px=300,
                                            point_hues=latent_hues(clouds[1]))
    else:
        nrow = grid_columns(n)
        grids = [image_grid(v, nrow) for v in (examples, latents, decoded)]
        figure = figures.noised_grid_figure([grids], [""], labels, kind="images", cell_px=300)
    return figure, encode_markdown(checkpoint, choice, ideal, examples, latents, decoded, encode_s, decode_s)


def encode_markdown(checkpoint: Checkpoint, choice: SamplerChoice, ideal: bool, examples: torch.Tensor, latents: torch.Tensor,
                    decoded: torch.Tensor, encode_s: float, decode_s: float) -> str:
    """What the encoding found: the encoded noise against N(0, I), and how well decoding gave the examples back."""
    n, kind = len(examples), checkpoint.data.kind
    unit = "coordinate" if kind == "2d" else "pixel"
    flat = latents.flatten(1)
    rms = float((decoded - examples).pow(2).mean().sqrt())
    lines = [
        f"**{html.escape(checkpoint.name)}** · {model_label(checkpoint, choice, ideal)}, "
        f"{_chain_words(checkpoint, choice)} · {n} training examples encoded in {encode_s:.1f} s, decoded in "
        f"{decode_s:.1f} s.",
        f"- **Encoded x_T**: mean {float(flat.mean()):.3f}, standard deviation {float(flat.std()):.3f}"
        + (f", neighbouring pixels correlate {neighbour_correlation(latents):.2f}" if kind == "image" else "")
        + " (N(0, I) noise, which the sampler starts from: 0, 1" + (", 0" if kind == "image" else "") + ").",
        f"- **Decoded again**: root-mean-square difference to the examples {rms:.4f} per {unit}; return ratio "
        f"{return_ratio(decoded, examples):.3f} (0: every sample is its own example again; 1: nothing of it is left)."
        + (off_plot_sentence(decoded, checkpoint.schedule) if kind == "2d" else ""),
    ]
    if kind == "image":
        before, after = read_samples(examples, checkpoint.data.name), read_samples(decoded, checkpoint.data.name)
        if before is not None and after is not None:
            same = before.agreement(after)
            lines.append(f"- The shipped classifier reads the same class in {same} of {n} decoded images.")
    return "\n".join(lines)


def walk(path, steps, spacing, seed, ideal, trained, progress=gr.Progress()):
    """Walk between two noises: (figure, Markdown) of the samples decoded along paths between pairs of noises."""
    checkpoint, choice = map_checkpoint(path, trained, ideal, steps, spacing)
    kind, shape = checkpoint.data.kind, checkpoint.data.shape
    seed = whole_number(seed, "Seed", 0, 2**31 - 1)
    pairs, positions = PATH_PAIRS[kind], PATH_POSITIONS[kind]
    alphas = [k / (positions - 1) for k in range(positions)]
    noise, _ = initial_noise((2 * pairs, *shape), seed=seed, device=model_device(checkpoint))
    kinds = ("spherical",) if kind == "2d" else ("spherical", "linear")
    x_T = torch.cat([noise_path(noise[0::2], noise[1::2], alphas, how) for how in kinds])  # (kinds·positions, pairs, ...)
    progress(0.1, desc=f"Decoding {len(x_T) * pairs} noises along the paths")
    start = time.perf_counter()
    try:
        decoded = _decode(checkpoint, x_T.flatten(0, 1), choice).float().cpu()
    except ValueError as err:
        raise gr.Error(str(err)) from None
    seconds = time.perf_counter() - start
    if not torch.isfinite(decoded).all():
        raise gr.Error(DIVERGED)
    decoded = decoded.view(len(kinds), positions, pairs, *shape)
    if kind == "2d":
        figure = figures.noise_paths_figure([decoded[0, :, k].numpy() for k in range(pairs)], reference_points(checkpoint))
    else:
        cells, rows = [], []
        for k in range(pairs):
            for j, how in enumerate(kinds):
                cells.append(list(image_pixels(decoded[j, :, k])))
                rows.append(f"pair {k + 1}: {'spherical path' if how == 'spherical' else 'straight line'}")
        figure = figures.noised_grid_figure(cells, rows, [f"α = {a:.3g}" for a in alphas], kind="images", cell_px=90)
    off = off_plot_sentence(decoded.flatten(0, 2), checkpoint.schedule) if kind == "2d" else ""
    return figure, walk_markdown(checkpoint, choice, ideal, noise, kinds, pairs, positions, seconds) + off


def walk_markdown(checkpoint: Checkpoint, choice: SamplerChoice, ideal: bool, noise: torch.Tensor, kinds: tuple[str, ...],
                  pairs: int, positions: int, seconds: float) -> str:
    """The walk in words, with the norm of the noise halfway along each kind of path."""
    halfway = []
    for how in kinds:
        middle = noise_path(noise[0::2], noise[1::2], [0.5], how)[0]  # type: ignore[arg-type]
        halfway.append(f"{'spherical' if how == 'spherical' else 'straight'} {float(middle.pow(2).mean().sqrt()):.2f}")
    return (
        f"**{html.escape(checkpoint.name)}** · {model_label(checkpoint, choice, ideal)}, "
        f"{_chain_words(checkpoint, choice)} · {pairs} pairs of noises, {positions} points on each path, decoded in "
        f"{seconds:.1f} s. Spherical path: x_T(α) = cos(απ/2)·x_a + sin(απ/2)·x_b, N(0, I) at every α"
        + ("; straight line: (1 − α)·x_a + α·x_b" if len(kinds) > 1 else "")
        + f". Root-mean-square value of x_T at α = ½ (N(0, I) noise: 1): {', '.join(halfway)}."
    )


def build(controls: ReverseControls) -> None:
    """Lay out the panel below the Reverse tab, reading the tab's ``controls``."""
    with gr.Accordion("Noise ↔ data: DDIM's deterministic map (η = 0)", open=False, elem_id="reverse-map"):
        gr.Markdown(
            "DDIM with η = 0 adds no noise: it maps each x_T to one x₀, and can be run backwards to encode data "
            "into noise. Uses the model, sampling steps, step spacing, samples and seed above (always DDIM, η = 0). "
            f"**Encode** runs up to {MAX_ENCODED['image']} images or {MAX_ENCODED['2d']:,} points of the training "
            "data to x_T and decodes them again (2D points are coloured by the angle of their x_T, so that the same "
            f"point can be found in each panel). **Walk** decodes noises along {PATH_PAIRS['image']} paths between "
            f"two noises (2D: {PATH_PAIRS['2d']}): the spherical one stays N(0, I); the straight line halfway has "
            "the norm of N(0, ½ I), noise the sampler never starts from.")
        with gr.Row():
            encode_btn = gr.Button("Encode training examples and decode them back")
            walk_btn = gr.Button("Walk between two noises")
        plot = gr.Plot(label="DDIM's map between noise and data", elem_id="reverse-map-plot")
        stats = gr.Markdown()
    c = controls
    heavy = runs.heavy_event()
    encode_btn.click(encode_examples, [c.checkpoint, c.steps, c.spacing, c.n, c.seed, c.ideal, c.trained], [plot, stats],
                     **heavy)
    walk_btn.click(walk, [c.checkpoint, c.steps, c.spacing, c.seed, c.ideal, c.trained], [plot, stats], **heavy)
