"""The fast path of a liquid layer: a whole sequence as one autograd node with a hand-written backward.

Autograd records every small op of every ODE stage of every step; for a recurrent cell that
bookkeeping is a large part of the cost. Here the forward runs with no graph, and the backward walks
the sequence in reverse and applies the chain rule by hand:

    field  z = u + y·Wᵀ,  g = tanh(z_h),  s = σ(z_τ),  τ = τ_min + (τ_max − τ_min)·s,  f = (g − y)/τ

    f̄ -> ḡ = f̄/τ,  ȳ = −f̄/τ + z̄·W,  τ̄ = −Σ f̄·(g − y)/τ²,  z̄_h = ḡ·(1 − g²),  z̄_τ = τ̄·(τ_max − τ_min)·s(1 − s)

Explicit solvers are the Butcher tableaus of solvers.SOLVERS (one forward and one backward for all of
them); semi-implicit has its own step. The forward keeps every stage's g and s (still O(T·B·H)), so
the backward redoes no matmul; the gradient of W is one matmul over all steps and stages at the end.
A dt tensor that requires grad (irregular sampling learned through dt) gets its gradient too, for a
few elementwise ops per stage that are skipped otherwise.
Results equal the reference loop (`LiquidLayer(impl="reference")`) to float rounding; tests check it.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lnn.liquid.solvers import SOLVERS, stage_input

FUSED_SOLVERS = tuple(name for name, s in SOLVERS.items() if s.fused)


class Field:
    """The relaxation field of one cell with its weight; evaluations and their vector-Jacobian products."""

    def __init__(self, weight: Tensor, hidden: int, tau_min: float, tau_max: float):
        self.w, self.wt, self.hidden = weight, weight.t(), hidden
        self.tau_min, self.tau_span = tau_min, tau_max - tau_min

    def __call__(self, u: Tensor, y: Tensor):
        """-> (k = dh/dt, g, s, rate) at y."""
        z = torch.addmm(u, y, self.wt)
        g = torch.tanh(z[:, : self.hidden])
        s = torch.sigmoid(z[:, self.hidden :])
        rate = torch.reciprocal(s * self.tau_span + self.tau_min)
        return (g - y) * rate, g, s, rate

    def tau(self, s: Tensor) -> Tensor:
        return s * self.tau_span + self.tau_min

    def vjp(self, y, g, s, rate, k_bar, rate_bar_extra=None, tau_bar=None):
        """Given f̄ (= k_bar) at y: returns (ȳ without the z̄·W term, z̄). `rate_bar_extra` adds to r̄."""
        g_bar = k_bar * rate
        rate_bar = k_bar * (g - y)
        if rate.shape[-1] == 1:  # one τ per sample: its rate is shared by every neuron
            rate_bar = rate_bar.sum(-1, keepdim=True)
        if rate_bar_extra is not None:
            rate_bar = rate_bar + rate_bar_extra
        tau_grad = -rate_bar * rate * rate
        if tau_bar is not None:
            tau_grad = tau_grad + tau_bar
        z_bar = torch.cat([g_bar * (1 - g * g), tau_grad * self.tau_span * s * (1 - s)], -1)
        return -g_bar, z_bar


def explicit_step(field: Field, solver: str, u: Tensor, h: Tensor, dt, g_out: Tensor, s_out: Tensor):
    """One sub-step; writes each stage's g and s into g_out[i], s_out[i] for the backward."""
    tableau = SOLVERS[solver].tableau
    a, b = tableau.a, tableau.weights()
    ks, step = [], None
    for i in range(len(b)):
        y = stage_input(h, a[i], ks, dt)
        k, g, s, _ = field(u, y)
        g_out[i], s_out[i] = g, s
        ks.append(k)
    for b_i, k in zip(b, ks):
        if b_i:
            step = b_i * k if step is None else torch.add(step, k, alpha=b_i)
    return h + dt * step


def explicit_step_vjp(field: Field, solver: str, h, dt, gs, ss, h_bar, tau_bar, want_dt: bool):
    """Backward of one sub-step from its start state and stored stage values (no matmul recomputed).

    Returns (h̄ at the start, z̄ per stage, y per stage, d̄t or None)."""
    tableau = SOLVERS[solver].tableau
    a, b = tableau.a, tableau.weights()
    ks, stages = [], []
    for i in range(len(b)):  # y_i and k_i are elementwise given h, g_i and s_i
        y = stage_input(h, a[i], ks, dt)
        rate = torch.reciprocal(field.tau(ss[i]))
        ks.append((gs[i] - y) * rate)
        stages.append((y, rate))
    k_bars = [dt * b_i * h_bar if b_i else None for b_i in b]
    # dt's own terms in h' = h + dt·Σ b_i·k_i and y_i = h + dt·Σ_j a_ij·k_j, summed over neurons at the end
    dt_terms = h_bar * sum(b_i * k for b_i, k in zip(b, ks) if b_i) if want_dt else None
    h_out = h_bar
    z_bars, ys = [], []
    for i in reversed(range(len(b))):
        y, rate = stages[i]
        if k_bars[i] is None:  # a stage that only feeds later stages that had no gradient
            k_bars[i] = torch.zeros_like(h)
        y_bar, z_bar = field.vjp(y, gs[i], ss[i], rate, k_bars[i], tau_bar=tau_bar if i == 0 else None)
        y_bar = torch.addmm(y_bar, z_bar, field.w)
        h_out = h_out + y_bar
        for j, a_ij in enumerate(a[i]):
            if a_ij:
                contribution = (dt * a_ij) * y_bar
                k_bars[j] = contribution if k_bars[j] is None else k_bars[j] + contribution
                if want_dt:
                    dt_terms = dt_terms + a_ij * y_bar * ks[j]
        z_bars.append(z_bar)
        ys.append(y)
    return h_out, z_bars, ys, dt_terms.sum(-1, keepdim=True) if want_dt else None


def semi_implicit_step(field: Field, u, h, dt, g_out: Tensor, s_out: Tensor):
    _, g, s, rate = field(u, h)
    g_out[0], s_out[0] = g, s
    c = dt * rate
    return (h + c * g) / (1 + c)


def semi_implicit_step_vjp(field: Field, h, dt, gs, ss, h_bar, tau_bar, want_dt: bool):
    g, s = gs[0], ss[0]
    rate = torch.reciprocal(field.tau(s))
    c = dt * rate
    inv = 1 / (1 + c)
    h_next = (h + c * g) * inv
    c_bar = h_bar * (g - h_next) * inv
    if c.shape[-1] == 1:
        c_bar = c_bar.sum(-1, keepdim=True)
    g_bar = h_bar * c * inv  # h' = (h + c·g)/(1 + c)
    rate_bar = c_bar * dt
    tau_grad = -rate_bar * rate * rate
    if tau_bar is not None:
        tau_grad = tau_grad + tau_bar
    z_bar = torch.cat([g_bar * (1 - g * g), tau_grad * field.tau_span * s * (1 - s)], -1)
    dt_bar = (c_bar * rate).sum(-1, keepdim=True) if want_dt else None  # c = dt·rate
    return torch.addmm(h_bar * inv, z_bar, field.w), [z_bar], [h], dt_bar


class FusedLiquidSequence(torch.autograd.Function):
    """(u, W, h0) -> (outputs (B,T,H), τ (B,T,τ)); dt a float or a (B,T,1) tensor."""

    @staticmethod
    def forward(ctx, u, weight, h0, dt, solver, unfolds, tau_min, tau_max, bptt_steps):
        ctx.set_materialize_grads(False)  # an unused output (often τ) gets None, not zeros to add
        batch, steps, _ = u.shape
        hidden = h0.shape[-1]
        field = Field(weight, hidden, tau_min, tau_max)
        tableau = SOLVERS[solver].tableau
        n_stages = len(tableau.b) if tableau else 1
        # kept for the backward: the state at each sub-step's start and every stage's g and s,
        # O(T·B·H) — so the backward recomputes no matmul of the forward
        starts = h0.new_empty(steps * unfolds, batch, hidden)
        gs = h0.new_empty(steps * unfolds, n_stages, batch, hidden)
        ss = h0.new_empty(steps * unfolds, n_stages, batch, u.shape[-1] - hidden)
        out = h0.new_empty(batch, steps, hidden)
        h = h0
        for t in range(steps):
            u_t = u[:, t]
            sub = (dt[:, t] if torch.is_tensor(dt) else dt) / unfolds
            for m in range(unfolds):
                n = t * unfolds + m
                starts[n] = h
                if solver == "semi_implicit":
                    h = semi_implicit_step(field, u_t, h, sub, gs[n], ss[n])
                else:
                    h = explicit_step(field, solver, u_t, h, sub, gs[n], ss[n])
            out[:, t] = h
        ctx.save_for_backward(u, weight, starts, gs, ss, dt if torch.is_tensor(dt) else None)
        ctx.config = (dt if not torch.is_tensor(dt) else None, solver, unfolds, tau_min, tau_max, bptt_steps)
        taus = field.tau(ss[::unfolds, 0]).transpose(0, 1)  # τ at the first evaluation of each step
        return out, taus

    @staticmethod
    def backward(ctx, out_bar, tau_bar):
        u, weight, starts, gs, ss, dt_tensor = ctx.saved_tensors
        dt_float, solver, unfolds, tau_min, tau_max, bptt_steps = ctx.config
        batch, steps, _ = u.shape
        hidden = weight.shape[1]
        field = Field(weight, hidden, tau_min, tau_max)
        n_stages = gs.shape[1]
        # z̄ and y of every stage of every step, so W̄ = Σ z̄ᵀ·y is one matmul at the end
        z_bars = u.new_empty(steps, unfolds * n_stages, batch, u.shape[-1])
        ys = u.new_empty(steps, unfolds * n_stages, batch, hidden)
        h_bar = u.new_zeros(batch, hidden)
        want_dt = ctx.needs_input_grad[3]  # only a dt tensor that requires grad costs the extra work
        dt_bar = u.new_zeros(batch, steps, 1) if want_dt else None
        for t in reversed(range(steps)):
            if out_bar is not None:
                h_bar = h_bar + out_bar[:, t]
            sub = (dt_tensor[:, t] if dt_tensor is not None else dt_float) / unfolds
            for m in reversed(range(unfolds)):
                n = t * unfolds + m
                tb = tau_bar[:, t] if (tau_bar is not None and m == 0) else None
                if solver == "semi_implicit":
                    h_bar, zb, y, sub_bar = semi_implicit_step_vjp(field, starts[n], sub, gs[n], ss[n], h_bar, tb,
                                                                   want_dt)  # fmt: skip
                else:
                    h_bar, zb, y, sub_bar = explicit_step_vjp(field, solver, starts[n], sub, gs[n], ss[n], h_bar, tb,
                                                              want_dt)  # fmt: skip
                if want_dt:  # sub = dt/unfolds
                    dt_bar[:, t] += sub_bar / unfolds
                for i, (z_i, y_i) in enumerate(zip(zb, y)):
                    z_bars[t, m * n_stages + i], ys[t, m * n_stages + i] = z_i, y_i
            if bptt_steps and t and t % bptt_steps == 0:
                h_bar = torch.zeros_like(h_bar)  # the reference detaches the state before this step
        u_bar = z_bars.sum(1).transpose(0, 1)
        w_bar = z_bars.flatten(0, 2).t() @ ys.flatten(0, 2)
        return u_bar, w_bar, h_bar, dt_bar, None, None, None, None, None


def fused_sequence(u: Tensor, weight: Tensor, h0: Tensor, dt, solver: str, unfolds: int,
                   tau_min: float, tau_max: float, bptt_steps: int | None):  # fmt: skip
    return FusedLiquidSequence.apply(u, weight, h0, dt, solver, unfolds, tau_min, tau_max, bptt_steps)
