"""Shared controls: the noise-schedule inputs (schedule choice, T, each schedule's parameters), number checks,
and outputs that stay hidden until they have something to show.

Turns the values of the schedule inputs into `core.schedules.make_schedule(name, T, **params)`; the
engine's `ValueError` (unknown name, T out of range, invalid parameters) becomes a one-line
`gr.Error` for the user.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gradio as gr

from app.errors import InputError
from core.cli import MAX_SEED, short_text  # every seed box's largest
from core.sampler import SPACING_LABELS, SPACINGS
from core.schedules import MAX_T, SCHEDULE_LABELS, SCHEDULE_NAMES, NoiseSchedule, default_params, make_schedule

SPACING_CHOICES = [(SPACING_LABELS[spacing], spacing) for spacing in SPACINGS]  # steps or frames: evenly in t or log-SNR
DEFAULT_T = 1000
PARAM_LABELS = {
    "beta_start": "β_start (at T = 1000; × 1000/T when scaled)",
    "beta_end": "β_end (at T = 1000; × 1000/T when scaled)",
    "scale_with_T": "scale β by 1000/T (keeps the chain ending in noise)",
    "s": "offset s",
    "max_beta": "β cap",
    "start": "start (the sigmoid's input at t = 0: start/τ)",
    "end": "end (the sigmoid's input at t = T: end/τ)",
    "tau": "τ (temperature)",
}
PARAM_NAMES_IN_WORDS = {  # core's parameter names in its messages, as the inputs name them
    "beta_start": "β_start", "beta_end": "β_end", "max_beta": "the β cap", "tau": "τ",
    "scale_with_T": "“scale β by 1000/T” (under Parameters)",
}
SCHEDULE_CHOICES = [(SCHEDULE_LABELS[name], name) for name in SCHEDULE_NAMES]
# The narrowest the views of a tab (beside its 300-px controls) may get, in CSS px: on a window under 1,024 px
# (Gradio's page is then 768 px wide; a projector at 1280 px zoomed to 150 % is 853 px) the views move below the
# controls and take the whole width.
VIEWS_MIN_WIDTH = 560
# A slider's "release" is the app's cue for its slower views (the Forward tab's targets, the step anatomy, the
# Schedules grid's image, the guidance field). Gradio 6.31 fires it on pointerup and on leaving the slider's number
# box only, so a keyboard scrub (arrow keys, Home/End, Page Up/Down: a presenter's clicker; ↑/↓ in the number box) or
# a t typed and entered updated the quick views and left the slow ones behind. Run once in each page
# (`launch(js=...)`): on such a key's release on a slider, or Enter in its number box, hand the slider the pointerup
# that it listens for.
SLIDER_KEYS = {"range": ["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "Home", "End", "PageUp", "PageDown"],
               "number": ["ArrowUp", "ArrowDown"]}  # the keys that step a slider's range input and its number box
KEYBOARD_RELEASE_JS = """() => {
  const keys = %s;
  const release = (event) => {
    const el = event.target;
    if (!(el instanceof HTMLInputElement) || !el.closest('.block')?.querySelector('input[type=range]')) return;
    const stepped = event.type === 'keyup' && (keys[el.type] || []).includes(event.key);
    const entered = el.type === 'number' && event.type === 'keydown' && event.key === 'Enter';
    if (stepped || entered) el.dispatchEvent(new PointerEvent('pointerup', {bubbles: true}));
  };
  document.addEventListener('keyup', release, true);
  document.addEventListener('keydown', release, true);
}""" % json.dumps(SLIDER_KEYS)


def schedule_dropdown(value: str = "linear", label: str = "Noise schedule") -> gr.Dropdown:
    return gr.Dropdown(choices=SCHEDULE_CHOICES, value=value, label=label, elem_classes="name-dropdown")


def t_input(value: int = DEFAULT_T) -> gr.Number:
    return gr.Number(value=value, label=f"T (number of steps, 2 … {MAX_T})")


@dataclass
class ParamInputs:
    """The parameter inputs of every schedule, each schedule's in its own (hideable) group."""

    groups: dict[str, gr.Accordion]
    keys: dict[str, tuple[str, ...]]
    components: list[gr.components.Component]  # all inputs, schedule by schedule, in SCHEDULE_NAMES order

    def visibility(self, shown: Sequence[str]) -> list:
        """Updates that show the groups of the schedules in ``shown`` and hide the others."""
        return [gr.update(visible=name in shown) for name in SCHEDULE_NAMES]


def param_inputs(shown: Sequence[str] = ("linear",), *, open_: bool = True) -> ParamInputs:
    """One accordion of parameter inputs per schedule (defaults from core), visible if in ``shown``."""
    groups, keys, components = {}, {}, []
    for name in SCHEDULE_NAMES:
        defaults = default_params(name)
        keys[name] = tuple(defaults)
        with gr.Accordion(f"Parameters: {SCHEDULE_LABELS[name]}", open=open_, visible=name in shown) as group:
            with gr.Row():
                made = {key: gr.Number(value=value, label=PARAM_LABELS.get(key, key))
                        for key, value in defaults.items() if not isinstance(value, bool)}
            # a checkbox under the numbers, at the whole width: beside them in a narrow column, its label ran to a
            # word a line
            made |= {key: gr.Checkbox(value=value, label=PARAM_LABELS.get(key, key))
                     for key, value in defaults.items() if isinstance(value, bool)}
            components += [made[key] for key in defaults]
        groups[name] = group
    return ParamInputs(groups=groups, keys=keys, components=components)


def default_param_values() -> list:
    """The flat list of default parameter values, in `ParamInputs.components` order."""
    return [value for name in SCHEDULE_NAMES for value in default_params(name).values()]


def split_param_values(values: Sequence) -> dict[str, list]:
    """The flat list of all parameter input values (`ParamInputs.components` order) → {schedule: its values}."""
    counts = {name: len(default_params(name)) for name in SCHEDULE_NAMES}
    if len(values) != sum(counts.values()):
        raise ValueError(f"expected {sum(counts.values())} parameter values, got {len(values)}")
    out, i = {}, 0
    for name, n in counts.items():
        out[name] = list(values[i : i + n])
        i += n
    return out


def params_from_values(name: str, values: Sequence) -> dict:
    """The values of schedule ``name``'s inputs → keyword parameters for make_schedule."""
    if name not in SCHEDULE_NAMES:
        raise InputError(f"Unknown noise schedule {name!r}; choose one from the list.")
    keys = tuple(default_params(name))
    if len(values) != len(keys):
        raise ValueError(f"{name}: expected {len(keys)} parameter values, got {len(values)}")
    params = {}
    for key, value in zip(keys, values):
        if value is None or value == "":
            raise InputError(f"{SCHEDULE_LABELS[name]}: {PARAM_LABELS.get(key, key)} is empty; enter a value.")
        params[key] = value
    return params


# A notice box's colours, (background, border, text), on the light theme and on the dark one: each text ≥ 7:1 on its
# background (the light boxes had glared on the dark theme's pages, a projector's bright patches)
NOTICE_COLOURS = {
    "ok": (("#e8f5e9", "1px solid #66bb6a", "#1b5e20"), ("#10291a", "1px solid #43a047", "#a5d6a7")),
    "warn": (("#fff3e0", "2px solid #fb8c00", "#8a3c00"), ("#33210a", "2px solid #fb8c00", "#ffcc80")),
}
NOTICE_CSS = ".notice {padding: 8px 12px; border-radius: 6px}\n" + "\n".join(
    f"{theme}.notice-{tone} {{background: {back}; border: {border}; color: {text}}}"
    for tone, modes in NOTICE_COLOURS.items() for theme, (back, border, text) in zip(("", ".dark "), modes))


def notice_html(inner_html: str, tone: str) -> str:
    """A coloured box ("ok": green, "warn": orange) around ``inner_html``, in the theme's colours (`NOTICE_CSS`; its
    text, subscripts too, takes the box's colour: the app's `.notice *` inherit)."""
    if tone not in NOTICE_COLOURS:
        raise ValueError(f"unknown tone {tone!r}; choose one of {', '.join(NOTICE_COLOURS)}")
    return f'<div class="notice notice-{tone}">{inner_html}</div>'


SHOWN = "{__type__: 'update', visible: true}"  # an update of a component, written in the page


def shown_js(shown: str, kept_in: str | None = None) -> str:
    """An event's script that shows a column or group where the JavaScript ``shown`` (of the event's inputs,
    ``args``) holds and hides it otherwise, in the page: were it a handler's output, the drawing boxes within it would
    upload their pictures at every event (`own_points.box_reader`). With ``kept_in``, the elem_id of a drawing box
    within: once the box was shown, hidden out of sight with its strokes ("hidden"; hidden with false, the box was
    drawn again from scratch when shown, without them); before, false: Gradio 6.31 *shows* a column whose first
    hiding is "hidden"."""
    hidden = "false" if kept_in is None else f"(document.querySelector('#{kept_in}') ? 'hidden' : false)"
    return f"(...args) => ({{__type__: 'update', visible: ({shown}) ? true : {hidden}}})"


def show_when(trigger: Any, *components: gr.components.Component) -> None:
    """Make ``components`` (created hidden: an empty plot or file box says nothing) visible when ``trigger`` (a
    bound event listener such as ``button.click`` or ``file.change``) fires: at once, before the work that fills
    them, so that its progress shows on them. In the page alone: it had been a request to the server each time, at
    every key of a slider that triggers it."""
    js = f"() => [{', '.join([SHOWN] * len(components))}]" if len(components) > 1 else f"() => ({SHOWN})"
    trigger(None, None, list(components), js=js, queue=False, show_progress="hidden")


def redraw_after_release_alone(slider: gr.Slider, elem_id: str) -> gr.Button:
    """A hidden button (``elem_id``) that a release of ``slider`` clicks only when the slider's value is not the one
    its last input sent, as after its ↺ (which sends a release alone), or its box was left empty (Gradio then puts
    the minimum in it, which the click draws). A key on a slider sends an input and then a release of the same value
    (`KEYBOARD_RELEASE_JS`), and a view drawn on both had been computed, sent and drawn twice at every key. Draw on
    ``slider.input`` and on the button's click."""
    button = gr.Button("Draw at this value", visible="hidden", elem_id=elem_id)
    key = json.dumps(elem_id)
    slider.input(None, slider, None, js=f"(v) => {{ (window.ddpmLastInput ??= {{}})[{key}] = v; return []; }}",
                 queue=False)
    empty = "v === null || v === undefined || String(v).trim() === ''"
    slider.release(None, slider, None, queue=False, js=(
        f"(v) => {{ if ({empty} || (window.ddpmLastInput ?? {{}})[{key}] !== v) "
        f"document.getElementById({key})?.click(); return []; }}"))
    return button


def focus_js(elem_id: str) -> str:
    """The `js` of an event that gives the focus to the element ``elem_id`` without scrolling: a button that hides
    itself (Stop, Clear) had dropped the focus to the page, and a keyboard user back to its top."""
    return "() => { document.getElementById(" + repr(elem_id) + ")?.focus({preventScroll: true}); return []; }"


def scroll_into_view_js(elem_id: str) -> str:
    """The `js` of an event that scrolls the element ``elem_id`` into view (as little as needed, smoothly): the
    output that an event fills, when the controls column has scrolled it away."""
    return ("() => { document.getElementById(" + repr(elem_id)
            + ")?.scrollIntoView({block: 'nearest', behavior: 'smooth'}); return []; }")


def typed_slider(*args, elem_id: str, **kwargs) -> gr.Slider:
    """A `gr.Slider` whose number box reaches the handler as typed (empty, −3, 1.5), for the handler to check and
    name the field (`whole_number`). Gradio's own check said "Value -3 is less than minimum value 0." without naming
    the field, and failed with a bare "Error" on an empty box.

    Known by its ``elem_id`` (`_TYPED_SLIDERS`): Gradio rebuilds a page's copy of a component from its constructor
    arguments whenever a handler updates it (the t slider's maximum after a change of T), which dropped a patch on
    the instance, and a t sent just before such a change then failed Gradio's check ("Value 700 is greater than
    maximum value 50"). (Not a subclass: Gradio writes a .pyi stub beside the module of every Component subclass.)"""
    _TYPED_SLIDERS.add(elem_id)
    return gr.Slider(*args, elem_id=elem_id, **kwargs)


_TYPED_SLIDERS: set[str] = set()
_slider_preprocess = gr.Slider.preprocess


def _preprocess_slider(self: gr.Slider, payload):
    """`gr.Slider.preprocess`, but a `typed_slider`'s value goes to its handler as it is, and another slider's value
    that Gradio's check refuses is refused in words that name the slider (an empty box, or text from an API call,
    gave a bare "Error"; a number out of range did not say which slider)."""
    if self.elem_id in _TYPED_SLIDERS:
        return payload
    try:
        return _slider_preprocess(self, payload)
    except (TypeError, ValueError, gr.Error):  # Gradio's TypeError for text, its own Error for a number out of range
        name = self.label or "A slider"
        raise InputError(f"{name} must be a number from {self.minimum:g} to {self.maximum:g}, got "
                         f"{shown(payload)}.") from None


gr.Slider.preprocess = _preprocess_slider


def shown(value) -> str:
    """A value as an error message repeats it: its repr, cut to 40 characters (an API call's 100 kB string came back
    whole)."""
    return short_text(repr(value))


def whole_number(value, name: str, lo: int, hi: int | None = None) -> int:
    """A numeric input → int in [lo, hi] (hi None: no upper bound), or gr.Error saying what is wrong."""
    bound = f"from {lo} to {hi}" if hi is not None else f"≥ {lo}"
    if value is None or value == "":
        raise InputError(f"{name} is empty; enter a whole number {bound}.")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a whole number {bound}, got {shown(value)}.") from None
    if not math.isfinite(number) or not number.is_integer() or not (lo <= number and (hi is None or number <= hi)):
        raise InputError(f"{name} must be a whole number {bound}, got {shown(value)}.")
    return int(number)


def check_seed(seed) -> int:
    """A noise seed box's value (0 … MAX_SEED), or gr.Error."""
    return whole_number(seed, "The seed", 0, MAX_SEED)


def number_between(value, name: str, lo: float, hi: float) -> float:
    """A numeric input → float in [lo, hi], or gr.Error saying what is wrong."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not lo <= number <= hi:  # NaN too
        raise InputError(f"{name} must be a number from {lo:g} to {hi:g}, got {shown(value)}.")
    return number


def check_T(T) -> int:
    """The T input → int, or gr.Error when empty/not whole/out of range."""
    return whole_number(T, "T", 2, MAX_T)


def reach_noise_advice(schedule: NoiseSchedule) -> str:
    """What makes this schedule's chain end in noise (ᾱ_T ≤ 1e-3), in words: its β cap holds ᾱ_T up where ᾱ is
    made to reach 0 (cosine, sigmoid in ᾱ-space), and more steps under the cap help; β scaled by 1000/T keeps Σβ,
    and so ᾱ_T, about the same for every T."""
    if "max_beta" in schedule.params:
        return "increase T or the β cap"
    if schedule.params.get("scale_with_T"):
        return "raise β_end (with β scaled by 1000/T, T hardly changes ᾱ_T)"
    if "scale_with_T" in schedule.params and _scaling_allowed(schedule):  # the box is there, unticked: the quickest way out
        return f"tick {PARAM_NAMES_IN_WORDS['scale_with_T']}, or increase T or β_end"
    return "increase T or β_end"  # at T ≤ 20 scaling would push β_end past 1, and ticking the box was refused


def _scaling_allowed(schedule: NoiseSchedule) -> bool:
    """Whether the schedule with β scaled by 1000/T is valid (β_end × 1000/T < 1)."""
    try:
        make_schedule(schedule.name, schedule.T, **{**schedule.params, "scale_with_T": True})
    except ValueError:
        return False
    return True


def build_schedule(name: str, T, all_values: Sequence) -> NoiseSchedule:
    """make_schedule(name, T, **params) from the values of *all* parameter inputs (`ParamInputs.components`
    order); invalid input → gr.Error with core's message."""
    T = check_T(T)
    if name not in SCHEDULE_NAMES:
        raise InputError(f"Unknown noise schedule {name!r}; choose one from the list.")
    params = params_from_values(name, split_param_values(all_values)[name])
    try:
        return make_schedule(name, T, **params)
    except ValueError as exc:
        message = re.sub(rf"\b({'|'.join(PARAM_NAMES_IN_WORDS)})\b", lambda m: PARAM_NAMES_IN_WORDS[m[1]], str(exc))
        # by the name the list shows ("sigmoid in β-space schedule: …"), not the identifier ("Sigmoid_beta schedule")
        message = re.sub(rf"^{name} schedule\b", f"{SCHEDULE_LABELS[name].split(' (')[0]} schedule", message)
        raise InputError(message[0].upper() + message[1:]) from None
