"""A training run's background thread (`run_worker`): train, save the checkpoint whatever ended the run, say what
happened in the run's message, then draw the final preview from the saved weights."""

from __future__ import annotations

import html
import logging
import queue
import re
import time
from collections.abc import Sequence
from pathlib import Path

import gradio as gr

from app import formulas, runs, torch_threads
from app.train_figures import preview_caption, preview_plot
from app.train_plan import Plan, cli_command, preview_classes
from core.checkpoints import save_checkpoint
from core.data import DataInfo
from core.schedules import NoiseSchedule
from core.trainer import SHORTEST_KEPT, Trainer, TrainingDiverged

log = logging.getLogger(__name__)


def _checkpoint_dir(key: str, info: DataInfo, schedule: NoiseSchedule) -> Path:
    stamp = time.strftime(runs.RUN_STAMP)
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{info.name}-{schedule.name}-T{schedule.T}-{stamp}")
    directory = runs.user_dir(key) / base
    n = 2
    while directory.exists():
        directory = runs.user_dir(key) / f"{base}-{n}"
        n += 1
    return directory


DONE = object()


def run_worker(run: runs.Run, trainer: Trainer, plan: Plan, info: DataInfo, events: queue.Queue) -> None:
    """Background thread: train, save the checkpoint (whatever ended the run), report, finish. It runs at a lower CPU
    priority than the pages' requests (`runs.yield_cpu_to_the_pages`), on all the cores (`torch_threads`)."""
    runs.yield_cpu_to_the_pages()
    torch_threads.all_cores_for_this_thread()
    reason, error, unsaved, end, pruned = "error", "", "", None, []
    folder = runs.key_folder(run.key)  # the log names the browser's folder, not its secret owner token
    try:
        for event in trainer.run():
            run.progress = event  # for the estimate of a waiting Start (`waiting_text`)
            events.put(event)
            if event.kind == "end":
                end, reason = event, event.reason
    except TrainingDiverged as err:
        reason, error = "diverged", str(err)
        events.put(err)  # the losses of its last good steps
    except Exception as err:  # reported to the user; the weights so far are still saved
        log.exception("training run of %s failed", folder)
        reason, error = "error", f"{type(err).__name__}: {err}"
        try:  # the error is what the user hears; this counts the steps learnt
            trainer.read_losses()
        except TrainingDiverged:
            pass
        except Exception:  # the device's error again (a CUDA assert stays set): the run must still end below
            log.exception("reading the last losses of %s failed", folder)
    worth_keeping = trainer.step >= (SHORTEST_KEPT if reason in ("diverged", "stopped") else 1)
    try:
        if worth_keeping:
            directory = _checkpoint_dir(run.key, info, plan.schedule)
            training = {**trainer.training_record(plan.model, reason, end.elapsed if end else None),
                        "source": "DDPM Explorer Train tab"}
            # the same run from the command line (one cut short by Stop or the time limit is not that run)
            if reason == "finished" and (command := cli_command(plan, f"runs/{directory.name}")):
                training["command"] = command
            if plan.previous_runs:
                training["previous_runs"] = plan.previous_runs
            path = save_checkpoint(directory, trainer.sampling_model,
                                   plan.schedule, info, training=training,
                                   points=trainer.data if info.given_as_points else None)
            run.checkpoint = path
            pruned = runs.prune_user_runs(run.key)
    except Exception as err:
        log.exception("saving the checkpoint of %s failed", folder)
        why = err.strerror if isinstance(err, OSError) and err.strerror else type(err).__name__
        unsaved = f"the model could not be saved on this server ({why})"  # its path is the server's, not the page's
    try:
        run.message = _end_message(run, trainer, reason, error, unsaved, worth_keeping, pruned)
    except Exception:  # a safety net: without `finish` and DONE below, the browser's run slot would stay taken
        log.exception("reporting the end of %s failed", folder)
        run.message, reason = "Training ended, but the server could not say how (see its log).", "error"
    run.reason = "unsaved" if unsaved else reason
    runs.REGISTRY.finish(run)
    events.put(DONE)
    # After `done`, so that the UI says at once that the run is over (the preview takes seconds). The in-run
    # previews stop short of the last step, and a run stopped early may have shown none.
    if draws_final_preview(run):
        try:
            run.final_preview = final_preview(trainer, info, preview_classes(plan))
        except Exception:
            log.exception("the final preview of %s failed", folder)
    run.previewed.set()


def _end_message(run: runs.Run, trainer: Trainer, reason: str, error: str, unsaved: str, worth_keeping: bool,
                 pruned: list[Path]) -> str:
    """What the run's status says once it has ended (HTML): why it ended, where it was saved, what was pruned."""
    teach = "teaches" if trainer.step == 1 else "teach"  # "1 step … teach" had been said
    where = f"<b>{html.escape(run.checkpoint.name)}</b>; pick it in the Reverse tab." if run.checkpoint else ""
    saved = f" Saved as {where}" if where else ""
    if reason == "diverged":
        kept = f" The weights from before that step are saved as {where}" if where else ""
        if not worth_keeping:
            kept = (f" Nothing is saved: {formulas.steps_text(trainer.step)} before it diverged {teach} the network "
                    "nothing, and would push your oldest model out.")
        message = f"Training stopped: {html.escape(error)}.{kept}"
    elif reason == "error":
        message = f"Training failed: {html.escape(error)}.{saved}"
    else:
        what = {"finished": "Finished", "stopped": "Stopped", "time limit": "Stopped at the server's time limit"}[reason]
        message = (f"{what} after {formulas.steps_text(trainer.step)}.{saved}" if trainer.step else
                   f"{what} before its first step: there is nothing to save.")
        if trainer.step and not worth_keeping:
            message += (f" Nothing is saved: {formulas.steps_text(trainer.step)} {teach} the network next to "
                        f"nothing, and would take the place of one of your models (a run is kept from "
                        f"{SHORTEST_KEPT} steps on).")
    if unsaved:  # said in the colour of an error (it had been green, after "Finished")
        message += f" But {html.escape(unsaved)}."
    if pruned:  # the browser's oldest models made room (runs.max_runs_per_user)
        message += f" {html.escape(runs.pruned_sentence(pruned))} (download a model in the Reverse tab to keep it)."
    return message


def draws_final_preview(run: runs.Run) -> bool:
    """Whether the run's thread draws its final preview once it has ended (`runs.Run.reason` set): from a saved
    checkpoint, not after a divergence, nor while the server stops."""
    return run.checkpoint is not None and run.reason != "diverged" and not runs.SERVER_STOPPING.is_set()


def final_preview(trainer: Trainer, info: DataInfo, classes: Sequence[str] = ()) -> gr.Plot:
    """Samples from the run's saved (EMA) weights. 2D takes the full DDPM chain, the Reverse tab's default for
    2D; images the quick DDIM chain of the in-run previews."""
    full = info.kind == "2d"
    caption = f"Samples from the saved (EMA) weights after {formulas.steps_text(trainer.step)} · {preview_caption(trainer, full)}"
    return preview_plot(trainer.preview(full_chain=full), trainer.data, caption, info, classes)
