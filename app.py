"""DDPM Explorer: `python app.py` opens the Gradio app (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT honoured)."""

from app import LAUNCH_OPTIONS, build_app

if __name__ == "__main__":
    build_app().queue(default_concurrency_limit=8).launch(**LAUNCH_OPTIONS)
