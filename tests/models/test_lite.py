import pytest
import torch

from lnn.errors import ConfigError
from lnn.frames import frame_size
from lnn.models import VisionLNNLite
from lnn.models.text import BYTE_IDS, MAX_WORDS, WORD_BYTES


def inputs(batch=2, steps=3, size=64):
    torch.manual_seed(0)
    return torch.rand(batch, steps, 3, size, size), torch.randint(0, BYTE_IDS, (batch, steps, MAX_WORDS * WORD_BYTES))


def test_default_shape_is_the_seeds():
    model = VisionLNNLite()
    params = sum(p.numel() for p in model.parameters())
    assert 0.7e6 < params < 0.9e6  # the seed: 769,548; + attention reading and word vectors
    assert model.image_size == 224 and len(model.core.layers) == 4 and model.core.hidden_size == 256


@pytest.mark.parametrize("core", ["liquid", "feedforward"])
def test_outputs(core):
    model = VisionLNNLite(image_size=64, core=core)
    images, tokens = inputs()
    out = model(images, tokens)
    assert out["action_logits"].shape == (2, 3, 6)
    assert out["coords"].shape == (2, 3, 2) and 0 <= out["coords"].min() and out["coords"].max() <= 1
    assert len(out["tau_values"]) == len(out["state"]) == (4 if core == "liquid" else 0)
    for tau in out["tau_values"]:
        assert tau.shape == (2, 3, 1) and tau.min() >= 1.0 and tau.max() <= 10.0


@pytest.mark.parametrize("size, click_offset", [(64, False), ([80, 64], True)])
def test_step_by_step_with_state_equals_the_episode(size, click_offset):
    model = VisionLNNLite(image_size=size, solver="euler", click_offset=click_offset).double().eval()  # eval: batch norms use running stats
    images, tokens = inputs()
    images = torch.nn.functional.interpolate(images.flatten(0, 1), size=frame_size(size)).view(2, 3, 3, *frame_size(size))
    images = images.double()
    whole = model(images, tokens)
    state = model.initial_state(2)
    for t in range(3):
        out = model.step(images[:, t], tokens[:, t], state)
        state = out["state"]
        torch.testing.assert_close(out["action_logits"], whole["action_logits"][:, t])
        torch.testing.assert_close(out["coords"], whole["coords"][:, t])


def test_memory_the_past_changes_the_present():
    model = VisionLNNLite(image_size=64).eval()
    images, tokens = inputs(batch=1, steps=2)
    other = images.clone()
    other[:, 0] = torch.rand_like(other[:, 0])
    assert not torch.allclose(model(images, tokens)["action_logits"][:, 1], model(other, tokens)["action_logits"][:, 1])


def test_instruction_reaches_the_outputs():
    model = VisionLNNLite(image_size=64).eval()
    images, tokens = inputs(batch=1, steps=1)
    a = model(images, tokens)["coords"]
    b = model(images, torch.roll(tokens, 1, -1) % 255 + 1)["coords"]
    assert not torch.allclose(a, b)


def test_image_too_small_names_the_key():
    with pytest.raises(ConfigError) as info:
        VisionLNNLite(image_size=16)
    assert info.value.key == "image_size" and ">= 32" in info.value.message


def test_unknown_instruction_input_names_the_key():
    with pytest.raises(ConfigError) as info:
        VisionLNNLite(image_size=64, instruction="pixel")
    assert info.value.key == "instruction" and "text, pixels" in info.value.message


def test_padding_mask_skips_padded_frames_without_changing_real_outputs():
    model = VisionLNNLite(image_size=64).double().eval()
    images, tokens = inputs(batch=2, steps=4)
    images = images.double()
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]], dtype=torch.bool)
    dt = mask.double()
    masked = model(images, tokens, dt=dt, mask=mask)
    full = model(images, tokens, dt=dt)
    for key in ("action_logits", "coords", "click_logits", "look_logits"):
        torch.testing.assert_close(masked[key][mask], full[key][mask])
        assert (masked[key][~mask] == 0).all(), key  # one rule for every model: padded steps give zeros
    for a, b in zip(masked["tau_values"], full["tau_values"]):
        torch.testing.assert_close(a[mask], b[mask])
        assert (a[~mask] == 0).all()
    for a, b in zip(masked["state"], full["state"]):
        torch.testing.assert_close(a, b)


def test_click_point_lands_on_a_peak_not_between_two():
    model = VisionLNNLite(image_size=64)  # an 8 x 8 click map
    logits = torch.full((1, 64), -10.0)
    logits[0, 8 * 1 + 1] = 5.0  # cell (row 1, col 1)
    logits[0, 8 * 6 + 6] = 4.9  # cell (row 6, col 6): nearly as likely
    xy = model.click_point(logits)[0]
    assert torch.allclose(xy, torch.tensor([1.5 / 8, 1.5 / 8]), atol=0.02)


def test_frames_of_native_aspect_keep_it_in_the_map():
    model = VisionLNNLite(image_size=[210, 160], click_offset=True)  # MiniWoB's task area, unstretched
    assert model.image_size == [210, 160] and model.map_hw == (27, 20)  # rows from the height, columns from the width
    h, w = model.map_hw
    # cells run row by row, as the CNN's map flattens: cell w is row 1, column 0
    torch.testing.assert_close(model.cell_xy[:, w], torch.tensor([0.5 / w, 1.5 / h]))
    out = model(torch.rand(2, 1, 3, 210, 160), torch.randint(0, 256, (2, 1, 24)))
    assert out["click_logits"].shape == (2, 1, h * w) and out["look_logits"].shape == (2, 1, h * w)
    assert 0 <= out["coords"].min() and out["coords"].max() <= 1
    assert model.spec["kwargs"]["image_size"] == [210, 160]


@pytest.mark.parametrize("size", [[210], [210, 160.0], "210x160", [True, 64]])
def test_an_image_size_neither_n_nor_height_width_names_the_key(size):
    with pytest.raises(ConfigError) as info:
        VisionLNNLite(image_size=size)
    assert info.value.key == "image_size"


def test_click_offset_places_the_point_within_the_peak_cell():
    model = VisionLNNLite(image_size=[64, 32], click_offset=True)  # an 8 x 4 map: cells 1/4 wide, 1/8 high
    logits = torch.full((1, 32), -10.0)
    logits[0, 4 * 2 + 1] = 5.0  # row 2, column 1: centre (0.375, 0.3125)
    offsets = torch.zeros(1, 2, 32)
    offsets[0, :, 4 * 2 + 1] = torch.atanh(torch.tensor([0.5, -0.25]))  # half a cell right, a quarter up
    offsets[0, :, 0] = 3.0  # another cell's offset plays no part
    xy = model.click_point(logits, offsets)[0]
    torch.testing.assert_close(xy, torch.tensor([0.375 + 0.5 / 4, 0.3125 - 0.25 / 8]))
    # bounded to one cell, and kept on the frame at its edge
    logits[0] = -10.0
    logits[0, 0] = 5.0
    offsets[0, :, 0] = -20.0
    torch.testing.assert_close(model.click_point(logits, offsets)[0], torch.tensor([0.0, 0.0]))


def test_match_text_takes_the_named_texts_strip_beside_the_tokens():
    pytest.importorskip("PIL")
    model = VisionLNNLite(image_size=[64, 96], match_text=True, page_size=[128, 120], solver="euler").double().eval()
    assert model.strip_scale == (0.8, 0.5)  # the frame's width and height over the page's
    text = model.text_inputs(["click-link"] * 2, ['Click on the link "ipsum".', 'Click on the link "dolor".'])
    assert set(text) == {"tokens", "strip"} and text["strip"].shape == (2, 1, 18, 66) and text["strip"].amax() > 0.5
    images = torch.rand(2, 3, 3, 64, 96, dtype=torch.float64)
    steps = {k: v.unsqueeze(1).expand(-1, 3, *v.shape[1:]) for k, v in text.items()}
    whole = model(images, **steps)
    state = model.initial_state(2)
    for t in range(3):
        out = model.step(images[:, t], **{k: v[:, t] for k, v in steps.items()}, state=state)
        state = out["state"]
        torch.testing.assert_close(out["click_logits"], whole["click_logits"][:, t])
    other = {"tokens": steps["tokens"], "strip": steps["strip"].flip(0)}  # same words, the other sample's strip
    assert not torch.allclose(model(images, **other)["click_logits"], whole["click_logits"])
    with pytest.raises(ValueError, match="strip"):
        model(images, steps["tokens"])


def test_pixels_only_gets_a_blank_strip_and_a_zero_match_channel():
    pytest.importorskip("PIL")
    model = VisionLNNLite(image_size=64, match_text=True, instruction="pixels").eval()
    text = model.text_inputs(["click-link"], ['Click on the link "ipsum".'])
    assert not text["tokens"].any() and not text["strip"].any()
    feats = model.encode_frames(torch.rand(1, 3, 64, 64), text["strip"])
    assert feats.shape[1] == 128 + 1 + len(model.cell_position) and not feats[:, 128].any()


@pytest.mark.parametrize("flag", ["match_text", "feedback", "hold_input", "hold_flag", "look_input", "look_to_heads",
                                  "word_scores"])
def test_switches_must_be_bools(flag):
    with pytest.raises(ConfigError) as info:
        VisionLNNLite(image_size=64, **{flag: "yes"})
    assert info.value.key == flag


def test_pointing_actions_are_the_envs_click_and_drag():
    from lnn.envs import ACTIONS
    from lnn.models.lite import POINTING

    assert [ACTIONS[i] for i in POINTING] == ["click", "drag"]


def test_feedback_steps_carry_their_own_action_as_the_episode_is_fed_it():
    """Step by step the state's last tensor holds the action each step chose; the whole episode given those same
    previous actions gives the same outputs (training feeds recorded ones the same way)."""
    model = VisionLNNLite(image_size=64, solver="euler", feedback=True).double().eval()
    images, tokens = inputs()
    images = images.double()
    state, records, steps = model.initial_state(2), [], []
    assert state[-1].shape == (2, 6 + 3) and not state[-1].any()
    for t in range(3):
        out = model.step(images[:, t], tokens[:, t], state)
        state = out["state"]
        records.append(state[-1])
        steps.append(out)
        chosen = out["action_logits"].argmax(-1)
        assert torch.equal(state[-1][:, :6].argmax(-1), chosen) and torch.equal(state[-1][:, :6].sum(-1), torch.ones(2).double())
        pointed = chosen.eq(0)
        torch.testing.assert_close(state[-1][:, 6:8], out["coords"] * pointed.unsqueeze(-1))
    previous = torch.stack([torch.zeros_like(records[0]), *records[:-1]], 1)
    whole = model(images, tokens, previous=previous)
    for t in range(3):
        torch.testing.assert_close(steps[t]["action_logits"], whole["action_logits"][:, t])
        torch.testing.assert_close(steps[t]["coords"], whole["coords"][:, t])


def test_feedback_records_of_recorded_actions_are_shifted_one_step():
    model = VisionLNNLite(image_size=64, feedback=True)
    actions = torch.tensor([[4, 0, 0, -100]])  # key, click, click, padding
    points = torch.tensor([[[0.0, 0.0], [0.2, 0.7], [0.9, 0.1], [0.0, 0.0]]])
    previous = model.previous_actions(actions, points)
    assert not previous[0, 0].any()  # nothing before the first step
    assert previous[0, 1].tolist() == [0, 0, 0, 0, 1, 0, 0.0, 0.0, 0]  # the key: no point
    torch.testing.assert_close(previous[0, 2], torch.tensor([1, 0, 0, 0, 0, 0, 0.2, 0.7, 1.0]))
    torch.testing.assert_close(previous[0, 3, 6:8], torch.tensor([0.9, 0.1]))


def test_with_feedback_the_same_frame_after_other_clicks_is_another_step():
    """Identical frames and state, different previous clicks: the outputs differ (the model can tell which click
    of a sequence comes next); without feedback they cannot."""
    model = VisionLNNLite(image_size=64, feedback=True).eval()
    images, tokens = inputs(batch=1, steps=1)
    clicked = lambda x: torch.tensor([[[1, 0, 0, 0, 0, 0, x, 0.5, 1.0]]])  # noqa: E731
    a = model(images, tokens, previous=clicked(0.1))["action_logits"]
    b = model(images, tokens, previous=clicked(0.9))["action_logits"]
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match="previous"):
        model(*inputs(batch=1, steps=2))


def test_held_input_integrates_each_dt_with_the_frame_that_was_on_screen():
    """Frame k's dt (the time since frame k-1 came) is integrated with frame k-1's input, then frame k is read
    over one unit step: the core sees [(0, dt0), (x0, 1), (x0, dt1), (x1, 1), (x1, dt2), (x2, 1)]."""
    model = VisionLNNLite(image_size=64, solver="euler", hold_input=True).double().eval()
    images, tokens = inputs(batch=1, steps=3)
    seen = {}
    model.input_proj.register_forward_hook(lambda m, i, o: seen.update(inputs=i[0]))
    model.core.register_forward_hook(lambda m, i, o: seen.update(dt=i[2]))
    model(images.double(), tokens, dt=torch.tensor([[1.0, 0.4, 2.5]], dtype=torch.double))
    x = seen["inputs"]  # (1, 2T, D): what entered the core, before its projection
    assert x.shape[1] == 6 and not x[:, 0].any()
    torch.testing.assert_close(x[:, 2::2], x[:, 1:-1:2])  # each dt: the frame before, held
    assert not torch.allclose(x[:, 1], x[:, 3])  # the frames themselves
    assert seen["dt"].tolist() == [[1.0, 1.0, 0.4, 1.0, 2.5, 1.0]]


def test_the_hold_flag_tells_the_core_which_sub_step_is_the_hold():
    """hold_flag: the core's input carries 1 on each held sub-step and 0 on each read, the only difference between
    the two when the frame does not change; the flag's weights change the outputs; it needs hold_input."""
    model = VisionLNNLite(image_size=64, solver="euler", hold_input=True, hold_flag=True).double().eval()
    assert model.input_proj.in_features == model.core_input + 1
    images, tokens = inputs(batch=1, steps=3)
    images, tokens = images[:, :1].expand(-1, 3, -1, -1, -1), tokens[:, :1].expand(-1, 3, -1)  # one frame, three times
    seen = {}
    model.input_proj.register_forward_hook(lambda m, i, o: seen.update(inputs=i[0]))
    out = model(images.double(), tokens)
    x = seen["inputs"]  # (1, 2T, D + 1)
    assert x[0, :, -1].tolist() == [1.0, 0.0] * 3
    torch.testing.assert_close(x[:, 2::2, :-1], x[:, 3::2, :-1])  # held and read: the same frame, told apart by the flag
    with torch.no_grad():
        model.input_proj.weight[:, -1] += 1.0
    assert not torch.allclose(model(images.double(), tokens)["action_logits"], out["action_logits"])
    with pytest.raises(ConfigError) as info:
        VisionLNNLite(image_size=64, hold_flag=True)
    assert info.value.key == "hold_flag"


def test_the_optional_heads_serve_lnn_envs_actions_and_keys():
    from lnn.envs import ACTIONS, KEYS, PART_ATTRIBUTES
    from lnn.models.lite import DRAG_ACTION, NUM_KEYS, PART_CLASSES

    assert ACTIONS.index("drag") == DRAG_ACTION and len(KEYS) == NUM_KEYS
    assert PART_CLASSES == tuple(len(values) for values in PART_ATTRIBUTES.values())


def test_heads_are_off_by_default_and_older_weights_load():
    """A model without the flags has exactly the parameters it had before the heads existed (an older
    checkpoint loads strictly) and none of their outputs."""
    plain = VisionLNNLite(image_size=64, num_actions=7)
    assert not any(name.split(".")[0] in ("release_scorer", "key_head", "text_head") for name in plain.state_dict())
    images, tokens = inputs()
    assert set(plain(images, tokens)) == {"action_logits", "coords", "click_logits", "look_logits", "tau_values", "state"}
    full = VisionLNNLite(image_size=64, num_actions=7, drag_head=True, key_head=True, text_head=True)
    missing, unexpected = full.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and {m.split(".")[0] for m in missing} == {"release_scorer", "key_head", "text_head"}


@pytest.mark.parametrize("click_offset", [False, True])
def test_the_heads_outputs_per_step_and_by_step(click_offset):
    model = VisionLNNLite(image_size=64, num_actions=7, drag_head=True, key_head=True, text_head=True, text_slots=8,
                          click_offset=click_offset).eval()  # fmt: skip
    images, tokens = inputs()
    out = model(images, tokens)
    assert out["action_logits"].shape == (2, 3, 7) and out["release"].shape == (2, 3, 2)
    assert 0 <= out["release"].min() and out["release"].max() <= 1 and out["release_logits"].shape == out["click_logits"].shape
    assert out["key_logits"].shape == (2, 3, 12) and out["text_logits"].shape == (2, 3, 8, 96 + MAX_WORDS * WORD_BYTES)
    assert out["text_bytes"].shape == (2, 3, 8) and out["text_bytes"].dtype == torch.long
    state = None
    for t in range(3):
        step = model.step(images[:, t], tokens[:, t], state)
        state = step["state"]
        for name in ("release", "key_logits", "text_logits"):
            torch.testing.assert_close(step[name], out[name][:, t], atol=1e-5, rtol=1e-4)
        assert torch.equal(step["text_bytes"], out["text_bytes"][:, t])


def test_drag_head_needs_the_drag_action_and_flags_are_bools():
    with pytest.raises(ConfigError, match="num_actions=7") as info:
        VisionLNNLite(image_size=64, drag_head=True)
    assert info.value.key == "num_actions"
    with pytest.raises(ConfigError) as info:
        VisionLNNLite(image_size=64, text_head="yes")
    assert info.value.key == "text_head"


@pytest.mark.parametrize("extras", [{"hold_input": True}, {"hold_input": True, "feedback": True}, {"map_memory": 3},
                                    {"map_memory": 3, "hold_input": True, "feedback": True}])
def test_extra_state_steps_carry_what_the_episode_does(extras):
    """Held input, map traces, previous action: one step at a time with the state equals the whole episode."""
    model = VisionLNNLite(image_size=64, solver="euler", **extras).double().eval()
    images, tokens = inputs()
    images, dt = images.double(), torch.tensor([[1.0, 0.3, 2.0], [1.0, 1.5, 0.25]], dtype=torch.double)
    state, steps = model.initial_state(2), []
    cells = model.map_hw[0] * model.map_hw[1]
    sizes = [h.shape[1] for h in state[4:]]  # after the 4 liquid layers'
    assert sizes == [model.core_input] * ("hold_input" in extras) + [3 * cells * (2 if "hold_input" in extras else 1)] * (
        "map_memory" in extras) + [6 + 3] * ("feedback" in extras)  # with hold_input the traces keep the held write too
    assert not any(h.any() for h in state)
    for t in range(3):
        out = model.step(images[:, t], tokens[:, t], state, dt=dt[:, t])
        state = out["state"]
        steps.append(out)
    previous = None
    if "feedback" in extras:
        records = [out["state"][-1] for out in steps]
        previous = torch.stack([torch.zeros_like(records[0]), *records[:-1]], 1)
    whole = model(images, tokens, dt=dt, previous=previous)
    for t in range(3):
        for key in ("action_logits", "coords", "click_logits"):
            torch.testing.assert_close(steps[t][key], whole[key][:, t])


def test_map_memory_traces_decay_with_dt_and_keep_where_the_model_looked():
    """Each trace: the previous one times e^(-dt/τ), plus the attention map times the gate. The click map reads
    the trace as it stands before the frame's own look (what was seen earlier), the state keeps it after."""
    model = VisionLNNLite(image_size=64, map_memory=2).double().eval()
    looked = torch.softmax(torch.randn(1, 2, 64, dtype=torch.double), -1)
    x = torch.randn(1, 2, model.core_input, dtype=torch.double)
    dt = torch.tensor([[1.0, 3.0]], dtype=torch.double)
    traces, last = model.remember_places(looked, x, torch.zeros(1, 2 * 64, dtype=torch.double), dt)
    gates, tau = torch.sigmoid(model.trace_gate(x))[0], model.trace_log_tau.exp()
    assert not traces[0, 0].any()  # nothing was seen before the first frame
    torch.testing.assert_close(traces[0, 1], gates[0, :, None] * looked[0, 0] * torch.exp(-3.0 / tau)[:, None])
    torch.testing.assert_close(last, (traces[0, 1] + gates[1, :, None] * looked[0, 1]).flatten()[None])
    images, tokens = inputs(batch=1, steps=1)
    a = model.step(images[:, 0].double(), tokens[:, 0], model.initial_state(1))["click_logits"]
    state = model.initial_state(1)
    state[-1] = torch.rand_like(state[-1])  # another remembered place, the same frame
    assert not torch.allclose(a, model.step(images[:, 0].double(), tokens[:, 0], state)["click_logits"])
    with pytest.raises(ConfigError) as info:
        VisionLNNLite(image_size=64, map_memory=-1)
    assert info.value.key == "map_memory"


def test_with_held_input_a_trace_integrates_what_was_looked_at_over_each_dt():
    """dm/dt = (w - m) / τ with w the previous frame's write: m' = m e^(-dt/τ) + w (1 - e^(-dt/τ)); a place looked at
    for 2 s holds more than one looked at for 0.5 s."""
    model = VisionLNNLite(image_size=64, map_memory=2, hold_input=True).double().eval()
    looked = torch.softmax(torch.randn(1, 3, 64, dtype=torch.double), -1)
    x = torch.randn(1, 3, model.core_input, dtype=torch.double)
    dt = torch.tensor([[1.0, 2.0, 0.5]], dtype=torch.double)
    traces, last = model.remember_places(looked, x, torch.zeros(1, 2 * 2 * 64, dtype=torch.double), dt)
    writes = torch.sigmoid(model.trace_gate(x))[0, :, :, None] * looked[0, :, None, :]
    keep = torch.exp(-dt[0, :, None, None] / model.trace_log_tau.exp()[None, :, None])
    assert not traces[0, 0].any()  # nothing was on screen before the first frame
    torch.testing.assert_close(traces[0, 1], writes[0] * (1 - keep[1]))
    torch.testing.assert_close(traces[0, 2], traces[0, 1] * keep[2] + writes[1] * (1 - keep[2]))
    torch.testing.assert_close(last, torch.stack([traces[0, 2], writes[2]]).flatten()[None])


@pytest.mark.parametrize("look_to_heads", [False, True])
def test_look_to_heads_lets_the_pointers_read_the_look_past_the_core(look_to_heads):
    # a core fed nothing (input projection zeroed): only look_to_heads carries what is seen to the click map
    model = VisionLNNLite(image_size=64, num_actions=7, drag_head=True, key_head=True, text_head=True, text_slots=4,
                          look_to_heads=look_to_heads)  # fmt: skip
    with torch.no_grad():
        model.input_proj.weight.zero_()
    images, tokens = inputs()
    model(images, tokens)["click_logits"].sum().backward()
    reached = model.image_proj.weight.grad is not None and model.image_proj.weight.grad.abs().sum() > 0
    assert reached == look_to_heads
    state = None  # and step by step (the ONNX step's path) as over the episode
    model.eval()
    with torch.no_grad():
        whole = model(images, tokens)
        for t in range(3):
            step = model.step(images[:, t], tokens[:, t], state)
            state = step["state"]
            torch.testing.assert_close(step["click_logits"], whole["click_logits"][:, t])


@pytest.mark.parametrize("direct", [False, True])
def test_word_scores_let_the_words_pick_which_feature_to_click(direct):
    """Two candidates on every map, one showing feature A, one B; the words say which to click. The FiLM's query is
    the state and the look (noise here): only the direct word term can choose, and it learns to (chance: 50%)."""
    from lnn.models.lite import CellScorer

    torch.manual_seed(0)
    scorer = CellScorer(4, 16, 32, direct_size=8 if direct else 0)
    optimizer = torch.optim.Adam(scorer.parameters(), lr=1e-2)

    def batch(n=64):
        feats = torch.randn(n, 4, 20) * 0.1
        a, b = torch.randperm(20)[:2].tolist()
        feats[:, 0, a], feats[:, 1, b] = 1.0, 1.0  # feature A at cell a, B at cell b
        want_b = torch.rand(n) < 0.5
        words = torch.zeros(n, 8)
        words[want_b, 1], words[~want_b, 0] = 1.0, 1.0
        return feats, words, torch.where(want_b, b, a)

    for _ in range(300):
        feats, words, target = batch()
        scores = scorer(feats, torch.randn(len(feats), 16), words if direct else None)
        loss = torch.nn.functional.cross_entropy(scores, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    feats, words, target = batch(512)
    with torch.no_grad():
        hits = (scorer(feats, torch.randn(512, 16), words if direct else None).argmax(-1) == target).float().mean()
    assert (hits > 0.95) if direct else (hits < 0.7), float(hits)


def test_word_scores_add_to_the_click_map_only_not_the_offsets():
    """The direct term moves the click map (its first output); the cell offsets are the FiLM's alone."""
    from lnn.models.lite import CellScorer

    scorer = CellScorer(5, 6, 16, outputs=3, direct_size=4)
    feats, query, words = torch.randn(2, 5, 9), torch.randn(2, 6), torch.randn(2, 4)
    with_words, without = scorer(feats, query, words), scorer(feats, query, torch.zeros(2, 4))
    assert not torch.allclose(with_words[:, 0], without[:, 0])
    torch.testing.assert_close(with_words[:, 1:], without[:, 1:])
