"""Oracle rollouts written to disk as Hugging Face datasets: one row per step, grouped by episode.

A dataset is identified by its `RolloutSpec` (env, tasks, image size, seeds) and the env's oracle code
(`lnn.envs.registry.oracle_code`: for MiniWoB the oracles, the page probe and the miniwob version): their
hash names its directory, so the same settings reuse the same files, and any change, a changed oracle
included, makes a new dataset.
Episodes are recorded in shards; each shard is written under a temporary name and renamed when
complete, and the final dataset likewise. A killed generation therefore leaves only complete shards
(picked up by the next run, never recorded twice) and never a half-written dataset.

A shard is one worker's unit: with `workers` > 1, shards are recorded by that many processes, each with
its own env (for MiniWoB, its own Chromium). Rows of an episode are kept only once the episode is
complete: an episode the env aborts (browser crash or hang) is recorded again from its seed, and one
that still fails, or that the oracle cannot solve, is left out and listed in notes.json. The oracle acts
through lnn.rollout's episode runner, the one the agent and the evaluations use.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import multiprocessing as mp
import os
import shutil
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path
from queue import Empty

import numpy as np
from tqdm.auto import tqdm

from lnn.envs import ACTIONS, KEYS, PART_ATTRIBUTES, Env, EpisodeAborted, OracleError
from lnn.envs.registry import make_env, oracle_code
from lnn.errors import DataError
from lnn.rollout import OraclePolicy, run_episodes, split_seeds

log = logging.getLogger("lnn")

# bump when rows change meaning: old caches are then not reused (3: MiniWoB pages as UTF-8; 4: dt is the
# env's, wall-clock seconds between MiniWoB screenshots; 5: drags (`click` is the press point, `release` where
# the button is let go) and the `key` column; 6: `other_boxes`, where else a click is as right; 7: `parts`, what
# parts of the screen are). A dataset without a column of features() is of an older format and is refused when
# read (load_episodes), never misread
FORMAT_VERSION = 7
NO_BOX = [-1.0, -1.0, -1.0, -1.0]
PART_WIDTH = 4 + len(PART_ATTRIBUTES)  # a part's row in `parts`: its box, then its class ids
NOTES = "notes.json"  # episodes left out of a dataset, and why
OUTCOMES = "outcomes.json"  # a shard's [task, outcome] per episode: recording.json counts them per task
WORKER_DEATHS = 3  # a pool whose worker the OS killed is started again this often (its shards re-recorded)
RETRIES = 2  # an episode the env aborts (browser crash or hang) is recorded again from its seed this often


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
            "text": hf.Value("string"),  # typed text / key name / url, "" otherwise
            # normalised (x, y); the oracle's point: a click's, or where a drag presses the button; -1 otherwise
            "click": hf.Sequence(hf.Value("float32"), length=2),
            "release": hf.Sequence(hf.Value("float32"), length=2),  # where a drag lets go (x2, y2); -1 otherwise
            "key": hf.Value("int32"),  # a key step's key: its index in lnn.envs.KEYS; -1 otherwise
            "target_box": hf.Sequence(hf.Value("float32"), length=4),  # (x0, y0, x1, y1), -1 when no click
            "focus_box": hf.Sequence(hf.Value("float32"), length=4),  # what the step is about, -1 when nothing
            # the other boxes a click would be as right in (click-shape: every shape the description fits)
            "other_boxes": hf.Sequence(hf.Sequence(hf.Value("float32"), length=4)),
            # what parts of the screen are (click-shape: every shape): (x0, y0, x1, y1) and one class id per
            # lnn.envs.PART_ATTRIBUTES (-1: not known), as floats
            "parts": hf.Sequence(hf.Sequence(hf.Value("float32"), length=PART_WIDTH)),
            # seconds since the previous frame (the liquid core's dt), as the env reported it: 1 in most GUI
            # families, drawn in the timing ones, wall-clock in a browser
            "dt": hf.Value("float32"),
        }
    )


def save_rows(columns: dict, path: Path) -> None:
    """Rows (a list per column of features(); screenshots as PIL images or {"bytes": png, "path": None}) as a
    dataset at `path`: the one writer of the recorders and the folder import."""
    import datasets as hf

    hf.Dataset.from_dict(columns, features=features()).save_to_disk(str(path))


def build_once(final: Path, write) -> Path:
    """`final`, made now by `write(tmp)` unless it exists, and returned.

    Under a file lock (parallel jobs of a sweep wait for one writer, then share its result); `write` fills a
    temporary directory that is renamed to `final` only when it returns, and removed when it raises: a
    failed or killed build never leaves a half-written `final`.
    """
    if final.exists():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with open(final.with_name(f".{final.name}.lock"), "w") as lock:  # hidden; kept (unlinking races waiters)
        fcntl.flock(lock, fcntl.LOCK_EX)
        if final.exists():
            return final
        tmp = final.with_name(final.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            write(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        os.replace(tmp, final)
    return final


@dataclass(frozen=True)
class RolloutSpec:
    """Everything that determines the recorded rows."""

    env: str  # a key of lnn.envs.registry.ENVS
    tasks: tuple[str, ...]
    episodes_per_task: int
    split: str
    env_kwargs: dict = field(default_factory=dict)
    first_seed: int = 0  # from this seed of the split's range on (data.more_episodes: after the split's own)

    def seeds(self) -> range:
        """Every task of a split draws its episodes from the split's own seed range."""
        seeds = split_seeds(self.split, self.first_seed + self.episodes_per_task)
        return seeds[self.first_seed :]

    def key(self) -> str:
        fields = asdict(self)
        if not self.first_seed:  # the recordings made before first_seed existed keep their key
            del fields["first_seed"]
        return self._hash(fields)

    def _hash(self, fields: dict) -> str:
        """The cache key of these fields, the row format and the env's oracle code."""
        oracle = hashlib.sha256(oracle_code(self.env).encode()).hexdigest()
        blob = json.dumps({**fields, "format": FORMAT_VERSION, "oracle": oracle}, sort_keys=True, default=list)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def episode_rows(self, env: Env, episode: int, task: str, seed: int) -> tuple[list[dict], dict | None, str]:
        """One episode's rows, the note saying why it was skipped (else None), and its outcome for the
        per-task counts of recording.json: the oracle's episode, "recorded" or "skipped"."""
        rows, note = _record_episode_or_note(env, episode, task, seed, RETRIES)
        return rows, note, "skipped" if note else "recorded"

    def jobs(self) -> list[tuple[int, str, int]]:
        """(episode id, task, seed) for every episode, in a fixed order."""
        jobs = [(task, seed) for task in self.tasks for seed in self.seeds()]
        return [(episode, task, seed) for episode, (task, seed) in enumerate(jobs)]


def record_episode(env: Env, episode: int, task: str, seed: int, max_steps: int = 32, retries: int = 0) -> list[dict]:
    """Run the oracle for one episode; a row per step.

    Raises OracleError if the oracle finds no action, does not end the episode within max_steps, or ends
    it without reward; EpisodeAborted if the env had to give up the episode (a browser fault) `retries` + 1
    times (each time recorded again from its seed).
    """
    result = run_episodes(OraclePolicy([env]), [env], [(task, seed)], record=True, desc=None, max_steps=max_steps,
                          retries=retries)[0]  # fmt: skip
    if result.aborted:
        raise EpisodeAborted(result.aborted)
    if not result.success:
        raise OracleError(f"the oracle failed {task} seed {seed}: {result.failure}")
    try:
        return [_row(episode, seed, task, step, record) for step, record in enumerate(result.trace)]
    except ValueError as e:  # a key the key head has no class for: the episode is left out, with this note
        raise OracleError(f"{task} seed {seed}: {e}") from None


def _row(episode: int, seed: int, task: str, step: int, record: dict) -> dict:
    """A dataset row from a step the oracle took (OraclePolicy.trace_step)."""
    action, oracle = record["action"], record["oracle"]
    return {
        "episode": episode,
        "seed": seed,
        "task": task,
        "step": step,
        "screenshot": record["screenshot"],
        "instruction": record["instruction"],
        "action": ACTIONS.index(action.type),
        "text": action.text,
        "click": [action.x, action.y] if action.type in ("click", "drag") else [-1.0, -1.0],
        "release": [action.x2, action.y2] if action.type == "drag" else [-1.0, -1.0],
        "key": key_index(action.text) if action.type == "key" else -1,
        "target_box": list(oracle.target_box) if oracle.target_box else NO_BOX,
        "focus_box": list(oracle.focus) if oracle.focus else NO_BOX,
        "other_boxes": [list(box) for box in oracle.other_boxes],
        "parts": [[*part.box, *part.labels] for part in oracle.parts],
        "dt": float(record["dt"]),
    }


def key_index(name: str) -> int:
    """A key action's key as its index in KEYS (the key head's class); ValueError naming the key otherwise."""
    if name not in KEYS:
        raise ValueError(f"key {name!r} is not one of lnn.envs.KEYS ({', '.join(KEYS)}); add it there (at the end)")
    return KEYS.index(name)


# Set in each recording process: called with the number of episodes just finished (progress bar).
_progress = None


def _init_worker(queue) -> None:
    global _progress
    _progress = queue.put
    threading.Thread(target=_exit_when_orphaned, args=(os.getppid(),), daemon=True).start()


def _exit_when_orphaned(parent: int) -> None:
    """A worker whose recording process was killed exits (busy or idle: an idle one would wait for work forever);
    its browser's driver then sees its pipe close and ends the browser."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _record_episode_or_note(env: Env, episode: int, task: str, seed: int, retries: int) -> tuple[list[dict], dict | None]:
    """The episode's rows, or no rows and a note saying why it was skipped.

    An episode the env aborted (browser crash or hang; the env has restarted its browser) is tried again
    from its seed, up to `retries` times; one the oracle cannot solve is skipped at once.
    """
    try:
        return record_episode(env, episode, task, seed, retries=retries), None
    except EpisodeAborted as e:
        reason = f"aborted {retries + 1} times, last: {e.reason}"
    except OracleError as e:
        reason = str(e)
    return [], {"episode": episode, "task": task, "seed": seed, "reason": reason}


def _record_shard(args) -> int:
    """Record one shard (a worker's unit): complete episodes only, written under a temporary name, renamed
    when done. Episodes that were skipped are listed in the shard's notes.json."""
    spec, jobs, out = args
    import datasets as hf
    from PIL import Image

    hf.disable_progress_bars()
    env = make_env(spec.env, tasks=list(spec.tasks), **spec.env_kwargs)
    rows, notes, outcomes = [], [], []
    try:
        for episode, task, seed in jobs:
            episode_rows, note, outcome = spec.episode_rows(env, episode, task, seed)
            for row in episode_rows:
                row["screenshot"] = Image.fromarray(np.asarray(row["screenshot"]))
            rows.extend(episode_rows)
            outcomes.append([task, outcome])
            if note:
                notes.append(note)
            if _progress is not None:
                _progress(1)
    finally:
        env.close()
    columns = {name: [row[name] for row in rows] for name in features()}
    tmp = out.with_name(f"{out.name}.tmp{os.getpid()}")  # workers of two runs never share a temporary
    shutil.rmtree(tmp, ignore_errors=True)
    if rows:
        save_rows(columns, tmp)
    else:  # every episode skipped: only the notes (an empty dataset cannot be loaded back)
        tmp.mkdir(parents=True)
    (tmp / NOTES).write_text(json.dumps(notes, indent=1))
    (tmp / OUTCOMES).write_text(json.dumps(outcomes))
    try:
        os.replace(tmp, out)
    except OSError:  # another run finished the same shard first: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
    return len(jobs)


def _run_shards(todo: list, workers: int, bar) -> None:
    """Record the shards, in `workers` processes when more than one; the bar advances per episode.

    A worker that dies without raising (killed by the OS, e.g. out of memory) breaks the pool: the shards
    not on disk yet are recorded again by a fresh pool, up to WORKER_DEATHS times.
    """
    global _progress
    if workers <= 1 or len(todo) <= 1:
        _progress = bar.update
        try:
            for args in todo:
                _record_shard(args)
        finally:
            _progress = None
        return
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    for deaths in range(WORKER_DEATHS + 1):
        try:
            with ProcessPoolExecutor(min(workers, len(todo)), mp_context=ctx, initializer=_init_worker,
                                     initargs=(queue,)) as pool:  # fmt: skip
                futures = [pool.submit(_record_shard, args) for args in todo]
                while not all(f.done() for f in futures):
                    _drain(queue, bar, 0.2)
                for f in futures:
                    f.result()  # a worker's exception, raised here
            break
        except BrokenProcessPool:
            todo = [args for args in todo if not args[2].exists()]
            if deaths == WORKER_DEATHS:
                raise DataError(f"{todo[0][2].parent}: recording workers died {deaths + 1} times (killed by the OS? "
                                f"out of memory?); use fewer workers (data.record_workers)") from None  # fmt: skip
            log.warning(f"a recording worker died; recording its {len(todo)} unfinished shard(s) again")
            bar.n = bar.total - sum(len(jobs) for _, jobs, _ in todo)  # the lost shards' episodes count again
            bar.refresh()
    _drain(queue, bar, 0.1)
    queue.close()
    queue.join_thread()


def _drain(queue, bar, timeout: float) -> None:
    """Advance the bar by the episodes the workers reported, waiting up to `timeout` for the first report."""
    while True:
        try:
            bar.update(queue.get(timeout=timeout))
        except Empty:
            return
        timeout = 0.01


def build_dataset(spec: RolloutSpec, root: str | os.PathLike, workers: int = 1, shard_episodes: int = 256) -> Path:
    """The dataset for `spec` under `root`, recorded now if it is not there yet. Returns its path.

    Next to the rows: spec.json, notes.json (episodes skipped, and why) and recording.json (how long the
    recording took, with how many workers).
    """
    final = Path(root) / f"{spec.env}-{spec.split}-{spec.key()}"
    work = final.with_name(final.name + ".partial")  # complete shards: kept by a failed run, for the next
    built = build_once(final, lambda tmp: _record(spec, work, tmp, workers, shard_episodes))
    shutil.rmtree(work, ignore_errors=True)
    return built


def _record(spec: RolloutSpec, work: Path, tmp: Path, workers: int, shard_episodes: int) -> None:
    """Record the shards missing under `work`, then merge them into the dataset at `tmp`."""
    shards_dir = work / "shards"
    shards_dir.mkdir(parents=True, exist_ok=True)
    (work / "spec.json").write_text(json.dumps(asdict(spec), indent=1, default=list))
    jobs = spec.jobs()
    chunks = [jobs[i : i + shard_episodes] for i in range(0, len(jobs), shard_episodes)]
    shard_paths = [shards_dir / f"{i:05d}" for i in range(len(chunks))]
    todo = [(spec, chunk, path) for chunk, path in zip(chunks, shard_paths) if not path.exists()]
    done = len(jobs) - sum(len(chunk) for _, chunk, _ in todo)

    started = time.perf_counter()
    with tqdm(total=len(jobs), initial=done, desc=f"recording {spec.env} {spec.split}", unit="ep", smoothing=0.05) as bar:
        _run_shards(todo, workers, bar)
    seconds = time.perf_counter() - started

    import datasets as hf

    hf.disable_progress_bars()  # ours above says what is happening
    shards = [hf.load_from_disk(str(p)) for p in shard_paths if (p / "state.json").exists()]  # shards with rows
    notes = [note for p in shard_paths if (p / NOTES).exists() for note in json.loads((p / NOTES).read_text())]
    per_task: dict[str, dict[str, int]] = {}  # task -> outcome -> episodes
    for p in shard_paths:
        for task, outcome in json.loads((p / OUTCOMES).read_text()) if (p / OUTCOMES).exists() else []:
            per_task.setdefault(task, {}).setdefault(outcome, 0)
            per_task[task][outcome] += 1
    if not shards:
        raise DataError(f"{work}: every episode was skipped; first: {notes[0]['reason'] if notes else '?'}")
    merged = hf.concatenate_datasets(shards)
    merged.save_to_disk(str(tmp))
    shutil.copy(work / "spec.json", tmp / "spec.json")
    (tmp / NOTES).write_text(json.dumps(notes, indent=1))
    recorded = sum(len(chunk) for _, chunk, _ in todo)
    (tmp / "recording.json").write_text(json.dumps({
        "episodes": len(jobs), "skipped": len(notes), "rows": len(merged), "workers": workers,
        "episodes_recorded_now": recorded, "seconds": round(seconds, 1),
        "episodes_per_s": round(recorded / seconds, 2) if recorded and seconds > 0 else None, "per_task": per_task,
    }, indent=1))  # fmt: skip
    if notes:
        log.warning(f"{spec.env} {spec.split}: skipped {len(notes)} of {len(jobs)} episodes (see {NOTES} in the dataset); "
                    f"first: {notes[0]['reason']}")  # fmt: skip
