"""Run a script as `python SCRIPT ARGS...` would, with its code and its own modules rewritten.

The steps are those of pytest's assertion rewriting: read, parse, rewrite,
compile with the real file name, exec.  Nothing is cached on disk.  Modules
the script imports from its own folder tree are rewritten by an import hook;
the standard library and installed packages never are.
"""

from __future__ import annotations

import ast
import builtins
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import sysconfig
import tokenize
import types
from dataclasses import dataclass

from . import _recorder
from ._errors import UsageError
from ._rewrite import rewrite

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def display_path(filename: str) -> str:
    """A path as the user would write it: relative to the working directory when inside it."""
    try:
        rel = os.path.relpath(filename)
    except ValueError:
        return filename
    return filename if rel.startswith(os.pardir) else rel


def read_source(path: str) -> str:
    """The script's text, decoded as Python would decode it (PEP 263); SyntaxError when it cannot be."""
    with open(path, "rb") as f:
        raw = f.read()
    return importlib.util.decode_source(raw) if _encoding_ok(raw, path) else ""


def _encoding_ok(raw: bytes, path: str) -> bool:
    import io

    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(raw).readline)
        raw.decode(encoding)
    except UnicodeDecodeError as e:
        # Python's own wording for a script that is not valid in its declared encoding.
        bad = raw[e.start:e.start + 1]
        lineno = raw[:e.start].count(b"\n") + 1
        err = SyntaxError(f"Non-UTF-8 code starting with '\\x{bad.hex()}' in file {path} on line {lineno}, "
                          f"but no encoding declared; see https://peps.python.org/pep-0263/ for details")
        raise err from None
    return True


def compile_file(filename: str, source: str):
    """Rewrite and compile one file; registers its sites with the recorder.

    A SyntaxError is the user's and propagates.  Any other failure is shapecheck's own: the file then
    runs as written, untraced, and the report counts an internal error.
    """
    tree = ast.parse(source, filename)
    try:
        rw = rewrite(source, filename, display_path(filename), _recorder.next_id(), tree)
    except SyntaxError:
        raise
    except Exception:  # pragma: no cover - a construct the rewriter does not handle
        _recorder.STATE.internal_errors += 1
        _recorder.STATE.untraced.append(display_path(filename))
        return compile(source, filename, "exec", dont_inherit=True)
    _recorder.register(rw, filename)
    _recorder.FILES[filename] = display_path(filename)
    return rw.code


class _RewritingLoader(importlib.machinery.SourceFileLoader):
    """Loads a user module from source, rewritten; never reads or writes bytecode caches."""

    def get_code(self, fullname):
        path = self.get_filename(fullname)
        source = importlib.util.decode_source(self.get_data(path))
        return compile_file(path, source)


class UserModuleFinder(importlib.abc.MetaPathFinder):
    """Finds modules in the script's folder tree (not the stdlib, not installed packages) and rewrites them."""

    def __init__(self, root: str):
        self.root = os.path.realpath(root)
        paths = sysconfig.get_paths()
        self.excluded = {os.path.realpath(p) for p in (
            sys.prefix, sys.base_prefix, sys.exec_prefix, paths.get("stdlib"), paths.get("purelib"),
            paths.get("platlib"), PACKAGE_DIR) if p}

    def wants(self, filename: str) -> bool:
        real = os.path.realpath(filename)
        if not real.endswith(".py") or not real.startswith(self.root + os.sep):
            return False
        if any(real == p or real.startswith(p + os.sep) for p in self.excluded):
            return False
        parts = real.split(os.sep)
        return "site-packages" not in parts and "dist-packages" not in parts

    def find_spec(self, fullname, path=None, target=None):
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.origin is None or not isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            return None
        if not self.wants(spec.origin):
            return None
        spec.loader = _RewritingLoader(fullname, spec.origin)
        return spec


@dataclass
class Outcome:
    """How the script ended: its exit status, and the exception that ended it, if any."""

    status: int
    exc: BaseException | None = None
    namespace: dict | None = None  # the script's globals, for --grad


def check_script(path: str) -> None:
    """UsageError for what `python SCRIPT` could not even start: missing, a directory, unreadable."""
    if not os.path.exists(path):
        raise UsageError(f"can't open file {path!r}: [Errno 2] No such file or directory")
    if os.path.isdir(path):
        raise UsageError(f"{path!r} is a directory, not a Python script")
    if not os.access(path, os.R_OK):
        raise UsageError(f"can't open file {path!r}: permission denied")


def run_script(path: str, args: list[str]) -> Outcome:
    """Run `path` as the `__main__` module with `sys.argv = [path, *args]`; never raises for the script's sake.

    SyntaxError (the script's own, or its encoding's) propagates: the caller reports it as Python does.
    """
    filename = os.path.abspath(path)
    source = read_source(filename)
    code = compile_file(filename, source)

    # What `python SCRIPT` gives its __main__ module, attribute for attribute.
    main = types.ModuleType("__main__")
    main.__annotations__ = {}
    main.__file__ = filename
    main.__builtins__ = builtins
    main.__loader__ = importlib.machinery.SourceFileLoader("__main__", filename)
    main.__spec__ = None
    main.__cached__ = None
    main.__package__ = None
    saved = (sys.modules.get("__main__"), sys.argv, sys.path[0] if sys.path else None)
    sys.modules["__main__"] = main
    sys.argv = [path] + list(args)
    script_dir = os.path.dirname(filename)
    if sys.path:
        sys.path[0] = script_dir
    else:
        sys.path.insert(0, script_dir)
    finder = UserModuleFinder(script_dir)
    sys.meta_path.insert(0, finder)
    _recorder.install()
    try:
        exec(code, main.__dict__)
    except SystemExit as e:
        return Outcome(_exit_status(e), None, main.__dict__)
    except BaseException as e:  # the script's own exception: the caller explains and reports it
        e.__traceback__ = strip_own_frames(e.__traceback__)
        return Outcome(130 if isinstance(e, KeyboardInterrupt) else 1, e, main.__dict__)
    return Outcome(0, None, main.__dict__)


def finish_like_python() -> None:
    """What the interpreter does after the main module: join non-daemon threads, run atexit handlers.
    Done before the report is written, so that their output comes before it, as it would without us."""
    import atexit
    import threading

    shutdown = getattr(threading, "_shutdown", None)
    if shutdown is not None:
        shutdown()
    atexit._run_exitfuncs()


def _exit_status(e: SystemExit) -> int:
    """What the interpreter would exit with for this SystemExit (printing a non-int code, as it does)."""
    code = e.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    sys.stderr.write(f"{code}\n")
    return 1


def strip_own_frames(tb):
    """Drop shapecheck's frames from a traceback so it reads as the plain script's would."""
    head = None
    prev = None
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if not filename.startswith(PACKAGE_DIR + os.sep):
            if prev is None:
                head = tb
            else:
                prev.tb_next = tb
            prev = tb
        tb = tb.tb_next
    if prev is not None:
        prev.tb_next = None
    return head
