"""Forward tab: scrub t and watch q(x_t | x_0) = N(√ᾱ_t · x_0, (1 − ᾱ_t) I) (Ho et al. 2020, eq. 4).

Per-user state (`ForwardState` in a `gr.State`) holds everything that does not depend on t: the
clean data x_0, one fixed noise draw ε (from the seed) and the noise schedule. Moving the t
slider then costs one `schedule.q_sample(x_0, t, ε)` plus drawing, so the picture does not
flicker: the same ε is reused for every t until the seed changes ("New noise").
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gradio as gr
import numpy as np
import torch

from app import controls, figures, forward_chain, images, panel_grid, point_pictures, schedule_figures
from app.errors import InputError
from app.formulas import latex_number, number
from app.data_choice import MNIST, UPLOAD, data_key_of, load_x0
from app.own_points import OWN_POINTS, OWN_POINTS_ELSEWHERE, OwnPoints
from core.data import TOY2D_LABELS, TOY2D_NAMES
from core.image_data import short_label
from core.prediction import training_target
from core.schedules import NoiseSchedule

N_POINTS = 2_000  # points of a 2D toy
GRID_COLUMNS = 8
DEFAULT_DATA = MNIST
CHUNK_ELEMENTS = 30_000  # below torch's 32k grain size, element-wise ops stay on the calling thread
LATEX = [{"left": "$$", "right": "$$", "display": True}, {"left": "$", "right": "$", "display": False}]
TARGET_IMAGES = 16  # images in each panel of the targets view (a 4 × 4 grid)
TARGET_SCALE = 2.0  # ε and v are shown divided by this, to fit most of their values into [−1, 1]
TARGET_COLUMNS = ["x_t (the network's input)", f"ε (÷{TARGET_SCALE:g})", "x₀", f"v (÷{TARGET_SCALE:g})"]
X_T_HEIGHT = 460  # px: the x_t view
CURVES_HEIGHT = 260  # px: the histogram and the ᾱ_t curve beneath it
PLOT_LABEL_PX = 35  # a plot's label, above it (29 px and its 6-px margin: `app.CSS`)
# Each view's box keeps its figure's height until plotly has drawn it: the empty box was 236 px high, and the page
# below it jumped down as the first x_t came (a layout shift of 0.23 at 1024 × 768)
VIEWS_CSS = (f"#forward-x-t {{min-height: {X_T_HEIGHT + PLOT_LABEL_PX}px}}\n"
             f"#forward-histogram, #forward-alpha-bar {{min-height: {CURVES_HEIGHT + PLOT_LABEL_PX}px}}")


@dataclass(frozen=True)
class ForwardState:
    """What the t slider needs, computed once per data/schedule/seed change (one per user session). Nothing changes
    it, its tensors included (a change makes a new one): a session's copy of the page's first state is that state
    itself (`__deepcopy__`), where Gradio's deep copy had cost 0.43 MB a visitor."""

    kind: str  # "points": x0 is (N, 2); "images": x0 is (B, C, H, W) in [−1, 1]
    data_key: tuple  # (data name, upload path, own points' key): x0 is reused while this stays the same
    x0: torch.Tensor  # float32 clean data
    seed: int
    noise: torch.Tensor  # float32 ε ~ N(0, I), shaped like x0, fixed for this seed
    schedule: NoiseSchedule
    controls: tuple  # the inputs it was made from, as given: (data, schedule name, T, seed, *parameter values)

    def __deepcopy__(self, memo: dict) -> ForwardState:
        return self

    @property
    def made_from(self) -> tuple:
        """What the state was made from: what x₀ is drawn from, and the inputs as given."""
        return self.data_key, self.controls


# ----- pure pieces (tested directly) ----------------------------------------------------------


def data_choices() -> tuple[list[tuple[str, str]], str | None]:
    """(dropdown choices, a note on the data sets not listed): the 2D toys, the bundled MNIST digits, the
    Fashion-MNIST and CIFAR-10 images when their files are in the data directory, an uploaded picture, and the
    session's own points (drawn or uploaded in the Train tab)."""
    available = images.shown_datasets_present()
    choices = [(TOY2D_LABELS[name], name) for name in TOY2D_NAMES] + [(OWN_POINTS_ELSEWHERE, OWN_POINTS)]
    choices += [("MNIST digits (8 × 8 grid)", MNIST)]
    choices += [(f"{short_label(name)} (8 × 8 grid)", name) for name in available]
    choices += [("Uploaded picture", UPLOAD)]
    missing = [short_label(name) for name in images.SHOWN_DATASETS if name not in available]
    verb, whose = ("appears", "its") if len(missing) == 1 else ("appear", "their")
    note = (f"{' and '.join(missing)} {verb} here when the server has {whose} files (its host: DDPM_DATA_DIR)."
            if missing else None)
    return choices, note


def data_list() -> gr.Dropdown:
    """The data dropdown's choices and note for the data directory as it is now (asked at each page load): a data
    set fetched while the server runs is listed on the next load."""
    choices, note = data_choices()
    return gr.Dropdown(choices=choices, info=note)


def make_noise(shape: torch.Size, seed: int) -> torch.Tensor:
    """ε ~ N(0, I) of the given shape; the same seed gives the same noise."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float32)


def prepare(
    previous: ForwardState | None, data: str, upload_path: str | None, own: OwnPoints | None, schedule_name: str, T,
    seed, *param_values
) -> ForwardState:
    """The per-user state for these inputs; x0 (and ε) are reused from ``previous`` where still valid."""
    schedule = controls.build_schedule(schedule_name, T, param_values)
    seed = controls.check_seed(seed)
    data_key = data_key_of(data, upload_path, own)
    with torch.inference_mode():
        if previous is not None and previous.data_key == data_key:
            kind, x0 = previous.kind, previous.x0
        else:
            kind, x0 = load_x0(data, upload_path, own, n_points=N_POINTS)
        if previous is not None and previous.seed == seed and previous.noise.shape == x0.shape:
            noise = previous.noise
        else:
            noise = make_noise(x0.shape, seed)
    return ForwardState(kind=kind, data_key=data_key, x0=x0, seed=seed, noise=noise, schedule=schedule,
                        controls=(data, schedule_name, T, seed, *param_values))


def x_t(state: ForwardState, t: int) -> np.ndarray:
    """x_t = √ᾱ_t · x_0 + √(1 − ᾱ_t) · ε with the state's fixed ε (float32 numpy, x0's shape).

    Computed in chunks of under 32k elements: torch runs smaller element-wise ops on the calling
    thread, so scrubbing stays fast when torch's thread pool is busy (e.g. training in the Train tab).
    """
    with torch.inference_mode():
        parts = [
            state.schedule.q_sample(x0, t, noise).numpy()  # t is one int: any shape broadcasts
            for x0, noise in zip(state.x0.reshape(-1).split(CHUNK_ELEMENTS), state.noise.reshape(-1).split(CHUNK_ELEMENTS))
        ]
    return np.concatenate(parts).reshape(state.x0.shape)


def to_display(state: ForwardState, xt: np.ndarray) -> np.ndarray:
    """x_t as shown: uint8 image grid for pictures, (N, 2) float points for 2D data."""
    if state.kind == "images":
        return images.image_grid(xt, nrow=GRID_COLUMNS)
    if state.kind == "points":
        return xt
    raise ValueError(f"unknown data kind {state.kind!r}")


def moment_numbers(schedule: NoiseSchedule, t: int) -> dict[str, float]:
    """The numbers of step t, read from the schedule: ᾱ_t, √ᾱ_t, √(1 − ᾱ_t), SNR, log-SNR (ᾱ_t and SNR from their
    logs: 0 where they are past float64's range, not the floor of `schedule.alpha_bars`)."""
    alpha_bar, log_snr = math.exp(float(schedule.log_alpha_bars[t])), float(schedule.log_snr[t])
    return {
        "t": t,
        "alpha_bar": alpha_bar,
        "sqrt_alpha_bar": math.sqrt(alpha_bar),
        "sqrt_one_minus_alpha_bar": math.sqrt(1.0 - alpha_bar),
        "snr": math.exp(log_snr),
        "log_snr": log_snr,
    }


def formula_markdown(numbers: dict[str, float], T: int) -> str:
    """The forward formula with this step's coefficients filled in, and a table of the numbers."""
    t = numbers["t"]
    a, b = number(numbers["sqrt_alpha_bar"]), number(numbers["sqrt_one_minus_alpha_bar"])
    a_tex, b_tex = latex_number(numbers["sqrt_alpha_bar"]), latex_number(numbers["sqrt_one_minus_alpha_bar"])
    return (
        "$$x_t = \\sqrt{\\bar\\alpha_t}\\,x_0 + \\sqrt{1-\\bar\\alpha_t}\\,\\varepsilon$$\n\n"
        # in-line maths, which breaks after "+" in a narrow box (a display formula ran out of it: at t = T = 10,000
        # of cosine, "· ε" was cut off at 1400 px); centred as the display formula above it (`.formula-box`)
        f"$\\displaystyle x_{{{t}}} = {a_tex}\\cdot x_0 + {b_tex}\\cdot \\varepsilon$\n\n"
        "| quantity | value |\n|---|---|\n"
        f"| step t | {t} of {T} |\n"
        f"| ᾱ_t (share of x₀'s variance left) | {number(numbers['alpha_bar'])} |\n"
        f"| √ᾱ_t (weight of x₀) | {a} |\n"
        f"| √(1 − ᾱ_t) (weight of ε) | {b} |\n"
        f"| SNR = ᾱ_t / (1 − ᾱ_t) | {number(numbers['snr'])} |\n"
        f"| log-SNR = ln SNR | {number(numbers['log_snr'])} |\n"
    )


def schedule_summary_html(schedule: NoiseSchedule) -> str:
    """ᾱ_T and SNR_T, with a warning box when the chain does not reach noise (ᾱ_T > 1e-3)."""
    numbers = f"ᾱ<sub>T</sub> = {number(schedule.alpha_bar_T)}, SNR<sub>T</sub> = {number(schedule.snr_T)} (T = {schedule.T})"
    if schedule.reaches_noise:
        return controls.notice_html(
            f"✓ {numbers}: x<sub>T</sub> is close to N(0, I), so sampling can start from pure noise.", "ok"
        )
    return controls.notice_html(
        f"⚠ <b>{numbers}.</b> ᾱ<sub>T</sub> &gt; 1e-3: the chain does not reach noise — x<sub>T</sub> still "
        f"carries visible signal, yet sampling starts from N(0, I): {controls.reach_noise_advice(schedule)}.", "warn"
    )


def t_to_show(state: ForwardState | None, t) -> int:
    """The step the views show for a t from the slider: clamped to T (a value from before a change of T)."""
    if state is None:
        raise InputError("Nothing to show yet: choose data and a schedule first.")
    return min(controls.whole_number(t, "t", 0), state.schedule.T)


def scrub(state: ForwardState | None, t) -> tuple:
    """The t-slider handler: (x_t figure, formula markdown, histogram figure, ᾱ_t figure)."""
    t = t_to_show(state, t)
    xt = x_t(state, t)
    sample_fig = images_or_points_figure(state.kind, to_display(state, xt), label=f"x_t · t = {t}",
                                         beneath=state.x0 if state.kind == "points" and t > 0 else None)
    hist_fig = figures.histogram_figure(xt, name=f"x_t at t = {t}", height=CURVES_HEIGHT)
    numbers = moment_numbers(state.schedule, t)
    return (sample_fig, formula_markdown(numbers, state.schedule.T), hist_fig,
            schedule_figures.alpha_bar_figure(state.schedule, t, height=CURVES_HEIGHT))


def shows_a_t(state: ForwardState | None, t) -> bool:
    """Whether the views can show this t (else `scrub` says what is wrong with it, once for every view)."""
    try:
        t_to_show(state, t)
    except gr.Error:
        return False
    return True


def scrub_and_keep_t(state: ForwardState | None, t) -> tuple:
    """`scrub`, and the t its views show: where the slider goes back to after a t that is not one (−1, 2.5), which
    moved the slider's thumb while the views stayed where they were. An empty box is a t being typed: nothing
    changes (putting the t on view back in the box then made the digits typed next follow it: 250 → "250250")."""
    if t is None or t == "":
        return (gr.skip(),) * 5
    t = t_to_show(state, t)
    return (*scrub(state, t), t)


def show_t_typed_meanwhile(state: ForwardState | None, t, t_on_view: int) -> tuple:
    """After a rebuild, the t that the slider holds now, when the views show another: a t typed while the rebuild
    was in flight (T changed, then t typed at once) kept its box, while the rebuild drew the t it had been sent, 0,
    and the table said "0 of 10000" under a box that said 10000. Nothing when they agree."""
    return (gr.skip(),) * 5 if t == t_on_view else scrub_and_keep_t(state, t)  # (which passes over an empty box)


def t_in_range(state: ForwardState | None, t):
    """On letting go of a t typed past T (2000 with T = 1000, entered: leaving the box puts the slider's maximum in it
    itself): T in its box, where the views already are (`scrub`); the box kept 2000 while the table said "1000 of
    1000". Anything else stays as it is."""
    try:
        typed = controls.whole_number(t, "t", 0)
    except gr.Error:  # `scrub` says what is wrong
        return gr.skip()
    return state.schedule.T if state is not None and typed > state.schedule.T else gr.skip()


def t_on_view_again(t_on_view: int) -> int:
    """On letting go of an emptied box: the t the views show, back in it (Gradio puts the slider's minimum, 0, in a
    box left empty, and the views stay where they are)."""
    return t_on_view


def release_js(panels: Sequence[gr.Accordion]) -> str:
    """The `js` of letting go of t (given the value let go of), which asks the server only where there is work, by
    clicking hidden buttons: a box left empty shows the t on view again (#forward-t-emptied: `t_on_view_again`; the
    panels show it already); a t past the slider's maximum, T, goes back to T (#forward-t-past-end: `t_in_range`); an
    open accordion of ``panels`` (its header button says aria-expanded="true") is drawn at t (#forward-panels-follow:
    `follow_t_while_open`). Each had been a request at every key of a keyboard scrub, as much of the server's time as
    the scrub itself. One listener, and the value it is given: Gradio puts 0 in a box left empty right after, which a
    second listener, and the box's text, had read."""
    selector = json.dumps(", ".join(f"#{box.elem_id} > button[aria-expanded=true]" for box in panels))
    return f"""(t) => {{
  const click = (id) => document.getElementById(id)?.click();
  const range = document.querySelector('#forward-t input[type=range]');
  if (t === null || t === undefined || String(t).trim() === '') {{ click('forward-t-emptied'); return []; }}
  if (range && +t > +range.max) click('forward-t-past-end');
  if (document.querySelector({selector})) click('forward-panels-follow');
  return [];
}}"""


def targets(state: ForwardState, t: int) -> dict[str, torch.Tensor]:
    """What a network could be trained to predict from x_t at step t (`core.prediction`): {"x_t", "eps", "x0", "v"},
    with v = √ᾱ_t·ε − √(1 − ᾱ_t)·x₀, the state's data and fixed noise."""
    alpha_bar = state.schedule.alpha_bars[t]
    sqrt_ab, sqrt_1m_ab = alpha_bar.sqrt().float(), (1 - alpha_bar).sqrt().float()
    with torch.inference_mode():
        return {"x_t": state.schedule.q_sample(state.x0, t, state.noise), "eps": state.noise, "x0": state.x0,
                "v": training_target("v", state.x0, state.noise, sqrt_ab, sqrt_1m_ab)}


def targets_view(state: ForwardState | None, t) -> tuple:
    """The targets panel: (figure of x_t, ε, x₀ and v side by side, Markdown with v's formula at t)."""
    if state is None:
        raise InputError("Nothing to show yet: choose data and a schedule first.")
    t = min(controls.whole_number(t, "t", 0), state.schedule.T)
    parts = targets(state, t)
    if state.kind == "images":
        scale = {"x_t": 1.0, "eps": TARGET_SCALE, "x0": 1.0, "v": TARGET_SCALE}
        cells = [[images.image_grid(parts[k][:TARGET_IMAGES] / scale[k], nrow=4) for k in scale]]
        figure = panel_grid.noised_grid_figure(cells, [""], TARGET_COLUMNS, kind="images", cell_px=160)
    else:
        cells = [[parts[k].numpy() for k in ("x_t", "eps", "x0", "v")]]
        titles = [c.replace(f" (÷{TARGET_SCALE:g})", "") for c in TARGET_COLUMNS]
        figure = panel_grid.noised_grid_figure(cells, [""], titles, kind="points", cell_px=190,
                                               point_hues=figures.angle_hues(state.x0.numpy()))
    alpha_bar = float(state.schedule.alpha_bars[t])
    a, s = number(math.sqrt(alpha_bar)), number(math.sqrt(1 - alpha_bar))
    halved = (f" ε and v are drawn ÷{TARGET_SCALE:g} to fit the grey scale (mid-grey: 0)."
              if state.kind == "images" else "")
    text = (f"At t = {t}: x_t = {a}·x₀ + {s}·ε, and **v = {a}·ε − {s}·x₀**. A network can be trained to give back "
            "ε (Ho et al.), x₀, or v (Salimans & Ho 2022): from x_t any one of them gives the other two. v turns from "
            f"ε at t = 0 into −x₀ at t = T (where the chain reaches noise).{halved}\n\n"
            "**Why the choice matters:** a network's error, ε̂ − ε or x̂₀ − x₀, reaches the other guess scaled. An ε "
            "network's error reaches x̂₀ multiplied by √((1 − ᾱ_t)/ᾱ_t), huge near t = T; an x₀ network's reaches ε̂ "
            "multiplied by √(ᾱ_t/(1 − ᾱ_t)), huge near t = 0; a v network's reaches both shrunk (x̂₀ by √(1 − ᾱ_t), ε̂ "
            "by √ᾱ_t). The Train tab trains on each.")
    return figure, text


def if_open(view: Callable[[ForwardState | None, Any], tuple], outputs: int) -> Callable[..., tuple]:
    """``view`` for a panel that follows t: after a rebuild or on letting go of t, drawn anew while its panel is open
    (else nothing, to keep the tab fast, and nothing for a t that is not one)."""
    def draw(is_open: bool, state: ForwardState | None, t) -> tuple:
        return view(state, t) if is_open and shows_a_t(state, t) else (gr.skip(),) * outputs
    draw.__name__ = f"{view.__name__}_if_open"
    return draw


def on_opening(view: Callable[[ForwardState | None, Any], tuple]) -> Callable[..., tuple]:
    """``view`` for a panel just opened, and None for what the open panels were drawn for (`follow_t_while_open`): it
    may end after a release's drawing of a later t (the events run at once), so the next release draws again."""
    def draw(state: ForwardState | None, t) -> tuple:
        return (*view(state, t), None)
    draw.__name__ = f"{view.__name__}_on_opening"
    return draw


def images_or_points_figure(kind: str, shown: np.ndarray, label: str = "", beneath: np.ndarray | None = None):
    """The x_t view: a picture grid, or a point cloud over ``beneath`` (x₀, in grey: where each point set out from)."""
    if kind == "images":
        return figures.image_figure(shown, label=label, height=X_T_HEIGHT)
    if kind == "points":
        return point_pictures.points_picture_figure(shown, label=label, height=X_T_HEIGHT, beneath=beneath,
                                                    beneath_label="grey: x₀, the data")
    raise ValueError(f"unknown data kind {kind!r}")


def rebuild(previous: ForwardState | None, t, data, upload_path, own, schedule_name, T, seed, *param_values) -> tuple:
    """Any input but t changed: new state, the t slider's range, the ᾱ_T summary, and the views at t."""
    state = prepare(previous, data, upload_path, own, schedule_name, T, seed, *param_values)
    try:
        requested = controls.whole_number(t, "t", 0)
    except gr.Error:  # the t box left empty (or −3) while another input changed: show t = 0, and say so in the box
        requested = None
    t = min(requested or 0, state.schedule.T)
    # Set the slider's value only when it must be clamped to the new T (or was not a t): a scrub that lands
    # while this rebuild is in flight keeps its t instead of being reset to the old one.
    slider = gr.Slider(maximum=state.schedule.T, **({} if requested == t else {"value": t}))
    return (state, slider, schedule_summary_html(state.schedule), *scrub(state, t), t)


def rebuild_if_changed(previous: ForwardState | None, t, data, upload_path, own, schedule_name, T, seed,
                       *param_values) -> tuple:
    """`rebuild`, or nothing where ``previous`` was built from these very inputs: Enter in a box and then a click
    elsewhere had rebuilt the views twice."""
    if previous is not None and previous.made_from == (data_key_of(data, upload_path, own),
                                                       (data, schedule_name, T, seed, *param_values)):
        return (gr.skip(),) * 8  # the state, the slider, the summary, the four views and the t they show
    return rebuild(previous, t, data, upload_path, own, schedule_name, T, seed, *param_values)


def upload_and_rebuild(previous: ForwardState | None, t, data, upload_path, own, schedule_name, T, seed,
                       *param_values) -> tuple:
    """An upload: the data choice on the picture and `rebuild_if_changed`'s outputs for it
    (`images.upload_and_draw`)."""
    return images.upload_and_draw(upload_path, 8, lambda: rebuild_if_changed(
        previous, t, UPLOAD, upload_path, own, schedule_name, T, seed, *param_values))


def controls_on_view(state: ForwardState | None) -> tuple:
    """After a change that could not be shown (data not given yet, a schedule that T cannot have, a mistyped
    number): the data, schedule, T, seed and parameter inputs back to what the views show. Else the dropdown named
    another schedule than the plots, with the last one's numbers, and a box kept a T the summary did not."""
    return (gr.skip(),) * (4 + len(controls.default_param_values())) if state is None else state.controls


def own_points_changed(previous: ForwardState | None, t, data, *inputs) -> tuple:
    """The session's own points were drawn anew or uploaded (in the Train tab): rebuild if they are shown."""
    if data != OWN_POINTS:
        return (gr.skip(),) * 8  # the state, the slider, the summary, the four views and the t they show
    return rebuild(previous, t, data, *inputs)


def new_seed() -> int:
    """A fresh random seed for "New noise"."""
    return random.SystemRandom().randrange(controls.MAX_SEED + 1)


def show_params(schedule_name: str, inputs: controls.ParamInputs) -> list:
    return inputs.visibility([schedule_name])


# ----- layout ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ForwardTab:
    """What the movie below the tab (`app.forward_animation`) needs of it."""

    state: gr.State  # a `ForwardState`
    rebuilt: list  # the events that make a new state (data, schedule, T, seed, parameters, own points, New noise)


def build(own: gr.State, page: gr.Blocks) -> ForwardTab:
    """Lay out the Forward tab inside the current Blocks/Tab context and wire its events; ``own``: the
    session's own points (`app.own_points`), drawn or uploaded in the Train tab; ``page``: the app, whose loads
    list the data sets present."""
    initial = prepare(None, DEFAULT_DATA, None, None, "linear", controls.DEFAULT_T, 0, *controls.default_param_values())
    first_views = scrub(initial, 0)
    gr.Markdown(
        "Drag **t** to move along the forward (noising) process $q(x_t \\mid x_0)$. Each step s adds Gaussian noise "
        "of variance β_s (the schedule's numbers) and scales what was there by √(1 − β_s), so after t steps "
        "x_t = √ᾱ_t·x₀ + √(1 − ᾱ_t)·ε, where ᾱ_t = (1 − β₁)(1 − β₂)…(1 − β_t) is the share of x₀'s variance left "
        "and ε ~ N(0, I). Images are scaled to [−1, 1] (a pixel: black −1, white 1); 2D points to about zero mean "
        "and unit spread, the scale of ε. The noise ε is drawn once and held fixed while you scrub; **New noise** draws another.",
        latex_delimiters=LATEX,
    )
    state = gr.State(initial)
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            choices, note = data_choices()
            data = gr.Dropdown(choices=choices, value=DEFAULT_DATA, label="Data x₀", info=note,
                               elem_classes="name-dropdown")
            upload = gr.File(label=images.upload_label(), file_types=images.UPLOAD_FILE_TYPES, height=140,
                             elem_classes="label-above")
            schedule_name = controls.schedule_dropdown()
            T = controls.t_input()
            params = controls.param_inputs(shown=["linear"], open_=False)
            with gr.Row():
                seed = gr.Number(value=0, label="Noise seed", min_width=120)
                new_noise = gr.Button("New noise", variant="secondary", min_width=120)
            summary = gr.HTML(schedule_summary_html(initial.schedule))
        with gr.Column(scale=3, min_width=controls.VIEWS_MIN_WIDTH):
            # no ↺ (Home and a typed 0 do as much): it sends a release alone, and the views draw on input only
            t_slider = controls.typed_slider(0, initial.schedule.T, value=0, step=1, elem_id="forward-t",
                                             label="t (0 = clean data x₀, T = end of the chain)", buttons=[])
            with gr.Row():
                sample = gr.Plot(first_views[0], label="x_t", show_label=True, scale=2, min_width=300, elem_id="forward-x-t")
                with gr.Column(scale=1, min_width=260):
                    formula = gr.Markdown(first_views[1], latex_delimiters=LATEX, elem_classes="formula-box")
            with gr.Row():
                hist = gr.Plot(first_views[2], label="Histogram of x_t vs the N(0, 1) density", min_width=300,
                               elem_id="forward-histogram")
                alpha_curve = gr.Plot(first_views[3], label="ᾱ_t over t (marker: current t)", min_width=300,
                                      elem_id="forward-alpha-bar")
            with gr.Accordion("What the network learns to predict at this t: ε, x₀ or v", open=False,
                              elem_id="forward-targets") as targets_box:
                targets_plot = gr.Plot(label="The same examples as x_t, ε, x₀ and v (updated when you let go of t)",
                                       elem_id="forward-targets-plot")
                targets_text = gr.Markdown()
            with gr.Accordion("One step at a time: the chain q(x_t | x_{t−1}) lands where the jump q(x_t | x₀) does",
                              open=False, elem_id="forward-chain") as chain_box:
                chain_plot = gr.Plot(label="x₀, then x_t by t steps with fresh noise, and by one jump (updated when "
                                           "you let go of t)", elem_id="forward-chain-plot")
                chain_noise = gr.Plot(label="The chain's noise, step by step, against the jump's",
                                      elem_id="forward-chain-noise")
                chain_text = gr.Markdown()

    page.load(data_list, None, data, show_progress="hidden", queue=False)
    views = [sample, formula, hist, alpha_curve]
    t_on_view = gr.State(0)
    scrubbed = gr.on(  # each move, key and typed t is an input; its release (a key's too) had drawn the same t again
        [t_slider.input],
        scrub_and_keep_t,
        inputs=[state, t_slider],
        outputs=[*views, t_on_view],
        trigger_mode="always_last",
        show_progress="hidden",
        api_name="scrub",  # the API's name for it since before it kept the t
    )
    scrubbed.failure(lambda t: t, t_on_view, t_slider, show_progress="hidden", queue=False)  # the toast says why
    emptied = gr.Button("Show the t on view", visible="hidden", elem_id="forward-t-emptied")  # clicked by release_js
    helper = dict(show_progress="hidden", queue=False, api_visibility="private")
    emptied.click(t_on_view_again, t_on_view, t_slider, **helper)
    past_end = gr.Button("Put t back to T", visible="hidden", elem_id="forward-t-past-end")  # clicked by release_js
    past_end.click(t_in_range, [state, t_slider], t_slider, **helper)
    t_slider.release(None, t_slider, None, js=release_js([targets_box, chain_box]), queue=False)
    rebuild_inputs = [state, t_slider, data, upload, own, schedule_name, T, seed, *params.components]
    rebuild_outputs = [state, t_slider, summary, *views, t_on_view]
    number_inputs = [T, seed] + [c for c in params.components if isinstance(c, gr.Number)]
    triggers = [data.change, schedule_name.change]
    triggers += [c.submit for c in number_inputs] + [c.blur for c in number_inputs]
    triggers += [c.change for c in params.components if isinstance(c, gr.Checkbox)]
    rebuilds = [gr.on(
        triggers,
        rebuild_if_changed,
        inputs=rebuild_inputs,
        outputs=rebuild_outputs,
        trigger_mode="always_last",
        show_progress="hidden",  # fast; an error shows as a toast without covering the views
        api_name="rebuild",  # the API's name for it since before it left unchanged inputs alone
    )]
    # a change that cannot be shown (data not given yet, a T too small for the schedule): the inputs go back to
    # what is on view, or the dropdowns would name other data or another schedule than the plots
    shown_inputs = [data, schedule_name, T, seed, *params.components]
    schedule_name.change(
        lambda name: show_params(name, params), inputs=schedule_name, outputs=list(params.groups.values()),
        show_progress="hidden", queue=False,
    )
    uploaded = upload.upload(upload_and_rebuild, inputs=rebuild_inputs, outputs=[data, *rebuild_outputs],
                             show_progress="hidden")  # queued: a bad file's gr.Error shows as a toast (and as
    # no "Error" badge on each view, as its outputs' minimal progress had shown it)
    uploaded.failure(images.box_after_refusal, upload, upload, show_progress="hidden", queue=False)
    rebuilds.append(uploaded)
    rebuilds.append(own.change(own_points_changed, inputs=rebuild_inputs, outputs=rebuild_outputs,
                               show_progress="hidden"))
    rebuilds.append(new_noise.click(new_seed, outputs=seed, show_progress="hidden", queue=False).then(
        rebuild, inputs=rebuild_inputs, outputs=rebuild_outputs, show_progress="hidden"
    ))
    for rebuilt in rebuilds:
        rebuilt.failure(controls_on_view, state, shown_inputs, show_progress="hidden", queue=False)
        rebuilt.then(show_t_typed_meanwhile, [state, t_slider, t_on_view], [*views, t_on_view], show_progress="hidden")
    upload.clear(lambda choice: images.upload_removed(choice, DEFAULT_DATA), data, data, show_progress="hidden",
                 queue=False)
    follow_t_while_open([(targets_box, targets_view, [targets_plot, targets_text]),
                         (chain_box, forward_chain.chain_view, [chain_plot, chain_noise, chain_text])],
                        state, t_slider, rebuilds)
    return ForwardTab(state, rebuilds)


Panel = tuple[gr.Accordion, Callable[[ForwardState | None, Any], tuple], list]  # (accordion, view(state, t), outputs)


def follow_t_while_open(panels: Sequence[Panel], state: gr.State, t_slider: gr.Slider, rebuilds: list) -> None:
    """Draw each panel's ``view(state, t)`` into its outputs while its accordion is open: on opening it, on letting
    go of t, and after a rebuild (data, schedule, noise), unless they were drawn for that state and t already (a
    rebuild skipped by `rebuild_if_changed`, a key at the end of the slider). One event serves all the panels on each
    release and rebuild, not one per panel: a keyboard scrub lets go of t at every key. A release asks for it only
    while a panel is open, by clicking the hidden #forward-panels-follow (`release_js`)."""
    drawn_at = gr.State(None)  # what the open panels were last drawn for: (the state's `made_from`, the t shown)
    opens, views, outputs = [], [], []
    for box, view, panel_outputs in panels:
        is_open = gr.State(False)
        box.expand(lambda: True, None, is_open, queue=False)
        box.collapse(lambda: False, None, is_open, queue=False)
        box.expand(on_opening(view), inputs=[state, t_slider], outputs=[*panel_outputs, drawn_at],
                   show_progress="hidden")
        opens.append(is_open)
        views.append(if_open(view, len(panel_outputs)))
        outputs += panel_outputs

    def open_panels_at_t(*inputs) -> tuple:
        *is_open, panel_state, t, last = inputs
        at = None if panel_state is None else (panel_state.made_from,
                                               t_to_show(panel_state, t) if shows_a_t(panel_state, t) else t)
        if at is not None and at == last:
            return (gr.skip(),) * (len(outputs) + 1)
        return (*(out for view, shown in zip(views, is_open) for out in view(shown, panel_state, t)), at)

    event = dict(fn=open_panels_at_t, inputs=[*opens, state, t_slider, drawn_at], outputs=[*outputs, drawn_at],
                 show_progress="hidden")
    follow = gr.Button("Draw the open panels at t", visible="hidden", elem_id="forward-panels-follow")
    follow.click(trigger_mode="always_last", api_visibility="private", **event)
    for rebuilt in rebuilds:
        rebuilt.then(**event)
