"""Oracle rollouts written to disk as Hugging Face datasets: one row per step, grouped by episode.

A dataset is identified by its `RolloutSpec` (env, tasks, image size, seeds): the spec's hash names
its directory, so the same settings reuse the same files and any change makes a new dataset.
Episodes are recorded in shards; each shard is written under a temporary name and renamed when
complete, and the final dataset likewise. A killed generation therefore leaves only complete shards
(picked up by the next run, never recorded twice) and never a half-written dataset.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
import numpy as np
from tqdm.auto import tqdm

from lnn.envs import ACTIONS, Env
from lnn.envs.registry import make_env

FORMAT_VERSION = 2  # bump when rows change meaning: old caches are then not reused
SPLITS = ("train", "val", "test")
# Seeds of split s are SPLIT_SEED_BASE[s] + 0, 1, 2, ...: disjoint as long as a split has < 10M episodes.
SPLIT_SEED_BASE = {"train": 0, "val": 10_000_000, "test": 20_000_000}
NO_BOX = [-1.0, -1.0, -1.0, -1.0]


def features():
    import datasets as hf

    return hf.Features(
        {
            "episode": hf.Value("int64"),  # unique within a split
            "seed": hf.Value("int64"),
            "task": hf.Value("string"),
            "step": hf.Value("int32"),
            "screenshot": hf.Image(),
            "instruction": hf.Value("string"),
            "action": hf.ClassLabel(names=list(ACTIONS)),
            "text": hf.Value("string"),  # typed text / key, "" otherwise
            "click": hf.Sequence(hf.Value("float32"), length=2),  # normalised (x, y); the oracle's point
            "target_box": hf.Sequence(hf.Value("float32"), length=4),  # (x0, y0, x1, y1), -1 when no click
            "focus_box": hf.Sequence(hf.Value("float32"), length=4),  # what the step is about, -1 when nothing
        }
    )


@dataclass(frozen=True)
class RolloutSpec:
    """Everything that determines the recorded rows."""

    env: str  # a key of lnn.envs.registry.ENVS
    tasks: tuple[str, ...]
    episodes_per_task: int
    split: str
    env_kwargs: dict = field(default_factory=dict)

    def seeds(self) -> range:
        """Every task of a split draws its episodes from the split's own seed range."""
        return range(SPLIT_SEED_BASE[self.split], SPLIT_SEED_BASE[self.split] + self.episodes_per_task)

    def key(self) -> str:
        blob = json.dumps({**asdict(self), "format": FORMAT_VERSION}, sort_keys=True, default=list)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def jobs(self) -> list[tuple[int, str, int]]:
        """(episode id, task, seed) for every episode, in a fixed order."""
        jobs = [(task, seed) for task in self.tasks for seed in self.seeds()]
        return [(episode, task, seed) for episode, (task, seed) in enumerate(jobs)]


def record_episode(env: Env, episode: int, task: str, seed: int) -> list[dict]:
    """Run the oracle for one episode; a row per step. Raises if the oracle fails (a bug in the env)."""
    obs, rows, done, reward = env.reset(seed, task), [], False, 0.0
    step = 0
    while not done:
        oracle = env.oracle()
        action = oracle.action
        rows.append(
            {
                "episode": episode,
                "seed": seed,
                "task": task,
                "step": step,
                "screenshot": obs.screenshot,
                "instruction": obs.instruction,
                "action": ACTIONS.index(action.type),
                "text": action.text,
                "click": [action.x, action.y] if action.type == "click" else [-1.0, -1.0],
                "target_box": list(oracle.target_box) if oracle.target_box else NO_BOX,
                "focus_box": list(oracle.focus) if oracle.focus else NO_BOX,
            }
        )
        obs, reward, done, info = env.step(action)
        step += 1
    if reward <= 0:
        raise RuntimeError(f"the oracle failed {task} seed {seed}: {info.get('failure', 'no reward')}")
    return rows


def _record_shard(args) -> int:
    spec, jobs, out = args
    import datasets as hf
    from PIL import Image

    hf.disable_progress_bars()
    env = make_env(spec.env, tasks=list(spec.tasks), **spec.env_kwargs)
    rows = []
    try:
        for episode, task, seed in jobs:
            for row in record_episode(env, episode, task, seed):
                row["screenshot"] = Image.fromarray(np.asarray(row["screenshot"]))
                rows.append(row)
    finally:
        env.close()
    columns = {name: [row[name] for row in rows] for name in rows[0]}
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    hf.Dataset.from_dict(columns, features=features()).save_to_disk(str(tmp))
    os.replace(tmp, out)
    return len(jobs)


def build_dataset(spec: RolloutSpec, root: str | os.PathLike, workers: int = 1, shard_episodes: int = 256) -> Path:
    """The dataset for `spec` under `root`, recorded now if it is not there yet. Returns its path."""
    final = Path(root) / f"{spec.env}-{spec.split}-{spec.key()}"
    if final.exists():
        return final
    work = final.with_name(final.name + ".partial")
    shards_dir = work / "shards"
    shards_dir.mkdir(parents=True, exist_ok=True)
    (work / "spec.json").write_text(json.dumps(asdict(spec), indent=1, default=list))
    jobs = spec.jobs()
    chunks = [jobs[i : i + shard_episodes] for i in range(0, len(jobs), shard_episodes)]
    shard_paths = [shards_dir / f"{i:05d}" for i in range(len(chunks))]
    todo = [(spec, chunk, path) for chunk, path in zip(chunks, shard_paths) if not path.exists()]
    done = len(jobs) - sum(len(chunk) for _, chunk, _ in todo)

    with tqdm(total=len(jobs), initial=done, desc=f"recording {spec.env} {spec.split}", unit="ep") as bar:
        if workers > 1 and len(todo) > 1:
            with mp.get_context("spawn").Pool(min(workers, len(todo))) as pool:
                for n in pool.imap_unordered(_record_shard, todo):
                    bar.update(n)
        else:
            for args in todo:
                bar.update(_record_shard(args))

    import datasets as hf

    hf.disable_progress_bars()  # ours above says what is happening
    merged = hf.concatenate_datasets([hf.load_from_disk(str(p)) for p in shard_paths])
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    merged.save_to_disk(str(tmp))
    shutil.copy(work / "spec.json", tmp / "spec.json")
    os.replace(tmp, final)
    shutil.rmtree(work)
    return final
