"""app.memo: values remembered by what they were made from, and the grid pictures drawn through it."""

from __future__ import annotations

import numpy as np

from app import figures, memo, panel_grid


def test_the_key_tells_apart_arrays_of_other_bytes_dtype_or_shape_and_other_parts() -> None:
    a = np.arange(6, dtype=np.float32)
    keys = {memo.digest(a), memo.digest(a.reshape(2, 3)), memo.digest(a.astype(np.float64)), memo.digest(a + 1),
            memo.digest(a, 1), memo.digest(a, "1"), memo.digest(a, None)}
    assert len(keys) == 7
    assert memo.digest(a) == memo.digest(np.arange(6, dtype=np.float32)) == memo.digest(a[::-1][::-1].copy())
    assert memo.digest(np.asfortranarray(a.reshape(2, 3))) == memo.digest(a.reshape(2, 3))  # the values, in C order


def test_a_value_is_made_once_and_the_least_recently_used_goes_first() -> None:
    kept = memo.Memo(2)
    made = []

    def make(name):
        return lambda: made.append(name) or name

    assert kept.remembered(b"a", make("a")) == "a" and kept.remembered(b"a", make("again")) == "a"
    kept.remembered(b"b", make("b"))
    kept.remembered(b"a", make("a2"))  # a is now the most recently used
    kept.remembered(b"c", make("c"))  # b goes
    assert kept.remembered(b"a", make("a3")) == "a" and kept.remembered(b"b", make("b2")) == "b2"
    assert made == ["a", "b", "c", "b2"] and len(kept) == 2


def test_a_scrubs_pictures_leave_a_models_samples_kept(monkeypatch) -> None:
    """A model's samples (seconds to make) and a slider's pictures (one new panel at every step) are kept apart: in
    one memo of 16, any user's scrub of 16 steps had dropped every kept sample."""
    monkeypatch.setattr(memo, "PICTURES", memo.Memo(16))
    monkeypatch.setattr(memo, "SAMPLES", memo.Memo(16))
    samples = memo.SAMPLES.remembered(b"unguided samples", lambda: np.zeros(3))
    rng = np.random.default_rng(0)
    for step in range(40):  # a Forward scrub's x_t panels, each at another t
        panel_grid.noised_grid_figure([[rng.normal(size=(50, 2))]], [""], ["x_t"], kind="points", cell_px=40,
                                      point_hues=np.linspace(0, 1, 50), points_as_pictures=True)
    assert len(memo.PICTURES) == 16
    assert memo.SAMPLES.remembered(b"unguided samples", lambda: np.ones(3)) is samples


def test_a_remembered_grid_is_the_grid_drawn_anew(monkeypatch) -> None:
    """Panels over training data, drawn twice (the second time from memory) and once more with nothing remembered:
    the same pictures; a moved point gives another picture for its panel only."""
    rng = np.random.default_rng(0)
    x0, xt, reference = rng.normal(size=(300, 2)), rng.normal(size=(300, 2)), rng.normal(size=(500, 2))

    def sources(cells):
        fig = panel_grid.noised_grid_figure([cells], [""], ["x₀", "x_t"], kind="points", cell_px=60,
                                            point_hues=figures.angle_hues(x0), reference=reference,
                                            points_as_pictures=True)
        return [image.source for image in figures.as_figure(fig).layout.images]

    monkeypatch.setattr(memo, "PICTURES", memo.Memo(16))
    first = sources([x0, xt])
    assert len(memo.PICTURES) == 3  # the training data's layer and the two panels
    second = sources([x0, xt])
    monkeypatch.setattr(memo, "PICTURES", memo.Memo(16))
    assert first == second == sources([x0, xt])
    moved = xt.copy()
    moved[0] += 1
    again = sources([x0, moved])
    assert again[0] == first[0] and again[1] != first[1]
