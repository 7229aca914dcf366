"""Recurrent cells run over sequences: one layer, and a stack of layers with state in and out.

Any cell of `CELLS` runs here; what a layer needs of a cell:

    input_size, hidden_size, state_size        state_size: H, or 2H for the LSTM's [h, c]
    project_input(x (..., D)) -> u             the input-only terms, once for the whole sequence
    step(u (B, ·), state (B, S), dt) -> (state', τ (B, k) or None)   dt: a float or (B, 1); dt = 0 keeps the state
    output(state) -> (B, H)                    what the next layer reads
    initial_state(batch, ref) -> (B, S) zeros
"""

from __future__ import annotations

import inspect

import torch
from torch import Tensor, nn

from lnn.errors import ConfigError
from lnn.liquid.cell import LiquidCell, as_step_dt, tracing
from lnn.liquid.cfc import CfCCell
from lnn.liquid.fused import FUSED_SOLVERS, fused_sequence
from lnn.liquid.gated import GRUCell, LSTMCell
from lnn.liquid.ltc import LTCCell

IMPLS = ("auto", "fused", "reference")
CELLS = {"liquid": LiquidCell, "cfc": CfCCell, "ltc": LTCCell, "lstm": LSTMCell, "gru": GRUCell}


def make_cell(core: str, input_size: int, hidden_size: int, **kwargs) -> nn.Module:
    """A cell of kind `core`, given the keyword arguments it takes (the liquid cell's τ bounds mean
    nothing to a GRU: a stack passes the same settings to every kind)."""
    if core not in CELLS:
        raise ConfigError("core", f"unknown cell {core!r}; choose one of {', '.join(CELLS)}")
    cls = CELLS[core]
    accepted = inspect.signature(cls).parameters
    return cls(input_size, hidden_size, **{k: v for k, v in kwargs.items() if k in accepted})


class LiquidLayer(nn.Module):
    """(B, T, D) in -> (B, T, H) out, the final state (B, S) and τ per step (B, T, τ-size), or None for
    a cell that reports no τ (every kind but `liquid`). `core` is the kind of cell (CELLS); the other
    keyword arguments go to the cell, each kind taking those it knows.

    dt (elapsed time per input step) is None (= 1), a float, (B,) or (B, T); a step with dt = 0
    leaves the state as it is, which is how right-padded steps of a batch keep final states exact.
    `bptt_steps` truncates backpropagation through time to windows of that many steps (None: the
    whole sequence).

    `impl`: "fused" runs the sequence as one autograd node with a hand-written backward (fused.py);
    "reference" is the plain loop that autograd differentiates (and that ONNX export traces);
    "auto" takes fused for the fixed-step solvers, except inside an export or compile trace.
    """

    def __init__(self, input_size: int, hidden_size: int, bptt_steps: int | None = None, impl: str = "auto",
                 core: str = "liquid", **cell_kwargs):  # fmt: skip
        super().__init__()
        if bptt_steps is not None and bptt_steps < 1:
            raise ConfigError("bptt_steps", f"must be >= 1 or null (full BPTT), got {bptt_steps}")
        fusable = core == "liquid" and cell_kwargs.get("solver", "rk4") in FUSED_SOLVERS
        if impl not in IMPLS or (impl == "fused" and not fusable):
            raise ConfigError("impl", f"must be one of {IMPLS} (fused: the liquid cell with a fixed-step solver), "
                                      f"got {impl!r}")  # fmt: skip
        self.cell = make_cell(core, input_size, hidden_size, **cell_kwargs)
        self.bptt_steps, self.impl = bptt_steps, impl

    def fused(self) -> bool:
        if not isinstance(self.cell, LiquidCell):
            return False
        if self.impl == "auto":
            return self.cell.solver in FUSED_SOLVERS and not tracing()
        return self.impl == "fused"

    def forward(self, x: Tensor, h: Tensor | None = None, dt: Tensor | float | None = None):
        if x.dim() != 3 or x.shape[1] == 0:
            raise ValueError(f"x must be (B, T, D) with at least one time step (T >= 1); got {tuple(x.shape)}")
        batch, steps, _ = x.shape
        if h is None:
            h = self.cell.initial_state(batch, x)
        u = self.cell.project_input(x)  # input-only terms, once for the whole sequence
        dt = as_step_dt(dt, batch, steps, x)
        if self.fused():
            c = self.cell
            out, taus = fused_sequence(u, c.recurrent.weight, h, dt, c.solver, c.unfolds, c.tau_min, c.tau_max,
                                       self.bptt_steps)  # fmt: skip
            return out, out[:, -1], taus
        outputs, taus = [], []
        for t in range(steps):
            if self.bptt_steps and t and t % self.bptt_steps == 0:
                h = h.detach()
            h, tau = self.cell.step(u[:, t], h, dt[:, t] if torch.is_tensor(dt) else dt)
            outputs.append(self.cell.output(h))
            taus.append(tau)
        return torch.stack(outputs, dim=1), h, None if taus[0] is None else torch.stack(taus, dim=1)


class LiquidStack(nn.Module):
    """Layers of one kind of cell (`core`, one of CELLS) in sequence, each output layer-normalised
    before the next layer.

    The norm sits on the outputs, not inside the state, so each layer's state follows its ODE
    exactly (the seed normalised the state itself after every step).
    forward(x, state) -> (outputs of the last layer, [final state per layer], [τ per layer that has one]).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 4,
        norm: bool = True,
        bptt_steps: int | None = None,
        impl: str = "auto",
        core: str = "liquid",
        **cell_kwargs,
    ):
        super().__init__()
        if num_layers < 1:
            raise ConfigError("num_layers", f"must be >= 1, got {num_layers}")
        sizes = [input_size] + [hidden_size] * num_layers
        self.layers = nn.ModuleList(
            LiquidLayer(sizes[i], hidden_size, bptt_steps=bptt_steps, impl=impl, core=core, **cell_kwargs)
            for i in range(num_layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(hidden_size) if norm else nn.Identity() for _ in range(num_layers))
        self.hidden_size = hidden_size

    def initial_state(self, batch: int, ref: Tensor) -> list[Tensor]:
        return [layer.cell.initial_state(batch, ref) for layer in self.layers]

    def forward(self, x: Tensor, state: list[Tensor] | None = None, dt: Tensor | float | None = None):
        state = state if state is not None else [None] * len(self.layers)
        new_state, taus = [], []
        for layer, norm, h in zip(self.layers, self.norms, state):
            out, h, tau = layer(x, h, dt)
            x = norm(out)
            new_state.append(h)
            if tau is not None:
                taus.append(tau)
        return x, new_state, taus
