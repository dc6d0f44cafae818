"""`python -m shapecheck [options] SCRIPT [ARGS...]`: run a script traced, then report.

Exit status: the script's own (0, 1 for an uncaught exception, its `sys.exit`
code), unless `--fail-on` is given and a finding at that level was made (then
1); 2 for a usage error, with one line on stderr, before the script runs, and
when the report could not be written to `--output` after it (the report then
goes to stderr).  `start` does everything before the script runs, `finish`
everything after; between them the caller execs the script's code.
"""

from __future__ import annotations

import contextlib
import os
import sys
import types

from . import __version__, _recorder
from ._errors import UsageError
from ._runner import (Prepared, check_script, display_path, finish_like_python, flush_std_streams, prepare,
                      print_exception)
from ._runner import outcome as outcome_of

# Start-up imports only what tracing needs (tests/test_startup.py pins the list): the rules, the explainer,
# the renderers (and tabulate), the gradient checker and tomllib are imported when used, after the script.

USAGE = "python -m shapecheck [options] SCRIPT [ARGS...]"


def _columns() -> int:
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns or 80
        except (AttributeError, ValueError, OSError):
            columns = 80
    return columns


def parser():
    """The command line's argparse parser (imported here: a plain run's options need no parser, see `options`)."""
    import argparse

    class _Parser(argparse.ArgumentParser):
        def error(self, message):  # one line, exit 2 (argparse would print the whole usage)
            if "required" in message:
                message = f"no script given (usage: {USAGE})"
            raise UsageError(message)

    class _Formatter(argparse.HelpFormatter):
        """argparse's help layout, measuring the terminal as shutil.get_terminal_size does: argparse builds a
        formatter for every add_argument, and importing shutil (with bz2, lzma) would cost every start-up."""

        def __init__(self, prog, indent_increment=2, max_help_position=24, width=None):
            super().__init__(prog, indent_increment, max_help_position, _columns() - 2 if width is None else width)

    ap = _Parser(prog="python -m shapecheck", usage=USAGE, formatter_class=_Formatter, description=(
        "Run SCRIPT as `python SCRIPT ARGS...` would, record the shape of every operand of every array "
        "operation, and report silent broadcasts, pandas/numpy mixing, shape drift and crashes, with fixes."))
    ap.add_argument("--format", choices=("text", "json", "markdown", "html"), default="text",
                    help="report format (default: text)")
    ap.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE instead of stderr")
    ap.add_argument("--log", action="store_true", help="include every recorded site with its shapes")
    ap.add_argument("--show-info", action="store_true", help="list info-level notes in the text report too")
    ap.add_argument("--fail-on", choices=("warning", "error"),
                    help="exit 1 when a finding at this level or worse was made")
    ap.add_argument("--ignore", metavar="CODES", default="",
                    help="comma-separated codes never to report (also [tool.shapecheck] ignore)")
    ap.add_argument("--grad", metavar="LOSS,GRADS,PARAMS",
                    help="after the script, check its gradients: names of the loss function, the gradient "
                         "function and the parameters in the script (or LOSS_AND_GRADS,PARAMS)")
    ap.add_argument("--version", action="version", version=f"shapecheck {__version__}")
    ap.add_argument("script", metavar="SCRIPT", help="the Python script to run")
    ap.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS", help="arguments for the script")
    return ap


# What `parser()` gives for `python -m shapecheck SCRIPT ARGS...` with no option (tests/test_startup.py checks it)
DEFAULTS = {"format": "text", "output": None, "log": False, "show_info": False, "fail_on": None, "ignore": "",
            "grad": None}


def options(argv: list[str]):
    """The parsed command line.  Everything after the script is the script's, whatever it looks like (`--`
    too: `python SCRIPT -- x` gives it `['--', 'x']`).  A plain run (the script first) is parsed without
    argparse: importing it (with gettext and locale) and building the parser cost a tenth of start-up."""
    if argv and not argv[0].startswith("-"):
        return types.SimpleNamespace(**DEFAULTS, script=argv[0], args=argv[1:])
    ns = parser().parse_args(argv)
    n = len(argv) - len(ns.args)  # where the script's arguments begin, unless argparse dropped a `--` there
    if n >= 2 and argv[n - 2] == ns.script and argv[n - 1] == "--":
        ns.args = argv[n - 1:]
    return ns


def config(start: str) -> dict:
    """[tool.shapecheck] of the nearest pyproject.toml at or above `start` (the script's folder), checked:
    `ignore` a list of codes or one comma-separated string, `fail-on` "warning" or "error"."""
    d = os.path.abspath(start)
    while True:
        p = os.path.join(d, "pyproject.toml")
        if os.path.isfile(p):
            import tomllib

            try:
                with open(p, "rb") as f:
                    tool = tomllib.load(f).get("tool", {})
            except (OSError, tomllib.TOMLDecodeError) as e:
                raise UsageError(f"cannot read {display_path(p)}: {e}") from None
            table = tool.get("shapecheck", {}) if isinstance(tool, dict) else {}
            return _checked(table, display_path(p))
        parent = os.path.dirname(d)
        if parent == d:
            return {}
        d = parent


def _checked(table, where: str) -> dict:
    if not isinstance(table, dict):
        raise UsageError(f"{where}: [tool.shapecheck] must be a table, not {table!r}")
    ignore = table.get("ignore", [])
    if isinstance(ignore, str):  # one string is a code list, as on the command line: never its characters
        ignore = ignore.split(",")
    if not isinstance(ignore, list) or not all(isinstance(c, str) for c in ignore):
        raise UsageError(f"{where}: [tool.shapecheck] ignore must be a list of codes such as [\"SC101\"] "
                         f"or a string such as \"SC101,SC102\", not {ignore!r}")
    fail_on = table.get("fail-on")
    if fail_on not in (None, "warning", "error"):
        raise UsageError(f"{where}: [tool.shapecheck] fail-on must be 'warning' or 'error', not {fail_on!r}")
    return {**table, "ignore": [c.strip() for c in ignore if c.strip()], "fail-on": fail_on}


def main(argv: list[str] | None = None) -> int:
    """The `shapecheck` console script; `python -m shapecheck` runs the same steps with a shallower stack."""
    plan = start(sys.argv[1:] if argv is None else argv)
    if isinstance(plan, int):
        return plan
    exc = None
    try:
        exec(plan.prepared.code, plan.prepared.globals)
    except BaseException as e:  # the script's own: `finish` reports it as Python would
        exc = e
    return finish(plan, exc)


class Plan:
    """What `start` prepared for one run: the options, the compiled script, where the report goes.
    (A plain class: creating a dataclass at import costs start-up time.)"""

    __slots__ = ("opts", "ignore", "fail_on", "output", "script", "prepared", "pid", "start_path")

    def __init__(self, opts, ignore: list[str], fail_on: str | None, output: str | None,
                 script: str, prepared: Prepared, pid: int, start_path: list[str]):
        self.opts = opts
        self.ignore = ignore
        self.fail_on = fail_on
        self.output = output  # absolute: resolved before the script can chdir
        self.script = script  # as the report names it
        self.prepared = prepared
        self.pid = pid  # the process that started the run: only it reports (a forked child exits as under Python)
        self.start_path = start_path  # sys.path before the script's folder was put first


def start(argv: list[str]) -> Plan | int:
    """Everything before the script runs: options, configuration, the report's file, the compiled script.
    An exit status instead when there is nothing to run (usage error: 2; the script does not compile: 1)."""
    try:
        opts = options(argv)
        check_script(opts.script)
        folder = os.getcwd() if opts.script == "-" else os.path.dirname(os.path.abspath(opts.script))
        cfg = config(folder)
        ignore = [c.strip() for c in opts.ignore.split(",") if c.strip()] + cfg.get("ignore", [])
        fail_on = opts.fail_on or cfg.get("fail-on")
        output = None if opts.output is None else _output_file(opts.output, opts.script)
        script = "<stdin>" if opts.script == "-" else display_path(opts.script)
        start_path = sys.path[:]
        try:
            prepared = prepare(opts.script, opts.args)
        except SyntaxError as e:
            # The script does not compile: say so exactly as Python would, and exit as Python does.
            import traceback

            sys.stderr.write("".join(traceback.format_exception_only(SyntaxError, e)))
            return 1
        except OSError as e:  # unreadable after all (a race, a FIFO gone): Python's wording
            raise UsageError(f"can't open file {opts.script!r}: [Errno {e.errno}] {e.strerror}") from None
    except UsageError as e:
        _say(f"shapecheck: error: {e}\n")
        return 2
    return Plan(opts, ignore, fail_on, output, script, prepared, os.getpid(), start_path)


def finish(plan: Plan, exc: BaseException | None) -> int:
    """Everything after the script's code returned or raised `exc`: show its exception as Python would,
    end like the interpreter (threads, atexit), write the report; the exit status."""
    outcome = outcome_of(exc, plan.prepared.globals)
    if os.getpid() != plan.pid:  # a child the script forked fell off its end: it exits as under Python
        return _end_unreported(outcome)
    try:
        return _finish(plan, outcome)
    except UsageError as e:
        _say(f"shapecheck: error: {e}\n")
        return 2


def _end_unreported(outcome) -> int:
    status = outcome.status
    if outcome.exc is not None:
        flush_std_streams()
        hook_status = print_exception(outcome.exc)
        status = status if hook_status is None else hook_status
    finish_like_python()
    flush_std_streams()
    if isinstance(outcome.exc, KeyboardInterrupt) and hasattr(os, "kill"):
        _die_of_sigint()
    return status


def _say(text: str) -> None:
    """Write to stderr, or straight to file descriptor 2 when the script closed or removed sys.stderr."""
    stream = sys.stderr
    if stream is not None and not getattr(stream, "closed", False):
        try:
            stream.write(text)
            stream.flush()
            return
        except (OSError, ValueError):
            pass
    try:
        os.write(2, text.encode("utf-8", "backslashreplace"))
    except OSError:
        pass


def _die_of_sigint() -> None:
    """End as `python SCRIPT` does after an uncaught KeyboardInterrupt: killed by SIGINT."""
    import _signal  # the C half: importing signal itself builds enums, and the script may have broken that

    flush_std_streams()
    _signal.signal(_signal.SIGINT, _signal.SIG_DFL)
    os.kill(os.getpid(), _signal.SIGINT)


_MISSING = object()


@contextlib.contextmanager
def _start_path(plan: Plan):
    """Import shapecheck's later modules (and tabulate) as they were found at start-up: the script's folder,
    now first on sys.path, may hold a file named like one of their imports (`textwrap.py`).  And as the
    interpreter was: importing threading (tabulate's importlib.metadata does) fails while sys.excepthook is
    None or deleted, as a script may leave it, so the hook Python started with stands in meanwhile."""
    now = sys.path[:]
    sys.path[:] = plan.start_path
    hook = getattr(sys, "excepthook", _MISSING)
    if hook is None or hook is _MISSING:
        sys.excepthook = sys.__excepthook__
    try:
        yield
    finally:
        sys.path[:] = now
        if hook is _MISSING:
            with contextlib.suppress(AttributeError):
                del sys.excepthook
        elif hook is None:
            sys.excepthook = None


def _finish(plan: Plan, outcome) -> int:
    with _start_path(plan):
        from . import _render, _rules
        from ._report import Report, rank

        if outcome.exc is not None:
            from ._crash import annotate  # the explainer: only for a script that crashed

    opts, ignore, fail_on = plan.opts, plan.ignore, plan.fail_on
    crash = None
    if outcome.exc is not None:
        # an exception whose __str__ raises is shown as Python shows it, and not explained
        crash = annotate(outcome.exc, ignore) if _first_line(outcome.exc) != _STR_FAILED else None
        flush_std_streams()
        hook_status = print_exception(outcome.exc)
        if hook_status is not None:
            outcome.status = hook_status
    finish_like_python()
    flush_std_streams()

    logs = _recorder.snapshot()
    report = Report(script=plan.script, exit_status=outcome.status,
                    findings=_rules.run(logs, ignore), crash=crash, sites=logs,
                    internal_errors=_recorder.STATE.internal_errors, untraced=list(_recorder.STATE.untraced))
    if crash is None and outcome.exc is not None:
        from ._report import Crash

        report.crash = Crash(type(outcome.exc).__name__, _first_line(outcome.exc), None, None, None)
    grad_failed = False
    if opts.grad:
        if outcome.exc is not None:
            sys.stderr.write("shapecheck: --grad: the gradient check did not run, because the script crashed\n")
        else:
            report.gradcheck, why = _gradcheck(opts.grad, outcome)
            if why is not None:
                sys.stderr.write(f"shapecheck: --grad: {why}\n")
            grad_failed = why is not None or not report.gradcheck.passed

    with _start_path(plan):
        rendered = _render.render(report, opts.format, log=opts.log, show_info=opts.show_info)
    status = outcome.status
    if plan.output is None:
        _say(rendered)
    elif not _write_report(plan.output, opts.output, rendered):
        _say(rendered)
        status = 2
    if fail_on and status == 0 and any(rank(f.severity) <= rank(fail_on) for f in report.findings):
        status = 1
    if grad_failed and status == 0:
        status = 1  # a gradient check that failed, or could not run, fails like a test
    if isinstance(outcome.exc, KeyboardInterrupt) and hasattr(os, "kill"):
        _die_of_sigint()
    return status


_STR_FAILED = "<exception str() failed>"


def _first_line(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # the user's __str__ failed: Python's own wording
        return _STR_FAILED
    return text.splitlines()[0] if text else ""


def _output_file(path: str, script: str) -> str:
    """The report's file, made absolute now (the script may chdir), checked before the script runs.

    Refused: an empty name, a directory, a missing folder, the script itself, and any existing regular file
    that is neither empty nor a shapecheck report (`_render.is_report`): a report never replaces the user's
    data.  Paths under /dev/ and /proc/ name streams (/dev/stdout) and are not checked for content.  Then the file is opened for writing, without changing it, to find what the OS would refuse
    (permissions, a name too long, a full device) before the run rather than after it.
    """
    if not path:
        raise UsageError("--output: the file name is empty")
    target = os.path.abspath(path)
    if os.path.isdir(target):
        raise UsageError(f"cannot write the report to {path!r}: it is a directory")
    if not os.path.isdir(os.path.dirname(target)):
        raise UsageError(f"cannot write the report to {path!r}: no such directory")
    if script != "-" and os.path.exists(target) and os.path.samefile(target, script):
        raise UsageError(f"refusing to write the report to {path!r}: it is the script")
    _refuse_to_replace(target, path)
    try:
        if os.path.exists(target):
            fd = os.open(target, os.O_WRONLY | os.O_APPEND)
            try:
                os.write(fd, b"")  # appends nothing; /dev/full refuses even this
            finally:
                os.close(fd)
        else:
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            os.unlink(target)
    except OSError as e:
        raise UsageError(f"cannot write the report to {path!r}: {e.strerror or e}") from None
    return target


def _refuse_to_replace(target: str, path: str) -> None:
    if target.startswith(_STREAMS) or not os.path.isfile(target) or os.path.getsize(target) == 0:
        return
    from . import _render
    try:
        with open(target, "rb") as f:
            data = f.read()
    except OSError as e:
        raise UsageError(f"cannot write the report to {path!r}: {e.strerror or e}") from None
    if not _render.is_report(data):
        raise UsageError(f"refusing to write the report to {path!r}: the file exists and is not a shapecheck "
                         f"report (choose another name or remove it)")


# /dev/stdout, /dev/fd/3, /proc/self/fd/1: a stream the caller opened (`> out.txt` holds the script's
# output too), not a file of the user's to protect
_STREAMS = ("/dev/", "/proc/")


def _write_report(target: str, path: str, rendered: str) -> bool:
    """Write the report to its file; False, with one line said, when that cannot be done (it then goes to
    stderr).  Checked again: the script may have created or filled the file while it ran."""
    try:
        _refuse_to_replace(target, path)
        # a stream is appended to: `-o /dev/stdout > all.txt` must not truncate what the script printed there
        with open(target, "a" if target.startswith(_STREAMS) else "w", encoding="utf-8") as f:
            f.write(rendered)
        return True
    except UsageError as e:
        why = str(e)
    except OSError as e:
        why = f"cannot write the report to {path!r}: {e.strerror or e}"
    _say(f"shapecheck: error: {why}; the report follows on stderr\n")
    return False


def _gradcheck(spec: str, outcome):
    """(report, None), or (None, one line saying why the check could not run on the script's functions)."""
    from ._gradcheck import GradInputError, gradcheck_from_namespace, one_line

    with _recorder.paused():
        try:
            return gradcheck_from_namespace(outcome.namespace, spec), None
        except UsageError:
            raise
        except GradInputError as exc:
            return None, one_line(exc, own=True)
        except Exception as exc:  # raised by the script's loss or grads
            return None, one_line(exc, own=False)
