import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import open_dict

from lnn.envs.miniwob.browser import DEFAULT_CHROMIUM

ROOT = Path(__file__).resolve().parents[1]


# MiniWoB in Chromium: the tests that need it carry `pytestmark = [pytest.mark.browser, needs_miniwob_browser]`
needs_miniwob_browser = pytest.mark.skipif(
    not (all(importlib.util.find_spec(m) for m in ("miniwob", "playwright")) and os.path.exists(DEFAULT_CHROMIUM)),
    reason=f"needs the miniwob and playwright packages and Chromium at {DEFAULT_CHROMIUM} "
    "(apt-get install -y chromium fonts-liberation)",
)


@pytest.fixture
def make_cfg(tmp_path):
    """compose() the train config with overrides, writing into tmp_path (as the template's tests do)."""

    def make(*overrides: str):
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            cfg = compose("train", overrides=list(overrides))
        with open_dict(cfg):
            cfg.paths.output_dir = str(tmp_path / "run")
            cfg.paths.log_dir = str(tmp_path / "logs")
            cfg.paths.data_dir = str(tmp_path / "data")
        return cfg

    yield make
    GlobalHydra.instance().clear()


def run_cli(*args: str, cwd: Path, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run an entry point as a user would, with LNN_ROOT (logs/, data_cache/) in cwd."""
    # this checkout's lnn first, as pytest's pythonpath=src does in-process (not another editable install)
    path = os.pathsep.join(p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH", "")) if p)
    full_env = {**os.environ, "LNN_ROOT": str(cwd), "PYTHONUNBUFFERED": "1", "PYTHONPATH": path, **(env or {})}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)
