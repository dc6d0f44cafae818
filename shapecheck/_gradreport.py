"""The result of a gradient check: one row per parameter, an overall reading, JSON-ready data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._graddiag import GradDiagnosis

# unsure: some probes disagreed and the budget ran out before they were settled (never a pass).
STATUSES = ("ok", "wrong", "shape", "kink", "unsure", "skipped")


@dataclass(frozen=True)
class GradRow:
    """One parameter leaf: what was compared and what is wrong with its gradient.

    ``rel_error`` is ||g - n|| / max(||g|| + ||n||, tiny) over the probes
    compared (entries and directional derivatives): 0 when they agree, 1 when
    one is the negative of the other or one of them is zero.
    """

    name: str
    shape: tuple
    grad_shape: tuple | None  # None when grads has no entry for this parameter
    grad_name: str | None  # the entry of grads used, e.g. "dW1" for W1
    dtype: str
    checked: int  # entries compared one by one
    total: int  # entries in the parameter
    directions: int  # random-direction probes compared
    mismatched: int  # probes (entries and directions) confirmed wrong
    max_abs_error: float | None
    rel_error: float | None
    worst_index: tuple | None  # in the parameter's own shape
    analytic: float | None  # at worst_index
    numeric: float | None
    status: str  # one of STATUSES
    diagnosis: GradDiagnosis
    evaluations: int  # loss evaluations spent on this parameter
    kinks: int = 0
    notes: tuple = ()
    # Where the gradient came from (issue 9), for rows that failed: the statement that produced it, the backward
    # statements it was computed from, and a one-line edit with which its check passes (never an unverified one).
    location: Any = None  # _gradfix.Location
    chain: tuple = ()  # _gradfix.ChainStep, in the order they ran
    fix: Any = None  # _gradfix.Fix
    fix_tried: int = 0  # candidate edits tried when none verified
    fix_lines: tuple = ()  # the lines they edited
    mistake: Any = None  # _gradfix.Mistake: the one line the evidence pins the slip to (None: it does not)
    # |analytic - numeric| per entry, NaN where not compared (for heat maps); not part of to_dict
    errors: Any = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "shape": list(self.shape),
            "grad_shape": None if self.grad_shape is None else list(self.grad_shape),
            "grad_name": self.grad_name,
            "dtype": self.dtype,
            "checked": int(self.checked),
            "total": int(self.total),
            "directions": int(self.directions),
            "mismatched": int(self.mismatched),
            "max_abs_error": _f(self.max_abs_error),
            "rel_error": _f(self.rel_error),
            "worst_index": None if self.worst_index is None else [int(i) for i in self.worst_index],
            "analytic": _f(self.analytic),
            "numeric": _f(self.numeric),
            "status": self.status,
            "diagnosis": {
                "kind": self.diagnosis.kind,
                "factor": _f(self.diagnosis.factor),
                "text": self.diagnosis.text,
            },
            "evaluations": int(self.evaluations),
            "kinks": int(self.kinks),
            "notes": list(self.notes),
            "location": None if self.location is None else self.location.to_dict(),
            "chain": [step.to_dict() for step in self.chain],
            "fix": None if self.fix is None else self.fix.to_dict(),
            "fix_tried": int(self.fix_tried),
            "mistake": None if self.mistake is None else self.mistake.to_dict(),
        }


def _f(x: float | None) -> float | None:
    # JSON has no nan/inf: they become None (the text says what happened).
    if x is None:
        return None
    x = float(x)
    return x if x == x and abs(x) != float("inf") else None


@dataclass(frozen=True)
class GradReport:
    """The outcome of ``gradcheck``: ``passed``, ``rows`` (one per parameter, in the order given), a diagnosis.

    ``str(report)`` is the text report (headline, table, diagnosis lines);
    ``report.to_markdown()`` the same for a pull request; ``report.to_dict()``
    plain JSON-ready data. ``bool(report)`` is ``report.passed``, so
    ``assert gradcheck(...)`` cannot pass by accident.

    >>> import numpy as np
    >>> from shapecheck._gradcheck import gradcheck
    >>> r = gradcheck(lambda p: float(np.sum(p["w"] ** 2)), lambda p: {"w": 2 * p["w"]}, {"w": np.ones(3)})
    >>> r.passed, r.rows[0].status
    (True, 'ok')
    """

    rows: tuple[GradRow, ...]
    passed: bool
    mode: str
    evaluations: int  # loss evaluations in all, including the two at the unperturbed parameters
    loss: float | None
    overall_kind: str  # ok | sign | scale | wrong | unsure | random | error
    overall_factor: float | None
    overall_text: str
    look_first: str | None
    notes: tuple = ()
    source_evaluations: int = 0  # loss evaluations spent locating statements and verifying fixes (not in evaluations)

    def __bool__(self) -> bool:
        return self.passed

    @property
    def headline(self) -> str:
        from ._gradrender import headline

        return headline(self)

    def __str__(self) -> str:
        from ._gradrender import render_text

        return render_text(self)

    def __repr__(self) -> str:
        wrong = [f"{r.name} {r.diagnosis.kind}" for r in self.rows if r.status in ("wrong", "shape")]
        return f"<GradReport passed={self.passed} mode={self.mode!r} rows={len(self.rows)}" + (
            f" wrong: {', '.join(wrong)}>" if wrong else ">"
        )

    def _repr_html_(self) -> str:
        """The report as HTML, for notebooks: status coloured, heat maps of wrong 2-D gradients."""
        from ._html import FONT, grad_section

        return f'<div style="{FONT}">{grad_section(self)}</div>'

    def to_markdown(self) -> str:
        """The report as Markdown (a GitHub table and a bullet list)."""
        from ._gradrender import render_markdown

        return render_markdown(self)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (dicts, lists, str, float, int, bool, None) ready for ``json.dumps``."""
        return {
            "passed": bool(self.passed),
            "headline": self.headline,
            "mode": self.mode,
            "evaluations": int(self.evaluations),
            "loss": _f(self.loss),
            "overall": {
                "kind": self.overall_kind,
                "factor": _f(self.overall_factor),
                "text": self.overall_text,
                "look_first": self.look_first,
            },
            "source_evaluations": int(self.source_evaluations),
            "rows": [r.to_dict() for r in self.rows],
            "notes": list(self.notes),
        }
