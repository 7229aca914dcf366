"""Trained policies acting in envs: the closed-loop runner, success tables, the agent CLI."""

from lnn.agent.evaluate import EpisodeResult, format_table, run_episodes, success_table, wilson_interval
from lnn.agent.policy import TorchPolicy, decode_action, screenshots_to_tensor

__all__ = [
    "EpisodeResult", "format_table", "run_episodes", "success_table", "wilson_interval",
    "TorchPolicy", "decode_action", "screenshots_to_tensor",
]
