"""Training step and agent step of every core in the default Lite shell, one run, times as ratios to liquid.

    python benchmarks/bench_cores.py [--cores liquid,cfc,ltc,lstm,gru,feedforward] [--steps 20] [overrides ...]

Each core's model is the one `python train.py core=<core> [overrides]` trains (the Hydra config composed the same
way, so the same shell, budget and solver); the batches are recorded GUI episodes of the default tasks. The cores
take turns step by step, so machine load hits all of them alike. Printed per core: the median training step
(forward, losses, backward, AdamW) in ms and frames/s, the median agent step (one frame, batch 1, no grad) in ms,
and both as a ratio to liquid's.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from turns import training_steps_in_turn  # noqa: E402

from lnn.training.module import PolicyModule, images_to_float  # noqa: E402

CONF = Path(__file__).resolve().parents[1] / "conf"


def build(core: str, overrides: list[str], data_dir: str):
    """(PolicyModule, its optimizer) of train.py's config for this core."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[f"core={core}", f"paths.data_dir={data_dir}", *overrides])
    torch.manual_seed(0)
    with contextlib.redirect_stdout(io.StringIO()):  # "core=gru: width ..." for each non-liquid core
        model = instantiate(cfg.model)
    module = PolicyModule(model, instantiate(cfg.module.optimizer),
                          **{k: v for k, v in cfg.module.items() if k != "optimizer"})  # fmt: skip
    module.log = lambda *a, **k: None  # no trainer attached
    return module, instantiate(cfg.module.optimizer)(module.parameters()), cfg


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cores", default="liquid,cfc,ltc,lstm,gru,feedforward")
    p.add_argument("--steps", type=int, default=20, help="measured training steps per core (after 2 warm-up steps)")
    p.add_argument("--episodes", type=int, default=16, help="recorded training episodes per task")
    p.add_argument("overrides", nargs="*", help="Hydra overrides as train.py takes them, e.g. model.hold_input=true")
    args = p.parse_args()
    cores = args.cores.split(",")
    data_dir = tempfile.mkdtemp(prefix="lnn-bench-cores-")
    setups = {core: build(core, args.overrides, data_dir) for core in cores}
    cfg = setups[cores[0]][2]
    dm = instantiate(cfg.data, episodes_per_task={"train": args.episodes, "val": 1, "test": 1}, data_dir=data_dir)
    dm.prepare_data()
    dm.setup()
    batches = list(dm.train_dataloader())
    train_s, frames = training_steps_in_turn({core: setup[:2] for core, setup in setups.items()}, batches, args.steps)
    # the agent's step: one frame of one episode, the state carried
    first = batches[0]
    image = images_to_float(first["images"][:1, :1])[:, 0]
    step_s = {core: [] for core in cores}
    with torch.no_grad():
        states = {core: None for core in cores}
        for i in range(4 * args.steps + 5):
            for core, (module, _, _) in setups.items():
                model = module.model.eval()
                tokens = model.tokenize(first["task"][:1], first["instruction"][0][:1])
                start = time.perf_counter()
                out = model.step(image, tokens, states[core])
                if i >= 5:
                    step_s[core].append(time.perf_counter() - start)
                states[core] = out["state"]
    ms = lambda xs: 1000 * statistics.median(xs)  # noqa: E731
    ref = cores[0]
    print(f"default Lite shell ({' '.join(args.overrides) or 'no overrides'}), batch {cfg.data.batch_size} episodes, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads; ratios to {ref}")  # fmt: skip
    print(f"  {'core':12s} {'params':>9s} {'train step':>11s} {'frames/s':>9s} {'× ' + ref:>9s} {'agent step':>11s} {'× ' + ref:>9s}")
    for core, (module, _, _) in setups.items():
        params = sum(p.numel() for p in module.model.parameters())
        rate = frames[core] / sum(train_s[core])
        print(f"  {core:12s} {params:9,d} {ms(train_s[core]):8.0f} ms {rate:9.0f} {ms(train_s[core]) / ms(train_s[ref]):8.2f}x "
              f"{ms(step_s[core]):8.2f} ms {ms(step_s[core]) / ms(step_s[ref]):8.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
