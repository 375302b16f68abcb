"""The large-audio-delta fast path gives exactly what decoding the whole frame gives.

``parse_server_event`` cuts a large delta's base64 payload out of the frame instead of
having orjson scan it. Every frame, well-formed or not, must come out the same as through
the plain path (``orjson.loads`` first, then the dict parser): the same event, the same
``raw`` and wire dict, or the same typed error.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from realtime_client import events as ev
from realtime_client.errors import InvalidEventError
from realtime_client.events.codec import _SPLIT_MIN_CHARS, _split_audio_delta

_RNG = np.random.default_rng(7)


def frame(ms: int = 200, **extra: Any) -> bytes:
    pcm = _RNG.integers(-32768, 32767, 24 * ms, dtype=np.int16).astype("<i2").tobytes()
    event = {
        "type": "response.output_audio.delta",
        "event_id": "event_C5cD0eF1gH2iJ3kL4mN5o",
        "response_id": "resp_C5cD0eF1gH2iJ3kL4mN5o",
        "item_id": "item_C5cD0eF1gH2iJ3kL4mN5o",
        "output_index": 0,
        "content_index": 0,
        "delta": base64.b64encode(pcm).decode("ascii"),
        **extra,
    }
    return orjson.dumps(event)


def outcome(data: bytes | str, *, whole: bool) -> Any:
    """What parsing gives: (class, wire dict, raw, pcm) or the error type."""
    try:
        if whole:
            try:
                obj = orjson.loads(data)
            except orjson.JSONDecodeError:
                return InvalidEventError  # not JSON: the parser must say so, typed
            event = ev.parse_server_event(obj)
        else:
            event = ev.parse_server_event(data)
    except InvalidEventError:
        return InvalidEventError
    pcm: Any = None
    if isinstance(event, ev.ResponseOutputAudioDelta):
        try:
            pcm = event.pcm16().tobytes()
        except InvalidEventError:
            pcm = InvalidEventError
    return type(event), event.to_dict(), event.raw, pcm


def same_both_ways(data: bytes | str) -> None:
    assert outcome(data, whole=False) == outcome(data, whole=True)


def test_large_frames_take_the_split_path_and_match() -> None:
    for ms in (100, 200, 1000):
        data = frame(ms)
        assert len(data) >= _SPLIT_MIN_CHARS
        whole = orjson.loads(data)
        split = _split_audio_delta(data)
        assert split is not None
        assert split[0] == whole
        assert split[1] == base64.b64decode(whole["delta"])
        same_both_ways(data)
        same_both_ways(data.decode())
        event = ev.parse_server_event(data)
        assert isinstance(event, ev.ResponseOutputAudioDelta)
        assert event.raw == orjson.loads(data)


@pytest.mark.parametrize(
    "data",
    [
        # An escaped slash is legal JSON and means "/": the split path must not keep "\/".
        frame().replace(b"/", b"\\/", 3),
        # A second "delta" key: orjson keeps the last one.
        frame()[:-1] + b',"delta":""}',
        frame()[:-1] + b',"delta":"AAAA"}',
        # Whitespace after the colon, a nested "delta" key, extra fields.
        frame().replace(b'"delta":"', b'"delta": "'),
        frame(meta={"delta": "x"}),
        frame(obfuscation="abc"),
        # Non-ASCII in the payload, a broken tail, a payload that is not base64.
        frame().replace(b"A", "é".encode(), 1),
        frame()[:-2],
        frame().replace(b"A", b"!", 5),
        # Not an audio delta, but a large frame with a "delta" string.
        frame().replace(b"response.output_audio.delta", b"response.output_text.delta"),
        frame().replace(b'"output_index":0', b'"output_index":"0"'),
        # Invalid JSON that only the payload shows: a raw control character in it.
        frame().replace(b'"delta":"', b'"delta":"AB\nCD', 1),
        # Keys the cut-out "delta":" does not match, which orjson still reads.
        frame()[:-1] + b',"delta": ""}',
        frame()[:-1].replace(b'"delta":"', b'"x":{"delta":"', 1) + b'},"delta": ""}',
        frame()[:-1] + b',"x\\"delta":"","delta": ""}',
        frame()[:-1] + b',"\\u0064elta":""}',
        # Whitespace inside the payload, and a payload that is only almost base64.
        frame().replace(b'"delta":"', b'"delta":" ', 1),
        frame().replace(b'"delta":"', b'"delta":"A', 1),
    ],
    ids=[
        "escaped-slash",
        "duplicate-empty",
        "duplicate",
        "space",
        "nested",
        "extra-field",
        "non-ascii",
        "truncated",
        "bad-base64",
        "text-delta",
        "wrong-type",
        "control-char",
        "duplicate-spaced",
        "nested-then-top",
        "escaped-quote-key",
        "unicode-escaped-key",
        "space-in-payload",
        "bad-padding",
    ],
)
def test_unusual_frames_match_the_whole_frame_path(data: bytes) -> None:
    same_both_ways(data)
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return
    same_both_ways(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    position=st.integers(min_value=0, max_value=10_000),
    insert=st.binary(min_size=0, max_size=3),
    delete=st.integers(min_value=0, max_value=3),
)
def test_mutated_large_frames_match_the_whole_frame_path(
    position: int, insert: bytes, delete: int
) -> None:
    base = frame(200)
    # Mutations land anywhere, the short fields and the payload's edges most of all.
    at = position % len(base) if position < 9_000 else len(base) - 1 - position % 64
    data = base[:at] + insert + base[at + delete :]
    same_both_ways(data)


def test_decoded_payload_is_used_only_while_delta_is_unchanged() -> None:
    data = frame(200)
    event = ev.parse_server_event(data)
    assert isinstance(event, ev.ResponseOutputAudioDelta)
    expected = np.frombuffer(base64.b64decode(orjson.loads(data)["delta"]), "<i2")
    assert np.array_equal(event.pcm16(), expected)
    assert event.audio_bytes() == expected.tobytes()
    event.delta = base64.b64encode(b"\x01\x00\x02\x00").decode()
    assert event.pcm16().tolist() == [1, 2]
    copied = ev.parse_server_event(data).model_copy(update={"delta": "AwAEAA=="})
    assert copied.pcm16().tolist() == [3, 4]
