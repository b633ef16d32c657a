"""The page-wide CSS and JavaScript that concern plots: pictures drawn sharp or smooth, plots in the dark theme and on a
phone, and patches of plotly that spare the browser redraws of dropped plots, free those plots, and fit grids to their
width. `app.CSS` and `app.JS` put them in every page."""

from __future__ import annotations

from app.panel_grid import GRID_TITLE_SIZE

# `image_figure`: pixels, not a blur; `points_picture_figure`'s dots (a picture above the axes): smooth when scaled
PICTURE_CSS = (".js-plotly-plot .imagelayer image {image-rendering: pixelated}\n"
               ".js-plotly-plot .layer-above .imagelayer image {image-rendering: auto}")

# On the dark theme the plots take the page's colours (white boxes had glared on a projector). Plotly writes its
# colours as inline styles, which `!important` overrides: the white paper, plot area, legend and label boxes take the
# block's background; text in plotly's default #444 the theme's text colour, the notes in grey (#555, #666) its
# subdued one; grid lines a dark grey, zero lines a light one. Coloured marks and labels keep their colours, and the
# hover labels theirs (plotly writes #444 on a light trace's box there).
_PLOT_TEXT = ".dark .js-plotly-plot text:not(.hoverlayer *)"
DARK_THEME_CSS = "\n".join([
    ".dark .js-plotly-plot .main-svg {background: transparent !important}",
    ".dark .js-plotly-plot rect.bg[style*='fill: rgb(255, 255, 255)'] {fill: var(--block-background-fill) !important}",
    f"{_PLOT_TEXT}[style*='fill: rgb(68, 68, 68)'] {{fill: var(--body-text-color) !important}}",
    f"{_PLOT_TEXT}[style*='fill: rgb(85, 85, 85)'], {_PLOT_TEXT}[style*='fill: rgb(102, 102, 102)'] "
    "{fill: var(--body-text-color-subdued) !important}",
    ".dark .js-plotly-plot .gridlayer path {stroke: #374151 !important}",
    ".dark .js-plotly-plot .zerolinelayer path {stroke: #9ca3af !important}",
    # the training data drawn beneath the Forward tab's 2D x_t, in light grey (a picture below the gridlines, in a plot
    # with a picture above them: not a picture alone, as MNIST's x_t), dimmed: it outshone the points
    ".dark .js-plotly-plot:has(.layer-above .imagelayer image) .layer-subplot .imagelayer image {opacity: 0.45}",
])

# On a phone (a window at most `NARROW_SCREEN_PX` wide) plots are 300–400 px wide, and text sized for a projector no
# longer fits: a legend entry with its citation was cut off at the plot's edge. There legends and axis titles are drawn
# smaller; plotly measures them as drawn, so their layout follows. (A grid's column titles are fitted to their columns
# at any width: `FIT_GRIDS_JS`.)
NARROW_SCREEN_PX = 480
# On a phone: smaller legends and axis titles; no plot toolbars, which a touch screen shows at all times and which
# covered the grids' column titles ("t = 750" on Schedules) and the top of the plots (a finger zooms without them)
NARROW_SCREEN_CSS = (
    f"@media (max-width: {NARROW_SCREEN_PX}px) {{\n"
    "  .js-plotly-plot .legendtext, .js-plotly-plot .g-xtitle text, .js-plotly-plot .g-ytitle text "
    "{font-size: 11px !important}\n"
    "  .js-plotly-plot .modebar-container {display: none !important}\n"
    "}"
)

# Runs a patch of plotly as soon as the page has it, or at once if it has it already. Gradio loads plotly with the
# first plot and sets window.Plotly before it draws; every patch given before then is made then. Each patch guards
# itself against being made twice.
ON_PLOTLY_JS = """(patch) => {
  const patches = window.plotlyPatches || (window.plotlyPatches = []);
  patches.push(patch);
  if (window.Plotly) patch(window.Plotly);
  else if (patches.length === 1) {
    let plotly;
    Object.defineProperty(window, 'Plotly', {
      configurable: true, get: () => plotly, set: (value) => { plotly = value; patches.forEach((p) => p(value)); },
    });
  }
}"""

# Gradio draws a new figure of a gr.Plot twice: its plot first redraws the old plot with it (`Plotly.react`), then drops
# that plot and draws the figure on a new one, so each update cost two full drawings, one thrown away. Here a redraw of a
# plot that is already drawn (and Gradio's `Plots.resize` after it) waits until the code that asked for it has run, and
# is left out if the plot has left the page by then; a new plot is drawn at once. (`Plotly.Plots` is plotly's public
# copy of its plots module: plotly's own resize on a resize of the window does not pass through it.) A Forward scrub of t: 1.3–1.6× quicker, the browser's
# long tasks 35–45 % less time (`bench/bench_browser.py`).
REDRAW_KEPT_PLOTS_ONLY_JS = """() => {
  const redrawKeptPlotsOnly = (Plotly) => {
    if (!Plotly || Plotly.redrawsKeptPlotsOnly) return;
    Plotly.redrawsKeptPlotsOnly = true;
    const react = Plotly.react, resize = Plotly.Plots.resize;
    const ifKept = (gd, draw) => new Promise((resolve) => queueMicrotask(() => resolve(gd.isConnected ? draw() : gd)));
    Plotly.react = function (gd, ...args) {
      const drawn = gd instanceof HTMLElement && gd._fullLayout;
      return drawn ? ifKept(gd, () => react.call(Plotly, gd, ...args)) : react.call(Plotly, gd, ...args);
    };
    Plotly.Plots.resize = function (gd) {
      const redraw = () => resize.call(Plotly.Plots, gd);
      return gd instanceof HTMLElement ? ifKept(gd, redraw) : redraw();
    };
  };
  (ON_PLOTLY)(redrawKeptPlotsOnly);
}""".replace("ON_PLOTLY", ON_PLOTLY_JS)

# A plot Gradio drops is not `Plotly.purge`d, so each old plot stayed alive through its window "resize" listener
# (plotly's responsive mode): the page grew by one plot per update, 1.2 MB/s while a run trained, and a resize of the
# window woke every one of them. Remove that listener from each plot that has left the page (2 s later: plotly may still
# be finishing its drawing, and a plot that Svelte only moved is back in the page by then). Not `Plotly.purge`: its
# pending redraws would then fail on the purged plot.
FREE_DROPPED_PLOTS_JS = """() => {
  const free = (el) => setTimeout(() => {
    if (el.isConnected || !el._responsiveChartHandler) return;
    window.removeEventListener('resize', el._responsiveChartHandler);
    delete el._responsiveChartHandler;
  }, 2000);
  new MutationObserver((records) => {
    for (const record of records) {
      for (const node of record.removedNodes) {
        if (!(node instanceof HTMLElement)) continue;  // plotly's own SVG redraws are not dropped plots
        if (node.classList.contains('js-plotly-plot')) free(node);
        else node.querySelectorAll('.js-plotly-plot').forEach(free);
      }
    }
  }).observe(document.body, {childList: true, subtree: true});
}"""

# A grid (`noised_grid_figure`) is laid out for square panels `cell_px` wide, its column titles ("t = 250", "x̂₀
# predicted") at `GRID_TITLE_SIZE`. In a narrower window plotly draws each panel smaller, centred in its `cell_px` of
# height, and never shrinks text: on a phone the rows were bands of blank with the panels in their middle, and the
# titles ran into each other ("t = 750t = 1000"). Here a grid (a figure with ``layout.meta.grid``) is laid out again for
# the width its panels get, as the Python does: each row its label's band, its panels and a gap; the column titles
# at the largest size at which the widest fits its column (less `GRID_TITLE_GAP`), on two lines where one line would
# be smaller than `GRID_TITLE_ONE_LINE_SMALLEST` px and two give a larger size, then the grid's short titles if it has
# them and they are larger still (the step anatomy's seven columns on a phone), never under `GRID_TITLE_SMALLEST` px;
# the rows' labels ("cosine (Nichol & Dhariwal 2021)") no wider than the grid. A grid with ``window_less`` is also made
# no taller than the window less that many pixels, its panels no smaller than ``shortest_cell`` (a drag of its slider
# redraws it, at the window's height then).
# That is done to the figure before it is drawn (`Plotly.react`, at the plot's width then), and again after plotly's
# own redrawing on a resize of the window (plotly_afterplot: drawn once more where the layout is off).
GRID_TITLE_SMALLEST, GRID_TITLE_ONE_LINE_SMALLEST, GRID_TITLE_GAP = 8, 11, 6  # px
FIT_GRIDS_JS = """() => {
  const SIZE = GRID_TITLE_SIZE, SMALLEST = GRID_TITLE_SMALLEST, ONE_LINE = GRID_TITLE_ONE_LINE_SMALLEST;
  const GAP = GRID_TITLE_GAP, FAMILY = '"Open Sans", verdana, arial, sans-serif';  // plotly's
  const context = document.createElement('canvas').getContext('2d');
  const width = (text, family) => {  // of its longest line, at SIZE
    context.font = `${SIZE}px ${family}`;
    return Math.max(...text.split('<br>').map((line) => context.measureText(line.replace(/<[^>]*>/g, '')).width));
  };
  const twoLines = (text, family) => {  // broken at the space that leaves the shorter longest line (not in markup)
    if (text.includes('<')) return text;
    const words = text.split(' ');
    const splits = words.slice(1).map((_, k) => words.slice(0, k + 1).join(' ') + '<br>' + words.slice(k + 1).join(' '));
    return [text, ...splits].map((t) => [width(t, family), t]).reduce((best, next) => (next[0] < best[0] ? next : best))[1];
  };
  const fitted = (layout, plotWidth) => {  // the layout's changes for panels in a plotting area this wide
    const g = layout && layout.meta && layout.meta.grid;
    if (!g || !(plotWidth > 0)) return null;
    const m = layout.margin;  // (not the axes' domains: plotly narrows those of square panels in place)
    const rowsRoom = window.innerHeight - g.window_less - m.t - m.b - g.rows * g.band - (g.rows - 1) * g.gap;
    const tall = g.window_less ? Math.max(g.shortest_cell, Math.floor(rowsRoom / g.rows)) : g.cell;
    const cell = Math.max(1, Math.min(g.cell, Math.floor(plotWidth * g.panel), tall));
    const area = g.rows * (g.band + cell) + (g.rows - 1) * g.gap;
    const top = (r) => 1 - (r * (g.band + cell + g.gap) + g.band) / area;
    const update = {height: area + m.t + m.b};
    for (let i = 1; i <= g.rows * g.cols; i++) {
      const t = top(Math.floor((i - 1) / g.cols)), left = g.lefts[(i - 1) % g.cols], suffix = i === 1 ? '' : i;
      update[`xaxis${suffix}.domain`] = [Math.max(left, 0), Math.min(left + g.panel, 1)];
      update[`yaxis${suffix}.domain`] = [Math.max(t - cell / area, 0), Math.min(t, 1)];
    }
    const family = (layout.font && layout.font.family) || FAMILY;
    const labelSize = Math.max(SMALLEST, Math.min(g.label_size,  // a row's label: as wide as the grid at most
      Math.floor(SIZE * plotWidth / Math.max(0, ...g.labels.map((t) => width(t, family))))));
    g.label_rows.forEach((r, k) => {
      update[`annotations[${g.cols + k}].y`] = top(r);
      update[`annotations[${g.cols + k}].font.size`] = labelSize;
    });
    const room = plotWidth * (g.cols > 1 ? g.lefts[1] - g.lefts[0] : g.panel) - GAP;  // between column centres
    const sizeOf = (texts) => Math.min(SIZE, Math.floor(SIZE * room / Math.max(...texts.map((t) => width(t, family)))));
    let texts = g.titles, size = sizeOf(texts);
    for (const titles of [g.titles, g.short_titles || g.titles]) {  // the short ones where even two lines are small
      if (size >= ONE_LINE) break;
      for (const tried of [titles, titles.map((t) => twoLines(t, family))]) {
        const triedSize = sizeOf(tried);
        if (triedSize > size) [texts, size] = [tried, triedSize];
      }
    }
    texts.forEach((text, i) => {
      update[`annotations[${i}].text`] = text;
      update[`annotations[${i}].font.size`] = Math.max(SMALLEST, size);
    });
    return update;
  };
  const apply = (layout, update) => Object.entries(update).forEach(([key, value]) => {  // plotly's keys: "a[2].b.c"
    const keys = key.replace(/\\[(\\d+)\\]/g, '.$1').split('.'), last = keys.pop();
    keys.reduce((o, k) => (o[k] = o[k] || {}), layout)[last] = value;
  });
  const drawnAs = (gd, update) => Math.abs(update.height - gd._fullLayout.height) < 1  // its domains follow its height
    && gd.layout.annotations.every((a, i) => [`annotations[${i}].text`, `annotations[${i}].font.size`]
      .every((key, j) => !(key in update) || update[key] === (j ? a.font.size : a.text)));
  const follow = (Plotly, gd) => {  // a resize of the window: plotly redraws at the new width, then the grid follows
    if (!(gd instanceof HTMLElement) || !gd.on || gd.fitsGrid) return;
    gd.fitsGrid = true;
    gd.on('plotly_afterplot', () => {
      const update = gd._fullLayout && fitted(gd.layout, gd._fullLayout._size.w);
      if (!update || drawnAs(gd, update)) return;
      const layout = structuredClone(gd.layout);  // not relayout: a new height there fixes the width too
      apply(layout, update);
      Plotly.react(gd, gd.data, layout);
    });
  };
  (ON_PLOTLY)((Plotly) => {
    if (!Plotly || Plotly.fitsGrids) return;
    Plotly.fitsGrids = true;
    const react = Plotly.react;
    Plotly.react = function (gd, data, layout, ...rest) {
      if (!(gd instanceof HTMLElement && layout && layout.meta && layout.meta.grid)) {
        return react.call(Plotly, gd, data, layout, ...rest);
      }
      const m = layout.margin, update = fitted(layout, gd.clientWidth - m.l - m.r);  // none while hidden
      if (update) apply(layout, update);
      return Promise.resolve(react.call(Plotly, gd, data, layout, ...rest)).then((r) => { follow(Plotly, gd); return r; });
    };
  });
}""".replace("ON_PLOTLY", ON_PLOTLY_JS).replace("GRID_TITLE_SIZE", str(GRID_TITLE_SIZE)) \
    .replace("GRID_TITLE_SMALLEST", str(GRID_TITLE_SMALLEST)) \
    .replace("GRID_TITLE_ONE_LINE_SMALLEST", str(GRID_TITLE_ONE_LINE_SMALLEST)) \
    .replace("GRID_TITLE_GAP", str(GRID_TITLE_GAP))

# Runs once in each page (`launch(js=...)`): all of the above.
PLOT_PAGE_JS = f"() => {{ ({REDRAW_KEPT_PLOTS_ONLY_JS})(); ({FREE_DROPPED_PLOTS_JS})(); ({FIT_GRIDS_JS})(); }}"
