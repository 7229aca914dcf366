"""lnn's per-task MiniWoB++ success beside the published per-task figures (published.json).

    python -m lnn.agent ckpt=<run> task=single-click protocol=pix2act out=logs/agent/pix2act
    PYTHONPATH=src python experiments/miniwob/pix2act_table.py logs/agent/pix2act

Reads the agent's success.csv and plan.json; writes pix2act_table.md and .png next to this script (or
--out). A blank cell: no published per-task figure was found for that agent (published.json says where
we looked); figures are never filled in from anywhere else.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

HERE = Path(__file__).parent
PUBLISHED = HERE / "published.json"


def table(agent_dir: Path, published: dict) -> tuple[list[dict], dict]:
    """Rows {task, lnn, lnn_ci, <agent>: rate or None} for the tasks lnn was evaluated on, and the plan."""
    plan = json.loads((agent_dir / "plan.json").read_text())
    with open(agent_dir / "success.csv", newline="") as f:
        ours = {row["task"]: row for row in csv.DictReader(f)}
    rows = []
    for task in plan["tasks"]:
        row = ours[task]
        rows.append({"task": task, "lnn": float(row["success"]), "lnn_ci": (float(row["ci_low"]), float(row["ci_high"])),
                     **{name: agent["per_task"].get(task) for name, agent in published["agents"].items()}})  # fmt: skip
    return rows, plan


def mean(values: list) -> float | None:
    return sum(values) / len(values) if values and None not in values else None


def markdown(rows: list[dict], plan: dict, published: dict) -> str:
    agents = list(published["agents"])
    cell = lambda v: "" if v is None else f"{100 * v:.1f}%"  # noqa: E731
    lines = [
        "# lnn beside published per-task MiniWoB++ figures",
        "",
        f"lnn: `{plan['ckpt']}`, protocol {plan.get('protocol') or 'none'}: {plan['episodes_per_task']} seeds per task "
        f"({plan['seeds'][0]}..{plan['seeds'][1]}), at most {plan['max_steps']} actions, success = raw reward > 0.",
        "Blank: no published per-task figure found (see published.json).",
        "",
        "| task | lnn | 95% CI | " + " | ".join(agents) + " |",
        "|---|---:|---|" + "---:|" * len(agents),
    ]
    for r in rows:
        lines.append(f"| {r['task']} | {cell(r['lnn'])} | {100 * r['lnn_ci'][0]:.1f}–{100 * r['lnn_ci'][1]:.1f} | "
                     + " | ".join(cell(r[a]) for a in agents) + " |")  # fmt: skip
    lines.append(f"| **mean** | **{cell(mean([r['lnn'] for r in rows]))}** | | "
                 + " | ".join(cell(mean([r[a] for r in rows])) for a in agents) + " |")  # fmt: skip
    lines += ["", "Settings: " + "; ".join(f"{a}: {published['agents'][a]['setting']}" for a in agents) + "."]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], published: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(rows)), 4))
    xs = range(len(rows))
    ax.bar(xs, [100 * r["lnn"] for r in rows], color="tab:blue", label="lnn")
    for (name, _), marker in zip(published["agents"].items(), "o^sD"):
        found = [(x, 100 * r[name]) for x, r in zip(xs, rows) if r[name] is not None]
        if found:
            ax.scatter(*zip(*found), marker=marker, color="black", zorder=3, label=name)
    ax.set_xticks(list(xs), [r["task"] for r in rows], rotation=60, ha="right")
    ax.set_ylabel("success %")
    ax.set_ylim(0, 105)
    ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("agent_dir", type=Path, help="the agent's out= directory")
    parser.add_argument("--out", type=Path, default=HERE, help="where pix2act_table.md / .png go")
    args = parser.parse_args()
    published = json.loads(PUBLISHED.read_text())
    rows, plan = table(args.agent_dir, published)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pix2act_table.md").write_text(markdown(rows, plan, published))
    plot(rows, published, args.out / "pix2act_table.png")
    print((args.out / "pix2act_table.md").read_text())


if __name__ == "__main__":
    main()
