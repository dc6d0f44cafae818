"""Diagnosis of a gradient check, as pure functions over measurements already taken.

Every finite difference is a *probe*: a coordinate (one entry of a parameter)
or a direction (a unit vector over all its entries), with the numeric
derivative along it. A hypothesis about the analytic gradient ``g`` ("it is
-n", "it is 32 n", "g.T is n", "g summed over axis 1 is n") is tested by
predicting every probe from a transformed ``g`` and comparing with the numeric
values under the same tolerances the check used. Nothing here evaluates the
loss, so every hypothesis is free.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

# Verdicts of single probes.
OK, WRONG, KINK, NONFINITE, UNCONFIRMED = "ok", "wrong", "kink", "nonfinite", "unconfirmed"


@dataclass
class DirSet:
    """The directional probes of one parameter, made on demand rather than held.

    ``make(j)`` returns the j-th effective unit direction (float64, flat); it
    is rebuilt each time it is needed, so a check holds at most one
    direction-sized array at a time whatever the number of directions.
    """

    count: int = 0
    make: Callable[[int], np.ndarray] | None = None

    def __len__(self) -> int:
        return self.count

    def dot(self, vec: np.ndarray) -> np.ndarray:
        """u_j . vec for every direction."""
        out = np.empty(self.count)
        for j in range(self.count):
            out[j] = float(self.make(j) @ vec)
        return out

    def absdot(self, vec: np.ndarray | None = None) -> np.ndarray:
        """sum_i |u_ji * vec_i| for every direction (sum_i |u_ji| without ``vec``), in place: no temporaries."""
        out = np.empty(self.count)
        for j in range(self.count):
            u = self.make(j)
            if vec is not None:
                u *= vec
            out[j] = float(np.sum(np.abs(u, out=u)))
            del u  # before the next one is made
        return out


@dataclass
class Measurements:
    """The numeric side of one parameter: probes, their values and tolerances."""

    shape: tuple
    coords: np.ndarray  # flat (C-order) indices of the entries probed
    coord_numeric: np.ndarray
    coord_base: np.ndarray  # each coordinate's round-off noise (tolerance() adds atol and rtol)
    dirs: DirSet  # the effective unit directions, made on demand
    dir_numeric: np.ndarray
    dir_base: np.ndarray  # each direction's round-off noise
    rtol: float
    atol: float  # the absolute tolerance per entry (given, or derived from the gradient's scale)
    coord_verdict: np.ndarray = field(default_factory=lambda: np.array([], dtype=object))
    dir_verdict: np.ndarray = field(default_factory=lambda: np.array([], dtype=object))
    noise: float = 0.0  # typical round-off noise of one coordinate derivative
    full: bool = False  # the coordinates cover every entry
    rough: np.ndarray | None = None  # per probe: wrong, and its numeric value straddles a kink
    independent: bool = False  # every perturbation left the loss bit-identical

    @property
    def numeric(self) -> np.ndarray:
        return np.concatenate([self.coord_numeric, self.dir_numeric])

    @property
    def verdicts(self) -> np.ndarray:
        return np.concatenate([self.coord_verdict, self.dir_verdict])

    @property
    def usable(self) -> np.ndarray:
        v = self.verdicts
        return (v != KINK) & (v != NONFINITE)


def predict(g: np.ndarray, m: Measurements) -> np.ndarray:
    """What ``g`` (in the parameter's shape) says every probe should read."""
    flat = np.asarray(g, dtype=np.float64).reshape(-1)
    return np.concatenate([flat[m.coords], m.dirs.dot(flat)])


def tolerance(g: np.ndarray, m: Measurements, pred: np.ndarray) -> np.ndarray:
    """The allowed |prediction - numeric| per probe (the same formula the check used)."""
    base = np.concatenate([m.coord_base + m.atol, m.dir_base + dir_allowance(g, m)])
    return base + m.rtol * np.maximum(np.abs(pred), np.abs(m.numeric))


def dir_allowance(g: np.ndarray, m: Measurements) -> np.ndarray:
    """Per direction: what every entry agreeing would imply, sum_i |u_i| (atol + rtol |g_i|)."""
    if not len(m.dirs):
        return np.zeros(0)
    flat = np.asarray(g, dtype=np.float64).reshape(-1)
    abs_sum = m.dirs.absdot() if m.atol else 0.0
    return m.atol * abs_sum + m.rtol * m.dirs.absdot(flat)


# Hypotheses are tested with this many times the check's tolerance: the check
# has already said the gradient is wrong, the question now is only which of a
# few discrete patterns explains it, and a float32 direction may be off by a
# little more than one rtol.
FIT_SLACK = 4.0


def agrees(g: np.ndarray, m: Measurements, mask: np.ndarray | None = None) -> np.ndarray:
    """Per probe: does ``g`` explain the numeric value (within FIT_SLACK tolerances)?"""
    pred = predict(g, m)
    ok = np.abs(pred - m.numeric) <= FIT_SLACK * tolerance(g, m, pred)
    return ok if mask is None else ok[mask]


def _mostly(ok: np.ndarray, rough: np.ndarray, signal: np.ndarray, fitted: int) -> bool:
    """A hypothesis with ``fitted`` free numbers explains the probes, and more probes than it fitted.

    Over-determination: at least ``max(2, fitted + 1)`` clean probes that carry
    signal must agree, so no claim rests on the numbers it was fitted to.
    A probe whose step straddled a kink and whose analytic value was wrong
    anyway keeps a kink-spoiled numeric value: such probes neither support
    nor contradict, and beyond them one outlier in seven (or 10% of many)
    must not hide a clean sign, factor or transpose.
    """
    clean = ~rough
    n = int(np.sum(clean))
    bad = int(np.sum(~ok & clean))
    support = int(np.sum(ok & clean & signal))
    return support >= max(2, fitted + 1) and (bad == 0 or (n >= 7 and bad <= max(1, int(0.1 * n))))


def _rough(m: Measurements, use: np.ndarray) -> np.ndarray:
    # Kink-spoiled values only. A probe the budget left unconfirmed still holds a
    # measured value: it counts, for and against, like any other.
    rough = m.rough if m.rough is not None else np.zeros(len(use), bool)
    return rough[use]


def _signal(g: np.ndarray, m: Measurements, use: np.ndarray) -> np.ndarray:
    # A probe supports a hypothesis only if it reads clearly more than its tolerance: 0 == 0 says nothing.
    return (np.abs(m.numeric) > 2 * tolerance(g, m, predict(g, m)))[use]


def fits(g: np.ndarray, m: Measurements) -> bool:
    """``g`` explains the usable probes (all, or all but a kink-spoiled few), and enough of them to count."""
    use = m.usable
    return bool(use.any()) and _mostly(agrees(g, m, use), _rough(m, use), _signal(g, m, use), 0)


def scale_fit(g: np.ndarray, m: Measurements, mask: np.ndarray | None = None) -> float | None:
    """The factor c with g ~ c * numeric on the probes that carry signal, if a single c explains them."""
    use = m.usable if mask is None else (m.usable & mask)
    pred, num = predict(g, m)[use], m.numeric[use]
    floor = tolerance(g, m, predict(g, m))[use]
    signal = np.abs(num) > 2 * floor
    if signal.sum() < 1 or not np.all(np.isfinite(pred)):
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        # The median ratio resists an outlier; least squares then refines it on the probes that agree.
        ratios = pred[signal] / num[signal]
    c = float(np.median(ratios))
    if not np.isfinite(c) or c == 0:
        return None
    inliers = np.abs(ratios - c) <= 0.05 * abs(c)
    if not inliers.any():
        return None
    pi, ni = pred[signal][inliers], num[signal][inliers]
    unit = float(np.max(np.abs(ni)))  # scaled first: losses of 1e200 must not overflow the dot products
    c = float(np.dot(pi / unit, ni / unit) / np.dot(ni / unit, ni / unit))
    if not np.isfinite(c) or c == 0:
        return None
    mc = scaled(m, c)
    return _round_factor(c) if _mostly(agrees(g, mc, use), _rough(m, use), _signal(g, mc, use), 1) else None


def scaled(m: Measurements, c: float) -> Measurements:
    """The measurements of c times the numeric gradient: "g fits them" is "g / c fits m", without an
    array of the parameter's size (numerics, noise and atol scale with c, rtol does not)."""
    k = abs(c)
    return dataclasses.replace(m, coord_numeric=c * m.coord_numeric, dir_numeric=c * m.dir_numeric,
                               coord_base=k * m.coord_base, dir_base=k * m.dir_base, atol=k * m.atol)


def safe_norm(v: np.ndarray) -> float:
    """The Euclidean norm without overflow or underflow (gradients of 1e200 or 1e-200)."""
    v = np.asarray(v)
    if v.dtype != np.float64 and v.size <= 1 << 13:
        v = v.astype(np.float64)
    quick = float(np.linalg.norm(v))  # no temporary for a 1-d float64 (or float32) array
    if 1e-150 < quick < 1e150:
        return quick
    top = float(np.max(np.abs(v), initial=0.0))
    if top == 0 or not math.isfinite(top):
        return top
    return top * float(np.linalg.norm(v.astype(np.float64) / top))


def _round_factor(c: float) -> float:
    # Six significant digits: 32.000000417 is reported (and compared) as 32.0.
    return float(f"{c:.6g}")


def _near_int(x: float, rel: float = 2e-3) -> int | None:
    k = round(x)
    return k if k >= 2 and abs(x - k) <= rel * k else None


@dataclass(frozen=True)
class Dim:
    """A size seen in the user's data or parameters, to name the cause of a scale factor."""

    label: str  # e.g. "X.shape[1]"
    size: int
    data: bool  # from the data the loss reads (a batch size is likeliest there), not a parameter


def explain_factor(factor: float, dims: list[Dim], rel: float = 2e-3) -> str:
    """Plain words for analytic / numeric = factor: how far off, and the likely cause.

    ``rel`` is how close to an integer (or its inverse) the factor must be to
    be read as that integer: float32 estimates are good to a few 0.1%.
    """
    mag = abs(factor)
    big = mag > 1
    k_float = mag if big else 1 / mag
    k = _near_int(k_float, rel)
    how = f"{_fmt_num(k if k is not None else k_float)} times too {'large' if big else 'small'}"
    if factor < 0:
        how = "of the opposite sign and " + how
    if k is None:
        return f"{how} (analytic / numeric = {_fmt_num(factor)})."
    causes = []
    if k == 2:
        causes.append(
            "the 2 of a squared loss: d/da (a - y)^2 = 2(a - y); the loss and the gradient disagree about a 1/2"
            if big
            else "the 2 of a squared loss is missing: d/da (a - y)^2 = 2(a - y), or the loss lost its 1/2"
        )
    named = [d for d in dims if d.size == k]
    named.sort(key=lambda d: not d.data)
    if named:
        label = " = ".join(d.label for d in named[:3])
        if named[0].data:
            causes.append(
                f"{k} is {label}, likely the batch size m: "
                + ("a missing 1/m" if big else "an extra 1/m (divided by m twice?)")
            )
        else:
            causes.append(
                f"{k} is {label} (a number of units or classes): "
                + ("a sum where the loss averages over them?" if big else "an average where the loss sums?")
            )
    if not causes:
        causes.append(f"no dimension of the data or parameters is {k}")
    return f"{how} (analytic / numeric = {_fmt_num(factor)}): " + "; ".join(causes) + "."


def _fmt_num(x: float) -> str:
    if x == round(x) and abs(x) < 1e6:
        return str(int(round(x)))
    return f"{x:.4g}"


def fmt_shape(shape: tuple | None) -> str:
    if shape is None:
        return "-"
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def reconciliations(g: np.ndarray, shape: tuple, gname: str) -> list[tuple[str, np.ndarray, str, int | None]]:
    """Candidate ways to bring a gradient of the wrong shape to the parameter's shape.

    Each is (code, array in ``shape``, kind, axis reduced): a transpose first (a swapped
    matmul is the common slip), then sums and means over one axis (the batch
    left in), then a plain reshape (a dropped or extra axis of length 1).
    """
    out: list[tuple[str, np.ndarray, str, int | None]] = []
    size = int(np.prod(shape))
    if g.ndim == 2 and g.shape[::-1] == tuple(shape):
        out.append((f"{gname}.T", g.T, "transpose", None))
    for axis in range(g.ndim):
        for how in ("sum", "mean"):
            reduced = getattr(g, how)(axis=axis, keepdims=True)
            if reduced.size != size:
                continue
            keep = reduced.shape == tuple(shape)
            code = f"np.{how}({gname}, axis={axis}, keepdims=True)" if keep else f"np.{how}({gname}, axis={axis}).reshape{fmt_shape(tuple(shape))}"
            out.append((code, reduced.reshape(shape), how, axis))
    if g.size == size:
        out.append((f"{gname}.reshape{fmt_shape(tuple(shape))}", g.reshape(shape), "reshape", None))
    return out


@dataclass(frozen=True)
class GradDiagnosis:
    """A row's diagnosis: kind (ok, sign, scale, transpose, shape, zero, partial, unknown; swapped, set by the
    fix search when exchanging two gradients makes both pass), factor = analytic / numeric, text."""

    kind: str
    factor: float | None
    text: str


def diagnose_shape(name: str, gname: str, shape: tuple, g: np.ndarray | None, m: Measurements | None,
                   dims: list[Dim], gcode: str | None = None) -> GradDiagnosis:
    """The analytic gradient is missing or has the wrong shape: say which reshape/reduction fixes it.

    ``gname`` names the gradient in prose, ``gcode`` in the code of a fix.
    """
    gcode = gcode or gname
    if g is None:
        return GradDiagnosis("shape", None, f"grads has no entry for {name} (expected an array of shape {fmt_shape(shape)}).")
    head = f"{gname} has shape {fmt_shape(g.shape)} but {name} has shape {fmt_shape(shape)}"
    if m is None or not m.usable.any():
        return GradDiagnosis("shape", None, head + ".")
    batch_axes: dict[int, Dim] = {}
    for d in dims:
        if d.data:
            batch_axes.setdefault(d.size, d)
    for code, cand, how, axis in reconciliations(np.asarray(g, dtype=np.float64), shape, gcode):
        exact = fits(cand, m)
        factor = None if exact else scale_fit(cand, m)
        if not exact and factor is None:
            continue
        result = f"{code} has shape {fmt_shape(tuple(shape))} and matches the numeric gradient"
        if factor is not None:
            result += f" up to a factor {_fmt_num(factor)} ({explain_factor(factor, dims).rstrip('.')})"
        if how == "transpose":
            return GradDiagnosis("transpose", factor, f"{head}: it is transposed; {result}.")
        if how in ("sum", "mean"):
            n = g.shape[axis]
            who = f": {n} is {batch_axes[n].label}" if n in batch_axes else ""
            cause = (f"you forgot to sum over the batch (axis {axis} has {n} entries, one per example{who})"
                     if how == "sum" else
                     f"you forgot to average over the batch (axis {axis} has {n} entries{who}): sum over it and divide by m")
            verb = "summing" if how == "sum" else "averaging"
            return GradDiagnosis("shape", factor, f"{head}: {verb} it over axis {axis} — {result}: {cause}.")
        return GradDiagnosis("shape", factor,
                             f"{head}: {result}: the values are right, only the shape is not "
                             f"(an update {name} -= lr * {gcode} would broadcast or fail).")
    return GradDiagnosis("shape", None, head + "; no transpose, sum, mean or reshape of it matches the numeric gradient.")


def _index_list(idx: list, limit: int = 6) -> str:
    shown = ", ".join(str(i) for i in idx[:limit])
    return shown + (f", ... ({len(idx)} in all)" if len(idx) > limit else "")


def diagnose_values(name: str, gname: str, g: np.ndarray, m: Measurements, dims: list[Dim],
                    gcode: str | None = None) -> GradDiagnosis:
    """The shapes agree but some probes do not: find the pattern (sign, scale, transpose, zero, part, unknown)."""
    gcode = gcode or gname
    if not np.all(np.isfinite(g)):
        bad = np.argwhere(~np.isfinite(np.asarray(g).reshape(m.shape)))
        return GradDiagnosis("unknown", None,
                             f"{gname} contains nan or inf at {len(bad)} entries (first at {tuple(int(i) for i in bad[0])}): "
                             "look for a log(0), a division by zero or an overflow in the backward pass.")
    if m.independent:
        return GradDiagnosis("unknown", None,
                             f"the loss did not change at all when {name} was perturbed, yet {gname} is not zero: "
                             "does loss use the params it is given (not global arrays or a copy made earlier)?")
    numeric = m.numeric[m.usable]
    if not np.any(g):
        return GradDiagnosis("zero", 0.0,
                             f"{gname} is all zeros but the numeric gradient is not (largest |numeric| {np.max(np.abs(numeric)):.3g}): "
                             "is it ever assigned, or computed from an array that is zero (a mask that is all False, "
                             "a gradient taken before the forward pass)?")
    c = -1.0 if fits(g, scaled(m, -1.0)) else scale_fit(g, m)
    unit = max(1e-3, FIT_SLACK * m.rtol)  # how close to -1 or 1 a fitted factor counts as exactly that
    if c is not None and abs(c + 1) <= unit:
        return GradDiagnosis("sign", -1.0,
                             f"opposite sign: {gname} is the negative of the numeric gradient (analytic / numeric = -1): "
                             "a flipped subtraction (y - a instead of a - y) or a sign dropped on the way back.")
    if c is not None and abs(c - 1) > unit:
        return GradDiagnosis("scale", c, f"{gname} is {explain_factor(c, dims, unit)}")
    if g.ndim == 2 and g.shape[0] == g.shape[1]:
        if fits(g.T, m):
            return GradDiagnosis("transpose", None,
                                 f"{gname} is transposed: {gcode}.T matches the numeric gradient "
                                 "(the two factors of a matmul swapped, e.g. dZ @ A.T instead of A.T @ dZ).")
        ct = scale_fit(g.T, m)
        if ct is not None:
            return GradDiagnosis("transpose", ct, f"{gname} is transposed and {explain_factor(ct, dims, unit)}")
    part = _partial(name, gname, g, m, dims)
    if part is not None:
        return part
    use = m.usable
    pred = predict(g, m)[use]
    if len(pred) == 1:
        # One number fits any pattern: say what it is, claim nothing.
        ratio = f" (analytic / numeric = {_fmt_num(pred[0] / numeric[0])})" if numeric[0] else ""
        return GradDiagnosis("unknown", None,
                             f"analytic {pred[0]:.4g} vs numeric {numeric[0]:.4g}{ratio}: a single probe cannot tell "
                             "a sign or a factor from any other error; look at the lines that compute it.")
    denom = safe_norm(pred) * safe_norm(numeric)
    cos = float(np.dot(pred / safe_norm(pred), numeric / safe_norm(numeric))) if denom > 0 else float("nan")
    hint = (" Roughly the right direction: a wrong factor inside the chain that produces it (an activation's "
            "derivative taken of the wrong array, a missing term)?" if cos > 0.5 else
            " Barely related: a wrong array or derivative in the chain that produces it (an activation's derivative "
            "taken of the wrong array?), or not the gradient of this loss at all.")
    return GradDiagnosis("unknown", None,
                         f"no simple pattern (not a sign, a factor, a transpose, nor only some rows): "
                         f"cosine similarity of analytic and numeric {cos:.2f}.{hint}")


def _partial(name: str, gname: str, g: np.ndarray, m: Measurements, dims: list[Dim]) -> GradDiagnosis | None:
    """Wrong only in some entries, rows or columns (needs coordinate probes)."""
    nc = len(m.coords)
    if nc == 0:
        return None
    v = m.coord_verdict
    bad = (v == WRONG) | (v == UNCONFIRMED)
    if not bad.any():
        return None
    # A right entry counts only if it carries signal: 0 == 0 says nothing.
    good = (v == OK) & (np.abs(m.coord_numeric) > 2 * (m.coord_base + m.atol))
    if not good.any() and not m.full:
        return None
    shape = m.shape
    idx = [tuple(int(i) for i in np.unravel_index(f, shape)) for f in m.coords[bad]]
    if not m.full:
        return GradDiagnosis("partial", None,
                             f"only some entries are wrong: wrong at {_index_list(idx, 4)}, right at "
                             f"{_index_list([tuple(int(i) for i in np.unravel_index(f, shape)) for f in m.coords[good]], 3)} "
                             "(sampled entries only: mode='full' shows which rows or columns).")
    sub_mask = np.zeros(nc + len(m.dirs), bool)
    sub_mask[:nc] = bad
    sub = scale_fit(g, m, sub_mask)
    there = ""
    if sub is not None:
        there = " (there the analytic is the negative of the numeric)" if abs(sub + 1) <= max(1e-3, FIT_SLACK * m.rtol) else \
            f" (there analytic / numeric = {_fmt_num(sub)})"
    zero_there = not np.any(g.reshape(-1)[m.coords[bad]])
    if zero_there:
        there = " (there the analytic gradient is zero)"
    if len(shape) >= 2:
        rows = sorted({i[0] for i in idx})
        cols = sorted({i[-1] for i in idx})
        row_frac, col_frac = len(rows) / shape[0], len(cols) / shape[-1]
        if min(row_frac, col_frac) < 1:
            if row_frac <= col_frac:
                what = f"row{'s' if len(rows) > 1 else ''} {_index_list(rows)} of {shape[0]}"
            else:
                what = f"column{'s' if len(cols) > 1 else ''} {_index_list(cols)} of {shape[-1]}"
            return GradDiagnosis("partial", sub if sub is not None else (0.0 if zero_there else None),
                                 f"wrong only in {what}{there}; the other entries match: "
                                 "an index or slice off by one, or one case of a loop handled differently?")
        return None
    if len(idx) < m.coords.size:
        return GradDiagnosis("partial", sub if sub is not None else (0.0 if zero_there else None),
                             f"wrong only at entr{'ies' if len(idx) > 1 else 'y'} {_index_list([i[0] if len(i) == 1 else i for i in idx])} "
                             f"of {int(np.prod(shape))}{there}; the others match.")
    return None


@dataclass(frozen=True)
class Overall:
    """The report-level reading: what is wrong as a whole and where to look first."""

    kind: str  # ok | sign | scale | wrong | unsure | random | error
    factor: float | None
    text: str
    look_first: str | None


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def overall(rows: list[tuple[str, str, str, float | None]], problem: str | None = None,
            problem_kind: str = "error") -> Overall:
    """Read the rows together. ``rows`` are (name, status, kind, factor) in the order given.

    "Closest to the output" is the last wrong parameter in the order given:
    params are conventionally listed input to output (W1, b1, W2, b2), and an
    error there also spoils every gradient computed from it on the way back.
    """
    if problem is not None:
        return Overall(problem_kind, None, problem, None)
    failing = [r for r in rows if r[1] in ("wrong", "shape")]
    skipped = [r for r in rows if r[1] == "skipped"]
    unsure = [r[0] for r in rows if r[1] == "unsure"]
    unsettled = (f"Not settled: {', '.join(unsure)}: some probes disagreed and the budget ran out before re-checks "
                 f"could tell a real error from finite-difference error; mode='full' settles it.") if unsure else ""
    if not failing:
        if skipped:
            return Overall("error", None, f"not checked: {', '.join(r[0] for r in skipped)} (see the rows).", None)
        if unsure:
            return Overall("unsure", None, unsettled, None)
        return Overall("ok", None, "The analytic gradients match finite differences.", None)
    names = [r[0] for r in failing]
    last = failing[-1][0]
    if len(failing) == len(rows) and len(rows) > 1:
        kinds = {r[2] for r in failing}
        factors = [r[3] for r in failing]
        if kinds == {"sign"}:
            return Overall("sign", -1.0,
                           "Every gradient has the opposite sign: the loss and the gradients disagree as a whole. "
                           "A sign slip in the loss (returning -cost, a log-likelihood instead of its negative) or in "
                           "the first backward step (dZ = y - a instead of a - y) is likelier than one in every gradient.",
                           last)
        if kinds == {"scale"} and all(f is not None for f in factors) and \
                max(factors) <= min(factors) * 1.01 and min(factors) > 0:
            f = factors[-1]
            return Overall("scale", f,
                           f"Every gradient is off by the same factor {_fmt_num(f)}: the loss and the gradients disagree "
                           "as a whole about a normalisation. Compare the loss's 1/m (or 1/2) with the one in the first "
                           "backward step (dZ at the output) rather than fixing each gradient.",
                           last)
    if len(failing) >= 2 and {r[2] for r in failing} == {"swapped"}:
        return Overall("swapped", None,
                       f"{_and(names)} are returned under each other's names: exchanged, each matches the numeric "
                       "gradient. Only the statement that binds them to their names is wrong.", last)
    names_all = [r[0] for r in rows]
    ok_after = [r[0] for r in rows[names_all.index(last) + 1:] if r[1] in ("ok", "kink")]
    if len(failing) == 1 and not unsure:
        text = f"Only {last} is wrong; the other gradients match, so the mistake is in the lines that compute its gradient."
        return Overall("wrong", None, text, last)
    if len(failing) == 1:
        return Overall("wrong", None, f"Wrong: {last}. " + unsettled, last)
    text = (f"Wrong: {', '.join(names)}. Look first at {last}, the wrong parameter closest to the output "
            "(params are read as listed, input to output): an error there also spoils every gradient computed "
            "from it on the way back.")
    if ok_after:
        text += (f" The gradients after it ({', '.join(ok_after)}) are right, so the mistake enters at the "
                 f"backward step that produces the gradient of {last}.")
    if unsure:
        text += " " + unsettled
    return Overall("wrong", None, text, last)
