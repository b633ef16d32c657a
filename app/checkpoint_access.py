"""The checkpoints a session may use: the shipped ones and its browser's own (trained or uploaded), listed with
labels a student can read, checked on every use (one browser never reaches another's), loaded through a small shared
cache, and described from their config (data, schedule, model, training, warnings) without loading them."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar


from app import formulas, memo, runs
from app.as_written import MAX_MESSAGE_CHARS, in_markdown
from app.errors import InputError
from app.runs import display_name
from core.checkpoints import (
    Checkpoint, CheckpointError, list_checkpoints, load_checkpoint, model_classes, model_prediction, null_label_share,
    read_config, steps_trained, training_history,
)
from core.paths import env_path
from core.prediction import PREDICTION_SYMBOLS
from core.sampler import chain_timesteps, number_of_steps, plan_steps
from core.schedules import NoiseSchedule, schedule_from_config
from core.presets import EVAL_POINTS
from core.devices import resolve_device


REPO_CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"
CACHE_SIZE = 4  # loaded checkpoints kept in memory
DEFAULT_CHECKPOINT = "swiss_roll_linear"  # shown first when shipped (see `default_checkpoint`)
NO_CHECKPOINTS = (
    "No checkpoint yet: none is shipped in checkpoints/ on this server and you have not trained one. "
    "Train a model in the **Train** tab (a few seconds to a minute) and it will appear here."
)


def shipped_root() -> Path:
    return env_path("DDPM_CHECKPOINTS_DIR", REPO_CHECKPOINTS)


def trained_paths(trained: Any) -> list[Path]:
    return [Path(p) for p in (trained or []) if isinstance(p, str) and Path(p).is_dir()]


def checkpoint_choices(trained: Any) -> list[tuple[str, str]]:
    """(label, path) for the shipped checkpoints, then this session's trained and uploaded ones (newest last)."""
    choices = [(f"{p.name} (shipped)", str(p)) for p in list_checkpoints(shipped_root()) if runs.is_utf8(p.name)]
    choices += [(session_label(p), str(p)) for p in trained_paths(trained)]
    return choices


def session_label(path: Path, today: str | None = None) -> str:
    """How a checkpoint of this session is listed, short enough to be read in the dropdown (its full name starts the
    text below it): "NAME (uploaded)" (`app.model_files`); a run trained here by its data, schedule and T and the
    time it started, "swiss_roll-linear-T1000 (trained 19:26:55)", the day only when not ``today`` ("20261204",
    the server's date by default): "(trained 2026-12-03 19:26)". A name not of `runs.RUN_NAME`: "NAME (trained here)"."""
    if path.name.startswith(runs.UPLOADED_PREFIX):
        return f"{display_name(path)} (uploaded)"
    match = runs.RUN_NAME.fullmatch(path.name)
    if match is None:
        return f"{path.name} (trained here)"
    day, clock = match["day"], match["clock"]
    when = (f"{clock[:2]}:{clock[2:4]}:{clock[4:]}" if day == (today or time.strftime("%Y%m%d"))
            else f"{day[:4]}-{day[4:6]}-{day[6:]} {clock[:2]}:{clock[2:4]}")
    again = f" #{match['again'][1:]}" if match["again"] else ""
    return f"{match['base']} (trained {when}{again})"


def default_checkpoint(choices: list[tuple[str, str]]) -> str | None:
    """The checkpoint shown first: the swiss roll of Ho et al.'s linear schedule (the classic 2D picture, and
    quick to sample) when shipped, else the first listed."""
    paths = [path for _, path in choices]
    return next((path for path in paths if Path(path).name == DEFAULT_CHECKPOINT), paths[0] if paths else None)


def allowed(path: str, trained: Any) -> bool:
    """True when this session may use ``path``: a shipped checkpoint or one it trained."""
    return path in {value for _, value in checkpoint_choices(trained)}


def not_allowed_error(path: str, trained: Any) -> InputError:
    """Why ``path`` cannot be used (`allowed` is False): one of the page's own models that the server deleted since
    (the browser's newest `runs.max_runs_per_user` are kept, each for `runs.keep_text`; another tab's new model can
    push it out), or a path that is not the session's."""
    if path in (trained or []) and not Path(path).is_dir():
        kept = runs.max_runs_per_user()
        return InputError(f"{display_name(path)} is no longer on the server: it keeps a browser's {kept} newest "
                          f"model{'s' if kept != 1 else ''} for {runs.keep_text()}, and a newer one took its place. "
                          "Press ↻ Refresh and pick another.")
    return InputError("That checkpoint is not available in this session; pick one from the list.")


def files_stamp(path: str | Path) -> tuple[str, int, int]:
    """Which checkpoint is at ``path`` now: the folder and the modification times (ns) of its two files. A run's or
    an upload's folder name can come back for another model once the first is pruned, and a config's "created"
    (to the second, and not in every config) can match; this cannot. OSError where a file is missing."""
    path = Path(path)
    return (str(path.resolve()), *((path / name).stat().st_mtime_ns for name in ("config.json", "model.safetensors")))


Value = TypeVar("Value")


def kept_for_checkpoint(checkpoint: Checkpoint, what: str, make: Callable[[], Value], *parts: object) -> Value:
    """`memo.SAMPLES.remembered` of ``make()`` for ``what`` of the checkpoint's files (`files_stamp`) and ``parts``;
    made and not kept where its folder went since the model was loaded (a run pruned, an upload swept)."""
    try:
        stamp = files_stamp(checkpoint.path)
    except OSError:
        return make()
    return memo.SAMPLES.remembered(memo.digest(what, stamp, *parts), make)


def kept_with_seconds(checkpoint: Checkpoint, what: str, make: Callable[[], tuple[Any, float]],
                      *parts: object) -> tuple[Any, float | None]:
    """`kept_for_checkpoint` of ``make()``'s (tensor, seconds): a copy of the tensor (the kept one stays as it was
    made), and the seconds it took, or None where it was kept from an earlier call (`formulas.time_taken`)."""
    made = []

    def make_now() -> tuple[Any, float]:
        made.append(True)
        return make()

    tensor, seconds = kept_for_checkpoint(checkpoint, what, make_now, *parts)
    return tensor.clone(), seconds if made else None


class CheckpointCache:
    """A thread-safe LRU of loaded checkpoints, keyed by `files_stamp`."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple, Checkpoint] = OrderedDict()

    def get(self, path: Path) -> Checkpoint:
        try:
            key = files_stamp(path)
        except OSError:
            raise CheckpointError(f"{path} is not a complete checkpoint (config.json or model.safetensors missing)") from None
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        checkpoint = load_checkpoint(path, device=resolve_device("auto"))
        checkpoint.model.requires_grad_(False)
        checkpoint.model.register_forward_pre_hook(runs.check_sampling_time)  # a job's time limit
        with self._lock:
            self._items[key] = checkpoint
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return checkpoint

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


CACHE = CheckpointCache()


def load(path: str, trained: Any) -> Checkpoint:
    if not path:
        raise InputError("Choose a checkpoint first." if checkpoint_choices(trained)
                         else "No checkpoint to sample from yet: train one in the Train tab.")
    if not allowed(path, trained):
        raise not_allowed_error(path, trained)
    try:
        return CACHE.get(Path(path))
    except CheckpointError as err:  # in the model's name, as `describe` says it (the path is the server's)
        raise InputError("The checkpoint cannot be used: " + str(err).replace(str(Path(path)), display_name(path))) \
            from None
    except (OSError, RuntimeError, ValueError) as err:
        raise InputError(f"The checkpoint cannot be used: {type(err).__name__}: {err}") from None


def describe(path: str | None, trained: Any, *, in_reverse_tab: bool = True) -> str:
    """Markdown about a checkpoint, from its config only (no model load); ``in_reverse_tab``: also say where a
    conditional model is sampled how (in the tab, unconditionally; guided, in its guidance panel)."""
    if not path:
        return NO_CHECKPOINTS if not checkpoint_choices(trained) else "Choose a checkpoint."
    try:
        config = read_config(path)
    except CheckpointError as err:  # in the model's name: its folder's path names the browser's secret owner token
        if not Path(path).is_dir():
            return f"⚠ {in_markdown(not_allowed_error(path, [path]).words, MAX_MESSAGE_CHARS)}"
        return f"⚠ {in_markdown(str(err).replace(str(Path(path)), display_name(path)), MAX_MESSAGE_CHARS)}"
    data, schedule = config.get("data", {}), config.get("schedule", {})
    predicts = model_prediction(config)

    parts = [
        f"**{in_markdown(display_name(path))}** — data: {in_markdown(data.get('name', '?'))} "
        f"({in_markdown(data.get('kind', '?'))})",
        f"schedule: {in_markdown(schedule.get('name', '?'))}, T = {in_markdown(schedule.get('T', '?'))}",
        f"model: {in_markdown(config.get('model', {}).get('kind', '?'))}, predicts "
        f"{PREDICTION_SYMBOLS.get(predicts, in_markdown(predicts))}",
    ]
    share = null_label_share(config)
    if model_classes(config):
        learnt = "" if not share else f", ∅ in {share:.0%} of its training examples"
        where = " (classifier-free guidance below; unconditional here)" if in_reverse_tab else ""
        parts.append(f"conditional on {model_classes(config)} classes{learnt}{where}")
    history = training_history(config)
    steps = steps_trained(history)
    if steps:
        parts.append(f"trained {formulas.steps_text(steps)}" + (f" in {len(history)} runs" if len(history) > 1 else ""))
    metrics = config.get("metrics") or {}
    parts += [metric_words(key, value, schedule.get("T")) for key, value in metrics.items()
              if isinstance(value, (int, float))]
    notes = untrained_null_note(config)
    try:
        built = schedule_from_config(schedule)
    except (KeyError, TypeError, ValueError):  # an uploaded config's: loading it says what is wrong
        built = None
    if built is not None:
        notes += _noise_not_reached(built) + _few_step_warning(data.get("kind"), built, predicts)
    return " · ".join(parts) + notes


def _noise_not_reached(schedule: NoiseSchedule) -> str:
    """A closing paragraph for a model whose chain does not reach noise (the CLI, Forward, Schedules and Train tabs
    warn of such a schedule; its samples had scored far from the data here without a word why); else ""."""
    if schedule.reaches_noise:
        return ""
    return (f"\n\n⚠ ᾱ_T = {formulas.number(schedule.alpha_bar_T)}: this model's chain does not reach noise, yet "
            "sampling starts from pure noise N(0, I), which it never learnt to denoise: its samples miss the data "
            "(a model trained on a longer chain or larger β does not).")


def metric_words(key: str, value: float, T: Any) -> str:
    """A metric of a checkpoint's config in words: the SW ratio `core.train` measures after a 2D run, with how it was
    measured (a Generate with other samples gives another value: 0.77–1.56 over four seeds of 1,500 samples on
    swiss_roll_linear, 0.86–1.22 of 2,000); other keys as they are."""
    if key == "sliced_wasserstein_ratio_ddpm":
        return (f"SW ratio after training: {value:.2f} (DDPM over all {T} steps, {EVAL_POINTS:,} samples; 1: as close "
                "as another draw of the data; other samples move it)")
    return f"{in_markdown(key)}: {value:.3g}"


# a conditional model whose ∅ was never trained (`core.checkpoints.null_label_share` 0: trained with p_uncond = 0)
UNTRAINED_NULL = ("⚠ This model never saw ∅ (no class) in training (p_uncond = 0): ε̂(x_t, t, ∅) is what its initial "
                  "weights make of the ∅ label, so the samples it draws without a class (the tab's, and guidance scale "
                  "s = 0) are not the data's, and classifier-free guidance, which uses ε̂(x_t, t, ∅) at every scale "
                  "s ≠ 1, pushes away from it instead of from the data. s = 1 is the conditional model alone and "
                  "stays sound.")


def untrained_null_note(config: dict) -> str:
    """`UNTRAINED_NULL` as a closing paragraph for a checkpoint (its config) whose ∅ was never trained; else ""."""
    return f"\n\n{UNTRAINED_NULL}" if null_label_share(config) == 0 else ""


def capped_end(schedule: NoiseSchedule) -> bool:
    """Whether the schedule ends in a capped β_T (cosine, sigmoid: 0.999), whose last step divides the SNR by about
    1,000 and multiplies a model's error at t = T by hundreds in a deterministic or strided chain."""
    return float(schedule.betas[-1]) >= 0.5


def _few_step_warning(kind: str | None, schedule: NoiseSchedule, predicts: str = "eps") -> str:
    """For 2D data on a schedule ending in a capped β_T: which samplers throw points far out, and why (for an ε
    model; an x₀ or v model gives x̂₀ directly and escapes it)."""
    if kind != "2d" or not capped_end(schedule):
        return ""
    if predicts != "eps":
        return (f"\n\nThis schedule ends at β_T = {float(schedule.betas[-1]):.3g}, where an ε network's error at t = T "
                "reaches x̂₀ multiplied by 1/√ᾱ_T and throws DDIM's points far out; this network predicts "
                f"{PREDICTION_SYMBOLS.get(predicts, '?')}, which gives x̂₀ directly, so DDIM and short chains are "
                "sound here too.")
    steps = number_of_steps(schedule.T, None, "ddim")  # DDIM's usual chain, evenly in t
    gain = plan_steps(schedule, chain_timesteps(schedule, steps, "ddim", "uniform"), "ddim")[0].eps_error_gain  # T → s
    return (
        f"\n\n⚠ This schedule ends at β_T = {float(schedule.betas[-1]):.3g}. For 2D data use **DDPM**, over all T "
        "steps or over fewer spaced **evenly in log-SNR**. Steps spaced evenly in t multiply the model's error at t = T "
        f"by about √(ᾱ_s/ᾱ_T) (×{gain:,.0f} here for {steps} DDIM steps: |√(1 − ᾱ_s) − √(ᾱ_s/SNR_T)|) and, with no x̂₀ "
        "clipping for 2D data, throw points far out; DDIM, which adds no noise to wash such errors out, throws some out "
        "whatever the spacing."
    )
