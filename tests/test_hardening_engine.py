"""Regression tests for the recorder's and the rewriter's items of the hardening issue (issue 12).

Each runs the user's program the way shapecheck runs it (the runner's `compile_file` in process, or
`python -m shapecheck` in a subprocess) and, where the item is about what the program computes, compares
it with the plain program (tests/test_differential.py's `compare`).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

from conftest import shapecheck
from shapecheck import _recorder
from shapecheck._runner import compile_file
from test_differential import compare, plain_and_traced, without_notes


def _program(source: str) -> str:
    return textwrap.dedent(source).lstrip("\n")


def _same_as_python(script: str, tmp_path) -> subprocess.CompletedProcess:
    """`python script.py` and `python -m shapecheck script.py` print and exit alike; the traced run."""
    (tmp_path / "script.py").write_text(script)
    plain, traced = plain_and_traced("script.py", [], tmp_path)
    assert traced.returncode == plain.returncode, traced.stderr[-2000:]
    assert traced.stdout == plain.stdout
    ok, why = without_notes(plain.stderr, traced.stderr)
    assert ok, why
    return traced


# -- item 3: lines are split where the tokenizer splits them ------------------------------------------


def test_form_feeds_and_unicode_separators_do_not_shift_lines(tmp_path):
    """str.splitlines splits at \\f, \\x1c, \\x85, U+2028 too: every later finding named the wrong text,
    and an ignore comment silenced the line after its own."""
    source = ("import numpy as np\n"
              "a = np.zeros(3)  \x0c# a form feed\n"
              "b = np.zeros((3, 1))  # separators: \x1c \x1d \x1e \x85 \u2028 \u2029 \x0b\n"
              "c = a - b\n"
              "d = a * b  # shapecheck: ignore[SC101]\n"
              "e = a + b\n")
    (tmp_path / "s.py").write_text(source, encoding="utf-8")
    report = shapecheck("s.py", cwd=tmp_path, json_report=True, tmp=tmp_path).report
    found = sorted((f["line"], f["expression"]) for f in report["findings"] if f["code"] == "SC101")
    assert found == [(4, "a - b"), (6, "a + b")]


# -- items 10 and 11: nothing of the user's is hashed, compared or called -----------------------------


METACLASS_EQ = _program('''
    import numpy as np

    class Meta(type):
        def __eq__(cls, other):
            log.append(("eq", cls.__name__))
            return cls is other

    class Box(metaclass=Meta):
        def __init__(self, v):
            self.v = v
        def __add__(self, other):
            return Box(self.v + other)
        def __radd__(self, other):
            return Box(other + self.v)
        def scale(self, a):
            return self.v * a

    log = []
    k = Box(np.ones(3))
    s = k + np.zeros((2, 3))
    two = 2.0
    t = two + k
    u = k.scale(np.ones((2, 1)))
    k.apply = Box(np.ones(2))  # a callable attribute whose class has the metaclass: not a bound method
    Box.__call__ = lambda self, a: self.v * a
    p = k.apply(np.ones(2))
    w = np.sum(np.asarray(u), axis=0)
    for n in (2, 3, 2):
        x = Box(np.ones(n)) + np.ones(n)
    result = (s.v.shape, t.v.shape, u.shape, w.shape, x.v.shape, p.shape, len(log))
''')


def test_a_metaclass_with_eq_is_neither_hashed_nor_compared(tmp_path):
    plain, traced = compare(METACLASS_EQ, tmp_path)
    assert plain.namespace["result"] == traced.namespace["result"]
    assert traced.hooked > 0


def test_replaced_len_and_isinstance_are_never_called_by_the_recorder(tmp_path):
    """A mock-style script wraps builtins.len and isinstance in functions of its own (traced): the recorder
    called them, its hook ran again inside, and the script died of RecursionError (or hung)."""
    traced = _same_as_python(_program('''
        import builtins
        import numpy as np

        real_len, real_isinstance = builtins.len, builtins.isinstance
        calls = []

        def counting_len(x):
            calls.append("len")
            return real_len(x)

        def counting_isinstance(x, t):
            calls.append("isinstance")
            return real_isinstance(x, t)

        builtins.len, builtins.isinstance = counting_len, counting_isinstance
        rows = [np.ones(3), np.ones(3)]
        for n in range(1, 6):
            y = np.stack(rows) + np.ones((n, 1, 3))[0]
            z = np.concatenate(rows * n) * np.ones(3 * 2 * n)
        builtins.len, builtins.isinstance = real_len, real_isinstance
        print(y.shape, z.shape, calls.count("len"), calls.count("isinstance"))
    '''), tmp_path)
    assert "(2, 3) (30,)" in traced.stdout
    assert "ran to the end" in traced.stderr


# -- item 9: a guard swallows only shapecheck's own failures ------------------------------------------


SIGNAL_IN_SLOW_PATH = _program('''
    import signal, sys
    import numpy as np
    from shapecheck import _recorder
    from shapecheck._runner import compile_file

    def on_alarm(signum, frame):
        raise TimeoutError("the script's own time limit")

    def arm(frame, event, arg):
        # The alarm "fires" the moment the recorder starts describing a new signature (its slow path).
        if event == "call" and frame.f_code.co_name == "_new_record":
            sys.setprofile(None)
            signal.raise_signal(signal.SIGALRM)

    signal.signal(signal.SIGALRM, on_alarm)
    path = sys.argv[1]
    source = open(path).read()
    _recorder.install()
    code = compile_file(path, source)
    sys.setprofile(arm)
    try:
        exec(code, {"__name__": "__main__"})
    except TimeoutError as e:
        print("the program got", repr(e))
    else:
        print("the alarm was lost")
''')


def test_an_exception_from_a_signal_handler_in_the_slow_path_reaches_the_program(tmp_path):
    (tmp_path / "prog.py").write_text("import numpy as np\nfor n in range(1, 4):\n    z = np.ones(n) - np.ones((n, 1))\n")
    (tmp_path / "harness.py").write_text(SIGNAL_IN_SLOW_PATH)
    p = subprocess.run([sys.executable, "harness.py", "prog.py"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=120)
    assert p.stdout == "the program got TimeoutError(\"the script's own time limit\")\n", p.stdout + p.stderr


def test_the_shape_of_an_ndarray_subclass_is_read_without_its_own_property(tmp_path):
    """Keying an operand read `.shape`, which ran a property of the user's that numpy itself never calls (a
    line tracer saw it, and its exception was counted as shapecheck's): ndarray's own shape is read."""
    plain, traced = compare(_program('''
        import numpy as np

        class Odd(np.ndarray):
            @property
            def shape(self):
                raise RuntimeError("never read by numpy itself")

        a = np.ones(3).view(Odd)
        b = a - np.ones((2, 3))
        result = type(b).__name__, np.ndarray.__dict__["shape"].__get__(b)
        del a, b  # the comparison would read their `.shape`
    '''), tmp_path)
    assert plain.exception is None and traced.hooked > 0


# -- item 12: rewritten code shipped by value runs in another process ---------------------------------


def test_a_function_shipped_by_value_runs_in_a_fresh_worker(tmp_path):
    """joblib/loky, dask and ray send functions of the script by value with cloudpickle: the worker got
    the rewritten code and failed with NameError for `__sc_call__`.  (cloudpickle is in the test extra.)"""
    traced = _same_as_python(_program('''
        import subprocess, sys
        import cloudpickle
        import numpy as np

        class Layer:
            def __init__(self, w):
                self.w = w
            def __call__(self, x):
                return np.maximum(x @ self.w, 0) - np.ones(2)

        def step(x, w):
            y = Layer(w)(x)
            y += 1
            return [float(v) for v in np.sum(y, axis=0)]

        payload = cloudpickle.dumps((step, np.ones((3, 4)), np.ones((4, 2))))
        worker = "import pickle, sys; f, x, w = pickle.loads(sys.stdin.buffer.read()); print(f(x, w))"
        p = subprocess.run([sys.executable, "-c", worker], input=payload, capture_output=True)
        print(p.returncode, p.stdout.decode().strip(), p.stderr.decode().strip()[-300:])
        print(step(np.ones((3, 4)), np.ones((4, 2))))
    '''), tmp_path)
    assert traced.stdout.startswith("0 [12.0, 12.0] \n")


# -- item 14: two threads importing two of the script's modules ---------------------------------------


def test_threads_rewriting_at_once_never_share_site_ids(tmp_path):
    files = []
    for k in range(6):
        path = tmp_path / f"mod_{k}.py"
        body = "".join(f"x{i} = a{k} + b * {i}.0 - a{k}\n" for i in range(150))
        path.write_text(f"import numpy as np\na{k} = np.ones({k + 1})\nb = np.ones(({k + 1}, 1))\n{body}")
        files.append(str(path))
    codes: dict[str, object] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(files))

    def load(filename):
        try:
            barrier.wait()
            codes[filename] = compile_file(filename, open(filename).read())
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    _recorder.install()
    threads = [threading.Thread(target=load, args=(f,)) for f in files]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [live.log.site.id for live in _recorder.LIVE] == list(range(len(_recorder.LIVE)))
    for filename in files:
        exec(codes[filename], {"__name__": "m"})
    # Every operation was counted at a site of its own file: 150 lines x 2 operations, once each.
    for filename in files:
        path = _recorder.FILES[filename]
        ids = [live.log.site.id for live in _recorder.LIVE if live.log.site.path == path]
        assert ids == list(range(ids[0], ids[0] + len(ids)))
        runs = [sum(r.count for r in _recorder.LIVE[i].log.records) for i in ids
                if _recorder.LIVE[i].log.site.kind == "binop"]
        assert runs == [1] * 300


# -- item 22: an expression too deep to rewrite runs as written, and only it --------------------------


def test_a_500_term_expression_loses_only_its_own_line(tmp_path):
    terms = " + ".join(f"a{i % 3}" for i in range(500))
    source = (f"import numpy as np\na0 = np.zeros(3); a1 = np.ones(3); a2 = np.zeros(3)\ns = {terms}\n"
              f"bad = np.zeros(3) - np.zeros((3, 1))\nprint(s.sum())\n")
    compare(source, tmp_path)
    (tmp_path / "deep.py").write_text(source)
    report = shapecheck("deep.py", cwd=tmp_path, json_report=True, tmp=tmp_path).report
    assert [(f["code"], f["line"]) for f in report["findings"] if f["severity"] == "warning"] == [("SC101", 4)]
    assert report["untraced"] == ["deep.py:3"]
    assert report["internal_errors"] == 0


# -- item 24: past the signature cap a run is counted, not described ----------------------------------


def test_capped_signatures_are_counted_without_being_described(tmp_path, monkeypatch):
    described = []
    real = _recorder.describe
    monkeypatch.setattr(_recorder, "describe", lambda x: described.append(1) or real(x))
    path = tmp_path / "lengths.py"
    path.write_text("import numpy as np\nfor rep in range(3):\n    for n in range(1, 51):\n"
                    "        z = np.ones(n) * np.ones(n)\n")
    _recorder.install()
    first = _recorder.next_id()
    code = compile_file(str(path), path.read_text())
    exec(code, {"__name__": "__main__"})
    [log] = [lg for lg in _recorder.snapshot()[first:] if lg.site.kind == "binop"]
    assert len(log.records) == 32 and sum(r.count for r in log.records) == 32 * 3
    assert log.capped == 18 * 3
    assert len(described) <= 2 * 32  # two operands per kept signature, nothing for the others


# -- item 19: a class body's namespace is not asked for the hooks -------------------------------------


def test_a_prepare_namespace_sees_only_the_programs_own_lookups(tmp_path):
    plain, traced = compare(_program('''
        import numpy as np

        seen = []

        class Namespace(dict):
            def __getitem__(self, key):
                seen.append(key)
                return super().__getitem__(key)

        class Meta(type):
            @classmethod
            def __prepare__(mcs, name, bases):
                return Namespace()

        class Weights(metaclass=Meta):
            """Class-level arrays."""
            a = np.zeros(3)
            b = np.zeros((3, 1))
            c = a - b
            d = np.sum(c, axis=0)
    '''), tmp_path)
    assert traced.hooked > 0
    assert "'np'" in repr(traced.namespace["seen"])


def test_the_text_report_says_which_statement_ran_unchecked(tmp_path):
    terms = " + ".join(f"a{i % 2}" for i in range(500))
    (tmp_path / "deep.py").write_text(f"import numpy as np\na0 = np.zeros(3); a1 = np.ones(3)\ns = {terms}\n")
    run = shapecheck("deep.py", cwd=tmp_path)
    assert run.status == 0
    assert "shapecheck: ran as written, without shape checks: deep.py:3\n" in run.stderr
    assert "please report" not in run.stderr
