"""Which checkpoint to export, the config that built it, and the model rebuilt from both.

`resolve_source(ckpt=..., run=...)` accepts a checkpoint file, a run directory, or a multirun (sweep)
directory — for a sweep, the best job by the monitored metric (the same choice as the sweep's
summary) — and says which checkpoint it took and why. Every bad input raises ConfigError / DataError
with one line naming the path and the fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from lnn.config import load_config
from lnn.errors import ConfigError, DataError
from lnn.runs import (
    BEST,
    CHECKPOINTS,
    CONFIG,
    DEFAULT_MODE,
    DEFAULT_MONITOR,
    SCORES,
    checkpoint_in,
    collect_jobs,
    is_sweep_dir,
    job_score,
    load_model,
    monitor_of,
    pick_best,
    read_results,
)


@dataclass
class Source:
    checkpoint: Path
    config_path: Path
    config: Mapping  # the run's config as lnn.config.load_config reads it (keys as attributes too)
    run_dir: Path  # the run the checkpoint belongs to
    given: Path  # what the user named (a file, a run, a sweep)
    reason: str  # why this checkpoint
    monitor: str = DEFAULT_MONITOR
    mode: str = DEFAULT_MODE
    score: float | None = None  # the monitored value of this checkpoint, where known
    sweep: dict = field(default_factory=dict)  # for a sweep: jobs finished / failed, the best job

    def describe(self) -> dict:
        return {
            "checkpoint": str(self.checkpoint.resolve()),
            "config": str(self.config_path.resolve()),
            "run_dir": str(self.run_dir.resolve()),
            "given": str(self.given),
            "selected_because": self.reason,
            "metric": {"name": self.monitor, "mode": self.mode, "value": self.score},
            **({"sweep": self.sweep} if self.sweep else {}),
        }


def _config_for(ckpt: Path) -> Path:
    for folder in (ckpt.parent.parent, ckpt.parent):  # <run>/checkpoints/x.ckpt, or x.ckpt beside config.yaml
        if (folder / CONFIG).exists():
            return folder / CONFIG
    raise ConfigError("ckpt", f"{ckpt}: no {CONFIG} in its run directory ({ckpt.parent.parent}) to rebuild the "
                      "model from; export checkpoints written by train.py (logs/runs/<time>/checkpoints/)")  # fmt: skip


def _pick_in_run(run: Path) -> tuple[Path, str]:
    path = checkpoint_in(run)
    if path is None:
        folder = run / CHECKPOINTS
        raise ConfigError("run", f"{run} has no checkpoints ({folder}/best.ckpt or last.ckpt): the run stopped before "
                          "its first checkpoint; train longer or pick another run")  # fmt: skip
    why = "the run's best checkpoint by the monitored metric" if path.name == BEST else (
        "the run has no best.ckpt (no validation finished), so its last checkpoint")  # fmt: skip
    return path, why


def resolve_source(ckpt: str | None = None, run: str | None = None) -> Source:
    """The checkpoint to export: from `ckpt` (a file) or `run` (a run or a sweep directory)."""
    if ckpt and run:
        raise ConfigError("ckpt", "give either ckpt=<file> or run=<run or multirun dir>, not both")
    if not ckpt and not run:
        raise ConfigError("run", "nothing to export: give run=<run or multirun dir> (e.g. run=logs/multiruns/<time>) "
                          "or ckpt=<checkpoint file>")  # fmt: skip
    if ckpt:
        path = Path(ckpt)
        if not path.is_file():
            raise ConfigError("ckpt", f"{path}: no such checkpoint file")
        config_path = _config_for(path)
        cfg = load_config(config_path)
        monitor, mode = monitor_of(cfg)
        return Source(path, config_path, cfg, config_path.parent, path, "the checkpoint given (ckpt=)", monitor, mode)

    given = Path(run)
    if not given.is_dir():
        raise ConfigError("run", f"{given}: no such directory; give a run (logs/runs/<time>) or a sweep "
                          "(logs/multiruns/<time>)")  # fmt: skip
    if (given / CONFIG).exists() or (given / CHECKPOINTS).is_dir():  # one run
        path, why = _pick_in_run(given)
        config_path = _config_for(path)
        cfg = load_config(config_path)
        monitor, mode = monitor_of(cfg)
        score = job_score(read_results(given), monitor) if path.name == BEST else None
        shown = f" ({monitor} = {score:.4g})" if score is not None else ""
        return Source(path, config_path, cfg, given, given, f"{why}{shown}", monitor, mode, score)

    if not is_sweep_dir(given):
        raise ConfigError("run", f"{given} is neither a run directory (with {CONFIG} and checkpoints/) nor a sweep "
                          "(job directories with .hydra/); give logs/runs/<time> or logs/multiruns/<time>")  # fmt: skip
    rows = collect_jobs(given)
    best = pick_best(rows, given)
    if best is None:
        errors = sorted({r["error"] for r in rows if r.get("error")})
        shown = f" (e.g. {errors[0]})" if errors else ""
        raise ConfigError("run", f"every job of the sweep {given} failed ({len(rows)} job(s)){shown}: nothing to "
                          f"export; see {given}/summary.md or the jobs' train.log")  # fmt: skip
    if best.checkpoint is None:
        raise DataError(f"{best.dir}: the sweep's best job has no checkpoints/best.ckpt (deleted?); "
                        "export another job with run=<job dir>")  # fmt: skip
    config_path = _config_for(best.checkpoint)
    cfg = load_config(config_path)
    sweep = {"dir": str(given.resolve()), "jobs": len(rows), "finished": best.finished, "failed": best.failed,
             "best_job": best.job}  # fmt: skip
    return Source(best.checkpoint, config_path, cfg, best.dir, given, best.reason, best.monitor, best.mode,
                  best.value, sweep)  # fmt: skip


# --- the model --------------------------------------------------------------------------------------
def checkpoint_score(path: Path, monitor: str) -> float | None:
    """The best value of `monitor` stored with a Lightning checkpoint: its ModelCheckpoint state, or for a
    weights-only checkpoint (best.ckpt) the value it was saved at (PolicyModule.on_save_checkpoint)."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception:
        return None
    for state in (ckpt.get("callbacks") or {}).values():
        if isinstance(state, dict) and state.get("monitor") == monitor and state.get("best_model_score") is not None:
            return float(state["best_model_score"])
    if "callbacks" not in ckpt and monitor in (ckpt.get(SCORES) or {}):
        return float(ckpt[SCORES][monitor])
    return None


def build_model(source: Source) -> torch.nn.Module:
    """The checkpoint's model (from its spec, or the source's config) with its weights, eval, float32 on the CPU."""
    return load_model(source.checkpoint, source.config_path).float().eval()
