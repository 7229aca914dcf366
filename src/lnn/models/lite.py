"""The Lite policy: a tiny CNN, an instruction encoder, a liquid stack, and action + click heads.

Shape at defaults follows the seed's VisionLNNLite (CNN 3→32→64→128, stride 2; 4 liquid layers of
width 256 with one τ per sample; heads 128→64). Two changes, both for clicking:

* the seed pooled the CNN map to one vector, which throws away *where* things are; here the map keeps
  its positions (coordinates appended as two channels) and is read by attention: the instruction
  picks what to pool, and the click head scores every map cell for the liquid state (`CellScorer`),
  so `coords` is a soft-argmax over the screen (in [0, 1] by construction) and `click_logits` can
  be trained on the probability of clicking inside the target box;
* the instruction reaches the model as hashed words (`text.py`), not only a task id, so the target
  can depend on what the instruction says.

`forward` runs whole episodes (B, T, ...); `step` is one frame with the state in and out — the call
the agent and the ONNX export use.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from lnn.errors import ConfigError
from lnn.liquid import LiquidStack
from lnn.models.text import MAX_TOKENS, instruction_text, tokenize_batch

ACTION_NAMES = ("click", "type", "navigate", "scroll", "key", "done")


def unflatten(x: Tensor, real: Tensor | None, batch: int, steps: int) -> Tensor:
    """(N, ...) values of the real steps -> (B, T, ...), zeros at padded steps."""
    if real is not None:
        x = x.new_zeros(batch * steps, *x.shape[1:]).index_copy(0, real, x)
    return x.view(batch, steps, *x.shape[1:])


class CellScorer(nn.Module):
    """Scores every cell of a feature map for a query: the query scales and shifts the cell features
    (FiLM), then a small per-cell MLP scores them. Nonlinear, so a query can ask for a conjunction —
    "red" and "square" — that no single feature channel holds."""

    def __init__(self, map_channels: int, query_size: int, hidden: int = 64):
        super().__init__()
        self.film = nn.Linear(query_size, 2 * map_channels)
        self.mlp = nn.Sequential(nn.Conv1d(map_channels, hidden, 1), nn.ReLU(), nn.Conv1d(hidden, 1, 1))

    def forward(self, feats: Tensor, query: Tensor) -> Tensor:
        """feats (N, C, cells), query (N, Q) -> scores (N, cells)."""
        gamma, beta = self.film(query).unsqueeze(-1).chunk(2, 1)
        return self.mlp(feats * (1 + gamma) + beta).squeeze(1)


class FeedForwardStack(nn.Module):
    """The ablation: residual MLP blocks in place of the liquid layers; no state, no τ.

    Each block has two (H × H) matmuls, the same weight count as a liquid layer's W_in and W_rec.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 4, **_ignored):
        super().__init__()
        self.inp = nn.Linear(input_size, hidden_size) if input_size != hidden_size else nn.Identity()
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.Tanh(), nn.Linear(hidden_size, hidden_size))
            for _ in range(num_layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(hidden_size) for _ in range(num_layers))

    def initial_state(self, batch: int, ref: Tensor) -> list[Tensor]:
        return []

    def forward(self, x: Tensor, state=None, dt=None):
        x = self.inp(x)
        for block, norm in zip(self.blocks, self.norms):
            x = norm(x + block(x))
        return x, [], []


class VisionLNNLite(nn.Module):
    def __init__(
        self,
        num_actions: int = 6,
        image_size: int = 224,
        channels: tuple[int, ...] = (32, 64, 128),
        feature_size: int = 192,
        instruction_buckets: int = 512,
        instruction_dim: int = 64,
        hidden_size: int = 256,
        num_layers: int = 4,
        head_size: int = 128,
        scorer_size: int = 64,
        core: str = "liquid",
        tau_min: float = 1.0,
        tau_max: float = 10.0,
        solver: str = "rk4",
        unfolds: int = 1,
        tau_per: str = "sample",
        rtol: float = 1e-3,
        atol: float = 1e-4,
        bptt_steps: int | None = None,
    ):
        super().__init__()
        min_size = 4 * 2 ** len(channels)  # a map of at least 4 × 4 cells to click in
        if not isinstance(image_size, int) or image_size < min_size:
            raise ConfigError(
                "image_size", f"{image_size} is too small for a CNN of {len(channels)} stride-2 layers; use >= {min_size}"
            )
        if core not in ("liquid", "feedforward"):
            raise ConfigError("core", f"must be 'liquid' or 'feedforward', got {core!r}")
        if instruction_buckets < 2:
            raise ConfigError("instruction_buckets", f"must be >= 2, got {instruction_buckets}")
        self.num_actions, self.image_size, self.core_type = num_actions, image_size, core
        self.instruction_buckets, self.max_tokens = instruction_buckets, MAX_TOKENS

        layers, c_in = [], 3
        for c_out in channels:
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.ReLU(inplace=True)]
            c_in = c_out
        self.cnn = nn.Sequential(*layers)
        self.map_size = image_size
        for _ in channels:
            self.map_size = (self.map_size - 1) // 2 + 1
        c_map = c_in + 2  # + (x, y) of each cell
        ys, xs = torch.meshgrid(*(2 * [(torch.arange(self.map_size) + 0.5) / self.map_size]), indexing="ij")
        self.register_buffer("cell_xy", torch.stack([xs, ys]).flatten(1), persistent=False)  # (2, cells), in (0, 1)

        self.words = nn.Embedding(instruction_buckets, instruction_dim, padding_idx=0)
        self.pool_scorer = CellScorer(c_map, instruction_dim, scorer_size)  # what the instruction looks at
        self.image_proj = nn.Linear(2 * c_map, feature_size)
        self.input_proj = nn.Linear(feature_size + instruction_dim, hidden_size)
        stack = LiquidStack if core == "liquid" else FeedForwardStack
        self.core = stack(
            hidden_size, hidden_size, num_layers, tau_min=tau_min, tau_max=tau_max, solver=solver,
            unfolds=unfolds, tau_per=tau_per, rtol=rtol, atol=atol, bptt_steps=bptt_steps,
        )  # fmt: skip
        self.head = nn.Sequential(nn.Linear(hidden_size, head_size), nn.ReLU())
        self.action_head = nn.Sequential(nn.Linear(head_size, 64), nn.ReLU(), nn.Linear(64, num_actions))
        self.click_scorer = CellScorer(c_map, head_size, scorer_size)  # where to click, given the state

    # --- pieces ---------------------------------------------------------------------------------
    def tokenize(self, tasks: list[str], instructions: list[str]) -> Tensor:
        """(N,) task names and instructions -> (N, L) word ids; an empty instruction is all padding."""
        texts = [instruction_text(t, i) if i else "" for t, i in zip(tasks, instructions)]
        return tokenize_batch(texts, self.instruction_buckets, self.max_tokens)

    def encode_instruction(self, tokens: Tensor) -> Tensor:
        """(N, L) word ids -> (N, D): the mean of the word vectors (0 pads and is skipped)."""
        mask = (tokens > 0).unsqueeze(-1).to(self.words.weight.dtype)
        return (self.words(tokens) * mask).sum(-2) / mask.sum(-2).clamp(min=1)

    def encode_frames(self, images: Tensor) -> Tensor:
        """(N, 3, S, S) in [0, 1] -> (N, C + 2, cells): CNN features with each cell's position."""
        features = self.cnn((images - 0.5) * 4).flatten(2)
        xy = self.cell_xy.to(features.dtype).expand(features.shape[0], -1, -1)
        return torch.cat([features, xy], 1)

    # --- the policy -----------------------------------------------------------------------------
    def forward(self, images: Tensor, tokens: Tensor, state: list[Tensor] | None = None, dt=None,
                mask: Tensor | None = None) -> dict:  # fmt: skip
        """images (B, T, 3, S, S) in [0, 1], tokens (B, T, L) -> outputs per step (B, T, ...).

        `mask` (B, T) marks real steps of padded episodes: frames are only encoded where it is true
        (padding costs nothing in the CNN); outputs at padded steps are zeros.
        """
        batch, steps = images.shape[:2]
        frames, tokens = images.flatten(0, 1), tokens.flatten(0, 1)
        real = mask.flatten().nonzero().squeeze(1) if mask is not None else None
        if real is not None:
            frames, tokens = frames[real], tokens[real]
        feats = self.encode_frames(frames)  # (N, C+2, cells), N = real frames
        words = self.encode_instruction(tokens)  # (N, D)

        pool = torch.softmax(self.pool_scorer(feats, words), -1)
        seen = torch.cat([feats.mean(-1), torch.einsum("ncp,np->nc", feats, pool)], -1)
        x = self.input_proj(torch.cat([torch.relu(self.image_proj(seen)), words], -1))

        out, state, taus = self.core(unflatten(x, real, batch, steps), state, dt)
        z = self.head(out).flatten(0, 1)
        z_real = z if real is None else z[real]
        click_logits = self.click_scorer(feats, z_real)
        coords = torch.softmax(click_logits, -1) @ self.cell_xy.T.to(click_logits.dtype)
        return {
            "action_logits": self.action_head(z).view(batch, steps, -1),
            "coords": unflatten(coords, real, batch, steps),
            "click_logits": unflatten(click_logits, real, batch, steps),
            "tau_values": taus,
            "state": state,
        }

    def initial_state(self, batch: int, ref: Tensor | None = None) -> list[Tensor]:
        ref = ref if ref is not None else self.words.weight
        return self.core.initial_state(batch, ref)

    def step(self, image: Tensor, tokens: Tensor, state: list[Tensor] | None = None, dt=None) -> dict:
        """One frame: image (B, 3, S, S), tokens (B, L), state per layer -> outputs without T."""
        out = self(image.unsqueeze(1), tokens.unsqueeze(1), state, dt)
        for key in ("action_logits", "coords", "click_logits"):
            out[key] = out[key][:, 0]
        out["tau_values"] = [tau[:, 0] for tau in out["tau_values"]]
        return out
