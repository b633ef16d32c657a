"""What a run starts from when nothing else is said, per kind of data: the training settings and a fresh network.

Shared by the CLI (`core.train`), the app's Train tab and the scripts, so that a run started either way is the same.
"""

from __future__ import annotations

import torch

from core.mlp import MLPConfig, MLPDenoiser
from core.unet import UNet, unet_config

# Defaults per kind of data: steps, batch, learning rate, EMA decay, model, Min-SNR γ (0: L_simple)
DEFAULTS = {
    "2d": {"steps": 3000, "batch": 512, "lr": 2e-3, "ema_decay": 0.995, "model": "mlp", "min_snr": 0.0},
    "image": {"steps": 6000, "batch": 64, "lr": 1e-3, "ema_decay": 0.999, "model": "small", "min_snr": 5.0},
}
WARMUP_STEPS = 100  # the learning rate's linear warm-up, in steps, or a tenth of a shorter run
EVAL_POINTS = 2000  # samples drawn after a 2D run to measure the sliced-Wasserstein ratio


def warmup_steps(steps: int) -> int:
    """The warm-up of a run of ``steps`` steps: WARMUP_STEPS, or a tenth of a run of under 1,000 steps."""
    return min(WARMUP_STEPS, max(1, steps // 10))


def new_model(preset: str, shape: tuple[int, ...], classes: int = 0) -> torch.nn.Module:
    """Fresh weights: the MLP for 2D points (shape (2,)), else the U-Net preset for (C, H, W) images; conditional
    on ``classes`` classes when > 0."""
    if preset == "mlp":
        if tuple(shape) != (2,):
            raise ValueError(f"the mlp model is for 2D points, shape (2,); got shape {tuple(shape)}")
        return MLPDenoiser(MLPConfig(num_classes=classes))
    if len(shape) != 3:
        raise ValueError(f"the U-Net preset {preset!r} is for images of shape (C, H, W); got shape {tuple(shape)}")
    channels, size = shape[0], shape[1]
    return UNet(unet_config(preset, size, channels, classes))
