"""The per-frame formulas of the players: their numbers against the closed forms of Ho et al. and Song et al."""

from __future__ import annotations

import html
import json
import math
import re

import numpy as np
import PIL.Image
import pytest
import torch

from app import formulas, movie_files, player
from core.sampler import chain_timesteps, iter_sample
from core.schedules import make_schedule

NUMBER = r"(-?[\d.]+(?:e-?\d+)?)"


def coefficients(note: str) -> list[float]:
    """The numbers of a note's right-hand side, in order."""
    return [float(v) for v in re.findall(NUMBER + "·", note.split("=", 1)[1])]


def test_number_formats_coefficients_readably() -> None:
    assert formulas.number(0.99114) == "0.9911"
    assert formulas.number(0.0046679) == "0.004668"
    assert formulas.number(3.3684e-5) == "3.368e-05"
    assert formulas.number(1.0) == "1" and formulas.number(0.0) == formulas.number(-0.0) == "0"
    assert formulas.number(-2.5) == "−2.5" and formulas.number(-3.3684e-5) == "−3.368e-05"  # a minus sign, not a hyphen
    assert formulas.latex_number(4.928e-5) == "4.928\\times 10^{-5}" and formulas.latex_number(0.5) == "0.5"
    assert formulas.latex_number(-2.5e6) == "−2.500\\times 10^{6}"
    assert formulas.number(-math.inf) == "−∞" and formulas.number(-20000.0) == "−2.000e+04"
    assert formulas.number(123456.0) == "1.235e+05"
    assert formulas.number(math.inf) == "∞"
    assert formulas.number(0.50123, decimals=3) == "0.501" and formulas.number(-0.0004, decimals=2) == "0"
    assert formulas.x_at(810) == "x₈₁₀"


def test_a_coefficient_near_one_is_not_shown_as_one() -> None:
    """√(1 − ᾱ_s) = 0.99997 at DDIM's first step: "1·ε̂" would claim the coefficient is exactly one."""
    assert formulas.number(0.999968) == "0.99997" and formulas.number(1.00002) == "1.00002"
    assert formulas.number(1.0) == "1" and formulas.number(0.99996, decimals=2) == "1"
    # √(1 − ᾱ_T) of a cosine schedule at T = 4000 is 1 − 7.6e-11: within 9 digits of 1, still not 1
    sqrt_one_minus = math.sqrt(1 - float(make_schedule("cosine", 4000).alpha_bars[-1]))
    assert formulas.number(sqrt_one_minus) == "0.9999999999" and formulas.number(1 - 1e-15) == "0.999999999999999"
    schedule = make_schedule("linear", 1000)
    ts = chain_timesteps(schedule, 50, "ddim", "uniform")
    first = formulas.reverse_notes(schedule, ts + [0], [0], method="ddim", variance="small", eta=0.0)[0]
    assert "1·ε̂" not in first
    assert coefficients(first)[1] == pytest.approx(math.sqrt(1 - float(schedule.alpha_bars[ts[1]])), rel=1e-6)


def test_short_durations_are_not_shown_as_zero() -> None:
    """A 2D chain had been "sampled in 0.0 s"."""
    assert [formulas.seconds_text(s) for s in (0.012, 0.0944, 0.095, 1.26, 12.34)] == [
        "12 ms", "94 ms", "0.1 s", "1.3 s", "12.3 s"]


def test_forward_notes_give_the_closed_form_of_q_xt_given_x0() -> None:
    schedule = make_schedule("linear", 1000)
    notes = formulas.forward_notes(schedule, [0, 500, 1000])
    assert notes[0] == "x₀ = 1·x₀ + 0·ε"
    a, b = coefficients(notes[1])
    alpha_bar = float(schedule.alpha_bars[500])
    assert notes[1].startswith("x₅₀₀ = ")
    assert a == pytest.approx(math.sqrt(alpha_bar), rel=5e-4) and b == pytest.approx(math.sqrt(1 - alpha_bar), rel=5e-4)
    assert coefficients(notes[2])[0] == pytest.approx(math.sqrt(float(schedule.alpha_bars[1000])), rel=1e-2)


@pytest.mark.parametrize("name", ["linear", "cosine"])
@pytest.mark.parametrize("t", [1000, 500, 2])
def test_ddpm_note_is_algorithm_2(name: str, t: int) -> None:
    """x_{t−1} = c_x0·x̂₀ + c_xt·x_t + σ·z: the posterior mean at x_0 = x̂₀ (which, with
    x̂₀ = (x_t − √(1 − ᾱ_t)·ε̂)/√ᾱ_t, is Algorithm 2's (x_t − β_t/√(1 − ᾱ_t)·ε̂)/√α_t) and σ_t² = β̃_t."""
    schedule = make_schedule(name, 1000)
    state_ts = list(range(1000, -1, -1))
    note = formulas.reverse_notes(schedule, state_ts, [1000 - t], method="ddpm", variance="small", eta=0.0)[0]
    assert note.startswith(f"step {t} → {t - 1}: {formulas.x_at(t - 1)} = ")
    assert "·x̂₀ + " in note and f"·{formulas.x_at(t)} + " in note and note.endswith("·z")
    c_x0, c_xt, sigma = coefficients(note)
    ab, ab_prev, beta = (float(v) for v in (schedule.alpha_bars[t], schedule.alpha_bars[t - 1], schedule.betas[t]))
    # Ho et al. eq. 7: μ̃ = √ᾱ_{t−1}·β_t/(1 − ᾱ_t)·x_0 + √α_t·(1 − ᾱ_{t−1})/(1 − ᾱ_t)·x_t, σ² = β̃_t
    assert c_x0 == pytest.approx(math.sqrt(ab_prev) * beta / (1 - ab), rel=5e-4)
    assert c_xt == pytest.approx(math.sqrt(1 - beta) * (1 - ab_prev) / (1 - ab), rel=5e-4)
    assert sigma == pytest.approx(math.sqrt((1 - ab_prev) / (1 - ab) * beta), rel=5e-4)


def test_large_variance_and_the_last_step() -> None:
    schedule = make_schedule("linear", 100)
    state_ts = list(range(100, -1, -1))
    notes = formulas.reverse_notes(schedule, state_ts, [0, 99, 100], method="ddpm", variance="large", eta=0.0)
    assert coefficients(notes[0])[-1] == pytest.approx(math.sqrt(float(schedule.betas[100])), rel=1e-3)  # σ² = β_t
    assert notes[1] == "step 1 → 0: x₀ = 1·x̂₀ + 0·x₁"  # the last step: x̂₀ itself, no noise
    assert notes[2] == "x₀: the sample (the last step adds no noise)"


def test_strided_ddim_note_is_song_et_al_eq_12() -> None:
    schedule = make_schedule("linear", 1000)
    ts = chain_timesteps(schedule, 50, "ddim", "uniform")
    state_ts = ts + [0]
    deterministic = formulas.reverse_notes(schedule, state_ts, [10], method="ddim", variance="small", eta=0.0)[0]
    t, s = ts[10], ts[11]
    assert deterministic.startswith(f"step {t} → {s}: {formulas.x_at(s)} = ") and "·z" not in deterministic
    a, b = coefficients(deterministic)
    ab_s = float(schedule.alpha_bars[s])
    assert a == pytest.approx(math.sqrt(ab_s), rel=5e-4) and b == pytest.approx(math.sqrt(1 - ab_s), rel=5e-4)
    # η = 1 adds DDPM's posterior noise σ² = (1 − ᾱ_s)/(1 − ᾱ_t)·(1 − ᾱ_t/ᾱ_s), and takes it from the ε̂ term
    stochastic = formulas.reverse_notes(schedule, state_ts, [10], method="ddim", variance="small", eta=1.0)[0]
    a, b, sigma = coefficients(stochastic)
    ab_t = float(schedule.alpha_bars[t])
    var = (1 - ab_s) / (1 - ab_t) * (1 - ab_t / ab_s)
    assert sigma == pytest.approx(math.sqrt(var), rel=5e-4) and b == pytest.approx(math.sqrt(1 - ab_s - var), rel=5e-4)
    assert "ε̂ = (x_t − √ᾱ_t·x̂₀)/√(1 − ᾱ_t)" in formulas.reverse_key("ddim")
    assert "ε̂" not in formulas.reverse_key("ddpm")
    # z only where a step draws it: deterministic DDIM's notes have no z term
    assert "z: fresh noise" in formulas.reverse_key("ddpm") and "z: fresh noise" in formulas.reverse_key("ddim", 0.5)
    assert "z:" not in formulas.reverse_key("ddim", 0.0)


def test_the_note_reproduces_a_sampled_step() -> None:
    """The numbers shown are those the sampler used: a deterministic DDIM step recomputed from the note."""
    schedule = make_schedule("linear", 200)

    def model(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return 0.3 * x + 0.001 * t[:, None].float()

    records = list(iter_sample(model, schedule, torch.randn(5, 2), method="ddim", steps=20))
    state_ts = [r.t for r in records] + [0]
    notes = formulas.reverse_notes(schedule, state_ts, range(len(state_ts)), method="ddim", variance="small", eta=0.0)
    for record, note in zip(records, notes):
        a, b = coefficients(note)
        assert f"step {record.t} → {record.t_prev}" in note
        tolerance = 1e-3 * (1 + float(record.x_prev.abs().max()))  # the note's four significant digits
        assert torch.allclose(a * record.x0_pred + b * record.eps_pred, record.x_prev, atol=tolerance)


def test_inpainting_notes_name_the_part_they_draw_and_bad_chains_fail() -> None:
    schedule = make_schedule("linear", 50)
    notes = formulas.reverse_notes(schedule, [10, 5, 0], [0, 2], method="ddpm", variance="small", eta=0.0,
                                   part="hidden part")
    assert notes[0].startswith("step 10 → 5 (hidden part): x₅ = ")
    with pytest.raises(ValueError, match="end at t = 0"):
        formulas.reverse_notes(schedule, [10, 5], [0], method="ddpm", variance="small", eta=0.0)


def test_player_carries_one_note_per_frame() -> None:
    notes = ['step 10 → 5: x₅ = 0.1·x̂₀ + 0.9·x₁₀ + 0.2·z', 'x₀: "the" <sample> & more']
    page = player.player_html([10, 0], frame_size=(8, 6), cols=2, chain_id="abc", notes=notes, note_key="z: noise")
    attribute = re.search(r'data-notes="([^"]*)"', page).group(1)
    assert json.loads(html.unescape(attribute)) == notes  # quotes and brackets survive the attribute
    assert '<div class="pl-note">step 10 → 5: x₅ = 0.1·x̂₀ + 0.9·x₁₀ + 0.2·z</div>' in page
    assert '<div class="pl-key">z: noise</div>' in page and "notes[i]" in player.PLAYER_JS
    assert "pl-note" not in player.player_html([10, 0], frame_size=(8, 6), cols=2, chain_id="abc")
    with pytest.raises(ValueError, match="one note per frame"):
        player.player_html([10, 0], frame_size=(8, 6), cols=2, chain_id="abc", notes=notes[:1])


def test_exported_frames_carry_their_note_beneath(tmp_path, monkeypatch) -> None:
    palette = PIL.Image.new("P", (40, 30), 0)
    palette.putpalette([255, 255, 255, 0, 0, 0] * 128)
    grey, colour = PIL.Image.new("L", (40, 30), 0), PIL.Image.new("RGB", (40, 30), "black")
    noted = player.noted_frames([palette, grey, colour], ["x₁ = 1·x̂₀", "a", "b"])
    assert player.NOTE_BAND == 26
    assert [(f.mode, f.size) for f in noted] == [("P", (40, 56)), ("L", (40, 56)), ("RGB", (40, 56))]
    assert noted[0].getpalette() == palette.getpalette()
    band = np.asarray(noted[1])[30:]
    assert band.max() == 255 and band.min() < 128  # white, with dark ink
    with pytest.raises(ValueError):
        player.noted_frames([grey], ["one", "two"])
    monkeypatch.setattr(player.tempfile, "gettempdir", lambda: str(tmp_path))
    _, movie = movie_files.publish([grey, grey], [1, 0], key="k", view="v", stem="s", captions=["x"],
                                   notes=["one", "two"])
    gif, _ = movie_files.write_movie_files(movie)
    assert PIL.Image.open(gif).size == (40, 56) and PIL.Image.open(movie.sprite).size[1] == 30  # the player's: bare


def test_frames_spell_out_what_a_plain_font_cannot_draw(monkeypatch) -> None:
    font = player._font(12)[0]
    monkeypatch.setattr(player, "_font", lambda size: (font, False))  # as on a machine without DejaVu Sans
    assert player.drawable("x₈₈₅ = 0.3·x̂₀ + 0.9·x₈₈₆; θ = 5°; ᾱ") == "x_885 = 0.3·x0 + 0.9·x_886; theta = 5 deg; alpha_bar"
    # the notes and captions of the exported frames (PIL's own font had drawn ε, η, → and the hat as boxes)
    assert player.drawable("x_500 = 0.7·x₀ + 0.7·ε; step 1000 → 500, ε̂ ≈ ε") \
        == "x_500 = 0.7·x_0 + 0.7·epsilon; step 1000 -> 500, epsilon_hat ~ epsilon"
    assert player.drawable("x₀ decoded from it (DDIM, η = 0); Σ, é, ✓") == "x_0 decoded from it (DDIM, eta = 0); Sigma, e, ?"


def test_numbers_counts_and_the_circle_of_noises_read_exactly() -> None:
    """10⁴ switches to scientific notation; 0 steps is plural; the loop's weights (cos θ, sin θ) are rounded, so
    90° reads 0·x_a (not 6.1e-17), and carry their signs."""
    assert formulas.number(1e4) == "1.000e+04" and formulas.steps_text(0) == "0 steps" and formulas.steps_text(1) == "1 step"
    assert formulas.circle_notes([0, 90, 180, 270]) == [
        "θ = 0°: x_T = 1·x_a + 0·x_b", "θ = 90°: x_T = 0·x_a + 1·x_b",
        "θ = 180°: x_T = −1·x_a + 0·x_b", "θ = 270°: x_T = 0·x_a − 1·x_b"]
