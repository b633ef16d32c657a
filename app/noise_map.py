"""The Reverse tab's panel on DDIM's deterministic map between noise and data (η = 0; `core.ddim_map`).

Two views, with the tab's model, steps and step spacing:
- Encode: training examples x_0 run up the DDIM chain to x_T (the ODE backwards), then decoded again. How far
  the decoded x_0 lies from the examples measures how well the chain inverts; how far the encoded x_T is from
  N(0, I) noise shows whether the examples lie where the sampler's noise would take it.
- Walk: samples decoded from noises along a path between two noises x_a and x_b: the spherical path
  cos(uπ/2)·x_a + sin(uπ/2)·x_b, which stays N(0, I), against (for images) the straight line, which does not.
- Loop: the spherical path continued around a full circle, cos θ·x_a + sin θ·x_b, decoded frame by frame and
  played in the tab's player: a movie of samples that morph into one another and loop without a seam.
"""

from __future__ import annotations

import time
import gradio as gr
import numpy as np
import torch

from app import figures, formulas, movie_files, panel_grid, player, runs
from app.controls import MAX_SEED, show_when, whole_number
from app.errors import InputError
from app.checkpoint_access import capped_end
from app.reverse_tab import (
    DIVERGED, MAX_FRAMES, MIN_FRAMES, ReverseControls, SamplerChoice, examples_for, grid_columns, model_and_sampler,
    model_device, model_label, play_in_player, read_samples, reference_points, results_make_way, sample_count,
)
from app.images import image_grid, image_pixels
from core.checkpoints import Checkpoint
from core.ddim_map import encode, noise_circle, noise_path
from core.metrics import return_ratio, sliced_wasserstein_ratio
from core.prediction import unwrap
from core.sampler import describe_steps, initial_noise, number_of_steps, sample

MAX_ENCODED = {"2d": 1000, "image": 16}  # examples encoded at most (a 2D cloud of 1,000 shows the map's shape)
PATH_PAIRS = {"2d": 6, "image": 3}  # pairs of noises walked between
PATH_POSITIONS = {"2d": 41, "image": 9}  # points along each path, ends included
LOOP_SAMPLES = {"2d": 1000, "image": 9}  # samples decoded per frame of a loop, at most (images: a 3 × 3 grid)
LOOP_FRAMES = (8, 9, 10, 12, 15, 18, 20, 24, 30, 36, 40, 45, 60, 72)  # frames per turn: whole degrees apart
LOOP_FPS = 12
LOOP_CHUNK = {"2d": 24_000, "image": 128}  # noises decoded at once
LOOP_IMAGE_STEPS = 3600  # an image loop's frames × sampling steps at most (9 images: ~30 s on 2 CPU cores)


def map_checkpoint(path, trained, ideal, steps, spacing) -> tuple[Checkpoint, SamplerChoice]:
    """The tab's model (or its ideal denoiser) and DDIM with η = 0 over the tab's steps and spacing."""
    return model_and_sampler(path, trained, ideal, "ddim", 0.0, steps, spacing)


def _decode(checkpoint: Checkpoint, x_T: torch.Tensor, choice: SamplerChoice) -> torch.Tensor:
    return sample(checkpoint.model, checkpoint.schedule, x_T, method="ddim", eta=0.0, steps=choice.steps,
                  spacing=choice.spacing, clip_x0=checkpoint.data.clip_x0)


def _chain_words(checkpoint: Checkpoint, choice: SamplerChoice) -> str:
    T = checkpoint.schedule.T
    return describe_steps(number_of_steps(T, choice.steps, "ddim"), T, choice.spacing)


def off_plot_sentence(points: torch.Tensor, checkpoint: Checkpoint) -> str:
    """2D: how many decoded points lie off the plot (beyond ±4, where data of unit spread never is), and why (a
    capped β_T multiplies an ε network's error at t = T; an x₀ or v network gives x̂₀ directly)."""
    off = figures.beyond_the_axes(points)
    if not off:
        return ""
    return (f" **{off:,} of {len(points):,} decoded points lie off the plot** (beyond ±{figures.POINT_RANGE[1]:g}): "
            "DDIM adds no noise that would wash out the model's errors"
            + (", and this schedule's capped β_T makes its noisiest steps multiply them by hundreds (see the note "
               "under the checkpoint)." if capped_end(checkpoint.schedule) and unwrap(checkpoint.model)[1] == "eps"
               else "."))


def noise_distance(latents: torch.Tensor) -> float:
    """2D: how far the encoded points are from N(0, I) noise in shape, not only in mean and spread: the sliced-
    Wasserstein ratio to draws of it (`core.metrics`; about 1 for noise, well above for e.g. a roll of unit
    spread, which an encoding of too few steps leaves nearly as it was)."""
    def draw_noise(n: int, seed: int) -> torch.Tensor:
        return torch.randn(n, latents.shape[1], generator=torch.Generator().manual_seed(seed))

    return sliced_wasserstein_ratio(latents.float(), draw_noise)


def neighbour_correlation(latents: torch.Tensor) -> float:
    """Images: the correlation of horizontally neighbouring values of x_T (independent noise: 0)."""
    left, right = latents[..., :, :-1].flatten().double(), latents[..., :, 1:].flatten().double()
    return float(torch.corrcoef(torch.stack([left, right]))[0, 1])


def encode_examples(path, steps, spacing, n, seed, ideal, trained, progress=gr.Progress()):
    """Encode: (figure, Markdown) for n training examples encoded to x_T and decoded back."""
    checkpoint, choice = map_checkpoint(path, trained, ideal, steps, spacing)
    kind = checkpoint.data.kind
    n = sample_count(n, checkpoint, 2, MAX_ENCODED)
    seed = whole_number(seed, "Seed", 0, MAX_SEED)
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
        raise InputError(str(err)) from None
    decode_s = time.perf_counter() - start - encode_s
    if not (torch.isfinite(latents).all() and torch.isfinite(decoded).all()):
        raise InputError(DIVERGED)
    examples, latents, decoded = examples.float().cpu(), latents.float().cpu(), decoded.float().cpu()
    labels = ["x₀: training examples", "x_T: encoded (DDIM backwards)", "x₀ decoded from that x_T"]
    if kind == "2d":
        clouds = [v.numpy() for v in (examples, latents, decoded)]
        figure = panel_grid.noised_grid_figure([clouds], [""], labels, kind="points", cell_px=300,
                                               point_hues=figures.angle_hues(clouds[1]))
    else:
        nrow = grid_columns(n)
        grids = [image_grid(v, nrow) for v in (examples, latents, decoded)]
        figure = panel_grid.noised_grid_figure([grids], [""], labels, kind="images", cell_px=300)
    return figure, encode_markdown(checkpoint, choice, ideal, examples, latents, decoded, encode_s, decode_s)


def returned(decoded: torch.Tensor, examples: torch.Tensor) -> str:
    """The return ratio of the decoded examples in words, or why it is not defined (a one-point set: it had raised)."""
    try:
        ratio = return_ratio(decoded, examples)
    except ValueError as err:
        return str(err)
    return f"return ratio {ratio:.3f} (0: every sample is its own example again; 1: nothing of it is left)."


def encode_markdown(checkpoint: Checkpoint, choice: SamplerChoice, ideal: bool, examples: torch.Tensor, latents: torch.Tensor,
                    decoded: torch.Tensor, encode_s: float, decode_s: float) -> str:
    """What the encoding found: the encoded noise against N(0, I), and how well decoding gave the examples back."""
    n, kind = len(examples), checkpoint.data.kind
    unit = "coordinate" if kind == "2d" else "pixel"
    flat = latents.flatten(1)
    rms = float((decoded - examples).pow(2).mean().sqrt())
    lines = [
        f"{runs.bold_name(checkpoint.path)} · {model_label(checkpoint, choice, ideal)}, "
        f"{_chain_words(checkpoint, choice)} · {n:,} training examples encoded in {formulas.seconds_text(encode_s)}, decoded in "
        f"{formulas.seconds_text(decode_s)}.",
        f"- **Encoded x_T**: mean {formulas.number(float(flat.mean()), decimals=3)}, standard deviation "
        f"{float(flat.std()):.3f}"
        + (f", neighbouring pixels correlate {formulas.number(neighbour_correlation(latents), decimals=2)}"
           if kind == "image" else f", sliced-Wasserstein ratio to N(0, I) {noise_distance(latents):.2f}")
        + (" (for N(0, I) noise, which the sampler starts from: mean 0, standard deviation 1, correlation 0)."
           if kind == "image" else
           " (for N(0, I) noise, which the sampler starts from: mean 0, standard deviation 1, ratio about 1)."),
        f"- **Decoded again**: root-mean-square difference to the examples {rms:.4f} per {unit}; {returned(decoded, examples)}"
        + (off_plot_sentence(decoded, checkpoint) if kind == "2d" else ""),
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
    seed = whole_number(seed, "Seed", 0, MAX_SEED)
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
        raise InputError(str(err)) from None
    seconds = time.perf_counter() - start
    if not torch.isfinite(decoded).all():
        raise InputError(DIVERGED)
    decoded = decoded.view(len(kinds), positions, pairs, *shape)
    if kind == "2d":
        figure = figures.noise_paths_figure([decoded[0, :, k].numpy() for k in range(pairs)], reference_points(checkpoint))
    else:
        cells, rows = [], []
        for k in range(pairs):
            for j, how in enumerate(kinds):
                cells.append(list(image_pixels(decoded[j, :, k])))
                rows.append(f"pair {k + 1}: {'spherical path' if how == 'spherical' else 'straight line'}")
        figure = panel_grid.noised_grid_figure(cells, rows, [f"u = {a:.3g}" for a in alphas], kind="images", cell_px=90)
    off = off_plot_sentence(decoded.flatten(0, 2), checkpoint) if kind == "2d" else ""
    return figure, walk_markdown(checkpoint, choice, ideal, noise, kinds, pairs, positions, seconds) + off


def walk_markdown(checkpoint: Checkpoint, choice: SamplerChoice, ideal: bool, noise: torch.Tensor, kinds: tuple[str, ...],
                  pairs: int, positions: int, seconds: float) -> str:
    """The walk in words, with the norm of the noise halfway along each kind of path."""
    halfway = []
    for how in kinds:
        middle = noise_path(noise[0::2], noise[1::2], [0.5], how)[0]  # type: ignore[arg-type]
        halfway.append(f"{'spherical' if how == 'spherical' else 'straight'} {float(middle.pow(2).mean().sqrt()):.2f}")
    return (
        f"{runs.bold_name(checkpoint.path)} · {model_label(checkpoint, choice, ideal)}, "
        f"{_chain_words(checkpoint, choice)} · {pairs} pairs of noises, {positions} points on each path, decoded in "
        f"{formulas.seconds_text(seconds)}. Spherical path: x_T(u) = cos(uπ/2)·x_a + sin(uπ/2)·x_b, N(0, I) at every u"
        + ("; straight line: (1 − u)·x_a + u·x_b" if len(kinds) > 1 else "")
        + f". Root-mean-square value of x_T at u = ½ (N(0, I) noise: 1): {', '.join(halfway)}."
    )


def loop_frames(requested: int, most: int = LOOP_FRAMES[-1]) -> int:
    """The frames of a loop: the most of `LOOP_FRAMES` (whole degrees apart) up to ``requested`` and ``most``."""
    return max([n for n in LOOP_FRAMES if n <= min(requested, most)], default=LOOP_FRAMES[0])


def decode_loop(checkpoint: Checkpoint, choice: SamplerChoice, noises: torch.Tensor, progress) -> torch.Tensor:
    """Decode the noises of a loop (frames, n, ...) with DDIM (η = 0) in chunks, reporting progress."""
    flat, chunk = noises.flatten(0, 1), LOOP_CHUNK[checkpoint.data.kind]
    decoded = []
    for start in range(0, len(flat), chunk):
        progress((start, len(flat)), desc="Decoding the noises around the loop", unit="samples")
        decoded.append(_decode(checkpoint, flat[start : start + chunk], choice).float().cpu())
    return torch.cat(decoded).view(noises.shape)


def play_loop(request: gr.Request, path, steps, spacing, n, seed, n_frames, ideal, trained, progress=gr.Progress()):
    """Loop: the tab's player fills with samples decoded from noises around the circle cos θ·x_a + sin θ·x_b
    (`core.ddim_map.noise_circle`), x_T beside x₀: (player HTML, stats Markdown, the `movie_files.Movie`, sprite
    path)."""
    checkpoint, choice = map_checkpoint(path, trained, ideal, steps, spacing)
    kind, shape = checkpoint.data.kind, checkpoint.data.shape
    n = sample_count(n, checkpoint, 1, LOOP_SAMPLES)
    seed = whole_number(seed, "Seed", 0, MAX_SEED)
    chain_steps = number_of_steps(checkpoint.schedule.T, choice.steps, "ddim")
    most = LOOP_IMAGE_STEPS // chain_steps if kind == "image" else LOOP_FRAMES[-1]
    requested = whole_number(n_frames, "Frames", MIN_FRAMES, MAX_FRAMES)
    frames = loop_frames(requested, most)
    degrees = [k * 360 // frames for k in range(frames)]
    noise, _ = initial_noise((2, n, *shape), seed=seed, device=model_device(checkpoint))
    noises = noise_circle(noise[0], noise[1], frames)  # (frames, n, ...)
    start = time.perf_counter()
    try:
        decoded = decode_loop(checkpoint, choice, noises, progress)
    except ValueError as err:
        raise InputError(str(err)) from None
    seconds = time.perf_counter() - start
    if not torch.isfinite(decoded).all():
        raise InputError(DIVERGED)
    noises = noises.float().cpu()
    if kind == "2d":
        images = player.render_points_frames([x.numpy() for x in noises], [x.numpy() for x in decoded], degrees,
                                             reference_points(checkpoint), x_label="x_T · θ = {t}°",
                                             x0_label="x₀ decoded (DDIM, η = 0)")
        pinned = player.pinned_points(n)
        captions = [f"x_T (θ = {{t}}°) · lines: {pinned} pinned noises over the last {player.TRAIL_FRAMES} frames",
                    f"x₀ decoded from it (dots: the {pinned} pinned points)"]
        labels, width, panels = None, images[0].width, player.points_panels()
    else:
        nrow = grid_columns(n)
        images = player.render_image_frames([image_pixels(x) for x in noises], [image_pixels(x) for x in decoded],
                                            nrow)
        panels = player.image_panels(image_pixels(noises[0]), nrow, 2)
        captions = ["x_T (θ = {t}°)", "x₀ decoded from it (DDIM, η = 0)"]
        labels = [[f"x_T, θ = {d}°", "x₀ decoded"] for d in degrees]
        width = 640
    page, movie = movie_files.publish(
        images, degrees, key=runs.session_key(request), view="reverse",
        stem=f"loop-{runs.display_name(checkpoint.path)}",
        captions=captions, notes=formulas.circle_notes(degrees), note_key=formulas.CIRCLE_KEY,
        export_labels=labels, export_fps=LOOP_FPS, loop=True, fps=LOOP_FPS, max_width=width,
        pixelated=kind == "image", variable="θ", unit="°", panels=panels)
    capped = (f" Fewer frames than asked: an image loop decodes at most {LOOP_IMAGE_STEPS:,} frames × steps "
              f"({chain_steps} steps here: {frames} frames); fewer steps allow more frames."
              if frames < loop_frames(requested) else "")
    return page, loop_markdown(checkpoint, choice, ideal, noises, decoded, seconds) + capped, movie, movie.sprite


def loop_markdown(checkpoint: Checkpoint, choice: SamplerChoice, ideal: bool, noises: torch.Tensor,
                  decoded: torch.Tensor, seconds: float) -> str:
    """The loop in words: for images, how many classes each sample passes through; in 2D, how far the decoded
    points move from frame to frame against their noise."""
    frames, n = noises.shape[:2]
    text = (f"{runs.bold_name(checkpoint.path)} · {model_label(checkpoint, choice, ideal)}, "
            f"{_chain_words(checkpoint, choice)} · {n:,} noise{'s' if n > 1 else ''} around a circle "
            f"x_T = cos θ·x_a + sin θ·x_b in {frames} frames ({360 // frames}° apart), decoded in "
            f"{formulas.seconds_text(seconds)}. "
            "The loop closes (θ = 360° is θ = 0°), so the movie plays on without a seam.")
    if checkpoint.data.kind == "2d":
        moves = (decoded.roll(-1, dims=0) - decoded).norm(dim=-1)  # (frames, n), the last frame to the first
        noise_moves = (noises.roll(-1, dims=0) - noises).norm(dim=-1)
        return text + (
            f" From frame to frame the noise moves {float(noise_moves.median()):.3f} (median), a decoded point "
            f"{float(moves.median()):.3f}; but the largest move of a decoded point is {float(moves.max()):.2f}: a "
            "jump between two parts of the data, where the map, continuous everywhere, is stretched steeply."
            + off_plot_sentence(decoded.flatten(0, 1), checkpoint))
    readings = read_samples(decoded.flatten(0, 1), checkpoint.data.name)
    if readings is None:
        return text
    labels = np.array(readings.labels).reshape(frames, n)
    classes = [len(set(labels[:, k])) for k in range(n)]
    changes = [int((labels[:, k] != np.roll(labels[:, k], -1)).sum()) for k in range(n)]
    return text + (f" The shipped classifier reads {min(classes)}–{max(classes)} different classes around each loop "
                   f"({np.mean(classes):.1f} on average), the class changing {np.mean(changes):.1f} times a turn.")


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
            "the norm of N(0, ½ I), noise the sampler never starts from. **Loop** goes on around the whole circle "
            f"cos θ·x_a + sin θ·x_b and plays it in the player above ({LOOP_SAMPLES['image']} images or up to "
            f"{LOOP_SAMPLES['2d']:,} points, as many frames as asked up to {LOOP_FRAMES[-1]}): a movie that loops "
            "without a seam.")
        with gr.Row():
            encode_btn = gr.Button("Encode training examples and decode them back")
            walk_btn = gr.Button("Walk between two noises")
            loop_btn = gr.Button("Loop: play a circle of noises in the player")
        plot = gr.Plot(label="DDIM's map between noise and data", elem_id="reverse-map-plot", visible=False)
        stats = gr.Markdown()
    c = controls
    show_when(encode_btn.click, plot)
    show_when(walk_btn.click, plot)
    results_make_way(c, plot, stats)
    c.job_click(encode_btn, encode_examples, [c.checkpoint, c.steps, c.spacing, c.n, c.seed, c.ideal, c.trained],
                     [plot, stats])
    c.job_click(walk_btn, walk, [c.checkpoint, c.steps, c.spacing, c.seed, c.ideal, c.trained], [plot, stats])
    play_in_player(c.job_click(loop_btn, play_loop, [c.checkpoint, c.steps, c.spacing, c.n, c.seed, c.n_frames,
                                                          c.ideal, c.trained], c.player, api_name="play_noise_loop"),
                   c.player[-1])
