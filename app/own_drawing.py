"""A drawing as what a model's chain starts from (the Reverse tab's SDEdit from your own drawing, Meng et al. 2022):
"a scribble becomes a digit", a shape becomes the swiss roll (`drawing_starts`). For an image model the drawing's ink
(`app.own_points.drawing_ink`) is made into one example of the model's data: light strokes on black for MNIST and
Fashion-MNIST, whose pictures are light on dark, dark ink on white paper otherwise; a digit for an MNIST model is
framed as MNIST's digits are (`framed_like_mnist`). For a 2D model, points are spread over its strokes."""

from __future__ import annotations

from typing import Any

import gradio as gr
import numpy as np
import PIL.Image
import torch

from app.errors import InputError
from app.own_points import drawing_ink
from core.data import DataInfo, PointNormalisation, points_from_drawing

DRAWING_CANVAS = 280  # pixels per side of the drawing box: ten pixels of the box to one of a 28 × 28 digit
DRAWING_BRUSH = 22  # pixels: a stroke about 2 pixels wide once drawn at 28 × 28, as MNIST's are
LIGHT_ON_DARK = ("mnist", "fashion_mnist")  # data sets whose pictures are light on a black ground
MNIST_BOX = 20  # MNIST's digits fit a 20 × 20 box, their aspect kept, in their 28 × 28 pictures (LeCun et al. 1998)
INKED = 0.05  # a pixel with more ink than this is part of the drawing's bounding box
THICKEST_STROKE = 6  # pixels: a stroke of the brush is scaled to no more than this at 28 × 28
LARGEST_SCALE = THICKEST_STROKE / DRAWING_BRUSH  # a digit drawn small is scaled by at most this (a 28-px 7 had filled
# its 20 × 20 box with 15-px strokes: a blob, read as an 8)
SMALLEST_SPREAD = DRAWING_BRUSH  # pixels: the least spread of a 2D drawing's ink (a dot, scaled to the data's size,
# had become a filled disc; a straight stroke of 110 px or a ring 60 px across just pass)


def drawing_starts(value: Any, info: DataInfo, n: int, seed: int) -> torch.Tensor | None:
    """n starts of a chain from the drawing (a Sketchpad value), in the model's coordinates; None when nothing is
    drawn. Images: n copies of `drawing_example`. 2D: n points spread over its strokes (`core.data.points_from_drawing`,
    drawn with ``seed``), put at zero mean and unit spread by the ink's own (`ink_normalisation`: the toys' scale, the
    same for any n); gr.Error for a drawing whose ink spreads less than `SMALLEST_SPREAD` pixels."""
    if info.kind == "image":
        example = drawing_example(value, info)
        return None if example is None else example.expand(n, *example.shape)
    ink = drawing_ink(value)
    if ink is None:
        return None
    norm = ink_normalisation(ink)
    if norm.scale < SMALLEST_SPREAD:
        raise InputError("Your drawing is too small to start the chain: draw a shape across much of the box. Its "
                         "points are scaled to the data's size, and a small one becomes a blob.")
    return norm.apply(points_from_drawing(ink, n, seed=seed)).float()


def ink_normalisation(ink: np.ndarray) -> PointNormalisation:
    """The drawing's ink (H, W) read as a density (as `core.data.points_from_drawing` draws from it: x to the right, y
    up, uniform within a pixel): its mean and spread, the root mean square of the coordinates about it (as
    `core.data.normalise_points` measures a point set's)."""
    height, width = ink.shape
    weights = ink / ink.sum()
    rows, cols = np.indices(ink.shape)
    x, y = cols + 0.5, height - rows - 0.5  # the pixels' centres
    mean_x, mean_y = float((weights * x).sum()), float((weights * y).sum())
    variance = float((weights * ((x - mean_x) ** 2 + (y - mean_y) ** 2)).sum()) / 2 + 1 / 12  # + within a pixel
    return PointNormalisation(mean=(mean_x, mean_y), scale=variance ** 0.5)


def drawing_example(value: Any, info: DataInfo) -> torch.Tensor | None:
    """The drawing (a Sketchpad value) as one example of an image model's data ``info``: (C, H, W) float32 in
    [−1, 1]; None when nothing is drawn. Its ink is white for light-on-dark data (`LIGHT_ON_DARK`), else black on
    white, in every channel; an MNIST digit is `framed_like_mnist`, anything else scaled down whole."""
    ink = drawing_ink(value)
    if ink is None:
        return None
    channels, height, width = info.shape
    if info.name == "mnist" and (height, width) == (28, 28):
        small = framed_like_mnist(ink)
    else:
        small = scaled(ink, (width, height))
    light = small if info.name in LIGHT_ON_DARK else 1.0 - small
    return torch.from_numpy(2.0 * light - 1.0).float().expand(channels, height, width).contiguous()


def scaled(ink: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``ink`` (H, W) in [0, 1] resized to ``size`` (width, height), each new pixel the mean of the ink it covers
    (a box filter: thin strokes grey out rather than vanish)."""
    picture = PIL.Image.fromarray(np.round(ink * 255).astype(np.uint8))
    return np.asarray(picture.resize(size, PIL.Image.Resampling.BOX), dtype=np.float64) / 255.0


def framed_like_mnist(ink: np.ndarray) -> np.ndarray:
    """A drawn digit framed as MNIST's are (LeCun et al. 1998): its bounding box scaled to fit a `MNIST_BOX`-pixel
    square, its aspect kept, then placed in a 28 × 28 picture with its centre of mass at the centre (moved no
    further than keeps it whole). Without this, a digit drawn across the whole box fills all 28 × 28 pixels, a size
    the model never saw. A digit drawn small is scaled by no more than `LARGEST_SCALE` (its strokes would grow with
    it), and a warning asks for a larger one."""
    rows, cols = np.nonzero(ink > INKED)
    if not len(rows):  # only the faintest ink: scaled whole
        return scaled(ink, (28, 28))
    crop = ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    factor = MNIST_BOX / max(crop.shape)
    if factor > LARGEST_SCALE:
        factor = LARGEST_SCALE
        gr.Warning(f"Your digit is drawn small ({max(crop.shape)} pixels of the box's {DRAWING_CANVAS}): draw it "
                   "across most of the box, as MNIST's digits fill 20 of their 28 pixels.")
    height, width = (max(1, round(side * factor)) for side in crop.shape)
    digit = scaled(crop, (width, height))
    mass = digit.sum()
    centre_y = (digit.sum(axis=1) @ np.arange(height)) / mass if mass else (height - 1) / 2
    centre_x = (digit.sum(axis=0) @ np.arange(width)) / mass if mass else (width - 1) / 2
    top = int(np.clip(round(13.5 - centre_y), 0, 28 - height))
    left = int(np.clip(round(13.5 - centre_x), 0, 28 - width))
    framed = np.zeros((28, 28))
    framed[top:top + height, left:left + width] = digit
    return framed
