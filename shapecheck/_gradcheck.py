"""The gradient check: finite differences against hand-written gradients, with a diagnosis.

The engine evaluates the user's loss on a private copy of the parameters
(so the user's arrays stay bit-identical whatever happens), takes central
differences along probes (entries or random directions) chosen by the mode,
re-checks disagreements with smaller steps before believing them (the worst
first, each until it is settled), and hands the measurements to the pure
functions of ``_graddiag``.

Observers: every finished ``GradReport`` made by ``gradcheck`` or
``assert_gradients_close`` (before it raises) is passed to each callable in
``_LISTENERS`` (a plain list; append to subscribe, remove to stop). A
listener that raises is ignored, so an observer (the pytest plugin's summary)
can never break the user's check.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import functools
import inspect
import math
import numbers
import random
import types
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np

from . import _gradfix, _gradtree
from ._errors import UsageError
from ._graddiag import (
    KINK,
    NONFINITE,
    OK,
    UNCONFIRMED,
    WRONG,
    Dim,
    DirSet,
    GradDiagnosis,
    Measurements,
    diagnose_shape,
    FIT_SLACK,
    diagnose_values,
    fits,
    scale_fit,
    dir_allowance,
    overall,
    predict,
    safe_norm,
    tolerance,
)
from ._gradreport import GradReport, GradRow
from ._gradtree import ParameterTypeError
from ._runner import display_path

# auto: at most this many loss evaluations per parameter tensor, rechecks included.
AUTO_BUDGET = 40
# auto checks tensors this small entry by entry (2 evaluations each, 2 left per recheck).
AUTO_FULL_MAX = 10
AUTO_DIRECTIONS = 3  # the first along the analytic gradient, the others random
AUTO_COORDS = 4  # the largest |analytic| entry and three more, weighted towards large entries
SAMPLE_DEFAULT = 10
# A disagreement is re-checked at s/2, s/8, s/32 (2 evaluations each) until the numbers settle.
RECHECK_LEVELS = 3
SCALES = (0.5, 0.125, 1 / 32)
# A re-check may clear a disagreement within this part of it (or twice the first noise), not within any wider noise band.
INFORMATIVE = 1 / 3
# auto stops re-checking a row once this many probes are confirmed wrong on a smooth loss.
ENOUGH_CONFIRMED = 2
# Relative disagreement confirmed by one re-check: a sign (2), a factor of 2 or more (0.5), a zero (1).
GROSS = 0.45
DIRECTIONS_DEFAULT = 8
# Round-off in one loss value is taken as NOISE_FACTOR * eps * |loss|: summing a
# batch and going through exp/log costs a few ulps more than one rounding.
NOISE_FACTOR = 4
# Without atol, entries below this fraction of the tensor's largest gradient (times rtol) are not judged.
FLOOR_FRACTION = 1e-3

__all__ = ["gradcheck", "assert_gradients_close", "gradcheck_from_namespace", "GradReport", "GradRow",
           "GradInputError"]

# Called with every finished GradReport (see the module docstring).
_LISTENERS: list[Callable[[GradReport], None]] = []


class GradInputError(TypeError, ValueError):
    """The functions or values given to gradcheck cannot be checked (a vector or complex loss, a loss
    that writes into its parameters, no parameters, a step that rounds to zero). One line, no traceback
    of shapecheck's own; a TypeError and a ValueError, as the checks it replaces raised either."""


def one_line(exc: BaseException, own: bool) -> str:
    """One line for a check that could not run: gradcheck's own reason, or what the user's function raised, and where."""
    try:
        text = str(exc)
    except Exception:
        text = "<exception str() failed>"
    text = text.strip().splitlines()[0] if text.strip() else ""
    if own:
        return text.removeprefix("gradcheck: ")
    try:
        notes = [n for n in exc.__notes__ if isinstance(n, str) and n.startswith("shapecheck.gradcheck: raised by ")]
    except Exception:
        notes = []
    where = (notes[0].removeprefix("shapecheck.gradcheck: ").split("; your parameters")[0] if notes
             else "raised during the gradient check")
    return f"{where}: {type(exc).__name__}" + (f": {text}" if text else "")


def _notify(report: GradReport) -> None:
    for listener in list(_LISTENERS):
        try:
            listener(report)
        except Exception:  # an observer must never break the user's check
            pass


@dataclass(frozen=True)
class _Plan:
    name: str
    coords: int | None  # entries per tensor; None: all of them
    dirs: int
    budget: int | None  # loss evaluations per tensor; None: unbounded


def _plan(mode: str) -> _Plan:
    name, _, count = str(mode).partition(":")
    try:
        k = int(count) if count else None
    except ValueError:
        k = 0
    if name not in ("auto", "full", "sample", "directions") or (k is not None and k < 1) or (k and name in ("auto", "full")):
        raise ValueError(
            f"mode={mode!r}: use 'auto', 'full', 'sample' or 'directions' ('sample:K' / 'directions:K' set K)"
        )
    if name == "full":
        return _Plan("full", None, 0, None)
    if name == "sample":
        return _Plan(str(mode), k or SAMPLE_DEFAULT, 0, None)
    if name == "directions":
        return _Plan(str(mode), 0, k or DIRECTIONS_DEFAULT, None)
    return _Plan("auto", AUTO_COORDS, AUTO_DIRECTIONS, AUTO_BUDGET)


def _note(exc: BaseException, text: str) -> None:
    # Once per exception, even when gradchecks nest (a loss that runs its own check).
    if getattr(exc, "_shapecheck_gradcheck_noted", False):
        return
    exc.add_note(text)
    with contextlib.suppress(Exception):
        exc._shapecheck_gradcheck_noted = True  # type: ignore[attr-defined]


def _scalar(value: Any, who: str) -> tuple[float, np.dtype | None]:
    """A loss value as a float, and its dtype when numpy says it (float32 losses get float32 tolerances)."""
    if isinstance(value, (bool, np.bool_)):
        raise GradInputError(f"{who} returned a bool; it must return the loss, a float")
    if isinstance(value, (float, int)):
        return float(value), None
    if isinstance(value, complex):
        raise GradInputError(f"{who} returned a complex number ({value!r}); it must return a real loss")
    try:
        arr = np.asarray(value)
    except Exception:
        raise GradInputError(f"{who} returned a {type(value).__name__}, not a number") from None
    if arr.size != 1:
        raise GradInputError(
            f"{who} must return a scalar loss, got an array of shape {arr.shape}: reduce it over the batch (np.mean or np.sum)"
        )
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise GradInputError(f"{who} must return a real scalar loss, got dtype {arr.dtype}")
    return float(arr.reshape(())), arr.dtype if np.issubdtype(arr.dtype, np.floating) else None


class _Evaluator:
    """Calls the user's functions on a private copy of the parameters and counts loss evaluations.

    The user's arrays are only read (as the unperturbed values to restore and
    to compare with); the loss and grads see the copy, under the numpy error
    settings the user had (shapecheck's own arithmetic runs with them off).
    """

    def __init__(self, loss: Callable, grads: Callable | None, combined: bool, params: Any,
                 leaves: list[_gradtree.Leaf], user_err: dict):
        self.loss, self.grads, self.combined = loss, grads, combined
        self.user_err = user_err
        self.work, self.arrays = _gradtree.private_copy(params)
        self.flat = [a.reshape(-1) for a in self.arrays]
        # Flat read-only views of the user's own arrays (a copy only when not contiguous).
        self.pristine = [np.asarray(leaf.value).reshape(-1) for leaf in leaves]
        self.scalar = [leaf.scalar for leaf in leaves]
        self.names = [leaf.name for leaf in leaves]
        self.count = 0
        self.last_dtype: np.dtype | None = None
        self.who = "loss_and_grads" if combined else "loss"

    def _where(self, where: tuple | None) -> str:
        if where is None:
            return "at the parameters given (nothing perturbed)"
        i, what, step = where
        target = self.names[i]
        if isinstance(what, (int, np.integer)) and self.arrays[i].ndim:
            target += "[" + ", ".join(str(int(j)) for j in np.unravel_index(what, self.arrays[i].shape)) + "]"
        elif isinstance(what, str):
            target += f" (along random {what})"
        return f"while {target} was perturbed by {step:+.3g}"

    def call(self, where: tuple | None = None) -> tuple[float, Any]:
        """One evaluation: (loss value, raw output of the loss function)."""
        arg = _gradtree.materialise(self.work, self.scalar)
        self.count += 1
        try:
            with np.errstate(**self.user_err):
                out = self.loss(arg)
        except Exception as exc:
            _note(exc, f"shapecheck.gradcheck: raised by {self.who} {self._where(where)} "
                       f"(loss evaluation {self.count}); your parameters were not modified")
            raise
        value = out
        if self.combined:
            if not isinstance(out, (tuple, list)) or len(out) != 2:
                raise GradInputError(f"loss_and_grads must return (loss, grads), got {type(out).__name__}")
            value = out[0]
        v, self.last_dtype = _scalar(value, self.who)
        return v, out

    def value(self, where: tuple | None = None) -> float:
        return self.call(where)[0]

    def analytic(self) -> Any:
        """The user's gradient structure at the unperturbed parameters (called once or twice)."""
        arg = _gradtree.materialise(self.work, self.scalar)
        try:
            with np.errstate(**self.user_err):
                return self.grads(arg)
        except Exception as exc:
            _note(exc, "shapecheck.gradcheck: raised by grads at the parameters given (nothing perturbed); "
                       "your parameters were not modified")
            raise

    def modified(self) -> list[str]:
        """Names of parameters the user's functions changed in place (on our copy)."""
        return [self.names[i] for i, (f, p) in enumerate(zip(self.flat, self.pristine)) if not _equal(f, p)]

    def restore(self, i: int) -> None:
        self.flat[i][...] = self.pristine[i]


@contextlib.contextmanager
def _global_rng_preserved() -> Iterator[None]:
    # A loss with dropout draws from the global generators; restoring them makes
    # the check invisible to the rest of the user's program (training after it
    # runs exactly as without it).
    np_state = np.random.get_state()
    py_state = random.getstate()
    try:
        yield
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)


def _same(a: float, b: float, eps: float) -> bool:
    return a == b or abs(a - b) <= 4 * eps * max(abs(a), abs(b))


def _equal(a: np.ndarray, b: np.ndarray) -> bool:
    # Chunked: np.array_equal(equal_nan=True) copies both arrays through boolean masks.
    return all(np.array_equal(a[lo:lo + _CHUNK], b[lo:lo + _CHUNK], equal_nan=True)
               for lo in range(0, a.size, _CHUNK))


def _absmax(x: np.ndarray) -> float:
    # The largest finite |x|, in chunks (no temporary of x's size).
    return max((float(np.max(np.abs(c), initial=0.0, where=np.isfinite(c)))
                for c in (x[lo:lo + _CHUNK] for lo in range(0, x.size, _CHUNK))), default=0.0)


def _same_grads(a: list, b: list) -> bool:
    for x, y in zip(a, b):
        if (x is None) != (y is None):
            return False
        if x is None:
            continue
        if x.shape != y.shape:
            return False
        xf, yf = x.reshape(-1), y.reshape(-1)
        scale = _absmax(xf)
        atol = 64 * np.finfo(np.float64).eps * scale + 1e-300
        # In chunks: the temporaries stay small next to the gradients themselves.
        for lo in range(0, xf.size, _CHUNK):
            if not np.allclose(xf[lo:lo + _CHUNK], yf[lo:lo + _CHUNK], rtol=0, atol=atol, equal_nan=True):
                return False
    return True


_CHUNK = 1 << 13


def _as_grad(value: Any, name: str, work: list[np.ndarray], keep: bool) -> np.ndarray | None:
    if value is None:
        return None
    if np.iscomplexobj(value):
        raise GradInputError(f"the gradient for {name} is complex: gradcheck compares real gradients only "
                             "(a complex value would lose its imaginary part)")
    try:
        g = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise GradInputError(f"the gradient for {name} is {type(value).__name__}, not an array of numbers") from None
    # A gradient that is (a view of) a parameter would move with every perturbation, and a buffer that
    # loss_and_grads overwrites on every call (``keep``) would too: hold a copy.
    if keep or any(np.may_share_memory(g, a) for a in work):
        g = g.copy()
    return g


def _instance_dict(obj: Any) -> dict:
    # object.__getattribute__ finds __dict__ without running the object's own
    # __getattr__/__getattribute__: reading the user's objects must never run their code.
    try:
        d = object.__getattribute__(obj, "__dict__")
    except Exception:
        return {}
    return d if type(d) is dict else {}


def _context_dims(funcs: list[Any], leaves: list[_gradtree.Leaf]) -> list[Dim]:
    """Sizes the loss can see (its data: X.shape[1] is likely the batch) and the parameters' own.

    Read-only: globals and closure cells the functions name, one call level
    deep, attributes of a bound method's instance. Nothing of the user's is
    called: only numpy arrays and pandas objects are asked their shape, and
    other objects are read through their instance dict.
    """
    param_ids = {id(leaf.value) for leaf in leaves}
    dims: list[Dim] = []
    seen_labels: set[str] = set()

    def add(label: str, obj: Any) -> None:
        if id(obj) in param_ids or label in seen_labels:
            return
        if isinstance(obj, np.ndarray):
            shape = obj.shape
        elif (type(obj).__module__ or "").startswith("pandas"):
            try:
                shape = obj.shape
            except Exception:
                return
        else:
            return
        if not isinstance(shape, tuple):
            return
        seen_labels.add(label)
        for ax, n in enumerate(shape):
            if isinstance(n, int) and n > 1:
                dims.append(Dim(f"{label}.shape[{ax}]", n, True))

    visited: set[int] = set()

    def visit(f: Any, depth: int) -> None:
        if f is None or id(f) in visited or depth > 2:
            return
        visited.add(id(f))
        if isinstance(f, functools.partial):
            for j, a in enumerate(f.args):
                add(f"args[{j}]", a)
            for k, a in (f.keywords or {}).items():
                add(k, a)
            visit(f.func, depth)
            return
        if isinstance(f, types.MethodType):
            for k, a in _instance_dict(f.__self__).items():
                add(f"self.{k}", a)
            f = f.__func__
        if not isinstance(f, types.FunctionType):
            # A callable object: its own attributes, then its class's __call__.
            for k, a in _instance_dict(f).items():
                add(f"self.{k}", a)
            call = inspect.getattr_static(type(f), "__call__", None)
            if isinstance(call, types.FunctionType):
                visit(call, depth)
            return
        code, g = f.__code__, f.__globals__
        for name in code.co_names:
            obj = g.get(name) if type(g) is dict else None
            add(name, obj)
            if isinstance(obj, types.FunctionType):
                visit(obj, depth + 1)
        for name, cell in zip(code.co_freevars, f.__closure__ or ()):
            with contextlib.suppress(ValueError):
                obj = cell.cell_contents
                add(name, obj)
                if isinstance(obj, (types.FunctionType, types.MethodType, functools.partial)):
                    visit(obj, depth + 1)

    for f in funcs:
        visit(f, 0)
    # The input is the likeliest place to read the batch size from: X before Y, cache, ...
    dims.sort(key=lambda d: not d.label.lower().startswith("x"))
    for leaf in leaves:
        for ax, n in enumerate(np.shape(leaf.value)):
            if n > 1:
                dims.append(Dim(f"{leaf.name}.shape[{ax}]", int(n), False))
    return dims


class _LeafCheck:
    """The numerics for one parameter: probes, steps, tolerances, rechecks."""

    def __init__(self, ev: _Evaluator, i: int, g: np.ndarray | None, plan: _Plan, eps: float | None,
                 rtol: float | None, atol: float | None, eps_loss: float, loss0: float, seed: int):
        self.ev, self.i, self.g, self.plan = ev, i, g, plan
        self.seed = seed
        self.rng = np.random.default_rng([seed, i])
        self.dtype = ev.arrays[i].dtype
        # A view of the user's array in its own dtype: no copy (float64 arithmetic happens per operation).
        self.x = ev.pristine[i]
        self.shape = ev.arrays[i].shape
        self.n = self.x.size
        finfo = np.finfo(self.dtype)
        # Central differences: truncation ~ h^2, round-off ~ eps/h; h ~ eps^(1/3) balances them.
        self.rel_step = eps if eps is not None else float(finfo.eps) ** (1 / 3)
        self.rtol = rtol if rtol is not None else max(1e-5, 0.25 * float(finfo.eps) ** (1 / 3))
        self.atol_user = atol
        self.eps_loss = eps_loss
        self.loss0 = loss0
        self.start = ev.count
        rms = safe_norm(self.x) / math.sqrt(self.n) if self.n else 0.0
        self.t1 = self.rel_step * max(1.0, rms)
        self.along_g = False

    def spent(self) -> int:
        return self.ev.count - self.start

    def _noise(self, lmag: np.ndarray | float, half: np.ndarray | float) -> np.ndarray:
        return NOISE_FACTOR * self.eps_loss * np.asarray(lmag) / np.asarray(half)

    def _usable_g(self) -> bool:
        g = self.g
        return g is not None and g.shape == self.shape and bool(np.all(np.isfinite(g))) and bool(np.any(g))

    # Probes -----------------------------------------------------------------

    def choose(self) -> tuple[np.ndarray, int]:
        """Flat indices of the entries to compare and how many directions."""
        n, plan = self.n, self.plan
        if plan.coords is None or (plan.name == "auto" and n <= AUTO_FULL_MAX):
            return np.arange(n), 0
        if plan.name.startswith("sample"):
            return np.sort(self.rng.choice(n, size=min(plan.coords, n), replace=False)), 0
        if plan.coords == 0:
            return np.zeros(0, np.int64), plan.dirs
        # auto on a large tensor: the largest |analytic| entry (where a sign or
        # scale error is largest), then entries weighted towards large ones.
        k = min(plan.coords, n)
        if self._usable_g():
            # In place (one array of the parameter's size): |g| + mean|g|, cumulated, sampled by bisection.
            w = np.abs(self.g.reshape(-1))
            first = int(np.argmax(w))
            w += w.mean()
            w[first] = 0
            np.cumsum(w, out=w)
            picks = [first]
            while len(picks) < k:
                j = int(np.searchsorted(w, self.rng.random() * w[-1], side="right"))
                j = min(j, n - 1)
                if j not in picks:
                    picks.append(j)
            del w
            picks = np.array(picks)
        else:
            picks = self.rng.choice(n, size=k, replace=False)
        return np.sort(picks.astype(np.int64)), plan.dirs

    def unit(self, j: int) -> np.ndarray:
        """The j-th unit direction as drawn (float64, fresh): along the analytic gradient first, then Gaussian."""
        if j == 0 and self.along_g:
            u = np.array(self.g.reshape(-1), dtype=np.float64)
        else:
            u = np.random.default_rng([self.seed, self.i, 1 + j]).standard_normal(self.n)
        u /= safe_norm(u)
        return u

    def _displace(self, j: int, t: float, where: str | None) -> tuple[np.ndarray, float | None, float | None]:
        """Effective direction j at step t, and L(x +- t u) when ``where`` names the evaluation.

        One array of the parameter's size besides the working copy: it holds
        t u, then the step up the dtype could make (xp - x), then xp - xm.
        The step down mirrors the step up (xm = x - (xp - x), rounded), and the
        working copy is restored before returning.
        """
        ev, i, x = self.ev, self.i, self.x
        flat = ev.flat[i]
        buf = self.unit(j)
        buf *= t
        lp = lm = None
        try:
            np.add(x, buf, out=flat, casting="unsafe")
            if where is not None:
                lp = ev.value((i, where, t))
            np.subtract(flat, x, out=buf, dtype=np.float64)
            np.subtract(x, buf, out=flat, casting="unsafe")
            if where is not None:
                lm = ev.value((i, where, -t))
            np.add(buf, x, out=buf)
            np.subtract(buf, flat, out=buf)
        finally:
            ev.restore(i)
        buf /= 2 * t
        return buf, lp, lm

    def effective(self, j: int) -> np.ndarray:
        # The effective direction as measured, rebuilt on demand (no loss evaluation).
        return self._displace(j, self.t1, None)[0]

    # Evaluations ------------------------------------------------------------

    def coord_values(self, flats: np.ndarray, scale: float) -> dict[str, np.ndarray]:
        """L(x +- h e_i) for each entry; h = scale * rel_step * max(1, |x_i|), made exact in the dtype."""
        ev, i = self.ev, self.i
        flat, orig = ev.flat[i], ev.pristine[i]
        xs = self.x[flats].astype(np.float64)
        h = scale * self.rel_step * np.maximum(1.0, np.abs(xs))
        xp = (xs + h).astype(self.dtype)
        xm = (xs - h).astype(self.dtype)
        lp = np.empty(len(flats))
        lm = np.empty(len(flats))
        try:
            for k, f in enumerate(flats):
                flat[f] = xp[k]
                lp[k] = ev.value((i, int(f), float(h[k])))
                flat[f] = xm[k]
                lm[k] = ev.value((i, int(f), -float(h[k])))
                flat[f] = orig[f]
        finally:
            ev.restore(i)
        return {"lp": lp, "lm": lm, "sp": xp.astype(np.float64) - xs, "sm": xs - xm.astype(np.float64)}

    def dir_values(self, js: list[int], scale: float) -> dict[str, np.ndarray]:
        """L(x +- t u) along directions ``js``, and the analytic value along each effective direction."""
        t = scale * self.t1
        k = len(js)
        lp, lm, a = np.empty(k), np.empty(k), np.empty(k)
        gf = None if self.g is None else self.g.reshape(-1)
        for n, j in enumerate(js):
            eff, lp[n], lm[n] = self._displace(j, t, f"direction {j}")
            a[n] = float(eff @ gf) if gf is not None else np.nan
            del eff  # before the next direction is made: one at a time
        return {"lp": lp, "lm": lm, "sp": np.full(k, t), "sm": np.full(k, t), "a": a}

    # The check ----------------------------------------------------------------

    def measure(self) -> Measurements:
        """Take every probe once, build the measurements with tolerances (no verdicts yet)."""
        flats, k = self.choose()
        self.along_g = bool(k) and self._usable_g()
        c = self.coord_values(flats, 1.0) if len(flats) else None
        d = self.dir_values(list(range(k)), 1.0) if k else None
        self.first = (c, d)
        cn = (c["lp"] - c["lm"]) / (c["sp"] + c["sm"]) if c else np.zeros(0)
        dn = (d["lp"] - d["lm"]) / (d["sp"] + d["sm"]) if d else np.zeros(0)
        cb = self._noise(np.maximum.reduce([np.abs(c["lp"]), np.abs(c["lm"]), np.full(len(flats), abs(self.loss0))]),
                         (c["sp"] + c["sm"]) / 2) if c else np.zeros(0)
        db = self._noise(np.maximum.reduce([np.abs(d["lp"]), np.abs(d["lm"]), np.full(k, abs(self.loss0))]),
                         (d["sp"] + d["sm"]) / 2) if d else np.zeros(0)
        if self.atol_user is not None:
            atol = float(self.atol_user)
        else:
            g = self.g if self.g is not None and self.g.shape == self.shape else None
            gmax = _absmax(g.reshape(-1)) if g is not None else 0.0
            cmax = float(np.max(np.abs(cn[np.isfinite(cn)]), initial=0.0))
            dmax = float(np.max(np.abs(dn[np.isfinite(dn)]), initial=0.0)) / math.sqrt(max(self.n, 1))
            atol = FLOOR_FRACTION * self.rtol * max(gmax, cmax, dmax)
        m = Measurements(
            shape=self.shape, coords=flats.astype(np.int64), coord_numeric=cn, coord_base=cb,
            dirs=DirSet(k, self.effective), dir_numeric=dn, dir_base=db,
            rtol=self.rtol, atol=atol, full=len(flats) == self.n,
        )
        verdict = np.where(np.isfinite(m.numeric), OK, NONFINITE).astype(object)
        m.coord_verdict, m.dir_verdict = verdict[: len(flats)], verdict[len(flats):]
        lps = np.concatenate([c["lp"] if c else [], d["lp"] if d else []])
        lms = np.concatenate([c["lm"] if c else [], d["lm"] if d else []])
        m.independent = bool(len(lps)) and bool(np.all(lps == self.loss0) and np.all(lms == self.loss0))
        m.noise = float(np.median(cb)) if len(cb) else (float(np.median(db)) if len(db) else 0.0)
        return m

    def judge(self, m: Measurements) -> None:
        """Compare with the analytic gradient; re-check disagreements with smaller steps before believing them.

        Depth-first, worst first: each disagreeing probe is re-checked until it
        is settled before the next one is touched, so a budget that runs out
        leaves the clearest disagreements decided, never half-checked. A probe
        the budget could not settle is UNCONFIRMED (the row is then ``unsure``,
        never ``ok``).
        """
        g = self.g
        nc = len(m.coords)
        pred = predict(g, m)
        tol = tolerance(g, m, pred)
        verdicts = m.verdicts
        bad = (np.abs(pred - m.numeric) > tol) & (verdicts == OK)
        bad |= ~np.isfinite(pred) & (verdicts == OK)
        order = np.flatnonzero(bad)
        order = order[np.argsort(-(np.abs(pred - m.numeric)[order] / np.maximum(tol[order], 1e-300)), kind="stable")]
        rough = np.zeros(len(verdicts), bool)
        gf = np.asarray(g, dtype=np.float64).reshape(-1)
        dir_extra = dir_allowance(gf, m) if len(m.dirs) and bad[nc:].any() else None
        first = m.numeric.copy()
        confirmed = 0
        for p in order:
            p = int(p)
            if self.plan.budget is not None and confirmed >= ENOUGH_CONFIRMED:
                # The row is settled as wrong; the budget is not spent on what cannot change it.
                verdicts[p] = UNCONFIRMED
                continue
            if not np.isfinite(pred[p]):
                verdicts[p] = WRONG
                continue
            base = m.atol if p < nc else float(dir_extra[p - nc])
            rc = _Recheck(self, m, p, nc, base)
            verdict = None
            for level in range(RECHECK_LEVELS):
                budget = None if self.plan.budget is None else self.plan.budget - self.spent()
                if budget is not None and budget < 2:
                    break
                rc.more()
                verdict = rc.decide(final=level == RECHECK_LEVELS - 1)
                if verdict is not None:
                    break
            if verdict is None:
                verdicts[p] = UNCONFIRMED
                continue
            verdicts[p] = verdict
            self._store(m, p, nc, rc.best)
            rough[p] = verdict == WRONG and rc.rough
            confirmed += verdict == WRONG and not rc.rough
        m.coord_verdict, m.dir_verdict = verdicts[:nc], verdicts[nc:]
        m.rough = rough
        if np.any(verdicts == UNCONFIRMED) and not np.any(verdicts == WRONG):
            self._consistent(m, first, order)

    def _consistent(self, m: Measurements, first: np.ndarray, flagged: np.ndarray) -> None:
        """A disagreement shared by the probes is evidence, even where each re-check alone was unsure.

        Re-checks judge one probe at a time, and a smaller step's round-off can
        hide a small error in one probe. When one factor c != 1 explains every
        first-pass measurement (over-determined) and the gradient itself does
        not, the gradient is wrong by c: the flagged probes are wrong, measured
        by their first, most precise values.
        """
        nc = len(m.coords)
        plain = dataclasses.replace(m, coord_numeric=first[:nc].copy(), dir_numeric=first[nc:].copy(),
                                    rough=None)
        # Probes the re-checks settled (a kink, or agreement at another step) are explained:
        # they take no part; the unsettled ones and those that agreed at once do.
        v = np.where(np.isfinite(first), OK, NONFINITE).astype(object)
        settled = np.zeros(len(v), bool)
        settled[np.asarray(flagged, dtype=np.int64)] = True
        v[settled & (m.verdicts != UNCONFIRMED)] = KINK
        plain.coord_verdict, plain.dir_verdict = v[:nc], v[nc:]
        if fits(self.g, plain):
            return
        c = scale_fit(self.g, plain)
        if c is None or abs(c - 1) <= max(1e-3, FIT_SLACK * m.rtol):
            return
        verdicts = m.verdicts
        verdicts[verdicts == UNCONFIRMED] = WRONG
        m.coord_numeric, m.dir_numeric = plain.coord_numeric, plain.dir_numeric
        m.coord_verdict, m.dir_verdict = verdicts[:nc], verdicts[nc:]
        m.rough = np.zeros(len(verdicts), bool)
        self.consistent = c

    @staticmethod
    def _store(m: Measurements, p: int, nc: int, best: float | None) -> None:
        if best is None:
            return
        if p < nc:
            m.coord_numeric[p] = best
        else:
            m.dir_numeric[p - nc] = best


class _Recheck:
    """One disagreeing probe, evaluated again at steps s/2, s/8, s/32 until the numbers settle.

    At each level: the analytic value agreeing with the central difference or
    with Richardson's extrapolation of the last two means round-off or
    truncation (ok), within a noise allowance capped by the first
    measurement's noise (``cap``): smaller steps add round-off, and agreement
    within a band wider than the disagreement is no evidence. The analytic
    value being one side's first-order slope at two steps while the other
    side stays off is a kink right next to x. Otherwise the second-order
    one-sided derivatives from (0, s_k, s_k-1) on each side decide: if they
    agree, within a band narrower than the disagreement, the loss is smooth
    there and the analytic value is wrong; if they disagree a kink (ReLU, max,
    abs) is straddled: the analytic value within their spread is a kink. A
    probe no level could settle stays undecided (None), never ok.
    """

    def __init__(self, check: _LeafCheck, m: Measurements, p: int, nc: int, base: float):
        self.check, self.m, self.p, self.nc = check, m, p, nc
        c1, d1 = check.first
        self.gf = np.asarray(check.g, dtype=np.float64).reshape(-1)
        self.base = base
        if p < nc:
            first = {k: float(v[p]) for k, v in c1.items()}
            self.a0 = float(self.gf[m.coords[p]])
        else:
            j = p - nc
            first = {k: float(v[j]) for k, v in d1.items() if k != "a"}
            self.a0 = float(d1["a"][j])
        self.hist = [(first, self.a0)]
        self.levels = 0
        self.best: float | None = None
        self.rough = False  # the last level saw a kink: the numeric value is an average across it
        s1 = (first["sp"] + first["sm"]) / 2
        d = (first["lp"] - first["lm"]) / (2 * s1)
        n1 = self._e([first]) / s1
        # The disagreement beyond the user's tolerance: what a re-check must explain or confirm.
        self.gap = max(abs(self.a0 - d) - (base + m.rtol * max(abs(self.a0), abs(d))), n1, 1e-300)
        # The noise a re-check may invoke to clear the probe: at most twice what the first
        # measurement had, or a third of the disagreement. Smaller steps have more round-off,
        # and a band wider than the disagreement would "agree" with any gradient.
        self.cap = max(INFORMATIVE * self.gap, 2 * n1)

    def _e(self, pts: list[dict]) -> float:
        # Round-off of one loss value, as the first pass estimated it.
        lmag = max(abs(self.check.loss0), *(abs(h["lp"]) for h in pts), *(abs(h["lm"]) for h in pts))
        return NOISE_FACTOR * self.check.eps_loss * lmag

    def more(self) -> None:
        ck, p, nc = self.check, self.p, self.nc
        scale = SCALES[self.levels]
        if p < nc:
            r = ck.coord_values(self.m.coords[p : p + 1], scale)
            a = self.a0
        else:
            r = ck.dir_values([p - nc], scale)
            a = float(r["a"][0])
        self.hist.append(({k: float(v[0]) for k, v in r.items() if k != "a"}, a))
        self.levels += 1

    def close(self, x: float, y: float, noise: float) -> bool:
        return abs(x - y) <= self.base + self.m.rtol * max(abs(x), abs(y)) + noise

    def decide(self, final: bool) -> str | None:
        l0 = self.check.loss0
        pts = [h for h, _ in self.hist]
        a = self.hist[-1][1]
        half = [(h["sp"] + h["sm"]) / 2 for h in pts]
        central = [(h["lp"] - h["lm"]) / (2 * s) for h, s in zip(pts, half)]
        rich = [(central[i] * half[i - 1] ** 2 - central[i - 1] * half[i] ** 2) / (half[i - 1] ** 2 - half[i] ** 2)
                for i in range(1, len(pts))]
        prev, cur = pts[-2], pts[-1]
        s1, s2, d2, r2 = half[-2], half[-1], central[-1], rich[-1]
        noise = self._e(pts) / s2
        cap = self.cap
        if self.close(a, d2, min(noise, cap)):
            self.best = d2
            return OK
        if self.close(a, r2, min(2 * noise, cap)):
            self.best = r2
            return OK
        if self._one_side_matches(pts, central, a):
            self.best = d2
            return KINK
        fwd = _one_sided(l0, cur["lp"], prev["lp"], cur["sp"], prev["sp"])
        bwd = -_one_sided(l0, cur["lm"], prev["lm"], cur["sm"], prev["sm"])
        one_noise = 4 * noise * s2 / min(s2, s1 - s2)
        slack = self.base + self.m.rtol * abs(a) + one_noise
        # The one-sided quotients are averages of the derivative over [0, s] or
        # [-s, 0]; their spread bounds from below how far a kink inside the
        # step can pull the central difference. A disagreement beyond it
        # cannot come from the step.
        quotients = [(h["lp"] - l0) / h["sp"] for h in pts] + [(l0 - h["lm"]) / h["sm"] for h in pts]
        spread = max(quotients) - min(quotients)
        # Smooth: both sides extrapolate to the same slope and, from three
        # steps on, Richardson's estimates agree (several kinks on both sides
        # can mimic a smooth curve over two steps, not over three).
        smooth = self.close(fwd, bwd, 2 * one_noise) and (len(rich) < 2 or self.close(rich[-1], rich[-2], 4 * noise))
        self.best = r2 if smooth else d2
        self.rough = not smooth
        diff = abs(a - d2)
        # A kink closer than the smallest step so far leaves no trace in the
        # quotients, yet can move the slope by tens of percent: only a gross
        # disagreement (a sign, a factor, a zero) is believed at once; a
        # smaller one must survive every level.
        if diff > spread + slack + noise and (diff > GROSS * max(abs(a), abs(d2)) or final):
            return WRONG
        # Smooth within a band a kink of this size could hide in says nothing: undecided.
        if smooth and len(rich) >= 2 and 2 * one_noise <= diff:
            return WRONG
        lo, hi = min(d2, r2, fwd, bwd), max(d2, r2, fwd, bwd)
        if not smooth and lo - slack <= a <= hi + slack:
            return KINK
        if final and diff <= noise:
            return None  # within the noise of every level, and never within the first's: unsettled
        return WRONG if final else None

    def _one_side_matches(self, pts: list[dict], central: list[float], a: float) -> bool:
        """A kink right next to x: the analytic value is one side's slope at every step, the other side differs.

        The first-order quotients (L(x+h) - L(x)) / h and (L(x) - L(x-h)) / h
        are the two slopes; a smooth loss gives both close to its derivative.
        The analytic value matching one of them far better than the central
        difference, on the same side at the last two steps while the other side
        stays off, is the mark of a ReLU, max or abs: not an error.
        """
        if len(pts) < 2:
            return False
        l0, base, rtol = self.check.loss0, self.base, self.m.rtol
        sides = set()
        for h, d in zip(pts[-2:], central[-2:]):
            qp, qm = (h["lp"] - l0) / h["sp"], (l0 - h["lm"]) / h["sm"]
            off = abs(a - d)
            near = base + rtol * abs(a) + off / 4
            if abs(a - qp) <= near and abs(a - qm) > 1.5 * off:
                sides.add("+")
            elif abs(a - qm) <= near and abs(a - qp) > 1.5 * off:
                sides.add("-")
            else:
                return False
        return len(sides) == 1


def _one_sided(l0: float, la: float, lb: float, a: float, b: float) -> float:
    """f'(0) from f(0), f(a), f(b) with 0 < a < b (Lagrange, second order)."""
    if not (0 < a < b):
        return (la - l0) / a if a else float("nan")
    return -l0 * (a + b) / (a * b) + la * b / (a * (b - a)) - lb * a / (b * (b - a))


def _row_stats(g: np.ndarray, m: Measurements) -> dict[str, Any]:
    use = m.usable
    pred = predict(g, m)
    num = m.numeric
    err = np.abs(pred - num)
    nc = len(m.coords)
    out: dict[str, Any] = {"max_abs_error": None, "rel_error": None, "worst_index": None, "analytic": None, "numeric": None}
    if not use.any():
        return out
    pu, nu = pred[use], num[use]
    denom = safe_norm(pu) + safe_norm(nu)
    out["rel_error"] = float(safe_norm(pu - nu) / denom) if denom > 0 else 0.0
    cu = np.flatnonzero(use[:nc])
    if len(cu):
        w = cu[np.argmax(err[cu])]
        out["max_abs_error"] = float(err[w])
        out["worst_index"] = tuple(int(j) for j in np.unravel_index(int(m.coords[w]), m.shape))
        out["analytic"], out["numeric"] = float(pred[w]), float(num[w])
    else:
        out["max_abs_error"] = float(np.max(err[use]))
    return out


def _entry_errors(g: np.ndarray, m: Measurements) -> np.ndarray:
    """|analytic - numeric| at the entries compared one by one, NaN elsewhere, in the parameter's shape."""
    nc = len(m.coords)
    use = m.usable[:nc]
    out = np.full(m.shape, np.nan)
    out.flat[m.coords[use]] = np.abs(predict(g, m)[:nc] - m.numeric[:nc])[use]
    return out


def _resolve_forms(loss: Any, grads: Any, params: Any) -> tuple[Callable, Any, bool, Any]:
    """(loss, grads, combined, params) from either calling form."""
    if not callable(loss):
        raise TypeError(f"gradcheck: loss must be a function of params, got {type(loss).__name__}")
    if params is None:
        if grads is None or callable(grads):
            raise TypeError(
                "gradcheck needs the parameters: gradcheck(loss, grads, params) or gradcheck(loss_and_grads, params=params)"
            )
        # gradcheck(loss_and_grads, params): the second positional argument is params.
        return loss, None, True, grads
    return loss, grads, grads is None, params


def gradcheck(loss: Callable, grads: Any = None, params: Any = None, *, mode: str = "auto",
              eps: float | None = None, rtol: float | None = None, atol: float | None = None,
              seed: int = 0) -> GradReport:
    """Compare hand-written gradients with central finite differences and say what is wrong.

    Two forms: ``gradcheck(loss, grads, params)`` where ``loss(params)``
    returns a scalar and ``grads(params)`` a structure like ``params`` (a
    precomputed gradient structure is accepted too), or
    ``gradcheck(loss_and_grads, params=params)`` where the function returns
    ``(loss, grads)``. ``params`` is a dict of name -> float array (nested
    dicts, lists and tuples too); grads may use the deeplearning.ai keys
    ``dW1`` for ``W1``.

    ``mode``: ``"auto"`` (at most 40 loss evaluations per tensor),
    ``"full"`` (2 per entry), ``"sample"``/``"sample:K"`` (K entries),
    ``"directions"``/``"directions:K"`` (K directions). ``eps`` is the
    relative step (default eps_dtype^(1/3)); ``rtol``/``atol`` the per-entry
    tolerances (defaults scale with the dtype and the gradient); ``seed``
    fixes the random probes. The user's arrays are never modified. An
    exception raised by the user's function propagates with a note saying
    what was perturbed.

    >>> import numpy as np
    >>> from shapecheck._gradcheck import gradcheck
    >>> params = {"w": np.array([1.0, -2.0, 3.0])}
    >>> report = gradcheck(lambda p: float(np.sum(p["w"] ** 2)), lambda p: {"w": -2 * p["w"]}, params)
    >>> report.passed, report.rows[0].diagnosis.kind
    (False, 'sign')
    """
    report = _gradcheck(loss, grads, params, mode, eps, rtol, atol, seed)
    _notify(report)
    return report


def _number(name: str, value: Any) -> float | None:
    # Python and numpy reals (np.float32(1e-3) too); not bools, not complex, not nan.
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)) \
            or float(value) < 0 or (float(value) == 0 and name != "atol"):
        raise ValueError(f"gradcheck: {name} must be a positive number, got {value!r}")
    return float(value)


def _gradcheck(loss, grads, params, mode, eps, rtol, atol, seed) -> GradReport:
    loss, grads, combined, params = _resolve_forms(loss, grads, params)
    plan = _plan(mode)
    leaves = _gradtree.leaves(params)
    if not leaves:
        raise GradInputError("gradcheck: params holds no parameters (an empty dict, list or tuple): nothing to check")
    eps, rtol, atol = _number("eps", eps), _number("rtol", rtol), _number("atol", atol)
    if eps is not None:
        for leaf in leaves:
            dtype = np.asarray(leaf.value).dtype
            if dtype.type(1 + eps) == 1 or dtype.type(1 - eps) == 1:
                raise GradInputError(
                    f"gradcheck: eps={eps:g} is too small for {leaf.name} ({dtype}): the step rounds to zero; "
                    f"use at least {8 * float(np.finfo(dtype).eps):.1g}, or leave eps unset (eps^(1/3) of the dtype)")
    user_err = np.geterr()
    # shapecheck's own arithmetic on extreme losses (1e+-200) must neither warn nor raise
    # under the user's settings; the user's functions run under their own (see _Evaluator).
    with _global_rng_preserved(), np.errstate(all="ignore"):
        return _run(loss, grads, combined, params, leaves, plan, eps, rtol, atol, seed, user_err)


def _run(loss, grads, combined, params, leaves, plan, eps, rtol, atol, seed, user_err) -> GradReport:
    ev = _Evaluator(loss, grads, combined, params, leaves, user_err)
    precomputed = not combined and not callable(grads)
    notes: list[str] = []

    # The unperturbed point twice: a random loss must be caught before any
    # finite difference is believed.
    loss0, out0 = ev.call()
    dtype0 = ev.last_dtype
    raw0 = out0[1] if combined else (grads if precomputed else ev.analytic())
    changed = ev.modified()
    if changed:
        raise GradInputError(
            f"gradcheck: {ev.who if combined else 'loss or grads'} modified {', '.join(changed)} in place; "
            "finite differences need functions that leave the parameters alone"
        )
    lookup = _gradtree.lookup_grads(raw0, leaves)
    g0 = [_as_grad(v, leaf.name, ev.arrays, combined) for v, leaf in zip(lookup.values, leaves)]
    del out0
    loss1, out1 = ev.call()
    raw1 = out1[1] if combined else (raw0 if precomputed else ev.analytic())
    del out1
    g1 = [_as_grad(v, leaf.name, ev.arrays, combined) for v, leaf in zip(_gradtree.lookup_grads(raw1, leaves).values, leaves)]
    del raw1
    same_grads = _same_grads(g0, g1)
    del g1  # the randomness check is done: hold one gradient, not two

    dtypes = [np.dtype(ev.pristine[i].dtype) for i in range(len(leaves))]
    eps_loss = max([float(np.finfo(t).eps) for t in dtypes] + ([float(np.finfo(dtype0).eps)] if dtype0 is not None else []))
    problem, problem_kind = None, "error"
    if not math.isfinite(loss0):
        problem = (f"{ev.who} returned {loss0} at the parameters given: nothing can be compared. "
                   "Look for log(0) (clip the probabilities) or an overflow in exp (subtract the max first).")
    elif not _same(loss0, loss1, eps_loss) or not same_grads:
        which = "loss" if not _same(loss0, loss1, eps_loss) else "the gradients"
        seen = f" ({loss0:.6g} then {loss1:.6g})" if which == "loss" else ""
        problem_kind = "random"
        problem = (f"{ev.who if which == 'loss' else which} returned different values at the same parameters{seen}: "
                   "something in it is random (dropout, unseeded sampling, shuffling). Finite differences need a "
                   "deterministic loss: seed it inside the function (rng = np.random.default_rng(0) at its top) "
                   "or disable dropout for the check.")

    problem_short = None if problem is None else (
        "the loss is random." if problem_kind == "random" else "the loss is not finite.")
    funcs = [loss] + ([grads] if callable(grads) else [])
    dims = _context_dims(funcs, leaves)
    rows: list[GradRow] = []
    independent: list[bool] = []
    for i, leaf in enumerate(leaves):
        row, indep = _check_one(ev, i, leaf, g0[i], lookup.found_as[i], lookup.paths[i], plan, eps, rtol, atol, eps_loss,
                                loss0, seed, dims, skip=problem_short)
        rows.append(row)
        independent.append(indep)

    if problem is None and len(rows) > 1 and all(independent) and any(r.status == "wrong" for r in rows):
        problem_kind = "wrong"
        problem = ("The loss did not change at all when any parameter was perturbed: it does not use the params "
                   "gradcheck passes it (a closure over global arrays, or a copy taken earlier?). "
                   "Write loss(params) to read every parameter from its argument.")
    if lookup.unused:
        notes.append("grads entries that match no parameter (ignored): " + ", ".join(lookup.unused[:8])
                     + (" ..." if len(lookup.unused) > 8 else ""))
    low = [(leaf.name, t) for leaf, t in zip(leaves, dtypes) if t.itemsize < 8]
    if low and problem is None:
        notes.append(f"{', '.join(n for n, _ in low)}: {low[0][1]} parameters get a larger step and rtol, so errors "
                     "below about 0.1% cannot be seen; for a finer check cast parameters and data to float64.")
    sampled = [r.name for r in rows if r.total > r.checked and r.status != "skipped" and r.grad_shape is not None]
    if sampled and problem is None and plan.name == "auto":
        notes.append(f"auto mode compared {', '.join(sampled[:4])}{' ...' if len(sampled) > 4 else ''} along "
                     f"{AUTO_DIRECTIONS} directions and {AUTO_COORDS} sampled entries (at most {AUTO_BUDGET} loss "
                     "evaluations per parameter); mode='full' compares every entry.")

    rows = _borrow_factors(rows)
    summary = overall([(r.name, r.status, r.diagnosis.kind, r.diagnosis.factor) for r in rows], problem, problem_kind)
    passed = problem is None and all(r.status in ("ok", "kink") for r in rows)
    text, extra = summary.text, 0
    if problem is None and not passed and not _gradfix.searching():
        # The check's own copies go before the search makes its own: memory stays a few times a parameter.
        g0 = raw0 = lookup = None
        ev.work = ev.arrays = ev.flat = ev.pristine = None
        # Only for failed rows: where each wrong gradient was computed, and a fix the check confirms.
        found = _gradfix.explain(rows, summary.kind, loss, grads, combined, params, leaves,
                                 dict(mode=plan.name, eps=eps, rtol=rtol, atol=atol, seed=seed))
        rows, extra = found.rows, found.evaluations
        if any(r.diagnosis.kind == "swapped" for r in rows):  # the search found what the numbers alone could not
            summary = overall([(r.name, r.status, r.diagnosis.kind, r.diagnosis.factor) for r in rows])
            text = summary.text
        if found.overall_extra:
            text += " " + found.overall_extra
        if extra or found.tried:
            edits = f"{found.tried} candidate edit{'s' if found.tried != 1 else ''}"
            notes.append(f"locating the statements and verifying fixes used {extra} more loss evaluation"
                         f"{'s' if extra != 1 else ''} ({edits} tried, in memory; your files were not touched).")
    return GradReport(rows=tuple(rows), passed=passed, mode=plan.name, evaluations=ev.count,
                      loss=loss0, overall_kind=summary.kind, overall_factor=summary.factor,
                      overall_text=text, look_first=summary.look_first, notes=tuple(notes),
                      source_evaluations=extra)


def _borrow_factors(rows: list[GradRow]) -> list[GradRow]:
    """A wrong row measured by one probe only takes a sign or factor that other rows established.

    One number alone fits any pattern; the same ratio confirmed, over-determined,
    on another tensor of the same check is the further evidence that makes it a claim.
    """
    known = [(r.name, r.diagnosis.factor) for r in rows
             if r.status == "wrong" and r.diagnosis.kind in ("sign", "scale") and r.diagnosis.factor]
    out = []
    for r in rows:
        single = r.status == "wrong" and r.diagnosis.kind == "unknown" and r.checked + r.directions == 1
        if single and known and r.analytic is not None and r.numeric:
            ratio = r.analytic / r.numeric
            same = [(n, f) for n, f in known if abs(ratio / f - 1) <= 1e-3]
            if same:
                f = same[0][1]
                who = ", ".join(n for n, _ in same[:3])
                kind = "sign" if f == -1.0 else "scale"
                what = "the opposite sign" if kind == "sign" else f"{f:g} times the numeric value"
                text = (f"{r.name}'s one entry is {what} (analytic {r.analytic:.4g}, numeric {r.numeric:.4g}): "
                        f"the same factor as {who}, where many probes establish it.")
                r = dataclasses.replace(r, diagnosis=GradDiagnosis(kind, f, text))
        out.append(r)
    return out


def _updates_in_place(shape: tuple[int, ...], grad_shape: tuple[int, ...]) -> bool:
    """Would `p -= lr * g` work and keep p's shape?"""
    try:
        return np.broadcast_shapes(shape, grad_shape) == shape
    except ValueError:
        return False


def _check_one(ev: _Evaluator, i: int, leaf: _gradtree.Leaf, g: np.ndarray | None, gname: str | None, gpath: tuple | None,
               plan: _Plan, eps, rtol, atol, eps_loss: float, loss0: float, seed: int, dims: list[Dim],
               skip: str | None) -> tuple[GradRow, bool]:
    """The row for one parameter, and whether the loss ignored it entirely."""
    shape = ev.arrays[i].shape
    common = dict(name=leaf.name, shape=tuple(shape), grad_shape=None if g is None else tuple(g.shape),
                  grad_name=gname, dtype=str(ev.pristine[i].dtype), total=int(ev.pristine[i].size))
    empty = dict(checked=0, directions=0, mismatched=0, max_abs_error=None, rel_error=None, worst_index=None,
                 analytic=None, numeric=None)
    if skip:
        return GradRow(**common, **empty, status="skipped",
                       diagnosis=GradDiagnosis("unknown", None, "not checked: " + skip), evaluations=0), False
    label, code = _gradtree.grad_labels(leaf.name, gname, gpath)
    if g is None:
        return GradRow(**common, **empty, status="shape",
                       diagnosis=diagnose_shape(leaf.name, label, tuple(shape), None, None, dims, code), evaluations=0), False
    shape_note = None
    if g.shape != tuple(shape) and g.size == int(np.prod(shape)) and _updates_in_place(tuple(shape), g.shape):
        # `db = np.sum(dZ) / m` for a (1, 1) bias: a different shape, but `b -= lr * db` keeps b's shape and
        # the values are the same ones, so the gradient is compared as b's shape, with a note.
        shape_note = (f"{label} has shape {g.shape} for a {tuple(shape)} parameter; an update "
                      f"{leaf.name} -= lr * {label} keeps {leaf.name}'s shape, so the values are compared as "
                      f"{tuple(shape)}.")
        g = g.reshape(shape)
    check = _LeafCheck(ev, i, g, plan, eps, rtol, atol, eps_loss, loss0, seed)
    if g.shape != tuple(shape):
        # Still measure: the diagnosis finds, numerically, the reshape or sum that reconciles the two.
        check.g = None
        m = check.measure()
        diag = diagnose_shape(leaf.name, label, tuple(shape), g, m, dims, code)
        return GradRow(**common, checked=len(m.coords), directions=len(m.dirs), mismatched=0, max_abs_error=None,
                       rel_error=None, worst_index=None, analytic=None, numeric=None, status="shape",
                       diagnosis=diag, evaluations=check.spent()), m.independent
    if check.n == 0:
        return GradRow(**common, **empty, status="ok", diagnosis=GradDiagnosis("ok", None, "empty parameter."),
                       evaluations=0), False
    m = check.measure()
    check.judge(m)
    v = m.verdicts
    stats = _row_stats(g, m)
    wrong = int(np.sum(v == WRONG))
    unconfirmed = int(np.sum(v == UNCONFIRMED))
    kinks = int(np.sum(v == KINK))
    nonfinite = int(np.sum(v == NONFINITE))
    notes: list[str] = []
    if wrong:
        status = "wrong"
        diag = diagnose_values(leaf.name, label, g, m, dims, code)
        if unconfirmed:
            notes.append(f"{wrong} probe(s) confirmed wrong by re-checks with smaller steps; {unconfirmed} more "
                         "disagreed and were not re-checked (the row was settled, or the budget ran out).")
        wrong += unconfirmed
    elif unconfirmed:
        # Never ok: a disagreement nobody settled may be a real error.
        status = "unsure"
        diag = GradDiagnosis("unknown", None,
                             f"not settled: {unconfirmed} probe(s) disagreed (rel. error {stats['rel_error']:.2g}) and "
                             f"the budget of {plan.budget} loss evaluations ran out before re-checks with smaller steps "
                             "could tell a real error from finite-difference error; mode='full' settles it.")
        wrong = unconfirmed
    elif nonfinite == len(v):
        status = "skipped"
        diag = GradDiagnosis("unknown", None,
                             "not checked: the loss was nan or inf at every perturbed point "
                             "(a log(0) or an overflow right next to these parameters).")
    else:
        status = "kink" if kinks else "ok"
        text = "matches the numeric gradient."
        if kinks:
            where = [tuple(int(j) for j in np.unravel_index(int(f), shape)) for f, vv in zip(m.coords, m.coord_verdict) if vv == KINK]
            text = (f"matches, except {kinks} probe{'s' if kinks > 1 else ''} straddling a kink (ReLU, max, abs: the "
                    "one-sided differences disagree and the analytic value is one of them)"
                    + (f" at {', '.join(map(str, where[:4]))}" if where else "") + ": not an error.")
        diag = GradDiagnosis("ok", None, text)
        if nonfinite:
            notes.append(f"{nonfinite} probe(s) skipped: the loss was nan or inf there.")
        if shape_note:
            notes.append(shape_note)
        signal = np.abs(m.numeric[m.usable])
        if len(signal) and not np.any(g) and np.all(signal == 0):
            notes.append(f"both gradients of {leaf.name} are exactly zero here: the loss does not depend on it at these parameters.")
        elif len(signal) and np.max(signal) <= 2 * m.noise and np.max(np.abs(g)) <= 2 * m.noise:
            notes.append(f"the gradient of {leaf.name} is below the finite-difference noise (~{m.noise:.1g}): "
                         "the check cannot tell it from zero.")
    return GradRow(**common, checked=len(m.coords), directions=len(m.dirs), mismatched=wrong,
                   max_abs_error=stats["max_abs_error"], rel_error=stats["rel_error"],
                   worst_index=stats["worst_index"], analytic=stats["analytic"], numeric=stats["numeric"],
                   status=status, diagnosis=diag, evaluations=check.spent(), kinks=kinks,
                   notes=tuple(notes), errors=_entry_errors(g, m)), m.independent


def assert_gradients_close(loss: Callable, grads: Any = None, params: Any = None, *, mode: str = "auto",
                           eps: float | None = None, rtol: float | None = None, atol: float | None = None,
                           seed: int = 0) -> GradReport:
    """``gradcheck`` for tests: raise AssertionError with the report when the gradients are wrong.

    Returns the report when they are right. Its own frames are hidden from
    pytest's traceback, so the failure points at the test.

    >>> import numpy as np
    >>> from shapecheck._gradcheck import assert_gradients_close
    >>> params = {"w": np.array([1.0, -2.0])}
    >>> _ = assert_gradients_close(lambda p: float(np.sum(p["w"] ** 2)), lambda p: {"w": 2 * p["w"]}, params)
    """
    __tracebackhide__ = True
    report = _gradcheck(loss, grads, params, mode, eps, rtol, atol, seed)
    _notify(report)
    if not report.passed:
        raise AssertionError(str(report))
    return report


def _lookup_name(namespace: dict, name: str, where: str) -> Any:
    head, *attrs = name.split(".")
    if head not in namespace:
        names = [k for k, v in namespace.items() if not k.startswith("__") and not isinstance(v, types.ModuleType)]
        close = difflib.get_close_matches(head, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UsageError(f"--grad: {name!r} is not defined in {where}{hint}")
    obj = namespace[head]
    for a in attrs:
        if not hasattr(obj, a):
            raise UsageError(f"--grad: {name!r}: {type(obj).__name__} has no attribute {a!r}")
        obj = getattr(obj, a)
    return obj


def gradcheck_from_namespace(namespace: dict, spec: str, **options: Any) -> GradReport:
    """Run ``gradcheck`` on names found in a script's namespace (the CLI's ``--grad``).

    ``spec`` is ``"LOSS,GRADS,PARAMS"`` or ``"LOSS_AND_GRADS,PARAMS"``; names
    may be dotted (``model.params``). A missing name, a LOSS or GRADS that is
    not callable, or a PARAMS that is not a structure of float arrays raises
    UsageError with one line naming it; ``options`` go to ``gradcheck``.

    >>> import numpy as np
    >>> ns = {"loss": lambda p: float(np.sum(p["w"] ** 2)), "grads": lambda p: {"w": 2 * p["w"]},
    ...       "params": {"w": np.ones(2)}}
    >>> gradcheck_from_namespace(ns, "loss,grads,params").passed
    True
    """
    where = display_path(namespace["__file__"]) if namespace.get("__file__") else "the script"
    names = [s.strip() for s in str(spec).split(",")]
    if len(names) not in (2, 3) or not all(names):
        raise UsageError(f"--grad expects LOSS,GRADS,PARAMS or LOSS_AND_GRADS,PARAMS, got {spec!r}")
    objs = [_lookup_name(namespace, n, where) for n in names]
    for n, obj in zip(names[:-1], objs[:-1]):
        if not callable(obj):
            raise UsageError(f"--grad: {n!r} is not callable (it is a {type(obj).__name__}); "
                             f"{'GRADS' if n == names[1] and len(names) == 3 else 'LOSS'} must be a function of the parameters")
    params = objs[-1]
    if callable(params) and not isinstance(params, (dict, list, tuple, np.ndarray)):
        raise UsageError(f"--grad: {names[-1]!r} is a function, not a parameter structure "
                         "(a dict, list or tuple of float arrays)")
    try:
        _gradtree.leaves(params)
    except ParameterTypeError as exc:
        raise UsageError(f"--grad: {names[-1]!r} is not a parameter structure: {exc}") from None
    if len(names) == 3:
        return gradcheck(objs[0], objs[1], params, **options)
    return gradcheck(objs[0], params=params, **options)
