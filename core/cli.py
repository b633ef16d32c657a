"""Shared pieces of the command-line entry points: an argparse parser that fails in one line, checks of an output
path made before the work rather than after it, and Ctrl-C without a traceback."""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

MAX_SAMPLES = 100_000  # the most samples core.sample and core.evaluate draw (--n)


MAX_SEED = 2**31 - 1  # the largest seed: torch seeds from the low 32 bits (2**32 gave seed 0's noise)


def seed_number(text: str) -> int:
    """A --seed: a whole number from 0 to `MAX_SEED` (2**70 had failed with "Overflow when unpacking long long")."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be a whole number from 0 to {MAX_SEED}, got {text}")
    return value


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad flag prints one line ("<prog>: error: ...") and exits with status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def fail(prog: str, message: str) -> NoReturn:
    """Print one clear line on stderr and exit non-zero (for errors found after parsing)."""
    print(f"{prog}: error: {' '.join(str(message).split())}", file=sys.stderr)
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


def run(main: Callable[[], int], prog: str) -> NoReturn:
    """A command's entry point: exit with ``main``'s status; Ctrl-C ends with one line and status 130."""
    signal.signal(signal.SIGINT, signal.default_int_handler)  # from here a KeyboardInterrupt (see `core/__init__`)
    try:
        status = main()
    except KeyboardInterrupt:
        print(f"{prog}: interrupted (Ctrl-C); nothing was written", file=sys.stderr)
        status = 130
    raise SystemExit(status)


def check_writable_parent(prog: str, out: Path) -> None:
    """Fail now where ``out`` could not be created later: its nearest existing parent folder must take a new
    entry (tried, with a temporary folder removed at once: as root, os.access says yes even to /proc)."""
    if out.name in ("", ".", ".."):
        fail(prog, f"--out must name a new file or folder, not {str(out)!r}")
    parent = out.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        fail(prog, f"cannot write {out}: {parent} is a file, not a folder")
    try:
        tempfile.TemporaryDirectory(dir=parent).cleanup()
    except OSError as err:
        fail(prog, f"cannot write {out}: {parent} does not take new files ({err.strerror or err})")
