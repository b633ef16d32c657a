"""Launch `python app.py` for end-to-end tests (gradio_client and the real browser).

The fixture ``app_url`` (session-scoped) starts the app as a subprocess on a free port on
127.0.0.1, with its own runs directory and the offline data directory beside the repo, waits
(bounded) until it answers HTTP, measures the start-up time (`check_startup` asserts it), yields
the URL and terminates the process at the end (kill if it does not exit). Only 127.0.0.1 is used.

Use it from a test module with ``from tests.app_server import app_url  # noqa: F401``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
ARTIFACTS = REPO / "test-artifacts"
HOST = "127.0.0.1"
WAIT_SECONDS = 60.0  # give up waiting for the first HTTP answer after this long
MAX_STARTUP_SECONDS = float(os.environ.get("DDPM_TEST_MAX_STARTUP_S", "30"))  # asserted with CI headroom; target 10 s idle
POLL_SECONDS = 0.2


@dataclass
class AppServer:
    url: str
    runs_dir: Path
    startup_seconds: float
    process: subprocess.Popen
    log_path: Path

    def log_tail(self, n: int = 60) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-n:])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _responds(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (127.0.0.1 only)
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def stop_app(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def start_app(runs_dir: Path, log_path: Path, extra_env: dict[str, str] | None = None) -> AppServer:
    """Start `python app.py` and wait (bounded) until it serves its page; raises on failure."""
    port = free_port()
    url = f"http://{HOST}:{port}/"
    env = {
        **os.environ,
        "GRADIO_SERVER_NAME": HOST,
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "DDPM_RUNS_DIR": str(runs_dir),
        "DDPM_DATA_DIR": str(SHARED_DATA),
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
    log_file = open(log_path, "wb")  # noqa: SIM115 (closed with the process below)
    start = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "app.py"], cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT
    )
    log_file.close()  # the child keeps its own descriptor
    deadline = start + WAIT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"app.py exited with code {process.returncode} before serving:\n{log_path.read_text(errors='replace')[-4000:]}"
            )
        if _responds(url):
            return AppServer(url, runs_dir, time.monotonic() - start, process, log_path)
        time.sleep(POLL_SECONDS)
    stop_app(process)
    raise RuntimeError(f"app.py did not answer on {url} within {WAIT_SECONDS:.0f} s:\n{log_path.read_text(errors='replace')[-4000:]}")


_SERVER: AppServer | None = None


def _stop_shared() -> None:
    global _SERVER
    server, _SERVER = _SERVER, None
    if server is None:
        return
    stop_app(server.process)
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        (ARTIFACTS / "app.log").write_text(server.log_path.read_text(errors="replace"))
    except OSError:
        pass


@pytest.fixture(scope="session")
def app_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AppServer:
    """The running app, with its own empty runs directory: one process for the whole test session.

    Each test module that imports this fixture gets its own fixture definition, so the process is
    kept in a module global (started once) and stopped when pytest ends (``config.add_cleanup``).
    """
    global _SERVER
    if _SERVER is None or _SERVER.process.poll() is not None:
        base = tmp_path_factory.mktemp("app")
        runs_dir = base / "runs"
        runs_dir.mkdir()
        _SERVER = start_app(runs_dir, base / "app.log")
        request.config.add_cleanup(_stop_shared)
        print(f"\n[app_server] start-up: {_SERVER.startup_seconds:.1f} s (target ≤ 10 s idle; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores) at {_SERVER.url}")
    return _SERVER


def check_startup(server: AppServer) -> None:
    """Start-up (process start → first HTTP 200) within MAX_STARTUP_SECONDS.

    A test of its own (not part of the fixture) so that a slow start on a crowded machine fails
    one test instead of erroring every test that needs the app.
    """
    assert server.startup_seconds <= MAX_STARTUP_SECONDS, (
        f"python app.py took {server.startup_seconds:.1f} s to serve its page (limit {MAX_STARTUP_SECONDS:.0f} s, "
        f"target 10 s on an idle machine; load average now {os.getloadavg()[0]:.1f})"
    )


@pytest.fixture(scope="session")
def app_url(app_server: AppServer) -> str:
    """URL of the running app (http://127.0.0.1:PORT/)."""
    return app_server.url
