"""Recorded episodes -> padded (B, T, ...) batches for training, with a mask over real steps."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Sampler, Subset
from tqdm.auto import tqdm

from lnn.data.rollouts import FORMAT_VERSION, PART_WIDTH, RolloutSpec, build_dataset, features
from lnn.envs.registry import check_tasks
from lnn.errors import ConfigError, DataError
from lnn.frames import frame_size, plain_size
from lnn.rollout import SPLIT_SEED_BASE, SPLITS

IGNORE = -100  # action label of padded steps (cross-entropy's ignore_index)


@dataclass
class Episodes:
    """A split held in memory: frames decoded once, episodes as row ranges."""

    images: torch.Tensor  # (rows, H, W, 3) uint8
    instruction: list[str]
    task: list[str]
    action: torch.Tensor  # (rows,) long
    click: torch.Tensor  # (rows, 2): a click's point, a drag's press point
    release: torch.Tensor  # (rows, 2): a drag's release point; -1 otherwise
    key: torch.Tensor  # (rows,) long: a key step's KEYS index; IGNORE otherwise
    text: list[str]  # typed text (key name, url), "" otherwise
    box: torch.Tensor  # (rows, 4)
    focus: torch.Tensor  # (rows, 4)
    others: torch.Tensor  # (rows, K, 4): other boxes a click is as right in, padded with -1 (K: the most of any row)
    parts: torch.Tensor  # (rows, P, PART_WIDTH): what parts of the screen are (box, class ids), padded with -1
    dt: torch.Tensor  # (rows,) time since the previous frame
    starts: np.ndarray  # first row of each episode
    lengths: np.ndarray

    def __len__(self) -> int:
        return len(self.starts)

    def __add__(self, other: Episodes) -> Episodes:
        """Both splits' episodes, ours first (datasets of one image size)."""
        return Episodes(
            images=torch.cat([self.images, other.images]),
            instruction=list(self.instruction) + list(other.instruction),
            task=list(self.task) + list(other.task),
            action=torch.cat([self.action, other.action]),
            click=torch.cat([self.click, other.click]),
            release=torch.cat([self.release, other.release]),
            key=torch.cat([self.key, other.key]),
            text=list(self.text) + list(other.text),
            box=torch.cat([self.box, other.box]),
            focus=torch.cat([self.focus, other.focus]),
            others=torch.cat(pad_boxes([self.others, other.others])),
            parts=torch.cat(pad_boxes([self.parts, other.parts])),
            dt=torch.cat([self.dt, other.dt]),
            starts=np.r_[self.starts, other.starts + len(self.action)],
            lengths=np.r_[self.lengths, other.lengths],
        )


def load_episodes(path: Path, image_size) -> Episodes:
    """Read a recorded split; a corrupt file or row raises DataError naming it."""
    import datasets as hf

    try:
        ds = hf.load_from_disk(str(path))
    except Exception as e:  # arrow / json errors: the files are not a readable dataset
        raise DataError(f"{path}: not a readable dataset ({type(e).__name__}: {e}); delete it to record it again") from e
    missing = [name for name in features() if name not in ds.column_names]
    if missing:  # older rows would be misread (a drag's release point, a key's class): refuse them
        raise DataError(f"{path}: rows of an older dataset format (no {', '.join(missing)} column; this version reads "
                        f"format {FORMAT_VERSION}); delete it and record it again, or import the folder again")  # fmt: skip
    try:
        files = ", ".join(f["filename"] for f in ds.cache_files) or str(path)
        ds = ds.cast_column("screenshot", hf.Image(decode=False))
        numeric = ["episode", "step", "action", "click", "release", "key", "target_box", "focus_box", "dt"]
        table = ds.select_columns(numeric).with_format("numpy")[:]
        text = ds.select_columns(["instruction", "task", "text"])[:]
        lists = ds.select_columns(["other_boxes", "parts"])[:]  # a list per row (numpy cannot stack them)
    except Exception as e:  # arrow / json errors: the files are not a readable dataset
        raise DataError(f"{path}: not a readable dataset ({type(e).__name__}: {e}); delete it to record it again") from e

    rows = len(ds)
    height, width = frame_size(image_size)
    images = torch.empty(rows, height, width, 3, dtype=torch.uint8)
    row = 0
    for batch in tqdm(ds.select_columns(["screenshot"]).iter(batch_size=512), total=-(-rows // 512),
                      desc=f"loading {path.name}", unit="batch", leave=False):  # fmt: skip
        for item in batch["screenshot"]:
            try:
                frame = np.array(Image.open(io.BytesIO(item["bytes"])).convert("RGB"))
            except Exception as e:
                raise DataError(f"{files}: row {row}: screenshot cannot be decoded ({e})") from e
            if frame.shape != (height, width, 3):
                raise DataError(f"{files}: row {row}: screenshot is {frame.shape[1]}x{frame.shape[0]}, expected {width}x{height}")
            images[row] = torch.from_numpy(frame)
            row += 1

    episode, step = table["episode"], table["step"]
    starts = np.flatnonzero(np.r_[True, episode[1:] != episode[:-1]])
    lengths = np.diff(np.r_[starts, rows])
    expected_step = np.arange(rows) - np.repeat(starts, lengths)
    bad = np.flatnonzero(step != expected_step)
    if len(bad):
        raise DataError(f"{files}: row {bad[0]}: step {step[bad[0]]} breaks its episode's order (expected {expected_step[bad[0]]})")
    return Episodes(
        images=images,
        instruction=text["instruction"],
        task=text["task"],
        action=torch.as_tensor(table["action"], dtype=torch.long),
        click=torch.as_tensor(np.stack(table["click"]), dtype=torch.float32),
        release=torch.as_tensor(np.stack(table["release"]), dtype=torch.float32),
        key=torch.as_tensor(np.where(table["key"] >= 0, table["key"], IGNORE), dtype=torch.long),
        text=text["text"],
        box=torch.as_tensor(np.stack(table["target_box"]), dtype=torch.float32),
        focus=torch.as_tensor(np.stack(table["focus_box"]), dtype=torch.float32),
        others=boxes_tensor(lists["other_boxes"]),
        parts=boxes_tensor(lists["parts"], PART_WIDTH),
        dt=torch.as_tensor(table["dt"], dtype=torch.float32),
        starts=starts,
        lengths=lengths,
    )


def boxes_tensor(rows: list[list], width: int = 4) -> torch.Tensor:
    """Rows' lists of boxes (x0, y0, x1, y1, and `width` - 4 more values: a part's class ids) -> (rows, K, width),
    each padded with -1 boxes to the longest."""
    most = max(map(len, rows), default=0)
    out = torch.full((len(rows), most, width), -1.0)
    for row, boxes in enumerate(rows):
        if boxes:
            out[row, : len(boxes)] = torch.as_tensor(boxes, dtype=torch.float32)
    return out


def pad_boxes(parts: list[torch.Tensor]) -> list[torch.Tensor]:
    """(rows, K_i, width) tensors -> each padded with -1 boxes to the largest K."""
    most = max(part.shape[1] for part in parts)
    return [F.pad(part, (0, 0, 0, most - part.shape[1]), value=-1.0) for part in parts]


class EpisodeDataset(Dataset):
    def __init__(self, episodes: Episodes):
        self.episodes = episodes

    def __len__(self) -> int:
        return len(self.episodes)

    def __getitem__(self, i: int) -> dict:
        e, start = self.episodes, int(self.episodes.starts[i])
        rows = slice(start, start + int(e.lengths[i]))
        return {
            "images": e.images[rows],
            "instruction": e.instruction[rows],
            "task": e.task[start],
            "action": e.action[rows],
            "click": e.click[rows],
            "release": e.release[rows],
            "key": e.key[rows],
            "text": e.text[rows],
            "box": e.box[rows],
            "focus": e.focus[rows],
            "others": e.others[rows],
            "parts": e.parts[rows],
            "dt": e.dt[rows],
        }


def collate_episodes(items: list[dict]) -> dict:
    """Right-pad episodes to the longest; `mask` marks real steps."""
    steps = max(len(item["action"]) for item in items)
    batch = len(items)
    first = items[0]["images"]
    out = {
        "images": first.new_zeros(batch, steps, *first.shape[1:]),
        "action": torch.full((batch, steps), IGNORE, dtype=torch.long),
        "click": torch.zeros(batch, steps, 2),
        "release": torch.full((batch, steps, 2), -1.0),
        "key": torch.full((batch, steps), IGNORE, dtype=torch.long),
        "text": [],  # typed text per step, "" on padding
        "box": torch.full((batch, steps, 4), -1.0),
        "focus": torch.full((batch, steps, 4), -1.0),
        # lists per step, padded with -1 rows to the batch's longest
        **{key: torch.full((batch, steps, max(item[key].shape[1] for item in items), first_list.shape[-1]), -1.0)
           for key, first_list in (("others", items[0]["others"]), ("parts", items[0]["parts"]))},
        "dt": torch.zeros(batch, steps),  # 0 on padding: padded steps leave the state as it is
        "mask": torch.zeros(batch, steps, dtype=torch.bool),
        "instruction": [],
        "task": [item["task"] for item in items],
    }
    for b, item in enumerate(items):
        n = len(item["action"])
        for key in ("images", "action", "click", "release", "key", "box", "focus", "dt"):
            out[key][b, :n] = item[key]
        for key in ("others", "parts"):
            out[key][b, :n, : item[key].shape[1]] = item[key]
        out["mask"][b, :n] = True
        out["instruction"].append(list(item["instruction"]) + [""] * (steps - n))
        out["text"].append(list(item["text"]) + [""] * (steps - n))
    return out


class EpisodeSampler(Sampler[int]):
    """Episode order of an epoch: a permutation drawn from (seed, epoch) alone, so any epoch can be redrawn.

    `start` indices of the epoch are skipped once (a resumed epoch); Lightning calls `set_epoch` each epoch.
    """

    def __init__(self, size: int, seed: int = 0):
        self.size, self.seed = size, seed
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.epoch, self.start = epoch, 0

    def __len__(self) -> int:
        return self.size

    def __iter__(self):
        order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed * 100_003 + self.epoch))
        start, self.start = self.start, 0
        yield from order[start:].tolist()


class ResumableLoader(DataLoader):
    """A DataLoader whose position in the epoch is in Lightning's checkpoints (`state_dict`), so a run killed
    mid-epoch goes on with the batches it would have seen.

    It counts the batches it hands out: Lightning takes them one at a time from a loader with a length
    (no prefetching), so at a checkpoint the count is the number of batches trained on this epoch. Iteration
    starts lazily, at the first batch, after Lightning's `set_epoch` of the epoch it belongs to.
    """

    def __init__(self, dataset, sampler: EpisodeSampler, **kwargs):
        # a generator of its own: the loader draws its workers' base seed from it, not from torch's global RNG
        kwargs.setdefault("generator", torch.Generator().manual_seed(sampler.seed))
        super().__init__(dataset, sampler=sampler, **kwargs)
        self.batches = 0  # handed out since the epoch started

    def __iter__(self):
        self.batches = self.sampler.start // self.batch_size
        for batch in super().__iter__():
            self.batches += 1
            yield batch

    def state_dict(self) -> dict:
        return {"epoch": self.sampler.epoch, "batches": self.batches, "seed": self.sampler.seed}

    def load_state_dict(self, state: dict) -> None:
        self.sampler.seed, self.sampler.epoch = state["seed"], state["epoch"]
        self.sampler.start = state["batches"] * self.batch_size


class EpisodeDataModule(pl.LightningDataModule):
    """Oracle episodes of an env, recorded on first use and cached under `data_dir`.

    `tasks` may name kinds (`single-click`) for all their tasks; `record_workers` processes record (one
    env each); `max_envs` caps the envs closed-loop evaluation opens at once, `max_steps` its actions per
    episode. Neither changes the recorded data. `seed` draws the training episodes' order of each epoch.
    """

    def __init__(
        self,
        env: str = "gui",
        tasks: list[str] | None = None,
        image_size: int | list[int] = 96,
        episodes_per_task: dict | None = None,
        batch_size: int = 32,
        num_workers: int = 0,
        data_dir: str = "data_cache",
        record_workers: int = 1,
        env_kwargs: dict | None = None,
        max_envs: int | None = None,
        max_steps: int | None = None,
        seed: int = 0,
        oversample: dict | None = None,
        more_episodes: dict | None = None,
    ):
        super().__init__()
        self.tasks = tuple(check_tasks(env, tasks))
        self.oversample = self._per_task(env, "oversample", oversample or {}, "times per epoch")
        # {task: n}: n more training episodes of it, on the seeds after episodes_per_task.train (their own dataset)
        self.more_episodes = self._per_task(env, "more_episodes", more_episodes or {}, "episodes")
        self.episodes_per_task = {"train": 1000, "val": 50, "test": 100, **(episodes_per_task or {})}
        for split, n in self.episodes_per_task.items():
            if split not in SPLITS:
                raise ConfigError("episodes_per_task", f"unknown split {split!r}; use {', '.join(SPLITS)}")
            if not (isinstance(n, int) and n >= 1):
                raise ConfigError(f"episodes_per_task.{split}", f"must be an integer >= 1, got {n}")
        if self.oracle_train_seeds > SPLIT_SEED_BASE["val"]:
            raise ConfigError("more_episodes", f"the training seeds would run into the validation seeds "
                              f"({SPLIT_SEED_BASE['val']}..); ask for fewer")  # fmt: skip
        if batch_size < 1:
            raise ConfigError("batch_size", f"must be >= 1, got {batch_size}")
        if max_envs is not None and max_envs < 1:
            raise ConfigError("max_envs", f"must be null (no limit) or >= 1, got {max_envs}")
        if record_workers < 1:
            raise ConfigError("record_workers", f"must be >= 1, got {record_workers}")
        if max_steps is not None and max_steps < 1:
            raise ConfigError("max_steps", f"must be null (the env decides) or >= 1, got {max_steps}")
        # the most envs closed-loop evaluation may open at once (MiniWoB: each is a Chromium), and the
        # actions after which it counts an episode as failed (MiniWoB pages never end a wandering episode)
        self.max_envs, self.max_steps = max_envs, max_steps
        image_size = plain_size(image_size)  # N or [height, width]; part of the recording's cache key
        self.env, self.image_size, self.batch_size, self.num_workers = env, image_size, batch_size, num_workers
        self.data_dir, self.record_workers = Path(data_dir), record_workers
        self.env_kwargs = {"image_size": image_size, **(env_kwargs or {})}
        self.splits: dict[str, Episodes] = {}
        # more training datasets, trained on with the recorded ones: a policy's own episodes (lnn.data.improve);
        # the training run sets them
        self.own: list[Path] = []
        self._init_order(seed)

    def _per_task(self, env: str, key: str, given: dict, unit: str) -> dict[str, int]:
        """{task or kind: n} -> {task: n} over the trained tasks (a task named twice: the larger n)."""
        per_task = {}
        for name, n in given.items():
            if not (isinstance(n, int) and n >= 1):
                raise ConfigError(f"{key}.{name}", f"must be an integer >= 1 ({unit}), got {n!r}")
            chosen = [t for t in check_tasks(env, [name]) if t in self.tasks]
            if not chosen:
                raise ConfigError(key, f"{name!r} names none of the trained tasks {', '.join(self.tasks)}")
            per_task |= {task: max(n, per_task.get(task, 1)) for task in chosen}
        return per_task

    def epoch_episodes(self, episodes: Episodes) -> list[int]:
        """The episodes of a training epoch: each once, or as often as `oversample` says for its task."""
        return [i for i, start in enumerate(episodes.starts) for _ in range(self.oversample.get(episodes.task[start], 1))]

    def _init_order(self, seed: int) -> None:
        """What draws and resumes the training episodes' order (`seed`, with the epoch number)."""
        self.seed = seed
        self.train_loader: ResumableLoader | None = None
        self._loader_state: dict | None = None  # from a checkpoint, for the train loader

    def spec(self, split: str) -> RolloutSpec:
        return RolloutSpec(self.env, self.tasks, self.episodes_per_task[split], split, self.env_kwargs)

    def more_specs(self) -> list[RolloutSpec]:
        """The training episodes `more_episodes` adds: one dataset per number of episodes, of the tasks given it."""
        counts = sorted(set(self.more_episodes.values()))
        return [RolloutSpec(self.env, tuple(t for t in self.tasks if self.more_episodes.get(t) == n), n, "train",
                            self.env_kwargs, first_seed=self.episodes_per_task["train"]) for n in counts]  # fmt: skip

    @property
    def oracle_train_seeds(self) -> int:
        """How many of the training seeds the oracle's recordings use (a policy's own episodes come after)."""
        return self.episodes_per_task["train"] + max(self.more_episodes.values(), default=0)

    def dataset_path(self, split: str) -> Path:
        """The split's dataset on disk, recorded now if it is not there yet."""
        return build_dataset(self.spec(split), self.data_dir, workers=self.record_workers)

    def train_paths(self) -> list[Path]:
        """The training datasets, recorded now where they are not there yet: the split's, more_episodes', and the
        policy's own (`own`)."""
        more = [build_dataset(spec, self.data_dir, workers=self.record_workers) for spec in self.more_specs()]
        return [self.dataset_path("train"), *more, *map(Path, self.own)]

    def prepare_data(self) -> None:
        self.train_paths()
        self.dataset_path("val")

    def setup(self, stage: str | None = None) -> None:
        for split in ("train", "val"):
            if split not in self.splits:
                paths = self.train_paths() if split == "train" else [self.dataset_path(split)]
                episodes = load_episodes(paths[0], self.image_size)
                for path in paths[1:]:
                    episodes = episodes + load_episodes(path, self.image_size)
                self.splits[split] = episodes

    def train_dataloader(self) -> DataLoader:
        episodes = self.splits["train"]
        dataset = EpisodeDataset(episodes)
        if self.oversample:
            dataset = Subset(dataset, self.epoch_episodes(episodes))
        if self.trainer is not None and self.trainer.world_size > 1:  # DDP: Lightning's DistributedSampler
            return DataLoader(dataset, shuffle=True, **self._loader_args())  # shuffles (a resume is not exact)
        self.train_loader = ResumableLoader(dataset, EpisodeSampler(len(dataset), self.seed), **self._loader_args())
        if self._loader_state is not None:
            self.train_loader.load_state_dict(self._loader_state)
        return self.train_loader

    # The loader's position also goes through the datamodule's state: Lightning sets the train loader up
    # early (configure_optimizers asks for estimated_stepping_batches) and then skips loading the loader
    # states it saved. Lightning restores the datamodule before or after the loader exists: both work.
    def state_dict(self) -> dict:
        return {"train_loader": self.train_loader.state_dict()} if self.train_loader is not None else {}

    def load_state_dict(self, state: dict) -> None:
        self._loader_state = state.get("train_loader")
        if self.train_loader is not None and self._loader_state is not None:
            self.train_loader.load_state_dict(self._loader_state)

    def _loader_args(self) -> dict:
        return dict(batch_size=self.batch_size, num_workers=self.num_workers, collate_fn=collate_episodes,
                    persistent_workers=self.num_workers > 0)  # fmt: skip

    def val_dataloader(self) -> DataLoader:
        return DataLoader(EpisodeDataset(self.splits["val"]), shuffle=False, **self._loader_args())
