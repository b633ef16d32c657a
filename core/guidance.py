"""Classifier guidance (Dhariwal & Nichol 2021, §4): steer an unconditional model towards a class y.

Bayes' rule on the noised data gives the score of the class-conditional x_t:

    ∇ log p_t(x_t | y) = ∇ log p_t(x_t) + ∇ log p_t(y | x_t),

and since the model's ε̂ is a scaled score, ε̂ = −√(1 − ᾱ_t)·∇ log p_t(x_t), the conditional model is

    ε̂(x_t | y) = ε̂(x_t) − s·√(1 − ᾱ_t)·∇_{x_t} log p_t(y | x_t)        (Dhariwal & Nichol, Algorithm 2)

with s = 1. A scale s > 1 follows the score of p_t(x_t)·p_t(y | x_t)^s at each t: sharper, less varied samples,
though not exactly from p(x_0)·p(y | x_0)^s, since the tilted p_t are not one diffusion's marginals. `GuidedDenoiser`
is this ε̂ as an ε-predictor of its own, so every sampler of `core.sampler` (DDPM, DDIM, short chains) and
`core.inpaint` uses it unchanged. It needs p_t(y | x_t) for every t: a classifier trained on noisy inputs, or,
with a classifier of clean data only (the shipped MNIST one), the classifier applied to the model's denoised
guess, p(y | x̂_0(x_t)) (Chung et al. 2023; Bansal et al. 2023): an approximation, whose gradient can also
find pixels that convince the classifier without looking like the class to a person.

For a mixture of Gaussians, p_t(y | x_t) is known in closed form (`mixture_log_likelihood`): the noisy
classifier Dhariwal & Nichol train, exactly, for the 8 Gaussians toy. With the mixture's exact ε* too, guided
sampling with s = 1 draws exactly from the chosen component; the tests check this.

A class-conditional model needs no classifier: classifier-free guidance (`core.conditioning`) steers with the
same scale s, by the implicit classifier p_t(x_t | y)/p_t(x_t) the model holds. `guided_model` picks the method
(``GUIDANCE_METHODS``); `read_classes` tells which class each sample is of, to report what guidance did.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import nn

from core.classifier import load_classifier, shipped_classifiers
from core.conditioning import ClassifierFreeGuidance, num_classes
from core.data import TOY2D_CLASSES, DataInfo, GaussianMixture, make_toy2d_labelled, toy_mixture
from core.datasets import class_names
from core.schedules import NoiseSchedule

# log p(y | ·) per example (B,), from x_t, t (B,) and the model's x̂_0(x_t), all differentiable in x_t
LogLikelihood = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
GuidanceMethod = Literal["classifier", "classifier-free"]
GUIDANCE_METHODS: tuple[GuidanceMethod, ...] = ("classifier-free", "classifier")
GUIDANCE_LABELS = {"classifier-free": "classifier-free (the model's own classes)",
                   "classifier": "classifier guidance"}
REFERENCE_POINTS = 5000  # labelled toy points that tell a 2D sample's class by its nearest one


class GuidedDenoiser(nn.Module):
    """ε̂(x_t | y) = ε̂(x_t) − scale·√(1 − ᾱ_t)·∇_{x_t} log p(y | x_t), called like any ε-predictor.

    ``log_likelihood(x_t, t, x0_hat)`` gives log p(y | x_t) per example, e.g. a classifier's log-probability of
    the target class at x̂_0 (`classifier_log_likelihood`); ``clip_x0`` clips the x̂_0 it is handed, as the
    sampler clips images. Gradients are taken even when the sampler runs under `torch.inference_mode()`.
    """

    def __init__(self, model: nn.Module, schedule: NoiseSchedule, log_likelihood: LogLikelihood, scale: float,
                 clip_x0: float | None = None) -> None:
        super().__init__()
        if not (isinstance(scale, (int, float)) and 0 <= scale < math.inf):
            raise ValueError(f"the guidance scale must be a finite number ≥ 0, got {scale!r}")
        self.model, self.schedule, self.log_likelihood = model, schedule, log_likelihood
        self.scale, self.clip_x0 = float(scale), clip_x0

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if self.scale == 0:
            return self.model(x_t, t)
        with torch.inference_mode(False), torch.enable_grad():
            x = x_t.detach().clone().requires_grad_(True)  # a normal tensor, even from inside inference mode
            eps = self.model(x, t.clone())
            x0 = self.schedule.predict_x0(x, t.clone(), eps)
            if self.clip_x0 is not None:
                x0 = x0.clamp(-self.clip_x0, self.clip_x0)
            (grad,) = torch.autograd.grad(self.log_likelihood(x, t, x0).sum(), x)
            sqrt_1m_ab = (1 - self.schedule.alpha_bars.to(x.device)[t]).sqrt().to(x.dtype)
            return (eps - self.scale * sqrt_1m_ab.view(-1, *[1] * (x.dim() - 1)) * grad).detach()


def classifier_log_likelihood(classifier: nn.Module, target: torch.Tensor) -> LogLikelihood:
    """log p(y | x̂_0(x_t)) of a classifier of clean data (``classifier(x) -> logits (B, K)``), y = ``target``
    (B,) long: the denoised guess stands in for the noisy input the classifier never saw."""

    def log_likelihood(x_t: torch.Tensor, t: torch.Tensor, x0_hat: torch.Tensor) -> torch.Tensor:
        log_probs = torch.log_softmax(classifier(x0_hat), dim=-1)
        return log_probs.gather(1, target.to(log_probs.device).view(-1, 1)).squeeze(1)

    return log_likelihood


def find_class(given: str, names: Sequence[str]) -> str:
    """The one class of ``names`` that ``given`` names: the name itself in any case, or for a name such as the 8
    Gaussians' "90° (top)" also its angle ("90", "90°") or its place ("top"); ValueError listing them otherwise."""
    def aliases(name: str) -> set[str]:
        head, _, place = name.lower().partition(" (")
        return {name.lower(), head, head.removesuffix("°"), place.removesuffix(")")} - {""}

    if not isinstance(given, str) or not given.strip():
        raise ValueError(f"choose the class to steer towards, one of {', '.join(names)}")
    matches = [name for name in names if given.strip().lower() in aliases(name)]
    if len(matches) != 1:
        raise ValueError(f"the class to steer towards must be one of {', '.join(names)}, got {given!r}")
    return matches[0]


def guided_by_shipped_classifier(model: nn.Module, schedule: NoiseSchedule, data: DataInfo, class_name: str,
                                 scale: float, n: int, device: torch.device | str = "cpu") -> GuidedDenoiser:
    """``model`` (of ``data``) steered towards ``class_name`` by the shipped classifier of its data on x̂_0, for
    batches of n; ValueError when there is no such classifier or class. On a GPU a copy of the classifier steers
    (the cached one is shared, and reads on the CPU)."""
    if data.kind != "image" or data.name not in shipped_classifiers():
        raise ValueError(f"guidance needs classes: a class-conditional model (classifier-free guidance), a shipped "
                         f"classifier of the model's data (there is one for "
                         f"{', '.join(shipped_classifiers()) or 'no data set'}) or data of known classes (the 8 "
                         f"Gaussians); this model is unconditional, of {data.name}")
    classifier = load_classifier(data.name)
    names = list(classifier.card.class_names)
    class_name = find_class(class_name, names)
    steering = classifier.model if torch.device(device).type == "cpu" else copy.deepcopy(classifier.model).to(device)
    target = torch.full((n,), names.index(class_name), dtype=torch.long, device=device)
    return GuidedDenoiser(model, schedule, classifier_log_likelihood(steering, target), scale, clip_x0=data.clip_x0)


def mixture_log_likelihood(schedule: NoiseSchedule, means: torch.Tensor, std: float, target: int) -> LogLikelihood:
    """log p_t(y | x_t) of an equal-weight mixture of N(μ_k, std²·I), y = ``target``, exactly: given y = k,
    x_t ~ N(√ᾱ_t·μ_k, v_t·I) with v_t = ᾱ_t·std² + 1 − ᾱ_t, so p_t(k | x_t) = softmax_k(−‖x_t − √ᾱ_t·μ_k‖²/(2v_t))."""
    if not 0 <= target < len(means):
        raise ValueError(f"the target component must be one of 0..{len(means) - 1}, got {target!r}")

    def log_likelihood(x_t: torch.Tensor, t: torch.Tensor, x0_hat: torch.Tensor) -> torch.Tensor:
        a = schedule.alpha_bars.to(x_t.device)[t].to(x_t.dtype).view(-1, 1)  # (B, 1)
        v = a * std**2 + 1 - a
        mu = means.to(device=x_t.device, dtype=x_t.dtype)  # (K, D)
        logits = -((x_t[:, None, :] - a.sqrt()[:, None] * mu) ** 2).sum(-1) / (2 * v)  # (B, K)
        return torch.log_softmax(logits, dim=1)[:, target]

    return log_likelihood


def model_mixture(data: DataInfo) -> GaussianMixture | None:
    """The 2D toy of ``data`` as a mixture of Gaussians in the model's coordinates ((x − mean)/scale), if it is one."""
    mixture = toy_mixture(data.name) if data.kind == "2d" else None
    if mixture is None:
        return None
    means = (mixture.means - torch.tensor(data.mean, dtype=torch.float64)) / data.scale
    return GaussianMixture(means, mixture.std / data.scale, mixture.names)


def guidance_methods(classes: int, name: str, kind: str) -> list[GuidanceMethod]:
    """The ways a model conditioned on ``classes`` classes (0: unconditional) of data ``name`` (of ``kind``) can be
    steered, the default first: classifier-free when it is class-conditional, classifier guidance when its data has
    a mixture or a shipped classifier (`guidance_classes`)."""
    methods: list[GuidanceMethod] = ["classifier-free"] if classes else []
    return methods + (["classifier"] if guidance_classes(name, kind) else [])


def guidance_classes(name: str, kind: str, method: GuidanceMethod = "classifier") -> list[str]:
    """The classes a model of data ``name`` (of ``kind``, "2d" or "image") can be steered towards: with classifier
    guidance those of its mixture's components (the 8 Gaussians) or of its data's shipped classifier, classifier-free
    those of its data (`core.datasets.class_names`); [] when there are none."""
    if method == "classifier-free":
        return list(class_names(name))
    mixture = toy_mixture(name) if kind == "2d" else None
    if mixture is not None:
        return list(mixture.names)
    if kind == "image" and name in shipped_classifiers():
        return list(load_classifier(name).card.class_names)
    return []


def default_method(model: nn.Module) -> GuidanceMethod:
    """How ``model`` is steered unless told: classifier-free when it is class-conditional, else by a classifier."""
    return "classifier-free" if num_classes(model) else "classifier"


def guided_model(model: nn.Module, schedule: NoiseSchedule, data: DataInfo, class_name: str, scale: float, n: int,
                 device: torch.device | str = "cpu", method: GuidanceMethod | None = None) -> nn.Module:
    """``model`` (of ``data``) steered towards ``class_name`` with scale ``scale``: classifier-free
    (`core.conditioning.ClassifierFreeGuidance`, the default for a class-conditional model), or by the exact
    p_t(y | x_t) of its mixture (the 8 Gaussians) or its data's shipped classifier on x̂_0
    (`guided_by_shipped_classifier`); ValueError when the method does not fit or the class is not one of its."""
    method = method or default_method(model)
    if method == "classifier-free":
        names = guidance_classes(data.name, data.kind, method)
        if not num_classes(model):
            raise ValueError("classifier-free guidance needs a class-conditional model (python -m core.train "
                             "--conditional); this one was trained without labels")
        if len(names) != num_classes(model):
            raise ValueError(f"the model knows {num_classes(model)} classes, but {data.name} has {len(names)}")
        return ClassifierFreeGuidance(model, names.index(find_class(class_name, names)), scale)
    if method != "classifier":
        raise ValueError(f"unknown guidance method {method!r}; choose one of {', '.join(GUIDANCE_METHODS)}")
    mixture = model_mixture(data)
    if mixture is None and num_classes(model) and not guidance_classes(data.name, data.kind):
        raise ValueError(f"classifier guidance needs a shipped classifier of the model's data (there is one for "
                         f"{', '.join(shipped_classifiers()) or 'no data set'}) or data of known classes (the 8 "
                         f"Gaussians), and {data.name} has neither; this model is class-conditional: steer it "
                         "classifier-free, by its own classes")
    if mixture is None:
        return guided_by_shipped_classifier(model, schedule, data, class_name, scale, n, device)
    target = mixture.names.index(find_class(class_name, mixture.names))
    log_likelihood = mixture_log_likelihood(schedule, mixture.means, mixture.std, target)
    return GuidedDenoiser(model, schedule, log_likelihood, scale)


def class_score(model: nn.Module, schedule: NoiseSchedule, data: DataInfo, class_name: str, x_t: torch.Tensor,
                t: int, method: GuidanceMethod | None = None) -> torch.Tensor:
    """∇_{x_t} log p_t(y | x_t) (N, ...) at step t for y = ``class_name``, as the guide of ``method`` (default as in
    `guided_model`) implies it. At s = 1 every guide is ε̂_y = ε̂ − √(1 − ᾱ_t)·∇ log p_t(y | x_t), so

        ∇ log p_t(y | x_t) = −(ε̂_y − ε̂)/√(1 − ᾱ_t):

    with classifier guidance the classifier's gradient (for a mixture, the exact p_t(y | x_t)); classifier-free, the
    gradient of the model's implicit classifier, ε̂(x_t, t, y) − ε̂(x_t, t, ∅) over −√(1 − ᾱ_t)."""
    guided = guided_model(model, schedule, data, class_name, 1.0, len(x_t), x_t.device, method)
    steps = torch.full((len(x_t),), t, dtype=torch.long, device=x_t.device)
    with torch.no_grad():
        difference = guided(x_t, steps) - model(x_t, steps)
    return -difference / (1 - schedule.alpha_bars[t]).sqrt().item()


def read_classes(data: DataInfo, samples: torch.Tensor) -> tuple[list[str], str] | None:
    """(the class of each sample (N, ...), how it was told) for data whose classes can be told: a mixture's
    component by the nearest centre, another toy's class by the nearest of REFERENCE_POINTS labelled points, an
    image's by the shipped classifier of its data; None when they cannot be."""
    mixture = model_mixture(data)
    if mixture is not None:
        return [mixture.names[k] for k in mixture.nearest(samples).tolist()], "nearest the centre of"
    if data.kind == "2d" and data.name in TOY2D_CLASSES:
        reference, labels = make_toy2d_labelled(data.name, REFERENCE_POINTS, seed=1)
        nearest = labels[torch.cdist(samples.float().cpu(), reference).argmin(dim=1)]
        return [TOY2D_CLASSES[data.name][k] for k in nearest.tolist()], "nearest a training point of"
    if data.kind == "image" and data.name in shipped_classifiers():
        classifier = load_classifier(data.name)
        return [classifier.card.class_names[k] for k in classifier.predict(samples.float().cpu()).tolist()], \
            "read by the shipped classifier as"
    return None
