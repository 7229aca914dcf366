"""ODE steps for liquid neurons, written for the relaxation form of their dynamics.

A liquid neuron relaxes towards a target at an input-dependent rate,

    dh/dt = rate(h) · (target(h) − h),        rate = 1/τ,

and every solver here advances h by a step dt given `field(h) -> (target, rate)`. The explicit
solvers only use the derivative rate·(target − h); the semi-implicit one treats the decay term
implicitly, which is what keeps it stable for dt ≫ τ (the LTC paper's fused step is the same idea).

`dt` broadcasts against h: a float, or a (B, 1) tensor for per-sample elapsed time.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

Field = Callable[[Tensor], tuple[Tensor, Tensor]]
Step = Callable[[Field, Tensor, "Tensor | float"], Tensor]


def _derivative(field: Field, h: Tensor) -> Tensor:
    target, rate = field(h)
    return rate * (target - h)


def euler(field: Field, h: Tensor, dt: Tensor | float) -> Tensor:
    return h + dt * _derivative(field, h)


def midpoint(field: Field, h: Tensor, dt: Tensor | float) -> Tensor:
    k1 = _derivative(field, h)
    return h + dt * _derivative(field, h + 0.5 * dt * k1)


def rk4(field: Field, h: Tensor, dt: Tensor | float) -> Tensor:
    """Classic Runge–Kutta (1/6, 2/6, 2/6, 1/6)."""
    k1 = _derivative(field, h)
    k2 = _derivative(field, h + 0.5 * dt * k1)
    k3 = _derivative(field, h + 0.5 * dt * k2)
    k4 = _derivative(field, h + dt * k3)
    return h + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


def semi_implicit(field: Field, h: Tensor, dt: Tensor | float) -> Tensor:
    """Implicit in the decay, explicit in the target: h' = (h + dt·rate·target) / (1 + dt·rate).

    h' is a convex combination of h and the target, so |h| stays bounded by max(|h|, |target|) for
    any dt — where Euler diverges once dt·rate > 2.
    """
    target, rate = field(h)
    a = dt * rate
    return (h + a * target) / (1 + a)


# Fixed-step solvers, by config name. `dopri5` is adaptive and lives in the cell (through torchdiffeq).
SOLVERS: dict[str, Step] = {
    "euler": euler,
    "midpoint": midpoint,
    "rk4": rk4,
    "semi_implicit": semi_implicit,
}
ADAPTIVE_SOLVERS = ("dopri5",)
SOLVER_NAMES = tuple(SOLVERS) + ADAPTIVE_SOLVERS


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
