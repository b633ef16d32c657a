"""Point clouds drawn as one picture over the axes (`point_pictures.points_alpha`,
`point_pictures.points_picture_figure`): each dot where its point is, as wide and as opaque as `points_figure`'s markers,
overlapping dots composited as SVG does."""

from __future__ import annotations

import math
import warnings

import numpy as np
import plotly.colors
import pytest

from app import figures, panel_grid, plot_page, point_pictures
from tests.conftest import picture_rgba

SIZE = point_pictures.POINTS_PICTURE_PX
OPACITY = figures.POINT_OPACITY


def centroid(alpha: np.ndarray) -> tuple[float, float]:
    """(row, column) of the alpha's centre of mass, in pixel units (pixel i spans [i, i + 1))."""
    rows, cols = np.indices(alpha.shape) + 0.5
    weights = alpha.astype(np.float64)
    return float((rows * weights).sum() / weights.sum()), float((cols * weights).sum() / weights.sum())


@pytest.mark.parametrize("point", [(0.0, 0.0), (2.0, 3.0), (-3.5, -1.25)])
def test_a_dot_is_drawn_where_its_point_is_with_x2_up(point) -> None:
    alpha = point_pictures.points_alpha(np.array([point]))
    low, high = figures.POINT_RANGE
    row, col = centroid(alpha)
    assert abs(col - (point[0] - low) / (high - low) * SIZE) <= 0.5  # on the nearest whole pixel
    assert abs(row - (high - point[1]) / (high - low) * SIZE) <= 0.5  # row 0 is the top, x₂ = 4


def test_a_dot_has_the_markers_width_and_opacity() -> None:
    alpha = point_pictures.points_alpha(np.array([[0.0, 0.0]]))
    assert alpha.max() == round(OPACITY * 255)  # a fully covered pixel: the marker's opacity
    # ink = opacity × the disc's area, π(d/2)² pixels; its width d across the middle row
    area = math.pi * (point_pictures.POINT_DOT_PX / 2) ** 2
    assert alpha.sum() / 255 == pytest.approx(OPACITY * area, rel=0.03)
    row = alpha[SIZE // 2]
    assert row.sum() / (OPACITY * 255) == pytest.approx(point_pictures.POINT_DOT_PX, abs=0.5)
    # 2 picture pixels a CSS pixel at the x_t plot's usual square (460 px high, less the margins): 3-px markers
    square = 460 - figures.MARGIN["t"] - figures.MARGIN["b"]
    assert point_pictures.POINT_DOT_PX * square / SIZE == pytest.approx(figures.POINT_SIZE, abs=0.1)


def test_overlapping_dots_compose_as_one_over_another_in_any_order() -> None:
    one = point_pictures.points_alpha(np.array([[1.0, 1.0]]))
    peak = np.unravel_index(one.argmax(), one.shape)
    for n in (2, 3):
        stacked = point_pictures.points_alpha(np.array([[1.0, 1.0]] * n))
        assert stacked[peak] == round((1 - (1 - OPACITY) ** n) * 255)  # 1 − (1 − o)ⁿ, not n·o
    rng = np.random.default_rng(0)
    points = rng.normal(size=(500, 2))
    np.testing.assert_array_equal(point_pictures.points_alpha(points),
                                  point_pictures.points_alpha(points[rng.permutation(500)]))


def test_points_off_the_axes_are_left_out() -> None:
    low, high = figures.POINT_RANGE
    far = [[high + 1, 0.0], [0.0, low - 0.5], [-40.0, 90.0], [1e30, -1e30], [np.nan, 0.0], [np.inf, 1.0]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and quietly
        alpha = point_pictures.points_alpha(np.array(far))
    assert not alpha.any()
    edge = point_pictures.points_alpha(np.array([[high, 0.0]]))  # half a dot inside
    assert 0 < edge.sum() < point_pictures.points_alpha(np.array([[0.0, 0.0]])).sum()


def test_the_figure_shows_the_dots_in_the_point_colour_over_fixed_axes() -> None:
    points = np.random.default_rng(1).normal(size=(2000, 2))
    figure = figures.as_figure(point_pictures.points_picture_figure(points))
    assert not figure.data and tuple(figure.layout.xaxis.range) == figures.POINT_RANGE
    assert figure.layout.yaxis.scaleanchor == "x"  # square, as `points_figure`
    image = figure.layout.images[0]
    low, high = figures.POINT_RANGE
    assert (image.x, image.y, image.sizex, image.sizey) == (low, high, high - low, high - low)
    assert image.layer == "above" and image.sizing == "stretch" and image.xref == "x" and image.yref == "y"
    rgba = picture_rgba(figure)
    np.testing.assert_array_equal(rgba[..., 3], point_pictures.points_alpha(points))
    inked = rgba[..., 3] > 0
    assert (rgba[inked][:, :3] == plotly.colors.hex_to_rgb(figures.POINT_COLOR)).all()
    # the app's CSS keeps pictures of pixels (below the axes) sharp and lets the dots (above them) scale smoothly
    assert ".layer-above .imagelayer image {image-rendering: auto}" in plot_page.PICTURE_CSS


def test_a_grid_draws_each_panels_points_as_a_picture_on_its_own_axes() -> None:
    rng = np.random.default_rng(2)
    cells = [[rng.normal(size=(300, 2)) for _ in range(3)] for _ in range(2)]
    plain = figures.as_figure(panel_grid.noised_grid_figure(cells, ["a", "b"], ["1", "2", "3"], kind="points"))
    drawn = figures.as_figure(panel_grid.noised_grid_figure(cells, ["a", "b"], ["1", "2", "3"], kind="points",
                                                            cell_px=100, points_as_pictures=True))
    assert not drawn.data and len(plain.data) == len(drawn.layout.images) == 6
    for trace, image in zip(plain.data, drawn.layout.images):  # the same axes, panel by panel
        assert (image.xref, image.yref) == (trace.xaxis, trace.yaxis) and image.layer == "above"
    last = picture_rgba(figures.as_figure(panel_grid.noised_grid_figure(
        [[cells[1][2]]], [""], [""], kind="points", cell_px=100, points_as_pictures=True)))
    assert last.shape[:2] == (200, 200)  # 2 pixels a CSS pixel of the panel
    np.testing.assert_array_equal(last[..., 3], point_pictures.points_alpha(cells[1][2], size=200, dot=5.0, opacity=0.5))
    with pytest.raises(ValueError, match="no arrows"):
        panel_grid.noised_grid_figure(cells, ["a", "b"], ["1", "2", "3"], kind="points",
                                      arrows=[[np.zeros((1, 2))] * 3] * 2, arrow_origins=np.zeros((1, 2)),
                                      points_as_pictures=True)


def test_coloured_dots_over_the_training_data_keep_their_colours_and_compose_over_it() -> None:
    size, dot = 200, 5.0
    red, blue, grey = np.array([255.0, 0, 0]), np.array([0, 0, 255.0]), np.array([128.0, 128, 128])
    # two dots of different colours on one spot: alpha as for one colour, colour the mean of the two
    alpha, colour = point_pictures.dot_layer(np.array([[0.0, 0.0]] * 2), size=size, dot=dot, opacity=0.8,
                                             colors=np.stack([red, blue]))
    centre = (size // 2, size // 2)
    assert alpha[centre] == pytest.approx(1 - 0.2**2) and np.allclose(colour[centre], (red + blue) / 2)
    # a red dot over a grey one: α = a + b(1 − a), colour = (red·a + grey·b(1 − a)) / α
    top = point_pictures.dot_layer(np.array([[0.0, 0.0]]), size=size, dot=dot, opacity=0.8, colors=red[None])
    bottom = point_pictures.dot_layer(np.array([[0.0, 0.0], [2.0, 2.0]]), size=size, dot=dot, opacity=0.6,
                                      colors=np.stack([grey, grey]))
    rgba = point_pictures.over(top, bottom)
    a, b = 0.8, 0.6
    assert rgba[centre][3] == round((a + b * (1 - a)) * 255)
    np.testing.assert_allclose(rgba[centre][:3], (red * a + grey * b * (1 - a)) / (a + b * (1 - a)), atol=0.5)
    away = (round((4 - 2) / 8 * size), round((2 + 4) / 8 * size))  # the grey dot alone, at (2, 2)
    assert tuple(rgba[away]) == (128, 128, 128, round(0.6 * 255))
    # in a grid: one picture a panel, hues and training data drawn into it
    hues = figures.angle_hues(np.array([[1.0, 0.0], [-1.0, 0.0]]))
    figure = figures.as_figure(panel_grid.noised_grid_figure(
        [[np.array([[1.0, 0.0], [-1.0, 0.0]])]], [""], [""], kind="points", cell_px=100, point_hues=hues,
        reference=np.array([[0.0, 2.0]]), points_as_pictures=True))
    picture = picture_rgba(figure)
    assert not figure.data and picture.shape == (200, 200, 4)
    right, left, up = picture[100, 125], picture[100, 75], picture[50, 100]
    assert right[3] > 0 and left[3] > 0 and not np.array_equal(right[:3], left[:3])  # hues apart by half a turn
    assert tuple(up[:3]) == tuple(plotly.colors.hex_to_rgb(figures.REFERENCE_COLOR))  # the training data, in grey
