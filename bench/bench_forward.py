"""Time the Forward tab's t-slider handler (`app.forward_tab.scrub`) per data kind.

    python bench/bench_forward.py [--repeats 200]

Calls the handler directly (no server, no browser): the x_t computation, the uint8 grid, the
PNG for the picture, the histogram and the figures. Target: p95 ≤ 20 ms. Prints p50/p95 in ms.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from app import controls, forward_tab  # noqa: E402

CASES = {
    "MNIST 8×8 grid (64 × 28×28)": ("mnist", None),
    "2D swiss roll (2,000 points)": ("swiss_roll", None),
    "2D checkerboard (2,000 points)": ("checkerboard", None),
}


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def bench(data: str, upload: str | None, repeats: int, T: int) -> tuple[float, float]:
    state = forward_tab.prepare(None, data, upload, None, "linear", T, 0, *controls.default_param_values())
    forward_tab.scrub(state, 1)  # warm-up
    timings = []
    for i in range(repeats):
        t = (i * 37) % (T + 1)  # scattered t values, as when dragging back and forth
        start = time.perf_counter()
        forward_tab.scrub(state, t)
        timings.append((time.perf_counter() - start) * 1e3)
    return percentile(timings, 50), percentile(timings, 95)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--T", type=int, default=1000)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} intra-op threads; scrub handler, {args.repeats} calls")
    for label, (data, upload) in CASES.items():
        p50, p95 = bench(data, upload, args.repeats, args.T)
        print(f"{label:34s} p50 {p50:6.2f} ms   p95 {p95:6.2f} ms   {'ok' if p95 <= 20 else 'OVER 20 ms'}")
    import tempfile

    import numpy as np
    import PIL.Image

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "picture.png"
        PIL.Image.fromarray(np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)).save(path)
        p50, p95 = bench("upload", str(path), args.repeats, args.T)
        label = f"uploaded picture ({forward_tab.images.UPLOAD_SIZE}² RGB)"
        print(f"{label:34s} p50 {p50:6.2f} ms   p95 {p95:6.2f} ms   {'ok' if p95 <= 20 else 'OVER 20 ms'}")


if __name__ == "__main__":
    main()
