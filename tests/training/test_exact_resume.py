"""A run killed with SIGKILL and run again ends exactly as the same run never killed (end to end: slow).

Exact: the same metrics.csv rows from the resume point on and bitwise the same final weights, on CPU.
The reference run is the same command with resume=false (resume is not part of the command's identity).
"""

import csv
import json
import os
from pathlib import Path

import pytest
import torch

from lnn.data.datamodule import EpisodeSampler, ResumableLoader
from lnn.training.csv_logger import ResumableCSVLogger, UnionHeaderWriter
from lnn.training.resume import LAST_CHECKPOINT as LAST
from tests.conftest import ROOT, run_cli

# 2 epochs of 6 steps (of 18 batches: the order matters), last.ckpt every 2 steps (not on an epoch's last
# batch: step 6 is the epoch end's, after its validation)
ARGS = [str(ROOT / "train.py"), "debug=fast", "trainer.max_epochs=2", "trainer.limit_train_batches=6",
        "callbacks.last.every_n_train_steps=2", "+callbacks.kill._target_=tests.training.kill_at.KillAt"]  # fmt: skip
ENV = {"PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}  # this checkout's lnn, and the KillAt callback


def runs(root: Path) -> list[Path]:
    return sorted(p for p in (root / "logs" / "runs").iterdir() if p.is_dir())


def metrics(run: Path, since: int) -> list[dict]:
    with open(run / "csv" / "metrics.csv") as f:
        return [row for row in csv.DictReader(f) if int(float(row["step"])) >= since]


def weights(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The run never killed (and the recorded data the killed runs reuse)."""
    root = tmp_path_factory.mktemp("exact")
    result = run_cli(*ARGS, "resume=false", cwd=root, env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    return root, runs(root)[0]


@pytest.mark.slow
# mid-epoch 0 and 1; at the start of epoch 1 (from the epoch end's checkpoint); during epoch 0's validation
@pytest.mark.parametrize("kill_at, resumed_at", [("step:5", 4), ("step:9", 8), ("step:7", 6), ("validation:0", 4)])
def test_killed_run_resumes_exactly(reference, kill_at, resumed_at):
    root, ref = reference
    killed = run_cli(*ARGS, cwd=root, env=ENV | {"LNN_KILL_AT": kill_at})
    assert killed.returncode == -9, killed.stderr[-3000:]
    run = runs(root)[-1]
    assert run != ref and torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == resumed_at

    result = run_cli(*ARGS, cwd=root, env=ENV)  # the same command again: one resume finishes it
    out = result.stdout + result.stderr
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"resuming from {run / 'checkpoints' / 'last.ckpt'}" in out and runs(root)[-1] == run
    assert f"training starts at step {resumed_at}" in out  # not from step 0 (it would end the same)
    assert "unreliable" not in out and "not resumable" not in out
    # every row (train/loss per step: the batches; the epochs' train/*_epoch, val/*; test/*) as never killed
    assert metrics(run, 0) == metrics(ref, 0)
    assert len(metrics(ref, resumed_at)) > 0
    a, b = weights(run), weights(ref)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_run_killed_in_its_final_evaluation_only_evaluates_again(reference):
    root, ref = reference
    killed = run_cli(*ARGS, cwd=root, env=ENV | {"LNN_KILL_AT": "evaluation"})
    assert killed.returncode == -9, killed.stderr[-3000:]
    run = runs(root)[-1]
    trained = {p.name: p.stat().st_mtime_ns for p in (run / "checkpoints").iterdir()}

    result = run_cli(*ARGS, cwd=root, env=ENV)
    out = result.stdout + result.stderr
    assert result.returncode == 0, result.stderr[-3000:]
    assert "only the final evaluation runs again" in out and "resuming from" not in out
    assert runs(root)[-1] == run
    # not trained again
    assert {p.name: p.stat().st_mtime_ns for p in (run / "checkpoints").iterdir()} == trained
    assert metrics(run, 0) == metrics(ref, 0)  # every row once: the fit's, then the test episodes'
    assert final_results(run) == final_results(ref)


def final_results(run: Path) -> dict:
    results = json.loads((run / "results.json").read_text())
    results["best_checkpoint"] = Path(results["best_checkpoint"]).relative_to(run).as_posix()
    return {k: v for k, v in results.items() if k != "fit_seconds"}


SWEEP = [str(ROOT / "train.py"), "-m", "model.tau_min=0.5,1.0", "debug=fast",
         "+callbacks.kill._target_=tests.training.kill_at.KillAt"]  # fmt: skip


def sweeps(root: Path) -> list[Path]:
    return sorted(p for p in (root / "logs" / "multiruns").iterdir() if p.is_dir())


def summary(sweep: Path) -> list[str]:
    """summary.md with the sweep's path as <sweep> and without the fit_seconds column."""
    lines = (sweep / "summary.md").read_text().replace(str(sweep), "<sweep>").splitlines()
    table = [i for i, line in enumerate(lines) if line.startswith("|")]
    drop = [c.strip() for c in lines[table[0]].split("|")].index("fit_seconds")
    for i in table:
        cells = lines[i].split("|")
        lines[i] = "|".join(cells[:drop] + cells[drop + 1 :])
    return lines


@pytest.mark.slow
def test_killed_sweep_skips_its_finished_jobs_and_resumes_the_unfinished_one(tmp_path):
    whole = run_cli(*SWEEP, cwd=tmp_path, env=ENV)  # never killed (and marked ended: the next one is new)
    assert whole.returncode == 0, whole.stderr[-3000:]
    killed = run_cli(*SWEEP, cwd=tmp_path, env=ENV | {"LNN_KILL_AT": "step:5", "LNN_KILL_JOB": "1"})
    assert killed.returncode == -9, killed.stderr[-3000:]
    reference, sweep = sweeps(tmp_path)
    assert torch.load(sweep / "1" / LAST, weights_only=False)["global_step"] == 4  # job 1 mid-epoch 1 (of 3 steps)
    job0 = {f: (sweep / "0" / f).read_bytes() for f in ("run.json", "results.json", "csv/metrics.csv")}
    job0_ckpt = (sweep / "0" / LAST).stat().st_mtime_ns

    result = run_cli(*SWEEP, cwd=tmp_path, env=ENV)  # the same command again
    out = result.stdout + result.stderr
    assert result.returncode == 0, result.stderr[-3000:]
    assert sweeps(tmp_path) == [reference, sweep]
    assert {f: (sweep / "0" / f).read_bytes() for f in job0} == job0  # job 0 not run again
    assert (sweep / "0" / LAST).stat().st_mtime_ns == job0_ckpt
    assert f"resuming from {sweep / '1' / LAST}" in out
    assert metrics(sweep / "1", 0) == metrics(reference / "1", 0)
    assert summary(sweep) == summary(reference)


def batches(loader, epoch: int, n: int | None = None) -> list[list[int]]:
    loader.sampler.set_epoch(epoch)  # as Lightning does at each epoch start
    out = []
    for batch in loader:
        out.append(batch.tolist())
        if len(out) == n:
            break
    return out


def test_loader_resumes_the_epoch_where_its_state_was_taken():
    make = lambda: ResumableLoader(list(range(50)), EpisodeSampler(50, seed=3), batch_size=4)  # noqa: E731
    whole = make()
    epoch0, epoch1 = batches(whole, 0), batches(whole, 1)
    assert epoch0 != epoch1 and sorted(sum(epoch0, [])) == list(range(50))

    killed = make()
    assert batches(killed, 0) == epoch0  # the order depends on (seed, epoch) alone
    assert batches(killed, 1, n=5) == epoch1[:5]
    state = killed.state_dict()
    assert state == {"epoch": 1, "batches": 5, "seed": 3}
    resumed = make()
    resumed.load_state_dict(state)
    assert [b.tolist() for b in resumed] == epoch1[5:]  # the rest of the epoch: no batch replayed or lost
    assert resumed.state_dict()["batches"] == len(epoch1)
    assert batches(resumed, 2) == batches(whole, 2)


def test_csv_header_is_the_union_of_the_file_and_the_new_keys(tmp_path):
    first = ResumableCSVLogger(str(tmp_path))
    for step in range(12):
        first.log_metrics({"train/loss_step": 1.0}, step=step)
    first.save()
    resumed = ResumableCSVLogger(str(tmp_path))  # killed in the first epoch: no epoch-end keys in the file yet
    for step in range(10, 14):
        resumed.log_metrics({"train/loss_step": 2.0}, step=step)
        resumed.save()
    resumed.log_metrics({"train/loss_epoch": 2.0, "train/click_acc": 0.5}, step=13)
    resumed.save()
    with open(tmp_path / "csv" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [*range(14), 13]
    assert rows[-1]["train/click_acc"] == "0.5" and rows[0]["train/loss_step"] == "1.0"


def test_csv_writer_appending_to_an_older_header_rewrites_it(tmp_path):
    writer = UnionHeaderWriter(str(tmp_path))
    writer.metrics_keys = ["step", "train/loss_step", "train/loss_epoch"]  # keys it has seen before
    (tmp_path / "metrics.csv").write_text("step,train/loss_step\n0,1.0\n")  # the header a killed run left
    writer.log_metrics({"train/loss_epoch": 3.0}, step=1)
    writer.save()  # Lightning's would append rows the old header cannot name
    with open(tmp_path / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows == [{"step": "0", "train/loss_epoch": "", "train/loss_step": "1.0"},
                    {"step": "1", "train/loss_epoch": "3.0", "train/loss_step": ""}]  # fmt: skip


def test_a_sweep_run_again_continues_its_unfinished_sweep(tmp_path):
    from lnn.training import resume

    command = ("model.tau_min=0.1,1.0", "debug=fast")
    first = resume.sweep_dir(str(tmp_path), "2026-01-01_00-00-00", "auto", command)
    # a job's config resolves the sweep dir again, with its own overrides: the same answer
    assert resume.sweep_dir(str(tmp_path), "2026-01-01_00-00-00", "auto", ("model.tau_min=0.1",)) == first
    resume._sweeps.clear()  # a new process: the same command line finds the unfinished sweep
    assert resume.sweep_dir(str(tmp_path), "2026-01-01_00-00-05", "auto", ("debug=fast", "model.tau_min=0.1,1.0")) == first
    resume._sweeps.clear()
    assert resume.sweep_dir(str(tmp_path), "2026-01-01_00-00-06", "auto", ("model.tau_min=0.5",)) != first
    (Path(first) / "summary.md").write_text("after job 0")  # rewritten after each job: the sweep goes on
    resume._sweeps.clear()
    assert resume.sweep_dir(str(tmp_path), "2026-01-01_00-00-07", "auto", command) == first
    resume.finish_sweep(Path(first))  # the multirun ended
    resume._sweeps.clear()
    assert resume.sweep_dir(str(tmp_path), "2026-01-01_00-00-08", "auto", command) != first


def test_finished_job_returns_its_recorded_results(tmp_path):
    from lnn.training.resume import finished_results, write_run

    write_run(tmp_path, status="running")
    (tmp_path / "results.json").write_text('{"val/success": 0.5}')
    assert finished_results(tmp_path) is None
    write_run(tmp_path, status="finished")
    assert finished_results(tmp_path) == {"val/success": 0.5}
