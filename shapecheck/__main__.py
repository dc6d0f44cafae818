"""`python -m shapecheck SCRIPT [ARGS...]`.

The script's code is exec'd here, at module level, rather than in a function of `_cli`: the frames above
the script's own (seen by `inspect.stack()`, `warnings.warn(stacklevel=...)`, the recursion limit) are
then only runpy's two and this one.
"""

import sys

from ._cli import finish, start

_plan = start(sys.argv[1:])
if isinstance(_plan, int):
    raise SystemExit(_plan)
_exc = None
try:
    exec(_plan.prepared.code, _plan.prepared.globals)
except BaseException as _e:  # the script's own: `finish` reports it as Python would
    _exc = _e
raise SystemExit(finish(_plan, _exc))
