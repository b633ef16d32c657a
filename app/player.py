"""The in-browser frame player of the Reverse tab, and the pictures it plays.

Gradio streams images at a few frames a second, so the reverse chain is rendered once on the
server into small frames packed in one PNG sprite sheet, and played by a few lines of JavaScript
in the browser: a ``<canvas>`` per panel of a frame (x_t, x̂₀ …: side by side, stacked on a phone) that draws its
slice of one cell of the sheet per tick (``requestAnimationFrame``, default 30 frames/s), with play/pause, a scrub
bar and a speed choice. The script is the
``js_on_load`` of a ``gr.HTML`` (Gradio 6 runs no ``<script>`` put in an HTML value); it re-binds
through ``watch('value', ...)`` whenever a new chain arrives. The sheet travels as a file output
(served by Gradio from where it is written: `serve_exports`) whose URL `SPRITE_JS` hands to the player,
because megabytes of data URIs in the HTML value make Gradio's HTML component take tens of seconds to render.

Frames are drawn with PIL only (no plotting library). 2D: the x_t point cloud on fixed axes
[−4, 4]², with a few pinned points and their recent paths (and, when asked, the arrows of a score
field), beside the predicted x̂₀ cloud. Images: the x_t grid beside the predicted x̂₀ grid, sent at
their own resolution and scaled up by the browser with ``image-rendering: pixelated``. The Forward
tab's movie (`app.forward_animation`) plays single panels of x_t in the same player.
The same frames export, when asked, as an animated GIF and an MP4 (`app.movie_files`, which also writes a movie's
sprite sheet).
"""

from __future__ import annotations

import errno
import html
import json
import logging
import math
import os
import re
import shutil
import stat
import tempfile
import time
import unicodedata
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import gradio as gr
import gradio.utils as gradio_utils
import numpy as np
import PIL.Image
import PIL.ImageDraw
import PIL.ImageFilter
import PIL.ImageFont

from app.figures import POINT_RANGE
from app.images import tile
from app.runs import key_folder
from app.throttle import Throttle
from core.paths import delete_folder

log = logging.getLogger(__name__)

DEFAULT_FPS = 30
FPS_CHOICES = (6, 12, 24, 30, 60)
HOLD_LAST_FRAMES = 24  # the last frame stays this many frame-times before the loop restarts
PLOT_SIZE = 440  # pixels of a 2D panel (square); a 2D frame is x_t and x̂₀ side by side
PANEL_GAP = 16  # pixels between the two panels of a 2D frame
# The frames' small text (ticks, the grey's label): the Reverse player draws a 2D frame (896 px) 600–680 CSS px wide
# on a projector (a 1024-px screen, or 1280 px at 150 %), where 13 px came out at 9–10 px and 16 px at 11; 18 px
# comes out at 12–14.
SMALL_TEXT = 18
_MARGIN_L, _MARGIN_B, _MARGIN_T, _MARGIN_R = 44, 28, 10, 12
_INNER = (_MARGIN_L + 1, _MARGIN_T + 1, PLOT_SIZE - _MARGIN_R - 2, PLOT_SIZE - _MARGIN_B - 2)  # points drawn here
GIF_MIN_WIDTH = 480  # image-chain GIF frames are scaled up (nearest) to at least this width
NOTE_BAND = 26  # pixels of the band beneath an exported frame that holds its formula (`noted_frames`)

# palette of the 2D frames (indexed PNG: small, fast)
_WHITE, _AXIS, _GRID, _POINT, _TEXT = 0, 1, 2, 3, 4
_TRAIL0 = 5
TRAIL_COLORS = ["#d62728", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
_DATA = _TRAIL0 + len(TRAIL_COLORS)
DATA_COLOR = "#949494"  # the training data, beneath the points: 3:1 on white, as a chart's marks need (#c8c8c8 was 1.7:1)
_FIELD = _DATA + 1
FIELD_COLOR = "#c66f0a"  # the arrows of the score field: 3.7:1 on white (#e08214 was 2.9:1)
_SHADE0 = _FIELD + 1  # three greys between the text's and white: the edges of anti-aliased text (`_write`)
_TEXT_SHADES = ["#c8c8c8", "#909090", "#595959"]  # a quarter, half and three quarters of the way to the text's #222
_PALETTE_HEX = ["#ffffff", "#444444", "#e6e6e6", "#3182bd", "#222222", *TRAIL_COLORS, DATA_COLOR, FIELD_COLOR,
                *_TEXT_SHADES]
PINNED_POINTS = len(TRAIL_COLORS)
TRAIL_FRAMES = 8  # each pinned point trails a line through where it was in this many previous frames
FIELD_STEP = 0.5  # model units between the arrows of a score field (16 × 16 arrows on the axes)
FIELD_CAP = 0.9 * FIELD_STEP  # longer arrows are drawn this long, so that arrows never overlap


def pinned_points(n_points: int) -> int:
    """How many points of a cloud of ``n_points`` are pinned (drawn large, with their paths): the first ones."""
    return min(PINNED_POINTS, n_points)


def _palette() -> list[int]:
    flat: list[int] = []
    for colour in _PALETTE_HEX:
        flat += [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
    return flat + [0] * (768 - len(flat))


@cache
def _font(size: int) -> tuple[PIL.ImageFont.ImageFont, bool]:
    """(font, whether it draws x̂₀ properly): DejaVu Sans when installed, else PIL's own font."""
    try:
        return PIL.ImageFont.truetype("DejaVuSans.ttf", size), True
    except OSError:
        pass
    try:
        return PIL.ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", size), True
    except OSError:
        return PIL.ImageFont.load_default(size=size), False


def _write(image: PIL.Image.Image, xy: tuple[float, float], text: str, size: int, *, anchor: str | None = None,
           halo: bool = False) -> None:
    """Write ``text`` into a 2D panel (a palette image), anti-aliased. PIL writes into a palette image without
    anti-aliasing: jagged letters, and the subscript of a 15-px x̂₀ a blot. Here the text's coverage is drawn as a
    mask and its edges shaded with `_TEXT_SHADES`; ``halo``: on a white band 2 px wide, readable over points and
    arrows."""
    font = _font(size)[0]
    box = [int(v) for v in PIL.ImageDraw.Draw(image).textbbox(xy, text, font=font, anchor=anchor, stroke_width=2)]
    box = [max(box[0] - 1, 0), max(box[1] - 1, 0), min(box[2] + 1, image.width), min(box[3] + 1, image.height)]
    if box[2] <= box[0] or box[3] <= box[1]:
        return
    at = (xy[0] - box[0], xy[1] - box[1])  # the text's place in the crop of its box: only that is drawn and shaded
    size_of_box = (box[2] - box[0], box[3] - box[1])
    pixels = np.asarray(image.crop(box)).copy()
    mask = PIL.Image.new("L", size_of_box, 0)
    PIL.ImageDraw.Draw(mask).text(at, text, fill=255, font=font, anchor=anchor)
    if halo:  # the ink grown by 2 px (a 5 × 5 maximum: PIL's stroked text made 80 frames 0.25 s slower)
        pixels[np.asarray(mask.filter(PIL.ImageFilter.MaxFilter(5))) > 0] = _WHITE
    level = np.digitize(np.asarray(mask), [32, 96, 160, 224])  # 0: no ink … 4: full ink
    shades = np.array([_WHITE, _SHADE0, _SHADE0 + 1, _SHADE0 + 2, _TEXT], dtype=pixels.dtype)
    pixels[level > 0] = shades[level[level > 0]]
    image.paste(PIL.Image.fromarray(pixels, mode="P"), box[:2])


_PLAIN_DIGITS = str.maketrans("₀₁₂₃₄₅₆₇₈₉", "0123456789")
_SPELLED = (("x̂₀", "x0"), ("ᾱ", "alpha_bar"), ("\u0302", "_hat"), ("\u0303", "_tilde"), ("°", " deg"), ("−", "-"),
            ("→", "->"), ("←", "<-"), ("↔", "<->"), ("≈", "~"), ("≤", "<="), ("≥", ">="), ("≠", "!="), ("√", "sqrt"),
            ("×", "x"), ("‖", "||"), ("–", "-"), ("—", "-"), ("∞", "inf"))


def drawable(text: str) -> str:
    """``text`` as the frames' font can draw it. Without DejaVu Sans (Windows and macOS lack it) PIL's own font draws
    ASCII, ° · ± and boxes for the rest: there x̂₀, ᾱ, arrows and subscripts are spelled out, a Greek letter by its
    name (η → eta, ε̂ → epsilon_hat), an accented letter without its accent (é → e), anything else as "?"."""
    if _font(15)[1]:
        return text
    for symbol, spelled in _SPELLED:
        text = text.replace(symbol, spelled)
    text = re.sub("[₀-₉]+", lambda m: "_" + m.group(0).translate(_PLAIN_DIGITS), text)
    return "".join(char if _plain_font_draws(char) else _spelled_out(char) for char in text)


@cache
def _plain_font_draws(char: str) -> bool:
    """Whether PIL's own font has a glyph for ``char``: a missing one comes out as the box of an unassigned code
    point (U+0378)."""
    font = PIL.ImageFont.load_default(size=15)
    return char.isspace() or np.asarray(font.getmask(char)).tobytes() != np.asarray(font.getmask("\u0378")).tobytes()


def _spelled_out(char: str) -> str:
    """A character PIL's own font lacks, in ASCII: a Greek letter's name, an accented letter's base, or "?"."""
    if greek := re.fullmatch(r"GREEK (SMALL|CAPITAL) LETTER (\w+)( WITH .*)?", unicodedata.name(char, "")):
        return greek[2].lower() if greek[1] == "SMALL" else greek[2].capitalize()
    return unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode() or "?"


# ----- 2D frames --------------------------------------------------------------------------------


def _to_pixels(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Model coordinates (…, 2) → (column, row) float pixel positions in a 2D frame."""
    lo, hi = POINT_RANGE
    width = PLOT_SIZE - _MARGIN_L - _MARGIN_R
    height = PLOT_SIZE - _MARGIN_T - _MARGIN_B
    col = _MARGIN_L + (points[..., 0] - lo) / (hi - lo) * (width - 1)
    row = _MARGIN_T + (hi - points[..., 1]) / (hi - lo) * (height - 1)
    return col, row


@cache
def _axes_background() -> PIL.Image.Image:
    image = PIL.Image.new("P", (PLOT_SIZE, PLOT_SIZE), _WHITE)
    image.putpalette(_palette())
    draw = PIL.ImageDraw.Draw(image)
    lo, hi = POINT_RANGE
    for value in np.arange(lo, hi + 1e-9, 2.0):
        (c, r) = _to_pixels(np.array([value, value]))
        draw.line([(c, _MARGIN_T), (c, PLOT_SIZE - _MARGIN_B)], fill=_GRID)
        draw.line([(_MARGIN_L, r), (PLOT_SIZE - _MARGIN_R, r)], fill=_GRID)
    draw.rectangle([_MARGIN_L, _MARGIN_T, PLOT_SIZE - _MARGIN_R, PLOT_SIZE - _MARGIN_B], outline=_AXIS)
    for value in np.arange(lo, hi + 1e-9, 2.0):
        (c, r) = _to_pixels(np.array([value, value]))
        tick = drawable(f"{value:g}".replace("-", "−"))
        _write(image, (c, PLOT_SIZE - _MARGIN_B + 4), tick, SMALL_TEXT, anchor="mt")
        _write(image, (_MARGIN_L - 5, r), tick, SMALL_TEXT, anchor="rb" if value == lo else "rm")  # clear of x's
    return image


def _paint(pixels: np.ndarray, points: np.ndarray, colour: int) -> np.ndarray:
    """Paint the points (N, 2, model coordinates) that fall inside the axes as 2 × 2 dots into ``pixels`` (the
    palette indices of a panel); returns which points were inside."""
    col, row = _to_pixels(np.asarray(points, dtype=np.float64))
    inside = (col >= _INNER[0]) & (col <= _INNER[2]) & (row >= _INNER[1]) & (row <= _INNER[3])
    c, r = col[inside].astype(np.intp), row[inside].astype(np.intp)
    for dr in (0, 1):
        for dc in (0, 1):
            pixels[r + dr, c + dc] = colour
    return inside


REFERENCE_LABEL = "grey: training data"


def _background(reference: np.ndarray | None, label: str = REFERENCE_LABEL) -> np.ndarray:
    """A panel's axes, with ``reference`` (N, 2) in light grey when given, named by ``label`` in a corner (the
    training data, the chain's x₀ …), as palette indices."""
    pixels = np.asarray(_axes_background()).copy()
    if reference is None:
        return pixels
    _paint(pixels, reference, _DATA)
    image = PIL.Image.fromarray(pixels, mode="P")
    image.putpalette(_palette())
    _write(image, (PLOT_SIZE - _MARGIN_R - 8, PLOT_SIZE - _MARGIN_B - 6), drawable(label), SMALL_TEXT, anchor="rs",
           halo=True)
    return np.asarray(image).copy()


def field_grid() -> np.ndarray:
    """The points (G, 2), in model coordinates, where a score field is drawn: the centres of a square grid of
    cells `FIELD_STEP` wide over the axes, row by row from the top left."""
    lo, hi = POINT_RANGE
    ticks = np.arange(lo + FIELD_STEP / 2, hi, FIELD_STEP)
    xs, ys = np.meshgrid(ticks, ticks[::-1])
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


def _draw_arrows(draw: PIL.ImageDraw.ImageDraw, vectors: np.ndarray) -> None:
    """Arrows from the points of `field_grid` along ``vectors`` (G, 2), at the axes' scale; arrows longer than
    `FIELD_CAP` are drawn that long, and those under 2 pixels as dots."""
    vectors = np.where(np.isfinite(vectors), vectors, 0.0)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    grid = field_grid()
    tips = grid + vectors * np.minimum(1.0, FIELD_CAP / np.maximum(norms, 1e-12))
    (c0, r0), (c1, r1) = _to_pixels(grid), _to_pixels(tips)
    for x0, y0, x1, y1 in zip(c0.tolist(), r0.tolist(), c1.tolist(), r1.tolist()):
        dx, dy = x1 - x0, y1 - y0
        size = math.hypot(dx, dy)
        if size < 2.0:
            draw.point((x0, y0), fill=_FIELD)
            continue
        draw.line([(x0, y0), (x1, y1)], fill=_FIELD)
        head = min(5.0, 0.45 * size)
        ux, uy = dx / size, dy / size
        for side in (1.0, -1.0):  # two barbs, ±30° off the shaft
            bx = ux * 0.866 - side * uy * 0.5
            by = uy * 0.866 + side * ux * 0.5
            draw.line([(x1, y1), (x1 - head * bx, y1 - head * by)], fill=_FIELD)


def _points_panel(points: np.ndarray, paths: Sequence[np.ndarray], label: str, background: np.ndarray,
                  field: np.ndarray | None = None, rings: np.ndarray | None = None) -> PIL.Image.Image:
    """One 2D panel: the points (N, 2) on the fixed axes, and per pinned point k its path (S_k, 2), all in model
    coordinates: a line through the path (when it has more than one position) and a dot at its last position.
    ``background``: the panel's axes as palette indices (`_background`); ``field``: vectors (G, 2) at the points
    of `field_grid`, drawn as arrows over the points (beneath the paths); ``rings``: per pinned point k, a
    position (K, 2) marked with a ring of its colour (where it started, for a chain joined at t₀). Paths, dots and
    rings are clipped to the axes: a pinned point thrown beyond them had been drawn over the ticks below the plot."""
    pixels = background.copy()
    inside = _paint(pixels, points, _POINT)
    image = PIL.Image.fromarray(pixels, mode="P")
    image.putpalette(_palette())
    axes = image.copy()  # the margins, ticks and frame, as they are before anything is drawn over them
    draw = PIL.ImageDraw.Draw(image)
    if field is not None:
        _draw_arrows(draw, field)
        _write(image, (_MARGIN_L + 8, PLOT_SIZE - _MARGIN_B - 6), "arrows: score field", SMALL_TEXT, anchor="ls",
               halo=True)
    if rings is not None:
        ring_col, ring_row = _to_pixels(np.asarray(rings, dtype=np.float64))
        for k, (x, y) in enumerate(zip(ring_col.tolist(), ring_row.tolist())):
            draw.ellipse([x - 8, y - 8, x + 8, y + 8], outline=_TRAIL0 + k, width=2)
    for k, path in enumerate(paths):
        path_col, path_row = _to_pixels(np.asarray(path, dtype=np.float64))
        xy = list(zip(path_col.tolist(), path_row.tolist()))
        if len(xy) > 1:
            draw.line(xy, fill=_TRAIL0 + k, width=2)
        x, y = xy[-1]
        draw.ellipse([x - 4, y - 4, x + 4, y + 4], fill=_TRAIL0 + k, outline=_AXIS)
    inner = (_INNER[0], _INNER[1], _INNER[2] + 1, _INNER[3] + 1)
    axes.paste(image.crop(inner), inner[:2])
    image = axes
    beyond = int(len(points) - inside.sum())
    if beyond:
        label += f" · {beyond:,} of {len(points):,} beyond the axes"
    _write(image, (_MARGIN_L + 8, _MARGIN_T + 6), label, 16, halo=True)
    return image


def points_panels() -> list[tuple[int, int]]:
    """(x, width) in frame pixels of the two panels of a `render_points_frames` frame, x_t and x̂₀: the player
    draws each into a canvas of its own (side by side on a wide screen, stacked on a phone: `player_html`)."""
    return [(0, PLOT_SIZE), (PLOT_SIZE + PANEL_GAP, PLOT_SIZE)]


def render_points_frames(
    clouds: Sequence[np.ndarray], x0_clouds: Sequence[np.ndarray], ts: Sequence[int],
    reference: np.ndarray | None = None, fields: Sequence[np.ndarray | None] | None = None,
    starts: np.ndarray | None = None, x_label: str = "x_t · t = {t}", x0_label: str = "predicted x̂₀",
) -> list[PIL.Image.Image]:
    """One frame per point cloud: x_t beside the model's prediction x̂₀ made from it.

    clouds, x0_clouds: per frame, x_t and x̂₀ (N, 2) in model coordinates; ts: per frame, the timestep shown;
    reference: the training data (M, 2), drawn in light grey beneath the points of both panels, so that the chain
    can be seen to land on it; fields: per frame, None or vectors (G, 2) at the points of `field_grid` (the
    model's score field at that frame's t), drawn as arrows in the x_t panel.
    The first `PINNED_POINTS` points are pinned: on the x_t side each trails a line through its positions in
    the previous `TRAIL_FRAMES` frames (the path through every step would be a tangle: the first reverse
    steps jump by about 1), on the x̂₀ side it is a dot at its x̂₀. starts: for a chain joined at t₀, the data
    (N, 2) that was noised into its first cloud; the pinned points' starts are rings on the x̂₀ side.
    x_label: the left panel's label, ``{t}`` standing for the frame's t; x0_label: the right one's.
    """
    pinned = pinned_points(len(clouds[0]))
    background = _background(reference)
    frames = []
    fields = fields if fields is not None else [None] * len(clouds)
    for i, (points, x0_points, t, field) in enumerate(zip(clouds, x0_clouds, ts, fields)):
        recent = clouds[max(0, i - TRAIL_FRAMES) : i + 1]
        left = _points_panel(points, [np.stack([c[k] for c in recent]) for k in range(pinned)],
                             drawable(x_label.replace("{t}", str(t))), background, field)
        right = _points_panel(x0_points, [x0_points[k : k + 1] for k in range(pinned)],
                              drawable(x0_label), background,
                              rings=None if starts is None else starts[:pinned])
        (x_left, _), (x_right, width) = points_panels()
        frame = PIL.Image.new("P", (x_right + width, PLOT_SIZE), _WHITE)
        frame.putpalette(_palette())
        frame.paste(left, (x_left, 0))
        frame.paste(right, (x_right, 0))
        frames.append(frame)
    return frames


def render_point_panels(clouds: Sequence[np.ndarray], labels: Sequence[str], reference: np.ndarray | None = None,
                        reference_label: str = REFERENCE_LABEL) -> list[PIL.Image.Image]:
    """One single-panel frame per point cloud (N, 2, model coordinates) on the fixed axes, with its label;
    ``reference`` (M, 2) drawn beneath in light grey, named by ``reference_label``."""
    background = _background(reference, reference_label)
    return [_points_panel(points, [], drawable(label), background) for points, label in zip(clouds, labels)]


# ----- image frames -----------------------------------------------------------------------------


def image_panels(batch: np.ndarray, nrow: int, count: int) -> list[tuple[int, int]]:
    """(x, width) in frame pixels of the ``count`` grids of a `render_image_frames` frame whose batches are like
    ``batch`` (B, H, W[, C]) tiled ``nrow`` to a row: each grid as wide as the tiled batch, a gap of a sixteenth of
    that (at least 4 px) between each two. The frames are composed by it, and the player cuts them by it."""
    width = tile(batch, nrow).shape[1]
    step = width + max(4, width // 16)
    return [(k * step, width) for k in range(count)]


def render_image_frames(x_t: Sequence[np.ndarray], x0_pred: Sequence[np.ndarray], nrow: int,
                        start: np.ndarray | None = None) -> list[PIL.Image.Image]:
    """Per frame: the x_t grid, a gap, the x̂₀ grid; inputs uint8 batches (B, H, W) or (B, H, W, 3). ``start``:
    one more batch, shown first in every frame (the data a chain joined at t₀ was noised from, or an inpainting's
    examples with their hidden part coloured: grey chains are then shown as RGB). The grids lie where
    `image_panels` says."""
    frames = []
    first = None if start is None else tile(start, nrow)
    rgb = first is not None and first.ndim == 3
    layout = image_panels(x_t[0], nrow, 2 if first is None else 3) if len(x_t) else []

    def grid(batch: np.ndarray) -> np.ndarray:
        pixels = tile(batch, nrow)
        return np.repeat(pixels[..., None], 3, axis=-1) if rgb and pixels.ndim == 2 else pixels

    for a, b in zip(x_t, x0_pred):
        grids = ([] if first is None else [first]) + [grid(a), grid(b)]
        frame = np.full((grids[0].shape[0], layout[-1][0] + layout[-1][1], *grids[0].shape[2:]), 255, np.uint8)
        for (x, width), pixels in zip(layout, grids, strict=True):
            frame[:, x : x + width] = pixels
        frames.append(PIL.Image.fromarray(frame))
    return frames


def labelled_image_frames(frames: Sequence[PIL.Image.Image], labels: Sequence[Sequence[str]]) -> list[PIL.Image.Image]:
    """Image frames scaled up (nearest) with a caption band, for GIF/MP4 export: ``labels[i]`` are frame i's
    captions, one per panel, centred over equal shares of its width. Grey frames stay grey ("L"): their GIF is the
    same picture, written several times faster than from RGB (which PIL quantises frame by frame)."""
    if not frames:
        return []
    width, height = frames[0].size
    scale = max(1, -(-GIF_MIN_WIDTH // width))
    band = 28
    out = []
    for frame, captions in zip(frames, labels):
        mode = "L" if frame.mode == "L" else "RGB"
        big = frame.convert(mode).resize((width * scale, height * scale), PIL.Image.Resampling.NEAREST)
        canvas = PIL.Image.new(mode, (big.width, big.height + band), "white")
        canvas.paste(big, (0, band))
        draw = PIL.ImageDraw.Draw(canvas)
        share = big.width / max(1, len(captions))
        ink = 34 if mode == "L" else "#222222"
        for k, caption in enumerate(captions):
            text = drawable(caption)
            draw.text((share * (k + 0.5), band / 2), text, fill=ink, font=_caption_font(draw, text, share - 8),
                      anchor="mm")
        out.append(canvas)
    return out


def noted_frames(frames: Sequence[PIL.Image.Image], notes: Sequence[str]) -> list[PIL.Image.Image]:
    """Frames with a band beneath, holding each frame's note (its formula, `app.formulas`), for GIF/MP4 export:
    slides then carry what the player shows under its frames. Keeps each frame's mode (and palette)."""
    band = NOTE_BAND
    out = []
    for frame, note in zip(frames, notes, strict=True):
        if frame.mode == "P":
            canvas = PIL.Image.new("P", (frame.width, frame.height + band), _WHITE)
            canvas.putpalette(frame.getpalette())
            ink = _TEXT
        else:
            canvas = PIL.Image.new(frame.mode, (frame.width, frame.height + band), "white")
            ink = "#222222" if frame.mode == "RGB" else 34
        canvas.paste(frame, (0, 0))
        draw = PIL.ImageDraw.Draw(canvas)
        text = drawable(note)
        draw.text((frame.width / 2, frame.height + band / 2), text, fill=ink,
                  font=_caption_font(draw, text, frame.width - 12), anchor="mm")
        out.append(canvas)
    return out


def _caption_font(draw: PIL.ImageDraw.ImageDraw, text: str, width: float) -> PIL.ImageFont.ImageFont:
    """The largest font from 16 down to 10 px in which ``text`` fits ``width`` pixels (10 px if none does)."""
    for size in range(16, 10, -1):
        font = _font(size)[0]
        if draw.textlength(text, font=font) <= width:
            return font
    return _font(10)[0]


def write_failure(err: OSError, folder: Path) -> str:
    """Why a write into ``folder`` failed, in words: "its disk is full" when it is (ffmpeg's pipe breaks then, and
    imageio raises "[Errno 32] Broken pipe" followed by ffmpeg's whole command, server paths and all), else the
    system's reason, or "the movie writer stopped" for an error without one (ffmpeg's, or an encoder's of Pillow; the
    details go to the log)."""
    try:
        full = err.errno == errno.ENOSPC or shutil.disk_usage(folder).free < FULL_DISK_BYTES
    except OSError:
        full = False
    return "its disk is full" if full else (err.strerror or "the movie writer stopped")


FULL_DISK_BYTES = 1 << 20  # less room than this (a 2D chain's GIF alone is 1.4 MB): a failed write is the full disk's


EXPORTS_KEPT_SECONDS = 2 * 3600  # a session's exports untouched this long go (and their links: there is no copy)
EXPORTS_SWEEP = Throttle(60.0)  # at most one sweep a minute: 50 ms over a thousand sessions' folders


def exports_root() -> Path:
    return Path(tempfile.gettempdir()) / "ddpm-explorer-exports"


def serve_exports() -> bool:
    """Have Gradio serve the exports from `exports_root`, where they are written (`gr.set_static_paths`, before the
    app launches, once however many apps are built), and nothing else of the temporary folder. A file returned to a
    component outside a static path is copied into Gradio's cache and kept there for `delete_cache`'s hour: each
    Generate had written its GIF, MP4 and sprite sheet twice (4.3 MB more for a 2D chain, 4.6 MB for MNIST), and a
    model's .zip its size again. Whether the exports are served so.

    Only a folder of this process's user, and not a link, is served whole: in a shared /tmp another user could make
    the folder first, a link to a folder of their choice, all of which would be served. Otherwise the exports go
    through Gradio's cache as before (a warning in the log). The exports' paths reach the page in their URLs:
    folders are named by a digest of the session key (`export_folder`), and each export's own folder and sprite
    have random names. (Gradio also takes a static file as an input: only a session's own exports, whose names it
    was sent, could be given back that way.)"""
    root = exports_root()
    try:
        root.mkdir(mode=0o700, exist_ok=True)
        found = root.lstat()
    except OSError:  # a file of that name, or a link to one
        found = None
    if found is None or not stat.S_ISDIR(found.st_mode) or (hasattr(os, "getuid") and found.st_uid != os.getuid()):
        log.warning("%s is not a folder of this user's: the exports are copied into Gradio's cache", root)
        return False
    if not gradio_utils.is_static_file(root):
        gr.set_static_paths([root])
    return True


def export_folder(key: str, view: str) -> Path:
    """A fresh export folder for one session (``key``, its folder named by a digest of it: `runs.key_folder`) and
    one view (e.g. "reverse"). Once its files are written, `keep_only` deletes the view's earlier folders; the
    sessions' folders that have not exported for `EXPORTS_KEPT_SECONDS` are deleted first (`sweep_old_exports`, at
    most once a minute: `EXPORTS_SWEEP`)."""
    if EXPORTS_SWEEP.due():
        sweep_old_exports()
    base = exports_root() / key_folder(key) / view
    base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=base, prefix=f"{time.time_ns():020d}-"))  # named in the order they are made


def sweep_old_exports(now: float | None = None) -> list[Path]:
    """Delete the folders of the sessions whose newest export is older than `EXPORTS_KEPT_SECONDS`; returns them.
    `keep_only` bounds one session's files, but every session that exported had left its last folder for good
    (1.1 GB in 388 folders on a shared machine)."""
    now = time.time() if now is None else now
    try:
        sessions = list(exports_root().iterdir())
    except OSError:  # none yet
        return []
    removed = []
    for session in sessions:
        try:
            newest = max((p.stat().st_mtime for p in session.glob("*/*")), default=session.stat().st_mtime)
        except OSError:  # deleted meanwhile
            continue
        if now - newest > EXPORTS_KEPT_SECONDS and delete_folder(session):
            removed.append(session)
    return removed


def keep_only(folder: Path) -> None:
    """Delete the export folders of ``folder``'s session and view made before it: the view now shows what ``folder``
    holds. Done after its files are written, and only to older folders: two jobs of one page may write one view at
    once (a Generate and a noise loop, with DDPM_HEAVY_CONCURRENCY above 1), and the one that ends first must not
    delete the other's while it writes. A newer folder left by an older job ending last goes with the next export."""
    for other in folder.parent.iterdir():
        if other.name < folder.name:
            delete_folder(other)


# ----- the player -------------------------------------------------------------------------------


def sprite_layout(n: int) -> tuple[int, int]:
    """(columns, rows) of a sprite sheet holding n frames: about square."""
    cols = max(1, math.ceil(math.sqrt(n)))
    return cols, math.ceil(n / cols)


def make_sprite(frames: Sequence[PIL.Image.Image]) -> tuple[PIL.Image.Image, int, int]:
    """All frames (same size and mode) on one sheet, row by row: (sheet, columns, rows)."""
    if not frames:
        raise ValueError("no frames")
    w, h = frames[0].size
    cols, rows = sprite_layout(len(frames))
    sheet = PIL.Image.new(frames[0].mode, (cols * w, rows * h), 255 if frames[0].mode in ("L", "P") else "white")
    if frames[0].mode == "P":
        sheet.putpalette(frames[0].getpalette())
        sheet.paste(_WHITE, (0, 0, sheet.width, sheet.height))
    for i, frame in enumerate(frames):
        sheet.paste(frame, ((i % cols) * w, (i // cols) * h))
    return sheet, cols, rows


def write_sprite(frames: Sequence[PIL.Image.Image], path: str | Path) -> tuple[Path, int, int]:
    sheet, cols, rows = make_sprite(frames)
    sheet.save(path, format="PNG", compress_level=6)
    return Path(path), cols, rows


KEYS_HINT = ("Click the frames to play or pause. Keys: Space play/pause, ← → or Page Up / Down one frame, "
             "Home / End first / last")

# On the dark theme a drawn 2D frame (white paper) is shown inverted, its hues turned back: dark paper, light text and
# grid, the marks in their own hues (the white frames had glared on a projector). Pictures of images are left as they
# are, and the GIF and MP4 keep their white paper. Page-wide CSS: a component's `css_template` is scoped to it, where
# the theme's `.dark` class is not.
DARK_THEME_CSS = ".dark .ddpm-player.pl-smooth canvas {filter: invert(1) hue-rotate(180deg)}"

PLAYER_CSS = """
.ddpm-player {font-family: inherit; max-width: 920px; container-type: inline-size}
.ddpm-player .pl-caption {display: flex; gap: 4%; font-size: 1rem; margin: 0 0 4px 0}
.ddpm-player .pl-caption > span {flex: 1; text-align: center}
.ddpm-player .pl-stage {width: 100%; position: relative}
/* A frame's panels, each in its own canvas under its own caption: side by side as wide, and as far apart, as in the
   frame (--pl-grow: its width in frame pixels; --pl-gap: the gap before it, a share of the frame's width), bottoms
   level when captions wrap to different heights. */
.ddpm-player .pl-panels {display: flex; align-items: flex-end}
.ddpm-player .pl-panel {flex: var(--pl-grow, 1) 1 0; min-width: 0; margin-left: var(--pl-gap, 0)}
/* On a phone (the player under 480 px wide) side by side panels were ~145 px wide, their labels ~5 px tall: there
   they stack, each the player's full width. */
@container (max-width: 480px) {
  .ddpm-player .pl-panels {flex-direction: column; align-items: stretch; gap: 12px}
  .ddpm-player .pl-panel {flex: none; margin-left: 0}
}
.ddpm-player canvas {width: 100%; height: auto; display: block; image-rendering: pixelated;
  image-rendering: crisp-edges; background: #fafafa; cursor: pointer}
.ddpm-player:focus {outline: none}
.ddpm-player:focus-visible {outline: 2px solid #6366f1; outline-offset: 4px; border-radius: 4px}
.ddpm-player.pl-smooth canvas {image-rendering: auto}
.ddpm-player .pl-loading {position: absolute; inset: 0; display: flex; align-items: center;
  justify-content: center; color: var(--block-info-text-color)}
/* stacked, on the first panel: centred on the stack, it could lie a screen below the top */
@container (max-width: 480px) {.ddpm-player .pl-loading {align-items: flex-start; padding-top: 96px}}
.ddpm-player .pl-controls {display: flex; align-items: center; gap: 10px; margin-top: 8px; flex-wrap: wrap}
.ddpm-player .pl-controls input[type=range] {flex: 1; min-width: 160px}
.ddpm-player .pl-controls button {padding: 4px 12px; border-radius: 6px; border: 1px solid var(--border-color-primary);
  background: var(--button-secondary-background-fill); color: var(--button-secondary-text-color); cursor: pointer;
  min-width: 84px}
.ddpm-player .pl-controls select {background-color: var(--input-background-fill); color: var(--body-text-color)}
@media (pointer: coarse) {  /* a finger's size on a touch screen (the bar was 16 px high, Pause 32) */
  .ddpm-player .pl-controls button, .ddpm-player .pl-controls select, .ddpm-player .pl-controls input[type=range] {
    min-height: 44px}
}
.ddpm-player .pl-info {font-variant-numeric: tabular-nums; min-width: 170px}
.ddpm-player .pl-note {margin-top: 6px; font-size: 1rem; font-variant-numeric: tabular-nums; min-height: 1.4em}
.ddpm-player .pl-key {font-size: 0.85rem; color: var(--block-info-text-color)}
.ddpm-empty {color: var(--block-info-text-color); padding: 24px; border: 1px dashed var(--border-color-primary);
  border-radius: 8px}
"""

# Runs in the browser as the gr.HTML's js_on_load: `element` is the component's root; `watch`
# re-runs setup after each new value (a new chain). The frames arrive separately as one sprite
# sheet (a file Gradio serves): SPRITE_JS, run after Generate, sends its URL to the player in a
# "ddpm-sprite" event (and keeps it in window.__ddpmSpriteUrl in case the player renders later);
# the player takes only the sheet whose URL holds its chain id. Big data URIs in the HTML value would make Gradio's HTML
# component re-render for tens of seconds, so the value holds only the markup and the t list.
PLAYER_JS = r"""
const setup = () => {
  const old = element.__ddpmPlayer;
  if (old) { old.alive = false; cancelAnimationFrame(old.raf); }
  const root = element.querySelector('.ddpm-player');
  if (!root) return;
  const ts = root.dataset.ts.split(',');
  const n = ts.length, cols = +root.dataset.cols, fw = +root.dataset.w, fh = +root.dataset.h;
  // one canvas per panel of a frame: each draws its slice of the frame, from data-x, as wide as it is
  const panels = [...root.querySelectorAll('canvas')].map((canvas) => {
    const ctx = canvas.getContext('2d');
    ctx.imageSmoothingEnabled = false;
    return {canvas, ctx, x: +canvas.dataset.x, w: canvas.width};
  });
  const btn = root.querySelector('.pl-play'), scrub = root.querySelector('.pl-scrub');
  const info = root.querySelector('.pl-info'), tspans = root.querySelectorAll('.pl-t');
  const speed = root.querySelector('.pl-speed'), loading = root.querySelector('.pl-loading');
  const note = root.querySelector('.pl-note'), notes = note ? JSON.parse(root.dataset.notes) : null;
  const hold = parseInt(root.dataset.hold || '0');
  const st = {alive: true, raf: 0, i: 0, playing: root.dataset.autoplay !== '0', last: 0, wait: 0,
              count: 0, fps: parseFloat(root.dataset.fps || '30'), sheet: null};
  element.__ddpmPlayer = st;
  const show = (i) => {
    st.i = i; st.count += 1;
    if (st.sheet) {
      for (const p of panels) {
        p.ctx.drawImage(st.sheet, (i % cols) * fw + p.x, Math.floor(i / cols) * fh, p.w, fh, 0, 0, p.w, fh);
      }
    }
    tspans.forEach((tspan) => { tspan.textContent = ts[i]; });
    info.textContent = `frame ${i + 1} / ${n} · ${root.dataset.var} = ${ts[i]}${root.dataset.unit}`;
    scrub.value = String(i);
    scrub.setAttribute('aria-valuetext', info.textContent);  // a reader said "frame, 24" for frame 25 at t = 696
    if (note) note.textContent = notes[i];
    root.dataset.frame = String(i);
    root.dataset.shown = String(st.count);
  };
  const setPlaying = (p) => {
    st.playing = p; st.last = 0;
    info.setAttribute('aria-live', p ? 'off' : 'polite');  // a screen reader reads the frame stepped to, not 30 a second
    btn.innerHTML = p ? 'Pause' : '<span aria-hidden="true">▶</span> Play';  // not "black right-pointing triangle"
    root.dataset.playing = p ? '1' : '0';
    if (p && !st.raf) st.raf = requestAnimationFrame(tick);  // the loop runs while playing only
  };
  const toggle = () => { if (!st.playing && st.i === n - 1) show(0); setPlaying(!st.playing); };
  btn.onclick = toggle;
  root.querySelector('.pl-panels').onclick = toggle;  // a click on any panel, its caption or the gap between
  scrub.oninput = () => { setPlaying(false); show(parseInt(scrub.value)); };
  // Keys while the player or a control of it has focus (a click on it gives it focus); presentation clickers send
  // PageUp/PageDown, which step one frame whatever has focus: after Pause they had scrolled the page, on the scrub bar
  // PageDown went 8 frames back, on the speed list it changed the speed. Each control keeps its other keys: the
  // button Space and Enter, the scrub bar its arrows, Home and End (which move it already), the list its arrows.
  const steps = {ArrowLeft: -1, PageUp: -1, ArrowRight: 1, PageDown: 1};
  const arrows = ['ArrowLeft', 'ArrowRight', 'ArrowUp', 'ArrowDown', 'Home', 'End'];
  const ownKeys = new Map([[btn, [' ', 'Enter']], [scrub, arrows], [speed, [...arrows, ' ', 'Enter']]]);
  root.onkeydown = (e) => {
    if ((ownKeys.get(e.target) || []).includes(e.key)) return;
    if (e.key === ' ') toggle();
    else if (e.key in steps) { setPlaying(false); show(Math.min(n - 1, Math.max(0, st.i + steps[e.key]))); }
    else if (e.key === 'Home' || e.key === 'End') { setPlaying(false); show(e.key === 'Home' ? 0 : n - 1); }
    else return;
    e.preventDefault();
  };
  if (speed) {  // the list shows the speed that plays: a new movie's markup may keep the old list's choice
    speed.value = root.dataset.fps;
    speed.onchange = () => { st.fps = parseFloat(speed.value); };
  }
  const tick = (now) => {
    st.raf = 0;
    if (!st.alive || !st.playing) return;  // paused, the loop ends (it had run on, 60 times a second, idle)
    // hidden (another tab, a closed accordion: no box), a playing movie waits where it is: it had drawn on unseen
    if (st.sheet && !root.offsetParent) st.last = 0;
    else if (st.sheet) {
      const dt = 1000 / st.fps;
      if (!st.last) st.last = now;
      if (now - st.last >= dt - 3) {  // rAF jitter: a frame due in < 3 ms is shown now
        st.last = Math.max(st.last + dt, now - dt);
        if (st.i === n - 1 && st.wait < hold) { st.wait += 1; }
        else { st.wait = 0; show(st.i === n - 1 ? 0 : st.i + 1); }
      }
    }
    st.raf = requestAnimationFrame(tick);
  };
  const load = (url) => {
    if (!st.alive || st.sheet || !url || url.indexOf(root.dataset.id) < 0) return;
    const img = new Image();
    img.onload = () => {
      if (!st.alive) return;
      st.sheet = img; root.dataset.ready = '1';
      if (loading) loading.remove();
      show(0);
    };
    img.src = url;
  };
  root.addEventListener('ddpm-sprite', (e) => load(e.detail));
  setPlaying(st.playing);
  show(0);
  load(window.__ddpmSpriteUrl);
};
setup();
watch('value', setup);
"""

# The `js` of the event after Generate: gets the sprite file's value (a FileData) and hands
# its URL to the player.
SPRITE_JS = r"""
(sprite) => {
  const url = sprite && (sprite.url || (sprite.value && sprite.value.url));
  if (url) {
    window.__ddpmSpriteUrl = url;
    document.querySelectorAll('.ddpm-player').forEach(
      (root) => root.dispatchEvent(new CustomEvent('ddpm-sprite', {detail: url})));
  }
  return [];
}
"""


def empty_player(message: str) -> str:
    return f'<div class="ddpm-empty">{html.escape(message)}</div>'


def _spoken(caption: str, variable: str) -> str:
    """A caption for a screen reader: "x_t (t = {t})" had been read "x_t (t = t)"; the frame's t is said as it
    changes."""
    return re.sub(rf"\s*\({re.escape(variable)} = \{{t\}}[^)]*\)", "", caption).replace("{t}", variable)


def player_html(
    ts: Sequence[int],
    *,
    frame_size: tuple[int, int],
    cols: int,
    chain_id: str,
    captions: Sequence[str] = (),
    notes: Sequence[str] = (),
    note_key: str = "",
    fps: int = DEFAULT_FPS,
    max_width: int = 520,
    autoplay: bool = True,
    pixelated: bool = True,
    variable: str = "t",
    unit: str = "",
    loop: bool = False,
    panels: Sequence[tuple[int, int]] = (),
) -> str:
    """The player markup: per panel of a frame its caption and a canvas, then the controls; the frames come from
    the sprite whose file name contains ``chain_id``. A caption may hold ``{t}``, kept equal to the shown frame's t.
    ``panels``: (x, width) in frame pixels of each panel of a frame (`points_panels`, `image_panels`), one caption
    each; by default one panel, the whole frame, under all the captions. Panels are shown side by side, as in the
    frame, and stacked at full width where the player is narrow (a phone: `PLAYER_CSS`).
    ``notes``: none, or one line per frame, shown under the controls while that frame is (e.g. its formula,
    `app.formulas`), with ``note_key`` (what the symbols mean) beneath.
    ``pixelated``: scale frames without smoothing (small images); False for drawn plots.
    ``variable``, ``unit``: what ``ts`` are (the player says "t = 810", or e.g. "θ = 90°").
    ``loop``: the movie is a closed loop (its last frame leads into its first): no pause on the last frame.
    """
    if not ts:
        raise ValueError("need at least one frame")
    if notes and len(notes) != len(ts):
        raise ValueError(f"need one note per frame: {len(ts)} frames, {len(notes)} notes")
    if not re.fullmatch(r"[A-Za-z0-9_-]+", chain_id):
        raise ValueError(f"chain_id must be a plain token, got {chain_id!r}")
    w, h = frame_size
    name = " · ".join(_spoken(caption, variable) for caption in captions) or "the frames"
    panels = list(panels) or [(0, w)]
    if len(panels) > 1 and len(captions) not in (0, len(panels)):
        raise ValueError(f"need one caption per panel: {len(panels)} panels, {len(captions)} captions")
    ends = [x + width for x, width in panels]
    in_order = all(end <= x for end, (x, _) in zip(ends, panels[1:]))
    if panels[0][0] < 0 or ends[-1] != w or not in_order or any(width <= 0 for _, width in panels):
        # else the panels' shares of the player would not be their shares of the frame
        raise ValueError(f"panels {panels} do not tile a frame {w} pixels wide from left to right")
    one_each = len(panels) > 1 and bool(captions)  # else every caption above the one panel
    panel_html = []
    end = 0  # where the previous panel ends
    for k, (x, width) in enumerate(panels):
        shown = [captions[k]] if one_each else list(captions) if k == 0 else []
        spans = "".join(
            "<span>" + html.escape(c).replace("{t}", f'<b class="pl-t">{int(ts[0])}</b>') + "</span>" for c in shown)
        label = _spoken(captions[k], variable) if one_each else name
        gap = f"--pl-gap: {100 * (x - end) / w:.3f}%; " if x > end else ""
        panel_html.append(
            f'<div class="pl-panel" style="{gap}--pl-grow: {int(width)}"><div class="pl-caption">{spans}</div>'
            f'<canvas width="{int(width)}" height="{h}" data-x="{int(x)}" role="img" '
            f'aria-label="{html.escape(label)}, the frame shown"></canvas></div>')
        end = x + width
    speeds = "".join(f'<option value="{f}"{" selected" if f == fps else ""}>{f} fps</option>'
                     for f in sorted({*FPS_CHOICES, fps}))
    ts_text = ",".join(str(int(t)) for t in ts)
    note_html = ""
    if notes:
        key = f'<div class="pl-key">{html.escape(note_key)}</div>' if note_key else ""
        note_html = f'<div class="pl-note">{html.escape(notes[0])}</div>{key}'
    notes_attr = f' data-notes="{html.escape(json.dumps(list(notes), ensure_ascii=False))}"' if notes else ""
    return (
        f'<div class="ddpm-player{"" if pixelated else " pl-smooth"}" data-id="{chain_id}" data-ts="{ts_text}" data-cols="{cols}" data-w="{w}" '
        f'data-h="{h}" data-fps="{fps}" data-hold="{0 if loop else HOLD_LAST_FRAMES}" data-autoplay="{int(autoplay)}" '
        f'data-var="{html.escape(variable)}" data-unit="{html.escape(unit)}" '
        f'data-frames="{len(ts)}"{notes_attr} style="max-width: {int(max_width)}px" tabindex="0" role="group" '
        f'aria-label="{html.escape(name)}: a movie of {len(ts)} frames." aria-describedby="pl-keys-{chain_id}">'
        f'<span id="pl-keys-{chain_id}" hidden>{KEYS_HINT}</span>'  # its description: not part of its name
        f'<div class="pl-stage" title="{KEYS_HINT}"><div class="pl-panels">{"".join(panel_html)}</div>'
        f'<div class="pl-loading">loading frames…</div></div>'
        f'<div class="pl-controls"><button class="pl-play" type="button">Pause</button>'
        f'<input class="pl-scrub" type="range" min="0" max="{len(ts) - 1}" step="1" value="0" aria-label="frame">'
        f'<select class="pl-speed" aria-label="speed">{speeds}</select>'
        f'<span class="pl-info" aria-live="off">frame 1 / {len(ts)} · {html.escape(variable)} = {int(ts[0])}{html.escape(unit)}'
        "</span></div>"
        f"{note_html}</div>"
    )
