"""shapecheck: find the shape bug and the wrong gradient in a neural network written by hand in numpy.

Run a script traced with `python -m shapecheck my_net.py`, trace one function
with `@shapecheck.trace`, or check hand-written gradients with
`shapecheck.gradcheck(loss, grads, params)`.
"""

from ._errors import ShapeError, ShapeWarning
from ._gradcheck import assert_gradients_close, gradcheck
from ._gradreport import GradReport
from ._trace import trace

__version__ = "0.1.0"

__all__ = ["GradReport", "ShapeError", "ShapeWarning", "__version__", "assert_gradients_close", "gradcheck",
           "trace"]
