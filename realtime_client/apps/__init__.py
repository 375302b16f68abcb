"""The command-line programs: ``realtime-replay`` (headless) and ``realtime-chat`` (voice)."""

__all__: list[str] = []
