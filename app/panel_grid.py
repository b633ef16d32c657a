"""A grid of small panels (`noised_grid_figure`): pictures or 2D point clouds, one row per schedule, model or view,
one column per step or stage, with a title over each column and a label above each row; the points optionally coloured
by hue, over the training data, with arrows, or drawn as pictures (`app.point_pictures`). Laid out in pixels, and laid
out again in the browser for a narrower window (`app.plot_page.FIT_GRIDS_JS`, from ``layout.meta.grid``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from gradio.components.plot import PlotData

from app.figures import HOUSE_STYLE, HUE_SCALE, POINT_COLOR, POINT_RANGE, REFERENCE_COLOR, fast_figure
from app.images import png_data_uri
from app.point_pictures import beneath_layer, panel_picture

POINT_TICKS = dict(showticklabels=True, tickvals=[-2, 0, 2], ticks="outside",
                   ticklen=3, tickfont=dict(size=10))  # the coordinates, on the outer edges of a grid of point panels
GRID_AXIS_TITLE = dict(font=dict(size=11), standoff=2)  # x₁ under the bottom row, x₂ left of the first column
GRID_REFERENCE_MARKER = dict(size=2, color=REFERENCE_COLOR, opacity=0.6)  # the training data in each panel
GRID_TITLE_SIZE = 16  # px: a grid's column titles ("t = 250"), read from the back of a lecture room
GRID_TITLE_DROP = 24  # px: the column titles of a grid sit below plotly's toolbar, which covered the right one's end
ROW_LABEL_BAND = 20  # px: the band above a row of a grid that holds its label
ROW_LABEL_SIZE = 13  # px: a row's label, drawn smaller where the grid is narrower than it (`FIT_GRIDS_JS`)
GRID_ROW_GAP = 6  # px between the rows of a grid
PANEL_GAP = 0.01  # between the panels of a row, as a fraction of the plotting area's width
SHORTEST_CELL = 64  # px: a grid fitted to the window's height (``window_less_px``) has panels no smaller than this
_ON_PAPER = dict(xref="paper", yref="paper", showarrow=False)  # a title placed in fractions of the plotting area


def noised_grid_figure(
    cells: Sequence[Sequence[np.ndarray]],
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    *,
    kind: str,
    cell_px: int = 150,
    point_hues: np.ndarray | None = None,
    reference: np.ndarray | None = None,
    arrows: Sequence[Sequence[np.ndarray]] | None = None,
    arrow_origins: np.ndarray | None = None,
    arrow_cap: float = 0.45,
    points_as_pictures: bool = False,
    row_colors: Sequence[str] | None = None,
    short_titles: Sequence[str] | None = None,
    window_less_px: int = 0,
) -> PlotData:
    """A rows × columns grid of small panels: uint8 pictures (kind "images") or (N, 2) points (kind "points");
    ``point_hues``: one number in [0, 1] per point, the same in every panel, drawn on a cyclic colour scale (so that
    a point can be followed from panel to panel), instead of one colour for all; ``reference``: the training data
    (M, 2), drawn in grey beneath the points of every panel; ``arrows``: per panel a vector (G, 2) at each of
    ``arrow_origins`` (G, 2), drawn as arrows on one scale for all panels (`arrow_scale`), none longer than
    ``arrow_cap`` (in the panels' units: less than the origins' spacing, so that arrows do not overlap);
    ``points_as_pictures``: each panel's points (and the training data beneath them) drawn as one picture
    (`panel_picture`) rather than scatter traces, for a grid redrawn at every change of a control (the Schedules
    tab: 24 panels of 1,000 points, 24,000 SVG markers, kept the browser busy for seconds); not with ``arrows``;
    ``row_colors``: a colour for each row, drawn as a short line before its label, as in a legend (e.g. its schedule's
    colour in the curves above the grid); ``short_titles``: a shorter title for each column ("x̂₀" for "x̂₀
    predicted"), shown where the titles would be smaller than `app.plot_page.GRID_TITLE_ONE_LINE_SMALLEST` px even
    on two lines (`app.plot_page.FIT_GRIDS_JS`: seven columns on a phone); ``window_less_px``: where not 0, the
    browser lays the grid out no taller than its window less this many pixels (what must be on view with it, such as
    the slider that redraws it), with smaller panels, down to `SHORTEST_CELL` px (the step anatomy's four rows with
    its slider on a 1280 × 720 projector).

    The panels' axes are laid out here rather than by ``make_subplots``: built and validated cell by cell,
    the grid took 0.2–0.5 s on every redraw of the Schedules tab.
    """
    if kind not in ("images", "points"):
        raise ValueError(f"kind must be 'images' or 'points', got {kind!r}")
    if points_as_pictures and arrows is not None:
        raise ValueError("points drawn as pictures have no arrows")
    points = kind == "points"
    geometry = grid_geometry(len(cells), len(col_labels), cell_px, labelled=any(row_labels))
    marker = _points_marker(point_hues)
    scale = None if arrows is None else arrow_scale([v for row in arrows for v in row], arrow_cap)
    # the training data's dots, the same in every panel: drawn once
    beneath = (beneath_layer(reference, GRID_REFERENCE_MARKER, 2 * cell_px)
               if points_as_pictures and reference is not None else None)
    traces, axes, pictures = [], {}, []
    for r, row in enumerate(cells):
        if len(row) != geometry.cols:
            raise ValueError(f"row {r + 1} has {len(row)} cells, expected {geometry.cols}")
        for c, cell in enumerate(row):
            axes |= _panel_axes(geometry, r, c, points)
            where = _panel_where(geometry, r, c)
            if kind == "images":
                traces.append(dict(type="image", source=png_data_uri(cell), hoverinfo="skip", **where))
            elif points_as_pictures:
                pictures.append(panel_picture(cell, marker, point_hues, beneath, 2 * cell_px, where))
            else:
                traces += _points_traces(cell, marker, reference, where)
                if arrows is not None and arrow_origins is not None:
                    traces.append(_arrow_trace(arrow_origins, arrows[r][c] * scale, arrow_cap, where))
    margin = _grid_margin(points)
    return fast_figure(traces, dict(
        **axes,
        annotations=_column_titles(geometry, col_labels) + _row_labels(geometry, row_labels, row_colors, margin),
        images=pictures,
        height=geometry.area_height + margin["t"] + margin["b"],  # a row of panels is cell_px high
        margin=margin,
        modebar=dict(remove=["select2d", "lasso2d"]),  # nothing here to select: the camera (a PNG) is what is left
        **HOUSE_STYLE,
        showlegend=False,
        meta=dict(grid=_fit_meta(geometry, col_labels, short_titles, row_labels, window_less_px)),
    ))


@dataclass(frozen=True)
class GridGeometry:
    """Where a grid's panels sit. Each row's label sits above it, at its left, rather than in a margin beside the grid:
    a 230-px margin left the panels of the Schedules tab 64 px wide in a 1,024-px window (a projector's). Vertically,
    in pixels, a row is its label's band, then its panels, then a gap; the edges below are fractions of the plotting
    area. A narrower window lays it out again for narrower panels (`app.plot_page.FIT_GRIDS_JS`, from `_fit_meta`)."""

    rows: int
    cols: int
    cell: int  # px: a panel's height (and width, at full size)
    band: int  # px: a row's label's band (0 where no row has a label)
    gap: int  # px between rows
    area_height: int  # px: the plotting area's
    panel: float  # a panel's width
    lefts: list[float]  # each column's left edge
    tops: list[float]  # each row's top edge, below its label's band


def grid_geometry(rows: int, cols: int, cell_px: int, *, labelled: bool) -> GridGeometry:
    """`GridGeometry` of ``rows`` × ``cols`` panels ``cell_px`` high, with a band for a label above each row if
    ``labelled``."""
    band, gap = (ROW_LABEL_BAND if labelled else 0), GRID_ROW_GAP
    area_height = max(rows, 1) * (band + cell_px) + max(rows - 1, 0) * gap
    panel = (1 - PANEL_GAP * (cols - 1)) / cols
    return GridGeometry(rows=rows, cols=cols, cell=cell_px, band=band, gap=gap, area_height=area_height, panel=panel,
                        lefts=[c * (panel + PANEL_GAP) for c in range(cols)],
                        tops=[1 - (r * (band + cell_px + gap) + band) / area_height for r in range(rows)])


def _panel_suffix(geometry: GridGeometry, r: int, c: int) -> str:
    """The suffix of the axes of the panel in row r, column c: plotly numbers them row by row from 1, the first
    unnumbered ("x", "x2", …)."""
    i = r * geometry.cols + c + 1
    return "" if i == 1 else str(i)


def _panel_where(geometry: GridGeometry, r: int, c: int) -> dict:
    """The axes a trace or picture of the panel in row r, column c is drawn on."""
    suffix = _panel_suffix(geometry, r, c)
    return dict(xaxis=f"x{suffix}", yaxis=f"y{suffix}")


def _panel_axes(geometry: GridGeometry, r: int, c: int, points: bool) -> dict:
    """The x and y axes of the panel in row r, column c, square and fixed: bare around a picture; for ``points``,
    [−4, 4]² in a light frame, with the coordinates and their titles (x₁, x₂) on the grid's outer edges only (the
    bottom row's x axes, the first column's y axes)."""
    axis = dict(showticklabels=False, ticks="", showgrid=False, zeroline=False, fixedrange=True)
    if points:
        axis.update(range=list(POINT_RANGE), showline=True, linecolor="#ccc", mirror=True, constrain="domain")
    suffix = _panel_suffix(geometry, r, c)
    bottom, left = points and r == geometry.rows - 1, points and c == 0
    height = geometry.cell / geometry.area_height
    x_left, y_top = geometry.lefts[c], geometry.tops[r]
    return {
        f"xaxis{suffix}": dict(axis, domain=[max(x_left, 0), min(x_left + geometry.panel, 1)], anchor=f"y{suffix}",
                               **(POINT_TICKS | dict(title=dict(GRID_AXIS_TITLE, text="x₁")) if bottom else {})),
        f"yaxis{suffix}": dict(axis, domain=[max(y_top - height, 0), min(y_top, 1)], anchor=f"x{suffix}",
                               scaleanchor=f"x{suffix}",
                               **(POINT_TICKS | dict(title=dict(GRID_AXIS_TITLE, text="x₂")) if left else {})),
    }


def _points_marker(point_hues: np.ndarray | None) -> dict:
    """The marker of a panel's points: small and in one colour, or larger and coloured by ``point_hues`` on
    `HUE_SCALE`."""
    if point_hues is None:
        return dict(size=2, color=POINT_COLOR, opacity=0.5)
    return dict(size=3, color=point_hues, colorscale=HUE_SCALE, cmin=0, cmax=1, opacity=0.8)


def _points_traces(points: np.ndarray, marker: dict, reference: np.ndarray | None, where: dict) -> list[dict]:
    """A panel's points (N, 2) as a scatter trace, over the training data ``reference`` (M, 2) in grey if given."""
    traces = []
    if reference is not None:
        traces.append(dict(type="scatter", x=reference[:, 0], y=reference[:, 1], mode="markers",
                           hoverinfo="skip", showlegend=False,
                           marker=GRID_REFERENCE_MARKER, **where))
    traces.append(dict(
        type="scatter", x=points[:, 0], y=points[:, 1], mode="markers", hoverinfo="skip", showlegend=False,
        marker=marker, **where,
    ))
    return traces


def _grid_margin(points: bool) -> dict:
    """Room for the column titles (below plotly's toolbar) and, for points, the coordinates with their titles."""
    return dict(l=48 if points else 10, r=10, t=30 + GRID_TITLE_DROP, b=44 if points else 10)


def _column_titles(geometry: GridGeometry, col_labels: Sequence[str]) -> list[dict]:
    """A title centred over each column ("t = 250"), at `GRID_TITLE_SIZE`."""
    return [
        dict(_ON_PAPER, text=text, x=left + geometry.panel / 2, y=1, xanchor="center", yanchor="bottom",
             font=dict(size=GRID_TITLE_SIZE))
        for left, text in zip(geometry.lefts, col_labels)
    ]


def _row_labels(geometry: GridGeometry, row_labels: Sequence[str], row_colors: Sequence[str] | None,
                margin: dict) -> list[dict]:
    """Each row's label above it, horizontal: easier to read than plotly's rotated ones; from the figure's left edge,
    over the margin too (beside the panels only, they ran past a phone's right edge); after a short line in the row's
    colour where ``row_colors`` gives one. Rows without a label have none."""
    return [
        dict(_ON_PAPER, text=text if color is None else f'<span style="color:{color}">━━</span> {text}', x=0, y=top,
             xanchor="left", yanchor="bottom", xshift=4 - margin["l"], font=dict(size=ROW_LABEL_SIZE, color="#444"))
        for top, text, color in zip(geometry.tops, row_labels, row_colors or [None] * geometry.rows) if text
    ]


def _fit_meta(geometry: GridGeometry, col_labels: Sequence[str], short_titles: Sequence[str] | None,
              row_labels: Sequence[str], window_less_px: int = 0) -> dict:
    """What `app.plot_page.FIT_GRIDS_JS` lays the grid out again from, for the width its panels get (and the height
    of the window, with ``window_less_px``)."""
    return dict(rows=geometry.rows, cols=geometry.cols, band=geometry.band, gap=geometry.gap, cell=geometry.cell,
                window_less=window_less_px, shortest_cell=min(SHORTEST_CELL, geometry.cell),
                panel=geometry.panel, lefts=geometry.lefts, titles=list(col_labels),
                short_titles=list(short_titles or col_labels),
                label_rows=[r for r, text in enumerate(row_labels) if text],
                labels=[text for text in row_labels if text], label_size=ROW_LABEL_SIZE)


ARROW_COLOR = "#c66f0a"  # the player's FIELD_COLOR: 3.7:1 on white (#e08214 was 2.9:1)


def arrow_scale(fields: Sequence[np.ndarray], cap: float) -> float:
    """One factor for the vectors (G, 2) of several panels: the 90th percentile of their lengths is drawn ``cap``
    long (longer ones are capped), so that panels compare and a few huge vectors do not shrink all the others."""
    norms = np.concatenate([np.linalg.norm(np.nan_to_num(f), axis=1) for f in fields]) if fields else np.zeros(0)
    top = float(np.quantile(norms, 0.9)) if len(norms) else 0.0
    return cap / top if top > 0 else 0.0


def _arrow_trace(origins: np.ndarray, vectors: np.ndarray, cap: float, where: dict) -> dict:
    """Arrows from ``origins`` (G, 2) along ``vectors`` (G, 2), each no longer than ``cap``: a line per arrow
    (separated by gaps) with an arrowhead at its tip."""
    vectors = np.nan_to_num(vectors)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    tips = origins + vectors * np.minimum(1.0, cap / np.maximum(norms, 1e-12))
    xs = np.stack([origins[:, 0], tips[:, 0], np.full(len(tips), np.nan)], axis=1).ravel()
    ys = np.stack([origins[:, 1], tips[:, 1], np.full(len(tips), np.nan)], axis=1).ravel()
    sizes = np.tile([0, 9, 0], len(tips))  # an arrowhead at each tip only
    xs, ys = [None if np.isnan(v) else float(v) for v in xs], [None if np.isnan(v) else float(v) for v in ys]
    return dict(type="scatter", x=xs, y=ys, mode="lines+markers", hoverinfo="skip", showlegend=False,
                line=dict(color=ARROW_COLOR, width=1.5),
                marker=dict(symbol="arrow", angleref="previous", size=sizes.tolist(), color=ARROW_COLOR), **where)
