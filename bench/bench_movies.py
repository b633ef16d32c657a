"""A movie's cost on the server: each movie written with its GIF and MP4 (as every Generate, Animate and Play did)
against its sprite sheet alone, the GIF and MP4 written when asked (`app.movie_files`), measured in the same run.

    python bench/bench_movies.py [--repeats 3] [--steps-2d 0]

Calls the handlers as the server would, on one core per thread as `python app.py` runs them on 2 cores:

- Generate (`app.reverse_tab.generate`): the shipped `swiss_roll_linear`, DDPM over all 1,000 steps (or
  ``--steps-2d``), 1,500 points, 80 frames (the tab's defaults); `mnist`, DDIM-50, 16 samples, 51 frames;
- Animate (`app.forward_animation.animate`): 60 frames of the Forward tab's 64 MNIST digits.

"before" is each handler with `movie_files.publish` also writing the GIF and MP4 of the frames it was given, as it
did before (the frames labelled and noted in memory, then written), "now" the handler as it is. Each figure is the
median of ``--repeats`` calls, the two alternating: the call's wall time, and its CPU time (this process's and that
of the ffmpeg it starts). Prints both and now's ratio to before; then the button's own cost, for a movie whose GIF
and MP4 are asked for (`movie_files.write_movie_files`).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
import types
from pathlib import Path
from unittest import mock

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from app import controls, forward_animation, forward_tab, movie_files, player, reverse_tab  # noqa: E402

REQUEST = types.SimpleNamespace(session_hash="bench-movies")


def cpu_seconds() -> float:
    """CPU time of this process and of its children that ended (ffmpeg)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


PUBLISH = movie_files.publish


def publish_with_files(frames, ts, *, export_labels=None, notes=(), export_fps=20, loop=False, **options):
    """`movie_files.publish`, then the GIF and MP4 written from the frames in memory: each movie's work before."""
    page, movie = PUBLISH(frames, ts, export_labels=export_labels, notes=notes, export_fps=export_fps, loop=loop,
                          **options)
    exported = frames if export_labels is None else player.labelled_image_frames(frames, export_labels)
    if notes:
        exported = player.noted_frames(exported, notes)
    gif, mp4 = movie_files.file_paths(movie)
    movie_files.write_gif(exported, gif, fps=export_fps, hold_ms=round(1000 / export_fps) if loop else 1200)
    if mp4 is not None:
        movie_files.write_mp4(exported, mp4, fps=export_fps, hold_frames=0 if loop else 20)
    return page, movie


def cases(steps_2d: int) -> dict:
    checkpoints = REPO / "checkpoints"
    swiss, mnist = str(checkpoints / "swiss_roll_linear"), str(checkpoints / "mnist")
    digits = forward_tab.prepare(None, "mnist", None, None, "linear", 1000, 0, *controls.default_param_values())
    return {
        f"Generate, swiss roll: {steps_2d or 1000:,} DDPM steps, 1,500 points, {min(80, (steps_2d or 1000) + 1)} "
        "frames": lambda: reverse_tab.generate(
            REQUEST, swiss, "ddpm_small", 0.0, steps_2d, 1500, 0, 80, "uniform", False, False, [], progress=None),
        "Generate, MNIST: DDIM-50, 16 samples, 51 frames": lambda: reverse_tab.generate(
            REQUEST, mnist, "ddim", 0.0, 50, 16, 0, 80, "uniform", False, False, [], progress=None),
        "Animate, Forward MNIST: 60 frames of 64 digits": lambda: forward_animation.animate(
            REQUEST, digits, 60, "uniform"),
    }


def measured(call) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), cpu_seconds()
    result = call()
    return time.perf_counter() - wall, cpu_seconds() - cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps-2d", type=int, default=0, help="DDPM steps of the 2D Generate (0: all 1,000)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # as `app.torch_threads.one_core_per_request` runs a request on 2 cores
    print(f"{os.cpu_count()} CPU cores, torch {torch.__version__}, one thread per call, median of {args.repeats}; "
          f"MP4s {'written' if movie_files.has_ffmpeg() else 'not written (no ffmpeg)'}")
    for label, call in cases(args.steps_2d).items():
        call()  # warm up: the checkpoint loaded, the data read
        figures = {"before": [], "now": []}
        movie = None
        for _ in range(args.repeats):
            with mock.patch.object(movie_files, "publish", publish_with_files):
                figures["before"].append(measured(call)[:2])
            wall, cpu, outputs = measured(call)
            figures["now"].append((wall, cpu))
            movie = next(o for o in outputs if isinstance(o, movie_files.Movie))
        before = [statistics.median(f) for f in zip(*figures["before"])]
        now = [statistics.median(f) for f in zip(*figures["now"])]
        asked = measured(lambda: movie_files.write_movie_files(movie))
        print(f"{label}\n  wall {before[0]:.2f} -> {now[0]:.2f} s ({now[0] / before[0]:.2f}x); "
              f"CPU {before[1]:.2f} -> {now[1]:.2f} s ({now[1] / before[1]:.2f}x); "
              f"the button, when pressed: {asked[0]:.2f} s wall, {asked[1]:.2f} s CPU")


if __name__ == "__main__":
    main()
