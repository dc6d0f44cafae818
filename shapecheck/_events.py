"""Plain data shared by the rewriter, the recorder, the rules and the report.

Nothing here holds a reference to a user's array: a `Value` is a description
(kind, shape, dtype), so the recorder's memory is bounded by sites x signatures.
"""

from __future__ import annotations

Shape = tuple[int, ...]


class _Data:
    """Plain classes with a dataclass's equality and repr over their `__slots__` (the fields, in order).
    Not dataclasses: creating those at import was a measurable part of `python -m shapecheck`'s start-up
    (tests/test_startup.py).  The frozen ones are hashable and never changed after creation (`replace`)."""

    __slots__ = ()

    def _fields(self) -> tuple:
        return tuple(getattr(self, f) for f in self.__slots__)

    def __eq__(self, other):
        if other.__class__ is self.__class__:
            return self._fields() == other._fields()
        return NotImplemented

    def __repr__(self) -> str:
        return f"{type(self).__qualname__}({', '.join(f'{f}={getattr(self, f)!r}' for f in self.__slots__)})"

    __hash__ = None  # mutable, as dataclass(eq=True) makes it


class _Frozen(_Data):
    __slots__ = ()

    def __hash__(self) -> int:
        return hash(self._fields())


def replace(obj: _Data, **changes):
    """A copy of `obj` with some fields changed (dataclasses.replace for these classes)."""
    return type(obj)(**{f: changes.pop(f) if f in changes else getattr(obj, f) for f in obj.__slots__}, **changes)


class OperandSpec(_Frozen):
    """What the source says about one operand of a site (known before the code runs)."""

    __slots__ = ("text", "name", "child", "transposed", "explicit", "shaped_by_name", "shaped_from", "reduced",
                 "reduction_axis", "keepdims")

    def __init__(self, text: str,
                 name: str | None = None,  # the variable, when the operand is a plain name
                 child: int | None = None,  # id of the site that computes this operand, if any
                 transposed: bool = False,  # written as `<expr>.T` or `np.transpose(<expr>)`
                 explicit: bool = False,  # spells out a shape: `[:, None]`, np.newaxis, reshape, keepdims
                 shaped_by_name: bool = False,  # a name whose assignments in this scope all spell out a shape
                 shaped_from: str | None = None,  # `sq` when this name is `sq.reshape(-1, 1)` (or `sq[:, None]`)
                 reduced: str | None = None,  # for a reduction: the source text of the array reduced
                 reduction_axis: int | None = None,  # a sum/mean/... over this axis without keepdims
                 keepdims: bool = False):
        self.text = text
        self.name = name
        self.child = child
        self.transposed = transposed
        self.explicit = explicit
        self.shaped_by_name = shaped_by_name
        self.shaped_from = shaped_from
        self.reduced = reduced
        self.reduction_axis = reduction_axis
        self.keepdims = keepdims


class Site(_Frozen):
    """One array-relevant operation in the user's source."""

    __slots__ = ("id", "path", "line", "col", "end_line", "end_col", "kind", "op", "text", "operands", "scope",
                 "targets", "callee", "keywords", "explicit", "self_refs", "value_of", "aug_target", "ignore",
                 "glued_sign")

    def __init__(self, id: int,  # noqa: A002 - the field's name
                 path: str,  # as the user would write it: relative to the working directory when inside it
                 line: int, col: int, end_line: int, end_col: int,
                 kind: str,  # "binop", "compare", "augassign", "call", "method", "assign"
                 op: str,  # "+", "@", "==", "-=", the callee's text for calls, "=" for assignments
                 text: str,  # the whole expression (for assignments: the right-hand side)
                 operands: tuple[OperandSpec, ...],
                 scope: str,  # qualified name of the enclosing function, "<module>" at top level
                 targets: tuple[str, ...] = (),  # names or target texts assigned from this expression
                 callee: str | None = None,  # last attribute or name of the callee: "dot", "sum", "relu"
                 keywords: tuple[tuple[str, str], ...] = (),  # (name, source text) of keyword arguments
                 explicit: bool = False,  # the expression spells out a broadcast (None/newaxis/reshape/np.outer)
                 self_refs: tuple[tuple[int, int], ...] = (),  # (site id, operand index) reading the assigned name
                 value_of: int | None = None,  # for assignments: the site whose result is assigned
                 # For `obj.attr += v` / `c[k] += v`: how to read the target from the frame if the statement
                 # fails: ("attr", "obj", "attr") or ("item", "c", ("const", k) | ("name", "k") | ("held",)).
                 aug_target: tuple | None = None,
                 ignore: frozenset[str] = frozenset(),  # codes silenced by `# shapecheck: ignore[...]`
                 # An assignment written `x =- y` / `x =+ y`: the text from the target's end through the
                 # sign glued to `=` (" =-"; "=-" when written without any space, `x=-y`), else None.
                 glued_sign: str | None = None):
        self.id = id
        self.path = path
        self.line = line
        self.col = col
        self.end_line = end_line
        self.end_col = end_col
        self.kind = kind
        self.op = op
        self.text = text
        self.operands = operands
        self.scope = scope
        self.targets = targets
        self.callee = callee
        self.keywords = keywords
        self.explicit = explicit
        self.self_refs = self_refs
        self.value_of = value_of
        self.aug_target = aug_target
        self.ignore = ignore
        self.glued_sign = glued_sign

    def __repr__(self) -> str:
        # Without the rarely set `glued_sign` when it is unset: the golden site tables stay as written.
        shown = [f for f in self.__slots__ if f != "glued_sign" or self.glued_sign is not None]
        return f"Site({', '.join(f'{f}={getattr(self, f)!r}' for f in shown)})"

    @property
    def location(self) -> str:
        return f"{self.path}:{self.line}"


class Value(_Frozen):
    """A description of one runtime value: never the value itself."""

    __slots__ = ("kind", "shape", "dtype", "type_name", "index", "columns", "literal")

    def __init__(self, kind: str,  # ndarray, matrix, Series, DataFrame, list, tuple, scalar, other
                 shape: Shape | None,  # None when the kind has no shape
                 dtype: str | None = None,
                 type_name: str = "",  # the Python type, for kinds that need it ("other", "scalar")
                 index: str | None = None,  # pandas: a short description of the index, for alignment messages
                 columns: str | None = None,  # a DataFrame's columns, described the same way
                 literal: int | tuple | None = None):  # small ints and int tuples (reshape's and sum's arguments)
        self.kind = kind
        self.shape = shape
        self.dtype = dtype
        self.type_name = type_name
        self.index = index
        self.columns = columns
        self.literal = literal

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


class Record(_Data):
    """One distinct operand signature seen at a site, with how often."""

    __slots__ = ("operands", "result", "count", "error", "aligned", "labels")

    def __init__(self, operands: tuple[Value, ...],
                 result: Value | None = None,  # known from shape algebra or from an assignment
                 count: int = 0,
                 error: str | None = None,  # shape algebra says this signature cannot work (it raised)
                 aligned: bool | None = None,  # pandas objects with equal indexes (None: not both pandas)
                 # how two pandas operands' labels line up: "equal", "reordered", "rows", "differ" (_recorder._labels)
                 labels: str | None = None):
        self.operands = operands
        self.result = result
        self.count = count
        self.error = error
        self.aligned = aligned
        self.labels = labels


class SiteLog(_Data):
    """Everything recorded at one site: its records, and whether the cap was reached."""

    __slots__ = ("site", "records", "capped", "drift", "last")

    def __init__(self, site: Site, records: list[Record] | None = None,
                 capped: int = 0,  # executions not recorded because the site had too many signatures
                 drift: list[tuple[str, Shape, Shape]] | None = None,  # (name, before, after)
                 last: Record | None = None):  # the record of the most recent run (synced by the recorder's snapshot)
        self.site = site
        self.records = [] if records is None else records
        self.capped = capped
        self.drift = [] if drift is None else drift
        self.last = last
