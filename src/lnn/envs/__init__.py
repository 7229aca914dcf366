from lnn.envs.base import (ACTIONS, KEYS, PART_ATTRIBUTES, Action, Box, Env, EpisodeAborted, Observation, OracleError,
                           OracleStep, Part)
from lnn.envs.gui import GuiEnv

__all__ = ["ACTIONS", "KEYS", "PART_ATTRIBUTES", "Action", "Box", "Env", "EpisodeAborted", "GuiEnv", "Observation",
           "OracleError", "OracleStep", "Part"]
