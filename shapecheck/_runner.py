"""Run a script as `python SCRIPT ARGS...` would, with its code and its own modules rewritten.

The steps are those of pytest's assertion rewriting: read, parse, rewrite,
compile with the real file name, exec.  Nothing is cached on disk.  Modules
the script imports from its own folder tree are rewritten by an import hook;
the standard library and installed packages never are.
"""

from __future__ import annotations

import ast
import builtins
import codecs
import importlib.machinery
import importlib.util
import os
import re
import sys
import types

from . import _recorder
from ._errors import UsageError
from ._rewrite import AST_LOCK, gc_paused, rewrite

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


_START_CWD: str | None = None  # set by `prepare`: the folder a script's paths are shown from, even after it
# chdirs or removes it; otherwise (@trace, gradcheck) the current working directory


def display_path(filename: str) -> str:
    """A path as the user would write it: relative to the working directory when inside it."""
    try:
        rel = os.path.relpath(filename, _START_CWD or os.getcwd())
    except (ValueError, OSError):  # another drive; a working directory that no longer exists
        return filename
    return filename if rel.startswith(os.pardir) else rel


def read_source(path: str) -> str:
    """The script's text, decoded as Python would decode it (PEP 263); SyntaxError worded as `python SCRIPT`
    words it when it cannot be."""
    with open(path, "rb") as f:
        raw = f.read()
    return decode_script(raw, path)


# compiled at first use: only a file that declares an encoding needs them
_COOKIE = rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)"
_BLANK = rb"^[ \t\f]*(?:[#\r\n]|$)"


def _normal_name(name: str) -> str:
    """The tokenizer's spelling of an encoding name (Parser/tokenizer.c get_normal_name)."""
    low = name[:12].lower().replace("_", "-")
    if low == "utf-8" or low.startswith("utf-8-"):
        return "utf-8"
    if low in ("latin-1", "iso-8859-1", "iso-latin-1") or low.startswith(("latin-1-", "iso-8859-1-", "iso-latin-1-")):
        return "iso-8859-1"
    return name


def _cookie(raw: bytes) -> str | None:
    """The encoding declared on line 1 or 2 (line 2 only after a blank or comment line), as the tokenizer reads it."""
    lines = raw.removeprefix(codecs.BOM_UTF8).splitlines(keepends=True)[:2]
    for i, line in enumerate(lines):
        m = re.match(_COOKIE, line) if b"coding" in line else None
        if m:
            return _normal_name(m.group(1).decode("ascii"))
        if i == 0 and (len(lines) == 1 or b"coding" not in lines[1] or not re.match(_BLANK, line)):
            return None
    return None


def decode_script(raw: bytes, path: str) -> str:
    """`raw` decoded as `python path` decodes a script; a SyntaxError with Python's own wording when it cannot be."""
    nul = raw.find(b"\0")
    if nul >= 0:
        lineno = raw.count(b"\n", 0, nul) + 1
        start = raw.rfind(b"\n", 0, nul) + 1
        text = raw[start:nul].decode("utf-8", "replace")
        raise SyntaxError("source code cannot contain null bytes", (path, lineno, None, text))
    bom = raw.startswith(codecs.BOM_UTF8)
    declared = _cookie(raw)
    if bom and declared not in (None, "utf-8"):
        raise SyntaxError(f"encoding problem: {declared} with BOM")
    if declared not in (None, "utf-8"):
        try:
            raw.decode(declared)
        except (LookupError, UnicodeDecodeError):
            raise SyntaxError(f"encoding problem: {declared}") from None
        return importlib.util.decode_source(raw)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as e:
        if bom or declared:
            # Declared UTF-8: Python's parser reports bad bytes where they matter (in a string, a name)
            # and runs the script when they are in comments only.
            compile(raw, path, "exec", dont_inherit=True)
            text = raw.decode("utf-8-sig", "replace")
            return text.replace("\r\n", "\n").replace("\r", "\n")
        lineno = raw.count(b"\n", 0, e.start) + 1
        raise SyntaxError(f"Non-UTF-8 code starting with '\\x{raw[e.start]:02x}' in file {path} on line {lineno}, "
                          f"but no encoding declared; see https://peps.python.org/pep-0263/ for details") from None
    return importlib.util.decode_source(raw)


def compile_file(filename: str, source: str):
    """Rewrite and compile one file; registers its sites with the recorder.

    A SyntaxError is the user's and propagates.  Any other failure is shapecheck's own: the file then
    runs as written, untraced, and the report counts an internal error.
    """
    with gc_paused(), AST_LOCK:
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
        return module_code(self, path, self.get_data(path))


def module_code(loader: importlib.machinery.SourceFileLoader, path: str, data: bytes):
    """An imported module's code, rewritten; as written when its text cannot be decoded (Python imports
    a file whose comments only are not valid in its encoding, but we cannot parse it as text)."""
    try:
        source = importlib.util.decode_source(data)
    except (UnicodeDecodeError, SyntaxError):  # decoding only: Python's own compile below judges the rest
        _recorder.STATE.untraced.append(display_path(path))
        return loader.source_to_code(data, path)
    return compile_file(path, source)


class UserModuleFinder:
    """Finds modules in the script's folder tree (not the stdlib, not installed packages) and rewrites them.

    A meta path finder needs only `find_spec`: deriving from importlib.abc.MetaPathFinder would import
    importlib.resources (and tempfile, shutil, bz2, lzma with it) at start-up."""

    def __init__(self, root: str):
        self.root = os.path.realpath(root)
        self._excluded: set[str] | None = None
        self._inside: dict[str, bool] = {}  # a search path entry -> is it in the script's folder tree?

    @property
    def excluded(self) -> set[str]:
        """The interpreter's and installed packages' folders, found when a module in the script's folder tree is
        first imported: sysconfig's first look-up was a twentieth of shapecheck's start-up."""
        if self._excluded is None:
            import sysconfig

            paths = sysconfig.get_paths()
            self._excluded = {os.path.realpath(p) for p in (
                sys.prefix, sys.base_prefix, sys.exec_prefix, paths.get("stdlib"), paths.get("purelib"),
                paths.get("platlib"), PACKAGE_DIR) if p}
        return self._excluded

    def wants(self, filename: str) -> bool:
        real = os.path.realpath(filename)
        if not real.endswith(".py") or not real.startswith(self.root + os.sep):
            return False
        if any(real == p or real.startswith(p + os.sep) for p in self.excluded):
            return False
        parts = real.split(os.sep)
        return "site-packages" not in parts and "dist-packages" not in parts

    def find_spec(self, fullname, path=None, target=None):
        # The first entry holding the module wins, so only the entries up to the last one in the script's
        # folder tree can give a module of ours: numpy's or pandas's submodules are not searched for twice.
        entries = self._searched(sys.path if path is None else path)
        if not entries:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, entries)
        if spec is None or spec.origin is None or not isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            return None
        if not self.wants(spec.origin):
            return None
        spec.loader = _RewritingLoader(fullname, spec.origin)
        return spec

    def _searched(self, entries) -> list:
        """`entries` up to the last one inside the script's folder tree (none: an empty list)."""
        entries = list(entries)
        inside = self._inside
        for k in range(len(entries) - 1, -1, -1):
            entry = entries[k]
            known = inside.get(entry) if isinstance(entry, str) else False
            if known is None:
                real = os.path.realpath(entry or os.curdir)
                known = real == self.root or real.startswith(self.root + os.sep)
                if os.path.isabs(entry):  # a relative one ('' too) moves with the working folder
                    inside[entry] = known
            if known:
                return entries[:k + 1]
        return []


class Outcome:
    """How the script ended: its exit status, and the exception that ended it, if any."""

    __slots__ = ("status", "exc", "namespace")

    def __init__(self, status: int, exc: BaseException | None = None, namespace: dict | None = None):
        self.status = status
        self.exc = exc
        self.namespace = namespace  # the script's globals, for --grad


def check_script(path: str) -> None:
    """UsageError for what `python SCRIPT` could not even start (missing, a directory, unreadable) and for what
    shapecheck does not run (a zip application; `-` when stdin is a terminal, where Python starts its REPL)."""
    if path == "-":
        if sys.stdin is None:
            raise UsageError("'-' reads the script from stdin, which is closed")
        if sys.stdin.isatty():
            raise UsageError("'-' reads the script from stdin, which is a terminal here: pipe the script in")
        return
    if not os.path.exists(path):
        raise UsageError(f"can't open file {path!r}: [Errno 2] No such file or directory")
    if os.path.isdir(path):
        raise UsageError(f"{path!r} is a directory, not a Python script")
    if not os.access(path, os.R_OK):
        raise UsageError(f"can't open file {path!r}: permission denied")
    if _maybe_zip(path) and _is_zipfile(path):  # `python app.zip` runs the __main__.py inside: not source
        raise UsageError(f"{path!r} is a zip application; shapecheck runs Python source files: "
                         f"run the __main__.py it contains instead")


def _maybe_zip(path: str) -> bool:
    """False when the file has no zip end-of-directory mark near its end (zipfile looks no further back):
    the common case then costs no import of zipfile (and zlib, bz2, lzma, shutil with it)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(f.tell() - (1 << 16) - 22, 0))
            return b"PK\x05\x06" in f.read()
    except OSError:
        return True  # let zipfile decide, as before


def _is_zipfile(path: str) -> bool:
    import zipfile

    return zipfile.is_zipfile(path)


class Prepared:
    """A compiled script and the globals of its `__main__` module, ready to exec."""

    __slots__ = ("code", "globals")

    def __init__(self, code: types.CodeType, globals: dict):  # noqa: A002 - the name exec gives it
        self.code = code
        self.globals = globals


def prepare(path: str, args: list[str]) -> Prepared:
    """Compile `path` (`-`: stdin) rewritten and set up the interpreter as `python path ARGS...` would:
    `__main__`, `sys.argv`, `sys.path[0]`, the import hook for its own modules, the recorder.

    The caller execs the code itself, from as shallow a frame as it can, and hands any exception to
    `outcome`.  SyntaxError (the script's own, or its encoding's) propagates: report it as Python does.
    """
    global _START_CWD
    _START_CWD = os.getcwd()
    if path == "-":
        filename, path0 = "<stdin>", ""
        source = decode_script(sys.stdin.buffer.read(), filename)
        loader = importlib.machinery.BuiltinImporter
    else:
        # __file__ as Python gives it: made absolute, not normalised; sys.path[0]: the resolved folder
        filename = path if os.path.isabs(path) else os.path.join(os.getcwd(), path)
        path0 = os.path.dirname(os.path.realpath(filename))
        source = read_source(filename)
        loader = importlib.machinery.SourceFileLoader("__main__", filename)
    code = compile_file(filename, source)

    # What `python SCRIPT` gives its __main__ module, attribute for attribute.
    main = types.ModuleType("__main__")
    main.__annotations__ = {}
    main.__file__ = filename
    main.__builtins__ = builtins
    main.__loader__ = loader
    main.__spec__ = None
    main.__cached__ = None
    main.__package__ = None
    sys.modules["__main__"] = main
    sys.argv = [path] + list(args)
    if sys.path:
        sys.path[0] = path0
    else:
        sys.path.insert(0, path0)
    sys.meta_path.insert(0, UserModuleFinder(path0 or os.getcwd()))
    _recorder.install()
    return Prepared(code, main.__dict__)


def outcome(exc: BaseException | None, namespace: dict) -> Outcome:
    """How the script ended, from the exception its code raised (None: it returned)."""
    if exc is None:
        return Outcome(0, None, namespace)
    if isinstance(exc, SystemExit):
        return Outcome(_exit_status(exc), None, namespace)
    exc.__traceback__ = strip_own_frames(exc.__traceback__)
    return Outcome(130 if isinstance(exc, KeyboardInterrupt) else 1, exc, namespace)


def run_script(path: str, args: list[str]) -> Outcome:
    """Run `path` as the `__main__` module with `sys.argv = [path, *args]`; never raises for the script's sake.

    SyntaxError (the script's own, or its encoding's) propagates: the caller reports it as Python does.
    """
    prepared = prepare(path, args)
    try:
        exec(prepared.code, prepared.globals)
    except BaseException as e:  # the script's own exception: the caller explains and reports it
        return outcome(e, prepared.globals)
    return outcome(None, prepared.globals)


def print_exception(exc: BaseException) -> int | None:
    """Show an uncaught exception as the interpreter does: through `sys.excepthook`, and when the hook is
    missing or fails, Python's own fallback text.  Returns the exit status a SystemExit raised by the hook
    asks for (Python honours it), else None."""
    hook = getattr(sys, "excepthook", _MISSING)
    if hook is _MISSING:
        _write_stderr("sys.excepthook is missing\n")
        sys.__excepthook__(type(exc), exc, exc.__traceback__)
        return None
    try:
        hook(type(exc), exc, exc.__traceback__)
    except SystemExit as e:
        return _exit_status(e)
    except BaseException as e:  # the user's hook failed: Python prints both, its failure first
        _write_stderr("Error in sys.excepthook:\n")
        e.__traceback__ = strip_own_frames(e.__traceback__)
        sys.__excepthook__(type(e), e, e.__traceback__)
        _write_stderr("\nOriginal exception was:\n")
        sys.__excepthook__(type(exc), exc, exc.__traceback__)
    return None


_MISSING = object()


def _write_stderr(text: str) -> None:
    stream = sys.stderr
    if stream is not None and not getattr(stream, "closed", False):
        stream.write(text)


def flush_std_streams() -> None:
    """Flush stdout and stderr as the interpreter does at exit: silently skipping closed or missing ones."""
    for stream in (sys.stdout, sys.stderr):
        if stream is not None and not getattr(stream, "closed", False):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass


def finish_like_python() -> None:
    """What the interpreter does after the main module: join non-daemon threads, run atexit handlers.
    Done before the report is written, so that their output comes before it, as it would without us."""
    import atexit

    threading = sys.modules.get("threading")  # as the interpreter does: never imported, no thread to join
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
        # the interpreter converts the code to a C long (-1 when it does not fit), then exit() keeps 8 bits;
        # from 3.12 it also reports the failed conversion
        if -2 ** 63 <= code < 2 ** 63:
            return code & 0xFF
        if sys.version_info >= (3, 12):
            _write_stderr("OverflowError: Python int too large to convert to C long\n")
        return 255
    _write_stderr(f"{code}\n")
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
