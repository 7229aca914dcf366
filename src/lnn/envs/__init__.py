from lnn.envs.base import ACTIONS, KEYS, Action, Box, Env, EpisodeAborted, Observation, OracleError, OracleStep
from lnn.envs.gui import GuiEnv

__all__ = ["ACTIONS", "KEYS", "Action", "Box", "Env", "EpisodeAborted", "GuiEnv", "Observation", "OracleError", "OracleStep"]
