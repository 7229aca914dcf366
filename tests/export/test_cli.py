"""The whole loop as a user runs it: sweep -> summary -> export the best -> the page's files (slow)."""

import json
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli

pytestmark = pytest.mark.slow


def only(path: Path) -> Path:
    found = [p for p in path.iterdir() if p.is_dir()]
    assert len(found) == 1, found
    return found[0]


def test_grid_sweep_then_export_of_the_best_job(tmp_path):
    result = run_cli(str(ROOT / "train.py"), "-m", "model.tau_min=0.5,1.0", "model.tau_max=8", "debug=fast",
                     cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = only(tmp_path / "logs" / "multiruns")
    for name in ("summary.md", "summary.csv", "summary.png", "best.json"):
        assert (sweep / name).is_file(), name
    best = json.loads((sweep / "best.json").read_text())
    assert "best job:" in result.stdout and f"python export.py run={sweep}" in result.stdout
    for job in ("0", "1"):  # the training callback's τ plots
        assert (sweep / job / "tau" / "tau_evolution.png").is_file()
        assert (sweep / job / "tau" / "epoch_001" / "tau_over_steps.png").is_file()

    exported = run_cli(str(ROOT / "export.py"), f"run={sweep}", "parity.streams_per_task=1", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr[-3000:]
    assert f"job {best['job']}" in exported.stdout and "parity fp32" in exported.stdout
    manifest = json.loads((sweep / "export" / "manifest.json").read_text())
    assert manifest["source"]["checkpoint"] == str(Path(best["checkpoint"]).resolve())
    assert manifest["source"]["sweep"]["best_job"] == best["job"]
    assert manifest["parity"]["fp32"]["passed"] and manifest["parity"]["fp16"]["passed"]
    assert manifest["parity"]["int8"]["passed"]
    assert (sweep / "export" / "plots" / "tau_over_steps.png").is_file()


def test_optuna_sweep_over_tau_and_solver(tmp_path):
    result = run_cli(str(ROOT / "train.py"), "hparams_search=tau_optuna", "hydra.sweeper.n_trials=2", "debug=fast",
                     cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = only(tmp_path / "logs" / "multiruns")
    assert (sweep / "optimization_results.yaml").is_file()
    summary = (sweep / "summary.md").read_text()
    assert summary.count("| finished |") == 2 and "**Best job:" in summary
    jobs = [p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit()]
    assert len(jobs) == 2 and all("solver=" in (j / ".hydra" / "overrides.yaml").read_text() for j in jobs)


def test_fast_debug_run_then_export_as_the_readme_says(tmp_path):
    """`python train.py debug=fast` then `python export.py run=<that run>`: a barely trained click map is flat,
    and fp16 rounding moves its peak; parity judges that a tie, not a failure (it stopped the export before)."""
    trained = run_cli(str(ROOT / "train.py"), "debug=fast", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-3000:]
    run = only(tmp_path / "logs" / "runs")
    exported = run_cli(str(ROOT / "export.py"), f"run={run}", "web.enabled=false", cwd=tmp_path)
    assert exported.returncode == 0, exported.stdout[-2000:] + exported.stderr[-3000:]
    parity = json.loads((run / "export" / "manifest.json").read_text())["parity"]
    for precision in ("fp32", "fp16", "int8"):
        assert parity[precision]["passed"] and parity[precision]["click_agreement"] == 1.0, precision
        assert f"parity {precision}: " in exported.stdout and "same click 100.0%" in exported.stdout
