"""Classifier guidance (`core.guidance`) on a mixture of two Gaussians, where the exact ε* and p_t(y | x_t) are known.

Data: x_0 ~ ½ N(μ_0, σ²I) + ½ N(μ_1, σ²I). Given the component y, x_t ~ N(√ᾱ_t μ_y, v_t I), v_t = ᾱ_t σ² + 1 − ᾱ_t,
so p_t(y | x_t) = softmax_y(−‖x_t − √ᾱ_t μ_y‖²/(2v_t)) (`core.guidance.mixture_log_likelihood`),
E[x_0 | x_t, y] = μ_y + √ᾱ_t σ²/v_t·(x_t − √ᾱ_t μ_y), and ε*(x_t) = (x_t − √ᾱ_t E[x_0 | x_t])/√(1 − ᾱ_t). Guided with scale 1, the chain must sample component y alone.
"""

from __future__ import annotations

import math

import numpy as np
import PIL.Image
import pytest
import torch

from core.checkpoints import load_checkpoint
from core.classifier import load_classifier
from core.data import DataInfo
from core.mlp import MLPConfig, MLPDenoiser
from core.datasets import IMAGE_CLASS_NAMES, TOY2D_CLASSES
from core.guidance import (
    GuidedDenoiser, classifier_log_likelihood, find_class, guidance_classes, guided_model, mixture_log_likelihood,
    model_mixture,
)
from core.sampler import initial_noise, sample
from core.schedules import NoiseSchedule, make_schedule
from tests.conftest import REPO

MEANS = torch.tensor([[-2.0, 0.0], [2.0, 0.0]])
SIGMA = 0.5
N = 8000


def _posterior(schedule: NoiseSchedule, x: torch.Tensor, t: torch.Tensor):
    a = schedule.alpha_bars.to(x.dtype)[t].view(-1, 1)
    v = a * SIGMA**2 + 1 - a
    logits = -((x[:, None, :] - a.sqrt()[:, None] * MEANS) ** 2).sum(-1) / (2 * v)  # (B, 2)
    return a, v, torch.log_softmax(logits, dim=1)


def mixture_eps(schedule: NoiseSchedule):
    def model(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a, v, log_w = _posterior(schedule, x, t)
        means = MEANS + (a.sqrt() * SIGMA**2 / v)[:, None] * (x[:, None, :] - a.sqrt()[:, None] * MEANS)  # (B, 2, 2)
        x0 = (log_w.exp()[..., None] * means).sum(1)
        return (x - a.sqrt() * x0) / (1 - a).sqrt()

    return model


def run(schedule: NoiseSchedule, scale: float, y: int = 1, **options) -> torch.Tensor:
    guided = GuidedDenoiser(mixture_eps(schedule), schedule, mixture_log_likelihood(schedule, MEANS, SIGMA, y), scale)
    x_T, generator = initial_noise((N, 2), seed=0)
    return sample(guided, schedule, x_T, generator=generator, **options)


def test_guidance_with_the_exact_classifier_samples_the_chosen_component() -> None:
    schedule = make_schedule("linear", 200)
    unguided = run(schedule, 0.0)
    assert 0.45 < float((unguided[:, 0] > 0).float().mean()) < 0.55  # both components, half each
    for y in (0, 1):
        guided = run(schedule, 1.0, y)
        assert float(((guided[:, 0] > 0) == bool(y)).float().mean()) > 0.999
        assert torch.allclose(guided.mean(0), MEANS[y], atol=0.03)
        assert torch.allclose(guided.std(0), torch.full((2,), SIGMA), rtol=0.05)


def test_larger_scales_sharpen_and_ddim_follows_the_guided_model() -> None:
    """s > 1 samples ∝ p(x)·p(y | x)^s: component y still, and no wider; DDIM runs the same guided ε̂."""
    schedule = make_schedule("linear", 200)
    sharp = run(schedule, 4.0)
    assert float((sharp[:, 0] > 0).float().mean()) > 0.999 and float(sharp.std(0).max()) < SIGMA * 1.05
    ddim = run(schedule, 1.0, method="ddim", steps=50)
    assert float((ddim[:, 0] > 0).float().mean()) > 0.99 and torch.allclose(ddim.mean(0), MEANS[1], atol=0.1)


def test_scale_zero_is_the_model_and_bad_scales_are_refused() -> None:
    schedule = make_schedule("cosine", 50)
    x = torch.randn(5, 2)
    t = torch.full((5,), 20)
    guided = GuidedDenoiser(mixture_eps(schedule), schedule, mixture_log_likelihood(schedule, MEANS, SIGMA, 0), 0.0)
    with torch.inference_mode():
        assert torch.equal(guided(x, t), mixture_eps(schedule)(x, t))
    for bad in (-1.0, float("inf"), float("nan"), "2", None):
        with pytest.raises(ValueError, match="guidance scale"):
            GuidedDenoiser(mixture_eps(schedule), schedule, mixture_log_likelihood(schedule, MEANS, SIGMA, 0), bad)


def test_classifier_log_likelihood_picks_the_target_class() -> None:
    classifier = torch.nn.Linear(3, 4)
    x0 = torch.randn(6, 3)
    target = torch.tensor([0, 1, 2, 3, 0, 1])
    expected = torch.log_softmax(classifier(x0), dim=1)[torch.arange(6), target]
    assert torch.allclose(classifier_log_likelihood(classifier, target)(x0, torch.ones(6), x0), expected)


def test_the_shipped_classifier_steers_the_shipped_digits() -> None:
    """The unconditional mnist model, guided by the shipped classifier on x̂_0: mostly 7s, from noise that alone
    gives other digits (judged by the same classifier, which guidance may also fool)."""
    checkpoint = load_checkpoint(REPO / "checkpoints" / "mnist")
    classifier = load_classifier("mnist")
    target = torch.full((8,), 7)

    def digits(scale: float) -> list[int]:
        guided = GuidedDenoiser(checkpoint.model, checkpoint.schedule, classifier_log_likelihood(classifier.model, target),
                                scale, clip_x0=1.0)
        x_T, generator = initial_noise((8, 1, 28, 28), seed=0)
        out = sample(guided, checkpoint.schedule, x_T, method="ddim", steps=20, clip_x0=1.0, generator=generator)
        return classifier.predict(out).tolist()

    assert digits(0.0).count(7) <= 3 and digits(3.0).count(7) >= 6


def test_the_mixture_log_likelihood_is_the_posterior_over_components() -> None:
    schedule = make_schedule("linear", 200)
    x, t = torch.randn(50, 2), torch.randint(1, 201, (50,))
    log_p = torch.stack([mixture_log_likelihood(schedule, MEANS, SIGMA, y)(x, t, x) for y in (0, 1)], dim=1)
    assert torch.allclose(log_p, _posterior(schedule, x, t)[2], atol=1e-5)
    assert torch.allclose(log_p.exp().sum(1), torch.ones(50), atol=1e-5)
    with pytest.raises(ValueError, match="target component"):
        mixture_log_likelihood(schedule, MEANS, SIGMA, 2)


def test_the_shipped_eight_gaussians_model_is_steered_by_its_exact_classes() -> None:
    """The trained 8 Gaussians model, guided by the exact p_t(y | x_t) of its mixture: all samples at the chosen
    component with s = 1, from noise that alone gives all eight."""
    checkpoint = load_checkpoint(REPO / "checkpoints" / "eight_gaussians")
    mixture = model_mixture(checkpoint.data)
    assert guidance_classes("eight_gaussians", "2d") == list(mixture.names) and len(mixture.names) == 8
    x_T, _ = initial_noise((800, 2), seed=0)

    def components(scale: float) -> torch.Tensor:
        guided = guided_model(checkpoint.model, checkpoint.schedule, checkpoint.data, "90° (top)", scale, 800)
        with torch.inference_mode():
            return mixture.nearest(sample(guided, checkpoint.schedule, x_T, method="ddim", steps=20))

    unguided, guided = components(0.0), components(1.0)
    assert torch.bincount(unguided, minlength=8).min() >= 60  # all eight, about 100 each
    assert float((guided == 2).float().mean()) > 0.99
    assert float(mixture.means[2, 1]) > 1 and abs(float(mixture.means[2, 0])) < 0.01  # 90°: straight up


def test_guidance_classes_and_refusals() -> None:
    assert guidance_classes("mnist", "image") == [str(k) for k in range(10)]
    assert guidance_classes("swiss_roll", "2d") == [] and guidance_classes("eight_gaussians", "image") == []
    swiss = DataInfo("swiss_roll", "2d", (2,))
    with pytest.raises(ValueError, match="the 8 Gaussians"):
        guided_model(torch.nn.Identity(), make_schedule("linear", 100), swiss, "0° (right)", 1.0, 4)
    gaussians = DataInfo("eight_gaussians", "2d", (2,))
    with pytest.raises(ValueError, match=r"must be one of 0° \(right\), 45°"):
        guided_model(torch.nn.Identity(), make_schedule("linear", 100), gaussians, "north", 1.0, 4)
    moons = DataInfo("moons", "2d", (2,))  # a class-conditional model, steered by a classifier its data lacks
    with pytest.raises(ValueError, match=r"moons has neither; this model is class-conditional: steer it classifier-free"):
        guided_model(MLPDenoiser(MLPConfig(num_classes=2)), make_schedule("linear", 100), moons, "upper moon", 1.0, 4,
                     method="classifier")  # it said "this model is unconditional"


class ZeroNoise(torch.nn.Module):
    """A denoiser that predicts ε̂ = 0 everywhere: what guidance adds to it is the guide alone."""

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x_t)


def test_a_class_can_be_named_by_its_angle_or_place_in_any_case() -> None:
    gaussians = TOY2D_CLASSES["eight_gaussians"]
    for given in ("90° (top)", "90", "90°", "top", " TOP "):
        assert find_class(given, gaussians) == "90° (top)"
    assert find_class("0", gaussians) == "0° (right)" and find_class("upper right", gaussians) == "45° (upper right)"
    assert find_class("Upper Moon", TOY2D_CLASSES["moons"]) == "upper moon"
    assert find_class("ankle boot", IMAGE_CLASS_NAMES["fashion_mnist"]) == "Ankle boot"
    for wrong in ("9", "upper", "moon"):
        with pytest.raises(ValueError, match="must be one of"):
            find_class(wrong, gaussians + TOY2D_CLASSES["moons"])
    for missing in ("", "  ", None, 7):  # an API call without a class, or with a number: not an AttributeError
        with pytest.raises(ValueError, match=r"^choose the class to steer towards, one of upper moon, lower moon$"):
            find_class(missing, TOY2D_CLASSES["moons"])
    # The guided model steers towards the class so named: "top" is the component straight up.
    schedule, gaussians_info = make_schedule("linear", 100), DataInfo("eight_gaussians", "2d", (2,))
    by_place, by_name, other = (guided_model(ZeroNoise(), schedule, gaussians_info, name, 2.0, 4)
                                for name in ("top", "90° (top)", "bottom"))
    x_t, t = torch.randn(4, 2), torch.full((4,), 50)
    assert torch.equal(by_place(x_t, t), by_name(x_t, t)) and not torch.equal(by_place(x_t, t), other(x_t, t))


def test_own_data_named_like_a_built_in_set_is_not_taken_for_it(tmp_path):
    """A CSV saved as eight_gaussians.csv was offered the 8 Gaussians' components to steer towards, mapped through the
    CSV's own mean and scale; a folder named mnist got the digits' classifier. Own data gets a name of its own."""
    from app.own_points import points_of_csv
    from core.datasets import load_training_data

    csv = tmp_path / "eight_gaussians.csv"
    csv.write_text("".join(f"{x},{x * x}\n" for x in range(-20, 20)))
    _, info = load_training_data(str(csv))
    assert info.name == "eight_gaussians_own" and guidance_classes(info.name, "2d") == [] and model_mixture(info) is None
    assert points_of_csv(csv).info.name == "eight_gaussians_own"
    _, toy = load_training_data("eight_gaussians")
    assert toy.name == "eight_gaussians" and len(guidance_classes(toy.name, "2d")) == 8
    folder = tmp_path / "mnist"
    folder.mkdir()
    for k in range(3):
        PIL.Image.fromarray(np.full((28, 28), 40 * k, np.uint8)).save(folder / f"{k}.png")
    _, pictures = load_training_data(str(folder), channels=1, image_size=28)
    assert pictures.name == "mnist_own" and guidance_classes(pictures.name, "image") == []


class LinearNoise(torch.nn.Module):
    """ε̂(x_t, t) = k·x_t."""

    def __init__(self, k: float) -> None:
        super().__init__()
        self.k = k

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.k * x_t


def test_the_guide_differentiates_through_the_network_and_not_through_a_clipped_x0() -> None:
    """ε̂ − s·√(1 − ᾱ_t)·∇ log p(y | x̂₀(x_t)). With ε̂ = k·x_t and log p = Σ x̂₀: x̂₀ = x_t·(1 − √(1 − ᾱ_t)·k)/√ᾱ_t, whose
    gradient (1 − √(1 − ᾱ_t)·k)/√ᾱ_t runs through the network's ε̂ (1/√ᾱ_t were ε̂ held fixed). Where the clip of x̂₀
    bites (|x̂₀| > 1), its gradient is 0: the classifier sees only pixels in [−1, 1], and the guide changes nothing."""
    schedule, k, scale = make_schedule("linear", 100), 0.5, 2.0
    guided = GuidedDenoiser(LinearNoise(k), schedule, lambda x_t, t, x0: x0.flatten(1).sum(1), scale, clip_x0=1.0)
    t = torch.full((3,), 40)
    ab = float(schedule.alpha_bars[40])
    x = torch.tensor([[0.01, -0.02], [0.03, 0.0], [-0.01, 0.02]])  # x̂₀ well inside [−1, 1]
    gradient = (1 - math.sqrt(1 - ab) * k) / math.sqrt(ab)
    torch.testing.assert_close(guided(x, t), k * x - scale * math.sqrt(1 - ab) * gradient)
    far = torch.full((3, 2), 50.0)  # x̂₀ ≈ 46
    torch.testing.assert_close(guided(far, t), k * far)


def test_the_mixture_is_written_in_the_models_coordinates() -> None:
    """A model of data scaled by s sees the mixture's means and spread divided by s, after its mean is taken off."""
    toy = model_mixture(DataInfo("eight_gaussians", "2d", (2,)))
    scaled = model_mixture(DataInfo("eight_gaussians", "2d", (2,), mean=(1.0, -0.5), scale=2.0))
    torch.testing.assert_close(scaled.means, (toy.means - torch.tensor([1.0, -0.5], dtype=torch.float64)) / 2)
    assert scaled.std == pytest.approx(toy.std / 2) and scaled.names == toy.names
