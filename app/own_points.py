"""The user's own 2D points: drawn in a Sketchpad or uploaded as a CSV of x,y rows.

A session's points are kept in one `gr.State` (an `OwnPoints`), shared by the tabs: drawn or uploaded
in the Train tab and trained on there, they can also be scrubbed in the Forward tab and noised under
each schedule in the Schedules tab. A drawing's strokes are read
as a density (`core.data.points_from_drawing`); both kinds are standardised to zero mean and unit
spread (`core.data.normalise_points`), and their `DataInfo` maps samples back to the drawing's or the
file's coordinates.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import PIL.Image
import torch

from app.errors import InputError
from core.data import MAX_DRAWING_SIDE, DataInfo, csv_text, normalise_points, points_from_csv, points_from_drawing
from core.datasets import DEFAULT_TOY_POINTS, own_data_name


OWN_POINTS = "own"  # the data choice of the session's own points (Forward, Schedules and Train tabs)
OWN_POINTS_ELSEWHERE = "Your own points (draw them in the Train tab)"  # its label in the Forward and Schedules tabs
DRAWING_SIDE = 256  # pixels per side of the drawing canvas
MAX_CSV_BYTES = 20_000_000  # the largest CSV of points read (20 MB: ~1M rows; any upload stops at 64 MB)


@dataclass(frozen=True)
class OwnPoints:
    """A session's own 2D training data (`OWN_POINTS`), drawn or read from an uploaded CSV."""

    points: torch.Tensor  # (N, 2) float32 in model coordinates: zero mean, unit spread, in random order
    info: DataInfo  # its normalisation maps samples back to the drawing's or the file's coordinates
    key: str = field(default_factory=lambda: uuid.uuid4().hex)  # tells one drawing or upload from the next
    drawn: bool = False  # made from the drawing box (which a cleared box then empties), not a CSV or a checkpoint


def first_points(own: OwnPoints | None, n: int) -> torch.Tensor:
    """The first ``n`` of the session's own points (in random order), to show in the Forward and Schedules
    tabs; gr.Error when none have been drawn or uploaded yet."""
    if own is None:
        raise InputError("No points of your own yet: draw a shape or upload a CSV in the Train tab (Training data: "
                       "Your own points), then come back.")
    return own.points[:n]


MAX_LAYERS = 4  # the drawing box sends one layer; more come only through the API


def checked_drawing(preprocess: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A Sketchpad's ``preprocess``, which decodes every picture of its value, behind a check of their number and
    sizes read from their headers: 20 layers of 6,300 × 6,300 pixels (150 kB each) sent through the API had taken
    3 GB and 17 s of CPU before `drawing_ink` refused them, and a hundred would have ended the shared process."""
    def checked(payload: Any) -> Any:
        if payload is not None and payload.id is None:  # an id: the pictures came as blobs, in Gradio's own store
            layers = payload.layers or []
            if len(layers) > MAX_LAYERS:
                raise InputError(f"A drawing has at most {MAX_LAYERS} layers; got {len(layers)}.")
            for size in (_picture_size(part.path) for part in (payload.background, payload.composite, *layers)
                         if part is not None):
                if size == (0, 0):  # Gradio's decoding had failed with a traceback and "an upstream exception"
                    raise InputError("A drawing's background and layers must be pictures (PNG or WebP); one is not.")
                if max(size) > MAX_DRAWING_SIDE:
                    raise InputError(f"A drawing may be at most {MAX_DRAWING_SIDE} pixels a side; got "
                                     f"{size[0]} × {size[1]} pixels.")
        return preprocess(payload)

    return checked


def _picture_size(path: str) -> tuple[int, int]:
    """(width, height) from a picture's header, nothing decoded; (0, 0) for a file that is not one."""
    try:
        with PIL.Image.open(path) as picture:
            return picture.size
    except PIL.Image.DecompressionBombError:  # beyond Pillow's limit (`app.images`), far beyond a drawing's
        raise InputError(f"A drawing may be at most {MAX_DRAWING_SIDE} pixels a side; got a far larger picture.") \
            from None
    except (OSError, ValueError):
        return 0, 0


def drawing_box(*, label: str, elem_id: str, side: int, brush_size: int, color: str,
                show_label: bool = True) -> gr.Sketchpad:
    """A drawing box: a white ``side`` × ``side`` canvas, one layer, a brush of one ``color``, no upload, no crop; its
    value checked before Gradio decodes it (`checked_drawing`). Its strokes are read by `drawing_ink`."""
    box = gr.Sketchpad(
        label=label, show_label=show_label, type="numpy", image_mode="RGBA", canvas_size=(side, side),
        fixed_canvas=True, layers=False, transforms=(), sources=(), elem_id=elem_id,
        brush=gr.Brush(default_size=brush_size, colors=[color], color_mode="fixed"), height=side + 90)
    box.preprocess = checked_drawing(box.preprocess)  # before Gradio decodes it
    return box


# Gradio 6.31 asks every component that was ever a handler's output or a queued handler's input, and all within it,
# for its value at each change of any event's status; a drawing box answers by uploading its pictures again (its
# strokes, or a background from the server). Once a box had been drawn in, or given a background, each key press on
# the Forward tab's t uploaded 10 to 30 files. So no handler reads or writes a box, nor shows or hides what holds it:
# scripts do (`COPY_JS` into a `box_reader`, `controls.shown_js`, `BLANK_BOX_JS`).
COPY_JS = "(value) => value"  # an event's script that copies its input (a drawing box) into its output


def box_reader(box: gr.Sketchpad) -> gr.Sketchpad:
    """A hidden twin of the drawing ``box`` for handlers to read, filled by `COPY_JS` on the handler's own trigger
    just before it (`read_box`): it decodes as the box does, with the box's checks, and the strokes the box sent
    as blobs while drawn in (kept in the box's store, which its twin reads)."""
    twin = gr.Sketchpad(visible=False, type="numpy", image_mode="RGBA", layers=False, elem_id=f"{box.elem_id}-copy")
    twin.preprocess = box.preprocess
    return twin


def read_box(trigger: Any, box: gr.Sketchpad, twin: gr.Sketchpad) -> Any:
    """Copy the drawing ``box`` into its `box_reader` ``twin`` when ``trigger`` (a bound event listener such as
    ``button.click``) fires, in the page; listeners of the trigger set up after this one read the twin filled (Gradio
    runs a trigger's listeners in turn, each script to its end). Returns the event, for a handler to follow with
    ``.then``."""
    return trigger(None, box, twin, js=COPY_JS, queue=False, show_progress="hidden")


def select_brush_js(elem_id: str, condition: str = "true") -> str:
    """An event's script that selects the brush of the drawing box #``elem_id``, where ``condition`` (JavaScript of
    the event's inputs, ``args``) holds, so that one can draw at once: a box shown or cleared has no tool, and a
    stroke on it draws nothing. The box may be drawn a moment after the event: it is looked for for 3 s."""
    return f"""(...args) => {{
    if (!({condition})) return [];
    const pick = (tries) => {{
        const brush = document.querySelector('#{elem_id} button[aria-label="Brush"]');
        if (brush && !brush.classList.contains("highlight")) brush.click();
        else if (!brush && tries > 0) setTimeout(() => pick(tries - 1), 100);
    }};
    setTimeout(() => pick(30), 50);
    return [];
}}"""


def drawing_ink(value: Any) -> np.ndarray | None:
    """How much ink each pixel of a Sketchpad value holds, (H, W) in [0, 1]: the strongest alpha of its
    layers (the background is opaque white, strokes are drawn on the layers); None when nothing is drawn."""
    layers = [np.asarray(layer) for layer in (value or {}).get("layers") or [] if layer is not None]
    if any(max(layer.shape[:2]) > MAX_DRAWING_SIDE for layer in layers):  # sent through the API (the page's box is
        # DRAWING_SIDE a side): it had taken gigabytes in floats, then been dropped without a word
        raise InputError(f"A drawing may be at most {MAX_DRAWING_SIDE} pixels a side; got layers of "
                         f"{', '.join(' × '.join(map(str, layer.shape[1::-1])) for layer in layers)} pixels.")
    alphas = [layer[..., 3] for layer in layers if layer.ndim == 3 and layer.shape[-1] == 4]
    if not alphas:
        return None
    if len({alpha.shape for alpha in alphas}) > 1:  # sent through the API: it had failed with a traceback
        raise InputError(f"A drawing's layers must all be of one size; got layers of "
                         f"{', '.join(' × '.join(map(str, alpha.shape[::-1])) for alpha in alphas)} pixels.")
    ink = np.max(alphas, axis=0) / 255.0
    return ink if ink.any() else None


def points_of_drawing(ink: np.ndarray) -> OwnPoints:
    """DEFAULT_TOY_POINTS points spread over the strokes (`core.data.points_from_drawing`), standardised.
    ValueError when there is too little ink."""
    points, norm = normalise_points(points_from_drawing(ink, DEFAULT_TOY_POINTS, seed=0))
    info = DataInfo(name="drawing", kind="2d", shape=(2,), mean=norm.mean, scale=norm.scale,
                    source="drawn in the Train tab")
    return OwnPoints(points, info, drawn=True)


def points_of_csv(path: str | Path) -> OwnPoints:
    """An uploaded CSV of x,y rows, standardised and shuffled (previews show its first points); gr.Error
    with the reason for a file that is not one."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_CSV_BYTES:
            raise ValueError(f"the file is larger than {MAX_CSV_BYTES // 1_000_000} MB")
        points, norm = normalise_points(points_from_csv(csv_text(path.read_bytes())))
    except UnicodeDecodeError:
        raise InputError(f"{path.name} is not a text file: upload a CSV of x,y rows, one point per line.") from None
    except (OSError, ValueError) as err:
        raise InputError(f"{path.name} cannot be used: {err}.") from None
    order = torch.randperm(len(points), generator=torch.Generator().manual_seed(0))
    name = own_data_name(re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem)[:40] or "points")
    info = DataInfo(name=name, kind="2d", shape=(2,), mean=norm.mean, scale=norm.scale, source=f"{path.name} (uploaded)")
    return OwnPoints(points[order], info)
