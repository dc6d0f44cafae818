"""The report: findings, the crash and the shape log, as plain data that renderers turn into text."""

from __future__ import annotations

from ._events import Record, Site, SiteLog, Value, _Data, _Frozen

# Plain slotted classes with a dataclass's equality and repr (see _events._Data): no dataclass is created
# when the report is built, at the end of every run.

SCHEMA_VERSION = 1
SEVERITIES = ("error", "warning", "info")


def rank(severity: str) -> int:
    """0 for error, 1 for warning, 2 for info: lower is worse."""
    return SEVERITIES.index(severity)


class Operand(_Frozen):
    """One operand as reported: its source text and what it was."""

    __slots__ = ("text", "kind", "shape", "dtype", "origin")

    def __init__(self, text: str, kind: str, shape: tuple[int, ...] | None, dtype: str | None,
                 origin: str | None = None):  # provenance: where a named operand got its shape
        self.text = text
        self.kind = kind
        self.shape = shape
        self.dtype = dtype
        self.origin = origin

    @classmethod
    def of(cls, text: str, value: Value, origin: str | None = None) -> Operand:
        return cls(text, value.kind if value.kind != "other" else value.type_name, value.shape, value.dtype, origin)

    def to_dict(self) -> dict:
        d = {"text": self.text, "kind": self.kind, "shape": _shape_list(self.shape), "dtype": self.dtype}
        if self.origin:
            d["origin"] = self.origin
        return d


class Root(_Data):
    """One statement that gave an array the shape several findings stumble on (`y` made rank-1 once), with
    the one edit there that shape algebra shows fixes every member."""

    __slots__ = ("name", "path", "line", "statement", "shape", "fixed_shape", "fix", "verb", "members", "origin")

    def __init__(self, name: str, path: str, line: int, statement: str, shape: tuple[int, ...],
                 fixed_shape: tuple[int, ...], fix: str,
                 verb: str,  # "reshape", "flatten": what the fix does to the array
                 members: list[tuple[str, str, int]] | None = None,  # (code, path, line) of each finding
                 origin: int | None = None):  # the id of the assignment site (not reported)
        self.name = name
        self.path = path
        self.line = line
        self.statement = statement
        self.shape = shape
        self.fixed_shape = fixed_shape
        self.fix = fix
        self.verb = verb
        self.members = [] if members is None else members
        self.origin = origin

    def lead(self, where: str | None = None) -> str:
        """`y became (200,) at line 42 (`y = ...`): reshape it once there, which fixes 3 findings`."""
        at = f"at {where}" if where else f"at line {self.line}"
        n = len(self.members)
        return (f"{self.name} became {_fmt(self.shape)} {at} (`{self.name} = {self.statement}`): {self.verb} it once "
                f"there, which fixes {n} finding{'s' if n != 1 else ''} (lines "
                f"{', '.join(str(m[2]) for m in self.members)})")

    def key(self) -> dict:
        return {"name": self.name, "path": self.path, "line": self.line}

    def to_dict(self) -> dict:
        return {**self.key(), "statement": f"{self.name} = {self.statement}", "shape": _shape_list(self.shape),
                "fixed_shape": _shape_list(self.fixed_shape), "fix": self.fix, "lead": self.lead(),
                "members": [{"code": c, "path": p, "line": n} for c, p, n in self.members]}


class Finding(_Data):
    __slots__ = ("code", "severity", "site", "operands", "result", "message", "fix", "count", "root")

    def __init__(self, code: str, severity: str, site: Site, operands: tuple[Operand, ...],
                 result: tuple[int, ...] | None, message: str, fix: str | None, count: int = 1,
                 root: Root | None = None):  # the origin this finding shares with others, when verified
        self.code = code
        self.severity = severity
        self.site = site
        self.operands = operands
        self.result = result
        self.message = message
        self.fix = fix
        self.count = count
        self.root = root

    def to_dict(self) -> dict:
        d = {
            "code": self.code, "severity": self.severity, "path": self.site.path, "line": self.site.line,
            "column": self.site.col, "expression": self.site.text,
            "operands": [o.to_dict() for o in self.operands], "result_shape": _shape_list(self.result),
            "count": self.count, "message": self.message, "fix": self.fix,
        }
        if self.root is not None:
            d["root"] = self.root.key()
        return d


class Fix(_Frozen):
    __slots__ = ("expression", "shape", "why")

    def __init__(self, expression: str, shape: tuple[int, ...] | None,
                 why: str = ""):  # "the shape of w2", "what delta3 would be with y as (130, 1)"
        self.expression = expression
        self.shape = shape
        self.why = why

    def __str__(self) -> str:
        s = f"{self.expression} -> {_fmt(self.shape)}" if self.shape is not None else self.expression
        return f"{s}  ({self.why})" if self.why else s


class Crash(_Data):
    __slots__ = ("type", "message", "path", "line", "expression", "operands", "explanation", "fixes", "shaped")

    def __init__(self, type: str, message: str, path: str | None, line: int | None,  # noqa: A002
                 expression: str | None, operands: tuple[Operand, ...] = (), explanation: str | None = None,
                 fixes: list[Fix] | None = None, shaped: bool = True):
        self.type = type
        self.message = message
        self.path = path
        self.line = line
        self.expression = expression
        self.operands = operands
        self.explanation = explanation
        self.fixes = [] if fixes is None else fixes
        # False when the cause is not an operand's shape (a dtype, a pandas object's missing method, a
        # numpy API trap): then "no transpose or reshape works" is no advice.
        self.shaped = shaped

    def to_dict(self) -> dict:
        return {
            "type": self.type, "message": self.message, "path": self.path, "line": self.line,
            "expression": self.expression, "operands": [o.to_dict() for o in self.operands],
            "explanation": self.explanation, "fixes": [str(f) for f in self.fixes],
        }


class Report(_Data):
    """Everything one run found.  Renderers in `_render` turn it into text, JSON or Markdown."""

    __slots__ = ("script", "exit_status", "findings", "crash", "sites", "gradcheck", "internal_errors",
                 "untraced")

    def __init__(self, script: str | None, exit_status: int | None, findings: list[Finding] | None = None,
                 crash: Crash | None = None, sites: list[SiteLog] | None = None,
                 gradcheck: object | None = None,  # a GradReport, when --grad was given
                 internal_errors: int = 0,
                 untraced: list[str] | None = None):  # files shapecheck could not rewrite: they ran as written
        self.script = script
        self.exit_status = exit_status
        self.findings = [] if findings is None else findings
        self.crash = crash
        self.sites = [] if sites is None else sites
        self.gradcheck = gradcheck
        self.internal_errors = internal_errors
        self.untraced = [] if untraced is None else untraced

    def counts(self) -> dict[str, int]:
        c = {s: 0 for s in SEVERITIES}
        for f in self.findings:
            c[f.severity] += 1
        return c

    def roots(self, findings: list[Finding] | None = None) -> list[Root]:
        """The shared origins of (the given) findings, in source order."""
        seen = {id(f.root): f.root for f in (self.findings if findings is None else findings) if f.root is not None}
        return sorted(seen.values(), key=lambda r: (r.path, r.line))

    def worst(self) -> str | None:
        return min((f.severity for f in self.findings), key=rank, default=None)

    def to_dict(self, log: bool = False) -> dict:
        """The JSON report.  The shape log (`sites`, one entry per recorded site) only with `log`: it grows
        with the program, the rest with what was found; `recorded` always counts it."""
        return {
            "version": SCHEMA_VERSION,
            "script": self.script,
            "exit_status": self.exit_status,
            "summary": self.counts(),
            "findings": [f.to_dict() for f in self.findings],
            "roots": [r.to_dict() for r in self.roots()],
            "crash": self.crash.to_dict() if self.crash else None,
            "recorded": {"operations": sum(r.count for lg in self.sites for r in lg.records),
                         "sites": sum(1 for lg in self.sites if lg.records)},
            "log": log,
            "sites": [_site_dict(lg) for lg in self.sites if lg.records] if log else [],
            "gradcheck": self.gradcheck.to_dict() if self.gradcheck is not None else None,
            "internal_errors": self.internal_errors,
            "untraced": list(self.untraced),
        }


def _site_dict(log: SiteLog) -> dict:
    s = log.site
    return {
        "path": s.path, "line": s.line, "column": s.col, "kind": s.kind, "expression": s.text,
        "targets": list(s.targets),
        "signatures": [{
            "operands": [Operand.of(spec.text, v).to_dict() for spec, v in zip(s.operands, rec.operands)],
            "result": Operand.of("", rec.result).to_dict() | {"text": None} if rec.result else None,
            "count": rec.count,
        } for rec in log.records],
        "capped": log.capped,
    }


def _shape_list(shape) -> list[int] | None:
    return list(shape) if shape is not None else None


def _fmt(shape) -> str:
    from ._shapes import fmt

    return fmt(shape)


def operands_of(site: Site, rec: Record, origins: dict[str, str] | None = None) -> tuple[Operand, ...]:
    origins = origins or {}
    return tuple(Operand.of(spec.text, v, origins.get(spec.text)) for spec, v in zip(site.operands, rec.operands))
