"""HTML renderer: a `Report` in, one self-contained page (or a fragment for a notebook) out.

Static on purpose: no script, no external stylesheet or font, only inline styles, so the page opens
offline and a notebook's output survives viewers that strip `<style>` blocks (GitHub's).  Without
any style at all it still reads: tables with header cells, code in `<code>`, severities as words.
Every piece of user text (expressions, messages, names) is escaped.  Nothing here prints.
"""

from __future__ import annotations

import re
from html import escape

from ._report import Finding, Report, rank
from ._shapes import fmt

FONT = "font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;font-size:14px;color:#1f2328"
MONO = "font-family:SFMono-Regular,Menlo,Consolas,'Liberation Mono',monospace;font-size:13px"
TABLE = "border-collapse:collapse;margin:6px 0 12px 0;text-align:left"
TH = "border:1px solid #d0d7de;padding:4px 8px;background:#f6f8fa;text-align:left;vertical-align:top"
TD = "border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top"
H = "margin:16px 0 6px 0;font-size:16px"
SEVERITY = {"error": ("#82071e", "#ffebe9"), "warning": ("#7d4e00", "#fff8c5"), "info": ("#57606a", "#f6f8fa")}
STATUS = {"ok": ("#116329", "#dafbe1"), "wrong": ("#82071e", "#ffebe9"), "shape": ("#82071e", "#ffebe9"),
          "kink": ("#7d4e00", "#fff8c5"), "skipped": ("#57606a", "#f6f8fa")}
HEAT_MAX = 24  # rows and columns of a heat map; larger matrices are shown as blocks (each its largest error)

_CELL = re.compile(r"cell \[\d+\]")


def location(path: str | None, line: int | None) -> str:
    """`cell [3], line 2` for a notebook cell, `net.py:12` for a file."""
    if path is None:
        return "outside the traced code"
    if _CELL.fullmatch(path):
        return f"{path}, line {line}"
    return f"{path}:{line}"


def _e(s) -> str:
    return escape(str(s), quote=True)


def _flat(s: str) -> str:
    """Source text on one line: a backslash continuation or a break inside brackets becomes one space."""
    from ._render import flat

    return flat(s)


def _code(s: str) -> str:
    return f'<code style="{MONO};white-space:pre-wrap">{_e(_flat(s))}</code>' if s else ""


def _badge(word: str, colours: tuple[str, str]) -> str:
    fg, bg = colours
    return f'<span style="color:{fg};background:{bg};padding:1px 6px;border-radius:8px;font-weight:600">{_e(word)}</span>'


def _table(headers: list[str], rows: list[list[str]], style: str = TABLE) -> str:
    """`rows` are HTML already (each cell escaped by its caller)."""
    head = "".join(f'<th style="{TH}">{_e(h)}</th>' for h in headers)
    body = "".join("<tr>" + "".join(f'<td style="{TD}">{c}</td>' for c in row) + "</tr>" for row in rows)
    return f'<table style="{style}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _shapes(f: Finding) -> str:
    """Operands and result, each kept on one line: a narrow column breaks between them, not inside."""
    parts = [f"{_flat(o.text)} {fmt(o.shape)}" for o in f.operands]
    if f.result is not None:
        parts.append(f"\u2192 {fmt(f.result)}")
    return " ".join(f'<code style="{MONO};white-space:nowrap">{_e(p)}</code>' for p in parts)


def findings_table(findings: list[Finding], script: str | None = None) -> str:
    """The findings as an HTML table, worst first: code, severity, location, expression, shapes, message, fix."""
    from ._render import _short

    ordered = sorted(findings, key=lambda f: (rank(f.severity), f.site.path, f.site.line, f.code))
    rows = [[f"<b>{_e(f.code)}</b>", _badge(f.severity, SEVERITY.get(f.severity, SEVERITY["info"])),
             f'<span style="white-space:nowrap">{_e(location(_short(f.site.path, script), f.site.line))}</span>',
             _code(f.site.text), _shapes(f), _e(_flat(f.message)), _code(f.fix or "")] for f in ordered]
    return _table(["code", "severity", "location", "expression", "shapes", "message", "fix"], rows)


def crash_section(report: Report) -> str:
    from ._render import no_fix

    c = report.crash
    out = [f'<h3 style="{H}">Crash: {_e(c.type)} at {_e(location(c.path, c.line))}</h3>']
    if c.expression:
        out.append(f"<p>in {_code(c.expression)}</p>")
    if c.message:
        out.append(f"<p>{_code(f'{c.type}: {c.message}')}</p>")
    if c.operands:
        rows = [[_code(o.text), _e(o.kind), _code(fmt(o.shape)), _e(o.dtype or ""), _e(_flat(o.origin or ""))]
                for o in c.operands]
        out.append(_table(["operand", "kind", "shape", "dtype", "origin"], rows))
    if c.explanation:
        out.append(f"<p><b>cause:</b> {_e(_flat(c.explanation))}</p>")
    if c.fixes:
        items = "".join(f"<li>{_code(str(fx))}</li>" for fx in c.fixes)
        out.append(f"<p><b>fix</b> (checked with shape algebra):</p><ul>{items}</ul>")
    elif no_fix(c):
        out.append(f"<p><b>fix:</b> {_e(no_fix(c))}</p>")
    return "".join(out)


def log_table(report: Report) -> str:
    rows = []
    for lg in report.sites:
        for rec in lg.records:
            ops = " ".join(f"{spec.text} {fmt(v.shape)}" for spec, v in zip(lg.site.operands, rec.operands)
                           if v.shape is not None)
            rows.append([_e(location(lg.site.path, lg.site.line)), _e(lg.site.kind), _code(lg.site.text),
                         _code(ops), _code(fmt(rec.result.shape)) if rec.result else "",
                         _e(", ".join(lg.site.targets)), _e(rec.count)])
    return _table(["location", "kind", "expression", "operands", "result", "assigned to", "count"], rows)


# -- gradient check ----------------------------------------------------------


def grad_section(report) -> str:
    """A GradReport: headline, the per-parameter table with the status coloured, the diagnosis of each row
    that is not ok, and a heat map of |analytic - numeric| for each wrong 2-D parameter."""
    from ._gradrender import HEADERS, _cells, _detail_lines, _explained, _label, headline

    colour = STATUS["ok"] if report.passed else STATUS["wrong"]
    out = [f'<p>{_badge("passed" if report.passed else "FAILED", colour)} {_e(headline(report).split(": ", 1)[-1])}</p>']
    status_col = HEADERS.index("status")
    rows = []
    for r in report.rows:
        # numbers and shapes on one line; only the diagnosis (last) column wraps
        cells = [f'<span style="white-space:nowrap">{_e(c)}</span>' for c in _cells(r)[:-1]] + [_e(_cells(r)[-1])]
        cells[status_col] = _badge(r.status, STATUS.get(r.status, STATUS["skipped"]))
        rows.append(cells)
    out.append(_table(HEADERS, rows))
    for r in _explained(report):
        details = "".join(f"<li>{_e(line)}</li>" for line in _detail_lines(r))
        out.append(f"<p><b>{_e(_label(r))}</b>: {_e(r.diagnosis.text)}</p>")
        if details:
            out.append(f'<ul style="margin-top:0">{details}</ul>')
        heat = heat_map(r)
        if heat:
            out.append(heat)
    if report.overall_kind != "ok":
        out.append(f"<p>{_e(report.overall_text)}</p>")
    if report.notes:
        out.append("<p>Notes:</p><ul>" + "".join(f"<li>{_e(n)}</li>" for n in report.notes) + "</ul>")
    return "".join(out)


def heat_map(row) -> str:
    """|analytic - numeric| of a wrong 2-D parameter as a table of coloured cells ("" when there is none).

    The row's `errors` is an array of the parameter's shape with NaN where no entry was compared.  A
    large matrix is cut into at most HEAT_MAX x HEAT_MAX blocks, each shown by its largest error, so a
    single wrong row or column still shows.
    """
    import numpy as np

    errors = getattr(row, "errors", None)
    if row.status != "wrong" or errors is None or np.ndim(errors) != 2 or np.size(errors) == 0:
        return ""
    err = np.abs(np.asarray(errors, dtype=float))
    ri, ci = _blocks(err.shape[0]), _blocks(err.shape[1])
    top = np.nanmax(err) if np.isfinite(err).any() else 0.0
    box = "width:14px;height:14px;padding:0;border:1px solid #fff"
    label = "padding:0 4px;font-size:10px;color:#57606a;text-align:right"
    rows = ["<tr><td></td>" + "".join(f'<td style="{label};text-align:center">{c0 if len(ci) <= 12 or i % 4 == 0 else ""}'
                                      f"</td>" for i, (c0, _) in enumerate(ci)) + "</tr>"]
    for r0, r1 in ri:
        tds = [f'<td style="{label}">{r0}</td>']
        for c0, c1 in ci:
            block = err[r0:r1, c0:c1]
            seen = block[np.isfinite(block)]
            where = f"[{r0}:{r1}, {c0}:{c1}]" if (r1 - r0, c1 - c0) != (1, 1) else f"[{r0}, {c0}]"
            if seen.size == 0:
                tds.append(f'<td title="{where} not compared" style="{box};background:#d0d7de"></td>')
                continue
            v = float(seen.max())
            tds.append(f'<td title="{where} {v:.3g}" style="{box};background:{_heat(v / top if top > 0 else 0.0)}">'
                       f"</td>")
        rows.append("<tr>" + "".join(tds) + "</tr>")
    blocked = len(ri) < err.shape[0] or len(ci) < err.shape[1]
    caption = (f"|analytic \u2212 numeric| of {_e(row.name)} {_e(fmt(err.shape))}"
               + (f", in {len(ri)} x {len(ci)} blocks (each its largest error)" if blocked else "")
               + f": light = 0, darkest = {top:.3g}, grey = not compared")
    return (f'<div style="margin:4px 0 12px 16px"><div style="font-size:12px;color:#57606a">{caption}</div>'
            f'<table style="border-collapse:collapse;margin-top:4px">{"".join(rows)}</table></div>')


def _blocks(n: int) -> list[tuple[int, int]]:
    """[start, stop) ranges cutting n into at most HEAT_MAX blocks."""
    k = min(n, HEAT_MAX)
    edges = [round(i * n / k) for i in range(k + 1)]
    return [(a, b) for a, b in zip(edges, edges[1:]) if b > a]


def _heat(t: float) -> str:
    """Pale yellow (0: visible against a white page, unlike the grey of entries not compared) to dark red (1)."""
    t = min(max(t, 0.0), 1.0)
    r, g, b = (int(round(start + (end - start) * t)) for start, end in ((255, 165), (248, 15), (197, 21)))
    return f"#{r:02x}{g:02x}{b:02x}"


# -- the report --------------------------------------------------------------


def fragment(report: Report, *, log: bool = False, show_info: bool = False) -> str:
    """The report as one `<div>`: for a notebook output, or the body of `page`."""
    from ._render import MAX_SIGNATURES, SILENCE, _visible, summary, untraced_line

    out = [f'<div style="{FONT}">', f'<p style="margin:4px 0"><b>{_e(summary(report))}</b></p>']
    shown = _visible(report, show_info)
    for r in report.roots(shown):
        from ._render import root_where

        out += [f'<h3 style="{H}">Root cause: {_code(r.name)} at {_e(location(r.path, r.line))}</h3>',
                f"<p>{_e(_flat(r.lead(root_where(r, report.script))))}</p>",
                f"<p><b>fix</b> (checked with shape algebra for every finding it names): {_code(r.fix)}</p>"]
    if shown:
        out += [f'<h3 style="{H}">Findings</h3>', findings_table(shown, report.script)]
    hidden = len(report.findings) - len(shown)
    if hidden:
        out.append(f"<p>{hidden} info note{'s' if hidden != 1 else ''} not shown (intended-looking broadcasts and "
                   f"conversions): <code>--show-info</code> lists them</p>")
    capped = [lg for lg in report.sites if lg.capped]
    if capped:
        out.append(f"<p>{len(capped)} site{'s' if len(capped) != 1 else ''} saw more than {MAX_SIGNATURES} "
                   f"different shapes: later ones were counted, not kept</p>")
    if report.crash is not None:
        out.append(crash_section(report))
    if report.gradcheck is not None:
        out += [f'<h3 style="{H}">Gradient check</h3>', grad_section(report.gradcheck)]
    if log:
        out += [f'<h3 style="{H}">Shape log</h3>', log_table(report)]
    if shown:
        worst = min(shown, key=lambda f: (rank(f.severity), f.site.path, f.site.line, f.code))
        out.append(f'<p style="color:#57606a">{_e(SILENCE.format(code=worst.code))}</p>')
    if report.untraced:
        out.append(f"<p>{_e(untraced_line(report))}</p>")
    if report.internal_errors:
        out.append(f"<p>shapecheck: {report.internal_errors} internal error(s) while recording were ignored; "
                   f"please report them</p>")
    out.append("</div>")
    return "".join(out)


def page(report: Report, *, log: bool = False, show_info: bool = False) -> str:
    """A complete, self-contained HTML document (no network access when opened)."""
    title = f"shapecheck: {report.script or '<code>'}"
    return ("<!DOCTYPE html>\n"
            f'<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
            '<meta name="viewport" content="width=device-width, initial-scale=1"></head>'
            f'<body style="margin:24px">{fragment(report, log=log, show_info=show_info)}</body></html>\n')
