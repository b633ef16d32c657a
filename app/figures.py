"""Plotly figures shared by the tabs: point clouds, images, histograms, schedule curves, grids.

Only drawing here: every number plotted comes from `core` (schedules' ᾱ_t, β_t, log-SNR, …) or
from the caller. Figures use no layout title (Gradio shows the component label instead) and
fixed axes where the content changes with a slider, so that scrubbing does not make them jump.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import gradio as gr
import numpy as np
import plotly.colors
import plotly.graph_objects as go
import plotly.io as pio
import torch
from gradio.components.plot import PlotData

from app import memo
from app.images import alpha_png_data_uri, png_data_uri
from core.elbo import epsilon_weights
from core.sampler import SPACING_LABELS, Spacing
from core.trainer import eps_weighting
from core.schedules import SCHEDULE_LABELS, NoiseSchedule
from core.presets import DEFAULTS

POINT_RANGE = (-4.0, 4.0)  # fixed axes for 2D point clouds: N(0, I) fits with room to spare
POINT_TICKS = dict(showticklabels=True, tickvals=[-2, 0, 2], ticks="outside",
                   ticklen=3, tickfont=dict(size=10))  # the coordinates, on the outer edges of a grid of point panels
GRID_AXIS_TITLE = dict(font=dict(size=11), standoff=2)  # x₁ under the bottom row, x₂ left of the first column
HIST_RANGE = (-4.0, 4.0)  # value axis of x_t histograms
HIST_BINS = 80
POINT_COLOR = "#1f77b4"
POINT_SIZE, POINT_OPACITY = 3, 0.6  # a point's marker: its diameter in CSS pixels, its opacity
POINTS_PICTURE_PX = 800  # `points_picture_figure`: 2 pixels per CSS pixel of the x_t plot's usual 395-px square
POINT_DOT_PX = POINT_SIZE * 2.0  # a dot's diameter in those pixels
CLASS_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf"]
REFERENCE_COLOR = "#949494"  # training data drawn beneath samples: 3:1 on white, 1.8:1 at POINT_OPACITY where
# points do not overlap (#b8b8b8 was 2.0:1 and 1.5:1)
GRID_REFERENCE_MARKER = dict(size=2, color=REFERENCE_COLOR, opacity=0.6)  # in each panel of `noised_grid_figure`
GRID_PICTURE_DOT = 2.5  # `_panel_picture`: its dots' diameter in picture pixels per marker pixel
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


def angle_hues(points: np.ndarray) -> np.ndarray:
    """2D points (N, 2): each one's hue for `HUE_SCALE`, its angle around the origin as a share of a full turn
    (0..1), so that a point can be followed from panel to panel by its colour."""
    return (np.arctan2(points[:, 1], points[:, 0]) + math.pi) / (2 * math.pi)


_N_GRID = np.linspace(*HIST_RANGE, 401)
_N_DENSITY = np.exp(-0.5 * _N_GRID**2) / math.sqrt(2 * math.pi)  # N(0, 1) density, drawn for reference


def schedule_label(schedule: NoiseSchedule) -> str:
    return SCHEDULE_LABELS.get(schedule.name, schedule.name)


def schedule_color(schedule: NoiseSchedule) -> str:
    """The schedule's colour, the same in every figure."""
    return SCHEDULE_COLORS.get(schedule.name, POINT_COLOR)


def short_schedule_label(schedule: NoiseSchedule) -> str:
    """The label without its citation, for a crowded legend: "cosine (Nichol & Dhariwal 2021)" → "cosine"."""
    return schedule_label(schedule).split(" (")[0]


# No plotly.py template: resolving one copies it per figure (5–50 ms); plotly.js's own defaults
# (white background, light grid) look clean, and an empty template keeps plotly.py from adding its own.
_TICKS_APART = {"ticklabelstandoff": 5}  # keeps the x and y labels apart where the axes meet (e.g. "0" and "−4")
_STYLE = {"template": {"layout": {"xaxis": _TICKS_APART, "yaxis": _TICKS_APART}},
          "paper_bgcolor": "white", "plot_bgcolor": "white", "font": {"size": 13}}


def plot_layout(height: int, **extra) -> dict:
    """The layout every figure starts from: its height, `MARGIN`, the house style, and ``uirevision`` kept so that a
    redraw leaves a user's zoom and hidden legend entries as they were; ``extra`` adds or replaces keys."""
    return {"height": height, "margin": MARGIN, "uirevision": "keep", **_STYLE, **extra}


def fast_figure(data: list[dict], layout: dict) -> PlotData:
    """A figure for `gr.Plot` straight from plain trace/layout dicts, as the JSON Gradio sends.

    Building a `go.Figure` costs 2–50 ms (property validation, template copies): too slow for a
    slider that redraws three figures per step. The dicts here follow plotly's schema; tests
    check that with `as_figure`, which builds a validated `go.Figure` from the JSON.
    """
    return PlotData(type="plotly", plot=pio.to_json({"data": data, "layout": layout}, validate=False))


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
    return fast_figure(data, plot_layout(height, **_point_axes(legend)))


def _point_axes(legend: bool) -> dict:
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


@cache
def dot_coverage(diameter: float, oversample: int = 8) -> np.ndarray:
    """The share of each pixel of a (k, k) square that a disc of ``diameter`` pixels centred on it covers, from
    ``oversample``² samples a pixel (the disc's edge is smooth, not stair-stepped)."""
    k = math.ceil(diameter) + 1
    offsets = (np.arange(k * oversample) + 0.5) / oversample - k / 2
    inside = offsets[:, None] ** 2 + offsets[None, :] ** 2 <= (diameter / 2) ** 2
    coverage = inside.reshape(k, oversample, k, oversample).mean(axis=(1, 3))
    coverage.setflags(write=False)
    return coverage


def points_alpha(points: np.ndarray, *, size: int = POINTS_PICTURE_PX, dot: float = POINT_DOT_PX,
                 opacity: float = POINT_OPACITY) -> np.ndarray:
    """A point cloud (N, 2) drawn as dots on [−4, 4]², as uint8 alpha (size, size): row 0 is x₂ = 4 (the top).

    A dot of opacity o covering a share c of a pixel lets 1 − o·c of what is beneath through, so n dots give the
    pixel alpha 1 − Π(1 − o·cᵢ) = 1 − exp(Σ log(1 − o·cᵢ)): the same as drawing the dots one over another (SVG's
    "over"), in any order, since they share one colour. The sums are one `np.bincount` over the pixels. Points off
    the square are left out, as plotly's fixed axes leave them out; each dot sits on the nearest whole pixel.
    """
    alpha, _ = dot_layer(points, size=size, dot=dot, opacity=opacity)
    alpha *= 255
    return np.round(alpha, out=alpha).astype(np.uint8)


def dot_layer(points: np.ndarray, *, size: int, dot: float, opacity: float,
              colors: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """(alpha (size, size) in [0, 1], colour (size, size, 3) or None) of dots drawn as in `points_alpha`; with
    ``colors`` (N, 3), each pixel's colour is its dots' colours averaged by how much of it each covers (o·cᵢ): for
    dots of different colours, an order-free stand-in for drawing them one over another."""
    coverage = dot_coverage(dot)
    k = coverage.shape[0]
    dy, dx = np.nonzero(coverage)
    cover = opacity * coverage[dy, dx]
    low, high = POINT_RANGE
    corner = np.stack([points[:, 0] - low, high - points[:, 1]], axis=1) / (high - low) * size - k / 2  # (left, top)
    with np.errstate(invalid="ignore"):  # far off or NaN: clipped or cast to a row or column off the picture
        left, top = np.round(np.clip(corner, -2 * k, size + k)).astype(np.int64).T
    rows, cols = (top[:, None] + dy).ravel(), (left[:, None] + dx).ravel()
    inside = (rows >= 0) & (rows < size) & (cols >= 0) & (cols < size)
    pixel = rows[inside] * size + cols[inside]  # each covered piece's pixel, row-major
    weights = np.broadcast_to(np.log1p(-cover), (len(points), len(dy))).ravel()[inside]
    # Σ log(1 − o·cᵢ) per pixel, over all size² pixels and worked on in place: 3–6× quicker than over the pixels hit
    # (found by np.unique, which sorts them); float even when no dot is inside (bincount then gives ints)
    alpha = np.bincount(pixel, weights=weights, minlength=size * size).astype(np.float64, copy=False)
    np.negative(np.expm1(alpha, out=alpha), out=alpha)
    alpha += 0.0  # no −0 where empty
    if colors is None:
        return alpha.reshape(size, size), None
    share = np.broadcast_to(cover, (len(points), len(dy))).ravel()[inside]
    owner = np.repeat(np.arange(len(points)), len(dy))[inside]
    total = np.bincount(pixel, weights=share, minlength=size * size)
    total[total == 0] = 1  # an empty pixel's colour sums are 0: 0 / 1, no masks (gathering through one is slow)
    rgb = np.empty((size * size, 3))
    for channel in range(3):
        rgb[:, channel] = np.bincount(pixel, weights=share * colors[owner, channel], minlength=size * size) / total
    return alpha.reshape(size, size), rgb.reshape(size, size, 3)


def over(top: tuple[np.ndarray, np.ndarray], bottom: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Two (alpha, colour) layers of `dot_layer`, ``top`` drawn over ``bottom``, as uint8 RGBA:
    α = α_top + α_bottom·(1 − α_top), colour = (C_top·α_top + C_bottom·α_bottom·(1 − α_top)) / α."""
    (a_top, c_top), (a_bottom, c_bottom) = top, bottom
    rgba = np.zeros((*a_top.shape, 4), dtype=np.uint8)
    drawn = (a_top > 0) | (a_bottom > 0)  # most pixels are empty: only the drawn ones are worked out
    a_top, a_bottom = a_top[drawn, None], a_bottom[drawn, None] * (1 - a_top[drawn, None])
    alpha = a_top + a_bottom
    colour = (c_top[drawn] * a_top + c_bottom[drawn] * a_bottom) / alpha
    rgba[drawn] = np.round(np.concatenate([colour, alpha * 255], axis=-1)).clip(0, 255)
    return rgba


def corner_label(text: str, x: float, y: float, *, above: bool = False) -> dict:
    """An annotation naming what a picture shows ("x_t · t = 250"), at the top left corner (x, y) of its axes (in
    their units: "x domain" is the axes' width before an equal-scale axis shrinks it): inside on a white box, or
    ``above`` the axes (for a picture that fills them), so that a screenshot of the plot alone says it."""
    return dict(text=text, x=x, y=y, xref="x", yref="y", xanchor="left", yanchor="bottom" if above else "top",
                showarrow=False, font=dict(size=CORNER_LABEL_SIZE), bgcolor="rgba(255,255,255,0.85)", borderpad=2)


CORNER_LABEL_SIZE = 16  # px, as the 2D frames of the player (`app.player.SMALL_TEXT`)


def points_picture_figure(points: np.ndarray, *, height: int = 460, label: str = "") -> PlotData:
    """A 2D point cloud (N, 2) as `points_figure` draws it (same axes, dot size and opacity), but drawn here as one
    transparent picture over the axes (`points_alpha`) instead of a scatter trace.

    For views redrawn at every step of a slider: plotly draws a scatter trace as one SVG element per point, ~150 ms
    for 2,000 points in headless Chromium, and Gradio draws every update on a new plot; the picture takes ~30 ms in
    the browser and ~10 ms to make here. The dots are 3 CSS pixels wide at the usual size of the Forward tab's x_t
    plot (drawn at 2 pixels per CSS pixel, sharp on a HiDPI screen), and scale with the plot.
    """
    picture = points_picture(points, xaxis="x", yaxis="y", color=POINT_COLOR)
    named = {"annotations": [corner_label(label, POINT_RANGE[0], POINT_RANGE[1])]} if label else {}
    return fast_figure([], plot_layout(height, images=[picture], **_point_axes(legend=False), **named))


def points_picture(points: np.ndarray, *, xaxis: str, yaxis: str, color: str, size: int = POINTS_PICTURE_PX,
                   dot: float = POINT_DOT_PX, opacity: float = POINT_OPACITY) -> dict:
    """The layout image of `points_alpha` in one ``color``, spanning [−4, 4]² of the axes ``xaxis`` and ``yaxis``,
    above the gridlines (as a scatter trace is)."""
    alpha = points_alpha(np.asarray(points, dtype=np.float64), size=size, dot=dot, opacity=opacity)
    return _over_axes(alpha_png_data_uri(alpha, plotly.colors.hex_to_rgb(color)), xaxis, yaxis)


def _over_axes(source: str, xaxis: str, yaxis: str) -> dict:
    """A layout image spanning [−4, 4]² of the axes ``xaxis`` and ``yaxis``, above the gridlines (as a scatter trace
    is)."""
    low, high = POINT_RANGE
    return dict(source=source, xref=xaxis, yref=yaxis, x=low, y=high, sizex=high - low, sizey=high - low,
                xanchor="left", yanchor="top", sizing="stretch", layer="above")


@cache
def _hue_colors() -> np.ndarray:
    """`HUE_SCALE` sampled at 256 hues, as RGB (256, 3)."""
    samples = plotly.colors.sample_colorscale(HUE_SCALE, np.linspace(0, 1, 256).tolist())
    return np.array([plotly.colors.unlabel_rgb(color) for color in samples], dtype=np.float64)


def _one_color(color: str, n: int) -> np.ndarray:
    """The colour of each of n dots of one ``color`` (hex), as `dot_layer` takes them: RGB (n, 3)."""
    return np.broadcast_to(plotly.colors.hex_to_rgb(color), (n, 3))


def _panel_picture(points: np.ndarray, marker: dict, hues: np.ndarray | None, beneath: Beneath | None, size: int,
                   where: dict) -> dict:
    """One panel of `noised_grid_figure`'s points as a picture: its dots `GRID_PICTURE_DOT` picture pixels a marker
    pixel (a panel is drawn 100–150 CSS pixels wide for 2 picture pixels each), in the marker's colour or coloured by
    ``hues``, over the ``beneath`` layer (the training data) if any. Remembered (`app.memo`): a grid redrawn for
    another t shows the same x₀ panel again."""
    dot, opacity = GRID_PICTURE_DOT * marker["size"], marker["opacity"]
    if hues is None and beneath is None:
        return points_picture(points, xaxis=where["xaxis"], yaxis=where["yaxis"], color=marker["color"], size=size,
                              dot=dot, opacity=opacity)

    def draw() -> str:
        colors = (_hue_colors()[np.round(hues * 255).astype(int)] if hues is not None
                  else _one_color(marker["color"], len(points)))
        top = dot_layer(np.asarray(points, dtype=np.float64), size=size, dot=dot, opacity=opacity, colors=colors)
        bottom = beneath.layer if beneath else (np.zeros((size, size)), np.zeros((size, size, 3)))
        return png_data_uri(over(top, bottom))

    colouring = hues if hues is not None else marker["color"]  # (with hues the marker's colour is the hues again)
    key = memo.digest("panel", np.asarray(points), colouring, beneath and beneath.key, dot, opacity, size)
    return _over_axes(memo.remembered(key, draw), where["xaxis"], where["yaxis"])


@dataclass(frozen=True)
class Beneath:
    """The training data's dots drawn beneath every panel of a grid: `dot_layer`'s (alpha, colour), and the key it is
    remembered by."""

    layer: tuple[np.ndarray, np.ndarray]
    key: bytes


def beneath_layer(reference: np.ndarray, size: int) -> Beneath:
    """`Beneath` for the training data ``reference`` (M, 2) in a panel of ``size`` picture pixels (remembered)."""
    marker = GRID_REFERENCE_MARKER
    dot = GRID_PICTURE_DOT * marker["size"]

    def draw() -> tuple[np.ndarray, np.ndarray]:
        layer = dot_layer(np.asarray(reference, dtype=np.float64), size=size, dot=dot, opacity=marker["opacity"],
                          colors=_one_color(marker["color"], len(reference)))
        for array in layer:
            array.setflags(write=False)  # shared by every grid drawn over this data
        return layer

    key = memo.digest("beneath", np.asarray(reference), size, dot, marker["opacity"], marker["color"])
    return Beneath(memo.remembered(key, draw), key)


def image_figure(pixels: np.ndarray, *, height: int = 460, label: str = "") -> PlotData:
    """A uint8 picture (H, W) or (H, W, 3), without axes (sent as BMP: 10× faster than PNG), drawn pixel-sharp by the
    app's CSS (`PICTURE_CSS`); ``label`` above it (`corner_label`).

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
        yaxis=dict(visible=False, fixedrange=True, range=[rows, 0], scaleanchor="x", constrain="domain"),
        images=[dict(source=png_data_uri(pixels, fmt="BMP"), xref="x", yref="y", x=0, y=0, sizex=cols, sizey=rows,
                     xanchor="left", yanchor="top", sizing="stretch", layer="below")],
    )
    return fast_figure([], layout)


def picture_source(figure: go.Figure) -> str:
    """The data URI of an `image_figure`'s picture."""
    return figure.layout.images[0].source


# `image_figure`: pixels, not a blur; `points_picture_figure`'s dots (a picture above the axes): smooth when scaled
PICTURE_CSS = (".js-plotly-plot .imagelayer image {image-rendering: pixelated}\n"
               ".js-plotly-plot .layer-above .imagelayer image {image-rendering: auto}")

# On the dark theme the plots take the page's colours (white boxes had glared on a projector). Plotly writes its
# colours as inline styles, which `!important` overrides: the white paper, plot area, legend and label boxes take the
# block's background; text in plotly's default #444 the theme's text colour, the notes in grey (#555, #666) its
# subdued one; grid lines a dark grey, zero lines a light one. Coloured marks and labels keep their colours, and the
# hover labels theirs (plotly writes #444 on a light trace's box there).
_PLOT_TEXT = ".dark .js-plotly-plot text:not(.hoverlayer *)"
DARK_THEME_CSS = "\n".join([
    ".dark .js-plotly-plot .main-svg {background: transparent !important}",
    ".dark .js-plotly-plot rect.bg[style*='fill: rgb(255, 255, 255)'] {fill: var(--block-background-fill) !important}",
    f"{_PLOT_TEXT}[style*='fill: rgb(68, 68, 68)'] {{fill: var(--body-text-color) !important}}",
    f"{_PLOT_TEXT}[style*='fill: rgb(85, 85, 85)'], {_PLOT_TEXT}[style*='fill: rgb(102, 102, 102)'] "
    "{fill: var(--body-text-color-subdued) !important}",
    ".dark .js-plotly-plot .gridlayer path {stroke: #374151 !important}",
    ".dark .js-plotly-plot .zerolinelayer path {stroke: #9ca3af !important}",
])

GRID_TITLE_SIZE = 16  # px: a grid's column titles ("t = 250"), read from the back of a lecture room
# On a phone (a window at most `NARROW_SCREEN_PX` wide) plots are 300–400 px wide, and text sized for a projector no
# longer fits: a legend entry with its citation was cut off at the plot's edge. There legends and axis titles are drawn
# smaller; plotly measures them as drawn, so their layout follows. (A grid's column titles are fitted to their columns
# at any width: `FIT_GRIDS_JS`.)
NARROW_SCREEN_PX = 480
# On a phone: smaller legends and axis titles; no plot toolbars, which a touch screen shows at all times and which
# covered the grids' column titles ("t = 750" on Schedules) and the top of the plots (a finger zooms without them)
NARROW_SCREEN_CSS = (
    f"@media (max-width: {NARROW_SCREEN_PX}px) {{\n"
    "  .js-plotly-plot .legendtext, .js-plotly-plot .g-xtitle text, .js-plotly-plot .g-ytitle text "
    "{font-size: 11px !important}\n"
    "  .js-plotly-plot .modebar-container {display: none !important}\n"
    "}"
)

# Runs a patch of plotly as soon as the page has it, or at once if it has it already. Gradio loads plotly with the
# first plot and sets window.Plotly before it draws; every patch given before then is made then. Each patch guards
# itself against being made twice.
ON_PLOTLY_JS = """(patch) => {
  const patches = window.plotlyPatches || (window.plotlyPatches = []);
  patches.push(patch);
  if (window.Plotly) patch(window.Plotly);
  else if (patches.length === 1) {
    let plotly;
    Object.defineProperty(window, 'Plotly', {
      configurable: true, get: () => plotly, set: (value) => { plotly = value; patches.forEach((p) => p(value)); },
    });
  }
}"""

# Gradio draws a new figure of a gr.Plot twice: its plot first redraws the old plot with it (`Plotly.react`), then drops
# that plot and draws the figure on a new one, so each update cost two full drawings, one thrown away. Here a redraw of a
# plot that is already drawn (and Gradio's `Plots.resize` after it) waits until the code that asked for it has run, and
# is left out if the plot has left the page by then; a new plot is drawn at once. (`Plotly.Plots` is plotly's public
# copy of its plots module: plotly's own resize on a resize of the window does not pass through it.) A Forward scrub of t: 1.3–1.6× quicker, the browser's
# long tasks 35–45 % less time (`bench/bench_browser.py`).
REDRAW_KEPT_PLOTS_ONLY_JS = """() => {
  const redrawKeptPlotsOnly = (Plotly) => {
    if (!Plotly || Plotly.redrawsKeptPlotsOnly) return;
    Plotly.redrawsKeptPlotsOnly = true;
    const react = Plotly.react, resize = Plotly.Plots.resize;
    const ifKept = (gd, draw) => new Promise((resolve) => queueMicrotask(() => resolve(gd.isConnected ? draw() : gd)));
    Plotly.react = function (gd, ...args) {
      const drawn = gd instanceof HTMLElement && gd._fullLayout;
      return drawn ? ifKept(gd, () => react.call(Plotly, gd, ...args)) : react.call(Plotly, gd, ...args);
    };
    Plotly.Plots.resize = function (gd) {
      const redraw = () => resize.call(Plotly.Plots, gd);
      return gd instanceof HTMLElement ? ifKept(gd, redraw) : redraw();
    };
  };
  (ON_PLOTLY)(redrawKeptPlotsOnly);
}""".replace("ON_PLOTLY", ON_PLOTLY_JS)

# A plot Gradio drops is not `Plotly.purge`d, so each old plot stayed alive through its window "resize" listener
# (plotly's responsive mode): the page grew by one plot per update, 1.2 MB/s while a run trained, and a resize of the
# window woke every one of them. Remove that listener from each plot that has left the page (2 s later: plotly may still
# be finishing its drawing, and a plot that Svelte only moved is back in the page by then). Not `Plotly.purge`: its
# pending redraws would then fail on the purged plot.
FREE_DROPPED_PLOTS_JS = """() => {
  const free = (el) => setTimeout(() => {
    if (el.isConnected || !el._responsiveChartHandler) return;
    window.removeEventListener('resize', el._responsiveChartHandler);
    delete el._responsiveChartHandler;
  }, 2000);
  new MutationObserver((records) => {
    for (const record of records) {
      for (const node of record.removedNodes) {
        if (!(node instanceof HTMLElement)) continue;  // plotly's own SVG redraws are not dropped plots
        if (node.classList.contains('js-plotly-plot')) free(node);
        else node.querySelectorAll('.js-plotly-plot').forEach(free);
      }
    }
  }).observe(document.body, {childList: true, subtree: true});
}"""

# A grid (`noised_grid_figure`) is laid out for square panels `cell_px` wide, its column titles ("t = 250", "x̂₀
# predicted") at `GRID_TITLE_SIZE`. In a narrower window plotly draws each panel smaller, centred in its `cell_px` of
# height, and never shrinks text: on a phone the rows were bands of blank with the panels in their middle, and the
# titles ran into each other ("t = 750t = 1000"). Here a grid (a figure with ``layout.meta.grid``) is laid out again for
# the width its panels get, as the Python does: each row its label's band, its panels and a gap; the column titles
# at the largest size at which the widest fits its column (less `GRID_TITLE_GAP`), on two lines where one line would
# be smaller than `GRID_TITLE_ONE_LINE_SMALLEST` px and two give a larger size, then the grid's short titles if it has
# them and they are larger still (the step anatomy's seven columns on a phone), never under `GRID_TITLE_SMALLEST` px;
# the rows' labels ("cosine (Nichol & Dhariwal 2021)") no wider than the grid.
# That is done to the figure before it is drawn (`Plotly.react`, at the plot's width then), and again after plotly's
# own redrawing on a resize of the window (plotly_afterplot: drawn once more where the layout is off).
GRID_TITLE_SMALLEST, GRID_TITLE_ONE_LINE_SMALLEST, GRID_TITLE_GAP = 8, 11, 6  # px
FIT_GRIDS_JS = """() => {
  const SIZE = GRID_TITLE_SIZE, SMALLEST = GRID_TITLE_SMALLEST, ONE_LINE = GRID_TITLE_ONE_LINE_SMALLEST;
  const GAP = GRID_TITLE_GAP, FAMILY = '"Open Sans", verdana, arial, sans-serif';  // plotly's
  const context = document.createElement('canvas').getContext('2d');
  const width = (text, family) => {  // of its longest line, at SIZE
    context.font = `${SIZE}px ${family}`;
    return Math.max(...text.split('<br>').map((line) => context.measureText(line.replace(/<[^>]*>/g, '')).width));
  };
  const twoLines = (text, family) => {  // broken at the space that leaves the shorter longest line (not in markup)
    if (text.includes('<')) return text;
    const words = text.split(' ');
    const splits = words.slice(1).map((_, k) => words.slice(0, k + 1).join(' ') + '<br>' + words.slice(k + 1).join(' '));
    return [text, ...splits].map((t) => [width(t, family), t]).reduce((best, next) => (next[0] < best[0] ? next : best))[1];
  };
  const fitted = (layout, plotWidth) => {  // the layout's changes for panels in a plotting area this wide
    const g = layout && layout.meta && layout.meta.grid;
    if (!g || !(plotWidth > 0)) return null;
    const m = layout.margin;  // (not the axes' domains: plotly narrows those of square panels in place)
    const cell = Math.max(1, Math.min(g.cell, Math.floor(plotWidth * g.panel)));
    const area = g.rows * (g.band + cell) + (g.rows - 1) * g.gap;
    const top = (r) => 1 - (r * (g.band + cell + g.gap) + g.band) / area;
    const update = {height: area + m.t + m.b};
    for (let i = 1; i <= g.rows * g.cols; i++) {
      const t = top(Math.floor((i - 1) / g.cols)), left = g.lefts[(i - 1) % g.cols], suffix = i === 1 ? '' : i;
      update[`xaxis${suffix}.domain`] = [Math.max(left, 0), Math.min(left + g.panel, 1)];
      update[`yaxis${suffix}.domain`] = [Math.max(t - cell / area, 0), Math.min(t, 1)];
    }
    const family = (layout.font && layout.font.family) || FAMILY;
    const labelSize = Math.max(SMALLEST, Math.min(g.label_size,  // a row's label: as wide as the grid at most
      Math.floor(SIZE * plotWidth / Math.max(0, ...g.labels.map((t) => width(t, family))))));
    g.label_rows.forEach((r, k) => {
      update[`annotations[${g.cols + k}].y`] = top(r);
      update[`annotations[${g.cols + k}].font.size`] = labelSize;
    });
    const room = plotWidth * (g.cols > 1 ? g.lefts[1] - g.lefts[0] : g.panel) - GAP;  // between column centres
    const sizeOf = (texts) => Math.min(SIZE, Math.floor(SIZE * room / Math.max(...texts.map((t) => width(t, family)))));
    let texts = g.titles, size = sizeOf(texts);
    for (const titles of [g.titles, g.short_titles || g.titles]) {  // the short ones where even two lines are small
      if (size >= ONE_LINE) break;
      for (const tried of [titles, titles.map((t) => twoLines(t, family))]) {
        const triedSize = sizeOf(tried);
        if (triedSize > size) [texts, size] = [tried, triedSize];
      }
    }
    texts.forEach((text, i) => {
      update[`annotations[${i}].text`] = text;
      update[`annotations[${i}].font.size`] = Math.max(SMALLEST, size);
    });
    return update;
  };
  const apply = (layout, update) => Object.entries(update).forEach(([key, value]) => {  // plotly's keys: "a[2].b.c"
    const keys = key.replace(/\\[(\\d+)\\]/g, '.$1').split('.'), last = keys.pop();
    keys.reduce((o, k) => (o[k] = o[k] || {}), layout)[last] = value;
  });
  const drawnAs = (gd, update) => Math.abs(update.height - gd._fullLayout.height) < 1  // its domains follow its height
    && gd.layout.annotations.every((a, i) => [`annotations[${i}].text`, `annotations[${i}].font.size`]
      .every((key, j) => !(key in update) || update[key] === (j ? a.font.size : a.text)));
  const follow = (Plotly, gd) => {  // a resize of the window: plotly redraws at the new width, then the grid follows
    if (!(gd instanceof HTMLElement) || !gd.on || gd.fitsGrid) return;
    gd.fitsGrid = true;
    gd.on('plotly_afterplot', () => {
      const update = gd._fullLayout && fitted(gd.layout, gd._fullLayout._size.w);
      if (!update || drawnAs(gd, update)) return;
      const layout = structuredClone(gd.layout);  // not relayout: a new height there fixes the width too
      apply(layout, update);
      Plotly.react(gd, gd.data, layout);
    });
  };
  (ON_PLOTLY)((Plotly) => {
    if (!Plotly || Plotly.fitsGrids) return;
    Plotly.fitsGrids = true;
    const react = Plotly.react;
    Plotly.react = function (gd, data, layout, ...rest) {
      if (!(gd instanceof HTMLElement && layout && layout.meta && layout.meta.grid)) {
        return react.call(Plotly, gd, data, layout, ...rest);
      }
      const m = layout.margin, update = fitted(layout, gd.clientWidth - m.l - m.r);  // none while hidden
      if (update) apply(layout, update);
      return Promise.resolve(react.call(Plotly, gd, data, layout, ...rest)).then((r) => { follow(Plotly, gd); return r; });
    };
  });
}""".replace("ON_PLOTLY", ON_PLOTLY_JS).replace("GRID_TITLE_SIZE", str(GRID_TITLE_SIZE)) \
    .replace("GRID_TITLE_SMALLEST", str(GRID_TITLE_SMALLEST)) \
    .replace("GRID_TITLE_ONE_LINE_SMALLEST", str(GRID_TITLE_ONE_LINE_SMALLEST)) \
    .replace("GRID_TITLE_GAP", str(GRID_TITLE_GAP))

# Runs once in each page (`launch(js=...)`): all of the above.
PLOT_PAGE_JS = f"() => {{ ({REDRAW_KEPT_PLOTS_ONLY_JS})(); ({FREE_DROPPED_PLOTS_JS})(); ({FIT_GRIDS_JS})(); }}"


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


def alpha_bar_figure(schedule: NoiseSchedule, t: int, *, height: int = 260) -> PlotData:
    """ᾱ_t over t = 0..T with a marker at the current t."""
    ts = np.arange(schedule.T + 1)
    alpha_bars = schedule.alpha_bars.numpy()
    color = schedule_color(schedule)
    # the label above the marker, where the falling curve is not (room made above ᾱ = 1), and left of it near t = T
    label_position = "top left" if t > 0.75 * schedule.T else "top right"
    data = [
        dict(type="scatter", x=ts, y=alpha_bars, mode="lines", line=dict(color=color, width=2), name="ᾱ_t"),
        dict(
            type="scatter",
            x=[t],
            y=[float(alpha_bars[t])],
            mode="markers+text",
            text=[f"t = {t}"],
            textposition=label_position,
            marker=dict(size=12, color=NOISE_COLOR, line=dict(color="white", width=1)),
            cliponaxis=False,  # whole at t = 0 and t = T, on the axes' edges
            name=f"t = {t}",
        ),
    ]
    layout = plot_layout(
        height,
        showlegend=False,
        xaxis=dict(range=[0, schedule.T], title=dict(text="t (step)"), fixedrange=True),
        yaxis=dict(range=[-0.03, 1.16], title=dict(text="ᾱ_t (share of x₀'s variance left)"), fixedrange=True),
    )
    return fast_figure(data, layout)


# ----- schedule comparison --------------------------------------------------------------------

MIN_SNR_SHOWN = DEFAULTS["image"]["min_snr"]  # the Min-SNR γ of the weighting curve: the image runs' default
_CURVES = {
    # key: (y-axis title, function schedule → values at t = 1..T, or at t = 0..T for ᾱ_t, which is 1 at t = 0)
    "alpha_bar": ("ᾱ_t", lambda s: s.alpha_bars),
    "beta": ("β_t", lambda s: s.betas[1:]),
    "log_snr": ("log-SNR(t) (natural log)", lambda s: s.log_snr[1:]),
    "bound_weight": ("weight on ‖ε − ε̂‖²", lambda s: epsilon_weights(s)[1:]),
    "x0_weight": ("weight on ‖ε − ε̂‖²", lambda s: eps_weighting(s, 0.0, "x0")[1:]),
    "v_weight": ("weight on ‖ε − ε̂‖²", lambda s: eps_weighting(s, 0.0, "v")[1:]),
    "min_snr_weight": ("weight on ‖ε − ε̂‖²", lambda s: eps_weighting(s, MIN_SNR_SHOWN, "eps")[1:]),
}
WEIGHTINGS = ("bound_weight", "x0_weight", "v_weight", "min_snr_weight")  # curves that weigh ‖ε − ε̂‖², against 1


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
_SPACING_DASH: dict[Spacing, str] = {"uniform": "solid", "log_snr": "dot"}  # line styles of the step-gain plot


def titled_axis(title: str, *, log: bool = False, **extra) -> dict:
    """A titled axis, as the line plots have: room made for its title (the legend sits below it), no dark zero line;
    a log axis labels the powers of ten only, unless given tickvals."""
    axis = dict(title=dict(text=title, standoff=15), automargin=True, zeroline=False, **extra)
    return dict(axis, type="log", dtick=1, exponentformat="power") if log else dict(axis, type="linear")


NARROW_LOG_SPAN = 1.05  # values within this factor of each other are drawn on a log axis padded to ×/÷ 1.12


def log_range(values: Sequence[float]) -> list[float] | None:
    """The log10 range for a log axis over ``values`` that plotly would not fit well: one value, or values within a
    factor of `NARROW_LOG_SPAN` (a single loss; a diverged run's one step), padded to ×/÷ 1.12 about their
    geometric middle; None otherwise (plotly fits the axis)."""
    shown = _positive(values)
    if not len(shown) or shown.max() / shown.min() >= NARROW_LOG_SPAN:
        return None
    middle = 0.5 * (math.log10(shown.min()) + math.log10(shown.max()))
    return [middle - math.log10(1.12), middle + math.log10(1.12)]


def up_to_a_label(values: Sequence[float]) -> dict:
    """A log axis's range (plotly's padding, about 5 % each side) stretched up to the next label (`log_ticks`) where the
    highest values lie far above the highest label below them: a steps sweep's 7.8 sat over a bare stretch above 5,
    read as nothing in particular. {} where they do not, or where `log_range` sets the range."""
    shown = _positive(values)
    if not len(shown) or log_range(values) is not None:
        return {}
    ticks = log_ticks(shown)
    low, high = math.log10(shown.min()), math.log10(shown.max())
    below, above = max(t for t in ticks if t <= 10**high), min(t for t in ticks if t > 10**high)
    if 10**high <= 1.3 * below:
        return {}
    pad = 0.05 * (math.log10(above) - low)
    return dict(range=[low - pad, math.log10(above) + pad])


MANY_DECADES = 1e4  # log_ticks: values spread wider than this are labelled at powers of ten only


def log_ticks(values: Sequence[float]) -> list[float]:
    """The labelled values of a log axis over ``values`` (non-finite and non-positive ones ignored): over more than
    `MANY_DECADES`, powers of ten (every one, or every other, …: 9 at most); else m·10^k for the
    coarsest of m in {1, 2, 5}, {1, 2, 3, 5}, m in 1..9, or also 1.1 … 1.9 that labels their range (`_labels_cover`;
    0.7 … 9 by 1 … 9 piled 9, 8, 7, 6, 5 into the top fifth of the axis), where
    plotly's own labels would show one number, or none, over a range narrower than a decade; over a narrower range
    still (2.1 … 2.9, or one value: see `log_range`), evenly spaced round numbers, 4 to 10 of them."""
    shown = _positive(values)
    if len(shown):
        low, high = (10.0 ** v for v in log_range(shown) or (math.log10(shown.min()), math.log10(shown.max())))
        if high > MANY_DECADES * low:  # powers of ten, at most about 8: 1, 2, 5 in every decade would pile up
            first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
            stride = math.ceil((last - first) / 8)
            return [10.0**e for e in range(first, last + stride, stride)]  # the last one at or above the highest
    for mantissas in ([1, 2, 5], [1, 2, 3, 5], list(range(1, 10)), [1 + k / 10 for k in range(10)] + list(range(2, 10))):
        ticks = [float(f"{m * 10.0**e:.6g}") for e in range(-6, 10) for m in mantissas]
        if not len(shown) or _labels_cover(ticks, low, high):
            return ticks
    quarter = (high - low) / 4
    power = 10.0 ** math.floor(math.log10(quarter))
    step = max(m * power for m in (1, 2, 5) if m * power <= quarter * (1 + 1e-9))  # 4 to 10 steps over the range
    first, last = math.floor(low / step), math.ceil(high / step)
    return [float(f"{k * step:.6g}") for k in range(max(first, 1), last + 1)]


def _labels_cover(ticks: Sequence[float], low: float, high: float) -> bool:
    """Whether ``ticks`` label a log axis from ``low`` to ``high``: at least 4 of them within it, and no stretch of it
    without a label longer than half of it (0.7, 0.8, 0.9, 1 over 0.69 … 1.72 left 1 … 1.72, the upper 60 %, bare)."""
    inside = [math.log10(v) for v in ticks if low <= v <= high]
    edges = [math.log10(low), *inside, math.log10(high)]
    return len(inside) >= 4 and max(b - a for a, b in zip(edges, edges[1:])) <= (edges[-1] - edges[0]) / 2


def log_labels(values: Sequence[float]) -> dict:
    """The labelling of a log axis over ``values`` (`log_ticks`), and its range where they are too close for plotly
    to fit one (`log_range`)."""
    ticks = log_ticks(values)
    labels = dict(tickmode="array", tickvals=ticks, ticktext=[tick_text(v) for v in ticks])
    narrow = log_range(values)
    return labels if narrow is None else dict(labels, range=narrow)


def tick_text(value: float) -> str:
    """A tick label: 0.02, 500, 1.5, and powers of ten as such from 10⁴ up and below 10⁻⁴ (10⁵, 2·10⁻⁶)."""
    text = f"{value:.4g}"
    mantissa, _, exponent = text.partition("e")
    if not exponent:
        return text
    power = f"10<sup>{int(exponent)}</sup>".replace("-", "−")
    return power if mantissa == "1" else f"{mantissa}·{power}"


def _positive(values: Sequence[float]) -> np.ndarray:
    shown = np.asarray(values, dtype=np.float64)
    return shown[np.isfinite(shown) & (shown > 0)]


FEW_STEPS = 30  # a schedule of at most this many steps is drawn with a marker at each step


def schedule_curves_figure(
    schedules: Sequence[NoiseSchedule], quantity: str, *, log_y: bool = False, height: int = 340
) -> PlotData:
    """One curve per schedule over t = 1..T (ᾱ_t from t = 0: the clean data, ᾱ_0 = 1), on shared axes, each with its
    t where SNR = 1 marked; with markers at the steps of a short chain (`FEW_STEPS`)."""
    if quantity not in _CURVES:
        raise ValueError(f"unknown quantity {quantity!r}; choose one of {', '.join(_CURVES)}")
    y_title, values_of = _CURVES[quantity]
    data = []
    for schedule in schedules:
        ys = values_of(schedule).numpy()
        ts = np.arange(schedule.T + 1 - len(ys), schedule.T + 1)
        color = schedule_color(schedule)
        label = schedule_label(schedule)
        mode = "lines" if schedule.T > FEW_STEPS else "lines+markers"  # T = 2: one finite weight, a line of a point
        data.append(dict(type="scatter", x=ts, y=ys, mode=mode, line=dict(color=color, width=2), name=label,
                         legendgroup=schedule.name))
        t_one = schedule.t_snr_one
        if math.isfinite(t_one):
            data.append(dict(
                type="scatter", x=[t_one], y=[float(np.interp(t_one, ts, ys))], mode="markers",
                marker=dict(symbol="diamond", size=10, color=color, line=dict(color="black", width=1)),
                name=f"SNR = 1 at t ≈ {t_one:.0f}", legendgroup=schedule.name, showlegend=False,
                hovertemplate=f"{label}<br>SNR = 1 at t ≈ {t_one:.1f}<extra></extra>",
            ))
    extra = {}
    if quantity == "log_snr":
        extra = dict(shapes=[_hline(0)], annotations=[dict(
            text="SNR = 1", xref="paper", x=1, yref="y", y=0, xanchor="right", yanchor="bottom", showarrow=False,
        )])
        if unseen := infinite_log_snr_note(schedules):
            extra["annotations"].append(dict(text=unseen, xref="paper", x=0.01, yref="paper", y=0.02, xanchor="left",
                                             yanchor="bottom", align="left", showarrow=False, bgcolor="white"))
    elif quantity in WEIGHTINGS:  # the plain ε loss weights every t by 1
        extra = dict(shapes=[_hline(1)], annotations=[dict(
            text="plain ε loss (L_simple): 1", xref="paper", x=1, yref="y", y=0, xanchor="right", yanchor="bottom",
            showarrow=False,
        )])
    T = max((s.T for s in schedules), default=1)
    shown = _positive(np.concatenate([trace["y"] for trace in data])) if log_y and data else np.zeros(0)
    # over many decades, every other or third power of ten (`log_ticks`): the x₀ loss's weights, 10⁻⁵ … 10⁹, had 15
    # labels piled up the axis
    many = len(shown) > 0 and shown.max() > MANY_DECADES * shown.min()
    return fast_figure(data, plot_layout(
        height, legend=LEGEND_BELOW,
        xaxis=titled_axis("t (step)", range=[0, T]),
        yaxis=titled_axis(y_title, log=log_y, **(log_labels(shown) if many else {})),
        **extra,
    ))


def infinite_log_snr_note(schedules: Sequence[NoiseSchedule]) -> str:
    """Where a schedule's log-SNR is −∞ and not drawn: ᾱ_t is 0 to float64's precision (β near 1: its curve had
    stopped short without a word). "" when every value is finite. (+∞, ᾱ_t = 1, cannot be: β_1 is at least
    `core.schedules.MIN_BETA_1`.)"""
    lines = []
    for schedule in schedules:
        if count := int(np.isneginf(schedule.log_snr[1:].numpy()).sum()):
            lines.append(f"{schedule_label(schedule)}: log-SNR is −∞ at {count:,} of its {schedule.T:,} steps "
                         "(ᾱ_t = 0: no data left, to float64's precision), not drawn")
    return "<br>".join(lines)


def _hline(y: float) -> dict:
    """A dotted grey line across the plot at height y (data units: the value itself, also on a log axis)."""
    return dict(type="line", xref="paper", x0=0, x1=1, yref="y", y0=y, y1=y, line=dict(color="grey", dash="dot", width=1))


def step_gain_figure(schedules: Sequence[NoiseSchedule], gains: Sequence[dict[Spacing, np.ndarray]], *,
                     height: int = 340) -> PlotData:
    """Per schedule, the gain on an error in ε̂ of each step of a short chain (`schedules_tab.step_gains`):
    ``gains[i]`` maps a spacing of the steps to their gains; evenly in t is drawn solid, evenly in log-SNR dotted.
    Both axes are logarithmic, so that the first steps, where the gains differ, are not squeezed into a corner; a
    line at 1 parts the steps that shrink the error from those that multiply it. The legend names each
    schedule once, without its citation (the hover text has it), and keys the line styles in grey."""
    data = []
    for schedule, per_spacing in zip(schedules, gains):
        color = schedule_color(schedule)
        label = schedule_label(schedule)
        for i, (spacing, values) in enumerate(per_spacing.items()):
            spaced = SPACING_LABELS[spacing]
            data.append(dict(
                type="scatter", x=np.arange(1, len(values) + 1), y=values, mode="lines+markers",
                name=short_schedule_label(schedule) if i == 0 else f"{label}, {spaced}", showlegend=i == 0,
                legendgroup=schedule.name,
                line=dict(color=color, width=2, dash=_SPACING_DASH[spacing]), marker=dict(size=4, color=color),
                hovertemplate=f"{label}, steps {spaced}<br>step %{{x}}: ×%{{y:.3g}}<extra></extra>",
            ))
    for spacing, dash in _SPACING_DASH.items():  # the key to the line styles: legend entries, nothing drawn
        data.append(dict(type="scatter", x=[None], y=[None], mode="lines", name=SPACING_LABELS[spacing],
                         line=dict(color="grey", width=2, dash=dash), hoverinfo="skip"))
    n = max((len(values) for per_spacing in gains for values in per_spacing.values()), default=1)
    shown = _positive([g for per_spacing in gains for values in per_spacing.values() for g in values])
    within_a_decade = len(shown) and shown.max() < 10 * shown.min()  # a narrow range: 10ⁿ labels would show one
    return fast_figure(data, plot_layout(
        height, legend=LEGEND_BELOW, shapes=[_hline(1)],
        xaxis=titled_axis("step of the chain (1: the first, from t = T; log scale)", log=True, tickmode="array",
                          tickvals=[v for v in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000) if v <= n],
                          range=[-0.05, math.log10(n) + 0.05]),
        yaxis=titled_axis("gain |√(1 − ᾱ_s) − √(ᾱ_s/SNR_t)|", log=True,
                          **(log_labels(shown) if within_a_decade else {})),
    ))


GRID_TITLE_DROP = 24  # px: the column titles of a grid sit below plotly's toolbar, which covered the right one's end
ROW_LABEL_BAND = 20  # px: the band above a row of a grid that holds its label
ROW_LABEL_SIZE = 13  # px: a row's label, drawn smaller where the grid is narrower than it (`FIT_GRIDS_JS`)
GRID_ROW_GAP = 6  # px between the rows of a grid


def noised_grid_figure(
    cells: Sequence[Sequence[np.ndarray]],
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    *,
    kind: str,
    cell_px: int = 150,
    point_hues: np.ndarray | None = None,
    reference: np.ndarray | None = None,
    arrows: Sequence[Sequence[np.ndarray]] | None = None,
    arrow_origins: np.ndarray | None = None,
    arrow_cap: float = 0.45,
    points_as_pictures: bool = False,
    row_colors: Sequence[str] | None = None,
    short_titles: Sequence[str] | None = None,
) -> PlotData:
    """A rows × columns grid of small panels: uint8 pictures (kind "images") or (N, 2) points (kind "points");
    ``point_hues``: one number in [0, 1] per point, the same in every panel, drawn on a cyclic colour scale (so that
    a point can be followed from panel to panel), instead of one colour for all; ``reference``: the training data
    (M, 2), drawn in grey beneath the points of every panel; ``arrows``: per panel a vector (G, 2) at each of
    ``arrow_origins`` (G, 2), drawn as arrows on one scale for all panels (`arrow_scale`), none longer than
    ``arrow_cap`` (in the panels' units: less than the origins' spacing, so that arrows do not overlap);
    ``points_as_pictures``: each panel's points (and the training data beneath them) drawn as one picture
    (`_panel_picture`) rather than scatter traces, for a grid redrawn at every change of a control (the Schedules
    tab: 24 panels of 1,000 points, 24,000 SVG markers, kept the browser busy for seconds); not with ``arrows``;
    ``row_colors``: a colour for each row, drawn as a short line before its label, as in a legend (e.g. its schedule's
    colour in the curves above the grid); ``short_titles``: a shorter title for each column ("x̂₀" for "x̂₀
    predicted"), shown where the titles would be smaller than `GRID_TITLE_ONE_LINE_SMALLEST` px even on two lines
    (`FIT_GRIDS_JS`: seven columns on a phone).

    The panels' axes are laid out here rather than by ``make_subplots``: built and validated cell by cell,
    the grid took 0.2–0.5 s on every redraw of the Schedules tab.
    """
    if kind not in ("images", "points"):
        raise ValueError(f"kind must be 'images' or 'points', got {kind!r}")
    if points_as_pictures and arrows is not None:
        raise ValueError("points drawn as pictures have no arrows")
    rows, cols, points = len(cells), len(col_labels), kind == "points"
    # Each row's label sits above it, at its left, rather than in a margin beside the grid: a 230-px margin left the
    # panels of the Schedules tab 64 px wide in a 1,024-px window (a projector's). Vertical layout in pixels: a row is
    # its label's band, then its panels, then a gap. A narrower window lays it out again for narrower panels
    # (`FIT_GRIDS_JS`, from ``layout.meta.grid``).
    band, gap_px = (ROW_LABEL_BAND if any(row_labels) else 0), GRID_ROW_GAP
    area_height = max(rows, 1) * (band + cell_px) + max(rows - 1, 0) * gap_px
    gap_x = 0.01  # between panels, as a fraction of the plotting area's width
    width, height = (1 - gap_x * (cols - 1)) / cols, cell_px / area_height
    axis = dict(showticklabels=False, ticks="", showgrid=False, zeroline=False, fixedrange=True)
    if points:
        axis.update(range=list(POINT_RANGE), showline=True, linecolor="#ccc", mirror=True, constrain="domain")
    lefts = [c * (width + gap_x) for c in range(cols)]  # each panel's left and top edge
    tops = [1 - (r * (band + cell_px + gap_px) + band) / area_height for r in range(rows)]
    traces, axes, pictures = [], {}, []
    scale = None if arrows is None else arrow_scale([v for row in arrows for v in row], arrow_cap)
    # the training data's dots, the same in every panel: drawn once
    beneath = beneath_layer(reference, 2 * cell_px) if points_as_pictures and reference is not None else None
    for r, row in enumerate(cells):
        if len(row) != cols:
            raise ValueError(f"row {r + 1} has {len(row)} cells, expected {cols}")
        for c, cell in enumerate(row):
            i = r * cols + c + 1
            suffix = "" if i == 1 else str(i)
            bottom, left = points and r == rows - 1, points and c == 0
            axes[f"xaxis{suffix}"] = dict(axis, domain=[max(lefts[c], 0), min(lefts[c] + width, 1)], anchor=f"y{suffix}",
                                          **(POINT_TICKS | dict(title=dict(GRID_AXIS_TITLE, text="x₁")) if bottom
                                             else {}))
            axes[f"yaxis{suffix}"] = dict(axis, domain=[max(tops[r] - height, 0), min(tops[r], 1)], anchor=f"x{suffix}",
                                          scaleanchor=f"x{suffix}",
                                          **(POINT_TICKS | dict(title=dict(GRID_AXIS_TITLE, text="x₂")) if left
                                             else {}))
            where = dict(xaxis=f"x{suffix}", yaxis=f"y{suffix}")
            if kind == "images":
                traces.append(dict(type="image", source=png_data_uri(cell), hoverinfo="skip", **where))
            else:
                marker = dict(size=2, color=SCHEDULE_COLORS.get("linear"), opacity=0.5)
                if point_hues is not None:
                    marker = dict(size=3, color=point_hues, colorscale=HUE_SCALE, cmin=0, cmax=1, opacity=0.8)
                if points_as_pictures:
                    pictures.append(_panel_picture(cell, marker, point_hues, beneath, 2 * cell_px, where))
                    continue
                if reference is not None:
                    traces.append(dict(type="scatter", x=reference[:, 0], y=reference[:, 1], mode="markers",
                                       hoverinfo="skip", showlegend=False,
                                       marker=GRID_REFERENCE_MARKER, **where))
                traces.append(dict(
                    type="scatter", x=cell[:, 0], y=cell[:, 1], mode="markers", hoverinfo="skip", showlegend=False,
                    marker=marker, **where,
                ))
                if arrows is not None and arrow_origins is not None:
                    traces.append(_arrow_trace(arrow_origins, arrows[r][c] * scale, arrow_cap, where))
    title = dict(xref="paper", yref="paper", showarrow=False)
    annotations = [
        dict(title, text=text, x=left + width / 2, y=1, xanchor="center", yanchor="bottom",
             font=dict(size=GRID_TITLE_SIZE))
        for left, text in zip(lefts, col_labels)
    ]
    # room for the column titles (below plotly's toolbar) and the coordinates with their titles
    margin = dict(l=48 if points else 10, r=10, t=30 + GRID_TITLE_DROP, b=44 if points else 10)
    annotations += [  # row titles above their rows, horizontal: easier to read than plotly's rotated ones; from the
        # figure's left edge, over the margin too (beside the panels only, they ran past a phone's right edge)
        dict(title, text=text if color is None else f'<span style="color:{color}">━━</span> {text}', x=0, y=top,
             xanchor="left", yanchor="bottom", xshift=4 - margin["l"], font=dict(size=ROW_LABEL_SIZE, color="#444"))
        for top, text, color in zip(tops, row_labels, row_colors or [None] * rows) if text
    ]
    return fast_figure(traces, dict(
        **axes,
        annotations=annotations,
        images=pictures,
        height=area_height + margin["t"] + margin["b"],  # a row of panels is cell_px high
        margin=margin,
        modebar=dict(remove=["select2d", "lasso2d"]),  # nothing here to select: the camera (a PNG) is what is left
        **_STYLE,
        showlegend=False,
        meta=dict(grid=dict(rows=rows, cols=cols, band=band, gap=gap_px, cell=cell_px, panel=width, lefts=lefts,
                            titles=list(col_labels), short_titles=list(short_titles or col_labels),
                            label_rows=[r for r, text in enumerate(row_labels) if text],
                            labels=[text for text in row_labels if text], label_size=ROW_LABEL_SIZE)),
    ))


ARROW_COLOR = "#c66f0a"  # the player's FIELD_COLOR: 3.7:1 on white (#e08214 was 2.9:1)


def arrow_scale(fields: Sequence[np.ndarray], cap: float) -> float:
    """One factor for the vectors (G, 2) of several panels: the 90th percentile of their lengths is drawn ``cap``
    long (longer ones are capped), so that panels compare and a few huge vectors do not shrink all the others."""
    norms = np.concatenate([np.linalg.norm(np.nan_to_num(f), axis=1) for f in fields]) if fields else np.zeros(0)
    top = float(np.quantile(norms, 0.9)) if len(norms) else 0.0
    return cap / top if top > 0 else 0.0


def _arrow_trace(origins: np.ndarray, vectors: np.ndarray, cap: float, where: dict) -> dict:
    """Arrows from ``origins`` (G, 2) along ``vectors`` (G, 2), each no longer than ``cap``: a line per arrow
    (separated by gaps) with an arrowhead at its tip."""
    vectors = np.nan_to_num(vectors)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    tips = origins + vectors * np.minimum(1.0, cap / np.maximum(norms, 1e-12))
    xs = np.stack([origins[:, 0], tips[:, 0], np.full(len(tips), np.nan)], axis=1).ravel()
    ys = np.stack([origins[:, 1], tips[:, 1], np.full(len(tips), np.nan)], axis=1).ravel()
    sizes = np.tile([0, 9, 0], len(tips))  # an arrowhead at each tip only
    xs, ys = [None if np.isnan(v) else float(v) for v in xs], [None if np.isnan(v) else float(v) for v in ys]
    return dict(type="scatter", x=xs, y=ys, mode="lines+markers", hoverinfo="skip", showlegend=False,
                line=dict(color=ARROW_COLOR, width=1.5),
                marker=dict(symbol="arrow", angleref="previous", size=sizes.tolist(), color=ARROW_COLOR), **where)


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
    ratios: list[float]  # the return ratio of the samples to their examples (0: all came back, 1: nothing left)
    kept: list[float] | None = None  # images with a classifier: the share of samples read as their example's class


def survival_figure(curves: Sequence[SurvivalCurve], x_axis: str = "t", *, height: int = 440) -> PlotData:
    """The return ratio (solid) and, where known, the share that kept its class (dotted) of each curve against
    t₀ or, with ``x_axis="log_snr"``, against the log-SNR at t₀ (reversed: clean data on the left, as with t),
    where models of different schedules can be compared: the SNR, not t, sets what survives."""
    if x_axis not in SURVIVAL_AXES:
        raise ValueError(f"x_axis must be one of {SURVIVAL_AXES}, got {x_axis!r}")
    data = []
    for k, curve in enumerate(curves):
        color = CURVE_COLORS[k % len(CURVE_COLORS)]
        x = curve.t0s if x_axis == "t" else curve.log_snrs
        extra = [[t, lam] for t, lam in zip(curve.t0s, curve.log_snrs)]
        hover = "t₀ = %{customdata[0]} · log-SNR = %{customdata[1]:.2f}<br>%{y:.2f}<extra>%{fullData.name}</extra>"
        data.append(dict(type="scatter", x=x, y=curve.ratios, mode="lines+markers", name=f"{curve.label}: return ratio",
                         line=dict(color=color, width=2), customdata=extra, hovertemplate=hover))
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
    y_title = "return ratio · share that kept its class" if kept else "return ratio (0: back to its example)"
    layout = plot_layout(height, legend=LEGEND_BELOW, showlegend=True, xaxis=xaxis,  # names the model of one curve too
                         yaxis=titled_axis(y_title, range=[-0.03, 1.15]))
    layout["shapes"] = [_hline(1.0)]
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
    return fast_figure(data, plot_layout(height, **_point_axes(True)))


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
    layout = plot_layout(height, legend=LEGEND_BELOW, showlegend=True, shapes=[_hline(1)], xaxis=xaxis, yaxis=yaxis)
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
