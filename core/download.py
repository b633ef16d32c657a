"""Fetch image data sets into the data directory, once, so that the app and the CLI find them offline.

    python -m core.download fashion_mnist cifar10
    python -m core.download mnist --data-dir /srv/data

torchvision downloads the original files (MNIST and Fashion-MNIST: the training split's IDX files;
CIFAR-10: its python batches, both splits) into ``--data-dir`` (default ``$DDPM_DATA_DIR``, else
``./data``). A data set already there is left alone. The app never downloads by itself: its
Forward, Schedules and Train tabs list a data set once its files are in that directory.
"""

from __future__ import annotations

import sys

from core.cli import OneLineParser, fail, folder, run
from core.image_data import (
    DATA_DIR_ENV, IMAGE_DATASETS, DataUnavailableError, data_root, dataset_available, load_image_dataset,
    short_label,
)

PROG = "python -m core.download"


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog=PROG, description="Download image data sets into the data directory.")
    p.add_argument("names", nargs="+", choices=IMAGE_DATASETS, metavar="NAME",
                   help=f"data sets to fetch: {', '.join(IMAGE_DATASETS)}")
    p.add_argument("--data-dir", type=folder, help=f"where to put them (default: ${DATA_DIR_ENV}, else ./data)")
    args = p.parse_args(argv)
    root = data_root(args.data_dir)
    names, failed = list(dict.fromkeys(args.names)), []  # each once, in the order given
    for name in names:  # one that fails does not stop the others
        if dataset_available(name, root):
            print(f"{short_label(name)}: already in {root}")
            continue
        print(f"{short_label(name)}: downloading into {root} ...", file=sys.stderr)
        try:
            data = load_image_dataset(name, root=root, split="any", download=True)
        except (DataUnavailableError, ValueError, OSError) as err:
            print(f"{short_label(name)}: failed: {' '.join(str(err).split())}", file=sys.stderr)
            failed.append(short_label(name))
            continue
        print(f"{short_label(name)}: {len(data):,} images in {data.source}")
    if failed:
        fail(PROG, f"{len(failed)} of {len(names)} data sets could not be fetched: {', '.join(failed)}")
    return 0


if __name__ == "__main__":
    run(main, PROG)
