"""Chains kept beside the next ones: the last frame of the movie on view, with its formula, and its stats, held
under the player while other chains play (DDPM beside DDIM, an ε model beside a v model, 50 steps beside 1,000); up
to `MAX_KEPT` of them, the oldest making way for a newer one.

A lecturer comparing two chains had seen the second replace the first, whose picture and numbers (an SW ratio of 679
against 1.04) then had to be remembered; three (DDPM-1000, DDIM-50 and a v model's DDIM-50) had needed a second
window. The kept frame is cut from the movie's sprite sheet (`movie_files.export_frames`), so it is the frame the
player ended on, as the GIF shows it; it stays in the page while later movies replace the sheet.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import PIL.Image

from app import movie_files
from app.controls import focus_js
from app.errors import InputError
from app.movie_files import Movie

KEEP_LABEL = "Keep this chain beside the next ones"
CLEAR_LABEL = "Clear the kept chains"
NOTHING_TO_KEEP = "There is no chain to keep yet: press Generate first."
ALREADY_KEPT = "This chain is kept already."
MAX_KEPT = 3  # chains kept at once: a fourth pushes out the oldest
DRAWN_CLASS = "kept-drawn"  # a kept frame that is a drawn plot (2D)
# On the dark theme a kept 2D frame is turned dark as the player turns its frames (`player.DARK_THEME_CSS`): its white
# paper had glared beneath the dark player; pictures of images stay as they are, the downloaded PNG keeps its paper.
DARK_THEME_CSS = f".dark #reverse-kept .{DRAWN_CLASS} img {{filter: invert(1) hue-rotate(180deg)}}"


@dataclass(frozen=True)
class Kept:
    """A kept chain: its movie's sprite sheet (which tells one movie from another), last frame and stats, and whether
    the frame is a drawn plot (2D: white paper, shown dark on the dark theme as the player shows it)."""

    sprite: str
    frame: PIL.Image.Image
    words: str
    drawn: bool = False


def kept_frame(movie: Movie | None) -> PIL.Image.Image:
    """The movie's last frame as its GIF shows it (labels above, formula beneath), in RGB."""
    if movie is None:
        raise InputError(NOTHING_TO_KEEP)
    try:
        return movie_files.export_frames(movie, first=movie.n_frames - 1)[-1].convert("RGB")
    except movie_files.MovieGone:  # swept after hours, or replaced as Keep was pressed by a chain that came then
        replaced = movie_files.is_replaced(movie)
        raise InputError(f"{movie_files.REPLACED} Press Keep again to keep it." if replaced else movie_files.GONE) \
            from None


def keep(movie: Movie | None, stats: str | None, kept: list[Kept] | None = None) -> tuple:
    """The button's event: the chain on view joins the ``kept`` ones (its stats without their list of each frame's t),
    the oldest leaving beyond `MAX_KEPT`. Returns (the kept chains, `shown`'s updates). A chain kept already is not
    kept twice."""
    before = list(kept or [])
    if movie is not None and any(chain.sprite == movie.sprite for chain in before):
        gr.Info(ALREADY_KEPT)
        return before, *shown(before, before)
    words = (stats or "").split("<details>")[0].strip()
    kept = [*before, Kept(movie.sprite if movie else "", kept_frame(movie), words, movie.drawn)][-MAX_KEPT:]
    return kept, *shown(kept, before)


def shown(kept: list[Kept], before: list[Kept] | None = None) -> tuple:
    """The kept box's updates: for each of its `MAX_KEPT` places, the stats and the frame of the chain kept there
    (in the order they were kept), or nothing, hidden; then the box, shown while a chain is kept. A frame that stays
    in its place (``before``: the chains shown until now) is not sent again (a PNG of 0.1–0.3 MB)."""
    before = before or []
    updates: list = []
    for i in range(MAX_KEPT):
        chain = kept[i] if i < len(kept) else None
        title = f"Kept {i + 1} of {len(kept)}" if len(kept) > 1 else "Kept for comparison"
        unmoved = chain is not None and i < len(before) and before[i] is chain
        updates += [gr.update(value=f"**{title}:** {chain.words}" if chain else "", visible=chain is not None),
                    gr.skip() if unmoved else gr.update(value=chain.frame if chain else None, visible=chain is not None,
                                                        elem_classes=[DRAWN_CLASS] if chain and chain.drawn else [])]
    return *updates, gr.update(visible=bool(kept))


def build(movie: gr.State, stats: gr.Markdown, sprite: gr.File) -> None:
    """Lay out, where the caller is, the button (shown once there is a movie: a new ``sprite``) and the kept box
    (shown once a chain is kept, until Clear)."""
    button = gr.Button(KEEP_LABEL, size="sm", visible=False, elem_id="reverse-keep")
    kept = gr.State([])
    places: list = []
    with gr.Column(visible=False, elem_id="reverse-kept") as box:
        for i in range(MAX_KEPT):
            places.append(gr.Markdown(visible=False))
            places.append(gr.Image(label=f"Kept chain {i + 1}: its last frame", show_label=False, type="pil",
                                   interactive=False, format="png", buttons=["download"], visible=False,
                                   alt_text=f"Kept chain {i + 1}: its last frame"))
        clear = gr.Button(CLEAR_LABEL, size="sm", variant="secondary")
    helper = dict(show_progress="hidden", queue=False, api_visibility="private")
    sprite.change(lambda: gr.Button(visible=True), None, button, **helper)
    button.click(keep, [movie, stats, kept], [kept, *places, box], show_progress="minimal", api_visibility="private")
    clear.click(lambda: ([], *shown([])), None, [kept, *places, box], **helper)
    clear.click(None, None, None, js=focus_js("reverse-keep"), queue=False)  # Clear goes: the focus had fallen
