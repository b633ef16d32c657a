"""The inpainting panel's own mask: the user paints over the part of the picture to hide, and the rest is kept
known. The box shows the model's first training example beneath the paint; every example is masked alike.

The paint is read as coverage (`core.inpaint.known_from_coverage`): a model pixel (28 × 28 or 32 × 32 of them under
the box's 280 × 280) is hidden when paint covers at least half of its area (the mean of the paint's alpha over the
box pixels beneath it), and kept known otherwise, in every channel.

No handler reads or writes the box, nor shows or hides its column (Gradio would have it upload its pictures at every
event of the page: `app.own_points.box_reader`): the handlers read its hidden copy, fill a hidden image with the
picture beneath, and scripts do the rest."""

from __future__ import annotations

from typing import Any

import gradio as gr
import numpy as np
import PIL.Image
import torch

from app.checkpoint_access import load
from app.controls import shown_js
from app.errors import InputError
from app.images import HIDDEN_COLOUR, image_pixels
from app.own_points import drawing_box, drawing_ink
from app.reverse_tab import data_kind, examples_here
from core.inpaint import known_from_coverage

PAINTED = "painted"  # the mask name of the panel's "Known part" that reads the box
PAINTED_LABEL = "what you leave unpainted"  # the box beneath says to paint (a phone cut a longer one)
PAINT_CANVAS = 280  # the box's side in screen pixels: 10 per pixel of a 28 × 28 model
PAINT_BRUSH = 30
PAINT_COLOUR = "#{:02x}{:02x}{:02x}".format(*((HIDDEN_COLOUR + 1) * 127.5).round().int().tolist())  # the plots' blue
EMPTY_BACKGROUND = 128  # grey, where the model's examples cannot be had here
PAINT_BOX_ID = "reverse-inpaint-paint"
PAINT_BOX_SHOWN_JS = shown_js(f"args[0] === '{PAINTED}'", kept_in=PAINT_BOX_ID)  # on a change of the known part
# a new picture beneath (`picture_beneath`), or the bin's Clear (which takes the picture away too): a blank box on it
BLANK_BOX_JS = "(picture) => ({background: picture, layers: [], composite: null})"


def painted_known(value: Any, shape: tuple[int, ...]) -> torch.Tensor:
    """The bool mask (1, C, H, W), true where known, of a box's ``value`` (a Sketchpad value) for images of ``shape``
    (C, H, W): a pixel is hidden where the paint covers at least half of it. gr.Error when nothing, or
    everything, would be hidden."""
    ink = drawing_ink(value)
    if ink is None:
        raise InputError("Paint over the part to hide in the box under “Known part” first (or choose one of the "
                         "other known parts).")
    known = known_from_coverage(torch.from_numpy(ink), shape)
    if known.all():
        raise InputError("The paint covers no pixel of the picture by half: paint over the part to hide with "
                         "wider strokes.")
    if not known.any():
        raise InputError("The paint covers the whole picture, so nothing is known to fill in from: leave the part "
                         "to keep unpainted.")
    return known


def painted_label(known: torch.Tensor) -> str:
    """How the panel names a painted mask: what was left unpainted, and its share of the pixels."""
    return f"what you left unpainted ({known.float().mean():.0%} of the pixels)"


def paint_background(path: str | None, trained: Any) -> np.ndarray:
    """The first training example of the image model at ``path``, enlarged to the box (uint8 RGB, each pixel a
    square); a grey square where the model is not an image model or its examples cannot be had here."""
    try:
        checkpoint = load(path, trained)
        example = examples_here(checkpoint, 1, 0)[:1] if checkpoint.data.kind == "image" else None
    except (InputError, ValueError):
        example = None
    if example is None:
        return np.full((PAINT_CANVAS, PAINT_CANVAS, 3), EMPTY_BACKGROUND, np.uint8)
    picture = PIL.Image.fromarray(image_pixels(example)[0]).convert("RGB")
    return np.asarray(picture.resize((PAINT_CANVAS, PAINT_CANVAS), PIL.Image.Resampling.NEAREST))


def picture_beneath(path: str | None, trained: Any, mask_name: Any, beneath: np.ndarray | None = None) -> Any:
    """The picture beneath the paint box for the known part ``mask_name``: for `PAINTED`, the first example of the
    image model at ``path`` when the box shows another (``beneath``; a new picture comes on a blank box,
    `BLANK_BOX_JS`); else gr.skip(), and the box is left as it is, paint and all: while its picture stays the
    model's (mnist beside mnist_conditional), or another known part is chosen (`PAINT_BOX_SHOWN_JS` hides it). The
    paint is never sent back to the box (a Clear had brought it back)."""
    if mask_name != PAINTED or data_kind(path) != "image":
        return gr.skip()
    background = paint_background(path, trained)
    if beneath is not None and np.array_equal(background, beneath):
        return gr.skip()
    return background


def beneath_image() -> gr.Image:
    """The hidden holder of the picture beneath the paint box, which `picture_beneath` fills and `BLANK_BOX_JS`
    puts in the box: a handler that wrote the box itself made it upload its pictures at every event of the page
    (`own_points.box_reader`)."""
    return gr.Image(visible=False, type="numpy", image_mode="RGB", format="png", interactive=False)


def painted_box() -> gr.Sketchpad:
    """The box to paint the hidden part in, beneath a note that names it (a phone's toolbar covered a label);
    `picture_beneath` puts the model's first example beneath."""
    gr.Markdown("**Paint over the part to hide**: every example loses the same pixels (a pixel is hidden where your "
                "paint covers half of it or more).")
    return drawing_box(label="Paint over the part to hide", show_label=False, elem_id=PAINT_BOX_ID,
                       side=PAINT_CANVAS, brush_size=PAINT_BRUSH, color=PAINT_COLOUR)
