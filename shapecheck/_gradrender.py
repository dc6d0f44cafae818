"""Text and Markdown renderings of a GradReport. Renderers return strings; they never print."""

from __future__ import annotations

from tabulate import tabulate

from ._graddiag import fmt_shape

SHOWN_STEPS = 8  # backward-chain steps shown in text
HEADERS = ["parameter", "shape", "grad shape", "dtype", "status", "checked", "max abs err", "rel err",
           "worst at", "analytic", "numeric", "diagnosis"]


def _num(x) -> str:
    # + 0.0 turns -0.0 into 0.0: "analytic -0" reads like a bug of ours.
    return "-" if x is None else f"{x + 0.0:.3g}"


def _checked(row) -> str:
    text = f"{row.checked}/{row.total}"
    if row.directions:
        text += f" +{row.directions} dir"
    return text


def _kind(row) -> str:
    d = row.diagnosis
    if d.kind == "scale" and d.factor is not None:
        return f"scale x{d.factor:.4g}"
    if d.kind in ("transpose", "shape", "partial") and d.factor not in (None, 0.0):
        return f"{d.kind} x{d.factor:.4g}"
    return d.kind


def _cells(row) -> list[str]:
    return [
        row.name,
        fmt_shape(row.shape),
        fmt_shape(row.grad_shape),
        row.dtype,
        row.status,
        _checked(row),
        _num(row.max_abs_error),
        _num(row.rel_error),
        "-" if row.worst_index is None else fmt_shape(row.worst_index),
        _num(row.analytic),
        _num(row.numeric),
        _kind(row),
    ]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def headline(report) -> str:
    """One line: passed or FAILED, what, and what it cost."""
    cost = f"mode {report.mode}, {_plural(report.evaluations, 'loss evaluation')}"
    rows = report.rows
    if report.passed:
        entries = sum(r.checked for r in rows)
        dirs = sum(r.directions for r in rows)
        what = _plural(entries, "entry").replace("entrys", "entries")
        if dirs:
            what += f" and {_plural(dirs, 'direction')}"
        kinks = sum(r.kinks for r in rows)
        extra = f"; {_plural(kinks, 'kink')} skipped" if kinks else ""
        return f"gradient check passed: {_plural(len(rows), 'parameter')} agree on {what}{extra} ({cost})"
    failing = [r for r in rows if r.status in ("wrong", "shape")]
    if not failing:
        return f"gradient check FAILED: {report.overall_text.split(': ')[0].rstrip('.')} ({cost})"
    names = ", ".join(f"{r.name} ({_kind(r)})" for r in failing)
    return f"gradient check FAILED: {len(failing)} of {_plural(len(rows), 'parameter')} wrong: {names} ({cost})"


def _explained(report) -> list:
    # Rows skipped because the whole check could not run say so once, below the table.
    return [r for r in report.rows if (r.status != "ok" or r.notes)
            and not (r.status == "skipped" and report.overall_kind in ("random", "error"))]


def _detail_lines(row) -> list[str]:
    """The numbers under a wrong row, in numpy.testing's words."""
    lines = []
    compared = row.checked + row.directions
    if compared and row.status in ("wrong", "unsure"):
        unit = "elements" if not row.directions else "probes (entries and directions)"
        lines.append(f"Mismatched {unit}: {row.mismatched} / {compared} ({100 * row.mismatched / compared:.3g}%)")
    if row.max_abs_error is not None and row.status in ("wrong", "unsure"):
        where = f" at {fmt_shape(row.worst_index)}" if row.worst_index is not None else ""
        vals = (f" (analytic {_num(row.analytic)}, numeric {_num(row.numeric)})"
                if row.analytic is not None and row.numeric is not None else "")
        lines.append(f"Max absolute difference: {_num(row.max_abs_error)}{where}{vals}")
        if row.analytic is not None and row.numeric not in (None, 0.0):
            lines.append(f"Max relative difference: {_num(abs(row.analytic - row.numeric) / abs(row.numeric))}")
    lines.extend(row.notes)
    lines.extend(source_lines(row))
    return lines


def source_lines(row) -> list[str]:
    """Where a failed gradient came from, its backward chain, and the fix the check confirmed (issue 9)."""
    out = []
    loc = row.location
    if loc is not None:
        out.append(f"produced by `{loc.statement}` at {loc.path}:{loc.line}")
    steps = [s for s in row.chain if not s.right]
    right = [s for s in row.chain if s.right]
    if len(steps) > 1 or (steps and right):
        shown = steps[-SHOWN_STEPS:]  # the steps nearest the gradient; the data holds them all
        text = "backward chain: " + ("... -> " if len(shown) < len(steps) else "") + " -> ".join(
            f"line {s.line} `{s.statement}`" for s in shown)
        if right:
            text += "; it starts from " + ", ".join(
                f"{s.name} (line {s.line}), which also feeds {s.feeds}'s gradient (checked ok)" for s in right[-2:])
        out.append(text)
    mistake = row.mistake
    if mistake is not None:
        why = _WHY.get(mistake.why, _WHY["chain"])
        if mistake.why == "missing":
            out.append(f"a statement is missing after line {mistake.line}: `{mistake.statement}` ({why})")
        else:
            out.append(f"the mistake is at line {mistake.line}: `{mistake.statement}` ({why})")
    fix = row.fix
    if fix is not None and fix.kind == "derivative" and mistake is None:
        out.append("a derivative left out: with the value multiplied by an activation's derivative, the check "
                   "passes")
    if fix is not None and fix.kind == "missing":
        added = fix.after.splitlines()[-1].strip()
        out.append(f"fix (verified: the gradient check passes with it): add `{added}` after line {fix.line} "
                   f"({fix.path}:{fix.line})")
    elif fix is not None:
        also = [n for n in fix.rows if n != row.name]
        where = "the loss" if fix.at_loss else f"{fix.path}:{fix.line}"
        out.append(f"fix (verified: the gradient check passes with it): `{fix.after}` at {where}"
                   + (f", instead of `{fix.before}`" if loc is None or fix.before != loc.statement else "")
                   + (f" (it fixes {', '.join(also)} too)" if also else ""))
        alt = fix.alternative
        if alt is not None and alt.at_loss and mistake is not None and mistake.why == "fix, loss positive":
            out.append(f"or, if the loss is what is wrong (verified too, but the loss would become negative): "
                       f"`{alt.after}` at {alt.path}:{alt.line}")
        elif alt is not None and alt.at_loss:
            out.append(f"or, if the loss is what is wrong (verified too; the check cannot tell which one you meant): "
                       f"`{alt.after}` at {alt.path}:{alt.line}")
        elif alt is not None:
            out.append(f"or (verified too; the check cannot tell which one you meant): `{alt.after}` at "
                       f"{alt.path}:{alt.line}")
    elif row.fix_tried:
        lines = ", ".join(str(n) for n in row.fix_lines)
        out.append(f"no fix verified: {row.fix_tried} one-line edit{'s' if row.fix_tried != 1 else ''} of line"
                   f"{'s' if len(row.fix_lines) != 1 else ''} {lines} implied by the diagnosis were tried in memory; "
                   "none makes the check pass.")
    return out


_WHY = {
    "fix": "a verified edit of it makes the check pass",
    "chain": "of the statements its gradient is computed from, the only one that feeds no gradient which checked "
             "ok; or a statement that should follow it is missing",
    "derivative": "a derivative left out: of the statements its gradient is computed from, only this one, "
                  "multiplied by an activation's derivative, makes the check pass",
    "derivative, passes": "a derivative left out: it only passes a value on, where an activation's derivative "
                          "belongs, and multiplied by it the check passes",
    "factor, passes": "it assigns a name its own value, where a factor was taken out; with the factor there the "
                      "check passes, as it would at any step of the chain",
    "fix, loss positive": "a verified edit of it makes the check pass; a minus added to the loss would pass "
                          "too, but the loss is positive and would become negative, which no usual loss is",
    "missing": "the numeric gradient exceeds yours by the parameter itself times a number in scope: the "
               "gradient of an L2 regulariser is left out; added there, it makes the check pass",
    "swapped": "the only statement where exchanging the two makes both pass",
}


def _label(row) -> str:
    return row.name if row.grad_name in (None, row.name) else f"{row.name} ({row.grad_name})"


def render_text(report) -> str:
    """Headline, table, then one plain-language paragraph per parameter that is not ok."""
    out = [headline(report), ""]
    out.append(tabulate([_cells(r) for r in report.rows], headers=HEADERS, disable_numparse=True))
    explained = _explained(report)
    if explained:
        out.append("")
    for r in explained:
        out.append(f"{_label(r)}: {r.diagnosis.text}")
        out.extend("    " + line for line in _detail_lines(r))
    if report.overall_kind != "ok":
        out += ["", report.overall_text]
    if report.notes:
        out += ["", "Notes:"] + [f"  - {n}" for n in report.notes]
    return "\n".join(out)


def render_markdown(report) -> str:
    """The same report for a pull request: bold headline, GitHub table, bullets."""
    head = headline(report)
    verdict, _, rest = head.partition(": ")
    out = [f"**{verdict}**: {rest}", ""]
    cells = [[c.replace("|", "\\|") for c in _cells(r)] for r in report.rows]
    out.append(tabulate(cells, headers=HEADERS, tablefmt="github", disable_numparse=True))
    explained = _explained(report)
    if explained:
        out.append("")
    for r in explained:
        out.append(f"- **{_label(r)}**: {r.diagnosis.text}")
        out.extend(f"  - {line}" for line in _detail_lines(r))
    if report.overall_kind != "ok":
        out += ["", report.overall_text]
    if report.notes:
        out += [""] + [f"> {n}" for n in report.notes]
    return "\n".join(out)
