"""Trained policies acting in envs: the agent CLI, loading a policy (checkpoint or ONNX export).

The closed-loop runner, TorchPolicy and success tables live in lnn.rollout (training and the export use
them too); they are re-exported here, where user code has always found them.
"""

from lnn.agent.onnx_policy import OnnxPolicy
from lnn.rollout import (
    EpisodeResult, TorchPolicy, decode_action, format_table, run_episodes, screenshots_to_tensor, success_table,
    wilson_interval, write_success_report,
)  # fmt: skip
from lnn.runs import find_checkpoint, load_policy

load_policy_model = load_policy  # the name agent code and tests knew it by

__all__ = [
    "EpisodeResult", "format_table", "run_episodes", "success_table", "wilson_interval", "write_success_report",
    "find_checkpoint", "load_policy", "load_policy_model",
    "OnnxPolicy", "TorchPolicy", "decode_action", "screenshots_to_tensor",
]
