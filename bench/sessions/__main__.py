"""``python -m bench.sessions``: run the sessions-per-core benchmark."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
