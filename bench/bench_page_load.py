"""Weigh a first visit of a running app and time it until the Forward tab can be used, on throttled links.

    python bench/bench_page_load.py [--url http://127.0.0.1:7860/] [--links none,wifi,3g] [--browser /usr/bin/chromium]

For each link (Chrome DevTools' network emulation, the browser's cache off) headless Chromium loads the page and
prints the bytes that came over the wire (each response's encoded length), grouped by kind, the number of requests,
and the seconds until the t slider (`#forward-t`) is on the page and the x_t plot (`#forward-x-t`) is drawn. Start the
app first (`python app.py`). Needs the test dependencies (playwright) and a Chromium.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict

from playwright.sync_api import sync_playwright

LINKS = {  # name -> (bits per second down, latency in ms); None: no throttling
    "none": None,
    "wifi": (5e6, 40),  # a lecture hall's shared wifi
    "3g": (1.6e6, 150),  # DevTools' "Fast 3G"
}
SETTLE_MS = 5000  # after the plot is drawn: the page's load events end
TIMEOUT_MS = 180_000


def kind(url: str, resource_type: str) -> str:
    """A response's group in the summary: the page, Plotly.js, fonts, the queue's traffic, or the browser's type."""
    if url.rstrip("/").count("/") == 2:
        return "page"
    if "Plotly" in url:
        return "plotly.js"
    if "/gradio_api/" in url:
        return "events"
    return resource_type.lower()


def load(browser, url: str, link: tuple[float, float] | None) -> dict:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    if link is not None:
        bits, latency = link
        cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": latency,
                                                      "downloadThroughput": bits / 8, "uploadThroughput": bits / 8})
    responses: dict[str, dict] = defaultdict(dict)
    cdp.on("Network.responseReceived", lambda e: responses[e["requestId"]].update(
        kind=kind(e["response"]["url"], e["type"])))
    cdp.on("Network.loadingFinished", lambda e: responses[e["requestId"]].update(bytes=e["encodedDataLength"]))
    start = time.monotonic()
    page.goto(url, wait_until="commit")
    page.wait_for_selector("#forward-t input[type=range]", state="attached", timeout=TIMEOUT_MS)
    slider = time.monotonic() - start
    page.wait_for_selector("#forward-x-t .js-plotly-plot", state="attached", timeout=TIMEOUT_MS)
    plot = time.monotonic() - start
    page.wait_for_timeout(SETTLE_MS)
    page.close()
    groups: dict[str, int] = defaultdict(int)
    for response in responses.values():
        groups[response.get("kind", "other")] += response.get("bytes", 0)
    return {"requests": len(responses), "bytes": sum(groups.values()), "slider_s": round(slider, 2),
            "plot_s": round(plot, 2), "bytes_by_kind": dict(sorted(groups.items(), key=lambda item: -item[1]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:7860/")
    parser.add_argument("--links", default=",".join(LINKS), help=f"comma-separated, of: {', '.join(LINKS)}")
    parser.add_argument("--browser", default="/usr/bin/chromium")
    args = parser.parse_args()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.browser)
        for name in args.links.split(","):
            if name not in LINKS:
                parser.error(f"unknown link {name!r}; choose from {', '.join(LINKS)}")
            print(name, json.dumps(load(browser, args.url, LINKS[name])))
        browser.close()


if __name__ == "__main__":
    main()
