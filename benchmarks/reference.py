"""The seed-style liquid stack: the baseline every lnn speed figure is a ratio against.

Written the way the seed wrote its cell — an explicit Python loop over steps, every ODE evaluation
recomputing the input terms (W_in·x, and W_τ over the concatenation [x, h]) — but integrating the
same ODE as lnn's cell, so outputs can be checked equal before times are compared.
"""

from __future__ import annotations

import torch
from torch import nn

from lnn.liquid import LiquidStack


class SeedStyleCell(nn.Module):
    def __init__(self, input_size, hidden_size, tau_min, tau_max, solver):
        super().__init__()
        self.w_in = nn.Linear(input_size, hidden_size)
        self.w_rec = nn.Linear(hidden_size, hidden_size, bias=False)
        self.w_tau = nn.Linear(input_size + hidden_size, hidden_size)
        self.tau_min, self.tau_max, self.solver = tau_min, tau_max, solver

    def derivative(self, x, h):
        tau = self.tau_min + (self.tau_max - self.tau_min) * torch.sigmoid(self.w_tau(torch.cat([x, h], -1)))
        return (-h + torch.tanh(self.w_in(x) + self.w_rec(h))) / tau

    def forward(self, x, h, dt=1.0):
        f = lambda y: self.derivative(x, y)  # noqa: E731 — input terms recomputed at every evaluation
        if self.solver == "euler":
            return h + dt * f(h)
        if self.solver == "midpoint":
            return h + dt * f(h + 0.5 * dt * f(h))
        if self.solver == "rk4":
            k1 = f(h)
            k2 = f(h + 0.5 * dt * k1)
            k3 = f(h + 0.5 * dt * k2)
            k4 = f(h + dt * k3)
            return h + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        raise ValueError(f"no seed-style {self.solver}")


class SeedStyleStack(nn.Module):
    def __init__(self, input_size, hidden_size, num_layers, tau_min=1.0, tau_max=10.0, solver="rk4"):
        super().__init__()
        sizes = [input_size] + [hidden_size] * num_layers
        self.cells = nn.ModuleList(SeedStyleCell(sizes[i], hidden_size, tau_min, tau_max, solver) for i in range(num_layers))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden_size) for _ in range(num_layers))

    def forward(self, x):
        for cell, norm in zip(self.cells, self.norms):
            h = x.new_zeros(x.shape[0], cell.w_rec.in_features)
            outputs = []
            for t in range(x.shape[1]):
                h = cell(x[:, t], h)
                outputs.append(h)
            x = norm(torch.stack(outputs, 1))
        return x

    @torch.no_grad()
    def load_from(self, stack: LiquidStack) -> "SeedStyleStack":
        """Copy an lnn stack's weights (per-neuron τ), so both integrate the very same ODE."""
        for cell, layer, norm, lnorm in zip(self.cells, stack.layers, self.norms, stack.norms):
            lc, h = layer.cell, layer.cell.hidden_size
            cell.w_in.weight.copy_(lc.input_proj.weight[:h])
            cell.w_in.bias.copy_(lc.input_proj.bias[:h])
            cell.w_rec.weight.copy_(lc.recurrent.weight[:h])
            cell.w_tau.weight.copy_(torch.cat([lc.input_proj.weight[h:], lc.recurrent.weight[h:]], 1))
            cell.w_tau.bias.copy_(lc.input_proj.bias[h:])
            norm.load_state_dict(lnorm.state_dict())
        return self

