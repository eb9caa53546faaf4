"""Entry point of ``python -m dvo.tools.simulate``."""

import sys

from .cli import main

sys.exit(main())
