"""What the map memory holds: one held-out episode per family, each frame with the traces over it.

    python experiments/memory/traces.py logs/runs/<run> [--tasks remember-target,click-sequence] [--seed 20000000]

The run's policy plays each family's episode in the GUI env (closed loop, its own actions); per step the
figure shows the frame, the traces (`model.map_memory`: leaky integrators of where the model looked; the
trace of the slowest τ, scaled per frame) as a heat map, the point it clicked and the frame's dt.
Writes <run>/eval/traces.png.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from lnn.envs import GuiEnv
from lnn.plots import _plt
from lnn.rollout import TorchPolicy
from lnn.runs import load_policy

FAMILIES = "remember-target,click-sequence,longest-light,wait-green"


def play(model, task: str, seed: int) -> list[dict]:
    """The episode's steps: frame, slowest trace (map rows x cols), action, point, dt, reward at the end."""
    env = GuiEnv([task], image_size=model.image_size)
    policy = TorchPolicy(model)
    policy.reset(1)
    obs, steps, done = env.reset(seed, task), [], False
    while not done:
        actions, _ = policy.act([obs])
        _, _, trace, _ = model.split_state(policy.state, 1, policy.state[0])
        slowest = trace.view(-1, model.map_memory, *model.map_hw)[0, int(model.trace_log_tau.argmax())]
        steps.append({"frame": obs.screenshot, "trace": slowest.numpy(), "action": actions[0], "dt": obs.dt})
        obs, reward, done, info = env.step(actions[0])
    steps[-1]["success"] = info.get("success", reward > 0)
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run")
    parser.add_argument("--tasks", default=FAMILIES)
    parser.add_argument("--seed", type=int, default=20_000_000, help="a held-out (test) seed")
    args = parser.parse_args()
    model = load_policy(args.run)
    if not getattr(model, "map_memory", 0):
        raise SystemExit(f"{args.run}: the model has no map memory (model.map_memory=0)")
    episodes = {task: play(model, task, args.seed) for task in args.tasks.split(",")}
    plt = _plt()
    cols = max(len(steps) for steps in episodes.values())
    fig, axes = plt.subplots(len(episodes), cols, figsize=(2.0 * cols, 2.3 * len(episodes)), squeeze=False)
    for row, (task, steps) in enumerate(episodes.items()):
        for col in range(cols):
            ax = axes[row, col]
            ax.axis("off")
            if col >= len(steps):
                continue
            step = steps[col]
            h, w = step["frame"].shape[:2]
            ax.imshow(step["frame"])
            trace = step["trace"] / max(float(step["trace"].max()), 1e-6)
            ax.imshow(trace, cmap="magma", alpha=0.55, extent=(0, w, h, 0), interpolation="nearest")
            action = step["action"]
            if action.type in ("click", "drag"):
                ax.plot(action.x * w, action.y * h, "c+", markersize=14, markeredgewidth=2)
            title = f"{action.type}  dt {step['dt']:.2f}"
            if "success" in step:
                title += "  ✓" if step["success"] else "  ✗"
            ax.set_title(title, fontsize=8)
        axes[row, 0].text(-0.1, 0.5, task, transform=axes[row, 0].transAxes, rotation=90, va="center", ha="right")
    taus = ", ".join(f"{t:.1f}" for t in model.trace_log_tau.exp().tolist())
    fig.suptitle(f"map memory (slowest trace shown; τ = {taus} s) — {args.run}, seed {args.seed}", fontsize=9)
    out = Path(args.run) / "eval" / "traces.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(out)


if __name__ == "__main__":
    with torch.no_grad():
        main()
