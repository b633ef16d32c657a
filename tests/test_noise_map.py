"""The Reverse tab's panel on DDIM's map between noise and data (app.noise_map), on shipped checkpoints."""

from __future__ import annotations

import re
import types

import gradio as gr
import numpy as np
import pytest
import torch

from app import checkpoint_access, figures, noise_map, player, reverse_tab
from core.checkpoints import load_checkpoint, save_checkpoint
from core.data import DataInfo
from tests.conftest import DRAWN_RTOL

SWISS = str(checkpoint_access.REPO_CHECKPOINTS / "swiss_roll_linear")
MNIST = str(checkpoint_access.REPO_CHECKPOINTS / "mnist")


def number(pattern: str, text: str) -> float:
    return float(re.search(pattern, text).group(1).rstrip("."))


def test_swiss_roll_points_encode_to_standard_noise_and_decode_back():
    figure, stats = noise_map.encode_examples(SWISS, 0, "uniform", 5000, 0, False, [], progress=lambda *a, **k: None)
    fig = figures.as_figure(figure)
    assert [a.text for a in fig.layout.annotations[:3]] == [
        "x₀: training examples", "x_T: encoded (DDIM backwards)", "x₀ decoded from that x_T"]
    examples, latents, decoded = (np.column_stack([trace.x, trace.y]) for trace in fig.data)
    assert len(examples) == noise_map.MAX_ENCODED["2d"]  # 5,000 asked, capped
    # coloured by the angle of x_T
    assert np.allclose(fig.data[0].marker.color, figures.angle_hues(latents), rtol=DRAWN_RTOL)
    assert abs(latents.mean()) < 0.1 and abs(latents.std() - 1) < 0.1
    assert np.sqrt(((decoded - examples) ** 2).mean()) < 0.05
    assert "50 of T = 1000 steps" in stats and number(r"return ratio ([\d.]+)", stats) < 0.05
    assert abs(number(r"standard deviation ([\d.]+)", stats) - latents.std()) < 2e-3
    # in shape too, not only in mean and spread: one step leaves the roll (of the same mean and spread) as it was
    full = number(r"sliced-Wasserstein ratio to N\(0, I\) ([\d.]+)", stats)
    _, one_step = noise_map.encode_examples(SWISS, 1, "uniform", 1000, 0, False, [], progress=lambda *a, **k: None)
    assert full < 2 < number(r"sliced-Wasserstein ratio to N\(0, I\) ([\d.]+)", one_step)
    assert "(for N(0, I) noise, which the sampler starts from: mean 0, standard deviation 1, ratio about 1)" in stats


def test_digits_decode_back_but_encode_to_narrower_noise_than_the_sampler_starts_from():
    """The shipped MNIST model: every digit comes back, but its x_T is not N(0, I): its values spread half as wide,
    and neighbouring pixels correlate (the digit's outline shows in it)."""
    figure, stats = noise_map.encode_examples(MNIST, 20, "uniform", 4, 0, False, [], progress=lambda *a, **k: None)
    assert len(figures.as_figure(figure).data) == 3  # three grids of images
    assert "4 training examples" in stats and "same class in 4 of 4" in stats
    assert number(r"root-mean-square difference to the examples ([\d.]+)", stats) < 0.05
    assert number(r"standard deviation ([\d.]+)", stats) < 0.75
    assert number(r"neighbouring pixels correlate ([\d.]+)", stats) > 0.05


def test_walks_between_noises():
    figure, stats = noise_map.walk(MNIST, 5, "uniform", 0, False, [], progress=lambda *a, **k: None)
    fig = figures.as_figure(figure)
    pairs, positions = noise_map.PATH_PAIRS["image"], noise_map.PATH_POSITIONS["image"]
    assert len(fig.data) == 2 * pairs * positions  # a spherical and a straight row per pair
    assert [a.text for a in fig.layout.annotations][positions:positions + 2] == [
        "pair 1: spherical path", "pair 1: straight line"]
    assert 0.9 < number(r"spherical ([\d.]+)", stats) < 1.1 and 0.6 < number(r"straight ([\d.]+)", stats) < 0.8
    figure, stats = noise_map.walk(SWISS, 20, "uniform", 0, False, [], progress=lambda *a, **k: None)
    fig = figures.as_figure(figure)
    pairs = noise_map.PATH_PAIRS["2d"]
    assert fig.data[0].name == "training data" and len(fig.data) == 1 + pairs + 3
    assert [t.name for t in fig.data[-3:]] == ["u = 0: x_a's sample", "0 < u < 1: the path between",
                                               "u = 1: x_b's sample"]  # the key to the circles, lines and squares
    paths = [np.column_stack([trace.x, trace.y]) for trace in fig.data[1:1 + pairs]]
    assert all(len(path) == noise_map.PATH_POSITIONS["2d"] for path in paths)
    steps = np.concatenate([np.linalg.norm(np.diff(path, axis=0), axis=1) for path in paths])
    assert np.median(steps) < 0.1  # the map is continuous: neighbouring noises land close together
    assert "straight" not in stats


def test_the_ends_of_a_walk_are_the_samples_of_its_two_noises():
    checkpoint, choice = noise_map.map_checkpoint(SWISS, [], False, 20, "uniform")
    noise, _ = reverse_tab.initial_noise((2 * noise_map.PATH_PAIRS["2d"], 2), seed=3)
    with torch.inference_mode():
        ends = noise_map._decode(checkpoint, noise, choice).numpy()
    fig = figures.as_figure(noise_map.walk(SWISS, 20, "uniform", 3, False, [], progress=lambda *a, **k: None)[0])
    for k, trace in enumerate(fig.data[1:1 + noise_map.PATH_PAIRS["2d"]]):
        assert np.allclose([trace.x[0], trace.y[0]], ends[2 * k], rtol=DRAWN_RTOL, atol=1e-5)
        assert np.allclose([trace.x[-1], trace.y[-1]], ends[2 * k + 1], rtol=DRAWN_RTOL, atol=1e-5)


@pytest.mark.parametrize("steps, n, seed, message", [
    (1001, 10, 0, "Sampling steps"), (10, 1, 0, "Samples"), (10, 10, -1, "Seed"),
])
def test_bad_inputs_raise_gr_error(steps, n, seed, message):
    with pytest.raises(gr.Error, match=message):
        noise_map.encode_examples(SWISS, steps, "uniform", n, seed, False, [], progress=lambda *a, **k: None)


def test_a_model_without_its_points_cannot_encode_them(tmp_path):
    checkpoint = load_checkpoint(SWISS)
    old_csv = save_checkpoint(tmp_path / "old_csv", checkpoint.model, checkpoint.schedule,
                              DataInfo("pts", "2d", (2,), source="pts.csv"))
    with pytest.raises(gr.Error, match="Encoding needs training examples.*training points of pts were not kept"):
        noise_map.encode_examples(str(old_csv), 10, "uniform", 30, 0, False, [str(old_csv)],
                                  progress=lambda *a, **k: None)
    figure, _ = noise_map.walk(str(old_csv), 10, "uniform", 0, False, [str(old_csv)], progress=lambda *a, **k: None)
    names = [trace.name for trace in figures.as_figure(figure).data]  # a walk needs no data (none drawn): paths, key
    assert len(names) == noise_map.PATH_PAIRS["2d"] + 3 and "training data" not in names


def test_points_thrown_off_the_plot_are_counted_and_explained():
    """DDIM on the shipped cosine swiss roll throws most points far out (its capped β_T); the linear one does not."""
    cosine = str(checkpoint_access.REPO_CHECKPOINTS / "swiss_roll_cosine")
    _, stats = noise_map.walk(cosine, 20, "uniform", 0, False, [], progress=lambda *a, **k: None)
    off = int(re.search(r"\*\*(\d+) of 246 decoded points lie off the plot\*\*", stats).group(1))
    assert off > 100 and "capped β_T" in stats
    _, stats = noise_map.walk(SWISS, 20, "uniform", 0, False, [], progress=lambda *a, **k: None)
    assert "off the plot" not in stats
    wide = torch.tensor([[0.0, 5.0], [1.0, 1.0], [-4.5, 0.0]])
    sentence = noise_map.off_plot_sentence(wide, load_checkpoint(SWISS))
    assert "**2 of 3 decoded points lie off the plot**" in sentence and "capped" not in sentence
    cosine_v = load_checkpoint(checkpoint_access.REPO_CHECKPOINTS / "swiss_roll_cosine_v")  # x̂₀ straight from the network
    assert "capped" in noise_map.off_plot_sentence(wide, load_checkpoint(cosine))
    assert "capped" not in noise_map.off_plot_sentence(wide, cosine_v)


def test_a_diverged_model_is_refused(tmp_path):
    checkpoint = load_checkpoint(SWISS)
    for weight in checkpoint.model.parameters():
        weight.data.fill_(1e30)  # finite weights whose activations overflow: NaN samples
    broken = str(save_checkpoint(tmp_path / "nan", checkpoint.model, checkpoint.schedule, checkpoint.data))
    with pytest.raises(gr.Error, match="NaN or infinite"):
        noise_map.walk(broken, 10, "uniform", 0, False, [broken], progress=lambda *a, **k: None)
    with pytest.raises(gr.Error, match="NaN or infinite"):
        noise_map.encode_examples(broken, 10, "uniform", 10, 0, False, [broken], progress=lambda *a, **k: None)


def no_progress(*args, **kwargs) -> None:
    return None


def canvases(page: str) -> list[tuple[int, int]]:
    """(width, x in the frame) of each canvas of a player's markup."""
    return [(int(w), int(x)) for w, x in re.findall(r'<canvas width="(\d+)" height="\d+" data-x="(\d+)"', page)]


def test_a_loop_of_noises_plays_in_the_player_and_closes():
    request = types.SimpleNamespace(session_hash="loop-2d")
    page, stats, movie, sprite = noise_map.play_loop(request, SWISS, 20, "uniform", 300, 0, 44, False, [],
                                                     progress=no_progress)
    assert 'data-frames="40"' in page and 'data-ts="0,9,18,' in page and ',351"' in page  # 40 frames, 9° apart
    assert 'data-var="θ"' in page and 'data-unit="°"' in page and 'data-hold="0"' in page  # a loop: no pause at the end
    assert "θ = 9°: x_T = 0.9877·x_a + 0.1564·x_b" in page  # the formula under each frame
    size, gap = player.PLOT_SIZE, player.PANEL_GAP  # x_T and x₀ each in a canvas of its own, cut where they lie
    assert canvases(page) == [(size, 0), (size, size + gap)] and f'data-w="{2 * size + gap}"' in page
    assert movie.loop and movie.fps == noise_map.LOOP_FPS and movie.labels is None  # 2D frames carry their labels
    assert movie.stem == "loop-swiss_roll_linear"
    assert movie.sprite == sprite and sprite.endswith(".png")
    assert "300 noises around a circle" in stats and "in 40 frames (9° apart)" in stats
    noise_move = number(r"the noise moves ([\d.]+)", stats)
    assert 0.1 < noise_move < 0.3  # 2 sin(4.5°)·‖x‖ for 2D noise: ~0.16·1.25
    assert number(r"a decoded point ([\d.]+)", stats) < noise_move  # the map is continuous ...
    assert number(r"largest move of a decoded point is ([\d.]+)", stats) > 0.5  # ... with jumps between the arms


def test_a_loop_is_decoded_in_chunks_as_in_one_go(monkeypatch):
    checkpoint, choice = noise_map.map_checkpoint(SWISS, [], False, 10, "uniform")
    noise, _ = reverse_tab.initial_noise((2, 7, 2), seed=1)
    noises = noise_map.noise_circle(noise[0], noise[1], 8)
    monkeypatch.setitem(noise_map.LOOP_CHUNK, "2d", 5)  # 56 noises in 12 chunks
    with torch.inference_mode():
        chunked = noise_map.decode_loop(checkpoint, choice, noises, no_progress)
        whole = noise_map._decode(checkpoint, noises.flatten(0, 1), choice).view(noises.shape)
    assert chunked.shape == (8, 7, 2) and torch.allclose(chunked, whole, atol=1e-5)
    assert torch.allclose(chunked[0], noise_map._decode(checkpoint, noise[0], choice), atol=1e-5)  # θ = 0: x_a's sample


def test_an_image_loop_reads_its_classes_and_keeps_to_its_budget():
    request = types.SimpleNamespace(session_hash="loop-image")
    page, stats, *_ = noise_map.play_loop(request, MNIST, 5, "uniform", 64, 0, 8, False, [], progress=no_progress)
    assert "9 noises around a circle" in stats and "in 8 frames (45° apart)" in stats  # 64 asked: a 3 × 3 grid
    low, high = (int(v) for v in re.search(r"reads (\d+)–(\d+) different classes", stats).groups())
    assert 1 <= low <= high <= 8
    assert "x₀ decoded from it (DDIM, η = 0)" in page and "Fewer frames" not in stats
    (width, x0), (width1, x1) = canvases(page)  # two grids of 3 × 3 digits, a sixteenth of one apart
    assert x0 == 0 and width1 == width > 3 * 28 and x1 == width + max(4, width // 16)
    assert f'data-w="{x1 + width}"' in page
    assert noise_map.loop_frames(80) == 72 and noise_map.loop_frames(2) == 8 and noise_map.loop_frames(50) == 45
    assert noise_map.loop_frames(80, noise_map.LOOP_IMAGE_STEPS // 100) == 36  # 100 steps: 36 frames at most


@pytest.mark.parametrize("frames, n, seed, message", [(1, 10, 0, "Frames"), (20, 0, 0, "Samples"),
                                                      (20, 10, -1, "Seed")])
def test_a_loop_refuses_bad_inputs(frames, n, seed, message):
    request = types.SimpleNamespace(session_hash="loop-bad")
    with pytest.raises(gr.Error, match=message):
        noise_map.play_loop(request, SWISS, 10, "uniform", n, seed, frames, False, [], progress=no_progress)


def test_the_neighbour_correlation_is_that_of_horizontal_neighbours():
    """Stripes that alternate along each row: every pair of horizontal neighbours has opposite signs, −1."""
    stripes = torch.tensor([1.0, -1.0, 1.0, -1.0]).expand(2, 1, 3, 4)
    assert noise_map.neighbour_correlation(stripes) == pytest.approx(-1.0)
    smooth = torch.arange(12.0).view(1, 1, 3, 4)  # along each row, each value is its left neighbour + 1
    assert noise_map.neighbour_correlation(smooth) == pytest.approx(1.0)
