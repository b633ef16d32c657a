"""DDPM Explorer: `python app.py` opens the Gradio app (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT honoured). Stopped
(Ctrl-C, or a host's SIGTERM: a Space's restart), it saves the training runs under way before it exits."""

import logging
import os
import signal
import sys

from app import LAUNCH_OPTIONS, build_app, torch_threads
from app.runs import SHUTDOWN_WAIT_SECONDS, SettingError, check_settings, runs_folder_problem, stop_every_run
from core.trainer import SHORTEST_KEPT

if __name__ == "__main__":
    try:
        check_settings()
    except SettingError as err:  # one line for the host, not a traceback
        sys.exit(f"app.py: {err}; fix the setting and start again")
    if (problem := runs_folder_problem()) is not None:
        print(f"app.py: warning: {problem}; trained and uploaded models cannot be saved (set DDPM_RUNS_DIR to a "
              "writable folder)", file=sys.stderr)
    torch_threads.one_core_per_request()  # before the first views are computed: a training run takes all the cores
    for name in ("SIGTERM", "SIGHUP"):  # as Ctrl-C: Gradio closes the server and `launch` returns
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.default_int_handler)
    build_app().queue(default_concurrency_limit=8).launch(**LAUNCH_OPTIONS)
    try:
        stopped, saved = stop_every_run()
        if stopped:
            print(f"app.py: stopped {stopped} training run{'s' if stopped > 1 else ''} and saved {saved} (a run is "
                  f"saved from its {SHORTEST_KEPT}th step; waited at most {SHUTDOWN_WAIT_SECONDS:.0f} s)",
                  file=sys.stderr)
    except KeyboardInterrupt:
        sys.exit("app.py: stopped again before the training runs were saved")
    # All is saved: exit now. Python's own exit, with torch's threads about, sometimes aborted the process
    # ("terminate called without an active exception", status 134) on a loaded machine.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
