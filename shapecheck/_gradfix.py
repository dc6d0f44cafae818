"""From a wrong gradient to the statement that computed it, its backward chain, and a verified fix.

Runs only when rows failed. The gradient function is called once under the
line tracer of ``_gradsource`` (the loss once more, to tell the forward pass
from the backward one); each failed row gets the statement that produced the
array returned for it and the chain of backward statements it was computed
from, back to arrays that also fed a gradient that checked ok. Candidate
one-line edits implied by the diagnosis (sign, a named dimension, a
transpose, the reduction, another array of the same shape) are compiled in
memory into a copy of the function's code, swapped in for one call at a time
and checked again: only an edit with which the affected gradients pass is
shown. Files are never written; the user's functions get their own code back
before this returns.
"""

from __future__ import annotations

import ast
import contextlib
import contextvars
import dataclasses
import gc
import hashlib
import linecache
import re
import types
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _gradsource, _gradtree
from ._graddiag import GradDiagnosis, _and
from ._gradsource import Node

MAX_CANDIDATES = 60  # edits tried per group of failed rows
MAX_EVALUATIONS = 2000  # loss evaluations spent verifying edits, for the whole report
MAX_CHAIN = 40  # statements followed back from a wrong gradient (the text shows the last few)
MAX_STATEMENTS = 20  # statements of a group's shared stretch whose edits are tried
_SEARCHING = contextvars.ContextVar("shapecheck_gradfix_searching", default=False)
_FUNCTIONS = contextvars.ContextVar("shapecheck_gradfix_functions", default=None)  # code -> its functions


def searching() -> bool:
    """Is a verification check running (it must not look for fixes itself)?"""
    return _SEARCHING.get()


@dataclass(frozen=True)
class Location:
    """A statement in the user's code."""

    path: str
    line: int
    statement: str
    name: str = ""  # the array it produced, as the frame held it: "db1", "self.dW"

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"

    def to_dict(self) -> dict:
        return {"path": self.path, "line": self.line, "statement": self.statement, "name": self.name}


@dataclass(frozen=True)
class ChainStep(Location):
    """One statement of a backward chain; ``right`` when its array also fed a gradient that checked ok."""

    right: bool = False
    feeds: str = ""  # the ok parameter it fed, for a right step

    def to_dict(self) -> dict:
        return {**super().to_dict(), "right": self.right, "feeds": self.feeds}


@dataclass(frozen=True)
class Mistake(Location):
    """The one line the evidence pins the mistake to; ``why`` is "fix" (a verified edit of it that takes
    something out, or the only statement the wrong gradients share) or "chain" (the only statement of the
    row's backward chain that fed no right gradient)."""

    why: str = ""

    def to_dict(self) -> dict:
        return {**super().to_dict(), "why": self.why}


@dataclass(frozen=True)
class Fix:
    """A one-line edit with which the gradient check of the affected rows passes."""

    path: str
    line: int
    before: str
    after: str
    kind: str  # sign | scale | transpose | shape | array
    rows: tuple  # the parameters whose check passes with it
    at_loss: bool = False  # an edit of the loss rather than of a gradient
    alternative: Fix | None = None  # another verified edit (at the loss) when the check cannot tell which
    restoring: bool = False  # it takes out (or changes) something written, rather than adding a minus or factor

    def to_dict(self) -> dict:
        return {"path": self.path, "line": self.line, "before": self.before, "after": self.after,
                "kind": self.kind, "rows": list(self.rows), "verified": True, "at_loss": self.at_loss,
                "alternative": None if self.alternative is None else self.alternative.to_dict(),
                "restoring": self.restoring}


@dataclass
class Outcome:
    rows: list
    evaluations: int = 0
    tried: int = 0
    overall_extra: str = ""
    loss_value: float | None = None  # the loss at the parameters given (evidence for a sign: see _search_uniform)


# -- the search -------------------------------------------------------------------------------------


def explain(rows: list, report_kind: str, loss, grads, combined: bool, params, leaves, options: dict) -> Outcome:
    """Rows with location, chain and verified fix filled in where they can be determined."""
    failed = [i for i, r in enumerate(rows) if r.status in ("wrong", "shape")]
    if not failed or not (combined or callable(grads)) or searching():
        return Outcome(rows)
    out = Outcome(list(rows))
    fn = loss if combined else grads
    try:
        trace = _gradsource.traced_call(fn, _fresh(params, leaves))
    except Exception:
        return out
    if combined:
        out.evaluations += 1
    raw = trace.result[1] if combined and isinstance(trace.result, (tuple, list)) and len(trace.result) == 2 \
        else trace.result
    values = _gradtree.lookup_grads(raw, leaves).values
    raw = None
    forward, loss_node = _forward(trace, combined, loss, params, leaves, out, {id(v) for v in values})
    ok_ids, depth = {}, {}
    for i, r in enumerate(rows):  # each array that fed an ok gradient -> the nearest such gradient
        if r.status in ("ok", "kink") and type(values[i]) is np.ndarray:
            for d, n in enumerate(_gradsource.ancestors(trace, id(values[i]))):
                if d < depth.get(id(n), 1 << 30):
                    ok_ids[id(n)], depth[id(n)] = r.name, d
    nodes = {i: trace.nodes.get(id(values[i])) if type(values[i]) is np.ndarray else None for i in failed}
    chains: dict[int, list[Node]] = {}
    rights: dict[int, list[Node]] = {}
    for i in failed:
        node = nodes[i]
        if node is None or (node.code.co_filename, node.line) in forward:
            nodes[i] = None
            continue
        stores = [m for m in node.modifiers if m.alias]
        if stores and id(node) in ok_ids and not [m for m in node.modifiers if not m.alias]:
            # `nabla_b[-2] = delta` where delta also fed a gradient that checked ok: the value is right there,
            # and became this parameter's gradient where it was first stored.
            node = nodes[i] = min(stores, key=lambda m: m.order)
    for n in nodes.values():  # a wrong gradient's own statement is never "right", whatever else it fed
        if n is not None:
            ok_ids.pop(id(n), None)
    for i in failed:
        node = nodes[i]
        if node is None:
            continue
        chain, right = _chain(trace, node, ok_ids, forward)
        chains[i], rights[i] = chain, right
        # a statement run in a loop is shown once, where it first ran
        steps = tuple(dict.fromkeys([_step(n) for n in chain] + [_step(n, ok_ids[id(n)]) for n in right]))
        out.rows[i] = dataclasses.replace(out.rows[i], location=_loc(node), chain=steps)
    out.overall_extra = _overall_extra(rows, failed, chains, rights, report_kind, loss_node)
    # The arrays of the traced call are let go: the search compares gradients by digest, not by holding them.
    values = [_digest(v) for v in values]
    trace.held.clear()
    trace.result = None
    args = (out, rows, failed, values, loss, grads, combined, params, leaves, options)
    token = _FUNCTIONS.set({})
    try:
        if report_kind in ("sign", "scale"):
            _guarded(_search_uniform, args, chains, loss_node)
        else:
            # Gradients returned under each other's names first: searched alone, each row could take an edit
            # that makes it pass by computing the other's value where it is made.
            _guarded(_search_swaps, args, trace, nodes, failed)
            _guarded(lambda: _search(args, nodes, {i: c for i, c in chains.items() if out.rows[i].fix is None},
                                     rights, trace))
            _guarded(_search_missing, args, trace, nodes, failed)
    finally:
        _FUNCTIONS.reset(token)
    del trace
    pins = {(out.rows[i].mistake.path, out.rows[i].mistake.line) if out.rows[i].mistake else None for i in failed}
    if len(pins) == 1 and None not in pins:
        m = out.rows[failed[0]].mistake
        out.overall_extra = (out.overall_extra + " " if out.overall_extra else "") + (
            f"A statement is missing after line {m.line}: `{m.statement}`." if m.why == "missing" else
            f"The mistake is at line {m.line}: `{m.statement}`.")
    return out


def _guarded(search, *args) -> None:
    """A search that fails (a slip of ours on code we did not foresee) stops there: the check's verdict and
    what the rows were given so far stand, and no traceback of shapecheck's reaches you."""
    try:
        search(*args)
    except Exception:
        pass


def _fresh(params, leaves):
    work, _ = _gradtree.private_copy(params)
    return _gradtree.materialise(work, [leaf.scalar for leaf in leaves])


def _forward(trace, combined, loss, params, leaves, out, gradients: set) -> tuple[set, Node | None]:
    """(file, line) of the forward pass's statements, and the node of the loss value (None if unclear).

    The statements the loss value was computed from are the forward ones (a separate loss is traced once
    more; a loss that also computes gradients, as a CS231n model's does, runs backward code the loss value
    does not come from).
    """
    if combined:
        t = trace
        value = trace.result[0] if isinstance(trace.result, (tuple, list)) and trace.result else None
    else:
        try:
            t = _gradsource.traced_call(loss, _fresh(params, leaves))
        except Exception:
            return set(), None
        out.evaluations += 1
        value = t.result
    try:
        out.loss_value = float(np.asarray(value, dtype=np.float64).reshape(-1)[0]) if np.size(value) == 1 else None
    except (TypeError, ValueError):
        out.loss_value = None
    start = id(value) if type(value) in (np.ndarray, np.float64, np.float32) and id(value) in t.nodes \
        else t.final_read
    if combined and start in gradients:
        # `return loss, {"W": dW, ...}` with a Python float loss: the newest array its return read is a gradient
        start = None
    loss_node = t.nodes.get(start) if start is not None else None
    if loss_node is None:
        return set(), None
    return {(n.code.co_filename, n.line) for n in _gradsource.ancestors(t, start, limit=10000)}, loss_node


def _chain(trace, node: Node, ok_ids: dict, forward: set) -> tuple[list[Node], list[Node]]:
    """The backward statements a gradient was computed from, up to arrays that fed an ok gradient. An in-place
    update or a store counts only for the statements that read the array after it."""
    chain, right, todo, seen = [], [], [(node, float("inf"))], set()
    while todo and len(chain) < MAX_CHAIN:
        n, before = todo.pop(0)
        if id(n) in seen:
            continue
        seen.add(id(n))
        if n is not node and (n.code.co_filename, n.line) in forward:
            continue
        if id(n) in ok_ids:
            right.append(n)
            continue
        chain.append(n)
        todo.extend((m, before) for m in n.modifiers if (not m.alias or n is node) and m.order < before)
        for text, r in n.reads.items():
            m = trace.nodes.get(r)
            if m is None:
                continue
            text = text.split("#")[0]  # read on a later run of a loop
            # `dZ2 = dA2` then `dW2 = dZ2 @ A1.T`: the store that bound the name read is on the way
            todo.extend((a, n.order) for a in m.modifiers if a.alias and a.order < n.order
                        and (a.name == text or a.name == a.text.split(" = ")[-1]
                             # `self.dinputs = dvalues` in one layer, read as `act.dinputs` by the next
                             or (a.name.startswith("self.") and text.endswith(a.name[4:]))))
            todo.append((m, n.order))
    chain.sort(key=lambda n: n.order)
    right.sort(key=lambda n: n.order)
    return chain, right


def _loc(n: Node) -> Location:
    # The line of the value itself in a statement over several lines (a dict literal returned).
    expr = _gradsource.value_expr(n.stmt, n.name)
    return Location(n.path, n.line if expr is None else expr.lineno, n.text, label(n))


def _step(n: Node, feeds: str = "") -> ChainStep:
    loc = _loc(n)
    return ChainStep(loc.path, loc.line, loc.statement, loc.name, bool(feeds), feeds)


def _first_step(chains: dict, failed: list) -> Node | None:
    """The earliest backward statement every failed gradient was computed from."""
    if not chains or len(chains) != len(failed) or not all(chains.values()):
        return None
    common = set.intersection(*({id(n) for n in c} for c in chains.values()))
    shared = [n for c in chains.values() for n in c if id(n) in common]
    return min(shared, key=lambda n: n.order) if shared else None


def _overall_extra(rows, failed, chains, rights, report_kind, loss_node) -> str:
    if report_kind in ("sign", "scale"):
        first = _first_step(chains, failed)
        parts = []
        if loss_node is not None:
            parts.append(f"the loss is computed by `{loss_node.text}` at {loss_node.path}:{loss_node.line}")
        if first is not None:
            parts.append(f"the first backward step, which every gradient is computed from, is `{first.text}` at "
                         f"{first.path}:{first.line}")
        return (" and ".join(parts)[0].upper() + " and ".join(parts)[1:] + ".") if parts else ""
    if len(chains) != len(failed) or not any(r.status in ("ok", "kink") for r in rows):
        return ""
    common = set.intersection(*({id(n) for n in c} for c in chains.values()))
    if not common:
        return ""
    last = max((n for c in chains.values() for n in c if id(n) in common), key=lambda n: n.order)
    boundary = [n for r in rights.values() for n in r if n.order < last.order]
    if not boundary:
        return ""
    b = max(boundary, key=lambda n: n.order)
    ok = [r.name for r in rows if r.status in ("ok", "kink")]
    bad = [rows[i].name for i in failed]
    return (f"{_and(ok)} {'is' if len(ok) == 1 else 'are'} right, {_and(bad)} {'is' if len(bad) == 1 else 'are'} "
            f"wrong: the mistake is between line {b.line} ({label(b)}, right) and line {last.line} ({label(last)}).")


def label(n) -> str:
    """What a node's array is called: its name, or the expression that made it when it was returned."""
    if not n.name.startswith("<returned>"):
        return n.name
    s = n.stmt
    if isinstance(getattr(s, "value", None), (ast.ListComp, ast.DictComp)) and isinstance(s, ast.Assign) and \
            len(s.targets) == 1 and isinstance(s.targets[0], ast.Name):
        return s.targets[0].id + n.name[len("<returned>"):]  # made in a comprehension: g['W1']
    expr = _gradsource.value_expr(n.stmt, n.name)
    if expr is not None:
        return _segment(n, expr) or ast.unparse(expr)
    s = n.stmt
    if isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name):
        return s.targets[0].id + n.name[len("<returned>"):]  # made in a comprehension: g['W1']
    return "the value returned"


# -- candidate edits --------------------------------------------------------------------------------


def _value_expr(node: Node) -> ast.expr | None:
    return _gradsource.value_expr(node.stmt, node.name)


_ATOMS = (ast.Name, ast.Attribute, ast.Subscript, ast.Call, ast.Constant)
_FLIP = "<+= and -= swapped>"  # an edit of the statement's operator rather than of its value


def _paren(text: str, expr: ast.expr, loose: tuple = (ast.Add, ast.Sub)) -> str:
    if isinstance(expr, _ATOMS) or (isinstance(expr, ast.BinOp) and not isinstance(expr.op, loose)):
        return text
    return f"({text})"


def _hypothesis(row) -> tuple[str, float | None]:
    """The diagnosis' kind and factor; when it claims no factor, the ratio measured at the worst entry as a
    hypothesis for the candidates (one number is no claim, but an edit it suggests is verified before it is
    shown)."""
    kind, factor = row.diagnosis.kind, row.diagnosis.factor
    if factor is None and kind not in ("sign", "transpose") and row.analytic is not None \
            and row.numeric not in (None, 0.0):
        ratio = row.analytic / row.numeric
        if ratio == ratio and abs(ratio) != float("inf") and ratio != 0:
            factor = ratio
    return kind, factor


def _near(a: float, b: float) -> bool:
    # a measured factor (a ratio of finite differences) is a candidate's hint, not its proof
    return abs(a / b - 1) <= 1e-3


def _splice(raw: bytes, base: int, sub: ast.expr, text: str) -> str:
    return (raw[:sub.col_offset - base] + text.encode() + raw[sub.end_col_offset - base:]).decode()


def _terms(expr: ast.expr) -> list[ast.expr]:
    """The terms of a sum (`a + b - c`), when the expression is one."""
    if not (isinstance(expr, ast.BinOp) and isinstance(expr.op, (ast.Add, ast.Sub))):
        return []
    out = []
    for side in (expr.left, expr.right):
        out += _terms(side) or [side]
    return out


def _matmul_operands(expr: ast.expr) -> list[ast.expr]:
    out = []
    for sub in ast.walk(expr):
        if isinstance(sub, ast.BinOp) and isinstance(sub.op, ast.MatMult):
            out += [sub.left, sub.right]
        elif isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute) and sub.func.attr in ("dot", "matmul"):
            out += sub.args[:2] if len(sub.args) >= 2 else [sub.func.value] + sub.args[:1]
    return out


def _product(sub: ast.expr) -> tuple | None:
    """The two factors of `a @ b`, `np.dot(a, b)` or `a.dot(b)`; None for anything else."""
    if isinstance(sub, ast.BinOp) and isinstance(sub.op, ast.MatMult):
        return sub.left, sub.right
    if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute) and sub.func.attr == "dot" \
            and not sub.keywords:
        if len(sub.args) == 2:
            return sub.args[0], sub.args[1]
        if len(sub.args) == 1 and not (isinstance(sub.func.value, ast.Name) and sub.func.value.id in ("np", "numpy")):
            return sub.func.value, sub.args[0]
    return None


def _toggle_t(text: str, expr: ast.expr) -> str:
    if text.endswith(".T"):
        return text[:-2]
    return f"{text}.T" if isinstance(expr, _ATOMS) else f"({text}).T"


def _edits(node: Node, row, numpy_name: str | None, invert: bool = False) -> list[tuple[str, str, bool]]:
    """(kind, new text of the value expression, whether it takes out something written) implied by the
    row's diagnosis, likeliest first. An edit that takes something out (a minus, a factor, a `.T`) or changes
    what is written (operands, an axis, an array) says where the slip is; one that adds a minus, a factor or a
    transpose would make the check pass on any linear step of the chain, and says only that it fixes it.
    ``invert``: the edit is of the loss, which must change the other way for the gradient to match."""
    expr = _value_expr(node)
    if expr is None or expr.lineno != expr.end_lineno:
        return []
    v = _segment(node, expr)
    if v is None:
        return []
    kind, factor = _hypothesis(row)
    raw, base = v.encode(), expr.col_offset
    undo_neg, neg = [], []
    for sub in ast.walk(expr):  # a minus taken out, anywhere in the expression
        if isinstance(sub, ast.UnaryOp) and isinstance(sub.op, ast.USub) and sub.lineno == sub.end_lineno \
                and not isinstance(sub.operand, ast.Constant):  # `reshape(n, -1)` is no sign
            inner = _segment(node, sub.operand)
            if inner:
                undo_neg.append(_splice(raw, base, sub, _paren(inner, sub.operand) if sub is not expr else inner))
    for sub in ast.walk(expr):  # `y - a` for `a - y`, anywhere in the expression
        if isinstance(sub, ast.BinOp) and isinstance(sub.op, ast.Sub) and sub.lineno == sub.end_lineno \
                and not isinstance(sub.right, ast.BinOp) and not isinstance(sub.left, ast.Constant):
            left, right = _segment(node, sub.left), _segment(node, sub.right)
            if left and right:
                undo_neg.append(_splice(raw, base, sub, f"{right} - {_paren(left, sub.left)}"))
    if isinstance(node.stmt, ast.AugAssign) and isinstance(node.stmt.op, (ast.Add, ast.Sub)) and \
            (node.name == ast.unparse(node.stmt.target) or not node.name):
        undo_neg.insert(0, _FLIP)  # `-=` for `+=`
    neg.append(f"-{_paren(v, expr, (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.MatMult))}" if isinstance(expr, _ATOMS)
               else f"-({v})")
    terms = [t for t in _terms(expr) if t.lineno == t.end_lineno]
    for t in terms:  # one term of a sum has the wrong sign
        text = _segment(node, t)
        if text:
            neg.append(_splice(raw, base, t, f"-{_paren(text, t, (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.MatMult))}"))
    undo_scale, scale = [], []
    for sub in ast.walk(expr):  # a factor that is there but should not be: `x / m` -> `x`, `2 * x` -> `x`
        if not isinstance(sub, ast.BinOp) or sub.lineno != sub.end_lineno:
            continue
        pairs = []
        if isinstance(sub.op, ast.Div):
            pairs.append((sub.right, sub.left))
        if isinstance(sub.op, ast.Mult):
            pairs += [(sub.right, sub.left), (sub.left, sub.right)]
        for dropped, kept in pairs:
            value, kept_text = _number(node, dropped), _segment(node, kept)
            if value and value != 1 and kept_text:
                hit = factor not in (None, 0.0) and (_near(value, factor) or _near(value, 1 / factor))
                kept_text = kept_text if sub is expr else _paren(kept_text, kept)
                undo_scale.append((not hit, _splice(raw, base, sub, kept_text)))
        if isinstance(sub.op, ast.Sub) and isinstance(sub.right, ast.Constant) and sub.right.value == 1:
            k = _number(node, sub.left)  # `1 / (m - 1)` for `1 / m`: an N - 1
            kept_text = _segment(node, sub.left)
            if k and k != 1 and kept_text:
                hit = factor not in (None, 0.0) and any(_near(f, factor) for f in (k / (k - 1), (k - 1) / k))
                a, b = sub.col_offset - base, sub.end_col_offset - base
                if isinstance(sub.left, _ATOMS) and raw[a - 1:a] == b"(" and raw[b:b + 1] == b")":
                    a, b = a - 1, b + 1  # `1 / (m - 1)` -> `1 / m`, not `1 / (m)`
                undo_scale.append((not hit, (raw[:a] + kept_text.encode() + raw[b:]).decode()))
    undo_scale = [t for _, t in sorted(undo_scale, key=lambda p: p[0])]
    if factor not in (None, 0.0) and factor > 0 and not _near(factor, 1.0):
        dims = _dims(node, 1 / factor if invert else factor)
        scale += [f"{_paren(v, expr)} {op} {e}" for e, op in dims]
        for t in terms[:3]:  # one term of a sum off by the factor
            text = _segment(node, t)
            if text:
                scale += [_splice(raw, base, t, f"{_paren(text, t)} {op} {e}") for e, op in dims[:2]]
    undo_tr, tr = ([v[:-2]] if v.endswith(".T") else []), []
    tr.append(f"{v}.T" if isinstance(expr, _ATOMS) else f"({v}).T")
    for op in _matmul_operands(expr):  # an operand of a product transposed, or not, when it is square
        text = _segment(node, op)
        shp = node.scope.get(text[:-2] if text and text.endswith(".T") else text)
        if not text or op.lineno != op.end_lineno or type(shp) is not tuple or len(shp) != 2 or shp[0] != shp[1]:
            continue
        # either way it changes the linear map, which no edit of another step of the chain makes up for
        undo_tr.append(_splice(raw, base, op, text[:-2] if text.endswith(".T") else
                               f"{text}.T" if isinstance(op, _ATOMS) else f"({text}).T"))
    for sub in ast.walk(expr):  # `np.dot(A, B.T)` -> `np.dot(B, A.T)`: the product's factors swapped back
        pair = _product(sub)
        if pair is None or sub.lineno != sub.end_lineno:
            continue
        a, b = (_segment(node, x) for x in pair)
        if not a or not b:
            continue
        ta, tb = (_toggle_t(s, x) for s, x in ((a, pair[0]), (b, pair[1])))
        swapped = f"{tb} @ {ta}" if isinstance(sub, ast.BinOp) else \
            f"{_segment(node, sub.func)}({tb}, {ta})" if len(sub.args) == 2 else f"{_paren(tb, pair[1])}.dot({ta})"
        undo_tr.append(_splice(raw, base, sub, swapped if sub is expr or isinstance(sub, ast.Call) else f"({swapped})"))
    for t in terms:  # one term of a sum transposed (a square weight's own gradient next to its L2 term)
        text = _segment(node, t)
        if text and _matmul_operands(t):
            tr.append(_splice(raw, base, t, f"{text}.T" if isinstance(t, _ATOMS) else f"({text}).T"))
    shape = []
    if row.grad_shape is not None and tuple(row.grad_shape) != tuple(row.shape) and numpy_name:
        gs, ps = tuple(row.grad_shape), tuple(row.shape)
        for axis in range(len(gs)):
            keep = gs[:axis] + (1,) + gs[axis + 1:]
            drop = gs[:axis] + gs[axis + 1:]
            if keep == ps:
                shape.append(f"{numpy_name}.sum({v}, axis={axis}, keepdims=True)")
            if drop == ps:
                shape.append(f"{numpy_name}.sum({v}, axis={axis})")
        if gs[::-1] == ps:
            shape += undo_tr + tr
    axes = []
    for match in re.finditer(r"axis\s*=\s*(-?\d+)", v):
        for a in range(-1, 3):
            if str(a) != match.group(1):
                axes.append(v[:match.start(1)] + str(a) + v[match.end(1):])
    arrays = _substitutions(node, expr, v)
    unzero = []
    for sub in ast.walk(expr):  # a gradient zeroed: `np.zeros_like(dW)` -> `dW`
        if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute) and sub.func.attr == "zeros_like" \
                and len(sub.args) == 1 and not sub.keywords and sub.lineno == sub.end_lineno:
            inner = _segment(node, sub.args[0])
            if inner:
                unzero.append(_splice(raw, base, sub, inner))
    undo = {"sign": undo_neg, "scale": undo_scale, "transpose": undo_tr, "shape": axes, "array": arrays,
            "zero": unzero}
    add = {"sign": neg, "scale": scale, "transpose": tr, "shape": shape}
    order = {"sign": ["sign", "scale"], "scale": ["scale", "sign"], "transpose": ["transpose"],
             "shape": ["shape", "transpose"], "zero": ["zero", "array"],
             "partial": ["shape", "array", "scale", "sign", "transpose"]}.get(
        kind, ["array", "shape", "scale", "sign", "transpose"])
    order = order + ["zero"] * ("zero" not in order)  # a zeroed term spoils any pattern
    out, seen = [], {v}
    for k in order:
        for restoring, items in ((True, undo.get(k, [])), (False, add.get(k, []))):
            for t in items:
                if t not in seen:
                    seen.add(t)
                    out.append((k, t, restoring))
    return out


def _number(node: Node, expr: ast.expr) -> float | None:
    """The value of a number written as a constant or a name of a number in scope (`m`, `2`, `1. / m`)."""
    if isinstance(expr, ast.Constant) and type(expr.value) in (int, float):
        return float(expr.value)
    if isinstance(expr, ast.Name) and type(node.scope.get(expr.id)) in (int, float):
        return float(node.scope[expr.id])
    if isinstance(expr, ast.Call) and type(node.scope.get(ast.unparse(expr))) is int:  # len(mini_batch)
        return float(node.scope[ast.unparse(expr)])
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, (ast.Div, ast.Mult)):
        a, b = _number(node, expr.left), _number(node, expr.right)
        if a is not None and b:
            return a / b if isinstance(expr.op, ast.Div) else a * b
    return None


def _segment(node: Node, expr: ast.expr) -> str | None:
    lines = linecache.getlines(node.code.co_filename)
    if not (0 < expr.lineno <= len(lines)) or expr.lineno != expr.end_lineno:
        return None
    raw = lines[expr.lineno - 1].encode()
    return raw[expr.col_offset:expr.end_col_offset].decode(errors="replace")


_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)?")  # a name, or a layer's own array (self.output)
_ENTRY = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)?(\[(-1|[A-Za-z_]\w*)\])?")  # or `zs[-1]`, `hs[t]`
_DIM_NAMES = ("m", "n", "N", "M", "batch_size", "num_examples", "num_train", "n_samples")


def _dims(node: Node, factor: float) -> list[tuple[str, str]]:
    """Expressions in scope equal to the factor (divide by them) or to its inverse (multiply)."""
    out = []
    for target, op in ((factor, "/"), (1 / factor, "*")):
        names = [k for k, v in node.scope.items() if type(v) in (int, float) and not isinstance(v, bool)
                 and v != 0 and _near(v, target)]
        names.sort(key=lambda k: (k not in _DIM_NAMES, len(k)))
        out += [(k, op) for k in names[:2]]
        k = round(target)
        if k >= 2 and _near(k, target):
            dims = [f"{name}.shape[{j}]" for name, shp in node.scope.items() if type(shp) is tuple
                    for j, d in enumerate(shp) if d == k and not name.startswith("_") and "[" not in name]
            out += [(d, op) for d in dims[:2]]
            if k <= 4:
                out.append((str(k), op))
    return out


def _substitutions(node: Node, expr: ast.expr, v: str) -> list[str]:
    """The expression with one array it reads replaced by another array of the same shape in scope
    (`1 - Z1 ** 2` -> `1 - A1 ** 2`: a derivative taken of the wrong array)."""
    out = []
    base = expr.col_offset
    subs = [n for n in ast.walk(expr) if isinstance(n, (ast.Name, ast.Attribute, ast.Subscript))
            and isinstance(getattr(n, "ctx", None), ast.Load) and n.lineno == n.end_lineno == expr.lineno]
    raw = v.encode()
    by_text: dict[str, list] = {}
    for sub in subs:
        by_text.setdefault(ast.unparse(sub), []).append(sub)
    for text, group in by_text.items():
        shp = node.scope.get(text)
        if type(shp) is not tuple:
            continue
        others = [k for k, s in node.scope.items() if s == shp and k != text and _NAME.fullmatch(k)
                  and not k.startswith("_")]
        digits = re.sub(r"\D", "", text)
        others.sort(key=lambda k: (re.sub(r"\D", "", k) != digits, k))
        # every occurrence at once (`z * (1 - z)` -> `a * (1 - a)`), then each alone
        choices = [group] + ([[g] for g in group] if len(group) > 1 else [])
        for other in others[:4]:
            for chosen in choices:
                edited = raw
                for g in sorted(chosen, key=lambda g: -g.col_offset):
                    edited = edited[:g.col_offset - base] + other.encode() + edited[g.end_col_offset - base:]
                out.append(edited.decode())
    return out


# -- verification -----------------------------------------------------------------------------------


def _groups(failed: list, chains: dict) -> list[list[int]]:
    """Failed rows joined when their chains share a statement: one mistake upstream spoils them all, and
    a fix must make all of them pass (an edit downstream that compensates for one row is no fix)."""
    groups: list[tuple[set, list]] = []
    for i in failed:
        if i not in chains:
            continue
        ids = {_where(n) for n in chains[i]}
        joined = [g for g in groups if g[0] & ids]
        for g in joined:
            groups.remove(g)
            ids |= g[0]
        groups.append((ids, sorted([i] + [j for g in joined for j in g[1]])))
    return [g[1] for g in groups]


def _where(n: Node) -> tuple:
    return n.code.co_filename, n.stmt.lineno, n.stmt.col_offset


def _search(args, nodes, chains, rights, trace) -> None:
    """For each group of failed rows, the first edit of a statement they all come from (the row's own
    statement first when it is alone) with which all of them pass; edits that take something out before
    edits that add something (see `_edits`). Rows whose chains start from the same array (it fed a gradient
    that checked ok, but maybe through a second slip that cancels: a sign in a helper every layer calls) are
    then searched together, in the statements that array came from."""
    out, rows, failed = args[:3]
    groups = _groups(failed, chains)
    for group in groups:
        # by statement: the same line run for two layers (a Dense.backward) is one place to fix
        shared = _stretch(group, chains)
        ordered = sorted({_where(n): n for i in group for n in chains[i] if _where(n) in shared}.values(),
                         key=lambda n: -n.order)
        if len(group) == 1:
            i = group[0]
            ordered = [nodes[i]] + [n for n in ordered if n is not nodes[i]]
        fix, node, tried, lines, ambiguous = _search_group(args, group, ordered[:MAX_STATEMENTS])
        # the statements of the stretch that compute something (not a store of a name, a return of it,
        # or an array of zeros to accumulate into)
        computing = [n for n in ordered if _computes(n)]
        # A statement that passes a value on (`dZ1 = dA1`, `[nb for nb in nabla_b]`) may be where something
        # was left out (a derivative, a 1/m): then an edit that adds it elsewhere pins nothing.
        # So may a comprehension that hands on the same arrays (`[nb for nb in nabla_b]` makes none: no
        # statement of the chain shows it), when the values were made in a comprehension.
        passing = [n for n in ordered if not _computes(n) and not _inert(n)
                   or isinstance(getattr(n.stmt, "value", None), (ast.ListComp, ast.DictComp))]
        only = computing[0] if len(computing) == 1 and not passing else None
        if fix is not None and fix.kind == "shape" and len(group) == 1 and node is nodes[group[0]]:
            # the sum over the batch where the unsummed array became this row's gradient: a reduction before
            # it would change other gradients, one after it only repeats it
            only = node
        elif fix is not None and fix.kind == "shape" and _copies(node) and all(rights.get(i) for i in group):
            # `db = dout` stores an array that also fed a right gradient (so it is right there) as a bias's
            # gradient: the sum over the batch belongs where it is stored, the first place it can go wrong
            only = node
        _settle(out, group, fix, node, tried, lines, only, ambiguous)
        if not any(out.rows[i].mistake is not None for i in group):
            _search_derivative(args, group, ordered, trace)
    # rows left without a fix that takes something out, whose chains start from the same array
    open_ = [g for g in groups if not all(out.rows[i].fix is not None and out.rows[i].fix.restoring for i in g)]
    starts = {}
    for g in open_:
        for i in g:
            for r in rights.get(i, ()):
                starts.setdefault(_where(r), (r, []))[1].append(i)
    for where, (start, members) in starts.items():
        joint = sorted({j for g in open_ if set(g) & set(members) for j in g})
        if len({tuple(g) for g in open_ if set(g) & set(members)}) < 2 or out.evaluations >= MAX_EVALUATIONS:
            continue
        before = _upstream(trace, start)
        fix, node, _, _, ambiguous = _search_group(args, joint, before, restoring_only=True)
        if fix is not None:
            _settle(out, joint, fix, node, 0, (), None, ambiguous)
            open_ = [g for g in open_ if not set(g) & set(joint)]


_DERIVATIVE_FN = re.compile(r"\w*(prime|deriv\w*|gradient|backward)", re.IGNORECASE)
# a gradient's own name (dA2, dZ, dout, dvalues, delta): an activation's derivative is not taken of it
_GRADIENT_NAME = re.compile(
    r"(self\.)?(d[A-Z0-9_]|d(out|values|inputs|x|h|a|z|y|scores|hnext|hraw)\b|delta|grad|nabla)")


def _copies(n: Node) -> bool:
    """Does the statement only pass a value on (`dZ2 = dA2`, `dx = dout`)?"""
    return isinstance(n.stmt, ast.Assign) and isinstance(n.stmt.value, _ALIASES_EXPR)


def _does_nothing(n: Node) -> bool:
    """`dA2 = dA2`, `self.dinputs = self.dinputs`: a statement that assigns a name its own value."""
    return isinstance(n.stmt, ast.Assign) and len(n.stmt.targets) == 1 and \
        ast.unparse(n.stmt.targets[0]) == ast.unparse(n.stmt.value)


def _derivative_edits(n: Node) -> list[str]:
    """The statement's value times an activation's derivative made from an array of the same shape in scope
    (a derivative left out): `(A > 0)` (ReLU), `(1 - A ** 2)` (tanh), `A * (1 - A)` and `(1 - A)` (sigmoid, of
    its output), a derivative function the module defines (`sigmoid_prime(z)`), or the array itself (`sp`)."""
    expr = _value_expr(n)
    # a copy made no array of its own (it is a store of the one it names): its shape is that one's
    shape = n.scope.get(ast.unparse(n.stmt.value)) if _copies(n) else None if n.alias else n.shape
    if type(shape) is not tuple or not shape or expr is None or expr.lineno != expr.end_lineno \
            or isinstance(n.stmt, ast.AugAssign) or _inert(n):
        return []
    v = _segment(n, expr)
    if not v:
        return []
    arrays = [k for k, shp in n.scope.items() if shp == shape and not k.startswith("_")
              and _ENTRY.fullmatch(k) and not _GRADIENT_NAME.match(k)]
    fns = [k for k, f in (n.globals or {}).items() if isinstance(f, types.FunctionType) and
           _DERIVATIVE_FN.fullmatch(k) and f.__code__.co_argcount == 1 and not k.startswith("_")]
    head = _paren(v, expr)
    out = []
    for a in arrays[:6]:
        forms = [f"({a} > 0)", f"(1 - {a} ** 2)", f"{a} * (1 - {a})", f"(1 - {a})"] + \
            [f"{f}({a})" for f in fns] + [a]
        out += [f"{head} * {form}" for form in forms]
    return out


def _search_derivative(args, group: list, statements: list, trace) -> None:
    """A derivative left out: the first edit of each statement of the group's stretch that multiplies its value
    by an activation's derivative (see `_derivative_edits`) and makes the check pass. The mistake is pinned to
    the line when only one statement's edit verifies, or when only one of those that verify passes a value on
    without computing anything (`dZ2 = dA2`: where `dZ2 = dA2 * (1 - A2 ** 2)` belongs)."""
    out = args[0]
    verified, budget = [], MAX_CANDIDATES
    # the copies of their arrays too (`self.dinputs = dvalues` in a ReLU layer, read by the next layer as its
    # argument: no chain shows it), first: a value passed on unchanged is where a derivative is likeliest left out
    where = {_where(n) for n in statements}
    copies = [m for n in statements for m in n.modifiers if _copies(m) and m.alias and _where(m) not in where]
    statements = list({_where(m): m for m in copies}.values()) + list(statements)
    every = {_where(n) for n in statements}
    copy_where = {_where(n) for n in statements if _copies(n)}
    statements = sorted(statements, key=lambda n: not _copies(n))[:MAX_STATEMENTS]
    tried = set()  # statements whose every candidate was tried (or one verified)
    for n in statements:
        if out.evaluations >= MAX_EVALUATIONS:
            break
        if verified and _copies(verified[0][0]) and not _copies(n):
            continue  # a copy verified: only another copy could contest it
        edits = [("derivative", t) for t in _derivative_edits(n)]
        if _does_nothing(n):  # `dA2 = dA2`: a factor (1/keep_prob, 1/m) taken out, where it was written
            row = out.rows[group[0]]
            edits += [(k, t) for k, t, restoring in _edits(n, row, _numpy_name(n)) if k == "scale" and not restoring]
        chosen, found = edits[:budget], None
        budget -= len(chosen)
        for kind, text in chosen:
            found = _try(args, n, kind, text, group)
            if found is not None:
                verified.append((n, found))
                break
        if found is not None or (len(chosen) == len(edits) and out.evaluations < MAX_EVALUATIONS):
            tried.add(_where(n))
    if not verified:
        return
    copies = [p for p in verified if _copies(p[0])]
    # only when every statement (for a copy: every copy) was tried: one left out could verify as well
    pin = copies[0] if len(copies) == 1 and copy_where <= tried else \
        verified[0] if not copies and len(verified) == 1 and tried == every else None
    if pin is not None and any(_copies(m) and _where(m) not in tried for m in pin[0].modifiers):
        pin = None  # its array is passed on (`dZ1 = dA1`) where the derivative may belong as well: not tried
    if pin is not None and any(code is not pin[0].code for code, _ in trace.passthrough):
        # A function that returns what it was given (`return dout`) passes a value on where no statement shows
        # it: the derivative may belong there as well.
        pin = None
    n, fix = pin or verified[0]
    why = "factor, passes" if fix.kind == "scale" else "derivative, passes" if _copies(n) else "derivative"
    for i in group:
        row = out.rows[i]
        if pin is None and row.fix is not None:
            continue  # an edit found before, which verified as well: no better evidence here
        out.rows[i] = dataclasses.replace(row, fix=fix, mistake=None if pin is None else Mistake(
            fix.path, fix.line, fix.before, label(n), why))


def _search_missing(args, trace, nodes: dict, failed: list) -> None:
    """A regulariser's gradient left out (the statement simply absent): analytic - numeric = -c * W at the worst
    entry, with c a number in scope (`reg`, `lambd / m`, `2 * self.l2`). Candidates add `T += c * W` after the
    statement that last gave the row's gradient its value, or after the one that binds it to the parameter's
    key (`dh, grads["W2"], grads["b2"] = affine_backward(...)`); each is verified. Pinned (a statement missing
    after that line) when the insertions that verify are all after one line."""
    out, rows, leaves = args[0], args[1], args[8]
    for i in failed:
        row = out.rows[i]
        if row.fix is not None or row.status != "wrong" or row.worst_index is None or row.analytic is None \
                or row.numeric is None or out.evaluations >= MAX_EVALUATIONS:
            continue
        try:
            w = float(np.asarray(leaves[i].value, dtype=np.float64)[tuple(row.worst_index)])
        except (IndexError, TypeError, ValueError):
            continue
        if not w or not np.isfinite(w):
            continue
        c = (row.numeric - row.analytic) / w  # the term's coefficient, when the difference is c * W
        if not c > 0:
            continue
        found = []
        for anchor, target, scope in _anchors(trace, nodes.get(i), rows[i])[:4]:
            if any(nodes.get(j) is not None and nodes[j].code is anchor.code for j in failed if j != i):
                # another wrong gradient is computed by the same function (a layer's backward run for two
                # layers): a term added for this one alone would leave that one as it is
                continue
            for expr in _regularisers(scope, c, rows[i])[:6]:
                edited = _appended(anchor, f"{target} += {expr}")
                if edited is None or out.evaluations >= MAX_EVALUATIONS:
                    continue
                out.tried += 1
                if _verify(args, anchor, edited[0], [i], False):
                    found.append(Fix(anchor.path, anchor.line, edited[1], edited[2], "missing", (rows[i].name,)))
                    break
        if not found:
            continue
        fix = found[0]
        pinned = len({f.line for f in found}) == 1
        out.rows[i] = dataclasses.replace(row, fix=fix, mistake=Mistake(fix.path, fix.line, fix.before, "",
                                                                        "missing") if pinned else None)


def _anchors(trace, node: Node | None, row) -> list[tuple[Node, str, dict]]:
    """(statement, how the gradient is written there, the names in scope) after which a missing term of it
    could be added: the last statement that gave the array its value, and the statements that bind it to the
    parameter's key."""
    from . import _trace

    out = []
    if node is not None:
        last = max([node] + [m for m in node.modifiers if not m.alias], key=lambda n: n.order)
        name = last.name if last is not node else node.name
        if name and not name.startswith("<") and last.stmt.lineno == last.stmt.end_lineno:
            out.append((last, name, last.scope))
    slots = {row.name, row.grad_name or row.name}
    for code in trace.codes:
        scope = max((n for n in _all_nodes(trace) if n.code is code), key=lambda n: n.order, default=None)
        if scope is None:
            continue
        _, tree = _trace._own_source(linecache.getlines(code.co_filename), code)
        for s in ast.walk(tree) if tree is not None else ():
            if not isinstance(s, ast.Assign) or s.lineno != s.end_lineno:
                continue
            for t in (e for target in s.targets for e in (target.elts if isinstance(target, ast.Tuple) else [target])):
                if isinstance(t, ast.Subscript) and isinstance(t.slice, ast.Constant) and t.slice.value in slots:
                    raw = linecache.getlines(code.co_filename)[s.lineno - 1].encode()
                    text = raw[t.col_offset:t.end_col_offset].decode(errors="replace")  # as written: its quotes
                    out.append((Node(code, _display(code), s.lineno, s, "", "", {}, {}, 0), text, scope.scope))
    return out


def _all_nodes(trace):
    for n in trace.nodes.values():
        yield n
        yield from n.modifiers


def _regularisers(scope: dict, c: float, row) -> list[str]:
    """`k * W` with k a number in scope (or twice one, or one over a batch size) equal to c, W an array in scope
    of the parameter's shape that is not a gradient (the parameter itself: verified)."""
    numbers = [(k, v) for k, v in scope.items() if type(v) in (int, float) and v and not k.startswith("_")]
    coefficients = []
    for k, v in numbers:
        coefficients += [(k, v), (f"2 * {k}", 2 * v)]
        coefficients += [(f"{k} / {d}", v / dv) for d, dv in numbers if d in _DIM_NAMES and dv]
    coefficients = [k for k, v in coefficients if abs(v / c - 1) <= 1e-2]
    digits = re.sub(r"\D", "", row.name)
    arrays = [k for k, shp in scope.items() if shp == tuple(row.shape) and _NAME.fullmatch(k)
              and not _GRADIENT_NAME.match(k) and not k.startswith("_")]
    arrays.sort(key=lambda k: re.sub(r"\D", "", k) != digits)
    return [f"{k} * {a}" for k in coefficients for a in arrays[:3]]


def _appended(n: Node, added: str) -> tuple[str, str, str] | None:
    """(the statement's source with `added` after it, the line as it was, the line with the added one after it,
    at the statement's indentation)."""
    lines = linecache.getlines(n.code.co_filename)
    s = n.stmt
    if not (0 < s.lineno <= len(lines)) or s.lineno != s.end_lineno:
        return None
    raw = lines[s.lineno - 1].encode()
    own = raw[s.col_offset:s.end_col_offset].decode(errors="replace")
    indent = raw[:s.col_offset].decode(errors="replace")
    if indent.strip():
        return None  # `if x: a = b`: not a line of its own
    before = _code(raw.decode(errors="replace"))
    return f"{own}\n{added}", before, f"{before}\n{indent}{added}"


def _search_swaps(args, trace, nodes: dict, failed: list) -> None:
    """Two wrong gradients of the same shape returned under each other's names (`'db2': db1, 'db1': db2`):
    the statements that bind them (a tuple or dict returned, tuple targets) with the two exchanged, each
    verified. The mistake is pinned when exactly one statement's exchange makes both pass."""
    out, rows = args[0], args[1]
    open_ = [i for i in failed if out.rows[i].mistake is None and rows[i].grad_shape is not None]
    names = {i: _names_of(rows[i], nodes.get(i)) for i in open_}
    for a, i in enumerate(open_):
        for j in open_[a + 1:]:
            if out.rows[i].mistake is not None or out.rows[j].mistake is not None or \
                    tuple(rows[i].grad_shape) != tuple(rows[j].grad_shape) or out.evaluations >= MAX_EVALUATIONS:
                continue
            fixes, seen, other = [], set(), False
            for found in _swaps(trace, names[i], names[j]):
                if found is None:
                    other = True
                    continue
                n, text, before, after, line = found
                if (n.path, line, after) in seen or out.evaluations >= MAX_EVALUATIONS:
                    continue
                seen.add((n.path, line, after))
                out.tried += 1
                if _verify(args, n, text, [i, j], False):
                    fixes.append(Fix(n.path, line, before, after, "swap", (rows[i].name, rows[j].name),
                                     restoring=True))
            if not fixes:
                continue
            fix = dataclasses.replace(fixes[0], alternative=fixes[1] if len(fixes) > 1 else None)
            for k, partner in ((i, j), (j, i)):
                # Exchanged, both pass: whichever statement holds the slip, the diagnosis itself is certain.
                said = GradDiagnosis("swapped", None, f"{rows[k].name}'s gradient and {rows[partner].name}'s are "
                                     "returned under each other's names: exchanged, both match the numeric gradient")
                out.rows[k] = dataclasses.replace(out.rows[k], fix=fix, diagnosis=said, mistake=Mistake(
                    fix.path, fix.line, fix.before, out.rows[k].location.name if out.rows[k].location else "",
                    "swapped") if len(fixes) == 1 and not other else None)


def _names_of(row, node: Node | None) -> tuple[set, set]:
    """(the names of the row's slot: the parameter's and its gradient's, as keys; the names its array went by:
    the one it was made under and those it was stored under)."""
    arrays = set()
    if node is not None:
        arrays.add(label(node))
        arrays.update(m.name for m in node.modifiers if m.alias and not m.name.startswith("<"))
    return {row.name, row.grad_name or row.name}, arrays - {""}


def _swaps(trace, names_i: tuple, names_j: tuple):
    """(a statement's node, its source with two elements exchanged, the line before and after, its line) for
    each tuple, list or dict display (returned, assigned, or tuple targets) of the functions that ran with an
    element for each of the two gradients on one line; None for a binding of them this cannot exchange (the
    two on different lines, or `grads["db1"] = db2` on a line of its own), which may hold the slip too."""
    from . import _trace

    def owner(elt, key=None) -> int:
        text = ast.unparse(elt)
        keys = {ast.literal_eval(k) for k in ([key] if key is not None else []) if isinstance(k, ast.Constant)}
        if isinstance(elt, ast.Subscript) and isinstance(elt.slice, ast.Constant):
            keys.add(elt.slice.value)
        # a slot named by a key (`"db1": db2`, `grads["b1"]`) is that key's, whatever array fills it
        hit_i = bool(keys & names_i[0]) if keys else text in names_i[1]
        hit_j = bool(keys & names_j[0]) if keys else text in names_j[1]
        return 1 if hit_i and not hit_j else 2 if hit_j and not hit_i else 0

    for code in trace.codes:
        lines = linecache.getlines(code.co_filename)
        _, tree = _trace._own_source(lines, code)
        if tree is None:
            continue
        for s in ast.walk(tree):
            if not isinstance(s, (ast.Assign, ast.Return)) or s.value is None:
                continue
            if isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Subscript) \
                    and owner(s.targets[0]):
                yield None  # `grads["db1"] = db2` on a line of its own: an exchange would take two lines
                continue
            roots = [s.value] + (s.targets if isinstance(s, ast.Assign) else [])
            for d in (d for r in roots for d in ast.walk(r)):  # `return loss, {"W": dW, ...}` too
                if isinstance(d, (ast.Tuple, ast.List)):
                    elts = [(e, owner(e)) for e in d.elts]
                elif isinstance(d, ast.Dict):
                    elts = [(v, owner(v, k)) for k, v in zip(d.keys, d.values) if k is not None]
                else:
                    continue
                a = [e for e, o in elts if o == 1 and isinstance(e, _ALIASES_EXPR)]
                b = [e for e, o in elts if o == 2 and isinstance(e, _ALIASES_EXPR)]
                if len(a) != 1 or len(b) != 1:
                    continue
                if a[0].lineno != a[0].end_lineno or b[0].lineno != b[0].end_lineno or a[0].lineno != b[0].lineno:
                    yield None  # a binding of both this search cannot exchange: it may hold the slip
                    continue
                edited = _exchanged(code, s, lines, a[0], b[0])
                if edited is not None:
                    n = Node(code, _display(code), s.lineno, s, "", "", {}, {}, 0)
                    yield (n, *edited, a[0].lineno)


def _display(code) -> str:
    from ._runner import display_path
    return display_path(code.co_filename)


def _exchanged(code, s: ast.stmt, lines: list, x: ast.expr, y: ast.expr) -> tuple | None:
    """(the statement's source with x and y exchanged, the physical line before, after)."""
    block = [ln.encode() for ln in lines[s.lineno - 1:s.end_lineno]]
    if len(block) != s.end_lineno - s.lineno + 1:
        return None
    k = x.lineno - s.lineno
    raw = block[k]
    first, second = sorted((x, y), key=lambda e: e.col_offset)
    a, b = raw[first.col_offset:first.end_col_offset], raw[second.col_offset:second.end_col_offset]
    block[k] = raw[:first.col_offset] + b + raw[first.end_col_offset:second.col_offset] + a + \
        raw[second.end_col_offset:]
    after = block[k]
    block[-1] = block[-1][:s.end_col_offset + (len(after) - len(raw) if k == len(block) - 1 else 0)]
    block[0] = block[0][s.col_offset:]
    return (b"".join(block).decode(errors="replace"), _code(raw.decode(errors="replace")),
            _code(after.decode(errors="replace")))


def _stretch(group: list, chains: dict) -> set:
    """The statements every row of the group was computed from, none of which fed a right gradient."""
    return set.intersection(*({_where(n) for n in chains[i]} for i in group))


def _upstream(trace, start: Node, limit: int = 8) -> list[Node]:
    """The statements an array (that fed a right gradient) came from, itself first, nearest first."""
    out, todo, seen = [], [start], set()
    while todo and len(out) < limit:
        n = todo.pop(0)
        if id(n) in seen:
            continue
        seen.add(id(n))
        out.append(n)
        todo.extend(m for r in n.reads.values() if (m := trace.nodes.get(r)) is not None)
    return out


def _search_group(args, group: list, statements: list, restoring_only: bool = False):
    """(the first verified fix, its statement, candidates tried, lines they edited, whether an edit of another
    line verified too) over edits of these statements. After a fix that takes something out, the edits of other
    lines that take something out are tried as well: one that also verifies leaves the line unpinned."""
    out = args[0]
    # the edits each row's diagnosis implies, specific diagnoses first
    diagnosed = sorted(group, key=lambda i: out.rows[i].diagnosis.kind in ("unknown", "partial", "zero"))
    candidates, seen = [], set()
    for n in statements:
        for i in diagnosed:
            for kind, text, restoring in _edits(n, out.rows[i], _numpy_name(n)):
                if (id(n), text) not in seen and (restoring or not restoring_only):
                    seen.add((id(n), text))
                    candidates.append((n, kind, text, restoring))
    # stable: statement order kept within each class; another array in place of one is tried after every
    # minus, factor, transpose and axis taken out (there are many arrays of the same shape in scope)
    # (and edits of a statement that computes before those of a store or a return of a name)
    candidates.sort(key=lambda c: (not c[3], c[1] == "array", not _computes(c[0])))
    candidates = candidates[:MAX_CANDIDATES]
    found = None
    for n, kind, new, restoring in candidates:
        if found is not None and (not restoring or _where(n) == _where(found[1])):
            continue
        fix = _try(args, n, kind, new, group, restoring=restoring)
        if fix is None:
            continue
        if found is not None:  # an edit of another line verifies too: the fix holds, the line is not pinned
            return found[0], found[1], len(candidates), (), True
        found = (fix, n)
        if not restoring:  # every edit that takes something out was tried before it, and failed
            break
    if found is not None:
        return found[0], found[1], len(candidates), (), False
    return None, None, len(candidates), tuple(sorted({n.line for n, _, _, _ in candidates})), False


def _settle(out, group: list, fix, node, tried: int, lines: tuple, only, ambiguous: bool = False) -> None:
    """The rows get the fix (or how many edits were tried) and, where the evidence pins it, the mistake's
    line: the line of a verified fix that takes something out (no other line's did), or of one that adds
    something when that line is the only statement the group's chains share that computes something and fed
    no right gradient (`only`); else, for a row alone, that only statement itself."""
    for i in group:
        row = out.rows[i]
        mistake = None
        if fix is not None and not ambiguous and (fix.restoring or (only is not None and _where(node) == _where(only))):
            mistake = Mistake(fix.path, fix.line, fix.before, label(node), "fix")
        elif fix is None and len(group) == 1 and only is not None and row.location is not None \
                and not _other_layer(row):
            loc = _loc(only)
            mistake = Mistake(loc.path, loc.line, loc.statement, loc.name, "chain")
        out.rows[i] = dataclasses.replace(row, fix=fix, mistake=mistake) if fix is not None else \
            dataclasses.replace(row, fix_tried=tried, fix_lines=lines, mistake=mistake)


_NOTHING = ("zeros", "zeros_like", "empty", "empty_like")


def _computes(n: Node) -> bool:
    """Does the statement compute a value (rather than store or return a name, or make zeros to fill)?"""
    if n.alias:
        return False
    expr = _value_expr(n)
    if isinstance(expr, _ALIASES_EXPR):
        return isinstance(n.stmt, ast.AugAssign)
    if isinstance(expr, ast.Call) and isinstance(expr.func, (ast.Attribute, ast.Name)):
        name = expr.func.attr if isinstance(expr.func, ast.Attribute) else expr.func.id
        return name not in _NOTHING
    return True


_ALIASES_EXPR = (ast.Name, ast.Attribute, ast.Subscript)


def _inert(n: Node) -> bool:
    """A `return` of names, or zeros to accumulate into: nothing is usually left out there."""
    if isinstance(n.stmt, ast.Return):
        return True
    expr = _value_expr(n)
    return isinstance(expr, ast.Call) and isinstance(expr.func, (ast.Attribute, ast.Name)) and \
        (expr.func.attr if isinstance(expr.func, ast.Attribute) else expr.func.id) in _NOTHING


def _other_layer(row) -> bool:
    """Was the array made under another layer's name (`db1` returned as b2's gradient)? Then the slip may be
    where it was stored, which no statement of its chain shows."""
    made = re.fullmatch(r"[A-Za-z_]+?(\d+)", row.location.name or "")
    wanted = re.fullmatch(r"[A-Za-z_]+?(\d+)", row.grad_name or row.name)
    return made is not None and wanted is not None and made.group(1) != wanted.group(1)


def _search_uniform(args, chains, loss_node) -> None:
    """Every gradient off by one sign or factor: an edit of the first backward step, or of the loss, with
    which every row passes. Both are shown when both verify: the check cannot tell which one was meant."""
    out, rows, failed = args[:3]
    first = _first_step(chains, failed)
    row = out.rows[failed[-1]]
    found, tried = [], 0
    for n, at_loss in ((first, False), (loss_node, True)):
        if n is None:
            continue
        edits = _edits(n, row, _numpy_name(n), invert=at_loss)
        edits.sort(key=lambda e: not e[2])
        for kind, new, restoring in edits[:MAX_CANDIDATES // 2]:
            tried += 1
            fix = _try(args, n, kind, new, list(failed), at_loss=at_loss, restoring=restoring)
            if fix is not None:
                found.append(fix)
                break
    if found:
        fix = dataclasses.replace(found[0], alternative=found[1] if len(found) > 1 else None)
        # An edit of the loss that verifies as well (shown as the alternative) leaves the line unpinned: a loss
        # missing its minus and a first backward step with the subtraction the wrong way round look the same.
        pinned = not fix.at_loss and fix.restoring and fix.alternative is None
        why = "fix"
        if not pinned:
            found_at = _positive_loss_sign(args, fix, chains)
            if found_at is not None:
                (fix, first), pinned, why = found_at, True, "fix, loss positive"
        for j in failed:
            out.rows[j] = dataclasses.replace(out.rows[j], fix=fix, mistake=Mistake(
                fix.path, fix.line, fix.before, label(first), why) if pinned else None)
    else:
        lines = tuple(sorted({n.line for n in (first, loss_node) if n is not None}))
        for j in failed:
            out.rows[j] = dataclasses.replace(out.rows[j], fix_tried=tried, fix_lines=lines)


def _positive_loss_sign(args, fix: Fix, chains: dict) -> tuple[Fix, Node] | None:
    """Every gradient has the opposite sign, and an edit of the backward pass and a minus added to the loss
    both verify: is the backward pass the slip, and where? Only when the loss is positive (a negated loss
    would be negative, which no usual loss — squared error, cross-entropy, their regularised forms — is)
    and exactly one backward statement every gradient comes from has a minus that, taken out (or its
    subtraction turned round), makes the check pass: that edit, with the loss's as its alternative."""
    out, failed = args[0], args[2]
    alt = fix if fix.at_loss else fix.alternative
    if fix.kind != "sign" or alt is None or not alt.at_loss or out.loss_value is None or not out.loss_value > 0:
        return None
    statements = sorted({_where(n): n for n in _shared(chains, failed)}.values(), key=lambda n: -n.order)
    row, found = out.rows[failed[-1]], []
    for n in statements[:MAX_STATEMENTS]:
        for kind, new, restoring in _edits(n, row, _numpy_name(n)):
            if kind != "sign" or not restoring:
                continue
            if out.evaluations >= MAX_EVALUATIONS:
                return None  # not every statement could be tried
            verified = _try(args, n, kind, new, list(failed), restoring=True)
            if verified is not None:
                found.append((dataclasses.replace(verified, alternative=alt), n))
                break
    return found[0] if len(found) == 1 else None


def _shared(chains: dict, failed: list) -> list:
    """The statements every failed row's chain holds."""
    if len(chains) != len(failed) or not all(chains.values()):
        return []
    common = set.intersection(*({_where(n) for n in c} for c in chains.values()))
    return [n for c in chains.values() for n in c if _where(n) in common]


def _try(args, n: Node, kind: str, new: str, affected: list, at_loss: bool = False,
         restoring: bool = False) -> Fix | None:
    out, rows = args[0], args[1]
    if out.evaluations >= MAX_EVALUATIONS or not affected:
        return None
    out.tried += 1
    edited = _edited_statement(n, new)
    if edited is None or not _verify(args, n, edited[0], affected, at_loss):
        return None
    return Fix(n.path, n.line if edited[1] == n.text else _value_expr(n).lineno, edited[1], edited[2], kind,
               tuple(rows[j].name for j in affected), at_loss, restoring=restoring)


def _numpy_name(n: Node) -> str | None:
    g = n.globals or {}
    return next((k for k, v in g.items() if v is np), None)


def _edited_statement(n: Node, new_value: str) -> tuple[str, str, str] | None:
    """(the edited statement's source, the line as it was, the line as edited) — the lines for display:
    the whole statement when it fits on one line, else the physical line that changed."""
    expr = _value_expr(n)
    s = n.stmt
    if expr is None or expr.lineno != expr.end_lineno:
        return None
    lines = [ln.encode() for ln in linecache.getlines(n.code.co_filename)[s.lineno - 1:s.end_lineno]]
    if len(lines) != s.end_lineno - s.lineno + 1:
        return None
    k = expr.lineno - s.lineno
    before = lines[k]
    if new_value is _FLIP:  # `dW -= x` -> `dW += x`: the operator between the target and the value
        if not (isinstance(s, ast.AugAssign) and s.target.end_lineno == expr.lineno):
            return None
        gap = before[s.target.end_col_offset:expr.col_offset]
        op = b"-=" if isinstance(s.op, ast.Sub) else b"+="
        if gap.count(op) != 1:
            return None
        lines[k] = before[:s.target.end_col_offset] + gap.replace(op, b"+=" if op == b"-=" else b"-=") + \
            before[expr.col_offset:]
    else:
        lines[k] = before[:expr.col_offset] + new_value.encode() + before[expr.end_col_offset:]
    after = lines[k]
    lines[-1] = lines[-1][:s.end_col_offset + (len(after) - len(before) if k == len(lines) - 1 else 0)]
    lines[0] = lines[0][s.col_offset:]
    text = b"".join(lines).decode(errors="replace")
    if len(lines) == 1:
        return text, n.text, text.strip()
    return text, _code(before.decode(errors="replace")), _code(after.decode(errors="replace"))


def _code(line: str) -> str:
    """A physical line without its comment (a `#` outside quotes) and surrounding blanks."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#":
            return line[:i].strip()
    return line.strip()


def _compile_edit(n: Node, text: str) -> types.CodeType | None:
    """The function's code with one statement replaced, compiled from its own def block."""
    from . import _trace

    code = n.code
    lines = linecache.getlines(code.co_filename)
    source, tree = _trace._own_source(lines, code)
    if tree is None:
        return None
    try:
        body = ast.parse(text).body
    except SyntaxError:
        return None
    # one statement, or a statement and the one added after it (a missing statement)
    new_stmt = body[0] if len(body) == 1 else body
    for sub in (s for b in body for s in ast.walk(b)):
        if "lineno" in sub._attributes:
            sub.lineno = sub.end_lineno = n.stmt.lineno
            sub.col_offset, sub.end_col_offset = n.stmt.col_offset, n.stmt.end_col_offset

    class Swap(ast.NodeTransformer):
        done = False

        def generic_visit(self, node):
            if isinstance(node, ast.stmt) and node.lineno == n.stmt.lineno and \
                    node.col_offset == n.stmt.col_offset and type(node) is type(n.stmt):
                self.done = True
                return new_stmt
            return super().generic_visit(node)

    swap = Swap()
    tree = swap.visit(tree)
    if not swap.done:
        return None
    try:
        new = _trace._compile_def(tree, code, code.co_filename, _trace._calls_through_imports(code))
    except Exception:
        return None
    if new is None or new.co_freevars != code.co_freevars:
        return None
    return new


@contextlib.contextmanager
def _swapped(code: types.CodeType, new: types.CodeType):
    """Every function running `code` runs `new` instead, until the block ends.  The functions are found
    once per search: asking the collector scans every object of the process (in a test session, a tenth
    of a second a candidate)."""
    known = _FUNCTIONS.get()
    fns = known.get(code) if known is not None else None
    if fns is None:
        fns = [f for f in gc.get_referrers(code) if isinstance(f, types.FunctionType) and f.__code__ is code]
        if known is not None:
            known[code] = fns
    for f in fns:
        f.__code__ = new
    try:
        yield bool(fns)
    finally:
        for f in fns:
            f.__code__ = code


def _verify(args, n: Node, text: str, affected: list, at_loss: bool) -> bool:
    """Does the check of the affected rows pass with the edit, every other gradient unchanged?"""
    from ._gradcheck import _gradcheck

    out, rows, failed, values, loss, grads, combined, params, leaves, options = args
    new = _compile_edit(n, text)
    if new is None:
        return False
    token = _SEARCHING.set(True)
    try:
        with _swapped(n.code, new) as found, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # what an edited line warns about is not the user's to read
            if not found:
                return False
            try:
                result = (loss if combined else grads)(_fresh(params, leaves))
            except Exception:
                return False
            if combined:
                out.evaluations += 1
                result = result[1] if isinstance(result, (tuple, list)) and len(result) == 2 else None
            now = _gradtree.lookup_grads(result, leaves).values
            for j, r in enumerate(rows):  # an edit changes the affected gradients and no other
                if j not in affected and not _same(values[j], now[j]):
                    return False
            if not at_loss and not any(not _same(values[j], now[j]) for j in affected):
                return False
            result = now = None
            sub_params, sub_loss, sub_grads = _sub_problem(affected, loss, grads, combined, params, leaves)
            # One direction first (a few evaluations): most wrong edits fail there; then the check itself.
            for mode in ("directions:1", options["mode"]):
                try:
                    report = _gradcheck(sub_loss, sub_grads, sub_params, mode, options["eps"],
                                        options["rtol"], options["atol"], options["seed"])
                except Exception:
                    return False
                out.evaluations += report.evaluations
                passed, report = report.passed, None  # its rows' error maps go before the next check
                if not passed:
                    return False
            return True
    finally:
        _SEARCHING.reset(token)


def _digest(a) -> tuple | None:
    """What identifies a gradient's values without holding them: dtype, shape and a hash of the bytes."""
    if type(a) is not np.ndarray:
        return None
    return a.dtype.str, a.shape, hashlib.blake2b(np.ascontiguousarray(a).data, digest_size=16).digest()


def _same(digest, b) -> bool:
    return digest == _digest(b)


def _sub_problem(affected: list, loss, grads, combined, params, leaves):
    """The check restricted to some leaves: the others are held at their values (a private copy), the
    affected ones are the sub-check's own (private) arrays."""
    names = {j: leaves[j].name for j in affected}
    counter = iter(range(len(leaves)))
    # The user's own arrays as the sub-check's parameters: the check only reads them (its loss sees copies).
    sub = {names[j]: leaves[j].value for j in affected}
    frozen = _gradtree.map_leaves(params, lambda v: (lambda j: None if j in names else np.array(v, copy=True))(
        next(counter)))

    def full(p):
        it = iter(range(len(leaves)))

        def leaf(v):
            j = next(it)
            return p[names[j]] if j in names else (v.dtype.type(v[()]) if leaves[j].scalar else v)
        return _gradtree.map_leaves(frozen, leaf)

    def pick(raw):
        vals = _gradtree.lookup_grads(raw, leaves).values
        return {names[j]: vals[j] for j in affected}

    if combined:
        def sub_loss(p):
            value, raw = loss(full(p))
            return value, pick(raw)
        return sub, sub_loss, None
    return sub, (lambda p: loss(full(p))), (lambda p: pick(grads(full(p))))
