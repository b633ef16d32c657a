"""Where a model runs: a device named as the CLIs and configs name it ("auto", "cpu", "cuda", "cuda:1")."""

from __future__ import annotations

import torch


def resolve_device(device: str | torch.device) -> torch.device:
    """"auto" → cuda if available else cpu; "cpu" or "cuda[:N]" as given; a clear error for anything else (Apple's
    "mps" included: the trainer keeps float64 sums on its device, which MPS lacks) or for cuda without one."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {device!r}; use auto, cpu or cuda") from None
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"device {resolved.type} is not supported; use auto, cpu or cuda (on a Mac: cpu)")
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device cuda was asked for, but no CUDA GPU is available")
    return resolved
