from lnn.envs.base import ACTIONS, Action, Box, Env, Observation, OracleStep

__all__ = ["ACTIONS", "Action", "Box", "Env", "Observation", "OracleStep"]
