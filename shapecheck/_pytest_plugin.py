"""`pytest --shapecheck`: the project's own modules run traced under the test suite.

A thin adapter over the engine.  Loading this module (pytest does on every
run, through the `pytest11` entry point) imports neither numpy nor the
engine: without `--shapecheck` it only adds options, ini keys, markers and
the `shape_report` fixture.  With it, an import hook like the CLI's goes in
before the conftest files load; each test's findings are those recorded
since its setup began (`_scope.mark`), issued as `ShapeWarning`s at the
user's line (or failures in fail mode), and travel on the test reports as
plain data, so that the summary and the JSON report are the same under
pytest-xdist.
"""

from __future__ import annotations

import builtins
import contextlib
import fnmatch
import functools
import importlib.machinery
import os
import re
import sys

import pytest

MODES = ("warn", "fail")
PLUGIN_NAME = "shapecheck-session"
_STATE = pytest.StashKey["_TestState"]()


# -- options ----------------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("shapecheck", "shapecheck: shapes of array operations in the code under test")
    group.addoption("--shapecheck", action="store_true", default=None,
                    help="trace the project's own modules (not tests, not conftest.py, not installed packages) "
                         "and report shape findings and gradient checks")
    group.addoption("--shapecheck-packages", metavar="MODULES", default=None,
                    help="trace only these comma-separated modules/packages (implies --shapecheck)")
    group.addoption("--shapecheck-mode", choices=MODES, default=None,
                    help="warn: findings are ShapeWarnings (default); fail: a test that makes one fails")
    group.addoption("--shapecheck-ignore", metavar="CODES", default=None,
                    help="comma-separated rule codes never to report (also [tool.shapecheck] ignore)")
    group.addoption("--shapecheck-report", metavar="PATH", default=None,
                    help="write the findings, with the tests that made them, and the gradient checks as JSON")
    parser.addini("shapecheck", "turn shapecheck on, as --shapecheck does", type="bool", default=False)
    parser.addini("shapecheck_mode", "warn (default) or fail", default="warn")
    parser.addini("shapecheck_packages", "modules/packages to trace instead of the project's own", default="")
    parser.addini("shapecheck_ignore", "rule codes never to report", default="")
    parser.addini("shapecheck_report", "path of the JSON report, relative to the ini file", default="")


class _Settings:
    """What `--shapecheck` and the ini keys ask for; None from `_settings` when it is off."""

    def __init__(self, packages: list[str], mode: str, ignore: list[str], report: str | None):
        self.packages = packages
        self.mode = mode
        self.ignore = ignore
        self.report = report


def _split(text) -> list[str]:
    return [s for s in re.split(r"[,\s]+", text or "") if s]


def _settings(config: pytest.Config, ns) -> _Settings | None:
    """Settings from the command line (`ns`) over the ini file; None unless shapecheck is on.

    Any `--shapecheck-*` option on the command line turns it on, as `--shapecheck` or `shapecheck = true` do.
    """
    cli = {name: getattr(ns, f"shapecheck_{name}", None) for name in ("packages", "mode", "ignore", "report")}
    if not (getattr(ns, "shapecheck", None) or any(v is not None for v in cli.values())
            or config.getini("shapecheck")):
        return None
    mode = cli["mode"] or config.getini("shapecheck_mode").strip() or "warn"
    if mode not in MODES:
        raise pytest.UsageError(f"shapecheck_mode must be 'warn' or 'fail', not {mode!r}")
    packages = _split(cli["packages"] if cli["packages"] is not None else config.getini("shapecheck_packages"))
    ignore = _split(cli["ignore"]) + _split(config.getini("shapecheck_ignore"))
    report = cli["report"]
    if report:
        report = os.path.join(str(config.invocation_params.dir), report)
    elif config.getini("shapecheck_report"):
        base = config.inipath.parent if config.inipath else config.rootpath
        report = os.path.join(str(base), config.getini("shapecheck_report"))
    if report:
        folder = os.path.dirname(os.path.abspath(report))
        if not os.path.isdir(folder):
            raise pytest.UsageError(f"--shapecheck-report: cannot write {report!r}: no such directory")
        if os.path.isdir(report):
            raise pytest.UsageError(f"--shapecheck-report: cannot write {report!r}: it is a directory")
    return _Settings(packages, mode, ignore, report or None)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser, args) -> None:
    # Before pytest imports conftest.py files, so that the modules they import are traced too.
    settings = _settings(early_config, early_config.known_args_namespace)
    if settings is not None:
        _start(early_config, settings)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "shapecheck(mode='fail'): the shapecheck mode (warn or fail) for this test")
    config.addinivalue_line("markers", "no_shapecheck: record no shapes for this test")
    if not config.pluginmanager.has_plugin(PLUGIN_NAME):
        # Loaded after the initial conftests (`pytest_plugins` in a conftest.py): start now.
        settings = _settings(config, config.option)
        if settings is not None:
            _start(config, settings)


def _start(config: pytest.Config, settings: _Settings) -> None:
    plugin = _Session(config, settings)
    config.add_cleanup(plugin.stop)  # runs even when configuring fails later: nothing may leak
    plugin.start()
    config.pluginmanager.register(plugin, PLUGIN_NAME)


# -- the import hook ----------------------------------------------------------------------------------


class _Loader(importlib.machinery.SourceFileLoader):
    """Loads a module rewritten, as the CLI's loader does, and notes which sites are its own."""

    def __init__(self, fullname: str, path: str, finder: _ProjectFinder):
        super().__init__(fullname, path)
        self.finder = finder

    def get_code(self, fullname):
        from . import _recorder
        from ._runner import module_code

        path = self.get_filename(fullname)
        first = _recorder.next_id()
        code = module_code(self, path, self.get_data(path))
        self.finder.sites.append((range(first, _recorder.next_id()), path, fullname))
        return code


class _ProjectFinder:
    """Finds the modules to trace: the project's own (under the rootdir, not tests, conftest.py, virtual
    environments or site-packages), or only the packages named.  Test modules are left to pytest's
    assertion rewriting."""

    def __init__(self, root: str, packages: list[str], test_patterns: list[str]):
        from ._runner import UserModuleFinder

        self.base = UserModuleFinder(root)
        self.packages = packages
        self.test_patterns = test_patterns
        self.sites: list[tuple[range, str, str]] = []  # (site ids, file, module name) of each module rewritten

    def selected(self, fullname: str) -> bool:
        return not self.packages or any(fullname == p or fullname.startswith(p + ".") for p in self.packages)

    def wants(self, fullname: str, filename: str) -> bool:
        if not filename.endswith(".py") or not self.selected(fullname) or self._test_file(filename):
            return False
        if _assertion_rewritten(fullname):
            return False
        real = os.path.realpath(filename)
        if self.packages:
            # Named explicitly: wherever it is installed, but never shapecheck itself or the standard library.
            from ._runner import PACKAGE_DIR

            stdlib = os.path.realpath(os.path.dirname(os.__file__))
            return not any(real.startswith(d + os.sep) for d in (PACKAGE_DIR, stdlib))
        return self.base.wants(real) and not _in_venv(os.path.dirname(real), self.base.root)

    def _test_file(self, filename: str) -> bool:
        name = os.path.basename(filename)
        return name == "conftest.py" or any(
            fnmatch.fnmatch(name, p) or fnmatch.fnmatch(filename, p) for p in self.test_patterns)

    def find_spec(self, fullname, path=None, target=None):
        if not self.selected(fullname):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.origin is None or not isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            return None
        if not self.wants(fullname, spec.origin):
            return None
        spec.loader = _Loader(fullname, spec.origin, self)
        return spec

    def invalidate_caches(self) -> None:
        pass

    def module_of(self, site_id: int) -> tuple[str, str] | None:
        """(file, module name) of a site in a module this finder rewrote; None for other sites."""
        return next(((path, name) for ids, path, name in self.sites if site_id in ids), None)


def _assertion_rewritten(fullname: str) -> bool:
    """Is the module marked for pytest's assertion rewriting (`pytest.register_assert_rewrite`)?"""
    for f in sys.meta_path:
        if type(f).__name__ == "AssertionRewritingHook":
            marked = getattr(f, "_must_rewrite", ())
            return any(fullname == m or fullname.startswith(m + ".") for m in marked)
    return False


@functools.lru_cache(maxsize=1024)
def _in_venv(folder: str, root: str) -> bool:
    """Does a folder between `folder` and the rootdir hold a virtual environment (its pyvenv.cfg)?"""
    while folder.startswith(root):
        if os.path.isfile(os.path.join(folder, "pyvenv.cfg")):
            return True
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return False


# -- the session --------------------------------------------------------------------------------------


class _TestState:
    """One test's recording: the mark its findings are counted from, and what it made."""

    def __init__(self, nodeid: str, mark, mode: str, off: bool):
        self.nodeid = nodeid
        self.mark = mark  # the findings since this mark are the ones not yet handled
        self.start = mark  # since setup began: what the shape_report fixture sees
        self.mode = mode
        self.off = off
        self.findings: dict[tuple[int, str], object] = {}  # (site id, code) -> Finding
        self.expected: set[tuple[int, str]] = set()  # consumed by shape_report.expect
        self.grads: list[dict] = []
        self.crash: dict | None = None
        self.paused = contextlib.ExitStack()


class _Session:
    """The plugin while `--shapecheck` is on: the import hook, per-test recording, the summary."""

    def __init__(self, config: pytest.Config, settings: _Settings):
        self.config = config
        self.settings = settings
        self.finder: _ProjectFinder | None = None
        self.saved_hooks: dict | None = None
        self.current: _TestState | None = None
        self.untraced_early: list[str] = []
        self.outside: list[dict] = []  # gradient checks made outside any test
        # Gathered from the test reports (in the controller under xdist): plain data only.
        self.rows: dict[tuple, dict] = {}
        self.grads: list[dict] = []
        self.crashes: list[dict] = []
        self.untraced: list[str] = []  # files that ran as written (rewriting them failed)
        self.internal_errors = 0
        self.seen = (0, 0)  # the recorder's untraced files and internal errors already sent on a report
        self.worker = hasattr(config, "workerinput")

    # start and stop

    def start(self) -> None:
        from . import _cli, _gradcheck, _recorder
        from ._errors import UsageError

        try:
            self.ignore = self.settings.ignore + list(_cli.config(str(self.config.rootpath)).get("ignore", []))
        except UsageError as e:
            raise pytest.UsageError(f"shapecheck: {e}") from None
        patterns = self.config.getini("python_files")
        self.finder = _ProjectFinder(str(self.config.rootpath), self.settings.packages, patterns)
        early = sorted(name for name, mod in list(sys.modules.items())
                       if isinstance(getattr(mod, "__file__", None), str) and self.finder.wants(name, mod.__file__)
                       and (name != "__main__"))
        if early and self.settings.packages:
            raise pytest.UsageError(_early_message(early))
        self.untraced_early = early
        self.seen = (len(_recorder.STATE.untraced), _recorder.STATE.internal_errors)
        self.saved_hooks = {k: v for k, v in vars(builtins).items() if k.startswith("__sc_")}
        sys.meta_path.insert(0, self.finder)
        _recorder.install()
        _gradcheck._LISTENERS.append(self.on_gradcheck)

    def stop(self) -> None:
        """Take out everything `start` put in: the finder, the hooks in builtins, the gradcheck listener."""
        from . import _gradcheck

        if self.finder is not None and self.finder in sys.meta_path:
            sys.meta_path.remove(self.finder)
        if self.on_gradcheck in _gradcheck._LISTENERS:
            _gradcheck._LISTENERS.remove(self.on_gradcheck)
        if self.saved_hooks is not None:
            for k in [k for k in vars(builtins) if k.startswith("__sc_")]:
                delattr(builtins, k)
            for k, v in self.saved_hooks.items():
                setattr(builtins, k, v)
            self.saved_hooks = None

    # the header

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        s = self.settings
        what = (f"packages {', '.join(s.packages)}" if s.packages
                else "the modules under the rootdir (not tests, conftest.py or virtual environments)")
        lines = [f"shapecheck: tracing {what}; mode {s.mode}" + (f"; ignoring {', '.join(self.ignore)}"
                                                                   if self.ignore else "")]
        if self.untraced_early:
            lines.append(f"shapecheck: imported before the hook went in, so untraced: {', '.join(self.untraced_early)}")
        return lines

    # per test

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item):
        __tracebackhide__ = True
        from . import _recorder, _scope

        marker = item.get_closest_marker("shapecheck")
        mode = marker.kwargs.get("mode", self.settings.mode) if marker else self.settings.mode
        if mode not in MODES:
            pytest.fail(f"@pytest.mark.shapecheck(mode={mode!r}): use 'warn' or 'fail'", pytrace=False)
        st = _TestState(item.nodeid, _scope.mark(), mode, item.get_closest_marker("no_shapecheck") is not None)
        item.stash[_STATE] = st
        self.current = st
        if st.off:
            st.paused.enter_context(_recorder.paused())
        return (yield from self._phase(item, "setup"))

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_call(self, item: pytest.Item):
        __tracebackhide__ = True
        return (yield from self._phase(item, "call"))

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_teardown(self, item: pytest.Item, nextitem):
        __tracebackhide__ = True
        try:
            return (yield from self._phase(item, "teardown"))
        finally:
            st = item.stash.get(_STATE, None)
            if st is not None:
                st.paused.close()
            self.current = None

    def _phase(self, item: pytest.Item, when: str):
        __tracebackhide__ = True
        st = item.stash.get(_STATE, None)
        try:
            result = yield
        except BaseException as e:
            if st is not None and not st.off:
                self._explain(st, e)
                with contextlib.suppress(Exception):  # nothing may replace the test's own exception
                    self._handle(item, st, when, crashed=True)
            raise
        if st is not None and not st.off and when != "setup":
            # Setup's findings are judged with the call's: the test made them through its fixtures.
            self._handle(item, st, when, crashed=False)
        return result

    def _explain(self, st: _TestState, exc: BaseException) -> None:
        from ._crash import annotate

        if isinstance(exc, (KeyboardInterrupt, SystemExit, pytest.skip.Exception, pytest.fail.Exception,
                            pytest.xfail.Exception)):
            return
        crash = annotate(exc, self.ignore)
        if crash is not None and crash.expression is not None:
            st.crash = crash.to_dict()

    def _handle(self, item: pytest.Item, st: _TestState, when: str, crashed: bool) -> None:
        """The findings made since the last look: kept for the report, then warned about or failed on."""
        __tracebackhide__ = True
        from . import _scope

        found = _scope.findings_since(st.mark, self.ignore)
        st.mark = _scope.mark()
        new = [f for f in found if (f.site.id, f.code) not in st.findings]
        for f in new:
            st.findings[(f.site.id, f.code)] = f
        shown = [f for f in new if f.severity != "info" and (f.site.id, f.code) not in st.expected]
        if not shown:
            return
        if st.mode == "fail" and when == "call" and not crashed:
            _fail(_failure_text(shown))
        if st.mode == "fail" and crashed:
            # The test's own exception is its failure; the findings go with it.
            item.add_report_section(when, "shapecheck", _failure_text(shown))
            return
        self._warn(shown)  # warn mode, and what teardown made in fail mode

    def _warn(self, findings) -> None:
        """Each finding as a ShapeWarning at the user's file and line, so that pytest's warning filters and
        summary treat it as any warning.  Sites of `@shapecheck.trace` functions warn by themselves."""
        __tracebackhide__ = True
        import warnings

        from ._errors import ShapeWarning
        from ._trace import _message

        for f in findings:
            where = self.finder.module_of(f.site.id)
            if where is not None:
                warnings.warn_explicit(ShapeWarning(_message(f), f.code, f), ShapeWarning, where[0], f.site.line,
                                       module=where[1])

    def on_gradcheck(self, report) -> None:
        entry = _grad_entry(report)
        (self.current.grads if self.current is not None else self.outside).append(entry)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call):
        from . import _recorder

        report = yield
        st = item.stash.get(_STATE, None)
        if call.when == "teardown" and st is not None:
            # Plain data on the report: pytest-xdist sends a report's attributes to the controller.
            untraced, errors = self.seen
            report.shapecheck = {
                "findings": [f.to_dict() for f in st.findings.values()],
                "grads": st.grads, "crash": st.crash,
                "untraced": _recorder.STATE.untraced[untraced:],
                "internal_errors": _recorder.STATE.internal_errors - errors,
            }
            self.seen = (len(_recorder.STATE.untraced), _recorder.STATE.internal_errors)
        return report

    # gathering (in the controller under xdist) and the summary

    def pytest_runtest_logreport(self, report) -> None:
        data = getattr(report, "shapecheck", None)
        if report.when != "teardown" or not data:
            return
        for f in data["findings"]:
            key = (f["code"], f["path"], f["line"], f["column"])
            row = self.rows.setdefault(key, {**f, "count": 0, "tests": []})
            row["count"] += f["count"]
            row["tests"].append(report.nodeid)
        self.grads += [{"test": report.nodeid, **g} for g in data["grads"]]
        if data["crash"]:
            self.crashes.append({"test": report.nodeid, **data["crash"]})
        self.untraced += [u for u in data["untraced"] if u not in self.untraced]
        self.internal_errors += data["internal_errors"]

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus) -> None:
        if self.worker or not self.settings.report:
            return
        import json

        with open(self.settings.report, "w", encoding="utf-8") as fh:
            json.dump(self.to_dict(int(exitstatus)), fh, indent=2)
            fh.write("\n")

    def to_dict(self, exit_status: int) -> dict:
        """The CLI's JSON schema, plus the test ids of each finding and the gradient checks of the session."""
        from ._report import SCHEMA_VERSION, SEVERITIES

        findings = sorted(self.rows.values(), key=lambda r: (r["path"], r["line"], r["code"]))
        return {
            "version": SCHEMA_VERSION,
            "script": None,
            "exit_status": exit_status,
            "summary": {s: sum(1 for r in findings if r["severity"] == s) for s in SEVERITIES},
            "findings": findings,
            "crash": None,
            "crashes": self.crashes,
            "sites": [],
            "gradcheck": None,
            "gradchecks": self.grads + self.outside,
            "internal_errors": self.internal_errors,
            "untraced": self.untraced_early + self.untraced,
        }

    def pytest_terminal_summary(self, terminalreporter, exitstatus, config: pytest.Config) -> None:
        rows = [r for r in self.rows.values() if r["severity"] != "info"]
        grads = self.grads + self.outside
        if self.worker or not (rows or grads or self.crashes):
            return
        terminalreporter.write_sep("=", "shapecheck")
        width = config.get_terminal_writer().fullwidth
        for line in summary_lines(rows, grads, self.crashes, config.getoption("verbose") > 0, width,
                                  self.settings.mode):
            terminalreporter.write_line(line)


def _early_message(names: list[str]) -> str:
    shown = ", ".join(names[:5]) + (" ..." if len(names) > 5 else "")
    return (f"shapecheck: {shown} {'was' if len(names) == 1 else 'were'} imported before pytest loaded the "
            f"conftest.py files (by another pytest plugin, a .pth file or sitecustomize), so it cannot be traced. "
            f"Stop that early import (`python -X importtime -m pytest --co` shows who imports it; a plugin can be "
            f"disabled with -p no:NAME), or trace single functions with @shapecheck.trace.")


def _fail(text: str) -> None:
    # Not hidden: pytest prints a pytrace=False failure as its message alone, unless every frame is hidden.
    pytest.fail(text, pytrace=False)


def _failure_text(findings) -> str:
    from ._trace import _message

    n = len(findings)
    head = f"shapecheck: this test made {n} finding{'s' if n != 1 else ''} (--shapecheck-mode=fail):"
    return "\n".join([head] + [f"  {_message(f)}" for f in findings])


def _grad_entry(report) -> dict:
    d = report.to_dict()
    return {"passed": d["passed"], "headline": d["headline"], "parameters": [r["name"] for r in d["rows"]],
            "diagnosis": d["overall"]["text"], "report": d}


# -- the summary (plain data in, lines out) -----------------------------------------------------------


def _grad_sources(grads: list[dict]) -> list[str]:
    """Under the table, for each wrong row of a failed check: the line that produced its gradient, the line
    the mistake is pinned to, and the fix the check verified (the report's own words, from its JSON)."""
    out = []
    for g in grads:
        if g["passed"]:
            continue
        for row in g["report"]["rows"]:
            loc, mistake, fix = row.get("location"), row.get("mistake"), row.get("fix")
            if row["status"] not in ("wrong", "shape") or loc is None:
                continue
            out += ["", f"{row['name']} ({g.get('test') or 'outside tests'}): {row['diagnosis']['text']}",
                    f"    produced by `{loc['statement']}` at {loc['path']}:{loc['line']}"]
            if mistake is not None:
                said = "a statement is missing after" if mistake["why"] == "missing" else "the mistake is at"
                out.append(f"    {said} line {mistake['line']}: `{mistake['statement']}`")
            if fix is not None and fix["kind"] == "missing":  # `after` is the line and the one added after it
                out.append(f"    fix (verified: the gradient check passes with it): add "
                           f"`{fix['after'].splitlines()[-1].strip()}` after {fix['path']}:{fix['line']}")
            elif fix is not None:
                where = "the loss" if fix["at_loss"] else f"{fix['path']}:{fix['line']}"
                out.append(f"    fix (verified: the gradient check passes with it): `{fix['after']}` at {where}")
    return out


def summary_lines(rows: list[dict], grads: list[dict], crashes: list[dict], verbose: bool, width: int,
                  mode: str = "warn") -> list[str]:
    """The `shapecheck` terminal section: a row per (rule, site) with the tests that hit it, a row per
    gradient check, a totals line and a hint."""
    import textwrap

    from tabulate import tabulate

    from ._report import rank
    from ._shapes import fmt

    def wrap(text: str, n: int) -> str:
        return "\n".join(textwrap.wrap(text, max(n, 20), break_on_hyphens=False)) if text else ""

    out: list[str] = []
    rows = sorted(rows, key=lambda r: (rank(r["severity"]), r["path"], r["line"]))
    if rows:
        table = []
        for r in rows:
            shapes = " ".join(f"{o['text']} {fmt(_tuple(o['shape']))}" for o in r["operands"]
                              if o["shape"] is not None)
            if r["result_shape"] is not None:
                shapes += f" -> {fmt(tuple(r['result_shape']))}"
            tests = r["tests"]
            n = len(tests)
            who = "\n".join(tests) if verbose else tests[0] + (f" (+{n - 1} more)" if n > 1 else "")
            table.append([r["code"], r["severity"], f"{r['path']}:{r['line']}", wrap(r["expression"], 30),
                          wrap(shapes, 36), f"{n} test{'s' if n != 1 else ''}", who])
        out += tabulate(table, ["code", "severity", "location", "expression", "shapes", "hit by", "first test"
                                if not verbose else "tests"], tablefmt="simple").splitlines()
    if grads:
        if out:
            out.append("")
        table = [[g.get("test") or "(outside tests)", wrap(", ".join(g["parameters"]), 24),
                  "ok" if g["passed"] else "WRONG", wrap(g["diagnosis"], max(width - 90, 40))] for g in grads]
        out += tabulate(table, ["gradient check in", "parameters", "verdict", "diagnosis"],
                        tablefmt="simple").splitlines()
        out += _grad_sources(grads)
    counts = {s: sum(1 for r in rows if r["severity"] == s) for s in ("error", "warning")}
    tests = {t for r in rows for t in r["tests"]}
    parts = []
    if rows:
        parts.append(f"{_n(len(rows), 'finding')} ({', '.join(_n(c, s) for s, c in counts.items() if c)}) "
                     f"made by {_n(len(tests), 'test')}")
    if crashes:
        parts.append(f"{_n(len(crashes), 'crash', 'crashes')} explained in the failures above")
    if grads:
        wrong = sum(1 for g in grads if not g["passed"])
        parts.append(f"{_n(len(grads), 'gradient check')}, {wrong} wrong")
    out += ["", "shapecheck: " + "; ".join(parts)]
    if rows:
        code = rows[0]["code"]
        fail = "" if mode == "fail" else "fail on findings with --shapecheck-mode=fail; "
        out.append(f"hint: {fail}silence one with `# shapecheck: ignore[{code}]` on its line "
                   f"or --shapecheck-ignore={code}")
    return out


def _n(k: int, word: str, plural: str | None = None) -> str:
    return f"{k} {word if k == 1 else plural or word + 's'}"


def _tuple(shape):
    return tuple(shape) if shape is not None else None


# -- the fixture ----------------------------------------------------------------------------------------


@pytest.fixture
def shape_report(request: pytest.FixtureRequest) -> ShapeReport:
    """This test's shape findings: `.findings`, `.assert_clean()`, `with shape_report.expect("SC101"): ...`.

    Needs `--shapecheck` (the test is skipped without it).
    """
    session = request.config.pluginmanager.get_plugin(PLUGIN_NAME)
    state = request.node.stash.get(_STATE, None)
    if session is None or state is None:
        pytest.skip("the shape_report fixture needs pytest --shapecheck")
    return ShapeReport(session, state)


class ShapeReport:
    """The findings (warning and error level) of the code this test has run so far."""

    def __init__(self, session: _Session, state: _TestState):
        self._session = session
        self._state = state

    @property
    def findings(self) -> list:
        """This test's findings so far, as `Finding`s (code, severity, site, operands, result, message, fix)."""
        from . import _scope

        return [f for f in _scope.findings_since(self._state.start, self._session.ignore)
                if f.severity != "info" and (f.site.id, f.code) not in self._state.expected]

    def assert_clean(self) -> None:
        """Raise AssertionError, listing them, when this test has made findings (other than expected ones)."""
        __tracebackhide__ = True
        from ._trace import _message

        found = self.findings
        if found:
            raise AssertionError("\n".join([f"shapecheck: {_n(len(found), 'finding')}:"]
                                           + [f"  {_message(f)}" for f in found]))

    @contextlib.contextmanager
    def expect(self, code: str, match: str | None = None):
        """Fail unless the block makes a finding with this code (and a message matching `match`).

        The findings it expects are neither warned about nor failed on. Yields an object whose
        `.findings` are the matching findings, once the block has run.

        >>> with shape_report.expect("SC101", match="y - y_hat"):    # doctest: +SKIP
        ...     mynet.score(params, X, y)
        """
        __tracebackhide__ = True
        from . import _scope

        start = _scope.mark()
        result = _Expected()
        yield result
        made = [f for f in _scope.findings_since(start, self._session.ignore) if f.severity != "info"]
        result.findings = [f for f in made if f.code == code.upper() and (
            match is None or re.search(match, f.message) or re.search(match, f.site.text))]
        if not result.findings:
            instead = "; made instead: " + ", ".join(f"{f.code} at {f.site.location}" for f in made) if made else ""
            pytest.fail(f"DID NOT FIND {code}{f' matching {match!r}' if match else ''}{instead}", pytrace=False)
        self._state.expected |= {(f.site.id, f.code) for f in result.findings}


class _Expected:
    """What `shape_report.expect` found, once its block has run."""

    def __init__(self):
        self.findings: list = []
