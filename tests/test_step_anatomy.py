"""The Reverse tab's anatomy of one step (app.step_anatomy), on shipped checkpoints."""

from __future__ import annotations

import re

import gradio as gr
import pytest
import torch

from app import checkpoint_access, figures, formulas, reverse_tab, step_anatomy
from core.checkpoints import load_checkpoint, save_checkpoint
from core.prediction import as_eps_model
from core.sampler import plan_steps

SWISS = str(checkpoint_access.REPO_CHECKPOINTS / "swiss_roll_linear")
MNIST = str(checkpoint_access.REPO_CHECKPOINTS / "mnist")


def number(pattern: str, text: str) -> float:
    return float(re.search(pattern, text).group(1))


def test_the_loss_at_t_is_small_where_x_t_is_nearly_noise_and_large_where_it_is_nearly_data():
    """ε is easy to read off x_t when x_t is almost ε (large t) and hard when the noise is faint (small t): the
    shape of the Train tab's loss by t, measured on the examples shown."""
    losses = {}
    for t in (900, 100, 2):
        figure, stats = step_anatomy.show_step(SWISS, t, "ddpm_small", 0.0, 0, "uniform", 0, False, [])
        losses[t] = number(r"mean squared difference \*\*([\d.e+-]+)\*\*", stats)
        assert f"noised to **t = {t}** of 1000" in stats and f"step {t} → {t - 1}: " in stats
        assert "over the training data in grey." in stats
        # where ε̂ is about as far off as predicting 0, the stats say why that matters little
        assert ("ε moves x_t by only √(1 − ᾱ_t) = 0.0" in stats) == (t == 2), stats
    assert losses[900] < 0.01 < losses[100] < losses[2] and 0.5 < losses[2] < 1.5
    fig = figures.as_figure(figure)
    assert [a.text for a in fig.layout.annotations[:4]] == step_anatomy.POINT_COLUMNS
    # each panel one picture: the 1,000 points over the training data in grey (12,000 SVG markers made a drag of t
    # take ~1.7 s a step in the browser)
    assert not fig.data and len(fig.layout.images) == 4


def test_a_deterministic_step_is_the_formula_it_shows():
    checkpoint, choice = reverse_tab.model_and_sampler(SWISS, [], False, "ddim", 0.0, 50, "uniform")
    assert step_anatomy.next_timestep(checkpoint, choice, 500) == 490  # DDIM-50: 1000, 980, 959, ..., 511, 490, ...
    assert step_anatomy.next_timestep(checkpoint, choice, 511) == 490
    assert step_anatomy.next_timestep(checkpoint, choice, 1) == 0
    parts = step_anatomy.take_apart(checkpoint, choice, 500, seed=3)
    step = plan_steps(checkpoint.schedule, [500, 490], "ddim")[0]
    assert parts["s"] == 490
    assert torch.allclose(parts["x_s"], step.c_x0 * parts["x0_hat"] + step.c_eps * parts["eps_hat"], atol=1e-5)
    alpha_bar = float(checkpoint.schedule.alpha_bars[500])
    assert torch.allclose(parts["x_t"], alpha_bar**0.5 * parts["x0"] + (1 - alpha_bar) ** 0.5 * parts["eps"], atol=1e-5)
    again = step_anatomy.take_apart(checkpoint, choice, 200, seed=3)
    assert torch.equal(again["eps"], parts["eps"]) and torch.equal(again["x0"], parts["x0"])  # ε held fixed over t


def test_the_ideal_denoiser_finds_the_noise_of_its_own_digits():
    """The bundled digits are the ideal denoiser's training set: at small t it names their noise exactly."""
    figure, stats = step_anatomy.show_step(MNIST, 50, "ddim", 0.0, 100, "uniform", 0, True, [])
    assert number(r"mean squared difference \*\*([\d.e+-]+)\*\*", stats) < 1e-3
    assert number(r"root-mean-square difference ([\d.]+)", stats) < 1e-3 and "4 of 4" in stats
    fig = figures.as_figure(figure)
    assert [a.text for a in fig.layout.annotations[:7]] == step_anatomy.IMAGE_COLUMNS
    assert len(fig.data) == 4 * 7  # four examples, seven pictures each


def test_the_loss_shown_for_digits_is_the_networks_own_error():
    """With images the step goes on from x̂₀ clipped to [−1, 1], and the ε̂ that implies is closer to ε than the
    network's: the loss shown as L_simple read 0.0000 at t = T. The ε̂ shown, and its loss, are the network's own."""
    checkpoint, choice = reverse_tab.model_and_sampler(MNIST, [], False, "ddim", 0.0, 100, "uniform")
    parts = step_anatomy.take_apart(checkpoint, choice, 1000, seed=0)
    with torch.inference_mode():
        raw = checkpoint.model(parts["x_t"], torch.full((4,), 1000))
    assert torch.allclose(parts["eps_hat"], raw, atol=1e-6)
    l_simple = float((parts["eps"] - raw).pow(2).mean())
    _, stats = step_anatomy.show_step(MNIST, 1000, "ddim", 0.0, 100, "uniform", 0, False, [])
    assert number(r"mean squared difference \*\*([\d.e+-]+)\*\*", stats) == pytest.approx(l_simple, rel=0.01)
    # the step itself goes on from the clipped x̂₀: DDIM's x_s = √ᾱ_s·x̂₀ + √(1 − ᾱ_s)·ε̂ with the ε̂ it implies
    ab = checkpoint.schedule.alpha_bars
    clipped_eps = (parts["x_t"] - ab[1000].sqrt() * parts["x0_hat"]) / (1 - ab[1000]).sqrt()
    s = parts["s"]
    assert torch.allclose(parts["x_s"], ab[s].sqrt() * parts["x0_hat"] + (1 - ab[s]).sqrt() * clipped_eps, atol=1e-4)


def test_the_trained_digits_model_reads_the_digit_before_the_pixels():
    _, stats = step_anatomy.show_step(MNIST, 300, "ddim", 0.0, 100, "uniform", 0, False, [])
    assert "step 300 → 294: x₂₉₄ = " in stats and "·ε̂" in stats and "z ~" not in stats  # DDIM, η = 0: no noise
    # what the pictures show: the error column is drawn 3× larger than ε and ε̂ beside it (and no grey data here)
    assert step_anatomy.PICTURES_KEY["image"] in stats and "÷3 to fit, the error ε − ε̂ at its own size" in stats
    assert number(r"reads the class of the example in (\d) of 4", stats) >= 3


@pytest.mark.parametrize("t, seed, message", [(0, 0, "t must"), (1001, 0, "t must"), (10, -1, "Seed")])
def test_bad_inputs_raise_gr_error(t, seed, message):
    with pytest.raises(gr.Error, match=message):
        step_anatomy.show_step(SWISS, t, "ddpm_small", 0.0, 0, "uniform", seed, False, [])


def test_the_t_slider_follows_the_checkpoint():
    assert step_anatomy.t_value(SWISS) == 500 and step_anatomy.t_value(SWISS, 20) == 20
    assert step_anatomy.t_value(SWISS, 5000) == 500


def test_a_v_model_shows_its_own_error_beside_the_eps_error(tmp_path):
    """‖ε − ε̂‖² = ᾱ_t·‖v − v̂‖² (core.prediction): the two numbers of the panel keep that ratio."""
    shipped = load_checkpoint(SWISS)
    net = as_eps_model(shipped.model, shipped.schedule, "v")  # the ε network read as a v network: another model
    path = str(save_checkpoint(tmp_path / "v_model", net, shipped.schedule, shipped.data))
    t = 300
    _, stats = step_anatomy.show_step(path, t, "ddpm_small", 0.0, 0, "uniform", 0, False, [path])
    eps_error = number(r"mean squared difference \*\*([\d.e+-]+)\*\*", stats)
    own_error = number(r"on the target it learns, is \*\*([\d.]+)\*\*", stats)
    assert "This network predicts v" in stats and "what L_simple would be at this t" in stats
    assert eps_error == pytest.approx(float(shipped.schedule.alpha_bars[t]) * own_error, rel=2e-3)
    _, stats = step_anatomy.show_step(SWISS, t, "ddpm_small", 0.0, 0, "uniform", 0, False, [])
    assert "This network predicts" not in stats and "the plain loss L_simple at this t" in stats


def test_points_the_2d_figure_cannot_show_are_counted():
    """At t = T an ε network's x̂₀ = (x_t − √(1 − ᾱ_t)·ε̂)/√ᾱ_t divides its error by √ᾱ_T ≈ 0.006: some land tens of
    units away, beyond the fixed ±4 axes, and the text says how many rather than letting them vanish."""
    _, stats = step_anatomy.show_step(SWISS, 1000, "ddpm_small", 0.0, 0, "uniform", 0, False, [])
    off = int(re.search(r"\*\*([\d,]+) of 1,000 x̂₀ lie beyond the plot's ±4\*\*", stats).group(1).replace(",", ""))
    assert 10 < off < 500, stats
    _, stats = step_anatomy.show_step(SWISS, 100, "ddpm_small", 0.0, 0, "uniform", 0, False, [])
    assert "beyond the plot" not in stats


def test_the_steps_numbers_are_its_own():
    """ᾱ_t and SNR_t = ᾱ_t/(1 − ᾱ_t) of the t shown, and the root-mean-square (not the mean square) of x̂₀ − x₀; the
    faint-noise note only where √(1 − ᾱ_t) < 0.1."""
    checkpoint, choice = reverse_tab.model_and_sampler(SWISS, [], False, "ddpm_small", 0.0, 0, "uniform")
    _, stats = step_anatomy.show_step(SWISS, 500, "ddpm_small", 0.0, 0, "uniform", 0, False, [])
    alpha_bar = float(checkpoint.schedule.alpha_bars[500])
    assert f"(ᾱ_t = {formulas.number(alpha_bar)}, SNR {formulas.number(alpha_bar / (1 - alpha_bar))})" in stats
    parts = step_anatomy.take_apart(checkpoint, choice, 500, seed=0)
    rms = float((parts["x0_hat"] - parts["x0"]).pow(2).mean().sqrt())
    assert f"root-mean-square difference {rms:.3f} per coordinate" in stats
    assert step_anatomy.faint_noise_note(1 - 0.15**2) == "" and step_anatomy.faint_noise_note(1 - 0.05**2)


def test_a_key_on_t_draws_the_step_once_and_its_reset_draws_it_too():
    """A key on a slider sends an input and a release of the same value: the step had been taken apart, sent and
    drawn twice at every key, and the plot shown by a request each time. The release now clicks the hidden
    redraw button only when the value is not the last input's (↺ sends a release alone), and the plot is shown in
    the page (the browser test counts the requests)."""
    with gr.Blocks() as demo:
        step_anatomy.build(reverse_tab.build(gr.State([])))
    fns = list(demo.fns.values())
    redraw = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "reverse-anatomy-redraw")
    steps = [d for d in fns if getattr(d.fn, "__name__", "") == "show_step"]
    assert len(steps) == 1 and (redraw._id, "click") in steps[0].targets
    assert len(steps[0].targets) == 4  # the button, t's input, the redraw and the panel's opening
    slider = next(demo.blocks[block_id] for block_id, kind in steps[0].targets if kind == "input")
    assert (slider._id, "release") not in steps[0].targets and redraw.visible == "hidden"
    releases = [d for d in fns if d.targets == [(slider._id, "release")]]
    assert len(releases) == 1 and releases[0].fn is None and "reverse-anatomy-redraw" in releases[0].js
    inputs = [d for d in fns if d.targets == [(slider._id, "input")] and d.fn is None]
    assert any("ddpmLastInput" in d.js for d in inputs)
    shows = [d for d in fns if d.js and "visible: true" in d.js and steps[0].outputs[0] in d.outputs]
    assert {t for d in shows for t in d.targets} == set(steps[0].targets) and all(d.fn is None for d in shows)


def test_the_panel_draws_as_it_opens():
    """Opened, the panel had stood empty until its button was found: its opening draws the step at its t, as the
    button, a key on t and its ↺ do (one event, so the latest wins)."""
    from app import build_app

    demo = build_app()
    panel = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "reverse-anatomy")
    drawn = [d for d in demo.fns.values() if d.api_name == "show_step"]
    assert len(drawn) == 1 and (panel._id, "expand") in drawn[0].targets and len(drawn[0].targets) == 4
    assert drawn[0].trigger_mode == "always_last"
