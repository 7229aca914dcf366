"""Frames per second of the default training step, liquid fast path vs the reference loop, one run.

    python benchmarks/bench_train.py [--steps 40] [--size 64]

Times forward + backward + AdamW of the default Lite (conf/model/lite.yaml) on batches of recorded
GUI episodes, alternating the two implementations so machine load hits both alike, and prints
frames/s and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from functools import partial
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from turns import training_steps_in_turn  # noqa: E402

from lnn.data import EpisodeDataModule  # noqa: E402
from lnn.models import VisionLNNLite  # noqa: E402
from lnn.training.module import PolicyModule  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--solver", default="rk4")
    p.add_argument("--data-dir", default=None)
    args = p.parse_args()

    data_dir = args.data_dir or tempfile.mkdtemp(prefix="lnn-bench-")
    dm = EpisodeDataModule(image_size=args.size, episodes_per_task={"train": 64, "val": 1}, batch_size=args.batch,
                           data_dir=data_dir)  # fmt: skip
    dm.prepare_data()
    dm.setup()
    batches = list(dm.train_dataloader())
    setups = {}
    for impl in ("reference", "auto"):
        torch.manual_seed(0)
        model = VisionLNNLite(image_size=args.size, solver=args.solver, impl=impl)
        module = PolicyModule(model, partial(torch.optim.AdamW, lr=1e-3))
        module.log = lambda *a, **k: None
        setups[impl] = (module, torch.optim.AdamW(module.parameters(), lr=1e-3))
    times, frames = training_steps_in_turn(setups, batches, args.steps)
    rate = {impl: frames[impl] / sum(times[impl]) for impl in setups}
    print(f"default Lite training step, {args.size} px, batch {args.batch} episodes, {args.solver}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")  # fmt: skip
    for impl in setups:
        name = "fused (default)" if impl == "auto" else impl
        print(f"  {name:16s} {rate[impl]:7.0f} frames/s   median step {1000 * statistics.median(times[impl]):.0f} ms")
    print(f"  speed-up: {rate['auto'] / rate['reference']:.2f}x")


if __name__ == "__main__":
    main()
