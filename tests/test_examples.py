"""Every example in ``examples/`` runs against the local server, so none can rot.

The examples that need no audio device run as subprocesses, exactly as a user runs
them (``REALTIME_URL`` pointing at a test server, or no key at all so the example starts
its own). The microphone examples run in-process with ``Microphone`` and ``Speaker``
swapped for the library's simulated devices (``VirtualMicrophone`` hearing a script at
real-time pace, ``VirtualSpeaker`` playing to nowhere): everything but the sound card is
the example's own code.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from realtime_client.audio import VirtualMicrophone, VirtualSpeaker, read_wav
from realtime_client.server import LocalServer, ServerSession

from .conftest import clean_env, voiced

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
RATE = 24_000


def env_for(url: str | None) -> dict[str, str]:
    return clean_env(REALTIME_URL=url) if url is not None else clean_env()


async def run_example(name: str, *args: str, url: str | None, cwd: Path) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLES / name),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env_for(url),
        cwd=cwd,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    assert b"Traceback" not in err
    return out.decode()


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    async with LocalServer(responder="echo", speed=0) as srv:
        yield srv


def sessions_of(server: LocalServer) -> list[ServerSession]:
    """The server-side sessions, kept after they close (``server.sessions`` forgets them)."""
    seen: list[ServerSession] = []
    server.on_session = seen.append
    return seen


# --- examples without audio devices ---------------------------------------------------------


async def test_text_only(server: LocalServer, tmp_path: Path) -> None:
    sessions = sessions_of(server)
    out = await run_example(
        "text_only.py", "Tell", "me", "a", "joke.", url=server.url, cwd=tmp_path
    )
    lines = out.splitlines()
    assert lines[0] == "Echo: Tell me a joke."  # streamed deltas joined into one line
    assert re.fullmatch(r"\[\d+ tokens in, \d+ out, \$\d+\.\d{5}\]", lines[1])
    assert sessions[0].state["output_modalities"] == ["text"]


async def test_function_calling_runs_the_tools(tmp_path: Path) -> None:
    # No key and no REALTIME_URL: the example starts its own server with its stand-in model.
    out = await run_example("function_calling.py", url=None, cwd=tmp_path)
    assert "(no OPENAI_API_KEY: using a local server at http://127.0.0.1:" in out
    assert 'model calls get_weather({"city": "Paris"})' in out
    assert 'model calls calculate({"expression": "17 * 23"})' in out
    # Only the functions' real results, sent back by the session, can produce this line.
    assert (
        'assistant: The tools said: {"city":"Paris","temperature_c":18,"conditions":"sunny"}; '
        "391.0" in out
    )


async def test_telephony_g711_round_trip(server: LocalServer, tmp_path: Path) -> None:
    sessions = sessions_of(server)
    out = await run_example("telephony_g711.py", url=server.url, cwd=tmp_path)
    assert "assistant: Echo of your 1.00 seconds of audio." in out
    assert "reply: 8000 µ-law bytes = 1000 ms at 8 kHz -> out/telephony/reply_8k.wav" in out
    assert not (tmp_path / "reply_8k.wav").exists()  # nothing lands in the working folder
    assert sessions[0].state["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    assert sessions[0].state["audio"]["output"]["format"] == {"type": "audio/pcmu"}
    reply, rate = read_wav(tmp_path / "out" / "telephony" / "reply_8k.wav")
    assert rate == 8000 and len(reply) == 8000
    # The echo went through µ-law and 8 kHz twice: the two tones must still be there.
    spectrum = np.abs(np.fft.rfft(reply[1000:7000] * np.hanning(6000)))
    freqs = np.fft.rfftfreq(6000, 1 / 8000)
    peaks = sorted(freqs[np.argsort(spectrum)[-2:]])
    assert abs(peaks[0] - 350) < 5 and abs(peaks[1] - 440) < 5


# --- microphone examples with stand-in devices ------------------------------------------------


def load_example(
    name: str, monkeypatch: pytest.MonkeyPatch, script: np.ndarray
) -> tuple[ModuleType, list[VirtualSpeaker]]:
    """The example with the simulated devices in place of ``Microphone`` and ``Speaker``.

    The microphone hears ``script`` (24 kHz), then silence, at real-time pace; the speakers
    the example opens are returned, to see what reached them.
    """
    monkeypatch.syspath_prepend(str(EXAMPLES))  # the examples import their _local helper
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    speakers: list[VirtualSpeaker] = []

    def microphone(*args: Any, **kwargs: Any) -> VirtualMicrophone:
        return VirtualMicrophone(script, RATE)

    def speaker(*args: Any, **kwargs: Any) -> VirtualSpeaker:
        speakers.append(VirtualSpeaker(*args, **kwargs))
        return speakers[-1]

    monkeypatch.setattr(module, "Microphone", microphone)
    monkeypatch.setattr(module, "Speaker", speaker)
    return module, speakers


async def wait_for_output(
    capsys: pytest.CaptureFixture[str], pattern: str, task: asyncio.Task[Any], seen: list[str]
) -> re.Match[str]:
    for _ in range(300):
        seen.append(capsys.readouterr().out)
        found = re.search(pattern, "".join(seen))
        if found:
            return found
        if task.done():
            task.result()
            break
        await asyncio.sleep(0.05)
    raise AssertionError(f"{pattern!r} not printed; output: {''.join(seen)!r}")


async def test_voice_chat(
    server: LocalServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REALTIME_URL", server.url)
    speech = np.concatenate([np.zeros(RATE // 5, np.float32), voiced(1.0)])
    example, speakers = load_example("voice_chat", monkeypatch, speech)
    task = asyncio.ensure_future(example.main())
    seen: list[str] = []
    try:
        await wait_for_output(capsys, r"you: \[\d\.\d+ seconds of audio\]", task, seen)
        heard = await wait_for_output(
            capsys, r"assistant: Echo of your (\d\.\d+) seconds", task, seen
        )
        # The turn: 1 s of speech, up to 300 ms of padding before it and the silence
        # that ended it (500 ms for the default model, gpt-realtime-2.1).
        assert 1.0 <= float(heard[1]) <= 1.9
        speaker = speakers[0]
        for _ in range(100):  # the echoed audio reaches the speaker
            if speaker.written_ms >= 1000:
                break
            await asyncio.sleep(0.05)
        assert speaker.written_ms >= 1000
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_push_to_talk(
    server: LocalServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REALTIME_URL", server.url)
    sessions = sessions_of(server)
    example, _ = load_example("push_to_talk", monkeypatch, voiced(10.0))
    read_fd, write_fd = os.pipe()
    stdin = os.fdopen(read_fd, "r")
    monkeypatch.setattr(sys, "stdin", stdin)
    task = asyncio.ensure_future(example.main())
    seen: list[str] = []
    try:
        await wait_for_output(capsys, r"\[Enter\] talk", task, seen)
        await asyncio.sleep(0.5)  # speech flows but is not sent: VAD is off, no press yet
        assert "assistant:" not in "".join(seen)
        os.write(write_fd, b"\n")
        await wait_for_output(capsys, r"recording\.\.\. \[Enter\] send", task, seen)
        await asyncio.sleep(0.8)
        os.write(write_fd, b"\n")
        heard = await wait_for_output(
            capsys, r"assistant: Echo of your (\d\.\d+) seconds", task, seen
        )
        assert 0.5 <= float(heard[1]) <= 1.3  # only what was recorded between the presses
    finally:
        os.close(write_fd)  # end of input: the example leaves its loop
    await asyncio.wait_for(task, 10)
    stdin.close()
    assert sessions[0].state["audio"]["input"]["turn_detection"] is None


# --- the replay regression-test example ----------------------------------------------------------


async def run_pytest(path: Path, url: str | None) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pytest",
        str(path),
        "-q",
        "-p",
        "no:cacheprovider",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env_for(url),
        cwd=EXAMPLES.parent,  # the project's pytest settings, as a user of this repo has them
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 50)
    return proc.returncode or 0, out.decode()


async def test_replay_regression_example_passes_and_catches_a_regression(
    server: LocalServer,
) -> None:
    example = EXAMPLES / "voice_app_regression_test.py"
    code, out = await run_pytest(example, None)  # its own scripted model: the app is right
    assert code == 0 and "1 passed" in out, out
    # Against a server whose "model" only echoes, the app no longer answers the question:
    # the example's assertion must catch it.
    code, out = await run_pytest(example, server.url)
    assert code == 1 and "1 failed" in out, out
    assert "assert 'Paris' in" in out
