"""Class-conditional networks and classifier-free guidance (Ho & Salimans 2022).

A conditional network takes a class label too, ``net(x_t, t, y)`` with y (B,) long in 0..K−1, and the label
K = ``num_classes`` stands for "no class" (∅): called without labels, ``net(x_t, t)`` is ∅ for every example,
so a conditional network is also the unconditional ε-predictor of the contract, and every sampler, panel and
metric uses it as it is. Training replaces each label by ∅ with probability p_uncond (`drop_labels`), so the one
network learns both ε̂(x_t, t, y) and ε̂(x_t, t, ∅).

Classifier-free guidance mixes the two (Ho & Salimans, eq. 6, with s = 1 + w):

    ε̃(x_t, t, y) = ε̂(x_t, t, ∅) + s·(ε̂(x_t, t, y) − ε̂(x_t, t, ∅)).

Since ε̂ = −√(1 − ᾱ_t)·∇ log p_t, this is the score of p_t(x_t)·p_t(y | x_t)^s with the *implicit* classifier
p_t(y | x_t) ∝ p_t(x_t | y)/p_t(x_t): the same s as in classifier guidance (`core.guidance`), with no
classifier. s = 0 is the unconditional model, s = 1 the conditional one, s > 1 sharper and less varied
samples. For a network that predicts x_0 or v (`core.prediction.EpsilonView`) the mix is the same in ε, as
each target is an affine function of ε at fixed x_t.
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch
from torch import nn

from core.prediction import unwrap

DEFAULT_P_UNCOND = 0.1  # the chance that training drops a label to ∅ (Ho & Salimans: 0.1–0.2)
# what training with p_uncond = 0 means, said before such a run (CLI, Train tab)
NULL_NEVER_TRAINED = ("∅ (no class) is never shown in training, so ε̂(x_t, t, ∅) stays what the initial weights "
                      "give, and classifier-free guidance uses it at every s ≠ 1")


def num_classes(model: nn.Module) -> int:
    """K, the classes a network (or its ε view) is conditioned on; 0 for an unconditional network."""
    config = getattr(unwrap(model)[0], "config", None)
    return int(getattr(config, "num_classes", 0))


def with_classes(net: nn.Module, classes: int) -> nn.Module:
    """A class-conditional copy of an unconditional network (an MLP or U-Net with a ``config``): the same weights
    and new class vectors, all zero, so it computes the same ε̂ whatever the label until it is trained on labels
    (to make a trained unconditional model conditional cheaply)."""
    if num_classes(net):
        raise ValueError("the model is already class-conditional")
    conditional = type(net)(replace(net.config, num_classes=classes))
    missing, unexpected = conditional.load_state_dict(net.state_dict(), strict=False)
    assert not unexpected and all("class" in key for key in missing), (missing, unexpected)
    return conditional.to(next(net.parameters()).device)


def null_labels(labels: torch.Tensor | None, batch: int, classes: int, device: torch.device) -> torch.Tensor:
    """The labels a conditional network sees: ``labels`` (B,) in 0..K (its shape checked; a label beyond K fails in
    the network's embedding), or ∅ (= K) for every example when None."""
    if labels is None:
        return torch.full((batch,), classes, dtype=torch.long, device=device)
    if labels.shape != (batch,):
        raise ValueError(f"class labels must be a tensor (B,) with one label per example (B={batch}), "
                         f"got shape {tuple(labels.shape)}")
    return labels.to(device=device, dtype=torch.long)


def drop_labels(labels: torch.Tensor, p_uncond: float, classes: int, generator: torch.Generator) -> torch.Tensor:
    """``labels`` (B,) with each replaced by ∅ (= ``classes``) with probability ``p_uncond``."""
    dropped = torch.rand(labels.shape, generator=generator, device=labels.device) < p_uncond
    return torch.where(dropped, classes, labels)


def cycling_labels(n: int, classes: int) -> torch.Tensor:
    """Labels (n,) 0, 1, …, K−1, 0, 1, …: example i of class i mod K, so that a grid K wide has one class per
    column (a conditional run's previews)."""
    if classes < 1:
        raise ValueError(f"cycling labels need at least one class, got {classes}")
    return torch.arange(n) % classes


class ClassifierFreeGuidance(nn.Module):
    """ε̃ = ε̂(x_t, t, ∅) + s·(ε̂(x_t, t, y) − ε̂(x_t, t, ∅)) for one class y, or for labels y (B,), one per example
    (batches of exactly B: at s = 1, the conditional model drawing each example from its own class), called like any
    ε-predictor.

    ``model``: a conditional network or its ε view. Both predictions come from one call on a doubled batch.
    """

    def __init__(self, model: nn.Module, label: int | torch.Tensor, scale: float) -> None:
        super().__init__()
        classes = num_classes(model)
        if classes == 0:
            raise ValueError("classifier-free guidance needs a class-conditional model (trained with class labels)")
        if isinstance(label, torch.Tensor):
            shaped = label.dim() == 1 and label.dtype == torch.long
            if not shaped or (len(label) and not 0 <= int(label.min()) <= int(label.max()) < classes):
                raise ValueError(f"labels one per example must be a 1-D long tensor of classes 0..{classes - 1}")
        elif isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < classes:
            raise ValueError(f"the class must be one of 0..{classes - 1}, got {label!r}")
        if not (isinstance(scale, (int, float)) and 0 <= scale < math.inf):
            raise ValueError(f"the guidance scale must be a finite number ≥ 0, got {scale!r}")
        self.model, self.label, self.scale, self.classes = model, label, float(scale), classes

    def labels(self, x_t: torch.Tensor) -> torch.Tensor:
        """The class of each example of the batch ``x_t`` (B,)."""
        if not isinstance(self.label, torch.Tensor):
            return torch.full((len(x_t),), self.label, dtype=torch.long, device=x_t.device)
        if len(self.label) != len(x_t):
            raise ValueError(f"{len(self.label)} labels were given for batches of that size, got a batch of {len(x_t)}")
        return self.label.to(x_t.device)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        b = len(x_t)
        if self.scale == 0:
            return self.model(x_t, t)
        labels = self.labels(x_t)
        if self.scale == 1:
            return self.model(x_t, t, labels)
        both = self.model(torch.cat([x_t, x_t]), torch.cat([t, t]),
                          torch.cat([labels, torch.full_like(labels, self.classes)]))  # (2B, ...)
        conditional, unconditional = both[:b], both[b:]
        return unconditional + self.scale * (conditional - unconditional)

    def extra_repr(self) -> str:
        return f"label={self.label}, scale={self.scale:g}"
