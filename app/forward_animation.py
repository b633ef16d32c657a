"""The Forward tab's movie: the forward process x_0 → x_T played back, and exported for slides.

Frame k shows x_t = √ᾱ_t·x_0 + √(1 − ᾱ_t)·ε at the k-th of the chosen timesteps, with the tab's fixed ε:
the picture being scrubbed, played back. The timesteps run from 0 to T, spaced

- evenly in t: the chain's own pace. On the linear schedule (T = 1000) MNIST digits can hardly be made
  out from t ≈ 450, so the last half of the movie is noise turning into other noise: the waste that the
  cosine schedule was designed to cut (Nichol & Dhariwal 2021);
- evenly in log-SNR λ_t = log(ᾱ_t/(1 − ᾱ_t)), from λ_1 down to λ_T (after x_0): each frame divides the
  signal-to-noise ratio by the same factor across the schedule's own range (schedules differ in where λ starts
  and ends: at T = 1000, from 9.2 to −10.1 on linear, 10.1 to −19.8 on cosine), with as many frames on the almost
  clean steps as on the almost pure noise.

The log-SNR steps are those of a reverse chain (`core.sampler.chain_timesteps`), in increasing order.
The frames play in the same in-browser player as the Reverse tab (`app.player`) and export, when asked, as a GIF
and an MP4 (`app.movie_files`).
"""

from __future__ import annotations


import gradio as gr
import numpy as np
import PIL.Image

from app import formulas, movie_files, player, runs
from app.controls import SPACING_CHOICES, VIEWS_MIN_WIDTH, whole_number
from app.errors import InputError
from app.forward_tab import ForwardState, ForwardTab, to_display, x_t
from core.sampler import SPACINGS, chain_timesteps
from core.schedules import NoiseSchedule

DEFAULT_FRAMES = 60
MIN_FRAMES, MAX_FRAMES = 2, 150
DEFAULT_SPACING = "uniform"
FPS = 12  # 60 frames: a 5 s movie, in the player and the exports


def frame_timesteps(schedule: NoiseSchedule, n_frames: int, spacing: str) -> list[int]:
    """``n_frames`` increasing timesteps from 0 (x_0) to T (fewer when T is smaller): evenly spaced in t, or 0
    and then the steps of an (n_frames − 1)-step reverse chain spaced evenly in log-SNR."""
    if spacing == "uniform":
        return sorted({int(round(t)) for t in np.linspace(0, schedule.T, min(n_frames, schedule.T + 1))})
    steps = max(1, min(n_frames - 1, schedule.T))
    return [0] + chain_timesteps(schedule, steps, "ddpm", spacing)[::-1]  # type: ignore[arg-type]


def frame_label(schedule: NoiseSchedule, t: int, separator: str = " · ") -> str:
    """What a frame says of itself: t and ᾱ_t."""
    return f"x_t · t = {t}{separator}ᾱ_t = {float(schedule.alpha_bars[t]):.3g}"


def render_frames(state: ForwardState, ts: list[int]) -> list[PIL.Image.Image]:
    """One frame per t: point clouds on the player's fixed axes over x_0 in grey (named so: nothing is trained
    here), labelled; images as the tab shows them, unlabelled (the player's caption and the exported band carry the
    label)."""
    shown = [to_display(state, x_t(state, t)) for t in ts]
    if state.kind == "points":
        labels = [frame_label(state.schedule, t, "\n") for t in ts]  # two lines: the panel is narrow
        return player.render_point_panels(shown, labels, reference=state.x0.numpy(), reference_label="grey: x₀")
    return [PIL.Image.fromarray(np.ascontiguousarray(grid)) for grid in shown]


def animate(request: gr.Request, state: ForwardState | None, n_frames, spacing):
    """Animate: (player HTML, the `movie_files.Movie`, sprite sheet path)."""
    if state is None:
        raise InputError("Nothing to animate yet: choose data and a schedule first.")
    if spacing not in SPACINGS:
        raise InputError(f"Unknown frame spacing {spacing!r}; choose one from the list.")
    n_frames = whole_number(n_frames, "Frames", MIN_FRAMES, MAX_FRAMES)
    ts = frame_timesteps(state.schedule, n_frames, spacing)
    frames = render_frames(state, ts)
    points = state.kind == "points"
    page, movie = movie_files.publish(
        frames, ts, key=runs.session_key(request), view="forward", stem="forward",
        captions=["x_t (t = {t}), ε held fixed"], notes=formulas.forward_notes(state.schedule, ts),
        note_key=formulas.FORWARD_KEY, export_labels=None if points else [[frame_label(state.schedule, t)] for t in ts],
        fps=FPS, export_fps=FPS, max_width=frames[0].width if points else 520, pixelated=not points)
    return page, movie, movie.sprite


def shown_by(state: ForwardState) -> tuple:
    """What a movie of ``state`` shows: its data (and picture, or own points), schedule, T, seed and parameters."""
    return state.data_key, state.controls


STALE_MOVIE = ("The data, schedule or noise changed since the last movie: press Animate for a movie of what is shown "
               "above.")


def movie_still_shown(state: ForwardState | None, movie_of: tuple | None) -> tuple:
    """After the tab's views changed: the movie and its exports (button, GIF, MP4) make way for a note when they show
    other data, another schedule or other noise than the views now do (they stayed, and played the old ones as if
    current). Returns (movie, its `movie_files.Movie`, button, GIF, MP4, `shown_by` of the movie's state); once it
    made way, the Movie and `shown_by` are None (the API's files of the movie had still been written)."""
    if movie_of is None or state is None or shown_by(state) == movie_of:
        return (gr.skip(),) * 6
    return player.empty_player(STALE_MOVIE), None, *movie_files.hidden_exports(), None


def build(tab: ForwardTab) -> None:
    """Lay out the movie below the Forward tab's views."""
    state = tab.state
    with gr.Accordion("Play the forward process as a movie (and download it as a GIF or MP4 for slides)",
                      open=False):
        with gr.Row():
            n_frames = gr.Slider(MIN_FRAMES, MAX_FRAMES, value=DEFAULT_FRAMES, step=1, label="Frames",
                                 elem_id="forward-frames")
            spacing = gr.Radio(choices=SPACING_CHOICES, value=DEFAULT_SPACING, label="Space the frames",
                               info="evenly in t: the chain's own pace; evenly in log-SNR: one factor of "
                                    "SNR per frame across the schedule's own range of SNR")
            animate_btn = gr.Button("Animate", variant="primary", scale=0, min_width=140)
        sprite = gr.File(visible=False, elem_id="forward-sprite")  # the frames, for the player
        made = gr.State(None)  # the movie's `movie_files.Movie`
        with gr.Row():
            with gr.Column(scale=2, min_width=VIEWS_MIN_WIDTH):  # a gr.HTML alone ignores min_width
                movie = gr.HTML(player.empty_player("Press Animate to play x_0 → x_T with the data, schedule and "
                                                    "noise shown above."),
                                js_on_load=player.PLAYER_JS, css_template=player.PLAYER_CSS, elem_id="forward-player")
            with gr.Column(scale=1, min_width=200):  # on a narrow window: under the player, which takes the width
                exports = movie_files.build_exports(made, sprite, api_name="forward_movie_files", boxes_in_a_row=False)
    movie_of = gr.State(None)  # `shown_by` of the state the movie was made of
    animated = animate_btn.click(animate, [state, n_frames, spacing], [movie, made, sprite], show_progress="minimal")
    animated.success(None, sprite, None, js=player.SPRITE_JS, queue=False)
    animated.success(shown_by, state, movie_of, show_progress="hidden", queue=False)
    for rebuilt in tab.rebuilt:
        rebuilt.success(movie_still_shown, [state, movie_of], [movie, made, *exports.components, movie_of],
                        show_progress="hidden", queue=False)
