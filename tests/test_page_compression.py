"""The page and its config go out gzipped (`app.page_compression`); what Gradio compresses itself keeps its brotli.

A small Blocks launched with the app's own `LAUNCH_OPTIONS` on a free port of 127.0.0.1.
"""

from __future__ import annotations

import gzip
import json
import re
import urllib.request

import gradio as gr
import pytest

import app
from tests.app_server import HOST, free_port


@pytest.fixture(scope="module")
def url():
    with gr.Blocks() as demo:
        gr.Plot(label="a figure")
    options = dict(app.LAUNCH_OPTIONS, app_kwargs=dict(app.LAUNCH_OPTIONS["app_kwargs"]))  # Gradio adds keys to it
    demo.launch(**options, server_name=HOST, server_port=free_port(), prevent_thread_lock=True, quiet=True)
    yield demo.local_url
    demo.close()


def get(url: str, encodings: str) -> tuple[str | None, bytes]:
    request = urllib.request.Request(url, headers={"Accept-Encoding": encodings})
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (127.0.0.1 only)
        return response.headers.get("Content-Encoding"), response.read()


@pytest.mark.parametrize("path", ["", "config"])
def test_the_page_and_its_config_are_gzipped(url, path):
    encoding, body = get(url + path, "gzip, deflate, br")
    assert encoding == "gzip"
    text = gzip.decompress(body).decode()
    assert '"components"' in text
    if path == "config":
        assert json.loads(text)["components"]


def test_a_client_that_accepts_no_gzip_gets_the_page_as_it_is(url):
    encoding, body = get(url, "identity")
    assert encoding is None
    assert b"<html" in body


def test_the_scripts_keep_gradios_brotli(url):
    page = gzip.decompress(get(url, "gzip")[1]).decode()
    script = re.search(r"assets/[\w.-]+\.js", page).group(0)
    encoding, _ = get(url + script, "gzip, deflate, br")
    assert encoding == "br"
