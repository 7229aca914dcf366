"""LSTM and GRU cells with the cells' step API, for comparing cores: no notion of time, so the elapsed
time dt is one more input feature (a fair comparison with the cells that use it).

The maths is torch's nn.LSTMCell / nn.GRUCell on [x, dt] (tests check it); the x part of the input
matmul is `project_input` (once per sequence), dt's column is `time_weight`. The LSTM's state is
[h, c] in one tensor (B, 2H), so every core carries one state tensor per layer; its output is h.
dt = 0 (padding) leaves the state as it is, as the ODE cells do.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lnn.liquid.cell import hold_without_time


class _Gated(nn.Module):
    gates: int

    def __init__(self, input_size: int, hidden_size: int, recurrent_bias: bool):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        width = self.gates * hidden_size
        # torch's init: U(±1/√H) for every weight and bias
        self.input_proj = nn.Linear(input_size, width)
        self.time_weight = nn.Parameter(torch.empty(width))
        self.recurrent = nn.Linear(hidden_size, width, bias=recurrent_bias)
        bound = hidden_size**-0.5
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size} (+ dt as an input feature)"

    def project_input(self, x: Tensor) -> Tensor:
        return self.input_proj(x)

    def _gates_x(self, u: Tensor, dt: Tensor | float) -> Tensor:
        return u + dt * self.time_weight  # dt: a float or (B, 1)

    def initial_state(self, batch: int, ref: Tensor) -> Tensor:
        return ref.new_zeros(batch, self.state_size)


class LSTMCell(_Gated):
    gates = 4  # input, forget, cell, output (torch's order)

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size, recurrent_bias=False)  # one bias: b_ih + b_hh of torch
        self.state_size = 2 * hidden_size

    def step(self, u: Tensor, state: Tensor, dt: Tensor | float = 1.0) -> tuple[Tensor, None]:
        h, c = state.chunk(2, -1)
        i, f, g, o = (self._gates_x(u, dt) + self.recurrent(h)).chunk(4, -1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return hold_without_time(dt, torch.cat([h, c], -1), state), None

    def output(self, state: Tensor) -> Tensor:
        return state[..., : self.hidden_size]


class GRUCell(_Gated):
    gates = 3  # reset, update, new (torch's order)

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size, recurrent_bias=True)  # b_hn sits inside the reset gate
        self.state_size = hidden_size

    def step(self, u: Tensor, h: Tensor, dt: Tensor | float = 1.0) -> tuple[Tensor, None]:
        x_r, x_z, x_n = self._gates_x(u, dt).chunk(3, -1)
        h_r, h_z, h_n = self.recurrent(h).chunk(3, -1)
        r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        return hold_without_time(dt, (1 - z) * n + z * h, h), None

    def output(self, h: Tensor) -> Tensor:
        return h
