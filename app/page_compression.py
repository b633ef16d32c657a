"""Gzip for the page and its config, which Gradio sends uncompressed.

Gradio compresses what it serves by the name's extension (.js, .css, .json, …: brotli), so the page itself ("/",
which carries the whole app's config: 1.6 MB, most of it the tabs' initial plotly figures) and "/config" went out
as they are. Gzipped the page is a sixth of that (0.27 MB): on a "Fast 3G" link (1.6 Mbit/s) the Forward tab's
slider is usable 6.5 s sooner (README, "Hosting"). Only those two routes: the queue's event streams and the files keep Gradio's handling.
"""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

PAGE_PATHS = frozenset({"/", "/config", "/config/"})  # Gradio's routes for the page and its config
COMPRESS_LEVEL = 6  # 1.6 MB in 26 ms on one core; level 9 took 59 ms for 1 % less


class PageCompression:
    """ASGI middleware: gzip the responses to `PAGE_PATHS` when the client accepts gzip; pass the rest on as is."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.gzip = GZipMiddleware(app, compresslevel=COMPRESS_LEVEL)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in PAGE_PATHS:
            await self.gzip(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def app_kwargs() -> dict:
    """`Blocks.launch(app_kwargs=…)`: the FastAPI app Gradio builds gets `PageCompression` (inside Gradio's own
    compression, which passes a response already encoded on as it is)."""
    return {"middleware": [Middleware(PageCompression)]}
