"""The Reverse tab's panel on the number of sampling steps: how good the samples of DDPM (Ho et al. 2020,
Algorithm 2, σ² = β̃) and of DDIM (Song et al. 2021, η = 0) are for each number of steps, spaced as the tab says
(evenly in t or in log-SNR, `core.sampler`), from the same x_T.

Quality: 2D models, the sliced-Wasserstein ratio of the samples to the training data (`core.metrics`; 1 is as close
as another draw of the data); image models, the classifier-feature FID ratio (`core.fid`; 1 is as good as real
images), which needs the data set's files in the server's data folder. Image chains stop at `MAX_IMAGE_STEPS` steps:
a U-Net call on a CPU takes about 70 ms for 64 images. Beneath the curves, the samples of every chain, one row per
sampler and one column per number of steps (`samples_figure`): what the scores mean, at a glance.
"""

from __future__ import annotations

import logging
import math
import time

import gradio as gr
import torch

from app import figures, formulas, panel_grid, runs
from app.controls import MAX_SEED, show_when, whole_number
from app.as_written import in_markdown
from app.errors import InputError
from app.images import image_grid
from app.reverse_tab import (
    DIVERGED, ReverseControls, chosen_checkpoint, data_own_range, model_device, reference_points, results_make_way,
)
from core.checkpoints import Checkpoint
from core.classifier import shipped_classifiers
from core.fid import image_quality
from core.image_data import dataset_available, short_label
from core.metrics import sliced_wasserstein_ratio
from core.sampler import SPACING_LABELS, SPACINGS, initial_noise, sample

log = logging.getLogger(__name__)

STEP_COUNTS = (5, 10, 20, 50, 100, 200, 500, 1000)  # the chains measured (those up to T; all T as well for 2D)
MAX_IMAGE_STEPS = 100
SWEEP_SAMPLES = {"2d": 1000, "image": 64}  # samples per chain: with fewer, the ratios of all chains sit near 1
SWEPT = {"ddpm": "DDPM, σ² = β̃", "ddim": "DDIM, η = 0"}
SHOWN_IMAGES = 16  # images of each chain in the samples' grid (a 4 × 4 grid each)


def step_counts(T: int, kind: str) -> list[int]:
    """The numbers of steps to measure: `STEP_COUNTS` up to T (images: up to `MAX_IMAGE_STEPS`), and for 2D all T;
    every count from 1 on a chain shorter than the first of them (at T = 3 one dot a sampler had been the sweep)."""
    cap = T if kind == "2d" else min(T, MAX_IMAGE_STEPS)
    counts = {k for k in STEP_COUNTS if k <= cap} or set(range(1, cap + 1))
    if kind == "2d":
        counts.add(T)
    return sorted(counts)


def quality_measure(checkpoint: Checkpoint, seed: int):
    """(the measure of a batch of samples, its name, its axis title): the SW ratio for 2D, the FID ratio for
    images; gr.Error when this server cannot measure it."""
    if checkpoint.data.kind == "2d":
        draw = checkpoint.data_sampler()
        if draw is None:
            raise InputError("This checkpoint's training data is not available here, so its samples cannot be measured.")
        probe = draw(16, seed)
        if bool((probe == probe[0]).all()):
            raise InputError("This model's training data is a single point: the sliced-Wasserstein ratio, which measures "
                           "samples against the spread between two draws of the data, is not defined for it.")
        # scored against the seed's draws, as the data's own range is (`real_scores`) and as `core.evaluate` does: at
        # seed 0's draws, DDPM-500 scored 0.48 on moons at seed 3, below that range (0.64–0.98)
        return (lambda x: sliced_wasserstein_ratio(x, draw, seed=seed)), "sliced-Wasserstein ratio to the training data", \
            "SW ratio to the data"
    name = checkpoint.data.name
    if name not in shipped_classifiers():
        raise InputError(f"No classifier is shipped for {name}, so the quality of its samples cannot be measured.")
    if not dataset_available(name):  # the app never downloads
        raise InputError(f"The FID compares the samples with real {short_label(name)} images, and "
                       "this server's data folder (DDPM_DATA_DIR) has none.")

    def fid_ratio(x: torch.Tensor) -> float:
        try:
            return float(image_quality(x, name, seed=seed)["fid_ratio"])
        except (ValueError, OSError) as err:
            raise InputError(f"The FID of the samples could not be measured: {err}") from None

    return fid_ratio, "FID ratio in the classifier's features", "FID ratio"


def sweep_steps(path, spacing, seed, ideal, trained, progress=gr.Progress()):
    """(figure, Markdown, samples' figure): the quality of DDPM's and DDIM's samples for each number of steps in
    `step_counts`, `SWEEP_SAMPLES` per chain whatever the tab's sample count (at 16 images the FID ratio of every
    chain is ≈ 1), and the samples themselves (`samples_figure`)."""
    if spacing not in SPACINGS:
        raise InputError(f"Unknown step spacing {spacing!r}; choose one from the list.")
    checkpoint = chosen_checkpoint(path, trained, ideal)
    kind, T = checkpoint.data.kind, checkpoint.schedule.T
    n = SWEEP_SAMPLES[kind]
    seed = whole_number(seed, "Seed", 0, MAX_SEED)
    measure, measure_name, axis_title = quality_measure(checkpoint, seed)
    counts, device = step_counts(T, kind), model_device(checkpoint)
    results: dict[str, list[tuple[int, float, float]]] = {}  # method → (steps, quality, seconds)
    samples: dict[str, list[torch.Tensor]] = {}  # method → each chain's samples, in the order of ``counts``
    total, done = sum(counts) * len(SWEPT), 0
    for method in SWEPT:
        results[method], samples[method] = [], []
        for steps in counts:
            progress(done / total, desc=f"{SWEPT[method]}, {steps} steps")
            x_T, generator = initial_noise((n,) + tuple(checkpoint.data.shape), seed=seed, device=device)
            start = time.perf_counter()
            with torch.inference_mode():
                x0 = sample(checkpoint.model, checkpoint.schedule, x_T, method=method, steps=steps, spacing=spacing,
                            clip_x0=checkpoint.data.clip_x0, generator=generator).float().cpu()
            seconds = time.perf_counter() - start
            quality = measure(x0) if torch.isfinite(x0).all() else math.inf
            results[method].append((steps, quality, seconds))
            samples[method].append(x0)
            done += steps
    if not any(math.isfinite(q) for rows in results.values() for _, q, _ in rows):
        raise InputError(DIVERGED)
    progress(1.0, desc="Real data, scored the same way")
    try:  # `core.evaluate.REAL_DRAWS` draws of n of the data itself: the measure's noise at this n
        real = data_own_range(checkpoint, n, seed)
    except ValueError:  # too few images beside the reference draws: the sweep stands without them
        real = []
    except OSError:  # the data's files could not be read: said in the log, and the sweep stands without them
        log.exception("the data's own range for %s could not be measured", checkpoint.path)
        real = []
    figure = figures.quality_by_steps_figure(
        {SWEPT[m]: [(k, q) for k, q, _ in rows] for m, rows in results.items()}, f"{axis_title} (log scale)", real=real)
    words = sweep_markdown(runs.display_name(checkpoint.path), results, measure_name, n, spacing, ideal, real)
    if kind == "2d":
        words += undrawn_words(counts, samples, n)
    return figure, words, gr.Plot(samples_figure(checkpoint, counts, samples), visible=True)


def undrawn_words(counts: list[int], samples: dict[str, list[torch.Tensor]], n: int) -> str:
    """2D: the samples of each chain that its picture cannot show (beyond the panels' ±4, or not finite numbers), in
    words where there are any: DDIM-5 from an ε network on the cosine schedule throws nearly all out of sight, and its
    picture alone looked like a chain of a few samples."""
    def out_of_sight(x: torch.Tensor) -> int:
        finite = torch.isfinite(x).all(dim=1)
        return int((~finite).sum()) + figures.beyond_the_axes(x[finite])

    undrawn = [(SWEPT[method], k, out_of_sight(x))
               for method, chains in samples.items() for k, x in zip(counts, chains)]
    listed = [f"{name}, {formulas.steps_text(k)}: {m:,}" for name, k, m in undrawn if m]
    if not listed:
        return ""
    return (f"\n\nNot drawn in the pictures, of {n:,} samples a chain (beyond ±{figures.POINT_RANGE[1]:g}, or not "
            f"finite numbers): {'; '.join(listed)}.")


def samples_figure(checkpoint: Checkpoint, counts: list[int], samples: dict[str, list[torch.Tensor]]):
    """A grid of the sweep's samples: one row per sampler, one column per number of steps (``counts``); 2D, every
    sample over the training data in grey; images, the first `SHOWN_IMAGES` of each chain. Samples that are not finite
    numbers are left out (2D) or drawn grey (images)."""
    columns = [formulas.steps_text(k) for k in counts]
    rows = [SWEPT[method] for method in samples]
    if checkpoint.data.kind == "2d":
        cells = [[x[torch.isfinite(x).all(dim=1)].numpy() for x in chains] for chains in samples.values()]
        return panel_grid.noised_grid_figure(cells, rows, columns, kind="points", cell_px=150, points_as_pictures=True,
                                             reference=reference_points(checkpoint))
    side = math.isqrt(SHOWN_IMAGES)
    cells = [[image_grid(torch.nan_to_num(x[:SHOWN_IMAGES], nan=0.0, posinf=1.0, neginf=-1.0), side) for x in chains]
             for chains in samples.values()]
    return panel_grid.noised_grid_figure(cells, rows, columns, kind="images", cell_px=150)


def fewest_steps(rows: list[tuple[int, float, float]], slack: float = 1.25) -> int:
    """The fewest steps whose quality is within ``slack`` times the best of the sweep (lower is better)."""
    best = min(q for _, q, _ in rows)
    return min(k for k, q, _ in rows if q <= slack * best)


def _do(subjects: list) -> str:
    return "does" if len(subjects) == 1 else "do"


def enough_steps(sampler: str, rows: list[tuple[int, float, float]], real: list[float]) -> str:
    """How many steps the sampler needs, in words: the fewest whose score lies inside the data's own range
    (``real``: as good as the data can tell; a best score below that range is noise, and "near the best" would chase
    it), and the longer chains that do not, else, without that range or with no chain inside it, the fewest within
    25 % of the sweep's best."""
    if real:
        inside = [k for k, q, _ in rows if q <= max(real)]
        if inside:
            # "50 steps score inside" had passed over a longer chain outside it again (500 steps: 1.61 over 1.43)
            outside = [f"{k} ({q:.3g})" if math.isfinite(q) else f"{k} (diverged)"
                       for k, q, _ in rows if k > min(inside) and not q <= max(real)]
            also = [str(k) for k in inside if k > min(inside)]
            if not outside:
                longer = ", as do all longer chains" if also else ""
            elif len(outside) <= len(also):
                longer = f", as do the longer chains but {', '.join(outside)}"
            elif also:  # "as do the longer chains but 200, 500, 1000" read as most of them inside, with 100 alone
                longer = (f"; of the longer chains only {', '.join(also)} {_do(also)} too: {', '.join(outside)} "
                          f"{_do(outside)} not")
            else:
                longer = f"; no longer chain does: {', '.join(outside)}"
            return f"{SWEPT[sampler]}: **{min(inside)} steps** score inside the data's own range{longer}"
        best_steps, best = min(((k, q) for k, q, _ in rows), key=lambda row: row[1])
        return f"{SWEPT[sampler]}: no chain scores inside the data's own range (best: {best:.3g}, {best_steps} steps)"
    return f"{SWEPT[sampler]}: **{fewest_steps(rows)} steps** are within 25 % of its best"


def sweep_markdown(name: str, results: dict[str, list[tuple[int, float, float]]], measure_name: str, n: int,
                   spacing: str, ideal: bool, real: list[float]) -> str:
    """The sweep as a table (quality and seconds per chain), per sampler the steps it needs (`enough_steps`), and the
    scores of ``real`` draws of the data (the measure's noise at this n)."""
    def cell(quality: float, seconds: float) -> str:
        took = formulas.seconds_text(seconds)
        return f"{quality:.3g} ({took})" if math.isfinite(quality) else f"diverged ({took})"

    counts = [k for k, _, _ in next(iter(results.values()))]
    header = "| steps | " + " | ".join(SWEPT[m] for m in results) + " |"
    table = [header, "|---|" + "---|" * len(results)] + [
        f"| {k} | " + " | ".join(cell(q, s) for rows in results.values() for kk, q, s in rows if kk == k) + " |"
        for k in counts]
    near = " · ".join(enough_steps(m, rows, real) for m, rows in results.items()
                      if any(math.isfinite(q) for _, q, _ in rows))
    model = "the ideal denoiser of its training examples" if ideal else "its network"
    noise = (f"\n\nThe data itself, {len(real)} draws of {n:,} scored the same way, scores **{min(real):.3g}–"
             f"{max(real):.3g}**, the measure's noise at this size: scores inside that range are as good as the data "
             "itself, and differences smaller than its width are within the noise. Another seed draws other samples and "
             "other data: check a verdict at a second seed before you trust it." if real else "")
    return (f"**{in_markdown(name)}** ({model}), {n:,} samples a chain from the same x_T, steps spaced "
            f"{SPACING_LABELS[spacing]}; {measure_name} (lower is better down to the data's own range: 1 is what "
            "another draw of the data scores on average, so a score below 1 is as good as the data, not better), and "
            f"the seconds each chain took.\n\n" + "\n".join(table) + (f"\n\n{near}." if near else "") + noise)


def build(controls: ReverseControls) -> None:
    """Lay out the panel below the Reverse tab, reading the tab's checkpoint, spacing, seed and ideal box."""
    with gr.Accordion("How many steps does a sampler need? Quality against the number of steps", open=False,
                      elem_id="reverse-steps"):
        gr.Markdown(
            "Samples of DDPM (σ² = β̃) and of deterministic DDIM (η = 0) from the same x_T, for "
            f"{', '.join(map(str, STEP_COUNTS))} steps (up to T; images up to {MAX_IMAGE_STEPS}), spaced as chosen "
            "above, each measured against the data: for 2D the sliced-Wasserstein ratio "
            f"({SWEEP_SAMPLES['2d']:,} points a chain), for images the FID ratio in the shipped classifier's features "
            f"({SWEEP_SAMPLES['image']} images a chain; needs the data set's files; with fewer, every chain would "
            "score about 1). DDIM, which adds no noise, "
            "usually needs far fewer steps than DDPM; an ε network on the cosine schedule breaks DDIM for 2D data.")
        sweep_btn = gr.Button("Sweep the number of steps")
        plot = gr.Plot(label="Sample quality against the number of steps", elem_id="reverse-steps-plot",
                       visible=False)
        pictures = gr.Plot(label="The samples of each chain, from the same x_T", elem_id="reverse-steps-samples",
                           visible=False)
        stats = gr.Markdown()
    c = controls
    show_when(sweep_btn.click, plot)
    results_make_way(c, plot, stats, pictures)
    c.job_click(sweep_btn, sweep_steps, [c.checkpoint, c.spacing, c.seed, c.ideal, c.trained], [plot, stats, pictures])
