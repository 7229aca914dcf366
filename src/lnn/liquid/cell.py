"""The liquid cell: one ODE step of neurons with an input-dependent time constant.

    dh/dt = (−h + tanh(W_in·x + W_rec·h + b)) / τ
    τ     = τ_min + (τ_max − τ_min) · σ(W_τ·[x, h] + b_τ)

τ is per neuron (default) or one per sample (`tau_per="sample"`, the seed's Lite). The input-only
terms W_in·x + b and W_τx·x + b_τ are one projection (`project_input`), so a sequence layer computes
them for all time steps at once; each ODE evaluation then costs one (H → H + τ-size) matmul.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lnn.errors import ConfigError
from lnn.liquid.solvers import SOLVER_NAMES, SOLVERS, dopri5

TAU_PER = ("neuron", "sample")


def check_liquid_args(tau_min, tau_max, solver, unfolds, rtol, atol, tau_per="neuron"):
    """Raise ConfigError (named by argument) for settings the ODE cannot run with."""
    if not tau_min > 0:
        raise ConfigError("tau_min", f"must be > 0 (a time constant), got {tau_min}; e.g. tau_min=0.5")
    if not tau_max > tau_min:
        raise ConfigError("tau_max", f"must be > tau_min={tau_min}, got {tau_max}; e.g. tau_max={10 * tau_min:g}")
    if solver not in SOLVER_NAMES:
        raise ConfigError("solver", f"unknown solver {solver!r}; choose one of {', '.join(SOLVER_NAMES)}")
    if not (isinstance(unfolds, int) and unfolds >= 1):
        raise ConfigError("unfolds", f"must be an integer >= 1 (ODE sub-steps per input step), got {unfolds}")
    if solver == "dopri5":
        for key, value in (("rtol", rtol), ("atol", atol)):
            if not value > 0:
                raise ConfigError(key, f"dopri5 tolerance must be > 0, got {value}; e.g. {key}=1e-4")
    if tau_per not in TAU_PER:
        raise ConfigError("tau_per", f"must be one of {TAU_PER}, got {tau_per!r}")


def tracing() -> bool:
    """Inside an ONNX export or a torch.compile/export trace: only plain torch ops will do."""
    return torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling()


def as_step_dt(dt: Tensor | float | None, batch: int, steps: int, ref: Tensor) -> Tensor | float:
    """Elapsed time per sample and step: a float (None -> 1.0), or (B,) / (B, T) -> (B, T, 1)."""
    if dt is None:
        return 1.0
    if not torch.is_tensor(dt) or dt.dim() == 0:
        return float(dt)
    dt = dt.to(dtype=ref.dtype, device=ref.device)
    if dt.dim() == 1:
        dt = dt[:, None].expand(batch, steps)
    if dt.shape != (batch, steps):
        raise ValueError(f"dt must be a float, (B,)=({batch},) or (B, T)=({batch}, {steps}); got {tuple(dt.shape)}")
    return dt.unsqueeze(-1)


def integrate(field, h: Tensor, dt: Tensor | float, solver: str, unfolds: int, rtol: float, atol: float) -> Tensor:
    """h advanced over elapsed time dt in `unfolds` sub-steps of `solver`; field(y) -> (target, rate)."""
    sub_dt = dt / unfolds
    for _ in range(unfolds):
        if solver == "dopri5":
            h = dopri5(field, h, sub_dt, rtol, atol)
        else:
            h = SOLVERS[solver].step(field, h, sub_dt)
    return h


def hold_without_time(dt: Tensor | float, h_next: Tensor, h: Tensor) -> Tensor:
    """h_next, except where dt = 0 (padding): there the state stays h, as an ODE cell's does by itself."""
    if not torch.is_tensor(dt):
        return h if dt == 0 else h_next
    return torch.where(dt > 0, h_next, h)


class LiquidCell(nn.Module):
    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        tau_min: float = 1.0,
        tau_max: float = 10.0,
        solver: str = "rk4",
        unfolds: int = 1,
        tau_per: str = "neuron",
        rtol: float = 1e-3,
        atol: float = 1e-4,
    ):
        super().__init__()
        check_liquid_args(tau_min, tau_max, solver, unfolds, rtol, atol, tau_per)
        self.input_size, self.hidden_size, self.state_size = input_size, hidden_size, hidden_size
        self.tau_min, self.tau_max = float(tau_min), float(tau_max)
        self.solver, self.unfolds, self.rtol, self.atol = solver, unfolds, rtol, atol
        self.tau_per = tau_per
        self.tau_size = hidden_size if tau_per == "neuron" else 1
        # [W_in; W_τx]·x + [b; b_τ] and [W_rec; W_τh]·h, each as one matmul.
        self.input_proj = nn.Linear(input_size, hidden_size + self.tau_size)
        self.recurrent = nn.Linear(hidden_size, hidden_size + self.tau_size, bias=False)
        nn.init.orthogonal_(self.recurrent.weight[:hidden_size])

    def extra_repr(self) -> str:
        return (
            f"{self.input_size}, {self.hidden_size}, tau=[{self.tau_min:g}, {self.tau_max:g}] per {self.tau_per}, "
            f"solver={self.solver}, unfolds={self.unfolds}"
        )

    # --- the dynamics -------------------------------------------------------------------------
    def project_input(self, x: Tensor) -> Tensor:
        """The input-only terms for any leading shape: (..., D) -> (..., H + τ-size)."""
        return self.input_proj(x)

    def _target_tau(self, u: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        z = u + self.recurrent(h)
        target = torch.tanh(z[..., : self.hidden_size])
        tau = self.tau_min + (self.tau_max - self.tau_min) * torch.sigmoid(z[..., self.hidden_size :])
        return target, tau

    def tau(self, x: Tensor, h: Tensor) -> Tensor:
        return self._target_tau(self.project_input(x), h)[1]

    def derivative(self, x: Tensor, h: Tensor) -> Tensor:
        """dh/dt at (x, h)."""
        target, tau = self._target_tau(self.project_input(x), h)
        return (target - h) / tau

    # --- one input step ---------------------------------------------------------------------
    def step(self, u: Tensor, h: Tensor, dt: Tensor | float = 1.0) -> tuple[Tensor, Tensor]:
        """Advance h over elapsed time dt given projected input u; returns (h_next, τ at the start)."""
        taus: list[Tensor] = []

        def field(y: Tensor) -> tuple[Tensor, Tensor]:
            target, tau = self._target_tau(u, y)
            if not taus:  # the first evaluation is at the start state: report that τ
                taus.append(tau)
            return target, 1.0 / tau

        if self.solver == "dopri5":  # its first evaluation point is torchdiffeq's business
            taus.append(self._target_tau(u, h)[1])
        return integrate(field, h, dt, self.solver, self.unfolds, self.rtol, self.atol), taus[0]

    def initial_state(self, batch: int, ref: Tensor) -> Tensor:
        return ref.new_zeros(batch, self.hidden_size)

    def output(self, h: Tensor) -> Tensor:
        return h

    def forward(self, x: Tensor, h: Tensor | None = None, dt: Tensor | float | None = None):
        """One step on x of shape (B, D); dt a float or (B,). Returns (h_next, τ)."""
        if h is None:
            h = self.initial_state(x.shape[0], x)
        step_dt = as_step_dt(dt, x.shape[0], 1, x)
        if torch.is_tensor(step_dt):
            step_dt = step_dt[:, 0]
        return self.step(self.project_input(x), h, step_dt)
