"""A Hydra callback that summarises a multirun: every job's overrides and results in one table."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig



def collect_jobs(sweep_dir: Path) -> list[dict]:
    rows = []
    for job in sorted(sweep_dir.iterdir(), key=lambda p: (len(p.name), p.name)):
        overrides_file = job / ".hydra" / "overrides.yaml"
        if not overrides_file.exists():
            continue
        from omegaconf import OmegaConf

        overrides = [str(o) for o in OmegaConf.load(overrides_file)]
        results_file = job / "results.json"
        results = json.loads(results_file.read_text()) if results_file.exists() else {}
        rows.append({"job": job.name, "dir": str(job), "overrides": " ".join(overrides),
                     "status": "finished" if results else "failed", **results})  # fmt: skip
    return rows


class SweepSummary(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.exists():
            return
        rows = collect_jobs(sweep_dir)
        if not rows:
            return
        keys = list(dict.fromkeys(k for row in rows for k in row))
        with open(sweep_dir / "summary.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(rows)
        shown = ["job", "overrides", "status", "val/success", "test/success/all", "fit_seconds"]
        lines = ["| " + " | ".join(shown) + " |", "|" + "---|" * len(shown)]
        for row in rows:
            cells = [f"{row[k]:.3f}" if isinstance(row.get(k), float) else str(row.get(k, "")) for k in shown]
            lines.append("| " + " | ".join(cells) + " |")
        (sweep_dir / "summary.md").write_text("\n".join(lines) + "\n")
        print(f"sweep of {len(rows)} jobs: results in {sweep_dir} (summary.md, summary.csv, one directory per job)")
