"""A callback for the exact-resume tests: SIGKILL this process at a chosen point (env LNN_KILL_AT), as
`kill -9` would, but at an exact step. Without LNN_KILL_AT it does nothing, so the same command resumes.

LNN_KILL_AT=step:N        when training step N starts (global_step == N: N steps done)
LNN_KILL_AT=validation:E  when the validation of epoch E starts
LNN_KILL_AT=evaluation    when the final evaluation (closed loop on the test seeds) starts its episodes
LNN_KILL_JOB=J            only in job J of a sweep (Hydra's job number): the jobs before it finish
"""

import os
import signal
import sys

import lightning.pytorch as pl


def _kill_if(point: str) -> None:
    if os.environ.get("LNN_KILL_AT") == point and _this_job():
        os.kill(os.getpid(), signal.SIGKILL)


def _this_job() -> bool:
    if "LNN_KILL_JOB" not in os.environ:
        return True
    from hydra.core.hydra_config import HydraConfig

    return str(HydraConfig.get().job.num) == os.environ["LNN_KILL_JOB"]


class KillAt(pl.Callback):
    def on_train_start(self, trainer, pl_module) -> None:  # what a resumed run skipped
        print(f"KillAt: training starts at step {trainer.global_step}", file=sys.stderr)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        _kill_if(f"step:{trainer.global_step}")

    def on_validation_start(self, trainer, pl_module) -> None:
        _kill_if(f"validation:{trainer.current_epoch}")

    def on_fit_start(self, trainer, pl_module) -> None:
        if os.environ.get("LNN_KILL_AT") == "evaluation" and _this_job():
            from lnn.training import run

            def killed(*args, **kwargs):
                _kill_if("evaluation")

            assert hasattr(run, "evaluate_model"), "the final evaluation no longer calls run.evaluate_model"
            run.evaluate_model = killed  # what final_evaluation calls (validation calls its own)
