"""Class-conditional networks and classifier-free guidance (`core.conditioning`).

Exact check on a mixture of two Gaussians (the one of tests/test_guidance.py), where the conditional ε*(x_t | y)
is known: given y, x_t ~ N(√ᾱ_t μ_y, v_t I), so ε*(x_t | y) = √(1 − ᾱ_t)·(x_t − √ᾱ_t μ_y)/v_t. Its difference to
the unconditional ε* is −√(1 − ᾱ_t)·∇ log p_t(y | x_t), so classifier-free guidance of the exact models must equal
classifier guidance with the exact classifier at every scale, and sample component y alone at s = 1.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from core.checkpoints import load_checkpoint, model_classes, null_label_share, save_checkpoint
from core.conditioning import (
    ClassifierFreeGuidance, cycling_labels, drop_labels, num_classes, with_classes,
)
from core.data import DataInfo, make_toy2d, make_toy2d_labelled, toy_mixture
from core.guidance import (
    GuidedDenoiser, class_score, guidance_methods, guided_model, mixture_log_likelihood, model_mixture, read_classes,
)
from core.metrics import sliced_wasserstein_ratio
from core.mlp import MLPConfig, MLPDenoiser
from core.prediction import EpsilonView
from core.sampler import initial_noise, sample
from core.schedules import make_schedule
from core.trainer import TrainConfig, Trainer
from core.unet import UNet, unet_config
from tests.test_guidance import MEANS, SIGMA, mixture_eps

SHIPPED = Path(__file__).resolve().parents[1] / "checkpoints"


class ExactConditional(nn.Module):
    """ε*(x_t | y) of the two-Gaussian mixture, and the mixture's ε* for the label ∅ = 2, as a conditional model."""

    def __init__(self, schedule) -> None:
        super().__init__()
        self.schedule, self.config = schedule, MLPConfig(num_classes=2)
        self.unconditional = mixture_eps(schedule)
        self.calls = 0

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        self.calls += 1
        eps = self.unconditional(x, t)
        if labels is None:
            return eps
        a = self.schedule.alpha_bars.to(x.dtype)[t].view(-1, 1)
        v = a * SIGMA**2 + 1 - a
        known = labels < 2
        conditional = (1 - a).sqrt() * (x - a.sqrt() * MEANS[labels.clamp(max=1)]) / v
        return torch.where(known[:, None], conditional, eps)


def test_classifier_free_guidance_of_exact_models_is_classifier_guidance_with_the_exact_classifier() -> None:
    schedule = make_schedule("linear", 200)
    model = ExactConditional(schedule)
    x = torch.randn(300, 2, dtype=torch.float64) * 2
    t = torch.randint(1, 201, (300,))
    for scale in (0.0, 0.5, 1.0, 3.0):
        free = ClassifierFreeGuidance(model, 1, scale)(x, t)
        classifier = GuidedDenoiser(model, schedule, mixture_log_likelihood(schedule, MEANS, SIGMA, 1), scale)(x, t)
        assert torch.allclose(free, classifier, atol=1e-9), scale


def test_guided_by_its_own_classes_an_exact_model_samples_the_chosen_component() -> None:
    schedule = make_schedule("linear", 200)
    model = ExactConditional(schedule)
    x_T, generator = initial_noise((6000, 2), seed=0)
    unguided = sample(ClassifierFreeGuidance(model, 0, 0.0), schedule, x_T.double(), generator=generator)
    assert 0.45 < float((unguided[:, 0] > 0).float().mean()) < 0.55  # s = 0: the mixture, half of each
    for y in (0, 1):
        x_T, generator = initial_noise((6000, 2), seed=1)
        guided = sample(ClassifierFreeGuidance(model, y, 1.0), schedule, x_T.double(), generator=generator)
        assert float(((guided[:, 0] > 0) == bool(y)).float().mean()) > 0.999
        assert torch.allclose(guided.mean(0).float(), MEANS[y], atol=0.03)
        assert torch.allclose(guided.std(0).float(), torch.full((2,), SIGMA), rtol=0.05)
    x_T, generator = initial_noise((6000, 2), seed=1)
    sharper = sample(ClassifierFreeGuidance(model, 1, 4.0), schedule, x_T.double(), generator=generator)
    # s > 1 samples ∝ p(x | y)·p(y | x)^(s − 1): pushed away from the other component, along the axis between them
    assert float(sharper[:, 0].std()) < 0.95 * SIGMA and float(sharper[:, 0].mean()) > float(MEANS[1, 0]) + 0.05


def test_given_labels_an_exact_model_samples_each_example_from_its_own_class() -> None:
    schedule = make_schedule("linear", 200)
    labels = cycling_labels(4000, 2)
    assert labels[:5].tolist() == [0, 1, 0, 1, 0]
    x_T, generator = initial_noise((4000, 2), seed=2)
    given = ClassifierFreeGuidance(ExactConditional(schedule), labels, 1.0)  # s = 1: each from its class
    samples = sample(given, schedule, x_T.double(), generator=generator)
    for y in (0, 1):
        mine = samples[labels == y]
        assert float(((mine[:, 0] > 0) == bool(y)).float().mean()) > 0.999
        assert torch.allclose(mine.mean(0).float(), MEANS[y], atol=0.04)
        assert torch.allclose(mine.std(0).float(), torch.full((2,), SIGMA), rtol=0.06)
    assert cycling_labels(7, 3).tolist() == [0, 1, 2, 0, 1, 2, 0]
    with pytest.raises(ValueError, match="class-conditional"):
        ClassifierFreeGuidance(MLPDenoiser(), labels, 1.0)
    for bad in (labels + 1, labels - 1, torch.tensor(0), labels.float()):
        with pytest.raises(ValueError, match="classes 0..1"):
            ClassifierFreeGuidance(ExactConditional(schedule), bad, 1.0)
    with pytest.raises(ValueError, match="batch of 3"):
        given(torch.zeros(3, 2), torch.ones(3, dtype=torch.long))


def mixture_class_gradient(x: torch.Tensor, a: float, means: torch.Tensor, std: float, y: int) -> torch.Tensor:
    """∇ log p_t(y | x_t) of an equal-weight mixture of N(μ_k, std²I) in closed form: x_t | k ~ N(√ᾱ μ_k, v I),
    v = ᾱ std² + 1 − ᾱ, so the gradient is (√ᾱ/v)·(μ_y − Σ_k p_t(k | x_t) μ_k)."""
    v = a * std**2 + 1 - a
    posterior = torch.softmax(-((x[:, None, :] - a**0.5 * means) ** 2).sum(-1) / (2 * v), dim=1)  # (N, K)
    return (a**0.5 / v) * (means[y] - posterior @ means)


def test_the_class_score_is_the_gradient_of_the_guides_classifier() -> None:
    schedule = make_schedule("linear", 200)
    x = torch.randn(500, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 2
    two = DataInfo(name="moons", kind="2d", shape=(2,))  # two classes: the exact model's components play the moons
    for t in (20, 100, 180):
        a = float(schedule.alpha_bars[t])
        want = mixture_class_gradient(x, a, MEANS.double(), SIGMA, 1)
        # classifier-free: the exact conditional model's implicit classifier is the mixture's exact classifier
        learnt = class_score(ExactConditional(schedule), schedule, two, "lower moon", x, t, "classifier-free")
        assert torch.allclose(learnt, want, atol=1e-9), t
    # classifier guidance by the 8 Gaussians' exact classifier: its gradient, whatever the model
    info = DataInfo(name="eight_gaussians", kind="2d", shape=(2,))
    mixture = model_mixture(info)
    a = float(schedule.alpha_bars[60])
    exact = class_score(MLPDenoiser().double(), schedule, info, mixture.names[2], x, 60, "classifier")
    assert torch.allclose(exact, mixture_class_gradient(x, a, mixture.means, mixture.std, 2), atol=1e-9)


def test_the_guided_prediction_is_one_call_on_a_doubled_batch_and_mixes_as_the_formula_says() -> None:
    schedule = make_schedule("linear", 50)
    model = ExactConditional(schedule)
    x, t = torch.randn(7, 2, dtype=torch.float64), torch.randint(1, 51, (7,))
    unconditional, conditional = model(x, t), model(x, t, torch.zeros(7, dtype=torch.long))
    model.calls = 0
    guided = ClassifierFreeGuidance(model, 0, 2.5)(x, t)
    assert model.calls == 1
    assert torch.allclose(guided, unconditional + 2.5 * (conditional - unconditional))
    assert torch.equal(ClassifierFreeGuidance(model, 0, 0)(x, t), unconditional)
    assert torch.equal(ClassifierFreeGuidance(model, 0, 1)(x, t), conditional)


def test_refusals() -> None:
    with pytest.raises(ValueError, match="class-conditional"):
        ClassifierFreeGuidance(MLPDenoiser(), 0, 1.0)
    conditional = MLPDenoiser(MLPConfig(num_classes=3))
    with pytest.raises(ValueError, match="0..2"):
        ClassifierFreeGuidance(conditional, 3, 1.0)
    with pytest.raises(ValueError, match="scale"):
        ClassifierFreeGuidance(conditional, 0, -1.0)
    with pytest.raises(ValueError, match="not class-conditional"):
        MLPDenoiser()(torch.zeros(2, 2), torch.ones(2, dtype=torch.long), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="one label per example"):
        conditional(torch.zeros(2, 2), torch.ones(2, dtype=torch.long), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="num_classes"):
        MLPConfig(num_classes=-1)
    with pytest.raises(ValueError, match="already"):
        with_classes(conditional, 3)


@pytest.mark.parametrize("make", [lambda k: MLPDenoiser(MLPConfig(num_classes=k)),
                                  lambda k: UNet(unet_config("tiny", 28, 1, k))])
def test_conditional_networks_take_labels_and_start_out_ignoring_them(make) -> None:
    torch.manual_seed(0)
    net = make(4).eval()
    assert num_classes(net) == 4
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "class" not in name:
                p.add_(0.01 * torch.randn_like(p))  # the zero-initialised output layers too
    shape = (3, 2) if isinstance(net, MLPDenoiser) else (3, 1, 28, 28)
    x, t = torch.randn(shape), torch.tensor([1, 50, 900])
    null = net(x, t)
    assert null.shape == x.shape
    assert torch.equal(null, net(x, t, torch.full((3,), 4)))  # no labels = ∅ = label K
    assert torch.equal(null, net(x, t, torch.tensor([0, 1, 3])))  # zero class vectors: labels have no effect yet
    with torch.no_grad():
        next(p for name, p in net.named_parameters() if "class" in name).normal_()
    assert not torch.allclose(net(x, t, torch.tensor([0, 1, 3])), null)  # once learned, they do


def test_with_classes_keeps_what_an_unconditional_network_computes() -> None:
    torch.manual_seed(0)
    for net, x in ((MLPDenoiser().eval(), torch.randn(5, 2)), (UNet(unet_config("tiny", 28, 1)).eval(), torch.randn(5, 1, 28, 28))):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(0.01 * torch.randn_like(p))  # the zero-initialised output layers too
        t = torch.randint(1, 1000, (5,))
        conditional = with_classes(net, 10).eval()
        assert num_classes(conditional) == 10 and num_classes(net) == 0
        assert torch.allclose(conditional(x, t, torch.arange(5)), net(x, t), atol=1e-6)


def test_drop_labels_drops_about_the_asked_share() -> None:
    labels = torch.randint(0, 8, (20_000,))
    dropped = drop_labels(labels, 0.2, 8, torch.Generator().manual_seed(0))
    is_null = dropped == 8
    assert 0.19 < float(is_null.float().mean()) < 0.21
    assert torch.equal(dropped[~is_null], labels[~is_null])


def test_a_conditional_run_learns_each_class_and_guidance_keeps_samples_in_it() -> None:
    torch.manual_seed(0)
    points, labels = make_toy2d_labelled("eight_gaussians", 4000, seed=0)
    schedule = make_schedule("linear", 200)
    config = TrainConfig(steps=800, batch_size=256, lr=3e-3, seed=0, device="cpu", p_uncond=0.15)
    model = MLPDenoiser(MLPConfig(hidden=64, depth=2, emb_dim=32, num_classes=8))
    trainer = Trainer(model, schedule, points, config, labels)
    for _ in trainer.run():
        pass
    info = DataInfo(name="eight_gaussians", kind="2d", shape=(2,))
    names = toy_mixture("eight_gaussians").names
    assert guidance_methods(num_classes(trainer.sampling_model), "eight_gaussians", "2d") == ["classifier-free", "classifier"]
    assert guidance_methods(0, "moons", "2d") == [] and guidance_methods(2, "moons", "2d") == ["classifier-free"]
    for k in (0, 5):
        guided = guided_model(trainer.sampling_model, schedule, info, names[k], 1.0, 400)
        x_T, generator = initial_noise((400, 2), seed=k)
        samples = sample(guided, schedule, x_T, generator=generator)
        classes, how = read_classes(info, samples)
        assert how == "nearest the centre of" and classes.count(names[k]) > 0.9 * 400
    # the run's previews: sample i of class i mod 8, each (nearly always) at its own component
    previews, labels = trainer.preview(400), trainer.preview_labels(400)
    assert labels.tolist() == [k % 8 for k in range(400)]
    classes, _ = read_classes(info, previews)
    assert sum(got == names[k] for got, k in zip(classes, labels.tolist())) > 0.9 * 400


def test_without_dropped_classes_the_null_mode_is_never_learnt_but_the_conditional_model_is() -> None:
    """p_uncond = 0: ε̂(x_t, t, ∅) is never trained, so the unconditional samples (s = 0, what a conditional model
    draws when called without labels) miss the data, while s = 1, which does not use ∅, still samples the class."""
    info = DataInfo(name="eight_gaussians", kind="2d", shape=(2,))
    points, labels = make_toy2d_labelled("eight_gaussians", 4000, seed=0)
    schedule = make_schedule("linear", 200)
    ratios = {}
    for p_uncond in (0.0, 0.15):
        torch.manual_seed(0)
        config = TrainConfig(steps=800, batch_size=256, lr=3e-3, seed=0, device="cpu", p_uncond=p_uncond)
        trainer = Trainer(MLPDenoiser(MLPConfig(hidden=64, depth=2, emb_dim=32, num_classes=8)), schedule, points,
                          config, labels)
        for _ in trainer.run():
            pass
        x_T, generator = initial_noise((1000, 2), seed=0)
        unconditional = sample(trainer.sampling_model, schedule, x_T, generator=generator)
        ratios[p_uncond] = sliced_wasserstein_ratio(unconditional, lambda n, seed: make_toy2d("eight_gaussians", n,
                                                                                               seed=seed))
        guided = guided_model(trainer.sampling_model, schedule, info, "90° (top)", 1.0, 400)
        x_T, generator = initial_noise((400, 2), seed=1)
        classes, _ = read_classes(info, sample(guided, schedule, x_T, generator=generator))
        assert classes.count("90° (top)") > 0.9 * 400, p_uncond
    assert ratios[0.15] < 2 and ratios[0.0] > 3 * ratios[0.15], ratios  # measured: 1.3 and 6.8


def test_the_null_label_share_counts_dropped_labels_and_runs_before_the_model_was_conditional() -> None:
    def config(classes, *runs):
        *previous, last = [dict(run) for run in runs]
        return {"model": {"config": {"num_classes": classes}}, "training": {**last, "previous_runs": previous}}

    assert null_label_share(config(0, {"steps_done": 100, "p_uncond": 0.1, "classes": 0})) is None
    assert null_label_share(config(2, {"steps_done": 100, "p_uncond": 0.2, "classes": 2})) == pytest.approx(0.2)
    assert null_label_share(config(2, {"steps_done": 300, "p_uncond": 0.0, "classes": 2})) == 0.0
    # an unconditional run (a network later given classes by with_classes) trained what ∅ computes: share 1
    assert null_label_share(config(2, {"steps_done": 100, "p_uncond": 0.1, "classes": 0},
                                   {"steps_done": 300, "p_uncond": 0.0, "classes": 2})) == pytest.approx(0.25)
    # runs recorded before "classes": those without p_uncond were unconditional
    assert null_label_share(config(2, {"steps_done": 100}, {"steps_done": 100, "p_uncond": 0.0})) == 0.5
    # the shipped models: mnist_conditional is mnist (41,000 steps), then 6,000 steps at 10 % and 8,000 at 20 %
    shipped = {name: json.loads((SHIPPED / name / "config.json").read_text())
               for name in ("mnist_conditional", "eight_gaussians_conditional")}
    assert null_label_share(shipped["mnist_conditional"]) == pytest.approx((41_000 + 600 + 1_600) / 55_000)
    assert null_label_share(shipped["eight_gaussians_conditional"]) == pytest.approx(0.1)


def test_trainer_refuses_missing_or_wrong_labels() -> None:
    points, labels = make_toy2d_labelled("moons", 100)
    config = TrainConfig(steps=1, device="cpu")
    schedule = make_schedule("linear", 100)
    with pytest.raises(ValueError, match="one label per example"):
        Trainer(MLPDenoiser(MLPConfig(num_classes=2)), schedule, points, config)
    with pytest.raises(ValueError, match="takes no labels"):
        Trainer(MLPDenoiser(), schedule, points, config, labels)
    with pytest.raises(ValueError, match="classes 0..1"):
        Trainer(MLPDenoiser(MLPConfig(num_classes=2)), schedule, points, config, labels + 1)
    with pytest.raises(ValueError, match="p_uncond"):
        TrainConfig(p_uncond=1.0)


def test_a_conditional_v_model_is_guided_through_its_epsilon_view_and_round_trips(tmp_path) -> None:
    torch.manual_seed(0)
    schedule = make_schedule("cosine", 100)
    net = MLPDenoiser(MLPConfig(hidden=32, depth=1, emb_dim=16, num_classes=2))
    with torch.no_grad():
        net.embed_class.weight.normal_()
    view = EpsilonView(net, schedule, "v")
    x, t, y = torch.randn(6, 2), torch.randint(1, 101, (6,)), torch.ones(6, dtype=torch.long)
    s = (1 - schedule.alpha_bars[t]).sqrt().float()[:, None]
    a = schedule.alpha_bars[t].sqrt().float()[:, None]
    assert torch.allclose(view(x, t, y), s * x + a * net(x, t, y), atol=1e-6)  # ε̂ = √(1 − ᾱ)·x_t + √ᾱ·v̂
    guided = ClassifierFreeGuidance(view, 1, 3.0)(x, t)
    assert torch.allclose(guided, view(x, t) + 3.0 * (view(x, t, y) - view(x, t)), atol=1e-5)
    info = DataInfo(name="moons", kind="2d", shape=(2,))
    save_checkpoint(tmp_path / "c", view, schedule, info)
    loaded = load_checkpoint(tmp_path / "c")
    assert model_classes(loaded.config) == 2 and num_classes(loaded.model) == 2
    assert torch.allclose(loaded.model(x, t, y), view(x, t, y), atol=1e-6)
    assert model_classes({"model": {"kind": "mlp", "config": {}}}) == 0  # checkpoints from before: unconditional
