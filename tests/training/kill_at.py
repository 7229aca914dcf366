"""A callback for the exact-resume tests: SIGKILL this process at a chosen point (env LNN_KILL_AT), as
`kill -9` would, but at an exact step. Without LNN_KILL_AT it does nothing, so the same command resumes.

LNN_KILL_AT=step:N        when training step N starts (global_step == N: N steps done)
LNN_KILL_AT=validation:E  when the validation of epoch E starts
"""

import os
import signal

import lightning.pytorch as pl


def _kill_if(point: str) -> None:
    if os.environ.get("LNN_KILL_AT") == point:
        os.kill(os.getpid(), signal.SIGKILL)


class KillAt(pl.Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        _kill_if(f"step:{trainer.global_step}")

    def on_validation_start(self, trainer, pl_module) -> None:
        _kill_if(f"validation:{trainer.current_epoch}")
