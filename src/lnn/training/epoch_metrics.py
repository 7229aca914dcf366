"""The running epoch averages of `self.log(..., on_epoch=True)` are in the checkpoint and come back mid-epoch.

Lightning keeps them in the training loop's result collection and does not checkpoint it: a run killed
mid-epoch and resumed averaged only the steps after the resume point into its `train/*_epoch` row. Here a
checkpoint taken inside an epoch carries each metric's running reduction (for a mean: the sum of
value × batch size and the summed batch size) with the arguments it was logged with, and the resumed run
recreates those metrics before its first step and marks that step as no epoch's first (whose first
`self.log` would zero them), so the next `self.log` adds to the same sums in the same order as the run
never killed (bitwise).
"""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from lightning.pytorch.trainer.connectors.logger_connector.result import _Metadata, _ResultMetric, _Sync

KEY = "running_epoch_metrics"
META = ("fx", "name", "prog_bar", "logger", "on_step", "on_epoch", "enable_graph", "add_dataloader_idx",
        "dataloader_idx", "metric_attribute")  # fmt: skip


def save(trainer: pl.Trainer) -> dict | None:
    """The training epoch's running metrics, when the checkpoint is taken before the epoch end logs them."""
    progress = trainer.fit_loop.epoch_progress.current
    if not trainer.training or progress.processed == progress.started:
        return None  # outside an epoch's batches: nothing for a resumed run to carry on
    metrics = {}
    for key, metric in trainer.fit_loop.epoch_loop._results.items():
        meta = metric.meta
        if not metric.is_tensor or not meta.on_epoch or metric.has_reset or meta.sync.group is not None:
            continue
        if getattr(torch, meta.reduce_fx.__name__, None) is not meta.reduce_fx:
            continue  # a reduction that cannot be named again
        metrics[key] = {
            "meta": {f: getattr(meta, f) for f in META} | {"reduce_fx": meta.reduce_fx.__name__},
            "sync": {"should": meta.sync.should, "rank_zero_only": meta.sync.rank_zero_only},
            "state": {s: getattr(metric, s).detach().cpu().clone() for s in metric._defaults},
        }
    return {"epoch": trainer.current_epoch, "metrics": metrics}


def restore(trainer: pl.Trainer, saved: dict | None) -> None:
    """Put the saved running metrics back into the training loop's results (call at train start)."""
    if not saved or saved["epoch"] != trainer.current_epoch:
        return
    results = trainer.fit_loop.epoch_loop._results
    for key, entry in saved["metrics"].items():
        meta = _Metadata(**entry["meta"])  # reduce_fx by name, as self.log accepts it
        # as LightningModule.log builds it, so its next self.log finds the same metadata
        meta.sync = _Sync(fn=trainer.strategy.reduce, _should=entry["sync"]["should"],
                          rank_zero_only=entry["sync"]["rank_zero_only"])  # fmt: skip
        metric = _ResultMetric(meta, is_tensor=True)
        for name, value in entry["state"].items():
            setattr(metric, name, value.clone())
        metric._update_count = 1  # it has been updated (before the kill): compute() need not warn
        results[key] = metric
    # the epoch goes on: its next batch is not a first one, whose first self.log would zero the sums
    trainer._logger_connector._first_loop_iter = False
