"""LFM2-Liquid on the tiny preset (random weights): merge, cache, generate, policy contract."""

import pytest
import torch

from lnn.errors import ConfigError
from lnn.models import LFM2Hybrid, LFM2LiquidMerged
from lnn.models.lfm2 import LiquidContext, affine_scan, build_base, build_config, merge_liquid_layers
from lnn.models.lfm2.config import PARAMS_450M
from lnn.models.lfm2.images import patchify
from lnn.models.lfm2.text import PromptFormat, load_tokenizer


def tiny_inputs(base, batch=2, text=6, image_size=32, seed=0):
    """Prompt ids around an image, and the matching pixel tensors, for the tiny preset."""
    g = torch.Generator().manual_seed(seed)
    cfg = base.config
    n_image = (image_size // cfg.vision_config.patch_size // cfg.downsample_factor) ** 2
    fmt = PromptFormat(load_tokenizer(None, cfg), n_image)
    ids, mask = fmt.prompts(["x" * text] * batch)
    ids[:, -text - len(fmt.suffix) : -len(fmt.suffix)] = torch.randint(16, 272, (batch, text), generator=g)
    pixels, pixel_mask, shapes = patchify(torch.rand(batch, 3, image_size, image_size, generator=g), cfg.vision_config.patch_size)
    return {"input_ids": ids, "attention_mask": mask, "pixel_values": pixels, "pixel_attention_mask": pixel_mask,
            "spatial_shapes": shapes}  # fmt: skip


def merged_base(layers=(0, 3), solver="rk4", recurrence="scan", mix=0.5, seed=0):
    torch.manual_seed(seed)
    base = build_base("tiny").eval()
    branches = merge_liquid_layers(base, list(layers), LiquidContext(), 16, solver=solver, recurrence=recurrence)
    with torch.no_grad():
        for b in branches.values():
            b.mix.fill_(mix)  # as after training: the liquid branch matters
    return base, branches


# --- configuration ----------------------------------------------------------------------------
def test_450m_preset_is_the_published_architecture():
    from transformers import Lfm2VlForConditionalGeneration

    config = build_config("lfm2_vl_450m")
    with torch.device("meta"):
        model = Lfm2VlForConditionalGeneration(config)
    assert sum(p.numel() for p in model.parameters()) == PARAMS_450M
    assert [i for i, t in enumerate(config.text_config.layer_types) if t != "conv"] == [2, 5, 8, 10, 12, 14]


@pytest.mark.parametrize("layers, words", [([0, 2], ["2 is an attention layer", "[0, 1, 3]"]),
                                           ([0, 7], ["7 is out of range", "[0, 1, 3]"]),
                                           ([], ["empty"])])  # fmt: skip
def test_liquid_layers_refuses_attention_and_out_of_range(layers, words):
    for cls in (LFM2LiquidMerged, LFM2Hybrid):
        with pytest.raises(ConfigError) as info:
            cls(liquid_layers=layers)
        assert info.value.key == "liquid_layers"
        assert all(w in info.value.message for w in words)


def test_seed_example_names_an_attention_layer_of_450m():
    from lnn.models.lfm2 import check_liquid_layers

    with pytest.raises(ConfigError) as info:
        check_liquid_layers([0, 8, 15], build_config("lfm2_vl_450m").text_config)
    assert "8 is an attention layer" in info.value.message and "[0, 1, 3, 4, 6, 7, 9, 11, 13, 15]" in info.value.message


def test_pretrained_path_missing_dir_or_files(tmp_path):
    with pytest.raises(ConfigError) as info:
        LFM2LiquidMerged(pretrained_path=str(tmp_path / "nope"))
    assert info.value.key == "pretrained_path" and "not a directory" in info.value.message
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError) as info:
        LFM2LiquidMerged(pretrained_path=str(tmp_path / "empty"))
    assert "config.json" in info.value.message and "model.safetensors" in info.value.message


@pytest.mark.parametrize("key, value", [("image_size", 60), ("tau_min", 0), ("solver", "heun"), ("recurrence", "loop"),
                                        ("liquid_size", 0), ("preset", "huge")])  # fmt: skip
def test_bad_arguments_name_their_key(key, value):
    with pytest.raises(ConfigError) as info:
        LFM2LiquidMerged(**{key: value})
    assert info.value.key == key


# --- the merge ----------------------------------------------------------------------------------
def test_merged_model_equals_unmerged_at_initialisation():
    torch.manual_seed(0)
    base = build_base("tiny").eval()
    inputs = tiny_inputs(base)
    with torch.no_grad():
        before = base(**inputs).logits
        merge_liquid_layers(base, [0, 1, 3], LiquidContext(), 16)
        after = base(**inputs).logits
    assert torch.equal(before, after)


def test_training_moves_the_mixture():
    base, branches = merged_base(mix=0.0)
    inputs = tiny_inputs(base)
    with torch.no_grad():
        before = base(**inputs).logits
    base(**inputs).logits.square().mean().backward()
    assert all(b.mix.grad.abs().sum() > 0 for b in branches.values())  # the gate gets a gradient at zero
    torch.optim.SGD([b.mix for b in branches.values()], lr=1.0).step()
    with torch.no_grad():
        assert not torch.allclose(base(**inputs).logits, before)


def test_affine_scan_equals_the_loop():
    torch.manual_seed(0)
    a, b, h0 = torch.rand(3, 37, 5), torch.randn(3, 37, 5), torch.randn(3, 5)
    h, states = h0, []
    for t in range(37):
        h = a[:, t] * h + b[:, t]
        states.append(h)
    torch.testing.assert_close(affine_scan(a, b, h0), torch.stack(states, 1))


@pytest.mark.parametrize("solver", ["euler", "rk4", "semi_implicit"])
def test_scan_prefill_equals_stepping_the_cell(solver):
    from lnn.models.lfm2 import LiquidBranch

    torch.manual_seed(0)
    branch = LiquidBranch(8, 6, 0, LiquidContext(), solver=solver, unfolds=2).double()
    x, dt = torch.randn(2, 9, 8).double(), torch.tensor([[1.0] * 9, [0.0] * 3 + [1.0] * 6]).double()
    states, _, tau = branch.run(x, None, dt)
    h = torch.zeros(2, 6).double()
    u = branch.cell.project_input(x)
    for t in range(9):
        h, tau_t = branch.cell.step(u[:, t], h, dt[:, t, None])
        torch.testing.assert_close(states[:, t], h)
        torch.testing.assert_close(tau[:, t], tau_t)
    assert (tau >= 1).all() and (tau <= 10).all()


# --- cache ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("recurrence", ["scan", "full"])
def test_prefill_then_decode_equals_one_pass(recurrence):
    base, _ = merged_base(recurrence=recurrence)
    inputs = tiny_inputs(base, batch=2)
    ids = inputs.pop("input_ids")
    mask = inputs.pop("attention_mask")
    k = 4
    with torch.no_grad():
        whole = base(input_ids=ids, attention_mask=mask, **inputs).logits
        n = ids.shape[1] - k
        out = base(input_ids=ids[:, :n], attention_mask=mask[:, :n], use_cache=True, **inputs)
        cache, steps = out.cache, [out.logits[:, -1]]
        for i in range(n, ids.shape[1]):
            out = base(input_ids=ids[:, i : i + 1], attention_mask=mask[:, : i + 1], cache=cache, use_cache=True)
            steps.append(out.logits[:, -1])
    torch.testing.assert_close(torch.stack(steps[:-1], 1), whole[:, n - 1 : -1], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(steps[-1], whole[:, -1], atol=1e-4, rtol=1e-4)
    assert cache.layers[0].recurrent_states[0].shape == (2, 16)  # the liquid state lives in the cache


def test_multi_token_continuation_on_a_cache():
    base, _ = merged_base()
    inputs = tiny_inputs(base, batch=1)
    ids = inputs.pop("input_ids")
    inputs.pop("attention_mask")
    with torch.no_grad():
        whole = base(input_ids=ids, **inputs).logits
        n = ids.shape[1] - 5
        out = base(input_ids=ids[:, :n], use_cache=True, **inputs)
        more = base(input_ids=ids[:, n:], cache=out.cache, use_cache=True).logits
    torch.testing.assert_close(more, whole[:, n:], atol=1e-4, rtol=1e-4)


def test_batch_of_different_prompt_lengths_equals_each_alone():
    torch.manual_seed(0)
    model = LFM2LiquidMerged(image_size=32, liquid_size=16).eval()
    for b in model.branches().values():
        torch.nn.init.normal_(b.mix, std=0.5)
    image = torch.rand(2, 3, 32, 32)
    prompts = ["a short one", "a much longer prompt than the first"]
    both = model.generate(image, prompts, max_new_tokens=6, return_dict=True, output_logits=True,
                          return_dict_in_generate=True)  # fmt: skip
    for i in range(2):
        alone = model.generate(image[i], prompts[i], max_new_tokens=6, return_dict=True, output_logits=True,
                               return_dict_in_generate=True)  # fmt: skip
        assert both["text"][i] == alone["text"][0]
        for step_both, step_alone in zip(both["output"].logits, alone["output"].logits):
            torch.testing.assert_close(step_both[i], step_alone[0], atol=1e-4, rtol=1e-4)
        n = alone["sequences"].shape[1]
        torch.testing.assert_close(both["sequences"][i, -n:], alone["sequences"][0])
        for layer, tau in alone["tau"].items():  # τ of the real tokens agree too
            real = both["prompt_mask"][i].bool()
            k = tau.shape[1] - int(real.sum())
            torch.testing.assert_close(both["tau"][layer][i][torch.cat([real, torch.ones(k, dtype=torch.bool)])],
                                       tau[0], atol=1e-5, rtol=1e-5)  # fmt: skip


def test_generate_calls_start_from_a_fresh_state():
    torch.manual_seed(0)
    model = LFM2LiquidMerged(image_size=32, liquid_size=16).eval()
    for b in model.branches().values():
        torch.nn.init.normal_(b.mix, std=0.5)
    image = torch.rand(3, 32, 32)
    first = model.generate(image, "hello", max_new_tokens=5, min_new_tokens=5)
    model.generate(torch.rand(3, 32, 32), "something else entirely", max_new_tokens=7)
    again = model.generate(image, "hello", max_new_tokens=5, min_new_tokens=5)
    assert first == again and len(first) == 1 and isinstance(first[0], str)


def test_generate_with_prepared_pixel_tensors():
    torch.manual_seed(0)
    model = LFM2LiquidMerged(image_size=32).eval()
    pixels, mask, shapes = patchify(torch.rand(1, 3, 48, 32), model.patch)  # not square: 12 × 8 patches
    out = model.generate(pixel_values=pixels, pixel_attention_mask=mask, spatial_shapes=shapes, prompt="what is it",
                         max_new_tokens=4, min_new_tokens=4, return_dict=True)  # fmt: skip
    assert out["sequences"].shape[1] == out["prompt_mask"].shape[1] + 4
    assert set(out["tau"]) == {0, 3}


# --- the policy -------------------------------------------------------------------------------------
def episode(model, batch=2, steps=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(batch, steps, 3, model.image_size, model.image_size, generator=g)
    texts = ["Click the red square", "", 'Type "hi" in the blue field', "Wait", "Click the OK button", "Scroll down"]
    tokens = model.tokenize(["click-color"] * batch * steps, (texts * batch)[: batch * steps]).view(batch, steps, -1)
    return images, tokens


@pytest.mark.parametrize("cls", [LFM2LiquidMerged, LFM2Hybrid])
def test_policy_contract_and_step_equals_episode(cls):
    torch.manual_seed(0)
    model = cls(image_size=32, liquid_size=16).eval()
    for b in model.branches().values():
        torch.nn.init.normal_(b.mix, std=0.5)
    images, tokens = episode(model)
    with torch.no_grad():
        whole = model(images, tokens)
        cells = model.cell_xy.shape[1]
        assert whole["action_logits"].shape == (2, 3, 6) and whole["click_logits"].shape == (2, 3, cells)
        assert whole["coords"].shape == (2, 3, 2) and 0 <= whole["coords"].min() and whole["coords"].max() <= 1
        assert len(whole["tau_values"]) == len(whole["state"]) == len(whole["tau_tokens"]) == 2
        for tau in whole["tau_values"]:
            assert tau.shape == (2, 3, 16) and tau.min() >= 1.0 and tau.max() <= 10.0
        state = model.initial_state(2)
        for t in range(3):
            out = model.step(images[:, t], tokens[:, t], state)
            state = out["state"]
            for key in ("action_logits", "coords", "click_logits"):
                torch.testing.assert_close(out[key], whole[key][:, t], atol=1e-5, rtol=1e-5)
        for h, h_whole in zip(state, whole["state"]):
            torch.testing.assert_close(h, h_whole)


@pytest.mark.parametrize("time_unit, carried", [("frame", True), ("token", False)])
def test_liquid_state_carries_across_frames(time_unit, carried):
    """τ counts frames (a frame's dt spread over its tokens): the state remembers the previous frame;
    with τ in tokens, a prompt of ~100 tokens washes it out (τ ≤ 10)."""
    torch.manual_seed(0)
    model = LFM2LiquidMerged(image_size=32, liquid_size=16, time_unit=time_unit).eval()
    images, tokens = episode(model)
    with torch.no_grad():
        fresh = model.step(images[:, 1], tokens[:, 1])["state"]
        whole = model(images[:, :2], tokens[:, :2])["state"]
    gap = max(float((a - b).abs().max()) for a, b in zip(fresh, whole))
    assert (gap > 1e-2) if carried else (gap < 1e-3)


def test_padded_steps_keep_state_and_give_zeros():
    torch.manual_seed(0)
    model = LFM2LiquidMerged(image_size=32, liquid_size=16).eval()
    images, tokens = episode(model)
    mask = torch.tensor([[True, True, True], [True, False, False]])
    with torch.no_grad():
        padded = model(images, tokens, dt=mask.float(), mask=mask)
        short = model(images[1:, :1], tokens[1:, :1])
    assert (padded["action_logits"][1, 1:] == 0).all() and (padded["tau_values"][0][1, 1:] == 0).all()
    for h, h_short in zip(padded["state"], short["state"]):
        torch.testing.assert_close(h[1:], h_short)
    torch.testing.assert_close(padded["action_logits"][1, 0], short["action_logits"][0, 0])


def test_hybrid_is_identity_at_initialisation():
    torch.manual_seed(0)
    model = LFM2Hybrid(image_size=32, liquid_layers=[1, 3]).eval()
    inputs = tiny_inputs(model.base)
    with torch.no_grad():
        hooked = model.base(**inputs).logits
        model.adapters.detach()
        plain = model.base(**inputs).logits
        model.adapters.attach(model.base)
        for b in model.branches().values():
            b.mix.fill_(0.3)
        moved = model.base(**inputs).logits
    assert torch.equal(hooked, plain) and not torch.allclose(moved, plain)


@pytest.mark.parametrize("cls", [LFM2LiquidMerged, LFM2Hybrid])
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_low_precision_base_keeps_liquid_in_float32(cls, dtype):
    torch.manual_seed(0)
    model = cls(image_size=32, liquid_size=16, base_dtype=dtype)
    images, tokens = episode(model, batch=2, steps=2)
    out = model(images, tokens)
    assert all(p.dtype == torch.float32 for b in model.branches().values() for p in b.parameters())
    assert out["action_logits"].dtype == torch.float32 and torch.isfinite(out["action_logits"]).all()
    out["action_logits"].sum().backward()
    assert all(b.mix.grad is not None for b in model.branches().values())
    with torch.autocast("cpu", dtype=torch.bfloat16):  # mixed precision on a float32 base
        model32 = cls(image_size=32, liquid_size=16)
        out = model32(images, tokens)
        assert out["state"][0].dtype == torch.float32 and torch.isfinite(out["action_logits"]).all()


def test_freeze_base_trains_only_liquid_layers_and_heads():
    model = LFM2LiquidMerged(image_size=32, freeze_base=True)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".liquid." in n or n.startswith(("head", "action_head", "click_")) for n in trainable)
    assert sum(p.numel() for n, p in model.named_parameters() if ".liquid." in n) == model.added_parameters()
    unfrozen = LFM2LiquidMerged(image_size=32, freeze_base=False)
    assert all(p.requires_grad for p in unfrozen.parameters())


def tiny_tokenizer(extra_specials=()):
    """A small word-level tokenizer with LFM2-VL's special tokens (and `extra_specials` after the words)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|pad|>", "<|startoftext|>", "<|im_end|>", "<|im_start|>", "<unk>", "<|image_start|>", "<|image_end|>",
                "<image>"]  # fmt: skip
    words = ["user", "assistant", "click", "the", "red", "square", "\n"]
    vocab = {t: i for i, t in enumerate(specials + words + list(extra_specials))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_special_tokens(specials + list(extra_specials))
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<|pad|>", bos_token="<|startoftext|>",
                                   eos_token="<|im_end|>", unk_token="<unk>")  # fmt: skip


def save_tiny_checkpoint(directory):
    """A tiny LFM2-VL saved as a local checkpoint directory, with a small word-level tokenizer."""
    fast = tiny_tokenizer()
    torch.manual_seed(1)
    base = build_base("tiny")
    base.save_pretrained(directory)
    fast.save_pretrained(directory)
    return base


def test_real_weights_load_from_a_local_directory(tmp_path):
    base = save_tiny_checkpoint(tmp_path)
    model = LFM2LiquidMerged(pretrained_path=str(tmp_path), image_size=32)
    loaded = model.base.model.language_model.layers[0].conv.shortconv.in_proj.weight
    torch.testing.assert_close(loaded, base.model.language_model.layers[0].conv.in_proj.weight)
    assert model.tokenize(["click-color"], ["Click the red square"])[0, -3:].tolist() == [11, 12, 13]  # the red square
    images, tokens = episode(model, batch=1, steps=1)
    assert torch.isfinite(model(images, tokens)["action_logits"]).all()
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(ConfigError, match="model.safetensors"):
        LFM2LiquidMerged(pretrained_path=str(tmp_path))


def test_scan_prefill_does_not_loop_over_tokens():
    base, branches = merged_base()
    calls = []
    for branch in branches.values():
        step = branch.cell.step
        branch.cell.step = lambda *a, _step=step, **k: calls.append(1) or _step(*a, **k)
    inputs = tiny_inputs(base, batch=2, text=40)
    with torch.no_grad():
        base(**inputs)
    assert len(calls) == len(branches)  # one solver call per layer for all ~110 tokens (then a log2 N scan)


def test_adaptive_solver_runs_in_the_policy():
    torch.manual_seed(0)
    model = LFM2LiquidMerged(image_size=32, liquid_size=8, solver="dopri5").eval()
    images, tokens = episode(model, batch=1, steps=2)
    with torch.no_grad():
        out = model(images, tokens)
    assert torch.isfinite(out["action_logits"]).all()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("cls", [LFM2LiquidMerged, LFM2Hybrid])
def test_cuda_bf16_mixed_training_step_and_generate(cls):
    torch.manual_seed(0)
    model = cls(image_size=32, liquid_size=16).cuda()
    images, tokens = episode(model)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = model(images.cuda(), tokens.cuda())
        loss = out["action_logits"].float().logsumexp(-1).mean() + out["click_logits"].float().logsumexp(-1).mean()
    loss.backward()
    assert torch.isfinite(loss) and out["state"][0].dtype == torch.float32
    assert all(b.mix.grad is not None for b in model.branches().values())
    text = model.eval().generate(torch.rand(3, 32, 32), "hi", max_new_tokens=3, min_new_tokens=3)
    assert len(text) == 1


def test_pretrained_path_with_tilde_loads_its_tokenizer(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    save_tiny_checkpoint(tmp_path / "lfm2")
    model = LFM2LiquidMerged(pretrained_path="~/lfm2", image_size=32)
    assert model.tokenize(["click-color"], ["Click the red square"])[0, -3:].tolist() == [11, 12, 13]
    assert model.pretrained_path == str(tmp_path / "lfm2")
    monkeypatch.chdir(tmp_path)  # a relative path: resolved once, so the spec loads the same base from anywhere
    assert LFM2LiquidMerged(pretrained_path="lfm2", image_size=32).spec["kwargs"]["pretrained_path"] == str(tmp_path / "lfm2")


def test_remote_code_checkpoint_is_one_line_and_never_prompts(tmp_path, monkeypatch):
    import json

    save_tiny_checkpoint(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config |= {"model_type": "lfm2-vl", "auto_map": {"AutoConfig": "configuration_lfm2_vl.Lfm2VlConfig",
                                                     "AutoModelForImageTextToText": "modeling_lfm2_vl.Lfm2VlForConditionalGeneration"}}  # fmt: skip
    (tmp_path / "config.json").write_text(json.dumps(config))
    monkeypatch.setattr("builtins.input", lambda *a: pytest.fail("prompted for trust_remote_code"))
    with pytest.raises(ConfigError) as info:
        LFM2LiquidMerged(pretrained_path=str(tmp_path), image_size=32)
    assert info.value.key == "pretrained_path" and "\n" not in info.value.message
    assert "'lfm2-vl'" in info.value.message and "auto_map" in info.value.message


@pytest.mark.parametrize("time_unit", ["frame", "token"])
def test_generate_steps_the_liquid_state_as_the_policy_does(time_unit):
    from transformers import DynamicCache

    from lnn.models.lfm2.liquid import read_state

    torch.manual_seed(0)
    model = LFM2LiquidMerged(image_size=32, liquid_size=16, time_unit=time_unit).eval()
    for b in model.branches().values():
        torch.nn.init.normal_(b.mix, std=0.5)
    image = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        policy = model.step(image, model.prompt.text_ids(["hello"], model.max_text_tokens))["state"]
        # generate()'s prefill, the state left in its cache
        result = model.generate(image, "hello", max_new_tokens=1, return_dict=True, return_dict_in_generate=True)
        cache = result["output"].past_key_values
        for i, state in zip(model.liquid_layers, policy):
            torch.testing.assert_close(read_state(cache, i), state, atol=1e-5, rtol=1e-4)
        # the prompt's tokens one by one through a cache (decode steps), at generate()'s rate
        ids, mask = model.prompt.prompts(["hello"])
        emb = model.embed(ids, model.encode_images(image))
        cache = DynamicCache(config=model.base.config.text_config)
        with model.context.pace(model.token_rate(mask, torch.ones(1))):
            for t in range(ids.shape[1]):
                model.base.model.language_model(inputs_embeds=emb[:, t : t + 1], past_key_values=cache, use_cache=True)
        for i, state in zip(model.liquid_layers, policy):
            torch.testing.assert_close(read_state(cache, i), state, atol=1e-5, rtol=1e-4)
        assert policy[0].abs().max() > 1e-2


def test_lora_starts_as_the_pretrained_model_and_trains():
    torch.manual_seed(0)
    model = LFM2LiquidMerged(image_size=32, base_tuning="lora", lora_rank=4).eval()
    torch.manual_seed(0)
    reference = build_base("tiny").eval()
    inputs = tiny_inputs(reference)
    with torch.no_grad():
        assert torch.equal(model.base(**inputs).logits, reference(**inputs).logits)  # LoRA B = 0, mix = 0
    names = {n for n, _ in model.base.named_modules() if n.endswith(".lora_A")}
    assert "model.language_model.layers.2.self_attn.q_proj.lora_A" in names
    assert "model.language_model.layers.0.conv.shortconv.in_proj.lora_A" in names  # merged layer: the inner ShortConv
    assert "model.language_model.layers.1.conv.in_proj.lora_A" in names
    assert not any("vision" in n or ".liquid." in n for n in names)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert all("lora_" in n or ".liquid." in n or n.startswith(("head", "action_head", "click_")) for n in trainable)
    lora = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_B" in n}
    frozen = model.base.model.language_model.layers[2].self_attn.q_proj.base_layer.weight.detach().clone()
    images, tokens = episode(model, batch=2, steps=2)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(2):
        optimizer.zero_grad()
        model(images, tokens)["action_logits"].square().mean().backward()
        optimizer.step()
    moved = [n for n, p in model.named_parameters() if n in lora and not torch.equal(p, lora[n])]
    assert moved and len(moved) == len(lora)
    assert torch.equal(model.base.model.language_model.layers[2].self_attn.q_proj.base_layer.weight, frozen)


@pytest.mark.parametrize("kwargs, key", [({"base_tuning": "partial"}, "base_tuning"),
                                         ({"base_tuning": "full", "freeze_base": True}, "freeze_base"),
                                         ({"base_tuning": "lora", "lora_rank": 0}, "lora_rank"),
                                         ({"base_tuning": "lora", "lora_targets": ["w1"]}, "lora_targets")])  # fmt: skip
def test_base_tuning_refuses_bad_values(kwargs, key):
    with pytest.raises(ConfigError) as info:
        LFM2LiquidMerged(image_size=32, **kwargs)
    assert info.value.key == key


def test_a_lora_checkpoint_is_small_and_reloads_onto_its_base_only(tmp_path):
    import io

    from lnn.runs import build_model, load_weights

    save_tiny_checkpoint(tmp_path / "base")
    torch.manual_seed(0)
    model = LFM2LiquidMerged(pretrained_path=str(tmp_path / "base"), image_size=32, base_tuning="lora").eval()
    with torch.no_grad():  # as after training
        for name, p in model.named_parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.1)
    state = model.state_dict()
    params = dict(model.named_parameters())
    assert "base_sha256" in state and any("lora_B" in k for k in state)
    assert all(params[k].requires_grad for k in state if k in params)  # no frozen base weight in it
    saved, full = io.BytesIO(), io.BytesIO()
    torch.save(state, saved)
    torch.save(model.base.state_dict(), full)
    assert saved.tell() < full.tell() / 3, (saved.tell(), full.tell())

    images, tokens = episode(model, batch=1, steps=2)
    reloaded = build_model(model.spec, "test")
    load_weights(reloaded, state, tmp_path / "x.ckpt", "test")
    with torch.no_grad():
        expected, got = model(images, tokens), reloaded.eval()(images, tokens)
    assert torch.equal(expected["action_logits"], got["action_logits"])
    assert not torch.equal(expected["action_logits"], build_model(model.spec, "test").eval()(images, tokens)["action_logits"])

    torch.manual_seed(5)
    other = build_base("tiny")
    other.save_pretrained(tmp_path / "base")  # a different base in the same directory
    with pytest.raises(ConfigError) as info:
        load_weights(build_model(model.spec, "test"), state, tmp_path / "x.ckpt", "test")
    assert info.value.key == "pretrained_path" and "sha256" in info.value.message


def test_real_weights_read_the_architecture_and_size_the_liquid_defaults(tmp_path):
    from transformers import Lfm2VlForConditionalGeneration

    save_tiny_checkpoint(tmp_path)  # its tokenizer; then a model that differs from the tiny preset over it
    config = build_config("tiny")
    config.text_config.hidden_size, config.text_config.num_hidden_layers = 96, 6
    config.text_config.layer_types = ["conv", "full_attention", "conv", "conv", "full_attention", "conv"]
    config.vision_config.patch_size = 8
    Lfm2VlForConditionalGeneration(config).save_pretrained(tmp_path)
    model = LFM2LiquidMerged(preset="tiny", pretrained_path=str(tmp_path))
    assert model.config.text_config.hidden_size == 96 and len(model.base.model.language_model.layers) == 6
    assert model.liquid_layers == [0, 2, 5] and model.liquid_size == 24  # conv layers [0, 2, 3, 5]; 96 / 4
    assert model.image_size == 128 and model.n_image == 64  # 8 × patch 8 × downsample 2
    assert model.base_tuning == "frozen" and not any(p.requires_grad for n, p in model.base.named_parameters()
                                                     if ".liquid." not in n)  # fmt: skip
    spec = model.spec["kwargs"]
    assert (spec["liquid_layers"], spec["liquid_size"], spec["image_size"], spec["base_tuning"]) == ([0, 2, 5], 24, 128, "frozen")
    images, tokens = episode(model, batch=1, steps=1)
    assert torch.isfinite(model(images, tokens)["action_logits"]).all()
    assert LFM2LiquidMerged().liquid_layers == [0, 3] and LFM2LiquidMerged().base_tuning == "full"  # the preset's, without weights


@pytest.mark.parametrize("cls", [LFM2LiquidMerged, LFM2Hybrid])
def test_gradient_checkpointing_recomputes_the_base_with_the_same_outputs_and_gradients(cls):
    def run(checkpointing: bool):
        torch.manual_seed(0)
        model = cls(image_size=32, liquid_size=16, gradient_checkpointing=checkpointing).train()
        with torch.no_grad():
            for b in model.branches().values():
                b.mix.fill_(0.5)  # as after training: the liquid state (carried across the frames) matters
        layers = model.base.model.language_model.layers
        calls = {"attention": 0, "liquid": 0}
        layers[2].self_attn.register_forward_hook(lambda *_: calls.__setitem__("attention", calls["attention"] + 1))
        model.branches()[3].register_forward_hook(lambda *_: calls.__setitem__("liquid", calls["liquid"] + 1))
        images, tokens = episode(model, batch=2, steps=3)
        out = model(images, tokens)
        loss = out["action_logits"].square().mean() + out["click_logits"].square().mean() + out["coords"].sum()
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        flags = [layer.gradient_checkpointing for layer in layers]
        return out, grads, calls, flags

    plain, plain_grads, plain_calls, plain_flags = run(False)
    ckpt, ckpt_grads, ckpt_calls, ckpt_flags = run(True)
    assert ckpt_flags == [True] * 4 and plain_flags == [False] * 4
    assert plain_calls["attention"] == 3 and ckpt_calls["attention"] == 6  # each frame's layer run again in backward
    if cls is LFM2LiquidMerged:  # the merged liquid layer is inside the recomputed layer (hooks stay outside it)
        assert ckpt_calls["liquid"] == 2 * plain_calls["liquid"] == 6
    for key in ("action_logits", "click_logits", "coords", "state"):
        torch.testing.assert_close(ckpt[key], plain[key], rtol=0, atol=0)
    assert plain_grads.keys() == ckpt_grads.keys() and any(".liquid." in n or "adapters" in n for n in plain_grads)
    for name, grad in plain_grads.items():
        torch.testing.assert_close(ckpt_grads[name], grad, rtol=1e-5, atol=1e-7, msg=name)


def processor_layout(monkeypatch):
    """transformers' own Lfm2VlImageProcessor layout code (pure Python methods) and token counts. Its module imports
    torchvision, which only its resizing uses and which this project does not install: stubbed for the import."""
    import importlib
    import sys
    import types

    from transformers.utils import is_torchvision_available

    if not is_torchvision_available():  # (cached: transformers keeps taking it as absent)
        for name in ("torchvision", "torchvision.transforms", "torchvision.transforms.v2"):
            monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
        monkeypatch.setitem(sys.modules, "torchvision.transforms.v2.functional", types.ModuleType("functional"))
        sys.modules["torchvision.transforms.v2"].functional = sys.modules["torchvision.transforms.v2.functional"]
        monkeypatch.delitem(sys.modules, "transformers.models.lfm2_vl.image_processing_lfm2_vl", raising=False)
    module = importlib.import_module("transformers.models.lfm2_vl.image_processing_lfm2_vl")
    from transformers.models.lfm2_vl.processing_lfm2_vl import Lfm2VlProcessor

    processor = object.__new__(module.Lfm2VlImageProcessor)  # its layout methods read no state

    def layout(height, width, patch, factor, min_tokens, max_tokens, max_tiles, tile):
        split, rows, cols, h, w = processor._get_split_layout(height, width, downsample_factor=factor, min_tiles=2,
                                                              max_tiles=max_tiles, min_image_tokens=min_tokens,
                                                              max_image_tokens=max_tokens, encoder_patch_size=patch,
                                                              tile_size=tile, max_pixels_tolerance=2.0)  # fmt: skip
        per_tile = Lfm2VlProcessor._compute_tokens_per_tile(None, tile, patch, factor)
        whole = Lfm2VlProcessor._compute_tokens_for_image(None, [h, w], patch, factor)
        return rows, cols, (h, w), rows * cols * per_tile + whole if split else whole  # use_thumbnail: True

    return layout


def test_frames_of_any_size_are_cut_as_the_processor_cuts_them(monkeypatch):
    from lnn.models.lfm2.images import frame_layout

    reference = processor_layout(monkeypatch)
    sizes = [(210, 160), (160, 210), (64, 64), (32, 32), (100, 700), (1080, 1920), (33, 47), (512, 512)]
    for patch, max_tokens, tile in ((4, 64, 64), (16, 256, 512), (4, 16, 32)):
        for height, width in sizes:
            ours = frame_layout(height, width, patch, 2, min(64, max_tokens), max_tokens, 10, tile)
            assert (ours.rows, ours.cols, ours.size, ours.tokens(patch, 2)) == reference(
                height, width, patch, 2, min(64, max_tokens), max_tokens, 10, tile), (height, width, patch)
    tiled = frame_layout(210, 160, 4, 2, 64, 64, 10, 64)
    assert (tiled.rows, tiled.cols) == (3, 2) and tiled.size == (72, 48)  # 6 tiles of 64 px + a 72 x 48 thumbnail


def test_a_non_square_frame_goes_through_the_processors_cut(monkeypatch):
    reference = processor_layout(monkeypatch)
    torch.manual_seed(0)
    model = LFM2LiquidMerged(image_size=64, liquid_size=16, max_image_tokens=64, tile_size=64).eval()
    assert model.n_image == 64 and model.cell_xy.shape == (2, 64)  # square frames of image_size: one 8 x 8 crop
    frame = torch.rand(1, 3, 210, 160)  # a MiniWoB task area, aspect kept: 2 x 3 tiles and a thumbnail
    tokens = model.tokenize(["click-color"], ["Click the red square"])
    with torch.no_grad():
        out = model.step(frame, tokens)
    expected = reference(210, 160, 4, 2, 64, 64, 10, 64)[3]
    assert expected == 6 * 64 + 54 and model.n_image == expected  # 6 tiles of 8 x 8 tokens, a 9 x 6 thumbnail
    ids, _ = model.prompt.frames(tokens)
    assert int((ids == model.config.image_token_id).sum()) == expected
    assert out["click_logits"].shape == (1, expected) and model.cell_xy.shape == (2, expected)
    assert torch.isfinite(out["action_logits"]).all() and ((out["coords"] >= 0) & (out["coords"] <= 1)).all()
    cells = model.cell_xy
    assert cells[:, :64].max() < 0.5 and cells[1, :64].max() < 1 / 3  # the first tile: the frame's top-left sixth
    assert cells[:, -54:].min() > 0 and cells[:, -54:].max() < 1  # the thumbnail spans the frame
    text = model.generate(frame[0], "hi", max_new_tokens=2, return_dict=True)  # generate() cuts it the same way
    assert int((text["sequences"] == model.config.image_token_id).sum()) == expected
    images = frame.expand(2, 3, 3, 210, 160)  # a batch of episodes of such frames trains: gradients reach the base
    out = model.train()(images, model.tokenize(["click-color"] * 6, ["Click the red square"] * 6).view(2, 3, -1))
    out["click_logits"].logsumexp(-1).sum().backward()
    assert model.base.model.vision_tower.embeddings.patch_embedding.weight.grad.abs().sum() > 0


def test_tiled_frames_carry_the_processors_tile_markers():
    from types import SimpleNamespace

    from transformers.models.lfm2_vl.processing_lfm2_vl import Lfm2VlProcessor

    from lnn.models.lfm2.images import frame_layout
    from lnn.models.lfm2.text import ByteTokenizer, HFTokenizer, PromptFormat

    tiled = frame_layout(210, 160, 4, 2, 64, 64, 10, 64)  # 3 x 2 tiles of 64 tokens + a 54-token thumbnail
    crops = tiled.crops(4, 2)
    fast = tiny_tokenizer([marker for marker, _ in crops])
    ours = PromptFormat(HFTokenizer(fast, fast.convert_tokens_to_ids("<image>")), tiled.tokens(4, 2), crops).image
    names = SimpleNamespace(image_start_token="<|image_start|>", image_end_token="<|image_end|>",
                            image_thumbnail_token="<|img_thumbnail|>", image_token="<image>")  # fmt: skip
    text = Lfm2VlProcessor._build_image_tokens(names, tiled.rows, tiled.cols, crops[0][1], crops[-1][1], True, True)
    assert ours == fast(text, add_special_tokens=False)["input_ids"]
    assert fast.convert_ids_to_tokens(ours[:2]) == ["<|image_start|>", "<|img_row_1_col_1|>"] and len(ours) == 2 + 7 + 438
    untiled = frame_layout(64, 64, 4, 2, 64, 64, 10, 64)
    assert untiled.crops(4, 2) == [(None, 64)]  # one crop: no marker, as the processor writes it
    byte = ByteTokenizer(image_token_id=7)  # no marker tokens: the image tokens alone, between start and end
    assert PromptFormat(byte, 438, crops).image == [5] + [7] * 438 + [6]
    with pytest.raises(ValueError, match="add up"):
        PromptFormat(byte, 437, crops)


@pytest.mark.parametrize("kwargs, key", [({"max_image_tokens": 0}, "max_image_tokens"),
                                         ({"max_image_tokens": 16, "min_image_tokens": 64}, "min_image_tokens"),
                                         ({"max_image_tokens": 64, "max_tiles": 0}, "max_tiles"),
                                         ({"max_image_tokens": 64, "tile_size": 30}, "tile_size")])  # fmt: skip
def test_image_token_options_refuse_bad_values(kwargs, key):
    with pytest.raises(ConfigError) as info:
        LFM2LiquidMerged(image_size=32, **kwargs)
    assert info.value.key == key
