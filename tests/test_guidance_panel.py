"""The Reverse tab's classifier-guidance panel (app.guidance_panel), on the shipped mnist and eight_gaussians models."""

from __future__ import annotations

import re
import types

import gradio as gr
import pytest

from app import figures, guidance_panel, reverse_tab

SWISS = str(reverse_tab.REPO_CHECKPOINTS / "swiss_roll_linear")
MNIST = str(reverse_tab.REPO_CHECKPOINTS / "mnist")
GAUSSIANS = str(reverse_tab.REPO_CHECKPOINTS / "eight_gaussians")


def test_guided_digits_beside_unguided_ones_from_the_same_noise():
    figure, stats = guidance_panel.guide(MNIST, "ddim", 0.0, 20, "uniform", 8, 0, [], "7", 3.0,
                                         progress=lambda *a, **k: None)
    fig = figures.as_figure(figure)
    assert [a.text for a in fig.layout.annotations[:2]] == ["unguided (s = 0)", "guided towards 7 (s = 3)"]
    assert len(fig.data) == 2
    unguided, guided = (int(k) for k in re.findall(r"\*\*(\d) of 8\*\*", stats))
    assert unguided <= 3 and guided >= 6, stats
    assert "8 samples from the same noise" in stats and "20 of T = 1000 steps" in stats


def test_the_guided_chain_plays_in_the_player():
    page, stats, gif, _, sprite = guidance_panel.play(types.SimpleNamespace(session_hash="guide"), MNIST, "ddim", 0.0,
                                                      10, "uniform", 4, 0, 6, [], "3", 2.0, progress=None)
    assert 'data-ts="1000,' in page and ',0"' in page and "predicted x̂₀" in page
    assert "4 samples" in stats and gif.endswith(".gif") and sprite.endswith(".png")


def test_class_choices_follow_the_model():
    dropdown = guidance_panel.class_dropdown(MNIST, None)
    assert [c[0] for c in dropdown.choices] == [str(k) for k in range(10)] and dropdown.value == "7"
    assert guidance_panel.class_dropdown(MNIST, "2").value == "2"
    assert guidance_panel.class_dropdown(SWISS, "2").choices == [] and guidance_panel.class_dropdown(SWISS).value is None
    gaussians = guidance_panel.class_dropdown(GAUSSIANS, "7")
    assert len(gaussians.choices) == 8 and gaussians.value == "0° (right)"


def test_the_eight_gaussians_are_steered_by_their_exact_classes():
    figure, stats = guidance_panel.guide(GAUSSIANS, "ddim", 0.0, 20, "uniform", 5000, 0, [], "90° (top)", 1.0,
                                         progress=lambda *a, **k: None)
    fig = figures.as_figure(figure)
    assert [a.text for a in fig.layout.annotations[:2]] == ["unguided (s = 0)", "guided towards 90° (top) (s = 1)"]
    unguided, guided = (int(k.replace(",", "")) for k in re.findall(r"\*\*([\d,]+) of 2,000\*\*", stats))
    assert 150 < unguided < 350 and guided > 1980, stats  # 5,000 asked: 2,000 points, an eighth of them at the top
    spread, own = (float(v) for v in re.search(r"spread about it .*? (\d\.\d+), the component's own (\d\.\d+)",
                                                stats).groups())
    assert 0.5 * own < spread < 1.5 * own
    page, stats, *_ = guidance_panel.play(types.SimpleNamespace(session_hash="guide-2d"), GAUSSIANS, "ddim", 0.0, 10,
                                          "uniform", 300, 0, 6, [], "180° (left)", 3.0, progress=None)
    assert 'data-ts="1000,' in page and "300 samples" in stats


def test_refusals():
    quiet = dict(progress=lambda *a, **k: None)
    with pytest.raises(gr.Error, match=r"Guidance needs a shipped classifier of the model's data \(there is one for mnist\) "
                                       r"or data of known classes \(the 8 Gaussians\); this model is of swiss_roll"):
        guidance_panel.guide(SWISS, "ddpm_small", 0.0, 10, "uniform", 8, 0, [], "7", 3.0, **quiet)
    with pytest.raises(gr.Error, match="The class to steer towards must be one of 0, 1, 2"):
        guidance_panel.guide(MNIST, "ddim", 0.0, 10, "uniform", 8, 0, [], "seven", 3.0, **quiet)
    for bad in (25, -1, "a lot"):
        with pytest.raises(gr.Error, match="guidance scale must be a number from 0 to 20"):
            guidance_panel.guide(MNIST, "ddim", 0.0, 10, "uniform", 8, 0, [], "7", bad, **quiet)
