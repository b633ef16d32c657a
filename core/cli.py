"""Shared pieces of the command-line entry points: an argparse parser that fails in one line."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn


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
