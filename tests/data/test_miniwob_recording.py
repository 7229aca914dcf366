"""Recording MiniWoB oracle episodes in Chromium with several worker processes; killed and resumed.

Run with `python -m pytest -m browser tests/data/test_miniwob_recording.py`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import needs_miniwob_browser

pytestmark = [
    pytest.mark.browser,
    needs_miniwob_browser,
]

TASKS = ("click-test", "click-button", "navigate-tree")


def spec(n: int):
    from lnn.data import RolloutSpec

    return RolloutSpec("miniwob", TASKS, n, "train", {"image_size": 64})


def children(pid: int) -> set[int]:
    """Children started by any thread of `pid`."""
    found = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found |= {int(c) for c in (task / "children").read_text().split()}
        except OSError:
            pass
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_parallel_recording_killed_and_resumed_has_every_episode_once(tmp_path):
    import datasets as hf

    from lnn.data import build_dataset, load_episodes

    n = 6  # 18 episodes in shards of 3, two worker processes (one Chromium each)
    code = ("from lnn.data import build_dataset\nfrom lnn.data.rollouts import RolloutSpec\n"
            "if __name__ == '__main__':\n"
            f"    build_dataset(RolloutSpec('miniwob', {TASKS!r}, {n}, 'train', {{'image_size': 64}}), {str(tmp_path)!r}, "
            "workers=2, shard_episodes=3)\n")  # fmt: skip
    script = tmp_path / "record.py"
    script.write_text(code)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2] / "src"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    shards = tmp_path / f"miniwob-train-{spec(n).key()}.partial" / "shards"
    deadline = time.time() + 180
    while time.time() < deadline and not (shards.exists() and len([p for p in shards.iterdir() if p.name.isdigit()]) >= 2):
        time.sleep(0.1)
    workers = children(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / f"miniwob-train-{spec(n).key()}").exists()  # no half-written dataset
    done_before = len([p for p in shards.iterdir() if p.name.isdigit()])
    assert 2 <= done_before < 6
    # the orphaned workers notice, finish their episode, close their browser and exit
    deadline = time.time() + 60
    while time.time() < deadline and any(alive(w) for w in workers):
        time.sleep(0.2)
    assert not any(alive(w) for w in workers), "recording workers outlived the killed run"

    path = build_dataset(spec(n), tmp_path, workers=1, shard_episodes=3)  # continues (here in this process)
    ds = hf.load_from_disk(str(path))
    pairs = list(zip(ds["episode"], ds["step"]))
    assert len(pairs) == len(set(pairs)) and len(set(ds["episode"])) == 3 * n
    assert sorted(set(ds["task"])) == sorted(TASKS) and set(ds["seed"]) == set(range(n))
    assert not path.with_name(path.name + ".partial").exists()
    assert json.loads((path / "notes.json").read_text()) == []
    episodes = load_episodes(path, 64)
    assert episodes.images.shape[1:] == (64, 64, 3) and (episodes.box[:, 2] > episodes.box[:, 0]).all()
    # navigate-tree needs a second click when the target sits in a closed folder
    assert episodes.lengths.max() <= 2 and len(episodes.click) == len(ds)


def descendants(pid: int) -> set[int]:
    found = children(pid)
    for child in list(found):
        found |= descendants(child)
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_a_worker_killed_by_the_os_is_replaced_and_the_dataset_is_complete(tmp_path, caplog):
    """SIGKILL one recording worker mid-shard: the pool does not hang, its shard is recorded again, and the
    dataset equals one recorded without the kill (every column but dt, which is wall-clock)."""
    import threading

    import datasets as hf

    from lnn.data import build_dataset

    killed: list[int] = []

    def kill_a_recording_worker():
        deadline = time.time() + 300  # a loaded machine takes long to start the workers
        while time.time() < deadline:
            workers = [p for p in children(os.getpid()) if "spawn_main" in cmdline(p)]
            busy = [w for w in workers if any("chrom" in cmdline(d) for d in descendants(w))]
            if busy:
                time.sleep(0.5)  # its browser is up: mid-shard
                killed.extend([busy[0], *descendants(busy[0])])
                os.kill(busy[0], signal.SIGKILL)
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=kill_a_recording_worker, daemon=True)
    watcher.start()
    built: list = []
    recording = threading.Thread(target=lambda: built.append(build_dataset(spec(3), tmp_path / "killed", workers=2,
                                                                           shard_episodes=3)), daemon=True)  # fmt: skip
    recording.start()
    recording.join(timeout=600)
    assert not recording.is_alive(), "the recording hung after a worker was killed"
    watcher.join()
    assert killed and built, "no worker was killed (or the recording raised)"
    assert "a recording worker died" in caplog.text
    deadline = time.time() + 30
    while time.time() < deadline and any(alive(p) for p in killed):  # the killed worker's driver and browser
        time.sleep(0.2)
    assert not any(alive(p) for p in killed), [cmdline(p)[:80] for p in killed if alive(p)]

    reference = build_dataset(spec(3), tmp_path / "unkilled", workers=1, shard_episodes=3)
    got, want = (hf.load_from_disk(str(p)).cast_column("screenshot", hf.Image(decode=False)) for p in (built[0], reference))
    columns = [c for c in want.column_names if c != "dt"]
    assert len(got) == len(want) and len(set(want["episode"])) == 9
    assert got.select_columns(columns).to_list() == want.select_columns(columns).to_list()
