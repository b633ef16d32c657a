"""torch's threads in the app's server: a Generate and a training run under torch's defaults and under the app's
policy (`app.torch_threads`), each in a fresh process, measured in the same run.

    python bench/bench_threads.py [--seconds 6] [--repeats 3] [--steps-2d 1000]

Each process first computes the Forward tab's first views in its main thread, as `python app.py` does, then, as the
server would, in threads of its own:

- a Generate's sampling (`app.reverse_tab.sample_chain`): the shipped `swiss_roll_linear` (``--steps-2d`` DDPM
  steps, by default all 1,000, 1,500 points) and `mnist` (DDIM-50, 16 samples), the best of ``--repeats``;
- a Train tab run (`core.trainer.Trainer`, as `app.train_worker` runs it) for ``--seconds`` (2 steps at least):
  the 2D MLP on the swiss roll (batch 512) and the `small` U-Net on MNIST (batch 64), in optimiser steps per second.

"torch" leaves every thread on torch's own count (all the cores); "app" is what `python app.py` does: one core per
thread of the server (`one_core_per_request`), all of them for a run's thread (`all_cores_for_this_thread`). Prints
each figure with the app's ratio to torch's defaults.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

POLICIES = ("torch", "app")


def in_a_thread(fn):
    """``fn()`` run in a new thread (as a Gradio worker or a training run runs it); its result, or its error."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn).result()


def sampling_seconds(name: str, repeats: int, **options) -> float:
    from app import reverse_tab
    from app.checkpoint_access import CACHE

    checkpoint = CACHE.get((REPO / "checkpoints" / name).resolve())
    seconds = []
    for _ in range(repeats + 1):  # the first one warms up
        start = time.perf_counter()
        reverse_tab.sample_chain(checkpoint, variance="small", eta=0.0, seed=0, **options)
        seconds.append(time.perf_counter() - start)
    return min(seconds[1:])


def training_steps_per_second(data: str, seconds: float, app_policy: bool) -> float:
    from app import torch_threads
    from core.datasets import load_training_data
    from core.presets import new_model
    from core.schedules import make_schedule
    from core.trainer import TrainConfig, Trainer

    if app_policy:
        torch_threads.all_cores_for_this_thread()
    if data == "mnist":
        x, _ = load_training_data("mnist", n_points=2048, seed=0)
        model, batch = new_model("small", (1, 28, 28)), 64
    else:
        x, _ = load_training_data(data, seed=0)
        model, batch = new_model("mlp", (2,)), 512
    trainer = Trainer(model, make_schedule("linear", 1000), x, TrainConfig(steps=10**6, batch_size=batch, log_every=1))
    marks = []  # (time, steps done) at the end of each step, from the first one's (its warm-up left out)
    for _ in trainer.run():
        marks.append((time.perf_counter(), trainer.step))
        if len(marks) > 2 and marks[-1][0] - marks[0][0] >= seconds:
            trainer.stop()
    (start, first), (end, last) = marks[0], marks[-1]
    return (last - first) / (end - start)


def measure(policy: str, seconds: float, repeats: int, steps_2d: int) -> dict:
    """One process's figures under ``policy``."""
    from app import controls, forward_tab, torch_threads

    if policy == "app":
        torch_threads.one_core_per_request()
    state = forward_tab.prepare(None, "mnist", None, None, "linear", 1000, 0, *controls.default_param_values())
    forward_tab.scrub(state, 500)  # the main thread's own torch work, as the app's first views
    return {
        "generate 2D (s)": in_a_thread(lambda: sampling_seconds(
            "swiss_roll_linear", repeats, method="ddpm", steps=steps_2d, n=1500)),
        "generate MNIST (s)": in_a_thread(lambda: sampling_seconds(
            "mnist", repeats, method="ddim", steps=50, n=16)),
        "train 2D (steps/s)": in_a_thread(lambda: training_steps_per_second("swiss_roll", seconds, policy == "app")),
        "train MNIST (steps/s)": in_a_thread(lambda: training_steps_per_second("mnist", seconds, policy == "app")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="of each training run")
    parser.add_argument("--repeats", type=int, default=3, help="Generates of each model (the best is kept)")
    parser.add_argument("--steps-2d", type=int, default=1000, help="DDPM steps of the 2D Generate")
    parser.add_argument("--policy", choices=POLICIES, help=argparse.SUPPRESS)  # one process's part
    args = parser.parse_args()
    if args.policy:
        print(json.dumps(measure(args.policy, args.seconds, args.repeats, args.steps_2d)))
        return
    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads by default; each policy in a fresh process")
    results = {}
    for policy in POLICIES:
        done = subprocess.run([sys.executable, __file__, "--policy", policy, "--seconds", str(args.seconds),
                               "--repeats", str(args.repeats), "--steps-2d", str(args.steps_2d)],
                              capture_output=True, text=True, check=True)
        results[policy] = json.loads(done.stdout.strip().splitlines()[-1])
    for name, ours in results["app"].items():
        theirs = results["torch"][name]
        print(f"{name:24s} torch's defaults {theirs:9.4g}   the app's {ours:9.4g}   ratio {ours / theirs:.2f}×")


if __name__ == "__main__":
    main()
