"""Folders: those a setting names (``DDPM_DATA_DIR``, ``DDPM_RUNS_DIR``, ``DDPM_CHECKPOINTS_DIR``, read alike),
deleting one, said to have gone only when it has, and renaming a file or folder just written."""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

log = logging.getLogger(__name__)

# Windows: a virus scanner, the search indexer or a sync client (OneDrive) opens a file just written for a moment, and
# renaming it or its folder then fails ("access denied", "in use by another process"): tried again, as pip does
RENAME_TRIES = 10 if os.name == "nt" else 1
RENAME_WAIT_SECONDS = 0.1


def user_path(path: str | os.PathLike[str]) -> Path:
    """A path as a user typed it, ``~`` expanded (Windows' cmd never expands it, nor bash in ``--out=~/x``), and an
    unknown ``~user`` left as it is (`Path.expanduser` raises RuntimeError for it: a traceback)."""
    return Path(os.path.expanduser(path))


def env_path(name: str, default: str | os.PathLike[str]) -> Path:
    """The folder that environment variable ``name`` names, ``~`` expanded; ``default`` when it is unset or blank (a
    setting left empty means "not set", not the current folder)."""
    return user_path(os.environ.get(name, "").strip() or default)


def delete_folder(path: Path) -> bool:
    """Delete ``path`` and all it holds; False, and a line in the log, when some of it stays (a file in use, a
    permission): a caller tells the user only of what went."""
    shutil.rmtree(path, ignore_errors=True)
    if path.exists():
        log.warning("could not delete %s", path)
        return False
    return True


def rename(source: Path, target: Path, *, replace: bool = False) -> None:
    """``source.rename(target)`` (``replace``: over a file there), tried again for up to a second on Windows while the
    file is held (`RENAME_TRIES`): a save had failed at its last step, after a whole training run."""
    for attempt in range(RENAME_TRIES):
        try:
            (source.replace if replace else source.rename)(target)
            return
        except PermissionError:
            if attempt == RENAME_TRIES - 1:
                raise
            time.sleep(RENAME_WAIT_SECONDS)
