"""The app's messages to the user, raised as exceptions."""

from __future__ import annotations

import html

import gradio as gr

from app.as_written import MAX_MESSAGE_CHARS, visible


class InputError(gr.Error):
    """A `gr.Error` for the user: an input to mend, or a model that cannot do what was asked. Shown as a toast (as
    every gr.Error), but not printed as a traceback in the server's log, which is kept for the app's own faults (a
    public Space's log filled with one traceback per mistyped number).

    A toast's text is HTML to Gradio, and a message may quote a file's words (a CSV's cell, a config's value, a zip's
    member name): ``message`` is escaped (`app.as_written`; an API client reads it so, "&lt;" for "<"), ``words``
    and ``str()`` are the message as plain text (so that a caller that words it anew escapes it once)."""

    def __init__(self, message: str, **kwargs) -> None:
        self.words = visible(message, MAX_MESSAGE_CHARS)
        super().__init__(html.escape(self.words, quote=False), print_exception=False, **kwargs)

    def __str__(self) -> str:
        return self.words
