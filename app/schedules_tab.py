"""Schedules tab: compare one to four noise schedules side by side (Ho et al. 2020; Nichol &
Dhariwal 2021; Jabri et al. 2022 / Chen 2023; GeoDiff).

Curves of ᾱ_t, β_t and log-SNR(t) = log(ᾱ_t / (1 − ᾱ_t)) on shared axes, each with the t where
SNR = 1 marked; the same x_0 and the same noise ε pushed through q(x_t | x_0) (eq. 4) under each
schedule at the same t values; a table of ᾱ_T and SNR_T that warns when a chain does not end
in noise (ᾱ_T > 1e-3); and, per schedule, how much each step of a short sampling chain multiplies
an error in ε̂ when its steps are spaced evenly in t or evenly in log-SNR (`core.sampler`); and the weight that
a loss puts on the ε error ‖ε − ε̂‖² at each t: the variational bound's (`core.elbo`), that of a loss on x_0 or
on v (`core.prediction`), or Min-SNR-5's (`core.trainer.eps_weighting`), against the plain ε loss's 1.
All numbers come from `core`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import gradio as gr
import numpy as np
import torch

from app import controls, figures, images, panel_grid, schedule_figures
from app.errors import InputError
from app.data_choice import MNIST, N_IMAGES, UPLOAD, data_key_of, is_image_set, load_x0
from app.own_points import OWN_POINTS, OWN_POINTS_ELSEWHERE, OwnPoints
from core.data import TOY2D_LABELS, TOY2D_NAMES
from core.image_data import short_label
from core.sampler import DEFAULT_DDIM_STEPS, SPACINGS, chain_timesteps, plan_steps
from core.schedules import REACHES_NOISE_ALPHA_BAR, SCHEDULE_LABELS, SCHEDULE_NAMES, NoiseSchedule, make_schedule

DEFAULT_SCHEDULES = ("linear", "cosine", "sigmoid")
MIN_SCHEDULES, MAX_SCHEDULES = 1, 4
N_POINTS = 1_000  # points per small panel of the noised grid (up to 24 panels)
IMAGE_SIZE = 64  # uploaded pictures are shown at 64 × 64 per cell
DEFAULT_DATA = MNIST
SHORT_CHAIN = DEFAULT_DDIM_STEPS  # steps of the sampling chain whose step gains are plotted
WEIGHTING_CHOICES = [  # (label, curve of app.schedule_figures)
    ("the variational bound (σ² = β̃_t): ½(SNR_{t−1}/SNR_t − 1)", "bound_weight"),
    ("a plain x₀ loss: 1/SNR_t", "x0_weight"),
    ("a plain v loss: 1/ᾱ_t = 1 + 1/SNR_t", "v_weight"),
    (f"Min-SNR-{schedule_figures.MIN_SNR_SHOWN:g}, any target: "
     f"min(SNR_t, {schedule_figures.MIN_SNR_SHOWN:g})/SNR_t", "min_snr_weight"),
]
DEFAULT_WEIGHTING = "bound_weight"
WEIGHTING_INFO = ("‖ε − ε̂‖² = SNR_t·‖x₀ − x̂₀‖² = ᾱ_t·‖v − v̂‖²: a loss on another target, or the bound, weights the "
                  "noise levels differently from the plain ε loss that DDPM trains with")


def grid_timesteps(T: int) -> list[int]:
    """The columns of the noised grid: t = 0, T/10, T/4, T/2, 3T/4, T (rounded, duplicates dropped)."""
    return sorted({0, round(T / 10), round(T / 4), round(T / 2), round(3 * T / 4), T})


def step_gains(schedule: NoiseSchedule, spacing: str) -> np.ndarray:
    """|√(1 − ᾱ_s) − √(ᾱ_s/SNR_t)| for each step t → s of a SHORT_CHAIN-step DDIM chain, η = 0 (the last step goes
    to s = 0, ᾱ_0 = 1): how much of an error δ in ε̂ the step carries into x_s (`StepCoefficients.eps_error_gain`)."""
    ts = chain_timesteps(schedule, min(SHORT_CHAIN, schedule.T), "ddim", spacing)  # type: ignore[arg-type]
    return np.array([c.eps_error_gain for c in plan_steps(schedule, ts, "ddim")])  # the sampler's own coefficients


NOISE_LIKE_SNR = 0.01  # x_t whose SNR is below this is all but pure noise


def why_schedules_differ(T: int) -> str:
    """Why the choice matters, in words and in the engine's numbers at T: a network learns every noise level and a
    sampler spends a step on each t, so a schedule that is all but noise early wastes the steps after."""
    def reaches(name: str) -> tuple[float, int]:
        schedule = make_schedule(name, T)
        return schedule.t_snr_one, int(torch.nonzero(schedule.snr < NOISE_LIKE_SNR)[0])

    (one, noise), *others = [reaches(name) for name in ("linear", "cosine", "sigmoid")]
    return (f"**Why it matters:** the network learns to denoise at every t and a sampler spends a step on each. "
            f"Under linear (T = {T:,}) SNR falls below 1 at t ≈ {one:.0f} and below {NOISE_LIKE_SNR:g} (x_t all but "
            f"pure noise) at t ≈ {noise:,}: its last {T - noise:,} steps go to noise-like x_t. Cosine and sigmoid pass "
            f"SNR = 1 at t ≈ {others[0][0]:.0f} and {others[1][0]:.0f} and reach {NOISE_LIKE_SNR:g} only at "
            f"t ≈ {others[0][1]:,} and {others[1][1]:,}: their steps are spread more evenly over the noise levels "
            "(why Nichol & Dhariwal 2021 chose cosine).")


def data_choices() -> list[tuple[str, str]]:
    """The bundled MNIST digits, Fashion-MNIST and CIFAR-10 when their files are in the data directory, an
    uploaded picture, the 2D toys, and the session's own points (drawn or uploaded in the Train tab)."""
    datasets = [(f"{short_label(name)} image", name) for name in images.shown_datasets_present()]
    toys = [(TOY2D_LABELS[name], name) for name in TOY2D_NAMES]
    return [("MNIST digit", MNIST), *datasets, ("Uploaded picture", UPLOAD), *toys, (OWN_POINTS_ELSEWHERE, OWN_POINTS)]


def data_list() -> gr.Dropdown:
    """The data dropdown's choices for the data directory as it is now (asked at each page load)."""
    return gr.Dropdown(choices=data_choices())


def load_one_x0(data: str, number: int, upload_path: str | None, own: OwnPoints | None = None) -> tuple[str, torch.Tensor]:
    """(kind, x0) for the noised grid: one image (1, C, H, W) (image ``number`` of the digits or of a data set), one
    picture (1, 3, 64, 64), or 2D points (N, 2) (`data_choice.load_x0`)."""
    if is_image_set(data):
        number = controls.whole_number(0 if number is None else number, "The image number", 0, N_IMAGES - 1)
    kind, x0 = load_x0(data, upload_path, own, n_points=N_POINTS, upload_size=IMAGE_SIZE)
    return kind, (x0[number : number + 1] if is_image_set(data) else x0)


def noised_grid(
    schedules: Sequence[NoiseSchedule], kind: str, x0: torch.Tensor, noise: torch.Tensor, ts: Sequence[int]
) -> list[list[np.ndarray]]:
    """rows = schedules, columns = ts: x_t = q_sample(x0, t, ε) with the same x0 and ε everywhere,
    as uint8 pictures (kind "images") or (N, 2) points (kind "points")."""
    rows = []
    with torch.inference_mode():
        for schedule in schedules:
            row = []
            for t in ts:
                xt = schedule.q_sample(x0, t, noise)
                if kind == "images":
                    row.append(images.image_pixels(xt[0]))
                elif kind == "points":
                    row.append(xt.numpy())
                else:
                    raise ValueError(f"unknown data kind {kind!r}")
            rows.append(row)
    return rows


def _fmt(value: float) -> str:
    if math.isinf(value):
        return "∞"
    return f"{value:.3g}" if 1e-3 <= abs(value) < 1e4 else f"{value:.2e}"


def summary_table(schedules: Sequence[NoiseSchedule]) -> str:
    """Markdown table: ᾱ_T, SNR_T, the t where SNR = 1, and whether the chain reaches noise."""
    lines = [
        f"| schedule (T = {schedules[0].T if schedules else '–'}) | ᾱ_T | SNR_T | t where SNR\u00a0=\u00a01 "
        "| reaches noise (ᾱ_T\u00a0≤\u00a010⁻³)? |",  # no-break spaces: the header wraps between its words only
        "|---|---|---|---|---|",
    ]
    for s in schedules:
        t_one = s.t_snr_one
        ok = "✓ yes" if s.reaches_noise else "⚠ **no**"
        t_text = f"{t_one:.0f}" if math.isfinite(t_one) else "never"
        lines.append(
            f"| {SCHEDULE_LABELS.get(s.name, s.name)} | {_fmt(s.alpha_bar_T)} | {_fmt(s.snr_T)} | {t_text} | {ok} |"
        )
    return "\n".join(lines)


def warning_html(schedules: Sequence[NoiseSchedule]) -> str:
    """A visible warning box naming each schedule whose chain does not reach noise; empty if all do."""
    bad = [s for s in schedules if not s.reaches_noise]
    if not bad:
        return ""
    names = "; ".join(f"{SCHEDULE_LABELS.get(s.name, s.name)}: ᾱ<sub>T</sub> = {_fmt(s.alpha_bar_T)} "
                      f"({controls.reach_noise_advice(s)})" for s in bad)
    return controls.notice_html(
        f"⚠ <b>Does not reach noise</b> (ᾱ<sub>T</sub> &gt; {REACHES_NOISE_ALPHA_BAR:g}) — {names}. "
        "x<sub>T</sub> still carries signal, but sampling starts from N(0, I).", "warn"
    )


def build_schedules(names: Sequence[str] | None, T, param_values: Sequence) -> list[NoiseSchedule]:
    """The chosen schedules (1–4), each built with its own parameters and the common T."""
    names = [n for n in (names or []) if n in SCHEDULE_NAMES]
    if not MIN_SCHEDULES <= len(names) <= MAX_SCHEDULES:
        raise InputError(f"Pick {MIN_SCHEDULES} to {MAX_SCHEDULES} schedules to compare (you picked {len(names)}).")
    names = [n for n in SCHEDULE_NAMES if n in names]  # a stable order: the same colours and rows every time
    return [controls.build_schedule(name, T, param_values) for name in names]


def view_sources(names, T, data, digit, upload_path, own, seed, log_beta, weighting, param_values) -> dict:
    """What the views are drawn from, by part: the schedules (every view), β's scale, the weighting, x₀ and ε."""
    return {"schedules": (sorted(names or []), T, *param_values), "log_beta": bool(log_beta), "weighting": weighting,
            "x0": (data_key_of(data, upload_path, own), digit if is_image_set(data) else None, seed)}


def compare(names, T, data, digit, upload_path, own, seed, log_beta, weighting, *param_values,
            parts: set[str] | None = None) -> tuple:
    """(ᾱ figure, β figure, log-SNR figure, noised-grid figure, table markdown, warning html, step-gain figure,
    loss-weight figure: the weight on ‖ε − ε̂‖² of the ``weighting`` chosen, one of WEIGHTING_CHOICES); with
    ``parts``, only the views drawn from one of those parts of `view_sources`, `gr.skip()` for the others."""
    if weighting not in {value for _, value in WEIGHTING_CHOICES}:
        raise InputError(f"Unknown weighting {weighting!r}; choose one from the list.")
    schedules = build_schedules(names, T, param_values)
    seed = controls.check_seed(seed)

    def noised_grid_figure():
        kind, x0 = load_one_x0(data, digit, upload_path, own)
        noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed))  # one ε for every schedule
        ts = grid_timesteps(schedules[0].T)
        cells = noised_grid(schedules, kind, x0, noise, ts)
        return panel_grid.noised_grid_figure(
            cells, [SCHEDULE_LABELS[s.name] for s in schedules], [f"t = {t}" for t in ts], kind=kind,
            cell_px=130 if kind == "images" else 150, points_as_pictures=True,
            row_colors=[figures.schedule_color(s) for s in schedules])

    views = (  # each view's draw, and the parts it is drawn from besides the schedules
        (lambda: schedule_figures.schedule_curves_figure(schedules, "alpha_bar"), set()),
        (lambda: schedule_figures.schedule_curves_figure(schedules, "beta", log_y=bool(log_beta)), {"log_beta"}),
        (lambda: schedule_figures.schedule_curves_figure(schedules, "log_snr"), set()),
        (noised_grid_figure, {"x0"}),
        (lambda: summary_table(schedules), set()),
        (lambda: warning_html(schedules), set()),
        (lambda: schedule_figures.step_gain_figure(schedules, [{sp: step_gains(s, sp) for sp in SPACINGS}
                                                               for s in schedules]), set()),
        (lambda: schedule_figures.schedule_curves_figure(schedules, weighting, log_y=True), {"weighting"}),
    )
    return tuple(draw() if parts is None or ({"schedules"} | drawn_from) & parts else gr.skip()
                 for draw, drawn_from in views)


def compare_and_keep(drawn: dict | None, names, T, data, digit, upload_path, own, seed, log_beta, weighting,
                     *param_values) -> tuple:
    """`compare`'s eight outputs, drawn only where their sources differ from ``drawn`` (what the views were drawn
    from: None, nothing yet), then the inputs they show, (schedules, T, data, image number, seed, *parameter values),
    for `controls_on_view`, and their sources, the next ``drawn``. A tick of β's log scale or another weighting
    redraws one plot, not all eight; Enter in a box and then a click elsewhere, once."""
    sources = view_sources(names, T, data, digit, upload_path, own, seed, log_beta, weighting, param_values)
    changed = set(sources) if drawn is None else {part for part, source in sources.items() if drawn[part] != source}
    if not changed:
        return (gr.skip(),) * 10
    views = compare(names, T, data, digit, upload_path, own, seed, log_beta, weighting, *param_values, parts=changed)
    return (*views, (list(names), T, data, digit, seed, *param_values), sources)


def upload_and_compare(drawn: dict | None, names, T, data, digit, upload_path, own, seed, log_beta, weighting,
                       *param_values) -> tuple:
    """An upload: the data choice on the picture and `compare_and_keep`'s outputs for it (`images.upload_and_draw`)."""
    return images.upload_and_draw(upload_path, 10, lambda: compare_and_keep(
        drawn, names, T, UPLOAD, digit, upload_path, own, seed, log_beta, weighting, *param_values))


def controls_on_view(on_view: Sequence) -> tuple:
    """After a change that could not be shown (a T too small for a schedule, a picture not uploaded, a mistyped
    number): the inputs back to what the views show, the schedules' boxes and their record too. Else a dropdown or a
    box named other data, another T or another schedule than the plots and the table."""
    names, *rest = on_view
    return (names, names, *rest)


def keep_in_range(names, last_shown) -> tuple:
    """A tick or an untick in the schedule boxes: kept while 1 to 4 stay ticked; otherwise the boxes go back to
    ``last_shown`` (the schedules on show) with a warning that says why, and the views stay as they are."""
    names = list(names or [])
    if MIN_SCHEDULES <= len(names) <= MAX_SCHEDULES:
        return names, names
    if len(names) > MAX_SCHEDULES:
        gr.Warning(f"At most {MAX_SCHEDULES} schedules fit side by side: untick one before ticking another.")
    else:
        gr.Warning("Keep at least one schedule ticked: tick another before unticking this one.")
    return list(last_shown), gr.skip()


def own_points_changed(drawn, names, T, data, *inputs) -> tuple:
    """The session's own points were drawn anew or uploaded (in the Train tab): redraw if they are shown."""
    if data != OWN_POINTS:
        return (gr.skip(),) * 10  # the outputs of `compare_and_keep`
    return compare_and_keep(drawn, names, T, data, *inputs)


# ----- layout ---------------------------------------------------------------------------------


def build(own: gr.State, page: gr.Blocks) -> None:
    """Lay out the Schedules tab inside the current Blocks/Tab context and wire its events; ``own``: the
    session's own points (`app.own_points`), drawn or uploaded in the Train tab; ``page``: the app, whose loads
    list the data sets present."""
    first = compare_and_keep(
        None, list(DEFAULT_SCHEDULES), controls.DEFAULT_T, DEFAULT_DATA, 0, None, None, 0, True, DEFAULT_WEIGHTING,
        *controls.default_param_values()
    )
    gr.Markdown(
        "Compare noise schedules on shared axes. ◆ marks the step where SNR = 1 (ᾱ_t = ½): half signal, "
        "half noise. Below, the **same** x₀ and the **same** noise ε are noised under each schedule. "
        + why_schedules_differ(controls.DEFAULT_T)
    )
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            chosen = gr.CheckboxGroup(
                choices=controls.SCHEDULE_CHOICES,
                value=list(DEFAULT_SCHEDULES),
                label=f"Schedules to compare (up to {MAX_SCHEDULES})",
            )
            T = controls.t_input()
            params = controls.param_inputs(shown=DEFAULT_SCHEDULES, open_=False)
            data = gr.Dropdown(choices=data_choices(), value=DEFAULT_DATA, label="Data x₀ for the noised grid",
                               elem_classes="name-dropdown")
            digit = controls.typed_slider(0, N_IMAGES - 1, value=0, step=1, label=f"Image number (of the first {N_IMAGES})",
                                          elem_id="schedules-image")  # 64 typed: the handler names the field
            upload = gr.File(label=images.upload_label(IMAGE_SIZE), file_types=images.UPLOAD_FILE_TYPES, height=140,
                             elem_classes="label-above")
            seed = gr.Number(value=0, label="Noise seed")
            log_beta = gr.Checkbox(value=True, label="β_t on a log scale")
        with gr.Column(scale=3, min_width=controls.VIEWS_MIN_WIDTH):
            table = gr.Markdown(first[4], elem_classes="numbers-table")
            warning = gr.HTML(first[5])
            alpha_plot = gr.Plot(first[0], label="ᾱ_t: fraction of the signal's variance kept (its size: √ᾱ_t)")
            logsnr_plot = gr.Plot(first[2], label="log-SNR(t) = log(ᾱ_t / (1 − ᾱ_t))")
            beta_plot = gr.Plot(first[1], label="β_t: variance of the noise added at step t")
            grid_plot = gr.Plot(first[3], label="x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε: rows = schedules, columns = t")
            gain_plot = gr.Plot(first[6], label=f"How much of an error in ε̂ each step of a {SHORT_CHAIN}-step DDIM "
                                                f"sampler (η = 0; T steps when T < {SHORT_CHAIN}) carries into x_s")
            weighting = gr.Radio(WEIGHTING_CHOICES, value=DEFAULT_WEIGHTING,
                                 label="How other losses weigh each noise level against the plain ε loss",
                                 info=WEIGHTING_INFO, elem_id="schedules-weighting")
            weight_plot = gr.Plot(first[7], label="The weight a loss puts on ‖ε − ε̂‖² at t (the plain ε loss: 1)",
                                  elem_id="schedules-bound-weight")

    page.load(data_list, None, data, show_progress="hidden", queue=False)
    on_view = gr.State(first[-2])  # the inputs of what `compare_and_keep` last showed
    drawn = gr.State(first[-1])  # what the views were drawn from
    inputs = [drawn, chosen, T, data, digit, upload, own, seed, log_beta, weighting, *params.components]
    outputs = [alpha_plot, beta_plot, logsnr_plot, grid_plot, table, warning, gain_plot, weight_plot, on_view, drawn]
    numbers = [T, seed] + [c for c in params.components if isinstance(c, gr.Number)]
    shown = gr.State(list(DEFAULT_SCHEDULES))  # the schedules on show: where a fifth tick (or no tick) goes back to
    chosen.input(keep_in_range, [chosen, shown], [chosen, shown], show_progress="hidden")
    triggers = [shown.change, data.change, digit.release, log_beta.change, weighting.change]
    triggers += [c.submit for c in numbers] + [c.blur for c in numbers]
    triggers += [c.change for c in params.components if isinstance(c, gr.Checkbox)]
    compared = [gr.on(triggers, compare_and_keep, inputs=inputs, outputs=outputs, trigger_mode="always_last",
                      show_progress="hidden", api_name="compare")]  # quick; an error: a toast, not badges on the views
    chosen.change(
        lambda names: params.visibility(names or []),
        inputs=chosen,
        outputs=list(params.groups.values()),
        show_progress="hidden",
        queue=False,
    )
    data.change(lambda choice: gr.Slider(visible=is_image_set(choice)), data, digit, show_progress="hidden",
                queue=False)
    uploaded = upload.upload(upload_and_compare, inputs=inputs, outputs=[data, *outputs],
                             show_progress="hidden")  # queued: a bad file's gr.Error shows as a toast (and as
    # no "Error" badge on each view, as its outputs' minimal progress had shown it)
    uploaded.failure(images.box_after_refusal, upload, upload, show_progress="hidden", queue=False)
    compared.append(uploaded)
    compared.append(own.change(own_points_changed, inputs=inputs, outputs=outputs, show_progress="hidden"))
    for event in compared:
        event.failure(controls_on_view, on_view, [chosen, shown, T, data, digit, seed, *params.components],
                      show_progress="hidden", queue=False)
    upload.clear(lambda choice: images.upload_removed(choice, DEFAULT_DATA), data, data, show_progress="hidden",
                 queue=False)
