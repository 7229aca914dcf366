// A small line plot on a canvas: the live τ of a layer over the steps of an episode.

/**
 * series: [{values: [number], color, label, low?: [number], high?: [number]}]
 * options: {ymin, ymax, steps (x range), title, ylabel, xlabel, marks: [step] (dashed verticals)}
 */
export function linePlot(canvas, series, options) {
  const ctx = canvas.getContext("2d");
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || canvas.width;
  const h = canvas.clientHeight || canvas.height;
  if (canvas.width !== Math.round(w * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const pad = { left: 46, right: 10, top: 22, bottom: 30 };
  const pw = w - pad.left - pad.right;
  const ph = h - pad.top - pad.bottom;
  const { ymin, ymax } = options;
  const steps = Math.max(2, options.steps);
  const X = (i) => pad.left + (pw * i) / (steps - 1);
  const Y = (v) => pad.top + ph * (1 - (v - ymin) / (ymax - ymin || 1));

  ctx.font = "11px sans-serif";
  ctx.fillStyle = "#222";
  ctx.textAlign = "left";
  ctx.fillText(options.title || "", pad.left, 14);
  ctx.strokeStyle = "#ccc";
  ctx.lineWidth = 1;
  ctx.strokeRect(pad.left, pad.top, pw, ph);
  ctx.fillStyle = "#555";
  ctx.textAlign = "right";
  for (let k = 0; k <= 4; k++) {
    const v = ymin + ((ymax - ymin) * k) / 4;
    ctx.fillText(v.toFixed(v < 10 ? 2 : 1), pad.left - 4, Y(v) + 4);
    ctx.strokeStyle = "#eee";
    ctx.beginPath();
    ctx.moveTo(pad.left, Y(v));
    ctx.lineTo(pad.left + pw, Y(v));
    ctx.stroke();
  }
  ctx.textAlign = "center";
  const every = Math.max(1, Math.ceil(steps / 8));
  for (let i = 0; i < steps; i += every) ctx.fillText(String(i), X(i), pad.top + ph + 13);
  ctx.fillText(options.xlabel || "step", pad.left + pw / 2, h - 3);
  ctx.save();
  ctx.translate(11, pad.top + ph / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.fillText(options.ylabel || "", 0, 0);
  ctx.restore();

  ctx.setLineDash([4, 3]);
  ctx.strokeStyle = "#999";
  for (const m of options.marks || []) {
    ctx.beginPath();
    ctx.moveTo(X(m - 0.5), pad.top);
    ctx.lineTo(X(m - 0.5), pad.top + ph);
    ctx.stroke();
  }
  ctx.setLineDash([]);

  for (const s of series) {
    if (!s.values.length) continue;
    if (s.low && s.high) {
      ctx.fillStyle = s.color + "33";
      ctx.beginPath();
      s.high.forEach((v, i) => (i ? ctx.lineTo(X(i), Y(v)) : ctx.moveTo(X(i), Y(v))));
      for (let i = s.low.length - 1; i >= 0; i--) ctx.lineTo(X(i), Y(s.low[i]));
      ctx.closePath();
      ctx.fill();
    }
    ctx.strokeStyle = s.color;
    ctx.fillStyle = s.color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    s.values.forEach((v, i) => (i ? ctx.lineTo(X(i), Y(v)) : ctx.moveTo(X(i), Y(v))));
    ctx.stroke();
    s.values.forEach((v, i) => {
      ctx.beginPath();
      ctx.arc(X(i), Y(v), 2.5, 0, 2 * Math.PI);
      ctx.fill();
    });
  }
}
