// The page: loads the exported step model with onnxruntime-web (wasm; ?threads=N threads, default 1), plays the recorded
// episodes of the export or screenshots dropped on the page, and shows per step the chosen action, the
// click point on the frame, the frame's dt (seconds since the previous one, fed to the model), a live τ
// plot per liquid layer, and the step latency.
// window.lnnPage exposes the same steps to tests and benchmarks (runEpisode, benchmark).

import * as ort from "./ort/ort.wasm.min.mjs";
import { StepModel, argmax, frameSize, loadBitmap, pixelsOf, softmax, stripFor, tokensFor } from "./lnn.js";
import { linePlot } from "./plot.js";

ort.env.wasm.wasmPaths = new URL("./ort/", import.meta.url).href;
// ?threads=N: wasm threads, which need a cross-origin isolated page (lnn.export.serve sends the headers);
// default 1, the setting the latency goal is measured in
const askedThreads = new URLSearchParams(location.search).get("threads") || "1";
ort.env.wasm.numThreads = self.crossOriginIsolated ? Number(askedThreads) : 1;

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"];
const $ = (id) => document.getElementById(id);

const app = {
  manifest: null,
  episodes: [],
  models: {},
  precision: "fp32",
  episode: null,
  t: 0,
  state: [],
  history: [],
  latencies: [],
  resetAtNewEpisode: true,
  playing: false,
  scratch: null,
};

// --- loading ------------------------------------------------------------------------------------------
async function fetchJson(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

/** The model of a precision in the manifest (fp32, fp16, int8), or another .onnx file of the export by name. */
async function getModel(precision) {
  if (!app.models[precision]) {
    const entry = precision.endsWith(".onnx")
      ? [precision]
      : Object.entries(app.manifest.files).find(([, f]) => f.precision === precision);
    if (!entry) throw new Error(`no ${precision} model in this export`);
    setStatus(`loading ${entry[0]} …`);
    app.models[precision] = await StepModel.load(ort, `../${entry[0]}`, app.manifest);
    setStatus(`${entry[0]} loaded (onnxruntime-web ${ort.env.versions?.web || ""}, wasm, ${ort.env.wasm.numThreads} thread${ort.env.wasm.numThreads > 1 ? "s" : ""})`);
  }
  return app.models[precision];
}

async function frameOf(step) {
  if (!step.bitmap) step.bitmap = await loadBitmap(`../${step.frame}`);
  return step.bitmap;
}

function setStatus(text, error = false) {
  const el = $("status");
  el.textContent = text;
  el.classList.toggle("error", error);
}

// --- stepping -----------------------------------------------------------------------------------------
async function resetEpisode() {
  const model = await getModel(app.precision);
  app.t = 0;
  app.state = model.initialState();
  app.history = [];
  render();
}

/** One step of the current episode; returns its record, or null at the end. */
async function stepOnce() {
  const episode = app.episode;
  if (!episode || app.t >= episode.steps.length) return null;
  const step = episode.steps[app.t];
  const model = await getModel(app.precision);
  const bitmap = await frameOf(step); // decoding the file is not part of the step
  const start = performance.now();
  if (app.resetAtNewEpisode && step.new_episode && app.t > 0) app.state = model.initialState();
  const pixels = pixelsOf(bitmap, model.size, app.scratch);
  const tokens = tokensFor(app.manifest, episode.task, step.instruction);
  const dt = step.dt ?? 1; // recorded episodes carry the env's elapsed time; dropped screenshots run at 1
  const out = await model.step(pixels, tokens, app.state, dt, stripFor(app.manifest, step.instruction));
  app.state = out.state;
  const stepMs = performance.now() - start;
  const record = {
    t: app.t,
    dt,
    logits: Array.from(out.logits),
    coords: Array.from(out.coords),
    release: out.release ? Array.from(out.release) : null, // a drag head's release point
    key: out.keyLogits ? app.manifest.keys[argmax(out.keyLogits)] : null, // a key head's key
    text: out.text, // a text head's typed text (null without one)
    tau: out.tau.map((v) => Array.from(v)),
    action: argmax(out.logits),
    runMs: out.ms,
    stepMs,
    tokens,
    tokensMatch: step.tokens ? step.tokens.every((v, i) => v === tokens[i]) : null,
  };
  app.history.push(record);
  app.latencies.push(stepMs);
  app.t += 1;
  render();
  return record;
}

async function play() {
  if (app.playing) {
    app.playing = false;
    return;
  }
  if (app.episode && app.t >= app.episode.steps.length) await resetEpisode();
  app.playing = true;
  $("play").textContent = "⏸ pause";
  try {
    while (app.playing && (await stepOnce())) {
      await new Promise((r) => setTimeout(r, Number($("delay").value)));
    }
  } catch (e) {
    setStatus(String(e), true);
  }
  app.playing = false;
  $("play").textContent = "▶ play";
}

// --- drawing ------------------------------------------------------------------------------------------
const median = (xs) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmt = (v, d = 3) => (Number.isFinite(v) ? v.toFixed(d) : "–");

function drawFrame(step, record) {
  const canvas = $("frame");
  const ctx = canvas.getContext("2d");
  const W = canvas.width;
  const [h, w] = frameSize(app.manifest.preprocessing.image.size);
  const H = Math.round((W * h) / w); // the model's aspect (e.g. MiniWoB's 160 × 210 task area)
  if (canvas.height !== H) canvas.height = H;
  ctx.imageSmoothingEnabled = false;
  ctx.fillStyle = "#f4f4f4";
  ctx.fillRect(0, 0, W, H);
  if (step && step.bitmap) ctx.drawImage(step.bitmap, 0, 0, W, H);
  if (step && step.truth && step.truth.box) {
    const [x0, y0, x1, y1] = step.truth.box;
    ctx.setLineDash([6, 4]);
    ctx.strokeStyle = "#1a9c3a";
    ctx.lineWidth = 2;
    ctx.strokeRect(x0 * W, y0 * H, (x1 - x0) * W, (y1 - y0) * H);
    ctx.setLineDash([]);
  }
  if (step && step.played && step.played.action === "click") {
    // where the model clicked when it played this episode in the browser (a blue square)
    const { x, y } = step.played;
    ctx.strokeStyle = "#1060e0";
    ctx.lineWidth = 2;
    ctx.strokeRect(x * W - 9, y * W - 9, 18, 18);
  }
  if (record && app.manifest.actions[record.action] === "drag" && record.release) {
    // a drag: an arrow from where the button is pressed to where it is released
    const [x, y] = record.coords;
    const [x2, y2] = record.release;
    const angle = Math.atan2((y2 - y) * H, (x2 - x) * W);
    ctx.strokeStyle = "#e01010";
    ctx.lineWidth = 3;
    ctx.beginPath();
    ctx.arc(x * W, y * H, 6, 0, 2 * Math.PI);
    ctx.moveTo(x * W, y * H);
    ctx.lineTo(x2 * W, y2 * H);
    for (const side of [-1, 1]) {
      ctx.moveTo(x2 * W, y2 * H);
      ctx.lineTo(x2 * W - 14 * Math.cos(angle + side * 0.5), y2 * H - 14 * Math.sin(angle + side * 0.5));
    }
    ctx.stroke();
  } else if (record) {
    const [x, y] = record.coords;
    const click = app.manifest.actions[record.action] === "click";
    ctx.globalAlpha = click ? 1 : 0.35;
    ctx.strokeStyle = "#e01010";
    ctx.lineWidth = 3;
    ctx.beginPath();
    ctx.arc(x * W, y * H, 12, 0, 2 * Math.PI);
    ctx.moveTo(x * W - 18, y * H);
    ctx.lineTo(x * W + 18, y * H);
    ctx.moveTo(x * W, y * H - 18);
    ctx.lineTo(x * W, y * H + 18);
    ctx.stroke();
    ctx.globalAlpha = 1;
  }
}

/** The chosen action as a user reads it: where a click or drag goes, which key, what is typed. */
function actionText(name, record) {
  const at = (x, y) => `(${fmt(x)}, ${fmt(y)})`;
  if (name === "click") return `click at ${at(...record.coords)}`;
  if (name === "drag") {
    return record.release ? `drag from ${at(...record.coords)} to ${at(...record.release)}` : `drag at ${at(...record.coords)}`;
  }
  if (name === "key") return `key ${record.key ?? "Enter"}`;
  if (name === "type" && record.text !== null) return `type “${record.text}”`;
  return name;
}

function drawActions(record, step) {
  const names = app.manifest.actions;
  const probs = record ? softmax(record.logits) : names.map(() => 0);
  $("actions").innerHTML = names
    .map((name, i) => {
      const chosen = record && i === record.action;
      const truth = step && step.truth && step.truth.action === name;
      return `<div class="bar ${chosen ? "chosen" : ""}"><span class="name">${name}${truth ? " ✓truth" : ""}</span>
        <span class="track"><span class="fill" style="width:${(100 * probs[i]).toFixed(1)}%"></span></span>
        <span class="p">${(100 * probs[i]).toFixed(1)}%</span></div>`;
    })
    .join("");
}

function referenceDiff(record, step) {
  const ref = step && step.reference && step.reference[app.resetAtNewEpisode ? "reset" : "carry"];
  if (!ref || !record) return null;
  const maxDiff = (a, b) => Math.max(...a.map((v, i) => Math.abs(v - b[i])));
  return {
    logits: maxDiff(record.logits, ref.action_logits),
    coords: maxDiff(record.coords, ref.coords),
    tau: Math.max(0, ...record.tau.map((v, i) => maxDiff(v, ref.tau[i]))),
  };
}

function drawTau() {
  const tau = app.manifest.tau;
  const container = $("tau");
  const layers = app.manifest.architecture.liquid_layers;
  if (container.children.length !== layers) {
    container.innerHTML = "";
    for (let i = 0; i < layers; i++) {
      const c = document.createElement("canvas");
      c.className = "tauplot";
      container.appendChild(c);
    }
  }
  const steps = app.episode ? app.episode.steps.length : 16;
  const marks = app.episode ? app.episode.steps.map((s, i) => (i > 0 && s.new_episode ? i : null)).filter((v) => v !== null) : [];
  for (let i = 0; i < layers; i++) {
    const values = app.history.map((r) => r.tau[i].reduce((a, b) => a + b, 0) / r.tau[i].length);
    const series = { values, color: COLORS[i % COLORS.length] };
    if (tau.size > 1) {
      series.low = app.history.map((r) => Math.min(...r.tau[i]));
      series.high = app.history.map((r) => Math.max(...r.tau[i]));
    }
    const last = values.length ? ` — now ${values[values.length - 1].toFixed(3)}` : "";
    linePlot(container.children[i], [series], {
      ymin: tau.min,
      ymax: tau.max,
      steps,
      marks,
      title: `layer ${i}: τ${tau.size > 1 ? " (mean over neurons, band: min–max)" : ""}${last}`,
      ylabel: "τ (s)",
      xlabel: "step (dashed: a new episode)",
    });
  }
}

function render() {
  const episode = app.episode;
  const record = app.history[app.history.length - 1];
  const step = episode && record ? episode.steps[record.t] : episode ? episode.steps[0] : null;
  drawFrame(step, record);
  drawActions(record, step);
  drawTau();
  const total = episode ? episode.steps.length : 0;
  $("step-info").textContent = record ? `step ${record.t + 1} / ${total} · dt ${fmt(record.dt, 2)} s` : `step 0 / ${total}`;
  if (record && step.played) $("step-info").textContent += ` · ${playedText(step.played)}`;
  $("instruction-shown").textContent = step ? `${episode.task}: “${step.instruction || "(no instruction)"}”` : "";
  if (record) {
    const name = app.manifest.actions[record.action];
    const truth = step.truth;
    let verdict = "";
    if (truth) {
      if (truth.action !== name) verdict = ` — wrong (truth: ${truth.action})`;
      else if (name === "click" && truth.box) {
        const [x0, y0, x1, y1] = truth.box;
        const [x, y] = record.coords;
        const inside = x >= x0 && x <= x1 && y >= y0 && y <= y1;
        verdict = inside ? " — right" : " — wrong (outside the target box)";
      } else verdict = " — right";
    }
    $("chosen").textContent = `${actionText(name, record)}${verdict}`;
    $("chosen").className = verdict.startsWith(" — right") ? "right" : verdict ? "wrong" : "";
    $("latency").textContent =
      `step ${fmt(record.stepMs, 2)} ms (model ${fmt(record.runMs, 2)} ms) · median ${fmt(median(app.latencies), 2)} ms over ${app.latencies.length} steps`;
    const diff = referenceDiff(record, step);
    $("parity").textContent = diff
      ? `vs PyTorch (${app.resetAtNewEpisode ? "state reset per episode" : "state carried"}): max |Δ| logits ${diff.logits.toExponential(1)}, coords ${diff.coords.toExponential(1)}, τ ${diff.tau.toExponential(1)}`
      : "vs PyTorch: no reference for dropped screenshots";
    if (record.tokensMatch === false) setStatus("tokenizer mismatch with Python on this step", true);
  } else {
    $("chosen").textContent = "–";
    $("chosen").className = "";
    $("parity").textContent = "";
  }
}

/** What the model did at this step when it played the episode in the browser, and how the episode ended. */
function playedText(played) {
  const shown = { coords: [played.x, played.y], release: played.x2 === undefined ? null : [played.x2, played.y2],
                  key: played.text, text: played.text ?? "" }; // prettier-ignore
  const end = played.result === undefined ? "" : played.result === "success" ? " → solved" : ` → failed (${played.result})`;
  return `played in the browser: ${actionText(played.action, shown)}${end}`;
}

// --- episodes -----------------------------------------------------------------------------------------
function fillEpisodeSelect() {
  const select = $("episode");
  select.innerHTML = app.episodes.map((e, i) => `<option value="${i}">${e.label || e.task}</option>`).join("");
}

async function selectEpisode(i) {
  app.playing = false;
  app.episode = app.episodes[i];
  $("episode").value = String(i);
  const custom = !!app.episode.custom;
  $("task").disabled = !custom;
  $("instruction").disabled = !custom;
  if (custom) {
    $("task").value = app.episode.task;
    $("instruction").value = app.episode.steps[0]?.instruction || "";
  }
  await Promise.all(app.episode.steps.map(frameOf));
  await resetEpisode();
}

async function addDropped(files) {
  const images = [...files].filter((f) => f.type.startsWith("image/")).sort((a, b) => a.name.localeCompare(b.name));
  if (!images.length) return;
  const task = $("task").value || app.episodes[0]?.task || "";
  const instruction = $("instruction").value;
  const steps = [];
  for (const [i, file] of images.entries()) {
    steps.push({ bitmap: await createImageBitmap(file), instruction, new_episode: i === 0, name: file.name });
  }
  app.episodes.push({ task, custom: true, steps, label: `dropped: ${images.length} screenshot(s)` });
  fillEpisodeSelect();
  await selectEpisode(app.episodes.length - 1);
}

function updateCustomText() {
  if (!app.episode || !app.episode.custom) return;
  app.episode.task = $("task").value;
  for (const step of app.episode.steps) step.instruction = $("instruction").value;
  resetEpisode();
}

// --- page ---------------------------------------------------------------------------------------------
function describeModel() {
  const m = app.manifest;
  const solver = m.solver ? `${m.solver.exported.solver} × ${m.solver.exported.unfolds}` + (m.solver.substitution ? ` (trained: ${m.solver.trained.solver})` : "") : "none";
  const tau = m.tau ? `τ ∈ [${m.tau.min}, ${m.tau.max}] per ${m.tau.per}` : "no τ";
  const a = m.architecture;
  const core = a.liquid_layers ? `${a.liquid_layers} liquid layers × ${a.hidden_size}` : `core ${a.core || "liquid"} × ${a.hidden_size}, ${(a.state_sizes || []).length} state tensors`;
  $("model-info").textContent = `${m.architecture.class.split(".").pop()} · ${m.architecture.parameters.toLocaleString()} parameters · ${core} · ${tau} · solver ${solver} · input ${frameSize(m.preprocessing.image.size).join("×")} (h×w)`;
  const source = m.source.metric && m.source.metric.value != null ? ` · ${m.source.metric.name} = ${Number(m.source.metric.value).toFixed(3)}` : "";
  $("source-info").textContent = `from ${m.source.checkpoint}${source}`;
  const p = m.parity;
  $("parity-info").textContent =
    `export parity over ${p.episodes} × ${p.steps} steps: fp32 max |Δ| ${p.fp32.max_abs_diff.tau.toExponential(1)} (τ), ` +
    `fp16 same action on ${(100 * p.fp16.action_agreement).toFixed(1)}% of steps (τ ${p.fp16.max_abs_diff.tau.toExponential(1)}), ` +
    `int8 on ${(100 * p.int8.action_agreement).toFixed(1)}%`;
  $("precision").innerHTML = Object.entries(m.files)
    .map(([name, f]) => `<option value="${f.precision}">${f.precision} — ${name}, ${(f.bytes / 1e6).toFixed(2)} MB</option>`)
    .join("");
}

async function init() {
  if (!/^[1-9][0-9]*$/.test(askedThreads)) throw new Error(`?threads=${askedThreads}: must be a whole number >= 1`);
  app.manifest = await fetchJson("../manifest.json");
  app.scratch = document.createElement("canvas");
  describeModel();
  if (app.manifest.web && app.manifest.web.episodes) {
    const index = await fetchJson(`../${app.manifest.web.episodes}`);
    app.episodes = index.episodes;
  }
  fillEpisodeSelect();
  $("precision").onchange = async (e) => {
    app.precision = e.target.value;
    await resetEpisode();
  };
  $("episode").onchange = (e) => selectEpisode(Number(e.target.value));
  $("step").onclick = () => stepOnce().catch((e) => setStatus(String(e), true));
  $("play").onclick = () => play();
  $("reset").onclick = () => resetEpisode();
  $("reset-new").onchange = (e) => {
    app.resetAtNewEpisode = e.target.checked;
    resetEpisode();
  };
  $("task").onchange = updateCustomText;
  $("instruction").onchange = updateCustomText;
  const drop = $("drop");
  drop.ondragover = (e) => {
    e.preventDefault();
    drop.classList.add("over");
  };
  drop.ondragleave = () => drop.classList.remove("over");
  drop.ondrop = (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    addDropped(e.dataTransfer.files);
  };
  $("files").onchange = (e) => addDropped(e.target.files);
  await getModel(app.precision);
  if (app.episodes.length) await selectEpisode(0);
  else render();
}

// --- for tests and benchmarks -------------------------------------------------------------------------
window.lnnPage = {
  ready: null,
  app,
  /** The strip of the named text this page draws for `instruction` (a match_text model's), as an array. */
  strip: (instruction) => Array.from(stripFor(app.manifest, instruction) || []),
  /** Play recorded episode i from its start with the given precision; returns every step's record. */
  async runEpisode(i, { precision = "fp32", reset = true } = {}) {
    app.precision = precision;
    $("precision").value = precision;
    app.resetAtNewEpisode = reset;
    $("reset-new").checked = reset;
    await selectEpisode(i);
    const records = [];
    let record;
    while ((record = await stepOnce())) records.push(record);
    return records;
  },
  /** Median latency of n steps (after `warmup`) on episode 0's frames, state carried; withTimes: every step's ms. */
  async benchmark(precision = "fp32", n = 200, warmup = 20, withTimes = false) {
    const model = await getModel(precision);
    const steps = app.episodes[0].steps;
    await Promise.all(steps.map(frameOf));
    let state = model.initialState();
    const run = [];
    const total = [];
    for (let k = 0; k < n + warmup; k++) {
      const step = steps[k % steps.length];
      const start = performance.now();
      const pixels = pixelsOf(step.bitmap, model.size, app.scratch);
      const tokens = tokensFor(app.manifest, app.episodes[0].task, step.instruction);
      const out = await model.step(pixels, tokens, state, step.dt, stripFor(app.manifest, step.instruction));
      state = out.state;
      if (k >= warmup) {
        run.push(out.ms);
        total.push(performance.now() - start);
      }
    }
    const q = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))];
    return {
      precision, n, threads: ort.env.wasm.numThreads, crossOriginIsolated: self.crossOriginIsolated,
      median_run_ms: median(run), median_step_ms: median(total), p10_step_ms: q(total, 0.1), p90_step_ms: q(total, 0.9),
      min_step_ms: Math.min(...total),
      ...(withTimes ? { step_ms: total, run_ms: run } : {}),
    };
  },
};
window.lnnPage.ready = init().then(
  () => true,
  (e) => {
    setStatus(`failed: ${e}`, true);
    throw e;
  },
);
