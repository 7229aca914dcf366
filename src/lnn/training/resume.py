"""Where a run writes, so that running the same command again continues a killed run.

Each run keeps `run.json` (its overrides and status). With `resume=auto`, the run directory is the
newest one under logs/runs whose overrides equal this command's, that has a last.ckpt and did not
finish; otherwise a new timestamped directory. Hydra resolves `hydra.run.dir` through
`lnn_run_dir` (registered by train.py) before the run starts, so everything of the continued run lands in one place.

Sweeps likewise: `hydra.sweep.dir` goes through `lnn_sweep_dir`, which with `resume=auto` picks the newest
sweep of the same command line (`sweep.json`) that did not end (`finish_sweep` marks it when the multirun
ends; the summary says nothing: it is rewritten after every job). Its jobs then continue in their own
directories: a finished job returns its recorded results, an unfinished one resumes from its last.ckpt,
and one killed during its final evaluation (status `fitted`) only runs that evaluation again.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from lnn.runs import CHECKPOINTS, LAST, RESULTS, RUN_INFO

SWEEP_INFO = "sweep.json"
LAST_CHECKPOINT = Path(CHECKPOINTS) / LAST  # relative to the run directory


def read_run(run_dir: Path, name: str = RUN_INFO) -> dict:
    try:
        return json.loads((run_dir / name).read_text())
    except (OSError, ValueError):
        return {}


def write_run(run_dir: Path, name: str = RUN_INFO, **fields) -> None:
    info = read_run(run_dir, name) | fields
    tmp = run_dir / (name + ".tmp")
    tmp.write_text(json.dumps(info, indent=1, default=str))
    tmp.replace(run_dir / name)


def unfinished_run(runs_dir: Path, overrides: str) -> Path | None:
    """The newest run of these overrides that has a last.ckpt and did not finish."""
    for run_json in sorted(runs_dir.glob(f"*/{RUN_INFO}"), reverse=True):
        run = run_json.parent
        info = read_run(run)
        if info.get("overrides") == overrides and info.get("status") != "finished" and (run / LAST_CHECKPOINT).exists():
            return run
    return None


def unfinished_sweep(sweeps_dir: Path, command: str) -> Path | None:
    """The newest sweep of this command line that has not ended."""
    for sweep_json in sorted(sweeps_dir.glob(f"*/{SWEEP_INFO}"), reverse=True):
        info = read_run(sweep_json.parent, SWEEP_INFO)
        if info.get("command") == command and info.get("status") != "finished":
            return sweep_json.parent
    return None


def finish_sweep(sweep: Path) -> None:
    """The multirun ended: running its command again starts a new sweep."""
    if (sweep / SWEEP_INFO).exists():
        write_run(sweep, SWEEP_INFO, status="finished")


def finished_results(run_dir: Path) -> dict | None:
    """The recorded results of a run that finished (a sweep's job run again), else None."""
    if read_run(run_dir).get("status") != "finished":
        return None
    try:
        return json.loads((run_dir / RESULTS).read_text())
    except (OSError, ValueError):
        return None


def fitted(run_dir: Path) -> dict | None:
    """What the fit of a run killed during its final evaluation recorded (only that evaluation runs again)."""
    info = read_run(run_dir)
    return info.get("fit") if info.get("status") == "fitted" else None


@lru_cache(maxsize=None)  # Hydra resolves the run dir more than once: answer the same each time
def run_dir(runs_dir: str, timestamp: str, resume, overrides: str) -> str:
    resume = str(resume)
    if resume not in ("auto", "false", "False", "None", "null", ""):
        return resume  # an explicit run directory (checked when the run starts)
    if resume == "auto":
        found = unfinished_run(Path(runs_dir), overrides)
        if found is not None:
            return str(found)
    return _claim(runs_dir, timestamp)


_sweeps: dict[tuple, str] = {}


def sweep_dir(sweeps_dir: str, timestamp: str, resume, task_overrides) -> str:
    """A new sweep directory, or with resume=auto the unfinished sweep of the same command line.

    The first answer holds for the whole multirun: each job's config resolves this again with the job's own
    overrides (and the sweep's timestamp, which Hydra copies into it).
    """
    key = (sweeps_dir, timestamp, str(resume))
    if key not in _sweeps:
        _sweeps[key] = _sweep_dir(sweeps_dir, timestamp, resume, task_overrides)
    return _sweeps[key]


def _sweep_dir(sweeps_dir: str, timestamp: str, resume, task_overrides) -> str:
    command = " ".join(sorted(str(o) for o in task_overrides if not str(o).startswith("resume=")))
    if str(resume) == "auto":
        found = unfinished_sweep(Path(sweeps_dir), command)
        if found is not None:
            return str(found)
    new = Path(_claim(sweeps_dir, timestamp))
    write_run(new, SWEEP_INFO, command=command)
    return str(new)


def _claim(runs_dir: str, timestamp: str) -> str:
    new, n = Path(runs_dir) / timestamp, 1
    while True:  # mkdir claims the name atomically: two runs started in the same second get two directories
        try:
            new.mkdir(parents=True)
            return str(new)
        except FileExistsError:
            new, n = Path(runs_dir) / f"{timestamp}_{n}", n + 1
