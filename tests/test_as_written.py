"""Text from a user or a file, shown as written: no markup in Gradio's Markdown (with KaTeX) or in a toast."""

from __future__ import annotations

import html
import re

from markdown_it import MarkdownIt

from app.as_written import MAX_VALUE_CHARS, in_html, in_markdown, visible
from app.errors import InputError

MARKDOWN = MarkdownIt("commonmark").enable(["table", "strikethrough"])  # GitHub's Markdown, as Gradio's
PAYLOAD = ('x$$\\rule{300em}{300em}$$ ![t](http://evil.example/t.png) [a](javascript:alert(1))'
           ' <img src=x onerror=alert(1)> </div> **bold** _it_ ~~gone~~ `code` | cell | \\ &amp; #1 x_y'
           ' <http://evil.example> http://evil.example/x www.evil.example xwww.evil.example a@evil.example')


def shown_text(rendered: str) -> str:
    """What a reader sees of rendered HTML: its text, the spans that hold each $ gone."""
    return html.unescape(rendered.replace("<span>", "").replace("</span>", ""))


def test_markdown_shows_the_words_as_written_and_nothing_else():
    rendered = MARKDOWN.renderInline(in_markdown(PAYLOAD, limit=len(PAYLOAD)))
    assert set(re.findall(r"</?([a-z]+)", rendered)) == {"span"}, rendered  # no picture, link, bold, code, div
    assert "$$" not in rendered  # KaTeX's auto-render looks for $$ in one run of text
    assert shown_text(rendered) == PAYLOAD
    # bare links, which Gradio's Markdown (marked) makes links even mid-word ("xwww."): their ":", "www." and "@" escaped
    escaped = in_markdown(PAYLOAD, limit=len(PAYLOAD))
    assert not re.search(r"(?i)www\.|(?<!\\)[:@]", escaped) and escaped.count("www\\.") == 2
    bold = MARKDOWN.renderInline(f"**{in_markdown('a*b*c')}**")  # inside the app's own bold
    assert bold == "<strong>a*b*c</strong>"


def test_control_and_format_characters_go_and_long_values_are_cut():
    assert visible("name\u202eevil\x1b[2J\u200b\nnext\ttab") == "nameevil[2J next tab"
    joined = "👩\u200d💻 \u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"  # an emoji and a Persian word
    assert visible(joined) == joined  # their zero-width joiners kept
    long = visible("x" * 300_000)
    assert len(long) == MAX_VALUE_CHARS and long.endswith("…")
    assert len(MARKDOWN.renderInline(in_markdown("**x** " * 50_000))) < 20 * MAX_VALUE_CHARS


def test_a_toast_shows_tags_as_text():
    """Gradio renders a toast's text as sanitised HTML, which keeps <img src> and style: an error quoting a file's
    words (a CSV cell, a config's value) had loaded a tracking picture and drawn over the page."""
    err = InputError("CSV line 4: '<img src=\"http://evil.example/csv.png\"><b>CSV</b>' is not a number")
    assert err.message == ("CSV line 4: '&lt;img src=\"http://evil.example/csv.png\"&gt;&lt;b&gt;CSV&lt;/b&gt;' is not "
                           "a number")
    assert err.words.startswith("CSV line 4: '<img src=") and str(err) == err.words  # worded anew, escaped once
    assert InputError(f"Not uploaded: {err}").message.count("&lt;img") == 1
    assert in_html("a & <b>") == "a &amp; &lt;b&gt;"


def test_no_text_of_the_page_shows_a_placeholder_unfilled():
    """Every text the page shows (Markdown, labels, infos, button values) has its f-string placeholders filled: a
    string joined to an f-string without its own f had shown "{MAX_SWEEP_SAMPLES['image']}" in the Reverse tab."""
    from app import build_app

    # a name, maybe called, indexed or formatted: {MAX_ROUNDS}, {len(SHARES)}, {LIMITS['2d']:,}
    unfilled = re.compile(r"\{[A-Za-z_][A-Za-z_0-9.]*(\([^)]*\))?(\[[^\]]*\])?(![rsa])?(:[^}\s][^}]*)?\}")
    texts = []
    for block in build_app().blocks.values():
        for name in ("value", "label", "info", "placeholder", "choices"):
            text = getattr(block, name, None)
            texts += [str(choice[0]) for choice in text] if name == "choices" and text else [text]
    shown = [text for text in texts if isinstance(text, str)]
    assert len(shown) > 100 and unfilled.search("At most {MAX_SWEEP_SAMPLES['image']} images")
    assert unfilled.search("{len(SWEEP_SHARES)} chains") and not unfilled.search("x_{t-1} and {x: 1}")
    # an HTML block's style and script have braces of their own: "{filter: invert(1)}" is CSS
    assert not [text[:120] for text in shown if unfilled.search(re.sub(r"<(style|script)[^>]*>.*?</\1>", "", text,
                                                                        flags=re.S))]
