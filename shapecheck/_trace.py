"""`@shapecheck.trace`: record a function's operations on every call; findings become warnings.

The function's own source is rewritten the way `python -m shapecheck`
rewrites a script, compiled with the real file name and line numbers, and
given the original globals, defaults and closure cells: it computes exactly
what the original does.
"""

from __future__ import annotations

import ast
import functools
import inspect
import linecache
import types
import warnings

from . import _recorder, _rules
from ._crash import annotate
from ._errors import ShapeError, ShapeWarning
from ._report import Finding, rank
from ._rewrite import find_function, function_code, rewrite_function
from ._runner import display_path


def trace(fn=None, *, strict: bool = False):
    """Record the shapes of every array operation in `fn`, on every call.

    New findings are reported as `ShapeWarning`s (one per site and rule) pointing at the offending
    line; with `strict=True` a call that makes a warning- or error-level finding raises `ShapeError`
    once it returns.  A crash inside gets the same explanation as under `python -m shapecheck`,
    attached to the exception as a note.

    >>> import numpy as np, shapecheck
    >>> @shapecheck.trace
    ... def residual(y, y_hat):
    ...     return y - y_hat
    >>> residual(np.zeros(3), np.zeros((3, 1))).shape   # doctest: +SKIP
    ShapeWarning: SC101 `y - y_hat` at ...: y (3,) and y_hat (3, 1) broadcast to (3, 3) ...
    (3, 3)
    """
    if fn is None:
        return functools.partial(trace, strict=strict)
    if not isinstance(fn, types.FunctionType):
        raise TypeError(f"@shapecheck.trace takes a function defined with def, not {type(fn).__name__}")
    traced, why = _compile(fn)
    if traced is None:
        warnings.warn(ShapeWarning(f"shapecheck.trace: {fn.__qualname__} runs untraced: {why}"), stacklevel=2)
        return fn
    return _Traced(fn, traced, strict).wrapper()


def _compile(fn: types.FunctionType):
    """(the traced function, None), or (None, why it cannot be traced)."""
    if hasattr(fn, "__wrapped__"):
        return None, "it is wrapped by another decorator; put @shapecheck.trace directly above its def"
    code = fn.__code__
    filename = code.co_filename
    lines = linecache.getlines(filename, fn.__globals__)
    if not lines:
        return None, f"its source is not available ({filename})"
    source = "".join(lines)
    try:
        tree = ast.parse(source, filename)
    except SyntaxError:
        return None, f"the source of {filename} does not parse"
    node = find_function(tree, fn.__name__, code.co_firstlineno)
    if node is None:
        return None, f"its def was not found in {filename} (was the file edited after it was imported?)"
    try:
        rw = rewrite_function(source, tree, node, filename, display_path(filename), _recorder.next_id(),
                              fn.__qualname__, code.co_freevars)
        new_code = function_code(rw.code, fn.__name__, node.lineno)
        if new_code is None or set(new_code.co_freevars) - set(code.co_freevars):
            return None, "its closure could not be rebuilt"
    except Exception as e:  # pragma: no cover - the rewriter's failure must not break the user's import
        return None, f"shapecheck could not rewrite it ({type(e).__name__}: {e})"
    cells = dict(zip(code.co_freevars, fn.__closure__ or ()))
    closure = tuple(cells[v] for v in new_code.co_freevars) or None
    new = types.FunctionType(new_code, fn.__globals__, fn.__name__, fn.__defaults__, closure)
    new.__kwdefaults__ = fn.__kwdefaults__
    new.__qualname__ = fn.__qualname__
    new.__module__ = fn.__module__
    new.__doc__ = fn.__doc__
    new.__annotations__ = fn.__annotations__
    new.__dict__.update(fn.__dict__)
    _recorder.install()
    _recorder.register(rw, filename)
    return (new, rw.sites), None


class _Traced:
    """The state of one traced function: its sites and which findings were already reported."""

    def __init__(self, fn, traced, strict: bool):
        self.fn = fn
        self.new, sites = traced
        self.ids = range(sites[0].id, sites[-1].id + 1) if sites else range(0)
        self.strict = strict
        self.reported: set[tuple[int, str]] = set()
        self.seen = -1  # records made at our sites when we last looked, to skip the rules when nothing is new

    def wrapper(self):
        fn, new = self.fn, self.new
        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def wrapper(*args, **kwargs):
                __tracebackhide__ = True
                try:
                    result = yield from new(*args, **kwargs)
                except BaseException as e:
                    annotate(e)
                    self.report(crashed=True)
                    raise
                self.report()
                return result
        elif inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def wrapper(*args, **kwargs):
                __tracebackhide__ = True
                try:
                    result = await new(*args, **kwargs)
                except BaseException as e:
                    annotate(e)
                    self.report(crashed=True)
                    raise
                self.report()
                return result
        else:
            @functools.wraps(fn)
            def wrapper(*args, **kwargs):
                __tracebackhide__ = True
                try:
                    result = new(*args, **kwargs)
                except BaseException as e:
                    annotate(e)
                    self.report(crashed=True)
                    raise
                self.report()
                return result
        wrapper.__shapecheck_traced__ = new
        return wrapper

    def report(self, crashed: bool = False) -> None:
        """Warn about (or, strict, raise for) findings at this function's sites not reported before.

        After a crash the findings made before it are still warned about (a silent broadcast is often
        the crash's cause), but nothing may replace the user's exception: not strict mode, not a
        warnings filter that turns ShapeWarning into an error.
        """
        __tracebackhide__ = True
        if crashed:
            try:
                self._report(strict=False)
            except Exception:
                pass
            return
        self._report(self.strict)

    def _report(self, strict: bool) -> None:
        __tracebackhide__ = True
        logs = _recorder.snapshot()
        mine = [logs[i] for i in self.ids]
        made = sum(len(log.records) + len(log.drift) for log in mine)
        if made == self.seen:
            return
        self.seen = made
        new = [f for f in _rules.run(logs) if f.site.id in self.ids and f.severity != "info"
               and (f.site.id, f.code) not in self.reported]
        for f in new:
            self.reported.add((f.site.id, f.code))
        if strict and new:
            raise ShapeError("\n".join(_message(f) for f in new), new)
        for f in new:
            warnings.warn_explicit(ShapeWarning(_message(f), f.code, f), ShapeWarning,
                                   _real_filename(f), f.site.line, module=self.fn.__module__)


def _message(f: Finding) -> str:
    fix = f"; fix: {f.fix}" if f.fix else ""
    return f"{f.code} {f.severity} at {f.site.location}: {f.message}{fix}"


def _real_filename(f: Finding) -> str:
    for filename, path in _recorder.FILES.items():
        if path == f.site.path:
            return filename
    return f.site.path



