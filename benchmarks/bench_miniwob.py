"""MiniWobEnv speed: browser launch, resets/s, screenshots/s, oracle episodes/s, with N worker processes.

    PYTHONPATH=src python benchmarks/bench_miniwob.py                 # N = 1, 2
    PYTHONPATH=src python benchmarks/bench_miniwob.py --workers 1,2,4 --episodes 100

Each worker process owns one env (as a dataset recorder would). Workers start each phase together (a
barrier), and a phase's rate is all workers' operations over the slowest worker's time, so N = 2 shows
the aggregate throughput of the machine. Anchors: docs/references.md, "MiniWoB++ in Chromium" (a 2-core machine).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time

from lnn.envs.miniwob import MiniWobEnv, run_oracle_episode

TASK = "click-button"  # a one-click task: the reset and screenshot costs are typical of the simple tasks
TWO_CLICK_TASK = "click-option"

# (metric, anchor value, unit) from docs/references.md; None where it gives no figure.
ANCHORS = {
    "browser launch": (2.7, "s"),
    "in-page reset": (45.0, "/s"),  # "10-45/s": the upper end
    "env.reset (with screenshot)": (None, "/s"),
    "screenshot 160x210": (20.0, "/s"),
    f"oracle episodes {TASK}": (10.0, "/s"),  # "0.1-0.4 s per seed": the fast end
    f"oracle episodes {TWO_CLICK_TASK}": (None, "/s"),
}


def _timed(barrier, fn, n: int) -> float:
    barrier.wait()
    t0 = time.perf_counter()
    for i in range(n):
        fn(i)
    return time.perf_counter() - t0


def worker(rank: int, barrier, counts: dict, results) -> None:
    barrier.wait()
    t0 = time.perf_counter()
    env = MiniWobEnv([TASK, TWO_CLICK_TASK])
    launch = time.perf_counter() - t0
    try:
        env.reset(0, TASK)  # the first page load is not part of the rates below
        page = env._page
        seed0 = 1000 * rank
        out = {"browser launch": launch}
        out["in-page reset"] = _timed(
            barrier, lambda i: page.evaluate("([s, ms]) => lnn.reset(s, ms)", [seed0 + i, 3_600_000]), counts["resets"]
        )
        out["env.reset (with screenshot)"] = _timed(barrier, lambda i: env.reset(seed0 + i, TASK), counts["resets"])
        out["screenshot 160x210"] = _timed(barrier, lambda i: env._observe(TASK, ""), counts["shots"])
        for task in (TASK, TWO_CLICK_TASK):
            env.reset(0, task)  # load the page outside the timing
            out[f"oracle episodes {task}"] = _timed(
                barrier, lambda i, task=task: run_oracle_episode(env, seed0 + i, task), counts["episodes"]
            )
        results.put((rank, out))
    finally:
        env.close()


def run(n_workers: int, counts: dict) -> dict[str, float]:
    """Rates (or launch seconds) with n_workers processes, each with its own browser."""
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(n_workers), ctx.Queue()
    procs = [ctx.Process(target=worker, args=(r, barrier, counts, results)) for r in range(n_workers)]
    for p in procs:
        p.start()
    outs = [results.get(timeout=600)[1] for _ in procs]
    for p in procs:
        p.join()
    n_ops = {"in-page reset": counts["resets"], "env.reset (with screenshot)": counts["resets"],
             "screenshot 160x210": counts["shots"]}
    rates = {"browser launch": sum(o["browser launch"] for o in outs) / n_workers}
    for metric in outs[0]:
        if metric != "browser launch":
            n = n_ops.get(metric, counts["episodes"])
            rates[metric] = n * n_workers / max(o[metric] for o in outs)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--resets", type=int, default=200)
    parser.add_argument("--shots", type=int, default=100)
    parser.add_argument("--episodes", type=int, default=50)
    args = parser.parse_args()
    counts = {"resets": args.resets, "shots": args.shots, "episodes": args.episodes}
    worker_counts = [int(n) for n in args.workers.split(",")]

    table = {n: run(n, counts) for n in worker_counts}
    cols = [f"N={n}" for n in worker_counts]
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"MiniWobEnv on {os.cpu_count()} CPUs (load average {load}); rates are totals over all workers")
    print(f"| metric | {' | '.join(cols)} | anchor | N=1 / anchor |")
    print(f"|---|{'---|' * len(cols)}---|---|")
    for metric, (anchor, unit) in ANCHORS.items():
        values = " | ".join(f"{table[n][metric]:.2f} {unit}" for n in worker_counts)
        if anchor is None:
            ref = ratio = "-"
        else:
            ref = f"{anchor:g} {unit}"
            first = table[worker_counts[0]][metric]
            # for launch time lower is better: report how many times faster
            ratio = f"{anchor / first:.2f}x faster" if unit == "s" else f"{first / anchor:.2f}x"
        print(f"| {metric} | {values} | {ref} | {ratio} |")


if __name__ == "__main__":
    main()
