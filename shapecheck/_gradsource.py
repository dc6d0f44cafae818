"""Where a gradient came from: one call of the user's gradient function under a line tracer.

Only for rows that failed, once: ``sys.settrace`` follows the user's own frames
(not numpy's, not the standard library's, not shapecheck's), and after each
statement looks at the arrays its frame can reach (locals, one level into
dicts, lists, tuples and ``self``). An array seen for the first time was made
by that statement; arrays are held until the call is over, so an ``id`` is
never reused meanwhile. The returned gradient's identity then names the
statement that produced it — ``grads["db1"] = ...``, a ``db1`` returned in a
tuple, ``self.dW`` of a layer object, ``nabla_w[-1]`` in a list — and the
arrays that statement read (recorded as it started) give the backward chain.
An array first seen as an argument, or reached through more than one level,
has no producer: nothing is said about it rather than a guess.
"""

from __future__ import annotations

import ast
import copy
import linecache
import os
import sys
import sysconfig
import types
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

_OWN = os.path.dirname(os.path.abspath(__file__))
_LIBS = tuple({os.path.abspath(p) for k in ("stdlib", "platstdlib", "purelib", "platlib")
               if (p := sysconfig.get_paths().get(k))})
MAX_NODES = 20000  # a gradient function making more arrays than this is not traced further
MAX_EVENTS = 500_000  # nor a call running more lines (a per-example loop over a large data set)
MAX_READS = 64  # arrays an accumulating statement is said to read, over all its runs
_COMPREHENSIONS = ("<listcomp>", "<dictcomp>", "<setcomp>", "<genexpr>")
_ALIASES = (ast.Name, ast.Attribute, ast.Subscript)
_MAKERS = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Return, ast.Expr)  # statements that compute a value


@dataclass(eq=False)
class Node:
    """One array and the statement that made it."""

    code: types.CodeType
    path: str  # the file as shown to the user
    line: int
    stmt: ast.stmt
    text: str  # the statement's source, one line
    name: str  # how the frame reached it first: "dZ1", "self.dW", "grads['db1']"
    reads: dict  # source text of an array read by the statement -> id of that array
    scope: dict  # name -> int/float value or ndarray shape, in the frame when the statement ran
    order: int
    globals: dict = field(default=None, repr=False)  # the frame's module globals (to find numpy's name)
    modifiers: list = field(default_factory=list)  # later statements that updated it in place, or stored it
    alias: bool = False  # a modifier that only stored it under another name (`nabla_b[-2] = delta`)
    shape: tuple | None = None  # the shape of the array it made (None for a modifier)


@dataclass
class Trace:
    """The arrays one traced call made: id -> Node, plus the call's result."""

    nodes: dict
    result: Any
    held: list  # every array seen, alive while the trace is used
    final_read: int | None = None  # the newest array the outermost return statement read (a loss as a float)
    codes: tuple = ()  # the user's functions that ran (whose files still hold them), in the order they first ran
    passthrough: tuple = ()  # (code, line) of each return of an array the function did not compute


def _statements(filename: str, module_globals: dict | None) -> list[ast.stmt] | None:
    lines = linecache.getlines(filename, module_globals)
    if not lines:
        return None
    try:
        tree = ast.parse("".join(lines))
    except (SyntaxError, ValueError):
        return None
    return [n for n in ast.walk(tree) if isinstance(n, ast.stmt)]


class _Tracer:
    def __init__(self):
        self.nodes: dict[int, Node] = {}
        self.seen: set[int] = set()
        self.held: list = []
        self.current: dict = {}  # frame -> (stmt, reads, scope) of the statement running in it
        self.files: dict[str, Any] = {}  # filename -> {line: innermost statement} or None (not user code)
        self.order = 0
        self.outer = None  # the frame of the traced call itself
        self.globals_seen: dict[int, tuple] = {}
        self.codes: dict = {}  # code -> does its file still hold it
        self.events = 0
        self.final_read: int | None = None
        self.passthrough: list = []  # (code, line) of returns of an array the function did not compute

    # -- which code is the user's ----------------------------------------------------------

    def _table(self, code: types.CodeType, frame) -> dict | None:
        fn = code.co_filename
        if fn in self.files:
            return self.files[fn]
        table = None
        path = os.path.abspath(fn)
        if not (path.startswith(_OWN + os.sep) or (fn.startswith("<") and not fn.startswith("<ipython"))
                or any(path.startswith(lib + os.sep) for lib in _LIBS)):
            stmts = _statements(fn, frame.f_globals)
            if stmts is not None:
                table = {}
                # innermost statement per line; a compound statement only owns its header lines
                for s in sorted(stmts, key=lambda s: (s.lineno, -(s.end_lineno or s.lineno))):
                    end = s.end_lineno or s.lineno
                    body = getattr(s, "body", None)
                    if isinstance(body, list) and body and isinstance(body[0], ast.stmt):
                        end = body[0].lineno - 1
                    for ln in range(s.lineno, end + 1):
                        table[ln] = s
        self.files[fn] = table
        return table

    # -- the trace functions ----------------------------------------------------------------

    def _trusted(self, frame) -> bool:
        """Does the file still hold the code running in this frame? (Else its lines would be another
        code's: nothing is said about a function whose file was edited after it was defined.)"""
        code = frame.f_code
        if code not in self.codes:
            if code.co_name in _COMPREHENSIONS:  # a comprehension runs its defining function's text
                back = frame.f_back
                ok = back is not None and back.f_code.co_filename == code.co_filename and \
                    self.codes.get(back.f_code, False)
            else:
                ok = source_matches(code, frame.f_globals)
            self.codes[code] = ok
        return self.codes[code]

    def global_trace(self, frame, event, arg):
        try:
            return self._call(frame, event)
        except Exception:  # a failure of ours must never reach the user's code
            return None

    def _call(self, frame, event):
        if event != "call" or self.events > MAX_EVENTS or self._table(frame.f_code, frame) is None \
                or not self._trusted(frame):
            return None
        if self.outer is None:
            self.outer = frame
        # An argument computed in the call itself (`layer.backward(2 * (out - y) / n)`) was made by the
        # caller's statement; other arguments are inputs: seen, made by no statement of this call.
        caller = self.current.get(frame.f_back) if frame.f_back is not None else None
        for k, v in frame.f_locals.items():
            for name, a in _arrays(v, k):
                if caller is not None and type(a) is np.ndarray and id(a) not in self.seen \
                        and not _named(frame.f_back, a):
                    self._new(frame.f_back, caller, name, a)
                self._mark(a)
        return self.local_trace

    def local_trace(self, frame, event, arg):
        self.events += 1
        if self.events > MAX_EVENTS:  # a very long call is left alone: what it makes later has no producer
            return None
        try:
            if event == "line":
                table = self.files.get(frame.f_code.co_filename)
                stmt = table.get(frame.f_lineno) if table else None
                prev = self.current.get(frame)
                if prev is not None and prev[0] is stmt:
                    return self.local_trace
                if prev is not None:
                    self._after(frame, prev)
                if stmt is not None:
                    reads, shapes = _reads(frame, stmt)
                    self.current[frame] = (stmt, reads, {**_scope(frame), **shapes}, _iterated(frame, stmt))
                else:
                    self.current.pop(frame, None)
            elif event == "return":
                prev = self.current.pop(frame, None)
                if prev is not None:
                    self._after(frame, prev)
                    if type(arg) is np.ndarray and id(arg) in self.seen:
                        self._passed_on(frame, prev[0], arg)
                    for name, a in _arrays(arg, "<returned>"):
                        self._new(frame, prev, name, a)
                    caller = self.current.get(frame.f_back) if frame.f_back is not None else None
                    if caller is not None:  # the caller's statement read what the call returned
                        for name, a in _arrays(arg, f"{frame.f_code.co_name}()"):
                            caller[1].setdefault(name, id(a))
                    if frame is self.outer:
                        made = [self.nodes[i] for i in prev[1].values() if i in self.nodes]
                        if made:
                            newest = max(made, key=lambda n: n.order)
                            self.final_read = next(i for i, n in self.nodes.items() if n is newest)
        except Exception:  # a failure of ours must never reach the user's code
            pass
        return self.local_trace

    # -- bookkeeping ------------------------------------------------------------------------

    def _data(self, frame) -> set:
        """Ids of the arrays a module's globals held when the call first ran code of that module."""
        g = frame.f_globals
        if id(g) not in self.globals_seen:
            found = set()
            for k, v in list(g.items()):
                for _, a in _arrays(v, ""):
                    found.add(id(a))
                    self._mark(a)
            self.globals_seen[id(g)] = (g, found)
        return self.globals_seen[id(g)][1]

    def _passed_on(self, frame, stmt, a) -> None:
        """A function returned an array it did not compute (`def backward(self, dout): return dout`): a place
        where a value is passed on that no statement's node shows."""
        node, code = self.nodes.get(id(a)), _owner(frame)
        if node is None or (node.code is not code and not any(m.code is code and not m.alias for m in node.modifiers)):
            self.passthrough.append((code, stmt.lineno))

    def _mark(self, a) -> None:
        if id(a) not in self.seen:
            self.seen.add(id(a))
            self.held.append(a)

    def _new(self, frame, running, name: str, a) -> None:
        if id(a) in self.seen:
            return
        self._mark(a)
        # A loop or with statement binds arrays it did not compute (`for x, y in zip(xs, ys)`), and the
        # module's data (X, Y) was there before the call: inputs, made by no statement of it.
        if len(self.nodes) >= MAX_NODES or not isinstance(running[0], _MAKERS) or id(a) in self._data(frame):
            return
        stmt, reads, scope = running[:3]
        code = _owner(frame)
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            # found as nabla_w[1], assigned as nabla_w[-1]: the statement's own words name it
            target = stmt.targets[0] if isinstance(stmt, ast.Assign) else stmt.target
            if len(getattr(stmt, "targets", [target])) == 1 and not isinstance(target, ast.Tuple) \
                    and _resolve(frame, target) is a:
                name = ast.unparse(target)
        expr = value_expr(stmt, name)
        if expr is not None and expr is not getattr(stmt, "value", None) and \
                not isinstance(getattr(stmt, "value", None), (ast.ListComp, ast.DictComp)):
            # One element of a returned tuple or dict literal: it read only what its own expression reads.
            inner = {ast.unparse(n) for n in ast.walk(expr)}
            reads = {k: v for k, v in reads.items() if k in inner}
        from ._runner import display_path
        self.order += 1
        self.nodes[id(a)] = Node(code, display_path(code.co_filename), stmt.lineno, stmt,
                                 _text(code.co_filename, stmt, frame.f_globals), name, reads, scope, self.order,
                                 frame.f_globals, shape=a.shape)

    def _after(self, frame, running) -> None:
        """A statement finished: arrays seen now for the first time are its; an in-place update is noted."""
        stmt = running[0]
        for key, v in list(frame.f_locals.items()):
            if key.startswith("__sc"):
                continue
            for name, a in _arrays(v, key):
                self._new(frame, running, name, a)
        if isinstance(stmt, ast.AugAssign) or (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                                               and isinstance(stmt.targets[0], ast.Subscript)):
            self._modified(frame, running)
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.value, _ALIASES) \
                and not isinstance(stmt.targets[0], ast.Tuple):
            self._stored(frame, running)
        if running[3]:
            self._comprehension(stmt, running[3])
        if isinstance(stmt, ast.Return) and isinstance(stmt.value, (ast.Tuple, ast.List)):
            self._returned(frame, running)

    def _modified(self, frame, running) -> None:
        """`g["W2"] += d2 @ a1.T`, `dW[mask] = 0`: the array's value now also comes from this statement,
        which becomes a node of its own (first run only) among the array's modifiers."""
        stmt, reads, scope = running[:3]
        target = stmt.target if isinstance(stmt, ast.AugAssign) else stmt.targets[0].value
        obj = _resolve(frame, target)
        if type(obj) is not np.ndarray and isinstance(target, ast.Subscript):  # `dx[idx, y] -= 1`
            obj = _resolve(frame, target.value)
        node = self.nodes.get(id(obj)) if type(obj) is np.ndarray else None
        if node is None or node.stmt is stmt:
            return
        again = next((m for m in node.modifiers if m.stmt is stmt), None)
        if again is not None:
            # run again (a loop accumulating `dWxh += dhraw @ xs[t].T`): what it read this time feeds the array
            # too (`dhraw` of every step, and through it `dhnext`), under the text marked with the run
            for text, i in reads.items():
                if i not in again.reads.values() and len(again.reads) < MAX_READS:
                    again.reads[f"{text}#{len(again.reads)}"] = i
            return
        name = ast.unparse(target) if isinstance(stmt, ast.AugAssign) else ast.unparse(stmt.targets[0])
        self._modifier(node, frame, stmt, name, reads, scope)

    def _stored(self, frame, running) -> None:
        """`nabla_b[-2] = delta`: an array made earlier, stored under another name; the statement joins its
        modifiers (the value returned went through it, and an edit there touches this use only)."""
        stmt = running[0]
        obj = _resolve(frame, stmt.value)
        node = self.nodes.get(id(obj)) if type(obj) is np.ndarray else None
        if node is None or node.stmt is stmt or any(m.stmt is stmt for m in node.modifiers):
            return
        self._modifier(node, frame, stmt, ast.unparse(stmt.targets[0]), running[1], running[2], alias=True)

    def _modifier(self, node, frame, stmt, name: str, reads, scope, alias: bool = False) -> None:
        """`stmt` (running in `frame`) joins the statements that gave `node`'s array its value."""
        from ._runner import display_path

        code = _owner(frame)
        self.order += 1
        node.modifiers.append(Node(code, display_path(code.co_filename), stmt.lineno, stmt,
                                   _text(code.co_filename, stmt, frame.f_globals), name, dict(reads), scope,
                                   self.order, frame.f_globals, alias=alias))

    def _comprehension(self, stmt, sources: list) -> None:
        """`nabla = [nb + dnb for nb, dnb in zip(nabla, delta)]`, `return {k: v / m for k, v in g.items()}`:
        each value was made (in the comprehension's own frame, which could not see the containers) from the
        entries of the iterated containers at the same key or index (as they were when the statement began)."""
        for n in self.nodes.values():
            if n.stmt is not stmt or n.reads or not n.name.startswith("<returned>["):
                continue
            key = n.name[len("<returned>["):-1]
            reads = {}
            for label, source, items in sources:
                entry = None
                if items and type(source) is dict:
                    entry = next((v for k, v in source.items() if repr(k) == key), None)
                elif not items and type(source) in (list, tuple) and key.isdigit() and int(key) < len(source):
                    entry = source[int(key)]
                if type(entry) is np.ndarray:
                    reads[f"{label}[{key}]"] = id(entry)
            n.reads = reads

    def _returned(self, frame, running) -> None:
        """`return dW, db`: each name returned joins its array's stores, as `nabla_b[-2] = delta` does."""
        stmt = running[0]
        for i, elt in enumerate(stmt.value.elts):
            if not isinstance(elt, _ALIASES):
                continue
            obj = _resolve(frame, elt)
            node = self.nodes.get(id(obj)) if type(obj) is np.ndarray else None
            if node is None or node.stmt is stmt or any(m.stmt is stmt for m in node.modifiers):
                continue
            self._modifier(node, frame, stmt, f"<returned>[{i}]", {ast.unparse(elt): id(obj)}, running[2],
                           alias=True)


def _owner(frame) -> types.CodeType:
    """The code of the function a statement belongs to: a comprehension's (Python 3.11) is its definer's,
    whose source holds it and whose code an edit replaces."""
    code = frame.f_code
    while code.co_name in _COMPREHENSIONS and frame.f_back is not None and \
            frame.f_back.f_code.co_filename == code.co_filename:
        frame = frame.f_back
        code = frame.f_code
    return code


def _iterated(frame, stmt: ast.stmt) -> list:
    """For a statement whose value is a list or dict comprehension: (label, container, by key) of what it
    iterates (`g.items()`, `zip(a, b)`, `a`), read before the statement can rebind them."""
    comp = getattr(stmt, "value", None)
    if not isinstance(stmt, (ast.Return, ast.Assign)) or not isinstance(comp, (ast.DictComp, ast.ListComp)) \
            or len(comp.generators) != 1:
        return []
    it = comp.generators[0].iter
    if isinstance(it, ast.Call) and isinstance(it.func, ast.Attribute) and it.func.attr == "items" \
            and not it.args and isinstance(it.func.value, ast.Name):
        return [(it.func.value.id, _resolve(frame, it.func.value), True)]
    if isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "zip" and \
            all(isinstance(a, ast.Name) for a in it.args):
        return [(a.id, _resolve(frame, a), False) for a in it.args]
    if isinstance(it, ast.Name):
        return [(it.id, _resolve(frame, it), False)]
    return []


def value_expr(stmt: ast.stmt, name: str) -> ast.expr | None:
    """The expression whose value a node's array is: the statement's value, or the element of a tuple,
    list or dict literal that the name (`<returned>[1]`, `grads['db1']`, `dW`) points at; None if unclear."""
    value = getattr(stmt, "value", None)
    if not isinstance(stmt, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Return)) or value is None:
        return None
    targets = ["<returned>"] if isinstance(stmt, ast.Return) else \
        [ast.unparse(t) for t in (stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target])]
    if name in targets:
        return value
    if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], (ast.Tuple, ast.List)) and \
            isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == len(stmt.targets[0].elts):
        for t, v in zip(stmt.targets[0].elts, value.elts):
            if ast.unparse(t) == name:
                return v
        return None
    if isinstance(value, (ast.ListComp, ast.DictComp)) and len(value.generators) == 1 and \
            any(name.startswith(t + "[") for t in targets + ["<returned>"]):
        return value.elt if isinstance(value, ast.ListComp) else value.value  # `[nb / m for nb in nabla_b]`
    for t in targets:
        if not name.startswith(t + "["):
            continue
        key = name[len(t):]
        if isinstance(value, (ast.Tuple, ast.List)):
            for i, v in enumerate(value.elts):
                if key == f"[{i}]" and not isinstance(v, ast.Starred):
                    return v
        if isinstance(value, ast.Dict):
            for k, v in zip(value.keys, value.values):
                if isinstance(k, ast.Constant) and key == f"[{k.value!r}]":
                    return v
    return None


def _arrays(v, name: str, depth: int = 0):
    """(how reached, array) for the arrays reachable from one local: itself, one level into containers,
    and the attributes of an object with a plain ``__dict__`` (``self``), never calling user code."""
    t = type(v)
    if t is np.ndarray or t is np.float64 or t is np.float32:
        yield name, v
        return
    if depth > 1:
        return
    if t is dict:
        for k, x in list(v.items()):
            if type(x) is np.ndarray or (depth == 0 and type(x) in (dict, list, tuple)):
                yield from _arrays(x, f"{name}[{k!r}]", depth + 1)
    elif t is list or t is tuple:
        for i, x in enumerate(list(v)):
            if type(x) is np.ndarray or (depth == 0 and type(x) in (dict, list, tuple)):
                yield from _arrays(x, f"{name}[{i}]", depth + 1)
    elif depth == 0 and name == "self":
        d = _instance_dict(v)
        for k, x in list(d.items()):
            yield from _arrays(x, f"self.{k}", depth + 1)


def source_matches(code: types.CodeType, globals_: dict) -> bool:
    """Does the def block at the code's first line compile to this very code (the checks of `_trace`)?
    Code rewritten by shapecheck was compiled from the file's text moments ago."""
    from . import _trace

    if _trace._is_rewritten(code):
        return True
    lines = linecache.getlines(code.co_filename, globals_)
    try:
        with warnings.catch_warnings():  # compiling the block again must not warn a second time
            warnings.simplefilter("ignore")
            source, node = _trace._own_source(lines, code)
            if node is None:
                return False
            rewrite = _trace._pytest_rewriter(globals_, code.co_filename, source)
            if rewrite is not None:
                rewrite(node)
            return any(_trace._same_code(_trace._compile_def(copy.deepcopy(node), code, code.co_filename, guess),
                                         code) for guess in _trace._import_guesses(code, node, lines, globals_))
    except Exception:
        return False


def _named(frame, a) -> bool:
    """Can the frame reach the array by a name (a local, or a module global such as the data X)?"""
    for source in (frame.f_locals, frame.f_globals):
        for k, v in list(source.items()):
            if v is a or any(x is a for _, x in _arrays(v, "")):
                return True
    return False


def _instance_dict(obj) -> dict:
    try:
        d = object.__getattribute__(obj, "__dict__")
    except Exception:
        return {}
    return d if type(d) is dict else {}


def _resolve(frame, expr: ast.expr):
    """The object a simple expression names in a frame (a name, `self.x`, `d["k"]`, `l[0]`), read without
    calling anything of the user's; None otherwise."""
    if isinstance(expr, ast.Name):
        return frame.f_locals.get(expr.id, frame.f_globals.get(expr.id))
    if isinstance(expr, ast.Attribute):
        base = _resolve(frame, expr.value)
        return _instance_dict(base).get(expr.attr) if base is not None else None
    index = _index(frame, expr.slice) if isinstance(expr, ast.Subscript) else None
    if isinstance(index, ast.Constant):
        base = _resolve(frame, expr.value)
        key = index.value
        if type(base) is dict:
            return base.get(key)
        if type(base) in (list, tuple) and type(key) is int and -len(base) <= key < len(base):
            return base[key]
    return None


def _index(frame, index: ast.expr) -> ast.Constant | None:
    """A subscript's index as a constant: `1`, `-1`, `"W1"`, or a local int `l` / `-l` (`nabla_b[-l]`)."""
    sign = 1
    if isinstance(index, ast.UnaryOp) and isinstance(index.op, ast.USub):
        sign, index = -1, index.operand
    if isinstance(index, ast.Name):
        value = frame.f_locals.get(index.id)
        return ast.Constant(sign * value) if type(value) is int else None
    if isinstance(index, ast.Constant) and (sign == 1 or type(index.value) is int):
        return ast.Constant(sign * index.value if sign == -1 else index.value)
    return None


def _reads(frame, stmt: ast.stmt) -> tuple[dict, dict]:
    """Source text -> id of each array the statement is about to read through a simple expression, and
    source text -> shape of those that are arrays."""
    out, shapes = {}, {}
    value = getattr(stmt, "value", None)
    roots = [value] if value is not None else []
    if isinstance(stmt, ast.AugAssign):
        roots.append(stmt.target)
    for root in roots:
        for n in ast.walk(root):
            if isinstance(n, (ast.Name, ast.Attribute, ast.Subscript)) and isinstance(getattr(n, "ctx", None), ast.Load):
                obj = _resolve(frame, n)
                if type(obj) in (np.ndarray, np.float64, np.float32):
                    out.setdefault(ast.unparse(n), id(obj))
                    if type(obj) is np.ndarray:
                        shapes.setdefault(ast.unparse(n), obj.shape)
    return out, shapes


def _scope(frame) -> dict:
    """Numbers and array shapes the frame can name (locals, then module globals), for fixes by a dimension."""
    out = {}
    outer = frame  # a comprehension (Python 3.11) sees its definer's names too: `[nb / m for nb in nabla_b]`
    while outer.f_code.co_name in _COMPREHENSIONS and outer.f_back is not None:
        outer = outer.f_back
    for source in (frame.f_globals, outer.f_locals, frame.f_locals):
        for k, v in list(source.items()):
            if k.startswith("__"):
                continue
            t = type(v)
            if t is int or t is float:
                out[k] = v
            elif t is np.ndarray:
                out[k] = v.shape
            elif t is dict and source is frame.f_locals and v:
                # `hs[t]` with the loop's own index: min-char-rnn's states, for a derivative left out
                for var, i in list(frame.f_locals.items()):
                    if type(i) is int and type(v.get(i)) is np.ndarray:
                        out[f"{k}[{var}]"] = v[i].shape
            elif (t is list or t is tuple) and source is not frame.f_globals and v:
                out[f"len({k})"] = len(v)  # a batch held as a list of examples: `/ len(mini_batch)`
                if type(v[-1]) is np.ndarray:  # the last layer's `zs[-1]`, for a derivative left out
                    out[f"{k}[-1]"] = v[-1].shape
            elif k == "self" and source is not frame.f_globals:  # a layer's arrays: self.output for self.inputs
                for a, x in list(_instance_dict(v).items()):
                    if type(x) is np.ndarray:
                        out[f"self.{a}"] = x.shape
                    elif type(x) is int or type(x) is float:  # self.reg, for a regulariser's missing term
                        out[f"self.{a}"] = x
    return out


def _text(filename: str, stmt: ast.stmt, module_globals) -> str:
    """The statement's own source on one line, without a trailing comment (columns are UTF-8 offsets)."""
    lines = linecache.getlines(filename, module_globals)[stmt.lineno - 1:(stmt.end_lineno or stmt.lineno)]
    if not lines:
        return ""
    raw = [ln.encode() for ln in lines]
    raw[-1] = raw[-1][:stmt.end_col_offset]
    raw[0] = raw[0][stmt.col_offset:]
    return " ".join(b.decode(errors="replace").strip() for b in raw)


def traced_call(fn, *args) -> Trace:
    """Call ``fn(*args)`` once with the line tracer on; the tracer in place before is put back."""
    tracer = _Tracer()
    previous = sys.gettrace()
    sys.settrace(tracer.global_trace)
    try:
        result = fn(*args)
    finally:
        sys.settrace(previous)
        # The frames it held (and their arrays) go now, not at the next garbage collection.
        tracer.outer = None
        tracer.current.clear()
    codes = tuple(c for c, ok in tracer.codes.items() if ok and c.co_name not in _COMPREHENSIONS)
    return Trace(tracer.nodes, result, tracer.held, tracer.final_read, codes, tuple(tracer.passthrough))


def ancestors(trace: Trace, start: int, limit: int = 200) -> list[Node]:
    """The nodes an array was computed from (itself first), breadth first. An in-place update counts only
    for the statements that read the array after it (`self.weights -= lr * self.dweights` after the layer
    used its weights does not feed what it computed)."""
    out, todo, seen = [], [(start, float("inf"))], {}
    while todo and len(out) < limit:
        i, before = todo.pop(0)
        if seen.get(i, -1) >= before:  # seen already by a reader as late or later
            continue
        seen[i] = before
        node = trace.nodes.get(i)
        if node is None:
            continue
        if node not in out:
            out.append(node)
        todo.extend((r, node.order) for r in node.reads.values())
        for mod in node.modifiers:
            if not mod.alias and mod.order < before:  # storing it elsewhere does not change its value
                if mod not in out:
                    out.append(mod)
                todo.extend((r, mod.order) for r in mod.reads.values())
    return out
