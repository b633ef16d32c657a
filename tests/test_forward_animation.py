"""The Forward tab's movie: its timesteps, its frames (x_t with the tab's fixed noise), the player and the
exports."""

from __future__ import annotations

import os
import time
import types
from pathlib import Path

import gradio as gr
from gradio.data_classes import _StaticFiles
import imageio.v2 as imageio
import numpy as np
import PIL.Image
import pytest
from gradio import processing_utils, utils as gradio_utils

from app import controls, forward_animation, forward_tab, movie_files, player
from app.runs import key_folder
from core.schedules import make_schedule

REQ = types.SimpleNamespace(session_hash="alice")


def _state(data="mnist", schedule="linear", T=1000):
    return forward_tab.prepare(None, data, None, None, schedule, T, 0, *controls.default_param_values())


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_frames_run_from_x0_to_xT_evenly_in_t_or_in_log_snr(schedule):
    s = make_schedule(schedule, 1000)
    even_t = forward_animation.frame_timesteps(s, 11, "uniform")
    assert even_t == list(range(0, 1001, 100))
    even_snr = forward_animation.frame_timesteps(s, 11, "log_snr")
    assert len(even_snr) == 11 and even_snr[0] == 0 and even_snr[1] == 1 and even_snr[-1] == 1000
    assert all(a < b for a, b in zip(even_snr, even_snr[1:]))
    gaps = np.diff(s.log_snr[even_snr[1:]].numpy())  # after x_0 (λ_0 = ∞): equal steps down in λ
    inner = gaps[:-1]  # bar the top step, which one step of t can span on its own (cosine: β_T capped at 0.999)
    assert inner.max() < 0 and np.abs(inner / np.median(inner) - 1).max() < 0.1 and gaps[-1] <= 0.9 * np.median(inner)
    assert forward_animation.frame_timesteps(make_schedule(schedule, 50), 60, "uniform") == list(range(51))
    assert forward_animation.frame_timesteps(make_schedule(schedule, 50), 60, "log_snr") == list(range(51))


def test_image_frames_are_the_scrubbed_pictures_and_export_with_their_labels():
    state = _state()
    page, movie, sprite = forward_animation.animate(REQ, state, 5, "uniform")
    assert sorted(p.name for p in Path(sprite).parent.iterdir()) == [Path(sprite).name]  # the GIF when asked
    gif, mp4 = movie_files.write_movie_files(movie)
    assert 'data-ts="0,250,500,750,1000"' in page and "x_t (t = " in page and "pl-smooth" not in page
    assert f'data-fps="{forward_animation.FPS}"' in page and f'<option value="{forward_animation.FPS}" selected>' in page
    frame_size = PIL.Image.open(sprite).size
    shown = [forward_tab.to_display(state, forward_tab.x_t(state, t)) for t in (0, 250, 500, 750, 1000)]
    frames = forward_animation.render_frames(state, [0, 250, 500, 750, 1000])
    assert all(np.array_equal(np.asarray(f), s) for f, s in zip(frames, shown))  # the scrubbed views, exactly
    cols, rows = player.sprite_layout(5)
    assert frame_size == (cols * shown[0].shape[1], rows * shown[0].shape[0])
    with PIL.Image.open(gif) as image:
        assert image.is_animated and image.n_frames == 5 and image.width >= player.GIF_MIN_WIDTH
    with imageio.get_reader(mp4) as video:
        assert video.count_frames() >= 5
    assert forward_animation.frame_label(state.schedule, 500) == f"x_t · t = 500 · ᾱ_t = {float(state.schedule.alpha_bars[500]):.3g}"


def test_point_frames_draw_x_t_over_x0():
    state = _state("moons")
    ts = [0, 1000]
    frames = forward_animation.render_frames(state, ts)
    assert [f.size for f in frames] == [(player.PLOT_SIZE, player.PLOT_SIZE)] * 2
    grey, blue = player._PALETTE_HEX.index(player.DATA_COLOR), 3
    first, last = np.asarray(frames[0]), np.asarray(frames[1])
    assert (first == grey).sum() < 0.2 * (first == blue).sum()  # at t = 0, x_t covers x_0
    assert (last == grey).sum() > (first == grey).sum()  # at t = T, x_0 shows beneath the noise
    # the grey is named x₀ in its corner: nothing is trained here ("grey: training data" before)
    corner = np.s_[-player._MARGIN_B - 24 : -player._MARGIN_B, -player._MARGIN_R - 160 : -player._MARGIN_R]
    x0 = state.x0.numpy()
    assert np.array_equal(first[corner], player._background(x0, "grey: x₀")[corner])
    assert not np.array_equal(first[corner], player._background(x0)[corner])
    page, movie, _ = forward_animation.animate(REQ, state, 12, "log_snr")
    gif, _ = movie_files.write_movie_files(movie)
    assert 'data-frames="12"' in page and "pl-smooth" in page
    with PIL.Image.open(gif) as image:
        # the exported frames carry their formula in a band beneath
        assert image.n_frames == 12 and image.size == (player.PLOT_SIZE, player.PLOT_SIZE + player.NOTE_BAND)


def test_each_view_keeps_its_own_exports():
    _, _, forward_sprite = forward_animation.animate(REQ, _state("moons"), 3, "uniform")
    reverse_folder = player.export_folder("alice", "reverse")
    (reverse_folder / "reverse.gif").write_bytes(b"GIF89a")
    _, _, again = forward_animation.animate(REQ, _state("moons"), 3, "uniform")
    assert (reverse_folder / "reverse.gif").exists()  # a new movie leaves the Reverse tab's export alone
    assert not Path(forward_sprite).exists() and Path(again).exists()  # and replaces the previous movie


@pytest.mark.parametrize("state, frames, spacing, message", [
    (None, 10, "uniform", "Nothing to animate"),
    ("mnist", 1, "uniform", "Frames"),
    ("mnist", 151, "uniform", "Frames"),
    ("mnist", 2.5, "uniform", "Frames"),
    ("mnist", 10, "karras", "frame spacing"),
])
def test_bad_inputs_raise_gr_error(state, frames, spacing, message):
    with pytest.raises(gr.Error, match=message):
        forward_animation.animate(REQ, state and _state(state), frames, spacing)


def test_a_movie_of_other_data_or_noise_makes_way_for_a_note():
    """The movie stayed after the data, schedule or noise changed above it, and played the old ones (their ᾱ_t in each
    frame's note) as if current: after a rebuild that changed what is shown, it and its exports (the button, the GIF
    and the MP4) make way for a note; a rebuild that changed nothing (a number box left as it was) keeps them."""
    state = _state("moons")
    movie_of = forward_animation.shown_by(state)
    same = forward_tab.prepare(state, "moons", None, None, "linear", 1000, 0, *controls.default_param_values())
    assert forward_animation.movie_still_shown(same, movie_of) == (gr.skip(),) * 6
    assert forward_animation.movie_still_shown(same, None) == (gr.skip(),) * 6  # no movie yet
    for changed in (_state("swiss_roll"), _state("moons", schedule="cosine"), _state("moons", T=500),
                    forward_tab.prepare(state, "moons", None, None, "linear", 1000, 7, *controls.default_param_values())):
        movie, made, button, gif, mp4, now_of = forward_animation.movie_still_shown(changed, movie_of)
        assert forward_animation.STALE_MOVIE.replace("'", "&#x27;") in movie and now_of is None and made is None
        assert button.visible is False and gif.visible is False and mp4.visible is False and gif.value is None
    with gr.Blocks() as demo:
        forward_animation.build(forward_tab.build(gr.State(None), demo))
    checks = [d for d in demo.fns.values() if getattr(d.fn, "__name__", "") == "movie_still_shown"]
    assert len(checks) == 4 and all(d.trigger_only_on_success for d in checks)  # after each kind of rebuild


def test_a_movie_written_while_another_of_its_view_is_written_keeps_its_files():
    """Two jobs of one page writing one view at once (a Generate and a noise loop, with DDPM_HEAVY_CONCURRENCY above
    1): the second's new folder had deleted the first's while it wrote, and the first to end deleted the other's. Now
    older folders go once a movie is done."""
    writing = player.export_folder("carol", "reverse")  # the first job, still writing
    (writing / "reverse.gif").write_bytes(b"GIF89a")
    done = player.export_folder("carol", "reverse")  # the second job gets its own folder, and the first's stays
    assert (writing / "reverse.gif").exists() and writing != done
    player.keep_only(writing)  # the first ends first: the second's folder, still being written, stays
    assert (writing / "reverse.gif").exists() and done.exists()
    player.keep_only(done)  # the second is on view now: the first's files go
    assert not writing.exists() and done.exists()


def test_the_exports_of_sessions_long_gone_are_deleted(tmp_path, monkeypatch):
    """Each session that exported had left its last folder for good (1.1 GB in 388 folders on a shared machine)."""
    monkeypatch.setattr(player, "exports_root", lambda: tmp_path / "exports")
    monkeypatch.setattr(player.EXPORTS_SWEEP, "seconds", 0.0)  # each export sweeps (at most once a minute)
    gone, here = player.export_folder("gone", "reverse"), player.export_folder("here", "reverse")
    (gone / "reverse.gif").write_bytes(b"GIF89a")
    hours_ago = time.time() - player.EXPORTS_KEPT_SECONDS - 60
    os.utime(gone, (hours_ago, hours_ago))
    assert player.sweep_old_exports() == [tmp_path / "exports" / key_folder("gone")]
    assert not (tmp_path / "exports" / key_folder("gone")).exists() and here.exists()
    os.utime(here, (hours_ago, hours_ago))
    player.export_folder("new", "forward")  # a new export sweeps the folders too
    assert [p.name for p in (tmp_path / "exports").iterdir()] == [key_folder("new")]


def test_exports_are_served_where_they_are_written_not_copied_into_gradios_cache(tmp_path, monkeypatch):
    """Gradio copied each file returned to a component into its cache, kept an hour: every Generate wrote its GIF,
    MP4 and sprite sheet twice (4.3–4.6 MB more). The app makes the exports' folder, and only it, a static path
    (`player.serve_exports`, once however many apps are built): an export is sent as it is, and a file elsewhere in
    the temporary folder, or in a folder whose name merely begins like the exports', is still copied and is not
    served from where it lies. The session key is not in the exports' paths, which reach the page."""
    import app

    monkeypatch.setattr(_StaticFiles, "all_paths", [])  # the process's static paths, as Gradio keeps them
    monkeypatch.setattr(player, "exports_root", lambda: tmp_path / "exports")
    app.build_app()
    assert player.serve_exports() and _StaticFiles.all_paths == [tmp_path / "exports"]
    _, movie, sprite = forward_animation.animate(REQ, _state("moons"), 3, "uniform")
    exports = [sprite, *map(str, movie_files.write_movie_files(movie))]
    box = gr.File()
    box.GRADIO_CACHE = str(tmp_path / "cache")
    for path in exports:
        sent = processing_utils.move_files_to_cache(box.postprocess(path), box, postprocess=True)
        assert sent["path"] == path and sent["url"].endswith(path) and REQ.session_hash not in path
    assert not (tmp_path / "cache").exists()
    beside = tmp_path / "exports-beside"
    beside.mkdir()
    for outside in (tmp_path / "outside.gif", beside / "a.gif"):
        outside.write_bytes(b"GIF89a")
        assert not gradio_utils.is_static_file(str(outside))
        sent = processing_utils.move_files_to_cache(box.postprocess(str(outside)), box, postprocess=True)
        assert Path(sent["path"]).parent.parent == tmp_path / "cache"


def test_an_exports_folder_that_is_a_link_is_not_served(tmp_path, monkeypatch):
    """In a shared /tmp another user could make the exports' folder first, as a link to a folder of their choice
    (here: one holding a secret), which would then be served whole."""
    monkeypatch.setattr(_StaticFiles, "all_paths", [])
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "secret.txt").write_text("not for the web")
    (tmp_path / "exports").symlink_to(tmp_path / "home", target_is_directory=True)
    monkeypatch.setattr(player, "exports_root", lambda: tmp_path / "exports")
    assert not player.serve_exports()
    assert not gradio_utils.is_static_file(tmp_path / "home" / "secret.txt") and _StaticFiles.all_paths == []
