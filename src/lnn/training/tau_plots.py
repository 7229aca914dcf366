"""A callback that plots τ on a few validation episodes during training, so a run shows how τ evolved.

Every `every_n_epochs` (and after the last epoch), on rank 0 only, the model acts out `episodes_per_task`
validation episodes per task family (closed loop, as `val/success` does) and writes into `dirpath`:

    epoch_NNN/tau_over_steps.png   τ of each liquid layer over each episode's steps, with its frames
    epoch_NNN/tau_by_task.png      the distribution of τ per layer across task families
    tau_evolution.png              median and quartiles of τ per layer against the epoch
    history.json                   the numbers behind tau_evolution.png

The plots are the export's (lnn.plots), so training and export read the same way.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import lightning.pytorch as pl
import numpy as np

from lnn.rollout import split_jobs
from lnn.training.closed_loop import evaluate_model

log = logging.getLogger("lnn")


class TauPlots(pl.Callback):
    def __init__(self, dirpath: str = "tau", every_n_epochs: int = 1, episodes_per_task: int = 1, parallel: int = 32):
        if every_n_epochs < 1 or episodes_per_task < 1:
            from lnn.errors import ConfigError

            key = "every_n_epochs" if every_n_epochs < 1 else "episodes_per_task"
            raise ConfigError(f"callbacks.tau_plots.{key}", "must be >= 1")
        self.dirpath = Path(dirpath)
        self.every_n_epochs, self.episodes_per_task, self.parallel = every_n_epochs, episodes_per_task, parallel
        self.history: list[dict] = []

    def state_dict(self) -> dict:
        return {"history": self.history}

    def load_state_dict(self, state_dict: dict) -> None:
        self.history = list(state_dict.get("history", []))

    def _due(self, trainer: pl.Trainer) -> bool:
        epoch = trainer.current_epoch
        last = trainer.max_epochs is not None and epoch + 1 >= trainer.max_epochs
        return (epoch + 1) % self.every_n_epochs == 0 or last

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero or not self._due(trainer):
            return
        if not pl_module.model.liquid_cells():
            return  # no liquid layers (the feed-forward ablation): no τ
        dm = trainer.datamodule
        jobs = split_jobs(dm.tasks, "val", self.episodes_per_task)
        results = evaluate_model(pl_module.model, dm, jobs, self.parallel, pl_module.device, record=True,
                                 desc="τ plot episodes")  # fmt: skip
        records = [episode_record(r) for r in results if r.trace]
        if not records:
            return
        self.write(records, trainer.current_epoch, tau_bounds(pl_module.model))

    def write(self, records, epoch: int, bounds: tuple[float, float]) -> None:
        from lnn import plots

        folder = self.dirpath / f"epoch_{epoch:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        first = {}
        for rec in records:
            first.setdefault(rec.task, rec)
        title = f"Epoch {epoch}: τ of each liquid layer over validation episodes (the model acting)"
        plots.plot_tau_steps(list(first.values()), bounds, folder / "tau_over_steps.png", title)
        plots.plot_tau_by_task(records, bounds, folder / "tau_by_task.png")
        self.history = [h for h in self.history if h["epoch"] != epoch]
        self.history.append({"epoch": epoch, "layers": plots.tau_summary(records)})
        self.history.sort(key=lambda h: h["epoch"])
        plots.plot_tau_evolution(self.history, bounds, self.dirpath / "tau_evolution.png")
        (self.dirpath / "history.json").write_text(json.dumps(self.history, indent=1))


def tau_bounds(model) -> tuple[float, float]:
    cell = model.liquid_cells()[0]
    return float(cell.tau_min), float(cell.tau_max)


def episode_record(result):
    """An lnn.rollout EpisodeResult with a trace -> plots.EpisodeRecord (right: the episode went on / succeeded)."""
    from lnn.plots import EpisodeRecord

    trace = result.trace
    steps = len(trace)
    actions = [step["action"] for step in trace]
    correct = [True] * (steps - 1) + [bool(result.success)]
    label = f"seed {result.seed}: " + ("success" if result.success else f"failed — {result.failure[:60]}")
    return EpisodeRecord(
        task=result.task,
        frames=[step["screenshot"] for step in trace],
        tau=np.array([step["tau"] for step in trace], dtype=np.float32),  # (T, layers, k)
        actions=[a.type for a in actions],
        points=[(a.x, a.y) if a.type == "click" else None for a in actions],
        correct=correct,
        new_episode=[t == 0 for t in range(steps)],
        label=label,
    )
