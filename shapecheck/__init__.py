"""shapecheck: find the shape bug and the wrong gradient in a neural network written by hand in numpy.

Run a script traced with `python -m shapecheck my_net.py`, trace one function
with `@shapecheck.trace`, or check hand-written gradients with
`shapecheck.gradcheck(loss, grads, params)`.  In IPython or Jupyter,
`%load_ext shapecheck` checks every later cell.
"""

from ._errors import ShapeError, ShapeWarning
from ._gradcheck import assert_gradients_close, gradcheck
from ._gradreport import GradReport
from ._trace import trace

__version__ = "0.1.0"


def load_ipython_extension(shell):
    """`%load_ext shapecheck`: check every later cell (IPython is imported only now)."""
    from ._notebook import load_ipython_extension

    load_ipython_extension(shell)


def unload_ipython_extension(shell):
    """`%unload_ext shapecheck`: remove every hook the extension added."""
    from ._notebook import unload_ipython_extension

    unload_ipython_extension(shell)


__all__ = ["GradReport", "ShapeError", "ShapeWarning", "__version__", "assert_gradients_close", "gradcheck",
           "trace"]
