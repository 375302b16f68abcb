"""Property tests: random and mutated input never raises anything but our typed error."""

from __future__ import annotations

import copy
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from realtime_client import events as ev
from realtime_client.errors import InvalidEventError
from tests.events.samples import CLIENT_SAMPLES, SERVER_SAMPLES

_json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
_json = st.recursive(
    _json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _parse_all_ways(data: Any) -> None:
    for dialect in ("ga", "beta"):
        for parse in (ev.parse_server_event, ev.parse_client_event):
            try:
                event = parse(data, dialect=dialect)  # type: ignore[arg-type]
            except InvalidEventError:
                continue
            # Whatever parsed must serialize again, in both dialects.
            ev.to_wire(event, dialect="ga")
            ev.to_wire(event, dialect="beta")
            if isinstance(event, ev.ResponseOutputAudioDelta):
                try:
                    event.pcm16()
                except InvalidEventError:
                    pass


@_SETTINGS
@given(st.binary(max_size=64))
def test_random_bytes(data: bytes) -> None:
    _parse_all_ways(data)


@_SETTINGS
@given(_json)
def test_random_json_values(value: Any) -> None:
    try:
        text = orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        return  # NaN/inf or huge ints: not JSON
    _parse_all_ways(text)
    if isinstance(value, dict):
        _parse_all_ways(value)


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for key, value in obj.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(obj, list):
        for index, value in enumerate(obj):
            out += _paths(value, (*prefix, index))
    return out


@_SETTINGS
@given(st.data())
def test_mutated_real_events(data: st.DataObject) -> None:
    sample = copy.deepcopy(data.draw(st.sampled_from(SERVER_SAMPLES + CLIENT_SAMPLES)))
    paths = _paths(sample)
    path = data.draw(st.sampled_from(paths))
    parent = sample
    for key in path[:-1]:
        parent = parent[key]
    if data.draw(st.booleans()):
        parent[path[-1]] = data.draw(_json)  # replace with anything
    elif isinstance(parent, dict):
        del parent[path[-1]]  # drop a field
    else:
        parent.pop(path[-1])
    _parse_all_ways(sample)
    try:
        _parse_all_ways(orjson.dumps(sample))
    except (TypeError, orjson.JSONEncodeError):
        pass
