"""An AST mutator that makes realistic one-statement slips in backward code, and each mutant's ground truth.

``mutants(name)`` lists every mutant of network ``name`` (a module of this
package) in a fixed order: the operators below applied, one edit at a time,
to every backward statement of the functions the module names in
``BACKWARD``. A mutant keeps the network's file name and line numbers, so a
report that names a line can be compared with ``Mutant.line``.
``truth(mutant)`` runs the mutant's gradient function next to the clean one
and says which tensors' gradients are wrong, and how (sign, scale k,
transpose, zero, shape) where the difference is exactly that.
"""

from __future__ import annotations

import ast
import copy
import importlib
import os
import re
import types
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np

# Gradient values: deeplearning.ai's dW1/dZ2, CS231n's dx/dout, nnfs's dweights, Nielsen's nabla_w/delta.
_GRAD = re.compile(r"^(d[A-Za-z]\w*|delta\w*|nabla\w*|grads|gradients)$")
_NOT_GRAD = {"dtype", "data", "dims"}
_COUNT = re.compile(r"^(m|N|n_samples|samples|num_train|batch_size)$")
_KEEP = re.compile(r"^keep_prob$")
_MASK = re.compile(r"^(D\d+|mask\w*)$")
_REG = re.compile(r"^(lambd|lmbda|reg|weight_regularizer_l1|weight_regularizer_l2|bias_regularizer_l2)$")
# An activation's derivative is taken of the array paired with the right one.
_PAIRS = (("z", "activation"), ("zs", "activations"), ("inputs", "output"))

REL_TOL = 1e-9  # a tensor's gradient is wrong when ||mutant - clean|| > REL_TOL * scale


@dataclass(frozen=True)
class Mutant:
    """One slip: the operator, the line of the edited statement, the statement before and after."""

    network: str
    op: str
    line: int
    before: str
    after: str
    # Where and what: (function index, body index, statement index, new statements), or for
    # "read after update" (function index, body index, j, i): statement i moved before j.
    edit: tuple = field(repr=False)

    def tree(self) -> ast.Module:
        """The mutated module's AST (the network's source re-parsed, then this one edit)."""
        mod = network(self.network)
        tree = ast.parse(_source(mod))
        fi, bi, a, b = self.edit
        body = list(_bodies(_functions(tree, tuple(mod.BACKWARD))[fi]))[bi]
        if isinstance(b, int):
            body.insert(a, body.pop(b))
        else:
            body[a:a + 1] = b
        return tree

    def load(self) -> types.ModuleType:
        """The mutated network as a fresh module (its file name and line numbers are the network's)."""
        clean = network(self.network)
        mod = types.ModuleType(f"{clean.__name__}__mutant")
        mod.__file__ = clean.__file__
        exec(compile(self.tree(), clean.__file__, "exec"), mod.__dict__)
        return mod


def mutated_source(mutant: "Mutant") -> str | None:
    """The mutant as source text with every line where it was (the edited statement on its own first line,
    padded with blank lines), so that a file holding it runs the code its lines show; None when the edit
    cannot be written that way (a statement moved before a compound one)."""
    mod = network(mutant.network)
    text = _source(mod)
    lines = text.splitlines(keepends=True)
    tree = ast.parse(text)
    fi, bi, a, b = mutant.edit
    body = list(_bodies(_functions(tree, tuple(mod.BACKWARD))[fi]))[bi]

    def put(stmt: ast.stmt, new_text: str) -> None:
        indent = lines[stmt.lineno - 1][:stmt.col_offset]
        lines[stmt.lineno - 1] = indent + new_text + "\n"
        for k in range(stmt.lineno, stmt.end_lineno):
            lines[k] = "\n"

    if isinstance(b, int):  # statement b moved before statement a: `update; read` on a's line
        if not all(isinstance(body[k], _SIMPLE) for k in (a, b)):
            return None
        put(body[a], mutant.after)
        put(body[b], "pass")
    else:
        if not isinstance(body[a], _SIMPLE) or len(b) != 1:
            return None
        put(body[a], ast.unparse(b[0]))
    out = "".join(lines)
    try:
        compile(out, mod.__file__, "exec")
    except SyntaxError:
        return None
    return out


_SIMPLE = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr, ast.Return, ast.Pass)


def load_file(mutant: "Mutant", directory: str) -> types.ModuleType | None:
    """The mutant loaded from a file of its own in ``directory`` (its lines where the network has them),
    so that tools reading a function's source see the mutant's; None when it cannot be written so."""
    text = mutated_source(mutant)
    if text is None:
        return None
    clean = network(mutant.network)
    path = os.path.join(directory, f"{mutant.network}__{abs(hash((mutant.line, mutant.op, mutant.after)))}.py")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    mod = types.ModuleType(f"{clean.__name__}__mutant")
    mod.__file__ = path
    exec(compile(text, path, "exec"), mod.__dict__)
    return mod


def _source(mod: types.ModuleType) -> str:
    with open(mod.__file__, encoding="utf-8") as f:
        return f.read()


@dataclass(frozen=True)
class Truth:
    """Which tensors a mutant gets wrong; per wrong tensor the exact patterns and the scale factor if any."""

    wrong: frozenset
    patterns: dict  # name -> frozenset of "sign", "scale", "transpose", "zero", "shape" (empty: no simple pattern)
    factors: dict  # name -> k where the mutant is exactly k times the clean gradient


def network(name: str) -> types.ModuleType:
    """The clean network module ``name`` of this package."""
    return importlib.import_module(f"{__package__}.{name}")


# ---- parameters and gradients as flat {name: array} -------------------------------------------------------

def _path_name(path: tuple) -> str:
    # The names people write (and gradcheck's rows use): W1, weights[0], layers[0].W.
    out = ""
    for key in path:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out


def leaves(params: Any, path: tuple = ()) -> Iterator[tuple[str, tuple, np.ndarray]]:
    """(name, path, array) for every array in a nest of dicts and lists, in order."""
    if isinstance(params, dict):
        for key, value in params.items():
            yield from leaves(value, path + (key,))
    elif isinstance(params, (list, tuple)):
        for i, value in enumerate(params):
            yield from leaves(value, path + (i,))
    else:
        yield _path_name(path), path, params


def lookup(grads: Any, path: tuple) -> np.ndarray | None:
    """The gradient of the parameter at ``path`` (a key k is also looked up as "d" + k); None when absent."""
    node = grads
    for key in path:
        if isinstance(node, dict):
            key = key if key in node else "d" + str(key)
            if key not in node:
                return None
            node = node[key]
        elif isinstance(node, (list, tuple)) and isinstance(key, int) and key < len(node):
            node = node[key]
        else:
            return None
    return None if node is None else np.asarray(node, dtype=np.float64)


def flat_gradients(grads: Any, params: Any) -> dict[str, np.ndarray | None]:
    return {name: lookup(grads, path) for name, path, _ in leaves(params)}


def _close(a: np.ndarray, b: np.ndarray, scale: float) -> bool:
    return bool(np.linalg.norm(a - b) <= REL_TOL * scale)


def compare(clean: dict, mutant: dict) -> Truth:
    """Ground truth from the two gradients, tensor by tensor (norms over the whole tensor)."""
    # Scale of "equal": the tensor's own norm, floored by the network's largest so a
    # gradient that is zero up to round-off cannot be "wrong" by round-off alone.
    floor = 1e-6 * max(float(np.linalg.norm(g)) for g in clean.values())
    wrong, patterns, factors = set(), {}, {}
    for name, c in clean.items():
        g = mutant.get(name)
        if g is None or not np.all(np.isfinite(g)):
            wrong.add(name)
            patterns[name] = frozenset({"shape"}) if g is None else frozenset()
            continue
        scale = max(float(np.linalg.norm(c)), float(np.linalg.norm(g)), floor)
        if g.shape != c.shape:
            found = {"shape"}
            if g.T.shape == c.shape and _close(g.T, c, scale):
                found.add("transpose")
            wrong.add(name)
            patterns[name] = frozenset(found)
            continue
        if _close(g, c, scale):
            continue
        wrong.add(name)
        found = set()
        cc = float(np.vdot(c, c))
        k = float(np.vdot(g, c) / cc) if cc > 0 else float("nan")
        if not np.any(g):
            found.add("zero")
        elif np.isfinite(k) and _close(g, k * c, scale):
            if abs(k + 1) <= 1e-9:
                found.add("sign")
            else:
                found.add("scale")
                factors[name] = k
        if c.ndim == 2 and c.shape[0] == c.shape[1] and _close(g, c.T, scale):
            found.add("transpose")
        patterns[name] = frozenset(found)
    return Truth(frozenset(wrong), patterns, factors)


def classify(mutant: Mutant, seed: int = 0) -> tuple[str, Truth | None]:
    """("crash" | "unchanged" | "shape-incompatible" | "valid", truth): mutants that are not valid are skipped.

    A swap of two gradients counts only when they have the same shape (otherwise
    it is a shape error, which other operators already make).
    """
    try:
        t = truth(mutant, seed)
    except Exception:
        return "crash", None
    if not t.wrong:
        return "unchanged", t
    if mutant.op == "swapped" and any("shape" in p for p in t.patterns.values()):
        return "shape-incompatible", t
    return "valid", t


def truth(mutant: Mutant, seed: int = 0) -> Truth:
    """The mutant's ground truth on the network's data for ``seed`` (float64). Raises what the mutant raises."""
    _, grads, params = network(mutant.network).problem(seed)
    _, bad_grads, _ = mutant.load().problem(seed)
    with np.errstate(all="ignore"):
        clean = flat_gradients(grads(params), params)
        wrong = flat_gradients(bad_grads(params), params)
    return compare(clean, wrong)


# ---- reading the AST ------------------------------------------------------------------------------------

def _root(node: ast.AST) -> str | None:
    # The variable a target or value stands for: grads["W2"] -> grads, self.dweights -> dweights.
    while isinstance(node, (ast.Subscript, ast.Starred)):
        node = node.value
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _is_grad(node: ast.AST) -> bool:
    name = _root(node)
    return name is not None and name not in _NOT_GRAD and bool(_GRAD.match(name))


def _targets(stmt: ast.stmt) -> list[ast.AST]:
    if isinstance(stmt, ast.Assign):
        out = []
        for t in stmt.targets:
            out.extend(t.elts if isinstance(t, ast.Tuple) else [t])
        return out
    if isinstance(stmt, ast.AugAssign):
        return [stmt.target]
    return []


def _grad_assignment(stmt: ast.stmt, scope: "_Scope | None" = None) -> bool:
    """Does ``stmt`` compute a gradient (or, in a derivative helper such as sigmoid_prime, return one)?"""
    if any(_is_grad(t) for t in _targets(stmt)):
        return True
    if scope is None:
        return False
    if isinstance(stmt, ast.Return) and scope.returns_grad:
        return stmt.value is not None and not isinstance(stmt.value, ast.Tuple)
    return any(isinstance(t, ast.Name) and t.id in scope.derived for t in _targets(stmt))


def _names(node: ast.AST) -> set[str]:
    """Variable and attribute names read or written anywhere in ``node``."""
    out = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            out.add(n.id)
        elif isinstance(n, ast.Attribute):
            out.add(n.attr)
    return out


def _has(node: ast.AST, pattern: re.Pattern) -> bool:
    return any(pattern.match(name) for name in _names(node))


def _is_derivative(node: ast.AST, derived: set[str]) -> bool:
    """An activation's derivative: 1 - A ** 2, (1 - s) * s, Z > 0, sigmoid_prime(z), or a name bound to one."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub) and isinstance(node.left, ast.Constant) \
            and node.left.value == 1:
        return True
    if isinstance(node, ast.Compare) and any(isinstance(c, ast.Constant) and c.value == 0 for c in node.comparators):
        return True
    if isinstance(node, ast.Call):
        fname = _root(node.func) or ""
        if "prime" in fname or "deriv" in fname:
            return True
        if fname in ("int64", "float64", "astype") and node.args and _is_derivative(node.args[0], derived):
            return True
    return isinstance(node, ast.Name) and node.id in derived


def _count_expr(node: ast.AST) -> bool:
    # A batch size: m, N, samples, len(mini_batch), X.shape[1].
    if isinstance(node, ast.Name):
        return bool(_COUNT.match(node.id))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "len":
        return True
    return isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and node.value.attr == "shape"


def _matmul(node: ast.AST) -> tuple[ast.AST, ast.AST] | None:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
        return node.left, node.right
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        if node.func.attr in ("dot", "matmul") and len(node.args) == 2:
            return node.args[0], node.args[1]
        if node.func.attr == "dot" and len(node.args) == 1:
            return node.func.value, node.args[0]
    return None


def _sum_call(node: ast.AST) -> ast.AST | None:
    """The array summed by np.sum(x, axis=...) or x.sum(axis=...), when an axis is given."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "sum"):
        return None
    if not any(k.arg == "axis" for k in node.keywords):
        return None
    if isinstance(node.func.value, ast.Name) and node.func.value.id == "np":
        return node.args[0] if node.args else None
    return node.func.value


# ---- building replacement nodes ---------------------------------------------------------------------------

def _expr(code: str) -> ast.expr:
    return ast.parse(code, mode="eval").body


def _wrap(code: str, node: ast.AST) -> ast.expr:
    """``code`` with the placeholder _ replaced by ``node``: _wrap("2 * _", value)."""
    return _Fill(node).visit(_expr(code))


class _Fill(ast.NodeTransformer):
    def __init__(self, node: ast.AST):
        self.node = node

    def visit_Name(self, n: ast.Name) -> ast.AST:
        return self.node if n.id == "_" else n


def _transposed(node: ast.AST) -> ast.expr:
    # x.T -> x, x.transpose() -> x, anything else -> (x).T
    if isinstance(node, ast.Attribute) and node.attr == "T":
        return node.value
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "transpose" \
            and not node.args:
        return node.func.value
    return ast.Attribute(value=node, attr="T", ctx=ast.Load())


class _Replace(ast.NodeTransformer):
    def __init__(self, target: ast.AST, new: ast.AST):
        self.target, self.new = target, new

    def visit(self, node: ast.AST) -> Any:
        if node is self.target:
            return self.new
        return super().visit(node)


def _edits(stmt: ast.stmt, match: Callable[[ast.AST], bool],
           make: Callable[[ast.AST], list[ast.AST]]) -> Iterator[ast.stmt]:
    """A copy of ``stmt`` for each matching node and each replacement ``make`` gives for it (walk order)."""
    count = sum(1 for n in ast.walk(stmt) if match(n))
    for k in range(count):
        probe = copy.deepcopy(stmt)
        for j in range(len(make([n for n in ast.walk(probe) if match(n)][k]))):
            fresh = copy.deepcopy(stmt)
            node = [n for n in ast.walk(fresh) if match(n)][k]
            new = make(node)[j]
            yield new if node is fresh else _Replace(node, new).visit(fresh)


def _value_edit(stmt: ast.stmt, code: str) -> ast.stmt:
    out = copy.deepcopy(stmt)
    out.value = _wrap(code, out.value)
    return out


def _single(stmt: ast.stmt) -> bool:
    """An assignment of one array to one target (not a dict of gradients, not tuple unpacking)."""
    return isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and not isinstance(stmt.targets[0], ast.Tuple) \
        and not isinstance(stmt.value, (ast.Dict, ast.List, ast.ListComp, ast.Tuple))


def _pass(stmt: ast.stmt) -> ast.stmt:
    return ast.copy_location(ast.Pass(), stmt)


# ---- the operators: each yields (operator, new statement) for one backward statement ---------------------------

@dataclass
class _Scope:
    bound: set  # names bound in the function (arguments, assignments, loop variables)
    count: str | None  # the function's batch-size name, when it has one
    derived: set  # names bound to an activation's derivative (Nielsen's sp)
    returns_grad: bool  # a derivative helper (sigmoid_prime, cost_derivative): its return value is a gradient


def _sign(stmt, scope):
    if (_single(stmt) or isinstance(stmt, ast.Return)) and _grad_assignment(stmt, scope):
        yield "sign", _value_edit(stmt, "-(_)")
    if isinstance(stmt, ast.AugAssign) and _grad_assignment(stmt, scope) and isinstance(stmt.op, (ast.Add, ast.Sub)):
        out = copy.deepcopy(stmt)
        out.op = ast.Sub() if isinstance(stmt.op, ast.Add) else ast.Add()
        yield "sign", out
    if _grad_assignment(stmt, scope):
        def swap(n):
            return [ast.BinOp(left=n.right, op=ast.Sub(), right=n.left)]
        for new in _edits(stmt, lambda n: isinstance(n, ast.BinOp) and isinstance(n.op, ast.Sub)
                          and not isinstance(n.left, ast.Constant) and not isinstance(n.right, ast.Constant), swap):
            yield "sign", new


def _double(stmt, scope):
    if (_single(stmt) or isinstance(stmt, (ast.AugAssign, ast.Return))) and _grad_assignment(stmt, scope):
        yield "x2", _value_edit(stmt, "2 * _")


def _batch(stmt, scope):
    """1/m dropped or added, N instead of N - 1, dropout's 1/keep_prob or mask dropped."""
    if not _grad_assignment(stmt, scope):
        return
    div = lambda n: isinstance(n, ast.BinOp) and isinstance(n.op, ast.Div)  # noqa: E731
    for new in _edits(stmt, lambda n: div(n) and _count_expr(n.right), lambda n: [n.left]):
        yield "1/m dropped", new
    for new in _edits(stmt, lambda n: div(n) and _count_expr(n.right),
                      lambda n: [ast.BinOp(left=n.left, op=ast.Div(), right=_wrap("_ - 1", n.right))]):
        yield "N-1", new
    for new in _edits(stmt, lambda n: div(n) and _has(n.right, _KEEP), lambda n: [n.left]):
        yield "dropout", new
    mult = lambda n: isinstance(n, ast.BinOp) and isinstance(n.op, ast.Mult)  # noqa: E731
    for new in _edits(stmt, lambda n: mult(n) and (_has(n.right, _MASK) or _has(n.left, _MASK)),
                      lambda n: [n.left if _has(n.right, _MASK) else n.right]):
        yield "dropout", new
    if isinstance(stmt, ast.AugAssign) and isinstance(stmt.op, ast.Div):  # dx /= N left out
        if _count_expr(stmt.value):
            yield "1/m dropped", _pass(stmt)
        elif _has(stmt.value, _KEEP):
            yield "dropout", _pass(stmt)
    if _single(stmt) and scope.count and not _has(stmt.value, re.compile(f"^{scope.count}$")):
        yield "1/m added", _value_edit(stmt, f"_ / {scope.count}")


def _regulariser(stmt, scope):
    if not _grad_assignment(stmt, scope):
        return
    if isinstance(stmt, ast.AugAssign) and _has(stmt.value, _REG):
        yield "reg missing", _pass(stmt)
        yield "reg doubled", _value_edit(stmt, "2 * _")
        yield "reg halved", _value_edit(stmt, "0.5 * _")
        return
    add = lambda n: isinstance(n, ast.BinOp) and isinstance(n.op, ast.Add) and (  # noqa: E731
        _has(n.left, _REG) != _has(n.right, _REG))
    for how, code in (("reg missing", None), ("reg doubled", "2 * _"), ("reg halved", "0.5 * _")):
        def make(n, code=code):
            reg_right = _has(n.right, _REG)
            term, other = (n.right, n.left) if reg_right else (n.left, n.right)
            if code is None:
                return [other]
            term = _wrap(code, term)
            return [ast.BinOp(left=n.left, op=ast.Add(), right=term) if reg_right
                    else ast.BinOp(left=term, op=ast.Add(), right=n.right)]
        for new in _edits(stmt, add, make):
            yield how, new


def _transpose(stmt, scope):
    if not _grad_assignment(stmt, scope):
        return
    is_t = lambda n: (isinstance(n, ast.Attribute) and n.attr == "T") or (  # noqa: E731
        isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "transpose" and not n.args)
    for new in _edits(stmt, is_t, lambda n: [_transposed(n)]):
        yield "transpose removed", new

    def swapped(n):
        # np.dot(dZ, A.T) -> np.dot(A, dZ.T): the factors of a matmul swapped, i.e. the result transposed.
        a, b = _matmul(n)
        if isinstance(n, ast.BinOp):
            return [ast.BinOp(left=_transposed(b), op=ast.MatMult(), right=_transposed(a))]
        if len(n.args) == 2:
            return [ast.Call(func=n.func, args=[_transposed(b), _transposed(a)], keywords=[])]
        return [ast.Call(func=ast.Attribute(value=_transposed(b), attr="dot", ctx=ast.Load()),
                         args=[_transposed(a)], keywords=[])]
    for new in _edits(stmt, lambda n: _matmul(n) is not None, swapped):
        yield "transpose added", new


def _sums(stmt, scope):
    if not _grad_assignment(stmt, scope):
        return
    for new in _edits(stmt, lambda n: _sum_call(n) is not None, lambda n: [_sum_call(n)]):
        yield "bias not summed", new

    def other_axis(n):
        out = []
        for k in n.keywords:
            if k.arg == "axis" and isinstance(k.value, ast.Constant) and k.value.value in (0, 1):
                k.value = ast.Constant(1 - k.value.value)
                out.append(n)
        return out
    for new in _edits(stmt, lambda n: _sum_call(n) is not None, other_axis):
        yield "sum wrong axis", new


def _activation(stmt, scope):
    """The derivative taken of the paired array (Z for A, z for the activation, inputs for output, t - 1 for t), or dropped."""
    if not _grad_assignment(stmt, scope):
        return
    inside = set()
    for n in ast.walk(stmt):
        if _is_derivative(n, scope.derived) and not isinstance(n, ast.Name):
            inside |= {id(x) for x in ast.walk(n)}
    swaps: dict = {}
    for n in ast.walk(stmt):
        if id(n) not in inside:
            continue
        name = n.id if isinstance(n, ast.Name) else n.attr if isinstance(n, ast.Attribute) else None
        for old, new in _pairs(name, scope):
            swaps.setdefault((type(n), old), new)
        if isinstance(n, ast.Subscript) and isinstance(n.slice, ast.Name) and n.slice.id == "t":
            swaps.setdefault((ast.Subscript, ast.unparse(n)), None)
    for (kind, old), new in swaps.items():
        out = copy.deepcopy(stmt)
        for n in ast.walk(out):
            if kind is ast.Name and isinstance(n, ast.Name) and n.id == old:
                n.id = new
            elif kind is ast.Attribute and isinstance(n, ast.Attribute) and n.attr == old:
                n.attr = new
            elif kind is ast.Subscript and isinstance(n, ast.Subscript) and ast.unparse(n) == old:
                n.slice = _expr("t - 1")
        yield "activation wrong array", out

    def drop(n):
        if isinstance(n, ast.BinOp):
            return [n.left if _is_derivative(n.right, scope.derived) else n.right]
        return [n.args[0] if _is_derivative(n.args[1], scope.derived) else n.args[1]]
    mult = lambda n: (isinstance(n, ast.BinOp) and isinstance(n.op, ast.Mult) and (  # noqa: E731
        _is_derivative(n.left, scope.derived) or _is_derivative(n.right, scope.derived))) or (
        isinstance(n, ast.Call) and _root(n.func) == "multiply" and len(n.args) == 2
        and any(_is_derivative(a, scope.derived) for a in n.args))
    for new in _edits(stmt, mult, drop):
        yield "activation dropped", new
    # CS231n/nnfs ReLU: dx[x <= 0] = 0 left out.
    if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Subscript) and _is_derivative(t.slice, scope.derived)
                                             for t in stmt.targets):
        yield "activation dropped", _pass(stmt)


def _pairs(name: str | None, scope: _Scope) -> list[tuple[str, str]]:
    if not name:
        return []
    out = []
    m = re.match(r"^([ZAza])(\d+)$", name)
    if m:
        other = {"Z": "A", "A": "Z", "z": "a", "a": "z"}[m.group(1)] + m.group(2)
        if other in scope.bound:
            out.append((name, other))
    for a, b in _PAIRS:
        for old, new in ((a, b), (b, a)):
            if name == old and (new in scope.bound or name in ("inputs", "output")):
                out.append((old, new))
    return out


def _swap(stmt, scope):
    """Two gradients of the same kind swapped: in a return tuple, a dict display, or tuple targets."""
    seqs = []
    if isinstance(stmt, ast.Return) and isinstance(stmt.value, ast.Tuple):
        seqs.append(("value", "elts"))
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Tuple):
        seqs.append(("target", "elts"))
    if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Dict) and _grad_assignment(stmt, scope):
        seqs.append(("value", "values"))
    for where, fld in seqs:
        node = stmt.value if where == "value" else stmt.targets[0]
        items = getattr(node, fld)
        idx = [i for i, e in enumerate(items) if _is_grad(e)]
        for a in range(len(idx)):
            for b in range(a + 1, len(idx)):
                out = copy.deepcopy(stmt)
                seq = getattr(out.value if where == "value" else out.targets[0], fld)
                i, j = idx[a], idx[b]
                seq[i], seq[j] = seq[j], seq[i]
                yield "swapped", out


def _zero(stmt, scope):
    if not _grad_assignment(stmt, scope):
        return
    if _single(stmt):
        yield "zeroed", _value_edit(stmt, "np.zeros_like(_)")
    if isinstance(stmt, ast.AugAssign) and isinstance(stmt.op, (ast.Add, ast.Sub)) and not _has(stmt.value, _REG):
        yield "zeroed", _pass(stmt)


OPERATORS = (_sign, _regulariser, _batch, _double, _transpose, _sums, _activation, _swap, _zero)


# ---- walking the backward functions ---------------------------------------------------------------------

def _functions(tree: ast.Module, qualnames: tuple) -> list[ast.FunctionDef]:
    found = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            found[node.name] = node
        elif isinstance(node, ast.ClassDef):
            for sub in node.body:
                if isinstance(sub, ast.FunctionDef):
                    found[f"{node.name}.{sub.name}"] = sub
    missing = [q for q in qualnames if q not in found]
    if missing:
        raise ValueError(f"BACKWARD names functions the module does not define: {', '.join(missing)}")
    return [found[q] for q in qualnames]


def _scope(fn: ast.FunctionDef) -> _Scope:
    bound = {a.arg for a in fn.args.args}
    derived = set()
    for n in ast.walk(fn):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
            bound.add(n.id)
        if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name) \
                and _is_derivative(n.value, set()):
            derived.add(n.targets[0].id)
    count = next((b for b in ("m", "N", "samples") if b in bound), None)
    return _Scope(bound, count, derived, bool(re.search(r"prime|deriv", fn.name)))


def _bodies(node: ast.AST) -> Iterator[list]:
    """Every statement list under ``node`` (function body, loop and branch bodies), outermost first."""
    for fld in ("body", "orelse"):
        body = getattr(node, fld, None)
        if isinstance(body, list) and body and isinstance(body[0], ast.stmt):
            yield body
            for stmt in body:
                yield from _bodies(stmt)


def _update_reads(body: list) -> Iterator[tuple[int, int]]:
    """(j, i): statement i updates a weight in place (w -= lr * dw) and the earlier statement j reads it;
    moving i before j is the slip "weight read after its update" when i's inputs are ready by then."""
    for i, stmt in enumerate(body):
        if not (isinstance(stmt, ast.AugAssign) and isinstance(stmt.op, ast.Sub)
                and any("learning_rate" in n or n == "lr" for n in _names(stmt.value))):
            continue
        weight = ast.unparse(stmt.target)
        reads = _exprs(stmt.value)
        for j in range(i - 1, -1, -1):
            # The update must not move past a statement that writes what it reads.
            if _writes(body[j]) & reads:
                break
            if any(ast.unparse(n) == weight for n in ast.walk(body[j]) if isinstance(n, (ast.Attribute, ast.Name))):
                yield j, i


def _exprs(node: ast.AST) -> set[str]:
    return {ast.unparse(n) for n in ast.walk(node) if isinstance(n, (ast.Name, ast.Attribute))}


def _writes(stmt: ast.stmt) -> set[str]:
    """What ``stmt`` (and any statement nested in it) assigns, as source text: self.dweights, dL1."""
    out = set()
    for s in ast.walk(stmt):
        for t in _targets(s) if isinstance(s, ast.stmt) else ():
            while isinstance(t, ast.Subscript):
                t = t.value
            out.add(ast.unparse(t))
    return out


def mutants(name: str) -> list[Mutant]:
    """Every mutant of network ``name``, in a fixed order (the same on every run)."""
    mod = network(name)
    tree = ast.parse(_source(mod))
    out = []
    seen = set()  # two operators can make the same edit (x2 and "reg doubled" on `dW += reg * W`)
    for fi, fn in enumerate(_functions(tree, tuple(mod.BACKWARD))):
        scope = _scope(fn)
        for bi, body in enumerate(_bodies(fn)):
            for si, stmt in enumerate(body):
                if isinstance(stmt, (ast.For, ast.If, ast.While, ast.With)):
                    continue  # their bodies are visited on their own
                for op in OPERATORS:
                    for label, new in op(stmt, scope):
                        _place(new, stmt)
                        if (stmt.lineno, ast.dump(new)) in seen:
                            continue
                        seen.add((stmt.lineno, ast.dump(new)))
                        out.append(Mutant(name, label, stmt.lineno, ast.unparse(stmt), ast.unparse(new),
                                          (fi, bi, si, [new])))
            for j, i in _update_reads(body):
                read = body[j]
                out.append(Mutant(name, "read after update", read.lineno, ast.unparse(read),
                                  f"{ast.unparse(body[i])}; {ast.unparse(read)}", (fi, bi, j, i)))
    return out


def _place(new: ast.stmt, stmt: ast.stmt) -> None:
    """Give the new statement the edited one's line: nodes parsed from a template sit at line 1."""
    for n in ast.walk(new):
        if not (stmt.lineno <= getattr(n, "lineno", 0) <= stmt.end_lineno):
            ast.copy_location(n, stmt)
