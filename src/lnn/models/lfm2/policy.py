"""LFM2-VL with liquid layers as an lnn policy (the contract in lnn.models.policy), and generate().

How a frame becomes an action. Each frame is one chat prompt — `<image>` tokens of the screenshot,
then the instruction (see `text.py`) — run through the LFM2 decoder in one pass. Actions come from
small heads on the decoder's final hidden state, not from generated text:

* `action_logits`: an MLP on the last token's final hidden state (it has attended to the image and
  the whole instruction);
* `click_logits`: the same state as a query against keys from the final hidden states of the image
  tokens, one per cell of the projector's token grid (`cell_xy`), so `coords` is a soft-argmax on the
  screen, in [0, 1] by construction — the same click head as Lite's.

An episode's frames are a sequence: the liquid state of every merged layer carries from the end of one
frame's prompt into the next (attention and conv caches do not — each frame is a fresh context), so
the liquid layers are the model's only memory across steps, as in Lite. Time: with `time_unit="frame"`
(default) a frame's elapsed time (dt, 1 per step) is spread evenly over its real prompt tokens, so τ
counts frames as Lite's does and the state can remember across steps; with `"token"` every token
advances by dt (τ counts tokens — then a prompt of ~100 tokens washes out anything with τ ≪ 100).
`generate` steps every prompt and generated token by the same elapsed time as the policy's frame
(`token_rate`: 1/N for a prompt of N real tokens with `frame`, 1 with `token`). `forward` runs the frames of
an episode in order (one decoder call per frame for the whole batch; the vision encoder runs once for
all frames); `step` is one frame with the state in and out.
"""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lnn.errors import ConfigError
from lnn.liquid import check_liquid_args
from lnn.models.lfm2.config import (
    PRESETS,
    build_base,
    build_config,
    check_liquid_layers,
    default_image_size,
    default_liquid_layout,
    load_config,
)
from lnn.models.lfm2.images import frame_layout, layout_pixels, patchify, token_grid
from lnn.models.lfm2.liquid import RECURRENCES, LiquidBranch, LiquidContext
from lnn.models.lfm2.merged import HookAdapters, merge_liquid_layers
from lnn.models.lfm2.text import PromptFormat, load_tokenizer
from lnn.models.lfm2.tuning import add_lora, apply_base_tuning, check_lora, resolve_base_tuning, slim_checkpoints
from lnn.models.policy import Described, records_spec
from lnn.models.text import instruction_text


class LFM2Policy(Described, nn.Module):
    """What both LFM2 variants share; subclasses attach the liquid layers (`_attach`)."""

    family = "lfm2"

    @records_spec
    def __init__(
        self,
        preset: str = "tiny",
        pretrained_path: str | None = None,
        liquid_layers: list[int] | None = None,
        liquid_size: int | None = None,
        freeze_base: bool | None = None,
        base_tuning: str | None = None,
        lora_rank: int = 8,
        lora_alpha: float = 16.0,
        lora_targets: list[str] | None = None,
        image_size: int | None = None,
        recurrence: str = "scan",
        tau_min: float = 1.0,
        tau_max: float = 10.0,
        tau_per: str = "neuron",
        solver: str = "rk4",
        unfolds: int = 1,
        rtol: float = 1e-3,
        atol: float = 1e-4,
        max_text_tokens: int = 64,
        head_size: int = 128,
        key_size: int = 64,
        num_actions: int = 6,
        time_unit: str = "frame",
        base_dtype: str = "float32",
        attn_implementation: str = "sdpa",
        gradient_checkpointing: bool = False,
        max_image_tokens: int | None = None,
        min_image_tokens: int = 64,
        max_tiles: int = 10,
        tile_size: int | None = None,
    ):
        super().__init__()
        # every check before building: the 450M base takes seconds and 1.8 GB
        check_liquid_args(tau_min, tau_max, solver, unfolds, rtol, atol, tau_per)
        if recurrence not in RECURRENCES:
            raise ConfigError("recurrence", f"must be one of {', '.join(RECURRENCES)}, got {recurrence!r}")
        # `~` and a relative path resolved once, here: the spec then loads the same base from any directory
        pretrained_path = str(Path(pretrained_path).expanduser().absolute()) if pretrained_path else None
        config = self._base_config(preset, pretrained_path)
        indices, size = self._liquid_layout(preset, liquid_layers, liquid_size, config.text_config, pretrained_path)
        image_size = default_image_size(config) if image_size is None else image_size
        patch, factor = self._check_frames(config, image_size, time_unit, max_text_tokens)
        cutting = self._check_cutting(max_image_tokens, min_image_tokens, max_tiles, tile_size, patch * factor)
        tokenizer = self._tokenizer(pretrained_path, config)
        tuning = resolve_base_tuning(base_tuning, freeze_base, pretrained=bool(pretrained_path))
        # what null chose, so the checkpoint's spec rebuilds the same model
        self.resolved_kwargs = {"liquid_layers": indices, "liquid_size": size, "image_size": image_size,
                                "base_tuning": tuning, "pretrained_path": pretrained_path}  # fmt: skip
        targets = check_lora(lora_rank, lora_alpha, lora_targets) if tuning == "lora" else ()

        self.base = build_base(preset, pretrained_path, base_dtype, attn_implementation)
        self.config = self.base.config
        self.pretrained_path = pretrained_path
        self.image_size, self.num_actions, self.max_text_tokens = image_size, num_actions, max_text_tokens
        self.time_unit = time_unit
        self.patch, self.factor = patch, factor
        self.liquid_layers, self.liquid_size = indices, size
        self.context = LiquidContext()
        self._attach(indices, size, recurrence=recurrence, tau_min=tau_min, tau_max=tau_max, tau_per=tau_per,
                     solver=solver, unfolds=unfolds, rtol=rtol, atol=atol)  # fmt: skip
        self.base_tuning = tuning
        if tuning == "lora":
            add_lora(self.base, lora_rank, lora_alpha, targets)
        self.set_base_trainable(tuning)
        if pretrained_path and tuning != "full":  # the base is re-attached from its directory when loading
            slim_checkpoints(self)
        if gradient_checkpointing:
            self._checkpoint_base()

        self.n_image = (image_size // (patch * factor)) ** 2
        self.tokenizer = tokenizer
        self.prompt = PromptFormat(tokenizer, self.n_image)
        self._processor = None
        self._build_heads(config.text_config.hidden_size, head_size, key_size, num_actions)
        self.register_buffer("cell_xy", token_grid(image_size, patch, factor), persistent=False)
        self.cutting, self._layouts, self.layout = cutting, {}, None
        self.use_frame_size(image_size, image_size)
        self.to(next(self.base.parameters()).device)

    # --- building, in named steps -------------------------------------------------------------------
    @staticmethod
    def _base_config(preset: str, pretrained_path: str | None):
        """LFM2-VL's config: the checkpoint's own (it must be an lfm2_vl one), else the preset's."""
        return load_config(pretrained_path) if pretrained_path else build_config(preset)

    @staticmethod
    def _liquid_layout(preset: str, liquid_layers, liquid_size, text_config, pretrained_path=None) -> tuple[list[int], int]:
        """The decoder layers that get a liquid layer, and its neurons (null: the preset's, or with real
        weights sized for the directory's architecture: `default_liquid_layout`)."""
        default = default_liquid_layout(text_config) if pretrained_path else PRESETS.get(preset, PRESETS["tiny"])
        indices = check_liquid_layers(default["liquid_layers"] if liquid_layers is None else liquid_layers, text_config)
        size = default["liquid_size"] if liquid_size is None else liquid_size
        if not (isinstance(size, int) and size >= 1):
            raise ConfigError("liquid_size", f"must be an integer >= 1 (neurons per liquid layer), got {size!r}")
        return indices, size

    @staticmethod
    def _check_frames(config, image_size, time_unit: str, max_text_tokens) -> tuple[int, int]:
        """Frame size, time unit and prompt length checked; -> the vision patch size and downsample factor."""
        patch, factor = config.vision_config.patch_size, config.downsample_factor
        unit = patch * factor
        if not (isinstance(image_size, int) and image_size % unit == 0 and image_size >= 2 * unit):
            raise ConfigError("image_size", f"must be a multiple of {unit} (patch {patch} × downsample {factor}) "
                                            f"and >= {2 * unit}, got {image_size}")  # fmt: skip
        if time_unit not in ("frame", "token"):
            raise ConfigError("time_unit", f"must be 'frame' or 'token', got {time_unit!r}")
        if max_text_tokens < 1:
            raise ConfigError("max_text_tokens", f"must be >= 1, got {max_text_tokens}")
        return patch, factor

    @staticmethod
    def _check_cutting(max_image_tokens, min_image_tokens, max_tiles, tile_size, unit: int) -> dict | None:
        """The processor's options (frames of any size: `frame_layout`) with max_image_tokens; None: square frames."""
        if max_image_tokens is None:
            return None
        for key, value in (("max_image_tokens", max_image_tokens), ("min_image_tokens", min_image_tokens),
                           ("max_tiles", max_tiles)):  # fmt: skip
            if not (isinstance(value, int) and value >= 1):
                raise ConfigError(key, f"must be an integer >= 1, got {value!r}")
        if min_image_tokens > max_image_tokens:
            raise ConfigError("min_image_tokens", f"{min_image_tokens} is over max_image_tokens={max_image_tokens}")
        tile_size = 32 * unit // 2 if tile_size is None else tile_size  # the processor's 512 px at patch 16
        if not (isinstance(tile_size, int) and tile_size % unit == 0 and tile_size > 0):
            raise ConfigError("tile_size", f"must be a multiple of {unit} (patch × downsample), got {tile_size!r}")
        return {"min_image_tokens": min_image_tokens, "max_image_tokens": max_image_tokens, "max_tiles": max_tiles,
                "tile_size": tile_size}  # fmt: skip

    def use_frame_size(self, height: int, width: int) -> None:
        """With `max_image_tokens`: cut frames of this size as LFM2-VL's processor does (`frame_layout`: aspect kept,
        tiles when large), and set the prompt's image tokens and the click cells (`cell_xy`) to match. forward()
        calls it with its frames' size; without max_image_tokens frames are squares of image_size."""
        if self.cutting is None:
            return
        if (height, width) not in self._layouts:
            layout = frame_layout(height, width, self.patch, self.factor, **self.cutting)
            unit = self.patch, self.factor
            self._layouts[(height, width)] = layout, layout.tokens(*unit), layout.cells(*unit)
        self.layout, self.n_image, cells = self._layouts[(height, width)]
        self.prompt = PromptFormat(self.tokenizer, self.n_image, self.layout.crops(self.patch, self.factor))
        self.cell_xy = cells.to(self.cell_xy.device)

    @staticmethod
    def _tokenizer(pretrained_path: str | None, config):
        tokenizer = load_tokenizer(pretrained_path, config)
        if tokenizer is None:
            raise ConfigError("pretrained_path", f"{pretrained_path} has no tokenizer files (tokenizer.json, "
                                                 "tokenizer_config.json): the policy needs the model's own tokenizer")  # fmt: skip
        return tokenizer

    def _build_heads(self, width: int, head_size: int, key_size: int, num_actions: int) -> None:
        """The action head and the click map's query (last token) and keys (image tokens)."""
        self.head = nn.Sequential(nn.Linear(width, head_size), nn.GELU())
        self.action_head = nn.Linear(head_size, num_actions)
        self.click_query = nn.Linear(head_size, key_size)
        self.click_keys = nn.Linear(width, key_size)
        self.key_scale = 1 / math.sqrt(key_size)

    def _checkpoint_base(self) -> None:
        """transformers' gradient checkpointing of the base's layers (non-reentrant; active while training):
        activations are recomputed in the backward pass, the liquid layers' carried state included."""
        # activation_checkpointing_enable: the name in recent transformers, gradient_checkpointing_enable before it
        enable = getattr(self.base, "activation_checkpointing_enable", None) or self.base.gradient_checkpointing_enable
        enable({"use_reentrant": False, "context_fn": self.context.checkpoint_contexts})

    # --- liquid layers ----------------------------------------------------------------------------
    def _attach(self, indices: list[int], size: int, **branch_kwargs) -> None:
        raise NotImplementedError

    def branches(self) -> dict[int, LiquidBranch]:
        """The liquid branch of each liquid layer, by decoder-layer index."""
        raise NotImplementedError

    def liquid_cells(self) -> list:
        return [branch.cell for branch in self.branches().values()]

    def set_base_trainable(self, tuning: str) -> None:
        """Which LFM2-VL weights train (frozen | lora | full); liquid layers and heads always train."""
        apply_base_tuning(self.base, tuning)
        for branch in self.branches().values():
            branch.requires_grad_(True)

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """base: LFM2-VL's own weights (LoRA adapters included); liquid: the liquid layers (merged ones sit
        inside the base's modules, so they are taken out of it); heads: the action and click heads."""
        liquid = [p for branch in self.branches().values() for p in branch.parameters()]
        taken = {id(p) for p in liquid}
        base = [p for p in self.base.parameters() if id(p) not in taken]
        taken |= {id(p) for p in base}
        return {"base": base, "liquid": liquid, "heads": [p for p in self.parameters() if id(p) not in taken]}

    def added_parameters(self) -> int:
        return sum(p.numel() for b in self.branches().values() for p in b.parameters())

    # --- the policy contract ----------------------------------------------------------------------
    def tokenize(self, tasks: list[str], instructions: list[str]) -> Tensor:
        texts = [instruction_text(t, i) if i else "" for t, i in zip(tasks, instructions)]
        return self.prompt.text_ids(texts, self.max_text_tokens)

    def initial_state(self, batch: int, ref: Tensor | None = None) -> list[Tensor]:
        ref = ref if ref is not None else self.head[0].weight
        return [b.initial_state(batch, ref) for b in self.branches().values()]

    def encode_images(self, frames: Tensor) -> Tensor:
        """(M, 3, S, S) in [0, 1] -> image token embeddings (M, n_image, H), through SigLIP2 + projector
        (with `max_image_tokens`: frames of any size, each cut into its crops by `self.layout`)."""
        dtype = self.base.model.multi_modal_projector.linear_1.weight.dtype
        if self.layout is None:
            pixels, pixel_mask, shapes = patchify(frames.to(dtype), self.patch)
        else:
            pixels, pixel_mask, shapes = layout_pixels(frames.to(dtype), self.layout, self.patch)
        out = self.base.model.get_image_features(pixel_values=pixels, spatial_shapes=shapes, pixel_attention_mask=pixel_mask)
        crops = list(out.pooler_output)  # each crop's tokens; a frame's crops follow each other
        per = len(crops) // max(1, frames.shape[0])
        return torch.stack([torch.cat(crops[i * per : (i + 1) * per]) for i in range(frames.shape[0])])

    def embed(self, ids: Tensor, image_embeds: Tensor) -> Tensor:
        """Token embeddings with the image tokens replaced by the image's embeddings (in order)."""
        emb = self.base.get_input_embeddings()(ids)
        is_image = (ids == self.config.image_token_id).unsqueeze(-1)
        return emb.masked_scatter(is_image, image_embeds.to(emb.dtype))

    def token_rate(self, mask: Tensor, frame_dt: Tensor) -> Tensor:
        """Elapsed time per real token (M,) of prompts with mask (M, N) and elapsed time frame_dt (M,) —
        the one rule for dt per token, used by the policy's frames and by generate()."""
        if self.time_unit == "frame":  # the frame's time spread over its real tokens: τ counts frames
            return frame_dt / mask.to(frame_dt.dtype).sum(1).clamp(min=1)
        return frame_dt  # every token advances by dt: τ counts tokens

    def token_dt(self, mask: Tensor, frame_dt: Tensor) -> Tensor:
        """Elapsed time per prompt token (M, N) of frames with elapsed time frame_dt (M,); 0 on padding."""
        return self.token_rate(mask, frame_dt)[:, None] * mask.to(frame_dt.dtype)

    def decode_frames(self, emb: Tensor, mask: Tensor, states: dict[int, Tensor], dt: Tensor):
        """One decoder pass over frames' prompts with the liquid states carried in; -> hidden, states, τ."""
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
        with self.context.carry(states, self.token_dt(mask, dt)) as out, self.context.recording() as taus:
            hidden = self.base.model.language_model(inputs_embeds=emb, attention_mask=mask, position_ids=position_ids,
                                                    use_cache=False).last_hidden_state  # fmt: skip
        return hidden, dict(out), {i: t[0] for i, t in taus.items()}

    def heads(self, hidden: Tensor, ids: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Final hidden states (n, N, H) of prompts `ids` -> action logits (n, A), click logits (n, cells), coords (n, 2)."""
        dtype = self.head[0].weight.dtype
        z = self.head(hidden[:, -1].to(dtype))
        image = hidden[ids == self.config.image_token_id].view(hidden.shape[0], self.n_image, -1)
        return self.read_out(z, self.click_keys(image.to(dtype)))

    def read_out(self, z: Tensor, keys: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Head features z (n, head) and click keys (n, cells, K) -> action logits, click logits, coords."""
        click = torch.einsum("nck,nk->nc", keys, self.click_query(z)) * self.key_scale
        coords = torch.softmax(click, -1) @ self.cell_xy.T.to(click.dtype)
        return self.action_head(z), click, coords

    def forward(self, images: Tensor, tokens: Tensor, state: list[Tensor] | None = None, dt=None,
                mask: Tensor | None = None) -> dict:  # fmt: skip
        """images (B, T, 3, S, S) in [0, 1], tokens (B, T, L) -> outputs per step (B, T, ...).

        Extra outputs: `tau_tokens` [per liquid layer (B, T, N)]: τ per prompt token (mean over neurons,
        detached), `token_mask` (B, T, N) marking the real tokens of each frame's prompt.
        """
        batch, steps = images.shape[:2]
        device = images.device
        self.use_frame_size(*images.shape[-2:])
        real = mask.flatten().nonzero().squeeze(1) if mask is not None else torch.arange(batch * steps, device=device)
        where = torch.full((batch * steps,), -1, dtype=torch.long, device=device)
        where[real] = torch.arange(real.numel(), device=device)
        image_embeds = self.encode_images(images.flatten(0, 1)[real])
        ids, token_mask = self.prompt.frames(tokens.flatten(0, 1)[real].to(device))
        emb = self.embed(ids, image_embeds)
        frame_dt = self._frame_dt(dt, batch, steps, device)

        branches = self.branches()
        layers = list(branches)
        state = state if state is not None else self.initial_state(batch, self.head[0].weight)
        states = dict(zip(layers, state))
        dtype, n_tok = self.head[0].weight.dtype, ids.shape[1]
        blank = {"action_logits": (self.num_actions,), "click_logits": (self.n_image,), "coords": (2,),
                 "token_mask": (n_tok,)}  # fmt: skip
        blank |= {("tau", i): (branches[i].cell.tau_size,) for i in layers} | {("tau_tokens", i): (n_tok,) for i in layers}
        steps_out: dict = {key: [] for key in blank}
        for t in range(steps):
            rows = mask[:, t].nonzero().squeeze(1) if mask is not None else torch.arange(batch, device=device)
            if rows.numel() == 0:  # every episode is over: zeros, states kept
                for key, shape in blank.items():
                    steps_out[key].append(torch.zeros(batch, *shape, device=device, dtype=torch.long if key == "token_mask" else dtype))
                continue
            k = where[rows * steps + t]
            m = token_mask[k]
            hidden, new_states, taus = self.decode_frames(emb[k], m, {i: s[rows] for i, s in states.items()},
                                                           frame_dt[rows, t])  # fmt: skip
            states = {i: s.index_copy(0, rows, new_states[i].to(s.dtype)) for i, s in states.items()}
            action, click, coords = self.heads(hidden, ids[k])
            w = m.unsqueeze(-1).to(dtype)
            values = {"action_logits": action, "click_logits": click, "coords": coords, "token_mask": m}
            for i in layers:
                values["tau", i] = (taus[i] * w).sum(1) / w.sum(1).clamp(min=1)  # the frame's mean τ
                values["tau_tokens", i] = taus[i].detach().mean(-1)
            for key, value in values.items():
                value = value if key == "token_mask" else value.to(dtype)
                steps_out[key].append(value.new_zeros(batch, *value.shape[1:]).index_copy(0, rows, value))
        out = {key: torch.stack(steps_out[key], 1) for key in ("action_logits", "coords", "click_logits", "token_mask")}
        return out | {
            "tau_values": [torch.stack(steps_out["tau", i], 1) for i in layers],
            "state": [states[i] for i in layers],
            "tau_tokens": [torch.stack(steps_out["tau_tokens", i], 1) for i in layers],
        }

    @staticmethod
    def _frame_dt(dt, batch: int, steps: int, device) -> Tensor:
        if dt is None:
            return torch.ones(batch, steps, device=device)
        if not torch.is_tensor(dt) or dt.dim() == 0:
            return torch.full((batch, steps), float(dt), device=device)
        dt = dt.to(device=device, dtype=torch.float32)
        return dt[:, None].expand(batch, steps) if dt.dim() == 1 else dt

    def step(self, image: Tensor, tokens: Tensor, state: list[Tensor] | None = None, dt=None) -> dict:
        """One frame: image (B, 3, S, S), tokens (B, L), state per liquid layer -> outputs without T."""
        out = self(image.unsqueeze(1), tokens.unsqueeze(1), state, dt)  # dt: None, a float or (B,)
        for key in ("action_logits", "coords", "click_logits", "token_mask"):
            out[key] = out[key][:, 0]
        out["tau_values"] = [tau[:, 0] for tau in out["tau_values"]]
        out["tau_tokens"] = [tau[:, 0] for tau in out["tau_tokens"]]
        return out

    # --- text generation ----------------------------------------------------------------------------
    def processor(self):
        """LFM2-VL's processor from `pretrained_path`, when it and its dependencies (torchvision) are there."""
        if self._processor is None and self.pretrained_path:
            try:
                from transformers import AutoProcessor

                self._processor = AutoProcessor.from_pretrained(str(self.pretrained_path), local_files_only=True,
                                                                trust_remote_code=False)  # fmt: skip
                self._processor.tokenizer.padding_side = "left"
            except Exception:  # noqa: BLE001 — no processor (files, torchvision): prepare pixels here
                self._processor = False
        return self._processor or None

    @torch.no_grad()
    def generate(self, image=None, prompt: str | list[str] = "", pixel_values: Tensor | None = None,
                 pixel_attention_mask: Tensor | None = None, spatial_shapes: Tensor | None = None,
                 max_new_tokens: int = 32, return_dict: bool = False, **generate_kwargs):  # fmt: skip
        """Text for an image and a prompt (or a batch of them), through the merged model's own cache.

        `image`: a (3, S, S) / (B, 3, S, S) float tensor in [0, 1], an (H, W, 3) uint8 array, or a PIL
        image (or a list of them); or give `pixel_values`, `pixel_attention_mask` and `spatial_shapes`
        prepared for SigLIP2 NaFlex. With a processor available (a local `pretrained_path` and
        torchvision) images go through it; otherwise they are resized to `image_size` and patchified here.
        return_dict: also the token ids, the prompt mask, τ per liquid layer and token (B, N + k, τ), and
        with `return_dict_in_generate=True` transformers' own output (`output`: scores, logits).
        """
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        device = self.head[0].weight.device
        inputs = self._processor_inputs(image, prompts) if image is not None and pixel_values is None else None
        if inputs is None:
            if pixel_values is None:
                frames = self._frames(image, len(prompts)).to(device)
                self.use_frame_size(*frames.shape[-2:])  # with max_image_tokens: cut as the processor cuts
                cut = patchify if self.layout is None else partial(layout_pixels, layout=self.layout)
                pixel_values, pixel_attention_mask, spatial_shapes = cut(frames, patch=self.patch)
                prompt_format = self.prompt
            else:
                counts = (spatial_shapes // self.factor).prod(-1).tolist()
                if len(set(counts)) != 1:
                    raise ValueError(f"images of different token counts {counts}: give them in separate calls")
                prompt_format = PromptFormat(self.tokenizer, counts[0])  # crops unknown: no tile markers
            ids, mask = prompt_format.prompts(prompts)
            inputs = {"input_ids": ids, "attention_mask": mask, "pixel_values": pixel_values,
                      "pixel_attention_mask": pixel_attention_mask, "spatial_shapes": spatial_shapes}  # fmt: skip
        inputs = {k: v.to(device) if torch.is_tensor(v) else v for k, v in inputs.items()}
        inputs["pixel_values"] = inputs["pixel_values"].to(self.base.dtype)
        kwargs = {"max_new_tokens": max_new_tokens, "do_sample": False, "pad_token_id": self.tokenizer.pad_id,
                  "eos_token_id": self.tokenizer.eos_id} | generate_kwargs  # fmt: skip
        mask = inputs["attention_mask"]
        rate = self.token_rate(mask, torch.ones(mask.shape[0], device=device))  # prompt and generated tokens alike
        with self.context.pace(rate), self.context.recording() as taus:
            result = self.base.generate(**inputs, **kwargs)
        sequences = result.sequences if hasattr(result, "sequences") else result
        new = sequences[:, inputs["input_ids"].shape[1] :]
        texts = [self.tokenizer.decode(row.tolist()) for row in new]
        if not return_dict:
            return texts
        tau = {i: torch.cat(parts, 1) for i, parts in taus.items()}
        out = {"text": texts, "sequences": sequences, "prompt_mask": inputs["attention_mask"], "tau": tau}
        return out | ({"output": result} if result is not sequences else {})

    def _frames(self, image, batch: int) -> Tensor:
        """Images in any of generate()'s forms -> (B, 3, S, S) floats in [0, 1] at image_size."""
        import numpy as np

        if isinstance(image, (list, tuple)):
            frames = torch.cat([self._frames(im, 1) for im in image])
        elif torch.is_tensor(image):
            frames = image.float() if image.is_floating_point() else image.float() / 255
            frames = frames.unsqueeze(0) if frames.dim() == 3 else frames
        else:
            array = np.asarray(image.convert("RGB") if hasattr(image, "convert") else image)
            frames = torch.from_numpy(array.copy()).permute(2, 0, 1).unsqueeze(0).float() / 255
        if self.cutting is None and frames.shape[-2:] != (self.image_size, self.image_size):
            frames = F.interpolate(frames, size=(self.image_size, self.image_size), mode="bilinear",
                                   antialias=True, align_corners=False)  # fmt: skip
        if frames.shape[0] == 1 and batch > 1:
            frames = frames.expand(batch, -1, -1, -1)
        if frames.shape[0] != batch:
            raise ValueError(f"{frames.shape[0]} images for {batch} prompts")
        return frames

    def _processor_inputs(self, image, prompts: list[str]) -> dict | None:
        processor = self.processor()
        if processor is None or torch.is_tensor(image):
            return None
        images = list(image) if isinstance(image, (list, tuple)) else [image] * len(prompts)
        texts = [processor.apply_chat_template([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": p}]}],
                                               add_generation_prompt=True, tokenize=False) for p in prompts]  # fmt: skip
        return dict(processor(images=[[im] for im in images], text=texts, return_tensors="pt", padding=True))


class LFM2LiquidMerged(LFM2Policy):
    """LFM2-VL with a liquid layer merged into the ShortConv of each of `liquid_layers` (model=lfm2_liquid)."""

    def _attach(self, indices: list[int], size: int, **branch_kwargs) -> None:
        self._branches = merge_liquid_layers(self.base, indices, self.context, size, **branch_kwargs)

    def branches(self) -> dict[int, LiquidBranch]:
        return self._branches


class LFM2Hybrid(LFM2Policy):
    """LFM2-VL with liquid adapters on the outputs of `liquid_layers`, attached by forward hooks (model=lfm2_hybrid)."""

    def _attach(self, indices: list[int], size: int, **branch_kwargs) -> None:
        self.adapters = HookAdapters(self.base, indices, self.context, size, **branch_kwargs)

    def branches(self) -> dict[int, LiquidBranch]:
        return self.adapters.branches()
