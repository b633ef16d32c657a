"""Folders a setting names: ``DDPM_DATA_DIR``, ``DDPM_RUNS_DIR``, ``DDPM_CHECKPOINTS_DIR`` are read alike."""

from __future__ import annotations

import os
from pathlib import Path


def env_path(name: str, default: str | os.PathLike[str]) -> Path:
    """The folder that environment variable ``name`` names, ``~`` expanded; ``default`` when it is unset or blank (a
    setting left empty means "not set", not the current folder)."""
    return Path(os.environ.get(name, "").strip() or default).expanduser()
