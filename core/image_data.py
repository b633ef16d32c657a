"""Image data sets for the DDPM U-Net: MNIST, Fashion-MNIST, CIFAR-10 and a folder of images.

Images are kept as uint8 tensors (N, C, H, W) and mapped to the model's range on use:
x_0 = 2 · (pixel / 255) − 1 ∈ [−1, 1] (Ho et al. 2020, §3.3: "data consisting of integers in
{0, 1, ..., 255} scaled linearly to [−1, 1]"), and back with clamp + round.

Where the files come from, in order:
1. a data directory (``root``; default ``$DDPM_DATA_DIR``, else ``./data``) holding the original
   files: the IDX files of MNIST in ``<root>/MNIST/raw/`` and of Fashion-MNIST in
   ``<root>/FashionMNIST/raw/`` (gzipped or not; one split alone is enough), read by the small IDX
   reader below; CIFAR-10's python pickle batches in ``<root>/cifar-10-batches-py/`` (read by
   torchvision);
2. torchvision's download into the same directory, when ``download=True``;
3. otherwise `DataUnavailableError`, naming the directory searched and the files expected.
"""

from __future__ import annotations

import gzip
import io
import logging
import os
import struct
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from core.paths import env_path, user_path

log = logging.getLogger(__name__)
IMAGE_DATASETS = ("mnist", "fashion_mnist", "cifar10")
IMAGE_DATASET_LABELS = {
    "mnist": "MNIST (handwritten digits, 28×28 grey)",
    "fashion_mnist": "Fashion-MNIST (clothing, 28×28 grey)",
    "cifar10": "CIFAR-10 (objects, 32×32 colour)",
}
DATA_DIR_ENV = "DDPM_DATA_DIR"
DEFAULT_DATA_DIR = "./data"
SPLITS = ("train", "test", "any")
MAX_IMAGE_SIZE = 256  # px, the side of a folder's images: 100,000 took 22 GB to resize one picture before any check

_IDX_DIRS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}  # <root>/<dir>/raw/
_IDX_PREFIX = {"train": "train", "test": "t10k"}  # file-name prefix of each split
_IDX_IMAGES_MAGIC = 0x00000803  # unsigned byte, 3 dimensions (N, rows, cols)
_IDX_LABELS_MAGIC = 0x00000801  # unsigned byte, 1 dimension (N,)
_CIFAR_DIR = "cifar-10-batches-py"
_CIFAR_FILES = {
    "train": tuple(f"data_batch_{i}" for i in range(1, 6)),
    "test": ("test_batch",),
}
_CIFAR_META = "batches.meta"
IMAGE_CLASS_NAMES = {  # each data set's classes, in label order
    "mnist": tuple(str(d) for d in range(10)),
    "fashion_mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer",
                "dog", "frog", "horse", "ship", "truck"),
}

Split = Literal["train", "test", "any"]


class DataUnavailableError(ValueError):
    """The data set's files are neither in the data directory nor downloadable."""


@dataclass
class ImageDataset:
    name: str
    images: torch.Tensor  # uint8 (N, C, H, W)
    labels: torch.Tensor | None  # int64 (N,)
    source: str  # where it was read from
    class_names: tuple[str, ...] | None

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    @property
    def image_size(self) -> int:
        return self.images.shape[2]


# ----- value ranges --------------------------------------------------------------------------
def to_model_range(images_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 {0..255} → float32 in [−1, 1]: x = 2 · p/255 − 1."""
    return images_uint8.to(torch.float32) / 127.5 - 1.0


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """float in [−1, 1] → uint8: p = round((clamp(x, −1, 1) + 1) · 127.5)."""
    return ((x.detach().clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)


MIRRORED_DATASETS = ("cifar10",)  # trained on random left–right flips: a mirrored photo shows the same thing, a mirrored
# digit or garment label (MNIST, Fashion-MNIST) does not


def random_hflip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror each image of the batch (B, C, H, W) left–right with probability ½."""
    flip = torch.rand(x.shape[0], generator=generator, device=generator.device) < 0.5  # (B,)
    flip = flip.to(x.device)[:, None, None, None]
    return torch.where(flip, x.flip(-1), x)


def data_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The data directory: ``root``, else ``$DDPM_DATA_DIR`` (unless empty), else ``./data``."""
    return user_path(root) if root is not None else env_path(DATA_DIR_ENV, DEFAULT_DATA_DIR)


# ----- IDX files (MNIST, Fashion-MNIST) -----------------------------------------------------
def _find(directory: Path, name: str) -> Path | None:
    """``name`` or ``name.gz`` in ``directory`` (the uncompressed copy first)."""
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _idx_names(split: Literal["train", "test"]) -> tuple[str, str]:
    prefix = _IDX_PREFIX[split]
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


def read_idx(path: Path, magic: int) -> np.ndarray:
    """An IDX file (LeCun's MNIST format, optionally gzipped) as a uint8 array.

    Layout: a big-endian int32 magic number 0x0000 08 D (08 = unsigned byte, D = number of
    dimensions), D big-endian int32 sizes, then the bytes in row-major order.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError
        raise ValueError(f"cannot read IDX file {path}: {e}") from e
    if len(raw) < 4 or int.from_bytes(raw[:4], "big") != magic:
        found = f"0x{int.from_bytes(raw[:4], 'big'):08x}" if len(raw) >= 4 else "a truncated header"
        raise ValueError(f"{path} is not a valid IDX file: expected magic number 0x{magic:08x}, found {found}")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path} is truncated: its IDX header needs {header} bytes, the file has {len(raw)}")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape))
    if len(raw) != expected:
        raise ValueError(f"{path} is corrupt: its header says shape {shape} ({expected} bytes), the file has {len(raw)} bytes")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _idx_split_present(directory: Path, split: Literal["train", "test"]) -> bool:
    return all(_find(directory, name) is not None for name in _idx_names(split))


def _load_idx_split(name: str, directory: Path, split: Literal["train", "test"]) -> ImageDataset:
    image_name, label_name = _idx_names(split)
    image_path, label_path = _find(directory, image_name), _find(directory, label_name)
    assert image_path is not None and label_path is not None  # checked by _idx_split_present
    images = read_idx(image_path, _IDX_IMAGES_MAGIC)  # (N, H, W)
    labels = read_idx(label_path, _IDX_LABELS_MAGIC)  # (N,)
    if labels.shape[0] != images.shape[0]:
        raise ValueError(f"{image_path} holds {images.shape[0]} images but {label_path} {labels.shape[0]} labels")
    if labels.size and int(labels.max()) >= len(IMAGE_CLASS_NAMES[name]):
        raise ValueError(f"{label_path} holds label {int(labels.max())}, beyond the {len(IMAGE_CLASS_NAMES[name])} classes")
    return ImageDataset(
        name=name,
        images=torch.from_numpy(images.copy()).unsqueeze(1),  # (N, 1, H, W)
        labels=torch.from_numpy(labels.astype(np.int64)),
        source=f"{image_path.parent} ({split} split)",
        class_names=IMAGE_CLASS_NAMES[name],
    )


# ----- CIFAR-10 ------------------------------------------------------------------------------
def _cifar_present(directory: Path) -> bool:
    # torchvision's CIFAR10 checks every batch of both splits before loading either.
    files = (*_CIFAR_FILES["train"], *_CIFAR_FILES["test"], _CIFAR_META)
    return all((directory / f).is_file() for f in files)


def _load_cifar(root: Path, split: Literal["train", "test"], download: bool) -> ImageDataset:
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import check_integrity

    try:
        data = CIFAR10(str(root), train=split == "train", download=download)
    except RuntimeError as e:  # torchvision: "Dataset not found or corrupted. You can use download=True ..."
        files = [*CIFAR10.train_list, *CIFAR10.test_list, [CIFAR10.meta["filename"], CIFAR10.meta["md5"]]]
        bad = [name for name, md5 in files if not check_integrity(str(root / _CIFAR_DIR / name), md5)]
        raise DataUnavailableError(  # which ones: a folder of seven files had been "incomplete or corrupt" as a whole
            f"CIFAR-10 in {root / _CIFAR_DIR} could not be read: {', '.join(bad) or 'its files'} "
            f"{'is' if len(bad) == 1 else 'are'} incomplete or corrupt (the MD5 sums do not match the originals)"
        ) from e
    images = torch.from_numpy(data.data).permute(0, 3, 1, 2).contiguous()  # (N, H, W, C) → (N, C, H, W)
    return ImageDataset(
        name="cifar10",
        images=images,
        labels=torch.tensor(data.targets, dtype=torch.int64),
        source=f"{root / _CIFAR_DIR} ({split} split)",
        class_names=IMAGE_CLASS_NAMES["cifar10"],
    )


# ----- public loaders ------------------------------------------------------------------------
def _check_name(name: str) -> None:
    if name not in IMAGE_DATASETS:
        raise ValueError(f"Unknown image data set {name!r}; choose one of: {', '.join(IMAGE_DATASETS)}")


def _offline_dir(name: str, root: Path) -> Path:
    if name in _IDX_DIRS:
        return root / _IDX_DIRS[name] / "raw"
    if name == "cifar10":
        return root / _CIFAR_DIR
    raise ValueError(f"Unknown image data set {name!r}")


def _splits_to_try(split: str) -> tuple[Literal["train", "test"], ...]:
    if split == "train":
        return ("train",)
    if split == "test":
        return ("test",)
    if split == "any":
        return ("train", "test")
    raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")


def _expected_files(name: str, splits: tuple[Literal["train", "test"], ...]) -> str:
    if name in _IDX_DIRS:
        return " or ".join(" + ".join(f"{n}(.gz)" for n in _idx_names(s)) for s in splits)
    if name == "cifar10":
        return ", ".join((*_CIFAR_FILES["train"], *_CIFAR_FILES["test"], _CIFAR_META))
    raise ValueError(f"Unknown image data set {name!r}")


def _load_offline(name: str, root: Path, splits: tuple[Literal["train", "test"], ...]) -> ImageDataset | None:
    directory = _offline_dir(name, root)
    if name in _IDX_DIRS:
        for s in splits:
            if _idx_split_present(directory, s):
                return _load_idx_split(name, directory, s)
        return None
    if name == "cifar10":
        return _load_cifar(root, splits[0], download=False) if _cifar_present(directory) else None
    raise ValueError(f"Unknown image data set {name!r}")


def _download(name: str, root: Path, split: Literal["train", "test"]) -> None:
    """Fetch the original files into ``root`` with torchvision (raises on network failure)."""
    from torchvision import datasets

    if name == "mnist":
        datasets.MNIST(str(root), train=split == "train", download=True)
    elif name == "fashion_mnist":
        datasets.FashionMNIST(str(root), train=split == "train", download=True)
    elif name == "cifar10":
        datasets.CIFAR10(str(root), train=split == "train", download=True)
    else:
        raise ValueError(f"Unknown image data set {name!r}")


def _existing_folders(folder: Path, root: Path) -> set[Path]:
    """The folders that exist from ``folder`` up to ``root`` (a data set's folder, e.g. root/FashionMNIST/raw)."""
    return {p for p in (folder, *folder.parents) if p.is_relative_to(root) and p.is_dir()}


def _remove_empty_folders(folder: Path, root: Path, *, keep: set[Path]) -> None:
    """Remove ``folder`` and its parents up to ``root`` where a failed download made them and left them empty."""
    for path in (folder, *folder.parents):
        if not path.is_relative_to(root) or path in keep or not path.is_dir() or any(path.iterdir()):
            return
        path.rmdir()


def load_image_dataset(
    name: str,
    *,
    root: str | os.PathLike[str] | None = None,
    split: Split = "train",
    download: bool = True,
    limit: int | None = None,
) -> ImageDataset:
    """Load ``name`` (one of `IMAGE_DATASETS`) as uint8 (N, C, H, W) images with int64 labels.

    ``split="any"`` takes the training split when its files are present, else the test split.
    The data directory is searched first; then, with ``download=True``, torchvision downloads
    into it; otherwise `DataUnavailableError` says what was searched and what is expected.
    ``limit`` keeps the first ``limit`` images.
    """
    _check_name(name)
    splits = _splits_to_try(split)
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be a positive number of images, got {limit}")
    root_dir = data_root(root)
    data = _load_offline(name, root_dir, splits)
    download_note = "downloading is off here"
    if data is None and download:
        folder = _offline_dir(name, root_dir)
        existed = _existing_folders(folder, root_dir)
        try:
            _download(name, root_dir, splits[0])
        except (RuntimeError, OSError, ValueError) as e:  # torchvision wraps URLError in RuntimeError
            download_note = f"downloading failed (no internet?): {' '.join(str(e).split())}"
            _remove_empty_folders(folder, root_dir, keep=existed)
        else:
            data = _load_offline(name, root_dir, splits)
            download_note = "downloading left no readable files"
    if data is None:
        raise DataUnavailableError(
            f"{short_label(name)} not found in {_offline_dir(name, root_dir)}: expected "
            f"{_expected_files(name, splits)}; {download_note}. Set {DATA_DIR_ENV} (on the command line: "
            "--data-dir) to a directory holding the original files."
        )
    if limit is not None:
        data.images = data.images[:limit]
        data.labels = data.labels[:limit] if data.labels is not None else None
    return data


def dataset_available(name: str, root: str | os.PathLike[str] | None = None) -> bool:
    """True when ``name``'s original files (any split for MNIST/Fashion-MNIST) are in the data directory."""
    _check_name(name)
    directory = _offline_dir(name, data_root(root))
    if name in _IDX_DIRS:
        return any(_idx_split_present(directory, s) for s in ("train", "test"))
    if name == "cifar10":
        return _cifar_present(directory)
    raise ValueError(f"Unknown image data set {name!r}")


def available_datasets(root: str | os.PathLike[str] | None = None) -> list[str]:
    """The names in `IMAGE_DATASETS` whose original files are in the data directory (an unreadable one counts as absent)."""
    found = []
    for name in IMAGE_DATASETS:
        try:
            if dataset_available(name, root):
                found.append(name)
        except OSError:
            pass
    return found


def short_label(name: str) -> str:
    """"Fashion-MNIST" for "fashion_mnist": the data set's label without its description."""
    return IMAGE_DATASET_LABELS[name].split(" (")[0]


# ----- a folder of images --------------------------------------------------------------------
def square_picture(image: Image.Image, size: int) -> Image.Image:
    """An opened picture as the models see it: its centred square, ``size`` × ``size``, in 8-bit sRGB. A JPEG is
    decoded at the smallest scale still at least twice ``size`` (`Image.draft`: a 24 MP photo 8 times faster), turned
    upright by its EXIF orientation (phone photos), converted by `to_rgb`, cropped and scaled (`centre_square`), and
    only then, on ``size`` × ``size`` pixels rather than millions, its colours converted from its ICC profile to sRGB
    (`in_srgb`: read as sRGB, a Display P3 or Adobe RGB picture came out washed out). A CMYK picture's profile, which
    needs its CMYK pixels, is applied before, to the whole picture."""
    draft(image, size)
    image = ImageOps.exif_transpose(image)
    profile = image.info.get("icc_profile")
    if image.mode == "CMYK":
        image, profile = in_srgb(image, profile), None
    return in_srgb(centre_square(to_rgb(image), size), profile)


def draft(image: Image.Image, size: int) -> None:
    """Have a JPEG decoded at the smallest scale (1/2 … 1/8) still at least twice ``size`` a side; other formats as
    they are."""
    image.draft(None, (2 * size, 2 * size))


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode → 8-bit RGB: transparency (an alpha band, or a colour marked transparent, in any mode) flattened
    onto white (not left black), 16- and 32-bit integers and floats rescaled (a plain ``convert`` clips a 16-bit PNG's
    values above 255 to white). The colours of an embedded ICC profile are left to the caller (`square_picture`)."""
    mode, transparent = image.mode, image.info.get("transparency")
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        values = np.asarray(image, dtype=np.float64)
        # 16-bit data (every value ≤ 65535) maps 65535 → 255; wider integer data is stretched by its maximum
        top = 65535.0 if values.max(initial=0) <= 65535 and values.min(initial=0) >= 0 else max(values.max(), 1.0)
        grey = np.clip(np.round(values / top * 255.0), 0, 255).astype(np.uint8)
        if isinstance(transparent, int):
            grey[values == transparent] = 255
        return Image.fromarray(grey).convert("RGB")
    if mode == "F":
        values = np.nan_to_num(np.asarray(image, dtype=np.float64))
        low, high = values.min(initial=0), values.max(initial=0)
        if low < 0 or high > 1:  # not a [0, 1] float picture: stretch to its range
            values = (values - low) / max(high - low, 1e-12)
        return Image.fromarray(np.round(values * 255).astype(np.uint8)).convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or transparent is not None:
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
    return image.convert("RGB")


def in_srgb(image: Image.Image, profile: bytes | None) -> Image.Image:
    """An RGB or CMYK ``image`` whose pixels are in the colour space of the ICC ``profile``, converted to sRGB
    (LittleCMS, perceptual intent); as it is without a profile, with a profile of another colour space (a grey one),
    or one that LittleCMS cannot read (logged)."""
    if not profile or image.mode not in ("RGB", "CMYK"):
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        if source.profile.xcolor_space.strip() != image.mode:
            return image
        return ImageCms.profileToProfile(image, source, _srgb(), outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError) as err:
        log.info("colour profile not applied (%s)", err)
        return image


@cache
def _srgb() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def centre_square(image: Image.Image, size: int) -> Image.Image:
    """The centred square of ``image``, scaled to ``size`` × ``size`` (Lanczos)."""
    return ImageOps.fit(image, (size, size), method=Image.Resampling.LANCZOS)


# What Pillow raises for a file that is not a picture, or a broken one: beyond OSError, its decoders raise these
# (a truncated AVIF: SyntaxError; a bit-flipped one: RuntimeError; a corrupt PPM header: ValueError)
UNREADABLE = (UnidentifiedImageError, OSError, ValueError, SyntaxError, RuntimeError, TypeError, struct.error)
_SYSTEM_FILES = {"thumbs.db", "desktop.ini", "__macosx", "@eadir"}  # Windows', macOS zips', Synology's


def _system_file(relative: Path) -> bool:
    """Whether a file of an image folder is the system's, not a picture of its own: hidden (.DS_Store, a phone's
    .thumbnails) or one of `_SYSTEM_FILES`, or inside such a folder. They had been trained on, or counted as
    unreadable pictures."""
    return any(part.startswith(".") or part.lower() in _SYSTEM_FILES for part in relative.parts)


def load_image_folder(
    path: str | os.PathLike[str], *, size: int, channels: int, limit: int | None = None
) -> ImageDataset:
    """Every readable image under ``path`` (recursively, sorted by path), as uint8 (N, C, size, size).

    Each image is read as `square_picture` reads it, at ``size``, and kept in RGB (``channels=3``) or made grey
    (``channels=1``). Hidden and system files (`_system_file`) are passed over. Files PIL cannot open are skipped
    and counted in ``source``; ``limit`` keeps the first ``limit`` images.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels}")
    if not isinstance(size, int) or not 1 <= size <= MAX_IMAGE_SIZE:
        raise ValueError(f"size must be a whole number of pixels from 1 to {MAX_IMAGE_SIZE}, got {size!r}")
    folder = user_path(path)
    if not folder.is_dir():
        raise ValueError(f"image folder {folder} does not exist or is not a directory")
    arrays: list[np.ndarray] = []
    skipped: list[str] = []
    for file in sorted(p for p in folder.rglob("*") if p.is_file() and not _system_file(p.relative_to(folder))):
        if limit is not None and len(arrays) >= limit:
            break
        try:
            with Image.open(file) as image:
                square = square_picture(image, size).convert("RGB" if channels == 3 else "L")
                arrays.append(np.asarray(square, dtype=np.uint8).reshape(size, size, channels))
        except (*UNREADABLE, Image.DecompressionBombError) as err:  # a bomb: past Pillow's pixel limit
            log.info("%s skipped: %s: %s", file, type(err).__name__, err)
            skipped.append(file.name)
    if not arrays:
        raise ValueError(f"no readable images in {folder} (PNG, JPEG, … files PIL can open)")
    images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()  # (N, C, size, size)
    note = f"; {len(skipped)} unreadable file(s) skipped, e.g. {skipped[0]}" if skipped else ""
    return ImageDataset(
        name=folder.name,
        images=images,
        labels=None,
        source=f"{folder} ({len(arrays)} image{'s' if len(arrays) != 1 else ''}{note})",
        class_names=None,
    )
