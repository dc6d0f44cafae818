"""`%load_ext shapecheck`: every later IPython/Jupyter cell is checked by the engine the CLI uses.

A cell is rewritten through IPython's AST transformer hook, from its own source text (IPython keeps
it in linecache under the cell's file name), so operand texts, tracebacks, `inspect.getsource` and
`%debug` all point at the cell's lines.  Findings are the cell's own (`_scope`: what was recorded
after the cell began), go through `warnings` as ShapeWarnings (so filters apply) and are displayed
under the cell as an HTML table.  A crash gets its explanation as a PEP 678 note.  Modules imported
from the notebook's folder after loading are traced by the CLI's import hook.

IPython is imported here only: `import shapecheck` stays light.
"""

from __future__ import annotations

import ast
import hashlib
import linecache
import os
import re
import sys
import warnings
from html import escape

from IPython.core.magic import Magics, line_cell_magic, magics_class

from . import _recorder, _scope
from ._crash import annotate
from ._errors import ShapeWarning, UsageError
from ._explain import NOTE_MARK
from ._report import Finding, rank
from ._rewrite import Rewriter, Rewritten, anchored, opted_out
from ._runner import UserModuleFinder

_LOCATION = re.compile(r"(cell \[\d+\]):(\d+)")
_ACTIVE: dict[int, _Extension] = {}  # id(shell) -> the loaded extension
USAGE = "usage: %shapecheck on | off | status | report   (or %%shapecheck on the first line of a cell)"


def load_ipython_extension(shell) -> None:
    """Turn checking on for every later cell (`%load_ext shapecheck`); loading twice changes nothing."""
    if id(shell) not in _ACTIVE:
        _ACTIVE[id(shell)] = _Extension(shell)


def unload_ipython_extension(shell) -> None:
    """Remove every hook `load_ipython_extension` added (`%unload_ext shapecheck`)."""
    ext = _ACTIVE.pop(id(shell), None)
    if ext is not None:
        ext.close()


def cell_locations(text: str) -> str:
    """`cell [3]:2` as people read it in a notebook: `cell [3], line 2`."""
    return _LOCATION.sub(r"\1, line \2", text)


class _CellTransformer(ast.NodeTransformer):
    """The object in `shell.ast_transformers`.  IPython drops a transformer that raises, so this never does."""

    def __init__(self, ext: _Extension):
        self.ext = ext

    def visit(self, node):
        try:
            return self.ext.transform(node)
        except Exception as e:  # shapecheck's own failure: the cell runs as written
            self.ext.untraced(e)
            return node


class _Extension:
    """The state of shapecheck in one IPython shell: its hooks, and what it has shown."""

    def __init__(self, shell):
        self.shell = shell
        self.enabled = True
        self.armed = False  # between pre_run_cell and the cell's own transform (not %time's, not silent code)
        self.checked = False  # this cell was rewritten (or run by %%shapecheck): report its findings
        self.mark = None
        self.digests: dict[int, str] = {}  # site id -> digest of the cell it is in: a re-run is not re-shown
        self.shown: dict[tuple, Finding] = {}  # what was displayed this session, by (cell, line, col, code)
        self.cells = 0
        self.crashes = 0
        self.ignore = _config_ignore()
        self.transformer = _CellTransformer(self)
        shell.ast_transformers.insert(0, self.transformer)  # first: it must see the tree IPython parsed
        shell.events.register("pre_run_cell", self.pre_run_cell)
        shell.events.register("post_run_cell", self.post_run_cell)
        # Explanations are added as the traceback is shown: the one place IPython hands us the cell's exception.
        self.saved_showtraceback = shell.__dict__.get("showtraceback")
        original = shell.showtraceback

        def showtraceback(*args, **kwargs):
            note = self.explain(args[0] if args and args[0] else kwargs.get("exc_tuple"))
            shown = original(*args, **kwargs)
            if note and not _shows_notes():  # IPython < 8.14 ignores notes: print it where the note would be
                sys.stderr.write(note + "\n")
            return shown

        shell.showtraceback = showtraceback
        self.finder = UserModuleFinder(os.getcwd())
        sys.meta_path.insert(0, self.finder)
        # IPython compiles the rewritten cells itself: its compiler anchors their code, so that a function
        # defined in a cell and shipped by value to a worker (joblib, dask) finds hooks there too.
        self.compiler_class = type(shell.compile)
        shell.compile.__class__ = _anchoring(self.compiler_class)
        _recorder.install()
        shell.register_magics(_ShapecheckMagics(shell, self))
        self.say_already_imported()

    def close(self) -> None:
        shell = self.shell
        if self.transformer in shell.ast_transformers:
            shell.ast_transformers.remove(self.transformer)
        for event, fn in (("pre_run_cell", self.pre_run_cell), ("post_run_cell", self.post_run_cell)):
            try:
                shell.events.unregister(event, fn)
            except ValueError:
                pass
        if self.saved_showtraceback is None:
            shell.__dict__.pop("showtraceback", None)
        else:
            shell.showtraceback = self.saved_showtraceback
        if self.finder in sys.meta_path:
            sys.meta_path.remove(self.finder)
        if type(shell.compile) is _anchoring(self.compiler_class):
            shell.compile.__class__ = self.compiler_class
        for kind in ("line", "cell"):
            shell.magics_manager.magics[kind].pop("shapecheck", None)

    # -- rewriting a cell ------------------------------------------------

    def transform(self, tree: ast.Module) -> ast.Module:
        if not (self.enabled and self.armed):
            return tree
        self.armed = False
        found = self.cell_source(tree)
        if found is None:  # not a cell IPython cached (a magic's own code): left as written
            return tree
        filename, source, count = found
        new = self.rewrite(source, filename, count)
        return tree if new is None else new

    def cell_source(self, tree: ast.Module) -> tuple[str, str, int] | None:
        """(file name, source, execution count) of the cell being run: a cell of the newest execution count
        whose cached text parses to `tree` (IPython caches each cell's text in linecache, under a name
        mapped to its count, just before parsing it; a re-run of the same text reuses the name)."""
        names = getattr(self.shell.compile, "_filename_map", {})
        if not names:
            return None
        newest = max(names.values())
        want = ast.dump(tree)
        for name in [n for n in reversed(names) if names[n] == newest]:
            entry = linecache.cache.get(name)
            if not entry:
                continue
            source = "".join(entry[2])
            try:
                if ast.dump(ast.parse(source)) == want:
                    return name, source, names[name]
            except (SyntaxError, ValueError):
                continue
        return None

    def rewrite(self, source: str, filename: str, count) -> ast.Module | None:
        """The cell's tree rewritten, its sites registered; None when it opts out.

        The tree is parsed afresh, so that a failure half-way leaves IPython's own tree untouched.
        """
        tree = ast.parse(source, filename)
        if opted_out(tree):
            return None
        path = f"cell [{count}]"
        rw = Rewriter(source, path, _recorder.next_id())
        new = ast.fix_missing_locations(rw.visit(tree))
        # A tree that does not compile would fail the user's cell: check it here, where it can still run as written.
        compile(new, filename, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
        _recorder.install()
        _recorder.register(Rewritten(None, rw.sites, rw.positions, rw.lookups), filename)
        _recorder.FILES[filename] = path
        digest = hashlib.sha1(source.encode("utf-8", "replace")).hexdigest()
        self.digests.update((s.id, digest) for s in rw.sites)
        self.checked = True
        self.cells += 1
        return new

    def untraced(self, e: Exception) -> None:
        _recorder.STATE.internal_errors += 1
        sys.stderr.write(f"shapecheck: could not rewrite this cell ({type(e).__name__}: {e}); it ran as written, "
                         f"unchecked; please report it\n")

    # -- around each cell ------------------------------------------------

    def pre_run_cell(self, info=None) -> None:
        self.armed = self.enabled
        self.checked = False
        self.mark = _scope.mark()

    def post_run_cell(self, result=None) -> None:
        self.armed = False
        if self.mark is None or not self.checked:
            return
        try:
            found = [f for f in _scope.findings_since(self.mark, self.ignore) if f.severity != "info"]
        except Exception:  # pragma: no cover - reporting must never break the session
            _recorder.STATE.internal_errors += 1
            return
        self.mark = None
        shown = self.new_findings(found)
        if shown:
            from IPython.display import display

            display(CellFindings(shown, f"shapecheck: {_counted(shown)} in this cell"))

    def new_findings(self, found: list[Finding]) -> list[Finding]:
        """Findings not shown before for the same cell text, that the warnings filters let through."""
        out = []
        for f in found:
            key = (self.digests.get(f.site.id, f.site.path), f.site.line, f.site.col, f.code)
            if key in self.shown:
                continue
            self.shown[key] = f
            if self.warn(f):
                out.append(f)
        return out

    def warn(self, f: Finding) -> bool:
        """Send the finding through `warnings`: False when a filter ignores it.  Recorded, not printed:
        the table under the cell is how it is shown."""
        filename = next((name for name, path in _recorder.FILES.items() if path == f.site.path), f.site.path)
        message = cell_locations(f"{f.code} {f.severity} at {f.site.location}: {f.message}"
                                 + (f"; fix: {f.fix}" if f.fix else ""))
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.warn_explicit(ShapeWarning(message, f.code, f), ShapeWarning, filename, f.site.line,
                                       module="__main__", registry={})
        except ShapeWarning:  # a filter made it an error: show it all the more
            return True
        return bool(caught)

    def explain(self, exc_tuple) -> str | None:
        """Attach the explanation of the cell's exception as a note, with cell locations; returns the note."""
        try:
            exc = exc_tuple[1] if exc_tuple else sys.exc_info()[1]
            if exc is None or annotate(exc, self.ignore) is None:
                return None
            notes = getattr(exc, "__notes__", None) or []
            exc.__notes__ = [cell_locations(n) if isinstance(n, str) and n.startswith(NOTE_MARK) else n
                             for n in notes]
            ours = [n for n in exc.__notes__ if isinstance(n, str) and n.startswith(NOTE_MARK)]
            if ours:
                self.crashes += 1
            return "\n".join(ours) or None
        except Exception:  # pragma: no cover - explaining must never hide the user's exception
            _recorder.STATE.internal_errors += 1
            return None

    # -- what the magics say ---------------------------------------------

    def say_already_imported(self) -> None:
        """Modules from the notebook's folder imported before loading run untraced: name them, with the fix."""
        mods = sorted(name for name, mod in list(sys.modules.items())
                      if isinstance(getattr(mod, "__file__", None), str) and self.finder.wants(mod.__file__)
                      and mod.__file__ not in _recorder.FILES and name != "__main__")
        if mods:
            names = ", ".join(mods[:5]) + (" ..." if len(mods) > 5 else "")
            sys.stdout.write(f"shapecheck: {names} {'was' if len(mods) == 1 else 'were'} imported before "
                             f"%load_ext shapecheck and {'is' if len(mods) == 1 else 'are'} not checked; "
                             f"`import importlib; importlib.reload({mods[0]})` checks it\n")

    def status(self) -> str:
        state = "on: every cell is checked" if self.enabled else "off: only %%shapecheck cells are checked"
        made = list(self.shown.values())
        found = _counted(made) if made else "no findings"
        return (f"shapecheck {state}; modules imported from {self.finder.root} are traced; "
                f"{self.cells} cell{'s' if self.cells != 1 else ''} checked, {found}, "
                f"{self.crashes} crash{'es' if self.crashes != 1 else ''} explained")


class CellFindings:
    """Findings as a notebook shows them: an HTML table (text/html) or the terminal table (text/plain)."""

    def __init__(self, findings: list[Finding], title: str):
        self.findings = sorted(findings, key=lambda f: (rank(f.severity), f.site.id, f.code))
        self.title = title

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"text/plain": self.text(), "text/html": self.html()}

    def __repr__(self) -> str:
        return self.text()

    def html(self) -> str:
        from ._html import FONT, findings_table
        from ._render import SILENCE

        if not self.findings:
            return f'<div style="{FONT}"><p>{escape(self.title)}</p></div>'
        return (f'<div style="{FONT}"><p style="margin:4px 0"><b>{escape(self.title)}</b></p>'
                f"{findings_table(self.findings)}"
                f'<p style="color:#57606a;font-size:12px">{escape(SILENCE.format(code=self.findings[0].code))}</p>'
                f"</div>")

    def text(self) -> str:
        from tabulate import tabulate

        from ._html import location
        from ._render import _operands_text

        out = [self.title]
        if self.findings:
            rows = [[f.code, f.severity, location(f.site.path, f.site.line), f.site.text,
                     _operands_text(f.operands, f.result)] for f in self.findings]
            out += ["", tabulate(rows, ["code", "severity", "location", "expression", "shapes"], tablefmt="simple")]
        for f in self.findings:
            out += ["", f"{f.code} {location(f.site.path, f.site.line)}: {f.message}"]
            if f.fix:
                out.append(f"    fix: {f.fix}")
        return "\n".join(out)


@magics_class
class _ShapecheckMagics(Magics):
    def __init__(self, shell, ext: _Extension):
        super().__init__(shell)
        self.ext = ext

    @line_cell_magic
    def shapecheck(self, line: str, cell: str | None = None):
        """`%shapecheck on|off|status|report`; `%%shapecheck` checks one cell while checking is off."""
        __tracebackhide__ = True
        if cell is not None:
            return self.run_checked(line, cell)
        word = line.strip().lower() or "status"
        if word in ("on", "off"):
            self.ext.enabled = word == "on"
            self.ext.armed = False  # the rest of this cell is not re-transformed
            print(self.ext.status())
        elif word == "status":
            print(self.ext.status())
        elif word == "report":
            made = list(self.ext.shown.values())
            return CellFindings(made, f"shapecheck: {_counted(made) if made else 'no findings'} this session")
        else:
            print(f"shapecheck: unknown argument {line.strip()!r}; {USAGE}")

    def run_checked(self, line: str, cell: str):
        """Run the cell's code here, as %%time does (a nested run_cell would show its errors twice)."""
        __tracebackhide__ = True
        shell = self.shell
        body = shell.transform_cell(cell)
        # Line 1 stands for the %%shapecheck line, so that line numbers are those the user sees.
        shown = f"%%shapecheck {line}".rstrip() + "\n" + body
        # The count IPython shows for the cell that runs this magic (it may already have moved on).
        count = getattr(getattr(shell.displayhook, "exec_result", None), "execution_count", None)
        count = shell.execution_count if count is None else count
        filename = shell.compile.cache(shown, count, raw_code=shown)
        source = "\n" + body
        try:
            tree = self.ext.rewrite(source, filename, count) or ast.parse(source, filename)
        except SyntaxError:
            raise
        except Exception as e:
            self.ext.untraced(e)
            tree = ast.parse(source, filename)
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        ns = shell.user_ns
        exec(shell.compile(tree, filename, "exec"), ns)
        if last is not None:
            return eval(shell.compile(ast.Expression(last.value), filename, "eval"), ns)
        return None


def _counted(findings: list[Finding]) -> str:
    n = {s: sum(f.severity == s for f in findings) for s in ("error", "warning")}
    parts = [f"{n[s]} {s}{'s' if n[s] != 1 else ''}" for s in ("error", "warning") if n[s]]
    codes = ", ".join(sorted({f.code for f in findings}))
    return " and ".join(parts) + (f" ({codes})" if codes else "")


def _config_ignore() -> list[str]:
    """Codes listed under [tool.shapecheck] ignore in the nearest pyproject.toml."""
    from ._cli import config

    try:
        return [str(c) for c in config(os.getcwd()).get("ignore", [])]
    except UsageError as e:
        sys.stderr.write(f"shapecheck: {e}; [tool.shapecheck] settings not used\n")
        return []


_ANCHORING: dict[type, type] = {}


def _anchoring(compiler_class: type) -> type:
    """IPython's compiler class, anchoring the code it compiles from rewritten cells (see `_rewrite.anchored`)."""
    cls = _ANCHORING.get(compiler_class)
    if cls is None:
        def __call__(self, source, filename, symbol, *args, **kwargs):
            code = compiler_class.__call__(self, source, filename, symbol, *args, **kwargs)
            return anchored(code) if isinstance(source, ast.AST) and _rewritten(code) else code

        cls = _ANCHORING[compiler_class] = type(compiler_class.__name__, (compiler_class,),
                                                {"__call__": __call__, "__module__": compiler_class.__module__})
    return cls


def _rewritten(code) -> bool:
    return any(n.startswith("__sc_") for n in code.co_names) or any(
        isinstance(c, type(code)) and _rewritten(c) for c in code.co_consts)


def _shows_notes() -> bool:
    """IPython shows PEP 678 notes in tracebacks from 8.14 on."""
    import IPython

    return tuple(IPython.version_info[:2]) >= (8, 14)
