"""Text that a user or a file supplies (a checkpoint's config, a CSV's cells, a zip's member names, a folder's name),
shown as written: none of it becomes markup where the app shows it.

Gradio renders a toast's text as HTML (its sanitizer keeps ``<img src>``, ``<a href>``, ``style``: a zip handed on
could load a tracking picture or lay a fake sign-in page over the app), and Markdown with KaTeX on ``$$ … $$`` found
in the page's text (``\\rule{300em}{300em}`` drew a 4,800-pixel block). So such text is

- rid of control and format characters (a right-to-left override had turned the app's own words after it around; a
  terminal's escape sequences),
- cut to a length (a 300 kB metrics key froze the browser for 104 s),
- HTML-escaped, and in Markdown what starts markup escaped as well (``![x](url)``, ``**``, a bare link), with each
  ``$`` in an element of its own: KaTeX's auto-render joins only adjacent text, so no ``$$`` pair is found.
"""

from __future__ import annotations

import html
import re
from typing import Any

from core.cli import printable, short_text

MAX_VALUE_CHARS = 200  # one value (a name, a key, a path): longer is cut, ending in "…"
MAX_MESSAGE_CHARS = 1000  # a message that quotes such values

# What starts Markdown mid-line: a backslash, code, emphasis (an _ inside a word does not), a link's [, a table's |,
# strikethrough, and the ":" of a bare http://… and the "@" of an e-mail address, which GitHub's Markdown makes links
_MARKDOWN = re.compile(r"[\\`*\[\]|~:@]|(?<![^\W_])_|_(?![^\W_])")


def visible(value: Any, limit: int = MAX_VALUE_CHARS) -> str:
    """``str(value)`` without control and format characters (`core.cli.printable`), at most ``limit`` characters
    (`core.cli.short_text`)."""
    return short_text(printable(str(value)), limit)


def in_html(value: Any, limit: int = MAX_VALUE_CHARS) -> str:
    """`visible` text, HTML-escaped: for a toast, a status box, an attribute."""
    return html.escape(visible(value, limit))


def in_markdown(value: Any, limit: int = MAX_VALUE_CHARS) -> str:
    """`visible` text for Gradio's Markdown: HTML-escaped, what would start Markdown escaped with a backslash, a
    "www." made no link, and each $ in a span of its own."""
    escaped = _MARKDOWN.sub(lambda found: "\\" + found[0], html.escape(visible(value, limit), quote=False))
    escaped = re.sub(r"(?i)www\.", lambda found: found[0][:3] + "\\.", escaped)  # Gradio's links it mid-word too
    return escaped.replace("$", "<span>$</span>")
