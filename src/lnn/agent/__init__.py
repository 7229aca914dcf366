"""Trained policies acting in envs: the closed-loop runner, success tables, the agent CLI."""

from lnn.agent.evaluate import (
    EpisodeResult, format_table, run_episodes, success_table, wilson_interval, write_success_report,
)  # fmt: skip
from lnn.agent.onnx_policy import OnnxPolicy
from lnn.agent.policy import TorchPolicy, decode_action, screenshots_to_tensor
from lnn.runs import find_checkpoint, load_policy

load_policy_model = load_policy  # the name agent code and tests knew it by

__all__ = [
    "EpisodeResult", "format_table", "run_episodes", "success_table", "wilson_interval", "write_success_report",
    "find_checkpoint", "load_policy", "load_policy_model",
    "OnnxPolicy", "TorchPolicy", "decode_action", "screenshots_to_tensor",
]
