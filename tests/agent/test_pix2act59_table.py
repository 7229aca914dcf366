"""experiments/miniwob/pix2act59_table.py: runs side by side on Pix2Act's 59 tasks, a task not evaluated counting 0%."""

import subprocess
import sys
from pathlib import Path

from lnn.envs.miniwob.oracles import NO_ORACLE, ORACLE_KINDS

SCRIPT = Path(__file__).resolve().parents[2] / "experiments" / "miniwob" / "pix2act59_table.py"


def write_success(folder: Path, rates: dict[str, float]) -> None:
    (folder / "eval").mkdir(parents=True)
    rows = [f"{task},10,{round(10 * r)},{r},0,1" for task, r in rates.items()] + ["[all],20,10,0.5,0,1"]
    (folder / "eval" / "success.csv").write_text("task,episodes,successes,success,ci_low,ci_high\n" + "\n".join(rows))


def test_the_59_tasks_are_pix2acts_with_an_oracle_or_a_reason():
    sys.path.insert(0, str(SCRIPT.parent))
    from pix2act59_table import PIX2ACT_TASKS

    assert len(set(PIX2ACT_TASKS)) == 59
    assert all(t in ORACLE_KINDS or t in NO_ORACLE for t in PIX2ACT_TASKS)


def test_missing_tasks_count_zero_in_every_mean(tmp_path):
    write_success(tmp_path / "a", {"click-test": 1.0, "drag-box": 0.5})
    write_success(tmp_path / "b", {"click-test": 0.0})
    done = subprocess.run([sys.executable, str(SCRIPT), f"liquid={tmp_path / 'a'}", f"ff={tmp_path / 'b'}",
                           "--out", str(tmp_path / "t")], capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(SCRIPT.parents[2] / "src"), "PATH": ""})  # fmt: skip
    assert done.returncode == 0, done.stderr
    table = (tmp_path / "t" / "pix2act59_table.md").read_text()
    assert f"| **all 59** (59 tasks) | {100 * 1.5 / 59:.1f}% | 0.0% |" in table  # the [all] row is not a task
    assert "| **drag** (8 tasks) | 6.2% | 0.0% |" in table
    assert "| drag-box | drag | 50% | 0% (—) | not evaluated |" in table
    assert "| drag-item | no oracle | 0% (—) | 0% (—) | no oracle: not in the miniwob package" in table
    assert (tmp_path / "t" / "pix2act59_table.png").stat().st_size > 0
    bad = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "a")], capture_output=True, text=True,
                         env={"PYTHONPATH": str(SCRIPT.parents[2] / "src"), "PATH": ""}, timeout=60)  # fmt: skip
    assert bad.returncode == 1 and "give each run as LABEL=DIR" in bad.stderr
