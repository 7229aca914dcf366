"""Small policies, runs and envs for the agent tests (no training, no browser)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from lnn.envs.base import Action, Env, EpisodeAborted, Observation, OracleError, OracleStep
from lnn.models import VisionLNNLite
from lnn.models.text import SCHEME

TINY = dict(image_size=32, channels=[8, 8, 8], feature_size=16, instruction_dim=8,
            hidden_size=16, num_layers=2, head_size=16, scorer_size=8, solver="euler")  # fmt: skip


def tiny_model(seed: int = 0, **overrides) -> VisionLNNLite:
    torch.manual_seed(seed)
    return VisionLNNLite(**TINY | overrides).eval()


def fake_run(root: Path, env: str = "gui", tasks=("click-color", "remember-target"), seed: int = 0,
             **overrides) -> tuple[Path, VisionLNNLite]:  # fmt: skip
    """A run directory as train.py leaves it: config.yaml + checkpoints/best.ckpt (Lightning layout); `overrides`:
    model settings other than TINY's."""
    model = tiny_model(seed, **overrides)
    run = root / "run"
    (run / "checkpoints").mkdir(parents=True)
    cfg = {"model": {"_target_": "lnn.models.VisionLNNLite", **TINY, **overrides},
           "data": {"env": env, "tasks": None if tasks is None else list(tasks), "image_size": TINY["image_size"], "env_kwargs": {}}}  # fmt: skip
    OmegaConf.save(OmegaConf.create(cfg), run / "config.yaml")
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "global_step": 1}, run / "checkpoints" / "best.ckpt")
    return run, model


SCRIPTED_TASKS = {"scripted": "single_step"}  # registered as env "scripted" by tests that need it


class ScriptedEnv(Env):
    """Episodes of `length` steps; success when the last action is a click. `faults`: [seed, step, what]
    triples (or {(seed, step): what}); what = "abort" raises EpisodeAborted from that step once per
    triple, "oracle" makes the oracle fail there."""

    task_names = ("scripted",)

    def __init__(self, tasks=None, image_size: int = 32, length: int = 2, faults=None):
        self.image_size, self.length = image_size, length
        triples = [(*k, v) for k, v in faults.items()] if isinstance(faults, dict) else list(faults or [])
        self.faults = [tuple(f) for f in triples]
        self.seed = self.t = None
        self.closed = False

    def _obs(self):
        frame = np.full((self.image_size, self.image_size, 3), (self.seed * 37 + self.t) % 256, np.uint8)
        return Observation(frame, f"click {self.t}", "scripted")

    def reset(self, seed, task=None):
        self.seed, self.t = seed, 0
        return self._obs()

    def step(self, action):
        if (self.seed, self.t, "abort") in self.faults:
            self.faults.remove((self.seed, self.t, "abort"))
            raise EpisodeAborted(f"browser crashed at seed {self.seed} step {self.t}")
        self.t += 1
        done = self.t >= self.length
        reward = 1.0 if done and action.type == "click" else 0.0
        return self._obs(), reward, done, {"success": reward > 0, "reason": None if reward else "wrong"}

    def oracle(self):
        if (self.seed, self.t, "oracle") in self.faults:
            raise OracleError(f"no target at seed {self.seed}")
        return OracleStep(Action("click", 0.25, 0.75), (0.1, 0.6, 0.4, 0.9))

    def close(self):
        self.closed = True


def export_step_onnx(model: VisionLNNLite, out_dir: Path, manifest_style: str = "roles") -> Path:
    """An export as written before lnn-export/2 (model.onnx + manifest.json, no dt input: OnnxPolicy runs
    it at dt = 1): the model's single step with the state in and out, exported by torch.onnx (dynamo) with
    a dynamic batch axis. export.py's own graphs take dt (test_onnx_policy.py checks both)."""
    import json

    layers = len(model.initial_state(1))

    class Step(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, image, tokens, state: list):
            out = self.model.step(image, tokens, state)
            return (out["action_logits"], out["coords"], *out["tau_values"], *out["state"])

    out_dir.mkdir(parents=True, exist_ok=True)
    s = model.image_size
    state = model.initial_state(2)
    args = (torch.rand(2, 3, s, s), model.tokenize(["click-color"] * 2, ["Click the red square", "Click the Q"]), state)
    names_in = ["image", "tokens", *[f"state_{i}" for i in range(layers)]]
    names_out = ["action_logits", "coords", *[f"tau_{i}" for i in range(layers)], *[f"new_state_{i}" for i in range(layers)]]
    batch = torch.export.Dim("batch")
    program = torch.onnx.export(Step().eval(), args, dynamo=True, input_names=names_in, output_names=names_out,
                                dynamic_shapes=({0: batch}, {0: batch}, [{0: batch}] * layers), verbose=False)  # fmt: skip
    program.save(str(out_dir / "model.onnx"), external_data=False)
    if manifest_style == "roles":
        io = {"inputs": {"image": "image", "tokens": "tokens", "state": names_in[2:]},
              "outputs": {"action_logits": "action_logits", "coords": "coords", "tau": names_out[2:2 + layers],
                          "state": names_out[2 + layers:]}}  # fmt: skip
    else:  # plain lists of names
        io = {"inputs": names_in, "outputs": names_out}
    manifest = {"model": "model.onnx", "image_size": s, "tokenizer": {"scheme": SCHEME}, **io}
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return out_dir


def assert_policies_agree(a, b, observations, steps: int, atol: float = 1e-5, tau: bool = True) -> None:
    """Two policies (e.g. OnnxPolicy and TorchPolicy of one model) act alike over `steps`, state carried."""
    import torch

    a.reset(len(observations))
    b.reset(len(observations))
    for _ in range(steps):
        (actions_a, info_a), (actions_b, info_b) = a.act(observations), b.act(observations)
        assert [x.type for x in actions_a] == [x.type for x in actions_b]
        np.testing.assert_allclose(info_a["coords"], info_b["coords"], atol=atol)
        if tau:
            for tau_a, tau_b in zip(info_a["tau"], info_b["tau"], strict=True):
                torch.testing.assert_close(tau_a, tau_b, atol=atol, rtol=atol)
