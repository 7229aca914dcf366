"""Parity figures: how far an exported model (or a substituted solver) is from the PyTorch step.

Figures are max absolute differences over every step of every stream, on the action logits, the click
point and τ of every layer, plus the share of steps where both pick the same action and the share where
both click the same place. Bounds apply to the differences over each output's scale, max(1, max
|reference|): τ lives in [τ_min, τ_max] (up to 100 for the default Lite) and logits grow with training, so one
absolute bound would ask ten times more of τ than of the click point. `check` turns a figure out of
bounds into a ParityError (a DataError: the entry point prints one line, exit 2).

The click point is the peak of a click map (plus a sub-cell refinement around it), so it is judged by
where it lands, as a user sees it. A step clicks the same place when the two points are

* within half a map cell of each other (the same spot), or
* both inside the step's target box, when the episode has one (the same target), or
* a tie under PyTorch's click map: the cell the other's peak was in has at least `tie_ratio` of the
  probability of the map's peak (a flat, untrained map, or two near-equal candidates: which one wins
  is rounding, not an error). Without sub-cell offsets that is the cell under the other's point; with
  them the point can lie up to a cell away from its peak, so it is the cell whose PyTorch point (its
  centre plus PyTorch's offset there) lies within half a cell of the other's point.

The bound on coords then applies to every step but those where the peak moved to another cell of the
same target or to an equally likely one, which no |Δ| bound on the point judges fairly.

The optional heads' outputs, where the model has them: a drag's release point is judged as the click point
is (its own map), the key and text logits are bounded as the action logits are (max |Δ| over their scale),
and the typed text must agree as often as the actions must (`text_agreement`: the share of steps where
every text slot makes the same choice, or one PyTorch's scores call a tie, as for clicks).

τ has its own bound (`tau_atol`), because reduced precision moves it more than anything the policy does:
a trained model's τ is a sigmoid of the carried state, and a neuron whose sigmoid sits on its slope turns
fp16's rounding of the state (~2e-2 after 16 steps) into τ changes of 1–5% of τ_max while the actions,
clicks and logits stay the same. So fp16 is judged, as int8 is, by what the policy does (the same action
and click on nearly every step) plus its logits' and point's |Δ|, and its τ is reported; fp32 bounds τ
as tightly as everything else, which is what catches a wrong graph.
"""

from __future__ import annotations

import numpy as np

from lnn.errors import DataError
from lnn.export.episodes import Trace

KEYS = ("action_logits", "coords", "tau")
HEAD_KEYS = ("release", "key_logits", "text_logits")  # bounded as KEYS, where both traces have them
TIE_RATIO = 0.5


class ParityError(DataError):
    """An exported model does not reproduce the PyTorch model within the tolerance."""


def target_boxes(streams) -> np.ndarray:
    """(T, B, 4) the oracle's target box of each step of each stream (x0, y0, x1, y1); NaN where none."""
    nan = [np.nan] * 4
    return np.array([[t["box"] or nan for t in s.truth] for s in streams], np.float64).transpose(1, 0, 2)


def same_click(ref: Trace, other: Trace, boxes: np.ndarray | None = None,
               tie_ratio: float = TIE_RATIO) -> dict:  # fmt: skip
    """(T, B) bool per rule (see the module docstring): `spot`, `target`, `tie`, and `same`, any of them."""
    side = round(ref.click_logits.shape[-1] ** 0.5)
    rows, columns = ref.map_hw or (side, side)  # the click map's cells over the screen
    cells = np.array([columns, rows])  # per axis (x, y)
    spot = (np.abs(ref.coords - other.coords) <= 0.5 / cells).all(-1)
    target = np.zeros_like(spot)
    if boxes is not None:
        def inside(xy):
            return ((boxes[..., :2] <= xy) & (xy <= boxes[..., 2:])).all(-1)  # NaN boxes: False

        target = inside(ref.coords) & inside(other.coords)
    logits = ref.click_logits - ref.click_logits.max(-1, keepdims=True)
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    tie = p_of_other_peak(p, other.coords, cells, ref.heads.get("click_points")) >= tie_ratio * p.max(-1)
    return {"spot": spot, "target": target, "tie": tie, "same": spot | target | tie}


def p_of_other_peak(p: np.ndarray, coords: np.ndarray, cells: np.ndarray, points: np.ndarray | None) -> np.ndarray:
    """(T, B) PyTorch's probability `p` (T, B, cells) of the cell the other engine's peak was in, from its point
    `coords` (T, B, 2). Without sub-cell offsets that is the cell under the point. With them (`points`, PyTorch's
    point per peak cell, (T, B, cells, 2)) the point can lie in a neighbouring cell, so the peak is the cell whose
    point lies nearest; farther than half a cell from every one, no cell gives it (probability 0)."""
    if points is None:
        column, row = np.clip((coords * cells).astype(int), 0, cells - 1).transpose(2, 0, 1)
        return np.take_along_axis(p, (row * cells[0] + column)[..., None], -1)[..., 0]
    distance = (np.abs(points - coords[..., None, :]) * cells).max(-1)  # (T, B, cells), in cells
    nearest = distance.argmin(-1)[..., None]
    return np.where(np.take_along_axis(distance, nearest, -1)[..., 0] <= 0.5,
                    np.take_along_axis(p, nearest, -1)[..., 0], 0.0)  # fmt: skip


def compare(ref: Trace, other: Trace, boxes: np.ndarray | None = None, tie_ratio: float = TIE_RATIO) -> dict:
    """Max |Δ| per output (τ: over all layers; state: over all layers), the action agreement and, where
    `ref` has its click map, the click agreement (the coords bound then leaves out the same-target and
    tie steps where the point moved more than half a cell)."""
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
    for name in HEAD_KEYS:
        if name in ref.heads and name in other.heads:
            diff[name] = float(np.abs(ref.heads[name] - other.heads[name]).max())
            scale[name] = float(np.abs(ref.heads[name]).max(initial=0.0))
    relative = {k: diff[k] / max(1.0, scale[k]) for k in scale}
    same = ref.action_logits.argmax(-1) == other.action_logits.argmax(-1)
    figure = {"max_abs_diff": diff, "max_rel_diff": relative, "action_agreement": float(same.mean()),
              "steps_compared": int(same.size)}  # fmt: skip
    if "release_logits" in ref.heads and "release" in other.heads:  # judged by where it lands, as the click is
        drops = [Trace(t.action_logits, t.heads["release"], [], [], t.heads.get("release_logits"), t.map_hw,
                       {"click_points": t.heads["release_points"]} if "release_points" in t.heads else {})
                 for t in (ref, other)]  # fmt: skip
        moved = same_click(*drops, None, tie_ratio)
        bounded = moved["spot"] | ~moved["same"]
        judged = float(np.abs(drops[0].coords - drops[1].coords)[bounded].max(initial=0.0))
        relative["release"] = judged / max(1.0, scale["release"])
        figure["release_agreement"] = float(moved["same"].mean())
    if "text_logits" in ref.heads and "text_logits" in other.heads:
        scores = ref.heads["text_logits"] - ref.heads["text_logits"].max(-1, keepdims=True)  # (T, B, slots, choices)
        chosen = np.take_along_axis(scores, other.heads["text_logits"].argmax(-1)[..., None], -1)[..., 0]
        tie = np.exp(chosen) >= tie_ratio  # the other's choice has tie_ratio of the peak's probability (1 when the same)
        figure["text_agreement"] = float(tie.all(-1).mean())
    if ref.click_logits is not None:
        clicks = same_click(ref, other, boxes, tie_ratio)
        bounded = clicks["spot"] | ~clicks["same"]
        judged = float(np.abs(ref.coords - other.coords)[bounded].max(initial=0.0))
        relative["coords"] = judged / max(1.0, scale["coords"])
        figure["click_agreement"] = float(clicks["same"].mean())
        # shares of steps, each counted under the first rule it meets
        spot, target = clicks["spot"], clicks["target"] & ~clicks["spot"]
        figure["click"] = {"same_spot": float(spot.mean()), "same_target": float(target.mean()),
                           "tie": float((clicks["same"] & ~spot & ~target).mean()), "tie_ratio": tie_ratio,
                           "max_abs_diff_coords_bounded": judged}  # fmt: skip
    return figure


def check(name: str, figure: dict, atol: float | None = None, min_agreement: float | None = None,
          min_click_agreement: float | None = None, tau_atol: float | None = None, tried: str = "") -> dict:  # fmt: skip
    # atol bounds max |Δ| / max(1, max |reference|) per output but τ, tau_atol τ's (see the module docstring)
    """Record the bounds and the verdict in `figure`; raise ParityError when a bound is not met (`tried`: what
    was done to pass, named in the error)."""
    if atol is not None:
        figure["tolerance"] = atol
    if tau_atol is not None:
        figure["tau_tolerance"] = tau_atol
    bounds = {k: tau_atol if k == "tau" else atol for k in figure["max_rel_diff"]}
    problems = [f"max |Δ| / scale on {k} = {figure['max_rel_diff'][k]:.3g} > {bound:g}"
                for k, bound in bounds.items() if bound is not None and not figure["max_rel_diff"][k] <= bound]  # fmt: skip  (NaN fails too)
    if min_agreement is not None:
        figure["min_action_agreement"] = min_agreement
        for what, share in (("action", figure["action_agreement"]), ("text", figure.get("text_agreement", 1.0))):
            if not share >= min_agreement:
                problems.append(f"same {what} on {100 * share:.1f}% of steps < {100 * min_agreement:g}%")
    if min_click_agreement is not None and "click_agreement" in figure:
        figure["min_click_agreement"] = min_click_agreement
        if not figure["click_agreement"] >= min_click_agreement:
            problems.append(f"same click on {100 * figure['click_agreement']:.1f}% of steps < "
                            f"{100 * min_click_agreement:g}%")  # fmt: skip
    figure["passed"] = not problems
    if problems:
        raise ParityError(f"parity failed for {name}{tried}: {'; '.join(problems)} (over {figure['steps_compared']} "
                          f"steps); nothing was written (its bounds: parity.{name}_* in conf/export.yaml)")  # fmt: skip
    return figure


def bound_used(figure: dict, atol: float | None = None, min_agreement: float | None = None,
               min_click_agreement: float | None = None, tau_atol: float | None = None) -> tuple[float, float]:
    """How near `figure` comes to failing the bounds `check` takes: (the largest share of a bound used, 1 at the
    bound; the sum of the bounded outputs' relative |Δ|, which orders figures that use none)."""
    used, spread = 0.0, 0.0
    for key, diff in figure["max_rel_diff"].items():
        diff = diff if diff == diff else np.inf  # NaN (an overflow) is as far from the bound as can be
        bound = tau_atol if key == "tau" else atol
        if key != "tau" or tau_atol is not None:
            spread += diff
        if bound:
            used = max(used, diff / bound)
    for floor, share in ((min_agreement, figure["action_agreement"]), (min_agreement, figure.get("text_agreement", 1.0)),
                         (min_click_agreement, figure.get("click_agreement", 1.0))):  # fmt: skip
        if floor is not None and floor < 1:
            used = max(used, (1 - share) / (1 - floor))
    return used, spread


def format_figure(name: str, figure: dict) -> str:
    d = figure["max_abs_diff"]
    return (f"{name}: max |Δ| logits {d['action_logits']:.2g}, coords {d['coords']:.2g}, τ {d['tau']:.2g}; "
            f"same action {100 * figure['action_agreement']:.1f}%"
            + (f", same click {100 * figure['click_agreement']:.1f}%" if "click_agreement" in figure
               else ""))  # fmt: skip
