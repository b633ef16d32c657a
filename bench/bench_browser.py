"""Time a keyboard scrub of t on the Forward tab in a real browser, against Gradio's defaults in the same run.

    python bench/bench_browser.py [--steps 60] [--browser /usr/bin/chromium]

Starts the app six times on a free port, as `python app.py` does: with its launch options (`app.LAUNCH_OPTIONS`);
with Gradio's default run history (which keeps every call's inputs and outputs in the browser's localStorage);
without its fix of Gradio's double drawing of each new figure (`plot_page.REDRAW_KEPT_PLOTS_ONLY_JS`); with each
release of t sending the server the two requests it sent before `forward_tab.T_FIX_JS` and
`forward_tab.open_panels_js` (one to put the box right, one to draw the panels below, here both closed: handlers that
change nothing, as theirs did then); with the Reverse tab's paint box shown over a digit first; and so, with a
handler that writes the box (as one did before `own_points.box_reader`: Gradio then had the box upload its picture
at every event). In each, headless Chromium focuses the t slider, presses → `--steps` times (30 ms apart, as a held
key) and waits until the table says "steps of 1000". Prints the wall time, the main thread's long tasks (> 50 ms),
what localStorage holds afterwards, the server's CPU time per key (its process, idle polling included) and the files
the page uploaded, and the ratios of the others to the app.

Then, in a blank page with plotly.js alone, draws the Forward tab's 2D x_t view (2,000 points of the swiss roll at
t = 100) as the app draws it (`point_pictures.points_picture_figure`: one picture over the axes) and as a plotly scatter
trace (`figures.points_figure`), each a new plot as Gradio draws it, and prints the median time to the next frame.
Needs the test dependencies (playwright) and a Chromium.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import plotly
from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from app import controls, figures, forward_tab, point_pictures  # noqa: E402
SLIDER = "range slider for t (0 = clean data x₀, T = end of the chain)"
LAUNCH = """
import sys
from app import LAUNCH_OPTIONS, build_app, plot_page
options = {"app": {}, "history": {"run_history": True}, "draw twice": {"js": plot_page.FREE_DROPPED_PLOTS_JS},
           "releases": {}, "box written": {}}
demo = build_app()
if sys.argv[1] == "box written":
    import gradio as gr
    paint = next(block for block in demo.blocks.values() if getattr(block, "elem_id", None) == "reverse-inpaint-paint")
    known = next(block for block in demo.blocks.values() if getattr(block, "label", None) == "Known part")
    with demo:
        known.change(lambda: gr.skip(), None, paint, show_progress="hidden", queue=False)
if sys.argv[1] == "releases":
    import gradio as gr
    t = next(block for block in demo.blocks.values() if getattr(block, "elem_id", None) == "forward-t")
    with demo:
        t.release(lambda value: gr.skip(), t, t, show_progress="hidden", queue=False)
        t.release(lambda value: gr.skip(), t, t, show_progress="hidden", trigger_mode="always_last")
demo.queue(default_concurrency_limit=8).launch(**{**LAUNCH_OPTIONS, **options[sys.argv[1]]})
"""
LONG_TASKS_JS = """() => { window.longTasks = []; new PerformanceObserver(list => {
  for (const entry of list.getEntries()) window.longTasks.push(entry.duration); }).observe({type: 'longtask'}); }"""
STORED_JS = "() => Object.values(localStorage).reduce((sum, value) => sum + value.length, 0)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_app(variant: str) -> tuple[subprocess.Popen, str]:
    """The app on a free port: "app" (its launch options), "history" (with Gradio's run history) or "draw twice"
    (without the fix of Gradio's double drawing)."""
    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
           "DDPM_DATA_DIR": os.environ.get("DDPM_DATA_DIR", str(REPO.parent / "shared" / "data"))}
    process = subprocess.Popen([sys.executable, "-c", LAUNCH, variant], cwd=REPO, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).close()  # noqa: S310 (127.0.0.1 only)
            return process, url
        except OSError:
            time.sleep(0.5)
    process.kill()
    sys.exit(f"the app did not answer at {url} within 120 s")


def cpu_seconds(pid: int) -> float:
    """The CPU time of process ``pid`` so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def paint_box_shown(page) -> None:
    """The Reverse tab's paint box shown over mnist's first digit (Known part: what you leave unpainted), then the
    Forward tab again."""
    page.get_by_role("tab", name="Reverse").click()
    page.get_by_role("combobox", name="Checkpoint").click()
    page.get_by_role("option", name="mnist (shipped)").click()
    time.sleep(2)
    page.get_by_text("Fill in the missing part").click()
    page.get_by_role("combobox", name="Known part").click()
    page.get_by_role("option", name="what you leave unpainted").click()
    page.wait_for_selector('#reverse-inpaint-paint button[aria-label="Brush"].highlight')
    time.sleep(2)
    page.get_by_role("tab", name="Forward").click()


def scrub(browser, url: str, steps: int, pid: int, paint_box: bool = False) -> dict[str, float]:
    """Wall time of `steps` key presses until the views show the last t, with the long tasks and storage size, the
    server's (``pid``) CPU time per key, until a second after the last view, and the files the page uploaded; with
    ``paint_box``, after `paint_box_shown`."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(300_000)
    page.goto(url)
    if paint_box:
        paint_box_shown(page)
    uploads = []
    page.on("request", lambda request: uploads.append(request.url) if "/upload" in request.url else None)
    slider = page.get_by_label(SLIDER)
    slider.wait_for()
    time.sleep(2)
    page.evaluate(LONG_TASKS_JS)
    slider.focus()
    start, cpu = time.perf_counter(), cpu_seconds(pid)
    for _ in range(steps):
        slider.press("ArrowRight")
        time.sleep(0.03)
    page.wait_for_function("(cell) => Array.from(document.querySelectorAll('td')).some(td => td.innerText.trim() === "
                           "cell)", arg=f"{steps} of 1000")
    seconds = time.perf_counter() - start
    time.sleep(1)  # the requests of the last keys' releases
    server_ms = (cpu_seconds(pid) - cpu) / steps * 1e3
    long_tasks = page.evaluate("() => window.longTasks")
    stored = page.evaluate(STORED_JS)
    page.close()
    return {"seconds": seconds, "long_tasks": sum(long_tasks) / 1e3, "max_task_ms": max(long_tasks, default=0.0),
            "stored_mb": stored * 2 / 1e6, "server_ms": server_ms,  # localStorage: UTF-16, 2 bytes a character
            "uploads": len(uploads)}


NEW_PLOT_JS = """async (figure) => {
  const el = document.getElementById('plot'), times = [];
  for (let i = 0; i < 9; i++) {
    Plotly.purge(el);
    const start = performance.now();
    await Plotly.newPlot(el, figure.data, figure.layout, {responsive: true});
    await new Promise(resolve => requestAnimationFrame(() => setTimeout(resolve)));
    times.push(performance.now() - start);
  }
  return times.sort((a, b) => a - b)[4];
}"""


def points_views(browser) -> dict[str, float]:
    """Median ms from a new plot to the next frame, for the 2D x_t view as a picture and as a scatter trace."""
    state = forward_tab.prepare(None, "swiss_roll", None, None, "linear", 1000, 0, *controls.default_param_values())
    xt = forward_tab.x_t(state, 100)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_content("<div id='plot' style='width: 620px'></div>")
    page.add_script_tag(path=str(Path(plotly.__file__).parent / "package_data" / "plotly.min.js"))
    views = {"picture (the app)": point_pictures.points_picture_figure(xt), "scatter trace": figures.points_figure(xt)}
    times = {label: page.evaluate(NEW_PLOT_JS, json.loads(view.plot)) for label, view in views.items()}
    page.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--browser", default="/usr/bin/chromium")
    args = parser.parse_args()
    results = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.browser, headless=True,
                                             args=["--no-sandbox", "--disable-gpu"])
        variants = {"app": ("app", False), "Gradio's run history on": ("history", False),
                    "each figure drawn twice": ("draw twice", False),
                    "each release asks the server": ("releases", False), "the paint box shown": ("app", True),
                    "the paint box shown, a handler writes it": ("box written", True)}
        for label, (variant, paint_box) in variants.items():
            process, url = start_app(variant)
            try:
                results[label] = scrub(browser, url, args.steps, process.pid, paint_box)
            finally:
                process.terminate()
                process.wait(timeout=30)
            r = results[label]
            print(f"{label:42s} {args.steps} steps in {r['seconds']:5.1f} s; long tasks {r['long_tasks']:5.1f} s "
                  f"(max {r['max_task_ms']:.0f} ms); localStorage {r['stored_mb']:.2f} MB; server CPU "
                  f"{r['server_ms']:.1f} ms a key; {r['uploads']} files uploaded", flush=True)
        times = points_views(browser)
        browser.close()
    ours = results["app"]
    for label, peer in list(results.items())[1:]:
        print(f"{label}: {peer['seconds'] / ours['seconds']:.2f}× as long as the app's scrub, "
              f"{peer['long_tasks'] / max(ours['long_tasks'], 1e-3):.2f}× the long-task time, "
              f"{peer['max_task_ms'] / max(ours['max_task_ms'], 1e-3):.2f}× the longest task, "
              f"{peer['server_ms'] / max(ours['server_ms'], 1e-3):.2f}× the server's CPU time")
    shown, written = results["the paint box shown"], results["the paint box shown, a handler writes it"]
    print(f"the paint box shown, no handler writing it: {shown['seconds'] / written['seconds']:.2f}× the scrub's time, "
          f"{shown['server_ms'] / max(written['server_ms'], 1e-3):.2f}× the server's CPU time, "
          f"{shown['uploads']} files uploaded against {written['uploads']}")
    for label, ms in times.items():
        print(f"2D x_t view, 2,000 points, as a {label:18s} {ms:6.1f} ms from a new plot to the next frame")
    picture, scatter = times.values()
    print(f"the scatter trace takes {scatter / picture:.1f}× as long to draw as the picture")


if __name__ == "__main__":
    main()
