"""The Gradio UI of DDPM Explorer: one module per tab, each with a `build()` that lays out its tab.

No maths here: every formula comes from `core`. Figures are plotly; images are converted to
uint8 by `app.images`.
"""

from __future__ import annotations

import gradio as gr

from app import (
    accessibility, bound_panel, controls, forward_animation, forward_tab, guidance_panel, inpaint_panel, kept_chain,
    model_files, noise_map, page_compression, player, plot_page, reverse_tab, runs, schedules_tab, step_anatomy,
    steps_panel, train_figures, train_tab,
)

# Text against its background at 4.5:1 or more (WCAG AA), which a projector's washed-out colours need most:
# - the help under each control and the players' keys: Soft's grey (#9ca3af) has 2.5:1 on white; neutral 600
#   (#4b5563) 7.6:1, neutral 300 on the dark theme's blocks 9.9:1; the upload box's "- or -" too;
# - the labels of the controls and views: Soft's primary 500 on primary 100, 3.6:1; primary 700 6.4:1;
# - white on the primary buttons, the ticked radios and the buttons under the pointer: on primary 500 4.5:1 less a
#   hair (4.46), on primary 400 2.9:1; on primary 600 6.3:1, on primary 700 8.7:1.
THEME = gr.themes.Soft().set(
    block_info_text_color="*neutral_600", block_info_text_color_dark="*neutral_300",
    body_text_color_subdued="*neutral_600",
    block_label_text_color="*primary_700", block_title_text_color="*primary_700",
    button_primary_background_fill="*primary_600", button_primary_background_fill_hover="*primary_700",
    button_primary_background_fill_hover_dark="*primary_700", button_secondary_background_fill_hover_dark="*primary_700",
    checkbox_label_background_fill_selected="*primary_600", color_accent="*primary_600",
)
CSS = """
.formula-box {font-size: 1.05rem}
.formula-box p {text-align: center}
.formula-box td:last-child, .numbers-table td:not(:first-child) {white-space: nowrap; font-variant-numeric: tabular-nums}
.formula-box table, .numbers-table table {word-break: normal; overflow-wrap: normal}
.formula-box td:last-child {min-width: 14ch}  /* "1000 of 10000" fits: the table had reflowed as t was scrubbed */
.numbers-table {overflow-x: auto}
/* a table wider than its box (the Schedules table on a phone: 486 px in 326) shows a shadow at the edge that hides
   columns; the covers scroll with the table (local) and hide a shadow at the end it has reached */
.prose.numbers-table {background:
  linear-gradient(to right, var(--body-background-fill) 30%, transparent) left / 40px 100% no-repeat local,
  linear-gradient(to left, var(--body-background-fill) 30%, transparent) right / 40px 100% no-repeat local,
  radial-gradient(farthest-side at 0 50%, var(--table-shadow), transparent) left / 14px 100% no-repeat scroll,
  radial-gradient(farthest-side at 100% 50%, var(--table-shadow), transparent) right / 14px 100% no-repeat scroll;
  --table-shadow: color-mix(in srgb, var(--body-text-color) 35%, transparent)}
.name-dropdown input {text-overflow: ellipsis; padding-right: 1.75em}  /* a long name ends in "…", clear of ▾ */
.prose .notice * {color: inherit}
.hint p {font-size: var(--block-info-text-size); color: var(--block-info-text-color)}
.block:has(> [data-testid="plotly"]) > [data-testid="block-label"].float,
.label-above > [data-testid="block-label"].float {position: static; margin: 6px 6px 0}
button.label-wrap {text-align: left}
/* a heading on two lines or more stretched its ▼ as tall as itself; turned a quarter (closed), the glyph went out of
   the box and out of sight */
button.label-wrap > span.icon {align-self: center}
/* t stays in view while the views below it are scrolled to (at 150 % on a projector, the slider and the histogram
   did not fit on one screen). Gradio wraps it in a form; its page's overflow: hidden would make it stick to a box
   that never scrolls, and clip does not */
.form:has(> #forward-t) {position: sticky; top: 0; z-index: 20}
/* Generate (and Stop) under the model's description, and always in view: stuck to the foot of the screen until
   scrolled to, to its top once scrolled past. At the foot of the controls it had been 2.4 screens below the player on
   a 1024 × 768 projector, and stuck there covered the inputs at the foot of the screen (Samples and Seed on a
   1920 × 1080 projector's first screen, the tilde of β̃). On the page's background, which had shown through between
   the two buttons. A control focused under it (Shift+Tab) is scrolled out from under it */
#reverse-generate-bar {position: sticky; top: 0; bottom: 8px; z-index: 100; background: var(--background-fill-primary);
                       padding: 4px 0}
#reverse-controls :is(input, button, textarea) {scroll-margin: 64px 0}
.gradio-container {overflow: clip !important}
/* a job's small progress ("queue: 2/3 | 1.3/7.8s" while it waits for the sampling queue) showed nowhere: Gradio's
   wrap of it has no height above an HTML block such as the player, and hid what overflowed it */
.wrap.minimal {overflow: visible !important}
#train-status {scroll-margin-top: 120px}  /* Start scrolls it into view below the toasts, which would cover Stop */
/* a file's whole name, wrapped where it must be: Gradio cut it to what fits beside its size ("reverse-moons-ddpm10…").
   Its two parts flow as text; font-size 0 drops the space between them ("ddpm1000 .gif") */
table.file-preview td.filename {display: block; overflow-wrap: anywhere; font-size: 0}
table.file-preview td.filename > span {font-size: var(--text-md)}
table.file-preview td.filename > span.stem {white-space: normal}
/* a phone's tab bar holds the four tabs' names down to 360 px (Gradio hid Train and Reverse behind "⋯" below 400 px);
   narrower, they wrap (`overflow_behavior="wrap"`). Gradio measures them on hidden copies, which get the same */
@media (max-width: 480px) {.tab-wrapper .tab-container > button {padding: 0 8px}}
""" + "\n".join([forward_tab.VIEWS_CSS, plot_page.PICTURE_CSS, plot_page.DARK_THEME_CSS, player.DARK_THEME_CSS,
                kept_chain.DARK_THEME_CSS, plot_page.NARROW_SCREEN_CSS, accessibility.FOCUS_CSS,
                accessibility.READER_CSS, train_figures.STATUS_CSS, controls.NOTICE_CSS])
JS = (f"() => {{ ({plot_page.PLOT_PAGE_JS})(); ({controls.KEYBOARD_RELEASE_JS})(); "  # run once in each page
      f"({accessibility.KEYBOARD_AND_READER_JS})(); ({train_tab.FOLLOW_JS})(); }}")
TITLE = "DDPM Explorer"
MAX_UPLOAD = "64mb"  # the largest file a visitor may upload: a model's .zip (the "base" U-Net: 38 MB) or a picture
# Blocks.launch's options. No run history: Gradio would keep every call's inputs and outputs (here plotly figures) in
# the browser's localStorage, up to its 5 MB, and re-read and re-write all of it on each call, so a keyboard scrub of t
# took 4.8× as long (`bench/bench_browser.py`).
# Sessions kept: Gradio keeps a record of every page it has served (0.6 MB here, a copy of the config of the 345
# components; about 0.9 MB once the page has scrubbed t, 1.4 before `ForwardState` was shared), closed or not, up to
# 10,000 of them: 6–9 GB, and RSS grew by each visit for good. Now the oldest goes past `runs.SESSIONS_KEPT`: at most
# about 0.9 GB.
# app_kwargs: the page and its config gzipped (`app.page_compression`): 1.6 MB → 0.27 MB.
LAUNCH_OPTIONS = dict(theme=THEME, css=CSS, js=JS, max_file_size=MAX_UPLOAD, run_history=False,
                      state_session_capacity=runs.SESSIONS_KEPT, app_kwargs=page_compression.app_kwargs())
INTRO = (
    "# DDPM Explorer\n"
    "See how denoising diffusion models (Ho et al. 2020) work: noise data step by step, compare "
    "noise schedules, train a small model and watch it turn noise back into data."
)


def build_app() -> gr.Blocks:
    """The whole explorer: a header and the Forward, Schedules, Train and Reverse tabs."""
    # delete_cache: what Gradio keeps of the files sent in (pictures, CSVs, models' .zips) older than an hour is
    # removed every hour; the exports (GIFs, MP4s, sprite sheets, .zips) are served where they are written, not copied
    # there (`player.serve_exports`), and swept by `player.sweep_old_exports`. analytics_enabled: Gradio's telemetry
    # and version check reached out to huggingface.co and api.gradio.app at each start, offline too
    player.serve_exports()
    with gr.Blocks(title=TITLE, delete_cache=(3600, 3600), analytics_enabled=False) as demo:
        gr.Markdown(INTRO)
        own = gr.State(None)  # this session's own 2D points (app.own_points), drawn or uploaded in the Train tab
        # the browser's owner token (app.runs), outside the tabs: a tab's components are made when it is first opened.
        # Its encryption only has to outlast a restart of the server, as the checkpoints do.
        owner = gr.BrowserState(None, storage_key=runs.OWNER_STORAGE_KEY, secret=runs.OWNER_STORAGE_KEY)
        with gr.Tabs(overflow_behavior="wrap"):  # every tab in sight on a phone, not behind "⋯"
            with gr.Tab("Forward", id="forward"):
                forward_animation.build(forward_tab.build(own, demo))
            with gr.Tab("Schedules", id="schedules"):
                schedules_tab.build(own, demo)
            with gr.Tab("Train", id="train") as train:
                trained = train_tab.build(own, demo, owner, train)
            with gr.Tab("Reverse", id="reverse"):
                reverse = reverse_tab.build(trained)
                model_files.build(reverse)
                step_anatomy.build(reverse)
                noise_map.build(reverse)
                inpaint_panel.build(reverse)
                guidance_panel.build(reverse)
                steps_panel.build(reverse)
                bound_panel.build(reverse)
    return demo
