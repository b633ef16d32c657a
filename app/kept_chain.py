"""A chain kept beside the next ones: the last frame of the movie on view, with its formula, and its stats, held
under the player while other chains play (DDPM beside DDIM, an ε model beside a v model, 50 steps beside 1,000).

A lecturer comparing two chains had seen the second replace the first, whose picture and numbers (an SW ratio of 679
against 1.04) then had to be remembered. The kept frame is cut from the movie's sprite sheet
(`movie_files.export_frames`), so it is the frame the player ended on, as the GIF shows it; it stays in the page
while later movies replace the sheet.
"""

from __future__ import annotations

import gradio as gr
import PIL.Image

from app import movie_files
from app.controls import focus_js
from app.errors import InputError
from app.movie_files import Movie

KEEP_LABEL = "Keep this chain beside the next ones"
NOTHING_TO_KEEP = "There is no chain to keep yet: press Generate first."


def kept_frame(movie: Movie | None) -> PIL.Image.Image:
    """The movie's last frame as its GIF shows it (labels above, formula beneath), in RGB."""
    if movie is None:
        raise InputError(NOTHING_TO_KEEP)
    try:
        return movie_files.export_frames(movie, first=movie.n_frames - 1)[-1].convert("RGB")
    except movie_files.MovieGone:
        raise InputError(movie_files.GONE) from None


def keep(movie: Movie | None, stats: str | None) -> tuple[PIL.Image.Image, str, gr.Column]:
    """The button's event: (the kept frame, the stats it came with, without their list of each frame's t, the kept
    box shown)."""
    frame = kept_frame(movie)
    words = (stats or "").split("<details>")[0].strip()
    return frame, f"**Kept for comparison:** {words}", gr.Column(visible=True)


def build(movie: gr.State, stats: gr.Markdown, sprite: gr.File) -> None:
    """Lay out, where the caller is, the button (shown once there is a movie: a new ``sprite``) and the kept box
    (shown once a chain is kept, until Clear)."""
    button = gr.Button(KEEP_LABEL, size="sm", visible=False, elem_id="reverse-keep")
    with gr.Column(visible=False, elem_id="reverse-kept") as box:
        words = gr.Markdown()
        picture = gr.Image(label="The kept chain's last frame", show_label=False, type="pil", interactive=False,
                           format="png", buttons=["download"], alt_text="The kept chain's last frame")
        clear = gr.Button("Clear the kept chain", size="sm", variant="secondary")
    helper = dict(show_progress="hidden", queue=False, api_visibility="private")
    sprite.change(lambda: gr.Button(visible=True), None, button, **helper)
    button.click(keep, [movie, stats], [picture, words, box], show_progress="minimal", api_visibility="private")
    clear.click(lambda: (None, "", gr.Column(visible=False)), None, [picture, words, box], **helper)
    clear.click(None, None, None, js=focus_js("reverse-keep"), queue=False)  # Clear goes: the focus had fallen
