"""The inpainting panel's own mask (app.painted_mask): the part painted over is hidden, the rest kept known."""

from __future__ import annotations

import gradio as gr
import numpy as np
import pytest
import torch

from app import checkpoint_access, figures, images, inpaint_panel, painted_mask
from app.painted_mask import PAINT_CANVAS, PAINTED

MNIST = str(checkpoint_access.REPO_CHECKPOINTS / "mnist")
MOONS = str(checkpoint_access.REPO_CHECKPOINTS / "moons")
QUIET = dict(progress=lambda *a, **k: None)


def painted(rows=slice(None), columns=slice(None)) -> dict:
    """A box's value (as Gradio gives it) with paint over the box pixels at ``rows``, ``columns``."""
    layer = np.zeros((PAINT_CANVAS, PAINT_CANVAS, 4), np.uint8)
    layer[rows, columns] = (99, 149, 237, 255)
    return {"background": np.zeros((PAINT_CANVAS, PAINT_CANVAS, 4), np.uint8), "layers": [layer], "composite": None}


def test_a_pixel_is_hidden_where_paint_covers_half_of_it_or_more():
    known = painted_mask.painted_known(painted(rows=slice(180, None)), (1, 28, 28))  # the bottom 100 of 280 rows
    assert known.shape == (1, 1, 28, 28) and known.dtype == torch.bool
    assert known[..., :18, :].all() and not known[..., 18:, :].any()
    half = painted_mask.painted_known(painted(columns=slice(0, 5)), (1, 28, 28))  # 5 of column 0's 10 box pixels
    assert not half[..., 0].any() and half[..., 1:].all()
    less = painted_mask.painted_known(painted(columns=slice(0, 14)), (1, 28, 28))  # column 1: 4 of 10, kept
    assert not less[..., 0].any() and less[..., 1:].all()
    colour = painted_mask.painted_known(painted(rows=slice(180, None)), (3, 32, 32))  # 8.75 box pixels a row
    assert colour.shape == (1, 3, 32, 32) and torch.equal(colour[:, 0], colour[:, 2])
    assert colour[..., :21, :].all() and not colour[..., 21:, :].any()  # row 20: 4 of its 9 box pixels painted
    assert painted_mask.painted_label(known) == "what you left unpainted (64% of the pixels)"


def test_nothing_or_everything_hidden_is_refused_in_words():
    for empty in (None, {"background": None, "layers": [], "composite": None}, painted(rows=slice(0, 0))):
        with pytest.raises(gr.Error, match="Paint over the part to hide"):
            painted_mask.painted_known(empty, (1, 28, 28))
    with pytest.raises(gr.Error, match="covers no pixel of the picture by half"):
        painted_mask.painted_known(painted(rows=slice(100, 104), columns=slice(100, 104)), (1, 28, 28))
    with pytest.raises(gr.Error, match="covers the whole picture"):
        painted_mask.painted_known(painted(), (1, 28, 28))


def test_the_box_shows_the_models_first_example_beneath_the_paint():
    background = painted_mask.paint_background(MNIST, [])
    assert background.shape == (PAINT_CANVAS, PAINT_CANVAS, 3) and background.dtype == np.uint8
    first = images.image_pixels(images.mnist_digits(1))[0]  # the first example an inpainting fills in
    assert np.array_equal(background[5::10, 5::10, 0], first) and np.array_equal(background[..., 0], background[..., 2])
    assert np.array_equal(background[::10, ::10], background[9::10, 9::10])  # each pixel a 10 × 10 square
    assert (painted_mask.paint_background(MOONS, []) == painted_mask.EMPTY_BACKGROUND).all()  # no picture to paint on


def test_the_box_gets_the_models_first_example_and_keeps_its_paint_while_that_stays():
    """For the painted part, the picture beneath the box is the model's first example; none is sent (the box is left
    as it is, paint and all) while the box shows that picture, nor for another known part or a 2D model."""
    beneath = painted_mask.picture_beneath(MNIST, [], PAINTED)  # first shown: the example
    assert np.array_equal(beneath, painted_mask.paint_background(MNIST, []))
    conditional = str(checkpoint_access.REPO_CHECKPOINTS / "mnist_conditional")  # the same digits beneath
    assert painted_mask.picture_beneath(conditional, [], PAINTED, beneath) == gr.skip()
    assert painted_mask.picture_beneath(MNIST, [], "left", beneath) == gr.skip()  # the box hidden with its paint
    assert painted_mask.picture_beneath(MOONS, [], PAINTED, beneath) == gr.skip()  # no painted part for 2D
    other = np.zeros_like(beneath)
    assert np.array_equal(painted_mask.picture_beneath(MNIST, [], PAINTED, other), beneath)  # another picture: sent
    from app import build_app

    helpers = [d for d in build_app().fns.values() if getattr(d.fn, "__name__", "") in ("picture_beneath",
                                                                                         "mask_dropdown")]
    assert len(helpers) == 3 and all(d.api_visibility == "private" for d in helpers)  # not endpoints of the API


def test_digits_completed_around_a_painted_part():
    value = painted(rows=slice(180, None))
    figure, stats = inpaint_panel.fill_in(MNIST, "ddim", 0.0, 10, "uniform", 4, 0, False, [], PAINTED, 2, 1, value,
                                          **QUIET)
    assert "4 training examples, known: what you left unpainted (64% of the pixels)" in stats
    fig = figures.as_figure(figure)
    assert fig.layout.annotations[1].text == "known (hidden in blue)"
    job = inpaint_panel.inpainting_inputs(MNIST, "ddim", 0.0, 10, "uniform", 4, 0, False, [], PAINTED, 2, 1, value)
    completed, _ = inpaint_panel.complete(job, 2)
    assert torch.equal(completed[..., :18, :], job.examples.cpu()[..., :18, :])  # the unpainted rows, exactly
    assert not torch.equal(completed[..., 18:, :], job.examples.cpu()[..., 18:, :])  # the painted ones drawn
    with pytest.raises(gr.Error, match="Paint over the part to hide"):  # through the API without the box
        inpaint_panel.fill_in(MNIST, "ddim", 0.0, 10, "uniform", 4, 0, False, [], PAINTED, 2, **QUIET)
    with pytest.raises(gr.Error, match="Choose what is known"):  # a 2D model has no painted part
        inpaint_panel.fill_in(MOONS, "ddim", 0.0, 10, "uniform", 100, 0, False, [], PAINTED, 2, 1, value, **QUIET)
