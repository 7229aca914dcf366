"""MiniWoB++ web tasks in headless Chromium (Playwright): MiniWobEnv, its faults and its oracles."""

from lnn.envs.miniwob.browser import BrowserMissingError
from lnn.envs.miniwob.env import EpisodeAborted, MiniWobEnv, OracleError
from lnn.envs.miniwob.describe import described_parts, read_description
from lnn.envs.miniwob.oracles import ORACLE_KINDS, ORACLE_TASKS, OracleEpisode, oracle_code, run_oracle_episode
from lnn.envs.miniwob.server import available_tasks

__all__ = [
    "ORACLE_KINDS",
    "ORACLE_TASKS",
    "BrowserMissingError",
    "EpisodeAborted",
    "MiniWobEnv",
    "OracleEpisode",
    "OracleError",
    "available_tasks",
    "described_parts",
    "oracle_code",
    "read_description",
    "run_oracle_episode",
]
