"""``python -m aqrt``: the same as the ``aqrt`` command."""

import sys

from .cli import main

sys.exit(main())
