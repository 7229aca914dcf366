"""The liquid timing runs evaluated again with more ODE sub-steps per frame (no retraining): is the liquid core's
loss at dt_scale=2 its solver's (rk4 with one step per frame is unstable for a τ ≈ 1 neuron once dt > 2.8 s)?

    python experiments/cores/unfolds_at_eval.py <job dir> [<job dir> ...] --unfolds 2 --dt-scale 2

Each job is played by `python -m lnn.agent` (100 test episodes per family, its own tasks) with every liquid cell's
`unfolds` set to the given value; the results go to <job>/eval_dt<scale>_unfolds<n> and one line per job is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
from pathlib import Path

import lnn.agent.cli as cli


def evaluate(job: Path, unfolds: int, dt_scale: float, episodes: int) -> dict[str, float]:
    plain = cli.open_policy

    def with_unfolds(ckpt, device="cpu"):
        policy, cfg, backend = plain(ckpt, device)
        for cell in policy.model.solver_cells():
            cell.unfolds = unfolds
        return policy, cfg, f"{backend}, unfolds={unfolds}"

    out = job / f"eval_dt{dt_scale:g}_unfolds{unfolds}"
    cli.open_policy = with_unfolds
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            cli.run([f"ckpt={job}", f"episodes={episodes}", "trace=0", f"dt_scale={dt_scale}", f"out={out}"])
    finally:
        cli.open_policy = plain
    with open(out / "success.csv") as f:
        return {row["task"]: float(row["success"]) for row in csv.DictReader(f)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("jobs", nargs="+", type=Path)
    p.add_argument("--unfolds", type=int, default=2)
    p.add_argument("--dt-scale", type=float, default=2.0)
    p.add_argument("--episodes", type=int, default=100)
    args = p.parse_args()
    for job in args.jobs:
        rates = evaluate(job, args.unfolds, args.dt_scale, args.episodes)
        print(job, "  ".join(f"{task} {100 * rate:.0f}%" for task, rate in rates.items()))


if __name__ == "__main__":
    main()
