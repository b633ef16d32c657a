"""`app.log_axes`: the ticks, their text and the range of a log axis, fitted to its values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app import log_axes


def labels_between(ticks, low, high):
    return [f"{v:g}" for v in ticks if low <= v <= high]


def test_log_ticks_label_every_digit_within_a_decade_and_1_2_5_beyond():
    assert labels_between(log_axes.log_ticks(np.array([0.25, 0.8])), 0.2, 0.9) == \
        ["0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9"]
    assert labels_between(log_axes.log_ticks(np.array([0.03, 1.0, np.nan])), 0.01, 1) == \
        ["0.01", "0.02", "0.05", "0.1", "0.2", "0.5", "1"]
    # a steps sweep's SW ratios, 0.7 … 9: 1 … 9 piled 5, 6, 7, 8, 9 into the axis's top fifth
    assert labels_between(log_axes.log_ticks([0.919, 7.78, 0.7, 9.0]), 0.7, 9) == ["1", "2", "3", "5"]
    assert labels_between(log_axes.log_ticks([0.97, 1.42, 1.14, math.inf]), 0.9, 1.5) == \
        ["0.9", "1", "1.1", "1.2", "1.3", "1.4", "1.5"]  # within a factor of 2 (a steps sweep of FID ratios)
    assert labels_between(log_axes.log_ticks([0.837, 1.69]), 0.8, 1.7) == \
        ["0.8", "0.9", "1", "1.1", "1.2", "1.3", "1.4", "1.5", "1.6", "1.7"]  # 1..9 alone would label 0.9 and 1 only
    assert labels_between(log_axes.log_ticks([0.692, 1.72]), 0.69, 1.72) == \
        ["0.7", "0.8", "0.9", "1", "1.1", "1.2", "1.3", "1.4", "1.5", "1.6", "1.7"]  # not 0.7 … 1 alone, 1 … 1.72 bare
    assert labels_between(log_axes.log_ticks([2.1, 2.9]), 2.1, 2.9) == ["2.2", "2.4", "2.6", "2.8"]  # within 1.4×
    assert labels_between(log_axes.log_ticks([0.26, 0.31]), 0.26, 0.31) == ["0.26", "0.27", "0.28", "0.29", "0.3", "0.31"]
    assert log_axes.log_ticks([2e3, 0.05]) == [10.0**e for e in range(-2, 5)]  # 5 decades: every power
    assert log_axes.tick_text(2e-6) == "2·10<sup>−6</sup>" and log_axes.tick_text(0.02) == "0.02"


def test_a_narrow_range_is_padded_and_labelled_evenly():
    assert log_axes.log_range([0.26, 0.31]) is None  # plotly fits the axis to them
    low, high = (10**v for v in log_axes.log_range([0.5, 0.501]))  # within 5 %: the axis is padded about them
    assert low == pytest.approx(0.5005 / 1.12, rel=1e-3) and high == pytest.approx(0.5005 * 1.12, rel=1e-3)
    assert labels_between(log_axes.log_ticks([0.5]), 0.5 / 1.12, 0.5 * 1.12) == ["0.46", "0.48", "0.5", "0.52", "0.54",
                                                                               "0.56"]


def test_an_axis_reaches_up_to_the_label_above_values_far_above_the_last():
    """A steps sweep's 7.78 sat over a bare stretch above the label 5: the axis reaches up to 10; not where a label
    is near."""
    low, high = log_axes.up_to_a_label([0.919, 7.78, 0.7])["range"]
    assert 10**high > 10 and 10**low < 0.7 and log_axes.up_to_a_label([0.919, 4.8, 0.7]) == {}
    assert log_axes.up_to_a_label([1e-5, 1e9]) == {}  # its top label is its highest value (it had raised)
