"""`@shapecheck.trace`: record a function's operations on every call; findings become warnings.

The function's own source (its block, not its file) is rewritten the way
`python -m shapecheck` rewrites a script, compiled with the real file name and
line numbers, and given the original globals, defaults and closure cells: it
computes exactly what the original does.  Before that, the source is compiled
unchanged and compared with the function's code: a function whose file was
edited after it was defined runs untraced rather than running the new text.
The result is kept per code object, so a def traced again (in a factory) costs
a dictionary look-up and shares its sites.
"""

from __future__ import annotations

import __future__
import ast
import copy
import dis
import functools
import inspect
import linecache
import re
import types
import warnings

from . import _recorder, _rules
from ._crash import annotate
from ._errors import ShapeError, ShapeWarning
from ._report import Finding
from ._rewrite import AST_LOCK, Rewriter, _Scope, anchored
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
    if hasattr(fn, "__wrapped__"):
        why = "it is wrapped by another decorator; put @shapecheck.trace directly above its def"
    else:
        sites, why = _compiled(fn.__code__, fn.__globals__)
    if why is not None:
        warnings.warn(ShapeWarning(f"shapecheck.trace: {fn.__qualname__} runs untraced: {why}"), stacklevel=2)
        return fn
    return _Traced(fn, _function(fn, sites.code), sites, strict).wrapper()


# -- compiling the function's own source ------------------------------------


class _Sites:
    """One traced def: its rewritten code, its sites, and which of their findings were reported."""

    def __init__(self, code: types.CodeType, ids: range, filename: str):
        self.code = code
        self.ids = ids
        self.filename = filename
        self.reported: set[tuple[int, str]] = set()
        self.seen = -1  # records made at the sites when last looked at, to skip the rules when nothing is new
        live = _recorder.LIVE
        self.first = live[ids[0]].log.site if ids else None

    def here(self) -> bool:
        """Are the sites this process's?  A traced function shipped by value to a worker (joblib, dask) runs
        there with hooks that record nothing, and its ids, if any, are other code's."""
        live = _recorder.LIVE
        return not self.ids or (len(live) > self.ids[-1] and live[self.ids[0]].log.site == self.first)


# id(code) -> (code, (sites, None) or (None, why)).  Keyed by identity, the code kept alive so that the id is
# not reused: equal code objects from different files compare equal.
_CACHE: dict[int, tuple[types.CodeType, tuple]] = {}
# Re-entrant (a source loader may import a module that traces); the rewriter's own lock, because parsing
# and compiling trees must not run in two threads at once on Python 3.11 (see _rewrite.AST_LOCK).
_LOCK = AST_LOCK


def _compiled(code: types.CodeType, globals_: dict) -> tuple[_Sites | None, str | None]:
    hit = _CACHE.get(id(code))
    if hit is not None:
        return hit[1]
    with _LOCK:  # two threads defining the same def: one compiles, both get its sites
        hit = _CACHE.get(id(code))
        if hit is not None:
            return hit[1]
        try:
            result = _compile(code, globals_)
        except Exception as e:  # pragma: no cover - a failure of ours must not break the user's import
            result = None, f"shapecheck could not rewrite it ({type(e).__name__}: {e})"
        hit = _CACHE[id(code)] = (code, result)
    return hit[1]


def _compile(code: types.CodeType, globals_: dict) -> tuple[_Sites | None, str | None]:
    """Rewrite and compile the def that `code` was compiled from, or say why it cannot be traced."""
    filename = code.co_filename
    if code.co_name == "<lambda>":
        return None, "a lambda has no def of its own; define the function with def"
    lines = linecache.getlines(filename, globals_)
    if not lines:
        return None, f"its source is not available ({filename})"
    # Compile-time warnings of the function (SyntaxWarning, pytest's) were issued when Python (or pytest)
    # compiled its module; issuing them again, or as errors under -W error, would not be the function's doing.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        source, node = _own_source(lines, code)
        if node is None:
            return None, f"its def was not found in {filename} (was the file edited after it was imported?)"
        pytest_rewrite = _pytest_rewriter(globals_, filename, source)
        if _is_rewritten(code):
            # Code run by `python -m shapecheck` was compiled from this very text moments ago: only
            # otherwise can the file have changed under the function.
            imported = _calls_through_imports(code)
        else:
            original = copy.deepcopy(node)
            if pytest_rewrite is not None:
                pytest_rewrite(original)
            imported = next((guess for guess in _import_guesses(code, original, lines, globals_)
                             if _same_code(_compile_def(original, code, filename, guess), code)), None)
            if imported is None:
                return None, f"{filename} no longer holds the code it was defined with (edited after import?)"
        scaffolding = set()
        if pytest_rewrite is not None:
            scaffolding = {(n.lineno, n.col_offset, n.end_lineno, n.end_col_offset) for n in ast.walk(node)
                           if isinstance(n, ast.Assert)}
            pytest_rewrite(node)  # its asserts first, so that its failure messages stay what pytest makes them
        rw = _FunctionRewriter(source, display_path(filename), _recorder.next_id(), scaffolding)
        rw.scan(ast.Module(body=[node], type_ignores=[]))
        rw.modules.update(k for k, v in globals_.items() if issubclass(type(v), types.ModuleType))
        outer = code.co_qualname.rpartition(".")[0]
        rw.scopes.append(_Scope(outer or "<module>", []))
        node = rw.visit(node)
        rw.scopes.pop()
        new = _compile_def(node, code, filename, imported)
    if new is None or set(new.co_freevars) - set(code.co_freevars):
        return None, "its closure could not be rebuilt"
    new = anchored(new)
    _recorder.install()
    _recorder.register(rw, filename)
    ids = range(rw.sites[0].id, rw.sites[-1].id + 1) if rw.sites else range(0)
    return _Sites(new, ids, filename), None


class _FunctionRewriter(Rewriter):
    """The rewriter, leaving alone what pytest generated for an assert (located at the whole statement):
    its helper calls are not the user's operations, and one of them would claim the AssertionError."""

    def __init__(self, source: str, path: str, first_id: int, scaffolding: set[tuple[int, int, int, int]]):
        super().__init__(source, path, first_id)
        self.scaffolding = scaffolding

    def visit(self, node: ast.AST):
        if self.scaffolding and isinstance(node, ast.expr) and (
                node.lineno, node.col_offset, node.end_lineno, node.end_col_offset) in self.scaffolding:
            return self.generic_visit(node)
        return super().visit(node)


def _own_source(lines: list[str], code: types.CodeType) -> tuple[str, ast.AST | None]:
    """The function's block alone, parsed at its own lines and columns (an indented def under `if 1:`):
    the rest of its file may not parse any more, or may warn."""
    first = code.co_firstlineno
    if first < 1:
        return "", None
    try:
        block = inspect.getblock(lines[first - 1:])
    except Exception:  # tokenize errors: the text at that line is not the def any more
        return "", None
    indented = bool(block) and block[0][:1].isspace()
    if not block or (indented and first < 2):
        return "", None
    source = ("\n" * (first - 2) + "if 1:\n" if indented else "\n" * (first - 1)) + "".join(block)
    try:
        tree = ast.parse(source, code.co_filename)
    except (SyntaxError, ValueError):
        return source, None
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == code.co_name:
            if min([node.lineno] + [d.lineno for d in node.decorator_list]) == first:
                return source, node
    return source, None


def _is_rewritten(code: types.CodeType) -> bool:
    """Was this code already rewritten by `python -m shapecheck` (its module is being traced)?"""
    return any(n.startswith("__sc_") for n in code.co_names) or any(
        isinstance(c, types.CodeType) and _is_rewritten(c) for c in code.co_consts)


def _pytest_rewriter(globals_: dict, filename: str, source: str):
    """pytest's assertion rewriting, when it rewrote the function's module (a test module), else None."""
    if "@py_builtins" not in globals_:
        return None
    try:
        from _pytest.assertion.rewrite import rewrite_asserts
    except ImportError:
        return None
    config = getattr(globals_.get("__loader__"), "config", None)

    def rewrite(node: ast.AST) -> None:
        rewrite_asserts(ast.Module(body=[node], type_ignores=[]), source.encode(), filename, config)
    return rewrite


def _compile_def(node: ast.FunctionDef, code: types.CodeType, filename: str,
                 imported: frozenset[str]) -> types.CodeType | None:
    """Compile a def as it was nested: in a class of the same name where its qualified name says so
    (for `__private` names and `super()`), its free variables bound by an enclosing function, the names
    in `imported` bound by module-level imports."""
    parts = code.co_qualname.split(".")
    cls = None
    for i in range(len(parts) - 2, -1, -1):
        if not parts[i].startswith("<") and parts[i + 1] != "<locals>":
            cls = parts[i]
            break
    binds = [ast.Assign(targets=[ast.Name(id=v, ctx=ast.Store())], value=ast.Constant(None))
             for v in code.co_freevars if v != "__class__"]
    if cls is None:
        body, path = binds + [node], []
    elif parts[-2] == cls:
        body, path = binds + [_class(cls, [node])], [cls]
    else:  # a closure inside a method: the class still mangles its names
        body, path = [_class(cls, [_def("__sc_binder__", binds + [node])])], [cls, "__sc_binder__"]
    # CPython compiles `np.dot(x)` differently when `np` was bound by a module-level import: those are
    # imported again (never run) around the factory.
    imports = [ast.Import(names=[ast.alias(name="builtins", asname=n)]) for n in sorted(imported)]
    module = ast.Module(body=imports + [_def("__sc_factory__", body)], type_ignores=[])
    for n in ast.walk(module):
        if "lineno" in n._attributes and not hasattr(n, "lineno"):
            n.lineno, n.col_offset, n.end_lineno, n.end_col_offset = node.lineno, 0, node.lineno, 0
    flags = code.co_flags & _FUTURE_FLAGS
    found = compile(module, filename, "exec", flags=flags, dont_inherit=True)
    for name in ["__sc_factory__"] + path + [code.co_name]:
        found = next((c for c in found.co_consts if isinstance(c, types.CodeType) and c.co_name == name
                      and (name != code.co_name or c.co_firstlineno == code.co_firstlineno)), None)
        if found is None:
            return None
    return _retitle(found, found.co_qualname, code.co_qualname)


def _import_guesses(code: types.CodeType, node: ast.AST, lines: list[str], globals_: dict):
    """Which global names the def's method calls go through were bound by a module-level import, best
    guess first (the caller compiles each and keeps the one that gives the def's code)."""
    receivers = {n.func.value.id for n in ast.walk(node) if isinstance(n, ast.Call)
                 and isinstance(n.func, ast.Attribute) and isinstance(n.func.value, ast.Name)}
    guesses = [_calls_through_imports(code), receivers & _imported_in(lines),
               {r for r in receivers if issubclass(type(globals_.get(r)), types.ModuleType)}, set()]
    seen = []
    for guess in map(frozenset, guesses):
        if guess not in seen:
            seen.append(guess)
            yield guess


def _calls_through_imports(code: types.CodeType) -> frozenset[str]:
    """Global names whose methods the code calls as module-level imports, as CPython 3.11 and 3.12 compile
    them: `LOAD_GLOBAL` pushing the NULL of a call, directly followed by `LOAD_ATTR`."""
    names = set()
    previous = None
    for ins in dis.get_instructions(code):
        if ins.opname == "LOAD_ATTR" and previous is not None and previous.opname == "LOAD_GLOBAL" \
                and previous.arg & 1:
            names.add(previous.argval)
        previous = ins if ins.opname not in ("CACHE", "EXTENDED_ARG") else previous
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            names |= _calls_through_imports(c)
    return frozenset(names)


_IMPORT = re.compile(r"\s*(from\s+[\w.]+\s+)?import\s")


def _imported_in(lines: list[str]) -> set[str]:
    """Names bound by import statements anywhere in a file, read line by line (the file may not parse)."""
    names = set()
    for i, line in enumerate(lines):
        if not _IMPORT.match(line):
            continue
        text = line.strip()
        j = i
        while "(" in text and ")" not in text and j + 1 < len(lines):
            j += 1
            text += " " + lines[j].strip()
        try:
            stmt = ast.parse(text.rstrip("\\")).body[0]
        except (SyntaxError, ValueError, IndexError):
            continue
        for alias in getattr(stmt, "names", ()):
            names.add(alias.asname or alias.name.split(".")[0])
    return names


def _def(name: str, body: list[ast.stmt]) -> ast.FunctionDef:
    args = ast.arguments(posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[], defaults=[])
    return ast.FunctionDef(name=name, args=args, body=body + [ast.Return(value=ast.Constant(None))],
                           decorator_list=[])


def _class(name: str, body: list[ast.stmt]) -> ast.ClassDef:
    return ast.ClassDef(name=name, bases=[], keywords=[], body=body, decorator_list=[])


_FUTURE_FLAGS = __future__.annotations.compiler_flag  # the only future flag that still changes code


def _retitle(code: types.CodeType, old: str, new: str) -> types.CodeType:
    """The compiled def and what it nests, under their original qualified names (not the factory's)."""
    consts = tuple(_retitle(c, old, new) if isinstance(c, types.CodeType) else c for c in code.co_consts)
    qualname = new + code.co_qualname[len(old):] if code.co_qualname.startswith(old) else code.co_qualname
    return code.replace(co_consts=consts, co_qualname=qualname)


def _same_code(a: types.CodeType | None, b: types.CodeType) -> bool:
    """Do two code objects run the same instructions, names, constants and line table?"""
    if a is None:
        return False
    fields = ("co_code", "co_names", "co_varnames", "co_freevars", "co_cellvars", "co_argcount",
              "co_posonlyargcount", "co_kwonlyargcount", "co_firstlineno", "co_linetable", "co_exceptiontable",
              "co_name")
    if any(getattr(a, f) != getattr(b, f) for f in fields):
        return False
    if a.co_flags & ~inspect.CO_NESTED != b.co_flags & ~inspect.CO_NESTED:
        return False
    return len(a.co_consts) == len(b.co_consts) and all(map(_same_const, a.co_consts, b.co_consts))


def _same_const(x, y) -> bool:
    if type(x) is not type(y):
        return False
    if isinstance(x, types.CodeType):
        return _same_code(x, y)
    if isinstance(x, tuple):
        return len(x) == len(y) and all(map(_same_const, x, y))
    if isinstance(x, (float, complex)):
        return repr(x) == repr(y)  # -0.0 is not 0.0; nan is nan
    return x == y


def _function(fn: types.FunctionType, code: types.CodeType) -> types.FunctionType:
    """`fn` with the traced code: its globals, defaults, closure cells, names and attributes."""
    cells = dict(zip(fn.__code__.co_freevars, fn.__closure__ or ()))
    closure = tuple(cells[v] for v in code.co_freevars) or None
    new = types.FunctionType(code, fn.__globals__, fn.__name__, fn.__defaults__, closure)
    new.__kwdefaults__ = fn.__kwdefaults__
    new.__qualname__ = fn.__qualname__
    new.__module__ = fn.__module__
    new.__doc__ = fn.__doc__
    new.__annotations__ = fn.__annotations__
    new.__dict__.update(fn.__dict__)
    return new


# -- calling and reporting --------------------------------------------------


class _Traced:
    """One traced function: the traced code to call, and its def's sites to report on."""

    def __init__(self, fn, new, sites: _Sites, strict: bool):
        self.fn = fn
        self.new = new
        self.sites = sites
        self.strict = strict

    def wrapper(self):
        fn, new = self.fn, self.new
        if inspect.isasyncgenfunction(fn):
            wrapper = self._async_generator()
        elif inspect.isgeneratorfunction(fn):
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

    def _async_generator(self):
        """An async generator delegating to the traced one (what `yield from` does for a generator:
        values, `asend`, `athrow` and `aclose` pass through), reporting when it is exhausted or raises."""
        fn, new = self.fn, self.new

        @functools.wraps(fn)
        async def wrapper(*args, **kwargs):
            __tracebackhide__ = True
            agen = new(*args, **kwargs)
            try:
                try:
                    value = await agen.asend(None)
                    while True:
                        try:
                            sent = yield value
                        except GeneratorExit:
                            await agen.aclose()
                            raise
                        except BaseException as e:
                            value = await agen.athrow(e)
                        else:
                            value = await agen.asend(sent)
                except StopAsyncIteration:
                    pass
            except BaseException as e:
                annotate(e)
                self.report(crashed=True)
                raise
            self.report()
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
        sites = self.sites
        if not sites.here():
            return
        logs = _logs(sites.ids)
        made = sum(len(log.records) + len(log.drift) for log in logs)
        if made == sites.seen:
            return
        sites.seen = made
        new = [f for f in _rules.run(logs) if f.severity != "info" and (f.site.id, f.code) not in sites.reported]
        for f in new:
            sites.reported.add((f.site.id, f.code))
        if strict and new:
            raise ShapeError("\n".join(_message(f) for f in new), new)
        for f in new:
            warnings.warn_explicit(ShapeWarning(_message(f), f.code, f), ShapeWarning,
                                   sites.filename, f.site.line, module=self.fn.__module__)


def _logs(ids: range) -> list:
    """The logs of these sites only, each with its most recent run noted, as `_recorder.snapshot` notes
    it for all sites: a call costs what its own function recorded, not what the process did."""
    live = _recorder.LIVE
    unrecorded = _recorder._UNRECORDED
    logs = []
    for i in ids:
        s = live[i]
        s.log.last = s.cur if s.cur is not unrecorded else None
        logs.append(s.log)
    return logs


def _message(f: Finding) -> str:
    fix = f"; fix: {f.fix}" if f.fix else ""
    return f"{f.code} {f.severity} at {f.site.location}: {f.message}{fix}"
