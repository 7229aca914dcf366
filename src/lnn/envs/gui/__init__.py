"""The embedded GUI env: simple interfaces drawn with Pillow, seeded episodes, a ground-truth oracle.

Families (see TASKS; `families_by_kind()` groups them): single-step clicks on a named colour, shape,
colour + shape or button; multi-step text entry and scroll-then-click; memory tasks whose recall frame
does not show the target; timing tasks whose frames come after irregular elapsed times (`dt`) and whose
answer depends on how long something lasted.
"""

from lnn.envs.gui.env import GuiEnv
from lnn.envs.gui.families import KINDS, TASKS, Difficulty, Family, Step, families_by_kind

__all__ = ["KINDS", "TASKS", "Difficulty", "Family", "GuiEnv", "Step", "families_by_kind"]
