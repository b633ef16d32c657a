"""The data the Forward and Schedules tabs noise, by the value of their data choice: a 2D toy, the session's own points
(drawn or uploaded in the Train tab), the bundled MNIST digits, the first images of a data set found on the server,
or an uploaded picture."""

from __future__ import annotations

import torch

from app import images
from app.errors import InputError
from app.own_points import OWN_POINTS, OwnPoints, first_points
from core.data import TOY2D_NAMES, make_toy2d

MNIST = "mnist"  # the bundled digits (`images.mnist_digits`): offline, whatever the data directory holds
UPLOAD = images.UPLOAD_CHOICE
N_IMAGES = 64  # the bundled digits, or the first images of a data set (an 8 × 8 grid)


def is_image_set(data: str) -> bool:
    """Whether the choice is a set of `N_IMAGES` images (the bundled digits or a data set's first)."""
    return data == MNIST or data in images.SHOWN_DATASETS


def data_key_of(data: str, upload_path: str | None, own: OwnPoints | None) -> tuple:
    """What x₀ is drawn from: the data's name, and the uploaded picture's path or the own points' key where shown."""
    return data, upload_path if data == UPLOAD else None, own.key if data == OWN_POINTS and own else None


def load_x0(data: str, upload_path: str | None, own: OwnPoints | None, *, n_points: int,
            upload_size: int = images.UPLOAD_SIZE) -> tuple[str, torch.Tensor]:
    """(kind, x0) for a data choice: ("points", the first ``n_points`` points (N, 2) of a toy or of ``own``), or
    ("images", `N_IMAGES` images (N, C, H, W), or the uploaded picture (1, 3, ``upload_size``, ``upload_size``)), in
    [−1, 1]. A choice not in the lists is refused."""
    if data in TOY2D_NAMES:
        return "points", make_toy2d(data, n_points, seed=0)
    if data == OWN_POINTS:
        return "points", first_points(own, n_points)
    if data == MNIST:
        return "images", images.mnist_digits(N_IMAGES)
    if data in images.SHOWN_DATASETS:
        return "images", images.dataset_images(data, N_IMAGES)
    if data == UPLOAD:
        return "images", images.upload_to_model(upload_path, upload_size)
    raise InputError(f"Unknown data choice {data!r}; pick one from the list.")
