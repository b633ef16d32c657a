"""The Forward tab's panel "One step at a time": the forward chain q(x_t | x_{t−1}) run step by step, beside the one
jump q(x_t | x_0) that the tab scrubs.

Ho et al. (2020) define the forward process as a Markov chain, each step x_s = √(1 − β_s)·x_{s−1} + √β_s·ε_s with
fresh noise ε_s (eq. 2), and then show that it can be skipped (eq. 4): x_t = √ᾱ_t·x_0 + √(1 − ᾱ_t)·ε in one jump.
The panel runs the chain to the slider's t from the tab's x_0 (`NoiseSchedule.q_chain`, its noises drawn from the
tab's noise seed + 1) and shows its x_t beside the tab's own. The two differ noise for noise but have the same law;
a plot follows the chain's noise part x_s − √ᾱ_s·x_0 step by step against √(1 − ᾱ_s).
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

import numpy as np
import torch

from app import controls, figures, images, panel_grid
from app.errors import InputError
from app.formulas import number, steps_text
from core.schedules import NoiseSchedule

if TYPE_CHECKING:  # the Forward tab lays this panel out: a run-time import would be circular
    from app.forward_tab import ForwardState

CHAIN_IMAGES = 16  # images in each panel (a 4 × 4 grid), as in the targets panel
CURVE_POINTS = 500  # the most steps on the plot's line (a chain of 10,000 steps is drawn at every 20th)
MEASURED_DOTS = 41  # the chain's measured noise, drawn as dots at this many steps
MEASURED_COLOR = figures.POINT_COLOR
THEORY_COLOR = "#888888"


def chain_columns(t: int) -> list[str]:
    """The grid's column titles."""
    return ["x₀", f"x_t after {steps_text(t)}", "x_t in one jump"]  # short: three titles share 600 px at 1,024


def run_chain(state: ForwardState, t: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x_0 shown, x_t by the chain, the chain's noise root-mean-square at s = 0..t): the first `CHAIN_IMAGES`
    images, or every point; the chain's noises come from the tab's seed + 1, so New noise changes them too."""
    x0 = state.x0[:CHAIN_IMAGES] if state.kind == "images" else state.x0
    with torch.inference_mode():
        x_t, rms = state.schedule.q_chain(x0, t, torch.Generator().manual_seed(state.seed + 1))
    return x0, x_t, rms


def _evenly(t: int, count: int) -> np.ndarray:
    """At most ``count`` steps spread evenly over 0..t, both ends included."""
    return np.unique(np.linspace(0, t, min(t + 1, count)).round().astype(int))


def noise_figure(schedule: NoiseSchedule, rms: torch.Tensor, *, height: int = 300) -> figures.PlotData:
    """The chain's measured noise root-mean-square at each step s = 0..t against √(1 − ᾱ_s), the jump's."""
    t = len(rms) - 1
    line, dots = _evenly(t, CURVE_POINTS), _evenly(t, MEASURED_DOTS)
    theory = (1 - schedule.alpha_bars[: t + 1]).sqrt().numpy()
    measured = rms.numpy()[dots]
    top = max(1.05, 1.05 * float(measured.max()))  # a few points' RMS strays above 1 (10 points: up to ~1.4)
    data = [  # dots on a line: the line would hide beneath a measured line that follows it this closely
        dict(type="scatter", x=line, y=theory[line], mode="lines", name="one jump: √(1 − ᾱ_s)",
             line=dict(color=THEORY_COLOR, width=2)),
        dict(type="scatter", x=dots, y=measured, mode="markers", name="the chain, measured",
             marker=dict(color=MEASURED_COLOR, size=7, line=dict(color="white", width=1))),
    ]
    layout = figures.plot_layout(
        height, legend=figures.LEGEND_BELOW,
        xaxis=figures.titled_axis("step s of the chain", range=[-0.02 * max(t, 1), 1.02 * max(t, 1)],  # whole dots
                                  **figures.whole_steps(t)),
        yaxis=figures.titled_axis("RMS of x_s − √ᾱ_s·x₀", range=[0, top]),
    )
    return figures.fast_figure(data, layout)


def chain_text(schedule: NoiseSchedule, t: int, rms: float, seconds: float, kind: str) -> str:
    """The panel's words at t: what the chain did and how it compares with the jump."""
    if t == 0:
        return "At t = 0 no step has been taken: both are x₀. Move t to run the chain."
    alpha_bar = float(schedule.alpha_bars[t])
    unit = "pixel" if kind == "images" else "coordinate"
    noises = "one small noise" if t == 1 else f"the sum of {t:,} small independent noises"
    return (
        f"At t = {t:,} the chain has taken {steps_text(t)} of x_s = √(1 − β_s)·x_{{s−1}} + √β_s·ε_s, each with fresh noise "
        f"ε_s (Ho et al. eq. 2; {seconds * 1000:.0f} ms here). Its x₀ part is ∏√(1 − β_s)·x₀ = √ᾱ_t·x₀ = "
        f"{number(math.sqrt(alpha_bar))}·x₀, and its noise part, {noises}, has a "
        f"root-mean-square of **{rms:.3f}** per {unit}; one jump q(x_t | x₀) (eq. 4) adds √(1 − ᾱ_t)·ε = "
        f"**{math.sqrt(1 - alpha_bar):.3f}**·ε. The same law, other noise: the two x_t differ {unit} by {unit}, not in "
        "distribution. This is why training (Algorithm 1) draws any t at once instead of running the chain."
    )


def chain_view(state: ForwardState | None, t) -> tuple:
    """The panel: (grid of x₀, the chain's x_t and the jump's x_t; the noise plot; Markdown)."""
    if state is None:
        raise InputError("Nothing to show yet: choose data and a schedule first.")
    t = min(controls.whole_number(t, "t", 0), state.schedule.T)
    start = time.perf_counter()
    x0, chained, rms = run_chain(state, t)
    seconds = time.perf_counter() - start
    with torch.inference_mode():
        jumped = state.schedule.q_sample(x0, t, state.noise[: len(x0)])
    if state.kind == "images":
        cells = [[images.image_grid(x, nrow=4) for x in (x0, chained, jumped)]]
        grid = panel_grid.noised_grid_figure(cells, [""], chain_columns(t), kind="images", cell_px=220)
    else:
        cells = [[x.numpy() for x in (x0, chained, jumped)]]
        grid = panel_grid.noised_grid_figure(cells, [""], chain_columns(t), kind="points", cell_px=240,
                                             point_hues=figures.angle_hues(x0.numpy()))
    return (grid, noise_figure(state.schedule, rms),
            chain_text(state.schedule, t, float(rms[-1]), seconds, state.kind))
