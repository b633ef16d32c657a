"""Shared pieces of the command-line entry points: an argparse parser that fails in one line, checks of an output
path made before the work rather than after it, Ctrl-C (or SIGTERM, SIGHUP) without a traceback, and values cut short
and made printable for one-line messages (the app's too)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

MAX_SAMPLES = 100_000  # the most samples core.sample and core.evaluate draw (--n)


MAX_SEED = 2**31 - 1  # the largest seed: torch seeds from the low 32 bits (2**32 gave seed 0's noise)
SHORT_CHARS = 40  # a value repeated in a message is cut to this many characters


def short_text(text: str, chars: int = SHORT_CHARS) -> str:
    """``text`` cut to ``chars`` characters, the last one "…" when it was longer: a value repeated in a message (an
    API call's 100 kB string, a custom schedule's T betas) had come back whole."""
    return text if len(text) <= chars else text[: chars - 1] + "…"


def printable(text: str) -> str:
    """``text`` without control and format characters (Unicode's Cc and Cf, but the zero-width joiners that emoji and
    Persian words need), newlines and tabs made spaces: words from a file (a checkpoint's data name) had sent a
    terminal escape sequences (clear the screen, set its title), and a right-to-left override had turned the words
    printed after it around."""
    return "".join(" " if c in "\n\t" else c for c in text
                   if c in "\n\t\u200c\u200d" or unicodedata.category(c) not in ("Cc", "Cf"))


def seed_number(text: str) -> int:
    """A --seed: a whole number from 0 to `MAX_SEED` (2**70 had failed with "Overflow when unpacking long long")."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be a whole number from 0 to {MAX_SEED}, got {text}")
    return value


def folder(text: str) -> str:
    """A --data-dir: a folder's path, not an empty one (which had meant the current folder, searched throughout)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must name a folder, got an empty path")
    path = os.path.expanduser(text)
    if os.path.exists(path) and not os.path.isdir(path):
        raise argparse.ArgumentTypeError(f"must name a folder; {text} is a file")
    return text


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad flag prints one line ("<prog>: error: ...") and exits with status 2, and a flag is spelt out
    in full (argparse took a typo such as --step for --steps, or --n-point for --n-points, without a word)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, allow_abbrev=False, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def fail(prog: str, message: str) -> NoReturn:
    """Print one clear line on stderr and exit non-zero (for errors found after parsing)."""
    print(f"{prog}: error: {' '.join(printable(str(message)).split())}", file=sys.stderr)
    raise SystemExit(1)


def parse_params(pairs: list[str], prog: str) -> dict[str, object]:
    """["beta_end=0.01", "scale_with_T=false"] → {"beta_end": 0.01, "scale_with_T": False}."""
    params: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            fail(prog, f"schedule parameter {pair!r} must look like name=value")
        lowered = value.strip().lower()
        if lowered in ("true", "false"):
            params[key] = lowered == "true"
            continue
        try:
            params[key] = float(value)
        except ValueError:
            fail(prog, f"schedule parameter {key} must be a number or true/false, got {value!r}")
    return params


# The signals that stop a command as Ctrl-C does, by name: SIGTERM comes from `kill` and `timeout`, SIGHUP from a
# closed terminal, SIGBREAK from Ctrl-Break on Windows. Unhandled, they ended a training run at once, without a word
# and without its checkpoint.
STOP_SIGNALS = {signal.SIGINT: "Ctrl-C", **{getattr(signal, name): name for name in ("SIGTERM", "SIGHUP", "SIGBREAK")
                                            if hasattr(signal, name)}}


class Interrupted(KeyboardInterrupt):
    """A stop signal (`STOP_SIGNALS`), raised where the command is, as Ctrl-C raises KeyboardInterrupt."""

    def __init__(self, name: str = "Ctrl-C") -> None:
        super().__init__(name)
        self.name = name


def stop_name(err: KeyboardInterrupt) -> str:
    """What stopped the command: "Ctrl-C", "SIGTERM" or "SIGHUP"."""
    return getattr(err, "name", "Ctrl-C")


def _raise_interrupted(signum: int, frame: object) -> None:
    raise Interrupted(STOP_SIGNALS[signum])


def _exit_at_once(signum: int, frame: object) -> None:
    """A stop signal while Python shuts down: the output flushed, exit with status 130 (raised, an `Interrupted` had
    printed a traceback from torch's clean-up at exit)."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(130)


def run(main: Callable[[], int], prog: str) -> NoReturn:
    """A command's entry point: exit with ``main``'s status; a stop signal (`STOP_SIGNALS`) ends with one line and
    status 130, and one while the interpreter then shuts down ends it at once (`_exit_at_once`). Output that the
    console cannot encode (β or η in --help, piped on Windows, is cp1252) is written escaped, not a crash."""
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="backslashreplace")
    for signum in STOP_SIGNALS:  # from here an `Interrupted` (see `core/__init__` for Ctrl-C while loading)
        signal.signal(signum, _raise_interrupted)
    try:
        status = main()
    except KeyboardInterrupt as err:
        print(f"{prog}: interrupted ({stop_name(err)}); nothing was written", file=sys.stderr)
        status = 130
    finally:  # also after `fail`'s SystemExit
        for signum in STOP_SIGNALS:
            signal.signal(signum, _exit_at_once)
    raise SystemExit(status)


@contextmanager
def signals_held(prog: str) -> Iterator[list[str]]:
    """Within, a stop signal is noted (its name added to the list yielded), not raised: a save cut in half lost the
    run it was saving, and with --overwrite the checkpoint it replaced too. The caller says what came once it is
    done. Outside the main thread (where signals cannot be handled) it changes nothing."""
    came: list[str] = []
    if threading.current_thread() is not threading.main_thread():
        yield came
        return

    def note(signum: int, frame: object) -> None:
        came.append(STOP_SIGNALS[signum])
        print(f"{prog}: {STOP_SIGNALS[signum]} while saving: the save finishes first", file=sys.stderr)

    previous = {signum: signal.signal(signum, note) for signum in STOP_SIGNALS}
    try:
        yield came
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def check_writable_parent(prog: str, out: Path) -> None:
    """Fail now where ``out`` could not be created later: its nearest existing parent folder must take a new
    entry (tried, with a temporary folder removed at once: as root, os.access says yes even to /proc)."""
    if out.name in ("", ".", ".."):
        fail(prog, f"--out must name a new file or folder, not {str(out)!r}")
    parent = out.absolute().parent
    while not parent.exists():
        if parent == parent.parent:  # a drive or network share that is not there (E:\ is its own parent)
            fail(prog, f"cannot write {out}: {parent} does not exist")
        parent = parent.parent
    if not parent.is_dir():
        fail(prog, f"cannot write {out}: {parent} is a file, not a folder")
    try:
        tempfile.TemporaryDirectory(dir=parent).cleanup()
    except OSError as err:
        fail(prog, f"cannot write {out}: {parent} does not take new files ({err.strerror or err})")
