"""What a training run leaves on disk, which job of a sweep is best, and the one checkpoint → model loader.

A run directory (logs/runs/<time>, or a sweep's job logs/multiruns/<time>/<n>):

    config.yaml              the resolved config
    checkpoints/best.ckpt    best monitored metric      checkpoints/last.ckpt   resume point
    results.json             final metrics              run.json                status (for resume)

A checkpoint carries its model spec (`model_spec`: the model's class and constructor arguments), so
`load_policy("best.ckpt")` rebuilds the model from the file alone; a checkpoint written before specs
existed is rebuilt from its run's config.yaml (`model._target_` and keys). No Hydra here.
"""

from __future__ import annotations

import importlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

from lnn.errors import ConfigError, DataError

CONFIG = "config.yaml"
CHECKPOINTS = "checkpoints"
BEST, LAST = "best.ckpt", "last.ckpt"
CHECKPOINT_NAMES = (BEST, LAST)  # in this order of preference
RESULTS = "results.json"
RUN_INFO = "run.json"
SPEC = "model_spec"  # the checkpoint key of the model spec
SCORES = "monitored"  # the checkpoint key of the monitored metrics' values when it was saved

DEFAULT_MONITOR, DEFAULT_MODE = "val/success", "max"
PARAMS = ("model.tau_min", "model.tau_max", "model.solver", "model.unfolds")  # shown for every sweep job


# --- config files, read without Hydra ---------------------------------------------------------------
class _Loader(yaml.SafeLoader):
    """YAML as OmegaConf reads it: `1e-3` is a float (plain YAML 1.1 wants `1.0e-3`)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                   |\.[0-9_]+(?:[eE][-+][0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)  # fmt: skip


def read_yaml(path: Path):
    return yaml.load(Path(path).read_text(), Loader=_Loader)


def select(cfg, dotted: str, default=None):
    """cfg["a"]["b"] for "a.b" (dicts or config objects), else default."""
    for key in dotted.split("."):
        if not isinstance(cfg, Mapping) or key not in cfg:
            return default
        cfg = cfg[key]
    return cfg


def monitor_of(cfg) -> tuple[str, str]:
    """The metric (and mode) the run's best checkpoint is chosen by."""
    best = select(cfg, "callbacks.best") or {}
    return str(best.get("monitor") or DEFAULT_MONITOR), str(best.get("mode") or DEFAULT_MODE)


# --- sweeps ----------------------------------------------------------------------------------------
def is_sweep_dir(path: Path) -> bool:
    """A multirun directory: it has job subdirectories written by Hydra (each with .hydra/overrides.yaml)."""
    return path.is_dir() and (
        (path / "multirun.yaml").exists() or any((p / ".hydra" / "overrides.yaml").exists() for p in path.iterdir())
    )


def _job_error(job: Path) -> str:
    """The last `error:` line a failed job logged (run_or_explain logs it in a sweep), else ''."""
    for log in sorted(job.glob("*.log")):
        lines = [line for line in log.read_text(errors="replace").splitlines() if "error:" in line]
        if lines:
            return lines[-1].split("error:", 1)[1].strip()
    return ""


def job_score(results: dict, monitor: str) -> float | None:
    """The job's monitored value: its best checkpoint's score when recorded, else the last validation's."""
    value = results.get("best_score") if results.get("monitor") == monitor else None
    value = results.get(monitor) if value is None else value
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def read_results(run: Path) -> dict:
    """The run's results.json ({} when it has none or it is unreadable: the run did not finish)."""
    try:
        return json.loads((run / RESULTS).read_text())
    except (OSError, ValueError):
        return {}


def collect_jobs(sweep_dir: Path) -> list[dict]:
    """A row per job directory of a sweep (see job_row)."""
    jobs = sorted((p for p in sweep_dir.iterdir() if p.is_dir()), key=lambda p: (len(p.name), p.name))
    return [row for row in map(job_row, jobs) if row is not None]


def job_row(job: Path) -> dict | None:
    """A train.py run's row: job, dir, overrides, status, τ bounds and solver (resolved), results; None for a
    directory that is not a run (no .hydra/overrides.yaml)."""
    overrides_file = job / ".hydra" / "overrides.yaml"
    if not overrides_file.exists():
        return None
    overrides = [str(o) for o in read_yaml(overrides_file) or []]
    cfg_file = job / CONFIG if (job / CONFIG).exists() else job / ".hydra" / CONFIG
    cfg = read_yaml(cfg_file)
    results = read_results(job)
    monitor, mode = monitor_of(cfg)
    row = {"job": job.name, "dir": str(job), "overrides": " ".join(overrides)}
    for key in PARAMS:
        row[key] = select(cfg, key)
    row |= {"status": "finished" if results else "failed", "monitor": monitor, "mode": mode,
            "score": job_score(results, monitor), "error": "" if results else _job_error(job)}  # fmt: skip
    row |= {k: v for k, v in results.items() if k not in row}
    return row


@dataclass
class BestJob:
    job: str
    dir: Path
    checkpoint: Path | None
    monitor: str
    mode: str
    value: float
    reason: str
    finished: int
    failed: int

    def as_dict(self) -> dict:
        return {k: str(v) if isinstance(v, Path) else v for k, v in self.__dict__.items()}


def pick_best(rows: list[dict], sweep_dir: Path | str = "") -> BestJob | None:
    """The finished job with the best monitored value (ties: the earlier job); None if no job finished."""
    scored = [r for r in rows if r["status"] == "finished" and r["score"] is not None]
    if not scored:
        return None
    monitor, mode = scored[0]["monitor"], scored[0]["mode"]
    sign = 1 if mode == "max" else -1

    def loss(r: dict) -> float:
        value = r.get("val/loss")
        return float(value) if isinstance(value, (int, float)) and not math.isnan(value) else math.inf

    # ties (common: success rates are fractions of a few episodes) go to the lower val/loss, then the earlier job
    best = max(scored, key=lambda r: (sign * r["score"], -loss(r), -int(r["job"]) if r["job"].isdigit() else 0))
    failed = len(rows) - len(scored)
    ckpt = Path(best["dir"]) / CHECKPOINTS / BEST
    ties = sum(1 for r in scored if r["score"] == best["score"]) - 1
    reason = (
        f"job {best['job']} ({best['overrides'] or 'no overrides'}) has the {'highest' if mode == 'max' else 'lowest'} "
        f"{monitor} = {best['score']:.4g} of the {len(scored)} completed job(s) of sweep {sweep_dir}"
        + (f" (tied with {ties} other job(s); the lowest val/loss, {loss(best):.4g}, breaks the tie)" if ties else "")
        + (f"; {failed} job(s) failed" if failed else "")
    )
    return BestJob(best["job"], Path(best["dir"]), ckpt if ckpt.exists() else None, monitor, mode,
                   best["score"], reason, len(scored), failed)  # fmt: skip


# --- checkpoints -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunCheckpoint:
    checkpoint: Path  # the .ckpt file
    config: Path | None  # the run's resolved config.yaml (None: a lone checkpoint that carries its model spec)
    run_dir: Path


def run_dir_of(checkpoint: Path) -> Path:
    """<run>/checkpoints/x.ckpt -> <run>; a checkpoint elsewhere -> its folder."""
    return checkpoint.parent.parent if checkpoint.parent.name == CHECKPOINTS else checkpoint.parent


def checkpoint_in(run: Path) -> Path | None:
    """The run's best.ckpt, else its last.ckpt, else None."""
    return next((run / CHECKPOINTS / n for n in CHECKPOINT_NAMES if (run / CHECKPOINTS / n).exists()), None)


def has_spec(checkpoint: Path) -> bool:
    """Whether the checkpoint carries its model spec (read memory-mapped: the weights stay on disk)."""
    try:
        return SPEC in torch.load(checkpoint, map_location="cpu", weights_only=False, mmap=True)
    except Exception:  # unreadable: read_checkpoint says so when the model is loaded
        return False


def find_checkpoint(path: str | Path, key: str = "ckpt") -> RunCheckpoint:
    """The checkpoint file and run config that `path` (a run directory or a .ckpt) stands for.

    A path that is neither raises ConfigError(key, ...) saying what was expected.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise ConfigError(key, f"{path} does not exist; give a run directory (logs/runs/<time>), a .ckpt file "
                               f"or an exported ONNX directory (model.onnx + manifest.json)")  # fmt: skip
    if path.is_dir():
        run_dir, checkpoint = path, checkpoint_in(path)
        if checkpoint is None:
            raise ConfigError(key, f"{path} has no {CHECKPOINTS}/{BEST} or {CHECKPOINTS}/{LAST}; "
                                   "give the directory of a training run")  # fmt: skip
    else:
        if path.suffix != ".ckpt":
            raise ConfigError(key, f"{path} is not a .ckpt file, a run directory or an ONNX export directory")
        checkpoint, run_dir = path, run_dir_of(path)
    config = run_dir / CONFIG
    if not config.exists():
        if has_spec(checkpoint):
            return RunCheckpoint(checkpoint, None, run_dir)
        raise ConfigError(key, f"{config} not found: {checkpoint} carries no model spec (written before lnn stored "
                               f"one), so the model is rebuilt from the run's {CONFIG}, which a training run writes "
                               f"next to {CHECKPOINTS}/")  # fmt: skip
    return RunCheckpoint(checkpoint, config, run_dir)


def read_checkpoint(path: Path) -> dict:
    """The checkpoint as saved (a dict with `state_dict`); DataError if it is not a readable one."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # zip / pickle errors: truncated or not a checkpoint
        raise DataError(f"{path}: not a readable checkpoint ({type(e).__name__}: {str(e).splitlines()[0][:160]}); "
                        "it may be truncated or not a torch checkpoint") from e  # fmt: skip
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict) or not ckpt["state_dict"]:
        raise DataError(f"{path}: has no state_dict; is it a Lightning checkpoint written by train.py?")
    return ckpt


def model_weights(ckpt: dict, path: Path) -> dict[str, torch.Tensor]:
    """The model's weights out of a Lightning checkpoint (prefix `model.`; torch.compile's `_orig_mod.` removed)."""
    weights = {
        k.removeprefix("model.").removeprefix("_orig_mod."): v
        for k, v in ckpt["state_dict"].items()
        if k.startswith("model.")
    }
    if not weights:
        raise DataError(f"{path}: no `model.*` weights in its state_dict; is it a checkpoint of lnn's PolicyModule?")
    return weights


def spec_from_config(model_cfg: Mapping) -> dict:
    """A run config's `model` section (`_target_` + constructor arguments) as a model spec."""
    if "_target_" not in model_cfg:
        raise DataError(f"the `model` section has no _target_ (the model's class): {dict(model_cfg)}")
    kwargs = {k: v for k, v in model_cfg.items() if not (k.startswith("_") and k.endswith("_"))}  # Hydra's keys
    return {"class": model_cfg["_target_"], "kwargs": kwargs}


def build_model(spec: dict, origin: Path | str) -> torch.nn.Module:
    """The model a spec names, built with its arguments; a bad argument is a ConfigError naming `model.<key>`."""
    module_name, _, class_name = str(spec["class"]).rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError) as e:
        raise DataError(f"{origin}: the model class {spec['class']!r} cannot be imported ({e})") from e
    kwargs = spec["kwargs"]
    try:
        return cls(**kwargs)
    except ConfigError as e:
        value = select(kwargs, e.key)
        key = f"model.{e.key}" + (f"={value}" if value is not None else "")
        raise ConfigError(key, f"{e.message} (in {origin})") from None
    except Exception as e:
        raise DataError(f"{origin}: its model cannot be built ({type(e).__name__}: {e})") from e


def load_weights(model: torch.nn.Module, weights: dict, checkpoint: Path, origin: Path | str) -> None:
    """Load the weights, or one line on what does not fit (missing, unknown, differently shaped weights)."""
    own = model.state_dict()
    missing = [k for k in own if k not in weights]
    unexpected = [k for k in weights if k not in own]
    shapes = [k for k in own if k in weights and tuple(own[k].shape) != tuple(weights[k].shape)]
    if missing or unexpected or shapes:
        problems = []
        if shapes:
            k = shapes[0]
            problems.append(f"{len(shapes)} shape mismatch(es), e.g. {k}: checkpoint {tuple(weights[k].shape)} vs "
                            f"config {tuple(own[k].shape)}")  # fmt: skip
        if missing:
            problems.append(f"{len(missing)} weight(s) missing from the checkpoint, e.g. {missing[0]}")
        if unexpected:
            problems.append(f"{len(unexpected)} unknown weight(s) in the checkpoint, e.g. {unexpected[0]}")
        raise ConfigError("ckpt", f"{checkpoint} does not match the model of {origin}: " + "; ".join(problems))
    model.load_state_dict(weights)


def load_model(checkpoint: Path, config: Path | None = None) -> torch.nn.Module:
    """The checkpoint's model with its weights, in eval mode: built from the checkpoint's spec, or
    (an older checkpoint) from the `model` section of `config`."""
    ckpt = read_checkpoint(checkpoint)
    weights = model_weights(ckpt, checkpoint)
    if SPEC in ckpt:
        spec, origin = ckpt[SPEC], checkpoint
    elif config is not None:
        cfg = read_yaml(config)
        if not isinstance(cfg, Mapping) or not isinstance(cfg.get("model"), Mapping):
            raise DataError(f"{config}: has no `model` section; is it a train.py run's {CONFIG}?")
        spec, origin = spec_from_config(cfg["model"]), config
    else:
        raise ConfigError("ckpt", f"{checkpoint} carries no model spec and no {CONFIG} was found beside it; "
                                  f"give the checkpoint inside its run directory (<run>/{CHECKPOINTS}/)")  # fmt: skip
    model = build_model(spec, origin)
    load_weights(model, weights, checkpoint, origin)
    return model.eval()


def load_policy(path: str | Path, map_location: str | torch.device = "cpu") -> torch.nn.Module:
    """The trained policy of a run directory or a .ckpt file, in eval mode on `map_location`.

    `model.lnn_checkpoint` (a RunCheckpoint) says where it came from.
    """
    found = find_checkpoint(path)
    model = load_model(found.checkpoint, found.config)
    model.lnn_checkpoint = found
    return model.to(map_location)
