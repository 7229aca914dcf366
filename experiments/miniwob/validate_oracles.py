"""Validate the MiniWoB++ oracles: play N seeds per task with real mouse and keyboard events, tabulate the
success rate.

    PYTHONPATH=src python experiments/miniwob/validate_oracles.py              # 100 seeds, all oracles
    PYTHONPATH=src python experiments/miniwob/validate_oracles.py --seeds 10 --tasks click-test,click-tab

Writes experiments/miniwob/oracle_validation.md. A task belongs in lnn.envs.miniwob.ORACLE_TASKS only if
its oracle succeeds on >= 99% of the seeds; the table says which do. One env per worker process.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import platform
import sys
import time
from pathlib import Path

from lnn.envs.miniwob import ORACLE_KINDS, ORACLE_TASKS, EpisodeAborted, MiniWobEnv, OracleError, run_oracle_episode
from lnn.envs.miniwob.oracles import DEFAULT_MAX_STEPS, NO_ORACLE, ORACLE_MAX_STEPS

THRESHOLD = 0.99
OUT = Path(__file__).parent / "oracle_validation.md"


def validate_task(job: tuple[str, int, int | None]) -> dict:
    """Play seeds 0..n-1 of one task; count successes, steps per episode, and keep the failures."""
    task, n_seeds, max_steps = job
    successes, steps, failures = 0, [], []
    t0 = time.perf_counter()
    with MiniWobEnv([task]) as env:
        for seed in range(n_seeds):
            try:
                episode = run_oracle_episode(env, seed, task, max_steps=max_steps)
            except (EpisodeAborted, OracleError) as e:
                failures.append((seed, f"{type(e).__name__}: {e}"))
                continue
            if episode.success:
                successes += 1
                steps.append(len(episode.steps))
            else:
                failures.append((seed, f"reward {episode.raw_reward:g} after {len(episode.steps)} steps ({episode.reason})"))
    return {
        "task": task,
        "seeds": n_seeds,
        "successes": successes,
        "steps": steps,
        "max_steps": max_steps or ORACLE_MAX_STEPS.get(task, DEFAULT_MAX_STEPS),
        "failures": failures,
        "seconds": time.perf_counter() - t0,
    }


def table(results: list[dict]) -> str:
    lines = [
        "| task | kind | seeds | success rate | steps (mean / max) | step limit | s per episode | ORACLE_TASKS | first failures |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        rate = r["successes"] / r["seeds"]
        steps = f"{sum(r['steps']) / len(r['steps']):.2f} / {max(r['steps'])}" if r["steps"] else "-"
        fails = "; ".join(f"seed {s}: {why}" for s, why in r["failures"][:3]).replace("|", "\\|")
        lines.append(
            f"| {r['task']} | {ORACLE_KINDS[r['task']]} | {r['seeds']} | {rate:.0%} | {steps} | {r['max_steps']} "
            f"| {r['seconds'] / r['seeds']:.3f} | {'yes' if rate >= THRESHOLD else 'no'} | {fails} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=100, help="seeds 0..N-1 per task")
    parser.add_argument("--tasks", default=",".join(ORACLE_KINDS), help="comma-separated task names")
    parser.add_argument("--workers", type=int, default=2, help="parallel browser processes")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="oracle steps before an episode counts as failed (default: each task's, see the table)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    tasks = [t for t in args.tasks.split(",") if t]

    t0 = time.perf_counter()
    jobs = [(task, args.seeds, args.max_steps) for task in tasks]
    with mp.get_context("spawn").Pool(args.workers) as pool:
        results = []
        for r in pool.imap(validate_task, jobs):
            print(f"{r['task']:28s} {r['successes']:4d}/{r['seeds']}  ({r['seconds']:.1f} s)", flush=True)
            results.append(r)
    elapsed = time.perf_counter() - t0

    passed = [r["task"] for r in results if r["successes"] / r["seeds"] >= THRESHOLD]
    report = "\n".join([
        "# MiniWoB++ oracle validation",
        "",
        f"`PYTHONPATH=src python experiments/miniwob/validate_oracles.py --seeds {args.seeds} --workers {args.workers}`",
        "",
        f"Seeds 0..{args.seeds - 1} per task, real mouse and keyboard events in headless Chromium, success = raw "
        f"reward > 0; an episode fails when not over after the step limit (lnn.envs.miniwob.oracles.ORACLE_MAX_STEPS, "
        f"else {DEFAULT_MAX_STEPS}). {len(tasks)} tasks in {elapsed:.0f} s with "
        f"{args.workers} workers on {platform.node() or 'this machine'} ({mp.cpu_count()} CPUs).",
        f"Tasks at >= {THRESHOLD:.0%} go into `lnn.envs.miniwob.ORACLE_TASKS`.",
        "",
        table(results),
        "",
        f"Passed ({len(passed)}): {', '.join(passed) or '-'}",
        "",
        "No oracle: " + "; ".join(f"{task}: {why}" for task, why in NO_ORACLE.items()),
        "",
    ])
    args.out.write_text(report)
    print(f"wrote {args.out}")
    stale = sorted(set(ORACLE_TASKS) ^ set(passed)) if set(tasks) == set(ORACLE_KINDS) else []
    if stale:
        print(f"ORACLE_TASKS disagrees with this run on: {', '.join(stale)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
