"""The formulas behind each frame of a movie, with that frame's numbers filled in, as plain text.

The players show one line per frame under the picture, so that the pictures can be read against the
equations a student has in front of them:

- the forward process (the Forward tab's movie), the closed form of q(x_t | x_0):
  x_t = √ᾱ_t·x_0 + √(1 − ᾱ_t)·ε;
- a point of a loop of noises (`core.ddim_map.noise_circle`): x_T = cos θ·x_a + sin θ·x_b;
- a reverse step t → s of the sampler (the Reverse tab), in the form `core.sampler.reverse_step` computes:
  DDPM, the mean of the posterior q(x_s | x_t, x_0) at x_0 = x̂_0 plus noise (Ho et al. 2020, eq. 7;
  for s = t − 1 and no clipping of x̂_0 it equals Algorithm 2's (x_t − β_t/√(1 − ᾱ_t)·ε̂)/√α_t + σ_t·z):
      x_s = √ᾱ_s·β_{t|s}/(1 − ᾱ_t)·x̂_0 + √(ᾱ_t/ᾱ_s)·(1 − ᾱ_s)/(1 − ᾱ_t)·x_t + σ·z,
  where β_{t|s} = 1 − ᾱ_t/ᾱ_s is the effective β of the step (not β̃, the posterior variance); DDIM (Song et al.
  2021, eq. 12):
      x_s = √ᾱ_s·x̂_0 + √(1 − ᾱ_s − σ²)·ε̂ + σ·z.
  The coefficients are `core.sampler.plan_steps`' own, so the line says exactly what the chain did.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from core.sampler import plan_steps
from core.schedules import NoiseSchedule

_SUBSCRIPT_DIGITS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")

FORWARD_KEY = "x₀: the data · ε: the noise, drawn once and held fixed"
CIRCLE_KEY = "x_a, x_b: two independent N(0, I) noises; cos²θ + sin²θ = 1, so every x_T on the loop is N(0, I) too"


def reverse_key(method: str, eta: float = 0.0) -> str:
    """What the symbols of `reverse_notes` stand for (z only where a step draws it: not in deterministic DDIM)."""
    implied = " · ε̂ = (x_t − √ᾱ_t·x̂₀)/√(1 − ᾱ_t), the noise x̂₀ implies" if method == "ddim" else ""
    fresh = "" if method == "ddim" and eta == 0 else " · z: fresh noise from N(0, I)"
    return f"x̂₀: the model's prediction of x₀ (its panel){implied}{fresh}"


def number(value: float, decimals: int | None = None) -> str:
    """A number as the formulas show it: four significant digits (0.9911, 0.004668, 3.368e-05, 1234, −2.5), in
    powers of ten when huge, or rounded to ``decimals`` places when given (0.501, −0.12). A value that is not 1
    but would show as 1 gets the digits that tell it apart (0.99998): "1·ε̂" would claim a coefficient of one."""
    if decimals is not None:
        value = round(value, decimals)
    if value == 0:
        return "0"  # also −0.0
    if value < 0:
        return "−" + number(-value)  # the minus sign, not a hyphen
    if math.isinf(value):
        return "∞"
    if value >= 1e4:
        return f"{value:.3e}"
    digits = 4
    while f"{value:.{digits}g}" == "1" and value != 1 and digits < 17:  # 17 tell any two floats apart
        digits += 1
    return f"{value:.{digits}g}"


def count_text(n: int, noun: str) -> str:
    """"1 sample", "1,500 samples": ``n`` and the noun, in the plural but for one (a one-point set had read "1
    samples", "1 pinned points")."""
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def steps_text(n: int) -> str:
    """"1 step", "1,500 steps"."""
    return count_text(n, "step")


def seconds_text(seconds: float) -> str:
    """A short duration: "1.3 s", and "42 ms" under a tenth of a second (a 2D chain had been "sampled in 0.0 s")."""
    return f"{seconds:.1f} s" if seconds >= 0.095 else f"{round(seconds * 1000)} ms"


def time_taken(seconds: float | None) -> str:
    """How long a part of a click took: "in 1.3 s" (`seconds_text`), or, for None, that it was kept from an earlier
    click (`checkpoint_access.kept_with_seconds`)."""
    return "kept from an earlier click" if seconds is None else f"in {seconds_text(seconds)}"


def latex_number(value: float) -> str:
    """`number` for a LaTeX formula: powers of ten as such (4.928e-05 → 4.928\\times 10^{-5}; KaTeX would read the e
    as a variable and −05 as a subtraction)."""
    text = number(value)
    mantissa, _, exponent = text.partition("e")
    return f"{mantissa}\\times 10^{{{int(exponent)}}}" if exponent else text


def x_at(t: int) -> str:
    """x with the step as a subscript: x₈₁₀."""
    return "x" + str(int(t)).translate(_SUBSCRIPT_DIGITS)


def forward_notes(schedule: NoiseSchedule, ts: Sequence[int]) -> list[str]:
    """For each t: x_t = √ᾱ_t·x_0 + √(1 − ᾱ_t)·ε with the numbers of step t."""
    notes = []
    for t in ts:
        alpha_bar = float(schedule.alpha_bars[t])
        notes.append(f"{x_at(t)} = {number(math.sqrt(alpha_bar))}·x₀ + {number(math.sqrt(1 - alpha_bar))}·ε")
    return notes


def circle_notes(degrees: Sequence[float]) -> list[str]:
    """For each angle θ (in degrees): x_T = cos θ·x_a + sin θ·x_b with its numbers."""
    notes = []
    for theta in degrees:
        a, b = (round(f(math.radians(theta)), 12) for f in (math.cos, math.sin))  # cos 90° is 6e-17 in floats
        first = f"−{number(-a)}" if a < 0 else number(a)
        notes.append(f"θ = {theta:g}°: x_T = {first}·x_a {'−' if b < 0 else '+'} {number(abs(b))}·x_b")
    return notes


def reverse_notes(
    schedule: NoiseSchedule, state_ts: Sequence[int], frame_states: Sequence[int], *, method: str, variance: str,
    eta: float, part: str = "",
) -> list[str]:
    """For each frame (``frame_states``: indices into ``state_ts``, the t of every state of the chain, last 0):
    the step the chain takes from that frame's x_t to its next state x_s, with its coefficients; at the end,
    that x₀ is the sample. ``part`` names the entries the step draws when not all (an inpainting chain)."""
    if not state_ts or state_ts[-1] != 0:
        raise ValueError("a chain's states end at t = 0")
    plan = plan_steps(schedule, list(state_ts[:-1]), method, variance, eta)  # type: ignore[arg-type]
    scope = f" ({part})" if part else ""
    notes = []
    for j in frame_states:
        if j == len(plan):
            notes.append("x₀: the sample (the last step adds no noise)")
            continue
        c = plan[j]
        if method == "ddpm":
            terms = f"{number(c.c_x0)}·x̂₀ + {number(c.c_xt)}·{x_at(c.t)}"
        else:
            terms = f"{number(c.c_x0)}·x̂₀ + {number(c.c_eps)}·ε̂"
        noise = f" + {number(c.sigma)}·z" if c.sigma > 0 else ""
        notes.append(f"step {c.t} → {c.s}{scope}: {x_at(c.s)} = {terms}{noise}")
    return notes
