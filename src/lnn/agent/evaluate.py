"""Closed-loop evaluation: a policy acting in envs until each episode ends; success per task."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tqdm.auto import tqdm

from lnn.envs import Env, EpisodeAborted


@dataclass
class EpisodeResult:
    task: str
    seed: int
    success: bool
    steps: int
    failure: str = ""  # why it failed: the env's reason, "aborted: …" (browser fault), "no end after N steps"
    trace: list[dict] = field(default_factory=list)  # per step: screenshot, instruction, action, coords, tau
    actions: list[str] = field(default_factory=list)  # each action, as text


def describe(action) -> str:
    if action.type in ("click", "scroll"):
        return f"{action.type}({action.x:.3f},{action.y:.3f}{',' + action.text if action.text else ''})"
    return f"{action.type}({action.text!r})" if action.text else action.type


def run_episodes(policy, envs: list[Env], jobs: list[tuple[str, int]], record: bool | Callable[[str, int], bool] = False,
                 desc: str = "evaluating", max_steps: int | None = None) -> list[EpisodeResult]:  # fmt: skip
    """Run (task, seed) episodes, len(envs) at a time, the policy stepping them as one batch.

    `record` (all episodes, or a predicate of (task, seed)) keeps each step's frame and action in the
    result's trace. An episode fails when the env ends it without reward, when it is not over after
    `max_steps` actions (None: the env decides), or when the env aborts it (a browser crash or hang:
    the env has restarted itself and the run goes on, the reason kept in `failure`).
    """
    keep = record if callable(record) else (lambda task, seed: bool(record))
    results: list[EpisodeResult] = []
    bar = tqdm(total=len(jobs), desc=desc, unit="ep", leave=False)
    for start in range(0, len(jobs), len(envs)):
        chunk = jobs[start : start + len(envs)]
        done: list[EpisodeResult | None] = [None] * len(chunk)
        traces: list[list[dict]] = [[] for _ in chunk]
        actions_taken: list[list[str]] = [[] for _ in chunk]
        obs: list = [None] * len(chunk)
        for i, (env, (task, seed)) in enumerate(zip(envs, chunk)):
            try:
                obs[i] = env.reset(seed, task)
            except EpisodeAborted as e:
                done[i] = EpisodeResult(task, seed, False, 0, f"aborted: {e.reason}")
                bar.update(1)
        active = [i for i in range(len(chunk)) if done[i] is None]
        policy.reset(len(active))
        steps = 0
        while active:
            actions, info = policy.act([obs[i] for i in active])
            steps += 1
            still = []
            for j, i in enumerate(active):
                task, seed = chunk[i]
                actions_taken[i].append(describe(actions[j]))
                if keep(task, seed):
                    traces[i].append({"screenshot": obs[i].screenshot, "instruction": obs[i].instruction,
                                      "action": actions[j], "coords": tuple(info["coords"][j]),
                                      "tau": [t[j].tolist() for t in info["tau"]]})  # fmt: skip
                try:
                    obs[i], reward, finished, step_info = envs[i].step(actions[j])
                except EpisodeAborted as e:
                    reward, finished, step_info = 0.0, True, {"failure": f"aborted: {e.reason}"}
                if not finished and max_steps is not None and steps >= max_steps:
                    finished, step_info = True, {"failure": f"no end after {max_steps} steps"}
                if finished:
                    success = reward > 0
                    failure = "" if success else str(step_info.get("failure") or step_info.get("reason") or f"reward {reward:g}")
                    done[i] = EpisodeResult(task, seed, success, steps, failure, traces[i], actions_taken[i])
                    bar.update(1)
                else:
                    still.append(j)
            if len(still) < len(active):
                policy.keep(still)
            active = [active[j] for j in still]
        results.extend(done)
    bar.close()
    return results


def wilson_interval(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% confidence interval of a success rate (Wilson score; sound for rates near 0 or 1).

    The interval always contains the rate itself (float rounding at 0 and 1 could put it just outside).
    """
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))


def success_table(results: list[EpisodeResult], kinds: dict[str, str] | None = None) -> list[dict]:
    """A row per task (and per kind of task, and overall): episodes, successes, rate, 95% CI.

    `[all]` pools the episodes; `[mean]` (with more than one task) is the mean of the per-task rates, as
    published MiniWoB++ figures are given; its interval is Wilson's at the pooled number of episodes
    (the same as [all]'s when every task has as many episodes; a little wide, as it ignores the strata).
    """
    groups: dict[str, list[EpisodeResult]] = {}
    for r in results:
        groups.setdefault(r.task, []).append(r)
        if kinds and r.task in kinds:
            groups.setdefault(f"[{kinds[r.task]}]", []).append(r)
        groups.setdefault("[all]", []).append(r)
    rows = []
    for name, rs in sorted(groups.items(), key=lambda kv: (kv[0].startswith("["), kv[0])):
        wins = sum(r.success for r in rs)
        low, high = wilson_interval(wins, len(rs))
        rows.append({"task": name, "episodes": len(rs), "successes": wins, "success": wins / len(rs),
                     "ci_low": low, "ci_high": high})  # fmt: skip
    tasks = [r for r in rows if not r["task"].startswith("[")]
    if len(tasks) > 1:
        mean = sum(r["success"] for r in tasks) / len(tasks)
        n = sum(r["episodes"] for r in tasks)
        low, high = wilson_interval(mean * n, n)  # at the pooled sample size (exact when tasks have equal n)
        rows.append({"task": "[mean]", "episodes": n, "successes": sum(r["successes"] for r in tasks),
                     "success": mean, "ci_low": low, "ci_high": high})  # fmt: skip
    return rows


def format_table(rows: list[dict]) -> str:
    """Markdown: task | episodes | success | 95% CI."""
    lines = ["| task | episodes | success | 95% CI |", "|---|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['task']} | {r['episodes']} | {100 * r['success']:.1f}% "
                     f"| {100 * r['ci_low']:.1f}–{100 * r['ci_high']:.1f}% |")  # fmt: skip
    return "\n".join(lines) + "\n"


def write_success_report(results: list[EpisodeResult], out_dir: Path, kinds: dict[str, str] | None, title: str) -> list[dict]:
    """success.md, success.csv and success.png in out_dir; returns the table rows."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = success_table(results, kinds)
    (out_dir / "success.md").write_text(f"# {title}\n\n" + format_table(rows))
    with open(out_dir / "success.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plot_success(rows, out_dir / "success.png", title)
    return rows


def plot_success(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["task"] for r in rows]
    rate = [100 * r["success"] for r in rows]
    err = [[100 * (r["success"] - r["ci_low"]) for r in rows], [100 * (r["ci_high"] - r["success"]) for r in rows]]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(rows) + 1.2))
    colors = ["#888" if n.startswith("[") else "#2b6cb0" for n in names]
    ax.barh(names, rate, xerr=err, color=colors, capsize=3)
    for y, (value, r) in enumerate(zip(rate, rows)):
        ax.text(min(value + 2, 88), y, f"{value:.0f}% (n={r['episodes']})", va="center", fontsize=8)
    ax.set_xlim(0, 100)
    ax.invert_yaxis()
    ax.set_xlabel("closed-loop success, % of episodes (bars: 95% CI)")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
