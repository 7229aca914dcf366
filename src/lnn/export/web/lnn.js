// The exported policy in the browser: the tokenizer (the same as lnn/models/text.py), frames -> input
// tensors, and one streaming step through onnxruntime-web. No DOM work here beyond a canvas for pixels,
// and no import of onnxruntime itself (the caller passes it in), so node can load this file in tests.

const encoder = new TextEncoder();
export const SCHEME = "word-bytes/1"; // lnn.models.text.SCHEME
export const CONTINUES = 257; // opens a slot that goes on with the previous slot's word

/** What the model reads: "<task> <instruction>"; an empty instruction is all padding. */
export function instructionText(task, instruction) {
  return instruction ? `${task} ${instruction}` : "";
}

// Python's -?[0-9]+|[^\W_]+|\S: signed numbers, runs of letters/digits of any script, any other non-space
// character alone (lnn/models/text.py). Python's \w has no combining marks, so neither has this. Case kept.
const WORD = /-?[0-9]+|[\p{L}\p{N}]+|\S/gu;

export function words(text) {
  return text.match(WORD) || [];
}

/** One word -> slots of wordBytes ids: UTF-8 byte + 1, 0 pads; a longer word goes on in slots opened by CONTINUES. */
export function wordSlots(word, wordBytes) {
  const ids = Array.from(encoder.encode(word), (b) => b + 1);
  const slots = [ids.slice(0, wordBytes)];
  for (let i = wordBytes; i < ids.length; i += wordBytes - 1) slots.push([CONTINUES, ...ids.slice(i, i + wordBytes - 1)]);
  return slots.map((s) => s.concat(new Array(wordBytes - s.length).fill(0)));
}

/** A text -> maxWords * wordBytes ids: the word slots, flattened, cut to maxWords, padded with 0. */
export function tokenize(text, maxWords, wordBytes) {
  const slots = words(text).flatMap((w) => wordSlots(w, wordBytes)).slice(0, maxWords);
  const ids = slots.flat();
  while (ids.length < maxWords * wordBytes) ids.push(0);
  return ids;
}

/** Token ids of (task, instruction) as the model's int64 input; all padding for a pixels-only model. */
export function tokensFor(manifest, task, instruction) {
  const spec = manifest.preprocessing.tokens;
  if (manifest.instruction === "pixels") return new Array(spec.max_words * spec.word_bytes).fill(0);
  return tokenize(instructionText(task, instruction), spec.max_words, spec.word_bytes);
}

// What the instruction names (lnn/models/glyphs.py named_text): its first quoted span, else its first capitalised
// word after the first. Python's \b and \w are Unicode-aware: letters, digits and _ of any script.
const QUOTED = /"([^"]+)"|'([^']+)'/u;
const CAPITALISED = /(?<![\p{L}\p{N}_])[A-Z][\p{L}\p{N}_'-]*/gu;

export function namedText(instruction) {
  const quoted = instruction.match(QUOTED);
  if (quoted) return quoted[1] ?? quoted[2];
  const capitalised = instruction.match(CAPITALISED) || [];
  return capitalised.length > 1 ? capitalised[1] : "";
}

const strips = new Map(); // a strip per (spec, text): episodes repeat one instruction over their frames

/**
 * The named text of `instruction` drawn as the export drew it (manifest.preprocessing.strip, a match_text
 * model's `strip` input), once per style -> Float32Array(styles * height * width) of ink in [0, 1]; null for
 * a model without one. Black text on a transparent canvas, its alpha the ink: no subpixel (LCD) text on a
 * transparent canvas, so the coverage is Pillow's. Centred as Pillow's anchor "mm": the advance width's
 * middle, and the middle between the font's ascender and descender. All zero for a pixels-only model or
 * nothing named. Older manifests give one style as `font_px`.
 */
export function stripFor(manifest, instruction) {
  const spec = manifest.preprocessing.strip;
  if (!spec) return null;
  const text = manifest.instruction === "pixels" ? "" : namedText(instruction);
  const styles = spec.styles ?? [{ font_px: spec.font_px, bold: false }];
  const key = `${JSON.stringify(styles)}|${spec.scale}|${text}`;
  if (strips.has(key)) return strips.get(key);
  const [height, width] = spec.size;
  const ink = new Float32Array(styles.length * height * width);
  styles.forEach((style, i) => ink.set(drawStrip(text, style, spec.scale, height, width), i * height * width));
  strips.set(key, ink);
  return ink;
}

/** `text` in one style ({font_px, bold}) on a strip of height x width at scale (x, y) -> its ink. */
function drawStrip(text, style, scale, height, width) {
  const pageWidth = Math.max(1, Math.round(width / scale[0]));
  const pageHeight = Math.max(1, Math.round(height / scale[1]));
  const canvas = (w, h) => (typeof OffscreenCanvas !== "undefined" ? new OffscreenCanvas(w, h) : Object.assign(document.createElement("canvas"), { width: w, height: h }));
  const page = canvas(pageWidth, pageHeight);
  const ctx = page.getContext("2d", { willReadFrequently: true });
  if (text) {
    ctx.font = `${style.bold ? "bold " : ""}${Math.max(1, Math.round(style.font_px))}px "Liberation Sans", Arial, sans-serif`;
    ctx.textAlign = "center";
    ctx.textBaseline = "alphabetic";
    const m = ctx.measureText(text);
    ctx.fillStyle = "black";
    ctx.fillText(text, pageWidth / 2, pageHeight / 2 + (m.fontBoundingBoxAscent - m.fontBoundingBoxDescent) / 2);
  }
  let out = page;
  if (pageWidth !== width || pageHeight !== height) {
    out = canvas(width, height);
    const small = out.getContext("2d", { willReadFrequently: true });
    small.imageSmoothingEnabled = true;
    small.imageSmoothingQuality = "high";
    small.drawImage(page, 0, 0, width, height);
  }
  const rgba = out.getContext("2d", { willReadFrequently: true }).getImageData(0, 0, width, height).data;
  return Float32Array.from({ length: width * height }, (_, i) => rgba[4 * i + 3] / 255);
}

/** The model's image size as the manifest gives it — N (N × N) or [height, width] — as [height, width]. */
export function frameSize(size) {
  return Array.isArray(size) ? [size[0], size[1]] : [size, size];
}

/**
 * An image (ImageBitmap, <img>, canvas) -> Float32Array (3 * H * W), channels first, values uint8 / 255.
 * `size` is N or [height, width]; images of another size are stretched with the canvas's smoothing
 * (training frames are rendered at that size).
 */
export function pixelsOf(image, size, canvas) {
  const [height, width] = frameSize(size);
  canvas = canvas || (typeof OffscreenCanvas !== "undefined" ? new OffscreenCanvas(width, height) : document.createElement("canvas"));
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d", { willReadFrequently: true, colorSpace: "srgb" });
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = "high";
  ctx.clearRect(0, 0, width, height);
  ctx.drawImage(image, 0, 0, width, height);
  const rgba = ctx.getImageData(0, 0, width, height).data;
  const plane = width * height;
  const out = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    out[i] = rgba[4 * i] / 255;
    out[plane + i] = rgba[4 * i + 1] / 255;
    out[2 * plane + i] = rgba[4 * i + 2] / 255;
  }
  return out;
}

/** Decode an image URL exactly (no colour conversion, no premultiplication). */
export async function loadBitmap(url) {
  const blob = await (await fetch(url)).blob();
  return createImageBitmap(blob, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
}

export function softmax(logits) {
  const max = Math.max(...logits);
  const exps = Array.from(logits, (v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((v) => v / sum);
}

export function argmax(values) {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

/** One exported model (one precision): a single step with explicit state, batch 1. */
/** The text head's output, UTF-8 bytes up to the first -1 (int64: BigInt), as text (lnn.rollout.decode_action). */
export function typedText(bytes) {
  const data = [];
  for (const b of bytes) {
    if (Number(b) < 0) break;
    data.push(Number(b));
  }
  return new TextDecoder().decode(Uint8Array.from(data));
}

export class StepModel {
  static async load(ort, url, manifest) {
    // manifest.session_config: the settings the export checked parity with (e.g. fold int8 weights at load)
    const extra = {};
    for (const [key, value] of Object.entries(manifest.session_config || {})) {
      const [group, name] = key.split(".");
      (extra[group] = extra[group] || {})[name] = value;
    }
    const session = await ort.InferenceSession.create(url, {
      executionProviders: ["wasm"],
      graphOptimizationLevel: "all",
      extra,
    });
    return new StepModel(ort, session, manifest);
  }

  constructor(ort, session, manifest) {
    this.ort = ort;
    this.session = session;
    this.manifest = manifest;
    this.size = manifest.preprocessing.image.size; // N or [height, width]
    this.frame = frameSize(this.size);
    // from the graph's signature: state_i of any size (the LSTM's is [h, c]), tau_i only for liquid layers
    this.stateSizes = manifest.inputs.filter((i) => i.name.startsWith("state_")).map((i) => i.shape[1]);
    this.tauLayers = manifest.outputs.filter((o) => o.name.startsWith("tau_")).length;
    const tokens = manifest.preprocessing.tokens;
    if (tokens.scheme !== SCHEME) {
      throw new Error(`this page reads tokens as ${SCHEME} (the bytes of each word), the export has ${tokens.scheme || "hashed words"}: re-export it`);
    }
    this.maxTokens = tokens.max_words * tokens.word_bytes;
    // exports since lnn-export/2 take each frame's elapsed time; older ones have no dt input (they run at 1)
    this.timed = manifest.inputs.some((i) => i.name === "dt");
    // a match_text model also takes the instruction's named text, drawn (stripFor)
    this.stripShape = manifest.inputs.find((i) => i.name === "strip")?.shape.slice(1) ?? null;
  }

  initialState() {
    return this.stateSizes.map((n) => new Float32Array(n));
  }

  /**
   * pixels: Float32Array(3*H*W); tokens: array of ints; state: [Float32Array(S_i)]; dt: seconds since the
   * previous frame (1 when not known); strip: stripFor(...) for a match_text model -> outputs and ms.
   */
  async step(pixels, tokens, state, dt = 1, strip = null) {
    const T = this.ort.Tensor;
    const feeds = {
      image: new T("float32", pixels, [1, 3, ...this.frame]),
      tokens: new T("int64", BigInt64Array.from(tokens, (v) => BigInt(v)), [1, this.maxTokens]),
    };
    if (this.timed) feeds.dt = new T("float32", Float32Array.of(dt ?? 1), [1]);
    if (this.stripShape) {
      if (!strip) throw new Error("this model finds the named text by its look: pass stripFor(manifest, instruction)");
      feeds.strip = new T("float32", strip, [1, ...this.stripShape]);
    }
    state.forEach((h, i) => (feeds[`state_${i}`] = new T("float32", h, [1, h.length])));
    const start = performance.now();
    const out = await this.session.run(feeds);
    const ms = performance.now() - start;
    const plain = (name) => Float32Array.from(out[name].data); // float32 outputs (fp16 models keep float32 I/O)
    const optional = (name) => (name in out ? plain(name) : null); // the optional heads, where the model has them
    return {
      logits: plain("action_logits"),
      coords: plain("coords"),
      release: optional("release"),
      keyLogits: optional("key_logits"),
      text: "text_bytes" in out ? typedText(out.text_bytes.data) : null,
      tau: Array.from({ length: this.tauLayers }, (_, i) => plain(`tau_${i}`)),
      state: this.stateSizes.map((_, i) => plain(`new_state_${i}`)),
      ms,
    };
  }
}
