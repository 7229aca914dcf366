"""Which MiniWoB++ tasks have an oracle, and which of those are validated.

The oracles themselves run in the page (probe.js, `oracles`): each is a few lines that read the ground
truth from the DOM and the instruction, or from the task's JS state where the answer is kept only there,
and return the next step from the current page: a click on an element (or at a point), a drag, text to
type or a key to press. MiniWobEnv.oracle() turns that step into an OracleStep (a click or press at a
point of the element that a real click hits, and its box; the field a type or key step goes to).
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass, field
from importlib.metadata import version

from lnn.envs.base import Env, Observation, OracleStep

# Kinds (task groups a config may name, e.g. data.tasks=[typing]): by the actions an episode takes.
SINGLE_CLICK = "single-click"  # one click
TWO_CLICK = "two-click"  # at most two clicks
MULTI_CLICK = "multi-click"  # clicks only, more than two
DRAG = "drag"  # at least one drag (and clicks, keys)
TYPING = "typing"  # typed text or key presses (and clicks)

# Every task probe.js has an oracle for, with its kind.
ORACLE_KINDS: dict[str, str] = {
    "click-test": SINGLE_CLICK,
    "click-test-2": SINGLE_CLICK,
    "click-test-transfer": SINGLE_CLICK,
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
    "email-inbox-important": SINGLE_CLICK,
    "navigate-tree": TWO_CLICK,  # 1 or 2: the target may sit in a collapsed folder (folders nest 1 deep)
    "click-option": TWO_CLICK,
    "click-collapsible-nodelay": TWO_CLICK,
    "click-collapsible-2-nodelay": TWO_CLICK,
    "click-tab-2-easy": SINGLE_CLICK,  # one tab only: the link is always on the open tab
    "click-tab-2": TWO_CLICK,
    "click-tab-2-medium": TWO_CLICK,
    "click-tab-2-hard": TWO_CLICK,
    "click-pie-nodelay": TWO_CLICK,
    "click-button-sequence": TWO_CLICK,
    "circle-center": TWO_CLICK,  # a point of the grid, then Submit
    "find-midpoint": TWO_CLICK,
    "right-angle": TWO_CLICK,
    "bisect-angle": TWO_CLICK,
    "click-checkboxes": MULTI_CLICK,
    "click-checkboxes-large": MULTI_CLICK,
    "click-checkboxes-soft": MULTI_CLICK,
    "click-checkboxes-transfer": MULTI_CLICK,
    "number-checkboxes": MULTI_CLICK,
    "click-shades": MULTI_CLICK,
    "tic-tac-toe": MULTI_CLICK,
    "choose-date-nodelay": MULTI_CLICK,  # open the calendar, page to the month, click the day, Submit
    "drag-box": DRAG,
    "drag-items": DRAG,
    "drag-items-grid": DRAG,
    "drag-sort-numbers": DRAG,
    "drag-shapes": DRAG,
    "resize-textarea": DRAG,
    "use-slider": DRAG,  # drag the handle near the value, then arrow keys
    "use-slider-2": DRAG,
    "enter-text-2": TYPING,
    "text-transform": TYPING,
    "simple-arithmetic": TYPING,
    "simple-algebra": TYPING,
    "visual-addition": TYPING,
    "enter-date": TYPING,
    "enter-time": TYPING,
    "use-autocomplete-nodelay": TYPING,  # type the start, click a suggestion
    "use-colorwheel": TYPING,  # the picker's field takes a typed hex colour
    "use-colorwheel-2": TYPING,
}

# Pix2Act's evaluation tasks without an oracle, and why.
NO_ORACLE: dict[str, str] = {
    "drag-item": "not in the miniwob package (1.1.0): there is no task page to play",
}

# Steps an oracle episode may take (run_oracle_episode's default), where 8 is not enough.
ORACLE_MAX_STEPS: dict[str, int] = {
    "click-checkboxes-large": 16,  # up to 12 ticks, Submit
    "number-checkboxes": 24,  # up to 20 ticks, Submit
    "choose-date-nodelay": 20,  # up to 12 month pages
    "drag-shapes": 10,
    "use-slider": 12,  # a drag, a click for the focus, up to 3 keys, Submit; a drag a step off again
    "use-slider-2": 24,  # the same for 3 sliders
    "use-colorwheel": 14,  # click, End, 6 Backspaces, type, Tab, Enter
    "use-colorwheel-2": 14,
    "tic-tac-toe": 10,
}
DEFAULT_MAX_STEPS = 8

# Oracles below 99% success in experiments/miniwob/validate_oracles.py, and why.
FAILED_VALIDATION: dict[str, str] = {
    "click-pie-nodelay": "78% of 100 seeds: on ~1 seed in 5 the item asked for is the wheel's pre-selected "
    "one, which never receives a real click (see its oracle in probe.js)",
    "tic-tac-toe": "82% of 100 seeds: the page's opponent plays a random square 55% of the time and else "
    "wins or blocks; the oracle plays the move with the best chance to win against exactly that (a search "
    "to the end of the game), and the rest are lost or drawn",
}

# The oracles that succeeded on >= 99% of 100 seeds (table: experiments/miniwob/oracle_validation.md).
# Other code (dataset generation, evaluation) uses these.
ORACLE_TASKS: dict[str, str] = {task: kind for task, kind in ORACLE_KINDS.items() if task not in FAILED_VALIDATION}


def oracle_code() -> str:
    """What decides the oracle's episodes beyond the env's settings (recording caches hash it): this module,
    the page probe with the oracles, MiniWobEnv.oracle and _oracle_step (page step -> action), the drag's
    mousemoves and the miniwob package's version (its task pages)."""
    from lnn.envs.miniwob import env

    return "\n".join([inspect.getsource(sys.modules[__name__]), env.PROBE_JS, inspect.getsource(env.MiniWobEnv.oracle),
                      inspect.getsource(env._oracle_step), f"DRAG_MOVES={env.DRAG_MOVES}",
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


def run_oracle_episode(env: Env, seed: int, task: str | None = None, max_steps: int | None = None) -> OracleEpisode:
    """Reset to (seed, task) and follow env.oracle() until the episode ends or max_steps actions (default:
    the task's ORACLE_MAX_STEPS, else DEFAULT_MAX_STEPS).

    Raises EpisodeAborted (browser fault) and OracleError (no target found) like the env does.
    """
    obs = env.reset(seed, task)
    episode = OracleEpisode(obs.task, seed, success=False, raw_reward=0.0)
    if max_steps is None:
        max_steps = ORACLE_MAX_STEPS.get(obs.task, DEFAULT_MAX_STEPS)
    for _ in range(max_steps):
        step = env.oracle()
        episode.steps.append((obs, step))
        obs, reward, done, info = env.step(step.action)
        if done:
            episode.success, episode.raw_reward, episode.reason = info["success"], reward, info["reason"]
            return episode
    episode.reason = f"not done after {max_steps} oracle steps"
    return episode
