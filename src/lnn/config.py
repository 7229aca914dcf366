"""The one library module that speaks Hydra / OmegaConf: loading, saving and instantiating configs, and
turning bad input into one line at the entry points (train.py, export.py, python -m lnn.agent).

Everything else takes plain arguments; `lnn.runs` reads run configs as plain YAML.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from lnn.errors import ConfigError, DataError, SetupError, missing_extra

log = logging.getLogger("lnn")

__all__ = ["InstantiationException", "instantiate", "instantiate_checked", "in_multirun", "load_config", "run_or_explain", "save_config"]


def in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def run_or_explain(task, *args, **kwargs):
    """Run task; on a config/data/setup error print one line and exit 2 (in a sweep: log it, return None)."""
    try:
        return task(*args, **kwargs)
    except ConfigError as e:
        message = f"error: {e.key} — {e.message}"
    except (DataError, SetupError) as e:  # SetupError: e.g. Chromium missing, with how to install it
        message = f"error: {e}"
    except Exception as e:  # an optional extra not installed (perhaps inside Hydra's instantiate): name it
        setup = missing_extra(e)
        if setup is None:
            raise
        message = f"error: {setup}"
    if in_multirun():
        log.error(message)
        return None
    print(message, file=sys.stderr)
    sys.exit(2)


def instantiate_checked(cfg: DictConfig, group: str, **kwargs):
    """instantiate(cfg), turning a ConfigError about argument `k` into one about `<group>.k`; a DataError as is."""
    try:
        return instantiate(cfg, **kwargs)
    except InstantiationException as e:
        cause = e.__cause__
        if isinstance(cause, ConfigError):
            key = f"{group}.{cause.key}"
            value = OmegaConf.select(cfg, cause.key, default=None)
            shown = f"{key}={value}" if value is not None else key
            raise ConfigError(shown, cause.message) from None
        if isinstance(cause, DataError):  # e.g. a bad line of a folder dataset, found while checking it
            raise cause from None
        raise


def load_config(path: Path) -> DictConfig:
    """A run's config.yaml; DataError if it is unreadable or has no `model` section."""
    try:
        cfg = OmegaConf.load(path)
    except Exception as e:
        raise DataError(f"{path}: not a readable config ({type(e).__name__}: {e})") from e
    if not isinstance(cfg, DictConfig) or "model" not in cfg:
        raise DataError(f"{path}: has no `model` section; is it a train.py run's config.yaml?")
    return cfg


def save_config(cfg: DictConfig, path: Path) -> None:
    """The resolved config, as plain YAML (what lnn.runs reads back)."""
    OmegaConf.save(cfg, path, resolve=True)
