"""The Reverse tab's inpainting panel (app.inpaint_panel), on shipped checkpoints."""

from __future__ import annotations

import re
import types

import gradio as gr
import numpy as np
import pytest
import torch

from app import checkpoint_access, figures, images, inpaint_panel, reverse_tab
from core.checkpoints import load_checkpoint, save_checkpoint
from core.inpaint import IMAGE_MASKS, POINT_MASKS, known_mask

SWISS = str(checkpoint_access.REPO_CHECKPOINTS / "swiss_roll_linear")
MNIST = str(checkpoint_access.REPO_CHECKPOINTS / "mnist")
QUIET = dict(progress=lambda *a, **k: None)


def shares(stats: str) -> list[float]:
    return [float(x) for x in re.findall(r"\*\*(\d+)%\*\*", stats)]


def test_swiss_roll_completions_keep_x_and_resampling_puts_more_on_the_roll():
    figure, stats = inpaint_panel.fill_in(SWISS, "ddpm_small", 0.0, 100, "log_snr", 400, 0, False, [], "x", 3, **QUIET)
    fig = figures.as_figure(figure)
    assert [a.text for a in fig.layout.annotations[:3]] == [
        "x₀: training examples", "replacement (U = 1)", "resampled (U = 3)"]
    clouds = [np.column_stack([trace.x, trace.y]) for trace in fig.data]
    assert len(clouds) == 6 and all(len(c) == reverse_tab.REFERENCE_POINTS for c in clouds[0::2])  # grey beneath each
    examples, replaced, resampled = clouds[1::2]
    assert len(examples) == 400
    assert np.array_equal(replaced[:, 0], examples[:, 0]) and np.array_equal(resampled[:, 0], examples[:, 0])
    assert not np.allclose(replaced[:, 1], examples[:, 1])
    replaced_share, resampled_share = shares(stats)
    assert replaced_share < 88 < resampled_share, stats
    assert "known: x (y is drawn)" in stats and "100 of T = 1000 steps, evenly in log-SNR" in stats
    assert "examples themselves 100%" in stats


def test_digits_completed_from_their_left_half():
    figure, stats = inpaint_panel.fill_in(MNIST, "ddim", 0.0, 10, "uniform", 4, 0, False, [], "left", 2, **QUIET)
    fig = figures.as_figure(figure)
    assert [a.text for a in fig.layout.annotations[:4]] == [
        "x₀: training examples", "known (hidden in blue)", "replacement (U = 1)", "resampled (U = 2)"]
    assert len(fig.data) == 4
    assert "4 training examples, known: the left half" in stats
    assert re.search(r"reads the same class as in the example: replacement \(U = 1\) \*\*\d of 4\*\*, resampled "
                     r"\(U = 2\) \*\*\d of 4\*\*", stats), stats
    rms = [float(x) for x in re.findall(r"\*\*([\d.]+)\*\* ?", stats.split("hidden part:")[1].split("\n")[0])]
    assert len(rms) == 2 and all(0 < r < 2 for r in rms), stats


def test_hidden_pixels_are_painted():
    examples = torch.linspace(-1, 1, 2 * 16).view(2, 1, 4, 4)
    known = known_mask("top", (1, 4, 4))
    shown = images.paint_hidden(examples, known)
    assert shown.shape == (2, 3, 4, 4)
    assert torch.equal(shown[:, :, :2], examples[:, :, :2].expand(-1, 3, -1, -1))  # the known half as it was
    assert torch.equal(shown[:, :, 2:], images.HIDDEN_COLOUR.view(1, 3, 1, 1).expand(2, 3, 2, 4))


def test_mask_choices_follow_the_model():
    assert [name for _, name in inpaint_panel.mask_choices("2d")] == list(POINT_MASKS)
    assert [name for _, name in inpaint_panel.mask_choices("image")] == [*IMAGE_MASKS, "painted"]
    assert inpaint_panel.mask_dropdown(MNIST, "x").value == "left"  # a 2D choice does not fit an image model
    assert inpaint_panel.mask_dropdown(MNIST, "pixels").value == "pixels"
    assert inpaint_panel.mask_dropdown(SWISS, "frame").value == "x"


def test_refusals(tmp_path):
    for not_a_choice in ("left", ["x"], {"x": 1}):  # an image's, a list or a dict through the API (a TypeError)
        with pytest.raises(gr.Error, match="Choose what is known"):
            inpaint_panel.fill_in(SWISS, "ddpm_small", 0.0, 10, "uniform", 100, 0, False, [], not_a_choice, 2, **QUIET)
    with pytest.raises(gr.Error, match="Resampling rounds must be a whole number from 1 to 20"):
        inpaint_panel.fill_in(SWISS, "ddpm_small", 0.0, 10, "uniform", 100, 0, False, [], "x", 21, **QUIET)
    with pytest.raises(gr.Error, match="Jump back must be a whole number from 1 to 25"):
        inpaint_panel.fill_in(SWISS, "ddpm_small", 0.0, 10, "uniform", 100, 0, False, [], "x", 2, 26, **QUIET)
    with pytest.raises(gr.Error, match="U × sampling steps is 3,000: too slow"):
        inpaint_panel.fill_in(MNIST, "ddpm_small", 0.0, 0, "uniform", 4, 0, False, [], "left", 3, **QUIET)
    with pytest.raises(gr.Error, match="η must be a number from 0 to 1"):
        inpaint_panel.fill_in(SWISS, "ddim", 2.0, 10, "uniform", 100, 0, False, [], "x", 2, **QUIET)
    checkpoint = load_checkpoint(SWISS)
    for weight in checkpoint.model.parameters():
        weight.data.fill_(1e30)  # finite weights whose activations overflow: NaN samples
    broken = str(save_checkpoint(tmp_path / "nan", checkpoint.model, checkpoint.schedule, checkpoint.data))
    with pytest.raises(gr.Error, match="NaN or infinite"):
        inpaint_panel.fill_in(broken, "ddpm_small", 0.0, 10, "uniform", 100, 0, False, [broken], "y", 2, **QUIET)


def test_the_resampled_chain_plays_in_the_player():
    """"Play": the tab's player shows the inpainting chain; it ends on the panel's resampled completion (same seed)."""
    request = types.SimpleNamespace(session_hash="inpaint")
    page, stats, movie, sprite = inpaint_panel.play(request, MNIST, "ddim", 0.0, 10, "uniform", 4, 0, 6, False, [],
                                                    "top", 2, progress=None)
    assert 'data-ts="1000,' in page and ',0"' in page and reverse_tab.KNOWN_CAPTION in page
    assert "**Inpainted**: 4 training examples (the left grid), of which the top half is kept" in stats
    assert "2 resampling rounds per step" in stats and "classifier reads the same class as in its example in" in stats
    assert movie.sprite == sprite and sprite.endswith(".png")
    assert movie.stem == "reverse-mnist-ddim10-seed0-inpainted-top-u2"  # a plain Generate's name, before
    job = inpaint_panel.inpainting_inputs(MNIST, "ddim", 0.0, 10, "uniform", 4, 0, False, [], "top", 2)
    chain = reverse_tab.sample_chain(job.checkpoint, method="ddim", variance="small", eta=0.0, steps=10, n=4, seed=0,
                                     n_frames=6, starts=job.examples, known=job.known, known_label=job.known_label,
                                     resample=2)
    completed, _ = inpaint_panel.complete(job, 2)
    assert torch.equal(chain.samples, completed)
    assert torch.equal(completed[..., :14, :], job.examples[..., :14, :])  # the kept half, exactly
    with pytest.raises(ValueError, match="joins at t₀ or inpaints them, not both"):
        reverse_tab.sample_chain(job.checkpoint, method="ddim", variance="small", eta=0.0, steps=10, n=4, seed=0,
                                 starts=job.examples, start_t=500, known=job.known)
    with pytest.raises(gr.Error, match="Frames"):
        inpaint_panel.play(request, MNIST, "ddim", 0.0, 10, "uniform", 4, 0, 1, False, [], "top", 2, progress=None)


def test_a_2d_inpainting_chain_rings_its_examples():
    request = types.SimpleNamespace(session_hash="inpaint-2d")
    page, stats, *_ = inpaint_panel.play(request, SWISS, "ddpm_small", 0.0, 10, "log_snr", 50, 0, 6, False, [], "y", 2,
                                         progress=None)
    assert "rings: the examples they complete" in page and "their x₀ before noising" not in page
    assert "of which y (x is drawn) is kept" in stats


def test_jumps_back_are_taken_and_named():
    """Rounds that go back 5 steps: the chain differs from one-step rounds, the columns and the stats say so."""
    figure, stats = inpaint_panel.fill_in(SWISS, "ddpm_small", 0.0, 50, "log_snr", 300, 0, False, [], "x", 3, 5, **QUIET)
    labels = [a.text for a in figures.as_figure(figure).layout.annotations[:3]]
    assert labels == ["x₀: training examples", "replacement (U = 1)", "resampled (U = 3, J = 5)"]
    _, one_step = inpaint_panel.fill_in(SWISS, "ddpm_small", 0.0, 50, "log_snr", 300, 0, False, [], "x", 3, **QUIET)
    assert shares(stats)[0] == shares(one_step)[0] and stats != one_step  # the same replacement, other resampling
    page, stats, *_ = inpaint_panel.play(types.SimpleNamespace(session_hash="jump"), SWISS, "ddpm_small", 0.0, 20,
                                         "log_snr", 50, 0, 6, False, [], "x", 2, 4, progress=None)
    assert "2 resampling rounds per step, each going back 4 steps" in stats and "(hidden part)" in page


def test_the_stats_measure_the_hidden_part_and_read_every_example():
    """The difference to the examples is taken over the hidden part only (a completion 1 off there is 1.000 per pixel,
    not 1/√2 over the whole digit), and the classifier's agreement counts the completions that read as their example."""
    checkpoint, choice = reverse_tab.model_and_sampler(MNIST, [], False, "ddim", 0.0, 10, "uniform")
    job = types.SimpleNamespace(checkpoint=checkpoint, choice=choice, known_label="the left half", jump=1)
    examples = images.mnist_digits(4)
    known = known_mask("left", (1, 28, 28))
    off = torch.where(known, examples, examples + 1.0)
    text = inpaint_panel.fill_in_markdown(job, False, examples, known, {1: examples.clone(), 5: off}, {1: 0.1, 5: 0.5},
                                          None)
    assert "replacement (U = 1) **0.000**, resampled (U = 5) **1.000** per pixel" in text
    assert "replacement (U = 1) **4 of 4**" in text


def test_on_the_data_counts_a_small_sets_points_once():
    """The completions are measured against draws of the training data: of a 16-point set, 10,000 draws had been
    called "one of 10,000 training points"."""
    checkpoint, choice = reverse_tab.model_and_sampler(SWISS, [], False, "ddim", 0.0, 10, "uniform")
    job = types.SimpleNamespace(checkpoint=checkpoint, choice=choice, known_label="x", jump=1)
    points = torch.randn(16, 2, generator=torch.Generator().manual_seed(0))
    draws = points[torch.randint(0, 16, (10_000,), generator=torch.Generator().manual_seed(1))]
    on_points = points[:4] + 0.01
    text = inpaint_panel.fill_in_markdown(job, False, on_points, torch.tensor([True, False]), {1: on_points},
                                          {1: 0.1}, draws)
    assert "within 0.05 of one of 16 training points): replacement (U = 1) **100%**" in text, text


def test_the_replacement_column_is_kept_for_another_u_or_jump(monkeypatch):
    """The replacement (U = 1) is the same for every U and jump, and had been filled in again at each click: it is
    kept (for this model, sampler, seed, examples and mask), and the stats say so. The ideal denoiser in place of the
    network, or another seed, fills it in anew."""
    filled = []
    real = inpaint_panel.complete
    monkeypatch.setattr(inpaint_panel, "complete", lambda job, rounds, progress=None:
                        filled.append(rounds) or real(job, rounds, progress))

    def click(rounds, jump=1, seed=11, ideal=False):
        figure, stats = inpaint_panel.fill_in(SWISS, "ddim", 0.0, 10, "uniform", 200, seed, ideal, [], "x", rounds,
                                              jump, **QUIET)
        replaced = figures.as_figure(figure).data[3]  # the replacement's points, over the grey data
        return np.column_stack([replaced.x, replaced.y]), stats

    first, stats = click(2)
    assert filled == [1, 2] and re.search(r"replacement \(U = 1\) in [\d.]+ (ms|s)", stats), stats
    again, stats = click(4, jump=3)
    assert filled == [1, 2, 4] and np.array_equal(again, first)
    assert "replacement (U = 1) kept from an earlier click, resampled (U = 4, J = 3) in" in stats, stats
    click(1)
    assert filled == [1, 2, 4]  # U = 1 alone: nothing left to fill in
    click(2, ideal=True)
    click(2, seed=12)
    assert filled == [1, 2, 4, 1, 2, 1, 2]


def test_the_ideal_denoiser_never_shares_the_networks_kept_column(tmp_path, monkeypatch):
    """A model whose data say what the ideal denoiser's say (an upload's config may say anything) had been handed
    the ideal denoiser's replacement column, kept under the same key."""
    checkpoint = load_checkpoint(MNIST)
    ideal_data = reverse_tab.ideal_checkpoint(checkpoint).data
    lookalike = str(save_checkpoint(tmp_path / "lookalike", checkpoint.model, checkpoint.schedule, ideal_data))
    filled = []
    real = inpaint_panel.complete
    monkeypatch.setattr(inpaint_panel, "complete", lambda job, rounds, progress=None:
                        filled.append(rounds) or real(job, rounds, progress))
    for ideal in (True, False):
        inpaint_panel.fill_in(lookalike, "ddim", 0.0, 5, "uniform", 4, 5, ideal, [lookalike], "top", 2, **QUIET)
    assert filled == [1, 2, 1, 2]
