"""Per-user training runs and the server-side caps a host sets for them.

A public Space is shared: each browser owns at most one training run at a time, and only that
browser can see, stop or overwrite it. Finished models are written under the browser's own
directory, so one user's checkpoints never show up for another.

A browser is known by its owner token: a random secret kept in its localStorage (a `gr.BrowserState`),
which the page hands over when it loads (`adopt_owner`). A reload keeps the token, so the page gets
its models back; a page that has not handed one over (a bare API call) is keyed by its session
(Gradio's ``session_hash``). Checkpoints are kept for DDPM_RUNS_KEEP_HOURS after they were written
(`sweep_expired_checkpoints`), not only while a page is open.

Environment variables (read when a run starts, so a host can change them without a code edit; but
DDPM_HEAVY_CONCURRENCY, read once at start-up, when Gradio fixes its concurrency limits):

    DDPM_RUNS_DIR             where trained checkpoints go: <dir>/<digest of the owner>/<data>-<schedule>-
                              T<T>-<start time> (default: runs/)
    DDPM_MAX_TRAIN_STEPS      most optimiser steps one run may take; more is clamped, with a note
                              (default: 20000)
    DDPM_MAX_TRAIN_SECONDS    most seconds of training one run may take; the run then ends with
                              reason "time limit" and is saved (default: 900)
    DDPM_MAX_RUNS_PER_USER    checkpoints kept per browser; the oldest are deleted (default: 5)
    DDPM_RUNS_KEEP_HOURS      hours a checkpoint is kept after it was written (default: 24)
    DDPM_HEAVY_CONCURRENCY    training runs that train at once across all users, and sampling jobs
                              that run at once, each in its own queue (default: 1); the others wait
    DDPM_MAX_SAMPLE_SECONDS   most seconds one sampling job may take; it then stops with a message
                              (default: 600)
    DDPM_MAX_RUNS_GB          most gigabytes all browsers' models may take in the runs folder; an upload
                              beyond it is refused with a message (default: 5)

No model is kept here: a `Run` holds a `Trainer` (and its view: the training data) only while it
trains; the registry forgets both when the run ends.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import math
import os
import re
import sys
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.context import LocalContext

from app.as_written import in_markdown
from app.errors import InputError
from app.throttle import Throttle
from core.checkpoints import CONFIG_FILE, WEIGHTS_FILE
from core.paths import delete_folder, env_path

DEFAULT_MAX_TRAIN_STEPS = 20_000
DEFAULT_MAX_TRAIN_SECONDS = 900.0  # the default MNIST run (2,000 steps) takes 5–11 min on 2 CPU cores
DEFAULT_MAX_SAMPLE_SECONDS = 600.0  # DDPM-1000 of 64 MNIST digits takes about a minute on 2 CPU cores
DEFAULT_MAX_RUNS_PER_USER = 5
DEFAULT_RUNS_DIR = "runs"
DEFAULT_MAX_RUNS_GB = 5.0  # all browsers' models together: 130 of the largest uploads (38 MB)
DEFAULT_RUNS_KEEP_HOURS = 24.0
OWNER_STORAGE_KEY = "ddpm-explorer-owner"  # the localStorage entry of the browser's owner token
RUN_STAMP = "%Y%m%d-%H%M%S"  # the end of a trained run's directory name, <data>-<schedule>-T<T>-<stamp>: when it was saved
RUN_NAME = re.compile(r"(?P<base>.+)-(?P<day>\d{8})-(?P<clock>\d{6})(?P<again>-\d+)?")  # -2, -3: saved that second
UPLOADED_PREFIX = "uploaded-"  # a browser's checkpoint directory uploaded as a .zip (`app.model_files`), not trained
# Two queues, DDPM_HEAVY_CONCURRENCY jobs at once each: training runs in one, the jobs that sample or measure a
# network in the other. One queue for both had put a Generate of a few seconds behind every training run waiting
# for its turn (thirty in a lecture); now it runs beside a run, which yields it the CPU (`yield_cpu_to_the_pages`).
TRAINING_CONCURRENCY_ID = "training"
SAMPLING_CONCURRENCY_ID = "sampling"
TRAINING_NICENESS = 10  # a training thread's nice value: its CPU time goes to anything at 0 that wants it


class SettingError(ValueError):
    """A DDPM_* environment variable the host set to something this server cannot use (`check_settings`)."""


def _env_number(name: str, default: float, *, minimum: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingError(f"{name}={raw!r} is not a number") from None
    if not value >= minimum:  # NaN too
        raise SettingError(f"{name}={raw!r} must be at least {minimum:g}")
    return value


def check_settings() -> None:
    """Read every number setting once, at start-up: SettingError for the first one that is not a number or too small
    (read later, in a visitor's Start, it had stopped the server from starting with a message for visitors)."""
    for read in (max_train_steps, max_train_seconds, max_runs_per_user, runs_keep_hours, heavy_concurrency,
                 max_sample_seconds, max_runs_gb):
        read()


def runs_folder_problem() -> str | None:
    """Why this server cannot save trained or uploaded models (its runs folder cannot be made or written), or None."""
    root = runs_root()
    if root.exists() and not root.is_dir():  # mkdir would say only "File exists"
        return f"its runs folder {str(root)!r} is a file, not a folder"
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=root):
            pass
    except OSError as err:
        return f"its runs folder {str(root)!r} cannot be written ({err.strerror or err})"
    return None


def check_can_save() -> None:
    """InputError before a run when its model could not be saved: it had trained, then said it could not be saved."""
    problem = runs_folder_problem()
    if problem is not None:
        raise InputError(f"This server cannot save trained models: {problem}. The host can set DDPM_RUNS_DIR to a "
                         "writable folder.")


def max_train_steps() -> int:
    return int(_env_number("DDPM_MAX_TRAIN_STEPS", DEFAULT_MAX_TRAIN_STEPS, minimum=1))


def max_train_seconds() -> float:
    return _env_number("DDPM_MAX_TRAIN_SECONDS", DEFAULT_MAX_TRAIN_SECONDS, minimum=0.1)


def max_runs_per_user() -> int:
    return int(_env_number("DDPM_MAX_RUNS_PER_USER", DEFAULT_MAX_RUNS_PER_USER, minimum=1))


def max_runs_gb() -> float:
    return _env_number("DDPM_MAX_RUNS_GB", DEFAULT_MAX_RUNS_GB, minimum=0.001)


def check_room_for(upload_bytes: int) -> None:
    """InputError when the runs folder, with an upload that may unpack to ``upload_bytes``, would hold more than
    `max_runs_gb`: each browser keeps its five models, but every API client is a browser of its own, and six of them
    had filled 370 MB in 8 s, kept for a day."""
    used = sum(folder_bytes(owner) for owner in owner_folders())  # not the CLI's runs beside them
    if used + upload_bytes > max_runs_gb() * 1e9:
        raise InputError(f"Not uploaded: this server's room for visitors' models is full ({used / 1e9:.2f} of "
                         f"{max_runs_gb():g} GB, its host's DDPM_MAX_RUNS_GB). Models are deleted "
                         f"{keep_text()} after they were written; try again later.")


def folder_bytes(folder: Path) -> int:
    """The bytes of the files under ``folder`` (0 when it is missing; files deleted meanwhile are passed over)."""
    total = 0
    for parent, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(parent, name)).st_size
            except OSError:
                continue
    return total


def runs_keep_hours() -> float:
    return _env_number("DDPM_RUNS_KEEP_HOURS", DEFAULT_RUNS_KEEP_HOURS, minimum=0.01)


def keep_text() -> str:
    """How long checkpoints are kept, in words: "24 hours"."""
    hours = runs_keep_hours()
    return f"{hours:g} hour{'s' if hours != 1 else ''}"


def heavy_concurrency() -> int:
    """The training runs that train at once, and the sampling jobs that run at once (each their own queue). Read once
    when the UI is built (Gradio fixes concurrency limits then)."""
    return int(_env_number("DDPM_HEAVY_CONCURRENCY", 1, minimum=1))


def heavy_event() -> dict:
    """The options of an event that samples or measures a network: in the sampling queue, with a small progress bar
    (read when the UI is built, like `heavy_concurrency`)."""
    return dict(concurrency_id=SAMPLING_CONCURRENCY_ID, concurrency_limit=heavy_concurrency(), show_progress="minimal")


def yield_cpu_to_the_pages(niceness: int = TRAINING_NICENESS) -> bool:
    """Lower the calling thread's CPU priority to ``niceness`` (Linux, where a nice value is per thread; the threads
    torch starts from it for its parallel work inherit it), so that a training run takes only the CPU time nothing
    else wants: the scrubs and Generates of every page, and the browser itself when the app runs on the lecturer's own
    laptop, are served first (nice 10 weighs 110 against 1024 at nice 0), and the run goes at full speed when the
    machine is otherwise idle. A thread already nicer keeps its value (lowering it needs privileges). Returns whether
    the thread now runs at ``niceness`` or nicer; False elsewhere than Linux (macOS's setpriority would renice the
    whole server)."""
    if sys.platform != "linux":
        return False
    thread = threading.get_native_id()
    try:
        if os.getpriority(os.PRIO_PROCESS, thread) < niceness:
            os.setpriority(os.PRIO_PROCESS, thread, niceness)
    except OSError:
        return False
    return True


def duration_text(seconds: float) -> str:
    """A duration in words: "50 s", "3 min 07 s"."""
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def _pace(event: Any) -> float:
    """A run's steps per second so far, from its latest `TrainEvent` (0 before its first step)."""
    return event.step / event.elapsed if event.elapsed > 0 else 0.0


def seconds_left(event: Any, max_seconds: float) -> float:
    """A run's time left, from its latest `TrainEvent`: the steps left at its pace so far, within its time limit; NaN
    before its first step."""
    rate = _pace(event)
    eta = (event.total_steps - event.step) / rate if rate > 0 else float("nan")
    return min(eta, max(0.0, max_seconds - event.elapsed)) if math.isfinite(eta) else eta


def step_at_time_limit(event: Any, max_seconds: float) -> int | None:
    """The step near which the time limit ends a run, at its pace so far; None when its steps end it first (or
    before its first step)."""
    end = int(_pace(event) * max_seconds)
    return end if 0 < end < event.total_steps else None


def soonest_end(training: list[Run]) -> float:
    """Seconds until the first of these training runs should end: its pace so far, within the time limit (a run
    still loading counts its whole limit)."""
    cap = max_train_seconds()
    lefts = [seconds_left(run.progress, cap) if run.progress is not None else cap for run in training]
    return min((left for left in lefts if math.isfinite(left)), default=cap)


def first_end_text(training: list[Run], now: float | None = None) -> str:
    """When the first of these training runs should end (`soonest_end`), in words, with the time on the server's
    clock, which stays true while the words stay on a page (a bare "in about 3 min 12 s" still said so a minute
    later)."""
    limit = f"a run here takes {duration_text(max_train_seconds())} at most"
    if not any(run.progress is not None and _pace(run.progress) > 0 for run in training):  # all still loading
        it, its = ("It has", "its") if len(training) == 1 else ("They have", "their")
        return f"{it} only just started: {its} pace, and so {its} end, is known after {its} first steps; {limit}."
    soonest = soonest_end(training)
    clock = time.strftime("%H:%M:%S %Z", time.localtime((time.time() if now is None else now) + soonest)).strip()
    return f"The first should end in about {duration_text(soonest)} (at {clock} on the server's clock); {limit}."


def heavy_click(button: gr.Button, fn: Any, inputs: Any, outputs: Any, **options: Any) -> Any:
    """``button.click(fn, …)`` in the sampling queue (`heavy_event`), within the time limit and stoppable from its page
    (`time_limited`). Returns the job's event."""
    return button.click(time_limited(fn, len(outputs), button._id), inputs, outputs, **heavy_event(), **options)


def max_sample_seconds() -> float:
    return _env_number("DDPM_MAX_SAMPLE_SECONDS", DEFAULT_MAX_SAMPLE_SECONDS, minimum=0.1)


_JOB = threading.local()  # the deadline and the page of the sampling job this thread runs (`time_limited`), or none
_STOPS: dict[str, set[int]] = {}  # per page, the buttons whose pending jobs its Stop stops (`request_stop`)
_STOPS_LOCK = threading.Lock()


STOP, STOPPING = "Stop", "Stopping…"  # the Stop button's labels: while jobs are pending, while they stop
STOPPED = "Stopped, as you asked: what was shown before stays."


class JobStopped(Exception):
    """A sampling job stopped by its page's Stop (`request_stop`): it ends with a note, and what it would have filled
    keeps what it showed. Not a ValueError nor a gr.Error: panels that word a ValueError of the engine anew (the
    noise map's) had turned it into an "Error" toast, and their failure handlers had run."""


def time_limited(fn: Callable[..., Any], outputs: int = 1, button: int | None = None) -> Callable[..., Any]:
    """``fn``, a sampling job of ``outputs`` outputs, that the network stops (`check_sampling_time`) once it has run
    `max_sample_seconds`, or when its page asks (`request_stop`: the job of ``button``, the id of the button that
    starts it; its outputs then stay as they were, and a toast says so). A job runs whole in one worker thread
    (``fn`` returns, it yields nothing), whose deadline, page and button this sets. Without the limit, a visitor's
    uploaded model of 256 × 256 pixels and T = 10,000 had held the one sampling queue for days, and the job went on
    after its page had gone; without Stop, a DDPM chain of 1,000 steps for 64 digits (a minute on 2 cores) held it
    for everyone until it ended."""
    if inspect.isgeneratorfunction(fn):
        raise TypeError(f"{fn.__name__} yields: its steps would not run in one thread")

    @functools.wraps(fn)  # Gradio reads the signature (gr.Request, gr.Progress) and the API name from ``fn``
    def limited(*args: Any, **kwargs: Any) -> Any:
        _JOB.limit = max_sample_seconds()
        _JOB.deadline = time.monotonic() + _JOB.limit
        _JOB.page, _JOB.button = page_of(LocalContext.request.get(None)), button  # the request Gradio calls ``fn`` for
        try:
            stop_if_asked()  # Stop pressed while the job waited in the queue
            return fn(*args, **kwargs)
        except JobStopped:
            gr.Info(STOPPED)
            return gr.skip() if outputs == 1 else tuple(gr.skip() for _ in range(outputs))
        finally:
            forget_stop(_JOB.page, button)  # spent, also by a job that went on past it (a measure it can do without)
            _JOB.deadline = _JOB.page = _JOB.button = None

    return limited


def request_stop(request: gr.Request, jobs: Any) -> gr.Button:
    """Stop: the page's jobs pending now (``jobs``, the ids of the buttons that started them: each button has one at
    most) stop, each at its next network call or, waiting in the queue, as it starts; a job clicked later runs. The
    button says "Stopping…" until the page's jobs have ended. Nothing while none is pending: a Stop with none had
    stopped the next click's job."""
    page = page_of(request)
    if not (page and jobs):
        return gr.Button(visible=False)
    with _STOPS_LOCK:
        _STOPS.setdefault(page, set()).update(int(k) for k in jobs)
    return gr.Button(STOPPING, interactive=False)


def forget_stop(page: str | None, button: int | None = None) -> None:
    """Drop the ``page``'s Stop of ``button``'s job (it ended), or of every job (the page has none left, or went)."""
    with _STOPS_LOCK:
        buttons = _STOPS.get(page)
        if buttons is not None:
            buttons.discard(button)
            if button is None or not buttons:
                del _STOPS[page]


def stop_if_asked() -> None:
    """Raise `JobStopped` if this thread's job's page pressed Stop for it: at every network call until the job ends
    (as the time limit does), so that a job that goes on past one (a measure it can do without) stops at the next."""
    page = getattr(_JOB, "page", None)
    if page is not None and getattr(_JOB, "button", None) in _STOPS.get(page, ()):
        raise JobStopped(page)


def check_sampling_time(module: Any, inputs: Any) -> None:
    """A forward pre-hook (`torch.nn.Module.register_forward_pre_hook`) of the app's loaded networks: an InputError
    once the sampling job of this thread (`time_limited`) has run out of time, or `JobStopped` once its page pressed
    Stop."""
    stop_if_asked()
    deadline = getattr(_JOB, "deadline", None)
    if deadline is not None and time.monotonic() > deadline:  # at every call after it: a job that goes on after an
        # error it can do without (a measure of the data's range) stops at its next network call
        took = duration_text(_JOB.limit) if _JOB.limit >= 1 else f"{_JOB.limit:g} s"  # not "0 s"
        raise InputError(f"Stopped after {took}: this server gives a sampling job at most that "
                         "long (its host's DDPM_MAX_SAMPLE_SECONDS). Ask for fewer samples or fewer steps.")


def runs_root() -> Path:
    return env_path("DDPM_RUNS_DIR", DEFAULT_RUNS_DIR)


_SAFE_KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_OWNER_FOLDER = re.compile(r"^k[0-9a-f]{32}$")  # `key_folder`'s names


def owner_folders() -> list[Path]:
    """The browsers' folders in the runs folder (`key_folder`'s names), the only ones the app sweeps and counts: the
    README's CLI runs share the runs folder (e.g. runs/2024/mnist), and had been deleted with the expired ones."""
    root = runs_root()
    try:
        return [folder for folder in root.iterdir() if _OWNER_FOLDER.match(folder.name) and folder.is_dir()]
    except OSError:  # none yet
        return []


def page_of(request: Any) -> str | None:
    """The page (Gradio's session hash) of a request; None for a call without one (a bare API call, a test)."""
    return getattr(request, "session_hash", None) or None


def session_key(request: Any) -> str:
    """This page's key (a safe directory name), from ``gr.Request.session_hash``: for the page's own files (exports),
    and for its runs until the page has handed over its browser's owner token (`owner_key`).

    A call without a session (e.g. a bare API call) gets a fresh random key: it can run, but
    nobody else can stop it or see its checkpoints.
    """
    raw = page_of(request)
    if not raw:
        return "nosession-" + uuid.uuid4().hex[:16]
    raw = str(raw)
    if _SAFE_KEY.match(raw):
        return raw
    return "h" + hashlib.sha256(raw.encode()).hexdigest()[:32]


def user_dir(key: str) -> Path:
    """The folder of a key's checkpoints, named by a digest of the key (`key_folder`)."""
    if not _SAFE_KEY.match(key):
        raise ValueError(f"unsafe session key {key!r}")
    return runs_root() / key_folder(key)


def key_folder(key: str) -> str:
    """The name of a key's folder: a digest of it, not the key. A browser's key is its owner token, the secret that
    `adopt_owner` hands its models to, and a checkpoint's path reaches its page (the dropdown's value, an API
    answer): a folder named by the token gave anyone who saw a path every model of that browser."""
    return "k" + hashlib.sha256(key.encode()).hexdigest()[:32]


def display_name(path: str | Path) -> str:
    """A checkpoint's name as shown: its directory's, less the mark of an upload (`UPLOADED_PREFIX`)."""
    return Path(path).name.removeprefix(UPLOADED_PREFIX)


def bold_name(path: str | Path) -> str:
    """A checkpoint's name as shown (`display_name`), in bold: the first words of a panel's text (markdown)."""
    return f"**{in_markdown(display_name(path))}**"


def pruned_sentence(pruned: list[Path], *, will: bool = False) -> str:
    """What `prune_user_runs` deleted (or, ``will``, is about to delete), said to the user ("This server keeps your 5
    newest models: the oldest, X, is deleted"), for a run's or an upload's message to go on with."""
    kept = max_runs_per_user()
    return (f"This server keeps your {kept} newest model{'s' if kept != 1 else ''}: the oldest, "
            f"{', '.join(display_name(p) for p in pruned)}, {'will be' if will else 'is'} deleted")


def pushed_out_by_next(key: str) -> list[Path]:
    """The checkpoints of a key that `prune_user_runs` will delete once one more is saved (oldest first)."""
    kept = [Path(p) for p in owner_checkpoints(key)]
    return kept[: max(0, len(kept) + 1 - max_runs_per_user())]


def prune_user_runs(key: str, keep: int | None = None) -> list[Path]:
    """Delete all but the newest ``keep`` checkpoint directories of a key (a browser); returns those deleted."""
    keep = max_runs_per_user() if keep is None else keep
    runs = [Path(p) for p in owner_checkpoints(key)]  # the models listed, as `pushed_out_by_next` counts them
    return [path for path in runs[: max(0, len(runs) - keep)] if delete_folder(path)]


def owner_checkpoints(key: str) -> list[str]:
    """The checkpoint directories kept for ``key`` (trained or uploaded), oldest first. A name that is not UTF-8 (the
    app writes none; a host may copy one in) is passed over: a page cannot be sent it, and it had hidden every model
    of the browser. So is a folder without a checkpoint's two files: listed as a model, it had pushed out a good one."""
    directory = user_dir(key)
    if not directory.is_dir():
        return []
    paths = [p for p in directory.iterdir() if not p.name.startswith(".") and is_utf8(p.name)
             and all((p / name).is_file() for name in (CONFIG_FILE, WEIGHTS_FILE))]
    return [str(p) for p in sorted(paths, key=lambda p: p.stat().st_mtime)]


def is_utf8(name: str) -> bool:
    """Whether a file name read from the disk is text (bytes that are not UTF-8 come as surrogates, which no page or
    JSON can carry)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


CHECKPOINTS_SWEEP = Throttle(60.0)  # page loads sweep at most once a minute: 30 ms over a thousand owners' folders


def sweep_expired_checkpoints(now: float | None = None) -> list[Path]:
    """Delete every checkpoint written more than `runs_keep_hours` ago (and the leftovers of an interrupted save), then
    the owners' directories that nothing was written to for as long; returns the checkpoints deleted. Owners with a
    run under way are left alone."""
    cutoff = (time.time() if now is None else now) - runs_keep_hours() * 3600
    removed: list[Path] = []
    busy = REGISTRY.active_folders()
    for owner in owner_folders():
        if owner.name in busy:
            continue
        try:
            idle = owner.stat().st_mtime < cutoff  # nothing written to it since the cutoff
            paths = list(owner.iterdir())
        except OSError:  # deleted meanwhile (its last model replaced by an upload's pruning, say)
            continue
        for path in paths:
            try:
                expired = path.is_dir() and path.stat().st_mtime < cutoff
            except OSError:  # deleted meanwhile
                continue
            if expired and delete_folder(path):
                removed.append(path)
        if idle:
            try:
                owner.rmdir()  # only when empty
            except OSError:
                pass
    return removed


# ----- owners: a browser's token, linked to its pages ---------------------------------------------

_OWNER_TOKEN = re.compile(r"^o[0-9a-f]{32}$")
SESSIONS_KEPT = 1000  # the pages whose sessions Gradio keeps (`app.LAUNCH_OPTIONS`), the least recently used going
# session_hash of a page -> its browser's owner token, while Gradio keeps the session: the most recently used first
# 2 × SESSIONS_KEPT (Gradio drops a session pushed out by newer ones without a word to `forget_page`)
_page_owners: OrderedDict[str, str] = OrderedDict()
_open_pages: set[str] = set()  # the pages among them that have not been closed
_closed_at: dict[str, float] = {}  # the pages among them closed (or reloaded) lately -> when (time.monotonic())
# a request that comes from a closed page within this long is its last, sent as it closed (a Start, then a reload at
# once); one that comes later is from a page that lived on (its connection had dropped and come back)
RELOAD_RACE_SECONDS = 10.0
_pages_lock = threading.Lock()


def adopt_owner(request: Any, token: Any) -> str:
    """Link this page to its browser's owner ``token`` (from `gr.BrowserState`), or to a fresh one when the browser
    has none or a malformed one; returns the token, for the browser to keep. From now on `owner_key` gives it, until
    Gradio drops the page's session (`forget_page`)."""
    if not (isinstance(token, str) and _OWNER_TOKEN.match(token)):
        token = "o" + uuid.uuid4().hex
    page = page_of(request)
    if page:
        with _pages_lock:
            _page_owners[str(page)] = token
            _page_owners.move_to_end(str(page))
            _open_pages.add(str(page))
            while len(_page_owners) > 2 * SESSIONS_KEPT:
                gone = _page_owners.popitem(last=False)[0]
                _open_pages.discard(gone)
                _closed_at.pop(gone, None)
    return token


def page_open(page: str | None) -> bool:
    """Whether the page of that session has loaded (`adopt_owner`) and not yet closed (`page_closed`)."""
    with _pages_lock:
        return page is not None and page in _open_pages


def page_was_closed(page: str | None) -> bool:
    """Whether the page of that session loaded and was closed or reloaded in the last `RELOAD_RACE_SECONDS` (an API
    client's session, which never loads a page, was not). A page heard from after that lived on: it is open again."""
    with _pages_lock:
        if page is None or page not in _closed_at:
            return False
        if time.monotonic() - _closed_at[page] < RELOAD_RACE_SECONDS:
            return True
        del _closed_at[page]
        _open_pages.add(page)
        return False


def owner_key(request: Any) -> str:
    """The key of this browser's runs and checkpoints: its owner token once the page has handed it over
    (`adopt_owner`), else the session's key (`session_key`)."""
    page = page_of(request)
    with _pages_lock:
        token = _page_owners.get(str(page)) if page else None
        if token is not None:
            _page_owners.move_to_end(str(page))
    return token or session_key(request)


def page_closed(request: gr.Request) -> None:
    """`demo.unload`: the page was closed or reloaded. Its run, if any, is cut off (`RunRegistry.page_closed`). The
    page keeps its owner until Gradio drops its session, so that an event of it still under way finds its run."""
    page = page_of(request)
    if not page:
        return
    with _pages_lock:  # first: a Start under way either sees the page closed (`page_was_closed`) or is cut off below
        _open_pages.discard(str(page))
        _closed_at[str(page)] = time.monotonic()
    REGISTRY.page_closed(owner_key(request), str(page))


def forget_page(page: Any) -> None:
    """`gr.State(delete_callback=...)` of the page's session_hash: Gradio dropped the session (about an hour after
    the page closed); its link to its owner goes too."""
    with _pages_lock:
        _page_owners.pop(str(page), None)
        _open_pages.discard(str(page))
        _closed_at.pop(str(page), None)
    forget_stop(str(page))  # a Stop of a page closed while its job waited, which never started


class RunBusy(RuntimeError):
    """This browser already has a run waiting or training."""


class PageClosed(RuntimeError):
    """A Start came from a page that had already been closed or reloaded (a reload right after Start)."""


@dataclass
class Run:
    """One training run of one browser (``key``), started by one of its pages (``page``: the session_hash, if any).
    ``trainer`` is set once training starts."""

    key: str
    page: str | None = None
    trainer: Any = None
    started: bool = False
    ticket: str = field(default_factory=lambda: uuid.uuid4().hex)  # names a reservation to the Start that made it
    since: float = field(default_factory=time.monotonic)  # when its Start reserved it: the queue's order
    stop_requested: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    # its page went before it ended (not by Stop); cleared by a page that takes it over or says so, and by Stop
    cut_off: bool = False
    view: Any = None  # what a page needs to show it as it trains (`app.train_tab.LiveView`), once it trains
    left_at: float | None = None  # when the page that showed it went, while it trained (`RunRegistry.page_left`)
    checkpoint: Path | None = None  # where the run's model was saved (set before ``done``)
    progress: Any = None  # its latest `TrainEvent` (step, total steps, seconds elapsed), while it trains
    notes: list[str] = field(default_factory=list)  # the warnings its Start gave, repeated while it waits for a slot
    message: str = ""  # how it ended, for the UI
    reason: str = ""  # "finished", "stopped", "time limit", "diverged", "error", or "unsaved" (its save failed)
    final_preview: Any = None  # the UI's picture of samples from the saved weights, once ``previewed`` is set
    samples_awaited: bool = False  # its page's preview promises samples, and none has come yet (set by `train_run`)
    previewed: threading.Event = field(default_factory=threading.Event)  # set after ``done``, by the run's thread
    # set when the page shows other data in the preview after ``done``, or the browser's next run starts training: the
    # final preview must not replace them
    preview_replaced: threading.Event = field(default_factory=threading.Event)

    def request_stop(self) -> None:
        self.stop_requested.set()
        trainer = self.trainer
        if trainer is not None:
            trainer.stop()


# A run whose page went while it trained (closed, reloaded, or its connection dropped: Gradio reloads a page whose
# connection comes back) trains on this long for a page of its browser to take it over; then it stops and is saved
LEFT_RUN_SECONDS = 90.0
LAST_RUNS_KEPT = 256  # ended runs remembered (one per browser, the newest): each holds its final preview
# a reservation that no open page waits on (a bare API call's `/prepare_run` that no `/train_run` followed) is dropped
# once it is this old: it had held its key for good, and counted as a waiting run in every other visitor's wait text
ORPHAN_SECONDS = 60.0


class RunRegistry:
    """At most one unfinished run per key (a browser); thread-safe. Each key's last ended run is remembered, for a
    reloaded page or another tab of the browser to tell how it ended, for the `LAST_RUNS_KEPT` keys whose runs ended
    last (a public server sees a new key per visitor: unbounded, they had grown for good)."""

    def __init__(self, kept: int = LAST_RUNS_KEPT) -> None:
        self._lock = threading.Lock()
        self._active: dict[str, Run] = {}
        self._last: OrderedDict[str, Run] = OrderedDict()
        self._kept = kept

    def _ended(self, run: Run) -> None:
        """Remember ``run`` as its key's last (the lock held), forgetting the key whose run ended longest ago."""
        self._last[run.key] = run
        self._last.move_to_end(run.key)
        while len(self._last) > self._kept:
            self._last.popitem(last=False)

    def _drop_orphans(self) -> None:
        """Drop (the lock held) each reservation older than `ORPHAN_SECONDS` that has not started and whose page is not
        open (`page_open`). A page's own waits as long as the page stays; an API client's `/train_run`, should it still
        come, trains under a new reservation (`claim`). `page_open` takes the pages' lock inside the registry's: the
        one order in which the two locks are ever nested."""
        cutoff = time.monotonic() - ORPHAN_SECONDS
        for key, run in list(self._active.items()):
            if not run.started and run.since < cutoff and not page_open(run.page):
                del self._active[key]
                run.done.set()

    def reserve(self, key: str, page: str | None = None) -> Run:
        """A new waiting run for ``key``, started by ``page``; RunBusy if the key has one waiting or training,
        PageClosed if ``page`` has gone (its reservation had blocked the reloaded page's Start for a minute, with
        "under way in another tab")."""
        with self._lock:
            self._drop_orphans()
            if key in self._active:
                raise RunBusy(key)
            if page_was_closed(page):
                raise PageClosed(page)
            run = Run(key, page)
            self._active[key] = run
            return run

    def _hand_over_preview(self, key: str) -> None:
        """(The lock held.) A new run of ``key`` takes the preview: its last run's final preview, drawn seconds after
        it ended, must not replace the new run's (it had, mid-run, with its status and loss plot)."""
        if (last := self._last.get(key)) is not None:
            last.preview_replaced.set()

    def claim(self, key: str, ticket: str | None = None, page: str | None = None) -> Run:
        """The run that is about to train: the key's waiting reservation, or a new one (started by ``page``); with the
        ``ticket`` of a reservation that was stopped while it waited, that run, stopped (Stop pressed right after
        Start, before Gradio could cancel a training event it had not yet queued): the caller ends it at once.

        RunBusy if a run of this key is already training, or waits under another ticket (another tab's Start).
        """
        with self._lock:
            run = self._active.get(key)
            stopped = self._last.get(key)
            if ticket is not None and (run is None or run.ticket != ticket) and stopped is not None \
                    and stopped.ticket == ticket and not stopped.started:
                stopped.started = True  # ended once
                return stopped
            if run is None:
                run = Run(key, page)
                self._active[key] = run
            elif run.started or (ticket is not None and run.ticket != ticket):
                raise RunBusy(key)
            run.started = True
            self._hand_over_preview(key)
            return run

    def others(self, key: str) -> tuple[list[Run], list[Run]]:
        """The unfinished runs of other keys: (training, waiting for a slot)."""
        with self._lock:
            self._drop_orphans()
            unfinished = [run for other, run in self._active.items() if other != key]
        return [run for run in unfinished if run.started], [run for run in unfinished if not run.started]

    def active(self, key: str) -> Run | None:
        with self._lock:
            return self._active.get(key)

    def active_folders(self) -> set[str]:
        """The folder names (`key_folder`) of the keys with a run under way or waiting."""
        with self._lock:
            return {key_folder(key) for key in self._active}

    def last(self, key: str) -> Run | None:
        """The key's most recent run (finished or not)."""
        with self._lock:
            return self._active.get(key) or self._last.get(key)

    def stop(self, key: str) -> Run | None:
        """Stop ``key``'s run (only that browser's). A run still waiting for a slot is dropped."""
        with self._lock:
            run = self._active.get(key)
            if run is None:
                last = self._last.get(key)
                if last is not None and last.reason == "loading":  # ended as Stop cancelled its stream, Stop behind
                    last.cut_off = False
                    last.stop_requested.set()
                return last
            run.request_stop()
            # Stop cancels the page's stream, which may close before the stop comes: the page did not go
            run.left_at, run.cut_off = None, False
            if not run.started:  # waiting in the queue: it will never train
                run.message = "Stopped before it started."
                del self._active[key]
                self._ended(run)
                run.done.set()
            return run

    def page_closed(self, key: str, page: str) -> None:
        """The page that started ``key``'s run was closed or reloaded: the run is marked ``cut_off``. One still waiting
        for a slot is dropped (the queue dropped its event with the page); one training trains on for a while, for a
        page of the browser to take it over (`page_left`, which its streaming event's end calls)."""
        with self._lock:
            run = self._active.get(key)
            if run is None or run.page != page:
                return
            run.cut_off = not run.stop_requested.is_set()  # a Stop, then a reload at once: the page had said so
            if not run.started:
                run.stop_requested.set()  # should its queued event still come, `claim` hands it back stopped
                del self._active[key]
                self._ended(run)
                run.done.set()

    def stop_all(self) -> list[Run]:
        """Ask every unfinished run to stop (the server stops); returns them."""
        with self._lock:
            unfinished = list(self._active.values())
        for run in unfinished:
            run.request_stop()
        return unfinished

    def page_left(self, run: Run) -> bool:
        """The page showing ``run`` went while it trained (Gradio ended its streaming event): the run trains on, for
        `LEFT_RUN_SECONDS`, for a page of its browser to take it over (`take_over`), and then stops (and is saved),
        ``cut_off`` (which `take_over` clears). Whether it trains on: not once it has ended or been stopped, nor a run
        of a session without an owner token (a bare API call's), which no page can take over."""
        with self._lock:
            if run.done.is_set() or run.stop_requested.is_set() or not _OWNER_TOKEN.match(run.key):
                return False
            stamp = run.left_at = time.monotonic()
            run.cut_off = True
        timer = threading.Timer(LEFT_RUN_SECONDS, self._stop_if_still_left, (run, stamp))
        timer.daemon = True
        timer.start()
        return True

    def _stop_if_still_left(self, run: Run, stamp: float) -> None:
        with self._lock:  # not if taken over meanwhile (and perhaps left again since), stopped, or ended by itself
            if run.left_at != stamp or run.done.is_set() or run.stop_requested.is_set():
                return
            run.stop_requested.set()  # within the lock: a `take_over` now refuses it
        run.request_stop()

    def take_over(self, run: Run, page: str) -> bool:
        """``page`` shows ``run`` from now on, if the page that showed it went (`page_left`) and it still trains;
        whether it does."""
        with self._lock:
            if run.left_at is None or run.done.is_set() or run.stop_requested.is_set():
                return False
            run.page, run.left_at, run.cut_off = page, None, False
            return True

    def release(self, key: str, ticket: str | None = None) -> bool:
        """Drop the key's waiting reservation (with ``ticket``, only that one), if it has one that has not started (its
        start failed); whether it had."""
        with self._lock:
            run = self._active.get(key)
            if run is None or run.started or (ticket is not None and run.ticket != ticket):
                return False
            del self._active[key]
            run.done.set()
            return True

    def finish(self, run: Run) -> None:
        """Mark ``run`` done and forget its trainer and its view (the weights are on disk by now; the view holds the
        training data: 220 MB for MNIST, for each of the `LAST_RUNS_KEPT` runs remembered)."""
        with self._lock:
            if self._active.get(run.key) is run:
                del self._active[run.key]
            self._ended(run)
            run.trainer = run.view = None
            run.done.set()


REGISTRY = RunRegistry()
RUN_THREAD_PREFIX = "train-"  # the name of a run's thread (`app.train_worker.run_worker`) begins so
SHUTDOWN_WAIT_SECONDS = 30.0
SERVER_STOPPING = threading.Event()  # set by `stop_every_run`: a run's thread then draws no final preview


def stop_every_run(wait: float = SHUTDOWN_WAIT_SECONDS) -> tuple[int, int]:
    """The server stops (Ctrl-C, a host's SIGTERM): stop every run and wait, at most ``wait`` seconds, for their
    threads, which save them as Stop does (and draw no final preview, which took 9 s of a 2D run's 12 s exit). A run
    had been lost without a word. Returns (the runs stopped that had started, those of them saved)."""
    SERVER_STOPPING.set()
    unfinished = REGISTRY.stop_all()
    deadline = time.monotonic() + wait
    for thread in threading.enumerate():
        if thread.name.startswith(RUN_THREAD_PREFIX):
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
    return sum(run.started for run in unfinished), sum(run.checkpoint is not None for run in unfinished)
