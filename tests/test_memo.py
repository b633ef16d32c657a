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


def test_a_value_is_made_once_and_the_least_recently_used_goes_first(monkeypatch) -> None:
    monkeypatch.setattr(memo, "_values", type(memo._values)())
    monkeypatch.setattr(memo, "MAX_VALUES", 2)
    made = []

    def make(name):
        return lambda: made.append(name) or name

    assert memo.remembered(b"a", make("a")) == "a" and memo.remembered(b"a", make("again")) == "a"
    memo.remembered(b"b", make("b"))
    memo.remembered(b"a", make("a2"))  # a is now the most recently used
    memo.remembered(b"c", make("c"))  # b goes
    assert memo.remembered(b"a", make("a3")) == "a" and memo.remembered(b"b", make("b2")) == "b2"
    assert made == ["a", "b", "c", "b2"]


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

    monkeypatch.setattr(memo, "_values", type(memo._values)())
    first = sources([x0, xt])
    assert len(memo._values) == 3  # the training data's layer and the two panels
    second = sources([x0, xt])
    monkeypatch.setattr(memo, "_values", type(memo._values)())
    assert first == second == sources([x0, xt])
    moved = xt.copy()
    moved[0] += 1
    again = sources([x0, moved])
    assert again[0] == first[0] and again[1] != first[1]
