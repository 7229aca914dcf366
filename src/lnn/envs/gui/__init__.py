"""The embedded GUI env: simple interfaces drawn with Pillow, seeded episodes, a ground-truth oracle.

Families (see TASKS; `families_by_kind()` groups them): single-step clicks on a named colour, shape,
colour + shape or button; multi-step text entry and scroll-then-click; memory tasks whose recall frame
does not show the target; timing tasks whose frames come after irregular elapsed times (`dt`) and whose
answer depends on how long something lasted.
"""

import inspect

from lnn.envs.gui import env, families, layout, render
from lnn.envs.gui.env import GuiEnv
from lnn.envs.gui.families import KINDS, TASKS, Difficulty, Family, Step, families_by_kind


def oracle_code() -> str:
    """What decides the recorded episodes beyond the env's settings (recording caches hash it): here the oracle
    is the families' own steps and the frames are drawn in-process, so all of the env's code."""
    return "\n".join(inspect.getsource(module) for module in (env, families, layout, render))


__all__ = ["KINDS", "TASKS", "Difficulty", "Family", "GuiEnv", "Step", "families_by_kind", "oracle_code"]
