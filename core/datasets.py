"""Training data by name, in model coordinates, with the `DataInfo` a checkpoint records.

A data source is one of: a 2D toy name (`core.data.TOY2D_NAMES`), an image data set name
(`core.image_data.IMAGE_DATASETS`), a path to a CSV file of (x, y) points, or a path to a
folder of images. 2D points come out with zero mean and unit spread; images in [−1, 1].
"""

from __future__ import annotations

from pathlib import Path

import torch

from core.data import TOY2D_NAMES, DataInfo, make_toy2d, normalise_points, points_from_csv
from core.image_data import IMAGE_DATASETS, load_image_dataset, load_image_folder, to_model_range

DEFAULT_TOY_POINTS = 10_000  # size of a 2D training set drawn from a toy


def data_kind(source: str) -> str:
    """"2d" or "image" for a data source (a clear ValueError if it is none of the known kinds)."""
    if source in TOY2D_NAMES:
        return "2d"
    if source in IMAGE_DATASETS:
        return "image"
    path = Path(source).expanduser()
    if path.suffix.lower() == ".csv" and path.is_file():
        return "2d"
    if path.is_dir():
        return "image"
    raise ValueError(
        f"unknown data {source!r}: use a 2D toy ({', '.join(TOY2D_NAMES)}), an image data set "
        f"({', '.join(IMAGE_DATASETS)}), a .csv file of x,y points or a folder of images"
    )


def load_training_data(
    source: str,
    *,
    n_points: int = DEFAULT_TOY_POINTS,
    seed: int = 0,
    root: str | Path | None = None,
    image_size: int = 32,
    channels: int = 3,
    limit: int | None = None,
) -> tuple[torch.Tensor, DataInfo]:
    """(data (N, ...) float32 in model coordinates, its DataInfo).

    ``n_points``/``seed``: for toys. ``root``: the image data directory (default $DDPM_DATA_DIR).
    ``image_size``/``channels``: for a folder of images. ``limit``: keep at most this many images.
    """
    kind = data_kind(source)
    if source in TOY2D_NAMES:
        points = make_toy2d(source, n_points, seed=seed)
        return points, DataInfo(name=source, kind="2d", shape=(2,))
    if source in IMAGE_DATASETS:
        dataset = load_image_dataset(source, root=root, split="any", limit=limit)
        images = to_model_range(dataset.images)
        return images, DataInfo(name=source, kind="image", shape=tuple(images.shape[1:]), source=dataset.source)
    path = Path(source).expanduser()
    if kind == "2d":
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as err:
            raise ValueError(f"cannot read {path}: {err}") from None
        points, norm = normalise_points(points_from_csv(text))
        info = DataInfo(name=path.stem, kind="2d", shape=(2,), mean=norm.mean, scale=norm.scale, source=str(path))
        return points, info
    dataset = load_image_folder(path, size=image_size, channels=channels, limit=limit)
    images = to_model_range(dataset.images)
    return images, DataInfo(name=path.name, kind="image", shape=tuple(images.shape[1:]), source=dataset.source)
