"""Parity figures: how far an exported model (or a substituted solver) is from the PyTorch step.

Figures are max absolute differences over every step of every stream, on the action logits, the click
point and τ of every layer, plus the share of steps where both pick the same action. Bounds apply to the
differences over each output's scale, max(1, max |reference|): τ lives in [τ_min, τ_max] (up to 10 by
default) and logits grow with training, so one absolute bound would ask ten times more of τ than of the
click point. `check` turns a figure out of bounds into a ParityError (a DataError: the entry point prints
one line, exit 2).
"""

from __future__ import annotations

import numpy as np

from lnn.errors import DataError
from lnn.export.episodes import Trace

KEYS = ("action_logits", "coords", "tau")


class ParityError(DataError):
    """An exported model does not reproduce the PyTorch model within the tolerance."""


def compare(ref: Trace, other: Trace) -> dict:
    """Max |Δ| per output (τ: over all layers; state: over all layers) and the action agreement."""
    diff = {
        "action_logits": float(np.abs(ref.action_logits - other.action_logits).max()),
        "coords": float(np.abs(ref.coords - other.coords).max()),
        "tau": max((float(np.abs(a - b).max()) for a, b in zip(ref.tau, other.tau)), default=0.0),
        "state": max((float(np.abs(a - b).max()) for a, b in zip(ref.state, other.state)), default=0.0),
    }
    scale = {
        "action_logits": float(np.abs(ref.action_logits).max(initial=0.0)),
        "coords": float(np.abs(ref.coords).max(initial=0.0)),
        "tau": max((float(np.abs(a).max(initial=0.0)) for a in ref.tau), default=0.0),
    }
    relative = {k: diff[k] / max(1.0, scale[k]) for k in KEYS}
    same = ref.action_logits.argmax(-1) == other.action_logits.argmax(-1)
    return {"max_abs_diff": diff, "max_rel_diff": relative, "action_agreement": float(same.mean()),
            "steps_compared": int(same.size)}  # fmt: skip


def check(name: str, figure: dict, atol: float | None = None, min_agreement: float | None = None) -> dict:
    # atol bounds max |Δ| / max(1, max |reference|) per output (see the module docstring)
    """Record the bounds and the verdict in `figure`; raise ParityError when a bound is not met."""
    problems = []
    if atol is not None:
        figure["tolerance"] = atol
        problems += [f"max |Δ| / scale on {k} = {figure['max_rel_diff'][k]:.3g} > {atol:g}" for k in KEYS
                     if not figure["max_rel_diff"][k] <= atol]  # fmt: skip  (NaN fails too)
    if min_agreement is not None:
        figure["min_action_agreement"] = min_agreement
        if not figure["action_agreement"] >= min_agreement:
            problems.append(f"same action on {100 * figure['action_agreement']:.1f}% of steps < "
                            f"{100 * min_agreement:g}%")  # fmt: skip
    figure["passed"] = not problems
    if problems:
        raise ParityError(f"parity failed for {name}: {'; '.join(problems)} (over {figure['steps_compared']} "
                          "steps); nothing was written")  # fmt: skip
    return figure


def format_figure(name: str, figure: dict) -> str:
    d = figure["max_abs_diff"]
    return (f"{name}: max |Δ| logits {d['action_logits']:.2g}, coords {d['coords']:.2g}, τ {d['tau']:.2g}; "
            f"same action {100 * figure['action_agreement']:.1f}%")  # fmt: skip
