"""Time the Schedules tab's redraw (`app.schedules_tab.compare`) and its noised grid alone.

    python bench/bench_schedules.py [--repeats 20]

Calls the handler directly (no server, no browser): the schedules, the ᾱ/β/log-SNR figures, the
table, the grid of x_t under each schedule and the step-gain figure. Every change of a control
(a schedule ticked, T, a parameter, the data) redraws all of it. Prints p50/p95 in ms.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from app import controls, panel_grid, schedules_tab  # noqa: E402
from core.schedules import make_schedule  # noqa: E402

CASES = {
    "3 schedules, MNIST digit": (("linear", "cosine", "sigmoid"), "mnist"),
    "4 schedules, MNIST digit": (("linear", "cosine", "sigmoid", "quadratic"), "mnist"),
    "3 schedules, swiss roll (1,000 pts)": (("linear", "cosine", "sigmoid"), "swiss_roll"),
    "4 schedules, swiss roll (1,000 pts)": (("linear", "cosine", "sigmoid", "quadratic"), "swiss_roll"),
}


def p50_p95(timings: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(timings, n=100, method="inclusive")
    return cuts[49], cuts[94]


def time_calls(call, repeats: int) -> tuple[float, float]:
    call()  # warm-up
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        timings.append((time.perf_counter() - start) * 1e3)
    return p50_p95(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    params = controls.default_param_values()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} intra-op threads; {args.repeats} calls each")
    for label, (names, data) in CASES.items():
        inputs = (list(names), 1000, data, 0, None, None, 0, True, schedules_tab.DEFAULT_WEIGHTING, *params)
        p50, p95 = time_calls(lambda: schedules_tab.compare(*inputs), args.repeats)
        kind, x0 = schedules_tab.load_one_x0(data, 0, None)
        schedules = [make_schedule(name, 1000) for name in names]
        ts = schedules_tab.grid_timesteps(1000)
        cells = schedules_tab.noised_grid(schedules, kind, x0, torch.randn(x0.shape), ts)
        grid = (cells, list(names), [f"t = {t}" for t in ts])
        grid50, _ = time_calls(lambda: panel_grid.noised_grid_figure(*grid, kind=kind, points_as_pictures=True),
                               args.repeats)
        print(f"{label:38s} redraw p50 {p50:6.1f} ms  p95 {p95:6.1f} ms   (grid figure alone p50 {grid50:5.1f} ms)")


if __name__ == "__main__":
    main()
