"""Schedules tab handlers, called as plain functions (no browser)."""

from __future__ import annotations

import math

import gradio as gr
import numpy as np
import PIL.Image
import pytest
import torch

from app import controls, figures, images, panel_grid, point_pictures, schedule_figures, schedules_tab
from app.own_points import OWN_POINTS, OWN_POINTS_ELSEWHERE, OwnPoints
from core.data import DataInfo, make_toy2d
from core.sampler import SPACINGS
from core.schedules import ALPHA_BAR_FLOOR, SCHEDULE_LABELS, make_schedule
from tests.conftest import DRAWN_RTOL, picture_rgba

PARAMS = controls.default_param_values()


def _compare(names=("linear", "cosine", "sigmoid"), T=1000, data="mnist", digit=0, upload=None, seed=0, log_beta=True, params=None,
             own=None, weighting="bound_weight"):
    """The handler's outputs, each figure as a validated go.Figure (checks the JSON against plotly's schema)."""
    outputs = schedules_tab.compare(list(names), T, data, digit, upload, own, seed, log_beta, weighting,
                                    *(params or PARAMS))
    return [output if isinstance(output, str) else figures.as_figure(output) for output in outputs]


def _legend_names(fig):
    return [trace.name for trace in fig.data if trace.showlegend is not False]


def test_traces_for_each_schedule_and_snr_one_marked():
    names = ("linear", "cosine", "sigmoid", "sigmoid_beta")
    alpha, beta, log_snr, grid, table, warning, gains, weights = _compare(names, T=400)
    for fig in (alpha, beta, log_snr, weights):
        assert _legend_names(fig) == [SCHEDULE_LABELS[n] for n in names]
        markers = [trace for trace in fig.data if trace.mode == "markers"]
        assert len(markers) == len(names)  # one SNR = 1 marker per schedule
    assert beta.layout.yaxis.type == "log"
    lines = [trace for trace in alpha.data if trace.mode == "lines"]
    assert all(line.x[0] == 0 and line.y[0] == 1 and line.x[-1] == 400 for line in lines)  # ᾱ_0 = 1: the clean data
    assert all(line.x[0] == 1 for line in beta.data if line.mode == "lines")  # β_t from the first step
    # the log-SNR markers sit at log-SNR = 0, at each schedule's t_snr_one
    for name, marker in zip(names, [t for t in log_snr.data if t.mode == "markers"]):
        assert marker.x[0] == pytest.approx(make_schedule(name, 400).t_snr_one)
        assert abs(marker.y[0]) < 0.05
    assert [(shape.y0, shape.y1) for shape in log_snr.layout.shapes] == [(0, 0)]  # the SNR = 1 line, labelled
    assert [a.text for a in log_snr.layout.annotations] == ["SNR = 1"]
    assert warning == ""
    assert all(SCHEDULE_LABELS[n] in table for n in names)


def test_the_curves_of_a_long_chain_keep_every_step_and_spike_in_a_fraction_of_the_bytes():
    """At T = 10,000 one change sent 4.2 MB of curves (4 schedules × 10,001 points × 4 plots). Each line now goes
    through the first, last, lowest and highest point of each of 250 runs of t: its ends, its extremes (cosine's β_T,
    capped at 0.999 in the last step) and its exact values there."""
    names = ("linear", "cosine", "sigmoid", "sigmoid_beta")
    plots = schedules_tab.compare(list(names), 10_000, "swiss_roll", 0, None, None, 0, True, "bound_weight", *PARAMS)
    curves = [plots[k] for k in (0, 1, 2, 7)]
    assert sum(len(plot.model_dump_json()) for plot in curves) < 250_000
    for name, line in zip(names, (t for t in figures.as_figure(curves[1]).data if t.mode == "lines")):
        betas = make_schedule(name, 10_000).betas.numpy()  # β_0 = 0, then β_1 … β_T
        ts, ys = np.asarray(line.x), np.asarray(line.y)
        assert ts[0] == 1 and ts[-1] == 10_000 and len(ts) <= 4 * schedule_figures.LINE_RUNS
        assert np.allclose(ys, betas[ts], rtol=DRAWN_RTOL)
        betas = betas[1:]
        assert ys.max() == pytest.approx(betas.max(), rel=DRAWN_RTOL)
        assert ys.min() == pytest.approx(betas.min(), rel=DRAWN_RTOL)
    spike = schedule_figures.line_points(np.arange(10), np.array([0, 1, 2, 9, 3, 4, 5, 6, 7, 8.0]), runs=2)
    assert spike[0].tolist() == [0, 3, 4, 5, 9] and spike[1].tolist() == [0, 9, 3, 4, 8]  # runs of 5
    gap = schedule_figures.line_points(np.arange(10), np.array([0, 1, np.nan, 3, 4, 5, 6, 7, 8, 9.0]), runs=2)[0]
    assert gap.tolist() == [0, 2, 4, 5, 9]  # the line still breaks where a value is missing


def test_step_gains_show_why_cosine_needs_log_snr_spacing():
    gains = {name: {spacing: schedules_tab.step_gains(make_schedule(name, 1000), spacing) for spacing in SPACINGS}
             for name in ("linear", "cosine")}
    assert all(len(g) == schedules_tab.SHORT_CHAIN for by in gains.values() for g in by.values())
    # the DDIM step x_s = √ᾱ_s·x̂₀ + √(1 − ᾱ_s)·ε̂, x̂₀ = (x_t − √(1 − ᾱ_t)·ε̂)/√ᾱ_t, differentiated in ε̂ by hand:
    # the coefficient of ε̂, against the step's own arithmetic on a perturbed ε̂
    cosine = make_schedule("cosine", 1000)
    ab_t, ab_s = cosine.alpha_bars[1000].item(), cosine.alpha_bars[980].item()

    def ddim_step(eps: float, x_t: float = 0.3) -> float:
        x0 = (x_t - math.sqrt(1 - ab_t) * eps) / math.sqrt(ab_t)
        return math.sqrt(ab_s) * x0 + math.sqrt(1 - ab_s) * eps

    assert gains["cosine"]["uniform"][0] == pytest.approx(abs(ddim_step(0.5 + 1e-6) - ddim_step(0.5)) / 1e-6, rel=1e-4)
    assert gains["cosine"]["uniform"][0] > 600 and gains["cosine"]["log_snr"].max() < 40  # 1/√α_T ≈ 32 at most
    assert gains["linear"]["uniform"].max() < 0.25 and gains["linear"]["log_snr"].max() < 0.25  # every step shrinks it
    last = make_schedule("linear", 1000).alpha_bars[1].item()  # the last step, t = 1 → 0: ε̂'s error × √((1 − ᾱ₁)/ᾱ₁)
    assert gains["linear"]["uniform"][-1] == pytest.approx(math.sqrt((1 - last) / last))
    fig = _compare(("linear", "cosine"))[6]
    drawn = [trace for trace in fig.data if trace.x[0] is not None]
    assert [trace.hovertemplate.split("<br>")[0] for trace in drawn] == [
        f"{SCHEDULE_LABELS[n]}, steps evenly in {w}" for n in ("linear", "cosine") for w in ("t", "log-SNR")]
    assert [trace.line.dash for trace in drawn] == ["solid", "dot"] * 2
    # the legend: each schedule once, then the key to the two line styles
    assert _legend_names(fig) == ["linear", "cosine", "evenly in t", "evenly in log-SNR"]  # the citations: in the hover
    assert fig.layout.yaxis.type == "log" and fig.layout.shapes[0].y0 == 1  # a gain of 1: the error passes unchanged
    assert fig.layout.xaxis.type == "log" and list(fig.layout.xaxis.tickvals) == [1, 2, 5, 10, 20, 50]
    np.testing.assert_allclose(drawn[2].y, gains["cosine"]["uniform"], rtol=DRAWN_RTOL)


def test_noised_grid_rows_by_columns_images_and_points():
    ts = schedules_tab.grid_timesteps(1000)
    assert ts == [0, 100, 250, 500, 750, 1000]
    grid = _compare(("linear", "cosine"))[3]
    assert len(grid.data) == 2 * len(ts) and all(trace.type == "image" for trace in grid.data)
    grid = _compare(("linear", "cosine", "quadratic"), data="moons")[3]
    # points: one picture a panel over its axes (24,000 scatter markers kept the browser busy for seconds)
    assert not grid.data and len(grid.layout.images) == 3 * len(ts)
    assert [(image.xref, image.yref) for image in grid.layout.images[:2]] == [("x", "y"), ("x2", "y2")]
    titles = [a.text for a in grid.layout.annotations]
    assert "t = 500" in titles and any("quadratic" in text for text in titles)
    # points: the coordinates on the grid's outer edges only (the bottom row's x axes, the first column's y axes)
    labelled = {name for name in grid.layout.to_plotly_json() if name[1:5] == "axis" and grid.layout[name].showticklabels}
    bottom = {f"xaxis{i}" for i in range(2 * len(ts) + 1, 3 * len(ts) + 1)}
    assert labelled == bottom | {"yaxis", f"yaxis{len(ts) + 1}", f"yaxis{2 * len(ts) + 1}"}
    assert list(grid.layout.xaxis13.tickvals) == [-2, 0, 2] and tuple(grid.layout.yaxis.range) == (-4, 4)


def test_each_row_of_the_grid_is_labelled_above_its_panels_in_its_schedule_colour():
    """The labels sit over the rows, not in a margin beside the grid, which left a 1,024-px window's panels 64 px wide."""
    names = ("linear", "cosine", "quadratic")
    grid = _compare(names)[3]
    labels = [a for a in grid.layout.annotations if "t = " not in a.text]
    assert len(labels) == len(names) and grid.layout.margin.r <= 10
    area = grid.layout.height - grid.layout.margin.t - grid.layout.margin.b  # the plotting area, in pixels
    cols = len(schedules_tab.grid_timesteps(1000))
    for row, (name, label) in enumerate(zip(names, labels)):
        bottom, top = grid.layout[f"yaxis{row * cols + 1}"].domain
        assert SCHEDULE_LABELS[name] in label.text and figures.SCHEDULE_COLORS[name] in label.text
        assert (label.x, label.xanchor, label.yanchor, label.y) == (0, "left", "bottom", top)
        above = 1 if row == 0 else grid.layout[f"yaxis{(row - 1) * cols + 1}"].domain[0]
        assert (above - top) * area >= panel_grid.ROW_LABEL_BAND - 1e-6  # the label's band is clear of the row above


def test_the_image_number_is_offered_for_image_sets_only():
    assert schedules_tab.is_image_set("mnist") and not schedules_tab.is_image_set("moons")
    assert not schedules_tab.is_image_set("upload") and not schedules_tab.is_image_set(schedules_tab.OWN_POINTS)


def test_own_points_from_the_train_tab_are_noised_under_each_schedule():
    with pytest.raises(gr.Error, match="draw a shape or upload a CSV in the Train tab"):
        _compare(("linear", "cosine"), data=OWN_POINTS)
    own = OwnPoints(make_toy2d("circles", 3000, seed=1), DataInfo("drawing", "2d", (2,), source="drawn in the Train tab"))
    grid = _compare(("linear", "cosine"), data=OWN_POINTS, own=own)[3]
    clean = picture_rgba(grid)[..., 3]  # linear, t = 0: the points themselves
    x0 = own.points[:schedules_tab.N_POINTS].numpy().astype(np.float64)
    assert clean.shape == (300, 300)  # 2 picture pixels a CSS pixel of a 150-px panel; 2-px markers at opacity 0.5
    np.testing.assert_array_equal(clean, point_pictures.points_alpha(x0, size=300, dot=5.0, opacity=0.5))
    args = (None, ["linear", "cosine"], 1000, OWN_POINTS, 0, None, own, 0, True, "bound_weight", *PARAMS)
    assert figures.as_figure(schedules_tab.own_points_changed(*args)[3]) == grid
    assert schedules_tab.own_points_changed(*args[:3], "mnist", *args[4:]) == (gr.skip(),) * 10
    assert (OWN_POINTS_ELSEWHERE, OWN_POINTS) in schedules_tab.data_choices()


def test_same_x0_and_noise_in_every_row():
    schedules = [make_schedule("linear", 100), make_schedule("cosine", 100)]
    x0 = torch.rand(1, 1, 8, 8) * 2 - 1
    noise = torch.randn(1, 1, 8, 8)
    cells = schedules_tab.noised_grid(schedules, "images", x0, noise, [0, 50, 100])
    assert len(cells) == 2 and all(len(row) == 3 for row in cells)
    np.testing.assert_array_equal(cells[0][0], cells[1][0])  # t = 0: both are x0
    expected = schedules[1].q_sample(x0, 50, noise)[0, 0]
    np.testing.assert_array_equal(cells[1][1], np.clip(np.rint((expected.numpy() + 1) * 127.5), 0, 255).astype(np.uint8))


def test_warning_when_chain_does_not_reach_noise():
    params = list(PARAMS)
    params[1] = 0.002  # linear β_end scaled down 10×
    _, _, _, _, table, warning, *_ = _compare(("linear", "cosine"), params=params)
    assert "Does not reach noise" in warning and SCHEDULE_LABELS["linear"] in warning
    assert SCHEDULE_LABELS["cosine"] not in warning
    assert "⚠" in table
    # what would make each reach noise: β scaled by 1000/T keeps ᾱ_T whatever T is; a cap holds up ᾱ made to reach 0
    assert "(raise β_end (with β scaled by 1000/T, T hardly changes ᾱ_T))" in warning and "β cap" not in warning
    capped = list(PARAMS)
    capped[params.index(0.999)] = 0.01  # cosine's β cap
    warning = _compare(("cosine",), params=capped)[5]
    assert "(increase T or the β cap)" in warning and "β_end" not in warning
    assert make_schedule("cosine", 4000, max_beta=0.01).reaches_noise  # so it does
    assert make_schedule("linear", 4000, beta_end=0.002).alpha_bar_T == pytest.approx(0.35, abs=0.01)  # as at T = 1000


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"names": ()}, "Pick 1 to 4"),
        ({"names": ("linear", "cosine", "sigmoid", "sigmoid_beta", "quadratic")}, "Pick 1 to 4"),
        ({"T": 1}, "T must"),
        ({"T": None}, "T is empty"),
        ({"data": "upload"}, "Upload a picture"),
        ({"digit": 99}, "image number"),
    ],
)
def test_bad_inputs_raise_gr_error(kwargs, match):
    with pytest.raises(gr.Error, match=match) as refused:
        _compare(**kwargs)
    assert not refused.value.print_exception  # a toast for the user, no traceback in the server's log


def test_bad_params_give_core_message():
    params = list(PARAMS)
    params[params.index(0.008)] = 2.0  # cosine s
    with pytest.raises(gr.Error, match="Cosine schedule: s must lie"):
        _compare(("linear", "cosine"), params=params)
    # core's parameter names as the inputs name them: the linear schedule at T = 10 scales β_end to 0.2
    with pytest.raises(gr.Error, match=r"Linear schedule: β_end must lie in \(0, 1\), got 2 \(after scaling by 1000/T = "
                                       r"100; use a larger T or turn “scale β by 1000/T” \(under Parameters\) off\)"):
        _compare(("linear", "cosine"), T=10)
    with pytest.raises(gr.Error, match=r"Sigmoid in β-space schedule: β_end must lie in \(0, 1\)"):  # not "Sigmoid_beta"
        _compare(("sigmoid_beta",), T=10)


def test_upload_in_grid(tmp_path):
    path = tmp_path / "p.jpg"
    PIL.Image.new("RGB", (300, 200), (200, 30, 30)).save(path)
    grid = _compare(("linear", "cosine"), data="upload", upload=str(path))[3]
    assert len(grid.data) == 12
    gif = tmp_path / "a.gif"
    frames = [PIL.Image.new("RGB", (8, 8), c) for c in ("red", "green", "blue")]
    frames[0].save(gif, save_all=True, append_images=frames[1:])
    with pytest.raises(gr.Error, match="Animated"):
        _compare(data="upload", upload=str(gif))


def test_images_of_data_sets_in_the_data_folder(local_data):
    values = [value for _, value in schedules_tab.data_choices()]
    assert values[:3] == ["mnist", "fashion_mnist", "cifar10"] and "upload" in values
    kind, x0 = schedules_tab.load_one_x0("fashion_mnist", 5, None)
    assert kind == "images" and x0.shape == (1, 1, 28, 28)
    np.testing.assert_array_equal(images.to_uint8(x0[0, 0]), local_data["fashion_mnist"][5])
    with pytest.raises(gr.Error, match="image number must be a whole number from 0 to 63"):
        schedules_tab.load_one_x0("fashion_mnist", 64, None)
    with pytest.raises(gr.Error, match="CIFAR-10 could not be loaded"):
        schedules_tab.load_one_x0("cifar10", 0, None)


def test_build_wiring():
    with gr.Blocks() as demo:
        schedules_tab.build(gr.State(None), demo)
    # the image number reaches the handler as typed, which names the field (Gradio said "Value 64 is greater than
    # maximum value 63.")
    image = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "schedules-image")
    assert image.preprocess(64) == 64
    with pytest.raises(gr.Error, match="The image number must be a whole number from 0 to 63, got 64"):
        _compare(digit=64)


def test_a_change_that_cannot_be_shown_gives_the_inputs_back_to_what_is_on_view():
    """A tick of linear at a T = 10 the others can have, "Uploaded picture" with none uploaded, a mistyped number: the
    views stay, and the inputs go back to what they show (the boxes named linear, or a picture, over plots and a table
    without it, and every later change failed on it)."""
    shown = schedules_tab.compare_and_keep(None, ["cosine", "sigmoid"], 10, "moons", 3, None, None, 5, True,
                                           "bound_weight", *PARAMS)
    on_view = shown[-2]
    assert on_view == (["cosine", "sigmoid"], 10, "moons", 3, 5, *PARAMS)
    with pytest.raises(gr.Error, match="β_end must lie in"):
        schedules_tab.compare_and_keep(shown[-1], ["linear", "cosine", "sigmoid"], 10, "moons", 3, None, None, 5, True,
                                       "bound_weight", *PARAMS)
    # the boxes, the record of the schedules on show, T, data, image number, seed and every parameter
    assert schedules_tab.controls_on_view(on_view) == (["cosine", "sigmoid"], ["cosine", "sigmoid"], 10, "moons", 3,
                                                       5, *PARAMS)
    with gr.Blocks() as demo:
        schedules_tab.build(gr.State(None), demo)
    reverts = [d for d in demo.fns.values() if getattr(d.fn, "__name__", "") == "controls_on_view"]
    assert len(reverts) == 3 and all(d.trigger_only_on_failure for d in reverts)  # a change, an upload, own points


def test_a_change_redraws_only_the_views_drawn_from_what_changed():
    """A tick of β's log scale had sent all eight views (the noised grid built again), another weighting too; Enter in
    T and then a click elsewhere drew them all twice."""
    args = [["linear", "cosine"], 1000, "moons", 0, None, None, 0, True, "bound_weight", *PARAMS]
    first = schedules_tab.compare_and_keep(None, *args)
    assert all(view != gr.skip() for view in first)
    drawn = first[-1]
    assert schedules_tab.compare_and_keep(drawn, *args) == (gr.skip(),) * 10  # the same inputs again
    assert schedules_tab.compare_and_keep(drawn, ["cosine", "linear"], *args[1:]) == (gr.skip(),) * 10  # ticked order

    def redrawn(**changed) -> list[int]:
        named = dict(zip(["names", "T", "data", "digit", "upload", "own", "seed", "log_beta", "weighting"], args))
        views = schedules_tab.compare_and_keep(drawn, *{**named, **changed}.values(), *PARAMS)
        return [k for k, view in enumerate(views[:8]) if view != gr.skip()]

    assert redrawn(log_beta=False) == [1]  # the β plot
    assert redrawn(weighting="x0_weight") == [7]  # the weight plot
    assert redrawn(seed=3) == redrawn(data="swiss_roll") == [3]  # the noised grid
    assert redrawn(digit=5) == redrawn(upload="/elsewhere/pic.png") == []  # not what the moons are drawn from
    assert redrawn(data="mnist") == [3] and redrawn(data="mnist", digit=5, log_beta=False) == [1, 3]
    assert redrawn(T=500) == list(range(8))
    linear = figures.as_figure(schedules_tab.compare_and_keep(drawn, *args[:7], False, *args[8:])[1])
    assert linear.layout.yaxis.type != "log" and linear.data[0].name == SCHEDULE_LABELS["linear"]


def test_an_upload_draws_once(tmp_path):
    """An upload sets the data choice and draws the noised grid of the picture in one response: the choice's change
    that follows finds it drawn (the upload's redraw and the change's had been two events, which ran at once)."""
    PIL.Image.new("RGB", (40, 30), (200, 30, 30)).save(tmp_path / "red.png")
    path = str(tmp_path / "red.png")
    args = [["linear", "cosine"], 1000, "moons", 0, path, None, 0, True, "bound_weight", *PARAMS]
    drawn = schedules_tab.compare_and_keep(None, *args)[-1]
    choice, *views, on_view, now_drawn = schedules_tab.upload_and_compare(drawn, *args)
    assert choice.value == schedules_tab.UPLOAD and on_view[2] == schedules_tab.UPLOAD
    assert [k for k, view in enumerate(views) if view != gr.skip()] == [3]  # the noised grid, of the picture
    uploaded = [*args[:2], schedules_tab.UPLOAD, *args[3:]]
    assert schedules_tab.compare_and_keep(now_drawn, *uploaded) == (gr.skip(),) * 10  # the choice's change
    assert schedules_tab.upload_and_compare(drawn, *args[:4], None, *args[5:]) == (gr.skip(),) * 11
    with gr.Blocks() as demo:
        schedules_tab.build(gr.State(None), demo)
    upload = next(d for d in demo.fns.values() if getattr(d.fn, "__name__", "") == "upload_and_compare")
    assert isinstance(upload.outputs[0], gr.Dropdown) and isinstance(upload.outputs[-1], gr.State)


def test_a_chain_of_a_few_steps_is_drawn_step_by_step():
    """At T = 2 the bound's weight is finite at t = 2 only: drawn as a line alone, the curve was invisible."""
    few = schedule_figures.FEW_STEPS
    for T, mode in ((2, "lines+markers"), (few, "lines+markers"), (few + 1, "lines")):
        weight = _compare(("linear", "cosine"), T=T, params=[0.0001, 0.02, False, *PARAMS[3:]])  # linear β unscaled
        weight = weight[7]
        assert [trace.mode for trace in weight.data if trace.name in SCHEDULE_LABELS.values()] == [mode, mode], T


def test_the_bound_weight_of_each_step_falls_on_linear_and_rises_again_at_the_capped_end_of_cosine():
    weights = _compare(("linear", "cosine"))[7]
    assert weights.layout.yaxis.type == "log"
    linear, cosine = (np.asarray(trace.y, dtype=float) for trace in weights.data if trace.mode == "lines")
    assert np.isnan(linear[0]) and np.isnan(cosine[0])  # t = 1: the decoder's term, no KL
    betas = make_schedule("linear", 1000).betas.double()
    # β_2/(2α_2(1 − ᾱ_1))
    assert linear[1] == pytest.approx(float(betas[2] / (2 * (1 - betas[2]) * betas[1])), rel=DRAWN_RTOL)
    assert 0.5 < linear[1] < 0.7 and linear[-1] < 0.02  # then ≈ β_t/2 where ᾱ_{t−1} ≈ 0
    assert cosine[-1] > 100  # β_T capped at 0.999: SNR falls 1,000-fold in the last step


def test_the_weights_of_x0_v_and_min_snr_losses_on_the_eps_error():
    """‖ε − ε̂‖² = SNR_t·‖x₀ − x̂₀‖² = ᾱ_t·‖v − v̂‖²: a plain x₀ loss weights the ε error by 1/SNR_t, a v loss by 1/ᾱ_t,
    Min-SNR-5 by min(SNR_t, 5)/SNR_t; the plain ε loss's 1 is drawn across."""
    schedule = make_schedule("linear", 1000)
    snr, alpha_bar = schedule.snr[1:].numpy(), schedule.alpha_bars[1:].numpy()
    expected = {"x0_weight": 1 / snr, "v_weight": 1 / alpha_bar, "min_snr_weight": np.minimum(snr, 5) / snr}
    for weighting, values in expected.items():
        fig = _compare(("linear", "cosine"), weighting=weighting)[7]
        linear = np.asarray(next(trace for trace in fig.data if trace.mode == "lines").y, dtype=float)
        assert np.allclose(linear, values, rtol=DRAWN_RTOL), weighting
        assert fig.layout.shapes[0].y0 == 1 and "plain ε loss" in fig.layout.annotations[0].text
    x0 = np.asarray(_compare(("linear", "cosine"), weighting="x0_weight")[7].data[0].y, dtype=float)
    assert x0[0] < 1e-3 and x0[-1] > 1e4  # nearly nothing where the data is clean, a lot where it is noise
    with pytest.raises(gr.Error, match="Unknown weighting"):
        _compare(weighting="elbo")


def test_one_schedule_alone_is_shown():
    alpha, *_, table, warning, gain, weight = _compare(("cosine",))
    assert [trace.name for trace in alpha.data if trace.mode == "lines"] == [SCHEDULE_LABELS["cosine"]]
    assert SCHEDULE_LABELS["cosine"] in table and SCHEDULE_LABELS["linear"] not in table
    *_, gain, _ = _compare(("linear",), T=100)  # gains of 0.03 … 0.25: labelled within the decade, not by 0.1 alone
    values = [g for trace in gain.data for g in trace.y if g is not None]
    assert len([v for v in gain.layout.yaxis.tickvals if min(values) <= v <= max(values)]) >= 4
    assert gain.layout.yaxis.type == "log" and _compare(("cosine",))[6].layout.yaxis.tickvals is None  # 1 … 630: 10ⁿ


@pytest.mark.parametrize("ticked, why", [
    (["linear", "cosine", "sigmoid", "quadratic", "sigmoid_beta"], "At most 4 schedules"),
    ([], "at least one schedule"),
])
def test_a_fifth_tick_or_the_last_untick_goes_back_with_a_warning(ticked, why, monkeypatch):
    warnings = []
    monkeypatch.setattr(gr, "Warning", warnings.append)
    shown = ["linear", "cosine", "sigmoid", "quadratic"] if ticked else ["cosine"]
    boxes, new_shown = schedules_tab.keep_in_range(ticked, shown)
    assert boxes == shown and new_shown == gr.skip()  # the views stay as they are
    assert len(warnings) == 1 and why in warnings[0]


def test_a_tick_within_range_is_kept():
    assert schedules_tab.keep_in_range(["quadratic", "linear"], ["linear"]) == (["quadratic", "linear"],) * 2


def test_a_dropdown_of_long_names_ends_a_cut_one_in_an_ellipsis():
    """"sigmoid in ᾱ-space (Jabri et al. 2022 / Chen 2023)" ran under the dropdown's ▾ at 1,024 px, cut mid-word:
    every dropdown with names over 30 characters has the class whose CSS ends them in "…" clear of ▾."""
    from app import CSS, build_app
    long_named = [block for block in build_app().blocks.values() if isinstance(block, gr.Dropdown)
                  and max((len(str(label)) for label, _ in block.choices), default=0) > 30]
    assert len(long_named) >= 6 and all("name-dropdown" in block.elem_classes for block in long_named)
    assert ".name-dropdown input {text-overflow: ellipsis" in CSS


def test_a_weight_over_many_decades_labels_every_other_power_of_ten():
    """The x₀ loss's weights span 10⁻⁵ … 10⁹ over linear, cosine and sigmoid: a label at every power of ten piled 15 up
    the axis. Over many decades, no more than 9; over a few, every power of ten as before."""
    schedules = [make_schedule(name, 1000) for name in ("linear", "cosine", "sigmoid")]
    wide = figures.as_figure(schedule_figures.schedule_curves_figure(schedules, "x0_weight", log_y=True)).layout.yaxis
    assert wide.type == "log" and 5 <= len(wide.tickvals) <= 9, wide.tickvals
    assert min(wide.tickvals) <= 1e-4 and max(wide.tickvals) >= 1e8  # over all of it
    narrow = figures.as_figure(
        schedule_figures.schedule_curves_figure(schedules[:1], "bound_weight", log_y=True)).layout.yaxis
    assert narrow.tickvals is None and narrow.dtick == 1


def test_the_tab_says_why_schedules_differ_in_the_engines_numbers():
    """Comparing curves does not say why it matters: the tab says it with the numbers of the default T."""
    text = schedules_tab.why_schedules_differ(1000)
    for name in ("linear", "cosine", "sigmoid"):
        schedule = make_schedule(name, 1000)
        noise_like = int(np.argmax(schedule.snr.numpy() < schedules_tab.NOISE_LIKE_SNR))
        assert f" {schedule.t_snr_one:.0f}" in text and f" {noise_like:,}" in text, name
    assert "its last 325 steps go to noise-like x_t" in text  # linear: SNR < 0.01 from t = 675 of 1,000


def test_a_log_snr_past_float64s_alpha_bar_is_drawn_to_the_end():
    """β_end = 0.9999 takes ᾱ_t below float64 from t ≈ 930: the curve had stopped there (log ᾱ_t = −∞, said in a
    note). Log-SNR comes from Σ log(1 − β_s) and is drawn over every t, still falling."""
    figure = figures.as_figure(schedule_figures.schedule_curves_figure([make_schedule("linear", 1000, beta_end=0.9999)],
                                                                      "log_snr"))
    ys = np.asarray(figure.data[0].y, dtype=float)
    assert len(ys) == 1000 and np.isfinite(ys).all() and (np.diff(ys) < 0).all() and ys[-1] < -1000  # t = 1..T
    assert [a.text for a in figure.layout.annotations] == ["SNR = 1"]


def test_a_chain_whose_alpha_bar_reaches_its_floor_is_drawn_to_t_and_its_v_weight_labelled():
    """Linear, T = 10,000, β_end = 0.2 unscaled: ᾱ_t stops at core's floor (2.2·10⁻³⁰⁸) from t ≈ 8,160. Rounded for
    sending, those values had gone out as null (the ᾱ_t line stopped at t = 8,118), and the v loss's weight there,
    1/ᾱ_t = 4.5·10³⁰⁷, took the log axis's labels past float64 (an OverflowError, a bare "Error" toast)."""
    params = list(PARAMS)
    params[1:3] = [0.2, False]  # linear's β_end, scale_with_T
    alpha, *_, weight = _compare(("linear",), T=10_000, params=params, weighting="v_weight")
    ys = np.asarray(alpha.data[0].y, dtype=float)
    assert alpha.data[0].x[-1] == 10_000 and np.isfinite(ys).all() and ys[-1] == ALPHA_BAR_FLOOR
    assert weight.layout.yaxis.type == "log" and max(weight.layout.yaxis.tickvals) <= 1e308


def test_the_table_warning_and_reasons_give_each_schedules_own_numbers() -> None:
    """The numbers under each schedule, not only its labels (linear at T = 4000 with β_end = 0.002: ᾱ_T = 0.35, SNR_T =
    0.35/0.65 = 0.538, SNR = 1 at t = 3213); a grid's t are rounded, not truncated; a chain of T < 50 has T step gains."""
    shallow = make_schedule("linear", 4000, beta_end=0.002)
    table = schedules_tab.summary_table([shallow])
    assert table.startswith("| schedule (T = 4000) |") and "| 0.35 | 0.538 | 3213 | ⚠ **no** |" in table
    assert "| 0.0063 | 0.00634 | 364 | ⚠ **no** |" in schedules_tab.summary_table([make_schedule("linear", 1000, beta_end=0.01)])
    assert "ᾱ<sub>T</sub> = 0.35 (" in schedules_tab.warning_html([shallow])
    assert ("pass SNR = 1 at t ≈ 496 and 500 and reach 0.01 only at t ≈ 937 and 970"
            in schedules_tab.why_schedules_differ(1000))  # cosine, then sigmoid
    assert schedules_tab.grid_timesteps(10) == [0, 1, 2, 5, 8, 10]
    assert len(schedules_tab.step_gains(make_schedule("cosine", 30), "uniform")) == 30
