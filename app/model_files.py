"""Take a model home, or bring one: the Reverse tab's download and upload of a checkpoint as a .zip.

A model trained in the Train tab is kept on the server for a while only (`app.runs`: DDPM_RUNS_KEEP_HOURS, and the
browser's DDPM_MAX_RUNS_PER_USER newest); **Download** zips the chosen checkpoint (`core.checkpoint_archive`), shipped or
the browser's own, as a folder that unzips into a checkpoint directory for the CLI (``--ckpt``, ``--init-from``).
**Upload** takes such a .zip (one from here, or a directory written by ``python -m core.train``, e.g. on a GPU,
zipped), checks it whole (JSON + safetensors, nothing unpickled; weights against config) and adds it to this browser's
checkpoints, as if trained here: listed in the Reverse tab (selected) and in the Train tab's "Start from", and kept
as they are.
"""

from __future__ import annotations

import filecmp
from pathlib import Path
from typing import Any

import gradio as gr

from app import player, runs
from app.as_written import MAX_MESSAGE_CHARS, in_html
from app.errors import InputError
from app.checkpoint_access import allowed, not_allowed_error
from app.reverse_tab import ReverseControls, after_training
from app.runs import display_name
from core.checkpoint_archive import pack_checkpoint, safe_name, unpack_checkpoint, unpacked_limit
from core.checkpoints import CONFIG_FILE, WEIGHTS_FILE, CheckpointError
from core.paths import delete_folder

DOWNLOAD_LABEL = "Download this model (.zip)"
UPLOAD_LABEL = "Upload a model (.zip)"
HINT = ("Models you train or upload here are kept on this server for this browser (a reload keeps them) for "
        "{hours}, so download one to keep it. The .zip unzips into a "
        "checkpoint folder for the command line (--ckpt, --init-from); upload one, e.g. trained on a GPU with "
        "python -m core.train and zipped, to use it here.")


def download_model(request: gr.Request, path: str | None, trained: Any):
    """The chosen checkpoint as a .zip, shown in a file box (its link downloads it)."""
    if not path:
        raise InputError("Choose a checkpoint first: a shipped one, or one you trained or uploaded here.")
    if not allowed(path, trained):
        raise not_allowed_error(path, trained)
    name = display_name(path)
    folder = player.export_folder(runs.session_key(request), "model")
    try:
        archive = pack_checkpoint(path, folder / f"{safe_name(name)}.zip", name=name)  # "con.zip": not on Windows
    except (CheckpointError, OSError) as err:
        raise InputError(f"{name} could not be zipped: {err}") from None
    player.keep_only(folder)
    return gr.File(value=str(archive), visible=True)


def same_model(a: Path, b: Path) -> bool:
    """Whether two checkpoint directories hold the same weights and config, byte for byte."""
    return all(filecmp.cmp(a / name, b / name, shallow=False) for name in (WEIGHTS_FILE, CONFIG_FILE))


def upload_model(request: gr.Request, file: str | None, trained: Any) -> list[str]:
    """An uploaded .zip checked and unpacked into this browser's checkpoints; returns the page's checkpoint paths
    (those still on the server) with it last (the Reverse tab then selects it). A model the browser has already is
    selected, not kept twice: the same .zip uploaded again had been a second copy that pushed out another model."""
    if not file:
        raise InputError("No file arrived; choose a .zip of a checkpoint.")
    key = runs.owner_key(request)
    label = Path(file).name
    runs.check_room_for(unpacked_limit(Path(file).stat().st_size))  # the most it may unpack to
    try:
        path = unpack_checkpoint(file, runs.user_dir(key), prefix=runs.UPLOADED_PREFIX, label=label)
    except CheckpointError as err:
        raise InputError(f"Not uploaded: {err}") from None
    except OSError as err:  # the server's disk, not the file
        raise InputError(f"Not uploaded: {label} could not be unpacked on this server ({err.strerror or err}).") from None
    kept = [p for p in (trained or []) if isinstance(p, str) and Path(p).is_dir()]
    twin = next((Path(p) for p in runs.owner_checkpoints(key) if Path(p) != path and same_model(Path(p), path)), None)
    if twin is not None:
        delete_folder(path)
        said = f"{label} is a model you have here already, {display_name(twin)}: it is selected."
        gr.Info(in_html(said, MAX_MESSAGE_CHARS))
        return [*(p for p in kept if p != str(twin)), str(twin)]
    pruned = runs.prune_user_runs(key)
    if pruned:
        gr.Warning(in_html(f"{runs.pruned_sentence(pruned)} to make room for {display_name(path)}.", MAX_MESSAGE_CHARS))
    return [*(p for p in kept if Path(p).is_dir()), str(path)]


def build(reverse: ReverseControls) -> None:
    """Lay out the two buttons and the box of the zipped model under the Reverse tab's checkpoint choice."""
    checkpoint, trained = reverse.checkpoint, reverse.trained
    with reverse.model_slot, gr.Row():
        download_btn = gr.Button(DOWNLOAD_LABEL, size="sm", elem_id="model-download")
        upload_btn = gr.UploadButton(UPLOAD_LABEL, file_types=[".zip"], file_count="single", size="sm",
                                     elem_id="model-upload")
    with reverse.model_slot:
        gr.Markdown(HINT.format(hours=runs.keep_text()), elem_classes="hint")
        archive = gr.File(label="The model, zipped: click its name to download", visible=False, interactive=False,
                          elem_id="model-zip")
    download_btn.click(download_model, [checkpoint, trained], archive, show_progress="minimal")
    uploaded = upload_btn.upload(upload_model, [upload_btn, trained], trained, show_progress="minimal")
    # a model the page had already, and listed last, leaves the list as it was: no change event selects it, and the
    # choice had stayed on another model while a message said it was selected
    uploaded.success(after_training, [trained, checkpoint, reverse.jobs], [checkpoint, reverse.info],
                     show_progress="hidden", queue=False)
    checkpoint.change(lambda: gr.File(value=None, visible=False), None, archive, show_progress="hidden", queue=False)
