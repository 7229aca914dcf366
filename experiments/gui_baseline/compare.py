"""Side-by-side closed-loop success of finished runs: a markdown table and a grouped bar plot.

    python experiments/gui_baseline/compare.py liquid=logs/runs/<a> feedforward=logs/runs/<b> \
        --out experiments/gui_baseline
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path


def read_success(run: Path) -> dict[str, dict]:
    with open(run / "eval" / "success.csv") as f:
        return {row["task"]: row for row in csv.DictReader(f)}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="name=run_dir")
    p.add_argument("--out", default=str(Path(__file__).parent))
    args = p.parse_args()
    runs = {name: read_success(Path(path)) for name, path in (r.split("=", 1) for r in args.runs)}
    tasks = list(next(iter(runs.values())))
    names = list(runs)

    lines = ["| task | " + " | ".join(f"{n} (95% CI)" for n in names) + " |", "|---|" + "---:|" * len(names)]
    for task in tasks:
        cells = []
        for n in names:
            r = runs[n].get(task)
            cells.append("—" if r is None else f"{100 * float(r['success']):.1f}% ({100 * float(r['ci_low']):.0f}–{100 * float(r['ci_high']):.0f})")
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    out = Path(args.out)
    (out / "comparison.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    y = np.arange(len(tasks))
    height = 0.8 / len(names)
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(tasks) * max(1, len(names) / 2) + 2))
    for i, n in enumerate(names):
        rate = [100 * float(runs[n][t]["success"]) if t in runs[n] else 0 for t in tasks]
        low = [100 * float(runs[n][t]["ci_low"]) if t in runs[n] else 0 for t in tasks]
        high = [100 * float(runs[n][t]["ci_high"]) if t in runs[n] else 0 for t in tasks]
        err = [np.subtract(rate, low), np.subtract(high, rate)]
        ax.barh(y + i * height, rate, height, xerr=err, capsize=2, label=n)
    ax.set_yticks(y + height * (len(names) - 1) / 2, tasks)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("closed-loop success on held-out seeds, % (bars: 95% CI)")
    ax.set_title("What memory buys: liquid vs feed-forward core, per task family")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.07), ncol=2)
    fig.tight_layout()
    fig.savefig(out / "comparison.png", dpi=120)
    print(f"written: {out / 'comparison.md'}, {out / 'comparison.png'}")


if __name__ == "__main__":
    main()
