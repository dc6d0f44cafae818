"""Plain data shared by the rewriter, the recorder, the rules and the report.

Nothing here holds a reference to a user's array: a `Value` is a description
(kind, shape, dtype), so the recorder's memory is bounded by sites x signatures.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Shape = tuple[int, ...]


@dataclass(frozen=True, slots=True)
class OperandSpec:
    """What the source says about one operand of a site (known before the code runs)."""

    text: str
    name: str | None = None  # the variable, when the operand is a plain name
    child: int | None = None  # id of the site that computes this operand, if any
    transposed: bool = False  # written as `<expr>.T` or `np.transpose(<expr>)`
    explicit: bool = False  # spells out a shape: `[:, None]`, np.newaxis, reshape, keepdims
    shaped_by_name: bool = False  # a name whose assignments in this scope all spell out a shape
    shaped_from: str | None = None  # `sq` when this name is `sq.reshape(-1, 1)` (or `sq[:, None]`)
    reduced: str | None = None  # for a reduction: the source text of the array reduced
    reduction_axis: int | None = None  # a sum/mean/... over this axis without keepdims
    keepdims: bool = False


@dataclass(frozen=True, slots=True)
class Site:
    """One array-relevant operation in the user's source."""

    id: int
    path: str  # as the user would write it: relative to the working directory when inside it
    line: int
    col: int
    end_line: int
    end_col: int
    kind: str  # "binop", "compare", "augassign", "call", "method", "assign"
    op: str  # "+", "@", "==", "-=", the callee's text for calls, "=" for assignments
    text: str  # the whole expression (for assignments: the right-hand side)
    operands: tuple[OperandSpec, ...]
    scope: str  # qualified name of the enclosing function, "<module>" at top level
    targets: tuple[str, ...] = ()  # names or target texts assigned from this expression
    callee: str | None = None  # last attribute or name of the callee: "dot", "sum", "relu"
    keywords: tuple[tuple[str, str], ...] = ()  # (name, source text) of keyword arguments
    explicit: bool = False  # the expression spells out a broadcast (None/newaxis/reshape/np.outer)
    self_refs: tuple[tuple[int, int], ...] = ()  # (site id, operand index) reading the assigned name
    value_of: int | None = None  # for assignments: the site whose result is assigned
    # For `obj.attr += v` / `c[k] += v`: how to read the target from the frame if the statement fails:
    # ("attr", "obj", "attr") or ("item", "c", ("const", k) | ("name", "k") | ("held",)).
    aug_target: tuple | None = None
    ignore: frozenset[str] = frozenset()  # codes silenced by `# shapecheck: ignore[...]`

    @property
    def location(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True, slots=True)
class Value:
    """A description of one runtime value: never the value itself."""

    kind: str  # ndarray, matrix, Series, DataFrame, list, tuple, scalar, other
    shape: Shape | None  # None when the kind has no shape
    dtype: str | None = None
    type_name: str = ""  # the Python type, for kinds that need it ("other", "scalar")
    index: str | None = None  # pandas: a short description of the index, for alignment messages
    columns: str | None = None  # a DataFrame's columns, described the same way
    literal: int | tuple | None = None  # small ints and int tuples (reshape's and sum's arguments)

    @property
    def is_array(self) -> bool:
        return self.kind in ("ndarray", "matrix", "Series", "DataFrame")

    @property
    def is_pandas(self) -> bool:
        return self.kind in ("Series", "DataFrame")

    @property
    def size(self) -> int | None:
        if self.shape is None:
            return None
        n = 1
        for d in self.shape:
            n *= d
        return n


@dataclass(slots=True)
class Record:
    """One distinct operand signature seen at a site, with how often."""

    operands: tuple[Value, ...]
    result: Value | None = None  # known from shape algebra or from an assignment
    count: int = 0
    error: str | None = None  # shape algebra says this signature cannot work (it raised)
    aligned: bool | None = None  # pandas objects with equal indexes (None: not both pandas)


@dataclass(slots=True)
class SiteLog:
    """Everything recorded at one site: its records, and whether the cap was reached."""

    site: Site
    records: list[Record] = field(default_factory=list)
    capped: int = 0  # executions not recorded because the site had too many signatures
    drift: list[tuple[str, Shape, Shape]] = field(default_factory=list)  # (name, before, after)
    last: Record | None = None  # the record of the most recent run (synced by the recorder's snapshot)
