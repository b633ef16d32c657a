"""Write app/assets/mnist_sample.npy: the first 64 digits of the MNIST test split, uint8 (64, 28, 28).

The Forward and Schedules tabs show these digits so that the app works with no data set
installed. Reproduce the asset with

    python scripts/make_mnist_sample.py [--idx PATH/t10k-images-idx3-ubyte.gz] [--out PATH] [--n 64]

The file is a plain .npy array (loadable with ``allow_pickle=False``).
"""

from __future__ import annotations

import argparse
import gzip
import struct
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_IDX = ROOT.parent / "shared" / "data" / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz"
DEFAULT_OUT = ROOT / "app" / "assets" / "mnist_sample.npy"
IDX_IMAGES_MAGIC = 2051  # IDX header: 0x00000803 = unsigned byte, 3 dimensions


def read_idx_images(path: Path) -> np.ndarray:
    """All images of an IDX3 file (optionally gzipped) as uint8 (N, rows, cols)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    magic, n, rows, cols = struct.unpack(">IIII", data[:16])
    if magic != IDX_IMAGES_MAGIC:
        raise ValueError(f"{path} is not an IDX image file (magic {magic}, expected {IDX_IMAGES_MAGIC})")
    images = np.frombuffer(data, dtype=np.uint8, offset=16)
    if images.size != n * rows * cols:
        raise ValueError(f"{path}: expected {n}×{rows}×{cols} pixels, found {images.size}")
    return images.reshape(n, rows, cols)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idx", type=Path, default=DEFAULT_IDX, help="MNIST images IDX file (.gz ok)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output .npy file")
    parser.add_argument("--n", type=int, default=64, help="number of digits to keep (the first n)")
    args = parser.parse_args(argv)
    try:
        images = read_idx_images(args.idx)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not 1 <= args.n <= len(images):
        print(f"error: --n must lie in 1..{len(images)}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.save(args.out, np.ascontiguousarray(images[: args.n]), allow_pickle=False)
    print(f"wrote {args.out} ({args.n} digits, {images.shape[1]}×{images.shape[2]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
