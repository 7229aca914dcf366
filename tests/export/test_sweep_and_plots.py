"""The sweep summary (best job, table, plot), the τ plots, and the training callback's files."""

import json

import numpy as np
import pytest

from lnn import plots
from lnn.agent import EpisodeResult
from lnn.envs import Action
from lnn.training.sweep import write_summary
from lnn.training.tau_plots import TauPlots, episode_record
from tests.export.test_bad_input import sweep


def test_summary_names_the_best_job_and_plots_the_metric_against_tau(tmp_path):
    root = sweep(tmp_path, [0.2, None, 0.7, 0.7])
    (root / "3" / "results.json").write_text(json.dumps({"val/success": 0.7, "val/loss": 0.5}))
    (root / "2" / "results.json").write_text(json.dumps({"val/success": 0.7, "val/loss": 0.9}))
    best = write_summary(root)
    assert best.job == "3" and "lowest val/loss" in best.reason  # a tie on success goes to the lower loss
    summary = (root / "summary.md").read_text()
    assert "**Best job: 3**" in summary and "failed: model.tau_max=0.05 — must be > tau_min" in summary
    assert summary.count("| finished |") == 3
    assert "tau_min | tau_max | solver" in summary
    assert json.loads((root / "best.json").read_text())["job"] == "3"
    assert (root / "summary.png").stat().st_size > 10_000
    assert (root / "summary.csv").read_text().count("\n") == 5


def test_summary_of_a_sweep_where_every_job_failed(tmp_path):
    root = sweep(tmp_path, [None, None])
    assert write_summary(root) is None
    assert "Every job failed" in (root / "summary.md").read_text()
    assert json.loads((root / "best.json").read_text()) is None


def records(layers=3, k=1, steps=(16, 5)):
    rng = np.random.default_rng(0)
    out = []
    for i, n in enumerate(steps):
        out.append(plots.EpisodeRecord(
            task=f"task-{i}", frames=[rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for _ in range(n)],
            tau=rng.uniform(1, 10, (n, layers, k)), actions=["click"] * n, points=[(0.5, 0.5)] * n,
            correct=[True] * n, new_episode=[t % 4 == 0 for t in range(n)], states=rng.normal(size=(n, layers, 16)),
        ))  # fmt: skip
    return out


@pytest.mark.parametrize("k", [1, 16])
def test_tau_plots_are_written(tmp_path, k):
    recs = records(k=k)
    plots.plot_tau_steps(recs, (1, 10), tmp_path / "steps.png")
    plots.plot_tau_by_task(recs, (1, 10), tmp_path / "by_task.png")
    plots.plot_trajectories(recs, tmp_path / "trajectories.png")
    for name in ("steps.png", "by_task.png", "trajectories.png"):
        assert (tmp_path / name).stat().st_size > 10_000


def test_training_callback_writes_per_epoch_plots_and_the_evolution(tmp_path):
    trace = [{"screenshot": np.zeros((96, 96, 3), np.uint8), "instruction": "x", "action": Action("click", 0.2, 0.3),
              "tau": [[2.0], [3.0]]} for _ in range(3)]  # fmt: skip
    results = [EpisodeResult("click-color", 10_000_000, False, 3, "outside the box", trace)]
    rec = episode_record(results[0])
    assert rec.tau.shape == (3, 2, 1) and rec.correct == [True, True, False] and "failed" in rec.label
    callback = TauPlots(dirpath=str(tmp_path / "tau"))
    for epoch in range(2):
        callback.write([rec], epoch, (1.0, 10.0))
    for name in ("epoch_000/tau_over_steps.png", "epoch_001/tau_by_task.png", "tau_evolution.png", "history.json"):
        assert (tmp_path / "tau" / name).is_file(), name
    history = json.loads((tmp_path / "tau" / "history.json").read_text())
    assert [h["epoch"] for h in history] == [0, 1] and history[0]["layers"][1]["median"] == 3.0
    restored = TauPlots(dirpath=str(tmp_path / "tau"))
    restored.load_state_dict(callback.state_dict())
    assert restored.history == callback.history
