"""Checkpoints: a directory with the weights in safetensors and everything else in JSON.

    <dir>/model.safetensors   the sampling weights (the EMA copy when training used EMA)
    <dir>/config.json         format version, model kind + config (with num_classes > 0 for a class-
                              conditional network, `core.conditioning`) + what it predicts (ε, x_0 or v;
                              see `core.prediction`; absent in older checkpoints: ε), schedule, data,
                              training, metrics
    <dir>/data.safetensors    2D models trained on given points (`DataInfo.given_as_points`) only: those
                              points (at most MAX_STORED_POINTS, model coordinates), so that the
                              checkpoint alone can show its data and measure samples against it

Nothing is ever unpickled. `save_checkpoint` writes into a temporary sibling directory and
renames it into place, so a reader never sees a half-written checkpoint and a crash never
leaves one behind. `load_checkpoint` rebuilds model and schedule from the JSON and refuses a
missing file, an unknown format version or tensors whose names/shapes do not match. A model that
predicts x_0 or v is stored as its network and loaded as its ε view, the model the samplers call.
"""

from __future__ import annotations

import glob
import json
import math
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, BinaryIO

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load, save_file
from torch import nn

from core.cli import printable, short_text
from core.conditioning import DEFAULT_P_UNCOND
from core.data import DataInfo, data_sampler
from core.devices import resolve_device
from core.mlp import MLPConfig, MLPDenoiser
from core.paths import rename
from core.prediction import as_eps_model, check_prediction, unwrap
from core.schedules import MAX_T, NoiseSchedule, schedule_from_config
from core.unet import UNet, UNetConfig

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
POINTS_FILE = "data.safetensors"
MAX_NAME_CHARS = 255  # a data set's name: a folder's (the longest a file name may be)
MAX_STORED_POINTS = 10_000  # a larger point set is stored as a random subset of this size (80 kB)
# What a run that continues from a checkpoint keeps of each earlier run (its "previous_runs")
RUN_SUMMARY_KEYS = ("command", "source", "steps_done", "batch_size", "lr", "ema_decay", "min_snr_gamma", "p_uncond",
                    "classes", "seconds", "hardware", "data_size", "seed", "warmup_steps")


class CheckpointError(ValueError):
    """A checkpoint that cannot be read: the message says which file and what is wrong."""


@dataclass
class Checkpoint:
    """A loaded checkpoint: a ready ε-predictor (eval mode), its schedule and the full JSON config."""

    path: Path
    model: nn.Module
    schedule: NoiseSchedule
    data: DataInfo
    config: dict[str, Any] = field(default_factory=dict)
    points: torch.Tensor | None = None  # 2D data given as points: those stored with the checkpoint (N, 2)

    @property
    def name(self) -> str:
        return self.path.name

    def data_sampler(self) -> Callable[[int, int], torch.Tensor] | None:
        """`core.data.data_sampler` of this checkpoint's data: its toy, or the points stored with it."""
        return data_sampler(self.data, self.points)


def model_spec(model: nn.Module) -> dict[str, Any]:
    """{"kind", "config", "prediction"} describing ``model`` (a network, or the ε view of one that predicts x_0
    or v) so that `build_model` can rebuild its network."""
    net, prediction = unwrap(model)
    if isinstance(net, MLPDenoiser):
        return {"kind": "mlp", "config": asdict(net.config), "prediction": prediction}
    if isinstance(net, UNet):
        return {"kind": "unet", "config": asdict(net.config), "prediction": prediction}
    raise ValueError(f"cannot checkpoint a model of type {type(net).__name__}; expected MLPDenoiser or UNet")


def model_prediction(config: dict[str, Any]) -> str:
    """What a checkpoint's network predicts: "eps", "x0" or "v" (checkpoints from before the choice, or a config
    without a model: "eps"; `load_checkpoint` checks the value)."""
    return config.get("model", {}).get("prediction", "eps")


def trained_min_snr_gamma(config: dict[str, Any]) -> float:
    """The Min-SNR-γ loss weighting of a checkpoint's last run (0: plain L_simple, as every run from before the option
    was recorded): what a run that continues from it trains with unless told otherwise."""
    return float(config.get("training", {}).get("min_snr_gamma", 0.0))


def model_classes(config: dict[str, Any]) -> int:
    """How many classes a checkpoint's network is conditioned on (`core.conditioning`); 0 for an unconditional one
    (every checkpoint from before class-conditional networks)."""
    return int(config.get("model", {}).get("config", {}).get("num_classes", 0))


def build_model(spec: dict[str, Any]) -> nn.Module:
    """Inverse of `model_spec`: the network (fresh weights)."""
    kind, config = spec.get("kind"), spec.get("config", {})
    if kind == "mlp":
        return MLPDenoiser(MLPConfig(**_checked_types(MLPConfig, config)))
    if kind == "unet":
        return UNet(UNetConfig(**_checked_types(UNetConfig, config)))
    raise ValueError(f"unknown model kind {kind!r}; expected mlp or unet")


def _checked_types(cls: type, config: Any) -> dict[str, Any]:
    """``config`` with each value of the JSON type of ``cls``'s field (its default's: a whole number, a number,
    true/false or a list of whole numbers), else a ValueError naming the field; the config's own checks would
    otherwise compare a string with a number."""
    if not isinstance(config, dict):
        raise ValueError(f"model.config must be a JSON object, got {config!r:.40}")
    for f in fields(cls):
        if f.name not in config:
            continue
        value, default = config[f.name], f.default
        if isinstance(default, bool):
            ok, kind = isinstance(value, bool), "true or false"
        elif isinstance(default, int):
            ok, kind = _is_int(value), "a whole number"
        elif isinstance(default, float):
            ok, kind = _is_number(value), "a number"
        else:  # a tuple of whole numbers, a list in JSON
            ok, kind = isinstance(value, list) and all(_is_int(v) for v in value), "a list of whole numbers"
        if not ok:
            raise ValueError(f"model.config.{f.name} must be {kind}, got {value!r:.40}")
    return config


def save_checkpoint(
    directory: str | Path,
    model: nn.Module,
    schedule: NoiseSchedule,
    data: DataInfo,
    *,
    training: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    points: torch.Tensor | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a checkpoint directory atomically (temp dir + rename); returns its path.

    ``points``: the training points (N, 2) of a 2D model trained on given points, in model coordinates;
    a random subset of MAX_STORED_POINTS is kept of a larger set. ``overwrite`` replaces an existing checkpoint,
    never another folder or a file (`check_target`). The files get the permissions the umask gives new files.
    """
    directory = Path(directory)
    if tuple(data.shape) != input_shape(model):  # it had been written, and refused only when loaded
        raise ValueError(f"the data has shape {tuple(data.shape)}, but the model takes {input_shape(model)}")
    if points is not None:
        points = _points_to_store(points, data)
    check_target(directory, overwrite=overwrite)
    directory.parent.mkdir(parents=True, exist_ok=True)
    config = {
        "format_version": FORMAT_VERSION,
        "model": model_spec(model),
        "schedule": schedule.to_config(),
        "data": asdict(data),
        "training": training or {},
        "metrics": metrics or {},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    weights = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in unwrap(model)[0].state_dict().items()}
    _remove_stale_temporaries(directory)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        _save_tensors(weights, tmp / WEIGHTS_FILE, {"format_version": str(FORMAT_VERSION), **trained_with(config)})
        config_text = json.dumps(without_non_finite(config), indent=2, allow_nan=False) + "\n"
        (tmp / CONFIG_FILE).write_text(config_text, encoding="utf-8")
        if points is not None:
            _save_tensors({"points": points}, tmp / POINTS_FILE)
        share_like_new_files(tmp, (tmp / CONFIG_FILE).stat().st_mode & 0o777)
        if directory.exists():  # overwrite: move the old one aside, then swap
            old = directory.with_name(f".{directory.name}.old-{os.getpid()}-{time.monotonic_ns()}")
            rename(directory, old)
            rename(tmp, directory)
            old.unlink() if old.is_symlink() else shutil.rmtree(old, ignore_errors=True)  # a link: not its target
        else:
            rename(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def _save_tensors(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> None:
    """safetensors' `save_file`, its failure to write as the OSError it is ("No space left on device"): safetensors
    raises its own SafetensorError ("Error while serializing: I/O error: … (os error 28)"), which callers that
    handle a full disk or a file-size limit had passed on as a traceback."""
    try:
        save_file(tensors, str(path), metadata=metadata)
    except SafetensorError as err:
        found = re.search(r"\(os error (\d+)\)|Os \{ code: (\d+)", str(err))  # its Display; older versions wrote its Debug
        if found is None:
            raise
        code = int(found[1] or found[2])
        raise OSError(code, os.strerror(code), str(path)) from None


def trained_with(config: dict[str, Any]) -> dict[str, str]:
    """What the weights mean beyond their shapes, written into the weights file's metadata: the noise schedule (its T
    above all) and the prediction target. Neither changes a tensor's shape, so a config.json edited afterwards (T 1000
    made 50) had loaded without a word and sampled 7 times farther from the data; `load_checkpoint` compares them."""
    return {"schedule": json.dumps(config["schedule"], sort_keys=True), "prediction": model_prediction(config)}


def _check_trained_with(config: dict[str, Any], recorded: dict[str, str], weights_path: Path) -> None:
    """Refuse a config whose schedule or prediction target differs from what its weights were saved with (``recorded``,
    the weights file's metadata; checkpoints from before the record are not checked)."""
    if "schedule" in recorded:
        try:
            saved = json.loads(recorded["schedule"])
        except (ValueError, RecursionError):  # a file made elsewhere: its JSON error had been a traceback
            saved = None
        if not isinstance(saved, dict):
            raise CheckpointError(f"{weights_path} is invalid: the schedule in its metadata is not a JSON object")
        if saved != config["schedule"]:
            ours, theirs = _schedule_words(config["schedule"], saved), _schedule_words(saved, config["schedule"])
            raise CheckpointError(
                f"{weights_path.parent / CONFIG_FILE} is invalid: its schedule ({ours}) is not the one its weights were "
                f"trained with ({theirs}); put that one back")
    if "prediction" in recorded and recorded["prediction"] != model_prediction(config):
        raise CheckpointError(
            f"{weights_path.parent / CONFIG_FILE} is invalid: it says the network predicts "
            f"{model_prediction(config)!r}, but its weights were trained to predict {recorded['prediction']!r}")


def _schedule_words(schedule: dict[str, Any], other: dict[str, Any]) -> str:
    """A schedule's name and T, and what else of it differs from ``other`` ("linear, T = 1000, beta_end = 0.5": the
    two had read alike when only a parameter differed)."""
    params, others = schedule.get("params"), other.get("params")
    differ = [f"{key} = {short_text(str(value))}" for key, value in params.items() if others.get(key) != value] \
        if isinstance(params, dict) and isinstance(others, dict) else []  # a custom schedule's T betas: 44,000 chars
    return ", ".join([f"{schedule.get('name', '?')}", f"T = {schedule.get('T', '?')}", *differ])


def without_non_finite(value: Any) -> Any:
    """``value`` (JSON-like: dicts, lists, numbers, strings) with each NaN or ±∞ float replaced by None, so that it is
    written as strict JSON (null): Python's json writes them as NaN and Infinity, which JSON itself has not, and
    other readers (JavaScript's JSON.parse, jq) refuse. A diverged run's error by t, or a range of t a short run never
    drew, is NaN; readers take null as "no value"."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: without_non_finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [without_non_finite(item) for item in value]
    return value


STALE_SECONDS = 3600  # a save's temporary folder this old was left by a killed process (a save takes seconds)


def _remove_stale_temporaries(directory: Path) -> None:
    """Remove what saves of ``directory`` killed midway left beside it (`save_checkpoint`'s ".NAME.*" folders, up to
    35 MB each, piled up), once older than `STALE_SECONDS`: a save under way now is left alone. While NAME itself is
    missing, its ".NAME.old-*" is kept: an overwrite killed between its two renames left the earlier checkpoint
    there only (`read_config` names it), and a renamed folder keeps its old time, so it had been deleted at once."""
    cutoff, kept = time.time() - STALE_SECONDS, _set_aside(directory)
    for path in directory.parent.glob(f".{glob.escape(directory.name)}.*"):
        if path in kept:
            continue
        try:
            if path.is_symlink():
                if path.lstat().st_mtime < cutoff:
                    path.unlink()
            elif path.is_dir() and path.stat().st_mtime < cutoff:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:  # gone meanwhile, or not ours to remove
            continue


def _set_aside(directory: Path) -> list[Path]:
    """The checkpoints that overwrites of a missing ``directory`` moved aside and were killed before they put the new
    one in place (`save_checkpoint`'s ".NAME.old-*"), newest first; none while ``directory`` exists."""
    if directory.exists() or directory.is_symlink():
        return []
    found = []
    for path in directory.parent.glob(f".{glob.escape(directory.name)}.old-*"):
        try:
            if (path / CONFIG_FILE).is_file():
                found.append((path.stat().st_mtime, path))
        except OSError:  # gone meanwhile
            continue
    return [path for _, path in sorted(found, reverse=True)]


def check_target(directory: str | Path, *, overwrite: bool = False) -> None:
    """A FileExistsError, before any work, where `save_checkpoint` would refuse to write ``directory``: it exists and
    ``overwrite`` is off, or it exists and is not a checkpoint (a folder without config.json, or a file), which
    ``overwrite`` must not delete."""
    directory = Path(directory)
    if not (directory.exists() or directory.is_symlink()):
        return
    if not overwrite:
        raise FileExistsError(f"{directory} already exists")
    if not (directory / CONFIG_FILE).is_file():
        raise FileExistsError(f"{directory} exists and is not a checkpoint ({CONFIG_FILE} is missing), so it is not "
                              "replaced")


def write_atomically(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """``write(file)`` into a temporary file beside ``path``, then renamed to it: a file there is replaced by a
    finished one only (written in place, a full disk or a Ctrl-C left half a file). The file gets the umask's
    permissions (`tempfile.mkstemp` would give 0o600)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}")
    try:
        with open(tmp, "xb") as file:
            write(file)
        rename(tmp, path, replace=True)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def share_like_new_files(folder: Path, file_mode: int) -> None:
    """Give ``folder`` and its files the permissions of a file newly created here (``file_mode``: the umask's
    choice, e.g. 0o644), with search permission on the folder wherever it is readable: `tempfile.mkdtemp` makes a
    folder only its owner can read (0o700), which the rename would otherwise keep."""
    for path in folder.iterdir():
        path.chmod(file_mode)
    folder.chmod(file_mode | (file_mode & 0o444) >> 2)


def _points_to_store(points: torch.Tensor, data: DataInfo) -> torch.Tensor:
    if data.kind != "2d" or points.dim() != 2 or points.shape[1] != 2 or len(points) == 0:
        raise ValueError(f"only 2D data stores its points: expected (N, 2) points, got shape {tuple(points.shape)} "
                         f"for {data.kind} data")
    points = points.detach().to("cpu", torch.float32)
    if len(points) > MAX_STORED_POINTS:
        keep = torch.randperm(len(points), generator=torch.Generator().manual_seed(0))[:MAX_STORED_POINTS]
        points = points[keep]
    return points.contiguous()


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a safetensors file, read into memory. `safetensors.torch.load_file` maps the file instead, and
    its tensors keep it mapped: on Windows a mapped file cannot be deleted or replaced, so a cached model's folder
    could be neither pruned nor overwritten."""
    return load(path.read_bytes())


def _load_points(directory: Path) -> torch.Tensor | None:
    path = directory / POINTS_FILE
    if not path.is_file():
        return None
    try:
        points = _read_tensors(path).get("points")
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{path} is not a readable safetensors file ({err})") from None
    if points is None or points.dim() != 2 or points.shape[1] != 2 or len(points) == 0 \
            or not torch.isfinite(points).all():
        raise CheckpointError(f"{path} must hold finite training points, a tensor 'points' of shape (N, 2)")
    return points.float()


def read_config(directory: str | Path) -> dict[str, Any]:
    """The checkpoint's JSON config, checked for presence and format version."""
    directory = Path(directory)
    config_path = directory / CONFIG_FILE
    if not directory.is_dir():
        if directory.is_file() and directory.suffix.lower() == ".zip":  # the app's Download
            raise CheckpointError(f"{directory} is a .zip: unzip it first, and give the folder it holds")
        aside = _set_aside(directory)
        raise CheckpointError(f"no checkpoint directory at {directory}" + (
            f" (a save that replaced it was cut short: its earlier version is {aside[0]}; rename that back to "
            f"{directory.name} to use it)" if aside else ""))
    if not config_path.is_file():
        raise CheckpointError(f"{directory} is not a checkpoint: {CONFIG_FILE} is missing")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        where = f"{err.msg[0].lower()}{err.msg[1:]} at line {err.lineno}, column {err.colno}"
        raise CheckpointError(f"{config_path} is not readable JSON ({where})") from None
    except UnicodeDecodeError:
        raise CheckpointError(f"{config_path} is not readable JSON (not UTF-8 text)") from None
    except OSError as err:
        raise CheckpointError(f"{config_path} is not readable JSON ({err.strerror or err})") from None
    except ValueError as err:  # e.g. an integer of more than 4,300 digits, which Python refuses to read
        raise CheckpointError(f"{config_path} is not readable JSON ({err})") from None
    except RecursionError:  # json's parser recurses: 100,000 nested brackets had been a traceback everywhere
        raise CheckpointError(f"{config_path} is not a checkpoint's config (its JSON is nested too deeply)") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{config_path} does not hold a JSON object")
    version = config.get("format_version")
    if version is None:  # another kind of model (e.g. checkpoints/classifiers/mnist, the FID's feature network)
        raise CheckpointError(f"{directory} is not a diffusion checkpoint: its {CONFIG_FILE} has no format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{config_path}: format version {version!r} is not supported (expected {FORMAT_VERSION})")
    problem = config_problem(config)
    if problem:
        raise CheckpointError(f"{config_path} is invalid: {problem}")
    data = config["data"]
    for key in ("name", "source"):  # printed by the commands, shown by the app (`core.cli.printable`)
        if isinstance(data.get(key), str):
            data[key] = printable(data[key])
    return config


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def config_problem(config: dict[str, Any]) -> str | None:
    """What is wrong with the layout of a checkpoint's config (a JSON object), or None: the types every reader of
    a config relies on (model, schedule, data, training, metrics), so that a hand-edited or uploaded config is
    refused here, in one sentence, rather than failing later in whatever reads it. The values themselves (the
    model's sizes, the schedule's parameters) are checked when `load_checkpoint` builds them."""
    sections = {name: config.get(name, {}) for name in ("model", "schedule", "data", "training", "metrics")}
    for name in ("model", "schedule", "data"):
        if name not in config:
            return f"its {name!r} section is missing"
    for name, section in sections.items():
        if not isinstance(section, dict):
            return f"its {name!r} must be a JSON object, not {type(section).__name__}"
    model, schedule, data, training = sections["model"], sections["schedule"], sections["data"], sections["training"]
    if model.get("kind") not in ("mlp", "unet") or not isinstance(model.get("config", {}), dict):
        return f"model kind {model.get('kind')!r} is not mlp or unet, or its config is not an object"
    classes = model.get("config", {}).get("num_classes", 0)
    if not _is_int(classes) or classes < 0:
        return f"num_classes must be a whole number ≥ 0, got {classes!r}"
    try:
        check_prediction(model.get("prediction", "eps"))
    except ValueError as err:
        return str(err)
    if not isinstance(schedule.get("name"), str) or not _is_int(schedule.get("T")) or not 2 <= schedule["T"] <= MAX_T:
        return f"its schedule needs a name and a whole T from 2 to {MAX_T}, got {schedule.get('name')!r}, T = {schedule.get('T')!r}"
    if not isinstance(schedule.get("params", {}), dict):
        return "the schedule's params must be a JSON object"
    shape = data.get("shape")
    if not isinstance(data.get("name"), str) or data.get("kind") not in ("2d", "image") or not isinstance(shape, list) \
            or not shape or not all(_is_int(n) and n > 0 for n in shape):
        return f"its data needs a name, a kind (2d or image) and a shape of whole numbers, got {data!r:.120}"
    if shape != [2] if data["kind"] == "2d" else len(shape) != 3:  # a U-Net's said to be 2D had escaped the image caps
        return f"its data's shape {shape} does not fit its kind {data['kind']!r}: [2] for 2d, [C, H, W] for image"
    if len(data["name"]) > MAX_NAME_CHARS:  # a folder's name at most; 100,000 characters had filled every message
        return f"its data's name must be at most {MAX_NAME_CHARS} characters, got {len(data['name']):,}"
    mean, scale = data.get("mean", [0.0, 0.0]), data.get("scale", 1.0)
    if not isinstance(mean, list) or len(mean) != 2 or not all(_is_number(m) for m in mean) \
            or not _is_number(scale) or not scale > 0:
        return f"its data's mean must be two numbers and its scale a positive number, got {mean!r:.40}, {scale!r:.40}"
    runs = training.get("previous_runs", [])
    if not isinstance(runs, list) or not all(isinstance(run, dict) for run in runs):
        return "training.previous_runs must be a list of JSON objects"
    for run in [*runs, training]:
        steps = run.get("steps_done", 0)
        if not _is_int(steps) or steps < 0:
            return f"steps_done must be a whole number ≥ 0, got {steps!r}"
    loss_by_t = training.get("loss_by_t", [])
    if not isinstance(loss_by_t, list) or not all(v is None or isinstance(v, (int, float)) for v in loss_by_t):
        return "training.loss_by_t must be a list of numbers"
    return None


def load_checkpoint(directory: str | Path, *, device: str | torch.device = "cpu") -> Checkpoint:
    """Rebuild model (eval mode, on ``device``: "auto", "cpu", "cuda" or "cuda:N") and schedule from a checkpoint
    directory. Torch's global random state is left as it was (the network's fresh weights are drawn, then replaced)."""
    directory = Path(directory)
    device = resolve_device(device)
    config = read_config(directory)
    weights_path = directory / WEIGHTS_FILE
    if not weights_path.is_file():
        raise CheckpointError(f"{directory} is not complete: {WEIGHTS_FILE} is missing")
    try:
        spec = config["model"]
        shapes, recorded = _read_header(weights_path)
        _check_weights(spec, shapes, weights_path)
        _check_trained_with(config, recorded, weights_path)
        with torch.random.fork_rng(devices=[]):
            model = build_model(spec)
        schedule = schedule_from_config(config["schedule"])
        prediction = check_prediction(model_prediction(config))
        raw = config["data"]
        data = DataInfo(
            name=raw["name"], kind=raw["kind"], shape=tuple(raw["shape"]),
            mean=tuple(raw.get("mean", (0.0, 0.0))), scale=float(raw.get("scale", 1.0)),
            source=str(raw.get("source", "")),
        )
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise CheckpointError(f"{directory / CONFIG_FILE} is invalid: {err}") from None
    if data.shape != input_shape(model):
        raise CheckpointError(f"{directory / CONFIG_FILE} is invalid: its data has shape {data.shape}, but its model "
                              f"takes {input_shape(model)}")
    try:
        state = _read_tensors(weights_path)
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{weights_path} is not a readable safetensors file ({err})") from None
    _check_values(state, weights_path)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:  # names and shapes matched: a dtype that cannot be copied into float32
        raise CheckpointError(f"{weights_path} cannot be loaded into its network ({err})") from None
    points = _load_points(directory) if data.kind == "2d" else None
    return Checkpoint(path=directory, model=as_eps_model(model, schedule, prediction).to(device).eval(),
                      schedule=schedule, data=data, config=config, points=points)


def input_shape(model: nn.Module) -> tuple[int, ...]:
    """The shape of one x_t that ``model`` (a network or its ε view) takes: (2,) for the MLP, (C, H, W) for the U-Net."""
    net, _ = unwrap(model)
    if isinstance(net, UNet):
        return (net.config.channels, net.config.image_size, net.config.image_size)
    return (2,)


def _check_values(state: dict[str, torch.Tensor], weights_path: Path) -> None:
    """Refuse weights that no trained network has: integers (copied into float32 they had given samples scored 1,900
    times the data's distance), and NaN or infinite numbers (every sample NaN, said only once sampled)."""
    if whole := next((name for name, value in state.items() if not value.is_floating_point()), None):
        raise CheckpointError(f"{weights_path} holds {str(state[whole].dtype).removeprefix('torch.')} weights "
                              f"({whole}): a network's weights are floating-point numbers")
    if broken := next((name for name, value in state.items() if not torch.isfinite(value).all()), None):
        raise CheckpointError(f"{weights_path} holds weights that are not finite numbers (NaN or infinite), e.g. "
                              f"{broken}: the training that made them diverged")


def _read_header(weights_path: Path) -> tuple[dict[str, tuple[int, ...]], dict[str, str]]:
    """(each tensor's shape, the metadata) of a weights file, from its header only."""
    try:
        with safe_open(str(weights_path), framework="pt") as weights:
            return {key: tuple(weights.get_slice(key).get_shape()) for key in weights.keys()}, weights.metadata() or {}
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{weights_path} is not a readable safetensors file ({err})") from None


# Why a weights file's tensors may not be those of the network its config describes. The networks' layouts changed
# on the project's first day, under the same format_version (the MLP gained `first_raw` and `skip` in 80e16c0, the
# U-Net's upsampling blocks their present widths in e56ae0b): checkpoints from before then are refused with this.
OTHER_LAYOUT = ("The weights are for another layout of the network: another program's, an edited config's, or one "
                "of DDPM Explorer's first day (2026-11-23), before its MLP and U-Net took their present form; train "
                "the model again.")


def _check_weights(spec: dict[str, Any], stored: dict[str, tuple[int, ...]], weights_path: Path) -> None:
    """Refuse a weights file whose tensor names or shapes (``stored``, read from its header) differ from the network
    ``spec`` describes, building the network on the meta device: a config describing a huge network allocates
    nothing."""
    with torch.device("meta"):
        expected = {key: tuple(value.shape) for key, value in build_model(spec).state_dict().items()}
    missing, unexpected = sorted(set(expected) - set(stored)), sorted(set(stored) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{weights_path} does not match its config: missing {missing[:3]}, unexpected "
                              f"{unexpected[:3]}. {OTHER_LAYOUT}")
    for key, shape in stored.items():
        if shape != expected[key]:
            raise CheckpointError(f"{weights_path}: tensor {key} has shape {shape}, the config expects "
                                  f"{expected[key]}. {OTHER_LAYOUT}")


def model_name(config: dict[str, Any]) -> str:
    """The model a checkpoint was trained with: its preset name ("mlp", "small", ...), else its kind."""
    return config.get("training", {}).get("model", config["model"]["kind"])


def training_history(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The runs that made a checkpoint, oldest first, each summarised by RUN_SUMMARY_KEYS: what a
    run that continues from it records as ``training["previous_runs"]``."""
    training = config.get("training", {})
    return [*training.get("previous_runs", []), {k: training[k] for k in RUN_SUMMARY_KEYS if k in training}]


def steps_trained(history: list[dict[str, Any]]) -> int:
    """The optimiser steps of the runs of a `training_history`, in all (a run that recorded none counts 0)."""
    return sum(run["steps_done"] for run in history if isinstance(run.get("steps_done"), int))


def null_label_share(config: dict[str, Any]) -> float | None:
    """For a class-conditional checkpoint, the share of its training examples that carried ∅ ("no class"): the
    steps-weighted mean over its runs of each run's p_uncond, or 1 for a run of the network before it was made
    conditional (`core.conditioning.with_classes` gives ∅ a zero vector, so that run trained what ∅ now computes).
    0 means ε̂(x_t, t, ∅) was never trained, which classifier-free guidance relies on for every s ≠ 1. A run says
    how many classes it was trained on ("classes"); one from before that was recorded counts as conditional when it
    recorded a p_uncond, or when it is the last (then with the default p_uncond if it recorded none). None for an
    unconditional checkpoint or an unknown step count."""
    if not model_classes(config):
        return None
    history = training_history(config)
    weighted = total = 0.0
    for index, run in enumerate(history):
        steps = run.get("steps_done")
        if not isinstance(steps, int) or steps < 0:
            return None
        classes, p_uncond = run.get("classes"), run.get("p_uncond")
        conditional = classes > 0 if isinstance(classes, int) else ("p_uncond" in run or index == len(history) - 1)
        if not conditional:
            share = 1.0
        else:
            share = float(p_uncond) if isinstance(p_uncond, (int, float)) else DEFAULT_P_UNCOND
        weighted, total = weighted + steps * share, total + steps
    return weighted / total if total else None


def list_checkpoints(root: str | Path) -> list[Path]:
    """Checkpoint directories directly under ``root`` (those with a readable config), sorted by name."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for child in sorted(root.iterdir()):
        if child.name.startswith(".") or not child.is_dir():
            continue
        try:
            read_config(child)
        except CheckpointError:
            continue
        if (child / WEIGHTS_FILE).is_file():
            found.append(child)
    return found
