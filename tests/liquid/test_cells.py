"""CfC and LTC equal ncps's cells for the same weights; LSTM and GRU equal torch's on [x, dt]; every
kind of cell runs in a layer: sequence == steps with state carried, dt = 0 keeps the state."""

import pytest
import torch
from torch import nn

from lnn.liquid import CELLS, CfCCell, GRUCell, LiquidLayer, LSTMCell, LTCCell

ncps_torch = pytest.importorskip("ncps.torch", reason="ncps is a test dependency (pip install -e .[dev])")

B, T, D, H = 3, 5, 4, 6


def sequence(seed=0):
    torch.manual_seed(seed)
    x = torch.randn(B, T, D)
    dt = torch.rand(B, T) * 1.5 + 0.25  # irregular, per sample and step
    return x, dt


def test_cfc_equals_ncps():
    torch.manual_seed(0)
    theirs = ncps_torch.CfCCell(D, H, mode="default", backbone_units=7, backbone_layers=1)
    ours = CfCCell(D, H, backbone_units=7)
    with torch.no_grad():
        linear = theirs.backbone[0]
        ours.input_proj.weight.copy_(linear.weight[:, :D])
        ours.input_proj.bias.copy_(linear.bias)
        ours.recurrent.weight.copy_(linear.weight[:, D:])
        heads = (theirs.ff1, theirs.ff2, theirs.time_a, theirs.time_b)
        ours.heads.weight.copy_(torch.cat([m.weight for m in heads]))
        ours.heads.bias.copy_(torch.cat([m.bias for m in heads]))
    x, dt = sequence()
    h_theirs = h_ours = torch.randn(B, H)
    for t in range(T):
        h_theirs, _ = theirs(x[:, t], h_theirs, dt[:, t : t + 1])
        h_ours, tau = ours.step(ours.project_input(x[:, t]), h_ours, dt[:, t : t + 1])
        assert tau is None
    torch.testing.assert_close(h_ours, h_theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("unfolds", [1, 6])
def test_ltc_equals_ncps_semi_implicit(unfolds):
    from ncps.wirings import FullyConnected

    torch.manual_seed(0)
    theirs = ncps_torch.LTCCell(FullyConnected(H), in_features=D, input_mapping=None, output_mapping=None,
                                ode_unfolds=unfolds, implicit_param_constraints=True)  # fmt: skip
    ours = LTCCell(D, H, solver="semi_implicit", unfolds=unfolds)
    with torch.no_grad():
        for name, p in ours.named_parameters():
            p.copy_(getattr(theirs, name))
    x, dt = sequence()
    h_theirs = h_ours = torch.rand(B, H) - 0.5
    for t in range(T):
        _, h_theirs = theirs(x[:, t], h_theirs, dt[:, t : t + 1])
        h_ours, _ = ours.step(ours.project_input(x[:, t]), h_ours, dt[:, t : t + 1])
    torch.testing.assert_close(h_ours, h_theirs, rtol=1e-5, atol=1e-6)
    # the gradients too (ours recomputes the synapses in the backward)
    (h_ours**2).sum().backward()
    (h_theirs**2).sum().backward()
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, getattr(theirs, name).grad, rtol=1e-4, atol=1e-6, msg=name)


def test_ltc_derivative_and_tau():
    """derivative is the ODE's right-hand side; tau > 0; explicit solvers converge to the same state."""
    torch.manual_seed(0)
    cell = LTCCell(D, H, solver="rk4", unfolds=64)
    x, h = torch.randn(B, D), torch.rand(B, H)
    eps = 1e-3
    euler = h + eps * cell.derivative(x, h)
    cell_euler = LTCCell(D, H, solver="euler", unfolds=1)
    cell_euler.load_state_dict(cell.state_dict())
    torch.testing.assert_close(cell_euler.step(cell_euler.project_input(x), h, eps)[0], euler)
    assert (cell.tau(x, h) > 0).all()
    fine = cell.step(cell.project_input(x), h, 0.5)[0]
    cell_si = LTCCell(D, H, solver="semi_implicit", unfolds=1024)  # first order
    cell_si.load_state_dict(cell.state_dict())
    torch.testing.assert_close(cell_si.step(cell_si.project_input(x), h, 0.5)[0], fine, atol=1e-3, rtol=0)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_gated_equal_torch_on_x_and_dt(kind):
    torch.manual_seed(0)
    theirs = (nn.LSTMCell if kind == "lstm" else nn.GRUCell)(D + 1, H)
    ours = (LSTMCell if kind == "lstm" else GRUCell)(D, H)
    with torch.no_grad():
        ours.input_proj.weight.copy_(theirs.weight_ih[:, :D])
        ours.time_weight.copy_(theirs.weight_ih[:, D])
        ours.recurrent.weight.copy_(theirs.weight_hh)
        if kind == "lstm":
            ours.input_proj.bias.copy_(theirs.bias_ih + theirs.bias_hh)
        else:
            ours.input_proj.bias.copy_(theirs.bias_ih)
            ours.recurrent.bias.copy_(theirs.bias_hh)
    x, dt = sequence()
    state = ours.initial_state(B, x)
    hc = (torch.zeros(B, H), torch.zeros(B, H))
    for t in range(T):
        step_dt = dt[:, t : t + 1]
        state, _ = ours.step(ours.project_input(x[:, t]), state, step_dt)
        inp = torch.cat([x[:, t], step_dt], -1)
        hc = theirs(inp, hc) if kind == "lstm" else (theirs(inp, hc[0]),)
    torch.testing.assert_close(ours.output(state), hc[0], rtol=1e-5, atol=1e-6)
    if kind == "lstm":
        torch.testing.assert_close(state[:, H:], hc[1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("core", [c for c in CELLS if c != "liquid"])
def test_layer_sequence_equals_steps_and_padding_keeps_state(core):
    torch.manual_seed(0)
    layer = LiquidLayer(D, H, core=core, solver="semi_implicit")
    x, dt = sequence()
    out, final, taus = layer(x, dt=dt)
    assert taus is None and out.shape == (B, T, H) and final.shape == (B, layer.cell.state_size)
    state = layer.cell.initial_state(B, x)
    for t in range(T):
        step_out, state, _ = layer(x[:, t : t + 1], state, dt[:, t : t + 1])
        torch.testing.assert_close(step_out[:, 0], out[:, t])
    torch.testing.assert_close(state, final)
    # right padding: dt = 0 on the padded steps leaves the final state of the real ones
    padded_dt = torch.cat([dt, torch.zeros(B, 3)], 1)
    padded_x = torch.cat([x, torch.randn(B, 3, D)], 1)
    torch.testing.assert_close(layer(padded_x, dt=padded_dt)[1], final)
