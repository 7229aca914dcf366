"""A Hydra callback that summarises a multirun: every job's parameters and results, the best job, a plot.

Written into the sweep directory when the multirun ends (grid sweeps and Optuna alike):

    summary.md   a table of every job (swept parameters, τ bounds, solver, status, metrics) and the best job
    summary.csv  the same, every column
    best.json    the best job by the monitored metric: its directory, checkpoint, value, and why
    summary.png  the metric against τ_min and τ_max (and the τ_min × τ_max plane)

`pick_best` is what `export.py run=<sweep>` uses to choose the checkpoint, so the summary and the export
always agree on which job is best.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

DEFAULT_MONITOR, DEFAULT_MODE = "val/success", "max"
PARAMS = ("model.tau_min", "model.tau_max", "model.solver", "model.unfolds")  # always shown


def is_sweep_dir(path: Path) -> bool:
    """A multirun directory: it has job subdirectories written by Hydra (each with .hydra/overrides.yaml)."""
    return path.is_dir() and (
        (path / "multirun.yaml").exists() or any((p / ".hydra" / "overrides.yaml").exists() for p in path.iterdir())
    )


def _job_error(job: Path) -> str:
    """The last `error:` line a failed job logged (run_or_explain logs it in a sweep), else ''."""
    for log in sorted(job.glob("*.log")):
        lines = [line for line in log.read_text(errors="replace").splitlines() if "error:" in line]
        if lines:
            return lines[-1].split("error:", 1)[1].strip()
    return ""


def _monitor(cfg) -> tuple[str, str]:
    best = OmegaConf.select(cfg, "callbacks.best", default=None) if cfg is not None else None
    if best is None:
        return DEFAULT_MONITOR, DEFAULT_MODE
    return str(best.get("monitor") or DEFAULT_MONITOR), str(best.get("mode") or DEFAULT_MODE)


def job_score(results: dict, monitor: str) -> float | None:
    """The job's monitored value: its best checkpoint's score when recorded, else the last validation's."""
    value = results.get("best_score") if results.get("monitor") == monitor else None
    value = results.get(monitor) if value is None else value
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def collect_jobs(sweep_dir: Path) -> list[dict]:
    """A row per job directory: job, dir, overrides, status, τ bounds and solver (resolved), results."""
    rows = []
    for job in sorted((p for p in sweep_dir.iterdir() if p.is_dir()), key=lambda p: (len(p.name), p.name)):
        overrides_file = job / ".hydra" / "overrides.yaml"
        if not overrides_file.exists():
            continue
        overrides = [str(o) for o in OmegaConf.load(overrides_file)]
        cfg_file = job / "config.yaml"
        cfg = OmegaConf.load(cfg_file) if cfg_file.exists() else OmegaConf.load(job / ".hydra" / "config.yaml")
        results_file = job / "results.json"
        try:
            results = json.loads(results_file.read_text()) if results_file.exists() else {}
        except ValueError:
            results = {}
        monitor, mode = _monitor(cfg)
        row = {"job": job.name, "dir": str(job), "overrides": " ".join(overrides)}
        for key in PARAMS:
            row[key] = OmegaConf.select(cfg, key, default=None)
        row |= {"status": "finished" if results else "failed", "monitor": monitor, "mode": mode,
                "score": job_score(results, monitor), "error": "" if results else _job_error(job)}  # fmt: skip
        row |= {k: v for k, v in results.items() if k not in row}
        rows.append(row)
    return rows


@dataclass
class BestJob:
    job: str
    dir: Path
    checkpoint: Path | None
    monitor: str
    mode: str
    value: float
    reason: str
    finished: int
    failed: int

    def as_dict(self) -> dict:
        return {k: str(v) if isinstance(v, Path) else v for k, v in self.__dict__.items()}


def pick_best(rows: list[dict], sweep_dir: Path | str = "") -> BestJob | None:
    """The finished job with the best monitored value (ties: the earlier job); None if no job finished."""
    scored = [r for r in rows if r["status"] == "finished" and r["score"] is not None]
    if not scored:
        return None
    monitor, mode = scored[0]["monitor"], scored[0]["mode"]
    sign = 1 if mode == "max" else -1


    def loss(r: dict) -> float:
        value = r.get("val/loss")
        return float(value) if isinstance(value, (int, float)) and not math.isnan(value) else math.inf

    # ties (common: success rates are fractions of a few episodes) go to the lower val/loss, then the earlier job
    best = max(scored, key=lambda r: (sign * r["score"], -loss(r), -int(r["job"]) if r["job"].isdigit() else 0))
    failed = len(rows) - len(scored)
    ckpt = Path(best["dir"]) / "checkpoints" / "best.ckpt"
    ties = sum(1 for r in scored if r["score"] == best["score"]) - 1
    reason = (
        f"job {best['job']} ({best['overrides'] or 'no overrides'}) has the {'highest' if mode == 'max' else 'lowest'} "
        f"{monitor} = {best['score']:.4g} of the {len(scored)} completed job(s) of sweep {sweep_dir}"
        + (f" (tied with {ties} other job(s); the lowest val/loss, {loss(best):.4g}, breaks the tie)" if ties else "")
        + (f"; {failed} job(s) failed" if failed else "")
    )
    return BestJob(best["job"], Path(best["dir"]), ckpt if ckpt.exists() else None, monitor, mode,
                   best["score"], reason, len(scored), failed)  # fmt: skip


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
    def on_job_end(self, config: DictConfig, job_return=None, **kwargs) -> None:
        """Keep the summary current after every job of a sweep: it exists even if the sweep itself dies
        (Optuna's sweeper raises at the end when every trial failed)."""
        from lnn.training.cli import in_multirun

        if not in_multirun():
            return
        sweep_dir = Path(config.hydra.sweep.dir)
        if sweep_dir.exists():
            try:
                write_summary(sweep_dir)
            except Exception as e:  # a summary must never fail a job
                import logging

                logging.getLogger("lnn").warning(f"sweep summary not updated: {e}")

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
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
