"""From an exception to an explained crash: find the failing site in the traceback, read the failing
frame's names (never evaluating anything), explain, and attach the explanation as a PEP 678 note."""

from __future__ import annotations

import itertools

from . import _recorder
from ._explain import NOTE_MARK, Failure, explain, note
from ._report import Crash
from ._rules import Context, run

_MAX_DICT = 200  # dict entries read from the failing frame, per dict (parameters/grads dictionaries)


def _user_entries(tb):
    """Traceback entries in rewritten user files, innermost last."""
    out = []
    while tb is not None:
        if tb.tb_frame.f_code.co_filename in _recorder.FILES:
            out.append(tb)
        tb = tb.tb_next
    return out


def _position(tb) -> tuple[int, int, int, int] | None:
    code = tb.tb_frame.f_code
    index = tb.tb_lasti // 2
    pos = next(itertools.islice(code.co_positions(), index, None), None)
    if pos is None or None in pos:
        return None
    line, end_line, col, end_col = pos
    return line, col, end_line, end_col


def known_names(frame) -> dict:
    """Arrays visible in a frame, described: locals, globals, dict entries (`params["W1"]`), `self.` attributes."""
    from ._recorder import describe, kind_of_type

    out = {}

    def add(name, value):
        kind = kind_of_type(type(value))
        if kind in ("ndarray", "matrix", "Series", "DataFrame"):
            out.setdefault(name, describe(value))
        elif type(value) is dict and len(value) <= _MAX_DICT:
            for k, v in value.items():
                if type(k) is str and kind_of_type(type(v)) in ("ndarray", "matrix", "Series", "DataFrame"):
                    out.setdefault(f'{name}["{k}"]', describe(v))

    for ns in (frame.f_locals, frame.f_globals):
        for name, value in list(ns.items()):
            if not name.startswith("__"):
                add(name, value)
    inst = frame.f_locals.get("self")
    d = getattr(type(inst), "__dict__", None) and _instance_dict(inst)
    if d:
        for name, value in list(d.items()):
            add(f"self.{name}", value)
    return out


def _instance_dict(obj) -> dict | None:
    try:
        d = object.__getattribute__(obj, "__dict__")
    except (AttributeError, TypeError):
        return None
    return d if type(d) is dict else None


def locate(exc: BaseException) -> Failure | None:
    """The failing site of an exception raised in rewritten code, with what it was run with."""
    entries = _user_entries(exc.__traceback__)
    if not entries:
        return None
    tb = entries[-1]
    filename = tb.tb_frame.f_code.co_filename
    path = _recorder.FILES.get(filename, filename)
    pos = _position(tb)
    site = record = receiver = None
    if pos is not None:
        sid = _recorder.POSITIONS.get((filename,) + pos)
        if sid is not None:
            live = _recorder.LIVE[sid]
            site = live.log.site
            record = live.cur if live.cur is not _recorder._UNRECORDED else None
        else:
            sid = _recorder.ATTR_POSITIONS.get((filename,) + pos)
            if sid is not None and isinstance(exc, AttributeError):
                # `y.reshape(...)` on a Series fails while looking the method up, before the hook runs.
                site = _recorder.LIVE[sid].log.site
                recv_name = site.operands[0].name
                ns = tb.tb_frame.f_locals
                if recv_name is not None:
                    value = ns[recv_name] if recv_name in ns else tb.tb_frame.f_globals.get(recv_name, _MISSING)
                    if value is not _MISSING:
                        receiver = _recorder.describe(value)
    known = known_names(tb.tb_frame) if site is not None else {}
    return Failure(site, record, exc, known, receiver, path, tb.tb_lineno)


_MISSING = object()


def annotate(exc: BaseException, ignore=()) -> Crash | None:
    """Explain an exception raised in rewritten code and add the explanation to it as a note (once)."""
    try:
        failure = locate(exc)
        if failure is None:
            return None
        logs = _recorder.snapshot()
        crash = explain(failure, Context(logs), run(logs, ignore))
        if failure.site is not None and not any(
                isinstance(n, str) and n.startswith(NOTE_MARK) for n in getattr(exc, "__notes__", ())):
            exc.add_note(note(crash))
        return crash
    except Exception:  # pragma: no cover - explaining must never hide the user's own exception
        _recorder.STATE.internal_errors += 1
        return None
