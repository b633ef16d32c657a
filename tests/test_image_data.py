"""Image data sets: the offline IDX reader on the shared MNIST test split, errors, folders, ranges."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.image_data import (
    IMAGE_DATASET_LABELS,
    IMAGE_DATASETS,
    MAX_IMAGE_SIZE,
    DataUnavailableError,
    data_root,
    dataset_available,
    load_image_dataset,
    load_image_folder,
    random_hflip,
    to_model_range,
    to_uint8,
)

DATA_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data"
MNIST_RAW = DATA_ROOT / "MNIST" / "raw"


@pytest.fixture(scope="module")
def mnist_test():
    return load_image_dataset("mnist", root=DATA_ROOT, split="any", download=False)


def test_the_three_folder_settings_are_read_alike(monkeypatch) -> None:
    """DDPM_DATA_DIR expanded "~"; DDPM_RUNS_DIR and DDPM_CHECKPOINTS_DIR kept a folder literally named "~"."""
    from app.checkpoint_access import REPO_CHECKPOINTS, shipped_root
    from app.runs import runs_root

    home = Path("~").expanduser()
    for name, read, default in (("DDPM_DATA_DIR", data_root, Path("data")), ("DDPM_RUNS_DIR", runs_root, Path("runs")),
                                ("DDPM_CHECKPOINTS_DIR", shipped_root, REPO_CHECKPOINTS)):
        monkeypatch.setenv(name, "~/ddpm ")
        assert read() == home / "ddpm", name
        monkeypatch.setenv(name, " ")
        assert read() == default, name


def test_an_empty_data_dir_setting_means_the_default(monkeypatch) -> None:
    """DDPM_DATA_DIR= (set, empty) was the current folder, as the runs folder's setting was not."""
    monkeypatch.setenv("DDPM_DATA_DIR", " ")
    assert data_root() == Path("data")
    monkeypatch.setenv("DDPM_DATA_DIR", "/srv/data")
    assert data_root() == Path("/srv/data") and data_root("elsewhere") == Path("elsewhere")


def test_offline_mnist_test_split(mnist_test) -> None:
    assert mnist_test.images.shape == (10_000, 1, 28, 28) and mnist_test.images.dtype == torch.uint8
    assert mnist_test.labels.shape == (10_000,) and mnist_test.labels.dtype == torch.int64
    assert set(mnist_test.labels.tolist()) == set(range(10))
    assert mnist_test.labels[:5].tolist() == [7, 2, 1, 0, 4]  # the famous first test digits
    assert mnist_test.class_names == tuple("0123456789")
    assert "test" in mnist_test.source and str(MNIST_RAW) in mnist_test.source
    assert set(IMAGE_DATASETS) == set(IMAGE_DATASET_LABELS)
    assert dataset_available("mnist", DATA_ROOT) and not dataset_available("cifar10", DATA_ROOT)


def test_limit_and_explicit_test_split() -> None:
    data = load_image_dataset("mnist", root=DATA_ROOT, split="test", download=False, limit=100)
    assert data.images.shape == (100, 1, 28, 28) and data.labels.shape == (100,)


def test_missing_train_split_names_expected_files() -> None:
    with pytest.raises(DataUnavailableError, match="train-images-idx3-ubyte\\(.gz\\)") as info:
        load_image_dataset("mnist", root=DATA_ROOT, split="train", download=False)
    assert str(MNIST_RAW) in str(info.value) and "MNIST" in str(info.value)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(DataUnavailableError, match="t10k-images-idx3-ubyte") as info:
        load_image_dataset("fashion_mnist", root=tmp_path / "nowhere", split="any", download=False)
    assert str(tmp_path / "nowhere" / "FashionMNIST" / "raw") in str(info.value)
    assert not dataset_available("fashion_mnist", tmp_path / "nowhere")
    with pytest.raises(ValueError, match="mnist, fashion_mnist, cifar10"):
        load_image_dataset("svhn", root=tmp_path, download=False)
    with pytest.raises(ValueError, match="split"):
        load_image_dataset("mnist", root=DATA_ROOT, split="validation", download=False)


def test_a_failed_download_says_so_and_leaves_no_empty_folders(tmp_path: Path, monkeypatch) -> None:
    import core.image_data as image_data

    def offline(name, root, split):  # what torchvision does without a network: make its folder, then fail
        (root / "FashionMNIST" / "raw").mkdir(parents=True)
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    monkeypatch.setattr(image_data, "_download", offline)
    (tmp_path / "mine").mkdir()  # a folder of the user's, empty, stays
    with pytest.raises(DataUnavailableError, match=r"downloading failed \(no internet\?\): Error downloading .*"
                                                   r"Set DDPM_DATA_DIR \(on the command line: --data-dir\)"):
        load_image_dataset("fashion_mnist", root=tmp_path, split="train", download=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def _copy_uncompressed(tmp_path: Path) -> Path:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        with gzip.open(MNIST_RAW / f"{name}.gz", "rb") as src, open(raw / name, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return raw


def test_uncompressed_idx_loads(tmp_path: Path, mnist_test) -> None:
    _copy_uncompressed(tmp_path)
    data = load_image_dataset("mnist", root=tmp_path, split="test", download=False)
    assert torch.equal(data.images, mnist_test.images) and torch.equal(data.labels, mnist_test.labels)


def test_corrupt_idx_is_a_clear_error(tmp_path: Path) -> None:
    raw = _copy_uncompressed(tmp_path)
    images = raw / "t10k-images-idx3-ubyte"
    payload = bytearray(images.read_bytes())
    payload[:4] = (0x0801).to_bytes(4, "big")  # a labels magic number on an images file
    images.write_bytes(bytes(payload))
    with pytest.raises(ValueError, match="magic number 0x00000803"):
        load_image_dataset("mnist", root=tmp_path, split="test", download=False)
    images.write_bytes(bytes(payload[:1000]))  # truncated
    with pytest.raises(ValueError, match="IDX"):
        load_image_dataset("mnist", root=tmp_path, split="test", download=False)


def test_image_folder(tmp_path: Path) -> None:
    folder = tmp_path / "pics"
    (folder / "sub").mkdir(parents=True)
    rgb = np.zeros((20, 40, 3), dtype=np.uint8)
    rgb[:, :20] = (255, 0, 0)  # left half red, right half black
    Image.fromarray(rgb).save(folder / "a_rgb.png")
    rgba = np.zeros((16, 16, 4), dtype=np.uint8)  # fully transparent → white
    Image.fromarray(rgba, mode="RGBA").save(folder / "b_rgba.png")
    Image.fromarray(np.full((10, 10), 100, dtype=np.uint8), mode="L").save(folder / "sub" / "c_grey.png")
    (folder / "notes.txt").write_text("not an image")

    colour = load_image_folder(folder, size=8, channels=3)
    assert colour.images.shape == (3, 3, 8, 8) and colour.images.dtype == torch.uint8 and colour.labels is None
    assert colour.images[1].min() == 255  # transparent composited on white
    assert colour.images[2].unique().tolist() == [100]  # grey replicated to RGB
    assert colour.images[0, 0, :, 0].min() > 200 and colour.images[0, 0, :, -1].max() < 50  # red on the left
    assert "1 unreadable" in colour.source

    grey = load_image_folder(folder, size=8, channels=1)
    assert grey.images.shape == (3, 1, 8, 8) and grey.images[2].unique().tolist() == [100]
    with pytest.MonkeyPatch.context() as patch:  # a picture past Pillow's pixel limit (the app lowers it to 20 MP)
        patch.setattr(Image, "MAX_IMAGE_PIXELS", 300)  # is skipped as unreadable, not the whole folder refused
        guarded = load_image_folder(folder, size=8, channels=3)
    assert guarded.images.shape == (2, 3, 8, 8) and "2 unreadable file(s) skipped, e.g. a_rgb.png" in guarded.source

    with pytest.raises(ValueError, match="does not exist"):
        load_image_folder(tmp_path / "missing", size=8, channels=3)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "x.txt").write_text("x")
    with pytest.raises(ValueError, match="no readable images"):
        load_image_folder(empty, size=8, channels=3)
    with pytest.raises(ValueError, match="channels"):
        load_image_folder(folder, size=8, channels=2)
    for size in (0, MAX_IMAGE_SIZE + 1, 100_000):  # 100,000: 22 GB for one picture, and a killed process
        with pytest.raises(ValueError, match=f"size must be a whole number of pixels from 1 to {MAX_IMAGE_SIZE}, got"):
            load_image_folder(folder, size=size, channels=3)


def test_an_image_folder_reads_pictures_as_an_upload_does(tmp_path: Path) -> None:
    """A folder's 16-bit PNG had been clipped to white (99.6 % of its pixels), where the same file uploaded in the app
    kept its greys: both now go through `square_picture`, and both take the centred square."""
    from app.images import load_upload

    folder = tmp_path / "deep"
    folder.mkdir()
    ramp = np.tile(np.linspace(0, 65535, 32).astype(np.uint16), (16, 1))  # 16 × 32: a dark-to-light ramp
    Image.fromarray(ramp).save(folder / "ramp16.png")
    grey = load_image_folder(folder, size=16, channels=1).images[0, 0].numpy()
    uploaded = load_upload(folder / "ramp16.png", size=16)
    assert np.array_equal(grey, uploaded[..., 0]) and np.array_equal(uploaded[..., 0], uploaded[..., 2])
    assert grey[0, 0] < 80 and grey[0, -1] > 175  # the ramp's centre half: 1/4 … 3/4 of full scale
    assert 100 < grey.mean() < 155


def test_an_image_folder_passes_over_system_files_and_skips_broken_pictures(tmp_path: Path) -> None:
    """A phone's .thumbnails had been trained on, .DS_Store and Thumbs.db counted as unreadable pictures, and one
    picture with a broken header (Pillow's ValueError) had ended the whole load."""
    folder = tmp_path / "holiday"
    (folder / "day2" / ".thumbnails").mkdir(parents=True)
    (folder / "__MACOSX").mkdir()
    for i, name in enumerate(["a.jpg", "day2/b.png", "day2/.thumbnails/b.jpg", "__MACOSX/._a.jpg"]):
        Image.new("RGB", (20, 20), (40 * i, 0, 0)).save(folder / name, format="PNG")
    for name in (".DS_Store", "Thumbs.db", "desktop.ini"):
        (folder / name).write_bytes(b"\0" * 64)
    (folder / "scan.ppm").write_bytes(b"P6\n3\x890 2\n255\n" + bytes(100))
    data = load_image_folder(folder, size=8, channels=3)
    assert data.images[:, 0, 0, 0].tolist() == [0, 40]  # a.jpg, day2/b.png
    assert data.source == f"{folder} (2 images; 1 unreadable file(s) skipped, e.g. scan.ppm)"


def test_a_corrupt_cifar_file_is_named(tmp_path: Path) -> None:
    """torchvision says only "Dataset not found or corrupted" of a CIFAR-10 folder: the one file cut short is named.
    (The files here stand for the originals by their own MD5 sums.)"""
    import hashlib

    from torchvision.datasets import CIFAR10

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    names = [name for name, _ in (*CIFAR10.train_list, *CIFAR10.test_list)] + ["batches.meta"]
    sums = {}
    for name in names:
        (folder / name).write_bytes(name.encode())
        sums[name] = hashlib.md5(name.encode()).hexdigest()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(CIFAR10, "train_list", [[name, sums[name]] for name, _ in CIFAR10.train_list])
        patch.setattr(CIFAR10, "test_list", [[name, sums[name]] for name, _ in CIFAR10.test_list])
        patch.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": sums["batches.meta"]})
        (folder / "data_batch_3").write_bytes(b"cut sh")
        with pytest.raises(DataUnavailableError, match=r": data_batch_3 is incomplete or corrupt \(the MD5 sums"):
            load_image_dataset("cifar10", root=tmp_path, split="test", download=False)


def test_ranges_round_trip(mnist_test) -> None:
    images = mnist_test.images[:64]
    x = to_model_range(images)
    assert x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1
    assert torch.equal(to_uint8(x), images)
    assert to_uint8(torch.tensor([-3.0, 0.0, 3.0])).tolist() == [0, 128, 255]


def test_random_hflip_is_per_sample_and_seeded() -> None:
    x = torch.arange(16 * 3 * 2 * 4, dtype=torch.float32).reshape(16, 3, 2, 4)
    out = random_hflip(x, torch.Generator().manual_seed(0))
    flipped = torch.tensor([torch.equal(o, xi.flip(-1)) for o, xi in zip(out, x)])
    kept = torch.tensor([torch.equal(o, xi) for o, xi in zip(out, x)])
    assert torch.all(flipped ^ kept) and flipped.any() and kept.any()
    assert torch.equal(out, random_hflip(x, torch.Generator().manual_seed(0)))
