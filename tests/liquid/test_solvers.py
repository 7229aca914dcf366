"""The fixed-step solvers against a tight dopri5 solution of the same cell."""

import math

import pytest
import torch

from lnn.liquid import LiquidCell
from lnn.liquid.fused import FUSED_SOLVERS
from lnn.liquid.solvers import ADAPTIVE_SOLVERS, SOLVER_NAMES, SOLVERS


def make_cell(solver, unfolds=1, **kw):
    torch.manual_seed(0)
    cell = LiquidCell(3, 6, tau_min=0.5, tau_max=2.0, solver=solver, unfolds=unfolds, **kw).double()
    return cell


def solve(solver, unfolds, x, h0, horizon=1.0):
    cell = make_cell(solver, unfolds, rtol=1e-12, atol=1e-12)  # same seed: same weights for every solver
    with torch.no_grad():
        return cell(x, h0, dt=horizon)[0]


FIXED = [name for name, s in SOLVERS.items() if not s.adaptive]


def test_one_registry_every_list_derived_from_it():
    assert SOLVER_NAMES == ("euler", "midpoint", "rk4", "semi_implicit", "dopri5")
    assert FIXED == ["euler", "midpoint", "rk4", "semi_implicit"] and ADAPTIVE_SOLVERS == ("dopri5",)
    assert FUSED_SOLVERS == tuple(FIXED)  # every fixed-step solver has a hand-written backward
    assert [s.name for s in SOLVERS.values() if s.exportable] == FIXED
    orders = {name: s.order for name, s in SOLVERS.items()}
    assert orders == {"euler": 1, "midpoint": 2, "rk4": 4, "semi_implicit": 1, "dopri5": 5}
    for s in SOLVERS.values():  # a consistent explicit tableau: strictly lower a, weights summing to 1
        if s.tableau:
            assert [len(row) for row in s.tableau.a] == list(range(len(s.tableau.b)))
            assert sum(s.tableau.b) == s.tableau.b_den


@pytest.mark.parametrize("solver, order", [(name, SOLVERS[name].order) for name in FIXED])
def test_fixed_step_solvers_converge_with_the_order_they_declare(solver, order):
    torch.manual_seed(1)
    x, h0 = torch.randn(4, 3, dtype=torch.float64), 0.5 * torch.randn(4, 6, dtype=torch.float64)
    exact = solve("dopri5", 1, x, h0)
    errors = [(solve(solver, n, x, h0) - exact).abs().max().item() for n in (8, 16, 32)]
    ratios = [errors[i] / errors[i + 1] for i in range(2)]
    for ratio in ratios:  # halving dt divides the error by 2**order
        assert abs(math.log2(ratio) - order) < 0.15, (solver, errors, ratios)


def test_semi_implicit_stays_bounded_where_euler_diverges():
    torch.manual_seed(2)
    x, h0 = torch.randn(8, 3, dtype=torch.float64), torch.rand(8, 6, dtype=torch.float64) * 2 - 1
    dt = 50 * 0.5  # dt / tau_min = 50, far past Euler's stability limit of 2
    steps = {}
    for solver in ("euler", "semi_implicit"):
        cell = make_cell(solver)
        h = h0
        with torch.no_grad():
            for _ in range(20):
                h, _ = cell(x, h, dt=dt)
        steps[solver] = h.abs().max().item()
    assert steps["semi_implicit"] <= 1.0 + 1e-9
    assert not steps["euler"] < 1e3  # diverged (or overflowed to inf/nan)


@pytest.mark.parametrize("tau_per", ["neuron", "sample"])
def test_tau_stays_inside_bounds(tau_per):
    torch.manual_seed(3)
    cell = LiquidCell(3, 6, tau_min=0.2, tau_max=7.0, tau_per=tau_per)
    x, h = 100 * torch.randn(64, 3), 100 * torch.randn(64, 6)
    tau = cell.tau(x, h)
    assert tau.shape == (64, 6 if tau_per == "neuron" else 1)
    assert tau.min() >= 0.2 and tau.max() <= 7.0
    assert tau.min() < 0.3 and tau.max() > 6.9  # the extreme inputs do reach both ends


def test_derivative_is_the_documented_ode():
    torch.manual_seed(4)
    cell = LiquidCell(3, 5, tau_min=0.5, tau_max=4.0)
    x, h = torch.randn(2, 3), torch.randn(2, 5)
    w_in, w_rec = cell.input_proj.weight[:5], cell.recurrent.weight[:5]
    expected = (-h + torch.tanh(x @ w_in.T + cell.input_proj.bias[:5] + h @ w_rec.T)) / cell.tau(x, h)
    torch.testing.assert_close(cell.derivative(x, h), expected)


def test_dopri5_matches_fine_rk4():
    torch.manual_seed(5)
    x, h0 = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 6, dtype=torch.float64)
    exact = solve("dopri5", 1, x, h0)
    fine = solve("rk4", 256, x, h0)
    assert (exact - fine).abs().max() < 1e-9
