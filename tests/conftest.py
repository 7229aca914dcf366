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
# CI=true: a skip means something CI is meant to have is missing (onnx, Chromium, onnxruntime-web, ...);
# it fails instead, naming what is missing. Only GPU tests may skip there.
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _ci_refuses_skip(report, what: str) -> None:
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = f"CI=true: {what} would be skipped, but CI must have what it needs ({reason})"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail") and item.get_closest_marker("gpu") is None:
        _ci_refuses_skip(report, item.nodeid)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    report = (yield).get_result()
    if IN_CI and report.skipped:  # a module-level importorskip
        _ci_refuses_skip(report, collector.nodeid)


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
