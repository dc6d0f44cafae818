"""shapecheck: find the shape bug and the wrong gradient in a neural network written by hand in numpy.

Run a script traced with `python -m shapecheck my_net.py`, trace one function
with `@shapecheck.trace`, check the code under test with `pytest --shapecheck`,
or check hand-written gradients with `shapecheck.gradcheck(loss, grads, params)`.
In IPython or Jupyter, `%load_ext shapecheck` checks every later cell.
"""

from ._errors import ShapeError, ShapeWarning

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
