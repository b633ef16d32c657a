"""Reverse tab: chain sampling, frames, the player markup, GIF export and every refusal."""

from __future__ import annotations

import json
import math
import re
import shutil
import time
import types
from pathlib import Path

import gradio as gr
import imageio.v2 as imageio
import numpy as np
import PIL.Image
import PIL.ImageSequence
import pytest
import torch

from app import checkpoint_access, figures, movie_files, player, reverse_tab, runs, schedules_tab
from app.images import mnist_digits
from core.checkpoints import list_checkpoints, load_checkpoint, save_checkpoint
from core.data import DataInfo, make_toy2d
from core.metrics import copy_fraction, return_ratio
from core.mlp import MLPConfig, MLPDenoiser
from core.sampler import log_snr_timesteps, timesteps
from core.schedules import make_schedule
from core.trainer import TrainConfig, Trainer
from core.unet import UNet, unet_config

REQ = types.SimpleNamespace(session_hash="alice")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is faster, and the test machine is shared
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def toy_ckpt(tmp_path_factory) -> Path:
    """A swiss-roll model trained for a few hundred steps (T = 100): good enough to look like data."""
    schedule = make_schedule("linear", 100)
    torch.manual_seed(0)
    model = MLPDenoiser(MLPConfig(hidden=64, depth=2))
    trainer = Trainer(model, schedule, make_toy2d("swiss_roll", 4000, seed=0),
                      TrainConfig(steps=600, batch_size=128, lr=3e-3, warmup_steps=20, log_every=100, ema_decay=0.98))
    for _ in trainer.run():
        pass
    root = tmp_path_factory.mktemp("ckpts")
    return save_checkpoint(root / "swiss", trainer.sampling_model, schedule, DataInfo("swiss_roll", "2d", (2,)))


@pytest.fixture(scope="module")
def image_ckpt(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = UNet(unet_config("tiny", 28, 1))
    root = tmp_path_factory.mktemp("ckpts")
    return save_checkpoint(root / "digits", model, make_schedule("cosine", 50), DataInfo("mnist", "image", (1, 28, 28)))


@pytest.fixture(autouse=True)
def no_shipped(tmp_path, monkeypatch):
    monkeypatch.setenv("DDPM_CHECKPOINTS_DIR", str(tmp_path / "none"))
    checkpoint_access.CACHE.clear()


def test_chain_goes_from_noise_to_data(toy_ckpt):
    checkpoint = checkpoint_access.load(str(toy_ckpt), [str(toy_ckpt)])
    chain = reverse_tab.sample_chain(checkpoint, method="ddpm", variance="small", eta=0.0, steps=None, n=600,
                                     seed=1, n_frames=30)
    assert len(chain.x) == len(chain.x0) == len(chain.frame_states) == 30
    assert chain.frame_ts[0] == 100 and chain.frame_ts[-1] == 0
    assert chain.frame_ts == sorted(chain.frame_ts, reverse=True)
    first, last = torch.from_numpy(chain.x[0]), torch.from_numpy(chain.x[-1])
    assert abs(float(first.std()) - 1.0) < 0.1  # x_T ~ N(0, I)
    data = make_toy2d("swiss_roll", 4000, seed=5)
    near = lambda x: float(torch.cdist(x, data).min(dim=1).values.median())  # noqa: E731
    assert near(last) < 0.5 * near(first)  # the last frame lies on the swiss roll, the first does not
    assert float((last.abs() < 4).all(dim=1).float().mean()) > 0.95


def test_generate_says_when_sampling_is_done_and_the_frames_are_drawn(toy_ckpt):
    """The bar had stopped at 98 % for the seconds of drawing the frames and movies, as if the chain hung."""
    said = []
    reverse_tab.generate(REQ, str(toy_ckpt), "ddpm_small", 0, 100, 30, 0, 10, "uniform", False, False,
                         [str(toy_ckpt)], progress=lambda value, desc=None, **_: said.append((value, desc)))
    assert said[0] == ((1, 100), "Sampling the reverse chain") and said[-2][1] == "Sampling the reverse chain"
    assert said[-1] == (1.0, "Sampled: drawing the frames")


def test_generate_returns_player_and_valid_gif(toy_ckpt):
    page, stats, movie, sprite = reverse_tab.generate(REQ, str(toy_ckpt), "ddim", 0.5, 20, 300, 0, 80, "uniform", False,
                                                      False, [str(toy_ckpt)], progress=None)
    assert list(Path(sprite).parent.iterdir()) == [Path(sprite)]  # the GIF and MP4 are written when asked
    gif, mp4 = movie_files.write_movie_files(movie)
    assert 'data-frames="21"' in page  # 20 DDIM steps → 21 states, all of them frames
    assert 'data-ts="100,95,' in page and ',0"' in page and "pl-scrub" in page and "<canvas" in page
    assert len(page) < 10_000  # frames travel in the sprite file, not in the HTML value
    assert "pl-smooth" in page and "predicted x̂₀" in page  # drawn 2D plots scale smoothly; x̂₀ beside x_t
    chain_id = page.split('data-id="')[1].split('"')[0]
    assert chain_id in Path(sprite).name
    assert Path(gif).name == f"reverse-{Path(toy_ckpt).name}-ddim20-seed0.gif"  # DDPM's and DDIM's had one name
    assert "300 samples, seed 0 · " in stats  # to make it again (the seed had been only in its box)
    with PIL.Image.open(sprite) as sheet:
        cols, rows = player.sprite_layout(21)
        frame_width = 2 * player.PLOT_SIZE + player.PANEL_GAP  # x_t beside x̂₀
        assert sheet.format == "PNG" and sheet.size == (cols * frame_width, rows * player.PLOT_SIZE)
    # the player cuts each frame into its two panels, a canvas each (stacked on a phone)
    assert page.count("<canvas") == 2 and player.points_panels() == [(0, 440), (456, 440)]
    assert f'width="{player.PLOT_SIZE}" height="{player.PLOT_SIZE}" data-x="0"' in page
    assert f'width="{player.PLOT_SIZE}" height="{player.PLOT_SIZE}" data-x="{player.PLOT_SIZE + player.PANEL_GAP}"' in page
    assert "DDIM, η = 0.5" in stats and "20 of T = 100" in stats
    with PIL.Image.open(gif) as image:
        assert image.format == "GIF" and image.is_animated and image.n_frames == 21
    with imageio.get_reader(mp4) as video:
        assert video.count_frames() >= 21


def test_strided_chain_can_space_its_steps_evenly_in_log_snr(toy_ckpt):
    checkpoint = checkpoint_access.load(str(toy_ckpt), [str(toy_ckpt)])
    page, stats, *_ = reverse_tab.generate(REQ, str(toy_ckpt), "ddpm_small", 0, 20, 300, 0, 80, "log_snr", False, False,
                                           [str(toy_ckpt)], progress=None)
    expected = log_snr_timesteps(checkpoint.schedule, 20, "ddpm") + [0]
    assert expected != timesteps(100, 20, "ddpm") + [0]
    assert f'data-ts="{",".join(map(str, expected))}"' in page
    assert "20 of T = 100 steps, evenly in log-SNR ·" in stats
    _, full, *_ = reverse_tab.generate(REQ, str(toy_ckpt), "ddpm_small", 0, 0, 30, 0, 10, "log_snr", False, False,
                                       [str(toy_ckpt)], progress=None)
    assert "all T = 100 steps ·" in full  # all T steps: no spacing to speak of
    with pytest.raises(gr.Error, match="step spacing"):
        reverse_tab.generate(REQ, str(toy_ckpt), "ddpm_small", 0, 20, 30, 0, 10, "karras", False, False, [str(toy_ckpt)], progress=None)


def test_pinned_points_trail_their_positions_in_recent_frames_only():
    """A pinned point (the first of each cloud) trails a line through its last `TRAIL_FRAMES` frames' positions."""
    n_frames = 40
    path = np.zeros((n_frames, 2))
    path[:10] = [-3.0, -3.0]  # parked in the bottom-left corner for the first 10 frames
    path[10:, 0] = np.linspace(0.0, 3.0, n_frames - 10)  # then a walk along y = 0 to the right
    clouds = [p[None, :] for p in path]
    trail_colour = 5  # palette index of the first pinned point

    def drawn(frame: int) -> np.ndarray:
        image = player.render_points_frames(clouds[: frame + 1], clouds[: frame + 1], list(range(frame + 1)))[-1]
        return np.asarray(image)[:, : player.PLOT_SIZE] == trail_colour  # the x_t panel

    corner_col, corner_row = (int(v) for v in player._to_pixels(np.array([-3.0, -3.0])))
    near_corner = np.s_[corner_row - 6 : corner_row + 7, corner_col - 6 : corner_col + 7]
    assert drawn(5)[near_corner].any()  # still there
    assert drawn(12)[near_corner].any()  # left 3 frames ago: the line from the corner is drawn
    late = drawn(n_frames - 1)
    assert not late[near_corner].any()  # left 30 frames ago: that part of the path is no longer drawn
    end_col = int(player._to_pixels(np.array([3.0, 0.0]))[0])
    tail_start_col = int(player._to_pixels(path[n_frames - 1 - player.TRAIL_FRAMES])[0])
    columns = np.flatnonzero(late.any(axis=0))
    assert columns.min() >= tail_start_col - 5 and columns.max() <= end_col + 5


def test_2d_frames_show_x0_beside_x_t():
    """Left panel: x_t, the first points pinned (dots); right panel: x̂₀, each pinned point at its x̂₀."""
    x_t = np.array([[-2.0, -2.0]] * player.PINNED_POINTS + [[-1.0, 1.0]])  # all pinned points at one place
    x0 = np.array([[2.0, 2.0]] * player.PINNED_POINTS + [[1.0, -1.0]])
    frame = np.asarray(player.render_points_frames([x_t], [x0], [7])[0])
    assert frame.shape == (player.PLOT_SIZE, 2 * player.PLOT_SIZE + player.PANEL_GAP)
    left, right = frame[:, : player.PLOT_SIZE], frame[:, player.PLOT_SIZE + player.PANEL_GAP :]

    def at(panel: np.ndarray, xy) -> np.ndarray:
        col, row = (int(v) for v in player._to_pixels(np.array(xy)))
        return panel[row - 1 : row + 3, col - 1 : col + 3]

    point, pinned = 3, 5 + player.PINNED_POINTS - 1  # palette indices: a point, the last pinned point (on top)
    assert (at(left, [-1.0, 1.0]) == point).any() and not (at(right, [-1.0, 1.0]) == point).any()
    assert (at(right, [1.0, -1.0]) == point).any() and not (at(left, [1.0, -1.0]) == point).any()
    assert (at(left, [-2.0, -2.0]) == pinned).any() and not (at(right, [-2.0, -2.0]) == pinned).any()
    assert (at(right, [2.0, 2.0]) == pinned).any() and not (at(left, [2.0, 2.0]) == pinned).any()


def test_pinned_points_beyond_the_axes_are_clipped_to_them():
    """A pinned point thrown beyond ±4 (an ε model under DDIM on the cosine schedule) had its dot and trail drawn
    below the plot, over the x axis's ticks. Both are clipped to the axes; the points inside stay drawn."""
    inside, outside = np.zeros((player.PINNED_POINTS + 1, 2)), np.zeros((player.PINNED_POINTS + 1, 2))
    outside[: player.PINNED_POINTS] = [0.0, -6.0]  # every pinned point below the axes at the last frame
    frames = player.render_points_frames([inside, outside], [inside, outside], [2, 1])
    quiet = player.render_points_frames([inside * 0 + 9, inside * 0 + 9], [inside * 0 + 9] * 2, [2, 1])  # none drawn
    drawn, axes = np.asarray(frames[-1]), np.asarray(quiet[-1])
    top, bottom = player._INNER[1], player._INNER[3]
    for x in (0, player.PLOT_SIZE + player.PANEL_GAP):
        panel, empty = drawn[:, x : x + player.PLOT_SIZE], axes[:, x : x + player.PLOT_SIZE]
        assert (panel[bottom + 1 :] == empty[bottom + 1 :]).all()  # the ticks below the plot as they are
        assert (panel[: top] == empty[: top]).all()
    left = drawn[top : bottom + 1, : player.PLOT_SIZE]
    assert np.isin(left, range(5, 5 + player.PINNED_POINTS)).any()  # the trail, inside, down to the axes' edge


def test_2d_frames_draw_the_training_data_beneath_the_points_in_both_panels():
    x_t, x0, data = np.array([[-2.0, -2.0]]), np.array([[2.0, 2.0]]), np.array([[1.0, -1.0], [-2.0, -2.0]])
    frame = np.asarray(player.render_points_frames([x_t], [x0], [7], reference=data)[0])
    left, right = frame[:, : player.PLOT_SIZE], frame[:, player.PLOT_SIZE + player.PANEL_GAP :]

    def at(panel: np.ndarray, xy) -> np.ndarray:
        col, row = (int(v) for v in player._to_pixels(np.array(xy)))
        return panel[row : row + 2, col : col + 2]

    grey = player._PALETTE_HEX.index(player.DATA_COLOR)
    assert (at(left, [1.0, -1.0]) == grey).all() and (at(right, [1.0, -1.0]) == grey).all()
    assert not (at(left, [-2.0, -2.0]) == grey).any()  # a point of the chain is drawn over the data
    plain = np.asarray(player.render_points_frames([x_t], [x0], [7])[0])
    assert not (plain == grey).any()
    assert (frame != plain).sum() > (left == grey).sum()  # the frames also say what grey is


def test_2d_chains_carry_their_training_data_where_it_can_be_drawn(toy_ckpt, image_ckpt, tmp_path):
    checkpoint = checkpoint_access.load(str(toy_ckpt), [str(toy_ckpt)])
    chain = reverse_tab.sample_chain(checkpoint, method="ddim", variance="small", eta=0.0, steps=5, n=10, seed=0)
    assert np.array_equal(chain.reference, make_toy2d("swiss_roll", reverse_tab.REFERENCE_POINTS, seed=0).numpy())

    def saved(name: str, info: DataInfo, **kwargs):
        path = save_checkpoint(tmp_path / name, checkpoint.model, checkpoint.schedule, info, **kwargs)
        return checkpoint_access.load(str(path), [str(path)])

    given = make_toy2d("moons", 300, seed=1)  # a drawing's points, stored with its model
    drawn = saved("drawn", DataInfo("drawing", "2d", (2,), source="drawn in the Train tab"), points=given)
    reference = reverse_tab.reference_points(drawn)
    assert reference.shape == (reverse_tab.REFERENCE_POINTS, 2)
    assert {tuple(p) for p in reference} <= {tuple(p) for p in given.numpy()}, "the stored points, nothing else"
    old = saved("old", DataInfo("my_points", "2d", (2,), mean=(3.0, 1.0), scale=2.0, source="/data/my_points.csv"))
    assert reverse_tab.reference_points(old) is None  # saved without its points: a file the server may not have
    assert reverse_tab.reference_points(checkpoint_access.load(str(image_ckpt), [str(image_ckpt)])) is None


def test_stats_say_how_close_the_samples_came_to_the_training_data(toy_ckpt, image_ckpt):
    checkpoint = checkpoint_access.load(str(toy_ckpt), [str(toy_ckpt)])
    chain = reverse_tab.sample_chain(checkpoint, method="ddpm", variance="small", eta=0.0, steps=None, n=400, seed=0)
    landed = reverse_tab.data_distance(chain, checkpoint)
    chain.samples = torch.from_numpy(chain.x[0])  # x_T: noise
    assert reverse_tab.data_distance(chain, checkpoint) > 2 * landed
    _, stats, *_ = reverse_tab.generate(REQ, str(toy_ckpt), "ddpm_small", 0, 0, 400, 0, 10, "uniform", False, False, [str(toy_ckpt)],
                                        progress=None)
    assert f"ratio of the samples to the training data: **{landed:.2f}**" in stats  # same seed, same samples
    _, image_stats, *_ = reverse_tab.generate(REQ, str(image_ckpt), "ddim", 0.0, 5, 4, 0, 10, "uniform", False, False,
                                              [str(image_ckpt)], progress=None)
    assert "Wasserstein" not in image_stats


def test_the_shipped_classifier_reads_image_samples_in_grid_order(image_ckpt, monkeypatch):
    chain = reverse_tab.Chain(kind="image", state_ts=[0], frame_states=[0], samples=mnist_digits(16))
    reading = reverse_tab.classifier_reading(chain, DataInfo("mnist", "image", (1, 28, 28)))
    # the first 16 MNIST test digits, row by row in a 4 × 4 grid
    assert "reads the samples as **7 2 1 0 · 4 1 4 9 · 5 9 0 6 · 9 0 1 5** (row by row): 8 of its 10 classes." in reading
    warnings = []
    monkeypatch.setattr(gr, "Warning", warnings.append)
    _, stats, *_ = reverse_tab.generate(REQ, str(image_ckpt), "ddim", 0.0, 5, 6, 0, 10, "uniform", True, False,
                                        [str(image_ckpt)], progress=None)  # with the score field ticked:
    assert warnings == ["The score field is drawn for 2D models only: this chain of images plays without it."]
    assert re.search(r"reads the samples as \*\*\d \d \d · \d \d \d\*\*", stats), stats  # 6 samples: rows of 3
    noise = reverse_tab.Chain(kind="image", state_ts=[0], frame_states=[0], samples=torch.zeros(2, 3, 32, 32))
    assert reverse_tab.classifier_reading(noise, DataInfo("cifar10", "image", (3, 32, 32))) == ""  # no classifier


def test_image_chain_shows_x_t_beside_x0(image_ckpt):
    page, stats, movie, sprite = reverse_tab.generate(REQ, str(image_ckpt), "ddim", 0.0, 5, 4, 0, 80, "uniform", False,
                                                      False, [str(image_ckpt)], progress=None)
    gif, _ = movie_files.write_movie_files(movie)
    assert 'data-frames="6"' in page and "x_t (t = " in page and "predicted x̂₀" in page
    assert "pl-smooth" not in page  # small images are scaled up pixel by pixel
    with PIL.Image.open(gif) as image:
        assert image.n_frames == 6 and image.width >= player.GIF_MIN_WIDTH
    # a canvas per grid, cut where the frame holds it: 4 digits two to a row, 2 × (28 + 2) + 2 = 62 px, 4 px apart
    canvases = re.findall(r'<canvas width="(\d+)" height="(\d+)" data-x="(\d+)"', page)
    assert [(int(w), int(x)) for w, _, x in canvases] == [(62, 0), (62, 66)]
    frame = PIL.Image.open(sprite).crop((0, 0, 128, int(canvases[0][1])))
    assert frame.getpixel((63, 10)) == 255 and frame.getpixel((66, 10)) == 255  # the gap and a grid's border
    assert player.image_panels(np.zeros((4, 28, 28), np.uint8), 2, 3) == [(0, 62), (66, 62), (132, 62)]


@pytest.mark.parametrize(
    "sampler, eta, steps, n, seed, frames, message",
    [
        ("ddpm_small", 0, 101, 10, 0, 80, "Sampling steps"),
        ("ddpm_small", 0, -3, 10, 0, 80, "Sampling steps"),
        ("ddim", 0, 2.5, 10, 0, 80, "Sampling steps"),
        ("ddim", 1.5, 10, 10, 0, 80, "η"),
        ("ddpm_small", 0, 10, 0, 0, 80, "Samples"),
        ("ddpm_small", 0, 10, 10**6, 0, 80, "Samples"),
        ("ddpm_small", 0, 10, 10, -1, 80, "Seed"),
        ("ddpm_small", 0, 10, 10, 0, 1, "Frames"),
        ("nonsense", 0, 10, 10, 0, 80, "Unknown sampler"),
    ],
)
def test_bad_inputs_raise_gr_error(toy_ckpt, sampler, eta, steps, n, seed, frames, message):
    with pytest.raises(gr.Error, match=message):
        reverse_tab.generate(REQ, str(toy_ckpt), sampler, eta, steps, n, seed, frames, "uniform", False, False, [str(toy_ckpt)], progress=None)


def test_corrupted_checkpoints_raise_gr_error(toy_ckpt, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(toy_ckpt, broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(gr.Error, match="cannot be used"):
        reverse_tab.generate(REQ, str(broken), "ddim", 0, 5, 10, 0, 10, "uniform", False, False, [str(broken)], progress=None)
    (broken / "config.json").write_text("{ nope")
    with pytest.raises(gr.Error):
        reverse_tab.generate(REQ, str(broken), "ddim", 0, 5, 10, 0, 10, "uniform", False, False, [str(broken)], progress=None)


def test_only_listed_checkpoints_can_be_sampled(toy_ckpt):
    with pytest.raises(gr.Error, match="not available in this session"):
        reverse_tab.generate(REQ, str(toy_ckpt), "ddim", 0, 5, 10, 0, 10, "uniform", False, False, [], progress=None)
    with pytest.raises(gr.Error, match="train one"):
        reverse_tab.generate(REQ, None, "ddim", 0, 5, 10, 0, 10, "uniform", False, False, [], progress=None)


def test_no_checkpoints_is_said_plainly():
    assert checkpoint_access.checkpoint_choices([]) == []
    assert "Train" in checkpoint_access.describe(None, [])


def test_shipped_listing_skips_classifier_weights():
    names = [p.name for p in list_checkpoints(checkpoint_access.REPO_CHECKPOINTS)]
    assert "classifiers" not in names


def test_the_linear_swiss_roll_is_shown_first_when_shipped():
    shipped = [(f"{p.name} (shipped)", str(p)) for p in list_checkpoints(checkpoint_access.REPO_CHECKPOINTS)]
    assert Path(checkpoint_access.default_checkpoint(shipped)).name == "swiss_roll_linear"
    others = [(label, path) for label, path in shipped if Path(path).name != "swiss_roll_linear"]
    assert checkpoint_access.default_checkpoint(others) == others[0][1]
    assert checkpoint_access.default_checkpoint([]) is None


def test_a_browser_s_runs_are_listed_by_what_they_learned_and_when(tmp_path):
    def label(name: str) -> str:
        return checkpoint_access.session_label(tmp_path / name, today="20261204")

    assert label("swiss_roll-linear-T1000-20261204-193027") == "swiss_roll-linear-T1000 (trained 19:30:27)"
    assert label("swiss_roll-linear-T1000-20261204-193027-2") == "swiss_roll-linear-T1000 (trained 19:30:27 #2)"
    assert label("moons-cosine-T100-20261203-080501") == "moons-cosine-T100 (trained 2026-12-03 08:05)"
    assert label("uploaded-moons") == "moons (uploaded)"
    assert label("my_model") == "my_model (trained here)"
    made = time.strftime(runs.RUN_STAMP)  # as `train_tab` names a run's directory: today's, by the server's clock
    assert checkpoint_access.session_label(tmp_path / f"mnist-sigmoid-T1000-{made}") == (
        f"mnist-sigmoid-T1000 (trained {made[9:11]}:{made[11:13]}:{made[13:]})")


def test_refresh_lists_a_checkpoint_copied_in_while_the_app_runs(toy_ckpt, tmp_path, monkeypatch):
    monkeypatch.setenv("DDPM_CHECKPOINTS_DIR", str(tmp_path))
    dropdown, _, _ = reverse_tab.refresh([], None)
    assert dropdown.choices == []
    shutil.copytree(toy_ckpt, tmp_path / "roll")
    dropdown, info, trained = reverse_tab.refresh([], None)
    assert [label for label, _ in dropdown.choices] == ["roll (shipped)"] and dropdown.value == str(tmp_path / "roll")
    assert info.startswith("**roll** — data: swiss_roll") and trained == gr.skip()


def test_refresh_adds_the_models_another_tab_of_this_browser_trained(toy_ckpt, tmp_path, monkeypatch):
    """Tab B, open while tab A of the same browser trained, listed only the models it knew when it loaded, even
    after ↻ Refresh. Now they join its list (and `after_training` selects the newest); another browser's do not."""
    monkeypatch.setenv("DDPM_RUNS_DIR", str(tmp_path / "runs"))
    tab_b, other = types.SimpleNamespace(session_hash="browser1"), types.SimpleNamespace(session_hash="browser2")
    known = str(toy_ckpt)
    assert reverse_tab.refresh([known], known, tab_b)[0].value == known  # nothing new: the choice stays
    trained_in_a = runs.user_dir("browser1") / "swiss_roll-linear-T1000-20261205-061500"
    shutil.copytree(toy_ckpt, trained_in_a)
    dropdown, info, trained = reverse_tab.refresh([known], known, tab_b)
    assert trained == [known, str(trained_in_a)] and dropdown == info == gr.skip()
    assert reverse_tab.after_training(trained, known)[0].value == str(trained_in_a)  # what trained.change then does
    assert reverse_tab.refresh([known], known, other)[2] == gr.skip()


def test_cache_reuses_loaded_models(toy_ckpt):
    a = checkpoint_access.load(str(toy_ckpt), [str(toy_ckpt)])
    b = checkpoint_access.load(str(toy_ckpt), [str(toy_ckpt)])
    assert a is b


def test_refresh_selects_the_newest_trained_model(toy_ckpt):
    dropdown, info = reverse_tab.after_training([str(toy_ckpt)], None)
    assert dropdown.value == str(toy_ckpt) and "swiss_roll" in info


def test_a_model_that_arrives_during_a_job_is_listed_not_chosen(toy_ckpt, image_ckpt):
    """A run that ended while a Generate for another model waited took the dropdown: the chain then played under the
    new model's name and Download zipped the new one. While a job of the tab waits or runs, the choice stays."""
    chosen, trained = str(image_ckpt), [str(image_ckpt), str(toy_ckpt)]  # the run of the swiss roll has just ended
    dropdown, info = reverse_tab.after_training(trained, chosen, 1)
    assert dropdown.value == chosen and [v for _, v in dropdown.choices] == trained
    assert info.startswith("**digits** — ") and "**swiss (trained here)** is ready in the list: it was not chosen for you" in info
    assert reverse_tab.after_training(trained, chosen, 0)[0].value == str(toy_ckpt)  # no job: chosen
    assert reverse_tab.after_training(trained, None, 1)[0].value == str(toy_ckpt)  # nothing chosen before
    assert reverse_tab.job_waits(None, "m", 7)[:2] == ([7], "m") and reverse_tab.job_waits([7], None, 9)[0] == [7, 9]
    shown = reverse_tab.job_waits([], None, 7)[2]  # Stop shown while a job waits or runs, as "Stop" (not "Stopping…")
    assert shown.visible is True and shown.value == runs.STOP and shown.interactive is True
    # pressed again while its job is pending, a button's second click is dropped by Gradio: counted once, else the
    # count stayed one too high for good, and with it Stop, whose next press stopped the page's next Generate
    assert reverse_tab.job_waits([7], None, 7)[0] == [7]
    assert reverse_tab.job_ended(REQ, [7, 9], 7)[0] == [9] and reverse_tab.job_ended(REQ, [7, 9], 7)[1].visible
    assert reverse_tab.job_ended(REQ, [7], 7)[0] == [] and reverse_tab.job_ended(REQ, [7], 7)[1].visible is False
    assert reverse_tab.job_ended(REQ, [], 7)[0] == []


def test_every_job_of_the_reverse_tab_is_counted_while_it_waits_or_runs():
    from app import build_app

    demo = build_app()
    fns = list(demo.fns.values())
    heavy = [d for d in fns if d.concurrency_id == runs.SAMPLING_CONCURRENCY_ID]
    in_reverse = {d.fn.__module__ for d in heavy} - {"app.train_tab"}
    assert in_reverse == {"app.reverse_tab", "app.bound_panel", "app.steps_panel", "app.inpaint_panel",
                          "app.noise_map", "app.guidance_panel"}, in_reverse
    both = [d for d in fns if getattr(d.fn, "__name__", "") == "after_training"]  # on a new model, and an upload's
    selecting = both[0]
    jobs = selecting.inputs[2]  # the count that `after_training` reads
    assert len(both) == 2 and all(d.inputs[1:] == selecting.inputs[1:] for d in both)
    keys = set()
    for job in (d for d in heavy if d.fn.__module__ in in_reverse):
        counted = [d for d in fns if d.targets == job.targets and getattr(d.fn, "__name__", "") == "job_waits"]
        ended = [d for d in fns if d.trigger_after == job._id and getattr(d.fn, "__name__", "") == "job_ended"]
        assert len(counted) == 1 and len(ended) == 2, job.fn.__name__
        # ended either way: after a job that failed (Samples 0), a `.then` had not run, and the count stayed for good
        assert {(e.trigger_only_on_success, e.trigger_only_on_failure) for e in ended} == {(True, False), (False, True)}
        assert counted[0].outputs[0] == ended[0].outputs[0] == ended[1].outputs[0] == jobs and counted[0].queue is False
        key = counted[0].inputs[2]  # the button, counted once: its id, the same where the job ends
        assert key is ended[0].inputs[1] is ended[1].inputs[1] and key.value == job.targets[0][0]
        keys.add(key.value)
        assert counted[0].inputs[1] is selecting.inputs[1]  # the model the job is for: the checkpoint chosen
    assert len(keys) == len([d for d in heavy if d.fn.__module__ in in_reverse])  # one key a button


def test_player_markup_and_script():
    frames = [PIL.Image.new("L", (8, 6), v) for v in (0, 128, 255)]
    sheet, cols, rows = player.make_sprite(frames)
    assert (cols, rows) == (2, 2) and sheet.getpixel((8, 0)) == 128 and sheet.getpixel((0, 6)) == 255
    page = player.player_html([10, 5, 0], frame_size=(8, 6), cols=cols, chain_id="abc", captions=["x_t (t = {t})"])
    assert 'data-ts="10,5,0"' in page and '<b class="pl-t">10</b>' in page and 'width="8" height="6"' in page
    assert 'aria-label="x_t: a movie of 3 frames." aria-describedby="pl-keys-abc"' in page  # not "x_t (t = t)"
    assert f'<span id="pl-keys-abc" hidden>{player.KEYS_HINT}</span>' in page  # its description, not its name
    loop = player.player_html([0, 90], frame_size=(8, 6), cols=cols, chain_id="abc", variable="θ", unit="°",
                              captions=["x_T (θ = {t}°)", "x₀ decoded from it"])
    assert 'aria-label="x_T · x₀ decoded from it: a movie of 2 frames.' in loop
    assert loop.count("<canvas") == 1 and 'data-x="0"' in loop  # no panels given: one, the whole frame
    assert "watch('value', setup)" in player.PLAYER_JS and "requestAnimationFrame" in player.PLAYER_JS
    # one canvas per panel, under its own caption, drawing its slice of the frame (data-x, width)
    two = player.player_html([10, 0], frame_size=(20, 6), cols=cols, chain_id="abc", panels=[(0, 8), (12, 8)],
                             captions=["x_t (t = {t})", "predicted x̂₀"])
    assert two.count("<canvas") == 2 and two.count('class="pl-caption"') == 2
    first, second = two.split('class="pl-panel"')[1:]
    assert '<span>x_t (t = <b class="pl-t">10</b>)</span>' in first and 'width="8" height="6" data-x="0"' in first
    assert '<span>predicted x̂₀</span>' in second and 'width="8" height="6" data-x="12"' in second
    assert "--pl-gap: 20.000%" in second and "--pl-gap" not in first  # as far apart as in the frame: 4 of 20 px
    assert 'aria-label="x_t, the frame shown"' in first and 'aria-label="predicted x̂₀, the frame shown"' in second
    assert "@container (max-width: 480px)" in player.PLAYER_CSS  # stacked on a phone
    with pytest.raises(ValueError):  # a caption per panel
        player.player_html([1], frame_size=(20, 6), cols=1, chain_id="abc", panels=[(0, 8), (12, 8)], captions=["a"])
    for wrong in ([(0, 8), (14, 8)], [(0, 8), (6, 8)], [(0, 8), (10, 8)], [(12, 8), (0, 8)], [(0, 20), (20, 0)]):
        with pytest.raises(ValueError, match="do not tile a frame 20 pixels wide"):  # out, overlapping, short, …
            player.player_html([1], frame_size=(20, 6), cols=1, chain_id="abc", panels=wrong, captions=["a", "b"])
    with pytest.raises(ValueError):
        player.player_html([], frame_size=(8, 6), cols=1, chain_id="abc")
    with pytest.raises(ValueError):
        player.player_html([1], frame_size=(8, 6), cols=1, chain_id="a\"b")


def test_describe_warns_about_few_step_sampling_on_capped_beta_2d_checkpoints() -> None:
    shipped = checkpoint_access.REPO_CHECKPOINTS
    assert "β_T = 0.999" in checkpoint_access.describe(str(shipped / "swiss_roll_cosine"), [])
    assert "β_T" not in checkpoint_access.describe(str(shipped / "swiss_roll_linear"), [])
    linear = checkpoint_access.describe(str(shipped / "swiss_roll_linear"), [])  # the metric in words, with how it was had
    assert "SW ratio after training: 1.02 (DDPM over all 1000 steps, 2,000 samples" in linear
    assert "sliced_wasserstein" not in linear
    assert "β_T" not in checkpoint_access.describe(str(shipped / "mnist"), [])  # images: x̂₀ clipping keeps DDIM stable
    v_model = checkpoint_access.describe(str(shipped / "swiss_roll_cosine_v"), [])  # x̂₀ straight from the network
    assert "model: mlp, predicts v" in v_model and "⚠" not in v_model and "DDIM and short chains are sound" in v_model


def test_describe_shows_an_uploaded_configs_words_as_written(tmp_path) -> None:
    """An uploaded model's config may name its data anything: "<img src=x …><b>bold</b>" was put into the page as
    HTML (a broken picture, a bold word), not shown as the text it is."""
    folder = tmp_path / "odd"
    shutil.copytree(checkpoint_access.REPO_CHECKPOINTS / "swiss_roll_linear", folder)
    config = json.loads((folder / "config.json").read_text())
    config["data"]["name"] = '<img src=x onerror="alert(1)"><b>bold</b>'
    (folder / "config.json").write_text(json.dumps(config))
    text = checkpoint_access.describe(str(folder), [])
    assert 'data: &lt;img src=x onerror="alert(1)"&gt;&lt;b&gt;bold&lt;/b&gt; (2d)' in text
    assert "<img" not in text and "<b>" not in text


def test_score_field_arrows_point_along_their_vectors_and_are_capped():
    grid = player.field_grid()
    assert grid.shape == (16 * 16, 2) and np.allclose(np.diff(np.unique(grid[:, 0])), player.FIELD_STEP)
    orange = player._PALETTE_HEX.index(player.FIELD_COLOR)
    x_t = x0 = np.array([[10.0, 10.0]])  # off the axes: nothing in the way

    def left_panel(vector) -> np.ndarray:
        fields = [np.tile(np.asarray(vector, dtype=np.float64), (len(grid), 1))]
        return np.asarray(player.render_points_frames([x_t], [x0], [7], fields=fields)[0])[:, : player.PLOT_SIZE]

    def at(panel: np.ndarray, xy) -> bool:
        col, row = (int(round(float(v))) for v in player._to_pixels(np.array(xy)))
        return bool((panel[row - 1 : row + 2, col - 1 : col + 2] == orange).any())

    g = np.array([0.25, 0.25])
    right, left = left_panel([0.3, 0.0]), left_panel([-0.3, 0.0])
    assert at(right, g + [0.15, 0.0]) and not at(right, g - [0.15, 0.0])
    assert at(left, g - [0.15, 0.0]) and not at(left, g + [0.15, 0.0])
    up = left_panel([0.0, 0.3])
    assert at(up, g + [0.0, 0.15]) and not at(up, g - [0.0, 0.15])
    assert np.array_equal(left_panel([50.0, 0.0]), left_panel([player.FIELD_CAP, 0.0]))  # long arrows are capped
    assert not np.array_equal(left_panel([0.2, 0.0]), left_panel([0.3, 0.0]))  # shorter ones are not
    plain = np.asarray(player.render_points_frames([x_t], [x0], [7], fields=[None])[0])
    assert not (plain == orange).any()  # t = 0: no arrows


def test_chain_can_carry_the_score_field_of_each_frame(toy_ckpt, image_ckpt):
    checkpoint = checkpoint_access.load(str(toy_ckpt), [str(toy_ckpt)])
    chain = reverse_tab.sample_chain(checkpoint, method="ddpm", variance="small", eta=0.0, steps=None, n=50, seed=0,
                                     n_frames=6, score_field=True)
    assert len(chain.fields) == len(chain.frame_states) == 6 and chain.fields[-1] is None  # none at t = 0
    grid = player.field_grid()
    assert all(f.shape == grid.shape for f in chain.fields[:-1])
    # at t = T, x_t is noise and √ᾱ_T·x̂₀ ≈ 0: every arrow points back towards the origin
    first = chain.fields[0]
    cosine = (first * -grid).sum(1) / (np.linalg.norm(first, axis=1) * np.linalg.norm(grid, axis=1))
    assert np.median(cosine) > 0.9
    # at small t, arrows near the swiss roll (shrunk by √ᾱ_t) point onto it
    t = chain.frame_ts[-2]
    data = make_toy2d("swiss_roll", 4000, seed=3) * math.sqrt(float(checkpoint.schedule.alpha_bars[t]))
    near = lambda x: torch.cdist(torch.as_tensor(x, dtype=torch.float32), data).min(dim=1).values  # noqa: E731
    close = (near(grid) > 0.1) & (near(grid) < 0.6)
    assert int(close.sum()) > 20
    assert float(near(grid + chain.fields[-2])[close].mean()) < 0.7 * float(near(grid)[close].mean())
    assert reverse_tab.sample_chain(checkpoint, method="ddim", variance="small", eta=0.0, steps=5, n=5,
                                    seed=0).fields is None  # only when asked
    image = checkpoint_access.load(str(image_ckpt), [str(image_ckpt)])
    assert reverse_tab.sample_chain(image, method="ddim", variance="small", eta=0.0, steps=3, n=2, seed=0,
                                    score_field=True).fields is None  # 2D only
    _, plain_captions, _, _ = reverse_tab.render(reverse_tab.sample_chain(
        checkpoint, method="ddim", variance="small", eta=0.0, steps=5, n=5, seed=0))
    _, captions, _, _ = reverse_tab.render(chain)
    assert "arrows" in captions[0] and "arrows" not in plain_captions[0]


def test_the_ideal_denoiser_of_200_training_points_replaces_the_network_and_copies_them(toy_ckpt, tmp_path):
    checkpoint = checkpoint_access.load(str(toy_ckpt), [str(toy_ckpt)])
    # T = 1000: the last step's noise, √(1 − ᾱ_1) = 0.01, is below the spacing of 200 points (T = 100: 0.03)
    long_path = save_checkpoint(tmp_path / "long", checkpoint.model, make_schedule("linear", 1000), checkpoint.data)
    long = checkpoint_access.load(str(long_path), [str(long_path)])
    ideal = reverse_tab.ideal_checkpoint(long)
    assert torch.equal(ideal.points, make_toy2d("swiss_roll", reverse_tab.IDEAL_POINTS, seed=0))
    assert ideal.schedule is long.schedule and ideal.data.given_as_points
    chain = reverse_tab.sample_chain(ideal, method="ddpm", variance="small", eta=0.0, steps=None, n=300, seed=0,
                                     n_frames=5)
    assert len(np.unique(chain.reference, axis=0)) == reverse_tab.IDEAL_POINTS  # grey: its training points
    assert copy_fraction(chain.samples, ideal.points, reverse_tab.COPY_RADIUS) > 0.9
    trained = reverse_tab.sample_chain(checkpoint, method="ddpm", variance="small", eta=0.0, steps=None, n=300, seed=0,
                                       n_frames=5)
    assert copy_fraction(trained.samples, ideal.points, reverse_tab.COPY_RADIUS) < 0.2  # the network does not copy
    _, stats, *_ = reverse_tab.generate(REQ, str(long_path), "ddpm_small", 0, 0, 300, 0, 5, "uniform", False, True,
                                        [str(long_path)], progress=None)
    share = int(re.search(r"\*\*(\d+)%\*\* of the samples are copies", stats).group(1))
    assert share > 90 and "the ideal denoiser of 200 of its training points in place of its network" in stats
    _, plain, *_ = reverse_tab.generate(REQ, str(toy_ckpt), "ddpm_small", 0, 0, 300, 0, 5, "uniform", False, False,
                                        [str(toy_ckpt)], progress=None)
    assert "copies" not in plain and "ideal" not in plain
    old_csv = save_checkpoint(tmp_path / "old_csv", checkpoint.model, checkpoint.schedule,
                              DataInfo("pts", "2d", (2,), source="pts.csv"))
    with pytest.raises(gr.Error, match="ideal denoiser needs training examples.*training points of pts were not kept"):
        reverse_tab.generate(REQ, str(old_csv), "ddpm_small", 0, 0, 30, 0, 5, "uniform", False, True, [str(old_csv)],
                             progress=None)


def test_the_copies_among_the_samples_are_counted_for_small_training_sets(toy_ckpt, tmp_path):
    checkpoint = checkpoint_access.load(str(toy_ckpt), [str(toy_ckpt)])

    def stats_for(n_points: int) -> str:
        points = make_toy2d("swiss_roll", n_points, seed=0)
        info = DataInfo("swiss_roll", "2d", (2,), source=f"{n_points} points of swiss_roll, seed 0")
        path = save_checkpoint(tmp_path / f"n{n_points}", checkpoint.model, checkpoint.schedule, info, points=points)
        return reverse_tab.generate(REQ, str(path), "ddpm_small", 0, 0, 200, 0, 5, "uniform", False, False,
                                    [str(path)], progress=None)[1]

    few = stats_for(20)
    share = int(re.search(r"\*\*(\d+)%\*\* of the samples are copies: within 0\.01 of one of the 20 training points",
                          few).group(1))
    assert 0 <= share < 50  # a network trained on the whole roll does not copy these 20 points
    assert "copies" not in stats_for(reverse_tab.MAX_COPY_CHECK + 1)  # a denser set: every sample is near a point


def test_a_chain_joined_at_t0_starts_from_noised_examples(toy_ckpt):
    checkpoint = checkpoint_access.load(str(toy_ckpt), [str(toy_ckpt)])
    starts = reverse_tab.starting_examples(checkpoint, 500, 3)
    assert torch.equal(starts, make_toy2d("swiss_roll", 500, seed=3))

    def joined(t0: int) -> reverse_tab.Chain:
        return reverse_tab.sample_chain(checkpoint, method="ddpm", variance="small", eta=0.0, steps=None, n=500, seed=4,
                                        n_frames=5, starts=starts, start_t=t0)

    near = joined(5)
    assert near.state_ts == [5, 4, 3, 2, 1, 0] and torch.equal(near.starts, starts)
    eps, _ = reverse_tab.initial_noise((500, 2), seed=4)  # the seed's noise, in place of x_T
    ab = float(checkpoint.schedule.alpha_bars[5])
    assert np.allclose(near.x[0], math.sqrt(ab) * starts.numpy() + math.sqrt(1 - ab) * eps.numpy(), atol=1e-6)
    # from a little noise the chain gives the examples back; from t0 = T nothing of them is left
    assert return_ratio(near.samples, starts) < 0.2
    assert return_ratio(joined(100).samples, starts) > 0.8
    with pytest.raises(ValueError, match="both"):
        reverse_tab.sample_chain(checkpoint, method="ddpm", variance="small", eta=0.0, steps=None, n=500, seed=0,
                                 starts=starts)


def test_joined_at_t0_the_tab_shows_the_start_and_what_came_back(toy_ckpt):
    page, stats, *_ = reverse_tab.generate(REQ, str(toy_ckpt), "ddpm_small", 0, 0, 300, 0, 6, "uniform", False, False,
                                           [str(toy_ckpt)], True, 10, progress=None)
    assert "Joined at **t₀ = 10**" in stats and "10 steps from t₀ = 10" in stats
    ratio = float(re.search(r"Return ratio \*\*([\d.]+)\*\*", stats).group(1))
    assert ratio < 0.35, stats
    assert "rings: their x₀ before noising" in page
    ts = [int(t) for t in re.search(r'data-ts="([^"]+)"', page).group(1).split(",")]
    assert ts[0] == 10 and ts[-1] == 0
    _, stats, *_ = reverse_tab.generate(REQ, str(toy_ckpt), "ddpm_small", 0, 0, 30, 0, 5, "uniform", False, False,
                                        [str(toy_ckpt)], True, 1, progress=None)
    ab = float(load_checkpoint(toy_ckpt).schedule.alpha_bars[1])
    assert "1 step from t₀ = 1" in stats and f"(ᾱ = {ab:.4g}:" in stats and ab < 0.9995  # not rounded to 1
    for bad in (0, 101, 2.5):
        with pytest.raises(gr.Error, match="t₀"):
            reverse_tab.generate(REQ, str(toy_ckpt), "ddpm_small", 0, 0, 30, 0, 5, "uniform", False, False,
                                 [str(toy_ckpt)], True, bad, progress=None)


def test_digits_noised_a_little_keep_their_class_and_noised_a_lot_do_not():
    """The shipped MNIST model from the bundled digits noised to t0 (DDIM-100 below t0): at t0 = 100 the classifier
    reads every sample as the digit it started from; from t0 = T they are new digits."""
    checkpoint = load_checkpoint(checkpoint_access.REPO_CHECKPOINTS / "mnist")
    starts = reverse_tab.starting_examples(checkpoint, 16, 0)
    assert torch.equal(starts, mnist_digits(16))

    def kept(t0: int) -> tuple[int, int]:
        chain = reverse_tab.sample_chain(checkpoint, method="ddim", variance="small", eta=0.0, steps=100, n=16,
                                         seed=0, n_frames=4, starts=starts, start_t=t0)
        return reverse_tab.kept_classes(chain, checkpoint.data)

    assert kept(100) == (16, 16)
    assert kept(1000)[0] <= 6


def test_image_chain_joined_at_t0_shows_its_examples_first(image_ckpt, tmp_path, monkeypatch):
    page, stats, movie, _ = reverse_tab.generate(REQ, str(image_ckpt), "ddim", 0.0, 10, 4, 0, 5, "uniform", False,
                                                 False, [str(image_ckpt)], True, 20, progress=None)
    assert reverse_tab.START_CAPTION in page and "Joined at **t₀ = 20**" in stats
    assert [len(labels) for labels in movie.labels] == [3] * 5  # the GIF's frames: the examples, x_t and x̂₀
    assert "reads the same class as in its example in **" in stats
    plain_page, *_ = reverse_tab.generate(REQ, str(image_ckpt), "ddim", 0.0, 10, 4, 0, 5, "uniform", False, False,
                                          [str(image_ckpt)], progress=None)
    width = lambda markup: int(re.search(r'data-w="(\d+)"', markup).group(1))  # noqa: E731
    assert width(page) > 1.4 * width(plain_page)  # three grids instead of two
    assert page.count("<canvas") == 3 and f'data-x="{2 * 66}"' in page and width(page) == 2 * 66 + 62
    monkeypatch.setenv("DDPM_DATA_DIR", str(tmp_path / "empty"))
    cifar = save_checkpoint(tmp_path / "cifar", UNet(unet_config("tiny", 32, 3)), make_schedule("linear", 50),
                            DataInfo("cifar10", "image", (3, 32, 32)))
    with pytest.raises(gr.Error, match="cannot start from its training data here: CIFAR-10 not found"):
        reverse_tab.generate(REQ, str(cifar), "ddim", 0.0, 10, 4, 0, 5, "uniform", False, False, [str(cifar)], True, 20,
                             progress=None)


def test_a_model_without_its_points_cannot_start_from_them(toy_ckpt, tmp_path):
    checkpoint = checkpoint_access.load(str(toy_ckpt), [str(toy_ckpt)])
    old_csv = save_checkpoint(tmp_path / "old_csv", checkpoint.model, checkpoint.schedule,
                              DataInfo("pts", "2d", (2,), source="pts.csv"))
    with pytest.raises(gr.Error, match="training points of pts were not kept"):
        reverse_tab.generate(REQ, str(old_csv), "ddpm_small", 0, 0, 30, 0, 5, "uniform", False, False, [str(old_csv)],
                             True, 20, progress=None)


def test_the_start_slider_follows_the_checkpoint_T(toy_ckpt):
    config = {"schedule": {"T": 100}}
    assert reverse_tab.start_slider(config, 400).value == 40 and reverse_tab.start_slider(config, 400).maximum == 100
    assert reverse_tab.start_slider(config, 70).value == 70
    *_, slider, kind = reverse_tab.checkpoint_selected(str(toy_ckpt), [str(toy_ckpt)], 250)
    assert slider.maximum == 100 and slider.value == 40 and kind == "2d"


def test_a_checkpoint_of_the_same_kind_keeps_the_sampler_settings(toy_ckpt, image_ckpt):
    """Comparing two 2D models at "DDPM, 10 steps, log-SNR": picking the second put the sampler, steps and samples
    back to their defaults, and ran all 1,000 steps on it without a word. Another kind of data still gets its own
    defaults (DDPM's 1,000 steps on 16 images take a minute on a CPU)."""
    trained = [str(toy_ckpt), str(image_ckpt)]
    info, sampler, steps, n, _, kind = reverse_tab.checkpoint_selected(str(toy_ckpt), trained, 40, 10, "2d")
    assert (sampler, steps, n, kind) == (gr.skip(), gr.skip(), gr.skip(), "2d") and "sampler is now set" not in info
    assert reverse_tab.checkpoint_selected(str(toy_ckpt), trained, 40, 500, "2d")[2] == 100  # within its T = 100
    assert reverse_tab.checkpoint_selected(str(toy_ckpt), trained, 40, "", "2d")[2] == gr.skip()
    info, sampler, steps, n, _, kind = reverse_tab.checkpoint_selected(str(image_ckpt), trained, 40, 10, "2d")
    assert (sampler, n, kind) == ("ddim", reverse_tab.DEFAULT_SAMPLES["image"], "image") and steps <= 100
    assert "The sampler is now set for images: DDIM (η = 0)" in info  # said, not changed without a word
    # dropped once the steps, sampler or samples are changed by hand (it stayed beside the box that no longer said it)
    assert reverse_tab.sampler_note_dropped(info) == checkpoint_access.describe(str(image_ckpt), trained)
    assert reverse_tab.sampler_note_dropped(checkpoint_access.describe(str(image_ckpt), trained)) == gr.skip()
    _, sampler, steps, n, _, kind = reverse_tab.checkpoint_selected(str(toy_ckpt), trained, 40, 10, "image")
    assert (sampler, steps, n, kind) == ("ddpm_small", 0, reverse_tab.DEFAULT_SAMPLES["2d"], "2d")


def test_the_ideal_denoiser_of_64_digits_returns_copies_of_them(image_ckpt, tmp_path, monkeypatch):
    """In place of an image model: the ideal denoiser of the 64 bundled digits; every sample is one of them."""
    checkpoint = checkpoint_access.load(str(image_ckpt), [str(image_ckpt)])
    ideal = reverse_tab.ideal_checkpoint(checkpoint)
    assert torch.equal(ideal.points, mnist_digits(reverse_tab.IDEAL_IMAGES)) and ideal.data.kind == "image"
    chain = reverse_tab.sample_chain(ideal, method="ddim", variance="small", eta=0.0, steps=10, n=12, seed=0, n_frames=4)
    nearest = torch.cdist(chain.samples.flatten(1), ideal.points.flatten(1)).min(dim=1).values
    assert float(nearest.max()) < 0.05  # copies: a root-mean-square difference under 0.002 per pixel
    assert float(chain.samples.flatten(1).std(dim=0).mean()) > 0.3  # of several digits, not one
    _, stats, *_ = reverse_tab.generate(REQ, str(image_ckpt), "ddim", 0, 10, 12, 0, 4, "uniform", False, True,
                                        [str(image_ckpt)], progress=None)
    assert "**100%** of the samples are copies of one of the 64 training images" in stats
    assert "the ideal denoiser of 64 of its training images in place of its network" in stats
    _, network, *_ = reverse_tab.generate(REQ, str(image_ckpt), "ddim", 0, 10, 12, 0, 4, "uniform", False, False,
                                          [str(image_ckpt)], progress=None)
    assert "copies" not in network  # the network's training set is not at hand: no count
    monkeypatch.setenv("DDPM_DATA_DIR", str(tmp_path / "empty"))
    cifar = save_checkpoint(tmp_path / "cifar", UNet(unet_config("tiny", 32, 3)), make_schedule("linear", 50),
                            DataInfo("cifar10", "image", (3, 32, 32)))
    with pytest.raises(gr.Error, match="ideal denoiser needs training examples.*CIFAR-10 not found"):
        reverse_tab.generate(REQ, str(cifar), "ddim", 0.0, 10, 4, 0, 5, "uniform", False, True, [str(cifar)],
                             progress=None)


def test_export_captions_fit_their_panels():
    """Each caption of an exported image frame stays over its own panel: long ones are set in a smaller font."""
    frames = [PIL.Image.new("RGB", (90, 30), "black")]  # three 30-pixel panels, scaled up to 540 pixels
    out = player.labelled_image_frames(frames, [["x₀ of the data, long before any noising", "x_t (t = 225)", "x̂₀"]])[0]
    assert out.width >= player.GIF_MIN_WIDTH
    band = np.asarray(out.convert("L"))[:28]
    ink = np.nonzero((band < 128).any(axis=0))[0]
    share = out.width / 3
    first = ink[ink < share]
    assert first.min() > 0 and first.max() < share - 2  # the long caption keeps inside the first panel
    assert ((ink > share) & (ink < 2 * share)).any() and (ink > 2 * share).any()


def test_grey_frames_export_grey_and_give_the_same_gif(tmp_path):
    """Grey frames (MNIST) stay grey for export, colour ones (CIFAR-10) stay RGB; the GIF of the grey frames
    shows the very pixels of the GIF written from their RGB copies (which PIL quantises frame by frame, slowly)."""
    rng = np.random.default_rng(0)
    grey = [PIL.Image.fromarray(rng.integers(0, 256, (30, 60), dtype=np.uint8)) for _ in range(3)]
    colour = [PIL.Image.fromarray(rng.integers(0, 256, (30, 60, 3), dtype=np.uint8)) for _ in range(3)]
    captions = [["x_t (t = 5)", "predicted x̂₀"]] * 3
    exported = player.labelled_image_frames(grey, captions)
    assert {f.mode for f in exported} == {"L"}
    assert {f.mode for f in player.labelled_image_frames(colour, captions)} == {"RGB"}
    as_grey = movie_files.write_gif(exported, tmp_path / "grey.gif")
    as_rgb = movie_files.write_gif([f.convert("RGB") for f in exported], tmp_path / "rgb.gif")

    def pixels(path):
        return [np.asarray(f.convert("RGB")) for f in PIL.ImageSequence.Iterator(PIL.Image.open(path))]

    assert len(pixels(as_grey)) == 3
    for a, b in zip(pixels(as_grey), pixels(as_rgb), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_sweep_of_t0_shows_the_examples_forgotten_as_t0_grows(toy_ckpt):
    assert reverse_tab.sweep_t0s(100) == [5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    assert reverse_tab.sweep_t0s(10) == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    figure, stats, curves = reverse_tab.sweep(str(toy_ckpt), "ddpm_small", 0, 0, 5000, 0, "uniform", False,
                                              [str(toy_ckpt)], [], "t", progress=None)
    fig = figures.as_figure(figure)
    assert [trace.name for trace in fig.data] == ["swiss (DDPM-100): return ratio"]  # 2D: no classes
    ratios = list(fig.data[0].y)
    assert list(fig.data[0].x) == reverse_tab.sweep_t0s(100)
    assert ratios[0] < 0.3 and ratios[-1] > 0.8 and max(ratios[:3]) < min(ratios[-3:])
    assert f"the same {reverse_tab.MAX_SWEEP_SAMPLES['2d']} training examples (at most" in stats  # 5,000 capped
    rows = [line for line in stats.splitlines() if re.match(r"\| \d+ \|", line)]
    assert [int(row.split("|")[1]) for row in rows] == reverse_tab.sweep_t0s(100)
    # a second sweep joins the first on the plot; against log-SNR the axis runs from clean to noisy
    figure, _, curves = reverse_tab.sweep(str(toy_ckpt), "ddim", 0, 20, 100, 0, "log_snr", False, [str(toy_ckpt)],
                                          curves, "log_snr", progress=None)
    fig = figures.as_figure(figure)
    assert [trace.name for trace in fig.data] == ["swiss (DDPM-100): return ratio",
                                                  "swiss (DDIM-20, log-SNR): return ratio"]
    schedule = make_schedule("linear", 100)
    assert np.allclose(fig.data[0].x, [float(schedule.log_snr[t]) for t in reverse_tab.sweep_t0s(100)])
    assert fig.layout.xaxis.range[0] > fig.layout.xaxis.range[1]
    assert list(figures.as_figure(reverse_tab.redraw_sweeps(curves, "t")).data[1].x) == reverse_tab.sweep_t0s(100)
    _, _, again = reverse_tab.sweep(str(toy_ckpt), "ddpm_small", 0, 0, 100, 1, "uniform", False, [str(toy_ckpt)],
                                    curves, "t", progress=None)  # the first model and sampler again: replaced
    assert [c.label for c in again] == ["swiss (DDIM-20, log-SNR)", "swiss (DDPM-100)"] and again[1] is not curves[0]
    _, _, kept = reverse_tab.sweep(str(toy_ckpt), "ddim", 0, 5, 50, 1, "uniform", False, [str(toy_ckpt)],
                                   [curves[0]] * reverse_tab.MAX_CURVES, "t", progress=None)
    assert len(kept) == reverse_tab.MAX_CURVES and kept[-1].label == "swiss (DDIM-5)"  # the oldest dropped
    assert reverse_tab.clear_sweeps() == (None, "", []) and reverse_tab.redraw_sweeps([], "t") == gr.skip()
    with pytest.raises(gr.Error, match="Samples"):
        reverse_tab.sweep(str(toy_ckpt), "ddpm_small", 0, 0, 1, 0, "uniform", False, [str(toy_ckpt)], [], "t",
                          progress=None)


def test_a_sweep_of_digits_counts_those_that_kept_their_class():
    checkpoint = load_checkpoint(checkpoint_access.REPO_CHECKPOINTS / "mnist")
    choice = reverse_tab.sampler_choice("ddim", 0.0, 20, "uniform", 1000)
    curve = reverse_tab.survival_sweep(checkpoint, choice, 8, 0, "mnist")
    assert curve.t0s == reverse_tab.sweep_t0s(1000)
    assert curve.kept[0] * 8 == 8 and curve.kept[-1] * 8 <= 4  # 8 of 8 kept at t₀ = 50, at most 4 at t₀ = T
    assert curve.ratios[0] < 0.2 < curve.ratios[-1]
    assert np.allclose(curve.log_snrs, [float(checkpoint.schedule.log_snr[t]) for t in curve.t0s])
    assert [trace.name for trace in figures.as_figure(figures.survival_figure([curve])).data] == [
        "mnist: return ratio", "mnist: share that kept its class"]
    assert figures.as_figure(figures.survival_figure([curve])).layout.yaxis.title.text == (
        "return ratio · share that kept its class")
    points = figures.SurvivalCurve("moons", curve.t0s, curve.log_snrs, curve.ratios)  # 2D: no classes to keep
    assert figures.as_figure(figures.survival_figure([points])).layout.yaxis.title.text == (
        "return ratio (0: back to its example)")


def test_a_diverged_model_is_refused_in_plain_words(tmp_path):
    """The tab's own gr.Error (a ValueError too) comes through Generate and Sweep as it is, not quoted."""
    model = MLPDenoiser(MLPConfig(hidden=16, depth=1, emb_dim=8))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.fill_(1e30)  # finite weights whose activations overflow: NaN samples
    path = str(save_checkpoint(tmp_path / "nan", model, make_schedule("linear", 100), DataInfo("moons", "2d", (2,))))
    for call in (lambda: reverse_tab.generate(REQ, path, "ddpm_small", 0, 0, 50, 0, 10, "uniform", False, False, [path],
                                              progress=None),
                 lambda: reverse_tab.sweep(path, "ddpm_small", 0, 0, 20, 0, "uniform", False, [path], [], "t",
                                           progress=None)):
        with pytest.raises(gr.Error) as caught:
            call()
        assert caught.value.message == reverse_tab.DIVERGED


def test_data_of_one_point_has_no_sliced_wasserstein_ratio(tmp_path):
    """Two draws of one point coincide: the ratio is 0/0. Generate says so; the steps and t₀ sweeps refuse to plot it."""
    from app import steps_panel

    model = MLPDenoiser(MLPConfig(hidden=16, depth=1, emb_dim=8))
    path = str(save_checkpoint(tmp_path / "one", model, make_schedule("linear", 100), DataInfo("drawing", "2d", (2,)),
                               points=torch.tensor([[0.5, -0.5]])))
    assert checkpoint_access.load(path, [path]).points.shape == (1, 2)
    _, stats, *_ = reverse_tab.generate(REQ, path, "ddpm_small", 0, 0, 50, 0, 10, "uniform", False, False, [path],
                                        progress=None)
    assert "The sliced-Wasserstein ratio to the training data is not defined: the data is a single point" in stats
    # in the singular ("1 samples", "1 of the 1 training points", "1 pinned points over the last 8 frames" of 11)
    assert "50 samples, seed 0" in stats and "of the samples are copies: within 0.01 of the training point (grey)." in stats
    assert "cannot tell copies" not in stats
    page, stats, *_ = reverse_tab.generate(REQ, path, "ddpm_small", 0, 0, 1, 0, 10, "uniform", False, False, [path],
                                           progress=None)
    assert "1 sample, seed 0" in stats and "lines: 1 pinned point over the last 8 frames" in page
    page, *_ = reverse_tab.generate(REQ, path, "ddim", 0, 2, 1, 0, 10, "uniform", False, False, [path], progress=None)
    assert "over the last 2 frames" in page
    with pytest.raises(gr.Error, match="training data is a single point"):
        steps_panel.sweep_steps(path, "uniform", 0, False, [path], progress=lambda *a, **k: None)
    # nor is the return ratio of chains joined at t₀ (it had read 1.00, "nothing of them is left", at every t₀)
    with pytest.raises(gr.Error, match="return ratio is not defined here: the examples are all one point"):
        reverse_tab.sweep(path, "ddim", 0, 5, 20, 0, "uniform", False, [path], [], "t", progress=lambda *a, **k: None)
    from app import noise_map  # the DDIM map's examples, decoded again, say so too (it had raised)
    _, encoded = noise_map.encode_examples(path, 10, "uniform", 20, 0, False, [path], progress=lambda *a, **k: None)
    assert "The return ratio is not defined here: the examples are all one point" in encoded


def test_a_panels_results_make_way_when_another_model_is_chosen():
    """The panels' results are of the model they were run with: chosen another, the swiss roll's bound (1.187
    bits/dim) had stayed on the page under "mnist (shipped)". Now they make way for a note naming the model to run
    the panel for; a panel not run yet is left alone."""
    mnist = str(checkpoint_access.REPO_CHECKPOINTS / "mnist")
    plot, stats = reverse_tab.made_way(mnist, "**swiss_roll_linear (shipped)** · total 0.823 nats per dimension")
    assert plot.visible is False and plot.value is None
    assert "of the model chosen before" in stats and "again for **mnist**" in stats
    assert all(isinstance(v, type(gr.skip())) for v in reverse_tab.made_way(mnist, ""))
    from app import build_app

    demo = build_app()
    ways = [d for d in demo.fns.values() if getattr(d.fn, "__name__", "") == "made_way"]
    plots = {d.outputs[0].elem_id for d in ways}  # every panel of results below the player
    assert plots == {"reverse-bound-plot", "reverse-steps-plot", "reverse-inpaint-plot", "reverse-map-plot",
                     "reverse-guide-plot", "reverse-anatomy-plot"}, plots
    assert all(d.targets[0][1] == "change" for d in ways)
    # a result that comes back once another model was chosen makes way too: it had come back over the note
    since = [d for d in demo.fns.values() if getattr(d.fn, "__name__", "") == "made_way_since"]
    assert {d.outputs[0].elem_id for d in since} == plots - {"reverse-anatomy-plot"}  # the anatomy draws at once
    assert all(d.trigger_only_on_success and demo.fns[d.trigger_after].concurrency_id == runs.SAMPLING_CONCURRENCY_ID
               for d in since)
    for made in since:  # a refused job hides the plot it showed, empty but for an "Error" mark, unless it held results
        (hides,) = [d for d in demo.fns.values() if d.trigger_after == made.trigger_after and d.trigger_only_on_failure
                    and d.outputs == made.outputs[:1]]
        assert hides.fn("").visible is False
        assert isinstance(hides.fn("**mnist** · …"), type(gr.skip()))
    # the steps panel's second plot, the samples of its chains, makes way with its curves
    seconds = {name: [d for d in demo.fns.values() if getattr(d.fn, "__name__", "") == name]
               for name in ("plot_made_way", "plot_made_way_since")}
    assert [[d.outputs[0].elem_id for d in found] for found in seconds.values()] == [["reverse-steps-samples"]] * 2
    assert reverse_tab.plot_made_way(mnist, "**moons** · …").visible is False
    assert isinstance(reverse_tab.plot_made_way(mnist, ""), type(gr.skip()))
    plot, stats = reverse_tab.made_way_since(mnist, str(checkpoint_access.REPO_CHECKPOINTS / "swiss_roll_linear"),
                                             "**swiss_roll_linear** · total 1.187 bits per dimension")
    assert plot.visible is False and "again for **mnist**" in stats
    assert all(isinstance(v, type(gr.skip())) for v in reverse_tab.made_way_since(mnist, mnist, "**mnist** · …"))


def test_a_chain_of_the_model_chosen_before_says_so_above_its_stats():
    """A Generate for mnist, the model changed to moons while it ran: the chain played beside "moons (shipped)" and
    its description. The chain still plays (it was asked for), and its stats say whose it is."""
    mnist, moons = (str(checkpoint_access.REPO_CHECKPOINTS / name) for name in ("mnist", "moons"))
    stats = reverse_tab.played_since(moons, mnist, "**mnist** · DDPM … FID ratio 1.7")
    assert stats.startswith("*This chain is of **mnist**, the model chosen when it was asked for; the model above is "
                            "now **moons**.*") and stats.endswith("**mnist** · DDPM … FID ratio 1.7")
    for same in (reverse_tab.played_since(mnist, mnist, "**mnist** · …"), reverse_tab.played_since(moons, mnist, "")):
        assert isinstance(same, type(gr.skip()))
    from app import build_app

    demo = build_app()
    said = [d for d in demo.fns.values() if getattr(d.fn, "__name__", "") == "played_since"]
    jobs = [demo.fns[d.trigger_after] for d in said]
    assert {j.fn.__name__ for j in jobs} == {"generate", "play", "play_loop"}  # every job that fills the player
    assert len(said) == 4 and all(d.trigger_only_on_success and d.outputs[0].elem_classes for d in said)


def test_samples_are_scored_against_the_draws_of_their_seed_as_the_command_line_does(toy_ckpt):
    """The app scored every chain against seed 0's draws of the data: moons at seed 3 read 1.36 in the app and 0.99
    in `core.evaluate` for the very same samples, and the steps panel put DDPM-500 (0.48) below the data's own range,
    which it drew with the seed."""
    from app import steps_panel
    from core.metrics import sliced_wasserstein_ratio

    checkpoint = checkpoint_access.load(str(toy_ckpt), [str(toy_ckpt)])
    chain = reverse_tab.sample_chain(checkpoint, method="ddim", variance="small", eta=0.0, steps=10, n=200, seed=3)
    draw = checkpoint.data_sampler()
    as_cli = sliced_wasserstein_ratio(chain.samples, draw, seed=3)
    assert chain.seed == 3 and reverse_tab.data_distance(chain, checkpoint) == as_cli
    assert as_cli != sliced_wasserstein_ratio(chain.samples, draw, seed=0)
    measure, *_ = steps_panel.quality_measure(checkpoint, 3)
    assert measure(chain.samples) == as_cli


def test_a_chains_score_is_read_against_the_datas_own_range_at_its_size(toy_ckpt):
    """One model read 1.02 after training, 1.56 after Generate and 0.92 in the steps panel, each a score alone: the
    summary now gives the data's own range at the chain's size and seed, as `core.evaluate --real-data` prints it."""
    from core.evaluate import real_data_scores

    checkpoint = checkpoint_access.load(str(toy_ckpt), [str(toy_ckpt)])
    chain = reverse_tab.sample_chain(checkpoint, method="ddim", variance="small", eta=0.0, steps=10, n=200, seed=3)
    text = reverse_tab.stats_markdown(chain, checkpoint, "DDIM", 200, 0.1, "uniform")
    cli = real_data_scores(checkpoint, n=200, seed=3)["sliced_wasserstein_ratio"]
    ratio = reverse_tab.data_distance(chain, checkpoint)
    assert f"The data itself, 8 fresh draws of 200 points scored the same way, scores **{cli['min']:.2f}–" \
           f"{cli['max']:.2f}**" in text
    verdict = "inside the data's own range" if ratio <= cli["max"] else "above the data's own range"
    assert f"**{ratio:.2f}** — {verdict}" in text
    start = time.perf_counter()
    assert reverse_tab.data_own_range(checkpoint, 200, 3) == reverse_tab.data_own_range(checkpoint, 200, 3)
    assert time.perf_counter() - start < 0.05  # kept: Generate again does not draw the data again
    assert reverse_tab.data_own_range(checkpoint, 200, 4) != reverse_tab.data_own_range(checkpoint, 200, 3)


def test_a_model_whose_chain_does_not_reach_noise_is_said_to(tmp_path):
    """Its samples had scored far from the data with no word why (the other tabs and the CLI warn of such a chain)."""
    model = MLPDenoiser(MLPConfig(hidden=16, depth=1, emb_dim=8))
    short = save_checkpoint(tmp_path / "short", model, make_schedule("linear", 10, scale_with_T=False),
                            DataInfo("moons", "2d", (2,)))
    text = checkpoint_access.describe(str(short), [str(short)])
    assert "⚠ ᾱ_T = 0.9037: this model's chain does not reach noise, yet sampling starts from pure noise" in text
    full = save_checkpoint(tmp_path / "full", model, make_schedule("linear", 1000), DataInfo("moons", "2d", (2,)))
    assert "does not reach noise" not in checkpoint_access.describe(str(full), [str(full)])


def test_t0_beyond_the_log_snr_axis_are_said_to_be_off_it():
    """The log-SNR axis stops at −12 (a capped schedule's t₀ = T lies near −20): points beyond it had gone silently."""
    far = figures.SurvivalCurve("deep", [100, 500, 1000], [2.0, -11.0, -40.0], [0.1, 0.9, 1.0])
    layout = figures.as_figure(figures.survival_figure([far], "log_snr")).layout
    assert [a.text for a in layout.annotations] == [
        "1 t₀ beyond log-SNR −12 (the far right) is off the axis: see the table"]
    assert layout.xaxis.range[1] == pytest.approx(figures.LOG_SNR_FLOOR - 0.5)
    assert not figures.as_figure(figures.survival_figure([far], "t")).layout.annotations  # against t all are shown


def test_the_capped_schedule_warning_gives_this_schedules_factor():
    """It said "(hundreds here)" whatever T: 631 at T = 1000 on cosine, but 31 at T = 3. The factor is the step's
    exact gain on an error in ε̂, the one the Schedules tab plots (it gave the approximation √(ᾱ_s/ᾱ_T), 632)."""
    cosine = make_schedule("cosine", 1000)
    warning = checkpoint_access._few_step_warning("2d", cosine)
    assert f"{schedules_tab.step_gains(cosine, 'uniform')[0]:.0f}" == "631"
    assert "by about √(ᾱ_s/ᾱ_T) (×631 here for 50 DDIM steps: |√(1 − ᾱ_s) − √(ᾱ_s/SNR_T)|)" in warning
    assert "(×31 here for 3 DDIM steps:" in checkpoint_access._few_step_warning("2d", make_schedule("cosine", 3))


def test_a_broken_checkpoint_is_named_not_given_by_its_server_path(toy_ckpt, tmp_path):
    """The toast for a model whose weights were cut short had shown the server's path (its browser's folder), where
    the panel above it says the model's name."""
    broken = shutil.copytree(toy_ckpt, tmp_path / "k0123" / "swiss-cut")
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(gr.Error) as refused:
        checkpoint_access.load(str(broken), [str(broken)])
    assert refused.value.message.startswith("The checkpoint cannot be used: swiss-cut/model.safetensors is not")
    assert str(tmp_path) not in refused.value.message


def test_a_sampling_job_stops_at_the_servers_time_limit(toy_ckpt, monkeypatch):
    """An uploaded model of 256 × 256 pixels and T = 10,000 had held the one sampling queue for days: every job of the
    queue stops once it has run DDPM_MAX_SAMPLE_SECONDS, at its next network call, with a message; the thread's next
    job starts with its own time."""
    from app import build_app

    limited_code = runs.time_limited(lambda: None).__code__
    heavy = [d for d in build_app().fns.values() if d.concurrency_id == runs.SAMPLING_CONCURRENCY_ID]
    assert len(heavy) >= 10 and all(d.fn.__code__ is limited_code for d in heavy)
    monkeypatch.setenv("DDPM_MAX_SAMPLE_SECONDS", "1")
    network = checkpoint_access.load(str(toy_ckpt), [str(toy_ckpt)]).model
    calls = []
    slow = network.register_forward_pre_hook(lambda module, inputs: calls.append(time.sleep(0.015)))
    generate = runs.time_limited(reverse_tab.generate)
    try:
        with pytest.raises(gr.Error) as stopped:
            generate(REQ, str(toy_ckpt), "ddpm_small", 0, 0, 30, 0, 10, "uniform", False, False, [str(toy_ckpt)],
                     progress=lambda *a, **k: None)
        assert stopped.value.message.startswith("Stopped after 1 s: this server gives a sampling job at most that long")
        assert 10 <= len(calls) <= 67  # of the chain's 100 steps: 1 s at 15 ms a call at most
        monkeypatch.setenv("DDPM_MAX_SAMPLE_SECONDS", "30")
        generate(REQ, str(toy_ckpt), "ddim", 0, 5, 30, 0, 10, "uniform", False, False, [str(toy_ckpt)],
                 progress=lambda *a, **k: None)  # its own 30 s, ended long before its deadline below
        clock = time.monotonic
        monkeypatch.setattr(runs.time, "monotonic", lambda: clock() + 60)  # past that job's deadline
        reverse_tab.sample_chain(checkpoint_access.load(str(toy_ckpt), [str(toy_ckpt)]), method="ddim",
                                 variance="small", eta=0.0, steps=5, n=10, seed=0)  # outside a job: no limit
        monkeypatch.setenv("DDPM_MAX_SAMPLE_SECONDS", "0.5")
        ticks = iter(range(10**6))
        monkeypatch.setattr(runs.time, "monotonic", lambda: clock() + next(ticks))  # a second a reading
        with pytest.raises(gr.Error, match=r"Stopped after 0\.5 s"):  # the ideal denoiser is stopped alike
            generate(REQ, str(toy_ckpt), "ddim", 0, 5, 30, 0, 10, "uniform", False, True, [str(toy_ckpt)],
                     progress=lambda *a, **k: None)
    finally:
        slow.remove()


def test_stop_ends_the_pages_sampling_job_and_keeps_what_was_shown(toy_ckpt, monkeypatch):
    """A DDPM chain of 1,000 steps for 64 digits held the one sampling queue for a minute, for every visitor, with no
    way to stop it. Stop (shown while a job of the page waits or runs) ends the job at its next network call; what
    the job would have filled keeps what it showed, and a toast says why. Only the page's own job stops; a Stop
    that found no job of the page does not stop its next one."""
    from gradio.context import LocalContext

    network = checkpoint_access.load(str(toy_ckpt), [str(toy_ckpt)]).model
    calls, infos = [], []
    monkeypatch.setattr(runs.gr, "Info", infos.append)
    press_at = {"alice": 5}

    def count(module, inputs):
        calls.append(1)
        if len(calls) == press_at.get(LocalContext.request.get(None).session_hash):
            runs.request_stop(LocalContext.request.get(None), [1])  # the page's Stop, pressed mid-chain

    hook = network.register_forward_pre_hook(count)
    args = (str(toy_ckpt), "ddpm_small", 0, 0, 30, 0, 10, "uniform", False, False, [str(toy_ckpt)])

    def run_as(page, button=1):
        calls.clear()
        token = LocalContext.request.set(types.SimpleNamespace(session_hash=page))
        generate = runs.time_limited(reverse_tab.generate, outputs=4, button=button)
        try:
            return generate(types.SimpleNamespace(session_hash=page), *args, progress=lambda *a, **k: None)
        finally:
            LocalContext.request.reset(token)

    try:
        result = run_as("alice")
        assert result == tuple(gr.skip() for _ in range(4)) and len(calls) == 5  # of 100 steps
        assert infos == [runs.STOPPED] and runs.STOPPED == "Stopped, as you asked: what was shown before stays."
        press_at.clear()
        assert len(run_as("alice")[0]) > 100 and len(calls) == 100  # the Stop is spent: the next job runs whole
        pressed = runs.request_stop(types.SimpleNamespace(session_hash="bob"), [1])  # Bob's, while his job waits
        assert pressed.value == runs.STOPPING and pressed.interactive is False  # until his jobs have ended
        assert run_as("alice")[2] is not None and len(calls) == 100  # Alice's job runs
        assert run_as("bob") == tuple(gr.skip() for _ in range(4)) and calls == []  # his stops before a step
        assert runs.request_stop(types.SimpleNamespace(session_hash="bob"), []).visible is False  # none: nothing
        assert len(run_as("bob")[0]) > 100 and len(calls) == 100
        runs.request_stop(types.SimpleNamespace(session_hash="bob"), [1])  # came as his last job ended
        reverse_tab.job_ended(types.SimpleNamespace(session_hash="bob"), [1], 1)  # none left: the Stop is dropped
        assert len(run_as("bob")[0]) > 100 and len(calls) == 100
        # two of his jobs wait (Generate and a panel's button); one Stop stops both, not a job clicked after it
        runs.request_stop(types.SimpleNamespace(session_hash="bob"), [1, 2])
        assert run_as("bob", 1) == run_as("bob", 2) == tuple(gr.skip() for _ in range(4)) and calls == []
        assert len(run_as("bob", 1)[0]) > 100 and len(calls) == 100
    finally:
        hook.remove()


def test_stop_pressed_while_the_frames_are_drawn_keeps_the_movie_on_view(toy_ckpt, monkeypatch):
    """The chain is sampled, its frames are being drawn: a Stop then had let the new movie come all the same, with no
    word. It stops before the new movie's files replace those of the one on view."""
    from gradio.context import LocalContext

    infos, published = [], []
    monkeypatch.setattr(runs.gr, "Info", infos.append)
    render = reverse_tab.render

    def pressed_while_drawing(chain):
        drawn = render(chain)
        runs.request_stop(REQ, [1])
        return drawn

    monkeypatch.setattr(reverse_tab, "render", pressed_while_drawing)
    monkeypatch.setattr(reverse_tab.movie_files, "publish", lambda *a, **k: published.append(1))
    generate = runs.time_limited(reverse_tab.generate, outputs=4, button=1)
    token = LocalContext.request.set(REQ)
    try:
        result = generate(REQ, str(toy_ckpt), "ddim", 0, 10, 30, 0, 10, "uniform", False, False, [str(toy_ckpt)],
                          progress=lambda *a, **k: None)
    finally:
        LocalContext.request.reset(token)
    assert result == tuple(gr.skip() for _ in range(4)) and infos == [runs.STOPPED] and published == []


def test_a_stopped_panel_that_words_the_engines_errors_anew_keeps_what_it_showed(toy_ckpt, monkeypatch):
    """The noise map's panels turn a ValueError of the engine into their own message: a Stop had come out of them as
    an "Error" toast, and their failure handlers had run. Stopped, they too keep what they showed and say why."""
    from gradio.context import LocalContext

    from app import noise_map

    network = checkpoint_access.load(str(toy_ckpt), [str(toy_ckpt)]).model
    infos = []
    monkeypatch.setattr(runs.gr, "Info", infos.append)
    hook = network.register_forward_pre_hook(lambda module, inputs: runs.request_stop(REQ, [1]) and None)
    encode = runs.time_limited(noise_map.encode_examples, outputs=2, button=1)
    token = LocalContext.request.set(REQ)
    try:
        result = encode(str(toy_ckpt), 5, "uniform", 20, 0, False, [str(toy_ckpt)], progress=lambda *a, **k: None)
    finally:
        LocalContext.request.reset(token)
        hook.remove()
    assert result == (gr.skip(), gr.skip()) and infos == [runs.STOPPED]
    assert not issubclass(runs.JobStopped, (ValueError, gr.Error))


def test_a_stopped_job_leaves_the_stats_before_it_unlabelled():
    """A stopped Generate keeps the stats of the chain before it: they are not said to be of the model it was asked
    for (the chain on view was of another)."""
    moons, swiss = (str(checkpoint_access.REPO_CHECKPOINTS / name) for name in ("moons", "swiss_roll_linear"))
    kept = reverse_tab.played_since(swiss, moons, "**swiss_roll_linear** · DDPM … SW ratio 1.02")
    assert isinstance(kept, type(gr.skip()))


def test_generate_takes_fewer_samples_of_larger_pictures(tmp_path):
    """An uploaded U-Net at 256 × 256 × 3 takes about 150 MB a sample: 64 samples had asked for 10 GB at once on a
    shared server. A Generate holds at most 64 pictures of 32 × 32 × 3 (MNIST keeps its 64)."""
    def bound(shape):
        return reverse_tab.samples_bound(DataInfo("pictures", "image", shape))

    assert bound((1, 28, 28)) == bound((3, 32, 32)) == ("Samples", 1, 64)
    assert reverse_tab.samples_bound(DataInfo("moons", "2d", (2,))) == ("Samples", 1, 5000)
    assert bound((3, 64, 64)) == ("Samples of 64 × 64 pictures", 1, 16)
    assert bound((3, 256, 256)) == ("Samples of 256 × 256 pictures", 1, 1)
    assert reverse_tab.picture_cap(DataInfo("p", "image", (3, 256, 256)), 16) == 1  # the panels' caps alike
    assert reverse_tab.picture_cap(DataInfo("p", "image", (1, 28, 28)), 16) == 16
    model = UNet(unet_config("tiny", 128, 3))
    path = save_checkpoint(tmp_path / "big", model, make_schedule("cosine", 20),
                           DataInfo("pictures", "image", (3, 128, 128)))
    with pytest.raises(gr.Error, match=r"Samples of 128 × 128 pictures must be a whole number from 1 to 4, got 5"):
        reverse_tab.generate(REQ, str(path), "ddim", 0, 5, 5, 0, 10, "uniform", False, False, [str(path)])
    info, _, _, n, *_ = reverse_tab.checkpoint_selected(str(path), [str(path)], kind_shown="2d")
    assert n == 4 and "4 samples, quick on a CPU" in info  # the page's default, 16, would have been refused
