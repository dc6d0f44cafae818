"""The report as people and machines read it: text, Markdown, and assert_gradients_close."""

from __future__ import annotations

import re
import traceback

import numpy as np
import pytest

from gradnets import colmajor_tanh, rowmajor_relu
from shapecheck import assert_gradients_close, gradcheck


@pytest.fixture(scope="module")
def sign_report():
    loss, grads, params = colmajor_tanh(bug=("sign", "W2"))
    return gradcheck(loss, grads, params, mode="full")


def test_text_layout(sign_report):
    lines = str(sign_report).splitlines()
    assert re.fullmatch(r"gradient check FAILED: 1 of 4 parameters wrong: W2 \(sign\) \(mode full, \d+ loss evaluations\)",
                        lines[0])
    assert lines[1] == ""
    assert re.match(r"parameter\s+shape\s+grad shape\s+dtype\s+status\s+checked\s+max abs err\s+rel err\s+worst at\s+"
                    r"analytic\s+numeric\s+diagnosis$", lines[2])
    assert lines[3].startswith("---")
    assert re.match(r"W1\s+\(4, 5\)\s+\(4, 5\)\s+float64\s+ok\s+20/20\s", lines[4])
    assert re.match(r"W2\s+\(3, 4\)\s+\(3, 4\)\s+float64\s+wrong\s+12/12\s+\S+\s+1\s+\(\d, \d\)\s+\S+\s+\S+\s+sign$", lines[6])
    text = "\n".join(lines)
    assert re.search(r"^W2 \(dW2\): opposite sign: dW2 is the negative of the numeric gradient", text, re.M)
    assert re.search(r"^    Mismatched elements: 12 / 12 \(100%\)$", text, re.M)
    assert re.search(r"^    Max absolute difference: \S+ at \(\d, \d\) \(analytic \S+, numeric \S+\)$", text, re.M)
    assert re.search(r"^    Max relative difference: 2$", text, re.M)
    assert re.search(r"^Only W2 is wrong; the other gradients match", text, re.M)
    assert re.search(r"^  - grads entries that match no parameter \(ignored\): dA1$", text, re.M)


def test_a_passing_report_is_short():
    loss, grads, params = rowmajor_relu()
    text = str(gradcheck(loss, grads, params, mode="full"))
    assert text.splitlines()[0] == "gradient check passed: 4 parameters agree on 59 entries (mode full, 120 loss evaluations)"
    assert "Mismatched" not in text and "Look first" not in text


def test_shape_and_auto_rows_read_plainly():
    loss, grads, params = colmajor_tanh(bug=("transpose", "W1"))
    text = str(gradcheck(loss, grads, params))
    assert re.search(r"^W1\s+\(4, 5\)\s+\(5, 4\)\s+float64\s+shape\s+4/20 \+3 dir\s+-\s+-\s+-\s+-\s+-\s+transpose$", text, re.M)
    assert "auto mode compared W1, W2 along 3 directions and 4 sampled entries" in text


def test_markdown(sign_report):
    md = sign_report.to_markdown()
    lines = md.splitlines()
    assert lines[0].startswith("**gradient check FAILED**: 1 of 4 parameters wrong: W2 (sign)")
    assert lines[2].startswith("| parameter ") and re.fullmatch(r"\|[-:| ]+\|", lines[3])
    assert sum(1 for line in lines if line.startswith("| ")) == 5
    assert any(line.startswith("- **W2 (dW2)**: opposite sign") for line in lines)
    assert any(line == "  - Mismatched elements: 12 / 12 (100%)" for line in lines)


def test_repr(sign_report):
    assert repr(sign_report) == "<GradReport passed=False mode='full' rows=4 wrong: W2 sign>"


def test_assert_gradients_close_passes_quietly_and_returns_the_report():
    loss, grads, params = rowmajor_relu()
    assert assert_gradients_close(loss, grads, params).passed


def test_assert_gradients_close_raises_the_report_and_hides_its_frames():
    loss, grads, params = rowmajor_relu(bug=("scale", "b2"))
    with pytest.raises(AssertionError) as info:
        assert_gradients_close(loss, grads, params, mode="full")
    assert str(info.value) == str(gradcheck(loss, grads, params, mode="full"))
    # pytest drops frames whose locals set __tracebackhide__: ours must.
    frames = [f for f, _ in traceback.walk_tb(info.value.__traceback__)]
    ours = [f for f in frames if f.f_code.co_name == "assert_gradients_close"]
    assert ours and ours[0].f_locals.get("__tracebackhide__") is True
    shown = [entry.name for entry in info.traceback.filter(info)]
    assert "assert_gradients_close" not in shown


def test_float32_note():
    loss, grads, params = rowmajor_relu(dtype=np.float32)
    r = gradcheck(loss, grads, params)
    assert r.passed and any("float32 parameters get a larger step and rtol" in n for n in r.notes)
