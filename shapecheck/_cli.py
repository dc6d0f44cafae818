"""`python -m shapecheck [options] SCRIPT [ARGS...]`: run a script traced, then report.

Exit status: the script's own (0, 1 for an uncaught exception, its `sys.exit`
code), unless `--fail-on` is given and a finding at that level was made (then
1); 2 for a usage error, with one line on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback

from . import __version__, _recorder, _render, _rules
from ._crash import annotate
from ._errors import UsageError
from ._report import Report, rank
from ._runner import check_script, display_path, finish_like_python, run_script

USAGE = "python -m shapecheck [options] SCRIPT [ARGS...]"


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse would print the whole usage)
        if "required" in message:
            message = f"no script given (usage: {USAGE})"
        raise UsageError(message)


def parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="python -m shapecheck", usage=USAGE, description=(
        "Run SCRIPT as `python SCRIPT ARGS...` would, record the shape of every operand of every array "
        "operation, and report silent broadcasts, pandas/numpy mixing, shape drift and crashes, with fixes."))
    ap.add_argument("--format", choices=("text", "json", "markdown"), default="text",
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


def config(start: str) -> dict:
    """[tool.shapecheck] of the nearest pyproject.toml at or above `start` (the script's folder)."""
    import tomllib

    d = os.path.abspath(start)
    while True:
        p = os.path.join(d, "pyproject.toml")
        if os.path.isfile(p):
            try:
                with open(p, "rb") as f:
                    return tomllib.load(f).get("tool", {}).get("shapecheck", {})
            except (OSError, tomllib.TOMLDecodeError) as e:
                raise UsageError(f"cannot read {display_path(p)}: {e}") from None
        parent = os.path.dirname(d)
        if parent == d:
            return {}
        d = parent


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(sys.argv[1:] if argv is None else argv)
    except UsageError as e:
        sys.stderr.write(f"shapecheck: error: {e}\n")
        return 2


def _die_of_sigint() -> None:
    """End as `python SCRIPT` does after an uncaught KeyboardInterrupt: killed by SIGINT."""
    import signal

    sys.stdout.flush()
    sys.stderr.flush()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)


def _main(argv: list[str]) -> int:
    opts = parser().parse_args(argv)
    check_script(opts.script)
    cfg = config(os.path.dirname(os.path.abspath(opts.script)))
    ignore = [c.strip() for c in opts.ignore.split(",") if c.strip()] + list(cfg.get("ignore", []))
    fail_on = opts.fail_on or cfg.get("fail-on")
    if fail_on not in (None, "warning", "error"):
        raise UsageError(f"[tool.shapecheck] fail-on must be 'warning' or 'error', not {fail_on!r}")
    if opts.output:
        _check_writable(opts.output)

    try:
        outcome = run_script(opts.script, opts.args)
    except SyntaxError as e:
        # The script does not compile: say so exactly as Python would, and exit as Python does.
        sys.stderr.write("".join(traceback.format_exception_only(SyntaxError, e)))
        return 1

    crash = None
    if outcome.exc is not None:
        crash = annotate(outcome.exc, ignore)
        sys.stdout.flush()
        sys.excepthook(type(outcome.exc), outcome.exc, outcome.exc.__traceback__)
    finish_like_python()
    sys.stdout.flush()

    logs = _recorder.snapshot()
    report = Report(script=display_path(opts.script), exit_status=outcome.status,
                    findings=_rules.run(logs, ignore), crash=crash, sites=logs,
                    internal_errors=_recorder.STATE.internal_errors, untraced=list(_recorder.STATE.untraced))
    if crash is None and outcome.exc is not None:
        from ._report import Crash

        report.crash = Crash(type(outcome.exc).__name__, str(outcome.exc).splitlines()[0] if str(outcome.exc) else "",
                             None, None, None)
    grad_failed = False
    if opts.grad:
        if outcome.exc is not None:
            sys.stderr.write("shapecheck: --grad: the gradient check did not run, because the script crashed\n")
        else:
            report.gradcheck, why = _gradcheck(opts.grad, outcome)
            if why is not None:
                sys.stderr.write(f"shapecheck: --grad: {why}\n")
            grad_failed = why is not None or not report.gradcheck.passed

    rendered = _render.render(report, opts.format, log=opts.log, show_info=opts.show_info)
    if opts.output:
        with open(opts.output, "w", encoding="utf-8") as f:
            f.write(rendered)
    else:
        sys.stderr.write(rendered)
    status = outcome.status
    if fail_on and status == 0 and any(rank(f.severity) <= rank(fail_on) for f in report.findings):
        status = 1
    if grad_failed and status == 0:
        status = 1  # a gradient check that failed, or could not run, fails like a test
    if isinstance(outcome.exc, KeyboardInterrupt) and hasattr(os, "kill"):
        _die_of_sigint()
    return status


def _check_writable(path: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"cannot write the report to {path!r}: no such directory")
    if os.path.isdir(path):
        raise UsageError(f"cannot write the report to {path!r}: it is a directory")


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
