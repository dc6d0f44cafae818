"""One root cause, not N symptoms: findings whose operand got its bad shape at the same statement.

Labels made rank-1 once (`y = data[:, -1]`) show up as an outer broadcast in the loss, in its gradient and
in the accuracy, and as a weight that drifts after the update.  Each finding is true, but the fix is one
edit at the statement that made `y`.  A group is formed only when shape algebra shows that edit fixes every
member (its rule no longer fires on the shapes the edit gives) and breaks no other recorded operation.

Provenance crosses calls: a function's parameter is the argument its callers pass, when every call of it
in the file passes the same variable (`loss.forward(out, y)` binds `y_true` to `y`).
"""

from __future__ import annotations

import ast

from . import _calls
from ._events import Record, Site, SiteLog, replace
from ._report import Finding, Root
from ._rules import SITE_RULES, Context, _functions, _paren, _TREES
from ._shapes import fmt

_MAX_ORIGINS = 16  # candidate origins tried per run (each is one replay of the recorded shapes)


def group(findings: list[Finding], ctx: Context) -> None:
    """Attach a `Root` to the findings that share a verified origin, and say so in their text."""
    loud = [f for f in findings if f.severity != "info" and f.root is None]
    if len(loud) < 2:
        return
    rctx = Context(ctx.logs)
    rctx.bound.update(ctx.bound)
    for key, params in static_bindings(ctx.logs).items():
        rctx.bound.setdefault(key, params)
    tried = set()
    for origin, name in _origins(loud, rctx):
        if origin.site.id in tried or len(tried) >= _MAX_ORIGINS:
            continue
        tried.add(origin.site.id)
        best = None
        for shape, call, verb in _proposals(rctx.value(origin).shape):
            members = _fixed_by(loud, rctx, origin, shape)
            if members is not None and len(members) >= 2 and (best is None or len(members) > len(best[0])):
                best = members, shape, call, verb
        if best is None:
            continue
        members, shape, call, verb = best
        target = origin.site.targets[0]
        root = Root(target, origin.site.path, origin.site.line, origin.site.text.strip(),
                    tuple(rctx.value(origin).shape), shape,
                    f"{target} = {_paren(origin.site.text.strip())}{call} at line {origin.site.line} -> {fmt(shape)}",
                    verb, [(f.code, f.site.path, f.site.line) for f in members], origin.site.id)
        for f in members:
            f.root = root
            n = len(members)
            f.message += f"; the root cause, shared by {n} findings: {target} became {fmt(root.shape)} at line {root.line}"
            here = f"; here only: {f.fix}" if f.fix else ""
            f.fix = f"{verb} {target} once at line {root.line} (the root cause: fixes all {n}){here}"
        loud = [f for f in loud if f.root is None]


def _origins(findings: list[Finding], ctx: Context):
    """(assignment, name) that gave a finding's named operand its value, most shared first."""
    from ._explain import _name_in

    count: dict[int, list] = {}
    for f in findings:
        for spec in f.site.operands:
            named = _name_in(spec)
            log = ctx.assignment(named[0], f.site) if named else None
            value = ctx.value(log) if log is not None else None
            if log is None or log.site.kind != "assign" or value is None or value.shape is None \
                    or not log.site.targets or not log.site.targets[0].isidentifier():
                continue
            count.setdefault(log.site.id, [log, log.site.targets[0], 0])[2] += 1
    for log, name, _ in sorted(count.values(), key=lambda c: (-c[2], c[0].site.line)):
        yield log, name


def _proposals(shape):
    """Shapes one edit at the origin could give: a column for a rank-1 array, rank-1 for a column."""
    if shape is None:
        return
    if len(shape) == 1 and shape[0] > 1:
        yield (shape[0], 1), ".reshape(-1, 1)", "reshape"
    if len(shape) == 2 and shape[1] == 1 and shape[0] > 1:
        yield (shape[0],), ".ravel()", "flatten"


def _replay(ctx: Context, origin: SiteLog, shape):
    """The recorded shapes replayed with the origin's result changed (calls by `_calls`' algebra)."""
    from ._explain import _INVALID, _UNKNOWN, _Flow, _result_with

    class Replay(_Flow):
        def record(self, log):
            # The first pass through the code: later runs may already hold shapes a drift made.
            return log.records[0] if log.records else log.last

        def result(self, site: Site, shapes, values):
            if any(s is None for s in shapes):
                return _UNKNOWN
            if site.kind in ("binop", "compare", "augassign") or site.callee in ("dot", "matmul"):
                return _result_with(site, shapes) or _INVALID
            if site.kind in ("call", "method"):
                vals = tuple(replace(v, shape=tuple(s)) if v.shape is not None else v for v, s in zip(values, shapes))
                out, error = _calls.result_of_call(site, vals)
                if out is not None or error is not None:
                    return out if out is not None else _INVALID
                if site.kind == "method" and site.callee in _SAME_SHAPE:
                    return tuple(shapes[0])
            return _UNKNOWN

    return Replay(ctx, {origin.site.id: shape})


_SAME_SHAPE = frozenset({"astype", "copy", "clip", "round", "fillna"})


def _fixed_by(findings: list[Finding], ctx: Context, origin: SiteLog, shape) -> list[Finding] | None:
    """The findings the edit fixes, or None when it would break a recorded operation or make a new finding."""
    from ._explain import _INVALID, _UNKNOWN

    flow = _replay(ctx, origin, shape)
    flagged = {(f.site.id, f.code) for f in findings}
    fixed, changed = [], {}
    for log in ctx.logs:
        if log.last is None or log.site.id == origin.site.id:
            continue
        if log.site.kind == "assign":
            out = flow.site(log.site.id)
            if out is _INVALID:
                return None
            continue
        first = flow.record(log)
        shapes = [flow.operand(log.site, i) for i in range(len(log.site.operands))]
        if _INVALID in shapes:
            return None
        if all(s is None for s in shapes):
            continue
        out = flow.site(log.site.id)
        if out is _INVALID:
            return None
        if out is _UNKNOWN or _UNKNOWN in shapes:
            continue  # not modelled: neither a member nor evidence of harm
        new = _record(first, shapes, out)
        if new is None:
            continue
        changed[log.site.id] = new
        codes = {f.code for r in SITE_RULES if (f := r(log.site, new, ctx)) is not None and f.severity != "info"}
        if any((log.site.id, c) not in flagged for c in codes):
            return None  # the edit would make a new finding here: not a fix
    for f in findings:
        log = ctx.by_id.get(f.site.id)
        if log is None:
            continue
        if f.code == "SC103" and log.drift:
            source = log.site.value_of if log.site.value_of is not None else log.site.id
            after = flow.site(source)
            if after not in (None, _INVALID, _UNKNOWN) and all(tuple(after) == tuple(before) for _, before, _ in log.drift):
                fixed.append(f)
        elif f.site.id in changed:
            if all(r(f.site, changed[f.site.id], ctx) is None or r(f.site, changed[f.site.id], ctx).code != f.code
                   for r in SITE_RULES):
                fixed.append(f)
    return fixed


def _record(rec: Record, shapes, out) -> Record | None:
    """The record with the replayed operand shapes and result (None when a shape is not known)."""
    ops = tuple(replace(v, shape=tuple(s)) if s is not None and v.shape is not None else v
                for v, s in zip(rec.operands, shapes))
    if rec.result is None:
        return None
    result = replace(rec.result, shape=tuple(out)) if out is not None else rec.result
    return replace(rec, operands=ops, result=result)


# -- parameters bound by their callers ------------------------------------------------------------


def static_bindings(logs: list[SiteLog]) -> dict[tuple[str, str], dict[str, tuple[str, Site]]]:
    """(path, function scope) -> {parameter: (argument, calling site)} for the parameters to which every
    call of the function in its file passes the same variable from one scope."""
    out: dict[tuple[str, str], dict[str, tuple[str, Site]]] = {}
    for path in sorted({lg.site.path for lg in logs}):
        if path not in _BINDINGS:
            _BINDINGS[path] = _file_bindings(path)
        out.update(_BINDINGS[path])
    return out


_BINDINGS: dict[str, dict] = {}  # per file: its source does not change while it runs


def _file_bindings(path: str) -> dict:
    """static_bindings for one file."""
    out: dict[tuple[str, str], dict[str, tuple[str, Site]]] = {}
    _functions(path, "")  # parses and keeps the file's tree
    tree = _TREES.get(path)
    if tree is None:
        return out
    defs, calls = [], []
    _walk(tree, "<module>", defs, calls)
    for scope, fn, in_class in defs:
        params = [a.arg for a in fn.args.posonlyargs + fn.args.args]
        if in_class and params and params[0] in ("self", "cls"):
            params = params[1:]
        mine = [(s, c) for s, c in calls if _callee(c) == fn.name]
        if not mine or any(isinstance(a, ast.Starred) for _, c in mine for a in c.args):
            continue
        required = len(params) - len(fn.args.defaults)  # the calls may leave the defaulted ones out
        mine = [(s, c) for s, c in mine if required <= len(c.args) <= len(params)
                and (isinstance(c.func, ast.Attribute) == in_class)]
        if not mine or len({s for s, _ in mine}) != 1:
            continue
        bound = {}
        for i, p in enumerate(params):
            texts = {a.args[i].id if i < len(a.args) and isinstance(a.args[i], ast.Name) else None for _, a in mine}
            if len(texts) == 1 and None not in texts:
                scope_c, call = mine[0]
                site = Site(id=-1, path=path, line=call.lineno, col=call.col_offset + 1,
                            end_line=call.end_lineno or call.lineno, end_col=call.end_col_offset or 0,
                            kind="call", op="", text=ast.unparse(call), operands=(), scope=scope_c)
                bound[p] = (texts.pop(), site)
        if bound:
            out[(path, scope)] = bound
    return out


_SCOPES: dict[str, dict[str, ast.AST]] = {}  # path -> qualified scope -> its function (the module: "<module>")


def scope_function(path: str, scope: str) -> ast.AST | None:
    """The definition of a qualified scope (`Net.backward`) in a user's file; the module for "<module>"."""
    if path not in _SCOPES:
        _functions(path, "")  # parses and keeps the file's tree
        tree = _TREES.get(path)
        defs: list = []
        if tree is not None:
            _walk(tree, "<module>", defs, [])
        _SCOPES[path] = {"<module>": tree, **{q: fn for q, fn, _ in defs}} if tree is not None else {}
    return _SCOPES[path].get(scope)


def scopes_named(path: str, name: str | None) -> list[str]:
    """The qualified scopes of the functions called `name` in a user's file."""
    scope_function(path, "<module>")
    return [q for q in _SCOPES[path] if q != "<module>" and q.rsplit(".", 1)[-1] == name]


def _callee(call: ast.Call) -> str | None:
    return call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", None)


def _walk(node, scope: str, defs: list, calls: list, in_class: bool = False) -> None:
    """Function definitions with their qualified scope, and calls with the scope they are made from."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inner = child.name if scope == "<module>" else f"{scope}.{child.name}"
            defs.append((inner, child, in_class))
            _walk(child, inner, defs, calls)
        elif isinstance(child, ast.ClassDef):
            inner = child.name if scope == "<module>" else f"{scope}.{child.name}"
            _walk(child, inner, defs, calls, in_class=True)
        else:
            if isinstance(child, ast.Call):
                calls.append((scope, child))
            _walk(child, scope, defs, calls, in_class)
