"""DDPM Explorer: `python app.py` opens the Gradio app (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT honoured).

`run_history=False`: Gradio's run history would keep each call's inputs and outputs (here plotly figures) in the
browser's localStorage and re-read and re-write all of it on every call, which made a scrub of t 3–4× slower.
"""

from app import CSS, JS, MAX_UPLOAD, THEME, build_app

if __name__ == "__main__":
    build_app().queue(default_concurrency_limit=8).launch(
        theme=THEME, css=CSS, js=JS, max_file_size=MAX_UPLOAD, run_history=False
    )
