"""The checkpoints shipped under checkpoints/: present, loadable, small, documented, and still good.

Quality floors are loose (fast, small samples) but far below what an untrained model reaches:
2D — the full DDPM chain on 500 points: the shipped models score about 0.7–1.3, N(0, I) "samples"
2.2–7 and an untrained MLP ≫ 20; the floor is 2.0. (The full chain, because the cosine and sigmoid
schedules end at β_T = 0.999, where strided DDPM and DDIM multiply the ε̂ error at t = T by hundreds
and throw 2D samples far out; see checkpoints/README.md.)
Images — 16 DDIM-10 samples: finite, in [−1, 1], the right shape; with the offline MNIST split present,
also a classifier-feature FID ratio ≤ 5 and ≥ 3 classes among the 16 (16 real digits: ≈1.2 and 7;
noise: ≈11 and 1; a flat grey image: ≈3.3 and 1).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.checkpoints import list_checkpoints, load_checkpoint
from core.evaluate import evaluate
from core.fid import image_quality
from core.mlp import MLPDenoiser
from core.prediction import unwrap
from core.sampler import initial_noise, sample

REPO = Path(__file__).resolve().parents[1]
ROOT = REPO / "checkpoints"
SHARED_DATA = REPO.parent / "shared" / "data"

EXPECTED_2D = {
    "swiss_roll_linear", "swiss_roll_cosine", "swiss_roll_sigmoid", "swiss_roll_cosine_v",
    "moons", "s_curve", "circles", "eight_gaussians", "checkerboard", "cross", "spiral", "eight_gaussians_conditional",
}
MAX_TOTAL_BYTES = 30 * 1024 * 1024
SW_FLOOR = 2.0  # sliced-Wasserstein ratio, full DDPM chain, 500 samples, seed 0
SW_SAMPLER = "ddpm"
SW_N = 500
IMAGE_FID_RATIO_FLOOR = 5.0
IMAGE_MIN_CLASSES = 3

SHIPPED = list_checkpoints(ROOT)
SHIPPED_2D = [p for p in SHIPPED if load_checkpoint(p).data.kind == "2d"] if SHIPPED else []
SHIPPED_IMAGE = [p for p in SHIPPED if p not in SHIPPED_2D]


def test_every_2d_checkpoint_is_shipped() -> None:
    names = {p.name for p in SHIPPED}
    assert EXPECTED_2D <= names, f"missing shipped checkpoints: {sorted(EXPECTED_2D - names)}"


def test_total_size_is_small() -> None:
    total = sum(f.stat().st_size for f in ROOT.rglob("*") if f.is_file())
    assert total <= MAX_TOTAL_BYTES, f"checkpoints/ holds {total / 2**20:.1f} MB, more than {MAX_TOTAL_BYTES / 2**20:.0f} MB"


def test_index_lists_every_checkpoint() -> None:
    index = (ROOT / "README.md").read_text()
    for path in SHIPPED:
        assert f"[{path.name}]" in index, f"checkpoints/README.md has no row for {path.name}"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_has_model_card(path: Path) -> None:
    card = path / "README.md"
    assert card.is_file(), f"{path.name} has no model card (python scripts/model_card.py checkpoints/{path.name})"
    text = card.read_text()
    assert "python -m core.train" in text and "python -m core.evaluate" in text


@pytest.mark.parametrize("path", SHIPPED_2D, ids=lambda p: p.name)
def test_2d_checkpoint_samples_match_its_data(path: Path) -> None:
    ckpt = load_checkpoint(path)
    assert isinstance(unwrap(ckpt.model)[0], MLPDenoiser) and ckpt.data.shape == (2,)
    result = evaluate(ckpt, n=SW_N, samplers=[SW_SAMPLER], seed=0)
    ratio = next(iter(result.values()))["sliced_wasserstein_ratio"]
    assert ratio <= SW_FLOOR, f"{path.name}: sliced-Wasserstein ratio {ratio:.3f} ({SW_SAMPLER}, n={SW_N}) > {SW_FLOOR}"


def test_2d_floor_rejects_an_untrained_model() -> None:
    """The floor means something: the same network with fresh weights fails it by far."""
    ckpt = load_checkpoint(ROOT / "swiss_roll_linear")
    torch.manual_seed(0)
    ckpt.model = MLPDenoiser(ckpt.model.config).eval()
    result = evaluate(ckpt, n=256, samplers=[SW_SAMPLER], seed=0)
    assert next(iter(result.values()))["sliced_wasserstein_ratio"] > 10 * SW_FLOOR


@pytest.mark.parametrize("path", SHIPPED_IMAGE, ids=lambda p: p.name)
def test_image_checkpoint_samples(path: Path) -> None:
    ckpt = load_checkpoint(path)
    assert ckpt.data.kind == "image"
    if ckpt.data.name == "mnist":
        assert ckpt.data.shape == (1, 28, 28)
    x_T, generator = initial_noise((16,) + tuple(ckpt.data.shape), seed=0)
    x0 = sample(ckpt.model, ckpt.schedule, x_T, method="ddim", steps=10, clip_x0=ckpt.data.clip_x0, generator=generator)
    assert x0.shape == (16,) + tuple(ckpt.data.shape)
    assert torch.isfinite(x0).all()
    assert x0.min() >= -1.0 and x0.max() <= 1.0
    if ckpt.data.name == "mnist" and (SHARED_DATA / "MNIST" / "raw").is_dir():
        quality = image_quality(x0, "mnist", seed=0, root=SHARED_DATA)
        assert quality["fid_ratio"] <= IMAGE_FID_RATIO_FLOOR, f"{path.name}: FID ratio {quality['fid_ratio']:.2f}"
        assert quality["classes_present"] >= IMAGE_MIN_CLASSES, f"{path.name}: {quality['classes_present']} classes"


@pytest.mark.parametrize("name", ["swiss_roll_cosine", "swiss_roll_sigmoid"])
def test_log_snr_spaced_ddpm_samples_capped_beta_checkpoints_where_even_t_steps_fail(name: str) -> None:
    """The Train tab's 2D previews (DDPM, 100 steps evenly in log-SNR) are sound on β_T = 0.999 schedules, where
    DDIM-50 on steps evenly in t throws the points far out."""
    if name not in {p.name for p in SHIPPED}:
        pytest.fail(f"{name} is not shipped")
    results = evaluate(load_checkpoint(ROOT / name), n=SW_N, samplers=["ddpm:100:log_snr", "ddim:50"], seed=0)
    log_snr, ddim = (results[k]["sliced_wasserstein_ratio"] for k in ("ddpm-100-log_snr", "ddim-50"))
    assert log_snr <= SW_FLOOR < 5 * log_snr <= ddim, (log_snr, ddim)


def test_the_v_model_samples_the_cosine_schedule_with_ddim_where_the_eps_model_fails() -> None:
    """swiss_roll_cosine_v is swiss_roll_cosine trained to predict v: its x̂₀ at t = T comes straight from the
    network, not from ε̂ divided by √ᾱ_T (≈ 5e-5), so DDIM-50 from it lands on the data."""
    eps, v = (load_checkpoint(ROOT / name) for name in ("swiss_roll_cosine", "swiss_roll_cosine_v"))
    assert unwrap(eps.model)[1] == "eps" and unwrap(v.model)[1] == "v"
    ratios = [evaluate(ckpt, n=SW_N, samplers=["ddim:50"], seed=0)["ddim-50"]["sliced_wasserstein_ratio"]
              for ckpt in (eps, v)]
    assert ratios[1] <= SW_FLOOR and ratios[0] > 10 * ratios[1], ratios


def test_the_conditional_models_are_steered_by_their_own_classes() -> None:
    """eight_gaussians_conditional and mnist_conditional: classifier-free guidance lands on the chosen class, which
    their unconditional samples (the same model without a label) hit only by chance."""
    from core.guidance import guided_model, read_classes

    gaussians = load_checkpoint(ROOT / "eight_gaussians_conditional")
    target = "225° (lower left)"
    for scale, least in ((0.0, 0), (1.0, 0.97)):
        guided = guided_model(gaussians.model, gaussians.schedule, gaussians.data, target, scale, 400)
        x_T, generator = initial_noise((400, 2), seed=0)
        classes, _ = read_classes(gaussians.data, sample(guided, gaussians.schedule, x_T, method="ddim", steps=20,
                                                         generator=generator))
        share = classes.count(target) / 400
        assert share >= least and (scale > 0 or share < 0.25), (scale, share)
    digits = load_checkpoint(ROOT / "mnist_conditional")
    for digit in ("2", "5"):
        guided = guided_model(digits.model, digits.schedule, digits.data, digit, 3.0, 8)
        x_T, generator = initial_noise((8, 1, 28, 28), seed=0)
        x0 = sample(guided, digits.schedule, x_T, method="ddim", steps=10, clip_x0=1.0, generator=generator)
        classes, how = read_classes(digits.data, x0)
        assert how == "read by the shipped classifier as" and classes.count(digit) >= 7, (digit, classes)
