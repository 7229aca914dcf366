"""ODE steps for liquid neurons, written for the relaxation form of their dynamics.

A liquid neuron relaxes towards a target at an input-dependent rate,

    dh/dt = rate(h) · (target(h) − h),        rate = 1/τ,

and every solver here advances h by a step dt given `field(h) -> (target, rate)`. The explicit
solvers only use the derivative rate·(target − h); the semi-implicit one treats the decay term
implicitly, which is what keeps it stable for dt ≫ τ (the LTC paper's fused step is the same idea).

`SOLVERS` is the one registry: name → `Solver` record. Every other solver list (the config check,
the fused path's, the exporter's) is derived from it, and each explicit solver's coefficients are
written once, as a Butcher tableau that this reference step and the fused path (fused.py) both run.

`dt` broadcasts against h: a float, or a (B, 1) tensor for per-sample elapsed time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

Field = Callable[[Tensor], tuple[Tensor, Tensor]]
Step = Callable[[Field, Tensor, "Tensor | float"], Tensor]


@dataclass(frozen=True)
class Tableau:
    """Explicit Runge–Kutta: stage i evaluates k_i at h + dt·Σ_j a[i][j]·k_j (a[0] is empty);
    the step is h + dt/b_den · Σ_i b[i]·k_i. Integer weights over one denominator (rk4: the textbook
    (1, 2, 2, 1)/6): the reference step sums the k's and divides dt once; fused.py uses weights()."""

    a: tuple[tuple[float, ...], ...]
    b: tuple[int, ...]
    b_den: int = 1

    def weights(self) -> tuple[float, ...]:
        return tuple(b_i / self.b_den for b_i in self.b)


@dataclass(frozen=True)
class Solver:
    name: str
    order: int
    adaptive: bool  # step size chosen by error control (dopri5): no fixed step function
    fused: bool  # has a hand-written backward in fused.py
    exportable: bool  # a fixed number of plain torch ops, so ONNX can trace it
    step: Step | None = None  # the reference fixed step (None for adaptive solvers)
    tableau: Tableau | None = None  # explicit Runge–Kutta methods only


def _derivative(field: Field, h: Tensor) -> Tensor:
    target, rate = field(h)
    return rate * (target - h)


def stage_input(h: Tensor, a_row, ks: list[Tensor], dt) -> Tensor:
    """h + dt·Σ_j a_ij·k_j, skipping zero coefficients."""
    y = h
    for a_ij, k in zip(a_row, ks):
        if a_ij:
            y = y + (dt * a_ij) * k
    return y


def explicit(tableau: Tableau) -> Step:
    """The reference step of an explicit Runge–Kutta method, plain autograd-differentiable ops."""

    def step(field: Field, h: Tensor, dt: Tensor | float) -> Tensor:
        ks: list[Tensor] = []
        for row in tableau.a:
            ks.append(_derivative(field, stage_input(h, row, ks, dt)))
        total = None
        for b_i, k in zip(tableau.b, ks):
            if b_i:
                term = k if b_i == 1 else b_i * k
                total = term if total is None else total + term
        return h + (dt if tableau.b_den == 1 else dt / tableau.b_den) * total

    return step


def semi_implicit(field: Field, h: Tensor, dt: Tensor | float) -> Tensor:
    """Implicit in the decay, explicit in the target: h' = (h + dt·rate·target) / (1 + dt·rate).

    h' is a convex combination of h and the target, so |h| stays bounded by max(|h|, |target|) for
    any dt — where Euler diverges once dt·rate > 2.
    """
    target, rate = field(h)
    a = dt * rate
    return (h + a * target) / (1 + a)


def dopri5(field: Field, h: Tensor, dt: Tensor | float, rtol: float, atol: float) -> Tensor:
    """Adaptive Dormand–Prince over one step, per-sample dt included.

    torchdiffeq integrates the whole batch on one time grid, so time is rescaled: with s = t/dt,
    dh/ds = dt · f(h) and every sample runs s from 0 to 1, whatever its own dt.
    """
    from torchdiffeq import odeint

    def scaled(_s: Tensor, y: Tensor) -> Tensor:
        return dt * _derivative(field, y)

    s = torch.tensor([0.0, 1.0], dtype=h.dtype, device=h.device)
    return odeint(scaled, h, s, rtol=rtol, atol=atol, method="dopri5")[-1]


def _rk(name: str, order: int, tableau: Tableau) -> Solver:
    return Solver(name, order, adaptive=False, fused=True, exportable=True, step=explicit(tableau), tableau=tableau)


SOLVERS: dict[str, Solver] = {
    s.name: s
    for s in (
        _rk("euler", 1, Tableau(a=((),), b=(1,))),
        _rk("midpoint", 2, Tableau(a=((), (0.5,)), b=(0, 1))),
        _rk("rk4", 4, Tableau(a=((), (0.5,), (0.0, 0.5), (0.0, 0.0, 1.0)), b=(1, 2, 2, 1), b_den=6)),
        Solver("semi_implicit", 1, adaptive=False, fused=True, exportable=True, step=semi_implicit),
        # adaptive: integrated by the cell through torchdiffeq; training and evaluation only
        Solver("dopri5", 5, adaptive=True, fused=False, exportable=False),
    )
}
SOLVER_NAMES = tuple(SOLVERS)
ADAPTIVE_SOLVERS = tuple(name for name, s in SOLVERS.items() if s.adaptive)
