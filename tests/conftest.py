"""Shared fixtures: the offline MNIST test split beside the repo, small deterministic settings."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
DRAWN_RTOL = 1e-4  # a figure's numbers go out to `app.figures.SIGNIFICANT_DIGITS` (5): within 5·10⁻⁵ of their value


@pytest.fixture(autouse=True)
def _few_threads() -> None:
    """Tiny tensors: extra threads only add overhead on a 2-core machine."""
    torch.set_num_threads(1)


@pytest.fixture
def shared_data() -> Path:
    """Directory holding MNIST/raw/ with the MNIST test split (t10k files)."""
    assert (SHARED_DATA / "MNIST" / "raw").is_dir(), f"expected the MNIST test split under {SHARED_DATA}"
    return SHARED_DATA


def end_training_runs() -> None:
    """Stop every training run of the app and wait for its thread (`app.train_worker`), as the server does when it
    stops (`app.runs.stop_every_run`): a thread still in torch when Python exits aborts the process (status 134,
    "terminate called without an active exception"). For the end of each test that trains; the next test's runs draw
    their final previews again."""
    from app import runs

    runs.stop_every_run(wait=60)
    runs.SERVER_STOPPING.clear()


def write_idx(path: Path, array: np.ndarray) -> None:
    """A uint8 array as an IDX file (the MNIST format: magic 0x0000 08 D, D big-endian sizes, the bytes)."""
    header = (0x0800 + array.ndim).to_bytes(4, "big") + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


@pytest.fixture
def local_data(tmp_path, monkeypatch) -> dict[str, np.ndarray]:
    """$DDPM_DATA_DIR pointed at a fresh folder holding a small made-up Fashion-MNIST test split (100 images,
    each a different pattern; returned as {"fashion_mnist": (100, 28, 28) uint8}) and CIFAR-10 files that
    are present but unreadable (empty)."""
    rng = np.random.default_rng(7)
    fashion = rng.integers(0, 256, (100, 28, 28), dtype=np.uint8)
    raw = tmp_path / "data" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    write_idx(raw / "t10k-images-idx3-ubyte", fashion)
    write_idx(raw / "t10k-labels-idx1-ubyte", np.arange(100, dtype=np.uint8) % 10)
    cifar = tmp_path / "data" / "cifar-10-batches-py"
    cifar.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]:
        (cifar / name).write_bytes(b"")
    monkeypatch.setenv("DDPM_DATA_DIR", str(tmp_path / "data"))
    return {"fashion_mnist": fashion}


def picture_rgba(figure) -> np.ndarray:
    """The first layout image of a figure (`figures.image_figure`, `point_pictures.points_picture_figure`), decoded
    from its data URI as uint8 RGBA (H, W, 4)."""
    header, data = figure.layout.images[0].source.split(",", 1)
    assert header.endswith(";base64"), header
    return np.asarray(PIL.Image.open(io.BytesIO(base64.b64decode(data))).convert("RGBA"))
