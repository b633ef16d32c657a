"""The Reverse tab's panel on the variational bound (app.bound_panel), on shipped checkpoints."""

from __future__ import annotations

import math
import re

import gradio as gr
import pytest

from app import bound_panel, checkpoint_access, figures
from core.checkpoints import load_checkpoint, save_checkpoint
from core.data import DataInfo
from core.elbo import Bound

SWISS = str(checkpoint_access.REPO_CHECKPOINTS / "swiss_roll_linear")
MNIST = str(checkpoint_access.REPO_CHECKPOINTS / "mnist")
NO_PROGRESS = lambda *a, **k: None  # noqa: E731


def column(stats: str, row: str) -> list[float]:
    """The numbers of one row of the bound's table (σ² = β̃, σ² = β)."""
    line = next(line for line in stats.splitlines() if line.startswith(f"| {row}"))
    cells = [cell.strip(" *%") for cell in line.split("|")[2:4]]
    assert not any(cell.startswith("-") for cell in cells), f"a hyphen for a minus sign: {line}"
    return [float(cell.replace("−", "-")) for cell in cells]


def test_the_bound_of_a_2d_model_adds_up_and_is_tighter_with_sigma2_beta():
    figure, stats = bound_panel.measure_bound(SWISS, 5000, 0, False, [], progress=NO_PROGRESS)
    assert f"on {bound_panel.MAX_EXAMPLES['2d']:,} training examples · all 999 terms" in stats  # 5,000 capped
    prior, denoising, decoder = (column(stats, row) for row in ("L<sub>T</sub>", "Σ L<sub>t−1</sub>", "L₀"))
    nats, bits = column(stats, "**total, nats"), column(stats, "**total, bits")
    for k in range(2):
        assert nats[k] == pytest.approx(prior[k] + denoising[k] + decoder[k], abs=2e-3)
        assert bits[k] == pytest.approx(nats[k] / math.log(2), abs=2e-3)
    assert nats[1] < nats[0] - 0.2 and "The tighter bound here: **σ² = β_t**" in stats
    assert decoder[0] == decoder[1] < 0  # one decoder for both; a density above 1
    fig = figures.as_figure(figure)
    assert [trace.name for trace in fig.data] == ["σ² = β̃_t", "σ² = β_t"]
    assert fig.layout.yaxis.title.text == "L<sub>t−1</sub>, nats per dimension"  # plotly's subscript, not raw TeX
    assert list(fig.data[0].x) == list(range(2, 1001)) and fig.data[0].y[0] > 100 * fig.data[0].y[-1]


def test_the_bound_on_digits_is_estimated_and_tighter_with_sigma2_beta_tilde():
    figure, stats = bound_panel.measure_bound(MNIST, 4, 0, False, [], progress=NO_PROGRESS)
    match = re.search(r"an unbiased estimate of Σ L<sub>t−1</sub> from (\d+) of its 999 terms", stats)
    assert match and int(match.group(1)) <= bound_panel.IMAGE_TERMS
    nats = column(stats, "**total, nats")
    assert nats[0] < nats[1] and "The tighter bound here: **σ² = β̃_t**" in stats
    assert 0.5 < column(stats, "**total, bits")[0] < 4  # bits per pixel of 8-bit digits
    assert len(figures.as_figure(figure).data[0].x) == int(match.group(1))


def test_refusals(tmp_path):
    with pytest.raises(gr.Error, match="Seed"):
        bound_panel.measure_bound(SWISS, 10, -1, False, [], progress=NO_PROGRESS)
    checkpoint = load_checkpoint(SWISS)
    old_csv = save_checkpoint(tmp_path / "old_csv", checkpoint.model, checkpoint.schedule,
                              DataInfo("pts", "2d", (2,), source="pts.csv"))
    with pytest.raises(gr.Error, match="The bound needs training examples, and this server has none: "
                                       "the training points of pts were not kept with the model\\.$"):  # one full stop
        bound_panel.measure_bound(str(old_csv), 10, 0, False, [str(old_csv)], progress=NO_PROGRESS)


def test_a_diverged_model_is_refused(tmp_path):
    checkpoint = load_checkpoint(SWISS)
    for weight in checkpoint.model.parameters():
        weight.data.fill_(1e30)  # finite weights whose activations overflow: NaN samples
    broken = save_checkpoint(tmp_path / "nan", checkpoint.model, checkpoint.schedule, checkpoint.data)
    with pytest.raises(gr.Error, match="NaN or infinite"):
        bound_panel.measure_bound(str(broken), 10, 0, False, [str(broken)], progress=NO_PROGRESS)


def test_the_bound_figure_labels_its_axes_whatever_their_span():
    """At T = 10000 the terms spanned 50 decades (50 piled labels); at T = 3 the t axis (2 … 3) had none."""
    wide = figures.as_figure(figures.bound_terms_figure([2, 100, 10000], {"σ² = β̃": [1e3, 1e-20, 1e-49]})).layout
    assert 4 <= len(wide.yaxis.tickvals) <= 9 and len(wide.xaxis.tickvals) >= 3
    short = figures.as_figure(figures.bound_terms_figure([2, 3], {"σ² = β̃": [0.5, 0.2]})).layout
    assert sum(2 <= v <= 3 for v in short.xaxis.tickvals) >= 2 and sum(0.2 <= v <= 0.5 for v in short.yaxis.tickvals) >= 2


def test_the_early_share_weighs_each_measured_term_by_the_steps_it_stands_for():
    """Σ L_{t−1} from t ≤ 10: of 19 equal terms t = 2…20, 9 (47 %); of three drawn terms at 2, 10 and 50 standing
    for 3 steps each, two thirds."""
    every = Bound(prior=0.00123, diffusion=19.0, decoder=1.0, ts=list(range(2, 21)), terms=[1.0] * 19, weights=[1] * 19,
                  discrete=False)
    assert bound_panel.early_share(every) == pytest.approx(9 / 19)
    table = bound_panel.bound_markdown("m", {"small": every, "large": every}, "2d", 100, 1.0, 20, False)
    assert "| … of it from t ≤ 10 | 47% | 47% |" in table
    assert "| L<sub>T</sub> (prior: x<sub>T</sub> against N(0, I)) | 0.0012 | 0.0012 |" in table
    drawn = Bound(prior=0.001, diffusion=9.0, decoder=1.0, ts=[2, 10, 50], terms=[1.0] * 3, weights=[3] * 3,
                  discrete=False)
    assert bound_panel.early_share(drawn) == pytest.approx(2 / 3)
