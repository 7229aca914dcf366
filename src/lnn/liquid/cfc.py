"""The closed-form continuous-time cell (CfC, Hasani et al. 2022; ncps's CfCCell, mode "default").

No ODE is integrated: the state is a gated blend of two targets, the gate depending on elapsed time,

    z      = lecun_tanh(W_x·x + W_h·h + b)          the backbone (lecun_tanh(v) = 1.7159·tanh(0.666·v))
    gate   = σ(t_a(z)·dt + t_b(z))
    h'     = tanh(ff1(z))·(1 − gate) + gate·tanh(ff2(z))

ncps's backbone reads [x, h] through one matrix; here its x part is `project_input` (once for the
whole sequence) and its h part `recurrent`. ff1, ff2, t_a and t_b are one (units → 4H) matmul.
The backbone is as wide as the state (ncps's default is 128 units; one width is what the budget solves).
dt = 0 (padding) leaves the state as it is, as the ODE cells do.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lnn.liquid.cell import hold_without_time


def lecun_tanh(v: Tensor) -> Tensor:
    return 1.7159 * torch.tanh(0.666 * v)


class CfCCell(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, backbone_units: int | None = None):
        super().__init__()
        units = backbone_units or hidden_size
        self.input_size, self.hidden_size, self.state_size, self.backbone_units = input_size, hidden_size, hidden_size, units
        self.input_proj = nn.Linear(input_size, units)
        self.recurrent = nn.Linear(hidden_size, units, bias=False)
        self.heads = nn.Linear(units, 4 * hidden_size)  # ff1, ff2, t_a, t_b
        with torch.no_grad():  # ncps's init: Xavier on the [x, h] matrix and on each head
            both = nn.init.xavier_uniform_(torch.empty(units, input_size + hidden_size))
            self.input_proj.weight.copy_(both[:, :input_size])
            self.recurrent.weight.copy_(both[:, input_size:])
            for part in self.heads.weight.view(4, hidden_size, units):
                nn.init.xavier_uniform_(part)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, backbone_units={self.backbone_units}"

    def project_input(self, x: Tensor) -> Tensor:
        return self.input_proj(x)

    def step(self, u: Tensor, h: Tensor, dt: Tensor | float = 1.0) -> tuple[Tensor, None]:
        """Advance h over elapsed time dt ((B, 1) or a float) given projected input u; no τ."""
        z = lecun_tanh(u + self.recurrent(h))
        ff1, ff2, t_a, t_b = self.heads(z).chunk(4, -1)
        gate = torch.sigmoid(t_a * dt + t_b)
        h_next = torch.tanh(ff1) * (1.0 - gate) + gate * torch.tanh(ff2)
        return hold_without_time(dt, h_next, h), None

    def initial_state(self, batch: int, ref: Tensor) -> Tensor:
        return ref.new_zeros(batch, self.hidden_size)

    def output(self, h: Tensor) -> Tensor:
        return h
