"""The policy's single step as an ONNX graph: image + tokens (+ strip) + dt + state of every core layer in ->
action_logits, coords, τ of every liquid layer, new state out; dynamic batch axis.

    image      (batch, 3, H, W) float32 in [0, 1]   RGB; the model normalises inside the graph
    tokens     (batch, L) int64                    the bytes of the words of "<task> <instruction>" (lnn.models.text)
    strip      (batch, S, 18, 66) float32          only with model.match_text: the instruction's named text
                                                   drawn in S styles (lnn.models.glyphs; preprocessing.strip)
    dt         (batch,) float32                    seconds since the previous frame, as the env reports it
                                                   (Observation.dt; 1.0 where unknown, e.g. a browser's first
                                                   frame): the ODE cores integrate over it, the others read it
                                                   as an input feature, as model.step(..., dt=dt) does
    state_i    (batch, S_i) float32                layer i's state; zeros start an episode (S_i = H; the
                                                   LSTM's is [h, c], 2H; the feed-forward core has none)
  ->
    action_logits (batch, A), coords (batch, 2) in [0, 1], then the optional heads' outputs the model has
    (HEADS: release (batch, 2), key_logits (batch, len(KEYS)), text_logits (batch, slots, choices), text_bytes
    (batch, slots) int64), tau_i (batch,
    k) (k = 1 per sample, or H per neuron; only the liquid core's layers have a bounded τ: other cores have no
    tau_i), new_state_i (batch, S_i)

The export goes through torch.onnx's dynamo exporter (tracing the liquid layers' plain reference loop)
and writes one self-contained file (no `.data` side file), per-node metadata stripped, names minified.
fp16 and int8 store the weights as fp16 / per-channel int8 and restore them to float32 in the graph
(`weights` schemes, the defaults: float32 arithmetic, as fast as fp32); `fp16=full` (fp16 arithmetic,
onnxruntime.transformers' converter) and `int8=dynamic` (onnxruntime's dynamic quantisation, int8
arithmetic) are the alternatives.

Two graph-level choices, both checked by the parity figures against the unmodified PyTorch model:
* `fold_linear`: the Lite model's `input_proj` and the first liquid layer's input projection are two
  linear maps in a row; their product is one (exact up to float rounding), which saves a 256×256
  matrix (0.26 MB fp32) and a matmul per step;
* the ODE solver: a fixed-step solver with `unfolds` sub-steps replaces dopri5 (adaptive, not
  exportable), or any solver the user asks for.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import warnings
from pathlib import Path

import torch
from torch import nn

from lnn.errors import ConfigError
from lnn.frames import frame_size
from lnn.liquid import SOLVERS
from lnn.models.glyphs import STRIP
from lnn.models.text import CHARS

FIXED_SOLVERS = tuple(name for name, s in SOLVERS.items() if s.exportable)
OPSET = 18


def tau_layers(model: nn.Module) -> int:
    """How many tau_i outputs the step has: one per liquid layer."""
    return len(model.liquid_cells())


def state_sizes(model: nn.Module) -> list[int]:
    """The size of each state_i (one per core layer that carries state)."""
    return [h.shape[-1] for h in model.initial_state(1)]


def hidden_size(model: nn.Module) -> int:
    """The core's width (0 without one)."""
    cells = model.liquid_cells()
    return cells[0].hidden_size if cells else getattr(model, "width", 0)


def solver_of(model: nn.Module) -> tuple[str, int] | None:
    cells = model.solver_cells()
    return (cells[0].solver, cells[0].unfolds) if cells else None


def with_solver(model: nn.Module, solver: str, unfolds: int) -> nn.Module:
    """A copy of the model whose ODE cells integrate with `solver` in `unfolds` sub-steps (exportable ones only)."""
    if solver not in FIXED_SOLVERS:
        raise ConfigError("solver", f"{solver!r} cannot be exported; choose a fixed-step solver: {', '.join(FIXED_SOLVERS)}")
    if not (isinstance(unfolds, int) and unfolds >= 1):
        raise ConfigError("unfolds", f"must be an integer >= 1, got {unfolds!r}")
    return model.with_solver(solver, unfolds)


def fold_input_projection(model: nn.Module) -> tuple[nn.Module, list[str]]:
    """A copy with `input_proj` folded into the first liquid cell's input projection (see the module doc).

    Returns the model and what was folded ([] when the model has no such pair, e.g. the feed-forward core).
    """
    cells = model.liquid_cells()
    first, proj = (cells[0] if cells else None), getattr(model, "input_proj", None)
    if first is None or not isinstance(proj, nn.Linear) or not isinstance(getattr(first, "input_proj", None), nn.Linear):
        return model, []
    model = copy.deepcopy(model)
    first, proj = model.liquid_cells()[0], model.input_proj
    inner = first.input_proj
    with torch.no_grad():
        w = inner.weight.double() @ proj.weight.double()  # (H + k, D_in)
        b = inner.weight.double() @ proj.bias.double() + inner.bias.double()
        folded = nn.Linear(proj.in_features, inner.out_features)
        folded.weight.copy_(w.float())
        folded.bias.copy_(b.float())
    first.input_proj = folded
    model.input_proj = nn.Identity()
    return model, ["input_proj → core.layers.0.cell.input_proj"]


def reference_path(model: nn.Module) -> nn.Module:
    """A copy whose liquid layers run their plain reference loop (no fused custom-autograd fast path):
    the loop of ordinary torch ops is what the ONNX exporter can trace. Layers without the switch
    (`impl`) are plain loops already."""
    model = copy.deepcopy(model)
    for module in model.modules():
        if hasattr(module, "impl") and callable(getattr(module, "fused", None)):
            module.impl = "reference"
    return model


def text_names(model: nn.Module) -> list[str]:
    """The model's text inputs (`text_inputs`' keys): ["tokens"], and "strip" for a match_text Lite."""
    return list(model.text_inputs([""], [""]))


# The optional heads' step outputs, and the Lite attribute that holds each head (None: the model has none)
# (text_logits: what parity judges the text by; text_bytes: what a reader decodes)
HEADS = {"release": "release_scorer", "key_logits": "key_head", "text_logits": "text_head", "text_bytes": "text_head"}


def head_names(model: nn.Module) -> list[str]:
    """The optional heads' outputs this model's step has, in HEADS order (the graph's order)."""
    return [name for name, attr in HEADS.items() if getattr(model, attr, None) is not None]


class StepGraph(nn.Module):
    """model.step with flat tensors in and out: the signature the ONNX graph gets (image, the text inputs, dt, state)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model, self.text, self.heads = model, text_names(model), head_names(model)

    def forward(self, image, *rest):
        text, (dt, *state) = dict(zip(self.text, rest)), rest[len(self.text) :]
        out = self.model.step(image, **text, state=list(state) if state else None, dt=dt)
        heads = [out[name] for name in self.heads]
        return (out["action_logits"], out["coords"], *heads, *out["tau_values"], *out["state"])


def io_names(taus: int, states: int, text: list[str] = ("tokens",),
             heads: list[str] = ()) -> tuple[list[str], list[str]]:  # fmt: skip
    inputs = ["image", *text, "dt"] + [f"state_{i}" for i in range(states)]
    outputs = ["action_logits", "coords", *heads] + [f"tau_{i}" for i in range(taus)]
    outputs += [f"new_state_{i}" for i in range(states)]
    return inputs, outputs


def head_spec(model: nn.Module) -> list[dict]:
    """The manifest's entries of the optional heads' outputs."""
    slots = model.text_head.slot.shape[0] if model.text_head is not None else 0
    spec = {
        "release": {"shape": ["batch", 2], "dtype": "float32",
                    "description": "drag: where the button is released (x2, y2) as fractions of the frame's width and "
                                   "height; it is pressed at coords"},
        "key_logits": {"shape": ["batch", model.key_head[-1].out_features if model.key_head is not None else 0],
                       "dtype": "float32", "description": "key: unnormalised scores of the keys (manifest.keys; "
                                                          "argmax = the key pressed)"},
        "text_logits": {"shape": ["batch", slots, CHARS + model.max_tokens], "dtype": "float32",
                        "description": "type: per text slot, scores of the characters (printable ASCII, then end) and "
                                       "of copying each instruction id's byte (argmax gives text_bytes)"},
        "text_bytes": {"shape": ["batch", slots],
                       "dtype": "int64", "description": "type: the text's UTF-8 bytes, -1 where it ends (the bytes "
                                                        "before the first -1, decoded as UTF-8)"},
    }  # fmt: skip
    return [{"name": name, **spec[name]} for name in head_names(model)]


def io_spec(model: nn.Module) -> dict:
    """Inputs and outputs with shapes (`batch` is dynamic) and dtypes, for the manifest."""
    taus, sizes, (height, width) = tau_layers(model), state_sizes(model), frame_size(model.image_size)
    tau = model.liquid_cells()[0].tau_size if taus else 0
    per = "neuron" if taus and tau > 1 else "sample"
    inputs = [
        {"name": "image", "shape": ["batch", 3, height, width], "dtype": "float32",
         "description": "RGB frame resized to image_size, values in [0, 1] (uint8 / 255), channels first"},
        {"name": "tokens", "shape": ["batch", model.max_tokens], "dtype": "int64",
         "description": "byte ids of the words of '<task> <instruction>', in word slots (see "
                        "preprocessing.tokens); 0 pads"},
    ] + ([{"name": "strip", "shape": ["batch", len(model.match_styles), *STRIP], "dtype": "float32",
           "description": "the instruction's named text drawn as ink in [0, 1] (1 = black), once per style of "
                          "preprocessing.strip.styles; all zero when nothing is named"}] if "strip" in text_names(model) else []) + [
        {"name": "dt", "shape": ["batch"], "dtype": "float32",
         "description": "seconds since the previous frame, as the env reports it (1.0 where unknown, e.g. an "
                        "episode's first frame in a browser); the state evolves over this elapsed time"},
    ] + [{"name": f"state_{i}", "shape": ["batch", n], "dtype": "float32",
          "description": f"core layer {i}'s state from the previous step (new_state_{i}); zeros start an episode"}
         for i, n in enumerate(sizes)]  # fmt: skip
    outputs = [
        {"name": "action_logits", "shape": ["batch", model.num_actions], "dtype": "float32",
         "description": "unnormalised scores of the actions (argmax = the chosen action)"},
        {"name": "coords", "shape": ["batch", 2], "dtype": "float32",
         "description": "click point (x, y) as fractions of the frame's width and height"},
    ] + head_spec(model) + [{"name": f"tau_{i}", "shape": ["batch", tau], "dtype": "float32",
          "description": f"layer {i}'s time constant τ at this step (one per {per}), in [tau_min, tau_max]"}
         for i in range(taus)] + [
        {"name": f"new_state_{i}", "shape": ["batch", n], "dtype": "float32",
         "description": f"layer {i}'s state after this step: feed it back as state_{i}"} for i, n in enumerate(sizes)
    ]
    return {"inputs": inputs, "outputs": outputs}


def strip_metadata(proto) -> None:
    """Drop per-node metadata and doc strings (source locations etc.): a smaller file, same graph."""
    graphs = [proto.graph]
    while graphs:
        graph = graphs.pop()
        graph.doc_string = ""
        for node in graph.node:
            del node.metadata_props[:]
            node.doc_string = ""
            for attr in node.attribute:
                if attr.g is not None and attr.g.node:
                    graphs.append(attr.g)
                graphs.extend(g for g in attr.graphs)
        for value in list(graph.value_info) + list(graph.input) + list(graph.output):
            del value.metadata_props[:]
            value.doc_string = ""
    del proto.metadata_props[:]
    proto.doc_string = ""


def minify(proto) -> None:
    """Short names for every internal tensor and node (graph inputs and outputs keep theirs), no
    intermediate shape annotations (onnxruntime infers them), nodes in topological order: ~25 kB less
    per file here, the same graph."""
    graph = proto.graph
    keep = {i.name for i in graph.input} | {o.name for o in graph.output}
    names: dict[str, str] = {}

    def short(name: str) -> str:
        if not name or name in keep:
            return name
        return names.setdefault(name, f"t{len(names)}")

    for init in graph.initializer:
        init.name = short(init.name)
    for i, node in enumerate(graph.node):
        node.name = f"n{i}"
        node.input[:] = [short(x) for x in node.input]
        node.output[:] = [short(x) for x in node.output]
    del graph.value_info[:]
    # topological order (the fp16 converter inserts its casts out of order; onnxruntime copes, the checker not)
    available = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        ready = [n for n in pending if all(x in available for x in n.input)]
        if not ready:
            raise RuntimeError("the exported graph has a cycle or a dangling input")
        for node in ready:
            available.update(node.output)
        ordered += ready
        ready_ids = {id(n) for n in ready}
        pending = [n for n in pending if id(n) not in ready_ids]
    nodes = [type(n)() for n in ordered]
    for dst, src in zip(nodes, ordered):
        dst.CopyFrom(src)
    del graph.node[:]
    graph.node.extend(nodes)


def save(proto, path: Path) -> None:
    """Minified, checked, one self-contained file."""
    import onnx

    minify(proto)
    onnx.checker.check_model(proto)
    onnx.save_model(proto, str(path), save_as_external_data=False)


@contextlib.contextmanager
def quiet():
    """torch.onnx prints progress and warnings of its own; keep the export's output to our lines."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "onnxscript", "torch.export", "torch._export", "root")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def export_fp32(model: nn.Module, path: Path, opset: int = OPSET):
    """Write the step of `model` (eval, float32, CPU) to `path` as one ONNX file; returns the ModelProto."""
    graph = StepGraph(reference_path(model)).eval()
    sizes = state_sizes(model)
    batch = 2  # >= 2, or the exporter specialises the batch axis to 1
    text = text_names(model)
    args = (torch.rand(batch, 3, *frame_size(model.image_size)), torch.randint(0, 2, (batch, model.max_tokens)))
    args += (torch.rand(batch, len(model.match_styles), *STRIP),) if "strip" in text else ()
    args += (torch.tensor([0.5, 2.0]),)  # dt: not 1, so no path specialises on the default
    args += tuple(torch.zeros(batch, n) for n in sizes)
    inputs, outputs = io_names(tau_layers(model), len(sizes), text, head_names(model))
    dim = torch.export.Dim("batch")
    dynamic = {"image": {0: dim}, "rest": tuple({0: dim} for _ in args[1:])}
    try:
        with quiet(), torch.no_grad():
            program = torch.onnx.export(graph, args, dynamo=True, input_names=inputs, output_names=outputs,
                                        dynamic_shapes=dynamic, opset_version=opset, verbose=False)  # fmt: skip
    except Exception as e:  # the exporter's errors are long; the first line says what failed
        first = next((line for line in str(e).splitlines() if line.strip()), type(e).__name__)
        raise RuntimeError(f"torch.onnx.export failed: {first[:300]}") from e
    proto = program.model_proto
    strip_metadata(proto)
    save(proto, path)
    return proto


FP16_SCHEMES = ("weights", "full")
INT8_SCHEMES = ("weights", "dynamic")


FP16_MIN_ELEMENTS = 16  # biases of a handful of values stay float32: not worth a node
INT8_MIN_ELEMENTS = 1024  # int8's scales and zero points would outweigh what a smaller tensor saves


def convert_fp16(src: Path, dst: Path, scheme: str = "weights", keep: frozenset[str] = frozenset()) -> None:
    """fp16 weights: `weights` (stored fp16, computed in float32) or `full` (fp16 arithmetic as well).

    `keep`: initializers the `weights` scheme leaves float32 (those that move the outputs most: the
    export's parity fallback picks them).

    `full` is onnxruntime.transformers' converter with float32 inputs and outputs kept. On the wasm and
    CPU backends it is slower (they have no fp16 kernels and cast around every op) and its rounding of
    every activation compounds over the recurrent steps: τ, spanning τ_max − τ_min, drifts by ~1e-2 for
    τ_max = 20. `weights` rounds only the weights; onnxruntime folds the Casts back to float32 at load.
    """
    if scheme == "weights":
        _store_weights(src, dst, lambda name, w, uses: None if name in keep else _to_fp16(name, w, uses))
    elif scheme == "full":
        import onnx
        from onnxruntime.transformers.float16 import convert_float_to_float16

        with quiet():
            proto = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
        save(proto, dst)
    else:
        raise ConfigError("fp16", f"unknown scheme {scheme!r}; choose one of {', '.join(FP16_SCHEMES)}")


def convert_int8(src: Path, dst: Path, scheme: str = "weights", keep: frozenset[str] = frozenset()) -> None:
    """int8 weights: `weights` (stored int8, computed in float32) or `dynamic` (int8 arithmetic).

    `keep`: initializers the `weights` scheme stores as fp16 instead (the parity fallback's choice).
    """
    if scheme == "weights":
        _store_weights(src, dst, lambda name, w, uses: (_to_fp16 if name in keep else _to_int8)(name, w, uses))
    elif scheme == "dynamic":
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic

        # 7-bit weights (reduce_range), one scale per channel: CPUs without VNNI multiply uint8 × int8 in int16
        # pairs that saturate at full range (τ off by 0.22 of a scale of 8 on the tiny export; 0.03 with this)
        with quiet():
            quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True)
        save(onnx.load(str(dst)), dst)
    else:
        raise ConfigError("int8", f"unknown scheme {scheme!r}; choose one of {', '.join(INT8_SCHEMES)}")


def _weight_axis(uses: list, ndim: int) -> int | None:
    """The output-channel axis of a weight for every node that reads it, or None (one scale per tensor)."""
    axes = set()
    for node, slot in uses:
        if (node.op_type == "Gather" and slot == 0) or (node.op_type == "Conv" and slot == 1):
            axes.add(0)  # embedding rows; conv output channels
        elif node.op_type == "MatMul" and slot == 1 and ndim == 2:
            axes.add(1)
        elif node.op_type == "Gemm" and slot == 1:
            trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
            axes.add(0 if trans_b else 1)
        else:
            axes.add(None)
    return axes.pop() if len(axes) == 1 else None


def reduced_weights(path: Path, precision: str) -> list[tuple[str, tuple[int, ...], str]]:
    """The initializers the `weights` scheme of `precision` (fp16 | int8) stores reduced: (name, shape, the op
    that reads it), in the graph's order. The parity fallback measures each one's effect alone."""
    import numpy as np
    import onnx

    smallest = {"fp16": FP16_MIN_ELEMENTS, "int8": INT8_MIN_ELEMENTS}[precision]
    graph = onnx.load(str(path)).graph
    readers = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, node.op_type)
    return [(i.name, tuple(i.dims), readers[i.name]) for i in graph.initializer
            if i.data_type == onnx.TensorProto.FLOAT and i.name in readers and int(np.prod(i.dims)) >= smallest]  # fmt: skip


def _to_fp16(name, w, uses):
    import numpy as np

    if w.size < FP16_MIN_ELEMENTS or np.abs(w).max() > np.finfo(np.float16).max:  # it would overflow to inf
        return None
    return [(f"{name}__fp16", w.astype(np.float16))], ("Cast", [f"{name}__fp16"], {"to": 1})  # 1: FLOAT


def _to_int8(name, w, uses, min_elements: int = INT8_MIN_ELEMENTS):
    """Symmetric int8 with one scale per output channel, restored by DequantizeLinear (W8A32).

    The file is ~4× smaller than fp32 (as dynamic quantisation's); arithmetic stays float32, so it runs
    as fast as fp32 — onnxruntime folds the DequantizeLinear of constants at load when the session sets
    `session.disable_quant_qdq=1` (the page does) — and is more accurate than int8 arithmetic.
    """
    import numpy as np

    if w.size < min_elements:
        return None
    axis = _weight_axis(uses, w.ndim)
    if axis is None:
        scale = np.array(max(float(np.abs(w).max()), 1e-12) / 127, np.float32)
        q = w / scale
    else:
        reduce = tuple(i for i in range(w.ndim) if i != axis)
        scale = (np.abs(w).max(axis=reduce) / 127).astype(np.float32)
        scale[scale == 0] = 1.0
        shape = [1] * w.ndim
        shape[axis] = -1
        q = w / scale.reshape(shape)
    q = np.clip(np.round(q), -127, 127).astype(np.int8)
    stored = [(f"{name}__int8", q), (f"{name}__scale", scale), (f"{name}__zero", np.zeros(scale.shape, np.int8))]
    return stored, ("DequantizeLinear", [s[0] for s in stored], {} if axis is None else {"axis": axis})


def _store_weights(src: Path, dst: Path, transform) -> None:
    """Replace float32 weights by a compact form and a node that restores them to float32.

    transform(name, array, uses) -> None (keep the weight) or ([(initializer name, array)], (op, inputs, attrs)).
    """
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    uses: dict[str, list] = {}
    for node in graph.node:
        for slot, name in enumerate(node.input):
            uses.setdefault(name, []).append((node, slot))
    kept, restore = [], []
    for init in graph.initializer:
        w = numpy_helper.to_array(init)
        replaced = transform(init.name, w, uses[init.name]) if w.dtype == np.float32 and init.name in uses else None
        if replaced is None:
            kept.append(init)
            continue
        stored, (op, inputs, attrs) = replaced
        kept += [numpy_helper.from_array(array, name) for name, array in stored]
        restore.append(helper.make_node(op, inputs, [init.name], name=f"{init.name}__restore", **attrs))
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = restore + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    save(model, dst)
