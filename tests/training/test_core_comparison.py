"""experiment=core_comparison end to end: a 2-core × 2-seed debug sweep, then experiments/cores/compare.py
on it (slow: run by CI with -m slow)."""

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from lnn.runs import read_yaml
from tests.conftest import ROOT, run_cli

pytestmark = pytest.mark.slow


def success_rows(job: Path) -> dict[str, float]:
    with open(job / "eval" / "success.csv") as f:
        return {row["task"]: float(row["success"]) for row in csv.DictReader(f)}


def test_core_comparison_sweep_and_report(tmp_path):
    result = run_cli(str(ROOT / "train.py"), "-m", "experiment=core_comparison", "debug=fast", "core=liquid,gru",
                     "seed=0,1", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = list((tmp_path / "logs" / "multiruns").iterdir())
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit())
    assert len(jobs) == 4

    # which job is which, from Hydra's own record of each job's overrides (not from compare.py)
    by_key = {}
    for job in jobs:
        overrides = dict(o.split("=", 1) for o in read_yaml(job / ".hydra" / "overrides.yaml"))
        by_key[(overrides["core"], int(overrides["seed"]))] = job
        assert read_yaml(job / "config.yaml")["model"]["core"] == overrides["core"]
        assert json.loads((job / "results.json").read_text())["fit_seconds"] > 0  # train time recorded
    assert set(by_key) == {("liquid", 0), ("liquid", 1), ("gru", 0), ("gru", 1)}

    # make the two gru seeds differ for sure (debug runs often tie at 0%): a report that ignored a seed,
    # or took another core's job, then gets the mean or std wrong
    csv_path = by_key[("gru", 1)] / "eval" / "success.csv"
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        if row["task"] == "[memory]":
            row["success"] = str(float(row["success"]) + 0.5)
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    out = tmp_path / "report"
    result = run_cli(str(ROOT / "experiments" / "cores" / "compare.py"), str(sweep), "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((out / "results.json").read_text())
    assert (out / "results.png").stat().st_size > 0
    assert list(report["cores"]) == ["liquid", "gru"]
    for core, c in report["cores"].items():
        assert c["seeds"] == [0, 1]
        assert {(j["core"], j["seed"], Path(j["dir"]).name) for j in report["jobs"] if j["core"] == core} == {
            (core, s, by_key[(core, s)].name) for s in (0, 1)
        }
        assert c["params"] > 0 and c["width"] > 0
        fit = [json.loads((by_key[(core, s)] / "results.json").read_text())["fit_seconds"] for s in (0, 1)]
        assert math.isclose(c["fit_seconds"]["mean"], np.mean(fit))
        for kind in ("single_step", "multi_step", "memory", "all"):
            values = [success_rows(by_key[(core, s)])[f"[{kind}]"] for s in (0, 1)]
            stats = c["kinds"][kind]
            assert stats["n"] == 2
            assert math.isclose(stats["mean"], np.mean(values), abs_tol=1e-12), (core, kind)
            assert math.isclose(stats["std"], np.std(values, ddof=1), abs_tol=1e-12), (core, kind)
        for family, stats in c["families"].items():
            values = [success_rows(by_key[(core, s)])[family] for s in (0, 1)]
            assert math.isclose(stats["std"], np.std(values, ddof=1), abs_tol=1e-12), (core, family)
    assert report["cores"]["gru"]["kinds"]["memory"]["std"] > 0.3  # the edited seed counted

    md = (out / "results.md").read_text()
    table = {line.split("|")[1].strip(): line for line in md.splitlines() if line.startswith(("| liquid |", "| gru |"))}
    assert set(table) == {"liquid", "gru"}
    memory = report["cores"]["gru"]["kinds"]["memory"]
    assert f"{100 * memory['mean']:.1f} ± {100 * memory['std']:.1f}" in table["gru"]
    assert table["liquid"].rstrip(" |").endswith("2") and table["gru"].rstrip(" |").endswith("2")  # n seeds
    assert "**gru**: against gru, liquid" in md and report["verdicts"]["gru"]["memory"] in ("wins", "ties", "loses")

    # single runs given one by one (as `python train.py core=gru seed=1` leaves them) pool as the sweep's jobs do
    singles = tmp_path / "singles"
    one_by_one = [str(by_key[key]) for key in sorted(by_key)]
    result = run_cli(str(ROOT / "experiments" / "cores" / "compare.py"), *one_by_one, "--out", str(singles), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((singles / "results.json").read_text())["cores"] == report["cores"]

    # --dt-scale: every job evaluated again by the agent at that time scale, the report read from those evaluations
    slow = tmp_path / "report_dt2"
    result = run_cli(str(ROOT / "experiments" / "cores" / "compare.py"), str(sweep), "--out", str(slow), "--dt-scale", "2",
                     "--episodes", "2", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((slow / "results.json").read_text())
    for job in jobs:
        plan = json.loads((job / "eval_dt2" / "plan.json").read_text())
        assert plan["env_kwargs"]["dt_scale"] == 2.0 and plan["episodes_per_task"] == 2
        with open(job / "eval_dt2" / "success.csv") as f:
            rows = {row["task"]: float(row["success"]) for row in csv.DictReader(f)}
        (mine,) = [j for j in report["jobs"] if Path(j["dir"]) == job]
        assert mine["kinds"]["all"] == rows["[all]"] and set(mine["families"]) >= {"wait-green", "longest-light"}
    assert "dt_scale=2" in (slow / "results.md").read_text()

    # --unfolds: the liquid jobs evaluated again with 2 solver sub-steps per frame; the gru jobs (no ODE cells) as
    # they are, which is the evaluation just made (resumed from <job>/eval_dt2, nothing run again)
    sub = tmp_path / "report_dt2_unfolds2"
    result = run_cli(str(ROOT / "experiments" / "cores" / "compare.py"), str(sweep), "--out", str(sub), "--dt-scale", "2",
                     "--unfolds", "2", "--episodes", "2", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    for job in jobs:
        reported = json.loads((sub / "results.json").read_text())["jobs"]
        (mine,) = [j for j in reported if Path(j["dir"]) == job]
        folder = job / ("eval_dt2_unfolds2" if mine["core"] == "liquid" else "eval_dt2")
        assert ("x 2 sub-steps" in json.loads((folder / "plan.json").read_text())["backend"]) == (mine["core"] == "liquid")
    assert "unfolds=2" in (sub / "results.md").read_text()
