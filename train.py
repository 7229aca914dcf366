"""Train a liquid policy: `python train.py [model=lite solver=rk4 ...]` (options: README.md, conf/)."""

import hydra
from omegaconf import DictConfig, OmegaConf

from lnn.training.resume import run_dir, sweep_dir

if not OmegaConf.has_resolver("lnn_run_dir"):  # before Hydra resolves hydra.run.dir / hydra.sweep.dir
    OmegaConf.register_new_resolver("lnn_run_dir", run_dir)
    OmegaConf.register_new_resolver("lnn_sweep_dir", lambda d, t, r, o: sweep_dir(d, t, r, tuple(o)))


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    from hydra.core.hydra_config import HydraConfig

    from lnn.config import run_or_explain
    from lnn.training.run import train

    results = run_or_explain(train, cfg, overrides=HydraConfig.get().job.override_dirname)
    return None if results is None else results.get(cfg.optimized_metric)  # the value Optuna optimises


if __name__ == "__main__":
    main()
