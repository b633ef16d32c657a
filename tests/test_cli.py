"""Command-line entry points: train → sample → evaluate, and one-line errors for bad flags."""

from __future__ import annotations

import importlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from core.cli import check_writable_parent
from core.checkpoints import list_checkpoints, load_checkpoint, null_label_share, training_history
from core.conditioning import NULL_NEVER_TRAINED
from core.data import make_toy2d
from core.datasets import load_training_data, training_examples
from core.trainer import SHORTEST_KEPT
from tests.conftest import REPO


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
    )


def test_train_sample_evaluate_2d(tmp_path) -> None:
    out = tmp_path / "ck"
    r = run("core.train", "--data", "moons", "--T", "100", "--steps", "150", "--batch", "128", "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    assert "sliced-Wasserstein ratio" in r.stderr and (out / "model.safetensors").is_file()
    config = json.loads((out / "config.json").read_text())
    assert config["training"]["steps_done"] == 150 and config["schedule"]["T"] == 100
    assert config["training"]["min_snr_gamma"] == 0.0, "2D runs train on plain L_simple by default"
    assert "sliced_wasserstein_ratio_ddpm" in config["metrics"]

    r = run("core.sample", "--ckpt", str(out), "--n", "300", "--method", "ddim", "--steps", "20", "--seed", "3", "--out", str(tmp_path / "s.npy"))
    assert r.returncode == 0, r.stderr
    samples = np.load(tmp_path / "s.npy")
    assert samples.shape == (300, 2) and np.isfinite(samples).all()
    r = run("core.sample", "--ckpt", str(out), "--n", "300", "--method", "ddim", "--steps", "20", "--seed", "3", "--out", str(tmp_path / "s2.NPY"))
    assert r.stderr.strip().endswith(f"wrote 300 samples to {tmp_path / 's2.NPY'}")  # that very file, not s2.NPY.npy
    assert np.array_equal(np.load(tmp_path / "s2.NPY"), samples), "same seed, same samples"
    r = run("core.sample", "--ckpt", str(out), "--n", "100", "--out", str(tmp_path / "s.png"))
    assert r.returncode == 0 and Image.open(tmp_path / "s.png").size == (512, 512)
    r = run("core.sample", "--ckpt", str(out), "--n", "300", "--method", "ddim", "--steps", "20", "--seed", "3",
            "--spacing", "log_snr", "--out", str(tmp_path / "s3.npy"))
    assert r.returncode == 0, r.stderr
    assert not np.allclose(np.load(tmp_path / "s3.npy"), samples), "log-SNR spacing visits other timesteps"

    # joined at t0 = 3 from 300 moons points (drawn with the seed), the samples come back to them
    r = run("core.sample", "--ckpt", str(out), "--n", "300", "--seed", "3", "--start-t", "3", "--out", str(tmp_path / "j.npy"))
    assert r.returncode == 0, r.stderr
    ratio = float(r.stderr.split("return ratio ")[1].split()[0])
    assert ratio < 0.1, r.stderr
    joined, examples = np.load(tmp_path / "j.npy"), make_toy2d("moons", 300, seed=3).numpy()  # toys: data = model units
    assert joined.shape == (300, 2) and np.median(np.linalg.norm(joined - examples, axis=1)) < 0.3
    r = run("core.sample", "--ckpt", str(out), "--start-t", "101", "--out", str(tmp_path / "j.npy"))
    assert r.returncode != 0 and r.stderr.strip() == "python -m core.sample: error: --start-t must be between 1 and T = 100, got 101"

    # inpainting: the same 300 points, each one's x kept and its y drawn (two resampling rounds per step)
    r = run("core.sample", "--ckpt", str(out), "--n", "300", "--seed", "3", "--steps", "20", "--inpaint", "x",
            "--resample", "2", "--jump", "5", "--out", str(tmp_path / "i.npy"))
    assert r.returncode == 0, r.stderr
    assert "inpainted 300 training examples with 2 resampling rounds per step, each going back 5 steps" in r.stderr
    filled = np.load(tmp_path / "i.npy")
    assert np.allclose(filled[:, 0], examples[:, 0], atol=1e-6) and not np.allclose(filled[:, 1], examples[:, 1])
    for flags, message in ((["--resample", "3"], "--resample needs --inpaint"), (["--jump", "3"], "--jump needs --inpaint"),
                           (["--inpaint", "x", "--resample", "2", "--jump", "0"], "jump length must be a whole number"),
                           (["--inpaint", "left"], "--inpaint for this model must be one of x, y; got 'left'"),
                           (["--inpaint", "y", "--start-t", "5"], "--inpaint and --start-t cannot be combined")):
        r = run("core.sample", "--ckpt", str(out), *flags, "--out", str(tmp_path / "i.npy"))
        assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1 and message in r.stderr, r.stderr

    r = run("core.evaluate", "--ckpt", str(out), "--n", "200", "--sampler", "ddim:10", "--sampler", "ddpm:10:log_snr",
            "--nll", "--real-data")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["data"] == "moons" and report["ddim-10"]["sliced_wasserstein_ratio"] > 0
    real = report["real_data"]  # the data itself scored the same way: the SW ratio's noise at n = 200
    assert real["n"] == 200 and real["draws"] == len(real["sliced_wasserstein_ratio"]["values"]) == 8
    assert 0.3 < real["sliced_wasserstein_ratio"]["min"] < real["sliced_wasserstein_ratio"]["max"] < 3
    assert report["ddpm-10-log_snr"]["sliced_wasserstein_ratio"] > 0
    bound = report["variational_bound"]
    assert bound["n"] == 200 and bound["timesteps_measured"] == 99  # all T − 1 terms of a 2D model
    for variance in ("small", "large"):
        terms = bound[variance]
        assert abs(terms["prior"] + terms["diffusion"] + terms["decoder"] - terms["nats_per_dim"]) < 1e-3
        assert abs(terms["bits_per_dim"] - terms["nats_per_dim"] / math.log(2)) < 1e-3


def test_a_model_of_csv_points_keeps_them_and_is_measured_against_them(tmp_path) -> None:
    points = np.random.default_rng(0).normal([5.0, -3.0], [2.0, 0.5], (400, 2))
    np.savetxt(tmp_path / "blob.csv", points, delimiter=",", header="x,y", comments="")
    out = tmp_path / "ck"
    r = run("core.train", "--data", str(tmp_path / "blob.csv"), "--T", "50", "--steps", "150", "--batch", "128",
            "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["metrics"]["sliced_wasserstein_ratio_ddpm"] > 0, "measured against the file's points"
    stored = load_file(out / "data.safetensors")["points"]
    assert stored.shape == (400, 2) and abs(float(stored.mean())) < 1e-5, "the points, in model coordinates"
    (tmp_path / "blob.csv").unlink()  # the checkpoint alone measures its samples
    r = run("core.evaluate", "--ckpt", str(out), "--n", "200", "--sampler", "ddpm:20")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["ddpm-20"]["sliced_wasserstein_ratio"] > 0


def test_a_diverging_run_fails_in_one_line_and_keeps_its_last_good_weights(tmp_path) -> None:
    out = tmp_path / "ck"
    r = run("core.train", "--data", "moons", "--T", "100", "--steps", "300", "--lr", "1000", "--out", str(out), "--quiet")
    assert r.returncode == 1
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("python -m core.train: error: training diverged at step 2: ") and str(out) in last, r.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["training"]["end_reason"] == "diverged" and config["training"]["steps_done"] == 1
    assert all(torch.isfinite(w).all() for w in load_file(out / "model.safetensors").values())


def test_ctrl_c_early_in_an_overwrite_leaves_the_checkpoint_as_it_was(tmp_path, monkeypatch, capsys) -> None:
    """Ctrl-C in the first moments of `--overwrite` put a model of 0 or 7 steps in place of a trained one. Cut short
    before `SHORTEST_KEPT` steps, a run now leaves the checkpoint there; a diverged one too."""
    import core.train

    out = tmp_path / "ck"
    assert core.train.main(["--data", "moons", "--T", "50", "--steps", "20", "--out", str(out), "--quiet",
                            "--no-eval"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real_run = core.train.Trainer.run

    def interrupted(self):
        for event in real_run(self):
            yield event
            if self.step >= 10:
                raise KeyboardInterrupt

    monkeypatch.setattr(core.train.Trainer, "run", interrupted)
    capsys.readouterr()
    args = ["--data", "moons", "--T", "50", "--steps", "3000", "--seed", "3", "--out", str(out), "--quiet", "--overwrite"]
    assert core.train.main(args) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"stopped by Ctrl-C after 10 of 3,000 steps; {out} is left as it was (a run cut short replaces a checkpoint "
        f"from {SHORTEST_KEPT} steps on)")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    monkeypatch.setattr(core.train.Trainer, "run", real_run)
    r = run("core.train", "--data", "moons", "--T", "100", "--steps", "300", "--lr", "1000", "--out", str(out),
            "--quiet", "--overwrite")
    assert r.returncode == 1 and r.stderr.strip().splitlines()[-1].endswith(f"{out} is left as it was (a run cut "
                                                                            f"short replaces a checkpoint from 100 "
                                                                            "steps on)"), r.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_ctrl_c_saves_the_run_at_once_and_says_it_was_cut_short(tmp_path, monkeypatch, capsys) -> None:
    """No quality check after Ctrl-C (about 10 s of sampling, which a second Ctrl-C would end, losing the run)."""
    import core.train

    real_run = core.train.Trainer.run

    def interrupted(self):
        for event in real_run(self):
            yield event
            if self.step >= 10:  # events come every 10 steps
                raise KeyboardInterrupt

    monkeypatch.setattr(core.train.Trainer, "run", interrupted)
    out = tmp_path / "ck"
    # saved, with status 130: a script's `train && sample` went on with the unfinished model (status 0)
    assert core.train.main(["--data", "moons", "--T", "50", "--steps", "300", "--out", str(out), "--quiet"]) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"saved {out} (stopped by Ctrl-C after 10 of 300 steps)"
    config = json.loads((out / "config.json").read_text())
    assert config["training"]["end_reason"] == "stopped" and config["training"]["steps_done"] == 10
    assert config["training"]["seconds"] > 0 and config["metrics"] == {}


def test_ctrl_c_after_an_unread_divergence_saves_the_last_good_weights_as_diverged(tmp_path, monkeypatch,
                                                                                   capsys) -> None:
    """Steps since the last report are read before the save: they had been saved as learnt, the run as "stopped"."""
    import core.train

    real_run = core.train.Trainer.run

    def diverged_then_interrupted(self):
        for event in real_run(self):
            yield event
            if self.step >= 10:
                self.data[:] = float("nan")
                for _ in range(3):  # steps 11..13, diverged, their losses not read yet
                    self.train_step()
                raise KeyboardInterrupt

    monkeypatch.setattr(core.train.Trainer, "run", diverged_then_interrupted)
    out = tmp_path / "ck"
    with pytest.raises(SystemExit) as ended:
        core.train.main(["--data", "moons", "--T", "50", "--steps", "300", "--out", str(out), "--quiet"])
    assert ended.value.code == 1
    assert "training diverged at step 11" in capsys.readouterr().err
    config = json.loads((out / "config.json").read_text())
    assert config["training"]["end_reason"] == "diverged" and config["training"]["steps_done"] == 10


def test_an_out_folder_that_came_into_being_during_the_run_is_left_and_the_run_saved_beside_it(tmp_path, monkeypatch,
                                                                                               capsys) -> None:
    """Two runs started with one --out: the second trained to the end, then lost its run to a FileExistsError."""
    import core.train

    out = tmp_path / "same"
    real_run = core.train.Trainer.run

    def the_other_run_saves_first(self):
        yield from real_run(self)
        out.mkdir()
        (out / "config.json").write_text("{}")
    monkeypatch.setattr(core.train.Trainer, "run", the_other_run_saves_first)
    assert core.train.main(["--data", "moons", "--T", "50", "--steps", "20", "--out", str(out), "--quiet",
                            "--no-eval"]) == 0
    err = capsys.readouterr().err
    assert f"{out} came into being while this run trained: saving it in {out}-2 instead" in err
    assert err.strip().splitlines()[-1] == f"saved {out}-2"
    assert (out / "config.json").read_text() == "{}"  # the other run's, left alone
    assert json.loads((tmp_path / "same-2" / "config.json").read_text())["training"]["steps_done"] == 20


def test_ctrl_c_during_the_check_after_training_saves_the_finished_run(tmp_path, monkeypatch, capsys) -> None:
    """The sliced-Wasserstein check after a 2D run samples for seconds, silently: a Ctrl-C there (as at a command that
    seems hung) printed "interrupted (Ctrl-C); nothing was written" and lost the finished run."""
    import core.train

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(core.train, "sample", interrupted)
    out = tmp_path / "ck"
    assert core.train.main(["--data", "moons", "--T", "50", "--steps", "20", "--out", str(out), "--quiet"]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-3:] == ["measuring the sliced-Wasserstein ratio (DDPM-50, 2000 samples; Ctrl-C skips it)…",
                        "skipped (Ctrl-C); saving the trained model", f"saved {out}"], err
    config = json.loads((out / "config.json").read_text())
    assert config["training"]["end_reason"] == "finished" and config["training"]["steps_done"] == 20
    assert config["metrics"] == {}


def test_the_check_after_training_on_one_point_says_it_is_not_defined(tmp_path, capsys) -> None:
    """The sliced-Wasserstein ratio of a one-point set divides by 0 (every draw of the data is that point): the run
    had printed "sliced-Wasserstein ratio: nan"."""
    import core.train

    out = tmp_path / "one"
    assert core.train.main(["--data", "moons", "--n-points", "1", "--T", "50", "--steps", "5", "--out", str(out),
                            "--quiet"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-2:] == ["sliced-Wasserstein ratio: not defined (the data is a single point)", f"saved {out}"], err
    assert json.loads((out / "config.json").read_text())["metrics"] == {"sliced_wasserstein_ratio_ddpm": None}


def test_a_run_that_cannot_be_saved_is_saved_in_the_temporary_folder_or_said_lost(tmp_path, monkeypatch, capsys):
    """A full disk at the save had ended the run in a traceback (safetensors' own error), the trained model lost. The
    run is now saved in the temporary folder (often another disk), and one line says where; when that fails too,
    the line says that the model is lost."""
    import tempfile

    import core.train

    real_save = core.train.save_checkpoint
    full = tmp_path / "full"

    def full_disk(directory, *args, **kwargs):
        if Path(directory).parent == full or full_disk.everywhere:
            raise OSError(28, "No space left on device")
        return real_save(directory, *args, **kwargs)

    full_disk.everywhere = False
    monkeypatch.setattr(core.train, "save_checkpoint", full_disk)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "elsewhere"))
    (tmp_path / "elsewhere").mkdir()
    flags = ["--data", "moons", "--T", "50", "--steps", "5", "--out", str(full / "run"), "--quiet", "--no-eval"]
    with pytest.raises(SystemExit) as ended:
        core.train.main(flags)
    assert ended.value.code == 1
    [saved] = (tmp_path / "elsewhere").glob("run-unsaved-*")
    assert saved.name.startswith("run-unsaved-")
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"python -m core.train: error: could not save {full / 'run'} (No space left on device); the trained model "
        f"is saved in {saved} instead")
    assert json.loads((saved / "config.json").read_text())["training"]["steps_done"] == 5
    with pytest.raises(SystemExit):  # a run that diverged says so, wherever its weights went
        core.train.main([*flags[:-2], "--lr", "1e30", "--steps", "30", "--quiet", "--no-eval"])
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert re.fullmatch(rf"python -m core\.train: error: could not save {re.escape(str(full / 'run'))} \(No space left "
                        r"on device\); training diverged at step \d+\b.*; the weights from before that step are saved "
                        rf"in {re.escape(str(tmp_path / 'elsewhere'))}/run-unsaved-\d{{8}}-\d{{6}}(-2)? instead", last), last
    full_disk.everywhere = True
    with pytest.raises(SystemExit):
        core.train.main(flags)
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert re.fullmatch(rf"python -m core\.train: error: could not save {re.escape(str(full / 'run'))} \(No space left "
                        rf"on device\), nor {re.escape(str(tmp_path / 'elsewhere'))}/run-unsaved-[0-9-]+ \(No space "
                        r"left on device\): the trained model is lost", last), last


def test_a_stop_signal_during_the_save_waits_for_it(tmp_path, monkeypatch, capsys) -> None:
    """A Ctrl-C (or a second one) during the save ended it half-way: 1,500 trained steps were lost, with "nothing was
    written"; with --overwrite, between its two renames, the old checkpoint went too. The save now finishes first."""
    import core.train
    from core.cli import STOP_SIGNALS, _raise_interrupted

    out = tmp_path / "ck"
    assert core.train.main(["--data", "moons", "--T", "50", "--steps", "20", "--out", str(out), "--quiet",
                            "--no-eval"]) == 0
    real_save = core.train.save_checkpoint

    def signalled_save(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)  # handled at once, in the middle of the save
        os.kill(os.getpid(), signal.SIGTERM)
        return real_save(*args, **kwargs)

    monkeypatch.setattr(core.train, "save_checkpoint", signalled_save)
    previous = {signum: signal.signal(signum, _raise_interrupted) for signum in STOP_SIGNALS}  # as `core.cli.run` does
    try:
        status = core.train.main(["--data", "moons", "--T", "50", "--steps", "30", "--out", str(out), "--quiet",
                                  "--no-eval", "--overwrite"])
    except KeyboardInterrupt:
        pytest.fail("the signal cut the save short")
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    assert status == 130
    assert capsys.readouterr().err.strip().splitlines()[-3:] == [
        "python -m core.train: Ctrl-C while saving: the save finishes first",
        "python -m core.train: SIGTERM while saving: the save finishes first", f"saved {out}"]
    assert json.loads((out / "config.json").read_text())["training"]["steps_done"] == 30
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]  # no half-renamed copy left beside it


def test_sigterm_saves_the_run_as_ctrl_c_does(tmp_path) -> None:
    """`kill`, `timeout` or a closed terminal ended a training run at once: no checkpoint, no word, status 143."""
    out = tmp_path / "ck"
    process = subprocess.Popen([sys.executable, "-m", "core.train", "--data", "moons", "--T", "50", "--steps",
                                "1000000", "--out", str(out), "--quiet"],
                               cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stderr.readline().startswith("training on moons")
    time.sleep(1.0)  # a hundred steps or more
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    last = err.strip().splitlines()[-1]
    assert process.returncode == 130 and re.fullmatch(rf"saved {re.escape(str(out))} \(stopped by SIGTERM after "
                                                      r"[\d,]+ of 1,000,000 steps\)", last), err
    assert json.loads((out / "config.json").read_text())["training"]["end_reason"] == "stopped"


@pytest.mark.skipif(sys.platform != "linux", reason="watches the loading through /proc (Linux)")
@pytest.mark.parametrize("signum, name", [(signal.SIGINT, "Ctrl-C"), (signal.SIGTERM, "SIGTERM")])
def test_ctrl_c_while_a_command_loads_ends_in_one_line(tmp_path, signum, name) -> None:
    """Ctrl-C during the imports (torch: a second or more), before `core.cli.run` starts: one line, status 130. So
    does SIGTERM, which had ended it without a word (status 143)."""
    process = subprocess.Popen([sys.executable, "-m", "core.train", "--data", "moons", "--out", str(tmp_path / "ck")],
                               cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    maps = f"/proc/{process.pid}/maps"
    while process.poll() is None and "libtorch" not in open(maps).read():  # torch's libraries are being loaded
        time.sleep(0.005)
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    assert (process.returncode, err) == (130, f"interrupted ({name}) while loading; nothing was written\n")
    assert not (tmp_path / "ck").exists()


@pytest.mark.parametrize("end, said", [("return 0", ""), ("fail('x', 'diverged; saved')", "x: error: diverged; saved\n")])
def test_a_stop_signal_while_the_command_exits_ends_it_without_a_traceback(end: str, said: str) -> None:
    """A second Ctrl-C as the interpreter shut down (torch's clean-up at exit) printed "Exception ignored in atexit
    callback" and a traceback; after a status or after `fail`'s one line."""
    script = ("import atexit, time\nfrom core.cli import fail, run\n\ndef main():\n    atexit.register(time.sleep, 10)\n"
              f"    print('done', flush=True)\n    {end}\n\nrun(main, 'x')\n")
    process = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    assert process.stdout.readline() == "done\n"
    time.sleep(0.5)  # main has ended: the interpreter runs its exit functions
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert (process.returncode, err) == (130, said)


def test_sample_writes_finished_files_of_numbers_only(tmp_path, monkeypatch, capsys) -> None:
    """A diverged model's samples were written as NaN, with "wrote 4 samples" and status 0; and the file was written
    in place, so that a full disk left half of it where the last good one had been."""
    import core.sample
    from core.checkpoints import save_checkpoint
    from core.data import DataInfo
    from core.mlp import MLPConfig, MLPDenoiser
    from core.schedules import make_schedule

    model = MLPDenoiser(MLPConfig(hidden=16, depth=1, emb_dim=8))
    with torch.no_grad():
        for weight in model.parameters():
            weight.fill_(1e30)  # finite weights whose activations overflow: NaN samples
    broken = save_checkpoint(tmp_path / "nan", model, make_schedule("linear", 50), DataInfo("moons", "2d", (2,)))
    out = tmp_path / "s.npy"
    out.write_bytes(b"the last good samples")
    with pytest.raises(SystemExit) as exited:
        core.sample.main(["--ckpt", str(broken), "--n", "4", "--method", "ddim", "--steps", "3", "--out", str(out)])
    assert exited.value.code == 1 and capsys.readouterr().err.strip() == (
        f"python -m core.sample: error: 4 of 4 samples are not finite numbers (NaN or infinite): {broken} does not "
        "give a usable model (did its training diverge?); nothing was written")

    import core.evaluate

    with pytest.raises(SystemExit) as exited:  # it printed "sliced_wasserstein_ratio": null, with status 0
        core.evaluate.main(["--ckpt", str(broken), "--n", "4", "--sampler", "ddim:3"])
    assert exited.value.code == 1 and capsys.readouterr().err.strip() == (
        f"python -m core.evaluate: error: 4 of 4 samples (ddim:3) are not finite numbers (NaN or infinite): {broken} "
        "does not give a usable model (did its training diverge?)")

    def disk_full(file, array):
        file.write(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(core.sample.np, "save", disk_full)
    args = ["--ckpt", str(REPO / "checkpoints" / "moons"), "--n", "4", "--method", "ddim", "--steps", "3"]
    with pytest.raises(SystemExit):
        core.sample.main([*args, "--out", str(out)])
    assert "cannot write" in capsys.readouterr().err and out.read_bytes() == b"the last good samples"
    monkeypatch.undo()
    assert core.sample.main([*args, "--out", str(out)]) == 0 and np.load(out).shape == (4, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nan", "s.npy"]  # no temporary file left


def test_evaluation_keys_name_their_sampler_both_ways() -> None:
    from core.evaluate import parse_sampler, sampler_key, sampler_of_key

    for text, key in [("ddpm", "ddpm-1000"), ("ddim", "ddim-50"), ("ddim:20", "ddim-20"),
                      ("ddpm:100:log_snr", "ddpm-100-log_snr"), ("ddim:50:uniform", "ddim-50")]:
        assert sampler_key(text, 1000) == key
        assert parse_sampler(sampler_of_key(key))[:2] == (parse_sampler(text)[0], int(key.split("-")[1]))
        assert sampler_key(sampler_of_key(key), 1000) == key
    with pytest.raises(ValueError, match="SPACING"):
        sampler_of_key("ddpm-100-karras")
    for empty in ("ddim:", "ddpm::log_snr"):
        with pytest.raises(ValueError, match="give STEPS after the colon"):
            parse_sampler(empty)


def test_continuing_a_model_with_dropout_is_the_same_run_twice(tmp_path) -> None:
    """The base U-Net's dropout draws from torch's global generator, which only a new model's run had seeded: two
    equal continuations of a base checkpoint had ended 1e-4 apart."""
    import core.train

    images = tmp_path / "images"
    images.mkdir()
    for i in range(4):
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (16, 16), dtype=np.uint8)).save(images / f"{i}.png")
    common = ["--data", str(images), "--image-size", "16", "--channels", "1", "--batch", "2", "--quiet", "--no-eval"]
    assert core.train.main([*common, "--model", "base", "--steps", "2", "--out", str(tmp_path / "base")]) == 0
    for name in ("a", "b"):
        assert core.train.main([*common, "--init-from", str(tmp_path / "base"), "--steps", "2",
                                "--out", str(tmp_path / name)]) == 0
    a, b = (load_file(str(tmp_path / name / "model.safetensors")) for name in ("a", "b"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_evaluate_from_python_checks_n_and_takes_one_sampler_label() -> None:
    """As the CLI: n = 1 had given an SW ratio (0.26) that means nothing; a label alone had been read letter by
    letter ("sampler 'd': use ddpm or ddim")."""
    from core.evaluate import evaluate

    ckpt = load_checkpoint(REPO / "checkpoints" / "moons")
    for n in (1, 0, 2.5):
        with pytest.raises(ValueError, match="at least 2 to compare with the data"):
            evaluate(ckpt, n=n, samplers=["ddim:5"], seed=0)
    result = evaluate(ckpt, n=64, samplers="ddim:5", seed=0)
    assert list(result) == ["ddim-5"] and result["ddim-5"]["n"] == 64


def test_init_from_continues_a_checkpoint(tmp_path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    r = run("core.train", "--data", "moons", "--T", "100", "--steps", "60", "--batch", "64", "--out", str(first),
            "--quiet", "--no-eval")
    assert r.returncode == 0, r.stderr
    # One step at a negligible learning rate: the EMA (which the checkpoint saves) must stay on the loaded weights.
    r = run("core.train", "--data", "moons", "--init-from", str(first), "--steps", "1", "--lr", "1e-12",
            "--min-snr", "2.5", "--out", str(second), "--quiet", "--no-eval")
    assert r.returncode == 0, r.stderr
    config = json.loads((second / "config.json").read_text())
    assert config["schedule"]["T"] == 100, "the schedule comes from the checkpoint"
    assert config["training"]["model"] == "mlp" and config["training"]["steps_done"] == 1
    assert config["training"]["min_snr_gamma"] == 2.5
    [earlier] = config["training"]["previous_runs"]
    assert earlier["steps_done"] == 60 and "--out " + str(first) in earlier["command"]
    # its warm-up that of the app's run of 60 steps (6, not 100), kept in the record; its draws seeded apart
    assert (earlier["warmup_steps"], earlier["seed"], config["training"]["steps_before"]) == (6, 0, 60)
    before, after = load_file(str(first / "model.safetensors")), load_file(str(second / "model.safetensors"))
    assert before.keys() == after.keys()
    assert all(torch.allclose(before[k], after[k], atol=1e-6) for k in before)
    r = run("core.train", "--data", "moons", "--init-from", str(second), "--steps", "1", "--lr", "1e-12",
            "--out", str(tmp_path / "third"), "--quiet", "--no-eval")  # its γ, 2.5, goes on (not the 2D default, 0: said)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "third" / "config.json").read_text())["training"]["min_snr_gamma"] == 2.5
    assert "continuing with the checkpoint's loss weighting, Min-SNR-2.5; --min-snr sets another" in r.stderr
    fresh = tmp_path / "fresh"
    r = run("core.train", "--data", "moons", "--T", "100", "--steps", "1", "--lr", "1e-12", "--out", str(fresh),
            "--quiet", "--no-eval", "--prediction", "v")
    fresh_config = json.loads((fresh / "config.json").read_text())
    assert fresh_config["model"]["prediction"] == "v" and len(fresh_config["training"]["loss_by_t"]) == 20
    r = run("core.train", "--data", "moons", "--init-from", str(fresh), "--steps", "1", "--out", str(tmp_path / "v2"),
            "--quiet", "--no-eval")  # a v model goes on learning v
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "v2" / "config.json").read_text())["training"]["prediction"] == "v"
    assert "loss weighting" not in r.stderr  # γ = 0, the 2D default: nothing to say
    assert not torch.allclose(load_file(str(fresh / "model.safetensors"))["blocks.0.linear.weight"], before["blocks.0.linear.weight"])


def test_init_from_a_toy_set_of_its_own_size_continues_on_that_set(tmp_path) -> None:
    """A checkpoint of 50 swiss-roll points (a memorisation experiment) continued with --init-from went on with 10,000
    points without a word; the app's Start from keeps the set. Now the CLI does too, and says so."""
    first = tmp_path / "fifty"
    r = run("core.train", "--data", "swiss_roll", "--n-points", "50", "--seed", "7", "--T", "100", "--steps", "2",
            "--out", str(first), "--quiet", "--no-eval")
    assert r.returncode == 0, r.stderr
    r = run("core.train", "--data", "swiss_roll", "--init-from", str(first), "--steps", "1", "--out",
            str(tmp_path / "again"), "--quiet", "--no-eval")
    assert r.returncode == 0, r.stderr
    assert ("continuing on the checkpoint's own 50 training points of swiss_roll (drawn again with seed 7); "
            "--n-points sets another size") in r.stderr
    training = json.loads((tmp_path / "again" / "config.json").read_text())["training"]
    assert (training["data_size"], training["seed"]) == (50, 7)
    assert torch.equal(load_file(str(tmp_path / "again" / "data.safetensors"))["points"],
                       load_file(str(first / "data.safetensors"))["points"])  # the very set
    r = run("core.train", "--data", "swiss_roll", "--init-from", str(first), "--seed", "8", "--steps", "1", "--out",
            str(tmp_path / "other"))
    assert r.returncode == 1 and r.stderr.strip().endswith(
        "--seed 8 would draw another set than the 50 training points the checkpoint learnt (seed 7): leave --seed out "
        "to continue on them, or give --n-points to train on a new set")
    r = run("core.train", "--data", "swiss_roll", "--init-from", str(first), "--n-points", "80", "--steps", "1",
            "--out", str(tmp_path / "new set"), "--quiet", "--no-eval")
    assert r.returncode == 0 and "continuing on" not in r.stderr, r.stderr
    assert json.loads((tmp_path / "new set" / "config.json").read_text())["training"]["data_size"] == 80


def test_train_and_sample_images_offline(tmp_path, shared_data, monkeypatch) -> None:
    out = tmp_path / "mnist"
    r = run("core.train", "--data", "mnist", "--model", "tiny", "--T", "50", "--steps", "3", "--batch", "8",
            "--out", str(out), "--quiet", env={"DDPM_DATA_DIR": str(shared_data)})
    assert r.returncode == 0, r.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["training"]["min_snr_gamma"] == 5.0, "images: Min-SNR-5"
    assert config["data"]["source"] == f"{shared_data / 'MNIST' / 'raw'} (test split)", "which split it read"
    assert re.fullmatch(r"CPU \(.*\d+ threads?\)", config["training"]["hardware"]), config["training"]["hardware"]
    monkeypatch.syspath_prepend(str(REPO / "scripts"))
    from model_card import render_card  # the card names the loss weighting

    card = render_card(out, {}, ["python", "-m", "core.evaluate", "--ckpt", str(out)], hardware_note="")
    assert "| Loss | ε-MSE weighted by Min-SNR-5, w_t = min(SNR_t, 5)/SNR_t" in card
    assert "\nA U-Net ε-predictor (" in card  # it said "A UNET", and "A MLP" for the 2D models
    assert f"read from `{shared_data / 'MNIST' / 'raw'} (test split)`" in card
    r = run("core.sample", "--ckpt", str(out), "--n", "4", "--method", "ddim", "--steps", "3", "--out", str(tmp_path / "x.npy"))
    assert r.returncode == 0, r.stderr
    x = np.load(tmp_path / "x.npy")
    assert x.shape == (4, 1, 28, 28) and x.min() >= -1 and x.max() <= 1


def test_model_card_commands_reproduce_the_loss_weighting(monkeypatch) -> None:
    """A card's reproduce command spells out --min-snr where the recorded γ is not today's default for the kind:
    an image run from before Min-SNR existed (no γ recorded) was L_simple."""
    monkeypatch.syspath_prepend(str(REPO / "scripts"))
    from model_card import reproduce_command

    old_image = {"command": "python -m core.train --data mnist --out x"}
    assert reproduce_command(old_image, "image") == "python -m core.train --data mnist --out x --min-snr 0"
    assert reproduce_command({**old_image, "min_snr_gamma": 5.0}, "image") == old_image["command"]
    assert reproduce_command({**old_image, "min_snr_gamma": 2.5}, "image").endswith("--out x --min-snr 2.5")
    explicit = {"command": "python -m core.train --data mnist --min-snr 0 --out x", "min_snr_gamma": 0.0}
    assert reproduce_command(explicit, "image") == explicit["command"]
    assert reproduce_command({"command": "python -m core.train --data moons --out y"}, "2d").endswith("--out y")
    assert reproduce_command({}, "2d") == "(command not recorded)"


def test_a_card_for_a_broken_checkpoint_fails_in_one_line(tmp_path, monkeypatch, capsys) -> None:
    """The evaluation's own error came as a 13-line traceback."""
    monkeypatch.syspath_prepend(str(REPO / "scripts"))
    from model_card import main as model_card

    broken = tmp_path / "moons"
    broken.mkdir()
    (broken / "config.json").write_text((REPO / "checkpoints" / "moons" / "config.json").read_text())
    with pytest.raises(SystemExit) as exited:
        model_card([str(broken), "--n", "16"])
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert exited.value.code == 1 and last.startswith("python scripts/model_card.py: error: python -m core.evaluate ")
    assert last.endswith(f"{broken} is not complete: model.safetensors is missing") and not (broken / "README.md").exists()


def test_a_card_reads_its_figures_against_the_data_itself(monkeypatch) -> None:
    """With `--real-data`, a card adds the data itself as the table's last row (the range of its draws), says what
    that range means, and the index's last column shows the same range; the data is not taken for a sampler."""
    monkeypatch.syspath_prepend(str(REPO / "scripts"))
    from model_card import quality_table, real_data_sentence, real_range, sampler_results

    evaluation = {"checkpoint": "c", "data": "moons", "ddpm-1000": {"sliced_wasserstein_ratio": 1.18, "n": 2000},
                  "real_data": {"n": 2000, "draws": 8, "sliced_wasserstein_ratio": {"min": 0.6708, "max": 1.5023,
                                                                                    "values": [0.6708, 1.5023]}}}
    assert list(sampler_results(evaluation)) == ["ddpm-1000"]
    assert real_range(evaluation) == "0.671–1.502"
    table = quality_table("2d", evaluation)
    assert table[-1] == "| the data itself (8 draws) | 0.671–1.502 | 2000 each | — |"
    assert table[-2].startswith("| DDPM-1000 | 1.180 |")
    assert "gives 0.671–1.502" in real_data_sentence(evaluation)[0]
    images = {"ddim-50": {"fid_ratio": 2.1, "n": 256},
              "real_data": {"n": 256, "draws": 8, "fid_ratio": {"min": 0.914, "max": 2.1976, "values": []}}}
    assert quality_table("image", images)[-1].startswith("| the data itself (8 draws) | 0.914–2.198 |")
    without = {"ddpm-1000": evaluation["ddpm-1000"]}  # a card written without --real-data
    assert real_range(without) is None and real_data_sentence(without) == []
    assert len(quality_table("2d", without)) == 3


def test_every_shipped_card_and_the_index_give_the_data_itself(monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(REPO / "scripts"))
    from model_card import card_evaluation, real_range

    index = (REPO / "checkpoints" / "README.md").read_text()
    for ckpt_dir in list_checkpoints(REPO / "checkpoints"):
        scores = real_range(card_evaluation(ckpt_dir) or {})
        assert scores is not None, f"{ckpt_dir.name}: its card was written without --real-data"
        row = next(line for line in index.splitlines() if line.startswith(f"| [{ckpt_dir.name}]"))
        assert row.endswith(f"| {scores} |"), row


def test_a_rewritten_card_keeps_its_hardware_note(tmp_path, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(REPO / "scripts"))
    from model_card import card_hardware_note

    (tmp_path / "README.md").write_text("| Hardware | CPU (2 threads) — runs of 69 and 75 min; the machine idle |\n")
    assert card_hardware_note(tmp_path) == "runs of 69 and 75 min; the machine idle"
    (tmp_path / "README.md").write_text("| Hardware | CPU (2 threads) |\n")
    assert card_hardware_note(tmp_path) is None
    assert card_hardware_note(tmp_path / "nowhere") is None


def test_the_shipped_conditional_cards_give_their_share_of_null_labels(monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(REPO / "scripts"))
    from model_card import classes_desc

    for name, share in (("mnist_conditional", "79%"), ("eight_gaussians_conditional", "10%")):
        config = json.loads((REPO / "checkpoints" / name / "config.json").read_text())
        row = classes_desc(config, config["data"]["name"])
        assert f"(∅ in {share} of " in row
        assert f"| Classes | {row} |" in (REPO / "checkpoints" / name / "README.md").read_text(), name


@pytest.mark.parametrize(
    "args, message",
    [
        (("core.train", "--data", "banana", "--out", "X"), "unknown data 'banana'"),
        # an empty path was the current folder: searched throughout for images and trained on
        (("core.train", "--data", "", "--out", "X"), "unknown data ''"),
        (("core.train", "--data", "moons", "--data-dir", " ", "--out", "X"), "--data-dir: must name a folder, got an"),
        (("core.download", "mnist", "--data-dir", ""), "--data-dir: must name a folder, got an empty path"),
        # a file: "downloading failed (no internet?)", or "MNIST not found in README.md/MNIST/raw"
        (("core.download", "mnist", "--data-dir", "README.md"), "--data-dir: must name a folder; README.md is a file"),
        (("core.sample", "--ckpt", "checkpoints/mnist", "--start-t", "100", "--data-dir", "README.md", "--out", "a.npy"),
         "--data-dir: must name a folder; README.md is a file"),
        (("core.train", "--data", "moons", "--out", "X", "--T", "1"), "T must be between"),
        (("core.train", "--data", "moons", "--out", "X", "--schedule", "nope"), "invalid choice"),
        (("core.train", "--data", "moons", "--out", "X", "--param", "beta_end=2"), "beta_end must lie in"),
        (("core.train", "--data", "moons", "--out", "X", "--model", "small"), "does not fit"),
        (("core.train", "--data", "moons", "--out", "X", "--steps", "0"), "--steps must be a whole number"),
        (("core.train", "--data", "moons", "--out", "X", "--min-snr", "-1"), "--min-snr must be"),
        (("core.train", "--data", "mnist", "--out", "X"), "MNIST not found"),
        (("core.train", "--data", "moons"), "required: --out"),
        (("core.train", "--data", "moons", "--out", "X", "--init-from", "/nonexistent"), "no checkpoint directory"),
        (("core.train", "--data", "moons", "--out", "X", "--init-from", "/nonexistent", "--T", "50"), "drop --T"),
        (("core.train", "--data", "moons", "--out", "X", "--init-from", "/x", "--prediction", "v"), "drop --prediction"),
        (("core.train", "--data", "moons", "--out", "X", "--prediction", "score"), "invalid choice: 'score'"),
        (("core.train", "--data", "swiss_roll", "--out", "X", "--conditional"), "class labels are known only for"),
        (("core.train", "--data", "moons", "--out", "X", "--conditional", "--p-uncond", "1"), "--p-uncond must lie in"),
        (("core.sample", "--ckpt", "checkpoints/moons", "--guidance", "classifier", "--out", "a.npy"), "--guidance needs --guide"),
        (("core.sample", "--ckpt", "checkpoints/moons", "--guide", "upper moon", "--guidance", "classifier-free",
          "--out", "a.npy"), "classifier-free guidance needs a class-conditional model"),
        (("core.sample", "--ckpt", "/nonexistent", "--out", "a.npy"), "no checkpoint directory"),
        (("core.sample", "--ckpt", "/nonexistent", "--out", "a.txt"), "must end in .npy or .png"),
        (("core.evaluate", "--ckpt", "/nonexistent"), "no checkpoint directory"),
        (("core.evaluate", "--ckpt", "checkpoints/moons", "--sampler", "ddpm:10:karras"), "SPACING must be one of"),
        (("core.evaluate", "--ckpt", "checkpoints/moons", "--sampler", "ddim:5:log_snr:x"), "at most METHOD:STEPS:SPACING"),
        # a seed torch cannot take: "Overflow when unpacking long long"; −1 was taken
        (("core.sample", "--ckpt", "checkpoints/moons", "--seed", "99999999999999999999999", "--out", "a.npy"),
         "argument --seed: must be a whole number from 0 to 2147483647, got 99999999999999999999999"),
        (("core.train", "--data", "moons", "--out", "X", "--seed", "-1"), "--seed: must be a whole number from 0 to"),
        (("core.evaluate", "--ckpt", "checkpoints/moons", "--nll", "--nll-timesteps", "0"), "--nll-timesteps must be at"),
        (("core.evaluate", "--ckpt", "checkpoints/moons", "--n", "0"), "--n must be at least 2, got 0"),
        (("core.train", "--data", "moons", "--out", "X", "--T", "0"), "T must be"),
        (("core.train", "--data", "moons", "--out", "X", "--init-from", "checkpoints/moons", "--T", "0"), "drop --T"),
        (("core.sample", "--ckpt", "checkpoints/moons", "--spacing", "karras", "--out", "a.npy"), "--spacing"),
        # flags that change nothing, taken without a word before
        (("core.sample", "--ckpt", "checkpoints/moons", "--spacing", "log_snr", "--out", "a.npy"),
         "--spacing applies to a chain of fewer steps than T"),
        (("core.evaluate", "--ckpt", "checkpoints/moons", "--data-dir", "X"), "--data-dir applies to image models"),
        (("core.sample", "--ckpt", "checkpoints/moons", "--eta", "0.7", "--out", "a.npy"), "--eta applies to --method ddim"),
        (("core.sample", "--ckpt", "checkpoints/moons", "--method", "ddim", "--variance", "large", "--out", "a.npy"),
         "--variance applies to --method ddpm"),
        (("core.sample", "--ckpt", "checkpoints/moons", "--guidance-scale", "9", "--out", "a.npy"),
         "--guidance-scale needs --guide"),
        (("core.sample", "--ckpt", "checkpoints/mnist", "--data-dir", "X", "--out", "a.npy"),
         "--data-dir applies to --start-t and --inpaint"),
        # the advice for missing data names --data-dir, which core.sample did not have
        (("core.sample", "--ckpt", "checkpoints/mnist", "--start-t", "100", "--data-dir", "X", "--out", "a.npy"),
         "MNIST not found in"),
        (("core.sample", "--ckpt", "checkpoints/moons", "--inpaint", "x", "--jump", "10", "--out", "a.npy"),
         "--jump needs --resample 2 or more"),
        (("core.download", "svhn"), "invalid choice: 'svhn'"),
        (("core.train", "--data", "moons", "--out", "X", "--step", "5"), "unrecognized arguments: --step 5"),
        # an output that cannot be written is refused before the work, which it would otherwise throw away
        (("core.train", "--data", "moons", "--out", "/proc/x/y"), "cannot write /proc/x/y: /proc does not take new"),
        (("core.train", "--data", "moons", "--out", "TMP"), "already exists (use --overwrite to replace it)"),
        (("core.train", "--data", "moons", "--out", "TMP", "--overwrite"), "not a checkpoint (config.json is missing)"),
        (("core.train", "--data", "moons", "--out", ".", "--overwrite"), "must name a new file or folder, not '.'"),
        (("core.sample", "--ckpt", "checkpoints/moons", "--out", "/proc/x.npy"), "cannot write /proc/x.npy"),
        (("core.sample", "--ckpt", "checkpoints/moons", "--out", "DIR.png"), "is a folder; name the file to write"),
        (("core.train", "--data", "moons", "--out", "X", "--max-seconds", "0"), "--max-seconds must be a positive"),
        (("core.train", "--data", "moons", "--out", "X", "--batch", "1000000000"), "--batch must be at most 65,536"),
        (("core.train", "--data", "moons", "--out", "X", "--device", "mps"), "device mps is not supported; use auto"),
        (("core.evaluate", "--ckpt", "checkpoints/moons", "--n", "1000000000"), "--n must be at most 100,000"),
        (("core.evaluate", "--ckpt", "checkpoints/moons", "--nll-timesteps", "4"), "--nll-timesteps is used only with"),
        (("core.train", "--data", "/nonexistent/points.csv", "--out", "X"), "no CSV file at /nonexistent/points.csv"),
        (("core.train", "--data", "mnist", "--out", "X", "--channels", "3"), "--channels applies to a folder of images"),
        # --image-size 0 trained at 32 without a word; 100,000 was killed for its memory (22 GB), without one
        (("core.train", "--data", "TMP", "--out", "X", "--image-size", "0"), "--image-size must be from 1 to 256 pixels"),
        (("core.train", "--data", "TMP", "--out", "X", "--image-size", "100000"), "--image-size must be from 1 to 256"),
        # flags that would change nothing: taken without a word before
        (("core.train", "--data", "moons", "--out", "X", "--p-uncond", "0.5"), "--p-uncond applies to class-conditional"),
        (("core.train", "--data", "mnist", "--out", "X", "--n-points", "100"), "--n-points applies to the 2D toys; mnist"),
    ],
)
def test_bad_flags_fail_in_one_line(tmp_path, monkeypatch, capsys, args, message: str) -> None:
    """Each command's `main` in this process (`python -m` starts each of them in 6 s here; the other tests do that)."""
    (tmp_path / "DIR.png").mkdir()
    named = {"X": tmp_path / "X", "TMP": tmp_path, "DIR.png": tmp_path / "DIR.png"}  # to be made; a folder; a folder
    module, *argv = (str(named.get(a, a)) for a in args)
    monkeypatch.setenv("DDPM_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.chdir(REPO)
    with pytest.raises(SystemExit) as exited:
        importlib.import_module(module).main(argv)
    assert exited.value.code not in (0, None)
    stderr = capsys.readouterr().err
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert message in lines[0]


def test_evaluate_measures_the_bound_of_images_that_no_shipped_classifier_scores(local_data, tmp_path, capsys) -> None:
    """A Fashion-MNIST model was refused whole, --nll too, with advice to train a classifier; a folder's model was told
    the same, though its images have no classes to train one on. Now --nll measures the bound alone."""
    import core.evaluate
    from core.checkpoints import save_checkpoint
    from core.data import DataInfo
    from core.schedules import make_schedule
    from core.unet import UNet, unet_config

    def refused(argv: list[str]) -> str:
        with pytest.raises(SystemExit) as exited:
            core.evaluate.main(argv)
        assert exited.value.code == 1
        return capsys.readouterr().err.strip()

    torch.manual_seed(0)
    fashion = save_checkpoint(tmp_path / "fashion", UNet(unet_config("tiny", 28, 1)), make_schedule("linear", 50),
                              DataInfo("fashion_mnist", "image", (1, 28, 28)))
    assert refused(["--ckpt", str(fashion), "--n", "4"]) == (
        "python -m core.evaluate: error: no classifier is shipped for fashion_mnist (only for mnist) to score its "
        "samples; train one with scripts/train_classifier.py, or measure the variational bound alone with --nll")
    assert refused(["--ckpt", str(fashion), "--n", "4", "--nll", "--sampler", "ddim:3"]).endswith(
        "to score its samples: with --nll, leave out --sampler and --real-data")
    assert core.evaluate.main(["--ckpt", str(fashion), "--n", "4", "--nll", "--nll-timesteps", "3"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["samples"].startswith("not scored: no classifier is shipped for fashion_mnist")
    bound = printed["variational_bound"]
    assert bound["n"] == 4 and bound["timesteps_measured"] == 3
    assert all(math.isfinite(bound[v]["bits_per_dim"]) and bound[v]["bits_per_dim"] > 0 for v in ("small", "large"))

    folder = save_checkpoint(tmp_path / "folder", UNet(unet_config("tiny", 16, 1)), make_schedule("linear", 50),
                             DataInfo("imgs (40 images)", "image", (1, 16, 16), source="/somewhere/imgs"))
    assert refused(["--ckpt", str(folder), "--n", "4", "--nll"]) == (
        "python -m core.evaluate: error: imgs (40 images) is a folder of images without classes: no classifier scores "
        "its samples, and the variational bound (--nll) needs a data set this tool can load by name (mnist, "
        "fashion_mnist, cifar10)")


def test_download_leaves_data_that_is_there_alone(local_data) -> None:
    r = run("core.download", "fashion_mnist", "fashion_mnist")  # $DDPM_DATA_DIR holds it (see local_data)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines() == [f"Fashion-MNIST: already in {os.environ['DDPM_DATA_DIR']}"]


def test_download_tries_every_data_set_and_names_those_that_failed(tmp_path, monkeypatch, capsys) -> None:
    """It stopped at the first data set that failed: CIFAR-10, after Fashion-MNIST, was never tried."""
    import core.download
    from core.image_data import DataUnavailableError

    tried = []

    def load(name, **kwargs):
        tried.append(name)
        if name == "fashion_mnist":
            raise DataUnavailableError("Fashion-MNIST not found; downloading failed (no internet?)")
        return Fetched(f"{kwargs['root']}/cifar-10-batches-py")

    class Fetched:  # a data set fetched: its folder and its length
        def __init__(self, source: str) -> None:
            self.source = source

        def __len__(self) -> int:
            return 60_000

    monkeypatch.setattr(core.download, "load_image_dataset", load)
    monkeypatch.setattr(core.download, "dataset_available", lambda name, root: False)
    with pytest.raises(SystemExit) as exited:
        core.download.main(["fashion_mnist", "cifar10", "--data-dir", str(tmp_path)])
    captured = capsys.readouterr()
    assert exited.value.code == 1 and tried == ["fashion_mnist", "cifar10"]
    assert "Fashion-MNIST: failed: Fashion-MNIST not found; downloading failed (no internet?)" in captured.err
    assert captured.out.strip() == f"CIFAR-10: 60,000 images in {tmp_path}/cifar-10-batches-py"
    assert captured.err.strip().splitlines()[-1] == (
        "python -m core.download: error: 1 of 2 data sets could not be fetched: Fashion-MNIST")


def test_help_documents_every_flag() -> None:
    for module, flags in [("core.train", ["--data", "--schedule", "--T", "--steps", "--batch", "--seed", "--out"]),
                          ("core.sample", ["--ckpt", "--n", "--method", "--steps", "--spacing", "--seed", "--out"]),
                          ("core.download", ["--data-dir", "mnist, fashion_mnist, cifar10"])]:
        r = run(module, "--help")
        assert r.returncode == 0 and all(f in r.stdout for f in flags)


def test_help_prints_on_a_console_that_cannot_write_greek() -> None:
    """Windows' console piped or in Git Bash is cp1252: the β, η and σ of the help had raised UnicodeEncodeError."""
    for module in ("core.train", "core.sample", "core.evaluate"):
        r = subprocess.run([sys.executable, "-m", module, "--help"], cwd=REPO, capture_output=True, timeout=300,
                           env={**os.environ, "PYTHONIOENCODING": "cp1252"})
        assert r.returncode == 0 and b"usage:" in r.stdout and re.search(rb"\\u03[b-c][0-9a-f]", r.stdout), r.stderr


def test_paths_given_with_a_tilde_are_in_the_home_folder(monkeypatch, tmp_path) -> None:
    """cmd never expands ~, nor bash in --out=~/x: a folder named "~" had been made in the current one."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("USERPROFILE", str(tmp_path))  # Windows' home
    import core.sample
    import core.train

    args = core.train.build_parser().parse_args(["--data", "moons", "--out=~/a", "--init-from=~/b"])
    assert (args.out, args.init_from) == (tmp_path / "a", tmp_path / "b")
    args = core.sample.build_parser().parse_args(["--ckpt=~/a", "--out=~/a.npy"])
    assert (args.ckpt, args.out) == (tmp_path / "a", tmp_path / "a.npy")
    assert core.sample.build_parser().parse_args(["--ckpt=~nosuchuser/a", "--out=x.npy"]).ckpt.parts[0] \
        == "~nosuchuser"  # an unknown user's ~ left as it is (pathlib's expanduser raised: a traceback)
    with pytest.raises(ValueError, match="no CSV file at ~nosuchuser/p.csv"):  # --data too
        load_training_data("~nosuchuser/p.csv")


def test_an_output_on_a_missing_drive_is_refused(monkeypatch, capsys, tmp_path) -> None:
    """On Windows E:\\ is its own parent: looking for an existing parent of E:\\runs\\x, with no drive E:, had
    looped for ever."""
    calls = []

    def nothing_exists(path: Path) -> bool:
        calls.append(path)
        assert len(calls) < 100, "still looking"
        return False

    with monkeypatch.context() as patch, pytest.raises(SystemExit):  # pytest itself needs Path.exists after
        patch.setattr(Path, "exists", nothing_exists)
        check_writable_parent("prog", tmp_path / "runs" / "x")
    expected = f"prog: error: cannot write {tmp_path / 'runs' / 'x'}: {Path(tmp_path.anchor)} does not exist"
    assert capsys.readouterr().err.strip() == expected


def test_sampling_guided_towards_a_digit(tmp_path) -> None:
    r = run("core.sample", "--ckpt", "checkpoints/mnist", "--n", "6", "--method", "ddim", "--steps", "10", "--guide", "4",
            "--out", str(tmp_path / "fours.npy"))
    assert r.returncode == 0, r.stderr
    assert np.load(tmp_path / "fours.npy").shape == (6, 1, 28, 28)
    assert "samples read by the shipped classifier as 4" in r.stderr, r.stderr
    read = int(r.stderr.split("(classifier, s = 3): ")[1].split()[0])
    assert read >= 4, r.stderr
    r = run("core.sample", "--ckpt", "checkpoints/eight_gaussians", "--n", "200", "--method", "ddim", "--steps", "20",
            "--guide", "270° (bottom)", "--guidance-scale", "1", "--out", str(tmp_path / "bottom.npy"))
    assert r.returncode == 0, r.stderr
    points = np.load(tmp_path / "bottom.npy")
    assert points.shape == (200, 2) and (points[:, 1] < -1).mean() > 0.98  # the component straight down
    assert int(r.stderr.split("): ")[1].split()[0]) >= 196, r.stderr  # "... of 200 samples lie nearest its centre"
    for flags, message in ((["--ckpt", "checkpoints/swiss_roll_linear", "--guide", "4"],
                            "this model is unconditional, of swiss_roll"),
                           (["--ckpt", "checkpoints/mnist", "--guide", "seven"], "the class to steer towards must be one of 0, 1"),
                           (["--ckpt", "checkpoints/mnist", "--guide", "7", "--guidance-scale", "-1"], "guidance scale")):
        r = run("core.sample", *flags, "--out", str(tmp_path / "x.npy"))
        assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1 and message in r.stderr, r.stderr


def test_a_conditional_model_is_trained_on_labels_and_guided_without_a_classifier(tmp_path) -> None:
    out = tmp_path / "moons"
    r = run("core.train", "--data", "moons", "--T", "100", "--steps", "500", "--batch", "256", "--conditional",
            "--out", str(out), "--quiet", "--no-eval")
    assert r.returncode == 0, r.stderr
    assert "conditional on its 2 classes" in r.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["config"]["num_classes"] == 2 and config["training"]["p_uncond"] == 0.1
    r = run("core.sample", "--ckpt", str(out), "--n", "400", "--method", "ddim", "--steps", "20", "--guide", "lower moon",
            "--guidance-scale", "2", "--out", str(tmp_path / "lower.npy"))
    assert r.returncode == 0, r.stderr
    assert "guided towards lower moon (classifier-free, s = 2): " in r.stderr
    assert int(r.stderr.split("s = 2): ")[1].split()[0]) >= 360, r.stderr  # "... of 400 samples nearest a training point of"
    assert (np.load(tmp_path / "lower.npy")[:, 1] < 0.3).mean() > 0.9  # the lower moon lies below (data coordinates)
    # an unconditional checkpoint made conditional: zero class vectors, so it starts out as it was
    plain, made = tmp_path / "plain", tmp_path / "made"
    assert run("core.train", "--data", "moons", "--T", "100", "--steps", "20", "--out", str(plain), "--quiet",
               "--no-eval").returncode == 0
    r = run("core.train", "--data", "moons", "--init-from", str(plain), "--conditional", "--steps", "1", "--lr", "1e-12",
            "--out", str(made), "--quiet", "--no-eval")
    assert r.returncode == 0, r.stderr
    before, after = load_file(str(plain / "model.safetensors")), load_file(str(made / "model.safetensors"))
    assert set(after) - set(before) == {"embed_class.weight"} and after["embed_class.weight"].abs().max() < 1e-6
    config = json.loads((made / "config.json").read_text())
    assert config["model"]["config"]["num_classes"] == 2
    # its runs: 20 unconditional steps (what ∅ computes now) and one step with labels dropped 10 % of the time
    assert [run["classes"] for run in training_history(config)] == [0, 2]
    assert null_label_share(config) == pytest.approx((20 + 0.1) / 21)
    r = run("core.train", "--data", "moons", "--T", "100", "--steps", "1", "--conditional", "--p-uncond", "0",
            "--out", str(tmp_path / "never"), "--quiet", "--no-eval")
    assert r.returncode == 0 and f"dropped to ∅ with p = 0 ({NULL_NEVER_TRAINED})" in r.stderr, r.stderr


def test_a_2d_png_is_centred_on_one_scale_and_says_what_it_shows() -> None:
    """core.sample's quick look at 2D samples pinned them to the bottom-left corner and said nothing: a ring 6 wide and
    2 tall filled the lower third. Now centred, x and y on one scale, with a caption; NaN points left out and counted."""
    from core.sample import scatter_png

    t = np.linspace(0, 2 * np.pi, 400)
    ring = np.c_[3 * np.cos(t) + 10, np.sin(t) - 5]
    ring[0] = np.nan
    pixels = np.asarray(scatter_png(ring))
    ys, xs = np.nonzero((pixels[30:] != 255).any(axis=-1))
    ys = ys + 30
    assert abs((xs.min() + xs.max()) / 2 - 256) <= 2 and abs((ys.min() + ys.max()) / 2 - (24 + 244)) <= 2
    width, height = xs.max() - xs.min(), ys.max() - ys.min()
    assert width == pytest.approx(3 * height, rel=0.03)  # one scale: a 6 × 2 ring stays 3:1
    assert (pixels[:24] != 255).any()  # the caption


def test_a_picture_of_the_part_to_hide_inpaints_from_the_command_line(tmp_path, shared_data, capsys) -> None:
    """``--inpaint hide.png``: light pixels hidden, dark kept, at any size (a pixel is hidden where the picture's
    lightness over it averages one half or more); the kept rows come back exactly. Bad pictures: one line each."""
    import core.sample
    from core.inpaint import known_from_coverage

    picture = np.zeros((280, 280), np.uint8)
    picture[180:] = 255  # the bottom 100 of 280 rows: 10 of MNIST's 28
    Image.fromarray(picture).save(tmp_path / "hide.png")
    known = core.sample.inpaint_mask(str(tmp_path / "hide.png"), (1, 28, 28), 0)
    assert known.shape == (1, 1, 28, 28) and known[..., :18, :].all() and not known[..., 18:, :].any()
    half = torch.zeros(10, 10)
    half[:, :5] = 1.0  # column 0 of 2 covered by half exactly, column 1 not at all
    assert known_from_coverage(half, (3, 2, 2)).tolist() == [[[[False, True]] * 2] * 3]
    assert torch.equal(core.sample.inpaint_mask("left", (1, 28, 28), 0)[..., :14], torch.ones(1, 1, 28, 14).bool())
    out = tmp_path / "filled.npy"
    args = ["--ckpt", str(REPO / "checkpoints" / "mnist"), "--n", "4", "--method", "ddim", "--steps", "10",
            "--data-dir", str(shared_data), "--out", str(out)]
    assert core.sample.main([*args, "--inpaint", str(tmp_path / "hide.png"), "--resample", "2"]) == 0
    assert "inpainted 4 training examples with 2 resampling rounds per step" in capsys.readouterr().err
    checkpoint = load_checkpoint(REPO / "checkpoints" / "mnist")
    examples = training_examples(checkpoint.data, checkpoint.points, 4, seed=0, root=shared_data)  # as the CLI's
    filled = np.load(out)
    assert np.array_equal(filled[..., :18, :], examples[..., :18, :].numpy())  # the kept rows, exactly
    assert not np.array_equal(filled[..., 18:, :], examples[..., 18:, :].numpy())
    (tmp_path / "words.png").write_text("not a picture")
    for mask, message in ((tmp_path / "words.png", "--inpaint words.png cannot be read as a picture"),
                          (tmp_path / "absent.png", "or a picture file of the part to hide; '"),
                          ("x", "--inpaint for this model must be one of left, right, top, bottom, frame, pixels")):
        with pytest.raises(SystemExit) as exited:
            core.sample.main([*args, "--inpaint", str(mask)])
        error = capsys.readouterr().err
        assert exited.value.code == 1 and len(error.strip().splitlines()) == 1 and message in error, error
