"""A liquid layer run along the token sequence of an LFM2 decoder, its state kept in the generation cache.

`LiquidBranch` maps a layer's tokens (B, N, H) to a liquid read-out (B, N, H). Its neurons follow the
liquid core's ODE (`lnn.liquid.LiquidCell`: relaxation towards tanh(W_in·x) with τ(x) in [τ_min, τ_max]),
one input step per token: by default dt = 1 per real token and 0 on padding (a padded token leaves the
state as it is); the policy sets the elapsed time per token (`LiquidContext.carry`, `pace`).

Two recurrences:

* `scan` (default): the cell without recurrent weights (W_rec = 0, τ and target depend on the token
  only). Then every solver step is an *affine* map of the state, h_t = a_t ⊙ h_{t−1} + b_t, with a_t, b_t
  obtained from the cell's own solver step for all tokens at once, and the whole prefill is a parallel
  prefix scan of those maps — ⌈log₂ N⌉ vectorised rounds, no Python loop over tokens. Decoding one token
  is the same map with N = 1. Cross-neuron mixing happens in the surrounding transformer layers.
* `full`: the complete cell (W_rec·h inside tanh and τ) through `LiquidLayer` — exact liquid dynamics,
  but the prefill is inherently sequential (one step per token).

State: in `generate()` and any call with a cache, the state lives in the cache layer of the merged
ShortConv layer (`LinearAttentionLayer.recurrent_states[0]`, a slot LFM2 itself leaves unused), so
`reset`, `reorder_cache` (beam search) and offloading handle it, and every new cache starts from zero.
Without a cache, the policy passes states explicitly through the shared `LiquidContext`.
"""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor, nn

from lnn.errors import ConfigError
from lnn.liquid import LiquidLayer

RECURRENCES = ("scan", "full")


class NoRecurrence(nn.Module):
    """Stands in for the cell's W_rec·h: zero, so τ and the target depend on the input only.

    It keeps a zero `weight` (not saved) so code that reads `cell.recurrent.weight` directly (a fused
    path of the liquid core) sees W_rec = 0 too.
    """

    def __init__(self, out_features: int, in_features: int):
        super().__init__()
        self.out_features = out_features
        self.register_buffer("weight", torch.zeros(out_features, in_features), persistent=False)
        self.bias = None

    def forward(self, h: Tensor) -> Tensor:
        return h.new_zeros(()).expand(*h.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"out_features={self.out_features} (W_rec = 0: recurrence=scan)"


def affine_scan(a: Tensor, b: Tensor, h0: Tensor | None = None) -> Tensor:
    """All states of h_t = a_t ⊙ h_{t−1} + b_t along dim 1, in ⌈log₂ N⌉ rounds (Hillis–Steele).

    a, b: (B, N, ...); h0: (B, ...) or None (zeros). Each round composes every map with the one
    `step` tokens before it, so after the rounds position t holds the composition of maps 0..t.
    """
    if h0 is not None:
        b = torch.cat([a[:, :1] * h0.unsqueeze(1) + b[:, :1], b[:, 1:]], 1)
    step, n = 1, a.shape[1]
    while step < n:
        b = torch.cat([b[:, :step], a[:, step:] * b[:, :-step] + b[:, step:]], 1)
        a = torch.cat([a[:, :step], a[:, step:] * a[:, :-step]], 1)
        step *= 2
    return b


class LiquidContext:
    """What the model's liquid branches share for one call: explicit states (no cache), token dt, τ log.

    `carry(states, dt)` is used by the policy: branches start from `states[layer]` instead of zero and
    leave their final state in `out`; outside it, a call without a cache starts from zero and keeps
    nothing. Without a dt (`carry`/`timing`), each real token advances by 1 and padding by 0 (from the
    2-D attention mask). `recording()` collects τ of every call per layer (prefill and each decoded token).
    """

    def __init__(self):
        self.states: dict[int, Tensor] | None = None
        self.dt: Tensor | None = None
        self.out: dict[int, Tensor] = {}
        self.taus: dict[int, list[Tensor]] | None = None
        self.rate: Tensor | None = None

    @contextlib.contextmanager
    def carry(self, states: dict[int, Tensor], dt: Tensor | None = None):
        self.states, self.dt, self.out = states, dt, {}
        try:
            yield self.out
        finally:
            self.states, self.dt = None, None

    def timing(self, dt: Tensor):
        """Elapsed time per token (B, N) for calls with a cache too (the exported decoder step)."""
        return self._setting("dt", dt)

    def pace(self, rate: Tensor):
        """Elapsed time per real token (B,) for calls without an explicit dt (generate(): the policy's rule)."""
        return self._setting("rate", rate)

    @contextlib.contextmanager
    def _setting(self, name: str, value):
        previous = getattr(self, name)
        setattr(self, name, value)
        try:
            yield
        finally:
            setattr(self, name, previous)

    def checkpoint_contexts(self):
        """torch.utils.checkpoint's `context_fn` (gradient checkpointing of the base's layers): the layer's
        recomputation in the backward pass reads the states, dt and rate its forward read — the policy's
        `carry` has ended by then — and records nothing (no final state, no τ)."""
        seen = (self.states, self.dt, self.rate)

        @contextlib.contextmanager
        def replay():
            saved = (self.states, self.dt, self.rate, self.out, self.taus)
            (self.states, self.dt, self.rate), self.out, self.taus = seen, {}, None
            try:
                yield
            finally:
                self.states, self.dt, self.rate, self.out, self.taus = saved

        return contextlib.nullcontext(), replay()

    @contextlib.contextmanager
    def recording(self):
        self.taus = {}
        try:
            yield self.taus
        finally:
            self.taus = None


def cache_slot(cache, layer_idx: int):
    """The cache layer holding this ShortConv layer's states (None if the cache has no such layer)."""
    from transformers.cache_utils import LinearAttentionCacheLayerMixin

    layers = getattr(cache, "layers", None)
    if layers is None or layer_idx >= len(layers) or not isinstance(layers[layer_idx], LinearAttentionCacheLayerMixin):
        return None
    return layers[layer_idx]


def read_state(cache, layer_idx: int) -> Tensor | None:
    slot = cache_slot(cache, layer_idx)
    if slot is None or not slot.is_recurrent_states_initialized[0]:
        return None
    return slot.recurrent_states[0]


def write_state(cache, layer_idx: int, h: Tensor) -> None:
    """Store the liquid state in the slot. Assigned, not copied in place, so autograd can run through it."""
    slot = cache_slot(cache, layer_idx)
    if slot is None:
        raise ValueError(f"the cache has no ShortConv layer {layer_idx} to keep the liquid state in")
    slot.recurrent_states[0] = h
    slot.is_recurrent_states_initialized[0] = True
    if slot.device is None:
        slot.device, slot.dtype = h.device, h.dtype


class RMSNorm(nn.Module):
    def __init__(self, width: int, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(width))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        return self.weight * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)


class LiquidBranch(nn.Module):
    """(B, N, width) tokens -> (B, N, width): a liquid layer of `size` neurons and its read-out.

    `mix` (per channel, zero at initialisation) weighs the branch where it is merged: the merged
    ShortConv returns conv + mix ⊙ (liquid − conv), the hook adapter hidden + mix ⊙ liquid. It runs in
    its own dtype (float32) with autocast off, whatever the base model's dtype or mixed precision.
    """

    def __init__(self, width: int, size: int, layer_idx: int, context: LiquidContext, recurrence: str = "scan",
                 norm: bool = False, **cell_kwargs):  # fmt: skip
        super().__init__()
        if recurrence not in RECURRENCES:
            raise ConfigError("recurrence", f"must be one of {RECURRENCES}, got {recurrence!r}")
        if not (isinstance(size, int) and size >= 1):
            raise ConfigError("liquid_size", f"must be an integer >= 1, got {size!r}")
        self.layer = LiquidLayer(width, size, **cell_kwargs)
        cell = self.layer.cell
        if recurrence == "scan":
            cell.recurrent = NoRecurrence(size + cell.tau_size, size)
        self.norm = RMSNorm(width) if norm else None
        self.out_proj = nn.Linear(size, width)
        self.mix = nn.Parameter(torch.zeros(width))
        self.layer_idx, self.recurrence, self.size = layer_idx, recurrence, size
        self.context = context

    @property
    def cell(self):
        return self.layer.cell

    def initial_state(self, batch: int, ref: Tensor) -> Tensor:
        return ref.new_zeros(batch, self.size, dtype=self.out_proj.weight.dtype)

    def run(self, x: Tensor, h0: Tensor | None, dt: Tensor | float) -> tuple[Tensor, Tensor, Tensor]:
        """States (B, N, size) along the tokens of x from h0, the final state, τ per token (B, N, τ-size).

        dt: a float, or (B, N) elapsed time per token.
        """
        if self.recurrence == "full":
            return self.layer(x, h0, dt)
        cell = self.cell
        u = cell.project_input(x)  # input terms of every token at once
        step_dt = dt.unsqueeze(-1) if torch.is_tensor(dt) else dt
        if x.shape[1] == 1:  # decoding one token: the solver step itself (the same map, evaluated once)
            h0 = h0 if h0 is not None else x.new_zeros(x.shape[0], self.size)
            h, tau = cell.step(u[:, 0], h0, step_dt[:, 0] if torch.is_tensor(step_dt) else step_dt)
            return h.unsqueeze(1), h, tau.unsqueeze(1)
        ends = torch.stack([x.new_zeros(()).expand(*x.shape[:-1], self.size),
                            x.new_ones(()).expand(*x.shape[:-1], self.size)])  # fmt: skip
        stepped, tau = cell.step(u.expand(2, *u.shape), ends, step_dt)  # the solver's map at h = 0 and h = 1
        b, a = stepped[0], stepped[1] - stepped[0]
        states = affine_scan(a, b, h0)
        return states, states[:, -1], tau[0]

    def forward(self, x: Tensor, cache=None, attention_mask: Tensor | None = None) -> Tensor:
        """The liquid read-out of tokens x (B, N, width), in x's dtype; state from/to the cache or context."""
        ctx, idx = self.context, self.layer_idx
        dtype = self.out_proj.weight.dtype
        autocast = torch.is_autocast_enabled(x.device.type)
        with torch.autocast(x.device.type, enabled=False) if autocast else contextlib.nullcontext():
            if cache is not None:
                h0 = read_state(cache, idx)
            elif ctx.states is not None:
                h0 = ctx.states.get(idx)
            else:
                h0 = None
            dt = ctx.dt
            if dt is None:
                dt = attention_mask.to(dtype) if attention_mask is not None and attention_mask.dim() == 2 else 1.0
                if ctx.rate is not None:  # per row; beams and returned sequences repeat their row
                    rate = ctx.rate.to(x.device, dtype).repeat_interleave(x.shape[0] // ctx.rate.shape[0])
                    dt = rate[:, None] * (dt if torch.is_tensor(dt) else x.new_ones(x.shape[:2], dtype=dtype))
            else:
                dt = dt.to(dtype)
            xf = x.to(dtype)
            if self.norm is not None:
                xf = self.norm(xf)
            h0 = h0.to(dtype) if h0 is not None else None
            states, h_last, tau = self.run(xf, h0, dt)
            out = self.out_proj(states)
        if cache is not None:
            write_state(cache, idx, h_last)
        elif ctx.states is not None:
            ctx.out[idx] = h_last
        if ctx.taus is not None:
            ctx.taus.setdefault(idx, []).append(tau)
        return out.to(x.dtype)
