"""Point clouds drawn as one picture over the axes instead of one SVG marker a point: each dot where its point is, as
wide and as opaque as `app.figures.points_figure`'s markers, overlapping dots composited as SVG does, in one colour or
coloured by hue, over the training data's dots; a whole figure (`points_picture_figure`) or a panel of a grid
(`panel_picture`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np
import plotly.colors
from gradio.components.plot import PlotData

from app import memo
from app.figures import (
    HUE_SCALE, POINT_COLOR, POINT_OPACITY, POINT_RANGE, POINT_SIZE, REFERENCE_COLOR, corner_label, fast_figure,
    plot_layout, point_axes,
)
from app.images import alpha_png_data_uri, png_data_uri

POINTS_PICTURE_PX = 800  # `points_picture_figure`: 2 pixels per CSS pixel of the x_t plot's usual 395-px square
POINT_DOT_PX = POINT_SIZE * 2.0  # a dot's diameter in those pixels
GRID_PICTURE_DOT = 2.5  # `panel_picture`: its dots' diameter in picture pixels per marker pixel


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


def points_picture_figure(points: np.ndarray, *, height: int = 460, label: str = "", beneath: np.ndarray | None = None,
                          beneath_label: str = "") -> PlotData:
    """A 2D point cloud (N, 2) as `points_figure` draws it (same axes, dot size and opacity), but drawn here as one
    transparent picture over the axes (`points_alpha`) instead of a scatter trace.

    For views redrawn at every step of a slider: plotly draws a scatter trace as one SVG element per point, ~150 ms
    for 2,000 points in headless Chromium, and Gradio draws every update on a new plot; the picture takes ~30 ms in
    the browser and ~10 ms to make here. The dots are 3 CSS pixels wide at the usual size of the Forward tab's x_t
    plot (drawn at 2 pixels per CSS pixel, sharp on a HiDPI screen), and scale with the plot.

    ``beneath`` (M, 2): points drawn first, in light grey (the clean data x₀ under the Forward tab's x_t), named by
    ``beneath_label`` in the bottom right corner.
    """
    pictures = ([points_picture(points, xaxis="x", yaxis="y", color=POINT_COLOR)] if beneath is None
                else points_over_picture(points, beneath, xaxis="x", yaxis="y"))
    notes = [corner_label(label, POINT_RANGE[0], POINT_RANGE[1])] if label else []
    if beneath is not None and beneath_label:
        notes.append(dict(corner_label(beneath_label, POINT_RANGE[1], POINT_RANGE[0]), xanchor="right",
                          yanchor="bottom"))
    return fast_figure([], plot_layout(height, images=pictures, **point_axes(legend=False), annotations=notes))


def points_over_picture(points: np.ndarray, beneath: np.ndarray, *, xaxis: str, yaxis: str) -> list[dict]:
    """Two layout images: ``beneath`` in `REFERENCE_COLOR` beneath the gridlines (remembered: the same for every t of
    a scrub), and `points_picture` of ``points`` above them. (Plotly 3.3 drew only the first of two pictures above
    the same axes.)"""
    grey = memo.PICTURES.remembered(
        memo.digest("x0 beneath", np.asarray(beneath), xaxis, yaxis),
        lambda: dict(points_picture(beneath, xaxis=xaxis, yaxis=yaxis, color=REFERENCE_COLOR), layer="below"))
    return [grey, points_picture(points, xaxis=xaxis, yaxis=yaxis, color=POINT_COLOR)]


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


def panel_picture(points: np.ndarray, marker: dict, hues: np.ndarray | None, beneath: Beneath | None, size: int,
                  where: dict) -> dict:
    """One panel of `noised_grid_figure`'s points as a picture: its dots `GRID_PICTURE_DOT` picture pixels a marker
    pixel (a panel is drawn 100–150 CSS pixels wide for 2 picture pixels each), in the marker's colour or coloured by
    ``hues``, over the ``beneath`` layer (the training data) if any. Remembered (`app.memo.PICTURES`): a grid redrawn
    for another t shows the same x₀ panel again."""
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
    return _over_axes(memo.PICTURES.remembered(key, draw), where["xaxis"], where["yaxis"])


@dataclass(frozen=True)
class Beneath:
    """The training data's dots drawn beneath every panel of a grid: `dot_layer`'s (alpha, colour), and the key it is
    remembered by."""

    layer: tuple[np.ndarray, np.ndarray]
    key: bytes


def beneath_layer(reference: np.ndarray, marker: dict, size: int) -> Beneath:
    """`Beneath` for the training data ``reference`` (M, 2) drawn with ``marker`` (its size, colour and opacity) in a
    panel of ``size`` picture pixels (remembered)."""
    dot = GRID_PICTURE_DOT * marker["size"]

    def draw() -> tuple[np.ndarray, np.ndarray]:
        layer = dot_layer(np.asarray(reference, dtype=np.float64), size=size, dot=dot, opacity=marker["opacity"],
                          colors=_one_color(marker["color"], len(reference)))
        for array in layer:
            array.setflags(write=False)  # shared by every grid drawn over this data
        return layer

    key = memo.digest("beneath", np.asarray(reference), size, dot, marker["opacity"], marker["color"])
    return Beneath(memo.PICTURES.remembered(key, draw), key)
