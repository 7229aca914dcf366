"""Recording throughput: oracle episodes per second with N browser workers, through build_dataset.

    PYTHONPATH=src python experiments/miniwob/throughput.py --workers 1,2,3 --episodes 60

Each N records the same fresh dataset (single-click tasks, `--episodes` per task, 128 px, shards of 32
episodes) into a temporary directory, timed end to end: worker start-up (spawned processes import torch
and launch Chromium), recording, the merge. Appends a table to throughput.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from lnn.data import RolloutSpec, build_dataset
from lnn.envs.registry import check_tasks

OUT = Path(__file__).parent / "throughput.md"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", default="1,2,3")
    parser.add_argument("--episodes", type=int, default=20, help="per task")
    parser.add_argument("--tasks", default="single-click")
    parser.add_argument("--image-size", type=int, default=128)
    args = parser.parse_args()
    tasks = check_tasks("miniwob", args.tasks.split(","))
    spec = RolloutSpec("miniwob", tasks, args.episodes, "train", {"image_size": args.image_size, "step_timeout_s": 10})
    lines = []
    for n in [int(w) for w in args.workers.split(",")]:
        root = Path(tempfile.mkdtemp(prefix="lnn-throughput-"))
        try:
            load_before = os.getloadavg()[0]
            started = time.perf_counter()
            path = build_dataset(spec, root, workers=n, shard_episodes=32)
            seconds = time.perf_counter() - started
            info = json.loads((path / "recording.json").read_text())
        finally:
            shutil.rmtree(root, ignore_errors=True)
        episodes = len(spec.jobs())
        line = (f"| {n} | {episodes} | {seconds:.1f} | {episodes / seconds:.2f} | {info['skipped']} "
                f"| {load_before:.1f} / {os.getloadavg()[0]:.1f} |")  # fmt: skip
        print(line, flush=True)
        lines.append(line)
    header = [f"\n## {time.strftime('%Y-%m-%d %H:%M')} on {platform.node()} ({os.cpu_count()} CPUs): "
              f"{len(tasks)} tasks x {args.episodes} episodes, {args.image_size} px\n",
              "| workers | episodes | seconds (end to end) | episodes/s | skipped | load avg before / after |",
              "|---:|---:|---:|---:|---:|---|"]  # fmt: skip
    with open(OUT, "a") as f:
        f.write("\n".join(header + lines) + "\n")


if __name__ == "__main__":
    main()
