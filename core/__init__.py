"""DDPM Explorer's diffusion engine: schedules, denoisers, trainer, samplers, checkpoints.

Importable and testable without gradio or plotly (Ho et al. 2020, "Denoising Diffusion
Probabilistic Models"; timesteps t ∈ {1..T}, t = 0 is the clean data).
"""

import signal
import sys

if sys.argv[:1] == ["-m"]:  # run as `python -m core.COMMAND`: sys.argv[0] is "-m" while the module is being found

    def _interrupted_while_loading(signum, frame):
        """Ctrl-C before the command starts (its imports take a second or more: torch) ends as one after does
        (`core.cli.run`), with one line and status 130, not a traceback from inside an import."""
        print("interrupted (Ctrl-C) while loading; nothing was written", file=sys.stderr)
        raise SystemExit(130)

    signal.signal(signal.SIGINT, _interrupted_while_loading)
