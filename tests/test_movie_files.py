"""A movie's files: the sprite sheet written with the movie, its GIF and MP4 written when asked."""

from __future__ import annotations

import types
from pathlib import Path

import gradio as gr
import imageio.v2 as imageio
import imageio_ffmpeg
import numpy as np
import PIL.Image
import pytest

from app import movie_files, player
from app.runs import key_folder


@pytest.fixture(autouse=True)
def exports_here(monkeypatch, tmp_path):
    monkeypatch.setattr(player.tempfile, "gettempdir", lambda: str(tmp_path))


def _palette_frames(n: int = 3) -> list[PIL.Image.Image]:
    """2D frames: palette images, as `player.render_points_frames` draws them."""
    frames = []
    for k in range(n):
        frame = PIL.Image.new("P", (48, 40), 0)
        frame.putpalette([255, 255, 255, 200, 30, 30, 30, 30, 200] + [0] * 759)
        frame.paste(1 + k % 2, (2 * k, k, 2 * k + 10, k + 10))  # each frame differs (a GIF merges equal ones)
        frames.append(frame)
    return frames


def _grey_frames(n: int = 3) -> list[PIL.Image.Image]:
    rng = np.random.default_rng(0)
    return [PIL.Image.fromarray(rng.integers(0, 256, (30, 62), dtype=np.uint8)) for _ in range(n)]


def _publish(frames, **options):
    return movie_files.publish(frames, list(range(len(frames)))[::-1], key="k", view="v", stem="s", captions=["x"],
                               **options)


@pytest.mark.parametrize("frames, labels", [
    (_palette_frames(), None),  # 2D frames carry their own labels
    (_grey_frames(), [["x_t (t = 2)", "predicted x̂₀"], ["x_t (t = 1)", "predicted x̂₀"],
                      ["x_t (t = 0)", "x̂₀"]]),
    ([f.convert("RGB") for f in _grey_frames()], [["one"], ["two"], ["three"]]),
])
def test_the_gif_and_mp4_written_when_asked_are_those_written_with_the_movie_before(frames, labels, tmp_path):
    """The files are made from the frames cut back out of the sprite sheet: the same pixels, labels and formulas as
    the GIF and MP4 that each movie had written from its frames at once."""
    notes = ["x₂ = …", "x₁ = …", "x₀ = …"]
    page, movie = _publish(frames, export_labels=labels, notes=notes, export_fps=12)
    assert sorted(p.name for p in movie.folder.iterdir()) == [Path(movie.sprite).name]  # nothing more, yet
    assert f'data-id="{Path(movie.sprite).stem.removeprefix("frames-")}"' in page
    gif, mp4 = movie_files.write_movie_files(movie)
    assert (gif.name, mp4.name) == ("s.gif", "s.mp4") and gif.parent == mp4.parent == movie.folder
    exported = frames if labels is None else player.labelled_image_frames(frames, labels)
    before = movie_files.write_gif(player.noted_frames(exported, notes), tmp_path / "before.gif", fps=12)
    assert gif.read_bytes() == before.read_bytes()
    assert movie_files.has_index(mp4) and len(imageio.mimread(mp4)) == 3 + 20  # the last frame held
    assert sorted(p.name for p in movie.folder.iterdir()) == sorted(["s.gif", "s.mp4", Path(movie.sprite).name])


def test_a_loop_is_exported_without_a_pause_and_a_chain_with_one() -> None:
    frames = _palette_frames()
    _, chain = _publish(frames)
    with PIL.Image.open(movie_files.write_movie_files(chain)[0]) as gif:
        gif.seek(2)
        assert gif.info["duration"] == 1200
    _, loop = _publish(frames, loop=True, export_fps=10)
    gif, mp4 = movie_files.write_movie_files(loop)
    with PIL.Image.open(gif) as image:
        image.seek(2)
        assert image.info["duration"] == 100
    assert len(imageio.mimread(mp4)) == 3


def test_a_sheet_far_larger_than_an_uploaded_picture_may_be_is_exported(monkeypatch) -> None:
    """The app lets Pillow open pictures of up to twice `MAX_UPLOAD_PIXELS` (20 million): 150 frames of a 2D chain
    make a sheet of 59 million, which Pillow would refuse (here the limit is lowered to a sheet's tenth)."""
    frames = _palette_frames(12)
    _, movie = _publish(frames)
    monkeypatch.setattr(PIL.Image, "MAX_IMAGE_PIXELS", 48 * 40 * 12 // 10)
    with pytest.raises(PIL.Image.DecompressionBombError):
        PIL.Image.open(movie.sprite)
    gif, _ = movie_files.write_movie_files(movie)
    with PIL.Image.open(gif) as image:
        assert image.n_frames == 12


def test_files_written_once_are_handed_out_again(monkeypatch) -> None:
    _, movie = _publish(_grey_frames(), export_labels=[["a"]] * 3)
    first = movie_files.write_movie_files(movie)
    monkeypatch.setattr(movie_files, "write_gif", lambda *a, **k: pytest.fail("written twice"))
    monkeypatch.setattr(movie_files, "write_mp4", lambda *a, **k: pytest.fail("written twice"))
    assert movie_files.write_movie_files(movie) == first


def test_the_button_fills_the_boxes_and_says_when_the_movie_is_gone_or_replaced(monkeypatch) -> None:
    with pytest.raises(gr.Error, match="no movie yet"):
        movie_files.movie_files(None)
    _, movie = _publish(_palette_frames())
    gif, mp4 = movie_files.movie_files(movie)
    assert (Path(gif), Path(mp4)) == (movie.folder / "s.gif", movie.folder / "s.mp4")
    infos = []
    monkeypatch.setattr(movie_files.gr, "Info", infos.append)
    _, newer = _publish(_palette_frames())  # a new movie of the page: the old one's folder goes
    gif, mp4 = movie_files.movie_files(movie)
    assert gif.visible is False and gif.value is None and mp4.visible is False and infos == [movie_files.REPLACED]
    player.delete_folder(newer.folder)  # the page's movies left for hours, and swept
    with pytest.raises(gr.Error) as gone:
        movie_files.movie_files(newer)
    assert gone.value.message == movie_files.GONE and "make the movie again" in movie_files.GONE


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_movie_replaced_while_its_files_are_written_hides_them(monkeypatch, when) -> None:
    """The button's event and the next Generate can run at once: the files of the movie that went had been shown
    beside the new one; and a folder deleted while a file was open in it (written whole, then not renamed) had been
    a bare "Error"."""
    _, movie = _publish(_palette_frames())
    real = movie_files.write_gif

    def meanwhile_a_new_movie(frames, path, **options):
        if when == "before":
            _publish(_palette_frames())
        with open(path, "wb") as file:  # open while the new movie deletes the folder
            if when == "after":
                _publish(_palette_frames())
            file.write(real(frames, movie.folder.parent / "elsewhere.gif", **options).read_bytes())
        return path

    monkeypatch.setattr(movie_files, "write_gif", meanwhile_a_new_movie)
    infos = []
    monkeypatch.setattr(movie_files.gr, "Info", infos.append)
    gif, mp4 = movie_files.movie_files(movie)
    assert gif.visible is False and mp4.visible is False and infos == [movie_files.REPLACED]


def test_files_that_cannot_be_written_leave_none_behind_and_say_why(monkeypatch) -> None:
    """A full disk had left a half GIF, an MP4 without its index (ffmpeg fails at its trailer, and imageio raises
    nothing): the leftovers kept the disk full for every later movie until the 2-hour sweep. The movie still plays
    (its sheet stays), and the button can be pressed again."""
    _, movie = _publish([PIL.Image.new("RGB", (32, 32), (v, v, v)) for v in (0, 128, 255)])
    real_mimwrite = imageio.mimwrite

    def trailer_lost(path, *args, **kwargs):  # the MP4 written, then cut before its index
        real_mimwrite(path, *args, **kwargs)
        data = Path(path).read_bytes()
        Path(path).write_bytes(data[: data.rindex(b"moov") - 4])

    def left_only_the_sheet():
        assert [p.name for p in movie.folder.iterdir()] == [Path(movie.sprite).name]

    monkeypatch.setattr(imageio, "mimwrite", trailer_lost)
    with pytest.raises(gr.Error) as failed:
        movie_files.movie_files(movie)
    assert failed.value.message == ("The GIF and MP4 could not be written on this server (ffmpeg could not finish the "
                                    "MP4).")
    left_only_the_sheet()

    def pipe_broken(path, *args, **kwargs):  # what imageio raises when ffmpeg fails mid-movie (a full disk, a quota)
        Path(path).write_bytes(b"half a movie")
        raise OSError(f"[Errno 32] Broken pipe\n\nFFMPEG COMMAND:\n/usr/bin/ffmpeg -y {path}")

    monkeypatch.setattr(imageio, "mimwrite", pipe_broken)
    with pytest.raises(gr.Error) as failed:  # ffmpeg's command, the server's paths in it, had been the toast
        movie_files.movie_files(movie)
    assert failed.value.message == "The GIF and MP4 could not be written on this server (the movie writer stopped)."
    left_only_the_sheet()
    room = []  # the free space is read while the half-written files still take it
    monkeypatch.setattr(player.shutil, "disk_usage", lambda path: room.append(len(list(Path(path).iterdir())))
                        or types.SimpleNamespace(free=4096))
    with pytest.raises(gr.Error, match=r"\(its disk is full\)"):
        movie_files.movie_files(movie)
    assert room == [3]  # the sheet, the GIF and the MP4 being written
    left_only_the_sheet()
    monkeypatch.setattr(imageio, "mimwrite", real_mimwrite)
    gif, mp4 = movie_files.movie_files(movie)
    assert movie_files.has_index(Path(mp4)) and len(imageio.mimread(mp4)) >= 3


def test_a_sheet_that_cannot_be_written_leaves_no_folder_and_says_why(monkeypatch) -> None:
    def full(self, path, *args, **kwargs):
        Path(path).write_bytes(b"half a sheet")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(PIL.Image.Image, "save", full)
    with pytest.raises(gr.Error) as failed:
        _publish(_grey_frames())
    assert failed.value.message == "The movie could not be written on this server (its disk is full)."
    assert list((player.exports_root() / key_folder("k") / "v").iterdir()) == []


def test_without_ffmpeg_a_movie_is_exported_as_a_gif_alone(monkeypatch) -> None:
    """imageio-ffmpeg installed from source has no ffmpeg of its own: its RuntimeError had lost the GIF and the
    player with the MP4."""
    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", lambda: (_ for _ in ()).throw(RuntimeError("No ffmpeg exe")))
    movie_files.has_ffmpeg.cache_clear()
    try:
        page, movie = _publish(_grey_frames(), export_labels=[["a"]] * 3)
        assert movie_files.button_label() == "GIF for slides"
        gif, mp4 = movie_files.movie_files(movie)
    finally:
        movie_files.has_ffmpeg.cache_clear()
    assert "<canvas" in page and PIL.Image.open(gif).n_frames == 3
    assert mp4 is None
    assert sorted(p.name for p in movie.folder.iterdir()) == sorted(["s.gif", Path(movie.sprite).name])


def test_a_new_movie_shows_the_button_and_hides_the_last_movies_files() -> None:
    with gr.Blocks() as demo:
        movie, sprite = gr.State(None), gr.File(visible=False)
        exports = movie_files.build_exports(movie, sprite, api_name="movie_files", boxes_in_a_row=True)
    on_sprite = [d for d in demo.fns.values() if d.targets == [(sprite._id, "change")]]
    assert len(on_sprite) == 1 and [c._id for c in on_sprite[0].outputs] == [c._id for c in exports.components]
    button, gif, mp4 = on_sprite[0].fn()
    assert button.visible is True and gif.visible is False and gif.value is None and mp4.visible is False
    writes = [d for d in demo.fns.values() if d.api_name == "movie_files"]
    assert len(writes) == 1 and [c._id for c in writes[0].inputs] == [movie._id]
    assert (writes[0].concurrency_id, writes[0].concurrency_limit) == (movie_files.CONCURRENCY_ID, 1)
    assert [c._id for c in writes[0].outputs] == [exports.gif._id, exports.mp4._id]
    clicks = [d for d in demo.fns.values() if d.targets == [(exports.button._id, "click")]]
    shown = [d for d in clicks if d is not writes[0]]
    assert len(clicks) == 2 and not shown[0].queue and [u.visible for u in shown[0].fn()] == [True, True]
    failed = [d for d in demo.fns.values() if d.trigger_after == writes[0]._id]
    assert len(failed) == 1 and failed[0].trigger_only_on_failure  # a refusal leaves no empty box behind
    assert [u.visible for u in failed[0].fn()] == [False, False]
