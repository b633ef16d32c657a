"""DDPM Explorer's diffusion engine: schedules, denoisers, trainer, samplers, checkpoints.

Importable and testable without gradio or plotly (Ho et al. 2020, "Denoising Diffusion
Probabilistic Models"; timesteps t ∈ {1..T}, t = 0 is the clean data).
"""

import signal
import sys

if sys.argv[:1] == ["-m"]:  # run as `python -m core.COMMAND`: sys.argv[0] is "-m" while the module is being found

    from core.cli import STOP_SIGNALS  # the standard library only: quick

    def _interrupted_while_loading(signum, frame):
        """Ctrl-C (or SIGTERM, SIGHUP) before the command starts (its imports take a second or more: torch) ends as
        one after does (`core.cli.run`), with one line and status 130, not a traceback from inside an import."""
        print(f"interrupted ({STOP_SIGNALS[signum]}) while loading; nothing was written", file=sys.stderr)
        raise SystemExit(130)

    for _signum in STOP_SIGNALS:
        signal.signal(_signum, _interrupted_while_loading)
