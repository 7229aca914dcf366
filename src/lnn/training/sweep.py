"""A Hydra callback that summarises a multirun: every job's parameters and results, the best job, a plot.

Written into the sweep directory when the multirun ends (grid sweeps and Optuna alike):

    summary.md   a table of every job (swept parameters, τ bounds, solver, status, metrics) and the best job
    summary.csv  the same, every column
    best.json    the best job by the monitored metric: its directory, checkpoint, value, and why
    summary.png  the metric against τ_min and τ_max (and the τ_min × τ_max plane)

The jobs and the best one come from `lnn.runs` (`collect_jobs`, `pick_best`), which `export.py run=<sweep>`
uses too, so the summary and the export always agree on which job is best.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from hydra.experimental.callback import Callback  # Hydra imports this callback by _target_ (conf/hydra/)

from lnn.config import in_multirun
from lnn.runs import PARAMS, BestJob, collect_jobs, pick_best


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def write_summary(sweep_dir: Path) -> BestJob | None:
    """summary.md / .csv / .png and best.json in sweep_dir; returns the best job (None: none finished)."""
    rows = collect_jobs(sweep_dir)
    if not rows:
        return None
    best = pick_best(rows, sweep_dir)
    keys = list(dict.fromkeys(k for row in rows for k in row))
    with open(sweep_dir / "summary.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)

    monitor = rows[0]["monitor"]
    metrics = [m for m in ("val/loss", "test/success/all", "fit_seconds") if any(m in r for r in rows)]
    shown = ["job", "overrides", *PARAMS, "status", monitor, *metrics]
    header = [k.removeprefix("model.") for k in shown]
    lines = [f"# Sweep {sweep_dir}", ""]
    if best is not None:
        headline = (f"**Best job: {best.job}** — {monitor} = {best.value:.4g} ({best.mode}); "
                    f"checkpoint `{best.checkpoint or 'missing'}`")  # fmt: skip
        lines += [headline, "", f"Why: {best.reason}.", ""]
    else:
        lines += [f"**Every job failed** ({len(rows)} job(s)): no best job. Errors are in the table.", ""]
    legend = (f"{monitor}: the best checkpoint's value (mode {rows[0]['mode']}); "
              "tau_min, tau_max, solver, unfolds: each job's resolved config.")  # fmt: skip
    lines += [legend, ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(shown)]
    for row in rows:
        cells = [_cell(row["score"] if k == monitor else row.get(k)) for k in shown]
        if row["job"] == (best.job if best else None):
            cells[0] = f"**{cells[0]}** ★"
        if row["status"] == "failed" and row["error"]:
            cells[shown.index("status")] = f"failed: {row['error']}"
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    (sweep_dir / "summary.md").write_text("\n".join(lines) + "\n")
    (sweep_dir / "best.json").write_text(json.dumps(best.as_dict() if best else None, indent=1))
    plot_sweep(rows, best, sweep_dir / "summary.png")
    return best


def plot_sweep(rows: list[dict], best: BestJob | None, path: Path) -> None:
    """The monitored metric against τ_min and τ_max (one marker per solver), and over the τ plane."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    monitor = rows[0]["monitor"]

    def placed(r: dict) -> bool:  # jobs whose τ bounds are known (a job that failed early may lack them)
        return all(isinstance(r.get(k), (int, float)) and r[k] > 0 for k in ("model.tau_min", "model.tau_max"))

    done = [r for r in rows if r["score"] is not None and placed(r)]
    failed = [r for r in rows if r["score"] is None and placed(r)]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    solvers = sorted({str(r["model.solver"]) for r in done + failed})
    markers = dict(zip(solvers, "osD^vP*X"))
    for ax, key, label in ((axes[0], "model.tau_min", "τ_min"), (axes[1], "model.tau_max", "τ_max")):
        for solver in solvers:
            mine = [r for r in done if str(r["model.solver"]) == solver]
            ax.scatter([r[key] for r in mine], [r["score"] for r in mine], marker=markers[solver], s=50,
                       alpha=0.8, label=f"solver={solver}")  # fmt: skip
        if failed:
            ax.scatter([r[key] for r in failed], [0] * len(failed), marker="x", color="red", label="failed job")
        row = next((r for r in done if best is not None and r["job"] == best.job), None)
        if row is not None:
            ax.scatter([row[key]], [row["score"]], s=260, facecolors="none", edgecolors="gold", linewidths=2.5,
                       label=f"best: job {best.job}")  # fmt: skip
        if not done + failed:
            ax.text(0.5, 0.5, "no job with known τ bounds", ha="center", transform=ax.transAxes)
            continue
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        if all(0 <= r["score"] <= 1 for r in done):  # a rate: show its whole range
            ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel(f"{label} (log scale; time constants in units of one input step)")
        ax.set_ylabel(f"{monitor} (best checkpoint)")
        ax.set_title(f"{monitor} against {label}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    ax = axes[2]
    if done:
        points = ax.scatter([r["model.tau_min"] for r in done], [r["model.tau_max"] for r in done],
                            c=[r["score"] for r in done], cmap="viridis", s=90, edgecolors="k")  # fmt: skip
        fig.colorbar(points, ax=ax, label=monitor)
        for r in done:
            ax.annotate(f"{r['score']:.2f}", (r["model.tau_min"], r["model.tau_max"]), fontsize=8,
                        xytext=(5, 4), textcoords="offset points")  # fmt: skip
    if failed:
        ax.scatter([r["model.tau_min"] for r in failed], [r["model.tau_max"] for r in failed], marker="x",
                   color="red", s=60, label="failed job")  # fmt: skip
        ax.legend(fontsize=8)
    if done + failed:
        ax.set_xscale("log")
        ax.set_yscale("log")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        axis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("τ_min (log)")
    ax.set_ylabel("τ_max (log)")
    ax.set_title(f"every job on the τ plane, coloured by {monitor}")
    ax.grid(alpha=0.3)
    finished = sum(r["score"] is not None for r in rows)
    fig.suptitle(f"Sweep: {finished} finished, {len(rows) - finished} failed"
                 + (f" — best job {best.job}: {monitor} = {best.value:.3g}" if best else ""))  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


class SweepSummary(Callback):
    def on_job_end(self, config, job_return=None, **kwargs) -> None:
        """Keep the summary current after every job of a sweep: it exists even if the sweep itself dies
        (Optuna's sweeper raises at the end when every trial failed)."""
        if not in_multirun():
            return
        sweep_dir = Path(config.hydra.sweep.dir)
        if sweep_dir.exists():
            try:
                write_summary(sweep_dir)
            except Exception as e:  # a summary must never fail a job
                import logging

                logging.getLogger("lnn").warning(f"sweep summary not updated: {e}")

    def on_multirun_end(self, config, **kwargs) -> None:
        from lnn.training.resume import finish_sweep

        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.exists():
            return
        jobs = len(collect_jobs(sweep_dir))
        if not jobs:
            return
        best = write_summary(sweep_dir)
        finish_sweep(sweep_dir)
        print(f"sweep of {jobs} jobs: results in {sweep_dir} (summary.md, summary.csv, summary.png, best.json, "
              "one directory per job)")  # fmt: skip
        if best is None:
            print(f"every job of the sweep failed: see the errors in {sweep_dir / 'summary.md'}")
        else:
            print(f"best job: {best.reason}\n  export it: python export.py run={sweep_dir}")
