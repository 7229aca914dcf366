"""The liquid ODE core: cells (liquid, CfC, LTC; LSTM and GRU to compare with), solvers, sequence
layers. Pure torch (no Lightning, Hydra or I/O)."""

from lnn.liquid.cell import LiquidCell, check_liquid_args
from lnn.liquid.cfc import CfCCell
from lnn.liquid.gated import GRUCell, LSTMCell
from lnn.liquid.layer import CELLS, LiquidLayer, LiquidStack, make_cell
from lnn.liquid.ltc import LTCCell
from lnn.liquid.solvers import SOLVER_NAMES, SOLVERS, dopri5

__all__ = ["CELLS", "CfCCell", "GRUCell", "LSTMCell", "LTCCell", "LiquidCell", "LiquidLayer", "LiquidStack", "SOLVERS",
           "SOLVER_NAMES", "check_liquid_args", "dopri5", "make_cell"]
