"""shapecheck: find the shape bug and the wrong gradient in a neural network written by hand in numpy.

Run a script traced with `python -m shapecheck my_net.py`, trace one function
with `@shapecheck.trace`, check the code under test with `pytest --shapecheck`,
or check hand-written gradients with `shapecheck.gradcheck(loss, grads, params)`.
"""

from ._errors import ShapeError, ShapeWarning

__version__ = "0.1.0"

__all__ = ["GradReport", "ShapeError", "ShapeWarning", "__version__", "assert_gradients_close", "gradcheck",
           "trace"]

# The engine (and numpy with it) is imported on first use of these names, not by `import shapecheck`:
# pytest imports the plugin module, shapecheck._pytest_plugin, on every run, with or without --shapecheck.
_LAZY = {"GradReport": "_gradreport", "assert_gradients_close": "_gradcheck", "gradcheck": "_gradcheck",
         "trace": "_trace"}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'shapecheck' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
