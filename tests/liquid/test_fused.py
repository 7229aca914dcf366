"""The fused path (hand-written backward) equals the reference loop that autograd differentiates."""

import itertools

import pytest
import torch

from lnn.liquid import LiquidLayer, LiquidStack
from lnn.liquid.fused import FUSED_SOLVERS, FusedLiquidSequence

CASES = list(itertools.product(FUSED_SOLVERS, ["neuron", "sample"], [1, 3]))


def run(layer_kwargs, impl, x, h0, dt, seed=0):
    torch.manual_seed(seed)
    layer = LiquidLayer(5, 7, impl=impl, tau_min=0.3, tau_max=3.0, **layer_kwargs).double()
    x = x.clone().requires_grad_(True)
    h0 = h0.clone().requires_grad_(True)
    if torch.is_tensor(dt):  # irregular sampling learned through dt: its gradient is compared too
        dt = dt.clone().requires_grad_(True)
    out, last, tau = layer(x, h0, dt)
    # a loss that uses every output: the sequence, the final state and τ
    weights = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)
    loss = (out * weights).sum() + last.square().sum() + 0.1 * tau.sin().sum()
    loss.backward()
    grads = {name: p.grad for name, p in layer.named_parameters()} | {"x": x.grad, "h0": h0.grad}
    if torch.is_tensor(dt):
        assert dt.grad is not None and dt.grad.abs().sum() > 0
        grads["dt"] = dt.grad
    return (out, last, tau), grads


@pytest.mark.parametrize("solver, tau_per, unfolds", CASES)
@pytest.mark.parametrize("dt_kind", ["float", "per_sample", "per_step"])
def test_fused_equals_reference_values_and_gradients(solver, tau_per, unfolds, dt_kind):
    torch.manual_seed(1)
    x, h0 = torch.randn(3, 6, 5, dtype=torch.float64), 0.3 * torch.randn(3, 7, dtype=torch.float64)
    shape = {"float": None, "per_sample": (3,), "per_step": (3, 6)}[dt_kind]
    dt = 0.7 if shape is None else torch.rand(shape, dtype=torch.float64) * 2
    kwargs = dict(solver=solver, tau_per=tau_per, unfolds=unfolds)
    ref_out, ref_grads = run(kwargs, "reference", x, h0, dt)
    fused_out, fused_grads = run(kwargs, "fused", x, h0, dt)
    for a, b in zip(ref_out, fused_out):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-12)
    for name in ref_grads:
        torch.testing.assert_close(fused_grads[name], ref_grads[name], rtol=1e-9, atol=1e-11, msg=name)


@pytest.mark.parametrize("bptt_steps", [1, 2, 4])
def test_truncated_bptt_matches(bptt_steps):
    torch.manual_seed(2)
    x, h0 = torch.randn(2, 7, 5, dtype=torch.float64), torch.zeros(2, 7, dtype=torch.float64)
    dt = torch.rand(2, 7, dtype=torch.float64) + 0.5
    kwargs = dict(solver="rk4", bptt_steps=bptt_steps)
    _, ref = run(kwargs, "reference", x, h0, dt)
    _, fused = run(kwargs, "fused", x, h0, dt)
    for name in ref:
        torch.testing.assert_close(fused[name], ref[name], rtol=1e-9, atol=1e-11, msg=name)


def test_gradcheck():
    torch.manual_seed(3)
    u = torch.randn(2, 3, 4 + 4, dtype=torch.float64, requires_grad=True)
    w = 0.5 * torch.randn(8, 4, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    for solver in ("euler", "rk4", "semi_implicit"):
        fn = lambda u, w, h0: FusedLiquidSequence.apply(u, w, h0, 0.8, solver, 2, 0.5, 2.0, None)  # noqa: E731
        assert torch.autograd.gradcheck(fn, (u, w, h0))


@pytest.mark.parametrize("solver", FUSED_SOLVERS)
@pytest.mark.parametrize("tau_per", ["neuron", "sample"])
@pytest.mark.parametrize("dt_shape", [(2,), (2, 3)])
def test_gradcheck_dt(solver, tau_per, dt_shape):
    """The hand-written backward's gradient for dt, per sample (B,) and per step (B, T), against finite differences."""
    torch.manual_seed(4)
    layer = LiquidLayer(4, 5, impl="fused", solver=solver, tau_per=tau_per, unfolds=2, tau_min=0.5, tau_max=2.0)
    layer = layer.double()
    x, h0 = torch.randn(2, 3, 4, dtype=torch.float64), 0.5 * torch.randn(2, 5, dtype=torch.float64)
    dt = (torch.rand(dt_shape, dtype=torch.float64) + 0.3).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda dt: layer(x, h0, dt), (dt,))


@pytest.mark.parametrize("impl", ["fused", "reference"])
def test_empty_sequence_is_a_clear_error(impl):
    layer = LiquidLayer(3, 4, impl=impl)
    for module in (layer, LiquidStack(3, 4, 2, impl=impl)):
        with pytest.raises(ValueError, match=r"at least one time step.*\(2, 0, 3\)"):
            module(torch.randn(2, 0, 3))


def test_auto_uses_reference_for_dopri5_and_fused_otherwise():
    assert not LiquidLayer(3, 4, solver="dopri5").fused()
    assert LiquidLayer(3, 4, solver="rk4").fused()
    assert not LiquidLayer(3, 4, solver="rk4", impl="reference").fused()


def test_memory_grows_linearly_in_steps_not_with_hidden_squared():
    """Bytes kept for backward: O(T·B·H) — doubling T doubles them; no (B, H, H) temporaries."""

    def saved_bytes(steps, hidden):
        total, seen = 0, set()

        def pack(t):
            nonlocal total
            st = t.untyped_storage()
            if st.data_ptr() not in seen:
                seen.add(st.data_ptr())
                total += st.nbytes()
            return t

        stack = LiquidStack(hidden, hidden, 2, solver="rk4", unfolds=2)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            stack(torch.randn(8, steps, hidden))[0].sum()
        weights = sum(p.numel() * p.element_size() for p in stack.parameters())
        return total - weights

    a, b = saved_bytes(16, 64), saved_bytes(32, 64)
    assert 1.8 < b / a < 2.2
    c = saved_bytes(16, 128)  # 2x hidden: ~2x activations (O(H)), not 4x (O(H^2))
    assert c / a < 2.3
