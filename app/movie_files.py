"""A movie's files: the sprite sheet its player plays, written with the movie, and its GIF and MP4 for slides,
written when asked.

`publish` writes a movie's frames as one sprite sheet in a fresh export folder (`player.export_folder`) and keeps
what the GIF and MP4 are made of: a `Movie`, held by the page in a `gr.State`. The button under the player
("GIF and MP4 for slides", `build_exports`) cuts the frames back out of the sheet, adds each frame's labels and
formula beneath it (`player.labelled_image_frames`, `player.noted_frames`) and writes both files beside the sheet.
They had been written with every movie: on 2 CPU cores they took 0.85 s of a 2D Generate (60 frames) and most of
an Animate of MNIST, for files that few movies are downloaded as.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import PIL.Image
import PIL.PngImagePlugin

from app import player
from app.errors import InputError

log = logging.getLogger(__name__)

GONE = ("This movie's frames are no longer on the server (it was left for over "
        f"{player.EXPORTS_KEPT_SECONDS // 3600} hours): make the movie again.")
REPLACED = "A newer movie of this page replaced this one, and its files with it."
CONCURRENCY_ID = "movie-files"  # the buttons' queue (`build_exports`)


@dataclass(frozen=True)
class Movie:
    """What a movie's GIF and MP4 are made of: its sprite sheet (in its export folder, where they are written
    too), its frames' size and count, and what the exported frames add to the player's: per frame the labels over
    its panels (`player.labelled_image_frames`; none where the frames carry their own) and its formula beneath
    (`player.noted_frames`)."""

    sprite: str
    stem: str
    frame_size: tuple[int, int]
    n_frames: int
    labels: tuple[tuple[str, ...], ...] | None
    notes: tuple[str, ...]
    fps: int
    loop: bool
    drawn: bool = False  # drawn plots on white paper (2D), which the page turns dark on the dark theme

    @property
    def folder(self) -> Path:
        return Path(self.sprite).parent


def publish(frames: Sequence[PIL.Image.Image], ts: Sequence[int], *, key: str, view: str, stem: str,
            export_labels: Sequence[Sequence[str]] | None = None, export_fps: int = 20, loop: bool = False,
            notes: Sequence[str] = (), pixelated: bool = True, **markup: Any) -> tuple[str, Movie]:
    """A movie for one session (``key``) and one view: the frames' sprite sheet in a fresh `player.export_folder`
    (the view's earlier folders then go: `player.keep_only`), and the player's markup (``notes``, ``pixelated``
    (False: drawn plots) and ``markup``: the options of `player.player_html`). A ``loop`` (last frame leading into
    the first) is played and exported without a pause on its last frame. Returns (player HTML, the `Movie`, whose
    GIF and MP4 "``stem``.gif" and "``stem``.mp4" `write_movie_files` writes when asked, their frames labelled by
    ``export_labels``)."""
    folder = player.export_folder(key, view)
    movie_id = uuid.uuid4().hex[:12]
    try:
        sprite, cols, _ = player.write_sprite(frames, folder / f"frames-{movie_id}.png")
    except OSError as err:  # a half-written sheet had filled the disk for every later movie
        why = player.write_failure(err, folder)  # before the files go: they free the room that says the disk is full
        log.warning("writing the movie in %s failed: %s", folder, err)
        player.delete_folder(folder)
        raise gr.Error(f"The movie could not be written on this server ({why}).") from None
    page = player.player_html(ts, frame_size=frames[0].size, cols=cols, chain_id=movie_id, loop=loop, notes=notes,
                              pixelated=pixelated, **markup)
    player.keep_only(folder)
    labels = None if export_labels is None else tuple(tuple(row) for row in export_labels)
    return page, Movie(str(sprite), stem, frames[0].size, len(frames), labels, tuple(notes), export_fps, loop,
                       drawn=not pixelated)


def movie_frames(movie: Movie, first: int = 0) -> list[PIL.Image.Image]:
    """The movie's frames from the ``first`` on, cut from its sprite sheet (`player.make_sprite`'s layout), in their
    own mode (a 2D frame's palette too). The sheet is the server's own: it is opened without `PIL.Image.open`'s check
    of its size against the limit of an uploaded picture (`app.images`), which 150 frames of a 2D chain (59 million
    pixels) pass twice over, where Pillow refuses to open a picture. Raises `MovieGone` when the sheet is gone."""
    w, h = movie.frame_size
    cols, _ = player.sprite_layout(movie.n_frames)
    try:
        with PIL.PngImagePlugin.PngImageFile(movie.sprite) as sheet:
            sheet.load()
            return [sheet.crop(((i % cols) * w, (i // cols) * h, (i % cols + 1) * w, (i // cols + 1) * h))
                    for i in range(first, movie.n_frames)]
    except FileNotFoundError:
        raise MovieGone(movie.sprite) from None


def export_frames(movie: Movie, first: int = 0) -> list[PIL.Image.Image]:
    """The frames of the GIF and MP4 from the ``first`` on: the player's, with their labels above and their formulas
    beneath."""
    frames = movie_frames(movie, first)
    if movie.labels is not None:
        frames = player.labelled_image_frames(frames, movie.labels[first:])
    return player.noted_frames(frames, movie.notes[first:]) if movie.notes else frames


def file_paths(movie: Movie) -> tuple[Path, Path | None]:
    """Where the movie's GIF and MP4 go (no MP4 without an ffmpeg: `has_ffmpeg`)."""
    return movie.folder / f"{movie.stem}.gif", movie.folder / f"{movie.stem}.mp4" if has_ffmpeg() else None


class MovieGone(Exception):
    """The movie's sprite sheet, and with it its frames, is no longer on the server."""


def write_movie_files(movie: Movie) -> tuple[Path, Path | None]:
    """The movie's GIF and MP4 (None without an ffmpeg), written beside its sprite sheet unless they are there
    already. Both are written under temporary names and renamed once both are whole, so files found there are whole;
    a failed write leaves neither. Raises `MovieGone` when the sheet is gone (before or during the writing), and
    gr.Error, saying why, when a file cannot be written."""
    gif, mp4 = file_paths(movie)
    if gif.exists() and (mp4 is None or mp4.exists()):
        return gif, mp4
    hold_ms = round(1000 / movie.fps) if movie.loop else 1200
    partial = {path: path.with_name(f"{path.stem}.partial-{uuid.uuid4().hex[:8]}{path.suffix}")
               for path in (gif, mp4) if path is not None}
    try:
        frames = export_frames(movie)
        write_gif(frames, partial[gif], fps=movie.fps, hold_ms=hold_ms)
        if mp4 is not None:
            write_mp4(frames, partial[mp4], fps=movie.fps, hold_frames=0 if movie.loop else 20)
        for path, written in partial.items():  # a folder deleted meanwhile fails here, its open files written
            os.replace(written, path)
    except OSError as err:
        gone = not Path(movie.sprite).exists()
        why = player.write_failure(err, movie.folder)  # before the files go: they free the room that says it is full
        for path in (*partial.values(), gif, mp4):
            if path is not None:
                path.unlink(missing_ok=True)
        if gone:
            raise MovieGone(movie.sprite) from None
        log.warning("writing the GIF and MP4 in %s failed: %s", movie.folder, err)
        what = "The GIF" if mp4 is None else "The GIF and MP4"
        raise gr.Error(f"{what} could not be written on this server ({why}).") from None
    return gif, mp4


def is_replaced(movie: Movie) -> bool:
    """Whether a newer movie of the same page and view has its folder (`player.export_folder` names them in the
    order they are made): the page shows that one now."""
    folder = movie.folder
    try:
        return any(other.name > folder.name for other in folder.parent.iterdir())
    except OSError:  # the page's folders of that view went: left for hours
        return False


def movie_files(movie: Movie | None):
    """The button's event: the movie's (GIF path, MP4 path or None) for their boxes (`write_movie_files`). A newer
    movie of the page that replaced this one while they were written empties and hides them (with a note): the page
    plays that one now, and they go with its folder. (An API client that asks for a movie's files while it makes the
    next should fetch them before the next is done.)"""
    if movie is None:
        raise InputError("There is no movie yet to write as a GIF: make one first.")
    try:
        gif, mp4 = write_movie_files(movie)
    except MovieGone:
        gif = mp4 = None
    if is_replaced(movie):
        gr.Info(REPLACED)
        return hidden_files()
    if gif is None:  # swept, or its folder deleted by hand
        raise InputError(GONE)
    return str(gif), None if mp4 is None else str(mp4)


@dataclass(frozen=True)
class Exports:
    """The button that writes a movie's GIF and MP4, and the boxes they are downloaded from."""

    button: gr.Button
    gif: gr.File
    mp4: gr.File

    @property
    def components(self) -> list:
        return [self.button, self.gif, self.mp4]


def hidden_exports() -> tuple:
    """Updates of `Exports.components` that hide them all (a movie that made way for a note)."""
    return gr.Button(visible=False), *hidden_files()


def hidden_files() -> tuple:
    """Updates that empty and hide the GIF and MP4 boxes."""
    return gr.File(value=None, visible=False), gr.File(value=None, visible=False)


def button_label() -> str:
    return "GIF and MP4 for slides" if has_ffmpeg() else "GIF for slides"


def build_exports(movie: gr.State, sprite: gr.File, api_name: str, boxes_in_a_row: bool) -> Exports:
    """Lay out, where the caller is, the button and under it the two file boxes (side by side, or one under the
    other) of the movie in ``movie`` (its player's sheet in ``sprite``). Each new movie (a new ``sprite``) shows the
    button and hides the previous movie's files, whose folder it replaced."""
    button = gr.Button(button_label(), size="sm", visible=False)
    with gr.Row() if boxes_in_a_row else contextlib.nullcontext():
        gif = gr.File(label="GIF", interactive=False, visible=False)
        mp4 = gr.File(label="MP4", interactive=False, visible=False)
    exports = Exports(button, gif, mp4)
    helper = dict(show_progress="hidden", queue=False, api_visibility="private")
    sprite.change(lambda: (gr.Button(visible=True), *hidden_files()), None, exports.components, **helper)
    shown = [gif, mp4] if has_ffmpeg() else [gif]
    button.click(lambda: [gr.File(visible=True)] * len(shown), None, shown, **helper)  # its progress shows there
    # one at a time, both tabs' buttons and all pages together: a GIF of 150 2D frames takes ~0.3 GB while written
    written = button.click(movie_files, movie, [gif, mp4], api_name=api_name, show_progress="minimal",
                           concurrency_id=CONCURRENCY_ID, concurrency_limit=1)
    written.failure(hidden_files, None, [gif, mp4], **helper)  # the toast says why
    return exports


@cache
def has_ffmpeg() -> bool:
    """Whether imageio-ffmpeg finds an ffmpeg to write MP4s with: its own (its wheels carry one), the one named by
    IMAGEIO_FFMPEG_EXE, or one on the PATH. Installed from source (where no wheel fits, as on musl Linux) it has none
    of its own, and the missing MP4 had lost the whole movie, GIF and player too."""
    try:
        import imageio_ffmpeg  # imported here, once: asked when the tabs are built, not when the app is imported

        imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as err:
        log.warning("movies are exported without their MP4: %s", err)
        return False
    return True


def write_gif(frames: Sequence[PIL.Image.Image], path: str | Path, *, fps: int = 20, hold_ms: int = 1200) -> Path:
    """An endlessly looping GIF; the last frame is held for ``hold_ms``."""
    if not frames:
        raise ValueError("no frames to write")
    path = Path(path)
    step = max(20, round(1000 / fps))  # browsers treat GIF delays below 20 ms as 100 ms
    durations = [step] * (len(frames) - 1) + [hold_ms]
    first, *rest = frames
    first.save(path, format="GIF", save_all=True, append_images=rest, duration=durations, loop=0, optimize=False,
               disposal=1)
    return path


def write_mp4(frames: Sequence[PIL.Image.Image], path: str | Path, *, fps: int = 20, hold_frames: int = 20) -> Path:
    """H.264 MP4 through imageio-ffmpeg, with the ffmpeg it finds (`has_ffmpeg`)."""
    import imageio.v2 as imageio  # imported here: only an export needs it, not app start-up

    path = Path(path)
    rgb = [np.asarray(f.convert("RGB")) for f in frames]
    h, w = rgb[0].shape[:2]
    H, W = -(-h // 16) * 16, -(-w // 16) * 16  # yuv420p and most players want multiples of 16
    padded = []
    for a in rgb + [rgb[-1]] * hold_frames:
        canvas = np.full((H, W, 3), 255, np.uint8)
        canvas[:h, :w] = a
        padded.append(canvas)
    # x264's "veryfast" preset: on a 2D chain (100 frames) 0.9 s instead of the default "medium"'s 1.7 s, no larger
    imageio.mimwrite(path, padded, fps=fps, codec="libx264", quality=7, macro_block_size=1,
                     pixelformat="yuv420p", ffmpeg_params=["-preset", "veryfast"])
    if not has_index(path):  # ffmpeg that cannot write its trailer says so on stderr, and imageio raises nothing
        raise OSError(errno.EIO, "ffmpeg could not finish the MP4")
    return path


def has_index(mp4: Path) -> bool:
    """Whether an MP4 holds its whole index (the top-level "moov" box, which ffmpeg writes last): without it, no
    player can play the file."""
    with open(mp4, "rb") as file:
        end = os.fstat(file.fileno()).st_size
        while len(header := file.read(8)) == 8:
            start, size, kind = file.tell() - 8, int.from_bytes(header[:4], "big"), header[4:]
            if size == 1:  # a 64-bit size follows
                size = int.from_bytes(file.read(8), "big")
            if size < 8 or start + size > end:  # 0: the box runs to the end (ffmpeg's mdat cut short)
                return False
            if kind == b"moov":
                return True
            file.seek(start + size)
    return False
