"""Inpainting with an unconditional model: the replacement method and RePaint's resampling (Lugmayr et al. 2022).

Given the known entries of an x_0 (a mask m, true where known: half an image, some pixels, one coordinate of
a point), sample the rest from p(x_0 | known entries), with a model trained on whole examples only. Each reverse
step t → s of the chain (DDPM or DDIM, any timesteps: `core.sampler`) becomes

    x_s^gen   = the sampler's step from x_t                  (`core.sampler.reverse_step`)
    x_s^known = √ᾱ_s·x_0 + √(1 − ᾱ_s)·ε',  ε' ~ N(0, I)       (the forward process, fresh noise; x_0 itself at s = 0)
    x_s       = m ⊙ x_s^known + (1 − m) ⊙ x_s^gen.

This *replacement* (Song et al. 2021, score-based SDEs, App. I.2) is not exact. The generated part sees the known
part only through its noisy version x_t^known, which is drawn afresh at each step and tells little about x_0 while t
is large; by the time it is clear, at small t, the chain no longer moves far, and the generated part is left only
partly matched to the known one (RePaint §4.2: the two are not "harmonised"). RePaint's resampling runs each
step U times: after a step, x_s is noised back to t by the forward process over the step,

    x_t = √(ᾱ_t/ᾱ_s)·x_s + √(1 − ᾱ_t/ᾱ_s)·z,   z ~ N(0, I),

and the step is taken again, so that the generated part can settle against the known part at every noise
level (U = 1 is the replacement alone). It costs U model calls per step. RePaint goes back further: with a jump
length J, the chain takes J steps t_0 → … → t_J, noises x_{t_J} back to t_0 in one go (the same formula with
ᾱ_{t_0}/ᾱ_{t_J}), and takes the J steps again, U rounds in all, before it moves on to the next J steps (J = 1:
one step at a time, as above). The cost is the same, U model calls per step; the longer way back gives the
generated part more steps, from more noise, to settle against the known part.

For Gaussian data and the exact ε*, every step is affine and the completions' law is known in closed form
(the tests use it). With the first of two coordinates known (correlation 0.9), the replacement takes the mean
of the second only three quarters of the way from its marginal to its conditional mean, and leaves it too
wide. Ten rounds per step bring the mean there (within 0.01), but narrow the spread a little more than they
should: 2 % too narrow over all T = 1000 steps, 16 % over 100 of them, more with more rounds. Resampling each
step is itself an approximation, the better the finer the chain.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import nn

from core.sampler import (
    Method, Spacing, StepRecord, Variance, chain_timesteps, check_input, check_options, plan_steps, reverse_step,
)
from core.schedules import NoiseSchedule

MAX_RESAMPLE = 100  # rounds per step at most (each costs one model call per step)
MAX_JUMP = 100  # steps of the chain a resampling round goes back at most
RANDOM_KNOWN_SHARE = 0.2  # the "pixels" mask keeps this share of the pixels, scattered
HIDDEN_FROM = 0.5  # a picture of the part to hide hides an image pixel it covers this much or more

# What each mask keeps known. Images: a part of the picture (the same in every channel); 2D points: one coordinate.
IMAGE_MASKS: dict[str, str] = {
    "left": "the left half",
    "right": "the right half",
    "top": "the top half",
    "bottom": "the bottom half",
    "frame": "all but the centre square (half the side)",
    "pixels": f"{RANDOM_KNOWN_SHARE:.0%} of the pixels, scattered",
}
POINT_MASKS: dict[str, str] = {"x": "x (y is drawn)", "y": "y (x is drawn)"}


def known_mask(name: str, shape: tuple[int, ...], *, seed: int = 0) -> torch.Tensor:
    """The bool mask (1, *shape), true where known, of a mask named in `IMAGE_MASKS` (shape (C, H, W)) or
    `POINT_MASKS` (shape (2,)); ``seed`` draws the scattered pixels of "pixels". ValueError for a name that does
    not fit the shape."""
    if len(shape) == 1 and name in POINT_MASKS:
        mask = torch.zeros(shape, dtype=torch.bool)
        mask["xy".index(name)] = True
        return mask[None]
    if len(shape) != 3 or name not in IMAGE_MASKS:
        names = POINT_MASKS if len(shape) == 1 else IMAGE_MASKS
        raise ValueError(f"unknown mask {name!r} for data of shape {tuple(shape)}: choose one of {', '.join(names)}")
    _, height, width = shape
    mask = torch.zeros((height, width), dtype=torch.bool)
    if name == "left":
        mask[:, : width // 2] = True
    elif name == "right":
        mask[:, width // 2 :] = True
    elif name == "top":
        mask[: height // 2] = True
    elif name == "bottom":
        mask[height // 2 :] = True
    elif name == "frame":
        mask[:] = True
        mask[height // 4 : height - height // 4, width // 4 : width - width // 4] = False
    elif name == "pixels":
        mask = torch.rand((height, width), generator=torch.Generator().manual_seed(seed)) < RANDOM_KNOWN_SHARE
    else:
        raise ValueError(f"no rule for the mask {name!r}")
    return mask.expand(shape)[None]


def known_from_coverage(coverage: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """The bool mask (1, C, H, W), true where known, for images of ``shape`` (C, H, W), from a picture of the part
    to hide of any size: ``coverage`` (H', W') in [0, 1] says how much of each of its pixels is hidden (a brush's
    paint in the app, a mask picture's lightness in the CLI). An image pixel is hidden where the coverage averaged
    over it ("area" resampling) is at least `HIDDEN_FROM`, in every channel."""
    if coverage.ndim != 2 or len(shape) != 3:
        raise ValueError(f"a coverage (H, W) and an image shape (C, H, W) are needed; got {tuple(coverage.shape)} "
                         f"and {tuple(shape)}")
    channels, height, width = shape
    area = nn.functional.interpolate(coverage.float()[None, None], size=(height, width), mode="area")[0, 0]
    return (area < HIDDEN_FROM).expand(channels, height, width)[None]


def check_known(x_0: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """``known`` as a bool mask of x_0's shape (it may broadcast, e.g. one (1, C, H, W) mask for a batch);
    ValueError when it does not fit, or when it leaves nothing, or everything, to draw."""
    if known.dtype != torch.bool:
        raise ValueError(f"the mask of known entries must be a bool tensor, got {known.dtype}")
    try:
        mask = torch.broadcast_to(known.to(x_0.device), x_0.shape)
    except RuntimeError:
        raise ValueError(f"the mask of known entries, of shape {tuple(known.shape)}, does not fit the data's shape "
                         f"{tuple(x_0.shape)}") from None
    per_example = mask.flatten(1)
    if per_example.all(dim=1).any():
        raise ValueError("the mask leaves nothing to draw: every entry of an example is known")
    if not per_example.any(dim=1).all():
        raise ValueError("the mask keeps nothing of an example: with no entry known, inpainting is plain sampling")
    return mask


def iter_inpaint(
    model: nn.Module,
    schedule: NoiseSchedule,
    x_0: torch.Tensor,
    known: torch.Tensor,
    *,
    method: Method = "ddpm",
    steps: int | None = None,
    eta: float = 0.0,
    variance: Variance = "small",
    spacing: Spacing = "uniform",
    clip_x0: float | None = None,
    resample: int = 1,
    jump: int = 1,
    generator: torch.Generator | None = None,
) -> Iterator[StepRecord]:
    """Fill in x_0 where ``known`` is False, yielding one `StepRecord` per step of the chain (after its last round).

    ``x_0`` (B, ...): the examples, whose entries under ``known`` (a bool mask broadcastable to x_0) are kept;
    the others are ignored. The sampler options are those of `core.sampler.iter_sample`; ``resample``: rounds
    per step, U (1: the replacement method); ``jump``: steps a round goes back, J (RePaint's jump length; the
    records are those of the last round). The chain starts from x_T ~ N(0, I), drawn first from
    ``generator``, with its known part noised from x_0; the last record's ``x_prev`` is the completed x_0, equal
    to x_0 under the mask.
    """
    check_options(method, variance, eta, clip_x0)
    if isinstance(resample, bool) or not isinstance(resample, int) or not 1 <= resample <= MAX_RESAMPLE:
        raise ValueError(f"resampling rounds must be a whole number from 1 to {MAX_RESAMPLE}, got {resample!r}")
    if isinstance(jump, bool) or not isinstance(jump, int) or not 1 <= jump <= MAX_JUMP:
        raise ValueError(f"the jump length must be a whole number of steps from 1 to {MAX_JUMP}, got {jump!r}")
    if not torch.isfinite(x_0).all():
        raise ValueError("the examples to inpaint contain NaN or infinite values")
    check_input(model, x_0, "x_0")
    mask = check_known(x_0, known)
    ts = chain_timesteps(schedule, steps, method, spacing)
    plan = plan_steps(schedule, ts, method, variance, float(eta))

    def noise() -> torch.Tensor:
        return torch.randn(x_0.shape, generator=generator, device=x_0.device, dtype=x_0.dtype)

    def with_known(x: torch.Tensor, t: int) -> torch.Tensor:
        return torch.where(mask, schedule.q_sample(x_0, t, noise()) if t > 0 else x_0, x)

    x = with_known(noise(), ts[0])
    for first in range(0, len(plan), jump):
        block = plan[first : first + jump]  # J steps t_0 → … → t_J (fewer at the end of the chain)
        keep = float(schedule.alpha_bars[block[0].t] / schedule.alpha_bars[block[-1].s])  # ᾱ_{t_0}/ᾱ_{t_J}
        for round_ in range(resample):
            records = []
            for index, c in enumerate(block, start=first):
                x_prev, x0_pred, eps = reverse_step(model, x, c, method, clip_x0, generator)
                x_prev = with_known(x_prev, c.s)
                records.append(StepRecord(index, len(plan), c.t, c.s, x, x_prev, x0_pred, eps))
                x = x_prev
            if round_ < resample - 1:  # back up the block: the forward process from t_J to t_0
                x = math.sqrt(keep) * x + math.sqrt(1 - keep) * noise()
        yield from records


def inpaint(model: nn.Module, schedule: NoiseSchedule, x_0: torch.Tensor, known: torch.Tensor,
            **options: object) -> torch.Tensor:
    """Run `iter_inpaint` to the end and return the completed x_0."""
    for record in iter_inpaint(model, schedule, x_0, known, **options):  # type: ignore[arg-type]
        x = record.x_prev
    return x
