"""``realtime-replay --echo``: speakers in a simulated room, with and without AEC, offline.

The echo responder replies with the user's own audio, through the simulated speaker and a
loudspeaker-room path (40 ms, -6 dB, 250 ms tail) back into the microphone: without echo
cancellation the local server's VAD takes the reply for the user and cuts it; with it the
conversation goes as without speakers.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from realtime_client.apps.replay import replay
from realtime_client.audio import EchoPath, write_wav

from ..audio.test_echo import speechlike
from ..conftest import clean_env

RATE = 24_000


def _turns(tmp_path: Path, count: int) -> list[Path]:
    paths = []
    for i in range(count):
        voice = speechlike(1.5, seed=20 + i, level=0.3)
        silence = np.zeros(RATE // 4, np.float32)
        path = tmp_path / f"turn{i}.wav"
        write_wav(path, np.concatenate([silence, voice, silence]), RATE)
        paths.append(path)
    return paths


async def test_without_aec_the_assistant_interrupts_itself(tmp_path: Path) -> None:
    result = await replay(
        _turns(tmp_path, 3),
        None,
        speed=0,
        echo=True,
        aec=False,
        transcription_model=None,
        turn_timeout=4.0,  # its turns loop on their echo: do not wait 30 s for each
    )
    echo = result.report["echo"]
    assert echo["canceller"] is None and echo["erle_db"] is None
    assert echo["self_interruptions"] >= 1
    assert result.report["self_interruptions_at_ms"]
    # The first reply was cut by its own echo.
    first = next(t for t in result.turns if t.role == "assistant")
    assert first.truncated_at_ms is not None and first.truncated_at_ms < first.audio_ms - 100


async def test_with_aec_no_self_interruption_and_every_turn_answered(tmp_path: Path) -> None:
    result = await replay(_turns(tmp_path, 3), None, speed=0, echo=True, transcription_model=None)
    assert result.ok, result.failures
    echo = result.report["echo"]
    assert echo["canceller"] == "aec3" and echo["self_interruptions"] == 0
    assert echo["erle_db"] >= 20.0
    replies = [t for t in result.turns if t.role == "assistant"]
    assert len(replies) == 3 and all(t.status == "completed" for t in replies)
    assert all(t.truncated_at_ms is None or t.truncated_at_ms >= t.audio_ms - 1 for t in replies)


async def test_with_aec_a_barge_in_still_cuts_the_reply(tmp_path: Path) -> None:
    # The user's burst during the first reply (which starts about 2 s in) must get through.
    result = await replay(
        _turns(tmp_path, 1),
        None,
        speed=0,
        echo=EchoPath(RATE, delay_ms=30, gain_db=-3),
        barge_in_at=[2.6],
        transcription_model=None,
        # The timings above assume gpt-realtime's 200 ms VAD silence. With 2.x's 500 ms the
        # burst's own reply (a loud synthetic burst, which AEC3 cancels worse than speech)
        # leaks enough echo to restart VAD once, after the reply under test.
        model="gpt-realtime",
    )
    assert result.report["echo"]["self_interruptions"] == 0
    first = next(t for t in result.turns if t.role == "assistant")
    assert first.truncated_at_ms is not None and first.truncated_at_ms < first.audio_ms - 100


def test_cli_echo_flags(tmp_path: Path) -> None:
    (wav,) = _turns(tmp_path, 1)
    cmd = [sys.executable, "-m", "realtime_client.apps.replay", str(wav), "--speed", "0"]
    bad = subprocess.run([*cmd, "--no-aec"], capture_output=True, text=True, env=clean_env())
    assert bad.returncode == 2 and "--no-aec applies with --echo only" in bad.stderr
    out = tmp_path / "out"
    done = subprocess.run(
        [*cmd, "--echo", "--out", str(out), "-q", "--transcription-model", "none"],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "echo: aec3, ERLE" in done.stdout and "0 self-interruption(s)" in done.stdout


def test_bad_echo_path_is_a_replay_error(tmp_path: Path) -> None:
    from realtime_client.apps.replay import ReplayError, replay_sync

    (wav,) = _turns(tmp_path, 1)
    with pytest.raises(ReplayError, match="24000 Hz"):
        replay_sync([wav], None, speed=0, echo=EchoPath(16_000))
