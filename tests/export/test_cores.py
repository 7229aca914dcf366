"""Every core exports: the ONNX streaming step with its state (the LSTM's [h, c], none for the
feed-forward core) and its dt input passes the export's parity check (the timing family's streams at their
real dt among them), and the agent runs both the export and the checkpoint."""

import dataclasses
import json

import numpy as np
import pytest

from lnn.models.lite import CORES
from lnn.models.text import MAX_WORDS, WORD_BYTES
from tests.agent.helpers import assert_policies_agree
from tests.export.conftest import make_run

pytest.importorskip("onnxruntime")


# fast tier: the LSTM ([h, c] state) and the feed-forward core (no state); the rest are slow (~6 s each)
@pytest.mark.parametrize("core", [c if c in ("lstm", "feedforward") else pytest.param(c, marks=pytest.mark.slow)
                                  for c in CORES])  # fmt: skip
def test_export_and_agent_work_for_every_core(core, tmp_path, caplog):
    from lnn.agent import OnnxPolicy, TorchPolicy
    from lnn.agent.cli import run as agent
    from lnn.envs import GuiEnv
    from lnn.export.episodes import run_onnx
    from lnn.export.pipeline import ExportOptions, export
    from lnn.export.source import resolve_source
    from lnn.runs import load_policy

    run_dir = make_run(tmp_path / "run", core=core, solver="semi_implicit", unfolds=2)
    model = load_policy(run_dir)
    # int8's action agreement is loose here: an untrained tiny model's logits are near ties
    options = ExportOptions(out=str(tmp_path / "export"), plots=False, web=False, streams_per_task=1,
                            int8_min_agreement=0.5)  # fmt: skip
    out = export(resolve_source(run=str(run_dir)), options, log=lambda line: None)
    manifest = json.loads((out / "manifest.json").read_text())
    states = [i["shape"][1] for i in manifest["inputs"] if i["name"].startswith("state_")]
    assert states == [h.shape[-1] for h in model.initial_state(1)] == manifest["architecture"]["state_sizes"]
    assert len(states) == (0 if core == "feedforward" else 2)
    if core == "lstm":
        assert states == [2 * model.width] * 2  # [h, c]
    taus = [o for o in manifest["outputs"] if o["name"].startswith("tau_")]
    assert len(taus) == (2 if core == "liquid" else 0) and (manifest["tau"] is None) == (core != "liquid")
    assert manifest["parity"]["fp32"]["max_abs_diff"]["action_logits"] < 1e-4  # the export checked it, too
    assert manifest["parity"]["dt"]["max"] > 1.5  # ... at the timing family's real elapsed times
    solver = manifest["solver"] and manifest["solver"]["exported"]
    assert solver == ({"solver": "semi_implicit", "unfolds": 2} if core in ("liquid", "ltc") else None)

    # the agent: the export in onnxruntime acts as the checkpoint does in PyTorch, state carried, both fed
    # the observations' dt (the export has a dt input: no warning)
    env = GuiEnv(["click-color", "remember-color"], image_size=model.image_size)
    timed = [dataclasses.replace(env.reset(seed), dt=0.3 + 1.5 * seed) for seed in range(2)]
    policy = OnnxPolicy(out)
    with caplog.at_level("WARNING", logger="lnn"):
        assert_policies_agree(policy, TorchPolicy(model), timed, steps=3, atol=1e-4)
    assert policy.dt_rank == 1 and not [r for r in caplog.records if "no dt input" in r.message]
    # dt reaches the outputs of every core (the cores without time read it as an input feature)
    images = np.random.default_rng(0).random((2, 2, 3, 32, 32), np.float32)
    tokens = np.ones((2, 2, MAX_WORDS * WORD_BYTES), np.int64)
    at = [run_onnx(policy.session, images, tokens, len(taus), states, dt=dt).action_logits
          for dt in (np.ones((2, 2), np.float32), np.full((2, 2), 2.5, np.float32))]  # fmt: skip
    assert np.abs(at[0] - at[1]).max() > 1e-4
    result = agent([f"ckpt={run_dir}", "task=click-color", "episodes=1", f"out={tmp_path / 'agent'}"])
    assert json.loads((result / "agent.json").read_text())["backend"].startswith("pytorch")
