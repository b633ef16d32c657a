"""The launched app in a real browser (headless Debian Chromium driven by Playwright).

Walks every tab (screenshots in test-artifacts/), scrubs t on Forward and checks the x_t picture
changes, trains a short 2D run on Train, stops it and checks it was saved, samples it on Reverse
and checks the in-browser player advances and pauses, and checks that two browser sessions keep
their own state. Chromium comes from the system (CI: `apt-get install chromium`); never
`playwright install`.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
import zipfile
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import sync_playwright

from app import accessibility, checkpoint_access, kept_chain, movie_files, panel_grid, plot_page
from tests.app_server import ARTIFACTS, app_server, app_url  # noqa: F401 (pytest fixtures)

pytestmark = pytest.mark.browser

CHROMIUM = Path(os.environ.get("DDPM_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--enable-unsafe-swiftshader",  # WebGL (Scattergl) in headless Chromium
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
VIEWPORT = {"width": 1400, "height": 1000}
# A 1280 × 720 projector with the browser zoomed to 150 %, as in a lecture: 853 × 480 CSS px.
PROJECTOR = {"viewport": {"width": 853, "height": 480}, "device_scale_factor": 1.5}
TIMEOUT_MS = 30_000  # any single wait; the machine is a busy 2-core box
T_LABEL = "t (0 = clean data x₀, T = end of the chain)"
BIG_T_LABEL = re.compile(r"^T \(number of steps")

# Summary of a gr.Plot's first trace, found by the plot's label: type, point count, and a hash of
# an image trace's data URI (so that a new picture is noticed without shipping it back).
PLOT_JS = """(label) => {
  const size = {f8: 8, f4: 4, i4: 4, u4: 4, i2: 2, u2: 2, i1: 1, u1: 1, u1c: 1};
  const len = (x) => !x ? 0 : x.length !== undefined ? x.length  // plain or typed array
    : x.bdata ? Math.floor(atob(x.bdata).length / (size[x.dtype] || 8)) : 0;  // plotly's base64 arrays
  for (const el of document.querySelectorAll('.js-plotly-plot')) {
    const block = el.closest('.block');
    const lab = block && block.querySelector('[data-testid="block-label"]');
    if (!lab || lab.innerText.trim() !== label || !el.offsetParent) continue;
    const d = el.data || [];
    const picture = ((el.layout || {}).images || [])[0];  // figures.image_figure: a layout image, no trace
    if (!d.length && !picture) return {traces: 0, type: null, n: 0, hash: null};
    let h = 0;
    const src = picture ? picture.source : d[0].source || '';
    for (let i = 0; i < src.length; i++) h = (h * 31 + src.charCodeAt(i)) | 0;
    return {traces: d.length, type: picture ? 'picture' : d[0].type, n: d.length ? len(d[0].x) : 0,
            hash: src ? h : null};
  }
  return null;
}"""


# In every animation frame from now on: whether the plot labelled ``label`` shows its picture (its SVG image has its
# data). Plotly's image traces set theirs a frame or more after a new plot is drawn, and Gradio draws each update on a
# new plot: x_t flashed blank while t was dragged.
BLANK_FRAMES_JS = """(label) => {
  window.blankFrames = {seen: 0, blank: 0};
  const tick = () => {
    for (const el of document.querySelectorAll('.js-plotly-plot')) {
      const lab = el.closest('.block')?.querySelector('[data-testid="block-label"]');
      if (!lab || lab.innerText.trim() !== label || !el.offsetParent) continue;
      const image = el.querySelector('image');
      window.blankFrames.seen++;
      if (!image || !(image.getAttribute('href') || image.getAttributeNS('http://www.w3.org/1999/xlink', 'href')))
        window.blankFrames.blank++;
    }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}"""


# Counts the figures drawn from now on (`Plotly.react`) and those drawn into a plot that left the page in the same task:
# Gradio redraws the old plot with a new figure, then drops it for a new one (`plot_page.REDRAW_KEPT_PLOTS_ONLY_JS`).
WASTED_DRAWS_JS = """() => {
  window.draws = {all: 0, wasted: 0};
  const react = window.Plotly.react;
  window.Plotly.react = function (gd, data, ...args) {
    window.draws.all++;
    setTimeout(() => { if (!gd.isConnected && gd.data === data) window.draws.wasted++; });
    return react.call(this, gd, data, ...args);
  };
}"""


# Each canvas of the Reverse player against its panel's slice (data-x, its width) of the frame shown, cut from the
# sprite sheet here: the largest difference of a colour value, and whether it holds more than the paper.
CANVAS_SLICES_JS = """async () => {
  const root = document.querySelector('#reverse-player .ddpm-player');
  const sheet = new Image();
  sheet.src = window.__ddpmSpriteUrl;
  await sheet.decode();
  const i = +root.dataset.frame, cols = +root.dataset.cols, fw = +root.dataset.w, fh = +root.dataset.h;
  return [...root.querySelectorAll('canvas')].map((canvas) => {
    const cut = document.createElement('canvas');
    [cut.width, cut.height] = [canvas.width, canvas.height];
    cut.getContext('2d').drawImage(sheet, (i % cols) * fw + +canvas.dataset.x, Math.floor(i / cols) * fh,
                                   canvas.width, fh, 0, 0, canvas.width, fh);
    const want = cut.getContext('2d').getImageData(0, 0, cut.width, cut.height).data;
    const shown = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let diff = 0, drawn = false;
    for (let k = 0; k < want.length; k++) { diff = Math.max(diff, Math.abs(want[k] - shown[k])); drawn ||= shown[k] < 200; }
    return {x: +canvas.dataset.x, diff, drawn};
  });
}"""


# Counts the plots drawn from now on in the block with this elem_id (Gradio draws each new figure on a new plot).
COUNT_NEW_PLOTS_JS = """(id) => {
  window.newPlots = 0;
  new MutationObserver((records) => {
    for (const record of records) for (const node of record.addedNodes)
      if (node instanceof HTMLElement && (node.matches('.js-plotly-plot') || node.querySelector('.js-plotly-plot')))
        window.newPlots++;
  }).observe(document.getElementById(id), {childList: true, subtree: true});
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: install Debian's chromium (apt-get install chromium) "
            "or set DDPM_TEST_CHROMIUM; `playwright install` is not used here."
        )
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class Page:
    """A page of the app in its own browser context (= its own Gradio session)."""

    def __init__(self, browser, url: str, name: str, **context) -> None:
        self.context = browser.new_context(**({"viewport": VIEWPORT} | context))
        self.page = self.context.new_page()
        self.cdp = self.context.new_cdp_session(self.page)
        self.page.set_default_timeout(TIMEOUT_MS)
        self.name = name
        self.errors: list[str] = []
        self.page.on("pageerror", lambda err: self.errors.append(f"page error: {err}"))
        self.page.on("console", lambda msg: self.errors.append(f"console error: {msg.text}") if msg.type == "error" else None)
        start = time.perf_counter()
        self.page.goto(url)
        self.page.get_by_role("tab", name="Forward").wait_for()
        self.wait_plots(3)  # Forward's x_t, histogram and ᾱ_t plots drawn by plotly.js
        self.load_seconds = time.perf_counter() - start

    def close(self) -> None:
        self.context.close()

    def wait_plots(self, n: int) -> None:
        self.page.wait_for_function(
            "(n) => Array.from(document.querySelectorAll('.js-plotly-plot')).filter(e => e.offsetParent && "
            "((e.data || []).length || ((e.layout || {}).images || []).length)).length >= n",  # traces, or a picture
            arg=n,
        )

    def resize_listeners(self) -> int:
        """The window's "resize" listeners: plotly adds one for each plot (freed by `plot_page.FREE_DROPPED_PLOTS_JS`
        when Gradio drops the plot)."""
        result = self.cdp.send("Runtime.evaluate", {"expression": "(getEventListeners(window).resize || []).length",
                                                    "includeCommandLineAPI": True, "returnByValue": True})
        return result["result"]["value"]

    def plot(self, label: str) -> dict | None:
        return self.page.evaluate(PLOT_JS, label)

    def tab(self, name: str) -> None:
        self.page.get_by_role("tab", name=name).click()  # every tab in sight however narrow the window
        self.page.wait_for_function(
            "(name) => Array.from(document.querySelectorAll('[role=tab]')).some(t => t.innerText.trim() === name && t.getAttribute('aria-selected') === 'true')",
            arg=name,
        )

    def model(self, label: str) -> None:
        """Choose the checkpoint listed as ``label`` (e.g. "mnist (shipped)") in the tab's Checkpoint list."""
        self.page.get_by_role("combobox", name="Checkpoint").click()
        self.page.get_by_role("option", name=label).click()

    def painted_part(self) -> None:
        """In the open inpainting panel: Known part "what you leave unpainted" (its box shown, the brush picked: a
        stroke paints), with one round per step (the replacement alone: quick)."""
        self.page.get_by_role("combobox", name="Known part").click()
        self.page.get_by_role("option", name="what you leave unpainted").click()
        self.page.wait_for_selector('#reverse-inpaint-paint button[aria-label="Brush"].highlight')
        rounds = self.page.get_by_label("number input for Resampling rounds per step (U)")
        rounds.fill("1")
        rounds.press("Enter")

    def visible(self, locator):
        return locator.filter(visible=True)

    def number(self, label) -> object:
        """The visible number input with this label (several tabs have e.g. a "T" input)."""
        return self.visible(self.page.get_by_label(label, exact=isinstance(label, str))).first

    def shot(self, name: str, full_page: bool = True) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        # a full page while a training run updates its plots can take long on 2 busy cores: allow 90 s, not 30
        self.page.screenshot(path=str(path), full_page=full_page, timeout=90_000)
        return path

    def assert_clean(self, where: str) -> None:
        """No error toast on the page and no uncaught script error."""
        toasts = self.page.locator('[data-testid="toast-body"].error')
        texts = toasts.all_inner_texts() if toasts.count() else []
        assert not texts, f"{self.name}, {where}: error toast(s) {texts}"
        script_errors = [e for e in self.errors if "favicon" not in e]
        assert not script_errors, f"{self.name}, {where}: {script_errors}"

    def t_cell(self) -> str:
        """The 'step t' cell of the Forward tab's formula table, e.g. '250 of 1000'."""
        return self.page.locator("td", has_text=re.compile(r"^\s*\d+ of \d+\s*$")).first.inner_text().strip()

    def set_t(self, value: int, expected_cell: str) -> None:
        """Type t into the Forward tab's slider (`set_slider`) and wait for the formula table to show it."""
        self.set_slider("forward-t", value)
        self.wait_t_cell(expected_cell)

    def set_slider(self, elem_id: str, value: int, tries: int = 5) -> None:
        """Type `value` into the slider's number box and wait until its range input shows it.

        The slider takes a typed value on leaving the box; pressing a button before it has sends the old value.
        On a busy machine a slider in a just-opened accordion can lose the first typing (seen once in CI: the
        Frames slider stayed at 60 for 30 s), so type again, as a user would, a few times before failing.
        """
        box = self.page.locator(f"#{elem_id} input[type=number]")
        shows = f"() => document.querySelector('#{elem_id} input[type=range]')?.value === '{value}'"
        for _ in range(tries):
            box.fill(str(value))
            box.press("Enter")
            box.blur()
            try:
                self.page.wait_for_function(shows, timeout=6_000)
                return
            except PlaywrightTimeoutError:
                continue
        shown = self.page.evaluate(f"() => document.querySelector('#{elem_id} input[type=range]')?.value")
        raise AssertionError(f"#{elem_id}: typed {value} {tries} times; the box shows {box.input_value()!r}, "
                             f"the slider {shown!r}")

    def wait_t_cell(self, expected: str) -> None:
        self.page.wait_for_function(
            """(want) => Array.from(document.querySelectorAll('td')).some(td => td.innerText.trim() === want)""",
            arg=expected,
        )


@pytest.fixture
def page(browser, app_url: str) -> Iterator[Page]:
    p = Page(browser, app_url, "main")
    print(f"\n[browser] first load with plots: {p.load_seconds:.1f} s")
    try:
        yield p
    finally:
        p.close()


def test_tabs_forward_train_reverse(page: Page) -> None:
    p = page.page
    timings: dict[str, float] = {}

    # ----- Forward: scrub t with the keyboard and with the number box; the x_t picture changes
    start = time.perf_counter()
    before = page.plot("x_t")
    assert before and before["type"] == "picture" and before["hash"] is not None, before
    assert page.t_cell() == "0 of 1000"
    page.shot("forward")
    p.evaluate(BLANK_FRAMES_JS, "x_t")  # from now on, count the frames where x_t shows no picture
    p.evaluate(WASTED_DRAWS_JS)
    slider = p.get_by_label(f"range slider for {T_LABEL}")
    slider.focus()
    event_names = dict(p.evaluate(
        "() => window.gradio_config.dependencies.map(d => [d.id, d.api_name || String(d.id)])"))
    asked = []  # the server's events of the scrub: each key had also asked to put the box right and to draw the
    # panels, both closed (two requests of three, as much of the server's time as the scrub itself)

    def ask(request) -> None:
        if request.method == "POST" and ("/queue/join" in request.url or "/run/predict" in request.url):
            asked.append(event_names.get(json.loads(request.post_data or "{}").get("fn_index")))

    p.on("request", ask)
    for _ in range(20):  # a quick scrub, as with a held key
        slider.press("ArrowRight")
    page.wait_t_cell("20 of 1000")
    p.wait_for_timeout(500)
    p.remove_listener("request", ask)
    assert asked and set(asked) == {"scrub"}, asked
    slider.press("PageUp")  # +10% of the range
    page.wait_t_cell("120 of 1000")
    p.wait_for_function("([label, h]) => { const r = (" + PLOT_JS + ")(label); return r && r.hash !== h; }",
                        arg=["x_t", before["hash"]])
    after_keys = page.plot("x_t")
    page.set_t(900, "900 of 1000")
    p.wait_for_function("([label, h]) => { const r = (" + PLOT_JS + ")(label); return r && r.hash !== h; }",
                        arg=["x_t", after_keys["hash"]])
    frames = p.evaluate("() => window.blankFrames")
    assert frames["seen"] > 10 and frames["blank"] == 0, frames  # every redraw of x_t shows its picture at once
    draws = p.evaluate("() => window.draws")
    assert draws["all"] >= 6 and draws["wasted"] == 0, f"figures drawn into plots that were dropped at once: {draws}"
    stored = p.evaluate("() => Object.keys(localStorage).filter(key => key.startsWith('gradio:run-history'))")
    assert not stored, f"the scrub's calls, with their figures, were kept in the browser's storage: {stored}"
    assert page.plot("Histogram of x_t vs the N(0, 1) density")["traces"] == 2
    page.shot("forward-t900")
    # what the network could learn to predict at this t: x_t, ε, x₀ and v side by side, with v's numbers
    p.get_by_text("What the network learns to predict at this t").click()
    p.wait_for_selector("#forward-targets >> text=At t = 900", timeout=15_000)
    assert p.locator("#forward-targets-plot .js-plotly-plot").first.evaluate("el => el.data.length") == 4
    # it follows the keyboard too (app.controls.KEYBOARD_RELEASE_JS), not only a let-go pointer: an arrow key on the
    # slider, a t typed into its box and entered (no blur), and ↑ in the box
    slider.focus()
    slider.press("ArrowLeft")
    p.wait_for_selector("#forward-targets >> text=At t = 899", timeout=15_000)
    box = p.locator("#forward-t input[type=number]")
    box.fill("640")
    box.press("Enter")
    p.wait_for_selector("#forward-targets >> text=At t = 640", timeout=15_000)
    box.press("ArrowUp")  # a step in the box
    p.wait_for_selector("#forward-targets >> text=At t = 641", timeout=15_000)
    page.wait_t_cell("641 of 1000")
    box.fill("2000")  # past T, entered: the views show T, and so does the box
    box.press("Enter")
    p.wait_for_selector("#forward-targets >> text=At t = 1000", timeout=15_000)
    p.wait_for_function("() => document.querySelector('#forward-t input[type=number]').value === '1000'")
    box.fill("641")
    box.press("Enter")
    page.wait_t_cell("641 of 1000")
    # no ↺ beside t: it sends a release alone, which would move the panels above while the views, drawn on input,
    # stayed (Home and a typed 0 do as much)
    assert p.locator("#forward-t [data-testid=reset-button]").count() == 0
    # the chain run step by step beside the jump, at the same t: its three panels and the noise plot's two traces
    p.get_by_text("One step at a time").click()
    p.wait_for_selector("#forward-chain >> text=At t = 641 the chain has taken 641 steps", timeout=15_000)
    assert p.locator("#forward-chain-noise .js-plotly-plot").first.evaluate("el => el.data.length") == 2
    box.press("ArrowDown")
    p.wait_for_selector("#forward-chain >> text=At t = 640 the chain has taken 640 steps", timeout=15_000)
    p.wait_for_selector("#forward-targets >> text=At t = 640", timeout=15_000)  # one event draws both open panels
    # the box emptied, then another t typed key by key: t follows the digits (the t on view had come back into the
    # box at once, with a toast, and the digits went after it: "640250", clamped to 1000); left empty, the box shows
    # the t on view again
    box.select_text()
    box.press("Backspace")
    box.press_sequentially("250", delay=150)
    page.wait_t_cell("250 of 1000")  # the views follow each digit; the open panels, Enter
    box.press("Enter")
    p.wait_for_selector("#forward-chain >> text=At t = 250 the chain has taken 250 steps", timeout=15_000)
    assert box.input_value() == "250"
    box.select_text()
    box.press("Backspace")
    box.blur()
    p.wait_for_function("() => document.querySelector('#forward-t input[type=number]').value === '250'")
    p.wait_for_timeout(1500)  # the open panels stay at the t on view (they had been drawn at the 0 Gradio put there)
    assert "At t = 250" in p.locator("#forward-targets").inner_text()
    assert "At t = 250 the chain" in p.locator("#forward-chain").inner_text()
    # the movie of the forward process: 10 frames from x_0 to x_T in its own player
    p.get_by_text("Play the forward process as a movie").click()
    page.set_slider("forward-frames", 10)
    p.get_by_role("button", name="Animate").click()
    p.wait_for_selector('#forward-player .ddpm-player[data-ready="1"]', timeout=30_000)
    movie = p.locator("#forward-player .ddpm-player")
    assert movie.get_attribute("data-frames") == "10" and movie.get_attribute("data-ts").startswith("0,")
    assert movie.get_attribute("data-ts").endswith(",1000")
    page.shot("forward-movie")
    page.assert_clean("Forward tab after scrubbing t and playing the movie")
    timings["forward"] = time.perf_counter() - start

    # ----- Schedules: the comparison figures are drawn
    start = time.perf_counter()
    page.tab("Schedules")
    assert movie.get_attribute("data-playing") == "1"  # the Forward movie, unseen, waits (it had drawn on, 60 Hz)
    shown = movie.get_attribute("data-shown")
    p.wait_for_timeout(2500)  # longer than a loop of its 10 frames and its pause on the last
    assert movie.get_attribute("data-shown") == shown
    page.wait_plots(4)
    for label in ("ᾱ_t: fraction of the signal's variance kept (its size: √ᾱ_t)", "log-SNR(t) = log(ᾱ_t / (1 − ᾱ_t))"):
        info = page.plot(label)
        assert info and info["traces"] >= 2 and info["n"] > 10, (label, info)
    alpha = "ᾱ_t: fraction of the signal's variance kept (its size: √ᾱ_t)"
    lines = page.plot(alpha)["traces"]  # a curve and its SNR = 1 marker per schedule
    page.visible(p.get_by_label("quadratic in √β")).first.check()  # a fourth schedule: drawn
    p.wait_for_function("([label, n]) => (" + PLOT_JS + ")(label)?.traces > n", arg=[alpha, lines])
    four = page.plot(alpha)["traces"]
    fifth = page.visible(p.get_by_label("sigmoid in β-space", exact=False)).first
    fifth.click()  # a fifth: undone, with a note; the views stay
    p.get_by_text("At most 4 schedules fit side by side").first.wait_for()
    p.wait_for_function("(box) => !box.checked", arg=fifth.element_handle())
    assert page.plot(alpha)["traces"] == four
    page.shot("schedules")
    page.assert_clean("Schedules tab")
    timings["schedules"] = time.perf_counter() - start

    # ----- Train: a 2D run with T = 100; loss points stream in; Stop saves the model
    start = time.perf_counter()
    page.tab("Train")
    p.wait_for_function("(label) => { const r = (" + PLOT_JS + ")(label); return r && r.n > 0; }",
                        arg="Training data (grey): a run draws samples from its EMA weights over it")  # before a run
    page.shot("train")
    # the rate of dropping the class to ∅ is shown for a class-conditional run only
    drop_rate, conditional = p.locator("#train-p-uncond"), p.locator("#train-conditional input")
    assert not drop_rate.is_visible()
    conditional.check()
    drop_rate.wait_for(state="visible")
    conditional.uncheck()
    drop_rate.wait_for(state="hidden")
    # your own points: the brush is picked for you; a stroke becomes the training points in the preview
    data = page.visible(p.get_by_label("Training data")).first
    data.click()
    p.get_by_role("option", name=re.compile("^Your own points")).click()
    p.wait_for_selector('#train-drawing button[aria-label="Brush"].highlight')
    box = p.locator("#train-drawing canvas").first.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    p.mouse.move(x - 60, y - 40)
    p.mouse.down()
    for i in range(1, 25):
        p.mouse.move(x - 60 + 5 * i, y - 40 + 40 * math.sin(i / 4))
    p.mouse.up()
    p.wait_for_function("(label) => { const r = (" + PLOT_JS + ")(label); return r && r.n > 0; }",
                        arg="Training data (grey): a run draws samples from its EMA weights over it · 10,000 points, "
                            "drawn in the Train tab")
    page.shot("train-drawn")
    # a CSV that is not one: an error toast, the file leaves the box, the drawn points stay
    p.locator("#train-csv input[type=file]").set_input_files(
        {"name": "names.csv", "mimeType": "text/csv", "buffer": b"name,city\nada,london\n"})
    toast = p.locator('[data-testid="toast-body"].error')
    toast.filter(has_text="names.csv cannot be used: the CSV holds no (x, y) rows: none of its 2 lines").wait_for()
    p.wait_for_function("() => /Drop File Here/.test(document.querySelector('#train-csv').innerText)")
    assert page.plot("Training data (grey): a run draws samples from its EMA weights over it · 10,000 points, "
                     "drawn in the Train tab")["n"] > 0
    p.locator('[data-testid="toast-close"]').first.click()
    toast.wait_for(state="detached")
    data.click()
    p.get_by_role("option", name="Swiss roll").click()
    p.wait_for_function("(label) => { const r = (" + PLOT_JS + ")(label); return r && r.n > 0; }",
                        arg="Training data (grey): a run draws samples from its EMA weights over it")
    page.number(BIG_T_LABEL).fill("100")
    page.number("Training steps").fill("20000")  # far more than we wait for: Stop ends it
    page.number("Batch size").fill("128")
    p.locator("#train-prediction label", has_text="v = ").click()  # the network learns v, not ε
    listeners = page.resize_listeners()
    p.evaluate(COUNT_NEW_PLOTS_JS, "train-loss")
    p.get_by_role("button", name="Start training").click()
    p.wait_for_function("(label) => { const r = (" + PLOT_JS + ")(label); return r && r.n > 0; }",
                        arg="Training loss", timeout=60_000)
    status = p.locator("#train-status")
    p.wait_for_function("() => /Step\\s*\\d+\\s*\\/\\s*20000/.test(document.querySelector('#train-status').innerText)")
    loss = page.plot("Training loss")
    assert loss["traces"] == 2 and loss["n"] > 0, loss  # raw and smoothed loss
    assert "loss ‖v − v̂‖²" in p.locator("#train-loss .ytitle").first.text_content()  # the axis names the target
    p.wait_for_function("() => window.newPlots >= 5")  # the loss curve has been redrawn a few times
    # a screen reader is told of the status (a polite live region), but not of each second's progress (busy)
    assert (status.get_attribute("role"), status.get_attribute("aria-live")) == ("status", "polite")
    assert status.get_attribute("aria-busy") == "true"
    page.shot("train-running", full_page=False)  # the window only: a full page resizes it while plots stream in
    p.locator("#train-stop").click()
    p.wait_for_function("() => /Stopped after [\\d,]+ steps?/.test(document.querySelector('#train-status').innerText)",
                        timeout=60_000)
    text = status.inner_text()
    assert "Saved as" in text, f"Train tab: after Stop the status says {text!r}"
    p.wait_for_function("() => document.querySelector('#train-status').getAttribute('aria-busy') === 'false'")
    contrast = p.evaluate(CONTRAST_JS, "#train-status .train-status > [class^=tone-]")  # amber's was 3.2
    assert contrast >= 4.5, f"the status after Stop: contrast {contrast:.1f}"
    saved = re.search(r"Saved as (\S+?);", text).group(1)
    page.shot("train-stopped")
    page.assert_clean("Train tab after Stop")
    # every redraw put the curve on a new plot; the dropped ones let go of the window, or the page would grow with
    # each (it grew by 1.2 MB/s while a run trained)
    redraws, deadline = p.evaluate("() => window.newPlots"), time.monotonic() + 10
    while (now := page.resize_listeners()) > listeners + 1 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert now <= listeners + 1, f"{redraws} redraws of the loss curve left {now - listeners} more resize listeners"
    timings["train"] = time.perf_counter() - start

    # ----- Reverse: the stopped run is selected; Generate; the player plays, then pauses
    start = time.perf_counter()
    page.tab("Reverse")
    checkpoint = page.visible(p.get_by_label("Checkpoint", exact=True)).first
    listed = checkpoint_access.session_label(Path(saved))  # "swiss_roll-linear-T100 (trained 19:30:27)"
    p.wait_for_function("(listed) => Array.from(document.querySelectorAll('input')).some(i => i.value === listed)",
                        arg=listed)
    assert checkpoint.input_value() == listed and " (trained " in listed, checkpoint.input_value()
    assert checkpoint.evaluate("(i) => i.scrollWidth <= i.clientWidth"), f"{listed!r} is cut off in the dropdown"
    p.locator("#reverse-checkpoint").get_by_role("button", name="↻ Refresh").click()  # in the list's own toolbar
    time.sleep(1)
    page.assert_clean("after ↻ Refresh")
    assert checkpoint.input_value() == listed  # the list is read again and keeps the choice
    p.wait_for_function("(name) => document.body.innerText.includes(name + ' — data: swiss_roll (2d) · schedule: "
                        "linear, T = 100 · model: mlp, predicts v')", arg=saved)
    page.number("Samples").fill("500")
    p.get_by_text("Teaching options:").click()  # the accordion of the teaching options
    p.get_by_label("2D: show the score field (arrows)").check()
    p.get_by_role("button", name="Generate").click()
    p.wait_for_selector('#reverse-player .ddpm-player[data-ready="1"]', timeout=60_000)
    assert "arrows: x → √ᾱ_t·x̂₀(x)" in p.locator("#reverse-player .pl-caption").first.inner_text()  # x_t's caption
    player = p.locator("#reverse-player .ddpm-player")
    # Generate hands the focus to the player (it had stayed on the button, scrolled out of view, where Space started
    # another chain)
    p.wait_for_function("() => document.activeElement?.matches('#reverse-player .ddpm-player')")
    n_frames = int(player.get_attribute("data-frames"))
    assert n_frames >= 2
    first = int(player.get_attribute("data-frame"))
    info_before = p.locator("#reverse-player .pl-info").inner_text()
    p.wait_for_function(
        "(f) => { const r = document.querySelector('#reverse-player .ddpm-player'); return r && +r.dataset.frame !== f; }",
        arg=first, timeout=5_000,
    )
    t0 = time.perf_counter()
    shown0 = int(player.get_attribute("data-shown"))
    p.wait_for_timeout(1000)  # let the player run for a second
    shown1 = int(player.get_attribute("data-shown"))
    fps = (shown1 - shown0) / (time.perf_counter() - t0)
    print(f"[browser] player: {n_frames} frames, {fps:.1f} frames/s shown (target 30)")
    assert shown1 > shown0, "the player did not advance"
    assert p.locator("#reverse-player .pl-info").inner_text() != info_before or n_frames == 1
    page.shot("reverse-playing")
    p.locator("#reverse-player .pl-play").click()
    p.wait_for_selector('#reverse-player .ddpm-player[data-playing="0"]')
    paused_at = player.get_attribute("data-frame")
    p.wait_for_timeout(400)
    assert player.get_attribute("data-frame") == paused_at, "the player kept advancing after Pause"
    loop = player.evaluate("(root) => { let e = root; while (e && !e.__ddpmPlayer) e = e.parentElement; "
                           "return e && e.__ddpmPlayer.raf; }")
    assert loop == 0, "the player's animation loop ran on while paused"
    assert "Play" in p.locator("#reverse-player .pl-play").inner_text()
    assert p.locator("#reverse-player .pl-play span[aria-hidden=true]").inner_text() == "▶"  # not read out
    scrub = p.locator("#reverse-player .pl-scrub")  # a reader says the frame and its t, not the bar's 0-based value
    assert scrub.get_attribute("aria-valuetext") == p.locator("#reverse-player .pl-info").inner_text()
    # keys, once the player has focus: one frame on, the last, the first, then Space plays and a click pauses
    player.focus()
    p.keyboard.press("End")
    assert player.get_attribute("data-frame") == str(n_frames - 1)
    note = p.locator("#reverse-player .pl-note")
    assert note.inner_text().startswith("x₀: the sample"), note.inner_text()
    p.keyboard.press("Home")
    assert re.match(r"step (\d+) → (\d+): x\S+ = [\d.e-]+·x̂₀ \+ [\d.e-]+·x\S+ \+ [\d.e-]+·z$", note.inner_text()), \
        f"the first frame's step formula reads {note.inner_text()!r}"
    p.keyboard.press("ArrowRight")
    assert player.get_attribute("data-frame") == "1" and player.get_attribute("data-playing") == "0"
    p.keyboard.press("PageUp")  # a presenter's clicker
    assert player.get_attribute("data-frame") == "0"
    # its "next" steps one frame whichever control of the player has focus: after Pause it had scrolled the page, on
    # the scrub bar it went 8 frames back, on the speed list it changed the speed
    scrolled, speed = p.evaluate("() => window.scrollY"), p.locator("#reverse-player .pl-speed").input_value()
    for k, control in enumerate((".pl-play", ".pl-scrub", ".pl-speed"), start=1):
        p.locator(f"#reverse-player {control}").focus()
        p.keyboard.press("PageDown")
        assert player.get_attribute("data-frame") == str(min(k, n_frames - 1)), control
    assert p.evaluate("() => window.scrollY") == scrolled
    assert p.locator("#reverse-player .pl-speed").input_value() == speed
    slices = p.evaluate(CANVAS_SLICES_JS)  # each panel's canvas shows its own slice of the frame shown
    assert len(slices) == 2 and all(s["diff"] == 0 and s["drawn"] for s in slices), slices
    # a screen reader reads the frame stepped to (not each frame while it plays); the frames have a name
    assert p.locator("#reverse-player .pl-info").get_attribute("aria-live") == "polite"
    assert "the frame shown" in p.locator("#reverse-player canvas").first.get_attribute("aria-label")
    player.focus()
    p.keyboard.press("Home")
    p.keyboard.press(" ")
    p.wait_for_selector('#reverse-player .ddpm-player[data-playing="1"]')
    p.locator("#reverse-player canvas").last.click()  # either panel's canvas
    p.wait_for_selector('#reverse-player .ddpm-player[data-playing="0"]')
    assert p.locator("text=sampled in").count() >= 1  # the stats line
    export = p.get_by_role("button", name=movie_files.button_label())  # shown once there is a movie
    assert p.get_by_text(re.compile(r"reverse-.*\.gif")).count() == 0  # the GIF and MP4 are written when asked
    export.click()
    p.get_by_text(re.compile(r"reverse-.*\.gif")).first.wait_for()
    # ... under their whole names, wrapped (Gradio cut a name to what fit beside its size: "reverse-swiss_roll-…")
    names = p.locator("table.file-preview td.filename span.stem")  # each line of a name's text lies within its cell
    assert names.count() >= 2 and names.evaluate_all("""spans => spans.every(s => {
        const text = document.createRange(), cell = s.closest('td').getBoundingClientRect();
        text.selectNodeContents(s);
        return [...text.getClientRects()].every(line => line.left >= cell.left - 0.5 && line.right <= cell.right + 0.5);
    })""")
    # start from training data noised to t0: the t0 slider shows only then; the chain then begins at t0
    start_t = p.locator("#reverse-start-t")
    assert not start_t.is_visible()
    p.get_by_label("Start from training data noised to t₀, not from pure noise").check()
    start_t.locator("input[type=number]").wait_for(state="visible")
    page.set_slider("reverse-start-t", 20)
    p.get_by_role("button", name="Generate").click()
    p.wait_for_selector('#reverse-player .ddpm-player[data-ts^="20,"][data-ready="1"]', timeout=60_000)
    assert p.locator("text=Joined at").count() >= 1 and "rings: their x₀ before noising" in p.locator(
        "#reverse-player .pl-panels").inner_text()
    page.shot("reverse")
    # one step taken apart: examples noised to t, the network's ε̂ and x̂₀, and the step's formula
    p.get_by_text("Anatomy of one step").click()
    p.get_by_role("button", name="Take step t apart").click()
    p.wait_for_selector("#reverse-anatomy >> text=This network predicts v", timeout=60_000)  # trained on v above
    p.wait_for_function("() => document.querySelectorAll('#reverse-anatomy-plot .layer-above .imagelayer image')"
                        ".length === 4")  # x₀, x_t, x̂₀ and x_s, each a picture over the training data
    assert re.search(r"step \d+ → \d+: x", p.locator("#reverse-anatomy").inner_text())
    # a key on its t takes the step apart once (its input), not again on its release, and shows the plot in the page;
    # ↺, a release alone, takes it apart too
    anatomy_t = p.locator("#reverse-anatomy input[type=range]")
    anatomy_t.focus()
    asked.clear()
    p.on("request", ask)
    for _ in range(3):
        anatomy_t.press("ArrowRight")
        p.wait_for_timeout(700)
    p.wait_for_timeout(1500)
    assert 1 <= len(asked) <= 3 and set(asked) == {"show_step"}, asked
    asked.clear()
    p.locator("#reverse-anatomy [data-testid=reset-button]").click()
    p.wait_for_timeout(2000)
    p.remove_listener("request", ask)
    assert asked == ["show_step"], asked
    # DDIM's map: the panel below the player walks between two noises and draws the paths
    p.get_by_text("Noise ↔ data: DDIM's deterministic map").click()
    p.get_by_role("button", name="Walk between two noises").click()
    p.wait_for_selector("#reverse-map >> text=pairs of noises", timeout=60_000)
    p.wait_for_function("() => document.querySelectorAll('#reverse-map-plot .scatterlayer .trace').length > 6")
    page.shot("reverse-map")
    # ... and plays a loop of noises in the player: θ instead of t, no pause at the end, a formula per frame
    p.get_by_role("button", name="Loop: play a circle of noises in the player").click()
    p.wait_for_selector('#reverse-player .ddpm-player[data-var="θ"][data-ready="1"]', timeout=60_000)
    assert p.locator("#reverse-player .ddpm-player").get_attribute("data-hold") == "0"
    assert re.match(r"θ = \d+°: x_T = ", p.locator("#reverse-player .pl-note").inner_text())
    assert "θ = " in p.locator("#reverse-player .pl-info").inner_text()
    # the number of sampling steps: DDPM and DDIM from 5 steps to all T = 100 of the run's model, one line each, over
    # a grey band of the data's own scores
    p.get_by_text("How many steps does a sampler need?").click()
    p.get_by_role("button", name="Sweep the number of steps").click()
    p.wait_for_selector("#reverse-steps >> text=The data itself, 8 draws of 1,000 scored the same way", timeout=60_000)
    p.wait_for_function("() => document.querySelectorAll('#reverse-steps-plot .scatterlayer .trace').length === 3")
    # the variational bound of the same model: its terms over t, and the table of its parts
    p.get_by_text("How likely is the data? The variational bound").click()
    p.get_by_role("button", name="Measure the bound").click()
    p.wait_for_selector("#reverse-bound >> text=total, bits per dimension", timeout=60_000)
    p.wait_for_function("() => document.querySelectorAll('#reverse-bound-plot .scatterlayer .trace').length === 2")
    page.shot("reverse-bound")
    # inpainting: each point's x kept and its y drawn, by replacement and with two resampling rounds per step
    p.get_by_text("Fill in the missing part").click()
    rounds = p.get_by_label("number input for Resampling rounds per step (U)")
    rounds.fill("2")
    rounds.press("Enter")
    rounds.blur()
    p.wait_for_function("() => document.querySelector('#reverse-inpaint input[type=number]')?.value === '2'")
    p.get_by_role("button", name="Fill in the hidden part").click()
    p.wait_for_function("() => /training examples, known/.test(document.querySelector('#reverse-inpaint').innerText) "
                        "|| document.querySelector('[data-testid=\"toast-body\"].error')", timeout=90_000)
    page.assert_clean("Reverse tab's inpainting panel")
    assert "resampled (U = 2) in" in p.locator("#reverse-inpaint").inner_text()
    p.wait_for_function("() => document.querySelectorAll('#reverse-inpaint-plot .scatterlayer .trace').length >= 3")
    page.shot("reverse-inpaint")
    # ... and its resampled chain, played in the tab's player, with the examples it completes as rings
    p.get_by_role("button", name="Play the resampled chain in the player").click()
    p.wait_for_function("() => /rings: the examples they complete/.test("
                        "document.querySelector('#reverse-player .pl-panels')?.innerText || '')", timeout=60_000)
    p.wait_for_selector('#reverse-player .ddpm-player[data-ready="1"]', timeout=60_000)
    page.assert_clean("Reverse tab after Generate, Pause, the walk and loop between noises, the step sweep, the bound "
                      "and inpainting")
    timings["reverse"] = time.perf_counter() - start
    print("[browser] " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))


def test_a_change_that_cannot_be_shown_leaves_the_inputs_as_the_views_are(page: Page) -> None:
    """A refused change (a schedule that T = 10 cannot have, t = −1, a T the schedules cannot have) says why, and the
    inputs go back to what the views show: the dropdown had named linear over cosine's plots and numbers, the slider's
    thumb had moved to 0 while the views stayed at t = 40, the Schedules T box had kept 10 over T = 1000's table."""
    p = page.page
    page.visible(p.get_by_label("Noise schedule")).first.click()
    p.get_by_role("option", name=re.compile("^cosine")).click()
    big_t = page.number(BIG_T_LABEL)
    big_t.fill("10000")
    big_t.press("Enter")
    page.wait_t_cell("0 of 10000")
    # t typed at once: leaving the T box sends a rebuild with the t of then, 0; held back here until t is shown, it
    # had drawn t = 0 under a box that said 10000
    held, joins = [], re.compile(r".*/queue/join.*")
    p.route(joins, lambda route: held.append(route) if "cosine" in (route.request.post_data or "") else route.continue_())
    page.set_t(10000, "10000 of 10000")  # its formula's numbers are long: they wrap within the box ("· ε" was cut off)
    assert held, "no rebuild on leaving the T box"
    for route in held:
        route.continue_()
    p.unroute(joins)
    p.wait_for_timeout(2000)
    page.wait_t_cell("10000 of 10000")
    past_edge = p.evaluate("""() => { const box = document.querySelector('.prose.formula-box');
      return Math.max(...[...box.querySelectorAll('.katex .base')].map((k) => k.getBoundingClientRect().right))
        - box.getBoundingClientRect().right; }""")
    assert past_edge <= 1, f"the formula runs {past_edge:.0f} px past its box"
    page.set_t(0, "0 of 10000")
    big_t.fill("10")
    big_t.blur()
    page.wait_t_cell("0 of 10")
    page.set_t(4, "4 of 10")
    page.visible(p.get_by_label("Noise schedule")).first.click()
    p.get_by_role("option", name=re.compile("^linear")).click()
    p.get_by_text("β_end must lie in (0, 1)").first.wait_for()
    p.wait_for_function("() => [...document.querySelectorAll('input[aria-label=\"Noise schedule\"]')]"
                        ".some((box) => box.offsetParent && box.value.startsWith('cosine'))")
    assert page.t_cell() == "4 of 10" and "T = 10" in p.locator(".notice").first.inner_text()
    box = p.locator("#forward-t input[type=number]")
    box.fill("-1")
    box.press("Enter")
    p.get_by_text("t must be a whole number ≥ 0, got -1").first.wait_for()
    p.wait_for_function("() => document.querySelector('#forward-t input[type=range]').value === '4'")
    assert page.t_cell() == "4 of 10"
    page.tab("Schedules")
    big_t = page.number(BIG_T_LABEL)
    big_t.fill("10")
    big_t.press("Enter")
    p.get_by_text("Linear schedule: β_end must lie in").first.wait_for()
    p.wait_for_function("(box) => box.value === '1000'", arg=big_t.element_handle())
    assert p.get_by_text("schedule (T = 1000)").count() == 1
    page.tab("Train")  # a refused number is said once: leaving its box after Enter had said it again
    points = page.number(re.compile("^Training points"))
    points.fill("")
    points.press("Enter")
    p.get_by_text("Training points is empty").first.wait_for()
    points.blur()
    p.wait_for_timeout(1500)
    assert p.get_by_text("Training points is empty").count() == 1
    page.shot("refused-changes")
    script_errors = [e for e in page.errors if "favicon" not in e]
    assert not script_errors, script_errors


def test_two_sessions_keep_their_own_state(browser, app_url: str) -> None:
    """Two browser contexts at once: one changes T (server-side gr.State), each keeps its own t."""
    a = Page(browser, app_url, "session A")
    b = Page(browser, app_url, "session B")
    try:
        big_t = a.number(BIG_T_LABEL)
        big_t.fill("200")
        # Leaving the box rebuilds A's state with T = 200. (Not Enter: Enter *and* the later blur would
        # each rebuild, and the second one, carrying the t of its moment, can land after a scrub.)
        big_t.blur()
        a.wait_t_cell("0 of 200")
        a.set_t(150, "150 of 200")
        b.set_t(900, "900 of 1000")  # B still has T = 1000
        a_pic, b_pic = a.plot("x_t"), b.plot("x_t")
        assert a_pic["hash"] != b_pic["hash"]
        # A scrubs on: its state (T = 200) is untouched by B
        slider = a.page.get_by_label(f"range slider for {T_LABEL}")
        slider.focus()
        slider.press("ArrowLeft")
        a.wait_t_cell("149 of 200")
        b.set_t(901, "901 of 1000")
        assert a.t_cell() == "149 of 200" and b.t_cell() == "901 of 1000"
        a.shot("session-a")
        b.shot("session-b")
        a.assert_clean("Forward tab, T = 200")
        b.assert_clean("Forward tab, T = 1000")
    finally:
        a.close()
        b.close()


def test_stop_ends_a_long_generate_and_keeps_the_player_as_it_was(browser, app_url: str) -> None:
    """Stop shows while a job of the Reverse tab runs; pressed, the job ends at its next step (the sampling queue is
    free again for everyone), a toast says so, the player keeps what it showed, and Stop hides."""
    a = Page(browser, app_url, "stop")
    try:
        p = a.page
        p.get_by_role("tab", name="Reverse").click()
        stop = p.locator("#reverse-stop")
        assert not stop.is_visible()
        samples = p.get_by_label("Samples", exact=True)
        samples.fill("5000")  # the shipped swiss roll, DDPM over all 1,000 steps: several seconds here
        samples.blur()
        p.locator("#reverse-generate").click()
        stop.wait_for(state="visible")
        p.wait_for_selector("#reverse-player >> text=Sampling the reverse chain", timeout=30_000)
        stop.click()
        p.get_by_text("Stopped, as you asked: what was shown before stays.").wait_for(timeout=15_000)
        stop.wait_for(state="hidden")
        assert p.locator("#reverse-player >> text=Press Generate to sample").count() == 1  # no movie came
        assert p.locator("text=sampled in").count() == 0
        a.assert_clean("Reverse tab, a Generate stopped")
    finally:
        a.close()


def test_a_kept_chain_stays_under_the_player_while_the_next_plays(browser, app_url: str) -> None:
    """Keep: the chain on view, its last frame and its stats, stay under the player while another chain plays,
    until Clear."""
    a = Page(browser, app_url, "keep")
    try:
        p = a.page
        p.get_by_role("tab", name="Reverse").click()
        p.get_by_label("DDIM (η, steps)").check()
        p.locator("#reverse-generate").click()
        p.wait_for_selector('#reverse-player .ddpm-player[data-ready="1"]', timeout=60_000)
        first = p.locator("#reverse-player .ddpm-player").get_attribute("data-id")
        p.get_by_role("button", name=kept_chain.KEEP_LABEL).click()
        p.locator("#reverse-kept img").wait_for(timeout=30_000)
        seed = p.get_by_label("Seed", exact=True)
        seed.fill("7")
        seed.blur()
        p.locator("#reverse-generate").click()
        p.wait_for_function("(first) => { const r = document.querySelector('#reverse-player .ddpm-player'); "
                            "return r && r.dataset.ready === '1' && r.dataset.id !== first; }", arg=first,
                            timeout=60_000)
        kept = p.locator("#reverse-kept").inner_text()
        assert kept.startswith("Kept for comparison:") and "seed 0" in kept and "seed 7" not in kept, kept
        assert "t of each frame" not in kept
        assert p.locator("#reverse-kept img").evaluate("(img) => img.naturalWidth > 400")
        p.get_by_role("button", name=kept_chain.KEEP_LABEL).click()  # the second chain joins the first
        p.wait_for_function("() => document.querySelectorAll('#reverse-kept img').length === 2", timeout=30_000)
        kept = p.locator("#reverse-kept").inner_text()
        assert kept.index("Kept 1 of 2:") < kept.index("seed 0") < kept.index("Kept 2 of 2:") < kept.index("seed 7")
        a.shot("reverse-kept")
        p.get_by_role("button", name=kept_chain.CLEAR_LABEL).click()
        p.locator("#reverse-kept").wait_for(state="hidden")
        a.assert_clean("Reverse tab, a chain kept and cleared")
    finally:
        a.close()


def test_a_digit_drawn_in_the_reverse_tab_starts_the_chain(browser, app_url: str) -> None:
    """Start from … noised to t₀, with mnist: the drawing box shows with its brush picked, a 7 drawn with the mouse
    starts every sample, and the stats read the drawing; Sweep t₀ starts from it too."""
    a = Page(browser, app_url, "drawing")
    try:
        p = a.page
        a.tab("Reverse")
        a.model("mnist (shipped)")
        p.locator("#reverse-teaching button").first.click()
        assert not p.locator("#reverse-drawing").is_visible()
        p.get_by_label("Start from training data noised to t₀, not from pure noise").check()
        p.wait_for_selector('#reverse-drawing button[aria-label="Brush"].highlight')  # picked: a stroke draws
        start_t = p.locator("#reverse-start-t input[type=number]")
        start_t.fill("200")
        start_t.press("Enter")
        canvas = p.locator("#reverse-drawing canvas").first
        canvas.scroll_into_view_if_needed()
        box = canvas.bounding_box()
        middle_x, middle_y, side = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, box["height"] / 4
        p.mouse.move(middle_x - side, middle_y - side)
        p.mouse.down()
        for x, y in ((middle_x + side, middle_y - side), (middle_x - side / 3, middle_y + side)):
            p.mouse.move(x, y, steps=12)
        p.mouse.up()
        p.locator("#reverse-generate").click()
        p.wait_for_selector('#reverse-player .ddpm-player[data-ready="1"]', timeout=60_000)
        p.wait_for_function("() => /from your drawing/.test(document.querySelector('#reverse-player')"
                            ".parentElement.parentElement.innerText)", timeout=30_000)
        stats = p.locator("#reverse-player").evaluate("(e) => e.parentElement.parentElement.innerText")
        assert "16 copies of it" in stats and "reads your drawing as" in stats, stats
        a.shot("reverse-drawing")
        p.get_by_text("How much of the data survives noise to t₀?").click()  # Sweep t₀ starts from the drawing too
        p.get_by_role("button", name="Sweep t₀", exact=True).click()
        p.wait_for_selector("text=11 chains from the same 16 copies of your drawing", timeout=90_000)
        starts = p.get_by_label("Start from training data noised to t₀, not from pure noise")
        starts.uncheck()  # the box goes out of sight and comes back with the drawing
        p.wait_for_selector("#reverse-drawing", state="hidden")
        starts.check()
        shown = p.locator("#reverse-player .ddpm-player").get_attribute("data-id")
        p.locator("#reverse-generate").click()
        p.wait_for_function("(shown) => { const player = document.querySelector('#reverse-player .ddpm-player'); "
                            "return player && player.dataset.id !== shown && player.dataset.ready === '1' }",
                            arg=shown, timeout=60_000)
        stats = p.locator("#reverse-player").evaluate("(e) => e.parentElement.parentElement.innerText")
        assert "16 copies of it" in stats, stats  # from the drawing still
        a.assert_clean("Reverse tab, the drawing box out of sight and back")  # no "No draw texture found for layer"
        a.assert_clean("Reverse tab, a chain from a drawing")
    finally:
        a.close()


def test_a_painted_part_is_filled_in(browser, app_url: str) -> None:
    """Inpainting with mnist, "what you leave unpainted": the box shows with the first example beneath and its brush
    picked; the bottom painted with the mouse is what the panel hides and fills in; a model changed keeps the paint."""
    a = Page(browser, app_url, "painted mask")
    try:
        p = a.page
        a.tab("Reverse")
        a.model("mnist (shipped)")
        p.get_by_text("Fill in the missing part").click()
        p.wait_for_timeout(1500)  # the model's change has reached the panel (its box had then shown, on "hidden")
        assert not p.locator("#reverse-inpaint-paint").is_visible()
        a.painted_part()
        canvas = p.locator("#reverse-inpaint-paint canvas").first

        def paint(rows: tuple[float, ...]) -> None:  # strokes across the picture at these heights from its middle
            canvas.scroll_into_view_if_needed()
            box = canvas.bounding_box()
            middle_x, middle_y, side = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, box["height"]
            p.mouse.move(middle_x - 0.4 * side, middle_y + rows[0] * side)  # a stroke starts on the picture
            p.mouse.down()
            for y in rows:
                p.mouse.move(middle_x - 0.45 * side, middle_y + y * side, steps=3)
                p.mouse.move(middle_x + 0.45 * side, middle_y + y * side, steps=12)
            p.mouse.up()

        def filled_in(before: str = "") -> int:  # the share kept, as the stats say, once they say another one
            p.get_by_role("button", name="Fill in the hidden part").click()
            p.wait_for_function("(before) => { const m = /known: what you left unpainted \\((\\d+)%/.exec("
                                "document.querySelector('#reverse-inpaint').innerText); return m && m[1] !== before "
                                "|| document.querySelector('[data-testid=\"toast-body\"].error') }", arg=before,
                                timeout=90_000)
            a.assert_clean("Reverse tab, inpainting a painted part")
            stats = p.locator("#reverse-inpaint").inner_text()
            return int(re.search(r"known: what you left unpainted \((\d+)% of the pixels\)", stats).group(1))

        def bottom_brightness() -> float:  # of the picture's lower part (the canvas is wider and taller than it):
            # MNIST's black with a 7's stroke, the blue paint (grey 144) or a blank white box
            picture = np.asarray(Image.open(BytesIO(canvas.screenshot())).convert("L"), dtype=float)
            height, width = picture.shape
            return picture[78 * height // 100 : 88 * height // 100, width // 2 - height // 3 : width // 2 + height // 3
                           ].mean()

        paint((0.25, 0.35, 0.45))
        a.model("mnist_conditional (shipped)")  # the same digits beneath: the box is left as it is
        a.model("mnist (shipped)")
        p.get_by_role("combobox", name="Known part").click()  # another known part and back: the paint stays
        p.get_by_role("option", name="the left half").click()
        p.wait_for_selector("#reverse-inpaint-paint", state="hidden")  # out of sight, kept in the page with its paint
        p.get_by_role("combobox", name="Known part").click()
        p.get_by_role("option", name="what you leave unpainted").click()
        p.wait_for_selector('#reverse-inpaint-paint button[aria-label="Brush"].highlight')
        bottom = filled_in()
        assert 55 <= bottom <= 85, bottom  # the bottom rows painted over, the rest known
        paint((-0.4, -0.3))  # the box still paints (given its own paint back, it had drawn no new stroke)
        both = filled_in(str(bottom))
        assert both < bottom - 10, (both, bottom)
        a.shot("reverse-inpaint-painted")
        assert bottom_brightness() > 120  # blue paint over the bottom rows
        p.locator('#reverse-inpaint-paint button[aria-label="Clear canvas"]').click()
        p.wait_for_function("() => !document.querySelector('#reverse-inpaint-paint .pending')")
        p.wait_for_timeout(1500)
        assert bottom_brightness() < 90  # MNIST's black beneath again: no paint (it had come back), no white box
        p.get_by_role("button", name="Fill in the hidden part").click()
        p.locator('[data-testid="toast-body"]', has_text="Paint over the part to hide").first.wait_for()
    finally:
        a.close()


def test_drawing_boxes_send_nothing_at_the_pages_other_events(browser, app_url: str) -> None:
    """Gradio 6.31 asks every component a handler ever wrote, or a queued handler read, for its value at each event of
    the page, and a drawing box answers by uploading its pictures. With the Train tab's box drawn in and the paint box
    shown over its digit, painted and read by a Fill, each key on the Forward tab's t had uploaded 10 to 30 files
    (and made a 30-key scrub 1.4 times slower); no handler touches a box now (`own_points.box_reader`)."""
    a = Page(browser, app_url, "drawing boxes")
    try:
        p = a.page
        uploads: list[str] = []
        p.on("request", lambda request: uploads.append(request.url) if "/upload" in request.url else None)
        a.tab("Train")
        a.visible(p.get_by_label("Training data")).first.click()
        p.get_by_role("option", name=re.compile("^Your own points")).click()
        p.wait_for_selector('#train-drawing button[aria-label="Brush"].highlight')
        box = p.locator("#train-drawing canvas").first.bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        p.mouse.move(x - 60, y)
        p.mouse.down()
        p.mouse.move(x + 60, y + 30, steps=20)
        p.mouse.up()
        p.wait_for_function("(label) => { const r = (" + PLOT_JS + ")(label); return r && r.n > 0; }",
                            arg="Training data (grey): a run draws samples from its EMA weights over it · 10,000 "
                                "points, drawn in the Train tab")  # the stroke was read, through the box's copy
        a.tab("Reverse")
        a.model("mnist (shipped)")
        p.get_by_text("Fill in the missing part").click()
        a.painted_part()
        canvas = p.locator("#reverse-inpaint-paint canvas").first
        canvas.scroll_into_view_if_needed()
        box = canvas.bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.75
        p.mouse.move(x - 80, y)
        p.mouse.down()
        p.mouse.move(x + 80, y, steps=20)
        p.mouse.up()
        p.get_by_role("button", name="Fill in the hidden part").click()
        p.wait_for_function("() => /known: what you left unpainted/.test("
                            "document.querySelector('#reverse-inpaint').innerText)", timeout=90_000)
        a.tab("Forward")
        p.wait_for_timeout(1500)  # the tab's own events settle
        uploads.clear()
        slider = p.get_by_label(f"range slider for {T_LABEL}")
        slider.focus()
        for step in range(1, 4):
            slider.press("ArrowRight")
            a.wait_t_cell(f"{step} of 1000")
        p.wait_for_timeout(1500)
        assert uploads == [], f"{len(uploads)} uploads for 3 keys"
        a.assert_clean("drawing boxes, then the Forward tab's t")
    finally:
        a.close()


def test_a_tab_open_before_a_run_hears_of_it(browser, app_url: str) -> None:
    """Two tabs of one browser. Start in the first: the second, open since before on the Train tab, had said "Press
    Start training" through the whole run. Brought to the front (another tab had been), it now follows the run and
    says how it ended; and so it does when its Train tab is opened during a run. (Two tabs, not three: Chromium opens
    at most six connections to a plain-HTTP server, and each page of the app holds two.)"""
    first = Page(browser, app_url, "first tab")
    try:
        other = first.context.new_page()
        other.goto(app_url)
        other.get_by_role("tab", name="Train").click()
        other.locator("#train-status").wait_for()
        first.tab("Train")
        first.number("Training steps").fill("20000")  # far more than we wait for: Stop ends it
        for shown in ("brought to the front", "its Train tab opened"):
            first.page.locator("#train-start").click()
            first.page.wait_for_function("() => /Step\\s*\\d+/.test(document.querySelector('#train-status')"
                                         ".innerText)", timeout=60_000)
            if shown == "brought to the front":
                other.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
            else:
                other.get_by_role("tab", name="Train").click()
            other.wait_for_function("() => document.querySelector('#train-status')?.innerText.includes("
                                    "'under way in another tab')", timeout=30_000)
            first.page.locator("#train-stop").click()
            other.wait_for_function("() => /Stopped after [\\d,]+ steps/.test("
                                    "document.querySelector('#train-status').innerText)", timeout=60_000)
            other.get_by_role("tab", name="Forward").click()
        first.assert_clean("Train tab, two runs stopped")
    finally:
        first.close()


def test_a_run_trains_on_through_a_reload_and_the_reloaded_page_shows_and_stops_it(browser, app_url: str) -> None:
    """A reload during a run (as Gradio does by itself once a dropped connection comes back) had stopped it. It trains
    on: the reloaded page shows it, its loss curve from the first step, and its Stop stops it."""
    first = Page(browser, app_url, "reloaded page")
    try:
        first.tab("Train")
        first.number("Training steps").fill("20000")  # far more than we wait for: Stop ends it
        first.page.locator("#train-start").click()
        step_js = ("() => +(/Step\\s*(\\d+)/.exec(document.querySelector('#train-status')?.innerText || '') "
                   "|| [0, 0])[1]")
        first.page.wait_for_function(f"({step_js})() > 0", timeout=60_000)
        before = first.page.evaluate(step_js)
        first.page.reload()
        first.page.get_by_role("tab", name="Forward").wait_for()
        first.errors.clear()  # the old page's stream, cut by the reload ("AbortError", "Connection errored out")
        first.tab("Train")
        first.page.wait_for_function("() => document.querySelector('#train-status')?.innerText.includes("
                                     "'trained on while its page was reloaded')", timeout=30_000)
        first.page.wait_for_function(f"({step_js})() > {before}", timeout=30_000)  # still training
        first.shot("train-rejoined")
        first.page.locator("#train-stop").click()
        first.page.wait_for_function("() => /Stopped after [\\d,]+ steps/.test("
                                     "document.querySelector('#train-status').innerText)", timeout=60_000)
        first.assert_clean("Train tab, a run shown again after a reload and stopped")
    finally:
        first.close()


def test_a_model_downloads_and_comes_back_as_an_upload(browser, app_url: str, tmp_path) -> None:
    """Reverse tab: Download zips the chosen checkpoint, the browser saves it; uploaded again, it is listed and
    chosen as "(uploaded)" in this tab and in the Train tab; a file that is not a checkpoint is refused in words; a
    reload keeps the upload."""
    p = Page(browser, app_url, "model files", accept_downloads=True)
    try:
        p.tab("Reverse")
        p.page.locator("#model-download").click()
        link = p.page.locator("#model-zip a").first
        link.wait_for()
        with p.page.expect_download() as download:
            link.click()
        archive = tmp_path / download.value.suggested_filename
        download.value.save_as(archive)
        assert archive.name == "swiss_roll_linear.zip"
        with zipfile.ZipFile(archive) as zf:
            assert sorted(zf.namelist()) == ["swiss_roll_linear/config.json", "swiss_roll_linear/model.safetensors"]
        def upload(path: Path) -> None:  # as a user: the button opens the file chooser
            with p.page.expect_file_chooser() as chooser:
                p.page.locator("#model-upload").click()
            chooser.value.set_files(str(path))

        upload(archive)
        choice = p.page.locator("#reverse-checkpoint input")
        p.page.wait_for_function("(el) => el.value === 'swiss_roll_linear (uploaded)'", arg=choice.element_handle())
        p.page.locator("#model-zip").wait_for(state="hidden")  # the old file box goes with the old choice
        p.assert_clean("Reverse tab, after the upload")
        # the same model again, with another one chosen: it is selected, as the message says (the list, unchanged,
        # had fired no change, and the choice stayed on the other model)
        choice.click()
        p.page.get_by_role("option", name="moons (shipped)").click()
        p.page.wait_for_function("(el) => el.value === 'moons (shipped)'", arg=choice.element_handle())
        upload(archive)
        p.page.locator('[data-testid="toast-body"]', has_text="is a model you have here already").first.wait_for()
        p.page.wait_for_function("(el) => el.value === 'swiss_roll_linear (uploaded)'", arg=choice.element_handle())
        p.tab("Train")
        p.page.get_by_label("Start from").click()
        assert "swiss_roll_linear (uploaded)" in p.page.get_by_role("option").all_inner_texts()
        p.page.keyboard.press("Escape")
        p.tab("Reverse")
        bad = tmp_path / "holiday.zip"
        bad.write_bytes(b"not a zip at all")
        upload(bad)
        toast = p.page.locator('[data-testid="toast-body"].error')
        toast.first.wait_for()
        assert "Not uploaded: holiday.zip is not a readable .zip file" in toast.first.inner_text()
        assert choice.input_value() == "swiss_roll_linear (uploaded)"  # the session's models are untouched
        p.page.reload()  # the browser keeps its models: the reloaded page lists the upload again, chosen
        p.page.get_by_role("tab", name="Forward").wait_for()
        p.tab("Reverse")
        choice = p.page.locator("#reverse-checkpoint input")
        p.page.wait_for_function("(el) => el.value === 'swiss_roll_linear (uploaded)'", arg=choice.element_handle())
    finally:
        p.close()


# For each visible table in the Forward tab's formula box and the Schedules tab's table: how many lines its tallest
# cell takes, and how far the table reaches past the window's right edge (CSS px).
TABLES_JS = """() => Array.from(document.querySelectorAll('.formula-box table, .numbers-table table'))
  .filter(t => t.offsetParent)
  .map(t => {
    const cells = Array.from(t.querySelectorAll('th, td'));
    const lines = Math.max(...cells.map(c => {
      const style = getComputedStyle(c);
      const padding = parseFloat(style.paddingTop) + parseFloat(style.paddingBottom);
      return (c.getBoundingClientRect().height - padding) / parseFloat(style.lineHeight);
    }));
    return {lines, past_right: t.getBoundingClientRect().right - document.documentElement.clientWidth};
  })"""


def test_views_stay_readable_on_a_projector(browser, app_url: str) -> None:
    """On a narrow window (a projector zoomed to 150 %) each tab's views move below its controls and take the whole
    width: the Forward tab's table of ᾱ_t, SNR, ... and the Schedules tab's table are whole, their cells wrapping at
    words (squeezed beside the controls, they broke a word into a letter per line and ran past the window's edge),
    and the Train tab's loss curve and the Reverse tab's player are as wide as the window (not a third of it)."""
    p = Page(browser, app_url, "projector", **PROJECTOR)
    try:
        for tab in ("Forward", "Schedules"):
            p.tab(tab)
            p.page.wait_for_function(f"() => ({TABLES_JS})().length >= 1")
            for table in p.page.evaluate(TABLES_JS):
                assert table["lines"] <= 3.5, f"{tab}: a table cell takes {table['lines']:.1f} lines"
                assert table["past_right"] <= 1, f"{tab}: a table runs {table['past_right']:.0f} px past the window"
            p.shot(f"projector-{tab.lower()}")
            if tab == "Forward":  # scrolled down to the histogram, t is still there to drag (it had scrolled away)
                p.page.get_by_text("Histogram of x_t vs the N(0, 1) density").scroll_into_view_if_needed()
                slider = p.page.locator("#forward-t").bounding_box()
                histogram = p.page.get_by_text("Histogram of x_t vs the N(0, 1) density").bounding_box()
                assert slider["y"] >= 0 and slider["y"] + slider["height"] <= histogram["y"], (slider, histogram)
        window = p.page.evaluate("() => document.documentElement.clientWidth")
        for tab, view in (("Train", "#train-loss"), ("Reverse", "#reverse-player")):
            p.tab(tab)
            width = p.page.locator(view).bounding_box()["width"]
            assert width >= 0.75 * window, f"{tab}: {view} is {width:.0f} px wide in a window of {window} px"
        p.assert_clean("every tab at 853 × 480")
    finally:
        p.close()


# The controls in sight that the Reverse tab's Generate bar lies over (their boxes meet, and the bar is drawn on top).
UNDER_GENERATE_JS = """() => {
  const bar = document.querySelector('#reverse-generate-bar'), r = bar.getBoundingClientRect();
  return [...document.querySelectorAll('input, label, [data-testid="block-label"], button')]
    .filter((e) => e.offsetParent && !bar.contains(e) && !e.contains(bar)).filter((e) => {
      const b = e.getBoundingClientRect();
      return b.width && b.height && b.left < r.right && b.right > r.left && b.top < r.bottom && b.bottom > r.top;
    }).map((e) => (e.innerText || e.getAttribute('aria-label') || e.tagName).slice(0, 40));
}"""


def test_generate_stays_in_view_and_covers_no_control(browser, app_url: str) -> None:
    """Generate sits under the model's description, in view on the first screen (stuck to its foot where the page is
    longer) and at the top of the screen once scrolled past. Stuck to the foot of the screen below all the controls,
    it had covered the inputs there: Samples and Seed on a 1920 × 1080 projector's first screen; stuck to the top
    alone, it was off the first screen of a 1024 × 768 one and of a phone."""
    for name, context in (("1920 × 1080", {"viewport": {"width": 1920, "height": 1080}}),
                          ("1024 × 768", {"viewport": {"width": 1024, "height": 768}}),
                          ("a projector at 150 %", PROJECTOR), ("a phone", PHONE)):
        a = Page(browser, app_url, f"Generate on {name}", **context)
        try:
            a.tab("Reverse")
            a.model("mnist (shipped)")  # a longer description
            a.page.wait_for_function("() => /DDIM \\(η = 0\\)/.test(document.querySelector('#reverse-controls')"
                                     ".innerText)")
            height = a.page.evaluate("() => window.innerHeight")
            bar = a.page.locator("#reverse-generate-bar").bounding_box()
            assert bar["y"] >= 0 and bar["y"] + bar["height"] <= height, (name, bar, height)  # on the first screen
            if name in ("1920 × 1080", "1024 × 768"):  # where it is in its place, nothing lies under it
                assert a.page.evaluate(UNDER_GENERATE_JS) == [], name
            a.page.evaluate("() => document.querySelector('#reverse-teaching').scrollIntoView({block: 'end'})")
            a.page.wait_for_function("(height) => { const r = document.querySelector('#reverse-generate-bar')"
                                     ".getBoundingClientRect(); return r.top >= 0 && r.bottom <= height; }",
                                     arg=height)  # down at the last controls, still in view
        finally:
            a.close()


PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2}  # a phone held upright
TAB_NAMES = ("Forward", "Schedules", "Train", "Reverse")
# For each visible plot: its grid's column titles ("t = 250") that run into the next one, its legend entries and
# labels that reach past the plot's right edge (plotly cuts them off there), and the x axis titles that a legend below the plotting area
# (`figures.LEGEND_BELOW`) rose into.
PLOT_TEXT_JS = """() => {
  const found = {titles: 0, lines: 0, sizes: [], overlaps: [], clipped: [], legendOverTitle: []};
  for (const plot of document.querySelectorAll('.js-plotly-plot')) {
    if (!plot.offsetParent) continue;
    const right = plot.querySelector('svg.main-svg').getBoundingClientRect().right;
    const grid = plot.layout && plot.layout.meta && plot.layout.meta.grid;  // its first annotations: column titles
    const titles = [...Array(grid ? grid.cols : 0).keys()]
      .map((i) => plot.querySelector(`.annotation[data-index="${i}"] .annotation-text`)).filter(Boolean)
      .map(t => [t.textContent, t.getBoundingClientRect(), parseFloat(getComputedStyle(t).fontSize),
                 t.querySelectorAll('tspan.line').length])
      .sort((a, b) => a[1].left - b[1].left);
    found.titles += titles.length;
    found.lines += titles.reduce((n, t) => n + Math.max(1, t[3]), 0);
    found.sizes.push(...titles.map(t => t[2]));
    for (let i = 1; i < titles.length; i++)
      if (titles[i][1].left < titles[i - 1][1].right) found.overlaps.push(titles[i - 1][0] + ' | ' + titles[i][0]);
    for (const text of plot.querySelectorAll('.legendtext, .annotation-text, .g-xtitle text'))  // and the x title
      if (text.getBoundingClientRect().right > right + 0.5) found.clipped.push(text.textContent);
    const legend = plot.querySelector('.legend'), title = plot.querySelector('.g-xtitle text');
    const area = plot.querySelector('.draglayer .nsewdrag');  // the plotting area (of the first axes)
    if (legend && title && area && legend.getBoundingClientRect().top > area.getBoundingClientRect().bottom
        && legend.getBoundingClientRect().top < title.getBoundingClientRect().bottom)
      found.legendOverTitle.push(title.textContent);
  }
  return found;
}"""


# Each grid shown (`panel_grid.noised_grid_figure`): its height, the height its rows of square panels need at the width
# they are drawn (each row its label's band, its panels and a gap), and that width.
GRID_HEIGHTS_JS = """() => [...document.querySelectorAll('.js-plotly-plot')]
  .filter((gd) => gd.offsetParent && gd._fullLayout && gd.layout.meta && gd.layout.meta.grid).map((gd) => {
    const g = gd.layout.meta.grid, f = gd._fullLayout, side = Math.min(f.xaxis._length, f.yaxis._length);
    const need = g.rows * (g.band + side) + (g.rows - 1) * g.gap + f.margin.t + f.margin.b;
    return {height: f.height, need: Math.round(need), side: Math.round(side), cell: g.cell};
  })"""


# The fold-out panels' headings in sight: how many, how many run to more than one line, and those whose ▼ lies out of
# their panel's box (turned a quarter, it went out of sight when its heading ran to three lines).
ARROWS_OUT_OF_BOX_JS = """() => {
  const headings = [...document.querySelectorAll('button.label-wrap')].filter((b) => b.offsetParent);
  const out = headings.filter((b) => {
    const glyph = document.createRange();
    glyph.selectNodeContents(b.querySelector('.icon'));
    const box = b.closest('.block').getBoundingClientRect(), arrow = glyph.getBoundingClientRect();
    return arrow.left < box.left || arrow.right > box.right || arrow.top < box.top || arrow.bottom > box.bottom;
  });
  return {headings: headings.length, tall: headings.filter((b) => b.getBoundingClientRect().height > 50).length,
          out: out.map((b) => b.innerText.slice(0, 30))};
}"""


def edge_shadows(box) -> tuple[float, float]:
    """How much a scrolling box's edge shadows darken its left and right 10 px: its screenshot against one taken
    without its background (mean grey levels, 0–255)."""
    def strips() -> tuple[np.ndarray, np.ndarray]:
        grey = np.asarray(Image.open(BytesIO(box.screenshot())).convert("L"), dtype=float)
        edge = grey.shape[1] * 10 // int(box.bounding_box()["width"])
        return grey[:, :edge], grey[:, -edge:]
    shaded = strips()
    box.evaluate("e => e.style.background = 'none'")
    plain = strips()
    box.evaluate("e => e.style.background = ''")
    return tuple(float(np.abs(a - b).mean()) for a, b in zip(shaded, plain))


VISIBLE_TOOLBARS_JS = ("() => [...document.querySelectorAll('.js-plotly-plot .modebar-container')]"
                       ".filter(e => getComputedStyle(e).display !== 'none' && e.offsetParent).length")


def test_plots_fit_a_phone(browser, app_url: str) -> None:
    """On a phone the four tabs are in sight, in one row down to 360 px (Gradio had put Train and Reverse behind a
    "⋯" below 400 px), and every fold-out panel's ▼ in its box (on a heading of three lines it had gone out of
    sight); the Train tab's empty loss plot keeps its note within it at 360 px.
    At 390 px the plots keep their text apart and whole: a grid's column titles do not run into
    each other ("t = 750t = 1000" on Schedules, "x_t after 300 stepsx_t in one jump" on Forward), no legend entry is
    cut off at the plot's edge (the schedules' names with their citations were), and the step-gain plot's legend, four
    rows deep there, stays below its x axis's title (it rose into it), and no x axis's title runs past the plot's
    right edge (the Reverse t₀ sweep's did). A grid is as tall as its narrowed panels need
    (the rows of panels were as tall as on a desktop, each panel a small square in a band of blank). In a wide window
    the titles and panels are back at their own size. The Schedules table, wider than a phone, shows a shadow at each
    edge that hides columns (it scrolled with no sign), and the stacked player's "loading frames…" lies on its first
    panel (centred on the stack, it had lain over the second panel's caption)."""
    p = Page(browser, app_url, "phone", **PHONE)
    try:
        for width, rows in ((390, 1), (360, 1), (320, 2)):  # Train and Reverse had been behind a "⋯" below 400 px
            p.page.set_viewport_size({"width": width, "height": 844})
            tops = {p.page.get_by_role("tab", name=name).bounding_box()["y"] for name in TAB_NAMES}
            assert len(tops) == rows, f"{width} px: the tabs' rows start at {tops}"
        p.page.set_viewport_size(PHONE["viewport"])
        blank = p.page.evaluate("""() => {  // x_t's picture at the top of its plot: it was centred, 100 px below
          const plot = document.querySelector('#forward-x-t .js-plotly-plot');
          return plot.querySelector('image').getBoundingClientRect().top
            - plot.querySelector('svg.main-svg').getBoundingClientRect().top; }""")
        assert blank < 40, f"{blank:.0f} px above x_t's picture, its label within them"
        arrows = p.page.evaluate(ARROWS_OUT_OF_BOX_JS)
        assert arrows["headings"] >= 3 and arrows["tall"] >= 1 and not arrows["out"], arrows
        p.page.get_by_text("One step at a time").click()  # the chain panel: three long column titles
        p.page.wait_for_selector("#forward-chain .js-plotly-plot")
        p.tab("Schedules")
        p.page.wait_for_function(f"() => ({PLOT_TEXT_JS})().titles >= 6")
        for tab in ("Schedules", "Forward"):
            p.tab(tab)
            p.page.wait_for_timeout(500)  # plotly redraws a plot shown again
            found = p.page.evaluate(PLOT_TEXT_JS)
            assert found["titles"] >= 3, f"{tab}: {found}"
            assert not found["overlaps"], f"{tab}: column titles run into each other: {found['overlaps']}"
            assert not found["clipped"], f"{tab}: legend entries cut off at the plot's edge: {found['clipped']}"
            assert not found["legendOverTitle"], f"{tab}: a legend over its x axis's title: {found['legendOverTitle']}"
            grids = p.page.evaluate(GRID_HEIGHTS_JS)
            assert grids and all(g["side"] < g["cell"] for g in grids), f"{tab}: {grids}"  # narrowed panels
            assert all(g["height"] <= g["need"] + 2 for g in grids), f"{tab}: a grid taller than its panels: {grids}"
            # no plot toolbar: a touch screen showed them at all times, over the grids' column titles
            assert p.page.evaluate(VISIBLE_TOOLBARS_JS) == 0, tab
            p.shot(f"phone-{tab.lower()}")
        p.tab("Schedules")  # its table, wider than the phone, shows a shadow on each side that hides columns
        table = p.page.locator(".prose.numbers-table")
        table.scroll_into_view_if_needed()
        left, right = edge_shadows(table)
        assert left < 0.5 < 3 < right, f"at its start: left {left:.2f}, right {right:.2f}"
        table.evaluate("e => e.scrollLeft = e.scrollWidth")
        left, right = edge_shadows(table)
        assert right < 0.5 < 3 < left, f"at its end: left {left:.2f}, right {right:.2f}"
        # 2D data: its grid's left margin holds the coordinates, and its rows' labels were cut off
        p.page.get_by_label("Data x₀ for the noised grid").click()
        p.page.get_by_role("option").filter(has_text="Swiss roll").first.click()
        p.page.wait_for_function(f"() => ({GRID_HEIGHTS_JS})().some(g => g.cell === 150)")  # the 2D grid's panels
        found = p.page.evaluate(PLOT_TEXT_JS)
        assert not found["clipped"] and not found["overlaps"], f"Schedules, 2D: {found}"
        # seven titles over columns 41 px apart: at 8 px on one line they ran into each other; two lines kept them
        # apart, still at 8 px
        p.page.set_viewport_size({"width": 360, "height": 740})  # the empty loss plot's note ran past both its edges
        p.tab("Train")
        p.page.wait_for_selector("#train-loss .js-plotly-plot .annotation-text")
        assert not p.page.evaluate(PLOT_TEXT_JS)["clipped"], "Train at 360 px"
        p.page.set_viewport_size(PHONE["viewport"])
        p.tab("Reverse")  # the t₀ sweep's x title ran past the plot's right edge
        p.page.get_by_text("How much of the data survives").click()
        p.page.get_by_role("button", name="Sweep t₀", exact=True).click()
        p.page.wait_for_selector("#reverse-sweep .js-plotly-plot .g-xtitle text", timeout=60_000)
        for axis in ("log-SNR at t₀", "t₀"):
            found = p.page.evaluate(PLOT_TEXT_JS)
            assert not found["clipped"], f"Reverse, the t₀ sweep: {found['clipped']}"
            p.page.get_by_label(axis, exact=True).check()
            p.page.wait_for_function("(axis) => document.querySelector('#reverse-sweep .g-xtitle text')"
                                     ".textContent.startsWith(axis)", arg=axis.split(" ")[0])
        p.model("mnist (shipped)")
        p.page.get_by_text("Anatomy of one step").first.click()
        p.page.get_by_role("button", name="Take step t apart", exact=True).click()
        p.page.wait_for_function(f"() => ({PLOT_TEXT_JS})().titles >= 7", timeout=60_000)
        found = p.page.evaluate(PLOT_TEXT_JS)
        assert not found["overlaps"], f"Reverse: column titles run into each other: {found['overlaps']}"
        # its short titles ("x̂₀" for "x̂₀ predicted"): the long ones, even on two lines, were 8 px there
        assert min(found["sizes"]) >= plot_page.GRID_TITLE_ONE_LINE_SMALLEST, found["sizes"]
        p.shot("phone-reverse-anatomy")
        # in a 1280 × 600 window (a projector's, less the browser's bars) its four rows fit beneath its slider: 120-px
        # panels had left the last row out of sight
        p.page.set_viewport_size({"width": 1280, "height": 600})
        laid_out = f"() => ({GRID_HEIGHTS_JS})().some((g) => g.side > 60 && Math.abs(g.height - g.need) < 2)"
        p.page.wait_for_function(laid_out, timeout=10_000)  # laid out again for the window's width
        fit = p.page.evaluate("""() => {
          const slider = document.querySelector('#reverse-anatomy input[type=range]').getBoundingClientRect();
          const grid = document.querySelector('#reverse-anatomy-plot .js-plotly-plot').getBoundingClientRect();
          return {width: grid.width, tall: grid.bottom - slider.top};
        }""")
        assert fit["width"] > 1000 and fit["tall"] <= 600, fit
        p.page.set_viewport_size(PHONE["viewport"])
        # the player's panels (x_t, x̂₀) stack at full width on a phone: side by side, each was ~145 px wide, its
        # labels ~5 px tall; in a wide window they are side by side again
        p.model("moons (shipped)")
        sprites, held = re.compile(r".*/frames-[^/]*\.png$"), []
        p.page.route(sprites, lambda route: held.append(route))  # the frames held back: "loading frames…" stays
        p.page.get_by_role("button", name="Generate", exact=True).click()
        p.page.wait_for_function("() => document.querySelector('#reverse-player .pl-loading')", timeout=60_000)
        # on the first panel (centred on the stack, it had lain over the second panel's caption)
        assert p.page.evaluate("""() => {
          const text = document.createRange(), first = document.querySelector('#reverse-player canvas');
          text.selectNodeContents(document.querySelector('#reverse-player .pl-loading'));
          const t = text.getBoundingClientRect(), c = first.getBoundingClientRect();
          return t.top >= c.top && t.bottom <= c.bottom; }"""), "loading frames… off the first panel"
        for route in held:
            route.continue_()
        p.page.unroute(sprites)
        p.page.wait_for_selector('#reverse-player .ddpm-player[data-ready="1"]', timeout=60_000)
        boxes = p.page.locator("#reverse-player canvas").evaluate_all(
            "cs => cs.map(c => { const b = c.getBoundingClientRect(); return [b.left, b.top, b.width, b.bottom]; })")
        assert len(boxes) == 2 and boxes[1][1] >= boxes[0][3] and min(b[2] for b in boxes) >= 250, boxes
        p.shot("phone-reverse-player")
        p.page.set_viewport_size(VIEWPORT)  # turned into a wide window, the titles are drawn at their own size again
        p.page.wait_for_function(f"() => ({PLOT_TEXT_JS})().sizes.every(s => s === {panel_grid.GRID_TITLE_SIZE})")
        assert p.page.evaluate(VISIBLE_TOOLBARS_JS) > 0  # and the toolbars are back (shown on hover with a mouse)
        p.page.wait_for_function(f"() => ({GRID_HEIGHTS_JS})().every(g => g.side === g.cell && g.height <= g.need + 2)")
        boxes = p.page.locator("#reverse-player canvas").evaluate_all(
            "cs => cs.map(c => { const b = c.getBoundingClientRect(); return [b.left, b.top, b.width, b.right]; })")
        assert boxes[0][1] == boxes[1][1] and boxes[1][0] > boxes[0][3], f"side by side in a wide window: {boxes}"
        p.assert_clean("Forward, Schedules and Reverse at 390 px")
    finally:
        p.close()


def test_the_keyboard_sees_its_focus_and_skips_the_plot_toolbars(browser, app_url: str) -> None:
    """A slider reached by Tab shows that it has focus (it looked exactly as before: the lecturer could not see which
    slider the arrow keys would move), and Tab goes from control to control past the plots' toolbars: their buttons
    were 53 of the Schedules tab's 78 Tab stops. Each toolbar keeps its download button in the Tab order."""
    p = Page(browser, app_url, "keyboard")
    try:
        slider = p.page.locator("#forward-t input[type=range]")
        unfocused = slider.evaluate("(e) => getComputedStyle(e).outlineStyle")
        p.page.locator("#forward-t input[type=number]").focus()
        for _ in range(4):  # by the keyboard (:focus-visible): past the box and its reset button to the slider
            p.page.keyboard.press("Tab")
            if slider.evaluate("(e) => e === document.activeElement"):
                break
        assert slider.evaluate("(e) => e === document.activeElement")
        ring = slider.evaluate("(e) => [getComputedStyle(e).outlineStyle, parseFloat(getComputedStyle(e).outlineWidth)]")
        assert unfocused == "none" and ring[0] == "solid" and ring[1] >= 2, (unfocused, ring)
        # Tab from the data dropdown goes to the next control: its open list (it scrolls) had taken the focus, then
        # closed, leaving it on the page
        p.page.set_viewport_size(PROJECTOR["viewport"])  # a projector at 150 %: the open list scrolls
        data = p.page.get_by_role("combobox", name="Data x₀")
        p.page.get_by_role("tab", name="Forward").focus()
        for _ in range(6):
            p.page.keyboard.press("Tab")
            if data.evaluate("(e) => e === document.activeElement"):
                break
        p.page.keyboard.press("Tab")
        assert p.page.evaluate("() => document.activeElement.tagName") == "BUTTON"  # the upload box (was BODY)
        p.page.set_viewport_size(VIEWPORT)
        p.tab("Schedules")
        p.page.wait_for_function("() => document.querySelectorAll('.modebar-btn').length > 30")  # its plots' toolbars
        stops = p.page.evaluate("() => [...document.querySelectorAll('.modebar-btn')].map((b) => [b.dataset.title, "
                                "b.tabIndex])")
        assert stops and all((title == accessibility.TOOLBAR_KEPT) == (index >= 0) for title, index in stops), stops
        assert any(index >= 0 for _, index in stops)  # the download stays a Tab away
        # each plot is a figure named by its label, and an accordion's header says whether it is open
        named = p.page.evaluate("() => [...document.querySelectorAll('.js-plotly-plot')].filter((e) => e.offsetParent)"
                                ".map((e) => [e.getAttribute('role'), document.getElementById("
                                "e.getAttribute('aria-labelledby'))?.innerText])")
        assert named and all(role == "figure" and label for role, label in named), named
        assert ["figure", "β_t: variance of the noise added at step t"] in named
        header = p.visible(p.page.locator("button.label-wrap")).first
        assert header.get_attribute("aria-expanded") == "false"
        header.click()
        p.page.wait_for_function("(e) => e.getAttribute('aria-expanded') === 'true'", arg=header.element_handle())
        # the labels of the views and controls, and the primary buttons' text, at 4.5:1 (Soft's were 3.6 and 4.46)
        contrast = p.page.evaluate(CONTRAST_JS, "[data-testid=block-label]")
        assert contrast is not None and contrast >= 4.5, f"Schedules, a label: contrast {contrast}"
        # a run that finishes is read out: its status stopped being busy (Gradio updated it in place, and both the
        # block and the element inside it had the status's class, two regions: the outer one stayed busy)
        p.tab("Train")
        contrast = p.page.evaluate(CONTRAST_JS, "#train-start")
        assert contrast is not None and contrast >= 4.5, f"Start training: contrast {contrast}"
        p.page.get_by_label("Training steps").fill("50")
        p.page.get_by_role("button", name="Start training").click()
        p.page.wait_for_function("() => /Finished after/.test(document.querySelector('#train-status').innerText)",
                                 timeout=60_000)
        p.page.wait_for_function("() => document.querySelector('#train-status').getAttribute('aria-busy') === 'false'")
        assert p.page.locator(f".{accessibility.LIVE_STATUS}[aria-live]").count() == 1  # the status, once
        # a hidden progress tracker is hidden from a reader too: at opacity 0 alone, the status could read out "Error"
        hidden = p.page.evaluate("() => [...document.querySelectorAll('#train-status [data-testid=status-tracker].hide')]"
                                 ".map((e) => getComputedStyle(e).visibility)")
        assert hidden and set(hidden) == {"hidden"}, hidden
        p.assert_clean("Forward, Schedules and Train by keyboard")
    finally:
        p.close()


# The contrast ratio (WCAG: 1 to 21) of an element's text against the first opaque background behind it.
CONTRAST_JS = """(selector) => {
  const el = document.querySelector(selector);
  if (!el) return null;
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const luminance = ([r, g, b]) => {
    const lin = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
  };
  let back = el;
  while (back && (rgb(getComputedStyle(back).backgroundColor)[3] === 0)) back = back.parentElement;
  const [l1, l2] = [luminance(rgb(getComputedStyle(el).color)),
                    luminance(back ? rgb(getComputedStyle(back).backgroundColor) : [255, 255, 255])];
  return (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
}"""


# the colours of the first plot with axes, as drawn: (its paper, its plot area, a tick label's text, its block's)
PLOT_COLOURS_JS = """() => {
  const plot = [...document.querySelectorAll('.js-plotly-plot')].find((p) => p.querySelector('.xtick text'));
  const style = (selector, property) => getComputedStyle(plot.querySelector(selector))[property];
  return [style('.main-svg', 'backgroundColor'), style('.plot-container rect.bg', 'fill'), style('.xtick text', 'fill'),
          getComputedStyle(plot.closest('.block')).backgroundColor];
}"""


def luminance(colour: str) -> float:
    """WCAG's relative luminance of a CSS "rgb(r, g, b)" colour."""
    channels = [int(v) / 255 for v in re.findall(r"\d+", colour)[:3]]
    r, g, b = (v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4 for v in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_dark_mode_keeps_text_readable(browser, app_url: str) -> None:
    """In the browser's dark mode (Gradio follows the system's: many lecturers' laptops) the text of the coloured
    boxes, subscripts too, and the player's Pause button and speed menu stay readable: contrast ≥ 4.5 (they were
    light grey on the box's light green, and on the button's light grey). The plots and the player's drawn frames
    take the dark theme's colours (they were white boxes, a projector's glare)."""
    p = Page(browser, app_url, "dark", color_scheme="dark")
    try:
        for selector in (".notice", ".notice sub"):
            contrast = p.page.evaluate(CONTRAST_JS, selector)
            assert contrast is not None and contrast >= 4.5, f"Forward, {selector}: contrast {contrast}"
        p.wait_plots(3)
        paper, area, tick, block = p.page.evaluate(PLOT_COLOURS_JS)
        assert paper == "rgba(0, 0, 0, 0)" and area == block, (paper, area, block)
        lighter, darker = sorted((luminance(tick), luminance(block)), reverse=True)
        assert (lighter + 0.05) / (darker + 0.05) >= 4.5, f"a tick label {tick} on {block}"
        p.tab("Train")  # the empty plots' grey notes (#666 on white) take the theme's subdued text colour
        notes = p.page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot text.annotation-text')]
          .filter((t) => t.getBoundingClientRect().width > 0)
          .map((t) => [getComputedStyle(t).fill, getComputedStyle(t.closest('.block')).backgroundColor])""")
        assert notes
        for fill, back in notes:
            lighter, darker = sorted((luminance(fill), luminance(back)), reverse=True)
            assert (lighter + 0.05) / (darker + 0.05) >= 4.5, f"Train, a plot's note {fill} on {back}"
        p.tab("Reverse")
        p.page.get_by_role("button", name="Generate").click()
        p.page.wait_for_selector('#reverse-player .ddpm-player[data-ready="1"]', timeout=60_000)
        for selector in ("#reverse-player .pl-controls button", "#reverse-player .pl-controls select"):
            contrast = p.page.evaluate(CONTRAST_JS, selector)
            assert contrast is not None and contrast >= 4.5, f"Reverse, {selector}: contrast {contrast}"
        frames = p.page.evaluate("() => getComputedStyle(document.querySelector('#reverse-player canvas')).filter")
        assert frames == "invert(1) hue-rotate(180deg)", frames  # the default model is a 2D one: drawn frames
        p.shot("dark-reverse")
        p.assert_clean("Forward and Reverse in dark mode")
    finally:
        p.close()
