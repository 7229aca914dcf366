"""Users' own screenshots: a folder with `episodes.jsonl` and the image files, imported once into the dataset
format the recorders write (lnn.data.rollouts), then trained on like recorded episodes.

episodes.jsonl has one JSON object per line, one line per step, the steps of an episode together and in
order (step 0, 1, ...):

    {"episode": "e1", "step": 0, "image": "e1/0.png", "instruction": "Click OK", "action": "click",
     "x": 0.42, "y": 0.77, "box": [0.35, 0.7, 0.5, 0.82], "task": "dialogs", "dt": 1.0}

`episode` (a string or number), `step`, `image` (a path relative to the folder), `instruction` and `action`
(one of lnn.envs.ACTIONS) are required; `x`, `y` (the click point in [0, 1], from the left / top) on clicks;
on drags `x`, `y` (where the button is pressed) and `x2`, `y2` (where it is released); `text` on `type` steps
(what is typed) and on `key` steps (the key: one of lnn.envs.KEYS, e.g. "Enter"). Optional: `task` (a name
the instruction encoder also sees), `box` ([x0, y0, x1, y1] in [0, 1]: the target, for the click-inside-box
metric and loss) and `dt` (time since the previous frame, default 1). Images of any size and format Pillow reads are stretched to the model's image size (N or [height, width])
(stretching, not letterboxing, keeps normalised points exact).

The import checks every line first and stops at the first bad one with "<file>:<line>: <what>; <fix>". It
is cached by content: the key hashes episodes.jsonl's bytes and each image's (size, mtime) — a stat per
image instead of reading every image again at each start; any edit of an image changes its mtime, so a
changed folder is imported again (a copy that keeps mtimes, e.g. cp -p or rsync -a, is still a hit). The
import is written to a temporary directory and renamed when complete (rollouts.build_once).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import multiprocessing as mp
import os
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import lightning.pytorch as pl
from PIL import Image
from tqdm.auto import tqdm

from lnn.data.datamodule import EpisodeDataModule
from lnn.data.rollouts import FORMAT_VERSION, NO_BOX, build_once, key_index, save_rows
from lnn.envs import ACTIONS
from lnn.errors import ConfigError, DataError
from lnn.frames import plain_size, resize_frame

EPISODES = "episodes.jsonl"
# bump when the import changes what it writes: folders are then imported again (2: drags' x2, y2 and keys)
FOLDER_FORMAT = 2
REQUIRED = ("episode", "step", "image", "instruction", "action")
SPLITS = ("train", "val")


@dataclass
class Step:
    """A checked line of episodes.jsonl."""

    line: int
    episode: str
    step: int
    image: str
    instruction: str
    action: str
    click: list[float]
    release: list[float]
    key: int
    text: str
    task: str
    box: list[float]
    dt: float


def _number(value, what: str, low: float | None = None, high: float | None = None, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{what} must be a number, got {value!r}")
    if not math.isfinite(value) or (low is not None and not low <= value <= high) or (positive and not value > 0):
        raise ValueError(f"{what} is {value}, outside " + (f"[{low}, {high}]" if low is not None else "(0, inf)"))
    return float(value)


def _check_line(record, line: int) -> Step:
    """A line's JSON object as a Step; ValueError saying what is wrong (without the file:line)."""
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
    missing = [key for key in REQUIRED if key not in record]
    action = record.get("action")
    if action in ("click", "drag"):
        missing += [key for key in ("x", "y") if key not in record]
    if action == "drag":
        missing += [key for key in ("x2", "y2") if key not in record]
    if action in ("type", "key") and "text" not in record:
        missing.append("text")
    if missing:
        raise ValueError(f"missing key {', '.join(map(repr, missing))}")
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; use one of {', '.join(ACTIONS)}")
    step = record["step"]
    if isinstance(step, bool) or not isinstance(step, int):
        raise ValueError(f"step must be an integer, got {step!r}")
    for key in ("image", "instruction", "text", "task"):
        if key in record and not isinstance(record[key], str):
            raise ValueError(f"{key} must be a string, got {record[key]!r}")
    if isinstance(record["episode"], bool) or not isinstance(record["episode"], (str, int)):
        raise ValueError(f"episode must be a string or an integer, got {record['episode']!r}")
    click = [_number(record[k], k, 0.0, 1.0) for k in ("x", "y")] if action in ("click", "drag") else [-1.0, -1.0]
    release = [_number(record[k], k, 0.0, 1.0) for k in ("x2", "y2")] if action == "drag" else [-1.0, -1.0]
    key = key_index(record["text"]) if action == "key" else -1
    box = record.get("box")
    if box is not None:
        if not (isinstance(box, list) and len(box) == 4):
            raise ValueError(f"box must be [x0, y0, x1, y1], got {box!r}")
        box = [_number(v, f"box[{i}]", 0.0, 1.0) for i, v in enumerate(box)]
        if box[0] > box[2] or box[1] > box[3]:
            raise ValueError(f"box {box} has x0 > x1 or y0 > y1")
    dt = _number(record["dt"], "dt", positive=True) if "dt" in record else 1.0
    return Step(line, str(record["episode"]), step, record["image"], record["instruction"], action, click, release, key,
                record.get("text", ""), record.get("task", ""), box or list(NO_BOX), dt)  # fmt: skip


def read_steps(folder: Path) -> list[Step]:
    """Every line of folder/episodes.jsonl, checked: keys, values, step order and that each image exists."""
    path = folder / EPISODES
    if not path.is_file():
        raise DataError(f"{path}: no such file; a folder dataset needs {EPISODES} (one JSON line per step, README.md)")
    steps: list[Step] = []
    done: set[str] = set()  # episodes whose lines have ended
    with open(path, encoding="utf-8-sig") as f:  # -sig: a byte-order mark some editors write is skipped
        for line, text in enumerate(f, 1):
            if not text.strip():
                continue
            try:
                try:
                    record = json.loads(text)
                except json.JSONDecodeError as e:
                    raise ValueError(f"not valid JSON ({e})") from None
                step = _check_line(record, line)
                previous = steps[-1] if steps else None
                same = previous is not None and previous.episode == step.episode
                if not same and previous is not None:
                    done.add(previous.episode)
                expected = previous.step + 1 if same else 0
                if step.episode in done:
                    raise ValueError(f"episode {step.episode!r} continues after other episodes; keep an episode's lines together")
                if step.step != expected:
                    raise ValueError(f"step {step.step} is out of order: episode {step.episode!r} expects step {expected} here")
                if Path(step.image).is_absolute() or ".." in Path(step.image).parts:
                    raise ValueError(f"image {step.image!r} must be a path inside the folder, relative to it")
                if not (folder / step.image).is_file():
                    raise ValueError(f"image {step.image!r} does not exist (paths are relative to {folder})")
            except ValueError as e:
                raise DataError(f"{path}:{line}: {e}; fix or remove the line") from None
            steps.append(step)
    if not steps:
        raise DataError(f"{path}: has no steps; one JSON line per step (README.md)")
    return steps


def folder_key(folder: Path, steps: list[Step], image_size: int | list[int], val_fraction: float) -> str:
    """Hash of what the import depends on: episodes.jsonl's bytes, each image's (size, mtime), the settings."""
    digest = hashlib.sha256((folder / EPISODES).read_bytes()).hexdigest()
    images = {}
    for step in steps:
        if step.image not in images:
            stat = (folder / step.image).stat()
            images[step.image] = (stat.st_size, stat.st_mtime_ns)
    blob = json.dumps({"episodes": digest, "images": sorted(images.items()), "image_size": image_size,
                       "val_fraction": val_fraction, "format": [FORMAT_VERSION, FOLDER_FORMAT]})  # fmt: skip
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def split_of(episode: str, val_fraction: float) -> str:
    """val for a fixed share of episodes, by a hash of the episode id (the same folder always splits the same)."""
    return "val" if zlib.crc32(episode.encode()) % 10_000 < val_fraction * 10_000 else "train"


def split_episodes(steps: list[Step], val_fraction: float, path: Path) -> dict[str, list[str]]:
    """Episode ids per split; at least one in each (the episode with the smallest hash goes to val if none did)."""
    episodes = list(dict.fromkeys(step.episode for step in steps))
    if len(episodes) < 2:
        raise DataError(f"{path}: has {len(episodes)} episode; a train and a validation split need at least 2")
    val = [e for e in episodes if split_of(e, val_fraction) == "val"]
    if not val:
        val = [min(episodes, key=lambda e: zlib.crc32(e.encode()))]
    if len(val) == len(episodes):
        val = val[:-1]
    return {"train": [e for e in episodes if e not in val], "val": val}


def _decode(args) -> bytes | str:
    """An image file -> PNG bytes of its RGB frame stretched to `size` (N or [height, width]); or what went wrong."""
    path, size = args
    try:
        with Image.open(path) as image:
            frame = resize_frame(image.convert("RGB"), size)
        out = io.BytesIO()
        frame.save(out, format="PNG", compress_level=1)
        return out.getvalue()
    except Exception as e:  # Pillow raises many kinds for a truncated or foreign file
        return f"{type(e).__name__}: {e}"


def _frames(folder: Path, steps: list[Step], image_size: int | list[int], workers: int):
    """PNG bytes of each step's frame, in order, decoded in `workers` processes; DataError at the first bad one."""
    jobs = [(str(folder / step.image), image_size) for step in steps]
    bar = tqdm(total=len(jobs), desc=f"importing {folder.name}", unit="img", smoothing=0.05)
    pool = mp.get_context("fork").Pool(workers) if workers > 1 and len(jobs) >= 64 else None
    try:
        results = pool.imap(_decode, jobs, chunksize=32) if pool else map(_decode, jobs)
        for step, result in zip(steps, results):
            if isinstance(result, str):
                raise DataError(f"{folder / EPISODES}:{step.line}: image {step.image!r} cannot be read ({result}); "
                                "replace the file or remove the line")  # fmt: skip
            bar.update()
            yield result
    finally:
        bar.close()
        if pool:
            pool.terminate()


def _write_import(folder: Path, steps: list[Step], splits: dict, image_size: int | list[int], workers: int, tmp: Path) -> None:
    import datasets as hf

    hf.disable_progress_bars()  # ours says what is happening
    started = time.perf_counter()
    frames = list(_frames(folder, steps, image_size, workers))
    ids = {episode: i for i, episode in enumerate(dict.fromkeys(step.episode for step in steps))}
    for split, episodes in splits.items():
        chosen = set(episodes)
        rows = [(step, frame) for step, frame in zip(steps, frames) if step.episode in chosen]
        columns = {
            "episode": [ids[s.episode] for s, _ in rows],
            "seed": [-1] * len(rows),  # not from an env
            "task": [s.task for s, _ in rows],
            "step": [s.step for s, _ in rows],
            "screenshot": [{"bytes": frame, "path": None} for _, frame in rows],
            "instruction": [s.instruction for s, _ in rows],
            "action": [ACTIONS.index(s.action) for s, _ in rows],
            "text": [s.text for s, _ in rows],
            "click": [s.click for s, _ in rows],
            "release": [s.release for s, _ in rows],
            "key": [s.key for s, _ in rows],
            "target_box": [s.box for s, _ in rows],
            "focus_box": [s.box for s, _ in rows],  # what the step is about: its target, where given
            "other_boxes": [[] for _ in rows],
            "parts": [[] for _ in rows],
            "dt": [s.dt for s, _ in rows],
        }
        save_rows(columns, tmp / split)
    (tmp / "import.json").write_text(json.dumps({
        "folder": str(folder), "steps": len(steps), "episodes": {k: len(v) for k, v in splits.items()},
        "image_size": image_size, "workers": workers, "seconds": round(time.perf_counter() - started, 1),
    }, indent=1))  # fmt: skip


def import_folder(folder: str | os.PathLike, root: str | os.PathLike, image_size: int | list[int], val_fraction: float = 0.1,
                  workers: int | None = None, steps: list[Step] | None = None) -> Path:  # fmt: skip
    """The imported dataset of `folder` under `root` (train/ and val/, split by episode), imported now unless
    this content was imported before. Returns its path. `steps`: read_steps(folder), if already read."""
    folder = Path(folder).expanduser().resolve()
    steps = steps if steps is not None else read_steps(folder)
    splits = split_episodes(steps, val_fraction, folder / EPISODES)
    final = Path(root) / f"folder-{folder.name}-{folder_key(folder, steps, image_size, val_fraction)}"
    workers = workers or os.cpu_count() or 1
    return build_once(final, lambda tmp: _write_import(folder, steps, splits, image_size, workers, tmp))


class FolderDataModule(EpisodeDataModule):
    """Episodes of a folder of the user's screenshots (see the module doc); no env, so no closed-loop
    evaluation: validation reports offline metrics (val/action_acc, val/click_dist, val/click_acc)."""

    env = None  # what the closed-loop evaluations need, and a folder has not
    tasks: tuple[str, ...] = ()

    def __init__(
        self,
        path: str | None = None,
        image_size: int | list[int] = 96,
        val_fraction: float = 0.1,
        batch_size: int = 32,
        num_workers: int = 0,
        data_dir: str = "data_cache",
        import_workers: int | None = None,
        seed: int = 0,
    ):
        pl.LightningDataModule.__init__(self)  # not EpisodeDataModule's: no env, tasks or seed splits
        if not path:
            raise ConfigError("path", "is required: data=folder data.path=<folder with episodes.jsonl>")
        if not Path(path).expanduser().is_dir():
            raise ConfigError("path", f"{path} is not a folder")
        if not 0 < val_fraction < 1:
            raise ConfigError("val_fraction", f"must be in (0, 1), got {val_fraction}")
        if batch_size < 1:
            raise ConfigError("batch_size", f"must be >= 1, got {batch_size}")
        if import_workers is not None and import_workers < 1:
            raise ConfigError("import_workers", f"must be null (every CPU) or >= 1, got {import_workers}")
        self.path, self.val_fraction, self.import_workers = Path(path).expanduser().resolve(), val_fraction, import_workers
        self.steps = read_steps(self.path)  # a bad line stops the run here, before any work (images: at import)
        self.image_size, self.batch_size, self.num_workers = plain_size(image_size), batch_size, num_workers
        self.data_dir = Path(data_dir)
        self.splits = {}
        self.own: list[Path] = []  # the policy's own episodes: none, a folder has no env to play them in
        self.oversample = {}  # every episode once per epoch
        self.more_episodes = {}  # nothing to record more of
        self.imported: Path | None = None
        self._init_order(seed)

    def dataset_path(self, split: str) -> Path:
        if self.imported is None:  # checked and imported once per run
            self.imported = import_folder(self.path, self.data_dir, self.image_size, self.val_fraction,
                                          self.import_workers, self.steps)  # fmt: skip
        return self.imported / split
