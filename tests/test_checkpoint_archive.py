"""A checkpoint as a .zip: round trip, and every archive an upload may bring that is not one checkpoint."""

from __future__ import annotations

import json
import stat
import time
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from core.checkpoint_archive import pack_checkpoint, safe_name, unpack_checkpoint
from core.checkpoints import CheckpointError, load_checkpoint, read_config, save_checkpoint
from core.data import DataInfo
from core.mlp import MLPConfig, MLPDenoiser
from core.schedules import make_schedule

POINTS = DataInfo(name="moons", kind="2d", shape=(2,))


@pytest.fixture
def checkpoint(tmp_path) -> Path:
    torch.manual_seed(0)
    model = MLPDenoiser(MLPConfig(hidden=16, depth=1, emb_dim=8))
    return save_checkpoint(tmp_path / "made" / "moons_run", model, make_schedule("cosine", 20), POINTS,
                           training={"steps_done": 5}, points=torch.randn(40, 2))


def zip_of(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, content in entries.items():
            zf.writestr(name, content)
    return path


def files_of(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in directory.iterdir()}


def test_round_trip_gives_the_same_files_and_model(checkpoint, tmp_path):
    archive = pack_checkpoint(checkpoint, tmp_path / "out" / "moons_run.zip")
    with zipfile.ZipFile(archive) as zf:  # one folder named after the checkpoint: unzipped, a checkpoint directory
        assert sorted(zf.namelist()) == ["moons_run/config.json", "moons_run/data.safetensors",
                                         "moons_run/model.safetensors"]
    unpacked = unpack_checkpoint(archive, tmp_path / "in", prefix="uploaded-")
    assert unpacked == tmp_path / "in" / "uploaded-moons_run"
    assert files_of(unpacked) == files_of(checkpoint)
    x, t = torch.randn(8, 2), torch.full((8,), 7)
    assert torch.equal(load_checkpoint(unpacked).model(x, t), load_checkpoint(checkpoint).model(x, t))
    again = unpack_checkpoint(archive, tmp_path / "in", prefix="uploaded-")  # a second upload: a new name
    assert again.name == "uploaded-moons_run-2" and files_of(again) == files_of(checkpoint)
    assert [p.name for p in (tmp_path / "in").iterdir() if p.name.startswith(".")] == []  # no temporary left
    # as readable as a trained checkpoint: an upload's folder was its temporary's, 0o700
    assert stat.S_IMODE(unpacked.stat().st_mode) == stat.S_IMODE(checkpoint.stat().st_mode)


def test_a_zipped_directory_at_the_top_level_takes_the_archive_name(checkpoint, tmp_path):
    archive = zip_of(tmp_path / "My model (1).zip", {name: (checkpoint / name).read_bytes()
                                                    for name in ("config.json", "model.safetensors")})
    unpacked = unpack_checkpoint(archive, tmp_path / "in")
    assert unpacked.name == "My-model-1" and read_config(unpacked)["data"]["name"] == "moons"


def test_entries_outside_one_folder_are_never_written(checkpoint, tmp_path):
    """Paths like ../x are ignored or reduced to a safe name: nothing lands outside the parent."""
    good = {name: (checkpoint / name).read_bytes() for name in ("config.json", "model.safetensors")}
    archive = zip_of(tmp_path / "evil.zip", {
        **{f"../{name}": content for name, content in good.items()},
        "../../outside/config.json": b"{}", "/abs/model.safetensors": b"x", "notes.txt": b"hello",
    })
    parent = tmp_path / "sandbox" / "in"
    unpacked = unpack_checkpoint(archive, parent)
    assert unpacked.parent == parent and unpacked.name == "checkpoint"
    assert sorted(p.name for p in unpacked.iterdir()) == ["config.json", "model.safetensors"]
    assert sorted(p.name for p in (tmp_path / "sandbox").iterdir()) == ["in"]


@pytest.mark.parametrize("entries, message", [
    ({"readme.txt": b"hi"}, "holds no checkpoint"),
    ({"tmp/runs/roll/config.json": b"{}", "tmp/runs/roll/model.safetensors": b""},  # `zip -r x.zip /tmp/runs/roll`
     "holds no checkpoint: .*its config.json lies deeper, at tmp/runs/roll/config.json: zip the checkpoint folder itself"),
    ({"../../evil/config.json": b"{}", "../../evil/model.safetensors": b""},  # outside the zip: no "lies deeper"
     r"holds no checkpoint: expected .* written by python -m core.train\)$"),
    ({"a/config.json": b"{}", "a/model.safetensors": b"", "b/config.json": b"{}"}, "holds 2 checkpoints"),
    ({"run/config.json": b"{}"}, "model.safetensors is missing"),
    ({"run/config.json": b"not json", "run/model.safetensors": b""}, "not readable JSON"),
])
def test_archives_that_are_not_one_checkpoint_are_refused(tmp_path, entries, message):
    archive = zip_of(tmp_path / "bad.zip", entries)
    with pytest.raises(CheckpointError, match=message) as caught:
        unpack_checkpoint(archive, tmp_path / "in")
    assert str(tmp_path / "in") not in str(caught.value)  # the message names the upload, not a temporary folder
    assert "bad.zip" in str(caught.value)
    assert list((tmp_path / "in").iterdir()) == []


def test_a_file_that_is_not_a_zip_is_refused(tmp_path):
    fake = tmp_path / "model.zip"
    fake.write_bytes(b"PK not really a zip file")
    with pytest.raises(CheckpointError, match="model.zip is not a readable .zip file"):
        unpack_checkpoint(fake, tmp_path / "in")


def test_a_zip_with_a_password_is_refused_in_words(checkpoint, tmp_path):
    """zipfile raised a bare RuntimeError ("password required for extraction"): the upload failed without a word."""
    plain = zip_of(tmp_path / "plain.zip", {f"m/{name}": data for name, data in files_of(checkpoint).items()})
    raw = bytearray(plain.read_bytes())
    for signature, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # each entry's local and central header
        start = 0
        while (start := raw.find(signature, start)) >= 0:
            raw[start + flags_at] |= 0x1  # encrypted, as `zip -P secret` marks it
            start += 4
    locked = tmp_path / "locked.zip"
    locked.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="locked.zip is encrypted .* without one"):
        unpack_checkpoint(locked, tmp_path / "in")
    assert not any((tmp_path / "in").iterdir())


def test_broken_weights_are_refused_whole(checkpoint, tmp_path):
    archive = zip_of(tmp_path / "cut.zip", {"run/config.json": (checkpoint / "config.json").read_bytes(),
                                            "run/model.safetensors": (checkpoint / "model.safetensors").read_bytes()[:100]})
    with pytest.raises(CheckpointError, match="cut.zip/model.safetensors is not a readable safetensors file"):
        unpack_checkpoint(archive, tmp_path / "in")
    assert list((tmp_path / "in").iterdir()) == []


def test_a_zip_bomb_stops_at_the_limit(checkpoint, tmp_path):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("run/config.json", (checkpoint / "config.json").read_bytes())
        zf.writestr("run/model.safetensors", bytes(5_000_000))  # 5 MB of zeros deflate to a few kB
    assert archive.stat().st_size < 50_000
    with pytest.raises(CheckpointError, match="unpacks to more than"):
        unpack_checkpoint(archive, tmp_path / "in", max_bytes=1_000_000)
    assert list((tmp_path / "in").iterdir()) == []
    # within the 128 MB, a bomb unpacks to at most 20 times its size, or 4 MB (it had been 70 MB from 72 kB)
    with pytest.raises(CheckpointError, match=r"^bomb\.zip unpacks to more than 4 MB; a checkpoint of this tool is "
                                              r"smaller, and its trained weights hardly compress$"):
        unpack_checkpoint(archive, tmp_path / "in")
    assert list((tmp_path / "in").iterdir()) == []


def test_a_config_of_a_huge_network_is_refused_before_anything_is_allocated(checkpoint, tmp_path):
    """The weights are checked against the network the config describes, built on the meta device: a config
    asking for a billion parameters beside small weights costs nothing."""
    config = json.loads((checkpoint / "config.json").read_text())
    config["model"]["config"]["hidden"] = 100_000  # 10¹⁰ parameters in the residual blocks
    (checkpoint / "config.json").write_text(json.dumps(config))
    start = time.perf_counter()
    with pytest.raises(CheckpointError, match="has shape"):
        load_checkpoint(checkpoint)
    assert time.perf_counter() - start < 5


def test_a_config_whose_data_does_not_fit_its_model_is_refused(checkpoint):
    config = json.loads((checkpoint / "config.json").read_text())
    config["data"].update(kind="image", shape=[1, 28, 28])  # a shape that fits its kind, not its network (an MLP)
    (checkpoint / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"its data has shape \(1, 28, 28\), but its model takes \(2,\)"):
        load_checkpoint(checkpoint)


@pytest.mark.parametrize("change, message", [
    (lambda c: c.update(data="swiss_roll"), "'data' must be a JSON object"),
    (lambda c: c.update(metrics="x"), "'metrics' must be a JSON object"),
    (lambda c: c.pop("schedule"), "'schedule' section is missing"),
    (lambda c: c["model"].update(kind="transformer"), "model kind 'transformer'"),
    (lambda c: c["model"]["config"].update(num_classes="two"), "num_classes must be a whole number"),
    (lambda c: c["model"].update(prediction="score"), "unknown prediction target 'score'"),
    (lambda c: c["schedule"].update(T=0), "whole T from 2 to 10000"),
    (lambda c: c["schedule"].update(T="abc"), "whole T from 2 to 10000"),
    (lambda c: c["data"].update(kind="audio"), "a kind \\(2d or image\\)"),
    (lambda c: c["data"].update(shape=[2.5]), "shape of whole numbers"),
    (lambda c: c["data"].update(shape=[3, 64, 64]), r"shape \[3, 64, 64\] does not fit its kind '2d'"),
    (lambda c: c["data"].update(kind="image"), r"shape \[2\] does not fit its kind 'image'"),
    (lambda c: c["data"].update(name="x" * 100_000), "data's name must be at most 255 characters, got 100,000"),
    (lambda c: c["data"].update(mean="ab"), "mean must be two numbers"),
    (lambda c: c["data"].update(scale=0), "scale a positive number"),
    (lambda c: c["training"].update(previous_runs="none"), "previous_runs must be a list"),
    (lambda c: c["training"].update(steps_done=-1), "steps_done must be a whole number"),
    (lambda c: c["training"].update(loss_by_t=["n/a"]), "loss_by_t must be a list of numbers"),
])
def test_a_config_of_the_wrong_layout_is_refused_when_read(checkpoint, change, message):
    """Every reader of a config (the tabs' descriptions, sliders, the Train tab) relies on its layout: a hand-edited
    or uploaded one is refused in one sentence by read_config."""
    config = json.loads((checkpoint / "config.json").read_text())
    change(config)
    (checkpoint / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=message):
        read_config(checkpoint)


def test_pack_refuses_an_incomplete_checkpoint(checkpoint, tmp_path):
    (checkpoint / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="not a complete checkpoint"):
        pack_checkpoint(checkpoint, tmp_path / "x.zip")
    assert not (tmp_path / "x.zip").exists()


def test_safe_names():
    assert safe_name("mnist (1)") == "mnist-1"
    assert safe_name("..") == "checkpoint" and safe_name("") == "checkpoint"
    assert safe_name("a/b\\c") == "a-b-c"
    assert len(safe_name("x" * 200)) == 64
    assert [safe_name(n) for n in ("nul", "CON", "com1.v2", "aux-mnist", "console")] \
        == ["nul_", "CON_", "com1_.v2", "aux-mnist", "console"]  # no folder or file of Windows' device names
    assert safe_name("nul." + "a" * 70) == "nul_." + "a" * 59  # still at most 64 characters


def test_weights_in_half_precision_still_load(checkpoint):
    """Only names and shapes are checked against the config: other dtypes load as before (converted)."""
    from safetensors.torch import load_file
    state = {k: v.half() for k, v in load_file(str(checkpoint / "model.safetensors")).items()}
    save_file(state, str(checkpoint / "model.safetensors"))
    assert load_checkpoint(checkpoint).model(torch.randn(3, 2), torch.full((3,), 4)).dtype == torch.float32
