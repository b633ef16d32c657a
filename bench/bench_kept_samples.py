"""A second guidance click after a scrub: the unguided samples kept from the first click (two memos, `app.memo`'s
PICTURES and SAMPLES) against sampled again (one memo for both, as before, where the scrub's pictures pushed them out),
measured in the same run.

    python bench/bench_kept_samples.py [--repeats 3] [--scrub 20] [--steps 0]

Calls the handlers as the server would, one thread per call (as `python app.py` runs them on 2 cores):
1. **Sample with and without guidance** (`app.guidance_panel.guide`) on the shipped `eight_gaussians`, towards
   0° at s = 1: DDPM over all 1,000 steps (or ``--steps``), 1,000 points (the panel's defaults);
2. ``--scrub`` keys on the step anatomy's t (`app.step_anatomy.show_step`, the shipped `swiss_roll_linear`): each
   draws new panels, as a scrub of the Forward tab, of another user, would;
3. the same click at s = 3, timed. Its unguided half (half its sampling) is the first click's, if it was kept.

"before" runs this with one memo for pictures and samples, "now" with the two; each a fresh memo, alternating.
Prints the median wall time of the second click, whether it was kept, and now's ratio to before.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from unittest import mock

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from app import guidance_panel, memo, step_anatomy  # noqa: E402

GUIDED = str(REPO / "checkpoints" / "eight_gaussians")
SCRUBBED = str(REPO / "checkpoints" / "swiss_roll_linear")
TOWARDS = "0° (right)"


def second_click(scrub: int, steps: int, shared: bool) -> tuple[float, bool]:
    """(the second click's wall seconds, whether its unguided samples were kept), with fresh memos."""
    pictures = memo.Memo(16)
    with mock.patch.object(memo, "PICTURES", pictures), \
            mock.patch.object(memo, "SAMPLES", pictures if shared else memo.Memo(16)):
        sampler = "ddpm_small" if steps == 0 else "ddim"
        click = (GUIDED, sampler, 0.0, steps, "uniform", 1000, 0, [], TOWARDS)
        guidance_panel.guide(*click, 1.0, progress=lambda *a, **k: None)
        for t in range(500, 500 + scrub):
            step_anatomy.show_step(SCRUBBED, t, "ddpm_small", 0.0, 0, "uniform", 0, False, [])
        start = time.perf_counter()
        _, stats = guidance_panel.guide(*click, 3.0, progress=lambda *a, **k: None)
        return time.perf_counter() - start, "unguided kept from an earlier click" in stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scrub", type=int, default=20, help="keys on the step anatomy's t between the clicks")
    parser.add_argument("--steps", type=int, default=0, help="DDIM steps of the guided sampler (0: DDPM, all 1,000)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # as `app.torch_threads.one_core_per_request` runs a request on 2 cores
    print(f"{os.cpu_count()} CPU cores, torch {torch.__version__}, one thread per call, median of {args.repeats}; "
          f"the second click after {args.scrub} anatomy keys")
    runs: dict[bool, list[tuple[float, bool]]] = {True: [], False: []}
    for _ in range(args.repeats):
        for shared in (True, False):
            runs[shared].append(second_click(args.scrub, args.steps, shared))
    before, now = (statistics.median(s for s, _ in runs[shared]) for shared in (True, False))
    kept_before, kept_now = (sum(kept for _, kept in runs[shared]) for shared in (True, False))
    print(f"one memo (before): {before:.3f} s, kept in {kept_before} of {args.repeats}")
    print(f"two memos (now): {now:.3f} s, kept in {kept_now} of {args.repeats}")
    print(f"ratio {now / before:.2f}x")


if __name__ == "__main__":
    main()
