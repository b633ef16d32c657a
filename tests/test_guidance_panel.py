"""The Reverse tab's guidance panel (app.guidance_panel), on the shipped mnist and eight_gaussians models (classifier
guidance) and their class-conditional versions (classifier-free guidance)."""

from __future__ import annotations

import math
import os
import re
import shutil
import types

import gradio as gr
import pytest
import torch

from app import checkpoint_access, figures, guidance_panel, movie_files, reverse_tab
from app.images import mnist_digits
from core.checkpoints import load_checkpoint
from core.classifier import load_classifier
from core.data import GaussianMixture
from core.guidance import class_score, model_mixture

SWISS = str(checkpoint_access.REPO_CHECKPOINTS / "swiss_roll_linear")
MNIST = str(checkpoint_access.REPO_CHECKPOINTS / "mnist")
GAUSSIANS = str(checkpoint_access.REPO_CHECKPOINTS / "eight_gaussians")
GAUSSIANS_CONDITIONAL = str(checkpoint_access.REPO_CHECKPOINTS / "eight_gaussians_conditional")
MNIST_CONDITIONAL = str(checkpoint_access.REPO_CHECKPOINTS / "mnist_conditional")


def test_guided_digits_beside_unguided_ones_from_the_same_noise():
    figure, stats = guidance_panel.guide(MNIST, "ddim", 0.0, 20, "uniform", 8, 0, [], "7", 3.0,
                                         progress=lambda *a, **k: None)
    fig = figures.as_figure(figure)
    assert [a.text for a in fig.layout.annotations[:2]] == ["unguided (s = 0)", "guided towards 7 (s = 3)"]
    assert len(fig.data) == 2
    unguided, guided = (int(k) for k in re.findall(r"\*\*(\d) of 8\*\*", stats))
    assert unguided <= 3 and guided >= 6, stats
    assert "8 samples from the same noise" in stats and "20 of T = 1000 steps" in stats


def test_another_scale_or_class_is_guided_from_the_unguided_samples_kept(monkeypatch):
    """The unguided half of a click is the same for every scale and class: it is sampled once for the model,
    sampler, n and seed, and kept (it was a third of each click on the 8 Gaussians); another seed samples anew."""
    sampled = []
    samples = guidance_panel._samples
    monkeypatch.setattr(guidance_panel, "_samples", lambda checkpoint, job: sampled.append(
        checkpoint.model is job.unguided.model) or samples(checkpoint, job))
    quiet = dict(progress=lambda *a, **k: None)
    first, stats = guidance_panel.guide(MNIST, "ddim", 0.0, 5, "uniform", 4, 11, [], "7", 3.0, **quiet)
    assert sampled == [True, False] and re.search(r"unguided in [\d.]+ m?s, guided in", stats), stats
    second, stats = guidance_panel.guide(MNIST, "ddim", 0.0, 5, "uniform", 4, 11, [], "2", 1.0, **quiet)
    assert sampled == [True, False, False] and "unguided kept from an earlier click, guided in" in stats, stats
    unguided = [figures.as_figure(figure).data[0].source for figure in (first, second)]
    assert unguided[0] == unguided[1]  # the same picture of the same samples
    guidance_panel.guide(MNIST, "ddim", 0.0, 5, "uniform", 4, 12, [], "2", 1.0, **quiet)
    assert sampled[3:] == [True, False]
    job = guidance_panel.guidance_inputs(MNIST, "ddim", 0.0, 5, "uniform", 4, 12, [], "2", 1.0)
    guidance_panel.unguided_samples(job)[0].fill_(0.0)  # a caller's change stays its own
    assert guidance_panel.unguided_samples(job)[0].abs().sum() > 0 and sampled[5:] == []


def test_a_model_saved_again_at_the_same_path_is_told_apart(tmp_path):
    """What the unguided samples and the data's own scores are kept for: a run's or an upload's folder name comes
    back for another model once the first is pruned, and a config's "created" (to the second) can match."""
    folder = tmp_path / "model"
    shutil.copytree(MNIST, folder)
    first = checkpoint_access.files_stamp(folder)
    weights = folder / "model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 1))
    assert checkpoint_access.files_stamp(folder) != first and checkpoint_access.files_stamp(folder)[0] == first[0]
    # its folder gone since the model was loaded (a run pruned, an upload swept): made, not kept, and no error
    made = []
    model = types.SimpleNamespace(path=folder)
    shutil.rmtree(folder)
    for _ in range(2):
        assert checkpoint_access.kept_for_checkpoint(model, "a test's value", lambda: made.append(1) or "value") == \
            "value"
    assert made == [1, 1]


def test_the_guided_chain_plays_in_the_player():
    page, stats, movie, sprite = guidance_panel.play(types.SimpleNamespace(session_hash="guide"), MNIST, "ddim", 0.0,
                                                     10, "uniform", 4, 0, 6, [], "3", 2.0, progress=None)
    assert 'data-ts="1000,' in page and ',0"' in page and "predicted x̂₀" in page
    assert "4 samples" in stats and sprite.endswith(".png")
    # said and named as guided: it played as the plain model's chain, whose samples seemed nearly all 3s
    assert stats.startswith("**mnist** · guided towards 3 (classifier guidance, s = 2) · DDIM")
    assert movie_files.file_paths(movie)[0].name == "reverse-mnist-ddim10-seed0-guided-3.gif"


def test_class_choices_follow_the_model():
    dropdown = guidance_panel.class_dropdown(MNIST, None)
    assert [c[0] for c in dropdown.choices] == [str(k) for k in range(10)] and dropdown.value == "7"
    assert guidance_panel.class_dropdown(MNIST, "2").value == "2"
    assert guidance_panel.class_dropdown(SWISS, "2").choices == [] and guidance_panel.class_dropdown(SWISS).value is None
    gaussians = guidance_panel.class_dropdown(GAUSSIANS, "7")
    assert len(gaussians.choices) == 8 and gaussians.value == "0° (right)"


def test_a_model_without_classes_is_said_so_before_any_click():
    notice = guidance_panel.no_guide_notice(SWISS)
    assert "This model has no classes to steer towards" in notice and "<b>mnist_conditional</b>" in notice
    assert all(guidance_panel.no_guide_notice(path) == "" for path in (MNIST, GAUSSIANS, MNIST_CONDITIONAL, None))


def test_the_eight_gaussians_are_steered_by_their_exact_classes():
    figure, stats = guidance_panel.guide(GAUSSIANS, "ddim", 0.0, 20, "uniform", 5000, 0, [], "90° (top)", 1.0,
                                         progress=lambda *a, **k: None)
    fig = figures.as_figure(figure)
    assert [a.text for a in fig.layout.annotations[:2]] == ["unguided (s = 0)", "guided towards 90° (top) (s = 1)"]
    unguided, guided = (int(k.replace(",", "")) for k in re.findall(r"\*\*([\d,]+) of 2,000\*\*", stats))
    assert 150 < unguided < 350 and guided > 1980, stats  # 5,000 asked: 2,000 points, an eighth of them at the top
    spread, offset, own = (float(v) for v in re.search(
        r"spread about it .*? (\d\.\d+), their mean (\d\.\d+) from it; the component's own spread (\d\.\d+)",
        stats).groups())
    assert 0.5 * own < spread < 1.5 * own and offset < own
    # off the centre: the spread is about the centre, not about the cloud's own mean (which read 0.13 for a cloud
    # 2.6 away, as a near hit)
    mixture = GaussianMixture(torch.tensor([[0.0, 0.0], [5.0, 0.0]], dtype=torch.float64), 0.1, ("a", "b"))
    cloud = torch.tensor([[2.0, 0.1], [2.2, -0.1], [1.8, 0.0]])
    rms, offset = mixture.spread_about(cloud, 0)
    assert torch.allclose(rms, torch.tensor([(4.0 + 4.84 + 3.24) / 3, 0.02 / 3], dtype=torch.float64).sqrt())
    assert offset == pytest.approx(2.0)
    page, stats, *_ = guidance_panel.play(types.SimpleNamespace(session_hash="guide-2d"), GAUSSIANS, "ddim", 0.0, 10,
                                          "uniform", 300, 0, 6, [], "180° (left)", 3.0, progress=None)
    assert 'data-ts="1000,' in page and "300 samples" in stats and "guided towards 180° (left) (classifier" in stats
    # not scored against all eight components (11.34 read as a broken model)
    assert "Sliced-Wasserstein" not in stats and "are not scored against the training data: guided towards 180°" in stats


def test_refusals():
    quiet = dict(progress=lambda *a, **k: None)
    with pytest.raises(gr.Error, match=r"Guidance needs classes: a class-conditional model \(classifier-free guidance\), a "
                                       r"shipped classifier of the model's data \(there is one for mnist\) or data of "
                                       r"known classes \(the 8 Gaussians\); this model is unconditional, of swiss_roll\."):
        guidance_panel.guide(SWISS, "ddpm_small", 0.0, 10, "uniform", 8, 0, [], "7", 3.0, **quiet)
    with pytest.raises(gr.Error, match="The class to steer towards must be one of 0, 1, 2"):
        guidance_panel.guide(MNIST, "ddim", 0.0, 10, "uniform", 8, 0, [], "seven", 3.0, **quiet)
    with pytest.raises(gr.Error, match=r"Choose the class to steer towards, one of 0, 1, 2"):
        guidance_panel.guide(MNIST, "ddim", 0.0, 10, "uniform", 8, 0, [], None, 3.0, **quiet)
    with pytest.raises(gr.Error, match="Classifier-free guidance needs a class-conditional model"):
        guidance_panel.guide(MNIST, "ddim", 0.0, 10, "uniform", 8, 0, [], "7", 3.0, "classifier-free", **quiet)
    for bad in (25, -1, "a lot"):
        with pytest.raises(gr.Error, match="guidance scale must be a number from 0 to 20"):
            guidance_panel.guide(MNIST, "ddim", 0.0, 10, "uniform", 8, 0, [], "7", bad, **quiet)


def test_methods_follow_the_model():
    assert guidance_panel.method_choices(MNIST) == ["classifier"]
    assert guidance_panel.method_choices(SWISS) == [] and guidance_panel.method_and_classes(SWISS, None, None)[0].value is None
    assert guidance_panel.method_and_classes(MNIST, "classifier-free", None)[0].value == "classifier"  # the one that fits
    assert guidance_panel.method_choices(GAUSSIANS_CONDITIONAL) == ["classifier-free", "classifier"]
    assert guidance_panel.method_choices(MNIST_CONDITIONAL) == ["classifier-free", "classifier"]
    radio, dropdown = guidance_panel.method_and_classes(GAUSSIANS_CONDITIONAL, "classifier", "90° (top)")
    assert radio.value == "classifier" and dropdown.value == "90° (top)"  # both kept: they fit the new model
    radio, dropdown = guidance_panel.method_and_classes(MNIST, "classifier-free", "90° (top)")
    assert radio.value == "classifier" and dropdown.value == "7"  # the unconditional model's only method
    assert "conditional on 8 classes" in checkpoint_access.describe(GAUSSIANS_CONDITIONAL, [])


def test_a_model_chosen_updates_the_panels_controls_in_one_request():
    """Its methods and classes, the field's t slider and the note of a model that cannot be guided had been three
    listeners of the checkpoint list (of about 13 requests a choice of model sent): now one."""
    radio, dropdown, slider, note = guidance_panel.model_chosen(SWISS, "classifier", "7", 5000)
    assert radio.value is None and dropdown.choices == [] and "no classes to steer towards" in note
    assert slider.maximum == reverse_tab.checkpoint_steps(SWISS) and slider.value == slider.maximum // 2
    radio, dropdown, slider, note = guidance_panel.model_chosen(MNIST, "classifier", "3", 40)
    assert (radio.value, dropdown.value, slider.value, note) == ("classifier", "3", 40, "")
    with gr.Blocks() as demo:
        controls = reverse_tab.build(gr.State([]))
        guidance_panel.build(controls)
    own = [d.fn.__name__ for d in demo.fns.values() if d.fn is not None and d.fn.__module__ == guidance_panel.__name__
           and d.targets == [(controls.checkpoint._id, "change")]]
    assert own == ["model_chosen"]
    # a key on the field's t draws the field once, not again on its release (only ↺'s release, alone, redraws)
    field = next(d for d in demo.fns.values() if getattr(d.fn, "__name__", "") == "guide_field")
    redraw = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "reverse-guidance-field-redraw")
    assert [kind for _, kind in field.targets] == ["click", "input", "click"] and (redraw._id, "click") in field.targets


def test_a_conditional_model_is_steered_by_its_own_classes():
    quiet = dict(progress=lambda *a, **k: None)
    figure, stats = guidance_panel.guide(GAUSSIANS_CONDITIONAL, "ddim", 0.0, 20, "uniform", 2000, 0, [], "90° (top)",
                                         1.0, **quiet)
    fig = figures.as_figure(figure)
    assert [a.text for a in fig.layout.annotations[:2]] == ["unguided (s = 0)",
                                                            "guided towards 90° (top) (classifier-free, s = 1)"]
    unguided, guided = (int(k.replace(",", "")) for k in re.findall(r"\*\*([\d,]+) of 2,000\*\*", stats))
    assert 150 < unguided < 350 and guided > 1960, stats
    assert "classifier-free (the model's own classes)" in stats and "implicit classifier" in stats
    _, stats = guidance_panel.guide(GAUSSIANS_CONDITIONAL, "ddim", 0.0, 20, "uniform", 500, 0, [], "90° (top)", 1.0,
                                    "classifier", **quiet)  # the same model, steered by the exact classifier instead
    assert "classifier guidance" in stats and "The guide here is exact" in stats
    _, stats = guidance_panel.guide(MNIST_CONDITIONAL, "ddim", 0.0, 10, "uniform", 8, 0, [], "3", 3.0, **quiet)
    unguided, guided = (int(k) for k in re.findall(r"\*\*(\d) of 8\*\*", stats))
    assert guided >= 7 and unguided <= 4, stats
    assert "The judge did not steer" in stats


def test_a_sweep_of_scales_trades_diversity_for_the_class():
    quiet = dict(progress=lambda *a, **k: None)
    figure, stats = guidance_panel.sweep(MNIST_CONDITIONAL, "ddim", 0.0, 20, "uniform", 16, 0, [], "7", "4, 0, 1",
                                         **quiet)
    fig = figures.as_figure(figure)
    assert [t.type for t in fig.data] == ["image"] * 3  # one grid of 16 digits per scale, in increasing order
    assert [a.text.split(" · ")[0] for a in fig.layout.annotations[:3]] == ["s = 0", "s = 1", "s = 4"]
    rows = re.findall(r"^\| classifier-free \| (\d+) \| (\d+) of 16 \| ([\d.]+) \| ([\d.]+|–) \| [\d.]+ m?s \|$",
                      stats, re.M)
    assert [r[0] for r in rows] == ["0", "1", "4"], stats
    sevens, diversity = [int(r[1]) for r in rows], [float(r[2]) for r in rows]
    assert sevens[0] <= 5 and sevens[2] >= 14, stats  # unguided: about one in ten; s = 4: nearly all
    assert diversity[2] < 0.5 * diversity[0], stats  # and far less varied
    assert "samples read by the shipped classifier as 7" in stats and "feature space of the shipped classifier" in stats
    # the 8 Gaussians under the exact classifier: an eighth unguided, all at the top from s = 1, their spread the
    # component's under DDPM-1000 (mean distance between two draws of N(μ, σ²I) in 2D: σ·√π)
    figure, stats = guidance_panel.sweep(GAUSSIANS, "ddpm_small", 0.0, 1000, "uniform", 500, 0, [], "90° (top)", "0, 1",
                                         "classifier", **quiet)
    assert [t.type for t in figures.as_figure(figure).data].count("scatter") == 4  # training data + samples, twice
    (_, at_0, *_), (_, at_1, all_1, top_1) = re.findall(
        r"^\| classifier \| (\d+) \| (\d+) of 500 \| ([\d.]+) \| ([\d.]+) \|", stats, re.M)
    assert 35 < int(at_0) < 95 and int(at_1) >= 495, stats
    component = model_mixture(load_checkpoint(GAUSSIANS).data)
    assert float(top_1) == pytest.approx(component.std * math.sqrt(math.pi), rel=0.2), stats


def test_a_sweep_of_both_guides_shows_which_narrows_the_class():
    figure, stats = guidance_panel.sweep(MNIST_CONDITIONAL, "ddim", 0.0, 20, "uniform", 64, 0, [], "7", "0, 4",
                                         both=True, progress=lambda *a, **k: None)
    fig = figures.as_figure(figure)
    assert [t.type for t in fig.data] == ["image"] * 4  # two guides × two scales
    texts = [a.text for a in fig.layout.annotations]
    assert texts[:2] == ["s = 0", "s = 4"] and texts[2:] == ["classifier-free (the model's own classes)",
                                                             "classifier guidance"]
    rows = dict(((m, s), (int(k), float(w))) for m, s, k, w in re.findall(
        r"^\| (classifier-free|classifier) \| (\d+) \| (\d+) of 16 \| [\d.]+ \| ([\d.]+) \|", stats, re.M))
    assert len(rows) == 4, stats  # 16 samples each: classifier guidance's cap, for both
    assert rows["classifier-free", "4"][0] >= 14 and rows["classifier", "4"][0] >= 12, stats
    # classifier-free guidance narrows the sevens themselves; the classifier's gradient on x̂₀ much less
    assert rows["classifier-free", "4"][1] < 0.8 * rows["classifier", "4"][1], stats


def test_sweep_refusals_and_sample_caps():
    quiet = dict(progress=lambda *a, **k: None)
    assert guidance_panel.parse_scales("8, 0,1, 1") == [0.0, 1.0, 8.0]
    for bad in ("", "3", "a, b", "0, 25", "-1, 2", "0, 1, 2, 3, 4, 5, 6"):
        with pytest.raises(gr.Error, match="Scales to compare: 2 to 6 numbers from 0 to 20"):
            guidance_panel.parse_scales(bad)
    with pytest.raises(gr.Error, match="ask for at least 2"):
        guidance_panel.sweep(MNIST_CONDITIONAL, "ddim", 0.0, 10, "uniform", 1, 0, [], "7", "0, 1", **quiet)
    # classifier-free guidance on images costs a doubled batch, classifier guidance a gradient: 64 and 16 at most
    job = guidance_panel.guidance_inputs(MNIST_CONDITIONAL, "ddim", 0.0, 10, "uniform", 100, 0, [], "7", 2.0)
    assert job.method == "classifier-free" and job.n == 64
    job = guidance_panel.guidance_inputs(MNIST_CONDITIONAL, "ddim", 0.0, 10, "uniform", 100, 0, [], "7", 2.0,
                                         "classifier")
    assert job.n == 16


def test_the_guides_field_learnt_beside_exact():
    figure, stats = guidance_panel.guide_field(GAUSSIANS_CONDITIONAL, [], "90° (top)", 300)
    fig = figures.as_figure(figure)
    assert [a.text for a in fig.layout.annotations[:2]] == [
        "learnt: the model's implicit classifier at t = 300", "exact: p_t(y | x_t) of the mixture at t = 300"]
    arrows = [tr for tr in fig.data if tr.mode == "lines+markers"]
    assert len(arrows) == 2 and all(len(tr.x) == 3 * 256 for tr in arrows)  # 16 × 16 arrows per panel
    cosine, ratio = (float(v) for v in re.search(r"mean cosine \*\*([\d.]+)\*\*.*?\*\*([\d.]+)×\*\*", stats).groups())
    assert cosine > 0.98 and 0.8 < ratio < 1.25, stats  # at t = 300 the model's classes are learnt well
    figure, stats = guidance_panel.guide_field(GAUSSIANS, [], "0° (right)", 50)  # unconditional: the exact one only
    assert len([tr for tr in figures.as_figure(figure).data if tr.mode == "lines+markers"]) == 1
    assert "ᾱ_t = 0.971" in stats and "mean cosine" not in stats


def test_the_guides_field_on_digits_is_a_picture_that_makes_them_more_of_the_class():
    figure, stats = guidance_panel.guide_field(MNIST_CONDITIONAL, [], "7", 300)
    fig = figures.as_figure(figure)
    assert [tr.type for tr in fig.data] == ["image"] * 16  # 4 digits × (x_t, x̂₀, two guides)
    assert [a.text for a in fig.layout.annotations[:4]] == [
        "x_t (t = 300)", "x̂₀ of the model", "∇log p_t(7 | x_t): implicit classifier",
        "∇log p_t(7 | x_t): shipped classifier on x̂₀"]
    cosines = re.search(r"cosine \*\*([−\d. ·]+)\*\*", stats).group(1).split(" · ")  # a minus sign, not "-"
    assert len(cosines) == 4 and all(-1 <= float(c.replace("−", "-")) <= 1 for c in cosines), stats
    _, stats = guidance_panel.guide_field(MNIST, [], "7", 300)  # unconditional: the classifier's guide only
    assert "How alike" not in stats and "t = 300 (ᾱ_t = " in stats
    # the implicit classifier's gradient points towards the class: a small step along it makes the model's own
    # denoised guess more of a 7 to the shipped classifier (which did not steer)
    checkpoint = load_checkpoint(MNIST_CONDITIONAL)
    x0 = mnist_digits(8)
    x_t = checkpoint.schedule.q_sample(x0, 300, torch.randn(x0.shape, generator=torch.Generator().manual_seed(0)))
    gradient = class_score(checkpoint.model, checkpoint.schedule, checkpoint.data, "7", x_t, 300)
    steps = torch.full((8,), 300)
    classifier = load_classifier("mnist")

    def log_p7(x):
        with torch.no_grad():
            x0_hat = checkpoint.schedule.predict_x0(x, steps, checkpoint.model(x, steps)).clamp(-1, 1)
            return torch.log_softmax(classifier.model(x0_hat), dim=1)[:, 7]

    step = 0.5 * gradient / gradient.flatten(1).norm(dim=1).view(-1, 1, 1, 1)  # length 0.5 of ‖x_t‖ ≈ 28
    assert int((log_p7(x_t + step) > log_p7(x_t)).sum()) >= 7


def test_the_image_fields_median_is_the_middle_of_its_four_ratios_and_alpha_bar_near_1_is_not_1():
    """Of 4 images the median length ratio is the mean of the middle two (torch's `median` had given the lower one:
    1.29× where the median is 1.49×); ᾱ_1 = 0.9999 had shown as "1"."""
    _, stats = guidance_panel.guide_field(MNIST_CONDITIONAL, [], "8", 400, seed=2)
    shown = float(re.search(r"is ([\d.]+)× the shipped classifier's in length \(median\)", stats).group(1))
    checkpoint = load_checkpoint(MNIST_CONDITIONAL)
    x_t = guidance_panel.noised_examples(checkpoint, guidance_panel.FIELD_IMAGES, 400, 2)
    learnt, classifier = (class_score(checkpoint.model, checkpoint.schedule, checkpoint.data, "8", x_t, 400, m)
                          .flatten(1).double().norm(dim=1) for m in ("classifier-free", "classifier"))
    ratios = sorted((learnt / classifier).tolist())
    assert len(ratios) == 4 and shown == pytest.approx((ratios[1] + ratios[2]) / 2, abs=0.006), (ratios, stats)
    _, stats = guidance_panel.guide_field(GAUSSIANS_CONDITIONAL, [], "90° (top)", 1)
    assert "(ᾱ_t = 0.9999)" in stats


def test_samples_beyond_the_plots_axes_are_counted_in_words():
    """Strong guidance can throw 2D samples beyond the panels' fixed ±4, where they had been counted in the words
    (of the class or not, their spread) without being drawn or mentioned."""
    quiet = dict(progress=lambda *a, **k: None)
    job = guidance_panel.guidance_inputs(GAUSSIANS_CONDITIONAL, "ddim", 0.0, 20, "uniform", 200, 1, [], "90° (top)",
                                         20.0)
    inside, outside = torch.zeros(200, 2), torch.zeros(200, 2)
    outside[:7, 0], outside[7, 1] = 4.5, -5.0
    assert guidance_panel.off_plot_line(job, inside, inside) == ""
    assert "**8 of 200** guided samples lie beyond the plot's ±4" in guidance_panel.off_plot_line(job, inside, outside)
    assert "**8 of 200** unguided and **8 of 200** guided" in guidance_panel.off_plot_line(job, outside, outside)
    _, stats = guidance_panel.guide(GAUSSIANS_CONDITIONAL, "ddim", 0.0, 20, "uniform", 200, 1, [], "90° (top)", 20.0,
                                    **quiet)
    assert re.search(r"\*\*\d+ of 200\*\* guided samples lie beyond the plot's ±4", stats), stats
    _, table = guidance_panel.sweep(GAUSSIANS_CONDITIONAL, "ddim", 0.0, 20, "uniform", 200, 1, [], "90° (top)",
                                    "1, 20", **quiet)
    beyond = re.search(r"\*\*Beyond the plots' ±4\*\* \(counted in the table, not drawn\): (.*)\.$", table, re.M)
    assert beyond and re.fullmatch(r"classifier-free s = 20: \d+ of 200", beyond.group(1)), table


def test_the_guides_field_refusals():
    with pytest.raises(gr.Error, match="swiss_roll_linear has no classes to steer by"):
        guidance_panel.guide_field(SWISS, [], "7", 300)
    with pytest.raises(gr.Error, match="must be one of 0° \\(right\\), 45°"):
        guidance_panel.guide_field(GAUSSIANS, [], "7", 300)
    with pytest.raises(gr.Error, match="t must be"):
        guidance_panel.guide_field(GAUSSIANS, [], "0° (right)", 5000)
    with pytest.raises(gr.Error, match=r"Choose the class to steer towards, one of 0° \(right\), 45°"):
        guidance_panel.guide_field(GAUSSIANS, [], None, 300)


def test_the_sweep_table_puts_each_number_in_its_column():
    """Per scale: the samples of the class (of n), the diversity of all, that of those of the class, the time."""
    checkpoint, choice = reverse_tab.model_and_sampler(GAUSSIANS, [], False, "ddim", 0.0, 10, "uniform")
    job = types.SimpleNamespace(checkpoint=checkpoint, choice=choice, target="90° (top)", n=16)
    column = guidance_panel.SweepColumn(scale=0.0, samples=torch.zeros(16, 2), of_target=2, diversity=3.0,
                                        class_diversity=1.0, seconds=0.5)
    table = guidance_panel.sweep_markdown(job, [("classifier", [column])], "nearest the centre of")
    assert "| samples nearest the centre of 90° (top) | diversity of all | diversity of those of 90° (top) | time |" in table
    assert "| classifier | 0 | 2 of 16 | 3 | 1 | 0.5 s |" in table
