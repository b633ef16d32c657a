"""A checkpoint as one .zip file: take a model trained in the app home, or bring one (trained with the CLI, on a
GPU) to the app.

The archive holds one folder named after the checkpoint with its files (`CHECKPOINT_FILES`: config.json,
model.safetensors and, for a 2D model trained on given points, data.safetensors), so that, unzipped, it is a
checkpoint directory for ``--ckpt`` and ``--init-from``.

`unpack_checkpoint` is written for archives from anyone (the upload of a public Space): it reads only those three
names, at the archive's top level or in one folder (any other entry is ignored, and no entry's path is used to
write), refuses an archive whose files would unpack to more than ``max_bytes`` (a zip bomb) whatever its headers
claim, unpacks into a temporary sibling directory, loads the result with `core.checkpoints.load_checkpoint`
(JSON + safetensors, nothing unpickled; the weights are checked against the config) so that a broken checkpoint
is refused whole, and only then renames it into place.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from core.checkpoints import (
    CONFIG_FILE, POINTS_FILE, WEIGHTS_FILE, CheckpointError, load_checkpoint, share_like_new_files, write_atomically,
)
from core.paths import rename

CHECKPOINT_FILES = (CONFIG_FILE, WEIGHTS_FILE, POINTS_FILE)
MAX_UNPACKED_BYTES = 128 * 2**20  # the largest preset ("base", 3 × 32 × 32) weighs 38 MB in float32
# Trained weights hardly compress (float32 noise: a zip of a checkpoint is 0.9 of its size), so an archive may
# unpack to at most this many times its own size, and to SMALL_UNPACKED_BYTES whatever its size: 72 kB of zeros had
# unpacked to 70 MB, kept for a day, upload after upload
MAX_UNPACK_RATIO = 20
SMALL_UNPACKED_BYTES = 4 * 2**20
_CHUNK = 2**20
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_WINDOWS_DEVICE = re.compile(r"CON|PRN|AUX|NUL|COM[0-9]|LPT[0-9]", re.IGNORECASE)


def pack_checkpoint(directory: str | Path, archive: str | Path, *, name: str | None = None) -> Path:
    """Write the checkpoint ``directory`` as the zip ``archive`` (its files in a folder ``name``, by default the
    directory's), atomically (temp file + rename); returns the archive's path. The weights are stored, not
    deflated: float32 weights shrink by a few per cent at most."""
    directory, archive = Path(directory), Path(archive)
    folder = safe_name(name or directory.name)
    files = [directory / name for name in CHECKPOINT_FILES if (directory / name).is_file()]
    if not (directory / CONFIG_FILE).is_file() or not (directory / WEIGHTS_FILE).is_file():
        raise CheckpointError(f"{directory} is not a complete checkpoint ({CONFIG_FILE} and {WEIGHTS_FILE} expected)")
    archive.parent.mkdir(parents=True, exist_ok=True)

    def write(file: BinaryIO) -> None:
        with zipfile.ZipFile(file, "w") as zf:
            for path in files:
                method = zipfile.ZIP_DEFLATED if path.suffix == ".json" else zipfile.ZIP_STORED
                zf.write(path, f"{folder}/{path.name}", compress_type=method)

    write_atomically(archive, write)
    return archive


def safe_name(name: str, default: str = "checkpoint") -> str:
    """``name`` as a directory name: runs of other characters than letters, digits, '.', '_' and '-' become one '-',
    at most 64 characters, no leading dot; ``default`` when nothing is left; a name that Windows keeps for a device
    (CON, nul.zip, COM1.v2 …: no such folder or download can be made there) gets a '_' after it."""
    cleaned = _UNSAFE_NAME.sub("-", name).strip(".-")[:64].strip(".-")
    stem, dot, rest = cleaned.partition(".")
    if _WINDOWS_DEVICE.fullmatch(stem):
        cleaned = f"{stem}_{dot}{rest}"[:64].rstrip(".-")
    return cleaned or default


def _checkpoint_members(zf: zipfile.ZipFile, label: str) -> tuple[str, dict[str, zipfile.ZipInfo]]:
    """(the folder holding the checkpoint, "" for the top level; {file name: its entry}) of an archive."""
    folders: dict[str, dict[str, zipfile.ZipInfo]] = {}
    for info in zf.infolist():
        parts = PurePosixPath(info.filename.replace("\\", "/")).parts
        if info.is_dir() or not parts or len(parts) > 2 or parts[-1] not in CHECKPOINT_FILES:
            continue
        folders.setdefault(parts[0] if len(parts) == 2 else "", {})[parts[-1]] = info
    holding = sorted(folder for folder, files in folders.items() if CONFIG_FILE in files)
    if not holding:
        deeper = next((info.filename for info in zf.infolist()  # where it lies, if inside the zip's own folders
                       if (path := PurePosixPath(info.filename.replace("\\", "/"))).name == CONFIG_FILE
                       and ".." not in path.parts and not path.is_absolute()), None)
        where = (f"; its {CONFIG_FILE} lies deeper, at {deeper}: zip the checkpoint folder itself (e.g. cd to its "
                 "parent and zip -r NAME.zip NAME)") if deeper else ""
        raise CheckpointError(f"{label} holds no checkpoint: expected {CONFIG_FILE} and {WEIGHTS_FILE}, at its top "
                              "level or in one folder (a .zip downloaded from DDPM Explorer, or a zipped directory "
                              f"written by python -m core.train){where}")
    if len(holding) > 1:
        shown = ", ".join(folder or "(top level)" for folder in holding[:4])
        raise CheckpointError(f"{label} holds {len(holding)} checkpoints ({shown}); zip one at a time")
    folder = holding[0]
    if WEIGHTS_FILE not in folders[folder]:
        raise CheckpointError(f"{label} is not complete: {WEIGHTS_FILE} is missing beside {CONFIG_FILE}")
    return folder, folders[folder]


def _copy_limited(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, budget: int, limit: int,
                  label: str) -> int:
    """Unpack one entry to ``target``, reading at most ``budget`` bytes (of the archive's ``limit``) whatever its
    header says; returns the bytes written."""
    written = 0
    with zf.open(info) as source, open(target, "wb") as sink:
        while chunk := source.read(_CHUNK):
            written += len(chunk)
            if written > budget:
                raise CheckpointError(f"{label} unpacks to more than {limit / 2**20:.0f} MB; a checkpoint of this tool "
                                      "is smaller, and its trained weights hardly compress")
            sink.write(chunk)
    return written


def unpacked_limit(archive_bytes: int, max_bytes: int = MAX_UNPACKED_BYTES) -> int:
    """The most bytes an archive of ``archive_bytes`` may unpack to (`MAX_UNPACK_RATIO`, `SMALL_UNPACKED_BYTES`)."""
    return min(max_bytes, max(SMALL_UNPACKED_BYTES, MAX_UNPACK_RATIO * archive_bytes))


def unpack_checkpoint(archive: str | Path, parent: str | Path, *, name: str | None = None, prefix: str = "",
                      label: str | None = None, max_bytes: int = MAX_UNPACKED_BYTES) -> Path:
    """Unpack the checkpoint in ``archive`` into a new directory under ``parent`` and return its path.

    The directory is ``prefix`` + ``name`` (by default the archive's folder, else the archive's file name; made
    safe by `safe_name`), with "-2", "-3", ... added when taken. ``label`` names the archive in error messages
    (default: its file name). Raises `CheckpointError` (one sentence, naming ``label``, never the temporary
    directory) for anything that is not one complete, loadable checkpoint; nothing is left behind then.
    """
    archive, parent = Path(archive), Path(parent)
    label = label or archive.name
    parent.mkdir(parents=True, exist_ok=True)
    tmp: Path | None = None
    try:
        with zipfile.ZipFile(archive) as zf:
            folder, members = _checkpoint_members(zf, label)
            if any(info.flag_bits & 0x1 for info in members.values()):  # zipfile would raise a bare RuntimeError
                raise CheckpointError(f"{label} is encrypted (a .zip with a password); zip the checkpoint folder "
                                      "without one")
            tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=parent))
            limit = budget = unpacked_limit(archive.stat().st_size, max_bytes)
            for file_name, info in members.items():
                budget -= _copy_limited(zf, info, tmp / file_name, budget, limit, label)
        load_checkpoint(tmp)
        share_like_new_files(tmp, (tmp / CONFIG_FILE).stat().st_mode & 0o777)  # as a trained one (mkdtemp: 0o700)
    except CheckpointError as err:
        _remove(tmp)
        message = str(err) if tmp is None else str(err).replace(str(tmp), label)
        raise CheckpointError(message) from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError, ValueError) as err:
        _remove(tmp)
        raise CheckpointError(f"{label} is not a readable .zip file ({err})") from None
    except BaseException:
        _remove(tmp)
        raise
    base = prefix + safe_name(name or folder or archive.stem)
    target, n = parent / base, 2
    while target.exists():
        target, n = parent / f"{base}-{n}", n + 1
    try:
        rename(tmp, target)
    except BaseException:
        _remove(tmp)
        raise
    return target


def _remove(directory: Path | None) -> None:
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)
