"""Findings since a mark: what the pytest plugin and the notebook extension use to report per test / cell."""

from __future__ import annotations

import numpy as np

from shapecheck import _recorder, _runner, _scope

SOURCE = """\
import numpy as np
def residual(y, y_hat):
    return y - y_hat
def update(b, db):
    b = b - 0.1 * db
    return b
"""


def _module(tmp_path):
    path = tmp_path / "scope_mod.py"
    path.write_text(SOURCE)
    code = _runner.compile_file(str(path), SOURCE)
    _recorder.install()
    ns: dict = {}
    exec(code, ns)
    return ns


def test_only_what_ran_after_the_mark_is_judged(tmp_path):
    ns = _module(tmp_path)
    m = _scope.mark()
    ns["residual"](np.zeros(3), np.zeros((3, 1)))
    [f] = _scope.findings_since(m)
    assert (f.code, f.site.line, f.result) == ("SC101", 3, (3, 3))

    m = _scope.mark()
    ns["residual"](np.zeros(3), np.zeros(3))  # same site, a clean signature
    assert _scope.findings_since(m) == []

    m = _scope.mark()
    ns["residual"](np.zeros(3), np.zeros((3, 1)))  # the old signature again: found again for this scope
    assert [f.code for f in _scope.findings_since(m)] == ["SC101"]
    assert _scope.hit_sites(m) == {f.site.id for f in _scope.findings_since(m)}


def test_shape_drift_belongs_to_the_scope_that_made_it(tmp_path):
    ns = _module(tmp_path)
    m = _scope.mark()
    ns["update"](np.zeros(3), np.zeros((1, 3)))
    assert [f.code for f in _scope.findings_since(m)] == ["SC103"]
    m = _scope.mark()
    ns["update"](np.zeros(3), np.zeros(3))
    assert _scope.findings_since(m) == []


def test_ignored_codes_are_dropped(tmp_path):
    ns = _module(tmp_path)
    m = _scope.mark()
    ns["residual"](np.zeros(2), np.zeros((2, 1)))
    assert _scope.findings_since(m, ignore=["sc101"]) == []
