"""Which MiniWoB++ tasks have an oracle, and which of those are validated.

The oracles themselves run in the page (probe.js, `oracles`): each is a few lines that find the element
the next click must land on, from the DOM and the instruction, or from the task's JS state where the
answer is kept only there. MiniWobEnv.oracle() turns that element into an OracleStep (a click at a point
of the element that a real click hits, and its box).
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass, field
from importlib.metadata import version

from lnn.envs.base import Env, Observation, OracleStep

SINGLE_CLICK = "single-click"
TWO_CLICK = "two-click"

# Every task probe.js has an oracle for, with the most clicks an episode takes.
ORACLE_KINDS: dict[str, str] = {
    "click-test": SINGLE_CLICK,
    "click-test-2": SINGLE_CLICK,
    "click-button": SINGLE_CLICK,
    "click-link": SINGLE_CLICK,
    "click-dialog": SINGLE_CLICK,
    "click-dialog-2": SINGLE_CLICK,
    "click-tab": SINGLE_CLICK,
    "click-color": SINGLE_CLICK,
    "click-shape": SINGLE_CLICK,
    "click-widget": SINGLE_CLICK,
    "focus-text": SINGLE_CLICK,
    "focus-text-2": SINGLE_CLICK,
    "identify-shape": SINGLE_CLICK,
    "grid-coordinate": SINGLE_CLICK,
    "count-shape": SINGLE_CLICK,
    "count-sides": SINGLE_CLICK,
    "unicode-test": SINGLE_CLICK,
    "email-inbox-delete": SINGLE_CLICK,
    "navigate-tree": TWO_CLICK,  # 1 or 2: the target may sit in a collapsed folder (folders nest 1 deep)
    "click-option": TWO_CLICK,
    "click-collapsible-nodelay": TWO_CLICK,
    "click-tab-2-easy": SINGLE_CLICK,  # one tab only: the link is always on the open tab
    "click-pie-nodelay": TWO_CLICK,
}

# Oracles below 99% success in experiments/miniwob/validate_oracles.py, and why.
FAILED_VALIDATION: dict[str, str] = {
    "click-pie-nodelay": "78% of 100 seeds: on ~1 seed in 5 the item asked for is the wheel's pre-selected "
    "one, which never receives a real click (see its oracle in probe.js)",
}

# The oracles that succeeded on >= 99% of 100 seeds (table: experiments/miniwob/oracle_validation.md).
# Other code (dataset generation, evaluation) uses these.
ORACLE_TASKS: dict[str, str] = {task: kind for task, kind in ORACLE_KINDS.items() if task not in FAILED_VALIDATION}


def oracle_code() -> str:
    """What decides the oracle's episodes beyond the env's settings (recording caches hash it): this module,
    the page probe with the oracles, MiniWobEnv.oracle (element -> click point) and the miniwob package's
    version (its task pages)."""
    from lnn.envs.miniwob import env

    return "\n".join([inspect.getsource(sys.modules[__name__]), env.PROBE_JS, inspect.getsource(env.MiniWobEnv.oracle),
                      f"miniwob=={version('miniwob')}"])  # fmt: skip


@dataclass
class OracleEpisode:
    """One episode played by a task's oracle: its steps, and how it ended."""

    task: str
    seed: int
    success: bool
    raw_reward: float
    steps: list[tuple[Observation, OracleStep]] = field(default_factory=list)  # observation before each action
    reason: str | None = None  # the task's reward reason, or why the episode failed


def run_oracle_episode(env: Env, seed: int, task: str | None = None, max_steps: int = 8) -> OracleEpisode:
    """Reset to (seed, task) and follow env.oracle() until the episode ends or max_steps actions.

    Raises EpisodeAborted (browser fault) and OracleError (no target found) like the env does.
    """
    obs = env.reset(seed, task)
    episode = OracleEpisode(obs.task, seed, success=False, raw_reward=0.0)
    for _ in range(max_steps):
        step = env.oracle()
        episode.steps.append((obs, step))
        obs, reward, done, info = env.step(step.action)
        if done:
            episode.success, episode.raw_reward, episode.reason = info["success"], reward, info["reason"]
            return episode
    episode.reason = f"not done after {max_steps} oracle steps"
    return episode
