"""Log axes labelled to fit their values: the ticks, their text and the range of an axis that plotly's own labelling
would leave bare (one number over a narrow range) or crowded (a label at every power of ten over fifty decades)."""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence

import numpy as np

NARROW_LOG_SPAN = 1.05  # values within this factor of each other are drawn on a log axis padded to ×/÷ 1.12


def log_range(values: Sequence[float]) -> list[float] | None:
    """The log10 range for a log axis over ``values`` that plotly would not fit well: one value, or values within a
    factor of `NARROW_LOG_SPAN` (a single loss; a diverged run's one step), padded to ×/÷ 1.12 about their
    geometric middle; None otherwise (plotly fits the axis)."""
    shown = finite_positive(values)
    if not len(shown) or shown.max() / shown.min() >= NARROW_LOG_SPAN:
        return None
    middle = 0.5 * (math.log10(shown.min()) + math.log10(shown.max()))
    return [middle - math.log10(1.12), middle + math.log10(1.12)]


def up_to_a_label(values: Sequence[float]) -> dict:
    """A log axis's range (plotly's padding, about 5 % each side) stretched up to the next label (`log_ticks`) where the
    highest values lie far above the highest label below them: a steps sweep's 7.8 sat over a bare stretch above 5,
    read as nothing in particular. {} where they do not, or where `log_range` sets the range."""
    shown = finite_positive(values)
    if not len(shown) or log_range(values) is not None:
        return {}
    ticks = log_ticks(shown)
    low, high = math.log10(shown.min()), math.log10(shown.max())
    below = max((t for t in ticks if t <= 10**high), default=None)
    above = min((t for t in ticks if t > 10**high), default=None)
    if below is None or above is None or 10**high <= 1.3 * below:  # labelled near enough (or past the labels)
        return {}
    pad = 0.05 * (math.log10(above) - low)
    return dict(range=[low - pad, math.log10(above) + pad])


MANY_DECADES = 1e4  # log_ticks: values spread wider than this are labelled at powers of ten only


def log_ticks(values: Sequence[float]) -> list[float]:
    """The labelled values of a log axis over ``values`` (non-finite and non-positive ones ignored): over more than
    `MANY_DECADES`, powers of ten (every one, or every other, …: 9 at most); else m·10^k for the
    coarsest of m in {1, 2, 5}, {1, 2, 3, 5}, m in 1..9, or also 1.1 … 1.9 that labels their range (`_labels_cover`;
    0.7 … 9 by 1 … 9 piled 9, 8, 7, 6, 5 into the top fifth of the axis), where
    plotly's own labels would show one number, or none, over a range narrower than a decade; over a narrower range
    still (2.1 … 2.9, or one value: see `log_range`), evenly spaced round numbers, 4 to 10 of them."""
    shown = finite_positive(values)
    if len(shown):
        low, high = (10.0 ** v for v in log_range(shown) or (math.log10(shown.min()), math.log10(shown.max())))
        if high > MANY_DECADES * low:  # powers of ten, at most about 8: 1, 2, 5 in every decade would pile up
            first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
            stride = math.ceil((last - first) / 8)
            return [10.0**e for e in range(first, last + stride, stride)  # the last one at or above the highest,
                    if e <= sys.float_info.max_10_exp]  # unless past float64's (1/ᾱ_t at ᾱ's floor: 4.5·10³⁰⁷)
    for mantissas in ([1, 2, 5], [1, 2, 3, 5], list(range(1, 10)), [1 + k / 10 for k in range(10)] + list(range(2, 10))):
        ticks = [float(f"{m * 10.0**e:.6g}") for e in range(-6, 10) for m in mantissas]
        if not len(shown) or _labels_cover(ticks, low, high):
            return ticks
    quarter = (high - low) / 4
    power = 10.0 ** math.floor(math.log10(quarter))
    step = max(m * power for m in (1, 2, 5) if m * power <= quarter * (1 + 1e-9))  # 4 to 10 steps over the range
    first, last = math.floor(low / step), math.ceil(high / step)
    return [float(f"{k * step:.6g}") for k in range(max(first, 1), last + 1)]


def _labels_cover(ticks: Sequence[float], low: float, high: float) -> bool:
    """Whether ``ticks`` label a log axis from ``low`` to ``high``: at least 4 of them within it, and no stretch of it
    without a label longer than half of it (0.7, 0.8, 0.9, 1 over 0.69 … 1.72 left 1 … 1.72, the upper 60 %, bare)."""
    inside = [math.log10(v) for v in ticks if low <= v <= high]
    edges = [math.log10(low), *inside, math.log10(high)]
    return len(inside) >= 4 and max(b - a for a, b in zip(edges, edges[1:])) <= (edges[-1] - edges[0]) / 2


def log_labels(values: Sequence[float]) -> dict:
    """The labelling of a log axis over ``values`` (`log_ticks`), and its range where they are too close for plotly
    to fit one (`log_range`)."""
    ticks = log_ticks(values)
    labels = dict(tickmode="array", tickvals=ticks, ticktext=[tick_text(v) for v in ticks])
    narrow = log_range(values)
    return labels if narrow is None else dict(labels, range=narrow)


def tick_text(value: float) -> str:
    """A tick label: 0.02, 500, 1.5, and powers of ten as such from 10⁴ up and below 10⁻⁴ (10⁵, 2·10⁻⁶)."""
    text = f"{value:.4g}"
    mantissa, _, exponent = text.partition("e")
    if not exponent:
        return text
    power = f"10<sup>{int(exponent)}</sup>".replace("-", "−")
    return power if mantissa == "1" else f"{mantissa}·{power}"


def finite_positive(values: Sequence[float]) -> np.ndarray:
    """The finite, positive ones of ``values``: those a log axis can show."""
    shown = np.asarray(values, dtype=np.float64)
    return shown[np.isfinite(shown) & (shown > 0)]
