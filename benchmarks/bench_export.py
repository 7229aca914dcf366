"""Export benchmark: file sizes of the default Lite's ONNX models, and the step latency (batch 1, one
thread) in Chromium (onnxruntime-web, wasm), in onnxruntime (Python) and in PyTorch, in the same run.

    python benchmarks/bench_export.py [--run <run or sweep dir>] [--steps 300] [--rounds 3] [--threads 2 ...]
                                      [--model key=value ...]   e.g. image_size=[210,160] click_offset=true

Without --run it exports the default Lite (conf/model/lite.yaml + solver rk4) with random weights: sizes
and latency do not depend on the weights' values (the parity figures do; pass a trained run for those).
Engines are measured in interleaved rounds on the same frames (a recorded episode, state carried);
each figure is the median over all measured steps. The page's figures are one wasm thread (as onnxruntime and
PyTorch run here); --threads adds rows for the page at more threads (its `?threads=N`). Writes
experiments/export/results.{json,md}.
Goals (issue 3, the default Lite): fp16 <= 1.6 MB, int8 <= 0.9 MB, browser median step <= 5 ms; --goal
changes them (issue 10's MiniWoB policy: --goal fp16_mb=10 browser_ms=10).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

GOALS = {"fp16_mb": 1.6, "int8_mb": 0.9, "browser_ms": 5.0}
CHROMIUM = os.environ.get("LNN_CHROMIUM", "/usr/bin/chromium")


def default_lite_run(folder: Path, overrides: list[str] = ()) -> Path:
    """A run directory holding the default Lite config (conf/model/lite.yaml, solver rk4, then `overrides`
    of the model's keys), random weights."""
    from lnn.models import VisionLNNLite

    model_cfg = OmegaConf.load(ROOT / "conf" / "model" / "lite.yaml")
    model_cfg.merge_with(OmegaConf.load(ROOT / "conf" / "solver" / "rk4.yaml"))
    model_cfg.merge_with(OmegaConf.from_dotlist(list(overrides)))
    cfg = OmegaConf.create({"model": model_cfg, "data": {"env": "gui", "tasks": None, "env_kwargs": {}},
                            "callbacks": {"best": {"monitor": "val/success", "mode": "max"}}})  # fmt: skip
    run = folder / "default-lite"
    (run / "checkpoints").mkdir(parents=True)
    OmegaConf.save(cfg, run / "config.yaml")
    torch.manual_seed(0)
    kwargs = OmegaConf.to_container(model_cfg)
    kwargs.pop("_target_")
    kwargs["channels"] = tuple(kwargs["channels"])
    model = VisionLNNLite(**kwargs)
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}}, run / "checkpoints" / "best.ckpt")
    return run


def summary(times: list[float]) -> dict:
    a = np.array(times)
    return {"median_ms": float(np.median(a)), "p10_ms": float(np.percentile(a, 10)),
            "p90_ms": float(np.percentile(a, 90)), "n": int(a.size)}  # fmt: skip


def torch_round(model, frames, text: dict, steps: int, warmup: int = 20) -> list[float]:
    state = model.initial_state(1)
    times = []
    with torch.no_grad():
        for k in range(steps + warmup):
            t = k % len(frames)
            start = time.perf_counter()
            image = torch.from_numpy(frames[t]).permute(2, 0, 1).float().div(255).unsqueeze(0)
            out = model.step(image, **{k: v[t : t + 1] for k, v in text.items()}, state=state)
            state = out["state"]
            if k >= warmup:
                times.append(1e3 * (time.perf_counter() - start))
    return times


def ort_round(session, frames, text: dict, layers, sizes, steps: int, warmup: int = 20) -> list[float]:
    state = [np.zeros((1, n), np.float32) for n in sizes]
    times = []
    for k in range(steps + warmup):
        t = k % len(frames)
        start = time.perf_counter()
        image = (frames[t].transpose(2, 0, 1)[None].astype(np.float32)) / 255
        feeds = {"image": image, "dt": np.ones(1, np.float32)} | {k: v[t : t + 1] for k, v in text.items()}
        feeds |= {f"state_{i}": h for i, h in enumerate(state)}
        out = session.run(None, feeds)
        state = out[2 + layers :]
        if k >= warmup:
            times.append(1e3 * (time.perf_counter() - start))
    return times


def parse_goals(given: list[str], parser: argparse.ArgumentParser) -> dict[str, float]:
    """--goal KEY=VALUE ... -> GOALS with those replaced; an unknown key or a non-number stops with one line."""
    goals = dict(GOALS)
    for item in given:
        key, _, value = item.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if key not in GOALS or not number > 0:
            parser.error(f"--goal {item}: use KEY=VALUE with KEY one of {', '.join(GOALS)} and a positive number")
        goals[key] = number
    return goals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a run or sweep directory to export (default: the default Lite, random weights)")
    parser.add_argument("--steps", type=int, default=300, help="measured steps per engine and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="*", default=[2],
                        help="wasm thread counts to measure the page at besides 1 (a tab each)")
    parser.add_argument("--out", default=str(ROOT / "experiments" / "export"))
    parser.add_argument("--model", nargs="*", default=[], metavar="KEY=VALUE",
                        help="without --run: change the default Lite's config, e.g. image_size=[210,160] click_offset=true")
    parser.add_argument("--goal", nargs="*", default=[], metavar="KEY=VALUE",
                        help=f"the goals judged, of {', '.join(GOALS)} (default {GOALS}), e.g. browser_ms=10")
    args = parser.parse_args()
    goals = parse_goals(args.goal, parser)

    import onnxruntime as ort
    from PIL import Image
    from playwright.sync_api import sync_playwright

    from lnn.export import onnx_step
    from lnn.export.pipeline import ExportOptions, export
    from lnn.export.serve import serve_in_thread
    from lnn.export.source import build_model, resolve_source
    from lnn.frames import size_text

    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="lnn-bench-"))
    run = Path(args.run) if args.run else default_lite_run(work, args.model)
    source = resolve_source(run=str(run))
    random_weights = not args.run
    floors = {}  # a random model's agreement says nothing: report it, require none
    if random_weights:
        floors = {f"{p}_{what}": 0.0 for p in ("fp16", "int8") for what in ("min_agreement", "min_click_agreement")}
    options = ExportOptions(out=str(work / "export"), **floors)
    t0 = time.time()
    out = export(source, options, log=lambda line: print("  " + line))
    export_seconds = time.time() - t0
    manifest = json.loads((out / "manifest.json").read_text())

    # sizes without the input-projection fold, for comparison
    model = build_model(source)
    unfolded = work / "unfolded"
    unfolded.mkdir()
    onnx_step.export_fp32(model, unfolded / "model.onnx")
    onnx_step.convert_fp16(unfolded / "model.onnx", unfolded / "model.fp16.onnx", manifest["fp16_scheme"]["name"])
    onnx_step.convert_int8(unfolded / "model.onnx", unfolded / "model.int8.onnx", manifest["int8_scheme"]["name"])
    sizes = {m["precision"]: m["bytes"] for m in manifest["files"].values()}
    sizes_unfolded = {p: (unfolded / n).stat().st_size for p, n in
                      (("fp32", "model.onnx"), ("fp16", "model.fp16.onnx"), ("int8", "model.int8.onnx"))}  # fmt: skip

    # the frames of the first bundled episode, as every engine gets them
    index = json.loads((out / "episodes" / "index.json").read_text())["episodes"][0]
    frames = np.stack([np.array(Image.open(out / s["frame"]).convert("RGB")) for s in index["steps"]])
    text = model.text_inputs([index["task"]] * len(frames), [s["instruction"] for s in index["steps"]])  # tokens (+ strip)
    layers, state_sizes = onnx_step.tau_layers(model), onnx_step.state_sizes(model)
    options_ort = ort.SessionOptions()
    options_ort.intra_op_num_threads = 1
    options_ort.inter_op_num_threads = 1
    for key, value in manifest["session_config"].items():
        options_ort.add_session_config_entry(key, value)
    # the other fp16 and int8 schemes, for comparison (fp16 / int8 arithmetic by default)
    others = {}
    for precision, schemes, convert in (("fp16", onnx_step.FP16_SCHEMES, onnx_step.convert_fp16),
                                        ("int8", onnx_step.INT8_SCHEMES, onnx_step.convert_int8)):  # fmt: skip
        other = next(x for x in schemes if x != manifest[f"{precision}_scheme"]["name"])
        name = f"model.{precision}-{other}.onnx"
        convert(out / "model.onnx", out / name, other)
        others[f"{precision}-{other}"] = name
    sizes_other = {p: (out / name).stat().st_size for p, name in others.items()}
    files = {m["precision"]: name for name, m in manifest["files"].items()} | others
    sessions = {p: ort.InferenceSession(str(out / name), options_ort, providers=["CPUExecutionProvider"])
                for p, name in files.items()}  # fmt: skip

    threads = [1] + [n for n in args.threads if n > 1]
    tab_key = {n: "browser" if n == 1 else f"browser_{n}threads" for n in threads}  # "browser_fp32": 1 thread
    times = ({"torch": []} | {f"ort_{p}": [] for p in sessions}
             | {f"{tab_key[n]}_{p}": [] for n in threads for p in sessions})  # fmt: skip
    browser_detail = {f"{tab_key[n]}_{p}": [] for n in threads for p in sessions}
    server, url = serve_in_thread(out)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        tabs = {}
        for n in threads:
            tabs[n] = browser.new_page()
            tabs[n].goto(f"{url}?threads={n}")
            tabs[n].evaluate("window.lnnPage.ready")
        version = browser.version
        loads = []
        for r in range(args.rounds):
            loads.append(round(os.getloadavg()[0], 1))
            print(f"round {r + 1}/{args.rounds} (load average {loads[-1]})", flush=True)
            times["torch"] += torch_round(model, frames, text, args.steps)
            for p, session in sessions.items():
                times[f"ort_{p}"] += ort_round(session, frames, {k: v.numpy() for k, v in text.items()}, layers, state_sizes, args.steps)
            for n, tab in tabs.items():
                for p in sessions:
                    res = tab.evaluate(f"window.lnnPage.benchmark('{files[p] if p in others else p}', "
                                       f"{args.steps}, 20, true)")  # fmt: skip
                    if res["threads"] != n:
                        raise SystemExit(f"the page ran {res['threads']} wasm threads, asked {n} "
                                         f"(cross-origin isolated: {res['crossOriginIsolated']})")
                    times[f"{tab_key[n]}_{p}"] += res.pop("step_ms")
                    browser_detail[f"{tab_key[n]}_{p}"].append(res)
        browser.close()
    server.shutdown()

    stats = {k: summary(v) for k, v in times.items()}
    torch_ms = stats["torch"]["median_ms"]
    results = {
        "date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, shared (1-min load average at each round: {', '.join(map(str, loads))})",
        "chromium": version, "onnxruntime_web": manifest["web"]["onnxruntime_web"], "onnxruntime": ort.__version__,
        "torch": torch.__version__, "model": manifest["architecture"], "image_size": manifest["preprocessing"]["image"]["size"],
        "weights": (f"random (default Lite config{', with ' + ' '.join(args.model) if args.model else ''})"
                    if random_weights else str(source.checkpoint)),
        "export_seconds": round(export_seconds, 1), "sizes_bytes": sizes | sizes_other,
        "sizes_bytes_without_fold": sizes_unfolded, "fp16_scheme": manifest["fp16_scheme"],
        "int8_scheme": manifest["int8_scheme"],
        "parity": {p: manifest["parity"][p] for p in ("fp32", "fp16", "int8")},
        "latency": stats, "browser_rounds": browser_detail,
        "goals": {"fp16_mb": [sizes["fp16"] / 1e6, goals["fp16_mb"], sizes["fp16"] / 1e6 <= goals["fp16_mb"]],
                  "int8_mb": [sizes["int8"] / 1e6, goals["int8_mb"], sizes["int8"] / 1e6 <= goals["int8_mb"]],
                  "browser_fp32_ms": [stats["browser_fp32"]["median_ms"], goals["browser_ms"],
                                      stats["browser_fp32"]["median_ms"] <= goals["browser_ms"]]},
    }  # fmt: skip
    lines = [
        f"# Export benchmark — {results['date']}", "",
        f"Default Lite ({manifest['architecture']['parameters']:,} parameters, input {size_text(results['image_size'])} px, "
        f"{manifest['architecture']['liquid_layers']} liquid layers, rk4), weights: {results['weights']}.",
        f"Machine: {results['machine']}; Chromium {version}, onnxruntime-web {results['onnxruntime_web']} (wasm, "
        f"1 thread unless a row says more; the page cross-origin isolated), onnxruntime {ort.__version__} (1 thread), torch {torch.__version__} (1 thread).", "",
        "| file | bytes | MB | without the input-projection fold | goal |", "|---|---:|---:|---:|---|",
    ]  # fmt: skip
    for p, name in (("fp32", "model.onnx"), ("fp16", "model.fp16.onnx"), ("int8", "model.int8.onnx")):
        goal = f"≤ {goals[f'{p}_mb']:g} MB" if f"{p}_mb" in goals else ""
        lines.append(f"| {name} | {sizes[p]:,} | {sizes[p] / 1e6:.3f} | {sizes_unfolded[p] / 1e6:.3f} MB | {goal} |")
    for p, name in others.items():
        lines.append(f"| {name} (the other scheme, for comparison) | {sizes_other[p]:,} | {sizes_other[p] / 1e6:.3f} | | |")
    lines += ["", f"Schemes exported: fp16 {manifest['fp16_scheme']['name']} — {manifest['fp16_scheme']['about']}; "
              f"int8 {manifest['int8_scheme']['name']} — {manifest['int8_scheme']['about']}."]  # fmt: skip
    lines += ["", f"Step latency, batch 1, median over {args.rounds} × {args.steps} steps (p10–p90), "
              "image → outputs including preprocessing:", "",
              "| engine | precision | median ms | p10–p90 ms | vs PyTorch | vs onnxruntime (same precision) |",
              "|---|---|---:|---:|---:|---:|",
              f"| PyTorch (eager) | fp32 | {torch_ms:.2f} | {stats['torch']['p10_ms']:.2f}–{stats['torch']['p90_ms']:.2f} | 1.00 | |"]  # fmt: skip
    for p in sessions:
        o = stats[f"ort_{p}"]
        lines.append(f"| onnxruntime (Python) | {p} | {o['median_ms']:.2f} | {o['p10_ms']:.2f}–{o['p90_ms']:.2f} | "
                     f"{o['median_ms'] / torch_ms:.2f} | 1.00 |")  # fmt: skip
        for n in threads:
            b = stats[f"{tab_key[n]}_{p}"]
            lines.append(f"| Chromium, onnxruntime-web wasm{f', {n} threads' if n > 1 else ''} | {p} | {b['median_ms']:.2f} | "
                         f"{b['p10_ms']:.2f}–{b['p90_ms']:.2f} | {b['median_ms'] / torch_ms:.2f} | "
                         f"{b['median_ms'] / o['median_ms']:.2f} |")  # fmt: skip
    par = results["parity"]
    lines += ["", f"Parity at export ({manifest['parity']['episodes']} episodes × {manifest['parity']['steps']} steps, "
              f"state carried): fp32 max |Δ| τ {par['fp32']['max_abs_diff']['tau']:.2g}, logits "
              f"{par['fp32']['max_abs_diff']['action_logits']:.2g}; fp16 τ {par['fp16']['max_abs_diff']['tau']:.2g}, "
              f"logits {par['fp16']['max_abs_diff']['action_logits']:.2g}; int8 same action "
              f"{100 * par['int8']['action_agreement']:.1f}%, same click {100 * par['int8']['click_agreement']:.1f}%.", ""]  # fmt: skip
    met = {k: "met" if v[2] else "MISSED" for k, v in results["goals"].items()}
    lines += [f"Goals: fp16 ≤ {goals['fp16_mb']:g} MB {met['fp16_mb']}, int8 ≤ {goals['int8_mb']:g} MB {met['int8_mb']}, "
              f"browser fp32 median ≤ {goals['browser_ms']:g} ms {met['browser_fp32_ms']}.", ""]  # fmt: skip
    target = Path(args.out)
    target.mkdir(parents=True, exist_ok=True)
    (target / "results.json").write_text(json.dumps(results, indent=1))
    (target / "results.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
