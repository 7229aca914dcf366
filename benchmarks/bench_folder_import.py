"""Seconds to import a folder of screenshots (data=folder): 10,000 steps of 160 x 210 PNGs; goal <= 60 s.

    python benchmarks/bench_folder_import.py [--steps 10000] [--image-size 64] [--workers N] [--keep DIR]

Writes a synthetic folder first (GUI-like frames: a background, buttons with labels; episodes of 5 steps
with clicks, typing and done; not timed), then times lnn.data.import_folder into an empty cache: checking
every line, decoding and stretching every image (in --workers processes; default one per CPU core),
writing the train and val datasets. Prints the time, steps/s and the load average (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageDraw

from lnn.data import import_folder

EPISODE_STEPS = 5
SIZE = (160, 210)  # MiniWoB's task area


def draw_frame(args) -> None:
    """A GUI-like frame: a background and a few labelled buttons (compresses like a real screenshot)."""
    path, seed = args
    rng = random.Random(seed)
    image = Image.new("RGB", SIZE, tuple(rng.randrange(200, 256) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randrange(3, 7)):
        x, y = rng.randrange(0, SIZE[0] - 50), rng.randrange(0, SIZE[1] - 20)
        draw.rectangle([x, y, x + rng.randrange(30, 50), y + 16], fill=tuple(rng.randrange(0, 200) for _ in range(3)))
        draw.text((x + 3, y + 3), rng.choice(["OK", "Submit", "Cancel", "next", "yes"]), fill=(255, 255, 255))
    image.save(path)


def line(episode: int, step: int) -> dict:
    base = {"episode": f"ep{episode}", "step": step, "image": f"{episode:05d}/{step}.png", "task": "synthetic"}
    if step == EPISODE_STEPS - 1:
        return base | {"instruction": "finish", "action": "done"}
    if step == 1:
        return base | {"instruction": "type the name", "action": "type", "text": "Ada"}
    return base | {"instruction": "click Submit", "action": "click", "x": 0.3, "y": 0.6, "box": [0.2, 0.5, 0.4, 0.7]}


def build_folder(folder: Path, steps: int) -> None:
    lines = [line(i // EPISODE_STEPS, i % EPISODE_STEPS) for i in range(steps)]
    for episode in {entry["image"].split("/")[0] for entry in lines}:
        (folder / episode).mkdir(parents=True, exist_ok=True)
    with mp.Pool() as pool:
        pool.map(draw_frame, [(folder / entry["image"], i) for i, entry in enumerate(lines)], chunksize=64)
    (folder / "episodes.jsonl").write_text("".join(json.dumps(entry) + "\n" for entry in lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--image-size", type=int, default=64, help="the model's image size (model.image_size)")
    parser.add_argument("--workers", type=int, default=None, help="decoding processes (default: one per CPU core)")
    parser.add_argument("--keep", type=Path, default=None, help="build the folder here and keep it (else a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp) / "shots"
        if not (folder / "episodes.jsonl").exists():
            started = time.perf_counter()
            build_folder(folder, args.steps)
            print(f"built {args.steps:,} frames {SIZE[0]}x{SIZE[1]} in {time.perf_counter() - started:.1f} s")
        load = os.getloadavg()[0]
        started = time.perf_counter()
        out = import_folder(folder, Path(tmp) / "cache", args.image_size, workers=args.workers)
        seconds = time.perf_counter() - started
        info = json.loads((out / "import.json").read_text())
        print(f"imported {args.steps:,} steps -> {args.image_size}x{args.image_size} in {seconds:.1f} s "
              f"({args.steps / seconds:,.0f} steps/s, {info['workers']} workers, {os.cpu_count()} CPUs; "
              f"load average {load:.1f} before, {os.getloadavg()[0]:.1f} after); goal <= 60 s: "
              f"{'met' if seconds <= 60 else 'NOT met'}")  # fmt: skip
        started = time.perf_counter()
        import_folder(folder, Path(tmp) / "cache", args.image_size, workers=args.workers)
        print(f"cached: {time.perf_counter() - started:.2f} s (check lines + stat images)")


if __name__ == "__main__":
    main()
