"""Image helpers for the UI: uploads → uint8 RGB, [−1, 1] tensors ↔ uint8, image grids.

Images enter the models in [−1, 1] (Ho et al. 2020, §3.3: x ↦ x/127.5 − 1). Gradio clips float
images to [0, 1], so every image shown is converted to uint8 here first.
"""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Callable
from functools import cache, lru_cache
from pathlib import Path

import gradio as gr
import numpy as np
import PIL.Image
import torch

from app.errors import InputError
from core.image_data import (
    IMAGE_DATASETS, UNREADABLE, DataUnavailableError, available_datasets, data_root, draft, load_image_dataset,
    short_label, square_picture, to_model_range,
)

log = logging.getLogger(__name__)
ASSETS = Path(__file__).resolve().parent / "assets"
MNIST_SAMPLE = ASSETS / "mnist_sample.npy"  # made by scripts/make_mnist_sample.py
MAX_UPLOAD_PIXELS = 20_000_000  # a picture beyond 20 MP is almost surely a mistake (and slow to decode)
# Pillow refuses to open a picture of more than twice this (DecompressionBombError), here and where Gradio decodes
# one for the app: a Sketchpad's layer sent through the API, a 560 kB PNG of 12,000 × 12,000 pixels, had taken 2 GB
PIL.Image.MAX_IMAGE_PIXELS = MAX_UPLOAD_PIXELS
# Still pictures that Pillow opens with several frames: a camera's or phone's JPEG with its preview or HDR gain map
# (MPO: the first frame is the photo), a layered Photoshop file (the first is the composite), a TIFF's pages
STILL_WITH_FRAMES = ("MPO", "PSD", "TIFF")
# What the upload boxes take: Gradio's "image" (by MIME type) left out TGA, which Pillow reads, and HEIC, whose refusal
# is then Gradio's "Invalid file type" rather than what to do about it (`load_upload`)
UPLOAD_FILE_TYPES = ["image", ".tga", ".heic", ".heif"]
UPLOAD_SIZE = 128  # uploaded pictures are centre-cropped to a square and resized to this side
GRID_PADDING = 2  # pixels between the cells of an image grid


# ----- value conversions ----------------------------------------------------------------------


def uint8_to_model(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (…, H, W) or (…, H, W, C) pixels → float32 in [−1, 1] (same layout)."""
    tensor = torch.as_tensor(np.asarray(images))
    if tensor.dtype != torch.uint8:
        raise ValueError(f"expected uint8 pixels, got {tensor.dtype}")
    return to_model_range(tensor)


def _numpy(x: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float32).numpy()
    return np.asarray(x, dtype=np.float32)


def to_uint8(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """Values in [−1, 1] → uint8 numpy, same layout (values outside are clipped; rounds to nearest).

    Done in numpy on purpose: it is single-threaded, so a slider handler stays fast while torch's
    thread pool is busy training in the same process.
    """
    pixels = (_numpy(x) + 1.0) * 127.5
    np.rint(pixels, out=pixels)
    np.clip(pixels, 0, 255, out=pixels)
    return pixels.astype(np.uint8)


def chw_to_hwc(pixels: np.ndarray) -> np.ndarray:
    """(…, C, H, W) → (…, H, W, C), with C = 1 squeezed away: the layout PIL and plotly show."""
    pixels = np.moveaxis(pixels, -3, -1)
    return pixels[..., 0] if pixels.shape[-1] == 1 else pixels


def image_pixels(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """Images (…, C, H, W) in [−1, 1] → uint8 (…, H, W) or (…, H, W, 3): what PIL and plotly show."""
    return chw_to_hwc(to_uint8(x))


def tile(pixels: np.ndarray, nrow: int, padding: int = GRID_PADDING, pad_value: int = 255) -> np.ndarray:
    """uint8 (B, H, W) or (B, H, W, C) → one grid picture with ``nrow`` cells per row (a single picture is returned as is)."""
    if pixels.ndim not in (3, 4):
        raise ValueError(f"expected a batch (B, H, W[, C]), got shape {pixels.shape}")
    if len(pixels) == 1:
        return pixels[0]
    B, H, W = pixels.shape[:3]
    cols = min(nrow, B)
    rows = -(-B // cols)
    grid = np.full((rows * (H + padding) + padding, cols * (W + padding) + padding, *pixels.shape[3:]), pad_value, np.uint8)
    for i in range(B):
        r, c = divmod(i, cols)
        top, left = padding + r * (H + padding), padding + c * (W + padding)
        grid[top : top + H, left : left + W] = pixels[i]
    return grid


def image_grid(images: torch.Tensor | np.ndarray, nrow: int) -> np.ndarray:
    """(B, C, H, W) in [−1, 1] → one uint8 grid picture (H', W') or (H', W', 3), white separators."""
    if images.ndim != 4:
        raise ValueError(f"expected a batch (B, C, H, W), got shape {tuple(images.shape)}")
    return tile(image_pixels(images), nrow)


HIDDEN_COLOUR = torch.tensor([-0.22, 0.17, 0.86])  # hidden pixels of an inpainting are shown cornflower blue ([−1, 1] RGB)


def paint_hidden(images: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """Images (B, C, H, W) in [−1, 1] as RGB, the pixels where the bool mask ``known`` (broadcastable, the same in
    every channel) is false painted `HIDDEN_COLOUR`: what an inpainting keeps, and where it draws."""
    rgb = images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images
    hidden = ~torch.broadcast_to(known, images.shape)[:, :1].expand(-1, 3, -1, -1)
    return torch.where(hidden, HIDDEN_COLOUR.view(1, 3, 1, 1).to(images), rgb)


def png_data_uri(pixels: np.ndarray, fmt: str = "PNG") -> str:
    """uint8 (H, W) or (H, W, 3) → a data: URI for plotly Image traces (lossless PNG, or BMP where
    encoding speed matters: noisy pictures barely compress, and BMP encodes ~10× faster)."""
    if fmt not in ("PNG", "BMP"):
        raise ValueError(f"fmt must be PNG or BMP, got {fmt!r}")
    buffer = io.BytesIO()
    PIL.Image.fromarray(pixels).save(buffer, format=fmt, **({"compress_level": 1} if fmt == "PNG" else {}))
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def alpha_png_data_uri(alpha: np.ndarray, rgb: tuple[int, int, int]) -> str:
    """uint8 coverage (H, W) → a data: URI of a PNG in one colour ``rgb`` with that alpha: a palette PNG (one byte a
    pixel, entry k = ``rgb`` at alpha k), 3–4× quicker to encode than RGBA and as small."""
    picture = PIL.Image.frombytes("P", alpha.shape[::-1], np.ascontiguousarray(alpha, dtype=np.uint8).tobytes())
    picture.putpalette(list(rgb) * 256)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=1, transparency=bytes(range(256)))
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


# ----- bundled digits -------------------------------------------------------------------------


@cache
def _mnist_sample() -> np.ndarray:
    if not MNIST_SAMPLE.exists():
        raise InputError("The bundled MNIST sample is missing; run: python scripts/make_mnist_sample.py")
    digits = np.load(MNIST_SAMPLE, allow_pickle=False)
    digits.setflags(write=False)  # shared read-only constant, never handed out writable
    return digits


def mnist_digits(n: int = 64) -> torch.Tensor:
    """The first n bundled MNIST test digits as float32 (n, 1, 28, 28) in [−1, 1]."""
    digits = _mnist_sample()
    if not 1 <= n <= len(digits):
        raise ValueError(f"there are {len(digits)} bundled digits, asked for {n}")
    return uint8_to_model(digits[:n].copy()).unsqueeze(1)


# ----- images of a data set in the data directory ---------------------------------------------

SHOWN_DATASETS = tuple(name for name in IMAGE_DATASETS if name != "mnist")  # MNIST: the bundled digits instead


def shown_datasets_present() -> list[str]:
    """The names in `SHOWN_DATASETS` whose files are in the data directory: the tabs list only these."""
    return [name for name in available_datasets() if name in SHOWN_DATASETS]


def dataset_images(name: str, n: int) -> torch.Tensor:
    """The first n images of data set ``name`` (e.g. "cifar10") from the data directory ($DDPM_DATA_DIR), as
    float32 (n, C, H, W) in [−1, 1]; never downloads. The result is shared between callers: read it, do not
    write to it."""
    return _dataset_images(name, n, str(data_root()))


@lru_cache(maxsize=4)
def _dataset_images(name: str, n: int, root: str) -> torch.Tensor:
    try:
        data = load_image_dataset(name, root=root, split="any", download=False, limit=n)
    except (DataUnavailableError, ValueError, OSError) as err:
        raise InputError(f"{short_label(name)} could not be loaded: {err}") from None
    if len(data) < n:
        raise InputError(f"{short_label(name)} in {root} holds only {len(data)} images; {n} are shown.")
    return to_model_range(data.images)


# ----- uploads --------------------------------------------------------------------------------


def load_upload(path: str | Path | None, size: int = UPLOAD_SIZE) -> np.ndarray:
    """An uploaded picture → uint8 (size, size, 3), centre-cropped; every bad upload raises gr.Error."""
    if path is None or str(path) == "":
        raise InputError("Upload a picture first (PNG, JPEG, WebP, BMP, …).")
    path = Path(path)
    if path.suffix.lower() in (".heic", ".heif"):
        raise InputError(f"{path.name} is a HEIC photo, which cannot be read here; export it as JPEG (on an iPhone: "
                         "Settings › Camera › Formats › Most Compatible).")
    try:
        with PIL.Image.open(path) as image:
            if getattr(image, "n_frames", 1) > 1 and image.format not in STILL_WITH_FRAMES:
                raise InputError("Animated pictures are not supported; upload a still image.")
            draft(image, size)  # as `square_picture` will: a 24 MP camera JPEG is then read as fast as a 2 MP PNG
            width, height = image.size
            if width * height > MAX_UPLOAD_PIXELS:
                raise InputError(
                    f"The picture is too large ({width}×{height} = {width * height / 1e6:.3g} MP); "
                    f"use one under {MAX_UPLOAD_PIXELS / 1e6:.0f} MP."
                )
            square = square_picture(image, size)
    except gr.Error:
        raise
    except PIL.Image.DecompressionBombError:
        raise InputError(f"The picture is too large; use one under {MAX_UPLOAD_PIXELS / 1e6:.0f} MP.") from None
    except UNREADABLE as err:
        log.info("upload %s unreadable: %s: %s", path.name, type(err).__name__, err)
        raise InputError(f"{path.name} is not a picture that can be read; upload a PNG, JPEG, WebP or BMP.") from None
    return np.asarray(square, dtype=np.uint8).copy()


UPLOAD_CHOICE = "upload"  # the data choice "Uploaded picture" of the Forward and Schedules tabs


def upload_label(size: int = UPLOAD_SIZE) -> str:
    """The label of a tab's upload box, with the size its picture is shown at."""
    return f"Your picture (≤ {MAX_UPLOAD_PIXELS / 1e6:.0f} MP, still): its centre square is shown, at {size} × {size}"


def upload_selected(path: str | None):
    """An upload event of the Forward and Schedules tabs: the data choice switches to the picture, once it reads as
    one (a bad file: gr.Error, and the views keep showing the data chosen before, as the data choice says)."""
    if not path:
        return gr.skip()
    load_upload(path)
    return gr.Dropdown(value=UPLOAD_CHOICE)


def upload_and_draw(path: str | None, outputs: int, draw: Callable[[], tuple]) -> tuple:
    """An upload's event: the data choice on the picture (`upload_selected`: gr.Error for a file that is not one)
    and ``draw()``'s ``outputs`` outputs for it, in one response; nothing for a box emptied. The choice's change that
    follows finds the views drawn from it and draws nothing: the upload's drawing and the change's had been two
    events, which ran at once."""
    if not path:
        return (gr.skip(),) * (outputs + 1)
    return upload_selected(path), *draw()


def box_after_refusal(path: str | None):
    """The upload box after an upload's event failed: emptied where its file is what was refused (not a picture, too
    large), else kept as it is (another input was at fault, and the picture stays for when it is mended)."""
    try:
        load_upload(path)
    except gr.Error:
        return None
    return gr.skip()


def upload_removed(data: str, fallback: str):
    """The picture was taken out of its box (×): a data choice still on "Uploaded picture" goes to ``fallback``, whose
    views then replace the picture's (it stayed on view, and every later change failed for want of a picture)."""
    return fallback if data == UPLOAD_CHOICE else gr.skip()


def upload_to_model(path: str | Path | None, size: int = UPLOAD_SIZE) -> torch.Tensor:
    """An uploaded picture → float32 (1, 3, size, size) in [−1, 1]."""
    return uint8_to_model(load_upload(path, size)).permute(2, 0, 1).unsqueeze(0).contiguous()
