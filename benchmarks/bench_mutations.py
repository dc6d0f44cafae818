"""Mutation benchmark for the gradient check: realistic one-line slips in hand-written backward code.

Not a test: run ``python benchmarks/bench_mutations.py`` (``--quick`` for a
small subset, ``--seed`` for other data and another sample of mutants; while
iterating, ``--modes auto --clean-seeds 1`` or ``--networks nielsen,nnfs_layers``). The
networks are in ``benchmarks/mutnets/`` (eight styles: deeplearning.ai
column-major with dicts, with L2 and with dropout; CS231n layers and caches,
with batchnorm; Nielsen per-example lists and matrix-based; min-char-rnn BPTT;
nnfs layer objects with L1/L2 and an in-place update). ``mutnets.mutator``
edits one statement of their backward code at a time and computes each
mutant's ground truth: which tensors' gradients are wrong, and whether the
error is exactly a sign, a scale, a transpose, a zero or a shape. Every
mutant is checked with ``shapecheck.gradcheck`` in every mode; the figures are
printed next to the targets of the gradient-check issue.

A row counts as flagged when its status is anything but ``ok``; a mutant is
detected when ``report.passed`` is False.

Issue 9's figures (mode auto, detected mutants):

- *mistake line named* (stricter than the issue's figure, so printed without a
  verdict: the report pins the slip itself, not only the statement that made
  the value): the report's ``mistake`` is exactly the edited line. A mutant that
  deleted a statement (the mutator leaves ``pass`` in its place, so the file
  keeps its line numbers) counts as named only if the report says a statement
  is missing right after the statement before the ``pass``; the share of the
  others is printed beside it.
- *producing line named* (the issue's item 6, target >= 95%): every flagged row's
  ``location`` (the statement said to produce the value returned) lies in the
  statement that an independent ``sys.settrace`` pass (``mutnets/producer.py``,
  no shapecheck code) saw first bind the array returned for it; both naming none
  agrees. A report that names the store of an array made earlier (``db = dout``)
  counts as a miss here.
- *producing statement is the edited line*: the stricter older figure.
"""

from __future__ import annotations

import argparse
import copy
import random
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import shapecheck  # noqa: E402
from mutnets import NETWORKS  # noqa: E402
from mutnets.mutator import (Mutant, Truth, classify, compare, flat_gradients, leaves, load_file,  # noqa: E402
                             mutants, network)
from mutnets.producer import producers  # noqa: E402

SPECIFIC = ("sign", "scale", "transpose", "zero", "shape")
FACTOR_TOL = 0.01  # a claimed scale is right within 1% of the true factor
TARGET_NAMED = 0.98
MAX_PER_NETWORK = 40  # the bigger network gets fewer: full mode costs 12,000 evaluations there
MAX_BIG = 12


@dataclass
class Outcome:
    """One mutant (or clean network) under one mode."""

    passed: bool
    flagged: frozenset
    diag_right: int = 0  # wrong tensors with an exact truth whose diagnosis says exactly that
    diag_total: int = 0  # wrong tensors with an exact truth (sign, scale, transpose, zero, shape)
    false_specific: list = field(default_factory=list)
    row_evals: list = field(default_factory=list)
    evals: int | None = None
    seconds: float = 0.0
    error: str | None = None  # gradcheck raised instead of reporting
    has_locations: bool = False  # the report's rows carry a location (issue 9)
    statuses: dict = field(default_factory=dict)  # flagged row name -> its status
    lines: dict = field(default_factory=dict)  # flagged row name -> the line its report names (None: none)
    chain_lines: set = field(default_factory=set)  # every line the flagged rows name, chains included
    fixes: list = field(default_factory=list)  # the verified fixes the flagged rows show (issue 9)
    mistakes: set = field(default_factory=set)  # the lines the flagged rows pin the mistake to (issue 9)
    producers: dict = field(default_factory=dict)  # row name -> (first, last line) of the statement that bound it
    missing: set = field(default_factory=set)  # the lines a statement is said to be missing after (issue 9)


def modes() -> list[str]:
    """auto, full and, when this gradcheck has it, directions."""
    out = ["auto", "full"]
    try:
        shapecheck.gradcheck(lambda p: float(np.sum(p["w"] ** 2)), lambda p: {"w": 2 * p["w"]},
                             {"w": np.ones(2)}, mode="directions")
        out.append("directions")
    except ValueError:
        pass
    return out


def _line_of(loc) -> int | None:
    if loc is None or isinstance(loc, bool):
        return None
    if isinstance(loc, int):
        return loc
    for attr in ("line", "lineno"):
        if isinstance(getattr(loc, attr, None), int):
            return getattr(loc, attr)
    if isinstance(loc, dict):
        return _line_of(loc.get("line", loc.get("lineno")))
    if isinstance(loc, (tuple, list)) and loc and isinstance(loc[-1], int):
        return loc[-1]
    tail = str(loc).rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else None


def row_line(row) -> int | None:
    """The source line a row names as producing its gradient, once GradReport rows carry one (issue 9)."""
    loc = getattr(row, "location", None)
    return _line_of(loc if loc is not None else getattr(row, "line", None))


def row_chain_lines(row) -> set[int]:
    """The producing line and the lines of the backward chain a row shows (issue 9), when it has them."""
    lines = {row_line(row)}
    for step in getattr(row, "chain", None) or ():
        lines.add(_line_of(step))
    return lines - {None}


def has_locations(report) -> bool:
    return any(hasattr(r, "location") or hasattr(r, "line") for r in report.rows)


def _norm_kind(kind: str, factor: float | None) -> str:
    if kind == "scale" and factor is not None:
        if abs(factor + 1) <= FACTOR_TOL:
            return "sign"
        if abs(factor) <= FACTOR_TOL:
            return "zero"
    return kind


def diagnosis_matches(kind: str, factor: float | None, patterns: frozenset, k: float | None) -> bool:
    """Does a specific diagnosis say what the truth is (the same pattern, the same factor)?"""
    kind = _norm_kind(kind, factor)
    if kind not in patterns:
        return False
    if kind == "scale":
        return factor is None or (k is not None and abs(factor / k - 1) <= FACTOR_TOL)
    if kind == "transpose":
        # "transposed and 4.3 times too small" claims a scale the truth does not have.
        return factor is None or abs(factor - 1) <= FACTOR_TOL
    return True


def run_check(loss, grads, params, mode: str, names: list[str], truth: Truth | None) -> Outcome:
    t = time.perf_counter()
    try:
        report = shapecheck.gradcheck(loss, grads, params, mode=mode)
    except Exception as exc:  # the checker itself failed: counted as neither detected nor passed cleanly
        return Outcome(passed=True, flagged=frozenset(), seconds=time.perf_counter() - t,
                       error=f"{type(exc).__name__}: {exc}")
    dt = time.perf_counter() - t
    rows = {r.name: r for r in report.rows}
    if set(rows) != set(names):  # rows are in the order of params; names are our own
        rows = dict(zip(names, report.rows))
    flagged = frozenset(n for n, r in rows.items() if r.status != "ok")
    out = Outcome(passed=bool(report.passed), flagged=flagged, seconds=dt,
                  evals=getattr(report, "evaluations", None),
                  row_evals=[r.evaluations for r in rows.values() if isinstance(getattr(r, "evaluations", None), int)])
    wrong = truth.wrong if truth else frozenset()
    for name, row in rows.items():
        diag = getattr(row, "diagnosis", None)
        kind, factor = getattr(diag, "kind", "unknown"), getattr(diag, "factor", None)
        patterns = truth.patterns.get(name, frozenset()) if truth else frozenset()
        k = truth.factors.get(name) if truth else None
        if name in wrong and patterns:
            out.diag_total += 1
            out.diag_right += row.status != "ok" and diagnosis_matches(kind, factor, patterns, k)
        if row.status != "ok" and _norm_kind(kind, factor) in SPECIFIC and not diagnosis_matches(kind, factor, patterns, k):
            claim = f"{kind}" + (f" {factor:.4g}" if factor is not None else "")
            out.false_specific.append(f"{name}: {claim} (truth: {describe_truth(truth, name)})")
        if row.status != "ok":
            out.lines[name] = row_line(row)
            if getattr(row, "mistake", None) is not None:
                out.mistakes.add(_line_of(row.mistake))
                if getattr(row.mistake, "why", "") == "missing":
                    out.missing.add(_line_of(row.mistake))
            out.chain_lines |= row_chain_lines(row)
            fix = getattr(row, "fix", None)
            if fix is not None and fix not in out.fixes:
                out.fixes.append(fix)
            out.statuses[name] = row.status
    out.has_locations = has_locations(report)
    return out


def describe_truth(truth: Truth | None, name: str) -> str:
    if truth is None or name not in truth.wrong:
        return "right"
    p = truth.patterns.get(name, frozenset())
    if not p:
        return "wrong, no simple pattern"
    return "/".join(sorted(f"scale {truth.factors[name]:.4g}" if x == "scale" else x for x in p))


def sample(valid: list, limit: int, rng: random.Random) -> list:
    """At most ``limit`` mutants, round-robin over operators so every operator is represented."""
    by_op = defaultdict(list)
    for item in valid:
        by_op[item[0].op].append(item)
    for items in by_op.values():
        rng.shuffle(items)
    out, ops = [], sorted(by_op)
    while len(out) < min(limit, len(valid)):
        for op in ops:
            if by_op[op] and len(out) < limit:
                out.append(by_op[op].pop())
    return sorted(out, key=lambda it: (it[0].line, it[0].op))


def gap_before(path: str, line: int) -> int | None:
    """The line of the statement right before the `pass` at ``line`` in its block (None when it is the first)."""
    import ast

    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    for node in ast.walk(tree):
        for field_ in ("body", "orelse", "finalbody"):
            body = getattr(node, field_, None)
            if not isinstance(body, list):
                continue
            for k, stmt in enumerate(body):
                if isinstance(stmt, ast.Pass) and stmt.lineno == line:
                    return body[k - 1].end_lineno if k and not hasattr(body[k - 1], "body") else None
    return None


def _produced_at(line: int | None, truth: tuple | None) -> bool:
    """Is the line the report names within the statement that bound the array (neither names one: agreed)?"""
    if truth is None or line is None:
        return truth is None and line is None
    return truth[0] <= line <= truth[1]


def pct(a: int, b: int) -> str:
    return f"{a}/{b} ({100 * a / b:.1f}%)" if b else "0/0"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="6 mutants per network, one clean seed")
    ap.add_argument("--seed", type=int, default=0, help="data of the networks and the sample of mutants")
    ap.add_argument("--max-per-network", type=int, default=None)
    ap.add_argument("--clean-seeds", type=int, default=None, help="seeds of the false-failure runs (default 3)")
    ap.add_argument("--modes", default=None, help="comma-separated modes to run (default: every mode; auto is "
                    "always run, the issue-9 figures are made in it)")
    ap.add_argument("--networks", default=None, help="comma-separated networks to run (default: all)")
    args = ap.parse_args()
    limit = args.max_per_network or (6 if args.quick else MAX_PER_NETWORK)
    clean_seeds = args.clean_seeds or (1 if args.quick else 3)
    warnings.simplefilter("ignore")
    np.seterr(all="ignore")
    mode_list = modes()
    if args.modes:
        mode_list = ["auto"] + [m for m in mode_list if m in args.modes.split(",") and m != "auto"]
    nets = [n for n in NETWORKS if not args.networks or n in args.networks.split(",")]
    rng = random.Random(args.seed)
    t0 = time.perf_counter()

    # Mutants and their ground truth.
    made = Counter()
    chosen: list[tuple[Mutant, Truth]] = []
    per_net = []
    for name in nets:
        valid = []
        all_m = mutants(name)
        for m in all_m:
            status, truth = classify(m, args.seed)
            made[status] += 1
            if status == "valid":
                valid.append((m, truth))
        picked = sample(valid, min(limit, MAX_BIG) if name == "nielsen_matrix" else limit, rng)
        chosen.extend(picked)
        _, _, params = network(name).problem(args.seed)
        size = sum(a.size for _, _, a in leaves(params))
        per_net.append((name, size, len(all_m), len(valid), len(picked)))
    print(f"shapecheck {getattr(shapecheck, '__version__', '?')} gradcheck, mutation benchmark, seed {args.seed}; "
          f"modes: {', '.join(mode_list)}")
    print(f"mutants made: {sum(made.values())}; valid {made['valid']}, skipped: crashed {made['crash']}, "
          f"changed no gradient {made['unchanged']}, swaps of different shapes {made['shape-incompatible']}; "
          f"checked: {len(chosen)} (at most {limit} per network, round-robin over operators)")
    print(f"{'network':18} {'params':>7} {'made':>5} {'valid':>6} {'checked':>8}")
    for name, size, n_all, n_valid, n_pick in per_net:
        print(f"{name:18} {size:>7,} {n_all:>5} {n_valid:>6} {n_pick:>8}")

    # Every chosen mutant under every mode.
    results: dict[str, list[tuple[Mutant, Truth, Outcome]]] = {mode: [] for mode in mode_list}
    tmp = tempfile.mkdtemp(prefix="shapecheck-mutants-")
    sources = {}
    for m, truth in chosen:
        loss, _, params = network(m.network).problem(args.seed)
        # From a file of its own, so that the report can name the mutant's lines (issue 9).
        mod = load_file(m, tmp) or m.load()
        sources[id(m)] = mod.__file__
        # Its own loss too (the same as the clean one's: the loss never runs backward code), so that its
        # forward pass is read in the file the gradients come from.
        loss, bad_grads, _ = mod.problem(args.seed)
        names = [n for n, _, _ in leaves(params)]
        for mode in mode_list:
            results[mode].append((m, truth, run_check(loss, bad_grads, params, mode, names, truth)))
        try:  # the producing statements, found independently of shapecheck (issue 9, item 6)
            results["auto"][-1][2].producers = producers(bad_grads, copy.deepcopy(params), mod.__file__)
        except Exception:
            pass

    # Clean networks: false failures, float64 and float32.
    clean: dict[tuple[str, str], list[tuple[str, int, Outcome]]] = defaultdict(list)
    for name in nets:
        for dtype in (np.float64, np.float32):
            for seed in range(args.seed, args.seed + clean_seeds):
                loss, grads, params = network(name).problem(seed, dtype)
                names = [n for n, _, _ in leaves(params)]
                for mode in mode_list:
                    clean[(mode, np.dtype(dtype).name)].append((name, seed, run_check(loss, grads, params, mode, names, None)))

    report(results, clean, mode_list, clean_seeds, sources)
    report_fixes(results["auto"], sources, args.seed)
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"\ntotal time {time.perf_counter() - t0:.1f} s")


def report(results, clean, mode_list, clean_seeds, sources: dict) -> None:
    print(f"\n{'mode':11} {'detected':>17} {'named exactly':>17} {'diagnosis right':>17} {'false specific':>15} "
          f"{'evals/tensor med/max':>21} {'evals/check med':>16} {'time (s)':>9}")
    summary = {}
    for mode in mode_list:
        rs = results[mode]
        n = len(rs)
        det = sum(not o.passed for _, _, o in rs)
        named = sum(o.flagged == t.wrong for _, t, o in rs)
        dr = sum(o.diag_right for _, _, o in rs)
        dt = sum(o.diag_total for _, _, o in rs)
        fs = sum(len(o.false_specific) for _, _, o in rs)
        row_ev = [e for _, _, o in rs for e in o.row_evals]
        ev = [o.evals for _, _, o in rs if o.evals is not None]
        secs = sum(o.seconds for _, _, o in rs)
        ev_t = f"{statistics.median(row_ev):g}/{max(row_ev)}" if row_ev else "n/a"
        ev_c = f"{statistics.median(ev):g}" if ev else "n/a"
        print(f"{mode:11} {pct(det, n):>17} {pct(named, n):>17} {pct(dr, dt):>17} {fs:>15} {ev_t:>21} {ev_c:>16} {secs:>9.1f}")
        summary[mode] = (det, named, n, fs)

    nets = len({name for cs in clean.values() for name, _, _ in cs})
    print(f"\nclean networks ({nets} networks x {clean_seeds} seed(s)): false failures (report.passed False); "
          "rows not ok in brackets")
    for mode in mode_list:
        parts = []
        for dtype in ("float64", "float32"):
            cs = clean[(mode, dtype)]
            parts.append(f"{dtype} {sum(not o.passed or bool(o.error) for _, _, o in cs)}/{len(cs)} "
                         f"[{sum(len(o.flagged) for _, _, o in cs)}]")
        print(f"  {mode:11} " + "   ".join(parts))

    # The targets, for auto.
    full_det = {id(m) for m, _, o in results.get("full", results["auto"]) if not o.passed}
    auto_missed_full = [(m, t, o) for m, t, o in results["auto"] if id(m) in full_det and o.passed]
    det, named, n, fs = summary["auto"]
    clean_ff = {d: sum(not o.passed or bool(o.error) for _, _, o in clean[("auto", d)]) for d in ("float64", "float32")}
    clean_fs = sum(len(o.false_specific) for cs in clean.values() for _, _, o in cs)
    print("\ntargets (mode auto):")
    print(f"  detects every mutant full detects:         missed {len(auto_missed_full)} of {len(full_det)}   "
          f"{verdict(not auto_missed_full)}")
    print(f"  names the wrong tensors exactly >= {TARGET_NAMED:.0%}:    {pct(named, n):>17}   "
          f"{verdict(n and named / n >= TARGET_NAMED)}")
    print(f"  no false failure on clean networks:         float64 {clean_ff['float64']}, float32 {clean_ff['float32']}   "
          f"{verdict(not any(clean_ff.values()))}")
    print(f"  no false specific diagnosis (all modes):    auto {fs}, "
          + ", ".join(f"{mode} {summary[mode][3]}" for mode in mode_list if mode != "auto")
          + f", clean networks {clean_fs}   {verdict(fs == 0 and clean_fs == 0)}")
    lined = [(m, o) for m, _, o in results["auto"] if not o.passed]
    if lined and any(o.has_locations for _, o in lined):
        n = len(lined)
        gaps = {id(m): gap_before(sources[id(m)], m.line) for m, _ in lined if m.after == "pass"}
        # a deleted statement (a `pass` stands in its place) is named when the report says a statement is
        # missing right after the statement before that gap, and pins nothing else
        right_pin = {id(m) for m, o in lined if (o.mistakes == {m.line} and m.after != "pass")
                     or (m.after == "pass" and gaps[id(m)] is not None and o.mistakes == o.missing == {gaps[id(m)]})}
        pinned = len(right_pin)
        wrong_pin = [(m, o) for m, o in lined if o.mistakes and id(m) not in right_pin]
        kept = [(m, o) for m, o in lined if m.after != "pass"]
        pinned_kept = sum(id(m) in right_pin for m, o in kept)
        deleted_named = sum(id(m) in right_pin for m, o in lined if m.after == "pass")
        hit = sum(m.line in o.lines.values() for m, o in lined)
        near = sum(m.line in o.chain_lines for m, o in lined)
        print(f"  mistake line named (stricter, no target):   {pct(pinned, n)}"
              f"   (the report pins the mistake to one line and it is the edited line; of the mutants that did not "
              f"delete a statement: {pct(pinned_kept, len(kept))}; of those that did, named as missing at the gap: "
              f"{pct(deleted_named, n - len(kept))})")
        deleted = sum(m.after == "pass" for m, _ in wrong_pin)
        rows = [(m, o, name) for m, o in lined for name in sorted(o.flagged) if name in o.producers]
        right = {(id(m), name) for m, o, name in rows if _produced_at(o.lines.get(name), o.producers[name])}
        named_all = sum(all((id(m), name) in right for name in sorted(o.flagged) if name in o.producers)
                        for m, o in lined)
        print(f"  producing line named (issue 9, item 6, >= 95%): {pct(named_all, n)}   "
              f"{verdict(named_all / n >= 0.95)}   (every wrong row's statement is the one an independent tracer, "
              f"mutnets/producer.py, saw first bind the array returned; rows: {pct(len(right), len(rows))})")
        print(f"  mistake pinned to another line:             {len(wrong_pin)}   {verdict(not wrong_pin)}"
              f"   ({deleted} of them mutants that deleted a statement, which has no line of its own)")
        print(f"  producing statement is the edited line:     {pct(hit, n)}   (the statement that made the value "
              f"returned, named for every row; in a row's location or chain: {pct(near, n)})")
        for m, o, name in rows:
            if (id(m), name) not in right:
                print(f"    producing line differs: {m.network}:{m.line} [{m.op}] {name}: report "
                      f"{o.lines.get(name)}, independent tracer {o.producers[name]}")
        for m, o in wrong_pin:
            print(f"    pinned elsewhere: {m.network}:{m.line} [{m.op}] `{m.after}`; pinned: {sorted(o.mistakes)}")
        for m, o in lined:
            if not o.mistakes and m.after != "pass":
                print(f"    not pinned: {m.network}:{m.line} [{m.op}] `{m.after}`; named: "
                      f"{sorted(set(o.lines.values()) - {None})}, chain {sorted(o.chain_lines)}")
    else:
        print("  mistake line named (stricter, no target):   n/a (GradReport rows carry no location yet)")

    print("\nauto by operator: detected / named exactly / checked")
    by_op = defaultdict(lambda: [0, 0, 0])
    for m, t, o in results["auto"]:
        c = by_op[m.op]
        c[0] += not o.passed
        c[1] += o.flagged == t.wrong
        c[2] += 1
    print("  " + "; ".join(f"{op} {a}/{b}/{c}" for op, (a, b, c) in sorted(by_op.items())))

    for mode in mode_list:
        bad = [(m, t, o) for m, t, o in results[mode] if o.passed or o.flagged != t.wrong or o.false_specific or o.error]
        print(f"\nmisses in mode {mode} ({len(bad)}): not detected, misnamed, or a false specific diagnosis")
        for m, t, o in bad:
            what = "CHECK RAISED" if o.error else "NOT DETECTED" if o.passed else "misnamed" if o.flagged != t.wrong else "false diagnosis"
            line = o.lines and next(iter(o.lines.values()))
            print(f"  {what:15} {m.network}:{m.line} [{m.op}] `{m.after}`")
            print(f"  {'':15} wrong: {fmt_truth(t)}; flagged: {', '.join(sorted(o.flagged)) or '-'}"
                  + (f"; {'; '.join(o.false_specific)}" if o.false_specific else "")
                  + ("" if not o.has_locations else f"; line named {line}")
                  + (f"; {o.error}" if o.error else ""))
    for (mode, dtype), cs in sorted(clean.items()):
        for name, seed, o in cs:
            if not o.passed or o.flagged or o.false_specific or o.error:
                print(f"  clean {name} seed {seed} {dtype} mode {mode}: passed={o.passed}, rows not ok: "
                      f"{', '.join(f'{n} {st}' for n, st in sorted(o.statuses.items())) or '-'}"
                      + (f"; {'; '.join(o.false_specific)}" if o.false_specific else "")
                      + (f"; {o.error}" if o.error else ""))


# Mutant kinds that imply a one-line edit (issue 9's sign, scale, transpose, shape, activation derivative).
FIX_OPS = ("sign", "x2", "1/m dropped", "1/m added", "N-1", "transpose added", "transpose removed",
           "bias not summed", "sum wrong axis", "activation wrong array")
TARGET_FIXED = 0.80


def apply_fixes(path: str, fixes: list) -> str | None:
    """The mutant's file text with every fix the report shows applied (one per group of rows), or None if
    one does not fit its line."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines(keepends=True)
    for fix in fixes:
        if not (0 < fix.line <= len(lines)) or fix.before not in lines[fix.line - 1]:
            return None
        lines[fix.line - 1] = lines[fix.line - 1].replace(fix.before, fix.after, 1)
    return "".join(lines)


def fix_outcome(m: Mutant, path: str, fixes: list, seed: int) -> tuple[bool, bool]:
    """(the check passes with the fixes applied to the file, they give back the clean network's gradient)."""
    import types

    text = apply_fixes(path, fixes)
    if text is None:
        return False, False
    mod = types.ModuleType("fixed")
    mod.__file__ = path + ".fixed.py"
    try:
        exec(compile(text, mod.__file__, "exec"), mod.__dict__)
        loss, grads, params = mod.problem(seed)
        passes = shapecheck.gradcheck(loss, grads, params).passed
        _, clean_grads, clean_params = network(m.network).problem(seed)
        with np.errstate(all="ignore"):
            truth = compare(flat_gradients(clean_grads(clean_params), clean_params),
                            flat_gradients(grads(params), params))
    except Exception:
        return False, False
    return passes, not truth.wrong


def report_fixes(results, sources: dict, seed: int) -> None:
    """Issue 9: lines named, and verified fixes for the kinds of slip that imply an edit."""
    detected = [(m, o) for m, _, o in results if not o.passed]
    eligible = [(m, o) for m, o in detected if m.op in FIX_OPS]
    shown = [(m, o) for m, o in detected if o.fixes]
    passes = restores = 0
    failures = []
    for m, o in shown:
        ok, restored = fix_outcome(m, sources[id(m)], o.fixes, seed)
        passes += ok
        restores += restored
        if not ok:
            failures.append(m)
    fixed = sum(bool(o.fixes) for _, o in eligible)
    print("\nverified fixes (issue 9, mode auto):")
    print(f"  {'sign/scale/transpose/shape/activation mutants with a verified fix (>= 80%):':78} "
          f"{pct(fixed, len(eligible))}   {verdict(bool(eligible) and fixed / len(eligible) >= TARGET_FIXED)}")
    print(f"  {'fixes shown (all kinds) with which the whole check passes, applied to the file:':78} "
          f"{pct(passes, len(shown))}   {verdict(passes == len(shown))}")
    print(f"  {'fixes shown that give back the clean gradient:':78} {pct(restores, len(shown))}")
    by_op = defaultdict(lambda: [0, 0])
    for m, o in eligible:
        by_op[m.op][0] += bool(o.fixes)
        by_op[m.op][1] += 1
    print("  by operator (fixed / detected): " + "; ".join(f"{op} {a}/{b}" for op, (a, b) in sorted(by_op.items())))
    for m in failures:
        print(f"  FIX DOES NOT PASS: {m.network}:{m.line} [{m.op}] `{m.after}`")
    for m, o in eligible:
        if not o.fixes:
            print(f"  no verified fix: {m.network}:{m.line} [{m.op}] `{m.before}` -> `{m.after}`")


def fmt_truth(t: Truth) -> str:
    return ", ".join(f"{n} ({describe_truth(t, n)})" for n in sorted(t.wrong))


if __name__ == "__main__":
    main()
