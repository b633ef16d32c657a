"""What the page adds for people who use it by keyboard (a lecturer's clicker, a student without a mouse) or with a
screen reader: focus that can be seen on every control, a Tab order without the plots' toolbars, and status lines
that are read out when they change.
"""

from __future__ import annotations

FOCUS_COLOR = "#6366f1"  # the players' focus ring (app.player), 4.5:1 on white

# Gradio's sliders drew no focus at all (a focused slider looked exactly like the others, so the lecturer could not see
# which one the arrow keys would move), and its radios and checkboxes only a 1-px ring. Their min and max labels were
# Soft's grey, 2.5:1 on white; now the help text's colour (app.THEME).
FOCUS_CSS = f"""
input[type=range]:focus-visible {{outline: 2px solid {FOCUS_COLOR} !important; outline-offset: 4px; border-radius: 4px}}
input[type=radio]:focus-visible, input[type=checkbox]:focus-visible {{outline: 2px solid {FOCUS_COLOR} !important;
  outline-offset: 2px}}
[data-testid=min-value], [data-testid=max-value] {{color: var(--block-info-text-color) !important}}
"""

# Gradio fades out a hidden progress tracker (show_progress="hidden") with opacity 0 only, so a screen reader still read
# what it held: after Stop, the status's live region could say "Error" (the cancelled run's tracker, for a moment).
# Hidden is now hidden for a reader too.
READER_CSS = "[data-testid=status-tracker].hide {visibility: hidden}"

LIVE_STATUS = "live-status"  # elem_classes of a status line that a screen reader reads out when it changes
TOOLBAR_KEPT = "Download plot as a PNG"  # the one button of a plot's toolbar left in the Tab order

# Runs once in each page. Each plot's toolbar put ten buttons and a link to plotly.com in the Tab order (53 of the
# Schedules tab's 78 Tab stops: 51 presses from one control to the next); all but the download leave it, and stay a
# click away; so do the scrolling lists of open dropdowns. A status line (elem_classes LIVE_STATUS) becomes a polite
# live region. Both are done to what is on the page and to what a tab, a panel or plotly adds later (only HTML
# elements: plotly's SVG redraws are skipped). A status whose content is marked ``data-busy`` (a training run's
# progress, each second) is aria-busy, read out once it is not (Gradio may update the status in place: the mark's
# removal is an attribute's change, not new nodes). An accordion's header says whether it is open (aria-expanded, kept
# as it opens and closes: Gradio's said neither), and each plot is a figure named by its label (a reader met a pile of
# tick numbers without knowing what they drew).
KEYBOARD_AND_READER_JS = """() => {
  const TOOLBAR = '.modebar-btn', LIVE = '.LIVE_STATUS';
  // Gradio gives a component's classes to its block and to the element inside: the outermost is the region
  const outermost = (element) => {
    let status = element.closest(LIVE), up;
    while (status && (up = status.parentElement && status.parentElement.closest(LIVE))) status = up;
    return status;
  };
  let labels = 0;
  const tidy = (node) => {
    const all = (selector) => [...(node.matches(selector) ? [node] : []), ...node.querySelectorAll(selector)];
    for (const button of all(TOOLBAR)) if (button.dataset.title !== 'TOOLBAR_KEPT') button.tabIndex = -1;
    // a dropdown's open list, when it scrolls, is a Tab stop of its own in Chromium; Tab from the dropdown moved
    // there, the list closed as the box lost focus, and focus was left on the page: the next control needed two Tabs
    for (const list of all('ul[role=listbox]')) list.tabIndex = -1;
    for (const header of all('button.label-wrap')) {
      if (header.hasAttribute('aria-expanded')) continue;
      const mark = () => header.setAttribute('aria-expanded', String(header.classList.contains('open')));
      mark();
      new MutationObserver(mark).observe(header, {attributes: true, attributeFilter: ['class']});
    }
    for (const plot of all('.js-plotly-plot')) {
      const label = plot.closest('.block')?.querySelector('[data-testid=block-label]');
      if (!label || plot.hasAttribute('aria-labelledby')) continue;
      label.id ||= `plot-label-${++labels}`;
      plot.setAttribute('role', 'figure');
      plot.setAttribute('aria-labelledby', label.id);
    }
    for (const status of all(LIVE)) {
      if (status.hasAttribute('aria-live') || outermost(status) !== status) continue;
      status.setAttribute('role', 'status');
      status.setAttribute('aria-live', 'polite');
    }
  };
  tidy(document.body);
  new MutationObserver((records) => {
    for (const record of records) {
      for (const node of record.addedNodes) if (node instanceof HTMLElement) tidy(node);
      const status = record.target instanceof HTMLElement && outermost(record.target);
      if (status) status.setAttribute('aria-busy', String(!!status.querySelector('[data-busy]')));
    }
  }).observe(document.body, {childList: true, subtree: true, attributes: true, attributeFilter: ['data-busy']});
}""".replace("LIVE_STATUS", LIVE_STATUS).replace("TOOLBAR_KEPT", TOOLBAR_KEPT)
