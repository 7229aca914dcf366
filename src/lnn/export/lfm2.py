"""ONNX export of an LFM2-Liquid policy, with a parity check against PyTorch.

Three graphs (each one file; the 450M model's weights go to a side `.data` file, over protobuf's 2 GB):

* `vision.onnx` — frames (B, 3, S, S) in [0, 1] -> image token embeddings (B, n_image, H): SigLIP2
  NaFlex + the projector, for square frames of the policy's `image_size`.
* `decoder_step.onnx` — one token through the whole text decoder with **every cache as an input and
  an output**: `input_ids` (B, 1), `image_embeds` (B, 1, H) (used where the token is `<image>`),
  `attention_mask` (B, P + 1), `position_ids` (B, 1), `dt` (B, 1) the token's elapsed time for the
  liquid layers (text generation: 1; a policy frame: 1 / its real prompt tokens — the manifest says
  which; 0 on padding), then per layer in order: attention layers
  `key_<i>`, `value_<i>` (B, kv_heads, P, head_dim); ShortConv layers `conv_<i>` (B, H, L_cache);
  liquid layers `liquid_<i>` (B, size). Outputs: `logits` (B, vocab), `hidden` (B, H) (the final
  hidden state), `tau_<i>` (B, τ-size) per liquid layer, and the `present_*` caches (P + 1 keys). A
  token whose `attention_mask` is 0 (padding) leaves the conv and liquid states as they were.
* `heads.onnx` — the policy heads: `hidden` (B, H) of the last prompt token and `image_hidden`
  (B, n_image, H) of the image tokens -> `action_logits`, `click_logits`, `coords`.

Run a frame as the policy does: vision, then the prompt token by token through the decoder step
(starting from empty attention caches — P = 0 — zero conv states, and the liquid state carried from the
previous frame), then the heads. `export_lfm2` checks each graph and that whole pipeline against
PyTorch on example inputs and returns the differences (and draws them in `parity.png`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from lnn.errors import ConfigError
from lnn.models.lfm2.images import patchify
from lnn.models.lfm2.liquid import write_state

OPSET = 18


class SquareImageEncoder(nn.Module):
    """encode_images for square frames without the data-dependent indexing of get_image_features.

    For a g × g patch grid, image token (r, c) is the projector applied to the 2 × 2 block of patches
    (2r + i, 2c + j) concatenated in (i, j) row-major order — exactly what LFM2-VL's pixel-unshuffle
    gathers (checked against it in the parity check).
    """

    def __init__(self, policy):
        super().__init__()
        self.vision = policy.base.model.vision_tower
        self.projector = policy.base.model.multi_modal_projector
        self.patch, self.factor = policy.patch, policy.factor

    def forward(self, images: Tensor) -> Tensor:
        batch, f = images.shape[0], self.factor
        pixels, mask, shapes = patchify(images.to(self.projector.linear_1.weight.dtype), self.patch)
        hidden = self.vision(pixel_values=pixels, spatial_shapes=shapes, pixel_attention_mask=mask).last_hidden_state
        g = images.shape[-1] // self.patch
        blocks = hidden.view(batch, g // f, f, g // f, f, -1).permute(0, 1, 3, 2, 4, 5).reshape(batch, (g // f) ** 2, -1)
        p = self.projector
        if p.use_layer_norm:
            blocks = p.layer_norm(blocks)
        return p.linear_2(p.act(p.linear_1(blocks)))


def cache_layout(policy) -> list[tuple[str, int]]:
    """(kind, layer) of every decoder-step state, in input order: key/value, conv, liquid."""
    text = policy.config.text_config
    liquid = set(policy.branches())
    layout = []
    for i, kind in enumerate(text.layer_types):
        if kind == "conv":
            layout.append(("conv", i))
            if i in liquid:
                layout.append(("liquid", i))
        else:
            layout += [("key", i), ("value", i)]
    return layout


class DecoderStep(nn.Module):
    """One token through the LFM2 decoder with every cache explicit (see the module docstring)."""

    def __init__(self, policy):
        super().__init__()
        self.policy = policy
        self.lm, self.lm_head = policy.base.model.language_model, policy.base.lm_head
        self.layout = cache_layout(policy)
        self.image_token_id = policy.config.image_token_id

    def forward(self, input_ids, image_embeds, attention_mask, position_ids, dt, *states):
        from transformers import DynamicCache

        cache = DynamicCache(config=self.policy.config.text_config)
        given = dict(zip(self.layout, states))
        for (kind, i), value in given.items():
            slot = cache.layers[i]
            if kind == "key":
                slot.lazy_initialization(value, given[("value", i)])
                slot.keys, slot.values = value, given[("value", i)]
            elif kind == "conv":
                slot.lazy_initialization(conv_states=value)
                slot.conv_states[0] = value.clone()
                slot.has_previous_state[0] = True
            elif kind == "liquid":
                write_state(cache, i, value)
        emb = self.lm.embed_tokens(input_ids)
        emb = torch.where((input_ids == self.image_token_id).unsqueeze(-1), image_embeds.to(emb.dtype), emb)
        with self.policy.context.recording() as taus, self.policy.context.timing(dt.to(torch.float32)):
            hidden = self.lm(inputs_embeds=emb, attention_mask=attention_mask, position_ids=position_ids, cache=cache,
                             use_cache=True).last_hidden_state[:, -1]  # fmt: skip
        real = attention_mask[:, -1:].to(torch.bool)
        outputs = [self.lm_head(hidden), hidden]
        outputs += [taus[i][0][:, 0] for kind, i in self.layout if kind == "liquid"]
        for (kind, i), old in given.items():
            slot = cache.layers[i]
            if kind == "key":
                outputs.append(slot.keys)
            elif kind == "value":
                outputs.append(slot.values)
            elif kind == "conv":
                outputs.append(torch.where(real.unsqueeze(-1), slot.conv_states[0], old))
            else:
                outputs.append(torch.where(real, slot.recurrent_states[0], old))
        return tuple(outputs)


class Heads(nn.Module):
    def __init__(self, policy):
        super().__init__()
        self.policy = policy

    def forward(self, hidden: Tensor, image_hidden: Tensor):
        p = self.policy
        z = p.head(hidden.to(p.head[0].weight.dtype))
        return p.read_out(z, p.click_keys(image_hidden.to(z.dtype)))


def state_names(layout, prefix: str = "") -> list[str]:
    return [f"{prefix}{kind}_{i}" for kind, i in layout]


def empty_states(policy, batch: int, past: int = 0, dtype=torch.float32) -> list[Tensor]:
    """Decoder-step states at the start of a prompt: `past` cached positions (zeros), zero conv and liquid states."""
    text = policy.config.text_config
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    shapes = {"key": (batch, text.num_key_value_heads, past, head_dim), "value": (batch, text.num_key_value_heads, past, head_dim),
              "conv": (batch, text.hidden_size, text.conv_L_cache), "liquid": (batch, policy.liquid_size)}  # fmt: skip
    return [torch.zeros(shapes[kind], dtype=torch.float32 if kind == "liquid" else dtype) for kind, _ in cache_layout(policy)]


def _export(module, args, path: Path, input_names, output_names, dynamic_shapes, external: bool) -> None:
    # transformers' input checks (torch._check on tensors) have no ONNX form; its documented switch turns them off
    previous = os.environ.get("TRANSFORMERS_DISABLE_TORCH_CHECK")
    os.environ["TRANSFORMERS_DISABLE_TORCH_CHECK"] = "1"
    try:
        program = torch.onnx.export(module, args, dynamo=True, input_names=input_names, output_names=output_names,
                                    dynamic_shapes=dynamic_shapes, opset_version=OPSET, verbose=False)  # fmt: skip
    finally:
        if previous is None:
            os.environ.pop("TRANSFORMERS_DISABLE_TORCH_CHECK")
        else:
            os.environ["TRANSFORMERS_DISABLE_TORCH_CHECK"] = previous
    program.save(str(path), external_data=external)


# export.py keys an LFM2 export applies; every other key set on the command line is refused (check_lfm2_options)
LFM2_EXPORT_KEYS = ("ckpt", "run", "out", "overwrite")


def check_lfm2_options(explicit) -> None:
    """Stop with one line naming the first key set on the command line that an LFM2 export cannot apply.

    It writes float32 graphs with the trained solver and its own parity check: no fp16/int8 variants, no
    solver substitution or folding, no web page (so nothing to serve), no Lite parity streams or plots.
    """
    for key in explicit:
        if key.split(".")[0] not in LFM2_EXPORT_KEYS:
            raise ConfigError(key, "does not apply to an LFM2 export (float32 vision/decoder_step/heads graphs with the "
                                   f"trained solver, no web page); it takes only {', '.join(LFM2_EXPORT_KEYS)}")  # fmt: skip


def check_exportable(policy) -> None:
    """Stop with one line naming the part that cannot be exported."""
    for i, branch in policy.branches().items():
        if branch.cell.solver == "dopri5":
            raise ConfigError("solver", f"dopri5 (adaptive, through torchdiffeq) in liquid layer {i} cannot be exported "
                                        "to ONNX; train or fine-tune with a fixed-step solver (rk4, semi_implicit, ...)")  # fmt: skip


@torch.no_grad()
def export_lfm2(policy, out_dir: str | Path, batch: int = 2, seed: int = 0) -> dict:
    """Write vision.onnx, decoder_step.onnx, heads.onnx (+ manifest.json, parity.json, parity.png) to out_dir.

    Returns the parity dict: max |ONNX − PyTorch| per graph and for the whole frame pipeline.
    """
    check_exportable(policy)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    policy = policy.eval().cpu()
    external = sum(p.numel() for p in policy.parameters()) * 4 > 1.5e9  # over protobuf's 2 GB: a side .data file
    g = torch.Generator().manual_seed(seed)
    graphs = [export_vision(policy, out, batch, g, external), export_decoder_step(policy, out, batch, g, external),
              export_heads(policy, out, batch, g, external)]  # fmt: skip
    parity = check_parity(policy, out, graphs, g)
    decoder = graphs[1]
    (out / "manifest.json").write_text(json.dumps(lfm2_manifest(policy, decoder.inputs, decoder.outputs), indent=1))
    (out / "parity.json").write_text(json.dumps(parity, indent=1))
    return parity


@dataclass
class Graph:
    """An exported graph: its file, the module exported, the example inputs and the names of its inputs and outputs."""

    file: str
    module: nn.Module
    example: tuple
    inputs: list[str]
    outputs: list[str]


def _batch_dim():
    return torch.export.Dim("batch", min=1, max=1024)


def export_vision(policy, out: Path, batch: int, g: torch.Generator, external: bool) -> Graph:
    """vision.onnx: frames -> image token embeddings."""
    vision = SquareImageEncoder(policy).eval()
    frames = torch.rand(batch, 3, policy.image_size, policy.image_size, generator=g)
    graph = Graph("vision.onnx", vision, (frames,), ["images"], ["image_embeds"])
    _export(vision, graph.example, out / graph.file, graph.inputs, graph.outputs, ({0: _batch_dim()},), external)
    return graph


def export_decoder_step(policy, out: Path, batch: int, g: torch.Generator, external: bool) -> Graph:
    """decoder_step.onnx: one token through the decoder, every cache in and out (random example states)."""
    step = DecoderStep(policy).eval()
    layout, text, dtype = cache_layout(policy), policy.config.text_config, policy.base.dtype
    past = 3
    batch_dim, past_dim = _batch_dim(), torch.export.Dim("past", min=1, max=text.max_position_embeddings - 1)
    example = [torch.randint(16, 200, (batch, 1), generator=g), torch.zeros(batch, 1, text.hidden_size, dtype=dtype),
               torch.ones(batch, past + 1, dtype=torch.long), torch.full((batch, 1), past, dtype=torch.long),
               torch.full((batch, 1), 0.25)]  # fmt: skip
    states = [s.normal_(generator=g) * 0.1 for s in empty_states(policy, batch, past, dtype)]
    inputs = ["input_ids", "image_embeds", "attention_mask", "position_ids", "dt", *state_names(layout)]
    outputs = ["logits", "hidden", *[f"tau_{i}" for kind, i in layout if kind == "liquid"], *state_names(layout, "present_")]
    shapes = [{0: batch_dim}, {0: batch_dim}, {0: batch_dim, 1: past_dim + 1}, {0: batch_dim}, {0: batch_dim}]
    shapes.append(tuple({0: batch_dim, 2: past_dim} if kind in ("key", "value") else {0: batch_dim} for kind, _ in layout))
    graph = Graph("decoder_step.onnx", step, (*example, *states), inputs, outputs)
    _export(step, graph.example, out / graph.file, inputs, outputs, tuple(shapes), external)
    return graph


def export_heads(policy, out: Path, batch: int, g: torch.Generator, external: bool) -> Graph:
    """heads.onnx: the last prompt token's hidden state and the image tokens' -> action, click, coords."""
    heads = Heads(policy).eval()
    text = policy.config.text_config
    hidden = torch.randn(batch, text.hidden_size, generator=g)
    image_hidden = torch.randn(batch, policy.n_image, text.hidden_size, generator=g)
    graph = Graph("heads.onnx", heads, (hidden, image_hidden), ["hidden", "image_hidden"],
                  ["action_logits", "click_logits", "coords"])  # fmt: skip
    _export(heads, graph.example, out / graph.file, graph.inputs, graph.outputs, ({0: _batch_dim()}, {0: _batch_dim()}),
            external)  # fmt: skip
    return graph


def _numpy(t: Tensor) -> np.ndarray:
    return t.detach().float().numpy() if t.is_floating_point() else t.numpy()


def _max_diff(a, b: Tensor) -> float:
    return float(np.abs(np.asarray(a, dtype=np.float64) - _numpy(b).astype(np.float64)).max())


def check_parity(policy, out: Path, graphs: list[Graph], g: torch.Generator) -> dict:
    """max |ONNX − PyTorch| of each graph on its example inputs, then of the whole frame pipeline."""
    import onnxruntime as ort

    vision, step, heads = graphs
    sv, sd, sh = (ort.InferenceSession(str(out / graph.file), providers=["CPUExecutionProvider"]) for graph in graphs)
    parity: dict = {}
    # vision: ONNX vs the square encoder vs transformers' get_image_features (through the policy)
    frames = vision.example[0]
    reference = policy.encode_images(frames).float()
    parity["vision_torch_square_vs_get_image_features"] = _max_diff(_numpy(vision.module(frames)), reference)
    parity["vision"] = _max_diff(sv.run(None, {"images": _numpy(frames)})[0], reference)
    # decoder step on the random example states
    onnx_out = sd.run(None, dict(zip(step.inputs, [_numpy(t) for t in step.example])))
    torch_out = step.module(*step.example)
    parity["decoder_step"] = max(_max_diff(o, t) for o, t in zip(onnx_out, torch_out))
    parity["decoder_step_logits"] = _max_diff(onnx_out[0], torch_out[0])
    # heads
    onnx_heads = sh.run(None, dict(zip(heads.inputs, [_numpy(t) for t in heads.example])))
    parity["heads"] = max(_max_diff(o, t) for o, t in zip(onnx_heads, heads.module(*heads.example)))
    # the whole frame: vision -> prompt token by token (from P = 0) -> heads, vs the policy's forward
    parity |= frame_parity(policy, sv, sd, sh, step.inputs, cache_layout(policy), g, out / "parity.png")
    return parity


def lfm2_manifest(policy, inputs: list[str], outputs: list[str]) -> dict:
    """What a runtime needs to drive the three graphs: files, sizes, token ids, the state layout, the prompt."""
    layout = cache_layout(policy)
    return {
        "files": {"vision": "vision.onnx", "decoder_step": "decoder_step.onnx", "heads": "heads.onnx"},
        "image_size": policy.image_size, "n_image_tokens": policy.n_image,
        "image_token_id": policy.config.image_token_id, "pad_token_id": policy.tokenizer.pad_id,
        "liquid_layers": list(policy.branches()), "liquid_size": policy.liquid_size,
        "states": [{"name": n, "kind": kind, "layer": i} for n, (kind, i) in zip(state_names(layout), layout)],
        "decoder_inputs": inputs, "decoder_outputs": outputs, "opset": OPSET, "time_unit": policy.time_unit,
        "prompt_prefix": policy.prompt.prefix + policy.prompt.image, "prompt_suffix": policy.prompt.suffix,
    }  # fmt: skip


def frame_parity(policy, sv, sd, sh, inputs, layout, g, figure: Path) -> dict:
    """Two frames of an episode run through the ONNX graphs, token by token, vs `policy.forward`."""
    batch, steps = 2, 2
    images = torch.rand(batch, steps, 3, policy.image_size, policy.image_size, generator=g)
    texts = ["Click the red square", 'Type "ok" in the field', "Click OK", "Scroll down"]
    tokens = policy.tokenize(["click-color"] * 4, texts).view(batch, steps, -1)
    state_inputs = inputs[5:]
    n_tau = sum(kind == "liquid" for kind, _ in layout)
    reference = policy(images, tokens)
    torch_states = dict(zip(policy.branches(), policy.initial_state(batch)))
    liquid = {i: np.zeros((batch, policy.liquid_size), np.float32) for i in policy.branches()}
    per_token, result = [], {"frame_hidden": 0.0, "frame_action_logits": 0.0, "frame_click_logits": 0.0}
    for t in range(steps):
        image_embeds = sv.run(None, {"images": images[:, t].numpy()})[0]
        ids, mask = policy.prompt.frames(tokens[:, t])
        emb = policy.embed(ids, policy.encode_images(images[:, t]))
        torch_hidden, torch_states, _ = policy.decode_frames(emb, mask, torch_states, torch.ones(batch))
        states = {name: s.numpy() for name, s in zip(state_inputs, empty_states(policy, batch, 0))}
        states |= {name: liquid[i] for (kind, i), name in zip(layout, state_inputs) if kind == "liquid"}
        hidden_steps, n_img = [], np.zeros(batch, np.int64)
        token_dt = policy.token_dt(mask, torch.ones(batch)).numpy()  # the frame's time over its tokens
        for k in range(ids.shape[1]):
            token = ids[:, k : k + 1].numpy()
            is_image = token[:, 0] == policy.config.image_token_id
            embeds = np.zeros((batch, 1, image_embeds.shape[-1]), np.float32)
            for b in np.nonzero(is_image)[0]:
                embeds[b, 0] = image_embeds[b, n_img[b]]
            n_img += is_image
            feed = {"input_ids": token, "image_embeds": embeds, "attention_mask": mask[:, : k + 1].numpy(),
                    "position_ids": (mask[:, : k + 1].sum(1, keepdim=True) - 1).clamp(min=0).numpy(),
                    "dt": token_dt[:, k : k + 1].astype(np.float32)}  # fmt: skip
            out = sd.run(None, feed | states)
            states = dict(zip(state_inputs, out[2 + n_tau :]))
            hidden_steps.append(out[1])
        hidden = np.stack(hidden_steps, 1)  # (B, N, H)
        real = mask.bool().numpy()
        token_err = np.abs(hidden - torch_hidden.numpy()).max(-1)  # (B, N)
        per_token.append(np.where(real, token_err, np.nan))
        result["frame_hidden"] = max(result["frame_hidden"], float(token_err[real].max()))
        image_hidden = hidden[(ids == policy.config.image_token_id).numpy()].reshape(batch, policy.n_image, -1)
        action, click, _ = sh.run(None, {"hidden": hidden[:, -1], "image_hidden": image_hidden})
        result["frame_action_logits"] = max(result["frame_action_logits"],
                                            float(np.abs(action - reference["action_logits"][:, t].numpy()).max()))
        result["frame_click_logits"] = max(result["frame_click_logits"],
                                           float(np.abs(click - reference["click_logits"][:, t].numpy()).max()))  # fmt: skip
        liquid = {i: states[name] for (kind, i), name in zip(layout, state_inputs) if kind == "liquid"}
    result["frame_liquid_state"] = max(float(np.abs(liquid[i] - reference["state"][j].numpy()).max())
                                       for j, i in enumerate(policy.branches()))  # fmt: skip
    plot_parity(result, per_token, figure)
    return result


def plot_parity(result: dict, per_token: list, path: Path) -> None:
    """max |ONNX − PyTorch| of the final hidden state per prompt token, frame after frame."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.2))
    offset = 0
    for t, errors in enumerate(per_token):
        n = errors.shape[1]
        for b, row in enumerate(errors):
            ax.semilogy(np.arange(offset, offset + n), np.maximum(row, 1e-12), ".", ms=3, color=f"C{b}",
                        label=f"episode {b}" if t == 0 else None)  # fmt: skip
        ax.axvline(offset - 0.5, color="#aaa", lw=0.8)
        ax.text(offset + 1, 1e-3, f"frame {t + 1}", fontsize=8, color="#555")
        offset += n
    ax.set_ylim(1e-9, 1e-2)
    ax.set_xlabel("prompt token position (padding not shown); the frames of one episode in order")
    ax.set_ylabel("max |ONNX − PyTorch|, hidden")
    ax.set_title(f"LFM2-Liquid decoder step (ONNX) vs PyTorch: action logits ≤ {result['frame_action_logits']:.1e}, "
                 f"liquid state ≤ {result['frame_liquid_state']:.1e}", fontsize=9)  # fmt: skip
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
