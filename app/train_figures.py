"""What the Train tab draws: the status line with its progress bar, the loss curve (each step and smoothed, on a
log scale), the error by noise level t beside an earlier run's, the preview samples over the training data, and the
filmstrip of a run's previews so far."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import numpy as np
import torch

from app import figures, log_axes, panel_grid, train_plan
from app.images import dataset_images, image_grid
from app.own_points import OWN_POINTS, OwnPoints
from app.reverse_tab import read_samples
from app.runs import display_name
from app.train_plan import Plan, data_kind_of
from core.checkpoints import CheckpointError, model_prediction, read_config
from core.conditioning import cycling_labels
from core.data import DataInfo
from core.datasets import DEFAULT_TOY_POINTS, load_training_data
from core.guidance import read_classes
from core.metrics import non_finite_count
from core.prediction import PREDICTION_ESTIMATES, PREDICTION_SYMBOLS, Prediction
from core.sampler import describe_steps
from core.trainer import LOSS_BUCKETS, TrainConfig, Trainer, loss_bucket_ranges, loss_name


EMPTY_LOSS_RANGE = [-1.0, 0.0]  # log10 range of the loss axis before the first loss: 0.1 … 1
MAX_PLOT_POINTS = 1500  # the loss curve is thinned to about this many points per trace
SMOOTHING_WINDOW = 0.04  # the smoothed loss averages over this fraction of the run's steps (centred)
PREVIEW_HEIGHT = 400  # pixels
MEASURED_PER_RANGE = {"2d": 512, "image": 32}  # (x_0, t, ε) per range of t when measuring a checkpoint's error by t
NOTHING_SEEN = [math.nan] * LOSS_BUCKETS  # the error-by-t plot before a run's first progress event
FILMSTRIP_FRAMES = 6  # previews side by side in the filmstrip, at most
FILMSTRIP_CELL_PX = 150  # a filmstrip panel's side, at full width


# The status line's colour for each tone, on the light and the dark theme: each ≥ 4.5:1 on its background. Tailwind's
# 600s had been used on both: amber's "Stopped … Saved as" was 3.2:1 on white, faint on a projector.
TONE_COLOURS = {"info": ("#2563eb", "#60a5fa"), "ok": ("#15803d", "#4ade80"), "warn": ("#b45309", "#fbbf24"),
                "error": ("#dc2626", "#f87171")}
# the status's colours; its bar's track in the theme's (a light grey one glared on the dark theme); on a narrow screen
# the status takes a line of its own above Start and Stop (squeezed beside them on a phone, it was a word per line)
STATUS_CSS = "\n".join([
    *(f".train-status .tone-{tone} {{color: {light}}}\n.dark .train-status .tone-{tone} {{color: {dark}}}"
      for tone, (light, dark) in TONE_COLOURS.items() if tone != "info"),  # info's text keeps the page's colour
    *(f".train-status[data-tone={tone}] .train-progress {{background: {light}}}\n"
      f".dark .train-status[data-tone={tone}] .train-progress {{background: {dark}}}"
      for tone, (light, dark) in TONE_COLOURS.items()),  # the bar in the tone's colour, the dark theme's on it
    ".train-track {background: #e5e7eb}\n.dark .train-track {background: #374151}",
    "#train-status {min-width: min(280px, 100%) !important}",
])


def status_html(text: str, *, fraction: float | None = None, tone: str = "info", notes: list[str] | None = None) -> str:
    """The Train tab's status: ``text`` in its ``tone``'s colour, a progress bar at ``fraction`` (None: none), and
    ``notes`` as warnings. While a run goes on (an info line with a bar) it is marked busy, so that a screen reader
    reads out where the run ends, not each second's progress (`app.accessibility`)."""
    if tone not in TONE_COLOURS:
        raise ValueError(f"unknown tone {tone!r}")
    bar = ""
    if fraction is not None:
        pct = 100 * min(1.0, max(0.0, fraction))
        bar = (
            '<div class="train-track" style="border-radius:6px;height:10px;margin:4px 0 6px 0">'
            f'<div class="train-progress" style="width:{pct:.1f}%;height:10px;'
            'border-radius:6px"></div></div>'
        )
    extra = "".join(f'<div class="tone-warn">⚠ {html.escape(n)}</div>' for n in notes or [])
    busy = " data-busy" if tone == "info" and fraction is not None else ""
    return (
        f'<div class="train-status" data-tone="{tone}"{busy}>{bar}'
        f'<div class="tone-{tone}">{text}</div>{extra}</div>'
    )


def _thin(values: np.ndarray, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(values) <= MAX_PLOT_POINTS:
        return steps, values
    index = np.linspace(0, len(values) - 1, MAX_PLOT_POINTS).round().astype(int)
    return steps[index], values[index]


def smooth(losses: np.ndarray) -> np.ndarray:
    """Geometric mean of the losses in a centred window of ~SMOOTHING_WINDOW of the run (cut off at its ends).

    Centred, so the curve does not lag behind a fast-falling loss (a causal moving average trails it by
    half its window, far above the raw losses on a log axis); at the newest step the window is one-sided
    but only ~2 % of the run long. Geometric, because the axis is logarithmic: away from the ends a loss
    that falls exponentially is reproduced exactly. Non-finite losses are left out.
    """
    n = len(losses)
    half = int(SMOOTHING_WINDOW * n / 2)
    finite = np.isfinite(losses) & (losses > 0)
    logs = np.log(np.where(finite, losses, 1.0))
    sums = np.concatenate([[0.0], np.cumsum(np.where(finite, logs, 0.0))])
    counts = np.concatenate([[0], np.cumsum(finite)])
    i = np.arange(n)
    lo, hi = np.maximum(0, i - half), np.minimum(n, i + half + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.exp((sums[hi] - sums[lo]) / (counts[hi] - counts[lo]))  # NaN where a window has no finite loss


def loss_label(min_snr_gamma: float, prediction: Prediction = "eps") -> str:
    """The loss axis title: the squared error of the target, plain or Min-SNR-γ weighted (short: it must fit)."""
    error = f"‖{PREDICTION_SYMBOLS[prediction]} − {PREDICTION_ESTIMATES[prediction]}‖²"
    if min_snr_gamma > 0:
        return f"{loss_name(min_snr_gamma)} weighted {error}"
    return f"loss {error} (mean)"


def log_loss_axis(values: np.ndarray, title: str) -> dict:
    """A log y axis for losses, labelled by `log_axes.log_labels` (padded about one loss, or losses within a few per
    cent, where plotly's own fit shows no labels); 0.1 … 1 while there are no values to show."""
    axis = dict(title=dict(text=title), type="log", **log_axes.log_labels(values))
    if not len(values):
        axis["range"] = EMPTY_LOSS_RANGE
    return axis


@dataclass
class ErrorByT:
    """An earlier run's error by t (its checkpoint's ``training["loss_by_t"]``), drawn beside a run's for comparison."""

    label: str
    values: list[float]  # LOSS_BUCKETS means of ‖ε − ε̂‖² (NaN: no data), over the ranges of t of the run's own T


def reference_error_by_t(plan: Plan, trained: list | None) -> ErrorByT | None:
    """The run a new model's run compares with: this browser's latest run on the same data and T (a swiss roll's errors
    had been drawn beside a moons run's, as if the target or the schedule made the difference, and a T = 1,000 run's
    over the first tenth of a T = 10,000 run's axis); None when there is none,
    when it recorded no error by t (checkpoints from before the record) or when the run continues a checkpoint (see
    `starting_error_by_t`)."""
    if plan.init_from is not None:
        return None
    data = plan.own.info.name if plan.own is not None else plan.data
    for path in map(Path, reversed(trained or [])):
        try:
            config = read_config(path)
        except CheckpointError:  # gone meanwhile
            continue
        if config.get("data", {}).get("name") != data or config.get("schedule", {}).get("T") != plan.schedule.T:
            continue
        try:
            values = config["training"]["loss_by_t"]
            predicts = PREDICTION_SYMBOLS.get(model_prediction(config), "?")
            label = f"{display_name(path)} (predicts {predicts}, {config['schedule']['name']})"
        except (KeyError, TypeError, ValueError):
            return None
        if not isinstance(values, list) or len(values) != LOSS_BUCKETS:
            return None
        return ErrorByT(label, [float("nan") if v is None else float(v) for v in values])
    return None


def starting_error_by_t(plan: Plan, trainer: Trainer) -> ErrorByT:
    """A continued run compares with the checkpoint's error by t as the run starts, measured on the run's data
    (`Trainer.measure_error_by_t`): the checkpoint's record is the mean over its whole run, whose early steps a run
    starting from the trained weights never repeats."""
    predicts = PREDICTION_SYMBOLS[plan.prediction]
    label = f"{display_name(plan.init_from)} at the start (predicts {predicts}, {plan.schedule.name})"
    return ErrorByT(label, trainer.measure_error_by_t(MEASURED_PER_RANGE[plan.kind]))


def error_by_t_figure(bucket_loss: list[float], T: int, reference: ErrorByT | None = None, label: str = "this run"):
    """The unweighted ε-prediction error ‖ε − ε̂‖² per range of t (`Trainer.bucket_loss`: LOSS_BUCKETS equal
    ranges of 1..T, the mean over the run so far), as bars on a log axis. Large at small t, where the noise is a
    small part of x_t and hard to tell from the data; near 0 at large t, where x_t is almost ε itself. An earlier
    run's (``reference``) is drawn over the bars as a line, to compare e.g. two prediction targets."""
    values = np.asarray(bucket_loss, dtype=np.float64)
    lows, highs = np.array(loss_bucket_ranges(T)).T
    seen = np.isfinite(values) & (values > 0)
    data = []
    if seen.any():
        data.append(dict(
            type="bar", x=((lows + highs) / 2)[seen], y=values[seen], width=(highs - lows + 1)[seen] * 0.9,
            marker=dict(color="#6baed6"),
            customdata=np.stack([lows, highs], axis=1)[seen], name=label,
            hovertemplate="t %{customdata[0]}–%{customdata[1]}: %{y:.3g}<extra>" + html.escape(label) + "</extra>",
        ))
    shown = values[seen]
    if reference is not None:
        ref = np.asarray(reference.values, dtype=np.float64)
        ref_seen = np.isfinite(ref) & (ref > 0)
        data.append(dict(
            type="scatter", mode="lines+markers", x=((lows + highs) / 2)[ref_seen], y=ref[ref_seen],
            line=dict(color="#d94801", width=2), marker=dict(size=5), name=figures.two_line_name(reference.label),
            hovertemplate="t %{x:.0f}: %{y:.3g}<extra>" + html.escape(reference.label) + "</extra>",
        ))
        shown = np.concatenate([shown, ref[ref_seen]])
    layout = figures.plot_layout(
        280 if reference is None else 320, showlegend=reference is not None, bargap=0,
        legend=figures.LEGEND_BELOW,  # clear of the bars and the line, which are highest at either end
        xaxis=figures.titled_axis(  # T < 20: a bar for each t (it had said 20 ranges over 2 bars, the last cut)
            f"t (noise level), in {LOSS_BUCKETS} ranges" if T >= LOSS_BUCKETS else "t (noise level)",
            range=[0, T + 0.5]),
        yaxis=log_loss_axis(shown, "‖ε − ε̂‖² (mean)"),
    )
    if not seen.any():  # before a run's first steps: say what will be drawn here, as the loss plot does (on two
        # lines: a phone's plot is 300 px wide), also over an earlier run's line (a run that diverged at once had left
        # that line alone, one point of it, without a word)
        layout["annotations"] = [dict(text="the error in each range of t<br>is drawn here as a run trains",
                                      xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False,
                                      font=dict(size=15, color="#666"))]
    return figures.fast_figure(data, layout)


def loss_figure(losses: list[float], min_snr_gamma: float | None = None, prediction: Prediction = "eps"):
    """Training loss per step, raw (light) and smoothed, on a log y axis; the axis names the target and the loss
    weighting (``min_snr_gamma``: 0 for the plain loss; None before a run, when they are not known yet: the tab's
    defaults weight image runs with Min-SNR-5 and 2D runs not at all)."""
    values = np.asarray(losses, dtype=np.float64)
    steps = np.arange(1, len(values) + 1)
    data = []
    if len(values):
        sm = smooth(values)
        x, y = _thin(values, steps)
        xs, ys = _thin(sm, steps)
        mode = "lines" if len(values) > 1 else "lines+markers"  # one step's loss: a line of one point shows nothing
        data = [
            dict(type="scatter", x=x, y=y, mode=mode, name="loss (each step)",
                 line=dict(color="#9ecae1", width=1), hoverinfo="x+y"),
            dict(type="scatter", x=xs, y=ys, mode=mode, name="smoothed",
                 line=dict(color="#08519c", width=2.5), hoverinfo="x+y"),
        ]
    layout = figures.plot_layout(
        320,
        legend=dict(x=0.99, xanchor="right", y=0.99),
        xaxis=dict(title=dict(text="training step"), rangemode="tozero",
                   **({"dtick": 1} if len(values) < 10 else {})),  # whole steps, not 0.2, 0.4, … on a short run
        yaxis=log_loss_axis(values, "loss" if min_snr_gamma is None else loss_label(min_snr_gamma, prediction)),
    )
    if not len(values):  # before a run: say what will be drawn here, on two lines (a phone's plot is 300 px wide)
        layout["annotations"] = [dict(text="the loss of each step is drawn<br>here once a run starts", xref="paper",
                                      yref="paper", x=0.5, y=0.5, showarrow=False, font=dict(size=15, color="#666"))]
    return figures.fast_figure(data, layout)


def preview_plot(samples: torch.Tensor, data: torch.Tensor, caption: str, info: DataInfo,
                 classes: Sequence[str] = ()) -> gr.Plot:
    """The preview plot, labelled by `preview_label`."""
    label = preview_label(samples, caption, info, classes)
    return gr.Plot(preview_figure(info.kind, samples, data, classes), label=label)


def preview_label(samples: torch.Tensor, caption: str, info: DataInfo, classes: Sequence[str] = ()) -> str:
    """The preview plot's label: the weights, the step and the sampler that drew the samples (``caption``), and what
    they show: for a class-conditional model (``classes``: its data's, in label order; sample i is of class i mod K)
    how many are of their class; for image data with a shipped classifier (MNIST) how many classes it reads. Samples
    that are not finite numbers are counted instead (a run of one step at a huge learning rate had shown an empty
    preview without a word)."""
    broken = non_finite_count(samples)
    if broken:
        caption += (f" · ⚠ {broken:,} of {len(samples):,} samples are not finite numbers (NaN or ±∞): the model breaks "
                    "down when sampled")
    elif classes:
        caption += f" · {class_layout(info.kind, classes)}"
        read = read_classes(info, samples)
        if read is not None:
            asked = [classes[k] for k in cycling_labels(len(samples), len(classes)).tolist()]
            hits = sum(got == want for got, want in zip(read[0], asked))
            caption += f" · {hits:,} of {len(samples):,} {read[1]} their class"
    elif info.kind == "image" and (reading := read_samples(samples, info.name)) is not None:
        caption += f" · the {reading.dataset.upper()} classifier reads {reading.present} of its {reading.n_classes} classes"
    return caption


def class_layout(kind: str, classes: Sequence[str]) -> str:
    """How a conditional run's preview shows its classes."""
    return f"one column per class ({classes[0]} … {classes[-1]})" if kind == "image" else "coloured by class"


def chain_caption(method: str, steps: int, spacing: str, T: int) -> str:
    """E.g. "DDPM, 100 of T = 1000 steps, evenly in log-SNR" or "DDPM, all T = 1000 steps"."""
    return f"{method.upper()}, {describe_steps(steps, T, spacing)}"  # type: ignore[arg-type]


def preview_caption(trainer: Trainer, full_chain: bool = False) -> str:
    """The sampler of `Trainer.preview`, for the plot's label."""
    return chain_caption(**trainer.preview_chain(full_chain), T=trainer.schedule.T)  # type: ignore[arg-type]


def upcoming_previews(config: TrainConfig) -> str:
    """The preview plot's label before its first preview: when the samples will come."""
    every = config.preview_every
    if every and every < config.steps:
        return f"Samples from the EMA weights: the first after step {every:,}, then every {every:,} steps"
    return "Samples from the EMA weights: at the end of the run"


def preview_figure(kind: str, samples: torch.Tensor | None, data: torch.Tensor, classes: Sequence[str] = ()):
    """2D: the samples (blue) over `train_plan.PREVIEW_POINTS` training points (grey), as many as the samples, so
    that they can be judged against the data. Images: a 4 × 4 grid of the samples or, while there are none, of the
    first training images. Samples of a class-conditional model (``classes``; sample i of class i mod K): coloured
    by class, or one column per class."""
    labels = None if samples is None or not classes else cycling_labels(len(samples), len(classes)).numpy()
    if kind == "2d":
        points = None if samples is None else samples.numpy()
        return figures.points_figure(points, height=PREVIEW_HEIGHT, name="samples",
                                     reference=data[:train_plan.PREVIEW_POINTS].cpu().numpy(), labels=labels,
                                     label_names=classes)
    if kind == "image":
        shown = data[:train_plan.PREVIEW_IMAGES] if samples is None else samples
        nrow = 4 if labels is None else len(classes)
        return figures.image_figure(image_grid(shown.cpu(), nrow=nrow), height=PREVIEW_HEIGHT)
    raise ValueError(f"unknown data kind {kind!r}")


def filmstrip_frames(n: int, frames: int = FILMSTRIP_FRAMES) -> list[int]:
    """Which of a run's n previews so far the filmstrip shows: all of them up to ``frames``, else ``frames`` of them,
    the first and the newest among them, spread evenly in the logarithm of their order. The previews come every so
    many steps, so these are spread evenly in log(step), closest together at the start, where the samples change
    most (for 20 previews: the 1st, 2nd, 3rd, 6th, 11th and 20th)."""
    if n <= frames:
        return list(range(n))
    chosen: list[int] = []
    for i in range(frames):
        ideal = round(n ** (i / (frames - 1))) - 1
        lowest = chosen[-1] + 1 if chosen else 0  # after the one before
        highest = n - frames + i  # room for the ones after
        chosen.append(min(max(ideal, lowest), highest))
    return chosen


def no_filmstrip() -> gr.Plot:
    """The filmstrip before a run's second preview: hidden."""
    return gr.Plot(None, visible=False)


def filmstrip_plot(kind: str, previews: Sequence[tuple[int, torch.Tensor]], classes: Sequence[str] = ()) -> gr.Plot:
    """The filmstrip under the preview plot: a run's previews so far (``previews``: (step, samples) in the order they
    came), `filmstrip_frames` of them side by side, each titled with its step, so that the learning can be seen at a
    glance rather than one preview at a time. 2D: the samples, without the training data the preview draws beneath
    them (which made each update of the strip three times larger: 311 kB against 108 kB for six panels); images: the
    preview's grid. Hidden until the run's second preview (the first is the preview plot itself)."""
    if len(previews) < 2:
        return no_filmstrip()
    shown = [previews[i] for i in filmstrip_frames(len(previews))]
    titles = [f"step {step:,}" for step, _ in shown]
    if kind == "2d":
        figure = panel_grid.noised_grid_figure([[samples.numpy() for _, samples in shown]], [""], titles,
                                               kind="points", cell_px=FILMSTRIP_CELL_PX, points_as_pictures=True)
    else:
        nrow = len(classes) or 4
        figure = panel_grid.noised_grid_figure([[image_grid(samples, nrow) for _, samples in shown]], [""], titles,
                                               kind="images", cell_px=FILMSTRIP_CELL_PX)
    which = "all" if len(shown) == len(previews) else f"{len(shown)} of"
    spread = "" if len(shown) == len(previews) else ", closer together at the start, where they change most"
    label = f"How the samples came to be: {which} this run's {len(previews)} previews side by side{spread}"
    return gr.Plot(figure, visible=True, label=label)


def training_data_figure(name: str, own: OwnPoints | None = None, n_points: int = DEFAULT_TOY_POINTS, seed: int = 0):
    """The preview plot's figure before a run on data ``name``: its training data alone (2D: the ``n_points``
    points a run with ``seed`` draws; OWN_POINTS: the session's own points, ``own``)."""
    kind = data_kind_of(name)
    if name == OWN_POINTS:
        return preview_figure(kind, None, own.points) if own is not None else figures.points_figure(
            None, height=PREVIEW_HEIGHT)
    data = load_training_data(name, n_points=n_points, seed=seed)[0] if kind == "2d" \
        else dataset_images(name, train_plan.PREVIEW_IMAGES)
    return preview_figure(kind, None, data)
