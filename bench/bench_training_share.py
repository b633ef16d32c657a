"""How much a training run in the app slows the rest of the machine, at the priority the app gives it and at the
default one, measured in the same run.

    python bench/bench_training_share.py [--seconds 8] [--data mnist]

The Train tab trains in a thread of the server, which lowers its own CPU priority (`app.runs.yield_cpu_to_the_pages`:
nice 10). On a lecturer's laptop the browser shares the cores with it, and on a Space every visitor's requests do.
Four phases of ``--seconds`` each, with the same work in each:

- no training: the baseline;
- training at nice 0 (the thread as Python starts it);
- training at nice 10 (as the app trains);
- training at nice 10 with nothing else running: the run's own speed.

In each, a thread of this process scrubs the Forward tab (`app.forward_tab.scrub`, MNIST 8×8, as a visitor's request
would) and `BROWSER_PROCESSES` separate processes at nice 0 spin single-threaded Python loops (a stand-in for the
browser drawing the page). Prints the scrub's median and p95 in ms, the loop's rate and the run's optimiser steps per second, with each
phase's ratios to the baseline. Linux only (per-thread nice values).
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from app import controls, forward_tab, runs  # noqa: E402
from core.datasets import load_training_data  # noqa: E402
from core.mlp import MLPConfig, MLPDenoiser  # noqa: E402
from core.schedules import make_schedule  # noqa: E402
from core.trainer import TrainConfig, Trainer  # noqa: E402
from core.unet import UNet, unet_config  # noqa: E402


BROWSER_PROCESSES = 2  # a browser draws a page in two busy processes at least (the renderer, the GPU/raster one)


def spin(seconds: float, rate: multiprocessing.Value) -> None:
    """The browser's stand-in: pure Python work on one thread (as a page's JavaScript runs), at nice 0; ``rate``: its
    loops per second."""
    loops, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        sum(i * i for i in range(1000))
        loops += 1
    rate.value = loops / seconds


def train(data: str, seconds: float, niceness: int | None, steps_per_second: list[float]) -> None:
    """A Train-tab-like run for ``seconds``; ``niceness`` None leaves the thread's priority as it is."""
    if niceness is not None:
        assert runs.yield_cpu_to_the_pages(niceness), "per-thread nice values need Linux"
    if data == "mnist":
        x, _ = load_training_data("mnist", n_points=2048, seed=0)
        model, batch = UNet(unet_config("small", 28, 1)), 32
    else:
        x, _ = load_training_data(data, seed=0)
        model, batch = MLPDenoiser(MLPConfig()), 512
    trainer = Trainer(model, make_schedule("linear", 1000), x, TrainConfig(steps=10**6, batch_size=batch,
                                                                         max_seconds=seconds, log_every=1))
    start = time.perf_counter()
    for _ in trainer.run():
        pass
    steps_per_second.append(trainer.step / (time.perf_counter() - start))


def phase(data: str, seconds: float, niceness: int | None, *, training: bool, others: bool) -> dict:
    steps_per_second: list[float] = []
    warm_up = min(2.0, seconds)  # past the model's build and the first steps
    trainer = threading.Thread(target=train, args=(data, seconds + warm_up, niceness, steps_per_second))
    if training:
        trainer.start()
        time.sleep(warm_up)
    rates = [multiprocessing.Value("d", 0.0) for _ in range(BROWSER_PROCESSES)]
    spinners = [multiprocessing.Process(target=spin, args=(seconds, rate)) for rate in rates]
    scrubs: list[float] = []
    if others:
        for spinner in spinners:
            spinner.start()
        state = forward_tab.prepare(None, "mnist", None, None, "linear", 1000, 0, *controls.default_param_values())
        end, t = time.perf_counter() + seconds, 0
        while time.perf_counter() < end:
            t = (t + 37) % 1001
            start = time.perf_counter()
            forward_tab.scrub(state, t)
            scrubs.append((time.perf_counter() - start) * 1e3)
            time.sleep(0.03)  # a held arrow key
        for spinner in spinners:
            spinner.join()
    if training:
        trainer.join()
    return {
        "scrub p50": statistics.median(scrubs) if scrubs else None,
        "scrub p95": statistics.quantiles(scrubs, n=20)[-1] if len(scrubs) > 20 else None,
        "browser loops/s": sum(rate.value for rate in rates) if others else None,
        "train steps/s": steps_per_second[0] if steps_per_second else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--data", default="mnist", help="mnist (the small U-Net) or a 2D data set (the MLP)")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} intra-op threads, {args.data}, "
          f"{args.seconds:g} s per phase; training at nice {runs.TRAINING_NICENESS} is what the app does")
    results = {
        "no training": phase(args.data, args.seconds, None, training=False, others=True),
        "training at nice 0": phase(args.data, args.seconds, 0, training=True, others=True),
        f"training at nice {runs.TRAINING_NICENESS}": phase(args.data, args.seconds, runs.TRAINING_NICENESS,
                                                            training=True, others=True),
        f"training at nice {runs.TRAINING_NICENESS}, alone": phase(args.data, args.seconds, runs.TRAINING_NICENESS,
                                                                   training=True, others=False),
    }
    alone = results[f"training at nice {runs.TRAINING_NICENESS}, alone"]
    base = {**results["no training"], "train steps/s": alone["train steps/s"]}  # the run's ratio: to itself alone
    for name, figures in results.items():
        cells = []
        for key, value in figures.items():
            if value is None:
                continue
            ratio = f" ({value / base[key]:.2f}×)" if base[key] and figures is not alone else ""
            cells.append(f"{key} {value:.1f}{ratio}")
        print(f"{name:32s} " + ", ".join(cells))


if __name__ == "__main__":
    main()
