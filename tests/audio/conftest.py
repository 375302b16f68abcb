"""A private PulseAudio server with a null sink, for the real-device tests.

The server itself is the benchmarks' (``bench._pulse``): per-user, its own runtime dir,
ALSA's ``default`` routed to it for PortAudio. Here it runs once per test session, on the
sink ``rt_test``; a missing part skips the device tests, a server that does not start
fails them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from bench._pulse import PulseFailed, PulseServer, missing, running

__all__ = ["PulseServer"]

SINK = "rt_test"


@pytest.fixture(scope="session")
def pulse_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PulseServer]:
    """Start PulseAudio with a null sink ``rt_test`` for the session; stop it after."""
    reason = missing()
    if reason is not None:
        pytest.skip(reason)
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(running(tmp_path_factory.mktemp("pulse"), SINK))
        except PulseFailed as exc:
            pytest.fail(str(exc))
        yield server
