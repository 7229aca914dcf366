"""Where a run writes, so that running the same command again continues a killed run.

Each run keeps `run.json` (its overrides and status). With `resume=auto`, the run directory is the
newest one under logs/runs whose overrides equal this command's, that has a last.ckpt and did not
finish; otherwise a new timestamped directory. Hydra resolves `hydra.run.dir` through
`lnn_run_dir` (registered by train.py) before the run starts, so everything of the continued run lands in one place.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from lnn.runs import CHECKPOINTS, LAST, RUN_INFO

LAST_CHECKPOINT = Path(CHECKPOINTS) / LAST  # relative to the run directory


def read_run(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / RUN_INFO).read_text())
    except (OSError, ValueError):
        return {}


def write_run(run_dir: Path, **fields) -> None:
    info = read_run(run_dir) | fields
    tmp = run_dir / (RUN_INFO + ".tmp")
    tmp.write_text(json.dumps(info, indent=1, default=str))
    tmp.replace(run_dir / RUN_INFO)


def unfinished_run(runs_dir: Path, overrides: str) -> Path | None:
    """The newest run of these overrides that has a last.ckpt and did not finish."""
    for run_json in sorted(runs_dir.glob(f"*/{RUN_INFO}"), reverse=True):
        run = run_json.parent
        info = read_run(run)
        if info.get("overrides") == overrides and info.get("status") != "finished" and (run / LAST_CHECKPOINT).exists():
            return run
    return None


@lru_cache(maxsize=None)  # Hydra resolves the run dir more than once: answer the same each time
def run_dir(runs_dir: str, timestamp: str, resume, overrides: str) -> str:
    resume = str(resume)
    if resume not in ("auto", "false", "False", "None", "null", ""):
        return resume  # an explicit run directory (checked when the run starts)
    if resume == "auto":
        found = unfinished_run(Path(runs_dir), overrides)
        if found is not None:
            return str(found)
    new, n = Path(runs_dir) / timestamp, 1
    while True:  # mkdir claims the name atomically: two runs started in the same second get two directories
        try:
            new.mkdir(parents=True)
            return str(new)
        except FileExistsError:
            new, n = Path(runs_dir) / f"{timestamp}_{n}", n + 1
