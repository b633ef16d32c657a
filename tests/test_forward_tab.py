"""Forward tab handlers, called as plain functions (no browser)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from unittest import mock

import gradio as gr
import numpy as np
import PIL.Image
import plotly.colors
import plotly.graph_objects as go
import plotly.io as pio
import pytest
import torch

from app import (
    controls, data_choice, figures, forward_chain, forward_tab, images, plot_page, point_pictures, schedule_figures,
    schedules_tab,
)
from app.own_points import OWN_POINTS, OWN_POINTS_ELSEWHERE, OwnPoints
from core.data import DataInfo, make_toy2d
from core.image_data import ImageDataset
from core.schedules import ALPHA_BAR_FLOOR, make_schedule
from tests.conftest import DRAWN_RTOL, picture_rgba

PARAMS = controls.default_param_values()


def _params(**linear):
    """All parameter values, with the linear schedule's overridden."""
    values = list(PARAMS)
    keys = ("beta_start", "beta_end", "scale_with_T")
    for key, value in linear.items():
        values[keys.index(key)] = value
    return values


def _state(data="mnist", schedule="linear", T=1000, seed=0, upload=None, params=None, previous=None, own=None):
    return forward_tab.prepare(previous, data, upload, own, schedule, T, seed, *(params or PARAMS))


def _fig(value):
    """Figures come back as the JSON Gradio sends; build a validated go.Figure from them (markdown passes through)."""
    return value if isinstance(value, str) else figures.as_figure(value)


def test_t0_is_x0_pixel_exact_for_digits():
    state = _state()
    shown = forward_tab.to_display(state, forward_tab.x_t(state, 0))
    expected = images.tile(np.load(images.MNIST_SAMPLE)[: data_choice.N_IMAGES], forward_tab.GRID_COLUMNS)
    assert shown.dtype == np.uint8
    np.testing.assert_array_equal(shown, expected)


def test_t0_is_x0_pixel_exact_for_upload(tmp_path):
    path = tmp_path / "pic.png"
    rng = np.random.default_rng(0)
    PIL.Image.fromarray(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)).save(path)
    state = _state(data="upload", upload=str(path))
    shown = forward_tab.to_display(state, forward_tab.x_t(state, 0))
    np.testing.assert_array_equal(shown, images.load_upload(str(path)))


def test_data_sets_in_the_data_folder_are_offered_and_shown(local_data):
    choices, note = forward_tab.data_choices()
    values = [value for _, value in choices]
    assert "fashion_mnist" in values and "cifar10" in values and note is None
    assert ("Fashion-MNIST (8 × 8 grid)", "fashion_mnist") in choices
    state = _state(data="fashion_mnist")
    assert state.x0.shape == (data_choice.N_IMAGES, 1, 28, 28)
    shown = forward_tab.to_display(state, forward_tab.x_t(state, 0))
    expected = images.tile(local_data["fashion_mnist"][: data_choice.N_IMAGES], forward_tab.GRID_COLUMNS)
    np.testing.assert_array_equal(shown, expected)  # t = 0: the first 64 images, pixel-exact
    with pytest.raises(gr.Error, match="CIFAR-10 could not be loaded"):  # its files are there but unreadable
        _state(data="cifar10")


def test_missing_data_sets_are_not_offered_and_the_note_says_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setenv("DDPM_DATA_DIR", str(tmp_path))
    choices, note = forward_tab.data_choices()
    values = [value for _, value in choices]
    assert "fashion_mnist" not in values and "cifar10" not in values and "mnist" in values and "upload" in values
    assert note.startswith("Fashion-MNIST and CIFAR-10 appear here") and "DDPM_DATA_DIR" in note
    with pytest.raises(gr.Error, match=r"Fashion-MNIST could not be loaded: Fashion-MNIST not found in .*FashionMNIST"):
        _state(data="fashion_mnist")


def test_colour_data_sets_show_in_colour(tmp_path, monkeypatch):
    pixels = np.random.default_rng(0).integers(0, 256, (64, 3, 32, 32), dtype=np.uint8)
    cifar = ImageDataset(name="cifar10", images=torch.from_numpy(pixels), labels=None, source="made up",
                         class_names=None)
    monkeypatch.setattr(images, "load_image_dataset", lambda *args, **kwargs: cifar)
    monkeypatch.setenv("DDPM_DATA_DIR", str(tmp_path))  # a data folder of its own: nothing cached for it
    state = _state(data="cifar10")
    shown = forward_tab.to_display(state, forward_tab.x_t(state, 0))
    assert shown.shape == (8 * 34 + 2, 8 * 34 + 2, 3)
    np.testing.assert_array_equal(shown[2:34, 2:34], pixels[0].transpose(1, 2, 0))


def test_scrub_changes_with_t_and_noise_is_fixed():
    state = _state()
    fig0, md0, hist0, curve0 = map(_fig, forward_tab.scrub(state, 0))
    fig5, md5, _, curve5 = map(_fig, forward_tab.scrub(state, 500))
    assert figures.picture_source(fig0) != figures.picture_source(fig5)
    # a layout image, drawn at once: an image trace flashed blank while its picture loaded on Gradio's new plot
    assert not fig0.data and fig0.layout.images[0].xref == "x" and fig0.layout.images[0].sizing == "stretch"
    assert "image-rendering: pixelated" in plot_page.PICTURE_CSS
    assert md0 != md5 and "x_{500}" in md5
    assert curve5.data[1].x[0] == 500
    # the picture and the histogram name their t: a screenshot of either alone said only "x_t"
    assert [a.text for a in fig5.layout.annotations] == ["x_t · t = 500"] and fig5.layout.annotations[0].yanchor == "bottom"
    assert hist0.data[0].name == "x_t at t = 0"
    points = _fig(forward_tab.scrub(_state(data="moons"), 40)[0])
    assert [a.text for a in points.layout.annotations] == ["x_t · t = 40", "grey: x₀, the data"]
    # the same t twice: the same picture (ε held fixed, no re-draw)
    assert forward_tab.scrub(state, 300)[0].plot == forward_tab.scrub(state, 300)[0].plot
    # a schedule change keeps ε (same seed) …
    cosine = _state(schedule="cosine", previous=state)
    assert cosine.noise is state.noise and cosine.x0 is state.x0
    # … and a new seed draws new noise
    other = _state(seed=1, previous=state)
    assert not np.array_equal(forward_tab.x_t(other, 300), forward_tab.x_t(state, 300))
    np.testing.assert_array_equal(forward_tab.x_t(other, 0), forward_tab.x_t(state, 0))
    # what only an API call can send: a gr.Error, not a traceback
    for bad_t in (None, float("nan"), "later"):
        with pytest.raises(gr.Error, match="t must be a whole number|t is empty"):
            forward_tab.scrub(state, bad_t)
    with pytest.raises(gr.Error, match="The seed must be a whole number from 0"):
        controls.check_seed("abc")
    assert controls.check_seed(2**31 - 1) == 2**31 - 1
    with pytest.raises(gr.Error, match="The seed must be a whole number from 0 to 2147483647"):
        controls.check_seed(2**32)  # torch seeds from the low 32 bits: seed 0's noise
    # the t box is read as typed (the event skips the slider's own check): an empty box or −3 named in words
    for bad_t in ("", -3):
        with pytest.raises(gr.Error, match=r"\bt (is empty|must be a whole number ≥ 0, got -3)"):
            forward_tab.scrub(state, bad_t)
    # powers of ten in the formula as such: KaTeX would read 4.9e-05 as 4.9·e − 5
    end = forward_tab.scrub(_state(schedule="cosine"), 1000)[1]
    assert re.search(r"x_\{1000\} = \d\.\d+\\times 10\^\{-5\}\\cdot x_0", end) and "e-05" not in end.split("|")[0]
    assert re.search(r"\| √ᾱ_t \(weight of x₀\) \| \d\.\d+e-05 \|", end)  # the table's cells are plain text


def test_x_t_is_q_sample():
    state = _state(data="moons")
    expected = state.schedule.q_sample(state.x0, 250, state.noise).numpy()
    np.testing.assert_allclose(forward_tab.x_t(state, 250), expected, rtol=0, atol=1e-6)
    fig = _fig(forward_tab.scrub(state, 250)[0])
    assert tuple(fig.layout.xaxis.range) == figures.POINT_RANGE == tuple(fig.layout.yaxis.range)
    # the points are drawn as one picture over the axes (a scatter trace of 2,000 points is slow to draw at each step),
    # x₀ as one in grey beneath the gridlines: where each point set out from (a blob at t = 100 had nothing to
    # compare with); plotly draws only one picture above an axes' gridlines
    beneath, above = fig.layout.images
    assert not fig.data and (beneath.layer, above.layer) == ("below", "above")
    x_t_picture = go.Figure(layout=dict(images=[above]))
    np.testing.assert_array_equal(picture_rgba(x_t_picture)[..., 3],
                                  point_pictures.points_alpha(expected.astype(np.float64)))
    rgba = picture_rgba(fig)
    np.testing.assert_array_equal(rgba[..., 3], point_pictures.points_alpha(state.x0.numpy().astype(np.float64)))
    assert (rgba[rgba[..., 3] > 0][:, :3] == plotly.colors.hex_to_rgb(figures.REFERENCE_COLOR)).all()
    assert any(a.text == "grey: x₀, the data" for a in fig.layout.annotations)
    assert len(_fig(forward_tab.scrub(state, 0)[0]).layout.images) == 1  # at t = 0, x_t is x₀


def test_numbers_match_schedule():
    schedule = make_schedule("cosine", 500)
    numbers = forward_tab.moment_numbers(schedule, 123)
    ab = float(schedule.alpha_bars[123])
    assert numbers["alpha_bar"] == pytest.approx(ab)
    assert numbers["sqrt_alpha_bar"] == pytest.approx(ab**0.5)
    assert numbers["sqrt_one_minus_alpha_bar"] == pytest.approx((1 - ab) ** 0.5)
    assert numbers["snr"] == pytest.approx(float(schedule.snr[123]))
    assert numbers["log_snr"] == pytest.approx(float(schedule.log_snr[123]))
    md = forward_tab.formula_markdown(numbers, schedule.T)
    assert f"{ab:.4f}" in md and f"{ab ** 0.5:.4f}" in md
    assert "∞" in forward_tab.formula_markdown(forward_tab.moment_numbers(schedule, 0), schedule.T)


def test_rebuild_follows_T_and_warns_when_chain_does_not_reach_noise():
    state, slider, summary, *views = forward_tab.rebuild(None, 900, "swiss_roll", None, None, "linear", 300, 0, *PARAMS)
    assert slider.maximum == 300 and slider.value == 300
    assert "does not reach noise" not in summary
    _, _, summary, *_ = forward_tab.rebuild(state, 10, "swiss_roll", None, None, "linear", 1000, 0, *_params(beta_end=0.002))
    assert "does not reach noise" in summary
    # T = 50 with β left unscaled: the way out named first is the box a student had not seen, under Parameters
    _, _, summary, *_ = forward_tab.rebuild(state, 10, "swiss_roll", None, None, "linear", 50, 0, *_params(scale_with_T=False))
    assert "does not reach noise" in summary and "tick “scale β by 1000/T” (under Parameters), or increase T" in summary
    # at T = 10 the box would scale β_end to 2, which is refused: it is not offered as the way out
    _, _, summary, *_ = forward_tab.rebuild(state, 5, "swiss_roll", None, None, "linear", 10, 0, *_params(scale_with_T=False))
    assert "does not reach noise" in summary and "increase T or β_end" in summary and "tick" not in summary


@pytest.mark.parametrize("typed", ["", None, -3, 1.5, "ten"])
def test_rebuild_with_no_t_in_the_box_shows_t_0_and_puts_it_in_the_box(typed):
    state, slider, _, _, formula, *_ = forward_tab.rebuild(None, typed, "swiss_roll", None, None, "cosine", 300, 0, *PARAMS)
    assert slider.constructor_args == {"maximum": 300, "value": 0} and "0 of 300" in formula
    _, slider, _, _, formula, *_ = forward_tab.rebuild(state, 40, "swiss_roll", None, None, "cosine", 300, 0, *PARAMS)
    assert slider.constructor_args == {"maximum": 300} and "40 of 300" in formula  # a t in range is left as it is


def test_a_rebuild_from_the_inputs_on_view_sends_nothing(tmp_path):
    """Enter in T and then a click elsewhere had rebuilt the views twice (the same upload again, too); each input
    that differs still rebuilds."""
    path = tmp_path / "pic.png"
    PIL.Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(path)
    inputs = ("upload", str(path), None, "cosine", 300, 0, *PARAMS)
    state = forward_tab.rebuild_if_changed(None, 40, *inputs)[0]
    assert forward_tab.rebuild_if_changed(state, 40, *inputs) == (gr.skip(),) * 8
    other = tmp_path / "other.png"
    PIL.Image.fromarray(np.full((40, 40, 3), 255, np.uint8)).save(other)
    for changed in (("upload", str(other), *inputs[2:]), (*inputs[:4], 301, *inputs[5:]), (*inputs[:5], 1, *PARAMS)):
        rebuilt = forward_tab.rebuild_if_changed(state, 40, *changed)
        assert isinstance(rebuilt[0], forward_tab.ForwardState) and rebuilt[0].controls == changed[:1] + changed[3:]


def test_t_typed_past_T_goes_back_to_T_in_its_box():
    state = _state(data="swiss_roll", T=300)
    _, formula, *_ = forward_tab.scrub(state, 2000)
    assert "300 of 300" in formula  # the views show t = T …
    assert forward_tab.t_in_range(state, 2000) == 300  # … and so does the box on letting go
    for in_range in (0, 300, "120"):
        assert isinstance(forward_tab.t_in_range(state, in_range), type(gr.skip()))
    for wrong in ("ten", -3, "", None):  # left to `scrub`'s message, or to `t_on_view_again`
        assert isinstance(forward_tab.t_in_range(state, wrong), type(gr.skip()))


def test_summary_box_tone_follows_whether_the_chain_reaches_noise():
    """A green box (✓) when ᾱ_T ≤ 1e-3, an orange one (⚠) otherwise; both are `controls.notice_html` boxes, in
    the theme's colours."""
    reaches = forward_tab.schedule_summary_html(make_schedule("linear", 1000))
    short = forward_tab.schedule_summary_html(make_schedule("linear", 50, scale_with_T=False))
    assert reaches.startswith('<div class="notice notice-ok"') and "✓" in reaches
    assert short.startswith('<div class="notice notice-warn"') and "⚠" in short
    assert ".dark .notice-warn {background: #33210a" in controls.NOTICE_CSS  # dark boxes on the dark theme
    with pytest.raises(ValueError, match="unknown tone"):
        controls.notice_html("x", "info")


@pytest.mark.parametrize("T", [1, 0, 20_000, None, 2.5])
def test_bad_T_raises_gr_error(T):
    with pytest.raises(gr.Error):
        _state(T=T)


def test_bad_params_raise_gr_error_with_core_message():
    with pytest.raises(gr.Error, match=r"Linear schedule: β_start \(0.05\) must not exceed β_end \(0.02\)"):
        _state(params=_params(beta_start=0.05))  # above beta_end
    with pytest.raises(gr.Error, match="empty"):
        _state(params=_params(beta_end=None))
    with pytest.raises(gr.Error):
        _state(schedule="nonsense")
    with pytest.raises(gr.Error):
        _state(seed=-1)


def test_an_upload_draws_once(tmp_path):
    """An upload sets the data choice and draws the picture in one response: the choice's change that follows finds
    it drawn. The upload's drawing and the change's had been two events, which ran at once from the state before."""
    PIL.Image.new("RGB", (40, 30), (200, 30, 30)).save(tmp_path / "red.png")
    path = str(tmp_path / "red.png")
    shown = _state()
    choice, state, *rest = forward_tab.upload_and_rebuild(shown, 300, "mnist", path, None, "linear", 1000, 0, *PARAMS)
    assert choice.value == forward_tab.UPLOAD and state.kind == "images" and state.x0.shape[0] == 1
    assert rest[-1] == 300  # the t shown
    # the choice's change: nothing left to draw
    assert forward_tab.rebuild_if_changed(state, 300, forward_tab.UPLOAD, path, None, "linear", 1000, 0,
                                          *PARAMS) == (gr.skip(),) * 8
    assert forward_tab.upload_and_rebuild(shown, 300, "mnist", None, None, "linear", 1000, 0, *PARAMS) == \
        (gr.skip(),) * 9  # the box emptied
    # a refusal empties the box when the file is at fault, and keeps the picture when another input is
    (tmp_path / "notes.png").write_text("not a picture")
    assert images.box_after_refusal(str(tmp_path / "notes.png")) is None and images.box_after_refusal(path) == gr.skip()
    with gr.Blocks() as demo:
        forward_tab.build(gr.State(None), demo)
    fns = {getattr(d.fn, "__name__", ""): d for d in demo.fns.values()}
    upload = fns["upload_and_rebuild"]
    assert [type(b) for b in upload.outputs[:2]] == [gr.Dropdown, gr.State]  # the choice with the state it is drawn in
    data = upload.outputs[0]
    # × sets the choice back to MNIST, and its change draws it
    removal = next(d for d in demo.fns.values() if any(event == "clear" for _, event in d.targets))
    assert removal.outputs == [data] and (data._id, "change") in fns["rebuild_if_changed"].targets


def test_bad_uploads_raise_gr_error(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    with pytest.raises(gr.Error, match="not a picture"):
        _state(data="upload", upload=str(text))
    big = tmp_path / "big.png"
    PIL.Image.new("1", (5000, 4100)).save(big)  # 20.5 MP
    with pytest.raises(gr.Error, match=r"too large \(5000×4100 = 20.5 MP\); use one under 20 MP"):
        _state(data="upload", upload=str(big))
    gif = tmp_path / "anim.gif"
    frames = [PIL.Image.new("RGB", (16, 16), c) for c in ("red", "blue")]
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=100, loop=0)
    with pytest.raises(gr.Error, match="Animated"):
        _state(data="upload", upload=str(gif))
    with pytest.raises(gr.Error, match="Upload a picture"):
        _state(data="upload", upload=None)
    # a file that is no picture leaves the data choice (and so the views) as they were (Forward and Schedules tabs)
    with pytest.raises(gr.Error, match="notes.png is not a picture"):
        images.upload_selected(str(text))
    PIL.Image.new("RGB", (16, 16), "red").save(tmp_path / "red.png")
    assert images.upload_selected(str(tmp_path / "red.png")).value == forward_tab.UPLOAD == schedules_tab.UPLOAD
    assert images.upload_selected(None) == gr.skip()


def test_upload_modes_converted(tmp_path):
    rgba = np.zeros((32, 32, 4), np.uint8)  # fully transparent black → white
    PIL.Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    assert (images.load_upload(tmp_path / "a.png", 16) == 255).all()
    deep = np.full((32, 32), 65535, np.uint16)  # 16-bit white → 255, not clipped garbage
    deep[:16] = 0
    PIL.Image.fromarray(deep).save(tmp_path / "d.png")
    pixels = images.load_upload(tmp_path / "d.png", 32)
    assert pixels.shape == (32, 32, 3) and pixels[0].max() == 0 and pixels[-1].min() == 255


def test_uploads_of_cameras_phones_and_colour_managed_pictures(tmp_path):
    """A still photo in a file of several frames (a camera's JPEG with its preview or a phone's HDR gain map, read by
    Pillow as MPO; a TIFF's pages) had been refused as animated; a 24 MP camera JPEG as too large, though it decodes
    at 1/8 scale; a grey PNG's transparent colour had come out black; a Display P3 photo washed out, in RGB or as a
    palette; a HEIC photo had no useful message."""
    for name, kind in (("camera.jpg", "MPO"), ("pages.tif", "TIFF")):
        red, green = PIL.Image.new("RGB", (64, 48), (220, 30, 30)), PIL.Image.new("RGB", (32, 24), (30, 200, 30))
        red.save(tmp_path / name, format=kind, save_all=True, append_images=[green])
    for name in ("camera.jpg", "pages.tif"):
        assert PIL.Image.open(tmp_path / name).n_frames == 2
        assert abs(images.load_upload(tmp_path / name, 16).astype(int) - [220, 30, 30]).max() <= 3, name
    PIL.Image.new("RGB", (6000, 4000), (90, 90, 90)).save(tmp_path / "dslr.jpg", quality=80)
    assert images.load_upload(tmp_path / "dslr.jpg", 16).shape == (16, 16, 3)
    logo = PIL.Image.new("L", (32, 32), 1)  # grey 1 marked transparent, a black square in the middle
    logo.paste(0, (8, 8, 24, 24))
    logo.save(tmp_path / "logo.png", transparency=1)
    pixels = images.load_upload(tmp_path / "logo.png", 32)
    assert pixels[0, 0].tolist() == [255, 255, 255] and pixels[16, 16].tolist() == [0, 0, 0]
    p3 = (Path(__file__).parent / "data" / "display_p3.icc").read_bytes()  # a matrix profile of P3's primaries
    PIL.Image.new("RGB", (32, 32), (230, 60, 40)).save(tmp_path / "p3.png", icc_profile=p3)
    PIL.Image.new("RGB", (32, 32), (230, 60, 40)).convert("P").save(tmp_path / "p3-palette.png", icc_profile=p3)
    for name in ("p3.png", "p3-palette.png"):
        r, g, b = images.load_upload(tmp_path / name, 16)[8, 8].tolist()
        assert r > 245 and g < 35 and b < 10, (name, r, g, b)  # P3's red lies beyond sRGB's: at its most saturated
    (tmp_path / "IMG_0001.HEIC").write_bytes(b"\0\0\0\x18ftypheic" + bytes(100))
    with pytest.raises(gr.Error, match="IMG_0001.HEIC is a HEIC photo, which cannot be read here; export it as JPEG"):
        images.load_upload(tmp_path / "IMG_0001.HEIC")
    (tmp_path / "scan.ppm").write_bytes(b"P6\n3\x890 2\n255\n" + bytes(100))  # Pillow: ValueError
    with pytest.raises(gr.Error, match="scan.ppm is not a picture that can be read"):
        images.load_upload(tmp_path / "scan.ppm")


def test_build_wiring():
    with gr.Blocks() as demo:
        forward_tab.build(gr.State(None), demo)


def test_states_are_per_session():
    """Two sessions: one's new noise does not touch the other's state."""
    a = _state()
    b = forward_tab.prepare(a, "mnist", None, None, "linear", 1000, 7, *PARAMS)
    assert a.seed == 0 and b.seed == 7 and not torch.equal(a.noise, b.noise)


@pytest.mark.parametrize("data", ["mnist", "swiss_roll"])
def test_every_view_leaves_the_state_as_it_was_so_sessions_share_the_first_one(data):
    """Gradio gives each session a deep copy of the page's first state (0.43 MB a visitor): the state is shared
    instead, which holds only because no view changes it, its tensors included."""
    from app import forward_animation, forward_chain

    state = _state(data)
    assert copy.deepcopy(state) is state
    x0, noise = state.x0.clone(), state.noise.clone()
    for t in (0, 1, 250, 1000):
        forward_tab.scrub(state, t)
        forward_tab.targets_view(state, t)
        forward_chain.chain_view(state, t)
    forward_animation.render_frames(state, [0, 500, 1000])
    assert torch.equal(state.x0, x0) and torch.equal(state.noise, noise)


@pytest.mark.parametrize(("t", "position"), [(0, "top right"), (500, "top right"), (1000, "top left")])
def test_alpha_bar_marker_label_stays_inside_the_axes(t: int, position: str) -> None:
    """The label above the marker, clear of the falling curve (at t = 0, where ᾱ = 1, in the room above 1); near
    t = T, to its left."""
    fig = figures.as_figure(schedule_figures.alpha_bar_figure(make_schedule("linear", 1000), t))
    marker = fig.data[1]
    assert marker.x[0] == t and marker.text[0] == f"t = {t}"
    assert marker.textposition == position and fig.layout.yaxis.range[1] >= 1.15


def test_the_alpha_bar_line_is_light_to_send_with_each_move_of_t() -> None:
    """Each move of t sends the ᾱ_t figure again: at T = 10,000 its 10,001 points were 253 kB of every scrub. The line
    goes through 2 t of each of its runs of t (ᾱ_t falls: their first and last), from 0 to T, at their exact ᾱ_t; the
    marker stays at the exact t."""
    long = make_schedule("linear", 10_000)
    plot = schedule_figures.alpha_bar_figure(long, 4_321)
    line, marker = figures.as_figure(plot).data
    ts = np.asarray(line.x)
    assert len(ts) <= 2 * schedule_figures.LINE_RUNS and ts[0] == 0 and ts[-1] == 10_000
    assert np.array_equal(np.asarray(line.y), figures.to_significant_digits(long.alpha_bars.numpy()[ts]))
    assert marker.x[0] == 4_321 and marker.y[0] == float(long.alpha_bars[4_321])
    assert len(plot.model_dump_json()) < 30_000
    short = figures.as_figure(schedule_figures.alpha_bar_figure(make_schedule("linear", 300), 7)).data[0]
    assert list(short.x) == list(range(301))  # every t of a short chain


def test_the_x_t_picture_is_sent_as_its_base64_not_twice_its_size() -> None:
    """plotly.io.to_json writes each "/" as "\\u002f", and an MNIST grid's base64 is a fifth "/": each move of t sent
    the 80 kB picture as 186 kB. The figure's JSON is plotly's, unescaped: the same figure, the picture's size."""
    plot = forward_tab.scrub(_state(), 800)[0]
    source = figures.picture_source(figures.as_figure(plot))
    assert source.count("/") > len(source) // 10  # the case that was costly
    assert "\\u002f" not in plot.plot and len(plot.model_dump_json()) < len(source) + 2_000
    with mock.patch.object(figures, "figure_json", lambda figure: pio.to_json(figure, validate=False)):
        escaped = forward_tab.scrub(_state(), 800)[0]  # the same figure, as plotly.io wrote it
    assert "\\u002f" in escaped.plot and json.loads(plot.plot) == json.loads(escaped.plot)


def test_figure_json_writes_what_plotly_writes() -> None:
    """Arrays orjson cannot write itself (not contiguous, a tensor) go through plotly's encoder; NaN is null; text
    with markup characters comes back as it was."""
    strided = np.arange(12.0).reshape(3, 4)[:, ::2]
    figure = {"data": [{"x": strided, "y": torch.tensor([1.5, float("nan")]), "text": ["</script> a/b & 'c'"]}],
              "layout": {"height": np.int64(300)}}
    written = json.loads(figures.figure_json(figure))
    assert written == json.loads(pio.to_json(figure, validate=False))
    assert written["data"][0]["x"] == [[0.0, 2.0], [4.0, 6.0], [8.0, 10.0]] and written["data"][0]["y"] == [1.5, None]
    assert written["data"][0]["text"] == ["</script> a/b & 'c'"] and written["layout"]["height"] == 300


def test_a_figures_numbers_go_out_to_five_significant_digits_and_whole_units_stay_exact() -> None:
    """Float arrays had gone out at float64's 17 digits: 2–3× the bytes of what any plot can show."""
    values = np.array([0.0, -0.0, np.nan, np.inf, 3.14159265, -2.718281828, 1.23456789e-12, 0.999999, 123456.7,
                       100_001.0, 12_345.0])
    assert figures.to_significant_digits(values).tolist()[3:] == [
        np.inf, 3.1416, -2.7183, 1.2346e-12, 1.0, 123457.0, 100_001.0, 12_345.0]
    assert np.isnan(figures.to_significant_digits(values)[2])
    tiny = np.array([ALPHA_BAR_FLOOR, 5e-324, 1e-300])  # ᾱ_t at core's floor had gone out as null (an overflow)
    assert figures.to_significant_digits(tiny).tolist() == tiny.tolist()
    assert figures.figure_json({"y": values[:5]}) == '{"y":[0.0,-0.0,null,null,3.1416]}'  # NaN and inf as plotly
    state = _state(data="swiss_roll")
    sent = forward_tab.scrub(state, 300)[2].plot  # the histogram
    bars, normal = json.loads(sent)["data"]
    assert all(float(f"{v:.5g}") == v for v in bars["y"] + normal["x"] + normal["y"]) and normal["y"][200] == 0.39894


def test_own_points_from_the_train_tab_can_be_scrubbed_and_follow_each_new_drawing():
    with pytest.raises(gr.Error, match="draw a shape or upload a CSV in the Train tab"):
        _state(data=OWN_POINTS)
    first = OwnPoints(make_toy2d("moons", 3000, seed=1), DataInfo("drawing", "2d", (2,), source="drawn in the Train tab"))
    state = _state(data=OWN_POINTS, own=first)
    assert state.kind == "points" and torch.equal(state.x0, first.points[:forward_tab.N_POINTS])
    fig = _fig(forward_tab.scrub(state, 0)[0])  # t = 0: x₀ itself
    x0 = first.points[:forward_tab.N_POINTS].numpy().astype(np.float64)
    np.testing.assert_array_equal(picture_rgba(fig)[..., 3], point_pictures.points_alpha(x0))
    redrawn = OwnPoints(make_toy2d("circles", 3000, seed=1), first.info)  # the next drawing, the same name
    again = _state(data=OWN_POINTS, own=redrawn, previous=state)
    assert torch.equal(again.x0, redrawn.points[:forward_tab.N_POINTS]) and torch.equal(again.noise, state.noise)
    inputs = (None, "linear", 1000, 0, *PARAMS)  # upload, schedule, T, seed, parameters
    outputs = forward_tab.own_points_changed(state, 10, OWN_POINTS, None, redrawn, *inputs[1:])
    assert torch.equal(outputs[0].x0, again.x0) and len(outputs) == 8
    assert forward_tab.own_points_changed(state, 10, "mnist", None, redrawn, *inputs[1:]) == (gr.skip(),) * 8
    assert (OWN_POINTS_ELSEWHERE, OWN_POINTS) in forward_tab.data_choices()[0]


@pytest.mark.parametrize("data", ["mnist", "swiss_roll"])
def test_the_targets_view_shows_v_turning_from_eps_into_minus_x0(data):
    """v = √ᾱ_t·ε − √(1 − ᾱ_t)·x₀ (core.prediction): ε at t = 0, nearly −x₀ at t = T; x_t is the tab's own x_t."""
    state = _state(data=data)
    start, end = forward_tab.targets(state, 0), forward_tab.targets(state, 1000)
    assert torch.equal(start["v"], state.noise) and torch.equal(start["x_t"], state.x0)
    alpha_bar = float(state.schedule.alpha_bars[1000])
    assert torch.allclose(end["v"], alpha_bar**0.5 * state.noise - (1 - alpha_bar) ** 0.5 * state.x0, atol=1e-6)
    assert torch.allclose(end["v"], -state.x0, atol=0.03)
    middle = forward_tab.targets(state, 400)
    assert np.allclose(middle["x_t"].numpy(), forward_tab.x_t(state, 400), atol=1e-6)
    figure, text = forward_tab.targets_view(state, 400)
    titles = [a.text for a in _fig(figure).layout.annotations]
    expected = forward_tab.TARGET_COLUMNS if data == "mnist" else ["x_t (the network's input)", "ε", "x₀", "v"]
    assert all(title in titles for title in expected), titles
    a, s = float(state.schedule.alpha_bars[400]) ** 0.5, (1 - float(state.schedule.alpha_bars[400])) ** 0.5
    assert f"**v = {a:.4g}·ε − {s:.4g}·x₀**" in text
    assert forward_tab.if_open(forward_tab.targets_view, 2)(False, state, 400) == (gr.skip(), gr.skip())
    with pytest.raises(gr.Error, match="Nothing to show yet"):
        forward_tab.targets_view(None, 3)


def test_a_change_that_cannot_be_shown_gives_the_inputs_back_to_what_is_on_view():
    """"Uploaded picture" with none uploaded, or the linear schedule at a T = 10 that cosine could have: the rebuild
    fails in words, and the data, schedule, T, seed and parameter inputs go back to what the views show (the dropdown
    named linear over cosine's plots and numbers, and every later change failed on a missing picture)."""
    cosine = _state(schedule="cosine", T=10, seed=7)
    with pytest.raises(gr.Error, match="Upload a picture first"):
        forward_tab.rebuild(cosine, 0, forward_tab.UPLOAD, None, None, "cosine", 10, 7, *PARAMS)
    with pytest.raises(gr.Error, match="β_end must lie in"):
        forward_tab.rebuild(cosine, 0, "mnist", None, None, "linear", 10, 7, *PARAMS)
    assert forward_tab.controls_on_view(cosine) == ("mnist", "cosine", 10, 7, *PARAMS)
    assert forward_tab.controls_on_view(None) == (gr.skip(),) * (4 + len(PARAMS))
    with gr.Blocks() as demo:
        forward_tab.build(gr.State(None), demo)
    reverts = [d for d in demo.fns.values() if getattr(d.fn, "__name__", "") == "controls_on_view"]
    # every rebuild (a change of an input, an upload, own points, New noise) puts the inputs back when it fails
    assert len(reverts) == 4 and all(len(d.outputs) == 4 + len(PARAMS) for d in reverts)


def test_a_t_that_is_not_one_puts_the_slider_back_where_the_views_are():
    """−1, 2.5 or an empty box moved the slider's thumb (to 0, 3, the middle) while the views stayed at the t before:
    the handler says what is wrong and the slider goes back to the t on view, which each scrub and rebuild keeps."""
    state = _state()
    *views, shown = forward_tab.scrub_and_keep_t(state, 300)
    assert shown == 300 and views[1] == forward_tab.scrub(state, 300)[1]
    assert forward_tab.scrub_and_keep_t(state, 5000)[-1] == 1000  # clamped to T
    assert forward_tab.rebuild(state, 300, "mnist", None, None, "cosine", 200, 0, *PARAMS)[-1] == 200
    for bad_t in (-1, 2.5):
        assert not forward_tab.shows_a_t(state, bad_t)
        with pytest.raises(gr.Error, match=r"\bt must be a whole number"):
            forward_tab.scrub_and_keep_t(state, bad_t)
        # the open panels skip it: one toast, the views' own
        assert forward_tab.if_open(forward_tab.targets_view, 2)(True, state, bad_t) == (gr.skip(), gr.skip())
    # a box emptied to type another t: nothing moves until the t is typed (the t on view put back in the box had
    # made the digits typed next follow it: "250250"); left empty, the box shows the t on view again
    for typing in ("", None):
        assert forward_tab.scrub_and_keep_t(state, typing) == (gr.skip(),) * 5
    with gr.Blocks() as demo:
        forward_tab.build(gr.State(None), demo)
    scrubs = [k for k, d in demo.fns.items() if getattr(d.fn, "__name__", "") == "scrub_and_keep_t"]
    backs = [d for d in demo.fns.values() if d.trigger_after in scrubs]
    assert len(scrubs) == 1 and len(backs) == 1 and backs[0].trigger_only_on_failure
    assert backs[0].inputs == demo.fns[scrubs[0]].outputs[-1:] and backs[0].outputs[0].elem_id == "forward-t"


def test_taking_the_picture_out_of_its_box_shows_other_data():
    """× on the upload box while "Uploaded picture" is shown: the data goes to MNIST (the picture stayed on view, and
    every later change failed with "Upload a picture first"); with other data chosen nothing changes."""
    assert images.upload_removed(forward_tab.UPLOAD, forward_tab.DEFAULT_DATA) == "mnist"
    assert images.upload_removed("moons", forward_tab.DEFAULT_DATA) == gr.skip()


def test_the_t_slider_hands_t_over_as_typed_even_after_its_range_changed():
    """Gradio rebuilds a page's copy of the slider from its constructor arguments when T changes its maximum; a t sent
    just before (700, after T became 50) must still reach the handler, which clamps it, not fail Gradio's check."""
    with gr.Blocks():
        slider = controls.typed_slider(0, 1000, value=0, step=1, elem_id="test-typed-t")
        plain = gr.Slider(0, 50, value=0, step=1, label="Frames")
    rebuilt = gr.Slider(**{**slider.constructor_args, "maximum": 50, "render": False})  # as Gradio does on an update
    assert rebuilt.preprocess(700) == 700 and rebuilt.preprocess(-3) == -3 and rebuilt.preprocess(None) is None
    # another slider refuses in words that name it: an empty box or text had given a bare "Error"
    for bad in (700, "", "x" * 100_000):
        with pytest.raises(gr.Error) as refused:
            plain.preprocess(bad)
        assert refused.value.message.startswith("Frames must be a number from 0 to 50, got ")
        assert len(refused.value.message) < 100  # not the whole 100 kB
    assert plain.preprocess(20) == 20
    state = _state(T=50)
    assert forward_tab.scrub(state, 700)[1] == forward_tab.scrub(state, 50)[1]  # the handler clamps t to T


def test_the_histogram_shows_the_density_of_x_t_and_at_t_T_it_is_the_normal_one():
    state = _state()
    hist0, histT = (_fig(forward_tab.scrub(state, t)[2]) for t in (0, state.schedule.T))
    bars, normal = histT.data
    assert bars.type == "bar" and normal.name == "N(0, 1)"
    np.testing.assert_allclose(normal.y, np.exp(-np.asarray(normal.x) ** 2 / 2) / np.sqrt(2 * np.pi), rtol=DRAWN_RTOL)
    width = bars.width
    values = forward_tab.x_t(state, state.schedule.T).reshape(-1)
    expected, _ = np.histogram(values, bins=len(bars.x), range=figures.HIST_RANGE, density=False)
    # a density: area = share shown
    np.testing.assert_allclose(bars.y, expected / (values.size * width), rtol=DRAWN_RTOL)
    assert np.sum(bars.y) * width == pytest.approx(np.mean(np.abs(values) <= 4), rel=DRAWN_RTOL)
    # x_T = √ᾱ_T·x₀ + √(1 − ᾱ_T)·ε with ᾱ_T ≈ 4e-5: 50,176 values of nearly N(0, 1) (bins of 0.1: ±0.03 noise)
    assert np.max(np.abs(np.asarray(bars.y) - np.exp(-np.asarray(bars.x) ** 2 / 2) / np.sqrt(2 * np.pi))) < 0.04
    # x₀ (digits in [−1, 1], mostly background at −1): nothing beyond ±1, and a peak at −1 far above the normal's
    clean = np.asarray(hist0.data[0].y)
    assert clean[np.abs(np.asarray(hist0.data[0].x)) > 1 + width].sum() == 0 and clean.max() > 3
    for hist in (hist0, histT):  # the legend, in the top quarter, covers no bar and no part of the curve
        tallest = max(max(hist.data[0].y), max(hist.data[1].y))
        assert hist.layout.yaxis.range[0] == 0 and tallest / hist.layout.yaxis.range[1] < 0.75


def test_the_summary_gives_this_chains_last_numbers() -> None:
    """ᾱ_T and SNR_T of the T chosen, at T (linear, T = 4000, β_end = 0.002: 0.3499 and 0.3499/0.6501 = 0.5382)."""
    summary = forward_tab.schedule_summary_html(make_schedule("linear", 4000, beta_end=0.002))
    assert "ᾱ<sub>T</sub> = 0.3499, SNR<sub>T</sub> = 0.5382 (T = 4000)" in summary


def test_axes_of_a_short_chain_tick_whole_steps() -> None:
    """At T = 2 the t axes had ticks at 0.5 and 1.5: steps between steps. A short chain's axes tick every step; a
    long one's keep plotly's own ticks."""
    short, long = make_schedule("cosine", 2), make_schedule("cosine", 1000)
    figs = [schedule_figures.alpha_bar_figure(short, 1), schedule_figures.schedule_curves_figure([short], "alpha_bar")]
    assert all(figures.as_figure(f).layout.xaxis.dtick == 1 for f in figs)
    assert figures.as_figure(schedule_figures.alpha_bar_figure(long, 1)).layout.xaxis.dtick is None
    chain = figures.as_figure(forward_chain.noise_figure(short, torch.tensor([0.0, 0.3, 0.9], dtype=torch.float64)))
    assert chain.layout.xaxis.dtick == 1  # the chain's steps s = 0, 1, 2


def test_the_chains_noise_plot_shows_every_measured_dot() -> None:
    """The plot's y axis had stopped at 1.05, above √(1 − ᾱ_s) ≤ 1; the RMS of a few points strays further (of ten
    points, ~1.4 near t = T), and those dots were cut off. The axis reaches the highest dot."""
    schedule = make_schedule("linear", 1000)
    _, rms = schedule.q_chain(torch.randn(10, 2, generator=torch.Generator().manual_seed(0)), 1000,
                              torch.Generator().manual_seed(1))
    figure = figures.as_figure(forward_chain.noise_figure(schedule, rms))
    dots = figure.data[1].y
    assert max(dots) > 1.05  # the case at issue
    assert figure.layout.yaxis.range[0] == 0 and max(dots) < figure.layout.yaxis.range[1]
    many = figures.as_figure(forward_chain.noise_figure(schedule, torch.full((1001,), 0.5, dtype=torch.float64)))
    assert tuple(many.layout.yaxis.range) == (0, 1.05)  # room for the line, which ends near 1


def test_letting_go_of_t_asks_the_server_only_to_put_the_box_right_or_to_draw_open_panels():
    """A keyboard scrub lets go of t at every key: each had sent two requests besides the scrub's, to put the box
    right (mostly nothing to do) and to draw the panels below (mostly closed). The release now runs in the page and
    clicks a hidden button only for an empty box, a t past T or an open panel (the browser test counts the
    requests)."""
    with gr.Blocks() as demo:
        forward_tab.build(gr.State(None), demo)
    by_id = {block.elem_id: block for block in demo.blocks.values() if getattr(block, "elem_id", None)}
    releases = [d for d in demo.fns.values() if d.targets == [(by_id["forward-t"]._id, "release")]]
    # JavaScript alone, one listener given t as let go of (a second one read the 0 Gradio then puts in an empty box)
    assert len(releases) == 1 and releases[0].fn is None and not releases[0].queue
    assert releases[0].inputs == [by_id["forward-t"]]
    scripts = releases[0].js
    for button_id, fn_name in [("forward-t-emptied", "t_on_view_again"), ("forward-t-past-end", "t_in_range"),
                               ("forward-panels-follow", "open_panels_at_t")]:
        assert f"'{button_id}'" in scripts or f'"{button_id}"' in scripts, button_id
        button = by_id[button_id]
        assert button.visible == "hidden"
        clicks = [d for d in demo.fns.values() if d.targets == [(button._id, "click")]]
        assert [getattr(d.fn, "__name__", "") for d in clicks] == [fn_name]
    assert '#forward-targets > button[aria-expanded=true], #forward-chain > button[aria-expanded=true]' in scripts
    assert forward_tab.t_on_view_again(120) == 120


def test_a_refused_upload_shows_a_toast_and_no_badge_on_the_views():
    """A file that is not a picture had put an "Error" badge on each of the views (the upload's outputs, shown with
    minimal progress) beside its toast; the views stay as they were, and say nothing."""
    from app import schedules_tab

    for tab in (forward_tab, schedules_tab):
        with gr.Blocks() as demo:
            tab.build(gr.State(None), demo)
        uploads = [d for d in demo.fns.values() if getattr(d.fn, "__name__", "") in ("upload_and_rebuild",
                                                                                      "upload_and_compare")]
        assert len(uploads) == 1 and uploads[0].show_progress == "hidden", tab.__name__
