"""The Reverse tab's classifier-guidance panel (app.guidance_panel), on the shipped mnist model."""

from __future__ import annotations

import re
import types

import gradio as gr
import pytest

from app import figures, guidance_panel, reverse_tab

SWISS = str(reverse_tab.REPO_CHECKPOINTS / "swiss_roll_linear")
MNIST = str(reverse_tab.REPO_CHECKPOINTS / "mnist")


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


def test_refusals():
    quiet = dict(progress=lambda *a, **k: None)
    with pytest.raises(gr.Error, match=r"Guidance needs a shipped classifier of the model's data \(there is one for mnist\); this model is of swiss_roll"):
        guidance_panel.guide(SWISS, "ddpm_small", 0.0, 10, "uniform", 8, 0, [], "7", 3.0, **quiet)
    with pytest.raises(gr.Error, match="The class to steer towards must be one of 0, 1, 2"):
        guidance_panel.guide(MNIST, "ddim", 0.0, 10, "uniform", 8, 0, [], "seven", 3.0, **quiet)
    for bad in (25, -1, "a lot"):
        with pytest.raises(gr.Error, match="guidance scale must be a number from 0 to 20"):
            guidance_panel.guide(MNIST, "ddim", 0.0, 10, "uniform", 8, 0, [], "7", bad, **quiet)
