"""Envs by config name (`data.env=gui`), imported lazily: MiniWoB pulls in Playwright."""

from __future__ import annotations

from importlib import import_module

from lnn.envs.base import Env
from lnn.errors import ConfigError

# name -> (module, Env class, the module's task registry: {task: spec with a .kind})
ENVS = {
    "gui": ("lnn.envs.gui", "GuiEnv", "TASKS"),
}


def _entry(name: str):
    if name not in ENVS:
        raise ConfigError("env", f"unknown env {name!r}; available: {', '.join(ENVS)}")
    module, cls, tasks = ENVS[name]
    module = import_module(module)
    return getattr(module, cls), getattr(module, tasks)


def env_tasks(name: str) -> tuple[str, ...]:
    return tuple(_entry(name)[1])


def task_kinds(name: str) -> dict[str, str]:
    """{task: kind}, kind one of single_step, multi_step, memory (MiniWoB: single_click, two_click)."""
    return {task: getattr(spec, "kind", "") for task, spec in _entry(name)[1].items()}


def check_tasks(name: str, tasks) -> tuple[str, ...]:
    """The tasks to use (all when None); an unknown one raises ConfigError listing the available."""
    available = env_tasks(name)
    if tasks is None:
        return available
    for task in tasks:
        if task not in available:
            raise ConfigError("tasks", f"unknown task family {task!r}; available: {', '.join(available)}")
    if not tasks:
        raise ConfigError("tasks", f"is empty; choose from {', '.join(available)}")
    return tuple(tasks)


def make_env(name: str, **kwargs) -> Env:
    return _entry(name)[0](**kwargs)
