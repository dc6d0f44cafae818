"""`@shapecheck.trace` hardening (issue 12, items 7, 8, 15, 16, 18, 25, 26): each test failed before its fix."""

from __future__ import annotations

import asyncio
import importlib.util
import linecache
import re
import sys
import textwrap
import warnings

import numpy as np
import pytest

import shapecheck
from shapecheck import ShapeError, ShapeWarning, _recorder

pytest_plugins = ["pytester"]


def _load(path, text: str):
    """Import `text` as a module from the file `path` (the way a notebook or a test module gets its code)."""
    path.write_text(textwrap.dedent(text))
    name = f"sc_hardening_{path.stem}_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# -- item 7: async generators ------------------------------------------------


def test_async_generator_warns_when_its_iteration_ends():
    @shapecheck.trace
    async def stream(y, y_hat):
        for _ in range(2):
            yield y - y_hat

    async def consume(agen):
        return [v.shape async for v in agen]

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        agen = stream(np.zeros(3), np.zeros((3, 1)))  # creating it runs nothing: nothing to say yet
    with pytest.warns(ShapeWarning, match=r"SC101 warning at .*`y - y_hat`") as caught:
        assert asyncio.run(consume(agen)) == [(3, 3), (3, 3)]
    assert [w.message.code for w in caught] == ["SC101"]


def test_async_generator_strict_raises_when_exhausted():
    @shapecheck.trace(strict=True)
    async def stream(y, y_hat):
        yield y - y_hat

    async def consume():
        agen = stream(np.zeros(3), np.zeros((3, 1)))
        assert (await agen.__anext__()).shape == (3, 3)
        await agen.__anext__()

    with pytest.raises(ShapeError, match="SC101"):
        asyncio.run(consume())


async def _protocol(agen) -> list:
    """Drive an async generator through asend, athrow and aclose; note every outcome."""
    out = []

    async def step(label, aw):
        try:
            value = await aw
            out.append((label, "value", value.tolist() if isinstance(value, np.ndarray) else value))
        except BaseException as e:  # noqa: BLE001 - the outcome itself is compared
            out.append((label, type(e).__name__, str(e)))

    await step("first", agen.asend(None))
    await step("send", agen.asend(np.ones(2)))
    await step("throw caught", agen.athrow(KeyError("k")))
    await step("send", agen.asend(np.full(2, 3.0)))
    await step("close", agen.aclose())
    await step("after close", agen.asend(None))
    return out


async def echo(log):
    total = np.zeros(2)
    try:
        while True:
            try:
                got = yield total
            except KeyError as e:
                log.append(f"caught {e}")
                got = np.full(2, 10.0)
            total = total + got
    finally:
        log.append("cleaned up")


async def stubborn(log):
    try:
        yield np.zeros(2)
    finally:
        yield np.ones(2)  # ignores GeneratorExit: aclose raises RuntimeError


async def raises_back(log):
    x = yield np.zeros(2)
    raise ValueError(f"bad {x.shape}")


@pytest.mark.parametrize("agen_fn", [echo, stubborn, raises_back])
def test_async_generator_protocol_is_unchanged(agen_fn):
    plain_log, traced_log = [], []
    plain = asyncio.run(_protocol(agen_fn(plain_log)))
    traced_fn = shapecheck.trace(agen_fn)
    assert traced_fn is not agen_fn and hasattr(traced_fn, "__shapecheck_traced__")
    traced = asyncio.run(_protocol(traced_fn(traced_log)))
    assert traced == plain
    assert traced_log == plain_log


# -- item 8: the code it was given, not the file's current text ---------------

MODULE_V1 = """\
    import numpy as np

    def scale(x):
        return x + x
"""


def test_edited_file_runs_the_function_as_defined_untraced(tmp_path):
    mod = _load(tmp_path / "cell.py", MODULE_V1)
    # Edited without a reload (autoreload off, a notebook's module): same lines, a new body.
    (tmp_path / "cell.py").write_text(textwrap.dedent(MODULE_V1).replace("x + x", "x * 1000"))
    linecache.checkcache(str(tmp_path / "cell.py"))
    with pytest.warns(ShapeWarning, match=r"shapecheck.trace: scale runs untraced: .*cell.py no longer holds "
                                          r"the code it was defined with \(edited after import\?\)") as caught:
        traced = shapecheck.trace(mod.scale)
    assert len(caught) == 1
    assert traced is mod.scale
    assert traced(np.ones(2)).tolist() == [2.0, 2.0]


def test_moved_lines_are_an_edit_too(tmp_path):
    mod = _load(tmp_path / "moved.py", MODULE_V1)
    text = textwrap.dedent(MODULE_V1)
    (tmp_path / "moved.py").write_text(text.replace("import numpy as np\n", "import numpy as np\n# note\n"))
    linecache.checkcache(str(tmp_path / "moved.py"))
    with pytest.warns(ShapeWarning, match="scale runs untraced"):
        assert shapecheck.trace(mod.scale) is mod.scale


def test_unedited_file_is_traced(tmp_path):
    mod = _load(tmp_path / "same.py", MODULE_V1 + """
    def later(a, b):
        return a - b
    """)
    with open(tmp_path / "same.py", "a") as f:
        f.write("\nEXTRA = 1  # an edit below the function does not touch its code\n")
    linecache.checkcache(str(tmp_path / "same.py"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        traced = shapecheck.trace(mod.scale)
    assert traced is not mod.scale and traced(np.ones(2)).tolist() == [2.0, 2.0]


# -- item 15: a closure inside a method mangles private names -----------------


def test_closure_inside_a_method_keeps_name_mangling():
    class Net:
        def __init__(self):
            self.__w = np.eye(2) * 2

        def forward(self, x):
            @shapecheck.trace
            def inner(x):
                return x @ self.__w

            return inner(x)

    assert Net().forward(np.ones((3, 2))).tolist() == [[2.0, 2.0]] * 3


def test_closure_nested_twice_inside_a_method():
    class Deep:
        __scale = 3.0

        def forward(self, a, b):
            def middle():
                @shapecheck.trace
                def inner():
                    return (a - b) * self.__scale
                return inner()
            return middle()

    with pytest.warns(ShapeWarning, match="SC101"):
        assert Deep().forward(np.zeros(2), np.ones((2, 1))).shape == (2, 2)


# -- item 16: only the function's own source is parsed --------------------------

WITH_BAD_ESCAPE = r"""
    import numpy as np

    PATTERN = "\d+"  # invalid escape: a compile-time warning (an error under -W error)

    def diff(a, b):
        return a - b
"""


def test_a_warning_elsewhere_in_the_file_does_not_stop_tracing(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mod = _load(tmp_path / "escapes.py", WITH_BAD_ESCAPE)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # as under `python -W error`
        traced = shapecheck.trace(mod.diff)
    assert hasattr(traced, "__shapecheck_traced__")
    with pytest.warns(ShapeWarning, match="SC101"):
        traced(np.zeros(3), np.zeros((3, 1)))


def test_the_functions_own_compile_time_warnings_are_not_repeated(tmp_path):
    text = WITH_BAD_ESCAPE.replace("return a - b", 'return a - b if "\\d" else b')
    with warnings.catch_warnings(record=True) as at_import:
        warnings.simplefilter("always")
        mod = _load(tmp_path / "own_escape.py", text)
    assert len(at_import) == 2  # Python's own: one per string
    with warnings.catch_warnings(record=True) as at_trace:
        warnings.simplefilter("always")
        traced = shapecheck.trace(mod.diff)
    assert at_trace == []
    assert hasattr(traced, "__shapecheck_traced__")


def test_subprocess_under_W_error_with_a_cached_module(tmp_path):
    (tmp_path / "lib.py").write_text(textwrap.dedent(WITH_BAD_ESCAPE).replace(
        "def diff", "import shapecheck\n\n@shapecheck.trace\ndef diff"))
    import subprocess
    first = subprocess.run([sys.executable, "-W", "ignore", "-c", "import py_compile; py_compile.compile('lib.py')"],
                           cwd=tmp_path, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr  # lib's bytecode is cached: importing it does not compile it
    run = subprocess.run([sys.executable, "-W", "error", "-c",
                          "import lib, numpy as np; print(lib.diff(np.ones(2), np.ones(2)), "
                          "hasattr(lib.diff, '__shapecheck_traced__'))"],
                         cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout == "[0. 0.] True\n"
    assert run.stderr == ""


# -- item 18: pytest's assertion messages inside traced test functions ---------


ASSERTING_TESTS = """
    import numpy as np
    import shapecheck

    @shapecheck.trace
    def check(y, y_hat):
        err = ((y - y_hat) ** 2).mean()
        assert (3,) == (4,)

    def test_rich_message():
        check(np.zeros(3), np.zeros((3, 1)))

    @shapecheck.trace
    def check_in_assert(y, y_hat):
        assert ((y - y_hat) ** 2).mean() > 1

    def test_shapes_inside_an_assert():
        check_in_assert(np.zeros(3), np.zeros((3, 1)))
"""


def _failure_lines(result) -> list[str]:
    """pytest's explanation lines (`E ...`), without object addresses."""
    return [re.sub(r" at 0x[0-9a-f]+", "", line) for line in result.stdout.lines if line.startswith("E ")]


def test_pytest_assertion_messages_survive(pytester):
    pytester.makepyfile(test_traced=ASSERTING_TESTS, test_plain=ASSERTING_TESTS.replace("@shapecheck.trace", ""))
    traced = pytester.runpytest_subprocess("-p", "no:cacheprovider", "test_traced.py")
    plain = pytester.runpytest_subprocess("-p", "no:cacheprovider", "test_plain.py")
    traced.assert_outcomes(failed=2)
    assert "runs untraced" not in traced.stdout.str()
    traced.stdout.fnmatch_lines(["*assert (3,) == (4,)*", "*At index 0 diff: 3 != 4*"])
    assert _failure_lines(traced) == _failure_lines(plain)  # no shapecheck note on an AssertionError either
    assert traced.stdout.str().count("ShapeWarning: SC101") == 2  # one per traced function, the assert's too


def test_pytest_assertion_pass_hook_still_runs(pytester):
    pytester.makeini("[pytest]\nenable_assertion_pass_hook = true\n")
    pytester.makeconftest("""
        def pytest_assertion_pass(item, lineno, orig, expl):
            print("passed:", lineno, orig, expl)
    """)
    pytester.makepyfile(test_hook="""
        import numpy as np
        import shapecheck

        @shapecheck.trace
        def check(a):
            assert a.sum() == 2

        def test_it():
            assert hasattr(check, "__shapecheck_traced__")
            check(np.ones(2))
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["passed: 6 a.sum() == 2 *2.0* == 2"])


# -- item 25: a call costs its own sites ---------------------------------------


def test_a_traced_call_does_not_snapshot_every_site(monkeypatch):
    @shapecheck.trace
    def diff(a, b):
        return a - b

    def everything():
        raise AssertionError("a traced call looked at every site of the process")

    monkeypatch.setattr(_recorder, "snapshot", everything)
    with pytest.warns(ShapeWarning, match="SC101"):
        diff(np.zeros(3), np.zeros((3, 1)))  # a new signature: the rules run, on this function's sites
    diff(np.zeros(3), np.zeros(3))


# -- item 26: the same def traced again reuses its compiled code ---------------


def test_a_factory_compiles_its_def_once():
    def make(scale):
        @shapecheck.trace
        def layer(x, b):
            return x * scale - b
        return layer

    first = make(2.0)
    before = _recorder.next_id()
    layers = [make(float(k)) for k in range(50)]
    assert _recorder.next_id() == before  # no new sites
    assert all(lay.__shapecheck_traced__.__code__ is first.__shapecheck_traced__.__code__ for lay in layers)
    x = np.ones(2)
    assert [lay(x, 1.0).tolist() for lay in layers[:3]] == [[-1.0, -1.0], [0.0, 0.0], [1.0, 1.0]]
    with pytest.warns(ShapeWarning, match="SC101") as caught:
        layers[0](np.zeros(3), np.zeros((3, 1)))
        layers[1](np.zeros(3), np.zeros((3, 1)))  # the same finding at the same site: said once
    assert len(caught) == 1


def test_async_generator_closed_early_still_warns():
    @shapecheck.trace(strict=True)
    async def stream(y, y_hat):
        while True:
            yield y - y_hat

    async def first_then_close():
        agen = stream(np.zeros(3), np.zeros((3, 1)))
        shape = (await agen.__anext__()).shape
        await agen.aclose()  # closing is not a failure of the function: warned, not raised, as for a generator
        return shape

    with pytest.warns(ShapeWarning, match="SC101"):
        assert asyncio.run(first_then_close()) == (3, 3)


def test_imports_found_in_the_file_when_the_bytecode_does_not_say(monkeypatch, tmp_path):
    # Where CPython lays out a call through a module-level import differently (another version), the
    # file's import lines tell which names were imported.
    from shapecheck import _trace
    monkeypatch.setattr(_trace, "_calls_through_imports", lambda code: frozenset())
    mod = _load(tmp_path / "imports.py", """
        import numpy as np
        from pathlib import (
            Path,
        )

        def f(x):
            return np.sum(x) + len(Path.cwd().parts) * 0
    """)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        traced = shapecheck.trace(mod.f)
    assert hasattr(traced, "__shapecheck_traced__") and traced(np.ones(3)) == 3.0


# -- semantics: the traced code is the function's own, differentially -----------


def _outcome(fn, *args):
    """Value, exception, the failing frame's position, and the warnings of one call."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", category=ShapeWarning)
        try:
            value, error, where = fn(*args), None, None
            value = value.tolist() if isinstance(value, np.ndarray) else value
        except Exception as e:  # noqa: BLE001 - the outcome itself is compared
            value, error = None, (type(e).__name__, str(e))
            tb = e.__traceback__
            while tb.tb_next is not None:
                tb = tb.tb_next
            positions = list(tb.tb_frame.f_code.co_positions())[tb.tb_lasti // 2]
            where = (tb.tb_frame.f_code.co_qualname, tb.tb_lineno, positions)
    return value, error, where, [(type(w.message).__name__, str(w.message), w.lineno) for w in caught]


class Owner:
    def __init__(self):
        self.__w = np.ones((3, 2))

    def method(self, x, y):
        def closure(k):
            z = x @ self.__w
            return z / y + k
        return closure


def plain_layer(W, x):
    z = W @ x
    return np.log(z - 3.0)


@pytest.mark.parametrize("make, args", [
    (lambda: plain_layer, (np.ones((2, 3)), np.ones((3, 1)))),  # log(0): a RuntimeWarning at line 2
    (lambda: plain_layer, (np.ones((2, 3)), np.ones((2, 1)))),  # a matmul ValueError
    (lambda: Owner().method(np.ones((4, 3)), np.zeros(2)), (1.0,)),  # divide by zero, private names
    (lambda: Owner().method(np.ones((4, 4)), np.ones(2)), (1.0,)),  # a crash in a closure of a method
])
def test_traced_function_behaves_as_its_own_code(make, args):
    fn = make()
    traced = shapecheck.trace(fn)
    assert traced is not fn
    assert traced.__shapecheck_traced__.__code__.co_qualname == fn.__code__.co_qualname
    assert _outcome(traced, *args) == _outcome(fn, *args)


def test_a_lambda_is_refused_with_a_true_reason():
    double = lambda x: x * 2  # noqa: E731
    with pytest.warns(ShapeWarning, match="runs untraced: a lambda has no def of its own; define the function "
                                          "with def"):
        assert shapecheck.trace(double) is double


IPYTHON_CELLS = r'''
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
cells = [
    "import numpy as np, shapecheck, warnings",
    "@shapecheck.trace\ndef f(a, b):\n    return np.dot(a, b) + a",
    "class C:\n    def __init__(self):\n        self.__w = np.ones(3)\n    def m(self, x):\n"
    "        @shapecheck.trace\n        def inner():\n            return x - self.__w\n        return inner",
    "print(hasattr(f, '__shapecheck_traced__'), f(np.ones(2), np.ones(2)), C().m(np.ones(3))().shape)",
    "C().m(np.ones(3)[:, None])()",
]
for cell in cells:
    shell.run_cell(cell)
'''


def test_notebook_cells_are_traced(tmp_path):
    pytest.importorskip("IPython")
    import subprocess
    run = subprocess.run([sys.executable, "-c", IPYTHON_CELLS], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "runs untraced" not in run.stdout + run.stderr
    assert "True [3. 3.] (3,)" in run.stdout
    assert "SC101 warning at " in run.stderr and "`x - self.__w`" in run.stderr  # the last cell's (3, 1) - (3,)


def test_a_traced_function_shipped_by_value_runs_in_a_fresh_worker(tmp_path):
    """joblib/loky send functions by value with cloudpickle: a worker without shapecheck's hooks must run the
    traced function's code as the plain one (cloudpickle is in the test extra)."""
    script = tmp_path / "ship.py"
    script.write_text(textwrap.dedent('''
        import pickle, subprocess, sys
        import cloudpickle
        import numpy as np
        import shapecheck

        @shapecheck.trace
        def step(x, w):
            return [float(v) for v in np.sum(x @ w - 1, axis=0)]

        payload = cloudpickle.dumps((step, np.ones((3, 4)), np.ones((4, 2))))
        worker = "import pickle, sys; f, x, w = pickle.loads(sys.stdin.buffer.read()); print(f(x, w))"
        p = subprocess.run([sys.executable, "-c", worker], input=payload, capture_output=True)
        print(p.returncode, p.stdout.decode().strip(), p.stderr.decode().strip()[-300:])
    '''))
    import subprocess
    import sys

    p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert p.stdout == "0 [9.0, 9.0] \n", p.stderr
