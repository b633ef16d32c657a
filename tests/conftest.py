"""Shared fixtures: the offline MNIST test split beside the repo, small deterministic settings."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _few_threads() -> None:
    """Tiny tensors: extra threads only add overhead on a 2-core machine."""
    torch.set_num_threads(1)


@pytest.fixture
def shared_data() -> Path:
    """Directory holding MNIST/raw/ with the MNIST test split (t10k files)."""
    assert (SHARED_DATA / "MNIST" / "raw").is_dir(), f"expected the MNIST test split under {SHARED_DATA}"
    return SHARED_DATA
