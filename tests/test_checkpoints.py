"""Checkpoints: safetensors + JSON, atomic writes, round trips, clear errors."""

from __future__ import annotations

import errno
import json
import os
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from core.checkpoints import (
    MAX_STORED_POINTS, OTHER_LAYOUT, STALE_SECONDS, CheckpointError, list_checkpoints, load_checkpoint, read_config,
    save_checkpoint,
)
from core.data import DataInfo, draw_from, make_toy2d
from core.mlp import MLPConfig, MLPDenoiser
from core.prediction import EpsilonView, as_eps_model
from core.sampler import initial_noise, sample
from core.schedules import make_schedule
from core.unet import UNet, unet_config
from tests.conftest import REPO

POINTS = DataInfo(name="moons", kind="2d", shape=(2,), mean=(1.0, -2.0), scale=3.0)


def save_mlp(path, **kwargs):
    torch.manual_seed(0)
    model = MLPDenoiser(MLPConfig(hidden=32, depth=1, emb_dim=16))
    schedule = make_schedule("cosine", 50)
    return model, schedule, save_checkpoint(path, model, schedule, POINTS, training={"steps": 3}, metrics={"m": 1.5}, **kwargs)


def test_round_trip_gives_identical_samples(tmp_path) -> None:
    model, schedule, path = save_mlp(tmp_path / "ck")
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors"]
    loaded = load_checkpoint(path)
    assert loaded.data == POINTS and loaded.config["metrics"] == {"m": 1.5}
    assert torch.equal(loaded.schedule.betas, schedule.betas)
    assert not loaded.model.training

    def draw(m):
        x_T, g = initial_noise((32, 2), seed=1)
        return sample(m, schedule, x_T, generator=g)

    assert torch.equal(draw(model.eval()), draw(loaded.model))
    assert torch.allclose(loaded.data.to_data_coordinates(torch.zeros(1, 2)), torch.tensor([[1.0, -2.0]]))


def test_loading_takes_the_clis_device_names_and_leaves_the_global_random_state(tmp_path) -> None:
    """"auto" (the CLIs' and `TrainConfig`'s default) had been refused with torch's own message, and loading had
    drawn from torch's global generator (the fresh weights it then replaces): a seeded notebook drew other noise."""
    _, _, path = save_mlp(tmp_path / "ck")
    torch.manual_seed(3)
    expected = torch.randn(4)
    torch.manual_seed(3)
    loaded = load_checkpoint(path, device="auto")
    assert torch.equal(torch.randn(4), expected)
    assert next(loaded.model.parameters()).device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="unknown device 'tpu'; use auto, cpu or cuda"):
        load_checkpoint(path, device="tpu")


def test_a_model_and_data_of_other_shapes_are_not_saved(tmp_path) -> None:
    """An MLP saved with image data had been written, and refused only when loaded."""
    with pytest.raises(ValueError, match=r"the data has shape \(1, 28, 28\), but the model takes \(2,\)"):
        save_checkpoint(tmp_path / "ck", MLPDenoiser(MLPConfig(hidden=8, depth=1, emb_dim=8)), make_schedule("linear", 50),
                        DataInfo(name="mnist", kind="image", shape=(1, 28, 28)))
    assert not (tmp_path / "ck").exists()


def test_config_json_is_strict_json_with_null_for_nan_and_infinity(tmp_path) -> None:
    """A diverged run's error by t (NaN) and an unbounded metric are written as null: JSON has no NaN or Infinity,
    which strict readers (JavaScript, jq) refuse. Readers take null as no value."""
    torch.manual_seed(0)
    model = MLPDenoiser(MLPConfig(hidden=32, depth=1, emb_dim=16))
    training = {"steps": 3, "loss_by_t": [0.5, float("nan"), 0.25], "final_loss": float("nan")}
    path = save_checkpoint(tmp_path / "ck", model, make_schedule("linear", 50), POINTS, training=training,
                           metrics={"ratio": float("inf"), "kept": (1.5, float("-inf"))})

    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant}")

    config = json.loads((path / "config.json").read_text(), parse_constant=refuse)
    assert config["training"]["loss_by_t"] == [0.5, None, 0.25] and config["training"]["final_loss"] is None
    assert config["metrics"] == {"ratio": None, "kept": [1.5, None]}
    assert load_checkpoint(path).config["training"]["loss_by_t"] == [0.5, None, 0.25]


def test_unet_round_trip(tmp_path) -> None:
    torch.manual_seed(0)
    model = UNet(unet_config("tiny", 28, 1))
    info = DataInfo(name="mnist", kind="image", shape=(1, 28, 28), source="data/MNIST/raw (test split)")
    save_checkpoint(tmp_path / "u", model, make_schedule("linear", 100), info)
    loaded = load_checkpoint(tmp_path / "u")
    assert loaded.data == info and loaded.data.clip_x0 == 1.0
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.model.state_dict()[k])


def test_save_is_atomic_and_refuses_to_clobber(tmp_path, monkeypatch) -> None:
    save_mlp(tmp_path / "ck")
    with pytest.raises(FileExistsError):
        save_mlp(tmp_path / "ck")
    save_mlp(tmp_path / "ck", overwrite=True)  # replacing works
    import core.checkpoints as ckpt_module

    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ckpt_module, "save_file", broken_save)
    with pytest.raises(OSError):
        save_mlp(tmp_path / "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"], "no half-written directory is left behind"


def test_a_save_waits_for_a_file_held_for_a_moment(tmp_path, monkeypatch) -> None:
    """On Windows a virus scanner or OneDrive holds a file just written for a moment, and renaming it or its folder
    fails with PermissionError: a save had failed at its last step. Each rename is tried again (`RENAME_TRIES`);
    one refused every time still fails the save, and leaves no temporary folder."""
    import core.paths as paths

    monkeypatch.setattr(paths, "RENAME_TRIES", 3)
    monkeypatch.setattr(paths, "RENAME_WAIT_SECONDS", 0.0)
    real_rename, refused = Path.rename, []

    def held_once(self, target):
        if self not in refused:
            refused.append(self)
            raise PermissionError(13, "The process cannot access the file because it is being used", str(self))
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", held_once)
    save_mlp(tmp_path / "ck")
    save_mlp(tmp_path / "ck", overwrite=True)  # two renames: the old folder aside, the new one in
    assert len(refused) == 3 and load_checkpoint(tmp_path / "ck").config["training"] == {"steps": 3}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]

    def held(self, target):
        raise PermissionError(13, "Access is denied", str(self))

    monkeypatch.setattr(Path, "rename", held)
    with pytest.raises(PermissionError, match="Access is denied"):
        save_mlp(tmp_path / "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]


def test_a_configs_data_name_and_source_are_read_printable(tmp_path) -> None:
    """The commands print a checkpoint's data name: one handed on with a terminal's escape sequences had cleared the
    screen and set the window's title, and a right-to-left override turned the words printed after it around."""
    _, _, path = save_mlp(tmp_path / "ck")
    config = json.loads((path / "config.json").read_text())
    config["data"].update(name="moons\x1b[2J\x1b]0;TITLE\x07\u202eevil", source="a\nb\u200b")
    (path / "config.json").write_text(json.dumps(config))
    loaded = load_checkpoint(path)
    assert loaded.data.name == "moons[2J]0;TITLEevil" and loaded.data.source == "a b"


def test_a_save_clears_what_killed_saves_left_and_overwrites_a_link_without_leaving_one(tmp_path) -> None:
    """A save killed midway leaves its temporary ".ck.*" folder (35 MB for a base U-Net): 7 of 12 kills left one, for
    good. The next save of the checkpoint removes those an hour old; a save under way (a fresh one) stays. An
    overwrite through a symbolic link left the link, dangling, as ".link.old-…"."""
    save_mlp(tmp_path / "ck")
    stale, fresh, other = tmp_path / ".ck.abc123", tmp_path / ".ck.def456", tmp_path / ".other.abc123"
    for folder in (stale, fresh, other):
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(b"x" * 100)
    hour_ago = time.time() - STALE_SECONDS - 60
    for folder in (stale, other):
        os.utime(folder, (hour_ago, hour_ago))
    save_mlp(tmp_path / "ck", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".ck.def456", ".other.abc123", "ck"]
    (tmp_path / "link").symlink_to(tmp_path / "ck")
    save_mlp(tmp_path / "link", overwrite=True)
    assert (tmp_path / "link").is_dir() and not (tmp_path / "link").is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".ck.def456", ".other.abc123", "ck", "link"]
    assert load_checkpoint(tmp_path / "ck").config["metrics"] == {"m": 1.5}  # the link's target is left alone


def test_overwrite_replaces_only_a_checkpoint(tmp_path) -> None:
    """--overwrite pointed at a user's folder or file must not delete it."""
    folder = tmp_path / "thesis"
    folder.mkdir()
    (folder / "chapter1.txt").write_text("precious")
    single = tmp_path / "notes.txt"
    single.write_text("also precious")
    for target in (folder, single):
        with pytest.raises(FileExistsError, match="not a checkpoint .config.json is missing., so it is not replaced"):
            save_mlp(target, overwrite=True)
    assert (folder / "chapter1.txt").read_text() == "precious" and single.read_text() == "also precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "thesis"], "nothing else was written"


def test_a_checkpoint_is_readable_as_the_umask_allows(tmp_path) -> None:
    """The temporary folder of the atomic write is private (0o700); the checkpoint gets the umask's permissions."""
    old = os.umask(0o022)
    try:
        _, _, path = save_mlp(tmp_path / "ck")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o755
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in path.iterdir()} == {"config.json": 0o644,
                                                                                   "model.safetensors": 0o644}


@pytest.mark.parametrize("field, value, kind", [("hidden", "abc", "a whole number"), ("depth", True, "a whole number"),
                                                ("input_scale", "25", "a number"), ("emb_dim", 64.0, "a whole number")])
def test_a_model_setting_of_the_wrong_type_is_named(tmp_path, field, value, kind) -> None:
    _, _, path = save_mlp(tmp_path / "ck")
    config = json.loads((path / "config.json").read_text())
    config["model"]["config"][field] = value
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=f"invalid: model.config.{field} must be {kind}, got "):
        load_checkpoint(path)


def test_list_checkpoints(tmp_path) -> None:
    save_mlp(tmp_path / "b")
    save_mlp(tmp_path / "a")
    (tmp_path / "not_a_ckpt").mkdir()
    (tmp_path / ".hidden").mkdir()
    assert [p.name for p in list_checkpoints(tmp_path)] == ["a", "b"]
    assert list_checkpoints(tmp_path / "missing") == []


def test_load_errors(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="no checkpoint directory"):
        load_checkpoint(tmp_path / "nothing")
    _, _, path = save_mlp(tmp_path / "ck")
    config = json.loads((path / "config.json").read_text())

    (path / "config.json").write_text(json.dumps({**config, "format_version": 99}))
    with pytest.raises(CheckpointError, match="format version"):
        load_checkpoint(path)
    classifier = Path(__file__).resolve().parents[1] / "checkpoints" / "classifiers" / "mnist"
    with pytest.raises(CheckpointError, match=r"mnist is not a diffusion checkpoint: its config.json has no format_v"):
        load_checkpoint(classifier)  # had been "format version None is not supported"

    wider = {**config, "model": {"kind": "mlp", "config": {**config["model"]["config"], "hidden": 48}}}
    (path / "config.json").write_text(json.dumps(wider))
    with pytest.raises(CheckpointError, match="shape") as caught:
        load_checkpoint(path)
    assert str(caught.value).endswith(OTHER_LAYOUT)
    (path / "config.json").write_text(json.dumps(config))
    weights = load_file(path / "model.safetensors")  # the MLP of the project's first day had neither of these
    save_file({k: v for k, v in weights.items() if not k.startswith(("first_raw.", "skip."))}, path / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"does not match its config: missing \['first_raw.weight', 'skip.weight'\], "
                                              r"unexpected \[\]\. The weights are for another layout") as caught:
        load_checkpoint(path)
    assert str(caught.value).endswith(OTHER_LAYOUT)

    (path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"not readable JSON \(expecting property name .* at line 1, column 2\)$"):
        load_checkpoint(path)
    (path / "config.json").write_bytes(b"\xff\xfe{}")
    with pytest.raises(CheckpointError, match=r"not readable JSON \(not UTF-8 text\)$"):
        load_checkpoint(path)

    (path / "config.json").write_text(json.dumps(config))
    (path / "model.safetensors").write_bytes(b"\x80\x04pickle?")
    with pytest.raises(CheckpointError, match="safetensors"):
        load_checkpoint(path)

    (path / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="missing"):
        load_checkpoint(path)


def test_a_v_model_is_stored_as_its_network_and_loaded_as_its_eps_view(tmp_path) -> None:
    torch.manual_seed(0)
    schedule = make_schedule("cosine", 50)
    view = as_eps_model(MLPDenoiser(MLPConfig(hidden=32, depth=1, emb_dim=16)), schedule, "v").eval()
    path = save_checkpoint(tmp_path / "v", view, schedule, POINTS)
    config = json.loads((path / "config.json").read_text())
    assert config["model"]["prediction"] == "v" and config["model"]["kind"] == "mlp"
    loaded = load_checkpoint(path)
    assert isinstance(loaded.model, EpsilonView) and loaded.model.prediction == "v"
    x, t = torch.randn(8, 2), torch.arange(1, 9) * 6
    assert torch.equal(loaded.model(x, t), view(x, t))

    # a checkpoint from before the choice predicts ε (and its weights record no target)
    save_file(load_file(str(path / "model.safetensors")), str(path / "model.safetensors"), metadata={"format_version": "1"})
    del config["model"]["prediction"]
    (path / "config.json").write_text(json.dumps(config))
    assert isinstance(load_checkpoint(path).model, MLPDenoiser)
    config["model"]["prediction"] = "score"
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="unknown prediction target 'score'"):
        load_checkpoint(path)


DRAWN = DataInfo(name="drawing", kind="2d", shape=(2,), mean=(128.0, 128.0), scale=40.0, source="drawn in the Train tab")


def test_2d_checkpoints_of_given_points_keep_them_and_draw_their_data_from_them(tmp_path) -> None:
    torch.manual_seed(0)
    model, schedule = MLPDenoiser(MLPConfig(hidden=32, depth=1, emb_dim=16)), make_schedule("linear", 50)
    points = torch.randn(300, 2)
    path = save_checkpoint(tmp_path / "drawn", model, schedule, DRAWN, points=points)
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "data.safetensors", "model.safetensors"]
    loaded = load_checkpoint(path)
    assert torch.equal(loaded.points, points)
    drawn = loaded.data_sampler()(1000, 5)
    assert torch.equal(drawn, draw_from(points)(1000, 5)) and torch.equal(drawn, loaded.data_sampler()(1000, 5))

    many = torch.randn(MAX_STORED_POINTS + 500, 2)
    big = load_checkpoint(save_checkpoint(tmp_path / "big", model, schedule, DRAWN, points=many))
    assert big.points.shape == (MAX_STORED_POINTS, 2)
    assert len(torch.unique(torch.cat([big.points, many]), dim=0)) == len(many), "a subset of the given points"

    toy = load_checkpoint(save_mlp(tmp_path / "toy")[2])  # POINTS: moons, regenerated from its name
    assert toy.points is None and torch.equal(toy.data_sampler()(100, 2), make_toy2d("moons", 100, seed=2))
    csv_info = DataInfo(name="mine", kind="2d", shape=(2,), source="/somewhere/mine.csv")
    old = load_checkpoint(save_checkpoint(tmp_path / "old", model, schedule, csv_info))  # saved without its points
    assert old.data_sampler() is None


@pytest.mark.skipif(not Path("/proc/self/maps").is_file(), reason="reads the process's memory map (Linux)")
def test_a_loaded_checkpoint_keeps_no_file_mapped(tmp_path) -> None:
    """Windows can neither delete nor replace a mapped file: a cached model's folder could be neither pruned nor
    overwritten while its points (`safetensors.torch.load_file`'s mapped tensors) were held."""
    model, schedule = MLPDenoiser(MLPConfig(hidden=32, depth=1, emb_dim=16)), make_schedule("linear", 50)
    path = save_checkpoint(tmp_path / "drawn", model, schedule, DRAWN, points=torch.randn(300, 2))
    loaded = load_checkpoint(path)
    mapped = [line for line in Path("/proc/self/maps").read_text().splitlines() if str(tmp_path) in line]
    assert loaded.points is not None and mapped == []


def test_stored_points_are_checked(tmp_path) -> None:
    torch.manual_seed(0)
    model, schedule = MLPDenoiser(MLPConfig(hidden=32, depth=1, emb_dim=16)), make_schedule("linear", 50)
    image = DataInfo(name="mnist", kind="image", shape=(1, 28, 28))
    with pytest.raises(ValueError, match="only 2D data"):  # an image model's (an MLP's no longer gets this far)
        save_checkpoint(tmp_path / "a", UNet(unet_config("tiny", 28, 1)), schedule, image, points=torch.randn(10, 2))
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        save_checkpoint(tmp_path / "b", model, schedule, DRAWN, points=torch.randn(10, 3))
    path = save_checkpoint(tmp_path / "c", model, schedule, DRAWN, points=torch.randn(10, 2))
    save_file({"points": torch.full((10, 2), float("nan"))}, str(path / "data.safetensors"))
    with pytest.raises(CheckpointError, match="finite training points"):
        load_checkpoint(path)
    (path / "data.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="data.safetensors is not a readable"):
        load_checkpoint(path)


def test_weights_no_network_has_are_refused_on_load(tmp_path) -> None:
    """NaN weights had loaded (and an upload of them was taken), to fail only once sampled; integer weights were
    copied into float32 and sampled far from the data. Both are refused when the checkpoint is read."""
    model = MLPDenoiser(MLPConfig(hidden=16, depth=1, emb_dim=8))
    path = save_checkpoint(tmp_path / "ok", model, make_schedule("linear", 50), DataInfo("moons", "2d", (2,)))
    weights = path / "model.safetensors"
    state = {name: value.clone() for name, value in model.state_dict().items()}
    name = next(iter(state))
    for broken, message in (
        ({**state, name: torch.full_like(state[name], float("nan"))}, f"not finite numbers .NaN or infinite., e.g. {name}"),
        ({**state, name: torch.full_like(state[name], float("inf"))}, "not finite numbers"),
        ({**state, name: state[name].round().to(torch.int32)}, f"holds int32 weights .{name}.: a network's weights"),
    ):
        save_file(broken, str(weights))
        with pytest.raises(CheckpointError, match=message):
            load_checkpoint(path)
    save_file(state, str(weights))
    assert load_checkpoint(path).config["schedule"]["T"] == 50


@pytest.mark.parametrize("kind, field, value, message", [
    ("mlp", "depth", 1_000_000, "depth from 0 to 64, got hidden=16, depth=1000000"),
    ("unet", "num_res_blocks", 100_000, "num_res_blocks at most 16, got 28 and 100000"),
    ("unet", "image_size", 28 * 1024, "image_size must be at most 256 .*, got 28672"),
])
def test_a_config_too_costly_to_build_or_run_is_refused_at_once(tmp_path, kind, field, value, message) -> None:
    """A checkpoint's config is built before its weights are compared with it, and then run as it says: an upload
    of 400 KB saying depth = 60,000 took 14 s of the server's time to refuse (a million blocks: minutes), and a U-Net
    config saying 28,672-px images asked for 13 GB to sample four. Each is refused at once, naming the number."""
    model, data = ((MLPDenoiser(MLPConfig(hidden=16, depth=1, emb_dim=8)), DataInfo("moons", "2d", (2,))) if kind == "mlp"
                   else (UNet(unet_config("tiny", 28, 1)), DataInfo("mnist", "image", (1, 28, 28))))
    path = save_checkpoint(tmp_path / kind, model, make_schedule("linear", 50), data)
    config = json.loads((path / "config.json").read_text())
    config["model"]["config"][field] = value
    (path / "config.json").write_text(json.dumps(config))
    started = time.perf_counter()
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)
    assert time.perf_counter() - started < 1.0


def test_a_config_edited_to_another_schedule_or_target_is_refused(tmp_path) -> None:
    """No tensor's shape depends on T or on the prediction target: a config.json with T 1000 made 50 had loaded
    without a word (and sampled 7 times farther from the data). The weights file records both now."""
    model = MLPDenoiser(MLPConfig(hidden=16, depth=1, emb_dim=8))
    path = save_checkpoint(tmp_path / "ck", model, make_schedule("linear", 1000), DataInfo("moons", "2d", (2,)))
    config_path = path / "config.json"
    original = json.loads(config_path.read_text())
    for change, message in (
        (lambda c: c["schedule"].update(T=50), r"its schedule \(linear, T = 50\) is not the one its weights were "
                                               r"trained with \(linear, T = 1000\); put that one back"),
        (lambda c: c["schedule"]["params"].update(beta_end=0.5),  # the two had read alike, "(linear, T = 1000)"
         r"its schedule \(linear, T = 1000, beta_end = 0.5\) is not the one its weights were trained with \(linear, "
         r"T = 1000, beta_end = 0.02\)"),
        (lambda c: c["model"].update(prediction="v"), "it says the network predicts 'v', but its weights were "
                                                      "trained to predict 'eps'"),
        (lambda c: c["data"].update(mean="BIG"), r"config\.json is not readable JSON \(Exceeds the limit"),
    ):  # a number of 5,000 digits, which Python refuses to read, had been "not a readable .zip file" in an upload
        edited = json.loads(json.dumps(original))
        change(edited)
        config_path.write_text(json.dumps(edited).replace('"BIG"', "9" * 5000))
        with pytest.raises(CheckpointError, match=message):
            load_checkpoint(path)
    config_path.write_text(json.dumps(original))
    assert load_checkpoint(path).schedule.T == 1000
    weights = load_file(str(path / "model.safetensors"))
    save_file(weights, str(path / "model.safetensors"), metadata={"format_version": "1", "schedule": "[1]"})
    with pytest.raises(CheckpointError, match="the schedule in its metadata is not a JSON object"):
        load_checkpoint(path)  # a file made elsewhere: it had been an AttributeError
    save_file(weights, str(path / "model.safetensors"), metadata={"format_version": "1", "schedule": "{"})
    with pytest.raises(CheckpointError, match="the schedule in its metadata is not a JSON object"):
        load_checkpoint(path)
    # a checkpoint from before the record (its weights carry the format version only) is not checked
    save_file(model.state_dict(), str(path / "model.safetensors"), metadata={"format_version": "1"})
    edited = json.loads(json.dumps(original))
    edited["schedule"]["T"] = 50
    config_path.write_text(json.dumps(edited))
    assert load_checkpoint(path).schedule.T == 50


def test_a_zipped_checkpoint_is_named_as_such(tmp_path) -> None:
    """The app's Download gives a .zip; `--ckpt x.zip` had said only "no checkpoint directory at x.zip"."""
    archive = tmp_path / "moons.zip"
    archive.write_bytes(b"PK")
    with pytest.raises(CheckpointError, match=r"moons.zip is a .zip: unzip it first, and give the folder it holds$"):
        load_checkpoint(archive)


@pytest.mark.skipif(sys.platform == "win32", reason="sets RLIMIT_FSIZE (POSIX)")
def test_a_write_that_fails_is_an_oserror_that_says_why(tmp_path):
    """safetensors reports a full disk or a file-size limit as its own SafetensorError ("Error while serializing: I/O
    error: … (os error 27)"), which the CLI and the Train tab passed on as a traceback or as "(SafetensorError)". Here a
    real file-size limit (RLIMIT_FSIZE, in a child process) stops the write."""
    script = f"""
import resource, signal
from pathlib import Path
from core.checkpoints import save_checkpoint
from core.data import DataInfo
from core.mlp import MLPConfig, MLPDenoiser
from core.schedules import make_schedule
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
try:
    save_checkpoint(Path({str(tmp_path / 'ck')!r}), MLPDenoiser(MLPConfig()), make_schedule("linear", 50),
                    DataInfo("moons", "2d", (2,)))
except OSError as err:
    print(err.errno, err.strerror)
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == f"{errno.EFBIG} File too large", done.stderr
    assert list(tmp_path.iterdir()) == []  # no half-written checkpoint, no temporary folder


def test_an_overwrite_killed_between_its_renames_keeps_the_earlier_checkpoint_findable(tmp_path):
    """`save_checkpoint` overwrites by moving NAME aside to .NAME.old-*, then renaming the new one in. Killed between
    the two, NAME was gone; and a renamed folder keeps its old time, so the next save to NAME deleted the only copy
    as a stale leftover. It is kept while NAME is missing, and a reader of NAME is told where it is."""
    model, schedule, info = MLPDenoiser(MLPConfig()), make_schedule("linear", 50), DataInfo("moons", "2d", (2,))
    name = save_checkpoint(tmp_path / "keep", model, schedule, info)
    aside = tmp_path / ".keep.old-123-456"
    name.rename(aside)
    os.utime(aside, (time.time() - 2 * 86400,) * 2)
    with pytest.raises(CheckpointError, match=rf"cut short: its earlier version is {re.escape(str(aside))}; rename "
                                              "that back to keep"):
        load_checkpoint(tmp_path / "keep")
    save_checkpoint(tmp_path / "keep", model, schedule, info)
    assert (aside / "model.safetensors").is_file()
    stale = tmp_path / ".keep.abc123"  # a killed save's temporary folder: still swept
    stale.mkdir()
    os.utime(stale, (time.time() - 2 * 86400,) * 2)
    save_checkpoint(tmp_path / "keep", model, schedule, info, overwrite=True)
    assert not stale.exists()


def test_a_config_nested_too_deeply_is_refused_in_words(tmp_path):
    """json's parser recurses: 100,000 nested brackets raised RecursionError in the CLI, the app's lists and its
    upload."""
    folder = tmp_path / "deep"
    folder.mkdir()
    (folder / "config.json").write_text('{"format_version": 1, "x": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(CheckpointError, match="nested too deeply"):
        read_config(folder)
    assert list_checkpoints(tmp_path) == []
