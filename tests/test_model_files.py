"""The Reverse tab's download and upload of a model (.zip): per session, checked, listed in both tabs."""

from __future__ import annotations

import html
import json
import re
import types
import zipfile
from pathlib import Path

import gradio as gr
import pytest
import torch
from markdown_it import MarkdownIt

from app import checkpoint_access, model_files, reverse_tab, runs, train_tab
from core.checkpoint_archive import pack_checkpoint
from core.checkpoints import save_checkpoint
from core.data import DataInfo
from core.mlp import MLPConfig, MLPDenoiser
from core.schedules import make_schedule
from tests.conftest import end_training_runs


def req(user: str):
    return types.SimpleNamespace(session_hash=user)


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("DDPM_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("DDPM_CHECKPOINTS_DIR", str(tmp_path / "shipped"))
    checkpoint_access.CACHE.clear()
    yield tmp_path
    end_training_runs()  # nor any run
    for page in list(runs._page_owners):  # no page outlives its test
        runs.forget_page(page)


def make_checkpoint(path: Path, hidden: int = 16) -> Path:
    torch.manual_seed(0)
    model = MLPDenoiser(MLPConfig(hidden=hidden, depth=1, emb_dim=8))
    return save_checkpoint(path, model, make_schedule("linear", 30), DataInfo("moons", "2d", (2,)),
                           training={"steps_done": 12})


def downloaded(request, path: str, trained) -> Path:
    update = model_files.download_model(request, path, trained)
    assert update.visible
    return Path(update.value["path"])


def test_a_shipped_model_downloads_and_comes_back_as_an_upload(isolated):
    shipped = make_checkpoint(isolated / "shipped" / "moons")
    archive = downloaded(req("alice"), str(shipped), [])
    assert archive.name == "moons.zip"
    trained = model_files.upload_model(req("alice"), str(archive), [])
    (path,) = trained
    assert Path(path).parent == runs.user_dir("alice") and Path(path).name == "uploaded-moons"
    labels = dict((value, label) for label, value in checkpoint_access.checkpoint_choices(trained))
    assert labels[path] == "moons (uploaded)" and labels[str(shipped)] == "moons (shipped)"
    assert (path, "moons (uploaded)") in [(v, k) for k, v in train_tab.start_choices(trained)]  # can be continued
    dropdown, info = reverse_tab.after_training(trained, str(shipped))
    assert dropdown.value == path and info.startswith("**moons** — data: moons")  # selected, named as listed
    x, t = torch.randn(5, 2), torch.full((5,), 3)
    assert torch.equal(checkpoint_access.CACHE.get(Path(path)).model(x, t), checkpoint_access.CACHE.get(shipped).model(x, t))
    _, stats, movie, _ = reverse_tab.generate(req("alice"), path, "ddim", 0.0, 5, 4, 0, 3, "uniform", False, False,
                                              trained, progress=None)  # and samples under it
    assert stats.startswith("**moons** · ") and movie.stem.startswith("reverse-moons")
    again = downloaded(req("alice"), path, trained)  # an uploaded model downloads under its own name
    assert again.name == "moons.zip"
    with zipfile.ZipFile(again) as zf:
        assert sorted(zf.namelist()) == ["moons/config.json", "moons/model.safetensors"]


def test_a_session_cannot_download_another_sessions_model(isolated):
    alices = make_checkpoint(runs.user_dir("alice") / "run")
    with pytest.raises(gr.Error, match="not available in this session"):
        model_files.download_model(req("bob"), str(alices), [])
    with pytest.raises(gr.Error, match="Choose a checkpoint first"):
        model_files.download_model(req("bob"), None, [])
    assert downloaded(req("alice"), str(alices), [str(alices)]).name == "run.zip"


def test_a_model_the_server_deleted_says_so(isolated, monkeypatch):
    """A tab still listing a model that another tab's uploads pushed out of the browser's kept five: Generate,
    the panels and Download said "not available in this session", as for another browser's model."""
    monkeypatch.setenv("DDPM_MAX_RUNS_PER_USER", "1")
    first = str(make_checkpoint(runs.user_dir("alice") / "first"))
    make_checkpoint(runs.user_dir("alice") / "second")
    assert runs.prune_user_runs("alice") and not Path(first).exists()
    gone = ("first is no longer on the server: it keeps a browser's 1 newest model for 24 hours, and a newer one "
            "took its place. Press ↻ Refresh and pick another.")
    with pytest.raises(gr.Error, match=re.escape(gone)):
        model_files.download_model(req("alice"), first, [first])
    with pytest.raises(gr.Error, match=re.escape(gone)):
        checkpoint_access.load(first, [first])


def test_a_bad_upload_is_refused_in_one_sentence_and_keeps_the_sessions_models(isolated):
    kept = [str(make_checkpoint(runs.user_dir("alice") / "run"))]
    not_zip = isolated / "photo.zip"
    not_zip.write_bytes(b"\x89PNG not a zip")
    with pytest.raises(gr.Error) as caught:
        model_files.upload_model(req("alice"), str(not_zip), kept)
    assert caught.value.message == "Not uploaded: photo.zip is not a readable .zip file (File is not a zip file)"
    config = json.loads((Path(kept[0]) / "config.json").read_text())
    config["schedule"]["T"] = "many"
    odd = isolated / "odd.zip"
    with zipfile.ZipFile(odd, "w") as zf:
        zf.writestr("odd/config.json", json.dumps(config))
        zf.writestr("odd/model.safetensors", (Path(kept[0]) / "model.safetensors").read_bytes())
    with pytest.raises(gr.Error) as caught:
        model_files.upload_model(req("alice"), str(odd), kept)
    assert caught.value.message.startswith("Not uploaded: odd.zip/config.json is invalid: its schedule needs")
    assert sorted(p.name for p in runs.user_dir("alice").iterdir()) == ["run"]  # nothing left behind
    with pytest.raises(gr.Error, match="No file arrived"):
        model_files.upload_model(req("alice"), None, kept)


def test_a_models_words_are_shown_as_written(isolated):
    """A .zip handed on may carry markup in its config. Its data name had loaded a picture from another site and drawn
    a 4,800-pixel KaTeX block in the model's description, a right-to-left override turned the app's words after it
    around, and a 300 kB metrics key froze the browser for 104 s; a refusal quoting the zip's words was HTML too."""
    made = make_checkpoint(isolated / "made")
    config = json.loads((made / "config.json").read_text())
    name = "pts ![t](http://evil.example/n.png) $$\\rule{300em}{300em}$$ <img src=x> \u202eevil"
    config["data"].update(name=name, source='<div style="position:fixed">Sign in</div>')
    config["metrics"] = {"**x** " * 50_000: 1.0}
    (made / "config.json").write_text(json.dumps(config))
    kept = model_files.upload_model(req("alice"), str(pack_checkpoint(made, isolated / "handed.zip")), [])
    rendered = MarkdownIt("commonmark").render(checkpoint_access.describe(kept[-1], kept))
    assert set(re.findall(r"</?([a-z]+)", rendered)) <= {"p", "strong", "span"}, rendered  # no picture, no div
    assert "$$" not in rendered and "\u202e" not in rendered and len(rendered) < 5_000
    assert "data: pts ![t](http://evil.example/n.png) " in html.unescape(re.sub("</?span>", "", rendered))

    config["model"]["kind"] = '<img src="http://evil.example/kind.png">'
    (made / "config.json").write_text(json.dumps(config))
    with pytest.raises(gr.Error) as caught:
        model_files.upload_model(req("alice"), str(pack_checkpoint(made, isolated / "kind.zip")), kept)
    assert "model kind '&lt;img src=\"http://evil.example/kind.png\"&gt;' is not" in caught.value.message


def test_uploads_count_among_the_sessions_checkpoints(isolated, monkeypatch):
    monkeypatch.setenv("DDPM_MAX_RUNS_PER_USER", "2")
    archives = [pack_checkpoint(make_checkpoint(isolated / f"models{k}" / "moons", hidden=16 + k),
                                isolated / f"zips{k}" / "moons.zip") for k in range(3)]  # three models, one name
    archive = archives[2]
    trained: list[str] = []
    for other in archives[:2]:
        trained = model_files.upload_model(req("alice"), str(other), trained)
    with pytest.warns(UserWarning, match="This server keeps your 2 newest models: the oldest, moons, is deleted to make "
                                         "room for moons-3"):
        trained = model_files.upload_model(req("alice"), str(archive), trained)
    assert sorted(p.name for p in runs.user_dir("alice").iterdir()) == ["uploaded-moons-2", "uploaded-moons-3"]
    assert [Path(p).name for p in checkpoint_access.trained_paths(trained)] == ["uploaded-moons-2", "uploaded-moons-3"]
    token, *_ = train_tab.page_loaded(req("alice"), None)  # a page linked to its browser: uploads go to the browser
    trained = model_files.upload_model(req("alice"), str(archives[0]), [])
    assert Path(trained[0]).parent == runs.user_dir(token)
    assert train_tab.page_loaded(req("alice-reloaded"), token)[:2] == (token, trained)  # a reload lists them again


def test_the_same_model_uploaded_again_is_selected_not_kept_twice(isolated):
    """The same .zip uploaded twice made a second copy, which pushed out another of the browser's models."""
    archive = downloaded(req("alice"), str(make_checkpoint(isolated / "shipped" / "moons")), [])
    first = model_files.upload_model(req("alice"), str(archive), [])
    other = model_files.upload_model(req("alice"), str(pack_checkpoint(make_checkpoint(isolated / "b" / "m", hidden=20),
                                                                       isolated / "m.zip")), first)
    shown = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(gr, "Info", lambda message: shown.append(message))
        again = model_files.upload_model(req("alice"), str(archive), other + ["/gone/since"])
    assert again == [other[1], first[0]]  # the one it already had, selected (last); a path gone since is dropped
    assert len(runs.owner_checkpoints("alice")) == 2 and "a model you have here already, moons" in shown[0]


def test_a_model_uploaded_while_a_run_trains_stays_listed_when_the_run_ends(isolated):
    """The run's last update listed the browser's models as the page had them when it started: a model uploaded in
    the Reverse tab meanwhile vanished from both tabs' lists (until a reload)."""
    archive = downloaded(req("alice"), str(make_checkpoint(isolated / "shipped" / "moons")), [])
    gen = train_tab.train_run(req("alice"), None, "swiss_roll", "linear", 100, "mlp", "eps", False, 0.1, "", 30, 64,
                              2e-3, 0, 1000, [], None, *train_tab.controls.default_param_values())
    next(gen)  # loading: the run has started with the page's list, empty
    uploaded = model_files.upload_model(req("alice"), str(archive), [])
    *_, listed = list(gen)[-1]
    assert uploaded[0] in listed and len(listed) == 2  # the upload and the run's model


def test_a_model_that_could_not_be_deleted_is_not_said_to_be(isolated, monkeypatch, caplog):
    """`rmtree(ignore_errors=True)` and then "is deleted": a folder that stayed (a file in use, a permission) was
    still named as deleted to make room, and by the expiry sweep. Only what went is said; what stayed is logged."""
    import os
    import shutil

    from core import paths

    monkeypatch.setenv("DDPM_MAX_RUNS_PER_USER", "1")
    folders = [make_checkpoint(runs.user_dir("alice") / name) for name in ("stuck", "old", "new")]
    for age, folder in enumerate(folders):
        os.utime(folder, (1_000_000_000 + age,) * 2)
    rmtree = shutil.rmtree

    def rmtree_but_stuck(path, **options):  # the folder "stuck" stays, as a file in use would keep it
        if Path(path).name != "stuck":
            rmtree(path, **options)

    monkeypatch.setattr(paths.shutil, "rmtree", rmtree_but_stuck)
    assert runs.prune_user_runs("alice") == [folders[1]]
    assert folders[0].is_dir() and "could not delete" in caplog.text and "stuck" in caplog.text
    assert runs.sweep_expired_checkpoints(now=2_000_000_000) == [folders[2]]  # the stuck one stays, unnamed
    assert folders[0].is_dir() and not folders[2].exists()


def test_uploads_stop_when_the_runs_folder_is_full(isolated, monkeypatch):
    """Each browser keeps five models, but every API client is a browser of its own: six clients had filled 370 MB in
    8 s, kept for a day. Beyond DDPM_MAX_RUNS_GB (all browsers together) an upload is refused, and nothing written."""
    archive = downloaded(req("alice"), str(make_checkpoint(isolated / "shipped" / "moons")), [])
    monkeypatch.setenv("DDPM_MAX_RUNS_GB", "0.01")  # 10 MB
    model_files.upload_model(req("alice"), str(archive), [])  # may unpack to 4 MB: room for it
    (runs.runs_root() / "cli-run").mkdir()  # the CLI's runs beside the browsers' folders do not count
    (runs.runs_root() / "cli-run" / "model.safetensors").write_bytes(bytes(20_000_000))
    model_files.upload_model(req("carol"), str(archive), [])
    (runs.user_dir("carol") / "more.bin").write_bytes(bytes(7_000_000))  # every file of a browser's folder counts
    before = runs.folder_bytes(runs.runs_root())
    with pytest.raises(gr.Error, match=r"Not uploaded: this server's room for visitors' models is full \(0\.01 of 0\.01 "
                                       r"GB, its host's DDPM_MAX_RUNS_GB\)\. Models are deleted 24 hours after"):
        model_files.upload_model(req("bob"), str(archive), [])
    assert runs.folder_bytes(runs.runs_root()) == before and not runs.user_dir("bob").exists()
