"""Every core exports: the ONNX streaming step with its state (the LSTM's [h, c], none for the
feed-forward core) passes the export's parity check, and the agent runs both the export and the
checkpoint."""

import json

import pytest

from lnn.models.lite import CORES
from tests.agent.helpers import assert_policies_agree
from tests.export.conftest import make_run

pytest.importorskip("onnxruntime")


# fast tier: the LSTM ([h, c] state) and the feed-forward core (no state); the rest are slow (~6 s each)
@pytest.mark.parametrize("core", [c if c in ("lstm", "feedforward") else pytest.param(c, marks=pytest.mark.slow)
                                  for c in CORES])  # fmt: skip
def test_export_and_agent_work_for_every_core(core, tmp_path):
    from lnn.agent import OnnxPolicy, TorchPolicy
    from lnn.agent.cli import run as agent
    from lnn.envs import GuiEnv
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
    solver = manifest["solver"] and manifest["solver"]["exported"]
    assert solver == ({"solver": "semi_implicit", "unfolds": 2} if core in ("liquid", "ltc") else None)

    # the agent: the export in onnxruntime acts as the checkpoint does in PyTorch, state carried
    env = GuiEnv(["click-color", "remember-color"], image_size=model.image_size)
    assert_policies_agree(OnnxPolicy(out), TorchPolicy(model), [env.reset(seed) for seed in range(2)], steps=3, atol=1e-4)
    result = agent([f"ckpt={run_dir}", "task=click-color", "episodes=1", f"out={tmp_path / 'agent'}"])
    assert json.loads((result / "agent.json").read_text())["backend"].startswith("pytorch")
