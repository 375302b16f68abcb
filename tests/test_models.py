"""Model names: the default follows the current line; deprecated models are said so."""

from __future__ import annotations

import logging

import pytest

from realtime_client import connect, models
from realtime_client.server import LocalServer


@pytest.mark.parametrize(
    ("model", "deprecated"),
    [
        ("gpt-realtime-2.1", False),
        ("gpt-realtime-2.1-mini", False),
        ("gpt-realtime-2", False),
        ("gpt-realtime", True),
        ("gpt-realtime-2025-08-28", True),
        ("gpt-realtime-mini-2025-12-15", True),
        ("gpt-audio-mini", True),
        ("gpt-4o-realtime-preview-2024-12-17", True),
        (None, False),
    ],
)
def test_deprecation_knows_the_2026_line(model: str | None, deprecated: bool) -> None:
    assert (models.deprecation(model) is not None) is deprecated


def test_the_default_is_the_current_model() -> None:
    assert models.DEFAULT_MODEL == "gpt-realtime-2.1"
    assert models.deprecation(models.DEFAULT_MODEL) is None


async def test_connecting_with_a_deprecated_model_is_logged_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(models, "_warned", set())
    caplog.set_level(logging.WARNING, logger="realtime_client")
    async with LocalServer(responder="echo", speed=0) as server:
        for _ in range(2):
            async with connect("gpt-realtime", url=server.url) as session:
                assert session.server_session is not None
        async with connect(url=server.url) as session:  # the default: current
            assert session.server_session is not None
            assert session.server_session.model == "gpt-realtime-2.1"  # type: ignore[union-attr]
    warnings = [r.getMessage() for r in caplog.records if "deprecated" in r.getMessage()]
    assert warnings == [
        "model gpt-realtime is deprecated: shuts down on 2027-01-20; use gpt-realtime-2.1"
    ]
