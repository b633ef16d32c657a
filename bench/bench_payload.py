"""Bytes the app sends for each user action, against the same figures written by `plotly.io.to_json`.

    python bench/bench_payload.py

Calls the tab handlers directly (no server, no browser) and sums the JSON of their outputs as Gradio sends them on
the page's event stream (uncompressed). Each action is measured twice in the same run: as the app writes its figures
(`app.figures.figure_json`: numbers to 5 significant digits, no "/" escapes; long curves through `line_points`), and
with `plotly.io.to_json` writing the same figure dicts (17 digits, each "/" of a picture's base64 as 6 characters).
Prints kB and the ratio of the app's bytes to plotly.io's. The long curves' thinning is in both: this compares the
writing alone.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import plotly.io as pio  # noqa: E402
import torch  # noqa: E402

from app import controls, figures, forward_chain, forward_tab, schedules_tab, train_figures  # noqa: E402
from core.data import make_toy2d  # noqa: E402

FOUR = ["linear", "cosine", "sigmoid", "sigmoid_beta"]


def sent_bytes(outputs) -> int:
    """The JSON bytes of a handler's outputs: figures as Gradio serialises them, text as a JSON string."""
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    return sum(len(o.model_dump_json()) if hasattr(o, "model_dump_json") else len(json.dumps(o))
               for o in outputs if hasattr(o, "model_dump_json") or isinstance(o, str))


def actions() -> dict:
    """Each action's handler call, by label."""
    params = controls.default_param_values()
    mnist = forward_tab.prepare(None, "mnist", None, None, "linear", 1000, 0, *params)
    swiss = forward_tab.prepare(None, "swiss_roll", None, None, "linear", 1000, 0, *params)
    losses = list(np.exp(-np.linspace(0, 3, 20_000)) * (1 + 0.3 * np.random.default_rng(0).random(20_000)))
    data = make_toy2d("swiss_roll", 2000, seed=0)
    samples = torch.randn(1000, 2, generator=torch.Generator().manual_seed(0))
    return {
        "Forward: a move of t (MNIST)": lambda: forward_tab.scrub(mnist, 800),
        "Forward: a move of t (swiss roll)": lambda: forward_tab.scrub(swiss, 800),
        "Forward: targets panel (swiss roll)": lambda: forward_tab.targets_view(swiss, 800),
        "Forward: chain panel (swiss roll)": lambda: forward_chain.chain_view(swiss, 800),
        "Schedules: a change (3 schedules, T = 1,000)": lambda: schedules_tab.compare(
            list(schedules_tab.DEFAULT_SCHEDULES), 1000, "mnist", 0, None, None, 0, True, "bound_weight", *params),
        "Schedules: a change (4 schedules, T = 10,000)": lambda: schedules_tab.compare(
            FOUR, 10_000, "mnist", 0, None, None, 0, True, "bound_weight", *params),
        "Train: loss curve of 20,000 steps": lambda: train_figures.loss_figure(losses, 0.0),
        "Train: a 2D preview": lambda: train_figures.preview_figure("2d", samples, data),
    }


def main() -> None:
    print(f"{'action':48s} {'app kB':>8s} {'plotly.io kB':>13s} {'ratio':>6s}")
    for label, call in actions().items():
        ours = sent_bytes(call())
        with mock.patch.object(figures, "figure_json", lambda figure: pio.to_json(figure, validate=False)):
            theirs = sent_bytes(call())
        print(f"{label:48s} {ours / 1e3:8.1f} {theirs / 1e3:13.1f} {ours / theirs:6.2f}")


if __name__ == "__main__":
    main()
