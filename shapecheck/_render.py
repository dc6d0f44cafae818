"""Renderers: a `Report` in, a string out.  Text for people (tables by tabulate), JSON and Markdown for
machines and pull requests.  Nothing here prints."""

from __future__ import annotations

import re

from ._recorder import MAX_SIGNATURES
from ._report import Finding, Operand, Report, rank
from ._shapes import fmt

# tabulate and textwrap are imported where findings or a crash are drawn: a clean run's report needs
# neither, and importing textwrap alone (its regular expressions are compiled then) costs a millisecond.


def tabulate(*args, **kwargs) -> str:
    from tabulate import tabulate  # imported when a table is drawn, not at start-up (tests/test_startup.py)

    return tabulate(*args, **kwargs)


SILENCE = "Silence a finding with a trailing `# shapecheck: ignore[{code}]` on its line, or list codes under " \
          "[tool.shapecheck] ignore in pyproject.toml."


def summary(report: Report) -> str:
    """One line: what happened to the script and what was found."""
    c = report.counts()
    status = report.exit_status
    if report.crash is not None:
        how = f"crashed with {report.crash.type} (exit {status})"
    elif status in (0, None):
        how = "ran to the end"
    else:
        how = f"exited with status {status}"
    found = ", ".join(f"{c[s]} {s}{'' if c[s] == 1 or s == 'info' else 's'}" for s in ("error", "warning", "info"))
    ops = sum(rec.count for log in report.sites for rec in log.records)
    sites = sum(1 for log in report.sites if log.records)
    return f"shapecheck: {report.script or '<code>'} {how}; {found}; {ops} operations recorded at {sites} sites"


def _operands_text(ops: tuple[Operand, ...], result) -> str:
    parts = " ".join(f"{o.text} {fmt(o.shape)}" for o in ops)
    return f"{parts} -> {fmt(result)}" if result is not None else parts


def _visible(report: Report, show_info: bool) -> list[Finding]:
    return [f for f in report.findings if show_info or f.severity != "info"]


def text(report: Report, *, log: bool = False, show_info: bool = False, width: int | None = None) -> str:
    width = width or terminal_width()
    out = [summary(report)]
    shown = _visible(report, show_info)
    roots = report.roots(shown)
    if roots:
        out += ["", "Root cause" if len(roots) == 1 else "Root causes", *root_lines(roots, width, report.script)]
    if shown:
        out += ["", "Findings", findings_table(shown, width, report.script)]
        if width < WIDE:
            out += findings_details(shown, width, report.script)
    hidden = len(report.findings) - len(shown)
    if hidden:
        out += ["", f"{hidden} info note{'s' if hidden != 1 else ''} not shown (intended-looking broadcasts and "
                    f"conversions): --show-info lists them"]
    capped = [lg for lg in report.sites if lg.capped]
    if capped:
        where = ", ".join(f"{lg.site.path}:{lg.site.line}" for lg in capped[:3]) + (" ..." if len(capped) > 3 else "")
        out += ["", f"{len(capped)} site{'s' if len(capped) != 1 else ''} saw more than {MAX_SIGNATURES} different "
                    f"shapes ({where}): later ones were counted, not kept; --log shows the kept ones"]
    if report.crash is not None:
        out += ["", *crash_text(report)]
    if report.gradcheck is not None:
        out += ["", "Gradient check", str(report.gradcheck)]
    if log:
        out += ["", "Shape log", log_table(report, "simple")]
    if shown:
        import textwrap

        out += ["", textwrap.fill(SILENCE.format(code=_ordered(shown)[0].code), width)]
    if report.untraced:
        out += ["", untraced_line(report)]
    if report.internal_errors:
        out += ["", f"shapecheck: {report.internal_errors} internal error(s) while recording were ignored; "
                    f"please report them"]
    return "\n".join(out) + "\n"


def root_where(root, script: str | None) -> str | None:
    """`net.py:42` when the root is in another file than the script, else None (the lead says `line 42`)."""
    return None if script is None or root.path == script else f"{root.path}:{root.line}"


def root_lines(roots, width: int, script: str | None) -> list[str]:
    """Each shared origin first, with its one fix: the findings under it are its symptoms."""
    out = []
    for r in roots:
        out.append(_fill(flat(r.lead(root_where(r, script))), width, initial_indent="  ", subsequent_indent="    "))
        out.append(_fill(f"fix: {flat(r.fix)}", width, initial_indent="  ", subsequent_indent="       "))
    return out


def terminal_width() -> int:
    """$COLUMNS if set, else the width of the terminal the report goes to, else 132 (CI logs, files)."""
    import os
    import sys

    if os.environ.get("COLUMNS", "").isdigit():
        return max(60, int(os.environ["COLUMNS"]))
    try:
        if sys.stderr.isatty():
            return max(60, os.get_terminal_size(sys.stderr.fileno()).columns)
    except (OSError, ValueError, AttributeError):
        pass
    return 132


def _short(path: str, script: str | None) -> str:
    """A location relative to the script's folder (the summary line names the script)."""
    import os

    if script:
        folder = os.path.dirname(script)
        if folder and path.startswith(folder + os.sep):
            return path[len(folder) + 1:]
    return path


WIDE = 120  # below this many columns the message and the fix go under the table, not in it


def findings_details(findings: list[Finding], width: int, script: str | None) -> list[str]:
    """For narrow terminals: each finding's message and fix as wrapped lines under the table."""
    out = []
    for f in _ordered(findings):
        out.append("")
        out.append(_fill(f"{f.code} {_short(f.site.path, script)}:{f.site.line}  {flat(f.message)}", width,
                                 subsequent_indent="    "))
        if f.fix:
            out.append(_fill(f"fix: {flat(f.fix)}", width, initial_indent="    ", subsequent_indent="         "))
    return out


def _ordered(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (rank(f.severity), f.site.path, f.site.line, f.code))


def findings_table(findings: list[Finding], width: int, script: str | None = None) -> str:
    """The findings as a grid whose wrapped columns share what the fixed ones leave of `width`; on a
    narrow terminal, without the message and fix columns (they follow the table)."""
    findings = _ordered(findings)
    locations = [f"{_short(f.site.path, script)}:{f.site.line}" for f in findings]
    if width < WIDE:
        rest = max(width - len("code  ") - len("severity  ") - max(len("location  "), *map(len, locations)) - 16, 24)
        # The shapes column takes what its longest operand needs (up to most of the room), so that a
        # shape is never cut; the expression column wraps in what is left.
        longest = max(len(p) for f in findings for p in _shape_parts(f.operands, f.result) or [""])
        longest_shape = max((len(fmt(s)) + 3 for f in findings for s in [*(o.shape for o in f.operands), f.result]
                             if s is not None), default=0)
        w_shapes = max(min(max(rest - rest // 2, longest), rest - 14), longest_shape)
        rows = [[f.code, f.severity, loc, _wrap(flat(f.site.text), max(rest - w_shapes, 14)),
                 _wrap_shapes(f.operands, f.result, w_shapes)]
                for f, loc in zip(findings, locations)]
        return tabulate(rows, ["code", "severity", "location", "expression", "shapes"], tablefmt="grid")
    # tabulate pads headers by 2; each grid column adds 3 (two spaces and a bar), plus the closing bar
    fixed = len("code  ") + len("severity  ") + max(len("location  "), *map(len, locations)) + 3 * 7 + 1
    rest = max(width - fixed, 60)
    share = (18, 20, 36, 26) if any(f.fix for f in findings) else (20, 22, 58, 0)
    w_expr, w_shapes, w_msg = (max(12, rest * p // 100) for p in share[:3])
    w_fix = max(14, rest - w_expr - w_shapes - w_msg)
    # A shape is never cut: the shapes column is at least as wide as its longest shape (7 axes and more).
    longest_shape = max((len(fmt(s)) + 3 for f in findings for s in [*(o.shape for o in f.operands), f.result]
                         if s is not None), default=0)
    if longest_shape > w_shapes:
        w_msg -= min(longest_shape - w_shapes, w_msg - 24)
        w_shapes = longest_shape
    rows = [[f.code, f.severity, loc, _wrap(flat(f.site.text), w_expr), _wrap_shapes(f.operands, f.result, w_shapes),
             _wrap(flat(f.message), w_msg), _wrap(flat(f.fix or ""), w_fix)] for f, loc in zip(findings, locations)]
    return tabulate(rows, ["code", "severity", "location", "expression", "shapes", "message", "fix"],
                    tablefmt="grid")


def crash_text(report: Report) -> list[str]:
    import textwrap

    c = report.crash
    where = f"{c.path}:{c.line}" if c.path else "outside the traced code"
    lines = [f"Crash: {c.type} at {where}"]
    if c.expression:
        lines.append(f"  in `{flat(c.expression)}`")
    if c.message:
        lines.append(f"  {c.type}: {c.message}")
    if c.operands:
        rows = [[flat(o.text), o.kind, fmt(o.shape), o.dtype or "", _wrap(flat(o.origin or ""), 60)]
                for o in c.operands]
        lines += ["", textwrap.indent(tabulate(rows, ["operand", "kind", "shape", "dtype", "origin"],
                                               tablefmt="simple"), "  ")]
    if c.explanation:
        lines += ["", textwrap.indent(_fill(f"cause: {flat(c.explanation)}", 96, subsequent_indent="       "),
                                      "  ")]
    for i, fx in enumerate(c.fixes):
        lines.append(f"  {'fix:  ' if i == 0 else '      '} {flat(str(fx))}")
    advice = no_fix(c)
    if advice:
        lines.append(_fill(f"  fix:   {advice}", 96, subsequent_indent="         "))
    return lines


def no_fix(c) -> str | None:
    """What to do when no local fix works; the origin column is pointed at only when it says something."""
    if not (c.expression and not c.fixes and c.operands and c.shaped) or any(o.dtype == "object"
                                                                            for o in c.operands):
        return None
    traced = [o.text for o in c.operands if o.origin]
    if traced:
        where = f": follow the origin of {' and '.join(flat(t) for t in traced)} in the operand table"
    else:
        where = " than this line, where its value was made"
    return f"no transpose, reshape or swap of these operands makes it work, so one of them got a wrong shape earlier{where}"


def log_table(report: Report, fmt_name: str) -> str:
    rows = []
    for lg in report.sites:
        for rec in lg.records:
            ops = " ".join(f"{spec.text} {fmt(v.shape)}" for spec, v in zip(lg.site.operands, rec.operands)
                           if v.shape is not None)
            target = ", ".join(lg.site.targets)
            if fmt_name == "github":
                rows.append([_code(f"{lg.site.path}:{lg.site.line}"), lg.site.kind, _code(lg.site.text),
                             _plain(ops), fmt(rec.result.shape) if rec.result else "", _cell(target), rec.count])
            else:
                rows.append([f"{lg.site.path}:{lg.site.line}", lg.site.kind, _wrap(lg.site.text, 40), ops,
                             fmt(rec.result.shape) if rec.result else "", target, rec.count])
        if lg.capped:
            rows.append([f"{lg.site.path}:{lg.site.line}", "", "", f"(+{lg.capped} more signatures not kept)",
                         "", "", ""])
    return tabulate(rows, ["location", "kind", "expression", "operands", "result", "assigned to", "count"],
                    tablefmt=fmt_name, disable_numparse=fmt_name == "github")


def markdown(report: Report, *, log: bool = False, show_info: bool = True) -> str:
    out = [f"### {summary(report)}"]
    shown = _visible(report, show_info)
    for r in report.roots(shown):
        lead = r.lead(root_where(r, report.script))
        out += ["", f"#### Root cause: {_code(r.name, cell=False)} at {_code(f'{r.path}:{r.line}', cell=False)}", "",
                _prose(lead, [f"{r.name} = {r.statement}"], cell=False), "",
                f"**Fix** (checked with shape algebra for every finding it names): {_code(r.fix, cell=False)}"]
    if shown:
        rows = [[f.code, f.severity, _code(f"{f.site.path}:{f.site.line}"), _code(f.site.text),
                 _plain(_operands_text(f.operands, f.result)), _prose(f.message, _texts(f)),
                 _code(f.fix) if f.fix else ""]
                for f in shown]
        out += ["", "#### Findings", "", _github(rows, ["code", "severity", "location", "expression", "shapes",
                                                       "message", "fix"])]
    c = report.crash
    if c is not None:
        where = _code(f"{c.path}:{c.line}", cell=False) if c.path else "outside the traced code"
        out += ["", f"#### Crash: {c.type} at {where}", ""]
        quoted = [c.expression or "", *(o.text for o in c.operands)]
        if c.expression:
            out.append(f"In {_code(c.expression, cell=False)}: {_line(c.message)}")
        elif c.message:
            out.append(f"{c.type}: {_line(c.message)}")
        if c.operands:
            rows = [[_code(o.text), o.kind, fmt(o.shape), o.dtype or "", _cell(o.origin or "")] for o in c.operands]
            out += ["", _github(rows, ["operand", "kind", "shape", "dtype", "origin"])]
        if c.explanation:
            out += ["", f"**Cause:** {_prose(c.explanation, quoted, cell=False)}"]
        if c.fixes:
            out += ["", "**Fixes** (checked with shape algebra):", ""] + [f"- {_code(str(fx), cell=False)}"
                                                                         for fx in c.fixes]
        elif no_fix(c):
            out += ["", f"**Fix:** {_line(no_fix(c))}"]
    if report.gradcheck is not None:
        out += ["", "#### Gradient check", "", report.gradcheck.to_markdown()]
    if log:
        out += ["", "#### Shape log", "", log_table(report, "github")]
    return "\n".join(out) + "\n"


def json(report: Report, *, log: bool = False) -> str:
    import json as _json  # imported for a JSON report only

    return _json.dumps(report.to_dict(log=log), indent=2) + "\n"


def untraced_line(report: Report) -> str:
    """Code that ran as written: a file shapecheck could not decode or rewrite, or `file:line`, a statement
    nested too deeply to rewrite (a failure of shapecheck's own is counted in internal_errors too)."""
    return f"shapecheck: ran as written, without shape checks: {', '.join(report.untraced)}"


def render(report: Report, format: str = "text", **options) -> str:
    """The report in one of the formats: text, json, markdown, html."""
    if format == "html":
        from . import _html

        return _html.page(report, log=options.get("log", False), show_info=options.get("show_info", False))
    if format == "json":
        return json(report, log=options.get("log", False))
    if format == "markdown":
        return markdown(report, log=options.get("log", False))
    return text(report, **options)


_CONTINUED = r"[ \t]*\\?[ \t]*\r?\n[ \t]*"  # patterns: compiled at first use


def flat(s: str) -> str:
    """Source text on one line, as the report shows it: a backslash continuation or a line break inside
    brackets, with the spaces around it, becomes one space."""
    return re.sub(_CONTINUED, " ", s)


def _shape_parts(ops: tuple[Operand, ...], result) -> list[str]:
    return [f"{flat(o.text)} {fmt(o.shape)}" for o in ops] + ([f"-> {fmt(result)}"] if result is not None else [])


def _wrap_shapes(ops: tuple[Operand, ...], result, width: int) -> str:
    """The shapes column, wrapped between operands (`y (1, 200)` stays whole) when it can be."""
    import textwrap

    parts = _shape_parts(ops, result)
    lines: list[str] = []
    for part in parts:
        if lines and len(lines[-1]) + 1 + len(part) <= width:
            lines[-1] += " " + part
        elif len(part) <= width:
            lines.append(part)
        else:  # the operand's text on its own line(s), then its shape whole
            label, _, shape = part.rpartition(" (")
            lines += textwrap.wrap(label, width, break_long_words=True, break_on_hyphens=False)
            lines.append("(" + shape)
    return "\n".join(lines)


_SHAPE = r"(?<![\w.\]])\((?:-?\d+, )+-?\d*\)"  # a shape, not a call's arguments


def _fill(s: str, width: int, **kw) -> str:
    """textwrap.fill that never breaks inside a shape: `(1, 200)` stays on one line."""
    import textwrap

    s = re.sub(_SHAPE, lambda m: m.group(0).replace(" ", "\0") if len(m.group(0)) <= width else m.group(0), s)
    return textwrap.fill(s, width, break_on_hyphens=False, **kw).replace("\0", " ")


def _wrap(s: str, width: int) -> str:
    return _fill(s, width, break_long_words=True) if s else ""


def _github(rows, headers) -> str:
    # numparse off: a cell such as "1e3" or "inf" stays the text it is
    return tabulate(rows, headers, tablefmt="github", disable_numparse=True)


def _line(s: str) -> str:
    """Text on one Markdown line."""
    return " ".join(flat(s).splitlines())


def _cell(s: str) -> str:
    """Text in a Markdown table cell: one line, `|` escaped (GitHub splits cells before anything else)."""
    return _line(s).replace("|", "\\|")


def _texts(f: Finding) -> list[str]:
    return [f.site.text, *(o.text for o in f.operands), f.fix or ""]


def _prose(s: str, quoted: list[str], cell: bool = True) -> str:
    """A message whose `code` quotes of the given texts stay code spans even when a text holds a backtick
    (a plain `...` quote would end at it); for a table cell unless `cell` is False."""
    for text in sorted({t for t in quoted if "`" in t}, key=len, reverse=True):
        s = s.replace(f"`{text}`", "\0" + text + "\0")  # marked: escaped with the code span below
    return "".join(_code(p, cell) if i % 2 else _cell(p) if cell else _line(p) for i, p in enumerate(s.split("\0")))


def _plain(s: str) -> str:
    """Text that is neither prose nor code (operand texts with shapes) in a table cell: backticks escaped too."""
    return _cell(s).replace("`", "\\`")


def _code(s: str, cell: bool = True) -> str:
    """`s` as a Markdown code span: fenced by one backtick more than its longest run of backticks, padded by a
    space when it starts or ends with one; in a table cell, `|` escaped (GitHub reads `\\|` as `|` there,
    code spans included, and only there)."""
    s = _cell(s) if cell else _line(s)
    fence = "`" * (max(map(len, re.findall("`+", s)), default=0) + 1)
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return f"{fence}{pad}{s}{pad}{fence}"


_REPORT_START = r"(?:### )?shapecheck: .*?; \d+ errors?, \d+ warnings?, \d+ info; "


def is_report(data: bytes) -> bool:
    """Whether a file's bytes are a report that one of these renderers wrote: the only non-empty files that
    `--output` may replace.  Text and Markdown start with the summary line, markup (HTML) holds it near its
    top; JSON is an object with the schema's `version` and `findings`."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    if re.match(_REPORT_START, text.split("\n", 1)[0]):
        return True
    if text.lstrip().startswith("<"):  # a markup rendering (HTML) carries the summary line near its top
        return re.search(_REPORT_START, text[:8192]) is not None
    import json as _json

    try:
        doc = _json.loads(text)
    except ValueError:
        return False
    return isinstance(doc, dict) and "version" in doc and "findings" in doc
