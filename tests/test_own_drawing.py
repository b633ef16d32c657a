"""A drawing as the start of an image model's chain (`app.own_drawing`), and the Reverse tab's SDEdit from it."""

from __future__ import annotations

import re
import types

import gradio as gr
import numpy as np
import PIL.Image
import PIL.ImageDraw
import pytest
import torch

from app import checkpoint_access, figures, own_drawing, reverse_tab
from app.own_drawing import DRAWING_CANVAS, MNIST_BOX, drawing_example, framed_like_mnist
from app.own_points import drawing_ink as ink_of
from core.checkpoints import load_checkpoint, save_checkpoint
from core.data import DataInfo, normalise_points, points_from_drawing
from core.schedules import make_schedule
from core.unet import UNet, unet_config
from tests.conftest import REPO

REQ = types.SimpleNamespace(session_hash="alice")
MNIST = DataInfo("mnist", "image", (1, 28, 28))


def sketch(*lines: list[tuple[int, int]], width: int = 22) -> dict:
    """A Sketchpad value as the drawing box sends it: an opaque white background, the strokes on one layer."""
    layer = PIL.Image.new("RGBA", (DRAWING_CANVAS, DRAWING_CANVAS), (0, 0, 0, 0))
    for points in lines:
        PIL.ImageDraw.Draw(layer).line(points, fill=(0, 0, 0, 255), width=width)
    white = np.full((DRAWING_CANVAS, DRAWING_CANVAS, 4), 255, np.uint8)
    return {"background": white, "layers": [np.asarray(layer)], "composite": None}


SEVEN = sketch([(40, 40), (240, 40), (110, 260)])


def centre_of_mass(picture: np.ndarray) -> tuple[float, float]:
    rows, cols = np.indices(picture.shape)
    return (rows * picture).sum() / picture.sum(), (cols * picture).sum() / picture.sum()


def test_a_digit_is_framed_as_mnist_frames_its_digits():
    ink = np.zeros((280, 280))
    ink[10:60, 150:270] = 1.0  # a wide bar, drawn small in the top right corner
    framed = framed_like_mnist(ink)
    rows, cols = np.nonzero(framed > 0.05)
    assert cols.max() - cols.min() + 1 == MNIST_BOX  # its longer side fits the 20-pixel box
    assert rows.max() - rows.min() + 1 == round(50 * MNIST_BOX / 120)  # its aspect kept
    assert centre_of_mass(framed) == pytest.approx((13.5, 13.5), abs=0.5)  # moved to the centre
    assert framed.sum() == pytest.approx(MNIST_BOX * round(50 * MNIST_BOX / 120), rel=0.02)  # ink kept, not clipped


def test_a_digit_drawn_small_is_not_enlarged_into_a_blob_and_the_user_hears_so(monkeypatch):
    """A 7 drawn 28 pixels tall had been enlarged 0.71× into the 20 × 20 box, its 22-px strokes with it: a blob the
    classifier read as an 8. It is enlarged no more than a stroke stays `THICKEST_STROKE` px wide."""
    warned = []
    monkeypatch.setattr(own_drawing.gr, "Warning", warned.append)
    small = framed_like_mnist(ink_of(sketch([(120, 120), (148, 120), (130, 148)])))
    rows, cols = np.nonzero(small > 0.05)
    assert max(np.ptp(rows), np.ptp(cols)) + 1 < MNIST_BOX  # kept smaller than the box
    assert (small > 0.5).sum(axis=1).max() <= 2 * own_drawing.THICKEST_STROKE  # not a filled square
    assert len(warned) == 1 and "drawn small" in warned[0]
    framed_like_mnist(ink_of(SEVEN))  # drawn large: no word
    assert len(warned) == 1


def test_a_drawing_becomes_light_on_dark_for_mnist_and_dark_on_white_otherwise():
    digit = drawing_example(SEVEN, MNIST)
    assert digit.shape == (1, 28, 28) and digit.min() == -1 and digit.max() == 1
    assert (digit > 0).float().mean() < 0.3  # light strokes on a black ground, as MNIST's
    photo = drawing_example(SEVEN, DataInfo("cifar10", "image", (3, 32, 32)))
    assert photo.shape == (3, 32, 32) and torch.equal(photo[0], photo[2])  # grey: the same in every channel
    assert (photo > 0).float().mean() > 0.7  # dark ink on white paper
    ink = (1 - photo[0]) / 2  # a drawing that is not an MNIST digit is scaled down whole, not framed
    assert centre_of_mass(ink.numpy()) != pytest.approx((15.5, 15.5), abs=1.0)
    assert drawing_example(sketch(), MNIST) is None  # nothing drawn
    assert drawing_example(None, MNIST) is None


def test_a_chain_from_a_drawn_seven_gives_sevens_at_a_small_t0_and_other_digits_near_T():
    """SDEdit from a drawing, end to end with the shipped MNIST model and classifier: at t₀ = 200 of 1,000 the noise
    leaves the drawing's shape, and the samples are sevens; at t₀ = 900 almost nothing of it is left."""
    path = str(REPO / "checkpoints" / "mnist")
    checkpoint_access.CACHE.clear()

    def stats_at(t0: int) -> str:
        return reverse_tab.generate(REQ, path, "ddim", 0.0, 50, 16, 0, 10, "uniform", False, False, [path], True,
                                    t0, SEVEN, progress=None)[1]

    near = stats_at(200)
    assert "from your drawing (the left grid: 16 copies of it, each noised with its own ε)" in near, near
    assert "Return ratio" not in near  # copies of one picture: every example is its own
    sevens = re.search(r"reads your drawing as \*\*(\d)\*\*, and \*\*(\d+) of 16\*\* samples as \1 too", near)
    assert sevens and sevens.group(1) == "7" and int(sevens.group(2)) >= 15, near
    far = re.search(r"reads your drawing as \*\*7\*\*, and \*\*(\d+) of 16\*\*", stats_at(900))
    assert far and int(far.group(1)) <= 8
    # an empty box starts from training examples; a 2D model never reads the drawing
    examples = reverse_tab.generate(REQ, path, "ddim", 0.0, 50, 4, 0, 10, "uniform", False, False, [path], True,
                                    200, sketch(), progress=None)[1]
    assert "from 4 training examples" in examples and "your drawing" not in examples


def test_a_2d_chain_from_a_drawn_ring_keeps_it_at_a_small_t0_and_forgets_it_near_T():
    """For a 2D model the points are spread over the drawing's strokes, at the toys' scale: the moons model keeps a
    drawn ring at t₀ = 50 of 1,000 (a small return ratio) and pulls the points onto its moons from t₀ = 1,000."""
    moons = str(REPO / "checkpoints" / "moons")
    ring = sketch([(140 + round(90 * np.cos(a)), 140 + round(90 * np.sin(a))) for a in np.linspace(0, 2 * np.pi, 60)],
                  width=10)
    starts = own_drawing.drawing_starts(ring, load_checkpoint(moons).data, 500, 0)
    radius = starts.norm(dim=1)
    assert starts.shape == (500, 2) and radius.std() < 0.1 * radius.mean()  # a ring, about the origin
    assert starts.std(dim=0).mean() == pytest.approx(1.0, abs=0.05)  # at the toys' scale

    def ratio(t0: int) -> tuple[float, str]:
        stats = reverse_tab.generate(REQ, moons, "ddpm_small", 0.0, 0, 500, 0, 10, "uniform", False, False, [moons],
                                     True, t0, ring, progress=None)[1]
        return float(re.search(r"Return ratio \*\*([\d.]+)\*\*", stats).group(1)), stats

    near, stats = ratio(50)
    assert "from your drawing (500 points spread over its strokes; the rings mark those of the pinned points)" in stats
    far, _ = ratio(1000)
    assert near < 0.4 < 0.8 < far, (near, far)
    # the scale is the ink's own, not that of the points drawn from it: any number of samples, one scale (a check
    # meant for training sets had refused fewer than 16, blaming the drawing)
    few = own_drawing.drawing_starts(ring, load_checkpoint(moons).data, 8, 0)
    assert few.shape == (8, 2) and few.norm(dim=1).mean() == pytest.approx(radius.mean(), rel=0.05)
    norm = own_drawing.ink_normalisation(ink_of(ring))
    _, drawn = normalise_points(points_from_drawing(ink_of(ring), 100_000, seed=1))
    assert norm.scale == pytest.approx(drawn.scale, rel=0.01) and norm.mean == pytest.approx(drawn.mean, abs=0.5)
    # a dot, scaled to the data's size, had become a filled disc
    with pytest.raises(gr.Error, match="Your drawing is too small to start the chain"):
        own_drawing.drawing_starts(sketch([(140, 140), (141, 140)]), load_checkpoint(moons).data, 10, 0)


def test_layers_of_different_sizes_are_refused_in_words():
    """Sent through the API, they had failed deep in NumPy with a traceback."""
    layers = [np.zeros((280, 280, 4), np.uint8), np.zeros((100, 100, 4), np.uint8)]
    layers[0][10:20, 10:20, 3] = 255
    with pytest.raises(gr.Error, match=r"layers must all be of one size; got layers of 280 × 280, 100 × 100 pixels"):
        drawing_example({"background": None, "layers": layers, "composite": None}, MNIST)


def test_a_sweep_of_t0_starts_from_the_drawing(tmp_path):
    """Sweep t₀ with "Start from … noised to t₀" ticked and a drawing in the box: the chains start from copies of it,
    counted by the classifier, with no return ratio (copies of one picture have no others to be told from; it had
    failed); beside a sweep of training examples of the same model, not in its place. A 2D drawing's points have a
    return ratio; an image model without a classifier is refused in words."""
    path = str(REPO / "checkpoints" / "mnist")
    figure, stats, curves = reverse_tab.sweep(path, "ddim", 0.0, 10, 8, 0, "uniform", False, [path], [], "t", True,
                                              SEVEN, progress=None)
    (curve,) = curves
    assert curve.ratios is None and curve.label == "mnist (DDIM-10, your drawing read as 7)"
    assert curve.kept[0] == 1.0 and curve.kept[-1] <= 0.5, curve.kept  # sevens at t₀ = 50; at T, few
    assert "chains from the same 8 copies of your drawing" in stats and "| t₀ | ᾱ_t₀ | kept their class |" in stats
    assert "Return ratio" not in stats and "| 50 | " in stats and " 8 of 8 |" in stats, stats
    assert "the samples the shipped classifier reads as **7**, as it reads your drawing" in stats
    drawn = figures.as_figure(figure)
    assert [trace.name for trace in drawn.data] == [f"{curve.label}: share that kept its class"]
    assert drawn.layout.yaxis.title.text == "share that kept its class"
    one = sketch([(150, 30), (140, 250)])
    _, _, curves = reverse_tab.sweep(path, "ddim", 0.0, 10, 8, 0, "uniform", False, [path], curves, "t", True, one,
                                     progress=None)  # another digit drawn: beside the 7's curve, not in its place
    assert [c.label for c in curves] == ["mnist (DDIM-10, your drawing read as 7)", "mnist (DDIM-10, your drawing "
                                         "read as 1)"]
    _, stats, curves = reverse_tab.sweep(path, "ddim", 0.0, 10, 8, 0, "uniform", False, [path], curves[:1], "t", True,
                                         sketch(), progress=None)  # an empty box: training examples
    assert [c.label for c in curves] == ["mnist (DDIM-10, your drawing read as 7)", "mnist (DDIM-10)"]
    assert curves[1].ratios is not None and "the same 8 training examples" in stats
    moons = str(REPO / "checkpoints" / "moons")
    ring = sketch([(140 + round(90 * np.cos(a)), 140 + round(90 * np.sin(a))) for a in np.linspace(0, 2 * np.pi, 60)],
                  width=10)
    _, stats, (points,) = reverse_tab.sweep(moons, "ddim", 0.0, 10, 200, 0, "uniform", False, [moons], [], "t", True,
                                            ring, progress=None)
    assert points.kept is None and points.ratios[0] < 0.5 < points.ratios[-1], points.ratios
    assert "the same 200 points over your drawing" in stats and "distance to its own starting point" in stats
    cifar = str(save_checkpoint(tmp_path / "cifar", UNet(unet_config("tiny", 32, 3)), make_schedule("linear", 50),
                                DataInfo("cifar10", "image", (3, 32, 32))))
    with pytest.raises(gr.Error, match="and none reads this model's pictures: untick “Start from training data"):
        reverse_tab.sweep(cifar, "ddim", 0.0, 10, 4, 0, "uniform", False, [cifar], [], "t", True, SEVEN,
                          progress=None)
