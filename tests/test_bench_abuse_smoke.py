"""Smoke test of the server-abuse campaign (``python -m bench.abuse``)."""

from __future__ import annotations

from bench import abuse

__all__: list[str] = []


async def test_abusive_connections_are_closed_as_documented() -> None:
    result = await abuse.run_abuse(turns=20, each=2, handshake_timeout_s=1.0)
    assert len(result.alone_ms) == len(result.abused_ms) == 20
    assert result.loop_errors == []
    for kind in (
        "idle",
        "half-open",
        "slowloris",
        "invalid JSON flood",
        "binary flood",
        "never reads",
    ):
        n, ok, what = result.verdicts[kind]
        assert (n, ok) == (2, 2), (kind, what)
    report = abuse.render(result)
    assert "ratio p50" in report and "| never reads | 2 |" in report


def test_a_connection_not_closed_as_documented_is_a_failure() -> None:
    assert abuse._verdict("slowloris", [None, 1.0], 1.0)[1] == 1
    assert abuse._verdict("binary flood", [1008, None], 1.0)[1] == 1
    # A non-reader counts only if the server closed it for not reading.
    assert abuse._verdict("never reads", [1006, 1006], 1.0, not_reading=1)[1] == 1
    assert abuse._verdict("never reads", [None, 1008], 1.0, not_reading=2)[1] == 1
    result = abuse.AbuseResult(verdicts={"idle": (2, 1, "")})
    assert result.failures == 1
    # An error the event loop caught (a failing timer, say) is a failure too.
    result = abuse.AbuseResult(verdicts={"idle": (2, 2, "")}, loop_errors=["timer failed"])
    assert result.failures == 1 and "errors caught by the event loop: 1" in abuse.render(result)
