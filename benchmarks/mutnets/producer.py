"""Ground truth for the benchmark's "producing line" figure, computed without shapecheck's code.

``producers(grads, params, path)`` calls ``grads(params)`` once under its own small ``sys.settrace``
pass over the frames running code of the file ``path`` (the mutant's). After each line of such a frame,
and when it returns, it looks at the arrays the frame can reach (its locals, one level into dicts, lists
and tuples, and the attributes of ``self``) and at what it returns: an array seen for the first time was
bound by the statement that just ran. Every array seen is held until the call is over, so an ``id`` is
never reused. The statement that first bound the array returned for each parameter is its producer:
``(first line, last line)`` of that statement in the file, or None when no statement of the file bound it
(an argument, data, or an array the tracer could not reach).
"""

from __future__ import annotations

import ast
import sys
from typing import Any

import numpy as np

from .mutator import leaves


def _statements(path: str) -> dict[int, tuple[int, int]]:
    """Line -> (first, last line) of the innermost simple statement there."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    out = {}
    simple = [s for s in ast.walk(tree) if isinstance(s, ast.stmt) and not hasattr(s, "body")]
    for s in sorted(simple, key=lambda s: -(s.end_lineno - s.lineno)):  # the innermost wins
        for ln in range(s.lineno, s.end_lineno + 1):
            out[ln] = (s.lineno, s.end_lineno)
    return out


def _reachable(frame, extra=None):
    roots = list(frame.f_locals.items())
    if extra is not None:
        roots.append(("<returned>", extra))
    for key, v in roots:
        yield v
        if isinstance(v, dict):
            yield from v.values()
        elif isinstance(v, (list, tuple)):
            yield from v
        elif key == "self":
            yield from getattr(v, "__dict__", {}).values()


def producers(grads, params: Any, path: str) -> dict[str, tuple[int, int] | None]:
    """Parameter name -> (first, last line) of the statement of ``path`` that first bound its gradient."""
    made: dict[int, int] = {}  # id -> line of the statement that first held it
    held: list = []
    last: dict = {}  # frame -> the line it is running

    def note(frame, line, extra=None):
        for v in _reachable(frame, extra):
            if type(v) is np.ndarray and id(v) not in made:
                made[id(v)] = line
                held.append(v)

    def local(frame, event, arg):
        if event == "line":
            if frame in last:
                note(frame, last[frame])
            last[frame] = frame.f_lineno
        elif event == "return" and frame in last:
            note(frame, last.pop(frame), arg)
        return local

    def global_(frame, event, arg):
        return local if frame.f_code.co_filename == path else None

    # Arrays that exist before the call (parameters, data) were bound by no statement of it.
    for _, _, a in leaves(params):
        made[id(a)] = None
        held.append(a)
    previous = sys.gettrace()
    sys.settrace(global_)
    try:
        result = grads(params)
    finally:
        sys.settrace(previous)
    lines = _statements(path)
    out = {}
    for name, keys, _ in leaves(params):
        node = result
        for key in keys:
            if isinstance(node, dict):
                node = node.get(key, node.get("d" + str(key)))
            elif isinstance(node, (list, tuple)) and isinstance(key, int) and key < len(node):
                node = node[key]
            else:
                node = None
        line = made.get(id(node)) if type(node) is np.ndarray else None
        out[name] = lines.get(line) if line is not None else None
    held.clear()
    return out
