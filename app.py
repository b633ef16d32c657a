"""DDPM Explorer: `python app.py` opens the Gradio app (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT honoured)."""

import sys

from app import LAUNCH_OPTIONS, build_app
from app.runs import SettingError, check_settings, runs_folder_problem

if __name__ == "__main__":
    try:
        check_settings()
    except SettingError as err:  # one line for the host, not a traceback
        sys.exit(f"app.py: {err}; fix the setting and start again")
    if (problem := runs_folder_problem()) is not None:
        print(f"app.py: warning: {problem}; trained and uploaded models cannot be saved (set DDPM_RUNS_DIR to a "
              "writable folder)", file=sys.stderr)
    build_app().queue(default_concurrency_limit=8).launch(**LAUNCH_OPTIONS)
