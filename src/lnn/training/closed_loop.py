"""Closed-loop success in the env: during validation (`val/success`) and on test seeds at the end."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import torch

from lnn import rollout
from lnn.envs.registry import make_env, task_kinds
from lnn.rollout import TorchPolicy, run_episodes, split_jobs


def evaluate_model(model, datamodule, jobs, parallel: int = 64, device=None, record: bool = False, desc="evaluating"):
    """Run `model` on (task, seed) jobs in `parallel` envs of the datamodule's kind (at most its max_envs),
    each episode for at most the datamodule's max_steps actions.

    Every env is closed afterwards (MiniWoB: the browsers), also when the evaluation fails.
    """
    device = device or next(model.parameters()).device
    limit = getattr(datamodule, "max_envs", None) or parallel
    envs = []
    try:
        for _ in range(min(parallel, limit, max(1, len(jobs)))):
            envs.append(make_env(datamodule.env, tasks=list(datamodule.tasks), **datamodule.env_kwargs))
        max_steps = getattr(datamodule, "max_steps", None)
        return run_episodes(TorchPolicy(model, device), envs, jobs, record=record, desc=desc, max_steps=max_steps)
    finally:
        for env in envs:
            env.close()


def write_success_report(results, out_dir: Path, env: str, title: str) -> list[dict]:
    """success.md, success.csv and success.png in out_dir (task kinds of `env`); returns the table rows."""
    return rollout.write_success_report(results, out_dir, task_kinds(env), title)


class ClosedLoopEval(pl.Callback):
    """Logs `val/success` (and per task) from episodes on the validation seeds, split across ranks."""

    def __init__(self, episodes_per_task: int = 20, parallel: int = 64):
        self.episodes_per_task, self.parallel = episodes_per_task, parallel

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        dm = trainer.datamodule
        jobs = split_jobs(dm.tasks, "val", self.episodes_per_task)
        mine = jobs[trainer.global_rank :: trainer.world_size]
        results = evaluate_model(pl_module.model, dm, mine, self.parallel, pl_module.device, desc="val episodes")
        wins = torch.zeros(len(dm.tasks), device=pl_module.device)
        for r in results:
            wins[dm.tasks.index(r.task)] += r.success
        wins = trainer.strategy.reduce(wins, reduce_op="sum") if trainer.world_size > 1 else wins
        rates = wins / self.episodes_per_task
        # already summed over ranks: sync_dist averages equal values, and keeps Lightning content
        pl_module.log("val/success", rates.mean(), prog_bar=True, sync_dist=True)
        for task, rate in zip(dm.tasks, rates):
            pl_module.log(f"val/success/{task}", rate, sync_dist=True)
