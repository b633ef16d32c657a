"""The DDPM U-Net: shapes, preset sizes, config round trip, errors, and that it learns MNIST noise."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from core.image_data import load_image_dataset, to_model_range
from core.presets import new_model
from core.schedules import make_schedule
from core.trainer import TrainConfig, Trainer
from core.unet import UNET_PRESETS, UNet, UNetConfig, unet_config

DATA_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data"
PARAM_RANGES = {"tiny": (20_000, 100_000), "small": (500_000, 1_000_000), "base": (6_000_000, 10_000_000)}


@pytest.mark.parametrize("preset", UNET_PRESETS)
@pytest.mark.parametrize(("size", "channels"), [(28, 1), (32, 3)])
def test_output_shape_and_parameter_count(preset: str, size: int, channels: int) -> None:
    torch.manual_seed(0)
    model = UNet(unet_config(preset, size, channels))
    x = torch.randn(2, channels, size, size)  # (B, C, H, W)
    with torch.no_grad():
        eps = model(x, torch.tensor([1, 1000]))
    assert eps.shape == x.shape and eps.dtype == torch.float32
    assert torch.all(eps == 0)  # zero-initialised final conv
    low, high = PARAM_RANGES[preset]
    assert low <= model.num_parameters() <= high


def test_self_attention_attends_over_at_most_64_by_64_positions() -> None:
    """Its n × L × L scores take 64 MB an image at L = 64²; a config with attention at 128 × 128 (1 GB an image) is
    refused, at a level or in the bottleneck; every preset, at every size the presets take, stays within."""
    assert UNetConfig(image_size=64, channel_mults=(1,), attention_resolutions=(64,)).attention_resolutions == (64,)
    with pytest.raises(ValueError, match=r"self-attention at 128×128 would attend over 16,384 positions; at most 4,096"):
        UNetConfig(image_size=128, channel_mults=(1,), attention_resolutions=(128,), middle_attention=False)
    with pytest.raises(ValueError, match=r"self-attention at 128×128"):  # the bottleneck's
        UNetConfig(image_size=128, channel_mults=(1,), attention_resolutions=(), middle_attention=True)
    assert UNetConfig(image_size=128, channel_mults=(1,), attention_resolutions=(), middle_attention=False)
    for preset in UNET_PRESETS:
        for size in (28, 32, 64, 128, 256):
            unet_config(preset, size, 3)  # raises if beyond


def test_config_json_round_trip() -> None:
    config = unet_config("small", 28, 1)
    restored = UNetConfig(**json.loads(json.dumps(dataclasses.asdict(config))))
    assert restored == config
    assert isinstance(restored.channel_mults, tuple) and isinstance(restored.attention_resolutions, tuple)
    assert config.attention_resolutions == (7,)  # small: attention only at the lowest level
    assert config.patch_size == 2 and config.resolutions == (14, 7)  # 2×2 patch stem, then one halving


def _perturbed(preset: str = "tiny", seed: int = 0) -> UNet:
    torch.manual_seed(seed)
    model = UNet(unet_config(preset, 28, 1)).eval()
    with torch.no_grad():
        for p in model.parameters():  # undo the zero-init so every path carries signal
            p.add_(0.05 * torch.randn_like(p))
    return model


def test_time_embedding_changes_output() -> None:
    model = _perturbed()
    x = torch.randn(1, 1, 28, 28).repeat(2, 1, 1, 1)  # the same image twice
    with torch.no_grad():
        eps = model(x, torch.tensor([1, 900]))
    assert (eps[0] - eps[1]).abs().max() > 1e-3


@pytest.mark.parametrize("preset", ["tiny", "small"])
def test_channels_last_matches_contiguous(preset: str) -> None:
    """The default channels-last weights compute the same function as contiguous ones."""
    model = _perturbed(preset)
    x = torch.randn(3, 1, 28, 28)
    t = torch.tensor([1, 50, 999])
    with torch.no_grad():
        out = model(x, t)
        assert model.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
        reference = model.to(memory_format=torch.contiguous_format)(x, t)
    assert out.is_contiguous() and out.shape == x.shape
    torch.testing.assert_close(out, reference, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("preset", ["tiny", "small"])
def test_every_output_pixel_sees_the_whole_image(preset: str) -> None:
    """Through the bottleneck (and the small preset's patch stem) the far corner pixel matters."""
    model = _perturbed(preset)
    x = torch.randn(1, 1, 28, 28, requires_grad=True)
    model(x, torch.tensor([10]))[0, 0, 27, 27].backward()
    assert x.grad is not None and x.grad[0, 0, 0, 0].abs() > 0
    assert x.grad[0, 0, 27, 27].abs() > 0


def test_bad_sizes_and_presets_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="divisible by 4"):
        unet_config("small", 30, 1)
    with pytest.raises(ValueError, match="divisible by 4"):
        UNetConfig(image_size=30, channel_mults=(1, 2, 2))
    with pytest.raises(ValueError, match="divisible by 8"):  # 2×2 patches, then halved twice
        UNetConfig(image_size=28, patch_size=2, channel_mults=(1, 2, 2))
    with pytest.raises(ValueError, match="tiny, small, base"):
        unet_config("huge", 28, 1)
    with pytest.raises(ValueError, match="attention_resolutions"):
        UNetConfig(image_size=28, attention_resolutions=(8,))
    model = UNet(unet_config("tiny", 28, 1))
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        model(torch.randn(2, 3, 28, 28), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        model(torch.randn(2, 1, 32, 32), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="one timestep per example"):
        model(torch.randn(2, 1, 28, 28), torch.tensor([1]))
    # a preset for the other kind of data: it had failed with an IndexError, or ignored the shape
    with pytest.raises(ValueError, match=r"images of shape \(C, H, W\); got shape \(2,\)"):
        new_model("small", (2,))
    with pytest.raises(ValueError, match=r"2D points, shape \(2,\); got shape \(1, 28, 28\)"):
        new_model("mlp", (1, 28, 28))


@pytest.fixture
def one_thread():
    """Tiny convolutions gain nothing from a second thread, and lose a lot on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_tiny_unet_learns_mnist_noise(one_thread: None) -> None:
    """Algorithm 1 on 256 MNIST digits: the mean squared ε error falls well below its start (1)."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    x0_all = to_model_range(load_image_dataset("mnist", root=DATA_ROOT, split="any", download=False, limit=256).images)
    schedule = make_schedule("linear", 1000)
    model = UNet(unet_config("tiny", 28, 1))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, fused=True)
    losses = []
    for _ in range(80):
        idx = torch.randint(0, x0_all.shape[0], (16,), generator=generator)
        x0 = x0_all[idx]  # (B, 1, 28, 28)
        t = torch.randint(1, schedule.T + 1, (16,), generator=generator)  # (B,)
        noise = torch.randn(x0.shape, generator=generator)
        x_t = schedule.q_sample(x0, t, noise).float()
        loss = F.mse_loss(model(x_t, t), noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    start, end = sum(losses[:5]) / 5, sum(losses[-20:]) / 20
    assert start > 0.7 and end < 0.3 * start, (start, end)


def test_bf16_autocast_training_path(one_thread: None) -> None:
    """The GPU default (bf16 autocast, amp="auto" on CUDA) taken on the CPU with amp="bf16": the U-Net runs
    in bfloat16, weights, loss and previews stay float32, and the ε error still falls."""
    digits = to_model_range(load_image_dataset("mnist", root=DATA_ROOT, split="any", download=False, limit=256).images)
    torch.manual_seed(0)
    model = UNet(unet_config("tiny", 28, 1))
    config = TrainConfig(steps=25, batch_size=8, lr=3e-3, warmup_steps=5, amp="bf16", log_every=25,
                         preview_n=2, preview_steps=3)
    trainer = Trainer(model, make_schedule("linear", 1000), digits, config)
    output_dtypes = set()
    model.register_forward_hook(lambda module, inputs, output: output_dtypes.add(output.dtype))
    losses = [loss for event in trainer.run() for loss in event.losses]
    assert output_dtypes == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in [*model.parameters(), *trainer.ema_model.parameters()])
    start, end = sum(losses[:5]) / 5, sum(losses[-8:]) / 8  # bf16 convolutions are slow on CPU: few steps
    assert start > 0.7 and end < 0.5 * start, (start, end)
    preview = trainer.preview()
    assert preview.dtype == torch.float32 and preview.shape == (2, 1, 28, 28) and torch.isfinite(preview).all()
