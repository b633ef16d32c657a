"""A small image classifier whose penultimate layer is the feature space of our FID (`core.fid`).

Inception-v3 FID (Heusel et al. 2017) needs ImageNet weights and describes 28×28 digits badly,
so each data set gets its own small CNN, trained on real images in the diffusion models' range
x ∈ [−1, 1], shape (N, C, H, W):

    x ─[conv3×3‑BN‑ReLU ×2, maxpool 2]× len(widths) → flatten → Linear → ReLU = φ(x) ∈ ℝ^F → Linear → logits ∈ ℝ^K

φ(x) (`features`) is the input of the last linear layer. Shipped weights live in
``checkpoints/classifiers/<dataset>/`` as ``model.safetensors`` + ``config.json`` (with the data
split and the measured held-out accuracy) + a model card ``README.md``; `load_classifier` reads
them. Training is `scripts/train_classifier.py`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

CLASSIFIER_ROOT = Path(__file__).resolve().parents[1] / "checkpoints" / "classifiers"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


@dataclass(frozen=True)
class ClassifierConfig:
    """Architecture of a `FeatureClassifier` (stored as the ``"model"`` entry of config.json)."""

    in_channels: int = 1  # 1 for MNIST / Fashion-MNIST, 3 for colour images
    image_size: int = 28  # square inputs, H = W
    widths: tuple[int, ...] = (16, 32, 64)  # channels of each conv block; each block halves H and W
    feature_dim: int = 128  # F, the dimension of φ(x) that FID compares
    n_classes: int = 10  # K
    dropout: float = 0.25  # on φ(x) during training only

    def __post_init__(self) -> None:
        if self.image_size >> len(self.widths) < 1:
            raise ValueError(f"{len(self.widths)} pooling blocks shrink a {self.image_size}px image to nothing")


class FeatureClassifier(nn.Module):
    """CNN classifier: ``forward(x) -> logits (N, K)``, ``features(x) -> φ(x) (N, F)``; x in [−1, 1]."""

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        self.config = config
        blocks: list[nn.Module] = []
        c_in, size = config.in_channels, config.image_size
        for width in config.widths:
            blocks += [
                nn.Conv2d(c_in, width, 3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.Conv2d(width, width, 3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            c_in, size = width, size // 2
        self.body = nn.Sequential(*blocks)
        self.embed = nn.Sequential(nn.Flatten(), nn.Linear(c_in * size * size, config.feature_dim), nn.ReLU(inplace=True))
        self.head = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(config.feature_dim, config.n_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """φ(x): (N, C, H, W) in [−1, 1] → (N, F), the penultimate layer."""
        return self.embed(self.body(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) in [−1, 1] → logits (N, K)."""
        return self.head(self.features(x))


@dataclass(frozen=True)
class DataSplit:
    """Deterministic split of a data set's images into classifier-train and held-out parts.

    A seeded permutation of 0..n_total−1; its last ``n_heldout`` entries are held out.
    """

    split: str  # which split of the data set was divided ("test": the only MNIST split offline here)
    n_total: int
    n_heldout: int
    seed: int

    def indices(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(train indices, held-out indices), LongTensors that partition range(n_total)."""
        perm = torch.randperm(self.n_total, generator=torch.Generator().manual_seed(self.seed))
        return perm[: self.n_total - self.n_heldout], perm[self.n_total - self.n_heldout :]


@dataclass(frozen=True)
class ClassifierCard:
    """Everything config.json records besides the weights."""

    dataset: str
    model: ClassifierConfig
    data: DataSplit
    class_names: tuple[str, ...]
    heldout_accuracy: float  # fraction correct on the held-out images of ``data``
    training: dict[str, Any] = field(default_factory=dict)  # epochs, batch, lr, augmentation, seconds, command

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ClassifierCard:
        raw = json.loads(text)
        model = dict(raw["model"], widths=tuple(raw["model"]["widths"]))
        return cls(
            dataset=raw["dataset"],
            model=ClassifierConfig(**model),
            data=DataSplit(**raw["data"]),
            class_names=tuple(raw["class_names"]),
            heldout_accuracy=float(raw["heldout_accuracy"]),
            training=dict(raw.get("training", {})),
        )


@dataclass(frozen=True)
class LoadedClassifier:
    """A shipped classifier in eval mode (no gradients) with its card."""

    model: FeatureClassifier
    card: ClassifierCard

    @torch.inference_mode()
    def features(self, x: torch.Tensor, *, batch_size: int = 512) -> torch.Tensor:
        """φ(x) for images (N, C, H, W) in [−1, 1], on the CPU in float32, batched → (N, F)."""
        self.check_input(x)
        x = x.detach().to("cpu", torch.float32)
        return torch.cat([self.model.features(chunk) for chunk in x.split(batch_size)]) if len(x) else x.new_zeros(0, self.card.model.feature_dim)

    @torch.inference_mode()
    def classify_features(self, features: torch.Tensor) -> torch.Tensor:
        """Predicted class indices (N,) from features φ(x) (N, F) (the head alone: no second pass)."""
        return self.model.head(features.to("cpu", torch.float32)).argmax(1)

    def predict(self, x: torch.Tensor, *, batch_size: int = 512) -> torch.Tensor:
        """Predicted class indices (N,) for images (N, C, H, W) in [−1, 1]."""
        return self.classify_features(self.features(x, batch_size=batch_size))

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ValueError unless x is a batch of images of the shape this classifier takes."""
        c, s = self.card.model.in_channels, self.card.model.image_size
        if x.dim() != 4 or tuple(x.shape[1:]) != (c, s, s):
            raise ValueError(f"the {self.card.dataset} classifier takes images of shape (N, {c}, {s}, {s}), got {tuple(x.shape)}")


def save_classifier(model: FeatureClassifier, card: ClassifierCard, directory: Path) -> None:
    """Write ``model.safetensors`` and ``config.json`` into an existing (temporary) directory."""
    from safetensors.torch import save_file

    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(directory / WEIGHTS_FILE))
    (directory / CONFIG_FILE).write_text(card.to_json(), encoding="utf-8")


def shipped_classifiers() -> tuple[str, ...]:
    """Names of the data sets that have a shipped classifier."""
    if not CLASSIFIER_ROOT.is_dir():
        return ()
    return tuple(sorted(p.name for p in CLASSIFIER_ROOT.iterdir() if (p / WEIGHTS_FILE).is_file() and (p / CONFIG_FILE).is_file()))


@cache
def load_classifier(dataset_name: str) -> LoadedClassifier:
    """The shipped classifier for ``dataset_name`` (e.g. ``"mnist"``), loaded once and cached.

    Raises ValueError when none is shipped for that data set.
    """
    from safetensors.torch import load_file

    name = dataset_name.lower()
    directory = CLASSIFIER_ROOT / name
    if name not in shipped_classifiers():
        available = ", ".join(shipped_classifiers()) or "none"
        raise ValueError(f"no classifier is shipped for data set {dataset_name!r} (available: {available}); train one with scripts/train_classifier.py")
    card = ClassifierCard.from_json((directory / CONFIG_FILE).read_text(encoding="utf-8"))
    model = FeatureClassifier(card.model)
    model.load_state_dict(load_file(str(directory / WEIGHTS_FILE)))
    model.eval().requires_grad_(False)
    return LoadedClassifier(model=model, card=card)
