"""Plotly figures shared by the tabs, and what every figure is built from: the house layout and colours, point clouds,
images, histograms, legends and titled axes; the survival of data under noise, DDIM's paths between noises, and the
variational bound and sample quality against the number of steps.

Only drawing here: every number plotted comes from `core` or from the caller. Figures use no layout title (Gradio
shows the component label instead) and fixed axes where the content changes with a slider, so that scrubbing does not
make them jump. Elsewhere by job: `app.point_pictures` (point clouds drawn as one picture), `app.panel_grid` (grids
of small panels), `app.schedule_figures` (noise schedules), `app.log_axes` (log axes' labels) and `app.plot_page`
(the page's CSS and JavaScript for plots).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

import gradio as gr
import numpy as np
import orjson
import plotly.colors
import plotly.graph_objects as go
import torch
from gradio.components.plot import PlotData
from plotly.utils import PlotlyJSONEncoder

from app.images import png_data_uri
from app.log_axes import log_labels, up_to_a_label
from core.schedules import NoiseSchedule

POINT_RANGE = (-4.0, 4.0)  # fixed axes for 2D point clouds: N(0, I) fits with room to spare
HIST_RANGE = (-4.0, 4.0)  # value axis of x_t histograms
HIST_BINS = 80
POINT_COLOR = "#1f77b4"
POINT_SIZE, POINT_OPACITY = 3, 0.6  # a point's marker: its diameter in CSS pixels, its opacity
CLASS_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf"]
REFERENCE_COLOR = "#949494"  # training data drawn beneath samples: 3:1 on white, 1.8:1 at POINT_OPACITY where
# points do not overlap (#b8b8b8 was 2.0:1 and 1.5:1)
NOISE_COLOR = "#d62728"
SCHEDULE_COLORS = {  # one fixed colour per schedule, the same in every figure
    "linear": "#1f77b4",
    "cosine": "#ff7f0e",
    "sigmoid": "#2ca02c",
    "sigmoid_beta": "#d62728",
    "quadratic": "#9467bd",
    "custom": "#8c564b",
}
MARGIN = dict(l=55, r=25, t=20, b=45)  # t: room for the top tick's label (10³); a plot's own label sits above it (CSS)
# a cyclic colour scale, spelled out: plotly.js knows only its own named scales, and figures are sent as plain JSON
HUE_SCALE = [[k / (len(plotly.colors.cyclical.HSV) - 1), c] for k, c in enumerate(plotly.colors.cyclical.HSV)]


def beyond_the_axes(points: torch.Tensor | np.ndarray) -> int:
    """How many of the 2D ``points`` (N, 2) lie beyond the fixed axes `POINT_RANGE`, where a plot cannot show them."""
    return int((np.abs(np.asarray(points)) > POINT_RANGE[1]).any(axis=1).sum())


def angle_hues(points: np.ndarray) -> np.ndarray:
    """2D points (N, 2): each one's hue for `HUE_SCALE`, its angle around the origin as a share of a full turn
    (0..1), so that a point can be followed from panel to panel by its colour."""
    return (np.arctan2(points[:, 1], points[:, 0]) + math.pi) / (2 * math.pi)


_N_GRID = np.linspace(*HIST_RANGE, 401)
_N_DENSITY = np.exp(-0.5 * _N_GRID**2) / math.sqrt(2 * math.pi)  # N(0, 1) density, drawn for reference


def schedule_color(schedule: NoiseSchedule) -> str:
    """The schedule's colour, the same in every figure."""
    return SCHEDULE_COLORS.get(schedule.name, POINT_COLOR)


# No plotly.py template: resolving one copies it per figure (5–50 ms); plotly.js's own defaults
# (white background, light grid) look clean, and an empty template keeps plotly.py from adding its own.
_TICKS_APART = {"ticklabelstandoff": 5}  # keeps the x and y labels apart where the axes meet (e.g. "0" and "−4")
HOUSE_STYLE = {"template": {"layout": {"xaxis": _TICKS_APART, "yaxis": _TICKS_APART}},
               "paper_bgcolor": "white", "plot_bgcolor": "white", "font": {"size": 13}}


def plot_layout(height: int, **extra) -> dict:
    """The layout every figure starts from: its height, `MARGIN`, the house style, and ``uirevision`` kept so that a
    redraw leaves a user's zoom and hidden legend entries as they were; ``extra`` adds or replaces keys."""
    return {"height": height, "margin": MARGIN, "uirevision": "keep", **HOUSE_STYLE, **extra}


def fast_figure(data: list[dict], layout: dict) -> PlotData:
    """A figure for `gr.Plot` straight from plain trace/layout dicts, as the JSON Gradio sends.

    Building a `go.Figure` costs 2–50 ms (property validation, template copies): too slow for a
    slider that redraws three figures per step. The dicts here follow plotly's schema; tests
    check that with `as_figure`, which builds a validated `go.Figure` from the JSON.
    """
    return PlotData(type="plotly", plot=figure_json({"data": data, "layout": layout}))


_PLOTLY_VALUES = PlotlyJSONEncoder()  # what orjson cannot write itself: a non-contiguous array, a tensor, …
_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS  # as plotly.io's own orjson engine
SIGNIFICANT_DIGITS = 5  # a figure's numbers are sent to 1 part in 10⁵ of their value: a 4,000-pixel plot of a range
# 1 % of its values wide still draws them to the pixel; 17 digits (float64's) had been sent, 2–3× the bytes
SMALLEST_ROUNDED = 1e-290  # smaller values go as they are: their scale, 10^(digits − 1 − magnitude), would pass
# float64's largest (ᾱ_t reaches core's floor, 2.2e-308, on a long chain; rounded, it had been sent as null)


def to_significant_digits(values: np.ndarray, digits: int = SIGNIFICANT_DIGITS) -> np.ndarray:
    """A float array rounded to ``digits`` significant digits, never past its whole units (a step, a t stays
    exact); NaN, ±inf and values under `SMALLEST_ROUNDED` (0 too) as they are. Each value is then float64's nearest
    to its short decimal, which orjson writes in as few digits."""
    values = np.asarray(values, dtype=np.float64)
    rounded = np.isfinite(values) & (np.abs(values) >= SMALLEST_ROUNDED)
    magnitude = np.floor(np.log10(np.abs(np.where(rounded, values, 1.0))))
    scale = 10.0 ** np.maximum(digits - 1 - magnitude, 0)
    return np.where(rounded, np.round(values * scale) / scale, values)


def _short(value):
    """``value`` with each float array in it, at any depth of dicts and lists, `to_significant_digits`."""
    if isinstance(value, dict):
        return {key: _short(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_short(item) for item in value]
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return to_significant_digits(value)
    return value


def figure_json(figure: dict) -> str:
    """A figure's dict as JSON, as `plotly.io.to_json` writes it, but with its float arrays' numbers to
    `SIGNIFICANT_DIGITS` (the Schedules tab's curves, 2D point clouds, the loss curve resent each second) and
    without its escapes for a page's <script>: it writes each "/" as "\\u002f" (6 characters, 7 once Gradio sends
    the string inside its own JSON), and a picture's base64 is up to a fifth "/" (white and black pixels are 0xFF
    and 0x00 bytes): a move of the Forward tab's t sent its MNIST grid's 80 kB as 168 kB. Gradio escapes what it puts
    in a page itself (`gradio.routes.toorjson`)."""
    return orjson.dumps(_short(figure), default=_PLOTLY_VALUES.default, option=_JSON_OPTIONS).decode()


def as_figure(plot: PlotData | gr.Plot | go.Figure) -> go.Figure:
    """A validated go.Figure from what a handler returned: a figure, or a `gr.Plot` update holding one
    (raises if the JSON breaks plotly's schema)."""
    if isinstance(plot, go.Figure):
        return plot
    if isinstance(plot, gr.Plot):
        return go.Figure(json.loads(plot.value["plot"]))
    return go.Figure(json.loads(plot.plot))


# ----- single panels --------------------------------------------------------------------------


def points_figure(points: np.ndarray | None, *, height: int = 460, name: str = "x_t",
                  reference: np.ndarray | None = None, labels: np.ndarray | None = None,
                  label_names: Sequence[str] = ()) -> PlotData:
    """A 2D point cloud (N, 2) on fixed, equal axes [−4, 4]²; ``reference``: the training data, drawn in
    grey beneath it (with a legend), so that samples can be judged against it; ``labels`` (N,): each point's class,
    an index into ``label_names``, drawn in one colour per class (with a legend)."""
    data = []
    if reference is not None:
        data.append(_points_trace(reference, name="training data", color=REFERENCE_COLOR))
    if points is not None and labels is not None:
        data += [_points_trace(points[labels == k], name=f"{name}: {class_name}",
                               color=CLASS_COLORS[k % len(CLASS_COLORS)]) for k, class_name in enumerate(label_names)]
    elif points is not None:
        data.append(_points_trace(points, name=name, color=POINT_COLOR))
    legend = reference is not None or labels is not None
    return fast_figure(data, plot_layout(height, **point_axes(legend)))


def point_axes(legend: bool) -> dict:
    """Layout of a 2D plot: fixed, equal axes [−4, 4]², and the legend (when shown) at the bottom right, clear of a
    long label."""
    return dict(
        showlegend=legend,
        legend=dict(x=1, xanchor="right", y=0, yanchor="bottom", itemsizing="constant"),
        xaxis=dict(range=list(POINT_RANGE), title=dict(text="x₁"), zeroline=True, fixedrange=True, constrain="domain"),
        yaxis=dict(range=list(POINT_RANGE), title=dict(text="x₂"), zeroline=True, fixedrange=True, scaleanchor="x"),
    )


def _points_trace(points: np.ndarray, *, name: str, color: str) -> dict:
    return dict(type="scatter", x=points[:, 0], y=points[:, 1], mode="markers",
                marker=dict(size=POINT_SIZE, color=color, opacity=POINT_OPACITY), name=name, hoverinfo="skip")


def corner_label(text: str, x: float, y: float, *, above: bool = False) -> dict:
    """An annotation naming what a picture shows ("x_t · t = 250"), at the top left corner (x, y) of its axes (in
    their units: "x domain" is the axes' width before an equal-scale axis shrinks it): inside on a white box, or
    ``above`` the axes (for a picture that fills them), so that a screenshot of the plot alone says it."""
    return dict(text=text, x=x, y=y, xref="x", yref="y", xanchor="left", yanchor="bottom" if above else "top",
                showarrow=False, font=dict(size=CORNER_LABEL_SIZE), bgcolor="rgba(255,255,255,0.85)", borderpad=2)


CORNER_LABEL_SIZE = 16  # px, as the 2D frames of the player (`app.player.SMALL_TEXT`)


def image_figure(pixels: np.ndarray, *, height: int = 460, label: str = "") -> PlotData:
    """A uint8 picture (H, W) or (H, W, 3), without axes (sent as BMP: 10× faster than PNG), drawn pixel-sharp by the
    app's CSS (`app.plot_page.PICTURE_CSS`); ``label`` above it (`corner_label`).

    A layout image, not an image trace: Gradio draws every new figure on a new plot, and plotly shows an image
    trace only once its picture has loaded a second time, a frame or more later, so that x_t flashed blank while
    t was dragged. A layout image's picture is set at once.
    """
    rows, cols = pixels.shape[:2]
    named = {"annotations": [corner_label(label, 0, 0, above=True)]} if label else {}  # y runs down: 0 is the top
    layout = plot_layout(
        height,
        margin=dict(l=5, r=5, t=CORNER_LABEL_SIZE + 12 if label else 5, b=5),
        **named,
        xaxis=dict(visible=False, fixedrange=True, range=[0, cols], constrain="domain"),
        yaxis=dict(visible=False, fixedrange=True, range=[rows, 0], scaleanchor="x", constrain="domain",
                   constraintoward="top"),  # in a narrow plot, under its label (a phone: ~100 px of blank above it)
        images=[dict(source=png_data_uri(pixels, fmt="BMP"), xref="x", yref="y", x=0, y=0, sizex=cols, sizey=rows,
                     xanchor="left", yanchor="top", sizing="stretch", layer="below")],
    )
    return fast_figure([], layout)


def picture_source(figure: go.Figure) -> str:
    """The data URI of an `image_figure`'s picture."""
    return figure.layout.images[0].source


LEGEND_HEADROOM = 1.35  # the histogram's y range over its tallest value: its two-line legend (~45 px of the 195 px
# plot area) had covered the peaks it is there to compare


def histogram_figure(values: torch.Tensor | np.ndarray, *, height: int = 260, name: str = "x_t values") -> PlotData:
    """Density histogram of all values of x_t on [−4, 4] (its legend entry: ``name``), with the N(0, 1) density over
    it."""
    if isinstance(values, torch.Tensor):
        values = values.detach().to("cpu", torch.float32).numpy()
    values = np.asarray(values).reshape(-1)
    width = (HIST_RANGE[1] - HIST_RANGE[0]) / HIST_BINS
    counts, _ = np.histogram(values, bins=HIST_BINS, range=HIST_RANGE)
    density = counts / (values.size * width)  # values outside [−4, 4] are left out of the bars
    centres = HIST_RANGE[0] + width * (np.arange(HIST_BINS) + 0.5)
    data = [
        dict(type="bar", x=centres, y=density, width=width, marker=dict(color=POINT_COLOR), opacity=0.75, name=name),
        dict(type="scatter", x=_N_GRID, y=_N_DENSITY, mode="lines", line=dict(color=NOISE_COLOR, width=2), name="N(0, 1)"),
    ]
    top = max(float(density.max()), float(_N_DENSITY.max())) * LEGEND_HEADROOM  # the legend in the room above the data
    layout = plot_layout(
        height,
        bargap=0,
        legend=dict(x=0.99, xanchor="right", y=0.99),
        xaxis=dict(range=list(HIST_RANGE), title=dict(text="value"), fixedrange=True),
        yaxis=dict(title=dict(text="density"), range=[0, top], fixedrange=True),
    )
    return fast_figure(data, layout)


LEGEND_LINE_CHARS = 40  # `two_line_name`: a legend entry longer than this is broken in two


def two_line_name(name: str, limit: int = LEGEND_LINE_CHARS) -> str:
    """A legend entry longer than ``limit`` characters, broken before its parenthesis onto a second line: plotly never
    wraps a legend entry and cuts off one wider than the plot (a run's name with its settings, 60 characters, on a
    phone). Shorter names, and names without a parenthesis, are left whole."""
    head, sep, tail = name.partition(" (")
    return f"{head}<br>({tail}" if sep and len(name) > limit else name


# Below the x axis's title (see `titled_axis`), at the figure's foot: plotly makes room for it above that. Placed at a
# fraction of the plot's height below the axis instead, a legend that wrapped onto several rows on a phone shrank the
# plot and rose into the axis's title.
LEGEND_BELOW = dict(orientation="h", yref="container", y=0, yanchor="bottom", x=0)


def titled_axis(title: str, *, log: bool = False, **extra) -> dict:
    """A titled axis, as the line plots have: room made for its title (the legend sits below it), no dark zero line;
    a log axis labels the powers of ten only, unless given tickvals."""
    axis = dict(title=dict(text=title, standoff=15), automargin=True, zeroline=False, **extra)
    return dict(axis, type="log", dtick=1, exponentformat="power") if log else dict(axis, type="linear")


def whole_steps(last: int) -> dict:
    """Ticks of an axis of steps 0..``last``: one per step up to 10 (at T = 2 they had read 0.5 and 1.5), plotly's
    own above."""
    return dict(dtick=1) if last <= 10 else {}


def hline(y: float) -> dict:
    """A dotted grey line across the plot at height y (data units: the value itself, also on a log axis)."""
    return dict(type="line", xref="paper", x0=0, x1=1, yref="y", y0=y, y1=y, line=dict(color="grey", dash="dot", width=1))


# ----- survival of the data under noise ------------------------------------------------------------

SURVIVAL_AXES = ("t", "log_snr")
CURVE_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
LOG_SNR_FLOOR = -12.0  # the log-SNR axis stops here: the t₀ = T of a schedule capped at β_T = 0.999 lies near −20


@dataclass(frozen=True)
class SurvivalCurve:
    """One sweep of chains joined at t₀ (SDEdit), as the survival plot draws it."""

    label: str  # the model and sampler
    t0s: list[int]
    log_snrs: list[float]  # log-SNR at each t₀
    ratios: list[float] | None  # the return ratio of the samples to their examples (0: all came back, 1: nothing
    # left); None from copies of one drawing (`app.own_drawing`), which have no others to be told from
    kept: list[float] | None = None  # images with a classifier: the share of samples read as their example's class


def survival_figure(curves: Sequence[SurvivalCurve], x_axis: str = "t", *, height: int = 440) -> PlotData:
    """The return ratio (solid) and the share that kept its class (dotted) of each curve, where known, against t₀
    or, with ``x_axis="log_snr"``, against the log-SNR at t₀ (reversed: clean data on the left, as with t), where
    models of different schedules can be compared: the SNR, not t, sets what survives."""
    if x_axis not in SURVIVAL_AXES:
        raise ValueError(f"x_axis must be one of {SURVIVAL_AXES}, got {x_axis!r}")
    data = []
    for k, curve in enumerate(curves):
        color = CURVE_COLORS[k % len(CURVE_COLORS)]
        x = curve.t0s if x_axis == "t" else curve.log_snrs
        extra = [[t, lam] for t, lam in zip(curve.t0s, curve.log_snrs)]
        hover = "t₀ = %{customdata[0]} · log-SNR = %{customdata[1]:.2f}<br>%{y:.2f}<extra>%{fullData.name}</extra>"
        if curve.ratios is not None:
            data.append(dict(type="scatter", x=x, y=curve.ratios, mode="lines+markers",
                             name=f"{curve.label}: return ratio", line=dict(color=color, width=2), customdata=extra,
                             hovertemplate=hover))
        if curve.kept is not None:
            data.append(dict(type="scatter", x=x, y=curve.kept, mode="lines+markers",
                             name=f"{curve.label}: share that kept its class",
                             line=dict(color=color, width=2, dash="dot"), customdata=extra, hovertemplate=hover))
    if x_axis == "t":
        right = max((max(c.t0s) for c in curves), default=1000)
        xaxis = titled_axis("t₀: the step the examples are noised to", range=[0, right])
    else:
        high = max((max(c.log_snrs) for c in curves), default=6.0) + 0.5
        low = max(LOG_SNR_FLOOR, min((min(c.log_snrs) for c in curves), default=LOG_SNR_FLOOR)) - 0.5
        xaxis = titled_axis("log-SNR at t₀ (natural log; noisier to the right)", range=[high, low])
    kept = any(c.kept is not None for c in curves)  # only images with a classifier have the share kept
    ratios = any(c.ratios is not None for c in curves)  # a drawing's copies have none
    y_title = ("return ratio · share that kept its class" if kept and ratios else
               "share that kept its class" if kept else "return ratio (0: back to its example)")
    layout = plot_layout(height, legend=LEGEND_BELOW, showlegend=True, xaxis=xaxis,  # names the model of one curve too
                         yaxis=titled_axis(y_title, range=[-0.03, 1.15]))
    layout["shapes"] = [hline(1.0)]
    beyond = sum(lam < LOG_SNR_FLOOR for c in curves for lam in c.log_snrs) if x_axis == "log_snr" else 0
    if beyond:  # they had gone without a word (7 of 11 of a T = 10000 linear model's)
        floor = f"{LOG_SNR_FLOOR:g}".replace("-", "−")
        layout["annotations"] = [dict(
            text=f"{beyond} t₀ beyond log-SNR {floor} (the far right) {'is' if beyond == 1 else 'are'} off the axis: "
                 "see the table",
            xref="paper", yref="paper", x=1, y=1, xanchor="right", yanchor="bottom", showarrow=False,
            font=dict(size=11, color="#555"))]
    return fast_figure(data, layout)


# ----- DDIM's map between noise and data ------------------------------------------------------------


KEY_COLOR = "#555"  # a legend entry that stands for every colour of the plot (a marker's or line's meaning)


def noise_paths_figure(paths: Sequence[np.ndarray], reference: np.ndarray | None, *, height: int = 520) -> PlotData:
    """Where the points of paths between two noises land: each path (K, 2) a line from a circle (its first noise's
    sample) to a square (its second's), in one colour per path, over the training data in grey; the legend keys the
    circle, the line and the square (empty traces in grey, after the paths)."""
    data = [] if reference is None else [_points_trace(reference, name="training data", color=REFERENCE_COLOR)]
    for k, path in enumerate(paths):
        color = CURVE_COLORS[k % len(CURVE_COLORS)]
        data.append(dict(type="scatter", x=path[:, 0], y=path[:, 1], mode="lines+markers", name=f"path {k + 1}",
                         line=dict(color=color, width=2), showlegend=False, hoverinfo="skip",
                         marker=dict(color=color, size=[10] + [3] * (len(path) - 2) + [10],
                                     symbol=["circle"] * (len(path) - 1) + ["square"])))
    for name, mode, symbol in (("u = 0: x_a's sample", "markers", "circle"),
                               ("0 < u < 1: the path between", "lines", "circle"),
                               ("u = 1: x_b's sample", "markers", "square")):
        data.append(dict(type="scatter", x=[None], y=[None], mode=mode, name=name, hoverinfo="skip",
                         line=dict(color=KEY_COLOR, width=2), marker=dict(color=KEY_COLOR, size=10, symbol=symbol)))
    return fast_figure(data, plot_layout(height, **point_axes(True)))


# ----- the variational bound ------------------------------------------------------------------------


def quality_by_steps_figure(curves: dict[str, Sequence[tuple[int, float]]], y_title: str, *,
                            real: Sequence[float] = (), height: int = 360) -> PlotData:
    """Sample quality (lower is better down to the data's own range, around 1) against the number of sampling steps,
    one line per sampler, both axes logarithmic; a chain that diverged (quality inf) is left out of its line. A dotted line
    marks 1; a grey band spans ``real``, the scores of draws of the data itself (the measure's noise)."""
    data = []
    for k, (label, points) in enumerate(curves.items()):
        kept = [(steps, q) for steps, q in points if math.isfinite(q) and q > 0]
        data.append(dict(type="scatter", x=[s for s, _ in kept], y=[q for _, q in kept], mode="lines+markers",
                         name=label, line=dict(color=CURVE_COLORS[k % len(CURVE_COLORS)], width=2),
                         marker=dict(size=6), hovertemplate="%{x} steps: %{y:.3g}<extra>%{fullData.name}</extra>"))
    steps = [s for points in curves.values() for s, _ in points]
    if real and steps:
        low, high, first, last = min(real), max(real), min(steps), max(steps)
        if first == last:  # one count of steps: a band of no width had been listed and not drawn
            first, last = first / 1.25, last * 1.25
        data.append(dict(type="scatter", x=[first, last, last, first], y=[low, low, high, high], fill="toself",
                         mode="lines", line=dict(width=0), fillcolor="rgba(120, 120, 120, 0.18)", hoverinfo="skip",
                         name=f"the data itself ({len(real)} draws): {low:.3g}–{high:.3g}"))
    qualities = [q for points in curves.values() for _, q in points] + list(real)  # may span less than 2×
    yaxis = titled_axis(y_title, log=True, **(log_labels(qualities) | up_to_a_label(qualities)))
    counts = sorted(set(steps))  # each count swept labelled: the first, 5, had none (plotly's 10, 100, 1000)
    xaxis = titled_axis("sampling steps (log scale)", log=True, tickmode="array", tickvals=counts,
                        ticktext=[f"{k:,}" for k in counts])
    layout = plot_layout(height, legend=LEGEND_BELOW, showlegend=True, shapes=[hline(1)], xaxis=xaxis, yaxis=yaxis)
    return fast_figure(data, layout)


def bound_terms_figure(ts: Sequence[int], terms: dict[str, Sequence[float]], *, height: int = 360) -> PlotData:
    """The terms L_{t−1} of the variational bound (nats per dimension) against t, one line per reverse variance,
    both axes logarithmic (`log_labels`: a few decades or fifty, t = 2 … 3 or 2 … 10000): the terms fall by orders
    of magnitude from t = 2."""
    data = [dict(type="scatter", x=list(ts), y=list(values), mode="lines+markers", name=label,
                 line=dict(color=CURVE_COLORS[k % len(CURVE_COLORS)], width=2), marker=dict(size=4),
                 hovertemplate="t = %{x}: L<sub>t−1</sub> = %{y:.3g} nats per dimension<extra>%{fullData.name}</extra>")
            for k, (label, values) in enumerate(terms.items())]
    shown = [v for values in terms.values() for v in values]  # labelled to fit their range: 50 decades at T = 10000
    layout = plot_layout(height, legend=LEGEND_BELOW, showlegend=True,  # had 50 piled labels; t = 2, 3 had none
                         xaxis=titled_axis("t (log scale)", log=True, **log_labels(list(ts))),
                         yaxis=titled_axis("L<sub>t−1</sub>, nats per dimension", log=True, **log_labels(shown)))
    return fast_figure(data, layout)
