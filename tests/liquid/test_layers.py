"""Sequence layers: irregular sampling, streaming, padding, BPTT, argument checks."""

import pytest
import torch

from lnn.errors import ConfigError
from lnn.liquid import LiquidCell, LiquidLayer, LiquidStack


@pytest.fixture(params=["euler", "midpoint", "rk4", "semi_implicit", "dopri5"])
def stack(request):
    torch.manual_seed(0)
    # dopri5 adapts one step size to the whole batch, so batch and single runs agree to its tolerance
    tolerances = dict(rtol=1e-10, atol=1e-10) if request.param == "dopri5" else {}
    return LiquidStack(4, 8, num_layers=2, solver=request.param, unfolds=2, **tolerances).double()


def test_batch_with_different_dt_per_sample_equals_each_sample_alone(stack):
    torch.manual_seed(1)
    x = torch.randn(3, 5, 4, dtype=torch.float64)
    dt = torch.rand(3, 5, dtype=torch.float64) * 2 + 0.1
    out, state, taus = stack(x, dt=dt)
    for b in range(3):
        out_b, state_b, taus_b = stack(x[b : b + 1], dt=dt[b : b + 1])
        torch.testing.assert_close(out[b : b + 1], out_b, atol=1e-6, rtol=1e-6)
        for h, h_b in zip(state, state_b):
            torch.testing.assert_close(h[b : b + 1], h_b, atol=1e-6, rtol=1e-6)


def test_dt_per_sample_broadcasts_over_steps(stack):
    x = torch.randn(2, 4, 4, dtype=torch.float64)
    dt = torch.tensor([0.5, 2.0], dtype=torch.float64)
    torch.testing.assert_close(stack(x, dt=dt)[0], stack(x, dt=dt[:, None].expand(2, 4))[0])


def test_streaming_step_by_step_equals_whole_sequence(stack):
    torch.manual_seed(2)
    x = torch.randn(2, 6, 4, dtype=torch.float64)
    out, state, _ = stack(x)
    h, outs = None, []
    for t in range(6):
        o, h, _ = stack(x[:, t : t + 1], h)
        outs.append(o)
    torch.testing.assert_close(torch.cat(outs, 1), out)
    for a, b in zip(h, state):
        torch.testing.assert_close(a, b)


def test_zero_dt_padding_keeps_the_final_state(stack):
    x = torch.randn(1, 3, 4, dtype=torch.float64)
    padded = torch.cat([x, torch.randn(1, 2, 4, dtype=torch.float64)], 1)
    dt = torch.tensor([[1.0, 1.0, 1.0, 0.0, 0.0]], dtype=torch.float64)
    for a, b in zip(stack(x)[1], stack(padded, dt=dt)[1]):
        torch.testing.assert_close(a, b)


def test_tau_per_step_and_layer_shapes():
    stack = LiquidStack(4, 8, num_layers=3, tau_per="sample")
    out, state, taus = stack(torch.randn(2, 5, 4))
    assert out.shape == (2, 5, 8) and len(state) == len(taus) == 3
    assert all(t.shape == (2, 5, 1) for t in taus)


def test_full_bptt_reaches_the_first_step_and_truncation_cuts_it():
    torch.manual_seed(3)
    for bptt_steps, reaches in ((None, True), (2, False)):
        layer = LiquidLayer(4, 8, bptt_steps=bptt_steps)
        x = torch.randn(1, 6, 4, requires_grad=True)
        out, _, _ = layer(x)
        out[:, -1].sum().backward()
        assert (x.grad[:, 0].abs().sum() > 0) == reaches
        assert x.grad[:, -1].abs().sum() > 0


def test_input_terms_are_projected_once_per_sequence(monkeypatch):
    layer = LiquidLayer(4, 8)
    calls = []
    original = layer.cell.input_proj.forward
    monkeypatch.setattr(layer.cell.input_proj, "forward", lambda x: calls.append(x.shape) or original(x))
    layer(torch.randn(2, 7, 4))
    assert calls == [torch.Size([2, 7, 4])]


@pytest.mark.parametrize(
    "kwargs, key",
    [
        (dict(tau_min=0.0), "tau_min"),
        (dict(tau_min=-1.0), "tau_min"),
        (dict(tau_min=2.0, tau_max=2.0), "tau_max"),
        (dict(solver="heun"), "solver"),
        (dict(unfolds=0), "unfolds"),
        (dict(solver="dopri5", rtol=0.0), "rtol"),
        (dict(solver="dopri5", atol=-1e-3), "atol"),
        (dict(tau_per="layer"), "tau_per"),
    ],
)
def test_bad_arguments_name_the_key(kwargs, key):
    with pytest.raises(ConfigError) as info:
        LiquidCell(4, 8, **kwargs)
    assert info.value.key == key


def test_bad_dt_shape_is_refused():
    with pytest.raises(ValueError, match="dt must be"):
        LiquidLayer(4, 8)(torch.randn(2, 3, 4), dt=torch.ones(2, 4))
