"""Train tab handlers as plain calls: streaming, per-user stop, one run per user, divergence, caps."""

from __future__ import annotations

import asyncio
import html
import json
import math
import re
import os
import shlex
import shutil
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import gradio as gr
import numpy as np
import PIL.Image
import pytest
import torch
from safetensors.torch import load_file

import app
from app import (
    build_app, checkpoint_access, controls, figures, reverse_tab, runs, torch_threads, train_figures, train_plan, train_tab,
    train_worker,
)
from app.errors import InputError
from app.images import image_grid, mnist_digits, png_data_uri
from app.throttle import Throttle
from core.checkpoints import list_checkpoints, load_checkpoint, save_checkpoint
from core.data import DataInfo, make_toy2d
from core.datasets import DEFAULT_TOY_POINTS, load_labelled_data, load_training_data
from core.mlp import MLPDenoiser
from core.schedules import make_schedule
from core.trainer import LOSS_BUCKETS, SHORTEST_KEPT, TrainConfig, TrainEvent, Trainer
from core.unet import UNet, unet_config
from tests.conftest import DRAWN_RTOL, REPO, end_training_runs, write_idx


def req(user: str):
    return types.SimpleNamespace(session_hash=user)


PARAMS = controls.default_param_values()


def args(steps=60, batch=64, lr=2e-3, data="swiss_roll", model="mlp", T=100, seed=0, trained=None, start_from="",
         schedule="linear", own=None, n_points=10_000, prediction="eps", conditional=False, p_uncond=0.1):
    return (data, schedule, T, model, prediction, conditional, p_uncond, start_from, steps, batch, lr, seed, n_points,
            trained or [], own, *PARAMS)


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("DDPM_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setattr(train_tab, "POLL_SECONDS", 0.05)
    monkeypatch.setattr(train_tab, "PLOT_SECONDS", 0.0)
    monkeypatch.setattr(train_plan, "PREVIEW_POINTS", 64)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is faster, and the test machine is shared
    yield tmp_path / "runs"
    torch.set_num_threads(threads)
    end_training_runs()  # no run outlives its test
    runs.REGISTRY.__init__()
    for page in list(runs._page_owners):  # nor any page
        runs.forget_page(page)


def loss_points(plot) -> int:
    fig = figures.as_figure(plot)
    return len(fig.data[0].x) if fig.data else 0


def drain(gen) -> list:
    return list(gen)


def final_preview(request, ticket=None):
    """`train_tab.final_preview` (a coroutine), as the event after a run's end runs it."""
    return asyncio.run(train_tab.final_preview(request, ticket))


def cut_off_updates(page: str, trained) -> list:
    """Every update of `train_tab.run_cut_off` (an async generator) on ``page``."""
    async def collect():
        return [update async for update in train_tab.run_cut_off(req(page), trained)]
    return asyncio.run(collect())


def cut_off_status(page: str, trained) -> tuple:
    """The last update of `train_tab.run_cut_off` on ``page``: (status, checkpoint paths)."""
    return cut_off_updates(page, trained)[-1]


def test_smoothed_loss_follows_a_falling_loss_without_lag_and_damps_noise():
    steps = np.arange(2000)
    falling = 10.0 ** (-steps / 500)  # an exponential fall: a straight line on the log axis
    smoothed = train_figures.smooth(falling)
    assert np.allclose(smoothed[50:-50], falling[50:-50], rtol=1e-9)  # no lag in the interior
    assert smoothed[-1] / falling[-1] < 1.2  # and little at the newest step
    noisy = 0.1 * np.exp(np.random.default_rng(0).normal(0, 0.5, 2000))
    assert np.log(train_figures.smooth(noisy)[50:-50]).std() < 0.2 * np.log(noisy).std()
    with_nan = falling.copy()
    with_nan[1000] = np.nan
    assert np.isfinite(train_figures.smooth(with_nan)).all()  # a diverged step does not blank the curve


def test_loss_axis_labels_every_digit_within_a_decade_and_1_2_5_beyond():
    """The loss plot's log axis (`app.log_axes`, tested on its own in tests/test_log_axes.py), and the steps sweep's."""
    sweep = figures.as_figure(figures.quality_by_steps_figure({"DDPM": [(5, 7.78), (50, 0.919), (1000, 0.7)]}, "ratio"))
    assert sweep.layout.yaxis.range is not None and sweep.layout.xaxis.ticktext == ("5", "50", "1,000")
    one = figures.as_figure(train_figures.loss_figure([0.5]))  # a run of one step, or one that diverged at its second
    assert all(trace.mode == "lines+markers" for trace in one.data) and one.layout.yaxis.range is not None
    low, high = (10**v for v in one.layout.yaxis.range)
    assert len([v for v in one.layout.yaxis.tickvals if low <= v <= high]) == 6
    fig = figures.as_figure(train_figures.loss_figure([0.9, 0.5, 0.04]))
    assert fig.layout.yaxis.type == "log" and "0.05" in fig.layout.yaxis.ticktext and "0.06" not in fig.layout.yaxis.ticktext
    assert fig.layout.yaxis.range is None  # plotly fits the axis to the losses
    # a run that blew up (learning rate 50: losses from 10¹⁰ down to 0.5): powers of ten, not 1, 2, 5 in each decade
    wide = figures.as_figure(train_figures.loss_figure([1e10, 3e6, 18.6, 0.5])).layout.yaxis
    assert list(wide.tickvals) == [10.0**e for e in (-1, 1, 3, 5, 7, 9, 11)]
    assert list(wide.ticktext) == ["0.1", "10", "1000", "10<sup>5</sup>", "10<sup>7</sup>", "10<sup>9</sup>",
                                   "10<sup>11</sup>"]
    empty = figures.as_figure(train_figures.loss_figure([]))
    assert list(empty.layout.yaxis.range) == [-1, 0]  # before the first loss: 0.1 … 1, not plotly's 0.1 … 10⁴
    assert "once a run starts" in empty.layout.annotations[0].text and not fig.layout.annotations  # no blank axes
    assert empty.layout.yaxis.title.text == "loss"  # which loss is not known before Start (Min-SNR-5 on images)
    assert one.layout.xaxis.dtick == 1 and fig.layout.xaxis.dtick == 1  # whole steps on a short run
    assert figures.as_figure(train_figures.loss_figure([0.5] * 10)).layout.xaxis.dtick is None  # plotly's own beyond


def trace_names(plot) -> list[str]:
    return [trace.name for trace in figures.as_figure(plot).data]


def test_before_a_run_the_preview_plot_shows_the_training_data(shared_data, monkeypatch):
    monkeypatch.setenv("DDPM_DATA_DIR", str(shared_data))
    moons = train_tab.show_training_data(req("alice"), "moons", None)
    assert moons.label == train_tab.DATA_LABELS["2d"]
    fig = figures.as_figure(moons)
    assert [trace.name for trace in fig.data] == ["training data"] and fig.layout.showlegend
    points = np.c_[fig.data[0].x, fig.data[0].y]
    # a run's data
    assert np.allclose(points, load_training_data("moons", seed=0)[0][:train_plan.PREVIEW_POINTS], rtol=DRAWN_RTOL)
    digits = train_tab.show_training_data(req("alice"), "mnist", None)
    assert digits.label == train_tab.DATA_LABELS["image"]
    first_digits = load_training_data("mnist", limit=train_plan.PREVIEW_IMAGES)[0]
    assert figures.picture_source(figures.as_figure(digits)) == \
        figures.picture_source(figures.as_figure(figures.image_figure(image_grid(first_digits, nrow=4))))
    runs.REGISTRY.reserve("alice")  # while alice's run uses the plot, choosing other data leaves it alone
    assert train_tab.show_training_data(req("alice"), "moons", None) == gr.skip()
    assert train_tab.show_training_data(req("bob"), "moons", None).label == train_tab.DATA_LABELS["2d"]


def test_points_figure_draws_the_training_data_beneath_the_samples_in_grey():
    samples, data = np.zeros((5, 2)), np.ones((7, 2))
    fig = figures.as_figure(figures.points_figure(samples, name="samples", reference=data))
    assert [t.name for t in fig.data] == ["training data", "samples"]  # later traces are drawn on top
    assert fig.data[0].marker.color == figures.REFERENCE_COLOR != fig.data[1].marker.color
    assert len(fig.data[0].x) == 7 and len(fig.data[1].x) == 5 and fig.layout.showlegend
    plain = figures.as_figure(figures.points_figure(samples))
    assert [t.name for t in plain.data] == ["x_t"] and not plain.layout.showlegend


def test_error_by_t_plot_shows_each_range_of_t_where_it_was_seen():
    losses = [math.nan] + [0.5] * (LOSS_BUCKETS - 2) + [0.01]  # the first range not drawn yet
    fig = figures.as_figure(train_figures.error_by_t_figure(losses, 1000))
    bars = fig.data[0]
    assert len(bars.x) == LOSS_BUCKETS - 1 and list(bars.y[-1:]) == [0.01]
    assert bars.x[0] == 75.5 and bars.x[-1] == 975.5  # centres of t 51–100 and 951–1000
    assert [list(c) for c in bars.customdata[:1]] == [[51, 100]] and fig.layout.xaxis.range == (0, 1000.5)
    assert fig.layout.xaxis.title.text == f"t (noise level), in {LOSS_BUCKETS} ranges"
    assert fig.layout.yaxis.type == "log" and fig.layout.yaxis.title.text == "‖ε − ε̂‖² (mean)"
    empty = figures.as_figure(train_figures.error_by_t_figure(train_figures.NOTHING_SEEN, 1000))
    assert not empty.data and list(empty.layout.yaxis.range) == train_figures.EMPTY_LOSS_RANGE
    assert [a.text for a in empty.layout.annotations] == ["the error in each range of t<br>is drawn here as a run trains"]
    assert not fig.layout.annotations  # the note goes once bars are drawn
    earlier = train_figures.ErrorByT("earlier", [0.4] + [math.nan] * (LOSS_BUCKETS - 1))
    before_bars = figures.as_figure(train_figures.error_by_t_figure(train_figures.NOTHING_SEEN, 1000, earlier))
    assert len(before_bars.data) == 1 and before_bars.layout.annotations[0].text.startswith("the error in each range")
    odd = figures.as_figure(train_figures.error_by_t_figure([0.3] * LOSS_BUCKETS, 30))  # T not a multiple of 20
    ranges = [list(c) for c in odd.data[0].customdata]
    assert ranges[0][0] == 1 and ranges[-1][1] == 30
    assert all(b[0] == a[1] + 1 for a, b in zip(ranges, ranges[1:]))  # no gaps, no overlaps
    short = figures.as_figure(train_figures.error_by_t_figure([0.3] * LOSS_BUCKETS, 2)).layout  # T = 2: two bars
    assert short.xaxis.title.text == "t (noise level)" and short.xaxis.range == (0, 2.5)  # the bar at t = 2 whole


def test_error_by_t_plot_names_a_long_earlier_run_on_two_lines():
    """The earlier run's name and settings (about 60 characters) would be cut off at a phone's plot edge: its legend
    entry breaks before the settings; the hover text keeps the whole name on one line."""
    label = "swiss_roll-linear-T1000-20261204-175711 (predicts ε, linear)"
    reference = train_figures.ErrorByT(label, [0.4] * LOSS_BUCKETS)
    fig = figures.as_figure(train_figures.error_by_t_figure([0.5] * LOSS_BUCKETS, 1000, reference, "this run (predicts ε)"))
    assert [t.name for t in fig.data] == ["this run (predicts ε)",
                                          "swiss_roll-linear-T1000-20261204-175711<br>(predicts ε, linear)"]
    assert label in fig.data[1].hovertemplate
    assert figures.two_line_name("moons (predicts v)") == "moons (predicts v)"
    assert figures.two_line_name("x" * 50) == "x" * 50  # no parenthesis to break at


def test_data_shown_after_the_run_ended_is_not_replaced_by_its_late_final_preview(isolated):
    """The run's final samples take seconds after it ends; data the user picks meanwhile stays in the preview."""
    gen = train_tab.train_run(req("alice"), None, *args(steps=20))
    outputs = []
    for output in gen:
        outputs.append(output)
        if "Finished after 20 steps" in output[0]:
            break  # the run is over; its final preview is still on its way
    picked = train_tab.show_training_data(req("alice"), "moons", None)
    assert picked.label == train_tab.DATA_LABELS["2d"]
    assert final_preview(req("alice")) == gr.skip()
    # without a pick, the final preview comes, after the run's stream has ended (it held the training slot)
    outputs = drain(train_tab.train_run(req("alice"), None, *args(steps=20)))
    assert "Finished after 20 steps" in outputs[-1][0]
    last = final_preview(req("alice"), runs.REGISTRY.last("alice").ticket)
    assert last.label.startswith("Samples from the saved (EMA) weights after 20 steps")
    assert final_preview(req("alice"), "an older reservation's") == gr.skip()
    assert train_tab.show_training_data(req("bob"), "moons", None).label == train_tab.DATA_LABELS["2d"]
    assert not runs.REGISTRY.last("alice").preview_replaced.is_set()  # bob's pick is not alice's


def test_a_finished_run_frees_its_training_slot_before_its_final_preview_is_drawn(isolated, monkeypatch):
    """The final preview takes seconds (samples from the saved weights): `train_run` had waited for it, holding the
    training slot while the next visitor read "Waiting for a free training slot…"."""
    drawn = threading.Event()

    def slow_preview(*given):
        drawn.wait(30)
        return "the final preview"
    monkeypatch.setattr(train_worker, "final_preview", slow_preview)
    outputs = drain(train_tab.train_run(req("alice"), None, *args(steps=200)))
    run = runs.REGISTRY.last("alice")
    assert "Finished after 200 steps" in outputs[-1][0] and not run.previewed.is_set()
    # the last preview stays, saying that the final samples come next (on a busy server they took minutes, unsaid)
    assert outputs[-1][2].label.startswith("Samples from the EMA weights at step 150 · ")
    assert outputs[-1][2].label.endswith(" · " + train_tab.FINAL_COMING)
    drawn.set()
    assert final_preview(req("alice"), run.ticket) == "the final preview"


def test_a_final_preview_too_late_takes_its_promise_back(isolated, monkeypatch):
    """A final preview not drawn in `FINAL_WAIT_SECONDS` (the run's thread starved on a busy server): the label says
    so, rather than promising it for good; unless the preview shows other data by then."""
    drawn = threading.Event()
    monkeypatch.setattr(train_worker, "final_preview", lambda *given: drawn.wait(30) and "the final preview")
    monkeypatch.setattr(train_tab, "FINAL_WAIT_SECONDS", 0.3)
    drain(train_tab.train_run(req("alice"), None, *args(steps=20)))
    run = runs.REGISTRY.last("alice")
    assert final_preview(req("alice"), run.ticket).label == train_tab.FINAL_LATE_LABEL
    run.preview_replaced.set()  # other data chosen meanwhile
    assert final_preview(req("alice"), run.ticket) == gr.skip()
    drawn.set()


def test_a_run_stopped_too_soon_to_keep_says_its_samples_will_not_come(isolated, monkeypatch):
    monkeypatch.setattr(train_worker, "SHORTEST_KEPT", 10**9)  # nothing is kept
    gen = train_tab.train_run(req("alice"), None, *args(steps=20000))
    next(gen), next(gen), next(gen)  # loading, "Training on cpu…" with the promise of samples at step 50, progress
    status, trained = train_tab.stop_run(req("alice"), [])
    gen.close()  # as in the app: Stop cancels the streaming event
    assert "Nothing is saved" in status and trained == []
    assert final_preview(req("alice")).label == train_tab.NO_PREVIEW_LABEL  # it had kept the promise


def test_a_run_stopped_while_it_loads_leaves_the_training_data_in_the_preview(isolated):
    """Stop while the data loads: Gradio cancels the stream before "Training on…" and its promise of samples reach
    the page, so no "No samples" replaces the training data it shows."""
    gen = train_tab.train_run(req("alice"), None, *args(steps=20000))
    next(gen)  # "Loading data and building the model…", with the training data
    runs.REGISTRY.stop("alice")  # Stop (`stop_run` then waits for the run's end, which comes as the stream goes on)
    next(gen)  # the trainer is built; its first yield is the one Gradio drops
    gen.close()
    assert final_preview(req("alice")) == gr.skip()


def test_preview_plot_says_when_the_first_samples_come():
    assert train_figures.upcoming_previews(TrainConfig(steps=3000, preview_every=150)) == \
        "Samples from the EMA weights: the first after step 150, then every 150 steps"
    for no_preview_during_the_run in (TrainConfig(steps=100, preview_every=100), TrainConfig(steps=100)):
        assert train_figures.upcoming_previews(no_preview_during_the_run) == \
            "Samples from the EMA weights: at the end of the run"


def test_filmstrip_frames_are_the_first_the_newest_and_log_spread_between():
    assert train_figures.filmstrip_frames(20) == [0, 1, 2, 5, 10, 19]  # steps 1, 2, 3, 6, 11, 20 × every
    assert train_figures.filmstrip_frames(7) == [0, 1, 2, 3, 4, 6]  # pushed apart where the ideal ones coincide
    for n in range(1, 80):
        frames = train_figures.filmstrip_frames(n)
        assert len(frames) == min(n, train_figures.FILMSTRIP_FRAMES) and frames[0] == 0 and frames[-1] == n - 1
        assert all(a < b for a, b in zip(frames, frames[1:]))


def test_filmstrip_shows_the_chosen_previews_with_their_steps():
    images = [torch.rand(16, 1, 28, 28) * 2 - 1 for _ in range(8)]
    previews = [(50 * (i + 1), x) for i, x in enumerate(images)]
    assert train_figures.filmstrip_plot("image", previews[:1]).visible is False  # the preview plot shows it
    plot = train_figures.filmstrip_plot("image", previews)
    fig = figures.as_figure(plot)
    titles = [a.text for a in fig.layout.annotations]
    assert plot.visible and titles == ["step 50", "step 100", "step 150", "step 200", "step 250", "step 400"]
    assert [t.source for t in fig.data] == [png_data_uri(image_grid(images[i], 4)) for i in (0, 1, 2, 3, 4, 7)]
    assert "6 of this run's 8 previews" in plot.label
    # 2D: the samples as pictures
    clouds = [(100, torch.randn(1000, 2)), (200, torch.randn(1000, 2) * 0.5)]
    plot = train_figures.filmstrip_plot("2d", clouds)
    fig = figures.as_figure(plot)
    assert [a.text for a in fig.layout.annotations] == ["step 100", "step 200"] and len(fig.layout.images) == 2
    assert "all this run's 2 previews" in plot.label
    assert fig.layout.images[0].source != fig.layout.images[1].source


def test_a_run_fills_its_filmstrip_with_its_previews(isolated):
    outputs = drain(train_tab.train_run(req("alice"), None, *args(steps=400)))
    assert outputs[0][4].visible is False  # a new run hides the last run's filmstrip
    steps = [int(re.search(r"at step (\d+)", o[2].label).group(1)) for o in outputs
             if isinstance(o[2], gr.Plot) and "at step" in o[2].label and o[2].value is not None]  # a figure
    assert steps == [50, 100, 150, 200, 250, 300, 350]  # every 50 steps (400 // 20 < 50), short of the last
    strips = [o[4] for o in outputs[1:] if isinstance(o[4], gr.Plot)]
    assert [s.visible for s in strips] == [False] + [True] * 6  # from the second preview on, one strip each
    titles = [a.text for a in figures.as_figure(strips[-1]).layout.annotations]
    assert titles == ["step 50", "step 100", "step 150", "step 200", "step 250", "step 350"]


def test_a_finished_runs_filmstrip_goes_when_the_preview_shows_other_data(isolated):
    """After a run on MNIST, Two moons picked: the preview showed the moons and the filmstrip beneath it the run's
    digits, "this run's previews". It goes with the samples it belonged to; a run's own preview keeps it."""
    assert train_tab.filmstrip_after_other_data(req("alice")) == gr.skip()  # no run yet: nothing to hide
    drain(train_tab.train_run(req("alice"), None, *args(steps=200)))
    assert train_tab.filmstrip_after_other_data(req("alice")) == gr.skip()  # the run's samples are still on view
    shown, _ = train_tab.data_changed(req("alice"), "moons", None, 500, 0)
    assert isinstance(shown, gr.Plot)
    assert train_tab.filmstrip_after_other_data(req("alice")).visible is False
    assert train_tab.filmstrip_after_other_data(req("bob")) == gr.skip()  # another browser's strip is its own
    from app import build_app

    hides = [d for d in build_app().fns.values() if getattr(d.fn, "__name__", "") == "filmstrip_after_other_data"]
    assert len(hides) == 5 and all(d.outputs[0].elem_id == "train-filmstrip" for d in hides)  # every new preview


def test_data_picked_during_a_run_leaves_its_final_samples_in_place(isolated, monkeypatch):
    """Swiss roll picked while a moons run trains: the preview stays the run's. After the run, leaving the (unchanged)
    Training points box had shown the swiss roll over the run's final samples: the entry of the skipped change
    had been recorded as None, which no entry equals."""
    monkeypatch.setattr(train_worker, "SHORTEST_KEPT", 1)
    gen = train_tab.train_run(req("alice"), None, *args(steps=20000))
    next(gen), next(gen)  # loading, then the first progress update: the run trains
    plot, shown = train_tab.data_changed(req("alice"), "swiss_roll", None, 500, 0)
    assert plot == gr.skip() and shown == ("swiss_roll", 500, 0)
    train_tab.stop_run(req("alice"), [])
    assert "Stopped after" in drain(gen)[-1][0]
    assert train_tab.toy_points_changed(req("alice"), "swiss_roll", None, 500, 0, shown, None) == (
        gr.skip(), shown, None)  # the box left as it was: the final samples stay
    plot, shown, _ = train_tab.toy_points_changed(req("alice"), "swiss_roll", None, 400, 0, shown, None)
    assert isinstance(plot, gr.Plot) and shown == ("swiss_roll", 400, 0)  # a new entry shows the data


def test_short_run_streams_and_saves_for_that_user_only(isolated):
    outputs = drain(train_tab.train_run(req("alice"), None, *args()))
    cleared = outputs[0][2]  # a new run replaces the last run's samples with the training data
    assert cleared.label == train_tab.DATA_LABELS["2d"] and trace_names(cleared) == ["training data"]
    # every preview names the weights, the step and the sampler; the last one comes from the saved weights
    previews = [o[2] for o in outputs[1:] if isinstance(o[2], gr.Plot) and o[2].value is not None]  # figures
    labels = [plot.label.removesuffix(f" · {train_tab.FINAL_COMING}") for plot in previews]  # a last batch's note
    assert "Samples from the EMA weights at step 50 · DDPM, all T = 100 steps" in labels, labels  # 100 ≥ T
    assert labels[0] == "Training data (grey) · Samples from the EMA weights: the first after step 50, then every " \
        "50 steps · DDPM, all T = 100 steps"  # until the first preview comes
    # the samples are drawn over the run's own training data
    data, _ = load_training_data("swiss_roll", seed=0)
    for plot in previews:
        fig = figures.as_figure(plot)
        assert np.allclose(np.c_[fig.data[0].x, fig.data[0].y], data[:train_plan.PREVIEW_POINTS], rtol=DRAWN_RTOL)
    assert all(trace_names(plot) == ["training data", "samples"] for plot in previews[1:])
    assert train_figures.chain_caption("ddpm", 100, "log_snr", 1000) == "DDPM, 100 of T = 1000 steps, evenly in log-SNR"
    assert labels[-1] == "Samples from the EMA weights at step 50 · DDPM, all T = 100 steps"  # the stream's last
    assert outputs[-1][2].label == f"{labels[-1]} · {train_tab.FINAL_COMING}"  # which stays till the final comes
    assert final_preview(req("alice")).label == \
        "Samples from the saved (EMA) weights after 60 steps · DDPM, all T = 100 steps"
    counts = [loss_points(o[1]) for o in outputs if not isinstance(o[1], dict)]
    assert len(counts) >= 3 and counts[-1] == 60
    assert counts == sorted(counts) and len(set(counts)) >= 2  # the curve grows while it streams
    errors = [figures.as_figure(o[3]) for o in outputs if not isinstance(o[3], dict)]
    assert not errors[0].data, "a new run clears the last run's error by t"
    final = errors[-1].data[0]  # the end event's means: every t of 1..T = 100 was drawn (60 × 64 draws)
    assert len(final.y) == LOSS_BUCKETS and all(0 < v < 10 for v in final.y)
    status, *_, trained = outputs[-1]
    assert "Finished after 60 steps" in status
    assert len(trained) == 1 and Path(trained[0]).parent == runs.user_dir("alice")
    assert list_checkpoints(runs.user_dir("alice")) == [Path(trained[0])]
    assert list_checkpoints(runs.user_dir("bob")) == []
    config = json.loads((Path(trained[0]) / "config.json").read_text())
    assert config["training"]["end_reason"] == "finished" and config["training"]["steps_done"] == 60
    # the Reverse tab lists it for alice's State only
    assert any(v == trained[0] for _, v in checkpoint_access.checkpoint_choices(trained))
    assert all(v != trained[0] for _, v in checkpoint_access.checkpoint_choices([]))


def niceness(thread_id: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, thread_id)


@pytest.mark.skipif(sys.platform != "linux", reason="a nice value per thread (Linux)")
def test_a_run_trains_at_a_lower_cpu_priority_than_the_pages(isolated):
    """The pages' scrubs and Generates, and the browser on the lecturer's own laptop, come before a run: its thread
    runs at nice TRAINING_NICENESS, the server's own threads as they were."""
    base, seen = niceness(threading.get_native_id()), set()  # 0, unless the tests themselves run under nice
    for _ in train_tab.train_run(req("nice"), None, *args(steps=300)):
        seen |= {niceness(t.native_id) for t in threading.enumerate() if t.name.startswith("train-") and t.native_id}
    assert seen == {max(base, runs.TRAINING_NICENESS)}
    assert niceness(threading.get_native_id()) == base


def test_a_run_computes_on_all_the_cores_and_says_so(monkeypatch):
    """In `python app.py` each thread of the server computes on one core (`app.torch_threads`); a run's thread takes
    all of them (on 2 cores, 2.3× the 2D steps per second and 1.4× MNIST's: `bench/bench_threads.py`)."""
    monkeypatch.setattr(torch_threads, "_cores", 2)  # as after `one_core_per_request` on a 2-core machine
    seen, run = [], Trainer.run

    def counted(self):
        seen.append(torch.get_num_threads())
        yield from run(self)

    monkeypatch.setattr(Trainer, "run", counted)
    before, statuses = torch.get_num_threads(), []
    try:
        for update in train_tab.train_run(req("cores"), None, *args(steps=20)):
            statuses.append(str(update[0]))
    finally:
        torch.set_num_threads(before)
    assert seen == [2]
    assert any(" 2 threads)" in status for status in statuses), statuses  # the run's, not the page's 1


@pytest.mark.skipif(sys.platform != "linux", reason="a nice value per thread, read through /proc (Linux)")
def test_torchs_threads_started_by_a_yielding_thread_yield_too():
    """torch's parallel workers started from the training thread inherit its nice value (Linux: per thread, inherited
    at creation), so a run on several cores yields on each."""
    def tasks() -> set[int]:
        return {int(task) for task in os.listdir("/proc/self/task")}

    base, before, started, ok = niceness(threading.get_native_id()), tasks(), {}, []

    def train_like():
        ok.append(runs.yield_cpu_to_the_pages())
        a = torch.randn(256, 256)
        for _ in range(20):
            a = torch.tanh(a @ a)  # parallel work: torch's threads for this thread start here
        started.update({task: niceness(task) for task in tasks() - before - {threading.get_native_id()}})

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        worker = threading.Thread(target=train_like)
        worker.start()
        worker.join()
    finally:
        torch.set_num_threads(threads)
    assert ok == [True] and len(started) >= 1, started  # torch's worker(s) for this thread
    assert set(started.values()) == {max(base, runs.TRAINING_NICENESS)}, started
    assert niceness(threading.get_native_id()) == base


def test_the_plots_are_redrawn_at_most_every_plot_seconds_and_at_the_end(isolated, monkeypatch):
    """Gradio draws each update of a plot on a new plot (~0.1 s of the browser's main thread): the status streams
    at every poll, the loss and error plots at most every PLOT_SECONDS, and the end of the run sends them whole."""
    monkeypatch.setattr(train_tab, "PLOT_SECONDS", 3600.0)
    outputs = drain(train_tab.train_run(req("alice"), None, *args(steps=300)))
    streaming = [o for o in outputs if re.search(r"Step \d+ / 300", re.sub("<[^>]+>", "", o[0]))]
    assert len(streaming) >= 3, [o[0] for o in outputs]
    plotted = [o for o in streaming if not isinstance(o[1], dict)]
    assert plotted == streaming[:1]  # the first update only, within the hour
    assert all(isinstance(o[3], dict) for o in streaming[1:])  # the error plot alike
    ended = [o for o in outputs if "Finished after 300 steps" in o[0]]
    assert ended and all(loss_points(o[1]) == 300 and not isinstance(o[3], dict) for o in ended)


def sketch(alpha: np.ndarray) -> dict:
    """A Sketchpad value (type "numpy", RGBA): an opaque white background, the strokes on a layer."""
    background = np.full((*alpha.shape, 4), 255, dtype=np.uint8)
    layer = np.zeros((*alpha.shape, 4), dtype=np.uint8)
    layer[..., 2], layer[..., 3] = 153, alpha
    return {"background": background, "layers": [layer], "composite": background}


def ring(side: int = 256) -> np.ndarray:
    """The alpha of a ring of radius 80 px, 10 px wide, drawn around the canvas centre."""
    rows, cols = np.mgrid[:side, :side]
    radius = np.hypot(rows - side / 2, cols - side / 2)
    return np.where(np.abs(radius - 80) < 5, 255, 0).astype(np.uint8)


def test_a_drawing_too_large_is_refused_in_words_and_pillow_refuses_to_decode_a_huge_one(tmp_path):
    """A Sketchpad value sent through the API: a 560 kB PNG layer of 12,000 × 12,000 pixels had taken 2 GB as Gradio
    decoded it and the app made floats of it, and was then dropped without a word."""
    with pytest.raises(gr.Error, match=r"A drawing may be at most 4096 pixels a side; got layers of 5000 × 300 pixels"):
        train_tab.drawing_changed(req("alice"), sketch(np.zeros((300, 5000), dtype=np.uint8)))
    huge = tmp_path / "huge.png"
    PIL.Image.new("1", (7000, 7000)).save(huge)  # 49 MP in a few kB
    box = gr.Sketchpad(type="numpy", image_mode="RGBA")
    with pytest.raises(PIL.Image.DecompressionBombError):
        box.preprocess(box.data_model(background=None, layers=[{"path": str(huge)}], composite=None))
    # the app's box reads the layers' number and sizes from their headers before Gradio decodes them: 20 layers of
    # 6,300 × 6,300 (under Pillow's limit) had taken 3 GB and 17 s of CPU before the size was refused
    boxes = {b.elem_id: b for b in app.build_app().blocks.values() if isinstance(b, gr.Sketchpad)}
    # the Train tab's points, the Reverse tab's start and its inpainting's painted part, and the hidden copies their
    # handlers read (`own_points.box_reader`)
    shown = {"train-drawing", "reverse-drawing", "reverse-inpaint-paint"}
    assert set(boxes) == shown | {f"{name}-copy" for name in shown}
    large, small, words = tmp_path / "large.png", tmp_path / "small.png", tmp_path / "words.png"
    PIL.Image.new("1", (6300, 6300)).save(large)
    PIL.Image.new("RGBA", (256, 256)).save(small)
    words.write_text("not a picture")
    for box in boxes.values():

        def sent(*layers: Path):
            return box.data_model(background=None, layers=[{"path": str(p)} for p in layers], composite=None)

        for layers, message in [((small,) * 5, "A drawing has at most 4 layers; got 5"),
                                ((large,), "at most 4096 pixels a side; got 6300 × 6300 pixels"),
                                ((huge,), "at most 4096 pixels a side; got a far larger picture"),
                                ((small, words), "must be pictures \\(PNG or WebP\\); one is not")]:
            with pytest.raises(gr.Error, match=message):
                box.preprocess(sent(*layers))
        assert box.preprocess(sent(small))["layers"][0].shape == (256, 256, 4)


def test_a_drawing_becomes_the_sessions_training_points_and_its_preview():
    own, plot = train_tab.drawing_changed(req("alice"), sketch(ring()))
    assert own.points.shape == (DEFAULT_TOY_POINTS, 2) and own.info.name == "drawing" and own.info.kind == "2d"
    assert abs(float(own.points.mean())) < 1e-4 and abs(float(own.points.pow(2).mean().sqrt()) - 1) < 1e-4
    centre = torch.tensor([128.5, 127.5])  # pixel (row 128, column 128): x = column + ½, y = 256 − row − ½
    radius = (own.info.to_data_coordinates(own.points) - centre).norm(dim=1)  # back in canvas pixels
    assert bool(((radius > 74) & (radius < 86)).all()), "every point lies on the ring's stroke"
    assert plot.label == f"{train_tab.DATA_LABELS['2d']} · 10,000 points, drawn in the Train tab"
    fig = figures.as_figure(plot)
    assert np.allclose(np.c_[fig.data[0].x, fig.data[0].y], own.points[:train_plan.PREVIEW_POINTS], rtol=DRAWN_RTOL)
    for nothing in (None, sketch(np.zeros((256, 256), dtype=np.uint8)), sketch(np.pad(ring(8), 124))):
        own, plot = train_tab.drawing_changed(req("alice"), nothing)  # none, erased, or a speck too small
        assert own is None and plot.label == train_tab.OWN_HINT and not figures.as_figure(plot).data
    runs.REGISTRY.reserve("alice")  # while alice's run uses the plot, drawing leaves it alone
    assert train_tab.drawing_changed(req("alice"), sketch(ring()))[1] == gr.skip()
    assert train_tab.show_training_data(req("bob"), train_tab.OWN_POINTS, None).label == train_tab.OWN_HINT


def test_an_uploaded_csv_becomes_the_training_points_and_a_bad_one_says_why(tmp_path):
    rng = np.random.default_rng(0)
    xy = np.r_[rng.normal(-10, 1, (100, 2)), rng.normal(10, 1, (100, 2))]  # in file order: one blob, then the other
    np.savetxt(tmp_path / "two blobs.csv", xy, delimiter=",", header="x,y", comments="")
    own, data, plot = train_tab.csv_uploaded(req("alice"), str(tmp_path / "two blobs.csv"))
    assert data == train_tab.OWN_POINTS and own.info.source == "two blobs.csv (uploaded)"
    for nothing in (None, sketch(np.zeros((256, 256), dtype=np.uint8))):  # and emptying it keeps the file's points
        assert train_tab.drawing_changed(req("alice"), nothing, own) == (gr.skip(), gr.skip())
    drawn, _ = train_tab.drawing_changed(req("alice"), sketch(ring()), own)  # a new drawing replaces them
    assert drawn.drawn and drawn.info.name == "drawing"
    assert train_tab.drawing_changed(req("alice"), None, drawn)[0] is None  # and a cleared box empties a drawing's
    assert own.info.name == "two_blobs"
    back = own.info.to_data_coordinates(own.points).double().numpy()
    assert np.allclose(np.sort(back, axis=0), np.sort(xy, axis=0), atol=1e-4), "the file's points"
    assert 10 < (back[:50, 0] > 0).sum() < 40, "shuffled: the first points (the preview's) come from both"
    assert plot.label.endswith("200 points, two blobs.csv (uploaded)")
    (tmp_path / "words.csv").write_text("name,city\nada,london\nalan,wilmslow\n")
    (tmp_path / "few.csv").write_text("1,2\n3,4\n")
    (tmp_path / "binary.csv").write_bytes(bytes(range(256)))
    excel = "Länge,Höhe\n" + "".join(f"{x:.3f},{y:.3f}\n" for x, y in xy)  # Excel on Windows: Windows-1252
    (tmp_path / "excel.csv").write_bytes(excel.encode("cp1252"))
    own, *_ = train_tab.csv_uploaded(req("alice"), str(tmp_path / "excel.csv"))
    assert len(own.points) == 200
    for name, message in [("words.csv", r"holds no \(x, y\) rows: none of its 3 lines starts with two numbers"),
                          ("few.csv", "at least 16 points"),
                          ("binary.csv", "not a text file")]:
        with pytest.raises(gr.Error, match=f"{name}.*{message}"):
            train_tab.csv_uploaded(req("alice"), str(tmp_path / name))


def test_a_run_on_drawn_points_trains_on_them_and_its_checkpoint_keeps_them(isolated):
    with pytest.raises(gr.Error, match="No points to learn yet"):
        train_tab.prepare_run(req("alice"), *args(data=train_tab.OWN_POINTS))
    assert train_tab.kind_defaults(train_tab.OWN_POINTS, "")[0] == "mlp"
    own, _ = train_tab.drawing_changed(req("alice"), sketch(ring()))
    outputs = drain(train_tab.train_run(req("alice"), None, *args(data=train_tab.OWN_POINTS, own=own)))
    status, *_, trained = outputs[-1]
    assert "Finished after 60 steps" in status and "drawing-linear-T100-" in trained[0]
    previews = [o[2] for o in outputs if isinstance(o[2], gr.Plot) and o[2].value is not None]
    fig = figures.as_figure(previews[-1])  # the samples are drawn over the drawing's points
    assert np.allclose(np.c_[fig.data[0].x, fig.data[0].y], own.points[:train_plan.PREVIEW_POINTS], rtol=DRAWN_RTOL)
    checkpoint = load_checkpoint(trained[0])
    assert checkpoint.data == own.info and torch.equal(checkpoint.points, own.points)

    # with the drawing box cleared, starting from the checkpoint brings its points back
    info, data, *_, restored, plot = train_tab.start_from_selected(req("alice"), trained[0], trained, None)
    assert data == train_tab.OWN_POINTS and restored.info == own.info and torch.equal(restored.points, own.points)
    assert "10,000 training points are back as **your own points**" in info
    assert plot.label.endswith("10,000 points, drawn in the Train tab")
    outputs = drain(train_tab.train_run(req("alice"), None, *args(data=train_tab.OWN_POINTS, own=restored, steps=3,
                                                           start_from=trained[0], trained=trained)))
    status, *_, continued = outputs[-1]
    assert "Finished after 3 steps" in status
    assert torch.equal(load_checkpoint(continued[-1]).points, own.points)
    # points of the session's own are kept, and the info says which points a run will use
    info, data, *_, kept, plot = train_tab.start_from_selected(req("alice"), trained[0], trained, own)
    assert data == train_tab.OWN_POINTS and kept == gr.skip() and plot == gr.skip() and "back" not in info
    other, _ = train_tab.drawing_changed(req("alice"), sketch(np.pad(ring(128), 64)))
    info, data, *_, kept, _ = train_tab.start_from_selected(req("alice"), trained[0], trained, other)
    assert kept == gr.skip() and "continues on your own points as they are now" in info


def test_a_run_that_deletes_the_oldest_model_says_so(isolated, monkeypatch):
    monkeypatch.setenv("DDPM_MAX_RUNS_PER_USER", "1")
    *_, (status, *_, trained) = drain(train_tab.train_run(req("alice"), None, *args(steps=1)))
    assert "Finished after 1 step." in status and "deleted" not in status  # one step, not "1 steps"
    status, again = train_tab.stop_run(req("alice"), trained)  # Stop after the run has ended
    assert "No training run to stop; the last one has ended. Finished after 1 step." in status and again == trained
    assert 'data-tone="ok"' in status
    first = Path(trained[0])
    # said before the run too (a student's homework models went, and it was said only afterwards)
    before, _ = train_tab.prepare_run(req("alice"), *args(steps=2, trained=trained))
    runs.REGISTRY.release("alice")
    will = f"This server keeps your 1 newest model: the oldest, {first.name}, will be deleted when this run saves"
    assert will in before
    outputs = drain(train_tab.train_run(req("alice"), None, *args(steps=2, trained=trained)))
    status, *_, trained = outputs[-1]
    assert will in outputs[0][0] and will not in status  # while it trains; its end says what happened
    assert not first.exists() and Path(trained[-1]).is_dir()
    assert f"This server keeps your 1 newest model: the oldest, {first.name}, is deleted" in status, status


def test_a_run_that_fails_and_whose_losses_cannot_be_read_still_ends(isolated, monkeypatch):
    """After a device error that stays set (a CUDA assert), reading the last losses fails again: the worker thread had
    died with it, and the page polled for good."""
    from core.trainer import Trainer

    def broken_run(self):
        self.train_step()
        raise RuntimeError("device-side assert triggered")

    def broken_read(self):
        raise RuntimeError("device-side assert triggered")
    monkeypatch.setattr(Trainer, "run", broken_run)
    monkeypatch.setattr(Trainer, "read_losses", broken_read)
    outputs: list = []
    stream = threading.Thread(target=lambda: outputs.extend(train_tab.train_run(req("alice"), None, *args(steps=5))))
    with pytest.warns(UserWarning, match="Training failed"):
        stream.start()
        stream.join(timeout=60)  # without the fix, for good
    assert not stream.is_alive() and runs.REGISTRY.active("alice") is None
    assert "Training failed: RuntimeError: device-side assert triggered" in outputs[-1][0]


def test_a_run_whose_end_message_fails_still_ends_and_frees_the_browsers_slot(isolated, monkeypatch):
    """Without `finish` and DONE, the page's stream would poll for good and the browser could never start again."""
    def broken(*_):
        raise RuntimeError("a bug in the message")
    monkeypatch.setattr(train_worker, "_end_message", broken)
    *_, (status, *_, trained) = drain(train_tab.train_run(req("alice"), None, *args(steps=2)))
    assert "Training ended, but the server could not say how" in status and 'data-tone="error"' in status
    assert len(trained) == 1  # saved before the message
    assert runs.REGISTRY.active("alice") is None
    *_, (status, *_) = drain(train_tab.train_run(req("alice"), None, *args(steps=1, trained=trained)))
    assert "Training ended" in status  # it started again


def test_a_run_on_a_chain_that_does_not_reach_noise_is_told_so_before_it_starts(isolated):
    """T = 50 with β left unscaled: ᾱ_T = 0.6, flagged in the Forward and Schedules tabs, trained without a word."""
    params = list(PARAMS)
    params[2] = False  # the linear schedule's "scale β by 1000/T"
    plan = train_plan.make_plan(*args(T=50)[:15], params)
    assert any("this chain does not reach noise" in note and "tick “scale β by 1000/T”" in note for note in plan.notes)
    assert not any("reach noise" in note for note in train_plan.make_plan(*args(T=50)[:15], PARAMS).notes)
    import core.train  # its command, quoted for a shell, gives the command line the same schedule parameter

    command = train_plan.cli_command(plan, "runs/my run")
    parsed = core.train.build_parser().parse_args(shlex.split(command)[3:])
    assert parsed.param == ["scale_with_T=false"] and str(parsed.out) == "runs/my run", command


def test_stop_is_per_user_and_keeps_the_model(isolated, monkeypatch):
    monkeypatch.setattr(train_worker, "SHORTEST_KEPT", 1)  # saved however early it stops (not so in the app)
    gen = train_tab.train_run(req("alice"), None, *args(steps=20000))
    outputs = [next(gen), next(gen)]  # loading, then the first progress update
    status, trained = train_tab.stop_run(req("mallory"), [])
    assert "No training run" in status  # another session cannot stop alice's run
    assert runs.REGISTRY.active("alice") is not None
    status, trained = train_tab.stop_run(req("alice"), [])
    assert "Stopped after" in status and len(trained) == 1
    assert 'class="train-progress"' in status  # the bar stays (the plots below had moved up when it went)
    again, kept = train_tab.stop_run(req("alice"), trained)  # a double click: the second Stop says what the first did
    assert again == status and kept == trained
    outputs += drain(gen)
    assert "Stopped after" in outputs[-1][0]
    config = json.loads((Path(trained[0]) / "config.json").read_text())
    assert config["training"]["end_reason"] == "stopped" and 0 < config["training"]["steps_done"] < 20000
    assert runs.REGISTRY.active("alice") is None


def test_image_run_stopped_before_its_first_preview_still_ends_with_one(isolated, monkeypatch, shared_data):
    monkeypatch.setattr(train_worker, "SHORTEST_KEPT", 1)  # saved however early it stops (not so in the app)
    monkeypatch.setenv("DDPM_DATA_DIR", str(shared_data))
    gen = train_tab.train_run(req("alice"), None, *args(data="mnist", model="tiny", steps=20000, batch=4))
    next(gen), next(gen)  # loading, then the first progress update: long before the first in-run preview
    status, trained = train_tab.stop_run(req("alice"), [])
    assert "Stopped after" in status and len(trained) == 1
    gen.close()  # as in the app: Stop cancels the streaming event
    final = final_preview(req("alice"))
    assert re.fullmatch(r"Samples from the saved \(EMA\) weights after [\d,]+ steps? · DDIM, 50 of T = 100 steps, evenly in t"
                        r" · the MNIST classifier reads ([1-9]|10) of its 10 classes", final.label), final.label
    assert figures.picture_source(figures.as_figure(final)).startswith("data:image/")  # 16 samples, saved weights
    assert final_preview(req("bob")) == gr.skip()  # another session gets nothing


MNIST_INFO = DataInfo(name="mnist", kind="image", shape=(1, 28, 28))


def test_image_previews_say_how_many_classes_the_shipped_classifier_reads():
    digits, noise = mnist_digits(16), torch.randn(16, 1, 28, 28, generator=torch.Generator().manual_seed(0)).clamp(-1, 1)
    assert train_figures.preview_plot(digits, digits, "Samples", MNIST_INFO).label == \
        "Samples · the MNIST classifier reads 8 of its 10 classes"  # the first 16 test digits: 7 2 1 0 4 1 4 9 5 9 0 6 …
    assert train_figures.preview_plot(noise, digits, "Samples", MNIST_INFO).label == \
        "Samples · the MNIST classifier reads 1 of its 10 classes"  # noise reads as one class
    fashion = DataInfo(name="fashion_mnist", kind="image", shape=(1, 28, 28))
    assert train_figures.preview_plot(digits, digits, "Samples", fashion).label == "Samples"  # none shipped
    points = torch.zeros(5, 2)
    assert train_figures.preview_plot(points, points, "Samples", DataInfo(name="moons", kind="2d", shape=(2,))).label == \
        "Samples"


def test_a_run_whose_samples_are_not_finite_says_so_in_its_preview(isolated):
    """One step at the largest learning rate: saved, and its preview had been empty without a word (Generate then
    refused the model)."""
    status, *_ = drain(train_tab.train_run(req("alice"), None, *args(steps=1, batch=1, lr=1000)))[-1]
    assert "Finished after 1 step" in status
    label = final_preview(req("alice"), runs.REGISTRY.last("alice").ticket).label
    assert re.search(r" · ⚠ ([\d,]+) of \1 samples are not finite numbers \(NaN or ±∞\): the model breaks down when "
                     "sampled$", label), label
    bad = torch.tensor([[0.0, 1.0], [float("nan"), 0.0], [float("inf"), 1.0]])
    label = train_figures.preview_plot(bad, bad, "Samples", DataInfo(name="moons", kind="2d", shape=(2,))).label
    assert label == "Samples · ⚠ 2 of 3 samples are not finite numbers (NaN or ±∞): the model breaks down when sampled"


def test_a_conditional_runs_previews_show_one_class_per_column_and_count_those_of_their_class(shared_data):
    images, labels, _ = load_labelled_data("mnist", root=shared_data, limit=500)
    in_order = torch.stack([images[labels == k % 10][k // 10] for k in range(20)])  # 0 1 … 9, 0 1 … 9
    classes = [str(k) for k in range(10)]
    plot = train_figures.preview_plot(in_order, images, "Samples", MNIST_INFO, classes)
    read = re.fullmatch(r"Samples · one column per class \(0 … 9\) · (\d+) of 20 read by the shipped classifier as "
                        r"their class", plot.label)
    assert read and int(read.group(1)) >= 18, plot.label  # real digits: the classifier errs on about 1 in 100
    assert figures.picture_source(figures.as_figure(plot)).startswith("data:image/")
    shifted = torch.roll(in_order, 1, dims=0)  # every digit one column off its class
    assert train_figures.preview_plot(shifted, images, "Samples", MNIST_INFO, classes).label.endswith(
        "· 0 of 20 read by the shipped classifier as their class")


def test_the_registry_remembers_the_last_runs_of_the_newest_browsers_only():
    """Each browser's last ended run stays for a reloaded page to say how it ended; a public server sees a new
    browser per visitor, and these runs (each with its final preview) had piled up for as long as it ran."""
    registry = runs.RunRegistry(kept=3)
    for key in ("a", "b", "c", "d"):
        registry.finish(registry.claim(key))
    assert registry.last("a") is None and [registry.last(k).key for k in "bcd"] == ["b", "c", "d"]
    registry.finish(registry.claim("b"))  # b's new run: b is now the newest, c the oldest
    registry.stop(registry.reserve("e").key)  # stopped while it waited: an ended run too
    assert registry.last("c") is None and registry.last("e").message == "Stopped before it started."
    assert {k for k in "bde" if registry.last(k) is not None} == {"b", "d", "e"}


def test_a_start_that_waits_says_for_what_and_about_how_long(isolated, monkeypatch):
    monkeypatch.setenv("DDPM_MAX_TRAIN_SECONDS", "600")
    assert train_tab.waiting_text("bob").startswith("Waiting for a free training slot… (other runs")  # none ahead
    alice = runs.REGISTRY.claim("alice")
    # before its first step, its pace is unknown (its whole time limit had been said: "about 10 min 00 s")
    assert train_tab.waiting_text("bob").endswith(
        "trains now. It has only just started: its pace, and so its end, is known after its first steps; a run here "
        "takes 10 min 00 s at most.")
    alice.progress = types.SimpleNamespace(step=100, total_steps=1100, elapsed=10.0)  # 10 steps/s: 100 s to go
    runs.REGISTRY.reserve("carol")
    text = train_tab.waiting_text("bob")
    # with the time on the server's clock: the words stay on the page while the run trains on
    end = time.strftime("%H:%M:%S %Z", time.localtime(time.time() + 100)).strip()
    assert text.replace(end, "END") == (
        "Waiting for a free training slot: 1 run of other visitors trains now, and 1 more waits before yours. The "
        "first should end in about 1 min 40 s (at END on the server's clock); a run here takes 10 min 00 s at most."), text
    alice.progress = types.SimpleNamespace(step=100, total_steps=100_000, elapsed=550.0)  # its time limit comes first
    assert "the first should end in about 50 s (at " in train_tab.waiting_text("bob").lower()
    assert train_tab.waiting_text("alice").startswith("Waiting for a free training slot… (")  # its own run: not ahead


def test_a_reservation_that_no_open_page_waits_on_is_dropped(isolated, monkeypatch):
    """A bare API call's `/prepare_run`, never followed by `/train_run`, had held its slot in the queue for good: every
    other visitor's wait text counted it ahead of theirs, and a new session per call piled them up. Once older than
    `ORPHAN_SECONDS` it goes; a waiting page's own stays as long as the page is open."""
    monkeypatch.setenv("DDPM_MAX_TRAIN_SECONDS", "600")
    alice = runs.REGISTRY.claim("alice")
    alice.progress = types.SimpleNamespace(step=100, total_steps=1100, elapsed=10.0)
    runs.adopt_owner(req("carol-page"), None)  # carol's page loaded: its Start waits as long as it takes
    carol = runs.REGISTRY.reserve("carol", page="carol-page")
    script = runs.REGISTRY.reserve("nosession-1")  # an API call: no page
    bob = runs.REGISTRY.reserve("bob", page="bob-page")
    assert "and 2 more wait before yours" in train_tab.waiting_text("bob")
    carol.since -= runs.ORPHAN_SECONDS + 1
    script.since -= runs.ORPHAN_SECONDS + 1
    assert "and 1 more waits before yours" in train_tab.waiting_text("bob")  # carol's only
    assert runs.REGISTRY.active("nosession-1") is None and script.done.is_set()
    assert runs.REGISTRY.active("carol") is carol and not carol.done.is_set()
    assert runs.REGISTRY.active("bob") is bob  # not yet old: kept whatever its page
    runs.REGISTRY.claim("nosession-1", script.ticket)  # should its /train_run come after all, it trains
    assert runs.REGISTRY.active("nosession-1").started


def test_a_waiting_start_says_again_what_is_ahead_until_it_starts(isolated, monkeypatch):
    """The wait text was written once, at Start: while a lecture's runs ended and others moved up, it kept the count
    and the estimate of then. The wait timer now says it again, with Start's warnings, until the run starts."""
    monkeypatch.setenv("DDPM_MAX_TRAIN_SECONDS", "600")
    alice = runs.REGISTRY.claim("alice")
    alice.progress = types.SimpleNamespace(step=100, total_steps=1100, elapsed=10.0)
    runs.REGISTRY.reserve("carol")
    monkeypatch.setenv("DDPM_MAX_TRAIN_STEPS", "100")
    status, _ = train_tab.prepare_run(req("bob"), *args(steps=200))  # a warning at Start
    assert "1 more waits before yours" in status and "allows at most 100" in status
    runs.REGISTRY.reserve("dave")  # behind bob's: not counted (the next in the queue had been told one was ahead)
    assert "1 more waits before yours" in train_tab.waiting_status(req("bob"))[0]
    alice.progress = types.SimpleNamespace(step=600, total_steps=1100, elapsed=60.0)  # 50 s to go now
    runs.REGISTRY.stop("carol")  # the run ahead of bob's went
    status, timer = train_tab.waiting_status(req("bob"))
    assert "1 run of other visitors trains now. The first should end in about 50 s" in status, status
    assert "1 more waits" not in status and "allows at most 100" in status and timer.active is True
    runs.REGISTRY.claim("bob")  # its turn came: the run's own status takes over
    status, timer = train_tab.waiting_status(req("bob"))
    assert status == gr.skip() and timer.active is False
    runs.REGISTRY.stop("bob")
    assert train_tab.waiting_status(req("carol"))[1].active is False  # nothing waits


def test_sampling_jobs_have_a_queue_of_their_own():
    """Training and sampling shared one queue: a Generate pressed while thirty students' runs waited for the slot
    waited behind all of them (its note counted only the first). Every sampling job of the Reverse tab now waits in
    the sampling queue, the runs in the training queue, each DDPM_HEAVY_CONCURRENCY at once."""
    demo = build_app()
    fns = list(demo.fns.values())
    training = [d for d in fns if d.concurrency_id == runs.TRAINING_CONCURRENCY_ID]
    sampling = [d for d in fns if d.concurrency_id == runs.SAMPLING_CONCURRENCY_ID]
    assert [getattr(d.fn, "__name__", "") for d in training] == ["train_run"]
    assert len({target for d in sampling for target in d.targets}) >= 12 and "train_run" not in {
        getattr(d.fn, "__name__", "") for d in sampling}
    assert {d.concurrency_limit for d in training + sampling} == {runs.heavy_concurrency()}


def test_second_start_while_running_raises(isolated):
    gen = train_tab.train_run(req("alice"), None, *args(steps=20000))
    next(gen), next(gen)
    with pytest.raises(gr.Error, match="already running") as caught:
        train_tab.prepare_run(req("alice"), *args())
    # the page that started it shows the run beside Stop: no toast over Stop
    assert caught.value.visible is False
    with pytest.raises(gr.Error, match="already running"):
        next(train_tab.train_run(req("alice"), None, *args()))
    assert "Waiting" in train_tab.prepare_run(req("bob"), *args())[0]  # another user may queue a run
    runs.REGISTRY.stop("bob")
    gen.close()  # a session without a page's owner token: no page can take the run over, so it stops
    run = runs.REGISTRY.last("alice")
    assert run.done.wait(30) and run.reason == "stopped"


def test_waiting_run_can_be_stopped_before_it_starts(isolated):
    train_tab.prepare_run(req("alice"), *args())
    status, _ = train_tab.stop_run(req("alice"), [])
    assert "before it started" in status
    assert runs.REGISTRY.active("alice") is None
    train_tab.prepare_run(req("alice"), *args())  # the slot is free again
    runs.REGISTRY.stop("alice")


def test_stop_right_after_start_is_not_lost(isolated):
    """Stop pressed before Gradio queued the training event (it cancels nothing): the reservation it stopped ends
    at once when train_run claims it by its ticket, rather than a new run training on."""
    _, ticket = train_tab.prepare_run(req("alice"), *args(steps=200))
    train_tab.stop_run(req("alice"), [])
    outputs = drain(train_tab.train_run(req("alice"), ticket, *args(steps=200)))
    assert len(outputs) == 1 and "Stopped before it started" in outputs[0][0]
    assert runs.REGISTRY.active("alice") is None
    # the next Start trains: its own ticket; an old one, claimed again, cannot stop it
    _, ticket2 = train_tab.prepare_run(req("alice"), *args(steps=2))
    assert ticket2 != ticket
    status, *_ = drain(train_tab.train_run(req("alice"), ticket2, *args(steps=2)))[-1]
    assert "Finished after 2 steps" in status
    with pytest.raises(gr.Error, match="Training steps"):  # a failed check frees the slot it held
        train_tab.prepare_run(req("bob"), *args(steps=-1))
    assert runs.REGISTRY.active("bob") is None


def test_a_finished_run_records_the_command_line_that_makes_it_again(isolated, tmp_path, monkeypatch):
    """A run of the Train tab recorded no command, so its model card said "(command not recorded)" and the run could
    not be made again with `core.train`. The recorded command makes the same weights; a stopped run records none."""
    import core.train

    _, *_, trained = drain(train_tab.train_run(req("alice"), None, *args(steps=60, batch=32, lr=3e-3, seed=3,
                                                                         n_points=500)))[-1]
    [path] = trained
    command = json.loads((Path(path) / "config.json").read_text())["training"]["command"]
    assert command.startswith("python -m core.train --data swiss_roll --schedule linear --T 100 --model mlp "), command
    assert command.endswith(f"--seed 3 --out runs/{Path(path).name}") and "--n-points 500" in command
    monkeypatch.chdir(tmp_path)  # the commands' runs/NAME
    assert core.train.main([*shlex.split(command)[3:], "--quiet", "--no-eval"]) == 0

    def same_weights(app_run: str, cli_run: Path) -> bool:
        app, cli = load_file(str(Path(app_run) / "model.safetensors")), load_file(str(cli_run / "model.safetensors"))
        return all(torch.equal(app[k], cli[k]) for k in app)

    assert same_weights(path, tmp_path / "runs" / Path(path).name)
    # continued, on the same 500 points: from runs/NAME, with its set's size (without it, the CLI takes up the
    # checkpoint's own set again: here the same), to the same weights as the app's continuation
    *_, again = drain(train_tab.train_run(req("alice"), None, *args(steps=30, batch=32, lr=1e-3, seed=3, n_points=500,
                                                                   start_from=path, trained=trained)))[-1]
    [second] = [p for p in again if p != path]
    command = json.loads((Path(second) / "config.json").read_text())["training"]["command"]
    assert f"--init-from runs/{Path(path).name} " in command and "--n-points 500 " in command, command
    assert core.train.main([*shlex.split(command)[3:], "--quiet", "--no-eval"]) == 0
    assert same_weights(second, tmp_path / "runs" / Path(second).name)
    monkeypatch.setattr(train_worker, "SHORTEST_KEPT", 1)  # a stopped run is kept from its first step
    gen = train_tab.train_run(req("bob"), None, *args(steps=20000))
    next(gen), next(gen), next(gen)
    train_tab.stop_run(req("bob"), [])
    gen.close()
    bob = runs.REGISTRY.last("bob")
    assert bob.previewed.wait(60) and "command" not in json.loads((bob.checkpoint / "config.json").read_text())["training"]


def test_start_from_continues_a_checkpoint_of_this_session_only(isolated):
    *_, first = drain(train_tab.train_run(req("alice"), None, *args()))[-1]
    [path] = first
    # Another session may neither list nor start from alice's run.
    assert path not in [v for _, v in train_tab.start_choices([])]
    with pytest.raises(gr.Error, match="Start from: choose"):
        train_tab.prepare_run(req("bob"), *args(start_from=path))
    # Alice continues it: its schedule (linear, T = 100) wins over the controls, with a note;
    # at a negligible learning rate the saved EMA weights stay those of the first run.
    outputs = drain(train_tab.train_run(req("alice"), None, *args(steps=3, lr=1e-12, T=50, schedule="cosine",
                                                           start_from=path, trained=first)))
    status, *_, trained = outputs[-1]
    assert "Finished after 3 steps" in status and "its noise schedule (linear, T = 100) is used" in status
    [second] = [p for p in trained if p != path]
    config = json.loads((Path(second) / "config.json").read_text())
    assert config["schedule"]["name"] == "linear" and config["schedule"]["T"] == 100
    [earlier] = config["training"]["previous_runs"]
    assert earlier["steps_done"] == 60 and earlier["source"] == "DDPM Explorer Train tab"
    # the first run's seed and warm-up kept (the CLI's rule: a tenth of its 60 steps); the draws seeded apart from its
    assert (earlier["seed"], earlier["warmup_steps"], config["training"]["steps_before"]) == (0, 6, 60)
    before, after = load_checkpoint(path).model.state_dict(), load_checkpoint(second).model.state_dict()
    assert all(torch.allclose(before[k], after[k], atol=1e-6) for k in before)
    # deleted since (another tab's new model pushed it out): said so, not "choose one from the list"; and its
    # description names the model, not its folder, whose path holds the browser's secret owner token
    shutil.rmtree(path)
    with pytest.raises(gr.Error, match="Start from: .* is no longer on the server"):
        train_tab.prepare_run(req("alice"), *args(start_from=path, trained=trained))
    described = checkpoint_access.describe(path, trained)
    assert "is no longer on the server" in described and str(Path(path).parent) not in described


def test_a_v_run_names_its_loss_saves_a_v_model_and_a_continued_run_keeps_v(isolated):
    outputs = drain(train_tab.train_run(req("alice"), None, *args(steps=20, prediction="v")))
    status, loss_plot, _, _, _, trained = outputs[-1]
    assert "Finished after 20 steps" in status
    assert figures.as_figure(loss_plot).layout.yaxis.title.text == "loss ‖v − v̂‖² (mean)"
    [path] = trained
    assert load_checkpoint(path).config["model"]["prediction"] == "v"
    assert "model: mlp, predicts v" in checkpoint_access.describe(path, trained)
    *_, prediction, _, _, _, _, _ = train_tab.start_from_selected(req("alice"), path, trained, None)
    assert prediction["value"] == "v" and prediction["interactive"] is False
    status, loss_plot, _, continued_error, _, trained = drain(train_tab.train_run(
        req("alice"), None, *args(steps=3, start_from=path, trained=trained, prediction="eps")))[-1]
    assert "its network predicts v, and goes on learning that" in status
    # a continued run compares with the checkpoint's error as it starts, measured in each range of t: not the
    # checkpoint's record, the mean over its run
    start_line = figures.as_figure(continued_error).data[1]
    assert start_line.name == Path(path).name + " at the start<br>(predicts v, linear)"  # long: on two lines
    recorded = np.array(load_checkpoint(path).config["training"]["loss_by_t"])
    assert len(start_line.y) == LOSS_BUCKETS and not np.allclose(start_line.y, recorded)
    assert "v − v̂" in figures.as_figure(loss_plot).layout.yaxis.title.text
    [second] = [p for p in trained if p != path]
    assert load_checkpoint(second).config["training"]["prediction"] == "v"
    # the error by t of the session's latest run is drawn beside the next run's
    error_plot = figures.as_figure(drain(train_tab.train_run(
        req("alice"), None, *args(steps=5, trained=trained)))[-1][3])
    bars, line = error_plot.data
    assert bars.type == "bar" and line.type == "scatter" and line.name == Path(second).name + "<br>(predicts v, linear)"
    recorded = load_checkpoint(second).config["training"]["loss_by_t"]  # the latest run of the session
    assert len(recorded) == LOSS_BUCKETS
    assert np.allclose(line.y, [v for v in recorded if v == v and v > 0], rtol=DRAWN_RTOL)
    with pytest.raises(gr.Error, match="Unknown prediction target 'score'"):
        train_tab.prepare_run(req("alice"), *args(prediction="score"))
    assert train_figures.loss_label(5.0, "x0") == "Min-SNR-5 weighted ‖x₀ − x̂₀‖²"


def test_a_run_compares_its_error_by_t_with_the_latest_run_on_the_same_data_and_T(tmp_path):
    """A moons run's bars had been drawn beside the line of the swiss roll run before it, as if the target or the
    schedule made the difference."""
    def trained_on(name: str, error: float) -> str:
        return str(save_checkpoint(tmp_path / f"{name}-{error}", MLPDenoiser(), make_schedule("linear", 100),
                                   DataInfo(name, "2d", (2,)), training={"loss_by_t": [error] * LOSS_BUCKETS}))

    older_moons, swiss = trained_on("moons", 0.3), trained_on("swiss_roll", 0.5)
    moons_run = train_plan.make_plan(*args(data="moons")[:-len(PARAMS)], PARAMS)
    assert train_figures.reference_error_by_t(moons_run, [swiss]) is None  # no moons run yet
    reference = train_figures.reference_error_by_t(moons_run, [older_moons, swiss, str(tmp_path / "gone")])
    assert reference.label == f"{Path(older_moons).name} (predicts ε, linear)" and reference.values[0] == 0.3
    swiss_run = train_plan.make_plan(*args()[:-len(PARAMS)], PARAMS)
    assert train_figures.reference_error_by_t(swiss_run, [older_moons, swiss]).values[0] == 0.5
    # nor with a run of another T (a T = 1,000 run's line had lain over the first tenth of a T = 10,000 run's axis)
    longer_run = train_plan.make_plan(*args(T=1000)[:-len(PARAMS)], PARAMS)
    assert train_figures.reference_error_by_t(longer_run, [older_moons, swiss]) is None


def test_continuing_a_shipped_checkpoint_compares_with_its_error_at_the_start(isolated):
    """Shipped checkpoints keep no error by t: a run that continues one measures it as the run starts."""
    shipped = {Path(v).name: v for _, v in train_tab.start_choices([]) if v}
    outputs = drain(train_tab.train_run(req("alice"), None, *args(steps=2, data="moons", start_from=shipped["moons"])))
    assert "Finished after 2 steps" in outputs[-1][0]
    first_drawn = next(figures.as_figure(out[3]) for out in outputs if out[3] != gr.skip() and len(
        figures.as_figure(out[3]).data))  # before any step: the line alone
    [line] = first_drawn.data
    assert line.name == "moons at the start (predicts ε, linear)" and len(line.y) == LOSS_BUCKETS
    assert line.y[0] > 20 * line.y[-1]  # trained: nearly no error at large t (an untrained network's is ≈ 1 everywhere)


def test_start_from_rejects_other_data_kinds_and_syncs_the_controls(isolated, shared_data, monkeypatch):
    shipped = {Path(v).name: v for _, v in train_tab.start_choices([]) if v}
    monkeypatch.setenv("DDPM_DATA_DIR", str(shared_data))
    with pytest.raises(gr.Error, match="trained on images"):
        train_tab.prepare_run(req("alice"), *args(start_from=shipped["mnist"]))
    monkeypatch.delenv("DDPM_DATA_DIR")
    info, data, n_points, seed, schedule, T, model, prediction, conditional, p_uncond, lr, own, preview = \
        train_tab.start_from_selected(req("alice"), shipped["swiss_roll_cosine"], [], None)
    assert seed == gr.skip()  # a toy set of the usual size: the seed stays the user's
    assert data == "swiss_roll" and schedule["value"] == "cosine" and T["value"] == 1000 and model["value"] == "mlp"
    assert prediction == {"value": "eps", "interactive": False, "__type__": "update"}
    assert conditional == {"value": False, "interactive": False, "__type__": "update"}
    assert p_uncond.visible is False  # the drop rate is for class-conditional models only
    assert schedule["interactive"] is False and lr == pytest.approx(train_tab.CONTINUE_LR_FACTOR * 2e-3)
    assert "swiss_roll" in info and own == gr.skip()
    size = json.loads((Path(shipped["swiss_roll_cosine"]) / "config.json").read_text())["training"].get("data_size")
    assert n_points == (size or gr.skip()) and (preview == gr.skip()) == (size is None)
    _, _, _, _, schedule, *_ = train_tab.start_from_selected(req("alice"), train_tab.NEW_MODEL, [], None)
    assert schedule["interactive"] is True
    # back to a new model after the data changed to MNIST: the checkpoint's MLP gives way to a U-Net, and a model
    # that suits the data stays
    model = train_tab.start_from_selected(req("alice"), train_tab.NEW_MODEL, [], None, "mnist", "mlp")[6]
    assert model == {"value": train_plan.defaults_for("image")["model"], "interactive": True, "__type__": "update"}
    for data, kept in (("mnist", "tiny"), ("moons", "mlp")):
        model = train_tab.start_from_selected(req("alice"), train_tab.NEW_MODEL, [], None, data, kept)[6]
        assert model == {"interactive": True, "__type__": "update"}
    model = train_tab.start_from_selected(req("alice"), train_tab.NEW_MODEL, [], None, "moons", "small")[6]
    assert model["value"] == "mlp"


def test_a_model_of_data_this_server_lacks_says_so_when_picked_to_start_from(isolated, monkeypatch):
    """An uploaded CIFAR-10 model on a server without CIFAR-10: picked in "Start from", the data list stayed on the
    swiss roll, and Start said to pick images, which the list did not offer."""
    monkeypatch.setenv("DDPM_DATA_DIR", str(isolated / "no-data"))
    torch.manual_seed(0)
    path = save_checkpoint(runs.user_dir("alice") / "uploaded-objects", UNet(unet_config("tiny", 32, 3)),
                           make_schedule("linear", 100), DataInfo("cifar10", "image", (3, 32, 32)))
    trained = [str(path)]
    info, data, *_ = train_tab.start_from_selected(req("alice"), str(path), trained, None)
    assert "**Its training data, CIFAR-10 (objects, 32×32 colour), is not on this server**" in info and data == gr.skip()
    with pytest.raises(gr.Error, match=r"objects was trained on CIFAR-10 \(objects, 32×32 colour\), which is not on "
                                       r"this server: it cannot be trained further here"):
        train_tab.prepare_run(req("alice"), *args(start_from=str(path), trained=trained))


class NaNAfter(MLPDenoiser):
    """An MLP whose output turns NaN after a few training calls."""

    calls = 0

    def forward(self, x_t, t):
        out = super().forward(x_t, t)
        if self.training:
            NaNAfter.calls += 1
            if NaNAfter.calls > 25:
                return out * float("nan")
        return out


def test_nan_loss_ends_with_a_clear_message(isolated, monkeypatch):
    NaNAfter.calls = 0
    monkeypatch.setattr(train_worker, "SHORTEST_KEPT", 20)
    monkeypatch.setattr(train_tab, "build_model", lambda plan, data: NaNAfter())
    with pytest.warns(UserWarning, match="diverged"):
        outputs = drain(train_tab.train_run(req("alice"), None, *args(steps=200)))
    status, *_, trained = outputs[-1]
    assert "diverged at step 26" in status and "lower learning rate" in status
    assert "The weights from before that step are saved as" in status
    assert final_preview(req("alice")).label == train_tab.NO_PREVIEW_LABEL  # not the promise of samples at step 50
    assert loss_points(outputs[-1][1]) == 25  # every good step, also those after the last progress event
    assert len(trained) == 1  # the last good weights are kept
    config = json.loads((Path(trained[0]) / "config.json").read_text())
    assert config["training"]["end_reason"] == "diverged" and config["training"]["steps_done"] == 25


def test_a_run_that_diverges_at_once_saves_nothing_and_keeps_the_browsers_models(isolated, monkeypatch):
    """A learning rate of 1000 diverges at step 2: its one step's weights were saved as a model, and pushed the
    browser's oldest (a useful one) out of its kept five."""
    monkeypatch.setenv("DDPM_MAX_RUNS_PER_USER", "1")
    drain(train_tab.train_run(req("alice"), None, *args(steps=30)))
    kept = runs.owner_checkpoints("alice")
    assert len(kept) == 1
    NaNAfter.calls = 0
    monkeypatch.setattr(train_tab, "build_model", lambda plan, data: NaNAfter())
    with pytest.warns(UserWarning, match="diverged"):
        status, *_, trained = drain(train_tab.train_run(req("alice"), None, *args(steps=200, trained=kept)))[-1]
    assert SHORTEST_KEPT > 25 and "diverged at step 26" in status
    assert "Nothing is saved: 25 steps before it diverged teach the network nothing" in status
    assert trained == kept and Path(kept[0]).is_dir() and runs.owner_checkpoints("alice") == kept


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(steps=0), "Training steps"),
        (dict(steps=2.5), "whole number"),
        (dict(steps=None), "empty"),
        (dict(batch=0), "Batch size"),
        (dict(lr=-1.0), "Learning rate"),
        (dict(lr=float("nan")), "Learning rate"),
        (dict(T=1), "T must be"),
        (dict(data="nonsense"), "Unknown data"),
        (dict(model="tiny"), "fits the data"),
        (dict(seed=-1), "Seed"),
        (dict(start_from="/etc"), "Start from: choose"),
        (dict(n_points=0), "Training points"),
        (dict(n_points=10**6), "Training points"),
        (dict(data="moons", conditional=True, p_uncond=-0.1), r"Drop the class to ∅ \(p_uncond\) must be a number from 0 to 0.5, got -0.1"),
        (dict(data="moons", conditional=True, p_uncond=0.9), "Drop the class to ∅"),
        (dict(data="moons", conditional=True, p_uncond="often"), "Drop the class to ∅"),
    ],
)
def test_bad_inputs_raise_gr_error(changes, message):
    with pytest.raises(gr.Error, match=message):
        train_tab.prepare_run(req("alice"), *args(**changes))
    assert runs.REGISTRY.active("alice") is None


def test_a_number_between_bounds_takes_both_bounds_and_refuses_the_rest():
    assert controls.number_between("0.5", "p", 0.0, 0.5) == 0.5 and controls.number_between(0, "p", 0.0, 0.5) == 0.0
    for bad in (None, "", "often", float("nan"), float("inf"), -1e-9, 0.51):
        with pytest.raises(gr.Error, match=r"p must be a number from 0 to 0.5, got "):
            controls.number_between(bad, "p", 0.0, 0.5)


def test_bad_schedule_parameters_raise_gr_error():
    values = list(PARAMS)
    values[0] = -0.5  # linear beta_start
    with pytest.raises(gr.Error):
        train_tab.prepare_run(req("alice"), "swiss_roll", "linear", 100, "mlp", "eps", False, 0.1, "", 60, 64, 2e-3, 0,
                              10_000, [], None, *values)


def test_missing_image_data_raises(monkeypatch, tmp_path):
    monkeypatch.setenv("DDPM_DATA_DIR", str(tmp_path / "nothing"))
    with pytest.raises(gr.Error, match="not available"):
        train_tab.prepare_run(req("alice"), *args(data="mnist", model="tiny"))
    choices, note = train_tab.data_choices()
    assert "mnist" not in [v for _, v in choices] and "DDPM_DATA_DIR" in note
    with pytest.raises(gr.Error, match="no classes") as refused:  # names only the data with classes offered here
        train_plan.make_plan(*args(data="swiss_roll", conditional=True)[:-len(PARAMS)], PARAMS)
    assert "Two moons" in refused.value.message and "MNIST" not in refused.value.message
    assert "MNIST" not in train_plan.conditional_data()


def test_every_data_set_in_the_data_folder_is_offered(local_data):
    choices, note = train_tab.data_choices()
    values = [v for _, v in choices]
    assert "fashion_mnist" in values and "cifar10" in values and "mnist" not in values
    assert "MNIST" in note and "not offered" in note
    assert train_plan.conditional_data().endswith("Two spirals, Fashion-MNIST, CIFAR-10")


def test_a_page_load_lists_the_data_sets_fetched_since_the_server_started(monkeypatch, tmp_path):
    """The data lists were made once, when the app was built: a data set fetched with `core.download` while the
    server ran was offered only after a restart. Each page load now asks the data folder again."""
    monkeypatch.setenv("DDPM_DATA_DIR", str(tmp_path / "data"))
    demo = build_app()
    loads = {d.fn.__module__: d for d in demo.fns.values() if getattr(d.fn, "__name__", "") == "data_list"}
    assert sorted(loads) == ["app.forward_tab", "app.schedules_tab", "app.train_tab"]
    assert all(d.targets == [(demo._id, "load")] for d in loads.values())

    def offered(module: str) -> list[str]:
        update = loads[module].fn()
        return [value for _, value in (update[0] if module == "app.train_tab" else update).choices]

    assert not any("fashion_mnist" in offered(module) for module in loads)
    raw = tmp_path / "data" / "FashionMNIST" / "raw"  # now fetched
    raw.mkdir(parents=True)
    write_idx(raw / "t10k-images-idx3-ubyte", np.zeros((3, 28, 28), np.uint8))
    write_idx(raw / "t10k-labels-idx1-ubyte", np.zeros(3, np.uint8))
    assert all("fashion_mnist" in offered(module) for module in loads)
    assert loads["app.forward_tab"].fn().info.startswith("CIFAR-10 appears here when")
    note = loads["app.train_tab"].fn()[1]
    assert note.visible and "MNIST" in note.value and "reload this page" in note.value  # MNIST is still missing


def test_image_runs_take_batches_of_at_most_256(monkeypatch, shared_data):
    """A U-Net's activations take about 2 MB an MNIST example: a batch of 4,096 (the 2D limit) had asked for 8 GB at
    once, and the shared server's process was killed."""
    monkeypatch.setenv("DDPM_DATA_DIR", str(shared_data))
    assert train_plan.make_plan(*args(data="mnist", model="tiny", batch=256)[:-len(PARAMS)], PARAMS).batch == 256
    with pytest.raises(gr.Error, match=r"Batch size for images must be a whole number from 1 to 256, got 4096\."):
        train_plan.make_plan(*args(data="mnist", model="tiny", batch=4096)[:-len(PARAMS)], PARAMS)
    assert train_plan.make_plan(*args(batch=4096)[:-len(PARAMS)], PARAMS).batch == 4096


def test_image_runs_weight_the_loss_with_min_snr_and_2d_runs_do_not(monkeypatch, shared_data):
    monkeypatch.setenv("DDPM_DATA_DIR", str(shared_data))
    image_plan = train_plan.make_plan(*args(data="mnist", model="tiny")[:-len(PARAMS)], PARAMS)
    image = train_plan.train_config(image_plan, DataInfo("mnist", "image", (1, 28, 28)))
    assert image.min_snr_gamma == 5.0 and image.clip_x0 == 1.0
    toy_plan = train_plan.make_plan(*args()[:-len(PARAMS)], PARAMS)
    toy = train_plan.train_config(toy_plan, DataInfo("swiss_roll", "2d", (2,)))
    assert toy.min_snr_gamma == 0.0
    # a continued checkpoint keeps its own weighting: the shipped mnist was trained on plain L_simple (a run from it
    # had gone on with Min-SNR-5 without a word)
    shipped = {Path(v).name: v for _, v in train_tab.start_choices([]) if v}
    continued = train_plan.make_plan(*args(data="mnist", model="tiny", start_from=shipped["mnist"])[:-len(PARAMS)],
                                     PARAMS)
    assert continued.min_snr_gamma == 0.0
    assert "Continuing mnist: it was trained on the L_simple loss, and goes on with it." in continued.notes
    # previews: 2D by ancestral steps evenly in log-SNR (sound on cosine, see test_shipped_checkpoints), images by DDIM
    assert (toy.preview_method, toy.preview_spacing, toy.preview_steps) == ("ddpm", "log_snr", min(100, toy_plan.schedule.T))
    assert (image.preview_method, image.preview_spacing, image.preview_steps) == ("ddim", "uniform", min(50, image_plan.schedule.T))

    def axis_title(gamma: float) -> str:
        return figures.as_figure(train_figures.loss_figure([1.0, 0.5], min_snr_gamma=gamma)).layout.yaxis.title.text

    assert "Min-SNR-5" in axis_title(5.0) and "SNR" not in axis_title(0.0)  # the plot names its loss


def test_a_loss_that_blew_up_is_called_so_while_the_run_goes_on():
    """A learning rate far too high can send the loss to 10¹⁷ and keep it finite: no divergence, but a warning."""
    plan = types.SimpleNamespace(max_seconds=600.0)

    def progress(loss):
        event = TrainEvent("step", step=100, total_steps=3000, loss=loss, lr=1e-3, elapsed=5.0, samples_per_s=1e4)
        return train_tab._progress_text(event, plan, "CPU")[0]

    assert "loss 0.2533 ·" in progress(0.2533) and "blown up" not in progress(0.2533)
    assert "loss 999.0000 ·" in progress(999.0) and "blown up" not in progress(999.0)
    blown = progress(2.3e17)
    assert "loss 2.300e+17 ·" in blown and "the loss has blown up: stop, lower the learning rate" in blown
    assert "time limit" not in progress(0.25)  # 20 steps/s: 2,900 steps left take 145 s, within the limit


def test_a_run_the_time_limit_will_end_says_near_which_step():
    """MNIST's 2,000 steps at 2.9 steps/s on a 2-core server need 11.5 min: its ETA was the limit's 10 min counting
    down, and nothing said that the run would end near step 1,700, not at 2,000."""
    plan = types.SimpleNamespace(max_seconds=600.0)
    event = TrainEvent("step", step=290, total_steps=2000, loss=0.1, lr=1e-3, elapsed=100.0, samples_per_s=186.0)
    text = train_tab._progress_text(event, plan, "CPU")[0]
    assert text.startswith("Step <b>290</b> / 2000 · loss 0.1000 · 186 examples/s · 1 min 40 s elapsed · ETA 8 min 20 s ·")
    assert "ETA 8 min 20 s" in text
    assert text.endswith(" · at this pace the server's time limit (10 min 00 s) ends it near step 1,740"), text


def test_server_caps_clamp_with_a_note(monkeypatch):
    monkeypatch.setenv("DDPM_MAX_TRAIN_STEPS", "50")
    status, _ = train_tab.prepare_run(req("alice"), *args(steps=5000))
    assert "at most 50" in status
    runs.REGISTRY.stop("alice")
    monkeypatch.delenv("DDPM_MAX_TRAIN_STEPS")
    monkeypatch.setenv("DDPM_MAX_TRAIN_SECONDS", "0.5")
    outputs = drain(train_tab.train_run(req("alice"), None, *args(steps=20000)))
    assert "time limit" in outputs[-1][0]


def test_session_keys_are_safe_directory_names():
    assert runs.session_key(req("abc_123")) == "abc_123"
    assert "/" not in runs.session_key(req("../../etc")) and runs.session_key(req("../../etc")).startswith("h")
    assert runs.session_key(None) != runs.session_key(None)


def test_old_checkpoints_are_swept_and_the_rest_kept(isolated, monkeypatch):
    """Checkpoints outlive the page (a reload keeps them) but not DDPM_RUNS_KEEP_HOURS: older ones go, with their
    owner's directory once it is empty and as old; an owner with a run under way and other folders (the CLI's
    checkpoints, filed by the README's commands under runs/, had been deleted) are left alone."""
    import os
    monkeypatch.setenv("DDPM_RUNS_KEEP_HOURS", "2")
    now = 1_000_000_000.0

    def made(path: Path, hours_ago: float) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        os.utime(path, (now - hours_ago * 3600,) * 2)
        return path

    alice, bob, carol = (runs.user_dir(key) for key in ("alice", "bob", "carol"))
    old, fresh = made(alice / "old", 3), made(alice / "fresh", 1)
    made(alice, 3)
    gone = made(bob / "old", 5)
    made(bob, 5)
    busy = made(carol / "old", 5)
    foreign = made(isolated / "not a key!" / "old", 5)
    cli_run = made(isolated / "experiments" / "moons", 5)  # python -m core.train --out runs/experiments/moons
    made(isolated / "experiments", 5)
    runs.REGISTRY.reserve("carol")
    assert sorted(runs.sweep_expired_checkpoints(now)) == sorted([old, gone])
    assert fresh.is_dir() and alice.is_dir() and not bob.exists()
    assert busy.is_dir() and foreign.is_dir() and cli_run.is_dir()
    assert runs.keep_text() == "2 hours"


def test_a_folder_whose_name_is_not_utf8_is_passed_over(isolated, monkeypatch, tmp_path):
    """A host's copy named in bytes that are not UTF-8 cannot be sent to a page: the page load had failed on it, and
    the browser's every model, shipped ones too, had dropped out of the list."""
    from app.checkpoint_access import checkpoint_choices
    alice = runs.user_dir("alice")
    shutil.copytree(REPO / "checkpoints" / "moons", alice / "good")
    shutil.copytree(REPO / "checkpoints" / "moons", os.fsdecode(os.fsencode(alice) + b"/bad\xffname"))
    (alice / "no-weights").mkdir()  # a folder without a checkpoint's files: listed, it had pushed out a good model
    (alice / "no-weights" / "config.json").write_text("{}")
    assert runs.owner_checkpoints("alice") == [str(alice / "good")]
    monkeypatch.setenv("DDPM_MAX_RUNS_PER_USER", "1")  # pruning counts the models listed, as its warning does
    assert runs.pushed_out_by_next("alice") == [alice / "good"] and runs.prune_user_runs("alice") == []
    shipped = tmp_path / "shipped"
    for name in (b"moons", b"moons\xff"):
        shutil.copytree(REPO / "checkpoints" / "moons", os.fsdecode(os.fsencode(shipped) + b"/" + name))
    monkeypatch.setenv("DDPM_CHECKPOINTS_DIR", str(shipped))
    choices = checkpoint_choices(runs.owner_checkpoints("alice"))
    assert [label for label, _ in choices] == ["moons (shipped)", "good (trained here)"]
    json.dumps(choices).encode()  # what a page is sent


def test_a_checkpoint_deleted_while_the_sweep_runs_is_passed_over(isolated, monkeypatch):
    """The page load that swept got no owner token and no model list when an upload's pruning won the race."""
    alice = runs.user_dir("alice")
    old = alice / "old"
    old.mkdir(parents=True)
    os.utime(old, (0, 0))
    vanished = alice / "vanished"  # listed, then deleted before the sweep reads its time
    real_is_dir, real_iterdir = Path.is_dir, Path.iterdir
    monkeypatch.setattr(Path, "is_dir", lambda self: self == vanished or real_is_dir(self))
    monkeypatch.setattr(Path, "iterdir", lambda self: iter([*real_iterdir(self), vanished] if self == alice
                                                           else list(real_iterdir(self))))
    assert runs.sweep_expired_checkpoints() == [old]


def test_page_loads_sweep_expired_checkpoints_at_most_once_a_minute(isolated, monkeypatch):
    """Every page load asked for a sweep of every owner's folder: 30 ms over a thousand owners, for each visitor."""
    swept = []
    monkeypatch.setattr(runs, "sweep_expired_checkpoints", lambda: swept.append(True) or [])
    monkeypatch.setattr(runs, "CHECKPOINTS_SWEEP", Throttle(60.0))
    for page in ("page-1", "page-2", "page-3"):
        train_tab.page_loaded(req(page), None)
    assert swept == [True]
    monkeypatch.setattr(runs.CHECKPOINTS_SWEEP, "seconds", 0.0)  # a minute later
    train_tab.page_loaded(req("page-4"), None)
    assert swept == [True, True]


def test_a_reloaded_page_gets_its_browsers_checkpoints_back_and_others_do_not(isolated):
    """The page hands over its browser's owner token when it loads; a new browser gets a fresh one. Runs and
    checkpoints are keyed by the token, so a reload (a new session, the same token) finds them again."""
    token, listed, _ = train_tab.page_loaded(req("page-1"), None)
    assert re.fullmatch(r"o[0-9a-f]{32}", token) and listed == []
    assert runs.owner_key(req("page-1")) == token
    *_, trained = drain(train_tab.train_run(req("page-1"), None, *args(steps=5)))[-1]
    assert Path(trained[0]).parent == runs.user_dir(token)
    assert token not in trained[0]  # a path the page sees does not give away the token its models are handed to
    runs.page_closed(req("page-1"))
    assert runs.owner_key(req("page-1")) == token and not runs.page_open("page-1")  # until Gradio drops the session
    runs.forget_page("page-1")
    assert runs.owner_key(req("page-1")) == "page-1"
    assert train_tab.page_loaded(req("page-2"), token) == (token, trained, "page-2")  # the reload
    other, listed, _ = train_tab.page_loaded(req("page-3"), "../../etc")  # a malformed token: a fresh one
    assert other != token and listed == []
    assert not checkpoint_access.allowed(trained[0], listed)
    assert cut_off_status("page-2", trained) == (gr.skip(), gr.skip())  # no run was cut off


def training_on_a_loaded_page(page: str):
    """A page loads (a new browser) and starts a long run: (its owner token, the run's generator, now training)."""
    token, *_ = train_tab.page_loaded(req(page), None)
    gen = train_tab.train_run(req(page), None, *args(steps=20_000))
    for update in gen:
        if "Training on" in str(update[0]):
            return token, gen
    raise AssertionError("the run never started training")


def page_goes(page: str, gen, after: float = 0.0) -> None:
    """``page`` is closed or reloaded (``after`` seconds from now, on a timer): Gradio drops its run's streaming event
    ``gen``, and the page's unload reaches the server."""
    def go():
        gen.close()
        runs.page_closed(req(page))

    if after:
        threading.Timer(after, go).start()
    else:
        go()


@pytest.mark.usefixtures("keep_short_runs")
def test_a_reloaded_page_takes_over_its_browsers_run_which_trained_on(isolated, monkeypatch):
    """A second's drop of the network ended a run: Gradio ended its streaming event, and reloaded the page once the
    connection came back. The run trains on, and the reloaded page shows it (all its losses so far first) to its
    end, which Stop there brings, and lists its model; a final preview too late to wait for is said to be."""
    drawn = threading.Event()
    monkeypatch.setattr(train_worker, "final_preview", lambda *given: drawn.wait(30) and "the final preview")
    monkeypatch.setattr(train_tab, "FINAL_WAIT_SECONDS", 0.5)
    token, gen = training_on_a_loaded_page("page-1")
    page_goes("page-1", gen)  # reloaded, or its connection dropped
    run = runs.REGISTRY.active(token)
    assert run is not None and not run.done.wait(0.5)  # it trains on
    _, listed, _ = train_tab.page_loaded(req("page-2"), token)
    shown = train_tab.rejoin_run(req("page-2"), listed)
    status, loss, preview, error, filmstrip, paths = next(shown)
    assert "trained on while its page was reloaded or its connection dropped" in status and paths == gr.skip()
    assert len(figures.as_figure(loss).data[0].y) >= 1 and preview != gr.skip() and error != gr.skip()
    assert filmstrip != gr.skip()  # the run's previews so far
    next(shown)  # it goes on
    assert cut_off_updates("page-2", listed) == [(gr.skip(), gr.skip())]  # this page shows it: nothing to follow
    assert "Stopped after" in train_tab.stop_run(req("page-2"), listed)[0]
    updates = list(shown)
    drawn.set()
    ended = [update for update in updates if update[5] != gr.skip()]
    assert len(ended) == 1 and "Stopped after" in ended[0][0]
    assert updates[-1][2].label == train_tab.FINAL_LATE_LABEL  # not "… come next" for good
    assert len(ended[0][5]) == 1 and Path(ended[0][5][0]).parent == runs.user_dir(token)
    assert cut_off_status("page-3", ended[0][5]) == (gr.skip(), gr.skip())  # it was shown to its end: nothing to say
    train_tab.prepare_run(req("page-2"), *args(steps=5))  # the browser can start again


@pytest.mark.usefixtures("keep_short_runs")
def test_a_run_that_no_page_takes_over_stops_is_saved_and_said_so(isolated, monkeypatch):
    monkeypatch.setattr(runs, "LEFT_RUN_SECONDS", 0.5)
    token, gen = training_on_a_loaded_page("page-1")
    page_goes("page-1", gen)
    assert runs.REGISTRY.last(token).done.wait(30)
    _, listed, _ = train_tab.page_loaded(req("page-2"), token)
    assert list(train_tab.rejoin_run(req("page-2"), listed)) == [(gr.skip(),) * 6]  # nothing to take over
    status, trained = cut_off_status("page-2", listed)
    assert f"{train_tab.CUT_OFF_STATUS} Stopped after" in html.unescape(status)
    assert len(trained) == 1 and Path(trained[0]).parent == runs.user_dir(token)
    assert cut_off_status("page-3", trained) == (gr.skip(), gr.skip())  # said once


@pytest.mark.usefixtures("keep_short_runs")
def test_a_server_that_stops_saves_its_runs_without_their_last_previews(isolated):
    """`python app.py` stopped (Ctrl-C, a host's SIGTERM) stops every run and waits for its save: a run under way had
    been lost. It draws no final preview, which took 9 of the 12 s that a 2D run's server took to exit."""
    token, gen = training_on_a_loaded_page("page-1")
    start = time.monotonic()
    assert runs.stop_every_run() == (1, 1)
    run = runs.REGISTRY.last(token)
    assert run.done.is_set() and run.checkpoint.is_dir() and run.final_preview is None and run.previewed.is_set()
    assert time.monotonic() - start < 5
    runs.SERVER_STOPPING.clear()
    gen.close()


def test_a_run_whose_page_went_keeps_its_training_slot(isolated):
    """It trains on outside Gradio's slots (one here): another browser's Start that has the slot waits for it."""
    token, gen = training_on_a_loaded_page("page-1")
    page_goes("page-1", gen)
    train_tab.page_loaded(req("other"), None)
    _, ticket = train_tab.prepare_run(req("other"), *args(steps=5))
    threading.Timer(1.0, lambda: runs.REGISTRY.stop(token)).start()
    start = time.monotonic()
    other = train_tab.train_run(req("other"), ticket, *args(steps=5))
    next(other)
    assert time.monotonic() - start >= 1.0 and runs.REGISTRY.last(token).done.is_set()
    drain(other)


@pytest.fixture
def keep_short_runs(monkeypatch):
    """A run stopped within `SHORTEST_KEPT` steps saves nothing; these tests stop theirs after a while,
    whatever the number of steps the machine managed (on a busy one, under 100 in 0.3 s)."""
    monkeypatch.setattr(train_worker, "SHORTEST_KEPT", 1)


def test_a_reloaded_page_waits_for_its_old_page_to_go_and_leaves_another_open_tabs_run_to_it(isolated, monkeypatch):
    """A reload's old page goes a moment after the new one loads; an open tab keeps showing its run."""
    monkeypatch.setattr(train_tab, "REJOIN_WAIT_SECONDS", 1.0)
    token, gen = training_on_a_loaded_page("page-1")
    train_tab.page_loaded(req("page-2"), token)
    page_goes("page-1", gen, after=0.3)
    shown = train_tab.rejoin_run(req("page-2"), [])
    assert "trained on while its page was reloaded" in next(shown)[0]
    train_tab.page_loaded(req("tab-3"), token)
    start = time.monotonic()
    assert list(train_tab.rejoin_run(req("tab-3"), [])) == [(gr.skip(),) * 6]  # page-2 shows it
    assert 1.0 <= time.monotonic() - start < 5 and runs.REGISTRY.active(token).page == "page-2"
    shown.close()


def test_a_start_that_comes_after_its_page_closed_reserves_nothing(isolated):
    """Start, then a reload at once: the page's unload came before its Start, whose reservation then blocked the
    reloaded page for a minute ("under way in another tab", then "still stopping")."""
    token, *_ = train_tab.page_loaded(req("page-1"), None)
    runs.page_closed(req("page-1"))
    with pytest.raises(gr.Error, match="This page was closed or reloaded"):
        train_tab.prepare_run(req("page-1"), *args(steps=5))
    assert runs.REGISTRY.active(token) is None
    train_tab.page_loaded(req("page-2"), token)
    train_tab.prepare_run(req("page-2"), *args(steps=5))  # the reloaded page starts at once
    runs.REGISTRY.release(token)
    train_tab.prepare_run(req("api-client"), *args(steps=5))  # an API client loads no page: not a closed one


def test_a_page_heard_from_long_after_it_was_said_closed_is_open_again(isolated, monkeypatch):
    """Gradio says a page closed when its connection ends, which a laptop's sleep or a network's drop does too: its
    Starts, minutes later, were refused as those of a closed page."""
    token, *_ = train_tab.page_loaded(req("page-1"), None)
    runs.page_closed(req("page-1"))
    assert runs.page_was_closed("page-1") and not runs.page_open("page-1")
    monkeypatch.setattr(runs, "RELOAD_RACE_SECONDS", 0.0)
    train_tab.prepare_run(req("page-1"), *args(steps=5))
    assert runs.page_open("page-1") and runs.REGISTRY.active(token).page == "page-1"


def test_a_new_run_takes_the_preview_from_the_last_ones_late_final_preview(isolated):
    """Stop, then Start at once: the stopped run's final preview, drawn seconds later, replaced the new run's. A Start
    that is refused, or still waits for a slot, leaves it to come."""
    gen = train_tab.train_run(req("alice"), None, *args(steps=20000))
    next(gen), next(gen)
    train_tab.stop_run(req("alice"), [])
    last = runs.REGISTRY.last("alice")
    with pytest.raises(gr.Error):
        train_tab.prepare_run(req("alice"), *args(T=1))
    _, ticket = train_tab.prepare_run(req("alice"), *args(steps=5))
    assert not last.preview_replaced.is_set()  # nothing of the new run is on show yet
    new = train_tab.train_run(req("alice"), ticket, *args(steps=5))
    next(new)  # it trains: the preview is the new run's
    assert last.preview_replaced.is_set()
    *_, (status, _, preview, *_) = drain(gen)  # the old run's stream ends without its final preview
    assert "Stopped after" in status and preview == gr.skip()
    drain(new)


def test_a_start_whose_inputs_gradio_refused_after_the_wait_frees_its_slot_and_says_so(isolated):
    """A list's choice gone while the run waited (a model to start from, deleted): Gradio refused the value before
    `train_run` ran, and the status said "Waiting for a free training slot…" until the page closed."""
    _, ticket = train_tab.prepare_run(req("alice"), *args(steps=5))
    assert train_tab.start_failed(req("alice"), "another tab's") == (gr.skip(), gr.skip())  # not its reservation
    status, timer = train_tab.start_failed(req("alice"), ticket)
    assert train_tab.START_FAILED_MESSAGE in status and 'data-tone="error"' in status and timer.active is False
    assert runs.REGISTRY.active("alice") is None
    run = runs.REGISTRY.claim("alice")  # training: `train_run` failed by itself and said why
    assert train_tab.start_failed(req("alice"), run.ticket) == (gr.skip(), gr.skip())
    assert runs.REGISTRY.active("alice") is run


def test_a_start_refused_when_its_turn_came_says_so_in_the_status(isolated, monkeypatch):
    """`train_run` checks the inputs again (a model to start from may have gone): its refusal had been a toast, the
    status staying on "Waiting for a free training slot…"."""
    _, ticket = train_tab.prepare_run(req("alice"), *args(steps=5))

    def gone(*_, **__):
        raise InputError("The model to start from is no longer on this server.")
    monkeypatch.setattr(train_tab, "make_plan", gone)
    run = train_tab.train_run(req("alice"), ticket, *args(steps=5))
    status, *_ = next(run)
    assert status.count("Not started: The model to start from is no longer on this server.") == 1
    with pytest.raises(gr.Error):
        next(run)
    assert runs.REGISTRY.active("alice") is None


def test_a_run_waiting_for_a_slot_when_its_page_closes_is_dropped(isolated):
    token, *_ = train_tab.page_loaded(req("page-1"), None)
    _, first_ticket = train_tab.prepare_run(req("page-1"), *args(steps=5))
    train_tab.page_loaded(req("page-2"), token)
    runs.page_closed(req("page-2"))  # another page of the browser: not its reservation
    assert runs.REGISTRY.active(token) is not None
    runs.page_closed(req("page-1"))
    assert runs.REGISTRY.active(token) is None
    train_tab.page_loaded(req("page-3"), token)
    status, trained = cut_off_status("page-3", [])
    assert "Your run was dropped while it waited for a training slot" in status and trained == gr.skip()
    # should the closed page's queued event still come, its run ends at once
    late = drain(train_tab.train_run(req("page-1"), first_ticket, *args(steps=5)))
    assert late[-1][0].endswith("Stopped before it started.</div></div>") and runs.REGISTRY.active(token) is None
    train_tab.prepare_run(req("page-3"), *args(steps=5))  # not "already running"


@pytest.mark.usefixtures("keep_short_runs")
def test_a_run_in_another_open_tab_is_followed_and_its_model_listed_when_it_ends(isolated, monkeypatch):
    monkeypatch.setattr(train_tab, "OTHER_TAB_SECONDS", 0.3)
    token, gen = training_on_a_loaded_page("tab-1")
    train_tab.page_loaded(req("tab-2"), token)
    threading.Timer(1.5, lambda: runs.REGISTRY.stop(token)).start()  # Stop, pressed in tab 1
    first, last = cut_off_updates("tab-2", ["an old listing"])
    assert "under way in another tab of this browser" in first[0] and first[1] == gr.skip()
    *_, (ended, *_, listed) = drain(gen)  # tab 1's stream, to its end
    assert "Stopped after" in ended and last[0] == train_figures.status_html(runs.REGISTRY.last(token).message, tone="warn")
    assert last[1] == runs.owner_checkpoints(token) == listed  # the browser's models, the new one with them
    # a run that ends in its tab before the other tab has said anything: that tab says so and lists it
    monkeypatch.setattr(train_tab, "OTHER_TAB_SECONDS", 60.0)
    token, gen = training_on_a_loaded_page("tab-3")
    train_tab.page_loaded(req("tab-4"), token)
    with pytest.raises(gr.Error, match="under way in another tab of this browser: Stop here stops it too") as caught:
        train_tab.prepare_run(req("tab-4"), *args(steps=5))
    assert caught.value.visible is True
    run = runs.REGISTRY.active(token)
    threading.Timer(1.0, lambda: run.trainer.stop()).start()  # ends by itself as far as the pages know
    (status, listed), = cut_off_updates("tab-4", [])
    assert "Your training run in another tab of this browser has ended. Stopped after" in status and len(listed) == 1
    gen.close()


@pytest.mark.usefixtures("keep_short_runs")
def test_a_tab_that_followed_a_run_whose_page_went_says_a_reload_shows_it(isolated, monkeypatch):
    """Tab 1 trains, tab 2 follows the run, tab 1 goes: tab 2 says that a reload of it would show the run there; tab 1,
    reloaded, takes the run over, and tab 2 follows it again, to its end and its model."""
    monkeypatch.setattr(train_tab, "OTHER_TAB_SECONDS", 0.3)
    token, gen = training_on_a_loaded_page("tab-1")
    train_tab.page_loaded(req("tab-2"), token)
    page_goes("tab-1", gen, after=2.0)  # reloaded
    shown: list = []

    def reloaded():  # tab 1's new page shows the run until Stop, pressed in it
        train_tab.page_loaded(req("tab-1-reloaded"), token)
        updates = train_tab.rejoin_run(req("tab-1-reloaded"), [])
        shown.append(next(updates))
        threading.Timer(1.0, lambda: runs.REGISTRY.stop(token)).start()
        shown.extend(updates)

    threading.Timer(3.5, reloaded).start()
    followed = cut_off_updates("tab-2", [])
    statuses = [status for status, _ in followed]
    left = train_figures.status_html(train_tab.LEFT_RUN_STATUS, tone="warn")
    other = train_figures.status_html(train_tab.OTHER_TAB_STATUS, tone="warn")
    assert statuses[:3] == [other, left, other] and "Stopped after" in statuses[-1], statuses
    assert "trained on while its page was reloaded" in shown[0][0]
    assert followed[-1][1] == runs.owner_checkpoints(token) and len(followed[-1][1]) == 1


@pytest.mark.usefixtures("keep_short_runs")
def test_stop_whose_cancel_closes_the_stream_first_is_not_taken_for_a_page_that_went(isolated, monkeypatch):
    """Stop cancels the run's stream, and the stream may close before the stop comes: the run had been taken for
    one whose page went, a following tab said "reload", and 90 s later a reload said no page had taken it over."""
    monkeypatch.setattr(runs, "LEFT_RUN_SECONDS", 0.5)
    token, gen = training_on_a_loaded_page("page-1")
    gen.close()  # the cancel, first
    assert "Stopped after" in train_tab.stop_run(req("page-1"), [])[0]
    run = runs.REGISTRY.last(token)
    time.sleep(1.0)  # past the grace
    assert run.left_at is None and not run.cut_off
    train_tab.page_loaded(req("page-2"), token)
    assert cut_off_updates("page-2", []) == [(gr.skip(), gr.skip())]


def test_a_run_whose_page_went_while_it_loaded_says_so(isolated):
    """It never trained: the reloaded page had said it "trained on for up to 90 s", and no more."""
    token, *_ = train_tab.page_loaded(req("page-1"), None)
    gen = train_tab.train_run(req("page-1"), None, *args(steps=20_000))
    next(gen)  # "Loading data and building the model…"
    page_goes("page-1", gen)
    train_tab.page_loaded(req("page-2"), token)
    assert "Your run stopped while it loaded" in cut_off_status("page-2", [])[0]


@pytest.mark.usefixtures("keep_short_runs")
def test_stop_then_a_reload_at_once_is_no_page_that_went(isolated):
    """The page's unload came while the stopped run saved: the next page said no page had taken the run over."""
    token, gen = training_on_a_loaded_page("page-1")
    runs.REGISTRY.stop(token)
    runs.page_closed(req("page-1"))  # reloaded at once, the stop still under way
    gen.close()
    assert runs.REGISTRY.last(token).done.wait(30)
    train_tab.page_loaded(req("page-2"), token)
    status, listed = cut_off_status("page-2", [])
    assert status == gr.skip() and listed == gr.skip()  # the page lists its models as it loads: nothing to say


def test_stop_whose_cancel_ends_a_loading_run_first_says_stopped(isolated):
    token, *_ = train_tab.page_loaded(req("page-1"), None)
    gen = train_tab.train_run(req("page-1"), None, *args(steps=20_000))
    next(gen)  # "Loading data and building the model…"
    gen.close()  # Stop's cancel, before the stop
    assert train_tab.stop_run(req("page-1"), [])[0] == train_figures.status_html(
        "Stopped while it loaded: nothing was trained.", tone="warn")
    train_tab.page_loaded(req("page-2"), token)
    assert cut_off_updates("page-2", []) == [(gr.skip(), gr.skip())]


@pytest.mark.usefixtures("keep_short_runs")
def test_a_tab_following_a_run_that_stops_unclaimed_does_not_call_it_under_way(isolated, monkeypatch):
    monkeypatch.setattr(runs, "LEFT_RUN_SECONDS", 0.8)
    token, gen = training_on_a_loaded_page("tab-1")
    train_tab.page_loaded(req("tab-2"), token)
    page_goes("tab-1", gen, after=0.5)
    statuses = [status for status, _ in cut_off_updates("tab-2", [])]
    assert statuses[0] == train_figures.status_html(train_tab.LEFT_RUN_STATUS, tone="warn")
    assert len(statuses) == 2 and train_tab.CUT_OFF_STATUS in html.unescape(statuses[1])


def test_a_bare_api_sessions_run_stops_when_its_stream_ends(isolated):
    """No page can take over the run of a session without an owner token: it stops at once, as before, rather than
    holding a training slot for 90 s."""
    gen = train_tab.train_run(req("api-client"), None, *args(steps=20_000))
    next(update for update in gen if "Training on" in str(update[0]))
    run = runs.REGISTRY.active(runs.owner_key(req("api-client")))
    gen.close()
    assert run.done.wait(30) and run.left_at is None and run.view is None  # `finish` forgets the training data


def test_a_page_follows_another_tab_s_run_once_however_often_it_is_shown(isolated, monkeypatch):
    """The page asks whenever it is shown (`FOLLOW_JS`) or its Train tab opened: a second ask while it follows the
    run says nothing, rather than following it twice."""
    monkeypatch.setattr(train_tab, "OTHER_TAB_SECONDS", 0.3)
    token, gen = training_on_a_loaded_page("tab-1")
    train_tab.page_loaded(req("tab-2"), token)

    async def shown_twice():
        follower = train_tab.run_cut_off(req("tab-2"), [])
        first = await follower.__anext__()  # following: it has said the run is under way
        again = [update async for update in train_tab.run_cut_off(req("tab-2"), [])]
        await follower.aclose()  # the page went: it follows no more
        follower = train_tab.run_cut_off(req("tab-2"), [])  # asked after that, it follows again
        anew = await follower.__anext__()
        await follower.aclose()
        return first, again, anew

    first, again, anew = asyncio.run(shown_twice())
    assert "under way in another tab of this browser" in first[0] and again == [(gr.skip(), gr.skip())]
    assert "under way in another tab of this browser" in anew[0]
    gen.close()


def test_stop_in_another_tab_stops_the_run(isolated, monkeypatch):
    token, gen = training_on_a_loaded_page("tab-1")
    train_tab.page_loaded(req("tab-2"), token)
    assert "Stopped" in train_tab.stop_run(req("tab-2"), [])[0]  # Stop in either tab stops it
    gen.close()


def test_tabs_build_and_wire():
    with gr.Blocks() as demo:
        trained = train_tab.build(gr.State(None), demo, gr.BrowserState())
        reverse_tab.build(trained)
    assert isinstance(trained, gr.State)
    names = {getattr(d.fn, "__name__", "") for d in demo.fns.values()}
    assert {"prepare_run", "train_run", "stop_run", "generate", "after_training", "page_loaded", "run_cut_off",
            "page_closed"} <= names
    stop = next(d for d in demo.fns.values() if getattr(d.fn, "__name__", "") == "stop_run")
    train = next(d for d in demo.fns.values() if getattr(d.fn, "__name__", "") == "train_run")
    assert train.concurrency_id == runs.TRAINING_CONCURRENCY_ID
    assert stop is not None
    waiting = next(d for d in demo.fns.values() if getattr(d.fn, "__name__", "") == "waiting_status")
    assert [type(c).__name__ for c in waiting.outputs] == ["HTML", "Timer"] and waiting.concurrency_id != train.concurrency_id
    kept = next(d for d in demo.fns.values() if getattr(d.fn, "__name__", "") == "conditional_kept")
    assert [c.elem_id for c in kept.outputs] == ["train-conditional"]


def test_the_class_conditional_box_is_unticked_for_data_without_classes():
    """It stayed ticked for "Your own points" (its p_uncond slider too), and Start then refused the run."""
    assert train_tab.conditional_kept(train_tab.OWN_POINTS, True).value is False
    assert train_tab.conditional_kept("swiss_roll", True).value is False
    assert train_tab.conditional_kept("moons", True) == gr.skip()  # data with classes: left as it is
    assert train_tab.conditional_kept(train_tab.OWN_POINTS, False) == gr.skip()


def test_a_toy_run_on_few_points_learns_that_set_and_its_checkpoint_keeps_it(isolated):
    """Fewer training points than usual: the run draws that many (with its seed), the preview shows them, and the
    checkpoint keeps them (so that the Reverse tab can count the samples that copy one)."""
    preview = train_tab.show_training_data(req("alice"), "moons", None, 20)
    fig = figures.as_figure(preview)
    assert np.allclose(np.c_[fig.data[0].x, fig.data[0].y], make_toy2d("moons", 20, seed=0), rtol=DRAWN_RTOL)
    with pytest.raises(gr.Error, match="Training points"):
        train_tab.show_training_data(req("alice"), "moons", None, -3)
    outputs = drain(train_tab.train_run(req("alice"), None, *args(data="moons", n_points=20, seed=3, steps=5)))
    status, *_, trained = outputs[-1]
    assert "Finished after 5 steps" in status
    checkpoint = load_checkpoint(trained[0])
    assert torch.equal(checkpoint.points, make_toy2d("moons", 20, seed=3))
    assert checkpoint.data.name == "moons" and checkpoint.data.source == "20 points of moons, seed 3"
    assert json.loads((Path(trained[0]) / "config.json").read_text())["training"]["data_size"] == 20
    outputs = drain(train_tab.train_run(req("alice"), None, *args(data="moons", steps=5)))
    assert load_checkpoint(outputs[-1][-1][-1]).points is None  # the usual 10,000: regenerated by name
    info, data, n_points, seed, *_, preview = train_tab.start_from_selected(req("alice"), trained[0], trained, None)
    assert data == "moons" and n_points == 20 and seed == 3  # continuing it draws the same 20 points
    assert "drawn again with seed 3" in info
    fig = figures.as_figure(preview)
    assert np.allclose(np.c_[fig.data[0].x, fig.data[0].y], make_toy2d("moons", 20, seed=3), rtol=DRAWN_RTOL)
    # the preview follows the seed, as the run does; other data do not depend on it
    plot, shown, refused = train_tab.toy_points_changed(req("alice"), "moons", None, 20, 7, ("moons", 20, 3), None)
    fig = figures.as_figure(plot)
    assert np.allclose(np.c_[fig.data[0].x, fig.data[0].y], make_toy2d("moons", 20, seed=7), rtol=DRAWN_RTOL)
    assert shown == ("moons", 20, 7) and refused is None
    # leaving a box unchanged keeps what the preview shows (e.g. a run's samples)
    assert train_tab.toy_points_changed(req("alice"), "moons", None, 20, 7, shown, None) == (gr.skip(), shown, None)
    assert train_tab.toy_points_changed(req("alice"), "mnist", None, 20, 7, shown, None) == (gr.skip(), shown, None)
    with pytest.raises(gr.Error, match="Seed"):
        train_tab.toy_points_changed(req("alice"), "moons", None, 20, -1, shown, None)
    # the entry refused is not refused again (leaving the box after Enter), and it leaves the preview's record alone:
    # the earlier entry again still keeps the preview (it had been redrawn over a run's samples)
    bad = ("moons", 20, -1)
    assert train_tab.toy_points_changed(req("alice"), "moons", None, 20, -1, shown, bad) == (gr.skip(), shown, bad)
    assert train_tab.toy_points_changed(req("alice"), "moons", None, 20, 7, shown, bad) == (gr.skip(), shown, bad)
    plot, shown = train_tab.data_changed(req("alice"), "swiss_roll", None, 20, 7)
    assert shown == ("swiss_roll", 20, 7) and len(figures.as_figure(plot).data[0].x) == 20


def test_a_class_conditional_run_learns_the_classes_and_is_steered_in_the_reverse_tab(isolated):
    from app import guidance_panel

    *_, trained = drain(train_tab.train_run(req("alice"), None, *args(data="moons", steps=300, batch=256,
                                                                conditional=True)))[-1]
    path = trained[-1]
    assert json.loads((Path(path) / "config.json").read_text())["model"]["config"]["num_classes"] == 2
    # the previews draw half the samples from each moon, coloured by class, and count those on their own moon
    final = final_preview(req("alice"))
    hits, n = map(int, re.search(r" · coloured by class · (\d+) of (\d+) nearest a training point of their class$",
                                 final.label).groups())
    assert hits > 0.8 * n, final.label
    traces = figures.as_figure(final).data
    assert [t.name for t in traces] == ["training data", "samples: upper moon", "samples: lower moon"]
    assert [len(t.x) for t in traces[1:]] == [n // 2, n // 2]
    assert guidance_panel.method_choices(path) == ["classifier-free"]
    assert guidance_panel.class_dropdown(path).value == "upper moon"
    _, stats = guidance_panel.guide(path, "ddpm_small", 0.0, 100, "log_snr", 300, 0, trained, "lower moon", 3.0,
                                    progress=lambda *a, **k: None)
    unguided, guided = (int(k.replace(",", "")) for k in re.findall(r"\*\*([\d,]+) of 300\*\*", stats))
    assert guided > 270 and unguided < 200, stats  # nearest a training point of the lower moon
    figure, stats = guidance_panel.guide_field(path, trained, "lower moon", 50)  # its implicit classifier alone
    assert [tr.mode for tr in figures.as_figure(figure).data].count("lines+markers") == 1 and "mean cosine" not in stats
    *_, conditional, p_uncond, _, _, _ = train_tab.start_from_selected(req("alice"), path, trained, None)
    assert conditional == {"value": True, "interactive": False, "__type__": "update"}
    with pytest.raises(gr.Error, match="Swiss roll has no classes to condition on; class-conditional training needs "
                                       "data with classes: Two moons, Circles"):
        train_tab.prepare_run(req("bob"), *args(conditional=True))
    # continued, it needs data with as many classes as it learnt
    plan = train_plan.make_plan(*args(data="circles", start_from=path, trained=trained)[:-len(PARAMS)], PARAMS)
    assert plan.conditional and plan.init_from == Path(path)
    with pytest.raises(gr.Error) as caught:
        train_tab.prepare_run(req("alice"), *args(data="eight_gaussians", start_from=path, trained=trained))
    assert caught.value.message.startswith(f"{Path(path).name} is conditional on 2 classes, but 8 Gaussians has 8: "
                                           "pick data with 2 classes (it was trained on moons)")


def test_a_start_that_fails_after_waiting_frees_the_sessions_slot(isolated):
    """The checkpoint to continue is checked again when the run leaves the queue: gone by then, the run fails
    in words and the session can start another."""
    *_, trained = drain(train_tab.train_run(req("alice"), None, *args(steps=5)))[-1]
    train_tab.prepare_run(req("alice"), *args(start_from=trained[0], trained=trained))
    shutil.rmtree(trained[0])
    with pytest.raises(gr.Error, match="Start from: .* is no longer on the server"):
        drain(train_tab.train_run(req("alice"), None, *args(start_from=trained[0], trained=trained)))
    assert runs.REGISTRY.active("alice") is None
    train_tab.prepare_run(req("alice"), *args(steps=5))  # not "already running"


def test_a_conditional_run_without_dropped_classes_is_recorded_and_warned_about(isolated):
    from app import guidance_panel

    assert train_plan.make_plan(*args(p_uncond=0.0)[:-len(PARAMS)], PARAMS).p_uncond == 0.1  # unconditional: unused
    plan = train_plan.make_plan(*args(data="moons", conditional=True, p_uncond=0.0)[:-len(PARAMS)], PARAMS)
    assert plan.p_uncond == 0.0 and train_plan.UNTRAINED_NULL_NOTE in plan.notes
    assert train_plan.train_config(plan, DataInfo(name="moons", kind="2d", shape=(2,))).p_uncond == 0.0
    status, *_, trained = drain(train_tab.train_run(req("alice"), None, *args(data="moons", steps=30, conditional=True,
                                                                          p_uncond=0.0)))[-1]
    assert "∅ (no class) is never shown in training" in status
    path = trained[-1]
    training = json.loads((Path(path) / "config.json").read_text())["training"]
    assert (training["p_uncond"], training["classes"]) == (0.0, 2)
    assert checkpoint_access.UNTRAINED_NULL in checkpoint_access.describe(path, trained)
    _, stats = guidance_panel.sweep(path, "ddpm_small", 0.0, 10, "uniform", 20, 0, trained, "lower moon", "0, 1",
                                    progress=lambda *a, **k: None)
    assert stats.endswith(checkpoint_access.UNTRAINED_NULL)
    info, *_, p_uncond, _, _, _ = train_tab.start_from_selected(req("alice"), path, trained, None)
    assert (p_uncond.visible, p_uncond.value) == (True, 0.0)  # proposed again for the next run, which may change it
    assert "conditional on 2 classes" in info and "unconditional here" not in info  # that is the Reverse tab's
    assert "unconditional here" in checkpoint_access.describe(path, trained)
    # a run that drops classes: its share in the description, no warning
    *_, trained = drain(train_tab.train_run(req("alice"), None, *args(data="moons", steps=30, conditional=True,
                                                                   p_uncond=0.25, trained=trained)))[-1]
    assert "∅ in 25% of its training examples" in checkpoint_access.describe(trained[-1], trained)
    _, stats = guidance_panel.sweep(trained[-1], "ddpm_small", 0.0, 10, "uniform", 20, 0, trained, "lower moon",
                                    "0, 1", progress=lambda *a, **k: None)
    assert checkpoint_access.UNTRAINED_NULL not in stats


def test_every_status_tone_is_readable_on_the_light_and_the_dark_theme():
    """WCAG contrast ≥ 4.5 for each tone's text: on white, and on the dark theme's blocks (neutral 800). The amber of
    "Stopped … Saved as" had been 3.2:1 on white, faint on a projector."""
    def luminance(colour: str) -> float:
        channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4 for v in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    def contrast(a: str, b: str) -> float:
        darker, lighter = sorted([luminance(a), luminance(b)])
        return (lighter + 0.05) / (darker + 0.05)

    dark_block = app.THEME.neutral_800
    for tone, (light, dark) in train_figures.TONE_COLOURS.items():
        assert contrast(light, "#ffffff") >= 4.5 and contrast(dark, dark_block) >= 4.5, tone
        if tone != "info":  # info's text keeps the page's colour
            assert f".dark .train-status .tone-{tone} {{color: {dark}}}" in app.CSS
        assert f'class="tone-{tone}"' in train_figures.status_html("x", tone=tone)


def test_a_start_that_fails_while_loading_says_so_in_the_status(isolated, monkeypatch):
    """An error after the first status ("Loading data and building the model…") was a toast alone: the status said
    "Loading…" for good (and stayed busy for a screen reader). Now it says the run did not start, and why."""
    def refusing(*_, **__):
        raise ValueError("the network does not fit this data")

    trainer = train_tab.Trainer
    monkeypatch.setattr(train_tab, "Trainer", refusing)
    updates = []
    with pytest.raises(gr.Error, match="the network does not fit this data"):
        for update in train_tab.train_run(req("alice"), None, *args()):
            updates.append(update)
    status = updates[-1][0]
    assert "Not started: the network does not fit this data" in status
    assert 'data-tone="error"' in status and "data-busy" not in status
    monkeypatch.setattr(train_tab, "Trainer", trainer)
    assert "Finished after 2 steps" in drain(train_tab.train_run(req("alice"), None, *args(steps=2)))[-1][0]  # free


def test_a_run_stopped_within_its_first_steps_saves_nothing(isolated):
    """Stop pressed right after Start saved a model of a step or two, which took the place of the browser's oldest
    (good) model. A run stopped before `SHORTEST_KEPT` steps saves nothing, and says so."""
    gen = train_tab.train_run(req("alice"), None, *args(steps=20000))
    next(gen), next(gen)  # loading, then the first progress update
    status, trained = train_tab.stop_run(req("alice"), [])
    drain(gen)
    steps_done = int(re.search(r"Stopped after ([\d,]+) step", status).group(1).replace(",", ""))
    assert steps_done < SHORTEST_KEPT and trained == [] and not list_checkpoints(runs.user_dir("alice"))
    assert "Nothing is saved" in status and f"from {SHORTEST_KEPT} steps on" in status


def test_start_from_a_model_deleted_since_goes_back_to_a_new_model_and_says_so(isolated):
    """The model to continue from was pushed out (by the run that continued it, say): "Start from" went back to a new
    model without a word, and the next Start trained from random weights."""
    *_, trained = drain(train_tab.train_run(req("alice"), None, *args(steps=5)))[-1]
    kept = train_tab.refresh_start_choices(trained, trained[0])
    assert kept.value == trained[0] and not kept.info
    shutil.rmtree(trained[0])
    gone = train_tab.refresh_start_choices(trained, trained[0])
    assert gone.value == train_tab.NEW_MODEL and "is no longer on the server" in gone.info
    assert not train_tab.refresh_start_choices(trained, train_tab.NEW_MODEL).info


def test_a_run_whose_model_cannot_be_saved_is_refused_before_it_trains(tmp_path, monkeypatch):
    """A server whose runs folder could not be written let a run train, then said "Finished … the model could not be
    saved", in green."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("DDPM_RUNS_DIR", str(blocker / "runs"))
    assert "cannot be written" in runs.runs_folder_problem()
    monkeypatch.setenv("DDPM_RUNS_DIR", str(blocker))
    assert runs.runs_folder_problem().endswith("is a file, not a folder")  # not "File exists"
    monkeypatch.setenv("DDPM_RUNS_DIR", str(blocker / "runs"))
    with pytest.raises(gr.Error, match="cannot save trained models") as refused:
        train_tab.prepare_run(req("alice"), *args())
    assert "DDPM_RUNS_DIR" in refused.value.message and runs.REGISTRY.active("alice") is None  # Start can be pressed again


def test_a_save_that_fails_after_the_run_is_said_as_an_error(monkeypatch, caplog):
    """The log names the browser's folder, not its owner token (the secret that its models are handed to)."""
    def full_disk(*_, **__):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(train_worker, "save_checkpoint", full_disk)
    status, *_, trained = drain(train_tab.train_run(req("alice"), None, *args(steps=20)))[-1]
    assert 'data-tone="error"' in status and trained == []  # no model added to the lists
    assert "Finished after 20 steps. But the model could not be saved on this server (No space left on device)." \
        in status  # not the server's path (it had been shown)
    assert f"saving the checkpoint of {runs.key_folder('alice')} failed" in caplog.text
    assert "alice" not in caplog.text


def test_a_bad_server_setting_stops_the_app_at_start_up_in_one_line(monkeypatch):
    """It had raised a visitor's message ("ask the host to fix it") as a traceback; DDPM_HEAVY_CONCURRENCY=abc was
    taken as 1 without a word."""
    for name, value in (("DDPM_MAX_TRAIN_STEPS", "abc"), ("DDPM_RUNS_KEEP_HOURS", "-1"), ("DDPM_HEAVY_CONCURRENCY", "x"),
                        ("DDPM_MAX_TRAIN_SECONDS", "nan"), ("DDPM_MAX_SAMPLE_SECONDS", "0"),
                        ("DDPM_MAX_RUNS_GB", "-1")):
        monkeypatch.setenv(name, value)
        with pytest.raises(runs.SettingError, match=f"^{name}="):
            runs.check_settings()
        monkeypatch.delenv(name)
    runs.check_settings()
    env = {**os.environ, "DDPM_MAX_RUNS_PER_USER": "0"}
    ended = subprocess.run([sys.executable, "app.py"], cwd=Path(app.__file__).parents[1], env=env,
                           capture_output=True, text=True, timeout=120)
    assert ended.returncode == 1 and ended.stderr.strip().splitlines() == [
        "app.py: DDPM_MAX_RUNS_PER_USER='0' must be at least 1; fix the setting and start again"]


def test_pages_are_remembered_for_the_sessions_gradio_keeps(monkeypatch):
    """Gradio kept a record of every page it had served (0.55 MB each here), up to 10,000, and the pages' owner links
    were dropped only with a session's State, which a session pushed out never has: both grew with each visit."""
    assert app.LAUNCH_OPTIONS["state_session_capacity"] == runs.SESSIONS_KEPT
    monkeypatch.setattr(runs, "SESSIONS_KEPT", 2)
    tokens = [runs.adopt_owner(req(f"page-{i}"), None) for i in range(4)]
    assert runs.owner_key(req("page-0")) == tokens[0]  # used again: now the most recent
    runs.adopt_owner(req("page-4"), None)
    assert list(runs._page_owners) == ["page-2", "page-3", "page-0", "page-4"]  # page-1 went, the least recent
    assert runs.owner_key(req("page-1")) == "page-1" and not runs.page_open("page-1")


def test_durations_ends_and_limits_read_exactly(monkeypatch):
    """Seconds round to the nearest (59.6 s is a minute), "1 hour" is singular but "0.5 hours" is not, the first run
    to end is the soonest (its pace so far: 1,000 steps left at 10 steps/s, 500 at 10/s), the time limit ends a run
    only if it comes before its last step, and a progress bar never runs past its track."""
    assert [runs.duration_text(s) for s in (59.4, 59.6, 60, 187)] == ["59 s", "1 min 00 s", "1 min 00 s", "3 min 07 s"]
    monkeypatch.setenv("DDPM_RUNS_KEEP_HOURS", "0.5")
    assert runs.keep_text() == "0.5 hours"
    monkeypatch.setenv("DDPM_RUNS_KEEP_HOURS", "1")
    assert runs.keep_text() == "1 hour"
    progress = [types.SimpleNamespace(step=100, total_steps=1100, elapsed=10.0),
                types.SimpleNamespace(step=600, total_steps=1100, elapsed=60.0)]
    assert runs.soonest_end([types.SimpleNamespace(progress=p) for p in progress]) == 50.0
    assert runs.step_at_time_limit(types.SimpleNamespace(step=100, total_steps=1000, elapsed=50.0), 500.0) is None
    assert runs.step_at_time_limit(types.SimpleNamespace(step=100, total_steps=1000, elapsed=50.0), 400.0) == 800
    assert "width:100.0%" in train_figures.status_html("x", fraction=1.2)
