"""The parity judgement of the click: by where it lands, not by |Δ| on the point (lnn.export.parity)."""

import numpy as np
import pytest

from lnn.export.episodes import Trace
from lnn.export.parity import ParityError, bound_used, check, compare, same_click

SIDE = 8  # an 8 × 8 click map, as Lite's at image_size 64


def cell_centre(column: int, row: int) -> list[float]:
    return [(column + 0.5) / SIDE, (row + 0.5) / SIDE]


def trace(coords, click_logits=None) -> Trace:
    """One step of one stream; logits and τ equal everywhere, so only the click differs."""
    coords = np.array(coords, np.float32).reshape(1, 1, 2)
    maps = None if click_logits is None else np.asarray(click_logits, np.float32).reshape(1, 1, SIDE * SIDE)
    return Trace(np.zeros((1, 1, 6), np.float32), coords, [np.ones((1, 1, 4), np.float32)], [], maps)


def peaked_at(column: int, row: int, height: float = 8.0) -> np.ndarray:
    logits = np.zeros(SIDE * SIDE)
    logits[row * SIDE + column] = height
    return logits


def test_a_flat_map_flipping_its_peak_is_rounding_not_an_error():
    flat = np.random.default_rng(0).normal(0, 1e-3, SIDE * SIDE)  # barely trained: every cell as likely
    figure = compare(trace(cell_centre(1, 1), flat), trace(cell_centre(6, 5)))
    assert figure["max_abs_diff"]["coords"] > 0.5  # the point moved across the screen ...
    assert figure["click_agreement"] == 1.0 and figure["click"]["tie"] == 1.0  # ... to a place as likely
    check("fp16", figure, atol=1e-2)  # and nothing else differs: it passes


def test_a_click_on_another_place_fails_when_the_map_is_sure():
    figure = compare(trace(cell_centre(1, 1), peaked_at(1, 1)), trace(cell_centre(6, 5)))
    assert figure["click_agreement"] == 0.0
    with pytest.raises(ParityError, match="same click on 0.0% of steps < 95%"):
        check("int8", figure, min_agreement=0.95, min_click_agreement=0.95)  # the same action is not enough
    with pytest.raises(ParityError, match="on coords"):  # for fp16 the point's |Δ| is bounded there
        check("fp16", compare(trace(cell_centre(1, 1), peaked_at(1, 1)), trace(cell_centre(6, 5))), atol=1e-2)


def test_a_near_tie_between_two_candidates_counts_as_the_same_click():
    two = peaked_at(1, 1) + peaked_at(6, 5, height=8.0 - np.log(1.5))  # PyTorch: 1.5 to 1 for the first
    assert compare(trace(cell_centre(1, 1), two), trace(cell_centre(6, 5)))["click_agreement"] == 1.0
    assert compare(trace(cell_centre(1, 1), two), trace(cell_centre(6, 5)), tie_ratio=0.8)["click_agreement"] == 0.0


def test_the_same_target_box_is_the_same_place():
    sure = peaked_at(1, 1)
    ref, other = trace([0.10, 0.10], sure), trace([0.30, 0.12])  # two cells apart, on one wide button
    box = np.array([0.05, 0.05, 0.35, 0.2]).reshape(1, 1, 4)
    assert compare(ref, other)["click_agreement"] == 0.0
    figure = compare(ref, other, boxes=box)
    assert figure["click_agreement"] == 1.0 and figure["click"]["same_target"] == 1.0
    elsewhere = np.array([0.5, 0.5, 0.9, 0.9]).reshape(1, 1, 4)  # a box neither click is in
    assert compare(ref, other, boxes=elsewhere)["click_agreement"] == 0.0
    assert compare(ref, other, boxes=np.full((1, 1, 4), np.nan))["click_agreement"] == 0.0  # no box: no target


def test_within_half_a_cell_is_the_same_spot_and_the_point_keeps_its_bound_there():
    sure = peaked_at(3, 3)
    ref = trace(cell_centre(3, 3), sure)
    shifted = trace(np.array(cell_centre(3, 3)) + [0.4 / SIDE, -0.3 / SIDE])
    figure = compare(ref, shifted)
    assert figure["click"]["same_spot"] == 1.0 and figure["click_agreement"] == 1.0
    with pytest.raises(ParityError, match="on coords"):  # a sub-cell error is still an error for fp32
        check("fp32", figure, atol=1e-4)
    assert compare(ref, trace(np.array(cell_centre(3, 3)) + [0.6 / SIDE, 0]))["click_agreement"] == 0.0


def test_without_a_click_map_the_point_is_judged_by_its_difference():
    figure = compare(trace(cell_centre(1, 1)), trace(cell_centre(6, 5)))  # e.g. a substituted solver's check
    assert "click_agreement" not in figure and figure["max_rel_diff"]["coords"] > 0.5
    with pytest.raises(ParityError, match="on coords"):
        check("fp16", figure, atol=1e-2)


@pytest.mark.parametrize("ratio", [0.0, 1.5])
def test_a_tie_ratio_outside_0_1_stops_before_any_work(tiny_run, tmp_path, ratio):
    from lnn.errors import ConfigError
    from lnn.export.pipeline import ExportOptions, export
    from lnn.export.source import resolve_source

    with pytest.raises(ConfigError, match="click_tie_ratio"):
        export(resolve_source(run=str(tiny_run)), ExportOptions(out=str(tmp_path / "e"), click_tie_ratio=ratio, web=False))
    assert not (tmp_path / "e").exists()


def test_a_map_of_another_aspect_is_judged_by_its_own_cells():
    rows, columns = 2, 4  # cells 1/4 wide and 1/2 high
    logits = np.full(rows * columns, -20.0)
    logits[0 * columns + 3], logits[1 * columns + 0] = 8.0, 7.9  # (column 3, row 0) and, nearly as likely, (0, 1)
    ref = Trace(np.zeros((1, 1, 6), np.float32), np.array([[[0.875, 0.25]]], np.float32), [], [],
                logits.reshape(1, 1, -1).astype(np.float32), (rows, columns))  # fmt: skip

    def clicks(x, y):
        return same_click(ref, trace([x, y]))

    assert clicks(0.875, 0.45)["spot"].all()  # 0.2 down: within half a cell's height
    assert not clicks(0.675, 0.25)["same"].any()  # 0.2 left: more than half a cell's width, a cell of p ≈ 0
    assert clicks(0.125, 0.75)["tie"].all() and not clicks(0.125, 0.25)["tie"].any()  # the likely cell, not its row 0


def test_tau_has_its_own_bound_and_fp16_is_judged_by_what_the_policy_does():
    # a trained model's fp16 step: τ 5% of its scale off (a neuron on its sigmoid's slope), nothing else moved
    ref, drifted = trace(cell_centre(3, 3), peaked_at(3, 3)), trace(cell_centre(3, 3))
    ref.tau[0][:] = 100.0
    drifted.tau[0][:] = 95.0
    figure = compare(ref, drifted)
    assert figure["max_rel_diff"]["tau"] == pytest.approx(0.05)
    with pytest.raises(ParityError, match="on tau"):  # fp32 bounds τ as tightly as the rest: a wrong graph shows
        check("fp32", compare(ref, drifted), atol=1e-4, tau_atol=1e-4)
    with pytest.raises(ParityError, match="on tau"):
        check("fp16", compare(ref, drifted), atol=1e-2, tau_atol=1e-2)
    passed = check("fp16", figure, atol=1e-2, min_agreement=0.99, min_click_agreement=0.99)  # τ reported only
    assert passed["passed"] and "tau_tolerance" not in passed and passed["min_action_agreement"] == 0.99


def test_fp16_fails_when_it_picks_another_action_however_small_the_logits_gap():
    ref, other = trace(cell_centre(3, 3), peaked_at(3, 3)), trace(cell_centre(3, 3))
    ref.action_logits[..., 0] = 1e-3  # a near tie that rounding flips: |Δ| is tiny, the action differs
    other.action_logits[..., 1] = 1e-3
    figure = compare(ref, other)
    check("fp16", compare(ref, other), atol=1e-2)  # the |Δ| bound alone lets it through ...
    with pytest.raises(ParityError, match="same action on 0.0% of steps < 99%"):  # ... the agreement floor does not
        check("fp16", figure, atol=1e-2, min_agreement=0.99, min_click_agreement=0.99)


@pytest.mark.parametrize("key, value", [("fp16_min_agreement", 1.5), ("int8_min_click_agreement", -0.1)])
def test_an_agreement_floor_outside_0_1_stops_before_any_work(tiny_run, tmp_path, key, value):
    from lnn.errors import ConfigError
    from lnn.export.pipeline import ExportOptions, export
    from lnn.export.source import resolve_source

    with pytest.raises(ConfigError) as info:
        export(resolve_source(run=str(tiny_run)), ExportOptions(out=str(tmp_path / "e"), web=False, **{key: value}))
    assert info.value.key == f"parity.{key}" and not (tmp_path / "e").exists()


def test_with_sub_cell_offsets_a_tie_is_judged_at_the_cell_the_point_came_from():
    # a flat top: cells (2, 6) and (5, 6) nearly as likely; (5, 6)'s offset moves its point into (4, 6), a cell of p ≈ 0
    logits = np.full(SIDE * SIDE, -20.0)
    logits[6 * SIDE + 2], logits[6 * SIDE + 5] = 1.0, 0.9
    points = np.tile(np.array([cell_centre(c % SIDE, c // SIDE) for c in range(SIDE * SIDE)]), (1, 1, 1, 1))
    points[0, 0, 6 * SIDE + 5] = cell_centre(5, 6)[0] - 0.8 / SIDE, cell_centre(5, 6)[1]
    ref = Trace(np.zeros((1, 1, 6), np.float32), np.array([[cell_centre(2, 6)]], np.float32), [], [],
                logits.reshape(1, 1, -1).astype(np.float32), None, {"click_points": points})  # fmt: skip
    moved = trace(points[0, 0, 6 * SIDE + 5] + [0.02 / SIDE, 0])  # the other engine's peak flipped to (5, 6)
    assert same_click(ref, moved)["tie"].all()
    without_points = Trace(ref.action_logits, ref.coords, [], [], ref.click_logits)
    assert not same_click(without_points, moved)["tie"].any()  # judged at the cell under the point, (4, 6): p ≈ 0
    assert not same_click(ref, trace(cell_centre(4, 6)))["tie"].any()  # no likely cell's point is there
    assert not same_click(ref, trace(cell_centre(0, 0)))["same"].any()


def test_bound_used_says_how_near_a_figure_comes_to_failing():
    """The parity fallback ranks weights by it: the largest share of a bound used, then the summed |Δ|."""
    def figure(logits=0.0, coords=0.0, action=1.0, click=1.0):
        return {"max_rel_diff": {"action_logits": logits, "coords": coords, "tau": 5.0}, "action_agreement": action,
                "click_agreement": click}  # fmt: skip

    fp16 = {"atol": 1e-2, "min_agreement": 0.99, "min_click_agreement": 0.99}
    assert bound_used(figure(coords=5e-3), **fp16) == pytest.approx((0.5, 5e-3))  # τ unbounded: left out
    assert bound_used(figure(click=0.98), **fp16)[0] == pytest.approx(2.0)  # twice the 1% of steps allowed
    assert bound_used(figure(logits=float("nan")), **fp16)[0] == np.inf  # an overflow ranks first, not last
    int8 = {"min_agreement": 0.95, "min_click_agreement": 0.95}  # no |Δ| bound: the sum orders equal agreements
    assert bound_used(figure(coords=0.3), **int8) > bound_used(figure(coords=0.1), **int8)
