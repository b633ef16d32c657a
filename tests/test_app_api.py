"""The launched app through its HTTP API (gradio_client): Forward scrub/rebuild, Train, Reverse.

Each `Client` is one Gradio session, so `gr.State` values (the Forward tab's x_0 and ε, the
Train tab's list of trained checkpoints) live on the server per client, as they do per browser tab.
"""

from __future__ import annotations

import json
import re
import signal
import time
import urllib.request
from pathlib import Path

import pytest
from gradio_client import Client

from core.schedules import SCHEDULE_NAMES, default_params
from tests.app_server import AppServer, app_server, app_url, check_startup, start_app, stop_app  # noqa: F401 (fixtures)

PARAM_DEFAULTS = [value for name in SCHEDULE_NAMES for value in default_params(name).values()]
TRAIN_T = 100
TRAIN_STEPS = 100


def _client(url: str) -> Client:
    return Client(url, verbose=False, download_files=False)


def _plot(value: dict) -> dict:
    """The plotly JSON a gr.Plot output carries (also inside an update that relabels the plot)."""
    if value.get("__type__") == "update":
        value = value["value"]
    assert value["type"] == "plotly", value
    return json.loads(value["plot"])


def _step_row(markdown: str) -> tuple[int, int]:
    match = re.search(r"\| step t \| (\d+) of (\d+) \|", markdown)
    assert match, f"no 'step t' row in the formula markdown:\n{markdown}"
    return int(match.group(1)), int(match.group(2))


def _file(value) -> str:
    """A file output's server path (the client does not download files here)."""
    return value["path"] if isinstance(value, dict) else str(value)


def _endpoints(client: Client) -> set[str]:
    return set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])


def test_startup_time(app_server: AppServer) -> None:
    check_startup(app_server)


def test_endpoints_are_exposed(app_url: str) -> None:
    names = _endpoints(_client(app_url))
    for name in ("/scrub", "/rebuild", "/compare", "/prepare_run", "/train_run", "/stop_run", "/refresh", "/generate",
                 "/encode_examples", "/walk", "/measure_bound", "/fill_in", "/guide", "/guidance_sweep", "/guide_field",
                 "/play_inpainting", "/play_guided", "/play_noise_loop", "/show_step", "/movie_files",
                 "/forward_movie_files"):
        assert name in names, f"{name} is not an API endpoint; the app exposes {sorted(names)}"


def test_the_browser_keeps_no_run_history(app_url: str) -> None:
    """Gradio's run history would store every call's figures in the browser and re-read them on each call."""
    with urllib.request.urlopen(f"{app_url.rstrip('/')}/config", timeout=10) as response:  # noqa: S310 (127.0.0.1 only)
        config = json.load(response)
    assert config["run_history"] is False and "runs" not in config["footer_links"], config["footer_links"]


def test_the_server_sends_no_telemetry(app_url: str) -> None:
    """Gradio's analytics and version check looked up huggingface.co and api.gradio.app at each start: the README
    promises an app that works offline."""
    with urllib.request.urlopen(f"{app_url.rstrip('/')}/config", timeout=10) as response:  # noqa: S310 (127.0.0.1 only)
        assert json.load(response)["analytics_enabled"] is False


def test_forward_scrub_changes_with_t(app_url: str) -> None:
    client = _client(app_url)
    start = time.perf_counter()
    shown = {t: client.predict(t, api_name="/scrub") for t in (0, 250, 1000)}
    per_call = (time.perf_counter() - start) / len(shown)
    print(f"\n[api] /scrub: {per_call * 1000:.0f} ms per call (MNIST grid)")
    images = {}
    for t, (sample, formula, hist, alpha_curve) in shown.items():
        assert _step_row(formula) == (t, 1000)
        picture = _plot(sample)["layout"]["images"][0]  # figures.image_figure: a layout image
        assert picture["source"].startswith("data:image/")
        images[t] = picture["source"]
        assert _plot(hist)["data"], "empty histogram"
        assert _plot(alpha_curve)["data"], "empty ᾱ_t curve"
    assert len(set(images.values())) == 3, "the x_t picture is the same for different t"
    # ε is held fixed: the same t gives the same picture
    again = client.predict(250, api_name="/scrub")
    assert _plot(again[0])["layout"]["images"][0]["source"] == images[250]
    assert per_call < 5.0, f"/scrub took {per_call:.1f} s per call"


def test_forward_rebuild_2d_and_sessions_are_separate(app_url: str) -> None:
    a, b = _client(app_url), _client(app_url)
    slider, summary, sample, formula, _, _ = a.predict(
        40, "moons", None, "linear", TRAIN_T, 0, *PARAM_DEFAULTS, api_name="/rebuild"
    )
    assert slider["maximum"] == TRAIN_T and "value" not in slider, "t within range: the slider's value is left alone"
    assert "T = 100" in summary and "✓" in summary, summary
    assert _step_row(formula) == (40, TRAIN_T)
    points = _plot(sample)  # the moons drawn as one picture over the axes, over x₀ in grey beneath the gridlines
    assert not points["data"] and [im["layer"] for im in points["layout"]["images"]] == ["below", "above"]
    # client a now scrubs moons at T = 100; client b still has its own default (MNIST, T = 1000)
    a_sample, a_formula, *_ = a.predict(100, api_name="/scrub")
    b_sample, b_formula, *_ = b.predict(100, api_name="/scrub")
    assert _step_row(a_formula) == (100, TRAIN_T)
    assert _plot(a_sample)["layout"]["images"][-1]["layer"] == "above"
    assert _step_row(b_formula) == (100, 1000)
    assert not _plot(b_sample)["data"] and _plot(b_sample)["layout"]["images"][0]["layer"] == "below"  # MNIST
    # a schedule that does not reach noise is flagged
    _, summary, *_ = a.predict(0, "moons", None, "linear", 10, 0, 1e-4, 0.02, False, *PARAM_DEFAULTS[3:],
                               api_name="/rebuild")
    assert "⚠" in summary and "does not reach noise" in summary, summary


def test_forward_rebuild_clamps_t_to_a_shorter_chain(app_url: str) -> None:
    c = _client(app_url)
    c.predict(40, "moons", None, "linear", TRAIN_T, 0, *PARAM_DEFAULTS, api_name="/rebuild")
    shorter = TRAIN_T // 2
    clamped = c.predict(TRAIN_T - 10, "moons", None, "linear", shorter, 0, *PARAM_DEFAULTS, api_name="/rebuild")[0]
    assert clamped["maximum"] == shorter and clamped["value"] == shorter, "t beyond the new T is clamped to T"


def test_forward_bad_input_is_a_clear_error(app_url: str) -> None:
    client = _client(app_url)
    with pytest.raises(Exception, match=r"T must be a whole number"):
        client.predict(0, "moons", None, "linear", 1, 0, *PARAM_DEFAULTS, api_name="/rebuild")


def test_train_then_reverse(app_url: str) -> None:
    """A tiny 2D run through the Train endpoints, then the Reverse chain from its checkpoint."""
    client = _client(app_url)
    args = ["moons", "linear", TRAIN_T, "mlp", "eps", False, 0.1, "", TRAIN_STEPS, 128, 2e-3, 0, 10_000, *PARAM_DEFAULTS]  # "": new model
    assert "Waiting" in client.predict(*args, api_name="/prepare_run")
    start = time.perf_counter()
    job = client.submit(*args, api_name="/train_run")
    statuses = [out[0] for out in job]  # every streamed update, the last one included
    final_status, loss_plot, _, error_by_t, filmstrip = job.result(timeout=120)
    preview = client.predict(api_name="/final_preview")  # drawn from the saved weights once the run's stream ended
    train_s = time.perf_counter() - start
    print(f"\n[api] train {TRAIN_STEPS} steps (moons, T = {TRAIN_T}): {train_s:.1f} s, {len(statuses)} updates")
    assert "Finished after 100 steps" in final_status, final_status
    name = re.search(r"Saved as <b>([^<]+)</b>", final_status).group(1)
    traces = _plot(loss_plot)["data"]
    assert traces and len(traces[0]["x"]) == TRAIN_STEPS, "the loss curve does not have one point per step"
    assert _plot(preview)["data"][0]["type"] == "scatter"
    assert _plot(error_by_t)["data"][0]["type"] == "bar"
    assert preview.get("label", "").startswith("Samples from the saved (EMA) weights after 100 steps"), preview.keys()

    dropdown, info = client.predict(None, api_name="/refresh")
    path = dropdown["value"]
    assert path and Path(path).name == name, dropdown
    assert "moons" in info and "T = 100" in info, info
    start = time.perf_counter()
    page, stats, sprite = client.predict(path, "ddpm_small", 0.0, 0, 300, 0, 20, api_name="/generate")
    print(f"[api] generate 300 samples, {TRAIN_T} steps, 20 frames: {time.perf_counter() - start:.1f} s")
    assert 'class="ddpm-player pl-smooth"' in page and 'data-frames="20"' in page
    ts = [int(t) for t in re.search(r'data-ts="([^"]+)"', page).group(1).split(",")]
    assert ts[0] == TRAIN_T and ts[-1] == 0 and ts == sorted(ts, reverse=True)
    assert f"all T = {TRAIN_T} steps" in stats, stats
    assert _file(sprite).endswith(".png")
    chain_id = re.search(r'data-id="([^"]+)"', page).group(1)
    assert chain_id in _file(sprite)
    gif, mp4 = client.predict(api_name="/movie_files")  # the client's session keeps the movie shown
    assert Path(_file(gif)).name == f"reverse-{name}-ddpm{TRAIN_T}-seed0.gif" and _file(mp4).endswith(".mp4")
    assert Path(_file(gif)).parent == Path(_file(sprite)).parent

    # DDIM with 10 steps from the same checkpoint
    page, stats, *_ = client.predict(path, "ddim", 0.0, 10, 100, 1, 11, api_name="/generate")
    ts = [int(t) for t in re.search(r'data-ts="([^"]+)"', page).group(1).split(",")]
    assert len(ts) == 11 and ts[0] == TRAIN_T and ts[-1] == 0, ts

    # another session neither lists nor may sample this session's checkpoint
    other = _client(app_url)
    other_dropdown, _ = other.predict(None, api_name="/refresh")
    assert path not in [value for _, value in other_dropdown["choices"]]
    with pytest.raises(Exception):
        other.predict(path, "ddpm_small", 0.0, 0, 100, 0, 10, api_name="/generate")


def test_a_generate_runs_beside_a_training_run(app_url: str) -> None:
    """Training and sampling shared one queue: a Generate waited for every training run, those queued too (an hour
    in a lecture of thirty runs). It now has a queue of its own, and runs while another visitor's run trains."""
    trainer, sampler = _client(app_url), _client(app_url)
    args = ["moons", "linear", TRAIN_T, "mlp", "eps", False, 0.1, "", 20_000, 128, 2e-3, 0, 10_000, *PARAM_DEFAULTS]
    trainer.predict(*args, api_name="/prepare_run")
    run = trainer.submit(*args, api_name="/train_run")
    try:
        deadline = time.monotonic() + 60
        while not any("Step" in str(out[0]) for out in run.outputs()) and time.monotonic() < deadline:
            time.sleep(0.2)  # training: its status counts the steps
        dropdown, _ = sampler.predict(None, api_name="/refresh")
        moons = next(value for label, value in dropdown["choices"] if label == "moons (shipped)")
        page, stats, *_ = sampler.predict(moons, "ddim", 0.0, 10, 100, 0, 11, api_name="/generate")
        assert 'data-frames="11"' in page and not run.done(), "the Generate waited for the training run to end"
    finally:
        trainer.predict(api_name="/stop_run")
    assert "Stopped" in run.result(timeout=60)[0]


def test_a_server_stopped_by_its_host_saves_the_run_under_way(tmp_path) -> None:
    """SIGTERM (a Space's restart, `kill`) ended the server at once, and the run under way was lost without a word;
    Ctrl-C lost it too, and torch, killed mid-step, aborted the process. Both now close the server, then stop and save
    every run (`app.runs.stop_every_run`)."""
    server = start_app(tmp_path / "runs", tmp_path / "app.log")
    try:
        client = _client(server.url)
        args = ["moons", "linear", TRAIN_T, "mlp", "eps", False, 0.1, "", 20_000, 128, 2e-3, 0, 10_000, *PARAM_DEFAULTS]
        client.predict(*args, api_name="/prepare_run")
        run = client.submit(*args, api_name="/train_run")
        deadline = time.monotonic() + 60
        steps = re.compile(r"Step <b>(\d+)</b>")
        while time.monotonic() < deadline and not any(
                int(found[1]) > 150 for out in run.outputs() if (found := steps.search(str(out[0])))):
            time.sleep(0.2)  # past step 100: a stopped run is kept from there on
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=30) == 0
    finally:
        stop_app(server.process)
    assert "stopped 1 training run and saved 1" in server.log_path.read_text()
    saved = list((tmp_path / "runs").glob("k*/moons-*/config.json"))
    assert len(saved) == 1 and json.loads(saved[0].read_text())["training"]["end_reason"] == "stopped"


def test_stop_without_a_run(app_url: str) -> None:
    client = _client(app_url)
    assert "No training run to stop" in client.predict(api_name="/stop_run")


def test_reverse_from_a_shipped_checkpoint(app_url: str) -> None:
    client = _client(app_url)
    dropdown, _ = client.predict(None, api_name="/refresh")
    shipped = [value for label, value in dropdown["choices"] if label.endswith("(shipped)")]
    assert len(shipped) >= 11, f"the shipped checkpoints should be listed: {shipped}"
    for path in shipped:
        info, *_, start_t = client.predict(path, api_name="/checkpoint_selected")
        assert Path(path).name in info, info
        assert start_t["maximum"] == 1000 and start_t["value"] == 400, start_t  # t₀: 1..T, 0.4·T at first
        page, stats, sprite = client.predict(path, "ddim", 0.0, 20, 16, 0, 21, api_name="/generate")
        ts = [int(t) for t in re.search(r'data-ts="([^"]+)"', page).group(1).split(",")]
        assert len(ts) == 21 and ts[-1] == 0, (path, ts)
        assert "DDIM" in stats and _file(sprite).endswith(".png"), stats


def test_ddim_map_bound_inpainting_and_guidance_of_shipped_checkpoints(app_url: str) -> None:
    client = _client(app_url)
    dropdown, _ = client.predict(None, api_name="/refresh")
    swiss = next(value for label, value in dropdown["choices"] if Path(value).name == "swiss_roll_linear")
    _, stats = client.predict(swiss, 20, "uniform", 300, 0, False, api_name="/encode_examples")
    assert "300 training examples encoded" in stats and "Decoded again" in stats, stats
    _, stats = client.predict(swiss, 20, "uniform", 0, False, api_name="/walk")
    assert "pairs of noises" in stats, stats
    with pytest.raises(Exception, match="Sampling steps must be a whole number from 1 to 1000"):
        client.predict(swiss, 5000, "uniform", 0, False, api_name="/walk")
    _, stats = client.predict(swiss, 100, 0, False, api_name="/measure_bound")
    assert "on 100 training examples · all 999 terms" in stats, stats
    _, stats = client.predict(swiss, "ddpm_small", 0.0, 20, "log_snr", 200, 0, False, "y", 2, api_name="/fill_in")
    assert "200 training examples, known: y (x is drawn)" in stats and "On the data" in stats, stats
    with pytest.raises(Exception, match="Choose what is known"):
        client.predict(swiss, "ddpm_small", 0.0, 20, "log_snr", 200, 0, False, "top", 2, api_name="/fill_in")
    mnist = next(value for label, value in dropdown["choices"] if Path(value).name == "mnist")
    _, stats = client.predict(mnist, "ddim", 0.0, 10, "uniform", 4, 0, "7", 3.0, api_name="/guide")
    assert "4 samples from the same noise" in stats and "read by the shipped classifier as **7**" in stats, stats
    conditional = next(value for label, value in dropdown["choices"] if Path(value).name == "eight_gaussians_conditional")
    _, stats = client.predict(conditional, "ddim", 0.0, 10, "uniform", 200, 0, "90° (top)", 1.0, "classifier-free",
                              api_name="/guide")
    assert "classifier-free (the model's own classes)" in stats and "Nearest the centre of **90° (top)**" in stats, stats
    _, stats = client.predict(conditional, "ddim", 0.0, 10, "uniform", 200, 0, "90° (top)", "0, 2", api_name="/guidance_sweep")
    assert re.search(r"^\| classifier-free \| 2 \| (19\d|200) of 200 \|", stats, re.M), stats  # s = 2: (nearly) all of 200 at the top
    with pytest.raises(Exception, match="Guidance needs classes: a class-conditional model"):
        client.predict(swiss, "ddim", 0.0, 10, "uniform", 4, 0, "7", 3.0, api_name="/guide")
