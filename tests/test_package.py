"""The public surface: a thin facade, and `import shapecheck` stays light."""

from __future__ import annotations

import subprocess
import sys

import shapecheck


def test_public_names_are_pinned():
    assert sorted(shapecheck.__all__) == sorted([
        "ShapeError", "ShapeWarning", "__version__", "trace",
        "gradcheck", "assert_gradients_close", "GradReport",
    ])
    for name in shapecheck.__all__:
        assert hasattr(shapecheck, name), name


def test_import_does_not_import_pandas():
    code = "import sys, shapecheck; print('pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_tracing_a_numpy_only_script_does_not_import_pandas(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("import sys\nimport numpy as np\nx = np.ones(3) + np.ones(3)\n"
                      "print('pandas' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-m", "shapecheck", str(script)], capture_output=True, text=True)
    assert out.stdout.strip() == "False"
