"""Entry point of ``python -m dvo.tools.simulate``: a DvoError becomes one line and exit 1."""

import sys

from dvo.errors import DvoError

from .cli import main

try:
    sys.exit(main())
except DvoError as exc:
    print(f"simulate: {exc}", file=sys.stderr)
    sys.exit(1)
