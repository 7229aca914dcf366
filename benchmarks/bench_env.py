"""Frames per second of the embedded GUI env, one process.

    python benchmarks/bench_env.py [--seconds 2] [--sizes 64 96 128]

Each measurement runs oracle episodes (reset, then oracle + step until done) over every family in turn
and counts the frames returned (one per reset and one per step). Prints one row per image size, with
the frames/s of every family and of all of them together.
"""

from __future__ import annotations

import argparse
import time

from lnn.envs.gui import TASKS, GuiEnv


def frames_per_second(env: GuiEnv, task: str, seconds: float) -> float:
    frames, seed, start = 0, 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        env.reset(seed, task)
        frames, done = frames + 1, False
        while not done:
            _, _, done, _ = env.step(env.oracle().action)
            frames += 1
        seed += 1
    return frames / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=1.0, help="time spent per family and size")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 96, 128])
    args = parser.parse_args()
    names = list(TASKS)
    print(f"{'size':>5} " + " ".join(f"{n:>17}" for n in names) + f" {'all':>8}")
    for size in args.sizes:
        env = GuiEnv(image_size=size)
        rates = [frames_per_second(env, name, args.seconds) for name in names]
        overall = len(rates) / sum(1 / r for r in rates)  # frames/s when every family gets equal frames
        print(f"{size:>5} " + " ".join(f"{r:>17,.0f}" for r in rates) + f" {overall:>8,.0f}")
    print("frames/s (reset + oracle + step, one process)")


if __name__ == "__main__":
    main()
