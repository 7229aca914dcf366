"""A policy exported to ONNX (a single step with the recurrent state in and out), run by onnxruntime.

The export directory holds `model.onnx` and `manifest.json`. What OnnxPolicy reads from the manifest
(keys it does not know are ignored; names it does not find there are taken from the graph itself):

    {
      "model": "model.onnx",                       optional, the graph file in this directory
      "image_size": 96,                            N or [height, width]; optional when the graph's image
                                                     input has a fixed size
      "tokenizer": {"scheme": "word-bytes/1",      the instruction's ids (lnn.models.text.SCHEME; required:
                    "max_words": 32,                 an export with hashed words is refused); max_words and
                    "word_bytes": 12},               word_bytes default to lnn.models.text's
      "instruction": "text",                       optional: "pixels" feeds all-padding tokens (screenshot only)
      "preprocessing": {"strip": {"scale": [1, 1], "styles": [{"font_px": 10, "bold": false}]}},   with a `strip`
                                                   input (a match_text Lite): the instruction's named text drawn
                                                   in each style (lnn.models.glyphs; older exports: "font_px")
      "inputs":  {"image": "image", "tokens": "tokens", "state": ["state_0", "state_1", ...],
                  "dt": "dt", "strip": "strip"},   optional: seconds since the previous frame, (B,) or (B, 1);
                                                   the named text's strips (B, S, 18, 66)
      "outputs": {"action_logits": "action_logits", "coords": "coords",
                  "release": "release", "key_logits": "key_logits", "text_bytes": "text_bytes",
                  "tau": ["tau_0", ...], "state": ["new_state_0", ...]},
      "keys": ["Enter", "Tab", ...]                with key_logits: the key of each class (default lnn.envs.KEYS)
    }

release, key_logits and text_bytes are optional (a Lite with drag_head, key_head, text_head): a drag's release
point, the key's scores, the typed text's UTF-8 bytes ending at -1; without them a drag is released where it
was pressed, a key is Enter and the text is the instruction's quoted string (lnn.rollout.decode_action).

`inputs` / `outputs` may also be lists of names (or of {"name": ...} entries); each is then recognised by
its name: image, token(s), state / h<i>, dt, strip (inputs, in order); action, coord, tau, state (outputs, in
order). The image is float32 (B, 3, H, W) in [0, 1]; tokens int64 (B, max_words · word_bytes) from lnn.models.text;
each state float32 (B, ...) starting at zeros; the batch axis must be dynamic for more than one env at once.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np

from lnn.envs import KEYS, Observation
from lnn.errors import ConfigError
from lnn.frames import plain_size
from lnn.models.glyphs import PAGE_FONT_PX, strips
from lnn.models.text import MAX_WORDS, SCHEME, WORD_BYTES, instruction_text, tokenize_batch
from lnn.rollout import decode_outputs, screenshots_to_tensor

MANIFEST = "manifest.json"
log = logging.getLogger("lnn")


def is_onnx_export(path: str | Path) -> bool:
    path = Path(path)
    return path.is_dir() and (path / MANIFEST).exists()


def _names(spec) -> list[str]:
    if spec is None:
        return []
    if isinstance(spec, str):
        return [spec]
    if isinstance(spec, dict):
        return [spec["name"]] if "name" in spec else []
    return [n for item in spec for n in _names(item)]


def _by_name(names: list[str], pattern: str) -> list[str]:
    return [n for n in names if re.search(pattern, n, re.IGNORECASE)]


def _roles(spec, graph_names: list[str], patterns: dict[str, str]) -> dict[str, list[str]]:
    """{role: [names]} from a manifest section (dict by role, or a list of names) or the graph's names."""
    if isinstance(spec, dict) and not ("name" in spec):
        return {role: _names(spec.get(role)) for role in patterns}
    names = _names(spec) or graph_names
    found, taken = {}, set()
    for role, pattern in patterns.items():  # in order: the first pattern that matches a name claims it
        found[role] = [n for n in _by_name(names, pattern) if n not in taken]
        taken |= set(found[role])
    return found


class OnnxPolicy:
    """The same reset / act / keep interface as TorchPolicy, over an exported step model."""

    def __init__(self, export_dir: str | Path, providers: list[str] | None = None):
        import onnxruntime as ort

        export_dir = Path(export_dir)
        try:
            self.manifest = json.loads((export_dir / MANIFEST).read_text())
        except (OSError, ValueError) as e:
            raise ConfigError("ckpt", f"{export_dir / MANIFEST}: not a readable manifest ({e})") from None
        model_file = export_dir / self.manifest.get("model", "model.onnx")
        if not model_file.exists():
            raise ConfigError("ckpt", f"{model_file} not found (the export directory needs the graph next to {MANIFEST})")
        self.session = ort.InferenceSession(str(model_file), providers=providers or ["CPUExecutionProvider"])
        graph_in = [i.name for i in self.session.get_inputs()]
        graph_out = [o.name for o in self.session.get_outputs()]
        self.inputs = _roles(self.manifest.get("inputs"), graph_in, {"image": "image|pixel", "tokens": "token",
                                                                      "state": r"state|^h_?\d+$", "dt": r"^dt$",
                                                                      "strip": r"^strip$"})  # fmt: skip
        self.outputs = _roles(self.manifest.get("outputs"), graph_out, {"action_logits": "action", "coords": "coord",
                                                                         "release": r"^release$", "key_logits": r"^key",
                                                                         "text_bytes": r"^text_bytes$", "tau": "tau",
                                                                         "state": r"state|^h_?\d+"})  # fmt: skip
        keys = self.manifest.get("keys")
        if self.outputs["key_logits"] and keys is not None and list(keys) != list(KEYS):
            raise ConfigError("ckpt", f"{export_dir / MANIFEST}: keys {keys} differ from this version's lnn.envs.KEYS; "
                                      "re-export the model with this version")  # fmt: skip
        for role in ("image", "tokens"):
            if len(self.inputs[role]) != 1:
                raise ConfigError("ckpt", f"{model_file}: cannot tell the {role} input among {graph_in}; "
                                          f"name it in {MANIFEST} under inputs.{role}")  # fmt: skip
        for role in ("action_logits", "coords"):
            if len(self.outputs[role]) != 1:
                raise ConfigError("ckpt", f"{model_file}: cannot tell the {role} output among {graph_out}; "
                                          f"name it in {MANIFEST} under outputs.{role}")  # fmt: skip
        if len(self.inputs["state"]) != len(self.outputs["state"]):
            raise ConfigError("ckpt", f"{model_file}: {len(self.inputs['state'])} state inputs but "
                                      f"{len(self.outputs['state'])} state outputs")  # fmt: skip
        shapes = {i.name: i.shape for i in self.session.get_inputs()}
        image_shape = shapes[self.inputs["image"][0]]
        size = self.manifest.get("image_size")
        if not size and all(isinstance(d, int) for d in image_shape[-2:]):
            height, width = image_shape[-2:]
            size = height if height == width else [height, width]
        if not size:
            raise ConfigError("ckpt", f"{export_dir / MANIFEST}: give image_size (the graph's image input has no fixed size)")
        self.image_size = plain_size(size, key=f"{MANIFEST}: image_size")
        tokenizer = self.manifest.get("tokenizer") or {}
        if tokenizer.get("scheme") != SCHEME:
            old = " (hashed words: re-export a model retrained with this version)" if "buckets" in tokenizer \
                or "instruction_buckets" in self.manifest else ""
            raise ConfigError("ckpt", f"{export_dir / MANIFEST}: tokenizer.scheme is {tokenizer.get('scheme')!r}{old}; "
                                      f"this version reads {SCHEME!r} (the bytes of each word)")  # fmt: skip
        self.max_words = int(tokenizer.get("max_words", MAX_WORDS))
        self.word_bytes = int(tokenizer.get("word_bytes", WORD_BYTES))
        width = shapes[self.inputs["tokens"][0]][-1]
        if isinstance(width, int) and width != self.max_words * self.word_bytes:
            raise ConfigError("ckpt", f"{model_file}: the tokens input is {width} wide, but {MANIFEST}'s tokenizer gives "
                                      f"{self.max_words} words x {self.word_bytes} bytes")  # fmt: skip
        # each state's shape without its batch axis: the manifest's, else the graph's
        manifest_shapes = self.manifest.get("state_shapes")
        self.state_shapes = [tuple(manifest_shapes[k]) if manifest_shapes else tuple(shapes[name][1:])
                             for k, name in enumerate(self.inputs["state"])]  # fmt: skip
        for name, shape in zip(self.inputs["state"], self.state_shapes):
            if not all(isinstance(d, int) for d in shape):
                raise ConfigError("ckpt", f"{model_file}: state input {name} has no fixed size {shape}; "
                                          f"give state_shapes in {MANIFEST}")  # fmt: skip
        # the elapsed time input, (B,) or (B, 1), when the graph has one; without it every frame runs at dt = 1
        self.dt_rank = len(shapes[self.inputs["dt"][0]]) if self.inputs["dt"] else None
        self.warned_dt = False
        self.instruction = self.manifest.get("instruction", "text")
        if self.instruction not in ("text", "pixels"):
            raise ConfigError("ckpt", f"{export_dir / MANIFEST}: instruction must be text or pixels, got {self.instruction!r}")
        # a match_text export: the instruction's named text drawn as the export drew it (preprocessing.strip)
        self.strip = (self.manifest.get("preprocessing") or {}).get("strip") if self.inputs["strip"] else None
        if self.inputs["strip"] and not (isinstance(self.strip, dict) and "scale" in self.strip):
            raise ConfigError("ckpt", f"{export_dir / MANIFEST}: the graph takes a strip (the named text, drawn) but "
                                      "preprocessing.strip.scale is missing; re-export it")  # fmt: skip
        self.path = export_dir
        self.state: list[np.ndarray] = []

    def tokenize(self, tasks: list[str], instructions: list[str]) -> np.ndarray:
        """As the model's own tokenize: all padding when the model reads the instruction from the pixels."""
        if self.instruction == "pixels":
            return np.zeros((len(tasks), self.max_words * self.word_bytes), dtype=np.int64)
        texts = [instruction_text(t, i) if i else "" for t, i in zip(tasks, instructions)]
        return tokenize_batch(texts, self.max_words, self.word_bytes).numpy()

    def reset(self, batch: int) -> None:
        self.state = [np.zeros((batch, *shape), dtype=np.float32) for shape in self.state_shapes]

    def act(self, observations: list[Observation]) -> tuple[list, dict]:
        images = screenshots_to_tensor([o.screenshot for o in observations], self.image_size).numpy()
        feeds = {self.inputs["image"][0]: images.astype(np.float32),
                 self.inputs["tokens"][0]: self.tokenize([o.task for o in observations], [o.instruction for o in observations])}  # fmt: skip
        feeds |= dict(zip(self.inputs["state"], self.state))
        if self.strip is not None:  # blank with instruction=pixels, as the model's own text_inputs
            named = [o.instruction if self.instruction == "text" else "" for o in observations]
            styles = self.strip.get("styles") or [{"font_px": self.strip.get("font_px", PAGE_FONT_PX), "bold": False}]
            feeds[self.inputs["strip"][0]] = strips(named, styles, scale=tuple(self.strip["scale"])).numpy()
        dt = np.array([o.dt for o in observations], dtype=np.float32)
        if self.dt_rank is not None:
            feeds[self.inputs["dt"][0]] = dt.reshape(-1, *([1] * (self.dt_rank - 1)))
        elif not self.warned_dt and not np.allclose(dt, 1.0):
            self.warned_dt = True
            log.warning(f"{self.path}: the exported graph has no dt input; frames {dt.tolist()} s apart run at dt = 1")
        roles = ("action_logits", "coords", "release", "key_logits", "text_bytes")  # what decode_outputs reads
        heads = [role for role in roles if self.outputs[role]]
        wanted = [self.outputs[role][0] for role in heads] + [*self.outputs["tau"], *self.outputs["state"]]
        values = dict(zip(wanted, self.session.run(wanted, feeds)))
        self.state = [values[name] for name in self.outputs["state"]]
        coords = values[self.outputs["coords"][0]].tolist()
        actions = decode_outputs({role: values[self.outputs[role][0]] for role in heads}, observations)
        import torch

        return actions, {"tau": [torch.from_numpy(values[name]) for name in self.outputs["tau"]], "coords": coords}

    def keep(self, rows: list[int]) -> None:
        """Drop the state of finished episodes: keep these batch rows, in this order."""
        self.state = [h[rows] for h in self.state]
