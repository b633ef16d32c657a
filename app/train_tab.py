"""Train tab: a short live training run (Ho et al. 2020, Algorithm 1, via `core.trainer.Trainer`).

Start streams the loss curve (every step, raw and smoothed, log scale), the error by noise level t
(`Trainer.bucket_loss`, beside the browser's previous run's or, for a continued checkpoint, its error measured as
the run starts: `Trainer.measure_error_by_t`) and preview samples from the EMA weights, drawn over the training data
(2D), which the preview plot shows alone before a run, with a filmstrip of the previews so far beneath it; Stop ends
the run at once and keeps the model. Every finished, stopped or diverged run (one stopped or diverged within
`SHORTEST_KEPT` steps excepted) is saved as a checkpoint in this browser's own directory (`app.runs`: its owner
token) and appears in the Reverse tab of this browser only (the `gr.State` that `build()` returns). When the page
loads, that State gets the browser's checkpoints kept on the server (`page_loaded`), so a reload keeps them. A run
under way when its page goes (reloaded, closed, or its connection dropped, after which Gradio reloads it) trains on,
and the reloaded page takes it over and shows it (`rejoin_run`); one that no page takes over within
`runs.LEFT_RUN_SECONDS` stops and is saved, and the next page says so and lists it (`run_cut_off`); another open tab
of the browser follows the run and lists its model when it ends.

The data can be the user's own 2D points (`OWN_POINTS`): drawn in a Sketchpad, the strokes read as a
density (`core.data.points_from_drawing`), or uploaded as a CSV of x,y rows. They are kept per session
in a `gr.State` (an `OwnPoints`), shown in the preview plot as they are drawn, and stored with the
checkpoint (`core.checkpoints`), so that the Reverse tab draws them beneath the chain and measures
the samples against them.

"The network predicts" picks the regression target: ε, x₀ or v (`core.prediction`); the samplers see the ε̂ it
implies, and a checkpoint continued keeps its own target.

"Start from" picks the initial weights: a new model, or a checkpoint (a shipped one or one this
browser trained) whose weights, model and noise schedule the run continues from, with a fresh
optimiser; its training record keeps the earlier runs (`previous_runs`). The checkpoint is loaded
afresh for the run, so the copy that the Reverse tab samples from is never modified.

The tab's handlers and layout are here; `app.train_plan` checks Start's inputs into a `Plan`, `app.train_figures`
draws the status, the loss, the error by t and the previews, and `app.train_worker` is a run's background thread.

How a run is wired:
- Start first runs `prepare_run` (cheap checks in `make_plan`; reserves this browser's run slot; says it waits
  for a free slot), then `train_run`, a generator in the training queue (`runs.TRAINING_CONCURRENCY_ID`), so only
  DDPM_HEAVY_CONCURRENCY runs train at once (sampling has a queue of its own).
- `train_run` runs `Trainer.run()` in a background thread (`app.train_worker`) that feeds a queue and saves the
  checkpoint when the loop ends; the generator polls the queue every POLL_SECONDS and yields UI
  updates (the loss and error plots at most every PLOT_SECONDS), so streaming never slows training.
  When its page goes without Stop, the run trains on for a page of the browser to take it over (`rejoin_run`).
- Stop calls `Trainer.stop()` of this browser's run only (looked up by its owner token in
  `app.runs`), cancels the generator, waits for the checkpoint and hands it to the State.
- Either way, once the run has ended, `final_preview` shows the last preview, which the run's thread draws from the
  saved weights, outside the training queue: the next run need not wait for it.

Server-side caps (env vars, see `app.runs`): DDPM_MAX_TRAIN_STEPS (default 20000; more steps
are clamped with a visible note), DDPM_MAX_TRAIN_SECONDS (default 900; the run is then ended
and saved), DDPM_RUNS_DIR (default runs/), DDPM_MAX_RUNS_PER_USER (default 5),
DDPM_HEAVY_CONCURRENCY (default 1).
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import math
import queue
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
import torch

from app import accessibility, controls, formulas, own_points, runs, torch_threads
from app.as_written import in_markdown
from app.errors import InputError
from app.own_points import DRAWING_SIDE, OWN_POINTS, OwnPoints, select_brush_js
from app.checkpoint_access import CACHE, allowed, checkpoint_choices, describe
from app.runs import display_name
from app.train_figures import (
    NOTHING_SEEN, error_by_t_figure, filmstrip_plot, loss_figure, no_filmstrip, preview_caption, preview_figure,
    preview_label, reference_error_by_t, starting_error_by_t, status_html, training_data_figure, upcoming_previews,
)
from app.train_plan import (
    DEFAULTS_2D, MAX_P_UNCOND, MAX_TOY_POINTS, MODEL_CHOICES, Plan, build_model, conditional_data, data_kind_of,
    data_missing_here, defaults_for, make_plan, preview_classes, train_config,
)
from app.train_worker import DONE, draws_final_preview, run_worker
from core.checkpoints import CheckpointError, model_classes, model_name, model_prediction, read_config
from core.data import TOY2D_LABELS, TOY2D_NAMES, DataInfo
from core.datasets import DEFAULT_TOY_POINTS, class_names, load_labelled_data, load_training_data
from core.devices import resolve_device
from core.image_data import IMAGE_DATASET_LABELS, IMAGE_DATASETS, DataUnavailableError, available_datasets
from core.prediction import PREDICTION_LABELS, PREDICTION_SYMBOLS, PREDICTIONS
from core.trainer import TrainConfig, Trainer, TrainEvent, TrainingDiverged, device_name

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5  # how often the UI generator drains the trainer's queue
# the loss and error plots are redrawn at most this often (the status every POLL_SECONDS): Gradio draws each update on
# a new plot, ~0.1 s of the browser's main thread on two busy cores
PLOT_SECONDS = 1.0
STOP_WAIT_SECONDS = 60.0  # Stop waits this long for the run to save its checkpoint
# a page loaded while its browser's run is still shown by another page waits this long for that page to go (a reload's
# old page goes a moment after the new one loads) before it leaves the run to that page (another tab)
REJOIN_WAIT_SECONDS = 3.0
OTHER_TAB_SECONDS = 3.0  # a reloaded page's run whose old page is still open after this long: another tab's run
DATA_LABELS = {  # the preview plot before a run: the training data, what the samples should come to look like
    "2d": "Training data (grey): a run draws samples from its EMA weights over it",
    "image": "Training images: a run shows samples from its EMA weights here instead",
}
ERROR_BY_T_NOTE = (
    "Training draws t at random, so the loss curve above mixes every noise level. At small t the noise is a "
    "small part of x_t and hard to tell from the data's own detail, so ε̂ is often wrong; at large t, x_t is "
    "almost ε itself and ε̂ is nearly right. This is why the loss levels off well above 0. (Min-SNR-γ weighting, "
    "on image runs, is another matter: it caps at γ the weight SNR_t that ε-training puts on the x₀ error, so that "
    "the nearly clean steps do not dominate.) The error is in ε units whatever the network "
    "predicts (an x₀ error counts SNR_t times, a v error ᾱ_t times), so runs on different targets compare: the "
    "line is your previous run's, or, when you continue a checkpoint, the checkpoint's error as the run starts. "
    "A continued run's bars can sit above that line where the error is small: they are the error of the weights "
    "being trained, which each step jolts, and the checkpoint holds their average over many steps (EMA)."
)
WAITING_LABELS = {"2d": "Training data (grey)", "image": "Training images for now"}  # until the first preview
NO_PREVIEW_LABEL = "No samples: the run ended before its first preview"
FINAL_COMING = "the final samples, from the saved weights, come next"  # said beside the last preview at the end
FINAL_WAIT_SECONDS = 300.0  # the final preview is waited for this long (a starved run's thread takes minutes)
FINAL_LATE_LABEL = ("No final samples: the server was too busy to draw them from the saved weights in time. Shown: "
                    "the run's last preview; the model is saved (pick it in the Reverse tab)")
OWN_POINTS_LABEL = "Your own points: draw them or upload a CSV"
OWN_HINT = "Draw a shape in the box on the left, or upload a CSV of x,y points"
# Picking "your own points" shows the drawing box (and clearing it drops the tool): its brush is selected
SELECT_BRUSH_JS = select_brush_js("train-drawing", f"args[0] === {json.dumps(OWN_POINTS)}")
# on Start: the status, loss and previews sit above the Start button of a wide page (below it on a narrow one)
SHOW_RUN_JS = controls.scroll_into_view_js("train-status")
WAIT_REFRESH_SECONDS = 5.0  # how often a Start that waits for a training slot says again what is ahead

PREDICTION_CHOICES = [(PREDICTION_LABELS[p], p) for p in PREDICTIONS]
PREDICTION_INFO = ("the same network, another regression target; the samplers use the ε̂ it implies. Its squared "
                   "error is the ε error divided by SNR_t (x₀) or by ᾱ_t (v): x₀ neglects the nearly clean steps, v "
                   "stresses the noisy ones")
CONDITIONAL_INFO = ("each example's class goes in too, replaced by ∅ (no class) at the rate below, so the network "
                    "learns ε̂(x_t, t, y) and ε̂(x_t, t, ∅); the previews show each class. Steer it in the Reverse tab "
                    "by classifier-free guidance. For data with classes: ")
P_UNCOND_INFO = ("the share of examples shown with ∅ instead of their class: what teaches ε̂(x_t, t, ∅), which "
                 "classifier-free guidance uses at every guidance scale s ≠ 1 (Ho & Salimans: 0.1–0.2). At 0, ∅ is never learnt: "
                 "compare the scales in the Reverse tab")
NEW_MODEL = ""  # "Start from" value for fresh random weights
CONTINUE_LR_FACTOR = 0.5  # picking a checkpoint to start from proposes this × its peak learning rate
RUN_BUSY_MESSAGE = "A training run of yours is already running or waiting; stop it or wait for it to finish."
LEFT_RUN_STATUS = (f"A training run of yours trains on after the page that showed it went. Reload this page to show "
                   f"it here: unless a page does, it stops, and is saved, {runs.LEFT_RUN_SECONDS:.0f} s after its page "
                   "went.")
CUT_OFF_STATUS = ("No page of this browser took your training run over after the page that showed it went (reloaded, "
                  f"closed, or its connection lost); it trained on for up to {runs.LEFT_RUN_SECONDS:.0f} s.")
REJOINED_NOTE = ("This run of yours trained on while its page was reloaded or its connection dropped, and is shown "
                 "here now; the settings above are this page's, not the run's.")
OTHER_TAB_STATUS = ("A training run of yours is under way in another tab of this browser. Stop here stops it "
                    "too; its model is listed here when it ends.")
OTHER_TAB_BUSY_MESSAGE = ("A training run of yours is under way in another tab of this browser: Stop here stops it "
                          "too, or wait for it to finish.")


def start_choices(trained: Any) -> list[tuple[str, str]]:
    """"Start from" choices: a new model, then every checkpoint this browser may use (as in the Reverse tab)."""
    return [("New model (random weights)", NEW_MODEL), *checkpoint_choices(trained)]


def data_choices() -> tuple[list[tuple[str, str]], str]:
    """(dropdown choices, a note on image data sets that are not available and why)."""
    choices = [(TOY2D_LABELS[n], n) for n in TOY2D_NAMES] + [(OWN_POINTS_LABEL, OWN_POINTS)]
    available = available_datasets()
    choices += [(IMAGE_DATASET_LABELS[name], name) for name in available]
    note = ""
    if "mnist" not in available:
        note = (
            f"{IMAGE_DATASET_LABELS['mnist']} is not offered: its data files were not found. The host can set "
            "`DDPM_DATA_DIR` to a folder holding `MNIST/raw/` with the original IDX files (e.g. "
            "`t10k-images-idx3-ubyte.gz`) and reload this page."
        )
    return choices, note


def data_list() -> tuple[gr.Dropdown, gr.Markdown]:
    """The data dropdown's choices and note for the data directory as it is now (asked at each page load): a data
    set fetched while the server runs is offered on the next load."""
    choices, note = data_choices()
    return gr.Dropdown(choices=choices), gr.Markdown(note, visible=bool(note))


# ----- the user's own points -----------------------------------------------------------------------


def own_points_plot(own: OwnPoints | None) -> gr.Plot:
    """The preview plot for the user's own points: the points a run will learn, or how to give some."""
    label = OWN_HINT if own is None else f"{DATA_LABELS['2d']} · {len(own.points):,} points, {own.info.source}"
    return gr.Plot(training_data_figure(OWN_POINTS, own), label=label)


def drawing_changed(request: gr.Request, value: Any, current: OwnPoints | None = None):
    """A stroke drawn, erased or cleared: the session's own points follow the drawing, and the preview plot
    shows them (unless this browser's run is using it). An empty box empties only points it drew: those of a CSV
    or a checkpoint (``current``) stay. Outputs: the own points, the preview."""
    ink = own_points.drawing_ink(value)
    try:
        own = None if ink is None else own_points.points_of_drawing(ink)
    except ValueError:  # a dot too small to spread points over: wait for more strokes
        own = None
    if own is None and current is not None and not current.drawn:
        return gr.skip(), gr.skip()
    return own, _unless_running(request, own_points_plot(own))


def csv_uploaded(request: gr.Request, path: str | None):
    """A CSV uploaded: its points become the session's own points and the training data (a script then empties the
    drawing box). Outputs: the own points, the data choice, the preview."""
    if not path:
        return gr.skip(), gr.skip(), gr.skip()
    own = own_points.points_of_csv(path)
    return own, OWN_POINTS, _unless_running(request, own_points_plot(own))


def _unless_running(request: gr.Request, update: Any) -> Any:
    """A preview ``update`` the user asked for (other data), unless this browser's run is using the preview. Once
    shown, the last run's final preview, which may still be on its way, must not replace it."""
    key = runs.owner_key(request)
    if runs.REGISTRY.active(key) is not None:
        return gr.skip()
    last = runs.REGISTRY.last(key)
    if last is not None:
        last.preview_replaced.set()
    return update


def filmstrip_after_other_data(request: gr.Request) -> Any:
    """The filmstrip once the preview was asked to show other data: hidden if the preview shows it now
    (`_unless_running` let it through: the strip's previews were of other data), else as it is (a run of this
    browser trains, or has only just ended and shows its final samples)."""
    key = runs.owner_key(request)
    last = runs.REGISTRY.last(key)
    if runs.REGISTRY.active(key) is None and last is not None and last.preview_replaced.is_set():
        return no_filmstrip()
    return gr.skip()


def show_training_data(request: gr.Request, name: str, own: OwnPoints | None, n_points=DEFAULT_TOY_POINTS, seed=0):
    """When the data (or a toy's number of points, or the seed that draws them) changes: show it in the preview
    plot, unless this browser's run is using that plot."""
    if name == OWN_POINTS:
        return _unless_running(request, own_points_plot(own))
    if name in TOY2D_NAMES:
        n_points = controls.whole_number(n_points, "Training points", 1, MAX_TOY_POINTS)
        seed = controls.whole_number(seed, "Seed", 0, controls.MAX_SEED)
    return _unless_running(request, gr.Plot(training_data_figure(name, n_points=n_points, seed=seed),
                                            label=DATA_LABELS[data_kind_of(name)]))


def data_changed(request: gr.Request, name: str, own: OwnPoints | None, n_points, seed) -> tuple[Any, tuple]:
    """Other data picked: (`show_training_data`, the entry (name, points, seed)), which the preview shows now or,
    where this browser's run kept the preview, was chosen during the run: either way a points box or seed left
    unchanged later keeps the preview as it is (a None recorded during a run had let one replace the run's final
    samples with the data)."""
    return show_training_data(request, name, own, n_points, seed), (name, n_points, seed)


def conditional_kept(name: str, conditional: bool):
    """On a change of data: the class-conditional box is unticked when the new data has no classes (it stayed ticked
    for "Your own points", with its p_uncond slider, and Start then refused the run); else left as it is."""
    return gr.Checkbox(value=False) if conditional and not class_names(name) else gr.skip()


def toy_points_changed(request: gr.Request, name: str, own: OwnPoints | None, n_points, seed, shown, refused):
    """Training points or seed entered (Enter, or leaving the box): show the toy's set they draw, if it is not the
    one the preview showed last (``shown``), so that leaving a box unchanged keeps a run's samples in place, nor the
    entry last refused (``refused``: its error was said once; leaving the box after Enter had said it again). Other
    data do not depend on them. Returns (preview, shown, refused)."""
    entered = (name, n_points, seed)
    if name not in TOY2D_NAMES or entered in (shown, refused):
        return gr.skip(), shown, refused
    return (*data_changed(request, name, own, n_points, seed), None)


# a loss above this has blown up: a fresh network's is about 1 (for ε, x₀ and v alike, the targets having unit
# variance); a learning rate far too high sends it to 10¹⁰ and beyond while it stays finite
BLOWN_UP_LOSS = 1e3


def waiting_text(key: str) -> str:
    """What a Start waits for: when the training slots are taken by other browsers' runs, how many, how many more
    wait ahead of it (reserved before it), and when the first should end (`runs.first_end_text`)."""
    training, waiting = runs.REGISTRY.others(key)
    own = runs.REGISTRY.active(key)
    waiting = [run for run in waiting if own is None or run.since < own.since]  # ahead in the queue, not behind
    if len(training) < runs.heavy_concurrency():
        return "Waiting for a free training slot… (other runs on this server go first)"
    queued = f", and {len(waiting)} more wait{'s' if len(waiting) == 1 else ''} before yours" if waiting else ""
    return (f"Waiting for a free training slot: {len(training)} run{'s' if len(training) != 1 else ''} of other "
            f"visitors train{'s' if len(training) == 1 else ''} now{queued}. {runs.first_end_text(training)}")


def _progress_text(event: TrainEvent, plan: Plan, device: str) -> tuple[str, float]:
    fraction = event.fraction
    eta = runs.seconds_left(event, plan.max_seconds)
    loss = f"{event.loss:.4f}" if event.loss < 1e4 else formulas.number(event.loss)
    text = (
        f"Step <b>{event.step}</b> / {event.total_steps} · loss {loss} · "
        f"{event.samples_per_s:,.0f} examples/s · {runs.duration_text(event.elapsed)} elapsed · "
        f"ETA {runs.duration_text(eta) if math.isfinite(eta) else '…'} · {device}"
    )
    if (end := runs.step_at_time_limit(event, plan.max_seconds)) is not None:
        text += (f" · at this pace the server's time limit ({runs.duration_text(plan.max_seconds)}) ends it near step "
                 f"{end:,}")
    if event.loss > BLOWN_UP_LOSS:
        text += " · ⚠ the loss has blown up: stop, lower the learning rate and start again"
    return text, fraction


def _with_checkpoint(trained: list | None, run: runs.Run) -> list[str]:
    """The page's list of the browser's models once ``run`` ended: those of the list still on the server, those added
    meanwhile (a model uploaded in the Reverse tab while the run trained had vanished from the lists when it ended),
    and the run's own."""
    paths = [p for p in (trained or []) if Path(p).is_dir()]
    paths += [p for p in runs.owner_checkpoints(run.key) if p not in paths]
    if run.checkpoint is not None and str(run.checkpoint) not in paths:
        paths.append(str(run.checkpoint))
    return paths


def run_busy_error(key: str, page: str | None) -> InputError:
    """Start while the browser's run is under way. Pressed again on the page that started it (a double click, or
    "did it start?"), it says nothing: the status beside Stop shows the run, and a toast would cover Stop. From
    another tab of the browser it says where the run is."""
    run = runs.REGISTRY.active(key)
    if run is not None and run.page is not None and run.page != page:
        return InputError(OTHER_TAB_BUSY_MESSAGE)
    return InputError(RUN_BUSY_MESSAGE, visible=run is None or run.page is None)


def prepare_run(request: gr.Request, data, schedule_name, T, model, prediction, conditional, p_uncond, start_from,
                steps, batch, lr, seed, n_points, trained, own, *param_values):
    """Start, part 1 (not queued behind training): reserve this browser's slot first (a Stop from now on finds the
    run), then check the inputs. Returns the status and the reservation's ticket, for `train_run`."""
    key = runs.owner_key(request)
    try:
        reservation = runs.REGISTRY.reserve(key, page=request.session_hash)
    except runs.RunBusy:
        raise run_busy_error(key, request.session_hash) from None
    except runs.PageClosed:  # no one to tell
        raise InputError("This page was closed or reloaded: press Start on the new page.") from None
    try:
        plan = make_plan(data, schedule_name, T, model, prediction, conditional, p_uncond, start_from, steps, batch,
                         lr, seed, n_points, trained, own, param_values, owner=key)
    except BaseException:
        runs.REGISTRY.release(key)
        raise
    reservation.notes = plan.running_notes
    return waiting_html(reservation), reservation.ticket


def start_failed(request: gr.Request, ticket):
    """`train_run` failed before its first line (Gradio refused an input that changed while the run waited for a slot,
    such as a choice of a list that changed): the reservation ``ticket`` is dropped, and the status says so; it had
    said "Waiting for a free training slot…" until the page closed. Outputs: the status, the wait timer."""
    if not runs.REGISTRY.release(runs.owner_key(request), ticket):
        return gr.skip(), gr.skip()  # `train_run` itself failed, and said why (or the reservation is another tab's)
    return status_html(START_FAILED_MESSAGE, tone="error"), gr.Timer(active=False)


def not_started(err: Exception) -> str:
    """The status of a Start that failed before its run trained: the error's words for the user, or, for an error of
    the server's own, where to look."""
    why = err.words if isinstance(err, InputError) else "an error on the server (see its log)"
    return status_html(f"Not started: {html.escape(why)}", tone="error")


START_FAILED_MESSAGE = ("Not started: a setting changed while the run waited for a slot. Check the settings and press "
                        "Start again.")


def waiting_html(run: runs.Run) -> str:
    """The status of a run that waits for a slot: what it waits for (`waiting_text`), with its Start's warnings."""
    return status_html(waiting_text(run.key), fraction=0.0, notes=run.notes)


def waiting_status(request: gr.Request):
    """The wait timer's tick: while this browser's run waits for a slot, its status says again how many runs are
    ahead and when the first should end (runs end and waiting ones move up; the estimate follows their pace); the
    timer stops once the run has started or ended. Outputs: the status, the timer."""
    run = runs.REGISTRY.active(runs.owner_key(request))
    if run is None or run.started:
        return gr.skip(), gr.Timer(active=False)
    return waiting_html(run), gr.Timer(active=True)


def new_trainer(plan: Plan) -> tuple[Trainer, torch.Tensor, DataInfo]:
    """The run's trainer, on its training data (loaded, or the user's own points) and network: (trainer, the data
    (N, ...) in model coordinates, what the data is); gr.Error when the data cannot be loaded or does not fit."""
    labels = None
    if plan.own is not None:
        tensor, info = plan.own.points, plan.own.info
    else:
        try:
            if plan.conditional:
                tensor, labels, info = load_labelled_data(plan.data, n_points=plan.n_points, seed=plan.seed)
            else:
                tensor, info = load_training_data(plan.data, n_points=plan.n_points, seed=plan.seed)
        except (DataUnavailableError, ValueError, OSError) as err:
            raise InputError(f"The training data could not be loaded: {err}") from None
    network = build_model(plan, tensor)
    try:
        return Trainer(network, plan.schedule, tensor, train_config(plan, info), labels), tensor, info
    except ValueError as err:
        raise InputError(str(err)) from None


def events_within(events: queue.Queue, seconds: float) -> tuple[list, bool]:
    """What the run's thread puts in ``events`` within ``seconds`` (less once DONE comes): (its events and
    divergence, in order; whether DONE came)."""
    deadline = time.monotonic() + seconds
    items: list = []
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            item = events.get(timeout=remaining)
        except queue.Empty:
            break
        if item is DONE:
            return items, True
        items.append(item)
    return items, False


def run_update(status: Any = None, loss: Any = None, preview: Any = None, error: Any = None, filmstrip: Any = None,
               trained: Any = None) -> tuple:
    """One update of the outputs that show a run (`train_run`'s, `rejoin_run`'s): the status, the loss plot, the
    preview, the error by t, the filmstrip and the checkpoint paths; None leaves an output as it is."""
    return tuple(gr.skip() if value is None else value for value in (status, loss, preview, error, filmstrip, trained))


def train_run(request: gr.Request, ticket, data, schedule_name, T, model, prediction, conditional, p_uncond,
              start_from, steps, batch, lr, seed, n_points, trained, own, *param_values):
    """Start, part 2 (a generator): train in a thread, yield `run_update`s (status, loss plot, preview, error by t,
    filmstrip, trained paths).
    ``ticket``: `prepare_run`'s reservation (None: a new run), which ends at once if it was stopped meanwhile."""
    key = runs.owner_key(request)
    try:  # checked again: the start checkpoint may have gone while the run waited
        plan = make_plan(data, schedule_name, T, model, prediction, conditional, p_uncond, start_from, steps, batch,
                         lr, seed, n_points, trained, own, param_values, owner=key)
    except Exception as err:  # the status says so too: it had stayed on "Waiting for a free training slot…"
        runs.REGISTRY.release(key, ticket)  # prepare_run's reservation: the browser can start again
        yield run_update(not_started(err))
        raise
    except BaseException:
        runs.REGISTRY.release(key, ticket)
        raise
    wait_for_room(key, ticket)
    try:
        run = runs.REGISTRY.claim(key, ticket, page=request.session_hash)
    except runs.RunBusy:
        raise InputError(RUN_BUSY_MESSAGE) from None
    if run.stop_requested.is_set():
        runs.REGISTRY.finish(run)
        yield run_update(status_html("Stopped before it started.", tone="warn"))
        return
    try:  # from here on, whatever fails frees the browser's run slot
        loss_kind = dict(min_snr_gamma=plan.min_snr_gamma, prediction=plan.prediction)  # named on the loss axis
        reference = reference_error_by_t(plan, trained)  # the run to compare the error by t with
        error_kind = dict(reference=reference, label=f"this run (predicts {PREDICTION_SYMBOLS[plan.prediction]})")
        yield run_update(  # clears the last run's plots
            status_html("Loading data and building the model…", fraction=0.0, notes=plan.running_notes),
            loss_figure([], **loss_kind),
            gr.Plot(training_data_figure(plan.data, plan.own, plan.n_points, plan.seed), label=DATA_LABELS[plan.kind]),
            error_by_t_figure(NOTHING_SEEN, plan.schedule.T, **error_kind), no_filmstrip())
        trainer, tensor, info = new_trainer(plan)
        if plan.init_from is not None:  # 0.7 s for the small U-Net on 2 CPU cores; ~15 s for a base one
            yield run_update(status_html(f"Measuring the error of {display_name(plan.init_from)} at each t…",
                                         fraction=0.0, notes=plan.running_notes))
            error_kind["reference"] = starting_error_by_t(plan, trainer)
    except Exception as err:  # the status says so too: it had stayed on "Loading data and building the model…"
        runs.REGISTRY.finish(run)
        yield run_update(not_started(err))
        raise
    except BaseException:  # the page went (or Stop cancelled the stream): nothing to say it on; the next page says it
        run.cut_off = not run.stop_requested.is_set()
        run.message, run.reason = "Stopped while it loaded: nothing was trained.", "loading"
        runs.REGISTRY.finish(run)
        raise
    run.trainer = trainer
    if run.stop_requested.is_set():  # Stop pressed while loading
        trainer.stop()
    chain = preview_caption(trainer)
    waiting = gr.Plot(preview_figure(plan.kind, None, tensor),
                      label=f"{WAITING_LABELS[plan.kind]} · {upcoming_previews(trainer.config)} · {chain}")
    device = device_name(trainer.device, torch_threads.cores_of_a_run())  # the run's thread's, not this one's
    run.view = view = LiveView(plan, tensor, info, device, chain, waiting, loss_kind, error_kind)
    thread = threading.Thread(target=run_worker, args=(run, trainer, plan, info, view.events),
                              name=f"{runs.RUN_THREAD_PREFIX}{key}", daemon=True)
    thread.start()

    def updates():
        yield run_update(status_html(f"Training on {view.device}…", fraction=0.0, notes=plan.running_notes),
                         preview=waiting, error=None if plan.init_from is None
                         else error_by_t_figure(NOTHING_SEEN, plan.schedule.T, **error_kind))
        run.samples_awaited = True  # once the page has the promise (a Stop while loading cancels it unsent)
        yield from stream_run(run, view, trained)

    yield from shown_while_its_page_stays(run, trainer, updates())


def wait_for_room(key: str, ticket: str | None) -> None:
    """Hold a Start that has its training slot while as many runs of other browsers train as there are slots: a run
    whose page went trains on outside Gradio's slots (`shown_while_its_page_stays`). Until one ends, or until the
    Start's reservation is gone (stopped, or its page closed: `claim` then says so)."""
    while len(runs.REGISTRY.others(key)[0]) >= runs.heavy_concurrency():
        reserved = runs.REGISTRY.active(key)
        if ticket is not None and (reserved is None or reserved.ticket != ticket):
            return
        time.sleep(POLL_SECONDS)


@dataclass
class LiveView:
    """What a page needs to show a run as it trains, kept with the run (`runs.Run.view`) so that a page of its browser
    that loads meanwhile can take the showing over (`rejoin_run`): the run's plan and data, the labels and kinds of its
    plots, the events its thread puts, and what they have said so far (all losses, the last event, the last preview,
    every preview's step and samples)."""
    plan: Plan
    tensor: torch.Tensor
    info: DataInfo
    device: str
    chain: str  # the previews' caption: how their samples are drawn
    waiting: Any  # the preview plot until the first samples
    loss_kind: dict[str, Any]
    error_kind: dict[str, Any]
    events: queue.Queue = field(default_factory=queue.Queue)
    losses: list[float] = field(default_factory=list)
    last: TrainEvent | None = None
    preview: TrainEvent | None = None
    previews: list[tuple[int, torch.Tensor]] = field(default_factory=list)  # (step, samples), for the filmstrip
    preview_label: str = ""  # the last preview's label, without a note


def _preview_update(view: LiveView, note: str = "") -> Any:
    """The preview plot of the run's last preview (its label ending with ``note``), or its waiting plot before the
    first."""
    if view.preview is None:
        return view.waiting
    caption = f"Samples from the EMA weights at step {view.preview.step:,} · {view.chain}"
    samples, classes = view.preview.preview, preview_classes(view.plan)
    view.preview_label = preview_label(samples, caption, view.info, classes)
    label = f"{view.preview_label} · {note}" if note else view.preview_label
    return gr.Plot(preview_figure(view.info.kind, samples, view.tensor, classes), label=label)


def _filmstrip_update(view: LiveView) -> Any:
    """The filmstrip of the run's previews so far (hidden before the second)."""
    return filmstrip_plot(view.plan.kind, view.previews, preview_classes(view.plan))


def stream_run(run: runs.Run, view: LiveView, trained: Any, notes: list[str] | None = None, catch_up: bool = False):
    """A training run's updates for the page that shows it, until the run ends: `run_update`s, from the events its
    thread puts in its ``view``; the status carries ``notes`` (by default its Start's warnings). The loss and error
    plots are sent at most once a `PLOT_SECONDS`, the first time with all the losses so far; the preview and the
    filmstrip with each new preview, and with the first update if ``catch_up`` (a page that takes the run over)."""
    plan = view.plan
    notes = plan.running_notes if notes is None else notes
    preview_update: Any = gr.skip()
    filmstrip_update: Any = gr.skip()
    pending = (_preview_update(view), _filmstrip_update(view)) if catch_up else (gr.skip(), gr.skip())
    plotted = -math.inf  # when the loss and error plots were last sent
    done = False
    while not done:
        items, done = events_within(view.events, POLL_SECONDS)
        if not items and not done:
            continue
        previewed = False
        for item in items:
            view.losses.extend(item.losses)
            if isinstance(item, TrainingDiverged):
                continue
            view.last = item
            if item.preview is not None:
                view.preview, previewed = item, True
                view.previews.append((item.step, item.preview))
                run.samples_awaited = False
        note = FINAL_COMING if done and draws_final_preview(run) else ""  # said beside the last preview
        preview_update, filmstrip_update = (_preview_update(view, note), _filmstrip_update(view)) if previewed \
            else pending
        pending = (gr.skip(), gr.skip())
        if done:
            break
        if view.last is not None and not run.stop_requested.is_set():  # after Stop, only the final message
            text, fraction = _progress_text(view.last, plan, view.device)
            if redraw := time.monotonic() - plotted >= PLOT_SECONDS:
                plotted = time.monotonic()
            error_by_t = error_by_t_figure(view.last.bucket_loss, plan.schedule.T, **view.error_kind) if redraw \
                else None
            yield run_update(status_html(text, fraction=fraction, notes=notes),
                             loss_figure(view.losses, **view.loss_kind) if redraw else None, preview_update,
                             error_by_t, filmstrip_update)
    tone = END_TONES.get(run.reason, "warn")
    if tone == "error":
        gr.Warning(re.sub(r"<[^>]+>", "", run.message))
    fraction = view.last.fraction if view.last else 0.0
    final_status = status_html(run.message, fraction=fraction, tone=tone, notes=plan.notes)
    final_error = error_by_t_figure(view.last.bucket_loss, plan.schedule.T, **view.error_kind) if view.last else None
    # the final preview follows (`final_preview`; the training slot is free by then), said beside the last one: on a
    # busy server it took minutes, and the page had not said that it would come
    if preview_update == gr.skip() and view.preview is not None and draws_final_preview(run):
        preview_update = gr.Plot(label=f"{view.preview_label} · {FINAL_COMING}")
    yield run_update(final_status, loss_figure(view.losses, **view.loss_kind), preview_update, final_error,
                     filmstrip_update, _with_checkpoint(trained, run))


def shown_while_its_page_stays(run: runs.Run, trainer: Trainer | None, updates):
    """``updates`` of ``run`` for its page. If the page goes meanwhile (Gradio closes this generator: the page was
    closed or reloaded, or its connection dropped, after which Gradio reloads it), the run trains on for a while, for
    a page of its browser to take it over (`runs.RunRegistry.page_left`, `rejoin_run`): a second's drop of a
    lecture hall's network had ended the run. Otherwise (the run's end, an error) ``trainer`` is stopped."""
    left = False
    try:
        yield from updates
    except GeneratorExit:
        left = runs.REGISTRY.page_left(run)
        raise
    finally:
        if not left and trainer is not None:
            trainer.stop()  # ended, cancelled by Stop, or failed: the thread ends after its current step


def rejoin_run(request: gr.Request, trained: Any):
    """After the page loads: take over the browser's run whose page went while it trained, and show it as that page
    did, from all its losses so far to its end and final preview. Outputs: those of `train_run`.

    A run another page still shows is waited for, `REJOIN_WAIT_SECONDS`, to be left (a reload's old page goes a moment
    after the new one loads); one that an open tab of the browser shows is left to it, and `run_cut_off` follows it."""
    page = request.session_hash
    run = runs.REGISTRY.active(runs.owner_key(request))
    view: LiveView | None = None if run is None else run.view  # `finish` forgets it
    if view is None or run.page == page:
        yield run_update()
        return
    deadline = time.monotonic() + REJOIN_WAIT_SECONDS
    while not runs.REGISTRY.take_over(run, page):
        if run.done.is_set() or time.monotonic() > deadline:
            yield run_update()
            return
        time.sleep(0.1)
    updates = stream_run(run, view, trained, [*view.plan.running_notes, REJOINED_NOTE], catch_up=True)
    yield from shown_while_its_page_stays(run, run.trainer, updates)
    drawn = run.previewed.wait(FINAL_WAIT_SECONDS)
    if not run.preview_replaced.is_set() and drawn and run.final_preview is not None:
        yield run_update(preview=run.final_preview)
    elif not run.preview_replaced.is_set() and not drawn:  # its promise (`stream_run`), taken back
        yield run_update(preview=gr.Plot(label=FINAL_LATE_LABEL))


# the colour of a run's last message (else warn)
END_TONES = {"diverged": "error", "error": "error", "unsaved": "error", "finished": "ok"}


def stop_run(request: gr.Request, trained):
    """Stop this browser's run (never another's); wait for its checkpoint and add it to the State."""
    key = runs.owner_key(request)
    ended = runs.REGISTRY.active(key) is None
    run = runs.REGISTRY.stop(key)
    if run is None:
        return status_html("No training run to stop.", tone="warn"), gr.skip()
    if ended:  # its checkpoint is added all the same, in case the run's own last update was cut off
        # a second Stop (a double click) says what the first did; "no run to stop" would read as if it had failed
        told = "" if run.stop_requested.is_set() else "No training run to stop; the last one has ended. "
        return (status_html(f"{told}{run.message}", fraction=reached(run), tone=END_TONES.get(run.reason, "warn")),
                _with_checkpoint(trained, run))
    if not run.done.wait(STOP_WAIT_SECONDS):
        return status_html("Stopping… the run ends after its current step.", tone="warn"), gr.skip()
    message = run.message or "Stopped."
    return status_html(message, fraction=reached(run), tone="warn"), _with_checkpoint(trained, run)


def reached(run: runs.Run) -> float | None:
    """How far a run got, for the bar of its last status (without the bar, the plots below moved up as it went)."""
    return None if run.progress is None else run.progress.fraction


async def final_preview(request: gr.Request, ticket: str | None = None):
    """After a run ends, by itself (`train_run` returns) or by Stop (which cancels it): its final preview, which its
    thread draws from the saved weights seconds after the end, unless the page shows other data by then or the
    browser's next run has started (``preview_replaced``). A run that never showed samples and draws none (stopped or
    diverged before its first preview) says so in the label, which had promised them. ``ticket``: the page's last
    reservation (`prepare_run`); another run of the browser's is left alone.

    Polled with `asyncio.sleep`, so the wait holds no worker thread, nor the training slot: `train_run` had waited for
    the preview, and the next visitor read "Waiting for a free training slot…" for those seconds."""
    run = runs.REGISTRY.last(runs.owner_key(request))
    if run is None or (ticket is not None and run.ticket != ticket):
        return gr.skip()
    start = time.monotonic()
    while not run.done.is_set() or (run.checkpoint is not None and not run.previewed.is_set()):
        if time.monotonic() - start > FINAL_WAIT_SECONDS:
            late = run.done.is_set() and not run.preview_replaced.is_set()  # its promise, taken back
            return gr.Plot(label=FINAL_LATE_LABEL) if late else gr.skip()
        await asyncio.sleep(POLL_SECONDS)
    if run.preview_replaced.is_set():
        return gr.skip()
    if run.final_preview is not None:
        return run.final_preview
    return gr.Plot(None, label=NO_PREVIEW_LABEL) if run.samples_awaited else gr.skip()


def page_loaded(request: gr.Request, token: Any):
    """Page load: link the page to its browser's owner token (`runs.adopt_owner`: a new one for a new browser), delete
    the checkpoints past their time (at most once a minute: `runs.CHECKPOINTS_SWEEP`), and list the browser's own.
    Outputs: the token (kept in the browser), the checkpoint paths, the page's session (a State whose deletion ends
    the link, `runs.forget_page`)."""
    token = runs.adopt_owner(request, token)
    if runs.CHECKPOINTS_SWEEP.due():
        runs.sweep_expired_checkpoints()
    return token, runs.owner_checkpoints(token), request.session_hash


# Runs once in each page: whenever the page comes back into view (another tab of the browser was in front), it asks
# for the browser's run that another tab started (`run_cut_off`, through the hidden #train-follow button)
FOLLOW_JS = """() => document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible') document.querySelector('#train-follow')?.click();
})"""
_following: set[str] = set()  # the pages that follow another tab's run now (`run_cut_off`): one follower each


async def run_cut_off(request: gr.Request, trained: Any):
    """After the page loads: the browser's run that another page started. Outputs: status, checkpoint paths.

    - The run ended after its page went (no page took it over: `rejoin_run`; or it was still loading): say how it
      ended, once, and list its checkpoint.
    - Another page shows it (another tab of this browser): say so, follow the run, and when it ends say how and list
      the browser's checkpoints, its new one with them. Should that page go, say that a reload shows the run here
      (`LEFT_RUN_STATUS`), and follow it again once a page takes it over. A run that ends in its tab before this page
      has said anything is listed all the same.

    Asked when the page loads and whenever it comes back into view (`FOLLOW_JS`): a tab open before the run started
    hears of it too. One follower a page: asked again while it follows, it says nothing. Polled with `asyncio.sleep`,
    so following a run holds no worker thread however long it trains."""
    page = request.session_hash
    run = runs.REGISTRY.last(runs.owner_key(request))
    if run is None or run.page is None or run.page == page or (run.done.is_set() and not run.cut_off) \
            or page in _following:
        yield gr.skip(), gr.skip()
        return
    _following.add(page)
    try:
        start, following, said_left = time.monotonic(), False, False
        while not run.done.is_set():
            await asyncio.sleep(0.25)
            if run.page == page:  # this page took it over (`rejoin_run`), and shows it
                return
            if run.stop_requested.is_set():  # stopping: its end is said below
                continue
            waited = time.monotonic() - start
            left = run.left_at is not None
            if left != said_left:  # its page went (a reload here takes it over), or another page took it over
                following, said_left = True, left
                yield status_html(LEFT_RUN_STATUS if left else OTHER_TAB_STATUS, tone="warn"), gr.skip()
                continue
            if not following and waited > OTHER_TAB_SECONDS and runs.page_open(run.page):
                following = True
                yield status_html(OTHER_TAB_STATUS, tone="warn"), gr.skip()
            if not following and waited > STOP_WAIT_SECONDS:
                yield status_html("A training run of yours from before this page was reloaded is still stopping; "
                                  "reload again in a minute to list its model.", tone="warn"), gr.skip()
                return
    finally:
        _following.discard(page)
    if run.checkpoint is not None and not run.checkpoint.is_dir():  # swept meanwhile
        yield gr.skip(), gr.skip()
        return
    if not run.cut_off:
        if run.started:  # it ended in its own tab, which said so, while this page waited
            # after "under way", a Stop (pressed in either tab) speaks for itself, as Stop's own message does
            plain = following and run.stop_requested.is_set()
            said = "" if plain else "Your training run in another tab of this browser has ended. "
            yield (status_html(f"{said}{run.message}", tone=END_TONES.get(run.reason, "warn")),
                   runs.owner_checkpoints(runs.owner_key(request)))
        else:
            yield gr.skip(), gr.skip()
        return
    if not following:  # said once, by a page loaded after the cut: a tab that followed the run says it too, and
        run.cut_off = False  # leaves it to the reloaded page (which, said to first, showed only "Press Start")
    if not run.started:
        yield status_html("Your run was dropped while it waited for a training slot: the page that started it was "
                          "reloaded or closed. Press <b>Start training</b> again.", tone="warn"), gr.skip()
        return
    if run.reason == "loading":  # its page went while it loaded: it never trained
        yield status_html("Your run stopped while it loaded, when the page that started it was reloaded or closed. "
                          "Press <b>Start training</b> again.", tone="warn"), gr.skip()
        return
    yield status_html(f"{CUT_OFF_STATUS} {run.message}", tone="warn"), _with_checkpoint(trained, run)


def kind_defaults(data: str, start_from: str):
    """When the data changes between 2D and images: matching model, steps, batch and learning rate
    (model and learning rate stay as they are while a checkpoint is picked to start from)."""
    if data not in TOY2D_NAMES and data not in IMAGE_DATASETS and data != OWN_POINTS:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip()
    d = defaults_for(data_kind_of(data))
    if start_from:
        return gr.skip(), d["steps"], d["batch"], gr.skip()
    return d["model"], d["steps"], d["batch"], d["lr"]


def start_from_selected(request: gr.Request, start_from: str, trained: Any, own: OwnPoints | None,
                        data_now: str | None = None, model_now: str | None = None):
    """Show the checkpoint's data, model and schedule (locked while it is picked) and propose a lower
    learning rate; back to editable controls for a new model. The data choice follows the checkpoint: its
    toy (and its number of training points) or image data set, or for given points (a drawing, a CSV) the
    session's own points, which become the checkpoint's when there are none (the drawing box was cleared). A toy
    set of another size than the usual (e.g. 20 points) also sets the seed it was drawn with, so that the run
    continues on that very set.
    A conditional checkpoint also proposes its last run's rate of dropping the class to ∅ (which may be changed).
    Back to a new model, the model (the checkpoint's until then) becomes the default for the data chosen now
    (``data_now``) unless ``model_now`` already suits it: an MLP for points, a U-Net for images.
    Outputs: info, data, training points, seed, schedule, T, model, prediction, conditional, p_uncond, lr, own points,
    preview."""
    locked = dict(interactive=False)
    if not start_from or not allowed(start_from, trained):
        unlocked = gr.update(interactive=True)
        model = unlocked
        if data_now in TOY2D_NAMES or data_now in IMAGE_DATASETS or data_now == OWN_POINTS:
            kind = data_kind_of(data_now)
            if (model_now == "mlp") != (kind == "2d"):
                model = gr.update(value=defaults_for(kind)["model"], interactive=True)
        return ("", gr.skip(), gr.skip(), gr.skip(), unlocked, unlocked, model, unlocked, unlocked, gr.skip(),
                gr.skip(), gr.skip(), gr.skip())
    try:
        config = read_config(start_from)
        data, schedule, training = config["data"]["name"], config["schedule"], config.get("training", {})
        model, prediction = model_name(config), model_prediction(config)
        checkpoint = CACHE.get(Path(start_from)) if config["data"].get("kind") == "2d" else None
    except (CheckpointError, KeyError, TypeError):
        return ("This checkpoint cannot be read.", *[gr.skip()] * 12)
    missing = data_missing_here(data)
    known_data = not missing
    lr = training.get("lr")
    info = (f"{describe(start_from, trained, in_reverse_tab=False)}\n\nTraining continues from these weights with the same model and "
            "noise schedule, and a fresh optimiser (warm-up, then cosine decay).")
    data_choice, restored, preview = (data if known_data else gr.skip()), gr.skip(), gr.skip()
    size, toy_size, seed = training.get("data_size"), gr.skip(), gr.skip()
    if data in TOY2D_NAMES and isinstance(size, int) and 1 <= size <= MAX_TOY_POINTS:  # continue on as many
        toy_size, drawn_with = size, 0
        if size != DEFAULT_TOY_POINTS and isinstance(training.get("seed"), int):  # that very set: its seed
            seed = drawn_with = training["seed"]
            info += f" Its {size:,} training points are drawn again with seed {seed}."
        preview = show_training_data(request, data, own, size, drawn_with)
    points = None if checkpoint is None else checkpoint.points
    if points is None and missing:  # Start then asked for data that the list does not offer, without why
        info += (f"\n\n**Its training data, {in_markdown(missing)}, is not on this server**, so it cannot be trained "
                 "further here (it samples in the Reverse tab).")
    if points is not None and not known_data:  # trained on given points: continue on own points
        data_choice = OWN_POINTS
        if own is None:
            restored = OwnPoints(points, checkpoint.data)
            preview = _unless_running(request, own_points_plot(restored))
            info += (f" Its {len(points):,} training points are back as **your own points**; draw or upload "
                     "others to continue it on them.")
        elif not torch.equal(own.points, points):
            info += (f" It continues on your own points as they are now ({in_markdown(own.info.source)}), not on the "
                     f"{len(points):,} it was trained on.")
    return (
        info,
        data_choice,
        toy_size,
        seed,
        gr.update(value=schedule["name"], **locked),
        gr.update(value=int(schedule["T"]), **locked),
        gr.update(value=model, **locked) if model in {v for _, v in MODEL_CHOICES} else gr.update(**locked),
        gr.update(value=prediction, **locked) if prediction in PREDICTIONS else gr.update(**locked),
        gr.update(value=model_classes(config) > 0, **locked),
        p_uncond_slider(model_classes(config) > 0, training.get("p_uncond")),
        CONTINUE_LR_FACTOR * float(lr) if isinstance(lr, (int, float)) else gr.skip(),
        restored,
        preview,
    )


def p_uncond_slider(conditional: bool, value=None) -> gr.Slider:
    """The rate of dropping the class to ∅: shown for a class-conditional run, set to ``value`` when it fits."""
    fits = isinstance(value, (int, float)) and 0 <= value <= MAX_P_UNCOND
    return gr.Slider(visible=bool(conditional), **({"value": float(value)} if fits else {}))


def refresh_start_choices(trained: Any, current: str):
    """After a run: offer this browser's checkpoints too, keeping the current choice; a choice deleted since (the
    browser's oldest, pushed out by a newer model: by the run that continued it, say) goes back to a new model, and
    says so (it had done so without a word, and the next Start trained from random weights)."""
    choices = start_choices(trained)
    if current in {v for _, v in choices}:
        return gr.Dropdown(choices=choices, value=current, info="")
    gone = None if current in (NEW_MODEL, None, "") else (
        f"{in_markdown(display_name(current))} is no longer on the server (a newer model took its place): back to a new "
        "model.")
    return gr.Dropdown(choices=choices, value=NEW_MODEL, info=gone or "")


# ----- layout ---------------------------------------------------------------------------------------


def build(own: gr.State, page: gr.Blocks, owner: gr.BrowserState, tab: gr.Tab | None = None) -> gr.State:
    """Lay out the Train tab; returns the State with this browser's checkpoint paths, which ``page`` fills when it
    loads, from the browser's ``owner`` token (`app.runs`; rendered outside the tabs, so that it is read before the
    page loads). ``own``: the session's own points (`app.own_points`), which the drawing box and the CSV upload here
    set. ``tab``: the tab it is laid out in, whose opening looks for a run of this browser that another page started."""
    choices, missing_note = data_choices()
    device = device_name(resolve_device("auto"), torch_threads.cores_of_a_run())
    gr.Markdown(
        "Train a small denoising network and watch the loss fall. **Each training step** takes a batch of examples "
        "x₀, a random step t for each and fresh noise ε, makes x_t = √ᾱ_t·x₀ + √(1 − ᾱ_t)·ε as in the Forward tab, "
        "and shows the network (x_t, t): it guesses the noise, ε̂, and is nudged to make the loss ‖ε − ε̂‖² smaller "
        "(Algorithm 1 of Ho et al. 2020; it can learn x₀ or v instead, below). The previews sample from a running "
        "average of its weights (EMA), steadier than the latest ones.\n\n"
        f"Runs here: **{device}**. Each run is saved on this server for this browser, for {runs.keep_text()} "
        "(a reload keeps it), and appears in the **Reverse** tab (download it there as a .zip to keep it); Stop keeps "
        "the model trained so far. "
        f"This server caps a run at {runs.max_train_steps():,} steps and {runs.duration_text(runs.max_train_seconds())}, "
        f"and keeps your {runs.max_runs_per_user()} newest models (with those you upload)."
    )
    trained = gr.State([])
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            data = gr.Dropdown(choices=choices, value="swiss_roll", label="Training data", elem_classes="name-dropdown")
            n_points = gr.Number(value=DEFAULT_TOY_POINTS,
                                 label="Training points (2D toys)", elem_id="train-n-points",
                                 info="fewer, e.g. 20, and the network learns them by heart: the Reverse tab counts "
                                      "the copies among its samples")
            with gr.Column(visible=False) as own_group:
                drawing = own_points.drawing_box(label="Draw the data", elem_id="train-drawing", side=DRAWING_SIDE,
                                                 brush_size=10, color="#1f4e99")
                csv_file = gr.File(label="… or upload a CSV of x,y points (one per line)", file_types=[".csv"],
                                   type="filepath", height=120, elem_id="train-csv")
            data_note = gr.Markdown(missing_note, visible=bool(missing_note))
            schedule_name = controls.schedule_dropdown()
            T = controls.t_input()
            params = controls.param_inputs(("linear",), open_=False)
            model = gr.Dropdown(choices=MODEL_CHOICES, value="mlp", label="Model")
            prediction = gr.Radio(choices=PREDICTION_CHOICES, value="eps", label="The network predicts",
                                  info=PREDICTION_INFO, elem_id="train-prediction")
            conditional = gr.Checkbox(value=False, label="Class-conditional: learn each class too",
                                      info=CONDITIONAL_INFO + conditional_data(), elem_id="train-conditional")
            p_uncond = gr.Slider(0.0, MAX_P_UNCOND, value=TrainConfig.p_uncond, step=0.05, visible=False,
                                 label="Drop the class to ∅ (p_uncond)", info=P_UNCOND_INFO, elem_id="train-p-uncond")
            start_from = gr.Dropdown(choices=start_choices([]), value=NEW_MODEL, label="Start from",
                                     elem_classes="name-dropdown")
            start_info = gr.Markdown()
            with gr.Row():
                steps = gr.Number(value=DEFAULTS_2D["steps"], label="Training steps")
                batch = gr.Number(value=DEFAULTS_2D["batch"], label="Batch size")
            with gr.Row():
                lr = gr.Number(value=DEFAULTS_2D["lr"], label="Learning rate")
                seed = gr.Number(value=0, label="Seed")
        with gr.Column(scale=2, min_width=controls.VIEWS_MIN_WIDTH):
            with gr.Row():  # Start and Stop beside the status, in view (Start was below the fold at 1440 × 900)
                status = gr.HTML(status_html("Press <b>Start training</b>. On a 2-core CPU the default run takes "
                                             "under a minute for 2D data (3,000 steps), 5 to 11 minutes for MNIST "
                                             "(2,000 steps)."), js_on_load=None, elem_id="train-status", scale=1,
                                 elem_classes=accessibility.LIVE_STATUS)
                start = gr.Button("Start training", variant="primary", scale=0, min_width=150, elem_id="train-start")
                stop = gr.Button("Stop", variant="stop", scale=0, min_width=90, elem_id="train-stop")
            loss_plot = gr.Plot(loss_figure([]), label="Training loss", elem_id="train-loss")
            with gr.Accordion("Where the loss comes from: the error at each noise level t", open=False):
                error_plot = gr.Plot(error_by_t_figure(NOTHING_SEEN, int(T.value)), elem_id="train-error-by-t",
                                     label="ε-prediction error (unweighted) by t, the mean over the run so far")
                gr.Markdown(ERROR_BY_T_NOTE)
            preview = gr.Plot(training_data_figure(data.value), label=DATA_LABELS[data_kind_of(data.value)],
                              elem_id="train-preview")
            filmstrip = gr.Plot(visible=False, elem_id="train-filmstrip")
            gr.Markdown("2D previews use DDPM: DDIM would throw an ε network's points far out on the cosine and "
                        "sigmoid schedules (see the step gains in the **Schedules** tab). Image previews use DDIM with "
                        "x̂₀ clipped to [−1, 1], which keeps it sound.")

    schedule_name.change(lambda name: params.visibility([name]), schedule_name, list(params.groups.values()),
                         show_progress="hidden", queue=False)
    data.change(kind_defaults, [data, start_from], [model, steps, batch, lr], show_progress="hidden", queue=False)
    shown = gr.State((data.value, DEFAULT_TOY_POINTS, 0))  # (data, training points, seed) the preview last showed
    # queued, as every event whose handler may raise gr.Error (here on a bad number of points or seed): an unqueued
    # event's error shows no toast
    data_shown = data.change(data_changed, [data, own, n_points, seed], [preview, shown], show_progress="hidden")
    data.change(lambda name: gr.Number(visible=name in TOY2D_NAMES), data, n_points, show_progress="hidden",
                queue=False)
    refused = gr.State(None)  # (data, training points, seed) last refused, whose error was said
    points_entered = gr.on([n_points.submit, n_points.blur, seed.submit, seed.blur], toy_points_changed,
                           [data, own, n_points, seed, shown, refused], [preview, shown, refused],
                           show_progress="hidden")
    points_entered.failure(lambda *entered: entered, [data, n_points, seed], refused, show_progress="hidden",
                           queue=False)
    data.change(None, data, own_group, js=controls.shown_js(f"args[0] === {json.dumps(OWN_POINTS)}",
                                                            kept_in="train-drawing"), queue=False)
    data.change(None, data, None, js=SELECT_BRUSH_JS, queue=False)
    data.change(conditional_kept, [data, conditional], conditional, show_progress="hidden", queue=False)
    drawing.clear(None, data, None, js=SELECT_BRUSH_JS, queue=False)  # the editor drops its tool when cleared
    drawing_copy = own_points.box_reader(drawing)
    drawn = own_points.read_box(drawing.change, drawing, drawing_copy).then(
        drawing_changed, [drawing_copy, own], [own, preview], show_progress="hidden", trigger_mode="always_last")
    uploaded = csv_file.upload(csv_uploaded, csv_file, [own, data, preview], show_progress="hidden")
    # a file that failed leaves the box; after one that was read, the drawing box is emptied (its drawing is no longer
    # what is trained on) and gets its brush back
    uploaded.failure(lambda: None, None, csv_file, show_progress="hidden", queue=False)
    uploaded.success(None, None, drawing, js="() => null", queue=False)
    uploaded.success(None, data, None, js=SELECT_BRUSH_JS, queue=False)
    conditional.change(p_uncond_slider, conditional, p_uncond, show_progress="hidden", queue=False)
    started_from = start_from.change(
        start_from_selected, [start_from, trained, own, data, model],
        [start_info, data, n_points, seed, schedule_name, T, model, prediction, conditional, p_uncond, lr, own,
         preview],
        show_progress="hidden", queue=False)
    for other_data in (data_shown, points_entered, drawn, uploaded, started_from):  # the strip goes with its samples
        other_data.then(filmstrip_after_other_data, None, filmstrip, show_progress="hidden", queue=False)
    trained.change(refresh_start_choices, [trained, start_from], start_from, show_progress="hidden", queue=False)

    inputs = [data, schedule_name, T, model, prediction, conditional, p_uncond, start_from, steps, batch, lr, seed,
              n_points, trained, own, *params.components]
    ticket = gr.State(None)  # prepare_run's reservation, claimed by train_run
    wait_timer = gr.Timer(WAIT_REFRESH_SECONDS, active=False)  # ticks while the run waits for a slot
    prepared = start.click(prepare_run, inputs, [status, ticket], show_progress="hidden", concurrency_limit=None)
    prepared.success(lambda: gr.Timer(active=True), None, wait_timer, show_progress="hidden", queue=False)
    wait_timer.tick(waiting_status, None, [status, wait_timer], show_progress="hidden", concurrency_limit=None)
    train_event = prepared.success(
        train_run, [ticket, *inputs], [status, loss_plot, preview, error_plot, filmstrip, trained],
        show_progress="hidden",
        concurrency_id=runs.TRAINING_CONCURRENCY_ID, concurrency_limit=runs.heavy_concurrency(),
        trigger_mode="multiple",  # Start right after Stop: the browser still waits for the cancelled run to close
    )
    train_event.failure(start_failed, ticket, [status, wait_timer], show_progress="hidden", queue=False)
    # the run's final preview, once it has ended by itself or by Stop (whose cancelling of train_event Gradio may also
    # count as a success: the two then wait for the same preview, and show it alike)
    train_event.success(final_preview, ticket, preview, show_progress="hidden", concurrency_limit=None)
    start.click(None, None, None, js=SHOW_RUN_JS, queue=False)
    stop.click(stop_run, trained, [status, trained], cancels=[train_event], show_progress="hidden",
               concurrency_limit=None).then(final_preview, ticket, preview, show_progress="hidden",
                                            concurrency_limit=None, api_visibility="undocumented")
    session = gr.State(None, delete_callback=runs.forget_page)
    page.load(data_list, None, [data, data_note], show_progress="hidden", queue=False)
    # a run of the browser's whose page went (a reload, a dropped connection) is shown here again, to its end
    page.load(page_loaded, owner, [owner, trained, session], show_progress="hidden").then(
        rejoin_run, trained, [status, loss_plot, preview, error_plot, filmstrip, trained], show_progress="hidden",
        concurrency_limit=None).then(
        run_cut_off, trained, [status, trained], show_progress="hidden", concurrency_limit=None)
    # asked again whenever the page is shown (`FOLLOW_JS`) and the tab (``tab``) opened: a browser tab opened before
    # another's Start never heard of the run
    follow = gr.Button("Follow this browser's run", visible="hidden", elem_id="train-follow")
    follow.click(run_cut_off, trained, [status, trained], show_progress="hidden", concurrency_limit=None)
    if tab is not None:
        tab.select(run_cut_off, trained, [status, trained], show_progress="hidden", concurrency_limit=None)
    page.unload(runs.page_closed)
    return trained
