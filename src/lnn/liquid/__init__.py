"""The liquid ODE core: cell, solvers, sequence layers. Pure torch (no Lightning, Hydra or I/O)."""

from lnn.liquid.cell import LiquidCell, check_liquid_args
from lnn.liquid.layer import LiquidLayer, LiquidStack
from lnn.liquid.solvers import SOLVER_NAMES, SOLVERS, dopri5

__all__ = ["LiquidCell", "LiquidLayer", "LiquidStack", "SOLVERS", "SOLVER_NAMES", "check_liquid_args", "dopri5"]
