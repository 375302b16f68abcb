"""``python -m realtime_client.apps.replay``: the ``realtime-replay`` command."""

from __future__ import annotations

import sys

from ._cli import main

sys.exit(main())
