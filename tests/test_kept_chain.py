"""app.kept_chain: a chain's last frame and stats, kept under the player while later chains replace its movie."""

from __future__ import annotations

import gradio as gr
import numpy as np
import PIL.Image
import pytest

from app import kept_chain, movie_files, player


@pytest.fixture(autouse=True)
def exports_here(monkeypatch, tmp_path):
    monkeypatch.setattr(player.tempfile, "gettempdir", lambda: str(tmp_path))


def _publish(seed: int):
    rng = np.random.default_rng(seed)
    frames = [PIL.Image.fromarray(rng.integers(0, 256, (30, 62), dtype=np.uint8)) for _ in range(4)]
    labels = [[f"x_t (t = {t})", "predicted x̂₀"] for t in (3, 2, 1, 0)]
    return movie_files.publish(frames, [3, 2, 1, 0], key="k", view="reverse", stem="s", captions=["x"],
                               export_labels=labels, notes=[f"step {t}" for t in (3, 2, 1, 0)])[1]


def test_the_kept_frame_is_the_movies_last_as_its_gif_shows_it():
    movie = _publish(0)
    stats = ("**moons** · DDIM, 50 steps · SW ratio 1.04\n\n"
             "<details><summary>t of each frame</summary>3, 2, 1, 0</details>")
    kept, words, frame, *others, box = kept_chain.keep(movie, stats)
    expected = movie_files.export_frames(movie)[-1].convert("RGB")  # labels above, its formula beneath
    assert frame["value"].size == expected.size and np.array_equal(np.asarray(frame["value"]), np.asarray(expected))
    assert words["value"] == "**Kept for comparison:** **moons** · DDIM, 50 steps · SW ratio 1.04"
    assert box["visible"] is True and len(kept) == 1
    assert all(place["visible"] is False for place in others)  # the other places stay hidden


def test_up_to_three_chains_are_kept_in_order_the_oldest_leaving_and_none_twice(monkeypatch):
    said = []
    monkeypatch.setattr(gr, "Info", said.append)
    kept: list = []
    for seed in range(4):
        movie = _publish(seed)
        kept, *places, box = kept_chain.keep(movie, f"**moons** · seed {seed}", kept)
        if seed == 1:
            again, *unsent = kept_chain.keep(movie, f"**moons** · seed {seed}", kept)  # Keep pressed twice
            assert again == kept and said == [kept_chain.ALREADY_KEPT]
            assert unsent[1] == unsent[3] == gr.skip()  # the frames on view are not sent again
            assert places[1] == gr.skip() and places[3]["value"] is kept[1].frame  # only the new one was sent
    assert len(kept) == kept_chain.MAX_KEPT == 3
    words = [places[2 * i]["value"] for i in range(3)]
    assert words == [f"**Kept {i} of 3:** **moons** · seed {i}" for i in (1, 2, 3)]  # seed 0 made way
    frames = [places[2 * i + 1]["value"] for i in range(3)]
    assert all(np.array_equal(np.asarray(f), np.asarray(k.frame)) for f, k in zip(frames, kept))
    assert not np.array_equal(np.asarray(frames[0]), np.asarray(frames[1]))
    cleared = kept_chain.shown([])
    assert cleared[-1]["visible"] is False and all(place["visible"] is False for place in cleared[:-1])


def test_keeping_without_a_chain_or_its_frames_says_why():
    with pytest.raises(gr.Error, match="press Generate first"):
        kept_chain.keep(None, "", [])
    movie = _publish(0)
    player.delete_folder(movie.folder)  # left for hours, and swept
    with pytest.raises(gr.Error) as gone:
        kept_chain.keep(movie, "")
    assert gone.value.message == movie_files.GONE
    on_view = _publish(1)
    _publish(2)  # a newer chain came as Keep was pressed, and its sheet replaced the one on view
    with pytest.raises(gr.Error) as replaced:
        kept_chain.keep(on_view, "")
    assert replaced.value.message == f"{movie_files.REPLACED} Press Keep again to keep it."


def test_a_kept_2d_frame_turns_dark_with_the_theme_as_the_player_does():
    """A drawn plot (2D: white paper) is marked so that the dark theme inverts it, as the player inverts its frames;
    a picture of images is not (its white paper had glared under the dark player)."""
    pictures = _publish(0)
    kept, *_ = kept_chain.keep(pictures, "images")
    frames = [PIL.Image.new("RGB", (40, 30), "white")] * 2  # the next chain's movie replaces the first's
    drawn = movie_files.publish(frames, [1, 0], key="k", view="reverse", stem="d", pixelated=False)[1]
    assert drawn.drawn and not pictures.drawn
    kept, _, first, _, second, *_ = kept_chain.keep(drawn, "points", kept)
    assert first == gr.skip() and second["elem_classes"] == [kept_chain.DRAWN_CLASS]
    assert kept_chain.shown(kept)[1]["elem_classes"] == []  # the pictures' frame, sent afresh, unmarked
    from app import CSS

    assert f".dark #reverse-kept .{kept_chain.DRAWN_CLASS} img {{filter: invert(1)" in CSS
