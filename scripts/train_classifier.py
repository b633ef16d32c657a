"""Train the small feature classifier behind the image FID (`core.classifier`, `core.fid`).

    python scripts/train_classifier.py --data mnist --out checkpoints/classifiers/mnist

Divides one split of the data set (default: the 10,000-image MNIST test split, the only one
available offline here) deterministically into train / held-out parts, trains a small CNN with
random shifts of a few pixels, measures held-out accuracy, and writes ``model.safetensors``,
``config.json`` and a model card ``README.md`` atomically (temporary directory + rename).
Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.classifier import ClassifierCard, ClassifierConfig, DataSplit, FeatureClassifier, save_classifier  # noqa: E402
from core.image_data import DATA_DIR_ENV, IMAGE_DATASETS, DataUnavailableError, load_image_dataset, to_model_range  # noqa: E402


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 6  # passes over the train part
    batch: int = 128  # images per step
    lr: float = 3e-3  # peak of the one-cycle AdamW schedule
    weight_decay: float = 1e-4  # AdamW
    max_shift: int = 2  # augmentation: random integer shifts in [−max_shift, max_shift] pixels per axis
    seed: int = 0  # weights, shuffling and augmentation


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Shift each image (B, C, H, W) by its own random integer offset, filling with background −1."""
    if max_shift == 0:
        return x
    b, c, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, value=-1.0)  # (B, C, H + 2s, W + 2s)
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2, b, 1), generator=generator)  # (B, 1) each
    rows = (dy + torch.arange(h))[:, None, :, None]  # (B, 1, H, 1)
    cols = (dx + torch.arange(w))[:, None, None, :]  # (B, 1, 1, W)
    batch = torch.arange(b)[:, None, None, None]
    channel = torch.arange(c)[None, :, None, None]
    return padded[batch, channel, rows, cols]  # (B, C, H, W)


@torch.inference_mode()
def accuracy(model: FeatureClassifier, x: torch.Tensor, y: torch.Tensor, batch: int = 1000) -> float:
    model.eval()
    correct = sum(int((model(xb).argmax(1) == yb).sum()) for xb, yb in zip(x.split(batch), y.split(batch)))
    return correct / len(y)


def train(model: FeatureClassifier, x: torch.Tensor, y: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor, cfg: TrainConfig) -> None:
    """AdamW + one-cycle LR, cross-entropy on shifted images (x in [−1, 1], (N, C, H, W))."""
    g = torch.Generator().manual_seed(cfg.seed)
    steps_per_epoch = math.ceil(len(x) / cfg.batch)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch)
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        start, total = time.perf_counter(), 0.0
        for idx in torch.randperm(len(x), generator=g).split(cfg.batch):
            loss = F.cross_entropy(model(random_shift(x[idx], cfg.max_shift, g)), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        log(f"epoch {epoch}/{cfg.epochs}: loss {total / len(x):.4f}, held-out acc {accuracy(model, x_val, y_val):.4f} ({time.perf_counter() - start:.1f}s)")


def model_card(card: ClassifierCard, n_params: int, command: str) -> str:
    t = card.training
    return f"""# {card.dataset} feature classifier (for FID)

A small CNN ({n_params:,} parameters) whose {card.model.feature_dim}-dimensional penultimate layer is
the feature space of DDPM Explorer's image FID (`core/fid.py`). Inputs: {card.model.in_channels}×{card.model.image_size}×{card.model.image_size}
images scaled to [−1, 1] (the diffusion models' range).

- **Data**: the {card.dataset} `{card.data.split}` split ({card.data.n_total:,} images), divided by a seeded
  permutation (`torch.randperm`, seed {card.data.seed}) into {card.data.n_total - card.data.n_heldout:,} training and
  {card.data.n_heldout:,} held-out images (the last {card.data.n_heldout:,} of the permutation; `DataSplit` in
  `core/classifier.py`).
- **Architecture**: {len(card.model.widths)} blocks of [conv3×3‑BN‑ReLU ×2, maxpool] with widths {list(card.model.widths)},
  Linear → ReLU ({card.model.feature_dim} features), dropout {card.model.dropout}, Linear → {card.model.n_classes} logits.
- **Training**: {t["epochs"]} epochs, batch {t["batch"]}, AdamW (peak lr {t["lr"]}, one-cycle, weight decay
  {t["weight_decay"]}), random shifts of up to ±{t["max_shift"]} px; {t["seconds"]:.0f} s on {t["device"]}.
- **Held-out accuracy**: {card.heldout_accuracy:.4f} ({card.data.n_heldout:,} images).
- **Files**: `model.safetensors` (weights), `config.json` (architecture, split, accuracy, training).

Reproduce (with the data set's original files under `$DDPM_DATA_DIR`, or pass `--root DIR`;
`--threads 1` is faster on a busy 2-core machine and does not change the recipe):

```
{command}
```

Note: FID reference sets are drawn from whichever split is present (`split="any"`); where that is
the `{card.data.split}` split, they include images the classifier was trained on. The real-vs-real
baseline is drawn the same way, so the reported ratio is unaffected to first order.
"""


def write_atomically(out: Path, model: FeatureClassifier, card: ClassifierCard, readme: str) -> None:
    """Fill a temporary sibling directory, then swap it in for ``out`` by renames."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        save_classifier(model, card, tmp)
        (tmp / "README.md").write_text(readme, encoding="utf-8")
        for path in tmp.iterdir():
            path.chmod(0o644)  # mkdtemp and safetensors create owner-only files; these are shipped
        tmp.chmod(0o755)
        if out.exists():
            old = out.with_name(f".{out.name}.old-{tmp.name.rsplit('-', 1)[-1]}")
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    d = TrainConfig()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", default="mnist", choices=IMAGE_DATASETS, help="image data set (core.image_data)")
    p.add_argument("--out", type=Path, default=None, help="output directory; None: checkpoints/classifiers/<data>")
    p.add_argument("--root", type=Path, default=None, help=f"data directory holding the original files; None: ${DATA_DIR_ENV}, else ./data")
    p.add_argument("--split", default="test", choices=["train", "test"], help="which split of the data set to divide into train / held-out")
    p.add_argument("--heldout", type=int, default=2000, help="images held out for measuring accuracy")
    p.add_argument("--split-seed", type=int, default=0, help="seed of the train / held-out permutation")
    p.add_argument("--epochs", type=int, default=d.epochs, help="passes over the training images")
    p.add_argument("--batch", type=int, default=d.batch, help="images per optimisation step")
    p.add_argument("--lr", type=float, default=d.lr, help="peak learning rate of the one-cycle AdamW schedule")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay, help="AdamW weight decay")
    p.add_argument("--max-shift", type=int, default=d.max_shift, help="random shift augmentation, pixels")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of weights, shuffling and augmentation")
    p.add_argument("--threads", type=int, default=0, help="CPU threads; 0: torch's default (1 is fastest on a busy machine)")
    p.add_argument("--feature-dim", type=int, default=ClassifierConfig.feature_dim, help="dimension of the penultimate (FID feature) layer")
    args = p.parse_args(argv)
    if min(args.epochs, args.batch, args.heldout, args.feature_dim) < 1 or args.max_shift < 0 or args.threads < 0 or args.lr <= 0:
        p.error("--epochs, --batch, --heldout and --feature-dim must be ≥ 1, --max-shift and --threads ≥ 0, --lr > 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = args.out or Path(__file__).resolve().parents[1] / "checkpoints" / "classifiers" / args.data
    cfg = TrainConfig(args.epochs, args.batch, args.lr, args.weight_decay, args.max_shift, args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(cfg.seed)

    try:
        ds = load_image_dataset(args.data, root=args.root, split=args.split)
    except DataUnavailableError as e:
        raise SystemExit(f"error: {e}") from None
    if ds.labels is None or ds.class_names is None:
        raise SystemExit(f"error: {args.data} has no class labels to train a classifier on")
    if args.heldout >= len(ds.labels):
        raise SystemExit(f"error: --heldout {args.heldout} leaves no training images out of {len(ds.labels)}")
    split = DataSplit(split=args.split, n_total=len(ds.labels), n_heldout=args.heldout, seed=args.split_seed)
    train_idx, heldout_idx = split.indices()
    x = to_model_range(ds.images).float()  # (N, C, H, W) in [−1, 1]
    _, c, h, w = x.shape
    if h != w:
        raise SystemExit(f"error: the classifier takes square images, {args.data} has {h}×{w}")
    model_cfg = ClassifierConfig(in_channels=c, image_size=h, feature_dim=args.feature_dim, n_classes=len(ds.class_names))
    model = FeatureClassifier(model_cfg)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"{args.data} ({ds.source}): {len(train_idx)} train / {len(heldout_idx)} held-out images; {n_params:,} parameters")

    start = time.perf_counter()
    train(model, x[train_idx], ds.labels[train_idx], x[heldout_idx], ds.labels[heldout_idx], cfg)
    seconds = time.perf_counter() - start
    acc = accuracy(model, x[heldout_idx], ds.labels[heldout_idx])
    log(f"held-out accuracy {acc:.4f} after {seconds:.0f}s")

    command = f"python scripts/train_classifier.py --data {args.data} --out checkpoints/classifiers/{args.data}"
    defaults = parse_args([])
    extras = [f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k not in ("data", "out", "root", "threads") and v != getattr(defaults, k)]
    command = " ".join([command, *extras])
    device = f"CPU ({torch.get_num_threads()} torch threads, torch {torch.__version__})"
    training = dict(asdict(cfg), seconds=round(seconds, 1), device=device, command=command)
    card = ClassifierCard(args.data, model_cfg, split, tuple(ds.class_names), round(acc, 4), training)
    model.eval()
    write_atomically(out, model, card, model_card(card, n_params, command))
    log(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
