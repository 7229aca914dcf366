"""Training steps of several setups taking turns batch by batch, so machine load hits all of them alike."""

from __future__ import annotations

import time


def training_steps_in_turn(setups: dict, batches: list, steps: int, warmup: int = 2) -> tuple[dict, dict]:
    """setups {name: (PolicyModule, optimizer)}: forward, losses, backward and the optimizer step on each batch in
    turn -> ({name: seconds of each measured step}, {name: real frames trained on in them})."""
    seconds = {name: [] for name in setups}
    frames = {name: 0 for name in setups}
    for i in range(steps + warmup):
        batch = batches[i % len(batches)]
        for name, (module, opt) in setups.items():
            start = time.perf_counter()
            loss = module._step(batch, "train")
            opt.zero_grad()
            loss.backward()
            opt.step()
            if i >= warmup:
                seconds[name].append(time.perf_counter() - start)
                frames[name] += int(batch["mask"].sum())
    return seconds, frames
