"""One training run from a resolved config: check, build, fit (resuming), evaluate, report."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import lightning.pytorch as pl
import torch

from lnn.config import InstantiationException, instantiate, instantiate_checked, save_config
from lnn.errors import ConfigError
from lnn.rollout import split_jobs
from lnn.runs import (CONFIG, RESULTS, find_checkpoint, load_weights, model_weights, read_checkpoint, read_results,
                      run_dir_of)  # fmt: skip
from lnn.training.closed_loop import ClosedLoopEval, evaluate_model, write_success_report
from lnn.training.module import PolicyModule
from lnn.training.resume import LAST_CHECKPOINT, finished_results, fitted, read_run, write_run
from lnn.training.tau_plots import TauPlots

log = logging.getLogger("lnn")
IMPROVE_INITS = ("checkpoint", "scratch")  # improve.init


def check_run_config(cfg) -> None:
    """Checks of keys no constructor sees."""
    if cfg.get("evaluate") is not None and cfg.evaluate.episodes_per_task < 1:  # null: no env to evaluate in
        raise ConfigError("evaluate.episodes_per_task", f"must be >= 1, got {cfg.evaluate.episodes_per_task}")
    check_improve(cfg.get("improve") or {})
    resume = str(cfg.resume)
    if resume not in ("auto", "false", "False", "None", "null", "") and not Path(resume, LAST_CHECKPOINT).exists():
        raise ConfigError(f"resume={resume}", f"has no {LAST_CHECKPOINT}; give a run directory with one, or resume=false")


def check_improve(improve) -> None:
    if improve.get("from") is None:
        return
    find_checkpoint(improve["from"], key="improve.from")
    n = improve.get("episodes_per_task")
    if not (isinstance(n, int) and n >= 1):
        raise ConfigError("improve.episodes_per_task", f"must be an integer >= 1, got {n}")
    if improve.get("init") not in IMPROVE_INITS:
        raise ConfigError("improve.init", f"must be one of {', '.join(IMPROVE_INITS)}, got {improve.get('init')!r}")


def improve_from(improve, datamodule, module, out: Path, resuming: bool, write: bool) -> None:
    """improve.from: start from its weights (improve.init=checkpoint, unless resuming: the run's own then),
    then have its policy play fresh training seeds; the datamodule trains on those episodes too, and the
    rounds of own episodes (lnn.data.improve.own_datasets) go to the run's improve.json."""
    from lnn.data.improve import IMPROVE, own_datasets

    if not hasattr(datamodule, "own") or getattr(datamodule, "env", None) is None:
        raise ConfigError("improve.from", "needs data with an env and its oracle to play in (data=miniwob or gui)")
    found = find_checkpoint(improve["from"], key="improve.from")
    if improve["init"] == "checkpoint" and not resuming:
        try:
            load_weights(module.model, model_weights(read_checkpoint(found.checkpoint), found.checkpoint),
                         found.checkpoint, "this run")  # fmt: skip
        except ConfigError as e:
            raise ConfigError("improve.init=checkpoint", f"{e.message}; train the same model, or improve.init=scratch") from None
    rounds = own_datasets(found.checkpoint, datamodule.env, datamodule.tasks, improve["episodes_per_task"],
                          datamodule.oracle_train_seeds, datamodule.env_kwargs, datamodule.max_steps,
                          datamodule.data_dir, datamodule.record_workers)  # fmt: skip
    datamodule.own = [r["dataset"] for r in rounds]
    if write:
        write_run(out, IMPROVE, policy=str(found.checkpoint), init=improve["init"], rounds=rounds)


def report_improvement(out: Path, results: dict) -> None:
    """eval/improve.md of a run trained on a policy's own episodes: per task, the episodes kept and relabelled,
    and the test success of the policy that played them beside this run's."""
    from lnn.data.improve import IMPROVE, format_outcomes

    info = read_run(out, IMPROVE)
    if not info:
        return
    before = read_results(run_dir_of(Path(info["policy"])))
    table = format_outcomes(info["rounds"][-1]["per_task"], before, results)
    (out / "eval" / "improve.md").write_text(f"# Own episodes of {info['policy']}, and what training on them bought\n\n{table}")
    log.info("own episodes, and test success before / after:\n" + table)


def build(cfg):
    """Everything the run needs, built (and so validated) before any data is recorded."""
    check_run_config(cfg)
    model = instantiate_checked(cfg.model, "model")
    datamodule = instantiate_checked(cfg.data, "data")
    optimizer = instantiate_checked(cfg.module.optimizer, "module.optimizer")
    module = PolicyModule(model, optimizer, **{k: v for k, v in cfg.module.items() if k != "optimizer"})
    callbacks = {name: instantiate(c) for name, c in (cfg.get("callbacks") or {}).items() if c is not None}
    if getattr(datamodule, "env", None) is None:  # a folder of screenshots: nothing to act in
        for name, callback in callbacks.items():
            if isinstance(callback, (ClosedLoopEval, TauPlots)):
                raise ConfigError(f"callbacks.{name}", "acts in an env, and this data has none; set it to null "
                                  "(data=folder does) or use data with an env (gui, miniwob)")  # fmt: skip
    callbacks = list(callbacks.values())
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values() if c is not None]
    try:
        trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    except InstantiationException as e:
        raise ConfigError("trainer", str(e.__cause__ or e)) from None
    return model, datamodule, module, trainer


def train(cfg, overrides: str = "") -> dict:
    """Fit, evaluate and report; `overrides` (Hydra's override_dirname) identifies the command for resume."""
    out = Path(cfg.paths.output_dir)
    if str(cfg.resume) == "auto" and (done := finished_results(out)) is not None:
        log.info(f"{out} finished before: its recorded results (a sweep run again skips its finished jobs)")
        return done
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    model, datamodule, module, trainer = build(cfg)
    last = out / LAST_CHECKPOINT
    ckpt_path = str(last) if str(cfg.resume) not in ("false", "False") and last.exists() else None
    fit = fitted(out) if ckpt_path else None
    if trainer.is_global_zero:
        out.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out / CONFIG)
        status = "running" if fit is None else "fitted"  # killed again during the evaluation: still fitted
        write_run(out, overrides=overrides, status=status, started=time.strftime("%Y-%m-%d %H:%M:%S"))
        params = sum(p.numel() for p in model.parameters())
        log.info(f"run directory: {out}  ({params:,} parameters)")
        if fit is not None:
            log.info(f"{out} finished its training before: only the final evaluation runs again")
        elif ckpt_path:
            log.info(f"resuming from {ckpt_path}: pass resume=false to start a new run instead")

    if fit is None and (cfg.get("improve") or {}).get("from") is not None:
        improve_from(cfg.improve, datamodule, module, out, resuming=ckpt_path is not None, write=trainer.is_global_zero)
    if cfg.get("compile"):
        module.model = torch.compile(module.model)

    if fit is None:
        started = time.time()
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
        fit = {"fit_seconds": round(time.time() - started, 1), "global_step": trainer.global_step,
               "world_size": trainer.world_size}  # fmt: skip
        fit |= {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
        fit |= {"best_checkpoint": best_checkpoint(trainer) or ""} | best_score(trainer)
        if trainer.is_global_zero:  # a run killed from here on redoes only the final evaluation
            write_run(out, status="fitted", fit=fit)

    results = dict(fit)
    if trainer.is_global_zero:
        if getattr(datamodule, "env", None) is not None:
            results |= final_evaluation(cfg, trainer, module, datamodule, out, fit)
            report_improvement(out, results)
        else:  # no env, no closed-loop success: the best checkpoint by the offline metric it monitors (in `fit`)
            log.info("no env to act in: no closed-loop evaluation; offline validation metrics are in results.json")
        (out / RESULTS).write_text(json.dumps(results, indent=1))
        write_run(out, status="finished", finished=time.strftime("%Y-%m-%d %H:%M:%S"))
        log.info(f"results: {out} (checkpoints/, {'eval/success.md, ' if getattr(datamodule, 'env', None) else ''}results.json)")
    return results


def best_checkpoint(trainer: pl.Trainer) -> str | None:
    cb = best_checkpoint_callback(trainer)
    return cb.best_model_path if cb is not None else None


def best_checkpoint_callback(trainer: pl.Trainer):
    for cb in trainer.checkpoint_callbacks:
        if getattr(cb, "monitor", None) and cb.best_model_path:
            return cb
    return None


def best_score(trainer: pl.Trainer) -> dict:
    """The monitored metric and the best checkpoint's value of it (what a sweep ranks jobs by)."""
    cb = best_checkpoint_callback(trainer)
    if cb is None or cb.best_model_score is None:
        return {}
    return {"monitor": cb.monitor, "best_score": float(cb.best_model_score)}


def final_evaluation(cfg, trainer, module, datamodule, out: Path, fit: dict) -> dict:
    """Closed-loop success of the best checkpoint on the held-out test seeds: table, plot, logged."""
    if fit["best_checkpoint"]:
        state = torch.load(fit["best_checkpoint"], map_location="cpu", weights_only=False)["state_dict"]
        module.load_state_dict(state)
    model = module.model.to(module.device if module.device.type != "meta" else "cpu")
    jobs = split_jobs(datamodule.tasks, "test", cfg.evaluate.episodes_per_task)
    results = evaluate_model(model, datamodule, jobs, cfg.evaluate.parallel, desc="test episodes")
    title = f"{cfg.model.get('core', 'model')} / {cfg.model.get('solver', '')}: closed-loop success on test seeds"
    rows = write_success_report(results, out / "eval", datamodule.env, title)
    metrics = {f"test/success/{r['task'].strip('[]')}": r["success"] for r in rows}
    for logger in trainer.loggers:
        logger.log_metrics(metrics, step=fit["global_step"])
        logger.save()
    log.info("closed-loop success on test seeds:\n" + (out / "eval" / "success.md").read_text())
    return metrics
