"""One export: a checkpoint -> an export directory, written into a temporary directory next to the target
and renamed into place at the end (a failure, parity included, leaves nothing behind).

    model.onnx, model.fp16.onnx, model.int8.onnx   the streaming step (see onnx_step.py); fp16 and int8 store
                                                   the weights compactly (schemes: `fp16=`, `int8=`)
    manifest.json                                  inputs/outputs, preprocessing, actions, τ, solver, source,
                                                   file sizes, parity figures
    config.yaml                                    the training config of the checkpoint
    plots/*.png                                    τ dynamics (see lnn.plots)
    web/, episodes/                                the page and its recorded episodes (see bundle.py)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lnn.errors import ConfigError
from lnn.export import onnx_step
from lnn.frames import size_text
from lnn.export.episodes import (Stream, Trace, record_streams, reset_mask, run_onnx, run_torch, stream_dt,
                                 stream_inputs, text_by_name)
from lnn.export.parity import ParityError, bound_used, check, compare, format_figure, target_boxes
from lnn.export.source import Source, build_model, checkpoint_score
from lnn.models.glyphs import strip_spec
from lnn.models.text import CONTINUES, MAX_WORDS, SCHEME, WORD_BYTES

# 3: tokens are the bytes of the words (2 hashed them); 2: the step graph takes `dt` (seconds since the
# previous frame); 1 had none (it ran at dt = 1)
FORMAT = "lnn-export/3"
FILES = {"fp32": "model.onnx", "fp16": "model.fp16.onnx", "int8": "model.int8.onnx"}
AUTO_UNFOLDS = (1, 2, 4, 8, 16, 32)
# onnxruntime session settings the models are checked (and the page runs) with: fold the int8 weights'
# DequantizeLinear into float32 constants at load, rather than keep them as QDQ groups
SESSION_CONFIG = {"session.disable_quant_qdq": "1"}
INT8_ABOUT = {
    "weights": "int8 weights (symmetric, one scale per output channel) restored by DequantizeLinear; float32 "
               "arithmetic — onnxruntime folds them to float32 at load with session.disable_quant_qdq=1",
    "dynamic": "onnxruntime quantize_dynamic: int8 weights, activations quantised on the fly, int8 arithmetic",
}
FP16_ABOUT = {
    "weights": "fp16 weights restored to float32 by Cast; float32 arithmetic (onnxruntime folds the Casts at load)",
    "full": "fp16 weights and arithmetic (onnxruntime.transformers float16 converter), float32 inputs and outputs",
}


@dataclass
class ExportOptions:
    out: str | None = None  # None: <run or sweep dir>/export
    overwrite: bool = True  # replace an existing export at `out` (atomically)
    solver: str | None = None  # exported fixed-step solver; None: the trained one (dopri5 -> rk4)
    unfolds: int | None = None  # sub-steps; None: the trained number (a substituted solver: the fewest that fit)
    solver_tolerance: float = 1e-3  # max |Δ| of a substituted solver vs the trained model
    fold_linear: bool = True
    steps: int = 16  # steps per parity stream
    streams_per_task: int = 2
    fp32_atol: float = 1e-4
    fp16_atol: float = 1e-2  # logits, coords (τ: fp16_tau_atol)
    fp16_tau_atol: float | None = None  # None: fp16's τ is reported, not bounded (see parity.py)
    fp16_min_agreement: float = 0.99  # share of steps where fp16 picks the same action (and text)
    fp16_min_click_agreement: float = 0.99
    int8_min_agreement: float = 0.95
    int8_min_click_agreement: float = 0.95  # share of steps clicking the same place (see parity.py)
    click_tie_ratio: float = 0.5
    fp16: str = "weights"  # weights: fp16 storage, float32 arithmetic | full: fp16 arithmetic too
    int8: str = "weights"  # weights: int8 storage, float32 arithmetic | dynamic: int8 arithmetic (slower here)
    fallback_tensors: int = 8  # fp16/int8 failing parity: keep up to this many of the most sensitive weights higher
    plots: bool = True
    web: bool = True
    ort_dist: str | None = None
    explicit: tuple[str, ...] = ()  # the keys set on the command line (an LFM2 export refuses those it cannot apply)


@contextlib.contextmanager
def one_torch_thread():
    """Small models at batch ~20 gain nothing from threads, and on a busy machine lose a lot (10x here)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def default_out(source: Source) -> Path:
    base = source.given if source.given.is_dir() else source.run_dir
    return base / "export"


def _prepare_target(target: Path, overwrite: bool) -> tuple[Path, list[Path]]:
    """A fresh temporary directory beside `target` (so the final rename is atomic); folders created for it."""
    if target.exists() and not target.is_dir():
        raise ConfigError("out", f"{target} exists and is not a directory; choose another out=")
    if target.exists() and not overwrite:
        raise ConfigError("out", f"{target} already exists; pass overwrite=true to replace it, or another out=")
    created, parent = [], target.parent
    missing = []
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    try:
        for folder in reversed(missing):
            folder.mkdir()
            created.append(folder)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    except OSError as e:
        _remove_created(created)
        raise ConfigError("out", f"cannot write the export to {target} ({e.strerror or e}: {e.filename or parent}); "
                          "choose a writable out=") from None  # fmt: skip
    return tmp, created


def _remove_created(created: list[Path]) -> None:
    for folder in reversed(created):
        try:
            folder.rmdir()
        except OSError:
            pass


def _commit(tmp: Path, target: Path) -> bool:
    """Move the finished export into place; returns whether an older export was replaced."""
    replaced = target.exists()
    if replaced:
        old = target.with_name(f".{target.name}.old-{int(time.time() * 1000)}")
        target.rename(old)
        tmp.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(target)
    return replaced


def _file_info(path: Path, precision: str) -> dict:
    data = path.read_bytes()
    return {"precision": precision, "bytes": len(data), "megabytes": round(len(data) / 1e6, 3),
            "sha256": hashlib.sha256(data).hexdigest()}  # fmt: skip


def _session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    for key, value in SESSION_CONFIG.items():
        options.add_session_config_entry(key, value)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def choose_solver(model, trained: tuple[str, int], opts: ExportOptions, inputs, log) -> tuple[object, dict]:
    """The model to export (solver substituted where needed) and the manifest's solver section."""
    solver, unfolds = trained
    want = opts.solver or (solver if solver in onnx_step.FIXED_SOLVERS else "rk4")
    info = {"trained": {"solver": solver, "unfolds": unfolds}}
    if want == solver and (opts.unfolds in (None, unfolds)):
        info |= {"exported": {"solver": solver, "unfolds": unfolds}, "substitution": None}
        return model, info
    if want not in onnx_step.FIXED_SOLVERS:
        raise ConfigError("solver", f"{want!r} cannot be exported; choose one of {', '.join(onnx_step.FIXED_SOLVERS)}")
    images, text, dt = inputs
    reference = run_torch(model, images, text, dt=dt)
    candidates = [opts.unfolds] if opts.unfolds is not None else [u for u in AUTO_UNFOLDS if want != solver or u > unfolds]
    tried = []
    for u in candidates:
        candidate = onnx_step.with_solver(model, want, u)
        figure = compare(reference, run_torch(candidate, images, text, dt=dt))
        worst = max(figure["max_abs_diff"][k] for k in ("action_logits", "coords", "tau"))
        tried.append((u, worst))
        if worst <= opts.solver_tolerance:
            figure |= {"against": f"the trained model ({solver}, {unfolds} unfold(s)) in PyTorch",
                       "tolerance": opts.solver_tolerance, "passed": True, "unfolds_tried": [t[0] for t in tried]}  # fmt: skip
            info |= {"exported": {"solver": want, "unfolds": u}, "substitution": figure}
            log(f"solver: trained with {solver} ({unfolds} unfold(s)); exporting {want} with {u} unfold(s) — "
                + format_figure(f"vs {solver}", figure))  # fmt: skip
            return candidate, info
    shown = ", ".join(f"{u} unfold(s): {w:.2g}" for u, w in tried)
    key = "unfolds" if opts.unfolds is not None else "solver"
    raise ConfigError(key, f"the model was trained with {solver}; {want} differs from it by more than "
                      f"solver_tolerance={opts.solver_tolerance:g} ({shown}); pass solver=<{'|'.join(onnx_step.FIXED_SOLVERS)}> "
                      "unfolds=<n>, or a larger solver_tolerance")  # fmt: skip


def _records(streams: list[Stream], trace: Trace, columns: list[int]):
    from lnn.envs import ACTIONS
    from lnn.plots import EpisodeRecord

    records = []
    for b in columns:
        s = streams[b]
        ids = trace.action_logits[:, b].argmax(-1)
        actions, points, correct = [], [], []
        for t, a in enumerate(ids):
            name = ACTIONS[a] if a < len(ACTIONS) else str(a)
            x, y = (float(v) for v in trace.coords[t, b])
            truth = s.truth[t]
            ok = name == truth["action"]
            if ok and name == "click" and truth.get("box"):
                x0, y0, x1, y1 = truth["box"]
                ok = x0 <= x <= x1 and y0 <= y <= y1
            actions.append(name)
            points.append((x, y) if name == "click" else None)
            correct.append(ok)
        seeds = sorted(set(s.seeds))
        layers = trace.state[: len(trace.tau)]  # the liquid layers' states, first; the model's extra state follows
        records.append(EpisodeRecord(
            task=s.task, frames=list(s.frames), tau=trace.taus()[:, b], actions=actions, points=points, correct=correct,
            new_episode=list(s.new_episode), states=np.stack([h[:, b] for h in layers], 1) if layers else None,
            label=f"{len(seeds)} episode(s), test seeds {seeds[0]}–{seeds[-1]}",
        ))  # fmt: skip
    return records


def write_plots(out: Path, streams, trace: Trace, tau_bounds, log) -> list[str]:
    from lnn import plots

    if not trace.tau:
        log("plots: skipped (the model has no liquid layers, so no τ)")
        return []
    folder = out / "plots"
    folder.mkdir()
    first = [next(b for b, s in enumerate(streams) if s.task == task) for task in dict.fromkeys(s.task for s in streams)]
    every = list(range(len(streams)))
    shown = _records(streams, trace, first)
    everything = _records(streams, trace, every)
    plots.plot_tau_steps(shown, tau_bounds, folder / "tau_over_steps.png",
                         "τ of each liquid layer over 16 steps of each task family (state reset at each new episode)")  # fmt: skip
    plots.plot_tau_by_task(everything, tau_bounds, folder / "tau_by_task.png")
    plots.plot_trajectories(everything, folder / "hidden_trajectories.png")
    names = ["plots/tau_over_steps.png", "plots/tau_by_task.png", "plots/hidden_trajectories.png"]
    log(f"plots: {', '.join(names)}")
    return names


def export(source: Source, opts: ExportOptions | None = None, log=print) -> Path:
    """Export `source` as described in the module doc; returns the export directory."""
    opts = opts or ExportOptions()
    if opts.steps < 1 or opts.streams_per_task < 1:
        raise ConfigError("parity.steps" if opts.steps < 1 else "parity.streams_per_task", "must be >= 1")
    if opts.fallback_tensors < 0:
        raise ConfigError("parity.fallback_tensors", f"must be >= 0 (0: no fallback), got {opts.fallback_tensors}")
    if not 0 < opts.click_tie_ratio <= 1:  # 0 would call every click a tie
        raise ConfigError("parity.click_tie_ratio", f"must be in (0, 1], got {opts.click_tie_ratio}")
    for precision in ("fp16", "int8"):  # a floor above 1 would fail every export, one below 0 none
        for what in ("min_agreement", "min_click_agreement"):
            floor = getattr(opts, f"{precision}_{what}")
            if not 0 <= floor <= 1:
                raise ConfigError(f"parity.{precision}_{what}", f"must be a share of steps in [0, 1], got {floor}")
    if opts.fp16 not in onnx_step.FP16_SCHEMES:
        raise ConfigError("fp16", f"unknown scheme {opts.fp16!r}; choose one of {', '.join(onnx_step.FP16_SCHEMES)}")
    if opts.int8 not in onnx_step.INT8_SCHEMES:
        raise ConfigError("int8", f"unknown scheme {opts.int8!r}; choose one of {', '.join(onnx_step.INT8_SCHEMES)}")
    if opts.unfolds is not None and not (isinstance(opts.unfolds, int) and opts.unfolds >= 1):
        raise ConfigError("unfolds", f"must be an integer >= 1 or null, got {opts.unfolds!r}")
    target = Path(opts.out) if opts.out else default_out(source)
    model = build_model(source)  # bad checkpoints stop here, before anything is written
    ort_dist = None
    if model.family == "lfm2":
        from lnn.export.lfm2 import check_lfm2_options

        check_lfm2_options(opts.explicit)
    elif opts.web:
        from lnn.export.bundle import require_ort_dist

        ort_dist = require_ort_dist(opts.ort_dist)  # before any export work
    tmp, created = _prepare_target(target, opts.overwrite)
    try:
        with one_torch_thread():
            if model.family == "lfm2":  # LFM2-Liquid / hybrid: vision, decoder step, heads
                manifest = _export_lfm2_into(tmp, source, model, log)
            else:
                manifest = _export_into(tmp, source, model, opts, ort_dist, log)
        manifest["export_dir"] = str(target.resolve())
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
        replaced = _commit(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_created(created)
        raise
    log(f"{'replaced' if replaced else 'wrote'} {target}")
    return target


def _export_lfm2_into(tmp: Path, source: Source, model, log) -> dict:
    """An LFM2 policy: its own three graphs and parity (lnn.export.lfm2); no web page (a 450M model
    is not for the browser), no fp16/int8 variants (options set for those: check_lfm2_options)."""
    from lnn.export.lfm2 import export_lfm2

    parity = export_lfm2(model, tmp)
    manifest = json.loads((tmp / "manifest.json").read_text())
    manifest["source"] = source.describe()
    log(f"onnx: {', '.join(sorted(p.name for p in tmp.glob('*.onnx')))}; parity (max |Δ| vs PyTorch): "
        + ", ".join(f"{k} {v:.2g}" for k, v in _flat_numbers(parity)))  # fmt: skip
    return manifest


def _flat_numbers(d: dict, prefix: str = ""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _flat_numbers(v, f"{prefix}{k}.")
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            yield f"{prefix}{k}", v


def _export_into(tmp: Path, source: Source, model, opts: ExportOptions, ort_dist, log) -> dict:
    log(f"checkpoint: {source.checkpoint}\n  chosen because: {source.reason}")
    if source.score is None and source.checkpoint.name == "best.ckpt":
        source.score = checkpoint_score(source.checkpoint, source.monitor)
    layers, sizes = onnx_step.tau_layers(model), onnx_step.state_sizes(model)

    # streams of recorded frames: the parity episodes, the plots' and the page's episodes
    env_name = str(source.config.data.get("env", "gui"))
    streams = _record_streams(source.config, env_name, model.image_size, opts)
    images, text = stream_inputs(model, streams)  # tokens (and a match_text model's strips)
    dt = stream_dt(streams)  # each frame's real elapsed time: parity holds at the times the env gives

    trained = onnx_step.solver_of(model)
    solver_info = None
    if trained is not None:
        model, solver_info = choose_solver(model, trained, opts, (images, text, dt), log)

    carry = run_torch(model, images, text, dt=dt)  # the reference: state carried through all 16 steps
    resets = reset_mask(streams, True)
    reset = run_torch(model, images, text, resets, dt=dt)  # as the page plays episodes by default

    paths, folded = _export_graphs(model, tmp, opts, log)
    parity = {"episodes": len(streams), "steps": opts.steps, "state": "carried through every step of each episode",
              "reference": "PyTorch, model.step (float32), the same frames and tokens",
              "episodes_from": f"{env_name} env, oracle-driven, test seeds",
              "dt": {"about": "each step's elapsed time as the env reported it, fed to both (seconds)",
                     "min": round(float(dt.min()), 6), "max": round(float(dt.max()), 6)}}  # fmt: skip
    parity |= _check_parity(paths, carry, (images, text, dt), target_boxes(streams), layers, sizes, opts,
                            log)  # fmt: skip

    plot_files = write_plots(tmp, streams, reset, (model.liquid_cells()[0].tau_min, model.liquid_cells()[0].tau_max)
                             if layers else (0, 1), log) if opts.plots else []  # fmt: skip
    web = _write_web(tmp, streams, text["tokens"], (reset, carry), ort_dist, opts, source, log, model) if opts.web else None

    (tmp / "config.yaml").write_text((source.config_path).read_text())
    manifest = _manifest(source, model, opts, layers, folded)
    manifest |= {"solver": solver_info, "files": {name: _file_info(paths[p], p) for p, name in FILES.items()},
                 "fp16_scheme": {"name": opts.fp16, "about": FP16_ABOUT[opts.fp16]},
                 "int8_scheme": {"name": opts.int8, "about": INT8_ABOUT[opts.int8]},
                 "session_config": SESSION_CONFIG, "parity": parity, "plots": plot_files, "web": web}  # fmt: skip
    return manifest


def _record_streams(cfg, env_name: str, image_size: int | list[int], opts: ExportOptions) -> list[Stream]:
    """The run's env and tasks, oracle-driven on test seeds: `streams_per_task` streams of `steps` frames."""
    from lnn.envs.registry import check_tasks

    tasks = check_tasks(env_name, cfg.data.get("tasks"))  # names and kinds (`memory`) -> names; null: all
    env_kwargs = dict(cfg.data.get("env_kwargs") or {})
    return record_streams(env_name, tasks, image_size, opts.steps, opts.streams_per_task, env_kwargs=env_kwargs)


def _played_streams(cfg, model, opts: ExportOptions) -> list[tuple[Stream, np.ndarray, Trace, Trace]]:
    """A stream per task of the model acting in the run's env (in Chromium), with its tokens and PyTorch's traces
    (state reset at each new episode, as it played, and carried)."""
    from lnn.envs.registry import check_tasks
    from lnn.export.episodes import record_played

    env_name = str(cfg.data.env)
    tasks = check_tasks(env_name, cfg.data.get("tasks"))
    streams = record_played(model, env_name, tasks, opts.steps, cfg.data.get("max_steps"),
                            env_kwargs=dict(cfg.data.get("env_kwargs") or {}))  # fmt: skip
    played = []
    for stream in streams:
        images, text = stream_inputs(model, [stream])
        dt = stream_dt([stream])
        played.append((stream, text["tokens"], run_torch(model, images, text, reset_mask([stream], True), dt=dt),
                       run_torch(model, images, text, dt=dt)))  # fmt: skip
    return played


def _export_graphs(model, tmp: Path, opts: ExportOptions, log) -> tuple[dict[str, Path], list]:
    """model.onnx (input projection folded where asked), then its fp16 and int8 variants."""
    graph_model, folded = onnx_step.fold_input_projection(model) if opts.fold_linear else (model, [])
    paths = {p: tmp / name for p, name in FILES.items()}
    t0 = time.time()
    onnx_step.export_fp32(graph_model, paths["fp32"])
    onnx_step.convert_fp16(paths["fp32"], paths["fp16"], opts.fp16)
    onnx_step.convert_int8(paths["fp32"], paths["int8"], opts.int8)
    log(f"onnx: exported in {time.time() - t0:.1f} s — " + ", ".join(
        f"{name} {paths[p].stat().st_size / 1e6:.3f} MB" for p, name in FILES.items()))  # fmt: skip
    return paths, folded


def _check_parity(paths: dict[str, Path], carry: Trace, inputs, boxes, layers: int, sizes: list[int],
                  opts: ExportOptions, log) -> dict:  # fmt: skip
    """Each precision's graph in onnxruntime against PyTorch (state carried), clicks judged against the episodes'
    target `boxes`; raises ParityError out of bounds. An fp16 or int8 graph (`weights` scheme) that fails gets the
    fallback first: its weights that move the outputs most are kept at the next precision up (`_keep_sensitive`)."""
    images, text, dt = inputs
    bounds = {"fp32": {"atol": opts.fp32_atol, "tau_atol": opts.fp32_atol},
              "fp16": {"atol": opts.fp16_atol, "tau_atol": opts.fp16_tau_atol, "min_agreement": opts.fp16_min_agreement,
                       "min_click_agreement": opts.fp16_min_click_agreement},
              "int8": {"min_agreement": opts.int8_min_agreement,
                       "min_click_agreement": opts.int8_min_click_agreement}}  # fmt: skip

    def measure(path: Path, steps: int | None = None) -> dict:
        steps = steps or len(images)
        part = {k: v[:steps] for k, v in text_by_name(text).items()}
        trace = run_onnx(_session(path), images[:steps], part, layers, sizes, dt=dt[:steps])
        return compare(carry.first(steps), trace, boxes[:steps], opts.click_tie_ratio)

    parity = {}
    for precision, path in paths.items():
        figure = measure(path)
        try:
            parity[precision] = check(precision, figure, **bounds[precision])
        except ParityError as failed:
            if precision == "fp32" or getattr(opts, precision) != "weights" or opts.fallback_tensors == 0:
                raise
            parity[precision] = _keep_sensitive(precision, str(failed), paths, measure, bounds[precision], opts, log)
        log("parity " + format_figure(precision, parity[precision]))
    return parity


FALLBACK = {"fp16": ("float32", onnx_step.convert_fp16), "int8": ("fp16", onnx_step.convert_int8)}
PROBE_STEPS = 4  # steps over which each weight's effect alone is measured: it shows from the first step


def _keep_sensitive(precision: str, failed: str, paths: dict[str, Path], measure, bounds: dict, opts: ExportOptions,
                    log) -> dict:  # fmt: skip
    """The fallback for an fp16 / int8 graph that failed parity. Each reduced weight's effect alone is measured (the
    graph with only it reduced, over the first PROBE_STEPS steps, as the share of the nearest bound it uses); then
    the 1, 2, .. `opts.fallback_tensors` weights with the largest effects stay at the next precision up (fp16's in
    float32, int8's in fp16) until parity passes. Rounding errors add up over many weights, so this finds the
    few that matter (a click head's, a normalisation's scale) and keeps the file small; raises ParityError if
    `fallback_tensors` are not enough."""
    higher, convert = FALLBACK[precision]
    first_try = failed.split(" (over")[0]
    candidates = onnx_step.reduced_weights(paths["fp32"], precision)
    limit = min(opts.fallback_tensors, len(candidates))
    if limit == 0:
        raise ParityError(failed)
    log(f"{first_try}; measuring the effect of each of its {len(candidates)} reduced weights alone")
    probe = paths[precision].with_name(f"probe.{precision}.onnx")
    names = frozenset(name for name, _, _ in candidates)
    effects = []
    for i, (name, shape, op) in enumerate(candidates):
        convert(paths["fp32"], probe, keep=names - {name})
        effects.append(bound_used(measure(probe, PROBE_STEPS), **bounds))
        if (i + 1) % 10 == 0 or i + 1 == len(candidates):
            log(f"  {i + 1}/{len(candidates)} weights measured")
    probe.unlink()
    order = sorted(range(len(candidates)), key=lambda i: effects[i], reverse=True)
    for count in range(1, limit + 1):
        kept = [candidates[i] for i in order[:count]]
        convert(paths["fp32"], paths[precision], keep=frozenset(name for name, _, _ in kept))
        figure = measure(paths[precision])
        tried = (f" with its {count} most sensitive weight(s) in {higher} "
                 f"(parity.fallback_tensors={opts.fallback_tensors})")  # fmt: skip
        try:
            check(precision, figure, **bounds, tried=tried)
            break
        except ParityError:
            if count == limit:
                raise
    figure["kept"] = {"precision": higher, "first_try": first_try,
                      "weights": [{"name_in_model_onnx": name, "shape": list(shape), "read_by": op,
                                   "bound_used_alone": round(effects[i][0], 4)}
                                  for i, (name, shape, op) in zip(order, kept)]}  # fmt: skip
    log(f"{precision}: kept {len(kept)} weight(s) in {higher}: " + ", ".join(
        f"{op} {'x'.join(map(str, shape))}" for _, shape, op in kept))  # fmt: skip
    return figure


def _write_web(tmp: Path, streams: list[Stream], tokens, traces: tuple[Trace, Trace], ort_dist, opts: ExportOptions,
               source: Source, log, model) -> dict:  # fmt: skip
    """The page, onnxruntime-web and one recorded episode per task family (with the reset and carried traces);
    for a run trained on MiniWoB, also a stream per task the model played itself in Chromium."""
    from lnn.export.bundle import copy_page, ort_version, write_episodes

    reset, carry = traces
    copy_page(tmp, ort_dist)
    columns = [next(b for b, s in enumerate(streams) if s.task == t) for t in dict.fromkeys(s.task for s in streams)]
    played = _played_streams(source.config, model, opts) if source.config.data.get("env") == "miniwob" else []
    count = write_episodes(tmp, streams, tokens, reset, carry, columns, played)
    web = {"page": "web/index.html", "onnxruntime_web": ort_version(ort_dist), "episodes": "episodes/index.json",
           "episode_count": count, "serve": f"python -m lnn.export.serve {Path(opts.out or default_out(source))}"}  # fmt: skip
    log(f"web page: web/index.html with {count} recorded episodes (onnxruntime-web {web['onnxruntime_web']})")
    return web


def _manifest(source: Source, model, opts: ExportOptions, layers: int, folded: list) -> dict:
    """The manifest's description of the model: what a reader needs first, architecture, I/O, preprocessing, τ."""
    from lnn.envs import ACTIONS, KEYS

    cfg = source.config
    cell = model.liquid_cells()[0] if layers else None
    tokenizer = {"scheme": SCHEME, "max_words": MAX_WORDS, "word_bytes": WORD_BYTES}
    return {
        "format": FORMAT,
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        # what a reader of the model needs first (lnn.agent's OnnxPolicy reads these keys)
        "model": FILES["fp32"],
        "image_size": model.image_size,
        "max_tokens": model.max_tokens,
        # text: tokens of '<task> <instruction>'; pixels: the model reads the screenshot only, tokens are all padding
        "instruction": getattr(model, "instruction", "text"),
        "tokenizer": tokenizer,
        "source": source.describe(),
        "architecture": {
            "class": str(cfg.model.get("_target_", type(model).__name__)),
            "parameters": sum(p.numel() for p in model.parameters()),
            "core": str(cfg.model.get("core", "liquid")), "liquid_layers": layers,
            "hidden_size": onnx_step.hidden_size(model), "state_sizes": onnx_step.state_sizes(model),
            "graph_simplifications": folded,
        },
        **onnx_step.io_spec(model),
        "preprocessing": {
            "image": {"size": model.image_size, "layout": "NCHW: (batch, 3 RGB channels, height, width)",
                      "scale": "uint8 / 255, giving [0, 1]",
                      "resize": f"to {size_text(model.image_size)} (height × width; the env renders at this size)",
                      "normalisation": "none outside: the graph applies (x − 0.5) · 4 itself"},
            "tokens": {**tokenizer, "text": "'<task> <instruction>'; an empty instruction gives all padding",
                       "words": "numbers with their sign, runs of letters/digits, any other non-space character "
                                "alone (lnn.models.text; the page's lnn.js is the same); case kept",
                       "ids": f"each word in slots of word_bytes ids: UTF-8 byte + 1, 0 pads; a longer word "
                              f"goes on in the next slots, each opened by {CONTINUES}; max_words slots, flattened"},
            **({"strip": strip_spec(model.strip_scale, model.match_styles)} if "strip" in onnx_step.text_names(model) else {}),
        },
        "actions": list(ACTIONS[: model.num_actions]),
        # what key_logits' classes press (with a key head; without one a key action presses Enter)
        **({"keys": list(KEYS)} if "key_logits" in onnx_step.head_names(model) else {}),
        "tau": None if cell is None else {"min": cell.tau_min, "max": cell.tau_max, "per": cell.tau_per,
                                           "size": cell.tau_size,
                                           "unit": "seconds, as the dt input (1 per frame when dt = 1)"},
    }
