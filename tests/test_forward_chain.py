"""The Forward tab's "One step at a time" panel: the chain q(x_t | x_{t−1}) against the jump q(x_t | x_0)."""

from __future__ import annotations

import math

import gradio as gr
import numpy as np
import pytest
import torch

from app import controls, figures, forward_chain, forward_tab
from tests.conftest import DRAWN_RTOL


def _state(data="mnist", schedule="linear", T=1000, seed=0):
    return forward_tab.prepare(None, data, None, None, schedule, T, seed, *controls.default_param_values())


@pytest.mark.parametrize(("data", "kind"), [("mnist", "images"), ("moons", "points")])
def test_the_chain_lands_where_the_jump_does_in_law_not_noise_for_noise(data, kind):
    state = _state(data=data, schedule="cosine")
    x0, chained, rms = forward_chain.run_chain(state, 400)
    jumped = state.schedule.q_sample(x0, 400, state.noise[: len(x0)])
    assert len(x0) == (forward_chain.CHAIN_IMAGES if kind == "images" else forward_tab.N_POINTS)
    a, s = math.sqrt(float(state.schedule.alpha_bars[400])), math.sqrt(1 - float(state.schedule.alpha_bars[400]))
    for x in (chained, jumped):  # the same law: x₀'s part √ᾱ_t·x₀, noise of RMS √(1 − ᾱ_t) ...
        assert float((x - a * x0).square().mean().sqrt()) == pytest.approx(s, rel=0.03)
    assert not torch.allclose(chained, jumped, atol=0.1)  # ... but other noise
    again = forward_chain.run_chain(state, 400)[1]
    assert torch.equal(again, chained)  # the same chain on every redraw of this seed
    other = forward_chain.run_chain(_state(data=data, schedule="cosine", seed=5), 400)[1]
    assert not torch.equal(other, chained)  # New noise draws the chain's noises anew too

    grid, noise, text = forward_chain.chain_view(state, 400)
    titles = [a.text for a in figures.as_figure(grid).layout.annotations]
    assert titles == ["x₀", "x_t after 400 steps", "x_t in one jump"]
    line, dots = figures.as_figure(noise).data
    expected = (1 - state.schedule.alpha_bars[np.asarray(line.x)]).sqrt().numpy()
    assert line.x[0] == 0 and line.x[-1] == 400 and np.allclose(line.y, expected, rtol=DRAWN_RTOL)
    assert dots.x[-1] == 400 and np.allclose(dots.y[1:], (1 - state.schedule.alpha_bars[np.asarray(dots.x[1:])]).sqrt(),
                                             rtol=0.05)
    assert f"root-mean-square of **{float(rms[-1]):.3f}** per {'pixel' if kind == 'images' else 'coordinate'}" in text
    assert f"**{s:.3f}**·ε" in text and "400 steps of x_s" in text


def test_the_panel_at_t_0_and_past_t_and_before_any_data():
    state = _state(T=50)
    grid, noise, text = forward_chain.chain_view(state, 0)
    assert "no step has been taken" in text and figures.as_figure(noise).data[1].y == (0.0,)
    _, noise, text = forward_chain.chain_view(state, 80)  # a t past T (typed, or left from a larger T) is T
    assert figures.as_figure(noise).data[0].x[-1] == 50 and "50 steps of x_s" in text
    _, noise, text = forward_chain.chain_view(state, 1)
    assert "1 step of x_s" in text and "one small noise" in text
    with pytest.raises(gr.Error, match="Nothing to show yet"):
        forward_chain.chain_view(None, 3)


def test_a_long_chain_is_drawn_at_a_bounded_number_of_steps():
    state = _state(T=4000)
    _, noise, _ = forward_chain.chain_view(state, 4000)
    line, dots = figures.as_figure(noise).data
    assert len(line.x) <= forward_chain.CURVE_POINTS and len(dots.x) <= forward_chain.MEASURED_DOTS
    assert line.x[-1] == dots.x[-1] == 4000


def test_the_panel_follows_t_while_open_only():
    state = _state()
    closed = forward_tab.if_open(forward_chain.chain_view, 3)
    assert closed(False, state, 10) == (gr.skip(),) * 3
    grid, _, text = closed(True, state, 10)
    assert "10 steps" in text
    with gr.Blocks() as demo:
        forward_tab.build(gr.State(None), demo)
    names = [getattr(d.fn, "__name__", "") for d in demo.fns.values()]
    assert names.count("chain_view_on_opening") == names.count("targets_view_on_opening") == 1  # on opening each
    assert names.count("open_panels_at_t") == 5  # one event for both panels: on release and after the 4 rebuilds


def test_the_open_panels_are_not_drawn_again_for_the_state_and_t_they_show():
    """A rebuild skipped as unchanged (Enter in T, then a click elsewhere) still drew the open panels again."""
    with gr.Blocks() as demo:
        forward_tab.build(gr.State(None), demo)
    draw = next(d.fn for d in demo.fns.values() if getattr(d.fn, "__name__", "") == "open_panels_at_t")
    state = _state()
    *first, drawn_at = draw(True, True, state, 10, None)  # both panels open: targets (2 outputs), chain (3)
    assert len(first) == 5 and all(view != gr.skip() for view in first)
    assert draw(True, True, state, 10, drawn_at) == (gr.skip(),) * 6
    assert all(view != gr.skip() for view in draw(True, True, state, 11, drawn_at)[:5])  # another t
    other = forward_tab.prepare(state, "mnist", None, None, "cosine", 1000, 0, *controls.default_param_values())
    assert all(view != gr.skip() for view in draw(True, True, other, 10, drawn_at)[:5])  # another schedule
    at_T = draw(True, True, state, 5000, None)[-1]  # a t past T is drawn as T: the same pictures
    assert at_T == drawn_at[:1] + (1000,) and draw(True, True, state, 1000, at_T) == (gr.skip(),) * 6
    # a panel opened draws itself, and may end after a release drew a later t: then the next release draws
    opened = next(d for d in demo.fns.values() if getattr(d.fn, "__name__", "") == "chain_view_on_opening")
    release = next(d for d in demo.fns.values() if getattr(d.fn, "__name__", "") == "open_panels_at_t")
    *panel, after_opening = opened.fn(state, 10)
    assert len(panel) == 3 and after_opening is None and opened.outputs[-1] is release.outputs[-1]  # drawn_at
