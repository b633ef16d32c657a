"""Figures of noise schedules: ᾱ_t with the current step marked (the Forward tab), and the Schedules tab's
comparison of schedules: their curves (ᾱ_t, β_t, log-SNR, loss weightings) and the gain of each step of a short chain.

Only drawing here: every number plotted comes from `core` (ᾱ_t, β_t, log-SNR, the weightings, …) or from the
caller.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from gradio.components.plot import PlotData

from app.figures import (
    LEGEND_BELOW, NOISE_COLOR, fast_figure, hline, plot_layout, schedule_color, titled_axis, whole_steps,
)
from app.log_axes import MANY_DECADES, finite_positive, log_labels
from core.elbo import epsilon_weights
from core.presets import DEFAULTS
from core.sampler import SPACING_LABELS, Spacing
from core.schedules import SCHEDULE_LABELS, NoiseSchedule
from core.trainer import eps_weighting


def schedule_label(schedule: NoiseSchedule) -> str:
    return SCHEDULE_LABELS.get(schedule.name, schedule.name)


def short_schedule_label(schedule: NoiseSchedule) -> str:
    """The label without its citation, for a crowded legend: "cosine (Nichol & Dhariwal 2021)" → "cosine"."""
    return schedule_label(schedule).split(" (")[0]


# A curve over t is drawn through at most 4 points of each of this many runs of t (`line_points`): at T = 10,000
# each move of the Forward tab's t had sent 253 kB of ᾱ_t, and each change in the Schedules tab 4.2 MB of curves
LINE_RUNS = 250


def line_points(ts: np.ndarray, ys: np.ndarray, runs: int = LINE_RUNS) -> tuple[np.ndarray, np.ndarray]:
    """The points of a line (ts, ys) it is drawn through: all of a short one; of a long one, in each of ``runs``
    runs of consecutive points, the first, the last, the lowest and the highest (M4, Jugel et al. 2014), and its
    first gap (NaN, where the line breaks), so that it draws as the whole line does on a plot up to about ``runs``
    pixels wide, and within a pixel or two on a wider one (1.2 px at most on an 800-pixel plot at T = 10,000): every
    step and spike is kept (cosine's β_T = 0.999 in the last of 10,000 steps), a smooth or monotone stretch goes
    through its ends."""
    n = len(ys)
    if n <= 4 * runs:
        return ts, ys
    size = -(-n // runs)
    padded = np.full(-(-n // size) * size, np.nan)
    padded[:n] = ys
    grid = padded.reshape(-1, size)
    finite = np.isfinite(grid)
    starts = np.arange(len(grid)) * size
    lowest = np.where(finite, grid, np.inf).argmin(axis=1)  # a run without a finite value: its first point
    highest = np.where(finite, grid, -np.inf).argmax(axis=1)
    first_gap = (~finite).argmax(axis=1)  # a run without one: its first point
    ends = np.minimum(starts + size, n) - 1
    keep = np.unique(np.concatenate([starts, starts + lowest, starts + highest, np.minimum(starts + first_gap, ends),
                                     ends]))
    return ts[keep], ys[keep]


def alpha_bar_figure(schedule: NoiseSchedule, t: int, *, height: int = 260) -> PlotData:
    """ᾱ_t over t = 0..T (through `line_points`) with a marker at the current t."""
    alpha_bars = schedule.alpha_bars.numpy()
    ts, line = line_points(np.arange(schedule.T + 1), alpha_bars)
    color = schedule_color(schedule)
    # the label above the marker, where the falling curve is not (room made above ᾱ = 1), and left of it near t = T
    label_position = "top left" if t > 0.75 * schedule.T else "top right"
    data = [
        dict(type="scatter", x=ts, y=line, mode="lines", line=dict(color=color, width=2), name="ᾱ_t"),
        dict(
            type="scatter",
            x=[t],
            y=[float(alpha_bars[t])],
            mode="markers+text",
            text=[f"t = {t}"],
            textposition=label_position,
            marker=dict(size=12, color=NOISE_COLOR, line=dict(color="white", width=1)),
            cliponaxis=False,  # whole at t = 0 and t = T, on the axes' edges
            name=f"t = {t}",
        ),
    ]
    layout = plot_layout(
        height,
        showlegend=False,
        xaxis=dict(range=[0, schedule.T], title=dict(text="t (step)"), fixedrange=True, **whole_steps(schedule.T)),
        yaxis=dict(range=[-0.03, 1.16], title=dict(text="ᾱ_t (share of x₀'s variance left)"), fixedrange=True),
    )
    return fast_figure(data, layout)


MIN_SNR_SHOWN = DEFAULTS["image"]["min_snr"]  # the Min-SNR γ of the weighting curve: the image runs' default
_CURVES = {
    # key: (y-axis title, function schedule → values at t = 1..T, or at t = 0..T for ᾱ_t, which is 1 at t = 0)
    "alpha_bar": ("ᾱ_t", lambda s: s.alpha_bars),
    "beta": ("β_t", lambda s: s.betas[1:]),
    "log_snr": ("log-SNR(t) (natural log)", lambda s: s.log_snr[1:]),
    "bound_weight": ("weight on ‖ε − ε̂‖²", lambda s: epsilon_weights(s)[1:]),
    "x0_weight": ("weight on ‖ε − ε̂‖²", lambda s: eps_weighting(s, 0.0, "x0")[1:]),
    "v_weight": ("weight on ‖ε − ε̂‖²", lambda s: eps_weighting(s, 0.0, "v")[1:]),
    "min_snr_weight": ("weight on ‖ε − ε̂‖²", lambda s: eps_weighting(s, MIN_SNR_SHOWN, "eps")[1:]),
}
WEIGHTINGS = ("bound_weight", "x0_weight", "v_weight", "min_snr_weight")  # curves that weigh ‖ε − ε̂‖², against 1
_SPACING_DASH: dict[Spacing, str] = {"uniform": "solid", "log_snr": "dot"}  # line styles of the step-gain plot


FEW_STEPS = 30  # a schedule of at most this many steps is drawn with a marker at each step


def schedule_curves_figure(
    schedules: Sequence[NoiseSchedule], quantity: str, *, log_y: bool = False, height: int = 340
) -> PlotData:
    """One curve per schedule over t = 1..T (ᾱ_t from t = 0: the clean data, ᾱ_0 = 1), on shared axes, each with its
    t where SNR = 1 marked; with markers at the steps of a short chain (`FEW_STEPS`)."""
    if quantity not in _CURVES:
        raise ValueError(f"unknown quantity {quantity!r}; choose one of {', '.join(_CURVES)}")
    y_title, values_of = _CURVES[quantity]
    data = []
    for schedule in schedules:
        ys = values_of(schedule).numpy()
        ts = np.arange(schedule.T + 1 - len(ys), schedule.T + 1)
        color = schedule_color(schedule)
        label = schedule_label(schedule)
        mode = "lines" if schedule.T > FEW_STEPS else "lines+markers"  # T = 2: one finite weight, a line of a point
        drawn_ts, drawn = line_points(ts, ys)
        data.append(dict(type="scatter", x=drawn_ts, y=drawn, mode=mode, line=dict(color=color, width=2), name=label,
                         legendgroup=schedule.name))
        t_one = schedule.t_snr_one
        if math.isfinite(t_one):
            data.append(dict(
                type="scatter", x=[t_one], y=[float(np.interp(t_one, ts, ys))], mode="markers",
                marker=dict(symbol="diamond", size=10, color=color, line=dict(color="black", width=1)),
                name=f"SNR = 1 at t ≈ {t_one:.0f}", legendgroup=schedule.name, showlegend=False,
                hovertemplate=f"{label}<br>SNR = 1 at t ≈ {t_one:.1f}<extra></extra>",
            ))
    extra = {}
    if quantity == "log_snr":
        extra = dict(shapes=[hline(0)], annotations=[dict(
            text="SNR = 1", xref="paper", x=1, yref="y", y=0, xanchor="right", yanchor="bottom", showarrow=False,
        )])
    elif quantity in WEIGHTINGS:  # the plain ε loss weights every t by 1
        extra = dict(shapes=[hline(1)], annotations=[dict(
            text="plain ε loss (L_simple): 1", xref="paper", x=1, yref="y", y=0, xanchor="right", yanchor="bottom",
            showarrow=False,
        )])
    T = max((s.T for s in schedules), default=1)
    shown = finite_positive(np.concatenate([trace["y"] for trace in data])) if log_y and data else np.zeros(0)
    # over many decades, every other or third power of ten (`log_ticks`): the x₀ loss's weights, 10⁻⁵ … 10⁹, had 15
    # labels piled up the axis
    many = len(shown) > 0 and shown.max() > MANY_DECADES * shown.min()
    return fast_figure(data, plot_layout(
        height, legend=LEGEND_BELOW,
        xaxis=titled_axis("t (step)", range=[0, T], **whole_steps(T)),
        yaxis=titled_axis(y_title, log=log_y, **(log_labels(shown) if many else {})),
        **extra,
    ))


def step_gain_figure(schedules: Sequence[NoiseSchedule], gains: Sequence[dict[Spacing, np.ndarray]], *,
                     height: int = 340) -> PlotData:
    """Per schedule, the gain on an error in ε̂ of each step of a short chain (`schedules_tab.step_gains`):
    ``gains[i]`` maps a spacing of the steps to their gains; evenly in t is drawn solid, evenly in log-SNR dotted.
    Both axes are logarithmic, so that the first steps, where the gains differ, are not squeezed into a corner; a
    line at 1 parts the steps that shrink the error from those that multiply it. The legend names each
    schedule once, without its citation (the hover text has it), and keys the line styles in grey."""
    data = []
    for schedule, per_spacing in zip(schedules, gains):
        color = schedule_color(schedule)
        label = schedule_label(schedule)
        for i, (spacing, values) in enumerate(per_spacing.items()):
            spaced = SPACING_LABELS[spacing]
            data.append(dict(
                type="scatter", x=np.arange(1, len(values) + 1), y=values, mode="lines+markers",
                name=short_schedule_label(schedule) if i == 0 else f"{label}, {spaced}", showlegend=i == 0,
                legendgroup=schedule.name,
                line=dict(color=color, width=2, dash=_SPACING_DASH[spacing]), marker=dict(size=4, color=color),
                hovertemplate=f"{label}, steps {spaced}<br>step %{{x}}: ×%{{y:.3g}}<extra></extra>",
            ))
    for spacing, dash in _SPACING_DASH.items():  # the key to the line styles: legend entries, nothing drawn
        data.append(dict(type="scatter", x=[None], y=[None], mode="lines", name=SPACING_LABELS[spacing],
                         line=dict(color="grey", width=2, dash=dash), hoverinfo="skip"))
    n = max((len(values) for per_spacing in gains for values in per_spacing.values()), default=1)
    shown = finite_positive([g for per_spacing in gains for values in per_spacing.values() for g in values])
    within_a_decade = len(shown) and shown.max() < 10 * shown.min()  # a narrow range: 10ⁿ labels would show one
    return fast_figure(data, plot_layout(
        height, legend=LEGEND_BELOW, shapes=[hline(1)],
        xaxis=titled_axis("step of the chain (1: the first, from t = T; log scale)", log=True, tickmode="array",
                          tickvals=[v for v in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000) if v <= n],
                          range=[-0.05, math.log10(n) + 0.05]),
        yaxis=titled_axis("gain |√(1 − ᾱ_s) − √(ᾱ_s/SNR_t)|", log=True,
                          **(log_labels(shown) if within_a_decade else {})),
    ))
