"""Closed-loop evaluation: a policy acting in envs until each episode ends; success per task."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from tqdm.auto import tqdm

from lnn.envs import Env


@dataclass
class EpisodeResult:
    task: str
    seed: int
    success: bool
    steps: int
    failure: str = ""
    trace: list[dict] = field(default_factory=list)  # per step: screenshot, instruction, action, tau (when asked)


def run_episodes(policy, envs: list[Env], jobs: list[tuple[str, int]], record: bool = False,
                 desc: str = "evaluating") -> list[EpisodeResult]:  # fmt: skip
    """Run (task, seed) episodes, len(envs) at a time, the policy stepping them as one batch."""
    results: list[EpisodeResult] = []
    bar = tqdm(total=len(jobs), desc=desc, unit="ep", leave=False)
    for start in range(0, len(jobs), len(envs)):
        chunk = jobs[start : start + len(envs)]
        obs = [env.reset(seed, task) for env, (task, seed) in zip(envs, chunk)]
        traces: list[list[dict]] = [[] for _ in chunk]
        done: list[EpisodeResult | None] = [None] * len(chunk)
        active = list(range(len(chunk)))
        policy.reset(len(chunk))
        steps = 0
        while active:
            actions, info = policy.act([obs[i] for i in active])
            steps += 1
            still = []
            for j, i in enumerate(active):
                if record:
                    tau = [t[j].tolist() for t in info["tau"]]
                    traces[i].append({"screenshot": obs[i].screenshot, "instruction": obs[i].instruction,
                                      "action": actions[j], "tau": tau})  # fmt: skip
                obs[i], reward, finished, step_info = envs[i].step(actions[j])
                if finished:
                    task, seed = chunk[i]
                    done[i] = EpisodeResult(task, seed, reward > 0, steps, step_info.get("failure", ""), traces[i])
                    bar.update(1)
                else:
                    still.append(j)
            if len(still) < len(active):
                policy.keep(still)
            active = [active[j] for j in still]
        results.extend(done)
    bar.close()
    return results


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% confidence interval of a success rate (Wilson score; sound for rates near 0 or 1)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def success_table(results: list[EpisodeResult], kinds: dict[str, str] | None = None) -> list[dict]:
    """A row per task (and per kind of task, and overall): episodes, successes, rate, 95% CI."""
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
    return rows


def format_table(rows: list[dict]) -> str:
    """Markdown: task | episodes | success | 95% CI."""
    lines = ["| task | episodes | success | 95% CI |", "|---|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['task']} | {r['episodes']} | {100 * r['success']:.1f}% "
                     f"| {100 * r['ci_low']:.1f}–{100 * r['ci_high']:.1f}% |")  # fmt: skip
    return "\n".join(lines) + "\n"
