"""The liquid time-constant cell (LTC, Hasani et al. 2021; ncps's LTCCell, fully connected).

Each neuron is a leaky membrane driven by conductance-based synapses from the inputs (sensory) and
from every neuron:

    cm·dv/dt = gleak·(vleak − v) + Σ_j a_j·(erev_j − v),   a_j = w_j·σ(sigma_j·(v_j − mu_j))

which is the relaxation form the solvers take (solvers.py): rate = (gleak + Σ a)/cm,
target = (gleak·vleak + Σ a·erev)/(gleak + Σ a); τ = 1/rate depends on input and state. The
semi-implicit solver on it is exactly ncps's fused step (`ode_unfolds` = `unfolds`; ncps adds 1e-8 to
the denominator). w, sensory_w, cm and gleak pass through softplus, as ncps's
`implicit_param_constraints=True`; no input or output mapping (ncps's `input_mapping=None`,
`output_mapping=None`): the layers around the cell are linear already. Parameter names are ncps's.

The sensory synapses depend on the input only (`project_input`: once per sequence). Every synapse
has its own mu and sigma, so an evaluation computes B×N×N activations, as ncps's does; under autograd
they are recomputed in the backward instead of kept (activation checkpointing), so what a training
step keeps per ODE evaluation is O(B·N), not O(B·N²).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from torch.utils.checkpoint import checkpoint

from lnn.liquid.cell import check_liquid_args, integrate, tracing


def _uniform(shape, low: float, high: float) -> nn.Parameter:
    return nn.Parameter(torch.rand(*shape) * (high - low) + low)


def _polarity(shape) -> nn.Parameter:
    """Reversal potentials ±1, two thirds excitatory (ncps's wirings)."""
    return nn.Parameter(torch.where(torch.rand(*shape) < 1 / 3, -1.0, 1.0))


class LTCCell(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, solver: str = "semi_implicit", unfolds: int = 6,
                 rtol: float = 1e-3, atol: float = 1e-4):  # fmt: skip
        super().__init__()
        check_liquid_args(1.0, 2.0, solver, unfolds, rtol, atol)
        self.input_size, self.hidden_size, self.state_size = input_size, hidden_size, hidden_size
        self.solver, self.unfolds, self.rtol, self.atol = solver, unfolds, rtol, atol
        n, s = hidden_size, input_size
        # ncps's initial ranges
        self.gleak, self.vleak, self.cm = _uniform((n,), 0.001, 1.0), _uniform((n,), -0.2, 0.2), _uniform((n,), 0.4, 0.6)
        self.sigma, self.mu, self.w = _uniform((n, n), 3, 8), _uniform((n, n), 0.3, 0.8), _uniform((n, n), 0.001, 1.0)
        self.erev = _polarity((n, n))
        self.sensory_sigma, self.sensory_mu = _uniform((s, n), 3, 8), _uniform((s, n), 0.3, 0.8)
        self.sensory_w, self.sensory_erev = _uniform((s, n), 0.001, 1.0), _polarity((s, n))

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, solver={self.solver}, unfolds={self.unfolds}"

    @staticmethod
    def _synapses(v: Tensor, w: Tensor, mu: Tensor, sigma: Tensor, erev: Tensor) -> Tensor:
        """Presynaptic v (..., S) -> [Σ a·erev, Σ a] per postsynaptic neuron (..., 2N)."""
        a = F.softplus(w) * torch.sigmoid(sigma * (v.unsqueeze(-1) - mu))
        return torch.cat([(a * erev).sum(-2), a.sum(-2)], -1)

    def _drive(self, v: Tensor, w: Tensor, mu: Tensor, sigma: Tensor, erev: Tensor) -> Tensor:
        if torch.is_grad_enabled() and not tracing():  # keep v, not the (..., S, N) activations
            return checkpoint(self._synapses, v, w, mu, sigma, erev, use_reentrant=False)
        return self._synapses(v, w, mu, sigma, erev)

    def project_input(self, x: Tensor) -> Tensor:
        """The sensory synapses' drive for any leading shape: (..., D) -> (..., 2N)."""
        return self._drive(x, self.sensory_w, self.sensory_mu, self.sensory_sigma, self.sensory_erev)

    def _field(self, u: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """(target, rate) at v."""
        drive = u + self._drive(v, self.w, self.mu, self.sigma, self.erev)
        numerator, conductance = drive.chunk(2, -1)
        gleak = F.softplus(self.gleak)
        conductance = conductance + gleak
        return (numerator + gleak * self.vleak) / conductance, conductance / F.softplus(self.cm)

    def tau(self, x: Tensor, h: Tensor) -> Tensor:
        return 1.0 / self._field(self.project_input(x), h)[1]

    def derivative(self, x: Tensor, h: Tensor) -> Tensor:
        target, rate = self._field(self.project_input(x), h)
        return rate * (target - h)

    def step(self, u: Tensor, h: Tensor, dt: Tensor | float = 1.0) -> tuple[Tensor, None]:
        """Advance v over elapsed time dt given the sensory drive u. τ is not bounded, so not reported
        as the liquid cell's is (`tau()` gives it)."""
        return integrate(lambda v: self._field(u, v), h, dt, self.solver, self.unfolds, self.rtol, self.atol), None

    def initial_state(self, batch: int, ref: Tensor) -> Tensor:
        return ref.new_zeros(batch, self.hidden_size)

    def output(self, h: Tensor) -> Tensor:
        return h
