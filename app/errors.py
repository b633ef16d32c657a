"""The app's messages to the user, raised as exceptions."""

from __future__ import annotations

import gradio as gr


class InputError(gr.Error):
    """A `gr.Error` for the user: an input to mend, or a model that cannot do what was asked. Shown as a toast (as
    every gr.Error), but not printed as a traceback in the server's log, which is kept for the app's own faults (a
    public Space's log filled with one traceback per mistyped number)."""

    def __init__(self, message: str, **kwargs) -> None:
        super().__init__(message, print_exception=False, **kwargs)
