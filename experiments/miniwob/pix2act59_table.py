"""Runs side by side on Pix2Act's 59 MiniWoB++ tasks: per-task closed-loop success, the mean per kind, and the
mean over all 59 where a task a run was not evaluated on counts 0% (issue 11's rule for a task without an oracle).

    python train.py experiment=miniwob_pix2act59 ...                       # its closed-loop test: <run>/eval/
    PYTHONPATH=src python experiments/miniwob/pix2act59_table.py liquid=<run dir> lite_ff=<run dir> --out <dir>

Each LABEL=DIR is a train.py run (reads DIR/eval/success.csv) or an agent's output directory (DIR/success.csv).
Writes pix2act59_table.md and pix2act59_table.png into --out.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from lnn.envs.miniwob.oracles import FAILED_VALIDATION, NO_ORACLE, ORACLE_KINDS

# Pix2Act's evaluation set (its repository's eval/tasks.txt), in the order of lnn's kinds
PIX2ACT_TASKS = (
    "bisect-angle choose-date-nodelay circle-center click-button click-button-sequence click-checkboxes "
    "click-checkboxes-large click-checkboxes-soft click-checkboxes-transfer click-collapsible-2-nodelay "
    "click-collapsible-nodelay click-color click-dialog click-dialog-2 click-link click-option click-pie-nodelay "
    "click-shades click-shape click-tab click-tab-2 click-tab-2-easy click-tab-2-hard click-tab-2-medium click-test "
    "click-test-2 click-test-transfer click-widget count-shape count-sides drag-box drag-item drag-items "
    "drag-items-grid drag-shapes drag-sort-numbers email-inbox-delete email-inbox-important enter-date enter-text-2 "
    "enter-time find-midpoint grid-coordinate identify-shape navigate-tree number-checkboxes resize-textarea "
    "right-angle simple-algebra simple-arithmetic text-transform tic-tac-toe unicode-test use-autocomplete-nodelay "
    "use-colorwheel use-colorwheel-2 use-slider use-slider-2 visual-addition"
).split()
KINDS = ("single-click", "two-click", "multi-click", "drag", "typing")


def read_success(folder: Path) -> dict[str, tuple[float, int]]:
    """{task: (success rate, episodes)} from a run's eval/success.csv or an agent's success.csv."""
    path = folder / "eval" / "success.csv" if (folder / "eval" / "success.csv").exists() else folder / "success.csv"
    if not path.exists():
        raise SystemExit(f"{folder}: no eval/success.csv nor success.csv (a finished train.py run or agent output)")
    with open(path, newline="") as f:
        return {row["task"]: (float(row["success"]), int(row["episodes"])) for row in csv.DictReader(f)
                if not row["task"].startswith("[")}  # not the [all] / [kind] / [mean] rows


def why_missing(task: str) -> str:
    if task in NO_ORACLE:
        return f"no oracle: {NO_ORACLE[task]}"
    if task in FAILED_VALIDATION:
        return "oracle below 99%, not trained on"
    return "not evaluated"


def kind_of(task: str) -> str:
    return ORACLE_KINDS.get(task, "no oracle")


def summarise(runs: dict[str, dict]) -> dict[str, dict[str, float]]:
    """{label: {kind or 'all 59': mean success, a missing task counted 0}}."""
    out = {}
    for label, success in runs.items():
        rate = {t: success.get(t, (0.0, 0))[0] for t in PIX2ACT_TASKS}
        means = {kind: sum(rate[t] for t in PIX2ACT_TASKS if kind_of(t) == kind)
                 / sum(kind_of(t) == kind for t in PIX2ACT_TASKS) for kind in KINDS}  # fmt: skip
        out[label] = means | {"all 59": sum(rate.values()) / len(PIX2ACT_TASKS)}
    return out


def markdown(runs: dict[str, dict], dirs: dict[str, str]) -> str:
    labels = list(runs)
    means = summarise(runs)
    episodes = {label: sorted({n for _, n in success.values()}) for label, success in runs.items()}
    lines = ["# Pix2Act's 59 MiniWoB++ tasks", ""]
    lines += [f"- `{label}`: `{dirs[label]}` ({'/'.join(map(str, episodes[label]))} episodes per task)" for label in labels]
    lines += ["", "A task a run was not evaluated on counts 0% in every mean (why: last column).", "",
              "| | " + " | ".join(labels) + " |", "|---|" + "---:|" * len(labels)]  # fmt: skip
    for row in (*KINDS, "all 59"):
        n = len(PIX2ACT_TASKS) if row == "all 59" else sum(kind_of(t) == row for t in PIX2ACT_TASKS)
        lines.append(f"| **{row}** ({n} tasks) | " + " | ".join(f"{100 * means[label][row]:.1f}%" for label in labels) + " |")
    lines += ["", "| task | kind | " + " | ".join(labels) + " | |", "|---|---|" + "---:|" * len(labels) + "---|"]
    for kind in (*KINDS, "no oracle"):
        for task in (t for t in PIX2ACT_TASKS if kind_of(t) == kind):
            cells = [f"{100 * runs[label][task][0]:.0f}%" if task in runs[label] else "0% (—)" for label in labels]
            note = "" if all(task in runs[label] for label in labels) else why_missing(task)
            lines.append(f"| {task} | {kind} | " + " | ".join(cells) + f" | {note} |")
    return "\n".join(lines) + "\n"


def plot(runs: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    means = summarise(runs)
    groups = (*KINDS, "all 59")
    width = 0.8 / len(runs)
    fig, ax = plt.subplots(figsize=(8, 3.6))
    for i, (label, m) in enumerate(means.items()):
        xs = [g + i * width for g in range(len(groups))]
        bars = ax.bar(xs, [100 * m[g] for g in groups], width, label=label)
        ax.bar_label(bars, fmt="%.0f", fontsize=7)
    ax.set_xticks([g + width * (len(runs) - 1) / 2 for g in range(len(groups))], groups)
    ax.set_ylabel("closed-loop success (%)")
    ax.set_ylim(0, 105)
    ax.set_title("Pix2Act's 59 MiniWoB++ tasks, mean per kind (missing tasks count 0%)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", metavar="LABEL=DIR")
    parser.add_argument("--out", default=str(Path(__file__).parent))
    args = parser.parse_args()
    dirs = {}
    for item in args.runs:
        label, sep, folder = item.partition("=")
        if not sep or not label or not folder:
            raise SystemExit(f"{item!r}: give each run as LABEL=DIR, e.g. liquid=logs/runs/2026-12-06_22-00-00")
        dirs[label] = folder
    runs = {label: read_success(Path(folder)) for label, folder in dirs.items()}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "pix2act59_table.md").write_text(markdown(runs, dirs))
    plot(runs, out / "pix2act59_table.png")
    print((out / "pix2act59_table.md").read_text())


if __name__ == "__main__":
    main()
