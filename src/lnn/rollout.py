"""The one closed-loop episode runner: a policy (or the envs' own oracle) acting in a batch of envs.

Dataset recording (lnn.data), closed-loop evaluation in training, the export's recorded episodes and the
agent all run episodes through `run_episodes`. A policy is any object with

    reset(batch)                 a fresh state for `batch` episodes (row i acts in envs[i])
    act(observations) -> (actions, info)   one action per active row; info: what the policy saw / thinks;
                                 each observation's `dt` is the time since its env's previous frame
    keep(rows)                   drop finished episodes: keep these rows, in this order
    trace_step(obs, action, info, row) -> dict   optional: what a recorded step keeps (else `policy_step`)

Also here: the seed splits (train / val / test seeds never overlap), `TorchPolicy` (a PyTorch model with
the Lite step API as a policy) and its frame / action conversions, and success tables with 95% CIs.
Imports lnn.envs only (a policy is passed in, never built here), so lnn.data can record with it.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from lnn.envs import ACTIONS, KEYS, Action, Env, EpisodeAborted, Observation
from lnn.frames import frame_size

SPLITS = ("train", "val", "test")
# Seeds of split s are SPLIT_SEED_BASE[s] + 0, 1, 2, ...: disjoint as long as a split has < 10M episodes.
SPLIT_SEED_BASE = {"train": 0, "val": 10_000_000, "test": 20_000_000}


def split_seeds(split: str, count: int) -> range:
    """The first `count` seeds of a split; every task of the split draws its episodes from them."""
    return range(SPLIT_SEED_BASE[split], SPLIT_SEED_BASE[split] + count)


def split_jobs(tasks, split: str, episodes_per_task: int) -> list[tuple[str, int]]:
    """(task, seed) for `episodes_per_task` episodes of each task on the split's seeds, task by task."""
    return [(task, seed) for task in tasks for seed in split_seeds(split, episodes_per_task)]


@dataclass
class EpisodeResult:
    task: str
    seed: int
    success: bool
    steps: int
    failure: str = ""  # why it failed: the env's reason, "aborted: …" (browser fault), "no end after N steps"
    trace: list[dict] = field(default_factory=list)  # per step: screenshot, instruction, action, coords, tau
    actions: list[str] = field(default_factory=list)  # each action, as text
    aborted: str = ""  # the env's reason when it gave the episode up (a browser crash or hang)
    instruction: str = ""  # the episode's first instruction (what a failure was asked)


def describe(action) -> str:
    if action.type == "drag":
        return f"drag({action.x:.3f},{action.y:.3f}->{action.x2:.3f},{action.y2:.3f})"
    if action.type in ("click", "scroll"):
        return f"{action.type}({action.x:.3f},{action.y:.3f}{',' + action.text if action.text else ''})"
    return f"{action.type}({action.text!r})" if action.text else action.type


def policy_step(obs: Observation, action: Action, info: dict, row: int) -> dict:
    """A learned policy's recorded step: the frame it saw, its action, click point and τ of each layer."""
    return {"screenshot": obs.screenshot, "instruction": obs.instruction, "dt": obs.dt, "action": action,
            "coords": tuple(info["coords"][row]), "tau": [t[row].tolist() for t in info["tau"]]}  # fmt: skip


class OraclePolicy:
    """The envs' oracles as a policy: each row acts by the ground truth of the env it runs in."""

    def __init__(self, envs: list[Env]):
        self.envs, self.rows = envs, []

    def reset(self, batch: int) -> None:
        self.rows = list(range(batch))

    def act(self, observations: list[Observation]) -> tuple[list[Action], dict]:
        steps = [self.envs[i].oracle() for i in self.rows]  # OracleError: the oracle found no action
        return [s.action for s in steps], {"oracle": steps}

    def keep(self, rows: list[int]) -> None:
        self.rows = [self.rows[r] for r in rows]

    @staticmethod
    def trace_step(obs: Observation, action: Action, info: dict, row: int) -> dict:
        """The frame and its dt, and the oracle's step (action, target box, focus box)."""
        return {"screenshot": obs.screenshot, "instruction": obs.instruction, "dt": obs.dt, "action": action,
                "oracle": info["oracle"][row]}  # fmt: skip


def run_episodes(policy, envs: list[Env], jobs: list[tuple[str, int]], record: bool | Callable[[str, int], bool] = False,
                 desc: str | None = "evaluating", max_steps: int | None = None, retries: int = 0,
                 on_result: Callable[[EpisodeResult], object] | None = None) -> list[EpisodeResult]:  # fmt: skip
    """Run (task, seed) episodes, len(envs) at a time, the policy stepping them as one batch; results in job order.

    `record` (all episodes, or a predicate of (task, seed)) keeps each step in the result's trace. An
    episode fails when the env ends it without reward, when it is not over after `max_steps` actions
    (None: the env decides), or when the env aborts it (a browser crash or hang: the env has restarted
    itself and the run goes on, the reason kept in `failure`); an aborted episode is run again from its
    seed up to `retries` times. `desc`: the progress bar's label (None: no bar). `on_result(result)` as soon
    as an episode's result is final (the agent appends it to its episodes file, so a killed run keeps it).
    """
    keep = record if callable(record) else (lambda task, seed: bool(record))
    bar = tqdm(total=len(jobs), desc=desc, unit="ep", leave=False, disable=desc is None)
    report = on_result or (lambda result: None)

    def ended(result: EpisodeResult) -> None:
        bar.update(1)
        if not (result.aborted and retries):  # else final only after its retries
            report(result)

    results: list[EpisodeResult] = []
    for start in range(0, len(jobs), len(envs)):
        chunk = _run_batch(policy, envs, jobs[start : start + len(envs)], keep, max_steps, ended)
        retried = [i for i, r in enumerate(chunk) if r.aborted] if retries else []
        for _ in range(retries):
            again = [i for i, r in enumerate(chunk) if r.aborted]
            if not again:
                break
            rerun = _run_batch(policy, envs, [(chunk[i].task, chunk[i].seed) for i in again], keep, max_steps, None)
            for i, result in zip(again, rerun):
                chunk[i] = result
        for i in retried:
            report(chunk[i])
        results.extend(chunk)
    bar.close()
    return results


def _run_batch(policy, envs: list[Env], jobs: list[tuple[str, int]], keep, max_steps: int | None,
               ended: Callable[[EpisodeResult], object] | None) -> list[EpisodeResult]:  # fmt: skip
    """One episode per env (envs[i] runs jobs[i]), all stepped together until each has ended;
    `ended(result)` as each one ends."""
    ended = ended or (lambda result: None)
    trace_step = getattr(policy, "trace_step", policy_step)
    done: list[EpisodeResult | None] = [None] * len(jobs)
    traces: list[list[dict]] = [[] for _ in jobs]
    actions_taken: list[list[str]] = [[] for _ in jobs]
    obs: list = [None] * len(jobs)
    asked = [""] * len(jobs)
    policy.reset(len(jobs))
    for i, (env, (task, seed)) in enumerate(zip(envs, jobs)):
        try:
            obs[i] = env.reset(seed, task)
            asked[i] = obs[i].instruction
        except EpisodeAborted as e:
            done[i] = EpisodeResult(task, seed, False, 0, f"aborted: {e.reason}", aborted=e.reason)
            ended(done[i])
    active = [i for i in range(len(jobs)) if done[i] is None]
    if len(active) < len(jobs):
        policy.keep(active)
    steps = 0
    while active:
        actions, info = policy.act([obs[i] for i in active])
        steps += 1
        still = []
        for j, i in enumerate(active):
            task, seed = jobs[i]
            actions_taken[i].append(describe(actions[j]))
            if keep(task, seed):
                traces[i].append(trace_step(obs[i], actions[j], info, j))
            aborted = ""
            try:
                obs[i], reward, finished, step_info = envs[i].step(actions[j])
            except EpisodeAborted as e:
                reward, finished, step_info, aborted = 0.0, True, {"failure": f"aborted: {e.reason}"}, e.reason
            if not finished and max_steps is not None and steps >= max_steps:
                finished, step_info = True, {"failure": f"no end after {max_steps} steps"}
            if finished:
                success = reward > 0
                failure = "" if success else str(step_info.get("failure") or step_info.get("reason") or f"reward {reward:g}")
                done[i] = EpisodeResult(task, seed, success, steps, failure, traces[i], actions_taken[i], aborted, asked[i])
                ended(done[i])
            else:
                still.append(j)
        if len(still) < len(active):
            policy.keep(still)
        active = [active[j] for j in still]
    return done


# --- a PyTorch model as a policy ---

QUOTED = re.compile(r"[\"“']([^\"”']+)[\"”']")


def screenshots_to_tensor(screens: list[np.ndarray], size, device=None) -> torch.Tensor:
    """(H, W, 3) uint8 frames -> (N, 3, height, width) floats in [0, 1] at `size` (N or [height, width]),
    resized where needed."""
    hw = frame_size(size)
    images = torch.from_numpy(np.stack(screens)).to(device).permute(0, 3, 1, 2).float() / 255
    if images.shape[-2:] != hw:
        images = F.interpolate(images, size=hw, mode="bilinear", antialias=True, align_corners=False)
    return images


def decode_action(action_id: int, xy, instruction: str, release=None, key_id: int | None = None,
                  typed=None) -> Action:  # fmt: skip
    """An action from a policy's outputs for one frame (TorchPolicy's and OnnxPolicy's alike): the type and
    the point; a drag's release point (`release`, from a drag head; else the press point); a key's KEYS index
    (`key_id`, from a key head; else Enter); the text to type as bytes, -1 ending it (`typed`, from a text
    head; else the instruction's quoted string, as models without one were built for)."""
    kind = ACTIONS[action_id]
    x, y = float(xy[0]), float(xy[1])
    x2, y2 = (float(release[0]), float(release[1])) if release is not None else (x, y)
    text = ""
    if kind == "type":
        if typed is not None:
            data = [int(b) for b in typed]
            data = data[: data.index(-1)] if -1 in data else data
            text = bytes(data).decode("utf-8", errors="replace")
        else:
            found = QUOTED.search(instruction)
            text = found.group(1) if found else ""
    elif kind == "key":
        text = KEYS[key_id] if key_id is not None else "Enter"
    return Action(kind, x=x, y=y, text=text, x2=x2, y2=y2)


def decode_outputs(out: dict, observations: list[Observation]) -> list[Action]:
    """One action per row from a step's outputs by name, as arrays (torch or numpy): action_logits, coords,
    and where the model has those heads release, key_logits, text_bytes."""
    ids = np.asarray(out["action_logits"]).argmax(-1).tolist()
    rows = range(len(ids))
    release = np.asarray(out["release"]) if out.get("release") is not None else None
    keys = np.asarray(out["key_logits"]).argmax(-1).tolist() if out.get("key_logits") is not None else None
    typed = np.asarray(out["text_bytes"]) if out.get("text_bytes") is not None else None
    coords = np.asarray(out["coords"])
    return [decode_action(ids[i], coords[i], observations[i].instruction, None if release is None else release[i],
                          None if keys is None else keys[i], None if typed is None else typed[i])
            for i in rows]  # fmt: skip


class TorchPolicy:
    """Batched closed-loop policy over a PyTorch model with the Lite step API."""

    def __init__(self, model: torch.nn.Module, device: str | torch.device = "cpu"):
        self.model = model.eval().to(device)
        self.device = torch.device(device)
        self.state = None

    def reset(self, batch: int) -> None:
        self.state = self.model.initial_state(batch)
        self.state = [h.to(self.device) for h in self.state]

    @torch.no_grad()
    def act(self, observations: list[Observation]) -> tuple[list[Action], dict]:
        images = screenshots_to_tensor([o.screenshot for o in observations], self.model.image_size, self.device)
        text = self.model.text_inputs([o.task for o in observations], [o.instruction for o in observations])
        dt = torch.tensor([o.dt for o in observations], dtype=torch.float32, device=self.device)  # (B,): real time
        out = self.model.step(images, **{k: v.to(self.device) for k, v in text.items()}, state=self.state, dt=dt)
        self.state = out["state"]
        coords = out["coords"].tolist()
        actions = decode_outputs({k: v.cpu() for k, v in out.items() if isinstance(v, torch.Tensor)}, observations)
        return actions, {"tau": [t.cpu() for t in out["tau_values"]], "coords": coords}

    def keep(self, rows: list[int]) -> None:
        """Drop the state of finished episodes: keep these batch rows, in this order."""
        index = torch.tensor(rows, device=self.device, dtype=torch.long)
        self.state = [h.index_select(0, index) for h in self.state]


# --- success tables ---


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
    from lnn.plots import plot_success

    out_dir.mkdir(parents=True, exist_ok=True)
    rows = success_table(results, kinds)
    (out_dir / "success.md").write_text(f"# {title}\n\n" + format_table(rows))
    with open(out_dir / "success.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plot_success(rows, out_dir / "success.png", title)
    return rows
