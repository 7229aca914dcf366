import multiprocessing as mp
from pathlib import Path

from lnn.training.resume import run_dir


def _claim(args):
    runs, barrier = args
    barrier.wait()  # both ask at the same instant, with the same timestamp
    return run_dir(runs, "2026-01-01_00-00-00", "false", "")


def test_runs_started_in_the_same_second_get_their_own_directories(tmp_path):
    with mp.Manager() as manager:
        barrier = manager.Barrier(4)
        with mp.get_context("spawn").Pool(4) as pool:
            dirs = pool.map(_claim, [(str(tmp_path), barrier)] * 4)
    assert len(set(dirs)) == 4 and all(Path(d).is_dir() for d in dirs)


def test_auto_resume_picks_the_unfinished_run_of_the_same_command(tmp_path):
    from lnn.training.resume import write_run

    old = tmp_path / "2026-01-01_00-00-00"
    (old / "checkpoints").mkdir(parents=True)
    (old / "checkpoints" / "last.ckpt").write_bytes(b"x")
    write_run(old, overrides="model=lite_ff", status="running")
    assert run_dir(str(tmp_path), "2026-01-01_00-00-01", "auto", "model=lite_ff") == str(old)
    assert run_dir(str(tmp_path), "2026-01-01_00-00-02", "auto", "model=lite") != str(old)
