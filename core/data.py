"""2D toy distributions (point clouds) and user-given point sets (a CSV file of x,y rows, a drawing).

Every toy is generated in code from an explicit seed and put in standard coordinates: centred
at the origin and divided by one common spread for both axes (aspect kept), so that each has
roughly zero mean and unit standard deviation — the scale the ε-predictors and the N(0, I)
prior of the forward process expect. The centring/scaling constants are fixed per toy
(measured once on a large reference draw), so every call returns points in the same coordinates.

Image data sets live in `core.image_data`.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Literal

import torch

TOY2D_NAMES = (
    "swiss_roll",
    "moons",
    "s_curve",
    "circles",
    "eight_gaussians",
    "checkerboard",
    "cross",
    "spiral",
)
TOY2D_LABELS = {
    "swiss_roll": "Swiss roll",
    "moons": "Two moons",
    "s_curve": "S-curve",
    "circles": "Circles",
    "eight_gaussians": "8 Gaussians",
    "checkerboard": "Checkerboard",
    "cross": "Cross",
    "spiral": "Two spirals",
}
EIGHT_GAUSSIANS_RADIUS, EIGHT_GAUSSIANS_STD = 2.0, 0.1  # the 8 centres on a circle, and each one's spread
EIGHT_GAUSSIANS_NAMES = ("0° (right)", "45° (upper right)", "90° (top)", "135° (upper left)", "180° (left)",
                         "225° (lower left)", "270° (bottom)", "315° (lower right)")
# The toys whose points come in natural classes, and the classes' names (`make_toy2d_labelled`)
TOY2D_CLASSES = {
    "moons": ("upper moon", "lower moon"),
    "circles": ("outer circle", "inner circle"),
    "eight_gaussians": EIGHT_GAUSSIANS_NAMES,
    "cross": ("horizontal bar", "vertical bar"),
    "spiral": ("first arm", "second arm"),
}
MIN_POINTS = 16  # fewer points than this cannot describe a distribution worth diffusing
MAX_POINTS = 1_000_000  # a user-given set beyond this is almost surely a mistake (and slow)
MAX_COORDINATE = 1e30  # larger user-given coordinates would overflow float32 on the way back from the model
MAX_DRAWING_SIDE = 4096  # a drawing larger than this (pixels per side) is almost surely a mistake


def _uniform(n: int, g: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=g, dtype=torch.float64)


def _normal(shape: tuple[int, ...], g: torch.Generator) -> torch.Tensor:
    return torch.randn(shape, generator=g, dtype=torch.float64)


def _raw_toy(name: str, n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Unnormalised points (n, 2), float64, and each point's class (n,) long when the toy has classes
    (`TOY2D_CLASSES`), else None."""
    if name == "swiss_roll":  # the (x, z) view of sklearn's 3-D roll
        t = 1.5 * math.pi * (1 + 2 * _uniform(n, g))
        return torch.stack([t * torch.cos(t), t * torch.sin(t)], dim=1) + 0.3 * _normal((n, 2), g), None
    if name == "moons":
        upper = _uniform(n, g) < 0.5
        angle = math.pi * _uniform(n, g)
        x = torch.where(upper, torch.cos(angle), 1 - torch.cos(angle))
        y = torch.where(upper, torch.sin(angle), 0.5 - torch.sin(angle))
        return torch.stack([x, y], dim=1) + 0.05 * _normal((n, 2), g), (~upper).long()
    if name == "s_curve":  # the (x, z) view of sklearn's S-curve
        t = 3 * math.pi * (_uniform(n, g) - 0.5)
        return torch.stack([torch.sin(t), torch.sign(t) * (torch.cos(t) - 1)], dim=1) + 0.05 * _normal((n, 2), g), None
    if name == "circles":
        inner = _uniform(n, g) >= 0.5
        radius = torch.where(inner, 0.5, 1.0).to(torch.float64)
        angle = 2 * math.pi * _uniform(n, g)
        circle = torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
        return radius[:, None] * circle + 0.03 * _normal((n, 2), g), inner.long()
    if name == "eight_gaussians":
        k = torch.randint(0, 8, (n,), generator=g)
        return _eight_centres()[k] + EIGHT_GAUSSIANS_STD * _normal((n, 2), g), k
    if name == "checkerboard":  # 8 squares of a 4×4 board (FFJORD)
        x1 = 4 * _uniform(n, g) - 2
        x2 = _uniform(n, g) - 2 * torch.randint(0, 2, (n,), generator=g).to(torch.float64)
        x2 = x2 + torch.floor(x1) % 2
        return torch.stack([x1, x2], dim=1) * 2, None
    if name == "cross":  # a "+" of two bars, 4 long and 0.4 wide
        along = 4 * _uniform(n, g) - 2
        across = 0.4 * _uniform(n, g) - 0.2
        horizontal = _uniform(n, g) < 0.5
        points = torch.stack([torch.where(horizontal, along, across), torch.where(horizontal, across, along)], dim=1)
        return points, (~horizontal).long()
    if name == "spiral":  # two interleaved arms
        theta = math.sqrt(2) * torch.sqrt(_uniform(n, g)) * 2 * math.pi + 0.5
        arm = torch.where(_uniform(n, g) < 0.5, 1.0, -1.0).to(torch.float64)
        pts = torch.stack([theta * torch.cos(theta), theta * torch.sin(theta)], dim=1) * arm[:, None]
        return pts + 0.25 * _normal((n, 2), g), (arm < 0).long()
    raise ValueError(f"Unknown 2D data set {name!r}; choose one of: {', '.join(TOY2D_NAMES)}")


def _eight_centres() -> torch.Tensor:
    """The 8 Gaussians' centres (8, 2), float64, the k-th at angle k·45°."""
    angle = torch.arange(8, dtype=torch.float64) * math.pi / 4
    return EIGHT_GAUSSIANS_RADIUS * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)


@dataclass(frozen=True)
class GaussianMixture:
    """A toy that is an equal-weight mixture of isotropic Gaussians N(μ_k, σ²I), in the toy's standard coordinates
    (those of `make_toy2d`): its classes are known exactly."""

    means: torch.Tensor  # (K, 2) float64, the μ_k
    std: float  # σ
    names: tuple[str, ...]  # the K components' names

    def nearest(self, points: torch.Tensor) -> torch.Tensor:
        """The index of the component whose centre is nearest to each point (N, 2) → (N,)."""
        return torch.cdist(points.double().cpu(), self.means).argmin(dim=1)

    def spread_about(self, points: torch.Tensor, k: int) -> tuple[torch.Tensor, float]:
        """How ``points`` (N ≥ 1, 2) lie about the centre μ_k: their root-mean-square distance from it per coordinate,
        √mean((x − μ_k)²), which is σ for draws of the component, and the distance of their mean from μ_k. (Their
        standard deviation, taken about their own mean, leaves the centre out: a cloud 2.6 off it had read as a
        spread of 0.13 about it.)"""
        offsets = points.double().cpu() - self.means[k]
        return offsets.square().mean(dim=0).sqrt(), float(offsets.mean(dim=0).norm())


def toy_mixture(name: str) -> GaussianMixture | None:
    """The toy as a mixture of Gaussians when it is one (the 8 Gaussians), else None."""
    if name != "eight_gaussians":
        return None
    mean, spread = _standardisation(name)
    return GaussianMixture((_eight_centres() - mean) / spread, EIGHT_GAUSSIANS_STD / spread, EIGHT_GAUSSIANS_NAMES)


@cache
def _standardisation(name: str) -> tuple[torch.Tensor, float]:
    """Fixed (mean, spread) of a toy, from a 200k-point reference draw."""
    reference, _ = _raw_toy(name, 200_000, torch.Generator().manual_seed(20_200_619))
    mean = reference.mean(dim=0)
    return mean, float((reference - mean).pow(2).mean().sqrt())


def make_toy2d(name: str, n: int, *, seed: int = 0) -> torch.Tensor:
    """``n`` points of toy ``name`` as a float32 tensor (n, 2), ~zero mean, ~unit spread; same seed, same points."""
    return _toy2d(name, n, seed)[0]


def make_toy2d_labelled(name: str, n: int, *, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The points of `make_toy2d` (same seed, same points) and each one's class (n,) long, an index into
    ``TOY2D_CLASSES[name]``; ValueError for a toy without classes."""
    if name in TOY2D_NAMES and name not in TOY2D_CLASSES:
        raise ValueError(f"the 2D data set {name} has no classes; those with classes: {', '.join(TOY2D_CLASSES)}")
    points, labels = _toy2d(name, n, seed)
    assert labels is not None
    return points, labels


def _toy2d(name: str, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    if name not in TOY2D_NAMES:
        raise ValueError(f"Unknown 2D data set {name!r}; choose one of: {', '.join(TOY2D_NAMES)}")
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_POINTS:
        raise ValueError(f"number of points must be a whole number from 1 to {MAX_POINTS}, got {n!r}")
    points, labels = _raw_toy(name, n, torch.Generator().manual_seed(int(seed)))
    mean, spread = _standardisation(name)
    return ((points - mean) / spread).to(torch.float32), labels


@dataclass(frozen=True)
class PointNormalisation:
    """x_model = (x − mean) / scale; a DataInfo keeps mean and scale, and `DataInfo.to_data_coordinates` maps model
    samples back to the user's coordinates."""

    mean: tuple[float, float]
    scale: float

    def apply(self, points: torch.Tensor) -> torch.Tensor:
        return (points - torch.tensor(self.mean, dtype=points.dtype)) / self.scale


def normalise_points(points: object) -> tuple[torch.Tensor, PointNormalisation]:
    """Check a user-given point set (N, 2) and put it in standard coordinates.

    Returns (points as float32 (N, 2) with zero mean and unit spread, the normalisation used).
    Raises ValueError for an empty, 1-D, wrong-width, non-finite, too large (beyond ±MAX_COORDINATE), degenerate
    or too small set.
    """
    try:
        pts = torch.as_tensor(points, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError("points must be numbers arranged as rows of (x, y)") from None
    if pts.numel() == 0:
        raise ValueError("the point set is empty")
    if pts.dim() != 2 or pts.shape[1] != 2:
        raise ValueError(f"points must have shape (N, 2) — one (x, y) row per point — got shape {tuple(pts.shape)}")
    if not torch.isfinite(pts).all():
        raise ValueError("the point set contains NaN or infinite coordinates")
    if pts.shape[0] < MIN_POINTS:
        raise ValueError(f"need at least {MIN_POINTS} points, got {pts.shape[0]}")
    if pts.shape[0] > MAX_POINTS:
        raise ValueError(f"at most {MAX_POINTS} points are supported, got {pts.shape[0]}")
    if float(pts.abs().max()) > MAX_COORDINATE:
        raise ValueError(f"coordinates beyond ±{MAX_COORDINATE:g} are not supported (samples are drawn in float32): "
                         "rescale the points")
    mean = pts.mean(dim=0)
    spread = float((pts - mean).pow(2).mean().sqrt())
    if spread <= 1e-12 * float(mean.abs().max()):  # relative: points in tiny units still have a shape
        raise ValueError("all points are (nearly) identical: there is no shape to learn")
    norm = PointNormalisation(mean=(float(mean[0]), float(mean[1])), scale=spread)
    return norm.apply(pts).to(torch.float32), norm


def csv_text(raw: bytes) -> str:
    """The text of a CSV file: UTF-8 (with or without a byte-order mark), UTF-16 with its byte-order mark (Excel's
    "Unicode text", Windows PowerShell's ``>``), else Windows-1252, the encoding of Excel's CSVs on Windows (only a
    header can hold other characters than digits). UnicodeDecodeError for a file that is none of these, or holds NUL
    bytes (binary)."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return raw.decode("utf-16")
    if b"\x00" in raw:
        raise UnicodeDecodeError("csv", raw, raw.index(b"\x00"), raw.index(b"\x00") + 1, "NUL byte: not text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252")


def points_from_csv(text: str) -> torch.Tensor:
    """Parse ``x,y`` rows into a (N, 2) tensor; tabs separate them where the first line with a digit has tabs and no
    comma (`_delimiter`: cells pasted from a spreadsheet). Rows before the first point are headers (`_is_header`),
    and skipped: a title, Excel's "sep=," line, the columns' names, their units. Columns named x and y (in any case)
    are read where they are (`_header_columns`: pandas' ``to_csv`` writes its index first), else the first two. Any
    other row that does not parse, or holds NaN or infinity, is an error naming its line."""
    rows: list[tuple[float, float]] = []
    headers: list[tuple[int, list[str]]] = []
    columns = (0, 1)
    reader = csv.reader(io.StringIO(text), delimiter=_delimiter(text))
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as err:  # an unclosed quote runs on to the field limit: "field larger than field limit"
            raise ValueError(f"CSV line {reader.line_num}: {err}") from None
        line_no = reader.line_num
        if not row or not "".join(row).strip():
            continue
        if not rows and (_is_header(row) or (not headers and _pandas_index(row))):
            headers.append((line_no, row))
            continue
        if not rows and headers:
            columns = _header_columns(headers)
        if len(row) < 2:
            raise ValueError(f"CSV line {line_no}: expected two columns x,y, got {len(row)}{_separator_hint(row)}")
        if len(row) <= max(columns):
            raise ValueError(f"CSV line {line_no}: expected {max(columns) + 1} columns, as its header has, "
                             f"got {len(row)}")
        cells = [row[i] for i in columns]
        bad = [repr(cell) for cell in cells if not _is_number(cell)]  # "'5', 'x' are not numbers" had been said
        if bad:
            what = f"{bad[0]} is not a number" if len(bad) == 1 else f"{', '.join(bad)} are not numbers"
            raise ValueError(f"CSV line {line_no}: {what}{_separator_hint(row)}")
        x, y = (_number(cell) for cell in cells)
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ValueError(f"CSV line {line_no}: {', '.join(cells)} is not a finite point")
        rows.append((x, y))
    if not rows:
        raise ValueError("the CSV holds no (x, y) rows" + (f": none of its {len(headers)} lines starts with two "
                                                           "numbers" if len(headers) > 1 else ""))
    return torch.tensor(rows, dtype=torch.float64)


def _delimiter(text: str) -> str:
    """A tab where the first line with a digit (the first point, or a header such as "x1") has tabs and no comma:
    cells pasted from a spreadsheet, or its "Unicode text"; a comma otherwise (a title such as "Distance, m" above
    tab-separated points had switched a whole file to commas)."""
    first = next((line for line in text.splitlines() if any(char.isdigit() for char in line)), "")
    return "\t" if "\t" in first and "," not in first else ","


def _is_header(row: list[str]) -> bool:
    """Whether a row before the first point is a header: no number in its first two cells, and a letter in it (a
    title, names, units such as "m") or no digit at all (units such as "%", "°", "---"). A row of digits that do not
    parse ("1;2", "1 234,5") is a point written wrong, reported on its line, not skipped."""
    text = "".join(row)
    return not any(_is_number(cell) for cell in row[:2]) \
        and (any(char.isalpha() for char in text) or not any(char.isdigit() for char in text))


def _pandas_index(row: list[str]) -> bool:
    """Whether a first row is pandas' header of an unnamed index and unnamed columns (",0,1"): read as a point, it
    had been the error "'' is not a number"."""
    return len(row) > 2 and row[0].strip() == "" and all(cell.strip().isdigit() for cell in row[1:])


def _header_columns(headers: list[tuple[int, list[str]]]) -> tuple[int, int]:
    """The columns to read, from the headers (line number, row) above the first point: those of the last header
    that names x and y (",x,y" from pandas; "y,x" the right way round), else the first two. ValueError where the
    last header names its first column as an index ("", "Unnamed: 0", "index", "id") beside two others: the
    points had been (row number, x), a circle trained as a flat wave, without a word."""
    for _, row in reversed(headers):
        names = [cell.strip().lower() for cell in row]
        if "x" in names and "y" in names:
            return names.index("x"), names.index("y")
    line_no, row = headers[-1]
    if len(row) > 2 and row[0].strip().lower() in ("", "unnamed: 0", "index", "id"):
        raise ValueError(f"CSV line {line_no}: the first column looks like an index ({row[0]!r}), not x: name the "
                         "coordinates' columns x and y (pandas: DataFrame(points, columns=['x', 'y']))")
    return 0, 1


def _number(cell: str) -> float:
    return float(cell.replace("−", "-"))  # a typographic minus, as a word processor or a web page writes it


def _is_number(cell: str) -> bool:
    try:
        _number(cell)
    except ValueError:
        return False
    return True


def _separator_hint(row: list[str]) -> str:
    """What to change in a row that a semicolon or a tab separates (a spreadsheet's export with decimal commas)."""
    if any(";" in cell or "\t" in cell for cell in row):
        return " (the file seems to use ';' or tabs between columns: separate x and y with a comma, '.' for decimals)"
    if len(row) == 1 and len(row[0].split()) >= 2:  # numpy's savetxt: "1.0 2.0"
        return " (the file seems to use spaces between columns: separate x and y with a comma)"
    return ""


def points_from_drawing(ink: object, n: int, *, seed: int = 0) -> torch.Tensor:
    """``n`` points spread over the strokes of a drawing, float64 (n, 2) in pixels, x to the right and y up.

    ``ink`` (H, W) says how much ink each pixel holds, from 0 (none) to 1 (e.g. the alpha of a stroke
    layer). Each point picks a pixel with probability ∝ its ink and lands uniformly inside it, so the
    points are a draw from the drawing read as a density: thick or dark strokes get more of them.
    Raises ValueError for an empty drawing, or one with fewer than MIN_POINTS inked pixels.
    """
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_POINTS:
        raise ValueError(f"number of points must be a whole number from 1 to {MAX_POINTS}, got {n!r}")
    weights = torch.as_tensor(ink, dtype=torch.float64)
    if weights.dim() != 2 or min(weights.shape) < 1 or max(weights.shape) > MAX_DRAWING_SIDE:
        raise ValueError(f"a drawing must be a 2-D array of at most {MAX_DRAWING_SIDE} pixels a side, "
                         f"got shape {tuple(weights.shape)}")
    weights = torch.nan_to_num(weights, nan=0.0).clamp(0.0, 1.0)
    if int((weights > 0).sum()) < MIN_POINTS:
        raise ValueError("the drawing is empty (or nearly): draw a shape first")
    height, width = weights.shape
    g = torch.Generator().manual_seed(int(seed))
    pixel = torch.multinomial(weights.flatten(), n, replacement=True, generator=g)  # (n,) flat pixel indices
    row, col = pixel // width, pixel % width
    jitter = _uniform(2 * n, g).view(n, 2)
    return torch.stack([col + jitter[:, 0], height - row - jitter[:, 1]], dim=1)


def draw_from(points: torch.Tensor) -> Callable[[int, int], torch.Tensor]:
    """``draw(n, seed)``: n points drawn with replacement from a finite set (N, 2), the same for the same seed.

    What `core.metrics.sliced_wasserstein_ratio` needs to measure samples against data known only by its points.
    """
    if points.dim() != 2 or len(points) == 0:
        raise ValueError(f"need a non-empty (N, 2) point set, got shape {tuple(points.shape)}")

    def draw(n: int, seed: int) -> torch.Tensor:
        index = torch.randint(len(points), (n,), generator=torch.Generator().manual_seed(int(seed)))
        return points[index]

    return draw


def data_sampler(info: DataInfo, points: torch.Tensor | None) -> Callable[[int, int], torch.Tensor] | None:
    """``draw(n, seed)`` → n training points in model coordinates, for 2D data that can be drawn again: a toy
    (regenerated from its name) or given ``points`` (drawn with replacement, `draw_from`); None otherwise (images,
    or given points that were not kept)."""
    if info.generated:
        return lambda n, seed: make_toy2d(info.name, n, seed=seed)
    if info.given_as_points and points is not None:
        return draw_from(points)
    return None


@dataclass(frozen=True)
class DataInfo:
    """What the model was trained on, and how its coordinates map back to the data's.

    2D: samples x_model map back to data coordinates as x_model · scale + mean.
    Images: pixels in [−1, 1]; ``clip_x0`` = 1.0 for the sampler.
    """

    name: str  # a toy name, an image data set name, or a user label
    kind: Literal["2d", "image"]
    shape: tuple[int, ...]  # one example: (2,) or (C, H, W)
    mean: tuple[float, ...] = (0.0, 0.0)  # 2D only
    scale: float = 1.0  # 2D only
    source: str = ""  # where the examples were read from, e.g. ".../MNIST/raw (test split)"; "" for generated toys

    @property
    def generated(self) -> bool:
        """A 2D toy, which its name regenerates (`make_toy2d`); False for data read from a file or drawn."""
        return self.kind == "2d" and self.name in TOY2D_NAMES and not self.source

    @property
    def given_as_points(self) -> bool:
        """2D data given as points (a CSV file, a drawing, a toy set of another size than the usual, see
        `core.datasets`), which nothing but the points themselves can reproduce: a checkpoint keeps them
        (`core.checkpoints`)."""
        return self.kind == "2d" and not self.generated

    @property
    def clip_x0(self) -> float | None:
        """x̂_0 clipping for sampling: only for images in [−1, 1], never for 2D data."""
        return 1.0 if self.kind == "image" else None

    def to_data_coordinates(self, x: torch.Tensor) -> torch.Tensor:
        """Model samples → the data's coordinates (2D: undo the normalisation; images: unchanged)."""
        if self.kind == "image":
            return x
        return x * self.scale + torch.tensor(self.mean, dtype=x.dtype, device=x.device)
