"""`python -m shapecheck SCRIPT [ARGS...]`."""

from ._cli import main

raise SystemExit(main())
