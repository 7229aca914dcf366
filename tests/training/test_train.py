"""End to end through train.py, as a user runs it (slow: run by CI with -m slow)."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import ROOT, run_cli

pytestmark = pytest.mark.slow


def only_run(tmp_path: Path) -> Path:
    runs = [p for p in (tmp_path / "logs" / "runs").iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def test_fast_debug_run_writes_everything(tmp_path):
    result = run_cli(str(ROOT / "train.py"), "debug=fast", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run = only_run(tmp_path)
    for name in ("config.yaml", ".hydra/config.yaml", "checkpoints/best.ckpt", "checkpoints/last.ckpt",
                 "eval/success.md", "eval/success.csv", "eval/success.png", "results.json", "run.json"):  # fmt: skip
        assert (run / name).exists(), name
    metrics = (run / "csv" / "metrics.csv").read_text()
    for key in ("train/loss", "val/action_acc", "val/click_acc", "val/success", "val/tau_mean/0", "test/success/all"):
        assert key in metrics, key
    results = json.loads((run / "results.json").read_text())
    assert results["global_step"] == 6 and 0 <= results["test/success/all"] <= 1
    assert json.loads((run / "run.json").read_text())["status"] == "finished"
    assert "results: " in result.stdout + result.stderr
    # best.ckpt is weights-only (no optimizer moments) yet keeps the score export/sweeps rank it by
    best = torch.load(run / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=False)
    assert "optimizer_states" not in best and "optimizer_states" in torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    from lnn.export.source import checkpoint_score

    score = checkpoint_score(run / "checkpoints" / "best.ckpt", "val/success")
    assert score is not None and score == pytest.approx(results["best_score"])


def adam_steps(checkpoint: Path) -> set[int]:
    """The optimizer's own step count of every parameter (Adam's bias correction runs on it)."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)["optimizer_states"][0]["state"]
    return {int(s["step"]) for s in state.values()}


def test_killed_run_resumes_with_the_same_command(tmp_path):
    # 2 epochs of 12 steps, last.ckpt every 4 steps: killed mid-way through the second epoch
    args = [str(ROOT / "train.py"), "debug=fast", "trainer.max_epochs=2", "trainer.limit_train_batches=12",
            "callbacks.last.every_n_train_steps=4"]  # fmt: skip
    src = os.pathsep.join(p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "LNN_ROOT": str(tmp_path), "PYTHONPATH": src}  # this checkout's lnn, as run_cli uses
    proc = subprocess.Popen([sys.executable, *args], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    last = None
    while time.time() < deadline and proc.poll() is None:
        found = list((tmp_path / "logs" / "runs").glob("*/checkpoints/last.ckpt"))
        if found and torch.load(found[0], map_location="cpu", weights_only=False)["global_step"] >= 16:
            last = found[0]
            break
        time.sleep(0.2)
    assert last is not None and proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = torch.load(last, map_location="cpu", weights_only=False)["global_step"]
    assert 16 <= killed_at < 24 and adam_steps(last) == {killed_at}

    # Mark what the killed run logged: a run that continues keeps these rows (it logs from killed_at on),
    # a run that starts again from step 0 replaces them. The same seed would log the same values: hence marks.
    metrics = last.parents[1] / "csv" / "metrics.csv"
    with open(metrics, newline="") as f:
        rows = list(csv.DictReader(f))
    marked = {int(float(r["step"])) for r in rows if r.get("train/loss_step") and int(float(r["step"])) < killed_at}
    assert marked, "the killed run left no training rows to check the resumed run against"
    for r in rows:
        if r.get("train/loss_step"):
            r["train/loss_step"] = "-1"
    with open(metrics, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"resuming from {last}" in result.stdout + result.stderr
    run = only_run(tmp_path)  # continued in place, not a new run directory
    assert json.loads((run / "results.json").read_text())["global_step"] == 24  # as planned, not more
    # the optimizer state came back: Adam counted every step of both processes, not only the resumed ones
    assert adam_steps(run / "checkpoints" / "last.ckpt") == {24}
    with open(run / "csv" / "metrics.csv") as f:  # one file across the kill: the curves are not split
        train = [(int(float(r["step"])), r["train/loss_step"]) for r in csv.DictReader(f) if r.get("train/loss_step")]
    assert sorted(step for step, _ in train) == list(range(24)), "every step logged once"
    assert {step for step, loss in train if loss == "-1"} == marked  # the resumed run started past them ...
    assert all(float(loss) > 0 for step, loss in train if step >= killed_at)  # ... and logged the rest
    assert not list((run / "csv").glob("version_*"))

    again = run_cli(*args, cwd=tmp_path)  # finished: the same command now starts a new run
    assert again.returncode == 0 and len(list((tmp_path / "logs" / "runs").iterdir())) == 2


def test_multirun_sweeps_four_jobs(tmp_path):
    result = run_cli(str(ROOT / "train.py"), "-m", "model.tau_min=0.1,1.0", "solver=euler,rk4", "debug=fast", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    sweeps = list((tmp_path / "logs" / "multiruns").iterdir())
    assert len(sweeps) == 1
    jobs = sorted(p for p in sweeps[0].iterdir() if p.is_dir() and p.name.isdigit())
    assert len(jobs) == 4 and all((job / "checkpoints" / "best.ckpt").exists() for job in jobs)
    summary = (sweeps[0] / "summary.md").read_text()
    assert summary.count("finished") == 4 and "solver=rk4" in summary
    assert f"results in {sweeps[0]}" in result.stdout + result.stderr


def test_ddp_two_processes_on_cpu(tmp_path):
    result = run_cli(str(ROOT / "train.py"), "debug=fast", "trainer=ddp", "trainer.accelerator=cpu", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout + result.stderr
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in out
    run = only_run(tmp_path)
    assert json.loads((run / "results.json").read_text())["world_size"] == 2
    assert (run / "checkpoints" / "best.ckpt").exists() and (run / "eval" / "success.md").exists()
