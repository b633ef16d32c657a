"""The quick benchmark scripts still run against the app's current handlers (`bench/`), with a few repeats.

They call the tab handlers directly, so a handler that gains an input breaks them without breaking the app; two had
done so unnoticed (the Forward tab's own points, the Schedules tab's loss weighting).
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def run_main(script: str, argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> str:
    spec = importlib.util.spec_from_file_location(script, BENCH / f"{script}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(sys, "argv", [script, *argv])
    module.main()
    return capsys.readouterr().out


def timings(out: str, label: str) -> list[float]:
    """The p50 and p95 figures printed on each line of a bench's output (ms)."""
    figures = [float(value) for line in out.splitlines() for value in re.findall(rf"{label} +([\d.]+) ms", line)]
    assert figures, f"no '{label} … ms' figure in:\n{out}"
    return figures


def test_bench_forward_times_every_data_kind(monkeypatch, capsys) -> None:
    out = run_main("bench_forward", ["--repeats", "4"], monkeypatch, capsys)
    for label in ("MNIST", "swiss roll", "checkerboard", "uploaded picture"):
        assert label in out, out
    assert len(timings(out, "p95")) == 4 and all(value > 0 for value in timings(out, "p50")), out


def test_bench_schedules_times_every_case(monkeypatch, capsys) -> None:
    out = run_main("bench_schedules", ["--repeats", "3"], monkeypatch, capsys)
    assert len(timings(out, "redraw p50")) == 4 and all(value > 0 for value in timings(out, "p95")), out


def test_bench_payload_measures_every_action_against_plotly_io(monkeypatch, capsys) -> None:
    out = run_main("bench_payload", [], monkeypatch, capsys)
    rows = [line.rsplit(None, 3) for line in out.splitlines()[1:]]
    assert [label.split(":")[0] for label, *_ in rows] == ["Forward"] * 4 + ["Schedules"] * 2 + ["Train"] * 2, out
    for label, ours, theirs, ratio in rows:
        assert 0 < float(ours) < float(theirs), label
        assert float(ratio) == pytest.approx(float(ours) / float(theirs), abs=0.01), label


def test_bench_training_share_measures_each_phase(monkeypatch, capsys) -> None:
    out = run_main("bench_training_share", ["--seconds", "0.5", "--data", "swiss_roll"], monkeypatch, capsys)
    lines = {line[:32].strip(): line[32:] for line in out.splitlines()[1:]}
    assert list(lines) == ["no training", "training at nice 0", "training at nice 10", "training at nice 10, alone"]
    for name, line in lines.items():
        figures = dict(re.findall(r"([a-z/ 0-9]+?) ([\d.]+)(?: \(|,|$)", line))
        expected = {"train steps/s"} if "alone" in name else {"scrub p50", "browser loops/s"}
        assert expected <= {key.strip() for key in figures}, (name, line)
        assert all(float(value) > 0 for value in figures.values()), (name, line)


def test_bench_threads_measures_each_figure_under_both_policies(monkeypatch, capsys, shared_data) -> None:
    monkeypatch.setenv("DDPM_DATA_DIR", str(shared_data))  # MNIST's training images, in each policy's process
    out = run_main("bench_threads", ["--seconds", "0.3", "--repeats", "1", "--steps-2d", "20"], monkeypatch, capsys)
    rows = re.findall(r"^(.+?) +torch's defaults +([\d.]+) +the app's +([\d.]+) +ratio ([\d.]+)×$", out, re.M)
    assert [name for name, *_ in rows] == ["generate 2D (s)", "generate MNIST (s)", "train 2D (steps/s)",
                                           "train MNIST (steps/s)"], out
    for name, theirs, ours, ratio in rows:
        assert float(theirs) > 0 and float(ours) > 0, name
        assert float(ratio) == pytest.approx(float(ours) / float(theirs), abs=0.006), name


def test_bench_movies_measures_each_movie_before_and_now(monkeypatch, capsys, shared_data) -> None:
    monkeypatch.setenv("DDPM_DATA_DIR", str(shared_data))  # the Forward tab's MNIST digits
    out = run_main("bench_movies", ["--repeats", "1", "--steps-2d", "20"], monkeypatch, capsys)
    pattern = (r"^  wall ([\d.]+) -> ([\d.]+) s \(([\d.]+)x\); CPU ([\d.]+) -> ([\d.]+) s \(([\d.]+)x\); "
               r"the button, when pressed: ([\d.]+) s wall, ([\d.]+) s CPU$")
    rows = re.findall(pattern, out, re.M)
    assert len(rows) == 3 and out.count("Generate, ") == 2 and "Animate, " in out, out
    for before, now, ratio, cpu_before, cpu_now, cpu_ratio, *button in rows:
        assert float(ratio) == pytest.approx(float(now) / float(before), abs=0.02), out  # of figures to 2 decimals
        assert float(cpu_ratio) == pytest.approx(float(cpu_now) / float(cpu_before), abs=0.02), out
        assert float(cpu_now) < float(cpu_before) and all(float(b) > 0 for b in button), out


def test_bench_kept_samples_times_the_second_click_with_one_memo_and_with_two(monkeypatch, capsys) -> None:
    out = run_main("bench_kept_samples", ["--repeats", "1", "--scrub", "20", "--steps", "3"], monkeypatch, capsys)
    before = re.search(r"^one memo \(before\): ([\d.]+) s, kept in 0 of 1$", out, re.M)
    now = re.search(r"^two memos \(now\): ([\d.]+) s, kept in 1 of 1$", out, re.M)
    ratio = re.search(r"^ratio ([\d.]+)x$", out, re.M)
    assert before and now and ratio, out  # the scrub's pictures push the samples out of one memo, not out of two
    assert float(ratio[1]) == pytest.approx(float(now[1]) / float(before[1]), abs=0.05), out  # of times to 3 decimals
