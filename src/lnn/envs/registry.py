"""Envs by config name (`data.env=gui`, `data.env=miniwob`), imported lazily: MiniWoB pulls in Playwright.

The tasks an env offers for data and training are those with a (validated) oracle; MiniWobEnv itself can
open any MiniWoB++ page (the agent may run a policy on tasks without an oracle).
"""

from __future__ import annotations

import inspect
import sys
from importlib import import_module

from lnn.envs.base import Env
from lnn.errors import ConfigError

# name -> (module, Env class, the module's task registry: {task: spec with a .kind, or the kind itself})
ENVS = {
    "gui": ("lnn.envs.gui", "GuiEnv", "TASKS"),
    "miniwob": ("lnn.envs.miniwob", "MiniWobEnv", "ORACLE_TASKS"),  # kinds: single-click, two-click, multi-click, drag, typing
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
    """{task: kind}, kind one of single_step, multi_step, memory, timing (MiniWoB: single-click, two-click,
    multi-click, drag, typing)."""
    return {task: spec if isinstance(spec, str) else getattr(spec, "kind", "") for task, spec in _entry(name)[1].items()}


def check_tasks(name: str, tasks) -> tuple[str, ...]:
    """The tasks to use (all when None); an unknown one raises ConfigError listing the available.

    A kind in the list (e.g. `single-click` for MiniWoB, `memory` for gui) stands for all its tasks, in
    registry order.
    """
    available = env_tasks(name)
    if tasks is None:
        return available
    if isinstance(tasks, str):
        tasks = [tasks]
    kinds = task_kinds(name)
    chosen: list[str] = []
    for task in tasks:
        if task in available:
            chosen.append(task)
        elif task in set(kinds.values()):
            chosen += [t for t in available if kinds[t] == task]
        else:
            groups = ", ".join(sorted(set(kinds.values()) - {""}))
            raise ConfigError("tasks", f"unknown task {task!r}; available: {', '.join(available)} (or a kind: {groups})")
    if not chosen:
        raise ConfigError("tasks", f"is empty; choose from {', '.join(available)}")
    return tuple(dict.fromkeys(chosen))


def oracle_code(name: str) -> str:
    """The source (and versions) that decide the env's oracle episodes: a changed oracle must not reuse a cache.

    The env's package says it (its `oracle_code()`); for one that does not, the source of the env class's module.
    """
    cls, _ = _entry(name)
    own = getattr(import_module(ENVS[name][0]), "oracle_code", None)
    return own() if own is not None else inspect.getsource(sys.modules[cls.__module__])


def make_env(name: str, **kwargs) -> Env:
    return _entry(name)[0](**kwargs)
