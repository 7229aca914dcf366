"""Train a liquid policy: `python train.py [model=lite solver=rk4 ...]` (options: README.md, conf/)."""

import hydra
from omegaconf import DictConfig

from lnn.training.resume import register_resolvers

register_resolvers()  # before Hydra resolves hydra.run.dir


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    from hydra.core.hydra_config import HydraConfig

    from lnn.training.cli import run_or_explain
    from lnn.training.run import train

    results = run_or_explain(train, cfg, overrides=HydraConfig.get().job.override_dirname)
    return None if results is None else results.get("val/success")  # the value Optuna maximises


if __name__ == "__main__":
    main()
