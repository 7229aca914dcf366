"""OnnxPolicy: the exported single step run by onnxruntime, with the same interface as TorchPolicy."""

import json

import numpy as np
import pytest

from lnn.agent import OnnxPolicy, TorchPolicy
from lnn.envs import GuiEnv, Observation
from lnn.errors import ConfigError
from lnn.models.text import MAX_WORDS, SCHEME, WORD_BYTES, tokenize

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


def hand_made_step(path, state_size=4, dt=False):
    """A graph with the step's inputs and outputs: new state = state + 1 (with `dt`: + a (B, 1) dt input),
    tau = the sum of the token ids, action logits favour `click`, coords = sigmoid(new state[:2])."""
    from onnx import TensorProto, helper

    w_action = np.zeros((state_size, 6), np.float32)
    w_action[:, 0] = 1.0
    w_coords = np.zeros((state_size, 2), np.float32)
    w_coords[0, 0] = w_coords[1, 1] = 1.0
    nodes = [
        helper.make_node("Add", ["state_0", "dt" if dt else "one"], ["new_state_0"]),
        helper.make_node("MatMul", ["new_state_0", "w_action"], ["action_logits"]),
        helper.make_node("MatMul", ["new_state_0", "w_coords"], ["pre"]),
        helper.make_node("Sigmoid", ["pre"], ["coords"]),
        helper.make_node("Cast", ["tokens"], ["tokens_f"], to=TensorProto.FLOAT),
        helper.make_node("ReduceSum", ["tokens_f", "axis"], ["tau_0"], keepdims=1),
    ]
    init = [helper.make_tensor("one", TensorProto.FLOAT, [], [1.0]),
            helper.make_tensor("w_action", TensorProto.FLOAT, w_action.shape, w_action.flatten()),
            helper.make_tensor("w_coords", TensorProto.FLOAT, w_coords.shape, w_coords.flatten()),
            helper.make_tensor("axis", TensorProto.INT64, [1], [1])]  # fmt: skip
    inputs = [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, 16, 16]),
              helper.make_tensor_value_info("tokens", TensorProto.INT64, ["batch", MAX_WORDS * WORD_BYTES]),
              helper.make_tensor_value_info("state_0", TensorProto.FLOAT, ["batch", state_size])]  # fmt: skip
    inputs += [helper.make_tensor_value_info("dt", TensorProto.FLOAT, ["batch", 1])] if dt else []
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None)
               for n in ("action_logits", "coords", "tau_0", "new_state_0")]  # fmt: skip
    graph = helper.make_graph(nodes, "step", inputs, outputs, init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    path.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path / "model.onnx"))
    return path


def obs(instruction="Click the red square", task="click-color", dt=1.0):
    return Observation(np.zeros((32, 32, 3), np.uint8), instruction, task, dt)


@pytest.mark.parametrize("manifest", [
    {"tokenizer": {"scheme": SCHEME}},  # names found in the graph
    {"tokenizer": {"scheme": SCHEME}, "inputs": ["image", "tokens", "state_0"], "outputs": [{"name": "new_state_0"},
     {"name": "tau_0"}, {"name": "coords"}, {"name": "action_logits"}]},
    {"tokenizer": {"scheme": SCHEME, "max_words": MAX_WORDS, "word_bytes": WORD_BYTES}, "inputs": {"image": "image", "tokens": "tokens", "state": ["state_0"]},
     "outputs": {"action_logits": "action_logits", "coords": "coords", "tau": ["tau_0"], "state": ["new_state_0"]}},
])  # fmt: skip
def test_state_is_carried_tokens_fed_and_rows_dropped(tmp_path, manifest):
    export = hand_made_step(tmp_path / "export")
    (export / "manifest.json").write_text(json.dumps(manifest))
    policy = OnnxPolicy(export)
    assert policy.image_size == 16 and policy.state_shapes == [(4,)]
    policy.reset(2)
    actions, info = policy.act([obs(), obs("Click the blue square")])
    assert [a.type for a in actions] == ["click", "click"]
    expected_tau = sum(tokenize("click-color Click the blue square"))
    assert info["tau"][0][1].item() == expected_tau
    policy.act([obs(), obs()])
    policy.keep([1])
    actions, info = policy.act([obs()])
    assert policy.state[0].shape == (1, 4) and (policy.state[0] == 3).all()  # three steps from zero
    assert actions[0].x == pytest.approx(1 / (1 + np.exp(-3)), abs=1e-6)


def test_observations_dt_feeds_a_dt_input(tmp_path, caplog):
    export = hand_made_step(tmp_path / "timed", dt=True)
    (export / "manifest.json").write_text(json.dumps({"tokenizer": {"scheme": SCHEME}}))
    policy = OnnxPolicy(export)
    policy.reset(2)
    policy.act([obs(dt=0.5), obs(dt=2.0)])
    policy.act([obs(dt=0.25), obs(dt=1.0)])
    np.testing.assert_allclose(policy.state[0][:, 0], [0.75, 3.0])  # the state integrates the frames' dt
    # a graph without a dt input runs every frame at dt = 1, and says so once
    export = hand_made_step(tmp_path / "untimed")
    (export / "manifest.json").write_text(json.dumps({"tokenizer": {"scheme": SCHEME}}))
    policy = OnnxPolicy(export)
    policy.reset(1)
    with caplog.at_level("WARNING", logger="lnn"):
        for _ in range(3):
            policy.act([obs(dt=0.5)])
    assert len([r for r in caplog.records if "no dt input" in r.message]) == 1


def test_an_export_from_export_py_takes_the_observations_dt(tmp_path, caplog):
    """export.py's graph has a dt input (lnn-export/2): OnnxPolicy feeds each observation's dt, without the
    warning, and acts as TorchPolicy does at the same elapsed times (a timing family's frames)."""
    from lnn.export.pipeline import ExportOptions, export
    from lnn.export.source import resolve_source
    from tests.agent.helpers import assert_policies_agree, fake_run

    run_dir, model = fake_run(tmp_path, tasks=("wait-green",))
    options = ExportOptions(out=str(tmp_path / "export"), plots=False, web=False, steps=4, streams_per_task=1,
                            int8_min_agreement=0.5, int8_min_click_agreement=0.5)  # fmt: skip
    out = export(resolve_source(run=str(run_dir)), options, log=lambda line: None)
    assert json.loads((out / "manifest.json").read_text())["format"] == "lnn-export/3"
    policy = OnnxPolicy(out)
    assert policy.inputs["dt"] == ["dt"] and policy.dt_rank == 1
    env = GuiEnv(["wait-green"], image_size=32)
    observations = [env.reset(seed) for seed in range(3)]
    assert len({o.dt for o in observations}) == 3  # the timing family draws each frame's dt
    with caplog.at_level("WARNING", logger="lnn"):
        assert_policies_agree(policy, TorchPolicy(model), observations, steps=2, atol=1e-4)
    assert not [r for r in caplog.records if "no dt input" in r.message]


def test_unreadable_exports_are_config_errors(tmp_path):
    export = hand_made_step(tmp_path / "export")
    (export / "manifest.json").write_text("{")
    with pytest.raises(ConfigError, match="not a readable manifest"):
        OnnxPolicy(export)
    (export / "manifest.json").write_text("{}")
    with pytest.raises(ConfigError, match="tokenizer.scheme"):
        OnnxPolicy(export)
    (export / "manifest.json").write_text(json.dumps({"instruction_buckets": 64}))  # an export with hashed words
    with pytest.raises(ConfigError, match="hashed words: re-export a model retrained"):
        OnnxPolicy(export)
    (export / "manifest.json").write_text(json.dumps({"tokenizer": {"scheme": SCHEME, "max_words": 2}}))
    with pytest.raises(ConfigError, match="the tokens input is 384 wide"):
        OnnxPolicy(export)


@pytest.mark.slow
def test_exported_lite_acts_like_the_torch_model(tmp_path):
    from lnn.agent.cli import run
    from tests.agent.helpers import assert_policies_agree, export_step_onnx, fake_run

    run_dir, model = fake_run(tmp_path)
    export = export_step_onnx(model, tmp_path / "export", manifest_style="lists")
    env = GuiEnv(["click-color", "remember-target"], image_size=32)
    assert_policies_agree(OnnxPolicy(export), TorchPolicy(model), [env.reset(seed) for seed in range(3)], steps=2)
    # the CLI takes the export directory as ckpt= (env and tasks given: an export has no run config)
    out = run([f"ckpt={export}", "env=gui", "task=click-color", "episodes=3", f"out={tmp_path / 'out'}"])
    assert json.loads((out / "agent.json").read_text())["backend"] == "onnxruntime"


def test_a_pixels_only_model_ignores_the_instruction_in_torch_onnx_and_the_page(tmp_path):
    """model.instruction=pixels: the checkpoint, the agent's TorchPolicy, the export's manifest, OnnxPolicy and the
    page's tokensFor all feed padding tokens, so two different instructions give identical outputs."""
    import shutil
    import subprocess

    import torch

    from lnn.export.pipeline import ExportOptions, export
    from lnn.export.source import resolve_source
    from lnn.runs import load_policy
    from tests.agent.helpers import assert_policies_agree, fake_run, tiny_model

    screen = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    a, b = (Observation(screen, text, "click-color", 1.0) for text in ("Click the red square", "Click the blue circle"))

    def coords(policy, observation):
        policy.reset(1)
        return np.asarray(policy.act([observation])[1]["coords"])

    text_model = TorchPolicy(tiny_model(instruction="text"))  # the same weights, told the instruction: it matters
    assert not np.allclose(coords(text_model, a), coords(text_model, b))
    run_dir, _ = fake_run(tmp_path, instruction="pixels")
    model = load_policy(run_dir)
    assert model.instruction == "pixels" and model.spec["kwargs"]["instruction"] == "pixels"
    assert torch.equal(model.tokenize(["click-color"], ["Click the red square"]), torch.zeros(1, model.max_tokens).long())
    torch_policy = TorchPolicy(model)
    np.testing.assert_array_equal(coords(torch_policy, a), coords(torch_policy, b))

    options = ExportOptions(out=str(tmp_path / "export"), plots=False, web=False, steps=2, streams_per_task=1,
                            int8_min_agreement=0.5, int8_min_click_agreement=0.5)  # fmt: skip
    out = export(resolve_source(run=str(run_dir)), options, log=lambda line: None)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["instruction"] == "pixels"
    onnx_policy = OnnxPolicy(out)
    np.testing.assert_array_equal(coords(onnx_policy, a), coords(onnx_policy, b))
    assert_policies_agree(onnx_policy, torch_policy, [a, b], steps=2, atol=1e-4)
    if shutil.which("node"):  # the page makes its tokens with lnn.js's tokensFor
        from lnn.export.bundle import WEB_SOURCES

        script = (f"import {{ tokensFor }} from '{(WEB_SOURCES / 'lnn.js').as_uri()}';"
                  f"const m = {json.dumps(manifest)};"
                  "console.log(JSON.stringify([tokensFor(m, 'click-color', 'Click the red square'), "
                  "tokensFor({...m, instruction: 'text'}, 'click-color', 'Click the red square')]));")  # fmt: skip
        result = subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        pixels, text = json.loads(result.stdout)
        assert pixels == [0] * model.max_tokens and any(text)


def test_one_decoding_of_drags_keys_and_typed_text_with_and_without_the_heads():
    """decode_outputs (TorchPolicy's and OnnxPolicy's): a drag to its release point, the key head's key, the
    text head's bytes up to -1 (UTF-8); without the heads: released where pressed, Enter, the quoted string."""
    from lnn.envs import ACTIONS, KEYS, Observation
    from lnn.rollout import decode_outputs

    def logits(*ids, n):
        out = np.zeros((len(ids), n), np.float32)
        out[np.arange(len(ids)), ids] = 1
        return out

    kinds = [ACTIONS.index(a) for a in ("drag", "key", "type", "type")]
    typed = np.full((4, 6), -1, np.int64)
    typed[2, :5] = list("café".encode())
    typed[3, :2] = list(b"ok")
    out = {"action_logits": logits(*kinds, n=7), "coords": np.array([[0.1, 0.2]] * 4, np.float32),
           "release": np.array([[0.7, 0.8]] * 4, np.float32), "key_logits": logits(0, KEYS.index("Tab"), 0, 0, n=len(KEYS)),
           "text_bytes": typed}  # fmt: skip
    seen = [Observation(np.zeros((4, 4, 3), np.uint8), 'Type "hello"', "t")] * 4
    drag, key, word, short = decode_outputs(out, seen)
    assert (drag.type, drag.x, drag.y) == ("drag", pytest.approx(0.1), pytest.approx(0.2))
    assert (drag.x2, drag.y2) == (pytest.approx(0.7), pytest.approx(0.8))
    assert (key.type, key.text) == ("key", "Tab") and (word.text, short.text) == ("café", "ok")
    drag, key, word, _ = decode_outputs({k: out[k] for k in ("action_logits", "coords")}, seen)
    assert (drag.x2, drag.y2) == (drag.x, drag.y) and key.text == "Enter" and word.text == "hello"
