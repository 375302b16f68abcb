"""The Realtime models: which one is the default, which are deprecated and until when.

From protocol.md §16.1 (December 2026): ``gpt-realtime-2.1`` and ``gpt-realtime-2.1-mini``
are the current models (reasoning, spoken preambles, a 128k context);
``gpt-realtime``, ``gpt-realtime-mini`` and ``gpt-audio-mini`` are deprecated and shut
down on 2027-01-20; the ``gpt-4o-*-realtime-preview`` family they replaced is gone from
the real service (it spoke the beta protocol, switched off in May 2026) and lives on in
Azure-style and beta-shaped servers.

:func:`deprecation` tells whether a model is on its way out; :func:`connect` logs it once
per model so an app is not surprised by the shutdown.
"""

from __future__ import annotations

import logging
import re

__all__ = ["DEFAULT_MODEL", "DEPRECATED_MODELS", "deprecation", "warn_if_deprecated"]

logger = logging.getLogger("realtime_client")

#: The model :func:`~realtime_client.connect`, the apps and the helpers use by default.
DEFAULT_MODEL = "gpt-realtime-2.1"

#: Deprecated model (or snapshot prefix) → when the real service stops serving it.
DEPRECATED_MODELS: dict[str, str] = {
    "gpt-realtime": "shuts down on 2027-01-20; use gpt-realtime-2.1",
    "gpt-realtime-mini": "shuts down on 2027-01-20; use gpt-realtime-2.1-mini",
    "gpt-audio-mini": "shuts down on 2027-01-20; use gpt-realtime-2.1-mini",
    "gpt-4o-realtime-preview": "retired with the beta protocol (May 2026); use gpt-realtime-2.1",
    "gpt-4o-mini-realtime-preview": (
        "retired with the beta protocol (May 2026); use gpt-realtime-2.1-mini"
    ),
}

_warned: set[str] = set()
_SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}$")


def deprecation(model: str | None) -> str | None:
    """Why ``model`` is deprecated and until when, or ``None`` for a current model.

    Dated snapshots count as their model (``gpt-realtime-2025-08-28`` is ``gpt-realtime``).
    """
    if not model:
        return None
    base = _SNAPSHOT.sub("", model)
    return DEPRECATED_MODELS.get(base)


def warn_if_deprecated(model: str | None) -> None:
    """Log a warning (once per model and process) if ``model`` is deprecated."""
    note = deprecation(model)
    if note is not None and model not in _warned:
        _warned.add(model or "")
        logger.warning("model %s is deprecated: %s", model, note)
