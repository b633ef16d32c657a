"""The Reverse tab's sweep of the number of sampling steps (app.steps_panel), on shipped checkpoints."""

from __future__ import annotations

import math
import re

import gradio as gr
import pytest
import torch

from app import checkpoint_access, figures, steps_panel
from core.checkpoints import load_checkpoint, save_checkpoint


def no_progress(*args, **kwargs) -> None:
    return None


@pytest.fixture(autouse=True)
def small_sweeps(monkeypatch):
    """200 points or 8 images a chain (the panel's 1,000 and 64 are for telling chains apart, not for tests)."""
    monkeypatch.setattr(steps_panel, "SWEEP_SAMPLES", {"2d": 200, "image": 8})


def sweep(name_or_path: str, spacing: str = "uniform", trained=None, pictures: list | None = None):
    """(the quality figure, the stats); the samples' figure goes in ``pictures``, if given."""
    path = name_or_path if "/" in name_or_path else str(checkpoint_access.REPO_CHECKPOINTS / name_or_path)
    figure, stats, samples = steps_panel.sweep_steps(path, spacing, 0, False, trained or [], progress=no_progress)
    if pictures is not None:
        pictures.append(figures.as_figure(samples))
    return figures.as_figure(figure), stats


def quality(stats: str, steps: int) -> list[float]:
    """The table's row for ``steps``: DDPM's and DDIM's quality."""
    row = re.search(rf"^\| {steps} \| ([^|]+) \| ([^|]+) \|$", stats, re.M)
    return [float("inf") if "diverged" in cell else float(cell.split()[0]) for cell in row.groups()]


def test_step_counts_stop_at_T_and_add_all_T_for_2d():
    assert steps_panel.step_counts(1000, "2d") == [5, 10, 20, 50, 100, 200, 500, 1000]
    assert steps_panel.step_counts(300, "2d") == [5, 10, 20, 50, 100, 200, 300]
    assert steps_panel.step_counts(1000, "image") == [5, 10, 20, 50, 100]
    assert steps_panel.step_counts(30, "image") == [5, 10, 20]
    assert steps_panel.step_counts(3, "2d") == [1, 2, 3] and steps_panel.step_counts(4, "image") == [1, 2, 3, 4]
    band = figures.as_figure(figures.quality_by_steps_figure({"DDPM": [(3, 1.2)]}, "SW ratio", real=[0.9, 1.1])).data[-1]
    assert band.x[1] > band.x[0]  # one count of steps: the data's band still has a width
    assert steps_panel.fewest_steps([(5, 4.0, 0), (20, 1.2, 0), (50, 1.0, 0), (100, 1.1, 0)]) == 20


def test_the_steps_a_sampler_needs_are_judged_against_the_datas_own_scores():
    """A best score below the data's own range is noise: "within 25 % of the best" would chase it (0.5 at 100 steps
    here would ask for 100 steps where 20 are already as good as the data can tell)."""
    rows = [(5, 4.0, 0), (20, 1.2, 0), (50, 1.0, 0), (100, 0.5, 0)]
    assert steps_panel.enough_steps("ddpm", rows, [0.8, 1.3]) == ("DDPM, σ² = β̃: **20 steps** score inside the data's "
                                                                  "own range, as do all longer chains")
    # a longer chain outside that range again is named (it had been passed over: 500 steps at 1.61 over 1.43)
    again = [(5, 7.8, 0), (50, 1.3, 0), (100, 1.2, 0), (500, 1.61, 0), (1000, math.nan, 0)]
    assert steps_panel.enough_steps("ddpm", again, [0.8, 1.43]) == (
        "DDPM, σ² = β̃: **50 steps** score inside the data's own range; of the longer chains only 100 does too: 500 "
        "(1.61), 1000 (diverged) do not")  # "as do the longer chains but 500, 1000" read as most of them inside
    assert steps_panel.enough_steps("ddpm", again[:4] + [(1000, 1.1, 0)], [0.8, 1.43]) == (
        "DDPM, σ² = β̃: **50 steps** score inside the data's own range, as do the longer chains but 500 (1.61)")
    # one longer chain in, one out: "as do the longer chains but 50"; a score at the range's top counts as inside
    assert steps_panel.enough_steps("ddpm", [(5, 2.0, 0), (20, 1.0, 0), (50, 1.6, 0), (100, 1.1, 0)], [0.8, 1.3]) == (
        "DDPM, σ² = β̃: **20 steps** score inside the data's own range, as do the longer chains but 50 (1.6)")
    assert steps_panel.enough_steps("ddpm", [(5, 2.0, 0), (20, 1.3, 0)], [0.8, 1.3]) == (
        "DDPM, σ² = β̃: **20 steps** score inside the data's own range")
    assert steps_panel.fewest_steps([(5, 1.25, 0), (50, 1.0, 0)]) == 5  # exactly 25 % over the best is within
    table = steps_panel.sweep_markdown("m", {"ddpm": [(5, 1.234, 0.5)]}, "SW", 100, "uniform", False, [0.9, 1.2])
    assert "| 5 | 1.23 (0.5 s) |" in table and "(best: 1.23, 5 steps)" in table
    assert steps_panel.enough_steps("ddpm", [(5, 7.8, 0), (50, 1.3, 0), (500, 1.61, 0)], [0.8, 1.43]).endswith(
        "**50 steps** score inside the data's own range; no longer chain does: 500 (1.61)")
    assert steps_panel.enough_steps("ddim", rows, [0.1, 0.3]) == ("DDIM, η = 0: no chain scores inside the data's own "
                                                                  "range (best: 0.5, 100 steps)")
    assert steps_panel.enough_steps("ddpm", rows, []) == "DDPM, σ² = β̃: **100 steps** are within 25 % of its best"
    assert steps_panel.enough_steps("ddpm", [(50, 1.8, 0), (100, 1.2, 0), (1000, 0.7, 0)], [0.6, 0.9]) == (
        "DDPM, σ² = β̃: **1000 steps** score inside the data's own range")  # no "as do all longer chains": none is


def test_ddim_needs_few_steps_from_the_v_model_and_fails_from_the_eps_model_on_cosine():
    """The sweep's figures (200 points, seed 0): an ε network's error at t = T, multiplied by 1/√ᾱ_T in x̂₀, throws
    DDIM's points far out on the cosine schedule at every step count; the v network's DDIM lands on the data."""
    pictures: list = []
    v_figure, v_stats = sweep("swiss_roll_cosine_v", pictures=pictures)
    _, eps_stats = sweep("swiss_roll_cosine")
    # beneath the curves, the samples: one row per sampler, one column per number of steps, each a picture
    samples = pictures[0]
    titles = [a.text for a in samples.layout.annotations]
    assert titles[:8] == [f"{k:,} steps" for k in steps_panel.step_counts(1000, "2d")]
    assert titles[8:] == ["DDPM, σ² = β̃", "DDIM, η = 0"] and len(samples.layout.images) == 16
    assert len({image.source for image in samples.layout.images}) == 16  # every chain its own samples
    assert "Not drawn in the pictures" not in v_stats  # the v model's samples are all in sight
    undrawn = re.search(r"Not drawn in the pictures, of 200 samples a chain \(beyond ±4, or not finite numbers\): "
                        r"(.*)\.$", eps_stats)
    assert undrawn and "DDIM, η = 0, 5 steps: " in undrawn[1], eps_stats  # the ε model's DDIM throws them out of sight
    x = torch.tensor([[0.0, 0.0], [5.0, 0.0], [math.nan, 0.0], [math.inf, 1.0]])
    assert steps_panel.undrawn_words([5], {"ddim": [x]}, 4).endswith("DDIM, η = 0, 5 steps: 3.")
    assert [len(trace.x) for trace in v_figure.data] == [8, 8, 4] and v_figure.layout.xaxis.type == "log"
    assert [trace.name for trace in v_figure.data][:2] == ["DDPM, σ² = β̃", "DDIM, η = 0"]
    assert quality(v_stats, 50)[1] < 2.5 < 10 * quality(v_stats, 50)[1] < quality(eps_stats, 50)[1]
    assert quality(eps_stats, 1000)[0] < 2.5  # the full DDPM chain is fine for both
    assert "DDPM, σ² = β̃: **" in v_stats and "steps** score inside the data's own range" in v_stats
    assert "evenly in t" in v_stats
    spread = re.search(r"The data itself, 8 draws of 200 scored the same way, scores \*\*([\d.]+)–([\d.]+)\*\*", v_stats)
    assert spread and 0 < float(spread[1]) < 1 < float(spread[2])  # the SW ratio's noise at 200 points
    band = v_figure.data[2]  # the same spread, a grey band across the steps swept
    assert band.fill == "toself" and list(band.x) == [5, 1000, 1000, 5] and band.name.startswith("the data itself (8")
    assert f"{min(band.y):.3g}–{max(band.y):.3g}" == f"{spread[1]}–{spread[2]}"


def test_images_are_measured_by_the_fid_ratio_and_never_download(shared_data, monkeypatch):
    monkeypatch.setattr(steps_panel, "STEP_COUNTS", (2, 5))
    monkeypatch.setenv("DDPM_DATA_DIR", str(shared_data))
    pictures: list = []
    figure, stats = sweep("mnist", pictures=pictures)
    grids = [trace for trace in pictures[0].data if trace.type == "image"]
    assert len(grids) == 4 and len({g.source for g in grids}) == 4  # DDPM and DDIM, 2 and 5 steps: 8 digits each
    assert "8 samples a chain" in stats and "FID ratio" in stats and all(q > 0 for q in quality(stats, 5))
    assert "The data itself, 8 draws of 8 scored the same way, scores **" in stats
    assert [list(trace.x) for trace in figure.data] == [[2, 5], [2, 5], [2, 5, 5, 2]]
    monkeypatch.setenv("DDPM_DATA_DIR", "/nonexistent")
    with pytest.raises(gr.Error, match="data folder .* has none"):
        sweep("mnist")


def test_bad_inputs_and_a_diverged_model_are_clear_errors(tmp_path):
    with pytest.raises(gr.Error, match="Unknown step spacing"):
        sweep("moons", spacing="karras")
    checkpoint = load_checkpoint(checkpoint_access.REPO_CHECKPOINTS / "moons")
    for weight in checkpoint.model.parameters():
        weight.data.fill_(float("nan"))
    broken = str(save_checkpoint(tmp_path / "nan", checkpoint.model, checkpoint.schedule, checkpoint.data))
    with pytest.raises(gr.Error, match="NaN or infinite"):
        sweep(broken, trained=[broken])
