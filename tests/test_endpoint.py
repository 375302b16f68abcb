"""realtime_client.endpoint: key, URL and local-server decisions, as tables."""

from __future__ import annotations

import pytest

from realtime_client import endpoint
from realtime_client.errors import AuthenticationError, ConnectError

NO_ENV: dict[str, str] = {}
KEY_ENV = {"OPENAI_API_KEY": "sk-env"}


@pytest.mark.parametrize(
    ("api_key", "environ", "expected"),
    [
        ("sk-arg", KEY_ENV, "sk-arg"),  # the argument wins
        (None, KEY_ENV, "sk-env"),
        ("", KEY_ENV, "sk-env"),  # an empty key is no key
        ("\n", KEY_ENV, "sk-env"),  # nor is a blank one
        (None, {"OPENAI_API_KEY": ""}, None),
        (None, NO_ENV, None),
    ],
)
def test_api_key_from_argument_then_environment(
    api_key: str | None, environ: dict[str, str], expected: str | None
) -> None:
    assert endpoint.resolve_api_key(api_key, environ=environ) == expected


def test_a_key_read_from_a_file_loses_its_newline() -> None:
    assert endpoint.resolve_api_key("sk-proj-abc\n") == "sk-proj-abc"
    assert endpoint.resolve_api_key(None, environ={"OPENAI_API_KEY": " sk-env\r\n"}) == "sk-env"


@pytest.mark.parametrize(
    "key",
    ["sk-one\ntwo", "sk-a b", "sk-\x00x", "sk-ключ", "sk-" + "x" * 5000],
)
def test_a_key_that_cannot_be_a_header_is_refused_without_showing_it(key: str) -> None:
    with pytest.raises(AuthenticationError) as info:
        endpoint.resolve_api_key(key)
    assert not info.value.retryable
    shown = str(info.value)
    assert key.strip() not in shown and "sk-" not in shown


@pytest.mark.parametrize(
    ("url", "model", "intent", "environ", "expected"),
    [
        (None, "gpt-realtime", None, NO_ENV, "wss://api.openai.com/v1/realtime?model=gpt-realtime"),
        (
            None,
            "m",
            None,
            {"OPENAI_BASE_URL": "http://127.0.0.1:8000/v1"},
            "ws://127.0.0.1:8000/v1/realtime?model=m",
        ),
        ("http://127.0.0.1:9/v1/", "m", None, NO_ENV, "ws://127.0.0.1:9/v1/realtime?model=m"),
        ("wss://host/v1/realtime?model=x", "m", None, NO_ENV, "wss://host/v1/realtime?model=x"),
        (
            "https://host/v1?fault=drop",
            "m",
            None,
            NO_ENV,
            "wss://host/v1/realtime?fault=drop&model=m",
        ),
        (
            "https://host/v1",
            None,
            "transcription",
            NO_ENV,
            "wss://host/v1/realtime?intent=transcription",
        ),
    ],
)
def test_realtime_url(
    url: str | None,
    model: str | None,
    intent: str | None,
    environ: dict[str, str],
    expected: str,
) -> None:
    assert endpoint.realtime_url(url, model, intent=intent, environ=environ) == expected


def test_realtime_url_refuses_other_schemes() -> None:
    with pytest.raises(ConnectError, match="unsupported URL scheme") as info:
        endpoint.realtime_url("ftp://127.0.0.1:9/v1", "m", environ=NO_ENV)
    assert info.value.retryable is False


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("ws://127.0.0.1:8000/v1/realtime", True),
        ("http://localhost/v1", True),
        ("ws://[::1]:9/v1", True),
        ("wss://api.openai.com/v1/realtime", False),
        ("ws://localhost.example.com/v1", False),  # a prefix is not the host
        ("ws://127.0.0.2/v1", True),
    ],
)
def test_is_loopback_looks_at_the_host(url: str, loopback: bool) -> None:
    assert endpoint.is_loopback(url) is loopback


def test_auth_key_needs_a_key_except_on_loopback() -> None:
    assert endpoint.auth_key("ws://127.0.0.1:9/v1", environ=NO_ENV) == endpoint.LOCAL_API_KEY
    assert endpoint.auth_key("ws://127.0.0.1:9/v1", environ=KEY_ENV) == "sk-env"
    assert endpoint.auth_key("wss://api.openai.com/v1", "sk-arg", environ=NO_ENV) == "sk-arg"
    with pytest.raises(AuthenticationError, match="OPENAI_API_KEY") as info:
        endpoint.auth_key("wss://api.openai.com/v1", environ=NO_ENV)
    assert info.value.retryable is False


def test_upgrade_headers() -> None:
    assert endpoint.upgrade_headers("k") == {"Authorization": "Bearer k"}
    assert endpoint.upgrade_headers("k", dialect="beta", extra={"X-Trace": "1"}) == {
        "Authorization": "Bearer k",
        "X-Trace": "1",
        "OpenAI-Beta": "realtime=v1",
    }


@pytest.mark.parametrize(
    ("url", "api_key", "environ", "local"),
    [
        (None, None, NO_ENV, True),  # nothing set: offline, the embedded server
        (None, None, {"OPENAI_BASE_URL": "https://proxy/v1"}, True),  # no key to send it
        (None, None, KEY_ENV, False),
        (None, "sk-arg", NO_ENV, False),
        ("http://127.0.0.1:9/v1", None, NO_ENV, False),  # a server of the caller's choice
    ],
)
def test_use_local_server_when_nothing_says_where(
    url: str | None, api_key: str | None, environ: dict[str, str], local: bool
) -> None:
    assert endpoint.use_local_server(url, api_key, environ=environ) is local


def test_describe_server() -> None:
    assert endpoint.describe_server(environ=NO_ENV) == "the OpenAI API"
    assert endpoint.describe_server(environ={"OPENAI_BASE_URL": "https://p/v1"}) == "https://p/v1"
    assert endpoint.describe_server("http://x/v1", environ=NO_ENV) == "http://x/v1"
    assert endpoint.base_url(environ=NO_ENV) == endpoint.DEFAULT_URL


def test_connect_uses_these_rules() -> None:
    from realtime_client import connection

    assert connection.realtime_url is endpoint.realtime_url
