"""The command-line programs: ``realtime-replay`` (headless) and ``realtime-chat`` (voice)."""
