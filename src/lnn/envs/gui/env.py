"""GuiEnv: seeded episodes of the GUI task families, rendered with Pillow."""

from __future__ import annotations

import random
from collections.abc import Sequence

from lnn.envs.base import Action, Env, Observation, OracleStep
from lnn.envs.gui.families import ENTER, TASKS, Difficulty, Family, Step
from lnn.envs.gui.render import Renderer, inside
from lnn.errors import ConfigError
from lnn.frames import plain_size

MIN_IMAGE_SIZE = 32


class GuiEnv(Env):
    """The embedded GUI env: screenshot + instruction in, one action per step.

    `tasks` restricts the families that `reset(seed)` draws from (None: all of TASKS); `reset(seed, task)`
    may name any family. `difficulty` options (min_candidates, max_candidates, sequence_length,
    memory_delay, dt_scale) are passed to every family. Episodes depend on (seed, task) alone.

    Each observation carries its frame's `dt` (seconds since the previous frame): 1.0, except in the
    timing families, which draw it per frame (simulated time: nothing waits).

    A step with the correct action advances; the last one ends the episode with reward 1.0. A wrong
    action ends it with reward 0.0 and `info["failure"]` saying why, and so does running past max_steps.
    A click is correct when it lands in the target box; a type action when its text is the quoted word
    of the instruction; a key action (the answer to cue and wait frames) when it presses Enter (an empty
    text means Enter); a scroll when it scrolls down (text "down" or empty).
    """

    task_names: tuple[str, ...] = tuple(TASKS)  # all families; an instance narrows it to its `tasks`

    def __init__(
        self, tasks: Sequence[str] | None = None, image_size: int | list[int] = 96, max_steps: int = 8, **difficulty
    ):
        if isinstance(tasks, str):  # one family named on its own
            tasks = [tasks]
        names = tuple(TASKS) if tasks is None else tuple(tasks)
        if not names:
            raise ConfigError("tasks", f"no task family given; available: {', '.join(TASKS)}")
        for name in names:
            _check_family(name, "tasks")
        image_size = plain_size(image_size, minimum=MIN_IMAGE_SIZE)  # N or [height, width]: the scene stretched
        self.difficulty = Difficulty.from_options(difficulty)
        self.task_names = names
        self.image_size = image_size
        self.families: dict[str, Family] = {name: TASKS[name](self.difficulty) for name in TASKS}
        longest = max(names, key=lambda name: self.families[name].max_steps())
        if max_steps < self.families[longest].max_steps():
            raise ConfigError(
                "max_steps",
                f"must be >= {self.families[longest].max_steps()}, the longest episode of {longest} "
                f"at this difficulty; got {max_steps}",
            )
        self.max_steps = max_steps
        self._renderer = Renderer(image_size)
        self._task: str | None = None
        self._steps: tuple[Step, ...] = ()
        self._index = 0  # the step of the script the episode is at
        self._taken = 0  # actions taken so far
        self._done = True

    def reset(self, seed: int, task: str | None = None) -> Observation:
        if task is None:
            task = random.Random(f"task/{seed}").choice(self.task_names)
        _check_family(task, "task")
        self._task, self._steps = task, self.families[task].episode(seed)
        self._index, self._taken, self._done = 0, 0, False
        return self._observe()

    def step(self, action: Action) -> tuple[Observation, float, bool, dict]:
        if self._done:
            raise RuntimeError("the episode is over (or never started); call reset() first")
        failure = _mismatch(self._steps[self._index], action)
        self._taken += 1
        info = {"task": self._task, "step": self._taken}
        reward = 0.0
        if failure is None:
            self._index += 1
            if self._index == len(self._steps):
                reward = 1.0
            elif self._taken >= self.max_steps:
                failure = f"ran out of steps (max_steps={self.max_steps})"
        self._done = reward == 1.0 or failure is not None
        if failure is not None:
            info["failure"] = failure
        info["success"] = reward == 1.0
        return self._observe(), reward, self._done, info

    def oracle(self) -> OracleStep:
        if self._done:
            raise RuntimeError("the episode is over (or never started); call reset() first")
        step = self._steps[self._index]
        return OracleStep(step.action, step.target, step.focus)

    @property
    def current_step(self) -> Step:
        """The ground truth of the frame in view: scene, instruction, correct action, target, candidates."""
        return self._steps[min(self._index, len(self._steps) - 1)]

    def _observe(self) -> Observation:
        step = self.current_step  # after the last step, the last frame stays in view
        return Observation(self._renderer.render(step.scene), step.instruction, self._task, step.dt)


def _check_family(name: str, key: str) -> None:
    if name not in TASKS:
        raise ConfigError(key, f"unknown task family {name!r}; available: {', '.join(TASKS)}")


def _mismatch(step: Step, action: Action) -> str | None:
    """Why `action` is wrong on `step`, or None when it is the correct one."""
    want = step.action
    if action.type != want.type:
        return f"expected a {want.type} action, got {action.type}"
    if want.type == "click" and not inside(step.target, action.x, action.y):
        x0, y0, x1, y1 = step.target
        return (
            f"click at ({action.x:.3f}, {action.y:.3f}) is outside the target box "
            f"({x0:.3f}, {y0:.3f}, {x1:.3f}, {y1:.3f})"
        )
    if want.type == "type" and action.text != want.text:
        return f"typed {action.text!r}, expected {want.text!r}"
    if want.type == "key" and action.text not in (ENTER, ""):
        return f"pressed {action.text!r}, expected {ENTER!r}"
    if want.type == "scroll" and action.text not in ("down", ""):
        return f"scrolled {action.text!r}; the page only scrolls down"
    return None
