"""AST front end: wrap every array-relevant operation of the user's source in a recorder hook.

A rewritten operation still runs in the user's own frame.  `a - b` becomes

    __sc_sub__(*__sc_b__(17, a, b))

where the hook `__sc_b__` notes the operands of site 17 and hands them back, and
`__sc_sub__` is `operator.sub`, a C function that adds no Python frame.  So the
operation raises and warns at the user's line, frame-sensitive callees
(`super()`, `locals()`, `warnings.warn(stacklevel=2)`) still see the user's
frame, and operands are evaluated once, in the original order.  Calls become
`__sc_call__(*__sc_c__(17, f, x, y), axis=0)` with `__sc_call__ = operator.call`.

The hooks live in `builtins` under `__sc_*__` names, so the user's namespaces
gain nothing (dunder names, which class bodies do not mangle).  Every generated node carries the location of the node it stands
for: tracebacks, warnings and `f_lineno` are those of the original code.
"""

from __future__ import annotations

import _thread  # not threading: importing it costs start-up time, and its locks are these
import ast
import contextlib
import gc
import operator
import re
import sys
import types

from ._events import OperandSpec, Site, replace

HOOK_BINOP = "__sc_b__"  # (sid, x, y) -> (x, y)
HOOK_CALL = "__sc_c__"  # (sid, f, *args) -> (f, *args)
HOOK_METHOD = "__sc_m__"  # (sid, bound_method, *args) -> (bound_method, *args)
# The same with a fixed number of arguments, for the common calls: no tuple packed, no length tested.
HOOK_CALL1 = "__sc_c1__"  # (sid, f, x) -> (f, x)
HOOK_CALL2 = "__sc_c2__"  # (sid, f, x, y) -> (f, x, y)
HOOK_METHOD0 = "__sc_m0__"  # (sid, bound_method) -> (bound_method,)
HOOK_METHOD1 = "__sc_m1__"  # (sid, bound_method, x) -> (bound_method, x)
HOOK_METHOD2 = "__sc_m2__"  # (sid, bound_method, x, y) -> (bound_method, x, y)
# (a method?, its number of positional arguments) -> the hook for that call
CALL_HOOKS = {(False, 1): HOOK_CALL1, (False, 2): HOOK_CALL2, (True, 0): HOOK_METHOD0, (True, 1): HOOK_METHOD1,
              (True, 2): HOOK_METHOD2}
HOOK_ASSIGN = "__sc_a__"  # (sid, value) -> value
HOOK_AUGVALUE = "__sc_v__"  # (sid, value) -> value: the value of `obj.attr += value`, `c[k] += value`
HOOK_KEY = "__sc_k__"  # (sid, key) -> key: a computed key of such a statement, held for an explanation
CALL = "__sc_call__"  # operator.call

# Operator -> (symbol, operator-module function).  The function is what the
# syntax does: operator.sub(a, b) is `a - b`, operator.isub(a, b) is `a -= b`.
BINOPS = {
    ast.Add: ("+", "add"), ast.Sub: ("-", "sub"), ast.Mult: ("*", "mul"),
    ast.MatMult: ("@", "matmul"), ast.Div: ("/", "truediv"), ast.FloorDiv: ("//", "floordiv"),
    ast.Mod: ("%", "mod"), ast.Pow: ("**", "pow"), ast.LShift: ("<<", "lshift"),
    ast.RShift: (">>", "rshift"), ast.BitOr: ("|", "or_"), ast.BitXor: ("^", "xor"),
    ast.BitAnd: ("&", "and_"),
}
COMPARES = {
    ast.Eq: ("==", "eq"), ast.NotEq: ("!=", "ne"), ast.Lt: ("<", "lt"),
    ast.LtE: ("<=", "le"), ast.Gt: (">", "gt"), ast.GtE: (">=", "ge"),
}


def hook_functions() -> dict[str, object]:
    """The operator functions the rewritten code calls, by their builtins name."""
    names = {CALL: operator.call}
    for symbol, fn in list(BINOPS.values()) + list(COMPARES.values()):
        names[f"__sc_{fn}__"] = getattr(operator, fn)
    for symbol, fn in BINOPS.values():
        inplace = "i" + fn.rstrip("_")
        names[f"__sc_{inplace}__"] = getattr(operator, inplace)
    return names


# Calls that never take part in array shapes, or that must see their caller's
# frame undisturbed: left exactly as written.
SKIP_FUNCTIONS = frozenset("""
    print len range enumerate zip isinstance issubclass type super locals globals vars dir
    eval exec compile getattr setattr hasattr delattr id hash repr str bool complex list dict
    set tuple frozenset sorted reversed iter next open input format ord chr callable breakpoint
    __import__ object property staticmethod classmethod map filter any all help exit quit bytes
    bytearray memoryview slice hex oct bin ascii
""".split())
SKIP_METHODS = frozenset("""
    append extend insert remove format format_map join split rsplit splitlines strip lstrip rstrip
    replace startswith endswith lower upper title items keys values setdefault add_argument
    parse_args write writelines read readline readlines close encode decode info debug warning
    error exception critical
""".split())
REDUCTIONS = frozenset("""
    sum mean std var max min prod amax amin nansum nanmean nanstd nanvar nanmax nanmin median
    nanmedian argmax argmin average all any logsumexp norm
""".split())
EXPLICIT_CALLS = frozenset("""
    reshape expand_dims atleast_2d atleast_3d newaxis outer einsum kron meshgrid broadcast_to
    tile repeat column_stack vstack hstack stack concatenate
""".split())
REFCOUNTED = frozenset({"resize"})  # methods that count references to their receiver

# Method names of numpy arrays and pandas objects: a user class defining one of these does not make
# `x.dot(...)` a call of the user's own method.
ARRAY_METHODS = frozenset("""
    dot sum mean std var max min prod reshape transpose astype copy flatten ravel squeeze clip round
    argmax argmin cumsum all any fill item tolist to_numpy apply map T abs
""".split())
# Calls whose result shape the shape algebra knows (see _calls): an assignment of one needs no hook.
KNOWN_RESULTS = frozenset("""
    dot matmul outer reshape transpose ravel flatten squeeze exp log log1p sqrt tanh maximum minimum
    sum mean std var max min prod argmax argmin abs
""".split())
MODULE_ROOTS = frozenset({"numpy", "pandas", "math", "scipy", "random", "os", "sys", "time"})

# Python 3.11's converters between syntax trees and Python objects (ast.parse, compile of a tree) keep one
# recursion counter per interpreter (CPython gh-106905): two threads converting at once can fail with
# "SystemError: AST constructor recursion depth mismatch".  Plain imports never convert; ours do, so
# every conversion of ours holds this lock (callers that parse before rewriting should hold it too).
AST_LOCK = _thread.RLock()

_IGNORE = r"#\s*shapecheck:\s*ignore(?:\[([A-Za-z0-9_,\s]+)\])?"  # compiled when a line names shapecheck
OPT_OUT = "SHAPECHECK_DONT_REWRITE"


_LINE_END = re.compile(r"(\r\n|\r|\n)")


def source_lines(source: str) -> list[str]:
    """The lines of Python source with their ends, split where the tokenizer splits them: at `\r\n`, `\r`
    and `\n` only.  (str.splitlines also splits at form feeds, `\v`, `\x1c`-`\x1e`, `\x85`, U+2028/9,
    which are not line ends to Python, and every later line number would be off.)"""
    parts = _LINE_END.split(source)
    lines = [parts[k] + parts[k + 1] for k in range(0, len(parts) - 1, 2)]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def ignored_codes(source: str) -> dict[int, frozenset[str]]:
    """Line -> codes silenced there by `# shapecheck: ignore[SC101]` (`*` for a bare ignore)."""
    found = {}
    for lineno, line in enumerate(source_lines(source), 1):
        m = re.search(_IGNORE, line) if "shapecheck" in line else None
        if m:
            codes = m.group(1)
            found[lineno] = frozenset(c.strip().upper() for c in codes.split(",")) if codes else frozenset("*")
    return found


def opted_out(tree: ast.Module) -> bool:
    doc = ast.get_docstring(tree, clean=False)
    return bool(doc and OPT_OUT in doc)


class _Source:
    """Source text by AST position (ast columns are UTF-8 byte offsets)."""

    def __init__(self, source: str):
        self.lines = [line.encode("utf-8") for line in source_lines(source)]

    def segment(self, node: ast.AST) -> str:
        first, last = node.lineno - 1, node.end_lineno - 1
        if first == last:
            raw = self.lines[first][node.col_offset:node.end_col_offset]
        else:
            raw = self.lines[first][node.col_offset:] + b"".join(self.lines[first + 1:last])
            raw += self.lines[last][:node.end_col_offset]
        return raw.decode("utf-8", "replace")

    def column(self, lineno: int, col_offset: int) -> int:
        """A byte offset as a character column (1-based), as editors show it."""
        return len(self.lines[lineno - 1][:col_offset].decode("utf-8", "replace")) + 1


def _is_none_index(node: ast.AST) -> bool:
    return (isinstance(node, ast.Constant) and node.value is None) or (
        isinstance(node, ast.Attribute) and node.attr == "newaxis")


def _orig(node: ast.AST) -> ast.AST:
    """The node a hook wrapper stands for (static analysis looks through the wrappers)."""
    return getattr(node, "_sc_orig", node)


def _walk(node: ast.AST):
    """ast.walk, seeing the original operation inside each wrapper."""
    stack = [node]
    while stack:
        n = _orig(stack.pop())
        yield n
        stack.extend(ast.iter_child_nodes(n))


def _children(node: ast.AST) -> list[ast.AST]:
    """ast.iter_child_nodes, as a list (the rewriter's walks are its hot loops)."""
    out = []
    for field in node._fields:
        value = getattr(node, field, None)
        if isinstance(value, list):
            out.extend(v for v in value if isinstance(v, ast.AST))
        elif isinstance(value, ast.AST):
            out.append(value)
    return out


def spells_out_shape(node: ast.AST) -> bool:
    """True when the expression states a shape itself: `[:, None]`, np.newaxis, reshape, keepdims."""
    return any(_states_shape(sub) for sub in _walk(node))


def _states_shape(sub: ast.AST) -> bool:
    """The node itself (not its parts) states a shape."""
    if isinstance(sub, ast.Subscript):
        parts = sub.slice.elts if isinstance(sub.slice, ast.Tuple) else [sub.slice]
        return any(_is_none_index(p) for p in parts)
    if isinstance(sub, ast.Attribute):
        return sub.attr == "newaxis"
    if isinstance(sub, ast.Call):
        return _callee_name(sub.func) in EXPLICIT_CALLS or any(k.arg == "keepdims" and _truthy(k.value)
                                                              for k in sub.keywords)
    return False


def _truthy(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and bool(node.value)


def _callee_name(func: ast.AST) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def reduction_of(node: ast.AST) -> tuple[int | None, bool, ast.AST | None] | None:
    """(axis, keepdims, the array reduced) when the expression is a reduction like `np.sum(e, axis=1)`."""
    node = _orig(node)
    if not isinstance(node, ast.Call) or _callee_name(node.func) not in REDUCTIONS:
        return None
    is_method = isinstance(node.func, ast.Attribute) and not _looks_like_module(node.func.value)
    reduced = node.func.value if is_method else (node.args[0] if node.args else None)
    axis_node = None
    keepdims = False
    for k in node.keywords:
        if k.arg == "axis":
            axis_node = k.value
        elif k.arg == "keepdims":
            keepdims = _truthy(k.value)
    if axis_node is None:
        # np.sum(x, 1) takes the axis second; x.sum(1) takes it first.
        pos = 0 if is_method else 1
        if len(node.args) > pos:
            axis_node = node.args[pos]
    axis = None
    if isinstance(axis_node, ast.Constant) and isinstance(axis_node.value, int):
        axis = axis_node.value
    elif isinstance(axis_node, ast.UnaryOp) and isinstance(axis_node.op, ast.USub) and isinstance(
            axis_node.operand, ast.Constant):
        axis = -axis_node.operand.value
    return axis, keepdims, reduced


def reshaped_name(node: ast.AST) -> str | None:
    """`x` when the expression gives x a new shape on purpose: `x.reshape(-1, 1)`, `x[:, None]`,
    `np.expand_dims(x, 1)`, `x[:, np.newaxis]`."""
    node = _orig(node)
    if isinstance(node, ast.Call):
        name = _callee_name(node.func)
        if name in ("reshape", "expand_dims", "atleast_2d"):
            if isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name) and name == "reshape":
                return node.func.value.id
            if node.args and isinstance(node.args[0], ast.Name):
                return node.args[0].id
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
        parts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if any(_is_none_index(p) for p in parts):
            return node.value.id
    return None


def _looks_like_module(node: ast.AST, aliases: frozenset[str] = frozenset()) -> bool:
    while isinstance(node, ast.Attribute):
        node = node.value
    return isinstance(node, ast.Name) and (node.id in aliases or node.id in ("np", "pd", "numpy", "pandas"))


def _is_transpose(node: ast.AST) -> bool:
    node = _orig(node)
    if isinstance(node, ast.Attribute) and node.attr == "T":
        return True
    return isinstance(node, ast.Call) and _callee_name(node.func) == "transpose" and len(node.args) <= 1 and (
        isinstance(node.func, ast.Attribute) and not _looks_like_module(node.func.value) or len(node.args) == 1)


Loc = tuple[int, int, int, int]  # lineno, col_offset, end_lineno, end_col_offset (AST conventions)


def _pos(node: ast.AST) -> Loc:
    return node.lineno, node.col_offset, node.end_lineno, node.end_col_offset


def _at(node: ast.AST, loc: Loc) -> ast.AST:
    """`node` with location `loc` (a generated node: what it compiles to runs at that place)."""
    node.lineno, node.col_offset, node.end_lineno, node.end_col_offset = loc
    return node


def first_pos(node: ast.AST) -> Loc:
    """Where CPython starts evaluating an expression: the line a tracer sees first for it."""
    node = _orig(node)
    while True:
        nxt = _first_part(node)
        if nxt is None:
            return _pos(node)
        node = _orig(nxt)


def _first_part(node: ast.AST) -> ast.AST | None:
    """The part of an expression CPython evaluates first, if any."""
    if isinstance(node, ast.IfExp):
        return node.test
    if isinstance(node, (ast.BinOp, ast.Compare)):
        return node.left
    if isinstance(node, ast.BoolOp):
        return node.values[0]
    if isinstance(node, ast.Call):
        return node.func
    if isinstance(node, (ast.Attribute, ast.Subscript, ast.Starred, ast.NamedExpr, ast.Await)):
        return node.value
    if isinstance(node, ast.UnaryOp):
        return node.operand
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)) and node.elts:
        return node.elts[0]
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp)) and sys.version_info >= (3, 12):
        return node.generators[0].iter  # inlined since 3.12 (PEP 709): the iterable comes first
    return None


def _name(id_: str, loc: Loc | None = None) -> ast.Name:
    node = ast.Name(id=id_, ctx=ast.Load())
    return _at(node, loc) if loc else node


def _hook_call(hook: str, sid: int, args: list[ast.AST], start: ast.AST, then: Loc,
               first: Loc | None = None) -> ast.Call:
    """`hook(sid, *args)` for the expression `start`, placed so that a traced program shows a line
    tracer (debugger, coverage) and tracebacks exactly the plain program's lines: loading the hook and
    its site id where evaluating `start` begins, calling it at `then`, the location of what the plain
    program does next (the operation, or the store of an assignment)."""
    first = first_pos(start) if first is None else first  # `first`: first_pos(start), known to the caller
    return _at(ast.Call(func=_name(hook, first), args=[_at(ast.Constant(sid), first)] + args, keywords=[]), then)


def _is_docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def _is_literal(node: ast.AST) -> bool:
    """A display or constant: calling one is an error CPython warns about when compiling (SyntaxWarning)."""
    return isinstance(node, (ast.Constant, ast.Tuple, ast.List, ast.Dict, ast.Set, ast.JoinedStr, ast.ListComp,
                             ast.SetComp, ast.DictComp, ast.GeneratorExp))


class _Scope:
    def __init__(self, qualname: str, body: list[ast.stmt], assigned: dict[str, list[ast.AST]] | None = None):
        """`assigned`: the values assigned to each name in `body`'s own nodes, when a `_Survey` found them."""
        self.qualname = qualname
        if assigned is None:
            assigned = {}
            for node in _own_nodes(body):
                _note_assignment(node, (assigned,))
        self.assigned = assigned


def _note_assignment(node: ast.AST, owners: tuple[dict, ...]) -> None:
    if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for t in targets:
            if isinstance(t, ast.Name):
                for assigned in owners:
                    assigned.setdefault(t.id, []).append(node.value)


_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
# Nodes the rewriter never changes and that hold no node it would: visiting them returns them as they are.
_LEAVES = (ast.Name, ast.Constant, ast.expr_context, ast.operator, ast.unaryop, ast.cmpop, ast.boolop)


_BLOCKS = (ast.stmt, ast.excepthandler, ast.match_case)


def _statements(node: ast.AST) -> list[ast.AST]:
    """The statements directly in a statement (and its except and case clauses, which hold statements).
    Everything `_Survey` looks for is a statement, and an expression never holds one."""
    out = []
    for field in node._fields:
        value = getattr(node, field, None)
        if isinstance(value, list):
            out.extend(v for v in value if isinstance(v, _BLOCKS))
    return out


class _Survey:
    """What rewriting a module needs to know beforehand, found in one walk of its statements: the names
    bound to imported modules (`Rewriter.scan`), the functions and methods it defines, and each scope's
    assignments, as `_Scope` finds them in `_own_nodes` of the module's and of each def's and class's body.

    `_own_nodes` of a body descends into a def or class standing directly in that body (not into one
    nested deeper): an assignment in such a def's body belongs to its own scope and to the enclosing one.
    """

    def __init__(self, tree: ast.Module):
        self.modules: set[str] = set()
        self.functions: set[str] = set()
        self.methods: set[str] = set()
        module: dict[str, list[ast.AST]] = {}
        self.assigned: dict[ast.AST, dict[str, list[ast.AST]]] = {tree: module}
        # (node, the scopes owning it, the scope whose body holds it directly)
        stack = [(stmt, (module,), module) for stmt in reversed(tree.body)]
        while stack:
            node, owners, holder = stack.pop()
            if isinstance(node, _DEFS):
                own: dict[str, list[ast.AST]] = {}
                self.assigned[node] = own
                if isinstance(node, ast.ClassDef):
                    self.methods.update(b.name for b in node.body if isinstance(b, (ast.FunctionDef,
                                                                                     ast.AsyncFunctionDef)))
                else:
                    self.functions.add(node.name)
                inner = (own, holder) if holder is not None else (own,)
                stack.extend((stmt, inner, own) for stmt in reversed(node.body))
                continue
            if isinstance(node, ast.Import):
                for a in node.names:
                    self.modules.add(a.asname or a.name.split(".")[0])
            elif isinstance(node, ast.ImportFrom) and node.module:
                if node.module.split(".")[0] in MODULE_ROOTS:
                    for a in node.names:
                        self.modules.add(a.asname or a.name)
            elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Lambda):
                self.functions.update(t.id for t in node.targets if isinstance(t, ast.Name))
            _note_assignment(node, owners)
            stack.extend((child, owners, None) for child in _statements(node))


def _own_nodes(body: list[ast.stmt]):
    """Nodes of a scope's body, not descending into nested functions, classes or lambdas."""
    stack = list(body)
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                stack.append(child)


class Rewriter(ast.NodeTransformer):
    """Rewrite one module (or one function's source); collects the static `Site`s it creates."""

    def __init__(self, source: str, path: str, first_id: int = 0):
        # Sites are numbered from 0 while rewriting; when the whole module (or function) is rewritten,
        # their ids are claimed from the recorder in one step and the numbers shifted (`first_id` is
        # no longer used: another thread may claim ids between a caller's look-up and the rewrite).
        self.source = source
        self.src = _Source(source)
        self.path = path
        self.next_id = 0
        self.sites: list[Site] = []
        self.id_nodes: list[ast.Constant] = []  # every site id in the generated code
        self.untraced: list[int] = []  # lines of statements left as written (too deeply nested to rewrite)
        self._pristine: ast.Module | None = None
        self._depth = 0
        # Where each site's operation instruction sits (AST byte offsets): how a traceback is mapped
        # back to a site.  None for assignments, which never raise and share their value's position.
        self.positions: list[tuple[int, int, int, int] | None] = []
        self.lookups: dict[int, Loc] = {}  # method sites: where the method is looked up
        self.ignores = ignored_codes(source)
        self.modules: set[str] = set()
        self.scopes: list[_Scope] = []
        # Functions and methods defined in this module: when the whole module is rewritten their
        # bodies are traced, so calling them needs no hook of its own.
        self.user_functions: frozenset[str] = frozenset()
        self.user_methods: frozenset[str] = frozenset()
        # Each scope's assignments (see _Survey), when the whole module is rewritten: def or class -> name -> values
        self.assigned: dict[ast.AST, dict[str, list[ast.AST]]] = {}
        self._spells: dict[ast.AST, bool] = {}
        self._firsts: dict[ast.AST, Loc] = {}
        self._visitors: dict[type, object] = {}
        self._module_hooks: set[str] = set()  # hook names loaded by the module's own code (see `_module`)

    # -- walking: ast.NodeTransformer's, with the visitor looked up once a node type, and no call for
    # the leaves no visitor changes (names, constants, contexts, operators)

    def visit(self, node: ast.AST):
        visitor = self._visitors.get(type(node))
        if visitor is None:
            visitor = self._visitors[type(node)] = getattr(self, "visit_" + type(node).__name__, self.generic_visit)
        return visitor(node)

    def generic_visit(self, node: ast.AST) -> ast.AST:
        for field in node._fields:
            try:
                old_value = getattr(node, field)
            except AttributeError:
                continue
            if isinstance(old_value, list):
                new_values = []
                for value in old_value:
                    if isinstance(value, ast.AST) and not isinstance(value, _LEAVES):
                        value = self.visit(value)
                        if value is None:
                            continue
                        if not isinstance(value, ast.AST):
                            new_values.extend(value)
                            continue
                    new_values.append(value)
                old_value[:] = new_values
            elif isinstance(old_value, ast.AST) and not isinstance(old_value, _LEAVES):
                new_node = self.visit(old_value)
                if new_node is None:
                    delattr(node, field)
                else:
                    setattr(node, field, new_node)
        return node

    # -- scopes -----------------------------------------------------------

    def visit_Module(self, node: ast.Module) -> ast.Module:
        self._depth += 1
        try:
            node = self._module(node)
        finally:
            self._depth -= 1
        self._done()
        return node

    def _module(self, node: ast.Module) -> ast.Module:
        survey = _Survey(node)
        self.modules.update(survey.modules)
        self.user_functions = frozenset(survey.functions)
        self.user_methods = frozenset(survey.methods - ARRAY_METHODS)
        self.assigned = survey.assigned
        self.scopes.append(_Scope("<module>", node.body, self.assigned[node]))
        node.body = self._stmts(node.body)
        self.scopes.pop()
        if self._module_hooks:
            # Module code looks a free name up in three dicts (LOAD_NAME: locals, globals, builtins) at every
            # run; declared global, it is found by LOAD_GLOBAL, which caches where a builtin is (about a
            # tenth of a hook's cost, twice a hook).  A declaration compiles to nothing: no instruction, no
            # line event, no name in the module.  It goes after the docstring and the `__future__` imports.
            at = 1 if _is_docstring(node.body[0]) else 0
            while at < len(node.body) and isinstance(node.body[at], ast.ImportFrom) and \
                    node.body[at].module == "__future__":
                at += 1
            where = _pos(node.body[min(at, len(node.body) - 1)])
            node.body.insert(at, _at(ast.Global(names=sorted(self._module_hooks)), where))
        return node

    def _load(self, name: str, loc: Loc) -> ast.Name:
        """A hook's name, noted when it is loaded by the module's own code."""
        if len(self.scopes) == 1:
            self._module_hooks.add(name)
        return _name(name, loc)

    def scan(self, tree: ast.Module) -> None:
        """Note the names the module binds to imported modules (`np`, `pd`)."""
        for sub in ast.walk(tree):
            if isinstance(sub, ast.Import):
                for a in sub.names:
                    self.modules.add(a.asname or a.name.split(".")[0])
            elif isinstance(sub, ast.ImportFrom) and sub.module:
                root = sub.module.split(".")[0]
                if root in MODULE_ROOTS:
                    for a in sub.names:
                        self.modules.add(a.asname or a.name)

    def _qual(self, name: str) -> str:
        outer = self.scopes[-1].qualname if self.scopes else "<module>"
        return name if outer == "<module>" else f"{outer}.{name}"

    def visit_FunctionDef(self, node):
        # Decorators, defaults and annotations run once, at definition: left as written.
        self._depth += 1
        try:
            self.scopes.append(_Scope(self._qual(node.name), node.body, self.assigned.get(node)))
            node.body = self._stmts(node.body)
            self.scopes.pop()
        finally:
            self._depth -= 1
        self._done()
        return node

    def _done(self) -> None:
        """A def or the module rewritten: when it is the outermost (the unit rewritten), claim the ids."""
        if self._depth == 0 and self.sites:
            from . import _recorder  # the recorder imports this module

            def number(first: int) -> list[Site]:
                return [_shift(site, first) for site in self.sites]

            self.sites = _recorder.claim(number)
            first = self.sites[0].id
            for const in self.id_nodes:
                const.value += first
            self.lookups = {sid + first: pos for sid, pos in self.lookups.items()}
        if self._depth == 0 and self.untraced:
            from . import _recorder

            _recorder.STATE.untraced.extend(f"{self.path}:{line}" for line in self.untraced)

    def _first_pos(self, node: ast.AST) -> Loc:
        """`first_pos`, remembered by node: in `a + b + c` each operation's start is its left operand's."""
        path = []
        n = _orig(node)
        while (known := self._firsts.get(n)) is None:
            path.append(n)
            nxt = _first_part(n)
            if nxt is None:
                known = _pos(n)
                break
            n = _orig(nxt)
        for n in path:
            self._firsts[n] = known
        return known

    def _hook(self, hook: str, sid: int, args: list[ast.AST], start: ast.AST, then: Loc) -> ast.Call:
        if len(self.scopes) == 1:
            self._module_hooks.add(hook)
        call = _hook_call(hook, sid, args, start, then, self._first_pos(start))
        self.id_nodes.append(call.args[0])
        return call

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node):
        self.scopes.append(_Scope(self._qual(node.name), node.body, self.assigned.get(node)))
        node.body = self._stmts(node.body)
        self.scopes.pop()
        # A class body looks its free names up in its namespace first (LOAD_NAME), and a metaclass's
        # __prepare__ may log or refuse look-ups: declared global, the hooks are found without asking it.
        # A declaration compiles to nothing: no instruction, no line event.
        hooks = sorted({n.id for n in _own_nodes(node.body) if isinstance(n, ast.Name) and n.id.startswith("__sc_")})
        if hooks:
            at = 1 if ast.get_docstring(node, clean=False) is not None else 0
            node.body.insert(at, _at(ast.Global(names=hooks), _pos(node.body[at])))
        return node

    def visit_Lambda(self, node):
        self.scopes.append(_Scope(self._qual("<lambda>"), []))
        node.body = self.visit(node.body)
        self.scopes.pop()
        return node

    def visit_If(self, node):
        _mark_test(node.test)
        return self.generic_visit(node)

    visit_While = visit_If
    visit_Assert = visit_If

    def visit_IfExp(self, node):
        _mark_test(node.test)
        return self.generic_visit(node)

    def visit_comprehension(self, node):
        for cond in node.ifs:
            _mark_test(cond)
        return self.generic_visit(node)

    def visit_match_case(self, node):
        # Patterns are not expressions: only the guard and the body run as code.
        if node.guard is not None:
            _mark_test(node.guard)
            node.guard = self.visit(node.guard)
        node.body = self._stmts(node.body)
        return node

    def _stmts(self, body: list[ast.stmt]) -> list[ast.stmt]:
        out = []
        for stmt in body:
            new = self._statement(stmt)
            if isinstance(new, list):
                out.extend(new)
            elif new is not None:
                out.append(new)
        return out

    def _statement(self, stmt: ast.stmt):
        """One statement rewritten; one nested too deeply for this recursive rewriter (a 500-term sum) is
        left as written, and only it: the sites made for it are dropped."""
        marks = len(self.sites), len(self.id_nodes), len(self.scopes)
        try:
            return self.visit(stmt)
        except RecursionError:
            del self.sites[marks[0]:], self.positions[marks[0]:], self.id_nodes[marks[1]:], self.scopes[marks[2]:]
            self.lookups = {sid: pos for sid, pos in self.lookups.items() if sid < marks[0]}
            self.next_id = marks[0]
            self.untraced.append(stmt.lineno)
            return self._as_written(stmt)

    def _as_written(self, stmt: ast.stmt) -> ast.stmt:
        """The statement as parsed (the rewriter changes nodes in place): found again in a fresh parse."""
        if self._pristine is None:
            with AST_LOCK:
                self._pristine = ast.parse(self.source)
        want = (type(stmt), _pos(stmt))
        for node in ast.walk(self._pristine):
            if isinstance(node, ast.stmt) and (type(node), _pos(node)) == want:
                return node
        raise RecursionError("statement not found again")  # pragma: no cover - the file parsed once already

    # -- sites ------------------------------------------------------------

    def _spells_out_shape(self, node: ast.AST) -> bool:
        """`spells_out_shape`, remembered for every node below too: an operand's parts are operands of the
        sites within it, and a name's assigned values are asked at each of its uses.  (A node's answer
        never changes: it looks through the wrappers that rewriting adds, to the nodes as written.)"""
        memo = self._spells
        root = _orig(node)
        known = memo.get(root)
        if known is not None:
            return known
        stack = [(root, None)]
        while stack:
            n, kids = stack.pop()
            if kids is not None:  # its parts are known
                memo[n] = _states_shape(n) or any(memo[k] for k in kids)
            elif n not in memo:
                kids = [_orig(c) for c in _children(n)]
                stack.append((n, kids))
                stack.extend((k, None) for k in kids if k not in memo)
        return memo[root]

    def _site(self, node: ast.AST, kind: str, op: str, operands: list[ast.AST], texts: list[str] | None = None,
              **extra) -> int:
        sid = self.next_id
        self.next_id += 1
        texts = texts or [self.src.segment(o) for o in operands]
        specs = tuple(self._operand(o, t) for o, t in zip(operands, texts))
        ignore = frozenset().union(*(self.ignores.get(n, frozenset())
                                     for n in range(node.lineno, node.end_lineno + 1)))
        self.positions.append(None if kind == "assign" else
                              (node.lineno, node.col_offset, node.end_lineno, node.end_col_offset))
        self.sites.append(Site(
            id=sid, path=self.path, line=node.lineno, col=self.src.column(node.lineno, node.col_offset),
            end_line=node.end_lineno, end_col=self.src.column(node.end_lineno, node.end_col_offset),
            kind=kind, op=op, text=extra.pop("text", None) or self.src.segment(node), operands=specs,
            scope=self.scopes[-1].qualname if self.scopes else "<module>", ignore=ignore, **extra))
        return sid

    def _operand(self, node: ast.AST, text: str) -> OperandSpec:
        name = node.id if isinstance(node, ast.Name) else None
        explicit = self._spells_out_shape(node)
        red = reduction_of(node)
        by_name = False
        shaped_from = None
        if name is not None and self.scopes:
            # A name's own history in this scope: `s = np.sum(e, axis=1); e / s`, `sq_col = sq.reshape(-1, 1)`.
            values = self.scopes[-1].assigned.get(name, [])
            by_name = bool(values) and all(self._spells_out_shape(v) for v in values)
            bases = {reshaped_name(v) for v in values}
            if len(bases) == 1:
                shaped_from = bases.pop()
            reds = [reduction_of(v) for v in values]
            if values and all(reds) and len({(r[0], r[1], self.src.segment(r[2]) if r[2] else None)
                                             for r in reds}) == 1:
                red = reds[0]
        axis, keepdims, reduced = red if red else (None, False, None)
        return OperandSpec(text=text, name=name, child=getattr(node, "_sc_sid", None),
                           transposed=_is_transpose(node), explicit=explicit, shaped_by_name=by_name,
                           shaped_from=shaped_from, reduction_axis=axis if red else None, keepdims=keepdims,
                           reduced=self.src.segment(_orig(reduced)) if reduced is not None else None)

    def _wrap_op(self, node, fn: str, sid: int, left, right) -> ast.AST:
        op = _pos(node)
        pre = self._hook(HOOK_BINOP, sid, [left, right], node, op)
        new = _at(ast.Call(func=self._load(f"__sc_{fn}__", self._first_pos(node)),
                           args=[_at(ast.Starred(value=pre, ctx=ast.Load()), op)], keywords=[]), op)
        new._sc_sid = sid
        new._sc_orig = node
        return new

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        node = self.generic_visit(node)
        # A literal operand (`1 - s`, `0.5 * dw`, `x ** 2`) broadcasts as a scalar: it cannot be a
        # shape bug, and skipping it keeps the overhead of sigmoid-heavy code low.
        if _constant_only(node.left) or _constant_only(node.right):
            return node
        if _is_text(node.left) or _is_text(node.right):
            return node
        symbol, fn = BINOPS[type(node.op)]
        sid = self._site(node, "binop", symbol, [node.left, node.right])
        return self._wrap_op(node, fn, sid, node.left, node.right)

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        node = self.generic_visit(node)
        # Chained comparisons short-circuit and evaluate the middle once: left alone.  So are conditions
        # (`if a < b:`): CPython compiles them into a compare-and-jump located at the comparison, where
        # numpy's "truth value is ambiguous" error is then reported; a call would move it.
        if len(node.ops) != 1 or type(node.ops[0]) not in COMPARES or getattr(node, "_sc_test", False):
            return node
        right = node.comparators[0]
        if _constant_only(node.left) or _constant_only(right) or _is_text(node.left) or _is_text(right):
            return node
        symbol, fn = COMPARES[type(node.ops[0])]
        sid = self._site(node, "compare", symbol, [node.left, right])
        return self._wrap_op(node, fn, sid, node.left, right)

    def visit_Call(self, node: ast.Call) -> ast.AST:
        node = self.generic_visit(node)
        func = node.func
        name = _callee_name(func)
        # `*args` and `**kwargs` stay as written so that their error messages name the callee.
        if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
            return node
        if isinstance(func, ast.Name) and (name in SKIP_FUNCTIONS or name in self.user_functions):
            return node
        if _is_literal(func):
            return node
        is_method = isinstance(func, ast.Attribute) and not _looks_like_module(func.value, frozenset(self.modules))
        if is_method and (name in SKIP_METHODS or name in self.user_methods):
            return node
        # The hook's tuple holds one more reference to the receiver during the call: pandas' check for
        # chained assignment (`df["a"].fillna(0, inplace=True)`) and ndarray.resize count references.
        if is_method and (name in REFCOUNTED or any(k.arg == "inplace" for k in node.keywords)):
            return node
        # A method whose name is on a later line than the call's start (`(df\n .groupby(...))`): CPython
        # locates its call at the name, but a generator yields it at the start; one node cannot be both.
        if is_method and func.end_lineno != node.lineno:
            return node
        if not is_method and all(_constant_only(a) for a in node.args):
            return node  # np.zeros((3, 4)): no array goes in; the assignment records what comes out
        operands = ([func.value] if is_method else []) + list(node.args)
        keywords = tuple((k.arg, self.src.segment(k.value)) for k in node.keywords)
        explicit = name in EXPLICIT_CALLS or any(k == "keepdims" for k, _ in keywords)
        sid = self._site(node, "method" if is_method else "call", self.src.segment(func), operands,
                         callee=name, keywords=keywords, explicit=explicit)
        op = _pos(node)
        if is_method:
            # The lookup of the method raises AttributeError for a Series' missing numpy method: where
            # it is looked up (`x.meth`) is a site position too.
            self.lookups[sid] = _pos(func)
        hook = CALL_HOOKS.get((is_method, len(node.args)), HOOK_METHOD if is_method else HOOK_CALL)
        pre = self._hook(hook, sid, [func] + list(node.args), node, op)
        new = _at(ast.Call(func=self._load(CALL, self._first_pos(node)), args=[_at(ast.Starred(value=pre, ctx=ast.Load()), op)],
                           keywords=node.keywords), op)
        new._sc_sid = sid
        new._sc_orig = node
        return new

    def visit_Assign(self, node: ast.Assign) -> ast.AST:
        node.value = self.visit(node.value)
        node.targets = [self.visit(t) for t in node.targets]
        return self._assign(node, node.targets, node.value)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        if node.value is None:
            return node
        node.value = self.visit(node.value)
        node.target = self.visit(node.target)
        return self._assign(node, [node.target], node.value)

    def _assign(self, node, targets, value) -> ast.AST:
        if not all(isinstance(t, (ast.Name, ast.Attribute, ast.Subscript)) for t in targets):
            return node  # unpacking: `a, b = ...`
        if isinstance(value, _NOT_ARRAYS) or (isinstance(value, ast.Constant)):
            return node
        if any(isinstance(t, ast.Name) and t.id.startswith("__") and t.id.endswith("__") for t in targets):
            return node
        target_texts = tuple(self.src.segment(t) for t in targets)
        value_sid = getattr(value, "_sc_sid", None)
        # Shape drift is an update that changes a name's shape by accident (`b = b - lr * db`), not
        # one that says so (`y = y.reshape(-1, 1)`, `a2 = a2.T`, `x = x[:, 0]`).
        deliberate = self._spells_out_shape(value) or _is_transpose(value) or isinstance(value, (ast.Attribute,
                                                                                             ast.Subscript))
        self_refs = () if deliberate else tuple(self._self_refs(value, target_texts))
        glued = _glued_sign(self.src, node, targets, value)
        if value_sid is not None:
            vsite = self.sites[value_sid]
            if vsite.kind in ("binop", "compare") or vsite.callee in KNOWN_RESULTS:
                # The site's own record gives the value's shape: note the targets there instead of
                # paying for a hook on every run.
                self.sites[value_sid] = replace(vsite, targets=target_texts, self_refs=self_refs, glued_sign=glued)
                return node
        sid = self._site(value, "assign", "=", [], targets=target_texts, self_refs=self_refs,
                         value_of=getattr(value, "_sc_sid", None), glued_sign=glued)
        # Next in the plain program: the store into the target (or, for `a = b = v`, a copy at the statement).
        then = _pos(targets[0]) if len(targets) == 1 else _pos(node)
        node.value = self._hook(HOOK_ASSIGN, sid, [value], value, then)
        return node

    def _self_refs(self, value: ast.AST, targets: tuple[str, ...]):
        """(site, operand index) pairs reading an assigned target through elementwise operations only:
        `b = b - lr * db` updates b; `a = sigmoid(np.dot(w, a) + b)` moves a to the next layer."""
        sid = getattr(value, "_sc_sid", None)
        if sid is None:
            return
        site = self.sites[sid]
        if site.kind != "binop" or site.op == "@":
            return
        orig = value._sc_orig
        for i, operand in enumerate((orig.left, orig.right)):
            if site.operands[i].text in targets:
                yield sid, i
            else:
                yield from self._self_refs(operand, targets)

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST:
        node.value = self.visit(node.value)
        symbol, fn = BINOPS[type(node.op)]
        target = node.target
        if isinstance(target, ast.Name):
            # `x += v` is exactly `x = operator.iadd(x, v)`: load x, evaluate v, operate, store.
            sid = self._site(node, "augassign", symbol + "=", [target, node.value],
                             text=self.src.segment(node))
            inplace = "i" + fn.rstrip("_")
            call = self._wrap_op(node, inplace, sid, _name(target.id, _pos(target)), node.value)
            store = _at(ast.Name(id=target.id, ctx=ast.Store()), _pos(target))
            return _at(ast.Assign(targets=[store], value=call), _pos(node))
        # obj.attr += v, c[k] += v: the statement stays, so obj, c and k are evaluated once, in order, and
        # the hook sees only v.  The target is read if the statement fails, from the failing frame
        # (`aug_target` says how); a computed key (`params["b" + str(l)]`) is held on its way by.
        node.target = self.visit(target)
        texts = [self.src.segment(target), self.src.segment(node.value)]
        how = None
        if isinstance(target.value, ast.Name):
            if isinstance(target, ast.Attribute):
                how = ("attr", target.value.id, target.attr)
            elif isinstance(target.slice, ast.Name):
                how = ("item", target.value.id, ("name", target.slice.id))
            elif isinstance(target.slice, ast.Constant):
                how = ("item", target.value.id, ("const", target.slice.value))
            elif not _has_slice(target.slice):  # a slice is not an expression: no hook can take it
                how = ("item", target.value.id, ("held",))
        sid = self._site(node, "augassign", symbol + "=", [target, node.value], texts=texts,
                         text=self.src.segment(node), aug_target=how)
        if how is not None and how[2] == ("held",):
            target.slice = self._hook(HOOK_KEY, sid, [target.slice], target.slice, _pos(target))
        node.value = self._hook(HOOK_AUGVALUE, sid, [node.value], node.value, _pos(node))
        return node


def _shift(site: Site, first: int) -> Site:
    """A site numbered from 0 renumbered from `first`, with the ids it refers to."""
    return replace(site, id=site.id + first,
                   operands=tuple(replace(o, child=o.child + first) if o.child is not None else o
                                  for o in site.operands),
                   self_refs=tuple((sid + first, index) for sid, index in site.self_refs),
                   value_of=site.value_of + first if site.value_of is not None else None)


_GLUED = rb"\s*=[-+]"  # compiled at first use


def _glued_sign(src: _Source, node: ast.AST, targets: list, value: ast.AST) -> str | None:
    """` =-` for `x =- y` (SC501: `-=` was meant), `=-` for `x=-y`: the text from the target through a
    sign glued to `=`, read from the source, since the tree cannot tell `x =- y` from `x = -y`."""
    if not isinstance(node, ast.Assign) or len(targets) != 1:
        return None
    target, value = targets[0], _orig(value)
    if target.end_lineno != value.lineno:
        return None
    between = src.lines[value.lineno - 1][target.end_col_offset:value.col_offset + 1]
    return between.decode("ascii") if re.fullmatch(_GLUED, between) else None


def _mark_test(node: ast.AST) -> None:
    """Mark the comparisons CPython compiles as compare-and-jump in a condition (its compiler_jump_if):
    the condition itself, through `and`/`or`/`not` and conditional expressions."""
    if isinstance(node, ast.Compare):
        node._sc_test = True
    elif isinstance(node, ast.BoolOp):
        for v in node.values:
            _mark_test(v)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        _mark_test(node.operand)
    elif isinstance(node, ast.IfExp):
        for v in (node.test, node.body, node.orelse):
            _mark_test(v)


def _has_slice(node: ast.AST) -> bool:
    return isinstance(node, ast.Slice) or (isinstance(node, ast.Tuple) and any(isinstance(e, ast.Slice)
                                                                              for e in node.elts))


_NOT_ARRAYS = (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.JoinedStr,
               ast.Dict, ast.Set, ast.List, ast.Tuple)


_LITERAL_PARTS = (ast.Constant, ast.UnaryOp, ast.BinOp, ast.Tuple, ast.List, ast.Load, ast.unaryop, ast.operator)


def _constant_only(node: ast.AST) -> bool:
    """Built from literals alone (`2`, `-1`, `(3, 4)`): can never be an array.  (Stops at the first other
    node, before looking into its parts.)"""
    stack = [node]
    while stack:
        n = stack.pop()
        if not isinstance(n, _LITERAL_PARTS):
            return False
        stack.extend(_children(n))
    return True


def _is_text(node: ast.AST) -> bool:
    return isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)))


class Rewritten:
    """A compiled, rewritten module and what the recorder must know about its sites.

    Every code object in `code` carries the recorder's anchor among its constants (no instruction loads
    it): a library that ships a function by value to another process (cloudpickle, as joblib, dask and ray
    do) pickles the anchor with it, and unpickling it installs the hooks there, so the rewritten code runs.
    """

    __slots__ = ("code", "sites", "positions", "lookups")

    def __init__(self, code: types.CodeType | None, sites: list[Site],
                 positions: list[tuple[int, int, int, int] | None],  # parallel to sites
                 lookups: dict[int, tuple[int, int, int, int]]):  # method sites: where the method is looked up
        from ._recorder import ANCHOR  # the recorder imports this module

        # None: a notebook cell, which IPython compiles itself
        self.code = _anchored(code, ANCHOR) if code is not None else None
        self.sites = sites
        self.positions = positions
        self.lookups = lookups


def anchored(code: types.CodeType) -> types.CodeType:
    """Rewritten code, able to run in a process that unpickles it (see `_recorder.ANCHOR`)."""
    from ._recorder import ANCHOR

    return _anchored(code, ANCHOR)


def _anchored(code: types.CodeType, anchor) -> types.CodeType:
    consts = tuple(_anchored(c, anchor) if isinstance(c, types.CodeType) else c for c in code.co_consts)
    return code.replace(co_consts=consts + (anchor,))


@contextlib.contextmanager
def gc_paused():
    """No cyclic garbage collection meanwhile, when the process runs one thread (another could switch the
    collector off or on itself).  Parsing and rewriting allocate hundreds of thousands of nodes, none of
    them garbage yet, and the collections that triggers took half the time of rewriting a module."""
    if not gc.isenabled() or _thread._count() != 0:  # threads besides the main one
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def rewrite(source: str, filename: str, path: str, first_id: int, tree: ast.Module | None = None) -> Rewritten:
    """Rewrite and compile module source.

    `filename` is the real file name (tracebacks read the source from it); `path`
    is how reports show it.  Raises SyntaxError exactly as `compile` would.  The
    sites' ids are claimed from the recorder while rewriting (`first_id` is kept
    for the callers' sake and not used).
    """
    with gc_paused():
        if tree is None:
            with AST_LOCK:
                tree = ast.parse(source, filename)
        if opted_out(tree):
            with AST_LOCK:
                return Rewritten(compile(tree, filename, "exec", dont_inherit=True), [], [], {})
        rw = Rewriter(source, path, first_id)
        tree = rw.visit(tree)
        with AST_LOCK:
            code = compile(tree, filename, "exec", dont_inherit=True)
        return Rewritten(code, rw.sites, rw.positions, rw.lookups)
