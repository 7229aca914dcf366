"""The web bundle of an export: the page (sources in lnn/export/web), onnxruntime-web, recorded episodes.

    <export>/web/index.html, app.js, lnn.js, plot.js, style.css     the page
    <export>/web/ort/ort.wasm.min.mjs + ort-wasm-simd-threaded.{mjs,wasm}   onnxruntime-web (from npm)
    <export>/episodes/index.json + <episode>/<step>.png              frames, instructions, ground truth,
                                                                     tokens, dt (seconds since the previous
                                                                     frame, fed to the graph) and PyTorch's
                                                                     outputs per step

onnxruntime-web comes from `npm ci` at the repository root (package.json pins it); nothing is fetched
from a CDN. The page is served over HTTP (python -m lnn.export.serve <export>), never from file://.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from lnn.errors import ConfigError
from lnn.export.episodes import Stream, Trace

WEB_SOURCES = Path(__file__).parent / "web"
PAGE_FILES = ("index.html", "app.js", "lnn.js", "plot.js", "style.css")
ORT_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
REPO_ROOT = Path(__file__).resolve().parents[3]  # src/lnn/export/bundle.py -> the checkout (editable installs)
ORT_SUBDIR = Path("node_modules") / "onnxruntime-web" / "dist"


def ort_candidates(explicit: str | None = None) -> list[Path]:
    found = [Path(explicit)] if explicit else []
    if os.environ.get("LNN_ORT_DIST"):
        found.append(Path(os.environ["LNN_ORT_DIST"]))
    return found + [Path.cwd() / ORT_SUBDIR, REPO_ROOT / ORT_SUBDIR]


def find_ort_dist(explicit: str | None = None) -> Path | None:
    """onnxruntime-web's dist/ folder: `explicit`, $LNN_ORT_DIST, ./node_modules, the checkout's node_modules."""
    for folder in ort_candidates(explicit):
        if all((folder / name).is_file() for name in ORT_FILES):
            return folder
    return None


def require_ort_dist(explicit: str | None = None) -> Path:
    folder = find_ort_dist(explicit)
    if folder is None:
        looked = ", ".join(str(p) for p in ort_candidates(explicit))
        raise ConfigError("web.ort_dist", f"onnxruntime-web not found (looked in {looked}): run `npm ci` in the "
                          "repository root, or set web.ort_dist=<.../onnxruntime-web/dist>, or web.enabled=false")  # fmt: skip
    return folder


def ort_version(dist: Path) -> str:
    try:
        return json.loads((dist.parent / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return "unknown"


def copy_page(out: Path, ort_dist: Path) -> None:
    web = out / "web"
    (web / "ort").mkdir(parents=True)
    for name in PAGE_FILES:
        shutil.copyfile(WEB_SOURCES / name, web / name)
    for name in ORT_FILES:
        shutil.copyfile(ort_dist / name, web / "ort" / name)
    for extra in ("LICENSE", "package.json"):
        if (ort_dist.parent / extra).is_file():
            shutil.copyfile(ort_dist.parent / extra, web / "ort" / extra)


def _round(a: np.ndarray, digits: int = 6) -> list:
    return np.round(a.astype(np.float64), digits).tolist()


def _step_reference(trace: Trace, t: int, b: int) -> dict:
    return {
        "action_logits": _round(trace.action_logits[t, b]),
        "coords": _round(trace.coords[t, b]),
        "tau": [_round(tau[t, b]) for tau in trace.tau],
    }


def write_episodes(out: Path, streams: list[Stream], tokens: np.ndarray, reset_trace: Trace, carry_trace: Trace,
                   columns: list[int], played: list[tuple[Stream, np.ndarray, Trace, Trace]] = ()) -> int:  # fmt: skip
    """Frames (PNG, lossless: the page feeds exactly these pixels) and per-step data of the chosen streams.

    tokens: (T, B, L) as Python tokenized them (the page checks its own tokenizer against them);
    reset_trace / carry_trace: PyTorch's outputs with the state zeroed at each new episode / carried.
    `played`: streams the model played itself (record_played), each with its (T, 1, L) tokens and traces.
    """
    root = out / "episodes"
    root.mkdir(parents=True)
    chosen = [(streams[b], tokens, reset_trace, carry_trace, b) for b in columns] + [(*p, 0) for p in played]
    episodes = [_write_episode(root, n, *entry) for n, entry in enumerate(chosen)]
    index = {
        "about": "Frames of the env's test seeds, oracle-driven, or 'played' by the model itself (its action per step, "
                 "and how each episode ended); 'truth' is the oracle's step; 'reference' holds PyTorch's outputs for the "
                 "same frames, with the state reset at each new episode ('reset') or carried throughout ('carry'); 'dt' "
                 "is each step's elapsed time in seconds, as the env reported it (the graph's dt input).",
        "episodes": episodes,
    }  # fmt: skip
    (root / "index.json").write_text(json.dumps(index))
    return len(episodes)


def _write_episode(root: Path, n: int, stream: Stream, tokens: np.ndarray, reset_trace: Trace, carry_trace: Trace,
                   b: int) -> dict:  # fmt: skip
    """Column `b` of the batch: its frames under root/<n>-<task>/, and its entry of index.json."""
    folder = f"{n:02d}-{stream.task}{'-played' if stream.played else ''}"
    (root / folder).mkdir()
    steps = []
    for t in range(len(stream)):
        name = f"{folder}/{t:02d}.png"
        Image.fromarray(stream.frames[t]).save(root / name, optimize=True)
        steps.append({
            "frame": f"episodes/{name}", "instruction": stream.instructions[t],
            "new_episode": bool(stream.new_episode[t]), "seed": int(stream.seeds[t]),
            "truth": stream.truth[t], "tokens": tokens[t, b].tolist(),
            "dt": float(stream.dt[t]) if stream.dt else 1.0,
            "reference": {"reset": _step_reference(reset_trace, t, b), "carry": _step_reference(carry_trace, t, b)},
        } | ({"played": stream.played[t]} if stream.played else {}))  # fmt: skip
    seeds = sorted(set(stream.seeds))
    label = f"{stream.task}: {len(seeds)} episode(s) on test seeds {seeds[0]}–{seeds[-1]}"
    if stream.played:
        ends = [s["result"] for s in stream.played if "result" in s]
        label = f"{stream.task}: played by the model, {ends.count('success')}/{len(ends)} solved on test seeds {seeds[0]}–{seeds[-1]}"
    return {"id": n, "task": stream.task, "steps": steps, "label": label, "played": bool(stream.played)}
