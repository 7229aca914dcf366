"""The export of a (tiny) checkpoint: files, manifest, the ONNX step itself, solver choice, atomicity."""

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from lnn.errors import ConfigError
from lnn.export.episodes import Trace, run_torch
from lnn.export.parity import ParityError, same_click
from lnn.export.pipeline import ExportOptions, export
from lnn.export.source import build_model, resolve_source
from lnn.models.text import BYTE_IDS, MAX_WORDS, WORD_BYTES, tokenize_batch
from tests.export.conftest import make_run


def test_export_directory_has_every_file(tiny_export):
    for name in ("model.onnx", "model.fp16.onnx", "model.int8.onnx", "manifest.json", "config.yaml",
                 "plots/tau_over_steps.png", "plots/tau_by_task.png", "plots/hidden_trajectories.png"):  # fmt: skip
        assert (tiny_export / name).is_file(), name
    assert not list(tiny_export.rglob("*.data")), "weights must be inside the .onnx files"
    assert not [p for p in tiny_export.parent.iterdir() if p.name.startswith(".")], "temporary directories left"


def test_manifest_describes_the_model(tiny_export, tiny_run):
    m = json.loads((tiny_export / "manifest.json").read_text())
    # the keys a runtime reads first (lnn.agent's OnnxPolicy among them)
    assert m["model"] == "model.onnx" and m["image_size"] == 32
    assert m["max_tokens"] == 32 * 12 and m["tokenizer"] == {"scheme": "word-bytes/1", "max_words": 32, "word_bytes": 12}
    assert m["architecture"]["liquid_layers"] == 2 and m["architecture"]["hidden_size"] == 32
    assert m["format"] == "lnn-export/3"  # 3: tokens are the bytes of the words; 2: the step takes dt
    assert [i["name"] for i in m["inputs"]] == ["image", "tokens", "dt", "state_0", "state_1"]
    assert m["inputs"][2]["shape"] == ["batch"] and m["inputs"][2]["dtype"] == "float32"
    assert [o["name"] for o in m["outputs"]] == ["action_logits", "coords", "tau_0", "tau_1", "new_state_0", "new_state_1"]
    assert m["inputs"][0]["shape"] == ["batch", 3, 32, 32] and m["inputs"][1]["dtype"] == "int64"
    assert m["outputs"][2]["shape"] == ["batch", 32]  # τ per neuron in this model
    assert m["preprocessing"]["image"]["size"] == 32 and m["preprocessing"]["tokens"]["max_words"] == 32
    assert m["actions"] == ["click", "type", "navigate", "scroll", "key", "done"]
    assert m["tau"] == {"min": 0.5, "max": 8.0, "per": "neuron", "size": 32,
                        "unit": "seconds, as the dt input (1 per frame when dt = 1)"}
    assert m["solver"]["exported"] == {"solver": "rk4", "unfolds": 1} and m["solver"]["substitution"] is None
    assert m["fp16_scheme"]["name"] == "weights" and m["int8_scheme"]["name"] == "weights"
    assert m["source"]["checkpoint"].endswith("checkpoints/best.ckpt") and m["source"]["metric"]["value"] == 0.5
    for name, info in m["files"].items():
        assert info["bytes"] == (tiny_export / name).stat().st_size
    p = m["parity"]
    assert p["steps"] == 16 and p["episodes"] == 6
    assert p["dt"]["min"] < 1 < p["dt"]["max"]  # the timing family's frames were checked at their real dt
    assert p["fp32"]["passed"] and max(p["fp32"]["max_rel_diff"][k] for k in ("action_logits", "coords", "tau")) <= 1e-4
    assert p["fp16"]["passed"] and max(p["fp16"]["max_rel_diff"][k] for k in ("action_logits", "coords", "tau")) <= 1e-2
    assert p["int8"]["passed"] and p["int8"]["action_agreement"] >= 0.95 and p["int8"]["click_agreement"] >= 0.95
    for precision in ("fp32", "fp16", "int8"):  # where the click lands, judged for every precision
        assert set(p[precision]["click"]) >= {"same_spot", "same_target", "tie", "tie_ratio"}
    assert p["int8"]["min_click_agreement"] == 0.95 and p["fp32"]["click_agreement"] == 1.0
    assert p["fp32"]["tau_tolerance"] == 1e-4 and "tau_tolerance" not in p["fp16"]  # fp16's τ: reported only
    assert p["fp16"]["min_action_agreement"] == 0.99 and p["fp16"]["min_click_agreement"] == 0.99


def test_onnx_step_streams_state_with_any_batch(tiny_export, tiny_run):
    proto = onnx.load(str(tiny_export / "model.onnx"))
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # a named, dynamic batch axis
    session = ort.InferenceSession(str(tiny_export / "model.onnx"), providers=["CPUExecutionProvider"])
    model = build_model(resolve_source(run=str(tiny_run)))
    torch.manual_seed(1)
    batch = 3
    state = model.initial_state(batch)
    feeds_state = [np.zeros((batch, 32), np.float32) for _ in state]
    for _ in range(5):
        image = torch.rand(batch, 3, 32, 32)
        tokens = torch.randint(0, BYTE_IDS, (batch, MAX_WORDS * WORD_BYTES))
        dt = torch.rand(batch) * 2 + 0.25  # irregular elapsed times, as the timing families give
        with torch.no_grad():
            ref = model.step(image, tokens, state, dt=dt)
        out = session.run(None, {"image": image.numpy(), "tokens": tokens.numpy(), "dt": dt.numpy(),
                                 "state_0": feeds_state[0], "state_1": feeds_state[1]})  # fmt: skip
        state, feeds_state = ref["state"], out[4:6]
        np.testing.assert_allclose(out[0], ref["action_logits"].numpy(), atol=1e-4)
        np.testing.assert_allclose(out[1], ref["coords"].numpy(), atol=1e-4)
        np.testing.assert_allclose(out[2], ref["tau_values"][0].numpy(), atol=1e-4)
        np.testing.assert_allclose(out[5], ref["state"][1].numpy(), atol=1e-4)
        assert (out[2] >= 0.5).all() and (out[2] <= 8.0).all()


def test_dopri5_model_exports_with_a_fixed_step_solver(tmp_path):
    # a tight dopri5: over the timing family's dt up to 2.5 s, rtol=1e-3 alone is ~1e-3 off the exact flow
    run = make_run(tmp_path / "run", solver="dopri5", rtol=1e-6, atol=1e-7)
    out = export(resolve_source(run=str(run)), ExportOptions(out=str(tmp_path / "e"), plots=False, web=False,
                                                             streams_per_task=1), log=lambda line: None)  # fmt: skip
    solver = json.loads((out / "manifest.json").read_text())["solver"]
    assert solver["trained"]["solver"] == "dopri5" and solver["exported"]["solver"] == "rk4"
    sub = solver["substitution"]
    assert sub["passed"] and max(sub["max_abs_diff"][k] for k in ("action_logits", "coords", "tau")) <= 1e-3
    assert sub["unfolds_tried"][-1] == solver["exported"]["unfolds"]


def test_a_solver_that_cannot_match_stops_with_one_line_and_writes_nothing(tmp_path):
    run = make_run(tmp_path / "run", solver="dopri5")
    options = ExportOptions(out=str(tmp_path / "e"), solver="euler", unfolds=1, solver_tolerance=1e-9, web=False)
    with pytest.raises(ConfigError) as e:
        export(resolve_source(run=str(run)), options, log=lambda line: None)
    assert e.value.key == "unfolds" and "dopri5" in e.value.message and "\n" not in e.value.message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_dopri5_cannot_be_the_exported_solver(tiny_run, tmp_path):
    with pytest.raises(ConfigError, match="cannot be exported"):
        export(resolve_source(run=str(tiny_run)), ExportOptions(out=str(tmp_path / "e"), solver="dopri5", web=False))


def test_failed_parity_fails_the_export_and_leaves_no_files(tiny_run, tmp_path):
    out = tmp_path / "nested" / "export"
    options = ExportOptions(out=str(out), fp16_atol=1e-9, plots=False, web=False, streams_per_task=1)
    with pytest.raises(ParityError, match=r"parity failed for fp16 with its 8 most sensitive weight\(s\) in float32 "
                                          r"\(parity\.fallback_tensors=8\): .* \(its bounds: parity\.fp16_\* in conf/export\.yaml\)"):  # fmt: skip
        export(resolve_source(run=str(tiny_run)), options, log=lambda line: None)
    assert list(tmp_path.iterdir()) == []  # not even the parent it created


def test_a_weight_fp16_cannot_hold_stays_float32_and_the_rest_stay_fp16(tmp_path):
    """Catastrophic cancellation: two equal features weighted +1000.3 and -1000 add 0.3 each in float32, 0.5 in
    fp16 (spacing 0.5 at 1000). The export fails fp16 parity without the fallback; with it, it measures each weight
    alone, keeps that one in float32 (and only it), passes and says so in the manifest."""
    run = make_run(tmp_path / "run")
    for name in ("best.ckpt", "last.ckpt"):
        checkpoint = torch.load(run / "checkpoints" / name)
        state = checkpoint["state_dict"]
        state["model.head.0.weight"][1] = state["model.head.0.weight"][0]  # features 0 and 1 of the head: equal, > 0
        state["model.head.0.bias"][:2] = 1.0
        state["model.action_head.0.weight"][:, 0], state["model.action_head.0.weight"][:, 1] = 1000.3, -1000.0
        torch.save(checkpoint, run / "checkpoints" / name)
    options = dict(plots=False, web=False, streams_per_task=1)
    with pytest.raises(ParityError, match=r"parity failed for fp16: max \|Δ\| / scale on action_logits"):
        export(resolve_source(run=str(run)), ExportOptions(out=str(tmp_path / "none"), fallback_tensors=0, **options),
               log=lambda line: None)  # fmt: skip
    out = export(resolve_source(run=str(run)), ExportOptions(out=str(tmp_path / "e"), **options), log=lambda line: None)
    fp16 = json.loads((out / "manifest.json").read_text())["parity"]["fp16"]
    assert fp16["passed"] and fp16["kept"]["precision"] == "float32" and "action_logits" in fp16["kept"]["first_try"]
    [kept] = fp16["kept"]["weights"]
    assert sorted(kept["shape"]) == [32, 64] and kept["bound_used_alone"] > 1
    weights = [i for i in onnx.load(str(out / "model.fp16.onnx")).graph.initializer if np.prod(i.dims) >= 16]
    assert [list(i.dims) for i in weights if i.data_type == onnx.TensorProto.FLOAT] == [kept["shape"]]
    assert sum(i.data_type == onnx.TensorProto.FLOAT16 for i in weights) > 10
    assert not (out / "probe.fp16.onnx").exists()
    with pytest.raises(ConfigError, match="fallback_tensors"):
        export(resolve_source(run=str(run)), ExportOptions(out=str(tmp_path / "x"), fallback_tensors=-1, **options))


def test_folding_the_input_projection_is_exact():
    from lnn.export.onnx_step import fold_input_projection
    from lnn.models import VisionLNNLite

    model = VisionLNNLite(image_size=32, channels=(8, 16, 32), hidden_size=24, feature_size=20, instruction_dim=12).eval()
    folded, what = fold_input_projection(model)
    assert what and isinstance(folded.input_proj, torch.nn.Identity)
    assert sum(p.numel() for p in folded.parameters()) < sum(p.numel() for p in model.parameters())
    image, tokens = torch.rand(2, 3, 32, 32), model.tokenize(["click-color"] * 2, ["Click the red square", "Click the Q"])
    with torch.no_grad():
        a, b = model.step(image, tokens), folded.step(image, tokens)
    for key in ("action_logits", "coords"):
        torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=0)
    assert fold_input_projection(VisionLNNLite(image_size=32, core="feedforward"))[1] == []


def test_fp16_and_int8_schemes(tiny_export, tiny_run, tmp_path):
    """weights: compact storage restored to float32 (the defaults); full fp16 / dynamic int8: reduced-precision
    arithmetic. All run in onnxruntime; the stored weights are fp16 / int8."""
    from lnn.export.onnx_step import convert_fp16, convert_int8
    from lnn.export.pipeline import SESSION_CONFIG

    def dtypes(path):
        return {i.data_type for i in onnx.load(str(path)).graph.initializer if np.prod(i.dims) >= 1024}

    def ops(path):
        return {n.op_type for n in onnx.load(str(path)).graph.node}

    assert dtypes(tiny_export / "model.fp16.onnx") == {onnx.TensorProto.FLOAT16} and "Cast" in ops(tiny_export / "model.fp16.onnx")
    assert dtypes(tiny_export / "model.int8.onnx") == {onnx.TensorProto.INT8}
    assert "DequantizeLinear" in ops(tiny_export / "model.int8.onnx") and "MatMulInteger" not in ops(tiny_export / "model.int8.onnx")
    convert_fp16(tiny_export / "model.onnx", tmp_path / "full.onnx", "full")
    convert_int8(tiny_export / "model.onnx", tmp_path / "dynamic.onnx", "dynamic")
    assert dtypes(tmp_path / "full.onnx") == {onnx.TensorProto.FLOAT16}
    assert "DynamicQuantizeLinear" in ops(tmp_path / "dynamic.onnx")
    options = ort.SessionOptions()
    for key, value in SESSION_CONFIG.items():
        options.add_session_config_entry(key, value)
    rng = np.random.default_rng(0)
    feeds = {"image": rng.random((2, 3, 32, 32), dtype=np.float32), "tokens": tokenize_batch(["click-color Click the red square"] * 2).numpy(),
             "dt": np.ones(2, np.float32),
             "state_0": np.zeros((2, 32), np.float32), "state_1": np.zeros((2, 32), np.float32)}  # fmt: skip
    ref = ort.InferenceSession(str(tiny_export / "model.onnx")).run(None, feeds)
    # the click is judged where it lands (lnn.export.parity): the same spot, or a tie under PyTorch's click map
    torch_ref = run_torch(build_model(resolve_source(run=str(tiny_run))), feeds["image"][None], feeds["tokens"][None],
                          dt=feeds["dt"][None])  # fmt: skip
    for path, atol in ((tiny_export / "model.fp16.onnx", 1e-2), (tmp_path / "full.onnx", 1e-2),
                       (tiny_export / "model.int8.onnx", 0.1), (tmp_path / "dynamic.onnx", 0.1)):  # fmt: skip
        out = ort.InferenceSession(str(path), options).run(None, feeds)
        logits, coords, *taus = [float(np.abs(a - b).max()) for a, b in zip(out[:4], ref[:4])]
        assert max(logits, *taus) < atol, (path.name, logits, taus)
        if "fp16" in path.name or "full" in path.name:
            assert coords < atol, (path.name, coords)
        else:  # int8 may tip a flat random map's peak to another cell of (nearly) the same probability
            clicks = same_click(torch_ref, Trace(out[0][None], out[1][None], [], []))
            assert clicks["same"].all(), (path.name, coords, clicks)
    with pytest.raises(ConfigError, match="unknown scheme"):
        convert_int8(tiny_export / "model.onnx", tmp_path / "x.onnx", "int4")
    with pytest.raises(ConfigError, match="unknown scheme"):
        convert_fp16(tiny_export / "model.onnx", tmp_path / "x.onnx", "bf16")


def test_the_step_integrates_each_frames_real_dt(tiny_export, tiny_run):
    """On a timing family's stream (irregular dt), the graph fed each frame's dt matches PyTorch's step at
    the same times, and differs from the graph at dt = 1: the elapsed time reaches the state."""
    from lnn.export.episodes import record_streams, run_onnx, run_torch, stream_dt, stream_inputs
    from lnn.export.parity import compare
    from lnn.export.pipeline import _session

    model = build_model(resolve_source(run=str(tiny_run)))
    streams = record_streams("gui", ["wait-green"], model.image_size, steps=16, per_task=2)
    images, tokens = stream_inputs(model, streams)
    dt = stream_dt(streams)
    assert dt.shape == (16, 2) and dt.min() < 0.9 and dt.max() > 1.5  # non-constant, seconds
    session = _session(tiny_export / "model.onnx")
    timed = run_onnx(session, images, tokens, 2, [32, 32], dt=dt)
    figure = compare(run_torch(model, images, tokens, dt=dt), timed)["max_abs_diff"]
    assert max(figure.values()) <= 1e-4, figure
    at_one = compare(timed, run_onnx(session, images, tokens, 2, [32, 32]))["max_abs_diff"]  # dt = 1
    assert at_one["state"] > 1e-2 and at_one["tau"] > 1e-3, at_one


def test_a_model_of_native_aspect_with_click_offsets_exports_with_parity(tmp_path):
    """[height, width] frames and the click offset: the graph's image input, the manifest, and parity at
    every precision on episodes the GUI env rendered at that size; OnnxPolicy reads the size back."""
    from lnn.agent.onnx_policy import OnnxPolicy
    from lnn.envs import GuiEnv

    run = make_run(tmp_path / "run", image_size=[40, 32], click_offset=True)
    options = ExportOptions(out=str(tmp_path / "export"), plots=False, web=False, streams_per_task=1)
    out = export(resolve_source(run=str(run)), options, log=lambda line: None)
    m = json.loads((out / "manifest.json").read_text())
    assert m["image_size"] == [40, 32] and m["preprocessing"]["image"]["size"] == [40, 32]
    assert m["inputs"][0]["shape"] == ["batch", 3, 40, 32] and "40×32" in m["preprocessing"]["image"]["resize"]
    dims = onnx.load(str(out / "model.onnx")).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims[1:]] == [3, 40, 32]
    for precision in ("fp32", "fp16", "int8"):
        assert m["parity"][precision]["passed"], (precision, m["parity"][precision])
    policy = OnnxPolicy(out)
    assert policy.image_size == [40, 32]
    policy.reset(1)
    actions, _ = policy.act([GuiEnv(["click-color"], image_size=64).reset(0, "click-color")])  # resized to 40 × 32
    assert 0 <= actions[0].x <= 1 and 0 <= actions[0].y <= 1


@pytest.mark.parametrize("lighter", [{}, {"match_stride": 4, "part_head": True}, {"part_head": True, "describe": True},
                                     {"match_stride": [4, 2], "match_channels": 4, "part_head": True, "describe": True,
                                      "word_scores": True},
                                     {"part_head": True, "describe": True, "count_values": 11, "word_scores": True}])
def test_a_match_text_model_exports_its_strip_input_with_parity(tmp_path, lighter):
    """model.match_text: the graph takes the named text's strip; parity at every precision; any batch size
    (the per-sample correlation keeps the batch axis dynamic) with strips of different words in two styles, the
    instruction box masked, the match's rows and columns; the manifest
    says how to draw the strip, and OnnxPolicy draws it as the model does. Also with the match at stride 4, and
    with a part head (teaching only: not in the graph), with `describe` (the part head and the parse in the graph), and
    experiment=miniwob_single_click_fast's (its match every 4th pixel down and 2nd along, 4 features, with describe, the
    words scoring the cells directly), and with the count's distribution (count_values) in the core and the pointers."""
    pytest.importorskip("PIL")
    from lnn.agent.onnx_policy import OnnxPolicy
    from lnn.envs import Observation
    from lnn.rollout import TorchPolicy

    styles = [{"font_px": 10, "bold": False}, {"font_px": 11, "bold": True}]
    run = make_run(tmp_path / "run", image_size=[48, 64], match_text=True, page_size=[96, 128],
                   instruction_box=[0, 0, 24, 128], match_styles=styles, match_lines=True, **lighter)  # fmt: skip
    options = ExportOptions(out=str(tmp_path / "export"), plots=False, web=False, streams_per_task=1)
    out = export(resolve_source(run=str(run)), options, log=lambda line: None)
    m = json.loads((out / "manifest.json").read_text())
    assert [i["name"] for i in m["inputs"][:4]] == ["image", "tokens", "strip", "dt"]
    assert m["inputs"][2]["shape"] == ["batch", 2, 18, 66] and m["preprocessing"]["strip"]["scale"] == [0.5, 0.5]
    assert m["preprocessing"]["strip"]["styles"] == styles
    for precision in ("fp32", "fp16", "int8"):
        assert m["parity"][precision]["passed"], (precision, m["parity"][precision])
    model = build_model(resolve_source(run=str(run)))
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    words = ['Click on the link "ipsum".', "Find the email by Marlena and reply", 'Click "Q".']
    text = model.text_inputs(["click-link"] * 3, words)
    assert text["strip"].flatten(1).amax(1).gt(0.3).all()  # three words drawn
    image, dt = torch.rand(3, 3, 48, 64), torch.ones(3)
    state = model.initial_state(3)
    with torch.no_grad():
        ref = model.step(image, **text, state=state, dt=dt)
    feeds = {"image": image.numpy(), "dt": dt.numpy()} | {k: v.numpy() for k, v in text.items()}
    got = session.run(None, feeds | {f"state_{i}": h.numpy() for i, h in enumerate(state)})
    np.testing.assert_allclose(got[0], ref["action_logits"].numpy(), atol=1e-4)
    np.testing.assert_allclose(got[1], ref["coords"].numpy(), atol=1e-4)
    observations = [Observation(np.random.default_rng(i).integers(0, 255, (96, 128, 3), np.uint8), w, "click-link")
                    for i, w in enumerate(words)]  # fmt: skip
    onnx_policy, torch_policy = OnnxPolicy(out), TorchPolicy(model)
    onnx_policy.reset(3)
    torch_policy.reset(3)
    np.testing.assert_allclose(onnx_policy.act(observations)[1]["coords"], torch_policy.act(observations)[1]["coords"], atol=1e-4)


@pytest.mark.parametrize("hold_input, map_memory, hold_flag", [(False, 0, False), (True, 2, False), (True, 2, True)])
def test_a_feedback_model_exports_its_previous_action_as_state_with_parity(tmp_path, hold_input, map_memory, hold_flag):
    """model.feedback: the previous action travels as one more state tensor (A + 3 wide), after the held input
    with hold_input; parity at every precision, and the ONNX policy's state after a step holds the action it took.
    The τ plots draw the liquid layers' states alone (the extra state tensors have other sizes). With hold_flag the
    flag's column of input_proj folds into the first layer as every other column does."""
    from lnn.agent.onnx_policy import OnnxPolicy
    from lnn.envs import ACTIONS, GuiEnv

    run = make_run(tmp_path / "run", feedback=True, hold_input=hold_input, map_memory=map_memory, hold_flag=hold_flag)
    options = ExportOptions(out=str(tmp_path / "export"), plots=hold_input, web=False, streams_per_task=1)
    out = export(resolve_source(run=str(run)), options, log=lambda line: None)
    m = json.loads((out / "manifest.json").read_text())
    for precision in ("fp32", "fp16", "int8"):
        assert m["parity"][precision]["passed"], (precision, m["parity"][precision])
    policy = OnnxPolicy(out)
    assert policy.state_shapes[-1] == (6 + 3,)
    policy.reset(1)
    actions, _ = policy.act([GuiEnv(["click-color"], image_size=64).reset(0, "click-color")])
    record = policy.state[-1][0]
    assert record[: 6].argmax() == ACTIONS.index(actions[0].type) and record[:6].sum() == 1


def test_a_model_with_drag_key_and_text_heads_exports_them_with_parity(tmp_path):
    """The heads' outputs in the step graph (release, key_logits, text_bytes) and the manifest; parity at every
    precision; the graph's outputs equal the model's step; OnnxPolicy decodes a drag as TorchPolicy does."""
    from lnn.agent.onnx_policy import OnnxPolicy
    from lnn.envs import ACTIONS, KEYS, GuiEnv
    from lnn.rollout import TorchPolicy

    run = make_run(tmp_path / "run", num_actions=7, drag_head=True, key_head=True, text_head=True, click_offset=True,
                   look_to_heads=True)  # the heads read the look directly too
    for name in ("best.ckpt", "last.ckpt"):  # a model that drags: what the agent must decode
        ckpt = torch.load(run / "checkpoints" / name, weights_only=False)
        ckpt["state_dict"]["model.action_head.2.bias"][ACTIONS.index("drag")] = 50.0
        torch.save(ckpt, run / "checkpoints" / name)
    options = ExportOptions(out=str(tmp_path / "export"), plots=False, web=False, streams_per_task=1)
    out = export(resolve_source(run=str(run)), options, log=lambda line: None)
    m = json.loads((out / "manifest.json").read_text())
    names = [o["name"] for o in m["outputs"]]
    assert names[:6] == ["action_logits", "coords", "release", "key_logits", "text_logits", "text_bytes"]
    assert names[6] == "tau_0"
    assert m["keys"] == list(KEYS) and m["actions"] == list(ACTIONS)
    assert next(o for o in m["outputs"] if o["name"] == "text_bytes")["dtype"] == "int64"
    for precision in ("fp32", "fp16", "int8"):
        assert m["parity"][precision]["passed"], (precision, m["parity"][precision])
    assert {"release", "key_logits", "text_logits"} <= set(m["parity"]["fp32"]["max_abs_diff"])
    assert m["parity"]["fp32"]["text_agreement"] == 1

    model = build_model(resolve_source(run=str(run)))
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    image, dt, state = torch.rand(3, 3, 32, 32), torch.ones(3), model.initial_state(3)
    tokens = model.tokenize(["t"] * 3, ['Type "café"', "Drag the box", ""])
    with torch.no_grad():
        ref = model.step(image, tokens, state=state, dt=dt)
    feeds = {"image": image.numpy(), "tokens": tokens.numpy(), "dt": dt.numpy()} | {f"state_{i}": h.numpy() for i, h in enumerate(state)}
    got = dict(zip(names, session.run(names, feeds)))
    np.testing.assert_allclose(got["release"], ref["release"].numpy(), atol=1e-4)
    np.testing.assert_allclose(got["key_logits"], ref["key_logits"].numpy(), atol=1e-4)
    assert np.array_equal(got["text_bytes"], ref["text_bytes"].numpy())

    observations = [GuiEnv(["click-color"], image_size=32).reset(seed, "click-color") for seed in range(2)]
    onnx_policy, torch_policy = OnnxPolicy(out), TorchPolicy(model)
    onnx_policy.reset(2)
    torch_policy.reset(2)
    (onnx_actions, _), (torch_actions, _) = onnx_policy.act(observations), torch_policy.act(observations)
    for a, b in zip(onnx_actions, torch_actions):
        assert a.type == b.type == "drag" and (a.x2, a.y2) != (a.x, a.y)
        np.testing.assert_allclose([a.x, a.y, a.x2, a.y2], [b.x, b.y, b.x2, b.y2], atol=1e-4)
