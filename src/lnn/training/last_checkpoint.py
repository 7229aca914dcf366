"""The resume point that a killed run continues from (conf/callbacks/default.yaml `last`).

Apart from lnn.training.resume, which train.py imports before Hydra starts: importing Lightning that early
changes how its log lines reach the console.
"""

from lightning.pytorch.callbacks import ModelCheckpoint


class LastCheckpoint(ModelCheckpoint):
    """The resume point: every N training steps, except on an epoch's last batch, and at each epoch's end.

    On an epoch's last batch the epoch's validation has yet to run, but Lightning resuming from there takes it
    as done (and the epoch's end with it): that save is left to the epoch's end, after its validation.
    (ModelCheckpoint takes every_n_train_steps or every_n_epochs, not both.)
    """

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if batch_idx + 1 < trainer.num_training_batches:
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if not self._should_skip_saving_checkpoint(trainer):  # not saved at this step yet
            self._save_topk_checkpoint(trainer, self._monitor_candidates(trainer))
