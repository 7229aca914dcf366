import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import datasets as hf
import pytest
import torch

from lnn.data import EpisodeDataModule, RolloutSpec, build_dataset, load_episodes
from lnn.data.rollouts import features
from lnn.errors import ConfigError, DataError
from lnn.rollout import SPLIT_SEED_BASE

TASKS = ("click-color", "remember-target")


def spec(split="train", n=6, tasks=TASKS, size=64):
    return RolloutSpec("gui", tasks, n, split, {"image_size": size})


def test_dataset_is_written_read_back_and_reused(tmp_path, monkeypatch):
    path = build_dataset(spec(), tmp_path, shard_episodes=4)
    ds = hf.load_from_disk(str(path))
    assert set(ds.column_names) == set(features())
    assert sorted(set(ds["task"])) == sorted(TASKS) and len(set(ds["episode"])) == 12
    episodes = load_episodes(path, 64)
    assert len(episodes) == 12 and episodes.images.shape[1:] == (64, 64, 3)
    assert episodes.lengths.sum() == len(ds) and (episodes.lengths[6:] > 1).all()  # memory episodes: cue + click
    # the oracle's focus: the click target on click steps, the lit square on the cue steps
    click_rows = episodes.action == 0
    assert torch.equal(episodes.focus[click_rows], episodes.box[click_rows])
    cue_rows = torch.from_numpy(episodes.starts[6:])
    assert (episodes.focus[cue_rows] >= 0).all() and (episodes.box[cue_rows] < 0).all()
    # the same settings reuse the files; other settings make another dataset
    import lnn.data.rollouts as rollouts

    monkeypatch.setattr(rollouts, "_record_shard", lambda *a: pytest.fail("re-recorded a cached dataset"))
    assert build_dataset(spec(), tmp_path) == path
    assert spec(n=7).key() != spec().key() and spec(size=96).key() != spec().key()


def test_splits_use_disjoint_seeds():
    seeds = {split: set(spec(split, n=1000).seeds()) for split in ("train", "val", "test")}
    assert not (seeds["train"] & seeds["val"] or seeds["train"] & seeds["test"] or seeds["val"] & seeds["test"])
    assert min(seeds["val"]) == SPLIT_SEED_BASE["val"]


def test_killed_generation_leaves_no_dataset_and_resumes_without_duplicates(tmp_path):
    code = (
        "from lnn.data import RolloutSpec, build_dataset\n"
        f"build_dataset(RolloutSpec('gui', {TASKS!r}, 400, 'train', {{'image_size': 64}}), {str(tmp_path)!r}, shard_episodes=20)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partial = tmp_path / f"gui-train-{spec(n=400).key()}.partial" / "shards"
    deadline = time.time() + 60
    while time.time() < deadline and not (partial.exists() and len(list(partial.glob("0000[0-9]"))) >= 2):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / f"gui-train-{spec(n=400).key()}").exists()  # no half-written dataset
    done_before = len([p for p in partial.iterdir() if not p.name.endswith(".tmp")])
    assert 2 <= done_before < 40

    path = build_dataset(spec(n=400), tmp_path, shard_episodes=20)
    ds = hf.load_from_disk(str(path))
    pairs = list(zip(ds["episode"], ds["step"]))
    assert len(pairs) == len(set(pairs)) and len(set(ds["episode"])) == 800
    assert not path.with_name(path.name + ".partial").exists()


def test_corrupt_row_names_the_file_and_row(tmp_path):
    path = build_dataset(spec(n=2), tmp_path)
    ds = hf.load_from_disk(str(path)).cast_column("screenshot", hf.Image(decode=False))
    rows = ds.to_list()
    rows[3]["screenshot"] = {"bytes": b"not a png", "path": None}
    bad = tmp_path / "bad"
    hf.Dataset.from_list(rows, features=ds.features).save_to_disk(str(bad))
    with pytest.raises(DataError, match=r"row 3: screenshot cannot be decoded") as info:
        load_episodes(bad, 64)
    assert str(bad) in str(info.value)


def test_unreadable_dataset_is_named(tmp_path):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "state.json").write_text("{")
    with pytest.raises(DataError, match="junk"):
        load_episodes(tmp_path / "junk", 64)


def test_frames_of_height_width_are_recorded_loaded_and_keyed_apart(tmp_path):
    dm = EpisodeDataModule(tasks=["click-color"], image_size=[48, 32], episodes_per_task={"train": 2, "val": 1},
                           batch_size=2, data_dir=str(tmp_path))  # fmt: skip
    dm.prepare_data()
    dm.setup()
    assert next(iter(dm.train_dataloader()))["images"].shape[2:] == (48, 32, 3)
    with pytest.raises(DataError, match="expected 32x48"):  # a split of another size is refused, not reshaped
        load_episodes(build_dataset(spec(n=1, tasks=("click-color",), size=32), tmp_path), [48, 32])
    assert len({spec(size=s).key() for s in (64, [64, 48], [48, 64])}) == 3  # the frame size is in the cache key


def test_batches_pad_whole_episodes_with_a_mask(tmp_path):
    dm = EpisodeDataModule(tasks=list(TASKS), image_size=64, episodes_per_task={"train": 4, "val": 2},
                           batch_size=8, data_dir=str(tmp_path))  # fmt: skip
    dm.prepare_data()
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    lengths = batch["mask"].sum(1)
    assert batch["images"].shape[:2] == batch["mask"].shape and batch["images"].dtype == torch.uint8
    assert lengths.min() == 1 and lengths.max() == batch["mask"].shape[1] > 1
    assert (batch["action"][~batch["mask"]] == -100).all() and (batch["action"][batch["mask"]] >= 0).all()
    for row, n in enumerate(lengths.tolist()):
        assert batch["instruction"][row][n:] == [""] * (batch["mask"].shape[1] - n)


def test_unknown_task_is_refused_before_any_work(tmp_path):
    with pytest.raises(ConfigError) as info:
        EpisodeDataModule(tasks=["click-colour"], data_dir=str(tmp_path))
    assert info.value.key == "tasks" and "click-color" in info.value.message
    assert not any(tmp_path.iterdir())


@pytest.fixture
def scripted_env(monkeypatch):
    from lnn.envs import registry

    monkeypatch.setitem(registry.ENVS, "scripted", ("tests.agent.helpers", "ScriptedEnv", "SCRIPTED_TASKS"))


def test_aborted_episodes_are_retried_and_unsolvable_ones_skipped_with_a_note(tmp_path, scripted_env):
    import json

    # seed 1: aborted once at its second step (recorded again whole); seed 2: aborted 3 times (given up);
    # seed 3: the oracle finds nothing
    faults = [[1, 1, "abort"], [2, 0, "abort"], [2, 0, "abort"], [2, 0, "abort"], [3, 0, "oracle"]]
    path = build_dataset(RolloutSpec("scripted", ("scripted",), 5, "train", {"faults": faults}), tmp_path, shard_episodes=2)
    ds = hf.load_from_disk(str(path))
    assert sorted(set(ds["seed"])) == [0, 1, 4] and len(ds) == 6  # two steps each, no partial episode
    assert list(zip(ds["episode"], ds["step"])) == [(0, 0), (0, 1), (1, 0), (1, 1), (4, 0), (4, 1)]
    notes = {n["seed"]: n["reason"] for n in json.loads((path / "notes.json").read_text())}
    assert set(notes) == {2, 3}
    assert notes[2].startswith("aborted 3 times, last: browser crashed at seed 2 step 0")
    assert "no target at seed 3" in notes[3]
    recording = json.loads((path / "recording.json").read_text())
    assert recording["episodes"] == 5 and recording["skipped"] == 2 and recording["rows"] == 6


def test_a_dataset_with_every_episode_skipped_is_a_data_error(tmp_path, scripted_env):
    spec_ = RolloutSpec("scripted", ("scripted",), 2, "train", {"faults": [[0, 0, "oracle"], [1, 0, "oracle"]]})
    with pytest.raises(DataError, match="every episode was skipped; first: .*no target at seed 0"):
        build_dataset(spec_, tmp_path)


def test_tasks_may_be_given_by_kind():
    from lnn.envs.registry import check_tasks, task_kinds

    memory = check_tasks("gui", ["memory"])
    assert memory and all(task_kinds("gui")[t] == "memory" for t in memory)
    assert check_tasks("gui", ["click-color", "memory", "click-color"]) == ("click-color", *memory)


def test_two_processes_recording_the_same_dataset_share_one_recording(tmp_path):
    # the parallel jobs of a sweep ask for the same cached dataset at the same moment
    code = (
        "from lnn.data import RolloutSpec, build_dataset\n"
        f"print(build_dataset(RolloutSpec('gui', {TASKS!r}, 40, 'train', {{'image_size': 64}}), {str(tmp_path)!r}))"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]  # fmt: skip
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-500:] for _, err in outs]
    assert outs[0][0] == outs[1][0]
    ds = hf.load_from_disk(outs[0][0].strip())
    assert len(set(ds["episode"])) == 80 and not list(tmp_path.glob("*.partial")) + list(tmp_path.glob("*.tmp"))


def test_the_envs_dt_reaches_the_dataset_and_the_batches(tmp_path):
    """The timing families' frames come after drawn dts: recorded per row, loaded, and batched."""
    from lnn.envs.gui import TASKS as FAMILIES

    tasks = ("click-color", "longest-light")
    ds = hf.load_from_disk(str(build_dataset(spec(n=4, tasks=tasks), tmp_path)))
    for row in ds.select_columns(["task", "seed", "step", "dt"]):
        assert row["dt"] == pytest.approx(FAMILIES[row["task"]]().episode(row["seed"])[row["step"]].dt)
    timed = [dt for task, dt in zip(ds["task"], ds["dt"]) if task == "longest-light"]
    assert len(set(timed)) > 1 and all(dt != 1.0 for dt in timed)
    assert {dt for task, dt in zip(ds["task"], ds["dt"]) if task == "click-color"} == {1.0}

    dm = EpisodeDataModule(tasks=list(tasks), image_size=64, episodes_per_task={"train": 4, "val": 2},
                           batch_size=8, data_dir=str(tmp_path))  # fmt: skip
    dm.prepare_data()
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    got = sorted(tuple(round(v, 3) for v in dt[mask].tolist()) for dt, mask in zip(batch["dt"], batch["mask"]))
    want = sorted(tuple(s.dt for s in FAMILIES[task]().episode(seed)) for task in tasks for seed in range(4))
    assert got == want and (batch["dt"][~batch["mask"]] == 0).all()


def test_a_changed_oracle_or_miniwob_version_makes_a_new_dataset(monkeypatch):
    """The cache key hashes the oracle's code: a stale recording is never reused after the oracle changes."""
    import lnn.envs.gui as gui
    import lnn.envs.miniwob.env as miniwob_env
    import lnn.envs.miniwob.oracles as oracles

    pytest.importorskip("miniwob")
    gui_key = spec().key()
    monkeypatch.setattr(gui, "oracle_code", lambda: "a changed family")
    assert spec().key() != gui_key
    miniwob = RolloutSpec("miniwob", ("click-test",), 2, "train", {"image_size": 64})
    key = miniwob.key()
    monkeypatch.setattr(miniwob_env, "PROBE_JS", miniwob_env.PROBE_JS + "\n// an oracle changed")
    assert miniwob.key() != key
    changed_probe = miniwob.key()
    monkeypatch.setattr(oracles, "version", lambda package: "9.9.9")  # another installed miniwob
    assert miniwob.key() not in (key, changed_probe)
    monkeypatch.undo()
    assert miniwob.key() == key and spec().key() == gui_key  # and the same code gives the same key


def test_oversampled_kinds_come_that_many_times_per_epoch(tmp_path):
    dm = EpisodeDataModule(tasks=list(TASKS), image_size=64, episodes_per_task={"train": 4, "val": 1},
                           batch_size=4, data_dir=str(tmp_path), oversample={"memory": 3})  # fmt: skip
    dm.prepare_data()
    dm.setup()
    loader = dm.train_dataloader()
    assert len(loader) == (4 + 3 * 4) // 4
    seen = [task for batch in loader for task in batch["task"]]
    assert seen.count("remember-target") == 12 and seen.count("click-color") == 4
    for bad, key in (({"memory": 0}, "oversample.memory"), ({"timing": 2}, "oversample")):
        with pytest.raises(ConfigError) as info:
            EpisodeDataModule(tasks=list(TASKS), data_dir=str(tmp_path), oversample=bad)
        assert info.value.key == key


def test_rows_of_drags_and_keys_fill_the_format_5_columns():
    """A drag's press point goes to `click` and its release to `release`; a key step's KEYS index to `key`
    (its name stays in `text`); other steps get -1. A key outside KEYS is refused naming it."""
    from lnn.data.rollouts import _row
    from lnn.envs import KEYS, Action, OracleStep

    def row(action):
        record = {"screenshot": None, "instruction": "i", "dt": 1.0, "action": action, "oracle": OracleStep(action)}
        return _row(0, 0, "t", 0, record)

    drag = row(Action("drag", 0.1, 0.2, x2=0.7, y2=0.9))
    assert (drag["click"], drag["release"], drag["key"]) == ([0.1, 0.2], [0.7, 0.9], -1)
    key = row(Action("key", text="Tab"))
    assert (key["click"], key["release"], key["key"], key["text"]) == ([-1.0, -1.0], [-1.0, -1.0], KEYS.index("Tab"), "Tab")
    assert row(Action("click", 0.3, 0.4))["release"] == [-1.0, -1.0]
    with pytest.raises(ValueError, match="'F13' is not one of lnn.envs.KEYS"):
        row(Action("key", text="F13"))


def test_more_episodes_of_a_kind_are_recorded_on_new_seeds_and_trained_on(tmp_path):
    """`data.more_episodes={memory: 3}`: 3 more training episodes of each memory task, on the seeds after the split's
    own 2 (none seen twice), in a dataset of their own; the split's own recording keeps its cache key."""
    dm = EpisodeDataModule(tasks=list(TASKS), image_size=64, episodes_per_task={"train": 2, "val": 1},
                           batch_size=4, data_dir=str(tmp_path), more_episodes={"memory": 3})  # fmt: skip
    plain = EpisodeDataModule(tasks=list(TASKS), image_size=64, episodes_per_task={"train": 2, "val": 1})
    assert dm.spec("train").key() == plain.spec("train").key()
    [more] = dm.more_specs()
    assert more.tasks == ("remember-target",) and list(more.seeds()) == [2, 3, 4] and more.key() != dm.spec("train").key()
    assert dm.oracle_train_seeds == 5  # a policy's own episodes (improve) start after them
    dm.prepare_data()
    dm.setup()
    seeds = set()
    for path in dm.train_paths():  # recorded by prepare_data: found again, not recorded twice
        rows = hf.load_from_disk(str(path))
        seeds |= set(zip(rows["task"], rows["seed"]))
    assert seeds == {("click-color", 0), ("click-color", 1)} | {("remember-target", s) for s in range(5)}
    assert len(dm.splits["train"]) == 7
    seen = [task for batch in dm.train_dataloader() for task in batch["task"]]
    assert seen.count("remember-target") == 5 and seen.count("click-color") == 2
    for bad, key in (({"memory": 0}, "more_episodes.memory"), ({"timing": 2}, "more_episodes"),
                     ({"memory": 10_000_000}, "more_episodes")):  # fmt: skip
        with pytest.raises(ConfigError) as info:
            EpisodeDataModule(tasks=list(TASKS), data_dir=str(tmp_path), more_episodes=bad)
        assert info.value.key == key
