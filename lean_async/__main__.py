"""``python -m lean_async``: the ``lean-async`` command line."""

import sys

from .cli import main

sys.exit(main())
