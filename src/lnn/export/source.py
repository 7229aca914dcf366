"""Which checkpoint to export, the config that built it, and the model rebuilt from both.

`resolve_source(ckpt=..., run=...)` accepts a checkpoint file, a run directory, or a multirun (sweep)
directory — for a sweep, the best job by the monitored metric (the same choice as the sweep's
summary) — and says which checkpoint it took and why. Every bad input raises ConfigError / DataError
with one line naming the path and the fix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from lnn.errors import ConfigError, DataError
from lnn.training.sweep import DEFAULT_MODE, DEFAULT_MONITOR, collect_jobs, is_sweep_dir, job_score, pick_best

CONFIG = "config.yaml"
CHECKPOINTS = ("best.ckpt", "last.ckpt")


@dataclass
class Source:
    checkpoint: Path
    config_path: Path
    config: DictConfig
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


def _load_config(path: Path) -> DictConfig:
    try:
        cfg = OmegaConf.load(path)
    except Exception as e:
        raise DataError(f"{path}: not a readable config ({type(e).__name__}: {e})") from e
    if not isinstance(cfg, DictConfig) or "model" not in cfg:
        raise DataError(f"{path}: has no `model` section; is it a train.py run's config.yaml?")
    return cfg


def _monitor(cfg: DictConfig) -> tuple[str, str]:
    best = OmegaConf.select(cfg, "callbacks.best", default=None)
    if best is None:
        return DEFAULT_MONITOR, DEFAULT_MODE
    return str(best.get("monitor") or DEFAULT_MONITOR), str(best.get("mode") or DEFAULT_MODE)


def _run_score(run: Path, monitor: str) -> float | None:
    try:
        return job_score(json.loads((run / "results.json").read_text()), monitor)
    except (OSError, ValueError):
        return None


def _pick_in_run(run: Path) -> tuple[Path, str]:
    folder = run / "checkpoints"
    for name in CHECKPOINTS:
        if (folder / name).exists():
            why = "the run's best checkpoint by the monitored metric" if name == "best.ckpt" else (
                "the run has no best.ckpt (no validation finished), so its last checkpoint")  # fmt: skip
            return folder / name, why
    raise ConfigError("run", f"{run} has no checkpoints ({folder}/best.ckpt or last.ckpt): the run stopped before "
                      "its first checkpoint; train longer or pick another run")  # fmt: skip


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
        cfg = _load_config(config_path)
        monitor, mode = _monitor(cfg)
        return Source(path, config_path, cfg, config_path.parent, path, "the checkpoint given (ckpt=)", monitor, mode)

    given = Path(run)
    if not given.is_dir():
        raise ConfigError("run", f"{given}: no such directory; give a run (logs/runs/<time>) or a sweep "
                          "(logs/multiruns/<time>)")  # fmt: skip
    if (given / CONFIG).exists() or (given / "checkpoints").is_dir():  # one run
        path, why = _pick_in_run(given)
        config_path = _config_for(path)
        cfg = _load_config(config_path)
        monitor, mode = _monitor(cfg)
        score = _run_score(given, monitor) if path.name == "best.ckpt" else None
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
    cfg = _load_config(config_path)
    sweep = {"dir": str(given.resolve()), "jobs": len(rows), "finished": best.finished, "failed": best.failed,
             "best_job": best.job}  # fmt: skip
    return Source(best.checkpoint, config_path, cfg, best.dir, given, best.reason, best.monitor, best.mode,
                  best.value, sweep)  # fmt: skip


# --- the model --------------------------------------------------------------------------------------
def read_checkpoint(path: Path) -> dict:
    """The checkpoint's state dict of the model (prefix `model.` and torch.compile's `_orig_mod.` removed)."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # zip / pickle errors: truncated or not a checkpoint
        raise DataError(f"{path}: not a readable checkpoint ({type(e).__name__}: {str(e).splitlines()[0][:160]}); "
                        "it may be truncated or not a torch checkpoint") from e  # fmt: skip
    state = ckpt.get("state_dict") if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or not state:
        raise DataError(f"{path}: has no state_dict; is it a Lightning checkpoint written by train.py?")
    model_state = {}
    for key, value in state.items():
        if key.startswith("model."):
            key = key.removeprefix("model.").replace("_orig_mod.", "", 1)
            model_state[key] = value
    if not model_state:
        raise DataError(f"{path}: no `model.*` weights in its state_dict; is it a checkpoint of lnn's PolicyModule?")
    return model_state


def checkpoint_score(path: Path, monitor: str) -> float | None:
    """The best value of `monitor` stored with a Lightning checkpoint (its ModelCheckpoint state)."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception:
        return None
    for state in (ckpt.get("callbacks") or {}).values():
        if isinstance(state, dict) and state.get("monitor") == monitor and state.get("best_model_score") is not None:
            return float(state["best_model_score"])
    return None


def build_model(source: Source) -> torch.nn.Module:
    """The model of the source's config with the checkpoint's weights, in eval mode, float32 on the CPU."""
    from lnn.training.run import instantiate_checked

    try:
        model = instantiate_checked(source.config.model, "model")
    except ConfigError as e:
        raise ConfigError(e.key, f"{e.message} (in {source.config_path})") from None
    except Exception as e:
        raise DataError(f"{source.config_path}: its model section cannot be built ({type(e).__name__}: {e})") from e
    state = read_checkpoint(source.checkpoint)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or shapes:
        problems = []
        if shapes:
            k = shapes[0]
            problems.append(f"{len(shapes)} shape mismatch(es), e.g. {k}: checkpoint {tuple(state[k].shape)} vs "
                            f"config {tuple(own[k].shape)}")  # fmt: skip
        if missing:
            problems.append(f"{len(missing)} weight(s) missing from the checkpoint, e.g. {missing[0]}")
        if unexpected:
            problems.append(f"{len(unexpected)} unknown weight(s) in the checkpoint, e.g. {unexpected[0]}")
        raise ConfigError("ckpt", f"{source.checkpoint} does not match the model of {source.config_path}: "
                          + "; ".join(problems))  # fmt: skip
    model.load_state_dict(state)
    return model.float().eval()
