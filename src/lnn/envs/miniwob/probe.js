// In-page helpers of lnn's MiniWoB env, installed as window.lnn after a task page loads.
// Shared DOM helpers first, then the per-task oracles built on them (lnn.oracle(task)).
// Geometry is normalised to the task area, the viewport's top-left 160x210 CSS px where #wrap sits (as in
// MiniWoB's own env, what the agent sees and where it clicks stay the same even if the page scrolls):
// (0, 0) top-left, (1, 1) bottom-right.
(() => {
  const state = {};  // last return value of each hooked task function, cleared at every reset

  // Wrap the task page's global function `name` so that its return value lands in state[name]. Task
  // pages call these helpers by global name from genProblem, so the wrapper sees every episode; the
  // answer many tasks keep in local variables (the number of sides drawn, the shape asked for) is then
  // readable without changing the task's code.
  function hook(name) {
    const f = window[name];
    if (typeof f !== 'function') throw new Error(`cannot hook ${name}: not a global function`);
    if (f.lnnHooked) return;
    const wrapped = function () {
      const result = f.apply(this, arguments);
      state[name] = result;
      return result;
    };
    wrapped.lnnHooked = true;
    window[name] = wrapped;
  }

  const AREA = { left: 0, top: 0, right: 160, bottom: 210, width: 160, height: 210 };
  const q = (selector) => document.querySelector(selector);
  const qa = (selector) => Array.from(document.querySelectorAll(selector));
  const text = (el) => el.textContent.replace(/\s+/g, ' ').trim();
  const query = () => text(q('#query'));
  // The text between the first pair of double quotes in the instruction: most tasks quote their target.
  const quoted = () => { const m = /"([^"]*)"/.exec(q('#query').textContent); return m ? m[1] : null; };
  const bold = () => { const b = q('#query .bold'); return b ? text(b) : null; };

  function visible(el) {
    if (!el) return false;
    const r = el.getBoundingClientRect();
    if (r.width < 1 || r.height < 1) return false;
    const style = getComputedStyle(el);
    return style.visibility !== 'hidden' && style.display !== 'none' && el.getClientRects().length > 0;
  }
  const firstVisible = (els) => els.find(visible) || null;
  const byText = (selector, wanted) => firstVisible(qa(selector).filter((el) => text(el) === wanted));
  // every visible one wins: the first is clicked, the others are as right
  const anyOf = (els) => { const [click, ...others] = els.filter(visible); return { click, others }; };

  // The element's box in task-area coordinates, clipped to the task area.
  function box(el) {
    const w = AREA, r = el.getBoundingClientRect();
    const clip = (v) => Math.min(1, Math.max(0, v));
    return [clip((r.left - w.left) / w.width), clip((r.top - w.top) / w.height),
            clip((r.right - w.left) / w.width), clip((r.bottom - w.top) / w.height)];
  }

  // A point of the element that a real click would hit (the element or one of its descendants is on
  // top there): the centre when possible, else the nearest such point of a 9x9 grid over its box.
  // Null when the element is covered everywhere or outside the task area.
  function hitPoint(el) {
    const w = AREA, r = el.getBoundingClientRect();
    const x0 = Math.max(r.left, w.left), x1 = Math.min(r.right, w.right);
    const y0 = Math.max(r.top, w.top), y1 = Math.min(r.bottom, w.bottom);
    if (x1 - x0 < 1 || y1 - y0 < 1) return null;
    const hits = (x, y) => { const e = document.elementFromPoint(x, y); return e !== null && (e === el || el.contains(e)); };
    const cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
    const candidates = [];
    for (let i = 1; i < 10; i++) for (let j = 1; j < 10; j++) {
      candidates.push([x0 + (x1 - x0) * i / 10, y0 + (y1 - y0) * j / 10]);
    }
    candidates.sort((a, b) => Math.hypot(a[0] - cx, a[1] - cy) - Math.hypot(b[0] - cx, b[1] - cy));
    const p = candidates.find(([x, y]) => hits(x, y));
    return p ? [(p[0] - w.left) / w.width, (p[1] - w.top) / w.height] : null;
  }

  // Resolves once every image the page can show is loaded, so the first screenshot of an episode does
  // not miss an icon still on its way: <img> elements, and the url(...) images of the task's style sheets
  // (those load only when an element first uses them, e.g. navigate-tree's folder icons). The style
  // sheets are scanned once per page load.
  let styleImages = null;
  function loadStyleImages() {
    const urls = new Set();
    for (const sheet of Array.from(document.styleSheets)) {
      let rules;
      try { rules = Array.from(sheet.cssRules); } catch (e) { continue; }  // not readable: skip
      for (const rule of rules) {
        for (const m of (rule.cssText || '').matchAll(/url\(["']?([^"')]+)["']?\)/g)) {
          if (!m[1].startsWith('data:')) urls.add(new URL(m[1], sheet.href || location.href).href);
        }
      }
    }
    return Promise.all(Array.from(urls).map((url) => { const img = new Image(); img.src = url; return img.decode().catch(() => null); }));
  }
  function imagesLoaded() {
    styleImages = styleImages || loadStyleImages();
    const pending = Array.from(document.images).filter((img) => !img.complete).map((img) => new Promise((done) => {
      img.addEventListener('load', done, { once: true });
      img.addEventListener('error', done, { once: true });
    }));
    return Promise.all([styleImages, ...pending]).then(() => pending.length);
  }

  // What the env reads after every action.
  const utterance = () => { const u = core.getUtterance(); return typeof u === 'string' ? u : u.utterance; };
  const status = () => ({
    done: WOB_DONE_GLOBAL, raw: WOB_RAW_REWARD_GLOBAL, reward: WOB_REWARD_GLOBAL,
    reason: WOB_REWARD_REASON == null ? null : String(WOB_REWARD_REASON), ready: WOB_TASK_READY !== false,
    utterance: utterance(),
  });

  // Start a seeded episode: stop a running one (its end-of-episode timer included), seed Math.random,
  // then generate the problem the way the task's START cover does.
  function reset(seed, maxTimeMs) {
    if (core.EP_TIMER !== null) core.endEpisode(0, false, 'reset');
    // the last episode's focus would show as a focus ring or caret in this one
    if (document.activeElement && document.activeElement !== document.body) document.activeElement.blur();
    for (const k of Object.keys(state)) delete state[k];
    core.EPISODE_MAX_TIME = maxTimeMs;
    Math.seedrandom(seed);
    core.startEpisodeReal();
    return status();
  }

  // After reset: wait until the task is ready (a few load assets first) and its images are loaded.
  async function settle() {
    while (WOB_TASK_READY === false) await new Promise((r) => setTimeout(r, 20));
    await imagesLoaded();
    return status();
  }

  // ---------------------------------------------------------------------------------------------
  // Oracles: task -> function returning the element the next click must land on. They read the
  // ground truth from the DOM and the instruction, or from `state` where the task keeps the answer in
  // JS only (hooks lists the global functions to wrap for that). Multi-step tasks look at the current
  // page and return the next step's target, so one function serves every step.

  const ORDINALS = { '1st': 1, '2nd': 2, '3rd': 3 };

  // The outermost collapsed folder above `el` in the file tree, as the span a click toggles.
  const folderToExpand = (el) => {
    const folders = [];  // the <li> of each enclosing folder, outermost first
    for (let li = el.closest('li').parentElement.closest('li'); li; li = li.parentElement.closest('li')) {
      folders.unshift(li);
    }
    const collapsed = folders.find((li) => !visible(li.querySelector(':scope > ul')));
    return collapsed ? collapsed.querySelector(':scope > span') : null;
  };

  // Drags. pressAt: the viewport point where a press on el lands (one a click hits); dragBy: press el
  // there and move by (dx, dy) CSS px.
  const pressAt = (el) => { const p = hitPoint(el); return p && [p[0] * AREA.width + AREA.left, p[1] * AREA.height + AREA.top]; };
  const centre = (el) => { const r = el.getBoundingClientRect(); return [(r.left + r.right) / 2, (r.top + r.bottom) / 2]; };
  const dragBy = (el, dx, dy) => { const p = pressAt(el); return { drag: [el, [p[0] + dx, p[1] + dy]] }; };
  // Drag el so that its centre lands on point [x, y].
  const dragCentreTo = (el, [x, y]) => { const c = centre(el); return dragBy(el, x - c[0], y - c[1]); };
  // Drag a sortable item onto another one, a third of its size past the centre (the list rearranges
  // once the pointer is past the middle of an item it enters).
  const dragPast = (el, other) => {
    const [ex, ey] = centre(el), [ox, oy] = centre(other), r = other.getBoundingClientRect();
    return dragCentreTo(el, [ox + Math.sign(ox - ex) * r.width / 3, oy + Math.sign(oy - ey) * r.height / 3]);
  };
  // A click 4 px inside the element's left edge, at mid-height.
  const atLeftEdge = (el) => { const r = el.getBoundingClientRect(); return { click: el, at: [r.left + 4, (r.top + r.bottom) / 2] }; };
  // Fill a text field with `value`, then press `submit`: click the field for the focus, type, and
  // erase what a wrong keystroke left (Backspace) before trying again.
  const fill = (field, value, submit) => {
    if (field.value === value) return submit;
    if (document.activeElement !== field) return field;
    return field.value ? { key: 'Backspace', field } : { type: value, field };
  };

  // Sortable lists (jQuery UI): drag `name`'s item so it lands at place where(n, its place now).
  const sortTo = (name, where) => {
    const items = qa('#sortable li'), ix = items.findIndex((li) => text(li) === name);
    return dragPast(items[ix], items[where(items.length, ix)]);
  };

  // A jQuery UI slider to `wanted` (value() reads what it shows): far off, drag the handle to where the
  // value sits; near (a drag can land a step off), click the handle for the focus, then arrow keys. Null
  // when it shows `wanted`.
  const slideTo = (slider, wanted, value) => {
    const now = value();
    if (now === wanted) return null;
    const handle = slider.querySelector('.ui-slider-handle');
    if (Math.abs(now - wanted) > 3) {
      const { min, max, orientation } = $(slider).slider('option');
      const r = slider.getBoundingClientRect(), f = (wanted - min) / (max - min);
      const [cx, cy] = centre(handle);
      return { drag: [handle, orientation === 'vertical' ? [cx, r.bottom - f * r.height] : [r.left + f * r.width, cy]] };
    }
    if (document.activeElement !== handle) return handle;
    return { key: now < wanted ? 'ArrowUp' : 'ArrowDown', field: handle };
  };

  // The grid tasks: click the svg point where() returns (svg px), then Submit.
  const onGrid = (where) => {
    if (q('#blue-circle')) return q('#subbtn');
    const p = where();
    if (!p) throw new Error('no point of the grid answers the task');
    return { click: [p[0], p[1] + 50] };
  };
  const svgCentre = (c) => { const b = c.getBBox(); return [b.x + b.width / 2, b.y + b.height / 2]; };
  const unit = ([x, y]) => { const n = Math.hypot(x, y) || 1; return [x / n, y / n]; };
  // A point 25 (else 15, 40, 8, 60) px from v along direction d whose click lands on the grid, clear of Submit.
  const awayFrom = (v, [dx, dy]) => {
    const grid = q('#svg-grid');
    const onIt = ([x, y]) => { const e = document.elementFromPoint(x, y + 50); return e && (e === grid || grid.contains(e)); };
    for (const r of [25, 15, 40, 8, 60]) {
      const p = [v[0] + r * dx, v[1] + r * dy];
      if ([[0, 0], [-4, -4], [4, 4], [-4, 4], [4, -4]].every(([ex, ey]) => onIt([p[0] + ex, p[1] + ey]))) return p;
    }
    return null;
  };
  const rgbToHex = (rgb) => rgb.match(/\d+/g).slice(0, 3).map((v) => (+v).toString(16).padStart(2, '0')).join('');
  // The jscolor field #col set to `hex` (6 digits, with or without #), then Tab to Submit and Enter: the
  // open picker covers Submit (a click there would change the colour) and stays open.
  const hexColour = (hex) => {
    hex = hex.replace('#', '').toLowerCase();
    const field = q('#col');
    if (field.value.toLowerCase() === hex) {
      const submit = q('#subbtn');
      return document.activeElement === submit ? { key: 'Enter', field: submit } : { key: 'Tab', field };
    }
    if (document.activeElement !== field) return field;
    if (field.selectionStart !== field.value.length) return { key: 'End', field };
    return field.value ? { key: 'Backspace', field } : { type: hex, field };
  };

  // The link quoted in the instruction, or the tab whose panel holds it.
  const linkOnTab = () => {
    const link = byText('#area .alink', quoted());
    if (link) return link;
    const hidden = qa('#area .alink').find((a) => text(a) === quoted());
    // click-tab-2-medium empties tab 2 after choosing the link: then tab 2 is the answer
    if (!hidden) return qa('#area .ui-tab a')[1];
    return q(`#area ul a[href="#${hidden.closest('[id^=tabs-]').id}"]`);
  };

  // The first checkbox whose state differs from the task's answer (createCheckboxes' toclick), or Submit.
  // in any order: the first wrong box is clicked, the other wrong ones are as right
  const checkboxes = () => {
    const { toclick, elems } = state.createCheckboxes;
    const wrong = [...Array(elems).keys()].map((i) => q(`#ch${i}`)).filter((c, i) => c.checked !== toclick[i]);
    return wrong.length ? { click: wrong[0], others: wrong.slice(1).filter(visible) } : q('#subbtn');
  };

  // A shapes grid's shapes (common/shapes.js) as parts: the element and what it is, as lnn.envs.PART_ATTRIBUTES names it
  const shapeParts = (grid) => grid.shapes.map((s) => ({ el: s.svg_shape.node(), type: s.type, text: s.text, color: s.color,
                                                         size: s.size === 1 ? 'large' : 'small' }));

  // Tic-tac-toe as X against the page's own opponent (a random free square 55% of the time, else its
  // determineSpace): [the chance that X wins, the square to play], looking ahead to the end of the game.
  const LINES = [[0, 1, 2], [3, 4, 5], [6, 7, 8], [0, 3, 6], [1, 4, 7], [2, 5, 8], [0, 4, 8], [2, 4, 6]];
  const won = (g, v) => LINES.some((line) => line.every((i) => g[i] === v));
  const freeOf = (g) => g.map((v, i) => v === 0 ? i : -1).filter((i) => i >= 0);
  function ticTacToe(g) {
    let best = [-1, null];
    for (const i of freeOf(g)) {
      const after = g.slice(); after[i] = 1;
      const free = freeOf(after);
      let p = won(after, 1) ? 1 : 0;
      if (!p && free.length) {
        const saved = gameState;
        gameState = after;
        const smart = determineSpace(-1, 1);
        gameState = saved;
        for (const j of free) {
          const chance = 0.55 / free.length + (smart === undefined || smart === false ? 0.45 / free.length : smart === j ? 0.45 : 0);
          const next = after.slice(); next[j] = -1;
          if (chance > 0 && !won(next, -1) && freeOf(next).length) p += chance * ticTacToe(next)[0];
        }
      }
      if (p > best[0]) best = [p, i];
    }
    return best;
  }

  const oracles = {
    // the button, wherever it is
    'click-test': () => q('#subbtn'),
    'click-test-2': () => q('#subbtn'),        // "Click button ONE."; #subbtn is ONE
    'focus-text': () => q('#tt'),
    'focus-text-2': () => q('#tt' + ORDINALS[/(\d(st|nd|rd))/.exec(query())[1]]),

    // the element labelled with the quoted text
    'click-button': () => byText('#area button', quoted()),
    'unicode-test': () => byText('#area button', quoted()),
    'click-link': () => anyOf(qa('#area .alink').filter((a) => text(a) === quoted())),  // a word twice: either
    'click-tab': () => byText('#area ul a', /Tab #\d/.exec(query())[0]),
    'click-dialog': () => q('.ui-dialog-titlebar button'),  // the "x"
    'click-dialog-2': () => quoted() === 'x' ? q('.ui-dialog-titlebar button')
                                             : byText('.ui-dialog-buttonpane button', quoted()),
    'click-widget': () => anyOf(qa(`#area [data-type="${quoted()}"]`)),  // any widget of the type
    'grid-coordinate': () => document.getElementById(bold()),  // circles have ids like "(1,-2)"
    'email-inbox-delete': () => {
      const thread = qa('#main .email-thread').find((t) => text(t.querySelector('.email-sender')) === bold());
      return thread.querySelector('.trash');
    },
    'click-color': () => {
      // the colour is named in bold, or shown as a swatch whose style holds it
      const swatch = q('#query-color');
      const color = swatch ? /background-color: ([^;]+);/.exec(swatch.getAttribute('style'))[1] : bold();
      return q(`#area .color[data-color="${color}"]`);
    },

    // drags
    'drag-box': () => {
      const small = q('#draggableSmall'), large = q('#draggableLarge');
      const [sx, sy] = centre(small), [lx, ly] = centre(large);
      return Math.hypot(sx - lx, sy - ly) > 2 ? dragCentreTo(small, [lx, ly]) : q('#subbtn');
    },
    // sortable lists: drop the item's centre on the centre of the item at the wanted place
    'drag-items': () => {
      const [, name, where] = /^Drag (.+?) (to the top|to the bottom|down by one|up by one|to the \d)/.exec(query());
      return sortTo(name, (n, ix) => ({ 'to the top': 0, 'to the bottom': n - 1, 'down by one': ix + 1,
                                        'up by one': ix - 1 }[where] ?? where.slice(-1) - 1));
    },
    'drag-items-grid': () => {
      const [, name, place, move] = /^Drag (.+?) (?:to the (.+)|(up|down|left|right) by one)\.$/.exec(query());
      const places = ['top left', 'top center', 'top right', 'center left', 'center', 'center right', 'bottom left',
                      'bottom center', 'bottom right'];
      const items = qa('#sortable li'), ix = items.findIndex((li) => text(li) === name);
      const t = move ? ix + { up: -3, down: 3, left: -1, right: 1 }[move] : places.indexOf(place);
      // The grid floats: on each mousemove the item goes after the one under the pointer if the move
      // went right or down, else before it. A diagonal against the order needs another drop point
      // (found by probing every point of the grid on failing seeds):
      const cell = (k, fx, fy) => { const r = items[k].getBoundingClientRect(); return [r.left + fx * r.width, r.top + fy * r.height]; };
      // earlier in the order but to the right: onto the right half of the item before the place
      if (t < ix && t % 3 > ix % 3) return dragCentreTo(items[ix], cell(t - 1, 0.75, 0.5));
      // later but to the left: onto the place's top-left corner
      if (t > ix && t % 3 < ix % 3) return dragCentreTo(items[ix], cell(t, 0.2, 0.2));
      return dragPast(items[ix], items[t]);
    },
    'drag-sort-numbers': () => {
      const items = qa('#sortable li'), values = items.map((li) => parseInt(text(li), 10));
      const sorted = values.slice().sort((a, b) => a - b);
      const i = values.findIndex((v, k) => v !== sorted[k]);
      if (i < 0) return q('#subbtn');
      // selection sort: the smallest of the unsorted rest goes to place i
      const j = values.indexOf(sorted[i], i);
      return dragPast(items[j], items[i]);
    },
    'drag-shapes': () => {
      const kind = { rectangles: 'rect:not(#shape-container)', circles: 'circle', triangles: 'polygon' }[/Drag all (\w+)/.exec(query())[1]];
      const outside = qa(`#area_svg ${kind}`).find((s) => !insideContainer(s));
      // d3's drag puts the shape's corner just above-left of the pointer: release at the box's centre
      return outside ? { drag: [outside, centre(q('#shape-container'))] } : q('#subbtn');
    },
    'resize-textarea': () => {
      const [dim, dir] = qa('#query .bold').map(text), initial = state.randomizeTextArea[dim];
      const now = dim === 'width' ? $('#tt').width() : $('#tt').height();
      if (dir === 'larger' ? now > initial : now < initial) return q('#submit');
      const d = dir === 'larger' ? 20 : -20;
      return dragBy(q('#area .ui-resizable-se'), dim === 'width' ? d : 0, dim === 'height' ? d : 0);
    },
    'use-slider': () => slideTo(q('#slider'), parseInt(/Select (-?\d+)/.exec(query())[1], 10), () => parseInt(text(q('#val')), 10))
                        || q('#subbtn'),
    'use-slider-2': () => {
      const wanted = JSON.parse(/\[[^\]]*\]/.exec(query())[0]);
      for (let i = 0; i < 3; i++) {
        const step = slideTo(q(`#slider-${i + 1}`), wanted[i], () => parseInt(text(q(`#val-${i + 1}`)), 10));
        if (step) return step;
      }
      return q('#subbtn');
    },

    // typing
    'enter-text-2': () => {
      const wanted = /upper case/.test(query()) ? quoted().toUpperCase() : quoted().toLowerCase();
      return fill(q('#tt'), wanted, q('#subbtn'));
    },
    'text-transform': () => fill(q('#tt'), text(q('#captcha')).replace(/ /g, ''), q('#subbtn')),
    'simple-arithmetic': () => {
      const [, a, op, b] = /(\d+) ([-+x]) (\d+)/.exec(text(q('#math-problem')));
      return fill(q('#math-answer'), String({ '+': +a + +b, '-': a - b, x: a * b }[op]), q('#subbtn'));
    },
    'simple-algebra': () => {
      const problem = text(q('#math-problem'));  // "x + 3 = 7", "x - 3 = 7" or "3 - x = 7"
      const [, a, op, b, c] = /(\S+) ([-+]) (\S+) = (\d+)/.exec(problem);
      const digit = a === 'x' ? +b : +a;
      const x = op === '+' ? c - digit : a === 'x' ? +c + digit : digit - c;
      return fill(q('#math-answer'), String(x), q('#subbtn'));
    },
    'visual-addition': () => fill(q('#math-answer'), String(qa('#math-problem .addition-block').length), q('#subbtn')),
    // date and time inputs: the value reads back as YYYY-MM-DD / HH:MM once every part is typed; clicked
    // at their left edge, the first part (month, hour) has the focus and each part moves on when full
    'enter-date': () => {
      const [m, d, y] = bold().split('/'), field = q('#tt');
      if (field.value === `${y}-${m}-${d}`) return q('#subbtn');
      return document.activeElement === field ? { type: m + d + y, field } : atLeftEdge(field);
    },
    'enter-time': () => {
      const [, h, min, half] = /Enter (\d+):(\d\d) ?([AP])M/.exec(query()), field = q('#tt');
      const hours = (+h % 12) + (half === 'P' ? 12 : 0);
      if (field.value === `${String(hours).padStart(2, '0')}:${min}`) return q('#subbtn');
      return document.activeElement === field ? { type: h.padStart(2, '0') + min + half, field } : atLeftEdge(field);
    },
    'use-autocomplete-nodelay': () => {
      const [start, end] = qa('#query .bold').map(text), field = q('#tags');
      const fits = (item) => item.startsWith(start) && item.endsWith(end || '');
      if (fits(field.value)) return q('#subbtn');
      // type the start, then pick a fitting suggestion from the menu; when none is in view (the menu runs
      // below the task area), type the rest of one
      const choice = qa('.ui-autocomplete .ui-menu-item').find((li) => fits(text(li)) && hitPoint(li));
      if (choice) return choice;
      if (field.value === start && document.activeElement === field) return { type: ITEMS.find(fits).slice(start.length), field };
      return fill(field, start, null);
    },
    'choose-date-nodelay': () => {
      const wanted = /Select (\S+) as/.exec(query())[1], [m, d, y] = wanted.split('/').map(Number);
      const field = q('#datepicker'), picker = q('#ui-datepicker-div');
      if (field.value === wanted) return q('#subbtn');
      if (!visible(picker)) return field;
      const shown = $(field).data('datepicker'), ahead = (y - shown.drawYear) * 12 + (m - 1 - shown.drawMonth);
      if (ahead) return q(ahead > 0 ? '.ui-datepicker-next' : '.ui-datepicker-prev');
      return qa('#ui-datepicker-div td a').find((a) => +text(a) === d);
    },

    // a point on the grid, then Submit: the page draws the point at (pageX, pageY - 50) of its svg
    'circle-center': () => onGrid(() => { const c = q('#svg-grid .black-circle'); return [+c.getAttribute('cx'), +c.getAttribute('cy')]; }),
    'find-midpoint': () => onGrid(() => {
      const [a, b] = qa('#svg-grid .black-circle').map(svgCentre);
      return [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2];
    }),
    'right-angle': () => onGrid(() => {
      const a = svgCentre(q('#init-black')), v = svgCentre(q('#init-blue'));
      const [dx, dy] = unit([a[0] - v[0], a[1] - v[1]]);
      return awayFrom(v, [-dy, dx]) || awayFrom(v, [dy, -dx]);
    }),
    'bisect-angle': () => onGrid(() => {
      const [a, b] = qa('#svg-grid .init-black').map(svgCentre), v = svgCentre(q('#svg-grid .init-blue'));
      const ua = unit([a[0] - v[0], a[1] - v[1]]), ub = unit([b[0] - v[0], b[1] - v[1]]);
      return awayFrom(v, unit([ua[0] + ub[0], ua[1] + ub[1]]));
    }),
    // the colour pickers' field takes typed hex: clear it, type the colour, submit
    'use-colorwheel': () => hexColour(ui_utils.colorNameToHex(/Select (\w+) with/.exec(query())[1])),
    'use-colorwheel-2': () => hexColour(rgbToHex(getComputedStyle(q('#query .cc')).backgroundColor)),

    // answers kept in JS state
    // every shape the (lossy) description fits wins
    // (`parts`: what every shape of the grid is, for a policy to be taught to see)
    'click-shape': () => {
      const grid = state.createShapes, wanted = state.chooseShape;
      return { ...anyOf(grid.shapes.filter((s) => shapes.shapeMatchesText(s, wanted)).map((s) => s.svg_shape.node())),
               parts: shapeParts(grid) };
    },
    // `look`: what the answer is read from (the look is trained there; the click goes to the button)
    'count-shape': () => ({ click: byText('#count-buttons button', String(state.chooseShape.gtshapes.length)),
                            look: q('#area_svg'), parts: shapeParts(state.createGrid) }),
    'count-sides': () => ({ click: q(`#form button[data-sides="${state.drawShape}"]`), look: q('#c') }),
    'identify-shape': () => ({ click: q(`#area-buttons button[data-type="${state.drawShapes}"]`), look: q('#area_svg') }),

    // several steps: the target when it is reachable, else what reveals it
    'navigate-tree': () => {
      const named = qa('#tree span').filter((s) => text(s) === quoted());
      return firstVisible(named) || folderToExpand(named[0]);
    },
    'click-option': () => {
      const radio = q('#ch' + state.createElements.index);
      return radio.checked ? q('#subbtn') : radio;
    },
    'click-collapsible-nodelay': () => visible(q('#area .ui-accordion-content')) ? q('#subbtn')
                                                                                 : q('#area h3'),
    'click-tab-2-easy': () => linkOnTab(),
    'click-tab-2': () => linkOnTab(),
    'click-tab-2-medium': () => linkOnTab(),
    'click-tab-2-hard': () => linkOnTab(),
    'click-collapsible-2-nodelay': () => {
      const link = byText('#area .alink', quoted());
      // else the header of the section holding one (the section is the div after its header)
      return link || qa('#area .alink').find((a) => text(a) === quoted()).closest('div').previousElementSibling;
    },
    'click-test-transfer': () => query().includes('ONE') ? q('#subbtn') : q('#subbtn2'),
    'click-button-sequence': () => buttonsPushed.length === 0 ? q('#subbtn') : q('#subbtn2'),
    'email-inbox-important': () => {
      const thread = qa('#main .email-thread').find((t) => text(t.querySelector('.email-sender')) === bold());
      return thread.querySelector('.star');
    },
    // tick or untick until the boxes match, then submit
    'click-checkboxes': () => checkboxes(),
    'click-checkboxes-large': () => checkboxes(),
    'click-checkboxes-soft': () => checkboxes(),
    'click-checkboxes-transfer': () => checkboxes(),
    'number-checkboxes': () => {
      const pattern = PATTERNS[state.setupProblem].flat();
      return qa('#checkboxes input[type=checkbox]').find((box, i) => box.checked !== (pattern[i] === 1)) || q('#subbtn');
    },
    'click-shades': () => qa('#area span').find((s) => (s.dataset.color === state.generateShades.expectedColor)
                                                     !== s.classList.contains('selected')) || q('#submit'),
    'tic-tac-toe': () => q(`#ttt-${ticTacToe(gameState.slice())[1]}`),
    'click-pie-nodelay': () => {
      const { items: wheel, problemSet, expectedItem } = state.createItems;
      const index = problemSet.indexOf(expectedItem);
      // The wheel starts with item 0 selected, and a selected item re-renders under the pointer on
      // every mouse event, so real clicks never reach it (probed point by point): those seeds (~1 in
      // 5) cannot be solved by clicking. Say so rather than click in vain.
      if (index === wheel.selectedNavItemIndex) throw new Error('the item asked for is the pre-selected one, which ignores real clicks');
      // collapsed, the slices are a dot under the spreader button
      const expanded = q(`#wheelnav-divWheel-slice-${index}`).getBoundingClientRect().width > 10;
      // the item's label, not its slice: a hovered slice changes shape, its label stays inside it
      return expanded ? q(`#wheelnav-divWheel-title-${index}`) : q('#wheelnav-divWheel-spreader');
    },
  };

  // The global task functions whose results the oracles above read from `state`.
  const hooks = {
    'click-shape': ['createShapes', 'chooseShape'],
    'count-shape': ['createGrid', 'chooseShape'],
    'count-sides': ['drawShape'],
    'identify-shape': ['drawShapes'],
    'click-option': ['createElements'],
    'click-pie-nodelay': ['createItems'],
    'resize-textarea': ['randomizeTextArea'],
    'click-checkboxes': ['createCheckboxes'],
    'click-checkboxes-large': ['createCheckboxes'],
    'click-checkboxes-soft': ['createCheckboxes'],
    'click-checkboxes-transfer': ['createCheckboxes'],
    'number-checkboxes': ['setupProblem'],
    'click-shades': ['generateShades'],
  };

  function install(task) { (hooks[task] || []).forEach(hook); }

  // Where a step acts: an element (a point of it a real click hits, and its box) or a point [x, y] in
  // viewport CSS px (no box). Returned in task-area coordinates.
  const norm = ([x, y]) => [(x - AREA.left) / AREA.width, (y - AREA.top) / AREA.height];
  const spot = (target) => target instanceof Element ? { point: hitPoint(target), box: box(target) }
                                                     : { point: norm(target), box: null };

  // The next step of task's oracle. An oracle returns an element (click it), {click: el or [x, y]} (with
  // `at: [x, y]`: at that point of el),
  // {drag: [from, to]} (press at from, release at to), {type: text, field} or {key: name, field}
  // (the field already has the focus: an oracle clicks it first); a click's `look` is the element its
  // answer is read from (not the one clicked), its `others` the elements a click would be as right on, its
  // `parts` [{el, type, text, ...}] what elements of the page are (auxiliary labels: lnn.envs.PART_ATTRIBUTES).
  // Returned as {kind, point, box, ...} in task-area coordinates.
  function oracle(task) {
    const oracleFn = oracles[task];
    if (!oracleFn) throw new Error(`no oracle for task ${task}`);
    let step = oracleFn();
    if (!step || ('click' in step && !step.click)) throw new Error(`the ${task} oracle found no target`);
    if (step instanceof Element || Array.isArray(step)) step = { click: step };
    if (step.click) {
      return { kind: 'click', ...spot(step.click), ...(step.at ? { point: norm(step.at) } : {}),
               ...(step.look ? { look: box(step.look) } : {}), others: (step.others || []).map(box),
               parts: (step.parts || []).map(({ el, ...what }) => ({ box: box(el), ...what })) };
    }
    if (step.drag) {
      const [from, to] = step.drag.map(spot);
      return { kind: 'drag', point: from.point, box: from.box, to: to.point };
    }
    const field = step.field ? box(step.field) : null;
    if ('type' in step) return { kind: 'type', text: String(step.type), field };
    if ('key' in step) return { kind: 'key', key: step.key, field };
    throw new Error(`the ${task} oracle returned an unknown step ${JSON.stringify(Object.keys(step))}`);
  }

  window.lnn = { state, hook, install, reset, settle, status, oracle, oracleTasks: Object.keys(oracles),
                 box, hitPoint, visible, text, quoted, bold };
})();
