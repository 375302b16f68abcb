"""Run every benchmark in turn: ``python -m bench`` (``--quick`` for a smoke run)."""

from __future__ import annotations

import importlib
import sys


def main(argv: list[str] | None = None) -> int:
    """Run every bench module in turn (the campaigns last); non-zero if any failed."""
    args = list(sys.argv[1:] if argv is None else argv)
    status = 0
    for name in (
        "codec",
        "resample",
        "sessions",
        "webrtc",
        "aec",
        "vad",
        "soak",
        "fuzz",
        "hostile",
        "drops",
        "abuse",
    ):
        try:
            module = importlib.import_module(f"bench.{name}")
        except ImportError as exc:
            print(f"bench.{name}: not available ({exc})")
            continue
        print(f"\n## bench.{name}\n", flush=True)
        status |= int(module.main(args) or 0)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
