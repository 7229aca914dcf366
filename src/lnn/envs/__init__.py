from lnn.envs.base import ACTIONS, Action, Box, Env, Observation, OracleStep
from lnn.envs.gui import GuiEnv

__all__ = ["ACTIONS", "Action", "Box", "Env", "GuiEnv", "Observation", "OracleStep"]
