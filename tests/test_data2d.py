"""2D toy distributions, user point sets, the sliced-Wasserstein metric and the return ratio."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from core.data import (
    TOY2D_NAMES, DataInfo, csv_text, data_sampler, draw_from, make_toy2d, normalise_points, points_from_csv,
    points_from_drawing, toy_mixture,
)
from core.datasets import DEFAULT_TOY_POINTS, load_training_data
from core.metrics import (
    mean_pairwise_distance, real_sw_ratios, return_ratio, sliced_wasserstein, sliced_wasserstein_ratio,
)


@pytest.mark.parametrize("name", TOY2D_NAMES)
def test_toys_are_standardised_and_deterministic(name: str) -> None:
    x = make_toy2d(name, 20_000, seed=3)
    assert x.shape == (20_000, 2) and x.dtype == torch.float32
    assert x.mean(0).abs().max() < 0.1
    spread = float(x.pow(2).mean().sqrt())  # one spread for both axes (aspect kept)
    assert 0.9 < spread < 1.1
    assert torch.equal(x, make_toy2d(name, 20_000, seed=3))
    assert not torch.equal(x[:100], make_toy2d(name, 100, seed=4))


def test_toys_differ_from_each_other() -> None:
    samples = {name: make_toy2d(name, 2000, seed=0) for name in TOY2D_NAMES}
    for a in TOY2D_NAMES:
        for b in TOY2D_NAMES:
            if a < b:
                assert sliced_wasserstein(samples[a], samples[b]) > 0.1, (a, b)


def test_toy_bad_input() -> None:
    with pytest.raises(ValueError, match="Unknown 2D data set"):
        make_toy2d("banana", 10)
    with pytest.raises(ValueError, match="number of points"):
        make_toy2d("moons", 0)


def test_normalise_points() -> None:
    raw = torch.randn(500, 2, dtype=torch.float64) * torch.tensor([3.0, 1.0]) + torch.tensor([10.0, -4.0])
    pts, norm = normalise_points(raw)
    assert pts.dtype == torch.float32 and pts.shape == (500, 2)
    assert pts.mean(0).abs().max() < 1e-5
    assert float(pts.double().pow(2).mean().sqrt()) == pytest.approx(1.0, rel=1e-5)
    info = DataInfo(name="points", kind="2d", shape=(2,), mean=norm.mean, scale=norm.scale)
    assert torch.allclose(info.to_data_coordinates(pts.double()), raw, atol=1e-4)


def test_points_in_tiny_units_keep_their_shape() -> None:
    """The test for identical points is relative: a shape measured in units of 1e-30 is still a shape."""
    raw = torch.randn(100, 2, dtype=torch.float64) * 1e-30
    pts, norm = normalise_points(raw)
    assert norm.scale == pytest.approx(float(raw.sub(raw.mean(0)).pow(2).mean().sqrt()))
    assert float(pts.double().pow(2).mean().sqrt()) == pytest.approx(1.0, rel=1e-5)


@pytest.mark.parametrize(
    "points, message",
    [
        ([], "empty"),
        ([1.0, 2.0, 3.0], "shape"),
        ([[1.0, 2.0, 3.0]] * 20, "shape"),
        ([[1.0, float("nan")]] + [[0.0, 1.0]] * 20, "NaN"),
        ([[1.0, 2.0]] * 5, "at least"),
        ([[1.0, 2.0]] * 50, "identical"),
        ([[1e300, 2.0], [0.0, 1.0]] * 10, "beyond ±1e\\+30"),  # its spread would overflow; float32 could not hold it
        ("hello", "numbers"),
    ],
)
def test_normalise_points_rejects(points, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        normalise_points(points)


def test_points_from_csv() -> None:
    pts = points_from_csv("x,y\n1,2\n3.5,-4\n\n5,6,extra\n")
    assert pts.tolist() == [[1.0, 2.0], [3.5, -4.0], [5.0, 6.0]]
    with pytest.raises(ValueError, match="line 3"):
        points_from_csv("1,2\n3,4\nfoo,bar\n")
    with pytest.raises(ValueError, match="two columns"):
        points_from_csv("1\n2\n")
    with pytest.raises(ValueError, match="no"):
        points_from_csv("x,y\n")


def test_the_cli_reads_the_csv_files_that_the_app_reads(tmp_path) -> None:
    """The CLI read a CSV with `read_text`: a byte-order mark before the first number ("'\\ufeff0.86' is not a
    number") and Excel's Windows-1252 header were refused where the app's upload took them (one reader now)."""
    xy = [(0.1 * i, (-1) ** i * 0.05 * i) for i in range(40)]
    rows = "".join(f"{x:.3f},{y:.3f}\n" for x, y in xy)
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf" + rows.encode())
    (tmp_path / "excel.csv").write_bytes(("Länge,Höhe\n" + rows).encode("cp1252"))
    (tmp_path / "binary.csv").write_bytes(bytes(range(256)))
    for name in ("bom.csv", "excel.csv"):
        points, info = load_training_data(str(tmp_path / name))
        back = info.to_data_coordinates(points).double().numpy()
        assert np.allclose(back, xy, atol=1e-6), name
    with pytest.raises(ValueError, match=r"binary.csv is not a text file: give a CSV of x,y rows"):
        load_training_data(str(tmp_path / "binary.csv"))


def test_a_csv_whose_first_row_holds_a_number_is_read_as_data() -> None:
    """A first row that did not parse was skipped as a header, even "1,abc" or a spreadsheet's "1,000;0,000": the
    error then named line 2, and a bad first data row was lost without a word."""
    with pytest.raises(ValueError, match=r"^CSV line 1: 'abc' is not a number$"):
        points_from_csv("1,abc\n2,3\n")
    with pytest.raises(ValueError, match=r"CSV line 1: '000;0' is not a number .the file seems to use ';' or tabs"):
        points_from_csv("1,000;0,000\n2,500;1,000\n")
    assert points_from_csv("1\t2\n3\t4\n").tolist() == [[1.0, 2.0], [3.0, 4.0]]  # no comma: tab-separated
    assert points_from_csv("abc,def\n1,2\n").tolist() == [[1.0, 2.0]]  # words only: a header
    with pytest.raises(ValueError, match=r"got 1 \(the file seems to use spaces between columns"):
        points_from_csv("1.0 2.0\n3.0 4.0\n")  # numpy's savetxt


def test_a_csv_is_read_by_its_column_names_and_its_headers_may_run_over_lines() -> None:
    """pandas' ``to_csv`` writes its index first (",x,y"): the points had been (row number, x), a circle trained as a
    flat wave, without a word. A "y,x" header had been read as x,y; a title above the header, Excel's "sep=," line, a
    tab-separated UTF-16 file, a typographic minus and a NaN had been refused or misreported."""
    assert points_from_csv(",x,y\n0,1.5,2.5\n1,3,4\n").tolist() == [[1.5, 2.5], [3.0, 4.0]]
    assert points_from_csv("id,X,Y\n7,1,2\n").tolist() == [[1.0, 2.0]]
    assert points_from_csv("y,x\n1,2\n").tolist() == [[2.0, 1.0]]
    assert points_from_csv("My measurements\nsep=,\nx,y\n−1,2\n").tolist() == [[-1.0, 2.0]]
    # titles with digits, a units row below the names, a title over an index-less header: all headers
    assert points_from_csv("Run 3,,\nMeasured 2024-05-01,,\nx,y,label\n,m,m\n1,2,a\n").tolist() == [[1.0, 2.0]]
    assert points_from_csv(",My title,\nx,y,z\n1,2,3\n").tolist() == [[1.0, 2.0]]
    assert points_from_csv("x\ty\r\n1\t2\r\n").tolist() == [[1.0, 2.0]]  # a spreadsheet's cells, pasted
    assert points_from_csv("Distance, m\tHeight, m\n1\t2\n").tolist() == [[1.0, 2.0]]  # a comma in a title
    assert points_from_csv("x,y\n%,%\n---,---\n1,2\n").tolist() == [[1.0, 2.0]]  # units without letters
    with pytest.raises(ValueError, match=r"^CSV line 1: the first column looks like an index \(''\), not x"):
        points_from_csv(",0,1\n0,1.5,2.5\n")  # pandas' DataFrame(points).to_csv()
    with pytest.raises(ValueError, match=r"^CSV line 3: field larger than field limit"):  # an unclosed quote
        points_from_csv('x,y\n"1,2\n' + "3" * 200_000)
    with pytest.raises(ValueError, match=r"^CSV line 1: the first column looks like an index \('Unnamed: 0'\), not x"):
        points_from_csv("Unnamed: 0,a,b\n0,1,2\n")
    with pytest.raises(ValueError, match=r"^CSV line 2: expected 3 columns, as its header has, got 2$"):
        points_from_csv(",x,y\n0,1\n")
    with pytest.raises(ValueError, match=r"^CSV line 3: 1, nan is not a finite point$"):
        points_from_csv("x,y\n0,0\n1,nan\n")
    with pytest.raises(ValueError, match=r"^CSV line 2: '1 234.5' is not a number$"):
        points_from_csv("x,y\n1 234.5,2\n")  # digits that do not parse: a point written wrong, not a header
    assert csv_text("x\ty\r\n1\t2\r\n".encode("utf-16")) == "x\ty\r\n1\t2\r\n"  # Excel's "Unicode text"


def test_sliced_wasserstein_known_values() -> None:
    x = torch.randn(4000, 2, generator=torch.Generator().manual_seed(0))
    assert sliced_wasserstein(x, x) == 0
    # a translation by d moves every 1-D projection by ⟨d, θ⟩: SW² = E_θ⟨d, θ⟩² = |d|²/2 in 2D
    d = torch.tensor([3.0, 4.0])
    assert sliced_wasserstein(x, x + d, n_projections=4096) == pytest.approx(5 / math.sqrt(2), rel=0.02)
    # unequal sizes are compared through their quantile functions, exactly: {0, 1} and {0, 0, 1, 1} are one measure
    # (interpolated quantiles had put them 0.18 apart); {0, 1} against {0, 1, 2} differ on u in [1/3, 1/2) by 1 and
    # on [2/3, 1) by 1, W₂² = 1/6 + 1/3 (in 1-D every direction sees the same)
    assert sliced_wasserstein(torch.tensor([[0.0], [1.0]]), torch.tensor([[0.0], [0.0], [1.0], [1.0]])) == 0
    assert sliced_wasserstein(torch.tensor([[0.0], [1.0]]), torch.tensor([[0.0], [1.0], [2.0]])) == pytest.approx(
        math.sqrt(0.5), rel=1e-12)
    assert sliced_wasserstein(x, x[::2]) < 0.05
    with pytest.raises(ValueError):
        sliced_wasserstein(x, torch.zeros(10, 3))


def test_the_sw_ratio_measures_against_independent_draws_of_the_data() -> None:
    """The denominator SW(data, data′) pairs the reference with n_baselines other draws: a draw that reused the
    reference's seed would be at distance 0 from it and shrink the denominator (every ratio up by about 4/3)."""
    seeds = []

    def draw(n: int, seed: int) -> torch.Tensor:
        seeds.append(seed)
        return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed))

    sliced_wasserstein_ratio(torch.randn(500, 2), draw, seed=3, n_baselines=4)
    assert len(seeds) == 5 and len(set(seeds)) == 5


def test_sliced_wasserstein_ratio_separates_good_from_bad() -> None:
    draw = lambda n, s: make_toy2d("swiss_roll", n, seed=s)  # noqa: E731
    assert sliced_wasserstein_ratio(draw(2000, 99), draw) < 1.3
    blurred = draw(2000, 99) + 0.3 * torch.randn(2000, 2, generator=torch.Generator().manual_seed(1))
    assert sliced_wasserstein_ratio(blurred, draw) > 2
    assert sliced_wasserstein_ratio(torch.randn(2000, 2), draw) > 3


def test_the_data_itself_scores_around_1_and_a_blur_scores_outside_its_spread() -> None:
    """`real_sw_ratios`: fresh draws of the data scored as samples are, the SW ratio's noise at this n."""
    draw = lambda n, s: make_toy2d("swiss_roll", n, seed=s)  # noqa: E731
    scores = real_sw_ratios(draw, 1000, draws=6)
    assert len(set(scores)) == 6 and 0.4 < min(scores) < 1.05 and 0.95 < max(scores) < 2
    assert scores == real_sw_ratios(draw, 1000, draws=6)  # the same draws every time
    assert real_sw_ratios(draw, 1000, draws=6, seed=1) != scores
    blurred = draw(1000, 99) + 0.3 * torch.randn(1000, 2, generator=torch.Generator().manual_seed(1))
    assert sliced_wasserstein_ratio(blurred, draw) > 1.5 * max(scores)


def test_return_ratio() -> None:
    g = torch.Generator().manual_seed(0)
    starts = torch.randn(3000, 2, generator=g)
    assert return_ratio(starts, starts) == 0
    # samples independent of their starts: as far from their own as from any other
    assert return_ratio(torch.randn(3000, 2, generator=g), starts) == pytest.approx(1, abs=0.05)
    # two points a distance 1 apart, each sample 0.1 from its own start, 0.9 from the other
    assert return_ratio(torch.tensor([[0.1], [0.9]]), torch.tensor([[0.0], [1.0]])) == pytest.approx(0.1 / 0.9)
    images = torch.rand(8, 1, 4, 4, generator=g)
    assert 0 < return_ratio(images + 0.01, images) < 0.1
    with pytest.raises(ValueError, match="same shape"):
        return_ratio(starts[:1], starts[:1])
    # copies of a sample's own example are not "the others": drawn with replacement from two points, each sample at
    # its own point is 0 from it and 1 from the other (the copies had counted as others at distance 0: 2/3 of 1)
    two = torch.tensor([[0.0], [0.0], [1.0], [1.0]])
    assert return_ratio(two + torch.tensor([[0.1], [0.1], [-0.1], [-0.1]]), two) == pytest.approx(0.1 / 0.9)
    with pytest.raises(ValueError, match="not defined here: the examples are all one point"):  # it had read 1
        return_ratio(torch.randn(5, 2, generator=g), torch.zeros(5, 2))
    # copies of three digit-sized images: beyond 25 rows cdist works by products, and had put copies 7.5e-7 apart
    three = torch.rand(3, 1, 28, 28, generator=g) * 2 - 1
    labels = torch.arange(64) % 3
    drawn = three[labels]
    samples = drawn + 0.01 * torch.randn(drawn.shape, generator=g)
    distances = torch.cdist(samples.flatten(1).double(), drawn.flatten(1).double(), compute_mode="donot_use_mm_for_euclid_dist")
    own = distances.diagonal().mean()
    others = distances[labels[:, None] != labels[None, :]].mean()
    assert return_ratio(samples, drawn) == pytest.approx(float(own / others), rel=1e-6)
    with pytest.raises(ValueError, match="the examples are all one point"):
        return_ratio(drawn, three[:1].repeat(64, 1, 1, 1))


def test_mean_pairwise_distance() -> None:
    # a 3-4-5 triangle: the mean of its sides
    assert mean_pairwise_distance(torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])) == pytest.approx(4.0)
    # N(0, I) in 2D: x − y ~ N(0, 2I), whose norm is Rayleigh with σ = √2: mean σ·√(π/2) = √π
    g = torch.Generator().manual_seed(0)
    assert mean_pairwise_distance(torch.randn(2000, 2, generator=g)) == pytest.approx(math.sqrt(math.pi), rel=0.03)
    assert mean_pairwise_distance(torch.ones(5, 1, 3, 3)) == 0  # images, all alike
    with pytest.raises(ValueError, match="at least 2 samples"):
        mean_pairwise_distance(torch.zeros(1, 2))


def test_points_from_a_drawing_lie_on_its_ink_with_its_density() -> None:
    ink = np.zeros((40, 60))
    ink[5:10, 10:20] = 1.0  # a dark bar near the top
    ink[30:35, 40:50] = 0.25  # a faint bar of the same size near the bottom
    pts = points_from_drawing(ink, 20_000, seed=3)
    assert pts.shape == (20_000, 2) and pts.dtype == torch.float64
    x, y = pts[:, 0], pts[:, 1]  # x: columns, y: rows counted up from the bottom edge (height 40)
    top = (x >= 10) & (x <= 20) & (y >= 40 - 10) & (y <= 40 - 5)
    bottom = (x >= 40) & (x <= 50) & (y >= 40 - 35) & (y <= 40 - 30)
    assert bool((top | bottom).all()), "every point lies inside an inked pixel"
    assert 3.6 < int(top.sum()) / int(bottom.sum()) < 4.4, "points follow the ink: 4× the ink, 4× the points"
    assert len(torch.unique(x)) > 19_000, "points spread inside their pixels, not on a grid"
    assert torch.equal(points_from_drawing(ink, 100, seed=3), points_from_drawing(ink, 100, seed=3))
    assert not torch.equal(points_from_drawing(ink, 100, seed=3), points_from_drawing(ink, 100, seed=4))


@pytest.mark.parametrize("ink, message", [
    (np.zeros((50, 50)), "empty"),
    (np.pad(np.ones((3, 3)), 20), "empty"),  # 9 inked pixels: a speck, not a shape
    (np.ones(50), "2-D"),
    (np.ones((5000, 10)), "2-D"),
])
def test_points_from_a_drawing_reject_empty_or_malformed_drawings(ink, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        points_from_drawing(ink, 100)


def test_draw_from_a_finite_set_repeats_with_its_seed() -> None:
    points = torch.arange(20.0).view(10, 2)
    draw = draw_from(points)
    first = draw(500, 1)
    assert first.shape == (500, 2) and torch.equal(first, draw(500, 1)) and not torch.equal(first, draw(500, 2))
    assert all(any(torch.equal(p, q) for q in points) for p in first[:50]), "only the set's own points"
    assert len(torch.unique(first, dim=0)) == 10, "500 draws with replacement reach all 10 points"


def test_a_toy_training_set_of_another_size_is_kept_as_given_points():
    """The usual 10,000 points are regenerated by name; another size is an experiment on that very set."""
    usual, info = load_training_data("moons", seed=1)
    assert len(usual) == DEFAULT_TOY_POINTS and info.generated and not info.given_as_points
    few, few_info = load_training_data("moons", n_points=20, seed=1)
    assert torch.equal(few, make_toy2d("moons", 20, seed=1))
    assert few_info.name == "moons" and few_info.source == "20 points of moons, seed 1"
    assert few_info.given_as_points and not few_info.generated
    assert data_sampler(few_info, None) is None  # nothing but the points themselves can give them back
    drawn = data_sampler(few_info, few)(50, 0)
    assert bool((torch.cdist(drawn, few).min(dim=1).values == 0).all())  # drawn from the 20 points only


def test_the_eight_gaussians_are_the_mixture_that_guidance_steers_by() -> None:
    """`toy_mixture` describes the points `make_toy2d` draws: eight equal components of its spread, in the same
    standard coordinates; other toys are no mixture of Gaussians."""
    x = make_toy2d("eight_gaussians", 40_000, seed=3)
    mixture = toy_mixture("eight_gaussians")
    k = mixture.nearest(x)
    counts = torch.bincount(k, minlength=8).double() / len(x)
    assert torch.allclose(counts, torch.full((8,), 1 / 8, dtype=torch.float64), atol=0.01)
    residual = x.double() - mixture.means[k]
    assert torch.allclose(residual.mean(0), torch.zeros(2, dtype=torch.float64), atol=0.005)
    assert torch.allclose(residual.std(0), torch.full((2,), mixture.std, dtype=torch.float64), rtol=0.03)
    assert mixture.names[0] == "0° (right)" and float(mixture.means[0, 0]) > 1
    assert toy_mixture("swiss_roll") is None


def test_labelled_toys_give_the_same_points_and_each_ones_class() -> None:
    from core.data import TOY2D_CLASSES, make_toy2d_labelled, toy_mixture
    from core.datasets import class_names, load_labelled_data

    for name in TOY2D_CLASSES:
        points, labels = make_toy2d_labelled(name, 3000, seed=4)
        assert torch.equal(points, make_toy2d(name, 3000, seed=4)), name
        counts = torch.bincount(labels, minlength=len(TOY2D_CLASSES[name]))
        assert len(counts) == len(class_names(name)) and counts.min() > 0.7 * 3000 / len(counts), name
    points, labels = make_toy2d_labelled("eight_gaussians", 2000)
    assert torch.equal(toy_mixture("eight_gaussians").nearest(points), labels)  # the component each came from
    points, labels = make_toy2d_labelled("circles", 2000)
    radius = points.norm(dim=1)
    assert radius[labels == 1].max() < radius[labels == 0].min()  # the inner circle is class 1
    points, labels = make_toy2d_labelled("moons", 2000)
    assert points[labels == 0, 1].mean() > points[labels == 1, 1].mean()  # the upper moon is class 0
    points, labels = make_toy2d_labelled("cross", 2000)
    spread = [points[labels == k].std(dim=0) for k in (0, 1)]
    assert spread[0][0] > 3 * spread[0][1] and spread[1][1] > 3 * spread[1][0]  # horizontal bar, then vertical
    with pytest.raises(ValueError, match="has no classes"):
        make_toy2d_labelled("swiss_roll", 10)
    assert class_names("swiss_roll") == () and class_names("mnist")[7] == "7"
    data, labels, info = load_labelled_data("spiral", n_points=500, seed=2)
    assert torch.equal(data, make_toy2d("spiral", 500, seed=2)) and labels.shape == (500,) and info.name == "spiral"
    with pytest.raises(ValueError, match="class labels are known only for moons, circles"):
        load_labelled_data("s_curve")


def test_mnist_comes_with_its_labels(shared_data) -> None:
    from core.datasets import load_labelled_data

    images, labels, info = load_labelled_data("mnist", root=shared_data, limit=500)
    assert images.shape == (500, 1, 28, 28) and labels.shape == (500,) and labels.dtype == torch.long
    assert set(labels.tolist()) == set(range(10)) and info.kind == "image"
