"""Per-user training runs and the server-side caps a host sets for them.

A public Space is shared: each browser session (Gradio's ``session_hash``) owns at most one
training run at a time, and only that session can see, stop or overwrite it. Finished models
are written under a per-session directory, so one user's checkpoints never show up for another.

Environment variables (read when a run starts, so a host can change them without a code edit):

    DDPM_RUNS_DIR             where trained checkpoints go: <dir>/<session>/<data>-<schedule>-<time>
                              (default: runs/)
    DDPM_MAX_TRAIN_STEPS      most optimiser steps one run may take; more is clamped, with a note
                              (default: 20000)
    DDPM_MAX_TRAIN_SECONDS    most seconds of training one run may take; the run then ends with
                              reason "time limit" and is saved (default: 600)
    DDPM_MAX_RUNS_PER_USER    checkpoints kept per session; the oldest are deleted (default: 5)
    DDPM_HEAVY_CONCURRENCY    training / sampling jobs that run at once across all users, sharing
                              the concurrency id "gpu" (default: 1); the others wait in the queue

No model is kept here: a `Run` holds a `Trainer` only while it trains; the registry forgets
the trainer when the run ends.
"""

from __future__ import annotations

import hashlib
import html
import os
import re
import shutil
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.errors import InputError

DEFAULT_MAX_TRAIN_STEPS = 20_000
DEFAULT_MAX_TRAIN_SECONDS = 600.0
DEFAULT_MAX_RUNS_PER_USER = 5
DEFAULT_RUNS_DIR = "runs"
UPLOADED_PREFIX = "uploaded-"  # a session's checkpoint directory uploaded as a .zip (`app.model_files`), not trained
HEAVY_CONCURRENCY_ID = "gpu"  # shared by every event that trains or samples a network


def _env_number(name: str, default: float, *, minimum: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InputError(f"The server setting {name}={raw!r} is not a number; ask the host to fix it.") from None
    if not value >= minimum:
        raise InputError(f"The server setting {name}={raw!r} must be at least {minimum:g}; ask the host to fix it.")
    return value


def max_train_steps() -> int:
    return int(_env_number("DDPM_MAX_TRAIN_STEPS", DEFAULT_MAX_TRAIN_STEPS, minimum=1))


def max_train_seconds() -> float:
    return _env_number("DDPM_MAX_TRAIN_SECONDS", DEFAULT_MAX_TRAIN_SECONDS, minimum=0.1)


def max_runs_per_user() -> int:
    return int(_env_number("DDPM_MAX_RUNS_PER_USER", DEFAULT_MAX_RUNS_PER_USER, minimum=1))


def heavy_concurrency() -> int:
    """Read once when the UI is built (Gradio fixes concurrency limits then)."""
    try:
        return max(1, int(float(os.environ.get("DDPM_HEAVY_CONCURRENCY", "1") or 1)))
    except ValueError:
        return 1


def heavy_event() -> dict:
    """The options of an event that samples or measures a network: in the shared heavy queue, with a small progress
    bar (read when the UI is built, like `heavy_concurrency`)."""
    return dict(concurrency_id=HEAVY_CONCURRENCY_ID, concurrency_limit=heavy_concurrency(), show_progress="minimal")


def runs_root() -> Path:
    return Path(os.environ.get("DDPM_RUNS_DIR", "").strip() or DEFAULT_RUNS_DIR)


_SAFE_KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def session_key(request: Any) -> str:
    """This browser session's key (a safe directory name), from ``gr.Request.session_hash``.

    A call without a session (e.g. a bare API call) gets a fresh random key: it can run, but
    nobody else can stop it or see its checkpoints.
    """
    raw = getattr(request, "session_hash", None) if request is not None else None
    if not raw:
        return "nosession-" + uuid.uuid4().hex[:16]
    raw = str(raw)
    if _SAFE_KEY.match(raw):
        return raw
    return "h" + hashlib.sha256(raw.encode()).hexdigest()[:32]


def user_dir(key: str) -> Path:
    if not _SAFE_KEY.match(key):
        raise ValueError(f"unsafe session key {key!r}")
    return runs_root() / key


def display_name(path: str | Path) -> str:
    """A checkpoint's name as shown: its directory's, less the mark of an upload (`UPLOADED_PREFIX`)."""
    return Path(path).name.removeprefix(UPLOADED_PREFIX)


def bold_name(path: str | Path) -> str:
    """A checkpoint's name as shown (`display_name`), in bold: the first words of a panel's text (markdown)."""
    return f"**{html.escape(display_name(path))}**"


def pruned_sentence(pruned: list[Path]) -> str:
    """What `prune_user_runs` deleted, said to the session ("This page keeps your 5 newest models: the oldest, X, is
    deleted"), for a run's or an upload's message to go on with."""
    kept = max_runs_per_user()
    return (f"This page keeps your {kept} newest model{'s' if kept != 1 else ''}: the oldest, "
            f"{', '.join(display_name(p) for p in pruned)}, is deleted")


def prune_user_runs(key: str, keep: int | None = None) -> list[Path]:
    """Delete all but the newest ``keep`` checkpoint directories of a session; returns those deleted."""
    keep = max_runs_per_user() if keep is None else keep
    directory = user_dir(key)
    if not directory.is_dir():
        return []
    runs = sorted((p for p in directory.iterdir() if p.is_dir() and not p.name.startswith(".")),
                  key=lambda p: p.stat().st_mtime)
    removed = runs[: max(0, len(runs) - keep)]
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed


def delete_user_checkpoints(paths: Any) -> None:
    """`gr.State(delete_callback=...)`: when a session ends, remove the checkpoints it trained."""
    root = runs_root().resolve()
    for path in paths or []:
        try:
            resolved = Path(path).resolve()
        except (OSError, TypeError):
            continue
        if root in resolved.parents and resolved.is_dir():  # never delete outside the runs directory
            shutil.rmtree(resolved, ignore_errors=True)


class RunBusy(RuntimeError):
    """This session already has a run waiting or training."""


@dataclass
class Run:
    """One training run of one session. ``trainer`` is set once training starts."""

    key: str
    trainer: Any = None
    started: bool = False
    ticket: str = field(default_factory=lambda: uuid.uuid4().hex)  # names a reservation to the Start that made it
    stop_requested: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    checkpoint: Path | None = None  # where the run's model was saved (set before ``done``)
    message: str = ""  # how it ended, for the UI
    reason: str = ""  # "finished", "stopped", "time limit", "diverged" or "error"
    final_preview: Any = None  # the UI's picture of samples from the saved weights, once ``previewed`` is set
    previewed: threading.Event = field(default_factory=threading.Event)  # set after ``done``, by the run's thread
    # set when the session shows other data in the preview after ``done``: the final preview must not replace it
    preview_replaced: threading.Event = field(default_factory=threading.Event)

    def request_stop(self) -> None:
        self.stop_requested.set()
        trainer = self.trainer
        if trainer is not None:
            trainer.stop()


class RunRegistry:
    """At most one unfinished run per session key; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: dict[str, Run] = {}
        self._last: dict[str, Run] = {}

    def reserve(self, key: str) -> Run:
        """A new waiting run for ``key``; RunBusy if the session has one waiting or training."""
        with self._lock:
            if key in self._active:
                raise RunBusy(key)
            run = Run(key)
            self._active[key] = run
            return run

    def claim(self, key: str, ticket: str | None = None) -> Run:
        """The run that is about to train: the session's waiting reservation, or a new one; with the ``ticket`` of
        a reservation that was stopped while it waited, that run, stopped (Stop pressed right after Start, before
        Gradio could cancel a training event it had not yet queued): the caller ends it at once.

        RunBusy if a run of this session is already training.
        """
        with self._lock:
            run = self._active.get(key)
            stopped = self._last.get(key)
            if ticket is not None and (run is None or run.ticket != ticket) and stopped is not None \
                    and stopped.ticket == ticket and not stopped.started:
                stopped.started = True  # ended once
                return stopped
            if run is None:
                run = Run(key)
                self._active[key] = run
            elif run.started:
                raise RunBusy(key)
            run.started = True
            return run

    def active(self, key: str) -> Run | None:
        with self._lock:
            return self._active.get(key)

    def last(self, key: str) -> Run | None:
        """The session's most recent run (finished or not)."""
        with self._lock:
            return self._active.get(key) or self._last.get(key)

    def stop(self, key: str) -> Run | None:
        """Stop ``key``'s run (only that session's). A run still waiting for a slot is dropped."""
        with self._lock:
            run = self._active.get(key)
            if run is None:
                return self._last.get(key)
            run.request_stop()
            if not run.started:  # waiting in the queue: it will never train
                run.message = "Stopped before it started."
                del self._active[key]
                self._last[key] = run
                run.done.set()
            return run

    def release(self, key: str) -> None:
        """Drop the session's waiting reservation, if it has one that has not started (its start failed)."""
        with self._lock:
            run = self._active.get(key)
            if run is not None and not run.started:
                del self._active[key]
                run.done.set()

    def finish(self, run: Run) -> None:
        """Mark ``run`` done and forget its trainer (the weights are on disk by now)."""
        with self._lock:
            if self._active.get(run.key) is run:
                del self._active[run.key]
            self._last[run.key] = run
            run.trainer = None
            run.done.set()

    def forget(self, key: str) -> None:
        with self._lock:
            self._last.pop(key, None)


REGISTRY = RunRegistry()
